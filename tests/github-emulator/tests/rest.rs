//! The REST surface over real HTTP: headers on every answer, credentials (PATs, installation
//! tokens that expire, app JWTs), runner tokens, JIT configs, runners (filter, paging, busy
//! delete), jobs, rate limit, body cap. Shapes are compared with GitHub's examples.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use github_emulator::{Emulator, JobSpec, Principal};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const LABELS: [&str; 2] = ["self-hosted", "anka-template:macos-15"];

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../fixtures/github/api/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_answer_says_emulator_and_carries_rate_headers() {
    let rx = Receiver::start();
    let emu = start(&rx);
    for (auth, path) in [
        (pat(), "/repos/acme/app/actions/runners"),
        (None, "/repos/acme/app/actions/runners"),
        (pat(), "/nope"),
        (None, "/_emulator/health"),
        (None, "/_emulator/runner-service/sessions"),
    ] {
        let a = call(
            "GET",
            &format!("{}{path}", emu.base_url()),
            auth.as_deref(),
            None,
        );
        assert_eq!(a.header("x-github-emulator"), Some("anklet-rs"), "{path}");
        for h in ["limit", "remaining", "used", "reset", "resource"] {
            assert!(
                a.header(&format!("x-ratelimit-{h}")).is_some(),
                "{path} {h}"
            );
        }
    }
    let first = api(&emu, "GET", "/repos/acme/app/actions/runners", None);
    let second = api(&emu, "GET", "/repos/acme/app/actions/runners", None);
    let used = |a: &Answer| {
        a.header("x-ratelimit-used")
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    assert_eq!(used(&second), used(&first) + 1);
    assert_eq!(second.header("x-ratelimit-limit"), Some("5000"));
    assert_eq!(second.header("x-ratelimit-resource"), Some("core"));

    let rl = api(&emu, "GET", "/rate_limit", None);
    assert_eq!(rl.status, 200);
    assert_eq!(keys(&rl.body), keys(&fixture("rate-limit-overview.json")));
    assert_eq!(rl.body["resources"]["core"]["used"], used(&second));
}

#[test]
fn credentials_are_checked_and_never_logged() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let url = format!("{}/repos/acme/app/actions/runners", emu.base_url());
    assert_eq!(call("GET", &url, None, None).status, 401);
    let bad = call("GET", &url, Some("Bearer ghp_wrong"), None);
    assert_eq!(
        (bad.status, bad.body["message"].as_str()),
        (401, Some("Bad credentials"))
    );
    assert_eq!(
        call("GET", &url, Some(&format!("token {PAT}")), None).status,
        200
    );
    // A PAT is not a JWT: app endpoints refuse it.
    let app = call(
        "GET",
        &format!("{}/app/installations", emu.base_url()),
        pat().as_deref(),
        None,
    );
    assert_eq!(app.status, 401);
    let log = format!("{:?}", emu.calls());
    assert!(!log.contains(PAT) && !log.contains("ghp_wrong"));
    assert!(
        emu.calls()
            .iter()
            .any(|c| c.principal == Some(Principal::Pat { index: 0 }))
    );
}

