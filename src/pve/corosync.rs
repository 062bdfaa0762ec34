//! A parser of corosync's configuration syntax (`corosync.conf(5)`).
//! Hand-written: the syntax is corosync's own, no standard format a crate
//! parses.
//!
//! Why a real parser: ProxCLMC scans lines for `name:` and `ring0_addr:`, so
//! `nodelist{` on one line, or a `node { name: a }` block written on one
//! line, yields no nodes at all, silently. Here the file is read as what it
//! is: nested `name { … }` sections holding `key: value` pairs, with `#`
//! comments, any whitespace and any brace placement. Errors name the file
//! and the line.
//!
//! Format facts (corosync `exec/coroparse.c`, `corosync.conf(5)`): a value
//! runs to the end of its line (it may itself contain `:`, as IPv6 addresses
//! do); a `#` that starts a line (after blanks) begins a comment. Beyond
//! corosync's own line-based reader, a value also ends at a `}` so that
//! one-line blocks work.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One `key: value` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The key, e.g. `ring0_addr`.
    pub key: String,
    /// The value, trimmed; may be empty.
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
}

/// A `name { … }` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// The section name (empty for the top level).
    pub name: String,
    /// 1-based line of the name (0 for the top level).
    pub line: usize,
    /// `key: value` pairs, in file order.
    pub pairs: Vec<Pair>,
    /// Nested sections, in file order.
    pub sections: Vec<Section>,
}

impl Section {
    /// The value of the first pair named `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Pair> {
        self.pairs.iter().find(|p| p.key == key)
    }

    /// Every nested section named `name`.
    pub fn sections_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| s.name == name)
    }
}

/// A parsed corosync.conf: its top-level section and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from (for messages).
    pub path: PathBuf,
    /// The top level.
    pub root: Section,
}

/// Reads and parses a corosync.conf.
///
/// # Errors
/// I/O errors and syntax errors (with file and line).
pub fn read(path: &Path) -> Result<Config> {
    let text = crate::fsutil::read_to_string_raw(path).map_err(|e| Error::io(path, e))?;
    parse(&text, path)
}

/// How deep sections may nest. Real files nest three levels (`totem {
/// interface { } }`, `nodelist { node { } }`); a bound keeps a hostile file
/// from building a tree whose recursive drop or walk overflows the stack.
pub const MAX_DEPTH: usize = 32;

