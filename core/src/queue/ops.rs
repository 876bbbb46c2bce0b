//! The queue's operations as one trait, their outcomes, and the adapter from the handler's
//! `StoreCmd` effects; every store (in-memory, Redis, embedded) implements the same trait so
//! one conformance suite ([`super::conformance`]) checks them all.

use super::record::{JobRecord, JobStatus, Lease, NewJob, Place};
use crate::handler::{Completion, EffectResult, GithubJobStatus, StoreCmd};
use crate::ids::{HostId, JobId};
use crate::labels::{ClaimFilter, VmSpec};
use crate::metrics::QueueDepth;
use crate::time::Timestamp;
use std::time::Duration;

/// How often a live node asks the store to requeue jobs whose lease lapsed (a host that died
/// holding a job); any node may do it, more often than needed is harmless.
pub const REAP_INTERVAL: Duration = Duration::from_secs(15);

/// How often a host with jobs in hand reads their records for GitHub news the receiver stored
/// (the webhook went to another process: this is how a handler hears `in_progress` and
/// `completed` without waiting for its own API polls).
pub const NEWS_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The news a claimer should hear from a job's record: GitHub's status once it moved past
/// queued.
pub fn news_of(record: &JobRecord) -> Option<GithubJobStatus> {
    match &record.status {
        JobStatus::Queued => None,
        JobStatus::InProgress { runner } => Some(GithubJobStatus::InProgress {
            runner: runner.clone(),
        }),
        JobStatus::Completed { conclusion } => Some(GithubJobStatus::Completed {
            conclusion: conclusion.clone(),
        }),
    }
}

/// Queue-wide settings; they are the store's, not a host's, so every host sees the same limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    /// Counted claims a job gets before a counted requeue (or a lapsed lease) sends it to the
    /// dead letter. Default 6 = the first claim plus the handler's default
    /// `job_retry_attempts` (5) retries, so the store's limit is a backstop that agrees with
    /// the handler's own dead-letter decision.
    pub max_attempts: u32,
    /// Delay before a job whose lease lapsed may be claimed again.
    pub reap_delay: Duration,
    /// How many finished job ids to remember, so a redelivered or reconciled `queued` event
    /// for a job that already ran is answered `AlreadyKnown` instead of running it twice.
    /// Oldest forgotten first; 0 remembers nothing.
    pub finished_capacity: usize,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            reap_delay: Duration::ZERO,
            finished_capacity: 10_000,
        }
    }
}

/// Answer to an enqueue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// The job is new and now queued.
    Enqueued,
    /// The job is queued, claimed, dead or recently finished already; nothing changed.
    AlreadyKnown,
}

/// Answer to job status news.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusOutcome {
    /// The queue has no record of the job. Completed news is remembered (as recently
    /// finished) so a late `queued` event for it is not enqueued.
    Unknown,
    /// The news is not newer than what the record has; nothing changed.
    Stale,
    /// The news was recorded on the record, which stays where it is (the claimer of a claimed
    /// job reads it from there).
    Recorded,
    /// A queued (unclaimed) job a runner took or that completed (or was cancelled) in GitHub,
    /// or a dead-lettered job that completed, was removed.
    Removed,
}

/// The host does not hold a live lease on the job (it lapsed, was reaped and maybe claimed by
/// another host, or the job is gone). The operation changed nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{host} holds no live lease on {job}")]
pub struct LeaseLost {
    /// The job.
    pub job: JobId,
    /// The host that asked.
    pub host: HostId,
}

/// An operator dead-letter operation named a job that is not in the dead letter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not in the dead letter")]
pub struct NotInDeadLetter(pub JobId);

/// Where a requeued job went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeued {
    /// Back in the queue, claimable from `ready_at`.
    Queued {
        /// When it may be claimed again.
        ready_at: Timestamp,
    },
    /// It had used up `max_attempts` counted claims, so it went to the dead letter instead.
    DeadLettered,
    /// GitHub already reported the job in progress or completed (news recorded while it was
    /// claimed or dead), so no runner of ours can get it: it was removed and remembered as
    /// finished instead of queued.
    Dropped,
}

/// One lapsed lease the reaper handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaped {
    /// The job.
    pub job: JobId,
    /// The host whose lease lapsed.
    pub host: HostId,
    /// Where the job went.
    pub outcome: Requeued,
}

