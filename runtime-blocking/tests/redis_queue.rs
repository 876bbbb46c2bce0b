//! The Redis store on a real `redis-server` against core's queue semantics: the conformance
//! suite, the random harness, a differential run against the in-memory model, a corrupt record
//! and an unreachable server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::ids::{HostId, JobId};
use anklet_core::labels::ClaimFilter;
use anklet_core::queue::conformance::{self, Harness, sample_job};
use anklet_core::queue::redis_layout::{KeyName, member};
use anklet_core::queue::{JobQueue, MemoryQueue, Place, QueueSettings, REASON_CORRUPT_RECORD};
use anklet_core::secret::Secret;
use anklet_core::time::Timestamp;
use anklet_lite::store::redis::{RedisBackend, RedisStore};
use anklet_tests::redis_server::{RedisServer, ServerOptions, free_port, must_start};
use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../../core/tests/queue_strategies/mod.rs"]
mod queue_strategies;
mod redis_support;
use queue_strategies::{op, settings};
use redis_support::{db, fresh_queue, options, store, store_on};

#[test]
fn conformance_suite_passes() {
    let server = must_start(ServerOptions::default());
    let results = conformance::run_all(|settings| store(&server, settings));
    assert!(results.len() >= 15, "{} checks", results.len());
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|(name, r)| r.err().map(|v| format!("{name}: {v}")))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Runs `cases` random cases of `body` against one server owned by the calling test (a
/// static server would never be dropped, leaving its process behind).
fn cases<T: std::fmt::Debug>(
    cases: u32,
    strategy: impl Strategy<Value = T>,
    body: impl Fn(&RedisServer, T) -> Result<(), TestCaseError>,
) {
    let server = must_start(ServerOptions::default());
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, |v| body(&server, v)) {
        panic!("{e}");
    }
}

#[test]
fn random_operations_keep_the_invariants() {
    let strategy = (settings(), prop::collection::vec(op(), 1..120));
    cases(100, strategy, |server, (settings, ops)| {
        let mut h = Harness::new(store(server, settings));
        if let Err(v) = h.run(&ops) {
            prop_assert!(false, "{}", v);
        }
        Ok(())
    });
}

#[test]
fn answers_equal_the_model() {
    let strategy = (settings(), prop::collection::vec(op(), 1..120));
    cases(100, strategy, |server, (settings, ops)| {
        let mut model = Harness::new(MemoryQueue::new(settings.clone()));
        let mut redis = Harness::new(store(server, settings));
        for (n, op) in ops.iter().enumerate() {
            let a = model.step(op).map_err(|v| v.to_string());
            let b = redis.step(op).map_err(|v| v.to_string());
            prop_assert_eq!(&a, &b, "step {} {:?}", n, op);
            let now = model.now;
            prop_assert_eq!(
                model.q.list(now),
                redis.q.list(now).unwrap(),
                "step {} {:?}",
                n,
                op
            );
        }
        Ok(())
    });
}

