//! The metrics registry of one process: what its handlers and receivers did, fed by their
//! notices (and by the claims the store answered, which carry the template and the time a job
//! waited), rendered by the sibling modules. Time is always a parameter.

use super::histogram::{Histogram, JOB_BUCKETS, STEP_BUCKETS};
use crate::config::Plugin;
use crate::handler::{HostStatus, Notice};
use crate::ids::JobId;
use crate::queue::txn::{Op, Reply};
use crate::queue::{JobRecord, Place};
use crate::receiver::ReceiverNotice;
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::time::Duration;

/// Template label of a job whose claim the registry did not see (a runtime that does not
/// report store answers) or whose labels name no template.
pub const UNKNOWN_TEMPLATE: &str = "unknown";

/// Claims seen in store answers but not yet announced by the handler are kept up to this many,
/// so a claim whose handler never speaks of it cannot grow the registry without bound.
const MAX_PENDING_CLAIMS: usize = 256;

/// Who a plugin is, in Anklet's metric labels (`name`, `plugin`, `owner`, `repo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginIdentity {
    /// The plugin's `name` (a handler's host id).
    pub name: String,
    /// `github` or `github_receiver`.
    pub plugin: String,
    /// `owner`, else `enterprise` (Anklet's `MetricsOwner()`); may be empty.
    pub owner: String,
    /// `repo`; may be empty.
    pub repo: String,
}

impl PluginIdentity {
    /// The identity of a configured plugin.
    pub fn from_plugin(p: &Plugin) -> Self {
        let pick = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        Self {
            name: p.name.clone(),
            plugin: p.kind.as_str().to_owned(),
            owner: pick(&p.owner)
                .or_else(|| pick(&p.enterprise))
                .unwrap_or_default(),
            repo: pick(&p.repo).unwrap_or_default(),
        }
    }

    /// A handler known only by its name (a notice from a plugin nobody registered).
    pub fn handler(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            plugin: "github".to_owned(),
            owner: String::new(),
            repo: String::new(),
        }
    }
}

/// Host CPU, memory and disk as the runtime measured them (Anklet's `host_*` fields).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HostStats {
    /// CPUs.
    pub cpu_count: u64,
    /// CPU busy, in percent of all CPUs (0 when not measured).
    pub cpu_usage_percentage: f64,
    /// Physical memory.
    pub memory_total_bytes: u64,
    /// Memory in use.
    pub memory_used_bytes: u64,
    /// Memory available to new processes.
    pub memory_available_bytes: u64,
    /// Size of the volume measured (the template volume, else `/`).
    pub disk_total_bytes: u64,
    /// Bytes used on it.
    pub disk_used_bytes: u64,
    /// Bytes available on it.
    pub disk_available_bytes: u64,
}

impl HostStats {
    /// Anklet's `host_cpu_used_count`: CPUs times usage.
    pub fn cpu_used_count(&self) -> u64 {
        (self.cpu_count as f64 * self.cpu_usage_percentage / 100.0).round() as u64
    }

    /// Memory in use, in percent.
    pub fn memory_usage_percentage(&self) -> f64 {
        percent(self.memory_used_bytes, self.memory_total_bytes)
    }

    /// Disk in use, in percent.
    pub fn disk_usage_percentage(&self) -> f64 {
        percent(self.disk_used_bytes, self.disk_total_bytes)
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// How many jobs the queue holds in each place, as the runtime last read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Waiting for a host.
    pub queued: u64,
    /// Held by a host under a lease.
    pub claimed: u64,
    /// In the dead letter.
    pub dead: u64,
}

/// The stretches of a job's life the histograms measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// From the moment a job could be claimed (queued, or its requeue delay over) to its claim.
    QueuedToClaimed,
    /// From the claim to a booted VM (pull, clone and start included).
    ClaimedToVmReady,
    /// From a booted VM to a registered runner.
    VmReadyToRegistered,
    /// From a registered runner to the job running (webhook or API confirmation).
    RegisteredToInProgress,
    /// From the job running to its cleanup starting.
    JobDuration,
}

impl Step {
    /// Every step, in life order.
    pub const ALL: [Step; 5] = [
        Step::QueuedToClaimed,
        Step::ClaimedToVmReady,
        Step::VmReadyToRegistered,
        Step::RegisteredToInProgress,
        Step::JobDuration,
    ];

