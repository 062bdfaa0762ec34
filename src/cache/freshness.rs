//! [`Freshness`]: how old a node's record is and whether it is stale, the
//! one answer every command prints (issue 23: `status` called a record
//! STALE that `audit` called 0 s old and fresh).
//!
//! It is worked out from the record's date, its last refresh and
//! `cache_max_age` alone, here, and every command words it through
//! [`Freshness::text`] and writes it to JSON through its one shape
//! (`{state, stale, age_seconds, why}`).

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::age::{human_age, ANCIENT_FACTOR, CLOCK_SKEW};

/// How current a node's record is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Younger than `cache_max_age`, last refresh fine.
    Fresh {
        /// Seconds since the scan.
        age: u64,
    },
    /// Its date says it cannot be relied on.
    Stale {
        /// Seconds since the scan; `None` when dated in the future.
        age: Option<u64>,
        /// Why.
        why: StaleWhy,
    },
    /// The latest refresh could not reach the node: the record is the last
    /// good one, kept (stale, whatever its age).
    RefreshFailed {
        /// Seconds since the last good scan (`None`: dated in the future).
        age: Option<u64>,
        /// First line of the refresh's error.
        error: String,
        /// Seconds since the failed attempt, if recorded.
        attempt_ago: Option<u64>,
    },
    /// No record: no scan ever read this node.
    NeverScanned {
        /// First line of the last attempt's error, if one was made.
        error: Option<String>,
    },
}

/// Why a record is stale by its date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleWhy {
    /// Older than `cache_max_age` (seconds).
    OlderThanLimit(u64),
    /// Older than [`ANCIENT_FACTOR`] times `cache_max_age` (seconds):
    /// refreshes stopped long ago, or it is dated 1970.
    Ancient(u64),
    /// Dated this many seconds in the future (clock skew).
    Future(u64),
}

impl Freshness {
    /// A record's freshness from its date (`scanned_at`), its last
    /// refresh's error and attempt, now and `cache_max_age` (`max_age`).
    #[must_use]
    pub fn of(
        scanned_at: u64,
        last_error: Option<&str>,
        last_attempt_at: Option<u64>,
        now: u64,
        max_age: u64,
    ) -> Self {
        let future = scanned_at > now.saturating_add(CLOCK_SKEW);
        let age = (!future).then(|| now.saturating_sub(scanned_at));
        if let Some(e) = last_error {
            return Freshness::RefreshFailed {
                age,
                error: first_line(e).to_string(),
                attempt_ago: last_attempt_at.map(|at| now.saturating_sub(at)),
            };
        }
        let Some(age) = age else {
            return Freshness::Stale {
                age: None,
                why: StaleWhy::Future(scanned_at - now),
            };
        };
        let why = if age > max_age.saturating_mul(ANCIENT_FACTOR).max(1) {
            StaleWhy::Ancient(max_age)
        } else if age > max_age {
            StaleWhy::OlderThanLimit(max_age)
        } else {
            return Freshness::Fresh { age };
        };
        Freshness::Stale {
            age: Some(age),
            why,
        }
    }

    /// A node no scan ever read; `error`: why the last attempt failed.
    #[must_use]
    pub fn never_scanned(error: Option<&str>) -> Self {
        Freshness::NeverScanned {
            // No attempt recorded (a node only the cluster file system
            // knows) is no error to quote.
            error: error
                .map(first_line)
                .filter(|e| !e.trim().is_empty())
                .map(str::to_string),
        }
    }

    /// Whether the record is stale (anything but [`Freshness::Fresh`]).
    #[must_use]
    pub fn is_stale(&self) -> bool {
        !matches!(self, Freshness::Fresh { .. })
    }

    /// Seconds since the scan; `None` when never scanned or dated in the
    /// future (a skewed clock: its age is unknown, never "0 s").
    #[must_use]
    pub fn age(&self) -> Option<u64> {
        match self {
            Freshness::Fresh { age } => Some(*age),
            Freshness::Stale { age, .. } | Freshness::RefreshFailed { age, .. } => *age,
            Freshness::NeverScanned { .. } => None,
        }
    }

