//! Reading what `anka -j` printed.
//!
//! Anka prints one JSON envelope `{"status","code","body","message","exception_type"}` as the
//! last line of stdout; `registry pull` prints progress lines before it, and debug output goes
//! to stderr (anka-cli.md §0, §1). Like Anklet we read the LAST non-empty line, and unlike
//! Anklet we accept an envelope missing any field but `status` (Veertu's own examples omit
//! `code` and `message`). A call failed when the exit status is non-zero OR `status` is not
//! `OK`; see [`interpret`]. `anka run` is different: its outcome is the guest command's exit
//! status, see [`interpret_run`].

use super::error::{AnkaError, classify, excerpt};
use super::process::{Exit, ProcessOutput};
use serde_json::Value;

/// Anka's answer to one `-j` call.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// `OK` or `ERROR` (anything but `OK` is a failure).
    pub status: String,
    /// Error code (`3` not found, `18` already exists), when present.
    pub code: Option<i64>,
    /// The answer; `Null` when absent.
    pub body: Value,
    /// Human message, empty when absent.
    pub message: String,
    /// Anka's exception class on errors, when present.
    pub exception_type: Option<String>,
}

impl Envelope {
    /// Whether anka said `OK` (case-insensitively).
    pub fn is_ok(&self) -> bool {
        self.status.eq_ignore_ascii_case("ok")
    }
}

/// The last line of `stdout` that is not blank, trimmed; `None` when there is none.
pub fn last_line(stdout: &[u8]) -> Option<&[u8]> {
    stdout
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .rfind(|l| !l.is_empty())
}