#[test]
fn installation_tokens_expire_to_401_and_refresh_works() {
    let rx = Receiver::start();
    let mut cfg = config(&rx);
    cfg.installation_token_ttl = Duration::from_secs(2);
    let emu = Emulator::start(cfg).unwrap();
    let jwt = bearer(&app_jwt());
    let inst = call(
        "GET",
        &format!("{}/repos/acme/app/installation", emu.base_url()),
        Some(&jwt),
        None,
    );
    assert_eq!(inst.status, 200, "{:?}", inst.body);
    assert_eq!(keys(&inst.body), keys(&fixture("installation.json")));
    assert_eq!(inst.body["account"]["login"], "acme");
    assert_eq!(inst.body["app_id"], APP_ID);
    let id = inst.body["id"].as_u64().unwrap();
    let org = call(
        "GET",
        &format!("{}/orgs/acme/installation", emu.base_url()),
        Some(&jwt),
        None,
    );
    assert_eq!(org.body["id"], id);

    let mint = || {
        let t = call(
            "POST",
            &format!("{}/app/installations/{id}/access_tokens", emu.base_url()),
            Some(&jwt),
            None,
        );
        assert_eq!(t.status, 201, "{:?}", t.body);
        assert!(keys(&fixture("installation-token.json")).is_superset(&keys(&t.body)));
        t.body["token"].as_str().unwrap().to_owned()
    };
    let token = mint();
    assert!(token.starts_with("ghs_"));
    let runners = format!("{}/repos/acme/app/actions/runners", emu.base_url());
    assert_eq!(
        call("GET", &runners, Some(&bearer(&token)), None).status,
        200
    );
    // Only on its own account.
    let elsewhere = call(
        "GET",
        &format!("{}/repos/other/app/actions/runners", emu.base_url()),
        Some(&bearer(&token)),
        None,
    );
    assert_eq!(elsewhere.status, 403);

    std::thread::sleep(Duration::from_millis(2200));
    let expired = call("GET", &runners, Some(&bearer(&token)), None);
    assert_eq!(
        (expired.status, expired.body["message"].as_str()),
        (401, Some("Bad credentials"))
    );
    let fresh = mint();
    assert_ne!(fresh, token);
    assert_eq!(
        call("GET", &runners, Some(&bearer(&fresh)), None).status,
        200
    );

    emu.expire_installation_tokens();
    assert_eq!(
        call("GET", &runners, Some(&bearer(&fresh)), None).status,
        401
    );
    let unknown = call(
        "POST",
        &format!("{}/app/installations/1/access_tokens", emu.base_url()),
        Some(&jwt),
        None,
    );
    assert_eq!(unknown.status, 404);
    assert!(!format!("{:?}", emu.calls()).contains(&fresh));
}

#[test]
fn app_jwts_are_verified_like_github() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let url = format!("{}/orgs/acme/installation", emu.base_url());
    let ok = |t: String| call("GET", &url, Some(&bearer(&t)), None).status;
    assert_eq!(ok(app_jwt()), 200);
    assert_eq!(ok(jwt(json!(APP_ID.to_string()), -60, 540)), 200);
    assert_eq!(ok(jwt(json!("Iv1.testclient"), -60, 540)), 200);
    assert_eq!(ok(jwt(json!(APP_ID + 1), -60, 540)), 401, "wrong issuer");
    assert_eq!(ok(jwt(json!(APP_ID), -900, -300)), 401, "expired");
    assert_eq!(ok(jwt(json!(APP_ID), -60, 3600)), 401, "exp too far ahead");
    let good = app_jwt();
    let sig_at = good.rfind('.').unwrap() + 10;
    let flipped = if &good[sig_at..=sig_at] == "A" {
        "B"
    } else {
        "A"
    };
    let tampered = format!("{}{flipped}{}", &good[..sig_at], &good[sig_at + 1..]);
    assert_eq!(ok(tampered), 401, "bad signature");
    assert_eq!(
        call("GET", &url, Some(&format!("token {}", app_jwt())), None).status,
        401
    );
    // A JWT is not accepted on non-app endpoints.
    let runners = format!("{}/orgs/acme/actions/runners", emu.base_url());
    assert_eq!(
        call("GET", &runners, Some(&bearer(&app_jwt())), None).status,
        401
    );
}

