//! How old a record is, and when its date cannot be trusted: the clock,
//! skew between nodes, ancient records, and ages in words.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
#[must_use]
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How far in the future a record may be dated before it counts as clock
/// skew (the scanning node's clock and this one's differ a little).
pub const CLOCK_SKEW: u64 = 300;

/// A record older than this many staleness limits (`cache_max_age`) is
/// "ancient": not merely stale but a sign that refreshes stopped long ago
/// (or that it is dated 1970).
pub const ANCIENT_FACTOR: u64 = 10;

/// Why a record's date cannot be trusted, if it cannot: dated in the
/// future (clock skew) or older than [`ANCIENT_FACTOR`] times the staleness
/// limit `max_age` (seconds); the reason and a `note:` line on what to do
/// (for refusals). The same judgement as [`super::Freshness`].
#[must_use]
pub fn time_problem(scanned_at: u64, now: u64, max_age: u64) -> Option<String> {
    let f = super::Freshness::of(scanned_at, None, None, now, max_age);
    if !f.date_is_suspect() {
        return None;
    }
    let why = f.why()?;
    Some(match f.hint() {
        Some(h) => format!("record: {why}\nnote: {h}"),
        None => format!("record: {why}"),
    })
}

/// `3d 4h`, `2h 5m`, `4m 10s`, `12s`.
#[must_use]
pub fn human_age(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86400,
        secs % 86400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn future_and_ancient_records_are_flagged() {
        let now = 1_000_000;
        assert_eq!(time_problem(now, now, 7200), None);
        assert_eq!(time_problem(now + CLOCK_SKEW, now, 7200), None);
        let e = time_problem(now + 3600, now, 7200).unwrap();
        assert!(e.starts_with("record: dated 1h 0m in the future"), "{e}");
        assert!(e.contains("\nnote: check the clocks"), "{e}");
        assert_eq!(time_problem(now - 72_000, now, 7200), None);
        let e = time_problem(0, now, 7200).unwrap();
        assert!(
            e.starts_with(
                "record: older than cache_max_age (2h 0m), and more than 10 times the staleness \
                 limit"
            ),
            "{e}"
        );
        assert!(time_problem(5, u64::MAX, 0).is_some(), "no overflow");
    }

    #[test]
    fn human_ages() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(125), "2m 5s");
        assert_eq!(human_age(7500), "2h 5m");
        assert_eq!(human_age(90000), "1d 1h");
    }
}
