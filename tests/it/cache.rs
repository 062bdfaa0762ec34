//! The cache file under concurrent readers and a writer killed mid-write.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pve_cpuguard::cache::{Cache, NodeRecord, Writer};
use pve_cpuguard::cpu::cpuinfo::CpuInfo;

/// A cache with `n` nodes, each with many flags (so files are large
/// enough for a torn write to be visible).
fn cache_with(n: usize) -> Cache {
    let mut c = Cache::default();
    for i in 0..n {
        let info = CpuInfo {
            vendor: "GenuineIntel".into(),
            model_name: format!("CPU {i}"),
            flags: (0..300).map(|f| format!("flag{f}")).collect(),
            processors: 1,
            uniform: true,
            logical_cpus: None,
            ..CpuInfo::default()
        };
        let name = format!("pve{i}");
        c.nodes.insert(
            name.clone(),
            NodeRecord::new(&name, "10.0.0.1", &info, None, 1),
        );
    }
    c
}

#[test]
fn concurrent_readers_during_refreshes_see_only_whole_caches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.json");
    {
        let w = Writer::lock(&path).unwrap();
        w.store(&cache_with(1)).unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (path, done) = (path.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut reads = 0u32;
                while !done.load(Ordering::Relaxed) {
                    let c = Cache::load(&path).expect("a reader must only ever see a whole cache");
                    assert!(
                        matches!(c.nodes.len(), 1 | 20 | 40),
                        "{} nodes",
                        c.nodes.len()
                    );
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    // Two writer threads, serialized by the lock, alternating sizes.
    let writers: Vec<_> = [20usize, 40]
        .into_iter()
        .map(|n| {
            let path = path.clone();
            std::thread::spawn(move || {
                for _ in 0..40 {
                    let w = Writer::lock(&path).unwrap();
                    let (current, problem) = w.load().unwrap();
                    assert!(problem.is_none());
                    assert!(matches!(current.nodes.len(), 1 | 20 | 40));
                    w.store(&cache_with(n)).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let reads: u32 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
}

const HELPER_ENV: &str = "PVE_CPUGUARD_TEST_KILLED_WRITER";

/// Not a test by itself: the child process of
/// `a_writer_killed_mid_write_leaves_the_old_cache`. It takes the lock,
/// writes the temporary file, reports, and waits to be killed before the
/// rename.
#[test]
fn helper_writer_that_gets_killed() {
    let Some(path) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let w = Writer::lock(Path::new(&path)).unwrap();
    let staged = w.stage(&cache_with(40)).unwrap();
    println!("STAGED {}", staged.path().display());
    std::thread::sleep(Duration::from_secs(60));
    w.commit(staged).unwrap();
}

#[test]
fn a_writer_killed_mid_write_leaves_the_old_cache() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.json");
    let old = cache_with(1);
    Writer::lock(&path).unwrap().store(&old).unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "cache::helper_writer_that_gets_killed",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(HELPER_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let temp: PathBuf = loop {
        let line = lines.next().expect("helper output").unwrap();
        // libtest may print `test NAME ... ` on the same line first.
        if let Some(i) = line.find("STAGED ") {
            break line[i + "STAGED ".len()..].trim().into();
        }
    };
    assert!(temp.is_file(), "the temporary file was written");
    // While the dying writer holds the lock, readers still get the old cache.
    assert_eq!(Cache::load(&path).unwrap(), old);
    child.kill().unwrap(); // SIGKILL: no destructor, no cleanup
    child.wait().unwrap();

    assert_eq!(Cache::load(&path).unwrap(), old, "the old cache survives");
    // The lock died with the process; the next writer gets it at once and
    // clears the leftover temporary file.
    let start = Instant::now();
    let w = Writer::lock(&path).unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(!temp.exists(), "leftover temp file removed");
    w.store(&cache_with(20)).unwrap();
    assert_eq!(Cache::load(&path).unwrap().nodes.len(), 20);
}
