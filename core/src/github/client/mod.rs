//! The GitHub REST client as one sans-IO owner type, driven the way quinn-proto's
//! `Connection` is.
//!
//! ```text
//! runtime loop:                                    GithubClient
//!   command from the handler / receiver ───────────▶ handle_command(now, id, cmd)
//!   HTTP answer (or transport error) ──────────────▶ handle_response(now, request, result)
//!   deadline reached ──────────────────────────────▶ handle_timeout(now)
//!   while let Some((rid, req, timeout)) = poll_request()   → send it, answer later
//!   while let Some((id, result)) = poll_result()           → hand it back
//!   deadline = poll_timeout()
//! ```
//!
//! Rules: every command gets exactly one result; an App installation token is fetched once
//! for all waiting commands; while a rate limit holds, no request at all is sent (commands wait
//! and resume after); 5xx and transport failures are retried with backoff up to
//! `max_attempts` tries per request; a 4xx that cannot succeed is never retried; a command not
//! answered within `command_timeout` fails as `TimedOut`. Failure messages are scrubbed of every
//! secret the client holds.

mod token;
mod work;

use crate::github::auth::Credentials;
use crate::github::http::{DEFAULT_API_BASE_URL, HttpRequest, HttpResponse, TransportError};
use crate::github::ratelimit::{
    Attempts, Backoff, Limit, Outcome, RateLimit, classify, classify_transport,
    transport_failure_class,
};
use crate::github::rest::deliveries::{DeliveryDetail, DeliverySummary};
use crate::github::rest::{ApiScope, error_message};
use crate::handler::{EffectResult, Failure, FailureClass, ForgeCmd, RunnerRegistration};
use crate::ids::EffectId;
use crate::time::Timestamp;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use token::TokenSource;
use work::{Flow, GroupRef, Work};

/// Correlates an HTTP request with its answer; allocated by the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// How the client talks to GitHub.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// API base URL (`https://api.github.com`; GHES `https://HOST/api/v3`; an emulator).
    pub api_base_url: String,
    /// Where runners (and hooks) live.
    pub scope: ApiScope,
    /// PAT or GitHub App.
    pub credentials: Credentials,
    /// Runner group for JIT configs when a command names none: unset or `Default` is group 1,
    /// a number is an id, anything else a name looked up once (organisations, enterprises).
    pub runner_group: Option<String>,
    /// Tries per request, the first included, for 5xx and transport failures.
    pub max_attempts: u32,
    /// Deadline the runtime gives each HTTP exchange.
    pub request_timeout: Duration,
    /// A command not answered within this time fails as `TimedOut` (rate-limit pauses
    /// included), so a long pause cannot hold a caller for ever.
    pub command_timeout: Duration,
    /// Requests on the wire at once at most (GitHub's secondary limit is 100).
    pub max_in_flight: usize,
    /// Waits between tries and after secondary limits.
    pub backoff: Backoff,
}

impl ClientConfig {
    /// A config with GitHub's public API and the defaults: 4 tries, 30 s per request, 10
    /// minutes per command, 8 requests at once.
    pub fn new(scope: ApiScope, credentials: Credentials) -> Self {
        Self {
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            scope,
            credentials,
            runner_group: None,
            max_attempts: 4,
            request_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(600),
            max_in_flight: 8,
            backoff: Backoff::default(),
        }
    }
}

/// What the client is asked to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// A handler effect. `labels` are the job's `runs-on` labels, given to a JIT runner so
    /// GitHub routes the job to it (other commands ignore them). A JIT config asked without
    /// labels fails as `Unsupported`, so the handler falls back to a registration token.
    Forge {
        /// The effect's command.
        cmd: ForgeCmd,
        /// The job's labels, for `CreateRunnerConfig` in JIT mode.
        labels: Vec<String>,
    },
    /// The receiver's listing of a hook's deliveries since an instant, newest first, all
    /// pages; with `only_undelivered`, just the newest attempt of each GUID that never got a
    /// successful answer.
    ListDeliveries {
        /// The webhook's id.
        hook_id: u64,
        /// Oldest delivery wanted.
        since: Timestamp,
        /// Keep only deliveries that still need a redelivery.
        only_undelivered: bool,
    },
    /// Read one delivery with its payload.
    GetDelivery {
        /// The webhook's id.
        hook_id: u64,
        /// The delivery attempt's id.
        delivery_id: u64,
    },
    /// Ask GitHub to deliver again (202).
    Redeliver {
        /// The webhook's id.
        hook_id: u64,
        /// The delivery attempt's id.
        delivery_id: u64,
    },
}