    /// The histogram's metric name.
    pub fn metric_name(self) -> &'static str {
        match self {
            Step::QueuedToClaimed => "anklet_job_queued_to_claimed_seconds",
            Step::ClaimedToVmReady => "anklet_job_claimed_to_vm_ready_seconds",
            Step::VmReadyToRegistered => "anklet_job_vm_ready_to_registered_seconds",
            Step::RegisteredToInProgress => "anklet_job_registered_to_in_progress_seconds",
            Step::JobDuration => "anklet_job_duration_seconds",
        }
    }

    /// The histogram's help text.
    pub fn help(self) -> &'static str {
        match self {
            Step::QueuedToClaimed => "Time a claimable job waited for a host to claim it.",
            Step::ClaimedToVmReady => {
                "Time from a claim to a booted VM (template pull, clone and start)."
            }
            Step::VmReadyToRegistered => "Time from a booted VM to a registered runner.",
            Step::RegisteredToInProgress => {
                "Time from a registered runner to GitHub reporting the job in progress."
            }
            Step::JobDuration => "Time a job ran on its runner, until cleanup started.",
        }
    }

    /// The bucket bounds.
    pub fn buckets(self) -> &'static [f64] {
        match self {
            Step::JobDuration => JOB_BUCKETS,
            _ => STEP_BUCKETS,
        }
    }
}

/// The last run of one kind (success, failure, cancel) and its job's URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastRun {
    /// When it ended.
    pub at: Timestamp,
    /// The job's page in GitHub, or empty when unknown.
    pub job_url: String,
}

/// What the store's claim told about a job.
#[derive(Clone, Debug, PartialEq)]
struct ClaimInfo {
    template: String,
    job_url: String,
    waited: Option<Duration>,
}

impl ClaimInfo {
    fn unknown() -> Self {
        Self {
            template: UNKNOWN_TEMPLATE.to_owned(),
            job_url: String::new(),
            waited: None,
        }
    }
}

/// One job this host holds, with the instants the histograms need.
#[derive(Clone, Debug, PartialEq)]
struct JobTrack {
    info: ClaimInfo,
    claimed_at: Timestamp,
    phase_seen: bool,
    vm_up: bool,
    ready_observed: bool,
    vm_ready_at: Option<Timestamp>,
    registered_at: Option<Timestamp>,
    running_at: Option<Timestamp>,
}

/// One handler plugin's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct HandlerMetrics {
    /// Who.
    pub identity: PluginIdentity,
    /// Anklet's `plugin_status`.
    pub status: HostStatus,
    /// When the status last changed (or the plugin started).
    pub status_since: Timestamp,
    /// Anklet's `plugin_last_successful_run`.
    pub last_successful: Option<LastRun>,
    /// Anklet's `plugin_last_failed_run`.
    pub last_failed: Option<LastRun>,
    /// Anklet's `plugin_last_canceled_run`.
    pub last_canceled: Option<LastRun>,
    /// Anklet's `plugin_total_ran_vms`: VMs booted for jobs.
    pub total_ran_vms: u64,
    /// Anklet's `plugin_total_successful_runs_since_start`.
    pub successful: u64,
    /// Anklet's `plugin_total_failed_runs_since_start`.
    pub failed: u64,
    /// Anklet's `plugin_total_canceled_runs_since_start`.
    pub canceled: u64,
    /// Claims by template.
    pub claimed: BTreeMap<String, u64>,
    /// Completions by (template, outcome).
    pub completed: BTreeMap<(String, String), u64>,
    /// Requeues by (template, reason code).
    pub requeued: BTreeMap<(String, String), u64>,
    /// Dead letters by (template, reason code).
    pub dead_lettered: BTreeMap<(String, String), u64>,
    /// Durations by (step, template).
    pub histograms: BTreeMap<(Step, String), Histogram>,
    jobs: BTreeMap<JobId, JobTrack>,
    pending: BTreeMap<JobId, ClaimInfo>,
}

