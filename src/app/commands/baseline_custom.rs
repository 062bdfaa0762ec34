//! `baseline --custom-model NAME [--apply | --dry-run]`: the flag-level
//! cluster baseline as a custom CPU model ([`crate::cpu::custom_baseline`]),
//! judged on every node by the verdict ([`crate::guard::custom_model`])
//! before it is printed, and added through Proxmox VE's own API with
//! `pvesh create /cluster/qemu/custom-cpu-models` — run directly by the
//! bounded runner, never through a shell. It never changes a model that
//! is already in cpu-models.conf: the same model is left as it is, another
//! one of that name is a refusal that says how to go on.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use crate::app::cli::BaselineArgs;
use crate::app::commands::ha_rules::{command_line, run_call};
use crate::app::commands::shell_text::shell_lines;
use crate::app::output;
use crate::conf::settings::{CommonArgs, Settings};
use crate::cpu::baseline::Baseline;
use crate::cpu::capability::Capability;
use crate::cpu::custom_baseline::{self, CustomBaseline, LeftOut};
use crate::error::{Error, ExitCode, Result};
use crate::guard::custom_model::{self, Judged};
use crate::guard::decision::Rules;
use crate::pve::{custom_models, members};
use crate::reach::pvesh;
use crate::syslog::{self, Severity};

/// What `baseline` adds to its output for the custom model.
pub struct Part {
    /// The `custom_model` object of the JSON.
    pub json: Value,
    /// The text, after the baseline's own.
    pub text: String,
    /// The exit code of this part.
    pub code: ExitCode,
}

/// The cluster as `baseline` read it from the cache.
pub struct Cluster<'a> {
    /// Every node with data, and its capability.
    pub nodes: &'a [(String, Capability)],
    /// What [`crate::cpu::baseline::compute`] made of them.
    pub baseline: &'a Baseline,
    /// Nodes whose data is stale.
    pub stale: &'a [String],
    /// Nodes without data.
    pub missing: &'a [String],
}

/// The model of that name in cpu-models.conf, compared with ours.
enum Existing {
    Absent,
    Same,
    Different(Vec<String>),
}

