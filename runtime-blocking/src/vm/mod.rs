//! The anka driver of the blocking daemon: core's [`VmCallPlan`](anklet_core::vm::VmCallPlan)
//! decides every command line and reads every answer; this module only runs the processes
//! ([`process`]) and feeds the plan ([`anka`]). What a call is before it runs ([`call`]) is
//! shared with the tokio daemon's driver.

pub mod anka;
pub mod call;
pub mod process;