#[test]
fn runner_tokens_and_jit_configs_have_githubs_shapes() {
    let rx = Receiver::start();
    let emu = start(&rx);
    for (path, fixture_name) in [
        (
            "/repos/acme/app/actions/runners/registration-token",
            "authentication-token.json",
        ),
        (
            "/orgs/acme/actions/runners/registration-token",
            "authentication-token.json",
        ),
        (
            "/enterprises/ent/actions/runners/registration-token",
            "authentication-token.json",
        ),
        (
            "/repos/acme/app/actions/runners/remove-token",
            "authentication-token-2.json",
        ),
        (
            "/orgs/acme/actions/runners/remove-token",
            "authentication-token-2.json",
        ),
        (
            "/enterprises/ent/actions/runners/remove-token",
            "authentication-token-2.json",
        ),
    ] {
        let t = api(&emu, "POST", path, None);
        assert_eq!(t.status, 201, "{path}");
        assert_eq!(keys(&t.body), keys(&fixture(fixture_name)), "{path}");
        assert!(t.body["expires_at"].as_str().unwrap().ends_with('Z'));
    }
    let body =
        json!({"name": "r1", "runner_group_id": 1, "labels": ["self-hosted", "macOS", "no-gpu"]});
    let j = api(
        &emu,
        "POST",
        "/repos/acme/app/actions/runners/generate-jitconfig",
        Some(&body),
    );
    assert_eq!(j.status, 201);
    assert_eq!(keys(&j.body), keys(&fixture("runner-jitconfig.json")));
    let expected = keys(&fixture("runner-jitconfig.json")["runner"]);
    assert!(keys(&j.body["runner"]).is_superset(&expected));
    let labels = &j.body["runner"]["labels"];
    assert_eq!(labels[0]["type"], "read-only");
    assert_eq!(labels[2]["type"], "custom");
    let dup = api(
        &emu,
        "POST",
        "/repos/acme/app/actions/runners/generate-jitconfig",
        Some(&body),
    );
    assert_eq!(dup.status, 409);
    let no_group = api(
        &emu,
        "POST",
        "/orgs/acme/actions/runners/generate-jitconfig",
        Some(&json!({"name": "x", "labels": ["a"]})),
    );
    assert_eq!(no_group.status, 422);
    let no_labels = api(
        &emu,
        "POST",
        "/orgs/acme/actions/runners/generate-jitconfig",
        Some(&json!({"name": "x", "runner_group_id": 1, "labels": []})),
    );
    assert_eq!(no_labels.status, 422);
    let ent = api(
        &emu,
        "POST",
        "/enterprises/ent/actions/runners/generate-jitconfig",
        Some(&json!({"name": "x", "runner_group_id": 1, "labels": ["a"]})),
    );
    assert_eq!(ent.status, 201);
    // JIT configs never reach the call log.
    let enc = j.body["encoded_jit_config"].as_str().unwrap();
    assert!(!format!("{:?}", emu.calls()).contains(enc));
}

#[test]
fn runners_list_filters_pages_gets_and_deletes() {
    let rx = Receiver::start();
    let emu = start(&rx);
    for i in 0..5 {
        let body = json!({"name": format!("runner {i}"), "runner_group_id": 1, "labels": LABELS});
        assert_eq!(
            api(
                &emu,
                "POST",
                "/repos/acme/app/actions/runners/generate-jitconfig",
                Some(&body)
            )
            .status,
            201
        );
    }
    let org_body = json!({"name": "org one", "runner_group_id": 1, "labels": LABELS});
    assert_eq!(
        api(
            &emu,
            "POST",
            "/orgs/acme/actions/runners/generate-jitconfig",
            Some(&org_body)
        )
        .status,
        201
    );

    let page1 = api(
        &emu,
        "GET",
        "/repos/acme/app/actions/runners?per_page=2",
        None,
    );
    assert_eq!(
        page1.body["total_count"], 5,
        "repo list holds repo runners only"
    );
    assert_eq!(page1.body["runners"].as_array().unwrap().len(), 2);
    assert_eq!(keys(&page1.body), keys(&fixture("runner-paginated.json")));
    assert!(keys(&page1.body["runners"][0]).is_superset(&keys(&fixture("runner.json"))));
    let link = page1.header("link").unwrap();
    assert!(
        link.contains("page=2>; rel=\"next\"") && link.contains("page=3>; rel=\"last\""),
        "{link}"
    );
    let page3 = api(
        &emu,
        "GET",
        "/repos/acme/app/actions/runners?per_page=2&page=3",
        None,
    );
    assert_eq!(page3.body["runners"].as_array().unwrap().len(), 1);
    assert!(page3.header("link").is_none());

    let named = api(
        &emu,
        "GET",
        "/repos/acme/app/actions/runners?name=runner%203",
        None,
    );
    assert_eq!(named.body["total_count"], 1);
    let id = named.body["runners"][0]["id"].as_u64().unwrap();
    assert_eq!(named.body["runners"][0]["name"], "runner 3");
    assert_eq!(
        api(&emu, "GET", "/orgs/acme/actions/runners", None).body["total_count"],
        1
    );

    let got = api(
        &emu,
        "GET",
        &format!("/repos/acme/app/actions/runners/{id}"),
        None,
    );
    assert_eq!((got.status, got.body["busy"].as_bool()), (200, Some(false)));
    assert_eq!(
        api(
            &emu,
            "GET",
            &format!("/orgs/acme/actions/runners/{id}"),
            None
        )
        .status,
        404
    );
    assert_eq!(
        api(
            &emu,
            "DELETE",
            &format!("/repos/acme/app/actions/runners/{id}"),
            None
        )
        .status,
        204
    );
    assert_eq!(
        api(
            &emu,
            "DELETE",
            &format!("/repos/acme/app/actions/runners/{id}"),
            None
        )
        .status,
        404
    );
    assert_eq!(
        api(&emu, "GET", "/repos/acme/app/actions/runners", None).body["total_count"],
        4
    );
}

