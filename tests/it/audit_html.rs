//! `audit --output html` rendered by a real headless Chromium: the page is
//! self-contained (no scripts, no network, no external assets), puts the VMs
//! at risk first, has both matrices with every VM row, and marks the node
//! without data as stale; past 200 VMs, the VMs grouped instead of a row
//! each. CI installs the Debian package `chromium`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::cluster::Cluster;

const GUARD: &str = "hookscript: local:snippets/pve-cpuguard-hook\n";

fn chromium() -> PathBuf {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("no chromium\nnote: install the Debian package `chromium` (.ci/run does)");
}

/// Runs Chromium headless with its profile, cache and home in `dir`.
fn browse(dir: &Path, args: &[&str]) -> std::process::Output {
    let profile = dir.join("profile");
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .env("HOME", dir)
    .env("XDG_CONFIG_HOME", dir.join("config"))
    .env("XDG_CACHE_HOME", dir.join("cache"));
    let out = cmd.output().expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn cluster() -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
        ("pve3", "archspec-linux-rhel7-haswell"),
    ]);
    c.vm(100, "pve1", &format!("cpu: x86-64-v4\nname: big\n{GUARD}"))
        .vm(102, "pve2", &format!("cpu: x86-64-v3\nname: fine\n{GUARD}"))
        .vm(103, "pve2", "cpu: x86-64-v2-AES\nname: unguarded\n");
    // pve3 has no cached record: its column is marked stale.
    c.write_cache(&["pve1".to_string(), "pve2".to_string()]);
    c
}

#[test]
fn html_page_renders_in_a_browser_with_risks_first() {
    let c = cluster();
    let out = c.on("pve1", &["audit", "--output", "html"]).run().code(1);
    let html = &out.stdout;
    // Self-contained: no scripts, no external references of any kind.
    for bad in [
        "<script", "http://", "https://", " src=", "<link", "@import", "url(",
    ] {
        assert!(!html.contains(bad), "page contains {bad:?}:\n{html}");
    }
    let page = c.path("audit.html");
    std::fs::write(&page, html).unwrap();
    let url = format!("file://{}", page.display());

    let dom = browse(c.dir.path(), &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    let pos = |needle: &str| {
        dom.find(needle)
            .unwrap_or_else(|| panic!("rendered DOM lacks {needle:?}:\n{dom}"))
    };
    // Summary, then the VMs at risk, then the matrices.
    let summary = pos("id=\"summary\"");
    let risk = pos("id=\"at-risk\"");
    let nodes_cpu = pos("id=\"nodes-cpu-table\"");
    let vms_nodes = pos("id=\"vms-nodes-table\"");
    assert!(
        summary < risk && risk < nodes_cpu && nodes_cpu < vms_nodes,
        "{dom}"
    );
    assert!(dom.contains("3 VMs"), "{dom}");
    // The at-risk table names VM 100 and its fix, and not the fine VM.
    let risk_table = &dom[pos("id=\"at-risk-table\"")..nodes_cpu];
    assert!(risk_table.contains("100 (big)"), "{risk_table}");
    assert!(risk_table.contains("above-baseline"), "{risk_table}");
    assert!(
        risk_table.contains("qm set 100 --cpu x86-64-v3"),
        "{risk_table}"
    );
    assert!(!risk_table.contains("102 (fine)"), "{risk_table}");
    // The missing guard is a finding with its command, after the matrices.
    let other = &dom[pos("id=\"other\"")..];
    assert!(
        other.contains("pve-cpuguard attach 103</code> on pve2"),
        "{other}"
    );
    assert!(pos("id=\"other\"") > vms_nodes, "{dom}");
    // Every VM has its row in the VMs × nodes matrix, at-risk VM first.
    let matrix = &dom[vms_nodes..];
    let r100 = matrix.find("data-vmid=\"100\"").expect("row 100");
    let r102 = matrix.find("data-vmid=\"102\"").expect("row 102");
    let r103 = matrix.find("data-vmid=\"103\"").expect("row 103");
    assert!(r100 < r102 && r102 < r103, "{matrix}");
    // VM 100 (x86-64-v4) cannot start on the Haswell pve2: a red cell.
    let row100 = &matrix[r100..r102];
    assert!(row100.contains("class=\"c no\""), "{row100}");
    // The node without data is marked in the matrices' headers, as never
    // scanned (not "stale": the one wording of every command).
    let nc = &dom[nodes_cpu..vms_nodes];
    assert!(
        nc.contains("pve3 <span class=\"badge stale\">never scanned</span>"),
        "{nc}"
    );

    // A screenshot: a real PNG with some size (checked by eye too).
    let shot = c.path("audit.png");
    browse(
        c.dir.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1000",
            &url,
        ],
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 10_000, "screenshot only {} bytes", png.len());
}

/// More VMs than a page shows a row each for (200): the VMs grouped by
/// what they share, every VMID folded into its group, and a pointer to
/// the filters in place of the VMs × nodes matrix; `--all` still gives a
/// row each.
#[test]
fn a_large_cluster_gets_groups_not_a_row_per_vm() {
    let mut c = cluster();
    // 100, 102, 103 and these: 203 VMs, every x86-64-v4 one at risk.
    for vmid in 200..400 {
        let cpu = if vmid % 2 == 0 {
            "x86-64-v4"
        } else {
            "x86-64-v2-AES"
        };
        c.vm(vmid, "pve1", &format!("cpu: {cpu}\n{GUARD}"));
    }
    let out = c.on("pve1", &["audit", "--output", "html"]).run().code(1);
    let html = &out.stdout;
    assert!(!html.contains("data-vmid"), "a row per VM:\n{html}");
    let page = c.path("grouped.html");
    std::fs::write(&page, html).unwrap();
    let dom = browse(
        c.dir.path(),
        &["--dump-dom", &format!("file://{}", page.display())],
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    let pos = |needle: &str| {
        dom.find(needle)
            .unwrap_or_else(|| panic!("rendered DOM lacks {needle:?}:\n{dom}"))
    };
    assert!(pos("id=\"summary\"") < pos("id=\"at-risk-table\""), "{dom}");
    assert!(dom.contains("203 VMs"), "{dom}");
    // The x86-64-v4 VMs (100 and the even ones) are one group of 101,
    // with every VMID and the fix.
    let risk = &dom[pos("id=\"at-risk-table\"")..pos("id=\"nodes\"")];
    let group = risk
        .split("<tr>")
        .find(|r| r.contains("101 VMs"))
        .unwrap_or_else(|| panic!("no group of 101 VMs: {risk}"));
    assert!(group.contains("above-baseline"), "{group}");
    assert!(group.contains("100, 200, 202, 204"), "{group}");
    assert!(group.contains("398"), "{group}");
    assert!(
        group.contains("<code>qm set VMID --cpu x86-64-v3</code>"),
        "{group}"
    );
    // Where the matrix was: how to see a row each.
    let vms_nodes = &dom[pos("id=\"vms-nodes\"")..pos("id=\"other\"")];
    assert!(vms_nodes.contains("--on NODE"), "{vms_nodes}");
    // The missing guard is a group too.
    assert!(
        dom[pos("id=\"other\"")..].contains("no-guard-hookscript"),
        "{dom}"
    );
    // Nodes × CPU types stays: a column per distinct start answer.
    assert!(dom.contains("id=\"nodes-cpu-table\""), "{dom}");

    let all = c
        .on("pve1", &["audit", "--output", "html", "--all"])
        .run()
        .code(1);
    assert_eq!(all.stdout.matches("data-vmid=").count(), 203);
}
