//! Gathering every node's CPU for `scan`: each node's published record from
//! the cluster file system first (no network), SSH only for the nodes
//! without a usable one.
//!
//! A node's record is used when it is valid and younger than the staleness
//! limit ([`crate::cache::published::load`]). This node's own record is
//! used only while its kernel and microcode are still the running ones;
//! otherwise this node is read locally as before, and its record is
//! published again from that reading (the CPU view can change with either)
//! when that reading asked QEMU.
//! Every other node without a usable record is read over SSH, or, with
//! `--no-ssh`, reported as missing with the command to run on it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::app::commands::publish;
use crate::cache::published::{self, Published, Rejected};
use crate::error::NodeFailure;
use crate::pve::cluster::Cluster;
use crate::reach::scan::{self, NodeResult, Via};
use crate::reach::ssh::Answer;

/// How to gather.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// The cluster file system.
    pub pve_dir: &'a Path,
    /// A published record older than this (seconds) is not used.
    pub max_age: u64,
    /// Never fall back to SSH.
    pub no_ssh: bool,
    /// The time the gather counts ages from.
    pub now: u64,
}

/// What the gather found, per node in the cluster's order.
#[derive(Debug)]
pub struct Gathered {
    /// Each node's result, as a scan returns it (`via` is
    /// [`Via::Pmxcfs`] for a published record).
    pub results: Vec<NodeResult>,
    /// When the data of a node read from its published record was read on
    /// that node.
    pub published_at: Vec<Option<u64>>,
    /// The snippets storages holding the hook file, as each node's
    /// published record says (`None`: not said).
    pub hook_storages: Vec<Option<Vec<String>>>,
    /// Why a node's published record was not used (`None`: it was).
    pub rejected: Vec<Option<(PathBuf, Rejected)>>,
    /// This node's record published again: where, or why it failed.
    pub republished: Option<Result<PathBuf, String>>,
    /// The cluster file system the records were read from.
    pub pve_dir: PathBuf,
}

/// Reads every node: published records first, then SSH (or the local
/// files) for the rest, in parallel as [`scan::scan`] does.
#[must_use]
pub fn gather(cluster: &Cluster, scan_opts: &scan::Options, o: &Options<'_>) -> Gathered {
    let n = cluster.nodes.len();
    let mut results: Vec<Option<NodeResult>> = vec![None; n];
    let mut published_at = vec![None; n];
    let mut hook_storages = vec![None; n];
    let mut rejected = vec![None; n];
    let mut rest = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let t = Instant::now();
        let path = published::path(o.pve_dir, &node.name);
        let mut found = published::load(o.pve_dir, &node.name, o.now, o.max_age);
        if node.local {
            found = found.and_then(|p| still_current(p, &scan_opts.local_cpuinfo));
        }
        match found {
            Ok(p) => {
                published_at[i] = Some(p.published_at);
                hook_storages[i].clone_from(&p.record.hook_storages);
                results[i] = Some(NodeResult {
                    node: node.clone(),
                    via: Via::Pmxcfs,
                    result: Ok(answer(p)),
                    elapsed: t.elapsed(),
                });
            }
            Err(why) => {
                if o.no_ssh && !node.local {
                    results[i] = Some(no_record(cluster, i, &path, &why));
                } else {
                    rest.push(i);
                }
                rejected[i] = Some((path, why));
            }
        }
    }
    let mut republished = None;
    if !rest.is_empty() {
        let sub = Cluster {
            nodes: rest.iter().map(|&i| cluster.nodes[i].clone()).collect(),
            ..cluster.clone()
        };
        for (r, &i) in scan::scan(&sub, scan_opts).into_iter().zip(&rest) {
            if let (Via::Local, Ok(a)) = (r.via, &r.result) {
                // This node's record is missing, stale, invalid or out of
                // date: publish what was just read, if QEMU was asked (a
                // record without QEMU's answer would be a poorer one than
                // `publish` writes).
                if a.kvm.is_none() {
                    results[i] = Some(r);
                    continue;
                }
                republished = Some(
                    publish::write_record(o.pve_dir, &r.node.name, a, o.now)
                        .map(|(p, _)| p)
                        .map_err(|e| e.to_string()),
                );
            }
            results[i] = Some(r);
        }
    }
    Gathered {
        results: results
            .into_iter()
            .map(|r| r.expect("every node has a result"))
            .collect(),
        published_at,
        hook_storages,
        rejected,
        republished,
        pve_dir: o.pve_dir.to_path_buf(),
    }
}

/// A node's published record as the answer a scan would have got.
fn answer(p: Published) -> Answer {
    let r = p.record;
    let kvm = match (r.kvm.clone(), r.kvm_error.clone()) {
        (Some(v), _) => Some(Ok(v)),
        (None, Some(e)) => Some(Err(e)),
        (None, None) => None,
    };
    Answer {
        info: r.cpu,
        kernel: r.kernel,
        kvm,
    }
}

/// This node's record, if its kernel and microcode are still the running
/// ones (a late microcode load or a reboot into another kernel can change
/// what KVM gives guests).
fn still_current(p: Published, cpuinfo_path: &Path) -> Result<Published, Rejected> {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string());
    let microcode = crate::reach::local::cpuinfo(cpuinfo_path)
        .ok()
        .and_then(|i| i.microcode);
    let mut changed = Vec::new();
    if kernel.is_some() && kernel != p.record.kernel {
        changed.push(format!(
            "kernel {} -> {}",
            p.record.kernel.as_deref().unwrap_or("?"),
            kernel.as_deref().unwrap_or("?")
        ));
    }
    if microcode != p.record.cpu.microcode {
        changed.push(format!(
            "microcode {} -> {}",
            p.record.cpu.microcode.as_deref().unwrap_or("?"),
            microcode.as_deref().unwrap_or("?")
        ));
    }
    if changed.is_empty() {
        Ok(p)
    } else {
        Err(Rejected::Outdated(changed.join(", ")))
    }
}

fn no_record(cluster: &Cluster, i: usize, path: &Path, why: &Rejected) -> NodeResult {
    let node = &cluster.nodes[i];
    NodeResult {
        node: node.clone(),
        via: Via::Skipped,
        result: Err(NodeFailure {
            node: node.name.clone(),
            address: node.address.clone(),
            stage: "no-record",
            message: format!("{} (SSH is off: --no-ssh)", why.describe(path)),
            note: Some(format!(
                "run `pve-cpuguard publish` on {} (the pve-cpuguard package does it at boot and hourly)",
                node.name
            )),
        }),
        elapsed: Duration::ZERO,
    }
}
