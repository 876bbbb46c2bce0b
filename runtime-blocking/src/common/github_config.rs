//! A plugin's GitHub client config (scope, credentials, API URL, runner group, timeout), read
//! the way Anklet reads it.

use anklet_core::config::Plugin;
use anklet_core::github::auth::Credentials;
use anklet_core::github::client::ClientConfig;
use anklet_core::github::rest::ApiScope;
use anklet_core::secret::Secret;
use anyhow::{Context, anyhow};
use std::path::{Path, PathBuf};

/// The GitHub client config of a plugin.
pub fn client_config(plugin: &Plugin) -> anyhow::Result<ClientConfig> {
    let scope = plugin.scope().ok_or_else(|| {
        anyhow!(
            "plugin {}: set `owner` (and `repo`) or `enterprise`",
            plugin.name
        )
    })?;
    let key = match &plugin.private_key {
        Some(k) if !k.is_empty() => Some(read_private_key(k)?),
        _ => None,
    };
    let credentials = Credentials::from_config(
        plugin.token.as_ref(),
        plugin.app_id,
        plugin.installation_id,
        key.as_ref(),
    )
    .map_err(|e| anyhow!("plugin {}: {e}", plugin.name))?;
    let mut c = ClientConfig::new(ApiScope::from(scope), credentials);
    c.api_base_url = plugin.github_api_url().to_owned();
    c.runner_group = plugin.runner_group.clone().filter(|g| !g.is_empty());
    c.request_timeout = plugin.github_timeout();
    Ok(c)
}

/// Anklet's rule: `private_key` is a file path, or the PEM text itself if no such file.
fn read_private_key(value: &Secret) -> anyhow::Result<Secret> {
    let text = value.expose();
    if text.contains("-----BEGIN") {
        return Ok(value.clone());
    }
    let path = match (text.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(text),
    };
    let pem = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read the GitHub App private key file {}",
            path.display()
        )
    })?;
    Ok(Secret::new(pem))
}
