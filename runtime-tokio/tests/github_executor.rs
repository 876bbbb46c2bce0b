//! The tokio GitHub executor against the GitHub emulator and a silent server: commands come
//! back with the client's answer, many at once and without waiting out a request timeout, a server that never answers fails the command
//! within the request timeout, and a stopped executor answers `Failed` instead of hanging.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet::github::GithubExecutor;
use anklet_core::github::auth::Credentials;
use anklet_core::github::client::{ClientConfig, CommandResult};
use anklet_core::github::rest::ApiScope;
use anklet_core::handler::{EffectResult, ForgeCmd, GithubJobStatus, JobRef};
use anklet_core::ids::JobId;
use anklet_core::secret::Secret;
use anklet_lite::clock::Clock;
use github_emulator::{Emulator, EmulatorConfig, JobSpec};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "ghp_executor_test_token";

fn config(base: &str) -> ClientConfig {
    let scope = ApiScope::Repository {
        owner: "acme".to_owned(),
        repo: "app".to_owned(),
    };
    let mut c = ClientConfig::new(scope, Credentials::Token(Secret::new(TOKEN.to_owned())));
    c.api_base_url = base.to_owned();
    c
}

fn get_job(id: u64, run_id: u64) -> ForgeCmd {
    ForgeCmd::GetJob {
        job: JobRef {
            id: JobId(id),
            run_id,
            owner: "acme".to_owned(),
            repo: "app".to_owned(),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_get_the_emulators_answers_many_at_once() {
    let emulator = Emulator::start(EmulatorConfig {
        pats: vec![TOKEN.to_owned()],
        ..EmulatorConfig::default()
    })
    .unwrap();
    // More than the client keeps on the wire (8), so some wait for a slot and go out on a new
    // or reused connection while others are open.
    let jobs: Vec<_> = (0..12)
        .map(|_| {
            emulator
                .create_job(JobSpec::new("acme", "app", &["self-hosted"]))
                .unwrap()
        })
        .collect();
    let executor =
        GithubExecutor::start(config(emulator.base_url()), Arc::new(Clock::new())).unwrap();
    let started = Instant::now();
    let calls = jobs.iter().map(|job| {
        let github = executor.handle();
        let cmd = get_job(job.id, job.run_id);
        tokio::spawn(async move { github.call(cmd.into()).await })
    });
    for call in calls.collect::<Vec<_>>() {
        match call.await.unwrap() {
            CommandResult::Forge(EffectResult::JobStatus(GithubJobStatus::Queued)) => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    // Far below the 30 s request timeout: no request sat on a connection the server ignores.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    executor.stop().await;
    emulator.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_fails_within_the_request_timeout() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let mut c = config(&base);
    c.max_attempts = 1;
    c.request_timeout = Duration::from_millis(300);
    let executor = GithubExecutor::start(c, Arc::new(Clock::new())).unwrap();
    let started = Instant::now();
    let result = executor.handle().call(get_job(1, 1).into()).await;
    assert!(result.failure().is_some(), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    executor.stop().await;
    held.abort();
}

#[tokio::test]
async fn a_stopped_executor_answers_failed() {
    let executor =
        GithubExecutor::start(config("http://127.0.0.1:9"), Arc::new(Clock::new())).unwrap();
    let github = executor.handle();
    executor.stop().await;
    let result = github.call(get_job(1, 1).into()).await;
    let failure = result.failure().expect("a failure");
    assert!(failure.message.contains("stopped"), "{failure:?}");
}
