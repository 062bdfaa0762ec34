//! Property tests: every parser of outside input returns a value or an error
//! naming the file and line — it never panics, whatever the bytes.

use std::path::Path;

use proptest::prelude::*;

use pve_cpuguard::cpu::{cpuconf, cpuinfo};
use pve_cpuguard::guard::chain;
use pve_cpuguard::pve::{custom_models, ha, storage, vmconf};
use pve_cpuguard::reach::kvm_probe;

/// Lines that look like the real formats, so the parsers get past their
/// first checks and the deeper code is exercised too.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z _]{0,12}\t*: [ -~]{0,40}",
        "(flags|bugs|processor|address sizes|vendor_id|model|cpu family)\t: [a-z0-9_ ,.]{0,60}",
        "(cpu|hugepages|args|arch|lock): [ -~]{0,40}",
        "cpu-model: [ -~]{0,12}",
        "(dir|nfs|cifs|cephfs|lvmthin|vm|ct): [ -~]{0,12}",
        "[ \t](path|content|shared|disable|nodes|content-dirs|state|group) [ -~]{0,30}",
        "[0-9]{3} /[ -~]{0,20}( [a-z]{0,5}:snippets/[ -~]{0,8})?",
        "[ \t](flags|phys-bits|hidden|reported-model|hv-vendor-id|bogus) [ -~]{0,20}",
        "\\[[ -~]{0,12}\\]",
        "[ -~]{0,30}",
        Just(String::new()),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(line(), 0..20).prop_map(|l| l.join("\n"))
}

/// Ok, or an error whose text starts with `prefix` (the file, and the
/// line where there is one).
fn names_the_file<T, E: std::fmt::Display>(
    parsed: Result<T, E>,
    prefix: &str,
) -> Result<(), TestCaseError> {
    if let Err(e) = parsed {
        prop_assert!(e.to_string().starts_with(prefix), "{}", e);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn cpuinfo_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = cpuinfo::parse_bytes(&bytes, Path::new("f"));
    }

    #[test]
    fn cpuinfo_never_panics_on_lines(t in text()) {
        names_the_file(cpuinfo::parse(&t, Path::new("f")), "f")?;
    }

    #[test]
    fn vmconf_never_panics(t in text()) {
        names_the_file(vmconf::parse(&t, Path::new("100.conf")), "100.conf:")?;
    }

    #[test]
    fn storage_cfg_never_panics(t in text()) {
        match storage::parse(&t, Path::new("storage.cfg")) {
            Ok(s) => {
                for st in &s.list {
                    let _ = s.snippets_storage(&st.id);
                    let _ = st.enable_snippets_command();
                    let _ = s.resolve_snippet(&format!("{}:snippets/x", st.id));
                }
            }
            Err(e) => prop_assert!(e.to_string().starts_with("storage.cfg:"), "{}", e),
        }
    }

    #[test]
    fn ha_resources_cfg_never_panics(t in text()) {
        names_the_file(ha::parse(&t, Path::new("resources.cfg")), "resources.cfg:")?;
    }

    #[test]
    fn chain_conf_never_panics(t in text()) {
        names_the_file(chain::parse(&t, Path::new("chain.conf")), "chain.conf:")?;
    }

    #[test]
    fn snippet_volids_never_panic(s in "[ -~]{0,40}") {
        let _ = storage::split_snippet_volid(&s);
    }

    #[test]
    fn cpu_models_conf_never_panics(t in text()) {
        names_the_file(custom_models::parse(&t, Path::new("cpu-models.conf")), "cpu-models.conf:")?;
    }

    #[test]
    fn cpu_property_string_never_panics(s in "[ -~]{0,80}", u in any::<String>()) {
        let _ = cpuconf::parse(&s);
        let _ = cpuconf::parse(&u);
        let _ = cpuconf::parse(&format!("x,flags={u}"));
    }

    #[test]
    fn text_parsers_never_panic_on_any_unicode(u in any::<String>()) {
        let _ = cpuinfo::parse(&u, Path::new("f"));
        let _ = vmconf::parse(&u, Path::new("f"));
        let _ = custom_models::parse(&u, Path::new("f"));
    }

    #[test]
    fn requirement_resolution_never_panics(s in "[ -~]{0,80}") {
        let _ = pve_cpuguard::cpu::requirement::from_cpu_value(&s, &Default::default());
        let _ = pve_cpuguard::cpu::requirement::from_qemu_cpu_arg(&s);
    }
}

