//! The discrete-event world: the production `HostHandler`s and `MemoryQueue` driven by a
//! virtual clock, with GitHub and Anka answered by seeded models. The loop jumps from event to
//! event, so a simulated day costs only its events.
//!
//! Invariants are checked as the run goes (a violation stops it at once) and at the end, after
//! a liveness phase in which faults stop and crashed hosts are back.

use crate::dice::Dice;
use crate::models::{Anka, GhJob, GitHub, Vm};
use crate::scenario::{Arrival, Scenario};
use anklet_core::github::webhook::Delivery;
use anklet_core::handler::{
    Defect, Effect, EffectResult, Failure, FailureClass, ForgeCmd, GithubJobStatus,
    HandlerSettings, HostHandler, Input, Notice, RunnerCredentials, RunnerInfo, StoreCmd, VmCmd,
    VmState,
};
use anklet_core::ids::{EffectId, HostId, JobId, TemplateId, VmName};
use anklet_core::queue::{MemoryQueue, NewJob, Place, QueueSettings, apply};
use anklet_core::receiver::{
    Receiver, ReceiverEffect, ReceiverNotice, ReceiverSettings, RequestId,
};
use anklet_core::secret::Secret;
use anklet_core::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

const GIB: u64 = 1 << 30;
const START: Timestamp = Timestamp(1_767_225_600_000);
const SEC: Duration = Duration::from_secs(1);
/// How many trace lines a violation report shows.
pub const TRACE_TAIL: usize = 60;
/// Time past one sweep period that an orphan runner may stay registered: the sweep's calls,
/// and its retries (on the cleanup backoff) when GitHub fails them.
const RUNNER_SLACK: Duration = Duration::from_secs(300);
/// The GitHub client's command timeout (`ClientConfig::new`'s default): a call held longer by
/// a rate-limit pause fails as timed out.
const CLIENT_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// A broken invariant, with the instant it was seen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at {at}: {what}")]
pub struct Violation {
    /// Simulated time since the start.
    pub at: String,
    /// What broke.
    pub what: String,
}

/// What a run produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Jobs GitHub completed after a runner ran them.
    pub ran: usize,
    /// Jobs cancelled.
    pub cancelled: usize,
    /// Jobs in the dead letter at the end.
    pub dead: usize,
    /// Queue times (queued in GitHub -> started on a runner), milliseconds.
    pub queue_ms: Vec<u64>,
    /// VMs cloned.
    pub vms: u64,
    /// Template pulls.
    pub pulls: u64,
    /// Effects executed.
    pub effects: u64,
    /// Simulated time the run covered.
    pub simulated: Duration,
    /// Busy VM-time over available VM-time, 0..1.
    pub utilisation: f64,
    /// The first violation, if any.
    pub violation: Option<Violation>,
    /// Every job a runner started, in start order: per-hour queue times and utilisation need
    /// to know when each job arrived and ran, not just how long it waited.
    pub starts: Vec<JobStart>,
    /// Templates deleted to make room for a pull (the core's LRU evictions).
    pub evictions: u64,
    /// Pulls that did not happen for want of space: refused by the core's disk-buffer rule
    /// (nothing evictable) or failed by Anka with a full disk.
    pub space_refusals: u64,
}

/// One job a runner started, times from the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobStart {
    /// When GitHub queued it.
    pub queued: Duration,
    /// When a runner started it.
    pub started: Duration,
    /// How long it was meant to run (its VM is busy for that long unless it dies first).
    pub runs: Duration,
}

impl JobStart {
    /// Time from GitHub queueing the job to a runner starting it.
    pub fn waited(&self) -> Duration {
        self.started.saturating_sub(self.queued)
    }
}

#[derive(Clone, Debug)]
enum Event {
    Arrive(JobId),
    Webhook(JobId, GithubJobStatus),
    Result(usize, u32, EffectId, EffectResult),
    Timer(usize, u32),
    RunnerOnline(usize, VmName),
    JobEnds(JobId, String),
    VmDies(usize, VmName),
    Crash(usize),
    Restart(usize),
    StoreDown(bool),
    Reap,
    Heal,
}

/// An event in the queue, ordered by (time, sequence) only, earliest first.
struct Scheduled {
    at: Timestamp,
    seq: u64,
    /// Where the event waits in [`World::slots`]: the heap moves entries on every push and pop
    /// and results are large, so it holds only the key and the slot.
    slot: u32,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: BinaryHeap is a max-heap and the earliest event must come out first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct Host {
    id: HostId,
    handler: Option<HostHandler>,
    epoch: u32,
    anka: Anka,
    timer_at: Option<Timestamp>,
    up_since: Timestamp,
    idle: bool,
}

/// How a run is observed and which core it drives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Keep a trace (the last lines, for violation reports).
    pub trace: bool,
    /// Keep every trace line.
    pub trace_all: bool,
    /// Drive a deliberately broken core (tests prove the sweep catches it).
    pub defect: Option<Defect>,
}

/// The world. Build with [`World::new`], run with [`World::run`].
pub struct World {
    scenario: Scenario,
    settings: HandlerSettings,
    dice: Dice,
    now: Timestamp,
    seq: u64,
    events: BinaryHeap<Scheduled>,
    /// The events the heap points at; a fired event's slot is reused, so a run allocates no
    /// memory per event.
    slots: Vec<Option<Event>>,
    /// Free slots.
    free: Vec<u32>,
    /// VMs the sweep is deleting (after a crash, a running job on them has no owner left).
    swept: BTreeSet<VmName>,
    /// VMs a crashed process left behind: no lifecycle made them, and the sweep keeps one
    /// whose runner still runs a job, so a later lifecycle of the same job does not answer
    /// for it.
    crash_orphans: BTreeSet<VmName>,
    /// Store results waiting to be handed back within the current drain.
    store_answers: Vec<(EffectId, EffectResult)>,
    arrivals: VecDeque<(Timestamp, JobId)>,
    hosts: Vec<Host>,
    /// Host index by id: webhooks and runners name hosts, and a fleet has a hundred.
    host_index: HashMap<String, usize>,
    queue: MemoryQueue,
    /// GitHub API rate-limit windows (from, until).
    rate_limits: Vec<(Timestamp, Timestamp)>,
    /// The run's seed (fault schedules that must not disturb the main dice derive from it).
    seed: u64,
    /// The production webhook receiver in front of the queue.
    receiver: Receiver,
    /// Requests the receiver has taken.
    requests: u64,
    github: GitHub,
    store_down: bool,
    healed: bool,
    /// Runners that must be gone by a deadline, by (host, job): the lifecycle a runner of ours
    /// was made for ended on its host, so within one sweep period (plus slack) that host's
    /// sweep must have removed every idle runner named for that job.
    runner_deadlines: BTreeMap<(usize, JobId), Timestamp>,
    /// The same deadlines in time order, for the periodic check (stale entries are skipped).
    runner_checks: BTreeSet<(Timestamp, usize, JobId)>,
    /// Jobs a crashed host held: their runners are due one sweep period after it is back.
    crashed_jobs: Vec<(usize, JobId)>,
    report: Report,
    trace: Option<VecDeque<String>>,
    trace_all: bool,
    busy_vm_ms: u64,
}

