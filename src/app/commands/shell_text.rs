//! Command lines for people to copy, as the text output prints them:
//! each fits [`output::WIDTH`] columns and a POSIX shell reads it back as
//! exactly the arguments the command itself runs (which it runs directly,
//! never through a shell).

use std::path::Path;

use crate::app::output;

/// A word as a shell reads it back unchanged: bare when safe (a list of
/// nodes too), a flag list
/// in double quotes (its characters are letters, digits and `+-;._`, none
/// special there), anything else in single quotes.
pub fn shell_word(arg: &str) -> String {
    let safe = |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | '+' | ',')
    };
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
/// go on continuation lines (` \`), and a quoted word too long for one
/// line breaks inside it: a double-quoted flag list after a `;` with `\`
/// at the end of the line, which the shell removes inside double quotes; a
/// single-quoted text after a space, closing the quote and ending the line
/// in `'\` and reopening it on the next (`'…'\⏎'…'` is one word); a bare
/// list after a `,` with `\` at the end of the line. Such a next line
/// starts at column 0, so no space enters the value.
pub fn shell_lines(binary: &Path, args: &[String]) -> String {
    shell_lines_indented("", binary, args)
}

/// [`shell_lines`] with every line that starts a word indented by
/// `indent` (a line continuing a quoted word still starts at column 0).
pub fn shell_lines_indented(indent: &str, binary: &Path, args: &[String]) -> String {
    let max = output::WIDTH;
    let cols = |s: &str| s.chars().count();
    // An option and its value stay on one line.
    let mut chunks: Vec<Vec<String>> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let pair = args[i].starts_with("--") && i + 1 < args.len();
        let n = if pair { 2 } else { 1 };
        chunks.push(args[i..i + n].iter().map(|a| shell_word(a)).collect());
        i += n;
    }
    let mut lines: Vec<String> = vec![format!(
        "{indent}{}",
        shell_word(&binary.display().to_string())
    )];
    for chunk in chunks {
        let text = chunk.join(" ");
        let last = lines.last_mut().expect("one line at least");
        if cols(last) + 1 + cols(&text) + 2 <= max {
            last.push(' ');
            last.push_str(&text);
            continue;
        }
        last.push_str(" \\");
        let line = format!("{indent}    {text}");
        let word = chunk.last().map_or("", String::as_str);
        if cols(&line) <= max || word.len() < 2 {
            lines.push(line);
            continue;
        }
        let prefix = &line[..line.len() - word.len()];
        let (sep, close, open) = match word.as_bytes()[0] {
            // Inside double quotes `\⏎` is removed.
            b'"' => (';', "\\", ""),
            // Out of single quotes and back in.
            b'\'' => (' ', "'\\", "'"),
            // A bare list (`--nodes a:2,b:1,…`): `\⏎` is removed there too.
            _ => (',', "\\", ""),
        };
        let mut cur = prefix.to_string();
        let mut started = false;
        for p in word.split_inclusive(sep) {
            if started && cols(&cur) + cols(p) + cols(close) > max {
                lines.push(format!("{cur}{close}"));
                cur = open.to_string();
            }
            cur.push_str(p);
            started = true;
        }
        lines.push(cur);
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

    /// The arguments `sh` reads back from `text` (its binary replaced by
    /// a `printf` that prints each on a line).
    fn read_back(text: &str, binary: &str) -> Vec<String> {
        let script = text.replacen(binary, "printf '%s\\n'", 1);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("sh runs");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn long_quoted_and_bare_words_break_so_that_a_shell_reads_them_back_whole() {
        let comment = format!("it's {}", "a long comment ".repeat(15));
        let nodes: Vec<String> = (1..=40).map(|i| format!("pve{i:02}:2")).collect();
        let flags: Vec<String> = (0..30).map(|i| format!("+flag-{i}")).collect();
        let args: Vec<String> = [
            "rules",
            "add",
            "--nodes",
            &nodes.join(","),
            "--flags",
            &flags.join(";"),
            "--comment",
            &comment,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        let text = shell_lines_indented("  ", Path::new("/usr/sbin/ha-manager"), &args);
        for l in text.lines() {
            assert!(l.chars().count() <= output::WIDTH, "{l}");
        }
        assert!(
            text.starts_with("  /usr/sbin/ha-manager rules add \\\n"),
            "{text}"
        );
        assert!(text.contains("a long '\\\n'comment"), "{text}");
        assert_eq!(read_back(&text, "/usr/sbin/ha-manager"), args, "{text}");
    }
}
