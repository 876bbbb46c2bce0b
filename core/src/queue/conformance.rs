//! The conformance suite every [`JobQueue`] store must pass: scenario checks for each rule and a
//! random-operation harness that checks the invariants after every step.
//!
//! It lives in the library, always compiled, rather than behind a cargo feature or in a test
//! file: it is small, pure and dependency-free, and the Redis and embedded stores' tests (in
//! other crates) call it as is: `conformance::run_all(|settings| MyStore::new(settings))` and
//! feed their own random sequences of [`Op`] to a [`Harness`]. Checks report a [`Violation`]
//! instead of panicking, so library code stays panic-free and callers choose how to fail.

use super::ops::{
    EnqueueOutcome, JobQueue, LeaseLost, NotInDeadLetter, QueueSettings, Requeued, StatusOutcome,
    execute,
};
use super::record::{JobRecord, NewJob, Place, REASON_LEASE_EXPIRED};
use crate::handler::{
    ClaimedJob, Completion, EffectResult, GithubJobStatus, JobRef, Reason, StoreCmd,
};
use crate::ids::{HostId, JobId, TemplateId};
use crate::labels::ClaimFilter;
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A rule the store broke, or a store failure during a check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// The store answered against the semantics.
    #[error("{check}: {detail}")]
    Rule {
        /// Which check.
        check: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The store itself failed (I/O); the check could not run.
    #[error("store failed: {0}")]
    Backend(String),
}

/// Turns a store failure into a [`Violation`] so checks can use `?`.
fn io<T, E: std::error::Error>(r: Result<T, E>) -> Result<T, Violation> {
    r.map_err(|e| Violation::Backend(e.to_string()))
}

/// Turns a semantic refusal the check did not expect into a [`Violation`].
fn ok<T, E: std::fmt::Debug>(check: &'static str, r: Result<T, E>) -> Result<T, Violation> {
    r.map_err(|e| Violation::Rule {
        check,
        detail: format!("unexpected refusal: {e:?}"),
    })
}

/// Fails the check with a formatted message unless the condition holds.
macro_rules! ensure {
    ($check:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(Violation::Rule { check: $check, detail: format!($($fmt)+) });
        }
    };
}

/// `ms` milliseconds after the epoch; checks use small clocks.
fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// A host by name.
fn host(name: &str) -> HostId {
    HostId(name.to_owned())
}

/// A job of `owner/repo` needing `template` (or no template label at all when `None`).
pub fn sample_job(id: u64, owner: &str, template: Option<&str>) -> NewJob {
    let mut labels = vec!["self-hosted".to_owned()];
    if let Some(template) = template {
        labels.push(format!("anka-template:{template}"));
    }
    NewJob {
        id: JobId(id),
        run_id: id * 10,
        owner: owner.to_owned(),
        repo: "repo".to_owned(),
        labels,
        payload: format!("{{\"workflow_job\":{{\"id\":{id}}}}}"),
    }
}

/// Accepts every job with a template label.
fn any() -> ClaimFilter {
    ClaimFilter::default()
}

const SEC: Duration = Duration::from_secs(1);

/// One scenario check: builds the stores it needs from settings.
pub type Check<Q> = fn(&mut dyn FnMut(QueueSettings) -> Q) -> Result<(), Violation>;

/// Every scenario check by name, for a test per check.
pub fn checks<Q: JobQueue>() -> Vec<(&'static str, Check<Q>)> {
    vec![
        ("enqueue_is_idempotent", enqueue_is_idempotent::<Q>),
        ("status_moves_forward_only", status_moves_forward_only::<Q>),
        ("claim_respects_filter", claim_respects_filter::<Q>),
        ("claim_is_fifo", claim_is_fifo::<Q>),
        ("claim_skips_jobs_held", claim_skips_jobs_held::<Q>),
        (
            "requeue_delay_and_fairness",
            requeue_delay_and_fairness::<Q>,
        ),
        ("lease_lost_after_expiry", lease_lost_after_expiry::<Q>),
        (
            "reaper_requeues_lapsed_leases",
            reaper_requeues_lapsed_leases::<Q>,
        ),
        (
            "dead_letter_after_max_attempts",
            dead_letter_after_max_attempts::<Q>,
        ),
        ("dead_letter_by_holder", dead_letter_by_holder::<Q>),
        ("requeue_from_dead_letter", requeue_from_dead_letter::<Q>),
        (
            "completed_job_is_dropped_not_requeued",
            completed_job_is_dropped_not_requeued::<Q>,
        ),
        (
            "finished_memory_is_bounded",
            finished_memory_is_bounded::<Q>,
        ),
        (
            "heartbeats_mark_stale_hosts",
            heartbeats_mark_stale_hosts::<Q>,
        ),
        ("listing_has_ages", listing_has_ages::<Q>),
        ("depth_counts_places", depth_counts_places::<Q>),
        (
            "job_github_runs_is_never_claimed",
            job_github_runs_is_never_claimed::<Q>,
        ),
        ("handler_effects", handler_effects::<Q>),
    ]
}

/// Runs every scenario check against fresh stores from `make`.
pub fn run_all<Q: JobQueue>(
    mut make: impl FnMut(QueueSettings) -> Q,
) -> Vec<(&'static str, Result<(), Violation>)> {
    checks::<Q>()
        .into_iter()
        .map(|(name, check)| (name, check(&mut make)))
        .collect()
}

/// Claims with the default filter and a 60 s lease, failing if nothing comes.
fn must_claim<Q: JobQueue>(
    q: &mut Q,
    check: &'static str,
    now: Timestamp,
    who: &HostId,
) -> Result<JobRecord, Violation> {
    match io(q.claim(now, who, &any(), 60 * SEC))? {
        Some(r) => Ok(r),
        None => Err(Violation::Rule {
            check,
            detail: format!("{who} claimed nothing at {now}"),
        }),
    }
}

/// A duplicate delivery, a redelivery and a reconciliation add nothing, even after the job
/// finished.
pub fn enqueue_is_idempotent<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "enqueue_is_idempotent";
    let mut q = make(QueueSettings::default());
    let a = host("a");
    let first = io(q.enqueue(t(0), sample_job(1, "acme", Some("t1"))))?;
    ensure!(
        C,
        first == EnqueueOutcome::Enqueued,
        "first enqueue: {first:?}"
    );
    let again = io(q.enqueue(t(1), sample_job(1, "acme", Some("t1"))))?;
    ensure!(
        C,
        again == EnqueueOutcome::AlreadyKnown,
        "duplicate: {again:?}"
    );
    let claimed = must_claim(&mut q, C, t(2), &a)?;
    let during = io(q.enqueue(t(3), sample_job(1, "acme", Some("t1"))))?;
    ensure!(
        C,
        during == EnqueueOutcome::AlreadyKnown,
        "while claimed: {during:?}"
    );
    let rec = io(q.get(JobId(1)))?;
    ensure!(
        C,
        rec.as_ref() == Some(&claimed),
        "redelivery changed the record: {rec:?}"
    );
    let done = io(q.complete(
        t(4),
        JobId(1),
        &a,
        &Completion::Finished { conclusion: None },
    ))?;
    ensure!(C, done.is_ok(), "complete: {done:?}");
    let after = io(q.enqueue(t(5), sample_job(1, "acme", Some("t1"))))?;
    ensure!(
        C,
        after == EnqueueOutcome::AlreadyKnown,
        "after completion: {after:?}"
    );
    let listing = io(q.list(t(5)))?;
    ensure!(
        C,
        listing.queued.is_empty() && listing.claimed.is_empty() && listing.dead.is_empty(),
        "finished job came back: {listing:?}"
    );
    ensure!(
        C,
        io(q.finished(JobId(1)))?.is_some(),
        "finished job not remembered"
    );
    Ok(())
}

