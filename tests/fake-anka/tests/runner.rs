//! The emulated runner against a stub runner service (tiny_http on loopback): JIT mode goes
//! session → job → complete with the JIT config only on a pipe; `delete`, `stop -f` and
//! `vm_crash` kill it mid-job without a word to the service; a graceful `stop` closes the
//! session; token mode registers, then starts the runner from the stored files.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Fake, TestResult, alive, wait_for};
use serde_json::{Value, json};

const TOKEN: &str = "runner-session-token-123";
const JIT_SCRIPT: &str = r#"IFS= read -r ANKLET_JIT; cd "$HOME/actions-runner" && nohup ./run.sh --jitconfig "$ANKLET_JIT" >runner.log 2>&1 &"#;

/// A JSON body re-serialised compactly (or as given if it is not JSON).
fn compact(body: &str) -> String {
    serde_json::from_str::<Value>(body).map_or_else(|_| body.to_string(), |v| v.to_string())
}

/// A stub of the emulator's runner service that records what it was asked.
struct Stub {
    base: String,
    events: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Stub {
    /// Serves one runner (id 5): a job after `polls` empty polls, running `duration_ms`.
    fn start(polls: usize, duration_ms: u64) -> Result<Self, Box<dyn std::error::Error>> {
        let server = tiny_http::Server::http("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or("no port")?;
        let base = format!("http://127.0.0.1:{port}");
        let events = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ev, st, b) = (events.clone(), stop.clone(), base.clone());
        let seen_polls = AtomicUsize::new(0);
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                let Ok(Some(mut req)) = server.recv_timeout(Duration::from_millis(50)) else {
                    continue;
                };
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let auth = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.as_str().to_string())
                    .unwrap_or_default();
                let path = req.url().to_string();
                let method = req.method().as_str().to_string();
                let push = |e: String| {
                    if let Ok(mut v) = ev.lock() {
                        v.push(e);
                    }
                };
                let authed = auth == format!("Bearer {TOKEN}");
                let (status, reply) = match (method.as_str(), path.as_str()) {
                    ("POST", "/_emulator/runner-service/register") => {
                        push(format!("register {body}"));
                        (
                            201,
                            json!({
                                "runner": {"agentId": 5, "agentName": "vm-t", "serverUrl": format!("{b}/_emulator/runner-service")},
                                "credentials": {"scheme": "OAuthAccessToken", "data": {"token": TOKEN}}
                            })
                            .to_string(),
                        )
                    }
                    _ if !authed => (401, String::new()),
                    ("POST", "/_emulator/runner-service/sessions") => {
                        push(format!("session {}", compact(&body)));
                        (200, json!({"session_id": "s-1"}).to_string())
                    }
                    ("GET", "/_emulator/runner-service/sessions/s-1/job") => {
                        let early = seen_polls.fetch_add(1, Ordering::SeqCst) < polls;
                        let given = ev.lock().is_ok_and(|v| v.iter().any(|e| e == "job"));
                        if early || given {
                            (204, String::new())
                        } else {
                            push("job".into());
                            (
                                200,
                                json!({"job_id": 42, "run_id": 9, "duration_ms": duration_ms})
                                    .to_string(),
                            )
                        }
                    }
                    ("POST", "/_emulator/runner-service/jobs/42/complete") => {
                        push(format!("complete {}", compact(&body)));
                        (200, "{}".into())
                    }
                    ("DELETE", "/_emulator/runner-service/sessions/s-1") => {
                        push("close".into());
                        (200, "{}".into())
                    }
                    _ => (404, String::new()),
                };
                let _ =
                    req.respond(tiny_http::Response::from_string(reply).with_status_code(status));
            }
        });
        Ok(Self {
            base,
            events,
            stop,
            thread: Some(thread),
        })
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn has(&self, prefix: &str) -> bool {
        self.events().iter().any(|e| e.starts_with(prefix))
    }

    /// A JIT config for runner 5 pointing at this stub.
    fn jit(&self) -> String {
        let runner = json!({"agentId": 5, "agentName": "runner-5", "poolId": 1, "poolName": "Default",
            "serverUrl": format!("{}/_emulator/runner-service", self.base), "workFolder": "_work", "ephemeral": true});
        let creds = json!({"scheme": "OAuthAccessToken", "data": {"token": TOKEN}});
        let files = json!({
            ".runner": STANDARD.encode(runner.to_string()),
            ".credentials": STANDARD.encode(creds.to_string()),
            ".credentials_rsaparams": STANDARD.encode("{}"),
        });
        STANDARD.encode(files.to_string())
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `anka -j run <vm> bash -c <script>` with `input` on stdin; returns the exit status.
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
    let out = child.wait_with_output()?;
    Ok(out.status.code().unwrap_or(-1))
}

