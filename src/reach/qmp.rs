//! Just enough of QMP (the QEMU Machine Protocol) to ask QEMU questions.
//!
//! Hand-written: a QMP client crate holds a live conversation on a socket;
//! the probe needs a fixed script that also works as the stdin of one
//! fixed command over SSH.
//!
//! The exchange is a fixed *script*: every command is written at once, each
//! tagged with an `id`, and the whole *transcript* QEMU prints is parsed
//! afterwards, answers matched by `id`. A script needs no back-and-forth, so
//! the same bytes work on a local child's stdin and as the stdin of a fixed
//! remote command over SSH; no value from a configuration ever becomes part
//! of a command line.
//!
//! Protocol facts (QEMU `docs/interop/qmp-spec.rst`): the server first
//! greets with `{"QMP": {"version": …, "capabilities": […]}}`; the client
//! must send `qmp_capabilities` before anything else; commands are executed
//! in order; each reply is `{"return": …}` or
//! `{"error": {"class": …, "desc": …}}` and carries the command's `id`;
//! asynchronous `{"event": …}` messages may appear anywhere. Messages are
//! JSON objects, one per line.
//!
//! Parsing is pure and total: any byte string yields a transcript or a
//! [`QmpError`], never a panic.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Map, Value};

/// One command of a script.
#[derive(Debug, Clone, PartialEq)]
pub struct QmpCommand {
    /// The tag QEMU echoes in the answer.
    pub id: &'static str,
    /// The QMP command name.
    pub execute: &'static str,
    /// Its arguments, if any.
    pub arguments: Option<Value>,
}

impl QmpCommand {
    /// A command without arguments.
    #[must_use]
    pub fn new(id: &'static str, execute: &'static str) -> Self {
        QmpCommand {
            id,
            execute,
            arguments: None,
        }
    }

    /// A command with arguments.
    #[must_use]
    pub fn with_args(id: &'static str, execute: &'static str, arguments: Value) -> Self {
        QmpCommand {
            id,
            execute,
            arguments: Some(arguments),
        }
    }
}

/// The bytes to write to QEMU's QMP input: one JSON object per line.
///
/// `qmp_capabilities` is not added automatically; put it first.
#[must_use]
pub fn script(commands: &[QmpCommand]) -> String {
    let mut out = String::new();
    for c in commands {
        let mut obj = Map::new();
        obj.insert("execute".into(), json!(c.execute));
        if let Some(a) = &c.arguments {
            obj.insert("arguments".into(), a.clone());
        }
        obj.insert("id".into(), json!(c.id));
        out.push_str(&Value::Object(obj).to_string());
        out.push('\n');
    }
    out
}

/// What went wrong in a QMP transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QmpError {
    /// A line that is not a JSON object.
    Garbage {
        /// 1-based line number in the transcript.
        line: usize,
        /// The start of the line, escaped.
        excerpt: String,
    },
    /// The output does not start with QMP's greeting.
    NoGreeting,
    /// The output ended before the answer to this command.
    Missing {
        /// The command's id.
        id: String,
    },
    /// QEMU answered this command with an error.
    Failed {
        /// The command's id.
        id: String,
        /// QMP error class, e.g. `GenericError`.
        class: String,
        /// QEMU's message.
        desc: String,
    },
}

impl fmt::Display for QmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QmpError::Garbage { line, excerpt } => {
                write!(f, "QMP output line {line} is not a JSON object: {excerpt}")
            }
            QmpError::NoGreeting => {
                f.write_str("no QMP greeting (the output does not start with {\"QMP\": …})")
            }
            QmpError::Missing { id } => {
                write!(f, "the QMP output ended before the answer to '{id}'")
            }
            QmpError::Failed { id, class, desc } => {
                write!(f, "QEMU refused '{id}': {class}: {desc}")
            }
        }
    }
}

impl std::error::Error for QmpError {}

/// The start of a line, printable, for messages.
#[must_use]
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max_chars)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out
}

/// One parsed QMP output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    /// The greeting's `QMP` object.
    pub greeting: Value,
    /// Answers by id: the `return` value, or `(class, desc)` of an error.
    answers: BTreeMap<String, Result<Value, (String, String)>>,
    /// How many asynchronous events were seen (and ignored).
    pub events: usize,
}