    /// `fresh`, `stale`, `refresh-failed` or `never-scanned` (JSON `state`).
    #[must_use]
    pub fn state(&self) -> &'static str {
        match self {
            Freshness::Fresh { .. } => "fresh",
            Freshness::Stale { .. } => "stale",
            Freshness::RefreshFailed { .. } => "refresh-failed",
            Freshness::NeverScanned { .. } => "never-scanned",
        }
    }

    /// Whether the record's date itself is wrong (in the future, or ages
    /// ago): worth a warning wherever the record is used.
    #[must_use]
    pub fn date_is_suspect(&self) -> bool {
        matches!(
            self,
            Freshness::Stale {
                why: StaleWhy::Future(_) | StaleWhy::Ancient(_),
                ..
            }
        )
    }

    /// Why it is not fresh, in one line (JSON `why`); `None` when fresh.
    #[must_use]
    pub fn why(&self) -> Option<String> {
        Some(match self {
            Freshness::Fresh { .. } => return None,
            Freshness::Stale { why, .. } => match why {
                StaleWhy::OlderThanLimit(max) => {
                    format!("older than cache_max_age ({})", human_age(*max))
                }
                StaleWhy::Ancient(max) => format!(
                    "older than cache_max_age ({}), and more than {ANCIENT_FACTOR} times the \
                     staleness limit: refreshes seem to have stopped",
                    human_age(*max)
                ),
                StaleWhy::Future(ahead) => format!(
                    "dated {} in the future (clock skew between nodes?): its age is unknown",
                    human_age(*ahead)
                ),
            },
            Freshness::RefreshFailed {
                error, attempt_ago, ..
            } => match attempt_ago {
                Some(ago) => format!("last refresh failed: {error} ({} ago)", human_age(*ago)),
                None => format!("last refresh failed: {error}"),
            },
            Freshness::NeverScanned { error: None } => "never scanned".into(),
            Freshness::NeverScanned { error: Some(e) } => {
                format!("never scanned (last attempt: {e})")
            }
        })
    }

    /// [`Freshness::why`] without what is the node's own (its error, its
    /// date), for grouping nodes: `older than cache_max_age (2h 0m)`,
    /// `last refresh failed`; `None` when fresh.
    #[must_use]
    pub fn kind(&self) -> Option<String> {
        match self {
            Freshness::Stale {
                why: StaleWhy::Future(_),
                ..
            } => Some("dated in the future (clock skew between nodes?)".into()),
            Freshness::RefreshFailed { .. } => Some("last refresh failed".into()),
            Freshness::NeverScanned { .. } => Some("never scanned".into()),
            _ => self.why(),
        }
    }

    /// What to do about it, when something can be done.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Freshness::Fresh { .. } => None,
            Freshness::Stale {
                why: StaleWhy::Future(_),
                ..
            } => Some(
                "check the clocks (`timedatectl`) on the node that scanned and on this one, \
                 then run `pve-cpuguard scan`",
            ),
            Freshness::Stale {
                why: StaleWhy::Ancient(_),
                ..
            } => Some(
                "run `pve-cpuguard scan` and check `systemctl status pve-cpuguard-refresh.timer`",
            ),
            _ => Some("run `pve-cpuguard scan`"),
        }
    }

    /// The one line every command prints: `scanned 5m 3s ago`,
    /// `scanned 3d 0h ago, STALE: older than cache_max_age (2h 0m)`,
    /// `never scanned`, …; `via` names where the data came from, `mark`
    /// dresses the alarm word (`STALE`, `never scanned`), e.g. in colour.
    #[must_use]
    pub fn text(&self, via: Option<&str>, mark: impl Fn(&str) -> String) -> String {
        let mut s = match self {
            Freshness::NeverScanned { .. } => return mark(&self.why().unwrap_or_default()),
            Freshness::Stale {
                why: StaleWhy::Future(ahead),
                ..
            } => format!("DATED {} IN THE FUTURE (clock skew?)", human_age(*ahead)),
            _ => match self.age() {
                Some(age) => format!("scanned {} ago", human_age(age)),
                None => "scanned at an unknown time".into(),
            },
        };
        if let Some(v) = via {
            s.push_str(" via ");
            s.push_str(v);
        }
        if let Some(why) = self.why() {
            s.push_str(", ");
            s.push_str(&mark("STALE"));
            s.push_str(": ");
            s.push_str(&why);
        }
        s
    }
}

