//! What the fake prints: progress lines, `fake-anka:` log lines on stderr, and exactly one final
//! compact JSON envelope `{"status","code","body","message"}` (+`exception_type` on ERROR) with no
//! trailing newline, as packer's parser implies real `anka -j` does.
//!
//! Without `-j` the fake prints short human text instead (tests should always use `-j`); errors
//! are then only the `fake-anka: error: ...` line on stderr.

use std::io::Write;

use serde_json::Value;

use crate::error::AnkaError;

/// The three streams of a command, and whether JSON output was asked for.
pub struct Out<'a> {
    stdout: &'a mut (dyn Write + Send),
    stderr: &'a mut (dyn Write + Send),
    /// `-j`/`--machine-readable` (or `ANKA_MACHINE_READABLE=1`) was given.
    pub json: bool,
}

impl<'a> Out<'a> {
    /// Wraps the writers.
    pub fn new(
        stdout: &'a mut (dyn Write + Send),
        stderr: &'a mut (dyn Write + Send),
        json: bool,
    ) -> Self {
        Self {
            stdout,
            stderr,
            json,
        }
    }

    /// The raw stdout, for guest output passed through by `run`.
    pub fn stdout(&mut self) -> &mut (dyn Write + Send) {
        self.stdout
    }

    /// The raw stderr, for guest output passed through by `run`.
    pub fn stderr(&mut self) -> &mut (dyn Write + Send) {
        self.stderr
    }

    /// Both raw streams at once, for pumping a child's stdout and stderr concurrently.
    pub fn streams(&mut self) -> (&mut (dyn Write + Send), &mut (dyn Write + Send)) {
        (&mut *self.stdout, &mut *self.stderr)
    }

    /// A line of stdout before the envelope (pull progress). Write errors are ignored: a reader
    /// that went away must not turn into a different failure.
    pub fn line(&mut self, text: &str) {
        let _ = writeln!(self.stdout, "{text}");
        let _ = self.stdout.flush();
    }

    /// A log line on stderr, always prefixed `fake-anka:` so it is never taken for real Anka.
    pub fn log(&mut self, text: &str) {
        let _ = writeln!(self.stderr, "fake-anka: {text}");
        let _ = self.stderr.flush();
    }

    /// The final OK envelope (or human text without `-j`).
    pub fn ok(&mut self, body: &Value, message: &str) {
        if self.json {
            let _ = write!(
                self.stdout,
                r#"{{"status":"OK","code":0,"body":{body},"message":{}}}"#,
                Value::from(message)
            );
        } else if !message.is_empty() {
            let _ = writeln!(self.stdout, "{message}");
        } else {
            let _ = write!(self.stdout, "{}", human(body));
        }
        let _ = self.stdout.flush();
    }

    /// The final ERROR envelope, plus a `fake-anka: error: ...` log line on stderr (without `-j`,
    /// only the log line: every line the fake writes itself is marked as the fake's).
    pub fn error(&mut self, e: &AnkaError) {
        self.log(&format!("error: {}", e.message));
        if self.json {
            let _ = write!(
                self.stdout,
                r#"{{"status":"ERROR","code":{},"body":{{}},"message":{},"exception_type":{}}}"#,
                e.code(),
                Value::from(e.message.as_str()),
                Value::from(e.exception_type())
            );
            let _ = self.stdout.flush();
        }
    }

    /// The `garbage` fault's last line: not JSON, no trailing newline.
    pub fn garbage(&mut self) {
        let _ = write!(self.stdout, "fake-anka garbage: <<not json>> {{\"status\":");
        let _ = self.stdout.flush();
    }
}

/// A scalar as text (strings without quotes).
fn scalar(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// Human text for a body: `key: value` lines for an object, one line per row for an array.
fn human(body: &Value) -> String {
    match body {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", scalar(v)))
            .collect(),
        Value::Array(rows) => rows
            .iter()
            .map(|r| match r {
                Value::Object(m) => {
                    let cols: Vec<String> = m.values().map(scalar).collect();
                    format!("{}\n", cols.join("  "))
                }
                other => format!("{}\n", scalar(other)),
            })
            .collect(),
        Value::Null => String::new(),
        other => format!("{}\n", scalar(other)),
    }
}
