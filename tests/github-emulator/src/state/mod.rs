//! The emulated GitHub's memory, behind one lock: the `State` type, what its operations hand
//! back for outside the lock (webhooks to send, timers to set), and the ids it gives out. The
//! rules live in the submodules, one concern each.

mod credentials;
mod hooks;
mod jobs;
mod runner_service;
mod runners;

use crate::auth::{App, Principal};
use crate::calls::CallLog;
use crate::config::{EmulatorConfig, JobSpec};
use crate::deliveries::{Delivery, Hook};
use crate::faults::Faults;
use crate::ids;
use crate::jobs::{Job, JobStatus, labels_match};
use crate::payloads::{self, RepoIds, Templates, Urls};
use crate::rate::RateBuckets;
use crate::runners::{Runner, Scope, job_named_in};
use crate::time::TimeScale;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Something to do once the lock is released.
#[derive(Debug)]
pub enum Outbound {
    /// Send a webhook to every hook (or to one).
    Webhook(WebhookEvent),
    /// Fire `action` after `after`.
    Timer {
        /// Delay.
        after: Duration,
        /// What to do.
        action: TimerAction,
    },
}

/// A webhook event before it is turned into deliveries.
#[derive(Clone, Debug)]
pub struct WebhookEvent {
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's `action`.
    pub action: Option<String>,
    /// The payload.
    pub payload: Value,
    /// The repository id, for the deliveries API.
    pub repository_id: Option<u64>,
    /// The installation, for app deliveries.
    pub installation_id: Option<u64>,
    /// `X-GitHub-Hook-Installation-Target-Type` and `-ID`.
    pub target: (String, u64),
    /// Only this hook (pings).
    pub only_hook: Option<u64>,
}

/// Work the timer does later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerAction {
    /// The runner vanished mid-job: the job fails.
    FailVanished {
        /// The job.
        job_id: u64,
        /// The runner that had it.
        runner_id: u64,
    },
}

/// An error answer: status and GitHub's message.
pub type Refusal = (u16, String);

fn refuse(status: u16, msg: impl Into<String>) -> Refusal {
    (status, msg.into())
}

/// What kind of secret the emulator handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    /// An App installation access token (`ghs_...`).
    InstallationToken,
    /// A registration or remove token.
    RunnerToken,
    /// A runner's session token (in its `.credentials`).
    RunnerSession,
    /// A whole `encoded_jit_config`.
    JitConfig,
}

/// A secret value the emulator handed out, kept so tests can check that no daemon logs it.
/// Its `Debug` output redacts the value.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedSecret {
    /// What it is.
    pub kind: SecretKind,
    /// The value itself.
    pub value: String,
    /// When it was handed out (ms since the epoch).
    pub issued_at_ms: u64,
    /// When it stops working, for tokens that expire (as issued; a forced expiry through
    /// `expire_installation_tokens` is not reflected).
    pub expires_at_ms: Option<u64>,
}

impl std::fmt::Debug for IssuedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedSecret")
            .field("kind", &self.kind)
            .field("value", &"[redacted]")
            .field("issued_at_ms", &self.issued_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

#[derive(Debug)]
struct IssuedToken {
    token: String,
    scope: Scope,
    expires_ms: u64,
    remove: bool,
}

#[derive(Debug, Clone)]
struct Installation {
    id: u64,
    account: String,
    account_id: u64,
}

/// A freshly made runner with its secret session token.
pub struct NewRunner {
    /// The runner.
    pub runner: Runner,
    /// Its session token (secret).
    pub token: String,
}

/// A job handed to a runner.
#[derive(Clone, Debug)]
pub struct Assignment {
    /// The job.
    pub job_id: u64,
    /// Its run.
    pub run_id: u64,
    /// How long the runner runs it.
    pub duration_ms: u64,
}

/// Counts for observation.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Jobs queued.
    pub queued: usize,
    /// Jobs in progress.
    pub in_progress: usize,
    /// Jobs completed.
    pub completed: usize,
    /// Runners registered.
    pub runners: usize,
    /// Runners online.
    pub runners_online: usize,
    /// Delivery attempts recorded.
    pub deliveries: usize,
    /// Delivery attempts that failed.
    pub failed_deliveries: usize,
    /// Requests answered.
    pub calls: u64,
}

