//! The GitHub side of issue 6 as behaviour both daemons must show, with real receiver and
//! handler processes on real Redis, the GitHub emulator and fake Macs ([`crate::fleet`]):
//! App installation tokens refreshed before they expire, rate-limit pauses that send nothing,
//! lost deliveries recovered through the deliveries API, reconciliation of jobs GitHub
//! finished, stolen runners, and no secret in any log line. Each runtime's tests call these
//! with its own binary.
//!
//! Every test ends with [`assert_no_secrets`] over every daemon's debug log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use crate::fleet::{
    APP_PRIVATE_KEY, Fleet, FleetOptions, GithubSetup, OWNER, RECEIVER_TOKEN, REPO, SECRET, TOKEN,
};
use github_emulator::{Call, Fault, Principal, SecretKind, Span};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Slack at the edges of a pause window: a request already on the wire when the limited
/// answer came may be answered a moment after it.
const SLACK_MS: u64 = 25;

/// The runner routes of every scope (generate-jitconfig, list, get, delete, tokens).
const RUNNER_ROUTES: &str = "/repos/*/*/actions/runners/**";

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn is_access_token_request(c: &Call) -> bool {
    c.method == "POST"
        && c.path.starts_with("/app/installations/")
        && c.path.ends_with("/access_tokens")
}

/// Installation tokens refresh before they expire: every daemon authenticates as a GitHub App
/// whose installation tokens live 303 s, so the client (which replaces a token 5 minutes before
/// its `expires_at`, and refuses one that expires sooner) fetches a new one about every 3 s.
/// Jobs created across many refreshes all complete, new tokens keep being asked for, each one
/// before the one it replaces expires, and no API call is ever answered 401.
pub fn installation_token_refresh(bin: &Path) {
    let ttl = Duration::from_secs(303);
    let fleet = Fleet::start_github(
        bin,
        FleetOptions {
            hosts: 1,
            ..FleetOptions::default()
        },
        &GithubSetup {
            app_token_ttl: Some(ttl),
            ..GithubSetup::default()
        },
    );
    let first = fleet.create_jobs(2, 1000);
    fleet.wait_completed(&first, Duration::from_secs(60));
    // Past the refresh point of every token fetched so far.
    std::thread::sleep(Duration::from_secs(4));
    let second_at = now_ms();
    let second = fleet.create_jobs(2, 1000);
    fleet.wait_completed(&second, Duration::from_secs(60));
    let all: Vec<u64> = first.iter().chain(&second).copied().collect();
    fleet.assert_completed_once(&all);

    let calls = fleet.emulator.calls();
    let unauthorized: Vec<&Call> = calls.iter().filter(|c| c.status == 401).collect();
    assert!(unauthorized.is_empty(), "401 answers: {unauthorized:#?}");
    let fetches: Vec<&Call> = calls
        .iter()
        .filter(|c| is_access_token_request(c))
        .collect();
    assert!(
        fetches.iter().all(|c| c.status == 201),
        "token requests: {fetches:#?}"
    );
    let mut tokens: Vec<_> = fleet
        .emulator
        .issued_secrets()
        .into_iter()
        .filter(|s| s.kind == SecretKind::InstallationToken)
        .collect();
    tokens.sort_by_key(|t| t.issued_at_ms);
    // Two daemons (receiver and host) fetch at start; without refreshes that would be all.
    let timeline: Vec<String> = calls
        .iter()
        .filter(|c| c.principal.is_some() || is_access_token_request(c))
        .map(|c| {
            format!(
                "{} {} {} {} {:?}",
                c.at_ms, c.method, c.path, c.status, c.principal
            )
        })
        .collect();
    assert!(
        tokens.len() >= 4,
        "{} installation tokens issued ({:?}): the daemons did not refresh theirs; calls:\n{}",
        tokens.len(),
        tokens,
        timeline.join("\n")
    );
    assert!(
        tokens.iter().any(|t| t.issued_at_ms >= second_at),
        "tokens were still refreshed while the second jobs ran"
    );
    for pair in tokens.windows(2) {
        let (old, new) = (&pair[0], &pair[1]);
        assert!(
            new.issued_at_ms < old.expires_at_ms.unwrap(),
            "a new token was asked for before the old one expired: {old:?} then {new:?}"
        );
    }
    let as_installation = calls
        .iter()
        .filter(|c| matches!(c.principal, Some(Principal::Installation { .. })))
        .count();
    assert!(
        as_installation > 0,
        "API calls were made as the installation"
    );
    assert_no_secrets(&fleet);
}

