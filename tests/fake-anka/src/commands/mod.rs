//! The subcommands: each module handles a family, and this one maps a parsed command to its
//! fault-rule operation name, its subjects (for fault `match` globs) and its handler.

pub mod files;
pub mod info;
pub mod pull;
pub mod registry;
pub mod run;
pub mod vm;

use crate::argv::Command;
use crate::context::{Ctx, Reply};
use crate::error::AnkaError;
use crate::state::{State, layer_key};

/// The operation name fault rules use for `cmd` (see `faults`).
pub fn op(cmd: &Command) -> &'static str {
    match cmd {
        Command::Usage | Command::VersionFlag | Command::Version => "version",
        Command::LicenseShow => "license",
        Command::List { .. } => "list",
        Command::Show { .. } => "show",
        Command::RegistryList | Command::RegistryListRepos => "registry_list",
        Command::RegistryShow { .. } => "registry_show",
        Command::Pull { .. } => "pull",
        Command::CheckDownloadSize { .. } => "check_download_size",
        Command::Clone { .. } => "clone",
        Command::Start { .. } => "start",
        Command::Stop { .. } => "stop",
        Command::Suspend { .. } => "suspend",
        Command::Delete { .. } => "delete",
        Command::Run(_) => "run",
        Command::Cp { .. } => "cp",
        Command::Mount { .. } => "mount",
        Command::Config { .. } => "config",
        Command::Modify { .. } => "modify",
        Command::Stats => "__stats",
        Command::EmulatedRunner { .. } => "__emulated_runner",
        Command::CrashWatch { .. } => "__crash_watch",
    }
}

/// Every name an id is known by: itself, and the resolved VM name/uuid or template uuid/name.
fn aliases(s: &State, id: &str, out: &mut Vec<String>) {
    out.push(id.to_string());
    if let Some(name) = s.vm_name(id)
        && let Some(v) = s.vms.get(&name)
    {
        out.push(v.name.clone());
        out.push(v.uuid.clone());
    }
    if let Some(uuid) = s.template_uuid(id)
        && let Some(t) = s.templates.get(&uuid)
    {
        out.push(t.uuid.clone());
        out.push(t.name.clone());
    }
    if let Some(uuid) = s.registry_uuid(id)
        && let Some(t) = s.registry.get(&uuid)
    {
        out.push(t.uuid.clone());
        out.push(t.name.clone());
    }
}

/// The subjects a fault rule's `match` glob is tried against.
pub fn subjects(cmd: &Command, s: &State) -> Vec<String> {
    let mut out = Vec::new();
    match cmd {
        Command::List { ids, .. }
        | Command::Start { ids }
        | Command::Stop { ids, .. }
        | Command::Suspend { ids, .. }
        | Command::Delete { ids, .. } => {
            for id in ids {
                aliases(s, id, &mut out);
            }
        }
        Command::Show { id, .. } => aliases(s, id, &mut out),
        Command::RegistryShow { id, tag }
        | Command::Pull { id, tag, .. }
        | Command::CheckDownloadSize { id, tag } => {
            aliases(s, id, &mut out);
            let uuid = s.registry_uuid(id).unwrap_or_else(|| id.clone());
            let tag = tag
                .clone()
                .or_else(|| s.registry.get(&uuid).map(|t| t.latest.clone()));
            if let Some(tag) = tag {
                out.push(layer_key(&uuid, &tag));
                out.push(tag);
            }
        }
        Command::Clone { template, name, .. } => {
            aliases(s, template, &mut out);
            out.push(name.clone());
        }
        Command::Run(r) => aliases(s, &r.vm, &mut out),
        Command::Cp { src, dst } => {
            for side in [src, dst] {
                if let Some((vm, _)) = side.split_once(':') {
                    aliases(s, vm, &mut out);
                }
            }
        }
        Command::Mount { vm, .. } | Command::Modify { vm, .. } => aliases(s, vm, &mut out),
        _ => {}
    }
    out
}

/// Runs `cmd`.
pub fn execute(ctx: &mut Ctx<'_>, cmd: &Command) -> Result<Reply, AnkaError> {
    match cmd {
        Command::Usage | Command::EmulatedRunner { .. } | Command::CrashWatch { .. } => {
            Err(AnkaError::internal("not a user command"))
        }
        Command::VersionFlag => info::version_line(ctx),
        Command::Version => info::version(ctx),
        Command::LicenseShow => info::license(ctx),
        Command::List {
            running,
            stopped,
            ids,
        } => info::list(ctx, *running, *stopped, ids),
        Command::Show { id, field } => info::show(ctx, id, field.as_deref()),
        Command::Config { key, .. } => info::config(ctx, key.as_deref()),
        Command::Stats => info::stats(ctx),
        Command::RegistryList => registry::list(ctx),
        Command::RegistryListRepos => registry::list_repos(ctx),
        Command::RegistryShow { id, tag } => registry::show(ctx, id, tag.as_deref()),
        Command::CheckDownloadSize { id, tag } => {
            registry::check_download_size(ctx, id, tag.as_deref())
        }
        Command::Pull { id, tag, shrink } => pull::pull(ctx, id, tag.as_deref(), *shrink),
        Command::Clone {
            copy,
            tag,
            template,
            name,
        } => vm::clone(ctx, *copy, tag.as_deref(), template, name),
        Command::Start { ids } => vm::start(ctx, ids),
        Command::Stop { ids, force, all } => vm::stop(ctx, ids, *force, *all),
        Command::Suspend { ids, all } => vm::suspend(ctx, ids, *all),
        Command::Delete { ids, yes, all } => vm::delete(ctx, ids, *yes, *all),
        Command::Run(args) => run::run(ctx, args),
        Command::Cp { src, dst } => files::cp(ctx, src, dst),
        Command::Mount { vm: v, spec } => files::mount(ctx, v, spec),
        Command::Modify {
            vm: v,
            field,
            value,
        } => vm::modify(ctx, v, field, value),
    }
}
