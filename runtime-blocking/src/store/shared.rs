//! One queue shared by the threads of a process (the receiver's workers, the handlers, the
//! operator tools): each call runs one whole queue operation, atomically, on a store the
//! caller borrows for that call only.
//!
//! The embedded store is one file one process owns, so its threads share it behind a mutex
//! ([`Exclusive`]). A Redis store is one connection per concurrent caller, so its threads
//! check connections out of a [`Pool`] that opens another when all are busy.

use anklet_core::queue::QueueSettings;
use anklet_core::queue::txn::{Backend, Op, Reply, Store};
use anklet_core::time::Timestamp;
use std::sync::Mutex;

/// A queue the threads of a process share.
pub trait SharedStore: Send + Sync {
    /// Runs one operation at `now` to its reply; `Err` is the store's error as text (the
    /// backends' errors never contain a password).
    fn run(&self, now: Timestamp, op: Op) -> Result<Reply, String>;
}

/// One store behind a mutex: operations run one at a time.
pub struct Exclusive<B: Backend>(Mutex<Store<B>>);

impl<B: Backend> Exclusive<B> {
    /// Shares `store`.
    pub fn new(store: Store<B>) -> Self {
        Self(Mutex::new(store))
    }
}

impl<B: Backend + Send> SharedStore for Exclusive<B> {
    fn run(&self, now: Timestamp, op: Op) -> Result<Reply, String> {
        // A panic in another thread mid-operation leaves nothing half-written (every commit is
        // all or nothing), so a poisoned lock is safe to take over.
        let store = self.0.lock().unwrap_or_else(|p| p.into_inner());
        store.run(now, op).map_err(|e| e.to_string())
    }
}

/// A factory of backend connections.
pub type Connect<B> = Box<dyn Fn() -> Result<B, String> + Send + Sync>;

/// Idle stores handed to callers one at a time; a new connection is opened when none is idle.
pub struct Pool<B: Backend> {
    idle: Mutex<Vec<Store<B>>>,
    connect: Connect<B>,
    settings: QueueSettings,
}

impl<B: Backend> Pool<B> {
    /// A pool that opens connections with `connect`.
    pub fn new(connect: Connect<B>, settings: QueueSettings) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            connect,
            settings,
        }
    }
}

impl<B: Backend + Send> SharedStore for Pool<B> {
    fn run(&self, now: Timestamp, op: Op) -> Result<Reply, String> {
        let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let store = match taken {
            Some(store) => store,
            None => Store::new((self.connect)()?, self.settings.clone()),
        };
        let reply = store.run(now, op).map_err(|e| e.to_string());
        // A backend reconnects by itself after an error, so the store goes back either way.
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(store);
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anklet_core::queue::MemoryBackend;
    use anklet_core::queue::conformance::sample_job;
    use std::sync::Arc;

    #[test]
    fn pool_reuses_and_grows() {
        let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&opened);
        let pool = Pool::new(
            Box::new(move || {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(MemoryBackend::new(10))
            }),
            QueueSettings::default(),
        );
        for id in 0..3 {
            let r = pool.run(Timestamp(1), Op::Enqueue(sample_job(id, "o", Some("t"))));
            assert!(r.is_ok(), "{r:?}");
        }
        assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn exclusive_runs_operations() {
        let shared = Exclusive::new(Store::new(MemoryBackend::new(10), QueueSettings::default()));
        let r = shared.run(Timestamp(1), Op::Enqueue(sample_job(1, "o", Some("t"))));
        assert!(matches!(r, Ok(Reply::Enqueued(_))), "{r:?}");
    }
}
