//! The blocking metrics server live: a registry fed a realistic notice sequence served over
//! HTTP and checked with `promtool check metrics`; heartbeats stored by the daemon's heartbeat
//! loop and the aggregator's fleet view (stale hosts marked) on the embedded store in-process
//! and on a real Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../core/tests/metrics_support/mod.rs"]
mod metrics_support;
mod redis_support;

use anklet_core::ids::HostId;
use anklet_core::queue::QueueSettings;
use anklet_core::queue::txn::Op;
use anklet_lite::clock::Clock;
use anklet_lite::daemon::metrics::{Registry, beat, heartbeat_loop, lock};
use anklet_lite::metrics::{MetricsServer, MetricsSource, bind_metrics_port};
use anklet_lite::store::embedded::open_store;
use anklet_lite::store::shared::{Exclusive, SharedStore};
use anklet_tests::metrics_suite::{get, live_endpoint, promtool_check};
use anklet_tests::redis_server::{ServerOptions, must_start};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn serve(source: MetricsSource) -> (MetricsServer, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = MetricsServer::start(listener, source, Arc::new(Clock::new())).unwrap();
    let base = format!("http://{}", server.local_addr());
    (server, base)
}

fn realistic_registry() -> Registry {
    Arc::new(Mutex::new(metrics_support::realistic()))
}

#[test]
fn live_endpoint_passes_promtool() {
    let (server, base) = serve(MetricsSource::Local(realistic_registry()));
    live_endpoint(&base, &["mac-1", "mac-2"]);
    assert_eq!(get(&base, "/metrics/v2").0, 404, "v2 is the aggregator's");
    server.stop();
}

#[test]
fn promtool_refuses_what_anklet_serves() {
    // The check can fail: Anklet's own output (unquoted labels, strings as values) is refused.
    let anklet = "plugin_status{name=mac-1,plugin=github,owner=acme} running\n";
    assert!(!promtool_check(anklet).parsed());
    let lint = "# TYPE jobs counter\njobs 1\n";
    assert!(!promtool_check(lint).passed());
}

#[test]
fn an_unset_port_takes_the_first_free_from_8080() {
    let first = bind_metrics_port(None).unwrap();
    let port = first.local_addr().unwrap().port();
    assert!(port >= 8080);
    let second = bind_metrics_port(None).unwrap();
    assert!(second.local_addr().unwrap().port() > port);
    assert!(
        bind_metrics_port(Some(port)).is_err(),
        "a taken configured port is an error"
    );
}

/// Beats mac-2, waits past `stale`, beats mac-1 through the heartbeat loop, then reads the
/// fleet from an aggregator server on the same store.
fn fleet_on(store: Arc<dyn SharedStore>) {
    let registry = realistic_registry();
    let clock = Clock::new();
    beat(&registry, store.as_ref(), &clock, &["mac-2".to_owned()]);
    std::thread::sleep(Duration::from_millis(2100));
    let (stop, stopped) = std::sync::mpsc::channel();
    let loop_store = Arc::clone(&store);
    let loop_registry = Arc::clone(&registry);
    let thread = std::thread::spawn(move || {
        heartbeat_loop(
            &loop_registry,
            loop_store.as_ref(),
            &Clock::new(),
            &["mac-1".to_owned()],
            Duration::from_secs(3600),
            &stopped,
        );
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while lock(&registry).queue_depth().is_none() || lock(&registry).host_stats().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the loop never refreshed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stop);
    thread.join().unwrap();
    assert_eq!(lock(&registry).queue_depth().unwrap().queued, 0);
    assert!(lock(&registry).host_stats().unwrap().cpu_count >= 1);

    let (server, base) = serve(MetricsSource::Fleet {
        store,
        stale_after: Duration::from_secs(2),
    });
    let (status, _, v2) = get(&base, "/metrics/v2?format=json");
    assert_eq!(status, 200, "{v2}");
    let v2: serde_json::Value = serde_json::from_str(&v2).unwrap();
    let hosts: Vec<(String, bool)> = v2
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
    assert!(hosts.contains(&("mac-1".to_owned(), false)), "{hosts:?}");
    assert!(hosts.contains(&("mac-2".to_owned(), true)), "{hosts:?}");
    let (_, _, v1) = get(&base, "/metrics/v1");
    let v1: serde_json::Value = serde_json::from_str(&v1).unwrap();
    assert_eq!(v1["mac-1"]["plugin_total_successful_runs_since_start"], 1);
    assert_eq!(v1["mac-2"]["plugin_status"], "in_progress");
    let (_, _, standard) = get(&base, "/metrics");
    let verdict = promtool_check(&standard);
    assert!(verdict.passed(), "{verdict:?}\n{standard}");
    assert!(
        standard.contains("anklet_fleet_host_stale{host=\"mac-2\"} 1\n"),
        "{standard}"
    );
    let (_, _, anklet) = get(&base, "/metrics/v2?format=prometheus");
    assert!(promtool_check(&anklet).parsed(), "{anklet}");
    assert!(
        anklet.contains("plugin_stale{name=\"mac-2\",owner=\"acme\"} 1\n"),
        "{anklet}"
    );
    server.stop();
}

#[test]
fn fleet_from_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path().join("queue.redb"), QueueSettings::default()).unwrap();
    fleet_on(Arc::new(Exclusive::new(store)));
}