/// The host's calls (its PAT), including the faulted answers (a fault answers before the
/// credentials are read, so those calls carry no principal; only host routes are faulted).
fn host_calls(calls: &[Call]) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| {
            c.principal == Some(Principal::Pat { index: 0 })
                || (c.principal.is_none() && c.fault.is_some())
        })
        .collect()
}

/// Calls of the host answered strictly inside `(from, to)`.
fn calls_within<'a>(calls: &[&'a Call], from: u64, to: u64) -> Vec<&'a Call> {
    calls
        .iter()
        .filter(|c| c.at_ms > from && c.at_ms < to)
        .copied()
        .collect()
}

/// Rate limits pause every request of the limited credential, then work resumes: a primary
/// limit (403, `x-ratelimit-remaining: 0`, reset ~5 s ahead) and then a secondary one (429,
/// `retry-after: 3`) on the runner routes while jobs are queued. From the first limited answer
/// to the reset (or the end of `retry-after`) the emulator's call log has no request of the
/// host's credential (the receiver has a token of its own), and every job completes afterwards.
pub fn rate_limit_pause_and_resume(bin: &Path) {
    let fleet = Fleet::start_github(
        bin,
        FleetOptions {
            hosts: 1,
            ..FleetOptions::default()
        },
        &GithubSetup {
            receiver_pat: true,
            ..GithubSetup::default()
        },
    );
    // Primary: the reset the emulator announces is at least `armed + span - 1 s` (whole
    // seconds, rounded down, plus one).
    let span_ms = 5000;
    let armed = now_ms();
    fleet
        .emulator
        .set_fault(Fault::PrimaryRateLimit {
            route: RUNNER_ROUTES.into(),
            span: Span::ForMs(span_ms),
        })
        .unwrap();
    let first = fleet.create_jobs(2, 300);
    fleet.wait_completed(&first, Duration::from_secs(60));
    let calls = fleet.emulator.calls();
    let host = host_calls(&calls);
    let limited = host
        .iter()
        .find(|c| c.fault.as_deref() == Some("primary_rate_limit"))
        .expect("the host met the primary limit");
    let reset_at = armed + span_ms - 1000;
    assert!(
        reset_at > limited.at_ms + 1000,
        "the pause window is long enough to mean something ({} ms)",
        reset_at - limited.at_ms
    );
    let during = calls_within(&host, limited.at_ms + SLACK_MS, reset_at - SLACK_MS);
    assert!(
        during.is_empty(),
        "requests sent while the primary limit held (first limited answer at {}, reset at \
         {reset_at}): {during:#?}",
        limited.at_ms
    );
    assert!(
        host.iter()
            .any(|c| c.at_ms >= reset_at && (200..300).contains(&c.status)),
        "the host resumed after the reset"
    );

    // Secondary, with retry-after.
    fleet
        .emulator
        .set_fault(Fault::SecondaryRateLimit {
            route: RUNNER_ROUTES.into(),
            status: 429,
            retry_after_s: 3,
            span: Span::Calls(1),
        })
        .unwrap();
    let second = fleet.create_jobs(1, 300);
    fleet.wait_completed(&second, Duration::from_secs(60));
    let calls = fleet.emulator.calls();
    let host = host_calls(&calls);
    let limited = host
        .iter()
        .find(|c| {
            c.fault
                .as_deref()
                .is_some_and(|f| f.starts_with("secondary_rate_limit"))
        })
        .expect("the host met the secondary limit");
    let until = limited.at_ms + 3000;
    let during = calls_within(&host, limited.at_ms + SLACK_MS, until - SLACK_MS);
    assert!(
        during.is_empty(),
        "requests sent during retry-after (limited at {}): {during:#?}",
        limited.at_ms
    );
    let all: Vec<u64> = first.iter().chain(&second).copied().collect();
    fleet.assert_completed_once(&all);
    assert_no_secrets(&fleet);
}

