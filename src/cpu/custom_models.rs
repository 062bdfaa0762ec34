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
}

impl CustomModels {
    /// Looks up `custom-NAME` or `NAME`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&CpuConf> {
        self.models
            .get(name.strip_prefix("custom-").unwrap_or(name))
    }
}
