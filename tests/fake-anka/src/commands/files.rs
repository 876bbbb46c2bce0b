//! `anka cp` between the host and a VM's guest home (`vms/<name>/home`, standing for
//! `/Users/anka`), and `anka mount`, which only records the mount. Both need a running VM.

use std::fs;
use std::path::{Component, Path, PathBuf};

use serde_json::json;

use crate::context::{Ctx, Reply};
use crate::error::{AnkaError, Kind};
use crate::state::{MountRecord, State, VmStatus};
use crate::store;

/// The guest's home as real Anka guests have it.
const GUEST_HOME: &str = "/Users/anka";

/// Splits `<vm>:path` when `<vm>` names a VM.
fn vm_side(s: &State, arg: &str) -> Option<(String, String)> {
    let (vm, path) = arg.split_once(':')?;
    if vm.contains('/') {
        return None;
    }
    s.vm_name(vm).map(|n| (n, path.to_string()))
}

/// Maps a guest path to the host directory standing for it; refuses `..`.
fn guest_path(home: &Path, path: &str) -> Result<PathBuf, AnkaError> {
    let rel = path
        .strip_prefix(GUEST_HOME)
        .unwrap_or(path)
        .trim_start_matches('/');
    let rel = Path::new(rel);
    if rel.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(AnkaError::usage(format!(
            "cp: path escapes the guest home: {path}"
        )));
    }
    Ok(home.join(rel))
}

fn copy_tree(src: &Path, dst: &Path) -> Result<(), AnkaError> {
    let meta = fs::metadata(src)
        .map_err(|e| AnkaError::new(Kind::NotFound, format!("{}: {e}", src.display())))?;
    if meta.is_dir() {
        fs::create_dir_all(dst)?;
        for entry in fs::read_dir(src)? {
            let entry = entry?;
            copy_tree(&entry.path(), &dst.join(entry.file_name()))?;
        }
    } else {
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(src, dst)?;
    }
    Ok(())
}

/// `cp src dst` semantics: into an existing directory (or a path ending in `/`), keep the name.
fn copy_into(src: &Path, dst: &Path, dst_raw: &str) -> Result<(), AnkaError> {
    let target = if dst.is_dir() || dst_raw.is_empty() || dst_raw.ends_with('/') {
        let name = src.file_name().ok_or_else(|| {
            AnkaError::usage(format!("cp: source has no name: {}", src.display()))
        })?;
        dst.join(name)
    } else {
        dst.to_path_buf()
    };
    copy_tree(src, &target)
}

fn require_running(s: &State, name: &str) -> Result<(), AnkaError> {
    match s.vms.get(name).map(|v| v.status) {
        Some(VmStatus::Running) => Ok(()),
        Some(VmStatus::Failed) => Err(AnkaError::new(
            Kind::Disconnected,
            format!("{name}: VM is in failed state"),
        )),
        Some(_) => Err(AnkaError::new(
            Kind::State,
            format!("{name}: VM is not running"),
        )),
        None => Err(AnkaError::not_found(name)),
    }
}

/// `anka -j cp [-a] <src> <dst>`: exactly one side must be `<vm>:[path]`.
pub fn cp(ctx: &Ctx<'_>, src: &str, dst: &str) -> Result<Reply, AnkaError> {
    let s = store::lock(&ctx.home)?.state;
    match (vm_side(&s, src), vm_side(&s, dst)) {
        (None, Some((vm, path))) => {
            require_running(&s, &vm)?;
            let home = ctx.home.vm_home(&vm);
            fs::create_dir_all(&home)?;
            copy_into(Path::new(src), &guest_path(&home, &path)?, &path)?;
        }
        (Some((vm, path)), None) => {
            require_running(&s, &vm)?;
            let from = guest_path(&ctx.home.vm_home(&vm), &path)?;
            copy_into(&from, Path::new(dst), dst)?;
        }
        _ => {
            return Err(AnkaError::usage(
                "cp: exactly one of <src> and <dst> must be <vm>:[path]",
            ));
        }
    }
    Ok(Reply::body(json!({})))
}

/// `anka -j mount <vm> <host_path[:guest_name]>`: records the mount on a running VM.
pub fn mount(ctx: &Ctx<'_>, vm: &str, spec: &str) -> Result<Reply, AnkaError> {
    store::update(&ctx.home, |s| {
        let name = s.vm_name(vm).ok_or_else(|| AnkaError::not_found(vm))?;
        require_running(s, &name)?;
        let (host, guest) = match spec.rsplit_once(':') {
            Some((h, g)) if !g.is_empty() => (h.to_string(), g.to_string()),
            _ => {
                let h = spec.trim_end_matches(':').to_string();
                let g = Path::new(&h)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "shared".into());
                (h, g)
            }
        };
        if !Path::new(&host).exists() {
            return Err(AnkaError::new(Kind::NotFound, format!("{host}: not found")));
        }
        if let Some(v) = s.vms.get_mut(&name) {
            v.mounts.push(MountRecord {
                host_path: host,
                guest_name: guest,
            });
        }
        Ok(Reply::body(json!({})))
    })
}
