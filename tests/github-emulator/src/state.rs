//! The emulated GitHub's memory and its rules: jobs, runners, credentials, installations,
//! hooks, deliveries, faults and rate buckets, behind one lock. Operations change the state and
//! return what must happen outside the lock (webhooks to send, timers to set).

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

    // ---- ids -------------------------------------------------------------------------

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

    /// Gives the next delivery id.
    pub fn next_delivery_id(&mut self) -> u64 {
        let id = self.next_delivery_id;
        self.next_delivery_id += 1;
        id
    }

    // ---- credentials -----------------------------------------------------------------

    /// Who `token` is (a PAT or a live installation token); `None` when unknown or expired.
    pub fn principal_for(&self, token: &str, now_ms: u64) -> Option<Principal> {
        if let Some(index) = self.pats.iter().position(|p| p == token) {
            return Some(Principal::Pat { index });
        }
        match self.install_tokens.get(token) {
            Some((id, exp)) if now_ms < *exp => Some(Principal::Installation { id: *id }),
            _ => None,
        }
    }

    /// Whether `p` may act on `owner`'s resources (an installation only on its account).
    pub fn may_access(&self, p: &Principal, owner: &str) -> bool {
        match p {
            Principal::Installation { id } => self
                .installations
                .iter()
                .any(|i| i.id == *id && i.account.eq_ignore_ascii_case(owner)),
            Principal::Pat { .. } => true,
            Principal::App | Principal::Runner { .. } => false,
        }
    }

    /// The installation on `account`, made on first lookup (when an app is configured).
    pub fn installation_for(&mut self, account: &str) -> Option<u64> {
        self.app.as_ref()?;
        if let Some(i) = self
            .installations
            .iter()
            .find(|i| i.account.eq_ignore_ascii_case(account))
        {
            return Some(i.id);
        }
        let account_id = self.account_id(account);
        self.next_installation_id += 1;
        let id = self.next_installation_id;
        self.installations.push(Installation {
            id,
            account: account.to_owned(),
            account_id,
        });
        Some(id)
    }

    /// Every known installation id.
    pub fn installation_ids(&self) -> Vec<u64> {
        self.installations.iter().map(|i| i.id).collect()
    }

    /// The installation object of `id`.
    pub fn installation_json(&self, id: u64) -> Option<Value> {
        let app = self.app.as_ref()?;
        let i = self.installations.iter().find(|i| i.id == id)?;
        Some(self.templates.installation(
            &self.urls,
            i.id,
            &i.account,
            i.account_id,
            app.config.app_id,
            app.config.client_id.as_deref(),
        ))
    }

    /// Mints an installation token for `id`; `None` when there is no such installation.
    pub fn mint_installation_token(&mut self, id: u64, now_ms: u64) -> Option<(String, u64)> {
        if !self.installations.iter().any(|i| i.id == id) {
            return None;
        }
        let token = ids::installation_token();
        let exp = now_ms + ms(self.scale.scale(self.install_ttl));
        self.install_tokens.insert(token.clone(), (id, exp));
        Some((token, exp))
    }

    /// Makes every installation token expire now (tests of refresh logic).
    pub fn expire_installation_tokens(&mut self) {
        for v in self.install_tokens.values_mut() {
            v.1 = 0;
        }
    }

    /// Issues a registration (or remove) token for `scope`.
    pub fn issue_runner_token(&mut self, scope: Scope, remove: bool, now_ms: u64) -> (String, u64) {
        let token = ids::runner_token();
        let expires_ms = now_ms + ms(self.scale.scale(self.runner_token_ttl));
        self.issued.retain(|t| t.expires_ms > now_ms);
        self.issued.push(IssuedToken {
            token: token.clone(),
            scope,
            expires_ms,
            remove,
        });
        (token, expires_ms)
    }

    /// The scope of a live registration token.
    pub fn registration_scope(&self, token: &str, now_ms: u64) -> Option<Scope> {
        self.issued
            .iter()
            .find(|t| !t.remove && t.token == token && t.expires_ms > now_ms)
            .map(|t| t.scope.clone())
    }

    /// The runner a session token belongs to.
    pub fn runner_for_secret(&self, token: &str) -> Option<u64> {
        self.runner_secrets.get(token).copied()
    }

    // ---- jobs ------------------------------------------------------------------------

    /// Queues a job and returns it with its `queued` webhook.
    pub fn create_job(
        &mut self,
        spec: &JobSpec,
        now_ms: u64,
    ) -> Result<(Job, Vec<Outbound>), String> {
        if spec.owner.is_empty() || spec.repo.is_empty() {
            return Err("owner and repo must not be empty".into());
        }
        if spec.owner.contains('/') || spec.repo.contains('/') {
            return Err("owner and repo must not contain '/'".into());
        }
        if spec.labels.is_empty() || spec.labels.len() > 100 {
            return Err("a job needs 1 to 100 labels".into());
        }
        self.next_job_id += 1;
        let id = self.next_job_id;
        let run_id = spec.run_id.unwrap_or_else(|| {
            self.next_run_id += 1;
            self.next_run_id
        });
        let job = Job {
            id,
            run_id,
            owner: spec.owner.clone(),
            repo: spec.repo.clone(),
            labels: spec.labels.clone(),
            name: spec.name.clone().unwrap_or_else(|| "build".into()),
            status: JobStatus::Queued,
            conclusion: None,
            runner_id: None,
            runner_name: None,
            duration_ms: ms(self.scale.scale(Duration::from_millis(spec.duration_ms))),
            created_at_ms: now_ms,
            started_at_ms: None,
            completed_at_ms: None,
        };
        self.jobs.insert(id, job.clone());
        let out = self.job_event("queued", id).into_iter().collect();
        Ok((job, out))
    }

    /// A job.
    pub fn job(&self, id: u64) -> Option<&Job> {
        self.jobs.get(&id)
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Vec<Job> {
        self.jobs.values().cloned().collect()
    }

    /// The `workflow_job` webhook for job `id`'s current state.
    fn job_event(&mut self, action: &str, id: u64) -> Option<Outbound> {
        let job = self.jobs.get(&id)?.clone();
        let ids = self.repo_ids(&job.owner, &job.repo);
        let installation_id = self.installation_for(&job.owner);
        let payload = payloads::workflow_job(
            &self.templates,
            &self.urls,
            action,
            &job,
            ids,
            installation_id,
        );
        let target = match (&self.app, installation_id) {
            (Some(app), Some(_)) => ("integration".to_owned(), app.config.app_id),
            _ => ("repository".to_owned(), ids.repo_id),
        };
        Some(Outbound::Webhook(WebhookEvent {
            event: "workflow_job".into(),
            action: Some(action.to_owned()),
            payload,
            repository_id: Some(ids.repo_id),
            installation_id,
            target,
            only_hook: None,
        }))
    }

    /// Ends job `id` with `conclusion` and returns its `completed` webhook (nothing if it had
    /// already ended). Its ephemeral runner is removed, unless `keep_runner`.
    fn finish(
        &mut self,
        id: u64,
        conclusion: &str,
        now_ms: u64,
        keep_runner: bool,
    ) -> Vec<Outbound> {
        let Some(job) = self.jobs.get_mut(&id) else {
            return Vec::new();
        };
        if job.status == JobStatus::Completed {
            return Vec::new();
        }
        job.status = JobStatus::Completed;
        job.conclusion = Some(conclusion.to_owned());
        job.completed_at_ms = Some(now_ms);
        let runner_id = job.runner_id;
        if let Some(rid) = runner_id
            && !keep_runner
        {
            self.release_runner(rid);
        }
        self.job_event("completed", id).into_iter().collect()
    }

    /// The runner is done with its job: free it, and remove it when ephemeral.
    fn release_runner(&mut self, rid: u64) {
        let remove = match self.runners.get_mut(&rid) {
            Some(r) => {
                r.job_id = None;
                r.done = true;
                r.ephemeral
            }
            None => false,
        };
        if remove {
            self.remove_runner(rid);
        }
    }

    fn remove_runner(&mut self, rid: u64) {
        self.runners.remove(&rid);
        self.runner_secrets.retain(|_, v| *v != rid);
    }

    /// Cancels every unfinished job of run `run_id` in `owner/repo`.
    pub fn cancel_run(
        &mut self,
        owner: &str,
        repo: &str,
        run_id: u64,
        now_ms: u64,
    ) -> Result<Vec<Outbound>, Refusal> {
        let ids: Vec<(u64, JobStatus)> = self
            .jobs
            .values()
            .filter(|j| {
                j.run_id == run_id
                    && j.owner.eq_ignore_ascii_case(owner)
                    && j.repo.eq_ignore_ascii_case(repo)
            })
            .map(|j| (j.id, j.status))
            .collect();
        if ids.is_empty() {
            return Err(refuse(404, "Not Found"));
        }
        let open: Vec<u64> = ids
            .iter()
            .filter(|(_, s)| *s != JobStatus::Completed)
            .map(|(id, _)| *id)
            .collect();
        if open.is_empty() {
            return Err(refuse(
                409,
                "Cannot cancel a workflow run that is completed.",
            ));
        }
        let mut out = Vec::new();
        for id in open {
            // A runner running a cancelled job stays busy until it reports back.
            out.extend(self.finish(id, "cancelled", now_ms, true));
        }
        Ok(out)
    }

    // ---- runners ---------------------------------------------------------------------

    /// Registers a runner at `scope`; 409 when the name is taken there.
    pub fn create_runner(
        &mut self,
        scope: Scope,
        name: &str,
        labels: Vec<String>,
        jit: bool,
        ephemeral: bool,
    ) -> Result<NewRunner, Refusal> {
        if self
            .runners
            .values()
            .any(|r| r.scope.same(&scope) && r.name == name)
        {
            return Err(refuse(
                409,
                format!("Already exists - A runner with the name {name} already exists."),
            ));
        }
        self.next_runner_id += 1;
        let id = self.next_runner_id;
        let mut runner = Runner {
            id,
            name: name.to_owned(),
            scope,
            labels,
            ephemeral,
            jit,
            online: false,
            session_id: None,
            job_id: None,
            made_for: None,
            done: false,
        };
        runner.made_for = self.intended_job(&runner);
        let token = ids::session_token();
        self.runner_secrets.insert(token.clone(), id);
        self.runners.insert(id, runner.clone());
        Ok(NewRunner { runner, token })
    }

    /// Queued jobs `runner` may run, oldest first.
    fn eligible(&self, runner: &Runner) -> Vec<u64> {
        self.jobs
            .values()
            .filter(|j| {
                j.status == JobStatus::Queued
                    && runner.scope.covers(&j.owner, &j.repo)
                    && labels_match(&runner.labels, &j.labels)
            })
            .map(|j| j.id)
            .collect()
    }

    /// Jobs other idle runners were made for.
    fn reserved_by_others(&self, runner_id: u64) -> Vec<u64> {
        self.runners
            .values()
            .filter(|r| r.id != runner_id && r.job_id.is_none() && !r.done)
            .filter_map(|r| r.made_for)
            .collect()
    }

    fn intended_job(&self, runner: &Runner) -> Option<u64> {
        let eligible = self.eligible(runner);
        if let Some(j) = job_named_in(&runner.name, &eligible) {
            return Some(j);
        }
        let reserved = self.reserved_by_others(runner.id);
        eligible.into_iter().find(|j| !reserved.contains(j))
    }

    /// Every runner.
    pub fn runners(&self) -> Vec<Runner> {
        self.runners.values().cloned().collect()
    }

    /// A runner.
    pub fn runner(&self, id: u64) -> Option<&Runner> {
        self.runners.get(&id)
    }

    /// Runners registered exactly at `scope`, by id.
    pub fn runners_at(&self, scope: &Scope) -> Vec<&Runner> {
        self.runners
            .values()
            .filter(|r| r.scope.same(scope))
            .collect()
    }

    /// Force-removes a runner (the delete endpoint): 422 while it runs a job.
    pub fn delete_runner(&mut self, scope: &Scope, id: u64) -> Result<(), Refusal> {
        let r = self
            .runners
            .get(&id)
            .filter(|r| r.scope.same(scope))
            .ok_or_else(|| refuse(404, "Not Found"))?;
        if r.job_id.is_some() {
            return Err(refuse(
                422,
                format!("Bad request - Runner \"{}\" is still running a job", r.name),
            ));
        }
        self.remove_runner(id);
        Ok(())
    }

    // ---- runner service --------------------------------------------------------------

    /// The runner comes online; 409 when it already has a session.
    pub fn open_session(&mut self, runner_id: u64) -> Result<String, Refusal> {
        let r = self
            .runners
            .get_mut(&runner_id)
            .ok_or_else(|| refuse(404, "runner not found"))?;
        if r.session_id.is_some() {
            return Err(refuse(409, "the runner already has a session"));
        }
        let sid = ids::session_id();
        r.session_id = Some(sid.clone());
        r.online = true;
        Ok(sid)
    }

    /// The runner owning session `sid`.
    pub fn runner_of_session(&self, sid: &str) -> Option<u64> {
        self.runners
            .values()
            .find(|r| r.session_id.as_deref() == Some(sid))
            .map(|r| r.id)
    }

    /// Gives runner `rid` a job if one is there for it (see [`crate::faults::Fault::JobStealing`]
    /// for the exception to "its own job first").
    pub fn assign(
        &mut self,
        rid: u64,
        now_ms: u64,
        now: std::time::Instant,
    ) -> (Option<Assignment>, Vec<Outbound>) {
        let Some(runner) = self.runners.get(&rid).cloned() else {
            return (None, Vec::new());
        };
        if let Some(jid) = runner.job_id {
            let a = self.jobs.get(&jid).map(|j| Assignment {
                job_id: j.id,
                run_id: j.run_id,
                duration_ms: j.duration_ms,
            });
            return (a, Vec::new());
        }
        if runner.done && runner.ephemeral {
            return (None, Vec::new());
        }
        let eligible = self.eligible(&runner);
        let own = runner.made_for.filter(|j| eligible.contains(j));
        let other = eligible
            .iter()
            .copied()
            .find(|j| Some(*j) != runner.made_for);
        let steal = runner.made_for.is_some() && self.faults.steal(now, other.is_some());
        let chosen = if steal {
            other
        } else if own.is_some() {
            own
        } else {
            let reserved = self.reserved_by_others(rid);
            eligible.into_iter().find(|j| !reserved.contains(j))
        };
        let Some(jid) = chosen else {
            return (None, Vec::new());
        };
        let Some(job) = self.jobs.get_mut(&jid) else {
            return (None, Vec::new());
        };
        job.status = JobStatus::InProgress;
        job.runner_id = Some(rid);
        job.runner_name = Some(runner.name.clone());
        job.started_at_ms = Some(now_ms);
        let a = Assignment {
            job_id: job.id,
            run_id: job.run_id,
            duration_ms: job.duration_ms,
        };
        if let Some(r) = self.runners.get_mut(&rid) {
            r.job_id = Some(jid);
        }
        (
            Some(a),
            self.job_event("in_progress", jid).into_iter().collect(),
        )
    }

    /// Runner `rid` reports job `jid` finished.
    pub fn complete(
        &mut self,
        rid: u64,
        jid: u64,
        conclusion: &str,
        now_ms: u64,
    ) -> Result<Vec<Outbound>, Refusal> {
        let job = self
            .jobs
            .get(&jid)
            .ok_or_else(|| refuse(404, "job not found"))?;
        if job.runner_id != Some(rid) {
            return Err(refuse(409, "this runner does not run that job"));
        }
        if job.status == JobStatus::Completed {
            // Cancelled meanwhile: the runner is free now.
            self.release_runner(rid);
            return Ok(Vec::new());
        }
        Ok(self.finish(jid, conclusion, now_ms, false))
    }

    /// The session ends without the runner completing (its machine died): the runner goes
    /// offline and its job fails after the configured delay.
    pub fn vanish(&mut self, sid: &str) -> Result<Vec<Outbound>, Refusal> {
        let rid = self
            .runner_of_session(sid)
            .ok_or_else(|| refuse(404, "session not found"))?;
        let mut out = Vec::new();
        if let Some(r) = self.runners.get_mut(&rid) {
            r.online = false;
            r.session_id = None;
            if let Some(job_id) = r.job_id {
                out.push(Outbound::Timer {
                    after: self.scale.scale(self.vanished_delay),
                    action: TimerAction::FailVanished {
                        job_id,
                        runner_id: rid,
                    },
                });
            }
        }
        Ok(out)
    }

    /// A timer fired.
    pub fn on_timer(&mut self, action: &TimerAction, now_ms: u64) -> Vec<Outbound> {
        match action {
            TimerAction::FailVanished { job_id, runner_id } => {
                let still_there = self.jobs.get(job_id).is_some_and(|j| {
                    j.runner_id == Some(*runner_id) && j.status == JobStatus::InProgress
                });
                if still_there {
                    self.finish(*job_id, "failure", now_ms, false)
                } else {
                    if self.runners.get(runner_id).is_some_and(|r| !r.online) {
                        self.release_runner(*runner_id);
                    }
                    Vec::new()
                }
            }
        }
    }

    // ---- hooks -----------------------------------------------------------------------

    /// Adds a hook and returns it with its `ping`.
    pub fn add_hook(&mut self, url: &str, now_ms: u64) -> (Hook, Outbound) {
        self.next_hook_id += 1;
        let hook = Hook {
            id: self.next_hook_id,
            url: url.to_owned(),
        };
        self.hooks.push(hook.clone());
        let out = self.ping(&hook, now_ms);
        (hook, out)
    }

    /// The `ping` event for `hook`.
    pub fn ping(&self, hook: &Hook, now_ms: u64) -> Outbound {
        let payload = self.templates.ping(&self.urls, hook.id, &hook.url, now_ms);
        Outbound::Webhook(WebhookEvent {
            event: "ping".into(),
            action: None,
            payload,
            repository_id: None,
            installation_id: None,
            target: ("repository".into(), 0),
            only_hook: Some(hook.id),
        })
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
