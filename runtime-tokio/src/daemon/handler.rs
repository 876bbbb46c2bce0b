//! A handler plugin's task: the thin loop that runs core's
//! [`HostHandler`](anklet_core::handler::HostHandler) on tokio (the async twin of
//! `anklet_lite::daemon::handler`).
//!
//! ```text
//! loop: execute every effect the machine wants (each in its own task, results back through
//!       the inbox) → select { inbox, sleep_until(poll_timeout or the next news poll) } → feed it
//! ```
//! Every [`NEWS_POLL_INTERVAL`] the records of the jobs in hand are read from the store and
//! their GitHub news passed on as `Input::JobStatus` (the webhook may have reached another
//! process's receiver); the machine ignores news it already had.
//! No lifecycle decision lives here: store effects run on the shared store, VM effects through
//! the anka driver, GitHub effects through the GitHub executor, notices go to the sink.

use super::metrics::MeteredStore;
use crate::github::GithubHandle;
use crate::vm::anka::AnkaRunner;
use anklet_core::github::client::Command;
use anklet_core::handler::{
    Effect, EffectResult, Failure, FailureClass, ForgeCmd, HostHandler, Input, Notice,
};
use anklet_core::ids::{EffectId, JobId};
use anklet_core::queue::txn::{Op, Reply};
use anklet_core::queue::{NEWS_POLL_INTERVAL, news_of, store_op, store_result};
use anklet_core::vm::AnkaSettings;
use anklet_lite::clock::Clock;
use anklet_lite::common::notices::{log_external, step_name};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Called with every notice of the handler, for logs and metrics.
pub type NoticeSink = Arc<dyn Fn(&Notice) + Send + Sync>;

/// How long the loop sleeps when the machine has no deadline (any input wakes it earlier).
const IDLE_WAIT: Duration = Duration::from_secs(3600);

/// What a handler task executes its effects with.
#[derive(Clone)]
pub struct Executors {
    /// The job queue (claim answers also go to the metrics).
    pub store: MeteredStore,
    /// GitHub.
    pub github: GithubHandle,
    /// The anka driver.
    pub anka: Arc<AnkaRunner>,
    /// The plugin's anka settings.
    pub anka_settings: Arc<AnkaSettings>,
    /// The clock.
    pub clock: Arc<Clock>,
    /// Where notices go.
    pub notices: NoticeSink,
}

enum Msg {
    Input(Input),
    Result(EffectId, EffectResult),
}

/// A running handler plugin.
pub struct HandlerTask {
    tx: UnboundedSender<Msg>,
    task: JoinHandle<()>,
    waiting: Arc<Waiting>,
}

/// Whether a handler waits for work ([`HostHandler::wants_work`]), published by its loop for
/// the store waker (`daemon::wake`), which listens for new jobs only while some handler waits.
#[derive(Default)]
pub struct Waiting {
    flag: AtomicBool,
    /// Notified when the flag turns on, so a sleeping waker starts listening at once.
    bell: Mutex<Option<Arc<Notify>>>,
}

impl Waiting {
    /// Whether the handler's last claim found nothing and it would claim if woken.
    pub fn is_waiting(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Notifies `bell` each time the handler starts waiting.
    pub fn ring_on_wait(&self, bell: Arc<Notify>) {
        *lock(&self.bell) = Some(bell);
    }

    pub(crate) fn set(&self, waiting: bool) {
        if self.flag.swap(waiting, Ordering::AcqRel) != waiting
            && waiting
            && let Some(bell) = lock(&self.bell).as_ref()
        {
            bell.notify_one();
        }
    }
}

/// Gives a handler inputs from anywhere (receivers' notices, the control loop); cheap to clone.
#[derive(Clone)]
pub struct HandlerInputs(UnboundedSender<Msg>);

impl HandlerInputs {
    /// Gives the machine an input; a handler that has ended ignores it.
    pub fn send(&self, input: Input) {
        let _ = self.0.send(Msg::Input(input));
    }

    /// Inputs with no handler behind them, and a function that takes what was sent so far.
    #[cfg(test)]
    pub(crate) fn recorder() -> (Self, impl FnMut() -> Vec<Input>) {
        let (tx, mut rx) = unbounded_channel();
        let take = move || {
            std::iter::from_fn(|| rx.try_recv().ok())
                .filter_map(|m| match m {
                    Msg::Input(i) => Some(i),
                    Msg::Result(..) => None,
                })
                .collect()
        };
        (Self(tx), take)
    }
}

impl HandlerTask {
    /// Starts the loop of `machine` on the current tokio runtime.
    pub fn start(machine: HostHandler, exec: Executors) -> Self {
        let (tx, rx) = unbounded_channel();
        let waiting = Arc::new(Waiting::default());
        let task = tokio::spawn(run(machine, exec, rx, tx.clone(), Arc::clone(&waiting)));
        Self { tx, task, waiting }
    }

    /// Whether the machine waits for work, for the store waker.
    pub fn waiting(&self) -> Arc<Waiting> {
        Arc::clone(&self.waiting)
    }

    /// Gives the machine an input (`Stop`, `Drain`, `QueueNotEmpty`, job news).
    pub fn send(&self, input: Input) {
        let _ = self.tx.send(Msg::Input(input));
    }

