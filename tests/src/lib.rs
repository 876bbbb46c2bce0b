//! End-to-end tests live in tests/; this library holds what they and the runtimes' store
//! tests share: a real `redis-server` per test ([`redis_server`]) and the receiver behaviour
//! both daemons must show ([`receiver_suite`]).

pub mod behaviour;
pub mod fleet;
pub mod github_suite;
pub mod metrics_suite;
pub mod receiver_suite;
pub mod redis_server;
pub mod vm_faults;
