//! The audit's memo: every verdict it needs, each judged once.
//!
//! A 10 000-VM cluster has thousands of distinct VM configurations (CPU,
//! sockets × cores, `ostype`, machine, pending changes…) but far fewer
//! distinct requirements on a node, and what a requirement needs of a node
//! depends on few of its facts. So: a VM's configuration is launched
//! ([`crate::cpu::launch`]) once per kind of start node (vendor, QEMU
//! version, nested flag: all a launch reads of a node); equal requirements
//! are one; and each verdict is judged once per (requirement, target), or
//! for a live migration per (requirement, what of the source the verdict
//! reads, target). What the memo keys on is exactly what the verdict and
//! the launch read, so memoised answers are the answers
//! (`tests/it/audit_equals_check.rs` compares them with `check`'s). Equal
//! verdicts are then one (nodes of different CPUs often answer alike): a
//! row is a verdict index per class, and the reports say each verdict
//! once.

use std::rc::Rc;
use std::sync::Arc;

use crate::cpu::capability::{Capability, FeatureCheck};
use crate::cpu::custom_models::CustomModels;
use crate::cpu::flags::{self, Enlightenment, VmFlag};
use crate::cpu::launch::{self, StartNode, VmSpec};
use crate::cpu::requirement::Requirement;
use crate::cpu::verdict::{self, Known, Question, Verdict};
use crate::guard::decision::{self as guard, Rules};
use crate::guard::lacking_bits::LackingBits;
use crate::guard::memo_hash::{self, Interned, MemoMap};

/// What of a live migration's source a verdict reads
/// ([`verdict::source_reads`]): the whole CPU for `host`/`max` (every
/// feature it gave the guest, its model), else at most its vendor, KVM module and
/// physical address width — only those the requirement's rules read, so
/// that sources alike in them share one row of verdicts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SourceKey {
    /// The CPU ([`Capability::same_cpu`]: classes of one CPU differ only
    /// in size and QEMU, which no rule reads of a source) and its KVM
    /// module.
    Cpu(usize, Option<&'static str>),
    Facts(Option<String>, Option<&'static str>, Option<Option<u32>>),
}

/// Every verdict of an audit, judged once each.
pub(crate) struct Memo<'c> {
    classes: Vec<&'c Capability>,
    /// Class → the first class of the same CPU.
    cpu_of: Vec<usize>,
    custom: &'c CustomModels,
    rules: Rules,
    /// Class → its kind of start node.
    class_start: Vec<usize>,
    starts: Vec<StartNode<'c>>,
    /// A class of each kind of start node, to launch on.
    kind_class: Vec<usize>,
    /// The classes' logical CPUs, sorted: vCPU counts between two of them
    /// are refused by the same nodes (see [`Memo::judged_as`]).
    sizes: Vec<u32>,
    /// Whether some class's QEMU version is known (else no rule reads a
    /// requirement's machine version).
    qemu_known: bool,
    pub(crate) reqs: Interned<Requirement>,
    /// Requirement → what the verdict reads of it ([`Memo::judged_as`]).
    req_judged: Vec<usize>,
    judged: Interned<Requirement>,
    specs: Interned<VmSpec>,
    launched: MemoMap<(usize, Option<usize>), usize>,
    /// [`Memo::launch`] of configurations with one vCPU.
    launched_one: MemoMap<(usize, Option<usize>), usize>,
    /// Requirements with another vCPU count, by (requirement, count).
    with_vcpus: MemoMap<(usize, u32), usize>,
    /// Distinct verdicts: equal answers are one, so rows of equal answers
    /// compare equal and each verdict is said once.
    pub(crate) verdicts: Interned<Verdict>,
    start: MemoMap<(usize, usize), usize>,
    /// Live rows by (judged requirement, what the verdict reads of the
    /// source): the source's reads are worked out once a row, not a cell.
    live_rows: MemoMap<(usize, Option<SourceKey>), usize>,
    /// [`Memo::on_target`] by (judged requirement, class).
    on_target: MemoMap<(usize, usize), usize>,
    /// [`Memo::on_target`] by (judged requirement, vCPUs and huge pages
    /// as read on the class).
    read_as: MemoMap<(usize, u32, bool), usize>,
    /// Sources as live verdicts read them, interned.
    source_keys: Interned<SourceKey>,
    /// Live verdicts by (requirement as read on the target, source, target).
    live: MemoMap<(usize, Option<usize>, usize), usize>,
    /// [`Memo::host_lacking`] by (source, target) class.
    host_lacking: MemoMap<(usize, usize), Arc<[String]>>,
    /// The classes' features as bits, for [`Memo::host_lacking`].
    lacking_bits: LackingBits<'c>,
    /// [`Memo::features`] by (judged requirement, target class).
    features: MemoMap<(usize, usize), Rc<FeatureCheck>>,
    /// Interned rows (one verdict per class), so equal rows compare equal.
    pub(crate) rows: Interned<Vec<usize>>,
    /// Start rows by what decides them: the judged requirement on each
    /// kind of start node.
    start_rows: MemoMap<Vec<usize>, usize>,
}

