//! Issue 7's fault-injection and sweep acceptance, for both daemons: a real daemon process
//! (receiver + one handler host, [`crate::fleet`]) drives the fake `anka` through its real
//! driver while the fake's `faults.json` injects one fault. For every fault the job must end
//! requeued, dead-lettered or completed with a reason the store recorded (read back through
//! core's own transactions on the Redis store), and no VM of ours may be left on the fake
//! Mac. A hung `anka` must die with its process group (its `sleep` child included) at the
//! pull deadline. The sweep tests SIGKILL a handler and check that its restart removes the
//! VMs and runners it left, and never touches a VM that is not ours.
//!
//! Each runtime's `tests/vm_faults.rs` calls every function with its own binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use crate::fleet::{Fleet, FleetOptions, TEMPLATE};
use anklet_core::queue::{JobRecord, Place};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

const SIGKILL: i32 = 9;

/// The knobs every fault test shares: one pull try, one retry of a job (so a job that keeps
/// failing is dead-lettered on its second claim), short deadlines.
const SHORT: &str = "job_retry_attempts: 1\npull_attempts: 1\nfresh_vm_attempts: 2\n";

/// One receiver and one handler host. A template to pull is small (1 GB) and the disk buffer
/// tiny, because the daemons size the buffer on the real volume the tests run on.
fn fleet(bin: &Path, template_local: bool, extra: &str) -> Fleet {
    Fleet::start(
        bin,
        FleetOptions {
            hosts: 1,
            lease_seconds: 6,
            anka_time_scale: 0.01,
            template_local,
            handler_config: format!("{SHORT}template_disk_buffer: 0.01\n{extra}"),
            template_bytes: 1_000_000_000,
        },
    )
}

/// How a job ended, as the store recorded it.
#[derive(Debug)]
enum Ended {
    /// In the dead letter, with its reason history.
    Dead(Box<JobRecord>),
    /// Gone from the queue for good: `how`.
    Finished(String),
}

fn reasons(r: &JobRecord) -> Vec<&str> {
    r.history.iter().map(|e| e.reason.as_str()).collect()
}

