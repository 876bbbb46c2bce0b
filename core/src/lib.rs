//! anklet-core: the sans-IO heart of anklet-rs.
//!
//! Everything that decides lives here; everything that does lives in a runtime. The handler's
//! job lifecycle is a state machine ([`handler::HostHandler`]) that takes inputs and the current
//! time and emits effects (store operations, VM operations, GitHub calls, notices) as plain data
//! with ids; runtimes execute them and feed results back. This crate never reads a clock,
//! sleeps, spawns, or touches a socket, file or environment variable, so the tokio daemon, the
//! blocking daemon and the simulator all run the very same decisions.
//!
//! Contract of a machine (quinn-proto style):
//! - `handle_input(now, input)` / `handle_timeout(now)` mutate;
//! - `poll_effect()` drains what to do, in order;
//! - `poll_timeout()` says when to call `handle_timeout` next, and why.
#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod github;
pub mod handler;
pub mod ids;
pub mod labels;
pub mod metrics;
pub mod queue;
pub mod receiver;
pub mod retry;
pub mod secret;
pub mod time;
pub mod vm;
