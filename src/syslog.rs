//! Decisions go to the system log (journald reads `/dev/log` too) under the
//! stable identifier `pve-cpuguard`, so `journalctl -t pve-cpuguard` shows
//! every refusal, warning and override.
//!
//! Hand-written: one datagram to `/dev/log` is a few lines, cheaper at the
//! hook's start than a logging crate.
//!
//! One RFC 3164-style datagram per message: `<PRI>pve-cpuguard[PID]: text`.
//! Logging never fails a command: a missing socket is silently skipped.
//! `PVE_CPUGUARD_SYSLOG_SOCKET` points elsewhere (tests bind their own).

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// The syslog identifier (`SYSLOG_IDENTIFIER` in the journal).
pub const IDENT: &str = "pve-cpuguard";

/// Message severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A refusal.
    Err = 3,
    /// An allowed start or move with a warning, or an override.
    Warning = 4,
    /// A notable but normal event (drift, scan result).
    Notice = 5,
    /// Routine information.
    Info = 6,
}

/// Where messages go: `/dev/log` unless `PVE_CPUGUARD_SYSLOG_SOCKET` says.
#[must_use]
pub fn socket_path() -> PathBuf {
    std::env::var_os("PVE_CPUGUARD_SYSLOG_SOCKET")
        .map_or_else(|| PathBuf::from("/dev/log"), PathBuf::from)
}

/// Formats one datagram (facility `daemon`).
#[must_use]
pub fn format(severity: Severity, message: &str) -> String {
    const DAEMON: u8 = 3;
    let pri = DAEMON * 8 + severity as u8;
    let one_line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("<{pri}>{IDENT}[{}]: {one_line}", std::process::id())
}

/// Sends one message; errors are ignored on purpose.
pub fn log(severity: Severity, message: &str) {
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let _ = sock.set_write_timeout(Some(std::time::Duration::from_millis(200)));
    let _ = sock.send_to(format(severity, message).as_bytes(), socket_path());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_one_line_with_priority_and_identifier() {
        let s = format(Severity::Err, "refused\nVM 100");
        assert!(s.starts_with("<27>pve-cpuguard["), "{s}");
        assert!(s.ends_with("]: refused VM 100"), "{s}");
    }
}
