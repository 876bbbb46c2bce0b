//! GitHub's rate limits and our retry policy, as pure functions of a response.
//!
//! Research §5.3: on 403 or 429 with `retry-after`, wait that long; with
//! `x-ratelimit-remaining: 0`, wait until `x-ratelimit-reset`; a secondary limit with neither
//! header waits at least 60 s, longer each time. While limited, no request is sent at all
//! (hammering can get an integration banned). 5xx and transport failures are retried with
//! exponential backoff; a 4xx that cannot succeed is never retried.

use super::http::{HttpResponse, TransportError};
use crate::handler::FailureClass;
use crate::time::Timestamp;
use std::time::Duration;

/// The rate-limit headers of one response; absent or malformed headers are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimit {
    /// `x-ratelimit-limit`: requests allowed per window.
    pub limit: Option<u64>,
    /// `x-ratelimit-remaining`: requests left in the window.
    pub remaining: Option<u64>,
    /// `x-ratelimit-used`: requests made in the window.
    pub used: Option<u64>,
    /// `x-ratelimit-reset`: when the window resets.
    pub reset: Option<Timestamp>,
    /// `x-ratelimit-resource`: the bucket (`core`, `actions_runner_registration`, ...).
    pub resource: Option<String>,
    /// `retry-after`, in seconds (GitHub sends seconds, never an HTTP date).
    pub retry_after: Option<Duration>,
}

impl RateLimit {
    /// Reads the headers of `response`.
    pub fn from_response(response: &HttpResponse) -> Self {
        let num = |name: &str| response.header(name).and_then(|v| v.parse::<u64>().ok());
        Self {
            limit: num("x-ratelimit-limit"),
            remaining: num("x-ratelimit-remaining"),
            used: num("x-ratelimit-used"),
            reset: num("x-ratelimit-reset").map(|s| Timestamp(s.saturating_mul(1000))),
            resource: response
                .header("x-ratelimit-resource")
                .map(|r| r.chars().take(64).collect()),
            retry_after: num("retry-after").map(Duration::from_secs),
        }
    }

    /// When the window is used up (`remaining` 0), the instant it resets, at least one second
    /// from `now` so a reset in the past (clock skew) still pauses briefly.
    pub fn exhausted_until(&self, now: Timestamp) -> Option<Timestamp> {
        if self.remaining != Some(0) {
            return None;
        }
        let floor = now + Duration::from_secs(1);
        Some(match self.reset {
            Some(reset) => reset.max(floor).min(now + MAX_PAUSE),
            None => now + SECONDARY_MIN_WAIT,
        })
    }
}

/// The longest pause any header can impose: GitHub's windows are one hour, so a reset or
/// `retry-after` further out is a broken header (or clock), not a reason to stop for days.
pub const MAX_PAUSE: Duration = Duration::from_secs(3660);

/// The shortest wait after a secondary limit that names no wait.
pub const SECONDARY_MIN_WAIT: Duration = Duration::from_secs(60);

/// Waits between tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failure of a retryable call; doubles each try.
    pub base: Duration,
    /// Longest wait between tries.
    pub cap: Duration,
    /// Wait after a header-less secondary limit (at least [`SECONDARY_MIN_WAIT`]); doubles
    /// with each limit in a row.
    pub secondary: Duration,
    /// Longest wait after a header-less secondary limit.
    pub secondary_cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            secondary: SECONDARY_MIN_WAIT,
            secondary_cap: Duration::from_secs(15 * 60),
        }
    }
}

impl Backoff {
    /// The wait after failed try number `tries` (1 = the first try failed).
    pub fn retry_wait(&self, tries: u32) -> Duration {
        doubled(self.base, tries, self.cap)
    }

    /// The pause after the `hits`th header-less secondary limit in a row (1 = the first).
    pub fn secondary_wait(&self, hits: u32) -> Duration {
        doubled(
            self.secondary.max(SECONDARY_MIN_WAIT),
            hits,
            self.secondary_cap,
        )
        .max(SECONDARY_MIN_WAIT)
    }
}

fn doubled(base: Duration, n: u32, cap: Duration) -> Duration {
    let doublings = n.saturating_sub(1).min(20);
    base.saturating_mul(1u32 << doublings).min(cap)
}

/// How far along a call is, for backoff.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Tries made so far, the one being classified included.
    pub tries: u32,
    /// Header-less secondary limits hit in a row, this one not included.
    pub secondary_hits: u32,
}

