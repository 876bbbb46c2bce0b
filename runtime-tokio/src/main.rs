//! `anklet`: the tokio daemon. Called through a symlink named `anka` (as `anklet demo` sets
//! up) it is the fake `anka` of the demo instead.

use std::process::ExitCode;

const ABOUT: &str = "Runs GitHub Actions jobs in single-use macOS Anka VMs (tokio runtime).";

#[cfg(feature = "demo")]
fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    if std::path::Path::new(&argv0).file_name() == Some(std::ffi::OsStr::new("anka")) {
        let code = fake_anka::run(args.collect(), fake_anka::Io::std());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    anklet_lite::cli::run("anklet", ABOUT, &anklet::daemon::main, &|bin, args| {
        anklet_lite::demo::run(bin, args, anklet::daemon::run)
    })
}

#[cfg(not(feature = "demo"))]
fn main() -> ExitCode {
    anklet_lite::cli::run("anklet", ABOUT, &anklet::daemon::main, &|_, _| {
        eprintln!("anklet: this build has no demo (built without the `demo` feature)");
        ExitCode::from(1)
    })
}
