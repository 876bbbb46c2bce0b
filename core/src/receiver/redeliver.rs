//! Recovery of what GitHub never delivered, as a sans-IO machine run by the receiver's process.
//!
//! Webhooks get lost (a receiver restart, a network blip, a 503 while the store was down).
//! At start-up and every `interval` this machine:
//! 1. lists the hook's deliveries of the last `window` and asks GitHub to redeliver every
//!    `workflow_job` delivery that never got a 2xx answer (at most `max_attempts` times per
//!    delivery GUID);
//! 2. reconciles the queue with GitHub: every job still queued here for longer than
//!    `reconcile_after` is read from GitHub's jobs API, and a job GitHub says is completed
//!    (or cancelled) gets that news stored, which removes it from the queue.
//!
//! Unlike Anklet, a wrong `hook_id` or missing permission is reported (once per cycle) and
//! the receiver keeps serving; redelivery needs no rules about which list a job sits in
//! because the queue is idempotent on job ids and status only moves forward.

pub use crate::github::rest::deliveries::DeliverySummary;
use crate::handler::{Failure, FailureClass, GithubJobStatus, JobRef};
use crate::ids::{EffectId, JobId};
use crate::queue::JobStatus;
use crate::queue::txn::{Op, Reply};
use crate::time::Timestamp;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// How recovery runs; from the `github_receiver` plugin's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoverySettings {
    /// The webhook's id; `None` (or `skip_redeliver`) turns redelivery off.
    pub hook_id: Option<u64>,
    /// Redeliver deliveries at most this old (`redeliver_hours`, default 24 h).
    pub window: Duration,
    /// Time between cycles.
    pub interval: Duration,
    /// Redelivery requests per delivery GUID before giving up on it.
    pub max_attempts: u32,
    /// Whether to reconcile queued jobs with GitHub's jobs API.
    pub reconcile: bool,
    /// Only jobs queued at least this long are checked (a fresh job is surely still queued).
    pub reconcile_after: Duration,
    /// Jobs checked per cycle at most, oldest first, to bound API use.
    pub reconcile_batch: usize,
    /// Deadline of one GitHub or store call.
    pub call_timeout: Duration,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        Self {
            hook_id: None,
            window: Duration::from_secs(24 * 3600),
            interval: Duration::from_secs(300),
            max_attempts: 3,
            reconcile: true,
            reconcile_after: Duration::from_secs(120),
            reconcile_batch: 50,
            call_timeout: Duration::from_secs(30),
        }
    }
}

/// A GitHub call recovery needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryCall {
    /// The hook's deliveries since `since`, newest first, all pages.
    ListDeliveries {
        /// The hook.
        hook_id: u64,
        /// Oldest delivery wanted.
        since: Timestamp,
    },
    /// Ask GitHub to send a delivery again (answers 202).
    Redeliver {
        /// The hook.
        hook_id: u64,
        /// The delivery attempt to repeat.
        delivery_id: u64,
    },
    /// Read a job's status.
    GetJob(JobRef),
}

impl RecoverySettings {
    /// The settings of a `github_receiver` plugin: redelivery only with a `hook_id` and
    /// without `skip_redeliver`; reconciliation always.
    pub fn from_plugin(plugin: &crate::config::Plugin) -> Self {
        Self {
            hook_id: plugin
                .hook_id
                .filter(|id| *id != 0 && !plugin.skip_redeliver()),
            window: plugin.redeliver_window(),
            interval: plugin.redeliver_interval(),
            reconcile_after: plugin.reconcile_after(),
            ..Self::default()
        }
    }
}

/// GitHub's answer to a [`RecoveryCall`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryAnswer {
    /// Answer to `ListDeliveries`.
    Deliveries(Vec<DeliverySummary>),
    /// Answer to `Redeliver`.
    Redelivered,
    /// Answer to `GetJob`.
    Job(GithubJobStatus),
    /// Any call failed.
    Failed(Failure),
}

