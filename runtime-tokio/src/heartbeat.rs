//! Heartbeats and metric snapshots for the tokio daemon, the async twin of
//! `anklet_lite::daemon::metrics`: every `metrics.sleep_interval` the daemon calls [`refresh`]
//! (host CPU/memory/disk and queue depth into the registry) and [`beat`] (each handler's
//! Anklet export stored as its heartbeat, which the aggregator lists with stale hosts marked).

use crate::store::shared::SharedStore;
use anklet_core::ids::HostId;
use anklet_core::metrics::Metrics;
use anklet_core::queue::txn::{Op, Reply};
use anklet_lite::clock::Clock;
use anklet_lite::host::{CpuSampler, metrics_stats};
use std::sync::{Arc, Mutex, MutexGuard};

fn lock(registry: &Mutex<Metrics>) -> MutexGuard<'_, Metrics> {
    // Counting survives a panic elsewhere; the registry stays usable.
    registry.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stores each of `hosts`' export document as its heartbeat; a failed write is logged and
/// retried at the next beat.
pub async fn beat(registry: &Mutex<Metrics>, store: &SharedStore, clock: &Clock, hosts: &[String]) {
    for host in hosts {
        let now = clock.now();
        let Some(payload) = lock(registry).heartbeat_payload(host, now) else {
            continue;
        };
        if let Err(e) = store
            .run(now, Op::Heartbeat(HostId(host.clone()), payload))
            .await
        {
            tracing::warn!(plugin = host, error = e, "heartbeat not stored");
        }
    }
}

/// The CPU sampler the daemon keeps between refreshes, so each usage figure covers one
/// interval (`None` where sysinfo cannot sample; usage then reads 0).
#[derive(Clone)]
pub struct HostProbe(Arc<Mutex<Option<CpuSampler>>>);

impl HostProbe {
    /// Starts sampling now.
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(CpuSampler::new().ok())))
    }
}

impl Default for HostProbe {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads host CPU, memory and disk (on a blocking thread), and the queue's depth, into the
/// registry.
pub async fn refresh(
    registry: &Arc<Mutex<Metrics>>,
    store: &SharedStore,
    clock: &Clock,
    probe: &HostProbe,
) {
    let cpu = Arc::clone(&probe.0);
    let stats = tokio::task::spawn_blocking(move || {
        let mut cpu = cpu.lock().unwrap_or_else(|p| p.into_inner());
        metrics_stats(cpu.as_mut())
    });
    if let Ok(Ok(stats)) = stats.await {
        lock(registry).set_host_stats(stats);
    }
    // Counted from the store's indexes: reading every record here made a long queue block
    // Redis and grow this process' memory every interval.
    match store.run(clock.now(), Op::Depth).await {
        Ok(Reply::Depth(depth)) => lock(registry).set_queue_depth(depth),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = e, "queue depth not read"),
    }
}
