//! Rolling the guard's hookscript out to VMs (`attach`) and back (`detach`).
//!
//! Pure planning: from each VM's current `hookscript:`, the storages and the
//! chain file, decide what `qm set` to run and what to record, so that
//! `detach` restores exactly what `attach` found. The command carries the
//! plan out (or only prints it, with `--dry-run`).
//!
//! `qm` only changes VMs whose config lives on the node it runs on
//! (qemu-server loads `nodes/<this node>/qemu-server/<vmid>.conf`), so VMs
//! of other nodes are reported, not changed: run the command there — which
//! also puts the hook file on that node's local storage.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::guard::audit::{is_guard_hookscript, HOOK_FILE_NAME};
use crate::guard::chain::Entry;
use crate::pve::paths::VmId;
use crate::pve::storage::Storages;

/// One VM as the plan sees it.
#[derive(Debug, Clone)]
pub struct VmState {
    /// VMID.
    pub vmid: VmId,
    /// `name:`.
    pub name: Option<String>,
    /// Node whose directory holds the config (`None`: not found).
    pub node: Option<String>,
    /// Current `hookscript:`.
    pub hookscript: Option<String>,
}

/// What to do with one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `qm set <vmid> --hookscript <to>`; `chain` is recorded first.
    SetHookscript {
        /// Before.
        from: Option<String>,
        /// After.
        to: String,
        /// The VM's own hookscript, chained behind the guard.
        chain: Option<Entry>,
        /// The chain entry to drop afterwards (detach).
        unchain: bool,
    },
    /// `qm set <vmid> --delete hookscript` (detach without a chained script).
    DeleteHookscript {
        /// Before.
        from: String,
    },
    /// Nothing to do.
    Unchanged(String),
    /// On another node: run the command there.
    OtherNode(String),
    /// Cannot be done; nothing is changed for this VM.
    Refused(String),
}

/// The volume id the guard's hook file gets on `storage`.
#[must_use]
pub fn guard_volid(storage: &str) -> String {
    format!("{storage}:snippets/{HOOK_FILE_NAME}")
}

/// Plans each VM: `here` decides for the VMs of this node; a VM of another
/// node is reported (`qm` changes only the local node's VMs), one not found
/// is refused.
fn plan(vms: &[VmState], local: &str, here: impl Fn(&VmState) -> Action) -> Vec<(VmId, Action)> {
    vms.iter()
        .map(|vm| {
            let action = match &vm.node {
                None => Action::Refused(format!(
                    "VM {} not found in the cluster (no .vmlist entry, no qemu-server config); \
                     `qm list` on each node shows its VMs",
                    vm.vmid
                )),
                Some(node) if node != local => Action::OtherNode(node.clone()),
                Some(_) => here(vm),
            };
            (vm.vmid, action)
        })
        .collect()
}

/// Plans `attach` for each VM.
#[must_use]
pub fn plan_attach(
    vms: &[VmState],
    local: &str,
    target: &str,
    storages: &Storages,
) -> Vec<(VmId, Action)> {
    plan(vms, local, |vm| attach_here(vm, target, storages))
}

/// `attach` for a VM of this node.
fn attach_here(vm: &VmState, target: &str, storages: &Storages) -> Action {
    match &vm.hookscript {
        Some(h) if h == target => Action::Unchanged(format!("already attached ({h})")),
        Some(h) if is_guard_hookscript(h) => Action::SetHookscript {
            from: Some(h.clone()),
            to: target.to_string(),
            chain: None,
            unchain: false,
        },
        Some(h) => match storages.resolve_snippet(h) {
            Ok(path) if path.to_str().is_some_and(|p| !p.contains(char::is_whitespace)) => {
                Action::SetHookscript {
                    from: Some(h.clone()),
                    to: target.to_string(),
                    chain: Some(Entry {
                        path,
                        volid: Some(h.clone()),
                    }),
                    unchain: false,
                }
            }
            Ok(path) => Action::Refused(format!(
                "its hookscript {} has whitespace in its path and cannot be chained",
                path.display()
            )),
            Err(e) => Action::Refused(format!(
                "its own hookscript cannot be kept: {e}\nnote: fix or remove it first (`qm set {} --delete hookscript`)",
                vm.vmid
            )),
        },
        None => Action::SetHookscript {
            from: None,
            to: target.to_string(),
            chain: None,
            unchain: false,
        },
    }
}

