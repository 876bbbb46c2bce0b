//! Executes a [`VmCmd`] on tokio by running its [`VmCallPlan`] to the end: each invocation as
//! a child in its own process group, the template volume probed on a blocking thread when the
//! plan asks, and the whole plan bounded by the effect's timeout.

use super::process::run;
use anklet_core::handler::{EffectResult, VmCmd};
use anklet_core::vm::{AnkaSettings, Invocation, ProcessOutput, Step, VmCallPlan};
use anklet_lite::host::volume_space;
use anklet_lite::vm::call::AnkaConfig;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// The anka driver of this daemon: runs each call of a plan as a child process on tokio, with
/// the settings of [`AnkaConfig`] (anklet-lite's, so both drivers read the same settings).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnkaRunner {
    /// Where the executables are, which volume holds the templates, how much output is kept.
    pub config: AnkaConfig,
}

impl From<AnkaConfig> for AnkaRunner {
    fn from(config: AnkaConfig) -> Self {
        Self { config }
    }
}

impl AnkaRunner {
    /// A runner calling `anka` at this path, other settings default.
    pub fn new(anka: impl Into<PathBuf>) -> Self {
        AnkaConfig::new(anka).into()
    }

    /// Runs `cmd` with `timeout` as the bound of the whole plan; the result goes back to the
    /// handler as `Input::Result`.
    pub async fn execute(
        &self,
        cmd: &VmCmd,
        settings: &AnkaSettings,
        timeout: Duration,
    ) -> EffectResult {
        self.run_plan(VmCallPlan::new(cmd, settings, timeout), timeout)
            .await
    }

    /// Runs `plan`; no invocation outlives `budget` from now.
    pub async fn run_plan(&self, mut plan: VmCallPlan, budget: Duration) -> EffectResult {
        let deadline = Instant::now() + budget;
        loop {
            match plan.step() {
                Step::Run(inv) => {
                    let inv = inv.clone();
                    let out = self.invoke(&inv, deadline).await;
                    plan.feed(out);
                }
                Step::ProbeDisk => {
                    let dir = self.config.template_dir.clone();
                    let disk = tokio::task::spawn_blocking(move || {
                        volume_space(&dir).map_err(|e| e.to_string())
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("disk probe task failed: {e}")));
                    plan.feed_disk(disk);
                }
                Step::Done(result) => return result.clone(),
            }
        }
    }

    async fn invoke(&self, inv: &Invocation, deadline: Instant) -> ProcessOutput {
        match self
            .config
            .process(inv, deadline.saturating_duration_since(Instant::now()))
        {
            Ok(spec) => {
                let out = run(spec).await;
                self.config.log_call_ended(&out);
                out
            }
            Err(timed_out) => timed_out,
        }
    }
}
