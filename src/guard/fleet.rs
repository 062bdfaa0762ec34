//! What the guard knows about every node at decision time, without asking
//! the network: the cached records, with the local node's own /proc/cpuinfo
//! taking precedence for itself.

use std::collections::BTreeSet;

use crate::cache::{self, Freshness, LazyCache, LazyNode};
use once_cell::sync::OnceCell;

use crate::cache::truth::{self, Truth};

use crate::cpu::capability::Capability;
use crate::cpu::cpuinfo::CpuInfo;
use crate::cpu::level::{self, Level};

/// One node as the guard sees it. Its capability is derived from the
/// cached facts only when a decision needs it: a hook allowing a live
/// migration looks at two nodes, not the whole cluster. Capability, level
/// and notes all come from [`crate::cache::truth`], the one definition
/// every command uses.
#[derive(Debug, Clone)]
pub struct FleetNode {
    /// Node name.
    pub name: String,
    /// The cache record the capability is derived from (read in full only
    /// if the decision needs this node).
    record: Option<Box<LazyNode>>,
    /// The derived capability.
    capability: OnceCell<Capability>,
    /// Its level (derived on first use).
    level: OnceCell<Level>,
    /// Where the other view disagrees (derived on first use).
    notes: OnceCell<Vec<String>>,
    /// How fresh the node's cached record is ([`Freshness`]): the same
    /// answer `status` gives, also for the node read now (`read_now`),
    /// whose record is what the other nodes decide by.
    pub freshness: Freshness,
    /// Whether the capability was read from this node's /proc/cpuinfo just
    /// now rather than taken from its record.
    pub read_now: bool,
    /// Where the record's data came from (`pmxcfs`, `ssh`, `local`).
    pub source: Option<String>,
}

impl FleetNode {
    /// A node whose capability is already known, from a fresh record
    /// `age` seconds old.
    #[must_use]
    pub fn known(name: &str, capability: Capability, age: u64) -> Self {
        FleetNode {
            name: name.to_string(),
            record: None,
            capability: OnceCell::with_value(capability),
            level: OnceCell::new(),
            notes: OnceCell::with_value(Vec::new()),
            freshness: Freshness::Fresh { age },
            read_now: false,
            source: None,
        }
    }

    /// A node from its [`Truth`] and its record's [`Freshness`].
    #[must_use]
    pub fn from_truth(name: &str, t: Truth, freshness: Freshness) -> Self {
        FleetNode {
            name: name.to_string(),
            record: None,
            capability: OnceCell::with_value(t.capability),
            level: OnceCell::with_value(t.level),
            notes: OnceCell::with_value(t.notes),
            freshness,
            read_now: false,
            source: None,
        }
    }

    /// A node of the cluster that no scan ever read (`error`: why the last
    /// attempt failed, if one was made): no data.
    #[must_use]
    pub fn never_scanned(name: &str, error: Option<&str>) -> Self {
        FleetNode {
            name: name.to_string(),
            record: None,
            capability: OnceCell::new(),
            level: OnceCell::new(),
            notes: OnceCell::with_value(Vec::new()),
            freshness: Freshness::never_scanned(error),
            read_now: false,
            source: None,
        }
    }

    /// The node's capability, if known (derived on first use).
    #[must_use]
    pub fn capability(&self) -> Option<&Capability> {
        if let Some(c) = self.capability.get() {
            return Some(c);
        }
        let record = self.record.as_ref()?.record().ok()?;
        Some(self.capability.get_or_init(|| record.into_capability()))
    }

    /// Whether the node's data is stale: its record is not fresh
    /// ([`Freshness`]: never scanned, its last refresh failed, older than
    /// `cache_max_age`, dated in the future or ages ago), or it holds no
    /// usable data. The one definition `audit` (text, JSON, HTML), `check`,
    /// `migrate` and `metrics` use.
    #[must_use]
    pub fn is_stale(&self) -> bool {
        self.freshness.is_stale() || self.capability().is_none()
    }

    /// The node's level on the ladder, from its capability.
    #[must_use]
    pub fn level_detail(&self) -> Option<&Level> {
        let cap = self.capability()?;
        Some(self.level.get_or_init(|| level::of(cap)))
    }

