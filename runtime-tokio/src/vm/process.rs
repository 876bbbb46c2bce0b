//! Runs one child process for the anka driver on tokio: in its own process group, stdin
//! written by a task, stdout and stderr captured into bounded tails
//! ([`OutputTails`](anklet_lite::vm::call::OutputTails)), the whole group SIGKILLed at the
//! deadline and, should this future be dropped early (a cancelled effect, a stopping daemon),
//! on drop as well.

use anklet_core::vm::{Exit, ProcessOutput};
pub use anklet_lite::vm::call::ProcessSpec;
use anklet_lite::vm::call::{OutputTails, Stream, exit_of, log_pipe_still_held};
use process_wrap::tokio::{ChildWrapper, CommandWrap, KillOnDrop, ProcessGroup};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long output is still collected after the child ended, for a process outside the group
/// (another session) that kept a pipe open; then we return what we have.
const READ_GRACE: Duration = Duration::from_secs(2);

/// Copies a pipe into its tail until EOF.
fn reader(
    mut pipe: impl AsyncRead + Unpin + Send + 'static,
    tails: OutputTails,
    stream: Stream,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => tails.push(stream, &chunk[..n]),
            }
        }
    })
}

/// Kills the group if the child was not reaped (this future dropped mid-run).
struct GroupGuard {
    child: Box<dyn ChildWrapper>,
    reaped: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.start_kill();
        }
    }
}

/// Runs `spec` to its end or its deadline; never panics on the child's behaviour.
pub async fn run(spec: ProcessSpec<'_>) -> ProcessOutput {
    let mut command = CommandWrap::with_new(spec.program, |c| spec.configure(c.as_std_mut()));
    command.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
    let deadline = Instant::now() + spec.timeout;
    let mut guard = match command.spawn() {
        Ok(child) => GroupGuard {
            child,
            reaped: false,
        },
        Err(e) => return ProcessOutput::new(Exit::SpawnFailed(e.to_string()), Vec::new()),
    };

    if let (Some(bytes), Some(mut pipe)) = (spec.stdin, guard.child.stdin().take()) {
        let bytes = bytes.to_vec();
        tokio::spawn(async move {
            // A child that exits without reading closes the pipe: not our failure.
            let _ = pipe.write_all(&bytes).await;
            let _ = pipe.shutdown().await;
        });
    }

    let tails = OutputTails::new(spec.output_limit);
    let mut readers = Vec::new();
    if let Some(pipe) = guard.child.stdout().take() {
        readers.push(reader(pipe, tails.clone(), Stream::Stdout));
    }
    if let Some(pipe) = guard.child.stderr().take() {
        readers.push(reader(pipe, tails.clone(), Stream::Stderr));
    }

    let exit = match tokio::time::timeout_at(deadline, guard.child.wait()).await {
        Ok(Ok(status)) => exit_of(status),
        Ok(Err(e)) => {
            let _ = guard.child.start_kill();
            let _ = guard.child.wait().await;
            Exit::SpawnFailed(format!("waiting for the child failed: {e}"))
        }
        Err(_) => {
            let _ = guard.child.start_kill();
            let _ = guard.child.wait().await;
            Exit::TimedOut {
                after: spec.timeout,
            }
        }
    };
    guard.reaped = true;

    let grace = Instant::now() + READ_GRACE;
    for r in readers {
        if tokio::time::timeout_at(grace, r).await.is_err() {
            log_pipe_still_held();
            break;
        }
    }
    tails.output(exit)
}
