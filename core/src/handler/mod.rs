//! The handler's state machine for one Mac host.
//!
//! [`HostHandler`] owns the host's VM slots, its one-pull-at-a-time lock, its view of local
//! templates, and one lifecycle per claimed job. It is driven like quinn-proto's `Connection`:
//!
//! 1. feed it with [`HostHandler::handle_input`] (effect results, job status news, stop/drain)
//!    and [`HostHandler::handle_timeout`] when the instant from [`HostHandler::poll_timeout`]
//!    has come;
//! 2. after each call, drain [`HostHandler::poll_effect`] until `None` and execute the effects;
//! 3. report each effect's result back with [`Input::Result`] and its id.
//!
//! Nothing here reads a clock or touches the OS; the same machine runs in both daemons and in
//! the simulator.

mod effect;
mod input;
mod job;
mod jobs;
mod outbox;
mod pull;
mod settings;
mod templates;

pub use effect::{
    Completion, Effect, ForgeCmd, HostStatus, Notice, Reason, RunnerCredentials, StoreCmd, VmCmd,
};
pub use input::{
    ClaimedJob, DiskSpace, EffectResult, Failure, FailureClass, GithubJobStatus, Input, JobRef,
    RunnerInfo, TemplateInfo, VmState,
};
pub use settings::{Defect, HandlerSettings, RunnerRegistration};
pub use templates::{CachedTemplate, SpacePlan, TemplateCache};

use crate::ids::{EffectId, HostId, JobId, TemplateId, VmName};
use crate::labels::ClaimFilter;
use crate::time::Timestamp;
use job::{Ctx, End, JobLifecycle};
use jobs::JobMap;
use outbox::{Outbox, Owner};
use pull::PullTask;
use std::collections::{BTreeMap, BTreeSet};

