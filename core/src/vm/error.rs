//! Anka failures, typed, and how each maps to the lifecycle's [`FailureClass`].
//!
//! Anka's error codes are sparse (3 = not found, 18 = name exists; research notes, anka-cli.md
//! §1) and its exit statuses are error-specific, so a failure is recognised from the envelope's
//! code first and its message second. The messages that matter (`<id>: not found`,
//! `maximum number of running instances exceeded`, `No space left on device`) come from Anklet,
//! Veertu's release notes and the OS.

use crate::handler::{Failure, FailureClass};
use std::time::Duration;

/// Anka's code for "VM or template not found" (also "not in registry" on `registry pull`).
pub const CODE_NOT_FOUND: i64 = 3;
/// Anka's code for "a VM with this name already exists" (on `clone`).
pub const CODE_ALREADY_EXISTS: i64 = 18;
/// What `anka run` exits with when the connection to the guest is lost (packer's reading).
pub const EXIT_GUEST_DISCONNECTED: i32 = 125;
/// Longest excerpt of anka's output kept in an error message.
pub const EXCERPT_CHARS: usize = 300;

/// One failed anka call, or a plan step that could not go on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnkaError {
    /// The VM, template or tag does not exist (locally or in the registry).
    #[error("not found: {message}")]
    NotFound {
        /// Anka's message.
        message: String,
    },
    /// A VM with the requested name already exists.
    #[error("already exists: {message}")]
    AlreadyExists {
        /// Anka's message.
        message: String,
    },
    /// Apple's licence allows two running macOS VMs per host and both are taken; a later try
    /// may work once a VM is deleted, so the lifecycle sees it as transient.
    #[error("running-VM licence limit reached: {message}")]
    LicenceLimit {
        /// Anka's message.
        message: String,
    },
    /// The template volume is full.
    #[error("disk full: {message}")]
    DiskFull {
        /// Anka's or the OS's message.
        message: String,
    },
    /// Anka reported an error we have no better name for.
    #[error("anka failed (code {code:?}, exit {exit:?}): {message}")]
    Failed {
        /// The envelope's `code`, if any.
        code: Option<i64>,
        /// The process exit status, if it exited.
        exit: Option<i32>,
        /// Anka's message.
        message: String,
    },
    /// The last line of stdout was not an envelope (a crash, a killed child, a changed CLI).
    #[error("anka printed no JSON envelope (exit {exit:?}): {excerpt}")]
    NoEnvelope {
        /// The process exit status, if it exited.
        exit: Option<i32>,
        /// The end of what it printed.
        excerpt: String,
    },
    /// A command run in the guest exited non-zero.
    #[error("guest command exited with {exit}: {excerpt}")]
    GuestFailed {
        /// Its exit status (125: connection to the guest lost).
        exit: i32,
        /// The end of what it printed.
        excerpt: String,
    },
    /// The call outlived its deadline and its process group was killed.
    #[error("timed out after {after:?}")]
    TimedOut {
        /// The deadline.
        after: Duration,
    },
    /// The child died of a signal we did not send.
    #[error("killed by signal {signal}")]
    Killed {
        /// The signal number.
        signal: i32,
    },
    /// The executable could not be started.
    #[error("could not start the VM backend: {message}")]
    Spawn {
        /// The OS error.
        message: String,
    },
    /// The envelope was OK but its body lacked what we needed.
    #[error("unexpected answer from `{what}`: {detail}")]
    UnexpectedBody {
        /// The subcommand.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A value would not be safe on a command line (empty, starts with `-`, control characters).
    #[error("refused {what} {value:?}: {why}")]
    InvalidOperand {
        /// What the value is (VM name, template, tag, label...).
        what: &'static str,
        /// The value.
        value: String,
        /// Why it was refused.
        why: &'static str,
    },
    /// The host's Anka cannot serve jobs (an invalid or run/develop licence).
    #[error("refused {what}: {detail}")]
    Refused {
        /// What was refused.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// The runtime could not measure the template volume.
    #[error("could not measure the template volume: {message}")]
    DiskProbe {
        /// The runtime's error.
        message: String,
    },
}

impl AnkaError {
    /// The class the lifecycle retries or gives up on.
    pub fn class(&self) -> FailureClass {
        match self {
            AnkaError::NotFound { .. } => FailureClass::NotFound,
            AnkaError::AlreadyExists { .. }
            | AnkaError::InvalidOperand { .. }
            | AnkaError::Refused { .. } => FailureClass::Permanent,
            AnkaError::DiskFull { .. } => FailureClass::DiskFull,
            AnkaError::TimedOut { .. } => FailureClass::TimedOut,
            AnkaError::LicenceLimit { .. }
            | AnkaError::Failed { .. }
            | AnkaError::NoEnvelope { .. }
            | AnkaError::GuestFailed { .. }
            | AnkaError::Killed { .. }
            | AnkaError::Spawn { .. }
            | AnkaError::UnexpectedBody { .. }
            | AnkaError::DiskProbe { .. } => FailureClass::Transient,
        }
    }

    /// The [`Failure`] the lifecycle receives, its message cleaned of every `secret`.
    pub fn to_failure(&self, secrets: &[&str]) -> Failure {
        Failure::new(self.class(), redact(&self.to_string(), secrets))
    }
}

/// Names a failure from an envelope's `code` and `message` (or, without an envelope, from the
/// text the process printed), so the same words mean the same class whichever way they came.
pub fn classify(code: Option<i64>, exit: Option<i32>, message: &str) -> AnkaError {
    let lower = message.to_ascii_lowercase();
    let message = message.to_owned();
    if lower.contains("no space left") || lower.contains("enospc") {
        AnkaError::DiskFull { message }
    } else if lower.contains("maximum number of running instances") {
        AnkaError::LicenceLimit { message }
    } else if code == Some(CODE_NOT_FOUND) || lower.contains("not found") {
        AnkaError::NotFound { message }
    } else if code == Some(CODE_ALREADY_EXISTS) || lower.contains("already exists") {
        AnkaError::AlreadyExists { message }
    } else {
        AnkaError::Failed {
            code,
            exit,
            message,
        }
    }
}

/// Replaces every occurrence of each non-empty secret by `[redacted]`.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s, crate::secret::REDACTED);
    }
    out
}

