//! VM lifecycle: `clone`, `start`, `stop`, `suspend`, `delete`.
//!
//! - `start` enforces the running limit (2, Apple's) with Anka's message `maximum number of
//!   running instances exceeded`; a VM whose layer is corrupt fails with an I/O error. The VM is
//!   marked running under the lock before the start delay, so two concurrent starts cannot both
//!   slip under the limit.
//! - `stop` (graceful) asks the emulated runner to go offline: it leaves a marker the runner sees
//!   within 100 ms, upon which the runner sends `DELETE /sessions/{id}` and exits; after 2 s it is
//!   killed anyway. `stop -f`, `suspend` and `delete` SIGKILL the runner's process group at once:
//!   it vanishes without completing and without telling the runner service, as when a real guest
//!   is powered off.
//! - `modify <vm> cpu N | ram SIZE` needs a stopped VM.
//! - `stop`, `suspend`, `delete` (and a `vm_crash`) SIGKILL the guest commands `anka run` is
//!   running in the VM; that `anka run` then exits 125, the connection to the guest being lost.
//! - `delete` of a running VM stops it first (stop delay + delete delay); deleting a template
//!   frees only the layers no clone shares.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::clock;
use crate::context::{Ctx, Reply};
use crate::crash;
use crate::error::{AnkaError, Kind};
use crate::procs;
use crate::state::{State, Vm, VmStatus, layer_key};
use crate::store;

fn new_uuid(s: &mut State, name: &str) -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    let n = s.fresh_id();
    let h = RandomState::new().hash_one((name, n, std::process::id(), clock::now_secs().to_bits()));
    let g = RandomState::new().hash_one((h, n));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        g >> 52,
        g & 0xffff_ffff_ffff
    )
}

/// `anka -j clone [-c] [-t T] <template> <name>`: a stopped VM sharing the template's layer
/// (or, with `-c`, a full copy that takes its size in disk).
pub fn clone(
    ctx: &Ctx<'_>,
    copy: bool,
    tag: Option<&str>,
    template: &str,
    name: &str,
) -> Result<Reply, AnkaError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(AnkaError::usage(format!("invalid VM name: {name:?}")));
    }
    let home = ctx.home.clone();
    let (reply, delay) = store::update(&ctx.home, |s| {
        let uuid = s
            .template_uuid(template)
            .ok_or_else(|| AnkaError::not_found(template))?;
        let t = s
            .templates
            .get(&uuid)
            .ok_or_else(|| AnkaError::not_found(template))?;
        let tag = tag.map_or_else(|| t.version.clone(), str::to_string);
        let key = layer_key(&uuid, &tag);
        let layer = s
            .layers
            .get(&key)
            .filter(|_| t.tags.contains(&tag))
            .ok_or_else(|| {
                AnkaError::new(Kind::NotFound, format!("{template}: tag {tag} not found"))
            })?;
        if !layer.complete {
            return Err(AnkaError::new(
                Kind::State,
                format!(
                    "{template}: template is not fully downloaded (partial); delete it and pull again"
                ),
            ));
        }
        if s.vms.contains_key(name) || s.templates.values().any(|t| t.name == name) {
            return Err(AnkaError::new(
                Kind::AlreadyExists,
                format!("{name}: already exists"),
            ));
        }
        let info = layer.info.clone();
        let own_bytes = if copy { info.size } else { 0 };
        if own_bytes > s.available() {
            return Err(AnkaError::new(
                Kind::NoSpace,
                "failed to clone: No space left on device",
            ));
        }
        let now = clock::now_rfc3339();
        let vm_uuid = new_uuid(s, name);
        s.vms.insert(
            name.to_string(),
            Vm {
                name: name.to_string(),
                uuid: vm_uuid.clone(),
                template_uuid: uuid.clone(),
                tag,
                layer: (!copy).then_some(key),
                own_bytes,
                info,
                status: VmStatus::Stopped,
                creation_date: now.clone(),
                access_date: now.clone(),
                stop_date: None,
                ip: None,
                runner_pid: None,
                crash_watch_pid: None,
                crash_at: None,
                mounts: Vec::new(),
                guests: Vec::new(),
            },
        );
        if let Some(t) = s.templates.get_mut(&uuid) {
            t.access_date = now;
        }
        s.stats.vms_created = s.stats.vms_created.saturating_add(1);
        fs::create_dir_all(home.vm_home(name))?;
        Ok((
            Reply::body(json!({"uuid": vm_uuid, "name": name})),
            s.timings.clone_ms,
        ))
    })?;
    clock::sleep_scaled(delay, ctx.scale);
    Ok(reply)
}