/// Status news only moves forward; a queued job that completed is removed; news for a claimed
/// job is recorded without removing it; completed news for an unknown job blocks a late enqueue
/// (in-progress news: [`job_github_runs_is_never_claimed`]).
pub fn status_moves_forward_only<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "status_moves_forward_only";
    let mut q = make(QueueSettings::default());
    let a = host("a");
    let in_progress = GithubJobStatus::InProgress {
        runner: Some("r1".to_owned()),
    };
    let completed = GithubJobStatus::Completed {
        conclusion: Some("cancelled".to_owned()),
    };
    io(q.enqueue(t(0), sample_job(1, "acme", Some("t1"))))?;
    must_claim(&mut q, C, t(0), &a)?;
    let s = io(q.job_status(t(1), JobId(1), &in_progress))?;
    ensure!(
        C,
        s == StatusOutcome::Recorded,
        "in_progress on claimed job: {s:?}"
    );
    let s = io(q.job_status(t(2), JobId(1), &GithubJobStatus::Queued))?;
    ensure!(
        C,
        s == StatusOutcome::Stale,
        "queued after in_progress: {s:?}"
    );
    let rec = io(q.get(JobId(1)))?;
    ensure!(
        C,
        rec.as_ref().map(|r| r.status.rank()) == Some(1),
        "status went backwards: {rec:?}"
    );

    io(q.enqueue(t(4), sample_job(2, "acme", Some("t1"))))?;
    must_claim(&mut q, C, t(5), &a)?;
    let s = io(q.job_status(t(6), JobId(2), &completed))?;
    ensure!(
        C,
        s == StatusOutcome::Recorded,
        "completed on claimed job: {s:?}"
    );
    let rec = io(q.get(JobId(2)))?;
    ensure!(
        C,
        rec.as_ref()
            .is_some_and(|r| r.status.rank() == 2 && r.is_held_by(&a, t(6))),
        "claimed job must keep its lease and show completion: {rec:?}"
    );
    let s = io(q.job_status(t(7), JobId(2), &in_progress))?;
    ensure!(
        C,
        s == StatusOutcome::Stale,
        "in_progress after completed: {s:?}"
    );

    io(q.enqueue(t(7), sample_job(4, "acme", Some("t1"))))?;
    let s = io(q.job_status(t(7), JobId(4), &completed))?;
    ensure!(
        C,
        s == StatusOutcome::Removed,
        "completed on queued job: {s:?}"
    );
    ensure!(
        C,
        io(q.get(JobId(4)))?.is_none(),
        "completed queued job still stored"
    );

    let s = io(q.job_status(t(8), JobId(3), &completed))?;
    ensure!(
        C,
        s == StatusOutcome::Unknown,
        "news for unknown job: {s:?}"
    );
    let e = io(q.enqueue(t(9), sample_job(3, "acme", Some("t1"))))?;
    ensure!(
        C,
        e == EnqueueOutcome::AlreadyKnown,
        "late queued after completed: {e:?}"
    );
    Ok(())
}

/// A claim returns only jobs the host's filter accepts; unservable jobs stay queued.
pub fn claim_respects_filter<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "claim_respects_filter";
    let mut q = make(QueueSettings::default());
    io(q.enqueue(t(0), sample_job(1, "acme", Some("t1"))))?;
    io(q.enqueue(t(1), sample_job(2, "other", Some("t2"))))?;
    io(q.enqueue(t(2), sample_job(3, "acme", None)))?;
    let only_t2 = ClaimFilter {
        owner: None,
        templates: vec![TemplateId("t2".to_owned())],
        held: vec![],
    };
    let got = io(q.claim(t(3), &host("a"), &only_t2, 60 * SEC))?.map(|r| r.id);
    ensure!(C, got == Some(JobId(2)), "template filter claimed {got:?}");
    let got = io(q.claim(t(3), &host("b"), &only_t2, 60 * SEC))?.map(|r| r.id);
    ensure!(
        C,
        got.is_none(),
        "template filter claimed {got:?} after job 2"
    );
    let only_other = ClaimFilter {
        owner: Some("other".to_owned()),
        templates: vec![],
        held: vec![],
    };
    let got = io(q.claim(t(3), &host("b"), &only_other, 60 * SEC))?.map(|r| r.id);
    ensure!(C, got.is_none(), "owner filter claimed {got:?}");
    let got = io(q.claim(t(4), &host("b"), &any(), 60 * SEC))?.map(|r| r.id);
    ensure!(C, got == Some(JobId(1)), "open filter claimed {got:?}");
    let got = io(q.claim(t(5), &host("c"), &any(), 60 * SEC))?.map(|r| r.id);
    ensure!(
        C,
        got.is_none(),
        "job without template label was claimed: {got:?}"
    );
    let rec = io(q.get(JobId(3)))?;
    ensure!(
        C,
        rec.as_ref()
            .is_some_and(|r| r.place == Place::Queued && r.spec.is_none()),
        "unservable job must stay queued and visible: {rec:?}"
    );
    Ok(())
}

/// Claims come oldest first, ties broken by job id.
pub fn claim_is_fifo<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "claim_is_fifo";
    let mut q = make(QueueSettings::default());
    io(q.enqueue(t(1), sample_job(30, "acme", Some("t1"))))?;
    io(q.enqueue(t(2), sample_job(20, "acme", Some("t1"))))?;
    io(q.enqueue(t(2), sample_job(10, "acme", Some("t1"))))?;
    let mut order = Vec::new();
    for _ in 0..4 {
        if let Some(r) = io(q.claim(t(3), &host("a"), &any(), 60 * SEC))? {
            order.push(r.id.0);
        }
    }
    ensure!(C, order == vec![30, 10, 20], "claim order {order:?}");
    Ok(())
}

/// A job the claimer still holds (it requeued it and is cleaning up after it) is skipped: the
/// next job is claimed instead, and another host may take the held one.
pub fn claim_skips_jobs_held<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "claim_skips_jobs_held";
    let mut q = make(QueueSettings::default());
    io(q.enqueue(t(1), sample_job(1, "acme", Some("t1"))))?;
    io(q.enqueue(t(2), sample_job(2, "acme", Some("t1"))))?;
    let holding_1 = ClaimFilter {
        held: vec![JobId(1)],
        ..ClaimFilter::default()
    };
    let got = io(q.claim(t(3), &host("a"), &holding_1, 60 * SEC))?.map(|r| r.id);
    ensure!(
        C,
        got == Some(JobId(2)),
        "host holding job 1 claimed {got:?}"
    );
    let got = io(q.claim(t(3), &host("a"), &holding_1, 60 * SEC))?.map(|r| r.id);
    ensure!(C, got.is_none(), "host holding job 1 claimed {got:?} again");
    let got = io(q.claim(t(4), &host("b"), &any(), 60 * SEC))?.map(|r| r.id);
    ensure!(C, got == Some(JobId(1)), "another host claimed {got:?}");
    Ok(())
}

/// A requeued job is not claimable before its delay; then it is served in its original place,
/// before younger jobs.
pub fn requeue_delay_and_fairness<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "requeue_delay_and_fairness";
    let mut q = make(QueueSettings::default());
    let a = host("a");
    io(q.enqueue(t(0), sample_job(1, "acme", Some("t1"))))?;
    io(q.enqueue(t(1), sample_job(2, "acme", Some("t1"))))?;
    let first = must_claim(&mut q, C, t(2), &a)?;
    ensure!(
        C,
        first.id == JobId(1) && first.attempts == 1,
        "first claim {first:?}"
    );
    let r = io(q.requeue(t(3), JobId(1), &a, "pull_failed", true, 10 * SEC))?;
    ensure!(
        C,
        r == Ok(Requeued::Queued {
            ready_at: t(3) + 10 * SEC
        }),
        "requeue answered {r:?}"
    );
    let rec = io(q.get(JobId(1)))?;
    ensure!(
        C,
        rec.as_ref().is_some_and(|r| r.attempts == 1
            && r.place == Place::Queued
            && r.history.last().is_some_and(|e| e.reason == "pull_failed"
                && e.host.as_ref() == Some(&a)
                && e.at == t(3))),
        "requeued record {rec:?}"
    );
    let second = must_claim(&mut q, C, t(4), &a)?;
    ensure!(
        C,
        second.id == JobId(2),
        "delayed job claimed early: {second:?}"
    );
    io(q.enqueue(t(5), sample_job(3, "acme", Some("t1"))))?;
    let early = io(q.claim(t(10_002), &a, &any(), SEC))?;
    ensure!(
        C,
        early.as_ref().map(|r| r.id) == Some(JobId(3)),
        "only job 3 is ready before the delay ends: {early:?}"
    );
    io(q.enqueue(t(6), sample_job(4, "acme", Some("t1"))))?;
    let ready = must_claim(&mut q, C, t(3) + 10 * SEC, &a)?;
    ensure!(
        C,
        ready.id == JobId(1) && ready.attempts == 2,
        "requeued job must keep its place once ready: {ready:?}"
    );
    Ok(())
}

