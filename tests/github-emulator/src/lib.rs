//! A GitHub stand-in for anklet-rs's tests and `anklet demo` (the contract is
//! `docs/emulators.md`).
//!
//! It answers the REST calls the daemons make with GitHub's real response shapes, sends signed
//! `workflow_job` webhooks to receivers, runs the emulator-only runner service that emulated
//! runners use, and gets things wrong on purpose (5xx, rate limits, slow answers, duplicate,
//! reordered and lost deliveries, job stealing). It is blocking code on threads (tiny_http in,
//! ureq out), so both the tokio daemon and the blocking one can embed it.
//!
//! It never passes for GitHub: every response carries `x-github-emulator: anklet-rs`, URLs in
//! payloads point at the emulator, and its log lines start with `github-emulator:`. Tokens,
//! the webhook secret and JIT configs never appear in logs, errors or the call log.
//!
//! ```no_run
//! use github_emulator::{Emulator, EmulatorConfig, JobSpec};
//! let emu = Emulator::start(EmulatorConfig {
//!     pats: vec!["ghp_test".into()],
//!     webhook_urls: vec!["http://127.0.0.1:8080/webhook".into()],
//!     webhook_secret: Some("s3cret".into()),
//!     ..EmulatorConfig::default()
//! })?;
//! let job = emu.create_job(JobSpec::new("acme", "app", &["self-hosted", "anka-template:x"]))?;
//! assert!(emu.job(job.id).is_some());
//! # Ok::<(), github_emulator::Error>(())
//! ```

#![warn(missing_docs)]

mod auth;
mod calls;
mod cli;
mod config;
mod deliveries;
mod engine;
mod error;
mod faults;
mod handle;
mod hmac_sign;
mod http;
mod ids;
mod jit;
mod jobs;
mod ops;
mod payloads;
mod rate;
mod routes;
mod runners;
mod server;
mod state;
mod time;
mod worker;

pub use auth::Principal;
pub use calls::Call;
pub use cli::run;
pub use config::{AppConfig, EmulatorConfig, InstallationConfig, JobSpec};
pub use deliveries::{Delivery, Hook};
pub use error::Error;
pub use faults::{ActiveFault, Fault, Span};
pub use handle::{Emulator, EmulatorHandle};
pub use hmac_sign::signature;
pub use jit::{JitFiles, RUNNER_SERVICE_PATH, decode as decode_jit_config};
pub use jobs::{Job, JobStatus};
pub use runners::{Runner, Scope};
pub use state::{Counts, IssuedSecret, SecretKind};
pub use time::TimeScale;
