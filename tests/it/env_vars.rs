//! `PVE_CPUGUARD_*` variables with values their options reject (issue
//! 21, item 1): the hook judges them by its policy like any other input
//! problem, never failing every start; other commands name the variable
//! (never a flag nobody typed) and say what to do.

use crate::harness;
use crate::harness::cluster::Cluster;

/// pve1 and pve2 both Skylake-SP; VM 100 (x86-64-v3) on pve1.
fn cluster() -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "hwloc-xeon-silver-4108-skylake-sp"),
    ]);
    c.vm(100, "pve1", "cpu: x86-64-v3\nname: db\n");
    c
}

/// Each mistake of the issue, as an administrator might make it.
const MISTAKES: &[(&str, &str)] = &[
    ("PVE_CPUGUARD_POLICY", ""),
    ("PVE_CPUGUARD_POLICY", "Strict"),
    ("PVE_CPUGUARD_CACHE", ""),
    ("PVE_CPUGUARD_PVE_DIR", ""),
    ("PVE_CPUGUARD_CPUINFO", ""),
    ("PVE_CPUGUARD_CONFIG", ""),
    ("PVE_CPUGUARD_STATE_DIR", ""),
    ("PVE_CPUGUARD_VENDOR_CHANGE", ""),
    ("PVE_CPUGUARD_HOOK_DEADLINE", ""),
    ("PVE_CPUGUARD_HOOK_DEADLINE", "1ms"),
    ("PVE_CPUGUARD_HOOK_DEADLINE", "-1s"),
    ("PVE_CPUGUARD_HOOK_DEADLINE", "0"),
];

/// The hook on pve2 for the live migration of VM 100 from pve1, through
/// both binaries that Proxmox may run (`pve-cpuguard-hook` from the hook
/// file, `pve-cpuguard hook`).
fn hooks(c: &Cluster, env: &[(&str, &str)]) -> Vec<harness::Done> {
    let mut hook_bin = harness::command(harness::hook_binary());
    hook_bin
        .args(["100", "pre-start"])
        .envs(c.node_env("pve2"))
        .env("PVE_MIGRATED_FROM", "pve1")
        .envs(env.iter().copied());
    let main = c
        .on("pve2", &["hook", "100", "pre-start"])
        .env("PVE_MIGRATED_FROM", "pve1")
        .envs(env.iter().copied())
        .run();
    vec![harness::Done::of(hook_bin), main]
}

#[test]
fn a_mistaken_variable_never_fails_a_vm_start() {
    let c = cluster();
    // The start is fine with the variables right.
    for done in hooks(&c, &[]) {
        done.code(0).stderr_lacks("cannot check");
    }
    for &(var, value) in MISTAKES {
        for done in hooks(&c, &[(var, value)]) {
            // Default policy: allowed, with a warning naming the variable.
            let done = done.code(0);
            done.stderr_has(&format!("environment variable {var}: "))
                .stderr_has("allowed unchecked (policy default)")
                .stderr_lacks("--");
        }
    }
}

#[test]
fn a_mistaken_variable_is_refused_under_strict() {
    let c = cluster();
    let strict_conf = c.path("strict.conf");
    // Its state_dir too: a mistaken PVE_CPUGUARD_STATE_DIR leaves the
    // refusal's record to the file, never to the default outside the test.
    std::fs::write(
        &strict_conf,
        format!(
            "policy = strict\nstate_dir = {}\n",
            c.path("state").display()
        ),
    )
    .unwrap();
    let strict_conf = strict_conf.to_str().unwrap();
    for &(var, value) in MISTAKES {
        // Strict from the variable (unless it is the mistaken one) or from
        // the configuration file (which a mistaken PVE_CPUGUARD_POLICY
        // leaves in charge).
        let strict: Vec<(&str, &str)> = match var {
            "PVE_CPUGUARD_POLICY" => {
                vec![("PVE_CPUGUARD_CONFIG", strict_conf)]
            }
            "PVE_CPUGUARD_CONFIG" => vec![("PVE_CPUGUARD_POLICY", "strict")],
            _ => vec![
                ("PVE_CPUGUARD_POLICY", "strict"),
                ("PVE_CPUGUARD_CONFIG", strict_conf),
            ],
        };
        let mut env = strict.clone();
        env.push((var, value));
        for done in hooks(&c, &env) {
            let done = done.code(1);
            done.stderr_has(&format!("environment variable {var}: "))
                .stderr_has("refused (policy strict)");
            assert!(
                done.stdout.starts_with("QEMU: pve-cpuguard: "),
                "{}",
                done.stdout
            );
        }
    }
}

