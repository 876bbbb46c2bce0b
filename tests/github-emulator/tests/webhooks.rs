//! Webhooks: signed the way anklet-core verifies, parsed by anklet-core, shaped like GitHub's
//! fixture, pinged on hook creation, recorded for the deliveries API (paging, get with payload,
//! redelivery).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anklet_core::github::webhook::{Delivery, parse_delivery, verify_signature};
use anklet_core::secret::Secret;
use common::*;
use github_emulator::JobSpec;
use serde_json::Value;
use std::collections::BTreeSet;

const LABELS: [&str; 2] = ["self-hosted", "anka-template:macos-15"];
const QUEUED_FIXTURE: &str = include_str!("../../fixtures/github/workflow_job.queued.json");

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn queued_webhook_is_signed_parsed_and_shaped_like_github() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let job = emu
        .create_job(JobSpec::new("acme", "app", &LABELS).run_id(555))
        .unwrap();
    let got = rx.wait_job_event(job.id, "queued");

    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("user-agent"), Some("GitHub-Hookshot/emulator"));
    assert_eq!(got.header("x-github-event"), Some("workflow_job"));
    let guid = got.header("x-github-delivery").unwrap();
    assert_eq!(guid.len(), 36);
    let hook_id: u64 = got.header("x-github-hook-id").unwrap().parse().unwrap();
    assert_eq!(
        got.header("x-github-hook-installation-target-type"),
        Some("integration")
    );

    let sig = got.header("x-hub-signature-256");
    verify_signature(&Secret::new(SECRET), &got.body, sig).expect("signature verifies");
    assert!(verify_signature(&Secret::new("other"), &got.body, sig).is_err());

    match parse_delivery("workflow_job", &got.body).unwrap() {
        Delivery::Queued(n) => {
            assert_eq!(n.id.0, job.id);
            assert_eq!(n.run_id, 555);
            assert_eq!(n.owner, "acme");
            assert_eq!(n.repo, "app");
            assert_eq!(n.labels, LABELS);
        }
        other => panic!("expected Queued, got {other:?}"),
    }

    let fixture: Value = serde_json::from_str(QUEUED_FIXTURE).unwrap();
    let ours = got.json();
    assert_eq!(keys(&ours), keys(&fixture));
    assert_eq!(keys(&ours["workflow_job"]), keys(&fixture["workflow_job"]));
    assert_eq!(keys(&ours["repository"]), keys(&fixture["repository"]));
    assert_eq!(ours["workflow_job"]["runner_id"], Value::Null);
    assert!(
        job.id > u64::from(u32::MAX),
        "job ids beyond 2^32 exercise 64-bit parsing"
    );
    assert!(
        !got.body.windows(10).any(|w| w == b"github.com"),
        "URLs point at the emulator"
    );

    // The delivery is recorded with its status code.
    assert!(emu.wait_idle(WAIT));
    let d = emu
        .deliveries()
        .into_iter()
        .find(|d| d.guid == guid)
        .unwrap();
    assert_eq!(
        (d.status_code, d.status.as_str(), d.hook_id),
        (200, "OK", hook_id)
    );
}

#[test]
fn hooks_are_pinged_and_listed() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let ping = rx.wait_until("ping", |g| g.iter().any(|r| r.event() == "ping"));
    let ping = ping.iter().find(|r| r.event() == "ping").unwrap();
    assert!(matches!(
        parse_delivery("ping", &ping.body),
        Ok(Delivery::Ping)
    ));
    verify_signature(
        &Secret::new(SECRET),
        &ping.body,
        ping.header("x-hub-signature-256"),
    )
    .unwrap();
    assert_eq!(ping.json()["hook"]["config"]["url"], rx.url.as_str());

    let hooks = api(&emu, "GET", "/repos/acme/app/hooks", None);
    assert_eq!(hooks.status, 200);
    assert_eq!(hooks.body[0]["config"]["url"], rx.url.as_str());

    // A second hook added at run time is pinged too, and gets the next events.
    let rx2 = Receiver::start();
    let h2 = emu.add_hook(&rx2.url).unwrap();
    rx2.wait_until("ping on the new hook", |g| {
        g.iter().any(|r| r.event() == "ping")
    });
    let job = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    let got = rx2.wait_job_event(job.id, "queued");
    assert_eq!(
        got.header("x-github-hook-id"),
        Some(h2.to_string().as_str())
    );
    rx.wait_job_event(job.id, "queued");
}

