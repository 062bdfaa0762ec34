//! `inspect --probe` says each difference between /proc/cpuinfo and QEMU's
//! answer once (issue 23: the same 50-flag list as a note and again as the
//! disagreement, and every CPU type repeating /proc/cpuinfo's reasons).
//! QEMU is a script replaying a recorded transcript of the real QEMU 7.2.22
//! (tests/data/qmp/README.md), so the answer is known.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::{self, Done, Run};

/// A "QEMU" that answers with the recorded transcript for `accel`.
fn replaying(dir: &Path, accel: &str) -> PathBuf {
    let transcript = harness::data(&format!("qmp/qemu-7.2-pvm-epyc-{accel}.jsonl"));
    let qemu = dir.join("qemu");
    crate::harness::cluster::script(
        &qemu,
        &format!("#!/bin/sh\nexec cat '{}'\n", transcript.display()),
    );
    qemu
}

/// `inspect --probe ACCEL` (then `-o json`) with `qemu` on `cpuinfo`,
/// again while a test thread's fork still holds the fresh script (ETXTBSY).
fn probe(qemu: &Path, cpuinfo: &Path, accel: &str, json: bool) -> Done {
    let mut args = vec!["inspect", "--probe", accel];
    if json {
        args.extend(["-o", "json"]);
    }
    for _ in 0..20 {
        let done = Run::new(args.clone())
            .env("PVE_CPUGUARD_QEMU", qemu)
            .env("PVE_CPUGUARD_CPUINFO", cpuinfo)
            .run();
        if !done.stderr.contains("Text file busy") {
            return done;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} stayed busy", qemu.display())
}

/// The recorded machine's /proc/cpuinfo with `svm` listed: KVM by
/// /proc/cpuinfo too, so every type has both answers.
fn with_svm(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(harness::data("qmp/pvm-epyc-cpuinfo.txt")).unwrap();
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("flags") {
                format!("{l} svm\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let path = dir.join("cpuinfo-svm");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every `[cpuinfo: …]` mark is the other answer alone.
fn marks_are_short(text: &str) {
    // The table's heading explains the marks.
    for l in text
        .lines()
        .filter(|l| l.contains("[cpuinfo: ") && !l.contains("yes|no"))
    {
        let mark = l.split("[cpuinfo: ").nth(1).unwrap();
        assert!(
            ["yes]", "no]", "unknown]"].contains(&mark),
            "a mark with reasons: {l}\n{text}"
        );
    }
}

#[test]
fn probe_says_each_difference_once_and_marks_types_with_the_other_answer_only() {
    let dir = tempfile::tempdir().unwrap();
    let qemu = replaying(dir.path(), "tcg");
    let cpuinfo = with_svm(dir.path());
    let done = probe(&qemu, &cpuinfo, "tcg", false);
    assert_eq!(done.code, 0, "{}", done.stderr);
    let text = &done.stdout;
    let j = probe(&qemu, &cpuinfo, "tcg", true).json();
    let d = &j["kvm"]["disagreement"];
    let only = d["cpuinfo_only"].as_array().unwrap().len();
    assert!(only > 8, "{d}");
    // Once, counted: not once as a note and again as the disagreement.
    assert_eq!(text.matches("/proc/cpuinfo shows").count(), 1, "{text}");
    assert!(
        harness::has(text, &format!("/proc/cpuinfo shows {only} flags, e.g. ")),
        "{text}"
    );
    let said = harness::unwrapped(text);
    assert_eq!(
        said.matches("although /proc/cpuinfo does not show").count(),
        1,
        "{text}"
    );
    assert_eq!(
        said.matches("/proc/cpuinfo cannot show").count(),
        1,
        "{text}"
    );
    assert!(!text.contains("  note:"), "{text}");
    marks_are_short(text);
    assert!(text.contains("  [cpuinfo: "), "no type differs?\n{text}");
    // The JSON keeps every flag (the text points there).
    assert!(text.contains("kvm.disagreement"), "{text}");
    // Before the table of types (one entry each): a screenful.
    let head = text
        .lines()
        .take_while(|l| !l.starts_with("Proxmox CPU types"))
        .count();
    assert!(head < 30, "{head} lines before the table:\n{text}");
}

#[test]
fn probe_kvm_where_cpuinfo_lists_no_kvm_says_so_once() {
    let dir = tempfile::tempdir().unwrap();
    let qemu = replaying(dir.path(), "kvm");
    // The recorded machine: KVM through kvm-pvm, no svm in /proc/cpuinfo.
    let cpuinfo = harness::data("qmp/pvm-epyc-cpuinfo.txt");
    let kvm_opens = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let done = probe(&qemu, &cpuinfo, "kvm", false);
    if !kvm_opens {
        // The probe checks /dev/kvm before asking QEMU.
        assert_eq!(done.code, 2, "{}", done.stderr);
        done.stderr_has("cannot open /dev/kvm");
        return;
    }
    assert_eq!(done.code, 0, "{}", done.stderr);
    let text = &done.stdout;
    let said = harness::unwrapped(text);
    assert_eq!(
        said.matches(
            "/proc/cpuinfo alone would say below-kvm64 (it lists neither vmx nor svm, yet QEMU \
             runs guests under KVM)"
        )
        .count(),
        1,
        "{text}"
    );
    // Not in every type's line: the reason is the one above.
    assert_eq!(text.matches("no usable KVM").count(), 0, "{text}");
    assert_eq!(text.matches("/proc/cpuinfo shows").count(), 1, "{text}");
    marks_are_short(text);
    let j: Value = probe(&qemu, &cpuinfo, "kvm", true).json();
    assert_eq!(j["view"], "kvm", "{j}");
}
