//! `anklet`: the tokio daemon. For now only the command line and `check-config` exist.

fn main() -> std::process::ExitCode {
    anklet_lite::cli::run(
        "anklet",
        "Runs GitHub Actions jobs in single-use macOS Anka VMs (tokio runtime).",
    )
}
