//! `anka registry pull [--shrink] <id> [--tag T]` (and `anka pull <id>`): downloads a tag into a
//! layer in steps, with the lock dropped between steps, so concurrent pulls and size probes see
//! the disk fill up.
//!
//! - Each step adds `size / pull_steps` bytes and prints a `{"progress":N,...}` line; the final
//!   envelope comes last, so a parser must take the last line.
//! - When a step would push used bytes past the disk (or a `disk_full_at` threshold), the layer is
//!   filled to the limit and the pull fails with `No space left on device`, leaving a `partial`
//!   template (status `failed` in `list`) that holds its bytes until deleted. A later pull of the
//!   same tag resumes it.
//! - A pull that starts while another live pull of the same template runs marks both as
//!   overlapped: both "succeed", but the layer is corrupt and VMs cloned from it fail to start
//!   (Anka's silent corruption, anka-cli.md §3). With the seed's `"overlapping_pulls": "fail"`
//!   the later pull fails at once instead. Overlaps are counted for `__stats`.
//! - `--shrink` frees the template's other tags (unless clones still share them).

use std::collections::BTreeSet;

use serde_json::json;

use crate::clock;
use crate::commands::registry;
use crate::context::{Ctx, Reply};
use crate::error::{AnkaError, Kind};
use crate::procs;
use crate::state::{Layer, LocalTemplate, OverlapMode, PullRecord, State, layer_key};
use crate::store;

/// What phase one decided.
enum Begin {
    /// Nothing to download.
    Done(Reply),
    /// Download `remaining` bytes of `size` as pull `id`.
    Download {
        id: u64,
        uuid: String,
        tag: String,
        size: u64,
        remaining: u64,
        steps: u32,
        rate: f64,
    },
}

fn checkout(s: &mut State, uuid: &str, tag: &str, shrink: bool) {
    let now = clock::now_rfc3339();
    if let Some(t) = s.templates.get_mut(uuid) {
        t.version = tag.to_string();
        t.access_date = now;
        if shrink {
            t.tags.retain(|x| x == tag);
        }
    }
    s.gc_layers();
}

fn begin(s: &mut State, id: &str, tag: Option<&str>, shrink: bool) -> Result<Begin, AnkaError> {
    let (uuid, tag, info) = registry::resolve(s, id, tag)?;
    let key = layer_key(&uuid, &tag);
    if s.layers.get(&key).is_some_and(|l| l.complete) && s.templates.contains_key(&uuid) {
        checkout(s, &uuid, &tag, shrink);
        return Ok(Begin::Done(Reply::with_message(
            json!({}),
            format!("{id}: available locally"),
        )));
    }
    s.pulls.retain(|p| procs::alive(p.pid));
    let me = std::process::id();
    let overlapped = s.pulls.iter().any(|p| p.uuid == uuid);
    if overlapped {
        s.stats.overlapping_pulls = s.stats.overlapping_pulls.saturating_add(1);
        if s.overlapping_pulls == OverlapMode::Fail {
            return Err(AnkaError::new(
                Kind::State,
                format!("{id}: a pull of this template is already in progress"),
            ));
        }
        for p in s.pulls.iter_mut().filter(|p| p.uuid == uuid) {
            p.overlapped = true;
        }
    }
    let pull_id = s.fresh_id();
    s.pulls.push(PullRecord {
        id: pull_id,
        uuid: uuid.clone(),
        tag: tag.clone(),
        pid: me,
        started: clock::now_secs(),
        overlapped,
    });
    s.stats.pulls_started = s.stats.pulls_started.saturating_add(1);
    s.stats.max_concurrent_pulls = s.stats.max_concurrent_pulls.max(s.pulls.len());
    let now = clock::now_rfc3339();
    let name = s
        .registry
        .get(&uuid)
        .map(|t| t.name.clone())
        .unwrap_or_else(|| uuid.clone());
    let t = s
        .templates
        .entry(uuid.clone())
        .or_insert_with(|| LocalTemplate {
            uuid: uuid.clone(),
            name,
            version: tag.clone(),
            tags: BTreeSet::new(),
            creation_date: now.clone(),
            access_date: now,
        });
    t.tags.insert(tag.clone());
    let layer = s.layers.entry(key).or_insert_with(|| Layer {
        template_uuid: uuid.clone(),
        tag: tag.clone(),
        info: info.clone(),
        bytes: 0,
        complete: false,
        corrupt: false,
    });
    let remaining = info.size.saturating_sub(layer.bytes);
    Ok(Begin::Download {
        id: pull_id,
        uuid,
        tag,
        size: info.size,
        remaining,
        steps: s.timings.pull_steps.max(1),
        rate: s.timings.pull_bytes_per_sec,
    })
}

