//! The runner service: a JIT runner takes its job (in_progress then completed webhooks reach a
//! receiver), the stealing fault gives runner A job B, a vanished runner's job fails, and a
//! registration-token runner works the same way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use github_emulator::{Fault, JobSpec, JobStatus};
use serde_json::json;
use std::time::Duration;

const LABELS: [&str; 2] = ["self-hosted", "anka-template:macos-15"];

#[test]
fn jit_runner_takes_its_job_and_webhooks_follow() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let job = emu
        .create_job(JobSpec::new("acme", "app", &LABELS).duration(Duration::from_millis(50)))
        .unwrap();
    rx.wait_job_event(job.id, "queued");

    let name = format!("anklet-host1-{}-1", job.id);
    let (rid, token, resp) = jit_runner(&emu, "acme", "app", &name, &LABELS);
    assert_eq!(resp.body["runner"]["status"], "offline");
    assert_eq!(resp.body["runner"]["name"], name.as_str());
    let files =
        github_emulator::decode_jit_config(resp.body["encoded_jit_config"].as_str().unwrap())
            .unwrap();
    assert_eq!(
        files.server_url(),
        Some(format!("{}/_emulator/runner-service", emu.base_url()).as_str())
    );
    assert_eq!(
        files.runner["gitHubUrl"],
        format!("{}/acme/app", emu.base_url()).as_str()
    );
    assert_eq!(files.runner["ephemeral"], true);
    assert_eq!(files.credentials["scheme"], "OAuthAccessToken");

    let (sid, got) = session_and_job(&emu, rid, &token);
    assert_eq!(got, job.id);
    let listed = api(
        &emu,
        "GET",
        &format!("/repos/acme/app/actions/runners/{rid}"),
        None,
    );
    assert_eq!(listed.body["status"], "online");
    assert_eq!(listed.body["busy"], true);

    let ip = rx.wait_job_event(job.id, "in_progress");
    assert_eq!(ip.json()["workflow_job"]["runner_name"], name.as_str());
    assert_eq!(ip.json()["workflow_job"]["runner_id"], rid);
    assert_eq!(emu.job(job.id).unwrap().status, JobStatus::InProgress);

    let done = service(
        &emu,
        &token,
        "POST",
        &format!("/jobs/{}/complete", job.id),
        Some(&json!({"conclusion": "success"})),
    );
    assert_eq!(done.status, 200);
    let c = rx.wait_job_event(job.id, "completed");
    assert_eq!(c.json()["workflow_job"]["conclusion"], "success");
    assert_eq!(c.json()["workflow_job"]["status"], "completed");

    // The ephemeral runner is gone, and with it its credentials.
    assert!(emu.runners().iter().all(|r| r.id != rid));
    let gone = api(
        &emu,
        "GET",
        &format!("/repos/acme/app/actions/runners/{rid}"),
        None,
    );
    assert_eq!(gone.status, 404);
    let again = service(&emu, &token, "GET", &format!("/sessions/{sid}/job"), None);
    assert_eq!(again.status, 401);
    let order: Vec<String> = rx
        .job_events()
        .into_iter()
        .filter(|(id, _)| *id == job.id)
        .map(|(_, a)| a)
        .collect();
    assert_eq!(order, ["queued", "in_progress", "completed"]);
}

#[test]
fn stealing_gives_runner_a_job_b_and_a_stays_queued() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let a = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    let b = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();

    // Without the fault, a runner named for B gets B (not the older A).
    let (rb, tb, _) = jit_runner(&emu, "acme", "app", &format!("r-{}", b.id), &LABELS);
    emu.set_fault(Fault::JobStealing {
        count: 1,
        swap_only: false,
    })
    .unwrap();
    let (ra, ta, _) = jit_runner(&emu, "acme", "app", &format!("r-{}", a.id), &LABELS);
    assert_eq!(
        emu.runners().iter().find(|r| r.id == ra).unwrap().made_for,
        Some(a.id)
    );

    let (_, got) = session_and_job(&emu, ra, &ta);
    assert_eq!(got, b.id, "runner made for A was given B");
    let ev = rx.wait_job_event(b.id, "in_progress");
    assert_eq!(ev.json()["workflow_job"]["runner_id"], ra);
    assert_eq!(emu.job(a.id).unwrap().status, JobStatus::Queued);
    assert!(emu.faults().is_empty(), "the fault was used up");

    // The runner made for B now finds only A.
    let (_, got_b) = session_and_job(&emu, rb, &tb);
    assert_eq!(got_b, a.id);
}

