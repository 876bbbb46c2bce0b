//! The async Redis store on a real `redis-server`: the conformance suite and the random
//! harness through a small blocking wrapper, the async transaction loop, a claimer blocked in
//! `wait_for_work` woken by an enqueue from another store, and an unreachable server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet::store::redis::{AsyncRedisOptions, AsyncRedisStore};
use anklet_core::config::DatabaseSettings;
use anklet_core::ids::{HostId, JobId};
use anklet_core::labels::ClaimFilter;
use anklet_core::queue::conformance::{self, Harness, sample_job};
use anklet_core::queue::redis_layout::{DEFAULT_PREFIX, RedisLayout};
use anklet_core::queue::txn::{Backend, Commit, Fetched, Op, Read, Reply, Store};
use anklet_core::queue::{EnqueueOutcome, QueueSettings};
use anklet_core::time::Timestamp;
use anklet_tests::redis_server::{RedisServer, ServerOptions, free_port, must_start};
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[path = "../../core/tests/queue_strategies/mod.rs"]
mod queue_strategies;
use queue_strategies::{op, settings};

fn db(port: u16) -> DatabaseSettings {
    anklet_tests::redis_server::test_db(port)
}

fn fresh_queue() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "aq{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn async_store(port: u16, queue: &str, settings: QueueSettings) -> AsyncRedisStore {
    let mut o = AsyncRedisOptions::new(RedisLayout::new(DEFAULT_PREFIX, queue).unwrap());
    o.max_backoff = Duration::from_millis(400);
    AsyncRedisStore::new(&db(port), o, settings).unwrap()
}

/// The async store behind core's blocking `Backend`, one current-thread runtime each.
struct BlockOn {
    rt: tokio::runtime::Runtime,
    store: AsyncRedisStore,
}

impl Backend for BlockOn {
    type Error = anklet::store::redis::AsyncRedisError;
    fn read(&mut self, read: &Read) -> Result<Fetched, Self::Error> {
        self.rt.block_on(self.store.read(read))
    }
    fn commit(&mut self, commit: &Commit) -> Result<bool, Self::Error> {
        self.rt.block_on(self.store.commit(commit))
    }
}

fn blocking(server: &RedisServer, settings: QueueSettings) -> Store<BlockOn> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = async_store(server.port(), &fresh_queue(), settings.clone());
    Store::new(BlockOn { rt, store }, settings)
}

