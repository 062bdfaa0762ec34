//! Property tests: every parser of outside input returns a value or an error
//! naming the file and line — it never panics, whatever the bytes.

use std::path::Path;

use proptest::prelude::*;

use pve_cpuguard::{cpuconf, cpuinfo, custom_models, vmconf};

/// Lines that look like the real formats, so the parsers get past their
/// first checks and the deeper code is exercised too.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z _]{0,12}\t*: [ -~]{0,40}",
        "(flags|bugs|processor|address sizes|vendor_id|model|cpu family)\t: [a-z0-9_ ,.]{0,60}",
        "(cpu|hugepages|args|arch|lock): [ -~]{0,40}",
        "cpu-model: [ -~]{0,12}",
        "[ \t](flags|phys-bits|hidden|reported-model|hv-vendor-id|bogus) [ -~]{0,20}",
        "\\[[ -~]{0,12}\\]",
        "[ -~]{0,30}",
        Just(String::new()),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(line(), 0..20).prop_map(|l| l.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn cpuinfo_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = cpuinfo::parse_bytes(&bytes, Path::new("f"));
    }

    #[test]
    fn cpuinfo_never_panics_on_lines(t in text()) {
        if let Err(e) = cpuinfo::parse(&t, Path::new("f")) {
            prop_assert!(e.to_string().starts_with("f"), "{}", e);
        }
    }

    #[test]
    fn vmconf_never_panics(t in text()) {
        if let Err(e) = vmconf::parse(&t, Path::new("100.conf")) {
            prop_assert!(e.to_string().starts_with("100.conf:"), "{}", e);
        }
    }

    #[test]
    fn cpu_models_conf_never_panics(t in text()) {
        if let Err(e) = custom_models::parse(&t, Path::new("cpu-models.conf")) {
            prop_assert!(e.to_string().starts_with("cpu-models.conf:"), "{}", e);
        }
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
        let _ = pve_cpuguard::requirement::from_cpu_value(&s, &Default::default());
    }
}
