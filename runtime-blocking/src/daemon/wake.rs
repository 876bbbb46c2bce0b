//! The store waker: idle handlers of this process learn of a job another process's receiver
//! stored at once, instead of at their next idle poll.
//!
//! Why: a handler whose claim found nothing claims again after its idle poll (Anklet's
//! `sleep_interval`, ≥ 1 s). In one process the receiver wakes its handlers directly
//! (`Input::QueueNotEmpty`), but a receiver in another process (or on another host) can only
//! reach them through the store. On Redis, every commit that queues a job pushes a token onto
//! the queue's wake list (`redis_layout`'s commit script, capped), and
//! [`RedisBackend::wait_for_work`] blocks on it (`BLPOP`).
//!
//! ```text
//! handler loops ── wants_work() ──▶ Waiting flags ──(bell)──▶ waker thread
//! waker: while some handler waits: BLPOP wake (1 s) → QueueNotEmpty to every handler
//! ```
//! - **Own connection.** `BLPOP` holds its connection for the whole wait, so the waker opens
//!   one of its own instead of taking one from the shared pool.
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
//! - **Bounded.** Each pop blocks at most [`BLOCK`] (plus the store's response timeout);
//!   errors back off from 1 s to [`MAX_BACKOFF`] and are logged; nothing spins. The thread is
//!   told to stop when the daemon ends and is not waited for (a pop or a reconnect in progress
//!   must not hold up stop or drain; the process exit ends it).

use super::handler::{HandlerThread, Waiting};
use crate::common::{StoreLocation, store_location};
use anklet_core::config::Config;
use anklet_core::handler::Input;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

/// Longest one `BLPOP` blocks: how long a stop waits for the thread at most, and how long a
/// token may still be popped after the last handler stopped waiting.
pub const BLOCK: Duration = Duration::from_secs(1);

/// Longest wait between tries while the wake list cannot be read.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One handler as the waker sees it.
type Target = (Arc<Waiting>, Box<dyn Fn(Input) + Send + Sync>);

/// The running waker; dropping it tells the thread to stop.
pub struct Waker {
    stop: Arc<AtomicBool>,
}

impl Drop for Waker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Starts the waker for `handlers` when the store is Redis and there is a handler; `None`
/// otherwise (the embedded store is one process: its receivers wake the handlers directly).
pub fn start(
    config: &Config,
    env: &BTreeMap<String, String>,
    handlers: &[(String, HandlerThread)],
) -> Option<Waker> {
    let StoreLocation::Redis { db, queue } = store_location(config, env) else {
        return None;
    };
    if handlers.is_empty() {
        return None;
    }
    #[cfg(feature = "redis")]
    {
        start_redis(&db, &queue, handlers)
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = (db, queue);
        None
    }
}