impl HandlerMetrics {
    fn new(identity: PluginIdentity, now: Timestamp) -> Self {
        Self {
            identity,
            status: HostStatus::Idle,
            status_since: now,
            last_successful: None,
            last_failed: None,
            last_canceled: None,
            total_ran_vms: 0,
            successful: 0,
            failed: 0,
            canceled: 0,
            claimed: BTreeMap::new(),
            completed: BTreeMap::new(),
            requeued: BTreeMap::new(),
            dead_lettered: BTreeMap::new(),
            histograms: BTreeMap::new(),
            jobs: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    /// Jobs this host holds now.
    pub fn jobs_in_flight(&self) -> u64 {
        self.jobs.len() as u64
    }

    /// VMs booted for jobs this host holds and not yet recycled (Anklet's `total_running_vms`).
    pub fn running_vms(&self) -> u64 {
        self.jobs.values().filter(|j| j.vm_up).count() as u64
    }

    fn observe(&mut self, step: Step, template: &str, d: Duration) {
        self.histograms
            .entry((step, template.to_owned()))
            .or_insert_with(|| Histogram::new(step.buckets()))
            .observe(d);
    }

    fn claim_seen(&mut self, job: JobId, info: ClaimInfo) {
        self.pending.insert(job, info);
        while self.pending.len() > MAX_PENDING_CLAIMS {
            self.pending.pop_first();
        }
    }

    fn notice(&mut self, now: Timestamp, n: &Notice) {
        match n {
            Notice::JobClaimed { job, .. } => {
                let info = self.pending.remove(job).unwrap_or_else(ClaimInfo::unknown);
                *self.claimed.entry(info.template.clone()).or_default() += 1;
                if let Some(waited) = info.waited {
                    self.observe(Step::QueuedToClaimed, &info.template, waited);
                }
                self.jobs.insert(
                    *job,
                    JobTrack {
                        info,
                        claimed_at: now,
                        phase_seen: false,
                        vm_up: false,
                        ready_observed: false,
                        vm_ready_at: None,
                        registered_at: None,
                        running_at: None,
                    },
                );
            }
            Notice::ClaimGivenBack { job } => {
                self.pending.remove(job);
            }
            Notice::Phase { job, phase, at } => self.phase(*job, phase, *at),
            Notice::FreshVm { job, .. } => {
                if let Some(t) = self.jobs.get_mut(job) {
                    t.vm_up = false;
                    t.vm_ready_at = None;
                    t.registered_at = None;
                }
            }
            Notice::JobEnded { job, end } => self.ended(now, *job, end),
            Notice::Status(s) if *s != self.status => {
                self.status = *s;
                self.status_since = now;
            }
            // Failures, sweeps and late results are logged; they change no figure.
            _ => {}
        }
    }

    fn phase(&mut self, job: JobId, phase: &str, at: Timestamp) {
        let Some(t) = self.jobs.get_mut(&job) else {
            return;
        };
        let template = t.info.template.clone();
        let mut observed = None;
        match phase {
            "awaiting_template" if !t.phase_seen => t.claimed_at = at,
            "runner_config" => {
                if !t.vm_up {
                    t.vm_up = true;
                    self.total_ran_vms += 1;
                }
                if !t.ready_observed {
                    t.ready_observed = true;
                    observed = Some((Step::ClaimedToVmReady, at.saturating_since(t.claimed_at)));
                }
                t.vm_ready_at = Some(at);
            }
            "registered" => {
                if let Some(ready) = t.vm_ready_at.take() {
                    observed = Some((Step::VmReadyToRegistered, at.saturating_since(ready)));
                }
                t.registered_at = Some(at);
            }
            "running" => {
                if let Some(reg) = t.registered_at.take() {
                    observed = Some((Step::RegisteredToInProgress, at.saturating_since(reg)));
                }
                t.running_at = Some(at);
            }
            "cleanup" => {
                if let Some(run) = t.running_at.take() {
                    observed = Some((Step::JobDuration, at.saturating_since(run)));
                }
            }
            _ => {}
        }
        t.phase_seen = true;
        if let Some((step, d)) = observed {
            self.observe(step, &template, d);
        }
    }

    fn ended(&mut self, now: Timestamp, job: JobId, end: &str) {
        let info = self
            .jobs
            .remove(&job)
            .map_or_else(ClaimInfo::unknown, |t| t.info);
        let template = info.template.clone();
        let last = Some(LastRun {
            at: now,
            job_url: info.job_url,
        });
        let (kind, detail) = split_end(end);
        match kind {
            "completed" => {
                let outcome = detail
                    .strip_prefix("finished(")
                    .and_then(|d| d.strip_suffix(')'))
                    .unwrap_or(detail)
                    .to_owned();
                match outcome.as_str() {
                    "success" | "none" => {
                        self.successful += 1;
                        self.last_successful = last;
                    }
                    "failure" | "vm_lost" => {
                        self.failed += 1;
                        self.last_failed = last;
                    }
                    "timed_out" => {
                        self.canceled += 1;
                        self.last_canceled = last;
                    }
                    _ => {}
                }
                *self.completed.entry((template, outcome)).or_default() += 1;
            }
            "requeued" => {
                *self
                    .requeued
                    .entry((template, detail.to_owned()))
                    .or_default() += 1
            }
            "forfeited" => {
                *self
                    .requeued
                    .entry((template, "lease_lost".to_owned()))
                    .or_default() += 1
            }
            "dead_lettered" => {
                self.failed += 1;
                self.last_failed = last;
                *self
                    .dead_lettered
                    .entry((template, detail.to_owned()))
                    .or_default() += 1;
            }
            _ => {}
        }
    }
}

/// `completed(finished(success))` → (`completed`, `finished(success)`): the handler's
/// `JobEnded` text is `kind(detail)`.
fn split_end(end: &str) -> (&str, &str) {
    match end.split_once('(') {
        Some((kind, rest)) => (kind, rest.strip_suffix(')').unwrap_or(rest)),
        None => (end, ""),
    }
}

/// One receiver plugin's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceiverMetrics {
    /// Who.
    pub identity: PluginIdentity,
    /// When it started (its status is `running` from then on).
    pub since: Timestamp,
    /// Deliveries answered 2xx, by what the store did (`enqueued`, `already_known`, ...,
    /// `answered` for those needing no store operation).
    pub accepted: BTreeMap<String, u64>,
    /// Deliveries refused, by HTTP status (503 when the store failed).
    pub refused: BTreeMap<u16, u64>,
}

impl ReceiverMetrics {
    fn notice(&mut self, n: &ReceiverNotice) {
        match n {
            ReceiverNotice::Accepted { outcome, .. } => {
                *self.accepted.entry((*outcome).to_owned()).or_default() += 1;
            }
            ReceiverNotice::Answered { .. } => {
                *self.accepted.entry("answered".to_owned()).or_default() += 1;
            }
            ReceiverNotice::Refused { status, .. } => {
                *self.refused.entry(*status).or_default() += 1;
            }
            ReceiverNotice::StoreFailed { .. } => *self.refused.entry(503).or_default() += 1,
            ReceiverNotice::JobNews { .. } | ReceiverNotice::Enqueued { .. } => {}
        }
    }
}

/// The registry of one process. See the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    started_at: Timestamp,
    handlers: Vec<HandlerMetrics>,
    receivers: Vec<ReceiverMetrics>,
    host: Option<HostStats>,
    queue: Option<QueueDepth>,
}

