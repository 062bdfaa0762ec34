//! [`NodeRecord`]: one node's last good scan as the cache stores it.

use serde::{Deserialize, Serialize};

use crate::cpu::capability::{Capability, HostFlags};
use crate::cpu::cpuinfo::CpuInfo;
use crate::cpu::level;
use crate::cpu::qemu_report::QemuReport;
use crate::cpu::word_list::WordList;

/// One node's last good scan.
///
/// On disk it is a [`StoredRecord`]: the CPU's fields stand among the
/// record's own, as they did before the record embedded [`CpuInfo`], since
/// records are published to the cluster and read by nodes that may run
/// another version (docs/json.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(from = "StoredRecord", into = "StoredRecord")]
pub struct NodeRecord {
    /// Node name.
    pub name: String,
    /// Address it was reached at (or `local`).
    pub address: String,
    /// The CPU as /proc/cpuinfo described it at the scan.
    pub cpu: CpuInfo,
    /// Level on Proxmox VE's ladder when scanned.
    pub level: String,
    /// True when even the lowest rung (`kvm64`) is not fully met.
    pub below_floor: bool,
    /// `uname -r`, if read.
    pub kernel: Option<String>,
    /// When this data was read (Unix seconds).
    pub scanned_at: u64,
    /// The error of the latest refresh that failed to reach the node; the
    /// record is then stale.
    pub last_error: Option<String>,
    /// When that failed attempt was made.
    pub last_attempt_at: Option<u64>,
    /// What QEMU on the node said KVM can give a guest (`scan --probe`).
    pub kvm: Option<QemuReport>,
    /// Why the QEMU probe gave no answer, if it was tried and failed.
    pub kvm_error: Option<String>,
    /// The QEMU binary that gave `kvm`, as `<size> <mtime ns> <path>`
    /// ([`crate::cache::current::qemu_identity`]); absent when the probe
    /// ran elsewhere or in older records.
    pub qemu: Option<String>,
    /// Where the data came from: `pmxcfs` (the node's published record),
    /// `ssh` or `local`; absent in records of older versions.
    pub source: Option<String>,
    /// The snippets storages whose directory holds the guard's hook file
    /// on this node (`None`: not said — records of older versions, or read
    /// over SSH; never taken for "missing").
    pub hook_storages: Option<Vec<String>>,
}

/// A [`NodeRecord`] as the cache and the published records store it: one
/// flat object, its keys in this order. Read with serde's derive, not
/// `flatten`, which buffers every field before reading it (about 20% more
/// per record; the hookscript reads every node's record on a start); the
/// conversions only move the fields.
#[derive(Deserialize, Serialize)]
struct StoredRecord {
    name: String,
    address: String,
    vendor: String,
    model_name: String,
    family: Option<u32>,
    model: Option<u32>,
    stepping: Option<u32>,
    microcode: Option<String>,
    /// One space-separated string since schema 2, a list before.
    flags: WordList,
    bugs: Option<WordList>,
    /// Absent (0) in the first records.
    #[serde(default)]
    processors: usize,
    level: String,
    #[serde(default)]
    below_floor: bool,
    phys_bits: Option<u32>,
    kernel: Option<String>,
    scanned_at: u64,
    last_error: Option<String>,
    #[serde(default)]
    last_attempt_at: Option<u64>,
    // Written only when set, as readers of older versions expect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kvm: Option<QemuReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kvm_error: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    uniform: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    logical_cpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    qemu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hook_storages: Option<Vec<String>>,
}

impl From<StoredRecord> for NodeRecord {
    fn from(s: StoredRecord) -> Self {
        NodeRecord {
            name: s.name,
            address: s.address,
            cpu: CpuInfo {
                vendor: s.vendor,
                model_name: s.model_name,
                family: s.family,
                model: s.model,
                stepping: s.stepping,
                microcode: s.microcode,
                phys_bits: s.phys_bits,
                flags: s.flags,
                bugs: s.bugs,
                processors: s.processors,
                uniform: s.uniform,
                logical_cpus: s.logical_cpus,
            },
            level: s.level,
            below_floor: s.below_floor,
            kernel: s.kernel,
            scanned_at: s.scanned_at,
            last_error: s.last_error,
            last_attempt_at: s.last_attempt_at,
            kvm: s.kvm,
            kvm_error: s.kvm_error,
            qemu: s.qemu,
            source: s.source,
            hook_storages: s.hook_storages,
        }
    }
}

