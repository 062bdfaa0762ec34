//! What the guard knows about every node at decision time, without asking
//! the network: the cached records, with the local node's own /proc/cpuinfo
//! taking precedence for itself.

use std::collections::BTreeSet;

use crate::cache::{self, Cache};
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
    /// Problems reading the cache (reported as warnings).
    pub problems: Vec<String>,
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
/// A corrupt or unreadable cache is reported in `problems`, never fatal.
#[must_use]
pub fn load(settings: &crate::settings::Settings, local: &Capability) -> Fleet {
    let mut fleet = Fleet::default();
    match Cache::load_lenient(&settings.cache) {
        Ok((cache, problem)) => {
            fleet.problems.extend(problem.map(|e| e.to_string()));
            from_cache(&mut fleet, &cache, cache::now());
        }
        Err(e) => fleet.problems.push(e.to_string()),
    }
    fleet.upsert(NodeView {
        name: settings.node.clone(),
        capability: Some(local.clone()),
        age_secs: Some(0),
        problem: None,
    });
    fleet
}

fn from_cache(fleet: &mut Fleet, cache: &Cache, now: u64) {
    for record in cache.nodes.values() {
        fleet.upsert(NodeView {
            name: record.name.clone(),
            capability: Some(record.capability()),
            age_secs: Some(record.age(now)),
            problem: record
                .last_error
                .as_ref()
                .map(|e| format!("last refresh failed: {e}")),
        });
    }
    for u in cache.unscanned.values() {
        if fleet.get(&u.name).is_none() {
            fleet.upsert(NodeView {
                name: u.name.clone(),
                capability: None,
                age_secs: None,
                problem: Some(format!("never scanned successfully: {}", u.error)),
            });
        }
    }
}