impl<'c> Memo<'c> {
    pub(crate) fn new(
        classes: Vec<&'c Capability>,
        custom: &'c CustomModels,
        rules: Rules,
    ) -> Self {
        let mut starts: Vec<StartNode<'c>> = Vec::new();
        let class_start: Vec<usize> = classes
            .iter()
            .map(|c| {
                let s = StartNode::of(c);
                starts.iter().position(|x| *x == s).unwrap_or_else(|| {
                    starts.push(s);
                    starts.len() - 1
                })
            })
            .collect();
        // Every class's feature set worked out once, not per question.
        for c in &classes {
            let _ = c.features();
        }
        let mut sizes: Vec<u32> = classes.iter().filter_map(|c| c.processors).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let qemu_known = classes.iter().any(|c| c.qemu_version.is_some());
        let kind_class = (0..starts.len())
            .map(|k| class_start.iter().position(|&s| s == k).unwrap_or(0))
            .collect();
        let lacking_bits = LackingBits::new(&classes);
        let cpu_of = (0..classes.len())
            .map(|c| {
                (0..c)
                    .find(|&d| classes[d].same_cpu(classes[c]))
                    .unwrap_or(c)
            })
            .collect();
        Memo {
            cpu_of,
            qemu_known,
            classes,
            custom,
            rules,
            class_start,
            starts,
            kind_class,
            sizes,
            reqs: Interned::new(),
            req_judged: Vec::new(),
            judged: Interned::new(),
            specs: Interned::new(),
            launched: memo_hash::map(),
            launched_one: memo_hash::map(),
            with_vcpus: memo_hash::map(),
            verdicts: Interned::new(),
            start: memo_hash::map(),
            live_rows: memo_hash::map(),
            on_target: memo_hash::map(),
            read_as: memo_hash::map(),
            source_keys: Interned::new(),
            live: memo_hash::map(),
            host_lacking: memo_hash::map(),
            lacking_bits,
            features: memo_hash::map(),
            rows: Interned::new(),
            start_rows: memo_hash::map(),
        }
    }

    pub(crate) fn classes(&self) -> &[&'c Capability] {
        &self.classes
    }

    /// One requirement, interned.
    pub(crate) fn intern(&mut self, req: Requirement) -> usize {
        if let Some(i) = self.reqs.find(&req) {
            return i;
        }
        let j = self.judged.intern(self.judged_as(&req));
        self.req_judged.push(j);
        self.reqs.intern(req)
    }

    /// What the verdict reads of `req`: not the names it is shown by (the
    /// verdict never reads `cpu`, `cputype`, `running_cpu`); of its
    /// Hyper-V enlightenments only those a node may lack (`hv-evmcs`, the
    /// one rule reading them); its machine version only where some node's
    /// QEMU version is known (the one rule reading it compares the two);
    /// and of its vCPUs only which nodes refuse them — the smallest class
    /// size at least as large stands for every count up to it (0 when
    /// none is smaller, `u32::MAX` above all), which the vCPU rule answers
    /// alike on every class.
    fn judged_as(&self, req: &Requirement) -> Requirement {
        let vcpus = match self.sizes.iter().find(|&&p| p >= req.vcpus) {
            _ if req.vcpus == 0 => 0,
            Some(&p) if Some(&p) == self.sizes.first() => 0,
            Some(&p) => p,
            None => u32::MAX,
        };
        Requirement {
            cpu: String::new(),
            cputype: String::new(),
            running_cpu: None,
            vcpus,
            hyperv: req
                .hyperv
                .iter()
                .filter(|h| flags::vm_flag(h) == Some(VmFlag::HyperV(Enlightenment::IntelVmx)))
                .cloned()
                .collect(),
            machine: req.machine.filter(|_| self.qemu_known),
            ..req.clone()
        }
    }

