//! Colour for the words a person must not miss: refused, stale, warning.
//!
//! Styles are written with `anstyle`; every human-facing write goes through
//! `anstream`, which passes them on only to a terminal and drops them when
//! `NO_COLOR` is set (or the output is a pipe or file), so scripts and logs
//! never see escape sequences. `CLICOLOR_FORCE` forces them.

use anstyle::{AnsiColor, Style};

const REFUSED: Style = AnsiColor::Red.on_default().bold();
const STALE: Style = AnsiColor::Yellow.on_default();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();

fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// A refusal or a failure.
#[must_use]
pub fn refused(text: &str) -> String {
    paint(REFUSED, text)
}

/// Data older than allowed, or missing.
#[must_use]
pub fn stale(text: &str) -> String {
    paint(STALE, text)
}

/// A warning.
#[must_use]
pub fn warning(text: &str) -> String {
    paint(WARNING, text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn styles_wrap_the_text_and_reset_after_it() {
        let s = super::refused("refused");
        assert!(
            s.starts_with('\x1b') && s.contains("refused") && s.ends_with("\x1b[0m"),
            "{s:?}"
        );
        assert_eq!(anstream::adapter::strip_str(&s).to_string(), "refused");
    }
}
