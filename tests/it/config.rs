//! The configuration file through the real binary: precedence (flag >
//! environment > file > default), invalid values naming file, line and
//! valid values, and the file the package ships.

use crate::harness;

use std::path::Path;

use crate::harness::cluster::Cluster;
use pve_cpuguard::conf::config::{Config, KEYS};

/// A VM whose CPU cannot be judged: `policy` alone decides the hook's answer.
fn cluster() -> Cluster {
    let mut c = Cluster::new(&[("pve1", "hwloc-xeon-gold-6230-cascadelake")]);
    c.vm(100, "pve1", "cpu: NoSuchModel\n");
    c
}

fn hook(c: &Cluster, conf: Option<&str>, env: Option<&str>, flag: Option<&str>) -> i32 {
    let path = c.path("pve-cpuguard.conf");
    let mut run = c.on("pve1", &{
        let mut a = vec!["hook", "100", "pre-start"];
        if let Some(f) = flag {
            a.extend(["--policy", f]);
        }
        a
    });
    if let Some(text) = conf {
        std::fs::write(&path, text).unwrap();
        run = run.env("PVE_CPUGUARD_CONFIG", &path);
    }
    if let Some(e) = env {
        run = run.env("PVE_CPUGUARD_POLICY", e);
    }
    run.run().code
}

#[test]
fn policy_precedence_flag_env_file_default() {
    let c = cluster();
    // default: allow what cannot be proven
    assert_eq!(hook(&c, None, None, None), 0);
    // file
    assert_eq!(hook(&c, Some("policy = strict\n"), None, None), 1);
    // environment over file
    assert_eq!(
        hook(&c, Some("policy = strict\n"), Some("default"), None),
        0
    );
    // flag over environment and file
    assert_eq!(
        hook(
            &c,
            Some("policy = default\n"),
            Some("default"),
            Some("strict")
        ),
        1
    );
    assert_eq!(
        hook(
            &c,
            Some("policy = strict\n"),
            Some("strict"),
            Some("default")
        ),
        0
    );
}

#[test]
fn cache_path_precedence_through_status() {
    let c = cluster();
    let conf = c.path("c.conf");
    std::fs::write(&conf, format!("cache = {}\n", c.cache().display())).unwrap();
    let status = |env: Option<&Path>, flag: Option<&Path>| {
        let mut args = vec!["status".to_string(), "-o".into(), "json".into()];
        if let Some(f) = flag {
            args.extend(["--cache".into(), f.display().to_string()]);
        }
        let mut run = harness::Run::new(&args).env("PVE_CPUGUARD_CONFIG", &conf);
        if let Some(e) = env {
            run = run.env("PVE_CPUGUARD_CACHE", e);
        }
        let done = run.run();
        (
            done.code,
            done.json()["cache"].as_str().unwrap().to_string(),
        )
    };
    let other = c.path("other.json");
    let third = c.path("third.json");
    assert_eq!(status(None, None), (0, c.cache().display().to_string()));
    assert_eq!(status(Some(&other), None).1, other.display().to_string());
    assert_eq!(
        status(Some(&other), Some(&third)).1,
        third.display().to_string()
    );
    // Default when neither the file nor anything else says.
    let done = harness::Run::new(["status", "-o", "json"])
        .env("PVE_CPUGUARD_CONFIG", std::path::PathBuf::from("/dev/null"))
        .run();
    assert_eq!(done.json()["cache"], "/var/cache/pve-cpuguard/cluster.json");
}

#[test]
fn vendor_change_and_cache_max_age_from_the_file() {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-gold-6230-cascadelake"),
        ("pve3", "archspec-linux-ubuntu20.04-zen3"),
    ]);
    c.vm(100, "pve1", "cpu: x86-64-v2-AES\n");
    let conf = c.path("c.conf");
    let run = |text: &str| {
        std::fs::write(&conf, text).unwrap();
        c.on("pve3", &["hook", "100", "pre-start"])
            .env("PVE_MIGRATED_FROM", "pve1")
            .env("PVE_CPUGUARD_CONFIG", &conf)
            .run()
    };
    run("").code(1).stderr_has("vendor change");
    run("vendor_change = warn\n")
        .code(0)
        .stderr_has("(allowed: vendor_change = warn)");
}