/// Renew, complete, requeue and dead letter by a host without a live lease answer `LeaseLost`
/// and change nothing, before and after the reaper ran.
pub fn lease_lost_after_expiry<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "lease_lost_after_expiry";
    let mut q = make(QueueSettings::default());
    let (a, b) = (host("a"), host("b"));
    io(q.enqueue(t(0), sample_job(1, "acme", Some("t1"))))?;
    let claimed = io(q.claim(t(0), &a, &any(), 30 * SEC))?;
    ensure!(C, claimed.is_some(), "nothing claimed");
    let r = io(q.renew_lease(t(10_000), JobId(1), &b, 30 * SEC))?;
    ensure!(C, r.is_err(), "non-holder renewed: {r:?}");
    let r = io(q.renew_lease(t(10_000), JobId(1), &a, 30 * SEC))?;
    ensure!(C, r == Ok(t(40_000)), "holder renew: {r:?}");
    let before = io(q.get(JobId(1)))?;
    // At the deadline the lease is over, reaper or not.
    let now = t(40_000);
    let lost = LeaseLost {
        job: JobId(1),
        host: a.clone(),
    };
    let r = io(q.renew_lease(now, JobId(1), &a, 30 * SEC))?;
    ensure!(C, r == Err(lost.clone()), "renew after expiry: {r:?}");
    let r = io(q.complete(now, JobId(1), &a, &Completion::VmLost))?;
    ensure!(C, r == Err(lost.clone()), "complete after expiry: {r:?}");
    let r = io(q.requeue(now, JobId(1), &a, "clone_failed", true, SEC))?;
    ensure!(C, r == Err(lost.clone()), "requeue after expiry: {r:?}");
    let r = io(q.dead_letter(now, JobId(1), &a, "clone_failed"))?;
    ensure!(C, r == Err(lost.clone()), "dead letter after expiry: {r:?}");
    let after = io(q.get(JobId(1)))?;
    ensure!(
        C,
        after == before,
        "a refused write changed the record: {after:?}"
    );

    io(q.reap_expired(now))?;
    let taken = must_claim(&mut q, C, now, &b)?;
    ensure!(
        C,
        taken.id == JobId(1) && taken.attempts == 2,
        "reclaim {taken:?}"
    );
    let r = io(q.complete(now, JobId(1), &a, &Completion::VmLost))?;
    ensure!(
        C,
        r == Err(lost),
        "old holder completed a job b holds: {r:?}"
    );
    let r = io(q.complete(now, JobId(1), &b, &Completion::VmLost))?;
    ensure!(C, r.is_ok(), "new holder complete: {r:?}");
    let r = io(q.complete(now, JobId(1), &b, &Completion::VmLost))?;
    ensure!(C, r.is_err(), "second complete: {r:?}");
    Ok(())
}

/// The reaper requeues exactly the lapsed leases, counted, with reason `lease_expired`.
pub fn reaper_requeues_lapsed_leases<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "reaper_requeues_lapsed_leases";
    let mut q = make(QueueSettings::default());
    let (a, b) = (host("a"), host("b"));
    io(q.enqueue(t(0), sample_job(1, "acme", Some("t1"))))?;
    io(q.enqueue(t(0), sample_job(2, "acme", Some("t1"))))?;
    io(q.claim(t(0), &a, &any(), 10 * SEC))?;
    io(q.claim(t(0), &b, &any(), 60 * SEC))?;
    let none = io(q.reap_expired(t(9_999)))?;
    ensure!(C, none.is_empty(), "reaped live leases: {none:?}");
    let reaped = io(q.reap_expired(t(10_000)))?;
    ensure!(
        C,
        reaped.len() == 1
            && reaped[0].job == JobId(1)
            && reaped[0].host == a
            && matches!(reaped[0].outcome, Requeued::Queued { .. }),
        "reaped {reaped:?}"
    );
    let rec = io(q.get(JobId(1)))?;
    ensure!(
        C,
        rec.as_ref().is_some_and(|r| r.place == Place::Queued
            && r.counted_attempts() == 1
            && r.history
                .last()
                .is_some_and(|e| e.reason == REASON_LEASE_EXPIRED && e.host.as_ref() == Some(&a))),
        "reaped record {rec:?}"
    );
    let again = io(q.reap_expired(t(10_000)))?;
    ensure!(C, again.is_empty(), "reaped twice: {again:?}");
    let still = io(q.get(JobId(2)))?;
    ensure!(
        C,
        still.as_ref().is_some_and(|r| r.is_held_by(&b, t(10_000))),
        "b lost job 2"
    );
    Ok(())
}

/// A counted requeue beyond `max_attempts` dead-letters with the history kept; uncounted
/// requeues do not count; a lapsed lease over the limit is dead-lettered by the reaper.
pub fn dead_letter_after_max_attempts<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "dead_letter_after_max_attempts";
    let mut q = make(QueueSettings {
        max_attempts: 2,
        ..QueueSettings::default()
    });
    let a = host("a");
    io(q.enqueue(t(0), sample_job(1, "acme", Some("t1"))))?;
    let mut answers = Vec::new();
    for (n, counted) in [false, true, true].into_iter().enumerate() {
        let now = t(n as u64 * 1000);
        must_claim(&mut q, C, now, &a)?;
        let reason = if counted {
            "pull_failed"
        } else {
            "host_stopping"
        };
        answers.push(io(q.requeue(
            now,
            JobId(1),
            &a,
            reason,
            counted,
            Duration::ZERO,
        ))?);
    }
    ensure!(
        C,
        answers
            == vec![
                Ok(Requeued::Queued { ready_at: t(0) }),
                Ok(Requeued::Queued { ready_at: t(1000) }),
                Ok(Requeued::DeadLettered)
            ],
        "answers {answers:?}"
    );
    let dead = io(q.list_dead())?;
    ensure!(
        C,
        dead.len() == 1
            && dead[0].attempts == 3
            && dead[0].place == Place::Dead { since: t(2000) }
            && dead[0].history.iter().map(|e| e.reason.as_str()).eq([
                "host_stopping",
                "pull_failed",
                "pull_failed"
            ]),
        "dead letter {dead:?}"
    );
    let none = io(q.claim(t(3000), &a, &any(), SEC))?;
    ensure!(C, none.is_none(), "dead job claimed: {none:?}");

    let mut q = make(QueueSettings {
        max_attempts: 1,
        ..QueueSettings::default()
    });
    io(q.enqueue(t(0), sample_job(2, "acme", Some("t1"))))?;
    io(q.claim(t(0), &a, &any(), SEC))?;
    let reaped = io(q.reap_expired(t(1000)))?;
    ensure!(
        C,
        reaped.len() == 1 && reaped[0].outcome == Requeued::DeadLettered,
        "reaper over the limit: {reaped:?}"
    );
    Ok(())
}

/// The holder can send a job to the dead letter; then it holds nothing.
pub fn dead_letter_by_holder<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "dead_letter_by_holder";
    let mut q = make(QueueSettings::default());
    let a = host("a");
    io(q.enqueue(t(0), sample_job(1, "acme", Some("t1"))))?;
    must_claim(&mut q, C, t(0), &a)?;
    let r = io(q.dead_letter(t(1), JobId(1), &a, "template_not_in_registry"))?;
    ensure!(C, r.is_ok(), "dead letter: {r:?}");
    let rec = io(q.get(JobId(1)))?;
    ensure!(
        C,
        rec.as_ref()
            .is_some_and(|r| r.place == Place::Dead { since: t(1) } && r.history.len() == 1),
        "dead record {rec:?}"
    );
    let r = io(q.renew_lease(t(2), JobId(1), &a, SEC))?;
    ensure!(C, r.is_err(), "renew of a dead job: {r:?}");
    Ok(())
}

