//! anklet-sim: the deterministic fleet simulator. Its models and commands arrive with the
//! simulator issue; until then it says so instead of pretending to run.

fn main() -> std::process::ExitCode {
    eprintln!("anklet-sim: the simulator is not built yet; see ARCHITECTURE.md for the plan");
    std::process::ExitCode::from(2)
}
