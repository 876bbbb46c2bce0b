//! `github-emulator`: the GitHub stand-in as a process (see `github-emulator --help`).

fn main() {
    std::process::exit(github_emulator::run(std::env::args().collect()));
}
