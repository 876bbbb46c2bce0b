//! Read-only commands: `version`, `license show`, `list`, `show`, `config` and the fake's own
//! `__stats`. Their JSON bodies follow anka-cli.md §2.

use serde_json::{Value, json};

use crate::clock;
use crate::context::{Ctx, Reply};
use crate::error::AnkaError;
use crate::procs;
use crate::state::{State, TagInfo, VmStatus, layer_key};
use crate::store;

/// Reads a copy of the state, then waits the query delay outside the lock.
fn snapshot(ctx: &Ctx<'_>) -> Result<State, AnkaError> {
    let state = store::lock(&ctx.home)?.state;
    clock::sleep_scaled(state.timings.query_ms, ctx.scale);
    Ok(state)
}

/// `anka -j version` → `{product, version, build}`.
pub fn version(ctx: &Ctx<'_>) -> Result<Reply, AnkaError> {
    let s = snapshot(ctx)?;
    Ok(Reply::body(serde_json::to_value(&s.version)?))
}

/// `anka --version` → one line of text.
pub fn version_line(ctx: &mut Ctx<'_>) -> Result<Reply, AnkaError> {
    let s = snapshot(ctx)?;
    ctx.out.line(&format!(
        "{} {} (build {})",
        s.version.product, s.version.version, s.version.build
    ));
    Ok(Reply::Exit(0))
}

/// `anka -j license show`; `license_invalid` turns it into an invalid develop licence.
pub fn license(ctx: &Ctx<'_>) -> Result<Reply, AnkaError> {
    let s = snapshot(ctx)?;
    let mut lic = s.license;
    if ctx.faults.license_invalid {
        lic.status = "invalid".into();
        lic.license_type = "com.veertu.anka.develop".into();
    }
    Ok(Reply::body(serde_json::to_value(&lic)?))
}

/// A template whose first download is still running is invisible, as Anka keeps an unfinished
/// download in hidden files until it checks the template out; once that pull has died or failed,
/// the partial template shows with status `failed` until deleted.
fn hidden(s: &State, uuid: &str) -> bool {
    s.template_partial(uuid)
        && s.pulls
            .iter()
            .any(|p| p.uuid == uuid && procs::alive(p.pid))
}

/// A `list` row for a template.
fn template_row(s: &State, uuid: &str) -> Option<Value> {
    if hidden(s, uuid) {
        return None;
    }
    let t = s.templates.get(uuid)?;
    let status = if s.template_partial(uuid) {
        "failed"
    } else {
        "stopped"
    };
    Some(json!({
        "name": t.name,
        "uuid": t.uuid,
        "creation_date": t.creation_date,
        "version": t.version,
        "status": status,
        "access_date": t.access_date,
    }))
}

/// A `list` row for a VM.
fn vm_row(s: &State, name: &str) -> Option<Value> {
    let v = s.vms.get(name)?;
    Some(json!({
        "name": v.name,
        "uuid": v.uuid,
        "creation_date": v.creation_date,
        "version": v.tag,
        "status": v.status.as_str(),
        "access_date": v.access_date,
    }))
}

/// A row for an id, VM first, then template.
fn row(s: &State, id: &str) -> Option<Value> {
    if let Some(name) = s.vm_name(id) {
        return vm_row(s, &name);
    }
    s.template_uuid(id).and_then(|u| template_row(s, &u))
}

/// `anka -j list [-r|-s] [ids]` → array of `{name, uuid, creation_date, version, status,
/// access_date}`; an unknown id → ERROR 3 `"<id>: not found"`.
pub fn list(
    ctx: &Ctx<'_>,
    running: bool,
    stopped: bool,
    ids: &[String],
) -> Result<Reply, AnkaError> {
    let s = snapshot(ctx)?;
    let rows: Vec<Value> = if ids.is_empty() {
        let mut all: Vec<Value> = s
            .templates
            .keys()
            .filter_map(|u| template_row(&s, u))
            .collect();
        all.extend(s.vms.keys().filter_map(|n| vm_row(&s, n)));
        all
    } else {
        ids.iter()
            .map(|id| row(&s, id).ok_or_else(|| AnkaError::not_found(id)))
            .collect::<Result<_, _>>()?
    };
    let rows = rows
        .into_iter()
        .filter(|r| {
            let st = r.get("status").and_then(Value::as_str).unwrap_or("");
            (!running || st == "running") && (!stopped || st == "stopped" || st == "suspended")
        })
        .collect();
    Ok(Reply::body(Value::Array(rows)))
}

fn ram_text(bytes: u64) -> String {
    format!("{}G", bytes / 1_073_741_824)
}

#[allow(clippy::too_many_arguments)]
fn show_object(
    s: &State,
    uuid: &str,
    name: &str,
    version: &str,
    creation: &str,
    access: &str,
    info: &TagInfo,
    image_size: u64,
    status: &str,
    stop_date: Option<&str>,
    ip: Option<&str>,
) -> Value {
    let mut v = json!({
        "uuid": uuid,
        "name": name,
        "version": version,
        "creation_date": creation,
        "cpu_cores": info.cpu_cores,
        "cpu_frequency": 0,
        "cpu_htt": false,
        "arch": "arm64",
        "ram": ram_text(info.ram_size),
        "ram_size": info.ram_size,
        "frame_buffers": 1,
        "hard_drive": info.hard_drive,
        "encrypted": false,
        "image_size": image_size,
        "addons_version": format!("{}.{}", s.version.version, s.version.build),
        "status": status,
        "access_date": access,
    });
    if let (Some(obj), Some(d)) = (v.as_object_mut(), stop_date) {
        obj.insert("stop_date".into(), json!(d));
    }
    if let (Some(obj), Some(ip)) = (v.as_object_mut(), ip) {
        obj.insert("ip".into(), json!(ip));
    }
    v
}