#[cfg(feature = "redis")]
fn start_redis(
    db: &anklet_core::config::DatabaseSettings,
    queue: &str,
    handlers: &[(String, HandlerThread)],
) -> Option<Waker> {
    use crate::store::redis::{RedisBackend, RedisOptions};
    use anklet_core::queue::QueueSettings;
    use anklet_core::queue::redis_layout::{DEFAULT_PREFIX, RedisLayout};
    let backend = RedisLayout::new(DEFAULT_PREFIX, queue)
        .map_err(|e| e.to_string())
        .map(|layout| RedisOptions::new(layout, &QueueSettings::default()))
        .and_then(|opts| RedisBackend::new(db, opts).map_err(|e| e.to_string()));
    let mut backend = match backend {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(
                error = e,
                "no store waker: idle handlers claim at their idle poll"
            );
            return None;
        }
    };
    let (bell, rings) = channel();
    let targets: Vec<Target> = handlers
        .iter()
        .map(|(_, h)| {
            let waiting = h.waiting();
            waiting.ring_on_wait(bell.clone());
            let send: Box<dyn Fn(Input) + Send + Sync> = Box::new(h.inputs());
            (waiting, send)
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let spawned = std::thread::Builder::new()
        .name("store-waker".into())
        .spawn(move || {
            let wait = move || backend.wait_for_work(BLOCK).map_err(|e| e.to_string());
            run(wait, &targets, &rings, &thread_stop);
        });
    match spawned {
        Ok(_) => Some(Waker { stop }),
        Err(e) => {
            tracing::warn!(error = %e, "no store waker: idle handlers claim at their idle poll");
            None
        }
    }
}

/// The waker's loop over `wait` (one bounded blocking pop: `Ok(true)` when a token came).
fn run(
    mut wait: impl FnMut() -> Result<bool, String>,
    targets: &[Target],
    rings: &Receiver<()>,
    stop: &AtomicBool,
) {
    let mut failures: u32 = 0;
    while !stop.load(Ordering::Acquire) {
        if !targets.iter().any(|(w, _)| w.is_waiting()) {
            // Sleep until a handler starts waiting (its loop rings) or it is time to look at
            // the stop flag again.
            if let Err(RecvTimeoutError::Disconnected) = rings.recv_timeout(BLOCK) {
                std::thread::sleep(BLOCK);
            }
            continue;
        }
        match wait() {
            Ok(true) => {
                failures = 0;
                for (_, send) in targets {
                    send(Input::QueueNotEmpty);
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
                sleep_unless_stopped(delay, stop);
            }
        }
    }
}

/// 1 s, doubling, at most [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let until = std::time::Instant::now() + total;
    while !stop.load(Ordering::Acquire) {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(200)));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU32;
    use std::time::Instant;

    #[test]
    fn backoff_doubles_from_one_second_to_the_cap() {
        let d: Vec<u64> = (1..=7).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    type Harness = (
        Arc<Waiting>,
        Arc<Mutex<Vec<Input>>>,
        Arc<AtomicBool>,
        std::thread::JoinHandle<()>,
    );

    /// A waker over `wait` for one handler; returns its waiting flag, the inputs it got, the
    /// stop flag and the thread.
    fn waker(wait: impl FnMut() -> Result<bool, String> + Send + 'static) -> Harness {
        let waiting = Arc::new(Waiting::default());
        let (bell, rings) = channel();
        waiting.ring_on_wait(bell);
        let got: Arc<Mutex<Vec<Input>>> = Arc::default();
        let sink = Arc::clone(&got);
        let targets: Vec<Target> = vec![(
            Arc::clone(&waiting),
            Box::new(move |i| sink.lock().unwrap().push(i)),
        )];
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || run(wait, &targets, &rings, &s));
        (waiting, got, stop, thread)
    }

    #[test]
    fn pops_only_while_a_handler_waits_and_wakes_it() {
        let pops = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&pops);
        let (waiting, got, stop, thread) = waker(move || {
            std::thread::sleep(Duration::from_millis(5));
            Ok(counted.fetch_add(1, Ordering::SeqCst) == 0)
        });
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(pops.load(Ordering::SeqCst), 0, "no handler waits: no pop");
        waiting.set(true);
        let until = Instant::now() + Duration::from_secs(5);
        while got.lock().unwrap().is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(got.lock().unwrap().first(), Some(&Input::QueueNotEmpty));
        waiting.set(false);
        std::thread::sleep(Duration::from_millis(50));
        let after = pops.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(pops.load(Ordering::SeqCst), after, "stops popping");
        stop.store(true, Ordering::SeqCst);
        let t = Instant::now();
        thread.join().unwrap();
        assert!(t.elapsed() <= BLOCK + Duration::from_secs(2));
    }

    #[test]
    fn errors_back_off_instead_of_spinning_and_stop_ends_the_wait() {
        let tries = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&tries);
        let (waiting, got, stop, thread) = waker(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Err("connection refused".to_owned())
        });
        waiting.set(true);
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(tries.load(Ordering::SeqCst), 1, "the next try waits 1 s");
        assert!(got.lock().unwrap().is_empty());
        stop.store(true, Ordering::SeqCst);
        let t = Instant::now();
        thread.join().unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "the backoff sleep ends at stop"
        );
    }
}