    /// A sender other tasks and threads can use to give inputs.
    pub fn inputs(&self) -> HandlerInputs {
        HandlerInputs(self.tx.clone())
    }

    /// Whether the loop has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits until the machine stopped (after `Stop` or `Drain`).
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "handler task failed");
        }
    }
}

async fn run(
    mut machine: HostHandler,
    exec: Executors,
    mut rx: UnboundedReceiver<Msg>,
    tx: UnboundedSender<Msg>,
    waiting: Arc<Waiting>,
) {
    // Labels of the jobs this host holds, from the claims the store answered: JIT configs are
    // created with exactly these.
    let labels: Labels = Arc::default();
    let mut next_news = Instant::now() + NEWS_POLL_INTERVAL;
    loop {
        while let Some(effect) = machine.poll_effect() {
            dispatch(effect, &exec, &tx, &labels);
        }
        if machine.is_stopped() {
            waiting.set(false);
            return;
        }
        waiting.set(machine.wants_work());
        let deadline = machine.poll_timeout().map(|(t, _)| t);
        let wake = deadline
            .map_or(IDLE_WAIT, |t| t.saturating_since(exec.clock.now()))
            .min(next_news.saturating_duration_since(Instant::now()));
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Input(input)) => machine.handle_input(exec.clock.now(), input),
                Some(Msg::Result(id, result)) => {
                    machine.handle_input(exec.clock.now(), Input::Result { id, result });
                }
                None => return,
            },
            () = tokio::time::sleep_until(Instant::now() + wake) => {
                let now = exec.clock.now();
                if deadline.is_some_and(|t| t <= now) {
                    machine.handle_timeout(now);
                }
            }
        }
        if Instant::now() >= next_news {
            next_news = Instant::now() + NEWS_POLL_INTERVAL;
            let held: Vec<JobId> = lock(&labels).keys().copied().collect();
            if !held.is_empty() {
                poll_news(held, &exec, &tx);
            }
        }
    }
}

/// Reads the records of the jobs in hand and passes on GitHub news another process's receiver
/// stored (the machine ignores news it already had).
fn poll_news(held: Vec<JobId>, exec: &Executors, tx: &UnboundedSender<Msg>) {
    let (store, clock, tx) = (exec.store.clone(), Arc::clone(&exec.clock), tx.clone());
    tokio::spawn(async move {
        for job in held {
            if let Ok(Reply::Record(Some(record))) = store.run(clock.now(), Op::Get(job)).await
                && let Some(status) = news_of(&record)
            {
                let _ = tx.send(Msg::Input(Input::JobStatus { job, status }));
            }
        }
    });
}

type Labels = Arc<Mutex<HashMap<JobId, Vec<String>>>>;

fn dispatch(effect: Effect, exec: &Executors, tx: &UnboundedSender<Msg>, labels: &Labels) {
    match effect {
        Effect::Store { id, cmd, .. } => {
            let (store, clock, tx, labels) = (
                exec.store.clone(),
                Arc::clone(&exec.clock),
                tx.clone(),
                Arc::clone(labels),
            );
            tokio::spawn(async move {
                let result = match store.run(clock.now(), store_op(&cmd)).await {
                    Ok(reply) => store_result(reply).unwrap_or_else(|| {
                        failed(FailureClass::Permanent, "store answered another operation")
                    }),
                    Err(e) => failed(FailureClass::Transient, e),
                };
                if let EffectResult::Claimed(Some(job)) = &result {
                    lock(&labels).insert(job.job.id, job.labels.clone());
                }
                let _ = tx.send(Msg::Result(id, result));
            });
        }
        Effect::Vm { id, timeout, cmd } => {
            let (anka, settings, tx) = (
                Arc::clone(&exec.anka),
                Arc::clone(&exec.anka_settings),
                tx.clone(),
            );
            tokio::spawn(async move {
                let (wall, t0) = (SystemTime::now(), std::time::Instant::now());
                let result = anka.execute(&cmd, &settings, timeout).await;
                log_external("anka", &step_name(&cmd), wall, t0.elapsed());
                let _ = tx.send(Msg::Result(id, result));
            });
        }
        Effect::Forge { id, cmd, .. } => {
            let job_labels = match &cmd {
                ForgeCmd::CreateRunnerConfig { job, .. } => {
                    lock(labels).get(&job.id).cloned().unwrap_or_default()
                }
                _ => Vec::new(),
            };
            let (github, tx) = (exec.github.clone(), tx.clone());
            let step = step_name(&cmd);
            let command = Command::Forge {
                cmd,
                labels: job_labels,
            };
            tokio::spawn(async move {
                let (wall, t0) = (SystemTime::now(), std::time::Instant::now());
                let result = github.call(command).await.into_effect_result();
                log_external("github", &step, wall, t0.elapsed());
                let _ = tx.send(Msg::Result(id, result));
            });
        }
        Effect::Notice(n) => {
            if let Notice::JobEnded { job, .. } = &n {
                lock(labels).remove(job);
            }
            (exec.notices)(&n);
        }
    }
}

fn failed(class: FailureClass, message: impl Into<String>) -> EffectResult {
    EffectResult::Failed(Failure::new(class, message))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
