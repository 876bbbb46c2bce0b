//! Starting a runner for a VM: a detached `anka __emulated-runner <vm>` in its own process group,
//! handed the JIT config on a pipe (never argv, never the environment), its pid recorded in the
//! VM's state so `stop`/`delete`/`vm_crash` can kill it. A runner already there is killed first.

use std::fs;

use crate::error::AnkaError;
use crate::home::Home;
use crate::procs;
use crate::store;

/// Spawns the runner of `vm` with `jit` and records its pid.
pub fn spawn(home: &Home, vm: &str, jit: &str) -> Result<u32, AnkaError> {
    fs::create_dir_all(home.vm_dir(vm))?;
    let _ = fs::remove_file(home.stop_marker(vm));
    let old = store::lock(home)?
        .state
        .vms
        .get(vm)
        .and_then(|v| v.runner_pid);
    if let Some(pid) = old.filter(|p| procs::alive(*p)) {
        procs::kill_helper(pid, procs::RUNNER);
    }
    let mut input = jit.trim().as_bytes().to_vec();
    input.push(b'\n');
    let log = home.runner_log(vm);
    let pid = procs::spawn_self(home, &[procs::RUNNER, vm], Some(&input), Some(&log))?;
    store::update(home, |s| {
        match s.vms.get_mut(vm) {
            Some(v) => v.runner_pid = Some(pid),
            None => {
                procs::kill_helper(pid, procs::RUNNER);
                return Err(AnkaError::not_found(vm));
            }
        }
        s.stats.runners_started = s.stats.runners_started.saturating_add(1);
        Ok(pid)
    })
}
