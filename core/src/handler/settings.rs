//! The knobs of one handler host, with the defaults the README documents.

pub use crate::config::RunnerRegistration;
use crate::config::{Plugin, PluginKind};
use crate::labels::ClaimFilter;
use crate::retry::RetryPolicy;
use std::time::Duration;

/// Deliberately broken behaviours. They exist so the simulator's tests can show that a sweep
/// catches a core that, say, forgets a cleanup step; production settings never set one.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Defect {
    /// After a failed clone, the lifecycle forgets the VM instead of deleting it.
    LeakVmAfterCloneFailure,
    /// The orphan sweep lists runners but never removes ours, so a runner left behind by a
    /// crash or by a removal that kept failing stays registered.
    KeepOrphanRunners,
}

/// Everything the lifecycle needs to decide; built from the handler's config entry.
#[derive(Clone, Debug, PartialEq)]
pub struct HandlerSettings {
    /// VMs this host runs at once (Apple's licence allows 2).
    pub max_vms: usize,
    /// What jobs this host may claim.
    pub filter: ClaimFilter,
    /// Share of the template volume to keep free, in percent (Anklet's `template_disk_buffer`).
    pub template_disk_buffer_pct: f64,
    /// Claims of one job in all before it goes to the dead letter (Anklet's `job_retry_attempts`).
    pub job_retry_attempts: u32,
    /// JIT config or registration token.
    pub runner_registration: RunnerRegistration,
    /// Runner group the runner joins, if any.
    pub runner_group: Option<String>,
    /// How long a started runner may take to pick its job before GitHub is asked.
    pub registration_timeout: Duration,
    /// Deadline of one template pull.
    pub pull_timeout: Duration,
    /// Pull tries on this host before the job is requeued.
    pub pull_attempts: u32,
    /// Deadline of `anka clone`.
    pub clone_timeout: Duration,
    /// Deadline of `anka start`.
    pub start_timeout: Duration,
    /// Deadline of starting the runner inside the VM.
    pub start_runner_timeout: Duration,
    /// Deadline of `anka delete`.
    pub delete_timeout: Duration,
    /// Deadline of one GitHub API call.
    pub github_timeout: Duration,
    /// Deadline of one store operation.
    pub store_timeout: Duration,
    /// Longest a job may hold a VM; past it the run is cancelled in GitHub and the VM deleted.
    pub job_max_lifetime: Duration,
    /// How often a running job's status is read from GitHub, in case a webhook was lost.
    pub job_poll_interval: Duration,
    /// How often a VM with a runner is checked for life.
    pub vm_health_interval: Duration,
    /// How long a claim holds without renewal; renewed every third of it.
    pub lease: Duration,
    /// VMs tried for one claim before the job is requeued (clone, start or registration failed).
    pub fresh_vm_attempts: u32,
    /// How often the host lists its VMs and deletes ours that no live job holds.
    pub sweep_interval: Duration,
    /// A deliberate defect, only for tests that prove the simulator catches broken cores.
    #[doc(hidden)]
    pub defect: Option<Defect>,
    /// Wait before claiming again after an empty queue (Anklet's `sleep_interval`).
    pub idle_poll: Duration,
    /// Retries of GitHub calls inside one step.
    pub github_retry: RetryPolicy,
    /// Retries of cleanup steps and store writes, which must eventually happen.
    pub cleanup_retry: RetryPolicy,
}

impl HandlerSettings {
    /// Builds the settings of a handler (`plugin: github`) entry; every default lives in
    /// `config::defaults`, so the file, the docs and the machine agree.
    pub fn from_plugin(plugin: &Plugin) -> Self {
        let s = Duration::from_secs;
        // Anklet: a handler that is not enterprise-wide only takes its owner's jobs.
        let owner = match plugin.enterprise.as_deref() {
            Some(e) if !e.is_empty() => None,
            _ => plugin.owner.clone().filter(|o| !o.is_empty()),
        };
        Self {
            max_vms: usize::try_from(plugin.max_vms()).unwrap_or(usize::MAX),
            filter: ClaimFilter {
                owner,
                ..ClaimFilter::default()
            },
            template_disk_buffer_pct: plugin.template_disk_buffer_percent(),
            job_retry_attempts: plugin.job_retry_attempts(),
            runner_registration: plugin.runner_registration(),
            runner_group: plugin.runner_group.clone().filter(|g| !g.is_empty()),
            registration_timeout: plugin.registration_timeout(),
            pull_timeout: plugin.pull_timeout(),
            pull_attempts: plugin.pull_attempts(),
            clone_timeout: plugin.clone_timeout(),
            start_timeout: plugin.start_timeout(),
            start_runner_timeout: plugin.start_runner_timeout(),
            delete_timeout: plugin.delete_timeout(),
            github_timeout: plugin.github_timeout(),
            store_timeout: plugin.store_timeout(),
            job_max_lifetime: plugin.job_max_lifetime(),
            job_poll_interval: plugin.job_poll_interval(),
            vm_health_interval: plugin.vm_health_interval(),
            lease: plugin.lease(),
            fresh_vm_attempts: plugin.fresh_vm_attempts(),
            sweep_interval: s(600),
            defect: None,
            // Anklet's `sleep_interval` defaults to 0 (a hot loop); claims wait at least 1 s.
            idle_poll: plugin.sleep_between_runs().max(s(1)),
            github_retry: RetryPolicy::new(3, s(2), s(30)),
            cleanup_retry: RetryPolicy::new(u32::MAX, s(2), s(60)),
        }
    }
}

impl Default for HandlerSettings {
    fn default() -> Self {
        Self::from_plugin(&Plugin::new("handler", PluginKind::Github))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let d = HandlerSettings::default();
        assert_eq!(d.max_vms, 2);
        assert_eq!(d.registration_timeout, Duration::from_secs(80));
        assert_eq!(d.job_retry_attempts, 5);
        assert_eq!(d.template_disk_buffer_pct, 10.0);
        assert_eq!(d.runner_registration, RunnerRegistration::Jit);
        assert_eq!(d.lease, Duration::from_secs(60));
        assert_eq!(d.idle_poll, Duration::from_secs(1));
    }

    #[test]
    fn a_plugin_entry_sets_the_knobs_and_the_owner_filter() {
        let mut p = Plugin::new("h1", PluginKind::Github);
        p.owner = Some("acme".into());
        p.max_vms = Some(1);
        p.lease_seconds = Some(30);
        p.runner_registration = Some(RunnerRegistration::Token);
        let s = HandlerSettings::from_plugin(&p);
        assert_eq!(s.max_vms, 1);
        assert_eq!(s.lease, Duration::from_secs(30));
        assert_eq!(s.runner_registration, RunnerRegistration::Token);
        assert_eq!(s.filter.owner.as_deref(), Some("acme"));
        p.enterprise = Some("ent".into());
        assert_eq!(HandlerSettings::from_plugin(&p).filter.owner, None);
    }
}
