//! Storage backends of the job queue. Each one implements `anklet_core::queue::txn::Backend`
//! only (reads and guarded, all-or-nothing commits); the queue's semantics stay in core's
//! transactions, so every store behaves the same.

pub mod embedded;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "redis-conn")]
pub mod redis_conn;
pub mod shared;
