//! Executes a [`VmCmd`] by running its [`VmCallPlan`] to the end: each invocation as a child
//! in its own process group, the template volume probed when the plan asks, and the whole plan
//! bounded by the effect's timeout.

use super::call::AnkaConfig;
use super::process::run;
use crate::host::volume_space;
use anklet_core::handler::{EffectResult, VmCmd};
use anklet_core::vm::{AnkaSettings, Invocation, ProcessOutput, VmCallPlan};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The anka driver of this daemon: runs each call of a plan as a child process on this thread,
/// with the settings of [`AnkaConfig`] (shared with `anklet`'s driver).
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
    pub fn execute(&self, cmd: &VmCmd, settings: &AnkaSettings, timeout: Duration) -> EffectResult {
        self.run_plan(VmCallPlan::new(cmd, settings, timeout), timeout)
    }

    /// Runs `plan`; no invocation outlives `budget` from now.
    pub fn run_plan(&self, plan: VmCallPlan, budget: Duration) -> EffectResult {
        let deadline = Instant::now() + budget;
        plan.drive(
            |inv| self.invoke(inv, deadline),
            || volume_space(&self.config.template_dir).map_err(|e| e.to_string()),
        )
    }

    fn invoke(&self, inv: &Invocation, deadline: Instant) -> ProcessOutput {
        match self
            .config
            .process(inv, deadline.saturating_duration_since(Instant::now()))
        {
            Ok(spec) => {
                let out = run(spec);
                self.config.log_call_ended(&out);
                out
            }
            Err(timed_out) => timed_out,
        }
    }
}