/// An operator requeues a dead job (attempts reset, reason appended) or removes it for good.
pub fn requeue_from_dead_letter<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "requeue_from_dead_letter";
    let mut q = make(QueueSettings::default());
    let a = host("a");
    io(q.enqueue(t(0), sample_job(1, "acme", Some("t1"))))?;
    io(q.enqueue(t(0), sample_job(2, "acme", Some("t1"))))?;
    for id in [1, 2] {
        must_claim(&mut q, C, t(0), &a)?;
        ok(C, io(q.dead_letter(t(1), JobId(id), &a, "pull_failed"))?)?;
    }
    let r = io(q.requeue_from_dead_letter(t(5), JobId(9), "operator"))?;
    ensure!(C, r == Err(NotInDeadLetter(JobId(9))), "unknown job: {r:?}");
    let r = io(q.requeue_from_dead_letter(t(5), JobId(1), "operator_retry"))?;
    ensure!(C, r.is_ok(), "requeue from dead letter: {r:?}");
    let rec = io(q.get(JobId(1)))?;
    ensure!(
        C,
        rec.as_ref().is_some_and(|r| r.place == Place::Queued
            && r.attempts == 0
            && r.history
                .iter()
                .map(|e| e.reason.as_str())
                .eq(["pull_failed", "operator_retry"])),
        "requeued record {rec:?}"
    );
    let r = io(q.requeue_from_dead_letter(t(5), JobId(1), "operator_retry"))?;
    ensure!(C, r.is_err(), "requeue of a queued job: {r:?}");
    let again = must_claim(&mut q, C, t(6), &a)?;
    ensure!(
        C,
        again.id == JobId(1) && again.attempts == 1,
        "reclaim {again:?}"
    );

    let removed = io(q.remove_dead(t(7), JobId(2)))?;
    ensure!(
        C,
        removed.as_ref().is_ok_and(|r| r.id == JobId(2)),
        "remove: {removed:?}"
    );
    ensure!(
        C,
        io(q.get(JobId(2)))?.is_none(),
        "removed job still stored"
    );
    let e = io(q.enqueue(t(8), sample_job(2, "acme", Some("t1"))))?;
    ensure!(
        C,
        e == EnqueueOutcome::AlreadyKnown,
        "removed job came back: {e:?}"
    );
    let r = io(q.remove_dead(t(8), JobId(1)))?;
    ensure!(C, r.is_err(), "removed a claimed job: {r:?}");
    Ok(())
}

/// A job GitHub completed while it was claimed or dead is dropped, not queued again, by a
/// requeue, by the reaper and by a requeue from the dead letter.
pub fn completed_job_is_dropped_not_requeued<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "completed_job_is_dropped_not_requeued";
    let mut q = make(QueueSettings::default());
    let a = host("a");
    let done = GithubJobStatus::Completed {
        conclusion: Some("cancelled".to_owned()),
    };
    for id in 1..=3 {
        io(q.enqueue(t(0), sample_job(id, "acme", Some("t1"))))?;
        io(q.claim(t(0), &a, &any(), 10 * SEC))?;
        io(q.job_status(t(1), JobId(id), &done))?;
    }
    let r = io(q.requeue(t(2), JobId(1), &a, "vm_died_before_job", true, SEC))?;
    ensure!(C, r == Ok(Requeued::Dropped), "requeue gave {r:?}");
    ok(C, io(q.dead_letter(t(2), JobId(2), &a, "pull_failed"))?)?;
    let reaped = io(q.reap_expired(t(10_000)))?;
    ensure!(
        C,
        reaped.len() == 1 && reaped[0].job == JobId(3) && reaped[0].outcome == Requeued::Dropped,
        "reaped {reaped:?}"
    );
    let r = io(q.requeue_from_dead_letter(t(11_000), JobId(2), "operator_retry"))?;
    ensure!(
        C,
        r == Ok(Requeued::Dropped),
        "requeue from dead letter gave {r:?}"
    );
    for id in 1..=3 {
        ensure!(C, io(q.get(JobId(id)))?.is_none(), "job {id} still stored");
        let f = io(q.finished(JobId(id)))?;
        ensure!(
            C,
            f.as_ref()
                .is_some_and(|f| f.how == "github_completed(cancelled)"),
            "job {id} remembered as {f:?}"
        );
    }
    Ok(())
}

/// The memory of finished jobs is bounded; the oldest is forgotten first.
pub fn finished_memory_is_bounded<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "finished_memory_is_bounded";
    let mut q = make(QueueSettings {
        finished_capacity: 2,
        ..QueueSettings::default()
    });
    let a = host("a");
    for id in 1..=3 {
        io(q.enqueue(t(id), sample_job(id, "acme", Some("t1"))))?;
        must_claim(&mut q, C, t(id), &a)?;
        ok(
            C,
            io(q.complete(t(id), JobId(id), &a, &Completion::ServedElsewhere))?,
        )?;
    }
    ensure!(
        C,
        io(q.finished(JobId(1)))?.is_none(),
        "oldest not forgotten"
    );
    let kept = io(q.finished(JobId(3)))?;
    ensure!(
        C,
        kept.as_ref()
            .is_some_and(|f| f.how == "served_elsewhere" && f.at == t(3)),
        "newest {kept:?}"
    );
    Ok(())
}

/// Hosts whose heartbeat stopped are marked stale.
pub fn heartbeats_mark_stale_hosts<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "heartbeats_mark_stale_hosts";
    let mut q = make(QueueSettings::default());
    io(q.heartbeat(t(0), &host("b"), "idle"))?;
    io(q.heartbeat(t(1000), &host("a"), "idle"))?;
    io(q.heartbeat(t(5000), &host("b"), "in_progress"))?;
    let hosts = io(q.list_hosts(t(12_000), 10 * SEC))?;
    let seen: Vec<(String, u64, bool, String)> = hosts
        .iter()
        .map(|h| {
            (
                h.host.0.clone(),
                h.last_seen.as_millis(),
                h.stale,
                h.payload.clone(),
            )
        })
        .collect();
    ensure!(
        C,
        seen == vec![
            ("a".to_owned(), 1000, true, "idle".to_owned()),
            ("b".to_owned(), 5000, false, "in_progress".to_owned())
        ],
        "hosts {seen:?}"
    );
    Ok(())
}

/// The listing splits queued, claimed and dead with their ages, in order.
pub fn listing_has_ages<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "listing_has_ages";
    let mut q = make(QueueSettings::default());
    let a = host("a");
    for id in 1..=4 {
        io(q.enqueue(t(id * 1000), sample_job(id, "acme", Some("t1"))))?;
    }
    must_claim(&mut q, C, t(5000), &a)?;
    must_claim(&mut q, C, t(5000), &a)?;
    ok(C, io(q.dead_letter(t(6000), JobId(2), &a, "pull_failed"))?)?;
    let l = io(q.list(t(10_000)))?;
    let ids = |v: &[super::ops::JobSummary]| v.iter().map(|s| s.id.0).collect::<Vec<_>>();
    ensure!(C, ids(&l.queued) == vec![3, 4], "queued {:?}", l.queued);
    ensure!(C, ids(&l.claimed) == vec![1], "claimed {:?}", l.claimed);
    ensure!(C, ids(&l.dead) == vec![2], "dead {:?}", l.dead);
    ensure!(C, l.queued[0].age == 7 * SEC, "age {:?}", l.queued[0].age);
    ensure!(
        C,
        l.dead[0].dead_for == Some(4 * SEC),
        "dead for {:?}",
        l.dead[0].dead_for
    );
    ensure!(
        C,
        l.claimed[0].lease.as_ref().is_some_and(|x| x.host == a),
        "lease {:?}",
        l.claimed[0].lease
    );
    Ok(())
}

