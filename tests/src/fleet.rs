//! A fleet of real daemon processes for the behaviour suite: one receiver and N handler hosts
//! of the binary under test, each its own process with its own `HOME` and fake-Mac state,
//! sharing a real Redis, talking to the GitHub emulator (in this test process).
//!
//! Each handler host runs `anka` through a wrapper script that points `FAKE_ANKA_HOME` at the
//! host's folder and execs the binary under test through a symlink named `anka` (both daemons
//! embed the fake `anka` for the demo). Stand-ins only: nothing here is GitHub or Anka.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use crate::redis_server::{RedisServer, ServerOptions, must_start};
use github_emulator::{Emulator, EmulatorConfig, EmulatorHandle, JobSpec, TimeScale};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The token every daemon and the emulator share.
pub const TOKEN: &str = "ghp_behaviour_suite_token";
/// The webhook secret.
pub const SECRET: &str = "behaviour-suite-secret";
/// Repository owner of every job.
pub const OWNER: &str = "acme";
/// Repository of every job.
pub const REPO: &str = "app";
/// The template every job runs on.
pub const TEMPLATE: &str = "b3h4v10r-macos";

/// The emulator's config for daemons with a receiver on `receiver_port`: it accepts [`TOKEN`]
/// and [`RECEIVER_TOKEN`], signs its webhooks with [`SECRET`] and sends them there, in real
/// time.
pub fn emulator_config(receiver_port: u16) -> EmulatorConfig {
    EmulatorConfig {
        pats: vec![TOKEN.to_owned(), RECEIVER_TOKEN.to_owned()],
        webhook_urls: vec![format!("http://127.0.0.1:{receiver_port}/jobs/v1/receiver")],
        webhook_secret: Some(SECRET.to_owned()),
        time_scale: TimeScale::new(1.0).unwrap(),
        ..EmulatorConfig::default()
    }
}

/// Makes folder `mac` a fake Mac: its `seed.json` (the fake `anka`'s disk, registry and local
/// templates) and an `anka` wrapper that runs `anka_link` (a symlink named `anka` to a daemon
/// binary, which then acts as the fake `anka`) with `FAKE_ANKA_HOME` set to `mac`. Returns
/// the wrapper, the `anka_path` of a handler on this Mac.
pub fn fake_mac(mac: &Path, anka_link: &Path, seed: &serde_json::Value) -> PathBuf {
    std::fs::create_dir_all(mac).unwrap();
    std::fs::write(mac.join("seed.json"), seed.to_string()).unwrap();
    let wrapper = mac.join("anka");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nFAKE_ANKA_HOME='{}' exec '{}' \"$@\"\n",
            mac.display(),
            anka_link.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

/// How a fleet is built.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// Handler hosts.
    pub hosts: usize,
    /// Lease length, short so a killed host's jobs come back soon.
    pub lease_seconds: u64,
    /// Scale of the fake Macs' timings.
    pub anka_time_scale: f64,
    /// Whether the template is already on every host (no pull).
    pub template_local: bool,
    /// Extra keys for every handler's plugin entry, one `key: value` per line (say
    /// `pull_timeout_seconds: 3`); empty adds none. A key the fleet sets itself must not repeat.
    pub handler_config: String,
    /// Size of the template in the fake registry (its download size and what it occupies).
    pub template_bytes: u64,
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self {
            hosts: 3,
            lease_seconds: 6,
            anka_time_scale: 0.01,
            template_local: true,
            handler_config: String::new(),
            template_bytes: 20_000_000_000,
        }
    }
}

/// One daemon process.
pub struct Daemon {
    /// The plugin name (the host id, for handlers).
    pub name: String,
    /// Its config file.
    pub config: PathBuf,
    /// Its `HOME` (pid file, drain file).
    pub home: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends a signal by number (2 = SIGINT, 3 = SIGQUIT, 9 = SIGKILL, 15 = SIGTERM).
    pub fn signal(&self, signal: i32) {
        if let Some(c) = &self.child {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(c.id().to_string())
                .status()
                .unwrap();
            assert!(status.success(), "kill -{signal} {}", c.id());
        }
    }