#[test]
fn deliveries_api_pages_with_cursor_and_link_and_returns_payloads() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(
            emu.create_job(JobSpec::new("acme", "app", &LABELS))
                .unwrap()
                .id,
        );
    }
    assert!(emu.wait_idle(WAIT));
    let hook = emu.deliveries()[0].hook_id;
    let path = format!("/repos/acme/app/hooks/{hook}/deliveries");

    // 5 deliveries (ping + 4 queued), newest first, 2 per page.
    let mut seen = Vec::new();
    let mut url = format!("{}{path}?per_page=2", emu.base_url());
    for _ in 0..5 {
        let page = call("GET", &url, pat().as_deref(), None);
        assert_eq!(page.status, 200);
        let items = page.body.as_array().unwrap().clone();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|i| i["id"].as_u64().unwrap()));
        match page.header("link") {
            Some(link) => {
                assert!(link.ends_with("rel=\"next\""), "{link}");
                url = link
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );

    let list = api(&emu, "GET", &path, None);
    let fixture: Value = serde_json::from_str(include_str!(
        "../../fixtures/github/api/hook-delivery-items.json"
    ))
    .unwrap();
    assert_eq!(keys(&list.body[0]), keys(&fixture[0]));
    let newest = list.body[0]["id"].as_u64().unwrap();
    let one = api(&emu, "GET", &format!("{path}/{newest}"), None);
    assert_eq!(one.status, 200);
    let full_fixture: Value =
        serde_json::from_str(include_str!("../../fixtures/github/api/hook-delivery.json")).unwrap();
    assert_eq!(keys(&one.body), keys(&full_fixture));
    assert_eq!(one.body["request"]["payload"]["workflow_job"]["id"], ids[3]);
    assert_eq!(
        one.body["request"]["headers"]["X-GitHub-Event"],
        "workflow_job"
    );

    // The app hook (JWT) and the org path see the same deliveries.
    let app = call(
        "GET",
        &format!("{}/app/hook/deliveries?per_page=1", emu.base_url()),
        Some(&bearer(&app_jwt())),
        None,
    );
    assert_eq!(app.status, 200);
    assert_eq!(app.body[0]["id"], newest);
    let redo = api(
        &emu,
        "POST",
        &format!("/orgs/acme/hooks/{hook}/deliveries/{newest}/attempts"),
        None,
    );
    assert_eq!(redo.status, 202);
    assert_eq!(
        api(
            &emu,
            "POST",
            &format!("/orgs/acme/hooks/{hook}/deliveries/1/attempts"),
            None
        )
        .status,
        404
    );

    // Org path, filters and errors.
    let org = api(
        &emu,
        "GET",
        &format!("/orgs/acme/hooks/{hook}/deliveries?status=failure"),
        None,
    );
    assert_eq!(org.status, 200);
    assert_eq!(org.body.as_array().unwrap().len(), 0);
    assert_eq!(
        api(&emu, "GET", "/orgs/acme/hooks/1/deliveries", None).status,
        404
    );
    assert_eq!(api(&emu, "GET", &format!("{path}/1"), None).status, 404);
    assert_eq!(
        call("GET", &format!("{}{path}", emu.base_url()), None, None).status,
        401
    );
}

#[test]
fn a_failing_receiver_is_recorded_and_redelivery_recovers_it() {
    let rx = Receiver::start();
    let emu = start(&rx);
    rx.respond_with(500);
    let job = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    rx.wait_job_event(job.id, "queued");
    assert!(emu.wait_idle(WAIT));
    let failed = emu
        .deliveries()
        .into_iter()
        .find(|d| d.event == "workflow_job")
        .unwrap();
    assert_eq!(failed.status_code, 500);
    assert!(!failed.succeeded());

    rx.respond_with(200);
    let path = format!(
        "/repos/acme/app/hooks/{}/deliveries/{}/attempts",
        failed.hook_id, failed.id
    );
    let r = api(&emu, "POST", &path, None);
    assert_eq!(r.status, 202);
    let all = rx.wait_until("redelivery", |g| {
        g.iter().filter(|r| r.event() == "workflow_job").count() == 2
    });
    let guids: Vec<_> = all
        .iter()
        .filter(|r| r.event() == "workflow_job")
        .map(|r| r.header("x-github-delivery").unwrap().to_owned())
        .collect();
    assert_eq!(guids[0], guids[1], "a redelivery keeps the GUID");
    let last = all.last().unwrap();
    verify_signature(
        &Secret::new(SECRET),
        &last.body,
        last.header("x-hub-signature-256"),
    )
    .unwrap();
    assert!(emu.wait_idle(WAIT));
    let redelivered = emu.deliveries().into_iter().last().unwrap();
    assert!(redelivered.redelivery && redelivered.succeeded());
}

#[test]
fn without_a_secret_no_signature_is_sent() {
    let rx = Receiver::start();
    let mut cfg = config(&rx);
    cfg.webhook_secret = None;
    let emu = github_emulator::Emulator::start(cfg).unwrap();
    let job = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    let got = rx.wait_job_event(job.id, "queued");
    assert_eq!(got.header("x-hub-signature-256"), None);
}

#[test]
fn a_receiver_slower_than_the_timeout_is_a_failed_delivery() {
    let rx = Receiver::start();
    let mut cfg = config(&rx);
    cfg.webhook_timeout = std::time::Duration::from_millis(200);
    let emu = github_emulator::Emulator::start(cfg).unwrap();
    rx.wait_until("ping", |g| !g.is_empty());
    rx.delay(std::time::Duration::from_millis(600));
    let job = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    assert!(emu.wait_idle(WAIT));
    let d = emu
        .deliveries()
        .into_iter()
        .find(|d| d.event == "workflow_job")
        .unwrap();
    assert_eq!((d.status_code, d.status.as_str()), (0, "timed out"));
    rx.wait_job_event(job.id, "queued");
}
