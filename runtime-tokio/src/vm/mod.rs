//! The anka driver of the tokio daemon: core's [`VmCallPlan`](anklet_core::vm::VmCallPlan)
//! decides every command line and reads every answer; this module only runs the processes
//! ([`process`]) and feeds the plan ([`anka`]). Host probes are anklet-lite's
//! (`anklet_lite::host`), run on a blocking thread; what a call is before it runs (the
//! settings, the process) is anklet-lite's too (`anklet_lite::vm::call`).

pub mod anka;
pub mod process;
