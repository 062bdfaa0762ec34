//! `pve-cpuguard scan`: read every node, update the cache, report.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use crate::app::cli::ScanArgs;
use crate::app::commands::node_list;
use crate::app::gather;
use crate::app::output::{self, Format};
use crate::app::paint;
use crate::cache::published::{self, Rejected};
use crate::cache::{self, Cache, NodeRecord, Update};
use crate::conf::config::Config;
use crate::error::{ExitCode, Result};
use crate::pve::cluster::{self, Sources};
use crate::reach::kvm_probe::ProbeOptions;
use crate::reach::pvesh::{self, Opinion};
use crate::reach::scan::{self, NodeResult, Via};
use crate::reach::ssh::{self, Answer};
use crate::syslog::{self, Severity};

/// Runs `scan`.
///
/// # Errors
/// Configuration errors (corosync.conf, .members, options) and a cache that
/// cannot be written (reported after the results are printed).
pub fn run(args: &ScanArgs, format: Format) -> Result<ExitCode> {
    // Flag > environment (both via clap) > configuration file > default.
    let (conf, cache_path) = args.cache.resolve()?;
    let max_age = args.cache.max_age(&conf);
    let pve_dir = Config::pick(
        args.pve_dir.clone(),
        conf.pve_dir.as_ref(),
        "/etc/pve".into(),
    );
    let cluster = cluster::load(&Sources {
        pve_dir: &pve_dir,
        corosync: args.corosync.as_deref(),
        node: args.node.as_deref(),
    })?;
    let ssh_opts = ssh::Options {
        probe: args.probe.accel(),
        ..args.ssh.resolve(&conf, &pve_dir)?
    };
    let timeout = ssh_opts.timeout;
    let opts = scan::Options {
        ssh: ssh_opts,
        local_cpuinfo: args.cpuinfo.cpuinfo.clone(),
        local_probe: args.probe.accel().map(|accel| ProbeOptions {
            qemu: args.qemu.clone(),
            timeout,
            ..ProbeOptions::new(accel)
        }),
        workers: usize::from(args.workers),
    };
    let now = cache::now();
    // Proxmox VE's own answer, asked beside the gather under the same
    // per-node bound.
    let pvesh_bin = args.pvesh.clone();
    let asked = std::thread::Builder::new()
        .name("pvesh".into())
        .spawn(move || pvesh::ask(&pvesh_bin, timeout));
    let mut gathered = gather::gather(
        &cluster,
        &opts,
        &gather::Options {
            pve_dir: &pve_dir,
            max_age,
            no_ssh: args.no_ssh || conf.no_ssh == Some(true),
            now,
        },
    );
    let opinion = asked
        .ok()
        .and_then(|h| h.join().ok())
        .unwrap_or_else(|| Opinion::Problem("cannot start a thread to run pvesh".into()));
    let filled = fill_from_pvestatd(&mut gathered.results, &opinion, now);
    let results = &gathered.results;
    let updates: Vec<Update> = results
        .iter()
        .zip(&gathered.published_at)
        .zip(&gathered.hook_storages)
        .map(|((r, published_at), hook_storages)| match &r.result {
            Ok(a) => {
                let mut rec = NodeRecord::new(
                    &r.node.name,
                    &r.node.address,
                    &a.info,
                    a.kernel.clone(),
                    published_at.unwrap_or(now),
                )
                .with_kvm(a.kvm.clone());
                rec.source = Some(r.via.as_str().to_string());
                rec.hook_storages = match r.via {
                    Via::Local => {
                        crate::pve::hook_files::local(&pve_dir, crate::guard::audit::HOOK_FILE_NAME)
                    }
                    _ => hook_storages.clone(),
                };
                Update::Scanned(Box::new(rec))
            }
            Err(f) => Update::Failed {
                name: r.node.name.clone(),
                address: r.node.address.clone(),
                error: format!("{}: {}", f.stage, f.message),
            },
        })
        .collect();

    // Only worth saying when it cost something: some node could not be read.
    let mut warnings: Vec<String> = not_a_member(&cluster)
        .filter(|_| gathered.results.iter().any(|r| r.result.is_err()))
        .into_iter()
        .collect();
    warnings.extend(published_warnings(&gathered));
    if let Opinion::Problem(p) = &opinion {
        warnings.push(format!(
            "{p}\nnote: Proxmox VE's own CPU flags (pvestatd) were not compared; \
             the scan went on without them"
        ));
    }
    let path = &cache_path;
    let mut before = std::collections::BTreeMap::new();
    let written = (|| -> Result<Cache> {
        let writer = cache::Writer::lock(path)?;
        let (prev, problem) = writer.load()?;
        if let Some(p) = problem {
            warnings.push(p.to_string());
        }
        let mut next = prev.merge(cluster.name.clone(), &updates, now);
        before.clone_from(&prev.admissions);
        // For `status`: which VMs the guard covers, as of this refresh.
        next.coverage = crate::guard::coverage::count(&crate::pve::paths::PveDir::new(&pve_dir));
        writer.store(&next)?;
        Ok(next)
    })();
    let (next, write_error) = match written {
        Ok(c) => (c, None),
        Err(e) => (
            Cache::default().merge(cluster.name.clone(), &updates, now),
            Some(e),
        ),
    };

    // A QEMU probe that failed is never silent: the node is then judged
    // from /proc/cpuinfo, which may show more than KVM can give.
    // (Every warning goes to the journal below.)
    for r in results {
        if let (Ok(a), Some(rec)) = (&r.result, next.node(&r.node.name)) {
            if let Some(Err(e)) = &a.kvm {
                let msg = format!("{}: {}", rec.name, cache::truth::probe_failed(e));
                warnings.push(msg);
            }
        }
    }
    let disagreements = second_opinion(results, &next, &opinion);
    warnings.extend(disagreements.iter().map(|d| d.message.clone()));
    // Admission: which VMs a node that appeared or weakened no longer takes.
    let admitted = crate::guard::audit_input::admitted(
        &crate::pve::paths::PveDir::new(&pve_dir),
        &next.nodes,
        &next
            .admissions
            .iter()
            .filter(|(n, a)| before.get(*n) != Some(*a))
            .map(|(n, a)| (n.clone(), a.clone()))
            .collect(),
        now,
    )
    .unwrap_or_else(|e| {
        warnings.push(format!(
            "cannot tell which VMs the changed nodes no longer take: {e}"
        ));
        Vec::new()
    });
    let failed = results.iter().filter(|r| r.result.is_err()).count();
    log_results(results, &next, failed);
    for a in &admitted {
        syslog::log(Severity::Warning, &format!("scan: {}", admission_line(a)));
    }
    // auto_attach and ha_rules (off by default) work from the fresh cache.
    let duties = if write_error.is_none() {
        let local = cluster.local().map(|n| n.name.clone()).unwrap_or_default();
        crate::app::commands::after_scan::run(
            &conf,
            &crate::app::commands::after_scan::Paths {
                config: &conf.path,
                pve_dir: &pve_dir,
                cache: path,
                cpuinfo: &args.cpuinfo.cpuinfo,
                node: &local,
            },
            &args.duties,
        )
    } else {
        Vec::new()
    };
    for w in &warnings {
        syslog::log(Severity::Warning, &format!("scan: {w}"));
    }
    if format == Format::Json {
        let mut v = to_json(&gathered, &next, path, (now, max_age), &warnings);
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "pvestatd".into(),
                pvestatd_json(&args.pvesh, &opinion, &filled, &disagreements),
            );
            o.insert("admissions".into(), json!(admitted));
            if !duties.is_empty() {
                o.insert("after_scan".into(), json!(duties));
            }
        }
        output::print_json(&v)?;
    } else {
        for w in &warnings {
            eprintln!(
                "{}",
                crate::app::output::for_stderr(&format!("pve-cpuguard: warning: {w}"))
            );
        }
        let mut t = text(results, &next, (now, max_age));
        if !admitted.is_empty() {
            t.push_str("\nAdmission (new nodes, or a CPU capability that dropped):\n");
            for a in &admitted {
                let _ = writeln!(t, "  {}", admission_line(a));
            }
        }
        for d in &duties {
            t.push_str(d);
            t.push('\n');
        }
        // The node lines are ProxCLMC's and short; all else is prose.
        output::print_wrapped(&t)?;
    }
    if let Some(e) = write_error {
        return Err(e);
    }
    Ok(if failed == 0 {
        ExitCode::Ok
    } else {
        ExitCode::Refused
    })
}

