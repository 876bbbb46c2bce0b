//! The GitHub executor on tokio: one task owns core's
//! [`GithubClient`](anklet_core::github::client::GithubClient) and runs its loop; each HTTP
//! exchange is a spawned task with reqwest, bounded by the request's own timeout, whose result
//! comes back to the owner over an mpsc channel. Tokens, retries, rate-limit pauses and parsing
//! are the client's; this file only moves bytes and waits (the async twin of
//! `anklet_lite::github`).

use anklet_core::github::client::{ClientConfig, Command, CommandResult, GithubClient, RequestId};
use anklet_core::github::http::{HttpRequest, HttpResponse, TransportError};
use anklet_core::handler::{Failure, FailureClass};
use anklet_core::ids::EffectId;
use anklet_lite::clock::Clock;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Largest response body read; GitHub's biggest answers we ask for (100 deliveries) are far
/// smaller.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// How long an idle connection is kept for the next exchange: a handler's calls come seconds
/// apart, and reusing a connection saves GitHub a TLS handshake per call. (It was 1 s while the
/// emulator's tiny_http stranded a request on a new connection when idle ones stayed open; its
/// task pool is fixed in `vendor/tiny_http`.)
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the loop sleeps when the client has no deadline (any message wakes it earlier).
const IDLE_WAIT: Duration = Duration::from_secs(3600);

enum Msg {
    Call(Command, oneshot::Sender<CommandResult>),
    Response(RequestId, Result<HttpResponse, TransportError>),
    Stop,
}

/// Why the executor could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct StartError(#[from] reqwest::Error);

/// A running executor; cheap handles to it come from [`GithubExecutor::handle`]. Dropping it
/// ends the loop (callers still waiting get a `Failed` result).
pub struct GithubExecutor {
    tx: mpsc::UnboundedSender<Msg>,
    task: JoinHandle<()>,
}

/// Sends commands to an executor; clone it freely.
#[derive(Clone)]
pub struct GithubHandle {
    tx: mpsc::UnboundedSender<Msg>,
}

impl GithubHandle {
    /// Runs `command` to its one result (a `Failed` one if the executor is gone).
    pub async fn call(&self, command: Command) -> CommandResult {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Msg::Call(command, reply)).is_err() {
            return stopped();
        }
        answer.await.unwrap_or_else(|_| stopped())
    }
}

fn stopped() -> CommandResult {
    CommandResult::Failed(Failure::new(
        FailureClass::Transient,
        "the GitHub executor has stopped",
    ))
}

impl GithubExecutor {
    /// Starts the executor's task (on the current tokio runtime) with a client built from
    /// `config`.
    pub fn start(config: ClientConfig, clock: Arc<Clock>) -> Result<Self, StartError> {
        let http = reqwest::Client::builder()
            .user_agent("anklet-rs")
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let responses = tx.downgrade();
        let task = tokio::spawn(run(GithubClient::new(config), clock, http, rx, responses));
        Ok(Self { tx, task })
    }

    /// A handle for callers.
    pub fn handle(&self) -> GithubHandle {
        GithubHandle {
            tx: self.tx.clone(),
        }
    }

    /// Ends the loop and waits for it; exchanges in flight are abandoned.
    pub async fn stop(self) {
        let _ = self.tx.send(Msg::Stop);
        let _ = self.task.await;
    }
}

async fn run(
    mut client: GithubClient,
    clock: Arc<Clock>,
    http: reqwest::Client,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    responses: mpsc::WeakUnboundedSender<Msg>,
) {
    let mut waiting: HashMap<EffectId, oneshot::Sender<CommandResult>> = HashMap::new();
    let mut next = 0u64;
    loop {
        let wait = client
            .poll_timeout()
            .map_or(IDLE_WAIT, |t| t.saturating_since(clock.now()));
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Call(command, reply)) => {
                    let id = EffectId(next);
                    next += 1;
                    waiting.insert(id, reply);
                    client.handle_command(clock.now(), id, command);
                }
                Some(Msg::Response(rid, result)) => client.handle_response(clock.now(), rid, result),
                Some(Msg::Stop) | None => return,
            },
            () = tokio::time::sleep_until(Instant::now() + wait) => client.handle_timeout(clock.now()),
        }
        while let Some((rid, request, timeout)) = client.poll_request() {
            let Some(tx) = responses.upgrade() else {
                return;
            };
            let http = http.clone();
            tokio::spawn(async move {
                let result =
                    match tokio::time::timeout(timeout, exchange(&http, request, timeout)).await {
                        Ok(result) => result,
                        Err(_) => Err(TransportError::Timeout),
                    };
                let _ = tx.send(Msg::Response(rid, result));
            });
        }
        while let Some((id, result)) = client.poll_result() {
            if let Some(reply) = waiting.remove(&id) {
                let _ = reply.send(result);
            }
        }
    }
}

/// One HTTP exchange with its own deadline.
async fn exchange(
    http: &reqwest::Client,
    request: HttpRequest,
    timeout: Duration,
) -> Result<HttpResponse, TransportError> {
    let method = reqwest::Method::from_bytes(request.method.as_str().as_bytes())
        .map_err(|e| TransportError::Connect(format!("bad request: {e}")))?;
    let mut builder = http.request(method, &request.url).timeout(timeout);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let mut response = builder.send().await.map_err(transport)?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn transport(e: reqwest::Error) -> TransportError {
    if e.is_timeout() {
        TransportError::Timeout
    } else if e.is_connect() || e.is_builder() {
        TransportError::Connect(e.to_string())
    } else {
        TransportError::Io(e.to_string())
    }
}
