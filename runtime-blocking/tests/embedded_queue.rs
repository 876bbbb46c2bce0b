//! The embedded (redb) store against core's queue semantics: the conformance suite, the random
//! harness, a differential run against the in-memory model, reopening, corrupt records,
//! claim paging and the lock on the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::Completion;
use anklet_core::ids::{HostId, JobId, TemplateId};
use anklet_core::labels::ClaimFilter;
use anklet_core::queue::conformance::{self, Harness, sample_job};
use anklet_core::queue::txn::{Backend, Fetched, Read};
use anklet_core::queue::{JobQueue, MemoryQueue, Place, QueueSettings, REASON_CORRUPT_RECORD};
use anklet_core::time::Timestamp;
use anklet_lite::store::embedded::{EmbeddedBackend, EmbeddedError, EmbeddedStore, open_store};
use proptest::prelude::*;
use redb::ReadableTable;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[path = "../../core/tests/queue_strategies/mod.rs"]
mod queue_strategies;
use queue_strategies::{op, settings};

/// A fresh store file in its own temporary folder (kept alive with the store).
struct Fresh {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn fresh() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.redb");
    Fresh { _dir: dir, path }
}

fn store_at(path: &std::path::Path, settings: QueueSettings) -> EmbeddedStore {
    open_store(path, settings).unwrap()
}

#[test]
fn conformance_suite_passes() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    let results = conformance::run_all(|settings| {
        let i = n.fetch_add(1, Ordering::Relaxed);
        store_at(&dir.path().join(format!("q{i}.redb")), settings)
    });
    assert!(results.len() >= 15, "{} checks", results.len());
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|(name, r)| r.err().map(|v| format!("{name}: {v}")))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_invariants(settings in settings(), ops in prop::collection::vec(op(), 1..120)) {
        let f = fresh();
        let mut h = Harness::new(store_at(&f.path, settings));
        if let Err(v) = h.run(&ops) {
            prop_assert!(false, "{}", v);
        }
    }

    #[test]
    fn answers_equal_the_model(settings in settings(), ops in prop::collection::vec(op(), 1..120)) {
        let f = fresh();
        let mut model = Harness::new(MemoryQueue::new(settings.clone()));
        let mut embedded = Harness::new(store_at(&f.path, settings));
        for (n, op) in ops.iter().enumerate() {
            let a = model.step(op).map_err(|v| v.to_string());
            let b = embedded.step(op).map_err(|v| v.to_string());
            prop_assert_eq!(&a, &b, "step {} {:?}", n, op);
            let now = model.now;
            prop_assert_eq!(model.q.list(now), embedded.q.list(now).unwrap(), "step {} {:?}", n, op);
        }
    }
}

fn everything(q: &EmbeddedStore) -> Fetched {
    q.backend().read(&Read::All).unwrap()
}

#[test]
fn reopened_store_has_the_same_state() {
    let f = fresh();
    let settings = QueueSettings::default();
    let a = HostId("a".into());
    let (before, listing, finished, hosts) = {
        let mut q = store_at(&f.path, settings.clone());
        for id in 1..=5 {
            q.enqueue(Timestamp(10 + id), sample_job(id, "acme", Some("t1")))
                .unwrap();
        }
        let one = q
            .claim(
                Timestamp(100),
                &a,
                &ClaimFilter::default(),
                Duration::from_secs(60),
            )
            .unwrap()
            .unwrap();
        q.complete(Timestamp(101), one.id, &a, &Completion::TimedOut)
            .unwrap()
            .unwrap();
        let two = q
            .claim(
                Timestamp(102),
                &a,
                &ClaimFilter::default(),
                Duration::from_secs(60),
            )
            .unwrap()
            .unwrap();
        q.dead_letter(Timestamp(103), two.id, &a, "broken")
            .unwrap()
            .unwrap();
        q.claim(
            Timestamp(104),
            &a,
            &ClaimFilter::default(),
            Duration::from_secs(60),
        )
        .unwrap()
        .unwrap();
        q.heartbeat(Timestamp(105), &a, "{\"slots\":1}").unwrap();
        (
            everything(&q),
            q.list(Timestamp(200)).unwrap(),
            q.finished(one.id).unwrap(),
            q.list_hosts(Timestamp(200), Duration::from_secs(10))
                .unwrap(),
        )
    };
    let mut q = store_at(&f.path, settings);
    assert_eq!(everything(&q), before);
    assert_eq!(q.list(Timestamp(200)).unwrap(), listing);
    assert_eq!(q.finished(JobId(1)).unwrap(), finished);
    assert!(finished.is_some());
    assert_eq!(
        q.list_hosts(Timestamp(200), Duration::from_secs(10))
            .unwrap(),
        hosts
    );
    assert_eq!(listing.queued.len(), 2);
    assert_eq!(listing.claimed.len(), 1);
    assert_eq!(listing.dead.len(), 1);
    // The reopened store keeps working: the claim order and the revisions carry on.
    let next = q
        .claim(
            Timestamp(300),
            &a,
            &ClaimFilter::default(),
            Duration::from_secs(60),
        )
        .unwrap()
        .unwrap();
    assert_eq!(next.id, JobId(4));
    assert_eq!(
        q.enqueue(Timestamp(301), sample_job(1, "acme", Some("t1")))
            .unwrap(),
        anklet_core::queue::EnqueueOutcome::AlreadyKnown
    );
}