/// Nodes that could not be read (but are not offline) and that pvestatd's
/// list names: their answer is built from that list. Returns their names.
fn fill_from_pvestatd(results: &mut [NodeResult], opinion: &Opinion, now: u64) -> Vec<String> {
    let Opinion::Flags(f) = opinion else {
        return Vec::new();
    };
    let mut filled = Vec::new();
    for r in results.iter_mut() {
        let Err(failure) = &r.result else { continue };
        if failure.stage == "offline" {
            continue;
        }
        let Some(set) = f.nodes.get(&r.node.name) else {
            continue;
        };
        let rec = cache::pvestatd::record(&r.node.name, &r.node.address, set, now);
        r.result = Ok(Answer {
            info: rec.cpu,
            kernel: None,
            kvm: rec.kvm.map(Ok),
        });
        r.via = Via::Pvestatd;
        filled.push(r.node.name.clone());
    }
    filled
}

/// Where pvestatd's list disagrees with the records of the nodes read
/// otherwise.
fn second_opinion(
    results: &[NodeResult],
    cache: &Cache,
    opinion: &Opinion,
) -> Vec<cache::pvestatd::Disagreement> {
    let Opinion::Flags(f) = opinion else {
        return Vec::new();
    };
    results
        .iter()
        .filter(|r| r.result.is_ok() && r.via != Via::Pvestatd)
        .filter_map(|r| {
            let set = f.nodes.get(&r.node.name)?;
            cache::pvestatd::compare(cache.node(&r.node.name)?, set)
        })
        .collect()
}