impl World {
    /// A world for `scenario`, seeded with `seed`.
    pub fn new(scenario: Scenario, seed: u64, options: Options) -> Self {
        let settings = HandlerSettings {
            max_vms: scenario.max_vms,
            idle_poll: Duration::from_secs(30),
            lease: Duration::from_secs(120),
            defect: options.defect,
            ..HandlerSettings::default()
        };
        let mut w = Self {
            settings,
            dice: Dice::new(seed),
            now: START,
            seq: 0,
            events: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            store_answers: Vec::new(),
            swept: BTreeSet::new(),
            crash_orphans: BTreeSet::new(),
            arrivals: VecDeque::new(),
            hosts: Vec::new(),
            host_index: HashMap::new(),
            queue: MemoryQueue::new(QueueSettings::default()),
            rate_limits: Vec::new(),
            seed,
            receiver: Receiver::new(ReceiverSettings::new(Secret::new("sim"))),
            requests: 0,
            github: GitHub::default(),
            store_down: false,
            healed: false,
            runner_deadlines: BTreeMap::new(),
            runner_checks: BTreeSet::new(),
            crashed_jobs: Vec::new(),
            report: Report::default(),
            trace: options.trace.then(VecDeque::new),
            trace_all: options.trace_all,
            busy_vm_ms: 0,
            scenario,
        };
        if let Some(last) = w
            .scenario
            .arrivals
            .as_ref()
            .and_then(|a| a.iter().map(|j| j.at).max())
        {
            // A given list sets the window: healing starts only after its last arrival.
            w.scenario.arrival_window = w.scenario.arrival_window.max(last);
        }
        w.populate();
        w
    }

    fn populate(&mut self) {
        let s = self.scenario.clone();
        let names = template_names(&s);
        for i in 0..s.hosts {
            let mut anka = Anka {
                disk_total: s.disk_gb * GIB,
                ..Anka::default()
            };
            // Some hosts start with a template already local.
            if self.dice.chance(0.5) {
                let t = self.dice.between(0, (names.len() as u64).saturating_sub(1));
                if let Some(name) = usize::try_from(t).ok().and_then(|t| names.get(t)) {
                    anka.templates.insert(
                        name.clone(),
                        (Some("v1".into()), s.template_gb * GIB, START),
                    );
                }
            }
            let id = HostId(format!("mac{i}"));
            self.host_index.insert(id.0.clone(), i);
            self.hosts.push(Host {
                id,
                handler: None,
                epoch: 0,
                anka,
                timer_at: None,
                up_since: START,
                idle: false,
            });
            self.boot(i);
        }
        if let Some(given) = &s.arrivals {
            let mut given: Vec<&Arrival> = given.iter().collect();
            // Stable: jobs queued at the same instant keep their order (and their ids).
            given.sort_by_key(|a| a.at);
            for (n, a) in given.into_iter().enumerate() {
                let id = JobId(1000 + n as u64);
                let tpl = TemplateId(a.template.clone());
                self.add_job(id, START + a.at, &tpl, a.duration);
            }
        } else {
            let mut t = START;
            let mean = s.arrival_window / u32::try_from(s.jobs.max(1)).unwrap_or(1);
            for n in 0..s.jobs {
                t = t + self.dice.exp(mean);
                let id = JobId(1000 + n as u64);
                let tpl = self.dice.between(0, s.templates as u64 - 1);
                let run_for = self.dice.secs(s.job_secs.0, s.job_secs.1);
                self.add_job(id, t, &template(tpl), run_for);
            }
        }
        if let Some((t, id)) = self.arrivals.pop_front() {
            self.at(t, Event::Arrive(id));
        }
        let end = START + s.arrival_window;
        for _ in 0..s.faults.host_crashes {
            let h = self.dice.between(0, s.hosts as u64 - 1) as usize;
            let at = START + self.dice.secs(0.0, s.arrival_window.as_secs_f64());
            self.at(at, Event::Crash(h));
            let back = at + self.dice.secs(30.0, 900.0);
            self.at(back, Event::Restart(h));
        }
        // Rate-limit windows from their own dice, so the rest of a seed's world is unchanged.
        let mut rl = Dice::new(self.seed ^ 0x7a7e_1141);
        for _ in 0..s.faults.rate_limits {
            let from = START + rl.secs(0.0, s.arrival_window.as_secs_f64());
            let until = from + rl.secs(60.0, 1200.0);
            self.rate_limits.push((from, until));
        }
        for _ in 0..s.faults.store_outages {
            let at = START + self.dice.secs(0.0, s.arrival_window.as_secs_f64());
            self.at(at, Event::StoreDown(true));
            let back = at + self.dice.secs(5.0, 300.0);
            self.at(back, Event::StoreDown(false));
        }
        self.at(START + 15 * SEC, Event::Reap);
        self.at(end + Duration::from_secs(3600), Event::Heal);
    }