/// Lost deliveries come back through the deliveries API: the `queued` webhooks of three jobs
/// are never sent (the emulator records them as failed, as GitHub does), so the receiver never
/// sees them; recovery (`hook_id`, every 2 s) lists the failed deliveries, asks for each again,
/// and every job completes.
pub fn lost_deliveries_are_redelivered(bin: &Path) {
    let fleet = Fleet::start(
        bin,
        FleetOptions {
            hosts: 2,
            ..FleetOptions::default()
        },
    );
    let hook = fleet.hook_id();
    fleet
        .emulator
        .set_fault(Fault::LostDeliveries { count: 3 })
        .unwrap();
    let ids = fleet.create_jobs(3, 300);
    fleet.wait_completed(&ids, Duration::from_secs(60));
    fleet.assert_completed_once(&ids);

    let deliveries = fleet.emulator.deliveries();
    let job_of = |d: &github_emulator::Delivery| d.payload["workflow_job"]["id"].as_u64();
    for id in &ids {
        let queued: Vec<_> = deliveries
            .iter()
            .filter(|d| job_of(d) == Some(*id) && d.action.as_deref() == Some("queued"))
            .collect();
        assert!(
            queued.iter().any(|d| !d.redelivery && !d.succeeded()),
            "job {id}'s first queued delivery was lost: {queued:#?}"
        );
        assert!(
            queued.iter().any(|d| d.redelivery && d.succeeded()),
            "job {id}'s queued delivery was redelivered: {queued:#?}"
        );
    }
    let asked = fleet
        .emulator
        .calls()
        .into_iter()
        .filter(|c| {
            c.method == "POST"
                && c.path.contains(&format!("/hooks/{hook}/deliveries/"))
                && c.path.ends_with("/attempts")
                && c.status == 202
        })
        .count();
    assert!(
        asked >= 3,
        "recovery asked for redelivery through the API ({asked} times)"
    );
    fleet.wait_clean(Duration::from_secs(30));
    assert_no_secrets(&fleet);
}

/// Reconciliation removes jobs GitHub says are done: with no handler running, three jobs are
/// queued in the store; their runs are cancelled in GitHub while the `completed` webhooks are
/// lost (and redelivery is off), so only recovery's reconciliation (`reconcile_after_seconds:
/// 2`) can learn it, through the jobs API, and take them out of the queue.
pub fn reconciliation_removes_finished_jobs(bin: &Path) {
    let fleet = Fleet::start_github(
        bin,
        FleetOptions {
            hosts: 0,
            ..FleetOptions::default()
        },
        &GithubSetup {
            receiver_config: "skip_redeliver: true\nreconcile_after_seconds: 2".into(),
            ..GithubSetup::default()
        },
    );
    let ids = fleet.create_jobs(3, 300);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let queued: BTreeSet<u64> = fleet.queued_in_store().into_iter().collect();
        if ids.iter().all(|id| queued.contains(id)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the jobs were not queued in the store ({queued:?}):\n{}",
            fleet.receiver.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let failed_before = fleet.emulator.counts().failed_deliveries;
    fleet
        .emulator
        .set_fault(Fault::LostDeliveries { count: 3 })
        .unwrap();
    let cancelled_at = now_ms();
    for id in &ids {
        let run = fleet.emulator.job(*id).unwrap().run_id;
        fleet.emulator.cancel_run(OWNER, REPO, run).unwrap();
    }
    for id in &ids {
        let job = fleet.emulator.job(*id).unwrap();
        assert_eq!(job.conclusion.as_deref(), Some("cancelled"), "{job:?}");
    }
    fleet.emulator.wait_idle(Duration::from_secs(5));
    assert_eq!(
        fleet.emulator.counts().failed_deliveries,
        failed_before + 3,
        "the completed webhooks were lost"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let queued: BTreeSet<u64> = fleet.queued_in_store().into_iter().collect();
        let left: Vec<u64> = ids
            .iter()
            .filter(|id| queued.contains(id))
            .copied()
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "recovery did not remove {left:?} from the queue:\n{}",
            fleet.receiver.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for id in &ids {
        assert!(
            fleet.record_in_store(*id).is_none(),
            "job {id} left the store"
        );
    }
    let calls = fleet.emulator.calls();
    for id in &ids {
        let path = format!("/repos/{OWNER}/{REPO}/actions/jobs/{id}");
        assert!(
            calls
                .iter()
                .any(|c| c.path == path && c.status == 200 && c.at_ms >= cancelled_at),
            "recovery read job {id} from the jobs API after the cancel"
        );
    }
    assert_no_secrets(&fleet);
}

/// The job id a runner (or VM) name mentions, among `ids`.
fn job_named_in(name: &str, ids: &[u64]) -> Option<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse::<u64>().ok())
        .find(|n| ids.contains(n))
}