#[test]
fn a_swap_waits_for_the_other_jobs_runner() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let a = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    let b = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    emu.set_fault(Fault::JobStealing {
        count: 1,
        swap_only: true,
    })
    .unwrap();
    let (ra, ta, _) = jit_runner(&emu, "acme", "app", &format!("r-{}", a.id), &LABELS);
    let s = service(
        &emu,
        &ta,
        "POST",
        "/sessions",
        Some(&serde_json::json!({"runner_id": ra})),
    );
    let sid = s.body["session_id"].as_str().unwrap().to_owned();
    // B's runner is not registered yet: A's runner is held, not given A.
    let held = service(&emu, &ta, "GET", &format!("/sessions/{sid}/job"), None);
    assert_eq!(held.status, 204, "{:?}", held.body);
    assert_eq!(emu.job(a.id).unwrap().status, JobStatus::Queued);

    let (rb, tb, _) = jit_runner(&emu, "acme", "app", &format!("r-{}", b.id), &LABELS);
    let got = service(&emu, &ta, "GET", &format!("/sessions/{sid}/job"), None);
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.body["job_id"], b.id, "runner made for A was given B");
    let (_, got_b) = session_and_job(&emu, rb, &tb);
    assert_eq!(got_b, a.id, "runner made for B was given A");
}

#[test]
fn labels_scope_and_reservations_decide_assignment() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let other_repo = emu
        .create_job(JobSpec::new("acme", "other", &LABELS))
        .unwrap();
    let needs_more = emu
        .create_job(JobSpec::new("acme", "app", &["self-hosted", "gpu"]))
        .unwrap();
    let (rid, token, _) = jit_runner(&emu, "acme", "app", "plain", &LABELS);
    let s = service(
        &emu,
        &token,
        "POST",
        "/sessions",
        Some(&json!({"runner_id": rid})),
    );
    let sid = s.body["session_id"].as_str().unwrap().to_owned();
    let poll = service(&emu, &token, "GET", &format!("/sessions/{sid}/job"), None);
    assert_eq!(poll.status, 204, "no job of its repo with labels it has");
    assert_eq!(emu.job(other_repo.id).unwrap().status, JobStatus::Queued);
    assert_eq!(emu.job(needs_more.id).unwrap().status, JobStatus::Queued);

    // A second session for the same runner is a conflict; a wrong runner id is refused.
    let again = service(
        &emu,
        &token,
        "POST",
        "/sessions",
        Some(&json!({"runner_id": rid})),
    );
    assert_eq!(again.status, 409);
    let wrong = service(
        &emu,
        &token,
        "POST",
        "/sessions",
        Some(&json!({"runner_id": rid + 1})),
    );
    assert_eq!(wrong.status, 403);
    let bad = service(
        &emu,
        "emu_rs_nope",
        "POST",
        "/sessions",
        Some(&json!({"runner_id": rid})),
    );
    assert_eq!(bad.status, 401);

    // An org runner covers every repo of the org, oldest job first.
    let org = api(
        &emu,
        "POST",
        "/orgs/acme/actions/runners/generate-jitconfig",
        Some(&json!({"name": "org-runner", "runner_group_id": 1, "labels": LABELS})),
    );
    assert_eq!(org.status, 201);
    let files =
        github_emulator::decode_jit_config(org.body["encoded_jit_config"].as_str().unwrap())
            .unwrap();
    assert_eq!(
        files.runner["gitHubUrl"],
        format!("{}/acme", emu.base_url()).as_str()
    );
    let (_, got) = session_and_job(&emu, files.runner_id().unwrap(), files.token().unwrap());
    assert_eq!(got, other_repo.id);
}

#[test]
fn vanished_runner_fails_its_job_after_the_delay() {
    let rx = Receiver::start();
    let mut cfg = config(&rx);
    cfg.vanished_job_failure_delay = Duration::from_secs(2);
    let emu = github_emulator::Emulator::start(cfg).unwrap();
    let job = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    let (rid, token, _) = jit_runner(&emu, "acme", "app", &format!("r-{}", job.id), &LABELS);
    let (sid, got) = session_and_job(&emu, rid, &token);
    assert_eq!(got, job.id);
    let gone = service(&emu, &token, "DELETE", &format!("/sessions/{sid}"), None);
    assert_eq!(gone.status, 200);
    let r = api(
        &emu,
        "GET",
        &format!("/repos/acme/app/actions/runners/{rid}"),
        None,
    );
    assert_eq!(r.body["status"], "offline");
    assert_eq!(r.body["busy"], true);
    // Still busy until GitHub gives up on the job: deleting it is refused.
    let del = api(
        &emu,
        "DELETE",
        &format!("/repos/acme/app/actions/runners/{rid}"),
        None,
    );
    assert_eq!(del.status, 422);
    assert!(
        del.body["message"]
            .as_str()
            .unwrap()
            .contains("is still running a job")
    );

    let c = rx.wait_job_event(job.id, "completed");
    assert_eq!(c.json()["workflow_job"]["conclusion"], "failure");
    assert_eq!(
        emu.job(job.id).unwrap().conclusion.as_deref(),
        Some("failure")
    );
    assert!(emu.runners().iter().all(|r| r.id != rid));
}