/// Why the machine wants to be woken, for logs ("why did we wake?").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// An effect's deadline: no result came in time.
    EffectDeadline(EffectId),
    /// Claim again after an empty queue.
    Claim,
    /// Retry the template inventory.
    Inventory,
    /// Retry a pull after a backoff.
    Pull,
    /// Something a job's lifecycle waits for (lease renewal, registration deadline, checks).
    Job(JobId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Running,
    Draining,
    Stopping,
    Stopped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claim {
    Idle,
    InFlight(EffectId),
    WaitUntil(Timestamp),
}

/// The orphan sweep between its steps. Runners go first: a VM of ours that no live job holds
/// is deleted once the runner list shows no runner of that name, or once GitHub confirms its
/// runner removed; a runner still running a job (GitHub answers busy) keeps its VM.
#[derive(Debug, Default)]
struct Sweep {
    /// Our VMs no live lifecycle held at the last inventory, until their delete is confirmed.
    /// They hold VM slots meanwhile, like the lifecycles' VMs.
    vms: BTreeSet<VmName>,
    /// Runner removals in flight, by effect id.
    runners: BTreeMap<EffectId, VmName>,
    /// VM deletes in flight, by effect id.
    deletes: BTreeMap<EffectId, VmName>,
    /// Sweeps in a row that could not finish (listing or removal failed); the next comes
    /// sooner, on the cleanup backoff, instead of a whole interval later.
    tries: u32,
    /// A runner of ours may be registered with no live job: set at start (a crashed process
    /// may have left runners), when a lifecycle leaves its runner behind, and when a sweep
    /// could not remove one. The next sweep then lists runners.
    runner_left: bool,
    /// When the runners were last listed. Listing every runner of the scope from every host at
    /// every sweep would spend the API rate limit on nothing; without a reason to, a host
    /// lists them only every [`RUNNER_LIST_EVERY`] sweep intervals, as a backstop.
    listed_at: Option<Timestamp>,
}

/// Sweep intervals between runner listings when no runner is known to be left behind.
const RUNNER_LIST_EVERY: u32 = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Inventory {
    /// Not loaded yet: the op in flight, or the time of the next try, and tries so far.
    Loading(Option<EffectId>, Timestamp, u32),
    /// Loaded; the next sweep is due at this time, or its op is in flight.
    Loaded(Option<EffectId>, Timestamp),
}

/// The state machine of one handler host. See the module docs for how to drive it.
#[derive(Debug)]
pub struct HostHandler {
    host: HostId,
    settings: HandlerSettings,
    now: Timestamp,
    mode: Mode,
    out: Outbox,
    cache: TemplateCache,
    inventory: Inventory,
    claim: Claim,
    /// `QueueNotEmpty` came while a claim was in flight: that claim may have read the queue
    /// before the job was stored, so an empty answer claims once more at once instead of
    /// waiting the idle poll (a wake-up is never lost to that race).
    woken_in_flight: bool,
    jobs: JobMap,
    pull: Option<PullTask>,
    status: Option<HostStatus>,
    sweep: Sweep,
}

impl HostHandler {
    /// Creates the machine; its first effect asks for the host's template inventory, and it
    /// claims nothing until that arrives.
    pub fn new(host: HostId, settings: HandlerSettings, now: Timestamp) -> Self {
        let mut me = Self {
            host,
            settings,
            now,
            mode: Mode::Running,
            out: Outbox::default(),
            cache: TemplateCache::default(),
            inventory: Inventory::Loading(None, now, 0),
            claim: Claim::Idle,
            woken_in_flight: false,
            jobs: JobMap::default(),
            pull: None,
            status: None,
            sweep: Sweep {
                runner_left: true,
                ..Sweep::default()
            },
        };
        me.pump();
        me
    }

    /// Feeds one input at `now`.
    pub fn handle_input(&mut self, now: Timestamp, input: Input) {
        self.now = self.now.max(now);
        match input {
            Input::Result { id, result } => match self.out.accept(id) {
                Some(owner) => self.dispatch(owner, id, result),
                None => self.out.notice(Notice::IgnoredResult { id }),
            },
            Input::JobStatus { job, status } => self.on_job_status(job, status),
            Input::QueueNotEmpty => match self.claim {
                Claim::WaitUntil(_) => self.claim = Claim::Idle,
                Claim::InFlight(_) => self.woken_in_flight = true,
                Claim::Idle => {}
            },
            Input::Drain => {
                if self.mode == Mode::Running {
                    self.mode = Mode::Draining;
                }
            }
            Input::Stop => {
                if matches!(self.mode, Mode::Running | Mode::Draining) {
                    self.mode = Mode::Stopping;
                    let (mut ctx, jobs, _) = self.split();
                    for lc in jobs.values_mut() {
                        lc.stop(&mut ctx);
                    }
                }
            }
        }
        self.pump();
    }

    /// Does what is due at `now`: effect deadlines, retries, lease renewals, checks.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
        for (id, owner) in self.out.expire(self.now) {
            let failure = Failure::new(FailureClass::TimedOut, "no result before the deadline");
            self.dispatch(owner, id, EffectResult::Failed(failure));
        }
        if let Claim::WaitUntil(t) = self.claim
            && t <= self.now
        {
            self.claim = Claim::Idle;
        }
        let (mut ctx, jobs, pull) = self.split();
        if let Some(task) = pull {
            task.on_timer(&mut ctx);
        }
        for lc in jobs.values_mut() {
            lc.on_timer(&mut ctx);
        }
        self.pump();
    }

    /// The next effect to execute, in the order decided.
    #[must_use]
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.out.pop()
    }

    /// The next instant [`HostHandler::handle_timeout`] must be called, and why.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<(Timestamp, TimerKind)> {
        if self.mode == Mode::Stopped {
            return None;
        }
        let mut best: Option<(Timestamp, TimerKind)> = None;
        let mut consider = |t: Timestamp, kind: TimerKind| {
            if best.is_none_or(|(b, _)| t < b) {
                best = Some((t, kind));
            }
        };
        if let Some((t, id)) = self.out.next_deadline() {
            consider(t, TimerKind::EffectDeadline(id));
        }
        if let Claim::WaitUntil(t) = self.claim {
            consider(t, TimerKind::Claim);
        }
        // No sweep while stopping (the lifecycles delete their own VMs), so no sweep timer.
        if let Inventory::Loading(None, t, _) | Inventory::Loaded(None, t) = self.inventory
            && self.mode != Mode::Stopping
        {
            consider(t, TimerKind::Inventory);
        }
        if let Some(t) = self.pull.as_ref().and_then(PullTask::next_wakeup) {
            consider(t, TimerKind::Pull);
        }
        for (id, lc) in self.jobs.iter() {
            if let Some(t) = lc.next_wakeup(&self.settings) {
                consider(t, TimerKind::Job(*id));
            }
        }
        best
    }

    /// Whether the machine waits for work: it would claim now if told the queue is not empty
    /// (its last claim found nothing and it is taking jobs). A runtime that can block on the
    /// store's wake signal (Redis' wake list) does so only while this holds, so it does not
    /// take wake-ups another host could use.
    #[must_use]
    pub fn wants_work(&self) -> bool {
        self.mode == Mode::Running && matches!(self.claim, Claim::WaitUntil(_))
    }

    /// Whether the machine has finished stopping or draining; the runtime may exit.
    pub fn is_stopped(&self) -> bool {
        self.mode == Mode::Stopped
    }

    /// Jobs this host holds right now, for status pages and tests.
    pub fn jobs(&self) -> impl Iterator<Item = JobId> + '_ {
        self.jobs.keys().copied()
    }

    /// The host's view of its templates.
    pub fn templates(&self) -> &TemplateCache {
        &self.cache
    }

    fn split(&mut self) -> (Ctx<'_>, &mut JobMap, &mut Option<PullTask>) {
        let ctx = Ctx {
            now: self.now,
            host: &self.host,
            settings: &self.settings,
            out: &mut self.out,
            cache: &mut self.cache,
            orphans: &self.sweep.vms,
            runner_left: &mut self.sweep.runner_left,
        };
        (ctx, &mut self.jobs, &mut self.pull)
    }

    fn dispatch(&mut self, owner: Owner, id: EffectId, result: EffectResult) {
        match owner {
            Owner::Inventory => self.on_inventory(result),
            // A failed give-back is left to the lease reaper.
            Owner::GiveBack => {}
            Owner::Sweep => self.on_orphan_deleted(id, result),
            Owner::RunnerList => self.on_runner_list(result),
            Owner::RunnerSweep => self.on_orphan_runner_removed(id, result),
            Owner::Claim => self.on_claimed(result),
            Owner::Pull => {
                let pinned = self.pinned();
                let (mut ctx, _, pull) = self.split();
                let outcome = match pull {
                    Some(task) => task.on_result(&mut ctx, id, result, &pinned),
                    None => None,
                };
                if let Some(outcome) = outcome {
                    self.finish_pull(outcome);
                }
            }
            Owner::Job(job) => {
                let (mut ctx, jobs, _) = self.split();
                match jobs.get_mut(&job) {
                    Some(lc) => lc.on_result(&mut ctx, id, result),
                    None => ctx.out.notice(Notice::IgnoredResult { id }),
                }
            }
        }
    }

    fn on_inventory(&mut self, result: EffectResult) {
        match result {
            EffectResult::Inventory {
                templates,
                disk,
                vms,
            } => {
                self.cache.load(&templates, disk);
                self.inventory = Inventory::Loaded(None, self.now + self.settings.sweep_interval);
                self.sweep(vms);
            }
            other if matches!(self.inventory, Inventory::Loaded(..)) => {
                // A failed periodic sweep: try again at the next one.
                self.out.notice(Notice::StepFailed {
                    job: None,
                    step: "sweep",
                    detail: format!("{other:?}"),
                });
                self.inventory = Inventory::Loaded(None, self.now + self.settings.sweep_interval);
            }
            other => {
                let tries = match self.inventory {
                    Inventory::Loading(_, _, n) => n + 1,
                    Inventory::Loaded(..) => 1,
                };
                let delay = self
                    .settings
                    .cleanup_retry
                    .delay_before(tries + 1)
                    .unwrap_or_default();
                self.out.notice(Notice::StepFailed {
                    job: None,
                    step: "inventory",
                    detail: format!("{other:?}"),
                });
                self.inventory = Inventory::Loading(None, self.now + delay, tries);
            }
        }
    }

    /// Routes job news: to the job's own lifecycle, and to a lifecycle whose runner GitHub gave
    /// that job instead of its own (JIT runners with the same labels can take each other's
    /// jobs), which must keep its VM until that job ends.
    fn on_job_status(&mut self, job: JobId, status: GithubJobStatus) {
        let runner = match &status {
            GithubJobStatus::InProgress { runner: Some(r) } => Some(r.clone()),
            _ => None,
        };
        let completed = matches!(status, GithubJobStatus::Completed { .. });
        let (mut ctx, jobs, _) = self.split();
        if let Some(lc) = jobs.get_mut(&job) {
            lc.on_status(&mut ctx, status);
        }
        if let Some(runner) = runner
            && let Some((_, lender)) = jobs
                .iter_mut()
                .find(|(id, lc)| **id != job && lc.runs_runner(&runner))
        {
            lender.runner_taken(&mut ctx, job);
        }
        if completed {
            for lc in jobs.values_mut() {
                if lc.lent_to() == Some(job) {
                    lc.lent_job_ended(&mut ctx);
                }
            }
        }
    }

    /// Starts the orphan sweep with the host's VM list: our VMs that no live lifecycle holds
    /// (left by a crash, a kill, or a lost result) are noted, and the scope's runners are
    /// listed; [`HostHandler::on_runner_list`] goes on. VMs of other hosts or not named by us
    /// are never touched; a VM being cloned is held by its lifecycle from the moment the clone
    /// is asked, so it is never swept.
    fn sweep(&mut self, vms: Vec<VmName>) {
        let held: BTreeSet<&VmName> = self.jobs.values().filter_map(JobLifecycle::vm).collect();
        self.sweep.vms = vms
            .into_iter()
            .filter(|vm| vm.owner().is_some_and(|(host, _)| host == self.host))
            .filter(|vm| !held.contains(vm))
            .collect();
        let backstop = self
            .settings
            .sweep_interval
            .saturating_mul(RUNNER_LIST_EVERY);
        let list = self.sweep.runner_left
            || !self.sweep.vms.is_empty()
            || self
                .sweep
                .listed_at
                .is_none_or(|t| t + backstop <= self.now);
        if !list {
            return;
        }
        self.sweep.runner_left = false;
        self.sweep.listed_at = Some(self.now);
        let _ = self.out.forge(
            Owner::RunnerList,
            self.now,
            self.settings.github_timeout,
            ForgeCmd::ListRunners,
        );
    }

    /// The runner list arrived: removes each runner of ours whose job has no live lifecycle
    /// here (runners of other hosts are left to their owners, runners not named by us are
    /// never touched), and deletes the orphan VMs that have no runner left to remove.
    fn on_runner_list(&mut self, result: EffectResult) {
        let runners = match result {
            EffectResult::Runners(runners) => runners,
            other => {
                self.out.notice(Notice::StepFailed {
                    job: None,
                    step: "sweep_runners",
                    detail: format!("{other:?}"),
                });
                self.sweep.runner_left = true;
                self.sweep_sooner();
                // Without the list, do what the sweep did before runners were listed: a VM
                // left behind must not hold its slot until GitHub answers.
                let orphans: Vec<VmName> = self.sweep.vms.iter().cloned().collect();
                for vm in orphans {
                    self.delete_orphan_vm(vm);
                }
                return;
            }
        };
        self.sweep.tries = 0;
        let skip = self.settings.defect == Some(Defect::KeepOrphanRunners);
        let mut removing = BTreeSet::new();
        // Most runners of the scope are other hosts': look at the name's host part first.
        let ours = |name: &str| {
            name.strip_prefix(VmName::PREFIX)
                .and_then(|rest| rest.strip_prefix(self.host.0.as_str()))
                .is_some_and(|rest| rest.starts_with('-'))
        };
        for info in runners {
            let Some((host, job)) = VmName::owner_of(&info.name).filter(|_| ours(&info.name))
            else {
                continue;
            };
            if host != self.host.0 {
                continue;
            }
            if self.jobs.contains_key(&job) {
                // Its job is live here. A runner of an earlier VM or claim of that job (not the
                // one the lifecycle holds) is an orphan once the job ends: look again then.
                let held = self
                    .jobs
                    .values()
                    .any(|lc| lc.may_have_runner() && lc.vm().is_some_and(|vm| vm.0 == info.name));
                self.sweep.runner_left |= !held;
                continue;
            }
            if skip {
                continue;
            }
            let runner = VmName(info.name);
            if !self.sweep.runners.values().any(|r| *r == runner) {
                self.out.notice(Notice::OrphanRunner {
                    runner: runner.clone(),
                });
                let cmd = ForgeCmd::RemoveRunner {
                    runner: runner.clone(),
                };
                let id = self.out.forge(
                    Owner::RunnerSweep,
                    self.now,
                    self.settings.github_timeout,
                    cmd,
                );
                self.sweep.runners.insert(id, runner.clone());
            }
            removing.insert(runner);
        }
        let free: Vec<VmName> = self
            .sweep
            .vms
            .iter()
            .filter(|vm| !removing.contains(*vm))
            .cloned()
            .collect();
        for vm in free {
            self.delete_orphan_vm(vm);
        }
    }

    /// A runner removal of the sweep answered: once the runner is gone, its VM (if it is one
    /// of the orphans) can go; a busy runner runs a job, so its VM stays for a later sweep.
    fn on_orphan_runner_removed(&mut self, id: EffectId, result: EffectResult) {
        let Some(runner) = self.sweep.runners.remove(&id) else {
            return;
        };
        match result {
            EffectResult::Done => self.delete_orphan_vm(runner),
            EffectResult::Failed(f) if f.class == FailureClass::NotFound => {
                self.delete_orphan_vm(runner)
            }
            other => {
                let busy =
                    matches!(&other, EffectResult::Failed(f) if f.class == FailureClass::Busy);
                self.out.notice(Notice::StepFailed {
                    job: None,
                    step: "sweep_remove_runner",
                    detail: format!("{runner}: {other:?}"),
                });
                self.sweep.runner_left = true;
                if busy {
                    // The orphan's runner still runs a job (its host died mid-job): look again
                    // as often as a lifecycle polls a job, so the VM goes soon after the job
                    // ends instead of holding a slot until the next periodic sweep.
                    self.sweep_at(self.now + self.settings.job_poll_interval);
                } else {
                    self.sweep_sooner();
                }
            }
        }
    }

    /// Deletes an orphan VM of the current sweep, unless a lifecycle took its name since the
    /// listing or its delete is already in flight.
    fn delete_orphan_vm(&mut self, vm: VmName) {
        let held = self.jobs.values().any(|lc| lc.vm() == Some(&vm));
        let deleting = self.sweep.deletes.values().any(|v| *v == vm);
        if !self.sweep.vms.contains(&vm) || held || deleting {
            return;
        }
        self.out.notice(Notice::OrphanVm { vm: vm.clone() });
        let cmd = VmCmd::Delete { vm: vm.clone() };
        let id = self
            .out
            .vm(Owner::Sweep, self.now, self.settings.delete_timeout, cmd);
        self.sweep.deletes.insert(id, vm);
    }

    /// An orphan VM's delete answered: a confirmed delete frees its slot; a failed one keeps
    /// the slot and is retried by the next sweep.
    fn on_orphan_deleted(&mut self, id: EffectId, result: EffectResult) {
        let vm = self.sweep.deletes.remove(&id);
        match result {
            EffectResult::Done => {
                if let Some(vm) = vm {
                    self.sweep.vms.remove(&vm);
                }
            }
            EffectResult::Failed(f) if f.class == FailureClass::NotFound => {
                if let Some(vm) = vm {
                    self.sweep.vms.remove(&vm);
                }
            }
            EffectResult::Failed(f) => self.out.notice(Notice::StepFailed {
                job: None,
                step: "sweep_delete",
                detail: format!("{:?}: {}", f.class, f.message),
            }),
            _ => {}
        }
    }

    /// A sweep could not finish: bring the next one forward, on the cleanup backoff.
    /// Brings the next sweep forward to `at` (never later than already planned).
    fn sweep_at(&mut self, at: Timestamp) {
        if let Inventory::Loaded(None, next) = self.inventory {
            self.inventory = Inventory::Loaded(None, next.min(at));
        }
    }

    fn sweep_sooner(&mut self) {
        self.sweep.tries = self.sweep.tries.saturating_add(1);
        let delay = self
            .settings
            .cleanup_retry
            .delay_before(self.sweep.tries.saturating_add(1))
            .unwrap_or(self.settings.sweep_interval);
        self.sweep_at(self.now + delay);
    }

    fn on_claimed(&mut self, result: EffectResult) {
        self.claim = Claim::Idle;
        let woken = std::mem::take(&mut self.woken_in_flight);
        let job = match result {
            EffectResult::Claimed(Some(job)) => job,
            // Woken during the claim: claim again now (pump does), the job may be newer.
            EffectResult::Claimed(None) if woken => return,
            EffectResult::Claimed(None) => {
                self.claim = Claim::WaitUntil(self.now + self.settings.idle_poll);
                return;
            }
            other => {
                self.out.notice(Notice::StepFailed {
                    job: None,
                    step: "claim",
                    detail: format!("{other:?}"),
                });
                self.claim = Claim::WaitUntil(self.now + self.settings.idle_poll);
                return;
            }
        };
        let id = job.job.id;
        if self.jobs.contains_key(&id) {
            // We still hold a lifecycle for this job (its VM serving a job our runner took, or
            // a store that handed it over twice). One lifecycle per job, always: give the new
            // claim straight back, uncounted and a little later, so no claim is left unowned.
            self.out.notice(Notice::ClaimGivenBack { job: id });
            let cmd = StoreCmd::Requeue {
                job: id,
                host: self.host.clone(),
                reason: Reason::AlreadyHeldHere,
                count_attempt: false,
                delay: self
                    .settings
                    .idle_poll
                    .max(std::time::Duration::from_secs(10)),
            };
            let _ = self
                .out
                .store(Owner::GiveBack, self.now, self.settings.store_timeout, cmd);
            return;
        }
        self.out.notice(Notice::JobClaimed {
            job: id,
            attempt: job.attempt,
        });
        let accepted = self.settings.filter.accepts(&job.job.owner, &job.labels);
        let stopping = self.mode != Mode::Running;
        let (mut ctx, jobs, _) = self.split();
        let lc = match accepted {
            Ok(spec) if !stopping => JobLifecycle::new(job, spec, &mut ctx),
            Ok(spec) => {
                let end = End::Requeue {
                    reason: Reason::HostStopping,
                    count_attempt: false,
                };
                JobLifecycle::give_back(job, spec, end, &mut ctx)
            }
            Err(err) => {
                ctx.out.notice(Notice::StepFailed {
                    job: Some(id),
                    step: "labels",
                    detail: err.to_string(),
                });
                let spec = crate::labels::VmSpec {
                    template: TemplateId(String::new()),
                    tag: None,
                };
                let end = End::DeadLetter(Reason::Unservable);
                JobLifecycle::give_back(job, spec, end, &mut ctx)
            }
        };
        jobs.insert(id, lc);
    }

    /// Templates that must not be evicted: a VM of theirs may exist or is being cloned.
    fn pinned(&self) -> BTreeSet<TemplateId> {
        self.jobs
            .values()
            .filter(|lc| lc.holds_vm())
            .map(|lc| lc.spec.template.clone())
            .collect()
    }

    fn finish_pull(&mut self, outcome: pull::PullOutcome) {
        let Some(task) = self.pull.take() else {
            return;
        };
        let (mut ctx, jobs, _) = self.split();
        for lc in jobs.values_mut() {
            if lc.is_awaiting_template() && lc.spec == task.spec {
                // "latest" that cannot be refreshed still runs from the local copy, if any.
                let fallback = outcome.is_err()
                    && task.spec.tag.is_none()
                    && ctx.cache.has_any_tag(&task.spec.template);
                lc.on_template(&mut ctx, if fallback { Ok(()) } else { outcome });
            }
        }
    }

    /// Moves everything forward that needs no input: inventory, template readiness, pulls,
    /// claims, finished jobs, status.
    fn pump(&mut self) {
        if self.mode == Mode::Stopped {
            return;
        }
        let due = match self.inventory {
            Inventory::Loading(None, t, _) | Inventory::Loaded(None, t) => t <= self.now,
            _ => false,
        };
        if due && self.mode != Mode::Stopping {
            let op = self.out.vm(
                Owner::Inventory,
                self.now,
                self.settings.github_timeout,
                VmCmd::Inventory,
            );
            self.inventory = match self.inventory {
                Inventory::Loading(_, t, n) => Inventory::Loading(Some(op), t, n),
                Inventory::Loaded(..) => Inventory::Loaded(Some(op), self.now),
            };
        }
        self.pump_templates();
        self.reap();
        self.maybe_claim();
        self.maybe_stop();
        self.report_status();
    }

    fn pump_templates(&mut self) {
        let (mut ctx, jobs, pull) = self.split();
        for lc in jobs.values_mut() {
            if lc.is_awaiting_template() && (ctx.cache.has(&lc.spec) || lc.template_fresh) {
                lc.clone_vm(&mut ctx);
            }
        }
        if pull.is_some() {
            return;
        }
        // The oldest waiting job decides the next pull; never while a clone of that template
        // is running, so a pull cannot swap the tag under a clone.
        let next = jobs
            .values()
            .filter(|lc| lc.is_awaiting_template())
            .min_by_key(|lc| (lc.claimed_at, lc.id()))
            .map(|lc| lc.spec.clone());
        if let Some(spec) = next {
            let cloning = jobs
                .values()
                .any(|lc| lc.is_cloning() && lc.spec.template == spec.template);
            if !cloning {
                *pull = Some(PullTask::start(spec, &mut ctx));
            }
        }
    }

    fn reap(&mut self) {
        // Runs after every input: look before collecting anything.
        if !self.jobs.values().any(|lc| lc.ended().is_some()) {
            return;
        }
        let done: Vec<(JobId, String)> = self
            .jobs
            .iter()
            .filter_map(|(id, lc)| lc.ended().map(|end| (*id, end.to_string())))
            .collect();
        for (job, end) in done {
            self.jobs.remove(&job);
            self.out.notice(Notice::JobEnded { job, end });
        }
    }

    fn maybe_claim(&mut self) {
        let ready = self.mode == Mode::Running
            && matches!(self.inventory, Inventory::Loaded(..))
            && self.claim == Claim::Idle
            && self.jobs.len() + self.sweep.vms.len() < self.settings.max_vms;
        if !ready {
            return;
        }
        let filter = ClaimFilter {
            held: self.jobs.keys().copied().collect(),
            ..self.settings.filter.clone()
        };
        let cmd = StoreCmd::Claim {
            host: self.host.clone(),
            filter,
            lease: self.settings.lease,
        };
        let timeout = self.settings.store_timeout + self.settings.idle_poll;
        let op = self.out.store(Owner::Claim, self.now, timeout, cmd);
        self.claim = Claim::InFlight(op);
    }

    fn maybe_stop(&mut self) {
        let quiet = self.jobs.is_empty() && !matches!(self.claim, Claim::InFlight(_));
        if matches!(self.mode, Mode::Draining | Mode::Stopping) && quiet {
            self.mode = Mode::Stopped;
            self.pull = None;
            self.out.notice(Notice::Stopped);
        }
    }

    fn report_status(&mut self) {
        let status = match self.mode {
            Mode::Stopped => HostStatus::Stopped,
            Mode::Stopping => HostStatus::Stopping,
            Mode::Draining => HostStatus::Draining,
            Mode::Running if self.pull.is_some() => HostStatus::Pulling,
            Mode::Running if !self.jobs.is_empty() => HostStatus::InProgress,
            Mode::Running => HostStatus::Idle,
        };
        if self.status != Some(status) {
            self.status = Some(status);
            self.out.notice(Notice::Status(status));
        }
    }
}
