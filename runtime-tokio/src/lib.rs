//! `anklet` as a library: the parts of the tokio daemon that tests, benchmarks and other
//! crates reuse without running the binary.

pub mod receiver;
pub mod store;
pub mod vm;
