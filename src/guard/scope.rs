//! How far a cluster-wide answer reaches. A baseline or "a CPU type that
//! works on every node" holds only when every node's CPU is known; while
//! some node was never scanned, every command says so in the same words
//! and names the nodes, instead of claiming it (issue 23).

/// Names shown before the rest is counted.
const NAMES: usize = 5;

/// `pve3, pve4, pve5, pve6, pve7 (+3)`.
#[must_use]
pub fn names(list: &[&str]) -> String {
    let mut s = list
        .iter()
        .take(NAMES)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > NAMES {
        s.push_str(&format!(" (+{})", list.len() - NAMES));
    }
    s
}

/// `pve3 was never scanned`, `pve3, pve4 were never scanned`.
#[must_use]
pub fn never_scanned(missing: &[&str]) -> String {
    format!(
        "{} {} never scanned",
        names(missing),
        if missing.len() == 1 { "was" } else { "were" }
    )
}

/// `the 3 nodes scanned`, `the node scanned`.
#[must_use]
pub fn scanned(count: usize) -> String {
    if count == 1 {
        "the node scanned".into()
    } else {
        format!("the {count} nodes scanned")
    }
}

/// The answer in place of a cluster-wide `claim` while the `missing`
/// nodes have no data: `no baseline while pve3 was never scanned;
/// x86-64-v3 on the 2 nodes scanned`. `partial` is the answer over the
/// `known` nodes with data, if there is one.
#[must_use]
pub fn withheld(claim: &str, missing: &[&str], partial: Option<&str>, known: usize) -> String {
    let mut s = format!("{claim} while {}", never_scanned(missing));
    if let (Some(p), 1..) = (partial, known) {
        s.push_str(&format!("; {p} on {}", scanned(known)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_nodes_are_named_and_long_lists_counted() {
        assert_eq!(
            withheld("no baseline", &["pve3"], Some("x86-64-v3"), 2),
            "no baseline while pve3 was never scanned; x86-64-v3 on the 2 nodes scanned"
        );
        assert_eq!(
            withheld("unknown", &["a", "b"], Some("kvm64"), 1),
            "unknown while a, b were never scanned; kvm64 on the node scanned"
        );
        // Nothing scanned: nothing to say about the rest.
        assert_eq!(
            withheld("no baseline", &["a"], None, 0),
            "no baseline while a was never scanned"
        );
        let many = ["n1", "n2", "n3", "n4", "n5", "n6", "n7"];
        assert_eq!(names(&many), "n1, n2, n3, n4, n5 (+2)");
    }
}