/// How a job left the queue for good; remembered for idempotency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// When.
    pub at: Timestamp,
    /// How, as a code: a [`Completion`]'s display form, `github_completed(...)`,
    /// `github_in_progress(...)` or
    /// `removed_from_dead_letter`.
    pub how: String,
}

/// One line of an operator's queue listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSummary {
    /// The job.
    pub id: JobId,
    /// `owner/repo`.
    pub repo: String,
    /// Workflow run id (with `repo` and `id`, enough to ask GitHub about the job).
    pub run_id: u64,
    /// Template and tag, if the labels name one.
    pub spec: Option<VmSpec>,
    /// GitHub's status as last heard.
    pub status: JobStatus,
    /// Claims so far.
    pub attempts: u32,
    /// Time since the queue first heard of the job.
    pub age: Duration,
    /// Time until it may be claimed (queued jobs under a requeue delay), else zero.
    pub ready_in: Duration,
    /// The lease, for claimed jobs.
    pub lease: Option<Lease>,
    /// Time in the dead letter, for dead jobs.
    pub dead_for: Option<Duration>,
    /// The latest reason in the history.
    pub last_reason: Option<String>,
}

impl JobSummary {
    /// Summarises a record as seen at `now`.
    pub fn of(r: &JobRecord, now: Timestamp) -> Self {
        Self {
            id: r.id,
            repo: format!("{}/{}", r.owner, r.repo),
            run_id: r.run_id,
            spec: r.spec.clone(),
            status: r.status.clone(),
            attempts: r.attempts,
            age: now.saturating_since(r.enqueued_at),
            ready_in: r.ready_at.saturating_since(now),
            lease: r.lease().cloned(),
            dead_for: match r.place {
                Place::Dead { since } => Some(now.saturating_since(since)),
                _ => None,
            },
            last_reason: r.history.last().map(|e| e.reason.clone()),
        }
    }
}

/// The whole queue for an operator CLI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueListing {
    /// Queued jobs in claim order.
    pub queued: Vec<JobSummary>,
    /// Claimed jobs, oldest claim first.
    pub claimed: Vec<JobSummary>,
    /// Dead jobs, oldest first.
    pub dead: Vec<JobSummary>,
}

/// A host as the registry sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInfo {
    /// The host.
    pub host: HostId,
    /// Its last heartbeat (Anklet's `last_update`).
    pub last_seen: Timestamp,
    /// Time since then.
    pub age: Duration,
    /// The heartbeat stopped: `age` is over the caller's `stale_after`.
    pub stale: bool,
    /// What the host reported with its last heartbeat (status, metrics JSON...), opaque.
    pub payload: String,
}

/// The job queue's operations. Time is always the `now` parameter: the store's one clock
/// (a Redis store uses the server's `TIME`, so hosts' clock skew cannot bend leases).
///
/// Every operation is atomic. Answers that are part of the semantics (`LeaseLost`,
/// `AlreadyKnown`...) are values in the `Ok` side; `Err(Self::Error)` is only for a store that
/// could not be reached or answered garbage, after which the caller cannot know whether the
/// operation happened (the handler retries; every operation is safe to retry).
pub trait JobQueue {
    /// Backend failure (I/O); `Infallible` for the in-memory store.
    type Error: std::error::Error;

    /// The queue's settings.
    fn settings(&self) -> &QueueSettings;

    /// Adds a job; idempotent on the job id (a duplicate delivery, a redelivery or a
    /// reconciliation of a known or recently finished job adds nothing).
    fn enqueue(&mut self, now: Timestamp, job: NewJob) -> Result<EnqueueOutcome, Self::Error>;

    /// Applies GitHub status news; forward only. A queued, unclaimed job that a runner took or
    /// that completed is removed, as is a dead job that completed; news for a claimed job is
    /// recorded on it for the claimer to read.
    fn job_status(
        &mut self,
        now: Timestamp,
        job: JobId,
        status: &GithubJobStatus,
    ) -> Result<StatusOutcome, Self::Error>;

    /// Atomically claims the oldest queued job this host can serve whose requeue delay has
    /// passed, under a lease of `lease` from `now`; returns the updated record.
    fn claim(
        &mut self,
        now: Timestamp,
        host: &HostId,
        filter: &ClaimFilter,
        lease: Duration,
    ) -> Result<Option<JobRecord>, Self::Error>;

