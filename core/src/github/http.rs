//! HTTP exchanges as plain data, so the GitHub client decides every request without doing one.
//!
//! A runtime turns an [`HttpRequest`] into a real call (reqwest, ureq, an emulator) and hands
//! back an [`HttpResponse`] or a [`TransportError`]. Every request carries the headers GitHub
//! asks for (media type, API version, a `User-Agent`); the `Authorization` header is the only
//! secret in a request and `Debug` never prints it.

use std::fmt;

/// The API base URL used when none is configured (GitHub Enterprise Server uses
/// `https://HOST/api/v3`; tests point it at an emulator on loopback).
pub const DEFAULT_API_BASE_URL: &str = "https://api.github.com";

/// The REST API version we are written against; GitHub answers 410 once it is retired.
pub const API_VERSION: &str = "2022-11-28";

/// The media type GitHub recommends for its REST API.
pub const ACCEPT: &str = "application/vnd.github+json";

/// GitHub rejects requests without a `User-Agent`; ours names the crate and its version.
pub const USER_AGENT: &str = concat!("anklet-rs/", env!("CARGO_PKG_VERSION"));

/// The HTTP methods the client uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// Reads.
    Get,
    /// Creations and actions (tokens, JIT configs, cancel, redeliver).
    Post,
    /// Runner removal.
    Delete,
}

impl Method {
    /// The method as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request for a runtime to send, exactly as built (headers in order).
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The absolute URL, query included.
    pub url: String,
    /// Header names and values, in the order they should be sent.
    pub headers: Vec<(String, String)>,
    /// The body (JSON), if any.
    pub body: Option<Vec<u8>>,
}

impl HttpRequest {
    /// A request to `base` + `path_and_query` with GitHub's standard headers; a JSON body, if
    /// given, adds `Content-Type: application/json`.
    pub fn api(method: Method, base: &str, path_and_query: &str, body: Option<Vec<u8>>) -> Self {
        let mut headers = vec![
            ("Accept".to_owned(), ACCEPT.to_owned()),
            ("X-GitHub-Api-Version".to_owned(), API_VERSION.to_owned()),
            ("User-Agent".to_owned(), USER_AGENT.to_owned()),
        ];
        if body.is_some() {
            headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
        }
        Self {
            method,
            url: format!("{}{}", base.trim_end_matches('/'), path_and_query),
            headers,
            body,
        }
    }

    /// Adds `Authorization: Bearer <token>`; call it last, at the point of sending.
    pub fn with_bearer(mut self, token: &str) -> Self {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
        self.headers
            .push(("Authorization".to_owned(), format!("Bearer {token}")));
        self
    }

    /// The first value of a header (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                if n.eq_ignore_ascii_case("authorization") {
                    (n.as_str(), crate::secret::REDACTED)
                } else {
                    (n.as_str(), v.as_str())
                }
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field(
                "body",
                &self.body.as_ref().map(|b| String::from_utf8_lossy(b)),
            )
            .finish()
    }
}

impl fmt::Display for HttpRequest {
    /// `METHOD URL`, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.url)
    }
}

/// A response as a runtime received it (headers as sent; names compare case-insensitively).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with this status and body and no headers (tests and emulators).
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The same response with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The first value of a header (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// Why no response arrived; the runtime maps its client's errors into these.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No answer within the request's timeout.
    #[error("no answer before the timeout")]
    Timeout,
    /// The connection could not be made (DNS, refused, TLS).
    #[error("connection failed: {0}")]
    Connect(String),
    /// The exchange broke off (reset, truncated body).
    #[error("exchange failed: {0}")]
    Io(String),
}

/// Percent-encodes one path segment or query value (everything but RFC 3986's unreserved
/// characters), so names from config or GitHub cannot change a URL's shape.
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_authorization_header() {
        let r = HttpRequest::api(Method::Get, "https://x/", "/a", None).with_bearer("ghp_abc");
        let shown = format!("{r:?}");
        assert!(!shown.contains("ghp_abc"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert_eq!(r.header("authorization"), Some("Bearer ghp_abc"));
        assert_eq!(r.url, "https://x/a");
    }

    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(
            encode_component("a b/c?d&e=é"),
            "a%20b%2Fc%3Fd%26e%3D%C3%A9"
        );
        assert_eq!(encode_component("anklet-vm-h_1.2~"), "anklet-vm-h_1.2~");
    }
}