/// Everything the emulator remembers.
pub struct State {
    /// Payload templates.
    pub templates: Templates,
    /// Where the emulator is.
    pub urls: Urls,
    /// The app, if configured.
    pub app: Option<App>,
    pats: Vec<String>,
    scale: TimeScale,
    install_ttl: Duration,
    runner_token_ttl: Duration,
    vanished_delay: Duration,
    /// Primary limit per hour.
    pub rate_limit: u32,
    next_job_id: u64,
    next_run_id: u64,
    next_runner_id: u64,
    next_delivery_id: u64,
    next_hook_id: u64,
    next_installation_id: u64,
    next_account_id: u64,
    jobs: BTreeMap<u64, Job>,
    runners: BTreeMap<u64, Runner>,
    runner_secrets: HashMap<String, u64>,
    issued: Vec<IssuedToken>,
    install_tokens: HashMap<String, (u64, u64)>,
    installations: Vec<Installation>,
    repo_ids: HashMap<(String, String), u64>,
    account_ids: HashMap<String, u64>,
    /// Configured hooks.
    pub hooks: Vec<Hook>,
    /// Every delivery attempt.
    pub deliveries: Vec<Delivery>,
    /// Armed faults.
    pub faults: Faults,
    /// Rate buckets.
    pub rate: RateBuckets,
    /// The call log.
    pub calls: CallLog,
    /// Every secret handed out, oldest first (for tests; a few hundred bytes per job).
    pub issued_secrets: Vec<IssuedSecret>,
}

impl State {
    /// A fresh state for `config`, served at `urls`.
    pub fn new(
        config: &EmulatorConfig,
        urls: Urls,
        app: Option<App>,
    ) -> Result<Self, crate::Error> {
        let mut s = Self {
            templates: Templates::load()?,
            urls,
            app,
            pats: config.pats.clone(),
            scale: config.time_scale,
            install_ttl: config.installation_token_ttl,
            runner_token_ttl: config.runner_token_ttl,
            vanished_delay: config.vanished_job_failure_delay,
            rate_limit: config.rate_limit_per_hour,
            next_job_id: 14_541_957_942,
            next_run_id: 9_202_229_078,
            next_runner_id: 100,
            next_delivery_id: 90_000_000_001,
            next_hook_id: 109_948_940,
            next_installation_id: 50_000_001,
            next_account_id: 38_302_899,
            jobs: BTreeMap::new(),
            runners: BTreeMap::new(),
            runner_secrets: HashMap::new(),
            issued: Vec::new(),
            install_tokens: HashMap::new(),
            installations: Vec::new(),
            repo_ids: HashMap::new(),
            account_ids: HashMap::new(),
            hooks: Vec::new(),
            deliveries: Vec::new(),
            faults: Faults::default(),
            rate: RateBuckets::default(),
            calls: CallLog::new(config.max_call_log),
            issued_secrets: Vec::new(),
        };
        if let Some(app) = &config.app {
            for i in &app.installations {
                let account_id = s.account_id(&i.account);
                s.installations.push(Installation {
                    id: i.id,
                    account: i.account.clone(),
                    account_id,
                });
            }
        }
        Ok(s)
    }

    fn account_id(&mut self, account: &str) -> u64 {
        let key = account.to_ascii_lowercase();
        if let Some(id) = self.account_ids.get(&key) {
            return *id;
        }
        self.next_account_id += 1;
        self.account_ids.insert(key, self.next_account_id);
        self.next_account_id
    }

    fn repo_ids(&mut self, owner: &str, repo: &str) -> RepoIds {
        let owner_id = self.account_id(owner);
        let key = (owner.to_ascii_lowercase(), repo.to_ascii_lowercase());
        let next = 186_853_002 + self.repo_ids.len() as u64;
        let repo_id = *self.repo_ids.entry(key).or_insert(next);
        RepoIds { repo_id, owner_id }
    }

    /// Remembers a secret handed out (see [`IssuedSecret`]).
    pub fn record_secret(&mut self, kind: SecretKind, value: &str, expires_at_ms: Option<u64>) {
        self.issued_secrets.push(IssuedSecret {
            kind,
            value: value.to_owned(),
            issued_at_ms: crate::time::now_ms(),
            expires_at_ms,
        });
    }

    /// Gives the next delivery id.
    pub fn next_delivery_id(&mut self) -> u64 {
        let id = self.next_delivery_id;
        self.next_delivery_id += 1;
        id
    }

    /// Counts for observation.
    pub fn counts(&self) -> Counts {
        let by = |s: JobStatus| self.jobs.values().filter(|j| j.status == s).count();
        Counts {
            queued: by(JobStatus::Queued),
            in_progress: by(JobStatus::InProgress),
            completed: by(JobStatus::Completed),
            runners: self.runners.len(),
            runners_online: self.runners.values().filter(|r| r.online).count(),
            deliveries: self.deliveries.len(),
            failed_deliveries: self.deliveries.iter().filter(|d| !d.succeeded()).count(),
            calls: self.calls.total(),
        }
    }
}

/// `d` in whole milliseconds.
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
