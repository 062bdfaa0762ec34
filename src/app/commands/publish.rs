//! `pve-cpuguard publish`: describe this node's CPU (its /proc/cpuinfo and
//! its own QEMU under KVM, with kernel, microcode and versions) and write
//! the record to `<pve_dir>/nodes/<this node>/pve-cpuguard.json`, where
//! every node's `scan` reads it without any network call.
//!
//! Without quorum pmxcfs refuses writes (EACCES); a read-only mount gives
//! EROFS. Either is a warning and exit 1: the last published record stays
//! where it is, and the other nodes fall back to SSH once it is stale.
//!
//! When this node is new, or its capability dropped since its last record
//! (a BIOS setting, a microcode update), it says which VMs can no longer
//! start or live-migrate here (admission, as `scan` says it).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::app::cli::PublishArgs;
use crate::app::commands::node_list;
use crate::app::commands::scan::admission_line;
use crate::app::output::{self, Format};
use crate::cache::published::{self, MAX_SIZE};
use crate::cache::{self, NodeRecord};
use crate::conf::config::Config;
use crate::error::{Error, ExitCode, Result};
use crate::guard::audit_input::{admitted_on_publish, Admitted};
use crate::pve::{cluster, paths};
use crate::reach::kvm_probe::{self, ProbeOptions};
use crate::reach::ssh::Answer;
use crate::syslog::{self, Severity};

/// Why a record could not be written.
#[derive(Debug)]
pub enum PublishError {
    /// The cluster file system refused the write: no quorum (EACCES) or a
    /// read-only mount (EROFS, EPERM).
    ReadOnly {
        /// The file refused.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Any other I/O error.
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The record would exceed [`MAX_SIZE`].
    TooBig(usize),
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::ReadOnly { path, source } | PublishError::Io { path, source } => {
                write!(f, "{}: {source}", path.display())
            }
            PublishError::TooBig(n) => write!(f, "the record has {n} bytes, more than {MAX_SIZE}"),
        }
    }
}

/// Writes this node's record from a reading of it, atomically; returns the
/// path and the size written.
///
/// # Errors
/// [`PublishError`]; the previous record then stays in place.
pub fn write_record(
    pve_dir: &Path,
    node: &str,
    a: &Answer,
    now: u64,
) -> std::result::Result<(PathBuf, usize), PublishError> {
    write_record_to(pve_dir, node, a, now, None)
}

/// [`write_record`], to `output_file` instead when given: the same record
/// for a machine not in the cluster yet (`plan --add-node NAME=FILE` reads
/// it), its directory not created.
///
/// # Errors
/// [`PublishError`].
pub fn write_record_to(
    pve_dir: &Path,
    node: &str,
    a: &Answer,
    now: u64,
    output_file: Option<&Path>,
) -> std::result::Result<(PathBuf, usize), PublishError> {
    let mut rec =
        NodeRecord::new(node, "local", &a.info, a.kernel.clone(), now).with_kvm(a.kvm.clone());
    rec.source = Some("local".into());
    rec.hook_storages = crate::pve::hook_files::local(pve_dir, crate::guard::audit::HOOK_FILE_NAME);
    let bytes = published::encode(&published::envelope(node, rec, now));
    if bytes.len() as u64 > MAX_SIZE {
        return Err(PublishError::TooBig(bytes.len()));
    }
    let path = output_file.map_or_else(|| published::path(pve_dir, node), Path::to_path_buf);
    // By kind, not errno: the temporary file's creation error comes
    // wrapped (with its path) by the tempfile crate, without an errno.
    let classify = |(p, e): (PathBuf, std::io::Error)| match e.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            PublishError::ReadOnly { path: p, source: e }
        }
        _ => PublishError::Io { path: p, source: e },
    };
    // pmxcfs creates nodes/<node> when the node joins; create it on a
    // standalone tree, but never the cluster file system's root.
    let dir = pve_dir.join("nodes").join(node);
    if output_file.is_none() && !dir.is_dir() && pve_dir.join("nodes").is_dir() {
        std::fs::create_dir(&dir).map_err(|e| classify((dir.clone(), e)))?;
    }
    published::write_atomic(&path, &bytes).map_err(classify)?;
    Ok((path, bytes.len()))
}

/// The admission section of the text (JSON has it as `admissions`).
fn print_admitted(admitted: &[Admitted], format: Format) -> Result<()> {
    if admitted.is_empty() || format == Format::Json {
        return Ok(());
    }
    let mut t = String::from("Admission (this node is new, or its CPU capability dropped):\n");
    for a in admitted {
        t.push_str(&output::wrap(
            &format!("  {}\n", admission_line(a)),
            output::WIDTH,
        ));
    }
    output::print(&t)
}

/// This node's name: `--node`, else `.members` `nodename` (what pmxcfs
/// calls it), else the host name's first label.
fn node_name(given: Option<&str>, pve_dir: &Path) -> Result<String> {
    let name = paths::local_node(given, pve_dir);
    if !cluster::valid_name(&name) {
        return Err(Error::Usage(format!(
            "invalid node name '{}' (valid: letters, digits, '-', '.', '_')",
            name.escape_debug()
        )));
    }
    Ok(name)
}

