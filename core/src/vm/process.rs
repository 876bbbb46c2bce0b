//! The data a runtime exchanges with a plan: which program to run with which arguments, stdin
//! and deadline, and what came back. Runtimes only move these values between a child process
//! and [`VmCallPlan`](super::plan::VmCallPlan); they decide nothing.

use crate::secret::Secret;
use std::time::Duration;

/// How many bytes of each output stream a runtime keeps. Anka's answer is the last line, so a
/// runtime keeps the newest bytes and drops the oldest beyond this bound (a long pull prints
/// progress lines for an hour; memory must not grow with it).
pub const OUTPUT_LIMIT_BYTES: usize = 1 << 20;

/// Which executable an invocation runs; the runtime maps it to a configured path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Program {
    /// Veertu's `anka` CLI.
    Anka,
    /// Cirrus Labs' `tart`.
    Tart,
}

impl Program {
    /// The executable's name on `PATH`, the default when no path is configured.
    pub fn default_name(self) -> &'static str {
        match self {
            Program::Anka => "anka",
            Program::Tart => "tart",
        }
    }
}

/// One child process to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The executable.
    pub program: Program,
    /// Arguments after the program name; never contain a secret.
    pub args: Vec<String>,
    /// Bytes to write to the child's stdin before closing it; `None` closes stdin at once.
    /// A [`Secret`] because the only stdin we send carries runner credentials.
    pub stdin: Option<Secret>,
    /// The runtime kills the child's whole process group when this elapses.
    pub timeout: Duration,
}

/// How a child ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Exited with this status code.
    Code(i32),
    /// Killed by this signal (not by us).
    Signal(i32),
    /// Still running at its deadline; its process group was killed.
    TimedOut {
        /// The deadline that passed.
        after: Duration,
    },
    /// It could not be started (binary missing, not executable, bad argument).
    SpawnFailed(String),
}

/// What a child produced: its exit and the tail of each output stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessOutput {
    /// How it ended.
    pub exit: Exit,
    /// The last [`OUTPUT_LIMIT_BYTES`] of stdout.
    pub stdout: Vec<u8>,
    /// The last [`OUTPUT_LIMIT_BYTES`] of stderr.
    pub stderr: Vec<u8>,
    /// Bytes of stdout dropped from the front to respect the bound.
    pub stdout_dropped: u64,
    /// Bytes of stderr dropped from the front to respect the bound.
    pub stderr_dropped: u64,
}

impl ProcessOutput {
    /// An output with this exit and stdout, empty stderr and nothing dropped (tests, dry runs).
    pub fn new(exit: Exit, stdout: impl Into<Vec<u8>>) -> Self {
        Self {
            exit,
            stdout: stdout.into(),
            stderr: Vec::new(),
            stdout_dropped: 0,
            stderr_dropped: 0,
        }
    }

    /// The output of a child that exited with `code` after printing `stdout`.
    pub fn exited(code: i32, stdout: impl Into<Vec<u8>>) -> Self {
        Self::new(Exit::Code(code), stdout)
    }
}
