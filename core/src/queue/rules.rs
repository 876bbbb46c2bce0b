//! The record-level rules every store applies the same way: a job leaving a host, the name of
//! a job GitHub finished. The in-memory model and the transaction machines both call these, so
//! the model and the real stores cannot drift on them.

use super::ops::{JobSummary, QueueListing, Requeued};
use super::record::{JobRecord, JobStatus, Lease, Place};
use crate::ids::HostId;
use crate::metrics::QueueDepth;
use crate::time::Timestamp;
use std::time::Duration;

/// The one rule for a job leaving a host without finishing (requeue or lapsed lease): a job
/// GitHub already runs or completed is dropped (the caller removes it), a counted end that
/// used up `max_attempts` counted claims goes to the dead letter, anything else back to the
/// queue after `delay`. The reason is appended either way.
pub(crate) fn return_to_queue(
    record: &mut JobRecord,
    now: Timestamp,
    reason: &str,
    host: &HostId,
    count_attempt: bool,
    delay: Duration,
    max_attempts: u32,
) -> Requeued {
    if !count_attempt {
        record.uncounted = record.uncounted.saturating_add(1).min(record.attempts);
    }
    record.note(now, reason, Some(host));
    if !record.status.waits_for_runner() {
        return Requeued::Dropped;
    }
    if count_attempt && record.counted_attempts() >= max_attempts {
        record.place = Place::Dead { since: now };
        return Requeued::DeadLettered;
    }
    let ready_at = now + delay;
    record.place = Place::Queued;
    record.ready_at = ready_at;
    Requeued::Queued { ready_at }
}

/// The `how` of a job GitHub finished while it sat unclaimed.
pub(crate) fn github_completed(conclusion: Option<&str>) -> String {
    format!("github_completed({})", conclusion.unwrap_or("none"))
}

/// The `how` of a job GitHub started on a runner while it was not claimed here (or before it
/// was queued here): it no longer waits for a runner.
pub(crate) fn github_in_progress(runner: Option<&str>) -> String {
    format!("github_in_progress({})", runner.unwrap_or("none"))
}

/// The `how` of a job that left the queue because GitHub runs or finished it; `None` while
/// it still waits for a runner.
pub(crate) fn github_took(status: &JobStatus) -> Option<String> {
    match status {
        JobStatus::Queued => None,
        JobStatus::InProgress { runner } => Some(github_in_progress(runner.as_deref())),
        JobStatus::Completed { conclusion } => Some(github_completed(conclusion.as_deref())),
    }
}

/// The `how` of a job dropped because GitHub runs or completed it.
pub(crate) fn dropped_how(record: &JobRecord) -> String {
    github_took(&record.status).unwrap_or_else(|| "dropped".to_owned())
}

/// The operator listing of a set of records: queued in claim order, claimed by claim time,
/// dead by arrival in the dead letter.
pub(crate) fn listing<'a>(
    records: impl Iterator<Item = &'a JobRecord>,
    now: Timestamp,
) -> QueueListing {
    let mut queued: Vec<&JobRecord> = Vec::new();
    let mut claimed: Vec<(&Lease, &JobRecord)> = Vec::new();
    let mut dead: Vec<(Timestamp, &JobRecord)> = Vec::new();
    for r in records {
        match &r.place {
            Place::Queued => queued.push(r),
            Place::Claimed { lease } => claimed.push((lease, r)),
            Place::Dead { since } => dead.push((*since, r)),
        }
    }
    queued.sort_by_key(|r| r.order_key());
    claimed.sort_by_key(|(l, r)| (l.claimed_at, r.id));
    dead.sort_by_key(|(since, r)| (*since, r.id));
    let summary = |r: &JobRecord| JobSummary::of(r, now);
    QueueListing {
        queued: queued.into_iter().map(summary).collect(),
        claimed: claimed.into_iter().map(|(_, r)| summary(r)).collect(),
        dead: dead.into_iter().map(|(_, r)| summary(r)).collect(),
    }
}

/// How many of `records` are in each place, for stores that count by walking records they
/// already hold in memory (no copy, no decoding).
pub(crate) fn depth<'a>(records: impl Iterator<Item = &'a JobRecord>) -> QueueDepth {
    let mut depth = QueueDepth::default();
    for r in records {
        let n = match r.place {
            Place::Queued => &mut depth.queued,
            Place::Claimed { .. } => &mut depth.claimed,
            Place::Dead { .. } => &mut depth.dead,
        };
        *n = n.saturating_add(1);
    }
    depth
}
