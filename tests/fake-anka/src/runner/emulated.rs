//! `anka __emulated-runner <vm>`: the runner process. It reads the JIT config from stdin (a pipe
//! from the `anka run` that spawned it, so the config is never on argv or in the environment),
//! opens a session, polls for a job every 100 ms, "runs" it for `duration_ms`, completes it and
//! exits. A graceful `anka stop` leaves a marker; the runner then closes its session
//! (`DELETE /sessions/{id}`) and exits. `delete`, `stop -f` and `vm_crash` SIGKILL it instead.

use std::io::Read;
use std::path::Path;
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
    /// A graceful stop asked it to go offline.
    Stopped,
}

fn log(vm: &str, msg: &str) {
    eprintln!("fake-anka: runner {vm}: {msg}");
}

/// Retries transient failures every 100 ms for up to a minute; stops early on a stop request.
fn retry<T>(
    vm: &str,
    stop: &Path,
    what: &str,
    mut f: impl FnMut() -> Result<T, CallError>,
) -> Result<Option<T>, AnkaError> {
    let start = Instant::now();
    loop {
        if stop.exists() {
            return Ok(None);
        }
        match f() {
            Ok(v) => return Ok(Some(v)),
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

/// Sleeps `ms`, in 100 ms slices; true if a stop was requested meanwhile.
fn work(ms: u64, stop: &Path) -> bool {
    let end = Instant::now() + Duration::from_millis(ms);
    loop {
        if stop.exists() {
            return true;
        }
        let now = Instant::now();
        if now >= end {
            return false;
        }
        thread::sleep((end - now).min(POLL));
    }
}

/// The runner's life, given its JIT config.
pub fn serve(home: &Home, vm: &str, encoded: &str) -> Result<End, AnkaError> {
    let cfg = jit::decode(encoded)?;
    let stop = home.stop_marker(vm);
    log(
        vm,
        &format!(
            "runner {} (id {}) connecting to {}",
            cfg.agent_name, cfg.agent_id, cfg.server_url
        ),
    );
    let svc = Service::new(&cfg);
    let Some(session) = retry(vm, &stop, "POST /sessions", || {
        svc.open_session(cfg.agent_id)
    })?
    else {
        return Ok(End::Stopped);
    };
    log(vm, &format!("online, session {session}"));
    let goodbye = |svc: &Service| {
        log(vm, "stop requested: closing the session");
        if let Err(e) = svc.close_session(&session) {
            log(vm, &format!("DELETE /sessions failed: {e:?}"));
        }
        Ok(End::Stopped)
    };
    let job: Job = loop {
        if stop.exists() {
            return goodbye(&svc);
        }
        match retry(vm, &stop, "GET job", || svc.poll_job(&session))? {
            None => return goodbye(&svc),
            Some(Some(job)) => break job,
            Some(None) => thread::sleep(POLL),
        }
    };
    log(
        vm,
        &format!(
            "job {} (run {}) assigned, running {} ms",
            job.job_id, job.run_id, job.duration_ms
        ),
    );
    if work(job.duration_ms, &stop) {
        return goodbye(&svc);
    }
    match retry(vm, &stop, "POST complete", || svc.complete(job.job_id))? {
        Some(()) => {
            log(vm, &format!("job {} completed", job.job_id));
            Ok(End::Completed)
        }
        None => goodbye(&svc),
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
