//! Webhook delivery calls, for recovering what GitHub failed to deliver (it never retries by
//! itself): list a hook's deliveries (cursor pagination), read one with its payload, and ask
//! for a redelivery (research §1.5). Repository and organisation hooks share the shapes.

use super::{ApiError, ApiScope, expect_status, parse_json};
use crate::github::http::{HttpRequest, HttpResponse, Method};
use crate::github::link::{NextPage, next_page};
use crate::github::rfc3339;
use crate::time::Timestamp;
use serde::Deserialize;

/// Deliveries per page asked for (GitHub's maximum).
pub const PER_PAGE: u32 = 100;

/// The hook's path (`/repos/o/r/hooks/{id}` or `/orgs/o/hooks/{id}`); enterprises have no
/// hooks API (`None`).
pub fn hook_path(scope: &ApiScope, hook_id: u64) -> Option<String> {
    match scope {
        ApiScope::Repository { .. } | ApiScope::Organization(_) => {
            Some(format!("{}/hooks/{hook_id}", scope.path()))
        }
        ApiScope::Enterprise(_) => None,
    }
}

/// `GET {hook}/deliveries?per_page=100[&cursor=..]`.
pub fn list_deliveries(
    base: &str,
    scope: &ApiScope,
    hook_id: u64,
    cursor: Option<&NextPage>,
) -> Option<HttpRequest> {
    let mut path = format!(
        "{}/deliveries?per_page={PER_PAGE}",
        hook_path(scope, hook_id)?
    );
    if let Some(c) = cursor {
        path.push('&');
        path.push_str(&c.query());
    }
    Some(HttpRequest::api(Method::Get, base, &path, None))
}

/// One delivery attempt as the list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliverySummary {
    /// The attempt's id (what redeliver and get take).
    pub id: u64,
    /// `X-GitHub-Delivery`, shared by a delivery and its redeliveries.
    pub guid: String,
    /// When GitHub sent it.
    pub delivered_at: Timestamp,
    /// Whether this attempt was itself a redelivery.
    pub redelivery: bool,
    /// The status our receiver answered (0 when it could not be reached).
    pub status_code: u16,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's `action`, if any.
    pub action: Option<String>,
}

impl DeliverySummary {
    /// Whether our receiver took this attempt (2xx; GitHub counts 200–399 as success).
    pub fn succeeded(&self) -> bool {
        (200..400).contains(&self.status_code)
    }
}

#[derive(Deserialize)]
struct ItemBody {
    id: u64,
    guid: String,
    delivered_at: String,
    #[serde(default)]
    redelivery: bool,
    #[serde(default)]
    status_code: u16,
    event: String,
    #[serde(default)]
    action: Option<String>,
}

impl ItemBody {
    fn into_summary(self) -> Result<DeliverySummary, ApiError> {
        let delivered_at = rfc3339::parse(&self.delivered_at)
            .map_err(|_| ApiError::Body("delivery: delivered_at is not a date-time".into()))?;
        Ok(DeliverySummary {
            id: self.id,
            guid: self.guid,
            delivered_at,
            redelivery: self.redelivery,
            status_code: self.status_code,
            event: self.event,
            action: self.action,
        })
    }
}

/// One page of deliveries (newest first) and where the next starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryPage {
    /// The deliveries on this page.
    pub deliveries: Vec<DeliverySummary>,
    /// The next (older) page, from the `Link` header.
    pub next: Option<NextPage>,
}

/// Reads a page of deliveries (200).
pub fn parse_delivery_page(response: &HttpResponse) -> Result<DeliveryPage, ApiError> {
    expect_status(response, &[200])?;
    let items: Vec<ItemBody> = parse_json(response, "delivery list")?;
    let deliveries = items
        .into_iter()
        .map(ItemBody::into_summary)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DeliveryPage {
        deliveries,
        next: next_page(response.header("link")),
    })
}

/// The deliveries whose GUID never got a successful attempt, one per GUID (the newest attempt,
/// which is the one to redeliver), newest first. A GUID redelivered with success is left out.
pub fn undelivered(deliveries: &[DeliverySummary]) -> Vec<DeliverySummary> {
    let mut out: Vec<DeliverySummary> = Vec::new();
    for d in deliveries {
        let guid_ok = deliveries.iter().any(|o| o.guid == d.guid && o.succeeded());
        if guid_ok || out.iter().any(|o| o.guid == d.guid) {
            continue;
        }
        let newest = deliveries
            .iter()
            .filter(|o| o.guid == d.guid)
            .max_by_key(|o| (o.delivered_at, o.id))
            .unwrap_or(d);
        out.push(newest.clone());
    }
    out.sort_by_key(|d| std::cmp::Reverse((d.delivered_at, d.id)));
    out
}

/// `GET {hook}/deliveries/{delivery_id}`.
pub fn get_delivery(
    base: &str,
    scope: &ApiScope,
    hook_id: u64,
    delivery_id: u64,
) -> Option<HttpRequest> {
    let path = format!("{}/deliveries/{delivery_id}", hook_path(scope, hook_id)?);
    Some(HttpRequest::api(Method::Get, base, &path, None))
}

/// One delivery with the payload GitHub sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryDetail {
    /// What the list shows.
    pub summary: DeliverySummary,
    /// `request.payload`, as compact JSON text.
    pub payload: String,
}

#[derive(Deserialize)]
struct DetailBody {
    #[serde(flatten)]
    item: ItemBody,
    request: RequestBody,
}

#[derive(Deserialize)]
struct RequestBody {
    payload: serde_json::Value,
}

/// Reads one delivery (200).
pub fn parse_delivery(response: &HttpResponse) -> Result<DeliveryDetail, ApiError> {
    expect_status(response, &[200])?;
    let body: DetailBody = parse_json(response, "delivery")?;
    let payload = serde_json::to_string(&body.request.payload)
        .map_err(|_| ApiError::Body("delivery: payload cannot be written back".into()))?;
    Ok(DeliveryDetail {
        summary: body.item.into_summary()?,
        payload,
    })
}

/// `POST {hook}/deliveries/{delivery_id}/attempts` (202).
pub fn redeliver(
    base: &str,
    scope: &ApiScope,
    hook_id: u64,
    delivery_id: u64,
) -> Option<HttpRequest> {
    let path = format!(
        "{}/deliveries/{delivery_id}/attempts",
        hook_path(scope, hook_id)?
    );
    Some(HttpRequest::api(Method::Post, base, &path, None))
}

/// Checks a redeliver answer (202).
pub fn parse_redeliver(response: &HttpResponse) -> Result<(), ApiError> {
    expect_status(response, &[202, 200, 201])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn d(id: u64, guid: &str, at: u64, status: u16) -> DeliverySummary {
        DeliverySummary {
            id,
            guid: guid.into(),
            delivered_at: Timestamp(at),
            redelivery: false,
            status_code: status,
            event: "workflow_job".into(),
            action: Some("queued".into()),
        }
    }

    #[test]
    fn undelivered_keeps_the_newest_failed_attempt_of_guids_never_delivered() {
        let list = vec![
            d(5, "c", 50, 503),
            d(4, "a", 40, 200),
            d(3, "b", 30, 0),
            d(2, "b", 20, 502),
            d(1, "a", 10, 500),
        ];
        assert_eq!(
            undelivered(&list),
            vec![d(5, "c", 50, 503), d(3, "b", 30, 0)]
        );
        assert!(undelivered(&[]).is_empty());
    }
}
