//! Runs one child process the way the anka driver needs: in its own process group (so `anka`
//! and anything it forked die together), stdin written from a thread (a child that never reads
//! cannot block us), stdout and stderr captured with a size bound (the newest bytes kept), and
//! the whole group killed with SIGKILL at the deadline. Returns core's typed
//! [`ProcessOutput`]; interpreting it is core's job.

pub use super::call::ProcessSpec;
use super::call::{OutputTails, Stream, exit_of, log_pipe_still_held};
use anklet_core::vm::{Exit, ProcessOutput};
use process_wrap::std::{ChildWrapper, CommandWrap, ProcessGroup};
use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How often a running child is checked for exit.
const POLL: Duration = Duration::from_millis(10);
/// How long output is still collected after the child ended, for a grandchild that escaped the
/// group (another session) and kept a pipe open; then we return what we have.
const READ_GRACE: Duration = Duration::from_secs(2);

/// Copies a pipe into its tail until EOF, then says so on `done`.
fn reader(
    mut pipe: impl Read + Send + 'static,
    tails: OutputTails,
    stream: Stream,
    done: mpsc::Sender<()>,
) {
    let spawned = thread::Builder::new()
        .name("vm-output".into())
        .spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => tails.push(stream, &chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = done.send(());
        });
    if spawned.is_err() {
        tracing::warn!("could not start an output reader thread; that stream is lost");
    }
}

/// Kills the group if the child is dropped before it was reaped (a panic, an early return).
struct GroupGuard {
    child: Box<dyn ChildWrapper>,
    reaped: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.start_kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `spec` to its end or its deadline; never panics on the child's behaviour.
pub fn run(spec: ProcessSpec<'_>) -> ProcessOutput {
    let mut command = CommandWrap::with_new(spec.program, |c| spec.configure(c));
    command.wrap(ProcessGroup::leader());
    let started = Instant::now();
    let mut guard = match command.spawn() {
        Ok(child) => GroupGuard {
            child,
            reaped: false,
        },
        Err(e) => return ProcessOutput::new(Exit::SpawnFailed(e.to_string()), Vec::new()),
    };

    if let (Some(bytes), Some(mut pipe)) = (spec.stdin, guard.child.stdin().take()) {
        let bytes = bytes.to_vec();
        let spawned = thread::Builder::new()
            .name("vm-stdin".into())
            .spawn(move || {
                // A child that exits without reading closes the pipe: not our failure.
                let _ = pipe.write_all(&bytes);
            });
        if spawned.is_err() {
            tracing::warn!("could not start the stdin writer thread; the child gets no input");
        }
    }

    let (done_tx, done_rx) = mpsc::channel();
    let tails = OutputTails::new(spec.output_limit);
    let mut readers = 0;
    if let Some(pipe) = guard.child.stdout().take() {
        reader(pipe, tails.clone(), Stream::Stdout, done_tx.clone());
        readers += 1;
    }
    if let Some(pipe) = guard.child.stderr().take() {
        reader(pipe, tails.clone(), Stream::Stderr, done_tx.clone());
        readers += 1;
    }
    drop(done_tx);

    let deadline = started + spec.timeout;
    let exit = loop {
        match guard.child.try_wait() {
            Ok(Some(status)) => break exit_of(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = guard.child.start_kill();
                let _ = guard.child.wait();
                break Exit::TimedOut {
                    after: spec.timeout,
                };
            }
            Ok(None) => thread::sleep(POLL),
            Err(e) => {
                let _ = guard.child.start_kill();
                let _ = guard.child.wait();
                break Exit::SpawnFailed(format!("waiting for the child failed: {e}"));
            }
        }
    };
    guard.reaped = true;

    let grace = Instant::now() + READ_GRACE;
    for _ in 0..readers {
        let left = grace.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            log_pipe_still_held();
            break;
        }
    }
    tails.output(exit)
}