impl From<ForgeCmd> for Command {
    fn from(cmd: ForgeCmd) -> Self {
        Command::Forge {
            cmd,
            labels: Vec::new(),
        }
    }
}

/// The one answer to a command.
#[derive(Clone, Debug, PartialEq)]
pub enum CommandResult {
    /// The answer to a [`Command::Forge`], ready for `Input::Result` (failures included).
    Forge(EffectResult),
    /// Deliveries, newest first.
    Deliveries(Vec<DeliverySummary>),
    /// One delivery.
    Delivery(DeliveryDetail),
    /// GitHub accepted the redelivery.
    Redelivered,
    /// A receiver command failed.
    Failed(Failure),
}

impl CommandResult {
    /// The answer to a handler's [`Command::Forge`] as the handler takes it; an answer of the
    /// wrong kind is a permanent failure.
    pub fn into_effect_result(self) -> EffectResult {
        match self {
            CommandResult::Forge(r) => r,
            CommandResult::Failed(f) => EffectResult::Failed(f),
            other => EffectResult::Failed(Failure::new(
                crate::handler::FailureClass::Permanent,
                format!("GitHub client answered {other:?} to a handler call"),
            )),
        }
    }

    /// The failure, whichever kind of command it answers.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            CommandResult::Forge(EffectResult::Failed(f)) | CommandResult::Failed(f) => Some(f),
            _ => None,
        }
    }
}

/// Where a command stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// May send its next request from this instant.
    Ready(Timestamp),
    /// Waits for this request's answer.
    InFlight(RequestId),
}

/// One command in progress.
#[derive(Debug)]
struct Op {
    label: String,
    work: Work,
    attempts: Attempts,
    phase: Phase,
    deadline: Timestamp,
    /// The request on the wire, for the message of a failure.
    sent: Option<HttpRequest>,
}

/// Who a request belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Op(EffectId),
    Token,
}

/// The GitHub REST client (see the module docs for the driving loop).
#[derive(Debug)]
pub struct GithubClient {
    config: ClientConfig,
    token: TokenSource,
    now: Timestamp,
    ops: BTreeMap<EffectId, Op>,
    in_flight: BTreeMap<RequestId, Owner>,
    next_request: u64,
    results: VecDeque<(EffectId, CommandResult)>,
    paused_until: Option<Timestamp>,
    secondary_hits: u32,
    groups: BTreeMap<String, u64>,
}

/// What a response means for its owner, after the shared policy.
enum Verdict {
    Success,
    Retry,
    /// A rate limit: retried after the pause, and the try does not count.
    Paused,
    Fail(Failure),
}

impl GithubClient {
    /// A client with nothing in progress.
    pub fn new(config: ClientConfig) -> Self {
        Self {
            token: TokenSource::new(config.credentials.clone()),
            config,
            now: Timestamp(0),
            ops: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_request: 0,
            results: VecDeque::new(),
            paused_until: None,
            secondary_hits: 0,
            groups: BTreeMap::new(),
        }
    }

    /// Takes a command; its one result comes out of [`poll_result`](Self::poll_result). A
    /// command whose id is already in progress is ignored (the first keeps its result).
    pub fn handle_command(&mut self, now: Timestamp, id: EffectId, command: Command) {
        self.advance(now);
        if self.ops.contains_key(&id) {
            return;
        }
        let (label, work) = self.plan(command);
        self.ops.insert(
            id,
            Op {
                label,
                work,
                attempts: Attempts::default(),
                phase: Phase::Ready(self.now),
                deadline: self.now + self.config.command_timeout,
                sent: None,
            },
        );
    }

