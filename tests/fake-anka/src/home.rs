//! Where the fake keeps its files: `$FAKE_ANKA_HOME` (default `./.fake-anka`), made absolute so
//! the detached processes it spawns (runner, crash watcher) find the same state from any cwd.
//!
//! Layout: `state.json` (the world), `state.lock` (the exclusive lock), `seed.json` (read once when
//! there is no state yet), `faults.json` (re-read on every call), `vms/<name>/home/` (the guest's
//! home for `cp` and `run`), `vms/<name>/runner.log` (the emulated runner's output) and
//! `vms/<name>/runner.stop` (asks the runner to go offline on a graceful stop).

use std::env;
use std::fs;
use std::path::PathBuf;

use crate::error::AnkaError;

/// The environment variable naming the fake's state directory.
pub const HOME_ENV: &str = "FAKE_ANKA_HOME";

/// The fake's state directory and the paths inside it.
#[derive(Debug, Clone)]
pub struct Home {
    /// Absolute path of the directory.
    pub root: PathBuf,
}

impl Home {
    /// The directory named by `$FAKE_ANKA_HOME`, else `./.fake-anka`.
    pub fn env_dir() -> PathBuf {
        env::var_os(HOME_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".fake-anka"))
    }

    /// Opens (creating it if needed) the directory named by `$FAKE_ANKA_HOME`, else `./.fake-anka`.
    pub fn from_env() -> Result<Self, AnkaError> {
        Self::open(Self::env_dir())
    }

    /// Opens `dir` only if it exists: helper processes (runner, crash watcher) that outlive a
    /// test's temporary directory must not recreate it.
    pub fn open_existing(dir: PathBuf) -> Result<Self, AnkaError> {
        let root = fs::canonicalize(&dir).map_err(|e| {
            AnkaError::internal(format!("state directory {} is gone: {e}", dir.display()))
        })?;
        Ok(Self { root })
    }

    /// Opens (creating it if needed) `dir` as the state directory.
    pub fn open(dir: PathBuf) -> Result<Self, AnkaError> {
        fs::create_dir_all(&dir)
            .map_err(|e| AnkaError::internal(format!("cannot create {}: {e}", dir.display())))?;
        let root = fs::canonicalize(&dir)
            .map_err(|e| AnkaError::internal(format!("cannot resolve {}: {e}", dir.display())))?;
        Ok(Self { root })
    }

    /// The state file.
    pub fn state(&self) -> PathBuf {
        self.root.join("state.json")
    }

    /// The lock file (separate from the state so the state can be replaced atomically).
    pub fn lock(&self) -> PathBuf {
        self.root.join("state.lock")
    }

    /// The seed file used when there is no state yet.
    pub fn seed(&self) -> PathBuf {
        self.root.join("seed.json")
    }

    /// The fault rules file.
    pub fn faults(&self) -> PathBuf {
        self.root.join("faults.json")
    }

    /// A VM's directory.
    pub fn vm_dir(&self, name: &str) -> PathBuf {
        self.root.join("vms").join(name)
    }

    /// A VM's guest home (`/Users/anka` on a real guest).
    pub fn vm_home(&self, name: &str) -> PathBuf {
        self.vm_dir(name).join("home")
    }

    /// Where the emulated runner of a VM writes its log.
    pub fn runner_log(&self, name: &str) -> PathBuf {
        self.vm_dir(name).join("runner.log")
    }

    /// The marker a graceful stop leaves for the runner.
    pub fn stop_marker(&self, name: &str) -> PathBuf {
        self.vm_dir(name).join("runner.stop")
    }
}
