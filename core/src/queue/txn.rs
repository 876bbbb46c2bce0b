//! The queue's operations as sans-IO transactions, so every persistent store (Redis, the
//! embedded store, an in-memory backend) runs the very same decisions.
//!
//! A store only has to answer two requests: [`Read`] (records, in claim order or by lease
//! expiry) and [`Commit`] (replace these records if their revisions are still the ones read,
//! all or nothing). An operation is a [`Txn`]: poll it for the next request, hand back the
//! answer, repeat until it is [`Step::Done`]. A commit whose revisions moved on (another host
//! got there first) restarts the operation from its first read, so the outcome is always one
//! of the serial outcomes: a job is claimed once, a lost lease changes nothing.
//!
//! Drivers are a few lines each: [`Store`] here for any blocking [`Backend`], and an async
//! loop in the tokio runtime. The revision is the store's, not the record's: a backend keeps a
//! counter per job and bumps it on every write.

use super::ops::{
    EnqueueOutcome, Finished, HostInfo, JobQueue, LeaseLost, NotInDeadLetter, QueueListing,
    QueueSettings, Reaped, Requeued, StatusOutcome,
};
use super::record::{JobRecord, JobStatus, Lease, NewJob, Place, REASON_LEASE_EXPIRED};
use super::rules::{depth, dropped_how, github_took, listing, return_to_queue};
use crate::handler::{Completion, GithubJobStatus};
use crate::ids::{HostId, JobId};
use crate::labels::ClaimFilter;
use crate::metrics::QueueDepth;
use crate::time::Timestamp;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How many queued records a claim reads first: the head of the queue usually has a job this
/// host can serve, and every record read is decoded.
pub const CLAIM_FIRST_PAGE: usize = 8;

/// How many queued records a claim reads per page after the first.
pub const CLAIM_PAGE: usize = 64;

/// Restarts after which an operation gives up (only a store that keeps changing under it, or
/// a broken backend, gets there).
pub const MAX_RESTARTS: u32 = 10_000;

/// A record with the store's revision of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    /// The store's revision; a commit must name it to replace the record.
    pub rev: u64,
    /// The record.
    pub record: JobRecord,
}

/// What a transaction needs to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// One job's record, and whether the job is remembered as finished.
    Job(JobId),
    /// Queued records in claim order ([`JobRecord::order_key`]), skipping `offset`, at most
    /// `limit`.
    Queued {
        /// Records to skip.
        offset: usize,
        /// Records to return at most.
        limit: usize,
    },
    /// Claimed records whose lease expired at this instant.
    Expired(Timestamp),
    /// Every record (operator listings).
    All,
    /// How many records each place holds, counted from the store's indexes without reading a
    /// record: the periodic metrics refresh asks this, so its cost must not follow the queue's
    /// length (reading every record of a 100k-job queue blocks Redis for about a second).
    Depth,
    /// A job's entry in the finished memory.
    Finished(JobId),
    /// The host registry.
    Hosts,
}

/// A backend's answer to a [`Read`].
#[allow(
    clippy::large_enum_variant,
    reason = "short-lived values moved once per request"
)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// Answer to [`Read::Job`].
    Job {
        /// The record, if the store holds one.
        record: Option<Versioned>,
        /// Whether the job is in the finished memory.
        finished: bool,
    },
    /// Answer to [`Read::Queued`], [`Read::Expired`] and [`Read::All`].
    Records(Vec<Versioned>),
    /// Answer to [`Read::Finished`].
    Finished(Option<Finished>),
    /// Answer to [`Read::Depth`].
    Depth(QueueDepth),
    /// Answer to [`Read::Hosts`]: host, last heartbeat, payload.
    Hosts(Vec<(HostId, Timestamp, String)>),
}

/// One record change inside a [`Commit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The job.
    pub id: JobId,
    /// The revision read; `None` means the job must have no record *and* must not be in the
    /// finished memory (only a new job is written unguarded by a revision, so an enqueue can
    /// commit without reading first and a redelivered job is still refused).
    pub expect: Option<u64>,
    /// The new record, or `None` to delete it.
    pub record: Option<JobRecord>,
}

/// Changes a backend applies all together, or not at all when any `expect` no longer holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Commit {
    /// Record writes, each guarded by the revision read.
    pub writes: Vec<Write>,
    /// Jobs to add to the finished memory (the backend forgets the oldest beyond its capacity).
    pub remember: Vec<(JobId, Finished)>,
    /// A heartbeat to record: host, when, payload.
    pub heartbeat: Option<(HostId, Timestamp, String)>,
}

