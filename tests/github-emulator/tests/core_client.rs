//! anklet-core's own GitHub requests (its sans-IO builders) sent to the emulator and its own
//! parsers reading the answers: the daemons and the emulator agree on every call they share.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anklet_core::github::auth::{AppCredentials, AppKey, app_jwt};
use anklet_core::github::http::{HttpRequest, HttpResponse};
use anklet_core::github::rest::{self, ApiScope, apps, deliveries, jobs, runners};
use anklet_core::handler::GithubJobStatus;
use anklet_core::secret::Secret;
use anklet_core::time::Timestamp;
use common::*;
use github_emulator::{Fault, JobSpec};

const LABELS: [&str; 2] = ["self-hosted", "anka-template:macos-15"];

/// Sends a core request as a runtime would and hands back core's response type.
fn send(req: &HttpRequest) -> HttpResponse {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut b = ureq::http::Request::builder()
        .method(req.method.as_str())
        .uri(&req.url);
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let mut resp = agent
        .run(b.body(req.body.clone().unwrap_or_default()).unwrap())
        .unwrap();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = resp.body_mut().read_to_vec().unwrap_or_default();
    HttpResponse {
        status: resp.status().as_u16(),
        headers,
        body,
    }
}

fn now() -> Timestamp {
    Timestamp(u64::try_from(now_s()).unwrap() * 1000)
}

#[test]
fn app_auth_runner_and_job_calls_round_trip_through_cores_parsers() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let base = emu.base_url();
    let repo = ApiScope::Repository {
        owner: "acme".into(),
        repo: "app".into(),
    };
    let org = ApiScope::Organization("acme".into());

    // App JWT → installation → installation token.
    let key = AppKey::from_pem(&Secret::new(PRIVATE_KEY)).unwrap();
    let app = AppCredentials::new(APP_ID, None, key);
    let jwt = app_jwt(&app, now()).unwrap();
    let find = apps::find_installation(base, &repo)
        .unwrap()
        .with_bearer(jwt.expose());
    let inst = apps::parse_installation_id(&send(&find)).unwrap();
    let tok = send(&apps::installation_token(base, inst).with_bearer(jwt.expose()));
    let token = apps::parse_installation_token(&tok).unwrap();
    assert!(token.expires_at.0 > now().0);
    let t = token.token.expose();

    // Runner tokens, JIT, list by name, get, groups.
    let reg = send(&runners::registration_token(base, &repo).with_bearer(t));
    runners::parse_runner_token(&reg).unwrap();
    let groups = send(&runners::list_runner_groups(base, &org, None).with_bearer(t));
    let (groups, next) = runners::parse_runner_groups(&groups).unwrap();
    assert_eq!(
        (groups[0].id, groups[0].name.as_str(), next),
        (1, "Default", None)
    );
    let job = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    let labels: Vec<String> = LABELS.iter().map(|l| (*l).to_owned()).collect();
    let name = format!("anklet-vm-h1-{}-1", job.id);
    let jit_req = runners::JitRequest::new(name.clone(), groups[0].id, &labels);
    let jit = runners::parse_jitconfig(&send(
        &runners::generate_jitconfig(base, &repo, &jit_req).with_bearer(t),
    ))
    .unwrap();
    let files = github_emulator::decode_jit_config(jit.encoded_jit_config.expose()).unwrap();
    assert_eq!(files.runner_id(), Some(jit.runner_id));
    let page = runners::parse_runner_page(&send(
        &runners::list_runners(base, &repo, Some(&name), None).with_bearer(t),
    ))
    .unwrap();
    assert_eq!(page.runners.len(), 1);
    assert_eq!(page.runners[0].id, jit.runner_id);
    assert!(!page.runners[0].online && !page.runners[0].busy);

    // The runner takes the job; core reads the job API as in progress on that runner.
    let (_, got) = session_and_job(&emu, jit.runner_id, files.token().unwrap());
    assert_eq!(got, job.id);
    let status = jobs::parse_job(&send(
        &jobs::get_job(base, "acme", "app", job.id).with_bearer(t),
    ))
    .unwrap();
    assert_eq!(
        status,
        GithubJobStatus::InProgress {
            runner: Some(name.clone())
        }
    );
    let info = runners::parse_runner(&send(
        &runners::get_runner(base, &repo, jit.runner_id).with_bearer(t),
    ))
    .unwrap();
    assert!(info.online && info.busy);
    let busy = send(&runners::delete_runner(base, &repo, jit.runner_id).with_bearer(t));
    assert_eq!(busy.status, 422);
    assert!(runners::parse_delete_runner(&busy).is_err());
    assert!(
        rest::error_message(&busy)
            .unwrap()
            .contains("still running a job")
    );

    // Cancel: 202, then 409 (already done) which core takes as success too.
    let cancel = jobs::cancel_workflow_run(base, "acme", "app", job.run_id).with_bearer(t);
    jobs::parse_cancel(&send(&cancel)).unwrap();
    jobs::parse_cancel(&send(&cancel)).unwrap();
    let status = jobs::parse_job(&send(
        &jobs::get_job(base, "acme", "app", job.id).with_bearer(t),
    ))
    .unwrap();
    assert_eq!(
        status,
        GithubJobStatus::Completed {
            conclusion: Some("cancelled".into())
        }
    );

    // An idle runner is deleted.
    let idle = runners::JitRequest::new("idle", 1, &labels);
    let idle = runners::parse_jitconfig(&send(
        &runners::generate_jitconfig(base, &org, &idle).with_bearer(t),
    ))
    .unwrap();
    runners::parse_delete_runner(&send(
        &runners::delete_runner(base, &org, idle.runner_id).with_bearer(t),
    ))
    .unwrap();
}

