//! `scan`, `status` and `baseline` against real sshd processes.

mod common;

use common::{expected_level, Cluster};

const HASWELL: &str = "archspec-linux-rhel7-haswell.txt";
const ZEN3: &str = "archspec-linux-ubuntu20.04-zen3.txt";
const SAPPHIRE: &str = "archspec-linux-unknown-sapphirerapids.txt";

#[test]
fn three_nodes_report_their_levels_in_proxclmc_format() {
    let mut c = Cluster::new();
    c.sshd("pve1", HASWELL);
    c.sshd("pve2", ZEN3);
    c.sshd("pve3", SAPPHIRE);
    c.write_config();
    let run = c.run(&["scan"]);
    run.expect_code(0);
    let mut expected = String::from("Detected nodes:\n");
    for n in &c.nodes {
        expected.push_str(&format!(
            "{} | {} | {}\n",
            n.name,
            n.addr,
            expected_level(n.sample.as_deref().unwrap())
        ));
    }
    let cluster =
        pve_cpuguard::level::lowest([HASWELL, ZEN3, SAPPHIRE].map(expected_level)).unwrap();
    expected.push_str(&format!("\nCluster CPU type: {cluster}\n"));
    assert_eq!(run.stdout, expected, "stderr: {}", run.stderr);
}
