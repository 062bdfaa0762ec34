//! Custom CPU models (`custom-NAME`): a named set of `cpu:` options defined
//! once for the cluster. Reading them from
//! `/etc/pve/virtual-guest/cpu-models.conf` is `crate::pve::custom_models`.

use std::collections::BTreeMap;

use crate::cpu::cpuconf::CpuConf;

/// All custom models by name (without the `custom-` prefix).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomModels {
    /// Name → definition.
    pub models: BTreeMap<String, CpuConf>,
    /// Models whose section could not be read in full, name → why (the
    /// file and line): a VM using one cannot be judged, the others can.
    pub unreadable: BTreeMap<String, String>,
    /// Lines outside every model, set aside as Proxmox VE sets them aside
    /// (each naming the file and line).
    pub ignored: Vec<String>,
}

impl CustomModels {
    /// Looks up `custom-NAME` or `NAME`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&CpuConf> {
        self.models
            .get(name.strip_prefix("custom-").unwrap_or(name))
    }

    /// Why `custom-NAME` (or `NAME`) could not be read, if it could not.
    #[must_use]
    pub fn unreadable(&self, name: &str) -> Option<&str> {
        self.unreadable
            .get(name.strip_prefix("custom-").unwrap_or(name))
            .map(String::as_str)
    }
}
