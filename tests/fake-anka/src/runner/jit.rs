//! The JIT config: base64 of a JSON object mapping runner file names to base64 file contents, as
//! GitHub (and the emulator) issue it. `.runner` gives `serverUrl`, `agentId`, `agentName`;
//! `.credentials` gives the bearer token. Token mode builds the same shape from the files
//! `register` stored, so both modes start the runner the same way.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;

use crate::error::AnkaError;

/// What the runner needs from its config. `Debug` hides the token.
#[derive(Clone)]
pub struct RunnerConfig {
    /// `<emulator base>/_emulator/runner-service`.
    pub server_url: String,
    /// The runner's id.
    pub agent_id: u64,
    /// The runner's name.
    pub agent_name: String,
    /// The runner session token (a secret: never logged).
    pub token: String,
}

impl fmt::Debug for RunnerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunnerConfig")
            .field("server_url", &self.server_url)
            .field("agent_id", &self.agent_id)
            .field("agent_name", &self.agent_name)
            .field("token", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunnerFile {
    server_url: String,
    agent_id: u64,
    agent_name: String,
}

#[derive(Deserialize)]
struct CredentialsFile {
    data: CredentialsData,
}

#[derive(Deserialize)]
struct CredentialsData {
    token: String,
}

fn bad(what: &str) -> AnkaError {
    AnkaError::internal(format!("bad JIT config: {what}"))
}

/// Decodes an encoded JIT config.
pub fn decode(encoded: &str) -> Result<RunnerConfig, AnkaError> {
    let outer = STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad("not base64"))?;
    let files: BTreeMap<String, String> =
        serde_json::from_slice(&outer).map_err(|_| bad("not a JSON map of files"))?;
    let file = |name: &str| -> Result<Vec<u8>, AnkaError> {
        let b64 = files.get(name).ok_or_else(|| bad(&format!("no {name}")))?;
        STANDARD
            .decode(b64)
            .map_err(|_| bad(&format!("{name} is not base64")))
    };
    let runner: RunnerFile =
        serde_json::from_slice(&file(".runner")?).map_err(|_| bad(".runner is not valid"))?;
    let creds: CredentialsFile = serde_json::from_slice(&file(".credentials")?)
        .map_err(|_| bad(".credentials is not valid"))?;
    Ok(RunnerConfig {
        server_url: runner.server_url,
        agent_id: runner.agent_id,
        agent_name: runner.agent_name,
        token: creds.data.token,
    })
}

/// Encodes `.runner` and `.credentials` objects as a JIT config (token mode, and tests).
pub fn encode(runner: &Value, credentials: &Value) -> String {
    let mut files = BTreeMap::new();
    files.insert(".runner", STANDARD.encode(runner.to_string()));
    files.insert(".credentials", STANDARD.encode(credentials.to_string()));
    files.insert(".credentials_rsaparams", STANDARD.encode("{}"));
    let json = serde_json::to_string(&files).unwrap_or_default();
    STANDARD.encode(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() -> Result<(), AnkaError> {
        let enc = encode(
            &json!({"agentId": 7, "agentName": "r7", "serverUrl": "http://127.0.0.1:1/_emulator/runner-service"}),
            &json!({"scheme": "OAuthAccessToken", "data": {"token": "s3cret"}}),
        );
        let cfg = decode(&enc)?;
        assert_eq!(cfg.agent_id, 7);
        assert_eq!(cfg.agent_name, "r7");
        assert_eq!(cfg.token, "s3cret");
        assert!(!format!("{cfg:?}").contains("s3cret"));
        assert!(decode("!!").is_err());
        Ok(())
    }
}
