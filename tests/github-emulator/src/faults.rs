//! Fault injection: what can go wrong, how long it lasts, and which requests it hits. A fault
//! is armed from Rust or over `/_emulator/faults` and used up call by call (or by time).

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How long a request fault stays armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Span {
    /// For the next N matching calls.
    Calls(u32),
    /// For every matching call in the next N milliseconds.
    ForMs(u64),
}

/// Something the emulator should get wrong on purpose.
///
/// `route` patterns are `"METHOD /path"` or `"/path"`: `*` matches one path segment, a final
/// `**` any rest, and an empty route or `"**"` every route. Control routes under `/_emulator/`
/// are never faulted (the runner service is).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer with a 5xx for the next `calls` matching calls.
    ServerError {
        /// Which calls.
        route: String,
        /// The status (500 by default).
        #[serde(default = "default_5xx")]
        status: u16,
        /// How many calls.
        calls: u32,
    },
    /// GitHub's primary rate limit: 403 with `x-ratelimit-remaining: 0` and a reset time.
    PrimaryRateLimit {
        /// Which calls.
        route: String,
        /// For how long.
        span: Span,
    },
    /// GitHub's secondary rate limit: 429 (or 403) with `retry-after`.
    SecondaryRateLimit {
        /// Which calls.
        route: String,
        /// 429 or 403.
        #[serde(default = "default_secondary")]
        status: u16,
        /// Seconds in `retry-after`.
        retry_after_s: u64,
        /// For how long.
        span: Span,
    },
    /// Answer late (then normally).
    Slow {
        /// Which calls.
        route: String,
        /// The delay.
        delay_ms: u64,
        /// For how long.
        span: Span,
    },
    /// Send each of the next `count` webhook deliveries twice (same GUID).
    DuplicateDeliveries {
        /// How many deliveries.
        count: u32,
    },
    /// Hold back the next `count` deliveries and send them after a later one (or after
    /// `hold_ms`), so they arrive out of order.
    OutOfOrderDeliveries {
        /// How many deliveries.
        count: u32,
        /// The longest a held delivery waits when nothing follows it.
        #[serde(default = "default_hold_ms")]
        hold_ms: u64,
    },
    /// Do not send the next `count` deliveries; record them as failed (502) so redelivery can
    /// recover them, as on GitHub.
    LostDeliveries {
        /// How many deliveries.
        count: u32,
    },
    /// The next `count` runners made for one job are given another queued job with matching
    /// labels instead (GitHub routes by labels only).
    JobStealing {
        /// How many runners.
        count: u32,
        /// Steal only a job whose own runner is registered and idle, so the two runners swap
        /// jobs. Without it the stolen job may not have a runner yet, and whether its runner
        /// is created before the theft is known is a race of the test's making.
        #[serde(default)]
        swap_only: bool,
    },
}

fn default_5xx() -> u16 {
    500
}

fn default_secondary() -> u16 {
    429
}

fn default_hold_ms() -> u64 {
    2000
}

impl Fault {
    /// Refuses faults that cannot do anything or would break the HTTP contract.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Fault::ServerError { status, calls, .. } => {
                if !(500..=599).contains(status) {
                    return Err(format!("server_error status must be 5xx, not {status}"));
                }
                if *calls == 0 {
                    return Err("server_error needs calls > 0".into());
                }
            }
            Fault::SecondaryRateLimit { status, span, .. } => {
                if *status != 429 && *status != 403 {
                    return Err(format!(
                        "secondary_rate_limit status must be 429 or 403, not {status}"
                    ));
                }
                check_span(span)?;
            }
            Fault::PrimaryRateLimit { span, .. } => check_span(span)?,
            Fault::Slow { span, delay_ms, .. } => {
                check_span(span)?;
                if *delay_ms > 600_000 {
                    return Err("slow delay_ms must be at most 600000".into());
                }
            }
            Fault::DuplicateDeliveries { count }
            | Fault::OutOfOrderDeliveries { count, .. }
            | Fault::LostDeliveries { count }
            | Fault::JobStealing { count, .. } => {
                if *count == 0 {
                    return Err("count must be > 0".into());
                }
            }
        }
        Ok(())
    }

    fn route(&self) -> Option<&str> {
        match self {
            Fault::ServerError { route, .. }
            | Fault::PrimaryRateLimit { route, .. }
            | Fault::SecondaryRateLimit { route, .. }
            | Fault::Slow { route, .. } => Some(route),
            _ => None,
        }
    }
}

fn check_span(span: &Span) -> Result<(), String> {
    match span {
        Span::Calls(0) | Span::ForMs(0) => Err("span must be > 0".into()),
        _ => Ok(()),
    }
}