/// What a transaction asks next.
#[allow(
    clippy::large_enum_variant,
    reason = "short-lived values moved once per request"
)]
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Answer with [`Txn::handle_read`].
    Read(Read),
    /// Apply and answer with [`Txn::handle_commit`].
    Commit(Commit),
    /// Finished with this reply.
    Done(Reply),
    /// The store kept changing under the operation; give up and report an error.
    Livelock,
}

/// The answer of a finished operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Of [`Op::Enqueue`].
    Enqueued(EnqueueOutcome),
    /// Of [`Op::Status`].
    Status(StatusOutcome),
    /// Of [`Op::Claim`].
    Claimed(Option<JobRecord>),
    /// Of [`Op::RenewLease`].
    Renewed(Result<Timestamp, LeaseLost>),
    /// Of [`Op::Complete`] and [`Op::DeadLetter`].
    Written(Result<(), LeaseLost>),
    /// Of [`Op::Requeue`].
    Requeued(Result<Requeued, LeaseLost>),
    /// Of [`Op::Reap`].
    Reaped(Vec<Reaped>),
    /// Of [`Op::Get`].
    Record(Option<JobRecord>),
    /// Of [`Op::Finished`].
    Finished(Option<Finished>),
    /// Of [`Op::List`].
    Listing(QueueListing),
    /// Of [`Op::Depth`].
    Depth(QueueDepth),
    /// Of [`Op::ListDead`].
    Dead(Vec<JobRecord>),
    /// Of [`Op::RequeueDead`].
    DeadRequeued(Result<Requeued, NotInDeadLetter>),
    /// Of [`Op::RemoveDead`].
    DeadRemoved(Result<JobRecord, NotInDeadLetter>),
    /// Of [`Op::Heartbeat`].
    Done,
    /// Of [`Op::Hosts`].
    Hosts(Vec<HostInfo>),
}

/// One queue operation with its arguments (see [`JobQueue`] for each one's meaning).
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// [`JobQueue::enqueue`].
    Enqueue(NewJob),
    /// [`JobQueue::job_status`].
    Status(JobId, GithubJobStatus),
    /// [`JobQueue::claim`].
    Claim(HostId, ClaimFilter, Duration),
    /// [`JobQueue::renew_lease`].
    RenewLease(JobId, HostId, Duration),
    /// [`JobQueue::complete`].
    Complete(JobId, HostId, Completion),
    /// [`JobQueue::requeue`]: job, host, reason, counted, delay.
    Requeue(JobId, HostId, String, bool, Duration),
    /// [`JobQueue::dead_letter`].
    DeadLetter(JobId, HostId, String),
    /// [`JobQueue::reap_expired`].
    Reap,
    /// [`JobQueue::get`].
    Get(JobId),
    /// [`JobQueue::finished`].
    Finished(JobId),
    /// [`JobQueue::list`].
    List,
    /// [`JobQueue::depth`].
    Depth,
    /// [`JobQueue::list_dead`].
    ListDead,
    /// [`JobQueue::requeue_from_dead_letter`].
    RequeueDead(JobId, String),
    /// [`JobQueue::remove_dead`].
    RemoveDead(JobId),
    /// [`JobQueue::heartbeat`].
    Heartbeat(HostId, String),
    /// [`JobQueue::list_hosts`].
    Hosts(Duration),
}

#[derive(Clone, Debug, PartialEq)]
enum Stage {
    /// Issue the first read (again after a conflict).
    Start,
    /// Issue this read.
    Read(Read),
    /// Waiting for a read's answer.
    AwaitRead(Read),
    /// Issue this commit; on success finish with the reply (or continue a reap).
    Commit(Commit, Reply),
    /// Waiting for a commit's answer.
    AwaitCommit(Reply),
    /// Finished.
    Done(Reply),
}

/// One operation in flight. See the module docs.
#[derive(Clone, Debug)]
pub struct Txn {
    op: Op,
    now: Timestamp,
    settings: QueueSettings,
    stage: Stage,
    restarts: u32,
    /// Reap progress: expired records still to handle, and what was done.
    reap_todo: Vec<Versioned>,
    reaped: Vec<Reaped>,
}

