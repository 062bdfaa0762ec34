//! What the guard knows about every node at decision time, without asking
//! the network: the cached records, with the local node's own /proc/cpuinfo
//! taking precedence for itself.

use std::collections::BTreeSet;

use crate::capability::Capability;
use crate::level;

/// One node as the guard sees it.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// Node name.
    pub name: String,
    /// Its capability, if known.
    pub capability: Option<Capability>,
    /// Age of the record in seconds (`Some(0)` for the local node read now).
    pub age_secs: Option<u64>,
    /// Why the record is missing or old, if it is.
    pub problem: Option<String>,
}

/// Every node the guard knows of.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    /// Nodes, sorted by name.
    pub nodes: Vec<NodeView>,
}

impl Fleet {
    /// Adds or replaces a node, keeping the list sorted.
    pub fn upsert(&mut self, node: NodeView) {
        match self.nodes.binary_search_by(|n| n.name.cmp(&node.name)) {
            Ok(i) => self.nodes[i] = node,
            Err(i) => self.nodes.insert(i, node),
        }
    }

    /// A node by name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&NodeView> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// A node's capability, if known.
    #[must_use]
    pub fn capability(&self, name: &str) -> Option<&Capability> {
        self.get(name).and_then(|n| n.capability.as_ref())
    }

    /// Nodes with a known capability.
    pub fn known(&self) -> impl Iterator<Item = (&str, &Capability)> {
        self.nodes
            .iter()
            .filter_map(|n| n.capability.as_ref().map(|c| (n.name.as_str(), c)))
    }

    /// The cluster baseline level over the known nodes.
    #[must_use]
    pub fn baseline(&self) -> Option<&'static str> {
        let levels: Vec<&'static str> = self.known().map(|(_, c)| level::of(c).name).collect();
        level::lowest(levels)
    }

    /// Distinct CPU vendors among the known nodes.
    #[must_use]
    pub fn vendors(&self) -> BTreeSet<&str> {
        self.known().map(|(_, c)| c.vendor.as_str()).collect()
    }
}

/// Builds the fleet from the cache, with the local node's fresh capability.
#[must_use]
pub fn load(settings: &crate::settings::Settings, local: &Capability) -> Fleet {
    let mut fleet = Fleet::default();
    fleet.upsert(NodeView {
        name: settings.node.clone(),
        capability: Some(local.clone()),
        age_secs: Some(0),
        problem: None,
    });
    fleet
}
