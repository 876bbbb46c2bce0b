//! The emulated GitHub Actions runner (docs/emulators.md): what the fake starts when a driver runs
//! `run.sh --jitconfig` (JIT mode) or the `register-runner.bash`/`start-runner.bash` built-ins
//! (token mode) in a VM. It talks to the GitHub emulator's runner service, not to GitHub.

pub mod emulated;
pub mod jit;
pub mod register;
pub mod service;
pub mod spawn;