/// A job a runner already took in GitHub is never claimed: in-progress news for a queued job
/// removes it (remembered as `github_in_progress(<runner>)`, so a redelivered `queued` event
/// adds nothing), news that arrives before the job's `queued` event keeps it from being
/// enqueued, and a claimed or dead job whose news says in progress is dropped instead of
/// requeued (the runner swap: a lifecycle whose runner another job took requeues its own job,
/// which the other lifecycle's runner may be running).
pub fn job_github_runs_is_never_claimed<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "job_github_runs_is_never_claimed";
    let mut q = make(QueueSettings::default());
    let a = host("a");
    let running_on = |runner: &str| GithubJobStatus::InProgress {
        runner: Some(runner.to_owned()),
    };
    let done = GithubJobStatus::Completed {
        conclusion: Some("success".to_owned()),
    };
    let expect_gone = |q: &Q, id: u64, how: &str| -> Result<(), Violation> {
        ensure!(C, io(q.get(JobId(id)))?.is_none(), "job {id} still stored");
        let f = io(q.finished(JobId(id)))?;
        ensure!(
            C,
            f.as_ref().is_some_and(|f| f.how == how),
            "job {id} remembered as {f:?}, expected {how}"
        );
        Ok(())
    };

    // A queued job a runner took leaves the queue; its completion later changes nothing.
    io(q.enqueue(t(0), sample_job(1, "acme", Some("t1"))))?;
    let s = io(q.job_status(t(1), JobId(1), &running_on("vm-b")))?;
    ensure!(
        C,
        s == StatusOutcome::Removed,
        "in_progress on queued job: {s:?}"
    );
    expect_gone(&q, 1, "github_in_progress(vm-b)")?;
    let got = io(q.claim(t(2), &a, &any(), 60 * SEC))?;
    ensure!(C, got.is_none(), "claimed {got:?}, a runner runs it");
    let e = io(q.enqueue(t(3), sample_job(1, "acme", Some("t1"))))?;
    ensure!(
        C,
        e == EnqueueOutcome::AlreadyKnown,
        "redelivered queued: {e:?}"
    );
    let s = io(q.job_status(t(4), JobId(1), &done))?;
    ensure!(
        C,
        s == StatusOutcome::Unknown,
        "completed after it left: {s:?}"
    );

    // In-progress news before the `queued` event: the late event adds nothing.
    let s = io(q.job_status(
        t(5),
        JobId(2),
        &GithubJobStatus::InProgress { runner: None },
    ))?;
    ensure!(
        C,
        s == StatusOutcome::Unknown,
        "news for unknown job: {s:?}"
    );
    let e = io(q.enqueue(t(6), sample_job(2, "acme", Some("t1"))))?;
    ensure!(
        C,
        e == EnqueueOutcome::AlreadyKnown,
        "late queued after in_progress: {e:?}"
    );
    expect_gone(&q, 2, "github_in_progress(none)")?;

    // The swap: jobs 3 and 4 claimed by one host; job 3's runner takes job 4 and job 4's
    // runner takes job 3. Requeuing either (its lifecycle saw its runner taken) drops it.
    io(q.enqueue(t(10), sample_job(3, "acme", Some("t1"))))?;
    io(q.enqueue(t(11), sample_job(4, "acme", Some("t1"))))?;
    io(q.enqueue(t(12), sample_job(5, "acme", Some("t1"))))?;
    must_claim(&mut q, C, t(13), &a)?;
    must_claim(&mut q, C, t(13), &a)?;
    io(q.job_status(t(14), JobId(4), &running_on("vm-3")))?;
    io(q.job_status(t(14), JobId(3), &running_on("vm-4")))?;
    for id in [3, 4] {
        let r = io(q.requeue(
            t(15),
            JobId(id),
            &a,
            "runner_taken_by_other_job",
            false,
            Duration::ZERO,
        ))?;
        ensure!(
            C,
            r == Ok(Requeued::Dropped),
            "requeue of running {id}: {r:?}"
        );
    }
    expect_gone(&q, 3, "github_in_progress(vm-4)")?;
    expect_gone(&q, 4, "github_in_progress(vm-3)")?;
    let got = must_claim(&mut q, C, t(16), &a)?;
    ensure!(
        C,
        got.id == JobId(5),
        "claimed {}, expected the waiting job 5",
        got.id
    );

    // A lapsed lease on a job a runner runs, and a dead job a runner took.
    io(q.enqueue(t(20), sample_job(6, "acme", Some("t1"))))?;
    io(q.enqueue(t(20), sample_job(7, "acme", Some("t1"))))?;
    must_claim(&mut q, C, t(21), &a)?;
    must_claim(&mut q, C, t(21), &a)?;
    io(q.job_status(t(22), JobId(6), &running_on("vm-6")))?;
    io(q.job_status(t(22), JobId(7), &running_on("vm-7")))?;
    ok(C, io(q.dead_letter(t(23), JobId(7), &a, "pull_failed"))?)?;
    let reaped = io(q.reap_expired(t(100_000)))?;
    ensure!(
        C,
        reaped
            .iter()
            .any(|r| r.job == JobId(6) && r.outcome == Requeued::Dropped),
        "reaped {reaped:?}"
    );
    expect_gone(&q, 6, "github_in_progress(vm-6)")?;
    let r = io(q.requeue_from_dead_letter(t(100_001), JobId(7), "operator_retry"))?;
    ensure!(
        C,
        r == Ok(Requeued::Dropped),
        "requeue from dead letter: {r:?}"
    );
    expect_gone(&q, 7, "github_in_progress(vm-7)")?;
    Ok(())
}

/// The queue's depth counts each place as the listing does: empty, after enqueues, a claim, a
/// dead letter, a completion, a requeue and a queued job GitHub completed.
pub fn depth_counts_places<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "depth_counts_places";
    let mut q = make(QueueSettings::default());
    let a = host("a");
    let expect = |q: &Q, step: &str, want: [u64; 3]| -> Result<(), Violation> {
        let d = io(q.depth())?;
        let got = [d.queued, d.claimed, d.dead];
        ensure!(C, got == want, "{step}: depth {got:?}, expected {want:?}");
        let l = io(q.list(t(100_000)))?;
        let listed = [l.queued.len(), l.claimed.len(), l.dead.len()].map(|n| n as u64);
        ensure!(
            C,
            got == listed,
            "{step}: depth {got:?}, listing counts {listed:?}"
        );
        Ok(())
    };
    expect(&q, "empty", [0, 0, 0])?;
    for id in 1..=5 {
        io(q.enqueue(t(id * 1000), sample_job(id, "acme", Some("t1"))))?;
    }
    io(q.enqueue(t(9000), sample_job(1, "acme", Some("t1"))))?;
    expect(&q, "five enqueued, one twice", [5, 0, 0])?;
    must_claim(&mut q, C, t(10_000), &a)?;
    must_claim(&mut q, C, t(10_000), &a)?;
    must_claim(&mut q, C, t(10_000), &a)?;
    expect(&q, "three claimed", [2, 3, 0])?;
    ok(
        C,
        io(q.dead_letter(t(11_000), JobId(1), &a, "pull_failed"))?,
    )?;
    expect(&q, "one dead-lettered", [2, 2, 1])?;
    let done = Completion::Finished {
        conclusion: Some("success".to_owned()),
    };
    ok(C, io(q.complete(t(12_000), JobId(2), &a, &done))?)?;
    expect(&q, "one completed", [2, 1, 1])?;
    ok(
        C,
        io(q.requeue(t(13_000), JobId(3), &a, "pull_failed", true, SEC))?,
    )?;
    expect(&q, "one requeued", [3, 0, 1])?;
    let gone = GithubJobStatus::Completed {
        conclusion: Some("cancelled".to_owned()),
    };
    io(q.job_status(t(14_000), JobId(4), &gone))?;
    expect(&q, "a queued job completed in GitHub", [2, 0, 1])?;
    ok(C, io(q.remove_dead(t(15_000), JobId(1)))?)?;
    expect(&q, "dead letter emptied", [2, 0, 0])?;
    Ok(())
}