#[test]
fn invalid_values_name_file_line_and_valid_values() {
    let c = cluster();
    let conf = c.path("bad.conf");
    for (text, want) in [
        (
            "# ok\nssh_port = 0\n",
            format!(
                "{}:2: invalid ssh_port '0' (valid: 1-65535)",
                conf.display()
            ),
        ),
        (
            "policy = lax\n",
            format!(
                "{}:1: invalid policy 'lax' (valid: default or strict)",
                conf.display()
            ),
        ),
        (
            "\n\ncache_max_age = 1w\n",
            format!(
                "{}:3: invalid cache_max_age '1w' (valid: a duration: 3600, 90m, 2h, 1d)",
                conf.display()
            ),
        ),
        (
            "colour = red\n",
            format!(
                "{}:1: unknown setting 'colour' (valid: policy,",
                conf.display()
            ),
        ),
    ] {
        std::fs::write(&conf, text).unwrap();
        for args in [
            &["hook", "100", "pre-start"][..],
            &["audit"][..],
            &["status"][..],
            &["metrics"][..],
        ] {
            // The hookscript answers whatever the file says: an invalid
            // file is an input it cannot read, and the default policy
            // allows the start with the error as its warning (issue 12).
            let code = if args[0] == "hook" { 0 } else { 2 };
            c.on("pve1", args)
                .env("PVE_CPUGUARD_CONFIG", &conf)
                .run()
                .code(code)
                .stderr_has(&want);
        }
    }
    // Invalid environment values and flags are usage errors naming the values.
    c.on("pve1", &["audit"])
        .env("PVE_CPUGUARD_POLICY", "lax")
        .run()
        .code(2)
        .stderr_has("environment variable PVE_CPUGUARD_POLICY: invalid value 'lax' (valid: default, strict)");
    c.on("pve1", &["audit", "--cache-max-age", "soon"])
        .run()
        .code(2)
        .stderr_has("invalid value 'soon' for '--cache-max-age")
        .stderr_has("invalid duration (valid: 10, 10s, 2m, 1h, 1d)");
}

/// The shipped file documents every key and parses, as shipped and with
/// every commented default uncommented.
#[test]
fn shipped_configuration_documents_every_setting() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/pve-cpuguard.conf");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(Config::parse(&text, &path).unwrap().policy, None);
    let mut uncommented = String::new();
    for (key, _) in KEYS {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("#{key} = ")))
            .unwrap_or_else(|| panic!("{key} is not documented as `#{key} = …`"));
        uncommented.push_str(&line[1..]);
        uncommented.push('\n');
    }
    let all = Config::parse(&uncommented, &path).unwrap();
    assert_eq!(all.ssh_port, Some(22));
    assert_eq!(
        all.cache_max_age,
        Some(std::time::Duration::from_secs(7200))
    );
    assert_eq!(
        all.cache.as_deref(),
        Some(Path::new(pve_cpuguard::cache::DEFAULT_PATH))
    );
}

/// Issue 21, item 6: a configuration file named by `--config` or
/// `PVE_CPUGUARD_CONFIG` must exist (only the default may be absent), and
/// `/dev/null` reads as an empty one.
#[test]
fn a_named_configuration_file_that_does_not_exist_is_an_error() {
    let c = cluster();
    let missing = c.path("typo.conf");
    let want = format!("configuration file {}: no such file", missing.display());
    for args in [
        &["audit"][..],
        &["status"],
        &["baseline"],
        &["check", "100"],
        &["why-not", "kvm64"],
        &["publish", "--probe", "off"],
    ] {
        // By flag and by variable alike.
        let mut with_flag = args.to_vec();
        let flag = format!("--config={}", missing.display());
        with_flag.push(&flag);
        c.on("pve1", &with_flag)
            .run()
            .code(2)
            .stderr_has(&want)
            .stderr_has("\nnote: correct --config or PVE_CPUGUARD_CONFIG");
        c.on("pve1", args)
            .env("PVE_CPUGUARD_CONFIG", &missing)
            .run()
            .code(2)
            .stderr_has(&want);
    }
    // The hook: an input problem like an unreadable file (the policy
    // decides; default allows with the warning).
    c.on("pve1", &["hook", "100", "pre-start"])
        .env("PVE_CPUGUARD_CONFIG", &missing)
        .run()
        .code(0)
        .stderr_has(&want);
}

#[test]
fn dev_null_as_the_configuration_is_read_as_empty() {
    let c = cluster();
    for args in [&["status"][..], &["audit"], &["why-not", "kvm64"]] {
        c.on("pve1", args)
            .env("PVE_CPUGUARD_CONFIG", "/dev/null")
            .run()
            .stderr_lacks("/dev/null")
            .stderr_lacks("error:");
    }
    // The hook reads it as empty too: policy default, no warning about it.
    c.on("pve1", &["hook", "100", "pre-start"])
        .env("PVE_CPUGUARD_CONFIG", "/dev/null")
        .run()
        .code(0)
        .stderr_lacks("/dev/null");
    let conf = Config::load_given(Some(Path::new("/dev/null"))).unwrap();
    assert_eq!(conf.policy, None);
    assert_eq!(conf.path, Path::new("/dev/null"));
}
