//! Generates the `audit` benchmark fixture (used by `benches/audit.sh`): an
//! `/etc/pve` tree with VMS VM configs spread over NODES nodes, `.vmlist`,
//! `ha/resources.cfg`, `cpu-models.conf`, and a cache whose node records
//! come from real /proc/cpuinfo samples (Intel nodes of four generations,
//! as a cluster grown over the years).
//!
//! `cargo run --release --example gen_audit_fixture -- DIR [VMS] [NODES]`

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pve_cpuguard::cache::{self, Cache, NodeRecord};
use pve_cpuguard::cpu::cpuinfo;

const SAMPLES: [&str; 4] = [
    "hwloc-xeon-silver-4108-skylake-sp",
    "hwloc-xeon-gold-6230-cascadelake",
    "archspec-linux-rhel7-haswell",
    "archspec-linux-unknown-sapphirerapids",
];

const CPUS: [&str; 16] = [
    "cpu: x86-64-v2-AES",
    "cpu: x86-64-v3",
    "cpu: x86-64-v4",
    "cpu: host",
    "",
    "cpu: kvm64",
    "cpu: Haswell-noTSX",
    "cpu: Skylake-Server-v4",
    "cpu: Cascadelake-Server",
    "cpu: cputype=x86-64-v3,flags=+pdpe1gb",
    "cpu: x86-64-v2-AES,phys-bits=host",
    "cpu: custom-web",
    "cpu: max",
    "cpu: cputype=x86-64-v3,flags=+nested-virt",
    "cpu: IvyBridge",
    "cpu: x86-64-v3,phys-bits=42",
];

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .expect("usage: gen_audit_fixture DIR [VMS] [NODES]"),
    );
    let vms: u32 = args.next().map_or(10_000, |s| s.parse().expect("VMS"));
    let nodes: usize = args.next().map_or(64, |s| s.parse().expect("NODES"));
    let pve = dir.join("pve");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cpuinfo");

    let names: Vec<String> = (1..=nodes).map(|i| format!("pve{i:02}")).collect();
    let mut cache = Cache::default();
    let now = cache::now();
    for (i, n) in names.iter().enumerate() {
        std::fs::create_dir_all(pve.join("nodes").join(n).join("qemu-server")).unwrap();
        let info =
            cpuinfo::read(&samples.join(format!("{}.txt", SAMPLES[i % SAMPLES.len()]))).unwrap();
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
        "cpu-model: web\n\tflags +aes;+avx2\n\treported-model Haswell-noTSX\n",
    )
    .unwrap();

    let mut vmlist = String::from("{\n\"version\": 1,\n\"ids\": {\n");
    let mut ha = String::new();
    for k in 0..vms {
        let vmid = 100 + k;
        let node = &names[k as usize % names.len()];
        let cpu = CPUS[(k as usize * 7) % CPUS.len()];
        let hook = match k % 10 {
            0..=6 => "hookscript: local:snippets/pve-cpuguard-hook\n",
            7 => "hookscript: local:snippets/backup.pl\n",
            _ => "",
        };
        let hp = if k % 50 == 0 { "hugepages: 1024\n" } else { "" };
        let conf = format!(
            "#VM {vmid}\nagent: 1\nboot: order=scsi0;net0\ncores: 4\n{cpu}\n{hook}{hp}memory: 8192\nname: vm-{vmid}\nnet0: virtio=BC:24:11:00:{:02X}:{:02X},bridge=vmbr0\nnuma: 0\nostype: l26\nscsi0: local-lvm:vm-{vmid}-disk-0,iothread=1,size=32G\nscsihw: virtio-scsi-single\nsmbios1: uuid=00000000-0000-0000-0000-{vmid:012}\nsockets: 1\nvmgenid: 00000000-0000-0000-0000-{vmid:012}\n\n[snap1]\ncpu: host\nsnaptime: 1700000000\n",
            (vmid >> 8) & 0xff,
            vmid & 0xff
        );
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
    println!("{vms} VMs on {nodes} nodes under {}", dir.display());
}