#[test]
fn fleet_from_redis() {
    let server = must_start(ServerOptions::default());
    let store = redis_support::store(&server, QueueSettings::default());
    fleet_on(Arc::new(Exclusive::new(store)));
}

#[test]
fn the_last_heartbeat_carries_the_final_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path().join("queue.redb"), QueueSettings::default()).unwrap();
    let store: Arc<dyn SharedStore> = Arc::new(Exclusive::new(store));
    let registry = realistic_registry();
    let (stop, stopped) = std::sync::mpsc::channel();
    let (loop_store, loop_registry) = (Arc::clone(&store), Arc::clone(&registry));
    let thread = std::thread::spawn(move || {
        heartbeat_loop(
            &loop_registry,
            loop_store.as_ref(),
            &Clock::new(),
            &["mac-1".to_owned()],
            Duration::from_secs(3600),
            &stopped,
        );
    });
    while lock(&registry).queue_depth().is_none() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let clock = Clock::new();
    lock(&registry).record_handler_notice(
        "mac-1",
        clock.now(),
        &anklet_core::handler::Notice::Status(anklet_core::handler::HostStatus::Stopped),
    );
    drop(stop);
    thread.join().unwrap();
    let reply = store
        .run(clock.now(), Op::Hosts(Duration::from_secs(60)))
        .unwrap();
    let anklet_core::queue::txn::Reply::Hosts(hosts) = reply else {
        panic!("{reply:?}");
    };
    let v: serde_json::Value = serde_json::from_str(&hosts[0].payload).unwrap();
    assert_eq!(v["plugins"][0]["Status"], "stopped");
}

#[test]
fn a_heartbeat_payload_round_trips_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path().join("queue.redb"), QueueSettings::default()).unwrap();
    let store: Arc<dyn SharedStore> = Arc::new(Exclusive::new(store));
    let registry = realistic_registry();
    let clock = Clock::new();
    beat(
        &registry,
        store.as_ref(),
        &clock,
        &["mac-1".to_owned(), "nobody".to_owned()],
    );
    let reply = store
        .run(clock.now(), Op::Hosts(Duration::from_secs(60)))
        .unwrap();
    let anklet_core::queue::txn::Reply::Hosts(hosts) = reply else {
        panic!("{reply:?}");
    };
    assert_eq!(hosts.len(), 1, "no heartbeat for an unknown handler");
    assert_eq!(hosts[0].host, HostId("mac-1".into()));
    let expected = lock(&registry).heartbeat_payload("mac-1", hosts[0].last_seen);
    let v: serde_json::Value = serde_json::from_str(&hosts[0].payload).unwrap();
    let e: serde_json::Value = serde_json::from_str(&expected.unwrap()).unwrap();
    assert_eq!(v["plugins"], e["plugins"]);
}
