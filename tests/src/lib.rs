//! End-to-end tests live in tests/; this library holds what they and the runtimes' store
//! tests share: a real `redis-server` per test ([`redis_server`]) and the receiver behaviour
//! both daemons must show ([`receiver_suite`]).

pub mod behaviour;
pub mod fleet;
pub mod github_suite;
pub mod log_suite;
pub mod metrics_suite;
pub mod receiver_suite;
pub mod redis_server;
pub mod script;
pub mod vm_faults;

/// One `#[test]` per function of a shared suite module, each called with the daemon binary
/// `bin`: each runtime's test file is one line per suite, and both run the same list.
#[macro_export]
macro_rules! suite_tests {
    ($bin:expr, $suite:ident :: { $($test:ident),+ $(,)? }) => {
        $(
            #[test]
            fn $test() {
                $crate::$suite::$test(::std::path::Path::new($bin));
            }
        )+
    };
}
