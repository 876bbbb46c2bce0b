//! The binary: `--help` explains itself, bad flags fail, and a separate emulator process is
//! driven over the control API (job, webhook, shutdown) as the daemons' tests will do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_github-emulator");

/// Kills the emulator process if a test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn help_explains_and_bad_flags_fail() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "NOT GitHub",
        "--webhook-url",
        "--secret-file",
        "--pat",
        "--app-public-key",
        "--time-scale",
        "/_emulator/",
    ] {
        assert!(text.contains(needle), "help lacks {needle}");
    }
    assert_eq!(
        github_emulator::run(vec!["github-emulator".into(), "--port".into(), "x".into()]),
        2
    );
    let scale = github_emulator::run(vec![
        "github-emulator".into(),
        "--time-scale".into(),
        "0".into(),
    ]);
    assert_eq!(scale, 1);
    let secret = github_emulator::run(vec![
        "github-emulator".into(),
        "--secret-env".into(),
        "GHEMU_TEST_UNSET_VAR".into(),
    ]);
    assert_eq!(secret, 1);
}

#[test]
fn a_separate_process_is_driven_over_the_control_api() {
    let rx = Receiver::start();
    let dir = std::env::temp_dir().join(format!("ghemu-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let key_file = dir.join("app.pem");
    std::fs::write(&key_file, PUBLIC_KEY).unwrap();
    let child = Command::new(BIN)
        .args([
            "--port",
            "0",
            "--webhook-url",
            &rx.url,
            "--pat",
            PAT,
            "--app-id",
            &APP_ID.to_string(),
        ])
        .arg("--secret-file")
        .arg(&secret_file)
        .arg("--app-public-key")
        .arg(&key_file)
        .args(["--installation", "7=acme", "--time-scale", "0.5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let (tx, first) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = first
        .recv_timeout(WAIT)
        .expect("the emulator printed its URL in time");
    let base = line
        .trim()
        .strip_prefix("github-emulator: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();

    let job = call(
        "POST",
        &format!("{base}/_emulator/jobs"),
        None,
        Some(
            &json!({"owner": "acme", "repo": "app", "labels": ["self-hosted"], "duration_ms": 1000}),
        ),
    );
    assert_eq!(job.status, 201);
    assert_eq!(job.body["duration_ms"], 500, "scaled by --time-scale");
    let id = job.body["id"].as_u64().unwrap();
    let got = rx.wait_job_event(id, "queued");
    anklet_core::github::webhook::verify_signature(
        &anklet_core::secret::Secret::new(SECRET),
        &got.body,
        got.header("x-hub-signature-256"),
    )
    .unwrap();
    assert_eq!(got.json()["installation"]["id"], 7);
    let inst = call(
        "GET",
        &format!("{base}/repos/acme/app/installation"),
        Some(&bearer(&app_jwt())),
        None,
    );
    assert_eq!(inst.body["id"], 7);

    let bye = call("POST", &format!("{base}/_emulator/shutdown"), None, None);
    assert_eq!(bye.status, 202);
    let end = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            panic!("emulator did not exit after shutdown");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.lines().all(|l| l.starts_with("github-emulator:")),
        "{err}"
    );
    assert!(!err.contains(PAT) && !err.contains(SECRET));
    let _ = std::fs::remove_dir_all(&dir);
}
