//! `anklet`: the tokio daemon. For now only the command line and `check-config` exist.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
