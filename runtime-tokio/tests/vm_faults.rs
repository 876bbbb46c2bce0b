//! Issue 7's fault-injection and sweep suite (`anklet_tests::vm_faults`) against the `anklet`
//! binary: a real daemon drives the fake `anka` through its real driver, with faults injected.

anklet_tests::suite_tests!(env!("CARGO_BIN_EXE_anklet"), vm_faults::{
    pull_fails,
    pull_hangs,
    clone_fails,
    start_fails_once,
    start_always_fails,
    vm_dies_mid_job,
    disk_full,
    sweep_after_sigkill,
    registry_down,
    clone_dies,
    start_answers_garbage,
    sweep_spares_busy_vm,
});
