//! `pve-cpuguard migrate <vmid> <target> [qm migrate options…]`: the
//! pre-flight for CLI migrations. Refuses with the full explanation and exit
//! 1 *without running qm*, or replaces itself with
//! `qm migrate <vmid> <target> <options…>`, the options untouched.

use std::os::unix::process::CommandExt;
use std::process::Command;

use std::time::Instant;

use crate::app::cli::MigrateArgs;
use crate::app::commands::vm_context;
use crate::cache::{self, NodeRecord, Update};
use crate::conf::settings::Settings;
use crate::cpu::capability::Capability;
use crate::error::{Error, ExitCode, Result};
use crate::guard::decision::{self as guard, Movement};
use crate::guard::fleet::FleetNode;
use crate::pve::cluster::{self, Sources};
use crate::pve::paths::{self, VmId};
use crate::reach::ssh;
use crate::syslog::{self, Severity};

/// Runs `migrate`.
///
/// # Errors
/// Bad arguments, an unknown VM, a VM on another node, or qm not runnable.
pub fn run(args: &MigrateArgs) -> Result<ExitCode> {
    let vmid: VmId = args.vmid.parse().map_err(Error::Usage)?;
    if !paths::valid_node_name(&args.target) {
        return Err(Error::Usage(format!(
            "invalid target node name {:?}",
            args.target
        )));
    }
    let (force, reason, qm_args) = own_options(args)?;
    // Read as qm reads them: what qm would take for a live migration must
    // be judged as one, and what it cannot read is refused before anything
    // else happens.
    let qm_options = crate::pve::qm_options::migrate(&qm_args).map_err(|e| {
        Error::Usage(format!(
            "{e}\nnote: qm reads these options as written (`qm help migrate` lists them); \
             correct them, then run the command again"
        ))
    })?;
    let settings = Settings::resolve(&args.common)?;
    let mut ctx = vm_context::load(&settings, vmid)?;
    if ctx.owner != settings.node {
        return Err(Error::Usage(format!(
            "VM {vmid} is on node '{}', not on this node '{}'\nnote: `qm migrate` only works on the VM's own node: run this there",
            ctx.owner, settings.node
        )));
    }
    if args.target == settings.node {
        return Err(Error::Usage(format!(
            "VM {vmid} is already on '{}'",
            args.target
        )));
    }
    // A target that is not a cluster node has no record to read and no
    // record to fall back on: say so, instead of "using its cached record".
    let (members, _) = settings.pve.scan_nodes()?;
    if !members.is_empty() && !members.contains(&args.target) {
        return Err(Error::Usage(format!(
            "'{}' is not a node of this cluster (nodes in {}: {})\n\
             note: `pvecm nodes` lists the cluster's nodes; name one of them as the target",
            args.target,
            settings.pve.root().join("nodes").display(),
            members.join(", ")
        )));
    }
    let wants_online = qm_options.online;
    let live = wants_online && vm_context::running(&args.run_dir, vmid);
    if live {
        ctx.read_running(&settings, &args.run_dir);
    }
    let movement = if live {
        Movement::Live {
            source: &settings.node,
        }
    } else {
        Movement::Offline {
            source: &settings.node,
        }
    };

    // The cache decides; only a missing or stale target record is read
    // again, from the target alone, over SSH.
    let record = ctx.fleet.get(&args.target);
    let stale = record.is_none_or(FleetNode::is_stale);
    let mut notes = Vec::new();
    let mut refresh_note: Option<String> = None;
    if wants_online && !live {
        // qm migrate moves a stopped VM offline even with --online, so the
        // target is judged as a cold start (PVE::QemuMigrate: `online`
        // only when the VM runs).
        notes.push(format!(
            "VM {vmid} is not running on '{}' (no live QEMU process in {}), so `--online` \
             moves it offline: it is checked as a cold start on '{}'",
            settings.node,
            args.run_dir.join(format!("{vmid}.pid")).display(),
            args.target
        ));
    }
    let refreshed = if stale {
        match refresh(&settings, args, &args.target) {
            Ok(cap) => {
                notes.push(format!(
                    "the record of '{}' was stale or missing; read it again just now",
                    args.target
                ));
                Some(cap)
            }
            Err(e) => {
                // The error's own note is said last, on its own line.
                let text = e.to_string();
                let (what, note) = match text.split_once("\nnote: ") {
                    Some((w, n)) => (w.to_string(), Some(n.to_string())),
                    None => (text, None),
                };
                let usable = record.and_then(|t| t.capability()).is_some();
                notes.push(format!(
                    "could not read '{}' again ({what}){}",
                    args.target,
                    if usable {
                        "; using its cached record"
                    } else {
                        ""
                    }
                ));
                refresh_note = note;
                None
            }
        }
    } else {
        None
    };
    let Some(target_cap) = refreshed
        .as_ref()
        .or_else(|| record.and_then(|t| t.capability()))
    else {
        return Err(Error::Config(format!(
            "no CPU data for node '{}': no cached record, and {}\nnote: run `pve-cpuguard scan` here, \
             or `pve-cpuguard publish` on '{}'{}",
            args.target,
            notes.join("; "),
            args.target,
            refresh_note.map_or(String::new(), |n| format!("; {n}"))
        )));
    };
    let mut d = guard::decide(
        &ctx.label,
        &ctx.specs(),
        &args.target,
        target_cap,
        movement,
        &ctx.fleet,
        ctx.rules,
    );
    if refreshed.is_none() && stale {
        if let Some(t) = record.filter(|t| t.capability().is_some()) {
            // In the words of `status`, plain: warnings also go to the log.
            d.warnings.push(format!(
                "the record of '{}': {}",
                args.target,
                t.freshness.text(t.source.as_deref(), str::to_string)
            ));
        }
    }
    d.verdict.notes.extend(notes);

    if d.allow {
        if !d.warnings.is_empty() {
            eprint!(
                "{}",
                crate::app::output::for_stderr(&crate::error::shorten_quotes(&d.explain()))
            );
            syslog::log(Severity::Warning, &d.one_line());
        }
    } else if force {
        let who = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let msg = format!(
            "override by {who} ({}): {} -- {}",
            reason.unwrap_or_default(),
            d.one_line(),
            "running qm anyway"
        );
        eprint!(
            "{}",
            crate::app::output::for_stderr(&format!("pve-cpuguard: WARNING: {msg}\n"))
        );
        syslog::log(Severity::Warning, &msg);
    } else {
        eprint!(
            "{}",
            crate::app::output::for_stderr(&crate::error::shorten_quotes(&d.explain()))
        );
        eprintln!(
            "{}",
            crate::app::output::for_stderr(&format!(
                "  note: qm was not run; to override: pve-cpuguard migrate --force-unsafe --reason TEXT {vmid} {} …",
                args.target
            ))
        );
        if let Some(w) = crate::guard::refusals::log(&settings.state_dir, &d, || ()) {
            eprintln!(
                "{}",
                crate::app::output::for_stderr(&format!("pve-cpuguard: warning: {w}"))
            );
        }
        return Ok(ExitCode::Refused);
    }

    let err = Command::new(&args.qm.path)
        .arg("migrate")
        .arg(vmid.to_string())
        .arg(&args.target)
        .args(&qm_args)
        .exec();
    Err(Error::Config(format!(
        "cannot run {}: {err}",
        args.qm.path.display()
    )))
}