    /// One VM configuration, interned as it launches
    /// ([`launch::launch_key`]: configurations alike in what the launch
    /// reads are one).
    pub(crate) fn spec(&mut self, spec: &VmSpec) -> usize {
        self.specs.intern(launch::launch_key(spec))
    }

    /// The requirement of configuration `spec` started on a node of
    /// `class` (`None`: a node nothing is known of).
    pub(crate) fn launch(&mut self, spec: usize, class: Option<usize>) -> usize {
        let start = class.map(|c| self.class_start[c]);
        if let Some(&i) = self.launched.get(&(spec, start)) {
            return i;
        }
        // The vCPU count reaches nothing of a launch but the requirement's
        // `vcpus` ([`launch::vcpus_of`]): configurations that differ only
        // in it are launched once, with one vCPU, and given their count.
        let vcpus = launch::vcpus_of(&self.specs[spec]);
        let one = self.specs.intern(VmSpec {
            sockets: Some(1),
            ..self.specs[spec].clone()
        });
        let base = match self.launched_one.get(&(one, start)) {
            Some(&b) => b,
            None => {
                let node = start.map_or(StartNode::UNKNOWN, |s| self.starts[s]);
                let req = launch::launch(&self.specs[one], &node, self.custom).requirement;
                let b = self.intern(req);
                self.launched_one.insert((one, start), b);
                b
            }
        };
        let i = if self.reqs[base].vcpus == vcpus {
            base
        } else if let Some(&i) = self.with_vcpus.get(&(base, vcpus)) {
            i
        } else {
            let req = Requirement {
                vcpus,
                ..self.reqs[base].clone()
            };
            let i = self.intern(req);
            self.with_vcpus.insert((base, vcpus), i);
            i
        };
        self.launched.insert((spec, start), i);
        i
    }

    /// [`verdict::feature_check`] of judged requirement `j` on class
    /// `target`: the same for its start and every live migration there.
    fn features(&mut self, j: usize, target: usize) -> Rc<FeatureCheck> {
        let (req, t) = (&self.judged[j], self.classes[target]);
        self.features
            .entry((j, target))
            .or_insert_with(|| verdict::feature_check(req, t).into())
            .clone()
    }

    /// Judged requirement `j` as the rules read it on class `target`
    /// ([`verdict::vcpus_and_hugepages_on`]): requirements that differ only
    /// in vCPUs the node has room for, or in huge pages a node with
    /// pdpe1gb backs anyway, are judged once there.
    fn on_target(&mut self, j: usize, target: usize) -> usize {
        if let Some(&p) = self.on_target.get(&(j, target)) {
            return p;
        }
        let req = &self.judged[j];
        let (vcpus, hugepages_1g) = verdict::vcpus_and_hugepages_on(req, self.classes[target]);
        let p = if (vcpus, hugepages_1g) == (req.vcpus, req.hugepages_1g) {
            j
        } else if let Some(&p) = self.read_as.get(&(j, vcpus, hugepages_1g)) {
            // Many classes read it alike: one copy, not one per class.
            p
        } else {
            let read = Requirement {
                vcpus,
                hugepages_1g,
                ..req.clone()
            };
            let p = self.judged.intern(read);
            self.read_as.insert((j, vcpus, hugepages_1g), p);
            p
        };
        self.on_target.insert((j, target), p);
        p
    }

    /// The verdict of judged requirement `j` as read on class `target`
    /// ([`Memo::on_target`]), with `host_lacking` (of the source) when the
    /// caller has it, interned.
    fn judge(
        &mut self,
        j: usize,
        target: usize,
        q: Question<'_>,
        host_lacking: Option<&Arc<[String]>>,
    ) -> usize {
        // Only a KVM guest's verdict asks for its features.
        let features = self.judged[j].kvm.then(|| self.features(j, target));
        let known = Known {
            host_lacking,
            features: features.as_deref(),
        };
        let mut ignore = Vec::new();
        let v = guard::apply_rules(
            verdict::judge_knowing(&self.judged[j], self.classes[target], q, known),
            self.rules,
            &mut ignore,
        );
        self.verdicts.intern(v)
    }

