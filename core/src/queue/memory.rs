//! The in-memory store: the reference implementation of the queue semantics, used by the
//! simulator and by tests, and the model other stores are checked against.

use super::ops::{
    EnqueueOutcome, Finished, HostInfo, JobQueue, LeaseLost, NotInDeadLetter, QueueListing,
    QueueSettings, Reaped, Requeued, StatusOutcome,
};
use super::record::{JobRecord, JobStatus, Lease, Loaded, NewJob, Place, REASON_LEASE_EXPIRED};
use super::rules::{depth, dropped_how, github_took, listing, return_to_queue};
use crate::handler::{Completion, EffectResult, GithubJobStatus, StoreCmd};
use crate::ids::{HostId, JobId};
use crate::labels::ClaimFilter;
use crate::metrics::QueueDepth;
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::time::Duration;

/// A host's last heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Heartbeat {
    at: Timestamp,
    payload: String,
}

/// The queue held in ordered maps, so every answer is deterministic. Each method is one atomic
/// operation of [`JobQueue`]; the inherent methods return the semantic answer directly (this
/// store cannot fail), the trait wraps them in `Ok`.
///
/// ```
/// use anklet_core::handler::{Completion, EffectResult, StoreCmd};
/// use anklet_core::ids::{HostId, JobId};
/// use anklet_core::labels::ClaimFilter;
/// use anklet_core::queue::{EnqueueOutcome, MemoryQueue, NewJob, QueueSettings};
/// use anklet_core::time::Timestamp;
/// use std::time::Duration;
///
/// let mut q = MemoryQueue::new(QueueSettings::default());
/// let job = NewJob {
///     id: JobId(7),
///     run_id: 70,
///     owner: "acme".into(),
///     repo: "app".into(),
///     labels: vec!["self-hosted".into(), "anka-template:84266873-da90".into()],
///     payload: "{}".into(),
/// };
/// let now = Timestamp::from_millis(1_000);
/// assert_eq!(q.enqueue(now, job.clone()), EnqueueOutcome::Enqueued);
/// assert_eq!(q.enqueue(now, job), EnqueueOutcome::AlreadyKnown);
///
/// let host = HostId("mac-1".into());
/// let claim = StoreCmd::Claim {
///     host: host.clone(),
///     filter: ClaimFilter::default(),
///     lease: Duration::from_secs(30),
/// };
/// let EffectResult::Claimed(Some(claimed)) = q.execute(now, &claim) else {
///     panic!("nothing to claim");
/// };
/// assert_eq!(claimed.attempt, 1);
/// let done = StoreCmd::Complete {
///     job: JobId(7),
///     host,
///     outcome: Completion::Finished { conclusion: Some("success".into()) },
/// };
/// assert_eq!(q.execute(now, &done), EffectResult::Stored);
/// assert!(q.get(JobId(7)).is_none());
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryQueue {
    settings: QueueSettings,
    jobs: BTreeMap<JobId, JobRecord>,
    /// Claim order keys `(enqueued_at, id)` of every queued record, and maybe of some that
    /// have left the queue since (claim drops those when it meets them). A claim then walks
    /// the queue in claim order instead of scanning every record, claimed ones included.
    queued: BTreeSet<(Timestamp, JobId)>,
    finished: BTreeMap<JobId, Finished>,
    /// `finished` ordered by (when, id), to forget the oldest first.
    finished_order: BTreeSet<(Timestamp, JobId)>,
    hosts: BTreeMap<HostId, Heartbeat>,
}

