//! Walks the YAML tree into the model, reporting unknown keys (with their line and a
//! did-you-mean), legacy keys, keys that do not apply to the entry's plugin kind, and every
//! type error at once.

use std::collections::BTreeMap;

use super::error::{ConfigError, Diag, LoadFailure, Warning, WarningKind};
use super::keys::{
    self, Applies, KeySpec, LegacyKey, Note, PLUGIN_IDENTITY_KEYS, PLUGIN_LEGACY, TOP_LIST_KEYS,
};
use super::model::{Config, Origin, Plugin, PluginKind};
use super::suggest::did_you_mean;
use super::value::{from_node, store};
use super::yaml::{self, Key, Node, Value};

/// Origins collected while walking, keyed by absolute path.
type Origins = BTreeMap<String, Origin>;

fn file_origin(pos: (u64, u64)) -> Origin {
    Origin::File {
        line: pos.0,
        column: pos.1,
    }
}

/// One mapping level's context: which table applies and where it sits.
struct Level<'t, T: 'static> {
    specs: &'t [&'static KeySpec<T>],
    legacy: &'t [LegacyKey],
    /// Keys the caller handles itself at the root of this level.
    handled: &'t [&'static str],
    /// Absolute path prefix (`plugins[2].` or empty).
    abs_prefix: String,
    /// Kind of the plugin entry, to flag keys that do not apply to it.
    kind: Option<PluginKind>,
    /// Whether this level is a plugin entry (for cross-level hints).
    is_plugin: bool,
}

fn walk<T>(
    level: &Level<'_, T>,
    entries: &[(Key, Node)],
    rel_prefix: &str,
    target: &mut T,
    origins: &mut Origins,
    diag: &mut Diag,
) {
    for (key, node) in entries {
        let rel = format!("{rel_prefix}{}", key.name);
        let abs = format!("{}{rel}", level.abs_prefix);
        if rel_prefix.is_empty() && level.handled.contains(&key.name.as_str()) {
            continue;
        }
        if let Some(spec) = level.specs.iter().find(|s| s.path == rel) {
            if let (Some(kind), false) = (level.kind, applies(spec.applies, level.kind)) {
                diag.warn(
                    WarningKind::NotApplicable,
                    &abs,
                    Some(key.pos),
                    format!(
                        "`{}` only applies to {}; it is ignored for `plugin: {kind}`",
                        key.name,
                        spec.applies.label()
                    ),
                );
                continue;
            }
            match from_node(spec.kind, node, spec.is_secret()) {
                Ok(Some(value)) => {
                    store((spec.get_mut)(target), value);
                    origins.insert(abs.clone(), file_origin(node.pos));
                }
                Ok(None) => {}
                Err(bad) => diag.wrong_type(
                    &abs,
                    node.pos,
                    bad.expected,
                    bad.found.unwrap_or_else(|| "something else".to_owned()),
                    bad.hint,
                ),
            }
            if let Note::Legacy(message) = spec.note {
                diag.warn(WarningKind::Legacy, &abs, Some(key.pos), message);
            }
            continue;
        }
        if let Some(legacy) = level.legacy.iter().find(|l| l.path == rel) {
            diag.warn(WarningKind::Legacy, &abs, Some(key.pos), legacy.message);
            continue;
        }
        let nested = format!("{rel}.");
        if level.specs.iter().any(|s| s.path.starts_with(&nested)) {
            match &node.value {
                Value::Map(inner) => walk(level, inner, &nested, target, origins, diag),
                Value::Null => {}
                _ => diag.wrong_type(
                    &abs,
                    node.pos,
                    "a mapping of settings",
                    node.describe(true),
                    Some(format!(
                        "put the settings on their own lines, indented under `{}:`",
                        key.name
                    )),
                ),
            }
            continue;
        }
        unknown_key(level, key, rel_prefix, &abs, diag);
    }
}

fn applies(applies: Applies, kind: Option<PluginKind>) -> bool {
    match (applies, kind) {
        (Applies::All, _) | (_, None) => true,
        (Applies::Handler, Some(k)) => k == PluginKind::Github,
        (Applies::Receiver, Some(k)) => k == PluginKind::GithubReceiver,
    }
}

