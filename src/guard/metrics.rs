//! Prometheus text exposition format for node_exporter's textfile
//! collector: per node its level and the age of its cached record, the
//! cluster baseline, the VMs the audit flags, and this node's last refusal
//! — so a cluster can alert on drift, stale data and VMs at risk.
//!
//! Pure: the command runs the audit and reads the refusal state; this
//! module only renders (format: prometheus.io "Exposition formats", text
//! 0.0.4: `# HELP`, `# TYPE`, `name{label="value"} number`, label values
//! escaped `\\`, `\"`, `\n`).

use std::fmt::Write as _;

use crate::guard::audit::{level_rank, Audit, Finding};
use crate::guard::refusals::Refusals;

/// Escapes a label value.
#[must_use]
pub fn escape(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn head(s: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} {kind}");
}

/// A metric with one unlabelled sample.
fn single(s: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    head(s, name, kind, help);
    let _ = writeln!(s, "{name} {value}");
}

/// Renders every metric.
#[must_use]
pub fn render(audit: &Audit<'_>, refusals: &Refusals) -> String {
    let mut s = String::new();
    let nodes = &audit.fleet.nodes;

    head(
        &mut s,
        "pve_cpuguard_node_level",
        "gauge",
        "CPU level of the node on Proxmox VE's ladder (0 kvm64, 1 x86-64-v2, 2 x86-64-v2-AES, 3 x86-64-v3, 4 x86-64-v4; -1 no data or below-kvm64), from the node's one answer (QEMU's under KVM when recorded, else /proc/cpuinfo).",
    );
    for n in nodes {
        let level = n.level();
        let _ = writeln!(
            s,
            "pve_cpuguard_node_level{{node=\"{}\",level=\"{}\"}} {}",
            escape(&n.name),
            escape(level.unwrap_or("unknown")),
            level
                .and_then(level_rank)
                .map_or_else(|| "-1".to_string(), |r| r.to_string())
        );
    }

    head(
        &mut s,
        "pve_cpuguard_node_view",
        "gauge",
        "Which view decided the node's answer: kvm (QEMU under KVM), tcg or cpuinfo.",
    );
    for n in nodes {
        if let Some(view) = n.view() {
            let _ = writeln!(
                s,
                "pve_cpuguard_node_view{{node=\"{}\",view=\"{view}\"}} 1",
                escape(&n.name)
            );
        }
    }

    head(
        &mut s,
        "pve_cpuguard_cache_age_seconds",
        "gauge",
        "Age of the node's cached CPU record.",
    );
    for n in nodes {
        if let Some(age) = n.freshness.age() {
            let _ = writeln!(
                s,
                "pve_cpuguard_cache_age_seconds{{node=\"{}\"}} {age}",
                escape(&n.name)
            );
        }
    }

    // Only caches written since records carry their source have it.
    if nodes.iter().any(|n| n.source.is_some()) {
        head(
            &mut s,
            "pve_cpuguard_record_source",
            "gauge",
            "1 for where the node's cached record came from: pmxcfs (its published record), ssh or local.",
        );
    }
    for n in nodes {
        if let Some(src) = &n.source {
            let _ = writeln!(
                s,
                "pve_cpuguard_record_source{{node=\"{}\",source=\"{}\"}} 1",
                escape(&n.name),
                escape(src)
            );
        }
    }

    head(
        &mut s,
        "pve_cpuguard_node_stale",
        "gauge",
        "1 when the node has no data, its record is older than cache_max_age, or its last refresh failed.",
    );
    for n in nodes {
        let stale = n.is_stale();
        let _ = writeln!(
            s,
            "pve_cpuguard_node_stale{{node=\"{}\"}} {}",
            escape(&n.name),
            u8::from(stale)
        );
    }

    head(
        &mut s,
        "pve_cpuguard_node_vms_lost",
        "gauge",
        "VMs that can no longer start on, or live-migrate to, the node since it appeared or its CPU capability dropped (audit flag node-admission; 0 otherwise).",
    );
    let mut lost = vec![0usize; nodes.len()];
    for v in &audit.vms {
        for f in &v.findings {
            if let Finding::NodeAdmission(idx) = f {
                for &n in idx {
                    lost[n] += 1;
                }
            }
        }
    }
    for (n, count) in nodes.iter().zip(&lost) {
        let _ = writeln!(
            s,
            "pve_cpuguard_node_vms_lost{{node=\"{}\"}} {count}",
            escape(&n.name)
        );
    }

    head(
        &mut s,
        "pve_cpuguard_cluster_level",
        "gauge",
        "Cluster baseline: the highest level the verdict accepts on every node (-1 while some node has no data, or below-kvm64).",
    );
    // No baseline is claimed while some node has no data (issue 23).
    let baseline = audit
        .baseline
        .filter(|_| audit.fleet.without_data().is_empty());
    let _ = writeln!(
        s,
        "pve_cpuguard_cluster_level{{level=\"{}\"}} {}",
        baseline.unwrap_or("unknown"),
        baseline
            .and_then(level_rank)
            .map_or_else(|| "-1".to_string(), |r| r.to_string())
    );

    let (by_flag, at_risk) = audit.counts();
    single(
        &mut s,
        "pve_cpuguard_vms",
        "gauge",
        "VMs in the cluster.",
        audit.vms.len(),
    );
    single(
        &mut s,
        "pve_cpuguard_vms_at_risk",
        "gauge",
        "VMs whose CPU type cannot start or live-migrate everywhere (any audit flag but no-guard-hookscript).",
        at_risk,
    );
    single(
        &mut s,
        "pve_cpuguard_vms_running_cpu_differs",
        "gauge",
        "Running VMs whose CPU is not what their configuration gives at the next cold start (recorded at their start).",
        audit.running_cpu_differs(),
    );
    single(
        &mut s,
        "pve_cpuguard_vms_unguarded",
        "gauge",
        "VMs without the guard's hookscript (coverage).",
        by_flag.get("no-guard-hookscript").copied().unwrap_or(0),
    );
    head(
        &mut s,
        "pve_cpuguard_vms_flagged",
        "gauge",
        "VMs the audit flags, by flag.",
    );
    for code in Finding::CODES {
        let _ = writeln!(
            s,
            "pve_cpuguard_vms_flagged{{flag=\"{code}\"}} {}",
            by_flag.get(code).copied().unwrap_or(0)
        );
    }

    single(
        &mut s,
        "pve_cpuguard_last_refusal_timestamp_seconds",
        "gauge",
        "When the guard on this node last refused a start or migration (0: never).",
        refusals.last_at,
    );
    single(
        &mut s,
        "pve_cpuguard_refusals_total",
        "counter",
        "Starts and migrations the guard refused on this node.",
        refusals.count,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