/// Writes raw bytes as job `id`'s stored record, bypassing the backend (as a bad disk, a bug
/// in an older build or a hand edit would). Same table definition as the backend's.
fn plant(path: &std::path::Path, id: u64, tag: u8, key: u64, bytes: &[u8]) {
    const RECORDS: redb::TableDefinition<u64, (u64, u8, u64, &[u8])> =
        redb::TableDefinition::new("records");
    let db = redb::Database::create(path).unwrap();
    let w = db.begin_write().unwrap();
    {
        let mut t = w.open_table(RECORDS).unwrap();
        let rev = t.get(id).unwrap().map_or(999_999, |g| g.value().0);
        t.insert(id, (rev, tag, key, bytes)).unwrap();
    }
    w.commit().unwrap();
}

fn corrupt_entry(q: &EmbeddedStore, id: JobId) -> anklet_core::queue::JobRecord {
    let dead = q.list_dead().unwrap();
    let r = dead
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("job {id} not in the dead letter: {dead:?}"))
        .clone();
    assert!(matches!(r.place, Place::Dead { .. }));
    assert!(
        r.history[0].reason.starts_with(REASON_CORRUPT_RECORD),
        "{:?}",
        r.history
    );
    r
}

#[test]
fn corrupt_records_end_in_the_dead_letter() {
    let f = fresh();
    let settings = QueueSettings::default();
    let a = HostId("a".into());
    {
        let mut q = store_at(&f.path, settings.clone());
        for id in 1..=3 {
            q.enqueue(Timestamp(id), sample_job(id, "acme", Some("t1")))
                .unwrap();
        }
    }
    // Job 1 (queued, first in line) becomes garbage; job 9 appears from nowhere as garbage.
    plant(&f.path, 1, 0, 1, b"\x00\xffnot json{");
    plant(&f.path, 9, 2, 0, b"{\"schema\": 99}");
    let mut q = store_at(&f.path, settings.clone());
    // A claim skips the corrupt head of the line and takes job 2, without panicking.
    let got = q
        .claim(
            Timestamp(50),
            &a,
            &ClaimFilter::default(),
            Duration::from_secs(60),
        )
        .unwrap()
        .unwrap();
    assert_eq!(got.id, JobId(2));
    let one = corrupt_entry(&q, JobId(1));
    assert!(one.payload.contains("not json"), "{}", one.payload);
    corrupt_entry(&q, JobId(9));
    let listing = q.list(Timestamp(60)).unwrap();
    assert_eq!(listing.dead.len(), 2);
    assert_eq!(listing.queued.len(), 1);
    assert_eq!(listing.claimed.len(), 1);
    // The placeholders were persisted: a reopened store lists them without re-detecting.
    drop(q);
    let mut q = store_at(&f.path, settings);
    corrupt_entry(&q, JobId(1));
    let nine = corrupt_entry(&q, JobId(9));
    assert!(nine.payload.contains("99"));
    // An operator can remove them; they are then remembered as finished.
    q.remove_dead(Timestamp(70), JobId(1)).unwrap().unwrap();
    q.remove_dead(Timestamp(70), JobId(9)).unwrap().unwrap();
    assert!(q.list_dead().unwrap().is_empty());
    assert!(q.finished(JobId(1)).unwrap().is_some());
}

