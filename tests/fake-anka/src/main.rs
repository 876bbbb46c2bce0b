//! The `anka` binary: the fake Anka CLI (see the `fake_anka` library docs).

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = fake_anka::run(std::env::args_os().skip(1).collect(), fake_anka::Io::std());
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