#[test]
fn a_mistaken_policy_variable_leaves_the_policy_to_the_file() {
    let c = cluster();
    let conf = c.path("default.conf");
    std::fs::write(&conf, "policy = default\n").unwrap();
    for done in hooks(
        &c,
        &[
            ("PVE_CPUGUARD_POLICY", "Strict"),
            ("PVE_CPUGUARD_CONFIG", conf.to_str().unwrap()),
        ],
    ) {
        done.code(0)
            .stderr_has("invalid value 'Strict' (valid: default, strict)");
    }
}

#[test]
fn a_mistaken_variable_in_other_phases_warns_and_exits_zero() {
    let c = cluster();
    for phase in ["post-start", "pre-stop", "post-stop"] {
        c.on("pve2", &["hook", "100", phase])
            .env("PVE_CPUGUARD_POLICY", "strict")
            .env("PVE_CPUGUARD_CACHE", "")
            .run()
            .code(0)
            .stderr_has("warning: VM 100 ")
            .stderr_has("environment variable PVE_CPUGUARD_CACHE: is empty");
    }
}

#[test]
fn a_mistaken_variable_is_named_with_a_note_by_other_commands() {
    let c = cluster();
    let cases: &[(&[&str], &str, &str, &str)] = &[
        (
            &["audit"],
            "PVE_CPUGUARD_POLICY",
            "Strict",
            "invalid value 'Strict' (valid: default, strict)",
        ),
        (&["audit"], "PVE_CPUGUARD_POLICY", "", "is empty"),
        (&["check", "100"], "PVE_CPUGUARD_CACHE", "", "is empty"),
        (
            &["status"],
            "PVE_CPUGUARD_CACHE_MAX_AGE",
            "soon",
            "invalid value 'soon': invalid duration",
        ),
        (
            &["scan"],
            "PVE_CPUGUARD_TIMEOUT",
            "-1",
            "invalid value '-1': invalid timeout",
        ),
        (
            &["why-not", "kvm64"],
            "PVE_CPUGUARD_CPUINFO",
            "",
            "is empty",
        ),
        (
            &["migrate", "100", "pve2"],
            "PVE_CPUGUARD_VENDOR_CHANGE",
            "Warn",
            "invalid value 'Warn' (valid: refuse, warn)",
        ),
        (&["metrics"], "PVE_CPUGUARD_STATE_DIR", "", "is empty"),
    ];
    for (args, var, value, problem) in cases {
        let done = c.on("pve1", args).env(var, value).run().code(2);
        done.stderr_has(&format!(
            "pve-cpuguard: error: environment variable {var}: {problem}"
        ))
        .stderr_has(&format!("\nnote: correct {var} or unset it"))
        .stderr_lacks("'--");
    }
    // A value longer than any line is quoted in part.
    let long = "x".repeat(100_000);
    let done = c
        .on("pve1", &["audit"])
        .env("PVE_CPUGUARD_POLICY", &long)
        .run()
        .code(2);
    assert!(done.stderr.len() < 1000, "{}", done.stderr);
    done.stderr_has("…'");
    // A flag wins over its variable: the mistaken variable is not read.
    c.on("pve1", &["audit", "--policy", "strict"])
        .env("PVE_CPUGUARD_POLICY", "Strict")
        .run()
        .stderr_lacks("PVE_CPUGUARD_POLICY");
    // A variable the command does not read does not stop it.
    c.on("pve1", &["status"])
        .env("PVE_CPUGUARD_HOOK_DEADLINE", "1ms")
        .run()
        .stderr_lacks("PVE_CPUGUARD_HOOK_DEADLINE");
}
