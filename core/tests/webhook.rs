//! Webhook deliveries with GitHub's real payloads (tests/fixtures/github, from octokit/webhooks,
//! MIT; see SOURCE.md there): signature over the exact stored bytes, parsing into queue
//! operations, the anka-template label rule, and no panic on garbage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::github::webhook::{
    Delivery, ParseError, SignatureError, parse_delivery, verify_signature,
};
use anklet_core::handler::GithubJobStatus;
use anklet_core::ids::JobId;
use anklet_core::secret::Secret;
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../tests/fixtures/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

/// The fixture with its labels replaced by ours (`runs-on: [self-hosted, anka-template:...]`).
fn with_anka_labels(name: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
    v["workflow_job"]["labels"] = serde_json::json!([
        "self-hosted",
        "anka-template:84266873-da90",
        "anka-template-tag:v1"
    ]);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn signature_over_the_stored_fixture_bytes() {
    let body = fixture("workflow_job.queued.json");
    assert_eq!(body.len(), 7_867);
    let sig = "sha256=3bb5ddb55be0e002d099466e171cfd7cc4651b93bf119f6e1bfcbbea887d4a0f";
    assert_eq!(
        verify_signature(&Secret::new("test-secret"), &body, Some(sig)),
        Ok(())
    );
    let mut tampered = body.clone();
    tampered[100] ^= 1;
    assert_eq!(
        verify_signature(&Secret::new("test-secret"), &tampered, Some(sig)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn jobs_without_an_anka_template_label_are_ignored() {
    let d = parse_delivery("workflow_job", &fixture("workflow_job.queued.json")).unwrap();
    assert!(matches!(d, Delivery::Ignored(_)), "{d:?}");
}

#[test]
fn queued_becomes_a_new_job() {
    let d = parse_delivery(
        "workflow_job",
        &with_anka_labels("workflow_job.queued.json"),
    )
    .unwrap();
    let Delivery::Queued(job) = d else {
        panic!("{d:?}")
    };
    assert_eq!(job.id, JobId(289_782_451));
    assert_eq!(job.run_id, 2_202_229_078);
    assert_eq!(
        (job.owner.as_str(), job.repo.as_str()),
        ("Octocoders", "Hello-World")
    );
    assert!(
        job.labels
            .iter()
            .any(|l| l == "anka-template:84266873-da90")
    );
}

#[test]
fn in_progress_and_completed_become_status_news() {
    let d = parse_delivery(
        "workflow_job",
        &with_anka_labels("workflow_job.in_progress.json"),
    )
    .unwrap();
    let Delivery::Status {
        status: GithubJobStatus::InProgress { runner },
        ..
    } = d
    else {
        panic!("{d:?}")
    };
    assert!(runner.is_some());
    let d = parse_delivery(
        "workflow_job",
        &with_anka_labels("workflow_job.completed.success.with-organization.json"),
    )
    .unwrap();
    assert!(
        matches!(&d, Delivery::Status { status: GithubJobStatus::Completed { conclusion: Some(c) }, .. } if c == "success"),
        "{d:?}"
    );
}

#[test]
fn ping_other_events_and_bad_bodies() {
    assert_eq!(
        parse_delivery("ping", &fixture("ping.json")).unwrap(),
        Delivery::Ping
    );
    assert!(matches!(
        parse_delivery("push", b"{}").unwrap(),
        Delivery::Ignored(_)
    ));
    let err = parse_delivery(
        "workflow_job",
        b"{\"action\": \"queued\",\n \"workflow_job\": 7}",
    )
    .unwrap_err();
    let ParseError::Json { line, .. } = err;
    assert_eq!(line, 2);
}

proptest! {
    #[test]
    fn garbage_never_panics(body in prop::collection::vec(any::<u8>(), 0..512), sig in ".{0,80}") {
        let _ = verify_signature(&Secret::new("s"), &body, Some(&sig));
        let _ = parse_delivery("workflow_job", &body);
    }
}
