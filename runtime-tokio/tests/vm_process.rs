//! The tokio process runner and anka driver against real child processes: deadlines (and
//! dropped futures) kill the whole process group, output is bounded, stdin arrives, exit
//! statuses are reported, and the JIT config is on no process's argv.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet::vm::anka::AnkaRunner;
use anklet::vm::process::{ProcessSpec, run};
use anklet_core::handler::{EffectResult, FailureClass, JobRef, RunnerCredentials, VmCmd};
use anklet_core::ids::{JobId, VmName};
use anklet_core::secret::Secret;
use anklet_core::vm::{AnkaSettings, Exit, ProcessOutput};
use anklet_lite::vm::call::AnkaConfig;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const JIT: &str = "eyJydW5uZXIiOiJ0b2tpby1zZWNyZXQtaml0In0=";

async fn sh(script: &str, stdin: Option<&[u8]>, timeout: Duration, limit: usize) -> ProcessOutput {
    let args = vec!["-c".to_owned(), script.to_owned()];
    run(ProcessSpec {
        program: Path::new("/bin/sh"),
        args: &args,
        stdin,
        timeout,
        output_limit: limit,
    })
    .await
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next());
            !matches!(state, Some("Z" | "X"))
        }
        Err(_) => false,
    }
}

async fn wait_gone(pid: u32) -> bool {
    let until = Instant::now() + Duration::from_secs(3);
    while alive(pid) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    !alive(pid)
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[tokio::test]
async fn a_hung_command_and_its_grandchild_are_killed_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let script = format!(
        "sleep 300 & echo $! > {}; echo started; wait",
        pidfile.display()
    );
    let started = Instant::now();
    let out = sh(&script, None, Duration::from_millis(700), 1 << 20).await;
    assert_eq!(
        out.exit,
        Exit::TimedOut {
            after: Duration::from_millis(700)
        }
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.stdout, b"started\n");
    let pid = read_pid(&pidfile).expect("grandchild pid");
    assert!(
        wait_gone(pid).await,
        "grandchild {pid} survived the group kill"
    );
}

#[tokio::test]
async fn dropping_the_future_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
    let pending = sh(&script, None, Duration::from_secs(300), 1024);
    let _ = tokio::time::timeout(Duration::from_millis(500), pending).await;
    let pid = read_pid(&pidfile).expect("grandchild pid");
    assert!(
        wait_gone(pid).await,
        "grandchild {pid} survived a dropped future"
    );
}

#[tokio::test]
async fn output_is_bounded_and_stdin_arrives() {
    let script = "head -c 3000000 /dev/zero | tr '\\0' a; echo; printf '{\"status\":\"OK\"}'";
    let out = sh(script, None, Duration::from_secs(20), 1 << 20).await;
    assert_eq!(out.exit, Exit::Code(0));
    assert_eq!(out.stdout.len(), 1 << 20);
    assert_eq!(out.stdout_dropped, 3_000_016 - (1 << 20));
    assert!(anklet_core::vm::output::parse_envelope(&out.stdout).is_some());
    let out = sh("cat", Some(b"one\ntwo\n"), Duration::from_secs(10), 64).await;
    assert_eq!(
        (out.exit, out.stdout),
        (Exit::Code(0), b"one\ntwo\n".to_vec())
    );
    let big = vec![b'x'; 4 << 20];
    assert_eq!(
        sh("exit 0", Some(&big), Duration::from_secs(10), 64)
            .await
            .exit,
        Exit::Code(0)
    );
}

#[tokio::test]
async fn exit_codes_signals_and_spawn_failures() {
    assert_eq!(
        sh("exit 30", None, Duration::from_secs(10), 64).await.exit,
        Exit::Code(30)
    );
    assert_eq!(
        sh("kill -TERM $$", None, Duration::from_secs(10), 64)
            .await
            .exit,
        Exit::Signal(15)
    );
    let out = run(ProcessSpec {
        program: Path::new("/nonexistent/anka"),
        args: &[],
        stdin: None,
        timeout: Duration::from_secs(1),
        output_limit: 64,
    })
    .await;
    assert!(matches!(out.exit, Exit::SpawnFailed(_)));
}

