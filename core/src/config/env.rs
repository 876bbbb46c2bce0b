//! Environment overrides, applied after the file (Anklet's `LoadInEnvs`), from a map the
//! runtime hands in so this stays pure and testable.
//!
//! Unlike Anklet: every variable its README documents is implemented, booleans accept
//! `true/false/1/0/yes/no` in any case and reject anything else, empty values count as unset
//! everywhere, and unknown `ANKLET_*` variables are reported.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{ConfigError, Diag, WarningKind};
use super::keys::{
    self, CONFIG_FILE_NAME_ENV, DATABASE_ENABLED_ENV, JOB_RETRY_ATTEMPTS_ENV, KeySpec, Kind,
    LEGACY_DB_ENV, Note,
};
use super::model::{Config, Origin, PluginKind};
use super::suggest::did_you_mean;
use super::value::{Parsed, from_env, store};

fn env_error<T>(diag: &mut Diag, var: &str, path: &str, spec: &KeySpec<T>, bad: super::value::Bad) {
    diag.errors.push(ConfigError::Env {
        var: var.to_owned(),
        path: path.to_owned(),
        expected: bad.expected,
        found: if spec.is_secret() { None } else { bad.found },
        hint: bad.hint,
    });
}

/// A non-empty value of `var`, marking it as read.
fn take<'a>(
    env: &'a BTreeMap<String, String>,
    var: &str,
    consumed: &mut BTreeSet<String>,
) -> Option<&'a str> {
    let value = env.get(var)?;
    consumed.insert(var.to_owned());
    (!value.is_empty()).then_some(value.as_str())
}

pub(crate) fn apply(config: &mut Config, env: &BTreeMap<String, String>, diag: &mut Diag) {
    let mut consumed = BTreeSet::new();
    consumed.insert(CONFIG_FILE_NAME_ENV.to_owned());

    for spec in keys::global_keys() {
        let Some(var) = keys::global_env_name(spec) else {
            continue;
        };
        let Some(text) = take(env, &var, &mut consumed) else {
            continue;
        };
        set_global(config, spec, &var, text, diag);
    }

    // Seed 000's README names, from before the `global_` prefix.
    for (legacy, path) in LEGACY_DB_ENV {
        let Some(text) = take(env, legacy, &mut consumed) else {
            continue;
        };
        let current = format!("ANKLET_{}", keys::env_suffix(path));
        if env.get(&current).is_some_and(|v| !v.is_empty()) {
            diag.warn(
                WarningKind::Legacy,
                legacy,
                None,
                format!(
                    "legacy name of {current}, which is also set and wins; this one is ignored"
                ),
            );
            continue;
        }
        diag.warn(
            WarningKind::Legacy,
            legacy,
            None,
            format!("legacy name; it still sets `{path}`, but rename it to {current}"),
        );
        if let Some(spec) = keys::global_key(path) {
            set_global(config, spec, legacy, text, diag);
        }
    }
    if take(env, DATABASE_ENABLED_ENV, &mut consumed).is_some() {
        diag.warn(
            WarningKind::Legacy,
            DATABASE_ENABLED_ENV,
            None,
            "legacy switch from early Anklet; it is ignored: a database is used whenever a url is set",
        );
    }

    if let Some(text) = take(env, JOB_RETRY_ATTEMPTS_ENV, &mut consumed) {
        match from_env(Kind::U32, text, false) {
            Ok(Parsed::Uint(n)) => {
                let n = u32::try_from(n).unwrap_or(u32::MAX);
                for (i, plugin) in config.plugins.iter_mut().enumerate() {
                    if plugin.kind == PluginKind::Github {
                        plugin.job_retry_attempts = Some(n);
                        config.origins.insert(
                            format!("plugins[{i}].job_retry_attempts"),
                            Origin::Env {
                                var: JOB_RETRY_ATTEMPTS_ENV.to_owned(),
                            },
                        );
                    }
                }
            }
            Ok(_) => {}
            Err(bad) => diag.errors.push(ConfigError::Env {
                var: JOB_RETRY_ATTEMPTS_ENV.to_owned(),
                path: "plugins[*].job_retry_attempts".to_owned(),
                expected: bad.expected,
                found: bad.found,
                hint: bad.hint,
            }),
        }
    }

    apply_plugins(config, env, &mut consumed, diag);

    let known: Vec<String> = keys::global_keys()
        .filter_map(keys::global_env_name)
        .chain(LEGACY_DB_ENV.iter().map(|(v, _)| (*v).to_owned()))
        .chain(
            [
                CONFIG_FILE_NAME_ENV,
                JOB_RETRY_ATTEMPTS_ENV,
                DATABASE_ENABLED_ENV,
            ]
            .map(str::to_owned),
        )
        .collect();
    for var in env.keys() {
        if !var.starts_with("ANKLET_") || consumed.contains(var) {
            continue;
        }
        let mut message = "not a variable anklet reads; it is ignored".to_owned();
        if let Some(s) = did_you_mean(var, known.iter().map(String::as_str)) {
            message.push_str(&format!(" (did you mean {s}?)"));
        }
        diag.warn(WarningKind::UnknownEnv, var, None, message);
    }
}