impl Txn {
    /// Starts `op` at `now` under the queue's `settings`.
    pub fn new(op: Op, now: Timestamp, settings: QueueSettings) -> Self {
        Self {
            op,
            now,
            settings,
            stage: Stage::Start,
            restarts: 0,
            reap_todo: Vec::new(),
            reaped: Vec::new(),
        }
    }

    /// The next request, or the reply.
    pub fn poll(&mut self) -> Step {
        if self.restarts > MAX_RESTARTS {
            return Step::Livelock;
        }
        match std::mem::replace(&mut self.stage, Stage::Start) {
            Stage::Start => {
                if let (Op::Enqueue(job), 0) = (&self.op, self.restarts) {
                    // Optimistic first try, one round trip: the guard refuses a job the store
                    // holds or remembers, and the restart reads to tell which.
                    let commit = put(job.id, None, JobRecord::new(job.clone(), self.now));
                    self.stage = Stage::AwaitCommit(Reply::Enqueued(EnqueueOutcome::Enqueued));
                    return Step::Commit(commit);
                }
                if let Some(read) = self.first_read() {
                    self.stage = Stage::AwaitRead(read.clone());
                    Step::Read(read)
                } else {
                    // Only a heartbeat needs no read.
                    let commit = self.heartbeat_commit();
                    self.stage = Stage::AwaitCommit(Reply::Done);
                    Step::Commit(commit)
                }
            }
            Stage::Read(read) => {
                self.stage = Stage::AwaitRead(read.clone());
                Step::Read(read)
            }
            Stage::Commit(commit, reply) => {
                self.stage = Stage::AwaitCommit(reply);
                Step::Commit(commit)
            }
            Stage::Done(reply) => {
                self.stage = Stage::Done(reply.clone());
                Step::Done(reply)
            }
            waiting @ (Stage::AwaitRead(_) | Stage::AwaitCommit(_)) => {
                // Polled again without an answer: ask again (idempotent for reads; a commit
                // repeated after an unknown outcome is guarded by its revisions).
                self.stage = waiting.clone();
                match waiting {
                    Stage::AwaitRead(read) => Step::Read(read),
                    _ => Step::Livelock,
                }
            }
        }
    }

    /// Hands back the answer to the last [`Step::Read`].
    pub fn handle_read(&mut self, fetched: Fetched) {
        let Stage::AwaitRead(read) = std::mem::replace(&mut self.stage, Stage::Start) else {
            return;
        };
        self.stage = self.decide(read, fetched);
    }

    /// Hands back whether the last [`Step::Commit`] was applied.
    pub fn handle_commit(&mut self, applied: bool) {
        let Stage::AwaitCommit(reply) = std::mem::replace(&mut self.stage, Stage::Start) else {
            return;
        };
        if !applied {
            self.restarts += 1;
            if matches!(self.op, Op::Reap) {
                // Re-read the expired set: the record that moved may no longer be expired.
                self.reap_todo.clear();
            }
            self.stage = Stage::Start;
            return;
        }
        self.stage = match (&self.op, reply) {
            (Op::Reap, Reply::Reaped(mut one)) => {
                self.reaped.append(&mut one);
                self.next_reap()
            }
            (_, reply) => Stage::Done(reply),
        };
    }

    fn first_read(&self) -> Option<Read> {
        Some(match &self.op {
            Op::Enqueue(job) => Read::Job(job.id),
            Op::Status(job, _)
            | Op::RenewLease(job, ..)
            | Op::Complete(job, ..)
            | Op::Requeue(job, ..)
            | Op::DeadLetter(job, ..)
            | Op::Get(job)
            | Op::RequeueDead(job, _)
            | Op::RemoveDead(job) => Read::Job(*job),
            Op::Claim(..) => Read::Queued {
                offset: 0,
                limit: CLAIM_FIRST_PAGE,
            },
            Op::Reap => Read::Expired(self.now),
            Op::Finished(job) => Read::Finished(*job),
            Op::List | Op::ListDead => Read::All,
            Op::Depth => Read::Depth,
            Op::Hosts(_) => Read::Hosts,
            Op::Heartbeat(..) => return None,
        })
    }

    fn heartbeat_commit(&self) -> Commit {
        match &self.op {
            Op::Heartbeat(host, payload) => Commit {
                heartbeat: Some((host.clone(), self.now, payload.clone())),
                ..Commit::default()
            },
            _ => Commit::default(),
        }
    }