#[test]
fn cores_delivery_recovery_finds_and_redelivers_a_lost_delivery() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let base = emu.base_url();
    let scope = ApiScope::Organization("acme".into());
    emu.set_fault(Fault::LostDeliveries { count: 1 }).unwrap();
    let lost = emu
        .create_job(JobSpec::new("acme", "app", &LABELS))
        .unwrap();
    for _ in 0..3 {
        emu.create_job(JobSpec::new("acme", "app", &LABELS))
            .unwrap();
    }
    assert!(emu.wait_idle(WAIT));
    let hook = emu.deliveries()[0].hook_id;

    // Walk every page (2 per page through the Link cursor) as core's recovery does.
    let mut all = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let mut req = deliveries::list_deliveries(base, &scope, hook, cursor.as_ref()).unwrap();
        req.url = req.url.replace("per_page=100", "per_page=2");
        let page = deliveries::parse_delivery_page(&send(&req.with_bearer(PAT))).unwrap();
        all.extend(page.deliveries);
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(all.len(), 5, "ping + 4 queued");
    let missing = deliveries::undelivered(&all);
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].status_code, 502);

    let detail = send(
        &deliveries::get_delivery(base, &scope, hook, missing[0].id)
            .unwrap()
            .with_bearer(PAT),
    );
    let detail = deliveries::parse_delivery(&detail).unwrap();
    assert!(detail.payload.contains(&lost.id.to_string()));
    let redo = deliveries::redeliver(base, &scope, hook, missing[0].id)
        .unwrap()
        .with_bearer(PAT);
    deliveries::parse_redeliver(&send(&redo)).unwrap();
    rx.wait_job_event(lost.id, "queued");
    assert!(emu.wait_idle(WAIT));

    let page = send(
        &deliveries::list_deliveries(base, &scope, hook, None)
            .unwrap()
            .with_bearer(PAT),
    );
    let now_all = deliveries::parse_delivery_page(&page).unwrap().deliveries;
    assert!(deliveries::undelivered(&now_all).is_empty());
}

#[test]
fn requests_without_a_user_agent_are_refused_like_github() {
    let rx = Receiver::start();
    let emu = start(&rx);
    let mut req =
        runners::registration_token(emu.base_url(), &ApiScope::Organization("acme".into()))
            .with_bearer(PAT);
    req.headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("user-agent"));
    // ureq adds its own User-Agent unless one is set; an empty one stands for none.
    req.headers.push(("User-Agent".into(), String::new()));
    assert_eq!(send(&req).status, 403);
}
