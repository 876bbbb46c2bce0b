//! One queue shared by the tasks of the tokio daemon: the embedded store through
//! `spawn_blocking` (the very same storage code as `anklet-lite`), or Redis through a pool of
//! async stores that opens another connection when all are busy.

use super::redis::AsyncRedisStore;
use anklet_core::queue::txn::{Op, Reply};
use anklet_core::time::Timestamp;
use std::sync::{Arc, Mutex};

/// A factory of async Redis stores (each holds its own connections).
pub type ConnectRedis = Box<dyn Fn() -> Result<AsyncRedisStore, String> + Send + Sync>;

/// A queue the daemon's tasks share; cheap to clone.
#[derive(Clone)]
pub enum SharedStore {
    /// A blocking store (the embedded one) run on tokio's blocking pool.
    Blocking(Arc<dyn anklet_lite::store::shared::SharedStore>),
    /// Redis, through a pool.
    Redis(Arc<RedisPool>),
}

/// Idle async Redis stores.
pub struct RedisPool {
    idle: Mutex<Vec<AsyncRedisStore>>,
    connect: ConnectRedis,
}

impl RedisPool {
    /// A pool that opens stores with `connect`.
    pub fn new(connect: ConnectRedis) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            connect,
        }
    }
}

impl SharedStore {
    /// Runs one operation at `now` to its reply; `Err` is the store's error as text.
    pub async fn run(&self, now: Timestamp, op: Op) -> Result<Reply, String> {
        match self {
            SharedStore::Blocking(store) => {
                let store = Arc::clone(store);
                tokio::task::spawn_blocking(move || store.run(now, op))
                    .await
                    .map_err(|e| format!("store task failed: {e}"))?
            }
            SharedStore::Redis(pool) => {
                let taken = pool.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let mut store = match taken {
                    Some(s) => s,
                    None => (pool.connect)()?,
                };
                let reply = store.run(now, op).await.map_err(|e| e.to_string());
                pool.idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(store);
                reply
            }
        }
    }
}