    /// The node's level as every command prints it (a rung, or
    /// [`truth::BELOW_FLOOR`]).
    #[must_use]
    pub fn level(&self) -> Option<&'static str> {
        self.level_detail().map(truth::level_name)
    }

    /// Whether not even `kvm64` starts here.
    #[must_use]
    pub fn below_floor(&self) -> bool {
        self.level_detail().is_some_and(|l| !l.floor_met)
    }

    /// `kvm`, `tcg` or `cpuinfo`: which view decided.
    #[must_use]
    pub fn view(&self) -> Option<&'static str> {
        self.capability().map(truth::view_name)
    }

    /// Where the other view disagrees with the deciding one.
    #[must_use]
    pub fn notes(&self) -> &[String] {
        self.notes.get_or_init(|| {
            let (Some(rec), Some(cap), Some(lvl)) = (
                self.record.as_ref().and_then(|r| r.record().ok()),
                self.capability(),
                self.level_detail(),
            ) else {
                return Vec::new();
            };
            let mut n = truth::notes(&rec.cpu, cap, lvl);
            if let (None, Some(e)) = (&rec.kvm, &rec.kvm_error) {
                n.push(truth::probe_failed(e));
            }
            n
        })
    }

    /// When the cached record was scanned, if the view comes from one.
    #[must_use]
    pub fn scanned_at(&self) -> Option<u64> {
        self.record.as_ref().map(|r| r.head.scanned_at)
    }

    /// The node's CPU vendor, if known.
    #[must_use]
    pub fn vendor(&self) -> Option<&str> {
        match (&self.record, self.capability.get()) {
            (Some(r), _) => Some(&r.head.vendor),
            (None, Some(c)) => Some(&c.vendor),
            (None, None) => None,
        }
    }
}

/// Every node the guard knows of.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    /// Nodes, sorted by name.
    pub nodes: Vec<FleetNode>,
    /// Problems reading the cache (reported as warnings).
    pub problems: Vec<String>,
}

impl Fleet {
    /// Adds or replaces a node, keeping the list sorted.
    pub fn upsert(&mut self, node: FleetNode) {
        match self.nodes.binary_search_by(|n| n.name.cmp(&node.name)) {
            Ok(i) => self.nodes[i] = node,
            Err(i) => self.nodes.insert(i, node),
        }
    }

    /// Adds every member of the cluster (a directory under `nodes/` of the
    /// cluster file system) the fleet has no word of, as never scanned: a
    /// node that joined after the last scan is an unknown answer, never a
    /// node that does not exist, and keeps every command from claiming a
    /// cluster CPU type. `node_list::add_unseen_members` is the same rule
    /// for commands that read the cache itself.
    pub fn add_unseen_members(&mut self, members: &[String]) {
        for name in members {
            if self.get(name).is_none() {
                self.upsert(FleetNode::never_scanned(name, None));
            }
        }
    }

    /// A node by name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&FleetNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// A node's capability, if known.
    #[must_use]
    pub fn capability(&self, name: &str) -> Option<&Capability> {
        self.get(name).and_then(FleetNode::capability)
    }

    /// Nodes with a known capability.
    pub fn known(&self) -> impl Iterator<Item = (&str, &Capability)> {
        self.nodes
            .iter()
            .filter_map(|n| n.capability().map(|c| (n.name.as_str(), c)))
    }

    /// The cluster level over the known nodes ([`truth::cluster_level`]).
    #[must_use]
    pub fn baseline(&self) -> Option<&'static str> {
        let caps: Vec<&Capability> = self
            .nodes
            .iter()
            .filter_map(FleetNode::capability)
            .collect();
        truth::cluster_level(&caps)
    }

    /// Known nodes where not even `kvm64` starts.
    #[must_use]
    pub fn below_floor(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.below_floor())
            .map(|n| n.name.as_str())
            .collect()
    }

    /// Nodes without usable data (never scanned, or a record that cannot
    /// be read): no cluster-wide answer (a baseline, a CPU type that works
    /// everywhere) can be claimed while there are any.
    #[must_use]
    pub fn without_data(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.capability().is_none())
            .map(|n| n.name.as_str())
            .collect()
    }

    /// The cache's problems, then each record whose date cannot be trusted
    /// (dated in the future, or ages ago), one line each: the warnings of
    /// every decision.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        let mut w = self.problems.clone();
        for n in self.nodes.iter().filter(|n| n.freshness.date_is_suspect()) {
            if let Some(why) = n.freshness.why() {
                w.push(format!("record of {}: {why}", n.name));
            }
        }
        w
    }

    /// Distinct CPU vendors among the known nodes.
    #[must_use]
    pub fn vendors(&self) -> BTreeSet<&str> {
        self.nodes.iter().filter_map(FleetNode::vendor).collect()
    }
}