#[test]
fn conformance_suite_passes() {
    let server = must_start(ServerOptions::default());
    let results = conformance::run_all(|settings| blocking(&server, settings));
    assert!(results.len() >= 15, "{} checks", results.len());
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|(name, r)| r.err().map(|v| format!("{name}: {v}")))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn random_operations_keep_the_invariants() {
    // One server owned by this test (a static one would never be dropped and killed).
    let server = must_start(ServerOptions::default());
    let config = ProptestConfig {
        cases: 50,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let strategy = (settings(), prop::collection::vec(op(), 1..120));
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&strategy, |(settings, ops)| {
        let mut h = Harness::new(blocking(&server, settings));
        if let Err(v) = h.run(&ops) {
            prop_assert!(false, "{}", v);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    Timestamp::from_millis(u64::try_from(ms).unwrap())
}

#[tokio::test]
async fn the_async_loop_runs_transactions_to_their_reply() {
    let server = must_start(ServerOptions::default());
    let mut s = async_store(server.port(), &fresh_queue(), QueueSettings::default());
    let job = sample_job(7, "acme", Some("t"));
    let r = s.run(now(), Op::Enqueue(job.clone())).await.unwrap();
    assert_eq!(r, Reply::Enqueued(EnqueueOutcome::Enqueued));
    let r = s.run(now(), Op::Enqueue(job)).await.unwrap();
    assert_eq!(r, Reply::Enqueued(EnqueueOutcome::AlreadyKnown));
    let host = HostId("h".into());
    let claim = Op::Claim(host, ClaimFilter::default(), Duration::from_secs(60));
    let Reply::Claimed(Some(rec)) = s.run(now(), claim.clone()).await.unwrap() else {
        panic!("no claim")
    };
    assert_eq!(rec.id, JobId(7));
    assert_eq!(s.run(now(), claim).await.unwrap(), Reply::Claimed(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_claimer_is_woken_by_an_enqueue() {
    let server = must_start(ServerOptions::default());
    let queue = fresh_queue();
    let settings = QueueSettings::default();
    let mut claimer = async_store(server.port(), &queue, settings.clone());
    let mut receiver = async_store(server.port(), &queue, settings);
    let host = HostId("h".into());
    let claim = Op::Claim(host, ClaimFilter::default(), Duration::from_secs(60));
    assert_eq!(
        claimer.run(now(), claim.clone()).await.unwrap(),
        Reply::Claimed(None)
    );
    let wait = Duration::from_secs(20);
    let task = tokio::spawn(async move {
        let start = Instant::now();
        let woken = claimer.wait_for_work(wait).await.unwrap();
        let woke_after = start.elapsed();
        let got = claimer.run(now(), claim).await.unwrap();
        (woken, woke_after, got, start)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let enqueued_at = Instant::now();
    receiver
        .run(now(), Op::Enqueue(sample_job(1, "acme", Some("t"))))
        .await
        .unwrap();
    let (woken, woke_after, got, _) = task.await.unwrap();
    let pickup = enqueued_at.elapsed();
    assert!(woken, "woken by the enqueue, not by the timeout");
    assert!(woke_after < wait);
    let Reply::Claimed(Some(r)) = got else {
        panic!("{got:?}")
    };
    assert_eq!(r.id, JobId(1));
    println!("picked up {pickup:?} after the enqueue (waited {woke_after:?})");
}

#[tokio::test]
async fn an_unreachable_server_fails_with_backoff_not_a_busy_loop() {
    let port = free_port().unwrap();
    let mut s = async_store(port, &fresh_queue(), QueueSettings::default());
    let counters = s.counters();
    let start = Instant::now();
    let mut errors = 0;
    while start.elapsed() < Duration::from_millis(1_500) {
        assert!(s.run(now(), Op::Get(JobId(1))).await.is_err());
        errors += 1;
    }
    let attempts = counters.connect_attempts.load(Ordering::Relaxed);
    println!("{errors} errors, {attempts} connect attempts in 1.5 s");
    assert!((3..=12).contains(&attempts), "{attempts} connect attempts");
    assert!(s.wait_for_work(Duration::from_millis(10)).await.is_err());
}

#[test]
fn cluster_mode_passes_the_conformance_suite_and_wakes_claimers() {
    use anklet_tests::redis_server::RedisCluster;
    let cluster = RedisCluster::start(3).unwrap_or_else(|e| panic!("cluster: {e}"));
    let port = cluster.nodes()[0].port();
    let cluster_store = |queue: &str, settings: QueueSettings| {
        let mut db = db(port);
        db.cluster_mode = true;
        let o = AsyncRedisOptions::new(RedisLayout::new(DEFAULT_PREFIX, queue).unwrap());
        AsyncRedisStore::new(&db, o, settings).unwrap()
    };
    let results = conformance::run_all(|settings| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = cluster_store(&fresh_queue(), settings.clone());
        Store::new(BlockOn { rt, store }, settings)
    });
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|(name, r)| r.err().map(|v| format!("{name}: {v}")))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let queue = fresh_queue();
        let mut claimer = cluster_store(&queue, QueueSettings::default());
        let mut receiver = cluster_store(&queue, QueueSettings::default());
        let claim = Op::Claim(
            HostId("h".into()),
            ClaimFilter::default(),
            Duration::from_secs(60),
        );
        let task = tokio::spawn(async move {
            let woken = claimer
                .wait_for_work(Duration::from_secs(20))
                .await
                .unwrap();
            (woken, claimer.run(now(), claim).await.unwrap())
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        receiver
            .run(now(), Op::Enqueue(sample_job(1, "acme", Some("t"))))
            .await
            .unwrap();
        let (woken, got) = task.await.unwrap();
        assert!(woken);
        let Reply::Claimed(Some(r)) = got else {
            panic!("{got:?}")
        };
        assert_eq!(r.id, JobId(1));
    });
}