impl Metrics {
    /// An empty registry for a process started at `started_at`.
    pub fn new(started_at: Timestamp) -> Self {
        Self {
            started_at,
            handlers: Vec::new(),
            receivers: Vec::new(),
            host: None,
            queue: None,
        }
    }

    /// A registry with every plugin of a config, in file order (Anklet lists them so).
    pub fn for_plugins<'a>(plugins: impl IntoIterator<Item = &'a Plugin>, now: Timestamp) -> Self {
        let mut m = Self::new(now);
        for p in plugins {
            if p.is_handler() {
                m.add_handler(PluginIdentity::from_plugin(p), now);
            } else if p.is_receiver() {
                m.add_receiver(PluginIdentity::from_plugin(p), now);
            }
        }
        m
    }

    /// When the process started.
    pub fn started_at(&self) -> Timestamp {
        self.started_at
    }

    /// Registers a handler (idle since `now`); a second registration of a name is ignored.
    pub fn add_handler(&mut self, identity: PluginIdentity, now: Timestamp) {
        if self.handler(&identity.name).is_none() {
            self.handlers.push(HandlerMetrics::new(identity, now));
        }
    }

    /// Registers a receiver (running since `now`); a second registration is ignored.
    pub fn add_receiver(&mut self, identity: PluginIdentity, now: Timestamp) {
        if !self
            .receivers
            .iter()
            .any(|r| r.identity.name == identity.name)
        {
            self.receivers.push(ReceiverMetrics {
                identity,
                since: now,
                accepted: BTreeMap::new(),
                refused: BTreeMap::new(),
            });
        }
    }

    /// Handlers in registration order.
    pub fn handlers(&self) -> &[HandlerMetrics] {
        &self.handlers
    }

    /// Receivers in registration order.
    pub fn receivers(&self) -> &[ReceiverMetrics] {
        &self.receivers
    }

    /// One handler by name.
    pub fn handler(&self, name: &str) -> Option<&HandlerMetrics> {
        self.handlers.iter().find(|h| h.identity.name == name)
    }

    /// Host figures, when the runtime supplied them.
    pub fn host_stats(&self) -> Option<&HostStats> {
        self.host.as_ref()
    }

    /// Queue depth, when the runtime supplied it.
    pub fn queue_depth(&self) -> Option<&QueueDepth> {
        self.queue.as_ref()
    }

    /// Stores the latest host figures.
    pub fn set_host_stats(&mut self, stats: HostStats) {
        self.host = Some(stats);
    }

    /// Stores the latest queue depth.
    pub fn set_queue_depth(&mut self, depth: QueueDepth) {
        self.queue = Some(depth);
    }

    fn handler_mut(&mut self, host: &str, now: Timestamp) -> &mut HandlerMetrics {
        let i = match self.handlers.iter().position(|h| h.identity.name == host) {
            Some(i) => i,
            None => {
                self.handlers
                    .push(HandlerMetrics::new(PluginIdentity::handler(host), now));
                self.handlers.len() - 1
            }
        };
        &mut self.handlers[i]
    }

    /// Takes one notice of handler `host` at `now`.
    pub fn record_handler_notice(&mut self, host: &str, now: Timestamp, n: &Notice) {
        self.handler_mut(host, now).notice(now, n);
    }

    /// Takes one notice of receiver `receiver` at `now`.
    pub fn record_receiver_notice(&mut self, receiver: &str, now: Timestamp, n: &ReceiverNotice) {
        if !self.receivers.iter().any(|r| r.identity.name == receiver) {
            let identity = PluginIdentity {
                plugin: "github_receiver".to_owned(),
                ..PluginIdentity::handler(receiver)
            };
            self.add_receiver(identity, now);
        }
        if let Some(r) = self
            .receivers
            .iter_mut()
            .find(|r| r.identity.name == receiver)
        {
            r.notice(n);
        }
    }

    /// Takes a store answer a handler got: a claim tells the job's template, its page and how
    /// long it waited. Runtimes call this for every store operation of their handlers (before
    /// the handler sees the answer); other operations are ignored.
    pub fn observe_store(&mut self, now: Timestamp, op: &Op, reply: &Reply) {
        if let (Op::Claim(host, ..), Reply::Claimed(Some(record))) = (op, reply) {
            let info = claim_info(record);
            self.handler_mut(&host.0, now).claim_seen(record.id, info);
        }
    }

    /// Anklet's process totals: running VMs, successful, failed and canceled runs.
    pub fn totals(&self) -> [u64; 4] {
        self.handlers.iter().fold([0; 4], |t, h| {
            [
                t[0] + h.running_vms(),
                t[1] + h.successful,
                t[2] + h.failed,
                t[3] + h.canceled,
            ]
        })
    }
}

fn claim_info(record: &JobRecord) -> ClaimInfo {
    let claimed_at = match &record.place {
        Place::Claimed { lease } => Some(lease.claimed_at),
        _ => record.last_claimed_at,
    };
    let claimable_since = record.enqueued_at.max(record.ready_at);
    ClaimInfo {
        template: record
            .spec
            .as_ref()
            .map_or_else(|| UNKNOWN_TEMPLATE.to_owned(), |s| s.template.0.clone()),
        job_url: job_url(record),
        waited: claimed_at.map(|c| c.saturating_since(claimable_since)),
    }
}

/// The job's page: `workflow_job.html_url` from the stored event, else github.com's URL
/// built from its ids.
fn job_url(record: &JobRecord) -> String {
    serde_json::from_str::<serde_json::Value>(&record.payload)
        .ok()
        .and_then(|v| {
            v.pointer("/workflow_job/html_url")
                .and_then(|u| u.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| {
            format!(
                "https://github.com/{}/{}/actions/runs/{}/job/{}",
                record.owner, record.repo, record.run_id, record.id.0
            )
        })
}