/// The handler's store effects map onto the operations with the results the handler expects.
pub fn handler_effects<Q: JobQueue>(
    make: &mut dyn FnMut(QueueSettings) -> Q,
) -> Result<(), Violation> {
    const C: &str = "handler_effects";
    let mut q = make(QueueSettings::default());
    let a = host("a");
    io(q.enqueue(t(0), sample_job(7, "acme", Some("t1"))))?;
    let claim = StoreCmd::Claim {
        host: a.clone(),
        filter: any(),
        lease: 30 * SEC,
    };
    let r = io(execute(&mut q, t(1), &claim))?;
    let want = EffectResult::Claimed(Some(ClaimedJob {
        job: JobRef {
            id: JobId(7),
            run_id: 70,
            owner: "acme".to_owned(),
            repo: "repo".to_owned(),
        },
        labels: vec!["self-hosted".to_owned(), "anka-template:t1".to_owned()],
        attempt: 1,
    }));
    ensure!(C, r == want, "claim gave {r:?}");
    let r = io(execute(&mut q, t(2), &claim))?;
    ensure!(
        C,
        r == EffectResult::Claimed(None),
        "empty claim gave {r:?}"
    );
    let renew = StoreCmd::RenewLease {
        job: JobId(7),
        host: a.clone(),
        lease: 30 * SEC,
    };
    let r = io(execute(&mut q, t(3), &renew))?;
    ensure!(C, r == EffectResult::Stored, "renew gave {r:?}");
    let requeue = StoreCmd::Requeue {
        job: JobId(7),
        host: a.clone(),
        reason: Reason::PullFailed,
        count_attempt: true,
        delay: Duration::ZERO,
    };
    let r = io(execute(&mut q, t(4), &requeue))?;
    ensure!(C, r == EffectResult::Stored, "requeue gave {r:?}");
    let r = io(execute(&mut q, t(4), &requeue))?;
    ensure!(C, r == EffectResult::LeaseLost, "second requeue gave {r:?}");
    // The handler's retry limit counts what the store's does: a claim given back uncounted
    // (a runner another job took, a job already held on the host) gave its attempt back.
    let attempt = |r: &EffectResult| match r {
        EffectResult::Claimed(Some(j)) => Some(j.attempt),
        _ => None,
    };
    let r = io(execute(&mut q, t(5), &claim))?;
    ensure!(
        C,
        attempt(&r) == Some(2),
        "claim after a counted requeue gave {r:?}"
    );
    let give_back = StoreCmd::Requeue {
        job: JobId(7),
        host: a.clone(),
        reason: Reason::RunnerTakenByOtherJob,
        count_attempt: false,
        delay: Duration::ZERO,
    };
    let r = io(execute(&mut q, t(5), &give_back))?;
    ensure!(C, r == EffectResult::Stored, "uncounted requeue gave {r:?}");
    let r = io(execute(&mut q, t(5), &claim))?;
    ensure!(
        C,
        attempt(&r) == Some(2),
        "claim after an uncounted requeue gave {r:?}"
    );
    let dead = StoreCmd::DeadLetter {
        job: JobId(7),
        host: a.clone(),
        reason: Reason::TemplateNotInRegistry,
    };
    let r = io(execute(&mut q, t(6), &dead))?;
    ensure!(C, r == EffectResult::Stored, "dead letter gave {r:?}");
    let rec = io(q.get(JobId(7)))?;
    ensure!(
        C,
        rec.as_ref()
            .is_some_and(|r| r.history.iter().map(|e| e.reason.as_str()).eq([
                "pull_failed",
                "runner_taken_by_other_job",
                "template_not_in_registry"
            ])),
        "history {rec:?}"
    );
    let complete = StoreCmd::Complete {
        job: JobId(7),
        host: a,
        outcome: Completion::AbortedByStop,
    };
    let r = io(execute(&mut q, t(7), &complete))?;
    ensure!(
        C,
        r == EffectResult::LeaseLost,
        "complete of a dead job gave {r:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Random operation sequences.

/// Host names the random operations use.
pub const HOSTS: [&str; 3] = ["a", "b", "c"];
/// Owners the random jobs belong to.
pub const OWNERS: [&str; 2] = ["acme", "other"];
/// Templates the random jobs need; index 2 means "no template label" (unservable).
pub const TEMPLATES: [Option<&str>; 3] = [Some("t0"), Some("t1"), None];

/// Which host performs a lease operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Whoever holds the job's lease now (host `a` if nobody), so successes happen often.
    Holder,
    /// `HOSTS[i % HOSTS.len()]`.
    Host(u8),
}

/// One random operation; small indices keep collisions (same job, same host) frequent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Enqueue job `job` (a redelivery if it is known).
    Enqueue {
        /// Job id.
        job: u8,
        /// Index into [`OWNERS`].
        owner: u8,
        /// Index into [`TEMPLATES`].
        template: u8,
    },
    /// Status news: 0 queued, 1 in progress, 2 completed.
    Status {
        /// Job id.
        job: u8,
        /// Which news.
        status: u8,
    },
    /// A host claims with one of four filters.
    Claim {
        /// Index into [`HOSTS`].
        host: u8,
        /// 0 any, 1 template t0, 2 owner other, 3 template t1 of acme.
        filter: u8,
        /// Lease in seconds.
        lease_s: u8,
    },
    /// Renew a lease.
    Renew {
        /// Job id.
        job: u8,
        /// Who.
        host: Pick,
        /// Lease in seconds.
        lease_s: u8,
    },
    /// Complete a job.
    Complete {
        /// Job id.
        job: u8,
        /// Who.
        host: Pick,
    },
    /// Requeue a job.
    Requeue {
        /// Job id.
        job: u8,
        /// Who.
        host: Pick,
        /// Counted or not.
        counted: bool,
        /// Delay in seconds.
        delay_s: u8,
    },
    /// Dead-letter a job.
    DeadLetter {
        /// Job id.
        job: u8,
        /// Who.
        host: Pick,
    },
    /// Run the reaper.
    Reap,
    /// Let time pass.
    Advance {
        /// Milliseconds.
        ms: u32,
    },
    /// Operator requeue from the dead letter.
    RequeueDead {
        /// Job id.
        job: u8,
    },
    /// Operator removal from the dead letter.
    RemoveDead {
        /// Job id.
        job: u8,
    },
    /// A heartbeat.
    Heartbeat {
        /// Index into [`HOSTS`].
        host: u8,
    },
}

/// The filter `i` of [`Op::Claim`].
fn filter(i: u8) -> ClaimFilter {
    let t = |name: &str| vec![TemplateId(name.to_owned())];
    match i % 4 {
        0 => ClaimFilter::default(),
        1 => ClaimFilter {
            templates: t("t0"),
            ..ClaimFilter::default()
        },
        2 => ClaimFilter {
            owner: Some("other".to_owned()),
            ..ClaimFilter::default()
        },
        _ => ClaimFilter {
            owner: Some("acme".to_owned()),
            templates: t("t1"),
            held: vec![],
        },
    }
}

/// What callers have observed, to check the store against: the model side of model-based
/// testing.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    /// Every job ever enqueued (answered `Enqueued`).
    pub enqueued: BTreeSet<JobId>,
    /// Jobs removed for good (complete, completed while queued, removed from dead letter).
    pub gone: BTreeSet<JobId>,
    /// Jobs the store must answer `AlreadyKnown` for though it holds no record (gone, or
    /// completed news before any enqueue).
    pub finished: BTreeSet<JobId>,
    /// Attempts last seen per job.
    pub attempts: BTreeMap<JobId, u32>,
    /// Who holds each job's lease and until when, per the answers to claims and renewals.
    pub held: BTreeMap<JobId, (HostId, Timestamp)>,
}

/// Drives a store with random operations, checking every answer against the semantics and the
/// invariants after every step.
#[derive(Clone, Debug)]
pub struct Harness<Q> {
    /// The store under test.
    pub q: Q,
    /// What callers observed.
    pub ledger: Ledger,
    /// The store clock.
    pub now: Timestamp,
}

impl<Q: JobQueue> Harness<Q> {
    /// A harness around a fresh store. Use a `finished_capacity` above the number of job ids
    /// the operations use, so idempotency is checked exactly.
    pub fn new(q: Q) -> Self {
        Self {
            q,
            ledger: Ledger::default(),
            now: t(1_000_000),
        }
    }

