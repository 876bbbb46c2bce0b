//! The daemon's metrics wiring end to end, in-process: a daemon with a receiver serves its
//! metrics on `metrics.port`, counts the webhooks its receiver answered, reads the queue depth
//! on each heartbeat interval, and its `/metrics` passes promtool; a config with
//! `metrics.aggregator: true` runs no plugin and serves the fleet routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod redis_support;

use anklet_core::ids::HostId;
use anklet_core::metrics::{Metrics, PluginIdentity};
use anklet_core::queue::QueueSettings;
use anklet_core::queue::txn::Op;
use anklet_lite::daemon::{Control, run};
use anklet_tests::metrics_suite::{get, promtool_check};
use anklet_tests::receiver_suite::{SECRET, post_job};
use anklet_tests::redis_server::{ServerOptions, free_port, must_start};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn start(yaml: &str, home: &std::path::Path) -> (Sender<Control>, JoinHandle<ExitCode>) {
    let env = BTreeMap::from([("HOME".to_owned(), home.display().to_string())]);
    let config = anklet_core::config::load("config.yml", yaml, &env)
        .unwrap()
        .config;
    let (tx, rx) = channel();
    let thread = std::thread::spawn(move || run(&config, &env, rx));
    (tx, thread)
}

/// Polls `path` until `check` accepts the body (10 s at most).
fn wait_for(base: &str, path: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = std::panic::catch_unwind(|| get(base, path).2).unwrap_or_default();
        if check(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never matched; last body:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_daemon_serves_what_its_plugins_did() {
    let home = tempfile::tempdir().unwrap();
    let (metrics_port, receiver_port) = (free_port().unwrap(), free_port().unwrap());
    let yaml = format!(
        "store_path: {store}\nmetrics:\n  port: \"{metrics_port}\"\n  sleep_interval: 1\nplugins:\n  - name: receiver\n    plugin: github_receiver\n    port: \"{receiver_port}\"\n    secret: {SECRET}\n    owner: acme\n    token: test-token\n    github_api_url: http://127.0.0.1:{api_port}\n    skip_redeliver: true\n",
        store = home.path().join("queue.redb").display(),
        api_port = free_port().unwrap(),
    );
    let (control, daemon) = start(&yaml, home.path());
    let base = format!("http://127.0.0.1:{metrics_port}");
    wait_for(&base, "/healthcheck", |b| b == "ok");
    let receiver = format!("http://127.0.0.1:{receiver_port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::panic::catch_unwind(|| post_job(&receiver, "delivery-1", 101).0).ok() != Some(200) {
        assert!(
            Instant::now() < deadline,
            "the receiver never stored the job"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = wait_for(&base, "/metrics", |b| {
        b.contains("anklet_webhooks_accepted_total{receiver=\"receiver\",outcome=\"enqueued\"} 1\n")
            && b.contains("anklet_queue_depth{state=\"queued\"} 1\n")
    });
    let verdict = promtool_check(&text);
    assert!(verdict.passed(), "{verdict:?}\n{text}");
    let json = get(&base, "/metrics/v1").2;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["plugins"][0]["Name"], "receiver", "{json}");
    assert_eq!(v["plugins"][0]["PluginName"], "github_receiver", "{json}");
    control.send(Control::Stop).unwrap();
    assert_eq!(daemon.join().unwrap(), ExitCode::SUCCESS);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", metrics_port)).is_err(),
        "the metrics server stops with the daemon"
    );
}

#[test]
fn the_aggregator_runs_no_plugin_and_serves_the_fleet() {
    let redis = must_start(ServerOptions::default());
    let home = tempfile::tempdir().unwrap();
    let (metrics_port, receiver_port) = (free_port().unwrap(), free_port().unwrap());
    // A handler of the fleet beat once, long enough ago to be stale.
    let store = redis_support::store_on(&redis, "acme", QueueSettings::default());
    let mut m = Metrics::new(redis_support::now());
    m.add_handler(PluginIdentity::handler("mac-9"), redis_support::now());
    let payload = m.heartbeat_payload("mac-9", redis_support::now()).unwrap();
    store
        .run(
            redis_support::now(),
            Op::Heartbeat(HostId("mac-9".into()), payload),
        )
        .unwrap();
    let yaml = format!(
        "global_database_url: 127.0.0.1\nglobal_database_port: {port}\nmetrics:\n  aggregator: true\n  port: \"{metrics_port}\"\n  sleep_interval: 1\nplugins:\n  - name: receiver\n    plugin: github_receiver\n    port: \"{receiver_port}\"\n    secret: {SECRET}\n    owner: acme\n    token: test-token\n    skip_redeliver: true\n",
        port = redis.port(),
    );
    let (control, daemon) = start(&yaml, home.path());
    let base = format!("http://127.0.0.1:{metrics_port}");
    wait_for(&base, "/healthcheck", |b| b == "ok");
    let v2 = wait_for(&base, "/metrics/v2", |b| b.contains("\"stale\":true"));
    let v2: serde_json::Value = serde_json::from_str(&v2).unwrap();
    assert_eq!(v2[0]["custom_name"], "mac-9", "{v2}");
    let v1 = get(&base, "/metrics/v1?format=json").2;
    let v1: serde_json::Value = serde_json::from_str(&v1).unwrap();
    assert_eq!(v1["mac-9"]["plugin_status"], "idle", "{v1}");
    let text = get(&base, "/metrics").2;
    assert!(promtool_check(&text).passed(), "{text}");
    assert!(
        text.contains("anklet_fleet_host_stale{host=\"mac-9\"} 1\n"),
        "{text}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", receiver_port)).is_err(),
        "no plugin runs in aggregator mode"
    );
    control.send(Control::Stop).unwrap();
    assert_eq!(daemon.join().unwrap(), ExitCode::SUCCESS);
}
