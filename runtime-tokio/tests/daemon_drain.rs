//! Draining the `anklet` daemon (a real process against the GitHub emulator and a fake Mac):
//! SIGQUIT or the drain file `~/.config/anklet/.drain` lets the running job finish, takes no
//! new one, and exits 0 with no VM left; an idle daemon stops at once on SIGINT, and
//! `anklet -s drain` finds it through its pid file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon_support;

use daemon_support::{Fleet, kill, wait_exit, wait_for};
use std::time::Duration;

/// Runs one job to `running`, drains with `drain`, and checks the outcome.
fn drain_with(drain: impl FnOnce(&Fleet, &std::process::Child)) {
    let fleet = Fleet::new();
    let mut daemon = fleet.spawn_daemon();
    let first = fleet.create_job(3_000);
    fleet.wait_running();

    drain(&fleet, &daemon);
    wait_for(Duration::from_secs(20), "the drain to begin", || {
        fleet
            .log()
            .contains("finishing running jobs, taking no more")
    });
    let second = fleet.create_job(1_000);
    let status = wait_exit(&fleet, &mut daemon, Duration::from_secs(60));

    assert_eq!(status.code(), Some(0), "log:\n{}", fleet.log());
    let first = fleet.emulator.job(first).unwrap();
    assert_eq!(first.conclusion.as_deref(), Some("success"));
    let second = fleet.emulator.job(second).unwrap();
    assert_eq!(
        second.status.as_str(),
        "queued",
        "a draining daemon took a job"
    );
    assert_eq!(fleet.vms_left(), 0);
    assert!(fleet.emulator.runners().is_empty());
}

#[test]
fn sigquit_finishes_the_running_job_and_takes_no_more() {
    drain_with(|_, daemon| kill(daemon, "-QUIT"));
}

#[test]
fn the_drain_file_finishes_the_running_job_and_takes_no_more() {
    drain_with(|fleet, _| {
        let dir = fleet.home.join(".config/anklet");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(".drain"), "").unwrap();
    });
}

#[test]
fn sigint_stops_an_idle_daemon_at_once() {
    let fleet = Fleet::new();
    let mut daemon = fleet.spawn_daemon();
    kill(&daemon, "-INT");
    let status = wait_exit(&fleet, &mut daemon, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "log:\n{}", fleet.log());
    assert!(!fleet.pid_file().exists());
    assert!(fleet.log().contains("receiver stopped"));
}

#[test]
fn s_drain_finds_the_daemon_by_its_pid_file() {
    let fleet = Fleet::new();
    let mut daemon = fleet.spawn_daemon();
    wait_for(Duration::from_secs(10), "the pid file", || {
        fleet.pid_file().exists()
    });
    let sent = std::process::Command::new(daemon_support::BIN)
        .args(["-s", "drain"])
        .env_clear()
        .env("HOME", &fleet.home)
        .output()
        .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    assert!(String::from_utf8_lossy(&sent.stdout).contains("sent drain to anklet"));
    let status = wait_exit(&fleet, &mut daemon, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "log:\n{}", fleet.log());
    assert!(fleet.log().contains("draining: finishing running jobs"));
}
