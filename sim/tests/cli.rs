//! The command line: runs print a report, same seed same output, bad input exits 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;

fn sim() -> Command {
    Command::cargo_bin("anklet-sim").unwrap()
}

#[test]
fn run_prints_a_report_and_is_repeatable() {
    let a = sim()
        .args(["run", "--seed", "7"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let b = sim()
        .args(["run", "--seed", "7"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(a, b);
    let text = String::from_utf8(a).unwrap();
    assert!(text.contains("queue p50"), "{text}");
}

#[test]
fn sweep_reports_every_invariant_held() {
    let out = sim()
        .args(["sweep", "--seeds", "20"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("20 seeds from 0: every invariant held")
    );
}

#[test]
fn bad_arguments_exit_with_a_clear_error() {
    sim().args(["sweep", "--seeds", "0"]).assert().code(2);
    sim().args(["fleet", "--hours", "-1"]).assert().code(2);
    sim().args(["replay"]).assert().failure();
}
