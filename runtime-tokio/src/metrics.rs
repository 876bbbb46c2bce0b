//! The metrics HTTP server on axum, the async twin of `anklet_lite::metrics`:
//! `/metrics/v1?format=json|prometheus`, `/metrics`, `/healthcheck`, and on the aggregator
//! `/metrics/v2`. Routes and bodies are core's ([`anklet_core::metrics`]); this file binds,
//! reads the registry (or the store's host list) and writes the answer.
//!
//! The daemon's part: `MetricsServer::start(addr, registry, clock)` with the
//! `Arc<Mutex<Metrics>>` its handler and receiver notice sinks write to
//! (`record_handler_notice`, `record_receiver_notice`, and `observe_store` for claim answers);
//! [`bind_metrics_port`] applies Anklet's port rule; [`crate::heartbeat`] stores heartbeats.

use crate::store::shared::SharedStore;
use anklet_core::metrics::{Fleet, Metrics, MetricsRoute, candidate_ports, route};
use anklet_core::queue::txn::{Op, Reply};
use anklet_core::receiver::HttpResponse;
use anklet_lite::clock::Clock;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// Why the metrics server could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsServeError {
    /// The configured port (or every port from 8080 up) is taken.
    #[error("cannot listen for metrics on {what}: {source}")]
    Bind {
        /// The address, port or range tried.
        what: String,
        /// The last OS error.
        source: std::io::Error,
    },
}

/// What the server answers from.
#[derive(Clone)]
pub enum MetricsSource {
    /// This process's registry.
    Local(Arc<Mutex<Metrics>>),
    /// The fleet's heartbeats in the store (the aggregator); hosts silent for longer than
    /// `stale_after` are marked stale.
    Fleet {
        /// The store holding the heartbeats.
        store: SharedStore,
        /// Silence after which a host is stale.
        stale_after: Duration,
    },
}

/// Binds the metrics port on all interfaces: `configured`, else the first free from 8080.
pub async fn bind_metrics_port(configured: Option<u16>) -> Result<TcpListener, MetricsServeError> {
    let mut last = None;
    for port in candidate_ports(configured) {
        match TcpListener::bind(("0.0.0.0", port)).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(MetricsServeError::Bind {
        what: configured.map_or_else(|| "any port from 8080".to_owned(), |p| format!("port {p}")),
        source: last.unwrap_or_else(|| std::io::Error::other("no port to try")),
    })
}

struct Shared {
    source: MetricsSource,
    clock: Arc<Clock>,
}

/// A running metrics server; [`MetricsServer::stop`] ends it.
pub struct MetricsServer {
    addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl MetricsServer {
    /// Serves `registry` on `addr` (e.g. `0.0.0.0:8080`, port 0 for any): the daemon's call.
    pub async fn start(
        addr: SocketAddr,
        registry: Arc<Mutex<Metrics>>,
        clock: Arc<Clock>,
    ) -> Result<Self, MetricsServeError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsServeError::Bind {
                what: addr.to_string(),
                source,
            })?;
        Self::serve(listener, MetricsSource::Local(registry), clock)
    }

    /// Serves `source` on a bound listener (from [`bind_metrics_port`]).
    pub fn serve(
        listener: TcpListener,
        source: MetricsSource,
        clock: Arc<Clock>,
    ) -> Result<Self, MetricsServeError> {
        let addr = listener
            .local_addr()
            .map_err(|source| MetricsServeError::Bind {
                what: "the given listener".to_owned(),
                source,
            })?;
        let app = axum::Router::new()
            .fallback(exchange)
            .with_state(Arc::new(Shared { source, clock }));
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            addr,
            shutdown,
            task,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish, and waits for the server to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "metrics: server ended with an error"),
            Err(e) => tracing::warn!(error = %e, "metrics: server task failed"),
        }
    }
}

async fn exchange(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let uri = request.uri();
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let answer = match route(request.method().as_str(), &path) {
        Ok(r) => answer(&shared.source, r, &shared.clock).await,
        Err(refused) => refused,
    };
    to_axum(answer)
}

/// The answer to one routed request.
pub async fn answer(source: &MetricsSource, r: MetricsRoute, clock: &Clock) -> HttpResponse {
    match source {
        MetricsSource::Local(registry) => registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .respond(r, clock.now()),
        MetricsSource::Fleet { store, stale_after } => {
            if !r.needs_fleet() {
                return Fleet::default().respond(r);
            }
            match store.run(clock.now(), Op::Hosts(*stale_after)).await {
                Ok(Reply::Hosts(hosts)) => Fleet::from_hosts(&hosts).respond(r),
                Ok(other) => HttpResponse::text(
                    500,
                    format!("the store answered {other:?} to a host listing"),
                ),
                Err(e) => HttpResponse::text(503, format!("cannot read the fleet: {e}")),
            }
        }
    }
}

fn to_axum(r: HttpResponse) -> Response {
    let status = axum::http::StatusCode::from_u16(r.status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    Response::builder()
        .status(status)
        .header(axum::http::header::CONTENT_TYPE, r.content_type)
        .body(Body::from(r.body))
        .unwrap_or_else(|_| status.into_response())
}
