//! The metrics HTTP server on tiny_http: `/metrics/v1?format=json|prometheus`, `/metrics`,
//! `/healthcheck`, and on the aggregator `/metrics/v2`. Routes and bodies are core's
//! ([`anklet_core::metrics`]); this file only binds, reads the registry (or the store's host
//! list) and writes the answer.

use crate::clock::Clock;
use crate::store::shared::SharedStore;
use anklet_core::metrics::{Fleet, Metrics, MetricsRoute, candidate_ports, route};
use anklet_core::queue::txn::{Op, Reply};
use anklet_core::receiver::HttpResponse;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Why the metrics server could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsServeError {
    /// The configured port (or every port from 8080 up) is taken.
    #[error("cannot listen for metrics on {what}: {source}")]
    Bind {
        /// The port or range tried.
        what: String,
        /// The last OS error.
        source: std::io::Error,
    },
    /// tiny_http refused the listener.
    #[error("cannot start the metrics server: {0}")]
    Server(String),
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
        store: Arc<dyn SharedStore>,
        /// Silence after which a host is stale.
        stale_after: Duration,
    },
}

/// Binds the metrics port on all interfaces: `configured`, else the first free from 8080.
pub fn bind_metrics_port(configured: Option<u16>) -> Result<TcpListener, MetricsServeError> {
    let mut last = None;
    for port in candidate_ports(configured) {
        match TcpListener::bind(("0.0.0.0", port)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(MetricsServeError::Bind {
        what: configured.map_or_else(|| "any port from 8080".to_owned(), |p| format!("port {p}")),
        source: last.unwrap_or_else(|| std::io::Error::other("no port to try")),
    })
}

/// A running metrics server; [`MetricsServer::stop`] ends it.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Serves `source` on `listener` (from [`bind_metrics_port`], or any bound listener).
    pub fn start(
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
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| MetricsServeError::Server(e.to_string()))?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("metrics-http".to_owned())
                .spawn(move || serve(&server, &stop, &source, &clock))
                .map_err(|e| MetricsServeError::Server(e.to_string()))?
        };
        Ok(Self {
            server,
            stop,
            worker: Some(worker),
            addr,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and joins the worker.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(server: &tiny_http::Server, stop: &AtomicBool, source: &MetricsSource, clock: &Clock) {
    while !stop.load(Ordering::SeqCst) {
        match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(request)) => {
                let answer = match route(request.method().as_str(), request.url()) {
                    Ok(r) => answer(source, r, clock),
                    Err(refused) => refused,
                };
                respond(request, &answer);
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "metrics: accepting a request failed"),
        }
    }
}

/// The answer to one routed request.
pub fn answer(source: &MetricsSource, r: MetricsRoute, clock: &Clock) -> HttpResponse {
    match source {
        MetricsSource::Local(registry) => {
            let m = registry.lock().unwrap_or_else(|p| p.into_inner());
            m.respond(r, clock.now())
        }
        MetricsSource::Fleet { store, stale_after } => {
            if !r.needs_fleet() {
                return Fleet::default().respond(r);
            }
            match store.run(clock.now(), Op::Hosts(*stale_after)) {
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

fn respond(request: tiny_http::Request, r: &HttpResponse) {
    let mut response = tiny_http::Response::from_string(r.body.clone()).with_status_code(r.status);
    if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", r.content_type) {
        response = response.with_header(h);
    }
    if let Err(e) = request.respond(response) {
        tracing::debug!(error = %e, "metrics: client went away before the response");
    }
}