    /// Extends a live lease held by `host` to `now + lease`; returns the new deadline.
    fn renew_lease(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        lease: Duration,
    ) -> Result<Result<Timestamp, LeaseLost>, Self::Error>;

    /// Removes a job the host holds, for good; remembered as recently finished.
    fn complete(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        outcome: &Completion,
    ) -> Result<Result<(), LeaseLost>, Self::Error>;

    /// Returns a job the host holds to the queue, claimable from `now + delay`, with the reason
    /// appended to its history. A counted requeue of a job that has used `max_attempts`
    /// counted claims sends it to the dead letter instead; a job GitHub already runs or
    /// completed is removed (`Dropped`).
    fn requeue(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        reason: &str,
        count_attempt: bool,
        delay: Duration,
    ) -> Result<Result<Requeued, LeaseLost>, Self::Error>;

    /// Moves a job the host holds to the dead letter, keeping its history.
    fn dead_letter(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        reason: &str,
    ) -> Result<Result<(), LeaseLost>, Self::Error>;

    /// Requeues (counted, reason `lease_expired`) or dead-letters every claimed job whose lease
    /// has lapsed at `now`, in job id order. Any live node may call it at any time.
    fn reap_expired(&mut self, now: Timestamp) -> Result<Vec<Reaped>, Self::Error>;

    /// The record of a queued, claimed or dead job.
    fn get(&self, job: JobId) -> Result<Option<JobRecord>, Self::Error>;

    /// How a recently finished (removed) job ended, while it is remembered.
    fn finished(&self, job: JobId) -> Result<Option<Finished>, Self::Error>;

    /// Queued, claimed and dead jobs with their ages.
    fn list(&self, now: Timestamp) -> Result<QueueListing, Self::Error>;

    /// How many jobs are queued, claimed and dead: what [`JobQueue::list`] would count, from
    /// the store's indexes without reading a record, so a periodic metrics refresh costs the
    /// same with ten or a hundred thousand jobs queued.
    fn depth(&self) -> Result<QueueDepth, Self::Error>;

    /// Full records of the dead letter, oldest first.
    fn list_dead(&self) -> Result<Vec<JobRecord>, Self::Error>;

    /// An operator gives a dead job another chance: queued, ready at once, attempts reset to
    /// zero, the reason appended to its history (or `Dropped` if GitHub runs or completed it).
    fn requeue_from_dead_letter(
        &mut self,
        now: Timestamp,
        job: JobId,
        reason: &str,
    ) -> Result<Result<Requeued, NotInDeadLetter>, Self::Error>;

    /// An operator removes a dead job for good (remembered as recently finished so a
    /// redelivery does not bring it back); returns its last record.
    fn remove_dead(
        &mut self,
        now: Timestamp,
        job: JobId,
    ) -> Result<Result<JobRecord, NotInDeadLetter>, Self::Error>;

    /// Records a host's heartbeat with what it reports.
    fn heartbeat(
        &mut self,
        now: Timestamp,
        host: &HostId,
        payload: &str,
    ) -> Result<(), Self::Error>;

    /// Every host that ever sent a heartbeat, by name, marking those silent for longer than
    /// `stale_after`.
    fn list_hosts(
        &self,
        now: Timestamp,
        stale_after: Duration,
    ) -> Result<Vec<HostInfo>, Self::Error>;
}

/// Executes one of the handler's store effects against any queue and builds the result the
/// handler expects: `Claim` → `Claimed`, the writes → `Stored` or `LeaseLost`. A requeue that
/// the store turned into a dead letter is still `Stored`: the host let go of the job either way.
pub fn execute<Q: JobQueue + ?Sized>(
    q: &mut Q,
    now: Timestamp,
    cmd: &StoreCmd,
) -> Result<EffectResult, Q::Error> {
    let written = |r: Result<(), LeaseLost>| match r {
        Ok(()) => EffectResult::Stored,
        Err(_) => EffectResult::LeaseLost,
    };
    Ok(match cmd {
        StoreCmd::Claim {
            host,
            filter,
            lease,
        } => EffectResult::Claimed(q.claim(now, host, filter, *lease)?.map(|r| r.claimed_job())),
        StoreCmd::RenewLease { job, host, lease } => {
            written(q.renew_lease(now, *job, host, *lease)?.map(|_| ()))
        }
        StoreCmd::Complete { job, host, outcome } => written(q.complete(now, *job, host, outcome)?),
        StoreCmd::Requeue {
            job,
            host,
            reason,
            count_attempt,
            delay,
        } => written(
            q.requeue(now, *job, host, reason.code(), *count_attempt, *delay)?
                .map(|_| ()),
        ),
        StoreCmd::DeadLetter { job, host, reason } => {
            written(q.dead_letter(now, *job, host, reason.code())?)
        }
    })
}

