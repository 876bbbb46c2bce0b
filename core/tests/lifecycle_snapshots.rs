//! Effect sequences of the handler's job lifecycle, one snapshot per scenario. Each line is an
//! effect (->) or an input (<-) at its time from the start; secrets print as [redacted].
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use anklet_core::handler::*;
use std::time::Duration;
use support::*;

const T1: &[&str] = &["self-hosted", "anka-template:t1", "anka-template-tag:v1"];

fn snap(name: &str, w: &World) {
    let text = w.text();
    assert!(
        !text.contains("JITCONFIG-SECRET"),
        "a secret reached the trace"
    );
    insta::assert_snapshot!(name, text);
}

/// The world most scenarios start from: one job for t1:v1, template present.
fn world_with_template() -> World {
    let mut w = World::new(quiet_settings());
    w.templates = vec![template("t1", "v1", 40, 0)];
    w.queue.push_back(job(101, 1, T1));
    w
}

fn drained(mut w: World, drain_at: u64, limit: u64) -> World {
    w.at(drain_at, Input::Drain);
    w.run(limit);
    assert!(w.h.is_stopped(), "handler did not stop:\n{}", w.text());
    w
}

#[test]
fn happy_path() {
    let w = drained(world_with_template(), 10, 10_000);
    snap("happy_path", &w);
}

#[test]
fn template_missing_is_pulled() {
    let mut w = World::new(quiet_settings());
    w.queue.push_back(job(101, 1, T1));
    let w = drained(w, 10, 10_000);
    snap("template_missing_pull", &w);
}

#[test]
fn disk_too_full_evicts_least_recently_used() {
    let mut w = World::new(quiet_settings());
    w.templates = vec![
        template("old", "a", 30, 10),
        template("older", "b", 30, 5),
        template("recent", "c", 30, 20),
    ];
    // 100 GiB volume, 60 free, 10 buffer: 50 usable, 80 to download -> evict the LRU 30 GiB one.
    w.disk = DiskSpace {
        total_bytes: 100 * GB,
        available_bytes: 60 * GB,
    };
    w.download_bytes = 80 * GB;
    w.queue.push_back(job(101, 1, T1));
    let w = drained(w, 10, 10_000);
    snap("disk_full_lru_eviction", &w);
}

#[test]
fn disk_too_full_and_nothing_evictable_requeues() {
    let mut w = World::new(quiet_settings());
    w.disk = DiskSpace {
        total_bytes: 100 * GB,
        available_bytes: 30 * GB,
    };
    w.download_bytes = 50 * GB;
    w.queue.push_back(job(101, 1, T1));
    let w = drained(w, 10, 10_000);
    snap("disk_full_nothing_evictable", &w);
}

#[test]
fn pull_fails_retries_then_dead_letters() {
    let mut settings = quiet_settings();
    settings.job_retry_attempts = 2;
    let mut w = World::new(settings);
    // Third claim of this job: its retries are used up.
    w.queue.push_back(job(101, 3, T1));
    w.rule(
        10,
        is_vm(|c| matches!(c, VmCmd::PullTemplate { .. })),
        fail(FailureClass::Transient, "registry 503"),
    );
    let w = drained(w, 10, 10_000);
    snap("pull_fails_dead_letter", &w);
}

#[test]
fn clone_fails_then_fresh_vm_then_requeue() {
    let mut w = world_with_template();
    w.rule(
        10,
        is_vm(|c| matches!(c, VmCmd::Clone { .. })),
        fail(FailureClass::Transient, "clone: disk busy"),
    );
    let w = drained(w, 10, 10_000);
    snap("clone_fails", &w);
}

#[test]
fn runner_never_registers_gets_a_fresh_vm() {
    let mut w = world_with_template();
    // The first VM's runner starts but never takes its job; the second one works.
    w.rule(
        1,
        is_vm(|c| matches!(c, VmCmd::StartRunner { .. })),
        Some(EffectResult::Done),
    );
    let w = drained(w, 10, 10_000);
    snap("runner_never_registers_fresh_vm", &w);
}

#[test]
fn lost_in_progress_webhook_is_confirmed_with_the_api() {
    let mut w = world_with_template();
    w.webhook_in_progress = false;
    let w = drained(w, 10, 10_000);
    snap("lost_in_progress_webhook_confirmed", &w);
}

#[test]
fn job_cancelled_while_pulling() {
    let mut w = World::new(quiet_settings());
    w.queue.push_back(job(101, 1, T1));
    w.at(
        100,
        Input::JobStatus {
            job: anklet_core::ids::JobId(101),
            status: GithubJobStatus::Completed {
                conclusion: Some("cancelled".into()),
            },
        },
    );
    let w = drained(w, 10, 10_000);
    snap("cancelled_while_pulling", &w);
}

