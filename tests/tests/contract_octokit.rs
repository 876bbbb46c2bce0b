//! Contract test: webhook payloads signed by octokit's own signer (`@octokit/webhooks-methods`
//! `sign(secret, payload)`, run by node from tests/contract) are accepted by
//! `anklet_core::github::webhook::verify_signature` and by the receiver machine
//! (`anklet_core::receiver::Receiver`), and a tampered copy is refused (401). Our own signer
//! (the receiver suite's and the GitHub emulator's HMAC) must produce octokit's signature byte
//! for byte, and octokit's `verify` must accept it.
//!
//! The payloads: GitHub's example deliveries in tests/fixtures/github (raw bytes, as GitHub
//! sends them), non-ASCII bodies and secrets, and a form-encoded (`payload=`) body. The tools
//! come from `npm ci --prefix tests/contract` (scripts/test.sh); when they are missing this
//! test fails with instructions, in CI and out of it: it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod contract_common;

use anklet_core::github::webhook::{SignatureError, verify_signature};
use anklet_core::queue::txn::Op;
use anklet_core::receiver::{HttpRequest, Receiver, ReceiverEffect, ReceiverSettings, RequestId};
use anklet_core::secret::Secret;
use anklet_core::time::Timestamp;
use contract_common::Tools;
use hmac::{KeyInit, Mac};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// One delivery to sign and send.
struct Delivery {
    name: &'static str,
    secret: &'static str,
    event: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    /// Whether the receiver stores it (a `workflow_job` with an `anka-template` label) or only
    /// answers 200 (ping, jobs for other runners).
    stored: bool,
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/github")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The queued fixture for one of our templates, with non-ASCII text in names GitHub lets
/// users choose, pretty-printed with CRLF line ends (the bytes are what is signed).
fn non_ascii_queued() -> Vec<u8> {
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("workflow_job.queued.json")).expect("the fixture is JSON");
    v["workflow_job"]["labels"] = json!(["self-hosted", "anka-template:d792c6f6-ü-✓"]);
    v["workflow_job"]["workflow_name"] = json!("Build 🚀 — 日本語 «ci»");
    v["workflow_job"]["name"] = json!("test (macOS 14, Ünïcödé)");
    v["repository"]["name"] = json!("répertoire-ß");
    serde_json::to_string_pretty(&v)
        .unwrap()
        .replace('\n', "\r\n")
        .into_bytes()
}

fn deliveries() -> Vec<Delivery> {
    let with_label = {
        let mut v: serde_json::Value =
            serde_json::from_slice(&fixture("workflow_job.queued.json")).unwrap();
        v["workflow_job"]["labels"] = json!(["self-hosted", "anka-template:t1"]);
        serde_json::to_vec(&v).unwrap()
    };
    let form: String = form_body(&with_label);
    vec![
        Delivery {
            name: "fixture workflow_job.queued.json (raw bytes; not our labels)",
            secret: "It's a Secret to Everybody",
            event: "workflow_job",
            content_type: "application/json",
            body: fixture("workflow_job.queued.json"),
            stored: false,
        },
        Delivery {
            name: "fixture workflow_job.in_progress.json (raw bytes)",
            secret: "contract-secret",
            event: "workflow_job",
            content_type: "application/json",
            body: fixture("workflow_job.in_progress.json"),
            stored: false,
        },
        Delivery {
            name: "fixture workflow_job.completed.success.with-organization.json",
            secret: "contract-secret",
            event: "workflow_job",
            content_type: "application/json",
            body: fixture("workflow_job.completed.success.with-organization.json"),
            stored: false,
        },
        Delivery {
            name: "fixture ping.json",
            secret: "contract-secret",
            event: "ping",
            content_type: "application/json",
            body: fixture("ping.json"),
            stored: false,
        },
        Delivery {
            name: "queued fixture with an anka-template label (compact JSON)",
            secret: "contract-secret",
            event: "workflow_job",
            content_type: "application/json",
            body: with_label,
            stored: true,
        },
        Delivery {
            name: "queued, non-ASCII names, CRLF, non-ASCII secret",
            secret: "sécret-✓-秘密",
            event: "workflow_job",
            content_type: "application/json",
            body: non_ascii_queued(),
            stored: true,
        },
        Delivery {
            name: "queued, form-encoded (payload=...)",
            secret: "contract-secret",
            event: "workflow_job",
            content_type: "application/x-www-form-urlencoded",
            body: form.into_bytes(),
            stored: true,
        },
    ]
}

