use super::*;
use proptest::prelude::*;

const CONF: &str = "#my vm\n#second line\nboot: order=scsi0\ncores: 4\ncpu: x86-64-v2-AES\nhugepages: 1024\nlock: migrate\nmemory: 4096\nname: web1\nparent: snap\n\n\
    [PENDING]\ncpu: host\n\n[special:cloudinit]\nipconfig0: ip=dhcp\n\n[snap]\ncpu: kvm64\nsnaptime: 1737549549\n";

fn p(text: &str) -> VmConfig {
    parse(text, Path::new("100.conf")).unwrap()
}

#[test]
fn the_main_section_runs_and_pending_starts_next() {
    let c = p(CONF);
    assert_eq!(c.cpu.as_deref(), Some("x86-64-v2-AES"));
    assert_eq!(c.lock.as_deref(), Some("migrate"));
    assert!(c.hugepages_1g());
    assert_eq!(c.name.as_deref(), Some("web1"));
    assert_eq!(c.with_pending().cpu.as_deref(), Some("host"));
    assert!(c.has_cpu_relevant_pending());
    // Snapshots and special sections are never read.
    assert_eq!(c.with_pending().with_pending(), c.with_pending());
}

#[test]
fn a_line_that_only_looks_like_a_section_is_skipped_not_an_end() {
    // qemu-server: `[x]` at column 0 is a (snapshot) section; `[x] y` and
    // an indented `[snap]` are lines it skips, and keys go on.
    let c = p("name: x\n[x] not a header\ncpu: host\n");
    assert_eq!(c.cpu.as_deref(), Some("host"));
    let c = p("name: x\n  [snap]\ncpu: host\n");
    assert_eq!(c.cpu.as_deref(), Some("host"));
    assert_eq!(c.skipped_lines, [2]);
    // A real header ends the main section.
    assert_eq!(p("name: x\n[x]\ncpu: host\n").cpu, None);
    assert_eq!(p("name: x\n[X]  \ncpu: host\n").cpu, None);
    assert_eq!(p("name: x\n[what ever]\ncpu: host\n").cpu, None);
}

#[test]
fn an_indented_key_is_not_the_vms_cpu() {
    let c = p("cpu: host\n  cpu: kvm64\n\tcpu: kvm64\nCPU: kvm64\n");
    assert_eq!(c.cpu.as_deref(), Some("host"));
    assert_eq!(c.skipped_lines, [2, 3, 4]);
}

#[test]
fn values_qemu_servers_type_check_rejects_are_skipped() {
    let c = p("kvm: maybe\ntemplate: yes\ncores: 4x\nsockets: 2\nsmp: 8\n");
    assert_eq!(c.kvm, None);
    assert!(c.template);
    assert_eq!(c.cores, None);
    assert_eq!(c.launch_spec().sockets, Some(2), "sockets wins over smp");
    assert_eq!(p("smp: 3\n").launch_spec().sockets, Some(3));
    for (text, kvm) in [
        ("kvm: 0\n", Some(false)),
        ("kvm: 1\n", Some(true)),
        ("kvm: OFF\n", Some(false)),
        ("kvm: True\n", Some(true)),
        ("name: x\n", None),
    ] {
        assert_eq!(p(text).kvm, kvm, "{text}");
    }
    // Empty values are not key lines at all.
    assert_eq!(p("cpu:\ncpu: \n").cpu, None);
}

#[test]
fn pending_delete_and_values_apply_at_the_next_start() {
    let c = p("cpu: host\nostype: win11\n[PENDING]\ndelete: cpu,!ostype\nsockets: 4\n");
    let next = c.with_pending();
    assert_eq!((next.cpu, next.ostype, next.sockets), (None, None, Some(4)));
    // `delete:` outside [PENDING] is skipped.
    assert_eq!(p("delete: cpu\ncpu: host\n").cpu.as_deref(), Some("host"));
    // A pending change of something pve-cpuguard does not read is not one.
    assert!(!p("cpu: host\n[PENDING]\nmemory: 8192\n").has_cpu_relevant_pending());
}

#[test]
fn args_cpu_is_found_as_qemu_server_splits_args() {
    for (args, cpu) in [
        ("-cpu host,+invtsc -smp 2", Some("host,+invtsc")),
        ("--cpu host", Some("host")),
        ("'-cpu' 'host'", Some("host")),
        ("-device foo -cpu kvm64 -cpu \"max\"", Some("max")),
        ("-device foo", None),
        ("-cpux host", None),
    ] {
        let c = p(&format!("args: {args}\n"));
        assert_eq!(c.args_cpu().as_deref(), cpu, "{args}");
    }
}