impl From<NodeRecord> for StoredRecord {
    fn from(r: NodeRecord) -> Self {
        let cpu = r.cpu;
        StoredRecord {
            name: r.name,
            address: r.address,
            vendor: cpu.vendor,
            model_name: cpu.model_name,
            family: cpu.family,
            model: cpu.model,
            stepping: cpu.stepping,
            microcode: cpu.microcode,
            flags: cpu.flags,
            bugs: cpu.bugs,
            processors: cpu.processors,
            level: r.level,
            below_floor: r.below_floor,
            phys_bits: cpu.phys_bits,
            kernel: r.kernel,
            scanned_at: r.scanned_at,
            last_error: r.last_error,
            last_attempt_at: r.last_attempt_at,
            kvm: r.kvm,
            kvm_error: r.kvm_error,
            uniform: cpu.uniform,
            logical_cpus: cpu.logical_cpus,
            qemu: r.qemu,
            source: r.source,
            hook_storages: r.hook_storages,
        }
    }
}

impl NodeRecord {
    /// A fresh record from parsed cpuinfo.
    #[must_use]
    pub fn new(
        name: &str,
        address: &str,
        info: &CpuInfo,
        kernel: Option<String>,
        now: u64,
    ) -> Self {
        let lvl = level::of(&Capability::from_cpuinfo(info));
        NodeRecord {
            name: name.to_string(),
            address: address.to_string(),
            cpu: info.clone(),
            level: lvl.name.to_string(),
            below_floor: !lvl.floor_met,
            kernel,
            scanned_at: now,
            last_error: None,
            last_attempt_at: None,
            kvm: None,
            kvm_error: None,
            qemu: None,
            source: None,
            hook_storages: None,
        }
    }

    /// Records QEMU's answer (or why there is none); the stored level is
    /// then the one [`crate::cache::truth`] gives (QEMU's answer decides).
    #[must_use]
    pub fn with_kvm(mut self, kvm: Option<std::result::Result<QemuReport, String>>) -> Self {
        match kvm {
            Some(Ok(view)) => self.kvm = Some(view),
            Some(Err(e)) => self.kvm_error = Some(e),
            None => {}
        }
        if self.kvm.is_some() {
            let lvl = level::of(&self.capability());
            self.level = lvl.name.to_string();
            self.below_floor = !lvl.floor_met;
        }
        self
    }

    /// The node's [`Capability`]: QEMU's answer under KVM when the scan
    /// got one, else derived from the recorded cpuinfo.
    #[must_use]
    pub fn capability(&self) -> Capability {
        self.clone().into_capability()
    }

    /// [`NodeRecord::capability`], consuming the record (no copies of the
    /// flag lists: this runs for every node a hookscript decision looks at).
    #[must_use]
    pub fn into_capability(self) -> Capability {
        if let Some(view) = &self.kvm {
            return super::truth::capability(&self.cpu, Some(view));
        }
        let cpu = self.cpu;
        let mut cap = Capability::from_flags(
            cpu.vendor,
            cpu.model_name,
            cpu.family.zip(cpu.model),
            cpu.phys_bits,
            HostFlags {
                flags: cpu.flags,
                bugs: cpu.bugs,
            },
        );
        cap.processors = cpu.logical_cpus;
        cap
    }

    /// Seconds since the data was read.
    #[must_use]
    pub fn age(&self, now: u64) -> u64 {
        now.saturating_sub(self.scanned_at)
    }

    /// Whether the latest refresh failed to reach the node.
    #[must_use]
    pub fn last_refresh_failed(&self) -> bool {
        self.last_error.is_some()
    }

    /// How fresh the record is ([`super::Freshness`]): the one answer
    /// every command prints.
    #[must_use]
    pub fn freshness(&self, now: u64, max_age: u64) -> super::Freshness {
        super::Freshness::of(
            self.scanned_at,
            self.last_error.as_deref(),
            self.last_attempt_at,
            now,
            max_age,
        )
    }