/// Parses the last non-empty line of `stdout` as an envelope. `None` when that line is not a
/// JSON object with a string `status` (garbage, a progress line, a truncated write).
pub fn parse_envelope(stdout: &[u8]) -> Option<Envelope> {
    let line = last_line(stdout)?;
    let Value::Object(mut map) = serde_json::from_slice::<Value>(line).ok()? else {
        return None;
    };
    let status = match map.remove("status")? {
        Value::String(s) => s,
        _ => return None,
    };
    let code = map.remove("code").and_then(|c| match c {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    let text = |v: Option<Value>| match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    };
    Some(Envelope {
        status,
        code,
        body: map.remove("body").unwrap_or(Value::Null),
        message: text(map.remove("message")).unwrap_or_default(),
        exception_type: text(map.remove("exception_type")),
    })
}

/// The result of an ordinary `anka -j` call: the envelope when it succeeded, else the failure
/// named from the envelope or, lacking one, from what the process printed.
pub fn interpret(out: &ProcessOutput) -> Result<Envelope, AnkaError> {
    let exit = match &out.exit {
        Exit::Code(c) => *c,
        other => return Err(abnormal(other)),
    };
    match parse_envelope(&out.stdout) {
        Some(env) if env.is_ok() && exit == 0 => Ok(env),
        Some(env) => {
            let message = if env.message.is_empty() {
                format!("status {}", env.status)
            } else {
                env.message
            };
            Err(classify(env.code, Some(exit), &message))
        }
        None => Err(from_text(out, exit)),
    }
}

/// The result of `anka -j run`: success iff the guest command exited 0. A non-zero exit is
/// named from an envelope if anka printed one, else from the text, else reported as the guest
/// command's failure (125: the connection to the guest was lost).
pub fn interpret_run(out: &ProcessOutput) -> Result<(), AnkaError> {
    let exit = match &out.exit {
        Exit::Code(c) => *c,
        other => return Err(abnormal(other)),
    };
    match parse_envelope(&out.stdout) {
        Some(env) if !env.is_ok() => Err(classify(env.code, Some(exit), &env.message)),
        _ if exit == 0 => Ok(()),
        Some(env) => Err(classify(env.code, Some(exit), &env.message)),
        None => match from_text(out, exit) {
            AnkaError::NoEnvelope { exit, excerpt } => Err(AnkaError::GuestFailed {
                exit: exit.unwrap_or(-1),
                excerpt,
            }),
            named => Err(named),
        },
    }
}

fn abnormal(exit: &Exit) -> AnkaError {
    match exit {
        Exit::TimedOut { after } => AnkaError::TimedOut { after: *after },
        Exit::Signal(signal) => AnkaError::Killed { signal: *signal },
        Exit::SpawnFailed(message) => AnkaError::Spawn {
            message: message.clone(),
        },
        Exit::Code(c) => AnkaError::Failed {
            code: None,
            exit: Some(*c),
            message: String::new(),
        },
    }
}

/// A failure without an envelope: known words in stderr or stdout name it, otherwise it is
/// garbage (transient).
fn from_text(out: &ProcessOutput, exit: i32) -> AnkaError {
    let mut text = excerpt(&out.stderr);
    let stdout = excerpt(&out.stdout);
    if !stdout.is_empty() {
        if !text.is_empty() {
            text.push_str(" | ");
        }
        text.push_str(&stdout);
    }
    let lower = text.to_ascii_lowercase();
    let known = [
        "no space left",
        "enospc",
        "maximum number of running instances",
    ];
    if exit != 0 && known.iter().any(|k| lower.contains(k)) {
        return classify(None, Some(exit), &text);
    }
    AnkaError::NoEnvelope {
        exit: Some(exit),
        excerpt: text,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_last_non_empty_line_wins() {
        let out = b"{\"progress\":10}\n{\"progress\":90}\n{\"status\":\"OK\",\"code\":0,\"body\":{},\"message\":\"done\"}\n\n  \n";
        let env = parse_envelope(out).expect("envelope");
        assert!(env.is_ok());
        assert_eq!(env.message, "done");
        assert_eq!(env.code, Some(0));
    }

    #[test]
    fn missing_fields_are_tolerated_but_status_is_required() {
        let env = parse_envelope(b"{\"status\":\"OK\"}").expect("envelope");
        assert_eq!(
            (env.code, env.body, env.message.as_str()),
            (None, Value::Null, "")
        );
        assert_eq!(parse_envelope(b"{\"code\":0}"), None);
        assert_eq!(parse_envelope(b"{\"status\":1}"), None);
        assert_eq!(parse_envelope(b"[1]"), None);
        let env = parse_envelope(b"{\"status\":\"ERROR\",\"code\":\"3\",\"message\":null}")
            .expect("envelope");
        assert_eq!((env.code, env.message.as_str()), (Some(3), ""));
    }

    #[test]
    fn ok_with_nonzero_exit_is_a_failure() {
        let out = ProcessOutput::exited(2, "{\"status\":\"OK\",\"body\":{}}");
        assert!(matches!(
            interpret(&out),
            Err(AnkaError::Failed { exit: Some(2), .. })
        ));
    }

    #[test]
    fn error_with_zero_exit_is_a_failure() {
        let out = ProcessOutput::exited(
            0,
            "{\"status\":\"ERROR\",\"code\":3,\"message\":\"x: not found\"}",
        );
        assert!(matches!(interpret(&out), Err(AnkaError::NotFound { .. })));
    }

    #[test]
    fn garbage_is_transient_and_known_words_in_stderr_are_named() {
        let out = ProcessOutput::exited(0, "Segmentation fault");
        assert!(matches!(interpret(&out), Err(AnkaError::NoEnvelope { .. })));
        let mut out = ProcessOutput::exited(1, "");
        out.stderr = b"cp: write error: No space left on device\n".to_vec();
        assert!(matches!(interpret(&out), Err(AnkaError::DiskFull { .. })));
    }

    #[test]
    fn abnormal_exits_have_their_own_errors() {
        let after = std::time::Duration::from_secs(5);
        let out = ProcessOutput::new(Exit::TimedOut { after }, "");
        assert_eq!(interpret(&out), Err(AnkaError::TimedOut { after }));
        let out = ProcessOutput::new(Exit::Signal(9), "");
        assert_eq!(interpret_run(&out), Err(AnkaError::Killed { signal: 9 }));
        let out = ProcessOutput::new(Exit::SpawnFailed("ENOENT".into()), "");
        assert!(matches!(interpret(&out), Err(AnkaError::Spawn { .. })));
    }

    #[test]
    fn run_follows_the_guest_exit_status() {
        assert_eq!(interpret_run(&ProcessOutput::exited(0, "hello\n")), Ok(()));
        assert!(matches!(
            interpret_run(&ProcessOutput::exited(125, "")),
            Err(AnkaError::GuestFailed { exit: 125, .. })
        ));
        let err = ProcessOutput::exited(0, "{\"status\":\"ERROR\",\"message\":\"vm1: not found\"}");
        assert!(matches!(
            interpret_run(&err),
            Err(AnkaError::NotFound { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512), code in any::<i32>()) {
            let out = ProcessOutput::exited(code, bytes.clone());
            let _ = parse_envelope(&bytes);
            let _ = interpret(&out);
            let _ = interpret_run(&out);
        }

        #[test]
        fn never_panics_on_json_like_text(text in "[{}\\[\\]\":,a-z0-9 \\n.-]{0,200}") {
            let out = ProcessOutput::exited(1, text.clone().into_bytes());
            let _ = interpret(&out);
            let _ = interpret_run(&out);
        }
    }
}