/// `anka -j show <id> [field]`: the object of anka-cli.md §2; `tag` → `[{"tag": ..}]`.
pub fn show(ctx: &Ctx<'_>, id: &str, field: Option<&str>) -> Result<Reply, AnkaError> {
    let s = snapshot(ctx)?;
    let obj = if let Some(name) = s.vm_name(id) {
        let v = s.vms.get(&name).ok_or_else(|| AnkaError::not_found(id))?;
        show_object(
            &s,
            &v.uuid,
            &v.name,
            &v.tag,
            &v.creation_date,
            &v.access_date,
            &v.info,
            v.own_bytes,
            v.status.as_str(),
            v.stop_date.as_deref(),
            v.ip.as_deref(),
        )
    } else if let Some(uuid) = s.template_uuid(id).filter(|u| !hidden(&s, u)) {
        let t = s
            .templates
            .get(&uuid)
            .ok_or_else(|| AnkaError::not_found(id))?;
        let info = s
            .layers
            .get(&layer_key(&uuid, &t.version))
            .map(|l| l.info.clone())
            .unwrap_or_default();
        let bytes: u64 = t
            .tags
            .iter()
            .filter_map(|tag| s.layers.get(&layer_key(&uuid, tag)))
            .map(|l| l.bytes)
            .sum();
        let status = if s.template_partial(&uuid) {
            "failed"
        } else {
            "stopped"
        };
        show_object(
            &s,
            &t.uuid,
            &t.name,
            &t.version,
            &t.creation_date,
            &t.access_date,
            &info,
            bytes,
            status,
            None,
            None,
        )
    } else {
        return Err(AnkaError::not_found(id));
    };
    match field {
        None => Ok(Reply::body(obj)),
        Some("tag") => Ok(Reply::body(json!([{ "tag": obj.get("version") }]))),
        Some(f) => {
            let key = match f {
                "cpu" => "cpu_cores",
                "ram" => "ram_size",
                "disk" => "hard_drive",
                other => other,
            };
            let value = obj
                .get(key)
                .ok_or_else(|| AnkaError::usage(format!("show: unknown field {f}")))?;
            Ok(Reply::body(json!({ key: value })))
        }
    }
}

/// `anka config [key [value]]`: prints the raw value (library dirs point into the fake's home and
/// exist, so a host probe can statfs them).
pub fn config(ctx: &mut Ctx<'_>, key: Option<&str>) -> Result<Reply, AnkaError> {
    let s = snapshot(ctx)?;
    for dir in ["vms", "img", "state"] {
        std::fs::create_dir_all(ctx.home.root.join(dir))?;
    }
    let root = ctx.home.root.display().to_string();
    let values = json!({
        "vm_lib_dir": format!("{root}/vms"),
        "img_lib_dir": format!("{root}/img"),
        "state_lib_dir": format!("{root}/state"),
        "max_vms_allowed": 255,
        "puller_threads": 4,
        "operations_timeout": 300,
        "running_vm_limit": s.max_running,
    });
    match key {
        None => Ok(Reply::body(values)),
        Some(k) => {
            let v = values
                .get(k)
                .ok_or_else(|| AnkaError::usage(format!("config: unknown key {k}")))?;
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            ctx.out.line(&text);
            Ok(Reply::Exit(0))
        }
    }
}

/// `anka __stats`: the invariants counters plus what is left behind (VMs, runners, disk).
pub fn stats(ctx: &Ctx<'_>) -> Result<Reply, AnkaError> {
    let s = store::lock(&ctx.home)?.state;
    let runners: serde_json::Map<String, Value> = s
        .vms
        .values()
        .filter_map(|v| {
            v.runner_pid
                .map(|p| (v.name.clone(), json!({"pid": p, "alive": procs::alive(p)})))
        })
        .collect();
    let partial: Vec<&String> = s
        .templates
        .keys()
        .filter(|u| s.template_partial(u))
        .collect();
    let corrupt: Vec<&String> = s
        .layers
        .iter()
        .filter(|(_, l)| l.corrupt)
        .map(|(k, _)| k)
        .collect();
    Ok(Reply::body(json!({
        "counters": s.stats,
        "running_now": s.running(),
        "vms_left": s.vms.keys().collect::<Vec<_>>(),
        "failed_vms": s.vms.values().filter(|v| v.status == VmStatus::Failed).map(|v| &v.name).collect::<Vec<_>>(),
        "templates": s.templates.keys().collect::<Vec<_>>(),
        "partial_templates": partial,
        "corrupt_layers": corrupt,
        "pulls_in_progress": s.pulls.len(),
        "runners": runners,
        "disk": {"total": s.disk_total, "used": s.used(), "available": s.available()},
    })))
}
