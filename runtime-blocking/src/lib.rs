//! `anklet-lite` as a library: the parts of the blocking runtime other crates reuse (the
//! command line both daemons share, with the `daemon` feature). The
//! embedded store lives here so the tokio daemon runs the very same storage code (through
//! `spawn_blocking`) instead of a second implementation; with `default-features = false` this
//! library pulls in no daemon dependency.

#[cfg(feature = "daemon")]
pub mod cli;
pub mod clock;
#[cfg(feature = "daemon")]
pub mod common;
#[cfg(all(feature = "server", feature = "github"))]
pub mod daemon;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(feature = "github")]
pub mod github;
#[cfg(feature = "host-probe")]
pub mod host;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "queue-cli")]
pub mod queue_cli;
#[cfg(feature = "server")]
pub mod receiver;
pub mod store;
#[cfg(feature = "vm")]
pub mod vm;