#[test]
fn job_cancelled_while_running() {
    let mut w = world_with_template();
    w.job_secs = 100_000;
    w.at(
        200,
        Input::JobStatus {
            job: anklet_core::ids::JobId(101),
            status: GithubJobStatus::Completed {
                conclusion: Some("cancelled".into()),
            },
        },
    );
    let w = drained(w, 10, 10_000);
    snap("cancelled_while_running", &w);
}

#[test]
fn vm_dies_mid_job() {
    let mut settings = quiet_settings();
    settings.vm_health_interval = Duration::from_secs(60);
    let mut w = World::new(settings);
    w.templates = vec![template("t1", "v1", 40, 0)];
    w.queue.push_back(job(101, 1, T1));
    w.job_secs = 100_000;
    // Healthy at the first check, gone at the second.
    w.rule(
        1,
        is_vm(|c| matches!(c, VmCmd::InspectVm { .. })),
        Some(EffectResult::VmState(VmState::Running)),
    );
    w.rule(
        1,
        is_vm(|c| matches!(c, VmCmd::InspectVm { .. })),
        Some(EffectResult::VmState(VmState::Missing)),
    );
    let w = drained(w, 10, 10_000);
    snap("vm_dies_mid_job", &w);
}

#[test]
fn job_past_max_lifetime_is_cancelled_in_github() {
    let mut settings = quiet_settings();
    settings.job_max_lifetime = Duration::from_secs(1_000);
    let mut w = World::new(settings);
    w.templates = vec![template("t1", "v1", 40, 0)];
    w.queue.push_back(job(101, 1, T1));
    w.job_secs = 100_000;
    let w = drained(w, 10, 10_000);
    snap("max_lifetime_cancels_run", &w);
}

#[test]
fn stop_at_each_step() {
    let phases = [
        "awaiting_template",
        "cloning",
        "starting",
        "runner_config",
        "starting_runner",
        "registered",
        "running",
        "cleanup",
    ];
    for phase in phases {
        let mut w = World::new(quiet_settings());
        // Template missing, so "awaiting_template" stops during the pull.
        w.queue.push_back(job(101, 1, T1));
        w.stop_at_phase = Some((phase, Input::Stop));
        w.run(10_000);
        assert!(
            w.h.is_stopped(),
            "not stopped after stop at {phase}:\n{}",
            w.text()
        );
        snap(&format!("stop_at_{phase}"), &w);
    }
}

#[test]
fn drain_finishes_running_jobs_and_claims_nothing_new() {
    let mut w = world_with_template();
    w.queue.push_back(job(102, 1, T1));
    w.queue.push_back(job(103, 1, T1));
    // Drain once both slots are busy: 103 must never be claimed.
    let w = drained(w, 60, 10_000);
    assert!(!w.text().contains("job#103"));
    snap("drain", &w);
}

#[test]
fn sweep_deletes_only_our_orphans() {
    use anklet_core::ids::VmName;
    let mut settings = quiet_settings();
    settings.sweep_interval = Duration::from_secs(600);
    let mut w = World::new(settings);
    w.templates = vec![template("t1", "v1", 40, 0)];
    // Left by this host's previous process, by another host, and not made by anklet at all.
    w.vms = vec![
        VmName("anklet-vm-mac1-77-1".into()),
        VmName("anklet-vm-mac2-78-1".into()),
        VmName("golden-macos-15".into()),
    ];
    w.queue.push_back(job(101, 1, T1));
    w.job_secs = 1_000;
    let w = drained(w, 700, 10_000);
    let text = w.text();
    assert!(text.contains("vm.delete anklet-vm-mac1-77-1"));
    assert!(!text.contains("delete anklet-vm-mac2-78-1"));
    assert!(!text.contains("delete golden-macos-15"));
    // The periodic sweep at 601 s runs while job 101's VM is alive and leaves it alone.
    assert_eq!(text.matches("vm.delete anklet-vm-mac1-101-1").count(), 1);
    // Runners are listed at start (a crashed process may have left some) and not again at
    // 601 s: nothing was left behind since, and the hourly backstop is not due.
    assert_eq!(text.matches("github.list_runners").count(), 1);
    snap("sweep_orphans", &w);
}

