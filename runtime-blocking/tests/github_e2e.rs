//! The shared GitHub suite (`anklet_tests::github_suite`, issue 6) against the `anklet-lite` binary:
//! App token refresh, rate-limit pauses, lost deliveries, reconciliation, stolen runners and
//! no secret in any log, with real processes, real Redis, the GitHub emulator and fake Macs.

anklet_tests::suite_tests!(env!("CARGO_BIN_EXE_anklet-lite"), github_suite::{
    installation_token_refresh,
    rate_limit_pause_and_resume,
    lost_deliveries_are_redelivered,
    reconciliation_removes_finished_jobs,
    stolen_runner_requeues_the_job,
    no_secret_in_logs,
    runner_swap_makes_no_extra_runner,
});
