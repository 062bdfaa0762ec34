//! Command lines for people to copy, as the text output prints them:
//! each fits [`output::WIDTH`] columns and a POSIX shell reads it back as
//! exactly the arguments the command itself runs (which it runs directly,
//! never through a shell).

use std::path::Path;

use crate::app::output;

/// A word as a shell reads it back unchanged: bare when safe, a flag list
/// in double quotes (its characters are letters, digits and `+-;._`, none
/// special there), anything else in single quotes.
pub fn shell_word(arg: &str) -> String {
    let safe =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | '+');
    if !arg.is_empty() && arg.chars().all(safe) {
        arg.to_string()
    } else if arg.chars().all(|c| safe(c) || c == ';') {
        format!("\"{arg}\"")
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// A command for people to copy, in lines of at most [`output::WIDTH`]
/// columns that a POSIX shell reads back as exactly `binary args`: words
/// go on continuation lines (` \`), and a double-quoted flag list too long
/// for one line breaks after a `;` with `\` at the end of the line, which
/// the shell removes inside double quotes (its next line starts at column
/// 0, so no space enters the value).
pub fn shell_lines(binary: &Path, args: &[String]) -> String {
    let max = output::WIDTH;
    // An option and its value stay on one line.
    let mut chunks: Vec<Vec<String>> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let pair = args[i].starts_with("--") && i + 1 < args.len();
        let n = if pair { 2 } else { 1 };
        chunks.push(args[i..i + n].iter().map(|a| shell_word(a)).collect());
        i += n;
    }
    let mut lines: Vec<String> = vec![shell_word(&binary.display().to_string())];
    for chunk in chunks {
        let text = chunk.join(" ");
        let last = lines.last_mut().expect("one line at least");
        if last.len() + 1 + text.len() + 2 <= max {
            last.push(' ');
            last.push_str(&text);
            continue;
        }
        last.push_str(" \\");
        let line = format!("    {text}");
        let quoted = chunk.last().is_some_and(|w| w.starts_with('"'));
        if line.len() > max && quoted {
            // Break the quoted list after a `;`, each line ending in `\`.
            let mut parts = line.split_inclusive(';').map(str::to_string);
            let mut cur = parts.next().unwrap_or_default();
            let mut out = Vec::new();
            for p in parts {
                if cur.len() + p.len() + 1 > max {
                    out.push(format!("{cur}\\"));
                    cur = String::new();
                }
                cur.push_str(&p);
            }
            out.push(cur);
            lines.extend(out);
            continue;
        }
        lines.push(line);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reach::pvesh;

    #[test]
    fn a_long_flag_list_breaks_inside_its_quotes_and_every_line_fits() {
        let flags: Vec<String> = (0..40).map(|i| format!("+flag-number-{i}")).collect();
        let args = pvesh::create_model_args("custom-evc", "Haswell-noTSX-IBRS", &flags.join(";"));
        let text = shell_lines(Path::new("/usr/bin/pvesh"), &args);
        for l in text.lines() {
            assert!(l.len() <= output::WIDTH, "{l}");
        }
        assert!(text.starts_with("/usr/bin/pvesh create /cluster/qemu/custom-cpu-models"));
        assert!(text.contains(" --flags \"+flag-number-0;"), "{text}");
        // The lines after a break inside the quotes start at column 0.
        assert!(
            text.lines().any(|l| l.starts_with("+flag-number-")),
            "{text}"
        );
        assert!(text.trim_end().ends_with("+flag-number-39\""), "{text}");
    }

    #[test]
    fn words_are_quoted_only_as_needed() {
        assert_eq!(shell_word("custom-evc"), "custom-evc");
        assert_eq!(shell_word("+a;-b"), "\"+a;-b\"");
        assert_eq!(shell_word("/tmp/my dir/pvesh"), "'/tmp/my dir/pvesh'");
        assert_eq!(shell_word("a'b c"), r"'a'\''b c'");
    }
}