    fn plan(&self, command: Command) -> (String, Work) {
        let label = match &command {
            Command::Forge { cmd, .. } => cmd.to_string(),
            Command::ListDeliveries { hook_id, .. } => format!("list_deliveries hook={hook_id}"),
            Command::GetDelivery {
                hook_id,
                delivery_id,
            } => format!("get_delivery hook={hook_id} id={delivery_id}"),
            Command::Redeliver {
                hook_id,
                delivery_id,
            } => format!("redeliver hook={hook_id} id={delivery_id}"),
        };
        let work = match command {
            Command::Forge { cmd, labels } => match cmd {
                ForgeCmd::CreateRunnerConfig {
                    runner,
                    mode: RunnerRegistration::Jit,
                    group,
                    ..
                } => Work::Jit {
                    runner: runner.0,
                    labels,
                    group: GroupRef::parse(
                        group.as_deref().or(self.config.runner_group.as_deref()),
                    ),
                    page: None,
                    pages: 0,
                },
                ForgeCmd::CreateRunnerConfig {
                    mode: RunnerRegistration::Token,
                    ..
                } => Work::RegistrationToken,
                ForgeCmd::GetJob { job } => Work::GetJob {
                    owner: job.owner,
                    repo: job.repo,
                    job: job.id.0,
                },
                ForgeCmd::RemoveRunner { runner, .. } => Work::RemoveRunner {
                    runner: runner.0,
                    found: None,
                    page: None,
                    pages: 0,
                },
                ForgeCmd::CancelWorkflowRun { job } => Work::Cancel {
                    owner: job.owner,
                    repo: job.repo,
                    run: job.run_id,
                },
                ForgeCmd::ListRunners => Work::ListRunners {
                    page: None,
                    pages: 0,
                    acc: Vec::new(),
                },
            },
            Command::ListDeliveries {
                hook_id,
                since,
                only_undelivered,
            } => Work::ListDeliveries {
                hook_id,
                since,
                only_undelivered,
                cursor: None,
                pages: 0,
                acc: Vec::new(),
            },
            Command::GetDelivery {
                hook_id,
                delivery_id,
            } => Work::GetDelivery {
                hook_id,
                delivery_id,
            },
            Command::Redeliver {
                hook_id,
                delivery_id,
            } => Work::Redeliver {
                hook_id,
                delivery_id,
            },
        };
        (label, work)
    }

    /// The next request to send, with its timeout; `None` while nothing is due, while a rate
    /// limit holds, or while `max_in_flight` requests are out.
    pub fn poll_request(&mut self) -> Option<(RequestId, HttpRequest, Duration)> {
        let now = self.now;
        if self.paused_until.is_some_and(|until| now < until) {
            return None;
        }
        loop {
            if self.in_flight.len() >= self.config.max_in_flight.max(1) {
                return None;
            }
            if let Some(req) = self.poll_token_request(now) {
                return Some(req);
            }
            let due = self
                .ops
                .iter()
                .find(|(_, op)| matches!(op.phase, Phase::Ready(at) if at <= now))
                .map(|(id, _)| *id)?;
            let Some(bearer) = self.token.bearer(now) else {
                // A token fetch is due or under way; every command waits for it.
                return self.poll_token_request(now);
            };
            let base = self.config.api_base_url.clone();
            let op = self.ops.get_mut(&due)?;
            match op.work.request(&base, &self.config.scope, &self.groups) {
                Ok(request) => {
                    let rid = RequestId(self.next_request);
                    self.next_request += 1;
                    op.phase = Phase::InFlight(rid);
                    op.attempts.tries = op.attempts.tries.saturating_add(1);
                    op.sent = Some(request.clone());
                    self.in_flight.insert(rid, Owner::Op(due));
                    let request = request.with_bearer(bearer.expose());
                    return Some((rid, request, self.config.request_timeout));
                }
                Err(flow) => self.end_with_flow(due, flow),
            }
        }
    }

