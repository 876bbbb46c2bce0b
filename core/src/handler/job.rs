//! One claimed job's lifecycle on this host.
//!
//! ```text
//! claimed → awaiting template ─(host pull task: size → evict LRU → pull)─┐
//!            ↓ template ready                                              │ no space / pull failed
//!          clone → start → runner config → start runner → registered      ↓
//!            ↑ fresh VM (clone/start/registration failed)   ↓ in_progress   requeue / dead letter
//!            └── recycle (remove runner, delete VM) ←── confirm with API    │
//!                                                          running → completed
//! every end: cleanup = [cancel run if over lifetime] → remove runner → store op → delete VM
//! ```
//! A lifecycle holds its slot until its VM is confirmed deleted. Operations that may create a VM
//! (clone, start, runner start) are allowed to settle before the VM is deleted, so a delete
//! never races a clone that is still running.

use super::effect::{Completion, ForgeCmd, Notice, Reason, RunnerCredentials, StoreCmd, VmCmd};
use super::input::{ClaimedJob, EffectResult, Failure, FailureClass, GithubJobStatus, VmState};
use super::outbox::{Outbox, Owner};
use super::settings::HandlerSettings;
use super::templates::TemplateCache;
use crate::config::RunnerRegistration;
use crate::ids::{EffectId, HostId, JobId, VmName};
use crate::labels::VmSpec;
use crate::time::Timestamp;
use std::collections::BTreeSet;
use std::time::Duration;

/// The world a lifecycle acts on during one call.
pub(crate) struct Ctx<'a> {
    pub(crate) now: Timestamp,
    pub(crate) host: &'a HostId,
    pub(crate) settings: &'a HandlerSettings,
    pub(crate) out: &'a mut Outbox,
    pub(crate) cache: &'a mut TemplateCache,
    /// Our VMs that no live lifecycle holds (the sweep's orphans, say a crashed process's VM
    /// whose runner still runs a job): a new VM never takes one of their names.
    pub(crate) orphans: &'a BTreeSet<VmName>,
    /// Set when a lifecycle leaves its runner behind, so the next sweep lists runners.
    pub(crate) runner_left: &'a mut bool,
}