    fn decide(&mut self, read: Read, fetched: Fetched) -> Stage {
        let now = self.now;
        match (self.op.clone(), fetched) {
            (Op::Enqueue(job), Fetched::Job { record, finished }) => {
                if record.is_some() || finished {
                    return Stage::Done(Reply::Enqueued(EnqueueOutcome::AlreadyKnown));
                }
                let id = job.id;
                let commit = put(id, None, JobRecord::new(job, now));
                Stage::Commit(commit, Reply::Enqueued(EnqueueOutcome::Enqueued))
            }
            (Op::Status(job, status), Fetched::Job { record, finished }) => {
                self.decide_status(job, &status, record, finished)
            }
            (Op::Claim(host, filter, lease), Fetched::Records(page)) => {
                let Read::Queued { offset, limit } = read else {
                    return Stage::Done(Reply::Claimed(None));
                };
                let pick = page.iter().find(|v| {
                    v.record.place == Place::Queued
                        && v.record.status.waits_for_runner()
                        && v.record.ready_at <= now
                        && filter.admits(v.record.id)
                        && filter.accepts_spec(&v.record.owner, v.record.spec.as_ref())
                });
                match pick {
                    Some(v) => {
                        let mut r = v.record.clone();
                        r.place = Place::Claimed {
                            lease: Lease {
                                host,
                                claimed_at: now,
                                expires_at: now + lease,
                            },
                        };
                        r.attempts = r.attempts.saturating_add(1);
                        r.last_claimed_at = Some(now);
                        r.updated_at = now;
                        let commit = put(r.id, Some(v.rev), r.clone());
                        Stage::Commit(commit, Reply::Claimed(Some(r)))
                    }
                    None if page.len() >= limit => Stage::Read(Read::Queued {
                        offset: offset + limit,
                        limit: CLAIM_PAGE,
                    }),
                    None => Stage::Done(Reply::Claimed(None)),
                }
            }
            (Op::RenewLease(job, host, lease), Fetched::Job { record, .. }) => {
                match held(record, job, &host, now) {
                    Err(lost) => Stage::Done(Reply::Renewed(Err(lost))),
                    Ok(mut v) => {
                        let expires_at = now + lease;
                        if let Place::Claimed { lease } = &mut v.record.place {
                            lease.expires_at = expires_at;
                        }
                        v.record.updated_at = now;
                        let commit = put(job, Some(v.rev), v.record);
                        Stage::Commit(commit, Reply::Renewed(Ok(expires_at)))
                    }
                }
            }
            (Op::Complete(job, host, outcome), Fetched::Job { record, .. }) => {
                match held(record, job, &host, now) {
                    Err(lost) => Stage::Done(Reply::Written(Err(lost))),
                    Ok(v) => {
                        let commit = remove(job, v.rev, now, outcome.to_string());
                        Stage::Commit(commit, Reply::Written(Ok(())))
                    }
                }
            }
            (Op::Requeue(job, host, reason, counted, delay), Fetched::Job { record, .. }) => {
                match held(record, job, &host, now) {
                    Err(lost) => Stage::Done(Reply::Requeued(Err(lost))),
                    Ok(mut v) => {
                        let max = self.settings.max_attempts;
                        let outcome = return_to_queue(
                            &mut v.record,
                            now,
                            &reason,
                            &host,
                            counted,
                            delay,
                            max,
                        );
                        let commit = after_return(v, outcome, now);
                        Stage::Commit(commit, Reply::Requeued(Ok(outcome)))
                    }
                }
            }
            (Op::DeadLetter(job, host, reason), Fetched::Job { record, .. }) => {
                match held(record, job, &host, now) {
                    Err(lost) => Stage::Done(Reply::Written(Err(lost))),
                    Ok(mut v) => {
                        v.record.place = Place::Dead { since: now };
                        v.record.note(now, &reason, Some(&host));
                        let commit = put(job, Some(v.rev), v.record);
                        Stage::Commit(commit, Reply::Written(Ok(())))
                    }
                }
            }
            (Op::Reap, Fetched::Records(expired)) => {
                let mut todo = expired;
                todo.sort_by_key(|v| std::cmp::Reverse(v.record.id));
                self.reap_todo = todo;
                self.next_reap()
            }
            (Op::Get(_), Fetched::Job { record, .. }) => {
                Stage::Done(Reply::Record(record.map(|v| v.record)))
            }
            (Op::Finished(_), Fetched::Finished(f)) => Stage::Done(Reply::Finished(f)),
            (Op::List, Fetched::Records(all)) => {
                Stage::Done(Reply::Listing(listing(all.iter().map(|v| &v.record), now)))
            }
            (Op::Depth, Fetched::Depth(depth)) => Stage::Done(Reply::Depth(depth)),
            (Op::ListDead, Fetched::Records(all)) => {
                let mut dead: Vec<(Timestamp, JobRecord)> = all
                    .into_iter()
                    .filter_map(|v| match v.record.place {
                        Place::Dead { since } => Some((since, v.record)),
                        _ => None,
                    })
                    .collect();
                dead.sort_by_key(|(since, r)| (*since, r.id));
                Stage::Done(Reply::Dead(dead.into_iter().map(|(_, r)| r).collect()))
            }
            (Op::RequeueDead(job, reason), Fetched::Job { record, .. }) => match record {
                Some(mut v) if matches!(v.record.place, Place::Dead { .. }) => {
                    v.record.note(now, &reason, None);
                    let outcome = if !v.record.status.waits_for_runner() {
                        Requeued::Dropped
                    } else {
                        v.record.place = Place::Queued;
                        v.record.attempts = 0;
                        v.record.uncounted = 0;
                        v.record.ready_at = now;
                        Requeued::Queued { ready_at: now }
                    };
                    let commit = after_return(v, outcome, now);
                    Stage::Commit(commit, Reply::DeadRequeued(Ok(outcome)))
                }
                _ => Stage::Done(Reply::DeadRequeued(Err(NotInDeadLetter(job)))),
            },
            (Op::RemoveDead(job), Fetched::Job { record, .. }) => match record {
                Some(v) if matches!(v.record.place, Place::Dead { .. }) => {
                    let how = "removed_from_dead_letter".to_owned();
                    let commit = remove(job, v.rev, now, how);
                    Stage::Commit(commit, Reply::DeadRemoved(Ok(v.record)))
                }
                _ => Stage::Done(Reply::DeadRemoved(Err(NotInDeadLetter(job)))),
            },
            (Op::Hosts(stale_after), Fetched::Hosts(hosts)) => {
                let mut infos: Vec<HostInfo> = hosts
                    .into_iter()
                    .map(|(host, at, payload)| {
                        let age = now.saturating_since(at);
                        HostInfo {
                            host,
                            last_seen: at,
                            age,
                            stale: age > stale_after,
                            payload,
                        }
                    })
                    .collect();
                infos.sort_by(|a, b| a.host.cmp(&b.host));
                Stage::Done(Reply::Hosts(infos))
            }
            // A backend answered with the wrong shape: read again.
            _ => {
                self.restarts += 1;
                Stage::Start
            }
        }
    }

