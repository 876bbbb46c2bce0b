//! Typed request builders and response parsers for every REST call the client makes.
//!
//! Builders return an [`HttpRequest`](super::http::HttpRequest) without `Authorization` (the
//! client adds it at the point of sending); parsers read a response GitHub answered with
//! success and never panic: anything unexpected is an [`ApiError`] whose text quotes no body
//! content, so a malformed response that carries a token cannot leak it through an error.

pub mod apps;
pub mod deliveries;
pub mod jobs;
pub mod runners;

use super::http::{HttpResponse, encode_component};
use crate::config::Scope;
use serde::de::DeserializeOwned;

/// Where runners live: an owned copy of the config's [`Scope`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiScope {
    /// A repository's runners.
    Repository {
        /// Owner login.
        owner: String,
        /// Repository name.
        repo: String,
    },
    /// An organisation's runners.
    Organization(String),
    /// An enterprise's runners.
    Enterprise(String),
}

impl From<Scope<'_>> for ApiScope {
    fn from(s: Scope<'_>) -> Self {
        match s {
            Scope::Repository { owner, repo } => ApiScope::Repository {
                owner: owner.to_owned(),
                repo: repo.to_owned(),
            },
            Scope::Organization(o) => ApiScope::Organization(o.to_owned()),
            Scope::Enterprise(e) => ApiScope::Enterprise(e.to_owned()),
        }
    }
}

impl ApiScope {
    /// The path prefix of the scope (`/repos/o/r`, `/orgs/o`, `/enterprises/e`).
    pub fn path(&self) -> String {
        match self {
            ApiScope::Repository { owner, repo } => format!(
                "/repos/{}/{}",
                encode_component(owner),
                encode_component(repo)
            ),
            ApiScope::Organization(o) => format!("/orgs/{}", encode_component(o)),
            ApiScope::Enterprise(e) => format!("/enterprises/{}", encode_component(e)),
        }
    }
}

/// Path of a repository (`/repos/o/r`), for calls that are always per repository (jobs, runs).
pub fn repo_path(owner: &str, repo: &str) -> String {
    format!(
        "/repos/{}/{}",
        encode_component(owner),
        encode_component(repo)
    )
}

/// Why a response could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// GitHub answered a status the call does not succeed with.
    #[error("HTTP {status}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        /// The status code.
        status: u16,
        /// GitHub's `message` field, shortened, when the body had one.
        message: Option<String>,
    },
    /// The body is not the JSON the call returns; the text names only where it broke.
    #[error("unexpected response body: {0}")]
    Body(String),
}

/// Longest GitHub `message` kept in an error.
const MAX_MESSAGE: usize = 200;

/// GitHub's error `message` (`{"message": "...", "documentation_url": ...}`), shortened.
pub fn error_message(response: &HttpResponse) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        message: String,
    }
    let body: ErrorBody = serde_json::from_slice(&response.body).ok()?;
    Some(body.message.chars().take(MAX_MESSAGE).collect())
}

/// Refuses any status but the ones listed.
pub fn expect_status(response: &HttpResponse, ok: &[u16]) -> Result<(), ApiError> {
    if ok.contains(&response.status) {
        Ok(())
    } else {
        Err(ApiError::Status {
            status: response.status,
            message: error_message(response),
        })
    }
}

/// Reads a JSON body into `T`; the error says what kind of problem and where, never the data.
pub fn parse_json<T: DeserializeOwned>(response: &HttpResponse, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(&response.body).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "unexpected shape",
            serde_json::error::Category::Eof => "truncated",
        };
        ApiError::Body(format!(
            "{what}: {kind} at line {} column {}",
            e.line(),
            e.column()
        ))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn scope_paths_are_encoded() {
        let s = ApiScope::from(Scope::Repository {
            owner: "o",
            repo: "r/../x",
        });
        assert_eq!(s.path(), "/repos/o/r%2F..%2Fx");
        assert_eq!(ApiScope::Organization("acme".into()).path(), "/orgs/acme");
        assert_eq!(ApiScope::Enterprise("e".into()).path(), "/enterprises/e");
    }

    #[test]
    fn json_errors_quote_no_data() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            id: u64,
        }
        let r = HttpResponse::new(200, r#"{"id": "ghs_secret_value"}"#);
        let err = parse_json::<T>(&r, "thing").unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("ghs_secret_value"), "{text}");
        assert!(text.contains("unexpected shape"), "{text}");
    }

    #[test]
    fn status_errors_carry_githubs_message() {
        let r = HttpResponse::new(
            422,
            r#"{"message":"Bad request - Runner \"x\" is still running a job","documentation_url":"u"}"#,
        );
        assert_eq!(
            expect_status(&r, &[204]).map_err(|e| e.to_string()),
            Err("HTTP 422: Bad request - Runner \"x\" is still running a job".into())
        );
        assert_eq!(
            expect_status(&HttpResponse::new(500, "<html>"), &[204]).map_err(|e| e.to_string()),
            Err("HTTP 500".into())
        );
    }
}
