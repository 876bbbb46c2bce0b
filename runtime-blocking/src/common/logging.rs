//! JSON logs, as Anklet writes them: to stdout, or to `<log.file_dir>/anklet.log`; the level
//! from `LOG_LEVEL` (debug, info, warn, error; default info).
//!
//! With `log.split_by_plugin: true` each plugin also gets a file of its own,
//! `<log.file_dir>/anklet-<name>.log` (Anklet's name; in the working directory when
//! `log.file_dir` is unset, as Anklet does), always at debug level as in Anklet. A line belongs
//! to a plugin when the event, or a span it is in, has a `plugin` field naming a configured
//! plugin: it goes to that plugin's file and to no other. Every other line goes to the main
//! log. The routing is per-layer filters on one registry: one JSON layer per file, each
//! enabled only for its own lines ([`Route`]).
//!
//! Files are opened once at start (a file that cannot be opened is a start-up error naming
//! it) and written without a user-space buffer, one `write` per line, so a line is in the file
//! as soon as it is logged and nothing is left to flush when the process exits.

use anklet_core::config::Config;
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::{Event, Metadata, Subscriber, span};
use tracing_subscriber::Registry;
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
use tracing_subscriber::layer::{Context as LayerContext, Filter, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The field whose value names the plugin a line belongs to (handlers' and receivers' notices
/// carry it).
const PLUGIN_FIELD: &str = "plugin";

/// Installs the global subscriber for a daemon run with `config`: the main log (stdout, or
/// `anklet.log` in `log.file_dir`) and, with `log.split_by_plugin`, one file per plugin. A
/// second call (tests) keeps the first subscriber.
pub fn init_daemon(config: &Config, env: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let file_dir = config.log_dir().map(|d| super::expand_home(d, env));
    // The aggregator runs no plugin, so it has no plugin files (as in Anklet).
    let split = config.log.split_by_plugin.unwrap_or(false) && !config.metrics.is_aggregator();
    let plugins: Vec<String> = if split {
        config.plugins.iter().map(|p| p.name.clone()).collect()
    } else {
        Vec::new()
    };
    install(file_dir.as_deref(), &plugins, env)
}

/// Installs the global subscriber with the main log only: stdout, or `anklet.log` in
/// `file_dir` (the demo's logs). A second call (tests) keeps the first.
pub fn init(file_dir: Option<&Path>, env: &BTreeMap<String, String>) -> anyhow::Result<()> {
    install(file_dir, &[], env)
}

/// The path of plugin `name`'s own log file: `<file_dir>/anklet-<name>.log`, or
/// `anklet-<name>.log` in the working directory when there is no `file_dir` (Anklet joins an
/// empty `file_dir` the same way).
pub fn plugin_log_path(file_dir: Option<&Path>, name: &str) -> PathBuf {
    let file = format!("anklet-{name}.log");
    file_dir.map_or_else(|| PathBuf::from(&file), |d| d.join(&file))
}

fn install(
    file_dir: Option<&Path>,
    plugins: &[String],
    env: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let level = env
        .get("LOG_LEVEL")
        .map(|l| l.to_ascii_lowercase())
        .filter(|l| ["trace", "debug", "info", "warn", "error"].contains(&l.as_str()))
        .unwrap_or_else(|| "info".to_owned());
    // Anklet's plugin files always log at debug.
    let plugin_level = if level == "trace" { "trace" } else { "debug" };
    let main = match file_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create log.file_dir {}", dir.display()))?;
            Some(open_log(&dir.join("anklet.log"))?)
        }
        None => None,
    };
    let mut files = Vec::with_capacity(plugins.len());
    for name in plugins {
        let path = plugin_log_path(file_dir, name);
        let file = open_log(&path).context("log.split_by_plugin is set")?;
        files.push((name.clone(), path, file));
    }
    let own: Arc<BTreeSet<String>> = Arc::new(plugins.iter().cloned().collect());
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = Vec::new();
    let main_filter = levels(&level).and(Route::new(&own, None));
    layers.push(match main {
        Some(file) => json_layer(Mutex::new(file), main_filter),
        None => json_layer(std::io::stdout, main_filter),
    });
    let mut opened = Vec::with_capacity(files.len());
    for (name, path, file) in files {
        let filter = levels(plugin_level).and(Route::new(&own, Some(name.clone())));
        layers.push(json_layer(Mutex::new(file), filter));
        opened.push((name, path));
    }
    if !own.is_empty() {
        layers.push(PluginSpans.boxed());
    }
    if tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .is_ok()
    {
        for (name, path) in opened {
            tracing::info!(file = %path.display(), "writing {name} logs to {}", path.display());
        }
    }
    Ok(())
}

