//! The seed: a JSON file describing the world a test starts from (registry templates with tags and
//! sizes, the disk, timings, time scale, templates already pulled). It is read only when no
//! `state.json` exists yet, from `$FAKE_ANKA_SEED` if set, else `$FAKE_ANKA_HOME/seed.json`.
//!
//! ```json
//! {"disk_total": 100000000000, "time_scale": 0.001, "max_running": 2, "overlapping_pulls": "corrupt",
//!  "timings": {"start_ms": 20000, "pull_bytes_per_sec": 60000000, "pull_steps": 5},
//!  "registry": [{"uuid": "c0847bc9-...", "name": "macos-15", "latest": "v2",
//!                "tags": {"v1": {"size": 50000000000}, "v2": {"size": 60000000000, "cpu_cores": 6}}}],
//!  "local": [{"uuid": "c0847bc9-...", "tag": "v1"}]}
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::env;
use std::fs;
use std::path::PathBuf;

use serde::Deserialize;

use crate::clock;
use crate::error::AnkaError;
use crate::home::Home;
use crate::state::{
    Layer, LicenseInfo, LocalTemplate, OverlapMode, RegistryTemplate, State, TagInfo, Timings,
    VersionInfo, layer_key,
};

/// The environment variable naming a seed file (overrides `$FAKE_ANKA_HOME/seed.json`).
pub const SEED_ENV: &str = "FAKE_ANKA_SEED";

/// The seed file's shape; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Seed {
    /// Disk capacity in bytes.
    pub disk_total: Option<u64>,
    /// Time scale (the env var still wins).
    pub time_scale: Option<f64>,
    /// Running-VM limit (2 unless a test wants otherwise).
    pub max_running: Option<usize>,
    /// `corrupt` (default) or `fail`.
    pub overlapping_pulls: Option<OverlapMode>,
    /// Fake durations.
    pub timings: Option<Timings>,
    /// `version` answer.
    pub version: Option<VersionInfo>,
    /// `license show` answer.
    pub license: Option<LicenseInfo>,
    /// Registry templates.
    pub registry: Vec<SeedTemplate>,
    /// Templates already pulled.
    pub local: Vec<SeedLocal>,
}

/// A registry template in the seed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedTemplate {
    /// Uuid.
    pub uuid: String,
    /// Name (defaults to the uuid).
    pub name: Option<String>,
    /// Latest tag (defaults to the greatest tag name).
    pub latest: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, TagInfo>,
}

/// A template already on disk in the seed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedLocal {
    /// Registry uuid.
    pub uuid: String,
    /// Tag (defaults to the registry's latest).
    pub tag: Option<String>,
}

/// Reads the seed (if any) and builds the initial state.
pub fn initial_state(home: &Home) -> Result<State, AnkaError> {
    let path = env::var_os(SEED_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.seed());
    let seed = match fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str::<Seed>(&text)
            .map_err(|e| AnkaError::internal(format!("bad seed file {}: {e}", path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Seed::default(),
        Err(e) => {
            return Err(AnkaError::internal(format!(
                "cannot read seed file {}: {e}",
                path.display()
            )));
        }
    };
    build(seed)
}

/// Turns a seed into a state.
pub fn build(seed: Seed) -> Result<State, AnkaError> {
    let mut state = State::default();
    if let Some(v) = seed.disk_total {
        state.disk_total = v;
    }
    if let Some(v) = seed.time_scale {
        state.time_scale = v;
    }
    if let Some(v) = seed.max_running {
        state.max_running = v;
    }
    if let Some(v) = seed.overlapping_pulls {
        state.overlapping_pulls = v;
    }
    if let Some(v) = seed.timings {
        state.timings = v;
    }
    if let Some(v) = seed.version {
        state.version = v;
    }
    if let Some(v) = seed.license {
        state.license = v;
    }
    for t in seed.registry {
        let latest = match t.latest {
            Some(l) => l,
            None => t.tags.keys().next_back().cloned().ok_or_else(|| {
                AnkaError::internal(format!("seed template {} has no tags", t.uuid))
            })?,
        };
        if !t.tags.contains_key(&latest) {
            return Err(AnkaError::internal(format!(
                "seed template {}: latest tag {latest} is not among its tags",
                t.uuid
            )));
        }
        let name = t.name.unwrap_or_else(|| t.uuid.clone());
        state.registry.insert(
            t.uuid.clone(),
            RegistryTemplate {
                uuid: t.uuid,
                name,
                latest,
                tags: t.tags,
            },
        );
    }
    let now = clock::now_rfc3339();
    for l in seed.local {
        let reg = state.registry.get(&l.uuid).ok_or_else(|| {
            AnkaError::internal(format!(
                "seed local template {} is not in the registry",
                l.uuid
            ))
        })?;
        let tag = l.tag.unwrap_or_else(|| reg.latest.clone());
        let info = reg.tags.get(&tag).cloned().ok_or_else(|| {
            AnkaError::internal(format!("seed local template {}: no tag {tag}", l.uuid))
        })?;
        let name = reg.name.clone();
        state.layers.insert(
            layer_key(&l.uuid, &tag),
            Layer {
                template_uuid: l.uuid.clone(),
                tag: tag.clone(),
                bytes: info.size,
                info,
                complete: true,
                corrupt: false,
            },
        );
        let entry = state
            .templates
            .entry(l.uuid.clone())
            .or_insert_with(|| LocalTemplate {
                uuid: l.uuid.clone(),
                name,
                version: tag.clone(),
                tags: BTreeSet::new(),
                creation_date: now.clone(),
                access_date: now.clone(),
            });
        entry.version = tag.clone();
        entry.tags.insert(tag);
    }
    Ok(state)
}
