//! Proxmox VE's programs (`qm`, `ha-manager`) replaced at the exec
//! boundary: a script that records its exact argv, then does what the
//! test says.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use super::cluster::script;

/// What `qm set VMID --hookscript VOLID` and `qm set VMID --delete
/// hookscript` do to the VM config (shell, for [`Recorder::new`]); the
/// config is found as the binary finds it, through its environment.
pub const QM_SET_HOOKSCRIPT: &str = r#"conf="$PVE_CPUGUARD_PVE_DIR/nodes/$PVE_CPUGUARD_NODE/qemu-server/$2.conf"
grep -v '^hookscript:' "$conf" > "$conf.new"
if [ "$3" = "--hookscript" ]; then echo "hookscript: $4" >> "$conf.new"; fi
mv "$conf.new" "$conf"
"#;

/// A program that appends its argv to a log (one argument per line, a
/// `--` line after each call), then runs `then`.
pub struct Recorder {
    /// The script, for `PVE_CPUGUARD_QM` and the like.
    pub program: PathBuf,
    /// The log of calls.
    pub log: PathBuf,
}

impl Recorder {
    /// `dir/NAME`, logging to `dir/NAME.log`; `then` is shell run after
    /// the call is logged, with the arguments in `$@`.
    pub fn new(dir: &Path, name: &str, then: &str) -> Recorder {
        let program = dir.join(name);
        let log = dir.join(format!("{name}.log"));
        script(
            &program,
            &format!(
                "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> '{log}'\necho -- >> '{log}'\n{then}",
                log = log.display()
            ),
        );
        Recorder { program, log }
    }

    /// Every call so far, each as its argv.
    pub fn calls(&self) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.split_terminator("--\n")
            .map(|c| c.lines().map(str::to_string).collect())
            .collect()
    }

    /// Forgets the calls so far.
    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.log);
    }
}

/// An argv as [`Recorder::calls`] lists it.
pub fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_string()).collect()
}
