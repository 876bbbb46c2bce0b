//! What the world tells the handler: effect results, job status news, operator commands.

use super::effect::RunnerCredentials;
use crate::ids::{EffectId, JobId, TemplateId, VmName};
use crate::time::Timestamp;

/// One input to [`HostHandler::handle_input`](super::HostHandler::handle_input).
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// The result of an effect.
    Result {
        /// The effect it answers.
        id: EffectId,
        /// What happened.
        result: EffectResult,
    },
    /// News about a job's status in GitHub (from a webhook or any API read).
    JobStatus {
        /// The job.
        job: JobId,
        /// Its status.
        status: GithubJobStatus,
    },
    /// The queue has work; claim now instead of waiting for the idle timer.
    QueueNotEmpty,
    /// Stop: requeue jobs whose runner has not started, delete every VM, then stop.
    Stop,
    /// Drain: claim nothing new, finish the jobs in hand, then stop.
    Drain,
}

/// A job as the store hands it over on claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedJob {
    /// Where the job lives in GitHub.
    pub job: JobRef,
    /// The job's `runs-on` labels.
    pub labels: Vec<String>,
    /// Counted claims so far, this one included (1 on the first claim): give-backs that did not
    /// count an attempt are left out, so the handler's retry limit agrees with the store's.
    pub attempt: u32,
}

/// What identifies a job in GitHub's API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRef {
    /// Workflow job id.
    pub id: JobId,
    /// Workflow run id.
    pub run_id: u64,
    /// Repository owner (user or organisation).
    pub owner: String,
    /// Repository name.
    pub repo: String,
}

/// A job's status as GitHub reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GithubJobStatus {
    /// Waiting for a runner (`queued`, `waiting`, `pending`, `requested`).
    Queued,
    /// A runner took it.
    InProgress {
        /// The runner's name, when known.
        runner: Option<String>,
    },
    /// Finished, with GitHub's conclusion.
    Completed {
        /// `success`, `failure`, `cancelled`, ...
        conclusion: Option<String>,
    },
}

/// A local template as the VM backend lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateInfo {
    /// Template UUID.
    pub template: TemplateId,
    /// Tag present locally.
    pub tag: Option<String>,
    /// Size on disk in bytes.
    pub size_bytes: u64,
    /// Last time it was used (Anka's `access_date`).
    pub last_used: Timestamp,
}

/// Space on the volume that holds templates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskSpace {
    /// Volume size in bytes.
    pub total_bytes: u64,
    /// Free bytes.
    pub available_bytes: u64,
}

/// What an effect produced.
#[derive(Clone, Debug, PartialEq)]
pub enum EffectResult {
    /// Claim answer: a job, or nothing queued for this host.
    Claimed(Option<ClaimedJob>),
    /// A store write took effect.
    Stored,
    /// The store says this host no longer holds the job's lease (a reaper requeued it).
    LeaseLost,
    /// Local templates and disk space.
    Inventory {
        /// Templates present.
        templates: Vec<TemplateInfo>,
        /// Template volume space.
        disk: DiskSpace,
        /// Every VM on the host (ours and others'), for the orphan sweep.
        vms: Vec<VmName>,
    },
    /// Bytes a pull would download, with current disk space.
    DownloadSize {
        /// Bytes still to download (0 = already present).
        download_bytes: u64,
        /// Template volume space.
        disk: DiskSpace,
    },
    /// A pull finished; the template now has this tag and size locally.
    Pulled {
        /// Tag now present.
        tag: Option<String>,
        /// Size on disk.
        size_bytes: u64,
    },
    /// Whether the VM runs.
    VmState(VmState),
    /// Runner credentials.
    RunnerConfig(RunnerCredentials),
    /// A job's status read from GitHub.
    JobStatus(GithubJobStatus),
    /// The self-hosted runners of the configured scope.
    Runners(Vec<RunnerInfo>),
    /// The operation succeeded and returns nothing.
    Done,
    /// The operation failed.
    Failed(Failure),
}

/// A self-hosted runner as GitHub lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerInfo {
    /// GitHub's runner id (what delete takes).
    pub id: u64,
    /// The runner's name; ours are VM names.
    pub name: String,
    /// Whether the runner is connected to GitHub.
    pub online: bool,
    /// Whether it is running a job right now.
    pub busy: bool,
}

/// Whether a VM is alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmState {
    /// Running.
    Running,
    /// Exists but stopped, suspended or failed.
    Stopped,
    /// No such VM.
    Missing,
}

/// A failure, classified so the lifecycle can choose between retrying and giving up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What kind of failure.
    pub class: FailureClass,
    /// A message for logs (never containing secrets).
    pub message: String,
}

impl Failure {
    /// A failure of the given class.
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
        }
    }
}

/// Failure classes the runtimes map errors into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// May work if tried again (network, 5xx, busy).
    Transient,
    /// Will not work if tried again with the same input (4xx, bad arguments).
    Permanent,
    /// The thing asked for does not exist (template not in registry, job unknown).
    NotFound,
    /// The disk is full.
    DiskFull,
    /// The operation is not supported here (e.g. JIT on an old GitHub Enterprise Server).
    Unsupported,
    /// No result arrived before the deadline.
    TimedOut,
    /// The runner is running a job and cannot be removed (GitHub's 422): its VM must live on.
    Busy,
}
