//! An HTTP exchange as the receiver sees it: method, path, headers and the raw body in; a
//! status, content type and body out. The runtimes' HTTP servers only copy bytes into and out
//! of these.

/// GitHub caps webhook payloads at 25 MiB; a larger body is refused with 413 before it is read.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// Correlates a request with its response; the runtime picks the numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request#{}", self.0)
    }
}

/// One HTTP request, already read (the runtime enforces [`MAX_BODY_BYTES`] while reading).
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, possibly with a query string.
    pub path: String,
    /// Header names and values as received (names are compared case-insensitively).
    pub headers: Vec<(String, String)>,
    /// The raw body: signatures are computed over exactly these bytes.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A request with no headers and an empty body, for building in tests and runtimes.
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header (builder style).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body (builder style).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without its query string.
    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
}

impl std::fmt::Debug for HttpRequest {
    /// Headers are listed by name only and the body by length: a body may hold anything, and
    /// a stray `Authorization` header must not reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path", &self.route())
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl HttpResponse {
    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    /// A JSON response built from a `serde_json::Value`.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }
}

/// Why a body could not be turned into the event's JSON.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// A form-encoded body without a `payload` field.
    #[error("form-encoded body has no `payload` field (GitHub sends the JSON as payload=...)")]
    NoPayloadField,
    /// A content type GitHub never sends.
    #[error(
        "unsupported Content-Type {0:?}: use application/json or application/x-www-form-urlencoded"
    )]
    UnsupportedContentType(String),
}

/// The event's JSON: the body itself, or the `payload` field of a form-encoded body (GitHub's
/// "application/x-www-form-urlencoded" webhook content type).
pub fn event_json(content_type: Option<&str>, body: &[u8]) -> Result<Vec<u8>, BodyError> {
    let media = content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" | "" => Ok(body.to_vec()),
        "application/x-www-form-urlencoded" => form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned().into_bytes())
            .ok_or(BodyError::NoPayloadField),
        other => Err(BodyError::UnsupportedContentType(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_payload_is_decoded() {
        let body = b"payload=%7B%22zen%22%3A%22a+b%22%7D";
        let json = event_json(Some("application/x-www-form-urlencoded"), body);
        assert_eq!(json.as_deref(), Ok(&br#"{"zen":"a b"}"#[..]));
        assert_eq!(
            event_json(Some("application/x-www-form-urlencoded"), b"x=1"),
            Err(BodyError::NoPayloadField)
        );
    }

    #[test]
    fn json_passes_through_and_other_types_are_refused() {
        assert_eq!(
            event_json(Some("application/json; charset=utf-8"), b"{}").as_deref(),
            Ok(&b"{}"[..])
        );
        assert_eq!(event_json(None, b"{}").as_deref(), Ok(&b"{}"[..]));
        assert!(matches!(
            event_json(Some("text/xml"), b"<a/>"),
            Err(BodyError::UnsupportedContentType(_))
        ));
    }

    #[test]
    fn debug_shows_no_header_values_or_body() {
        let r = HttpRequest::new("POST", "/jobs/v1/receiver?x=1")
            .header("Authorization", "Bearer ghp_secret")
            .body("top secret body");
        let s = format!("{r:?}");
        assert!(
            !s.contains("ghp_secret") && !s.contains("top secret"),
            "{s}"
        );
        assert!(s.contains("Authorization") && s.contains("/jobs/v1/receiver"));
    }
}
