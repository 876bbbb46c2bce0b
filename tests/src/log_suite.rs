//! The logs both daemons must write with `log.split_by_plugin: true`: one real daemon process
//! with two plugins (a receiver and a handler on the embedded store), the GitHub emulator in
//! this test process and a fake Mac (the binary under test through a symlink named `anka`).
//! Stand-ins only: nothing here is GitHub or Anka.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use crate::fleet::{OWNER, REPO, SECRET, TEMPLATE, TOKEN, emulator_config, fake_mac};
use crate::redis_server::free_port;
use github_emulator::{Emulator, JobSpec};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The receiver plugin's name.
const RECEIVER: &str = "recv-one";
/// The handler plugin's name.
const HANDLER: &str = "mac-two";

/// The receiver and the handler of one process each write their lines to
/// `anklet-<name>.log` (JSON, with the `plugin` field, at debug level although `LOG_LEVEL` is
/// info) and to no other file; lines of no plugin go to `anklet.log`. The lines logged while
/// the daemon stops are there after it exits.
pub fn split_by_plugin_routes_each_plugins_lines(bin: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let logs = dir.path().join("logs");
    let port = free_port().unwrap();
    let emulator = Emulator::start(emulator_config(port)).unwrap();
    let link = dir.path().join("bin").join("anka");
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(bin, &link).unwrap();
    let seed = serde_json::json!({
        "disk_total": 200_000_000_000u64,
        "time_scale": 0.01,
        "registry": [{ "uuid": TEMPLATE, "name": "macos-logs", "latest": "v1",
                       "tags": { "v1": { "size": 20_000_000_000u64 } } }],
        "local": [{ "uuid": TEMPLATE, "tag": "v1" }],
    });
    let anka = fake_mac(&dir.path().join("mac"), &link, &seed);
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "log:\n  file_dir: {logs}\n  split_by_plugin: true\nmetrics:\n  port: \"{metrics}\"\nstore_path: {store}\nplugins_path: {plugins}\nplugins:\n  - name: {RECEIVER}\n    plugin: github_receiver\n    port: \"{port}\"\n    secret: {SECRET}\n    owner: {OWNER}\n    repo: {REPO}\n    token: {TOKEN}\n    github_api_url: {api}\n    skip_redeliver: true\n  - name: {HANDLER}\n    plugin: github\n    owner: {OWNER}\n    repo: {REPO}\n    token: {TOKEN}\n    github_api_url: {api}\n    anka_path: {anka}\n    registration_timeout_seconds: 30\n    job_poll_interval_seconds: 2\n    vm_health_interval_seconds: 2\n    template_disk_buffer: 1\n",
            logs = logs.display(),
            metrics = free_port().unwrap(),
            store = dir.path().join("queue.redb").display(),
            plugins = dir.path().join("plugins").display(),
            api = emulator.base_url(),
            anka = anka.display(),
        ),
    )
    .unwrap();
    let out = dir.path().join("stdout.log");
    let out_file = std::fs::File::create(&out).unwrap();
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(&config)
        .env("HOME", &home)
        .env("LOG_LEVEL", "info")
        .stdin(Stdio::null())
        .stdout(out_file.try_clone().unwrap())
        .stderr(out_file)
        .spawn()
        .unwrap();
    let tail = || {
        let mut text = std::fs::read_to_string(&out).unwrap_or_default();
        let files = [
            "anklet.log".to_owned(),
            format!("anklet-{RECEIVER}.log"),
            format!("anklet-{HANDLER}.log"),
        ];
        for name in files {
            text.push_str(&format!("\n--- {name}:\n"));
            text.push_str(&std::fs::read_to_string(logs.join(&name)).unwrap_or_default());
        }
        text
    };
    let pid_file = home.join(".config/anklet/anklet.pid");
    wait_until(
        Duration::from_secs(20),
        || pid_file.exists(),
        || format!("the daemon did not start:\n{}", tail()),
    );
    // The pid file is written before the plugins start: the webhook must wait for the receiver.
    let health = format!("http://127.0.0.1:{port}/healthcheck");
    wait_until(
        Duration::from_secs(20),
        || ureq::get(&health).call().is_ok(),
        || format!("the receiver did not answer:\n{}", tail()),
    );
    let labels = [
        "self-hosted".to_owned(),
        format!("anka-template:{TEMPLATE}"),
        "anka-template-tag:v1".to_owned(),
    ];
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let mut spec = JobSpec::new(OWNER, REPO, &labels);
    spec.duration_ms = 100;
    let job = emulator.create_job(spec).unwrap().id;
    wait_until(
        Duration::from_secs(90),
        || {
            emulator
                .job(job)
                .is_some_and(|j| j.completed_at_ms.is_some())
        },
        || format!("job {job} did not complete:\n{}", tail()),
    );
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            Instant::now() < deadline,
            "no exit after SIGTERM:\n{}",
            tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0), "{}", tail());

    let mut names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!("anklet-{HANDLER}.log"),
            format!("anklet-{RECEIVER}.log"),
            "anklet.log".to_owned()
        ],
        "one main log and one file per plugin"
    );
    let main = json_lines(&logs.join("anklet.log"));
    let receiver = json_lines(&logs.join(format!("anklet-{RECEIVER}.log")));
    let handler = json_lines(&logs.join(format!("anklet-{HANDLER}.log")));
    for (name, lines) in [(RECEIVER, &receiver), (HANDLER, &handler)] {
        assert!(!lines.is_empty(), "{name} wrote no line");
        for line in lines {
            assert_eq!(
                line["fields"]["plugin"].as_str(),
                Some(name),
                "a line in {name}'s file is not {name}'s: {line}"
            );
        }
    }
    for line in &main {
        assert!(
            line["fields"]["plugin"].is_null(),
            "a plugin's line in the main log: {line}"
        );
    }
    let says = |lines: &[Value], text: &str| {
        lines.iter().any(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(text))
        })
    };
    assert!(
        says(&main, &format!("writing {HANDLER} logs to")),
        "the main log says where each plugin's lines go"
    );
    assert!(says(&receiver, "webhook stored"), "the receiver's webhook");
    assert!(
        handler
            .iter()
            .any(|l| l["fields"]["job"].as_u64() == Some(job)),
        "the handler's lines about job {job}"
    );
    assert!(
        says(&handler, "vm backend call"),
        "the anka driver's calls are the handler's lines"
    );
    assert!(
        handler.iter().any(|l| l["level"] == "DEBUG"),
        "a plugin's file logs at debug level whatever LOG_LEVEL says"
    );
    assert!(
        !main.iter().any(|l| l["level"] == "DEBUG"),
        "the main log keeps LOG_LEVEL=info"
    );
    assert!(
        says(&handler, "handler stopped") && says(&receiver, "receiver stopped"),
        "the lines logged while stopping are in the files after the exit"
    );
    let stdout = std::fs::read_to_string(&out).unwrap();
    assert!(
        !stdout.contains(&format!("\"plugin\":\"{HANDLER}\"")),
        "with log.file_dir nothing goes to stdout: {stdout}"
    );
}

/// A plugin's log file that cannot be opened (here a directory has its name) stops the start:
/// exit 1 with the path on stderr, before any plugin runs.
pub fn unopenable_plugin_log_exits_1(bin: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let blocked = logs.join(format!("anklet-{HANDLER}.log"));
    std::fs::create_dir_all(&blocked).unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "log:\n  file_dir: {}\n  split_by_plugin: true\nstore_path: {}\nplugins:\n  - name: {HANDLER}\n    plugin: github\n    owner: {OWNER}\n    token: {TOKEN}\n",
            logs.display(),
            dir.path().join("queue.redb").display(),
        ),
    )
    .unwrap();
    let out = Command::new(bin)
        .arg("-c")
        .arg(&config)
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&blocked.display().to_string()),
        "the error names the file: {err}"
    );
    assert!(
        !dir.path().join("queue.redb").exists(),
        "nothing started before the logs were set up"
    );
}

/// Every line of a log file, parsed; a line that is not JSON fails the test.
fn json_lines(path: &PathBuf) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                panic!("{} has a line that is not JSON ({e}): {l}", path.display())
            })
        })
        .collect()
}

fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool, why: impl Fn() -> String) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{}", why());
        std::thread::sleep(Duration::from_millis(50));
    }
}
