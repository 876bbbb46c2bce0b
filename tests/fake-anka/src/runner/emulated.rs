//! `anka __emulated-runner <vm>`: the runner process. It reads the JIT config from stdin (a pipe
//! from the `anka run` that spawned it, so the config is never on argv or in the environment),
//! opens a session, polls for a job every 100 ms, "runs" it for `duration_ms`, completes it and
//! exits. A graceful `anka stop` leaves a marker; the runner then closes its session
//! (`DELETE /sessions/{id}`) and exits. `delete`, `stop -f` and `vm_crash` SIGKILL it instead;
//! should it survive that, it vanishes silently as soon as its VM's directory is gone.

use std::io::Read;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::AnkaError;
use crate::home::Home;
use crate::runner::jit;
use crate::runner::service::{CallError, Job, Service};
use crate::store;

/// Poll interval of the job poll (the contract's 100 ms; not time-scaled).
const POLL: Duration = Duration::from_millis(100);

/// How long the service may stay unreachable before the runner gives up.
const GIVE_UP: Duration = Duration::from_secs(60);

/// How a runner's life ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The job was completed.
    Completed,
    /// A graceful stop asked it to go offline; it closed its session.
    Stopped,
    /// Its VM's directory disappeared (VM deleted while the runner escaped the kill, or the
    /// test's state directory removed): it vanished without a word, as with a killed guest.
    Vanished,
}

/// Why the runner must end early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Halt {
    /// Graceful stop marker.
    Stop,
    /// The VM is gone.
    Gone,
}

/// What the runner watches between calls: the stop marker and its VM's directory.
struct Watch {
    stop: PathBuf,
    vm_dir: PathBuf,
}

impl Watch {
    fn halt(&self) -> Option<Halt> {
        if !self.vm_dir.exists() {
            Some(Halt::Gone)
        } else if self.stop.exists() {
            Some(Halt::Stop)
        } else {
            None
        }
    }
}

fn log(vm: &str, msg: &str) {
    eprintln!("fake-anka: runner {vm}: {msg}");
}

/// Retries transient failures every 100 ms for up to a minute; ends early on a halt.
fn retry<T>(
    vm: &str,
    watch: &Watch,
    what: &str,
    mut f: impl FnMut() -> Result<T, CallError>,
) -> Result<Result<T, Halt>, AnkaError> {
    let start = Instant::now();
    loop {
        if let Some(h) = watch.halt() {
            return Ok(Err(h));
        }
        match f() {
            Ok(v) => return Ok(Ok(v)),
            Err(CallError::Fatal(e)) => {
                return Err(AnkaError::internal(format!("{what}: {e}")));
            }
            Err(CallError::Transient(e)) => {
                if start.elapsed() > GIVE_UP {
                    return Err(AnkaError::internal(format!("{what}: giving up: {e}")));
                }
                log(vm, &format!("{what}: {e}; retrying"));
                thread::sleep(POLL);
            }
        }
    }
}

/// Sleeps `ms`, in 100 ms slices; the halt that cut it short, if any.
fn work(ms: u64, watch: &Watch) -> Option<Halt> {
    let end = Instant::now() + Duration::from_millis(ms);
    loop {
        if let Some(h) = watch.halt() {
            return Some(h);
        }
        let now = Instant::now();
        if now >= end {
            return None;
        }
        thread::sleep((end - now).min(POLL));
    }
}

/// The runner's life, given its JIT config.
pub fn serve(home: &Home, vm: &str, encoded: &str) -> Result<End, AnkaError> {
    let cfg = jit::decode(encoded)?;
    let watch = Watch {
        stop: home.stop_marker(vm),
        vm_dir: home.vm_dir(vm),
    };
    log(
        vm,
        &format!(
            "runner {} (id {}) connecting to {}",
            cfg.agent_name, cfg.agent_id, cfg.server_url
        ),
    );
    let svc = Service::new(&cfg);
    let session = match retry(vm, &watch, "POST /sessions", || {
        svc.open_session(cfg.agent_id)
    })? {
        Ok(s) => s,
        Err(Halt::Stop) => return Ok(End::Stopped),
        Err(Halt::Gone) => return Ok(End::Vanished),
    };
    log(vm, &format!("online, session {session}"));
    let end_early = |h: Halt| {
        if h == Halt::Gone {
            log(vm, "the VM is gone: vanishing");
            return Ok(End::Vanished);
        }
        log(vm, "stop requested: closing the session");
        if let Err(e) = svc.close_session(&session) {
            log(vm, &format!("DELETE /sessions failed: {e:?}"));
        }
        Ok(End::Stopped)
    };
    let job: Job = loop {
        match retry(vm, &watch, "GET job", || svc.poll_job(&session))? {
            Err(h) => return end_early(h),
            Ok(Some(job)) => break job,
            Ok(None) => thread::sleep(POLL),
        }
    };
    log(
        vm,
        &format!(
            "job {} (run {}) assigned, running {} ms",
            job.job_id, job.run_id, job.duration_ms
        ),
    );
    if let Some(h) = work(job.duration_ms, &watch) {
        return end_early(h);
    }
    match retry(vm, &watch, "POST complete", || svc.complete(job.job_id))? {
        Ok(()) => {
            log(vm, &format!("job {} completed", job.job_id));
            Ok(End::Completed)
        }
        Err(h) => end_early(h),
    }
}

/// `anka __emulated-runner <vm>`: reads the JIT config from stdin, serves, then forgets its pid in
/// the VM's state.
pub fn main(home: &Home, vm: &str, stdin: &mut dyn Read) -> Result<End, AnkaError> {
    let mut text = String::new();
    stdin.read_to_string(&mut text)?;
    let line = text.lines().next().unwrap_or("").to_string();
    let result = serve(home, vm, &line);
    let me = std::process::id();
    store::update(home, |s| {
        if let Some(v) = s.vms.get_mut(vm)
            && v.runner_pid == Some(me)
        {
            v.runner_pid = None;
        }
        Ok(())
    })?;
    result
}
