//! `anklet`: the tokio daemon. For now only the command line and `check-config` exist.

fn main() -> std::process::ExitCode {
    anklet_lite::cli::run(
        "anklet",
        "Runs GitHub Actions jobs in single-use macOS Anka VMs (tokio runtime).",
        &|_, _| {
            eprintln!("anklet: the tokio daemon mode is not built yet; use anklet-lite");
            std::process::ExitCode::from(1)
        },
        &|_, _| {
            eprintln!(
                "anklet: the demo runs on anklet-lite for now: `cargo run -p anklet-lite -- demo`"
            );
            std::process::ExitCode::from(1)
        },
    )
}
