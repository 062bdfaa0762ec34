//! The cluster view shared by `scan`, `status` and `baseline`: node lines
//! in ProxCLMC's format, the cluster CPU type, and JSON for records.
//!
//! ProxCLMC 1.2.0 prints (observed): `Detected nodes:`, one
//! `name | address | level` line per node, an empty line, then
//! `Cluster CPU type: <level>`. Those lines are kept byte for byte so that
//! scripts written for it keep working.

use serde_json::{json, Value};

use crate::cache::{self, Cache, NodeRecord};
use crate::cpu::level;

/// The header line.
pub const HEADER: &str = "Detected nodes:";

/// `name | address | level`.
#[must_use]
pub fn node_line(name: &str, address: &str, level: &str) -> String {
    format!("{name} | {address} | {level}")
}

/// `Cluster CPU type: <level>`.
#[must_use]
pub fn cluster_line(level: Option<&str>) -> String {
    format!("Cluster CPU type: {}", level.unwrap_or("unknown"))
}

/// A record's level, recomputed from its facts with this version's rules
/// (the stored `level` is what the scanning version computed).
#[must_use]
pub fn level_of(rec: &NodeRecord) -> &'static str {
    level::of(&rec.capability()).name
}

/// The lowest level over every record in the cache (fresh or stale).
#[must_use]
pub fn cluster_type(cache: &Cache) -> Option<&'static str> {
    level::lowest(cache.nodes.values().map(level_of))
}

/// Names of stale records.
#[must_use]
pub fn stale_names(cache: &Cache) -> Vec<String> {
    cache
        .nodes
        .values()
        .filter(|r| r.is_stale())
        .map(|r| r.name.clone())
        .collect()
}

/// `scanned 5m 3s ago` or `scanned 2h ago, STALE: error (last attempt 1m ago)`.
#[must_use]
pub fn age_text(rec: &NodeRecord, now: u64) -> String {
    let mut s = if rec.scanned_at > now.saturating_add(cache::CLOCK_SKEW) {
        // Not "0s ago": a date from the future means a skewed clock.
        format!(
            "DATED {} IN THE FUTURE (clock skew?)",
            cache::human_age(rec.scanned_at - now)
        )
    } else {
        format!("scanned {} ago", cache::human_age(rec.age(now)))
    };
    if let Some(e) = &rec.last_error {
        s.push_str(&format!(", STALE: last refresh failed: {}", first_line(e)));
        if let Some(at) = rec.last_attempt_at {
            s.push_str(&format!(
                " ({} ago)",
                cache::human_age(now.saturating_sub(at))
            ));
        }
    }
    s
}

/// The first line of a possibly multi-line message.
#[must_use]
pub fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// A record as JSON (stable field names).
#[must_use]
pub fn record_json(rec: &NodeRecord, now: u64) -> Value {
    json!({
        "name": rec.name,
        "address": rec.address,
        "level": level_of(rec),
        "vendor": rec.vendor,
        "model_name": rec.model_name,
        "family": rec.family,
        "model": rec.model,
        "stepping": rec.stepping,
        "microcode": rec.microcode,
        "phys_bits": rec.phys_bits,
        "kernel": rec.kernel,
        "scanned_at": rec.scanned_at,
        "age_seconds": rec.age(now),
        "stale": rec.is_stale(),
        "last_error": rec.last_error,
        "last_attempt_at": rec.last_attempt_at,
    })
}