impl Transcript {
    /// Parses everything QEMU printed on its QMP output.
    ///
    /// # Errors
    /// A line that is not a JSON object, or output not starting with the
    /// greeting. Missing answers are reported by [`Transcript::answer`].
    pub fn parse(bytes: &[u8]) -> Result<Self, QmpError> {
        let text = String::from_utf8_lossy(bytes);
        let mut t = Transcript::default();
        let mut greeted = false;
        for (i, raw) in text.split('\n').enumerate() {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let garbage = || QmpError::Garbage {
                line: i + 1,
                excerpt: excerpt(line, 80),
            };
            let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(line) else {
                return Err(garbage());
            };
            if !greeted {
                match obj.remove("QMP") {
                    Some(g) => {
                        t.greeting = g;
                        greeted = true;
                        continue;
                    }
                    None => return Err(QmpError::NoGreeting),
                }
            }
            if obj.contains_key("event") {
                t.events += 1;
                continue;
            }
            let id = match obj.get("id") {
                Some(Value::String(s)) => s.clone(),
                // Answers to commands QEMU could not even parse carry no id.
                _ => String::new(),
            };
            if let Some(r) = obj.remove("return") {
                t.answers.insert(id, Ok(r));
            } else if let Some(e) = obj.get("error") {
                let field = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
                t.answers.insert(id, Err((field("class"), field("desc"))));
            } else {
                return Err(garbage());
            }
        }
        if greeted {
            Ok(t)
        } else {
            Err(QmpError::NoGreeting)
        }
    }

    /// The `return` value of the command tagged `id`.
    ///
    /// # Errors
    /// No answer, or an error answer.
    pub fn answer(&self, id: &str) -> Result<&Value, QmpError> {
        match self.answers.get(id) {
            Some(Ok(v)) => Ok(v),
            Some(Err((class, desc))) => Err(QmpError::Failed {
                id: id.to_string(),
                class: class.clone(),
                desc: desc.clone(),
            }),
            None => {
                // An error without id (e.g. a malformed command) explains a
                // missing answer better than "missing".
                if let Some(Err((class, desc))) = self.answers.get("") {
                    return Err(QmpError::Failed {
                        id: id.to_string(),
                        class: class.clone(),
                        desc: desc.clone(),
                    });
                }
                Err(QmpError::Missing { id: id.to_string() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}"#;

    #[test]
    fn script_is_one_tagged_object_per_line() {
        let s = script(&[
            QmpCommand::new("capabilities", "qmp_capabilities"),
            QmpCommand::with_args("x", "query-cpu-model-expansion", json!({"type": "full"})),
        ]);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            r#"{"execute":"qmp_capabilities","id":"capabilities"}"#
        );
        let v: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["arguments"]["type"], "full");
        assert_eq!(v["id"], "x");
    }

    #[test]
    fn answers_are_matched_by_id_and_events_skipped() {
        let out = format!(
            "{GREETING}\r\n{{\"return\": {{}}, \"id\": \"a\"}}\r\n{{\"event\": \"SHUTDOWN\"}}\r\n{{\"error\": {{\"class\": \"GenericError\", \"desc\": \"nope\"}}, \"id\": \"b\"}}\r\n"
        );
        let t = Transcript::parse(out.as_bytes()).unwrap();
        assert_eq!(t.events, 1);
        assert_eq!(t.greeting["version"]["qemu"]["major"], 7);
        assert_eq!(t.answer("a").unwrap(), &json!({}));
        assert_eq!(
            t.answer("b").unwrap_err().to_string(),
            "QEMU refused 'b': GenericError: nope"
        );
        assert_eq!(
            t.answer("c").unwrap_err(),
            QmpError::Missing { id: "c".into() }
        );
    }

    #[test]
    fn garbage_and_missing_greeting_are_errors() {
        assert_eq!(Transcript::parse(b""), Err(QmpError::NoGreeting));
        assert_eq!(
            Transcript::parse(b"{\"return\": {}}"),
            Err(QmpError::NoGreeting)
        );
        let e = Transcript::parse(format!("{GREETING}\nhello\tworld").as_bytes()).unwrap_err();
        assert_eq!(
            e,
            QmpError::Garbage {
                line: 2,
                excerpt: "hello\\tworld".into()
            }
        );
        // A JSON value that is not an object, and an object that is no message.
        assert!(Transcript::parse(format!("{GREETING}\n[1]").as_bytes()).is_err());
        assert!(Transcript::parse(format!("{GREETING}\n{{\"x\": 1}}").as_bytes()).is_err());
    }

    #[test]
    fn excerpt_is_bounded_and_char_safe() {
        assert_eq!(excerpt("ééé", 2), "éé…");
        assert_eq!(excerpt("a\u{1b}b", 10), "a\\u{1b}b");
    }
}
