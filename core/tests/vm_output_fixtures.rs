//! The anka output parser on real-shaped `anka -j` answers (tests/fixtures/anka, see its
//! SOURCE.md): envelopes are read from the last non-empty line, failures get their class.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::FailureClass;
use anklet_core::vm::output::{interpret, parse_envelope};
use anklet_core::vm::{AnkaError, ProcessOutput};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../tests/fixtures/anka/", $name)).as_slice()
    };
}

fn ok(code: i32, bytes: &[u8]) -> anklet_core::vm::Envelope {
    interpret(&ProcessOutput::exited(code, bytes)).expect("an OK envelope")
}

fn err(code: i32, bytes: &[u8]) -> AnkaError {
    interpret(&ProcessOutput::exited(code, bytes)).expect_err("a failure")
}

#[test]
fn ok_envelopes_parse_with_their_bodies() {
    let v = ok(0, fixture!("version_ok.json"));
    assert_eq!(v.body["version"], "3.9.1");
    let l = ok(0, fixture!("license_show_ok.json"));
    assert_eq!(l.body["status"], "valid");
    let list = ok(0, fixture!("list_ok.json"));
    assert_eq!(list.body.as_array().map(Vec::len), Some(3));
    assert_eq!(
        ok(0, fixture!("list_empty.json")).body,
        serde_json::json!([])
    );
    assert_eq!(
        ok(0, fixture!("list_running_ok.json")).body[0]["status"],
        "running"
    );
    let docs = ok(0, fixture!("list_docs_example.json"));
    assert_eq!((docs.code, docs.message.as_str()), (None, ""));
    assert_eq!(
        ok(0, fixture!("show_tag_ok.json")).body[0]["tag"],
        "vanilla+port-forward"
    );
    assert_eq!(
        ok(0, fixture!("registry_list_ok.json")).body[0]["latest"],
        "vanilla+port-forward"
    );
    assert_eq!(
        ok(0, fixture!("registry_show_ok.json")).body["cpu_cores"],
        4
    );
    assert_eq!(
        ok(0, fixture!("check_download_size_ok.json")).body["cached"],
        10_737_418_240u64
    );
    let local = ok(0, fixture!("check_download_size_local.json"));
    assert_eq!(local.message, "6c14r: available locally");
    for f in [
        fixture!("clone_ok.json"),
        fixture!("start_ok.json"),
        fixture!("delete_ok.json"),
        fixture!("cp_ok.json"),
        fixture!("show_template_ok.json"),
        fixture!("show_template_b_ok.json"),
        fixture!("show_vm_running.json"),
        fixture!("show_vm_failed.json"),
    ] {
        assert!(ok(0, f).is_ok());
    }
}

#[test]
fn progress_lines_and_debug_lines_before_the_envelope_are_skipped() {
    let pull = ok(0, fixture!("registry_pull_progress.txt"));
    assert!(pull.message.ends_with("pulled"), "{pull:?}");
    assert!(ok(0, fixture!("ok_trailing_newline.txt")).is_ok());
}

#[test]
fn error_envelopes_are_classified() {
    let cases: [(&[u8], FailureClass); 6] = [
        (fixture!("show_not_found.json"), FailureClass::NotFound),
        (
            fixture!("registry_pull_not_found.json"),
            FailureClass::NotFound,
        ),
        (
            fixture!("registry_pull_disk_full.txt"),
            FailureClass::DiskFull,
        ),
        (fixture!("clone_exists.json"), FailureClass::Permanent),
        (
            fixture!("start_licence_limit.json"),
            FailureClass::Transient,
        ),
        (fixture!("error_minimal.json"), FailureClass::Transient),
    ];
    for (bytes, class) in cases {
        let e = err(1, bytes);
        assert_eq!(e.class(), class, "{e}");
    }
    assert!(matches!(
        err(1, fixture!("start_licence_limit.json")),
        AnkaError::LicenceLimit { .. }
    ));
    assert!(matches!(
        err(1, fixture!("clone_exists.json")),
        AnkaError::AlreadyExists { .. }
    ));
    assert!(matches!(
        err(30, fixture!("error_minimal.json")),
        AnkaError::Failed { exit: Some(30), .. }
    ));
}

#[test]
fn an_error_envelope_with_exit_zero_is_still_an_error() {
    assert!(matches!(
        err(0, fixture!("show_not_found.json")),
        AnkaError::NotFound { .. }
    ));
}

#[test]
fn garbage_is_transient_without_an_envelope() {
    for f in [
        fixture!("garbage_human_error.txt"),
        fixture!("garbage_truncated.txt"),
    ] {
        assert_eq!(parse_envelope(f), None);
        let e = err(1, f);
        assert!(matches!(e, AnkaError::NoEnvelope { .. }), "{e}");
        assert_eq!(e.class(), FailureClass::Transient);
    }
}
