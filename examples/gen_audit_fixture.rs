//! Generates the `audit` benchmark fixture (used by `benches/audit.sh`): an
//! `/etc/pve` tree with VMS VM configs spread over NODES nodes, `.vmlist`,
//! `ha/resources.cfg`, `cpu-models.conf`, and a cache whose node records
//! come from real /proc/cpuinfo samples (Intel nodes of five generations,
//! as a cluster grown over the years).
//!
//! The VM configs are as real clusters have them (lines taken from
//! qemu-server's test/cfg2cmd/*.conf and what the GUI writes): 13–30 main
//! keys with disks, NICs, EFI/TPM disks; a description; `host`, named,
//! custom and flag-carrying CPU types; `hookscript`, `lock`, `hugepages`;
//! keys sorted as Proxmox writes them or shuffled as hand-edited files are;
//! `[PENDING]` sections; up to five snapshots, each repeating the whole
//! config (some with `runningcpu`/`vmstate`); `[special:cloudinit]`.
//!
//! With `diverse` as a fourth argument the cluster is as diverse as a grown
//! one gets (issue 23): every node a different CPU — each x86 sample with
//! KVM in tests/data/cpuinfo (Nehalem to Sapphire Rapids, Naples to
//! Zen 4), the further nodes the same CPUs with features a BIOS or a
//! microcode update takes away (TSX, AVX-512, 1 GiB pages, AES) — of
//! different sizes; 15 % of the VMs `cpu: host`, about a fifth with
//! snapshots or pending changes.
//!
//! `cargo run --release --example gen_audit_fixture -- DIR [VMS] [NODES] [diverse]`

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pve_cpuguard::cache::{self, Cache, NodeRecord};

const SAMPLES: [&str; 6] = [
    "hwloc-xeon-silver-4108-skylake-sp",
    "hwloc-xeon-gold-6230-cascadelake",
    "archspec-linux-rhel7-ivybridge",
    "archspec-linux-rhel7-haswell",
    "archspec-linux-unknown-sapphirerapids",
    "archspec-linux-centos7-cascadelake",
];

/// `cpu:` values as clusters have them: plain named models, `host`/`max`,
/// x86-64-vN levels, custom models, flags, `cputype=` spelled out,
/// `hidden`/`phys-bits` options, and no `cpu:` at all (kvm64).
const CPUS: [&str; 24] = [
    "x86-64-v2-AES",
    "x86-64-v3",
    "x86-64-v4",
    "host",
    "",
    "kvm64",
    "Haswell-noTSX",
    "Skylake-Server-v4",
    "Cascadelake-Server",
    "cputype=x86-64-v3,flags=+pdpe1gb",
    "x86-64-v2-AES,phys-bits=host",
    "custom-web",
    "max",
    "cputype=x86-64-v3,flags=+nested-virt",
    "IvyBridge",
    "x86-64-v3,phys-bits=42",
    "host,hidden=1,flags=+pcid",
    "custom-db,flags=-pcid",
    "Broadwell-noTSX-IBRS,flags=+spec-ctrl;+ssbd",
    "x86-64-v2-AES,flags=+aes;+pcid;+spec-ctrl",
    "custom-legacy",
    "Skylake-Client-IBRS,hidden=1",
    "host,phys-bits=host",
    "Icelake-Server,flags=-hle;-rtm",
];

