//! The store waker: idle handlers of this process learn of a job another process's receiver
//! stored at once, instead of at their next idle poll (the async twin of
//! `anklet_lite::daemon::wake`).
//!
//! Why: a handler whose claim found nothing claims again after its idle poll (Anklet's
//! `sleep_interval`, ≥ 1 s). In one process the receiver wakes its handlers directly
//! (`Input::QueueNotEmpty`), but a receiver in another process (or on another host) can only
//! reach them through the store. On Redis, every commit that queues a job pushes a token onto
//! the queue's wake list (`redis_layout`'s commit script, capped), and
//! [`AsyncRedisStore::wait_for_work`] blocks on it (`BLPOP`).
//!
//! ```text
//! handler tasks ── wants_work() ──▶ Waiting flags ──(Notify)──▶ waker task
//! waker: while some handler waits: BLPOP wake (1 s) → QueueNotEmpty to every handler
//! ```
//! - **Own connection.** `BLPOP` holds its connection for the whole wait, so the waker has an
//!   [`AsyncRedisStore`] of its own instead of one from the shared pool.
//! - **Only while waiting.** It pops tokens only while a handler of this process waits to
//!   claim ([`HostHandler::wants_work`](anklet_core::handler::HostHandler::wants_work)), so a
//!   busy host does not take the wake-ups of idle ones. A popped token wakes every handler of
//!   the process (one claims the job, the others find nothing and wait again).
//! - **Lost tokens are not lost jobs.** A token can be spent on a host that cannot take its
//!   job (labels it does not serve, the slot just filled, a claim by another host won the
//!   race): the job stays queued and is claimed at some host's next idle poll, as without the
//!   waker. A wake-up that arrives while a claim is in flight makes the machine claim again
//!   after an empty answer, so that race does not cost an idle poll.
//! - **Cost.** An idle host sends one `BLPOP` per [`BLOCK`] on top of its idle-poll claims.
//! - **Bounded.** Each pop blocks at most [`BLOCK`] (plus the store's response timeout, which
//!   `wait_for_work` enforces); errors back off from 1 s to [`MAX_BACKOFF`] and are logged;
//!   nothing spins. Dropping the [`Waker`] aborts the task, so a pop or a reconnect in progress
//!   never holds up stop or drain.

use super::handler::{HandlerInputs, HandlerTask, Waiting};
use crate::store::redis::{AsyncRedisOptions, AsyncRedisStore};
use anklet_core::config::Config;
use anklet_core::handler::Input;
use anklet_core::queue::QueueSettings;
use anklet_core::queue::redis_layout::{DEFAULT_PREFIX, RedisLayout};
use anklet_lite::common::{StoreLocation, store_location};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Longest one `BLPOP` blocks: how long a token may still be popped after the last handler
/// stopped waiting.
pub const BLOCK: Duration = Duration::from_secs(1);

/// Longest wait between tries while the wake list cannot be read.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The running waker; dropping it aborts the task.
pub struct Waker {
    task: JoinHandle<()>,
}

impl Drop for Waker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the waker for `handlers` on the current runtime when the store is Redis and there
/// is a handler; `None` otherwise (the embedded store is one process: its receivers wake the
/// handlers directly).
pub fn start(
    config: &Config,
    env: &BTreeMap<String, String>,
    handlers: &[(String, HandlerTask)],
) -> Option<Waker> {
    let StoreLocation::Redis { db, queue } = store_location(config, env) else {
        return None;
    };
    if handlers.is_empty() {
        return None;
    }
    let store = RedisLayout::new(DEFAULT_PREFIX, &queue)
        .map_err(|e| e.to_string())
        .and_then(|layout| {
            AsyncRedisStore::new(
                &db,
                AsyncRedisOptions::new(layout),
                QueueSettings::default(),
            )
            .map_err(|e| e.to_string())
        });
    let mut store = match store {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                error = e,
                "no store waker: idle handlers claim at their idle poll"
            );
            return None;
        }
    };
    let bell = Arc::new(Notify::new());
    let targets: Vec<(Arc<Waiting>, HandlerInputs)> = handlers
        .iter()
        .map(|(_, h)| {
            let waiting = h.waiting();
            waiting.ring_on_wait(Arc::clone(&bell));
            (waiting, h.inputs())
        })
        .collect();
    let task = tokio::spawn(async move { run(&mut store, &targets, &bell).await });
    Some(Waker { task })
}

