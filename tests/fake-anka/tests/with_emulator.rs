//! End to end against the real GitHub emulator (tests/github-emulator): a JIT config issued by
//! `generate-jitconfig` and a registration token both lead the fake's emulated runner to take
//! the queued job and complete it, and deleting a VM mid-job leaves the job unfinished. This
//! checks the runner-service contract of docs/emulators.md from both sides.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::{Fake, TestResult, wait_for};
use github_emulator::{Emulator, EmulatorConfig, EmulatorHandle, JobSpec, JobStatus};
use serde_json::{Value, json};

const PAT: &str = "ghp_fake_anka_e2e";
const LABELS: [&str; 2] = ["self-hosted", "anka-template:macos-15"];
const JIT_SCRIPT: &str = r#"IFS= read -r ANKLET_JIT; cd "$HOME/actions-runner" && nohup ./run.sh --jitconfig "$ANKLET_JIT" >runner.log 2>&1 &"#;

fn emulator() -> Result<EmulatorHandle, Box<dyn std::error::Error>> {
    Ok(Emulator::start(EmulatorConfig {
        pats: vec![PAT.into()],
        ping_on_start: false,
        ..EmulatorConfig::default()
    })?)
}

/// A REST call with the PAT; returns (status, body).
fn api(
    emu: &EmulatorHandle,
    path: &str,
    body: &Value,
) -> Result<(u16, Value), Box<dyn std::error::Error>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut resp = agent
        .post(format!("{}{path}", emu.base_url()))
        .header("Authorization", format!("Bearer {PAT}"))
        .header("Accept", "application/vnd.github+json")
        .send_json(body)?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string()?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn run_with_stdin(
    fake: &Fake,
    vm: &str,
    script: &str,
    input: &str,
) -> Result<i32, Box<dyn std::error::Error>> {
    let mut child = fake
        .command(&["-j", "run", vm, "bash", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    if let Some(mut sin) = child.stdin.take() {
        sin.write_all(input.as_bytes())?;
    }
    Ok(child.wait_with_output()?.status.code().unwrap_or(-1))
}

fn status(emu: &EmulatorHandle, id: u64) -> Option<JobStatus> {
    emu.job(id).map(|j| j.status)
}

#[test]
fn jit_runner_completes_the_emulators_job() -> TestResult {
    let emu = emulator()?;
    let job =
        emu.create_job(JobSpec::new("acme", "app", &LABELS).duration(Duration::from_millis(100)))?;
    let (code, body) = api(
        &emu,
        "/repos/acme/app/actions/runners/generate-jitconfig",
        &json!({"name": "anklet-vm-1", "runner_group_id": 1, "labels": LABELS}),
    )?;
    assert_eq!(code, 201, "{body}");
    let jit = body["encoded_jit_config"].as_str().ok_or("no JIT config")?;
    let fake = Fake::new()?;
    fake.clones(&["anklet-vm-1"])?;
    assert_eq!(
        run_with_stdin(&fake, "anklet-vm-1", JIT_SCRIPT, &format!("{jit}\n"))?,
        0
    );
    assert!(
        wait_for(Duration::from_secs(15), || status(&emu, job.id)
            == Some(JobStatus::Completed)),
        "job status {:?}",
        status(&emu, job.id)
    );
    fake.ok(&["delete", "--yes", "anklet-vm-1"])?;
    Ok(())
}

#[test]
fn token_runner_completes_the_emulators_job() -> TestResult {
    let emu = emulator()?;
    let job =
        emu.create_job(JobSpec::new("acme", "app", &LABELS).duration(Duration::from_millis(100)))?;
    let (code, body) = api(
        &emu,
        "/repos/acme/app/actions/runners/registration-token",
        &json!({}),
    )?;
    assert_eq!(code, 201, "{body}");
    let token = body["token"].as_str().ok_or("no token")?;
    let fake = Fake::new()?;
    fake.clones(&["anklet-vm-2"])?;
    let url = format!("{}/acme/app", emu.base_url());
    assert_eq!(
        run_with_stdin(&fake, "anklet-vm-2", "./install-runner.bash", "")?,
        0
    );
    let register = format!(
        "IFS= read -r ANKLET_TOKEN && exec ./register-runner.bash 'anklet-vm-2' \"$ANKLET_TOKEN\" '{url}' '{}'",
        LABELS.join(",")
    );
    assert_eq!(
        run_with_stdin(&fake, "anklet-vm-2", &register, &format!("{token}\n"))?,
        0
    );
    assert_eq!(
        run_with_stdin(&fake, "anklet-vm-2", "./start-runner.bash", "")?,
        0
    );
    assert!(
        wait_for(Duration::from_secs(15), || status(&emu, job.id)
            == Some(JobStatus::Completed)),
        "job status {:?}",
        status(&emu, job.id)
    );
    Ok(())
}

#[test]
fn deleting_the_vm_mid_job_leaves_the_job_unfinished() -> TestResult {
    let emu = emulator()?;
    let job =
        emu.create_job(JobSpec::new("acme", "app", &LABELS).duration(Duration::from_secs(60)))?;
    let (code, body) = api(
        &emu,
        "/repos/acme/app/actions/runners/generate-jitconfig",
        &json!({"name": "anklet-vm-3", "runner_group_id": 1, "labels": LABELS}),
    )?;
    assert_eq!(code, 201, "{body}");
    let jit = body["encoded_jit_config"].as_str().ok_or("no JIT config")?;
    let fake = Fake::new()?;
    fake.clones(&["anklet-vm-3"])?;
    assert_eq!(
        run_with_stdin(&fake, "anklet-vm-3", JIT_SCRIPT, &format!("{jit}\n"))?,
        0
    );
    assert!(wait_for(Duration::from_secs(15), || status(&emu, job.id)
        == Some(JobStatus::InProgress)));
    fake.ok(&["delete", "--yes", "anklet-vm-3"])?;
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        status(&emu, job.id),
        Some(JobStatus::InProgress),
        "nobody completes it"
    );
    Ok(())
}
