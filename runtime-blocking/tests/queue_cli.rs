//! `anklet-lite queue`: the shared operator-tools suite in tests/queue_cli_suite.rs, run against
//! this binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

const BIN_PATH: &str = env!("CARGO_BIN_EXE_anklet-lite");

fn cmd() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(BIN_PATH);
    c.env_clear();
    c
}

include!("../../tests/queue_cli_suite.rs");
