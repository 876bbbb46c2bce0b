//! The VM backends' decisions, without I/O: the exact `anka` (and `tart`) command lines, how
//! anka's JSON answers are read and failures classified, and how each
//! [`VmCmd`](crate::handler::VmCmd) becomes a few invocations whose outputs fold into one
//! [`EffectResult`](crate::handler::EffectResult) ([`plan::VmCallPlan`]). Runtimes spawn the
//! processes a plan asks for (in their own process group, killed at the deadline) and feed
//! back what came out; they decide nothing.

pub mod anka;
pub mod backend;
pub mod dry_run;
pub mod error;
pub mod operand;
pub mod output;
pub mod plan;
pub mod process;
pub mod shell;
pub mod startup;
pub mod tail;
pub mod tart;
pub mod volume;

pub use error::AnkaError;
pub use output::Envelope;
pub use plan::{AnkaSettings, Step, VmCallPlan};
pub use process::{Exit, Invocation, OUTPUT_LIMIT_BYTES, ProcessOutput, Program};
