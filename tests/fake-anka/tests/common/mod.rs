//! Shared helpers for the fake-anka tests: a fresh `$FAKE_ANKA_HOME` with a seed, a way to run
//! `anka` in it, and the last-line envelope parser every driver must use.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

/// The template uuid most tests use.
pub const TPL: &str = "6c14r-macos-15";

/// One isolated fake host.
pub struct Fake {
    dir: TempDir,
}

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

impl Fake {
    /// A host with `seed` (merged over a default one-template registry and a 10 000-byte disk).
    pub fn with(seed: Value) -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut base = json!({
            "disk_total": 10_000,
            "time_scale": 0.001,
            "registry": [{"uuid": TPL, "name": "macos-15", "latest": "v2",
                          "tags": {"v1": {"size": 2_000}, "v2": {"size": 3_000, "cpu_cores": 6}}}]
        });
        if let (Some(b), Some(s)) = (base.as_object_mut(), seed.as_object()) {
            for (k, v) in s {
                b.insert(k.clone(), v.clone());
            }
        }
        std::fs::write(dir.path().join("seed.json"), base.to_string())?;
        Ok(Self { dir })
    }

    /// A host with the default seed.
    pub fn new() -> Result<Self, Box<dyn std::error::Error>> {
        Self::with(json!({}))
    }

    /// The state directory.
    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    /// A `Command` for `anka <args>` in this host.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin!("anka"));
        c.args(args)
            .env("FAKE_ANKA_HOME", self.dir.path())
            .env_remove("FAKE_ANKA_FAULTS")
            .env_remove("FAKE_ANKA_TIME_SCALE")
            .env_remove("FAKE_ANKA_SEED")
            .env_remove("ANKA_MACHINE_READABLE")
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// Runs `anka <args>` to completion.
    pub fn run(&self, args: &[&str]) -> Result<Output, Box<dyn std::error::Error>> {
        Ok(self.command(args).output()?)
    }

    /// Runs `anka -j <args>` and parses its envelope; returns (exit status, envelope).
    pub fn j(&self, args: &[&str]) -> Result<(i32, Value), Box<dyn std::error::Error>> {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        let out = self.run(&all)?;
        let env = envelope(&out)?;
        Ok((out.status.code().unwrap_or(-1), env))
    }

    /// Runs `anka -j <args>` and insists on an OK envelope; returns its body.
    pub fn ok(&self, args: &[&str]) -> Result<Value, Box<dyn std::error::Error>> {
        let (code, env) = self.j(args)?;
        if code != 0 || env["status"] != "OK" {
            return Err(format!("anka -j {args:?} failed: exit {code}, {env}").into());
        }
        Ok(env["body"].clone())
    }

    /// Writes `faults.json`.
    pub fn faults(&self, rules: Value) -> TestResult {
        std::fs::write(self.dir.path().join("faults.json"), rules.to_string())?;
        Ok(())
    }

    /// `anka __stats` body.
    pub fn stats(&self) -> Result<Value, Box<dyn std::error::Error>> {
        self.ok(&["__stats"])
    }

    /// Pulls the default template's latest tag and clones `names` from it.
    pub fn clones(&self, names: &[&str]) -> TestResult {
        self.ok(&["registry", "pull", "--shrink", TPL])?;
        for n in names {
            self.ok(&["clone", TPL, n])?;
        }
        Ok(())
    }

    /// A VM's guest home.
    pub fn vm_home(&self, vm: &str) -> PathBuf {
        self.dir.path().join("vms").join(vm).join("home")
    }

    /// The state file as JSON.
    pub fn state(&self) -> Result<Value, Box<dyn std::error::Error>> {
        Ok(serde_json::from_str(&std::fs::read_to_string(
            self.dir.path().join("state.json"),
        )?)?)
    }
}

/// The last-line rule: stdout ends with one compact JSON line and no newline; returns it parsed.
pub fn envelope(out: &Output) -> Result<Value, Box<dyn std::error::Error>> {
    let text = String::from_utf8(out.stdout.clone())?;
    if text.ends_with('\n') {
        return Err(format!("output ends with a newline: {text:?}").into());
    }
    let last = text.rsplit('\n').next().unwrap_or("");
    let v: Value =
        serde_json::from_str(last).map_err(|e| format!("last line is not JSON ({e}): {last:?}"))?;
    for key in ["status", "code", "body", "message"] {
        if v.get(key).is_none() {
            return Err(format!("envelope lacks {key}: {last}").into());
        }
    }
    if (v["status"] == "ERROR") != v.get("exception_type").is_some() {
        return Err(format!("exception_type must be present exactly on ERROR: {last}").into());
    }
    Ok(v)
}

/// Waits until `f` holds, up to `limit`.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// True if the process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Kills and reaps a child, ignoring errors (cleanup).
pub fn reap(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}
