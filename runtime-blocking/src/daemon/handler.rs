//! A handler plugin's thread: the thin loop that runs core's
//! [`HostHandler`](anklet_core::handler::HostHandler).
//!
//! ```text
//! loop: execute every effect the machine wants (each on its own thread, results back
//!       through the inbox) → wait for an input or the machine's next deadline → feed it
//! ```
//! No lifecycle decision lives here: store effects run on the shared store, VM effects through
//! the anka driver, GitHub effects through the GitHub executor, notices go to the sink.

use crate::clock::Clock;
use crate::common::notices::{log_external, step_name};
use crate::github::GithubHandle;
use crate::store::shared::SharedStore;
use crate::vm::anka::AnkaRunner;
use anklet_core::github::client::{Command, CommandResult};
use anklet_core::handler::{
    Effect, EffectResult, Failure, FailureClass, ForgeCmd, HostHandler, Input, Notice,
};
use anklet_core::ids::{EffectId, JobId};
use anklet_core::queue::txn::{Op, Reply};
use anklet_core::queue::{NEWS_POLL_INTERVAL, news_of, store_op, store_result};
use anklet_core::vm::AnkaSettings;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Called with every notice of the handler, for logs and metrics.
pub type NoticeSink = Arc<dyn Fn(&Notice) + Send + Sync>;

/// What a handler thread executes its effects with.
#[derive(Clone)]
pub struct Executors {
    /// The job queue.
    pub store: Arc<dyn SharedStore>,
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
pub struct HandlerThread {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
    waiting: Arc<Waiting>,
}

/// Whether a handler waits for work ([`HostHandler::wants_work`]), published by its loop for
/// the store waker (`daemon::wake`), which listens for new jobs only while some handler waits.
#[derive(Default)]
pub struct Waiting {
    flag: AtomicBool,
    /// Rung when the flag turns on, so a sleeping waker starts listening at once.
    bell: Mutex<Option<Sender<()>>>,
}

impl Waiting {
    /// Whether the handler's last claim found nothing and it would claim if woken.
    pub fn is_waiting(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Rings `bell` each time the handler starts waiting.
    pub fn ring_on_wait(&self, bell: Sender<()>) {
        *lock(&self.bell) = Some(bell);
    }

    pub(crate) fn set(&self, waiting: bool) {
        if self.flag.swap(waiting, Ordering::AcqRel) != waiting
            && waiting
            && let Some(bell) = lock(&self.bell).as_ref()
        {
            let _ = bell.send(());
        }
    }
}

impl HandlerThread {
    /// Starts the loop of `machine`.
    pub fn start(name: &str, machine: HostHandler, exec: Executors) -> std::io::Result<Self> {
        let (tx, rx) = channel();
        let loop_tx = tx.clone();
        let waiting = Arc::new(Waiting::default());
        let loop_waiting = Arc::clone(&waiting);
        let thread = std::thread::Builder::new()
            .name(format!("handler-{name}"))
            .spawn(move || run(machine, &exec, &rx, &loop_tx, &loop_waiting))?;
        Ok(Self {
            tx,
            thread: Some(thread),
            waiting,
        })
    }

    /// Whether the machine waits for work, for the store waker.
    pub fn waiting(&self) -> Arc<Waiting> {
        Arc::clone(&self.waiting)
    }

    /// Gives the machine an input (`Stop`, `Drain`, `QueueNotEmpty`, job news).
    pub fn send(&self, input: Input) {
        let _ = self.tx.send(Msg::Input(input));
    }

    /// A sender other threads can use to give inputs.
    pub fn inputs(&self) -> impl Fn(Input) + Send + Sync + 'static {
        let tx = Mutex::new(self.tx.clone());
        move |input| {
            let _ = tx
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .send(Msg::Input(input));
        }
    }

    /// Waits until the machine stopped (after `Stop` or `Drain`).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Whether the loop has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

fn run(
    mut machine: HostHandler,
    exec: &Executors,
    rx: &Receiver<Msg>,
    tx: &Sender<Msg>,
    waiting: &Waiting,
) {
    // Labels of the jobs this host holds, from the claims the store answered: JIT configs are
    // created with exactly these.
    let labels: Arc<Mutex<HashMap<JobId, Vec<String>>>> = Arc::default();
    let mut next_news = Instant::now() + NEWS_POLL_INTERVAL;
    loop {
        while let Some(effect) = machine.poll_effect() {
            dispatch(effect, exec, tx, &labels);
        }
        if machine.is_stopped() {
            waiting.set(false);
            return;
        }
        waiting.set(machine.wants_work());
        let now = exec.clock.now();
        let deadline = machine.poll_timeout().map(|(t, _)| t);
        let wait = deadline
            .map_or(Duration::from_secs(3600), |t| t.saturating_since(now))
            .min(next_news.saturating_duration_since(Instant::now()));
        match rx.recv_timeout(wait) {
            Ok(Msg::Input(input)) => machine.handle_input(exec.clock.now(), input),
            Ok(Msg::Result(id, result)) => {
                machine.handle_input(exec.clock.now(), Input::Result { id, result });
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = exec.clock.now();
                if deadline.is_some_and(|t| t <= now) {
                    machine.handle_timeout(now);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if Instant::now() >= next_news {
            next_news = Instant::now() + NEWS_POLL_INTERVAL;
            let held: Vec<JobId> = lock(&labels).keys().copied().collect();
            if !held.is_empty() {
                poll_news(held, exec, tx);
            }
        }
    }
}

/// Reads the records of the jobs in hand and passes on GitHub news another process's receiver
/// stored (the machine ignores news it already had).
fn poll_news(held: Vec<JobId>, exec: &Executors, tx: &Sender<Msg>) {
    let (store, clock, tx) = (Arc::clone(&exec.store), Arc::clone(&exec.clock), tx.clone());
    std::thread::spawn(move || {
        for job in held {
            if let Ok(Reply::Record(Some(record))) = store.run(clock.now(), Op::Get(job))
                && let Some(status) = news_of(&record)
            {
                let _ = tx.send(Msg::Input(Input::JobStatus { job, status }));
            }
        }
    });
}

type Labels = Arc<Mutex<HashMap<JobId, Vec<String>>>>;

fn dispatch(effect: Effect, exec: &Executors, tx: &Sender<Msg>, labels: &Labels) {
    match effect {
        Effect::Store { id, cmd, .. } => {
            let (store, clock, tx, labels) = (
                Arc::clone(&exec.store),
                Arc::clone(&exec.clock),
                tx.clone(),
                Arc::clone(labels),
            );
            std::thread::spawn(move || {
                let result = match store.run(clock.now(), store_op(&cmd)) {
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
            std::thread::spawn(move || {
                let (wall, t0) = (SystemTime::now(), Instant::now());
                let result = anka.execute(&cmd, &settings, timeout);
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
            let tx = tx.clone();
            let step = step_name(&cmd);
            let command = Command::Forge {
                cmd,
                labels: job_labels,
            };
            let (wall, t0) = (SystemTime::now(), Instant::now());
            exec.github.call(
                command,
                Box::new(move |result: CommandResult| {
                    log_external("github", &step, wall, t0.elapsed());
                    let _ = tx.send(Msg::Result(id, result.into_effect_result()));
                }),
            );
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
