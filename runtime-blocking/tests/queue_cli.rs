//! `anklet-lite queue`: the shared operator-tools suite in tests/queue_cli_suite.rs, run against
//! this binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

fn cmd() -> assert_cmd::Command {
    let mut c = assert_cmd::cargo::cargo_bin_cmd!("anklet-lite");
    c.env_clear();
    c
}

include!("../../tests/queue_cli_suite.rs");
