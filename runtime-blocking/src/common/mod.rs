//! The runtime-neutral parts of daemon mode that both daemons share (`anklet-lite` on threads,
//! `anklet` on tokio): the stop/drain control, the daemon's paths, the GitHub client config of
//! a plugin, JSON logs, how notices are logged and what a plugin is made of before it runs
//! ([`plugins`]). Nothing here spawns, serves or blocks on a socket, so the tokio daemon reuses
//! it without pulling in tiny_http or ureq.

mod github_config;
pub mod logging;
pub mod notices;
pub mod plugins;

pub use github_config::client_config;

use anklet_core::config::{Config, DatabaseSettings};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the daemon keeps its small files, `~/.config/anklet` as in Anklet.
pub fn state_dir(env: &BTreeMap<String, String>) -> PathBuf {
    let home = env.get("HOME").map_or(".", String::as_str);
    Path::new(home).join(".config").join("anklet")
}

/// `~/` expanded against `HOME`.
pub fn expand_home(path: &str, env: &BTreeMap<String, String>) -> PathBuf {
    match (path.strip_prefix("~/"), env.get("HOME")) {
        (Some(rest), Some(home)) => Path::new(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// The drain file, `~/.config/anklet/.drain`: while it exists the daemon takes no new jobs.
pub fn drain_file(env: &BTreeMap<String, String>) -> PathBuf {
    state_dir(env).join(".drain")
}

/// What tells the daemon to stop or drain (signals, the drain file, tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Graceful stop (first SIGINT/SIGTERM).
    Stop,
    /// A second stop: exit 1 at once.
    Abort,
    /// Finish running jobs, take no more, exit (SIGQUIT, the drain file).
    Drain,
}

/// Which job store a config means. Both daemons and the `queue` tools choose through this one
/// function, so an operator's tool always opens the very store the daemon runs on.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreLocation {
    /// A plugin configures a database: the fleet's shared Redis queue.
    Redis {
        /// The first such plugin's connection settings.
        db: DatabaseSettings,
        /// The queue's name (the plugin's queue owner), which picks the Redis keys.
        queue: String,
    },
    /// No database: the embedded file at `store_path` (`~/` expanded), one host's queue.
    Embedded(PathBuf),
}

/// Redis when any plugin configures a database, else the embedded file at `store_path`.
pub fn store_location(config: &Config, env: &BTreeMap<String, String>) -> StoreLocation {
    let db = config.plugins.iter().find_map(|p| {
        p.database_settings()
            .map(|db| (db, p.queue_owner().to_owned()))
    });
    match db {
        Some((db, queue)) => StoreLocation::Redis { db, queue },
        None => StoreLocation::Embedded(expand_home(config.store_path(), env)),
    }
}