/// Reads one node again over SSH and stores the result in the cache (under
/// the writers' lock, every other record kept).
fn refresh(
    settings: &Settings,
    args: &MigrateArgs,
    name: &str,
) -> std::result::Result<Capability, String> {
    let cluster = cluster::load(&Sources {
        pve_dir: settings.pve.root(),
        corosync: None,
        node: Some(&settings.node),
    })
    .map_err(|e| e.to_string())?;
    let node = cluster
        .nodes
        .iter()
        .find(|n| n.name == name)
        .ok_or_else(|| format!("'{name}' is not in the cluster's node list"))?;
    let mut opts = args
        .ssh
        .resolve(&settings.config, settings.pve.root())
        .map_err(|e| e.to_string())?;
    opts.probe = args.probe.accel();
    let answer =
        ssh::fetch(node, &opts, Instant::now() + opts.timeout).map_err(|f| f.to_string())?;
    let record = NodeRecord::new(
        name,
        &node.address,
        &answer.info,
        answer.kernel,
        cache::now(),
    )
    .with_kvm(answer.kvm);
    let capability = record.capability();
    let stored = (|| -> crate::error::Result<()> {
        let writer = cache::Writer::lock(&settings.cache)?;
        let (prev, _) = writer.load()?;
        writer.store(&prev.with_update(&Update::Scanned(Box::new(record)), cache::now()))
    })();
    if let Err(e) = stored {
        eprint!(
            "{}",
            crate::app::output::for_stderr(&format!(
                "pve-cpuguard: warning: could not update the cache: {e}\n"
            ))
        );
    }
    Ok(capability)
}

/// Takes `--force-unsafe` and `--reason` out of the pass-through options
/// (they are not qm options; users may write them after the target).
fn own_options(args: &MigrateArgs) -> Result<(bool, Option<String>, Vec<String>)> {
    let mut force = args.force_unsafe;
    let mut reason = args.reason.clone();
    let mut rest = Vec::new();
    let mut it = args.qm_args.iter();
    while let Some(a) = it.next() {
        if a == "--force-unsafe" {
            force = true;
        } else if a == "--reason" {
            reason = Some(
                it.next()
                    .cloned()
                    .ok_or_else(|| Error::Usage("--reason needs a value".into()))?,
            );
        } else if let Some(r) = a.strip_prefix("--reason=") {
            reason = Some(r.to_string());
        } else {
            rest.push(a.clone());
        }
    }
    if force && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(Error::Usage(
            "--force-unsafe needs --reason TEXT saying why".into(),
        ));
    }
    Ok((force, reason, rest))
}
