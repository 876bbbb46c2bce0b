//! Who is calling: credentials in `Authorization`, GitHub App JWTs (RS256, checked with the
//! app's public key) and the principal a call is billed to. Token values never leave here in
//! errors or logs.

use crate::config::AppConfig;
use crate::http::Req;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Serialize;
use serde_json::Value;

/// Who a call was made as (what the call log and the rate buckets know; never the token).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Principal {
    /// The n-th configured personal access token.
    Pat {
        /// Its index in the configuration.
        index: usize,
    },
    /// An installation access token.
    Installation {
        /// The installation.
        id: u64,
    },
    /// The app itself (JWT).
    App,
    /// A runner through the runner service.
    Runner {
        /// The runner.
        id: u64,
    },
}

impl Principal {
    /// The rate bucket key.
    pub fn bucket(&self) -> String {
        match self {
            Principal::Pat { index } => format!("pat:{index}"),
            Principal::Installation { id } => format!("installation:{id}"),
            Principal::App => "app".into(),
            Principal::Runner { id } => format!("runner:{id}"),
        }
    }
}

/// The credential in `Authorization`: `Bearer <t>` or `token <t>`.
pub struct Credential<'a> {
    /// `true` for `Bearer`.
    pub bearer: bool,
    /// The token (secret: do not log).
    pub token: &'a str,
}

/// Reads `Authorization`.
pub fn credential(req: &Req) -> Option<Credential<'_>> {
    let v = req.header("authorization")?.trim();
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    if token.is_empty() {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(Credential {
            bearer: true,
            token,
        })
    } else if scheme.eq_ignore_ascii_case("token") {
        Some(Credential {
            bearer: false,
            token,
        })
    } else {
        None
    }
}

/// Whether `token` looks like a JWT (three dot-separated parts), so it is checked as one.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("ey")
}

/// A GitHub App with its decoding key ready.
pub struct App {
    /// The configuration.
    pub config: AppConfig,
    key: DecodingKey,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("app_id", &self.config.app_id)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: Value,
    iat: i64,
    exp: i64,
}

impl App {
    /// Prepares `config`; fails when the public key is not an RSA PEM.
    pub fn new(config: AppConfig) -> Result<Self, String> {
        // jsonwebtoken panics at verification time when its crate features (unified across the
        // workspace) leave no single crypto provider; naming ours first rules that out. An
        // `Err` only means a provider was already chosen.
        let _already_chosen = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        );
        let key = DecodingKey::from_rsa_pem(config.public_key_pem.as_bytes())
            .map_err(|e| format!("app public key is not an RSA public key in PEM: {e}"))?;
        Ok(Self { config, key })
    }

    /// Checks an app JWT as GitHub does: RS256 signature, `exp` not passed and at most 10
    /// minutes ahead, `iat` not in the future, `iss` the app id or client id. The error is
    /// GitHub's message (no token in it).
    pub fn verify(&self, jwt: &str, now_s: i64) -> Result<(), String> {
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_aud = false;
        v.leeway = 30;
        let data = jsonwebtoken::decode::<Claims>(jwt, &self.key, &v)
            .map_err(|_| "A JSON web token could not be decoded".to_owned())?;
        let c = data.claims;
        if c.exp > now_s + 600 + 30 {
            return Err("'Expiration time' claim ('exp') is too far in the future".into());
        }
        if c.iat > now_s + 30 {
            return Err(
                "'Issued at' claim ('iat') must be an Integer representing a time in the past"
                    .into(),
            );
        }
        let iss_ok = match &c.iss {
            Value::Number(n) => n.as_u64() == Some(self.config.app_id),
            Value::String(s) => {
                s.parse::<u64>().ok() == Some(self.config.app_id)
                    || self.config.client_id.as_deref() == Some(s.as_str())
            }
            _ => false,
        };
        if !iss_ok {
            return Err("'Issuer' claim ('iss') must be an Integer or the app's client ID".into());
        }
        Ok(())
    }
}