    fn decide_status(
        &self,
        job: JobId,
        status: &GithubJobStatus,
        record: Option<Versioned>,
        finished: bool,
    ) -> Stage {
        let now = self.now;
        let news = JobStatus::from(status);
        let Some(mut v) = record else {
            // Remembered, so a `queued` event that arrives late does not enqueue a job that a
            // runner already took or that is over.
            if let Some(how) = github_took(&news)
                && !finished
            {
                let commit = Commit {
                    remember: vec![(job, Finished { at: now, how })],
                    ..Commit::default()
                };
                return Stage::Commit(commit, Reply::Status(StatusOutcome::Unknown));
            }
            return Stage::Done(Reply::Status(StatusOutcome::Unknown));
        };
        if news.rank() <= v.record.status.rank() {
            return Stage::Done(Reply::Status(StatusOutcome::Stale));
        }
        v.record.status = news.clone();
        v.record.updated_at = now;
        let leaves = match (&v.record.place, &news) {
            // Waiting for a runner no more: a runner took it (ours or another) or it is over.
            (Place::Queued, _) => github_took(&news),
            (Place::Dead { .. }, JobStatus::Completed { .. }) => github_took(&news),
            _ => None,
        };
        match leaves {
            Some(how) => {
                let commit = remove(job, v.rev, now, how);
                Stage::Commit(commit, Reply::Status(StatusOutcome::Removed))
            }
            None => {
                let commit = put(job, Some(v.rev), v.record);
                Stage::Commit(commit, Reply::Status(StatusOutcome::Recorded))
            }
        }
    }