/// Waits until the store has `job` in the dead letter or finished; panics with the host's log.
fn wait_ended(fleet: &Fleet, job: u64, timeout: Duration) -> Ended {
    let store = fleet.store();
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        if let Ok(Some(f)) = store.finished(job) {
            eprintln!("job {job}: finished ({})", f.how);
            return Ended::Finished(f.how);
        }
        if let Ok(r) = store.get(job) {
            if let Some(rec) = &r
                && matches!(rec.place, Place::Dead { .. })
            {
                return Ended::Dead(Box::new(rec.clone()));
            }
            last = r;
        }
        assert!(
            Instant::now() < deadline,
            "job {job} did not end within {timeout:?}; record {last:?}\n{}",
            fleet.hosts[0].log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The job is dead-lettered, and every reason its history holds is one of `allowed`, with at
/// least one `wanted`. Returns the record.
fn assert_dead(fleet: &Fleet, job: u64, timeout: Duration, wanted: &[&str]) -> JobRecord {
    match wait_ended(fleet, job, timeout) {
        Ended::Dead(rec) => {
            let seen = reasons(&rec);
            eprintln!(
                "job {job}: dead-lettered after {} claims, history {seen:?}",
                rec.attempts
            );
            assert!(
                seen.iter().any(|r| wanted.contains(r)),
                "job {job} dead-lettered with reasons {seen:?}, wanted one of {wanted:?}\n{}",
                fleet.hosts[0].log_tail()
            );
            // The listing agrees with the record.
            let listing = fleet.store().list().unwrap();
            let dead = listing
                .dead
                .iter()
                .find(|s| s.id.0 == job)
                .expect("the dead job is listed");
            assert!(
                dead.last_reason
                    .as_deref()
                    .is_some_and(|r| wanted.contains(&r)),
                "{dead:?}"
            );
            *rec
        }
        Ended::Finished(how) => panic!(
            "job {job} finished ({how}) instead of being dead-lettered with {wanted:?}\n{}",
            fleet.hosts[0].log_tail()
        ),
    }
}

/// No VM of ours is left on host `i`'s Mac and no process of it runs, within `timeout`.
fn assert_clean(fleet: &Fleet, i: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let vms = fleet.vms_left(i);
        let procs = fleet.mac_processes(i);
        if vms.is_empty() && procs.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind on host {i}: VMs {vms:?}, processes {procs:?}\n{}",
            fleet.hosts[i].log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stats(fleet: &Fleet, i: usize) -> serde_json::Value {
    fleet.anka(i, &["__stats"])["body"].clone()
}

/// The template is not on the host and every pull fails: the job is requeued with
/// `pull_failed`, then dead-lettered once its retry budget is spent; nothing is left.
pub fn pull_fails(bin: &Path) {
    let fleet = fleet(bin, false, "pull_timeout_seconds: 30\n");
    fleet.set_faults(
        0,
        &json!([{"op": "pull", "action": "fail", "message": "injected"}]),
    );
    let ids = fleet.create_jobs(1, 200);
    let rec = assert_dead(&fleet, ids[0], Duration::from_secs(60), &["pull_failed"]);
    assert_eq!(reasons(&rec), ["pull_failed", "pull_failed"], "{rec:?}");
    assert_eq!(rec.attempts, 2, "{rec:?}");
    assert!(stats(&fleet, 0)["counters"]["faults_fired"].as_u64() >= Some(2));
    assert_clean(&fleet, 0, Duration::from_secs(20));
}

/// Every pull hangs (the fake forks `sleep 600` into its process group and sleeps): at the
/// pull deadline the driver kills the whole group, so neither the hung `anka` nor its `sleep`
/// child survives it; the job ends dead-lettered with a pull reason.
pub fn pull_hangs(bin: &Path) {
    const PULL_TIMEOUT: u64 = 3;
    let fleet = fleet(
        bin,
        false,
        &format!("pull_timeout_seconds: {PULL_TIMEOUT}\n"),
    );
    fleet.set_faults(0, &json!([{"op": "pull", "action": "hang"}]));
    let ids = fleet.create_jobs(1, 200);
    // The first hung pull: its `sleep` child, and when it appeared.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (sleep_pid, seen_at) = loop {
        if let Some((pid, _)) = fleet
            .mac_processes(0)
            .into_iter()
            .find(|(_, cmd)| cmd == "sleep 600")
        {
            break (pid, Instant::now());
        }
        assert!(
            Instant::now() < deadline,
            "no hung pull:\n{}",
            fleet.hosts[0].log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let pull_pid = fleet
        .mac_processes(0)
        .into_iter()
        .find(|(_, cmd)| cmd.contains("pull") && !cmd.starts_with("sleep"))
        .map(|(pid, _)| pid);
    let alive = |pid: u32| fleet.mac_processes(0).iter().any(|(p, _)| *p == pid);
    while alive(sleep_pid) || pull_pid.is_some_and(alive) {
        assert!(
            seen_at.elapsed() < Duration::from_secs(PULL_TIMEOUT + 5),
            "the hung pull (sleep {sleep_pid}, anka {pull_pid:?}) outlived its {PULL_TIMEOUT} s deadline: {:?}\n{}",
            fleet.mac_processes(0),
            fleet.hosts[0].log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed_after = seen_at.elapsed();
    assert!(
        killed_after + Duration::from_millis(500) >= Duration::from_secs(PULL_TIMEOUT),
        "the pull was killed after {killed_after:?}, before its {PULL_TIMEOUT} s deadline"
    );
    let rec = assert_dead(
        &fleet,
        ids[0],
        Duration::from_secs(60),
        &["pull_failed", "pull_lock_timeout"],
    );
    assert!(reasons(&rec).contains(&"pull_failed"), "{rec:?}");
    // Once the job is over no pull runs: no hung `anka` and no `sleep 600` is left.
    assert_clean(&fleet, 0, Duration::from_secs(PULL_TIMEOUT + 5));
}

/// Every clone fails: each claim tries its fresh VMs, the job is requeued with
/// `clone_failed`, then dead-lettered; no VM is left.
pub fn clone_fails(bin: &Path) {
    let fleet = fleet(bin, true, "");
    fleet.set_faults(
        0,
        &json!([{"op": "clone", "action": "fail", "message": "injected"}]),
    );
    let ids = fleet.create_jobs(1, 200);
    let rec = assert_dead(&fleet, ids[0], Duration::from_secs(60), &["clone_failed"]);
    assert_eq!(reasons(&rec), ["clone_failed", "clone_failed"], "{rec:?}");
    assert_clean(&fleet, 0, Duration::from_secs(20));
}

/// The registry is unreachable (code 30): a pull failure like any other, so the job is
/// requeued with `pull_failed` and dead-lettered after its retries — never taken for a
/// template the registry does not have (`template_not_in_registry` dead-letters at once).
pub fn registry_down(bin: &Path) {
    let fleet = fleet(bin, false, "pull_timeout_seconds: 30\n");
    fleet.set_faults(0, &json!([{"action": "registry_down"}]));
    let ids = fleet.create_jobs(1, 200);
    let rec = assert_dead(&fleet, ids[0], Duration::from_secs(60), &["pull_failed"]);
    assert_eq!(reasons(&rec), ["pull_failed", "pull_failed"], "{rec:?}");
    assert_clean(&fleet, 0, Duration::from_secs(20));
}

/// `anka clone` dies without a word (exit 137, no output): `clone_failed`, dead-lettered after
/// its retries, and whatever the dead clone left is deleted.
pub fn clone_dies(bin: &Path) {
    let fleet = fleet(bin, true, "");
    fleet.set_faults(0, &json!([{"op": "clone", "action": "die"}]));
    let ids = fleet.create_jobs(1, 200);
    let rec = assert_dead(&fleet, ids[0], Duration::from_secs(60), &["clone_failed"]);
    assert_eq!(reasons(&rec), ["clone_failed", "clone_failed"], "{rec:?}");
    assert_clean(&fleet, 0, Duration::from_secs(20));
}

/// `anka start` boots the VM but answers garbage (no JSON envelope): the start counts as
/// failed, so the job ends `start_failed` — and the VMs that did boot are deleted all the same.
pub fn start_answers_garbage(bin: &Path) {
    let fleet = fleet(bin, true, "");
    fleet.set_faults(
        0,
        &json!([{"op": "start", "match": "anklet-vm-*", "action": "garbage"}]),
    );
    let ids = fleet.create_jobs(1, 200);
    let rec = assert_dead(&fleet, ids[0], Duration::from_secs(60), &["start_failed"]);
    assert_eq!(reasons(&rec), ["start_failed", "start_failed"], "{rec:?}");
    assert_clean(&fleet, 0, Duration::from_secs(20));
}

/// The first boot fails once: the job gets a fresh VM and completes; the failed VM is deleted.
pub fn start_fails_once(bin: &Path) {
    let fleet = fleet(bin, true, "");
    fleet.set_faults(
        0,
        &json!([{"op": "start", "match": "anklet-vm-*", "action": "fail", "times": 1}]),
    );
    let ids = fleet.create_jobs(1, 200);
    match wait_ended(&fleet, ids[0], Duration::from_secs(60)) {
        Ended::Finished(how) => assert_eq!(how, "finished(success)"),
        Ended::Dead(rec) => panic!("dead-lettered: {rec:?}"),
    }
    fleet.assert_completed_once(&ids);
    let s = stats(&fleet, 0);
    assert_eq!(s["counters"]["faults_fired"].as_u64(), Some(1), "{s}");
    assert!(
        s["counters"]["vms_created"].as_u64() >= Some(2),
        "a fresh VM: {s}"
    );
    assert_clean(&fleet, 0, Duration::from_secs(20));
    fleet.wait_clean(Duration::from_secs(20));
}

/// Every boot fails: the job is requeued with `start_failed`, then dead-lettered; no VM is left.
pub fn start_always_fails(bin: &Path) {
    let fleet = fleet(bin, true, "");
    fleet.set_faults(
        0,
        &json!([{"op": "start", "match": "anklet-vm-*", "action": "fail"}]),
    );
    let ids = fleet.create_jobs(1, 200);
    let rec = assert_dead(&fleet, ids[0], Duration::from_secs(60), &["start_failed"]);
    assert_eq!(reasons(&rec), ["start_failed", "start_failed"], "{rec:?}");
    let s = stats(&fleet, 0);
    assert_eq!(
        s["counters"]["vms_created"].as_u64(),
        Some(4),
        "two fresh VMs per claim: {s}"
    );
    assert_clean(&fleet, 0, Duration::from_secs(20));
}

/// The VM dies while its job runs (`vm_crash` on the runner's `anka run`): the handler's health
/// check sees it, the store records the job as `vm_lost`, and the dead VM is deleted. GitHub
/// keeps calling the runner busy (the emulator only fails a job whose runner said goodbye), so
/// the VM goes once `job_max_lifetime_seconds` (15 s here) gives up on the runner.
pub fn vm_dies_mid_job(bin: &Path) {
    let fleet = fleet(bin, true, "job_max_lifetime_seconds: 15\n");
    // Fake seconds × 0.01: the VM dies 4 s after the runner starts, well into the job (the
    // handler hears `in_progress` within about a second).
    fleet.set_faults(
        0,
        &json!([{"op": "run", "match": "anklet-vm-*", "action": "vm_crash", "after_s": 400, "times": 1}]),
    );
    let ids = fleet.create_jobs(1, 60_000);
    match wait_ended(&fleet, ids[0], Duration::from_secs(40)) {
        Ended::Finished(how) => assert_eq!(how, "vm_lost"),
        Ended::Dead(rec) => panic!("dead-lettered: {rec:?}"),
    }
    let job = fleet.emulator.job(ids[0]).unwrap();
    assert!(job.started_at_ms.is_some(), "the job ran: {job:?}");
    let s = stats(&fleet, 0);
    assert_eq!(s["counters"]["crashes"].as_u64(), Some(1), "{s}");
    let lost_at = Instant::now();
    assert_clean(&fleet, 0, Duration::from_secs(30));
    let job = fleet.emulator.job(ids[0]).unwrap();
    eprintln!(
        "vm_dies_mid_job: VM deleted {:?} after the store recorded vm_lost; GitHub's job: status {:?}, conclusion {:?}; runner removals refused: {}",
        lost_at.elapsed(),
        job.status,
        job.conclusion,
        fleet.hosts[0]
            .log()
            .lines()
            .filter(|l| l.contains("remove_runner"))
            .count()
    );
    // The emulated job stays in progress (its runner vanished); cancel it so nothing waits.
    let _ = fleet
        .emulator
        .cancel_run(crate::fleet::OWNER, crate::fleet::REPO, job.run_id);
}

/// The disk fills during the pull (`disk_full_at` below the template's size): the job is
/// requeued and then dead-lettered with the disk reason core gives (`disk_full_nothing_evictable`,
/// or `pull_failed`); no VM is left.
pub fn disk_full(bin: &Path) {
    let fleet = fleet(bin, false, "pull_timeout_seconds: 30\n");
    fleet.set_faults(
        0,
        &json!([{"op": "pull", "action": "disk_full_at", "bytes": 1_000_000}]),
    );
    let ids = fleet.create_jobs(1, 200);
    let rec = assert_dead(
        &fleet,
        ids[0],
        Duration::from_secs(60),
        &["disk_full_nothing_evictable", "pull_failed"],
    );
    assert_eq!(rec.attempts, 2, "{rec:?}");
    let s = stats(&fleet, 0);
    assert!(
        s["counters"]["faults_fired"].as_u64() >= Some(1),
        "the disk filled up: {s}"
    );
    assert_clean(&fleet, 0, Duration::from_secs(20));
}

/// A handler SIGKILLed after its runner was registered (the runner's `anka run` hangs, so the
/// runner never takes the job) leaves a VM and an idle runner; on restart its sweep removes
/// both, while a VM that is not ours (`not-ours-vm`, and another host's `anklet-vm-...`) is
/// never touched. The job itself comes back when its lease lapses and completes on a fresh VM.
pub fn sweep_after_sigkill(bin: &Path) {
    let mut fleet = Fleet::start(
        bin,
        FleetOptions {
            hosts: 1,
            lease_seconds: 4,
            anka_time_scale: 0.01,
            template_local: true,
            ..FleetOptions::default()
        },
    );
    fleet.set_faults(
        0,
        &json!([{"op": "run", "match": "anklet-vm-*", "action": "hang"}]),
    );
    let ids = fleet.create_jobs(1, 500);
    let deadline = Instant::now() + Duration::from_secs(30);
    let prefix = "anklet-vm-host-0-";
    loop {
        let registered = fleet
            .emulator
            .runners()
            .iter()
            .any(|r| r.name.starts_with(prefix));
        let hung = fleet
            .mac_processes(0)
            .iter()
            .any(|(_, cmd)| cmd == "sleep 600");
        if registered && hung && !fleet.vms_left(0).is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "host 0 never got its runner going:\n{}",
            fleet.hosts[0].log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    fleet.hosts[0].signal(SIGKILL);
    fleet.hosts[0].wait(Duration::from_secs(10));
    // What the killed daemon's `anka run` left (the hung call and its `sleep`) goes with it.
    fleet.kill_mac_processes(0);
    fleet.set_faults(0, &json!([]));
    let orphan_vms = fleet.vms_left(0);
    let orphan_runners: Vec<String> = fleet
        .emulator
        .runners()
        .into_iter()
        .map(|r| r.name)
        .filter(|n| n.starts_with(prefix))
        .collect();
    assert_eq!(orphan_vms.len(), 1, "{orphan_vms:?}");
    assert_eq!(
        orphan_runners, orphan_vms,
        "the runner is named after its VM"
    );
    let job = fleet.emulator.job(ids[0]).unwrap();
    assert!(
        job.started_at_ms.is_none(),
        "no runner took the job: {job:?}"
    );
    // VMs that are not ours: a user's, and one named by another host.
    let foreign = ["not-ours-vm", "anklet-vm-host-7-4242-0"];
    for name in foreign {
        let env = fleet.anka(0, &["clone", TEMPLATE, name]);
        assert_eq!(env["status"], "OK", "clone {name}: {env}");
    }
    fleet.restart_host(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let vms = fleet.vm_names(0);
        let runners: Vec<String> = fleet
            .emulator
            .runners()
            .into_iter()
            .map(|r| r.name)
            .collect();
        let vm_left = orphan_vms.iter().any(|v| vms.contains(v));
        let runner_left = orphan_runners.iter().any(|r| runners.contains(r));
        if !vm_left && !runner_left {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted host did not sweep: VM left {vm_left} ({vms:?}), runner left {runner_left} ({runners:?})\n{}",
            fleet.hosts[0].log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = fleet.hosts[0].log();
    for (what, name) in [("runner", &orphan_runners[0]), ("VM", &orphan_vms[0])] {
        assert!(
            log.contains(&format!("orphan {what} {name} ")),
            "the sweep removed the orphan {what} {name}:\n{}",
            fleet.hosts[0].log_tail()
        );
    }
    fleet.wait_completed(&ids, Duration::from_secs(60));
    fleet.assert_completed_once(&ids);
    match wait_ended(&fleet, ids[0], Duration::from_secs(20)) {
        Ended::Finished(how) => assert_eq!(how, "finished(success)"),
        Ended::Dead(rec) => panic!("dead-lettered: {rec:?}"),
    }
    let vms = fleet.vm_names(0);
    for name in foreign {
        assert!(vms.iter().any(|v| v == name), "{name} was touched: {vms:?}");
    }
    let log = fleet.hosts[0].log();
    for name in foreign {
        assert!(
            !log.contains(name),
            "the sweep named a VM that is not ours ({name})"
        );
    }
    for name in foreign {
        let env = fleet.anka(0, &["delete", "--yes", name]);
        assert_eq!(env["status"], "OK", "delete {name}: {env}");
    }
    assert_clean(&fleet, 0, Duration::from_secs(20));
    fleet.wait_clean(Duration::from_secs(20));
}

/// A handler SIGKILLed while its job runs leaves a VM whose runner GitHub calls busy: on
/// restart the sweep never deletes that VM under the running job, the job completes once (on
/// that runner), and then the VM and the runner are gone.
pub fn sweep_spares_busy_vm(bin: &Path) {
    let mut fleet = Fleet::start(
        bin,
        FleetOptions {
            hosts: 1,
            lease_seconds: 4,
            anka_time_scale: 0.01,
            template_local: true,
            ..FleetOptions::default()
        },
    );
    let ids = fleet.create_jobs(1, 8000);
    let deadline = Instant::now() + Duration::from_secs(30);
    while fleet
        .emulator
        .job(ids[0])
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
    fleet.hosts[0].signal(SIGKILL);
    fleet.hosts[0].wait(Duration::from_secs(10));
    let orphan = fleet.vms_left(0);
    assert_eq!(orphan.len(), 1, "{orphan:?}");
    fleet.restart_host(0);
    // While the job runs, its VM stays.
    while fleet
        .emulator
        .job(ids[0])
        .is_some_and(|j| j.completed_at_ms.is_none())
    {
        let vms = fleet.vm_names(0);
        assert!(
            vms.contains(&orphan[0]),
            "the sweep deleted {} under its running job:\n{}",
            orphan[0],
            fleet.hosts[0].log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    fleet.assert_completed_once(&ids);
    let job = fleet.emulator.job(ids[0]).unwrap();
    assert_eq!(
        job.runner_name.as_deref(),
        Some(orphan[0].as_str()),
        "the job ran on the first runner: {job:?}"
    );
    let ended_at = Instant::now();
    match wait_ended(&fleet, ids[0], Duration::from_secs(40)) {
        Ended::Finished(_) => {}
        Ended::Dead(rec) => panic!("dead-lettered: {rec:?}"),
    }
    // Once the job is over its runner is gone, and so must its VM be: a slot is not held for
    // a whole sweep interval (600 s) after the job that kept it.
    while fleet.vm_names(0).contains(&orphan[0]) {
        assert!(
            ended_at.elapsed() < Duration::from_secs(30),
            "the orphan VM {} outlived its job by 30 s: after a `busy` runner removal the sweep \
             does not come back before its next interval\n{}",
            orphan[0],
            fleet.hosts[0].log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_clean(&fleet, 0, Duration::from_secs(20));
    fleet.wait_clean(Duration::from_secs(20));
}