fn finish_failed(s: &mut State, pull_id: u64) {
    s.pulls.retain(|p| p.id != pull_id);
    s.stats.pulls_failed = s.stats.pulls_failed.saturating_add(1);
}

/// One download step: adds bytes, or fails when the disk is full.
fn step(
    s: &mut State,
    pull_id: u64,
    key: &str,
    chunk: u64,
    limit: u64,
) -> Result<(u64, u64), AnkaError> {
    let used = s.used();
    let Some(layer) = s.layers.get(key) else {
        finish_failed(s, pull_id);
        return Err(AnkaError::new(
            Kind::State,
            "pull interrupted: the template was deleted",
        ));
    };
    let size = layer.info.size;
    let target = layer.bytes.saturating_add(chunk).min(size);
    let delta = target - layer.bytes;
    if used.saturating_add(delta) > limit {
        let room = limit.saturating_sub(used);
        if let Some(l) = s.layers.get_mut(key) {
            l.bytes = l.bytes.saturating_add(room).min(size);
        }
        finish_failed(s, pull_id);
        return Err(AnkaError::new(
            Kind::NoSpace,
            "failed to download: No space left on device",
        ));
    }
    if let Some(l) = s.layers.get_mut(key) {
        l.bytes = target;
    }
    Ok((target, size))
}

/// Runs a pull; see the module docs.
pub fn pull(
    ctx: &mut Ctx<'_>,
    id: &str,
    tag: Option<&str>,
    shrink: bool,
) -> Result<Reply, AnkaError> {
    if ctx.faults.registry_down {
        return Err(registry::down_error());
    }
    let begun = store::update(&ctx.home, |s| begin(s, id, tag, shrink))?;
    let (pull_id, uuid, tag, size, remaining, steps, rate) = match begun {
        Begin::Done(reply) => return Ok(reply),
        Begin::Download {
            id,
            uuid,
            tag,
            size,
            remaining,
            steps,
            rate,
        } => (id, uuid, tag, size, remaining, steps, rate),
    };
    ctx.out.line(&format!(
        "pulling {id} tag {tag}: {remaining} of {size} bytes to download"
    ));
    let key = layer_key(&uuid, &tag);
    let total_ms = if rate > 0.0 {
        remaining as f64 / rate * 1000.0
    } else {
        0.0
    };
    let chunk = size.div_ceil(u64::from(steps)).max(1);
    let full_at = ctx.faults.disk_full_at;
    loop {
        clock::sleep_scaled(total_ms / f64::from(steps), ctx.scale);
        let (done, size) = store::update(&ctx.home, |s| {
            let limit = full_at.map_or(s.disk_total, |b| b.min(s.disk_total));
            step(s, pull_id, &key, chunk, limit)
        })?;
        let pct = (done * 100).checked_div(size).unwrap_or(100);
        ctx.out
            .line(&json!({"progress": pct, "downloaded": done, "size": size}).to_string());
        if done >= size {
            break;
        }
    }
    store::update(&ctx.home, |s| {
        let overlapped = s
            .pulls
            .iter()
            .find(|p| p.id == pull_id)
            .is_some_and(|p| p.overlapped);
        s.pulls.retain(|p| p.id != pull_id);
        let Some(layer) = s.layers.get_mut(&key) else {
            s.stats.pulls_failed = s.stats.pulls_failed.saturating_add(1);
            return Err(AnkaError::new(
                Kind::State,
                "pull interrupted: the template was deleted",
            ));
        };
        layer.bytes = layer.info.size;
        layer.complete = true;
        layer.corrupt |= overlapped;
        checkout(s, &uuid, &tag, shrink);
        s.stats.pulls_completed = s.stats.pulls_completed.saturating_add(1);
        Ok(())
    })?;
    Ok(Reply::with_message(
        json!({}),
        format!("{id}: pulled tag {tag}"),
    ))
}