    /// Whether the record is stale: its last refresh failed, it is older
    /// than `max_age`, or it is dated in the future or ages ago
    /// ([`NodeRecord::freshness`]; a node of the fleet adds "no usable
    /// data": `crate::guard::fleet::FleetNode::is_stale`).
    #[must_use]
    pub fn is_stale(&self, now: u64, max_age: u64) -> bool {
        self.freshness(now, max_age).is_stale()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cpu::word_list::WordList;

    pub(crate) fn info(flags: &str) -> CpuInfo {
        CpuInfo {
            vendor: "GenuineIntel".into(),
            model_name: "Test CPU".into(),
            family: Some(6),
            model: Some(85),
            stepping: Some(7),
            microcode: Some("0x5003".into()),
            phys_bits: Some(46),
            flags: WordList::parse(flags),
            bugs: Some(WordList::parse("spectre_v1")),
            processors: 4,
            uniform: true,
            logical_cpus: None,
        }
    }

    pub(crate) fn rec(name: &str, flags: &str, at: u64) -> NodeRecord {
        NodeRecord::new(name, "10.0.0.1", &info(flags), Some("6.8.12".into()), at)
    }

    #[test]
    fn record_keeps_its_cpuinfo() {
        let i = info("fpu sse sse2 hle rtm");
        let r = NodeRecord::new("pve1", "a", &i, None, 5);
        assert_eq!(r.cpu, i);
        assert_eq!(r.capability(), Capability::from_cpuinfo(&i));
        assert_eq!(r.cpu.flags.as_str(), "fpu hle rtm sse sse2", "sorted");
        assert_eq!(r.age(65), 60);
    }

    /// A record as pve-cpuguard wrote it while the record still mirrored
    /// `CpuInfo`'s fields (schema 2, every field present). Nodes of one
    /// cluster read each other's published records and may run different
    /// versions during an upgrade (docs/json.md), so this text must read
    /// and be written back unchanged, key order included.
    const WRITTEN_BEFORE: &str = r#"{
  "name": "pve1",
  "address": "10.0.0.1",
  "vendor": "AuthenticAMD",
  "model_name": "AMD EPYC 7313 16-Core Processor",
  "family": 25,
  "model": 1,
  "stepping": 1,
  "microcode": "0xa0011d1",
  "flags": "avx2 fpu pni sse sse2 svm",
  "bugs": "spectre_v1 sysret_ss_attrs",
  "processors": 32,
  "level": "x86-64-v3",
  "below_floor": false,
  "phys_bits": 48,
  "kernel": "6.8.12-4-pve",
  "scanned_at": 1764460800,
  "last_error": "ssh: timed out",
  "last_attempt_at": 1764464400,
  "kvm": {
    "qemu_version": "9.0.2",
    "qemu_package": "pve-qemu-kvm_9.0.2-4",
    "accel": "kvm",
    "host": {
      "vendor": "AuthenticAMD",
      "family": 25,
      "model": 1,
      "stepping": 1,
      "model_id": "AMD EPYC 7313 16-Core Processor"
    },
    "host_features": [
      "avx2",
      "sse2"
    ],
    "models": {
      "EPYC-Milan": [
        "erms"
      ],
      "x86-64-v3": []
    },
    "binary": "123 456 /usr/bin/qemu-system-x86_64"
  },
  "kvm_error": "an earlier probe failed",
  "uniform": true,
  "qemu": "123 456 /usr/bin/qemu-system-x86_64",
  "source": "pmxcfs",
  "hook_storages": [
    "local"
  ]
}"#;

    #[test]
    fn a_record_written_before_reads_and_is_written_back_unchanged() {
        let rec: NodeRecord = serde_json::from_str(WRITTEN_BEFORE).unwrap();
        let info = &rec.cpu;
        assert_eq!(info.vendor, "AuthenticAMD");
        assert_eq!(info.model_name, "AMD EPYC 7313 16-Core Processor");
        assert_eq!(
            (info.family, info.model, info.stepping),
            (Some(25), Some(1), Some(1))
        );
        assert_eq!(info.microcode.as_deref(), Some("0xa0011d1"));
        assert_eq!(info.phys_bits, Some(48));
        assert_eq!(info.flags.len(), 6);
        assert!(info.flags.contains("svm"));
        assert_eq!(info.bugs.as_ref().map(|b| b.len()), Some(2));
        assert_eq!((info.processors, info.uniform), (32, true));
        assert_eq!(rec.kvm.as_ref().unwrap().models.len(), 2);
        assert_eq!(
            rec.hook_storages.as_deref(),
            Some(&["local".to_string()][..])
        );
        assert_eq!(serde_json::to_string_pretty(&rec).unwrap(), WRITTEN_BEFORE);
    }

    #[test]
    fn a_schema_1_record_reads_and_is_written_in_todays_form() {
        // Schema 1 (the first releases): flags and bugs as lists, no
        // processor count, no `uniform`, `below_floor`, `last_attempt_at`
        // or later fields.
        let old = r#"{"name":"pve2","address":"10.0.0.2","vendor":"GenuineIntel",
            "model_name":"Intel(R) Xeon(R) Gold 6230","family":6,"model":85,"stepping":7,
            "microcode":null,"flags":["sse2","fpu","sse"],"bugs":["mds"],"level":"kvm64",
            "phys_bits":null,"kernel":null,"scanned_at":5,"last_error":null}"#;
        let rec: NodeRecord = serde_json::from_str(old).unwrap();
        let info = &rec.cpu;
        assert_eq!(info.flags.len(), 3);
        assert!(info.flags.contains("fpu") && info.bugs.as_ref().unwrap().contains("mds"));
        assert_eq!((info.processors, info.uniform), (0, false));
        assert_eq!(
            serde_json::to_string(&rec).unwrap(),
            r#"{"name":"pve2","address":"10.0.0.2","vendor":"GenuineIntel","model_name":"Intel(R) Xeon(R) Gold 6230","family":6,"model":85,"stepping":7,"microcode":null,"flags":"fpu sse sse2","bugs":"mds","processors":0,"level":"kvm64","below_floor":false,"phys_bits":null,"kernel":null,"scanned_at":5,"last_error":null,"last_attempt_at":null}"#
        );
    }
}
