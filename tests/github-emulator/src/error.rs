//! The library's error type: every failure a caller of the Rust API can see, typed so tests
//! can tell a bad configuration from a refused job.

/// Why an emulator operation failed. Messages never carry a token, secret or JIT config.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be opened (port taken, bad address).
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address that was asked for.
        addr: String,
        /// What the OS said.
        reason: String,
    },
    /// The configuration cannot work (for example an app id without a public key).
    #[error("invalid emulator configuration: {0}")]
    InvalidConfig(String),
    /// A job could not be created from the given spec.
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// A fault cannot be armed as given.
    #[error("invalid fault: {0}")]
    InvalidFault(String),
    /// The named job, run, runner, hook or delivery does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A compiled-in fixture did not parse (a build problem, reported instead of panicking).
    #[error("built-in fixture {0} is not valid JSON")]
    Fixture(&'static str),
    /// The emulator was already shut down.
    #[error("the emulator has shut down")]
    ShutDown,
}
