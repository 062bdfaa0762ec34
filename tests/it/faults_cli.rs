//! The tool's other commands under faults (issue 12): a FIFO or a planted
//! symlink where the cache, its lock, the refusal state (tally, details,
//! lock) or the metrics output belongs, a lock held by a stopped writer,
//! and a node list of 10 000 unreachable nodes. Nothing blocks, nothing
//! waits unbounded, nothing is written through a link.

use crate::harness;

use std::fmt::Write as _;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::cluster::Cluster;

const HASWELL: &str = "archspec-linux-rhel7-haswell";

fn cluster() -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", HASWELL),
    ]);
    c.vm(100, "pve1", "cores: 2\ncpu: x86-64-v4\nname: vm100\n");
    c
}

fn mkfifo(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(path);
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// Runs the tool with the cluster's environment; kills it (and fails) after
/// `limit`.
fn run(c: &Cluster, args: &[&str], env: &[(&str, &Path)], limit: Duration) -> (Output, Duration) {
    let mut cmd = harness::command(harness::binary());
    cmd.args(args)
        .envs(c.node_env("pve1"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = cmd.spawn().unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if t.elapsed() > limit {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("{args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (child.wait_with_output().unwrap(), t.elapsed())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A scan that reaches no node over SSH: the local node only.
fn local_scan_args(c: &Cluster) -> Vec<String> {
    let conf = c.path("corosync.conf");
    std::fs::write(
        &conf,
        "nodelist {\n  node {\n    name: pve1\n    nodeid: 1\n    ring0_addr: 127.0.0.1\n  }\n}\ntotem {\n  cluster_name: lab\n}\n",
    )
    .unwrap();
    let key = c.path("id_ed25519");
    std::fs::write(&key, "").unwrap();
    vec![
        "scan".into(),
        "--corosync".into(),
        conf.display().to_string(),
        "--probe".into(),
        "off".into(),
        "--ssh-key".into(),
        key.display().to_string(),
    ]
}

#[test]
fn readers_never_block_on_a_fifo_at_the_cache_path() {
    let c = cluster();
    let fifo = c.path("fifo/cluster.json");
    mkfifo(&fifo);
    let scan = local_scan_args(&c);
    let scan: Vec<&str> = scan.iter().map(String::as_str).collect();
    for args in [
        &["status"][..],
        &["baseline"],
        &["audit"],
        &["metrics"],
        &["check", "100", "--target", "pve2"],
        &scan,
    ] {
        let (o, took) = run(
            &c,
            args,
            &[("PVE_CPUGUARD_CACHE", &fifo)],
            Duration::from_secs(20),
        );
        assert!(took < Duration::from_secs(5), "{args:?} took {took:?}");
        if args[0] == "check" {
            // It answers "never scanned" per target without blocking.
            continue;
        }
        // On stderr, or among the report's warnings (audit).
        let said = format!("{}{}", stderr(&o), String::from_utf8_lossy(&o.stdout));
        assert!(
            said.contains("cluster.json: a FIFO, not a regular file"),
            "{args:?}: {said}"
        );
    }
}

#[test]
fn a_held_cache_lock_is_waited_for_a_bounded_time_and_named() {
    let c = cluster();
    let cache = c.cache();
    let lock_path = pve_cpuguard::cache::lock_path(&cache);
    // A writer that stopped while holding the lock.
    let held = pve_cpuguard::cache::Writer::lock(&cache).unwrap();
    let scan = local_scan_args(&c);
    let scan: Vec<&str> = scan.iter().map(String::as_str).collect();
    let (o, took) = run(&c, &scan, &[], Duration::from_secs(40));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        took >= pve_cpuguard::cache::LOCK_WAIT
            && took < pve_cpuguard::cache::LOCK_WAIT + Duration::from_secs(5),
        "took {took:?}"
    );
    assert!(
        err.contains(&format!("{}: cannot take the lock", lock_path.display())),
        "{err}"
    );
    assert!(
        err.contains("note: another pve-cpuguard scan or migrate holds it"),
        "{err}"
    );
    drop(held);
    let (o, _) = run(&c, &scan, &[], Duration::from_secs(40));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn planted_symlinks_are_never_written_through() {
    let c = cluster();
    let victim = c.path("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let untouched = || assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let scan = local_scan_args(&c);
    let scan: Vec<&str> = scan.iter().map(String::as_str).collect();

    // The cache itself: replaced by the new cache, the target untouched.
    let cache_dir = c.path("links");
    std::fs::create_dir_all(&cache_dir).unwrap();
    let cache = cache_dir.join("cluster.json");
    symlink(&victim, &cache).unwrap();
    // Leftover temporary names of older versions and this one's prefix.
    for name in [".cluster.json.tmp.1", ".cluster.json.XXXXXX.tmp"] {
        symlink(&victim, cache_dir.join(name)).unwrap();
    }
    let (o, _) = run(
        &c,
        &scan,
        &[("PVE_CPUGUARD_CACHE", &cache)],
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    untouched();
    assert!(std::fs::symlink_metadata(&cache)
        .unwrap()
        .file_type()
        .is_file());
    assert!(pve_cpuguard::cache::Cache::load(&cache)
        .unwrap()
        .node("pve1")
        .is_some());

    // A dangling link at the lock path: refused, its target never created.
    let cache2 = c.path("links2/cluster.json");
    std::fs::create_dir_all(cache2.parent().unwrap()).unwrap();
    let created = c.path("created-by-root");
    symlink(&created, pve_cpuguard::cache::lock_path(&cache2)).unwrap();
    let (o, _) = run(
        &c,
        &scan,
        &[("PVE_CPUGUARD_CACHE", &cache2)],
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        crate::harness::has(&stderr(&o), "a symbolic link; refusing to follow it"),
        "{}",
        stderr(&o)
    );
    assert!(!created.exists());

    // The refusal state and its lock.
    let state = c.path("state");
    std::fs::create_dir_all(&state).unwrap();
    symlink(&victim, state.join("last-refusal.json")).unwrap();
    let refuse = |state: &Path| {
        let (o, _) = run(
            &c,
            &["hook", "100", "pre-start"],
            &[
                ("PVE_CPUGUARD_STATE_DIR", state),
                ("PVE_CPUGUARD_NODE", Path::new("pve2")),
                ("PVE_CPUGUARD_CPUINFO", &harness::cpuinfo(HASWELL)),
            ],
            Duration::from_secs(20),
        );
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    };
    refuse(&state);
    untouched();
    let meta = std::fs::symlink_metadata(state.join("last-refusal.json")).unwrap();
    assert!(meta.file_type().is_file(), "the link was replaced");
    let state2 = c.path("state2");
    std::fs::create_dir_all(&state2).unwrap();
    symlink(&created, state2.join("last-refusal.lock")).unwrap();
    refuse(&state2);
    assert!(!created.exists());
    // The tally is appended to, never through a link, dangling or not.
    for (i, target) in [&victim, &created].into_iter().enumerate() {
        let dir = c.path(&format!("state-tally{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        symlink(target, dir.join("refusals.tally")).unwrap();
        refuse(&dir);
        untouched();
        assert!(!created.exists());
    }

    // metrics --output-file.
    let prom = c.path("prom/pve-cpuguard.prom");
    std::fs::create_dir_all(prom.parent().unwrap()).unwrap();
    symlink(&victim, &prom).unwrap();
    let (o, _) = run(
        &c,
        &["metrics", "--output-file", prom.to_str().unwrap()],
        &[],
        Duration::from_secs(20),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    untouched();
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(text.contains("pve_cpuguard_"), "{text}");
    let left: Vec<String> = std::fs::read_dir(prom.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["pve-cpuguard.prom"]);
}

/// Peak resident memory of a finished child, from `/usr/bin/time -v`.
fn peak_rss_kib(time_output: &str) -> u64 {
    time_output
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in:\n{time_output}"))
}

#[test]
fn ten_thousand_unreachable_nodes_take_bounded_threads_and_memory() {
    let c = cluster();
    let n = 10_000;
    let mut conf = String::from("nodelist {\n");
    // pve1 is this node; the rest are loopback addresses where nothing
    // listens on the SSH port: every connect is refused at once.
    let _ = write!(
        conf,
        "  node {{\n    name: pve1\n    nodeid: 1\n    ring0_addr: 127.0.0.1\n  }}\n"
    );
    for i in 1..n {
        let _ = write!(
            conf,
            "  node {{\n    name: n{i:05}\n    nodeid: {}\n    ring0_addr: 127.3.{}.{}\n  }}\n",
            i + 1,
            i / 250,
            i % 250 + 1
        );
    }
    conf.push_str("}\ntotem {\n  cluster_name: big\n}\n");
    let conf_path = c.path("big-corosync.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let key = c.path("id_ed25519");
    std::fs::write(&key, "").unwrap();
    let time_out = c.path("time.txt");
    let mut cmd = harness::command("/usr/bin/time");
    cmd.arg("-v")
        .arg("-o")
        .arg(&time_out)
        .arg(harness::binary())
        .args([
            "--output",
            "json",
            "scan",
            "--probe",
            "off",
            "--ssh-port",
            "9",
        ])
        .arg("--corosync")
        .arg(&conf_path)
        .arg("--ssh-key")
        .arg(&key)
        .args(["--timeout", "3"])
        .envs(c.node_env("pve1"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let out = cmd.output().unwrap();
    let took = t.elapsed();
    let rss = peak_rss_kib(&std::fs::read_to_string(&time_out).unwrap());
    eprintln!(
        "scan of {n} unreachable nodes: {took:?}, peak RSS {} MiB",
        rss / 1024
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), n);
    let failed = nodes.iter().filter(|x| x["status"] == "failed").count();
    assert_eq!(failed, n - 1, "every remote node fails alone");
    assert!(rss < 200 * 1024, "peak RSS {rss} KiB");
    assert!(took < Duration::from_secs(120), "took {took:?}");
    let cache = pve_cpuguard::cache::Cache::load(&c.cache()).unwrap();
    assert_eq!(cache.unscanned.len(), n - 1);
    let _: PathBuf = c.cache();
}

#[test]
fn status_never_reads_a_record_from_the_future_as_fresh() {
    let c = cluster();
    let mut cache = pve_cpuguard::cache::Cache::load(&c.cache()).unwrap();
    cache.nodes.get_mut("pve2").unwrap().scanned_at = pve_cpuguard::cache::now() + 7200;
    std::fs::write(c.cache(), cache.to_json()).unwrap();
    let (o, _) = run(&c, &["status"], &[], Duration::from_secs(20));
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.contains("pve2"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("DATED 2h 0m IN THE FUTURE (clock skew?)"),
        "{out}"
    );
    assert!(!line.contains("scanned 0s ago"), "{out}");
}
