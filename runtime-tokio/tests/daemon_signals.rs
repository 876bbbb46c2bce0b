//! The `anklet` daemon as a real process against the GitHub emulator and a fake Mac: while it
//! runs it serves its metrics; the first SIGTERM stops it gracefully (exit 0, no VM left, pid
//! file gone), a second one while the stop is still under way exits 1 at once. A job whose
//! runner already runs it is not cut short by a stop (GitHub refuses to remove a busy runner;
//! core keeps the VM until it can), so the graceful stop ends when that job does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_support;

use daemon_support::{Fleet, TOKEN, kill, wait_exit, wait_for};
use std::time::Duration;

#[test]
fn sigterm_during_a_job_stops_cleanly_and_leaves_no_vm() {
    let fleet = Fleet::new();
    // The most detailed logs (HTTP clients and servers included) must not carry the token.
    let mut daemon = fleet.spawn_daemon_logging("trace");
    wait_for(Duration::from_secs(10), "the pid file", || {
        fleet.pid_file().exists()
    });
    assert_eq!(
        std::fs::read_to_string(fleet.pid_file()).unwrap().trim(),
        daemon.id().to_string()
    );
    let job = fleet.create_job(6_000);
    fleet.wait_running();
    assert_eq!(fleet.vms_left(), 1);
    let metrics = fleet.metrics("/metrics");
    assert!(
        metrics.contains(
            "anklet_webhooks_accepted_total{receiver=\"test-receiver\",outcome=\"enqueued\"} 1\n"
        ),
        "{metrics}"
    );

    kill(&daemon, "-TERM");
    let status = wait_exit(&fleet, &mut daemon, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "log:\n{}", fleet.log());
    assert_eq!(fleet.vms_left(), 0);
    assert!(fleet.emulator.runners().is_empty());
    let job = fleet.emulator.job(job).unwrap();
    assert_eq!(job.conclusion.as_deref(), Some("success"));
    assert!(!fleet.pid_file().exists());
    let log = fleet.log();
    assert!(log.contains("stopping: jobs not yet running go back to the queue"));
    assert!(log.contains("handler stopped"));
    assert!(log.contains("\"level\":\"DEBUG\""));
    assert!(!log.contains(TOKEN), "the token was logged");
}

#[test]
fn a_second_sigterm_exits_1_at_once() {
    let fleet = Fleet::new();
    let mut daemon = fleet.spawn_daemon();
    fleet.create_job(60_000);
    fleet.wait_running();
    // Deleting the VM now hangs, so the graceful stop cannot finish on its own.
    fleet.faults(r#"[{"op": "delete", "action": "hang"}]"#);

    kill(&daemon, "-TERM");
    wait_for(Duration::from_secs(20), "the stop to begin", || {
        fleet.log().contains("stopping: jobs not yet running")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "stopped despite the hung delete"
    );

    kill(&daemon, "-TERM");
    let status = wait_exit(&fleet, &mut daemon, Duration::from_secs(10));
    assert_eq!(status.code(), Some(1));
    assert!(fleet.log().contains("second stop signal: exiting now"));
}