/// A JSON value of any shape, a few levels deep.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{json, Value};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "(pni|sse4_1|kvm|lm|vendor|family|[ -~]{0,8})".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                "(QMP|return|error|id|event|model|props|name|unavailable-features|qemu|major|minor|micro|class|desc|[a-z-]{0,6})",
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Lines that look like a QMP transcript of `kvm_probe::script`.
fn qmp_line() -> impl Strategy<Value = String> {
    use serde_json::json;
    prop_oneof![
        Just(r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}}}"#.to_string()),
        (
            "(capabilities|version|expansion|definitions|quit|)",
            json_value()
        )
            .prop_map(|(id, v)| json!({"return": v, "id": id}).to_string()),
        ("(version|expansion|definitions)", json_value())
            .prop_map(|(id, v)| json!({"error": v, "id": id}).to_string()),
        json_value().prop_map(|v| v.to_string()),
        "[ -~]{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn qmp_transcripts_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = pve_cpuguard::reach::qmp::Transcript::parse(&bytes);
        let _ = kvm_probe::interpret(&bytes, &bytes, kvm_probe::Accel::Kvm, "q");
    }

    #[test]
    fn qmp_transcripts_never_panic_on_lines(lines in prop::collection::vec(qmp_line(), 0..8)) {
        let text = lines.join("\n");
        for accel in [kvm_probe::Accel::Kvm, kvm_probe::Accel::Tcg] {
            if let Ok(view) = kvm_probe::parse_transcript(text.as_bytes(), accel) {
                // Whatever parsed is usable downstream without panics.
                let cap = pve_cpuguard::cpu::capability::Capability::from_qemu_report(&view, None);
                let req = pve_cpuguard::cpu::requirement::from_cpu_value("kvm64", &Default::default());
                let _ = pve_cpuguard::cpu::verdict::judge(&req, &cap, pve_cpuguard::cpu::verdict::Question::Start);
            }
        }
    }

    #[test]
    fn qmp_answer_parsers_never_panic(v in json_value()) {
        if let Some(props) = v.as_object() {
            let _ = kvm_probe::expansion_features(props);
        }
        if let Some(defs) = v.as_array() {
            let _ = kvm_probe::model_answers(defs);
        }
        let _ = kvm_probe::model_answers(std::slice::from_ref(&v));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A real recorded transcript with random bytes overwritten, and cut short.
    #[test]
    fn recorded_qmp_transcript_mutated_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        keep in any::<prop::sample::Index>(),
    ) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/qmp/qemu-7.2-pvm-epyc-kvm.jsonl");
        let mut bytes = std::fs::read(path).unwrap();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let cut = keep.index(bytes.len() + 1);
        let _ = kvm_probe::parse_transcript(&bytes, kvm_probe::Accel::Kvm);
        let _ = kvm_probe::parse_transcript(&bytes[..cut], kvm_probe::Accel::Kvm);
    }
}

/// A valid published record of node `pve1`, as JSON.
fn published_record() -> serde_json::Value {
    use pve_cpuguard::cache::{published, NodeRecord};
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cpuinfo/archspec-linux-rhel7-haswell.txt");
    let info = pve_cpuguard::reach::local::cpuinfo(&path).unwrap();
    let rec = NodeRecord::new("pve1", "local", &info, Some("6.8.12-4-pve".into()), 1000);
    serde_json::from_slice(&published::encode(&published::envelope("pve1", rec, 1000))).unwrap()
}

/// JSON values of every kind, including long, odd and hostile strings.
fn record_field_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "[ -~\u{1b}\u{0}é]{0,80}".prop_map(serde_json::Value::from),
        prop::collection::vec("[a-z0-9_$;()]{0,10}", 0..5).prop_map(|v| v.join(" ").into()),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn published_records_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = pve_cpuguard::cache::published::decode(&bytes, "pve1", 2000);
    }

    /// One field of a valid record replaced by any value: a value or an
    /// error, never a panic; and whatever passes is within the bounds.
    #[test]
    fn published_records_never_panic_on_fields(
        field in prop::sample::select(vec![
            "schema", "node", "published_at", "generator", "record",
            "record.name", "record.vendor", "record.model_name", "record.family",
            "record.model", "record.stepping", "record.microcode", "record.flags",
            "record.bugs", "record.processors", "record.level", "record.phys_bits",
            "record.kernel", "record.scanned_at", "record.last_error", "record.kvm",
            "record.kvm_error", "record.source",
        ]),
        value in record_field_value(),
    ) {
        use pve_cpuguard::cache::published::{decode, Rejected};
        let mut v = published_record();
        match field.split_once('.') {
            Some((outer, inner)) => v[outer][inner] = value,
            None => v[field] = value,
        }
        let bytes = serde_json::to_vec(&v).unwrap();
        match decode(&bytes, "pve1", 2000) {
            Ok(p) => {
                prop_assert_eq!(p.node.as_str(), "pve1");
                prop_assert_eq!(p.record.name.as_str(), "pve1");
                prop_assert!(p.record.cpu.processors >= 1);
                prop_assert!(!p.record.cpu.model_name.chars().any(char::is_control));
                prop_assert!(p.record.cpu.flags.iter().all(|f| !f.contains(['$', ';', '(', ')'])));
            }
            Err(Rejected::Invalid(m)) => prop_assert!(!m.is_empty()),
            Err(other) => prop_assert!(false, "decode only says invalid: {:?}", other),
        }
    }
}