    /// Runs a whole sequence, stopping at the first violation (with its step number).
    pub fn run(&mut self, ops: &[Op]) -> Result<(), Violation> {
        for (n, op) in ops.iter().enumerate() {
            self.step(op).map_err(|v| match v {
                Violation::Rule { check, detail } => Violation::Rule {
                    check,
                    detail: format!("step {n} {op:?}: {detail}"),
                },
                other => other,
            })?;
        }
        Ok(())
    }

    fn pick(&self, job: JobId, p: Pick) -> Result<HostId, Violation> {
        Ok(match p {
            Pick::Host(i) => host(HOSTS[usize::from(i) % HOSTS.len()]),
            Pick::Holder => io(self.q.get(job))?
                .and_then(|r| r.lease().map(|l| l.host.clone()))
                .unwrap_or_else(|| host(HOSTS[0])),
        })
    }

    /// Applies one operation, checks its answer, then the invariants.
    pub fn step(&mut self, op: &Op) -> Result<(), Violation> {
        const C: &str = "answer";
        let now = self.now;
        let max = self.q.settings().max_attempts;
        let mut reset = None;
        match op {
            Op::Enqueue {
                job,
                owner,
                template,
            } => {
                let id = JobId(u64::from(*job));
                let before = io(self.q.get(id))?;
                let new = sample_job(
                    id.0,
                    OWNERS[usize::from(*owner) % OWNERS.len()],
                    TEMPLATES[usize::from(*template) % TEMPLATES.len()],
                );
                let r = io(self.q.enqueue(now, new))?;
                let known = before.is_some() || self.ledger.finished.contains(&id);
                let want = if known {
                    EnqueueOutcome::AlreadyKnown
                } else {
                    EnqueueOutcome::Enqueued
                };
                ensure!(C, r == want, "enqueue {id}: {r:?}, expected {want:?}");
                let after = io(self.q.get(id))?;
                if known {
                    ensure!(C, after == before, "redelivery changed {id}: {after:?}");
                } else {
                    self.ledger.enqueued.insert(id);
                }
            }
            Op::Status { job, status } => {
                let id = JobId(u64::from(*job));
                let news = match status % 3 {
                    0 => GithubJobStatus::Queued,
                    1 => GithubJobStatus::InProgress { runner: None },
                    _ => GithubJobStatus::Completed {
                        conclusion: Some("success".to_owned()),
                    },
                };
                let rank = super::record::JobStatus::from(&news).rank();
                let before = io(self.q.get(id))?;
                let r = io(self.q.job_status(now, id, &news))?;
                let after = io(self.q.get(id))?;
                match &before {
                    None => {
                        ensure!(
                            C,
                            r == StatusOutcome::Unknown,
                            "news for absent {id}: {r:?}"
                        );
                        if rank >= 1 {
                            self.ledger.finished.insert(id);
                        }
                    }
                    Some(b) if rank <= b.status.rank() => {
                        ensure!(C, r == StatusOutcome::Stale, "stale news for {id}: {r:?}");
                        ensure!(C, after == before, "stale news changed {id}");
                    }
                    Some(b)
                        if b.place == Place::Queued
                            || (rank == 2 && matches!(b.place, Place::Dead { .. })) =>
                    {
                        ensure!(
                            C,
                            r == StatusOutcome::Removed,
                            "GitHub took queued {id} or completed dead {id}: {r:?}"
                        );
                        self.ledger.gone.insert(id);
                        self.ledger.finished.insert(id);
                    }
                    Some(b) => {
                        ensure!(C, r == StatusOutcome::Recorded, "news for {id}: {r:?}");
                        ensure!(
                            C,
                            after
                                .as_ref()
                                .is_some_and(|a| a.status.rank() == rank && a.place == b.place),
                            "news not recorded on {id}: {after:?}"
                        );
                    }
                }
            }
            Op::Claim {
                host: h,
                filter: f,
                lease_s,
            } => {
                let who = host(HOSTS[usize::from(*h) % HOSTS.len()]);
                let filter = filter(*f);
                let listing = io(self.q.list(now))?;
                let mut expected: Option<JobRecord> = None;
                for s in &listing.queued {
                    if let Some(r) = io(self.q.get(s.id))?
                        && r.status.waits_for_runner()
                        && r.ready_at <= now
                        && filter.accepts(&r.owner, &r.labels).is_ok()
                        && expected
                            .as_ref()
                            .is_none_or(|e| r.order_key() < e.order_key())
                    {
                        expected = Some(r);
                    }
                }
                let lease = Duration::from_secs(u64::from(*lease_s));
                let got = io(self.q.claim(now, &who, &filter, lease))?;
                ensure!(
                    C,
                    got.as_ref().map(|r| r.id) == expected.as_ref().map(|r| r.id),
                    "claim by {who} got {:?}, oldest eligible is {:?}",
                    got.as_ref().map(|r| r.id),
                    expected.as_ref().map(|r| r.id)
                );
                if let (Some(g), Some(e)) = (got, expected) {
                    ensure!(
                        C,
                        g.attempts == e.attempts + 1
                            && g.lease().is_some_and(|l| l.host == who
                                && l.claimed_at == now
                                && l.expires_at == now + lease),
                        "claimed record {g:?}"
                    );
                    if let Some((other, until)) = self.ledger.held.get(&g.id) {
                        ensure!(
                            "one_holder",
                            *until <= now,
                            "{} claimed by {who} while {other} holds it until {until}",
                            g.id
                        );
                    }
                    self.ledger.held.insert(g.id, (who, now + lease));
                }
            }
            Op::Renew {
                job,
                host: p,
                lease_s,
            } => {
                let id = JobId(u64::from(*job));
                let who = self.pick(id, *p)?;
                let lease = Duration::from_secs(u64::from(*lease_s));
                let before = io(self.q.get(id))?;
                let r = io(self.q.renew_lease(now, id, &who, lease))?;
                if self.expect_lease(id, &who, &before, r.is_ok())? {
                    ensure!(C, r == Ok(now + lease), "renew gave {r:?}");
                    self.ledger.held.insert(id, (who, now + lease));
                }
            }
            Op::Complete { job, host: p } => {
                let id = JobId(u64::from(*job));
                let who = self.pick(id, *p)?;
                let before = io(self.q.get(id))?;
                let r =
                    io(self
                        .q
                        .complete(now, id, &who, &Completion::Finished { conclusion: None }))?;
                if self.expect_lease(id, &who, &before, r.is_ok())? {
                    ensure!(
                        C,
                        io(self.q.get(id))?.is_none(),
                        "completed {id} still stored"
                    );
                    self.ledger.gone.insert(id);
                    self.ledger.finished.insert(id);
                    self.ledger.held.remove(&id);
                }
            }
            Op::Requeue {
                job,
                host: p,
                counted,
                delay_s,
            } => {
                let id = JobId(u64::from(*job));
                let who = self.pick(id, *p)?;
                let before = io(self.q.get(id))?;
                let delay = Duration::from_secs(u64::from(*delay_s));
                let r = io(self
                    .q
                    .requeue(now, id, &who, "pull_failed", *counted, delay))?;
                if self.expect_lease(id, &who, &before, r.is_ok())?
                    && let Some(b) = before
                {
                    let used = if *counted {
                        b.counted_attempts()
                    } else {
                        b.counted_attempts().saturating_sub(1)
                    };
                    let want = if !b.status.waits_for_runner() {
                        Requeued::Dropped
                    } else if *counted && used >= max {
                        Requeued::DeadLettered
                    } else {
                        Requeued::Queued {
                            ready_at: now + delay,
                        }
                    };
                    ensure!(C, r == Ok(want), "requeue of {b:?} gave {r:?}");
                    self.ledger.held.remove(&id);
                    if want == Requeued::Dropped {
                        self.ledger.gone.insert(id);
                        self.ledger.finished.insert(id);
                    }
                }
            }
            Op::DeadLetter { job, host: p } => {
                let id = JobId(u64::from(*job));
                let who = self.pick(id, *p)?;
                let before = io(self.q.get(id))?;
                let r = io(self.q.dead_letter(now, id, &who, "pull_failed"))?;
                if self.expect_lease(id, &who, &before, r.is_ok())? {
                    let after = io(self.q.get(id))?;
                    ensure!(
                        C,
                        after
                            .as_ref()
                            .is_some_and(|a| a.place == Place::Dead { since: now }),
                        "dead-lettered {after:?}"
                    );
                    self.ledger.held.remove(&id);
                }
            }
            Op::Reap => {
                let listing = io(self.q.list(now))?;
                let lapsed: BTreeSet<JobId> = listing
                    .claimed
                    .iter()
                    .filter(|s| s.lease.as_ref().is_some_and(|l| !l.is_live(now)))
                    .map(|s| s.id)
                    .collect();
                let reaped = io(self.q.reap_expired(now))?;
                let ids: BTreeSet<JobId> = reaped.iter().map(|r| r.job).collect();
                ensure!(
                    C,
                    ids == lapsed && ids.len() == reaped.len(),
                    "reaped {reaped:?}, lapsed {lapsed:?}"
                );
                for r in &reaped {
                    self.ledger.held.remove(&r.job);
                    let taken = listing
                        .claimed
                        .iter()
                        .any(|s| s.id == r.job && !s.status.waits_for_runner());
                    ensure!(
                        C,
                        taken == (r.outcome == Requeued::Dropped),
                        "reaped {r:?}, GitHub runs or completed it: {taken}"
                    );
                    if taken {
                        self.ledger.gone.insert(r.job);
                        self.ledger.finished.insert(r.job);
                        continue;
                    }
                    let rec = io(self.q.get(r.job))?;
                    ensure!(
                        C,
                        rec.as_ref().is_some_and(|x| x
                            .history
                            .last()
                            .is_some_and(|e| e.reason == REASON_LEASE_EXPIRED)),
                        "reaped record {rec:?}"
                    );
                }
            }
            Op::Advance { ms } => {
                self.now = now.saturating_add(Duration::from_millis(u64::from(*ms)));
            }
            Op::RequeueDead { job } => {
                let id = JobId(u64::from(*job));
                let before = io(self.q.get(id))?;
                let dead = before
                    .as_ref()
                    .is_some_and(|b| matches!(b.place, Place::Dead { .. }));
                let r = io(self.q.requeue_from_dead_letter(now, id, "operator_retry"))?;
                ensure!(
                    C,
                    r.is_ok() == dead,
                    "requeue from dead letter of {before:?}: {r:?}"
                );
                if let Some(b) = before.as_ref().filter(|_| dead) {
                    let want = if !b.status.waits_for_runner() {
                        self.ledger.gone.insert(id);
                        self.ledger.finished.insert(id);
                        Requeued::Dropped
                    } else {
                        Requeued::Queued { ready_at: now }
                    };
                    ensure!(C, r == Ok(want), "requeue from dead letter of {b:?}: {r:?}");
                    reset = Some(id);
                } else {
                    ensure!(
                        C,
                        io(self.q.get(id))? == before,
                        "refused requeue changed {id}"
                    );
                }
            }
            Op::RemoveDead { job } => {
                let id = JobId(u64::from(*job));
                let before = io(self.q.get(id))?;
                let dead = before
                    .as_ref()
                    .is_some_and(|b| matches!(b.place, Place::Dead { .. }));
                let r = io(self.q.remove_dead(now, id))?;
                ensure!(
                    C,
                    r.is_ok() == dead,
                    "remove from dead letter of {before:?}: {r:?}"
                );
                if dead {
                    self.ledger.gone.insert(id);
                    self.ledger.finished.insert(id);
                } else {
                    ensure!(
                        C,
                        io(self.q.get(id))? == before,
                        "refused removal changed {id}"
                    );
                }
            }
            Op::Heartbeat { host: h } => {
                let who = host(HOSTS[usize::from(*h) % HOSTS.len()]);
                io(self.q.heartbeat(now, &who, "idle"))?;
                let hosts = io(self.q.list_hosts(now, SEC))?;
                ensure!(
                    C,
                    hosts
                        .iter()
                        .any(|x| x.host == who && x.last_seen == now && !x.stale),
                    "heartbeat of {who} not listed: {hosts:?}"
                );
            }
        }
        self.check_invariants(reset)
    }

