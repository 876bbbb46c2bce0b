//! The webhook receiver's HTTP server on axum: a thin loop around core's
//! [`Receiver`](anklet_core::receiver::Receiver), the async twin of
//! `anklet_lite::receiver`.
//!
//! Every request goes to one handler that reads the body (at most [`MAX_BODY_BYTES`]),
//! verifies and parses it outside any lock ([`Receiver::check`]), lets the machine decide
//! under a short mutex, awaits the store operation outside it, and answers
//! only once the machine saw the store's answer. Routes, signature checks, parsing and status
//! codes are all core's.

use crate::store::shared::SharedStore;
use anklet_core::receiver::{
    HttpRequest, HttpResponse, MAX_BODY_BYTES, Receiver, ReceiverEffect, ReceiverNotice,
    ReceiverSettings, RequestId,
};
use anklet_lite::clock::Clock;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
}

struct Shared {
    settings: ReceiverSettings,
    machine: Mutex<Receiver>,
    store: SharedStore,
    clock: Arc<Clock>,
    notices: NoticeSink,
    next_id: AtomicU64,
}

/// A running receiver; [`ReceiverServer::stop`] ends it gracefully.
pub struct ReceiverServer {
    addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ReceiverServer {
    /// Listens on `addr` (port 0 for any) and serves until stopped.
    pub async fn start(
        addr: &str,
        settings: ReceiverSettings,
        store: SharedStore,
        clock: Arc<Clock>,
        notices: NoticeSink,
    ) -> Result<Self, ServeError> {
        let bind_error = |source| ServeError::Bind {
            addr: addr.to_owned(),
            source,
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(bind_error)?;
        let bound = listener.local_addr().map_err(bind_error)?;
        let shared = Arc::new(Shared {
            machine: Mutex::new(Receiver::new(settings.clone())),
            settings,
            store,
            clock,
            notices,
            next_id: AtomicU64::new(1),
        });
        let app = axum::Router::new()
            .fallback(exchange)
            .layer(DefaultBodyLimit::disable())
            .with_state(shared);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            addr: bound,
            shutdown,
            task,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets exchanges in flight finish, and waits for the server to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "receiver: server ended with an error"),
            Err(e) => tracing::warn!(error = %e, "receiver: server task failed"),
        }
    }
}

/// One exchange, start to finish.
async fn exchange(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let id = RequestId(shared.next_id.fetch_add(1, Ordering::Relaxed));
    let (parts, body) = request.into_parts();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let delivery = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-github-delivery"))
        .map(|(_, v)| v.clone());
    let declared_too_large = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES);
    let body = if declared_too_large {
        None
    } else {
        match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(bytes) => Some(Vec::from(bytes)),
            Err(e) if is_length_limit(&e) => None,
            Err(e) => {
                tracing::debug!(error = %e, "receiver: client went away while sending the body");
                return (
                    axum::http::StatusCode::BAD_REQUEST,
                    "could not read the body",
                )
                    .into_response();
            }
        }
    };
    let mut effects = Vec::new();
    match body {
        Some(body) => {
            let req = HttpRequest {
                method: parts.method.as_str().to_owned(),
                path: parts
                    .uri
                    .path_and_query()
                    .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
                headers,
                body,
            };
            // Routes, signature and parsing need no lock: only the outcome goes to the machine.
            let checked = Receiver::check(&shared.settings, &req);
            let mut m = lock(&shared.machine);
            m.handle_checked(id, checked);
            effects.extend(std::iter::from_fn(|| m.poll_effect()));
        }
        None => {
            let mut m = lock(&shared.machine);
            m.handle_oversized(id, delivery.as_deref());
            effects.extend(std::iter::from_fn(|| m.poll_effect()));
        }
    }
    let mut response = None;
    while !effects.is_empty() {
        let mut next = Vec::new();
        for effect in effects {
            match effect {
                ReceiverEffect::Respond { response: r, .. } => response = Some(r),
                ReceiverEffect::Notice(n) => (shared.notices)(&n),
                ReceiverEffect::Store { id, op, timeout } => {
                    let run = shared.store.run(shared.clock.now(), op);
                    let result = match tokio::time::timeout(timeout, run).await {
                        Ok(result) => result,
                        Err(_) => Err(format!("store did not answer within {timeout:?}")),
                    };
                    let mut m = lock(&shared.machine);
                    m.handle_store_result(shared.clock.now(), id, result);
                    next.extend(std::iter::from_fn(|| m.poll_effect()));
                }
            }
        }
        effects = next;
    }
    match response {
        Some(r) => to_axum(r),
        None => {
            tracing::error!(%id, "receiver: the machine gave no response");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

fn to_axum(r: HttpResponse) -> Response {
    let status = axum::http::StatusCode::from_u16(r.status).unwrap_or(axum::http::StatusCode::OK);
    Response::builder()
        .status(status)
        .header(axum::http::header::CONTENT_TYPE, r.content_type)
        .body(Body::from(r.body))
        .unwrap_or_else(|_| status.into_response())
}

fn lock(m: &Mutex<Receiver>) -> std::sync::MutexGuard<'_, Receiver> {
    // The machine is only mutated through its own methods, which leave it consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