/// Warns about a key nobody reads, with the best hint we can give.
fn unknown_key<T>(level: &Level<'_, T>, key: &Key, rel_prefix: &str, abs: &str, diag: &mut Diag) {
    let mut siblings: Vec<&str> = level
        .specs
        .iter()
        .filter_map(|s| s.path.strip_prefix(rel_prefix))
        .chain(
            level
                .legacy
                .iter()
                .filter_map(|l| l.path.strip_prefix(rel_prefix)),
        )
        .map(|rest| rest.split('.').next().unwrap_or(rest))
        .collect();
    if rel_prefix.is_empty() {
        siblings.extend(level.handled.iter().copied());
    }
    siblings.sort_unstable();
    siblings.dedup();
    let name = key.name.as_str();
    let mut message = "unknown key; it is ignored".to_owned();
    if let Some(suggestion) = did_you_mean(name, siblings.iter().copied()) {
        message.push_str(&format!(" (did you mean `{suggestion}`?)"));
    } else if level.is_plugin && rel_prefix.is_empty() && keys::global_key(name).is_some() {
        message
            .push_str("; global keys go at the top level of the file, not inside a plugin entry");
    } else if !level.is_plugin && rel_prefix.is_empty() {
        if name == "database" {
            message.push_str(
                "; at the top level use the flat `global_database_*` keys (e.g. `global_database_url`), or put `database:` inside a plugin entry",
            );
        } else if keys::plugin_key(name).is_some() || PLUGIN_IDENTITY_KEYS.contains(&name) {
            message.push_str("; it is a plugin key: put it inside an entry of `plugins:`");
            if keys::global_key(&format!("global_{name}")).is_some() {
                message.push_str(&format!(", or use `global_{name}` for all plugins"));
            }
        }
    }
    diag.warn(WarningKind::UnknownKey, abs, Some(key.pos), message);
}

/// Parses the file into a [`Config`] (no env, no globals applied, no validation).
pub(crate) fn parse(
    source_name: &str,
    bytes: &[u8],
) -> Result<(Config, Vec<Warning>), LoadFailure> {
    let fail = |e: Box<ConfigError>| LoadFailure {
        errors: vec![*e],
        warnings: Vec::new(),
    };
    let text = yaml::decode(source_name, bytes).map_err(fail)?;
    let root = yaml::parse(source_name, text)
        .map_err(fail)?
        .ok_or_else(|| {
            fail(Box::new(ConfigError::Empty {
                source_name: source_name.to_owned(),
            }))
        })?;
    let mut diag = Diag::new(source_name);
    let mut config = Config {
        source_name: source_name.to_owned(),
        ..Config::default()
    };
    let Value::Map(entries) = &root.value else {
        diag.wrong_type(
            "(top level)",
            root.pos,
            "a mapping of settings (`plugins:`, `global_token:`, ...)",
            root.describe(false),
            Some("the file must start with keys such as `plugins:`, not with a list or a plain value".to_owned()),
        );
        return diag.finish(config);
    };

    let mut origins = Origins::new();
    let global_specs: Vec<_> = keys::global_keys().collect();
    let level = Level {
        specs: &global_specs,
        legacy: &[],
        handled: &TOP_LIST_KEYS,
        abs_prefix: String::new(),
        kind: None,
        is_plugin: false,
    };
    walk(&level, entries, "", &mut config, &mut origins, &mut diag);

    let plugins = entries.iter().find(|(k, _)| k.name == "plugins");
    let services = entries.iter().find(|(k, _)| k.name == "services");
    let list = match (plugins, services) {
        (Some(p), Some((skey, _))) => {
            diag.errors.push(ConfigError::Invalid {
                source_name: source_name.to_owned(),
                path: "services".to_owned(),
                line: Some(skey.pos.0),
                column: Some(skey.pos.1),
                via: None,
                message: "both `plugins:` and its legacy name `services:` are set".to_owned(),
                hint: Some("move every entry under `plugins:` and delete `services:`".to_owned()),
            });
            Some(p)
        }
        (Some(p), None) => Some(p),
        (None, Some(s)) => {
            diag.warn(
                WarningKind::Legacy,
                "services",
                Some(s.0.pos),
                "`services:` is the legacy name of `plugins:`; it still works, but rename it",
            );
            Some(s)
        }
        (None, None) => None,
    };
    if let Some((key, node)) = list {
        match &node.value {
            Value::Null => {}
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(plugin) = parse_plugin(i, item, &mut origins, &mut diag) {
                        config.plugins.push(plugin);
                    }
                }
            }
            _ => diag.wrong_type(
                &key.name,
                node.pos,
                "a list of plugin entries",
                node.describe(false),
                Some("start each entry with `- name: ...` on its own line".to_owned()),
            ),
        }
    }
    config.origins = origins;
    diag.finish(config)
}