/// One request from the recovery machine.
#[derive(Clone, Debug, PartialEq)]
pub enum RecoveryEffect {
    /// A GitHub call; answer with [`Recovery::handle_github_result`].
    Github {
        /// Correlates the result.
        id: EffectId,
        /// Deadline of the call.
        timeout: Duration,
        /// The call.
        call: RecoveryCall,
    },
    /// A queue operation; answer with [`Recovery::handle_store_result`].
    Store {
        /// Correlates the result.
        id: EffectId,
        /// Deadline of the operation.
        timeout: Duration,
        /// [`Op::List`] or [`Op::Status`].
        op: Op,
    },
    /// Something worth logging or counting.
    Notice(RecoveryNotice),
}

/// Observations of a recovery cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryNotice {
    /// A delivery that never got a 2xx was asked for again.
    Redelivering {
        /// Its GUID.
        guid: String,
        /// Its `action`.
        action: Option<String>,
    },
    /// The hook does not exist in the configured scope (wrong `hook_id`).
    HookNotFound {
        /// The configured id.
        hook_id: u64,
    },
    /// A step failed; the next cycle tries again.
    StepFailed {
        /// Which step.
        step: &'static str,
        /// What went wrong (never a secret).
        detail: String,
    },
    /// A queued job GitHub says is finished was removed from the queue.
    Reconciled {
        /// The job.
        job: JobId,
        /// GitHub's conclusion.
        conclusion: Option<String>,
    },
    /// A cycle ended.
    CycleDone {
        /// Redeliveries asked for.
        redelivered: usize,
        /// Jobs checked against GitHub.
        checked: usize,
        /// Jobs removed because GitHub finished them.
        removed: usize,
    },
}

/// What an awaited id is for.
#[derive(Clone, Debug)]
enum Awaiting {
    List,
    Redeliver,
    Listing,
    GetJob(JobId),
    StoreStatus(JobId, Option<String>),
}

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    redelivered: usize,
    checked: usize,
    removed: usize,
}

/// The recovery machine. See the module docs.
#[derive(Debug)]
pub struct Recovery {
    settings: RecoverySettings,
    next_cycle: Option<Timestamp>,
    cycle_started: Option<Timestamp>,
    awaiting: BTreeMap<EffectId, Awaiting>,
    asked: BTreeMap<String, (u32, Timestamp)>,
    counts: Counts,
    effects: VecDeque<RecoveryEffect>,
    next_id: u64,
}

impl Recovery {
    /// A machine whose first cycle is due at `now`.
    pub fn new(settings: RecoverySettings, now: Timestamp) -> Self {
        Self {
            settings,
            next_cycle: Some(now),
            cycle_started: None,
            awaiting: BTreeMap::new(),
            asked: BTreeMap::new(),
            counts: Counts::default(),
            effects: VecDeque::new(),
            next_id: 0,
        }
    }

