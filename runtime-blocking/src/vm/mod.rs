//! The anka driver of the blocking daemon: core's [`VmCallPlan`](anklet_core::vm::VmCallPlan)
//! decides every command line and reads every answer; this module only runs the processes
//! ([`process`]) and feeds the plan ([`anka`]).

pub mod anka;
pub mod process;