/// Opens a log file to append to (created 0644, as Anklet does).
fn open_log(path: &Path) -> anyhow::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    options
        .open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))
}

/// The level filter of a log: `level` for our crates, dependencies (HTTP clients, pools) only
/// warn. Fixed targets, so `Targets` (prefix match, as an `EnvFilter` directive) rather than
/// `EnvFilter`, whose directive syntax links the regex engine into both daemons.
fn levels(level: &str) -> Targets {
    let level = level.parse().unwrap_or(LevelFilter::INFO);
    Targets::new()
        .with_default(LevelFilter::WARN)
        .with_targets([
            ("anklet", level),
            ("anklet_lite", level),
            ("anklet_core", level),
        ])
}

/// One JSON log writing through `writer`, showing the lines `filter` lets through.
fn json_layer<W, F>(writer: W, filter: F) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
    F: Filter<Registry> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_writer(writer)
        .with_filter(filter)
        .boxed()
}

/// A per-layer filter that lets through the lines of one plugin (`Some(name)`), or the lines
/// of no configured plugin (`None`: the main log).
struct Route {
    /// The plugins that have a file of their own.
    own: Arc<BTreeSet<String>>,
    /// Whose lines this layer writes.
    wants: Option<String>,
}

impl Route {
    fn new(own: &Arc<BTreeSet<String>>, wants: Option<String>) -> Self {
        Self {
            own: Arc::clone(own),
            wants,
        }
    }

    /// The configured plugin `event` belongs to: its own `plugin` field, else the innermost
    /// span around it that has one.
    fn plugin_of<S>(&self, event: &Event<'_>, cx: &LayerContext<'_, S>) -> Option<String>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut found = PluginVisitor(None);
        event.record(&mut found);
        let name = found.0.or_else(|| {
            cx.event_scope(event)?
                .find_map(|span| span.extensions().get::<SpanPlugin>().map(|p| p.0.clone()))
        })?;
        self.own.contains(&name).then_some(name)
    }
}

impl<S> Filter<S> for Route
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, _meta: &Metadata<'_>, _cx: &LayerContext<'_, S>) -> bool {
        // Spans are shown by every log; events are routed by their fields.
        true
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &LayerContext<'_, S>) -> bool {
        self.own.is_empty() || self.plugin_of(event, cx) == self.wants
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // No level is ruled out here, so the level filter it is combined with gives the hint
        // (without one, every disabled `debug!` would be looked at at run time).
        Some(LevelFilter::TRACE)
    }
}

/// The `plugin` field of a span, kept in its extensions so the events inside it are routed to
/// that plugin's file.
struct SpanPlugin(String);

/// Records the `plugin` field of every span ([`SpanPlugin`]).
struct PluginSpans;

impl<S> Layer<S> for PluginSpans
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: LayerContext<'_, S>) {
        let mut found = PluginVisitor(None);
        attrs.record(&mut found);
        if let (Some(name), Some(span)) = (found.0, cx.span(id)) {
            span.extensions_mut().replace(SpanPlugin(name));
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: LayerContext<'_, S>) {
        let mut found = PluginVisitor(None);
        values.record(&mut found);
        if let (Some(name), Some(span)) = (found.0, cx.span(id)) {
            span.extensions_mut().replace(SpanPlugin(name));
        }
    }
}

/// Finds the `plugin` field among an event's or a span's fields.
struct PluginVisitor(Option<String>);

impl Visit for PluginVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == PLUGIN_FIELD {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == PLUGIN_FIELD {
            self.0 = Some(format!("{value:?}"));
        }
    }
}
