//! Anklet's `config.yml`, read purely: bytes and an env map in, a typed [`Config`] (or every
//! error with its file, key path, line and fix) out.
//!
//! Loading runs Anklet's order: YAML ([`parse`]) -> environment ([`Config::apply_env`]) ->
//! global values copied into plugins ([`Config::apply_globals`]) -> validation
//! ([`Config::validate`]); defaults are applied by the model's effective-value methods.
//! [`load`] does all four. Unknown keys are warnings (Anklet ignored them silently), with a
//! did-you-mean. [`render`] prints the effective settings with secrets redacted.
//!
//! The runtimes read the file and the process environment and hand both in; nothing here
//! touches the file system, the environment or a clock.

mod cli;
pub mod defaults;
mod env;
mod error;
mod keys;
mod model;
mod parse;
mod render;
mod resolve;
mod suggest;
mod validate;
mod value;
mod yaml;

use std::collections::BTreeMap;

pub use cli::{CheckReport, check, default_config_path, normalize_args};
pub use error::{ConfigError, LoadFailure, Warning, WarningKind};
pub use keys::{CONFIG_FILE_NAME_ENV, KeyInfo, env_prefix, key_reference};
pub use model::{
    Config, Database, DatabaseSettings, LogConfig, MetricsConfig, Origin, Plugin, PluginKind,
    RunnerRegistration, Scope, Workflows,
};
pub use render::render;

/// A config that loaded, with the warnings worth showing the operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The config.
    pub config: Config,
    /// Unknown keys, legacy keys, suspicious values, in the order found.
    pub warnings: Vec<Warning>,
}

/// Parses `config.yml` content without env, inheritance or validation. `source_name` (the
/// path, usually) is used in every message. Accepts `&str`, `String`, `&[u8]`, `Vec<u8>`.
pub fn parse(source_name: &str, content: impl AsRef<[u8]>) -> Result<Loaded, LoadFailure> {
    let (config, warnings) = parse::parse(source_name, content.as_ref())?;
    Ok(Loaded { config, warnings })
}

/// Parses, applies `env`, copies globals into plugins and validates, in Anklet's order.
pub fn load(
    source_name: &str,
    content: impl AsRef<[u8]>,
    env: &BTreeMap<String, String>,
) -> Result<Loaded, LoadFailure> {
    let Loaded {
        mut config,
        mut warnings,
    } = parse(source_name, content)?;
    let with_earlier = |mut failure: LoadFailure, earlier: &[Warning]| {
        let mut all = earlier.to_vec();
        all.append(&mut failure.warnings);
        failure.warnings = all;
        failure
    };
    match config.apply_env(env) {
        Ok(mut w) => warnings.append(&mut w),
        Err(f) => return Err(with_earlier(f, &warnings)),
    }
    config.apply_globals();
    match config.validate() {
        Ok(mut w) => warnings.append(&mut w),
        Err(f) => return Err(with_earlier(f, &warnings)),
    }
    Ok(Loaded { config, warnings })
}

impl Config {
    /// Applies `ANKLET_*` and `<PREFIX>_<KEY>` environment overrides (see the docs for the
    /// full list). Errors name the variable and never echo a secret's value.
    pub fn apply_env(
        &mut self,
        env: &BTreeMap<String, String>,
    ) -> Result<Vec<Warning>, LoadFailure> {
        let mut diag = error::Diag::new(&self.source_name);
        env::apply(self, env, &mut diag);
        diag.finish(()).map(|((), w)| w)
    }

    /// Copies `global_*` values into the plugins (token, key, database, receiver secret,
    /// disk buffer, resource-check switch, mounts), recording each as [`Origin::Global`].
    pub fn apply_globals(&mut self) {
        resolve::apply_globals(self);
    }

    /// Checks that the config makes sense; call after [`Config::apply_globals`].
    pub fn validate(&self) -> Result<Vec<Warning>, LoadFailure> {
        let mut diag = error::Diag::new(&self.source_name);
        validate::validate(self, &mut diag);
        diag.finish(()).map(|((), w)| w)
    }
}