    /// When to call [`Recovery::handle_timeout`] next (`None` while a cycle runs).
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.next_cycle
    }

    /// Starts a cycle if one is due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        match self.next_cycle {
            Some(due) if due <= now => {}
            _ => return,
        }
        self.next_cycle = None;
        self.cycle_started = Some(now);
        self.counts = Counts::default();
        let window = self.settings.window;
        self.asked
            .retain(|_, (_, first)| now.saturating_since(*first) <= window);
        match self.settings.hook_id {
            Some(hook_id) => {
                let since = now.saturating_sub(window);
                self.github(
                    Awaiting::List,
                    RecoveryCall::ListDeliveries { hook_id, since },
                );
            }
            None => self.start_reconcile(),
        }
        self.maybe_finish(now);
    }

    /// The answer to a [`RecoveryEffect::Github`].
    pub fn handle_github_result(&mut self, now: Timestamp, id: EffectId, answer: RecoveryAnswer) {
        let Some(what) = self.awaiting.remove(&id) else {
            return;
        };
        match (what, answer) {
            (Awaiting::List, RecoveryAnswer::Deliveries(list)) => {
                self.redeliver_failed(now, &list);
                self.start_reconcile();
            }
            (Awaiting::List, RecoveryAnswer::Failed(f)) => {
                match (f.class, self.settings.hook_id) {
                    (FailureClass::NotFound, Some(hook_id)) => {
                        self.notice(RecoveryNotice::HookNotFound { hook_id });
                    }
                    _ => self.step_failed("list_deliveries", f.message),
                }
                self.start_reconcile();
            }
            (Awaiting::Redeliver, RecoveryAnswer::Failed(f)) => {
                self.step_failed("redeliver", f.message);
            }
            (Awaiting::GetJob(job), RecoveryAnswer::Job(status)) => {
                self.counts.checked += 1;
                if let GithubJobStatus::Completed { conclusion } = &status {
                    let op = Op::Status(job, status.clone());
                    self.store(Awaiting::StoreStatus(job, conclusion.clone()), op);
                }
            }
            (Awaiting::GetJob(_), RecoveryAnswer::Failed(f)) => {
                self.step_failed("get_job", f.message);
            }
            (_, RecoveryAnswer::Redelivered) => self.counts.redelivered += 1,
            (what, answer) => {
                self.step_failed("github", format!("unexpected {answer:?} for {what:?}"));
            }
        }
        self.maybe_finish(now);
    }

    /// The answer to a [`RecoveryEffect::Store`]; `Err` carries the store's error text.
    pub fn handle_store_result(
        &mut self,
        now: Timestamp,
        id: EffectId,
        result: Result<Reply, String>,
    ) {
        let Some(what) = self.awaiting.remove(&id) else {
            return;
        };
        match (what, result) {
            (Awaiting::Listing, Ok(Reply::Listing(listing))) => {
                let after = self.settings.reconcile_after;
                let mut stale: Vec<_> = listing
                    .queued
                    .iter()
                    .filter(|j| j.status == JobStatus::Queued && j.age >= after)
                    .collect();
                stale.sort_by(|a, b| b.age.cmp(&a.age).then(a.id.cmp(&b.id)));
                for j in stale.into_iter().take(self.settings.reconcile_batch) {
                    let (owner, repo) = j.repo.split_once('/').unwrap_or((&j.repo, ""));
                    let job = JobRef {
                        id: j.id,
                        run_id: j.run_id,
                        owner: owner.to_owned(),
                        repo: repo.to_owned(),
                    };
                    self.github(Awaiting::GetJob(j.id), RecoveryCall::GetJob(job));
                }
            }
            (Awaiting::StoreStatus(job, conclusion), Ok(Reply::Status(o))) => {
                if o == crate::queue::StatusOutcome::Removed {
                    self.counts.removed += 1;
                    self.notice(RecoveryNotice::Reconciled { job, conclusion });
                }
            }
            (_, Err(detail)) => self.step_failed("store", detail),
            (what, Ok(reply)) => {
                self.step_failed("store", format!("unexpected {reply:?} for {what:?}"));
            }
        }
        self.maybe_finish(now);
    }

    /// The next thing to do, in order.
    pub fn poll_effect(&mut self) -> Option<RecoveryEffect> {
        self.effects.pop_front()
    }

    fn redeliver_failed(&mut self, now: Timestamp, list: &[DeliverySummary]) {
        let Some(hook_id) = self.settings.hook_id else {
            return;
        };
        let succeeded: std::collections::BTreeSet<&str> = list
            .iter()
            .filter(|d| d.succeeded())
            .map(|d| d.guid.as_str())
            .collect();
        // The newest failed attempt of each GUID, oldest GUID first.
        let mut latest: BTreeMap<&str, &DeliverySummary> = BTreeMap::new();
        for d in list
            .iter()
            .filter(|d| d.event == "workflow_job" && !d.succeeded())
        {
            if succeeded.contains(d.guid.as_str()) {
                continue;
            }
            let keep = latest
                .get(d.guid.as_str())
                .is_none_or(|k| (d.delivered_at, d.id) > (k.delivered_at, k.id));
            if keep {
                latest.insert(&d.guid, d);
            }
        }
        let mut todo: Vec<&DeliverySummary> = latest.into_values().collect();
        todo.sort_by_key(|d| (d.delivered_at, d.id));
        for d in todo {
            let entry = self.asked.entry(d.guid.clone()).or_insert((0, now));
            if entry.0 >= self.settings.max_attempts {
                continue;
            }
            entry.0 += 1;
            self.notice(RecoveryNotice::Redelivering {
                guid: d.guid.clone(),
                action: d.action.clone(),
            });
            let call = RecoveryCall::Redeliver {
                hook_id,
                delivery_id: d.id,
            };
            self.github(Awaiting::Redeliver, call);
        }
    }

    fn start_reconcile(&mut self) {
        if self.settings.reconcile {
            self.store(Awaiting::Listing, Op::List);
        }
    }

    fn maybe_finish(&mut self, now: Timestamp) {
        if !self.awaiting.is_empty() || self.next_cycle.is_some() {
            return;
        }
        let c = self.counts;
        self.notice(RecoveryNotice::CycleDone {
            redelivered: c.redelivered,
            checked: c.checked,
            removed: c.removed,
        });
        let started = self.cycle_started.unwrap_or(now);
        self.next_cycle = Some(started.saturating_add(self.settings.interval).max(now));
    }

    fn step_failed(&mut self, step: &'static str, detail: String) {
        self.notice(RecoveryNotice::StepFailed { step, detail });
    }

    fn next_id(&mut self) -> EffectId {
        let id = EffectId(self.next_id);
        self.next_id += 1;
        id
    }

    fn github(&mut self, what: Awaiting, call: RecoveryCall) {
        let id = self.next_id();
        self.awaiting.insert(id, what);
        let timeout = self.settings.call_timeout;
        self.effects
            .push_back(RecoveryEffect::Github { id, timeout, call });
    }

    fn store(&mut self, what: Awaiting, op: Op) {
        let id = self.next_id();
        self.awaiting.insert(id, what);
        let timeout = self.settings.call_timeout;
        self.effects
            .push_back(RecoveryEffect::Store { id, timeout, op });
    }

    fn notice(&mut self, n: RecoveryNotice) {
        self.effects.push_back(RecoveryEffect::Notice(n));
    }
}

