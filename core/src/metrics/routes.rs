//! The metrics server's routes, decided here so both HTTP servers answer alike:
//! - `/metrics/v1?format=json|prometheus` (json when no format is given): Anklet's formats;
//! - `/metrics/v2?format=json|prometheus`: the aggregator's fleet array (aggregator only);
//! - `/metrics`: the standard exposition for Prometheus scrapers;
//! - `/healthcheck`: `ok`.
//!
//! An unknown `format` answers 400 as Anklet does; only GET and HEAD are served.

use super::exposition::CONTENT_TYPE;
use super::fleet::Fleet;
use super::registry::Metrics;
use crate::receiver::HttpResponse;
use crate::time::Timestamp;

/// A body format of the versioned routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// Prometheus text with Anklet's names.
    Prometheus,
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsRoute {
    /// `/healthcheck`.
    Healthcheck,
    /// `/metrics/v1`.
    V1(Format),
    /// `/metrics/v2`.
    V2(Format),
    /// `/metrics`.
    Standard,
}

impl MetricsRoute {
    /// Whether answering needs the store's host list (the aggregator reads it per request).
    pub fn needs_fleet(self) -> bool {
        !matches!(self, MetricsRoute::Healthcheck)
    }
}

/// Reads a request line; `Err` is the answer to send at once (bad method, route or format).
pub fn route(method: &str, path_and_query: &str) -> Result<MetricsRoute, HttpResponse> {
    if method != "GET" && method != "HEAD" {
        return Err(HttpResponse::text(405, "use GET"));
    }
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let format = || {
        let asked = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "format")
            .map(|(_, v)| v.into_owned());
        match asked.as_deref() {
            None | Some("json") => Ok(Format::Json),
            Some("prometheus") => Ok(Format::Prometheus),
            Some(_) => Err(HttpResponse::text(
                400,
                "unsupported format, please use '?format=json' or '?format=prometheus'",
            )),
        }
    };
    match path.trim_end_matches('/') {
        "/healthcheck" => Ok(MetricsRoute::Healthcheck),
        "/metrics/v1" => format().map(MetricsRoute::V1),
        "/metrics/v2" => format().map(MetricsRoute::V2),
        "/metrics" => Ok(MetricsRoute::Standard),
        _ => Err(HttpResponse::text(
            404,
            "no such route: use /metrics/v1?format=json|prometheus or /metrics",
        )),
    }
}

/// The first port Anklet tries when `metrics.port` is unset.
pub const FIRST_METRICS_PORT: u16 = 8080;

/// The ports to try, in order: the configured one alone, else 8080 upwards (Anklet's rule; a
/// runtime binds the first that is free instead of probing and closing, so no race).
pub fn candidate_ports(configured: Option<u16>) -> std::ops::RangeInclusive<u16> {
    match configured {
        Some(p) => p..=p,
        None => FIRST_METRICS_PORT..=u16::MAX,
    }
}

fn prometheus(body: String) -> HttpResponse {
    HttpResponse {
        status: 200,
        content_type: CONTENT_TYPE,
        body,
    }
}

impl Metrics {
    /// The answer of a process's (non-aggregator) metrics server at `now`.
    pub fn respond(&self, route: MetricsRoute, now: Timestamp) -> HttpResponse {
        match route {
            MetricsRoute::Healthcheck => HttpResponse::text(200, "ok"),
            MetricsRoute::V1(Format::Json) => match serde_json::to_value(self.anklet_export(now)) {
                Ok(v) => HttpResponse::json(200, &v),
                Err(e) => HttpResponse::text(500, format!("cannot render metrics: {e}")),
            },
            MetricsRoute::V1(Format::Prometheus) => prometheus(self.anklet_prometheus(now)),
            MetricsRoute::V2(_) => HttpResponse::text(
                404,
                "/metrics/v2 is served by the aggregator (metrics.aggregator: true); use /metrics/v1",
            ),
            MetricsRoute::Standard => prometheus(self.prometheus()),
        }
    }
}

impl Fleet {
    /// The answer of the aggregator.
    pub fn respond(&self, route: MetricsRoute) -> HttpResponse {
        match route {
            MetricsRoute::Healthcheck => HttpResponse::text(200, "ok"),
            MetricsRoute::V1(Format::Json) => HttpResponse::json(200, &self.json_v1()),
            MetricsRoute::V2(Format::Json) => HttpResponse::json(200, &self.json_v2()),
            MetricsRoute::V1(Format::Prometheus) | MetricsRoute::V2(Format::Prometheus) => {
                prometheus(self.anklet_prometheus())
            }
            MetricsRoute::Standard => prometheus(self.prometheus()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_formats() {
        assert_eq!(
            route("GET", "/metrics/v1"),
            Ok(MetricsRoute::V1(Format::Json))
        );
        assert_eq!(
            route("GET", "/metrics/v1?format=prometheus"),
            Ok(MetricsRoute::V1(Format::Prometheus))
        );
        assert_eq!(
            route("HEAD", "/metrics/v2?x=1&format=json"),
            Ok(MetricsRoute::V2(Format::Json))
        );
        assert_eq!(route("GET", "/metrics"), Ok(MetricsRoute::Standard));
        assert_eq!(route("GET", "/healthcheck"), Ok(MetricsRoute::Healthcheck));
        assert_eq!(
            route("GET", "/metrics/v1?format=xml").map_err(|r| r.status),
            Err(400)
        );
        assert_eq!(route("POST", "/metrics").map_err(|r| r.status), Err(405));
        assert_eq!(route("GET", "/other").map_err(|r| r.status), Err(404));
    }

    #[test]
    fn ports_follow_anklets_rule() {
        assert_eq!(candidate_ports(Some(9100)).collect::<Vec<_>>(), vec![9100]);
        assert_eq!(
            candidate_ports(None).take(2).collect::<Vec<_>>(),
            vec![8080, 8081]
        );
    }

    #[test]
    fn a_process_sends_v2_to_the_aggregator() {
        let m = Metrics::new(Timestamp(0));
        assert_eq!(
            m.respond(MetricsRoute::V2(Format::Json), Timestamp(0))
                .status,
            404
        );
        let r = m.respond(MetricsRoute::Standard, Timestamp(0));
        assert_eq!((r.status, r.content_type), (200, CONTENT_TYPE));
    }
}