fn runner_pid(fake: &Fake, vm: &str) -> Result<u32, Box<dyn std::error::Error>> {
    let state = fake.state()?;
    let pid = state["vms"][vm]["runner_pid"]
        .as_u64()
        .ok_or("no runner pid")?;
    Ok(u32::try_from(pid)?)
}

fn pgrp(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

/// A host with a pulled template and a cloned VM `vm`, fast timings.
fn host() -> Result<Fake, Box<dyn std::error::Error>> {
    let fake = Fake::new()?;
    fake.clones(&["vm"])?;
    Ok(fake)
}

#[test]
fn jit_runner_takes_a_job_and_completes() -> TestResult {
    // Ten empty polls: the runner lives at least a second, long enough to inspect it.
    let stub = Stub::start(10, 50)?;
    let fake = host()?;
    let jit = stub.jit();
    assert_eq!(
        run_with_stdin(&fake, "vm", JIT_SCRIPT, &format!("{jit}\n"))?,
        0
    );
    let pid = runner_pid(&fake, "vm")?;
    assert_eq!(
        pgrp(pid),
        Some(pid),
        "the runner leads its own process group"
    );
    assert!(alive(pid), "the runner outlives anka run");
    {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))?;
        let cmdline = String::from_utf8_lossy(&cmdline);
        assert!(!cmdline.contains(&jit), "JIT config on the runner's argv");
        assert!(!cmdline.contains(TOKEN));
        assert!(cmdline.contains("__emulated-runner"));
        let environ = std::fs::read(format!("/proc/{pid}/environ"))?;
        assert!(
            !String::from_utf8_lossy(&environ).contains(&jit),
            "JIT config in the environment"
        );
    }
    assert!(
        wait_for(Duration::from_secs(10), || stub.has("complete")),
        "events: {:?}",
        stub.events()
    );
    let events = stub.events();
    assert_eq!(events[0], r#"session {"runner_id":5}"#);
    assert_eq!(events[1], "job");
    assert_eq!(events[2], r#"complete {"conclusion":"success"}"#);
    assert!(
        wait_for(Duration::from_secs(5), || !alive(pid)),
        "the runner exits after its job"
    );
    assert!(wait_for(Duration::from_secs(5), || fake
        .state()
        .is_ok_and(|s| s["vms"]["vm"]["runner_pid"].is_null())));
    let log = std::fs::read_to_string(fake.home().join("vms/vm/runner.log"))?;
    assert!(!log.contains(TOKEN), "the token is never logged");
    assert!(log.lines().all(|l| l.starts_with("fake-anka:")), "{log}");
    assert_eq!(fake.stats()?["counters"]["runners_started"], 1);
    Ok(())
}

#[test]
fn jit_run_without_a_config_fails_in_the_guest() -> TestResult {
    let fake = host()?;
    assert_eq!(run_with_stdin(&fake, "vm", JIT_SCRIPT, "")?, 1);
    Ok(())
}

/// Starts a runner with a long job and waits until the job is assigned.
fn busy_runner(stub: &Stub, fake: &Fake) -> Result<u32, Box<dyn std::error::Error>> {
    assert_eq!(
        run_with_stdin(fake, "vm", JIT_SCRIPT, &format!("{}\n", stub.jit()))?,
        0
    );
    let pid = runner_pid(fake, "vm")?;
    if !wait_for(Duration::from_secs(10), || stub.has("job")) {
        return Err(format!("no job assigned: {:?}", stub.events()).into());
    }
    Ok(pid)
}

#[test]
fn delete_kills_the_runner_mid_job() -> TestResult {
    let stub = Stub::start(0, 60_000)?;
    let fake = host()?;
    let pid = busy_runner(&stub, &fake)?;
    fake.ok(&["delete", "--yes", "vm"])?;
    assert!(
        wait_for(Duration::from_secs(5), || !alive(pid)),
        "runner still alive"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !stub.has("complete") && !stub.has("close"),
        "{:?}",
        stub.events()
    );
    assert_eq!(fake.stats()?["counters"]["runners_killed"], 1);
    Ok(())
}

#[test]
fn forced_stop_kills_and_graceful_stop_closes_the_session() -> TestResult {
    let stub = Stub::start(0, 60_000)?;
    let fake = host()?;
    let pid = busy_runner(&stub, &fake)?;
    fake.ok(&["stop", "-f", "vm"])?;
    assert!(wait_for(Duration::from_secs(5), || !alive(pid)));
    assert!(!stub.has("close"));

    let stub = Stub::start(0, 60_000)?;
    let pid = busy_runner(&stub, &fake)?;
    fake.ok(&["stop", "vm"])?;
    assert!(wait_for(Duration::from_secs(5), || !alive(pid)));
    assert!(
        stub.has("close"),
        "graceful stop: DELETE /sessions: {:?}",
        stub.events()
    );
    assert!(!stub.has("complete"));
    Ok(())
}

#[test]
fn vm_crash_kills_the_runner_silently() -> TestResult {
    let stub = Stub::start(0, 60_000)?;
    let fake = Fake::with(json!({"timings": {"start_ms": 0.0}}))?;
    fake.clones(&["vm"])?;
    fake.ok(&["start", "vm"])?;
    fake.faults(
        json!({"op": "run", "match": "vm", "action": "vm_crash", "after_s": 300, "times": 1}),
    )?;
    let pid = busy_runner(&stub, &fake)?;
    assert!(
        wait_for(Duration::from_secs(5), || !alive(pid)),
        "crash kills the runner"
    );
    assert_eq!(fake.ok(&["show", "vm"])?["status"], "failed");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !stub.has("complete") && !stub.has("close"),
        "{:?}",
        stub.events()
    );
    let (code, _) = fake.j(&["run", "vm", "true"])?;
    assert_eq!(code, 125);
    Ok(())
}

