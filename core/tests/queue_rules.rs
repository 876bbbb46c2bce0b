//! Rules of the queue that are about records and the in-memory store itself rather than the
//! shared conformance suite: the persisted JSON layout, decoding corrupt records without a
//! panic, and driving the handler's effects through `MemoryQueue::execute`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::{
    ClaimedJob, Completion, EffectResult, GithubJobStatus, Reason, StoreCmd,
};
use anklet_core::ids::{HostId, JobId};
use anklet_core::labels::ClaimFilter;
use anklet_core::queue::conformance::sample_job;
use anklet_core::queue::{
    DecodeError, JobRecord, MemoryQueue, Place, QueueSettings, REASON_CORRUPT_RECORD,
    RECORD_SCHEMA, Requeued,
};
use anklet_core::time::Timestamp;
use std::time::Duration;

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn a() -> HostId {
    HostId("mac-1".into())
}

/// A record with every field filled: claimed, requeued once, with status news.
fn busy_record() -> JobRecord {
    let mut q = MemoryQueue::new(QueueSettings::default());
    let mut job = sample_job(42, "acme", Some("84266873-da90"));
    job.labels.push("anka-template-tag:v2".into());
    q.enqueue(t(1_000), job);
    q.claim(
        t(2_000),
        &a(),
        &ClaimFilter::default(),
        Duration::from_secs(60),
    );
    q.requeue(
        t(3_000),
        JobId(42),
        &a(),
        "pull_failed",
        true,
        Duration::from_secs(5),
    )
    .unwrap();
    q.claim(
        t(9_000),
        &a(),
        &ClaimFilter::default(),
        Duration::from_secs(60),
    );
    q.job_status(
        t(9_500),
        JobId(42),
        &GithubJobStatus::InProgress {
            runner: Some("anklet-vm-mac-1-42-1".into()),
        },
    );
    q.get(JobId(42)).unwrap().clone()
}

#[test]
fn record_json_layout_is_stable() {
    // Stores persist this; a change here needs a RECORD_SCHEMA bump and a migration.
    let json: serde_json::Value = serde_json::from_str(&busy_record().encode().unwrap()).unwrap();
    insta::assert_json_snapshot!(json);
}

#[test]
fn record_round_trips_through_json() {
    let r = busy_record();
    assert_eq!(JobRecord::decode(r.encode().unwrap().as_bytes()), Ok(r));
}

#[test]
fn corrupt_bytes_decode_to_typed_errors() {
    let not_json = JobRecord::decode(b"{\"id\": 4");
    assert!(
        matches!(not_json, Err(DecodeError::Json { line: 1, .. })),
        "{not_json:?}"
    );
    let wrong_shape = JobRecord::decode(b"{\"id\": \"x\"}");
    assert!(
        matches!(wrong_shape, Err(DecodeError::Json { .. })),
        "{wrong_shape:?}"
    );
    let not_utf8 = JobRecord::decode(&[0xff, 0xfe, 0x00]);
    assert!(
        matches!(not_utf8, Err(DecodeError::Json { .. })),
        "{not_utf8:?}"
    );
    assert!(matches!(
        JobRecord::decode(b""),
        Err(DecodeError::Json { .. })
    ));

    let mut future = serde_json::to_value(busy_record()).unwrap();
    future["schema"] = (RECORD_SCHEMA + 1).into();
    assert_eq!(
        JobRecord::decode(future.to_string().as_bytes()),
        Err(DecodeError::UnsupportedSchema(RECORD_SCHEMA + 1))
    );

    let mut odd = serde_json::to_value(busy_record()).unwrap();
    odd["uncounted"] = 9.into();
    assert!(matches!(
        JobRecord::decode(odd.to_string().as_bytes()),
        Err(DecodeError::Inconsistent(_))
    ));
}

#[test]
fn corrupt_record_placeholder_goes_to_the_dead_letter() {
    let raw = b"{\"id\": 4";
    let err = JobRecord::decode(raw).unwrap_err();
    let r = JobRecord::corrupt(JobId(4), raw, &err, t(7));
    assert_eq!(r.place, Place::Dead { since: t(7) });
    assert_eq!(r.payload, "{\"id\": 4");
    assert!(
        r.history[0].reason.starts_with(REASON_CORRUPT_RECORD),
        "{:?}",
        r.history
    );
    assert!(r.spec.is_none(), "a corrupt record can never be claimed");
    // The placeholder itself is a valid record a store can persist.
    assert_eq!(JobRecord::decode(r.encode().unwrap().as_bytes()), Ok(r));
}