#[test]
fn corrupt_record_found_by_get_and_by_the_reaper() {
    let f = fresh();
    let settings = QueueSettings::default();
    let a = HostId("a".into());
    {
        let mut q = store_at(&f.path, settings.clone());
        q.enqueue(Timestamp(1), sample_job(1, "acme", Some("t1")))
            .unwrap();
        q.enqueue(Timestamp(2), sample_job(2, "acme", Some("t1")))
            .unwrap();
        q.claim(
            Timestamp(3),
            &a,
            &ClaimFilter::default(),
            Duration::from_secs(1),
        )
        .unwrap()
        .unwrap();
    }
    // The claimed job 1 (indexed by lease expiry 1003) turns into a record of another job.
    let other = serde_json_like_record_of_job_2(&f.path);
    plant(&f.path, 1, 1, 1003, other.as_bytes());
    let mut q = store_at(&f.path, settings);
    assert!(q.reap_expired(Timestamp(5_000)).unwrap().is_empty());
    let one = q.get(JobId(1)).unwrap().unwrap();
    assert!(matches!(one.place, Place::Dead { .. }));
    assert!(
        one.history[0].reason.contains("stored under"),
        "{:?}",
        one.history
    );
    assert_eq!(q.list(Timestamp(5_000)).unwrap().queued.len(), 1);
}

/// Job 2's stored JSON, read through the backend.
fn serde_json_like_record_of_job_2(path: &std::path::Path) -> String {
    let q = store_at(path, QueueSettings::default());
    let r = q.get(JobId(2)).unwrap().unwrap();
    r.encode().unwrap()
}

#[test]
fn claims_page_past_jobs_the_host_cannot_serve() {
    let f = fresh();
    let mut q = store_at(&f.path, QueueSettings::default());
    // 150 jobs for t0 fill more than two claim pages before the first job for t1.
    for id in 1..=150 {
        q.enqueue(Timestamp(id), sample_job(id, "acme", Some("t0")))
            .unwrap();
    }
    q.enqueue(Timestamp(151), sample_job(151, "acme", Some("t1")))
        .unwrap();
    let filter = ClaimFilter {
        owner: None,
        templates: vec![TemplateId("t1".into())],
        held: vec![],
    };
    let a = HostId("a".into());
    let got = q
        .claim(Timestamp(200), &a, &filter, Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert_eq!(got.id, JobId(151));
    assert!(
        q.claim(Timestamp(201), &a, &filter, Duration::from_secs(60))
            .unwrap()
            .is_none()
    );
    let first = q
        .claim(
            Timestamp(202),
            &a,
            &ClaimFilter::default(),
            Duration::from_secs(60),
        )
        .unwrap()
        .unwrap();
    assert_eq!(first.id, JobId(1));
}

#[test]
fn a_second_open_reports_the_lock_and_the_path() {
    let f = fresh();
    let _held = EmbeddedBackend::open(&f.path).unwrap();
    let err = EmbeddedBackend::open(&f.path).unwrap_err();
    assert!(matches!(err, EmbeddedError::Locked { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&f.path.display().to_string()), "{msg}");
    assert!(msg.contains("locked"), "{msg}");
}

#[test]
fn a_file_that_is_not_a_store_is_refused_with_its_path() {
    let f = fresh();
    std::fs::write(
        &f.path,
        b"this is not a redb file, just some text that is long enough",
    )
    .unwrap();
    let err = EmbeddedBackend::open(&f.path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&f.path.display().to_string()), "{msg}");
}

#[test]
fn open_creates_missing_folders() {
    let f = fresh();
    let nested = f.path.with_file_name("a/b/queue.redb");
    let q = store_at(&nested, QueueSettings::default());
    assert!(nested.exists());
    assert_eq!(q.backend().path(), nested.as_path());
}
