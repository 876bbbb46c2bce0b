//! What every command handler gets: the state directory, the output streams, stdin (for `run`),
//! the faults in force and the effective time scale.

use std::io::Read;

use crate::faults::Active;
use crate::home::Home;
use crate::output::Out;

/// A command's environment.
pub struct Ctx<'a> {
    /// The state directory.
    pub home: Home,
    /// Output streams.
    pub out: Out<'a>,
    /// Standard input, taken by the first reader (`run`).
    pub stdin: Option<Box<dyn Read + Send>>,
    /// Faults that fired for this command.
    pub faults: Active,
    /// Time scale × any `slow` factor: multiply fake milliseconds by this.
    pub scale: f64,
}

/// What a successful command answers.
#[derive(Debug)]
pub enum Reply {
    /// An OK envelope with this body and message.
    Envelope {
        /// The `body`.
        body: serde_json::Value,
        /// The `message`.
        message: String,
    },
    /// No envelope: exit with the guest command's status (`run`) or print raw text (`config`).
    Exit(i32),
}

impl Reply {
    /// An OK envelope with an empty message.
    pub fn body(body: serde_json::Value) -> Self {
        Self::Envelope {
            body,
            message: String::new(),
        }
    }

    /// An OK envelope with a message.
    pub fn with_message(body: serde_json::Value, message: impl Into<String>) -> Self {
        Self::Envelope {
            body,
            message: message.into(),
        }
    }
}