#[test]
fn unparseable_cpu_is_an_input_error_naming_file_line_and_value() {
    let path = Path::new("/etc/pve/qemu-server/100.conf");
    let c = parse("name: a\ncpu: x86-64-v3,flags=avx2\n", path).unwrap();
    let e = c.check_cpu(path).unwrap_err();
    assert_eq!(e.exit_code(), crate::error::ExitCode::Usage);
    let text = e.to_string();
    assert!(
        text.starts_with("/etc/pve/qemu-server/100.conf:2: cannot parse cpu 'x86-64-v3,flags=avx2': flag 'avx2' must start with '+' or '-'\nnote: "),
        "{text}"
    );
    for fine in [
        "cpu: host\n",
        "name: no cpu line\n",
        "cpu: x86-64-v3,flags=+no-such-flag\n",
    ] {
        assert!(parse(fine, path).unwrap().check_cpu(path).is_ok(), "{fine}");
    }
}

#[test]
fn kvm_follows_template_and_arch() {
    assert!(p("name: x\n").kvm());
    assert!(!p("template: 1\n").kvm());
    assert!(!p("arch: aarch64\n").kvm());
    assert!(p("arch: aarch64\nkvm: 1\n").kvm());
    assert!(!p("kvm: 0\n").kvm());
}

/// Reading stops at the first section other than `[PENDING]`, whatever the
/// block boundaries: a long main section, with the header split across two
/// blocks, gives what parsing the whole file gives.
#[test]
fn read_stops_at_the_header_across_blocks() {
    let dir = tempfile::tempdir().unwrap();
    for pad in [4000, 4090, 4094, 4095, 4096, 8190] {
        let mut text = String::from("cpu: host\n");
        while text.len() < pad {
            text.push_str("#x\n");
        }
        text.push_str("[PENDING]\ncpu: max\n[snap]\ncpu: kvm64\n");
        let path = dir.path().join(format!("{pad}.conf"));
        std::fs::write(&path, &text).unwrap();
        let read = read(&path).unwrap();
        assert_eq!(read, parse(&text, &path).unwrap(), "{pad}");
        assert_eq!(read.with_pending().cpu.as_deref(), Some("max"));
    }
    // Invalid UTF-8 after the sections read is never read, and inside them
    // it only spoils the value it is in.
    let path = dir.path().join("bytes.conf");
    std::fs::write(&path, b"cpu: max\n[snap]\nname: \xff\n").unwrap();
    assert_eq!(read(&path).unwrap().cpu.as_deref(), Some("max"));
    std::fs::write(&path, b"name: \xff\ncpu: host\n").unwrap();
    assert_eq!(read(&path).unwrap().cpu.as_deref(), Some("host"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]
    /// The word-at-a-time search finds the first `\n` wherever it is,
    /// whatever the bytes around it (high bytes, 0x0a + 0x80 carries).
    #[test]
    fn newline_is_the_first_newline(
        bytes in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(0x8a_u8), Just(0x0b_u8), Just(0x09_u8), Just(0_u8), any::<u8>()],
            0..40,
        ),
        skip in 0usize..40,
    ) {
        let bytes = &bytes[skip.min(bytes.len())..];
        prop_assert_eq!(newline(bytes), bytes.iter().position(|&c| c == b'\n'));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// `read` (block by block) and `parse` of the whole text agree on any config.
    #[test]
    fn read_agrees_with_parse(
        lines in proptest::collection::vec(
            "(cpu|name|hookscript|lock|memory|#c| \\[snap\\]|\\[PENDING\\]|\t\\[x\\]|\\[x\\]|)(: [a-z0-9,=+;-]{0,300})?",
            0..60,
        )
    ) {
        let text = lines.join("\n") + "\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("100.conf");
        std::fs::write(&path, &text).unwrap();
        let whole = parse(&text, &path).map_err(|e| e.to_string());
        let read = read(&path).map_err(|e| e.to_string());
        prop_assert_eq!(read, whole);
    }

    /// Any text parses (qemu-server skips what it cannot read), and the
    /// `cpu:` found is the last column-0 `cpu:` line before a section.
    #[test]
    fn parse_never_fails_and_finds_the_column_0_cpu(t in "[ -~\t\n\\[\\]]{0,400}") {
        let c = parse(&t, Path::new("x")).unwrap();
        let mut want = None;
        for line in t.split('\n') {
            if classify(line) == Line::OtherSection || classify(line) == Line::Pending {
                break;
            }
            if let Some(v) = line.strip_prefix("cpu:") {
                let v = v.trim_matches(is_perl_space);
                if !v.is_empty() {
                    want = Some(v.to_string());
                }
            }
        }
        prop_assert_eq!(c.cpu, want);
    }
}
