//! One backend call as both daemons' anka drivers make it: where the executables are
//! ([`AnkaConfig`]), the process an [`Invocation`] becomes ([`ProcessSpec`]), its bounded
//! output ([`OutputTails`]) and how its end reads ([`exit_of`]). Running the process is each
//! runtime's own (threads here, tokio in `anklet`), so only these parts are shared.

use anklet_core::vm::tail::OutputTail;
use anklet_core::vm::{Exit, Invocation, OUTPUT_LIMIT_BYTES, ProcessOutput, Program};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Where the backends' executables are and which volume holds the templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnkaConfig {
    /// The `anka` executable (default: `anka` on `PATH`).
    pub anka: PathBuf,
    /// The `tart` executable (default: `tart` on `PATH`).
    pub tart: PathBuf,
    /// A path on the template volume (Anka's `img_lib_dir`; default `/`, as Anklet measures).
    pub template_dir: PathBuf,
    /// Bytes kept of each output stream.
    pub output_limit: usize,
    /// The plugin these calls are for, named in the `plugin` field of the driver's log lines
    /// (so `log.split_by_plugin` writes them to that plugin's file); `None` names none.
    pub plugin: Option<String>,
}

impl Default for AnkaConfig {
    fn default() -> Self {
        Self {
            anka: PathBuf::from(Program::Anka.default_name()),
            tart: PathBuf::from(Program::Tart.default_name()),
            template_dir: PathBuf::from("/"),
            output_limit: OUTPUT_LIMIT_BYTES,
            plugin: None,
        }
    }
}

impl AnkaConfig {
    /// Calls `anka` at this path, other settings default.
    pub fn new(anka: impl Into<PathBuf>) -> Self {
        Self {
            anka: anka.into(),
            ..Self::default()
        }
    }

    /// The process that runs `inv` when `left` of its plan's budget remains (the call's own
    /// timeout, cut to what is left), logged at debug; when nothing is left, the timed-out
    /// output the plan reads instead, without running anything.
    pub fn process<'a>(
        &'a self,
        inv: &'a Invocation,
        left: Duration,
    ) -> Result<ProcessSpec<'a>, ProcessOutput> {
        let timeout = inv.timeout.min(left);
        if timeout.is_zero() {
            return Err(ProcessOutput::new(
                Exit::TimedOut { after: inv.timeout },
                Vec::new(),
            ));
        }
        let program: &Path = match inv.program {
            Program::Anka => &self.anka,
            Program::Tart => &self.tart,
        };
        let plugin = self.plugin.as_deref();
        tracing::debug!(plugin, program = %program.display(), args = ?inv.args, stdin = inv.stdin.is_some(), ?timeout, "vm backend call");
        Ok(ProcessSpec {
            program,
            args: &inv.args,
            stdin: inv.stdin.as_ref().map(|s| s.expose().as_bytes()),
            timeout,
            output_limit: self.output_limit,
        })
    }

    /// Logs how a backend call ended (at debug; the output itself is the plan's to read).
    pub fn log_call_ended(&self, out: &ProcessOutput) {
        let plugin = self.plugin.as_deref();
        tracing::debug!(plugin, exit = ?out.exit, stdout_bytes = out.stdout.len(), stdout_dropped = out.stdout_dropped, "vm backend call ended");
    }
}

/// How a child ended, as core reads it: its exit code, or the signal that killed it.
pub fn exit_of(status: ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => Exit::Code(-1),
    }
}

/// One process to run.
#[derive(Clone, Copy, Debug)]
pub struct ProcessSpec<'a> {
    /// The executable.
    pub program: &'a Path,
    /// Its arguments.
    pub args: &'a [String],
    /// Bytes for stdin (closed after); `None` gives the child no stdin at all.
    pub stdin: Option<&'a [u8]>,
    /// The group is killed when this elapses.
    pub timeout: Duration,
    /// Bytes kept of each output stream.
    pub output_limit: usize,
}

impl ProcessSpec<'_> {
    /// Sets `command`'s arguments and pipes: stdin piped when there are bytes for it (else
    /// none at all), stdout and stderr piped to be captured.
    pub fn configure(&self, command: &mut Command) {
        command
            .args(self.args)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    }
}

/// A child's stdout and stderr, each kept to its newest `output_limit` bytes (core's
/// [`OutputTail`]): the runtime's readers push what they read, and [`OutputTails::output`]
/// takes both once the child ended.
#[derive(Clone, Debug)]
pub struct OutputTails {
    stdout: Arc<Mutex<OutputTail>>,
    stderr: Arc<Mutex<OutputTail>>,
}

/// Which of a child's output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl OutputTails {
    /// Empty tails keeping `limit` bytes each.
    pub fn new(limit: usize) -> Self {
        Self {
            stdout: Arc::new(Mutex::new(OutputTail::new(limit))),
            stderr: Arc::new(Mutex::new(OutputTail::new(limit))),
        }
    }

    /// Adds bytes read from `stream`.
    pub fn push(&self, stream: Stream, chunk: &[u8]) {
        lock(match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        })
        .push(chunk);
    }

    /// The output of a child that ended with `exit`: what was read of each stream.
    pub fn output(&self, exit: Exit) -> ProcessOutput {
        let (stdout, stdout_dropped) = lock(&self.stdout).take();
        let (stderr, stderr_dropped) = lock(&self.stderr).take();
        ProcessOutput {
            exit,
            stdout,
            stderr,
            stdout_dropped,
            stderr_dropped,
        }
    }
}

/// A reader that panicked mid-push left at worst a partial chunk: the tail is still usable.
fn lock(tail: &Mutex<OutputTail>) -> MutexGuard<'_, OutputTail> {
    tail.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Logs that output stopped being collected because a process outside the child's group
/// (another session) still holds one of its pipes after the grace period.
pub fn log_pipe_still_held() {
    tracing::warn!(
        "a process outside the group still holds an output pipe; returning what was read"
    );
}