/// A stolen runner leaves its job queued until some runner starts it. One host with one VM
/// slot claims job A while job B waits in the queue; the runner made for A is given B (GitHub
/// routes by labels only). A stays queued in GitHub while the stolen runner serves B; the host
/// learns of it (the news of B, which puts A back in the queue as `runner_taken_by_other_job`,
/// or GitHub's jobs API once A's registration times out) and A is started later, by another
/// runner, after B ended; every job completes exactly once and nothing is left.
pub fn stolen_runner_requeues_the_job(bin: &Path) {
    let fleet = Fleet::start_github(
        bin,
        FleetOptions {
            hosts: 1,
            ..FleetOptions::default()
        },
        &GithubSetup {
            host_config: "max_vms: 1".into(),
            ..GithubSetup::default()
        },
    );
    fleet
        .emulator
        .set_fault(Fault::JobStealing {
            count: 1,
            swap_only: false,
        })
        .unwrap();
    let ids = fleet.create_jobs(2, 1500);
    let deadline = Instant::now() + Duration::from_secs(75);
    let mut requeued_for_theft: BTreeSet<u64> = BTreeSet::new();
    loop {
        for id in &ids {
            let history = fleet
                .record_in_store(*id)
                .and_then(|r| r["history"].as_array().cloned())
                .unwrap_or_default();
            if history
                .iter()
                .any(|h| h["reason"].as_str() == Some("runner_taken_by_other_job"))
            {
                requeued_for_theft.insert(*id);
            }
        }
        let done = ids
            .iter()
            .filter(|id| {
                fleet
                    .emulator
                    .job(**id)
                    .is_some_and(|j| j.completed_at_ms.is_some())
            })
            .count();
        if done == ids.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{done}/{} jobs completed; counts {:?}\n{}",
            ids.len(),
            fleet.emulator.counts(),
            fleet.all_logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    fleet.assert_completed_once(&ids);
    assert!(
        fleet.emulator.faults().is_empty(),
        "the stealing fault was used"
    );
    let jobs: Vec<_> = ids
        .iter()
        .map(|id| fleet.emulator.job(*id).unwrap())
        .collect();
    let (thief, victim) = jobs
        .iter()
        .find_map(|j| {
            let made_for = job_named_in(j.runner_name.as_deref()?, &ids)?;
            (made_for != j.id).then_some((j, made_for))
        })
        .expect("a job ran on the runner made for the other");
    let victim = fleet.emulator.job(victim).unwrap();
    assert_ne!(
        victim.runner_name, thief.runner_name,
        "the robbed job ran on another runner"
    );
    assert!(
        victim.started_at_ms > thief.completed_at_ms,
        "the robbed job stayed queued until the stolen runner's job ended and a runner started it: {victim:?} / \
         {thief:?}"
    );
    // How the host learnt of the theft: from GitHub's news of the stolen job (when it reached
    // this host: it holds only the news of the jobs it holds, and the receiver is another
    // process), or by asking GitHub about its own job after `registration_timeout_seconds`.
    let logs = fleet.all_logs();
    let fresh_vm = format!("job#{} fresh VM after registration_timed_out", victim.id);
    assert!(
        requeued_for_theft.contains(&victim.id) || logs.contains(&fresh_vm),
        "job {} went back to the queue as runner_taken_by_other_job or got a fresh VM after its \
         registration timed out (requeued: {requeued_for_theft:?}):\n{}",
        victim.id,
        fleet.hosts[0].log_tail()
    );
    fleet.wait_clean(Duration::from_secs(30));
    assert_no_secrets(&fleet);
}

/// No secret in any log line or error: an App-authenticated fleet runs jobs through token
/// refreshes, a forced token expiry (401s), server errors and a lost delivery, with debug logs;
/// then [`assert_no_secrets`].
pub fn no_secret_in_logs(bin: &Path) {
    let fleet = Fleet::start_github(
        bin,
        FleetOptions {
            hosts: 1,
            ..FleetOptions::default()
        },
        &GithubSetup {
            app_token_ttl: Some(Duration::from_secs(303)),
            ..GithubSetup::default()
        },
    );
    fleet
        .emulator
        .set_fault(Fault::ServerError {
            route: "POST /repos/*/*/actions/runners/generate-jitconfig".into(),
            status: 502,
            calls: 2,
        })
        .unwrap();
    fleet
        .emulator
        .set_fault(Fault::LostDeliveries { count: 1 })
        .unwrap();
    let first = fleet.create_jobs(2, 500);
    fleet.wait_completed(&first, Duration::from_secs(60));
    fleet.emulator.expire_installation_tokens();
    let second = fleet.create_jobs(1, 500);
    fleet.wait_completed(&second, Duration::from_secs(60));
    let issued = fleet.emulator.issued_secrets();
    for kind in [
        SecretKind::InstallationToken,
        SecretKind::RunnerSession,
        SecretKind::JitConfig,
    ] {
        assert!(
            issued.iter().any(|s| s.kind == kind),
            "the run handed out a {kind:?}"
        );
    }
    assert_no_secrets(&fleet);
}

/// Greps every daemon's log for the PATs, the webhook secret, the App's private key, every
/// secret the emulator handed out (installation, registration and runner tokens, JIT configs)
/// and anything shaped like base64 JSON (a JIT config, a JWT: a run of 40 or more base64
/// characters starting `eyJ`). Panics naming what leaked (not its value) and the log line's
/// daemon.
pub fn assert_no_secrets(fleet: &Fleet) {
    let logs = fleet.all_logs();
    assert!(!logs.is_empty(), "the daemons logged something");
    let mut secrets: Vec<(String, String)> = vec![
        ("the handlers' PAT".into(), TOKEN.into()),
        ("the receiver's PAT".into(), RECEIVER_TOKEN.into()),
        ("the webhook secret".into(), SECRET.into()),
    ];
    let key = std::fs::read_to_string(APP_PRIVATE_KEY).unwrap();
    for line in key
        .lines()
        .filter(|l| l.len() >= 40 && !l.starts_with("-----"))
    {
        secrets.push(("a line of the App's private key".into(), line.to_owned()));
    }
    for s in fleet.emulator.issued_secrets() {
        secrets.push((format!("an issued {:?}", s.kind), s.value));
    }
    for (what, value) in &secrets {
        if let Some(line) = logs.lines().find(|l| l.contains(value.as_str())) {
            let daemon = daemon_of(&logs, line);
            panic!(
                "{what} appears in {daemon}'s log: {}",
                line.replace(value.as_str(), "<SECRET>")
            );
        }
    }
    for line in logs.lines() {
        let mut rest = line;
        while let Some(at) = rest.find("eyJ") {
            let run: String = rest[at..]
                .chars()
                .take_while(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_' | '.')
                })
                .collect();
            assert!(
                run.len() < 40,
                "something like base64 JSON (a JIT config or JWT) in {}'s log: {}...",
                daemon_of(&logs, line),
                &run[..12]
            );
            rest = &rest[at + 3..];
        }
    }
}