/// One bounded blocking pop of the wake list: `Ok(true)` when a token came.
trait WakeList {
    async fn pop(&mut self) -> Result<bool, String>;
}

impl WakeList for AsyncRedisStore {
    async fn pop(&mut self) -> Result<bool, String> {
        self.wait_for_work(BLOCK).await.map_err(|e| e.to_string())
    }
}

/// The waker's loop: pops while a handler waits, wakes them all on a token.
async fn run(list: &mut impl WakeList, targets: &[(Arc<Waiting>, HandlerInputs)], bell: &Notify) {
    let mut failures: u32 = 0;
    loop {
        if !targets.iter().any(|(w, _)| w.is_waiting()) {
            // Until a handler starts waiting (its loop notifies); the timeout only guards
            // against a notification that raced the look at the flags.
            let _ = tokio::time::timeout(BLOCK, bell.notified()).await;
            continue;
        }
        match list.pop().await {
            Ok(true) => {
                failures = 0;
                for (_, inputs) in targets {
                    inputs.send(Input::QueueNotEmpty);
                }
            }
            Ok(false) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = backoff(failures);
                tracing::warn!(
                    error = e,
                    attempt = failures,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "cannot wait on the store's wake list; idle handlers claim at their idle poll meanwhile"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// 1 s, doubling, at most [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_the_cap() {
        let d: Vec<u64> = (1..=7).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    /// A wake list that answers from a script, then times out (after `BLOCK`, as Redis does).
    struct Scripted {
        answers: Vec<Result<bool, String>>,
        pops: Arc<std::sync::atomic::AtomicU32>,
    }

    impl WakeList for Scripted {
        async fn pop(&mut self) -> Result<bool, String> {
            self.pops.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.answers.is_empty() {
                tokio::time::sleep(BLOCK).await;
                return Ok(false);
            }
            self.answers.remove(0)
        }
    }

    fn pops_of(
        answers: Vec<Result<bool, String>>,
    ) -> (Scripted, Arc<std::sync::atomic::AtomicU32>) {
        let pops = Arc::default();
        let list = Scripted {
            answers,
            pops: Arc::clone(&pops),
        };
        (list, pops)
    }

    fn count(pops: &std::sync::atomic::AtomicU32) -> u32 {
        pops.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[tokio::test]
    async fn pops_only_while_a_handler_waits_and_wakes_every_handler() {
        let (mut list, pops) = pops_of(vec![Ok(true)]);
        let (a, mut taken_a) = HandlerInputs::recorder();
        let (b, mut taken_b) = HandlerInputs::recorder();
        let (wa, wb) = (Arc::new(Waiting::default()), Arc::new(Waiting::default()));
        let bell = Arc::new(Notify::new());
        wa.ring_on_wait(Arc::clone(&bell));
        wb.ring_on_wait(Arc::clone(&bell));
        let targets = vec![(Arc::clone(&wa), a), (Arc::clone(&wb), b)];
        let waker = tokio::spawn(async move { run(&mut list, &targets, &bell).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(count(&pops), 0, "no handler waits: no pop");
        wb.set(true);
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while got.is_empty() && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
            got = taken_a();
        }
        assert_eq!(got, [Input::QueueNotEmpty], "every handler is woken");
        assert_eq!(taken_b(), [Input::QueueNotEmpty]);
        wb.set(false);
        tokio::time::sleep(BLOCK + Duration::from_millis(200)).await;
        let after = count(&pops);
        tokio::time::sleep(BLOCK + Duration::from_millis(200)).await;
        assert_eq!(count(&pops), after, "no handler waits any more: no pop");
        waker.abort();
    }

    #[tokio::test]
    async fn errors_back_off_instead_of_spinning() {
        let errors = (0..10)
            .map(|_| Err("connection refused".to_owned()))
            .collect();
        let (mut list, pops) = pops_of(errors);
        let (a, mut taken) = HandlerInputs::recorder();
        let waiting = Arc::new(Waiting::default());
        waiting.set(true);
        let targets = vec![(waiting, a)];
        let bell = Arc::new(Notify::new());
        let waker = tokio::spawn(async move { run(&mut list, &targets, &bell).await });
        // Tries at 0 and 1 s, the next at 3 s.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(count(&pops), 2);
        assert!(taken().is_empty());
        waker.abort();
    }
}