#[test]
fn handler_effects_execute_against_the_memory_queue() {
    let mut q = MemoryQueue::new(QueueSettings {
        max_attempts: 1,
        ..QueueSettings::default()
    });
    q.enqueue(t(0), sample_job(1, "acme", Some("t1")));
    let claim = StoreCmd::Claim {
        host: a(),
        filter: ClaimFilter::default(),
        lease: Duration::from_secs(30),
    };
    let EffectResult::Claimed(Some(ClaimedJob { job, attempt, .. })) = q.execute(t(1), &claim)
    else {
        panic!("nothing claimed");
    };
    assert_eq!((job.id, job.run_id, attempt), (JobId(1), 10, 1));
    // Over the limit: the store dead-letters the requeue, the host only learns it let go.
    let requeue = StoreCmd::Requeue {
        job: JobId(1),
        host: a(),
        reason: Reason::CloneFailed,
        count_attempt: true,
        delay: Duration::ZERO,
    };
    assert_eq!(q.execute(t(2), &requeue), EffectResult::Stored);
    assert!(matches!(q.get(JobId(1)).unwrap().place, Place::Dead { .. }));
    assert_eq!(q.execute(t(3), &claim), EffectResult::Claimed(None));
    let complete = StoreCmd::Complete {
        job: JobId(1),
        host: a(),
        outcome: Completion::TimedOut,
    };
    assert_eq!(q.execute(t(3), &complete), EffectResult::LeaseLost);
}

#[test]
fn uncounted_requeue_gives_the_attempt_back() {
    let mut q = MemoryQueue::new(QueueSettings {
        max_attempts: 1,
        ..QueueSettings::default()
    });
    q.enqueue(t(0), sample_job(1, "acme", Some("t1")));
    for n in 0..3 {
        q.claim(t(n), &a(), &ClaimFilter::default(), Duration::from_secs(1));
        let r = q.requeue(t(n), JobId(1), &a(), "host_stopping", false, Duration::ZERO);
        assert_eq!(r, Ok(Requeued::Queued { ready_at: t(n) }));
    }
    let r = q.get(JobId(1)).unwrap();
    assert_eq!((r.attempts, r.uncounted, r.counted_attempts()), (3, 3, 0));
}

#[test]
fn listing_for_an_operator() {
    let mut q = MemoryQueue::new(QueueSettings::default());
    for id in 1..=3 {
        q.enqueue(t(id * 1_000), sample_job(id, "acme", Some("t1")));
    }
    q.enqueue(t(4_000), sample_job(4, "acme", None));
    q.claim(
        t(5_000),
        &a(),
        &ClaimFilter::default(),
        Duration::from_secs(60),
    );
    q.claim(
        t(5_000),
        &a(),
        &ClaimFilter::default(),
        Duration::from_secs(60),
    );
    q.dead_letter(t(6_000), JobId(2), &a(), "template_not_in_registry")
        .unwrap();
    q.heartbeat(t(9_000), &a(), "{\"status\":\"in_progress\"}");
    let listing = q.list(t(10_000));
    let lines: Vec<String> = [
        ("queued", &listing.queued),
        ("claimed", &listing.claimed),
        ("dead", &listing.dead),
    ]
    .into_iter()
    .flat_map(|(place, jobs)| {
        jobs.iter().map(move |s| {
            format!(
                "{place} {} {} spec={} attempts={} age={:?} lease={} last_reason={}",
                s.id,
                s.repo,
                s.spec.as_ref().map_or("-".into(), |v| v.template.0.clone()),
                s.attempts,
                s.age,
                s.lease
                    .as_ref()
                    .map_or("-".into(), |l| format!("{}@{}", l.host, l.expires_at)),
                s.last_reason.as_deref().unwrap_or("-"),
            )
        })
    })
    .chain(
        q.list_hosts(t(10_000), Duration::from_secs(10))
            .into_iter()
            .map(|h| {
                format!(
                    "host {} age={:?} stale={} {}",
                    h.host, h.age, h.stale, h.payload
                )
            }),
    )
    .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn restore_quarantines_corrupt_records() {
    let mut q = MemoryQueue::new(QueueSettings::default());
    q.enqueue(t(0), sample_job(1, "acme", Some("t1")));
    q.enqueue(t(1), sample_job(2, "acme", Some("t1")));
    q.claim(t(2), &a(), &ClaimFilter::default(), Duration::from_secs(60));
    let mut stored = q.export();
    assert_eq!(stored.len(), 2);
    let other_job = stored[1].1.clone();
    stored.push((JobId(3), "{\"schema\":1,".to_owned()));
    stored.push((JobId(4), other_job));

    let mut restored = MemoryQueue::new(QueueSettings::default());
    let errors = restored.restore(t(5), stored.iter().map(|(id, json)| (*id, json.as_bytes())));
    let ids: Vec<u64> = errors.iter().map(|(id, _)| id.0).collect();
    assert_eq!(ids, vec![3, 4], "{errors:?}");
    assert!(matches!(errors[1].1, DecodeError::Inconsistent(_)));
    assert_eq!(restored.get(JobId(1)), q.get(JobId(1)));
    assert_eq!(restored.get(JobId(2)), q.get(JobId(2)));
    let dead: Vec<(u64, String)> = restored
        .list_dead()
        .into_iter()
        .map(|r| {
            (
                r.id.0,
                r.history[0].reason.split(':').next().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        dead,
        vec![
            (3, REASON_CORRUPT_RECORD.to_owned()),
            (4, REASON_CORRUPT_RECORD.to_owned())
        ]
    );
    // An operator can inspect and remove the placeholder like any dead job.
    assert_eq!(
        restored.remove_dead(t(6), JobId(3)).unwrap().payload,
        "{\"schema\":1,"
    );
}