/// The last [`EXCERPT_CHARS`] characters of `bytes` as one printable line, for messages.
pub fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let clean: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let count = clean.chars().count();
    if count <= EXCERPT_CHARS {
        clean
    } else {
        let tail: String = clean.chars().skip(count - EXCERPT_CHARS).collect();
        format!("…{tail}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_name_the_failure() {
        assert!(matches!(
            classify(Some(3), Some(1), "x"),
            AnkaError::NotFound { .. }
        ));
        assert!(matches!(
            classify(Some(1), Some(1), "6c14r: not found"),
            AnkaError::NotFound { .. }
        ));
        assert!(matches!(
            classify(Some(18), Some(1), "x"),
            AnkaError::AlreadyExists { .. }
        ));
        assert!(matches!(
            classify(
                Some(1),
                Some(1),
                "maximum number of running instances exceeded"
            ),
            AnkaError::LicenceLimit { .. }
        ));
        assert!(matches!(
            classify(Some(3), Some(1), "write: No space left on device"),
            AnkaError::DiskFull { .. }
        ));
        assert!(matches!(
            classify(None, Some(4), "ENOSPC"),
            AnkaError::DiskFull { .. }
        ));
        assert!(matches!(
            classify(Some(7), Some(30), "other"),
            AnkaError::Failed { .. }
        ));
    }

    #[test]
    fn classes_follow_the_lifecycle_contract() {
        let msg = || "m".to_owned();
        assert_eq!(
            AnkaError::LicenceLimit { message: msg() }.class(),
            FailureClass::Transient
        );
        assert_eq!(
            AnkaError::DiskFull { message: msg() }.class(),
            FailureClass::DiskFull
        );
        assert_eq!(
            AnkaError::NotFound { message: msg() }.class(),
            FailureClass::NotFound
        );
        assert_eq!(
            AnkaError::AlreadyExists { message: msg() }.class(),
            FailureClass::Permanent
        );
        let t = AnkaError::TimedOut {
            after: Duration::from_secs(1),
        };
        assert_eq!(t.class(), FailureClass::TimedOut);
        let g = AnkaError::NoEnvelope {
            exit: Some(0),
            excerpt: msg(),
        };
        assert_eq!(g.class(), FailureClass::Transient);
    }

    #[test]
    fn failures_never_carry_secrets() {
        let e = AnkaError::GuestFailed {
            exit: 1,
            excerpt: "bad token AAA-SECRET".into(),
        };
        let f = e.to_failure(&["AAA-SECRET", ""]);
        assert!(!f.message.contains("AAA-SECRET"), "{}", f.message);
        assert!(f.message.contains("[redacted]"));
    }

    #[test]
    fn excerpts_keep_the_end_on_one_line() {
        let long = "x".repeat(1000) + "\nEND";
        let e = excerpt(long.as_bytes());
        assert!(e.ends_with(" END"));
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
    }
}