/// Builds the fleet from the cache, with the local node read fresh from its
/// own /proc/cpuinfo. The local node keeps the QEMU answer its last scan
/// recorded only while its /proc/cpuinfo still shows the same flags (a
/// microcode or kernel change since then invalidates it).
/// A corrupt or unreadable cache is reported in `problems`, never fatal.
#[must_use]
pub fn load(settings: &crate::conf::settings::Settings, local: &CpuInfo) -> Fleet {
    let mut matching: Option<(LazyNode, crate::cache::NodeRecord)> = None;
    let mut fleet = load_with(settings, |cache| {
        matching = cache.nodes.get(&settings.node).and_then(|n| {
            let r = n.record().ok()?;
            truth::same_flags(&r, local).then(|| (n.clone(), r))
        });
    });
    let view = local_view(&fleet, settings, local, matching);
    fleet.upsert(view);
    fleet
}

/// [`load`] for the hookscript: this node's /proc/cpuinfo is read in full
/// (by `read_all`) only when its cached record cannot stand in for it
/// ([`cache::current`]: uniform CPUs, the first CPU block, kernel and QEMU
/// binary unchanged). The result is the same fleet as [`load`] gives.
///
/// # Errors
/// Those of `read_all`.
pub fn load_checked(
    settings: &crate::conf::settings::Settings,
    read_all: impl FnOnce() -> crate::error::Result<CpuInfo>,
) -> crate::error::Result<Fleet> {
    let mut own: Option<(LazyNode, crate::cache::NodeRecord)> = None;
    let mut fleet = load_with(settings, |cache| {
        own = cache
            .nodes
            .get(&settings.node)
            .and_then(|n| Some((n.clone(), n.record().ok()?)));
    });
    let info = match own
        .as_ref()
        .and_then(|(_, r)| cache::current::from_record(r, &settings.cpuinfo))
    {
        Some(info) => info,
        None => read_all()?,
    };
    let matching = own.filter(|(_, r)| truth::same_flags(r, &info));
    let view = local_view(&fleet, settings, &info, matching);
    fleet.upsert(view);
    Ok(fleet)
}

/// The local node's view from `local` read now, with its record's QEMU
/// answer when the record matches (`matching`). Its freshness stays its
/// record's (as `fleet` has it from the cache): what every other node
/// decides by, and what `status` says of it.
fn local_view(
    fleet: &Fleet,
    settings: &crate::conf::settings::Settings,
    local: &CpuInfo,
    matching: Option<(LazyNode, crate::cache::NodeRecord)>,
) -> FleetNode {
    let freshness = fleet
        .get(&settings.node)
        .map_or_else(|| Freshness::never_scanned(None), |n| n.freshness.clone());
    // The same definition as every other node's ([`truth::of_local`]);
    // level and notes are derived only if something asks for them.
    match matching {
        Some((lazy, rec)) => FleetNode {
            name: settings.node.clone(),
            capability: OnceCell::with_value(truth::capability(local, rec.kvm.as_ref())),
            source: rec.source.clone(),
            record: Some(Box::new(lazy)),
            level: OnceCell::new(),
            notes: OnceCell::new(),
            freshness,
            read_now: true,
        },
        None => FleetNode {
            freshness,
            read_now: true,
            ..FleetNode::known(&settings.node, truth::capability(local, None), 0)
        },
    }
}

/// Builds the fleet from the cache alone (for cluster-wide reports that may
/// run on a machine that is not a node, and for metrics, which report the
/// cached records' age).
#[must_use]
pub fn load_cached(settings: &crate::conf::settings::Settings) -> Fleet {
    load_with(settings, |_| {})
}

fn load_with(
    settings: &crate::conf::settings::Settings,
    mut inspect: impl FnMut(&LazyCache),
) -> Fleet {
    let mut fleet = Fleet::default();
    match LazyCache::load_lenient(&settings.cache) {
        Ok((cache, problem)) => {
            fleet.problems.extend(problem.map(|e| e.to_string()));
            inspect(&cache);
            from_cache(
                &mut fleet,
                cache,
                cache::now(),
                settings.cache_max_age.as_secs(),
            );
        }
        Err(e) => fleet.problems.push(e.to_string()),
    }
    fleet
}

fn from_cache(fleet: &mut Fleet, cache: LazyCache, now: u64, max_age: u64) {
    for u in cache.unscanned.values() {
        fleet.upsert(FleetNode::never_scanned(&u.name, Some(&u.error)));
    }
    for (name, node) in cache.nodes {
        // A record dated in the future or ages ago is flagged wherever the
        // fleet is used ([`Fleet::warnings`]).
        fleet.upsert(FleetNode {
            level: OnceCell::new(),
            notes: OnceCell::new(),
            freshness: node.head.freshness(now, max_age),
            read_now: false,
            source: node.head.source.clone(),
            name,
            record: Some(Box::new(node)),
            capability: OnceCell::new(),
        });
    }
}
