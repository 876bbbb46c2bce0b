//! The behaviour both daemons must show, as real processes with real Redis, the GitHub emulator
//! and fake Macs ([`crate::fleet`]). Each runtime's tests call these with its own binary, so
//! one suite checks two implementations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use crate::fleet::{Fleet, FleetOptions};
use std::path::Path;
use std::time::{Duration, Instant};

const SIGINT: i32 = 2;
const SIGQUIT: i32 = 3;
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// A receiver and three hosts run 200 jobs; each completes exactly once and nothing is left.
pub fn jobs_complete_exactly_once(bin: &Path) {
    let jobs = 200;
    let fleet = Fleet::start(bin, FleetOptions::default());
    let ids = fleet.create_jobs(jobs, 200);
    fleet.wait_completed(&ids, Duration::from_secs(240));
    fleet.assert_completed_once(&ids);
    fleet.wait_clean(Duration::from_secs(30));
    let ran_on: std::collections::BTreeSet<String> = ids
        .iter()
        .filter_map(|id| fleet.emulator.job(*id)?.runner_name)
        .map(|r| r.split('-').take(4).collect::<Vec<_>>().join("-"))
        .collect();
    assert!(ran_on.len() > 1, "work was spread over hosts: {ran_on:?}");
    // Handler log lines carry the plugin's owner and repo and the job they are about.
    let job_line = format!("\"job\":{}", ids[0]);
    let logs: String = fleet.hosts.iter().map(|h| h.log()).collect();
    assert!(
        logs.lines().any(|l| l.contains(&job_line)
            && l.contains("\"owner\":\"acme\"")
            && l.contains("\"repo\":\"app\"")),
        "no handler line names job {} with its owner and repo",
        ids[0]
    );
}