#[test]
fn registration_token_runner_registers_and_runs() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let job = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    let t = api(
        &emu,
        "POST",
        "/repos/acme/app/actions/runners/registration-token",
        None,
    );
    assert_eq!(t.status, 201);
    let token = t.body["token"].as_str().unwrap();
    let reg = call(
        "POST",
        &format!("{}/_emulator/runner-service/register", emu.base_url()),
        None,
        Some(
            &json!({"token": token, "name": "tok-runner", "labels": LABELS, "url": format!("{}/acme/app", emu.base_url())}),
        ),
    );
    assert_eq!(reg.status, 201, "{:?}", reg.body);
    let rid = reg.body["runner"]["agentId"].as_u64().unwrap();
    let secret = reg.body["credentials"]["data"]["token"].as_str().unwrap();
    assert!(!emu.runners().iter().find(|r| r.id == rid).unwrap().jit);
    let (_, got) = session_and_job(&emu, rid, secret);
    assert_eq!(got, job.id);
    let bad = call(
        "POST",
        &format!("{}/_emulator/runner-service/register", emu.base_url()),
        None,
        Some(&json!({"token": "WRONG", "name": "x", "labels": LABELS})),
    );
    assert_eq!(bad.status, 404);
}

#[test]
fn cancelling_a_run_completes_its_jobs_as_cancelled() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let queued = emu
        .create_job(JobSpec::new("acme", "app", &LABELS).run_id(77))
        .unwrap();
    let running = emu
        .create_job(JobSpec::new("acme", "app", &LABELS).run_id(77))
        .unwrap();
    let (rid, token, _) = jit_runner(&emu, "acme", "app", &format!("r-{}", running.id), &LABELS);
    let (_, got) = session_and_job(&emu, rid, &token);
    assert_eq!(got, running.id);

    let c = api(&emu, "POST", "/repos/acme/app/actions/runs/77/cancel", None);
    assert_eq!(c.status, 202);
    for j in [queued.id, running.id] {
        let ev = rx.wait_job_event(j, "completed");
        assert_eq!(ev.json()["workflow_job"]["conclusion"], "cancelled");
    }
    // The runner stays busy until it reports back, then goes away.
    assert!(
        emu.runners()
            .iter()
            .any(|r| r.id == rid && r.job_id == Some(running.id))
    );
    let done = service(
        &emu,
        &token,
        "POST",
        &format!("/jobs/{}/complete", running.id),
        Some(&json!({"conclusion": "cancelled"})),
    );
    assert_eq!(done.status, 200);
    assert!(emu.runners().iter().all(|r| r.id != rid));
    let again = api(&emu, "POST", "/repos/acme/app/actions/runs/77/cancel", None);
    assert_eq!(again.status, 409);
    let none = api(&emu, "POST", "/repos/acme/app/actions/runs/78/cancel", None);
    assert_eq!(none.status, 404);
}

#[test]
fn many_runners_at_once_each_take_one_distinct_job() {
    const N: usize = 12;
    let rx = Receiver::start();
    let emu = start(&rx);
    let jobs: Vec<u64> = (0..N)
        .map(|_| {
            emu.create_job(JobSpec::new("acme", "app", &LABELS))
                .unwrap()
                .id
        })
        .collect();
    let emu = std::sync::Arc::new(emu);
    let threads: Vec<_> = (0..N)
        .map(|i| {
            let emu = std::sync::Arc::clone(&emu);
            std::thread::spawn(move || {
                let (rid, token, _) =
                    jit_runner(&emu, "acme", "app", &format!("pool-{i}"), &LABELS);
                let (_, job) = session_and_job(&emu, rid, &token);
                let done = service(
                    &emu,
                    &token,
                    "POST",
                    &format!("/jobs/{job}/complete"),
                    Some(&json!({"conclusion": "success"})),
                );
                assert_eq!(done.status, 200);
                job
            })
        })
        .collect();
    let mut taken: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    taken.sort_unstable();
    assert_eq!(taken, jobs, "every job ran exactly once");
    for j in &jobs {
        rx.wait_job_event(*j, "completed");
    }
    let counts = emu.counts();
    assert_eq!((counts.completed, counts.runners), (N, 0));
    let in_progress = rx
        .job_events()
        .iter()
        .filter(|(_, a)| a == "in_progress")
        .count();
    assert_eq!(in_progress, N);
}