    fn poll_token_request(&mut self, now: Timestamp) -> Option<(RequestId, HttpRequest, Duration)> {
        let fetch = self.token.fetch()?;
        if fetch.in_flight.is_some() || fetch.ready_at > now {
            return None;
        }
        let base = self.config.api_base_url.clone();
        match self.token.request(now, &base, &self.config.scope) {
            Ok(request) => {
                let rid = RequestId(self.next_request);
                self.next_request += 1;
                if let Some(fetch) = self.token.fetch() {
                    fetch.in_flight = Some(rid);
                    fetch.attempts.tries = fetch.attempts.tries.saturating_add(1);
                }
                self.in_flight.insert(rid, Owner::Token);
                Some((rid, request, self.config.request_timeout))
            }
            Err(failure) => {
                self.token_failed(failure);
                None
            }
        }
    }

    /// Takes the answer to a request (an unknown or late request id is ignored).
    pub fn handle_response(
        &mut self,
        now: Timestamp,
        request: RequestId,
        result: Result<HttpResponse, TransportError>,
    ) {
        self.advance(now);
        let now = self.now;
        match self.in_flight.remove(&request) {
            Some(Owner::Op(id)) => self.op_response(now, id, request, &result),
            Some(Owner::Token) => self.token_response(now, request, &result),
            None => {}
        }
    }

    fn op_response(
        &mut self,
        now: Timestamp,
        id: EffectId,
        request: RequestId,
        result: &Result<HttpResponse, TransportError>,
    ) {
        let Some(op) = self.ops.get(&id) else {
            return;
        };
        if op.phase != Phase::InFlight(request) {
            return;
        }
        let attempts = op.attempts;
        let sent = op.sent.clone();
        let context = format!(
            "{}: {}",
            op.label,
            sent.as_ref().map(describe).unwrap_or_default()
        );
        if let (Ok(response), Some(sent)) = (result, sent.as_ref())
            && let Some(flow) = op.work.special_status(sent, response.status)
        {
            self.note_limits(now, response);
            let flow = match flow {
                Flow::Fail(class, why) => Flow::Fail(
                    class,
                    format!("{context}: {}: {why}", status_text(response)),
                ),
                other => other,
            };
            return self.end_with_flow(id, flow);
        }
        match self.judge(now, result, attempts, &context) {
            Verdict::Success => {
                let Ok(response) = result else { return };
                let Some(op) = self.ops.get_mut(&id) else {
                    return;
                };
                match op.work.on_success(response, &mut self.groups) {
                    Ok(Flow::Continue) => {
                        op.attempts = Attempts::default();
                        op.phase = Phase::Ready(now);
                    }
                    Ok(flow) => self.end_with_flow(id, flow),
                    Err(e) => {
                        let f = Failure::new(FailureClass::Permanent, format!("{context}: {e}"));
                        self.end(id, f);
                    }
                }
            }
            Verdict::Retry => {
                let at = now + self.config.backoff.retry_wait(attempts.tries.max(1));
                if let Some(op) = self.ops.get_mut(&id) {
                    op.phase = Phase::Ready(at);
                }
            }
            Verdict::Paused => {
                let at = self.paused_until.unwrap_or(now).max(now);
                if let Some(op) = self.ops.get_mut(&id) {
                    op.phase = Phase::Ready(at);
                    op.attempts.tries = op.attempts.tries.saturating_sub(1);
                }
            }
            Verdict::Fail(f) => {
                if matches!(result, Ok(r) if r.status == 401) {
                    // The installation token may have been revoked: the next command fetches
                    // a new one.
                    self.token.invalidate();
                }
                self.end(id, f);
            }
        }
    }

