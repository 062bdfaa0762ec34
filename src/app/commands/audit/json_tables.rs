//! The shared tables of `audit --output json`: each distinct answer (a
//! row of nodes), verdict and requirement stated once, by id, for the VMs
//! to refer to (docs/json.md, section audit, says how ids resolve).
//!
//! Ids count from 0 in order of first use, so equal audits give equal
//! documents, and a narrowed audit (`--vm`, `--on`, `--finding`) states
//! only what its VMs refer to.

use std::collections::BTreeSet;
use std::hash::Hash;

use serde::Serialize;

use crate::cpu::launch::Guest;
use crate::cpu::requirement::{GuestCpu, Requirement};
use crate::cpu::verdict::{Outcome, Verdict};
use crate::guard::audit::{Audit, VmAudit};
use crate::guard::memo_hash::{self, MemoMap};

/// Ids in order of first use, with what each was first asked for by.
pub(super) struct Ids<K, R> {
    index: MemoMap<K, usize>,
    /// Key and the first asker, by id.
    pub(super) entries: Vec<(K, R)>,
}

impl<K: Hash + Eq + Clone, R> Ids<K, R> {
    pub(super) fn new() -> Self {
        Ids {
            index: memo_hash::map(),
            entries: Vec::new(),
        }
    }

    /// The id of `key`, new ones remembering `rep`.
    pub(super) fn id(&mut self, key: K, rep: impl FnOnce() -> R) -> usize {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.entries.push((key.clone(), rep()));
        self.index.insert(key, self.entries.len() - 1);
        self.entries.len() - 1
    }
}

/// Which answer: a start row, or a live row without the VMs' own node
/// (no live-migration target).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum AnswerKey {
    Start(usize),
    Live(usize, Option<usize>),
}

impl AnswerKey {
    pub(super) fn start(a: &Audit<'_>, v: &VmAudit) -> Self {
        AnswerKey::Start(a.row_key(v).0)
    }

    pub(super) fn live(a: &Audit<'_>, v: &VmAudit) -> Self {
        let (_, live, owner) = a.row_key(v);
        AnswerKey::Live(live, owner)
    }
}

/// A verdict as the JSON states it: its answer, the codes of its reasons
/// and the reasons in words (why refused, else why unknown) — what decides
/// it, not its notes, so nodes refused alike share one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub(super) struct JsonVerdict {
    verdict: &'static str,
    codes: Vec<&'static str>,
    reasons: Vec<String>,
}

impl JsonVerdict {
    fn of(v: &Verdict) -> Self {
        JsonVerdict {
            verdict: v.outcome.as_str(),
            codes: v.reasons.iter().map(|r| r.code()).collect(),
            reasons: if v.reasons.is_empty() {
                v.unknown.clone()
            } else {
                v.reasons.iter().map(ToString::to_string).collect()
            },
        }
    }

    fn no_data(why: &str) -> Self {
        JsonVerdict {
            verdict: Outcome::Unknown.as_str(),
            codes: Vec::new(),
            reasons: vec![why.to_string()],
        }
    }
}

/// A verdict with its id.
#[derive(Serialize)]
pub(super) struct JsonVerdictEntry {
    id: usize,
    #[serde(flatten)]
    verdict: JsonVerdict,
}

/// Nodes and their verdict ids, as a JSON object in the fleet's order.
pub(super) struct NodeMap<'a>(Vec<(&'a str, usize)>);

impl Serialize for NodeMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (node, id) in &self.0 {
            m.serialize_entry(node, id)?;
        }
        m.end()
    }
}

/// One answer: the nodes allowed, and each other node's verdict by id.
#[derive(Serialize)]
pub(super) struct JsonAnswer<'a> {
    id: usize,
    question: &'static str,
    allowed: Vec<&'a str>,
    refused: NodeMap<'a>,
    unknown: NodeMap<'a>,
}

/// The verdicts' ids: by the audit's verdict (or node without data), then
/// by what the JSON says of it.
struct Verdicts {
    /// By the audit's verdict index.
    judged: Vec<Option<usize>>,
    /// By node index.
    no_data: Vec<Option<usize>>,
    ids: Ids<JsonVerdict, ()>,
}

impl Verdicts {
    fn id(&mut self, a: &Audit<'_>, judged: Option<usize>, node: usize) -> usize {
        let slot = match judged {
            Some(x) => &mut self.judged[x],
            None => &mut self.no_data[node],
        };
        if let Some(id) = *slot {
            return id;
        }
        let v = match judged {
            Some(x) => JsonVerdict::of(&a.verdicts()[x]),
            None => JsonVerdict::no_data(&crate::app::commands::node_list::no_data_why(
                &a.fleet.nodes[node],
            )),
        };
        let id = self.ids.id(v, || ());
        match judged {
            Some(x) => self.judged[x] = Some(id),
            None => self.no_data[node] = Some(id),
        }
        id
    }
}

