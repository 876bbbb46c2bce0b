//! The conformance suite against the in-memory store: one test per rule, so a failure names
//! the rule. Later stores (Redis, embedded) run the same `anklet_core::queue::conformance`
//! functions with their own constructor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::{Completion, GithubJobStatus};
use anklet_core::ids::{HostId, JobId};
use anklet_core::labels::ClaimFilter;
use anklet_core::metrics::QueueDepth;
use anklet_core::queue::conformance::{self, Violation};
use anklet_core::queue::{
    EnqueueOutcome, Finished, HostInfo, JobQueue, JobRecord, LeaseLost, NewJob, NotInDeadLetter,
    QueueListing, Reaped, Requeued, StatusOutcome,
};
use anklet_core::queue::{MemoryQueue, QueueSettings};
use anklet_core::time::Timestamp;
use std::convert::Infallible;
use std::time::Duration;

fn run(check: fn(&mut dyn FnMut(QueueSettings) -> MemoryQueue) -> Result<(), Violation>) {
    let mut make = MemoryQueue::new;
    if let Err(v) = check(&mut make) {
        panic!("{v}");
    }
}

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(conformance::$name::<MemoryQueue>);
            }
        )*

        #[test]
        fn every_check_has_a_test() {
            let names: Vec<&str> = conformance::checks::<MemoryQueue>()
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            assert_eq!(names, vec![$(stringify!($name)),*]);
        }
    };
}

conformance_tests!(
    enqueue_is_idempotent,
    status_moves_forward_only,
    claim_respects_filter,
    claim_is_fifo,
    claim_skips_jobs_held,
    requeue_delay_and_fairness,
    lease_lost_after_expiry,
    reaper_requeues_lapsed_leases,
    dead_letter_after_max_attempts,
    dead_letter_by_holder,
    requeue_from_dead_letter,
    completed_job_is_dropped_not_requeued,
    finished_memory_is_bounded,
    heartbeats_mark_stale_hosts,
    listing_has_ages,
    depth_counts_places,
    job_github_runs_is_never_claimed,
    handler_effects,
);

#[test]
fn run_all_passes() {
    let failures: Vec<String> = conformance::run_all(MemoryQueue::new)
        .into_iter()
        .filter_map(|(name, r)| r.err().map(|v| format!("{name}: {v}")))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---------------------------------------------------------------------------------------------
// The suite is not vacuous: stores with one planted flaw each fail it.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flaw {
    EnqueueNotIdempotent,
    StaleStatusApplied,
    ClaimIgnoresDelay,
    RenewByAnyone,
    CompleteWithoutLease,
    NoDeadLetter,
    ReaperIdle,
    ForgetsFinished,
    DepthMissesDeadLetter,
}

struct Flawed {
    q: MemoryQueue,
    flaw: Flaw,
}

