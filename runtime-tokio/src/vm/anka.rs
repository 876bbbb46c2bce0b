//! Executes a [`VmCmd`] on tokio by running its [`VmCallPlan`] to the end: each invocation as
//! a child in its own process group, the template volume probed on a blocking thread when the
//! plan asks, and the whole plan bounded by the effect's timeout.

use super::process::{ProcessSpec, run};
use anklet_core::handler::{EffectResult, VmCmd};
use anklet_core::vm::{
    AnkaSettings, Exit, Invocation, OUTPUT_LIMIT_BYTES, ProcessOutput, Program, Step, VmCallPlan,
};
use anklet_lite::host::volume_space;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// Where the backends' executables are and which volume holds the templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnkaRunner {
    /// The `anka` executable (default: `anka` on `PATH`).
    pub anka: PathBuf,
    /// The `tart` executable (default: `tart` on `PATH`).
    pub tart: PathBuf,
    /// A path on the template volume (Anka's `img_lib_dir`; default `/`, as Anklet measures).
    pub template_dir: PathBuf,
    /// Bytes kept of each output stream.
    pub output_limit: usize,
}

impl Default for AnkaRunner {
    fn default() -> Self {
        Self {
            anka: PathBuf::from(Program::Anka.default_name()),
            tart: PathBuf::from(Program::Tart.default_name()),
            template_dir: PathBuf::from("/"),
            output_limit: OUTPUT_LIMIT_BYTES,
        }
    }
}

impl AnkaRunner {
    /// A runner calling `anka` at this path, other settings default.
    pub fn new(anka: impl Into<PathBuf>) -> Self {
        Self {
            anka: anka.into(),
            ..Self::default()
        }
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
                    let dir = self.template_dir.clone();
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
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = inv.timeout.min(left);
        if timeout.is_zero() {
            return ProcessOutput::new(Exit::TimedOut { after: inv.timeout }, Vec::new());
        }
        let program = match inv.program {
            Program::Anka => &self.anka,
            Program::Tart => &self.tart,
        };
        tracing::debug!(program = %program.display(), args = ?inv.args, stdin = inv.stdin.is_some(), ?timeout, "vm backend call");
        let out = run(ProcessSpec {
            program,
            args: &inv.args,
            stdin: inv.stdin.as_ref().map(|s| s.expose().as_bytes()),
            timeout,
            output_limit: self.output_limit,
        })
        .await;
        tracing::debug!(exit = ?out.exit, stdout_bytes = out.stdout.len(), stdout_dropped = out.stdout_dropped, "vm backend call ended");
        out
    }
}
