//! `pve-cpuguard attach` and `detach`: put the guard's hookscript on VMs of
//! this node, keeping each VM's own hookscript chained behind it, and take
//! it off again exactly. Plans come from [`crate::guard::rollout`]; this module
//! copies the hook file, edits chain.conf and runs `qm` — directly, never
//! through a shell — or, with `--dry-run`, only says what it would do.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::app::cli::{AttachArgs, DetachArgs, VmSelection};
use crate::app::output::{self, Format};
use crate::conf::settings::Settings;
use crate::error::{Error, ExitCode, Result};
use crate::guard::chain;
use crate::guard::rollout::{self, Action, FileAction, VmState};
use crate::pve::paths::VmId;
use crate::pve::storage::{self, Storage};
use crate::pve::vmconf;
use crate::syslog::{self, Severity};

/// The VMs selected, with their current state, and how many VMs of other
/// nodes `--all` left alone (node → count).
fn select(
    settings: &Settings,
    sel: &VmSelection,
) -> Result<(Vec<VmState>, BTreeMap<String, usize>)> {
    let (_, found) = settings.pve.scan_nodes()?;
    let mut elsewhere: BTreeMap<String, usize> = BTreeMap::new();
    let ids: Vec<VmId> = if sel.all {
        found
            .iter()
            .filter(|(_, node)| {
                let here = **node == settings.node;
                if !here {
                    *elsewhere.entry((*node).clone()).or_default() += 1;
                }
                here
            })
            .map(|(id, _)| *id)
            .collect()
    } else {
        sel.vmids
            .iter()
            .map(|s| s.parse::<VmId>().map_err(Error::Usage))
            .collect::<Result<_>>()?
    };
    let mut vms = Vec::with_capacity(ids.len());
    for vmid in ids {
        let node = found.get(&vmid).cloned();
        let conf = match &node {
            Some(n) => Some(vmconf::read(&settings.pve.vm_config(n, vmid))?),
            None => None,
        };
        vms.push(VmState {
            vmid,
            name: conf.as_ref().and_then(|c| c.name.clone()),
            node,
            hookscript: conf.and_then(|c| c.hookscript),
        });
    }
    Ok((vms, elsewhere))
}

/// Runs `qm` with exactly these arguments, bounded in time (60 s) and
/// output like the `ha-manager` calls: `scan` runs it unattended
/// (`auto_attach`), where a `qm set` stuck on a hung pmxcfs lock must not
/// hold the refresh service forever. Its stderr is in the error.
fn run_qm(qm: &Path, args: &[String]) -> std::result::Result<(), String> {
    crate::app::commands::ha_rules::run_call(qm, args)
}

/// Makes sure the hook file is in the storage's snippets directory.
pub(crate) fn install_hook_file(
    shipped_path: &Path,
    storage: &Storage,
    dry_run: bool,
) -> Result<(PathBuf, FileAction)> {
    let shipped = crate::fsutil::read_raw(shipped_path).map_err(|e| {
        Error::Config(format!(
            "{}: cannot read the hook file: {e}\nnote: it is installed by the pve-cpuguard package; point --hook-file / PVE_CPUGUARD_HOOK_FILE at it",
            shipped_path.display()
        ))
    })?;
    let dir = storage
        .snippets_dir()
        .ok_or_else(|| Error::Config(format!("storage '{}' has no directory", storage.id)))?;
    let dest = rollout::hook_path(&dir);
    let installed = match crate::fsutil::read_raw(&dest) {
        Ok(bytes) => {
            let mode = std::fs::metadata(&dest)
                .map_err(|e| Error::io(&dest, e))?
                .permissions()
                .mode();
            Some((bytes, mode))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(&dest, e)),
    };
    let action = rollout::file_action(
        &shipped,
        installed.as_ref().map(|(b, m)| (b.as_slice(), *m)),
    );
    if action != FileAction::Unchanged && !dry_run {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        // O_EXCL temporary + rename: a link at either path is not followed.
        crate::fsutil::replace(&dest, &shipped, Some(0o755))?;
    }
    Ok((dest, action))
}

/// One VM's outcome.
pub(crate) struct Done {
    pub(crate) vmid: VmId,
    pub(crate) name: Option<String>,
    pub(crate) action: Action,
    pub(crate) error: Option<String>,
}

