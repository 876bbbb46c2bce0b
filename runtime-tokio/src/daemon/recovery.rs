//! A receiver's recovery task: the thin loop around core's
//! [`Recovery`](anklet_core::receiver::redeliver::Recovery) (redelivery of failed webhook
//! deliveries, reconciliation of queued jobs with GitHub's jobs API), the async twin of
//! `anklet_lite::daemon::recovery`.

use crate::github::GithubHandle;
use crate::store::shared::SharedStore;
use anklet_core::github::client::Command;
use anklet_core::ids::EffectId;
use anklet_core::receiver::redeliver::{
    Recovery, RecoveryAnswer, RecoveryCall, RecoveryEffect, RecoveryNotice,
};
use anklet_lite::clock::Clock;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Called with every notice, for logs and metrics.
pub type NoticeSink = Arc<dyn Fn(&RecoveryNotice) + Send + Sync>;

/// The longest the loop waits before asking the machine again (as the blocking loop does).
const MAX_WAIT: Duration = Duration::from_secs(1);

/// A running recovery loop.
pub struct RecoveryTask {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RecoveryTask {
    /// Runs `machine` on the current tokio runtime until [`RecoveryTask::stop`].
    pub fn start(
        machine: Recovery,
        github: GithubHandle,
        store: SharedStore,
        clock: Arc<Clock>,
        notices: NoticeSink,
    ) -> Self {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(machine, github, store, clock, notices, stopped));
        Self { stop, task }
    }

    /// Ends the loop and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "recovery task failed");
        }
    }
}

async fn run(
    mut m: Recovery,
    github: GithubHandle,
    store: SharedStore,
    clock: Arc<Clock>,
    notices: NoticeSink,
    mut stopped: oneshot::Receiver<()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(EffectId, RecoveryAnswer)>();
    loop {
        while let Some(effect) = m.poll_effect() {
            match effect {
                RecoveryEffect::Github { id, call, .. } => {
                    let (github, tx) = (github.clone(), tx.clone());
                    tokio::spawn(async move {
                        let answer = call_github(&github, call).await;
                        let _ = tx.send((id, answer));
                    });
                }
                RecoveryEffect::Store { id, op, .. } => {
                    let result = store.run(clock.now(), op).await;
                    m.handle_store_result(clock.now(), id, result);
                }
                RecoveryEffect::Notice(n) => notices(&n),
            }
        }
        let wait = m
            .poll_timeout()
            .map_or(MAX_WAIT, |t| t.saturating_since(clock.now()))
            .min(MAX_WAIT);
        tokio::select! {
            _ = &mut stopped => return,
            answer = rx.recv() => match answer {
                Some((id, answer)) => m.handle_github_result(clock.now(), id, answer),
                None => return,
            },
            () = tokio::time::sleep_until(Instant::now() + wait) => m.handle_timeout(clock.now()),
        }
    }
}

async fn call_github(github: &GithubHandle, call: RecoveryCall) -> RecoveryAnswer {
    github.call(Command::from(call)).await.into()
}
