//! The daemon's metrics, the async twin of `anklet_lite::daemon::metrics`: one registry per
//! process fed by every handler and receiver notice and by the handlers' claim answers, the
//! metrics server on `metrics.port` (first free from 8080 when unset), and a heartbeat task that
//! every `metrics.sleep_interval` refreshes host figures and queue depth and stores each
//! handler's export document as its heartbeat. In aggregator mode (`metrics.aggregator: true`)
//! no plugin runs: the server answers from the store's host list.

use crate::heartbeat::{HostProbe, beat, refresh};
use crate::metrics::{MetricsServer, MetricsSource, bind_metrics_port};
use crate::store::redis::{AsyncRedisOptions, AsyncRedisStore};
use crate::store::shared::{RedisPool, SharedStore};
use anklet_core::config::Config;
use anklet_core::metrics::{Metrics, stale_after};
use anklet_core::queue::QueueSettings;
use anklet_core::queue::redis_layout::{DEFAULT_PREFIX, RedisLayout};
use anklet_core::queue::txn::{Op, Reply};
use anklet_core::time::Timestamp;
use anklet_lite::clock::Clock;
use anklet_lite::common::{Control, expand_home};
use anklet_lite::store::embedded::open_store;
use anklet_lite::store::shared::Exclusive;
use anyhow::{Context, anyhow};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The registry every plugin task of the process writes to.
pub type Registry = Arc<Mutex<Metrics>>;

/// Locks the registry; a panic elsewhere never leaves it half-updated in a way that matters
/// for counting, so a poisoned lock is taken over.
pub fn lock(registry: &Registry) -> MutexGuard<'_, Metrics> {
    registry.lock().unwrap_or_else(|p| p.into_inner())
}

/// A registry listing the config's plugins in file order.
pub fn registry(config: &Config, now: Timestamp) -> Registry {
    Arc::new(Mutex::new(Metrics::for_plugins(&config.plugins, now)))
}

/// A store that shows every claim answer to the registry before handing it back, so claims
/// give the metrics their template and queue wait. Decisions are untouched.
#[derive(Clone)]
pub struct MeteredStore {
    inner: SharedStore,
    registry: Registry,
}

impl MeteredStore {
    /// Wraps `inner`.
    pub fn new(inner: SharedStore, registry: Registry) -> Self {
        Self { inner, registry }
    }

    /// Runs one operation at `now` to its reply, as [`SharedStore::run`] does.
    pub async fn run(&self, now: Timestamp, op: Op) -> Result<Reply, String> {
        let watched = matches!(op, Op::Claim(..)).then(|| op.clone());
        let reply = self.inner.run(now, op).await?;
        if let Some(op) = watched {
            lock(&self.registry).observe_store(now, &op, &reply);
        }
        Ok(reply)
    }
}

/// The running metrics parts of a daemon.
pub struct MetricsParts {
    server: MetricsServer,
    heartbeat: (oneshot::Sender<()>, JoinHandle<()>),
}

impl MetricsParts {
    /// Stops the heartbeat task and the server.
    pub async fn stop(self) {
        let (stop, task) = self.heartbeat;
        let _ = stop.send(());
        if let Err(e) = task.await {
            tracing::warn!(error = %e, "metrics: heartbeat task failed");
        }
        self.server.stop().await;
    }
}

/// Starts the server on the configured port and the heartbeat task.
pub async fn start(
    config: &Config,
    registry: &Registry,
    store: &SharedStore,
    clock: &Arc<Clock>,
) -> anyhow::Result<MetricsParts> {
    let listener = bind_metrics_port(config.metrics.port_number()).await?;
    let server = MetricsServer::serve(
        listener,
        MetricsSource::Local(Arc::clone(registry)),
        Arc::clone(clock),
    )?;
    tracing::info!(
        addr = %server.local_addr(),
        "metrics on /metrics/v1?format=json|prometheus and /metrics"
    );
    let hosts: Vec<String> = config.handlers().map(|p| p.name.clone()).collect();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(heartbeat_loop(
        Arc::clone(registry),
        store.clone(),
        Arc::clone(clock),
        hosts,
        config.metrics.sleep_interval(),
        stopped,
    ));
    Ok(MetricsParts {
        server,
        heartbeat: (stop, task),
    })
}

/// Until `stop` fires or is dropped: refresh host figures and queue depth, send every
/// handler's heartbeat, wait `interval`.
async fn heartbeat_loop(
    registry: Registry,
    store: SharedStore,
    clock: Arc<Clock>,
    hosts: Vec<String>,
    interval: Duration,
    mut stop: oneshot::Receiver<()>,
) {
    let probe = HostProbe::new();
    loop {
        refresh(&registry, &store, &clock, &probe).await;
        beat(&registry, &store, &clock, &hosts).await;
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Anklet's aggregator mode: no plugin runs; `/metrics/v1` and `/metrics/v2` answer for the
/// whole fleet from the heartbeats in the store, until a stop signal.
pub async fn run_aggregator(
    config: &Config,
    env: &BTreeMap<String, String>,
    controls: &mut UnboundedReceiver<Control>,
) -> anyhow::Result<ExitCode> {
    let clock = Arc::new(Clock::new());
    let store = open_aggregator_store(config, env)?;
    let listener = bind_metrics_port(config.metrics.port_number()).await?;
    let source = MetricsSource::Fleet {
        store,
        stale_after: stale_after(config.metrics.sleep_interval()),
    };
    let server = MetricsServer::serve(listener, source, clock)?;
    tracing::info!(
        addr = %server.local_addr(),
        "metrics aggregator on /metrics/v1, /metrics/v2 (format=json|prometheus) and /metrics"
    );
    // Any signal ends the aggregator: it holds no job to finish.
    let code = match controls.recv().await {
        Some(Control::Abort) => ExitCode::from(1),
        Some(Control::Stop | Control::Drain) | None => ExitCode::SUCCESS,
    };
    server.stop().await;
    Ok(code)
}

/// The aggregator's store: Redis from `global_database_*`, else `metrics.database.*`, with the
/// queue of the config's first plugin (its heartbeats); else the embedded file.
fn open_aggregator_store(
    config: &Config,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<SharedStore> {
    let settings = QueueSettings::default();
    match config.aggregator_database().settings() {
        Some(db) => {
            let queue = config
                .plugins
                .first()
                .map(|p| p.queue_owner().to_owned())
                .ok_or_else(|| {
                    anyhow!(
                        "metrics.aggregator: list the fleet's plugin entry (it is not run) so the aggregator knows which queue's heartbeats to read"
                    )
                })?;
            let layout = RedisLayout::new(DEFAULT_PREFIX, &queue)
                .map_err(|e| anyhow!("queue name {queue:?} cannot be used: {e}"))?;
            let opts = AsyncRedisOptions::new(layout);
            tracing::info!(
                host = db.url,
                port = db.port,
                queue,
                "aggregator store: Redis"
            );
            let pool = RedisPool::new(Box::new(move || {
                AsyncRedisStore::new(&db, opts.clone(), settings.clone()).map_err(|e| e.to_string())
            }));
            Ok(SharedStore::Redis(Arc::new(pool)))
        }
        None => {
            let path = expand_home(config.store_path(), env);
            let store = open_store(&path, settings)
                .with_context(|| format!("cannot open the job store {}", path.display()))?;
            Ok(SharedStore::Blocking(Arc::new(Exclusive::new(store))))
        }
    }
}
