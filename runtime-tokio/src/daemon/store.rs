//! The job store every plugin of the process shares: Redis when a plugin configures a
//! database (a fleet sharing one queue), else the embedded redb file at `store_path` (one
//! host), the same choice `anklet-lite` and the `queue` tools make
//! ([`store_location`]).

use crate::store::redis::{AsyncRedisOptions, AsyncRedisStore};
use crate::store::shared::{RedisPool, SharedStore};
use anklet_core::config::Config;
use anklet_core::queue::QueueSettings;
use anklet_core::queue::redis_layout::{DEFAULT_PREFIX, RedisLayout};
use anklet_lite::common::{StoreLocation, store_location};
use anklet_lite::store::embedded::open_store;
use anklet_lite::store::shared::Exclusive;
use anyhow::{Context, anyhow};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Opens the shared store the config asks for.
pub fn open_shared_store(
    config: &Config,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<SharedStore> {
    let settings = QueueSettings::default();
    match store_location(config, env) {
        StoreLocation::Redis { db, queue } => {
            let layout = RedisLayout::new(DEFAULT_PREFIX, &queue)
                .map_err(|e| anyhow!("queue name {queue:?} cannot be used: {e}"))?;
            let opts = AsyncRedisOptions::new(layout);
            tracing::info!(host = db.url, port = db.port, queue, "job store: Redis");
            let pool = RedisPool::new(Box::new(move || {
                AsyncRedisStore::new(&db, opts.clone(), settings.clone()).map_err(|e| e.to_string())
            }));
            Ok(SharedStore::Redis(Arc::new(pool)))
        }
        StoreLocation::Embedded(path) => {
            tracing::info!(path = %path.display(), "job store: embedded file (one host)");
            let store = open_store(&path, settings)
                .with_context(|| format!("cannot open the job store {}", path.display()))?;
            Ok(SharedStore::Blocking(Arc::new(Exclusive::new(store))))
        }
    }
}
