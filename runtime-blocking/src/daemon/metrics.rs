//! The daemon's metrics: one registry per process fed by every handler and receiver notice and
//! by the handlers' claim answers, the metrics server on `metrics.port` (first free from 8080
//! when unset), and a heartbeat thread that every `metrics.sleep_interval` refreshes host
//! figures and queue depth and stores each handler's export document as its heartbeat. In
//! aggregator mode (`metrics.aggregator: true`) no plugin runs: the server answers from the
//! store's host list.

use super::{Control, expand_home};
use crate::clock::Clock;
use crate::metrics::{MetricsServer, MetricsSource, bind_metrics_port};
use crate::store::embedded::open_store;
use crate::store::shared::{Exclusive, SharedStore};
use anklet_core::config::Config;
use anklet_core::ids::HostId;
use anklet_core::metrics::{Metrics, stale_after};
use anklet_core::queue::QueueSettings;
use anklet_core::queue::txn::{Op, Reply};
use anklet_core::time::Timestamp;
use anyhow::Context;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// The registry every plugin thread of the process writes to.
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

/// A store that shows every answer to the registry before handing it back, so claims give the
/// metrics their template and queue wait. Decisions are untouched.
pub struct MeteredStore {
    inner: Arc<dyn SharedStore>,
    registry: Registry,
}

impl MeteredStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn SharedStore>, registry: Registry) -> Self {
        Self { inner, registry }
    }
}

impl SharedStore for MeteredStore {
    fn run(&self, now: Timestamp, op: Op) -> Result<Reply, String> {
        let watched = matches!(op, Op::Claim(..)).then(|| op.clone());
        let reply = self.inner.run(now, op)?;
        if let Some(op) = watched {
            lock(&self.registry).observe_store(now, &op, &reply);
        }
        Ok(reply)
    }
}

/// The running metrics parts of a daemon.
pub struct MetricsParts {
    server: MetricsServer,
    heartbeat: Option<(Sender<()>, JoinHandle<()>)>,
}

impl MetricsParts {
    /// Stops the heartbeat thread and the server.
    pub fn stop(self) {
        if let Some((tx, thread)) = self.heartbeat {
            drop(tx);
            let _ = thread.join();
        }
        self.server.stop();
    }
}

/// Starts the server on the configured port and the heartbeat thread.
pub fn start(
    config: &Config,
    registry: &Registry,
    store: &Arc<dyn SharedStore>,
    clock: &Arc<Clock>,
) -> anyhow::Result<MetricsParts> {
    let listener = bind_metrics_port(config.metrics.port_number())?;
    let server = MetricsServer::start(
        listener,
        MetricsSource::Local(Arc::clone(registry)),
        Arc::clone(clock),
    )?;
    tracing::info!(
        addr = %server.local_addr(),
        "metrics on /metrics/v1?format=json|prometheus and /metrics"
    );
    let hosts: Vec<String> = config.handlers().map(|p| p.name.clone()).collect();
    let (tx, rx) = channel();
    let (registry, store, clock) = (Arc::clone(registry), Arc::clone(store), Arc::clone(clock));
    let interval = config.metrics.sleep_interval();
    let thread = std::thread::Builder::new()
        .name("metrics-heartbeat".to_owned())
        .spawn(move || heartbeat_loop(&registry, store.as_ref(), &clock, &hosts, interval, &rx))
        .context("cannot start the heartbeat thread")?;
    Ok(MetricsParts {
        server,
        heartbeat: Some((tx, thread)),
    })
}

/// Until `stop` is dropped: refresh host figures and queue depth, send every handler's
/// heartbeat, wait `interval`. A last heartbeat goes out on the way out, so the aggregator
/// sees the handlers' final status (`stopped`) rather than their last busy one.
pub fn heartbeat_loop(
    registry: &Registry,
    store: &dyn SharedStore,
    clock: &Clock,
    hosts: &[String],
    interval: Duration,
    stop: &Receiver<()>,
) {
    let mut cpu = crate::host::CpuSampler::new().ok();
    loop {
        refresh(registry, store, clock, cpu.as_mut());
        beat(registry, store, clock, hosts);
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                beat(registry, store, clock, hosts);
                return;
            }
        }
    }
}

