//! `anklet-lite` command line: the shared suite in tests/cli_suite.rs, run against this binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

const BIN: &str = "anklet-lite";

fn cmd() -> assert_cmd::Command {
    let mut c = assert_cmd::cargo::cargo_bin_cmd!("anklet-lite");
    c.env_clear();
    c
}

include!("../../tests/cli_suite.rs");
