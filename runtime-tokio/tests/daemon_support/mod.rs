//! A one-host fleet for the daemon's end-to-end tests: the GitHub emulator in the test
//! process, a fake Mac (the `anklet` binary through a symlink named `anka`), a config pointing
//! at both, and the real `anklet` process running it with its own `HOME`.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use github_emulator::{Emulator, EmulatorConfig, EmulatorHandle, JobSpec, TimeScale};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_anklet");
const OWNER: &str = "test-org";
const REPO: &str = "test-app";
const TEMPLATE: &str = "c0ffee00-test-macos-15";
pub const TOKEN: &str = "ghp_test_token_for_the_emulator_only";
const SECRET: &str = "test-webhook-secret";

/// The emulator, the fake Mac and the files of one test.
pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub anka: PathBuf,
    pub config: PathBuf,
    pub port: u16,
    pub metrics_port: u16,
    pub emulator: EmulatorHandle,
}

impl Fleet {
    /// Starts the emulator and writes the fake Mac and the config.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let port = free_port();
        let metrics_port = free_port();
        let emulator = Emulator::start(EmulatorConfig {
            pats: vec![TOKEN.to_owned()],
            webhook_urls: vec![format!("http://127.0.0.1:{port}/jobs/v1/receiver")],
            webhook_secret: Some(SECRET.to_owned()),
            time_scale: TimeScale::new(1.0).unwrap(),
            ..EmulatorConfig::default()
        })
        .unwrap();
        let anka = fake_mac(dir.path());
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            config_yaml(dir.path(), port, metrics_port, emulator.base_url(), &anka),
        )
        .unwrap();
        Self {
            dir,
            home,
            anka,
            config,
            port,
            metrics_port,
            emulator,
        }
    }

    /// Runs `anklet -c <config>` with this fleet's `HOME`.
    pub fn spawn_daemon(&self) -> Child {
        self.spawn_daemon_logging("info")
    }

    /// Runs `anklet -c <config>` with this fleet's `HOME` and `LOG_LEVEL`.
    pub fn spawn_daemon_logging(&self, level: &str) -> Child {
        let child = Command::new(BIN)
            .arg("-c")
            .arg(&self.config)
            .env_clear()
            .env("HOME", &self.home)
            .env("LOG_LEVEL", level)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(Duration::from_secs(20), "the receiver to answer", || {
            ureq::get(&format!("http://127.0.0.1:{}/healthcheck", self.port))
                .call()
                .is_ok()
        });
        child
    }

    /// Queues a job that runs for `duration_ms` once a runner has it.
    pub fn create_job(&self, duration_ms: u64) -> u64 {
        let label = format!("anka-template:{TEMPLATE}");
        let mut spec = JobSpec::new(
            OWNER,
            REPO,
            &["self-hosted", &label, "anka-template-tag:v1"],
        );
        spec.duration_ms = duration_ms;
        self.emulator.create_job(spec).unwrap().id
    }

    /// Waits until the emulator says a job is running on one of our runners.
    pub fn wait_running(&self) {
        wait_for(Duration::from_secs(60), "a job to run", || {
            self.emulator.counts().in_progress >= 1
        });
    }

    /// Adds fault rules to the fake Mac (re-read on every `anka` call).
    pub fn faults(&self, rules: &str) {
        std::fs::write(self.anka.parent().unwrap().join("faults.json"), rules).unwrap();
    }

    /// VMs (not templates) the fake Mac still has, through its own `anka -j list`.
    pub fn vms_left(&self) -> usize {
        let out = Command::new(&self.anka)
            .args(["-j", "list"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
        let v: serde_json::Value = serde_json::from_str(last).unwrap();
        v["body"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("anklet-vm-"))
            })
            .count()
    }

    /// The body of `GET <path>` on the daemon's metrics server.
    pub fn metrics(&self, path: &str) -> String {
        ureq::get(&format!("http://127.0.0.1:{}{path}", self.metrics_port))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    }

    /// The daemon's pid file under this fleet's `HOME`.
    pub fn pid_file(&self) -> PathBuf {
        self.home.join(".config/anklet/anklet.pid")
    }

    /// The daemon's JSON log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/anklet.log")).unwrap_or_default()
    }
}

/// Sends `signal` (e.g. `-TERM`) to `child`.
pub fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(signal)
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for `child` to exit, killing it and failing (with the log's tail) after `limit`.
pub fn wait_exit(fleet: &Fleet, child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let log = fleet.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "the daemon did not exit within {limit:?}; log tail (newest first):\n{}",
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `ok` until it holds, failing after `limit`.
pub fn wait_for(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The fake Mac: a symlink `anka` to the `anklet` binary and a wrapper giving it a state dir.
fn fake_mac(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join("anka");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let state = dir.join("mac");
    std::fs::create_dir_all(&state).unwrap();
    let seed = serde_json::json!({
        "disk_total": 200_000_000_000u64,
        "time_scale": 0.02,
        "registry": [{
            "uuid": TEMPLATE, "name": "macos-15-test", "latest": "v1",
            "tags": { "v1": { "size": 2_000_000_000u64 } }
        }],
        "local": []
    });
    std::fs::write(state.join("seed.json"), seed.to_string()).unwrap();
    let anka = state.join("anka");
    std::fs::write(
        &anka,
        format!(
            "#!/bin/sh\nFAKE_ANKA_HOME='{}' exec '{}' \"$@\"\n",
            state.display(),
            link.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&anka, std::fs::Permissions::from_mode(0o755)).unwrap();
    anka
}

fn config_yaml(dir: &Path, port: u16, metrics_port: u16, api: &str, anka: &Path) -> String {
    format!(
        "log:\n  file_dir: {logs}\nmetrics:\n  port: \"{metrics_port}\"\n  sleep_interval: 1\nstore_path: {store}\nplugins_path: {plugins}\nplugins:\n  - name: test-receiver\n    plugin: github_receiver\n    port: \"{port}\"\n    secret: {SECRET}\n    owner: {OWNER}\n    repo: {REPO}\n    token: {TOKEN}\n    github_api_url: {api}\n    skip_redeliver: true\n  - name: test-mac\n    plugin: github\n    owner: {OWNER}\n    repo: {REPO}\n    token: {TOKEN}\n    github_api_url: {api}\n    anka_path: {anka}\n    registration_timeout_seconds: 30\n    job_poll_interval_seconds: 2\n    vm_health_interval_seconds: 2\n    template_disk_buffer: 1\n",
        logs = dir.join("logs").display(),
        store = dir.join("queue.redb").display(),
        plugins = dir.join("plugins").display(),
        anka = anka.display(),
    )
}