    /// GitHub will queue job `id` at `t`.
    fn add_job(&mut self, id: JobId, t: Timestamp, tpl: &TemplateId, run_for: Duration) {
        self.github.jobs.insert(
            id,
            GhJob {
                labels: vec![
                    "self-hosted".into(),
                    format!("anka-template:{tpl}"),
                    "anka-template-tag:v1".into(),
                ],
                status: GithubJobStatus::Queued,
                queued_at: t,
                started_at: None,
                finished_at: None,
                run_for,
                executions: 0,
                ran_on: None,
            },
        );
        self.arrivals.push_back((t, id));
    }

    fn boot(&mut self, i: usize) {
        let host = &mut self.hosts[i];
        host.epoch += 1;
        host.handler = Some(HostHandler::new(
            host.id.clone(),
            self.settings.clone(),
            self.now,
        ));
        host.timer_at = None;
        host.up_since = self.now;
        host.idle = false;
        // A host that was down could not sweep: its runners are due a full period from now.
        let due = self.runner_due();
        let mut crashed = std::mem::take(&mut self.crashed_jobs);
        crashed.retain(|&(h, job)| {
            if h == i {
                self.set_runner_deadline(h, job, due);
            }
            h != i
        });
        self.crashed_jobs = crashed;
        for (&(h, job), deadline) in self.runner_deadlines.iter_mut() {
            if h == i && *deadline < due {
                *deadline = due;
                self.runner_checks.insert((due, h, job));
            }
        }
        self.drain(i);
    }

    /// When a runner whose job ends now must be gone: one sweep period, plus slack for the
    /// sweep's own calls and its retries after GitHub failures, plus the rate-limit windows in
    /// between (nothing reaches GitHub while one lasts).
    fn runner_due(&self) -> Timestamp {
        let mut due = self.now + self.settings.sweep_interval + RUNNER_SLACK;
        for &(from, until) in &self.rate_limits {
            if until > self.now && from < due {
                due = due + until.saturating_since(from.max(self.now));
            }
        }
        due
    }

    fn set_runner_deadline(&mut self, h: usize, job: JobId, due: Timestamp) {
        self.runner_deadlines.insert((h, job), due);
        self.runner_checks.insert((due, h, job));
    }

    /// No idle runner of ours outlives its job's lifecycle by more than a sweep period (plus
    /// slack). A busy runner runs some job and GitHub removes it when that job ends, so it is
    /// looked at again later. Checked at every reaper tick, over the deadlines that are due.
    fn check_runners(&mut self) -> Result<(), Violation> {
        while let Some(&(due, h, job)) = self.runner_checks.first() {
            if due > self.now {
                break;
            }
            self.runner_checks.pop_first();
            if self.runner_deadlines.get(&(h, job)) != Some(&due) {
                continue;
            }
            let prefix = format!("{}{}-{}-", VmName::PREFIX, self.hosts[h].id.0, job.0);
            let mut busy = false;
            for (name, (_, running)) in self
                .github
                .runners
                .range(prefix.clone()..)
                .take_while(|(name, _)| name.starts_with(&prefix))
            {
                if running.is_some() {
                    busy = true;
                } else {
                    return Err(self.violation(format!(
                        "runner {name} of mac{h} still registered {}s after {job} ended there",
                        (self.settings.sweep_interval + RUNNER_SLACK).as_secs()
                    )));
                }
            }
            if busy {
                let again = self.now + Duration::from_secs(60);
                self.set_runner_deadline(h, job, again);
            } else {
                self.runner_deadlines.remove(&(h, job));
            }
        }
        Ok(())
    }

