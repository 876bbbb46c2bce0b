//! A wrapper for values that must never reach logs, metrics, panics or error messages.
//!
//! Tokens, private keys, webhook secrets and JIT runner configs all travel through core as
//! [`Secret`]. Its `Debug` and `Display` print a fixed marker, so a stray `{:?}` of a config,
//! an effect or an error cannot leak the value; the one way to read it is [`Secret::expose`],
//! which is easy to grep for in review.

use serde::{Deserialize, Deserializer};

/// A string whose content is hidden from every formatter.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

/// What a secret prints as, everywhere.
pub const REDACTED: &str = "[redacted]";

impl Secret {
    /// Wraps a value so formatting no longer shows it.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the value; call it only at the point of use (an HTTP header, a child's stdin).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Says whether the secret is unset, which config validation needs without exposing it.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let s = Secret::new("ghp_supersecret");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(
            serde_json::to_string(&s).unwrap_or_default(),
            "\"[redacted]\""
        );
        assert_eq!(s.expose(), "ghp_supersecret");
    }
}
