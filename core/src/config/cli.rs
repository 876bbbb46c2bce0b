//! The pure half of the command line both binaries share, so `anklet` and `anklet-lite`
//! behave identically and their `main.rs` only does I/O.

use std::collections::BTreeMap;
use std::ffi::OsString;

use super::keys::CONFIG_FILE_NAME_ENV;
use super::render::render;

/// What `check-config` prints and whether the config is usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// True when the config loads and validates (the process exits 0).
    pub valid: bool,
    /// The redacted effective settings (empty when invalid).
    pub stdout: String,
    /// Warnings, errors and a one-line verdict.
    pub stderr: String,
}

/// Loads `bytes` with `env` and reports the result the way `check-config` prints it.
pub fn check(source_name: &str, bytes: &[u8], env: &BTreeMap<String, String>) -> CheckReport {
    let mut stderr = String::new();
    match super::load(source_name, bytes, env) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                stderr.push_str(&format!("warning: {w}\n"));
            }
            let n = loaded.config.plugins.len();
            stderr.push_str(&format!(
                "{source_name}: config is valid ({n} plugin{}, {} warning{})\n",
                plural(n),
                loaded.warnings.len(),
                plural(loaded.warnings.len())
            ));
            CheckReport {
                valid: true,
                stdout: render(&loaded.config),
                stderr,
            }
        }
        Err(failure) => {
            for w in &failure.warnings {
                stderr.push_str(&format!("warning: {w}\n"));
            }
            for e in &failure.errors {
                stderr.push_str(&format!("error: {e}\n"));
            }
            let n = failure.errors.len();
            stderr.push_str(&format!(
                "{source_name}: config is invalid ({n} error{})\n",
                plural(n)
            ));
            CheckReport {
                valid: false,
                stdout: String::new(),
                stderr,
            }
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Anklet's default config path, `~/.config/anklet/<ANKLET_CONFIG_FILE_NAME or config.yml>`,
/// or `None` when `HOME` is not set (the caller then asks for `-c`).
pub fn default_config_path(env: &BTreeMap<String, String>) -> Option<String> {
    let home = env.get("HOME").filter(|h| !h.is_empty())?;
    let name = env
        .get(CONFIG_FILE_NAME_ENV)
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .unwrap_or("config.yml");
    Some(format!(
        "{}/.config/anklet/{name}",
        home.trim_end_matches('/')
    ))
}

/// Rewrites Go-flag spellings Anklet users have in scripts (`-version`, `-help`) into the
/// double-dash forms clap understands; everything else passes through untouched.
pub fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .map(|a| match a.to_str() {
            Some("-version") => OsString::from("--version"),
            Some("-help") => OsString::from("--help"),
            _ => a,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path() {
        let mut env = BTreeMap::new();
        assert_eq!(default_config_path(&env), None);
        env.insert("HOME".to_owned(), "/Users/me/".to_owned());
        assert_eq!(
            default_config_path(&env).as_deref(),
            Some("/Users/me/.config/anklet/config.yml")
        );
        env.insert(CONFIG_FILE_NAME_ENV.to_owned(), "org.yml".to_owned());
        assert_eq!(
            default_config_path(&env).as_deref(),
            Some("/Users/me/.config/anklet/org.yml")
        );
    }

    #[test]
    fn go_style_flags() {
        let args = normalize_args(["anklet", "-version", "-c", "x"].map(OsString::from));
        assert_eq!(args, ["anklet", "--version", "-c", "x"].map(OsString::from));
    }
}
