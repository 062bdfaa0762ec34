//! Serde helpers for lists of short words stored as one space-separated
//! string, e.g. a node's /proc/cpuinfo `flags` in the cache.
//!
//! One string is a fraction of the parsing work of a JSON list of 150
//! strings, and the hookscript reads every node's record on an ordinary
//! start. Reading also accepts the list form (cache schema 1).

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// Writes the words joined by single spaces.
///
/// # Errors
/// Those of the serializer.
pub fn serialize<S: Serializer>(words: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&words.join(" "))
}

/// Reads a space-separated string or a list of strings.
///
/// # Errors
/// Anything else, or a listed word containing whitespace.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(Words)
}

/// The same for an optional list (`null` is `None`).
pub mod optional {
    use super::{Deserializer, Serializer, Words};

    /// Writes `null` or the joined words.
    ///
    /// # Errors
    /// Those of the serializer.
    pub fn serialize<S: Serializer>(words: &Option<Vec<String>>, s: S) -> Result<S::Ok, S::Error> {
        match words {
            Some(w) => super::serialize(w, s),
            None => s.serialize_none(),
        }
    }

    /// Reads `null`, a space-separated string or a list of strings.
    ///
    /// # Errors
    /// As [`super::deserialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        d.deserialize_option(MaybeWords)
    }

    struct MaybeWords;

    impl<'de> serde::de::Visitor<'de> for MaybeWords {
        type Value = Option<Vec<String>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("null or a list of words")
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(Words).map(Some)
        }
    }
}

struct Words;

impl<'de> Visitor<'de> for Words {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a space-separated string or a list of words")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.split_whitespace().map(str::to_string).collect())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(word) = seq.next_element::<String>()? {
            if word.is_empty() || word.contains(char::is_whitespace) {
                return Err(de::Error::invalid_value(
                    de::Unexpected::Str(&word),
                    &"a word without spaces",
                ));
            }
            out.push(word);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct R {
        #[serde(with = "super")]
        flags: Vec<String>,
        #[serde(with = "super::optional")]
        bugs: Option<Vec<String>>,
    }

    fn r(flags: &[&str], bugs: Option<&[&str]>) -> R {
        R {
            flags: flags.iter().map(|s| (*s).to_string()).collect(),
            bugs: bugs.map(|b| b.iter().map(|s| (*s).to_string()).collect()),
        }
    }

    #[test]
    fn round_trip_as_one_string() {
        let v = r(&["fpu", "sse4_2"], Some(&["mds"]));
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, r#"{"flags":"fpu sse4_2","bugs":"mds"}"#);
        assert_eq!(serde_json::from_str::<R>(&text).unwrap(), v);
        let none = r(&[], None);
        let text = serde_json::to_string(&none).unwrap();
        assert_eq!(text, r#"{"flags":"","bugs":null}"#);
        assert_eq!(serde_json::from_str::<R>(&text).unwrap(), none);
    }

    #[test]
    fn lists_are_still_read() {
        let v: R = serde_json::from_str(r#"{"flags":["fpu","sse4_2"],"bugs":[]}"#).unwrap();
        assert_eq!(v, r(&["fpu", "sse4_2"], Some(&[])));
    }

    #[test]
    fn other_shapes_are_errors() {
        for bad in [
            r#"{"flags":5,"bugs":null}"#,
            r#"{"flags":["a b"],"bugs":null}"#,
            r#"{"flags":[1],"bugs":null}"#,
            r#"{"flags":"a","bugs":{}}"#,
        ] {
            assert!(serde_json::from_str::<R>(bad).is_err(), "{bad}");
        }
    }
}