#[test]
fn a_corrupt_record_ends_in_the_dead_letter() {
    let server = must_start(ServerOptions::default());
    let queue = fresh_queue();
    let settings = QueueSettings::default();
    let mut q = store_on(&server, &queue, settings.clone());
    let t0 = Timestamp(1_000);
    for id in 1..=3 {
        q.enqueue(t0, sample_job(id, "acme", Some("t"))).unwrap();
    }
    let layout = q.backend().layout().clone();
    let jobs = layout.key(KeyName::Jobs).to_owned();
    // Garbage over job 1 (queued, oldest) the way an operator's redis-cli would write it, and a
    // record of nonsense under an id the queue never saw.
    let out = server
        .cli(&["HSET", &jobs, &member(JobId(1)), "{\"this is\": not json"])
        .unwrap();
    assert!(out.status.success());
    server
        .cli(&["HSET", &jobs, &member(JobId(77)), "\u{1}garbage"])
        .unwrap();

    // The claim skips the corrupt record and takes the next job in line.
    let got = q
        .claim(
            t0,
            &HostId("h".into()),
            &ClaimFilter::default(),
            Duration::from_secs(60),
        )
        .unwrap()
        .unwrap();
    assert_eq!(got.id, JobId(2));

    let dead = q.list_dead().unwrap();
    let ids: Vec<JobId> = dead.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![JobId(1), JobId(77)], "{dead:#?}");
    for r in &dead {
        assert!(matches!(r.place, Place::Dead { .. }));
        assert!(
            r.history[0].reason.starts_with(REASON_CORRUPT_RECORD),
            "{r:?}"
        );
    }
    assert_eq!(dead[0].payload, "{\"this is\": not json");
    // Persisted: the dead index holds both, the queued index no longer holds job 1.
    let dead_key = layout.key(KeyName::Dead).to_owned();
    let queued_key = layout.key(KeyName::Queued).to_owned();
    let zcard = |k: &str| {
        let o = server.cli(&["ZCARD", k]).unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    assert_eq!(zcard(&dead_key), "2");
    assert_eq!(zcard(&queued_key), "1");
    // A fresh store (another host) reads the placeholders as good records.
    let other = store_on(&server, &queue, settings);
    assert_eq!(other.list_dead().unwrap(), dead);
    assert!(
        q.backend()
            .counters()
            .quarantined
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
    // The operator can remove it for good.
    q.remove_dead(t0, JobId(77)).unwrap().unwrap();
    q.requeue_from_dead_letter(t0, JobId(1), "operator")
        .unwrap()
        .unwrap();
}

/// A tracing writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_unreachable_server_gives_errors_backoff_lines_and_no_busy_loop() {
    let port = free_port().unwrap();
    let mut db = db(port);
    db.password = Secret::new("hunter2-do-not-log");
    db.user = "anklet".into();
    let settings = QueueSettings::default();
    let backend = RedisBackend::new(&db, options(&fresh_queue(), &settings)).unwrap();
    let counters = backend.counters();
    let mut q = RedisStore::new(backend, settings);

    let buf = Captured::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let window = Duration::from_millis(1_500);
    let (calls, errors) = tracing::subscriber::with_default(subscriber, || {
        let start = Instant::now();
        let (mut calls, mut errors) = (0, 0);
        while start.elapsed() < window {
            calls += 1;
            if q.enqueue(Timestamp(1), sample_job(1, "acme", Some("t")))
                .is_err()
            {
                errors += 1;
            }
        }
        (calls, errors)
    });
    let attempts = counters
        .connect_attempts
        .load(std::sync::atomic::Ordering::Relaxed);
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("redis connect failed; backing off"))
        .collect();
    println!("{calls} calls, {errors} errors, {attempts} connect attempts in {window:?}");
    println!(
        "{}",
        lines.iter().take(6).copied().collect::<Vec<_>>().join("\n")
    );
    assert_eq!(calls, errors, "every call against a dead server fails");
    // Backoff 50, 100, 200, 400, 400... ms: about 6 attempts in 1.5 s, never hundreds.
    assert!((3..=12).contains(&attempts), "{attempts} connect attempts");
    assert_eq!(
        lines.len() as u64,
        attempts,
        "one warn line per failed attempt"
    );
    for (i, l) in lines.iter().enumerate() {
        assert!(l.contains("WARN"), "{l}");
        assert!(l.contains(&format!("attempt={}", i + 1)), "{l}");
        assert!(l.contains("delay_ms="), "{l}");
    }
    assert!(
        !logs.contains("hunter2"),
        "password leaked into logs:\n{logs}"
    );
    assert!(!format!("{:?}", q.backend()).contains("hunter2"));
}

#[test]
fn the_store_reconnects_after_the_server_restarts() {
    let mut server = must_start(ServerOptions {
        aof: true,
        ..ServerOptions::default()
    });
    let settings = QueueSettings::default();
    let mut q = store(&server, settings);
    let t = Timestamp(1_000);
    q.enqueue(t, sample_job(1, "acme", Some("t"))).unwrap();
    server.kill();
    assert!(q.get(JobId(1)).is_err());
    server.restart().unwrap();
    assert_eq!(q.get(JobId(1)).unwrap().unwrap().id, JobId(1));
    assert_eq!(q.backend().reconnects(), 1);
}

