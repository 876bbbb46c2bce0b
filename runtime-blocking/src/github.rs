//! The GitHub executor: one thread owns core's
//! [`GithubClient`](anklet_core::github::client::GithubClient) and runs its loop; each HTTP
//! exchange runs on a short-lived thread with ureq and reports back. Tokens, retries, rate-limit
//! pauses and parsing are the client's; this file only moves bytes and waits.

use crate::clock::Clock;
use anklet_core::github::client::{ClientConfig, Command, CommandResult, GithubClient, RequestId};
use anklet_core::github::http::{HttpRequest, HttpResponse, TransportError};
use anklet_core::ids::EffectId;
use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest response body read; GitHub's biggest answers we ask for (100 deliveries) are far
/// smaller.
const MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// Where a command's single result goes.
pub type Reply = Box<dyn FnOnce(CommandResult) + Send>;

enum Msg {
    Call(Command, Reply),
    Response(RequestId, Result<HttpResponse, TransportError>),
    Stop,
}

/// A running executor; cheap handles to it come from [`GithubExecutor::handle`].
pub struct GithubExecutor {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

/// Sends commands to an executor.
#[derive(Clone)]
pub struct GithubHandle {
    tx: Sender<Msg>,
}

impl GithubHandle {
    /// Runs `command`; `reply` gets its one result (a `Failed` one if the executor is gone).
    pub fn call(&self, command: Command, reply: Reply) {
        if let Err(std::sync::mpsc::SendError(Msg::Call(_, reply))) =
            self.tx.send(Msg::Call(command, reply))
        {
            let f = anklet_core::handler::Failure::new(
                anklet_core::handler::FailureClass::Transient,
                "the GitHub executor has stopped",
            );
            reply(CommandResult::Failed(f));
        }
    }
}

impl GithubExecutor {
    /// Starts the executor's thread with a client built from `config`.
    pub fn start(config: ClientConfig, clock: Arc<Clock>) -> Self {
        let (tx, rx) = channel();
        let loop_tx = tx.clone();
        let thread =
            std::thread::spawn(move || run(GithubClient::new(config), &clock, &rx, &loop_tx));
        Self {
            tx,
            thread: Some(thread),
        }
    }

    /// A handle for callers.
    pub fn handle(&self) -> GithubHandle {
        GithubHandle {
            tx: self.tx.clone(),
        }
    }
}

impl Drop for GithubExecutor {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(mut client: GithubClient, clock: &Clock, rx: &Receiver<Msg>, tx: &Sender<Msg>) {
    let agent = agent();
    let mut waiting: HashMap<EffectId, Reply> = HashMap::new();
    let mut next = 0u64;
    loop {
        let now = clock.now();
        let wait = client
            .poll_timeout()
            .map_or(Duration::from_secs(3600), |t| t.saturating_since(now));
        match rx.recv_timeout(wait) {
            Ok(Msg::Call(command, reply)) => {
                let id = EffectId(next);
                next += 1;
                waiting.insert(id, reply);
                client.handle_command(clock.now(), id, command);
            }
            Ok(Msg::Response(rid, result)) => client.handle_response(clock.now(), rid, result),
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => client.handle_timeout(clock.now()),
        }
        while let Some((rid, request, timeout)) = client.poll_request() {
            let (agent, tx) = (agent.clone(), tx.clone());
            std::thread::spawn(move || {
                let _ = tx.send(Msg::Response(rid, exchange(&agent, &request, timeout)));
            });
        }
        while let Some((id, result)) = client.poll_result() {
            if let Some(reply) = waiting.remove(&id) {
                reply(result);
            }
        }
    }
}

/// The input buffer of a connection: holds a whole response header, so it is also the largest
/// header accepted; bodies stream through it. GitHub's headers are a few KiB.
const INPUT_BUFFER_BYTES: usize = 32 * 1024;

/// The output buffer of a connection: request line, headers and body chunks (our bodies are
/// small JSON).
const OUTPUT_BUFFER_BYTES: usize = 16 * 1024;

/// ureq's default buffers are 128 KiB each way, zero-filled in full when a connection first
/// sends, and kept while it idles in the pool: 0.4 MiB of an idle daemon's heap with
/// two GitHub plugins. GitHub's answers stream through smaller ones in a few more reads.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent("anklet-rs")
        .input_buffer_size(INPUT_BUFFER_BYTES)
        .output_buffer_size(OUTPUT_BUFFER_BYTES)
        .max_response_header_size(INPUT_BUFFER_BYTES)
        .build()
        .into()
}

/// One HTTP exchange with its own deadline.
fn exchange(
    agent: &ureq::Agent,
    request: &HttpRequest,
    timeout: Duration,
) -> Result<HttpResponse, TransportError> {
    let mut builder = ureq::http::Request::builder()
        .method(request.method.as_str())
        .uri(&request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let body = request.body.clone().unwrap_or_default();
    let http = builder
        .body(body)
        .map_err(|e| TransportError::Connect(format!("bad request: {e}")))?;
    let configured = agent
        .configure_request(http)
        .timeout_global(Some(timeout))
        .build();
    let mut response = agent.run(configured).map_err(transport)?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut body)
        .map_err(|e| TransportError::Io(e.to_string()))?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn transport(e: ureq::Error) -> TransportError {
    match e {
        ureq::Error::Timeout(_) => TransportError::Timeout,
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => TransportError::Timeout,
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            TransportError::Connect(e.to_string())
        }
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            TransportError::Connect(io.to_string())
        }
        other => TransportError::Io(other.to_string()),
    }
}
