//! The fixed exchange with QEMU: its arguments, the QMP script, and the
//! constant shell command that runs both on another node.

use serde_json::json;

use super::QEMU_BINARIES;
use crate::cpu::qemu_report::Accel;
use crate::reach::qmp::{self, QmpCommand};

/// QEMU's arguments: an empty machine (`-machine none`: no guest RAM, no
/// devices), no default devices or user config, no display, QMP on stdio,
/// paused. The same for every node; nothing configurable.
#[must_use]
pub fn qemu_args(accel: Accel) -> [&'static str; 11] {
    [
        "-machine",
        "none",
        "-accel",
        accel.as_str(),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-qmp",
        "stdio",
        "-S",
    ]
}

/// The QMP script: negotiate, version, expansion, definitions, quit.
#[must_use]
pub fn script(accel: Accel) -> String {
    qmp::script(&[
        QmpCommand::new("capabilities", "qmp_capabilities"),
        QmpCommand::new("version", "query-version"),
        QmpCommand::with_args(
            "expansion",
            "query-cpu-model-expansion",
            json!({"type": "full", "model": {"name": accel.expanded_model()}}),
        ),
        QmpCommand::new("definitions", "query-cpu-definitions"),
        QmpCommand::new("quit", "quit"),
    ])
}

/// The fixed shell command that runs the probe on another node (for SSH):
/// it picks the first QEMU binary of [`QEMU_BINARIES`], feeds it [`script`]
/// and bounds it with coreutils `timeout`. Only constants and an integer
/// are interpolated; the caller still applies its own deadline.
#[must_use]
pub fn remote_command(accel: Accel, timeout_secs: u32) -> String {
    let lines: Vec<String> = script(accel).lines().map(|l| format!("'{l}'")).collect();
    format!(
        "q=$(command -v {} || command -v {}) || {{ echo 'pve-cpuguard: no QEMU binary' >&2; exit 127; }}; \
         printf '%s\\n' {} | timeout -s KILL {timeout_secs} \"$q\" {}",
        QEMU_BINARIES[0],
        QEMU_BINARIES[1],
        lines.join(" "),
        qemu_args(accel).join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_command_is_fixed_and_quotable() {
        let s = script(Accel::Kvm);
        assert!(
            !s.contains('\''),
            "script lines are single-quoted in the shell"
        );
        let c = remote_command(Accel::Kvm, 8);
        assert!(c.contains("timeout -s KILL 8 \"$q\" -machine none -accel kvm"));
        assert!(c.contains("'{\"execute\":\"qmp_capabilities\",\"id\":\"capabilities\"}'"));
    }
}
