//! The effective settings as YAML-like text, for `check-config` and start-up logs.
//!
//! Anklet logs its whole config at start-up, tokens included; this never prints a secret
//! (they come out as `[redacted]`), and says for every value whether it came from the file
//! (with its line), an environment variable, a global key, or a default.

use std::collections::BTreeSet;

use super::keys::{self, Applies, Dflt, KeySpec, Note};
use super::model::{Config, Origin, Plugin, PluginKind};
use super::value::{show, yaml_string};

/// Builds aligned `key: value  # comment` lines with YAML-style nesting.
#[derive(Default)]
struct Out {
    lines: Vec<(String, String)>,
    open: Vec<String>,
}

impl Out {
    fn raw(&mut self, text: impl Into<String>, comment: impl Into<String>) {
        self.lines.push((text.into(), comment.into()));
    }

    /// Emits `path` (dot-separated) under `base_indent`, opening parent sections as needed.
    fn entry(&mut self, base_indent: usize, path: &str, value: &str, comment: String) {
        let segments: Vec<&str> = path.split('.').collect();
        let (leaf, parents) = match segments.split_last() {
            Some((leaf, parents)) => (*leaf, parents),
            None => (path, &[][..]),
        };
        let common = self
            .open
            .iter()
            .zip(parents.iter())
            .take_while(|(a, b)| a.as_str() == **b)
            .count();
        self.open.truncate(common);
        for (depth, parent) in parents.iter().enumerate().skip(common) {
            let indent = " ".repeat(base_indent + 2 * depth);
            self.raw(format!("{indent}{parent}:"), "");
            self.open.push((*parent).to_owned());
        }
        let indent = " ".repeat(base_indent + 2 * parents.len());
        let text = if value.is_empty() {
            format!("{indent}{leaf}:")
        } else {
            format!("{indent}{leaf}: {value}")
        };
        self.raw(text, comment);
    }

    fn finish(self) -> String {
        let width = self
            .lines
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .map(|(t, _)| t.chars().count())
            .max()
            .unwrap_or(0)
            .min(48);
        let mut s = String::new();
        for (text, comment) in self.lines {
            s.push_str(&text);
            if !comment.is_empty() {
                let pad = width.saturating_sub(text.chars().count()) + 2;
                s.push_str(&" ".repeat(pad));
                s.push_str("# ");
                s.push_str(&comment);
            }
            s.push('\n');
        }
        s
    }
}

fn origin_text(config: &Config, origin: &Origin) -> String {
    match origin {
        Origin::File { line, .. } => format!("line {line}"),
        Origin::Env { var } => format!("env {var}"),
        Origin::Global { key } => match config.origin(key) {
            Some(Origin::File { line, .. }) => format!("from {key} (line {line})"),
            Some(Origin::Env { var }) => format!("from {key} (env {var})"),
            _ => format!("from {key}"),
        },
    }
}

fn note_text(note: Note) -> &'static str {
    match note {
        Note::None => "",
        Note::Unused => "; unused",
        Note::Legacy(_) => "; legacy, ignored",
    }
}

/// Value column and comment for one key, or `None` to leave the key out.
fn describe<T>(
    config: &Config,
    spec: &KeySpec<T>,
    target: &T,
    path: &str,
    show_default: bool,
) -> Option<(String, String)> {
    let slot = (spec.get)(target);
    if slot.is_set() {
        let origin = config
            .origin(path)
            .map(|o| origin_text(config, o))
            .unwrap_or_else(|| "set".to_owned());
        if spec.zero_is_default && slot.is_zero() {
            let default = keys::default_text(spec.default).unwrap_or_default();
            return Some((
                default,
                format!("{origin}: 0 means the default{}", note_text(spec.note)),
            ));
        }
        let value = show(&slot).unwrap_or_default();
        return Some((value, format!("{origin}{}", note_text(spec.note))));
    }
    if !show_default || matches!(spec.note, Note::Legacy(_)) {
        return None;
    }
    match spec.default {
        Dflt::None => None,
        Dflt::Text(t) => Some((
            String::new(),
            format!("default: {t}{}", note_text(spec.note)),
        )),
        Dflt::Str(s) => Some((yaml_string(s), format!("default{}", note_text(spec.note)))),
        other => Some((
            keys::default_text(other).unwrap_or_default(),
            format!("default{}", note_text(spec.note)),
        )),
    }
}

fn applies(spec: Applies, kind: PluginKind) -> bool {
    match spec {
        Applies::All => true,
        Applies::Handler => kind == PluginKind::Github,
        Applies::Receiver => kind == PluginKind::GithubReceiver,
    }
}

fn render_plugin(out: &mut Out, config: &Config, i: usize, p: &Plugin) {
    let origin = |k: &str| {
        config
            .origin(&format!("plugins[{i}].{k}"))
            .map(|o| origin_text(config, o))
            .unwrap_or_default()
    };
    out.open.clear();
    out.raw(
        format!("  - name: {}", yaml_string(&p.name)),
        origin("name"),
    );
    out.raw(format!("    plugin: {}", p.kind), origin("plugin"));
    for spec in keys::plugin_keys() {
        if !applies(spec.applies, p.kind) {
            continue;
        }
        let path = format!("plugins[{i}].{}", spec.path);
        if let Some((value, comment)) = describe(config, spec, p, &path, true) {
            out.entry(4, spec.path, &value, comment);
        }
    }
}

/// Renders the effective settings; secrets are `[redacted]`.
///
/// Keys without a value and without a default are left out; every other line ends with a
/// comment saying where the value came from.
pub fn render(config: &Config) -> String {
    let mut out = Out::default();
    out.raw(
        format!(
            "# Effective settings of {}, after environment overrides and defaults.",
            config.source_name
        ),
        "",
    );
    out.raw(
        "# Secrets are shown as [redacted]. \"line N\": set in the file; \"env VAR\": set by an",
        "",
    );
    out.raw(
        "# environment variable; \"from KEY\": copied from a global key; \"default\": not set.",
        "",
    );
    for spec in keys::global_keys() {
        let show_default = !spec.path.contains("database");
        if let Some((value, comment)) = describe(config, spec, config, spec.path, show_default) {
            out.entry(0, spec.path, &value, comment);
        }
    }
    if config.plugins.is_empty() {
        out.open.clear();
        out.raw("plugins: []", "");
    } else {
        out.open.clear();
        out.raw("plugins:", "");
        for (i, p) in config.plugins.iter().enumerate() {
            render_plugin(&mut out, config, i, p);
        }
    }
    let vars: BTreeSet<&str> = config
        .origins()
        .filter_map(|(_, o)| match o {
            Origin::Env { var } => Some(var.as_str()),
            _ => None,
        })
        .collect();
    if vars.is_empty() {
        out.raw("# No environment variables applied.", "");
    } else {
        out.raw("# Environment variables applied:", "");
        for var in vars {
            out.raw(format!("#   {var}"), "");
        }
    }
    out.finish()
}
