//! One queue shared by the threads of a process (the receiver's workers, the handlers, the
//! operator tools): each call runs one whole queue operation, atomically, on a store the
//! caller borrows for that call only.
//!
//! The embedded store is one file one process owns, so its threads share it behind a mutex
//! ([`Exclusive`]). A Redis store is one connection per concurrent caller, so its threads
//! check connections out of a [`Pool`] that opens another when all are busy.

use anklet_core::queue::QueueSettings;
use anklet_core::queue::redis_layout::MAX_COMMITS_PER_CALL;
use anklet_core::queue::txn::{self, Backend, Commit, Op, Reply, Step, Store, StoreError, Txn};
use anklet_core::time::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

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

/// A backend that can apply several independent commits at once, each as if alone (Redis:
/// one script call). The default applies them one by one.
pub trait CommitMany: Backend {
    /// Applies `commits` in order; whether each was applied. An error leaves every one of
    /// them in doubt, as a failed [`Backend::commit`] does.
    fn commit_many(&mut self, commits: &[Commit]) -> Result<Vec<bool>, Self::Error> {
        commits.iter().map(|c| self.commit(c)).collect()
    }
}

impl CommitMany for anklet_core::queue::MemoryBackend {}

/// Idle stores handed to callers one at a time; a new connection is opened when none is idle.
///
/// Enqueues are group-committed: concurrent [`Op::Enqueue`] calls queue up while one caller
/// (the leader) commits everything queued so far with one [`CommitMany::commit_many`], then
/// hands each caller its own reply; an enqueue whose optimistic commit was refused (the job is
/// known) finishes on its own with the usual read. Every caller still returns only after its
/// own commit, so a receiver answers 2xx only for what is stored.
pub struct Pool<B: Backend> {
    idle: Mutex<Vec<Store<B>>>,
    connect: Connect<B>,
    settings: QueueSettings,
    group: Mutex<Group>,
}

/// Enqueues waiting for a group commit, and the replies of those committed.
#[derive(Default)]
struct Group {
    leading: bool,
    next_ticket: u64,
    pending: VecDeque<(u64, Timestamp, Op, Arc<Waiter>)>,
}

/// One caller waiting in a group commit, woken alone: with its reply, or to lead the next
/// group (a condition variable shared by all waiters woke every one of them after each group).
#[derive(Default)]
struct Waiter {
    state: Mutex<Turn>,
    wake: Condvar,
}

#[allow(
    clippy::large_enum_variant,
    reason = "one per waiting caller, its reply moved out once"
)]
#[derive(Default)]
enum Turn {
    #[default]
    Waiting,
    Lead,
    Done(Result<Reply, String>),
}

impl Waiter {
    fn set(&self, turn: Turn) {
        *lock(&self.state) = turn;
        self.wake.notify_one();
    }

    /// Blocks until the reply or the lead arrives; `None` means lead.
    fn wait(&self) -> Option<Result<Reply, String>> {
        let mut state = lock(&self.state);
        loop {
            match std::mem::take(&mut *state) {
                Turn::Waiting => {
                    state = self.wake.wait(state).unwrap_or_else(|p| p.into_inner());
                }
                Turn::Lead => return None,
                Turn::Done(reply) => return Some(reply),
            }
        }
    }
}

impl<B: Backend> Pool<B> {
    /// A pool that opens connections with `connect`.
    pub fn new(connect: Connect<B>, settings: QueueSettings) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            connect,
            settings,
            group: Mutex::default(),
        }
    }
}

impl<B: CommitMany> Pool<B> {
    fn take(&self) -> Result<Store<B>, String> {
        let taken = lock(&self.idle).pop();
        match taken {
            Some(store) => Ok(store),
            None => Ok(Store::new((self.connect)()?, self.settings.clone())),
        }
    }

    fn give_back(&self, store: Store<B>) {
        // A backend reconnects by itself after an error, so the store goes back either way.
        lock(&self.idle).push(store);
    }

    /// Joins (or leads) a group commit; returns this enqueue's own reply.
    fn enqueue(&self, now: Timestamp, op: Op) -> Result<Reply, String> {
        let me = Arc::new(Waiter::default());
        let lead = {
            let mut group = lock(&self.group);
            let ticket = group.next_ticket;
            group.next_ticket += 1;
            group.pending.push_back((ticket, now, op, Arc::clone(&me)));
            !std::mem::replace(&mut group.leading, true)
        };
        if !lead && let Some(reply) = me.wait() {
            return reply;
        }
        loop {
            // Leading: commit what is pending (this caller's enqueue among it unless more
            // than a group's worth came first), hand the lead on, and answer.
            let batch: Vec<_> = {
                let mut group = lock(&self.group);
                let n = group.pending.len().min(MAX_COMMITS_PER_CALL);
                group.pending.drain(..n).collect()
            };
            let mut waiters = HashMap::with_capacity(batch.len());
            let ops = batch
                .into_iter()
                .map(|(ticket, now, op, waiter)| {
                    waiters.insert(ticket, waiter);
                    (ticket, now, op)
                })
                .collect();
            let mut mine = None;
            for (ticket, reply) in self.commit_group(ops) {
                match waiters.remove(&ticket) {
                    Some(w) if Arc::ptr_eq(&w, &me) => mine = Some(reply),
                    Some(w) => w.set(Turn::Done(reply)),
                    None => {}
                }
            }
            for (_, w) in waiters {
                // Never happens (every ticket gets a reply), but no caller may wait forever.
                let lost = Err("the group commit gave no answer".to_owned());
                if Arc::ptr_eq(&w, &me) {
                    mine = Some(lost);
                } else {
                    w.set(Turn::Done(lost));
                }
            }
            {
                let mut group = lock(&self.group);
                match group.pending.front() {
                    Some((.., next)) => next.set(Turn::Lead),
                    None => group.leading = false,
                }
            }
            if let Some(reply) = mine {
                return reply;
            }
            if let Some(reply) = me.wait() {
                return reply;
            }
        }
    }

