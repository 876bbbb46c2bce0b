//! A client for the GitHub emulator's runner service (docs/emulators.md): open a session, poll for
//! a job, complete it, close the session. Every call carries the bearer token; none logs it.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use ureq::Agent;

use crate::runner::jit::RunnerConfig;

/// Why a call failed: transient (retry) or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// Connection refused, timeout, 5xx: try again.
    Transient(String),
    /// 4xx or a malformed answer: give up.
    Fatal(String),
}

/// A job the service assigned.
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    /// Job id.
    pub job_id: u64,
    /// Workflow run id.
    #[serde(default)]
    pub run_id: u64,
    /// How long the job runs (already scaled by the emulator).
    #[serde(default)]
    pub duration_ms: u64,
}

#[derive(Deserialize)]
struct Session {
    session_id: String,
}

/// A connection to the runner service for one runner.
pub struct Service {
    agent: Agent,
    base: String,
    auth: String,
}

/// An agent that returns 4xx/5xx as responses, with a bounded time per call.
pub fn agent() -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn transport(e: &ureq::Error) -> CallError {
    CallError::Transient(format!("runner service unreachable: {e}"))
}

fn status_error(what: &str, status: u16) -> CallError {
    if status >= 500 || status == 429 {
        CallError::Transient(format!("{what}: HTTP {status}"))
    } else {
        CallError::Fatal(format!("{what}: HTTP {status}"))
    }
}

impl Service {
    /// A client for `cfg.server_url` with `cfg.token`.
    pub fn new(cfg: &RunnerConfig) -> Self {
        Self {
            agent: agent(),
            base: cfg.server_url.trim_end_matches('/').to_string(),
            auth: format!("Bearer {}", cfg.token),
        }
    }

    /// `POST /sessions {"runner_id": N}` → the session id.
    pub fn open_session(&self, runner_id: u64) -> Result<String, CallError> {
        let mut resp = self
            .agent
            .post(format!("{}/sessions", self.base))
            .header("Authorization", &self.auth)
            .send_json(json!({ "runner_id": runner_id }))
            .map_err(|e| transport(&e))?;
        let status = resp.status().as_u16();
        if status != 200 && status != 201 {
            return Err(status_error("POST /sessions", status));
        }
        let s: Session = resp
            .body_mut()
            .read_json()
            .map_err(|e| CallError::Fatal(format!("POST /sessions: bad answer: {e}")))?;
        Ok(s.session_id)
    }

    /// `GET /sessions/{id}/job` → a job (200) or none yet (204).
    pub fn poll_job(&self, session: &str) -> Result<Option<Job>, CallError> {
        let mut resp = self
            .agent
            .get(format!("{}/sessions/{session}/job", self.base))
            .header("Authorization", &self.auth)
            .call()
            .map_err(|e| transport(&e))?;
        match resp.status().as_u16() {
            200 => resp
                .body_mut()
                .read_json()
                .map(Some)
                .map_err(|e| CallError::Fatal(format!("GET job: bad answer: {e}"))),
            204 => Ok(None),
            s => Err(status_error("GET /sessions/{id}/job", s)),
        }
    }

    /// `POST /jobs/{id}/complete {"conclusion": "success"}`.
    pub fn complete(&self, job_id: u64) -> Result<(), CallError> {
        let resp = self
            .agent
            .post(format!("{}/jobs/{job_id}/complete", self.base))
            .header("Authorization", &self.auth)
            .send_json(json!({ "conclusion": "success" }))
            .map_err(|e| transport(&e))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            s => Err(status_error("POST /jobs/{id}/complete", s)),
        }
    }

    /// `DELETE /sessions/{id}`: the runner goes offline.
    pub fn close_session(&self, session: &str) -> Result<(), CallError> {
        let resp = self
            .agent
            .delete(format!("{}/sessions/{session}", self.base))
            .header("Authorization", &self.auth)
            .call()
            .map_err(|e| transport(&e))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            s => Err(status_error("DELETE /sessions/{id}", s)),
        }
    }
}
