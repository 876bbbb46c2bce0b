//! Identifiers that effects and inputs carry so results find their way back.

use serde::{Deserialize, Serialize};

/// GitHub's workflow job id: the one key a job has everywhere (store, webhooks, API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId(pub u64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job#{}", self.0)
    }
}

/// Correlates an effect with its result; allocated by the machine that emitted the effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EffectId(pub u64);

impl std::fmt::Display for EffectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "e{}", self.0)
    }
}

/// Names a handler host in the store (Anklet's plugin `name`, unique across the fleet); leases
/// and VM names carry it so a restarted host can recognise what it left behind.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HostId(pub String);

impl std::fmt::Display for HostId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Anka VM name; it is also the GitHub runner name, so runner and VM can be matched.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VmName(pub String);

impl VmName {
    /// The prefix every VM we create starts with, so sweeps can tell ours from others'.
    pub const PREFIX: &'static str = "anklet-vm-";

    /// Builds the name of the `n`th VM a host makes for a job; the host and job are encoded so
    /// an orphan sweep can find the owner without any other record.
    pub fn for_job(host: &HostId, job: JobId, n: u32) -> Self {
        Self(format!("{}{}-{}-{}", Self::PREFIX, host.0, job.0, n))
    }
}

impl std::fmt::Display for VmName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Anka template UUID as given in the `anka-template:` label.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TemplateId(pub String);

impl std::fmt::Display for TemplateId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