    /// Commits a batch of enqueues: their optimistic commits together, then whatever each
    /// still needs on its own.
    fn commit_group(&self, batch: Vec<(u64, Timestamp, Op)>) -> Vec<(u64, Result<Reply, String>)> {
        let store = match self.take() {
            Ok(store) => store,
            Err(e) => {
                return batch
                    .into_iter()
                    .map(|(t, ..)| (t, Err(e.clone())))
                    .collect();
            }
        };
        let mut txns = Vec::with_capacity(batch.len());
        let mut commits = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for (ticket, now, op) in batch {
            let mut txn = Txn::new(op, now, self.settings.clone());
            match txn.poll() {
                Step::Commit(commit) => {
                    commits.push(commit);
                    txns.push((ticket, txn));
                }
                // Not an enqueue's first step: run it alone.
                _ => {
                    let reply = txn::drive(&mut *store.backend(), txn);
                    replies.push((ticket, reply.map_err(|e| e.to_string())));
                }
            }
        }
        let applied = store.backend().commit_many(&commits);
        match applied {
            Ok(flags) if flags.len() == txns.len() => {
                for ((ticket, mut txn), applied) in txns.into_iter().zip(flags) {
                    txn.handle_commit(applied);
                    let reply = txn::drive(&mut *store.backend(), txn);
                    replies.push((ticket, reply.map_err(|e| e.to_string())));
                }
            }
            Ok(_) => {
                let e = "the store answered a group commit with the wrong number of flags";
                replies.extend(txns.into_iter().map(|(t, _)| (t, Err(e.to_owned()))));
            }
            Err(e) => {
                let e = StoreError::<B::Error>::Backend(e).to_string();
                replies.extend(txns.into_iter().map(|(t, _)| (t, Err(e.clone()))));
            }
        }
        self.give_back(store);
        replies
    }
}

impl<B: CommitMany + Send> SharedStore for Pool<B> {
    fn run(&self, now: Timestamp, op: Op) -> Result<Reply, String> {
        if matches!(op, Op::Enqueue(_)) {
            return self.enqueue(now, op);
        }
        let store = self.take()?;
        let reply = store.run(now, op).map_err(|e| e.to_string());
        self.give_back(store);
        reply
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every value behind these mutexes is left consistent between statements.
    m.lock().unwrap_or_else(|p| p.into_inner())
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
    fn concurrent_enqueues_each_get_their_own_answer() {
        use anklet_core::queue::EnqueueOutcome;
        let pool = Arc::new(Pool::new(
            Box::new(|| Ok(MemoryBackend::new(10))),
            QueueSettings::default(),
        ));
        // Eight threads enqueue the same 50 jobs: each job is stored once, and exactly one of
        // its eight callers hears `Enqueued`.
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    (0..50)
                        .map(|id| {
                            let r =
                                pool.run(Timestamp(1), Op::Enqueue(sample_job(id, "o", Some("t"))));
                            matches!(r, Ok(Reply::Enqueued(EnqueueOutcome::Enqueued)))
                        })
                        .collect::<Vec<bool>>()
                })
            })
            .collect();
        let mut enqueued = [0; 50];
        for t in threads {
            let answers = t.join().unwrap_or_default();
            assert_eq!(answers.len(), 50, "a caller thread panicked");
            for (id, fresh) in answers.into_iter().enumerate() {
                enqueued[id] += usize::from(fresh);
            }
        }
        assert_eq!(enqueued, [1; 50]);
        match pool.run(Timestamp(1), Op::List) {
            Ok(Reply::Listing(l)) => assert_eq!(l.queued.len(), 50),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exclusive_runs_operations() {
        let shared = Exclusive::new(Store::new(MemoryBackend::new(10), QueueSettings::default()));
        let r = shared.run(Timestamp(1), Op::Enqueue(sample_job(1, "o", Some("t"))));
        assert!(matches!(r, Ok(Reply::Enqueued(_))), "{r:?}");
    }
}
