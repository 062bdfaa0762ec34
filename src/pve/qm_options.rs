//! `qm migrate`'s options, read as `qm` reads them, so that the wrapper
//! (`pve-cpuguard migrate`) judges the migration `qm` will run.
//!
//! `qm` parses its command line with `PVE::JSONSchema::get_options`
//! (pve-common `src/PVE/JSONSchema.pm`): Perl's Getopt::Long with its
//! defaults (option names case-insensitive, unique abbreviations, an exact
//! name winning over longer ones, options and arguments in any order) and
//! `prefix_pattern=(--|-)`, so `-online`, `--online`, `--ONLINE`, `--onl`
//! are one option. Every schema property is an option except the fixed
//! `node` (`vmid` and `target` too, though the positional arguments
//! override them). Booleans are declared `:s` (an optional value: the next
//! argument is taken unless it is `--` or starts with `-` and more), other
//! types `=s` (a mandatory value: the next argument, whatever it is); an
//! empty boolean value means 1, any other goes through `parse_boolean`
//! (case-insensitive 1/on/yes/true, 0/off/no/false), else qm fails with
//! "unable to parse boolean option". The option list is `migrate_vm`'s in
//! qemu-server `src/PVE/API2/Qemu.pm` (`qm migrate` in
//! `src/PVE/CLI/qm.pm`).

/// How an option takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A boolean: optional value (`:s`).
    Boolean,
    /// Anything else: mandatory value (`=s`).
    Value,
}

/// `qm migrate`'s options: `migrate_vm`'s properties but `node`.
const MIGRATE: &[(&str, Kind)] = &[
    ("bwlimit", Kind::Value),
    ("force", Kind::Boolean),
    ("migration_network", Kind::Value),
    ("migration_type", Kind::Value),
    ("online", Kind::Boolean),
    ("target", Kind::Value),
    ("targetstorage", Kind::Value),
    ("vmid", Kind::Value),
    ("with-conntrack-state", Kind::Boolean),
    ("with-local-disks", Kind::Boolean),
];

/// What the wrapper needs of `qm migrate`'s options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Migrate {
    /// `--online`: a live migration if the VM runs.
    pub online: bool,
}

/// Reads `qm migrate VMID TARGET`'s options (the arguments after the
/// target) as qm does.
///
/// # Errors
/// What qm would refuse too, said plainly: an unknown or ambiguous option,
/// a missing value, a boolean qm cannot read, a further argument.
pub fn migrate(args: &[String]) -> Result<Migrate, String> {
    let mut out = Migrate::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            // Getopt::Long stops here; what follows are arguments, and qm
            // takes none beyond VMID and TARGET.
            return match it.next() {
                Some(extra) => Err(too_many(extra)),
                None => Ok(out),
            };
        }
        let Some(body) = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .filter(|b| !b.is_empty())
        else {
            return Err(too_many(arg));
        };
        // `--name=value` (Getopt::Long splits at the first `=` after the
        // first character).
        let (name, inline) = match body.char_indices().skip(1).find(|&(_, c)| c == '=') {
            Some((i, _)) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let (option, kind) = find(name)?;
        match kind {
            Kind::Value => {
                let given = inline.or_else(|| it.next().map(String::as_str));
                if given.is_none_or(str::is_empty) {
                    return Err(format!("option --{option} needs a value"));
                }
            }
            Kind::Boolean => {
                let value = match inline {
                    Some(v) => v,
                    None => {
                        // The next argument is the value unless it looks
                        // like an option (or ends them).
                        let next = it.as_slice().first();
                        match next {
                            Some(n) if !(n == "--" || (n.starts_with('-') && n.len() > 1)) => {
                                it.next();
                                n.as_str()
                            }
                            _ => "",
                        }
                    }
                };
                let Some(b) = boolean(value) else {
                    return Err(format!(
                        "option --{option}: '{}' is not a boolean (valid: 1, 0, on, off, yes, \
                         no, true, false, or none for 1)",
                        crate::error::quoted(value)
                    ));
                };
                if option == "online" {
                    out.online = b;
                }
            }
        }
    }
    Ok(out)
}

