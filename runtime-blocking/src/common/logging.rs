//! JSON logs, as Anklet writes them: to stdout, or to `<log.file_dir>/anklet.log`; the level
//! from `LOG_LEVEL` (debug, info, warn, error; default info).

use anyhow::Context;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

/// Installs the global subscriber; a second call (tests) keeps the first.
pub fn init(file_dir: Option<&Path>, env: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let level = env
        .get("LOG_LEVEL")
        .map(|l| l.to_ascii_lowercase())
        .filter(|l| ["trace", "debug", "info", "warn", "error"].contains(&l.as_str()))
        .unwrap_or_else(|| "info".to_owned());
    // The level applies to our crates; dependencies (HTTP clients, pools) only warn.
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "warn,anklet={level},anklet_lite={level},anklet_core={level}"
    ));
    let builder = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_env_filter(filter);
    let _ = match file_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create log.file_dir {}", dir.display()))?;
            let path = dir.join("anklet.log");
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            builder.with_writer(Mutex::new(file)).try_init()
        }
        None => builder.with_writer(std::io::stdout).try_init(),
    };
    Ok(())
}
