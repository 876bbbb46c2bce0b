//! What the handler asks the world to do: plain data with ids, executed by a runtime or a model.
//!
//! Every effect except [`Effect::Notice`] expects exactly one result back as
//! [`Input::Result`](super::Input::Result) with the same [`EffectId`]; if none arrives before its
//! `timeout`, the machine treats it as failed and ignores a late answer.

use super::input::JobRef;
use crate::ids::{EffectId, HostId, JobId, TemplateId, VmName};
use crate::labels::{ClaimFilter, VmSpec};
use crate::secret::Secret;
use crate::time::Timestamp;
use std::time::Duration;

use crate::config::RunnerRegistration;

/// One request from the handler.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// A job store operation.
    Store {
        /// Correlates the result.
        id: EffectId,
        /// Deadline after which the runtime abandons the call.
        timeout: Duration,
        /// The operation.
        cmd: StoreCmd,
    },
    /// A VM backend operation (`anka` on a Mac).
    Vm {
        /// Correlates the result.
        id: EffectId,
        /// Deadline after which the runtime kills the command's process group.
        timeout: Duration,
        /// The operation.
        cmd: VmCmd,
    },
    /// A GitHub API operation.
    Forge {
        /// Correlates the result.
        id: EffectId,
        /// Deadline of the HTTP exchange.
        timeout: Duration,
        /// The operation.
        cmd: ForgeCmd,
    },
    /// Something worth logging or counting; needs no result.
    Notice(Notice),
}

impl Effect {
    /// The id a result must carry, if this effect expects one.
    pub fn id(&self) -> Option<EffectId> {
        match self {
            Effect::Store { id, .. } | Effect::Vm { id, .. } | Effect::Forge { id, .. } => {
                Some(*id)
            }
            Effect::Notice(_) => None,
        }
    }
}

/// Job store operations; their semantics (atomic claim, leases, dead letter) live in the store.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreCmd {
    /// Atomically take the oldest queued job this host can serve, with a lease. The runtime may
    /// wait for a job to arrive before answering `Claimed(None)`.
    Claim {
        /// The claimer, recorded in the lease.
        host: HostId,
        /// Which jobs fit this host.
        filter: ClaimFilter,
        /// Lease length; the claim lapses unless renewed.
        lease: Duration,
    },
    /// Extend the lease on a claimed job.
    RenewLease {
        /// The job.
        job: JobId,
        /// The claimer.
        host: HostId,
        /// New lease length from now.
        lease: Duration,
    },
    /// Remove a claimed job for good.
    Complete {
        /// The job.
        job: JobId,
        /// The claimer.
        host: HostId,
        /// How it ended.
        outcome: Completion,
    },
    /// Put a claimed job back in the queue.
    Requeue {
        /// The job.
        job: JobId,
        /// The claimer.
        host: HostId,
        /// Why, for the job's reason history.
        reason: Reason,
        /// Whether this counts as an attempt (host-side trouble such as a stop does not).
        count_attempt: bool,
        /// Wait before the job may be claimed again.
        delay: Duration,
    },
    /// Move a claimed job to the dead letter for an operator to look at.
    DeadLetter {
        /// The job.
        job: JobId,
        /// The claimer.
        host: HostId,
        /// Why.
        reason: Reason,
    },
}

/// VM backend operations.
#[derive(Clone, Debug, PartialEq)]
pub enum VmCmd {
    /// List local templates with sizes and last use, and the template volume's space.
    Inventory,
    /// Ask how many bytes a pull would download (`anka pull --check-download-size`).
    CheckDownloadSize {
        /// Template and tag to measure.
        spec: VmSpec,
    },
    /// Delete a local template to make room (`anka delete --yes <uuid>`).
    DeleteTemplate {
        /// The template.
        template: TemplateId,
    },
    /// Pull a template and tag from the registry.
    PullTemplate {
        /// Template and tag.
        spec: VmSpec,
    },
    /// Clone a VM from a local template.
    Clone {
        /// Name of the new VM.
        vm: VmName,
        /// Template and tag to clone.
        spec: VmSpec,
    },
    /// Boot a cloned VM.
    Start {
        /// The VM.
        vm: VmName,
    },
    /// Start the GitHub runner inside the VM with its credentials.
    StartRunner {
        /// The VM, whose name is also the runner's name.
        vm: VmName,
        /// The job, for logs.
        job: JobRef,
        /// The job's `runs-on` labels: a token-registered runner is given exactly these (a JIT
        /// config already carries them).
        labels: Vec<String>,
        /// JIT config or registration token.
        credentials: RunnerCredentials,
    },
    /// Report whether a VM is still running.
    InspectVm {
        /// The VM.
        vm: VmName,
    },
    /// Stop and delete a VM; deleting a VM that does not exist succeeds.
    Delete {
        /// The VM.
        vm: VmName,
    },
}

