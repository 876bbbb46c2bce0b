//! Every fault, armed from Rust or over the control API: 5xx for N calls of a route, primary
//! and secondary rate limits (by count and by time), slow answers, duplicate, out-of-order and
//! lost deliveries (and their recovery by redelivery).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use github_emulator::{Fault, JobSpec, Span};
use serde_json::json;
use std::time::{Duration, Instant};

const LABELS: [&str; 2] = ["self-hosted", "anka-template:macos-15"];
const JIT: &str = "/repos/acme/app/actions/runners/generate-jitconfig";

fn jit_body(name: &str) -> serde_json::Value {
    json!({"name": name, "runner_group_id": 1, "labels": LABELS})
}

#[test]
fn server_errors_hit_n_calls_of_the_matching_route_only() {
    let rx = Receiver::start();
    let emu = start(&rx);
    emu.set_fault(Fault::ServerError {
        route: "POST /repos/*/*/actions/runners/generate-jitconfig".into(),
        status: 503,
        calls: 2,
    })
    .unwrap();
    assert_eq!(
        api(&emu, "GET", "/repos/acme/app/actions/runners", None).status,
        200
    );
    assert_eq!(api(&emu, "POST", JIT, Some(&jit_body("a"))).status, 503);
    assert_eq!(api(&emu, "POST", JIT, Some(&jit_body("a"))).status, 503);
    assert_eq!(api(&emu, "POST", JIT, Some(&jit_body("a"))).status, 201);
    assert!(emu.faults().is_empty());
    let faulted = emu.calls().iter().filter(|c| c.fault.is_some()).count();
    assert_eq!(faulted, 2);
}

#[test]
fn primary_rate_limit_answers_403_with_remaining_zero_and_reset() {
    let rx = Receiver::start();
    let emu = start(&rx);
    emu.set_fault(Fault::PrimaryRateLimit {
        route: "/repos/**".into(),
        span: Span::Calls(1),
    })
    .unwrap();
    let a = api(&emu, "GET", "/repos/acme/app/actions/runners", None);
    assert_eq!(a.status, 403);
    assert_eq!(a.header("x-ratelimit-remaining"), Some("0"));
    let reset: i64 = a.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset > now_s());
    assert!(a.body["message"].as_str().unwrap().contains("rate limit"));
    assert_eq!(
        api(&emu, "GET", "/repos/acme/app/actions/runners", None).status,
        200
    );

    // A time window: every call inside it is limited, calls after it are not.
    emu.set_fault(Fault::PrimaryRateLimit {
        route: String::new(),
        span: Span::ForMs(3000),
    })
    .unwrap();
    let armed = Instant::now();
    for _ in 0..2 {
        assert_eq!(
            api(&emu, "GET", "/repos/acme/app/actions/runners", None).status,
            403
        );
    }
    std::thread::sleep(Duration::from_millis(3200).saturating_sub(armed.elapsed()));
    assert_eq!(
        api(&emu, "GET", "/repos/acme/app/actions/runners", None).status,
        200
    );
}

#[test]
fn real_exhaustion_of_the_hourly_limit_also_gives_403() {
    let rx = Receiver::start();
    let mut cfg = config(&rx);
    cfg.rate_limit_per_hour = 2;
    let emu = github_emulator::Emulator::start(cfg).unwrap();
    assert_eq!(
        api(&emu, "GET", "/repos/acme/app/actions/runners", None).status,
        200
    );
    let last = api(&emu, "GET", "/repos/acme/app/actions/runners", None);
    assert_eq!(last.header("x-ratelimit-remaining"), Some("0"));
    let over = api(&emu, "GET", "/repos/acme/app/actions/runners", None);
    assert_eq!(
        (over.status, over.header("x-ratelimit-remaining")),
        (403, Some("0"))
    );
}