impl From<RecoveryCall> for crate::github::client::Command {
    /// The GitHub client's command for a recovery call (every delivery is listed; recovery
    /// chooses what to redeliver itself).
    fn from(call: RecoveryCall) -> Self {
        use crate::github::client::Command;
        match call {
            RecoveryCall::ListDeliveries { hook_id, since } => Command::ListDeliveries {
                hook_id,
                since,
                only_undelivered: false,
            },
            RecoveryCall::Redeliver {
                hook_id,
                delivery_id,
            } => Command::Redeliver {
                hook_id,
                delivery_id,
            },
            RecoveryCall::GetJob(job) => crate::handler::ForgeCmd::GetJob { job }.into(),
        }
    }
}

impl From<crate::github::client::CommandResult> for RecoveryAnswer {
    /// The client's answer as recovery reads it; an answer of the wrong kind is a failure.
    fn from(result: crate::github::client::CommandResult) -> Self {
        use crate::github::client::CommandResult;
        use crate::handler::EffectResult;
        match result {
            CommandResult::Deliveries(list) => RecoveryAnswer::Deliveries(list),
            CommandResult::Redelivered => RecoveryAnswer::Redelivered,
            CommandResult::Forge(EffectResult::JobStatus(s)) => RecoveryAnswer::Job(s),
            CommandResult::Forge(EffectResult::Failed(f)) | CommandResult::Failed(f) => {
                RecoveryAnswer::Failed(f)
            }
            other => RecoveryAnswer::Failed(Failure::new(
                FailureClass::Permanent,
                format!("unexpected answer {other:?}"),
            )),
        }
    }
}