/// GitHub operations.
#[derive(Clone, Debug, PartialEq)]
pub enum ForgeCmd {
    /// Create runner credentials: a JIT config or a registration token.
    CreateRunnerConfig {
        /// The job the runner is for (scope and labels come from it).
        job: JobRef,
        /// The runner's name (= VM name).
        runner: VmName,
        /// JIT or token.
        mode: RunnerRegistration,
        /// Runner group, if any.
        group: Option<String>,
    },
    /// Read a workflow job's status and the runner it runs on.
    GetJob {
        /// The job.
        job: JobRef,
    },
    /// Remove a self-hosted runner by name, from the configured scope (where every runner of
    /// ours is registered); a runner that does not exist counts as removed, a runner running a
    /// job fails as [`FailureClass::Busy`](super::FailureClass::Busy). No job is named: the
    /// orphan sweep removes runners whose job this host no longer knows.
    RemoveRunner {
        /// The runner.
        runner: VmName,
    },
    /// Cancel the workflow run, used only when a job outlives its maximum lifetime.
    CancelWorkflowRun {
        /// The job whose run is cancelled.
        job: JobRef,
    },
    /// List the self-hosted runners of the configured scope, so the orphan sweep can find
    /// runners of ours whose VM is gone.
    ListRunners,
}

/// Credentials handed to a runner; secret in every form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunnerCredentials {
    /// Base64 JIT config from `generate-jitconfig`.
    Jit(Secret),
    /// Registration token for `config.sh`.
    Token(Secret),
}

/// How a completed job ended, as recorded in the store and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// GitHub reported the job completed with this conclusion (success, failure, cancelled...).
    Finished {
        /// GitHub's conclusion, if it gave one.
        conclusion: Option<String>,
    },
    /// Another runner took the job; ours was not needed.
    ServedElsewhere,
    /// The job outlived `job_max_lifetime`; its run was cancelled in GitHub.
    TimedOut,
    /// The VM died while the job ran; GitHub fails the job when the runner vanishes.
    VmLost,
    /// The host was stopped while the job ran; its VM was deleted.
    AbortedByStop,
}

/// Why a job left a host without completing; stable snake_case codes for the reason history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// Even after evicting every unused template the pull would not fit the disk buffer.
    DiskFullNothingEvictable,
    /// The pull kept failing on this host.
    PullFailed,
    /// The registry does not have this template or tag.
    TemplateNotInRegistry,
    /// Waited too long for the host's pull lock.
    PullLockTimeout,
    /// Cloning kept failing.
    CloneFailed,
    /// Booting the VM kept failing.
    StartFailed,
    /// GitHub would not give runner credentials.
    RunnerConfigFailed,
    /// The runner would not start inside the VM.
    StartRunnerFailed,
    /// The runner never picked the job up, confirmed with GitHub's API.
    RegistrationTimedOut,
    /// The VM died before the runner started the job.
    VmDiedBeforeJob,
    /// The store handed over a job this host still holds a lifecycle for; the new claim went
    /// straight back.
    AlreadyHeldHere,
    /// GitHub gave this job's runner another job with the same labels; the job waits for
    /// another runner while the VM serves the other job to its end.
    RunnerTakenByOtherJob,
    /// The host is stopping.
    HostStopping,
    /// The store handed over a job this host cannot serve.
    Unservable,
}