#[test]
fn secondary_rate_limit_answers_with_retry_after() {
    let rx = Receiver::start();
    let emu = start(&rx);
    emu.set_fault(Fault::SecondaryRateLimit {
        route: "**".into(),
        status: 429,
        retry_after_s: 7,
        span: Span::Calls(1),
    })
    .unwrap();
    emu.set_fault(Fault::SecondaryRateLimit {
        route: "**".into(),
        status: 403,
        retry_after_s: 3,
        span: Span::Calls(1),
    })
    .unwrap();
    let a = api(&emu, "GET", "/repos/acme/app/actions/runners", None);
    assert_eq!((a.status, a.header("retry-after")), (429, Some("7")));
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .contains("secondary rate limit")
    );
    let b = api(&emu, "GET", "/repos/acme/app/actions/runners", None);
    assert_eq!((b.status, b.header("retry-after")), (403, Some("3")));
    assert_eq!(
        api(&emu, "GET", "/repos/acme/app/actions/runners", None).status,
        200
    );
    assert!(
        emu.set_fault(Fault::SecondaryRateLimit {
            route: "**".into(),
            status: 500,
            retry_after_s: 1,
            span: Span::Calls(1),
        })
        .is_err()
    );
}

#[test]
fn slow_answers_are_late_but_correct() {
    let rx = Receiver::start();
    let emu = start(&rx);
    emu.set_fault(Fault::Slow {
        route: "GET /rate_limit".into(),
        delay_ms: 1000,
        span: Span::Calls(1),
    })
    .unwrap();
    let t = Instant::now();
    assert_eq!(api(&emu, "GET", "/rate_limit", None).status, 200);
    assert!(t.elapsed() >= Duration::from_millis(1000));
    let t = Instant::now();
    assert_eq!(api(&emu, "GET", "/rate_limit", None).status, 200);
    assert!(t.elapsed() < Duration::from_millis(1000));
}

#[test]
fn duplicate_deliveries_arrive_twice_with_one_guid() {
    let rx = Receiver::start();
    let emu = start(&rx);
    emu.set_fault(Fault::DuplicateDeliveries { count: 1 })
        .unwrap();
    let job = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    let got = rx.wait_until("two queued", |g| {
        g.iter().filter(|r| r.job_id() == job.id).count() == 2
    });
    let guids: Vec<_> = got
        .iter()
        .filter(|r| r.job_id() == job.id)
        .map(|r| r.header("x-github-delivery").unwrap().to_owned())
        .collect();
    assert_eq!(guids[0], guids[1]);
    let next = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    rx.wait_job_event(next.id, "queued");
    assert!(emu.wait_idle(WAIT));
    assert_eq!(rx.all().iter().filter(|r| r.job_id() == next.id).count(), 1);
}

#[test]
fn out_of_order_deliveries_arrive_after_a_later_one() {
    let rx = Receiver::start();
    let emu = start(&rx);
    rx.wait_until("ping", |g| !g.is_empty());
    emu.set_fault(Fault::OutOfOrderDeliveries {
        count: 1,
        hold_ms: 5000,
    })
    .unwrap();
    let a = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    let b = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    rx.wait_job_event(a.id, "queued");
    let order: Vec<u64> = rx.job_events().into_iter().map(|(id, _)| id).collect();
    assert_eq!(order, [b.id, a.id]);

    // With nothing after it, a held delivery still goes out when its hold ends.
    emu.set_fault(Fault::OutOfOrderDeliveries {
        count: 1,
        hold_ms: 200,
    })
    .unwrap();
    let c = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    rx.wait_job_event(c.id, "queued");
}

