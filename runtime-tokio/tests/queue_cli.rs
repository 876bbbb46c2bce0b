//! `anklet queue`: the shared operator-tools suite in tests/queue_cli_suite.rs, run against the
//! tokio daemon's binary (the same command line, so the same answers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

fn cmd() -> assert_cmd::Command {
    let mut c = assert_cmd::cargo::cargo_bin_cmd!("anklet");
    c.env_clear();
    c
}

include!("../../tests/queue_cli_suite.rs");