    /// Handles the next expired record of a reap, one commit each.
    fn next_reap(&mut self) -> Stage {
        let now = self.now;
        while let Some(mut v) = self.reap_todo.pop() {
            let Some(lease) = v.record.lease().cloned() else {
                continue;
            };
            if lease.is_live(now) {
                continue;
            }
            let max = self.settings.max_attempts;
            let delay = self.settings.reap_delay;
            let job = v.record.id;
            let outcome = return_to_queue(
                &mut v.record,
                now,
                REASON_LEASE_EXPIRED,
                &lease.host,
                true,
                delay,
                max,
            );
            let commit = after_return(v, outcome, now);
            let one = Reaped {
                job,
                host: lease.host,
                outcome,
            };
            return Stage::Commit(commit, Reply::Reaped(vec![one]));
        }
        let mut reaped = std::mem::take(&mut self.reaped);
        reaped.sort_by_key(|r| r.job);
        Stage::Done(Reply::Reaped(reaped))
    }
}

/// The record `host` holds a live lease on, or `LeaseLost`.
fn held(
    record: Option<Versioned>,
    job: JobId,
    host: &HostId,
    now: Timestamp,
) -> Result<Versioned, LeaseLost> {
    match record {
        Some(v) if v.record.is_held_by(host, now) => Ok(v),
        _ => Err(LeaseLost {
            job,
            host: host.clone(),
        }),
    }
}

fn put(id: JobId, expect: Option<u64>, record: JobRecord) -> Commit {
    Commit {
        writes: vec![Write {
            id,
            expect,
            record: Some(record),
        }],
        ..Commit::default()
    }
}

fn remove(id: JobId, rev: u64, now: Timestamp, how: String) -> Commit {
    Commit {
        writes: vec![Write {
            id,
            expect: Some(rev),
            record: None,
        }],
        remember: vec![(id, Finished { at: now, how })],
        heartbeat: None,
    }
}

/// The commit for a job that left a host: written back, or removed when it was dropped.
fn after_return(v: Versioned, outcome: Requeued, now: Timestamp) -> Commit {
    let id = v.record.id;
    match outcome {
        Requeued::Dropped => remove(id, v.rev, now, dropped_how(&v.record)),
        _ => put(id, Some(v.rev), v.record),
    }
}

/// A blocking store backend: answers reads and applies commits atomically.
pub trait Backend {
    /// Backend failure (I/O, protocol).
    type Error: std::error::Error + 'static;

    /// Answers a read.
    fn read(&mut self, read: &Read) -> Result<Fetched, Self::Error>;

    /// Applies a commit if every `expect` still holds; `Ok(false)` when one does not.
    fn commit(&mut self, commit: &Commit) -> Result<bool, Self::Error>;
}

/// Why a [`Store`] operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError<E: std::error::Error + 'static> {
    /// The backend failed; the operation may or may not have been applied.
    #[error("store backend failed: {0}")]
    Backend(#[source] E),
    /// The store kept changing under the operation.
    #[error("store kept changing; gave up after {MAX_RESTARTS} restarts")]
    Livelock,
    /// The transaction finished with a reply of another operation (a bug).
    #[error("store returned a reply of the wrong kind")]
    WrongReply,
}

/// Runs a transaction to its reply against a blocking backend: the whole blocking driver.
pub fn drive<B: Backend>(backend: &mut B, mut txn: Txn) -> Result<Reply, StoreError<B::Error>> {
    loop {
        match txn.poll() {
            Step::Read(read) => txn.handle_read(backend.read(&read).map_err(StoreError::Backend)?),
            Step::Commit(commit) => {
                txn.handle_commit(backend.commit(&commit).map_err(StoreError::Backend)?)
            }
            Step::Done(reply) => return Ok(reply),
            Step::Livelock => return Err(StoreError::Livelock),
        }
    }
}

/// A queue over any blocking [`Backend`], implementing [`JobQueue`] by driving [`Txn`]s with a
/// clock-free `now` from the caller.
#[derive(Debug)]
pub struct Store<B> {
    backend: RefCell<B>,
    settings: QueueSettings,
}

impl<B: Backend> Store<B> {
    /// A queue over `backend` with these settings.
    pub fn new(backend: B, settings: QueueSettings) -> Self {
        Self {
            backend: RefCell::new(backend),
            settings,
        }
    }

