//! End-to-end tests live in tests/; this library holds what they and the runtimes' store
//! tests share: a real `redis-server` per test ([`redis_server`]).

pub mod redis_server;
