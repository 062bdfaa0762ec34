//! `audit --output json` (format 2) with its references resolved, as
//! docs/json.md says they resolve: each VM's `requirement`, `start`,
//! `live_migration`, `flags[].finding` and `suggestion` replaced by the
//! table entry they name (without its `id`), and each node of an answer's
//! `refused` and `unknown` by its verdict. Panics on anything dangling, on
//! an id that is not its entry's index, and on a table entry no VM refers
//! to — so every test reading the JSON through it checks the references.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// The tables of `audit`'s JSON that VMs refer to.
const TABLES: [&str; 5] = [
    "requirements",
    "answers",
    "verdicts",
    "findings",
    "suggestions",
];

/// The entry `id` of `table`, without its `id`; marks it used.
fn entry(doc: &Value, table: &str, id: &Value, used: &mut BTreeSet<(String, u64)>) -> Value {
    let n = id
        .as_u64()
        .unwrap_or_else(|| panic!("{table} reference {id} is not an id"));
    let rows = doc[table]
        .as_array()
        .unwrap_or_else(|| panic!("no table {table}"));
    let row = rows
        .get(usize::try_from(n).unwrap())
        .unwrap_or_else(|| panic!("dangling reference {table}[{n}] ({} entries)", rows.len()));
    assert_eq!(row["id"], n, "{table}[{n}] has another id: {row}");
    used.insert((table.to_string(), n));
    let mut row = row.as_object().unwrap().clone();
    row.remove("id");
    Value::Object(row)
}

/// An answer with each node's verdict in place of its id.
fn answer(doc: &Value, id: &Value, question: &str, used: &mut BTreeSet<(String, u64)>) -> Value {
    let mut a = entry(doc, "answers", id, used);
    assert_eq!(a["question"], question, "{a}");
    for side in ["refused", "unknown"] {
        let nodes: Map<String, Value> = a[side]
            .as_object()
            .unwrap_or_else(|| panic!("{side} of {a}"))
            .iter()
            .map(|(node, v)| (node.clone(), entry(doc, "verdicts", v, used)))
            .collect();
        for v in nodes.values() {
            let want = if side == "refused" {
                "incompatible"
            } else {
                "unknown"
            };
            assert_eq!(v["verdict"], want, "{side}: {v}");
        }
        a[side] = Value::Object(nodes);
    }
    a
}

/// The VMs of `doc`, each with its references resolved.
pub fn vms(doc: &Value) -> Vec<Value> {
    assert_eq!(doc["format"], 2, "audit JSON format");
    let mut used = BTreeSet::new();
    let vms: Vec<Value> = doc["vms"]
        .as_array()
        .expect("vms")
        .iter()
        .map(|v| {
            let mut r = v.clone();
            r["requirement"] = entry(doc, "requirements", &v["requirement"], &mut used);
            r["start"] = answer(doc, &v["start"], "start", &mut used);
            r["live_migration"] = answer(doc, &v["live_migration"], "live_migration", &mut used);
            for f in r["flags"].as_array_mut().unwrap() {
                let found = entry(doc, "findings", &f["finding"], &mut used);
                assert_eq!(found["code"], f["code"], "{found}");
                f["finding"] = found;
            }
            if !v["suggestion"].is_null() {
                r["suggestion"] = entry(doc, "suggestions", &v["suggestion"], &mut used);
            }
            r
        })
        .collect();
    // Every entry is referred to: nothing is stated for no VM.
    for table in TABLES {
        for row in doc[table].as_array().unwrap() {
            let id = row["id"].as_u64().unwrap();
            assert!(
                used.contains(&(table.to_string(), id)),
                "{table}[{id}] is referred to by no VM: {row}"
            );
        }
    }
    vms
}

/// The resolved VM `vmid` of `doc`.
pub fn vm(doc: &Value, vmid: u64) -> Value {
    vms(doc)
        .into_iter()
        .find(|v| v["vmid"] == vmid)
        .unwrap_or_else(|| panic!("no VM {vmid} in {doc}"))
}

/// The node names of an answer's `refused` or `unknown`.
pub fn nodes(side: &Value) -> Vec<String> {
    side.as_object()
        .unwrap_or_else(|| panic!("not a node map: {side}"))
        .keys()
        .cloned()
        .collect()
}