/// Long and hostile strings (issue 21, item 8): separators, keys, control
/// and escape sequences, non-ASCII, brackets, in any order and up to tens
/// of thousands of characters.
fn hostile() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just(",".to_string()),
        Just("=".to_string()),
        Just(";".to_string()),
        Just("+".to_string()),
        Just("-".to_string()),
        Just("cputype=".to_string()),
        Just("flags=".to_string()),
        Just("phys-bits=".to_string()),
        Just("\u{1b}[2J".to_string()),
        Just("\u{0}".to_string()),
        Just("\n".to_string()),
        Just("é€😀".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(": ".to_string()),
        Just("'\"".to_string()),
        "[A-Za-z0-9]{1,8}",
        (1usize..5000).prop_map(|n| "A".repeat(n)),
    ];
    prop::collection::vec(atom, 0..200).prop_map(|v| v.concat())
}

/// An error message made from hostile input stays short and clean: at
/// most `max` characters, no raw control character but line breaks.
fn bounded(message: &str, max: usize) -> Result<(), TestCaseError> {
    prop_assert!(
        message.chars().count() <= max,
        "{} characters: {}…",
        message.chars().count(),
        message.chars().take(200).collect::<String>()
    );
    prop_assert!(
        !message.chars().any(|c| c.is_control() && c != '\n'),
        "raw control character in {:?}",
        message.chars().take(200).collect::<String>()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn cpu_option_parser_bounds_its_errors_on_hostile_strings(s in hostile()) {
        if let Err(e) = cpuconf::parse(&s) {
            bounded(&e, 400)?;
        }
        let _ = cpuconf::parse_flags(&s);
    }

    #[test]
    fn published_record_bounds_its_errors_on_hostile_strings(
        field in prop::sample::select(vec![
            "node", "generator", "record.name", "record.address", "record.vendor",
            "record.model_name", "record.microcode", "record.kernel", "record.level",
            "record.kvm_error", "record.source", "record.qemu", "record.processors",
            "record.flags", "record.hook_storages",
        ]),
        s in hostile(),
    ) {
        use pve_cpuguard::cache::published::{decode, Rejected};
        let mut v = published_record();
        let value = if field == "record.hook_storages" {
            serde_json::json!([s])
        } else {
            serde_json::Value::from(s)
        };
        match field.split_once('.') {
            Some((outer, inner)) => v[outer][inner] = value,
            None => v[field] = value,
        }
        match decode(&serde_json::to_vec(&v).unwrap(), "pve1", 2000) {
            Ok(_) => {}
            Err(Rejected::Invalid(m)) => bounded(&m, 400)?,
            Err(other) => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn corosync_parser_never_panics_on_hostile_strings(s in hostile()) {
        use pve_cpuguard::pve::corosync;
        names_the_file(corosync::parse(&s, Path::new("corosync.conf")), "corosync.conf")?;
    }

    #[test]
    fn section_config_parser_never_panics_on_hostile_strings(s in hostile()) {
        use pve_cpuguard::pve::section_config;
        names_the_file(section_config::parse(&s, Path::new("rules.cfg")), "rules.cfg")?;
    }
}

/// One value of every parser at the size that broke them: 70 000
/// characters (a `{:w$}` width past 65 535 panicked `audit`), and a
/// megabyte, parsed in linear time (a quadratic parser takes minutes).
#[test]
fn absurdly_long_values_neither_panic_nor_take_quadratic_time() {
    use pve_cpuguard::pve::{corosync, section_config};
    let t = std::time::Instant::now();
    for n in [70_000, 1 << 20] {
        let a = "A".repeat(n);
        let e = cpuconf::parse(&format!("{a},x")).unwrap_err();
        assert!(e.chars().count() < 300, "{}", e.len());
        let flags = format!("x86-64-v3,flags={}", "+a;".repeat(n / 3));
        assert_eq!(cpuconf::parse(&flags).unwrap().flags.len(), n / 3);
        let e = cpuconf::parse(&format!("cputype=x,{}", "cputype=x,".repeat(n / 10))).unwrap_err();
        assert!(e.chars().count() < 300, "{}", e.len());
        let _ = corosync::parse(
            &format!("totem {{\n{a}: {a}\n}}\n{}", "{".repeat(n)),
            Path::new("c"),
        );
        let _ = section_config::parse(&format!("vm: {a}\n\tnodes {a}\n{a}:{a}\n"), Path::new("s"));
        let _ = vmconf::parse(&format!("cpu: {a}\n"), Path::new("v"));
    }
    // A quadratic pass over a megabyte takes minutes even optimised.
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        t.elapsed()
    );
}
