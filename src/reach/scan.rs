//! Scanning every node at once: the local node from its own file, the
//! others over SSH, each on its own thread and under its own deadline.
//!
//! A scan costs the slowest node's time, not the sum (ProxCLMC is
//! sequential). A node offline in `.members` is reported without being
//! contacted. The collector waits at most the timeout plus a short grace:
//! a thread stuck where no timeout reaches (a DNS lookup in libc) is
//! abandoned and its node reported as timed out, so the scan stays bounded.

use std::path::PathBuf;
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
}

/// Scans every node in parallel; results in the cluster's node order.
#[must_use]
pub fn scan(cluster: &Cluster, opts: &Options) -> Vec<NodeResult> {
    let start = Instant::now();
    let deadline = start + opts.ssh.timeout;
    let shared = Arc::new(opts.ssh.clone());
    let (tx, rx) = mpsc::channel::<(usize, Result<Answer, NodeFailure>, Duration)>();
    let mut results: Vec<Option<NodeResult>> = vec![None; cluster.nodes.len()];
    let mut pending = 0usize;
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
            let tx = tx.clone();
            let node = node.clone();
            let o = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("scan-{}", node.name))
                .spawn(move || {
                    let t = Instant::now();
                    let r = ssh::fetch(&node, &o, deadline);
                    let _ = tx.send((i, r, t.elapsed()));
                });
            match spawned {
                Ok(_) => pending += 1,
                Err(e) => {
                    results[i] = Some(NodeResult {
                        node: cluster.nodes[i].clone(),
                        via: Via::Ssh,
                        result: Err(NodeFailure {
                            node: cluster.nodes[i].name.clone(),
                            address: cluster.nodes[i].address.clone(),
                            stage: "local",
                            message: format!("cannot start a thread: {e}"),
                            note: None,
                        }),
                        elapsed: Duration::ZERO,
                    });
                }
            }
        }
    }
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
    let give_up = deadline + GRACE;
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
        .map(|(node, r)| {
            r.unwrap_or_else(|| NodeResult {
                node: node.clone(),
                via: Via::Ssh,
                result: Err(NodeFailure {
                    node: node.name.clone(),
                    address: node.address.clone(),
                    stage: "timeout",
                    message: format!(
                        "no answer within {:.1} s (the connection attempt did not return; a hanging DNS lookup?)",
                        opts.ssh.timeout.as_secs_f64()
                    ),
                    note: Some("use an IP address for this node in /etc/pve/.members or corosync.conf".into()),
                }),
                elapsed: start.elapsed(),
            })
        })
        .collect()
}