/// Main-section lines seen in real configurations (qemu-server's
/// test/cfg2cmd/*.conf and what the GUI writes); `{id}` is the VMID.
const EXTRA: [&str; 22] = [
    "agent: 1,freeze-fs=1",
    "balloon: 2048",
    "bios: ovmf",
    "efidisk0: local-lvm:vm-{id}-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M",
    "tpmstate0: local-lvm:vm-{id}-disk-2,size=4M,version=v2.0",
    "ide2: none,media=cdrom",
    "machine: pc-q35-8.1",
    "net1: virtio=BC:24:11:5E:{lo}:{hi},bridge=vmbr1,firewall=1,tag=120",
    "onboot: 1",
    "protection: 1",
    "scsi1: ceph-pool:vm-{id}-disk-3,discard=on,iothread=1,size=200G,ssd=1",
    "scsi2: nfs-backup:{id}/vm-{id}-disk-4.qcow2,backup=0,size=1T",
    "serial0: socket",
    "startup: order=3,up=30,down=60",
    "tags: prod;web;team-a",
    "usb0: host=0951:1666,usb3=1",
    "vga: qxl,memory=32",
    "rng0: source=/dev/urandom,max_bytes=1024,period=1000",
    "ipconfig0: ip=10.20.{lo}.{hi}/24,gw=10.20.{lo}.1",
    "hotplug: disk,network,usb,memory,cpu",
    "machine: pc-i440fx-7.1",
    "virtio0: local-zfs:vm-{id}-disk-5,cache=writeback,size=64G",
];

/// A small deterministic generator (splitmix64), so that the fixture is
/// the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every x86 sample with KVM (vmx or svm), by name.
fn kvm_samples(dir: &Path) -> Vec<pve_cpuguard::cpu::cpuinfo::CpuInfo> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    names.sort();
    names
        .iter()
        .filter_map(|p| pve_cpuguard::reach::local::cpuinfo(p).ok())
        .filter(|i| i.flags.contains("vmx") || i.flags.contains("svm"))
        .collect()
}

/// Node `i`'s CPU: sample `i`, and past the samples the same CPUs with
/// what a BIOS setting or a microcode update takes away, and another size.
fn diverse_cpu(
    samples: &[pve_cpuguard::cpu::cpuinfo::CpuInfo],
    i: usize,
) -> pve_cpuguard::cpu::cpuinfo::CpuInfo {
    const TAKEN: [&[&str]; 6] = [
        &[],
        &["hle", "rtm"],
        &["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"],
        &["pdpe1gb"],
        &["aes", "pclmulqdq"],
        &["hle", "rtm", "pdpe1gb"],
    ];
    let mut info = samples[i % samples.len()].clone();
    for f in TAKEN[(i / samples.len()) % TAKEN.len()] {
        info.flags.remove(f);
    }
    info.logical_cpus = Some([16, 32, 48, 64, 96, 128, 256][i % 7]);
    info
}

/// One VM's main section as `key: value` lines (keys in Proxmox's sorted
/// order; the caller may shuffle them, as hand-edited files are).
fn main_lines(vmid: u32, cpu: &str, rng: &mut Rng) -> Vec<String> {
    let (lo, hi) = ((vmid >> 8) & 0xff, vmid & 0xff);
    let fill = |l: &str| {
        l.replace("{id}", &vmid.to_string())
            .replace("{lo}", &format!("{lo:02X}"))
            .replace("{hi}", &format!("{hi:02X}"))
    };
    let mut lines = vec![
        "boot: order=scsi0;ide2;net0".to_string(),
        format!("cores: {}", [1, 2, 4, 8, 16][rng.below(5)]),
        format!("memory: {}", [2048, 4096, 8192, 16384, 65536][rng.below(5)]),
        format!("meta: creation-qemu=8.1.5,ctime={}", 1_690_000_000 + vmid),
        format!("name: vm-{vmid}-app{}", rng.below(100)),
        format!("net0: virtio=BC:24:11:{lo:02X}:{hi:02X}:01,bridge=vmbr0,firewall=1"),
        "numa: 0".to_string(),
        format!(
            "ostype: {}",
            ["l26", "win11", "l26", "win10", "l26"][rng.below(5)]
        ),
        format!("scsi0: local-lvm:vm-{vmid}-disk-0,discard=on,iothread=1,size=32G,ssd=1"),
        "scsihw: virtio-scsi-single".to_string(),
        format!(
            "smbios1: uuid={:08x}-1e0c-4b8e-9c7e-{vmid:012x}",
            rng.next() as u32
        ),
        format!("sockets: {}", 1 + rng.below(2)),
        format!(
            "vmgenid: {:08x}-5a3d-4c8f-a0e1-{vmid:012x}",
            rng.next() as u32
        ),
    ];
    if !cpu.is_empty() {
        lines.push(format!("cpu: {cpu}"));
    }
    for _ in 0..rng.below(8) {
        lines.push(fill(EXTRA[rng.below(EXTRA.len())]));
    }
    lines
}

