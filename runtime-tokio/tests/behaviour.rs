//! The shared behaviour suite (`anklet_tests::behaviour`) against the `anklet` binary (tokio): real
//! processes, real Redis, the GitHub emulator and fake Macs.

anklet_tests::suite_tests!(env!("CARGO_BIN_EXE_anklet"), behaviour::{
    jobs_complete_exactly_once,
    sigkill_mid_job_is_recovered,
    redis_restart_loses_nothing,
    sigint_requeues_in_flight,
    drain_finishes_running_jobs,
    malformed_config_exits_2,
    an_idle_host_is_woken_by_another_process_receiver,
});
