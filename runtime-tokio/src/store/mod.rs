//! Storage backends of the job queue for the tokio runtime. Semantics stay in core's
//! transactions (`anklet_core::queue::txn`); a store here only answers reads and applies
//! guarded commits, asynchronously.

pub mod redis;
pub mod shared;