/// `payload=<percent-encoded JSON>`, as GitHub sends with the form content type.
fn form_body(json: &[u8]) -> String {
    let mut out = String::from("payload=");
    for &b in json {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*') {
            out.push(char::from(b));
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Our HMAC-SHA256 signer (the one the receiver suite and the emulator use).
fn our_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The same body with one digit changed: still valid JSON (still parseable), so only the
/// signature can tell.
fn tampered(body: &[u8]) -> Vec<u8> {
    let mut copy = body.to_vec();
    let i = copy
        .iter()
        .position(u8::is_ascii_digit)
        .expect("a body with a digit");
    copy[i] = if copy[i] == b'9' { b'1' } else { copy[i] + 1 };
    copy
}

/// Sends one delivery to a fresh receiver and returns its effects.
fn receive(d: &Delivery, body: &[u8], signature: &str) -> Vec<ReceiverEffect> {
    let mut receiver = Receiver::new(ReceiverSettings::new(Secret::new(d.secret)));
    let request = HttpRequest::new("POST", "/jobs/v1/receiver")
        .header("X-GitHub-Event", d.event)
        .header("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .header("X-GitHub-Hook-ID", "292430182")
        .header("Content-Type", d.content_type)
        .header("User-Agent", "GitHub-Hookshot/044aadd")
        .header("X-Hub-Signature-256", signature)
        .body(body.to_vec());
    receiver.handle_request(Timestamp(1_700_000_000_000), RequestId(1), request);
    std::iter::from_fn(|| receiver.poll_effect()).collect()
}

fn responded(effects: &[ReceiverEffect]) -> Option<u16> {
    effects.iter().find_map(|e| match e {
        ReceiverEffect::Respond { response, .. } => Some(response.status),
        _ => None,
    })
}

fn enqueued(effects: &[ReceiverEffect]) -> bool {
    effects.iter().any(|e| {
        matches!(
            e,
            ReceiverEffect::Store {
                op: Op::Enqueue(_),
                ..
            }
        )
    })
}

#[test]
fn octokit_signed_webhooks_are_accepted_and_tampered_copies_refused() {
    let started = Instant::now();
    let tools = Tools::find().unwrap_or_else(|e| {
        panic!("the contract test cannot run: {e}");
    });
    let deliveries = deliveries();
    let cases: Vec<_> = deliveries
        .iter()
        .map(|d| {
            json!({
                "secret": d.secret,
                "payload": std::str::from_utf8(&d.body).expect("GitHub bodies are UTF-8"),
                "check": our_signature(d.secret, &d.body),
            })
        })
        .collect();
    let input = serde_json::to_vec(&json!({ "cases": cases })).unwrap();
    let output = tools
        .run_node(&tools.webhook_signer, &input, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("octokit signer: {e}"));
    let answers: Vec<serde_json::Value> = String::from_utf8(output)
        .expect("UTF-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(answers.len(), deliveries.len(), "one answer per payload");

    let mut failures = Vec::new();
    for (d, answer) in deliveries.iter().zip(&answers) {
        let octokit = answer["signature"].as_str().expect("a signature");
        let secret = Secret::new(d.secret);
        let mut problems = Vec::new();
        if answer["octokit_verifies_own"] != true {
            problems.push("octokit's verify refused octokit's signature".to_owned());
        }
        if octokit != our_signature(d.secret, &d.body) {
            problems.push("our signer disagrees with octokit's".to_owned());
        }
        if answer["octokit_verifies_check"] != true {
            problems.push("octokit's verify refused our signature".to_owned());
        }
        if let Err(e) = verify_signature(&secret, &d.body, Some(octokit)) {
            problems.push(format!("verify_signature refused octokit's signature: {e}"));
        }
        let bad = tampered(&d.body);
        if verify_signature(&secret, &bad, Some(octokit)) != Err(SignatureError::Mismatch) {
            problems.push("verify_signature accepted a tampered body".to_owned());
        }
        let other = Secret::new("another secret");
        if verify_signature(&other, &d.body, Some(octokit)) != Err(SignatureError::Mismatch) {
            problems.push("verify_signature accepted the wrong secret".to_owned());
        }

        let effects = receive(d, &d.body, octokit);
        match (d.stored, enqueued(&effects), responded(&effects)) {
            (true, true, None) => {}
            (false, false, Some(200)) => {}
            (stored, got, status) => problems.push(format!(
                "receiver: expected {}, got enqueue={got} response={status:?}",
                if stored { "an enqueue" } else { "a 200" }
            )),
        }
        let effects = receive(d, &bad, octokit);
        if responded(&effects) != Some(401) || enqueued(&effects) {
            problems.push(format!(
                "receiver did not refuse a tampered copy with 401: {:?}",
                responded(&effects)
            ));
        }

        if problems.is_empty() {
            eprintln!("ok   {} ({} bytes)", d.name, d.body.len());
        } else {
            eprintln!("FAIL {}: {}", d.name, problems.join("; "));
            failures.push(format!("{}: {}", d.name, problems.join("; ")));
        }
    }
    eprintln!(
        "{} payloads, {} failures, in {:.1?}",
        deliveries.len(),
        failures.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