/// The queue operation of a handler's store effect, for runtimes that run [`Op`]s on a shared
/// store instead of calling [`JobQueue`] methods (the same mapping as [`execute`]).
pub fn store_op(cmd: &StoreCmd) -> super::txn::Op {
    use super::txn::Op;
    match cmd {
        StoreCmd::Claim {
            host,
            filter,
            lease,
        } => Op::Claim(host.clone(), filter.clone(), *lease),
        StoreCmd::RenewLease { job, host, lease } => Op::RenewLease(*job, host.clone(), *lease),
        StoreCmd::Complete { job, host, outcome } => {
            Op::Complete(*job, host.clone(), outcome.clone())
        }
        StoreCmd::Requeue {
            job,
            host,
            reason,
            count_attempt,
            delay,
        } => Op::Requeue(
            *job,
            host.clone(),
            reason.code().to_owned(),
            *count_attempt,
            *delay,
        ),
        StoreCmd::DeadLetter { job, host, reason } => {
            Op::DeadLetter(*job, host.clone(), reason.code().to_owned())
        }
    }
}

/// The handler's view of the reply to a [`store_op`] operation (the same mapping as
/// [`execute`]); `None` for a reply no store effect produces.
pub fn store_result(reply: super::txn::Reply) -> Option<EffectResult> {
    use super::txn::Reply;
    let written = |r: Result<(), LeaseLost>| match r {
        Ok(()) => EffectResult::Stored,
        Err(_) => EffectResult::LeaseLost,
    };
    Some(match reply {
        Reply::Claimed(record) => EffectResult::Claimed(record.map(|r| r.claimed_job())),
        Reply::Renewed(r) => written(r.map(|_| ())),
        Reply::Written(r) => written(r),
        Reply::Requeued(r) => written(r.map(|_| ())),
        _ => return None,
    })
}

/// Runs one [`Op`](super::txn::Op) on any queue: what a transaction store answers, for a queue
/// driven by method calls (the simulator's in-memory queue behind the receiver machine).
pub fn apply<Q: JobQueue + ?Sized>(
    q: &mut Q,
    now: Timestamp,
    op: super::txn::Op,
) -> Result<super::txn::Reply, Q::Error> {
    use super::txn::{Op, Reply};
    Ok(match op {
        Op::Enqueue(job) => Reply::Enqueued(q.enqueue(now, job)?),
        Op::Status(job, status) => Reply::Status(q.job_status(now, job, &status)?),
        Op::Claim(host, filter, lease) => Reply::Claimed(q.claim(now, &host, &filter, lease)?),
        Op::RenewLease(job, host, lease) => Reply::Renewed(q.renew_lease(now, job, &host, lease)?),
        Op::Complete(job, host, outcome) => Reply::Written(q.complete(now, job, &host, &outcome)?),
        Op::Requeue(job, host, reason, counted, delay) => {
            Reply::Requeued(q.requeue(now, job, &host, &reason, counted, delay)?)
        }
        Op::DeadLetter(job, host, reason) => {
            Reply::Written(q.dead_letter(now, job, &host, &reason)?)
        }
        Op::Reap => Reply::Reaped(q.reap_expired(now)?),
        Op::Get(job) => Reply::Record(q.get(job)?),
        Op::Finished(job) => Reply::Finished(q.finished(job)?),
        Op::List => Reply::Listing(q.list(now)?),
        Op::Depth => Reply::Depth(q.depth()?),
        Op::ListDead => Reply::Dead(q.list_dead()?),
        Op::RequeueDead(job, reason) => {
            Reply::DeadRequeued(q.requeue_from_dead_letter(now, job, &reason)?)
        }
        Op::RemoveDead(job) => Reply::DeadRemoved(q.remove_dead(now, job)?),
        Op::Heartbeat(host, payload) => {
            q.heartbeat(now, &host, &payload)?;
            Reply::Done
        }
        Op::Hosts(stale_after) => Reply::Hosts(q.list_hosts(now, stale_after)?),
    })
}
