//! The webhook receiver's HTTP server: a thin loop around core's
//! [`Receiver`](anklet_core::receiver::Receiver).
//!
//! A few worker threads take requests from tiny_http, read the body (at most
//! [`MAX_BODY_BYTES`]; a larger `Content-Length` is refused before reading), and run the
//! exchange: the machine decides under a mutex, the store operation runs outside it on the
//! worker's own time, and the response goes out only after the machine saw the store's answer.
//! Every decision (routes, signature, parsing, status codes) is core's.

use crate::clock::Clock;
use crate::store::shared::SharedStore;
use anklet_core::receiver::{
    HttpRequest, HttpResponse, MAX_BODY_BYTES, Receiver, ReceiverEffect, ReceiverNotice,
    ReceiverSettings, RequestId,
};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Called with every notice, for logs and metrics.
pub type NoticeSink = Arc<dyn Fn(&ReceiverNotice) + Send + Sync>;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another process using the port?)")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// tiny_http refused the listener.
    #[error("cannot start the HTTP server on {addr}: {message}")]
    Server {
        /// The address.
        addr: String,
        /// tiny_http's message.
        message: String,
    },
}

/// What a running receiver shares between its workers.
struct Shared {
    machine: Mutex<Receiver>,
    store: Arc<dyn SharedStore>,
    clock: Arc<Clock>,
    notices: NoticeSink,
    next_id: AtomicU64,
    stop: AtomicBool,
}

/// A running receiver; [`ReceiverServer::stop`] ends it.
pub struct ReceiverServer {
    server: Arc<tiny_http::Server>,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    addr: SocketAddr,
}

impl ReceiverServer {
    /// Listens on `addr` (e.g. `0.0.0.0:54321`, or port 0 for any) with `workers` threads.
    pub fn start(
        addr: &str,
        settings: ReceiverSettings,
        store: Arc<dyn SharedStore>,
        clock: Arc<Clock>,
        workers: usize,
        notices: NoticeSink,
    ) -> Result<Self, ServeError> {
        let listener = std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind {
            addr: addr.to_owned(),
            source,
        })?;
        let bound = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: addr.to_owned(),
            source,
        })?;
        let server =
            tiny_http::Server::from_listener(listener, None).map_err(|e| ServeError::Server {
                addr: addr.to_owned(),
                message: e.to_string(),
            })?;
        let server = Arc::new(server);
        let shared = Arc::new(Shared {
            machine: Mutex::new(Receiver::new(settings)),
            store,
            clock,
            notices,
            next_id: AtomicU64::new(1),
            stop: AtomicBool::new(false),
        });
        let workers = (0..workers.max(1))
            .map(|_| {
                let server = Arc::clone(&server);
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || worker(&server, &shared))
            })
            .collect();
        Ok(Self {
            server,
            shared,
            workers,
            addr: bound,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops taking requests, lets the workers finish the exchanges they are in, and joins
    /// them; nothing a client was answered 2xx for is lost.
    pub fn stop(self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        for w in self.workers {
            let _ = w.join();
        }
    }
}

fn worker(server: &tiny_http::Server, shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        let request = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "receiver: accepting a request failed");
                continue;
            }
        };
        serve(shared, request);
    }
}

/// One exchange, start to finish.
fn serve(shared: &Shared, mut request: tiny_http::Request) {
    let id = RequestId(shared.next_id.fetch_add(1, Ordering::Relaxed));
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_owned(),
                h.value.as_str().to_owned(),
            )
        })
        .collect();
    let delivery = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-github-delivery"))
        .map(|(_, v)| v.clone());
    let declared_too_large = request.body_length().is_some_and(|n| n > MAX_BODY_BYTES);
    let body = if declared_too_large {
        None
    } else {
        let mut body = Vec::new();
        let limit = u64::try_from(MAX_BODY_BYTES).unwrap_or(u64::MAX) + 1;
        match request.as_reader().take(limit).read_to_end(&mut body) {
            Ok(_) if body.len() <= MAX_BODY_BYTES => Some(body),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(error = %e, "receiver: client went away while sending the body");
                return;
            }
        }
    };
    let now = shared.clock.now();
    let mut effects = Vec::new();
    {
        let mut m = lock(&shared.machine);
        match body {
            Some(body) => {
                let req = HttpRequest {
                    method: request.method().as_str().to_owned(),
                    path: request.url().to_owned(),
                    headers,
                    body,
                };
                m.handle_request(now, id, req);
            }
            None => m.handle_oversized(id, delivery.as_deref()),
        }
        effects.extend(std::iter::from_fn(|| m.poll_effect()));
    }
    let response = run_effects(shared, effects);
    match response {
        Some(r) => respond(request, &r),
        None => tracing::error!(%id, "receiver: the machine gave no response"),
    }
}

/// Executes effects until the response appears; store operations run outside the lock.
fn run_effects(shared: &Shared, mut effects: Vec<ReceiverEffect>) -> Option<HttpResponse> {
    let mut response = None;
    while !effects.is_empty() {
        let mut next = Vec::new();
        for effect in effects {
            match effect {
                ReceiverEffect::Respond { response: r, .. } => response = Some(r),
                ReceiverEffect::Notice(n) => (shared.notices)(&n),
                ReceiverEffect::Store { id, op, .. } => {
                    let result = shared.store.run(shared.clock.now(), op);
                    let mut m = lock(&shared.machine);
                    m.handle_store_result(shared.clock.now(), id, result);
                    next.extend(std::iter::from_fn(|| m.poll_effect()));
                }
            }
        }
        effects = next;
    }
    response
}

fn respond(request: tiny_http::Request, r: &HttpResponse) {
    let mut response = tiny_http::Response::from_string(r.body.clone()).with_status_code(r.status);
    if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", r.content_type) {
        response = response.with_header(h);
    }
    if let Err(e) = request.respond(response) {
        tracing::debug!(error = %e, "receiver: client went away before the response");
    }
}

fn lock(m: &Mutex<Receiver>) -> std::sync::MutexGuard<'_, Receiver> {
    // The machine is only mutated through its own methods, which leave it consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Logs a receiver notice with tracing (the daemon's default sink; shared with `anklet`).
pub use crate::common::notices::log_receiver_notice as log_notice;
