//! Webhooks and their deliveries: the record GitHub keeps of every attempt (what the
//! deliveries API lists and redelivers), and the JSON shapes of that API.

use crate::time::rfc3339;
use serde::Serialize;
use serde_json::{Value, json};

/// A configured webhook: where deliveries go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hook {
    /// `X-GitHub-Hook-ID`.
    pub id: u64,
    /// The receiver URL.
    pub url: String,
}

/// One delivery attempt, as the deliveries API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Delivery {
    /// Numeric id (the `delivery_id` of the API).
    pub id: u64,
    /// `X-GitHub-Delivery`; the same for duplicates and redeliveries.
    pub guid: String,
    /// The hook it went to.
    pub hook_id: u64,
    /// When it was sent (ms since the epoch).
    pub delivered_at_ms: u64,
    /// A redelivery asked for through the API.
    pub redelivery: bool,
    /// Seconds the receiver took.
    pub duration_s: f64,
    /// `OK`, or what went wrong.
    pub status: String,
    /// The receiver's HTTP status (0 when there was no answer).
    pub status_code: u16,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's `action`.
    pub action: Option<String>,
    /// The app installation, on app deliveries.
    pub installation_id: Option<u64>,
    /// The repository, when the event has one.
    pub repository_id: Option<u64>,
    /// The receiver URL.
    pub url: String,
    /// Request headers sent (signature included: it is not a secret).
    pub request_headers: Vec<(String, String)>,
    /// The payload sent.
    pub payload: Value,
    /// Response headers received.
    pub response_headers: Vec<(String, String)>,
    /// Response body received (cut at 64 KiB).
    pub response_body: String,
}

impl Delivery {
    /// Whether GitHub counts it as delivered (status 200–399).
    pub fn succeeded(&self) -> bool {
        (200..400).contains(&self.status_code)
    }

    /// The `hook-delivery-item` object of the list endpoint.
    pub fn item_json(&self) -> Value {
        json!({
            "id": self.id,
            "guid": self.guid,
            "delivered_at": rfc3339(self.delivered_at_ms),
            "redelivery": self.redelivery,
            "duration": self.duration_s,
            "status": self.status,
            "status_code": self.status_code,
            "event": self.event,
            "action": self.action,
            "installation_id": self.installation_id,
            "repository_id": self.repository_id,
            "throttled_at": Value::Null,
        })
    }

    /// The `hook-delivery` object of the get endpoint (adds `url`, `request` and `response`).
    pub fn full_json(&self) -> Value {
        let mut v = self.item_json();
        let headers = |h: &[(String, String)]| {
            Value::Object(
                h.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        };
        if let Value::Object(m) = &mut v {
            m.insert("url".into(), Value::String(self.url.clone()));
            m.insert(
                "request".into(),
                json!({"headers": headers(&self.request_headers), "payload": self.payload}),
            );
            m.insert(
                "response".into(),
                json!({"headers": headers(&self.response_headers), "payload": self.response_body}),
            );
        }
        v
    }
}

/// One page of a deliveries listing: newest first, items older than `cursor`.
pub struct Page<'a> {
    /// The items.
    pub items: Vec<&'a Delivery>,
    /// The cursor of the next page, when there is one.
    pub next_cursor: Option<u64>,
}

/// Lists `hook_id`'s deliveries newest first, `per_page` at a time from `cursor` (a delivery
/// id: the page holds older ones), filtered by `status` (`success`/`failure`).
pub fn page<'a>(
    all: &'a [Delivery],
    hook_id: u64,
    per_page: usize,
    cursor: Option<u64>,
    status: Option<&str>,
) -> Page<'a> {
    let mut matching = all
        .iter()
        .rev()
        .filter(|d| d.hook_id == hook_id)
        .filter(|d| cursor.is_none_or(|c| d.id < c))
        .filter(|d| match status {
            Some("success") => d.succeeded(),
            Some("failure") => !d.succeeded(),
            _ => true,
        });
    let items: Vec<&Delivery> = matching.by_ref().take(per_page).collect();
    let next_cursor = if matching.next().is_some() {
        items.last().map(|d| d.id)
    } else {
        None
    };
    Page { items, next_cursor }
}
