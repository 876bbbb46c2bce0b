//! The shared GitHub suite (`anklet_tests::github_suite`, issue 6) against the `anklet` binary:
//! App token refresh, rate-limit pauses, lost deliveries, reconciliation, stolen runners and
//! no secret in any log, with real processes, real Redis, the GitHub emulator and fake Macs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_tests::github_suite;
use std::path::Path;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_anklet"))
}

#[test]
fn installation_token_refresh() {
    github_suite::installation_token_refresh(bin());
}

#[test]
fn rate_limit_pause_and_resume() {
    github_suite::rate_limit_pause_and_resume(bin());
}

#[test]
fn lost_deliveries_are_redelivered() {
    github_suite::lost_deliveries_are_redelivered(bin());
}

#[test]
fn reconciliation_removes_finished_jobs() {
    github_suite::reconciliation_removes_finished_jobs(bin());
}

#[test]
fn stolen_runner_requeues_the_job() {
    github_suite::stolen_runner_requeues_the_job(bin());
}

#[test]
fn no_secret_in_logs() {
    github_suite::no_secret_in_logs(bin());
}

#[test]
fn runner_swap_makes_no_extra_runner() {
    github_suite::runner_swap_makes_no_extra_runner(bin());
}
