//! One queue shared by the tasks of the tokio daemon: the embedded store through
//! `spawn_blocking` (the very same storage code as `anklet-lite`), or Redis through a pool of
//! async stores that opens another connection when all are busy.

use super::redis::AsyncRedisStore;
use anklet_core::queue::redis_layout::MAX_COMMITS_PER_CALL;
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
///
/// Enqueues are group-committed: concurrent [`Op::Enqueue`] calls queue up while one task
/// commits everything queued so far in one script call
/// ([`AsyncRedisStore::run_group`]), then sends each caller its own reply; each caller still
/// returns only after its own commit, so a receiver answers 2xx only for what is stored.
pub struct RedisPool {
    idle: Mutex<Vec<AsyncRedisStore>>,
    connect: ConnectRedis,
    group: Mutex<Group>,
}

/// Where one enqueue's reply goes.
type ReplyTo = tokio::sync::oneshot::Sender<Result<Reply, String>>;

/// Enqueues waiting for the group-commit task.
#[derive(Default)]
struct Group {
    /// A task is committing; it takes what is pending when its commit is done.
    running: bool,
    pending: Vec<(Timestamp, Op, ReplyTo)>,
}

impl RedisPool {
    /// A pool that opens stores with `connect`.
    pub fn new(connect: ConnectRedis) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            connect,
            group: Mutex::default(),
        }
    }

    fn take(&self) -> Result<AsyncRedisStore, String> {
        let taken = lock(&self.idle).pop();
        match taken {
            Some(s) => Ok(s),
            None => (self.connect)(),
        }
    }

    fn give_back(&self, store: AsyncRedisStore) {
        lock(&self.idle).push(store);
    }

    /// Queues an enqueue for the group commit (starting the committing task if none runs)
    /// and waits for its own reply.
    async fn enqueue(self: &Arc<Self>, now: Timestamp, op: Op) -> Result<Reply, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let start = {
            let mut g = lock(&self.group);
            g.pending.push((now, op, tx));
            !std::mem::replace(&mut g.running, true)
        };
        if start {
            tokio::spawn(Arc::clone(self).commit_groups());
        }
        rx.await
            .unwrap_or_else(|_| Err("the group commit ended without an answer".to_owned()))
    }

    /// Commits what is pending, group after group, until nothing is.
    async fn commit_groups(self: Arc<Self>) {
        loop {
            let batch = {
                let mut g = lock(&self.group);
                if g.pending.is_empty() {
                    g.running = false;
                    return;
                }
                let n = g.pending.len().min(MAX_COMMITS_PER_CALL);
                g.pending.drain(..n).collect::<Vec<_>>()
            };
            let (ops, senders): (Vec<(Timestamp, Op)>, Vec<ReplyTo>) = batch
                .into_iter()
                .map(|(now, op, tx)| ((now, op), tx))
                .unzip();
            let replies = match self.take() {
                Ok(mut store) => {
                    let replies = store.run_group(ops).await;
                    self.give_back(store);
                    replies
                }
                Err(e) => senders.iter().map(|_| Err(e.clone())).collect(),
            };
            for (tx, reply) in senders.into_iter().zip(replies) {
                // A caller that gave up (its timeout) no longer listens.
                let _ = tx.send(reply);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every value behind these mutexes is left consistent between statements.
    m.lock().unwrap_or_else(|p| p.into_inner())
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
                if matches!(op, Op::Enqueue(_)) {
                    return pool.enqueue(now, op).await;
                }
                let mut store = pool.take()?;
                let reply = store.run(now, op).await.map_err(|e| e.to_string());
                pool.give_back(store);
                reply
            }
        }
    }
}
