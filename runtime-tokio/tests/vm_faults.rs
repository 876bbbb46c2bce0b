//! Issue 7's fault-injection and sweep suite (`anklet_tests::vm_faults`) against the `anklet`
//! binary: a real daemon drives the fake `anka` through its real driver, with faults injected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_tests::vm_faults;
use std::path::Path;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_anklet"))
}

#[test]
fn pull_fails() {
    vm_faults::pull_fails(bin());
}

#[test]
fn pull_hangs() {
    vm_faults::pull_hangs(bin());
}

#[test]
fn clone_fails() {
    vm_faults::clone_fails(bin());
}

#[test]
fn start_fails_once() {
    vm_faults::start_fails_once(bin());
}

#[test]
fn start_always_fails() {
    vm_faults::start_always_fails(bin());
}

#[test]
fn vm_dies_mid_job() {
    vm_faults::vm_dies_mid_job(bin());
}

#[test]
fn disk_full() {
    vm_faults::disk_full(bin());
}

#[test]
fn sweep_after_sigkill() {
    vm_faults::sweep_after_sigkill(bin());
}

#[test]
fn registry_down() {
    vm_faults::registry_down(bin());
}

#[test]
fn clone_dies() {
    vm_faults::clone_dies(bin());
}

#[test]
fn start_answers_garbage() {
    vm_faults::start_answers_garbage(bin());
}

#[test]
fn sweep_spares_busy_vm() {
    vm_faults::sweep_spares_busy_vm(bin());
}
