//! The one error type every command returns: it carries what the ERROR envelope needs (code,
//! message, exception type) and the process exit status, so commands never print errors themselves.
//!
//! Real Anka exits with error-specific values (30 was seen for a registry problem), so the fake
//! varies them too and a driver cannot come to rely on `1`. Codes 3 (not found) and 18 (already
//! exists) are Anka's; the others are this fake's own and documented in the crate docs.

use std::fmt;

/// The kinds of failure the fake reports, each with a fixed envelope code and exit status so tests
/// and drivers see stable, documented values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad command line: unknown flag, missing argument (code 1, exit 2).
    Usage,
    /// A VM, template, tag or registry entry does not exist (Anka's code 3, exit 3).
    NotFound,
    /// The clone name is taken (Anka's code 18, exit 18).
    AlreadyExists,
    /// The registry is unreachable or unconfigured (code 30, exit 30, as seen from real Anka).
    Registry,
    /// The disk filled during a pull or a full clone (fake code 28 = ENOSPC, exit 28).
    NoSpace,
    /// Starting would exceed the 2 running VMs Apple permits (code 1, exit 1).
    LicenceLimit,
    /// The template's files are damaged, e.g. after overlapping pulls (fake code 5 = EIO, exit 5).
    Corrupt,
    /// The VM is not in a state that allows the operation (code 1, exit 1).
    State,
    /// The VM crashed: its guest connection is lost (code 125, exit 125, packer's "disconnected").
    Disconnected,
    /// The fake's own machinery failed: state file, I/O, spawning (code 1, exit 1).
    Internal,
    /// An injected `fail` fault, with the rule's code and exit status.
    Injected {
        /// The envelope code.
        code: i64,
        /// The process exit status.
        exit: i32,
    },
}

/// A failed command: what to put in the ERROR envelope and how to exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnkaError {
    /// Which failure this is; decides code, exit status and exception type.
    pub kind: Kind,
    /// The envelope `message`, e.g. `"<id>: not found"`.
    pub message: String,
}

impl AnkaError {
    /// Builds an error of `kind` with `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Anka's not-found error, message `"<id>: not found"` exactly as Anklet compares it.
    pub fn not_found(id: &str) -> Self {
        Self::new(Kind::NotFound, format!("{id}: not found"))
    }

    /// A command-line error.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }

    /// A failure of the fake itself (state file, I/O).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, message)
    }

    /// The envelope `code`.
    pub fn code(&self) -> i64 {
        match self.kind {
            Kind::Usage | Kind::LicenceLimit | Kind::State | Kind::Internal => 1,
            Kind::NotFound => 3,
            Kind::AlreadyExists => 18,
            Kind::Registry => 30,
            Kind::NoSpace => 28,
            Kind::Corrupt => 5,
            Kind::Disconnected => 125,
            Kind::Injected { code, .. } => code,
        }
    }

    /// The process exit status; never 0.
    pub fn exit(&self) -> i32 {
        let exit = match self.kind {
            Kind::Usage => 2,
            Kind::LicenceLimit | Kind::State | Kind::Internal => 1,
            Kind::NotFound => 3,
            Kind::AlreadyExists => 18,
            Kind::Registry => 30,
            Kind::NoSpace => 28,
            Kind::Corrupt => 5,
            Kind::Disconnected => 125,
            Kind::Injected { exit, .. } => exit,
        };
        if exit == 0 { 1 } else { exit }
    }

    /// The envelope `exception_type`, named like Anka's Java-style exceptions.
    pub fn exception_type(&self) -> &'static str {
        match self.kind {
            Kind::Usage => "AnkaUsageException",
            Kind::NotFound => "AnkaVMNotFoundException",
            Kind::AlreadyExists => "AnkaNameAlreadyExistsException",
            Kind::Registry => "AnkaRegistryException",
            Kind::NoSpace => "AnkaNoSpaceException",
            Kind::LicenceLimit => "AnkaLicenseLimitException",
            Kind::Corrupt => "AnkaCorruptTemplateException",
            Kind::State => "AnkaVMStateException",
            Kind::Disconnected => "AnkaVMDisconnectedException",
            Kind::Internal => "FakeAnkaInternalException",
            Kind::Injected { .. } => "FakeAnkaInjectedFault",
        }
    }
}

impl fmt::Display for AnkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AnkaError {}

impl From<std::io::Error> for AnkaError {
    fn from(e: std::io::Error) -> Self {
        Self::internal(format!("fake-anka I/O error: {e}"))
    }
}

impl From<serde_json::Error> for AnkaError {
    fn from(e: serde_json::Error) -> Self {
        Self::internal(format!("fake-anka JSON error: {e}"))
    }
}
