//! The sans-IO GitHub client: request shapes (insta), parsers against GitHub's own examples
//! (tests/fixtures/github/api, from github/rest-api-description, MIT; see SOURCE.md there),
//! the App token cache, rate-limit pauses, retries, runner removal, and secrets that never
//! show in any formatting. A property test drives random answers and checks that every
//! command gets exactly one result.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::config::RunnerRegistration;
use anklet_core::github::auth::{AppCredentials, AppKey, Credentials};
use anklet_core::github::client::{ClientConfig, Command, CommandResult, GithubClient, RequestId};
use anklet_core::github::http::{HttpRequest, HttpResponse, Method, TransportError};
use anklet_core::github::link::NextPage;
use anklet_core::github::rest::{self, ApiScope, apps, deliveries, jobs, runners};
use anklet_core::handler::{
    EffectResult, FailureClass, ForgeCmd, GithubJobStatus, JobRef, RunnerCredentials, RunnerInfo,
};
use anklet_core::ids::{EffectId, JobId, VmName};
use anklet_core::secret::Secret;
use anklet_core::time::Timestamp;
use proptest::prelude::*;
use std::time::Duration;

const BASE: &str = "http://127.0.0.1:8089";
const PAT: &str = "ghp_TESTPAT_0123456789abcdef";
const INSTALLATION_TOKEN: &str = "ghs_INSTALLATION_TOKEN_abcdef0123";
const JIT: &str = "eyJJSVRfQ09ORklHX1NFQ1JFVCI6MX0=";
const REG_TOKEN: &str = "REGTOKEN_SECRET_LLBF3JGZDX3P";
const KEY: &str = include_str!("../../tests/fixtures/github/test-app-key.pem");
const T0: Timestamp = Timestamp(1_700_000_000_000);

