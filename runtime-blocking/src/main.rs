//! `anklet-lite`: the blocking, std-threads daemon. Called through a symlink named `anka` (as
//! `anklet-lite demo` sets up) it is the fake `anka` of the demo instead.

use std::process::ExitCode;

fn main() -> ExitCode {
    #[cfg(feature = "demo")]
    {
        let mut args = std::env::args_os();
        let argv0 = args.next().unwrap_or_default();
        if std::path::Path::new(&argv0).file_name() == Some(std::ffi::OsStr::new("anka")) {
            let code = fake_anka::run(args.collect(), fake_anka::Io::std());
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
    }
    anklet_lite::cli::run(
        "anklet-lite",
        "Runs GitHub Actions jobs in single-use macOS Anka VMs (blocking, std-threads runtime).",
        &anklet_lite::daemon::main,
        &demo,
    )
}

#[cfg(feature = "demo")]
fn demo(bin: &'static str, args: &anklet_lite::cli::DemoArgs) -> ExitCode {
    anklet_lite::demo::run(bin, args, anklet_lite::daemon::run)
}

/// A build without the stand-ins says so instead of running a demo.
#[cfg(not(feature = "demo"))]
fn demo(bin: &'static str, _args: &anklet_lite::cli::DemoArgs) -> ExitCode {
    eprintln!("{bin}: this build has no demo (built without the `demo` feature)");
    ExitCode::from(2)
}