fn set_global(
    config: &mut Config,
    spec: &'static KeySpec<Config>,
    var: &str,
    text: &str,
    diag: &mut Diag,
) {
    match from_env(spec.kind, text, spec.is_secret()) {
        Ok(value) => {
            store((spec.get_mut)(config), value);
            config.origins.insert(
                spec.path.to_owned(),
                Origin::Env {
                    var: var.to_owned(),
                },
            );
            if let Note::Legacy(message) = spec.note {
                diag.warn(WarningKind::Legacy, var, None, message);
            }
        }
        Err(bad) => env_error(diag, var, spec.path, spec, bad),
    }
}

/// `<PREFIX>_<KEY>` overrides, prefix derived from each plugin's name (Anklet's rule).
fn apply_plugins(
    config: &mut Config,
    env: &BTreeMap<String, String>,
    consumed: &mut BTreeSet<String>,
    diag: &mut Diag,
) {
    let specs: Vec<_> = keys::plugin_keys().collect();
    for i in 0..config.plugins.len() {
        let Some(plugin) = config.plugins.get_mut(i) else {
            continue;
        };
        let prefix = keys::env_prefix(&plugin.name);
        if prefix.is_empty() {
            continue;
        }
        for identity in ["NAME", "PLUGIN"] {
            let var = format!("{prefix}_{identity}");
            if take(env, &var, consumed).is_some() {
                diag.warn(
                    WarningKind::NotApplicable,
                    &var,
                    None,
                    format!(
                        "`{}` cannot be changed from the environment (it decides which variables apply); it is ignored",
                        identity.to_ascii_lowercase()
                    ),
                );
            }
        }
        for spec in &specs {
            let Some(var) = keys::plugin_env_name(spec, &prefix) else {
                continue;
            };
            let Some(text) = take(env, &var, consumed) else {
                continue;
            };
            let path = format!("plugins[{i}].{}", spec.path);
            let fits = match spec.applies {
                keys::Applies::All => true,
                keys::Applies::Handler => plugin.kind == PluginKind::Github,
                keys::Applies::Receiver => plugin.kind == PluginKind::GithubReceiver,
            };
            if !fits {
                diag.warn(
                    WarningKind::NotApplicable,
                    &var,
                    None,
                    format!(
                        "sets `{}`, which only applies to {}; it is ignored for `{}`",
                        spec.path,
                        spec.applies.label(),
                        plugin.name
                    ),
                );
                continue;
            }
            match from_env(spec.kind, text, spec.is_secret()) {
                Ok(value) => {
                    store((spec.get_mut)(plugin), value);
                    config
                        .origins
                        .insert(path, Origin::Env { var: var.clone() });
                    if let Note::Legacy(message) = spec.note {
                        diag.warn(WarningKind::Legacy, &var, None, message);
                    }
                }
                Err(bad) => env_error(diag, &var, &path, spec, bad),
            }
        }
    }
}
