//! `anklet` as a library: the tokio daemon and its parts (GitHub executor, receiver server,
//! stores, anka driver), which tests, benchmarks and the binary use without running it.

pub mod daemon;
pub mod github;
pub mod heartbeat;
pub mod metrics;
pub mod receiver;
pub mod store;
pub mod vm;
