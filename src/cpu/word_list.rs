//! [`WordList`]: a sorted set of short words kept as one space-separated
//! string, e.g. a node's /proc/cpuinfo `flags` in the cache.
//! Hand-written for the hookscript's start-up time (below).
//!
//! The hookscript reads every node's record on an ordinary start. As a JSON
//! list of ~150 strings, each record cost 150 allocations and a set; as one
//! string it is one allocation, and membership is a binary search over the
//! string itself. Reading also accepts the list form (cache schema 1).

use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Sorted, distinct words without whitespace, stored as `"a b c"`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct WordList {
    /// Sorted distinct words joined by single spaces (empty: no words).
    text: String,
}

impl WordList {
    /// The words, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.text.split(' ').filter(|w| !w.is_empty())
    }

    /// How many words.
    #[must_use]
    pub fn len(&self) -> usize {
        if self.text.is_empty() {
            0
        } else {
            self.text.bytes().filter(|b| *b == b' ').count() + 1
        }
    }

    /// No words at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Whether `word` is in the list: a binary search over the string.
    #[must_use]
    pub fn contains(&self, word: &str) -> bool {
        // Byte loops: words are a few bytes long, and this runs for every
        // feature of every node a decision judges.
        let text = self.text.as_bytes();
        let word = word.as_bytes();
        let (mut lo, mut hi) = (0, text.len());
        while lo < hi {
            // The word around the middle byte of [lo, hi).
            let mid = lo + (hi - lo) / 2;
            let mut start = mid;
            while start > lo && text[start - 1] != b' ' {
                start -= 1;
            }
            let mut end = mid;
            while end < hi && text[end] != b' ' {
                end += 1;
            }
            match text[start..end].cmp(word) {
                Ordering::Equal => return true,
                Ordering::Less => lo = end + 1,
                Ordering::Greater => hi = start.saturating_sub(1),
            }
        }
        false
    }

    /// Adds `word` (no whitespace); whether it was not there yet.
    pub fn insert(&mut self, word: &str) -> bool {
        if self.contains(word) {
            return false;
        }
        let next = self.iter().chain([word]).collect();
        *self = next;
        true
    }

    /// Removes `word`; whether it was there.
    pub fn remove(&mut self, word: &str) -> bool {
        if !self.contains(word) {
            return false;
        }
        let next = self.iter().filter(|w| *w != word).collect();
        *self = next;
        true
    }

    /// The text form, `"a b c"`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// From a string in the stored form; anything else (unsorted, repeated
    /// words, other whitespace) is normalised first.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        if is_canonical(text) {
            WordList {
                text: text.to_string(),
            }
        } else {
            text.split_whitespace().collect()
        }
    }
}

/// Sorted, distinct, single-spaced, no leading or trailing space, ASCII
/// (anything else takes the slow path).
fn is_canonical(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut previous: &[u8] = &[];
    let mut start = 0;
    for end in (0..=bytes.len()).filter(|&i| i == bytes.len() || bytes[i] == b' ') {
        let word = &bytes[start..end];
        if word.is_empty() && !bytes.is_empty() {
            return false;
        }
        if word.iter().any(|b| !b.is_ascii_graphic()) || (start > 0 && previous >= word) {
            return false;
        }
        previous = word;
        start = end + 1;
    }
    true
}

impl<'a> FromIterator<&'a str> for WordList {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut words: Vec<&str> = iter.into_iter().flat_map(str::split_whitespace).collect();
        words.sort_unstable();
        words.dedup();
        WordList {
            text: words.join(" "),
        }
    }
}

impl<'a> FromIterator<&'a String> for WordList {
    fn from_iter<I: IntoIterator<Item = &'a String>>(iter: I) -> Self {
        iter.into_iter().map(String::as_str).collect()
    }
}

impl FromIterator<String> for WordList {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        let words: Vec<String> = iter.into_iter().collect();
        words.iter().collect()
    }
}

impl fmt::Debug for WordList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for WordList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for WordList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Words)
    }
}

struct Words;

