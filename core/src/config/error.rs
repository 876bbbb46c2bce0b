//! Errors and warnings of config loading.
//!
//! Every message names the source, the key path (`plugins[1].hook_id`) and the line and column
//! (or the environment variable) so an operator can go straight to the fix; values of secret
//! keys are never echoed.

use std::fmt;

/// Formats an optional hint as an indented second line.
struct Hint<'a>(&'a Option<String>);

impl fmt::Display for Hint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(h) => write!(f, "\n  hint: {h}"),
            None => Ok(()),
        }
    }
}

/// Formats `source:line:column`, dropping unknown parts.
struct At<'a> {
    source_name: &'a str,
    line: Option<u64>,
    column: Option<u64>,
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.source_name)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

fn at(source_name: &str, line: Option<u64>, column: Option<u64>) -> At<'_> {
    At {
        source_name,
        line,
        column,
    }
}

/// Formats ` (value from environment variable X)` style provenance.
struct Via<'a>(&'a Option<String>);

impl fmt::Display for Via<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, " ({v})"),
            None => Ok(()),
        }
    }
}

/// One reason a config cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file has no content (Anklet fails with a bare "EOF").
    #[error(
        "{source_name}: the config file is empty\n  hint: a config needs at least a `plugins:` list (or `metrics.aggregator: true`); see docs/configuration.md"
    )]
    Empty {
        /// Config source name.
        source_name: String,
    },

    /// The file is larger than any sane config; refuse before parsing.
    #[error(
        "{source_name}: the config file is {size} bytes, more than the {limit} bytes a config may have\n  hint: check that -c points at config.yml and not at another file"
    )]
    TooLarge {
        /// Config source name.
        source_name: String,
        /// Size in bytes.
        size: usize,
        /// Limit in bytes.
        limit: usize,
    },

    /// The bytes are not UTF-8.
    #[error(
        "{}: the config file is not valid UTF-8\n  hint: save the file as UTF-8",
        at(.source_name, Some(*.line), Some(*.column))
    )]
    NotUtf8 {
        /// Config source name.
        source_name: String,
        /// 1-based line of the first bad byte.
        line: u64,
        /// 1-based column (in bytes) of the first bad byte.
        column: u64,
    },

    /// The YAML itself does not parse.
    #[error(
        "{}: invalid YAML: {message}{}",
        at(.source_name, *.line, *.column),
        Hint(.hint)
    )]
    Syntax {
        /// Config source name.
        source_name: String,
        /// 1-based line, when the parser knows it.
        line: Option<u64>,
        /// 1-based column, when the parser knows it.
        column: Option<u64>,
        /// Parser message.
        message: String,
        /// How to fix it, when obvious.
        hint: Option<String>,
    },

    /// A value has the wrong type.
    #[error(
        "{}: `{path}`: expected {expected}, found {found}{}",
        at(.source_name, Some(*.line), Some(*.column)),
        Hint(.hint)
    )]
    WrongType {
        /// Config source name.
        source_name: String,
        /// Key path, e.g. `plugins[1].hook_id`.
        path: String,
        /// 1-based line of the value.
        line: u64,
        /// 1-based column of the value.
        column: u64,
        /// What the key takes.
        expected: String,
        /// What was there (the value is omitted for secret keys).
        found: String,
        /// How to fix it, when obvious.
        hint: Option<String>,
    },

    /// The config parses but makes no sense (missing name, bad scope, zero max_vms, ...).
    #[error(
        "{}: `{path}`: {message}{}{}",
        at(.source_name, *.line, *.column),
        Via(.via),
        Hint(.hint)
    )]
    Invalid {
        /// Config source name.
        source_name: String,
        /// Key path the problem is about.
        path: String,
        /// 1-based line of the key, or of the plugin entry when the key is missing.
        line: Option<u64>,
        /// 1-based column.
        column: Option<u64>,
        /// Where a value not written in the file came from (env var, global key).
        via: Option<String>,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },

    /// An environment variable does not hold what its key takes.
    #[error(
        "environment variable {var} (sets `{path}`): expected {expected}{}{}",
        Found(.found),
        Hint(.hint)
    )]
    Env {
        /// Variable name.
        var: String,
        /// Key path it sets.
        path: String,
        /// What the key takes.
        expected: String,
        /// The value, quoted; `None` for secret variables.
        found: Option<String>,
        /// How to fix it.
        hint: Option<String>,
    },
}

