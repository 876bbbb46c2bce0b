//! anklet-sim: a deterministic fleet simulator that drives the production core (the handler
//! state machine and the queue semantics) with a virtual clock and seeded models of GitHub,
//! Anka hosts and the store, checking invariants as it goes.
//!
//! - [`scenario`]: what is simulated; a seed chooses fleet, work and faults.
//! - [`world`]: the event loop, the effect executors and the invariants.
//! - [`models`]: GitHub's job and runner service, Anka on each Mac.
//! - [`sweep`]: many seeds, with a summary.
//! - [`plan`]: capacity planning (a day of arrivals against fleet sizes); [`plot`] draws it.
#![warn(missing_docs, unreachable_pub)]

pub mod dice;
pub mod models;
pub mod plan;
pub mod plot;
pub mod scenario;
pub mod sweep;
pub mod world;