#[test]
fn a_claimer_blocked_in_wait_for_work_is_woken_by_an_enqueue() {
    let server = must_start(ServerOptions::default());
    let queue = fresh_queue();
    let settings = QueueSettings::default();
    let mut claimer = store_on(&server, &queue, settings.clone());
    let mut receiver = store_on(&server, &queue, settings.clone());
    let host = HostId("h".into());
    let lease = Duration::from_secs(60);
    let t = Timestamp(1_000);
    assert!(
        claimer
            .claim(t, &host, &ClaimFilter::default(), lease)
            .unwrap()
            .is_none()
    );
    let wait = Duration::from_secs(20);
    let blocked = std::thread::spawn(move || {
        let start = Instant::now();
        let woken = claimer.backend().wait_for_work(wait).unwrap();
        let got = claimer
            .claim(t, &host, &ClaimFilter::default(), lease)
            .unwrap();
        (woken, start.elapsed(), got)
    });
    std::thread::sleep(Duration::from_millis(300));
    let enqueued = Instant::now();
    receiver
        .enqueue(t, sample_job(1, "acme", Some("t")))
        .unwrap();
    let (woken, waited, got) = blocked.join().unwrap();
    println!("picked up {:?} after the enqueue", enqueued.elapsed());
    assert!(
        woken && waited < wait,
        "woken by the enqueue, not the timeout"
    );
    assert_eq!(got.unwrap().id, JobId(1));
    // Nobody waits now: a timeout answers false, and the wake list stays capped.
    for id in 2..=300 {
        receiver
            .enqueue(t, sample_job(id, "acme", Some("t")))
            .unwrap();
    }
    let wake = receiver.backend().layout().key(KeyName::Wake).to_owned();
    let len = server.cli(&["LLEN", &wake]).unwrap();
    let len: usize = String::from_utf8_lossy(&len.stdout).trim().parse().unwrap();
    assert_eq!(len, anklet_core::queue::redis_layout::DEFAULT_WAKE_CAP);
    let idle = store_on(&server, &fresh_queue(), settings);
    assert!(
        !idle
            .backend()
            .wait_for_work(Duration::from_millis(50))
            .unwrap()
    );
}

#[test]
fn acl_user_password_and_database_number_are_used() {
    let server = must_start(ServerOptions::default());
    let ok = server
        .cli(&[
            "ACL",
            "SETUSER",
            "anklet",
            "on",
            ">s3cret-pw",
            "~*",
            "+@all",
        ])
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "OK");
    let settings = QueueSettings::default();
    let queue = fresh_queue();
    let mut good = db(server.port());
    good.user = "anklet".into();
    good.password = Secret::new("s3cret-pw");
    good.database = 3;
    let mut q = RedisStore::new(
        RedisBackend::new(&good, options(&queue, &settings)).unwrap(),
        settings.clone(),
    );
    q.enqueue(Timestamp(1), sample_job(1, "acme", Some("t")))
        .unwrap();
    let jobs = q.backend().layout().key(KeyName::Jobs).to_owned();
    let exists = |db: &str| {
        let o = server.cli(&["-n", db, "EXISTS", &jobs]).unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    assert_eq!(exists("3"), "1");
    assert_eq!(exists("0"), "0");

    let mut bad = good.clone();
    bad.password = Secret::new("wrong-pw");
    bad.max_retries = 0;
    let q = RedisStore::new(
        RedisBackend::new(&bad, options(&queue, &settings)).unwrap(),
        settings,
    );
    let err = q.get(JobId(1)).unwrap_err().to_string();
    assert!(
        !err.contains("wrong-pw") && !err.contains("s3cret"),
        "{err}"
    );
    println!("wrong password: {err}");
}

#[test]
fn a_group_commit_applies_each_commit_as_if_alone() {
    use anklet_core::queue::JobRecord;
    use anklet_core::queue::txn::{Backend, Commit, Fetched, Read, Write};
    use anklet_lite::store::shared::CommitMany;
    let server = must_start(ServerOptions::default());
    let queue = fresh_queue();
    let settings = QueueSettings::default();
    let mut b = redis_support::backend(&server, &queue, &settings);
    let put = |id: u64, expect: Option<u64>| Commit {
        writes: vec![Write {
            id: JobId(id),
            expect,
            record: Some(JobRecord::new(
                sample_job(id, "acme", Some("t")),
                Timestamp(5),
            )),
        }],
        ..Commit::default()
    };
    let delete = |id: u64, expect: u64| Commit {
        writes: vec![Write {
            id: JobId(id),
            expect: Some(expect),
            record: None,
        }],
        ..Commit::default()
    };
    // New job 1; job 1 again (refused: it exists now); new job 2; job 1 deleted under the
    // revision the first commit gave it (the store's counter starts at 1); job 2 deleted
    // under a stale revision (refused).
    let flags = b
        .commit_many(&[
            put(1, None),
            put(1, None),
            put(2, None),
            delete(1, 1),
            delete(2, 7),
        ])
        .unwrap();
    assert_eq!(flags, vec![true, false, true, true, false]);
    let exists = |b: &mut RedisBackend, id| match b.read(&Read::Job(JobId(id))).unwrap() {
        Fetched::Job { record, .. } => record.is_some(),
        other => panic!("{other:?}"),
    };
    assert!(!exists(&mut b, 1) && exists(&mut b, 2));
    // One wake token per commit that queued a job.
    let layout = anklet_core::queue::redis_layout::RedisLayout::new(
        anklet_core::queue::redis_layout::DEFAULT_PREFIX,
        &queue,
    )
    .unwrap();
    let out = server.cli(&["LLEN", layout.key(KeyName::Wake)]).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
}
