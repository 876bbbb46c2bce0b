//! Who we are to GitHub: a personal access token, or a GitHub App that signs a short JWT and
//! trades it for an installation token.
//!
//! The App flow (research §4.3): an RS256 JWT with `iat` 60 s in the past (clock drift), `exp`
//! 9 minutes ahead (GitHub refuses more than 10) and `iss` = the app id, sent as a bearer token
//! to `POST /app/installations/{id}/access_tokens`, which answers a token valid one hour. We
//! keep that token until 5 minutes before it expires. Key material never appears in an error,
//! a `Debug` or a `Display`: the key is checked once, when the credentials are built.

use crate::secret::Secret;
use crate::time::Timestamp;
use std::time::Duration;

/// How long before its expiry an installation token is replaced.
pub const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// How far in the past the JWT's `iat` is put, for clocks that run ahead of GitHub's.
pub const JWT_BACKDATE: Duration = Duration::from_secs(60);

/// How far ahead the JWT's `exp` is put (GitHub allows at most 10 minutes).
pub const JWT_LIFETIME: Duration = Duration::from_secs(9 * 60);

/// What the client authenticates with.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// A personal access token (classic or fine-grained), sent as is.
    Token(Secret),
    /// A GitHub App installation.
    App(AppCredentials),
}

/// Why no credentials could be built from a config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// Neither a token nor an App id with a private key is set.
    #[error("no GitHub credentials: set token, or app_id with private_key")]
    Missing,
    /// The App's private key cannot be used.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl Credentials {
    /// Chooses credentials the way Anklet does: a GitHub App when `app_id` and a private key
    /// are both set, else the token. `private_key_pem` is the key's PEM text (a runtime reads
    /// the file when the config gives a path).
    pub fn from_config(
        token: Option<&Secret>,
        app_id: Option<u64>,
        installation_id: Option<u64>,
        private_key_pem: Option<&Secret>,
    ) -> Result<Self, CredentialsError> {
        match (
            app_id.filter(|id| *id != 0),
            private_key_pem.filter(|k| !k.is_empty()),
        ) {
            (Some(app_id), Some(pem)) => Ok(Credentials::App(AppCredentials::new(
                app_id,
                installation_id,
                AppKey::from_pem(pem)?,
            ))),
            _ => match token.filter(|t| !t.is_empty()) {
                Some(t) => Ok(Credentials::Token(t.clone())),
                None => Err(CredentialsError::Missing),
            },
        }
    }
}

/// A GitHub App's identity and key.
#[derive(Clone, Debug)]
pub struct AppCredentials {
    /// The App's numeric id (`iss` of the JWT).
    pub app_id: u64,
    /// The installation to act as; `None` looks it up from the scope.
    pub installation_id: Option<u64>,
    /// The App's private key, checked.
    pub key: AppKey,
}

impl AppCredentials {
    /// Builds App credentials from config values; an `installation_id` of 0 means "look it
    /// up", as in Anklet's config.
    pub fn new(app_id: u64, installation_id: Option<u64>, key: AppKey) -> Self {
        Self {
            app_id,
            installation_id: installation_id.filter(|id| *id != 0),
            key,
        }
    }
}

/// Why an App private key cannot be used. The messages are fixed text: they never quote the
/// key or the parser's view of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not PEM (`-----BEGIN ...-----`, base64, `-----END ...-----`).
    #[error("the GitHub App private key is not PEM text")]
    NotPem,
    /// PEM, but not an RSA private key (GitHub Apps use RSA).
    #[error("the GitHub App private key is not an RSA private key")]
    NotRsa,
    /// An RSA key the signer refuses (malformed, or too short).
    #[error("the GitHub App private key cannot sign (malformed or too short RSA key)")]
    Unusable,
}

/// An RSA private key that has been shown to sign; its `Debug` prints nothing of it.
#[derive(Clone)]
pub struct AppKey(jsonwebtoken::EncodingKey);

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppKey({})", crate::secret::REDACTED)
    }
}

impl AppKey {
    /// Reads an RSA private key in PEM (PKCS#1 `RSA PRIVATE KEY`, as GitHub issues it, or
    /// PKCS#8 `PRIVATE KEY`) and signs a throwaway JWT with it, so a bad key fails at start-up
    /// rather than at the first API call.
    pub fn from_pem(pem: &Secret) -> Result<Self, KeyError> {
        let text = pem.expose().trim();
        // jsonwebtoken panics at signing time when no crypto provider can be chosen from its
        // features (both backends on, through feature unification elsewhere in a build).
        // Naming ours up front makes that impossible; an error means one is already set.
        let _already_chosen = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        );
        if !text.starts_with("-----BEGIN ") || !text.contains("-----END ") {
            return Err(KeyError::NotPem);
        }
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(text.as_bytes())
            .map_err(|_| KeyError::NotRsa)?;
        let key = AppKey(key);
        key.sign(0, Timestamp(JWT_BACKDATE.as_millis() as u64))?;
        Ok(key)
    }

    fn sign(&self, app_id: u64, now: Timestamp) -> Result<Secret, KeyError> {
        let now_s = now.as_millis() / 1000;
        let claims = Claims {
            iat: now_s.saturating_sub(JWT_BACKDATE.as_secs()),
            exp: now_s.saturating_add(JWT_LIFETIME.as_secs()),
            iss: app_id.to_string(),
        };
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        jsonwebtoken::encode(&header, &claims, &self.0)
            .map(Secret::new)
            .map_err(|_| KeyError::Unusable)
    }
}