pub(crate) fn describe(d: &Done, dry_run: bool, verb_attach: bool) -> String {
    let label = match &d.name {
        Some(n) => format!("VM {} ({n})", d.vmid),
        None => format!("VM {}", d.vmid),
    };
    let would = if dry_run { "would set" } else { "set" };
    let mut s = match &d.action {
        Action::SetHookscript {
            from, to, chain, unchain,
        } => {
            let mut s = format!(
                "{label}: {would} hookscript {} -> {to}",
                from.as_deref().unwrap_or("none")
            );
            if let Some(c) = chain {
                let _ = write!(
                    s,
                    "; its own hookscript {} ({}) {} chained behind the guard",
                    c.volid.as_deref().unwrap_or("?"),
                    c.path.display(),
                    if dry_run { "would run" } else { "now runs" }
                );
            }
            if *unchain {
                s.push_str(if dry_run {
                    " (restored; would remove its chain.conf entry)"
                } else {
                    " (restored; chain.conf entry removed)"
                });
            }
            s
        }
        Action::DeleteHookscript { from } => format!(
            "{label}: {} hookscript {from}",
            if dry_run { "would remove" } else { "removed" }
        ),
        Action::Unchanged(why) => format!("{label}: {why}"),
        Action::OtherNode(node) => format!(
            "{label}: on node {node}, not changed here (qm only changes VMs of its own node): run `pve-cpuguard {} {}` on {node}",
            if verb_attach { "attach" } else { "detach" },
            d.vmid
        ),
        Action::Refused(why) => format!("{label}: not changed: {why}"),
    };
    if let Some(e) = &d.error {
        let _ = write!(s, "\n  error: {e}");
    }
    s
}

fn action_json(d: &Done) -> Value {
    let (kind, extra) = match &d.action {
        Action::SetHookscript {
            from,
            to,
            chain,
            unchain,
        } => (
            "set-hookscript",
            json!({"from": from, "to": to, "chained": chain.as_ref().map(|c| json!({"path": c.path, "volid": c.volid})), "unchained": unchain}),
        ),
        Action::DeleteHookscript { from } => ("delete-hookscript", json!({"from": from})),
        Action::Unchanged(why) => ("unchanged", json!({"why": why})),
        Action::OtherNode(node) => ("other-node", json!({"node": node})),
        Action::Refused(why) => ("refused", json!({"why": why})),
    };
    let mut v = json!({"vmid": d.vmid.0, "name": d.name, "action": kind, "error": d.error});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v
}

/// Carries out one VM's action: chain entry first (so the VM's own
/// hookscript never stops running), then `qm`; undone if `qm` fails.
fn carry_out(settings: &Settings, qm: &Path, vmid: VmId, action: &Action) -> Option<String> {
    let root = settings.pve.root();
    let args = rollout::qm_args(vmid, action)?;
    if let Action::SetHookscript {
        chain: Some(entry), ..
    } = action
    {
        let e = entry.clone();
        if let Err(err) = chain::update(root, |m| {
            m.insert(vmid, e);
        }) {
            return Some(format!("{err} (nothing changed)"));
        }
    }
    if let Err(err) = run_qm(qm, &args) {
        if matches!(action, Action::SetHookscript { chain: Some(_), .. }) {
            let _ = chain::update(root, |m| {
                m.remove(&vmid);
            });
        }
        return Some(err);
    }
    if let Action::SetHookscript { unchain: true, .. } = action {
        if let Err(err) = chain::update(root, |m| {
            m.remove(&vmid);
        }) {
            return Some(format!(
                "hookscript restored, but its chain.conf entry could not be removed: {err}"
            ));
        }
    }
    None
}

pub(crate) fn execute(
    settings: &Settings,
    qm: &Path,
    plan: Vec<(VmId, Action)>,
    vms: &[VmState],
    dry_run: bool,
    attach: bool,
) -> Vec<Done> {
    plan.into_iter()
        .zip(vms)
        .map(|((vmid, action), vm)| {
            let error = if dry_run {
                None
            } else {
                carry_out(settings, qm, vmid, &action)
            };
            let done = Done {
                vmid,
                name: vm.name.clone(),
                action,
                error,
            };
            if !dry_run && rollout::qm_args(vmid, &done.action).is_some() {
                let severity = if done.error.is_some() {
                    Severity::Warning
                } else {
                    Severity::Notice
                };
                syslog::log(severity, &describe(&done, false, attach));
            }
            done
        })
        .collect()
}

/// What a run reports besides the VMs.
struct Report {
    header: Vec<String>,
    notes: Vec<String>,
    json: Value,
    dry_run: bool,
    attach: bool,
    /// VMIDs were named (a VM on another node is then a failure).
    explicit: bool,
}

