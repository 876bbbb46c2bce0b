//! `anklet` in metrics aggregator mode (`metrics.aggregator: true`) as a real process on a real
//! Redis: no plugin runs, the metrics server answers for the fleet from the store, and a
//! SIGTERM ends it with exit 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_tests::redis_server::{ServerOptions, free_port, must_start};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(url: &str) -> Option<String> {
    let mut response = ureq::get(url).call().ok()?;
    response.body_mut().read_to_string().ok()
}

#[test]
fn aggregator_serves_fleet_metrics_and_stops_on_sigterm() {
    let redis = must_start(ServerOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let receiver_port = free_port().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "log:\n  file_dir: {logs}\nglobal_database_url: 127.0.0.1\nglobal_database_port: {redis_port}\nmetrics:\n  aggregator: true\n  port: \"{port}\"\n  sleep_interval: 1\nplugins:\n  - name: receiver\n    plugin: github_receiver\n    port: \"{receiver_port}\"\n    secret: s3cret\n    owner: acme\n    token: test-token\n    skip_redeliver: true\n",
            logs = dir.path().join("logs").display(),
            redis_port = redis.port(),
        ),
    )
    .unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_anklet"))
        .arg("-c")
        .arg(&config)
        .env_clear()
        .env("HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let v2 = loop {
        if let Some(body) = get(&format!("{base}/metrics/v2")) {
            break body;
        }
        assert!(Instant::now() < deadline, "the aggregator never answered");
        std::thread::sleep(Duration::from_millis(100));
    };
    let fleet: serde_json::Value = serde_json::from_str(&v2).unwrap();
    assert!(fleet.is_array(), "{v2}");
    assert_eq!(get(&format!("{base}/healthcheck")).as_deref(), Some("ok"));
    // No plugin runs: the receiver's port stays closed.
    assert!(get(&format!("http://127.0.0.1:{receiver_port}/healthcheck")).is_none());

    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(daemon.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = daemon.kill();
            panic!("the aggregator did not stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}