    fn at(&mut self, t: Timestamp, e: Event) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(e);
                slot
            }
            None => {
                self.slots.push(Some(e));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.events.push(Scheduled {
            at: t,
            seq: self.seq,
            slot,
        });
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            let t = self.now.saturating_since(START).as_secs_f64();
            trace.push_back(format!("{t:>11.3}s {}", line()));
            if !self.trace_all && trace.len() > TRACE_TAIL {
                trace.pop_front();
            }
        }
    }

    /// The trace kept so far (the tail, unless [`World::trace_everything`]).
    pub fn trace(&self) -> Vec<String> {
        self.trace.iter().flatten().cloned().collect()
    }

    fn violation(&self, what: String) -> Violation {
        Violation {
            at: format!("{:.3}s", self.now.saturating_since(START).as_secs_f64()),
            what,
        }
    }

    /// Runs to the end (or the first violation) and reports.
    pub fn run(mut self) -> (Report, Vec<String>) {
        let limit = START + self.scenario.arrival_window + Duration::from_secs(48 * 3600);
        let outcome = self.run_until(limit);
        if let Err(v) = outcome.and_then(|()| self.final_checks()) {
            self.report.violation = Some(v);
        }
        self.report.simulated = self.now.saturating_since(START);
        let capacity = (self.scenario.hosts * self.scenario.max_vms) as f64
            * self.report.simulated.as_millis().max(1) as f64;
        self.report.utilisation = self.busy_vm_ms as f64 / capacity;
        let trace = self.trace();
        (self.report, trace)
    }

    fn run_until(&mut self, limit: Timestamp) -> Result<(), Violation> {
        let mut same_instant = 0u32;
        while let Some(next) = self.events.peek() {
            same_instant = if next.at <= self.now {
                same_instant + 1
            } else {
                0
            };
            if same_instant > 200_000 {
                // Time must move: a machine that keeps waking at one instant is a livelock.
                return Err(self.violation("livelock: events keep firing at one instant".into()));
            }
            if next.at > limit {
                break;
            }
            if self.healed
                && matches!(self.slots[next.slot as usize], Some(Event::Reap))
                && self.settled()
            {
                break;
            }
            let Some(Scheduled { at, slot, .. }) = self.events.pop() else {
                break;
            };
            self.free.push(slot);
            let Some(event) = self.slots[slot as usize].take() else {
                continue;
            };
            self.now = self.now.max(at);
            self.handle(event)?;
        }
        Ok(())
    }

    /// Everything is over: GitHub has no job waiting except dead-lettered ones, no lease is
    /// held and no VM exists.
    fn settled(&self) -> bool {
        let listing = self.queue.list(self.now);
        let dead: BTreeSet<JobId> = listing.dead.iter().map(|j| j.id).collect();
        listing.queued.is_empty()
            && listing.claimed.is_empty()
            && self.github.jobs.iter().all(|(id, j)| {
                matches!(j.status, GithubJobStatus::Completed { .. }) || dead.contains(id)
            })
            && self.hosts.iter().all(|h| h.anka.vms.is_empty())
            && self.github.runners.is_empty()
    }

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Arrive(job) => {
                // Arrivals are scheduled one at a time to keep the event heap small.
                if let Some((t, id)) = self.arrivals.pop_front() {
                    self.at(t, Event::Arrive(id));
                }
                self.github.waiting.insert(job);
                self.log(|| format!("github queues {job}"));
                self.webhook(job, GithubJobStatus::Queued);
            }
            Event::Webhook(job, status) => self.deliver(job, status),
            Event::Result(h, epoch, id, result) => {
                if self.hosts[h].epoch == epoch
                    && let Some(handler) = &mut self.hosts[h].handler
                {
                    handler.handle_input(self.now, Input::Result { id, result });
                    self.drain(h);
                }
            }
            Event::Timer(h, epoch) => {
                let host = &mut self.hosts[h];
                if host.epoch == epoch
                    && host.timer_at.is_some_and(|t| t <= self.now)
                    && let Some(handler) = &mut host.handler
                {
                    host.timer_at = None;
                    handler.handle_timeout(self.now);
                    self.drain(h);
                }
            }
            Event::RunnerOnline(h, vm) => self.runner_online(h, vm),
            Event::JobEnds(job, runner) => self.job_ends(job, &runner),
            Event::VmDies(h, vm) => {
                if let Some(v) = self.hosts[h].anka.vms.get_mut(&vm) {
                    v.running = false;
                    self.log(|| format!("host mac{h} VM {vm} dies"));
                }
            }
            Event::Crash(h) => {
                if !self.healed && self.hosts[h].handler.is_some() {
                    self.log(|| format!("host mac{h} crashes"));
                    let held: Vec<JobId> = self.hosts[h]
                        .handler
                        .as_ref()
                        .map(|handler| handler.jobs().collect())
                        .unwrap_or_default();
                    self.crashed_jobs
                        .extend(held.into_iter().map(|job| (h, job)));
                    let left = self.hosts[h].anka.vms.keys().cloned();
                    self.crash_orphans.extend(left);
                    self.hosts[h].handler = None;
                    self.hosts[h].epoch += 1;
                    // A crash kills the pull in progress.
                    self.hosts[h].anka.pulling_until = None;
                }
            }
            Event::Restart(h) => {
                if self.hosts[h].handler.is_none() {
                    self.log(|| format!("host mac{h} restarts"));
                    self.boot(h);
                }
            }
            Event::StoreDown(down) => {
                if !self.healed || !down {
                    self.store_down = down;
                    self.log(|| format!("store {}", if down { "down" } else { "up" }));
                }
            }
            Event::Reap => {
                self.check_runners()?;
                if !self.store_down {
                    for r in self.queue.reap_expired(self.now) {
                        self.log(|| {
                            format!("reaper: {} from {} -> {:?}", r.job, r.host, r.outcome)
                        });
                    }
                }
                self.at(self.now + 15 * SEC, Event::Reap);
            }
            Event::Heal => {
                self.log(|| "faults stop; every host up".into());
                self.healed = true;
                self.store_down = false;
                self.scenario.faults = crate::scenario::Faults::none();
                for h in 0..self.hosts.len() {
                    if self.hosts[h].handler.is_none() {
                        self.boot(h);
                    }
                }
            }
        }
        self.check_running()
    }

    /// GitHub sends a webhook: maybe lost (redelivered later), duplicated, delayed.
    fn webhook(&mut self, job: JobId, status: GithubJobStatus) {
        let f = self.scenario.faults.clone();
        let jitter = self.dice.secs(0.0, f.webhook_jitter.as_secs_f64());
        let mut at = self.now + Duration::from_millis(50) + jitter;
        if self.dice.chance(f.webhook_loss) {
            // The delivery failed; the receiver's redelivery pass finds it within minutes.
            at = at + self.dice.secs(60.0, 600.0);
        }
        self.at(at, Event::Webhook(job, status.clone()));
        if self.dice.chance(f.webhook_dup) {
            let again = at + self.dice.secs(0.0, 60.0);
            self.at(again, Event::Webhook(job, status));
        }
    }

    /// The receiver machine takes the delivery (the production `Receiver`: duplicate GUIDs,
    /// the store operation, 2xx only once stored, 503 when the store is down); the host holding
    /// the job, and the host whose runner runs it, hear the news it stored.
    fn deliver(&mut self, job: JobId, status: GithubJobStatus) {
        let delivery = match &status {
            GithubJobStatus::Queued => {
                let Some(gh) = self.github.jobs.get(&job) else {
                    return;
                };
                Delivery::Queued(NewJob {
                    id: job,
                    run_id: job.0 + 500_000,
                    owner: "acme".into(),
                    repo: "app".into(),
                    labels: gh.labels.clone(),
                    payload: "{}".into(),
                })
            }
            _ => Delivery::Status {
                job,
                status: status.clone(),
            },
        };
        // Read before the store records the news: a completed queued job leaves the store.
        let holder = self
            .queue
            .get(job)
            .and_then(|r| r.lease())
            .and_then(|l| self.host_index.get(l.host.0.as_str()).copied());
        // No delivery GUID: the receiver's memory of GUIDs only spares the store a round trip,
        // and the store's idempotence (what the invariants check) answers every duplicate.
        self.requests += 1;
        self.receiver
            .handle_delivery(RequestId(self.requests), String::new(), delivery);
        let mut answer = 0;
        let mut news = None;
        while let Some(effect) = self.receiver.poll_effect() {
            match effect {
                ReceiverEffect::Store { id, op, .. } => {
                    let result = if self.store_down {
                        Err("store down".to_owned())
                    } else {
                        match apply(&mut self.queue, self.now, op) {
                            Ok(reply) => Ok(reply),
                            Err(never) => match never {},
                        }
                    };
                    self.receiver.handle_store_result(self.now, id, result);
                }
                ReceiverEffect::Respond { response, .. } => answer = response.status,
                ReceiverEffect::Notice(ReceiverNotice::Enqueued { .. }) => news = Some(None),
                ReceiverEffect::Notice(ReceiverNotice::JobNews { status, .. }) => {
                    news = Some(Some(status));
                }
                ReceiverEffect::Notice(_) => {}
            }
        }
        if answer == 503 {
            // GitHub shows the delivery failed; the receiver's recovery redelivers it.
            let at = self.now + self.dice.secs(30.0, 300.0);
            self.at(at, Event::Webhook(job, status));
            return;
        }
        self.log(|| format!("webhook {job} {status:?} -> {answer}"));
        match news {
            Some(None) => self.wake_one(),
            Some(Some(status)) => self.tell_hosts(job, holder, status),
            None => {}
        }
    }

    /// The host that claimed the job hears of it, and so does the host whose runner runs it
    /// (they differ when GitHub gave a runner another job).
    fn tell_hosts(&mut self, job: JobId, holder: Option<usize>, status: GithubJobStatus) {
        let runner = match &status {
            GithubJobStatus::InProgress { runner } => runner.as_deref(),
            _ => self.github.jobs.get(&job).and_then(|j| j.ran_on.as_deref()),
        };
        let runner_host = runner.and_then(|r| self.host_of(r));
        let targets = match (holder, runner_host) {
            (Some(a), Some(b)) if a == b => [Some(a), None],
            (a, b) => [a, b],
        };
        for h in targets.into_iter().flatten() {
            if let Some(handler) = &mut self.hosts[h].handler {
                handler.handle_input(
                    self.now,
                    Input::JobStatus {
                        job,
                        status: status.clone(),
                    },
                );
                self.drain(h);
            }
        }
    }

    fn wake_one(&mut self) {
        // Runs for every arrival: count and roll as `Dice::pick` would, without a list.
        let is_idle = |h: &Host| h.idle && h.handler.is_some();
        let idle = self.hosts.iter().filter(|h| is_idle(h)).count() as u64;
        if idle > 0 {
            let nth = self.dice.between(0, idle - 1) as usize;
            let Some(h) = (0..self.hosts.len())
                .filter(|&h| is_idle(&self.hosts[h]))
                .nth(nth)
            else {
                return;
            };
            let host = &mut self.hosts[h];
            host.idle = false;
            if let Some(handler) = &mut host.handler {
                handler.handle_input(self.now, Input::QueueNotEmpty);
            }
            self.drain(h);
        }
    }

    /// Executes every effect host `h` has decided, then re-arms its timer.
    fn drain(&mut self, h: usize) {
        for round in 0.. {
            if round == 10_000 {
                // A machine that keeps answering itself at one instant is a livelock.
                let v = self.violation(format!("mac{h} loops on store operations at one instant"));
                self.report.violation.get_or_insert(v);
                self.store_answers.clear();
                break;
            }
            self.execute_effects(h);
            // Store answers (sub-millisecond on a LAN) go straight back, so the handler never
            // arms a timer for them: half the events of a fleet-day otherwise.
            if self.store_answers.is_empty() {
                break;
            }
            // Taken and given back empty: the buffer keeps its capacity across rounds.
            let mut answers = std::mem::take(&mut self.store_answers);
            if let Some(handler) = self.hosts[h].handler.as_mut() {
                for (id, result) in answers.drain(..) {
                    handler.handle_input(self.now, Input::Result { id, result });
                }
            }
            answers.clear();
            self.store_answers = answers;
        }
        let host = &mut self.hosts[h];
        if let Some((t, _)) = host.handler.as_ref().and_then(HostHandler::poll_timeout)
            && host.timer_at.is_none_or(|old| t < old || old <= self.now)
        {
            host.timer_at = Some(t);
            let epoch = host.epoch;
            self.at(t, Event::Timer(h, epoch));
        }
    }

    /// Executes the effects host `h` has decided so far.
    fn execute_effects(&mut self, h: usize) {
        while let Some(effect) = self.hosts[h]
            .handler
            .as_mut()
            .and_then(HostHandler::poll_effect)
        {
            self.report.effects += 1;
            self.log(|| format!("mac{h} -> {effect}"));
            if let Err(v) = self.observe(h, &effect) {
                self.report.violation.get_or_insert(v);
            }
            let epoch = self.hosts[h].epoch;
            let (id, (after, result)) = match effect {
                Effect::Store { id, cmd, .. } => {
                    let result = self.store(&cmd, h);
                    self.store_answers.push((id, result));
                    continue;
                }
                Effect::Vm { id, cmd, timeout } => (id, self.anka(h, cmd, timeout)),
                Effect::Forge { id, cmd, .. } => (id, self.forge(h, cmd)),
                Effect::Notice(_) => continue,
            };
            self.at(self.now + after, Event::Result(h, epoch, id, result));
        }
    }

    /// Invariants that concern one effect or notice.
    fn observe(&mut self, h: usize, effect: &Effect) -> Result<(), Violation> {
        if let Effect::Notice(Notice::StepFailed {
            step: "disk_buffer",
            ..
        }) = effect
        {
            self.report.space_refusals += 1;
        }
        if let Effect::Notice(Notice::OrphanVm { vm }) = effect {
            self.swept.insert(vm.clone());
        }
        if let Effect::Notice(Notice::JobClaimed { job, .. }) = effect {
            // A live lifecycle holds the job's runners again.
            self.runner_deadlines.remove(&(h, *job));
        }
        if let Effect::Notice(Notice::JobEnded { job, .. }) = effect {
            let due = self.runner_due();
            self.set_runner_deadline(h, *job, due);
        }
        if let Effect::Notice(Notice::JobEnded { job, end }) = effect {
            // When a lifecycle ends, every VM it made is gone.
            let left: Vec<&VmName> = self.hosts[h]
                .anka
                .vms
                .keys()
                .filter(|vm| vm.owner().is_some_and(|(_, j)| j == *job))
                .filter(|vm| !self.crash_orphans.contains(*vm))
                .collect();
            if !left.is_empty() {
                return Err(self.violation(format!(
                    "mac{h}: {job} ended ({end}) but its VM {left:?} still exists"
                )));
            }
        }
        Ok(())
    }

    fn store(&mut self, cmd: &StoreCmd, h: usize) -> EffectResult {
        if self.store_down {
            let f = Failure::new(FailureClass::Transient, "store unreachable");
            return EffectResult::Failed(f);
        }
        let result = self.queue.execute(self.now, cmd);
        if let (StoreCmd::Claim { .. }, EffectResult::Claimed(None)) = (cmd, &result) {
            self.hosts[h].idle = true;
        }
        result
    }

    fn anka(&mut self, h: usize, cmd: VmCmd, timeout: Duration) -> (Duration, EffectResult) {
        let f = self.scenario.faults.clone();
        let fail = |class, msg: &str| EffectResult::Failed(Failure::new(class, msg));
        let now = self.now;
        let quick = Duration::from_millis(300);
        match cmd {
            VmCmd::Inventory => {
                let a = &self.hosts[h].anka;
                let r = EffectResult::Inventory {
                    templates: a.inventory(),
                    disk: a.disk(),
                    vms: a.vms.keys().cloned().collect(),
                };
                (quick, r)
            }
            VmCmd::CheckDownloadSize { spec } => {
                let a = &self.hosts[h].anka;
                let have = a
                    .templates
                    .get(&spec.template)
                    .is_some_and(|t| t.0 == spec.tag);
                let size = if have {
                    0
                } else {
                    self.scenario.template_gb * GIB
                };
                (
                    SEC,
                    EffectResult::DownloadSize {
                        download_bytes: size,
                        disk: a.disk(),
                    },
                )
            }
            VmCmd::DeleteTemplate { template } => {
                let in_use = self.hosts[h]
                    .anka
                    .vms
                    .values()
                    .any(|v| v.template == template);
                if in_use {
                    return (
                        quick,
                        fail(FailureClass::Permanent, "template in use by a VM"),
                    );
                }
                if self.hosts[h].anka.templates.remove(&template).is_some() {
                    self.report.evictions += 1;
                }
                (SEC, EffectResult::Done)
            }
            VmCmd::PullTemplate { spec } => {
                if self.hosts[h].anka.pulling_until.is_some_and(|t| t > now) {
                    let v = self.violation(format!("mac{h}: two pulls at once"));
                    self.report.violation.get_or_insert(v);
                }
                self.report.pulls += 1;
                let took = self
                    .dice
                    .secs(self.scenario.pull_secs.0, self.scenario.pull_secs.1);
                let took = took.min(timeout);
                self.hosts[h].anka.pulling_until = Some(now + took);
                let size = self.scenario.template_gb * GIB;
                if self.dice.chance(f.pull_fail) || took >= timeout {
                    return (took, fail(FailureClass::Transient, "registry error"));
                }
                let a = &mut self.hosts[h].anka;
                let old = a.templates.get(&spec.template).map_or(0, |t| t.1);
                if a.free() + old < size {
                    self.report.space_refusals += 1;
                    return (
                        took,
                        fail(FailureClass::DiskFull, "no space left on device"),
                    );
                }
                a.templates
                    .insert(spec.template.clone(), (spec.tag.clone(), size, now + took));
                (
                    took,
                    EffectResult::Pulled {
                        tag: spec.tag,
                        size_bytes: size,
                    },
                )
            }
            VmCmd::Clone { vm, spec } => {
                self.report.vms += 1;
                let a = &mut self.hosts[h].anka;
                if a.templates
                    .get(&spec.template)
                    .is_none_or(|t| t.0 != spec.tag)
                {
                    return (SEC, fail(FailureClass::NotFound, "template not found"));
                }
                if self.dice.chance(f.clone_fail) {
                    // A failed clone may still leave a half-made VM behind.
                    if self.dice.chance(0.5) {
                        self.hosts[h].anka.vms.insert(
                            vm,
                            Vm {
                                running: false,
                                template: spec.template,
                            },
                        );
                        self.check_slots(h);
                    }
                    return (5 * SEC, fail(FailureClass::Transient, "clone failed"));
                }
                self.hosts[h].anka.vms.insert(
                    vm,
                    Vm {
                        running: false,
                        template: spec.template,
                    },
                );
                self.check_slots(h);
                (5 * SEC, EffectResult::Done)
            }
            VmCmd::Start { vm } => {
                let a = &mut self.hosts[h].anka;
                if !a.vms.contains_key(&vm) {
                    return (SEC, fail(FailureClass::NotFound, "no such VM"));
                }
                if a.running() >= 2 {
                    return (
                        SEC,
                        fail(FailureClass::Permanent, "license limit: 2 running VMs"),
                    );
                }
                if self.dice.chance(f.start_fail) {
                    return (20 * SEC, fail(FailureClass::Transient, "VM failed to boot"));
                }
                if let Some(v) = self.hosts[h].anka.vms.get_mut(&vm) {
                    v.running = true;
                }
                (20 * SEC, EffectResult::Done)
            }
            VmCmd::StartRunner { vm, .. } => {
                if !self.hosts[h].anka.vms.get(&vm).is_some_and(|v| v.running) {
                    return (SEC, fail(FailureClass::NotFound, "VM not running"));
                }
                if !self.dice.chance(f.runner_dud) {
                    let boot = now + self.dice.secs(10.0, 40.0);
                    self.at(boot, Event::RunnerOnline(h, vm));
                }
                (10 * SEC, EffectResult::Done)
            }
            VmCmd::InspectVm { vm } => {
                let state = match self.hosts[h].anka.vms.get(&vm) {
                    Some(v) if v.running => VmState::Running,
                    Some(_) => VmState::Stopped,
                    None => VmState::Missing,
                };
                (quick, EffectResult::VmState(state))
            }
            VmCmd::Delete { vm } => {
                let alive = self.hosts[h].anka.vms.get(&vm).is_some_and(|v| v.running);
                self.hosts[h].anka.vms.remove(&vm);
                let swept = self.swept.remove(&vm);
                self.crash_orphans.remove(&vm);
                if let Some(job) = self.runner_gone(&vm)
                    && alive
                    && !swept
                {
                    // A lifecycle deleted the VM a job was running on (the sweep after a crash
                    // may: nobody holds that job any more).
                    let v = self.violation(format!("mac{h} deleted {vm} while it ran {job}"));
                    self.report.violation.get_or_insert(v);
                }
                (3 * SEC, EffectResult::Done)
            }
        }
    }

    fn forge(&mut self, _h: usize, cmd: ForgeCmd) -> (Duration, EffectResult) {
        let mut latency = Duration::from_millis(150);
        // Inside a rate-limit window the client sends nothing until it ends, and gives up on
        // a call it held for its whole command timeout.
        if let Some(&(_, until)) = self
            .rate_limits
            .iter()
            .find(|(from, until)| *from <= self.now && self.now < *until)
        {
            let wait = until.saturating_since(self.now);
            if wait > CLIENT_COMMAND_TIMEOUT {
                let f = Failure::new(
                    FailureClass::TimedOut,
                    "rate limited past the command timeout",
                );
                return (CLIENT_COMMAND_TIMEOUT, EffectResult::Failed(f));
            }
            latency += wait;
        }
        // Every call may fail, runner removals too: a runner whose removal kept failing stays
        // registered, and the orphan sweep has to find it.
        if self.dice.chance(self.scenario.faults.api_fail) {
            let f = Failure::new(FailureClass::Transient, "502 Bad Gateway");
            return (latency, EffectResult::Failed(f));
        }
        match cmd {
            ForgeCmd::CreateRunnerConfig { job, runner, .. } => {
                self.github.runners.insert(runner.0, (job.id, None));
                let creds = RunnerCredentials::Jit(Secret::new("jit"));
                (latency, EffectResult::RunnerConfig(creds))
            }
            ForgeCmd::GetJob { job } => match self.github.jobs.get(&job.id) {
                Some(j) => (latency, EffectResult::JobStatus(j.status.clone())),
                None => (
                    latency,
                    EffectResult::Failed(Failure::new(FailureClass::NotFound, "404")),
                ),
            },
            ForgeCmd::RemoveRunner { runner } => {
                if self
                    .github
                    .runners
                    .get(&runner.0)
                    .is_some_and(|r| r.1.is_some())
                {
                    let f = Failure::new(FailureClass::Busy, "runner is running a job");
                    return (latency, EffectResult::Failed(f));
                }
                self.github.runners.remove(&runner.0);
                (latency, EffectResult::Done)
            }
            ForgeCmd::CancelWorkflowRun { job } => {
                self.cancel(job.id);
                (latency, EffectResult::Done)
            }
            ForgeCmd::ListRunners => {
                let runners = self
                    .github
                    .runners
                    .iter()
                    .enumerate()
                    .map(|(i, (name, (_, running)))| RunnerInfo {
                        id: i as u64 + 1,
                        name: name.clone(),
                        // The model calls a runner online while it runs a job; the handler
                        // does not read it, and every sweep lists every runner of the fleet.
                        online: running.is_some(),
                        busy: running.is_some(),
                    })
                    .collect();
                (latency, EffectResult::Runners(runners))
            }
        }
    }

    /// A runner came online: GitHub hands it its job if that job still waits.
    fn runner_online(&mut self, h: usize, vm: VmName) {
        if !self.hosts[h].anka.vms.get(&vm).is_some_and(|v| v.running) {
            return;
        }
        let Some((made_for, None)) = self.github.runners.get(&vm.0).cloned() else {
            return;
        };
        // GitHub hands a runner any queued job its labels match: usually the one it was made
        // for, sometimes another (job stealing), and another whenever its own no longer waits.
        let own_waits = self
            .github
            .jobs
            .get(&made_for)
            .is_some_and(|j| j.status == GithubJobStatus::Queued);
        let steal = own_waits && self.dice.chance(self.scenario.faults.steal);
        let for_job = if own_waits && !steal {
            made_for
        } else {
            let labels = self.github.jobs.get(&made_for).map(|j| j.labels.clone());
            let other = self
                .github
                .waiting
                .iter()
                .filter(|id| **id != made_for)
                .find(|id| self.github.jobs.get(id).map(|j| &j.labels) == labels.as_ref())
                .copied();
            match other {
                Some(o) => o,
                None if own_waits => made_for,
                None => return,
            }
        };
        let Some(job) = self.github.jobs.get_mut(&for_job) else {
            return;
        };
        job.status = GithubJobStatus::InProgress {
            runner: Some(vm.0.clone()),
        };
        job.started_at = Some(self.now);
        job.ran_on = Some(vm.0.clone());
        self.github.waiting.remove(&for_job);
        job.executions += 1;
        let run_for = job.run_for;
        let queued_at = job.queued_at;
        if job.executions > 1 {
            let v = self.violation(format!("{for_job} ran twice"));
            self.report.violation.get_or_insert(v);
        }
        self.report
            .queue_ms
            .push(self.now.saturating_since(queued_at).as_millis() as u64);
        self.report.starts.push(JobStart {
            queued: queued_at.saturating_since(START),
            started: self.now.saturating_since(START),
            runs: run_for,
        });
        self.busy_vm_ms += run_for.as_millis() as u64;
        self.github
            .runners
            .insert(vm.0.clone(), (made_for, Some(for_job)));
        self.log(|| format!("github: runner {vm} starts {for_job}"));
        let status = GithubJobStatus::InProgress {
            runner: Some(vm.0.clone()),
        };
        self.webhook(for_job, status);
        self.at(self.now + run_for, Event::JobEnds(for_job, vm.0.clone()));
        if self.dice.chance(self.scenario.faults.vm_death) {
            let at = self.now + self.dice.secs(1.0, run_for.as_secs_f64().max(1.0));
            self.at(at, Event::VmDies(h, vm));
        }
        if self.dice.chance(self.scenario.faults.cancel) {
            let at = self.now + self.dice.secs(1.0, 120.0);
            self.at(at, Event::JobEnds(for_job, "cancel".into()));
        }
    }

    fn job_ends(&mut self, job: JobId, runner: &str) {
        if runner == "cancel" {
            return self.cancel(job);
        }
        let Some(j) = self.github.jobs.get(&job) else {
            return;
        };
        if j.status
            != (GithubJobStatus::InProgress {
                runner: Some(runner.to_owned()),
            })
        {
            return;
        }
        // The runner finishes only if its VM still runs; otherwise runner_gone already failed it.
        let alive = self.vm_running(&VmName(runner.to_owned()));
        let conclusion = if alive { "success" } else { "failure" };
        self.finish(job, conclusion);
        self.github.runners.remove(runner);
    }

    /// Whether `vm` exists and runs. A VM lives only on the host its name encodes, so this
    /// looks at that host instead of every host.
    fn vm_running(&self, vm: &VmName) -> bool {
        let running = |h: &Host| h.anka.vms.get(vm).is_some_and(|v| v.running);
        match self.host_of(&vm.0) {
            Some(h) => running(&self.hosts[h]),
            None => self.hosts.iter().any(running),
        }
    }

    /// The host whose handler made the VM (or runner) `name`, found without allocating:
    /// webhooks, runner ends and runner listings ask for every job.
    fn host_of(&self, name: &str) -> Option<usize> {
        let (host, _) = VmName::owner_of(name)?;
        self.host_index.get(host).copied()
    }

    /// A VM with a runner was deleted: a job it ran fails (GitHub loses the runner). Returns
    /// that job.
    fn runner_gone(&mut self, vm: &VmName) -> Option<JobId> {
        // An idle runner stays registered (offline) until someone removes it: GitHub forgets
        // only an ephemeral runner whose job ends, and the orphan sweep must do the rest.
        let Some(&(_, Some(job))) = self.github.runners.get(&vm.0) else {
            return None;
        };
        self.github.runners.remove(&vm.0);
        let running = self.github.jobs.get(&job).is_some_and(|j| {
            j.status
                == GithubJobStatus::InProgress {
                    runner: Some(vm.0.clone()),
                }
        });
        if running {
            self.finish(job, "failure");
            return Some(job);
        }
        None
    }

    fn cancel(&mut self, job: JobId) {
        let done = self
            .github
            .jobs
            .get(&job)
            .is_none_or(|j| matches!(j.status, GithubJobStatus::Completed { .. }));
        if !done {
            self.finish(job, "cancelled");
        }
    }

    fn finish(&mut self, job: JobId, conclusion: &str) {
        self.github.waiting.remove(&job);
        let Some(j) = self.github.jobs.get_mut(&job) else {
            return;
        };
        // An ephemeral runner leaves GitHub when its job ends, however it ended. Only the
        // runner that started the job runs it (a second start is a violation that ends the run).
        if let Some(runner) = &j.ran_on
            && self
                .github
                .runners
                .get(runner)
                .is_some_and(|(_, running)| *running == Some(job))
        {
            self.github.runners.remove(runner);
        }
        j.status = GithubJobStatus::Completed {
            conclusion: Some(conclusion.to_owned()),
        };
        j.finished_at = Some(self.now);
        match conclusion {
            "cancelled" => self.report.cancelled += 1,
            _ => self.report.ran += 1,
        }
        self.log(|| format!("github: {job} completed ({conclusion})"));
        let status = GithubJobStatus::Completed {
            conclusion: Some(conclusion.to_owned()),
        };
        self.webhook(job, status);
    }

    /// Invariants checked after every event.
    fn check_running(&self) -> Result<(), Violation> {
        match &self.report.violation {
            Some(v) => Err(v.clone()),
            None => Ok(()),
        }
    }

    /// A host never has more VMs than slots (checked whenever a VM appears).
    fn check_slots(&mut self, h: usize) {
        let vms = &self.hosts[h].anka.vms;
        if vms.len() > self.scenario.max_vms {
            let what = format!(
                "mac{h} has {} VMs, more than {} slots: {:?}",
                vms.len(),
                self.scenario.max_vms,
                vms.keys().collect::<Vec<_>>()
            );
            let v = self.violation(what);
            self.report.violation.get_or_insert(v);
        }
    }

    /// Liveness and agreement once the run is over.
    fn final_checks(&mut self) -> Result<(), Violation> {
        let listing = self.queue.list(self.now);
        self.report.dead = listing.dead.len();
        let dead: BTreeSet<JobId> = listing.dead.iter().map(|j| j.id).collect();
        let lost: Vec<JobId> = self
            .github
            .jobs
            .iter()
            .filter(|(id, j)| {
                !matches!(j.status, GithubJobStatus::Completed { .. }) && !dead.contains(id)
            })
            .map(|(id, _)| *id)
            .collect();
        if !lost.is_empty() {
            return Err(self.violation(format!(
                "jobs neither finished nor dead-lettered at the end: {lost:?}"
            )));
        }
        if !listing.claimed.is_empty() {
            let held: Vec<JobId> = listing.claimed.iter().map(|j| j.id).collect();
            return Err(self.violation(format!("store still holds leases on {held:?}")));
        }
        for (i, h) in self.hosts.iter().enumerate() {
            if !h.anka.vms.is_empty() {
                let vms: Vec<&VmName> = h.anka.vms.keys().collect();
                return Err(self.violation(format!("mac{i} still has VMs {vms:?}")));
            }
        }
        if !self.github.runners.is_empty() {
            let names: Vec<&String> = self.github.runners.keys().collect();
            return Err(self.violation(format!("runners still registered: {names:?}")));
        }
        for r in self.queue.records() {
            if r.place != Place::Queued && !matches!(r.place, Place::Dead { .. }) {
                return Err(self.violation(format!("{} left in {}", r.id, r.place.name())));
            }
        }
        Ok(())
    }
}

/// The templates jobs may ask for: those of the given arrivals, or `tpl-0..` for a seeded run.
fn template_names(s: &Scenario) -> Vec<TemplateId> {
    match &s.arrivals {
        Some(given) => {
            let set: BTreeSet<&str> = given.iter().map(|a| a.template.as_str()).collect();
            set.into_iter().map(|t| TemplateId(t.to_owned())).collect()
        }
        None => (0..s.templates as u64).map(template).collect(),
    }
}

fn template(n: u64) -> TemplateId {
    TemplateId(format!("tpl-{n}"))
}