/// Starts one VM (used by `start` and by `run`'s auto-start). Returns whether it was started
/// (false: it was already running).
pub fn start_vm(ctx: &Ctx<'_>, id: &str) -> Result<bool, AnkaError> {
    let crash = ctx.faults.vm_crash;
    let scale = ctx.scale;
    let home = ctx.home.clone();
    let started = store::update(&ctx.home, |s| {
        let name = s.vm_name(id).ok_or_else(|| AnkaError::not_found(id))?;
        let running = s.running();
        let max = s.max_running;
        let next_ip = s.fresh_id();
        let corrupt = {
            let vm = s.vms.get(&name).ok_or_else(|| AnkaError::not_found(id))?;
            match vm.status {
                VmStatus::Running => return Ok(None),
                VmStatus::Failed => {
                    return Err(AnkaError::new(
                        Kind::State,
                        format!("{id}: VM is in failed state"),
                    ));
                }
                VmStatus::Stopped | VmStatus::Suspended => {}
            }
            vm.layer
                .as_ref()
                .and_then(|k| s.layers.get(k))
                .is_some_and(|l| l.corrupt)
        };
        if corrupt {
            return Err(AnkaError::new(
                Kind::Corrupt,
                format!("{id}: failed to checkout: Input/output error (template data is corrupt)"),
            ));
        }
        if running >= max {
            s.stats.licence_refusals = s.stats.licence_refusals.saturating_add(1);
            return Err(AnkaError::new(
                Kind::LicenceLimit,
                "maximum number of running instances exceeded",
            ));
        }
        let delay = s.timings.start_ms;
        let vm = s
            .vms
            .get_mut(&name)
            .ok_or_else(|| AnkaError::not_found(id))?;
        vm.status = VmStatus::Running;
        vm.ip = Some(format!("192.168.64.{}", 2 + next_ip % 250));
        vm.access_date = clock::now_rfc3339();
        s.note_running();
        if let Some(after_s) = crash {
            let at = clock::now_secs() + (delay + after_s * 1000.0) * scale / 1000.0;
            crash::schedule(&home, s, &name, at)?;
        }
        Ok(Some(delay))
    })?;
    match started {
        Some(delay) => {
            clock::sleep_scaled(delay, ctx.scale);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// `anka -j start <vm...>`.
pub fn start(ctx: &Ctx<'_>, ids: &[String]) -> Result<Reply, AnkaError> {
    if ids.is_empty() {
        return Err(AnkaError::usage("missing argument: vm"));
    }
    for id in ids {
        start_vm(ctx, id)?;
    }
    Ok(Reply::body(json!({})))
}

/// How a VM's runner is taken down.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RunnerEnd {
    /// Marker first: the runner sends `DELETE /sessions/{id}` and exits (graceful stop).
    Graceful,
    /// SIGKILL at once (forced stop, suspend, delete).
    Kill,
}

/// Takes a VM's runner down; returns whether there was a live one.
pub fn end_runner(ctx: &Ctx<'_>, name: &str, pid: Option<u32>, how: RunnerEnd) -> bool {
    let Some(pid) = pid.filter(|p| procs::alive(*p)) else {
        return false;
    };
    if how == RunnerEnd::Graceful && fs::write(ctx.home.stop_marker(name), b"stop").is_ok() {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && procs::alive(pid) {
            thread::sleep(Duration::from_millis(20));
        }
    }
    procs::kill_helper(pid, procs::RUNNER);
    true
}

/// Ids to act on: the given ones, or with `all` every running VM.
fn targets(s: &State, ids: &[String], all: bool) -> Result<Vec<String>, AnkaError> {
    if all {
        return Ok(s
            .vms
            .values()
            .filter(|v| v.status == VmStatus::Running)
            .map(|v| v.name.clone())
            .collect());
    }
    if ids.is_empty() {
        return Err(AnkaError::usage("missing argument: vm"));
    }
    ids.iter()
        .map(|id| s.vm_name(id).ok_or_else(|| AnkaError::not_found(id)))
        .collect()
}

/// Moves VMs out of `running` (to `to`), ending their runners `how`; returns the delay to wait.
fn halt(
    ctx: &Ctx<'_>,
    ids: &[String],
    all: bool,
    to: VmStatus,
    how: RunnerEnd,
) -> Result<Reply, AnkaError> {
    let (halted, delay) = store::update(&ctx.home, |s| {
        let names = targets(s, ids, all)?;
        let delay = s.timings.stop_ms;
        let mut halted = Vec::new();
        for name in names {
            if let Some(vm) = s.vms.get_mut(&name) {
                let was_running = vm.status == VmStatus::Running;
                if was_running || vm.status == VmStatus::Failed {
                    vm.status = to;
                }
                vm.ip = None;
                vm.crash_at = None;
                if was_running {
                    vm.stop_date = Some(clock::now_rfc3339());
                }
                for g in vm.guests.drain(..) {
                    procs::kill_guest(g.pid, g.parent);
                }
                halted.push((name, vm.runner_pid.take(), was_running));
            }
        }
        Ok((halted, delay))
    })?;
    let mut killed = 0u64;
    let mut waited = false;
    for (name, pid, was_running) in &halted {
        if end_runner(ctx, name, *pid, how) {
            killed += 1;
        }
        let _ = fs::remove_file(ctx.home.stop_marker(name));
        waited |= was_running;
    }
    if killed > 0 {
        store::update(&ctx.home, |s| {
            s.stats.runners_killed = s.stats.runners_killed.saturating_add(killed);
            Ok(())
        })?;
    }
    if waited {
        clock::sleep_scaled(delay, ctx.scale);
    }
    Ok(Reply::body(json!({})))
}

/// `anka -j stop [-f] [-a] <vm...>`.
pub fn stop(ctx: &Ctx<'_>, ids: &[String], force: bool, all: bool) -> Result<Reply, AnkaError> {
    let how = if force {
        RunnerEnd::Kill
    } else {
        RunnerEnd::Graceful
    };
    halt(ctx, ids, all, VmStatus::Stopped, how)
}

/// `anka -j suspend [-a] <vm...>` (on ARM really a stop; the VM shows `suspended`).
pub fn suspend(ctx: &Ctx<'_>, ids: &[String], all: bool) -> Result<Reply, AnkaError> {
    halt(ctx, ids, all, VmStatus::Suspended, RunnerEnd::Kill)
}

/// What deleting one id removed.
enum Removed {
    Vm {
        name: String,
        runner: Option<u32>,
        watcher: Option<u32>,
        was_running: bool,
    },
    Template,
}

/// `anka -j delete --yes <id...>` (VMs or templates; `-a` = every VM).
pub fn delete(ctx: &Ctx<'_>, ids: &[String], yes: bool, all: bool) -> Result<Reply, AnkaError> {
    if !yes {
        return Err(AnkaError::usage(
            "delete needs confirmation: pass --yes (non-interactive)",
        ));
    }
    let ids: Vec<String> = if all {
        store::lock(&ctx.home)?.state.vms.keys().cloned().collect()
    } else if ids.is_empty() {
        return Err(AnkaError::usage("missing argument: vm"));
    } else {
        ids.to_vec()
    };
    for id in &ids {
        let (removed, stop_ms, delete_ms) = store::update(&ctx.home, |s| {
            let (stop_ms, delete_ms) = (s.timings.stop_ms, s.timings.delete_ms);
            if let Some(name) = s.vm_name(id) {
                let vm = s
                    .vms
                    .remove(&name)
                    .ok_or_else(|| AnkaError::not_found(id))?;
                for g in &vm.guests {
                    procs::kill_guest(g.pid, g.parent);
                }
                s.gc_layers();
                s.stats.vms_deleted = s.stats.vms_deleted.saturating_add(1);
                return Ok((
                    Removed::Vm {
                        name,
                        runner: vm.runner_pid,
                        watcher: vm.crash_watch_pid,
                        was_running: vm.status == VmStatus::Running,
                    },
                    stop_ms,
                    delete_ms,
                ));
            }
            let uuid = s
                .template_uuid(id)
                .ok_or_else(|| AnkaError::not_found(id))?;
            s.templates.remove(&uuid);
            s.gc_layers();
            Ok((Removed::Template, stop_ms, delete_ms))
        })?;
        match removed {
            Removed::Vm {
                name,
                runner,
                watcher,
                was_running,
            } => {
                if end_runner(ctx, &name, runner, RunnerEnd::Kill) {
                    store::update(&ctx.home, |s| {
                        s.stats.runners_killed = s.stats.runners_killed.saturating_add(1);
                        Ok(())
                    })?;
                }
                if let Some(w) = watcher.filter(|w| procs::alive(*w)) {
                    procs::kill_helper(w, procs::CRASH_WATCH);
                }
                let dir = ctx.home.vm_dir(&name);
                if let Err(e) = fs::remove_dir_all(&dir)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    return Err(e.into());
                }
                if was_running {
                    clock::sleep_scaled(stop_ms, ctx.scale);
                }
                clock::sleep_scaled(delete_ms, ctx.scale);
            }
            Removed::Template => clock::sleep_scaled(delete_ms, ctx.scale),
        }
    }
    Ok(Reply::body(json!({})))
}

/// Parses a RAM size like `14G`, `512M`, `1024K` or plain bytes.
fn ram_bytes(value: &str) -> Option<u64> {
    let v = value.trim();
    let (num, unit) = match v.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&v[..i], v[i..].to_ascii_uppercase()),
        None => (v, String::new()),
    };
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// `anka -j modify <vm> cpu N` / `ram SIZE`: changes a stopped VM's shape.
pub fn modify(ctx: &Ctx<'_>, id: &str, field: &str, value: &str) -> Result<Reply, AnkaError> {
    store::update(&ctx.home, |s| {
        let name = s.vm_name(id).ok_or_else(|| AnkaError::not_found(id))?;
        let vm = s
            .vms
            .get_mut(&name)
            .ok_or_else(|| AnkaError::not_found(id))?;
        if vm.status == VmStatus::Running {
            return Err(AnkaError::new(
                Kind::State,
                format!("{id}: VM must be stopped to modify it"),
            ));
        }
        match field {
            "cpu" => {
                vm.info.cpu_cores = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    AnkaError::usage(format!("modify cpu: not a core count: {value}"))
                })?;
            }
            "ram" => {
                vm.info.ram_size = ram_bytes(value)
                    .filter(|n| *n > 0)
                    .ok_or_else(|| AnkaError::usage(format!("modify ram: not a size: {value}")))?;
            }
            other => {
                return Err(AnkaError::usage(format!(
                    "modify: the fake supports cpu and ram, not {other}"
                )));
            }
        }
        Ok(Reply::body(json!({})))
    })
}

#[cfg(test)]
mod tests {
    use super::ram_bytes;

    #[test]
    fn ram_sizes() {
        assert_eq!(ram_bytes("14G"), Some(14 << 30));
        assert_eq!(ram_bytes("512m"), Some(512 << 20));
        assert_eq!(ram_bytes("2048"), Some(2048));
        assert_eq!(ram_bytes("1GB"), Some(1 << 30));
        assert_eq!(ram_bytes("x"), None);
        assert_eq!(ram_bytes("3Q"), None);
    }
}