/// What to do after a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A success (2xx, or 304 Not Modified): read the body.
    Ok,
    /// A transient failure: try again after `wait`; `attempt` is the number of that next try.
    RetryAfter {
        /// Wait before the next try.
        wait: Duration,
        /// The number of the next try (2 for the first retry).
        attempt: u32,
    },
    /// A rate limit: send nothing at all until `until`, then try again.
    Paused {
        /// When requests may resume.
        until: Timestamp,
        /// Which limit.
        limit: Limit,
    },
    /// A failure that will not change by trying again.
    Fail(FailureClass),
}

/// Which rate limit was hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// The hourly budget is spent (`x-ratelimit-remaining: 0`).
    Primary,
    /// A secondary limit that said how long to wait (`retry-after`).
    SecondaryRetryAfter,
    /// A secondary limit with no header: our own growing wait.
    SecondaryUnspecified,
}

/// Classifies a response: success, retry, rate-limit pause, or failure for good.
pub fn classify(
    now: Timestamp,
    response: &HttpResponse,
    attempts: Attempts,
    backoff: &Backoff,
) -> Outcome {
    let status = response.status;
    if (200..300).contains(&status) || status == 304 {
        return Outcome::Ok;
    }
    if status == 403 || status == 429 {
        let rl = RateLimit::from_response(response);
        if let Some(wait) = rl.retry_after {
            return Outcome::Paused {
                until: now + wait.clamp(Duration::from_secs(1), MAX_PAUSE),
                limit: Limit::SecondaryRetryAfter,
            };
        }
        if let Some(until) = rl.exhausted_until(now) {
            return Outcome::Paused {
                until,
                limit: Limit::Primary,
            };
        }
        if status == 429 || mentions_rate_limit(&response.body) {
            return Outcome::Paused {
                until: now + backoff.secondary_wait(attempts.secondary_hits.saturating_add(1)),
                limit: Limit::SecondaryUnspecified,
            };
        }
        return Outcome::Fail(FailureClass::Permanent);
    }
    match status {
        408 | 500..=599 => retry(attempts, backoff),
        404 => Outcome::Fail(FailureClass::NotFound),
        _ => Outcome::Fail(FailureClass::Permanent),
    }
}

/// Classifies a failed exchange: always worth another try (the caller bounds the tries).
pub fn classify_transport(
    _error: &TransportError,
    attempts: Attempts,
    backoff: &Backoff,
) -> Outcome {
    retry(attempts, backoff)
}

/// The class a transport failure has when no try is left.
pub fn transport_failure_class(error: &TransportError) -> FailureClass {
    match error {
        TransportError::Timeout => FailureClass::TimedOut,
        TransportError::Connect(_) | TransportError::Io(_) => FailureClass::Transient,
    }
}

fn retry(attempts: Attempts, backoff: &Backoff) -> Outcome {
    Outcome::RetryAfter {
        wait: backoff.retry_wait(attempts.tries.max(1)),
        attempt: attempts.tries.saturating_add(1),
    }
}