/// The stand-in `anka`, written once by a child process (see `anklet_tests::script`: ETXTBSY).
fn fake_anka() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anka");
        anklet_tests::script::write_executable(
            &path,
            r#"#!/bin/sh
D=$(dirname "$0")
case "$2" in
  run)
    echo $$ > "$D/jit.pid"
    while [ ! -e "$D/jit.go" ]; do sleep 0.02; done
    IFS= read -r line
    printf '%s' "$line" > "$D/jit.stdin" ;;
  start) sleep 30 ;;
  list) printf '{"status":"OK","code":0,"body":[],"message":""}' ;;
  *) printf '{"status":"OK","code":0,"body":{},"message":""}' ;;
esac
"#,
        );
        dir
    })
    .path()
}

fn settings() -> AnkaSettings {
    AnkaSettings {
        registry_url: None,
        scripts_dir: "/nonexistent/handlers/github".into(),
        registration_url: "https://github.com/acme/widgets".into(),
        runner_group: None,
    }
}

#[tokio::test]
async fn the_driver_runs_plans_with_the_jit_on_stdin_only() {
    let dir = fake_anka();
    let runner = AnkaRunner::new(dir.join("anka"));
    let vm = VmName("anklet-vm-mac1-7-1".into());
    let deleted = runner
        .execute(
            &VmCmd::Delete { vm: vm.clone() },
            &settings(),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(deleted, EffectResult::Done);

    let cmd = VmCmd::StartRunner {
        vm,
        job: JobRef {
            id: JobId(7),
            run_id: 1,
            owner: "acme".into(),
            repo: "widgets".into(),
        },
        labels: vec!["self-hosted".into()],
        credentials: RunnerCredentials::Jit(Secret::new(JIT)),
    };
    let task = tokio::spawn(async move {
        runner
            .execute(&cmd, &settings(), Duration::from_secs(20))
            .await
    });
    let until = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(pid) = read_pid(&dir.join("jit.pid")) {
            break pid;
        }
        assert!(Instant::now() < until, "the fake anka never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let cmdline = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
        .replace('\0', " ");
    std::fs::write(dir.join("jit.go"), b"").unwrap();
    assert_eq!(task.await.unwrap(), EffectResult::Done);
    assert!(
        cmdline.contains("--jitconfig") && !cmdline.contains(JIT),
        "{cmdline}"
    );
    assert_eq!(std::fs::read_to_string(dir.join("jit.stdin")).unwrap(), JIT);
}

#[tokio::test]
async fn a_plan_never_outlives_its_timeout() {
    let runner = AnkaRunner::new(fake_anka().join("anka"));
    let started = Instant::now();
    let result = runner
        .execute(
            &VmCmd::Start {
                vm: VmName("anklet-vm-mac1-8-1".into()),
            },
            &settings(),
            Duration::from_millis(500),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let EffectResult::Failed(f) = result else {
        panic!("{result:?}")
    };
    assert_eq!(f.class, FailureClass::TimedOut);
}

#[tokio::test]
async fn inventory_uses_the_real_disk_probe() {
    let dir = tempfile::tempdir().unwrap();
    let runner = AnkaRunner::from(AnkaConfig {
        template_dir: dir.path().to_path_buf(),
        ..AnkaConfig::new(fake_anka().join("anka"))
    });
    let result = runner
        .execute(&VmCmd::Inventory, &settings(), Duration::from_secs(10))
        .await;
    let EffectResult::Inventory {
        disk, templates, ..
    } = result
    else {
        panic!("{result:?}")
    };
    assert!(templates.is_empty() && disk.total_bytes > 0);
}
