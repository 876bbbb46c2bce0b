//! anklet-core: the sans-IO heart of anklet-rs.
#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod secret;