/// The answers, in order of first use, and the verdicts they name.
pub(super) fn answers<'a>(
    a: &'a Audit<'_>,
    keys: &Ids<AnswerKey, &'a VmAudit>,
) -> (Vec<JsonAnswer<'a>>, Vec<JsonVerdictEntry>) {
    let mut verdicts = Verdicts {
        judged: vec![None; a.verdicts().len()],
        no_data: vec![None; a.fleet.nodes.len()],
        ids: Ids::new(),
    };
    let answers = keys
        .entries
        .iter()
        .enumerate()
        .map(|(id, (key, v))| answer(a, id, *key, v, &mut verdicts))
        .collect();
    let verdicts = verdicts
        .ids
        .entries
        .into_iter()
        .enumerate()
        .map(|(id, (verdict, ()))| JsonVerdictEntry { id, verdict })
        .collect();
    (answers, verdicts)
}

fn answer<'a>(
    a: &'a Audit<'_>,
    id: usize,
    key: AnswerKey,
    v: &VmAudit,
    verdicts: &mut Verdicts,
) -> JsonAnswer<'a> {
    let live = matches!(key, AnswerKey::Live(..));
    let mut r = JsonAnswer {
        id,
        question: if live { "live_migration" } else { "start" },
        allowed: Vec::new(),
        refused: NodeMap(Vec::new()),
        unknown: NodeMap(Vec::new()),
    };
    for (i, n) in a.fleet.nodes.iter().enumerate() {
        if live && Some(i) == v.owner {
            continue;
        }
        let judged = if live {
            a.live_verdict(v, i)
        } else {
            a.start_verdict(v, i)
        };
        let outcome = judged.map_or(Outcome::Unknown, |x| a.verdicts()[x].outcome);
        let into = match outcome {
            Outcome::Compatible => {
                r.allowed.push(&n.name);
                continue;
            }
            Outcome::Incompatible => &mut r.refused.0,
            Outcome::Unknown => &mut r.unknown.0,
        };
        into.push((&n.name, verdicts.id(a, judged, i)));
    }
    r
}

/// `phys-bits`: a width, or `"host"`.
#[derive(Serialize)]
#[serde(untagged)]
enum JsonPhysBits {
    Bits(u32),
    Host(&'static str),
}

#[derive(Serialize)]
pub(super) struct JsonRequirement<'a> {
    id: usize,
    cpu: &'a str,
    cpu_type: &'a str,
    base: &'static str,
    model: Option<&'a str>,
    model_vendor: Option<&'a str>,
    features: &'a BTreeSet<String>,
    phys_bits: Option<JsonPhysBits>,
    guest_phys_bits: Option<u32>,
    nested_virt: bool,
    hugepages_1g: bool,
    hyperv: &'a BTreeSet<String>,
    kvm: bool,
    vcpus: u32,
    guest: &'a str,
    machine: Option<String>,
    unknown: Option<&'a str>,
    start_error: Option<&'a str>,
    notes: &'a [String],
}

/// The requirements of `reps` (one VM for each), in id order.
pub(super) fn requirements<'a>(
    a: &'a Audit<'_>,
    ids: &Ids<usize, &'a VmAudit>,
) -> Vec<JsonRequirement<'a>> {
    ids.entries
        .iter()
        .enumerate()
        .map(|(id, (_, v))| requirement(id, a.requirement(v)))
        .collect()
}

fn requirement(id: usize, r: &Requirement) -> JsonRequirement<'_> {
    let (base, model, model_vendor) = match &r.base {
        GuestCpu::Host => ("host", None, None),
        GuestCpu::Max => ("max", None, None),
        GuestCpu::Model { qemu_model, vendor } => {
            ("model", Some(qemu_model.as_str()), vendor.as_deref())
        }
    };
    JsonRequirement {
        id,
        cpu: &r.cpu,
        cpu_type: &r.cputype,
        base,
        model,
        model_vendor,
        features: &r.features,
        phys_bits: r.phys_bits.map(|p| match p {
            crate::cpu::cpuconf::PhysBits::Bits(n) => JsonPhysBits::Bits(n),
            crate::cpu::cpuconf::PhysBits::Host => JsonPhysBits::Host("host"),
        }),
        guest_phys_bits: r.guest_phys_bits,
        nested_virt: r.nested_virt,
        hugepages_1g: r.hugepages_1g,
        hyperv: &r.hyperv,
        kvm: r.kvm,
        vcpus: r.vcpus,
        guest: match &r.guest {
            Guest::X86 => "x86_64",
            Guest::Template => "template",
            Guest::Emulated { arch } => arch,
        },
        machine: r.machine.map(|m| m.to_string()),
        unknown: r.unknown.as_deref(),
        start_error: r.start_error.as_deref(),
        notes: &r.automatic,
    }
}