/// Parses corosync.conf text; `origin` names the file in error messages.
///
/// # Errors
/// Syntax errors, with file and line: a `}` without an open section, a
/// section left open at the end, a word that is neither `key:` nor `name {`.
pub fn parse(text: &str, origin: &Path) -> Result<Config> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
        origin,
    };
    let mut stack: Vec<Section> = vec![Section::default()];
    loop {
        p.skip_blank_and_comments();
        let Some(c) = p.peek() else { break };
        match c {
            '}' => {
                p.bump();
                if stack.len() == 1 {
                    return Err(p.error(p.line, "`}` without an open section"));
                }
                let done = stack.pop().unwrap_or_default();
                if let Some(parent) = stack.last_mut() {
                    parent.sections.push(done);
                }
            }
            '{' => return Err(p.error(p.line, "`{` without a section name before it")),
            ':' => return Err(p.error(p.line, "`:` without a key before it")),
            _ => {
                let line = p.line;
                let word = p.word();
                p.skip_horizontal();
                if p.peek() != Some(':') {
                    // `name` and its `{` may be on different lines.
                    p.skip_blank_and_comments();
                }
                match p.peek() {
                    Some('{') => {
                        p.bump();
                        if stack.len() > MAX_DEPTH {
                            return Err(p.error(
                                line,
                                format!(
                                    "section `{word}` nested more than {MAX_DEPTH} deep\nnote: corosync.conf nests three levels at most; is this the right file?"
                                ),
                            ));
                        }
                        stack.push(Section {
                            name: word,
                            line,
                            ..Section::default()
                        });
                    }
                    Some(':') => {
                        p.bump();
                        let value = p.value();
                        if let Some(top) = stack.last_mut() {
                            top.pairs.push(Pair {
                                key: word,
                                value,
                                line,
                            });
                        }
                    }
                    _ => {
                        return Err(p.error(
                            line,
                            format!(
                                "expected `{word}: value` or `{word} {{`, found {}",
                                p.describe_next()
                            ),
                        ))
                    }
                }
            }
        }
    }
    if stack.len() > 1 {
        let open = stack.last().map_or(0, |s| s.line);
        let name = stack.last().map(|s| s.name.clone()).unwrap_or_default();
        return Err(p.error(
            open,
            format!("section `{name}` opened here is never closed (missing `}}`)"),
        ));
    }
    Ok(Config {
        path: origin.to_path_buf(),
        root: stack.pop().unwrap_or_default(),
    })
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    origin: &'a Path,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            if c == '\n' {
                self.line += 1;
            }
            self.pos += 1;
        }
    }

    fn error(&self, line: usize, message: impl Into<String>) -> Error {
        Error::parse(self.origin, line, message)
    }

    /// Skips whitespace, newlines and `#` comments (a `#` where a token
    /// would start runs to the end of the line).
    fn skip_blank_and_comments(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' {
                while let Some(c) = self.peek() {
                    if c == '\n' {
                        break;
                    }
                    self.bump();
                }
            } else {
                break;
            }
        }
    }

    fn skip_horizontal(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() && c != '\n' {
                self.bump();
            } else {
                break;
            }
        }
    }

    /// A key or section name: everything up to whitespace, `:`, `{`, `}`.
    fn word(&mut self) -> String {
        let mut w = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, ':' | '{' | '}') {
                break;
            }
            w.push(c);
            self.bump();
        }
        w
    }

    /// A value: the rest of the line, up to a `}`, trimmed.
    fn value(&mut self) -> String {
        let mut v = String::new();
        while let Some(c) = self.peek() {
            if c == '\n' || c == '}' {
                break;
            }
            v.push(c);
            self.bump();
        }
        v.trim().to_string()
    }

    fn describe_next(&self) -> String {
        match self.peek() {
            None => "the end of the file".into(),
            Some('\n') => "the end of the line".into(),
            Some(c) => format!("{c:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(text: &str) -> Result<Config> {
        parse(text, Path::new("corosync.conf"))
    }

    fn names(c: &Config) -> Vec<String> {
        c.root
            .sections_named("nodelist")
            .flat_map(|n| n.sections_named("node"))
            .filter_map(|n| n.get("name").map(|p| p.value.clone()))
            .collect()
    }

    /// The pve-docs `pvecm.adoc` example, verbatim layout.
    const DOCS: &str = "\
logging {
  debug: off
  to_syslog: yes
}

nodelist {
  node {
    name: due
    nodeid: 2
    quorum_votes: 1
    ring0_addr: 10.10.10.2
    ring1_addr: 10.20.20.2
  }
  node {
    name: tre
    nodeid: 3
    quorum_votes: 1
    ring0_addr: 10.10.10.3
  }
}

quorum {
  provider: corosync_votequorum
}

totem {
  cluster_name: testcluster
  config_version: 4
  ip_version: ipv4-6
  secauth: on
  version: 2
  interface { linknumber: 0 }
  interface { linknumber: 1 }
}
";

    #[test]
    fn docs_example() {
        let c = p(DOCS).unwrap();
        assert_eq!(names(&c), ["due", "tre"]);
        let node = c.root.sections_named("nodelist").next().unwrap();
        let due = node.sections_named("node").next().unwrap();
        assert_eq!(due.get("ring1_addr").unwrap().value, "10.20.20.2");
        assert_eq!(due.get("nodeid").unwrap().line, 9);
        let totem = c.root.sections_named("totem").next().unwrap();
        assert_eq!(totem.sections_named("interface").count(), 2);
        assert_eq!(totem.get("cluster_name").unwrap().value, "testcluster");
    }

    #[test]
    fn brace_on_the_name_line_without_space() {
        let c = p("nodelist{\nnode{\nname:a\nring0_addr:1.2.3.4\n}\n}\n").unwrap();
        assert_eq!(names(&c), ["a"]);
    }

    #[test]
    fn brace_on_its_own_line() {
        let c = p("nodelist\n{\n  node\n  {\n    name: a\n  }\n}\n").unwrap();
        assert_eq!(names(&c), ["a"]);
    }

    #[test]
    fn one_line_blocks() {
        let c = p("nodelist { node { name: a }\nnode { name: b } }").unwrap();
        assert_eq!(names(&c), ["a", "b"]);
    }

    #[test]
    fn tabs_crlf_and_comments() {
        let text = "# cluster\r\n\tnodelist {\r\n\t\t# a node\r\n\t\tnode {\r\n\t\t\tname:\tpve1\r\n\t\t\tring0_addr: fd00::1\r\n\t\t}\r\n\t}\r\n";
        let c = p(text).unwrap();
        assert_eq!(names(&c), ["pve1"]);
        let n = c.root.sections[0].sections[0].get("ring0_addr").unwrap();
        assert_eq!(n.value, "fd00::1", "IPv6 keeps its colons");
    }

    #[test]
    fn hostnames_and_empty_values() {
        let c = p("nodelist {\n node {\n name: pve-a\n ring0_addr: pve-a.example.org\n quorum_votes:\n }\n}\n").unwrap();
        let n = &c.root.sections[0].sections[0];
        assert_eq!(n.get("ring0_addr").unwrap().value, "pve-a.example.org");
        assert_eq!(n.get("quorum_votes").unwrap().value, "");
    }

    #[test]
    fn unmatched_close_names_the_line() {
        let e = p("totem {\n}\n}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "corosync.conf:3: `}` without an open section"
        );
    }

    #[test]
    fn unclosed_section_names_where_it_opened() {
        let e = p("totem {\n version: 2\nnodelist {\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "corosync.conf:3: section `nodelist` opened here is never closed (missing `}`)"
        );
    }

    #[test]
    fn bare_word_is_an_error() {
        let e = p("totem {\n version 2\n}\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("corosync.conf:2: expected `version: value`"),
            "{e}"
        );
    }

    #[test]
    fn a_million_nested_sections_are_an_error_not_an_abort() {
        let n = 1_000_000;
        let text = format!("{}{}", "a {\n".repeat(n), "}\n".repeat(n));
        let e = p(&text).unwrap_err().to_string();
        assert_eq!(
            e.lines().next().unwrap(),
            format!(
                "corosync.conf:{}: section `a` nested more than {MAX_DEPTH} deep",
                MAX_DEPTH + 1
            )
        );
        assert!(e.contains("\nnote: "), "{e}");
        // As deep as allowed still parses.
        let ok = format!("{}{}", "a {\n".repeat(MAX_DEPTH), "}\n".repeat(MAX_DEPTH));
        assert!(p(&ok).is_ok());
    }

    proptest! {
        #[test]
        fn nesting_beyond_the_bound_is_refused_at_its_line(depth in 1usize..200) {
            let text = format!("{}{}", "s {\n".repeat(depth), "}\n".repeat(depth));
            match p(&text) {
                Ok(_) => prop_assert!(depth <= MAX_DEPTH),
                Err(e) => {
                    prop_assert!(depth > MAX_DEPTH);
                    let line = format!("corosync.conf:{}:", MAX_DEPTH + 1);
                    prop_assert!(e.to_string().starts_with(&line), "{}", e);
                }
            }
        }

        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = p(&s);
        }

        #[test]
        fn never_panics_on_syntax_soup(s in "[a-z{}:# \n\t]{0,200}") {
            let _ = p(&s);
        }
    }
}
