//! Global-to-plugin inheritance (Anklet's main.go after `LoadInEnvs`), with its weak points
//! fixed: `global_database_max_retries|retry_delay|retry_backoff_factor`, the cluster/TLS
//! switches and `global_template_disk_buffer` are applied (a plugin's own value wins), and
//! `global_receiver_secret` only fills receivers that have no `secret` instead of overwriting it.

use super::model::{Config, Origin, PluginKind, non_empty};
use crate::secret::Secret;

fn global(key: &str) -> Origin {
    Origin::Global {
        key: key.to_owned(),
    }
}

fn secret_set(s: &Option<Secret>) -> bool {
    s.as_ref().is_some_and(|s| !s.is_empty())
}

/// Host part of a `host_path[:guest_name]` mount, which is what makes two mounts the same.
fn host_part(mount: &str) -> &str {
    mount.split(':').next().unwrap_or(mount)
}

pub(crate) fn apply_globals(config: &mut Config) {
    let g = config.global_database.clone();
    let mut origins = Vec::new();
    for (i, p) in config.plugins.iter_mut().enumerate() {
        let mut set = |key: &str, from: &str| {
            origins.push((format!("plugins[{i}].{key}"), global(from)));
        };
        if !secret_set(&p.token) && secret_set(&config.global_token) {
            p.token = config.global_token.clone();
            set("token", "global_token");
        }
        if !secret_set(&p.private_key) && secret_set(&config.global_private_key) {
            p.private_key = config.global_private_key.clone();
            set("private_key", "global_private_key");
        }

        // Connection fields: the global wins when set, as in Anklet (it is how one Redis is
        // pointed at from many hosts without editing every entry).
        let db = &mut p.database;
        if let Some(url) = non_empty(&g.url) {
            db.url = Some(url.to_owned());
            set("database.url", "global_database_url");
        }
        if let Some(port) = g.port.filter(|p| *p != 0) {
            db.port = Some(port);
            set("database.port", "global_database_port");
        }
        if let Some(user) = non_empty(&g.user) {
            db.user = Some(user.to_owned());
            set("database.user", "global_database_user");
        }
        if secret_set(&g.password) {
            db.password = g.password.clone();
            set("database.password", "global_database_password");
        }
        if let Some(index) = g.database.filter(|d| *d != 0) {
            db.database = Some(index);
            set("database.database", "global_database_database");
        }
        // Tuning fields: the plugin's own value wins (Anklet ignored the globals entirely).
        if db.max_retries.is_none() && g.max_retries.is_some() {
            db.max_retries = g.max_retries;
            set("database.max_retries", "global_database_max_retries");
        }
        if db.retry_delay.is_none() && g.retry_delay.is_some() {
            db.retry_delay = g.retry_delay;
            set("database.retry_delay", "global_database_retry_delay");
        }
        if db.retry_backoff_factor.is_none() && g.retry_backoff_factor.is_some() {
            db.retry_backoff_factor = g.retry_backoff_factor;
            set(
                "database.retry_backoff_factor",
                "global_database_retry_backoff_factor",
            );
        }
        if db.cluster_mode.is_none() && g.cluster_mode.is_some() {
            db.cluster_mode = g.cluster_mode;
            set("database.cluster_mode", "global_database_cluster_mode");
        }
        if db.tls_enabled.is_none() && g.tls_enabled.is_some() {
            db.tls_enabled = g.tls_enabled;
            set("database.tls_enabled", "global_database_tls_enabled");
        }
        if db.tls_insecure.is_none() && g.tls_insecure.is_some() {
            db.tls_insecure = g.tls_insecure;
            set("database.tls_insecure", "global_database_tls_insecure");
        }

        match p.kind {
            PluginKind::GithubReceiver => {
                if !secret_set(&p.secret) && secret_set(&config.global_receiver_secret) {
                    p.secret = config.global_receiver_secret.clone();
                    set("secret", "global_receiver_secret");
                }
            }
            PluginKind::Github => {
                let own = p.template_disk_buffer.filter(|v| *v != 0.0);
                if own.is_none()
                    && let Some(buffer) = config.global_template_disk_buffer.filter(|v| *v != 0.0)
                {
                    p.template_disk_buffer = Some(buffer);
                    set("template_disk_buffer", "global_template_disk_buffer");
                }
                if config.global_skip_cpu_and_memory_resource_checks == Some(true)
                    && p.skip_cpu_and_memory_resource_checks != Some(true)
                {
                    p.skip_cpu_and_memory_resource_checks = Some(true);
                    set(
                        "skip_cpu_and_memory_resource_checks",
                        "global_skip_cpu_and_memory_resource_checks",
                    );
                }
                if let Some(globals) = config
                    .global_host_to_guest_folder_mounts
                    .as_ref()
                    .filter(|g| !g.is_empty())
                {
                    let own = p.host_to_guest_folder_mounts.take();
                    let mut merged: Vec<String> = Vec::new();
                    for m in globals.iter().chain(own.iter().flatten()) {
                        if !merged.iter().any(|x| host_part(x) == host_part(m)) {
                            merged.push(m.clone());
                        }
                    }
                    if own.is_none() {
                        set(
                            "host_to_guest_folder_mounts",
                            "global_host_to_guest_folder_mounts",
                        );
                    }
                    p.host_to_guest_folder_mounts = Some(merged);
                }
            }
        }
    }
    config.origins.extend(origins);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_dedup_by_host_path() {
        assert_eq!(host_part("/a/b:guest"), "/a/b");
        assert_eq!(host_part("/a/b"), "/a/b");
    }
}