impl Reason {
    /// The code stored in reason histories and metrics labels.
    pub fn code(self) -> &'static str {
        match self {
            Reason::DiskFullNothingEvictable => "disk_full_nothing_evictable",
            Reason::PullFailed => "pull_failed",
            Reason::TemplateNotInRegistry => "template_not_in_registry",
            Reason::PullLockTimeout => "pull_lock_timeout",
            Reason::CloneFailed => "clone_failed",
            Reason::StartFailed => "start_failed",
            Reason::RunnerConfigFailed => "runner_config_failed",
            Reason::StartRunnerFailed => "start_runner_failed",
            Reason::RegistrationTimedOut => "registration_timed_out",
            Reason::VmDiedBeforeJob => "vm_died_before_job",
            Reason::RunnerTakenByOtherJob => "runner_taken_by_other_job",
            Reason::AlreadyHeldHere => "already_held_here",
            Reason::HostStopping => "host_stopping",
            Reason::Unservable => "unservable",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Observations for logs and metrics.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// A job was claimed and its lifecycle began.
    JobClaimed {
        /// The job.
        job: JobId,
        /// Its claim count, this one included.
        attempt: u32,
    },
    /// A job moved to a new phase (for time-in-phase histograms).
    Phase {
        /// The job.
        job: JobId,
        /// Phase name.
        phase: &'static str,
        /// When.
        at: Timestamp,
    },
    /// A job's lifecycle ended on this host.
    JobEnded {
        /// The job.
        job: JobId,
        /// How.
        end: String,
    },
    /// A step failed and will be retried or given up.
    StepFailed {
        /// The job, if the step belonged to one.
        job: Option<JobId>,
        /// Step name.
        step: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// A VM failed before its runner took the job; a fresh VM replaces it.
    FreshVm {
        /// The job.
        job: JobId,
        /// What went wrong with the old VM.
        reason: Reason,
    },
    /// A VM of ours that no live job holds (left by a crash or a killed process) is deleted.
    OrphanVm {
        /// The VM.
        vm: VmName,
    },
    /// A runner of ours whose job has no live lifecycle on this host (left by a crash or a
    /// removal that kept failing) is removed from GitHub; its VM, if any, is deleted after.
    OrphanRunner {
        /// The runner (named as its VM).
        runner: VmName,
    },
    /// A claim of a job this host already holds was handed straight back (the next store
    /// effect is that requeue; it belongs to the new claim, not to the lifecycle).
    ClaimGivenBack {
        /// The job.
        job: JobId,
    },
    /// A result arrived for an effect that is no longer awaited (late or duplicate); ignored.
    IgnoredResult {
        /// The effect id.
        id: EffectId,
    },
    /// A runner could not be removed after several tries; the orphan sweep will find it.
    RunnerLeftBehind {
        /// The runner.
        runner: VmName,
    },
    /// The host's status changed (Anklet's `plugin_status`).
    Status(HostStatus),
    /// The handler finished stopping or draining; the runtime may exit.
    Stopped,
}

impl Notice {
    /// The job a notice is about, if any (a log field, so one job's lines can be found).
    pub fn job(&self) -> Option<JobId> {
        match self {
            Notice::JobClaimed { job, .. }
            | Notice::Phase { job, .. }
            | Notice::JobEnded { job, .. }
            | Notice::FreshVm { job, .. }
            | Notice::ClaimGivenBack { job } => Some(*job),
            Notice::StepFailed { job, .. } => *job,
            _ => None,
        }
    }
}

/// What the host is doing, as Anklet's metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostStatus {
    /// No job.
    Idle,
    /// At least one job in flight.
    InProgress,
    /// A template is being pulled.
    Pulling,
    /// Not taking new jobs.
    Draining,
    /// Stopping.
    Stopping,
    /// Done.
    Stopped,
}

impl HostStatus {
    /// The status string Anklet's metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Idle => "idle",
            HostStatus::InProgress => "in_progress",
            HostStatus::Pulling => "pulling",
            HostStatus::Draining => "draining",
            HostStatus::Stopping => "stopping",
            HostStatus::Stopped => "stopped",
        }
    }
}

fn spec(s: &VmSpec) -> String {
    format!("{}:{}", s.template, s.tag.as_deref().unwrap_or("latest"))
}

impl std::fmt::Display for Effect {
    /// One line per effect, used by logs and by the snapshot traces.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Effect::Store { id, cmd, .. } => write!(f, "{id} store.{cmd}"),
            Effect::Vm { id, cmd, .. } => write!(f, "{id} vm.{cmd}"),
            Effect::Forge { id, cmd, .. } => write!(f, "{id} github.{cmd}"),
            Effect::Notice(n) => write!(f, "notice {n}"),
        }
    }
}