impl<'de> Visitor<'de> for Words {
    type Value = WordList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a space-separated string or a list of words")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(WordList::parse(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut words = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(word) = seq.next_element::<String>()? {
            if word.is_empty() || word.contains(char::is_whitespace) {
                return Err(de::Error::invalid_value(
                    de::Unexpected::Str(&word),
                    &"a word without spaces",
                ));
            }
            words.push(word);
        }
        Ok(words.iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct R {
        flags: WordList,
        #[serde(default)]
        bugs: Option<WordList>,
    }

    fn words(list: &WordList) -> Vec<&str> {
        list.iter().collect()
    }

    #[test]
    fn stored_as_one_string_and_read_back() {
        let v = R {
            flags: ["sse4_2", "fpu"].into_iter().collect(),
            bugs: Some(["mds"].into_iter().collect()),
        };
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, r#"{"flags":"fpu sse4_2","bugs":"mds"}"#);
        assert_eq!(serde_json::from_str::<R>(&text).unwrap(), v);
        let none: R = serde_json::from_str(r#"{"flags":""}"#).unwrap();
        assert!(none.flags.is_empty() && none.bugs.is_none());
        assert_eq!(
            serde_json::to_string(&none).unwrap(),
            r#"{"flags":"","bugs":null}"#
        );
    }

    #[test]
    fn lists_and_untidy_strings_are_normalised() {
        let v: R = serde_json::from_str(r#"{"flags":["sse","fpu","sse"],"bugs":[]}"#).unwrap();
        assert_eq!(words(&v.flags), ["fpu", "sse"]);
        assert_eq!(v.bugs, Some(WordList::default()));
        let v: R = serde_json::from_str(r#"{"flags":" sse  fpu\tsse ","bugs":null}"#).unwrap();
        assert_eq!(v.flags.as_str(), "fpu sse");
    }

    #[test]
    fn other_shapes_are_errors() {
        for bad in [
            r#"{"flags":5}"#,
            r#"{"flags":["a b"]}"#,
            r#"{"flags":[""]}"#,
            r#"{"flags":[1]}"#,
            r#"{"flags":"a","bugs":{}}"#,
        ] {
            assert!(serde_json::from_str::<R>(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn contains_and_len_agree_with_a_set(
            set in proptest::collection::btree_set("[a-z0-9_.]{1,12}", 0..200),
            probes in proptest::collection::vec("[a-z0-9_.]{0,12}", 0..50),
        ) {
            let list: WordList = set.iter().collect();
            prop_assert_eq!(list.len(), set.len());
            prop_assert_eq!(words(&list), set.iter().map(String::as_str).collect::<Vec<_>>());
            for w in set.iter().chain(probes.iter()) {
                prop_assert_eq!(list.contains(w), set.contains(w), "{}", w);
            }
            prop_assert_eq!(WordList::parse(list.as_str()), list);
        }

        #[test]
        fn insert_and_remove_agree_with_a_set(
            set in proptest::collection::btree_set("[a-z0-9_.]{1,12}", 0..60),
            edits in proptest::collection::vec((any::<bool>(), "[a-z0-9_.]{1,12}"), 0..30),
        ) {
            let mut list: WordList = set.iter().collect();
            let mut set = set;
            for (add, word) in &edits {
                if *add {
                    prop_assert_eq!(list.insert(word), set.insert(word.clone()), "{}", word);
                } else {
                    prop_assert_eq!(list.remove(word), set.remove(word), "{}", word);
                }
                prop_assert_eq!(words(&list), set.iter().map(String::as_str).collect::<Vec<_>>());
            }
        }

        #[test]
        fn parsing_any_text_never_panics(text in "\\PC{0,200}") {
            let list = WordList::parse(&text);
            let words = words(&list);
            prop_assert!(words.windows(2).all(|w| w[0] < w[1]), "{:?}", words);
            prop_assert!(words.iter().all(|w| !w.is_empty() && !w.contains(char::is_whitespace)));
            prop_assert_eq!(WordList::parse(list.as_str()), list.clone());
        }
    }
}