/// Runs `publish`.
///
/// # Errors
/// Configuration errors, an unreadable cpuinfo, and write errors other
/// than a read-only cluster file system (which is exit 1, not an error).
pub fn run(args: &PublishArgs, format: Format) -> Result<ExitCode> {
    let conf = Config::load_given(args.config.as_deref())?;
    let pve_dir = Config::pick(
        args.pve_dir.clone(),
        conf.pve_dir.as_ref(),
        "/etc/pve".into(),
    );
    let node = node_name(args.node.as_deref(), &pve_dir)?;
    if args.output_file.is_none() && !pve_dir.join("nodes").is_dir() {
        return Err(Error::Config(format!(
            "{}: no such directory; is this a Proxmox VE node (is pve-cluster running)?",
            pve_dir.join("nodes").display()
        )));
    }
    let info = crate::reach::local::cpuinfo(&args.cpuinfo.cpuinfo)?;
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string());
    let kvm = args.probe.accel().map(|accel| {
        kvm_probe::probe_local(&ProbeOptions {
            qemu: args.qemu.clone(),
            timeout: Duration::from_secs(args.probe_timeout),
            ..ProbeOptions::new(accel)
        })
        .map_err(|e| e.to_string())
    });
    let answer = Answer { info, kernel, kvm };
    let now = cache::now();
    let rec = NodeRecord::new(&node, "local", &answer.info, answer.kernel.clone(), now)
        .with_kvm(answer.kvm.clone());
    // Judged against the record in place, so before it is replaced; a
    // record written elsewhere (--output-file) joins no cluster yet.
    let mut warnings = Vec::new();
    let admitted = if args.output_file.is_none() {
        admitted_on_publish(&paths::PveDir::new(&pve_dir), &rec, now).unwrap_or_else(|e| {
            warnings.push(format!(
                "cannot tell which VMs this node no longer takes: {e}"
            ));
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let written = write_record_to(&pve_dir, &node, &answer, now, args.output_file.as_deref());
    // Said once the cluster has the new record (a failed write changes
    // nothing there; the next publish says it).
    let admitted = if written.is_ok() {
        admitted
    } else {
        Vec::new()
    };
    for a in &admitted {
        syslog::log(
            Severity::Warning,
            &format!("publish: {}", admission_line(a)),
        );
    }
    let level = node_list::level_of(&rec);
    let qemu = rec.kvm.as_ref().map(kvm_probe::QemuReport::describe);
    let path = args
        .output_file
        .clone()
        .unwrap_or_else(|| published::path(&pve_dir, &node));

    if format == Format::Json {
        output::print_json(&json!({
            "node": node,
            "path": path,
            "written": written.is_ok(),
            "bytes": written.as_ref().ok().map(|(_, n)| n),
            "error": written.as_ref().err().map(ToString::to_string),
            "read_only": matches!(written, Err(PublishError::ReadOnly { .. })),
            "published_at": now,
            "level": level,
            "model_name": rec.cpu.model_name,
            "kernel": rec.kernel,
            "microcode": rec.cpu.microcode,
            "qemu": qemu,
            "kvm_error": rec.kvm_error,
            "admissions": admitted,
        }))?;
    }
    for w in &warnings {
        eprintln!(
            "{}",
            output::for_stderr(&format!("pve-cpuguard: warning: {w}"))
        );
    }
    if let Some(e) = &rec.kvm_error {
        eprint!(
            "{}",
            output::for_stderr(&format!(
                "pve-cpuguard: warning: QEMU could not be asked ({e}); the record holds /proc/cpuinfo only\n\
                 note: `pve-cpuguard inspect --probe kvm` shows the problem\n"
            ))
        );
    }
    match written {
        Ok((p, bytes)) => {
            syslog::log(
                Severity::Info,
                &format!("publish: {node} {level} to {} ({bytes} bytes)", p.display()),
            );
            if format != Format::Json {
                output::print(&format!(
                    "Published {node}'s CPU record: {} ({bytes} bytes)\n  {} ({}), level {level}\n  kernel {}, microcode {}, {}\n",
                    p.display(),
                    rec.cpu.model_name,
                    rec.cpu.vendor,
                    rec.kernel.as_deref().unwrap_or("unknown"),
                    rec.cpu.microcode.as_deref().unwrap_or("unknown"),
                    qemu.as_deref().unwrap_or("no QEMU answer"),
                ))?;
            }
            print_admitted(&admitted, format)?;
            Ok(ExitCode::Ok)
        }
        Err(e @ PublishError::ReadOnly { .. }) => {
            let msg = format!("cannot publish {node}'s CPU record: {e}");
            syslog::log(Severity::Warning, &format!("publish: {msg}"));
            eprint!(
                "{}",
                output::for_stderr(&format!(
                    "pve-cpuguard: warning: {msg}\n\
                     note: {} is read-only while this node has no quorum (check `pvecm status`); the last published \
                     record stays, and other nodes read this node over SSH once it is stale. The hourly refresh \
                     publishes again; or run `pve-cpuguard publish` once quorum is back\n",
                    pve_dir.display()
                ))
            );
            Ok(ExitCode::Refused)
        }
        Err(e) => {
            syslog::log(Severity::Warning, &format!("publish: {e}"));
            Err(Error::Config(format!(
                "cannot publish {node}'s CPU record: {e}"
            )))
        }
    }
}