/// The option `name` stands for: itself, or the one option it abbreviates
/// (case-insensitive, as Getopt::Long's `ignore_case` and `auto_abbrev`).
fn find(name: &str) -> Result<(&'static str, Kind), String> {
    let lower = name.to_ascii_lowercase();
    if let Some(&(n, k)) = MIGRATE.iter().find(|(n, _)| *n == lower) {
        return Ok((n, k));
    }
    let hits: Vec<&(&str, Kind)> = MIGRATE
        .iter()
        .filter(|(n, _)| n.starts_with(&lower))
        .collect();
    match hits.as_slice() {
        [(n, k)] => Ok((n, *k)),
        [] => Err(format!(
            "unknown option '{}' for `qm migrate` (its options: {})",
            crate::error::quoted(name),
            MIGRATE
                .iter()
                .filter(|(n, _)| *n != "vmid" && *n != "target")
                .map(|(n, _)| format!("--{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        many => Err(format!(
            "option '{}' is ambiguous for `qm migrate`: it abbreviates {}",
            crate::error::quoted(name),
            many.iter()
                .map(|(n, _)| format!("--{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn too_many(arg: &str) -> String {
    format!(
        "unexpected argument '{}': `qm migrate` takes VMID and TARGET, then options",
        crate::error::quoted(arg)
    )
}

/// A boolean option's value as qm reads it: empty means 1, else
/// `PVE::JSONSchema::parse_boolean` (case-insensitive).
#[must_use]
pub fn boolean(value: &str) -> Option<bool> {
    if value.is_empty() {
        return Some(true);
    }
    crate::pve::parse_boolean(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn online(args: &[&str]) -> Result<bool, String> {
        let v: Vec<String> = args.iter().map(|s| (*s).to_string()).collect();
        migrate(&v).map(|m| m.online)
    }

    #[test]
    fn online_in_every_spelling_qm_reads() {
        for args in [
            &["--online"][..],
            &["-online"],
            &["--ONLINE"],
            &["--Onl"],
            &["-o"],
            &["--online", "TRUE"],
            &["--online=Yes"],
            &["--online", "on", "--with-local-disks"],
            &["--online", "--with-local-disks"],
            &["--online="],
            &["--online", ""],
            &["--online", "0", "--online"],
            &["--bwlimit", "5", "--online", "1"],
        ] {
            assert_eq!(online(args), Ok(true), "{args:?}");
        }
    }

    #[test]
    fn not_online() {
        for args in [
            &[][..],
            &["--online", "0"],
            &["--online=off"],
            &["--ONLINE", "No"],
            &["--online", "FALSE"],
            &["--with-local-disks"],
            // A mandatory value takes the next argument, whatever it is.
            &["--migration_network", "--online"],
            &["--targetstorage", "-online"],
        ] {
            assert_eq!(online(args), Ok(false), "{args:?}");
        }
    }

    #[test]
    fn what_qm_refuses_is_refused() {
        for (args, want) in [
            (&["--online", "maybe"][..], "is not a boolean"),
            (&["--online=2"], "is not a boolean"),
            (&["--with"], "is ambiguous"),
            (&["--migration"], "is ambiguous"),
            (&["--t"], "is ambiguous"),
            (&["--live"], "unknown option"),
            (&["--bwlimit"], "needs a value"),
            (&["--bwlimit="], "needs a value"),
            (&["extra"], "unexpected argument"),
            (&["--", "--online"], "unexpected argument"),
            (&["-"], "unexpected argument"),
        ] {
            let e = online(args).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    #[test]
    fn hostile_values_are_quoted_in_part() {
        let long = format!("--online={}", "\u{1b}x".repeat(50_000));
        let e = online(&[&long]).unwrap_err();
        assert!(e.len() < 400, "{}", e.len());
        assert!(!e.contains('\u{1b}'));
    }
}