/// An armed fault and what is left of it.
#[derive(Clone, Debug, Serialize)]
pub struct ActiveFault {
    /// Id to refer to it.
    pub id: u64,
    /// The fault.
    pub fault: Fault,
    /// Calls or deliveries left, when counted.
    pub remaining: Option<u32>,
    /// Milliseconds left, when timed.
    pub remaining_ms: Option<u64>,
    #[serde(skip)]
    until: Option<Instant>,
}

/// What a request fault does to one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestFault {
    /// Answer this status.
    ServerError(u16),
    /// Primary limit hit; reset in this many seconds.
    PrimaryRateLimit {
        /// Seconds until the reset.
        reset_in_s: u64,
    },
    /// Secondary limit hit.
    SecondaryRateLimit {
        /// 429 or 403.
        status: u16,
        /// `retry-after` seconds.
        retry_after_s: u64,
    },
}

/// What the delivery faults decide for one webhook delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryFault {
    /// Send it normally.
    None,
    /// Send it twice.
    Duplicate,
    /// Hold it back at most this long.
    Hold(Duration),
    /// Do not send it; record it as failed.
    Lost,
}

/// The armed faults, in the order they were set.
#[derive(Debug, Default)]
pub struct Faults {
    next_id: u64,
    active: Vec<ActiveFault>,
}

impl Faults {
    /// Arms `fault` (already validated) and returns its id.
    pub fn add(&mut self, fault: Fault, now: Instant) -> u64 {
        self.next_id += 1;
        let (remaining, until) = match &fault {
            Fault::ServerError { calls, .. } => (Some(*calls), None),
            Fault::PrimaryRateLimit { span, .. }
            | Fault::SecondaryRateLimit { span, .. }
            | Fault::Slow { span, .. } => match span {
                Span::Calls(n) => (Some(*n), None),
                Span::ForMs(ms) => (None, Some(now + Duration::from_millis(*ms))),
            },
            Fault::DuplicateDeliveries { count }
            | Fault::OutOfOrderDeliveries { count, .. }
            | Fault::LostDeliveries { count }
            | Fault::JobStealing { count, .. } => (Some(*count), None),
        };
        self.active.push(ActiveFault {
            id: self.next_id,
            fault,
            remaining,
            remaining_ms: None,
            until,
        });
        self.next_id
    }

    /// Disarms everything.
    pub fn clear(&mut self) {
        self.active.clear();
    }

    /// The armed faults with what is left of them.
    pub fn list(&mut self, now: Instant) -> Vec<ActiveFault> {
        self.expire(now);
        self.active
            .iter()
            .map(|f| {
                let mut f = f.clone();
                f.remaining_ms = f.until.map(|u| {
                    u64::try_from(u.saturating_duration_since(now).as_millis()).unwrap_or(0)
                });
                f
            })
            .collect()
    }

    fn expire(&mut self, now: Instant) {
        self.active
            .retain(|f| f.remaining != Some(0) && f.until.is_none_or(|u| now < u));
    }

    /// Uses up the first fault of `pick` that matches; returns it.
    fn take(&mut self, now: Instant, pick: impl Fn(&Fault) -> bool) -> Option<ActiveFault> {
        self.expire(now);
        let f = self.active.iter_mut().find(|f| pick(&f.fault))?;
        if let Some(r) = f.remaining.as_mut() {
            *r = r.saturating_sub(1);
        }
        let taken = f.clone();
        self.expire(now);
        Some(taken)
    }

    /// The delay a `Slow` fault puts on this call, if one matches.
    pub fn slow(&mut self, method: &str, path: &str, now: Instant) -> Option<Duration> {
        let f = self.take(now, |f| {
            matches!(f, Fault::Slow { .. }) && f.route().is_some_and(|r| matches(r, method, path))
        })?;
        match f.fault {
            Fault::Slow { delay_ms, .. } => Some(Duration::from_millis(delay_ms)),
            _ => None,
        }
    }

    /// The error fault that answers this call instead of the route, if one matches.
    pub fn request(&mut self, method: &str, path: &str, now: Instant) -> Option<RequestFault> {
        let f = self.take(now, |f| {
            matches!(
                f,
                Fault::ServerError { .. }
                    | Fault::PrimaryRateLimit { .. }
                    | Fault::SecondaryRateLimit { .. }
            ) && f.route().is_some_and(|r| matches(r, method, path))
        })?;
        Some(match f.fault {
            Fault::ServerError { status, .. } => RequestFault::ServerError(status),
            Fault::PrimaryRateLimit { .. } => RequestFault::PrimaryRateLimit {
                reset_in_s: f
                    .until
                    .map(|u| u.saturating_duration_since(now).as_secs() + 1)
                    .unwrap_or(60),
            },
            Fault::SecondaryRateLimit {
                status,
                retry_after_s,
                ..
            } => RequestFault::SecondaryRateLimit {
                status,
                retry_after_s,
            },
            _ => return None,
        })
    }

