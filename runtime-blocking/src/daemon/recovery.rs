//! A receiver's recovery thread: the thin loop around core's
//! [`Recovery`](anklet_core::receiver::redeliver::Recovery) (redelivery of failed webhook
//! deliveries, reconciliation of queued jobs with GitHub's jobs API).

use crate::clock::Clock;
use crate::github::GithubHandle;
use crate::store::shared::SharedStore;
use anklet_core::github::client::{Command, CommandResult};
use anklet_core::ids::EffectId;
use anklet_core::receiver::redeliver::{
    Recovery, RecoveryAnswer, RecoveryCall, RecoveryEffect, RecoveryNotice,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// Called with every notice, for logs and metrics.
pub type NoticeSink = Arc<dyn Fn(&RecoveryNotice) + Send + Sync>;

/// A running recovery loop.
pub struct RecoveryThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RecoveryThread {
    /// Runs `machine` until [`RecoveryThread::stop`].
    pub fn start(
        machine: Recovery,
        github: GithubHandle,
        store: Arc<dyn SharedStore>,
        clock: Arc<Clock>,
        notices: NoticeSink,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            run(machine, &github, store.as_ref(), &clock, &notices, &flag);
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Ends the loop (within a second) and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    mut m: Recovery,
    github: &GithubHandle,
    store: &dyn SharedStore,
    clock: &Clock,
    notices: &NoticeSink,
    stop: &AtomicBool,
) {
    let (tx, rx) = channel::<(EffectId, RecoveryAnswer)>();
    while !stop.load(Ordering::SeqCst) {
        while let Some(effect) = m.poll_effect() {
            match effect {
                RecoveryEffect::Github { id, call, .. } => call_github(github, id, call, &tx),
                RecoveryEffect::Store { id, op, .. } => {
                    let result = store.run(clock.now(), op);
                    m.handle_store_result(clock.now(), id, result);
                }
                RecoveryEffect::Notice(n) => notices(&n),
            }
        }
        let now = clock.now();
        let wait = m
            .poll_timeout()
            .map_or(Duration::from_secs(1), |t| t.saturating_since(now))
            .min(Duration::from_secs(1));
        match rx.recv_timeout(wait) {
            Ok((id, answer)) => m.handle_github_result(clock.now(), id, answer),
            Err(RecvTimeoutError::Timeout) => m.handle_timeout(clock.now()),
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn call_github(
    github: &GithubHandle,
    id: EffectId,
    call: RecoveryCall,
    tx: &Sender<(EffectId, RecoveryAnswer)>,
) {
    let tx = tx.clone();
    github.call(
        Command::from(call),
        Box::new(move |result: CommandResult| {
            let _ = tx.send((id, result.into()));
        }),
    );
}

/// Logs a recovery notice (shared with `anklet`).
pub use crate::common::notices::log_recovery_notice as log_notice;