/// Plans `detach` for each VM: the guard's hookscript gives way to the
/// chained one it replaced, or to none.
#[must_use]
pub fn plan_detach(
    vms: &[VmState],
    local: &str,
    chain: &BTreeMap<VmId, Entry>,
    storages: &Storages,
) -> Vec<(VmId, Action)> {
    plan(vms, local, |vm| detach_here(vm, chain, storages))
}

/// `detach` for a VM of this node.
fn detach_here(vm: &VmState, chain: &BTreeMap<VmId, Entry>, storages: &Storages) -> Action {
    match &vm.hookscript {
        Some(h) if is_guard_hookscript(h) => match chain.get(&vm.vmid) {
            None => Action::DeleteHookscript { from: h.clone() },
            Some(entry) => match entry
                .volid
                .clone()
                .or_else(|| storages.volid_of(&entry.path))
            {
                Some(old) => Action::SetHookscript {
                    from: Some(h.clone()),
                    to: old,
                    chain: None,
                    unchain: true,
                },
                None => Action::Refused(format!(
                    "its chained hookscript {} is in no snippets storage, so it cannot be put back as a volume\nnote: set one by hand with `qm set {} --hookscript STORAGE:snippets/FILE`, then remove the line from chain.conf",
                    entry.path.display(),
                    vm.vmid
                )),
            },
        },
        other => Action::Unchanged(format!(
            "not attached (hookscript: {})",
            other.as_deref().unwrap_or("none")
        )),
    }
}

/// The `qm` arguments an action runs, if it runs `qm`.
#[must_use]
pub fn qm_args(vmid: VmId, action: &Action) -> Option<Vec<String>> {
    match action {
        Action::SetHookscript { to, .. } => Some(vec![
            "set".into(),
            vmid.to_string(),
            "--hookscript".into(),
            to.clone(),
        ]),
        Action::DeleteHookscript { .. } => Some(vec![
            "set".into(),
            vmid.to_string(),
            "--delete".into(),
            "hookscript".into(),
        ]),
        _ => None,
    }
}

/// What happens to the hook file in the snippets directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAction {
    /// It is missing: copy it.
    Copy,
    /// It differs (content or mode): replace it.
    Update,
    /// Already identical.
    Unchanged,
}

impl FileAction {
    /// Stable name for JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FileAction::Copy => "copy",
            FileAction::Update => "update",
            FileAction::Unchanged => "unchanged",
        }
    }
}

/// Compares the installed hook file with the shipped one.
#[must_use]
pub fn file_action(shipped: &[u8], installed: Option<(&[u8], u32)>) -> FileAction {
    match installed {
        None => FileAction::Copy,
        Some((bytes, mode)) if bytes == shipped && mode & 0o777 == 0o755 => FileAction::Unchanged,
        Some(_) => FileAction::Update,
    }
}

