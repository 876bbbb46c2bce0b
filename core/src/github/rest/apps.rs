//! GitHub App calls, made with the App's JWT: find the installation of the scope, and trade
//! the JWT for an installation token (research §3.5).

use super::{ApiError, ApiScope, expect_status, parse_json};
use crate::github::auth::InstallationToken;
use crate::github::http::{HttpRequest, HttpResponse, Method};
use crate::github::rfc3339;
use crate::secret::Secret;
use serde::Deserialize;

/// `POST /app/installations/{installation_id}/access_tokens` (201 `{token, expires_at}`).
pub fn installation_token(base: &str, installation_id: u64) -> HttpRequest {
    let path = format!("/app/installations/{installation_id}/access_tokens");
    HttpRequest::api(Method::Post, base, &path, None)
}

#[derive(Deserialize)]
struct TokenBody {
    token: Secret,
    expires_at: String,
}

/// Reads an installation token (201).
pub fn parse_installation_token(response: &HttpResponse) -> Result<InstallationToken, ApiError> {
    expect_status(response, &[200, 201])?;
    let body: TokenBody = parse_json(response, "installation token")?;
    if body.token.is_empty() {
        return Err(ApiError::Body("installation token: empty token".into()));
    }
    let expires_at = rfc3339::parse(&body.expires_at)
        .map_err(|_| ApiError::Body("installation token: expires_at is not a date-time".into()))?;
    Ok(InstallationToken {
        token: body.token,
        expires_at,
    })
}

/// `GET /repos/{o}/{r}/installation` or `GET /orgs/{o}/installation`: the installation of
/// the App on the scope. Enterprises have no such call (`None`): their installation id must
/// be configured.
pub fn find_installation(base: &str, scope: &ApiScope) -> Option<HttpRequest> {
    match scope {
        ApiScope::Repository { .. } | ApiScope::Organization(_) => {
            let path = format!("{}/installation", scope.path());
            Some(HttpRequest::api(Method::Get, base, &path, None))
        }
        ApiScope::Enterprise(_) => None,
    }
}

#[derive(Deserialize)]
struct InstallationBody {
    id: u64,
}

/// Reads an installation's id (200).
pub fn parse_installation_id(response: &HttpResponse) -> Result<u64, ApiError> {
    expect_status(response, &[200])?;
    let body: InstallationBody = parse_json(response, "installation")?;
    if body.id == 0 {
        return Err(ApiError::Body("installation: id 0".into()));
    }
    Ok(body.id)
}