    /// Checks a lease operation's answer: success exactly when `who` held a live lease; a
    /// refusal changes nothing. Returns whether it succeeded.
    fn expect_lease(
        &self,
        id: JobId,
        who: &HostId,
        before: &Option<JobRecord>,
        ok: bool,
    ) -> Result<bool, Violation> {
        let held = before.as_ref().is_some_and(|b| b.is_held_by(who, self.now));
        ensure!(
            "lease",
            ok == held,
            "{who} {} on {before:?} at {}",
            if ok { "succeeded" } else { "was refused" },
            self.now
        );
        if !ok {
            let after = io(self.q.get(id))?;
            ensure!(
                "lease",
                &after == before,
                "a refused write changed {id}: {after:?}"
            );
        }
        Ok(ok)
    }

    /// The invariants that hold after every operation: each job in exactly one place, the
    /// depth counting what the listing lists, no job lost or duplicated, one holder at a time,
    /// attempts never decreasing (except for the job `reset` by a requeue from the dead
    /// letter), attempt limits kept, every queued job still waiting for a runner.
    pub fn check_invariants(&mut self, reset: Option<JobId>) -> Result<(), Violation> {
        let now = self.now;
        let max = self.q.settings().max_attempts;
        let listing = io(self.q.list(now))?;
        let depth = io(self.q.depth())?;
        let counted = [depth.queued, depth.claimed, depth.dead];
        let listed = [
            listing.queued.len(),
            listing.claimed.len(),
            listing.dead.len(),
        ]
        .map(|n| n as u64);
        ensure!(
            "depth",
            counted == listed,
            "depth {counted:?}, listing counts {listed:?}"
        );
        let mut seen = BTreeSet::new();
        for (place, list) in [
            ("queued", &listing.queued),
            ("claimed", &listing.claimed),
            ("dead", &listing.dead),
        ] {
            for s in list.iter() {
                ensure!("one_place", seen.insert(s.id), "{} listed twice", s.id);
                let r = io(self.q.get(s.id))?;
                ensure!(
                    "one_place",
                    r.as_ref().is_some_and(|r| r.place.name() == place),
                    "{} listed as {place} but stored as {r:?}",
                    s.id
                );
            }
        }
        let expected: BTreeSet<JobId> = self
            .ledger
            .enqueued
            .difference(&self.ledger.gone)
            .copied()
            .collect();
        ensure!(
            "no_loss",
            seen == expected,
            "stored {seen:?}, expected {expected:?} (enqueued minus removed)"
        );
        for id in &self.ledger.gone {
            ensure!(
                "no_loss",
                io(self.q.finished(*id))?.is_some(),
                "{id} removed but not remembered"
            );
        }
        for id in &seen {
            let Some(r) = io(self.q.get(*id))? else {
                continue;
            };
            ensure!("record", r.id == *id, "record {id} has id {}", r.id);
            ensure!("record", r.uncounted <= r.attempts, "{r:?}");
            let last = self.ledger.attempts.insert(*id, r.attempts).unwrap_or(0);
            ensure!(
                "attempts",
                r.attempts >= last || reset == Some(*id),
                "{id} attempts went from {last} to {}",
                r.attempts
            );
            match &r.place {
                Place::Queued => {
                    ensure!(
                        "attempts",
                        r.counted_attempts() < max.max(1),
                        "queued {id} used {} of {max} attempts",
                        r.counted_attempts()
                    );
                    ensure!(
                        "waiting",
                        r.status.waits_for_runner(),
                        "queued {r:?} though GitHub runs or completed it"
                    );
                }
                Place::Claimed { lease } => {
                    ensure!("attempts", r.attempts >= 1, "claimed {id} with no attempt");
                    ensure!(
                        "attempts",
                        r.counted_attempts() <= max.max(1),
                        "claimed {id} used {} of {max}",
                        r.counted_attempts()
                    );
                    if lease.is_live(now) {
                        let holder = self.ledger.held.get(id).map(|(h, _)| h);
                        ensure!(
                            "one_holder",
                            holder == Some(&lease.host),
                            "{id} leased to {} but callers saw {holder:?}",
                            lease.host
                        );
                    }
                }
                Place::Dead { .. } => {}
            }
        }
        Ok(())
    }
}
