//! Webhook deliveries: the `X-Hub-Signature-256` check over the raw body, and `workflow_job`
//! events turned into what the queue needs (a new job, or status news).
//!
//! The signature is checked before anything is parsed, in constant time (hmac's
//! `verify_slice`), over the exact bytes received. Parsing never panics on outside input; a
//! `workflow_job` without an `anka-template` label is ignored, as Anklet's receiver does.

use crate::handler::GithubJobStatus;
use crate::ids::JobId;
use crate::queue::NewJob;
use crate::secret::Secret;
use hmac::{KeyInit, Mac};
use serde::Deserialize;

/// Why a delivery's signature was refused (the receiver answers 401).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    /// The header is not `sha256=<64 hex digits>`.
    #[error("malformed X-Hub-Signature-256 header (expected sha256=<64 hex digits>)")]
    Malformed,
    /// The signature does not match the body and the configured secret.
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// Checks `X-Hub-Signature-256` (`sha256=<hex>`) over the raw `body` with the webhook secret.
pub fn verify_signature(
    secret: &Secret,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_sig = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes())
        .map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Why a delivery could not be read (the receiver answers 400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is not the JSON GitHub sends for this event.
    #[error("body is not a valid {event} payload at line {line} column {column}: {message}")]
    Json {
        /// The `X-GitHub-Event` value.
        event: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's description.
        message: String,
    },
}

/// What a verified delivery means for us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// GitHub's `ping` when a webhook is created.
    Ping,
    /// A new job this fleet may run (`action: queued`, or `waiting` for an approval).
    Queued(NewJob),
    /// News about a job's status.
    Status {
        /// The job.
        job: JobId,
        /// Its status.
        status: GithubJobStatus,
    },
    /// An event or job we do not handle (other events, jobs without an `anka-template` label).
    Ignored(String),
}

#[derive(Deserialize)]
struct WorkflowJobPayload {
    action: String,
    workflow_job: WorkflowJob,
    repository: Repository,
}

#[derive(Deserialize)]
struct WorkflowJob {
    id: u64,
    run_id: u64,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    runner_name: Option<String>,
    #[serde(default)]
    conclusion: Option<String>,
}

#[derive(Deserialize)]
struct Repository {
    name: String,
    owner: Owner,
}

#[derive(Deserialize)]
struct Owner {
    login: String,
}

/// Reads a verified delivery: `event` is `X-GitHub-Event`, `body` the JSON payload (the
/// receiver decodes a form-encoded `payload=` body first).
pub fn parse_delivery(event: &str, body: &[u8]) -> Result<Delivery, ParseError> {
    match event {
        "ping" => Ok(Delivery::Ping),
        "workflow_job" => {
            let p: WorkflowJobPayload =
                serde_json::from_slice(body).map_err(|e| ParseError::Json {
                    event: event.to_owned(),
                    line: e.line(),
                    column: e.column(),
                    message: e.to_string(),
                })?;
            Ok(workflow_job(p, body))
        }
        other => Ok(Delivery::Ignored(format!("event {other}"))),
    }
}

fn workflow_job(p: WorkflowJobPayload, body: &[u8]) -> Delivery {
    let job = JobId(p.workflow_job.id);
    // Anklet's receiver rule: only jobs with a label containing `anka-template`.
    if !p
        .workflow_job
        .labels
        .iter()
        .any(|l| l.contains("anka-template"))
    {
        return Delivery::Ignored(format!("{job} has no anka-template label"));
    }
    let runner = p.workflow_job.runner_name.filter(|r| !r.is_empty());
    match p.action.as_str() {
        "queued" | "waiting" => Delivery::Queued(NewJob {
            id: job,
            run_id: p.workflow_job.run_id,
            owner: p.repository.owner.login,
            repo: p.repository.name,
            labels: p.workflow_job.labels,
            // The body is almost always valid UTF-8: check it in one pass, copy it once.
            payload: std::str::from_utf8(body).map_or_else(
                |_| String::from_utf8_lossy(body).into_owned(),
                str::to_owned,
            ),
        }),
        "in_progress" => Delivery::Status {
            job,
            status: GithubJobStatus::InProgress { runner },
        },
        "completed" => Delivery::Status {
            job,
            status: GithubJobStatus::Completed {
                conclusion: p.workflow_job.conclusion,
            },
        },
        other => Delivery::Ignored(format!("{job} action {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_published_test_vector_verifies() {
        let secret = Secret::new("It's a Secret to Everybody");
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            verify_signature(&secret, b"Hello, World!", Some(sig)),
            Ok(())
        );
        assert_eq!(
            verify_signature(&secret, b"Hello, World?", Some(sig)),
            Err(SignatureError::Mismatch)
        );
        let wrong = Secret::new("another secret");
        assert_eq!(
            verify_signature(&wrong, b"Hello, World!", Some(sig)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_refused() {
        let s = Secret::new("s");
        assert_eq!(
            verify_signature(&s, b"x", None),
            Err(SignatureError::Missing)
        );
        for bad in ["sha1=abcd", "sha256=zz", "sha256=abcd", "", "sha256="] {
            assert_eq!(
                verify_signature(&s, b"x", Some(bad)),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}
