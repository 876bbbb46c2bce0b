//! GitHub's side, sans-IO: webhook verification and parsing into queue operations, and a REST
//! client that decides every request and reads every response without doing any I/O.
//!
//! The client ([`client::GithubClient`]) is driven like quinn-proto's `Connection`: commands
//! and HTTP responses go in with the current time, HTTP requests and results come out. The
//! pieces it is built from are usable on their own: request builders and response parsers
//! ([`rest`]), credentials and tokens ([`auth`]), the rate-limit and retry policy
//! ([`ratelimit`]), and plain HTTP data ([`http`]).

pub mod auth;
pub mod client;
pub mod http;
pub mod link;
pub mod ratelimit;
pub mod rest;
pub mod rfc3339;
pub mod webhook;
