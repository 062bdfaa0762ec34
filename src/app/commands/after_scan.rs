//! What `scan` — the refresh service's command — does after it updated the
//! cache, when the configuration file asks for it: `auto_attach` on this
//! node's VMs, and `ha_rules = apply` (the HA node-affinity rules follow
//! the fresh records, so a node that lost a CPU flag leaves the rules of
//! the VMs that need it before HA has to pick a node).
//!
//! Both are off by default. Their failures are reported, never fatal to the
//! scan (its exit code says whether the nodes answered).

use std::path::{Path, PathBuf};

use crate::app::cli::ScanDuties;
use crate::app::commands::{auto_attach, ha_rules};
use crate::conf::config::{AutoAttach, Config};
use crate::conf::settings::{CommonArgs, Settings};
use crate::pve::members;

/// Paths `scan` resolved.
pub struct Paths<'a> {
    /// The configuration file.
    pub config: &'a Path,
    /// The cluster file system.
    pub pve_dir: &'a Path,
    /// The cache.
    pub cache: &'a Path,
    /// This node's /proc/cpuinfo.
    pub cpuinfo: &'a Path,
    /// This node's name.
    pub node: &'a str,
}

/// Which node changes the HA rules: the first online node of `.members`
/// by name, so that the nodes' refresh services do not race each other.
fn ha_rules_keeper(pve_dir: &Path) -> Result<Option<String>, String> {
    let path = pve_dir.join(".members");
    let m = members::read(&path).map_err(|e| e.to_string())?;
    Ok(m.and_then(|m| {
        m.nodelist
            .into_iter()
            .filter(|(_, n)| n.online)
            .map(|(name, _)| name)
            .next()
    }))
}

/// Runs the duties the configuration asks for; one line per event.
#[must_use]
pub fn run(conf: &Config, paths: &Paths<'_>, duties: &ScanDuties) -> Vec<String> {
    let filter = conf.auto_attach.clone().unwrap_or_default();
    let ha = conf.ha_rules == Some(true);
    if filter == AutoAttach::Off && !ha {
        return Vec::new();
    }
    let common = CommonArgs {
        config: Some(PathBuf::from(paths.config)),
        pve_dir: Some(paths.pve_dir.to_path_buf()),
        node: Some(paths.node.to_string()),
        cpuinfo: Some(paths.cpuinfo.to_path_buf()),
        cache: Some(paths.cache.to_path_buf()),
        ..CommonArgs::default()
    };
    let settings = match Settings::resolve(&common) {
        Ok(s) => s,
        Err(e) => return vec![format!("after the scan: {e}")],
    };
    let mut lines = auto_attach::run(
        &settings,
        &filter,
        conf.attach_storage.as_deref().unwrap_or("local"),
        &duties.hook_file,
        &duties.qm.path,
    );
    if ha {
        match ha_rules_keeper(paths.pve_dir) {
            Ok(Some(keeper)) if keeper != paths.node => lines.push(format!(
                "ha_rules: kept by node {keeper} (the first online node), not here"
            )),
            Err(e) => lines.push(format!("ha_rules: not changed: {e}")),
            Ok(_) => lines.extend(ha_rules_lines(&settings, &duties.ha_manager.binary)),
        }
    }
    lines
}

fn ha_rules_lines(settings: &Settings, binary: &Path) -> Vec<String> {
    let o = match ha_rules::plan_and_apply(settings, binary, true) {
        Ok(o) => o,
        Err(e) => return vec![format!("ha_rules: not changed: {e}")],
    };
    let mut lines = Vec::new();
    if let Some(why) = &o.refused {
        lines.push(format!("ha_rules: not changed: {why}"));
    }
    for (call, err) in &o.ran {
        let line = ha_rules::command_line(binary, &call.argv());
        lines.push(match err {
            None => format!("ha_rules: ran {line}"),
            Some(e) => format!("ha_rules: {e}"),
        });
    }
    for c in &o.plan.conflicts {
        lines.push(format!(
            "ha_rules: conflict: the administrator's rule '{}' lets HA pick nodes some of its VMs cannot run on (see `pve-cpuguard ha-rules`)",
            c.id
        ));
    }
    lines
}
