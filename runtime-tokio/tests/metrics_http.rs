//! The axum metrics server live: a registry fed a realistic notice sequence, served over HTTP
//! and checked with `promtool check metrics`; heartbeats from the async helpers and the
//! aggregator's fleet view (stale hosts marked) on the embedded store in-process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../core/tests/metrics_support/mod.rs"]
mod metrics_support;

use anklet::heartbeat::{HostProbe, beat, refresh};
use anklet::metrics::{MetricsServer, MetricsSource, bind_metrics_port};
use anklet::store::shared::SharedStore;
use anklet_core::ids::{HostId, JobId};
use anklet_core::labels::ClaimFilter;
use anklet_core::metrics::{Metrics, QueueDepth};
use anklet_core::queue::QueueSettings;
use anklet_core::queue::conformance::sample_job;
use anklet_core::queue::txn::Op;
use anklet_lite::clock::Clock;
use anklet_lite::store::embedded::open_store;
use anklet_lite::store::shared::Exclusive;
use anklet_tests::metrics_suite::{get, live_endpoint, promtool_check};
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_endpoint_passes_promtool() {
    let registry = Arc::new(Mutex::new(metrics_support::realistic()));
    let server = MetricsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        registry,
        Arc::new(Clock::new()),
    )
    .await
    .unwrap();
    let base = format!("http://{}", server.local_addr());
    blocking(move || {
        live_endpoint(&base, &["mac-1", "mac-2"]);
        assert_eq!(get(&base, "/metrics/v2").0, 404);
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unset_port_takes_the_first_free_from_8080() {
    let first = bind_metrics_port(None).await.unwrap();
    let port = first.local_addr().unwrap().port();
    assert!(port >= 8080);
    assert!(bind_metrics_port(Some(port)).await.is_err());
}

/// The heartbeat's refresh counts the queue's places (`Op::Depth`, no record read) into the
/// `anklet_queue_depth` gauges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_counts_queued_claimed_and_dead_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = open_store(dir.path().join("queue.redb"), QueueSettings::default()).unwrap();
    let store = SharedStore::Blocking(Arc::new(Exclusive::new(embedded)));
    let clock = Arc::new(Clock::new());
    let host = HostId("mac-1".to_owned());
    for id in 1..=4 {
        let op = Op::Enqueue(sample_job(id, "acme", Some("t1")));
        store.run(clock.now(), op).await.unwrap();
    }
    for _ in 0..2 {
        let op = Op::Claim(
            host.clone(),
            ClaimFilter::default(),
            Duration::from_secs(60),
        );
        store.run(clock.now(), op).await.unwrap();
    }
    let op = Op::DeadLetter(JobId(1), host, "pull_failed".to_owned());
    store.run(clock.now(), op).await.unwrap();
    let registry = Arc::new(Mutex::new(Metrics::new(clock.now())));
    refresh(&registry, &store, &clock, &HostProbe::new()).await;
    let depth = *registry.lock().unwrap().queue_depth().unwrap();
    assert_eq!(
        depth,
        QueueDepth {
            queued: 2,
            claimed: 1,
            dead: 1
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_from_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = open_store(dir.path().join("queue.redb"), QueueSettings::default()).unwrap();
    let store = SharedStore::Blocking(Arc::new(Exclusive::new(embedded)));
    let registry = Arc::new(Mutex::new(metrics_support::realistic()));
    let clock = Arc::new(Clock::new());
    beat(&registry, &store, &clock, &["mac-2".to_owned()]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    refresh(&registry, &store, &clock, &HostProbe::new()).await;
    beat(&registry, &store, &clock, &["mac-1".to_owned()]).await;
    {
        let m = registry.lock().unwrap();
        assert_eq!(m.queue_depth().unwrap().queued, 0);
        assert!(m.host_stats().unwrap().cpu_count >= 1);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let source = MetricsSource::Fleet {
        store,
        stale_after: Duration::from_secs(2),
    };
    let server = MetricsServer::serve(listener, source, clock).unwrap();
    let base = format!("http://{}", server.local_addr());
    blocking(move || {
        let (status, _, v2) = get(&base, "/metrics/v2");
        assert_eq!(status, 200, "{v2}");
        let v2: serde_json::Value = serde_json::from_str(&v2).unwrap();
        let stale: Vec<(String, bool)> = v2
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["host"].as_str().unwrap().to_owned(),
                    e["stale"].as_bool().unwrap(),
                )
            })
            .collect();
        assert!(stale.contains(&("mac-1".to_owned(), false)), "{stale:?}");
        assert!(stale.contains(&("mac-2".to_owned(), true)), "{stale:?}");
        let (_, _, standard) = get(&base, "/metrics");
        let verdict = promtool_check(&standard);
        assert!(verdict.passed(), "{verdict:?}\n{standard}");
        let (_, _, anklet) = get(&base, "/metrics/v1?format=prometheus");
        assert!(promtool_check(&anklet).parsed(), "{anklet}");
    })
    .await;
    server.stop().await;
}