impl MemoryQueue {
    /// An empty queue with these settings.
    pub fn new(settings: QueueSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// The queue's settings.
    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    /// Executes a handler store effect (see [`super::execute`]); the simulator drives the
    /// handler's effects straight into this.
    pub fn execute(&mut self, now: Timestamp, cmd: &StoreCmd) -> EffectResult {
        match super::ops::execute(self, now, cmd) {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }

    /// Every record as the JSON a store would persist, by job id (jobs only: the finished
    /// memory and host registry are not exported).
    pub fn export(&self) -> Vec<(JobId, String)> {
        self.jobs
            .values()
            .filter_map(|r| r.encode().ok().map(|json| (r.id, json)))
            .collect()
    }

    /// Loads stored records (replacing any with the same id), as a persistent store does at
    /// start: a record that does not decode goes to the dead letter as a
    /// [`JobRecord::corrupt`] placeholder with reason `corrupt_record`; the errors are returned
    /// for the log.
    pub fn restore<'a>(
        &mut self,
        now: Timestamp,
        stored: impl IntoIterator<Item = (JobId, &'a [u8])>,
    ) -> Vec<(JobId, super::DecodeError)> {
        let mut errors = Vec::new();
        for (id, bytes) in stored {
            let record = match JobRecord::load(id, bytes, now) {
                Loaded::Record(r) => r,
                Loaded::Corrupt { placeholder, error } => {
                    errors.push((id, error));
                    placeholder
                }
            };
            self.queued.insert(record.order_key());
            self.jobs.insert(id, record);
        }
        errors
    }

    /// See [`JobQueue::enqueue`].
    pub fn enqueue(&mut self, now: Timestamp, job: NewJob) -> EnqueueOutcome {
        if self.jobs.contains_key(&job.id) || self.finished.contains_key(&job.id) {
            return EnqueueOutcome::AlreadyKnown;
        }
        let record = JobRecord::new(job, now);
        self.queued.insert(record.order_key());
        self.jobs.insert(record.id, record);
        EnqueueOutcome::Enqueued
    }

    /// See [`JobQueue::job_status`].
    pub fn job_status(
        &mut self,
        now: Timestamp,
        job: JobId,
        status: &GithubJobStatus,
    ) -> StatusOutcome {
        let news = JobStatus::from(status);
        let Some(record) = self.jobs.get_mut(&job) else {
            if let Some(how) = github_took(&news)
                && !self.finished.contains_key(&job)
            {
                self.remember(job, now, how);
            }
            return StatusOutcome::Unknown;
        };
        if news.rank() <= record.status.rank() {
            return StatusOutcome::Stale;
        }
        record.status = news.clone();
        record.updated_at = now;
        let leaves = match (&record.place, &news) {
            (Place::Queued, _) => github_took(&news),
            (Place::Dead { .. }, JobStatus::Completed { .. }) => github_took(&news),
            _ => None,
        };
        match leaves {
            Some(how) => {
                self.jobs.remove(&job);
                self.remember(job, now, how);
                StatusOutcome::Removed
            }
            None => StatusOutcome::Recorded,
        }
    }

    /// See [`JobQueue::claim`].
    pub fn claim(
        &mut self,
        now: Timestamp,
        host: &HostId,
        filter: &ClaimFilter,
        lease: Duration,
    ) -> Option<JobRecord> {
        // The first queued record in claim order that is ready and fits the filter.
        let mut left = Vec::new();
        let mut found = None;
        for &key in &self.queued {
            match self.jobs.get(&key.1) {
                Some(r) if r.place == Place::Queued && r.order_key() == key => {
                    if r.status.waits_for_runner()
                        && r.ready_at <= now
                        && filter.admits(r.id)
                        && filter.accepts_spec(&r.owner, r.spec.as_ref())
                    {
                        found = Some(key);
                        break;
                    }
                }
                _ => left.push(key),
            }
        }
        for key in left {
            self.queued.remove(&key);
        }
        let key = found?;
        self.queued.remove(&key);
        let record = self.jobs.get_mut(&key.1)?;
        record.place = Place::Claimed {
            lease: Lease {
                host: host.clone(),
                claimed_at: now,
                expires_at: now + lease,
            },
        };
        record.attempts = record.attempts.saturating_add(1);
        record.last_claimed_at = Some(now);
        record.updated_at = now;
        Some(record.clone())
    }

    /// The record `host` holds a live lease on, or `LeaseLost`.
    fn held(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
    ) -> Result<&mut JobRecord, LeaseLost> {
        match self.jobs.get_mut(&job) {
            Some(r) if r.is_held_by(host, now) => Ok(r),
            _ => Err(LeaseLost {
                job,
                host: host.clone(),
            }),
        }
    }

    /// See [`JobQueue::renew_lease`].
    pub fn renew_lease(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        lease: Duration,
    ) -> Result<Timestamp, LeaseLost> {
        let record = self.held(now, job, host)?;
        let expires_at = now + lease;
        if let Place::Claimed { lease } = &mut record.place {
            lease.expires_at = expires_at;
        }
        record.updated_at = now;
        Ok(expires_at)
    }

    /// See [`JobQueue::complete`].
    pub fn complete(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        outcome: &Completion,
    ) -> Result<(), LeaseLost> {
        self.held(now, job, host)?;
        self.jobs.remove(&job);
        self.remember(job, now, outcome.to_string());
        Ok(())
    }

    /// See [`JobQueue::requeue`].
    pub fn requeue(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        reason: &str,
        count_attempt: bool,
        delay: Duration,
    ) -> Result<Requeued, LeaseLost> {
        let max_attempts = self.settings.max_attempts;
        let record = self.held(now, job, host)?;
        let outcome = return_to_queue(
            record,
            now,
            reason,
            host,
            count_attempt,
            delay,
            max_attempts,
        );
        let key = record.order_key();
        self.queued_again(key, outcome);
        self.drop_if_completed(now, job, outcome);
        Ok(outcome)
    }

    /// See [`JobQueue::dead_letter`].
    pub fn dead_letter(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        reason: &str,
    ) -> Result<(), LeaseLost> {
        let record = self.held(now, job, host)?;
        record.place = Place::Dead { since: now };
        record.note(now, reason, Some(host));
        Ok(())
    }

    /// See [`JobQueue::reap_expired`].
    pub fn reap_expired(&mut self, now: Timestamp) -> Vec<Reaped> {
        let max_attempts = self.settings.max_attempts;
        let delay = self.settings.reap_delay;
        let mut reaped = Vec::new();
        for record in self.jobs.values_mut() {
            let Some(lease) = record.lease() else {
                continue;
            };
            if lease.is_live(now) {
                continue;
            }
            let host = lease.host.clone();
            let outcome = return_to_queue(
                record,
                now,
                REASON_LEASE_EXPIRED,
                &host,
                true,
                delay,
                max_attempts,
            );
            if matches!(outcome, Requeued::Queued { .. }) {
                self.queued.insert(record.order_key());
            }
            reaped.push(Reaped {
                job: record.id,
                host,
                outcome,
            });
        }
        for r in &reaped {
            self.drop_if_completed(now, r.job, r.outcome);
        }
        reaped
    }

    /// Indexes a record [`return_to_queue`] put back in the queue.
    fn queued_again(&mut self, key: (Timestamp, JobId), outcome: Requeued) {
        if matches!(outcome, Requeued::Queued { .. }) {
            self.queued.insert(key);
        }
    }

    /// Finishes the removal of a job [`return_to_queue`] answered `Dropped` for (GitHub runs or
    /// completed it).
    fn drop_if_completed(&mut self, now: Timestamp, job: JobId, outcome: Requeued) {
        if outcome != Requeued::Dropped {
            return;
        }
        if let Some(r) = self.jobs.remove(&job) {
            self.remember(job, now, dropped_how(&r));
        }
    }

    /// See [`JobQueue::get`].
    pub fn get(&self, job: JobId) -> Option<&JobRecord> {
        self.jobs.get(&job)
    }

    /// See [`JobQueue::finished`].
    pub fn finished(&self, job: JobId) -> Option<&Finished> {
        self.finished.get(&job)
    }

    /// Every record held (queued, claimed, dead), by job id.
    pub fn records(&self) -> impl Iterator<Item = &JobRecord> {
        self.jobs.values()
    }

    /// See [`JobQueue::list`].
    pub fn list(&self, now: Timestamp) -> QueueListing {
        listing(self.jobs.values(), now)
    }

    /// See [`JobQueue::depth`]: one pass over the records in memory, none copied.
    pub fn depth(&self) -> QueueDepth {
        depth(self.jobs.values())
    }

    /// See [`JobQueue::list_dead`].
    pub fn list_dead(&self) -> Vec<JobRecord> {
        let mut dead: Vec<(Timestamp, &JobRecord)> = self
            .jobs
            .values()
            .filter_map(|r| match r.place {
                Place::Dead { since } => Some((since, r)),
                _ => None,
            })
            .collect();
        dead.sort_by_key(|(since, r)| (*since, r.id));
        dead.into_iter().map(|(_, r)| r.clone()).collect()
    }

    /// See [`JobQueue::requeue_from_dead_letter`].
    pub fn requeue_from_dead_letter(
        &mut self,
        now: Timestamp,
        job: JobId,
        reason: &str,
    ) -> Result<Requeued, NotInDeadLetter> {
        let outcome = match self.jobs.get_mut(&job) {
            Some(r) if matches!(r.place, Place::Dead { .. }) => {
                r.note(now, reason, None);
                if !r.status.waits_for_runner() {
                    Requeued::Dropped
                } else {
                    r.place = Place::Queued;
                    r.attempts = 0;
                    r.uncounted = 0;
                    r.ready_at = now;
                    self.queued.insert(r.order_key());
                    Requeued::Queued { ready_at: now }
                }
            }
            _ => return Err(NotInDeadLetter(job)),
        };
        self.drop_if_completed(now, job, outcome);
        Ok(outcome)
    }

    /// See [`JobQueue::remove_dead`].
    pub fn remove_dead(
        &mut self,
        now: Timestamp,
        job: JobId,
    ) -> Result<JobRecord, NotInDeadLetter> {
        match self.jobs.get(&job) {
            Some(r) if matches!(r.place, Place::Dead { .. }) => {}
            _ => return Err(NotInDeadLetter(job)),
        }
        let record = self.jobs.remove(&job).ok_or(NotInDeadLetter(job))?;
        self.remember(job, now, "removed_from_dead_letter".to_owned());
        Ok(record)
    }

    /// See [`JobQueue::heartbeat`].
    pub fn heartbeat(&mut self, now: Timestamp, host: &HostId, payload: &str) {
        self.hosts.insert(
            host.clone(),
            Heartbeat {
                at: now,
                payload: payload.to_owned(),
            },
        );
    }

    /// See [`JobQueue::list_hosts`].
    pub fn list_hosts(&self, now: Timestamp, stale_after: Duration) -> Vec<HostInfo> {
        self.hosts
            .iter()
            .map(|(host, hb)| {
                let age = now.saturating_since(hb.at);
                HostInfo {
                    host: host.clone(),
                    last_seen: hb.at,
                    age,
                    stale: age > stale_after,
                    payload: hb.payload.clone(),
                }
            })
            .collect()
    }

    /// Remembers a removed job, forgetting the oldest beyond `finished_capacity`.
    fn remember(&mut self, job: JobId, now: Timestamp, how: String) {
        super::txn::remember(
            &mut self.finished,
            &mut self.finished_order,
            self.settings.finished_capacity,
            job,
            Finished { at: now, how },
        );
    }
}

impl JobQueue for MemoryQueue {
    type Error = Infallible;

    fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    fn enqueue(&mut self, now: Timestamp, job: NewJob) -> Result<EnqueueOutcome, Infallible> {
        Ok(MemoryQueue::enqueue(self, now, job))
    }

    fn job_status(
        &mut self,
        now: Timestamp,
        job: JobId,
        status: &GithubJobStatus,
    ) -> Result<StatusOutcome, Infallible> {
        Ok(MemoryQueue::job_status(self, now, job, status))
    }

    fn claim(
        &mut self,
        now: Timestamp,
        host: &HostId,
        filter: &ClaimFilter,
        lease: Duration,
    ) -> Result<Option<JobRecord>, Infallible> {
        Ok(MemoryQueue::claim(self, now, host, filter, lease))
    }

    fn renew_lease(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        lease: Duration,
    ) -> Result<Result<Timestamp, LeaseLost>, Infallible> {
        Ok(MemoryQueue::renew_lease(self, now, job, host, lease))
    }

    fn complete(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        outcome: &Completion,
    ) -> Result<Result<(), LeaseLost>, Infallible> {
        Ok(MemoryQueue::complete(self, now, job, host, outcome))
    }

    fn requeue(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        reason: &str,
        count_attempt: bool,
        delay: Duration,
    ) -> Result<Result<Requeued, LeaseLost>, Infallible> {
        Ok(MemoryQueue::requeue(
            self,
            now,
            job,
            host,
            reason,
            count_attempt,
            delay,
        ))
    }

    fn dead_letter(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        reason: &str,
    ) -> Result<Result<(), LeaseLost>, Infallible> {
        Ok(MemoryQueue::dead_letter(self, now, job, host, reason))
    }

    fn reap_expired(&mut self, now: Timestamp) -> Result<Vec<Reaped>, Infallible> {
        Ok(MemoryQueue::reap_expired(self, now))
    }

    fn get(&self, job: JobId) -> Result<Option<JobRecord>, Infallible> {
        Ok(MemoryQueue::get(self, job).cloned())
    }

    fn finished(&self, job: JobId) -> Result<Option<Finished>, Infallible> {
        Ok(MemoryQueue::finished(self, job).cloned())
    }

    fn list(&self, now: Timestamp) -> Result<QueueListing, Infallible> {
        Ok(MemoryQueue::list(self, now))
    }

    fn depth(&self) -> Result<QueueDepth, Infallible> {
        Ok(MemoryQueue::depth(self))
    }

    fn list_dead(&self) -> Result<Vec<JobRecord>, Infallible> {
        Ok(MemoryQueue::list_dead(self))
    }

    fn requeue_from_dead_letter(
        &mut self,
        now: Timestamp,
        job: JobId,
        reason: &str,
    ) -> Result<Result<Requeued, NotInDeadLetter>, Infallible> {
        Ok(MemoryQueue::requeue_from_dead_letter(
            self, now, job, reason,
        ))
    }

    fn remove_dead(
        &mut self,
        now: Timestamp,
        job: JobId,
    ) -> Result<Result<JobRecord, NotInDeadLetter>, Infallible> {
        Ok(MemoryQueue::remove_dead(self, now, job))
    }

    fn heartbeat(
        &mut self,
        now: Timestamp,
        host: &HostId,
        payload: &str,
    ) -> Result<(), Infallible> {
        MemoryQueue::heartbeat(self, now, host, payload);
        Ok(())
    }

    fn list_hosts(
        &self,
        now: Timestamp,
        stale_after: Duration,
    ) -> Result<Vec<HostInfo>, Infallible> {
        Ok(MemoryQueue::list_hosts(self, now, stale_after))
    }
}