/// GitHub's secondary-limit 403 says so in its message ("You have exceeded a secondary rate
/// limit"); a permission 403 does not.
fn mentions_rate_limit(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).to_ascii_lowercase();
    text.contains("rate limit")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const NOW: Timestamp = Timestamp(1_700_000_000_000);

    fn first() -> Attempts {
        Attempts {
            tries: 1,
            secondary_hits: 0,
        }
    }

    #[test]
    fn reads_every_header() {
        let r = HttpResponse::new(200, "")
            .with_header("X-RateLimit-Limit", "5000")
            .with_header("x-ratelimit-remaining", "4999")
            .with_header("x-ratelimit-used", "1")
            .with_header("x-ratelimit-reset", "1700000600")
            .with_header("x-ratelimit-resource", "core")
            .with_header("retry-after", "bogus");
        assert_eq!(
            RateLimit::from_response(&r),
            RateLimit {
                limit: Some(5000),
                remaining: Some(4999),
                used: Some(1),
                reset: Some(Timestamp(1_700_000_600_000)),
                resource: Some("core".into()),
                retry_after: None,
            }
        );
    }

    #[test]
    fn primary_limit_pauses_until_reset() {
        for status in [403, 429] {
            let r = HttpResponse::new(status, "{}")
                .with_header("x-ratelimit-remaining", "0")
                .with_header("x-ratelimit-reset", "1700000600");
            assert_eq!(
                classify(NOW, &r, first(), &Backoff::default()),
                Outcome::Paused {
                    until: Timestamp(1_700_000_600_000),
                    limit: Limit::Primary
                }
            );
        }
        let past = HttpResponse::new(403, "")
            .with_header("x-ratelimit-remaining", "0")
            .with_header("x-ratelimit-reset", "1600000000");
        assert_eq!(
            classify(NOW, &past, first(), &Backoff::default()),
            Outcome::Paused {
                until: Timestamp(1_700_000_001_000),
                limit: Limit::Primary
            }
        );
    }

    #[test]
    fn absurd_headers_pause_at_most_an_hour_and_a_minute() {
        let far = HttpResponse::new(403, "")
            .with_header("x-ratelimit-remaining", "0")
            .with_header("x-ratelimit-reset", "99999999999");
        let long = HttpResponse::new(429, "").with_header("retry-after", "86400");
        for r in [far, long] {
            match classify(NOW, &r, first(), &Backoff::default()) {
                Outcome::Paused { until, .. } => assert_eq!(until, NOW + MAX_PAUSE),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn retry_after_wins_over_reset() {
        let r = HttpResponse::new(403, "")
            .with_header("retry-after", "30")
            .with_header("x-ratelimit-remaining", "0")
            .with_header("x-ratelimit-reset", "1700000600");
        assert_eq!(
            classify(NOW, &r, first(), &Backoff::default()),
            Outcome::Paused {
                until: Timestamp(1_700_000_030_000),
                limit: Limit::SecondaryRetryAfter
            }
        );
    }

    #[test]
    fn headerless_secondary_limit_waits_a_minute_and_grows() {
        let body = r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#;
        let r = HttpResponse::new(403, body);
        let waits: Vec<Outcome> = (0..3)
            .map(|hits| {
                classify(
                    NOW,
                    &r,
                    Attempts {
                        tries: 1,
                        secondary_hits: hits,
                    },
                    &Backoff::default(),
                )
            })
            .collect();
        let secs = |s: u64| Outcome::Paused {
            until: NOW + Duration::from_secs(s),
            limit: Limit::SecondaryUnspecified,
        };
        assert_eq!(waits, vec![secs(60), secs(120), secs(240)]);
        assert_eq!(
            classify(
                NOW,
                &HttpResponse::new(429, ""),
                first(),
                &Backoff::default()
            ),
            secs(60)
        );
    }

    #[test]
    fn client_errors_fail_at_once_and_server_errors_retry() {
        let b = Backoff::default();
        for (status, class) in [
            (400, FailureClass::Permanent),
            (401, FailureClass::Permanent),
            (403, FailureClass::Permanent),
            (404, FailureClass::NotFound),
            (409, FailureClass::Permanent),
            (410, FailureClass::Permanent),
            (422, FailureClass::Permanent),
            (301, FailureClass::Permanent),
        ] {
            let r = HttpResponse::new(status, r#"{"message":"Not Found"}"#);
            assert_eq!(
                classify(NOW, &r, first(), &b),
                Outcome::Fail(class),
                "{status}"
            );
        }
        for status in [500, 502, 503, 504, 408] {
            let r = HttpResponse::new(status, "");
            let third = Attempts {
                tries: 3,
                secondary_hits: 0,
            };
            assert_eq!(
                classify(NOW, &r, third, &b),
                Outcome::RetryAfter {
                    wait: Duration::from_secs(4),
                    attempt: 4
                },
                "{status}"
            );
        }
        for status in [200, 201, 202, 204, 304] {
            assert_eq!(
                classify(NOW, &HttpResponse::new(status, ""), first(), &b),
                Outcome::Ok
            );
        }
    }

    #[test]
    fn transport_timeouts_retry_then_count_as_timed_out() {
        assert_eq!(
            classify_transport(&TransportError::Timeout, first(), &Backoff::default()),
            Outcome::RetryAfter {
                wait: Duration::from_secs(1),
                attempt: 2
            }
        );
        assert_eq!(
            transport_failure_class(&TransportError::Timeout),
            FailureClass::TimedOut
        );
        assert_eq!(
            transport_failure_class(&TransportError::Connect("refused".into())),
            FailureClass::Transient
        );
    }

    #[test]
    fn backoff_is_capped() {
        let b = Backoff::default();
        assert_eq!(b.retry_wait(30), Duration::from_secs(60));
        assert_eq!(b.secondary_wait(30), Duration::from_secs(900));
    }
}