    /// The backend, for store-specific operations (close, compact...).
    pub fn backend(&self) -> std::cell::RefMut<'_, B> {
        self.backend.borrow_mut()
    }

    /// Runs one operation at `now`.
    pub fn run(&self, now: Timestamp, op: Op) -> Result<Reply, StoreError<B::Error>> {
        let txn = Txn::new(op, now, self.settings.clone());
        drive(&mut *self.backend.borrow_mut(), txn)
    }
}

macro_rules! reply {
    ($self:ident, $now:expr, $op:expr, $pat:pat => $out:expr) => {
        match $self.run($now, $op)? {
            $pat => Ok($out),
            _ => Err(StoreError::WrongReply),
        }
    };
}

impl<B: Backend> JobQueue for Store<B> {
    type Error = StoreError<B::Error>;

    fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    fn enqueue(&mut self, now: Timestamp, job: NewJob) -> Result<EnqueueOutcome, Self::Error> {
        reply!(self, now, Op::Enqueue(job), Reply::Enqueued(o) => o)
    }

    fn job_status(
        &mut self,
        now: Timestamp,
        job: JobId,
        status: &GithubJobStatus,
    ) -> Result<StatusOutcome, Self::Error> {
        reply!(self, now, Op::Status(job, status.clone()), Reply::Status(o) => o)
    }

    fn claim(
        &mut self,
        now: Timestamp,
        host: &HostId,
        filter: &ClaimFilter,
        lease: Duration,
    ) -> Result<Option<JobRecord>, Self::Error> {
        let op = Op::Claim(host.clone(), filter.clone(), lease);
        reply!(self, now, op, Reply::Claimed(o) => o)
    }

    fn renew_lease(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        lease: Duration,
    ) -> Result<Result<Timestamp, LeaseLost>, Self::Error> {
        reply!(self, now, Op::RenewLease(job, host.clone(), lease), Reply::Renewed(o) => o)
    }

    fn complete(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        outcome: &Completion,
    ) -> Result<Result<(), LeaseLost>, Self::Error> {
        let op = Op::Complete(job, host.clone(), outcome.clone());
        reply!(self, now, op, Reply::Written(o) => o)
    }

    fn requeue(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        reason: &str,
        count_attempt: bool,
        delay: Duration,
    ) -> Result<Result<Requeued, LeaseLost>, Self::Error> {
        let op = Op::Requeue(job, host.clone(), reason.to_owned(), count_attempt, delay);
        reply!(self, now, op, Reply::Requeued(o) => o)
    }

    fn dead_letter(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        reason: &str,
    ) -> Result<Result<(), LeaseLost>, Self::Error> {
        let op = Op::DeadLetter(job, host.clone(), reason.to_owned());
        reply!(self, now, op, Reply::Written(o) => o)
    }

    fn reap_expired(&mut self, now: Timestamp) -> Result<Vec<Reaped>, Self::Error> {
        reply!(self, now, Op::Reap, Reply::Reaped(o) => o)
    }

    fn get(&self, job: JobId) -> Result<Option<JobRecord>, Self::Error> {
        reply!(self, Timestamp::default(), Op::Get(job), Reply::Record(o) => o)
    }

    fn finished(&self, job: JobId) -> Result<Option<Finished>, Self::Error> {
        reply!(self, Timestamp::default(), Op::Finished(job), Reply::Finished(o) => o)
    }

    fn list(&self, now: Timestamp) -> Result<QueueListing, Self::Error> {
        reply!(self, now, Op::List, Reply::Listing(o) => o)
    }

    fn depth(&self) -> Result<QueueDepth, Self::Error> {
        reply!(self, Timestamp::default(), Op::Depth, Reply::Depth(o) => o)
    }

    fn list_dead(&self) -> Result<Vec<JobRecord>, Self::Error> {
        reply!(self, Timestamp::default(), Op::ListDead, Reply::Dead(o) => o)
    }

    fn requeue_from_dead_letter(
        &mut self,
        now: Timestamp,
        job: JobId,
        reason: &str,
    ) -> Result<Result<Requeued, NotInDeadLetter>, Self::Error> {
        let op = Op::RequeueDead(job, reason.to_owned());
        reply!(self, now, op, Reply::DeadRequeued(o) => o)
    }

    fn remove_dead(
        &mut self,
        now: Timestamp,
        job: JobId,
    ) -> Result<Result<JobRecord, NotInDeadLetter>, Self::Error> {
        reply!(self, now, Op::RemoveDead(job), Reply::DeadRemoved(o) => o)
    }