/// The JSON shape of every command: `{"state", "stale", "age_seconds",
/// "why"}`.
impl Serialize for Freshness {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Freshness", 4)?;
        s.serialize_field("state", self.state())?;
        s.serialize_field("stale", &self.is_stale())?;
        s.serialize_field("age_seconds", &self.age())?;
        s.serialize_field("why", &self.why())?;
        s.end()
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000;
    const LIMIT: u64 = 7200;

    fn of(at: u64) -> Freshness {
        Freshness::of(at, None, None, NOW, LIMIT)
    }

    fn plain(f: &Freshness) -> String {
        f.text(None, str::to_string)
    }

    #[test]
    fn fresh_up_to_the_limit_then_stale_then_ancient() {
        assert_eq!(of(NOW - 60), Freshness::Fresh { age: 60 });
        assert_eq!(of(NOW - LIMIT), Freshness::Fresh { age: LIMIT });
        let old = of(NOW - LIMIT - 1);
        assert!(old.is_stale());
        assert_eq!(old.state(), "stale");
        assert_eq!(
            plain(&old),
            "scanned 2h 0m ago, STALE: older than cache_max_age (2h 0m)"
        );
        let ancient = of(0);
        assert!(ancient.date_is_suspect() && !old.date_is_suspect());
        assert!(plain(&ancient).contains("more than 10 times the staleness limit"));
        assert_eq!(ancient.age(), Some(NOW));
    }

    #[test]
    fn a_record_from_the_future_has_no_age() {
        // Within the skew allowed between clocks: fresh, 0 s old.
        assert_eq!(of(NOW + CLOCK_SKEW), Freshness::Fresh { age: 0 });
        let f = of(NOW + 3600);
        assert_eq!(f.age(), None);
        assert!(f.is_stale() && f.date_is_suspect());
        assert_eq!(
            plain(&f),
            "DATED 1h 0m IN THE FUTURE (clock skew?), STALE: dated 1h 0m in the future \
             (clock skew between nodes?): its age is unknown"
        );
        assert!(f.hint().unwrap().contains("timedatectl"));
    }

    #[test]
    fn a_failed_refresh_is_stale_whatever_the_age() {
        let f = Freshness::of(
            NOW - 60,
            Some("ssh: connection refused\nnote: is sshd running?"),
            Some(NOW - 5),
            NOW,
            LIMIT,
        );
        assert_eq!(f.state(), "refresh-failed");
        assert_eq!(f.age(), Some(60));
        assert_eq!(
            f.text(Some("ssh"), |w| format!("<{w}>")),
            "scanned 1m 0s ago via ssh, <STALE>: last refresh failed: ssh: connection refused \
             (5s ago)"
        );
    }

    #[test]
    fn never_scanned_says_so_and_has_no_age() {
        let f = Freshness::never_scanned(None);
        assert_eq!(
            (f.state(), f.age(), f.is_stale()),
            ("never-scanned", None, true)
        );
        assert_eq!(f.text(Some("ssh"), |w| format!("<{w}>")), "<never scanned>");
        let f = Freshness::never_scanned(Some("connect: timed out\nnote: x"));
        assert_eq!(
            plain(&f),
            "never scanned (last attempt: connect: timed out)"
        );
    }

    #[test]
    fn one_json_shape() {
        let j = |f: &Freshness| serde_json::to_value(f).unwrap();
        assert_eq!(
            j(&of(NOW - 5)),
            serde_json::json!({"state": "fresh", "stale": false, "age_seconds": 5, "why": null})
        );
        assert_eq!(
            j(&Freshness::never_scanned(None)),
            serde_json::json!({"state": "never-scanned", "stale": true, "age_seconds": null,
                "why": "never scanned"})
        );
        // One line each: no embedded `note:` (issue 23).
        for f in [of(0), of(NOW + 9999), of(NOW - LIMIT - 1)] {
            assert!(!j(&f)["why"].as_str().unwrap().contains('\n'), "{f:?}");
        }
    }
}