impl std::fmt::Display for StoreCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreCmd::Claim { host, .. } => write!(f, "claim host={host}"),
            StoreCmd::RenewLease { job, .. } => write!(f, "renew_lease {job}"),
            StoreCmd::Complete { job, outcome, .. } => write!(f, "complete {job} {outcome}"),
            StoreCmd::Requeue {
                job,
                reason,
                count_attempt,
                ..
            } => {
                let counted = if *count_attempt {
                    "counted"
                } else {
                    "uncounted"
                };
                write!(f, "requeue {job} reason={reason} {counted}")
            }
            StoreCmd::DeadLetter { job, reason, .. } => {
                write!(f, "dead_letter {job} reason={reason}")
            }
        }
    }
}

impl std::fmt::Display for VmCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VmCmd::Inventory => f.write_str("inventory"),
            VmCmd::CheckDownloadSize { spec: s } => write!(f, "check_download_size {}", spec(s)),
            VmCmd::DeleteTemplate { template } => write!(f, "delete_template {template}"),
            VmCmd::PullTemplate { spec: s } => write!(f, "pull {}", spec(s)),
            VmCmd::Clone { vm, spec: s } => write!(f, "clone {vm} from {}", spec(s)),
            VmCmd::Start { vm } => write!(f, "start {vm}"),
            VmCmd::StartRunner {
                vm, credentials, ..
            } => {
                write!(f, "start_runner {vm} with {credentials}")
            }
            VmCmd::InspectVm { vm } => write!(f, "inspect {vm}"),
            VmCmd::Delete { vm } => write!(f, "delete {vm}"),
        }
    }
}

impl std::fmt::Display for ForgeCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForgeCmd::CreateRunnerConfig {
                job, runner, mode, ..
            } => {
                write!(
                    f,
                    "create_runner_config {mode:?} runner={runner} for {}",
                    job.id
                )
            }
            ForgeCmd::GetJob { job } => write!(f, "get_job {}", job.id),
            ForgeCmd::RemoveRunner { runner } => write!(f, "remove_runner {runner}"),
            ForgeCmd::CancelWorkflowRun { job } => {
                write!(f, "cancel_workflow_run run={} (for {})", job.run_id, job.id)
            }
            ForgeCmd::ListRunners => f.write_str("list_runners"),
        }
    }
}

impl std::fmt::Display for RunnerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunnerCredentials::Jit(s) => write!(f, "jit_config {s}"),
            RunnerCredentials::Token(s) => write!(f, "registration_token {s}"),
        }
    }
}

impl std::fmt::Display for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Completion::Finished { conclusion } => {
                write!(f, "finished({})", conclusion.as_deref().unwrap_or("none"))
            }
            Completion::ServedElsewhere => f.write_str("served_elsewhere"),
            Completion::TimedOut => f.write_str("timed_out"),
            Completion::VmLost => f.write_str("vm_lost"),
            Completion::AbortedByStop => f.write_str("aborted_by_stop"),
        }
    }
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::JobClaimed { job, attempt } => write!(f, "claimed {job} attempt={attempt}"),
            Notice::Phase { job, phase, .. } => write!(f, "{job} phase={phase}"),
            Notice::JobEnded { job, end } => write!(f, "{job} ended {end}"),
            Notice::StepFailed { job, step, detail } => match job {
                Some(job) => write!(f, "{job} step {step} failed: {detail}"),
                None => write!(f, "host step {step} failed: {detail}"),
            },
            Notice::FreshVm { job, reason } => write!(f, "{job} fresh VM after {reason}"),
            Notice::OrphanVm { vm } => write!(f, "orphan VM {vm} deleted by the sweep"),
            Notice::OrphanRunner { runner } => {
                write!(f, "orphan runner {runner} removed by the sweep")
            }
            Notice::ClaimGivenBack { job } => {
                write!(f, "claim of {job} given back (already held here)")
            }
            Notice::IgnoredResult { id } => write!(f, "ignored late result for {id}"),
            Notice::RunnerLeftBehind { runner } => write!(f, "runner {runner} left for the sweep"),
            Notice::Status(s) => write!(f, "status {}", s.as_str()),
            Notice::Stopped => f.write_str("stopped"),
        }
    }
}
