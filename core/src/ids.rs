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

    /// Reads back the host and job a name of ours encodes, or `None` for a VM that is not ours.
    /// Parsed from the right (job and counter are numbers), so host names may contain `-`.
    pub fn owner(&self) -> Option<(HostId, JobId)> {
        Self::owner_of(&self.0).map(|(host, job)| (HostId(host.to_owned()), job))
    }

    /// [`VmName::owner`] of a name given as text, borrowing the host: sweeps read every
    /// runner name of the scope, and most are not ours.
    pub fn owner_of(name: &str) -> Option<(&str, JobId)> {
        let rest = name.strip_prefix(Self::PREFIX)?;
        let (rest, n) = rest.rsplit_once('-')?;
        let (host, job) = rest.rsplit_once('-')?;
        n.parse::<u32>().ok()?;
        let job = job.parse::<u64>().ok()?;
        (!host.is_empty()).then_some((host, JobId(job)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_names_round_trip_even_with_dashes_in_host_names() {
        let host = HostId("mac-1-2".into());
        let vm = VmName::for_job(&host, JobId(55), 3);
        assert_eq!(vm.owner(), Some((host, JobId(55))));
        assert_eq!(VmName("anklet-vm-8b1c0a".into()).owner(), None);
        assert_eq!(VmName("someone-elses-vm".into()).owner(), None);
        assert_eq!(VmName("anklet-vm--5-1".into()).owner(), None);
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