impl JobQueue for Flawed {
    type Error = Infallible;
    fn settings(&self) -> &QueueSettings {
        self.q.settings()
    }
    fn enqueue(&mut self, now: Timestamp, job: NewJob) -> Result<EnqueueOutcome, Infallible> {
        let r = self.q.enqueue(now, job);
        Ok(if self.flaw == Flaw::EnqueueNotIdempotent {
            EnqueueOutcome::Enqueued
        } else {
            r
        })
    }
    fn job_status(
        &mut self,
        now: Timestamp,
        job: JobId,
        status: &GithubJobStatus,
    ) -> Result<StatusOutcome, Infallible> {
        let r = self.q.job_status(now, job, status);
        Ok(match (self.flaw, r) {
            (Flaw::StaleStatusApplied, StatusOutcome::Stale) => StatusOutcome::Recorded,
            (_, r) => r,
        })
    }
    fn claim(
        &mut self,
        now: Timestamp,
        host: &HostId,
        filter: &ClaimFilter,
        lease: Duration,
    ) -> Result<Option<JobRecord>, Infallible> {
        let now = if self.flaw == Flaw::ClaimIgnoresDelay {
            now + Duration::from_secs(3600)
        } else {
            now
        };
        Ok(self.q.claim(now, host, filter, lease))
    }
    fn renew_lease(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        lease: Duration,
    ) -> Result<Result<Timestamp, LeaseLost>, Infallible> {
        let r = self.q.renew_lease(now, job, host, lease);
        Ok(if self.flaw == Flaw::RenewByAnyone {
            Ok(now + lease)
        } else {
            r
        })
    }
    fn complete(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        outcome: &Completion,
    ) -> Result<Result<(), LeaseLost>, Infallible> {
        let r = self.q.complete(now, job, host, outcome);
        Ok(if self.flaw == Flaw::CompleteWithoutLease {
            Ok(())
        } else {
            r
        })
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
        let counted = count_attempt && self.flaw != Flaw::NoDeadLetter;
        Ok(self.q.requeue(now, job, host, reason, counted, delay))
    }
    fn dead_letter(
        &mut self,
        now: Timestamp,
        job: JobId,
        host: &HostId,
        reason: &str,
    ) -> Result<Result<(), LeaseLost>, Infallible> {
        Ok(self.q.dead_letter(now, job, host, reason))
    }
    fn reap_expired(&mut self, now: Timestamp) -> Result<Vec<Reaped>, Infallible> {
        Ok(if self.flaw == Flaw::ReaperIdle {
            Vec::new()
        } else {
            self.q.reap_expired(now)
        })
    }
    fn get(&self, job: JobId) -> Result<Option<JobRecord>, Infallible> {
        Ok(self.q.get(job).cloned())
    }
    fn finished(&self, job: JobId) -> Result<Option<Finished>, Infallible> {
        Ok(if self.flaw == Flaw::ForgetsFinished {
            None
        } else {
            self.q.finished(job).cloned()
        })
    }
    fn list(&self, now: Timestamp) -> Result<QueueListing, Infallible> {
        Ok(self.q.list(now))
    }
    fn depth(&self) -> Result<QueueDepth, Infallible> {
        let d = self.q.depth();
        Ok(if self.flaw == Flaw::DepthMissesDeadLetter {
            QueueDepth { dead: 0, ..d }
        } else {
            d
        })
    }
    fn list_dead(&self) -> Result<Vec<JobRecord>, Infallible> {
        Ok(self.q.list_dead())
    }
    fn requeue_from_dead_letter(
        &mut self,
        now: Timestamp,
        job: JobId,
        reason: &str,
    ) -> Result<Result<Requeued, NotInDeadLetter>, Infallible> {
        Ok(self.q.requeue_from_dead_letter(now, job, reason))
    }
    fn remove_dead(
        &mut self,
        now: Timestamp,
        job: JobId,
    ) -> Result<Result<JobRecord, NotInDeadLetter>, Infallible> {
        Ok(self.q.remove_dead(now, job))
    }
    fn heartbeat(
        &mut self,
        now: Timestamp,
        host: &HostId,
        payload: &str,
    ) -> Result<(), Infallible> {
        self.q.heartbeat(now, host, payload);
        Ok(())
    }
    fn list_hosts(
        &self,
        now: Timestamp,
        stale_after: Duration,
    ) -> Result<Vec<HostInfo>, Infallible> {
        Ok(self.q.list_hosts(now, stale_after))
    }
}

#[test]
fn every_planted_flaw_is_caught() {
    for flaw in [
        Flaw::EnqueueNotIdempotent,
        Flaw::StaleStatusApplied,
        Flaw::ClaimIgnoresDelay,
        Flaw::RenewByAnyone,
        Flaw::CompleteWithoutLease,
        Flaw::NoDeadLetter,
        Flaw::ReaperIdle,
        Flaw::ForgetsFinished,
        Flaw::DepthMissesDeadLetter,
    ] {
        let failed: Vec<&str> = conformance::run_all(|s| Flawed {
            q: MemoryQueue::new(s),
            flaw,
        })
        .into_iter()
        .filter(|(_, r)| r.is_err())
        .map(|(name, _)| name)
        .collect();
        assert!(!failed.is_empty(), "{flaw:?} passed the whole suite");
    }
}