    /// Whether requirement `req` can start on class `target`.
    pub(crate) fn start(&mut self, req: usize, target: usize) -> usize {
        let j = self.on_target(self.req_judged[req], target);
        if let Some(&v) = self.start.get(&(j, target)) {
            return v;
        }
        let v = self.judge(j, target, Question::Start, None);
        self.start.insert((j, target), v);
        v
    }

    /// [`verdict::host_lacking`] of classes `source` and `target`, worked
    /// out once for every `host`/`max` requirement moving between them.
    fn host_lacking(&mut self, source: usize, target: usize) -> Arc<[String]> {
        let bits = &self.lacking_bits;
        self.host_lacking
            .entry((source, target))
            .or_insert_with(|| bits.lacking(source, target))
            .clone()
    }

    /// What the verdicts of `req` read of source class `s`.
    fn source_key(&self, req: usize, s: usize) -> SourceKey {
        let reads = verdict::source_reads(&self.judged[self.req_judged[req]]);
        let c = self.classes[s];
        if reads.cpu {
            SourceKey::Cpu(self.cpu_of[s], c.nested_flag())
        } else {
            SourceKey::Facts(
                reads.vendor.then(|| c.vendor.clone()),
                c.nested_flag().filter(|_| reads.kvm_module),
                reads.phys_bits.then_some(c.phys_bits),
            )
        }
    }

    /// The live row of requirement `req` running with its CPU from class
    /// `source`: whether it can move live to each class.
    pub(crate) fn live_row_of(&mut self, req: usize, source: Option<usize>) -> usize {
        let key = (
            self.req_judged[req],
            source.map(|s| self.source_key(req, s)),
        );
        if let Some(&row) = self.live_rows.get(&key) {
            return row;
        }
        let q = Question::Live {
            source: source.map(|s| self.classes[s]),
        };
        let whole_cpu = matches!(key.1, Some(SourceKey::Cpu(..)));
        let source_id = key.1.clone().map(|k| self.source_keys.intern(k));
        let row = (0..self.classes.len())
            .map(|c| {
                let j = self.on_target(key.0, c);
                if let Some(&v) = self.live.get(&(j, source_id, c)) {
                    return v;
                }
                let v = match source.filter(|_| whole_cpu) {
                    Some(s) => {
                        let lacking = self.host_lacking(s, c);
                        self.judge(j, c, q, Some(&lacking))
                    }
                    None => self.judge(j, c, q, None),
                };
                self.live.insert((j, source_id, c), v);
                v
            })
            .collect();
        let row = self.row(row);
        self.live_rows.insert(key, row);
        row
    }

    /// One row (a verdict per class), interned.
    pub(crate) fn row(&mut self, row: Vec<usize>) -> usize {
        self.rows.intern(row)
    }

    /// The start row of `spec`: its launch on each class, judged there.
    pub(crate) fn start_row(&mut self, spec: usize) -> usize {
        // One launch per kind of start node; the verdicts of a pattern of
        // judged requirements are the same row for every configuration
        // that has it.
        let per_kind: Vec<usize> = (0..self.kind_class.len())
            .map(|k| self.launch(spec, Some(self.kind_class[k])))
            .collect();
        let key: Vec<usize> = per_kind.iter().map(|&r| self.req_judged[r]).collect();
        if let Some(&row) = self.start_rows.get(&key) {
            return row;
        }
        let row = (0..self.classes.len())
            .map(|c| self.start(per_kind[self.class_start[c]], c))
            .collect();
        let row = self.row(row);
        self.start_rows.insert(key, row);
        row
    }

    /// The live row of `spec` running with its CPU from class `origin`.
    pub(crate) fn live_row(&mut self, spec: usize, origin: Option<usize>) -> usize {
        let r = self.launch(spec, origin);
        self.live_row_of(r, origin)
    }
}