/// The hook file's path in a snippets directory.
#[must_use]
pub fn hook_path(snippets_dir: &std::path::Path) -> PathBuf {
    snippets_dir.join(HOOK_FILE_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn storages() -> Storages {
        crate::pve::storage::parse(
            "dir: local\n\tpath /var/lib/vz\n\tcontent snippets,iso\n\nnfs: nas\n\tpath /mnt/pve/nas\n\tcontent snippets\n\texport /x\n\tserver 1.2.3.4\n",
            Path::new("storage.cfg"),
        )
        .unwrap()
    }

    fn vm(id: u32, node: &str, hook: Option<&str>) -> VmState {
        VmState {
            vmid: VmId(id),
            name: None,
            node: Some(node.into()),
            hookscript: hook.map(str::to_string),
        }
    }

    #[test]
    fn attach_keeps_an_existing_hookscript_chained() {
        let vms = [
            vm(100, "pve1", None),
            vm(101, "pve1", Some("nas:snippets/backup.pl")),
            vm(102, "pve1", Some("local:snippets/pve-cpuguard-hook")),
            vm(103, "pve2", None),
            vm(104, "pve1", Some("nas:snippets/pve-cpuguard-hook")),
            vm(105, "pve1", Some("gone:snippets/x.pl")),
        ];
        let plan = plan_attach(&vms, "pve1", &guard_volid("local"), &storages());
        assert_eq!(
            plan[0].1,
            Action::SetHookscript {
                from: None,
                to: "local:snippets/pve-cpuguard-hook".into(),
                chain: None,
                unchain: false
            }
        );
        assert_eq!(
            plan[1].1,
            Action::SetHookscript {
                from: Some("nas:snippets/backup.pl".into()),
                to: "local:snippets/pve-cpuguard-hook".into(),
                chain: Some(Entry {
                    path: "/mnt/pve/nas/snippets/backup.pl".into(),
                    volid: Some("nas:snippets/backup.pl".into())
                }),
                unchain: false
            }
        );
        assert!(matches!(plan[2].1, Action::Unchanged(_)));
        assert_eq!(plan[3].1, Action::OtherNode("pve2".into()));
        assert!(matches!(
            &plan[4].1,
            Action::SetHookscript { chain: None, .. }
        ));
        assert!(matches!(&plan[5].1, Action::Refused(m) if m.contains("storage 'gone'")));
        assert_eq!(
            qm_args(VmId(100), &plan[0].1).unwrap(),
            [
                "set",
                "100",
                "--hookscript",
                "local:snippets/pve-cpuguard-hook"
            ]
        );
    }

    #[test]
    fn detach_restores_exactly_what_was_there() {
        let mut chain = BTreeMap::new();
        chain.insert(
            VmId(101),
            Entry {
                path: "/mnt/pve/nas/snippets/backup.pl".into(),
                volid: Some("nas:snippets/backup.pl".into()),
            },
        );
        chain.insert(
            VmId(102),
            Entry {
                path: "/var/lib/vz/snippets/old.sh".into(),
                volid: None,
            },
        );
        chain.insert(
            VmId(103),
            Entry {
                path: "/opt/elsewhere.sh".into(),
                volid: None,
            },
        );
        let g = Some("local:snippets/pve-cpuguard-hook");
        let vms = [
            vm(100, "pve1", g),
            vm(101, "pve1", g),
            vm(102, "pve1", g),
            vm(103, "pve1", g),
            vm(104, "pve1", Some("local:snippets/mine.pl")),
        ];
        let plan = plan_detach(&vms, "pve1", &chain, &storages());
        assert_eq!(
            qm_args(VmId(100), &plan[0].1).unwrap(),
            ["set", "100", "--delete", "hookscript"]
        );
        assert_eq!(
            qm_args(VmId(101), &plan[1].1).unwrap(),
            ["set", "101", "--hookscript", "nas:snippets/backup.pl"]
        );
        // Without a recorded volume id, the path is mapped back.
        assert_eq!(
            qm_args(VmId(102), &plan[2].1).unwrap(),
            ["set", "102", "--hookscript", "local:snippets/old.sh"]
        );
        assert!(matches!(&plan[3].1, Action::Refused(m) if m.contains("in no snippets storage")));
        assert!(matches!(&plan[4].1, Action::Unchanged(m) if m.contains("local:snippets/mine.pl")));
    }

    #[test]
    fn hook_file_comparison() {
        assert_eq!(file_action(b"a", None), FileAction::Copy);
        assert_eq!(
            file_action(b"a", Some((b"a", 0o100_755))),
            FileAction::Unchanged
        );
        assert_eq!(file_action(b"a", Some((b"a", 0o644))), FileAction::Update);
        assert_eq!(file_action(b"a", Some((b"b", 0o755))), FileAction::Update);
    }
}
