//! The runner files the emulator hands out (`.runner`, `.credentials`), and the JIT config
//! that packs them the way GitHub does: base64 of a JSON object of base64 file contents.

use crate::runners::Runner;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// Where the emulated runner service lives under the emulator's base URL.
pub const RUNNER_SERVICE_PATH: &str = "/_emulator/runner-service";

/// The `.runner` file of `runner`.
pub fn runner_file(base: &str, runner: &Runner, work_folder: &str) -> Value {
    json!({
        "agentId": runner.id,
        "agentName": runner.name,
        "poolId": 1,
        "poolName": "Default",
        "serverUrl": format!("{base}{RUNNER_SERVICE_PATH}"),
        "gitHubUrl": format!("{base}/{}", runner.scope.web_path()),
        "workFolder": work_folder,
        "ephemeral": runner.ephemeral,
    })
}

/// The `.credentials` file carrying the runner's session token (a secret).
pub fn credentials_file(token: &str) -> Value {
    json!({"scheme": "OAuthAccessToken", "data": {"token": token}})
}

/// `encoded_jit_config`: base64 of `{".runner": b64, ".credentials": b64,
/// ".credentials_rsaparams": b64}`.
pub fn encode(runner_file: &Value, credentials: &Value) -> String {
    let b64 = |v: &Value| STANDARD.encode(v.to_string());
    let files = json!({
        ".runner": b64(runner_file),
        ".credentials": b64(credentials),
        ".credentials_rsaparams": b64(&json!({})),
    });
    STANDARD.encode(files.to_string())
}

/// The files inside a JIT config, decoded (for tests and the emulated runner).
#[derive(Clone, Debug, PartialEq)]
pub struct JitFiles {
    /// `.runner`.
    pub runner: Value,
    /// `.credentials`.
    pub credentials: Value,
}

impl JitFiles {
    /// The runner id (`agentId`).
    pub fn runner_id(&self) -> Option<u64> {
        self.runner.get("agentId").and_then(Value::as_u64)
    }

    /// The runner service URL (`serverUrl`).
    pub fn server_url(&self) -> Option<&str> {
        self.runner.get("serverUrl").and_then(Value::as_str)
    }

    /// The session token (`.credentials` `data.token`).
    pub fn token(&self) -> Option<&str> {
        self.credentials
            .get("data")
            .and_then(|d| d.get("token"))
            .and_then(Value::as_str)
    }
}

/// Decodes an `encoded_jit_config`; `None` when it is not one.
pub fn decode(encoded: &str) -> Option<JitFiles> {
    let outer: Value = serde_json::from_slice(&STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let file = |name: &str| -> Option<Value> {
        let b = STANDARD.decode(outer.get(name)?.as_str()?).ok()?;
        serde_json::from_slice(&b).ok()
    };
    Some(JitFiles {
        runner: file(".runner")?,
        credentials: file(".credentials")?,
    })
}
