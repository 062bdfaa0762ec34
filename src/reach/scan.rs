//! Scanning every node in parallel: the local node from its own file, the
//! others over SSH by a pool of worker threads ([`Options::workers`]; `scan
//! --workers`, 16 by default), each node under its own deadline.
//!
//! With no more nodes than workers a scan costs the slowest node's time,
//! not the sum (ProxCLMC is sequential); beyond that, one per-node timeout
//! per round of workers. Threads and memory stay bounded whatever the node
//! list says (10 000 nodes do not make 10 000 threads). A node offline in
//! `.members` is reported without being contacted. The collector waits at
//! most the rounds' time plus a short grace: a worker stuck where no
//! timeout reaches (a DNS lookup in libc) is abandoned and its node
//! reported as timed out, so the scan stays bounded.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::error::NodeFailure;
use crate::pve::cluster::{Cluster, Node};
use crate::reach::kvm_probe::ProbeOptions;
use crate::reach::ssh::{self, Answer};

/// Extra time the collector grants beyond the per-node deadline.
const GRACE: Duration = Duration::from_millis(1500);

/// How a node was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The local file.
    Local,
    /// SSH.
    Ssh,
    /// Not contacted (offline, or no SSH allowed).
    Skipped,
    /// The node's own record, published through /etc/pve (no network).
    Pmxcfs,
    /// Proxmox VE's own flag list (pvestatd, through `pvesh`), for a node
    /// with neither a usable record nor SSH.
    Pvestatd,
}

impl Via {
    /// Stable name for JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Local => "local",
            Via::Ssh => "ssh",
            Via::Skipped => "skipped",
            Via::Pmxcfs => "pmxcfs",
            Via::Pvestatd => "pvestatd",
        }
    }
}

/// One node's result.
#[derive(Debug, Clone)]
pub struct NodeResult {
    /// The node.
    pub node: Node,
    /// How it was read.
    pub via: Via,
    /// What it said, or why not.
    pub result: Result<Answer, NodeFailure>,
    /// How long it took.
    pub elapsed: Duration,
}

/// Scan settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// SSH settings (including the per-node timeout).
    pub ssh: ssh::Options,
    /// The local node's cpuinfo file.
    pub local_cpuinfo: PathBuf,
    /// How to ask this node's QEMU (the remote nodes use `ssh.probe`).
    pub local_probe: Option<ProbeOptions>,
    /// How many nodes are reached at once (at least 1).
    pub workers: usize,
}

/// Stack of a worker thread: SSH and TLS need little; the default 2 MiB
/// would only reserve address space.
const WORKER_STACK: usize = 512 * 1024;

/// Scans every node in parallel; results in the cluster's node order.
#[must_use]
pub fn scan(cluster: &Cluster, opts: &Options) -> Vec<NodeResult> {
    let start = Instant::now();
    let timeout = opts.ssh.timeout;
    let mut results: Vec<Option<NodeResult>> = vec![None; cluster.nodes.len()];
    let mut remote: Vec<(usize, Node)> = Vec::new();
    let mut local = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        if node.local {
            // Read after the remote nodes are started: the local QEMU probe
            // must not delay them.
            local.push(i);
        } else if node.online == Some(false) {
            results[i] = Some(NodeResult {
                node: node.clone(),
                via: Via::Skipped,
                result: Err(NodeFailure {
                    node: node.name.clone(),
                    address: node.address.clone(),
                    stage: "offline",
                    message: "offline in /etc/pve/.members; not contacted".into(),
                    note: Some("the cluster sees this node as down; its last known record (if any) is kept".into()),
                }),
                elapsed: Duration::ZERO,
            });
        } else {
            remote.push((i, node.clone()));
        }
    }
    let workers = opts.workers.max(1).min(remote.len());
    let rounds = if workers == 0 {
        0
    } else {
        remote.len().div_ceil(workers)
    };
    let give_up = start + timeout * u32::try_from(rounds).unwrap_or(u32::MAX) + GRACE;
    let started: Arc<Vec<AtomicBool>> = Arc::new(
        (0..cluster.nodes.len())
            .map(|_| AtomicBool::new(false))
            .collect(),
    );
    let (tx, rx) = mpsc::channel::<(usize, Result<Answer, NodeFailure>, Duration)>();
    let queue = Arc::new(remote);
    let next = Arc::new(AtomicUsize::new(0));
    let shared = Arc::new(opts.ssh.clone());
    let mut running = 0usize;
    for w in 0..workers {
        let (tx, queue, next, o, started) = (
            tx.clone(),
            Arc::clone(&queue),
            Arc::clone(&next),
            Arc::clone(&shared),
            Arc::clone(&started),
        );
        let spawned = std::thread::Builder::new()
            .name(format!("scan-{w}"))
            .stack_size(WORKER_STACK)
            .spawn(move || loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some((i, node)) = queue.get(k) else { break };
                if Instant::now() >= give_up {
                    break;
                }
                started[*i].store(true, Ordering::SeqCst);
                let t = Instant::now();
                let r = ssh::fetch(node, &o, t + timeout);
                if tx.send((*i, r, t.elapsed())).is_err() {
                    break;
                }
            });
        if spawned.is_ok() {
            running += 1;
        }
    }
    if running == 0 {
        for (i, node) in queue.iter() {
            results[*i] = Some(NodeResult {
                node: node.clone(),
                via: Via::Ssh,
                result: Err(NodeFailure {
                    node: node.name.clone(),
                    address: node.address.clone(),
                    stage: "local",
                    message: "cannot start a worker thread".into(),
                    note: None,
                }),
                elapsed: Duration::ZERO,
            });
        }
    }
    let mut pending = if running == 0 { 0 } else { queue.len() };
    for i in local {
        let node = &cluster.nodes[i];
        let t = Instant::now();
        let r = ssh::read_local(node, &opts.local_cpuinfo, opts.local_probe.as_ref());
        results[i] = Some(NodeResult {
            node: node.clone(),
            via: Via::Local,
            result: r,
            elapsed: t.elapsed(),
        });
    }
    drop(tx);
    while pending > 0 {
        let left = give_up.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, r, elapsed)) => {
                pending -= 1;
                results[i] = Some(NodeResult {
                    node: cluster.nodes[i].clone(),
                    via: Via::Ssh,
                    result: r,
                    elapsed,
                });
            }
            Err(_) => break,
        }
    }
    cluster
        .nodes
        .iter()
        .zip(results)
        .enumerate()
        .map(|(i, (node, r))| {
            r.unwrap_or_else(|| NodeResult {
                node: node.clone(),
                via: Via::Ssh,
                result: Err(if started[i].load(Ordering::SeqCst) {
                    NodeFailure {
                        node: node.name.clone(),
                        address: node.address.clone(),
                        stage: "timeout",
                        message: format!(
                            "no answer within {:.1} s (the connection attempt did not return; a hanging DNS lookup?)",
                            timeout.as_secs_f64()
                        ),
                        note: Some("use an IP address for this node in /etc/pve/.members or corosync.conf".into()),
                    }
                } else {
                    NodeFailure {
                        node: node.name.clone(),
                        address: node.address.clone(),
                        stage: "timeout",
                        message: format!(
                            "not contacted: the scan's time ran out while its {workers} workers waited on nodes that did not answer"
                        ),
                        note: Some("raise --workers, or fix the nodes reported as timed out".into()),
                    }
                }),
                elapsed: start.elapsed(),
            })
        })
        .collect()
}