#[test]
fn deleting_a_busy_runner_is_refused_with_422() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let job = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    let (rid, token, _) = jit_runner(&emu, "acme", "app", &format!("r-{}", job.id), &LABELS);
    session_and_job(&emu, rid, &token);
    let del = api(
        &emu,
        "DELETE",
        &format!("/repos/acme/app/actions/runners/{rid}"),
        None,
    );
    assert_eq!(del.status, 422);
    assert_eq!(
        del.body["message"],
        format!(
            "Bad request - Runner \"r-{}\" is still running a job",
            job.id
        )
        .as_str()
    );
}

#[test]
fn jobs_api_has_githubs_job_shape() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let job = emu
        .create_job(JobSpec::new("acme", "app", &LABELS).run_id(99))
        .unwrap();
    let got = api(
        &emu,
        "GET",
        &format!("/repos/acme/app/actions/jobs/{}", job.id),
        None,
    );
    assert_eq!(got.status, 200);
    assert!(keys(&got.body).is_superset(&keys(&fixture("job.json"))));
    assert_eq!(got.body["status"], "queued");
    assert_eq!(got.body["labels"], json!(LABELS));
    assert_eq!(got.body["run_id"], 99);
    assert_eq!(
        api(
            &emu,
            "GET",
            &format!("/repos/acme/other/actions/jobs/{}", job.id),
            None
        )
        .status,
        404
    );
    assert_eq!(
        api(&emu, "GET", "/repos/acme/app/actions/jobs/notanumber", None).status,
        404
    );
    let run = api(&emu, "GET", "/repos/acme/app/actions/runs/99/jobs", None);
    assert_eq!(run.body["total_count"], 1);
    assert_eq!(run.body["jobs"][0]["id"], job.id);
}

#[test]
fn oversized_bodies_get_413() {
    let rx = Receiver::start();
    let mut cfg = config(&rx);
    cfg.max_body_bytes = 1024;
    let emu = Emulator::start(cfg).unwrap();
    let big = json!({"name": "x".repeat(4096), "runner_group_id": 1, "labels": ["a"]});
    let a = api(
        &emu,
        "POST",
        "/repos/acme/app/actions/runners/generate-jitconfig",
        Some(&big),
    );
    assert_eq!(a.status, 413);
    assert!(emu.runners().is_empty());
}

#[test]
fn the_time_scale_shortens_token_lifetimes() {
    let rx = Receiver::start();
    let mut cfg = config(&rx);
    cfg.time_scale = github_emulator::TimeScale::new(0.0005).unwrap();
    let emu = Emulator::start(cfg).unwrap();
    let jwt = bearer(&app_jwt());
    let id = call(
        "GET",
        &format!("{}/orgs/acme/installation", emu.base_url()),
        Some(&jwt),
        None,
    )
    .body["id"]
        .as_u64()
        .unwrap();
    let t = call(
        "POST",
        &format!("{}/app/installations/{id}/access_tokens", emu.base_url()),
        Some(&jwt),
        None,
    );
    let token = t.body["token"].as_str().unwrap().to_owned();
    let url = format!("{}/orgs/acme/actions/runners", emu.base_url());
    assert_eq!(call("GET", &url, Some(&bearer(&token)), None).status, 200);
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(
        call("GET", &url, Some(&bearer(&token)), None).status,
        401,
        "1 h scaled to 1.8 s"
    );
}