/// An idle host on Redis picks up a job another process's receiver stored at once, not at its
/// next idle poll: the daemon waits on the store's wake list while its handler waits for work.
/// With a 30 s `sleep_interval`, a job queued a few seconds after the host went idle must run
/// within 10 s (the idle poll alone would take over 25 s).
pub fn an_idle_host_is_woken_by_another_process_receiver(bin: &Path) {
    let fleet = Fleet::start(
        bin,
        FleetOptions {
            hosts: 1,
            handler_config: "sleep_interval: 30".to_owned(),
            ..FleetOptions::default()
        },
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !fleet.hosts[0].log().contains("status idle") {
        assert!(
            Instant::now() < deadline,
            "the host never went idle:\n{}",
            fleet.hosts[0].log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Its first claim (right after the template inventory) has found nothing by now.
    std::thread::sleep(Duration::from_secs(2));
    let ids = fleet.create_jobs(1, 0);
    fleet.wait_completed(&ids, Duration::from_secs(10));
    fleet.assert_completed_once(&ids);
}

/// A host SIGKILLed while it prepares a job: the job's lease lapses, another host runs it, and
/// the killed host's VM is swept when it restarts.
pub fn sigkill_mid_job_is_recovered(bin: &Path) {
    let mut fleet = Fleet::start(
        bin,
        FleetOptions {
            hosts: 2,
            // Slow boots give a window between clone and runner.
            anka_time_scale: 0.2,
            ..FleetOptions::default()
        },
    );
    // Only host 0 runs while the job is taken.
    fleet.hosts[1].signal(SIGKILL);
    fleet.hosts[1].wait(Duration::from_secs(10));
    let ids = fleet.create_jobs(1, 500);
    let deadline = Instant::now() + Duration::from_secs(60);
    while fleet.vms_left(0).is_empty() {
        assert!(
            Instant::now() < deadline,
            "host 0 never cloned a VM:\n{}",
            fleet.hosts[0].log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let started_before_kill = fleet
        .emulator
        .job(ids[0])
        .and_then(|j| j.started_at_ms)
        .is_some();
    fleet.hosts[0].signal(SIGKILL);
    fleet.hosts[0].wait(Duration::from_secs(10));
    let orphan = fleet.vms_left(0);
    assert!(!orphan.is_empty(), "the killed host left its VM");
    fleet.restart_host(1);
    fleet.wait_completed(&ids, Duration::from_secs(120));
    fleet.assert_completed_once(&ids);
    if !started_before_kill {
        let runner = fleet
            .emulator
            .job(ids[0])
            .and_then(|j| j.runner_name)
            .unwrap_or_default();
        assert!(
            runner.contains("host-1"),
            "host 1 ran the requeued job (runner {runner})"
        );
    }
    fleet.restart_host(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !fleet.vms_left(0).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the restarted host did not sweep {orphan:?}:\n{}",
            fleet.hosts[0].log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    fleet.wait_clean(Duration::from_secs(60));
}

/// Redis is killed and restarted mid-run: every job still completes once.
pub fn redis_restart_loses_nothing(bin: &Path) {
    let mut fleet = Fleet::start(bin, FleetOptions::default());
    let first = fleet.create_jobs(10, 1000);
    std::thread::sleep(Duration::from_secs(2));
    fleet.redis.kill();
    std::thread::sleep(Duration::from_secs(2));
    fleet.redis.restart().unwrap();
    let second = fleet.create_jobs(10, 200);
    let all: Vec<u64> = first.into_iter().chain(second).collect();
    fleet.wait_completed(&all, Duration::from_secs(180));
    fleet.assert_completed_once(&all);
    fleet.wait_clean(Duration::from_secs(60));
}

/// SIGINT: jobs not yet running go back to the queue (another host runs them), the VMs of the
/// stopped host are deleted, and it exits 0.
pub fn sigint_requeues_in_flight(bin: &Path) {
    let mut fleet = Fleet::start(
        bin,
        FleetOptions {
            hosts: 2,
            anka_time_scale: 0.2,
            ..FleetOptions::default()
        },
    );
    fleet.hosts[1].signal(SIGTERM);
    assert_eq!(fleet.hosts[1].wait(Duration::from_secs(30)), Some(0));
    let ids = fleet.create_jobs(2, 300);
    let deadline = Instant::now() + Duration::from_secs(60);
    while fleet.vms_left(0).is_empty() {
        assert!(
            Instant::now() < deadline,
            "host 0 never cloned:\n{}",
            fleet.hosts[0].log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    fleet.hosts[0].signal(SIGINT);
    assert_eq!(
        fleet.hosts[0].wait(Duration::from_secs(60)),
        Some(0),
        "graceful stop exits 0"
    );
    let running_vms = fleet.vms_left(0);
    fleet.restart_host(1);
    fleet.wait_completed(&ids, Duration::from_secs(120));
    fleet.assert_completed_once(&ids);
    // A VM whose job was already running when the stop came is deleted too (the job fails in
    // GitHub as its runner vanished); either way nothing of host 0 is left.
    assert!(
        running_vms.is_empty(),
        "host 0 deleted its VMs before exiting: {running_vms:?}"
    );
    fleet.wait_clean(Duration::from_secs(60));
}

/// Drain (SIGQUIT): the running job finishes, no new job is claimed, then the daemon exits 0.
pub fn drain_finishes_running_jobs(bin: &Path) {
    let mut fleet = Fleet::start(
        bin,
        FleetOptions {
            hosts: 1,
            ..FleetOptions::default()
        },
    );
    let first = fleet.create_jobs(1, 3000);
    let deadline = Instant::now() + Duration::from_secs(60);
    while fleet
        .emulator
        .job(first[0])
        .and_then(|j| j.started_at_ms)
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the job never started:\n{}",
            fleet.hosts[0].log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    fleet.hosts[0].signal(SIGQUIT);
    std::thread::sleep(Duration::from_millis(300));
    let later = fleet.create_jobs(1, 100);
    assert_eq!(
        fleet.hosts[0].wait(Duration::from_secs(60)),
        Some(0),
        "drained daemon exits 0"
    );
    let job = fleet.emulator.job(first[0]).unwrap();
    assert_eq!(
        job.conclusion.as_deref(),
        Some("success"),
        "the running job finished: {job:?}"
    );
    let other = fleet.emulator.job(later[0]).unwrap();
    assert!(
        other.started_at_ms.is_none(),
        "no new job was taken while draining: {other:?}"
    );
    assert!(fleet.vms_left(0).is_empty());
}

/// A config with a bad value: exit code 2 and a message naming the key and its line.
pub fn malformed_config_exits_2(bin: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        "plugins:\n  - name: h1\n    plugin: github\n    owner: acme\n    token: t\n    lease_seconds: soon\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin)
        .arg("-c")
        .arg(&config)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lease_seconds") && err.contains("config.yml:6:"),
        "{err}"
    );
}