fn at(secs: u64) -> Timestamp {
    T0 + Duration::from_secs(secs)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../tests/fixtures/github/api/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

fn repo() -> ApiScope {
    ApiScope::Repository {
        owner: "octo-org".into(),
        repo: "hello-world".into(),
    }
}

fn config(scope: ApiScope, credentials: Credentials) -> ClientConfig {
    ClientConfig {
        api_base_url: BASE.into(),
        max_attempts: 3,
        ..ClientConfig::new(scope, credentials)
    }
}

fn pat_client() -> GithubClient {
    GithubClient::new(config(repo(), Credentials::Token(Secret::new(PAT))))
}

fn app_credentials(installation_id: Option<u64>) -> Credentials {
    Credentials::App(AppCredentials::new(
        4242,
        installation_id,
        AppKey::from_pem(&Secret::new(KEY)).unwrap(),
    ))
}

fn app_client(installation_id: Option<u64>) -> GithubClient {
    GithubClient::new(config(repo(), app_credentials(installation_id)))
}

fn job() -> JobRef {
    JobRef {
        id: JobId(14_541_957_942),
        run_id: 29_679_449,
        owner: "octo-org".into(),
        repo: "hello-world".into(),
    }
}

fn vm() -> VmName {
    VmName("anklet-vm-mac1-14541957942-1".into())
}

fn jit_cmd() -> Command {
    Command::Forge {
        cmd: ForgeCmd::CreateRunnerConfig {
            job: job(),
            runner: vm(),
            mode: RunnerRegistration::Jit,
            group: None,
        },
        labels: vec![
            "self-hosted".into(),
            "anka-template:84266873-da90".into(),
            "anka-template-tag:v1".into(),
        ],
    }
}

fn get_job() -> Command {
    ForgeCmd::GetJob { job: job() }.into()
}

fn remove_runner() -> Command {
    ForgeCmd::RemoveRunner { runner: vm() }.into()
}

/// `METHOD URL`, headers (Authorization shown as `Bearer [redacted]`), and the JSON body.
fn render(req: &HttpRequest) -> String {
    let mut out = format!("{} {}\n", req.method, req.url);
    for (n, v) in &req.headers {
        if n.eq_ignore_ascii_case("authorization") {
            let scheme = v.split(' ').next().unwrap_or("");
            out.push_str(&format!("{n}: {scheme} [redacted]\n"));
        } else {
            out.push_str(&format!("{n}: {v}\n"));
        }
    }
    if let Some(b) = &req.body {
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        out.push('\n');
        out.push_str(&serde_json::to_string_pretty(&v).unwrap());
        out.push('\n');
    }
    out
}

fn json(status: u16, body: &str) -> HttpResponse {
    HttpResponse::new(status, body).with_header("content-type", "application/json")
}

/// A well-behaved GitHub: the right answer for each request the client makes.
fn github(req: &HttpRequest) -> HttpResponse {
    let url = req.url.as_str();
    let path = url.strip_prefix(BASE).unwrap_or(url);
    match (req.method, path) {
        (Method::Post, p) if p.ends_with("/access_tokens") => json(
            201,
            &format!(r#"{{"token":"{INSTALLATION_TOKEN}","expires_at":"2023-11-14T23:13:20Z"}}"#),
        ),
        (Method::Get, p) if p.ends_with("/installation") => {
            HttpResponse::new(200, fixture("installation.json"))
        }
        (Method::Post, p) if p.ends_with("/registration-token") => json(
            201,
            &format!(r#"{{"token":"{REG_TOKEN}","expires_at":"2030-01-22T12:13:35.123-08:00"}}"#),
        ),
        (Method::Post, p) if p.ends_with("/generate-jitconfig") => json(
            201,
            &format!(
                r#"{{"runner":{{"id":23,"name":"x","os":"unknown","status":"offline","busy":false,"labels":[]}},"encoded_jit_config":"{JIT}"}}"#
            ),
        ),
        (Method::Get, p) if p.contains("/actions/runners?") => {
            HttpResponse::new(200, fixture("runner-paginated.json"))
        }
        (Method::Delete, _) => HttpResponse::new(204, ""),
        (Method::Get, p) if p.contains("/actions/jobs/") => {
            HttpResponse::new(200, fixture("job.json"))
        }
        (Method::Post, p) if p.ends_with("/cancel") => json(202, "{}"),
        (Method::Get, p) if p.contains("/deliveries?") => {
            HttpResponse::new(200, fixture("hook-delivery-items.json"))
        }
        (Method::Get, p) if p.contains("/deliveries/") => {
            HttpResponse::new(200, fixture("hook-delivery.json"))
        }
        (Method::Post, p) if p.ends_with("/attempts") => json(202, "{}"),
        _ => json(404, r#"{"message":"Not Found"}"#),
    }
}

/// Sends every due request to `answer` until nothing is due; returns the requests sent.
fn pump(
    c: &mut GithubClient,
    now: Timestamp,
    mut answer: impl FnMut(&HttpRequest) -> Result<HttpResponse, TransportError>,
) -> Vec<HttpRequest> {
    let mut sent = vec![];
    for _ in 0..1000 {
        let Some((rid, req, timeout)) = c.poll_request() else {
            return sent;
        };
        assert_eq!(timeout, Duration::from_secs(30));
        let resp = answer(&req);
        sent.push(req);
        c.handle_response(now, rid, resp);
    }
    panic!("the client never stopped sending");
}

fn results(c: &mut GithubClient) -> Vec<(EffectId, CommandResult)> {
    std::iter::from_fn(|| c.poll_result()).collect()
}

fn failure_class(r: &CommandResult) -> Option<FailureClass> {
    r.failure().map(|f| f.class)
}

// ---------------------------------------------------------------- request shapes

#[test]
fn request_shapes() {
    let org = ApiScope::Organization("octo-org".into());
    let ent = ApiScope::Enterprise("octo-corp".into());
    let jit = runners::JitRequest::new(
        "anklet-vm-mac1-14541957942-1",
        1,
        &["anka-template:84266873-da90".into(), "Self-Hosted".into()],
    );
    let cursor = NextPage::Cursor("v1_12077215967".into());
    let shapes: Vec<(&str, HttpRequest)> = vec![
        (
            "registration_token_repo",
            runners::registration_token(BASE, &repo()),
        ),
        (
            "registration_token_org",
            runners::registration_token(BASE, &org),
        ),
        (
            "registration_token_enterprise",
            runners::registration_token(BASE, &ent),
        ),
        ("remove_token_repo", runners::remove_token(BASE, &repo())),
        ("remove_token_org", runners::remove_token(BASE, &org)),
        ("remove_token_enterprise", runners::remove_token(BASE, &ent)),
        (
            "jitconfig_repo",
            runners::generate_jitconfig(BASE, &repo(), &jit),
        ),
        (
            "jitconfig_org",
            runners::generate_jitconfig(BASE, &org, &jit),
        ),
        (
            "jitconfig_enterprise",
            runners::generate_jitconfig(BASE, &ent, &jit),
        ),
        (
            "list_runners_by_name",
            runners::list_runners(BASE, &repo(), Some("anklet vm/1"), None),
        ),
        (
            "list_runners_page_2",
            runners::list_runners(BASE, &org, None, Some(&NextPage::Page(2))),
        ),
        ("get_runner", runners::get_runner(BASE, &ent, 23)),
        ("delete_runner", runners::delete_runner(BASE, &repo(), 23)),
        (
            "list_runner_groups",
            runners::list_runner_groups(BASE, &org, None),
        ),
        (
            "get_job",
            jobs::get_job(BASE, "octo-org", "hello-world", 14_541_957_942),
        ),
        (
            "cancel_run",
            jobs::cancel_workflow_run(BASE, "octo-org", "hello-world", 29_679_449),
        ),
        ("installation_token", apps::installation_token(BASE, 1)),
        (
            "repo_installation",
            apps::find_installation(BASE, &repo()).unwrap(),
        ),
        (
            "org_installation",
            apps::find_installation(BASE, &org).unwrap(),
        ),
        (
            "list_deliveries_repo",
            deliveries::list_deliveries(BASE, &repo(), 42, None).unwrap(),
        ),
        (
            "list_deliveries_org_cursor",
            deliveries::list_deliveries(BASE, &org, 42, Some(&cursor)).unwrap(),
        ),
        (
            "get_delivery",
            deliveries::get_delivery(BASE, &repo(), 42, 12_345_678).unwrap(),
        ),
        (
            "redeliver_repo",
            deliveries::redeliver(BASE, &repo(), 42, 12_345_678).unwrap(),
        ),
        (
            "redeliver_org",
            deliveries::redeliver(BASE, &org, 42, 12_345_678).unwrap(),
        ),
    ];
    for (name, req) in shapes {
        assert!(req.header("authorization").is_none(), "{name}");
        insta::assert_snapshot!(name, render(&req));
    }
    assert!(apps::find_installation(BASE, &ent).is_none());
    assert!(deliveries::list_deliveries(BASE, &ent, 1, None).is_none());
}

#[test]
fn client_requests_carry_the_bearer_and_standard_headers() {
    let mut c = pat_client();
    c.handle_command(T0, EffectId(1), jit_cmd());
    let (_, req, _) = c.poll_request().unwrap();
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {PAT}").as_str())
    );
    assert_eq!(req.header("accept"), Some("application/vnd.github+json"));
    assert_eq!(req.header("x-github-api-version"), Some("2022-11-28"));
    assert_eq!(
        req.header("user-agent"),
        Some(concat!("anklet-rs/", env!("CARGO_PKG_VERSION")))
    );
    insta::assert_snapshot!("client_jit_request", render(&req));
    let shown = format!("{req:?}");
    assert!(!shown.contains(PAT), "{shown}");
}

// ---------------------------------------------------------------- parsers

#[test]
fn parsers_read_githubs_examples() {
    let r = |name: &str, status: u16| HttpResponse::new(status, fixture(name));
    let t = runners::parse_runner_token(&r("authentication-token.json", 201)).unwrap();
    assert_eq!(t.token.expose(), "LLBF3JGZDX3P5PMEXLND6TS6FCWO6");
    assert_eq!(t.expires_at, Timestamp(1_579_724_015_123));
    let t = runners::parse_runner_token(&r("authentication-token-2.json", 201)).unwrap();
    assert!(!t.token.is_empty());

    let jit = runners::parse_jitconfig(&r("runner-jitconfig.json", 201)).unwrap();
    assert_eq!(jit.runner_id, 23);
    assert_eq!(jit.encoded_jit_config.expose(), "abc123");

    let page = runners::parse_runner_page(&r("runner-paginated.json", 200)).unwrap();
    assert_eq!(
        page.runners,
        vec![
            RunnerInfo {
                id: 23,
                name: "linux_runner".into(),
                online: true,
                busy: true
            },
            RunnerInfo {
                id: 24,
                name: "mac_runner".into(),
                online: false,
                busy: false
            },
        ]
    );
    assert_eq!(page.next, None);
    let one = runners::parse_runner(&r("runner.json", 200)).unwrap();
    assert_eq!(one.id, 23);

    assert_eq!(
        jobs::parse_job(&r("job.json", 200)).unwrap(),
        GithubJobStatus::Completed {
            conclusion: Some("success".into())
        }
    );

    assert_eq!(
        apps::parse_installation_id(&r("installation.json", 200)).unwrap(),
        1
    );
    let it = apps::parse_installation_token(&r("installation-token.json", 201)).unwrap();
    assert_eq!(
        it.token.expose(),
        "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
    );
    assert_eq!(it.expires_at, Timestamp(1_468_275_250_000));

    let list = deliveries::parse_delivery_page(&r("hook-delivery-items.json", 200)).unwrap();
    assert_eq!(list.deliveries.len(), 2);
    assert_eq!(list.deliveries[0].id, 12_345_678);
    assert_eq!(
        list.deliveries[1].guid,
        "0b989ba4-242f-11e5-81e1-c7b6966d2516"
    );
    assert!(list.deliveries[1].redelivery);
    assert_eq!(
        list.deliveries[0].delivered_at,
        Timestamp(1_559_523_436_000)
    );
    let one = deliveries::parse_delivery(&r("hook-delivery.json", 200)).unwrap();
    assert_eq!(one.summary.status_code, 200);
    assert_eq!(
        one.payload,
        r#"{"action":"opened","issue":{"body":"foo"},"repository":{"id":123}}"#
    );
    assert!(deliveries::parse_redeliver(&json(202, "{}")).is_ok());
}

#[test]
fn job_statuses_map_to_what_the_handler_knows() {
    let job = |status: &str, extra: &str| {
        jobs::parse_job(&json(
            200,
            &format!(r#"{{"id":1,"status":"{status}"{extra}}}"#),
        ))
    };
    for s in ["queued", "waiting", "pending", "requested"] {
        assert_eq!(job(s, ""), Ok(GithubJobStatus::Queued), "{s}");
    }
    assert_eq!(
        job("in_progress", r#","runner_name":"anklet-vm-a-1-1""#),
        Ok(GithubJobStatus::InProgress {
            runner: Some("anklet-vm-a-1-1".into())
        })
    );
    assert_eq!(
        job("in_progress", r#","runner_name":"""#),
        Ok(GithubJobStatus::InProgress { runner: None })
    );
    assert_eq!(
        job("completed", r#","conclusion":"cancelled""#),
        Ok(GithubJobStatus::Completed {
            conclusion: Some("cancelled".into())
        })
    );
    assert!(job("exploded", "").is_err());
}

#[test]
fn parsers_refuse_malformed_bodies_without_quoting_them() {
    let bad = [
        json(201, r#"{"token": 5, "expires_at": "x"}"#),
        json(201, r#"{"token": "ghs_LEAKME", "expires_at": "tomorrow"}"#),
        json(
            201,
            r#"{"token": "", "expires_at": "2030-01-01T00:00:00Z"}"#,
        ),
        json(201, "not json ghs_LEAKME"),
        json(201, ""),
    ];
    for r in &bad {
        let e = runners::parse_runner_token(r).unwrap_err();
        let e2 = apps::parse_installation_token(r).unwrap_err();
        let shown = format!("{e} {e:?} {e2} {e2:?}");
        assert!(!shown.contains("LEAKME"), "{shown}");
    }
    let e = runners::parse_jitconfig(&json(
        201,
        r#"{"runner":{"id":"x"},"encoded_jit_config":"LEAKME"}"#,
    ))
    .unwrap_err();
    assert!(!format!("{e}").contains("LEAKME"));
    assert!(matches!(
        runners::parse_delete_runner(&json(422, r#"{"message":"busy"}"#)),
        Err(rest::ApiError::Status { status: 422, .. })
    ));
}

// ---------------------------------------------------------------- token cache

#[test]
fn installation_token_is_fetched_once_for_all_waiting_commands_and_refreshed_at_expiry_minus_5_min()
{
    let mut c = app_client(Some(77));
    c.handle_command(T0, EffectId(1), get_job());
    c.handle_command(T0, EffectId(2), remove_runner());
    let sent = pump(&mut c, T0, |r| Ok(github(r)));
    let lines: Vec<String> = sent.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        lines,
        vec![
            format!("POST {BASE}/app/installations/77/access_tokens"),
            format!("GET {BASE}/repos/octo-org/hello-world/actions/jobs/14541957942"),
            format!(
                "GET {BASE}/repos/octo-org/hello-world/actions/runners?per_page=100&name=anklet-vm-mac1-14541957942-1"
            ),
        ]
    );
    // The token request carries a JWT, the API calls the installation token.
    let jwt = sent[0].header("authorization").unwrap();
    assert!(jwt.starts_with("Bearer eyJ"), "{jwt}");
    assert_eq!(
        sent[1].header("authorization"),
        Some(format!("Bearer {INSTALLATION_TOKEN}").as_str())
    );
    assert_eq!(results(&mut c).len(), 2);

    // The token expires at 2023-11-14T23:13:20Z = T0 + 3600 s; it is replaced 5 minutes before.
    let refresh = at(3600 - 300);
    let just_before = Timestamp(refresh.as_millis() - 1);
    c.handle_command(just_before, EffectId(3), get_job());
    let sent = pump(&mut c, just_before, |r| Ok(github(r)));
    assert_eq!(sent.len(), 1);
    assert!(sent[0].url.contains("/actions/jobs/"));
    c.handle_command(refresh, EffectId(4), get_job());
    let sent = pump(&mut c, refresh, |r| {
        Ok(if r.url.ends_with("/access_tokens") {
            json(
                201,
                r#"{"token":"ghs_second","expires_at":"2023-11-15T00:13:20Z"}"#,
            )
        } else {
            github(r)
        })
    });
    assert_eq!(sent.len(), 2);
    assert!(sent[0].url.ends_with("/app/installations/77/access_tokens"));
    assert!(sent[1].url.contains("/actions/jobs/"));
    assert_eq!(sent[1].header("authorization"), Some("Bearer ghs_second"));
}

#[test]
fn installation_id_is_looked_up_when_missing() {
    for (scope, lookup) in [
        (repo(), "/repos/octo-org/hello-world/installation"),
        (
            ApiScope::Organization("octo-org".into()),
            "/orgs/octo-org/installation",
        ),
    ] {
        let mut c = GithubClient::new(config(scope, app_credentials(Some(0))));
        c.handle_command(T0, EffectId(1), get_job());
        let sent = pump(&mut c, T0, |r| Ok(github(r)));
        let lines: Vec<String> = sent.iter().map(|r| r.to_string()).collect();
        assert_eq!(lines[0], format!("GET {BASE}{lookup}"));
        // installation.json has id 1.
        assert_eq!(
            lines[1],
            format!("POST {BASE}/app/installations/1/access_tokens")
        );
        assert_eq!(lines.len(), 3);
    }
}

#[test]
fn a_failed_token_fetch_fails_every_waiting_command() {
    let mut c = app_client(Some(77));
    for id in 1..=3 {
        c.handle_command(T0, EffectId(id), get_job());
    }
    let sent = pump(&mut c, T0, |_| {
        Ok(json(401, r#"{"message":"Bad credentials"}"#))
    });
    assert_eq!(sent.len(), 1, "401 is not retried");
    let rs = results(&mut c);
    assert_eq!(rs.len(), 3);
    for (_, r) in rs {
        assert_eq!(failure_class(&r), Some(FailureClass::Permanent));
    }
}

#[test]
fn an_app_not_installed_never_makes_a_removal_look_done() {
    let mut c = app_client(None);
    c.handle_command(T0, EffectId(1), remove_runner());
    let sent = pump(&mut c, T0, |_| Ok(json(404, r#"{"message":"Not Found"}"#)));
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .url
            .ends_with("/repos/octo-org/hello-world/installation")
    );
    let rs = results(&mut c);
    assert_eq!(failure_class(&rs[0].1), Some(FailureClass::Permanent));
}

#[test]
fn a_token_fetch_is_retried_on_server_errors() {
    let mut c = app_client(Some(77));
    c.handle_command(T0, EffectId(1), get_job());
    let (rid, _, _) = c.poll_request().unwrap();
    c.handle_response(T0, rid, Ok(json(503, "")));
    assert!(c.poll_request().is_none());
    assert_eq!(c.poll_timeout(), Some(at(1)));
    c.handle_timeout(at(1));
    let sent = pump(&mut c, at(1), |r| Ok(github(r)));
    assert_eq!(sent.len(), 2);
    assert!(sent[0].url.ends_with("/access_tokens"));
    assert!(results(&mut c)[0].1.failure().is_none());
}

// ---------------------------------------------------------------- rate limits

#[test]
fn primary_limit_sends_nothing_until_reset_then_resumes() {
    let mut c = pat_client();
    c.handle_command(T0, EffectId(1), get_job());
    let (rid, _, _) = c.poll_request().unwrap();
    let reset_s = at(300).as_millis() / 1000;
    c.handle_response(
        T0,
        rid,
        Ok(json(403, r#"{"message":"API rate limit exceeded"}"#)
            .with_header("x-ratelimit-remaining", "0")
            .with_header("x-ratelimit-reset", &reset_s.to_string())),
    );
    assert!(c.poll_request().is_none());
    c.handle_command(at(1), EffectId(2), get_job());
    assert!(c.poll_request().is_none(), "a new command waits too");
    assert_eq!(c.poll_timeout(), Some(at(300)));
    c.handle_timeout(Timestamp(at(300).as_millis() - 1));
    assert!(c.poll_request().is_none());
    assert!(results(&mut c).is_empty());
    c.handle_timeout(at(300));
    let sent = pump(&mut c, at(300), |r| Ok(github(r)));
    assert_eq!(sent.len(), 2, "both commands resume");
    let rs = results(&mut c);
    assert_eq!(rs.len(), 2);
    assert!(rs.iter().all(|(_, r)| r.failure().is_none()));
}

#[test]
fn a_spent_budget_pauses_even_after_a_success() {
    let mut c = pat_client();
    c.handle_command(T0, EffectId(1), get_job());
    c.handle_command(T0, EffectId(2), get_job());
    c.handle_command(T0, EffectId(3), get_job());
    let mut seen = 0;
    while let Some((rid, req, _)) = c.poll_request() {
        seen += 1;
        c.handle_response(
            T0,
            rid,
            Ok(github(&req)
                .with_header("x-ratelimit-remaining", "0")
                .with_header(
                    "x-ratelimit-reset",
                    &(at(60).as_millis() / 1000).to_string(),
                )),
        );
    }
    assert_eq!(seen, 1, "after the budget is spent nothing else goes out");
    assert_eq!(c.paused_until(), Some(at(60)));
    c.handle_timeout(at(60));
    assert_eq!(pump(&mut c, at(60), |r| Ok(github(r))).len(), 2);
}

#[test]
fn secondary_limit_without_headers_waits_at_least_a_minute_and_longer_each_time() {
    let mut c = pat_client();
    c.handle_command(T0, EffectId(1), get_job());
    let limited = || {
        json(
            403,
            r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#,
        )
    };
    let (rid, _, _) = c.poll_request().unwrap();
    c.handle_response(T0, rid, Ok(limited()));
    assert_eq!(c.poll_timeout(), Some(at(60)));
    c.handle_timeout(at(59));
    assert!(c.poll_request().is_none());
    c.handle_timeout(at(60));
    let (rid, _, _) = c.poll_request().unwrap();
    c.handle_response(at(60), rid, Ok(limited()));
    assert_eq!(c.poll_timeout(), Some(at(180)), "the second wait is 120 s");
    c.handle_timeout(at(180));
    let (rid, req, _) = c.poll_request().unwrap();
    c.handle_response(at(180), rid, Ok(github(&req)));
    let rs = results(&mut c);
    assert_eq!(
        rs,
        vec![(
            EffectId(1),
            CommandResult::Forge(EffectResult::JobStatus(GithubJobStatus::Completed {
                conclusion: Some("success".into())
            }))
        )]
    );
}

#[test]
fn retry_after_is_honoured() {
    let mut c = pat_client();
    c.handle_command(T0, EffectId(1), get_job());
    let (rid, _, _) = c.poll_request().unwrap();
    c.handle_response(T0, rid, Ok(json(429, "{}").with_header("Retry-After", "7")));
    assert_eq!(c.poll_timeout(), Some(at(7)));
    c.handle_timeout(at(7));
    assert!(c.poll_request().is_some());
}

// ---------------------------------------------------------------- retries

#[test]
fn client_errors_are_never_retried() {
    for (status, class) in [
        (400, FailureClass::Permanent),
        (401, FailureClass::Permanent),
        (403, FailureClass::Permanent),
        (404, FailureClass::NotFound),
        (409, FailureClass::Permanent),
        (410, FailureClass::Permanent),
        (422, FailureClass::Permanent),
    ] {
        let mut c = pat_client();
        c.handle_command(T0, EffectId(1), get_job());
        let sent = pump(&mut c, T0, |_| Ok(json(status, r#"{"message":"nope"}"#)));
        assert_eq!(sent.len(), 1, "{status}");
        let rs = results(&mut c);
        assert_eq!(rs.len(), 1);
        assert_eq!(failure_class(&rs[0].1), Some(class), "{status}");
        assert!(
            c.poll_timeout().is_none(),
            "{status}: nothing left to wait for"
        );
    }
}

#[test]
fn server_errors_are_retried_with_backoff_then_fail() {
    let mut c = pat_client();
    c.handle_command(T0, EffectId(1), get_job());
    let mut now = T0;
    let mut waits = vec![];
    for _ in 0..3 {
        let (rid, _, _) = c.poll_request().expect("a try is due");
        c.handle_response(now, rid, Ok(json(502, "<html>bad gateway</html>")));
        assert!(c.poll_request().is_none(), "no retry before the backoff");
        if let Some(next) = c.poll_timeout().filter(|_| c.pending() > 0) {
            waits.push(next.saturating_since(now).as_secs());
            now = next;
            c.handle_timeout(now);
        }
    }
    assert_eq!(waits, vec![1, 2]);
    let rs = results(&mut c);
    assert_eq!(rs.len(), 1);
    let f = rs[0].1.failure().unwrap();
    assert_eq!(f.class, FailureClass::Transient);
    assert!(f.message.contains("HTTP 502"), "{}", f.message);
    assert!(f.message.contains("gave up after 3 tries"), "{}", f.message);
}

#[test]
fn timeouts_are_retried_then_reported_as_timed_out() {
    let mut c = pat_client();
    c.handle_command(T0, EffectId(1), get_job());
    let mut now = T0;
    for _ in 0..3 {
        if let Some(next) = c.poll_timeout().filter(|t| *t < at(100)) {
            now = next;
            c.handle_timeout(now);
        }
        let (rid, _, _) = c.poll_request().unwrap();
        c.handle_response(now, rid, Err(TransportError::Timeout));
    }
    let rs = results(&mut c);
    assert_eq!(failure_class(&rs[0].1), Some(FailureClass::TimedOut));
}

#[test]
fn a_command_never_answered_times_out_once() {
    let mut c = pat_client();
    c.handle_command(T0, EffectId(1), get_job());
    let (rid, _, _) = c.poll_request().unwrap();
    assert_eq!(c.poll_timeout(), Some(at(600)));
    c.handle_timeout(at(600));
    let rs = results(&mut c);
    assert_eq!(failure_class(&rs[0].1), Some(FailureClass::TimedOut));
    c.handle_response(at(601), rid, Ok(json(200, "{}")));
    assert!(results(&mut c).is_empty(), "a late answer is ignored");
    c.handle_response(at(601), RequestId(999), Ok(json(200, "{}")));
    assert!(results(&mut c).is_empty());
}

// ---------------------------------------------------------------- runner removal

fn runner_list(names: &[(u64, &str, bool)]) -> HttpResponse {
    let runners: Vec<serde_json::Value> = names
        .iter()
        .map(|(id, name, busy)| {
            serde_json::json!({"id": id, "name": name, "os": "macos", "status": "online", "busy": busy, "labels": []})
        })
        .collect();
    json(
        200,
        &serde_json::json!({"total_count": runners.len(), "runners": runners}).to_string(),
    )
}

#[test]
fn remove_runner_finds_it_by_name_then_deletes_it() {
    let mut c = pat_client();
    c.handle_command(T0, EffectId(1), remove_runner());
    let sent = pump(&mut c, T0, |r| {
        Ok(match r.method {
            Method::Get => runner_list(&[
                (5, "anklet-vm-mac1-14541957942-10", false),
                (6, &vm().0, false),
            ]),
            _ => HttpResponse::new(204, ""),
        })
    });
    let lines: Vec<String> = sent.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        lines,
        vec![
            format!(
                "GET {BASE}/repos/octo-org/hello-world/actions/runners?per_page=100&name=anklet-vm-mac1-14541957942-1"
            ),
            format!("DELETE {BASE}/repos/octo-org/hello-world/actions/runners/6"),
        ]
    );
    assert_eq!(
        results(&mut c),
        vec![(EffectId(1), CommandResult::Forge(EffectResult::Done))]
    );
}

#[test]
fn a_runner_not_found_counts_as_removed() {
    let mut c = pat_client();
    c.handle_command(T0, EffectId(1), remove_runner());
    let sent = pump(&mut c, T0, |_| Ok(runner_list(&[])));
    assert_eq!(sent.len(), 1);
    assert_eq!(
        results(&mut c),
        vec![(EffectId(1), CommandResult::Forge(EffectResult::Done))]
    );

    // Gone between the listing and the delete: also removed.
    c.handle_command(T0, EffectId(2), remove_runner());
    pump(&mut c, T0, |r| {
        Ok(match r.method {
            Method::Get => runner_list(&[(6, &vm().0, false)]),
            _ => json(404, r#"{"message":"Not Found"}"#),
        })
    });
    assert_eq!(
        results(&mut c),
        vec![(EffectId(2), CommandResult::Forge(EffectResult::Done))]
    );
}

#[test]
fn a_runner_listing_not_found_is_no_proof_of_removal() {
    let mut c = pat_client();
    c.handle_command(T0, EffectId(1), remove_runner());
    let sent = pump(&mut c, T0, |_| Ok(json(404, r#"{"message":"Not Found"}"#)));
    assert_eq!(sent.len(), 1);
    assert_eq!(
        failure_class(&results(&mut c)[0].1),
        Some(FailureClass::Permanent)
    );
}

#[test]
fn a_busy_runner_is_reported_busy_and_not_retried() {
    let mut c = pat_client();
    c.handle_command(T0, EffectId(1), remove_runner());
    let sent = pump(&mut c, T0, |r| {
        Ok(match r.method {
            Method::Get => runner_list(&[(6, &vm().0, true)]),
            _ => json(
                422,
                r#"{"message":"Bad request - Runner \"anklet-vm-mac1-14541957942-1\" is still running a job\"","documentation_url":"https://docs.github.com"}"#,
            ),
        })
    });
    assert_eq!(sent.len(), 2);
    let rs = results(&mut c);
    let f = rs[0].1.failure().unwrap();
    assert_eq!(f.class, FailureClass::Busy);
    assert!(f.message.contains("HTTP 422"), "{}", f.message);
    assert!(f.message.contains("remove_runner"), "{}", f.message);
}

// ---------------------------------------------------------------- other commands

#[test]
fn runner_config_in_both_modes() {
    let mut c = pat_client();
    c.handle_command(T0, EffectId(1), jit_cmd());
    c.handle_command(
        T0,
        EffectId(2),
        ForgeCmd::CreateRunnerConfig {
            job: job(),
            runner: vm(),
            mode: RunnerRegistration::Token,
            group: None,
        }
        .into(),
    );
    pump(&mut c, T0, |r| Ok(github(r)));
    assert_eq!(
        results(&mut c),
        vec![
            (
                EffectId(1),
                CommandResult::Forge(EffectResult::RunnerConfig(RunnerCredentials::Jit(
                    Secret::new(JIT)
                )))
            ),
            (
                EffectId(2),
                CommandResult::Forge(EffectResult::RunnerConfig(RunnerCredentials::Token(
                    Secret::new(REG_TOKEN)
                )))
            ),
        ]
    );
}

#[test]
fn a_jit_config_without_labels_is_unsupported_so_the_handler_falls_back_to_a_token() {
    let mut c = pat_client();
    c.handle_command(
        T0,
        EffectId(1),
        ForgeCmd::CreateRunnerConfig {
            job: job(),
            runner: vm(),
            mode: RunnerRegistration::Jit,
            group: None,
        }
        .into(),
    );
    assert!(c.poll_request().is_none());
    assert_eq!(
        failure_class(&results(&mut c)[0].1),
        Some(FailureClass::Unsupported)
    );
}

#[test]
fn a_named_runner_group_is_looked_up_once() {
    let org = ApiScope::Organization("octo-org".into());
    let mut c = GithubClient::new(ClientConfig {
        runner_group: Some("macs".into()),
        ..config(org, Credentials::Token(Secret::new(PAT)))
    });
    let answer = |r: &HttpRequest| {
        Ok(if r.url.contains("/runner-groups") {
            json(
                200,
                r#"{"total_count":2,"runner_groups":[{"id":1,"name":"Default"},{"id":9,"name":"Macs"}]}"#,
            )
        } else {
            github(r)
        })
    };
    c.handle_command(T0, EffectId(1), jit_cmd());
    let sent = pump(&mut c, T0, answer);
    assert_eq!(sent.len(), 2);
    assert!(
        sent[0]
            .url
            .ends_with("/orgs/octo-org/actions/runner-groups?per_page=100")
    );
    let body: serde_json::Value = serde_json::from_slice(sent[1].body.as_ref().unwrap()).unwrap();
    assert_eq!(body["runner_group_id"], 9);
    c.handle_command(T0, EffectId(2), jit_cmd());
    assert_eq!(pump(&mut c, T0, answer).len(), 1, "the id is remembered");
    assert_eq!(results(&mut c).len(), 2);

    // An unknown group fails for good.
    let mut c = GithubClient::new(ClientConfig {
        runner_group: Some("nope".into()),
        ..config(
            ApiScope::Organization("o".into()),
            Credentials::Token(Secret::new(PAT)),
        )
    });
    c.handle_command(T0, EffectId(1), jit_cmd());
    pump(&mut c, T0, answer);
    assert_eq!(
        failure_class(&results(&mut c)[0].1),
        Some(FailureClass::Permanent)
    );
}

#[test]
fn cancel_list_and_job_reads() {
    let mut c = pat_client();
    c.handle_command(
        T0,
        EffectId(1),
        ForgeCmd::CancelWorkflowRun { job: job() }.into(),
    );
    c.handle_command(T0, EffectId(2), ForgeCmd::ListRunners.into());
    c.handle_command(T0, EffectId(3), get_job());
    let mut pages = 0;
    let sent = pump(&mut c, T0, |r| {
        if r.url.contains("/actions/runners?") {
            pages += 1;
            let resp = runner_list(&[(pages, &format!("r{pages}"), false)]);
            return Ok(if pages < 3 {
                resp.with_header(
                    "Link",
                    &format!(
                        "<https://elsewhere.example/x?per_page=100&page={}>; rel=\"next\"",
                        pages + 1
                    ),
                )
            } else {
                resp
            });
        }
        Ok(github(r))
    });
    assert!(
        sent.iter()
            .any(|r| r.url.ends_with("/actions/runs/29679449/cancel"))
    );
    assert!(sent.iter().any(|r| r.url
        == format!("{BASE}/repos/octo-org/hello-world/actions/runners?per_page=100&page=3")));
    let rs = results(&mut c);
    assert_eq!(rs.len(), 3);
    for (id, r) in rs {
        match id.0 {
            1 => assert_eq!(r, CommandResult::Forge(EffectResult::Done)),
            2 => match r {
                CommandResult::Forge(EffectResult::Runners(list)) => {
                    let names: Vec<&str> = list.iter().map(|r| r.name.as_str()).collect();
                    assert_eq!(names, vec!["r1", "r2", "r3"]);
                }
                other => panic!("{other:?}"),
            },
            _ => assert!(matches!(
                r,
                CommandResult::Forge(EffectResult::JobStatus(_))
            )),
        }
    }
    // A run that already finished needs no cancel.
    c.handle_command(
        T0,
        EffectId(4),
        ForgeCmd::CancelWorkflowRun { job: job() }.into(),
    );
    pump(&mut c, T0, |_| {
        Ok(json(
            409,
            r#"{"message":"Cannot cancel a workflow run that is completed."}"#,
        ))
    });
    assert_eq!(
        results(&mut c),
        vec![(EffectId(4), CommandResult::Forge(EffectResult::Done))]
    );
}

fn delivery(id: u64, guid: &str, at_s: u64, status: u16) -> serde_json::Value {
    let t = T0.as_millis() / 1000 + at_s;
    let (d, s) = (t / 86_400, t % 86_400);
    // 2023-11-14 is day 19675; the test keeps within it.
    assert_eq!(d, 19_675);
    serde_json::json!({
        "id": id, "guid": guid,
        "delivered_at": format!("2023-11-14T{:02}:{:02}:{:02}Z", s / 3600, s % 3600 / 60, s % 60),
        "redelivery": false, "duration": 0.1, "status": "x", "status_code": status,
        "event": "workflow_job", "action": "queued", "installation_id": null, "repository_id": 1
    })
}

#[test]
fn deliveries_are_listed_by_cursor_until_older_than_since() {
    let mut c = pat_client();
    c.handle_command(
        at(100),
        EffectId(1),
        Command::ListDeliveries {
            hook_id: 42,
            since: at(10),
            only_undelivered: true,
        },
    );
    let sent = pump(&mut c, at(100), |r| {
        let (items, next) = if r.url.contains("cursor=") {
            (
                vec![
                    delivery(3, "b", 20, 500),
                    delivery(2, "c", 5, 500),
                    delivery(1, "d", 1, 500),
                ],
                Some("v1_3"),
            )
        } else {
            (
                vec![delivery(5, "a", 40, 200), delivery(4, "b", 30, 0)],
                Some("v1_2"),
            )
        };
        let mut resp = json(200, &serde_json::Value::Array(items).to_string());
        if let Some(n) = next {
            resp = resp.with_header(
                "link",
                &format!("<{BASE}/repos/octo-org/hello-world/hooks/42/deliveries?per_page=100&cursor={n}>; rel=\"next\""),
            );
        }
        Ok(resp)
    });
    let urls: Vec<&str> = sent.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(
        urls,
        vec![
            format!("{BASE}/repos/octo-org/hello-world/hooks/42/deliveries?per_page=100").as_str(),
            format!(
                "{BASE}/repos/octo-org/hello-world/hooks/42/deliveries?per_page=100&cursor=v1_2"
            )
            .as_str(),
        ],
        "the second page reaches past `since`, so there is no third request"
    );
    match results(&mut c).remove(0).1 {
        CommandResult::Deliveries(list) => {
            let ids: Vec<u64> = list.iter().map(|d| d.id).collect();
            assert_eq!(
                ids,
                vec![4],
                "b's newest failed attempt; c is older than since; a succeeded"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn get_delivery_and_redeliver() {
    let mut c = GithubClient::new(config(
        ApiScope::Organization("octo-org".into()),
        Credentials::Token(Secret::new(PAT)),
    ));
    c.handle_command(
        T0,
        EffectId(1),
        Command::GetDelivery {
            hook_id: 42,
            delivery_id: 12_345_678,
        },
    );
    c.handle_command(
        T0,
        EffectId(2),
        Command::Redeliver {
            hook_id: 42,
            delivery_id: 12_345_678,
        },
    );
    let sent = pump(&mut c, T0, |r| Ok(github(r)));
    assert_eq!(
        sent[0].url,
        format!("{BASE}/orgs/octo-org/hooks/42/deliveries/12345678")
    );
    assert_eq!(
        sent[1].url,
        format!("{BASE}/orgs/octo-org/hooks/42/deliveries/12345678/attempts")
    );
    let rs = results(&mut c);
    assert!(matches!(&rs[0].1, CommandResult::Delivery(d) if d.payload.contains("\"opened\"")));
    assert_eq!(rs[1].1, CommandResult::Redelivered);

    let mut c = GithubClient::new(config(
        ApiScope::Enterprise("e".into()),
        Credentials::Token(Secret::new(PAT)),
    ));
    c.handle_command(
        T0,
        EffectId(1),
        Command::Redeliver {
            hook_id: 1,
            delivery_id: 1,
        },
    );
    assert!(c.poll_request().is_none());
    assert!(
        matches!(results(&mut c)[0].1, CommandResult::Failed(ref f) if f.class == FailureClass::Unsupported)
    );
}

// ---------------------------------------------------------------- secrets

#[test]
fn no_formatting_shows_a_secret() {
    let key_lines: Vec<&str> = KEY.lines().skip(1).take(20).collect();
    let secrets = [PAT, INSTALLATION_TOKEN, JIT, REG_TOKEN];
    let mut shown = String::new();
    // GitHub echoing back a secret the client holds (in an error message, or a transport
    // library quoting it) must not leak it either.
    for (mut c, held) in [
        (pat_client(), PAT),
        (app_client(Some(77)), INSTALLATION_TOKEN),
    ] {
        c.handle_command(T0, EffectId(1), jit_cmd());
        c.handle_command(
            T0,
            EffectId(2),
            ForgeCmd::CreateRunnerConfig {
                job: job(),
                runner: vm(),
                mode: RunnerRegistration::Token,
                group: None,
            }
            .into(),
        );
        c.handle_command(T0, EffectId(3), get_job());
        c.handle_command(T0, EffectId(4), remove_runner());
        let sent = pump(&mut c, T0, |r| {
            if r.url.contains("/actions/jobs/") {
                return Ok(json(400, &format!(r#"{{"message":"bad {held}"}}"#)));
            }
            if r.method == Method::Get {
                return Err(TransportError::Io(format!("reset while sending {held}")));
            }
            Ok(github(r))
        });
        for r in &sent {
            shown.push_str(&format!("{r:?} {r}\n"));
        }
        shown.push_str(&format!("{c:?}\n"));
        for t in [at(1), at(3), at(7), at(15), at(700)] {
            c.handle_timeout(t);
            pump(&mut c, t, |_| {
                Err(TransportError::Connect(format!("refused {held}")))
            });
        }
        for (id, r) in results(&mut c) {
            shown.push_str(&format!("{id} {r:?}\n"));
            if let Some(f) = r.failure() {
                shown.push_str(&format!("{} {}\n", f.message, f.message));
            }
        }
    }
    let e = AppKey::from_pem(&Secret::new(&KEY[..KEY.len() / 2])).unwrap_err();
    shown.push_str(&format!("{e} {e:?}\n"));
    for s in secrets {
        assert!(!shown.contains(s), "{s} leaked in:\n{shown}");
    }
    for line in key_lines {
        assert!(!shown.contains(line), "key text leaked");
    }
    assert!(shown.contains("[redacted]"));
}

// ---------------------------------------------------------------- random answers

#[derive(Clone, Debug)]
enum Answer {
    Good,
    Status(u16),
    Primary(u64),
    RetryAfter(u64),
    Garbage,
    Transport(u8),
}

fn answer_strategy() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => Just(Answer::Good),
        3 => prop::sample::select(vec![200, 201, 202, 204, 304, 400, 401, 403, 404, 409, 410, 422, 429, 500, 502, 503])
            .prop_map(Answer::Status),
        1 => (0u64..2000).prop_map(Answer::Primary),
        1 => (0u64..200).prop_map(Answer::RetryAfter),
        1 => Just(Answer::Garbage),
        1 => (0u8..3).prop_map(Answer::Transport),
    ]
}

#[derive(Clone, Debug)]
enum Step {
    Command(u8),
    Answer(usize, Answer),
    Wait(u64),
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0u8..10).prop_map(Step::Command),
        6 => (0usize..8, answer_strategy()).prop_map(|(i, a)| Step::Answer(i, a)),
        2 => (0u64..400_000).prop_map(Step::Wait),
    ]
}

fn command(n: u8) -> Command {
    match n {
        0 => jit_cmd(),
        1 => ForgeCmd::CreateRunnerConfig {
            job: job(),
            runner: vm(),
            mode: RunnerRegistration::Token,
            group: Some("grp".into()),
        }
        .into(),
        2 => get_job(),
        3 => remove_runner(),
        4 => ForgeCmd::CancelWorkflowRun { job: job() }.into(),
        5 => ForgeCmd::ListRunners.into(),
        6 | 9 => Command::ListDeliveries {
            hook_id: 1,
            since: T0,
            only_undelivered: n == 6,
        },
        7 => Command::GetDelivery {
            hook_id: 1,
            delivery_id: 2,
        },
        _ => Command::Redeliver {
            hook_id: 1,
            delivery_id: 2,
        },
    }
}

fn random_answer(
    req: &HttpRequest,
    a: &Answer,
    now: Timestamp,
) -> Result<HttpResponse, TransportError> {
    Ok(match a {
        Answer::Good => github(req).with_header(
            "link",
            &format!("<{BASE}/x?page=2&cursor=abc>; rel=\"next\""),
        ),
        Answer::Status(s) => json(*s, r#"{"message":"x"}"#),
        Answer::Primary(secs) => json(403, "{}")
            .with_header("x-ratelimit-remaining", "0")
            .with_header(
                "x-ratelimit-reset",
                &((now.as_millis() / 1000) + secs).to_string(),
            ),
        Answer::RetryAfter(secs) => json(429, "{}").with_header("retry-after", &secs.to_string()),
        Answer::Garbage => HttpResponse::new(200, vec![0xff, b'{', b'"']),
        Answer::Transport(0) => return Err(TransportError::Timeout),
        Answer::Transport(1) => return Err(TransportError::Connect("refused".into())),
        Answer::Transport(_) => return Err(TransportError::Io("reset".into())),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_answers_never_panic_and_every_command_gets_one_result(
        app in any::<bool>(),
        steps in prop::collection::vec(step_strategy(), 1..80),
    ) {
        let mut c = if app { app_client(None) } else { pat_client() };
        let mut now = T0;
        let mut next_id = 0u64;
        let mut out: Vec<(RequestId, HttpRequest)> = vec![];
        let mut answered: std::collections::BTreeMap<EffectId, u32> = Default::default();
        let mut issued = vec![];
        for step in steps {
            match step {
                Step::Command(n) => {
                    next_id += 1;
                    issued.push(EffectId(next_id));
                    c.handle_command(now, EffectId(next_id), command(n));
                }
                Step::Answer(i, a) => {
                    if !out.is_empty() {
                        let (rid, req) = out.remove(i % out.len());
                        let r = random_answer(&req, &a, now);
                        c.handle_response(now, rid, r);
                    }
                }
                Step::Wait(ms) => {
                    now = now + Duration::from_millis(ms);
                    c.handle_timeout(now);
                }
            }
            while let Some((rid, req, _)) = c.poll_request() {
                prop_assert!(c.paused_until().is_none());
                out.push((rid, req));
            }
            while let Some((id, _)) = c.poll_result() {
                *answered.entry(id).or_default() += 1;
            }
            if let Some(t) = c.poll_timeout() {
                prop_assert!(t > now, "poll_timeout {t} not after now {now}");
            }
        }
        // Let every deadline pass: whatever is left ends as timed out.
        now = now + Duration::from_secs(601);
        c.handle_timeout(now);
        while let Some((id, _)) = c.poll_result() {
            *answered.entry(id).or_default() += 1;
        }
        prop_assert_eq!(c.pending(), 0);
        for id in issued {
            prop_assert_eq!(answered.get(&id).copied(), Some(1), "{} answered {:?} times", id, answered.get(&id));
        }
        prop_assert_eq!(answered.len() as u64, next_id);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic_on_any_body(
        status in 100u16..600,
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            "[ -~]{0,200}".prop_map(String::into_bytes),
            Just(fixture("runner-paginated.json")),
            Just(fixture("hook-delivery.json")),
        ],
        link in "[ -~]{0,120}",
        date in "[0-9TZ:.+-]{0,32}",
    ) {
        let r = HttpResponse::new(status, body).with_header("link", &link);
        let _ = runners::parse_runner_token(&r);
        let _ = runners::parse_jitconfig(&r);
        let _ = runners::parse_runner_page(&r);
        let _ = runners::parse_runner(&r);
        let _ = runners::parse_runner_groups(&r);
        let _ = runners::parse_delete_runner(&r);
        let _ = jobs::parse_job(&r);
        let _ = jobs::parse_cancel(&r);
        let _ = apps::parse_installation_id(&r);
        let _ = apps::parse_installation_token(&r);
        let _ = deliveries::parse_delivery_page(&r);
        let _ = deliveries::parse_delivery(&r);
        let _ = deliveries::parse_redeliver(&r);
        let _ = rest::error_message(&r);
        let _ = anklet_core::github::link::next_page(Some(&link));
        let _ = anklet_core::github::rfc3339::parse(&date);
        let _ = anklet_core::github::ratelimit::classify(
            T0,
            &r,
            anklet_core::github::ratelimit::Attempts { tries: 1, secondary_hits: 3 },
            &anklet_core::github::ratelimit::Backoff::default(),
        );
    }
}