fn invalid(
    diag: &mut Diag,
    path: String,
    pos: (u64, u64),
    message: impl Into<String>,
    hint: impl Into<String>,
) {
    diag.errors.push(ConfigError::Invalid {
        source_name: diag.source_name.clone(),
        path,
        line: Some(pos.0),
        column: Some(pos.1),
        via: None,
        message: message.into(),
        hint: Some(hint.into()),
    });
}

/// One `plugins:` entry. Returns `None` when the entry cannot be a plugin at all (errors are
/// recorded); its keys are still checked so typos show up in the same run.
fn parse_plugin(i: usize, node: &Node, origins: &mut Origins, diag: &mut Diag) -> Option<Plugin> {
    let prefix = format!("plugins[{i}]");
    let entries = match &node.value {
        Value::Map(entries) => entries,
        Value::Null => {
            invalid(
                diag,
                prefix,
                node.pos,
                "empty plugin entry",
                "give it at least `name:` and `plugin:`, or delete the lone `-`",
            );
            return None;
        }
        _ => {
            diag.wrong_type(
                &prefix,
                node.pos,
                "a plugin entry (a mapping with `name:`, `plugin:`, ...)",
                node.describe(false),
                Some("write the entry as `- name: RUNNER1` with its other keys indented under `name`".to_owned()),
            );
            return None;
        }
    };
    origins.insert(prefix.clone(), file_origin(node.pos));

    let mut ok = true;
    let text_of = |field: &str, diag: &mut Diag| -> Option<(String, (u64, u64))> {
        let (_, value) = entries.iter().find(|(k, _)| k.name == field)?;
        match from_node(keys::Kind::Str, value, false) {
            Ok(Some(super::value::Parsed::Str(s))) => Some((s, value.pos)),
            Ok(_) => None,
            Err(bad) => {
                diag.wrong_type(
                    format!("{prefix}.{field}"),
                    value.pos,
                    bad.expected,
                    bad.found.unwrap_or_default(),
                    bad.hint,
                );
                None
            }
        }
    };
    let name = text_of("name", diag);
    let plugin = text_of("plugin", diag);

    let name = match name {
        Some((n, pos)) if !n.trim().is_empty() => {
            origins.insert(format!("{prefix}.name"), file_origin(pos));
            n
        }
        other => {
            let pos = other.map_or(node.pos, |(_, p)| p);
            invalid(
                diag,
                format!("{prefix}.name"),
                pos,
                "`name` is required for every plugin entry",
                "add `name: <unique name>`; names key the Redis queues, so each must be unique across all hosts",
            );
            ok = false;
            String::new()
        }
    };
    let kind = match plugin {
        Some((p, pos)) if !p.trim().is_empty() => match PluginKind::parse(&p) {
            Some(kind) => {
                origins.insert(format!("{prefix}.plugin"), file_origin(pos));
                Some(kind)
            }
            None => {
                let hint = match did_you_mean(&p, ["github", "github_receiver"]) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "use `github` (the job handler, macOS) or `github_receiver` (the webhook receiver)".to_owned(),
                };
                invalid(
                    diag,
                    format!("{prefix}.plugin"),
                    pos,
                    format!("plugin `{p}` is not supported"),
                    hint,
                );
                None
            }
        },
        other => {
            let pos = other.map_or(node.pos, |(_, p)| p);
            invalid(
                diag,
                format!("{prefix}.plugin"),
                pos,
                "`plugin` is not set",
                "add `plugin: github` (the job handler, macOS) or `plugin: github_receiver` (the webhook receiver)",
            );
            None
        }
    };

    let mut plugin = Plugin::new(name, kind.unwrap_or(PluginKind::Github));
    let specs: Vec<_> = keys::plugin_keys().collect();
    let level = Level {
        specs: &specs,
        legacy: PLUGIN_LEGACY,
        handled: &PLUGIN_IDENTITY_KEYS,
        abs_prefix: format!("{prefix}."),
        kind,
        is_plugin: true,
    };
    walk(&level, entries, "", &mut plugin, origins, diag);
    (ok && kind.is_some()).then_some(plugin)
}