    /// Waits for the process to exit; its exit code (`None` when killed by a signal).
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("started");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}; log:\n{}",
                self.name,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the daemon wrote its pid file, which it does once its signal handlers are
    /// installed: a signal sent before then would kill it instead of stopping it.
    pub fn wait_ready(&mut self) {
        let pid_file = self.home.join(".config/anklet/anklet.pid");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !pid_file.exists() {
            assert!(
                self.is_running() && Instant::now() < deadline,
                "{} did not start:\n{}",
                self.name,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines of its log (stdout and stderr).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A receiver, handler hosts, Redis and the emulator.
pub struct Fleet {
    /// The GitHub emulator.
    pub emulator: EmulatorHandle,
    /// The shared Redis.
    pub redis: RedisServer,
    /// The receiver process.
    pub receiver: Daemon,
    /// The handler processes.
    pub hosts: Vec<Daemon>,
    bin: PathBuf,
    dir: tempfile::TempDir,
    options: FleetOptions,
    receiver_port: u16,
    /// Lines every handler's plugin entry gets on top of `options.handler_config` (the GitHub
    /// setup's App credentials and host keys), so a restarted host gets them too.
    host_extra: String,
}

impl Fleet {
    /// Starts Redis (append-only, so a restart loses nothing), the emulator, the receiver and
    /// the hosts, and waits until the receiver answers.
    pub fn start(bin: &Path, options: FleetOptions) -> Self {
        Self::start_github(bin, options, &GithubSetup::default())
    }

    /// The id of the emulator's webhook (what `hook_id` names), read through its REST API.
    pub fn hook_id(&self) -> u64 {
        let mut resp = ureq::get(format!(
            "{}/repos/{OWNER}/{REPO}/hooks",
            self.emulator.base_url()
        ))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .header("User-Agent", "anklet-tests")
        .call()
        .unwrap();
        let hooks: serde_json::Value = resp.body_mut().read_json().unwrap();
        hooks[0]["id"].as_u64().expect("the emulator has a hook")
    }

    fn globals(&self) -> String {
        format!(
            "global_database_url: 127.0.0.1\nglobal_database_port: {}\n",
            self.redis.port()
        )
    }

    /// The folder of host `i`'s fake Mac.
    pub fn mac_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("mac-{i}"))
    }

    fn new_host(&self, i: usize) -> Daemon {
        let mac = self.mac_dir(i);
        if !mac.exists() {
            let local = if self.options.template_local {
                serde_json::json!([{ "uuid": TEMPLATE, "tag": "v1" }])
            } else {
                serde_json::json!([])
            };
            let seed = serde_json::json!({
                "disk_total": 200_000_000_000u64,
                "time_scale": self.options.anka_time_scale,
                "registry": [{ "uuid": TEMPLATE, "name": "macos-behaviour", "latest": "v1",
                               "tags": { "v1": { "size": self.options.template_bytes } } }],
                "local": local,
            });
            fake_mac(&mac, &self.dir.path().join("bin").join("anka"), &seed);
        }
        let name = format!("host-{i}");
        let yaml = format!(
            "{}plugins:\n  - name: {name}\n    plugin: github\n    owner: {OWNER}\n    repo: {REPO}\n    token: {TOKEN}\n    github_api_url: {}\n    anka_path: {}\n    lease_seconds: {}\n    registration_timeout_seconds: 20\n    job_poll_interval_seconds: 2\n    vm_health_interval_seconds: 2\n",
            self.globals(),
            self.emulator.base_url(),
            mac.join("anka").display(),
            self.options.lease_seconds,
        );
        let mut yaml = yaml;
        for line in self.options.handler_config.lines() {
            if !line.trim().is_empty() {
                yaml.push_str(&format!("    {}\n", line.trim()));
            }
        }
        yaml.push_str(&self.host_extra);
        self.spawn(&name, &yaml)
    }

    /// Starts host `i` again (after it was killed or stopped), with the same name and Mac.
    pub fn restart_host(&mut self, i: usize) {
        self.hosts[i] = self.new_host(i);
    }

    fn spawn(&self, name: &str, yaml: &str) -> Daemon {
        let home = self.dir.path().join("home").join(name);
        std::fs::create_dir_all(&home).unwrap();
        let config = self.dir.path().join(format!("{name}.yml"));
        std::fs::write(&config, yaml).unwrap();
        let log = self.dir.path().join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&config)
            .env("HOME", &home)
            .env("LOG_LEVEL", "debug")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut daemon = Daemon {
            name: name.to_owned(),
            config,
            home,
            child: Some(child),
            log,
        };
        daemon.wait_ready();
        daemon
    }

    fn wait_receiver(&mut self) {
        let url = format!("http://127.0.0.1:{}/healthcheck", self.receiver_port);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if ureq::get(&url).call().is_ok() {
                return;
            }
            assert!(
                self.receiver.is_running(),
                "the receiver exited:\n{}",
                self.receiver.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the receiver did not answer:\n{}", self.receiver.log_tail());
    }

    /// Queues `n` jobs that each run `duration_ms` once a runner has them.
    pub fn create_jobs(&self, n: usize, duration_ms: u64) -> Vec<u64> {
        let labels = [
            "self-hosted".to_owned(),
            format!("anka-template:{TEMPLATE}"),
            "anka-template-tag:v1".to_owned(),
        ];
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        (0..n)
            .map(|_| {
                let mut spec = JobSpec::new(OWNER, REPO, &labels);
                spec.duration_ms = duration_ms;
                self.emulator.create_job(spec).unwrap().id
            })
            .collect()
    }

    /// Waits until every job in `ids` completed; panics with the logs after `timeout`.
    pub fn wait_completed(&self, ids: &[u64], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let done = ids
                .iter()
                .filter(|id| {
                    self.emulator
                        .job(**id)
                        .is_some_and(|j| j.completed_at_ms.is_some())
                })
                .count();
            if done == ids.len() {
                return;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .hosts
                    .iter()
                    .map(|h| format!("--- {}:\n{}", h.name, h.log_tail()))
                    .collect();
                panic!(
                    "{done}/{} jobs completed within {timeout:?}; counts {:?}\n{}",
                    ids.len(),
                    self.emulator.counts(),
                    logs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every job in `ids` completed with `success`, and none was run by two runners.
    pub fn assert_completed_once(&self, ids: &[u64]) {
        for id in ids {
            let job = self.emulator.job(*id).expect("the emulator knows the job");
            assert_eq!(
                job.conclusion.as_deref(),
                Some("success"),
                "job {id}: {job:?}"
            );
        }
    }

    /// VMs of ours (named `anklet-vm-...`) host `i`'s fake Mac still has.
    pub fn vms_left(&self, i: usize) -> Vec<String> {
        let out = Command::new(self.mac_dir(i).join("anka"))
            .args(["-j", "list"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let v: serde_json::Value = serde_json::from_str(last).unwrap_or_default();
        v["body"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["name"].as_str())
                    .filter(|n| n.starts_with("anklet-vm-"))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until no host has a VM of ours and GitHub lists no runner.
    pub fn wait_clean(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let vms: Vec<String> = (0..self.hosts.len())
                .flat_map(|i| self.vms_left(i))
                .collect();
            let runners = self.emulator.runners();
            if vms.is_empty() && runners.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "left behind: VMs {vms:?}, runners {:?}",
                runners.iter().map(|r| &r.name).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Fault injection, raw fake-Mac access and the store, for the VM fault suite
/// ([`crate::vm_faults`]).
impl Fleet {
    /// Writes host `i`'s fake-Mac fault rules (`faults.json`, which the fake re-reads on every
    /// call; see `tests/fake-anka/README.md`); `[]` clears them.
    pub fn set_faults(&self, i: usize, rules: &serde_json::Value) {
        let dir = self.mac_dir(i);
        let tmp = dir.join("faults.json.tmp");
        std::fs::write(&tmp, rules.to_string()).unwrap();
        std::fs::rename(&tmp, dir.join("faults.json")).unwrap();
    }

    /// Runs the fake `anka -j <args>` on host `i`'s Mac (not through a daemon) and returns its
    /// JSON envelope (`Null` when the last line is not JSON).
    pub fn anka(&self, i: usize, args: &[&str]) -> serde_json::Value {
        let out = Command::new(self.mac_dir(i).join("anka"))
            .arg("-j")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        serde_json::from_str(last).unwrap_or_default()
    }

    /// Every VM on host `i`'s fake Mac, ours or not.
    pub fn vm_names(&self, i: usize) -> Vec<String> {
        self.anka(i, &["list"])["body"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["name"].as_str())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Live processes of host `i`'s fake Mac (`anka` calls, their `sleep` children, emulated
    /// runners, crash watchers): every process whose environment names the Mac's
    /// `FAKE_ANKA_HOME`, as pid and command line. The daemons themselves are not among them.
    pub fn mac_processes(&self, i: usize) -> Vec<(u32, String)> {
        let needle = format!("FAKE_ANKA_HOME={}", self.mac_dir(i).display());
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
                continue;
            };
            if !environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
                continue;
            }
            // A zombie (exited, not yet reaped) is no live process.
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            if stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            {
                continue;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            found.push((pid, cmdline.join(" ")));
        }
        found
    }

    /// SIGKILLs every live process of host `i`'s fake Mac (what a SIGKILLed daemon's `anka`
    /// calls leave behind); returns their command lines.
    pub fn kill_mac_processes(&self, i: usize) -> Vec<String> {
        let procs = self.mac_processes(i);
        for (pid, _) in &procs {
            let _ = Command::new("kill")
                .arg("-9")
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
        }
        procs.into_iter().map(|(_, c)| c).collect()
    }

    /// The daemons' queue (the plugin owner's, under the default prefix) on the fleet's Redis,
    /// read through core's own transactions.
    pub fn store(&self) -> QueueReader {
        QueueReader::new(self.redis.port(), OWNER)
    }
}

/// A read-only view of a queue on a loopback Redis, driven by core's transactions
/// ([`anklet_core::queue::txn::Store`]) over the shared Redis layout and scripts, so the test
/// reads exactly what the daemons wrote. Writes are refused.
pub struct QueueReader {
    store: anklet_core::queue::txn::Store<RespBackend>,
}

impl QueueReader {
    /// The queue `queue` (under [`DEFAULT_PREFIX`](anklet_core::queue::redis_layout::DEFAULT_PREFIX))
    /// on the Redis at `127.0.0.1:port`.
    pub fn new(port: u16, queue: &str) -> Self {
        use anklet_core::queue::redis_layout::{DEFAULT_PREFIX, RedisLayout};
        let backend = RespBackend {
            port,
            layout: RedisLayout::new(DEFAULT_PREFIX, queue).unwrap(),
        };
        Self {
            store: anklet_core::queue::txn::Store::new(backend, Default::default()),
        }
    }

    fn run(
        &self,
        op: anklet_core::queue::txn::Op,
    ) -> Result<anklet_core::queue::txn::Reply, String> {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let now = anklet_core::time::Timestamp::from_millis(u64::try_from(ms).unwrap());
        self.store.run(now, op).map_err(|e| e.to_string())
    }

    /// `Op::Get`: the job's record, if the queue holds one (queued, claimed or dead).
    pub fn get(&self, job: u64) -> Result<Option<anklet_core::queue::JobRecord>, String> {
        use anklet_core::queue::txn::{Op, Reply};
        match self.run(Op::Get(anklet_core::ids::JobId(job)))? {
            Reply::Record(r) => Ok(r),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    /// `Op::Finished`: how the job left the queue for good, if it did.
    pub fn finished(&self, job: u64) -> Result<Option<anklet_core::queue::Finished>, String> {
        use anklet_core::queue::txn::{Op, Reply};
        match self.run(Op::Finished(anklet_core::ids::JobId(job)))? {
            Reply::Finished(f) => Ok(f),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    /// `Op::List`: the whole queue.
    pub fn list(&self) -> Result<anklet_core::queue::QueueListing, String> {
        use anklet_core::queue::txn::{Op, Reply};
        match self.run(Op::List)? {
            Reply::Listing(l) => Ok(l),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }
}

/// A [`Backend`](anklet_core::queue::txn::Backend) speaking plain RESP to Redis: each read
/// is one `EVAL` of core's read script on a fresh loopback connection; commits are refused.
struct RespBackend {
    port: u16,
    layout: anklet_core::queue::redis_layout::RedisLayout,
}

impl RespBackend {
    fn eval(
        &self,
        call: &anklet_core::queue::redis_layout::ScriptCall,
    ) -> std::io::Result<Vec<Option<Vec<u8>>>> {
        use std::io::{BufRead, BufReader, Read as _, Write as _};
        let mut args: Vec<&[u8]> = vec![b"EVAL", call.script.source().as_bytes()];
        let nkeys = call.keys.len().to_string();
        args.push(nkeys.as_bytes());
        args.extend(call.keys.iter().map(|k| k.as_bytes()));
        args.extend(call.args.iter().map(|a| a.as_bytes()));
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in &args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        let stream = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        (&stream).write_all(&req)?;
        let mut r = BufReader::new(stream);
        let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
        let mut line = String::new();
        let mut read_line = |r: &mut BufReader<std::net::TcpStream>| -> std::io::Result<String> {
            line.clear();
            r.read_line(&mut line)?;
            Ok(line.trim_end_matches(['\r', '\n']).to_owned())
        };
        let head = read_line(&mut r)?;
        let n: usize = match head.split_at_checked(1) {
            Some(("*", n)) => n.parse().map_err(|_| bad(head.clone()))?,
            _ => return Err(bad(format!("redis answered {head}"))),
        };
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let item = read_line(&mut r)?;
            match item.split_at_checked(1) {
                Some(("$", "-1")) => out.push(None),
                Some(("$", len)) => {
                    let len: usize = len.parse().map_err(|_| bad(item.clone()))?;
                    let mut buf = vec![0; len + 2];
                    r.read_exact(&mut buf)?;
                    buf.truncate(len);
                    out.push(Some(buf));
                }
                Some((":", v)) => out.push(Some(v.as_bytes().to_vec())),
                _ => return Err(bad(format!("unexpected item {item}"))),
            }
        }
        Ok(out)
    }
}

impl anklet_core::queue::txn::Backend for RespBackend {
    type Error = std::io::Error;

    fn read(
        &mut self,
        read: &anklet_core::queue::txn::Read,
    ) -> Result<anklet_core::queue::txn::Fetched, Self::Error> {
        use anklet_core::queue::redis_layout::{decode_read, encode_read};
        let reply = self.eval(&encode_read(&self.layout, read))?;
        decode_read(read, reply)
            .map(|d| d.fetched)
            .map_err(std::io::Error::other)
    }

    fn commit(&mut self, _: &anklet_core::queue::txn::Commit) -> Result<bool, Self::Error> {
        Err(std::io::Error::other("the test's queue view is read only"))
    }
}

// ---------------------------------------------------------------------------------------------
// GitHub suite helpers (issue 6, `crate::github_suite`): an App-authenticated or two-token
// fleet, every daemon's log, and the Redis queue as raw records. Additions only.
// ---------------------------------------------------------------------------------------------

/// The second PAT the emulator of [`Fleet::start_github`] accepts: the receiver's when
/// [`GithubSetup::receiver_pat`] is set, so the call log tells its calls from the handlers'.
pub const RECEIVER_TOKEN: &str = "ghp_github_suite_receiver_token";

/// The id of the test GitHub App (key pair `tests/fixtures/github/test-app-key*.pem`).
pub const APP_ID: u64 = 4242;

/// The test App's private key (PKCS#1 PEM), which the daemons read from this path.
pub const APP_PRIVATE_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/github/test-app-key.pem"
);

/// The test App's public key, which the emulator checks JWTs with.
pub const APP_PUBLIC_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/github/test-app-key.public.pem"
);

/// How [`Fleet::start_github`] differs from [`Fleet::start`].
#[derive(Clone, Debug, Default)]
pub struct GithubSetup {
    /// With a lifetime, every daemon authenticates as the test GitHub App (installation looked
    /// up, tokens fetched and refreshed) and the emulator's installation tokens live this long
    /// (GitHub: 1 h); `None` keeps the PAT.
    pub app_token_ttl: Option<Duration>,
    /// The receiver uses [`RECEIVER_TOKEN`] instead of [`TOKEN`].
    pub receiver_pat: bool,
    /// Extra `key: value` lines for the receiver's plugin entry (keys the fleet sets must not
    /// repeat).
    pub receiver_config: String,
    /// Extra `key: value` lines for every handler's plugin entry (say `max_vms: 1`).
    pub host_config: String,
}

impl GithubSetup {
    fn app_lines(&self) -> String {
        if self.app_token_ttl.is_some() {
            format!("    private_key: {APP_PRIVATE_KEY}\n    app_id: {APP_ID}\n")
        } else {
            String::new()
        }
    }

    fn host_lines(&self) -> String {
        let mut lines = self.app_lines();
        for line in self.host_config.lines().filter(|l| !l.trim().is_empty()) {
            lines.push_str(&format!("    {}\n", line.trim()));
        }
        lines
    }
}

impl Fleet {
    /// [`Fleet::start`] with the changes of `setup`: the emulator also accepts
    /// [`RECEIVER_TOKEN`] and, with an App, checks the test App's JWTs.
    pub fn start_github(bin: &Path, options: FleetOptions, setup: &GithubSetup) -> Self {
        let redis = must_start(ServerOptions {
            aof: true,
            ..ServerOptions::default()
        });
        let dir = tempfile::Builder::new()
            .prefix("anklet-fleet-")
            .tempdir()
            .unwrap();
        let receiver_port = crate::redis_server::free_port().unwrap();
        let mut config = emulator_config(receiver_port);
        if let Some(ttl) = setup.app_token_ttl {
            config.app = Some(github_emulator::AppConfig {
                app_id: APP_ID,
                client_id: None,
                public_key_pem: std::fs::read_to_string(APP_PUBLIC_KEY).unwrap(),
                installations: Vec::new(),
            });
            config.installation_token_ttl = ttl;
        }
        let emulator = Emulator::start(config).unwrap();
        let link = dir.path().join("bin").join("anka");
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(bin, &link).unwrap();
        let mut fleet = Self {
            emulator,
            redis,
            receiver: Daemon {
                name: String::new(),
                config: PathBuf::new(),
                home: PathBuf::new(),
                child: None,
                log: PathBuf::new(),
            },
            hosts: Vec::new(),
            bin: bin.to_owned(),
            dir,
            options,
            receiver_port,
            host_extra: setup.host_lines(),
        };
        let token = if setup.receiver_pat {
            RECEIVER_TOKEN
        } else {
            TOKEN
        };
        let mut receiver_yaml = format!(
            "{}plugins:\n  - name: receiver\n    plugin: github_receiver\n    port: \"{receiver_port}\"\n    secret: {SECRET}\n    owner: {OWNER}\n    repo: {REPO}\n    token: {token}\n    github_api_url: {}\n    hook_id: {}\n    redeliver_interval_seconds: 2\n{}",
            fleet.globals(),
            fleet.emulator.base_url(),
            fleet.hook_id(),
            setup.app_lines(),
        );
        for line in setup
            .receiver_config
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            receiver_yaml.push_str(&format!("    {}\n", line.trim()));
        }
        fleet.receiver = fleet.spawn("receiver", &receiver_yaml);
        fleet.wait_receiver();
        for i in 0..fleet.options.hosts {
            let host = fleet.new_host(i);
            fleet.hosts.push(host);
        }
        fleet
    }

    /// Every daemon's whole log (receiver first), each under a `--- <name>` line.
    pub fn all_logs(&self) -> String {
        std::iter::once(&self.receiver)
            .chain(&self.hosts)
            .map(|d| format!("--- {}\n{}", d.name, d.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Ids of the jobs queued (not claimed, not dead) in the fleet's Redis queue, read with
    /// `redis-cli` from the shared layout (`anklet:{<owner>}:queued`).
    pub fn queued_in_store(&self) -> Vec<u64> {
        let key = format!("anklet:{{{OWNER}}}:queued");
        let out = self.redis.cli(&["ZRANGE", &key, "0", "-1"]).unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Job `id`'s record in the fleet's Redis queue as JSON (`None` once it left the queue):
    /// status, place, `history` of reasons.
    pub fn record_in_store(&self, id: u64) -> Option<serde_json::Value> {
        let key = format!("anklet:{{{OWNER}}}:jobs");
        let member = format!("{id:020}");
        let out = self.redis.cli(&["HGET", &key, &member]).ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }
}