/// The `pvestatd` object of the JSON: whether Proxmox VE's own list was
/// read, the nodes filled in from it and where it disagrees.
fn pvestatd_json(
    binary: &std::path::Path,
    opinion: &Opinion,
    filled: &[String],
    disagreements: &[cache::pvestatd::Disagreement],
) -> Value {
    let command: Vec<String> = std::iter::once(binary.display().to_string())
        .chain(pvesh::ARGS.iter().map(|a| (*a).to_string()))
        .collect();
    match opinion {
        Opinion::Absent(_) => json!({
            "status": "absent",
            "command": command,
            "message": format!(
                "{} not found: Proxmox VE's own CPU flags (PVE 9.2 and later) not compared",
                binary.display()
            ),
        }),
        Opinion::Problem(m) => json!({
            "status": "problem",
            "command": command,
            "message": m,
        }),
        Opinion::Flags(f) => json!({
            "status": "used",
            "command": command,
            "nodes": f.nodes.keys().collect::<Vec<_>>(),
            "unknown_flags": f.unknown,
            "filled": filled,
            "disagreements": disagreements,
        }),
    }
}

/// One admission in words: `pve2 lost avx512f; …: VMs 100, 101 can no
/// longer start or live-migrate there`.
pub(crate) fn admission_line(a: &crate::guard::audit_input::Admitted) -> String {
    if a.vms.is_empty() {
        return format!("{}: every VM that could start there still can", a.message);
    }
    let ids: Vec<String> = a.vms.iter().map(u32::to_string).collect();
    if ids.len() <= ADMISSION_NAMED {
        return format!(
            "{}: VM{} {} can no longer start or live-migrate there",
            a.message,
            if ids.len() == 1 { "" } else { "s" },
            ids.join(", ")
        );
    }
    // A new node on a big cluster may leave hundreds of VMs behind: a
    // count, the first few, and where the whole list is (JSON has it too).
    format!(
        "{}: {} VMs can no longer start or live-migrate there, e.g. {}, …; \
         `pve-cpuguard audit --finding node-admission` lists them",
        a.message,
        ids.len(),
        ids[..ADMISSION_EXAMPLES].join(", ")
    )
}

/// Up to this many VMs an admission names them all; beyond, it names
/// [`ADMISSION_EXAMPLES`] and counts the rest.
const ADMISSION_NAMED: usize = 8;
const ADMISSION_EXAMPLES: usize = 5;