/// The daemon whose section of [`Fleet::all_logs`] holds `line`.
fn daemon_of(logs: &str, line: &str) -> String {
    let mut daemon = "?";
    for l in logs.lines() {
        if let Some(name) = l.strip_prefix("--- ") {
            daemon = name;
        }
        if l == line {
            break;
        }
    }
    daemon.to_owned()
}

/// Two runners of one host swap jobs (the runner made for A is given B, then B's runner takes
/// A): both jobs run once each, both VMs are deleted soon after, and no third runner is made.
/// Each lifecycle whose runner was taken keeps its VM while that runner serves the other job;
/// the news of that job's end never reaches this host (a handler reads the news of the jobs
/// it holds, and the receiver is another process), so the VM goes when GitHub stops calling
/// the runner busy (this test found VMs and slots held until `job_max_lifetime_seconds`).
pub fn runner_swap_makes_no_extra_runner(bin: &Path) {
    let fleet = Fleet::start(
        bin,
        FleetOptions {
            hosts: 1,
            ..FleetOptions::default()
        },
    );
    fleet
        .emulator
        .set_fault(Fault::JobStealing {
            count: 1,
            swap_only: true,
        })
        .unwrap();
    let ids = fleet.create_jobs(2, 1500);
    fleet.wait_completed(&ids, Duration::from_secs(60));
    fleet.assert_completed_once(&ids);
    let swapped = ids.iter().all(|id| {
        let job = fleet.emulator.job(*id).unwrap();
        job_named_in(job.runner_name.as_deref().unwrap_or(""), &ids) != Some(*id)
    });
    assert!(swapped, "the runners swapped jobs");
    fleet.wait_clean(Duration::from_secs(40));
    let runners_made = fleet
        .emulator
        .calls()
        .iter()
        .filter(|c| c.path.ends_with("/actions/runners/generate-jitconfig") && c.status == 201)
        .count();
    assert_eq!(
        runners_made,
        2,
        "one runner per job; host log:\n{}",
        fleet.hosts[0].log_tail()
    );
    assert_no_secrets(&fleet);
}
