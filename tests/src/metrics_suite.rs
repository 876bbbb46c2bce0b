//! The metrics behaviour both daemons' servers must show on a live endpoint: the standard
//! exposition at `/metrics` passes `promtool check metrics` (Debian package `prometheus`), the
//! Anklet-format text at `/metrics/v1?format=prometheus` at least parses, the JSON is Anklet's
//! export, and Anklet's routes answer as Anklet's do. A missing `promtool` fails the test
//! (with the install hint), it never skips.

use std::io::Write;
use std::process::{Command, Stdio};

/// What `promtool check metrics` said about a text.
#[derive(Debug)]
pub struct PromtoolVerdict {
    /// Exit code (0: valid and lint-clean; 3: valid with lint problems; 1: not parseable).
    pub code: Option<i32>,
    /// stdout and stderr together.
    pub output: String,
}

impl PromtoolVerdict {
    /// Valid and lint-clean.
    pub fn passed(&self) -> bool {
        self.code == Some(0)
    }

    /// Parsed (lint problems allowed).
    pub fn parsed(&self) -> bool {
        matches!(self.code, Some(0 | 3)) && !self.output.contains("parsing error")
    }
}

/// Runs `promtool check metrics` on `text`; panics when promtool is not installed.
pub fn promtool_check(text: &str) -> PromtoolVerdict {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!(
            "promtool is needed for this test and could not run ({e}): apt-get install -y prometheus (scripts/test.sh installs it)"
        ),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("cannot feed promtool: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("promtool did not finish: {e}"));
    PromtoolVerdict {
        code: out.status.code(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// GETs `path` on `base`: status, content type and body.
pub fn get(base: &str, path: &str) -> (u16, String, String) {
    let mut resp = crate::receiver_suite::agent()
        .get(format!("{base}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {base}{path}: {e}"));
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    (status, content_type, body)
}

/// The checks on a live per-process endpoint whose registry saw `handlers` handler plugins
/// run at least one job each.
pub fn live_endpoint(base: &str, handlers: &[&str]) {
    let (status, content_type, text) = get(base, "/metrics");
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let verdict = promtool_check(&text);
    assert!(
        verdict.passed(),
        "promtool check metrics refused /metrics: {verdict:?}\n{text}"
    );
    for family in [
        "anklet_jobs_claimed_total",
        "anklet_job_queued_to_claimed_seconds_bucket",
        "anklet_job_claimed_to_vm_ready_seconds_bucket",
        "anklet_job_vm_ready_to_registered_seconds_bucket",
        "anklet_job_registered_to_in_progress_seconds_bucket",
        "anklet_job_duration_seconds_bucket",
        "anklet_webhooks_accepted_total",
    ] {
        assert!(text.contains(family), "{family} missing from\n{text}");
    }

    let (status, _, anklet) = get(base, "/metrics/v1?format=prometheus");
    assert_eq!(status, 200);
    let verdict = promtool_check(&anklet);
    assert!(
        verdict.parsed(),
        "Anklet-format text does not parse: {verdict:?}\n{anklet}"
    );
    assert!(anklet.contains("plugin_total_ran_vms{"), "{anklet}");

    let (status, content_type, json) = get(base, "/metrics/v1");
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let names: Vec<&str> = v["plugins"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["Name"].as_str()).collect())
        .unwrap_or_default();
    for h in handlers {
        assert!(names.contains(h), "{h} not in {names:?}");
    }
    for key in ["last_update", "total_running_vms", "host_cpu_count"] {
        assert!(v.get(key).is_some(), "{key} missing from {json}");
    }
    assert_eq!(get(base, "/metrics/v1?format=json").0, 200);
    assert_eq!(get(base, "/metrics/v1?format=xml").0, 400);
    assert_eq!(get(base, "/healthcheck").2, "ok");
}
