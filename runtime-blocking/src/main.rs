//! `anklet-lite`: the blocking, std-threads daemon. For now only the command line and
//! `check-config` exist.

fn main() -> std::process::ExitCode {
    anklet_lite::cli::run(
        "anklet-lite",
        "Runs GitHub Actions jobs in single-use macOS Anka VMs (blocking, std-threads runtime).",
    )
}
