//! The state file under an exclusive lock: every mutation is lock → read → modify → write →
//! unlock, so concurrent `anka` processes are serialised like separate real CLI calls. Slow work
//! (pull steps, start delays) happens with the lock dropped.
//!
//! The lock is `std::fs::File::lock` on a separate `state.lock`; the state is written to a
//! temporary file and renamed over `state.json`, so a process killed mid-write never leaves a torn
//! file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;

use crate::error::AnkaError;
use crate::home::Home;
use crate::seed;
use crate::state::State;

/// The state, held under the exclusive lock until dropped.
#[derive(Debug)]
pub struct Locked {
    _lock: File,
    home: Home,
    /// The state as read; change it, then `save`.
    pub state: State,
}

/// Takes the exclusive lock (waiting for it) and reads the state, seeding it on first use.
pub fn lock(home: &Home) -> Result<Locked, AnkaError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(home.lock())
        .map_err(|e| AnkaError::internal(format!("cannot open the state lock: {e}")))?;
    file.lock()
        .map_err(|e| AnkaError::internal(format!("cannot lock the state: {e}")))?;
    let state = match fs::read_to_string(home.state()) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| AnkaError::internal(format!("corrupt fake-anka state.json: {e}")))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => seed::initial_state(home)?,
        Err(e) => return Err(AnkaError::internal(format!("cannot read state.json: {e}"))),
    };
    Ok(Locked {
        _lock: file,
        home: home.clone(),
        state,
    })
}

impl Locked {
    /// Writes the state back (atomically, by rename); the lock stays held until drop.
    pub fn save(&self) -> Result<(), AnkaError> {
        let tmp = self.home.root.join("state.json.tmp");
        let text = serde_json::to_vec_pretty(&self.state)?;
        let mut f = File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_data()?;
        fs::rename(&tmp, self.home.state())?;
        Ok(())
    }
}

/// Runs `f` on the locked state and saves it whatever `f` returns: handlers validate before they
/// mutate, and the mutations they make on error paths (counters, a partial template) must stick.
pub fn update<T>(
    home: &Home,
    f: impl FnOnce(&mut State) -> Result<T, AnkaError>,
) -> Result<T, AnkaError> {
    let mut locked = lock(home)?;
    let out = f(&mut locked.state);
    locked.save()?;
    out
}
