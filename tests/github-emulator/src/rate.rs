//! GitHub's primary rate limit, per credential and hour, and the `x-ratelimit-*` headers every
//! response carries.

use std::collections::HashMap;

/// One bucket's numbers, as the headers and `GET /rate_limit` show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateInfo {
    /// Calls allowed per window.
    pub limit: u32,
    /// Calls used in this window.
    pub used: u32,
    /// Window end, epoch seconds.
    pub reset: u64,
}

impl RateInfo {
    /// Calls left.
    pub fn remaining(&self) -> u32 {
        self.limit.saturating_sub(self.used)
    }

    /// The `x-ratelimit-*` headers.
    pub fn headers(&self) -> Vec<(String, String)> {
        vec![
            ("x-ratelimit-limit".into(), self.limit.to_string()),
            ("x-ratelimit-remaining".into(), self.remaining().to_string()),
            ("x-ratelimit-used".into(), self.used.to_string()),
            ("x-ratelimit-reset".into(), self.reset.to_string()),
            ("x-ratelimit-resource".into(), "core".into()),
        ]
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    window_start_s: u64,
    used: u32,
}

/// Hourly buckets by principal.
#[derive(Debug, Default)]
pub struct RateBuckets {
    buckets: HashMap<String, Bucket>,
}

const WINDOW_S: u64 = 3600;

impl RateBuckets {
    fn bucket(&mut self, key: &str, now_s: u64) -> &mut Bucket {
        let b = self.buckets.entry(key.to_owned()).or_insert(Bucket {
            window_start_s: now_s,
            used: 0,
        });
        if now_s >= b.window_start_s + WINDOW_S {
            *b = Bucket {
                window_start_s: now_s,
                used: 0,
            };
        }
        b
    }

    /// Counts one call; `Err` when the bucket was already empty (nothing counted).
    pub fn hit(&mut self, key: &str, limit: u32, now_s: u64) -> Result<RateInfo, RateInfo> {
        let b = self.bucket(key, now_s);
        let info = |b: &Bucket| RateInfo {
            limit,
            used: b.used,
            reset: b.window_start_s + WINDOW_S,
        };
        if b.used >= limit {
            return Err(info(b));
        }
        b.used += 1;
        Ok(info(b))
    }

    /// The bucket's numbers without counting.
    pub fn peek(&mut self, key: &str, limit: u32, now_s: u64) -> RateInfo {
        let b = self.bucket(key, now_s);
        RateInfo {
            limit,
            used: b.used.min(limit),
            reset: b.window_start_s + WINDOW_S,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_empty_and_refill() {
        let mut r = RateBuckets::default();
        assert_eq!(r.hit("a", 2, 100).map(|i| i.remaining()), Ok(1));
        assert_eq!(r.hit("a", 2, 100).map(|i| i.remaining()), Ok(0));
        assert!(r.hit("a", 2, 100).is_err());
        assert_eq!(r.hit("b", 2, 100).map(|i| i.used), Ok(1));
        assert_eq!(r.hit("a", 2, 100 + 3600).map(|i| i.used), Ok(1));
    }
}
