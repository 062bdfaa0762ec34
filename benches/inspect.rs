//! Benchmark: `pve-cpuguard inspect` as a whole process (parse a real
//! /proc/cpuinfo, judge every Proxmox CPU type), median of repeated runs.
//!
//! ```sh
//! cargo bench --bench inspect
//! ```

mod measure;

use std::path::Path;
use std::process::Command;

fn main() {
    let bin = env!("CARGO_BIN_EXE_pve-cpuguard");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cpuinfo");
    for sample in [
        "hwloc-xeon-gold-6230-cascadelake.txt",
        "util-linux-epyc-7451-naples.txt",
    ] {
        let path = data.join(sample);
        let s = measure::measure(
            || {
                let mut c = Command::new(bin);
                c.arg("inspect").arg("--cpuinfo").arg(&path);
                c
            },
            20,
            300,
            0,
        );
        measure::report(&format!("inspect {sample}"), &s);
    }
}