    /// What happens to the next first-attempt webhook delivery.
    pub fn delivery(&mut self, now: Instant) -> DeliveryFault {
        let f = self.take(now, |f| {
            matches!(
                f,
                Fault::LostDeliveries { .. }
                    | Fault::DuplicateDeliveries { .. }
                    | Fault::OutOfOrderDeliveries { .. }
            )
        });
        match f.map(|f| f.fault) {
            Some(Fault::LostDeliveries { .. }) => DeliveryFault::Lost,
            Some(Fault::DuplicateDeliveries { .. }) => DeliveryFault::Duplicate,
            Some(Fault::OutOfOrderDeliveries { hold_ms, .. }) => {
                DeliveryFault::Hold(Duration::from_millis(hold_ms))
            }
            _ => DeliveryFault::None,
        }
    }

    /// Whether a job-stealing fault is active, and whether it only swaps (see
    /// [`Fault::JobStealing`]), so the caller knows which jobs may be stolen.
    pub fn stealing(&mut self, now: Instant) -> Option<bool> {
        self.expire(now);
        self.active.iter().find_map(|f| match f.fault {
            Fault::JobStealing { swap_only, .. } => Some(swap_only),
            _ => None,
        })
    }

    /// Whether the next runner should be given another job than its own (uses one up only
    /// when `would_steal`, i.e. another job is there to be stolen).
    pub fn steal(&mut self, now: Instant, would_steal: bool) -> bool {
        if !would_steal {
            return false;
        }
        self.take(now, |f| matches!(f, Fault::JobStealing { .. }))
            .is_some()
    }
}

/// Whether route pattern `pattern` matches `method` and `path` (see [`Fault`]).
pub fn matches(pattern: &str, method: &str, path: &str) -> bool {
    let pattern = pattern.trim();
    let (pm, pp) = match pattern.split_once(' ') {
        Some((m, p)) => (Some(m.trim()), p.trim()),
        None => (None, pattern),
    };
    if let Some(m) = pm
        && m != "*"
        && !m.eq_ignore_ascii_case(method)
    {
        return false;
    }
    if pp.is_empty() || pp == "**" || pp == "*" && pm.is_none() {
        return true;
    }
    let pat: Vec<&str> = pp.trim_matches('/').split('/').collect();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut i = 0;
    for (k, p) in pat.iter().enumerate() {
        if *p == "**" && k + 1 == pat.len() {
            return true;
        }
        match segs.get(i) {
            Some(s) if *p == "*" || p == s => i += 1,
            _ => return false,
        }
    }
    i == segs.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_patterns() {
        let jit = "/repos/o/r/actions/runners/generate-jitconfig";
        assert!(matches(
            "POST /repos/*/*/actions/runners/generate-jitconfig",
            "POST",
            jit
        ));
        assert!(!matches(
            "GET /repos/*/*/actions/runners/generate-jitconfig",
            "POST",
            jit
        ));
        assert!(matches("/repos/**", "GET", jit));
        assert!(matches("", "GET", jit));
        assert!(matches("**", "GET", jit));
        assert!(!matches("/repos/*/*", "GET", jit));
        assert!(matches("* /repos/o/r/actions/**", "DELETE", jit));
    }

    #[test]
    fn counted_faults_are_used_up() {
        let now = Instant::now();
        let mut f = Faults::default();
        f.add(
            Fault::ServerError {
                route: "/x".into(),
                status: 502,
                calls: 2,
            },
            now,
        );
        assert_eq!(f.request("GET", "/y", now), None);
        assert_eq!(
            f.request("GET", "/x", now),
            Some(RequestFault::ServerError(502))
        );
        assert_eq!(
            f.request("GET", "/x", now),
            Some(RequestFault::ServerError(502))
        );
        assert_eq!(f.request("GET", "/x", now), None);
        assert!(f.list(now).is_empty());
    }

    #[test]
    fn timed_faults_expire() {
        let now = Instant::now();
        let mut f = Faults::default();
        f.add(
            Fault::PrimaryRateLimit {
                route: String::new(),
                span: Span::ForMs(1000),
            },
            now,
        );
        assert!(f.request("GET", "/a", now).is_some());
        assert!(f.request("GET", "/a", now).is_some());
        assert_eq!(f.request("GET", "/a", now + Duration::from_secs(2)), None);
    }

    #[test]
    fn fault_json_shape() {
        let f: Fault = serde_json::from_str(
            r#"{"kind":"secondary_rate_limit","route":"**","retry_after_s":3,"span":{"calls":2}}"#,
        )
        .unwrap_or(Fault::JobStealing {
            count: 1,
            swap_only: false,
        });
        assert_eq!(
            f,
            Fault::SecondaryRateLimit {
                route: "**".into(),
                status: 429,
                retry_after_s: 3,
                span: Span::Calls(2)
            }
        );
    }
}
