//! The record-level rules every store applies the same way: a job leaving a host, the name of
//! a job GitHub finished. The in-memory model and the transaction machines both call these, so
//! the model and the real stores cannot drift on them.

use super::ops::Requeued;
use super::record::{JobRecord, Place};
use crate::ids::HostId;
use crate::time::Timestamp;
use std::time::Duration;

/// The one rule for a job leaving a host without finishing (requeue or lapsed lease): a job
/// GitHub already completed is dropped (the caller removes it), a counted end that used up
/// `max_attempts` counted claims goes to the dead letter, anything else back to the queue after
/// `delay`. The reason is appended either way.
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
    if record.status.is_completed() {
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

/// The `how` of a job dropped because GitHub had completed it.
pub(crate) fn dropped_how(record: &JobRecord) -> String {
    match &record.status {
        super::record::JobStatus::Completed { conclusion } => {
            github_completed(conclusion.as_deref())
        }
        _ => "dropped".to_owned(),
    }
}
