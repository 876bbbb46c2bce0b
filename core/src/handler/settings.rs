//! The knobs of one handler host, with the defaults the README documents.

use crate::labels::ClaimFilter;
use crate::retry::RetryPolicy;
use std::time::Duration;

/// How a runner gets its credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerRegistration {
    /// A just-in-time config: one runner, one job, no token in any command line.
    Jit,
    /// A registration token for Anklet's `register-runner.bash`, so existing templates work.
    Token,
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
    /// Wait before claiming again after an empty queue (Anklet's `sleep_interval`).
    pub idle_poll: Duration,
    /// Retries of GitHub calls inside one step.
    pub github_retry: RetryPolicy,
    /// Retries of cleanup steps and store writes, which must eventually happen.
    pub cleanup_retry: RetryPolicy,
}

impl Default for HandlerSettings {
    fn default() -> Self {
        let s = Duration::from_secs;
        Self {
            max_vms: 2,
            filter: ClaimFilter::default(),
            template_disk_buffer_pct: 10.0,
            job_retry_attempts: 5,
            runner_registration: RunnerRegistration::Jit,
            runner_group: None,
            registration_timeout: s(80),
            pull_timeout: s(3600),
            pull_attempts: 3,
            clone_timeout: s(600),
            start_timeout: s(300),
            start_runner_timeout: s(300),
            delete_timeout: s(300),
            github_timeout: s(30),
            store_timeout: s(10),
            job_max_lifetime: s(6 * 3600),
            job_poll_interval: s(120),
            vm_health_interval: s(30),
            lease: s(60),
            fresh_vm_attempts: 2,
            idle_poll: s(1),
            github_retry: RetryPolicy::new(3, s(2), s(30)),
            cleanup_retry: RetryPolicy::new(u32::MAX, s(2), s(60)),
        }
    }
}