struct Found<'a>(&'a Option<String>);

impl fmt::Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, ", found {v}"),
            None => Ok(()),
        }
    }
}

impl ConfigError {
    /// The key path the error is about, if it is about one key.
    pub fn path(&self) -> Option<&str> {
        match self {
            ConfigError::WrongType { path, .. }
            | ConfigError::Invalid { path, .. }
            | ConfigError::Env { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The 1-based line in the file, when the error points into it.
    pub fn line(&self) -> Option<u64> {
        match self {
            ConfigError::NotUtf8 { line, .. } | ConfigError::WrongType { line, .. } => Some(*line),
            ConfigError::Syntax { line, .. } | ConfigError::Invalid { line, .. } => *line,
            _ => None,
        }
    }

    /// The suggested fix, if any.
    pub fn hint(&self) -> Option<&str> {
        match self {
            ConfigError::Syntax { hint, .. }
            | ConfigError::WrongType { hint, .. }
            | ConfigError::Invalid { hint, .. }
            | ConfigError::Env { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }
}

/// What kind of thing a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// A key nobody reads (typo?). Anklet ignores these silently.
    UnknownKey,
    /// A key or variable from an older Anklet that is accepted and does nothing.
    Legacy,
    /// A key that does not apply where it was written (e.g. `port` on a handler).
    NotApplicable,
    /// An `ANKLET_*` variable nobody reads.
    UnknownEnv,
    /// A legal value that is probably not what was meant.
    Suspicious,
}

/// Something worth telling the operator that does not stop anklet from starting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Category, for callers that filter.
    pub kind: WarningKind,
    /// Config source name.
    pub source_name: String,
    /// Key path or variable name the warning is about.
    pub path: String,
    /// 1-based line, when it points into the file.
    pub line: Option<u64>,
    /// 1-based column.
    pub column: Option<u64>,
    /// The message.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == WarningKind::UnknownEnv || (self.line.is_none() && is_env(&self.path)) {
            return write!(f, "environment variable {}: {}", self.path, self.message);
        }
        let at = At {
            source_name: &self.source_name,
            line: self.line,
            column: self.column,
        };
        write!(f, "{at}: `{}`: {}", self.path, self.message)
    }
}

fn is_env(path: &str) -> bool {
    !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Why loading failed: every error found at the failing stage, plus the warnings so far
/// (a typo warning often explains a "missing key" error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", ErrorList(.errors))]
pub struct LoadFailure {
    /// At least one error.
    pub errors: Vec<ConfigError>,
    /// Warnings collected before the failure.
    pub warnings: Vec<Warning>,
}

struct ErrorList<'a>(&'a [ConfigError]);

impl fmt::Display for ErrorList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Collects errors and warnings while a stage runs.
#[derive(Debug, Default)]
pub(crate) struct Diag {
    pub(crate) source_name: String,
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) warnings: Vec<Warning>,
}

impl Diag {
    pub(crate) fn new(source_name: &str) -> Self {
        Diag {
            source_name: source_name.to_owned(),
            ..Diag::default()
        }
    }

    pub(crate) fn warn(
        &mut self,
        kind: WarningKind,
        path: impl Into<String>,
        pos: Option<(u64, u64)>,
        message: impl Into<String>,
    ) {
        self.warnings.push(Warning {
            kind,
            source_name: self.source_name.clone(),
            path: path.into(),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            message: message.into(),
        });
    }

    pub(crate) fn wrong_type(
        &mut self,
        path: impl Into<String>,
        pos: (u64, u64),
        expected: impl Into<String>,
        found: impl Into<String>,
        hint: Option<String>,
    ) {
        self.errors.push(ConfigError::WrongType {
            source_name: self.source_name.clone(),
            path: path.into(),
            line: pos.0,
            column: pos.1,
            expected: expected.into(),
            found: found.into(),
            hint,
        });
    }

    /// Splits into the result of a stage.
    pub(crate) fn finish<T>(self, value: T) -> Result<(T, Vec<Warning>), LoadFailure> {
        if self.errors.is_empty() {
            Ok((value, self.warnings))
        } else {
            Err(LoadFailure {
                errors: self.errors,
                warnings: self.warnings,
            })
        }
    }
}