    fn token_response(
        &mut self,
        now: Timestamp,
        request: RequestId,
        result: &Result<HttpResponse, TransportError>,
    ) {
        let Some(fetch) = self.token.fetch() else {
            return;
        };
        if fetch.in_flight != Some(request) {
            return;
        }
        fetch.in_flight = None;
        let attempts = fetch.attempts;
        match self.judge(now, result, attempts, "GitHub App authentication") {
            Verdict::Success => {
                let Ok(response) = result else { return };
                if let Err(f) = self.token.on_success(now, response) {
                    self.token_failed(f);
                }
            }
            Verdict::Retry => {
                let at = now + self.config.backoff.retry_wait(attempts.tries.max(1));
                if let Some(fetch) = self.token.fetch() {
                    fetch.ready_at = at;
                }
            }
            Verdict::Paused => {
                let at = self.paused_until.unwrap_or(now).max(now);
                if let Some(fetch) = self.token.fetch() {
                    fetch.ready_at = at;
                    fetch.attempts.tries = fetch.attempts.tries.saturating_sub(1);
                }
            }
            Verdict::Fail(f) => self.token_failed(f),
        }
    }

    /// The token could not be had: every command waiting for it fails with the reason. A
    /// missing installation is not the command's "not found" (a runner removal would count
    /// as done), so classes that mean something about the command's object become
    /// `Permanent`.
    fn token_failed(&mut self, failure: Failure) {
        let failure = match failure.class {
            FailureClass::NotFound | FailureClass::Busy => {
                Failure::new(FailureClass::Permanent, failure.message)
            }
            _ => failure,
        };
        self.token.abandon();
        let waiting: Vec<EffectId> = self
            .ops
            .iter()
            .filter(|(_, op)| matches!(op.phase, Phase::Ready(_)))
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            self.end(id, failure.clone());
        }
    }

    /// Applies the shared policy: rate limits (pause everything), retries, failures.
    fn judge(
        &mut self,
        now: Timestamp,
        result: &Result<HttpResponse, TransportError>,
        attempts: Attempts,
        context: &str,
    ) -> Verdict {
        let max = self.config.max_attempts.max(1);
        match result {
            Ok(response) => {
                self.note_limits(now, response);
                let attempts = Attempts {
                    secondary_hits: self.secondary_hits,
                    ..attempts
                };
                match classify(now, response, attempts, &self.config.backoff) {
                    Outcome::Ok => {
                        self.secondary_hits = 0;
                        Verdict::Success
                    }
                    Outcome::Paused { until, limit } => {
                        if limit == Limit::SecondaryUnspecified {
                            self.secondary_hits = self.secondary_hits.saturating_add(1);
                        }
                        self.pause(until);
                        Verdict::Paused
                    }
                    Outcome::RetryAfter { attempt, .. } if attempt <= max => Verdict::Retry,
                    Outcome::RetryAfter { .. } => Verdict::Fail(Failure::new(
                        FailureClass::Transient,
                        self.scrub(format!(
                            "{context}: {} (gave up after {} tries)",
                            status_text(response),
                            attempts.tries
                        )),
                    )),
                    Outcome::Fail(class) => Verdict::Fail(Failure::new(
                        class,
                        self.scrub(format!("{context}: {}", status_text(response))),
                    )),
                }
            }
            Err(error) => match classify_transport(error, attempts, &self.config.backoff) {
                Outcome::RetryAfter { attempt, .. } if attempt <= max => Verdict::Retry,
                _ => Verdict::Fail(Failure::new(
                    transport_failure_class(error),
                    self.scrub(format!(
                        "{context}: {error} (gave up after {} tries)",
                        attempts.tries
                    )),
                )),
            },
        }
    }

    /// A response that says the budget is spent pauses everything until it resets, even
    /// when the response itself succeeded.
    fn note_limits(&mut self, now: Timestamp, response: &HttpResponse) {
        if let Some(until) = RateLimit::from_response(response).exhausted_until(now) {
            self.pause(until);
        }
    }

    fn pause(&mut self, until: Timestamp) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    fn end_with_flow(&mut self, id: EffectId, flow: Flow) {
        match flow {
            Flow::Done(result) => {
                self.ops.remove(&id);
                self.results.push_back((id, result));
            }
            Flow::Continue => {
                if let Some(op) = self.ops.get_mut(&id) {
                    op.phase = Phase::Ready(self.now);
                }
            }
            Flow::Fail(class, why) => {
                let label = self
                    .ops
                    .get(&id)
                    .map(|o| o.label.clone())
                    .unwrap_or_default();
                let message = if why.starts_with(&label) {
                    why
                } else {
                    format!("{label}: {why}")
                };
                self.end(id, Failure::new(class, self.scrub(message)));
            }
        }
    }

    fn end(&mut self, id: EffectId, failure: Failure) {
        let Some(op) = self.ops.remove(&id) else {
            return;
        };
        if let Phase::InFlight(rid) = op.phase {
            self.in_flight.remove(&rid);
        }
        let failure = Failure::new(failure.class, self.scrub(failure.message));
        let result = if op.work.is_forge() {
            CommandResult::Forge(EffectResult::Failed(failure))
        } else {
            CommandResult::Failed(failure)
        };
        self.results.push_back((id, result));
    }

    /// Removes every secret the client knows from a message.
    fn scrub(&self, mut message: String) -> String {
        for secret in self.token.secrets() {
            if !secret.is_empty() && message.contains(secret) {
                message = message.replace(secret, crate::secret::REDACTED);
            }
        }
        message
    }

    /// The next answered command.
    pub fn poll_result(&mut self) -> Option<(EffectId, CommandResult)> {
        self.results.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called: a retry, the end
    /// of a rate-limit pause, or a command's deadline. Always later than the last `now`.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let now = self.now;
        let pause = self.paused_until.filter(|p| *p > now);
        let mut next: Option<Timestamp> = pause;
        let mut consider = |t: Timestamp| {
            if t > now {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for op in self.ops.values() {
            consider(op.deadline);
            if let Phase::Ready(at) = op.phase {
                consider(pause.map_or(at, |p| p.max(at)));
            }
        }
        if let Some(at) = self.token.fetch_ready_at() {
            consider(pause.map_or(at, |p| p.max(at)));
        }
        next
    }

    /// Lets time pass: commands past their deadline fail as `TimedOut`, retries and paused
    /// requests become due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
    }

    fn advance(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
        let now = self.now;
        if self.paused_until.is_some_and(|p| p <= now) {
            self.paused_until = None;
        }
        let expired: Vec<EffectId> = self
            .ops
            .iter()
            .filter(|(_, op)| op.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let label = self
                .ops
                .get(&id)
                .map(|o| o.label.clone())
                .unwrap_or_default();
            let timeout = self.config.command_timeout;
            self.end(
                id,
                Failure::new(
                    FailureClass::TimedOut,
                    format!("{label}: no answer within {}s", timeout.as_secs()),
                ),
            );
        }
        if self.ops.is_empty()
            && let Some(fetch) = self.token.fetch()
            && fetch.in_flight.is_none()
        {
            self.token.abandon();
        }
    }

    /// Commands in progress (for status and tests).
    pub fn pending(&self) -> usize {
        self.ops.len()
    }

    /// Until when every request is held back by a rate limit, if one holds.
    pub fn paused_until(&self) -> Option<Timestamp> {
        self.paused_until.filter(|p| *p > self.now)
    }
}

fn describe(request: &HttpRequest) -> String {
    let path = request
        .url
        .find("://")
        .and_then(|i| {
            request.url[i + 3..]
                .find('/')
                .map(|j| &request.url[i + 3 + j..])
        })
        .unwrap_or(&request.url);
    format!("{} {path}", request.method)
}

fn status_text(response: &HttpResponse) -> String {
    match error_message(response) {
        Some(m) => format!("HTTP {}: {m}", response.status),
        None => format!("HTTP {}", response.status),
    }
}