#[test]
fn lost_deliveries_show_as_502_and_redelivery_recovers_them() {
    let rx = Receiver::start();
    let emu = start(&rx);
    emu.set_fault(Fault::LostDeliveries { count: 1 }).unwrap();
    let job = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    let next = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    rx.wait_job_event(next.id, "queued");
    assert!(emu.wait_idle(WAIT));
    assert!(
        rx.all().iter().all(|r| r.job_id() != job.id),
        "the lost one never arrived"
    );

    let hook = emu.deliveries()[0].hook_id;
    let list = api(
        &emu,
        "GET",
        &format!("/repos/acme/app/hooks/{hook}/deliveries?status=failure"),
        None,
    );
    let failed = list.body.as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["status_code"], 502);
    assert_eq!(failed[0]["action"], "queued");
    let id = failed[0]["id"].as_u64().unwrap();
    let one = api(
        &emu,
        "GET",
        &format!("/repos/acme/app/hooks/{hook}/deliveries/{id}"),
        None,
    );
    assert_eq!(one.body["request"]["payload"]["workflow_job"]["id"], job.id);

    let r = api(
        &emu,
        "POST",
        &format!("/repos/acme/app/hooks/{hook}/deliveries/{id}/attempts"),
        None,
    );
    assert_eq!(r.status, 202);
    let got = rx.wait_job_event(job.id, "queued");
    assert_eq!(
        got.header("x-github-delivery"),
        Some(failed[0]["guid"].as_str().unwrap())
    );
    assert!(emu.wait_idle(WAIT));
    let ok = api(
        &emu,
        "GET",
        &format!("/repos/acme/app/hooks/{hook}/deliveries?per_page=1"),
        None,
    );
    assert_eq!(ok.body[0]["redelivery"], true);
    assert_eq!(ok.body[0]["status_code"], 200);
}

#[test]
fn faults_jobs_and_state_over_the_control_api() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let base = emu.base_url().to_owned();
    let ctl = |m: &str, p: &str, b: Option<&serde_json::Value>| {
        call(m, &format!("{base}/_emulator{p}"), None, b)
    };

    let f = ctl(
        "POST",
        "/faults",
        Some(&json!({"kind": "server_error", "route": "GET /repos/**", "calls": 1})),
    );
    assert_eq!(f.status, 201, "{:?}", f.body);
    assert_eq!(ctl("GET", "/faults", None).body[0]["remaining"], 1);
    assert_eq!(
        api(&emu, "GET", "/repos/acme/app/actions/runners", None).status,
        500
    );
    assert_eq!(
        api(&emu, "GET", "/repos/acme/app/actions/runners", None).status,
        200
    );
    let bad = ctl(
        "POST",
        "/faults",
        Some(&json!({"kind": "server_error", "route": "", "status": 404, "calls": 1})),
    );
    assert_eq!(bad.status, 422);
    assert_eq!(
        ctl("POST", "/faults", Some(&json!({"kind": "nope"}))).status,
        400
    );
    ctl(
        "POST",
        "/faults",
        Some(&json!({"kind": "slow", "route": "**", "delay_ms": 10, "span": {"for_ms": 60000}})),
    );
    assert_eq!(ctl("DELETE", "/faults", None).status, 204);
    assert!(emu.faults().is_empty());

    let job = ctl(
        "POST",
        "/jobs",
        Some(&json!({"owner": "acme", "repo": "app", "labels": LABELS, "duration_ms": 10})),
    );
    assert_eq!(job.status, 201);
    let id = job.body["id"].as_u64().unwrap();
    rx.wait_job_event(id, "queued");
    assert_eq!(
        ctl("GET", &format!("/jobs/{id}"), None).body["status"],
        "queued"
    );
    assert_eq!(ctl("GET", "/jobs", None).body.as_array().unwrap().len(), 1);
    assert_eq!(
        ctl(
            "POST",
            "/jobs",
            Some(&json!({"owner": "acme", "repo": "app", "labels": []}))
        )
        .status,
        422
    );
    let calls = ctl("GET", "/calls", None);
    let paths: Vec<&str> = calls
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["path"].as_str())
        .collect();
    assert!(paths.contains(&"/repos/acme/app/actions/runners"));
    assert!(!calls.body.to_string().contains(PAT));
    assert_eq!(ctl("GET", "/counts", None).body["queued"], 1);
    assert!(
        ctl("GET", "/deliveries", None)
            .body
            .as_array()
            .unwrap()
            .len()
            >= 2
    );
    assert_eq!(ctl("GET", "/runners", None).body, json!([]));
    assert_eq!(ctl("GET", "/nope", None).status, 404);
    let cancel = ctl(
        "POST",
        &format!("/runs/acme/app/{}/cancel", job.body["run_id"]),
        None,
    );
    assert_eq!(cancel.status, 202);
    rx.wait_job_event(id, "completed");
}