    fn heartbeat(
        &mut self,
        now: Timestamp,
        host: &HostId,
        payload: &str,
    ) -> Result<(), Self::Error> {
        let op = Op::Heartbeat(host.clone(), payload.to_owned());
        reply!(self, now, op, Reply::Done => ())
    }

    fn list_hosts(
        &self,
        now: Timestamp,
        stale_after: Duration,
    ) -> Result<Vec<HostInfo>, Self::Error> {
        reply!(self, now, Op::Hosts(stale_after), Reply::Hosts(o) => o)
    }
}

/// An in-memory [`Backend`]: what the persistent backends do, in ordered maps. It checks the
/// transaction machines without any I/O and is the template for real backends.
#[derive(Clone, Debug, Default)]
pub struct MemoryBackend {
    records: BTreeMap<JobId, Versioned>,
    finished: BTreeMap<JobId, Finished>,
    finished_order: BTreeSet<(Timestamp, JobId)>,
    finished_capacity: usize,
    hosts: BTreeMap<HostId, (Timestamp, String)>,
    revision: u64,
}

impl MemoryBackend {
    /// An empty backend remembering at most `finished_capacity` finished jobs.
    pub fn new(finished_capacity: usize) -> Self {
        Self {
            finished_capacity,
            ..Self::default()
        }
    }
}

impl Backend for MemoryBackend {
    type Error = std::convert::Infallible;

    fn read(&mut self, read: &Read) -> Result<Fetched, Self::Error> {
        Ok(match read {
            Read::Job(id) => Fetched::Job {
                record: self.records.get(id).cloned(),
                finished: self.finished.contains_key(id),
            },
            Read::Queued { offset, limit } => {
                let mut queued: Vec<&Versioned> = self
                    .records
                    .values()
                    .filter(|v| v.record.place == Place::Queued)
                    .collect();
                queued.sort_by_key(|v| v.record.order_key());
                Fetched::Records(
                    queued
                        .into_iter()
                        .skip(*offset)
                        .take(*limit)
                        .cloned()
                        .collect(),
                )
            }
            Read::Expired(now) => Fetched::Records(
                self.records
                    .values()
                    .filter(|v| v.record.lease().is_some_and(|l| !l.is_live(*now)))
                    .cloned()
                    .collect(),
            ),
            Read::All => Fetched::Records(self.records.values().cloned().collect()),
            Read::Depth => Fetched::Depth(depth(self.records.values().map(|v| &v.record))),
            Read::Finished(id) => Fetched::Finished(self.finished.get(id).cloned()),
            Read::Hosts => Fetched::Hosts(
                self.hosts
                    .iter()
                    .map(|(h, (at, p))| (h.clone(), *at, p.clone()))
                    .collect(),
            ),
        })
    }

    fn commit(&mut self, commit: &Commit) -> Result<bool, Self::Error> {
        let guards_hold = commit.writes.iter().all(|w| {
            self.records.get(&w.id).map(|v| v.rev) == w.expect
                && (w.expect.is_some() || !self.finished.contains_key(&w.id))
        });
        if !guards_hold {
            return Ok(false);
        }
        for w in &commit.writes {
            match &w.record {
                Some(record) => {
                    self.revision += 1;
                    let v = Versioned {
                        rev: self.revision,
                        record: record.clone(),
                    };
                    self.records.insert(w.id, v);
                }
                None => {
                    self.records.remove(&w.id);
                }
            }
        }
        for (id, f) in &commit.remember {
            remember(
                &mut self.finished,
                &mut self.finished_order,
                self.finished_capacity,
                *id,
                f.clone(),
            );
        }
        if let Some((host, at, payload)) = &commit.heartbeat {
            self.hosts.insert(host.clone(), (*at, payload.clone()));
        }
        Ok(true)
    }
}

/// Adds a job to a bounded finished memory, forgetting the oldest beyond `capacity`. Shared by
/// every backend that keeps the memory in maps.
pub fn remember(
    finished: &mut BTreeMap<JobId, Finished>,
    order: &mut BTreeSet<(Timestamp, JobId)>,
    capacity: usize,
    job: JobId,
    entry: Finished,
) {
    if capacity == 0 {
        return;
    }
    let at = entry.at;
    if let Some(old) = finished.insert(job, entry) {
        order.remove(&(old.at, job));
    }
    order.insert((at, job));
    while finished.len() > capacity {
        let Some((_, id)) = order.pop_first() else {
            break;
        };
        finished.remove(&id);
    }
}
