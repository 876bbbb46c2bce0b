//! Registry queries: `registry list`, `registry list-repos`, `registry show` and
//! `pull --check-download-size`. The `registry_down` fault makes them fail with exit 30.

use serde_json::{Value, json};

use crate::clock;
use crate::context::{Ctx, Reply};
use crate::error::{AnkaError, Kind};
use crate::state::{State, TagInfo, layer_key};
use crate::store;

/// The error every registry operation gives while the `registry_down` fault is in force.
pub fn down_error() -> AnkaError {
    AnkaError::new(
        Kind::Registry,
        "Failed to connect to registry: Connection refused (fake-anka registry_down)",
    )
}

/// Resolves a registry template and tag (default: its latest) → (uuid, tag, info).
pub fn resolve(
    s: &State,
    id: &str,
    tag: Option<&str>,
) -> Result<(String, String, TagInfo), AnkaError> {
    let uuid = s
        .registry_uuid(id)
        .ok_or_else(|| AnkaError::not_found(id))?;
    let t = s
        .registry
        .get(&uuid)
        .ok_or_else(|| AnkaError::not_found(id))?;
    let tag = tag.map_or_else(|| t.latest.clone(), str::to_string);
    let info = t
        .tags
        .get(&tag)
        .cloned()
        .ok_or_else(|| AnkaError::new(Kind::NotFound, format!("{id}: tag {tag} not found")))?;
    Ok((uuid, tag, info))
}

fn snapshot(ctx: &Ctx<'_>) -> Result<State, AnkaError> {
    if ctx.faults.registry_down {
        return Err(down_error());
    }
    let state = store::lock(&ctx.home)?.state;
    clock::sleep_scaled(state.timings.query_ms, ctx.scale);
    Ok(state)
}

/// `anka -j registry list` → `[{name, uuid, latest}]`.
pub fn list(ctx: &Ctx<'_>) -> Result<Reply, AnkaError> {
    let s = snapshot(ctx)?;
    let rows: Vec<Value> = s
        .registry
        .values()
        .map(|t| json!({"name": t.name, "uuid": t.uuid, "latest": t.latest}))
        .collect();
    Ok(Reply::body(Value::Array(rows)))
}

/// `anka -j registry list-repos` → `[{name, url, default}]`.
pub fn list_repos(ctx: &Ctx<'_>) -> Result<Reply, AnkaError> {
    snapshot(ctx)?;
    Ok(Reply::body(json!([
        {"name": "fake", "url": "http://fake-anka-registry.invalid", "default": true}
    ])))
}

/// `anka -j registry show <id> [--tag T]` → `{uuid, name, version, cpu_cores, ram_size, ram,
/// image_size, hard_drive, size}`; unknown template or tag → code 3, message with `not found`.
pub fn show(ctx: &Ctx<'_>, id: &str, tag: Option<&str>) -> Result<Reply, AnkaError> {
    let s = snapshot(ctx)?;
    let (uuid, tag, info) = resolve(&s, id, tag)?;
    let name = s
        .registry
        .get(&uuid)
        .map(|t| t.name.clone())
        .unwrap_or_default();
    Ok(Reply::body(json!({
        "uuid": uuid,
        "name": name,
        "version": tag,
        "cpu_cores": info.cpu_cores,
        "ram_size": info.ram_size,
        "ram": format!("{}G", info.ram_size / 1_073_741_824),
        "image_size": info.size,
        "hard_drive": info.hard_drive,
        "size": info.size,
    })))
}

/// `anka -j pull <id> --check-download-size [--tag T]` → `{size, cached, available, bytes}`, or
/// `{}` with `"<id>: available locally"` when that tag is checked out locally.
pub fn check_download_size(ctx: &Ctx<'_>, id: &str, tag: Option<&str>) -> Result<Reply, AnkaError> {
    let s = snapshot(ctx)?;
    let (uuid, tag, info) = resolve(&s, id, tag)?;
    let layer = s.layers.get(&layer_key(&uuid, &tag));
    let current = s.templates.get(&uuid).is_some_and(|t| t.version == tag);
    if current && layer.is_some_and(|l| l.complete) {
        return Ok(Reply::with_message(
            json!({}),
            format!("{id}: available locally"),
        ));
    }
    let cached = layer.map_or(0, |l| l.bytes.min(info.size));
    Ok(Reply::body(json!({
        "size": info.size,
        "cached": cached,
        "available": s.available(),
        "bytes": info.size - cached,
    })))
}