fn main() {
    const USAGE: &str = "usage: gen_audit_fixture DIR [VMS] [NODES] [diverse]\n\
        writes an /etc/pve tree (DIR/pve) and a cache with VMS VMs (10000) on NODES nodes (64);\n\
        `diverse`: every node a different CPU, 15 % of the VMs `cpu: host`";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = |code: i32| -> ! {
        if code == 0 {
            println!("{USAGE}");
        } else {
            eprintln!("{USAGE}");
        }
        std::process::exit(code)
    };
    if args.iter().any(|a| a == "-h" || a == "--help") {
        usage(0);
    }
    if args.is_empty()
        || args.len() > 4
        || args.iter().any(|a| a.starts_with('-'))
        || args.get(3).is_some_and(|m| m != "diverse")
    {
        usage(2);
    }
    let mut args = args.into_iter();
    let dir = PathBuf::from(args.next().unwrap_or_else(|| usage(2)));
    let vms: u32 = args
        .next()
        .map_or(10_000, |s| s.parse().unwrap_or_else(|_| usage(2)));
    let nodes: usize = args
        .next()
        .map_or(64, |s| s.parse().unwrap_or_else(|_| usage(2)));
    let diverse = args.next().as_deref() == Some("diverse");
    let pve = dir.join("pve");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cpuinfo");

    let names: Vec<String> = (1..=nodes).map(|i| format!("pve{i:02}")).collect();
    let mut cache = Cache::default();
    let now = cache::now();
    let kvm_samples = if diverse {
        kvm_samples(&samples)
    } else {
        Vec::new()
    };
    for (i, n) in names.iter().enumerate() {
        std::fs::create_dir_all(pve.join("nodes").join(n).join("qemu-server")).unwrap();
        let info = if diverse {
            diverse_cpu(&kvm_samples, i)
        } else {
            pve_cpuguard::reach::local::cpuinfo(
                &samples.join(format!("{}.txt", SAMPLES[i % SAMPLES.len()])),
            )
            .unwrap()
        };
        cache.nodes.insert(
            n.clone(),
            NodeRecord::new(
                n,
                &format!("10.0.{}.{}", i / 250, i % 250 + 1),
                &info,
                None,
                now,
            ),
        );
    }
    cache.updated_at = now;
    std::fs::create_dir_all(dir.join("cache")).unwrap();
    std::fs::write(dir.join("cache/cluster.json"), cache.to_json()).unwrap();

    std::fs::create_dir_all(pve.join("virtual-guest")).unwrap();
    std::fs::write(
        pve.join("virtual-guest/cpu-models.conf"),
        "cpu-model: web\n\tflags +aes;+avx2\n\treported-model Haswell-noTSX\n\n\
         cpu-model: db\n\tflags +pcid;+pdpe1gb\n\tphys-bits host\n\treported-model Skylake-Server-v4\n\n\
         cpu-model: legacy\n\tflags -avx2\n\thidden 1\n\treported-model IvyBridge\n",
    )
    .unwrap();

    let mut vmlist = String::from("{\n\"version\": 1,\n\"ids\": {\n");
    let mut ha = String::new();
    let mut rng = Rng(0x5eed);
    let mut bytes = 0usize;
    for k in 0..vms {
        let vmid = 100 + k;
        let node = &names[k as usize % names.len()];
        let cpu = if diverse && rng.below(100) < 15 {
            "host"
        } else {
            CPUS[rng.below(CPUS.len())]
        };
        let mut lines = main_lines(vmid, cpu, &mut rng);
        match k % 10 {
            0..=6 => lines.push("hookscript: local:snippets/pve-cpuguard-hook".into()),
            7 => lines.push("hookscript: local:snippets/backup.pl".into()),
            _ => {}
        }
        if k % 50 == 0 {
            lines.push("hugepages: 1024".into());
        }
        match k % 97 {
            0 => lines.push("lock: backup".into()),
            1 => lines.push("lock: migrate".into()),
            2 => lines.push("lock: snapshot".into()),
            _ => {}
        }
        let snaps = [0, 0, 1, 2, 3, 5][rng.below(6)];
        if snaps > 0 {
            lines.push(format!("parent: snap{snaps}"));
        }
        // Proxmox writes keys sorted; hand-edited and older files are not.
        if k % 3 == 0 {
            for i in (1..lines.len()).rev() {
                lines.swap(i, rng.below(i + 1));
            }
        } else {
            lines.sort();
        }
        let mut conf = String::new();
        // The description: `#` lines at the top, as the GUI stores it.
        for _ in 0..rng.below(4) {
            conf.push_str("#Owner%3A team-a, ticket OPS-1234 %E2%80%94 see wiki for the runbook\n");
        }
        for l in &lines {
            conf.push_str(l);
            conf.push('\n');
        }
        if k % 7 == 0 {
            // A pending change (applied at the next start): other CPU type.
            let _ = write!(
                conf,
                "\n[PENDING]\ncpu: {}\ndelete: balloon\nmemory: 32768\n",
                ["host", "x86-64-v3", "Skylake-Server-v4"][rng.below(3)]
            );
        }
        for s in 1..=snaps {
            // A snapshot repeats the whole config as it was then, with the
            // running CPU and saved RAM when taken with `vmstate`.
            let _ = write!(conf, "\n[snap{s}]\n");
            let snap_cpu = if rng.below(3) == 0 { "host" } else { cpu };
            for l in main_lines(vmid, snap_cpu, &mut rng) {
                conf.push_str(&l);
                conf.push('\n');
            }
            if s > 1 {
                let _ = writeln!(conf, "parent: snap{}", s - 1);
            }
            if rng.below(2) == 0 {
                let _ = writeln!(
                    conf,
                    "runningcpu: kvm64,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,+lahf_lm,+sep"
                );
                let _ = writeln!(conf, "runningmachine: pc-i440fx-8.1+pve0");
                let _ = writeln!(conf, "vmstate: local-lvm:vm-{vmid}-state-snap{s}");
            }
            let _ = writeln!(
                conf,
                "snaptime: {}",
                1_700_000_000 + u64::from(vmid) * 10 + s
            );
        }
        if k % 23 == 0 {
            conf.push_str("\n[special:cloudinit]\nipconfig0: ip=dhcp\nname: vm\n");
        }
        bytes += conf.len();
        std::fs::write(
            pve.join(format!("nodes/{node}/qemu-server/{vmid}.conf")),
            conf,
        )
        .unwrap();
        let _ = writeln!(
            vmlist,
            "\"{vmid}\": {{ \"node\": \"{node}\", \"type\": \"qemu\", \"version\": 1 }}{}",
            if k + 1 == vms { "" } else { "," }
        );
        if k % 10 == 3 {
            let _ = write!(ha, "vm: {vmid}\n\tstate started\n\n");
        }
    }
    vmlist.push_str("}\n}\n");
    std::fs::write(pve.join(".vmlist"), vmlist).unwrap();
    std::fs::create_dir_all(pve.join("ha")).unwrap();
    std::fs::write(pve.join("ha/resources.cfg"), ha).unwrap();
    println!(
        "{vms} VMs on {nodes} nodes under {} ({} KiB of VM configs, {} B average)",
        dir.display(),
        bytes / 1024,
        bytes / vms.max(1) as usize
    );
}