fn finish(done: &[Done], r: Report, format: Format) -> Result<ExitCode> {
    let failed = done.iter().any(|d| {
        d.error.is_some()
            || matches!(d.action, Action::Refused(_))
            || (r.explicit && matches!(d.action, Action::OtherNode(_)))
    });
    if format == Format::Json {
        let mut v = json!({
            "dry_run": r.dry_run,
            "vms": done.iter().map(action_json).collect::<Vec<_>>(),
            "notes": r.notes,
        });
        if let (Some(o), Some(e)) = (v.as_object_mut(), r.json.as_object()) {
            o.extend(e.clone());
        }
        output::print_json(&v)?;
    } else {
        let mut s = String::new();
        if r.dry_run {
            s.push_str("dry run: nothing is changed\n");
        }
        for h in &r.header {
            let _ = writeln!(s, "{h}");
        }
        for d in done {
            let _ = writeln!(s, "{}", describe(d, r.dry_run, r.attach));
        }
        for n in &r.notes {
            let _ = writeln!(s, "note: {n}");
        }
        // A long line wraps under its VM, indented.
        output::print_wrapped(&s)?;
    }
    Ok(if failed {
        ExitCode::Refused
    } else {
        ExitCode::Ok
    })
}

fn elsewhere_note(elsewhere: &BTreeMap<String, usize>, verb: &str) -> Option<String> {
    if elsewhere.is_empty() {
        return None;
    }
    let list: Vec<String> = elsewhere
        .iter()
        .map(|(n, k)| format!("{n} ({k})"))
        .collect();
    Some(format!(
        "VMs on other nodes are not changed here: {}; run `pve-cpuguard {verb} --all` on each of them",
        list.join(", ")
    ))
}

/// Runs `attach`.
///
/// # Errors
/// Configuration errors (storage without snippets, unreadable files).
pub fn attach(args: &AttachArgs, format: Format) -> Result<ExitCode> {
    let settings = Settings::resolve(&args.common)?;
    crate::pve::presence::require(settings.pve.root())?;
    let storages = storage::read(settings.pve.root())?;
    let store = storages.snippets_storage(&args.storage)?;
    let (vms, elsewhere) = select(&settings, &args.select)?;
    let (hook_path, file_action) = install_hook_file(&args.hook_file, store, args.dry_run)?;
    let target = rollout::guard_volid(&store.id);
    let plan = rollout::plan_attach(&vms, &settings.node, &target, &storages);
    let done = execute(&settings, &args.qm.path, plan, &vms, args.dry_run, true);

    let file_text = match (file_action, args.dry_run) {
        (FileAction::Copy, false) => "copied",
        (FileAction::Copy, true) => "would be copied",
        (FileAction::Update, false) => "updated",
        (FileAction::Update, true) => "would be updated",
        (FileAction::Unchanged, _) => "up to date",
    };
    let mut notes = Vec::new();
    if !store.shared {
        notes.push(format!(
            "storage '{}' is not shared: the hook file must exist on every node that may start these VMs (migration targets, HA recovery nodes), or their start fails with \"script '{target}' does not exist\"; run `pve-cpuguard attach --all --storage {}` on every node (it copies the hook file there too)",
            store.id, store.id
        ));
        // Which nodes still need it, as their records say (a record that
        // does not say is not counted as missing).
        let lacking: Vec<String> = crate::guard::coverage::hook_storages_of(&settings.cache)
            .into_iter()
            .filter(|(node, list)| {
                *node != settings.node && list.as_ref().is_some_and(|l| !l.contains(&store.id))
            })
            .map(|(node, _)| node)
            .collect();
        if !lacking.is_empty() {
            notes.push(format!(
                "nodes whose record says storage '{}' lacks the hook file: {}",
                store.id,
                lacking.join(", ")
            ));
        }
    }
    notes.extend(elsewhere_note(&elsewhere, "attach"));
    let report = Report {
        header: vec![format!("hook file {}: {file_text}", hook_path.display())],
        notes,
        json: json!({"storage": store.id, "shared": store.shared, "hook_file": {"path": hook_path, "action": file_action.as_str()}}),
        dry_run: args.dry_run,
        attach: true,
        explicit: !args.select.all,
    };
    finish(&done, report, format)
}

/// Runs `detach`.
///
/// # Errors
/// Configuration errors (unreadable files).
pub fn detach(args: &DetachArgs, format: Format) -> Result<ExitCode> {
    let settings = Settings::resolve(&args.common)?;
    crate::pve::presence::require(settings.pve.root())?;
    let storages = match storage::read(settings.pve.root()) {
        Ok(s) => s,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            storage::Storages::default()
        }
        Err(e) => return Err(e),
    };
    let (vms, elsewhere) = select(&settings, &args.select)?;
    let chain_entries = chain::read(settings.pve.root())?;
    let plan = rollout::plan_detach(&vms, &settings.node, &chain_entries, &storages);
    let done = execute(&settings, &args.qm.path, plan, &vms, args.dry_run, false);
    let mut notes = vec![
        "the hook file stays in the snippets storage (other VMs or nodes may still use it); remove it by hand once no VM uses it".to_string(),
    ];
    notes.extend(elsewhere_note(&elsewhere, "detach"));
    let report = Report {
        header: Vec::new(),
        notes,
        json: json!({}),
        dry_run: args.dry_run,
        attach: false,
        explicit: !args.select.all,
    };
    finish(&done, report, format)
}
