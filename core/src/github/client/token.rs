//! Where the client's bearer token comes from: a PAT as is, or an App installation token
//! fetched once for every waiting command and kept until 5 minutes before it expires.
//!
//! The fetch is a small step machine of its own (find the installation id when config has
//! none, then create the token); the client sends its requests, applies the same rate-limit
//! and retry policy to them, and feeds the answers back.

use super::RequestId;
use crate::github::auth::{AppCredentials, Credentials, InstallationToken, app_jwt};
use crate::github::http::{HttpRequest, HttpResponse};
use crate::github::ratelimit::Attempts;
use crate::github::rest::{ApiScope, apps};
use crate::handler::{Failure, FailureClass};
use crate::secret::Secret;
use crate::time::Timestamp;

/// The client's credentials and, for an App, its token cache and fetch in progress.
#[derive(Debug)]
pub(super) enum TokenSource {
    /// A personal access token.
    Pat(Secret),
    /// A GitHub App.
    App(Box<AppSource>),
}

/// An App's state.
#[derive(Debug)]
pub(super) struct AppSource {
    app: AppCredentials,
    installation_id: Option<u64>,
    token: Option<InstallationToken>,
    fetch: Option<Fetch>,
}

/// A token fetch in progress.
#[derive(Debug)]
pub(super) struct Fetch {
    /// Tries of the current step.
    pub(super) attempts: Attempts,
    /// When the next request may go.
    pub(super) ready_at: Timestamp,
    /// The request on the wire.
    pub(super) in_flight: Option<RequestId>,
}

impl TokenSource {
    pub(super) fn new(credentials: Credentials) -> Self {
        match credentials {
            Credentials::Token(t) => TokenSource::Pat(t),
            Credentials::App(app) => TokenSource::App(Box::new(AppSource {
                installation_id: app.installation_id,
                app,
                token: None,
                fetch: None,
            })),
        }
    }

    /// The bearer for an API call at `now`; `None` means a token is being fetched (one
    /// starts if none is under way) and the call must wait.
    pub(super) fn bearer(&mut self, now: Timestamp) -> Option<Secret> {
        match self {
            TokenSource::Pat(t) => Some(t.clone()),
            TokenSource::App(a) => {
                if let Some(t) = a.token.as_ref().filter(|t| t.is_fresh(now)) {
                    return Some(t.token.clone());
                }
                if a.fetch.is_none() {
                    a.fetch = Some(Fetch {
                        attempts: Attempts::default(),
                        ready_at: now,
                        in_flight: None,
                    });
                }
                None
            }
        }
    }

    /// The secrets this source knows, so messages can be scrubbed of them.
    pub(super) fn secrets(&self) -> Vec<&str> {
        match self {
            TokenSource::Pat(t) => vec![t.expose()],
            TokenSource::App(a) => a.token.iter().map(|t| t.token.expose()).collect(),
        }
    }

    /// Forgets the installation token (GitHub answered 401 to it).
    pub(super) fn invalidate(&mut self) {
        if let TokenSource::App(a) = self {
            a.token = None;
        }
    }

    /// The fetch in progress, if any.
    pub(super) fn fetch(&mut self) -> Option<&mut Fetch> {
        match self {
            TokenSource::Pat(_) => None,
            TokenSource::App(a) => a.fetch.as_mut(),
        }
    }

    /// When the fetch's next request is due, if one waits (not on the wire).
    pub(super) fn fetch_ready_at(&self) -> Option<Timestamp> {
        match self {
            TokenSource::App(a) => a
                .fetch
                .as_ref()
                .filter(|f| f.in_flight.is_none())
                .map(|f| f.ready_at),
            TokenSource::Pat(_) => None,
        }
    }

    /// Drops the fetch in progress (it failed, or no command waits for it any more).
    pub(super) fn abandon(&mut self) {
        if let TokenSource::App(a) = self {
            a.fetch = None;
        }
    }

    /// The fetch's next request, signed with a fresh JWT.
    pub(super) fn request(
        &mut self,
        now: Timestamp,
        base: &str,
        scope: &ApiScope,
    ) -> Result<HttpRequest, Failure> {
        let TokenSource::App(a) = self else {
            return Err(Failure::new(
                FailureClass::Permanent,
                "a personal access token needs no fetch",
            ));
        };
        let request = match a.installation_id {
            Some(id) => apps::installation_token(base, id),
            None => apps::find_installation(base, scope).ok_or_else(|| {
                Failure::new(
                    FailureClass::Permanent,
                    "an enterprise scope needs installation_id in the config",
                )
            })?,
        };
        let jwt = app_jwt(&a.app, now)
            .map_err(|e| Failure::new(FailureClass::Permanent, e.to_string()))?;
        Ok(request.with_bearer(jwt.expose()))
    }

    /// Reads a successful answer to the fetch's request; `Ok(true)` when the token is in hand.
    pub(super) fn on_success(
        &mut self,
        now: Timestamp,
        response: &HttpResponse,
    ) -> Result<bool, Failure> {
        let TokenSource::App(a) = self else {
            return Ok(true);
        };
        let bad = |e: crate::github::rest::ApiError| {
            Failure::new(
                FailureClass::Permanent,
                format!("GitHub App authentication: {e}"),
            )
        };
        if a.installation_id.is_none() {
            a.installation_id = Some(apps::parse_installation_id(response).map_err(bad)?);
            if let Some(f) = a.fetch.as_mut() {
                f.attempts = Attempts::default();
                f.ready_at = now;
                f.in_flight = None;
            }
            return Ok(false);
        }
        let token = apps::parse_installation_token(response).map_err(bad)?;
        if !token.is_fresh(now) {
            return Err(Failure::new(
                FailureClass::Permanent,
                "GitHub App authentication: the installation token expires within 5 minutes \
                 (is the host clock right?)",
            ));
        }
        a.token = Some(token);
        a.fetch = None;
        Ok(true)
    }
}