/// Settles `baseline --custom-model`.
///
/// # Errors
/// An invalid name (usage), an unreadable or malformed cpu-models.conf,
/// an invalid configuration file.
pub fn run(args: &BaselineArgs, cluster: &Cluster<'_>) -> Result<Part> {
    let given = args.custom_model.as_deref().unwrap_or_default();
    let name = custom_baseline::check_name(given).map_err(|e| {
        Error::Usage(format!(
            "--custom-model: {e}\nnote: the model is then used as `cpu: custom-NAME`"
        ))
    })?;
    let settings = Settings::resolve(&CommonArgs {
        config: args.cache.file.config.clone(),
        pve_dir: args.pve_dir.clone(),
        cache: args.cache.file.cache.clone(),
        cache_max_age: args.cache.cache_max_age,
        ..CommonArgs::default()
    })?;
    let refuse = |why: String| Part {
        json: json!({"name": name, "cputype": format!("custom-{name}"), "refused": why}),
        text: output::wrap(
            &format!("\nCustom model custom-{name}: not built: {why}\n"),
            output::WIDTH,
        ),
        code: ExitCode::Refused,
    };
    if cluster.nodes.is_empty() {
        return Ok(Part {
            code: ExitCode::Unknown,
            ..refuse("no node has data (run `pve-cpuguard scan` first)".into())
        });
    }
    let vendors = &cluster.baseline.vendors;
    if vendors.len() > 1 {
        let groups: Vec<String> = vendors
            .iter()
            .map(|(v, n)| format!("{v}: {}", n.join(", ")))
            .collect();
        return Ok(refuse(format!(
            "the nodes have different CPU vendors ({}); a custom model shows the guest one \
             vendor's CPU, and a live migration between vendors is unsafe",
            groups.join("; ")
        )));
    }
    let caps: Vec<&Capability> = cluster.nodes.iter().map(|(_, c)| c).collect();
    let model = custom_baseline::build(name, cluster.baseline.model.as_deref(), &caps);
    let cpu_models = settings.pve.cpu_models();
    let custom = custom_models::read(&cpu_models)?;
    let rules = Rules {
        policy: settings.policy,
        vendor_change: settings.vendor_change,
    };
    let judged = custom_model::judge(name, &model.conf(), &custom, cluster.nodes, rules);
    let existing = match custom.models.get(name) {
        None => Existing::Absent,
        Some(c) => match model.differences(c) {
            d if d.is_empty() => Existing::Same,
            d => Existing::Different(d),
        },
    };
    let argv = pvesh::create_model_args(
        &model.cputype(),
        &model.reported_model,
        &model.flags_value(),
    );
    // A node judged from QEMU's emulator (`scan --probe tcg`) says what
    // TCG gives, not KVM: its flags may be more than its guests get.
    let tcg: Vec<&str> = cluster
        .nodes
        .iter()
        .filter(|(_, c)| crate::cache::truth::view_name(c) == "tcg")
        .map(|(n, _)| n.as_str())
        .collect();
    let mut s = describe(&model, &judged, cluster, rules, &tcg);
    let mut code = ExitCode::Ok;
    let mut applied = false;
    let mut error = None;
    let mut refused = None;
    let binary = &args.pvesh;
    let apply = args.apply && !args.dry_run;
    let command = shell_lines(binary, &argv);
    let incomplete = !cluster.stale.is_empty() || !cluster.missing.is_empty() || !tcg.is_empty();
    // pmxcfs is read-only without quorum: `pvesh create` would fail with
    // an error that does not say why. A standalone node (no `cluster` in
    // .members) has nothing to lose quorum with.
    let members = settings.pve.root().join(".members");
    let without_quorum = apply && members::quorate(&members)? == Some(false);
    if !judged.accepted {
        let why = "the verdict refuses it on some node (above)".to_string();
        say(&mut s, &format!("Not added: {why}."));
        refused = Some(why);
        code = ExitCode::Refused;
    } else {
        match &existing {
            Existing::Same => {
                say(
                    &mut s,
                    &format!(
                        "custom-{name} is in {} already, the same model: nothing to do.",
                        cpu_models.display()
                    ),
                );
            }
            Existing::Different(diffs) => {
                let why = format!(
                    "{} already has a custom-{name} that differs ({})",
                    cpu_models.display(),
                    diffs.join("; ")
                );
                say(&mut s, &format!("Not added: {why}."));
                say(
                    &mut s,
                    "note: it is left as it is (VMs using it would change at their next cold \
                     start). Add this one under a new name and see what moving the VMs to it \
                     gives:",
                );
                let _ = writeln!(s, "pve-cpuguard baseline --custom-model {name}2 --apply");
                let _ = writeln!(s, "pve-cpuguard plan --set-cpu-all custom-{name}2");
                refused = Some(why);
                code = ExitCode::Refused;
            }
            Existing::Absent if without_quorum => {
                let why = format!(
                    "the cluster is not quorate ({}): /etc/pve is read-only, so the model \
                     cannot be added; run again once it is (`pvecm status`)",
                    members.display()
                );
                say(&mut s, &format!("Not added: {why}."));
                refused = Some(why);
                code = ExitCode::Refused;
            }
            Existing::Absent if apply && incomplete => {
                let why = format!(
                    "not every node has fresh data of what KVM gives ({}); run \
                     `pve-cpuguard scan` first",
                    cluster
                        .stale
                        .iter()
                        .map(|n| format!("{n}: stale"))
                        .chain(cluster.missing.iter().map(|n| format!("{n}: no data")))
                        .chain(
                            tcg.iter()
                                .map(|n| format!("{n}: QEMU's TCG answer, not KVM's"))
                        )
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                say(&mut s, &format!("Not added: {why}."));
                refused = Some(why);
                code = ExitCode::Refused;
            }
            Existing::Absent if apply => match run_call(binary, &argv) {
                Ok(()) => {
                    let ran = command_line(binary, &argv);
                    syslog::log(Severity::Notice, &format!("baseline: ran {ran}"));
                    let _ = write!(s, "ran:\n{command}");
                    match after(&cpu_models, name, &model) {
                        Ok(()) => {
                            applied = true;
                            say(
                                &mut s,
                                &format!("custom-{name} is in {} now.", cpu_models.display()),
                            );
                            then(&mut s, name);
                        }
                        Err(e) => {
                            say(&mut s, &format!("error: {e}"));
                            say(
                                &mut s,
                                &format!(
                                    "note: {} is not as asked although pvesh said it worked: \
                                     check custom-{name} in the web interface (Datacenter → \
                                     Custom CPU Models) and that {} is the cluster's file; \
                                     the section above is what it should hold",
                                    cpu_models.display(),
                                    cpu_models.display()
                                ),
                            );
                            error = Some(e);
                            code = ExitCode::Refused;
                        }
                    }
                }
                Err(e) => {
                    syslog::log(Severity::Warning, &format!("baseline: {e}"));
                    say(&mut s, &format!("error: {e}"));
                    say(&mut s, &pvesh_failed_note(&e, binary, &cpu_models));
                    error = Some(e);
                    code = ExitCode::Refused;
                }
            },
            Existing::Absent => {
                let _ = write!(
                    s,
                    "{}:\n{command}",
                    if args.dry_run {
                        "dry run: nothing is changed; --apply would run"
                    } else {
                        "Not in cpu-models.conf yet; --apply runs"
                    }
                );
                then(&mut s, name);
            }
        }
    }
    let mut argv_json = vec![binary.display().to_string()];
    argv_json.extend(argv.iter().cloned());
    let json = json!({
        "name": name,
        "cputype": model.cputype(),
        "reported_model": model.reported_model,
        "reported_model_named": model.named,
        "add": model.add,
        "remove": model.remove,
        "flags": model.flags_value(),
        "left_out": model.left_out.iter().map(|(f, why)| json!({
            "flag": f, "code": why.code(), "why": why.why(),
        })).collect::<Vec<_>>(),
        "section": model.section(),
        "accepted": judged.accepted,
        "start": judged.start.iter().map(|(n, v)| {
            let mut o = v.to_json();
            if let Some(m) = o.as_object_mut() {
                m.insert("node".into(), json!(n));
            }
            o
        }).collect::<Vec<_>>(),
        "live_refused": judged.live_refused.iter().map(|(from, to, v)| json!({
            "source": from, "target": to, "reasons": v.summary(),
        })).collect::<Vec<_>>(),
        "warnings": judged.warnings,
        "existing": match &existing {
            Existing::Absent => "absent",
            Existing::Same => "same",
            Existing::Different(_) => "different",
        },
        "differences": match &existing {
            Existing::Different(d) => d.clone(),
            _ => Vec::new(),
        },
        "command": argv_json,
        "applied": applied,
        "error": error,
        "refused": refused,
    });
    Ok(Part {
        json,
        text: s,
        code,
    })
}

/// What to do when `pvesh create` failed, by how it failed (the words of
/// [`run_call`]'s error): only "No 'create' handler" means a Proxmox VE
/// without the API path (before 9.2).
fn pvesh_failed_note(e: &str, binary: &Path, cpu_models: &Path) -> String {
    let by_hand = format!(
        "add the section above to {} instead (by hand, or in the web interface's Custom CPU \
         Models); nothing else was changed",
        cpu_models.display()
    );
    if e.starts_with("cannot run ") {
        format!(
            "note: {} could not be run: on a Proxmox VE node it is pve-manager's; name another \
             with --pvesh PATH (PVE_CPUGUARD_PVESH), or {by_hand}",
            binary.display()
        )
    } else if e.contains("did not finish within") {
        format!(
            "note: pvesh was killed after {} s without an answer (a hung pmxcfs or API: check \
             `systemctl status pve-cluster pveproxy`); run again once it answers, or {by_hand}",
            crate::app::commands::ha_rules::CALL_TIMEOUT.as_secs()
        )
    } else if e.contains("No 'create' handler") || e.contains("no such") {
        format!(
            "note: Proxmox VE before 9.2 has no {}: {by_hand}",
            pvesh::CUSTOM_MODELS
        )
    } else {
        format!("note: pvesh's own message is above; fix what it says and run again, or {by_hand}")
    }
}

/// Reads cpu-models.conf again after `pvesh`: the model must be there, the
/// same as asked for.
fn after(path: &Path, name: &str, model: &CustomBaseline) -> std::result::Result<(), String> {
    let now = custom_models::read(path).map_err(|e| e.to_string())?;
    match now.models.get(name) {
        None => Err(format!(
            "pvesh succeeded, but {} has no custom-{name}",
            path.display()
        )),
        Some(c) => match model.differences(c) {
            d if d.is_empty() => Ok(()),
            d => Err(format!(
                "pvesh succeeded, but custom-{name} in {} differs: {}",
                path.display(),
                d.join("; ")
            )),
        },
    }
}

/// One line of prose, wrapped to [`output::WIDTH`] (commands and the
/// section are appended as they are).
fn say(s: &mut String, text: &str) {
    s.push_str(&output::wrap(&format!("{text}\n"), output::WIDTH));
}

fn then(s: &mut String, name: &str) {
    say(s, "What moving every VM to it gives (nothing is changed):");
    let _ = writeln!(s, "pve-cpuguard plan --set-cpu-all custom-{name}");
}

/// The model, the verdict on it and what was left out, in words.
fn describe(
    model: &CustomBaseline,
    judged: &Judged,
    cluster: &Cluster<'_>,
    rules: Rules,
    tcg: &[&str],
) -> String {
    let mut s = String::new();
    let base = if model.named {
        model.reported_model.clone()
    } else {
        format!("{} (no named model fits every node)", model.reported_model)
    };
    let more = model.add.len();
    s.push('\n');
    say(
        &mut s,
        &format!(
            "Custom model {}: {base}{}{}",
            model.cputype(),
            if more == 0 {
                String::new()
            } else {
                format!(
                    " and {more} more flag{} every node gives{}",
                    if more == 1 { "" } else { "s" },
                    if tcg.is_empty() { " under KVM" } else { "" }
                )
            },
            if model.remove.is_empty() {
                String::new()
            } else {
                format!(", without {}", model.remove.join(", "))
            }
        ),
    );
    // The section exactly as cpu-models.conf holds it: its flags stay one
    // line, whatever its width.
    s.push_str(&model.section());
    let names: Vec<&str> = judged.start.iter().map(|(n, _)| n.as_str()).collect();
    if judged.accepted {
        s.push_str(&output::wrap(
            &format!(
                "Checked as `cpu: custom-{}`: starts on every node {}({}){}.\n",
                model.name,
                if cluster.missing.is_empty() {
                    ""
                } else {
                    "with data "
                },
                names.join(", "),
                if names.len() > 1 {
                    " and live-migrates between any two"
                } else {
                    ""
                }
            ),
            output::WIDTH,
        ));
    } else {
        let _ = writeln!(s, "Refused by the verdict as `cpu: custom-{}`:", model.name);
        let no_start = judged.start_refused(rules);
        for (n, why) in &no_start {
            say(
                &mut s,
                &format!("  {n}: cannot start it (nor receive it live): {why}"),
            );
        }
        // A node that cannot start it cannot receive it either: said once.
        for (from, to, v) in &judged.live_refused {
            if !no_start.iter().any(|(n, _)| n == to) {
                say(
                    &mut s,
                    &format!("  {from} -> {to}: cannot live-migrate it: {}", v.summary()),
                );
            }
        }
    }
    if !tcg.is_empty() {
        say(
            &mut s,
            &format!(
                "warning: {} judged from QEMU's emulator (TCG), which is not what KVM gives \
                 guests: scan with --probe kvm",
                tcg.join(", ")
            ),
        );
    }
    for w in &judged.warnings {
        s.push_str(&output::wrap(&format!("warning: {w}\n"), output::WIDTH));
    }
    if cluster.baseline.model.is_none() {
        s.push_str(&output::wrap(
            &format!(
                "note: no named QEMU model fits every node, so the model reports {} (as \
                 Proxmox VE's x86-64-vN types do) with the flags above\n",
                custom_baseline::FALLBACK_MODEL
            ),
            output::WIDTH,
        ));
    }
    let reasons = [
        LeftOut::MigrationBlocker,
        LeftOut::Nested,
        LeftOut::Pmu,
        LeftOut::WindowsCet,
        LeftOut::Grammar,
        LeftOut::Provided,
    ];
    if !model.left_out.is_empty() {
        s.push_str("Left out, although every node gives them:\n");
    }
    for why in reasons {
        let flags: Vec<&str> = model
            .left_out
            .iter()
            .filter(|(_, w)| *w == why)
            .map(|(f, _)| f.as_str())
            .collect();
        if !flags.is_empty() {
            s.push_str(&output::wrap(
                &format!("  {}: {}\n", flags.join(", "), why.why()),
                output::WIDTH,
            ));
        }
    }
    s
}
