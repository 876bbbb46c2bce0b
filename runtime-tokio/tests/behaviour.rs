//! The shared behaviour suite (`anklet_tests::behaviour`) against the `anklet` binary (tokio): real
//! processes, real Redis, the GitHub emulator and fake Macs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_tests::behaviour;
use std::path::Path;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_anklet"))
}

#[test]
fn jobs_complete_exactly_once() {
    behaviour::jobs_complete_exactly_once(bin(), 200);
}

#[test]
fn sigkill_mid_job_is_recovered() {
    behaviour::sigkill_mid_job_is_recovered(bin());
}

#[test]
fn redis_restart_loses_nothing() {
    behaviour::redis_restart_loses_nothing(bin());
}

#[test]
fn sigint_requeues_in_flight() {
    behaviour::sigint_requeues_in_flight(bin());
}

#[test]
fn drain_finishes_running_jobs() {
    behaviour::drain_finishes_running_jobs(bin());
}

#[test]
fn malformed_config_exits_2() {
    behaviour::malformed_config_exits_2(bin());
}