#[test]
fn runner_taken_by_another_job_keeps_its_vm_until_that_job_ends() {
    let mut settings = quiet_settings();
    settings.max_vms = 1;
    let mut w = World::new(settings);
    w.templates = vec![template("t1", "v1", 40, 0)];
    w.queue.push_back(job(101, 1, T1));
    // GitHub hands job 101's runner job 202 (same labels, queued earlier elsewhere).
    w.steal_next = Some(anklet_core::ids::JobId(202));
    let w = drained(w, 100, 10_000);
    let text = w.text();
    assert!(text.contains("requeue job#101 reason=runner_taken_by_other_job uncounted"));
    // The VM is deleted only after job 202 completed on it.
    let done = text.find("job#202 Completed").unwrap();
    let delete = text.find("vm.delete anklet-vm-mac1-101-1").unwrap();
    assert!(delete > done, "{text}");
    snap("runner_taken_by_another_job", &w);
}

/// The runner list the sweep sees in `sweep_removes_only_our_orphan_runners`.
fn listed_runners() -> EffectResult {
    let names = [
        "anklet-vm-mac1-77-1",  // ours, its job gone, its VM left behind
        "anklet-vm-mac1-79-1",  // ours, its job gone, but running some job: busy
        "anklet-vm-mac1-80-1",  // ours, its job gone, no VM (a removal that kept failing)
        "anklet-vm-mac1-101-1", // ours, and job 101 is live here
        "anklet-vm-mac2-78-1",  // another host's: left to its owner
        "build-box-7",          // not made by anklet at all
    ];
    EffectResult::Runners(
        names
            .iter()
            .enumerate()
            .map(|(i, name)| RunnerInfo {
                id: i as u64 + 1,
                name: (*name).into(),
                online: false,
                busy: *name == "anklet-vm-mac1-79-1",
            })
            .collect(),
    )
}

fn world_with_orphan_runners(settings: HandlerSettings) -> World {
    use anklet_core::ids::VmName;
    let mut w = World::new(settings);
    w.templates = vec![template("t1", "v1", 40, 0)];
    w.vms = vec![
        VmName("anklet-vm-mac1-77-1".into()),
        VmName("anklet-vm-mac1-79-1".into()),
        VmName("anklet-vm-mac2-78-1".into()),
    ];
    w.queue.push_back(job(101, 1, T1));
    w.rule(
        1,
        is_forge(|c| matches!(c, ForgeCmd::ListRunners)),
        Some(listed_runners()),
    );
    w.rule(
        1,
        |e| {
            matches!(e, Effect::Forge { cmd: ForgeCmd::RemoveRunner { runner }, .. }
                if runner.0 == "anklet-vm-mac1-79-1")
        },
        fail(FailureClass::Busy, "runner is running a job"),
    );
    w
}

#[test]
fn sweep_removes_only_our_orphan_runners() {
    let mut settings = quiet_settings();
    settings.max_vms = 3;
    let w = drained(world_with_orphan_runners(settings), 10, 10_000);
    let text = w.text();
    let removed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("github.remove_runner ").nth(1))
        .collect();
    // Our runners whose job is gone; the live job's runner is removed by its own cleanup.
    assert_eq!(
        removed,
        [
            "anklet-vm-mac1-77-1",
            "anklet-vm-mac1-79-1",
            "anklet-vm-mac1-80-1",
            "anklet-vm-mac1-101-1"
        ]
    );
    let removal_of_77 = text
        .find("github.remove_runner anklet-vm-mac1-77-1")
        .unwrap();
    let delete_of_77 = text.find("vm.delete anklet-vm-mac1-77-1").unwrap();
    assert!(
        removal_of_77 < delete_of_77,
        "the VM went before its runner"
    );
    // A busy runner runs a job: its VM stays. Other hosts' VMs and runners are never touched.
    assert!(!text.contains("vm.delete anklet-vm-mac1-79-1"));
    assert!(!text.contains("anklet-vm-mac1-80-1 deleted"));
    assert!(!text.contains("mac2-78-1 removed") && !text.contains("delete anklet-vm-mac2"));
    assert!(!text.contains("remove_runner build-box-7"));
    snap("sweep_orphan_runners", &w);
}

#[test]
fn a_sweep_with_the_keep_orphan_runners_defect_removes_none() {
    let mut settings = quiet_settings();
    settings.max_vms = 3;
    settings.defect = Some(Defect::KeepOrphanRunners);
    let w = drained(world_with_orphan_runners(settings), 10, 10_000);
    let text = w.text();
    assert!(!text.contains("orphan runner"), "{text}");
    // Only the live job's own cleanup removes a runner.
    assert_eq!(text.matches("github.remove_runner").count(), 1, "{text}");
}