/// How a lifecycle ends, decided once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Complete(Completion),
    Requeue {
        reason: Reason,
        count_attempt: bool,
    },
    DeadLetter(Reason),
    /// The lease was lost: the store already gave the job back; we only clean up.
    Forfeit,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Complete(c) => write!(f, "completed({c})"),
            End::Requeue { reason, .. } => write!(f, "requeued({reason})"),
            End::DeadLetter(reason) => write!(f, "dead_lettered({reason})"),
            End::Forfeit => f.write_str("forfeited(lease_lost)"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CleanupStep {
    CancelRun,
    RemoveRunner,
    Store,
    DeleteVm,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Then {
    Finish(End),
    FreshVm,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Cleanup {
    then: Then,
    cancel_run: bool,
    stored: bool,
    op: Option<(EffectId, CleanupStep)>,
    tries: u32,
    retry_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Stage {
    AwaitTemplate {
        deadline: Timestamp,
    },
    Cloning(EffectId),
    Starting(EffectId),
    RunnerConfig {
        op: Option<EffectId>,
        retry_at: Option<Timestamp>,
        mode: RunnerRegistration,
    },
    StartingRunner(EffectId),
    Registered {
        deadline: Timestamp,
    },
    Confirming(EffectId),
    Running,
    Cleanup(Cleanup),
    Done(End),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Lease {
    renew_at: Timestamp,
    expires_at: Timestamp,
    op: Option<(EffectId, Timestamp)>,
    /// The store said the lease is gone; never renew again.
    lost: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Watch {
    op: Option<EffectId>,
    poll_at: Timestamp,
    health_at: Timestamp,
}

/// One claimed job on this host.
#[derive(Clone, Debug)]
pub(crate) struct JobLifecycle {
    pub(crate) job: ClaimedJob,
    pub(crate) spec: VmSpec,
    pub(crate) claimed_at: Timestamp,
    stage: Stage,
    lease: Lease,
    watch: Watch,
    /// The VM that may exist: set when clone is asked, cleared when delete succeeds.
    vm: Option<VmName>,
    vms_made: u32,
    /// The number in the last VM name (`anklet-vm-<host>-<job>-<n>`); ahead of `vms_made` when
    /// a name was skipped because an orphan of an earlier claim still has it.
    vm_number: u32,
    /// A clone, start or runner start whose result is still awaited.
    vm_op: Option<EffectId>,
    runner_may_exist: bool,
    tries: u32,
    /// Set when a pull finished for this job, so an untagged ("latest") spec may be cloned.
    pub(crate) template_fresh: bool,
    /// Another job our runner took (GitHub matched it by labels): the VM must live until that
    /// job ends, whatever happens to ours, and gives up at this deadline.
    lent_to: Option<(JobId, Timestamp)>,
    /// The runner was busy with some job when we tried to remove it: try again at the first
    /// instant, and give up (deleting the VM) at the second.
    runner_busy: Option<(Timestamp, Timestamp)>,
}

impl JobLifecycle {
    pub(crate) fn new(job: ClaimedJob, spec: VmSpec, ctx: &mut Ctx<'_>) -> Self {
        let s = ctx.settings;
        let wait = s
            .pull_timeout
            .saturating_mul(s.pull_attempts.saturating_add(1));
        let me = Self {
            job,
            spec,
            claimed_at: ctx.now,
            stage: Stage::AwaitTemplate {
                deadline: ctx.now + wait,
            },
            lease: Lease {
                renew_at: ctx.now + s.lease / 3,
                expires_at: ctx.now + s.lease,
                op: None,
                lost: false,
            },
            watch: Watch {
                op: None,
                poll_at: Timestamp::default(),
                health_at: Timestamp::default(),
            },
            vm: None,
            vms_made: 0,
            vm_number: 0,
            vm_op: None,
            runner_may_exist: false,
            tries: 0,
            template_fresh: false,
            lent_to: None,
            runner_busy: None,
        };
        me.phase(ctx, "awaiting_template");
        me
    }

    /// A lifecycle that only gives the job straight back (claimed while stopping, unservable).
    pub(crate) fn give_back(job: ClaimedJob, spec: VmSpec, end: End, ctx: &mut Ctx<'_>) -> Self {
        let mut me = Self::new(job, spec, ctx);
        me.end(ctx, end);
        me
    }

    pub(crate) fn id(&self) -> JobId {
        self.job.job.id
    }

    pub(crate) fn is_awaiting_template(&self) -> bool {
        matches!(self.stage, Stage::AwaitTemplate { .. })
    }

    pub(crate) fn is_cloning(&self) -> bool {
        matches!(self.stage, Stage::Cloning(_))
    }

    /// Whether `runner` is this job's runner (runner name = VM name).
    pub(crate) fn runs_runner(&self, runner: &str) -> bool {
        self.runner_may_exist && self.vm.as_ref().is_some_and(|vm| vm.0 == runner)
    }

    /// GitHub says our runner runs `other`, not our job: our job goes back to the queue (it did
    /// not start), and the VM stays until `other` ends, so no running job loses its VM. The
    /// news of `other`'s end may never come (its record is not ours to read, and a receiver in
    /// another process stores it), so removing the runner is still tried every poll interval:
    /// GitHub refuses while the runner is busy, and once it is gone or free, so is `other`.
    pub(crate) fn runner_taken(&mut self, ctx: &mut Ctx<'_>, other: JobId) {
        if self.lent_to.is_some() || matches!(self.stage, Stage::Done(_) | Stage::Running) {
            return;
        }
        let until = ctx.now + ctx.settings.job_max_lifetime;
        self.lent_to = Some((other, until));
        self.runner_busy = Some((ctx.now + ctx.settings.job_poll_interval, until));
        ctx.out.notice(Notice::StepFailed {
            job: Some(self.id()),
            step: "runner",
            detail: format!(
                "runner {} took {other}; the VM stays until it ends",
                self.vm_name()
            ),
        });
        self.end(
            ctx,
            End::Requeue {
                reason: Reason::RunnerTakenByOtherJob,
                count_attempt: false,
            },
        );
    }

    /// The other job our runner serves, if any.
    pub(crate) fn lent_to(&self) -> Option<JobId> {
        self.lent_to.map(|(job, _)| job)
    }

    /// The job our runner took ended (or its time is up): the VM can go.
    pub(crate) fn lent_job_ended(&mut self, ctx: &mut Ctx<'_>) {
        if self.lent_to.take().is_some() {
            // The news is better than waiting for the next removal try: remove it now.
            self.runner_busy = None;
            self.advance_cleanup(ctx);
        }
    }

    /// The VM this job may have, so the sweep leaves it alone.
    pub(crate) fn vm(&self) -> Option<&VmName> {
        self.vm.as_ref()
    }

    /// Whether this lifecycle may have registered a runner (so a runner named for its VM is its
    /// own, not one left by an earlier claim of the job that reused the name).
    pub(crate) fn may_have_runner(&self) -> bool {
        self.runner_may_exist
    }

    /// Whether the job's VM may exist (its template must then not be evicted).
    pub(crate) fn holds_vm(&self) -> bool {
        self.vm.is_some()
    }

    pub(crate) fn ended(&self) -> Option<&End> {
        match &self.stage {
            Stage::Done(end) => Some(end),
            _ => None,
        }
    }

    /// Whether the claim still needs its lease renewed: until the store has recorded the end.
    fn holds_lease(&self) -> bool {
        if self.lease.lost {
            return false;
        }
        match &self.stage {
            Stage::Done(_) => false,
            Stage::Cleanup(c) => !c.stored && c.then != Then::Finish(End::Forfeit),
            _ => true,
        }
    }

    /// Whether the runner may have started the job (then it cannot be requeued).
    fn job_may_run(&self) -> bool {
        matches!(self.stage, Stage::Running)
    }

    fn phase(&self, ctx: &mut Ctx<'_>, phase: &'static str) {
        ctx.out.notice(Notice::Phase {
            job: self.id(),
            phase,
            at: ctx.now,
        });
    }

    fn failed(&self, ctx: &mut Ctx<'_>, step: &'static str, f: &Failure) {
        ctx.out.notice(Notice::StepFailed {
            job: Some(self.id()),
            step,
            detail: format!("{:?}: {}", f.class, f.message),
        });
    }

    // ----- main line -------------------------------------------------------------------------

    /// The template is local: clone a VM from it.
    pub(crate) fn clone_vm(&mut self, ctx: &mut Ctx<'_>) {
        self.vms_made += 1;
        let vm = loop {
            self.vm_number += 1;
            let vm = VmName::for_job(ctx.host, self.id(), self.vm_number);
            if !ctx.orphans.contains(&vm) {
                break vm;
            }
        };
        ctx.cache.touch(&self.spec.template, ctx.now);
        let cmd = VmCmd::Clone {
            vm: vm.clone(),
            spec: self.spec.clone(),
        };
        let op = ctx
            .out
            .vm(self.owner(), ctx.now, ctx.settings.clone_timeout, cmd);
        self.vm = Some(vm);
        self.vm_op = Some(op);
        self.stage = Stage::Cloning(op);
        self.phase(ctx, "cloning");
    }

    /// The host's pull for this job's spec ended.
    pub(crate) fn on_template(&mut self, ctx: &mut Ctx<'_>, outcome: Result<(), Reason>) {
        if !self.is_awaiting_template() {
            return;
        }
        match outcome {
            Ok(()) => self.template_fresh = true,
            Err(reason) => {
                let count_attempt = reason != Reason::PullLockTimeout;
                let end = match reason {
                    Reason::TemplateNotInRegistry => End::DeadLetter(reason),
                    _ => End::Requeue {
                        reason,
                        count_attempt,
                    },
                };
                self.end(ctx, end);
            }
        }
    }

    fn owner(&self) -> Owner {
        Owner::Job(self.id())
    }

    fn vm_name(&self) -> VmName {
        self.vm
            .clone()
            .unwrap_or_else(|| VmName(format!("{}missing", VmName::PREFIX)))
    }

    fn ask_runner_config(&mut self, ctx: &mut Ctx<'_>, mode: RunnerRegistration) {
        let cmd = ForgeCmd::CreateRunnerConfig {
            job: self.job.job.clone(),
            runner: self.vm_name(),
            mode,
            group: ctx.settings.runner_group.clone(),
        };
        if mode == RunnerRegistration::Jit {
            self.runner_may_exist = true;
        }
        let op = ctx
            .out
            .forge(self.owner(), ctx.now, ctx.settings.github_timeout, cmd);
        self.stage = Stage::RunnerConfig {
            op: Some(op),
            retry_at: None,
            mode,
        };
    }

    fn start_runner(&mut self, ctx: &mut Ctx<'_>, credentials: RunnerCredentials) {
        let cmd = VmCmd::StartRunner {
            vm: self.vm_name(),
            job: self.job.job.clone(),
            labels: self.job.labels.clone(),
            credentials,
        };
        self.runner_may_exist = true;
        let op = ctx.out.vm(
            self.owner(),
            ctx.now,
            ctx.settings.start_runner_timeout,
            cmd,
        );
        self.vm_op = Some(op);
        self.stage = Stage::StartingRunner(op);
        self.phase(ctx, "starting_runner");
    }

    fn registered(&mut self, ctx: &mut Ctx<'_>) {
        let s = ctx.settings;
        self.stage = Stage::Registered {
            deadline: ctx.now + s.registration_timeout,
        };
        self.watch.health_at = ctx.now + s.vm_health_interval;
        self.watch.poll_at = ctx.now + s.job_poll_interval;
        self.phase(ctx, "registered");
    }

    fn running(&mut self, ctx: &mut Ctx<'_>) {
        self.stage = Stage::Running;
        self.watch.poll_at = ctx.now + ctx.settings.job_poll_interval;
        self.phase(ctx, "running");
    }

    /// A VM step failed: try a fresh VM if allowed, else give the job back.
    fn vm_failed(&mut self, ctx: &mut Ctx<'_>, reason: Reason) {
        if self.vms_made < ctx.settings.fresh_vm_attempts {
            ctx.out.notice(Notice::FreshVm {
                job: self.id(),
                reason,
            });
            self.begin_cleanup(ctx, Then::FreshVm);
        } else {
            self.end(
                ctx,
                End::Requeue {
                    reason,
                    count_attempt: true,
                },
            );
        }
    }

    /// Decides the end and starts cleanup; the first decision wins.
    pub(crate) fn end(&mut self, ctx: &mut Ctx<'_>, end: End) {
        let end = self.limit_attempts(ctx, end);
        if let Stage::Cleanup(c) = &mut self.stage {
            // A fresh-VM recycle becomes a final cleanup; a final one keeps its end.
            if matches!(c.then, Then::FreshVm) {
                c.then = Then::Finish(end);
                self.advance_cleanup(ctx);
            }
            return;
        }
        if matches!(self.stage, Stage::Done(_)) {
            return;
        }
        self.begin_cleanup(ctx, Then::Finish(end));
    }

    /// Turns a counted requeue past the retry limit into a dead letter.
    fn limit_attempts(&self, ctx: &Ctx<'_>, end: End) -> End {
        match end {
            End::Requeue {
                reason,
                count_attempt: true,
            } if self.job.attempt > ctx.settings.job_retry_attempts => End::DeadLetter(reason),
            other => other,
        }
    }

    fn begin_cleanup(&mut self, ctx: &mut Ctx<'_>, then: Then) {
        let cancel_run = matches!(then, Then::Finish(End::Complete(Completion::TimedOut)));
        self.watch.op = None;
        self.stage = Stage::Cleanup(Cleanup {
            then,
            cancel_run,
            stored: false,
            op: None,
            tries: 0,
            retry_at: None,
        });
        self.phase(ctx, "cleanup");
        self.advance_cleanup(ctx);
    }

    fn advance_cleanup(&mut self, ctx: &mut Ctx<'_>) {
        let Stage::Cleanup(c) = &self.stage else {
            return;
        };
        if c.op.is_some() || c.retry_at.is_some_and(|t| t > ctx.now) {
            return;
        }
        // Called on every result and timer of a cleanup: build only the one effect it sends.
        let s = ctx.settings;
        let step = if c.cancel_run {
            let cmd = ForgeCmd::CancelWorkflowRun {
                job: self.job.job.clone(),
            };
            Some((
                ctx.out.forge(self.owner(), ctx.now, s.github_timeout, cmd),
                CleanupStep::CancelRun,
            ))
        } else if self.runner_may_exist
            && self
                .runner_busy
                .is_none_or(|(retry_at, _)| retry_at <= ctx.now)
        {
            let cmd = ForgeCmd::RemoveRunner {
                runner: self.vm_name(),
            };

            Some((
                ctx.out.forge(self.owner(), ctx.now, s.github_timeout, cmd),
                CleanupStep::RemoveRunner,
            ))
        } else if let Then::Finish(end) = &c.then
            && !c.stored
            && let Some(cmd) = self.store_cmd(ctx, end)
        {
            Some((
                ctx.out.store(self.owner(), ctx.now, s.store_timeout, cmd),
                CleanupStep::Store,
            ))
        } else if self.vm_op.is_some() || self.lent_to.is_some() || self.runner_may_exist {
            // Wait for the clone/start still running, or for the job our runner took to end;
            // a result, the news, or the deadline moves us on.
            return;
        } else if let Some(vm) = &self.vm {
            let cmd = VmCmd::Delete { vm: vm.clone() };
            Some((
                ctx.out.vm(self.owner(), ctx.now, s.delete_timeout, cmd),
                CleanupStep::DeleteVm,
            ))
        } else {
            None
        };
        let finish_end = match (&step, &self.stage) {
            (
                None,
                Stage::Cleanup(Cleanup {
                    then: Then::Finish(end),
                    ..
                }),
            ) => Some(end.clone()),
            _ => None,
        };
        match (step, finish_end) {
            (Some(op), _) => {
                if let Stage::Cleanup(c) = &mut self.stage {
                    c.op = Some(op);
                    c.retry_at = None;
                }
            }
            (None, Some(end)) => self.stage = Stage::Done(end),
            (None, None) => {
                // Recycled: the old VM and runner are gone; take the next VM.
                self.stage = Stage::AwaitTemplate {
                    deadline: ctx.now + ctx.settings.pull_timeout,
                };
                self.phase(ctx, "awaiting_template");
            }
        }
    }

    /// The store operation that records `end`; a forfeited job has none (the store moved on).
    fn store_cmd(&self, ctx: &Ctx<'_>, end: &End) -> Option<StoreCmd> {
        let job = self.id();
        let host = ctx.host.clone();
        Some(match end {
            End::Complete(outcome) => StoreCmd::Complete {
                job,
                host,
                outcome: outcome.clone(),
            },
            End::Requeue {
                reason,
                count_attempt,
            } => StoreCmd::Requeue {
                job,
                host,
                reason: *reason,
                count_attempt: *count_attempt,
                delay: Duration::ZERO,
            },
            End::DeadLetter(reason) => StoreCmd::DeadLetter {
                job,
                host,
                reason: *reason,
            },
            End::Forfeit => return None,
        })
    }

    fn on_cleanup_result(&mut self, ctx: &mut Ctx<'_>, step: CleanupStep, result: EffectResult) {
        if let (CleanupStep::RemoveRunner, EffectResult::Failed(f)) = (step, &result)
            && f.class == FailureClass::Busy
        {
            // Our runner runs some job (one GitHub gave it, maybe whose news was lost): never
            // delete its VM under it. Record our job, and ask again until the runner is free.
            // Unless the VM is already dead: nothing runs on it, GitHub only has not noticed
            // yet; the VM goes now and the runner is left to the sweep, which keeps asking.
            let vm_dead = matches!(&self.stage, Stage::Cleanup(c)
                if c.then == Then::Finish(End::Complete(Completion::VmLost)));
            if let Stage::Cleanup(c) = &mut self.stage {
                c.op = None;
                if matches!(c.then, Then::FreshVm) {
                    // A fresh VM is pointless while our runner serves another job.
                    c.then = Then::Finish(End::Requeue {
                        reason: Reason::RunnerTakenByOtherJob,
                        count_attempt: false,
                    });
                }
            }
            let give_up_at = match self.runner_busy {
                _ if vm_dead => ctx.now,
                Some((_, until)) => until,
                None => ctx.now + ctx.settings.job_max_lifetime,
            };
            if give_up_at <= ctx.now {
                self.runner_busy = None;
                self.runner_may_exist = false;
                *ctx.runner_left = true;
                ctx.out.notice(Notice::RunnerLeftBehind {
                    runner: self.vm_name(),
                });
            } else {
                self.runner_busy = Some((ctx.now + ctx.settings.job_poll_interval, give_up_at));
            }
            self.failed(ctx, "remove_runner", f);
            return self.advance_cleanup(ctx);
        }
        let s = ctx.settings;
        let Stage::Cleanup(c) = &mut self.stage else {
            return;
        };
        c.op = None;
        let ok = match (&result, step) {
            (EffectResult::Done | EffectResult::Stored, _) => true,
            (EffectResult::LeaseLost, CleanupStep::Store) => true,
            (EffectResult::Failed(f), CleanupStep::DeleteVm | CleanupStep::RemoveRunner)
                if f.class == FailureClass::NotFound =>
            {
                true
            }
            _ => false,
        };
        if ok {
            c.tries = 0;
            match step {
                CleanupStep::CancelRun => c.cancel_run = false,
                CleanupStep::RemoveRunner => {
                    self.runner_may_exist = false;
                    self.runner_busy = None;
                    // A runner that is gone (or was free to remove) runs no job of anyone's.
                    self.lent_to = None;
                }
                CleanupStep::Store => c.stored = true,
                CleanupStep::DeleteVm => self.vm = None,
            }
            self.advance_cleanup(ctx);
            return;
        }
        c.tries += 1;
        let failure = match result {
            EffectResult::Failed(f) => f,
            other => Failure::new(
                FailureClass::Permanent,
                format!("unexpected result {other:?}"),
            ),
        };
        // Cancelling the run is best effort. Removing the runner is retried like the store write
        // and the delete: the runner may run a job GitHub gave it (its news lost), and giving up
        // would delete the VM under that job. Only a refusal for good ends it, and not while
        // GitHub has called the runner busy and its deadline has not come.
        let held_busy = self.runner_busy.is_some_and(|(_, until)| until > ctx.now);
        let (policy, give_up) = match step {
            CleanupStep::CancelRun => (s.github_retry, failure.class == FailureClass::Permanent),
            CleanupStep::RemoveRunner => (
                s.cleanup_retry,
                failure.class == FailureClass::Permanent && !held_busy,
            ),
            CleanupStep::Store | CleanupStep::DeleteVm => (s.cleanup_retry, false),
        };
        let delay = if give_up {
            None
        } else {
            policy.delay_before(c.tries + 1)
        };
        let step_name = match step {
            CleanupStep::CancelRun => "cancel_run",
            CleanupStep::RemoveRunner => "remove_runner",
            CleanupStep::Store => "store",
            CleanupStep::DeleteVm => "delete_vm",
        };
        match delay {
            Some(d) => c.retry_at = Some(ctx.now + d),
            None => {
                // Only the run's cancel runs out of tries, and a runner removal GitHub refuses
                // for good; the sweep finds what is left.
                c.tries = 0;
                match step {
                    CleanupStep::CancelRun => c.cancel_run = false,
                    _ => {
                        self.runner_may_exist = false;
                        *ctx.runner_left = true;
                        ctx.out.notice(Notice::RunnerLeftBehind {
                            runner: self.vm_name(),
                        });
                    }
                }
            }
        }
        self.failed(ctx, step_name, &failure);
        self.advance_cleanup(ctx);
    }

    // ----- inputs ----------------------------------------------------------------------------

    /// Routes an effect result owned by this job.
    pub(crate) fn on_result(&mut self, ctx: &mut Ctx<'_>, id: EffectId, result: EffectResult) {
        if self.lease.op.is_some_and(|(op, _)| op == id) {
            return self.on_lease_result(ctx, result);
        }
        if self.watch.op == Some(id) {
            self.watch.op = None;
            return self.on_watch_result(ctx, result);
        }
        if self.vm_op == Some(id) {
            self.vm_op = None;
        }
        match self.stage.clone() {
            Stage::Cloning(op) if op == id => match result {
                EffectResult::Failed(_)
                    if ctx.settings.defect
                        == Some(super::settings::Defect::LeakVmAfterCloneFailure) =>
                {
                    self.vm = None;
                    self.vm_step_failed(ctx, "clone", result, Reason::CloneFailed)
                }
                EffectResult::Done => {
                    let cmd = VmCmd::Start { vm: self.vm_name() };
                    let op = ctx
                        .out
                        .vm(self.owner(), ctx.now, ctx.settings.start_timeout, cmd);
                    self.vm_op = Some(op);
                    self.stage = Stage::Starting(op);
                    self.phase(ctx, "starting");
                }
                other => self.vm_step_failed(ctx, "clone", other, Reason::CloneFailed),
            },
            Stage::Starting(op) if op == id => match result {
                EffectResult::Done => {
                    self.tries = 0;
                    self.phase(ctx, "runner_config");
                    self.ask_runner_config(ctx, ctx.settings.runner_registration);
                }
                other => self.vm_step_failed(ctx, "start", other, Reason::StartFailed),
            },
            Stage::RunnerConfig {
                op: Some(op), mode, ..
            } if op == id => match result {
                EffectResult::RunnerConfig(credentials) => self.start_runner(ctx, credentials),
                other => self.runner_config_failed(ctx, mode, other),
            },
            Stage::StartingRunner(op) if op == id => match result {
                EffectResult::Done => self.registered(ctx),
                other => self.vm_step_failed(ctx, "start_runner", other, Reason::StartRunnerFailed),
            },
            Stage::Confirming(op) if op == id => self.on_confirmation(ctx, result),
            Stage::Cleanup(c) => match c.op {
                Some((op, step)) if op == id => self.on_cleanup_result(ctx, step, result),
                // A clone or start settled (or timed out) while cleaning up.
                _ => self.advance_cleanup(ctx),
            },
            _ => ctx.out.notice(Notice::IgnoredResult { id }),
        }
    }

    fn as_failure(result: EffectResult) -> Failure {
        match result {
            EffectResult::Failed(f) => f,
            other => Failure::new(
                FailureClass::Permanent,
                format!("unexpected result {other:?}"),
            ),
        }
    }

    fn vm_step_failed(
        &mut self,
        ctx: &mut Ctx<'_>,
        step: &'static str,
        result: EffectResult,
        reason: Reason,
    ) {
        let failure = Self::as_failure(result);
        self.failed(ctx, step, &failure);
        self.vm_failed(ctx, reason);
    }

    fn runner_config_failed(
        &mut self,
        ctx: &mut Ctx<'_>,
        mode: RunnerRegistration,
        result: EffectResult,
    ) {
        let failure = Self::as_failure(result);
        self.failed(ctx, "runner_config", &failure);
        if failure.class == FailureClass::Unsupported && mode == RunnerRegistration::Jit {
            // JIT is not available (old GHES): fall back to a registration token.
            self.tries = 0;
            return self.ask_runner_config(ctx, RunnerRegistration::Token);
        }
        self.tries += 1;
        let retry = match failure.class {
            FailureClass::Transient | FailureClass::TimedOut => {
                ctx.settings.github_retry.delay_before(self.tries + 1)
            }
            _ => None,
        };
        match retry {
            Some(d) => {
                self.stage = Stage::RunnerConfig {
                    op: None,
                    retry_at: Some(ctx.now + d),
                    mode,
                }
            }
            None => self.end(
                ctx,
                End::Requeue {
                    reason: Reason::RunnerConfigFailed,
                    count_attempt: true,
                },
            ),
        }
    }

    fn on_confirmation(&mut self, ctx: &mut Ctx<'_>, result: EffectResult) {
        match result {
            EffectResult::JobStatus(GithubJobStatus::Queued) => {
                // GitHub confirms the runner never took the job.
                self.vm_failed(ctx, Reason::RegistrationTimedOut);
            }
            EffectResult::JobStatus(status) => self.on_status(ctx, status),
            other => {
                let failure = Self::as_failure(other);
                self.failed(ctx, "confirm_registration", &failure);
                self.tries += 1;
                match ctx.settings.github_retry.delay_before(self.tries + 1) {
                    // Cannot ask GitHub now: give the runner more time and ask again.
                    Some(d) => {
                        self.stage = Stage::Registered {
                            deadline: ctx.now + d,
                        }
                    }
                    None => self.vm_failed(ctx, Reason::RegistrationTimedOut),
                }
            }
        }
    }

    fn on_lease_result(&mut self, ctx: &mut Ctx<'_>, result: EffectResult) {
        let Some((_, sent_at)) = self.lease.op.take() else {
            return;
        };
        match result {
            EffectResult::Stored | EffectResult::Done => {
                self.lease.expires_at = sent_at + ctx.settings.lease;
                self.lease.renew_at = sent_at + ctx.settings.lease / 3;
            }
            EffectResult::LeaseLost => {
                // The store gave the job back; renewing again would only spin.
                self.lease.lost = true;
                match &mut self.stage {
                    // Its store op would be refused too: skip it and just clean up.
                    Stage::Cleanup(c) => {
                        if !c.stored {
                            // Not recorded yet, and now it cannot be: the job is forfeited.
                            c.then = Then::Finish(End::Forfeit);
                            c.stored = true;
                        }
                        self.advance_cleanup(ctx);
                    }
                    _ => self.end(ctx, End::Forfeit),
                }
            }
            other => {
                let failure = Self::as_failure(other);
                self.failed(ctx, "renew_lease", &failure);
                self.lease.renew_at = ctx.now + ctx.settings.lease / 6;
            }
        }
    }

    fn on_watch_result(&mut self, ctx: &mut Ctx<'_>, result: EffectResult) {
        match result {
            EffectResult::JobStatus(status) => self.on_status(ctx, status),
            EffectResult::VmState(VmState::Running) => {}
            EffectResult::VmState(_) => match self.stage {
                Stage::Running => self.end(ctx, End::Complete(Completion::VmLost)),
                Stage::Registered { .. } | Stage::Confirming(_) => {
                    self.vm_failed(ctx, Reason::VmDiedBeforeJob)
                }
                _ => {}
            },
            // A failed check is retried at the next interval.
            other => {
                let failure = Self::as_failure(other);
                self.failed(ctx, "watch", &failure);
            }
        }
    }

    /// News about the job's status in GitHub, from a webhook or an API read.
    pub(crate) fn on_status(&mut self, ctx: &mut Ctx<'_>, status: GithubJobStatus) {
        if matches!(self.stage, Stage::Cleanup(_) | Stage::Done(_)) {
            return;
        }
        match status {
            GithubJobStatus::Queued => {}
            GithubJobStatus::Completed { conclusion } => {
                self.end(ctx, End::Complete(Completion::Finished { conclusion }))
            }
            GithubJobStatus::InProgress { runner } => {
                let ours = match (&runner, &self.vm) {
                    (Some(name), Some(vm)) => *name == vm.0,
                    (None, Some(_)) => self.runner_may_exist,
                    _ => false,
                };
                if ours {
                    if !matches!(self.stage, Stage::Running) {
                        self.running(ctx);
                    }
                } else if runner.is_some() {
                    self.end(ctx, End::Complete(Completion::ServedElsewhere));
                }
            }
        }
    }

    /// Stop: a job whose runner has not started it goes back to the queue uncounted; a running
    /// job loses its VM and is recorded as aborted.
    pub(crate) fn stop(&mut self, ctx: &mut Ctx<'_>) {
        let end = if self.job_may_run() {
            End::Complete(Completion::AbortedByStop)
        } else {
            End::Requeue {
                reason: Reason::HostStopping,
                count_attempt: false,
            }
        };
        self.end(ctx, end);
    }

    // ----- time ------------------------------------------------------------------------------

    /// Does whatever is due at `ctx.now`.
    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        let s = ctx.settings;
        if self.lease.op.is_none() && self.lease.renew_at <= now && self.holds_lease() {
            if self.lease.expires_at <= now
                && !self.job_may_run()
                && !matches!(self.stage, Stage::Cleanup(_))
            {
                // Could not renew in time: another host may own the job now. Step back.
                return self.end(ctx, End::Forfeit);
            }
            let cmd = StoreCmd::RenewLease {
                job: self.id(),
                host: ctx.host.clone(),
                lease: s.lease,
            };
            let op = ctx.out.store(self.owner(), now, s.store_timeout, cmd);
            self.lease.op = Some((op, now));
        }
        match self.stage.clone() {
            Stage::AwaitTemplate { deadline } if deadline <= now => self.end(
                ctx,
                End::Requeue {
                    reason: Reason::PullLockTimeout,
                    count_attempt: false,
                },
            ),
            Stage::RunnerConfig {
                op: None,
                retry_at: Some(t),
                mode,
            } if t <= now => self.ask_runner_config(ctx, mode),
            Stage::Registered { deadline } if deadline <= now => {
                let cmd = ForgeCmd::GetJob {
                    job: self.job.job.clone(),
                };
                let op = ctx.out.forge(self.owner(), now, s.github_timeout, cmd);
                self.stage = Stage::Confirming(op);
                self.phase(ctx, "confirming_registration");
            }
            Stage::Running if self.claimed_at + s.job_max_lifetime <= now => {
                self.end(ctx, End::Complete(Completion::TimedOut))
            }
            Stage::Cleanup(c)
                if c.op.is_none()
                    && c.retry_at.is_none()
                    && self.runner_may_exist
                    && self
                        .runner_busy
                        .is_some_and(|(retry_at, _)| retry_at <= now) =>
            {
                if self.lent_to.is_some_and(|(_, until)| until <= now) {
                    self.lent_to = None;
                }
                self.advance_cleanup(ctx);
            }
            Stage::Cleanup(_) if self.lent_to.is_some_and(|(_, until)| until <= now) => {
                self.lent_to = None;
                self.runner_busy = None;
                self.advance_cleanup(ctx);
            }
            Stage::Cleanup(c) if c.retry_at.is_some_and(|t| t <= now) => {
                if let Stage::Cleanup(c) = &mut self.stage {
                    c.retry_at = None;
                }
                self.advance_cleanup(ctx);
            }
            _ => {}
        }
        self.watch_tick(ctx);
    }

    fn watch_tick(&mut self, ctx: &mut Ctx<'_>) {
        let watching = matches!(self.stage, Stage::Registered { .. } | Stage::Running);
        if !watching || self.watch.op.is_some() {
            return;
        }
        let (now, s) = (ctx.now, ctx.settings);
        if self.watch.health_at <= now {
            self.watch.health_at = now + s.vm_health_interval;
            let cmd = VmCmd::InspectVm { vm: self.vm_name() };
            self.watch.op = Some(ctx.out.vm(self.owner(), now, s.github_timeout, cmd));
        } else if self.watch.poll_at <= now && matches!(self.stage, Stage::Running) {
            self.watch.poll_at = now + s.job_poll_interval;
            let cmd = ForgeCmd::GetJob {
                job: self.job.job.clone(),
            };
            self.watch.op = Some(ctx.out.forge(self.owner(), now, s.github_timeout, cmd));
        }
    }

    /// The next instant this lifecycle has something to do without any input.
    pub(crate) fn next_wakeup(&self, settings: &HandlerSettings) -> Option<Timestamp> {
        // Called for every job whenever the host re-arms its timer: fold, never allocate.
        let mut best: Option<Timestamp> = None;
        let mut consider = |t: Timestamp| {
            if best.is_none_or(|b| t < b) {
                best = Some(t);
            }
        };
        if self.lease.op.is_none() && self.holds_lease() {
            consider(self.lease.renew_at);
        }
        match &self.stage {
            Stage::AwaitTemplate { deadline } | Stage::Registered { deadline } => {
                consider(*deadline)
            }
            Stage::RunnerConfig {
                retry_at: Some(t), ..
            } => consider(*t),
            Stage::Running => consider(self.claimed_at + settings.job_max_lifetime),
            Stage::Cleanup(c) => {
                c.retry_at.into_iter().for_each(&mut consider);
                if let Some((_, until)) = self.lent_to {
                    consider(until);
                }
                if c.op.is_none()
                    && c.retry_at.is_none()
                    && self.runner_may_exist
                    && let Some((retry_at, _)) = self.runner_busy
                {
                    consider(retry_at);
                }
            }
            _ => {}
        }
        if matches!(self.stage, Stage::Registered { .. } | Stage::Running)
            && self.watch.op.is_none()
        {
            consider(self.watch.health_at);
            if matches!(self.stage, Stage::Running) {
                consider(self.watch.poll_at);
            }
        }
        best
    }
}