/// When this host is not one of corosync.conf's nodes (and no --node names
/// it), nothing is read locally: every node, this one too, comes from its
/// published record or SSH. Said when some node failed, with how to name
/// this node.
fn not_a_member(cluster: &cluster::Cluster) -> Option<String> {
    if cluster.local().is_some() {
        return None;
    }
    Some(format!(
        "this host ('{}') is not a node in {} (nodes: {}), so every node is read from its \
         published record or over SSH\n\
         note: run the scan on a cluster node; if this is one under another host name, \
         name it with --node NAME (PVE_CPUGUARD_NODE)",
        cluster::hostname().unwrap_or_else(|| "unknown".into()),
        cluster.corosync_path.display(),
        cluster
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The scan's outcome and any drift go to the system log, so `journalctl
/// -t pve-cpuguard` shows when a node changed or stopped answering.
fn log_results(results: &[NodeResult], cache: &Cache, failed: usize) {
    let mut msg = format!(
        "scan: {} of {} nodes answered",
        results.len() - failed,
        results.len()
    );
    for r in results {
        match &r.result {
            Ok(_) => {
                if let Some(rec) = cache.node(&r.node.name) {
                    let _ = write!(msg, "; {} {}", r.node.name, rec.level);
                }
            }
            Err(f) => {
                let _ = write!(msg, "; {} failed ({}: {})", r.node.name, f.stage, f.message);
            }
        }
    }
    syslog::log(
        if failed == 0 {
            Severity::Info
        } else {
            Severity::Warning
        },
        &msg,
    );
    for d in &cache.drift {
        syslog::log(Severity::Notice, &format!("drift: {}", d.message));
    }
}

fn text(results: &[NodeResult], cache: &Cache, (now, max_age): (u64, u64)) -> String {
    let mut s = String::new();
    let mut truths = Vec::new();
    let _ = writeln!(s, "{}", node_list::HEADER);
    for r in results {
        if let (Ok(_), Some(rec)) = (&r.result, cache.node(&r.node.name)) {
            let t = cache::truth::of_record(rec);
            let _ = writeln!(
                s,
                "{}",
                node_list::node_line(&rec.name, &rec.address, t.level_name())
            );
            truths.push((rec.name.as_str(), t));
        }
    }
    let _ = writeln!(s);
    s.push_str(&node_list::cluster_block(
        node_list::cluster_type(cache),
        cache.nodes.len(),
        &node_list::never_scanned(cache),
    ));
    s.push_str(&node_list::truth_block(&truths));

    let failures: Vec<&NodeResult> = results.iter().filter(|r| r.result.is_err()).collect();
    if !failures.is_empty() {
        let _ = writeln!(
            s,
            "\nFailed nodes ({} of {}):",
            failures.len(),
            results.len()
        );
        for r in &failures {
            let Err(f) = &r.result else { continue };
            let _ = writeln!(s, "  {}", f.to_string().replace('\n', "\n    "));
            match cache.node(&r.node.name) {
                Some(rec) => {
                    let _ = writeln!(
                        s,
                        "    last known: {} ({}), kept: {}",
                        node_list::level_of(rec),
                        rec.cpu.model_name,
                        node_list::age_text(rec, now, max_age)
                    );
                }
                None => {
                    let _ = writeln!(s, "    {}", paint::stale("never scanned"));
                }
            }
        }
        let stale: Vec<&str> = failures
            .iter()
            .filter(|r| cache.node(&r.node.name).is_some())
            .map(|r| r.node.name.as_str())
            .collect();
        if !stale.is_empty() {
            let _ = writeln!(
                s,
                "note: the cluster CPU type above uses last-known data for {}",
                stale.join(", ")
            );
        }
    }
    s.push_str(&sources_text(results, cache, (now, max_age)));
    if !cache.drift.is_empty() {
        let _ = writeln!(s, "\nDrift since the last scan:");
        for d in &cache.drift {
            let _ = writeln!(s, "  {}", d.message);
        }
    }
    s
}

/// Records that exist but were not used, and this node's record if it
/// could not be published again. A missing record is not a warning: it is
/// the normal state while the package is being rolled out (JSON shows it).
fn published_warnings(g: &gather::Gathered) -> Vec<String> {
    let mut w: Vec<String> = g
        .rejected
        .iter()
        .flatten()
        .filter(|(_, why)| *why != Rejected::Missing)
        .map(|(p, why)| {
            let node = p
                .parent()
                .and_then(Path::file_name)
                .map_or_else(|| "that node".into(), |n| n.to_string_lossy());
            match why {
                Rejected::Stale { .. } | Rejected::Outdated(_) => format!(
                    "{}\nnote: run `pve-cpuguard publish` on {node}, or check its timer there \
                     (`systemctl status pve-cpuguard-refresh.timer`)",
                    why.describe(p)
                ),
                _ => why.describe(p),
            }
        })
        .collect();
    if let Some(Err(e)) = &g.republished {
        w.push(format!(
            "cannot publish this node's record: {e}\nnote: is /etc/pve read-only (no quorum)? `pvecm status`; the next refresh tries again"
        ));
    }
    w
}

/// Where each node's data came from and how old it is, when some came from
/// published records (an all-SSH scan prints exactly ProxCLMC's text).
fn sources_text(results: &[NodeResult], cache: &Cache, (now, max_age): (u64, u64)) -> String {
    let mut s = String::new();
    if !results
        .iter()
        .any(|r| matches!(r.via, Via::Pmxcfs | Via::Pvestatd))
    {
        return s;
    }
    let _ = writeln!(s, "\nSources:");
    for r in results.iter().filter(|r| r.result.is_ok()) {
        if let Some(rec) = cache.node(&r.node.name) {
            let _ = writeln!(
                s,
                "  {}: {}",
                r.node.name,
                node_list::age_text(rec, now, max_age)
            );
        }
    }
    s
}

fn to_json(
    g: &gather::Gathered,
    cache: &Cache,
    path: &std::path::Path,
    (now, max_age): (u64, u64),
    warnings: &[String],
) -> Value {
    let results = &g.results;
    let nodes: Vec<Value> = results
        .iter()
        .zip(&g.rejected)
        .map(|(r, rejected)| {
            let rec = cache.node(&r.node.name);
            json!({
                "name": r.node.name,
                "address": r.node.address,
                "address_source": r.node.address_source.as_str(),
                "nodeid": r.node.nodeid,
                "local": r.node.local,
                "online": r.node.online,
                "via": r.via.as_str(),
                "source": r.result.is_ok().then(|| r.via.as_str()),
                "age_seconds": rec
                    .filter(|_| r.result.is_ok())
                    .and_then(|x| x.freshness(now, max_age).age()),
                "published": match rejected {
                    None => json!({
                        "used": true,
                        "path": published::path(&g.pve_dir, &r.node.name),
                    }),
                    Some((p, why)) => json!({
                        "used": false,
                        "path": p,
                        "problem": why.kind(),
                        "message": why.describe(p),
                    }),
                },
                "status": if r.result.is_ok() { "ok" } else { "failed" },
                "elapsed_ms": u64::try_from(r.elapsed.as_millis()).unwrap_or(u64::MAX),
                "level": rec.map(node_list::level_of),
                "error": r.result.as_ref().err().map(|f| json!({
                    "stage": f.stage,
                    "message": f.message,
                    "note": f.note,
                })),
                "record": rec.map(|x| node_list::record_json(x, now, max_age)),
            })
        })
        .collect();
    json!({
        "cluster": cache.cluster,
        "cache": path,
        "nodes": nodes,
        "cluster_cpu_type": node_list::cluster_type_claimed(cache),
        "stale_nodes": node_list::stale_names(cache, now, max_age),
        "nodes_without_data": cache.unscanned.keys().collect::<Vec<_>>(),
        "failed": results.iter().filter(|r| r.result.is_err()).count(),
        "drift": cache.drift,
        "warnings": warnings,
        "republished": g.republished.as_ref().map(|r| match r {
            Ok(p) => json!({ "path": p }),
            Err(e) => json!({ "error": e }),
        }),
    })
}
