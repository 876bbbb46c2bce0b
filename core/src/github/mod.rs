//! GitHub's side, sans-IO: webhook verification and parsing into queue operations. (REST
//! request builders and response parsers join here as the GitHub client is built.)

pub mod webhook;