/// Stores each of `hosts`' export document as its heartbeat.
pub fn beat(registry: &Registry, store: &dyn SharedStore, clock: &Clock, hosts: &[String]) {
    for host in hosts {
        let now = clock.now();
        let Some(payload) = lock(registry).heartbeat_payload(host, now) else {
            continue;
        };
        if let Err(e) = store.run(now, Op::Heartbeat(HostId(host.clone()), payload)) {
            tracing::warn!(plugin = host, error = e, "heartbeat not stored");
        }
    }
}

/// Reads host CPU (usage from `cpu` since its previous read), memory and disk, and the
/// queue's depth, into the registry.
pub fn refresh(
    registry: &Registry,
    store: &dyn SharedStore,
    clock: &Clock,
    cpu: Option<&mut crate::host::CpuSampler>,
) {
    if let Ok(stats) = crate::host::metrics_stats(cpu) {
        lock(registry).set_host_stats(stats);
    }
    // Counted from the store's indexes: reading every record here made a long queue block
    // Redis and grow this process' memory every interval.
    match store.run(clock.now(), Op::Depth) {
        Ok(Reply::Depth(depth)) => lock(registry).set_queue_depth(depth),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = e, "queue depth not read"),
    }
}

/// Anklet's aggregator mode: no plugin runs; `/metrics/v1` and `/metrics/v2` answer for the
/// whole fleet from the heartbeats in the store, until a stop signal.
pub fn run_aggregator(
    config: &Config,
    env: &BTreeMap<String, String>,
    controls: &Receiver<Control>,
) -> anyhow::Result<ExitCode> {
    let clock = Arc::new(Clock::new());
    let store = open_aggregator_store(config, env)?;
    let listener = bind_metrics_port(config.metrics.port_number())?;
    let source = MetricsSource::Fleet {
        store,
        stale_after: stale_after(config.metrics.sleep_interval()),
    };
    let server = MetricsServer::start(listener, source, clock)?;
    tracing::info!(
        addr = %server.local_addr(),
        "metrics aggregator on /metrics/v1, /metrics/v2 (format=json|prometheus) and /metrics"
    );
    // Any signal ends the aggregator: it holds no job to finish.
    let code = match controls.recv() {
        Ok(Control::Abort) => ExitCode::from(1),
        Ok(Control::Stop | Control::Drain) | Err(_) => ExitCode::SUCCESS,
    };
    server.stop();
    Ok(code)
}

/// The aggregator's store: Redis from `global_database_*`, else `metrics.database.*`, with the
/// queue of the config's first plugin (its heartbeats); else the embedded file.
fn open_aggregator_store(
    config: &Config,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<Arc<dyn SharedStore>> {
    let settings = QueueSettings::default();
    match config.aggregator_database().settings() {
        #[cfg(feature = "redis")]
        Some(db) => {
            use crate::store::redis::{RedisBackend, RedisOptions};
            use crate::store::shared::Pool;
            use anklet_core::queue::redis_layout::{DEFAULT_PREFIX, RedisLayout};
            let queue = config
                .plugins
                .first()
                .map(|p| p.queue_owner().to_owned())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "metrics.aggregator: list the fleet's plugin entry (it is not run) so the aggregator knows which queue's heartbeats to read"
                    )
                })?;
            let layout = RedisLayout::new(DEFAULT_PREFIX, &queue)
                .map_err(|e| anyhow::anyhow!("queue name {queue:?} cannot be used: {e}"))?;
            let opts = RedisOptions::new(layout, &settings);
            tracing::info!(
                host = db.url,
                port = db.port,
                queue,
                "aggregator store: Redis"
            );
            Ok(Arc::new(Pool::new(
                Box::new(move || RedisBackend::new(&db, opts.clone()).map_err(|e| e.to_string())),
                settings,
            )))
        }
        #[cfg(not(feature = "redis"))]
        Some(_) => Err(anyhow::anyhow!(
            "a database is configured but this build has no Redis support"
        )),
        None => {
            let path = expand_home(config.store_path(), env);
            let store = open_store(&path, settings)
                .with_context(|| format!("cannot open the job store {}", path.display()))?;
            Ok(Arc::new(Exclusive::new(store)))
        }
    }
}