#[derive(serde::Serialize)]
struct Claims {
    iat: u64,
    exp: u64,
    iss: String,
}

/// The JWT that authenticates as the App itself (installation lookups, token requests).
pub fn app_jwt(app: &AppCredentials, now: Timestamp) -> Result<Secret, KeyError> {
    app.key.sign(app.app_id, now)
}

/// An installation token and when it stops working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallationToken {
    /// The token (`ghs_...`; its length is not fixed).
    pub token: Secret,
    /// GitHub's `expires_at`.
    pub expires_at: Timestamp,
}

impl InstallationToken {
    /// When the token is replaced: [`TOKEN_REFRESH_MARGIN`] before it expires.
    pub fn refresh_at(&self) -> Timestamp {
        Timestamp(
            self.expires_at
                .as_millis()
                .saturating_sub(TOKEN_REFRESH_MARGIN.as_millis() as u64),
        )
    }

    /// Whether the token may still be sent at `now`.
    pub fn is_fresh(&self, now: Timestamp) -> bool {
        now < self.refresh_at()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const KEY: &str = include_str!("../../../tests/fixtures/github/test-app-key.pem");
    const KEY8: &str = include_str!("../../../tests/fixtures/github/test-app-key.pkcs8.pem");

    fn decode_part(part: &str) -> serde_json::Value {
        use base64_url::decode;
        serde_json::from_slice(&decode(part)).unwrap()
    }

    mod base64_url {
        pub(super) fn decode(s: &str) -> Vec<u8> {
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut bits = 0u32;
            let mut n = 0;
            let mut out = vec![];
            for c in s.bytes() {
                let v = alphabet.iter().position(|a| *a == c).unwrap() as u32;
                bits = (bits << 6) | v;
                n += 6;
                if n >= 8 {
                    n -= 8;
                    out.push((bits >> n) as u8);
                    bits &= (1 << n) - 1;
                }
            }
            out
        }
    }

    #[test]
    fn jwt_claims_follow_githubs_rules() {
        let app = AppCredentials::new(42, Some(0), AppKey::from_pem(&Secret::new(KEY)).unwrap());
        assert_eq!(app.installation_id, None);
        let jwt = app_jwt(&app, Timestamp(1_700_000_000_500)).unwrap();
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(decode_part(parts[0])["alg"], "RS256");
        let claims = decode_part(parts[1]);
        assert_eq!(claims["iat"], 1_700_000_000u64 - 60);
        assert_eq!(claims["exp"], 1_700_000_000u64 + 540);
        assert_eq!(claims["iss"], "42");
    }

    #[test]
    fn pkcs8_keys_work_too() {
        assert!(AppKey::from_pem(&Secret::new(KEY8)).is_ok());
    }

    #[test]
    fn bad_keys_are_typed_errors_without_key_text() {
        let truncated: String = KEY.lines().take(5).collect::<Vec<_>>().join("\n");
        let cert_like = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        for (text, want) in [
            ("not a key", KeyError::NotPem),
            ("", KeyError::NotPem),
            (truncated.as_str(), KeyError::NotPem),
            (cert_like, KeyError::NotRsa),
        ] {
            let err = AppKey::from_pem(&Secret::new(text)).unwrap_err();
            assert_eq!(err, want, "{text:?}");
            let shown = format!("{err} {err:?}");
            for line in KEY.lines().skip(1).take(3) {
                assert!(!shown.contains(line), "{shown}");
            }
        }
        let key = AppKey::from_pem(&Secret::new(KEY)).unwrap();
        assert_eq!(format!("{key:?}"), "AppKey([redacted])");
    }

    #[test]
    fn credentials_from_config_prefer_the_app() {
        let pat = Secret::new("ghp_x");
        let key = Secret::new(KEY);
        assert!(matches!(
            Credentials::from_config(Some(&pat), Some(1), Some(0), Some(&key)),
            Ok(Credentials::App(AppCredentials {
                app_id: 1,
                installation_id: None,
                ..
            }))
        ));
        assert!(matches!(
            Credentials::from_config(Some(&pat), Some(1), None, None),
            Ok(Credentials::Token(_))
        ));
        assert!(matches!(
            Credentials::from_config(None, None, None, None),
            Err(CredentialsError::Missing)
        ));
        assert_eq!(
            Credentials::from_config(Some(&pat), Some(1), None, Some(&Secret::new("junk")))
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err("the GitHub App private key is not PEM text".to_owned())
        );
    }

    #[test]
    fn token_is_refreshed_five_minutes_before_expiry() {
        let t = InstallationToken {
            token: Secret::new("ghs_x"),
            expires_at: Timestamp(3_600_000),
        };
        assert_eq!(t.refresh_at(), Timestamp(3_300_000));
        assert!(t.is_fresh(Timestamp(3_299_999)));
        assert!(!t.is_fresh(Timestamp(3_300_000)));
    }
}