#[test]
fn token_mode_registers_then_starts_the_runner() -> TestResult {
    let stub = Stub::start(1, 20)?;
    let fake = host()?;
    let url = format!("{}/acme/widgets", stub.base);
    assert_eq!(run_with_stdin(&fake, "vm", "./install-runner.bash", "")?, 0);
    let register = format!(
        "IFS= read -r ANKLET_TOKEN && exec ./register-runner.bash 'vm' \"$ANKLET_TOKEN\" '{url}' 'self-hosted,macos' 'Default'"
    );
    assert_eq!(run_with_stdin(&fake, "vm", &register, "reg-token-9\n")?, 0);
    let reg = stub
        .events()
        .into_iter()
        .find(|e| e.starts_with("register "))
        .ok_or("no register")?;
    let body: Value = serde_json::from_str(reg.trim_start_matches("register "))?;
    assert_eq!(
        body,
        json!({"token": "reg-token-9", "name": "vm", "labels": ["self-hosted", "macos"], "url": url})
    );
    assert!(fake.vm_home("vm").join(".runner").exists());
    assert!(fake.vm_home("vm").join(".credentials").exists());
    assert_eq!(run_with_stdin(&fake, "vm", "./start-runner.bash", "")?, 0);
    assert!(
        wait_for(Duration::from_secs(10), || stub.has("complete")),
        "{:?}",
        stub.events()
    );
    assert!(stub.has("session"));

    // Registration against a dead service fails inside the guest (exit 1), not in anka.
    let dead = "./register-runner.bash vm tok http://127.0.0.1:9/x a b";
    assert_eq!(run_with_stdin(&fake, "vm", dead, "")?, 1);
    Ok(())
}

#[test]
fn runner_vanishes_when_its_vm_directory_is_removed() -> TestResult {
    let stub = Stub::start(0, 60_000)?;
    let fake = host()?;
    let pid = busy_runner(&stub, &fake)?;
    std::fs::remove_dir_all(fake.home().join("vms").join("vm"))?;
    assert!(
        wait_for(Duration::from_secs(5), || !alive(pid)),
        "an orphaned runner must not outlive its VM"
    );
    assert!(
        !stub.has("complete") && !stub.has("close"),
        "{:?}",
        stub.events()
    );
    Ok(())
}
