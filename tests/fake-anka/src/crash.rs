//! The `vm_crash` fault: a VM marked with a crash deadline turns `failed` when it passes and its
//! emulated runner is SIGKILLed, so it vanishes mid-job without completing and without telling the
//! runner service (a crashed guest says nothing). A detached `anka __crash-watch <vm>` applies the
//! deadline on time; every `anka` call also applies overdue ones, in case the watcher was killed.

use std::thread;
use std::time::Duration;

use crate::clock;
use crate::error::AnkaError;
use crate::home::Home;
use crate::procs;
use crate::state::{State, VmStatus};
use crate::store;

/// Crashes every running VM whose deadline has passed (call under the lock, then save).
pub fn apply_due(state: &mut State) {
    let now = clock::now_secs();
    let mut killed = 0u64;
    let mut crashed = 0u64;
    for vm in state.vms.values_mut() {
        let due = vm.crash_at.is_some_and(|t| t <= now);
        if !due {
            continue;
        }
        vm.crash_at = None;
        if vm.status != VmStatus::Running {
            continue;
        }
        vm.status = VmStatus::Failed;
        vm.ip = None;
        crashed += 1;
        for g in vm.guests.drain(..) {
            procs::kill_guest(g.pid, g.parent);
        }
        if let Some(pid) = vm.runner_pid.take() {
            procs::kill_helper(pid, procs::RUNNER);
            killed += 1;
        }
    }
    state.stats.crashes = state.stats.crashes.saturating_add(crashed);
    state.stats.runners_killed = state.stats.runners_killed.saturating_add(killed);
}

/// `anka __crash-watch <vm>`: waits for the VM's crash deadline, then applies it.
pub fn watch(home: &Home, vm: &str) -> Result<(), AnkaError> {
    loop {
        let deadline = {
            let locked = store::lock(home)?;
            match locked.state.vms.get(vm).and_then(|v| v.crash_at) {
                Some(t) => t,
                None => return Ok(()),
            }
        };
        let wait = deadline - clock::now_secs();
        if wait > 0.0 {
            thread::sleep(Duration::from_secs_f64(wait.min(3600.0)));
            continue;
        }
        return store::update(home, |state| {
            apply_due(state);
            Ok(())
        });
    }
}

/// Sets a VM's crash deadline (epoch seconds) and spawns its watcher (call under the lock, then
/// save; the watcher waits for the lock).
pub fn schedule(home: &Home, state: &mut State, name: &str, at: f64) -> Result<(), AnkaError> {
    let Some(vm) = state.vms.get_mut(name) else {
        return Ok(());
    };
    vm.crash_at = Some(at);
    let pid = procs::spawn_self(home, &[procs::CRASH_WATCH, name], None, None)?;
    if let Some(vm) = state.vms.get_mut(name) {
        vm.crash_watch_pid = Some(pid);
    }
    Ok(())
}
