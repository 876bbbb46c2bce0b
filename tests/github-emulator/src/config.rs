//! What an emulator is started with: where to listen, where to send webhooks, which
//! credentials it accepts, and the limits and delays that shape its behaviour.

use crate::time::TimeScale;
use std::net::SocketAddr;
use std::time::Duration;

/// A GitHub App whose JWTs the emulator accepts for the app endpoints.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// The numeric app id (accepted as the JWT `iss`, as GitHub does).
    pub app_id: u64,
    /// The client id (`Iv1...`), also accepted as `iss` (GitHub's recommended form).
    pub client_id: Option<String>,
    /// The app's RSA public key in PEM, to verify RS256 JWTs.
    pub public_key_pem: String,
    /// Installations known up front; accounts not listed get one on first lookup.
    pub installations: Vec<InstallationConfig>,
}

/// One installation of the app: its id and the account (user or org login) it is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallationConfig {
    /// `installation.id`.
    pub id: u64,
    /// The account login the installation belongs to.
    pub account: String,
}

/// Everything an emulator needs; [`EmulatorConfig::default`] listens on an ephemeral port of
/// 127.0.0.1 with no credentials (set `pats` or `app`, every REST call needs one). Its `Debug`
/// output redacts the PATs and the webhook secret.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Where to listen (loopback by default: the emulator has no TLS and a control API).
    pub listen: SocketAddr,
    /// Webhook receivers: one hook per URL, each gets every event.
    pub webhook_urls: Vec<String>,
    /// The hooks' secret; `None` sends no `X-Hub-Signature-256` (as GitHub does).
    pub webhook_secret: Option<String>,
    /// Personal access tokens accepted as `Bearer`/`token` credentials.
    pub pats: Vec<String>,
    /// The GitHub App, if app authentication should work.
    pub app: Option<AppConfig>,
    /// Scales token lifetimes, job durations and the vanished-runner delay.
    pub time_scale: TimeScale,
    /// Installation token lifetime before scaling (GitHub: 1 h).
    pub installation_token_ttl: Duration,
    /// Registration/remove token lifetime before scaling (GitHub: 1 h).
    pub runner_token_ttl: Duration,
    /// How long after its runner vanished a running job fails, before scaling.
    pub vanished_job_failure_delay: Duration,
    /// Primary rate limit per credential per hour (GitHub: 5,000).
    pub rate_limit_per_hour: u32,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Request-handling threads.
    pub worker_threads: usize,
    /// Timeout of one webhook delivery (GitHub gives receivers 10 s).
    pub webhook_timeout: Duration,
    /// Send a `ping` to every configured hook at start.
    pub ping_on_start: bool,
    /// Calls kept in the call log (oldest dropped first).
    pub max_call_log: usize,
}

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("listen", &self.listen)
            .field("webhook_urls", &self.webhook_urls)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("pats", &format!("[{} redacted]", self.pats.len()))
            .field("app", &self.app)
            .field("time_scale", &self.time_scale)
            .field("installation_token_ttl", &self.installation_token_ttl)
            .field("runner_token_ttl", &self.runner_token_ttl)
            .field(
                "vanished_job_failure_delay",
                &self.vanished_job_failure_delay,
            )
            .field("rate_limit_per_hour", &self.rate_limit_per_hour)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("worker_threads", &self.worker_threads)
            .field("webhook_timeout", &self.webhook_timeout)
            .field("ping_on_start", &self.ping_on_start)
            .field("max_call_log", &self.max_call_log)
            .finish()
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            webhook_urls: Vec::new(),
            webhook_secret: None,
            pats: Vec::new(),
            app: None,
            time_scale: TimeScale::default(),
            installation_token_ttl: Duration::from_secs(3600),
            runner_token_ttl: Duration::from_secs(3600),
            vanished_job_failure_delay: Duration::from_secs(60),
            rate_limit_per_hour: 5000,
            max_body_bytes: 1024 * 1024,
            worker_threads: 8,
            webhook_timeout: Duration::from_secs(10),
            ping_on_start: true,
            max_call_log: 10_000,
        }
    }
}

/// A workflow job to queue, as a workflow run would create it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobSpec {
    /// Repository owner (user or org login).
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// The job's `runs-on` labels.
    pub labels: Vec<String>,
    /// The workflow run id; a new one is chosen when absent.
    #[serde(default)]
    pub run_id: Option<u64>,
    /// How long the job runs once a runner has it, before scaling.
    #[serde(default = "default_duration_ms")]
    pub duration_ms: u64,
    /// The job's name.
    #[serde(default)]
    pub name: Option<String>,
}

fn default_duration_ms() -> u64 {
    1000
}

impl JobSpec {
    /// A job of `owner/repo` with `labels` that runs for one second.
    pub fn new(owner: &str, repo: &str, labels: &[&str]) -> Self {
        Self {
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            run_id: None,
            duration_ms: default_duration_ms(),
            name: None,
        }
    }

    /// The same job in run `run_id`.
    pub fn run_id(mut self, run_id: u64) -> Self {
        self.run_id = Some(run_id);
        self
    }

    /// The same job with another run time.
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_credentials() {
        let c = EmulatorConfig {
            pats: vec!["ghp_secretvalue".into()],
            webhook_secret: Some("hook-secret-value".into()),
            ..EmulatorConfig::default()
        };
        let d = format!("{c:?}");
        assert!(!d.contains("ghp_secretvalue") && !d.contains("hook-secret-value"));
        assert!(d.contains("[1 redacted]"));
    }
}
