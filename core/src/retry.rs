//! Retry and backoff as pure functions, so the simulator controls every wait.

use std::time::Duration;

/// How often and how patiently one step is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetryPolicy {
    /// Tries in all, the first included; `u32::MAX` means keep trying (cleanup steps).
    pub max_tries: u32,
    /// Wait before the second try.
    pub base: Duration,
    /// Longest wait between two tries.
    pub cap: Duration,
}

impl RetryPolicy {
    /// Builds a policy with exponential backoff doubling from `base` up to `cap`.
    pub const fn new(max_tries: u32, base: Duration, cap: Duration) -> Self {
        Self {
            max_tries,
            base,
            cap,
        }
    }

    /// Returns the wait before try number `next_try` (2 for the first retry), or `None` when
    /// the tries are used up.
    pub fn delay_before(&self, next_try: u32) -> Option<Duration> {
        if next_try > self.max_tries {
            return None;
        }
        let doublings = next_try.saturating_sub(2).min(20);
        let delay = self.base.saturating_mul(1u32 << doublings);
        Some(delay.min(self.cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_stops_after_max_tries() {
        let p = RetryPolicy::new(5, Duration::from_secs(2), Duration::from_secs(10));
        let waits: Vec<_> = (2..=6).map(|n| p.delay_before(n)).collect();
        assert_eq!(
            waits,
            vec![
                Some(Duration::from_secs(2)),
                Some(Duration::from_secs(4)),
                Some(Duration::from_secs(8)),
                Some(Duration::from_secs(10)),
                None
            ]
        );
    }

    #[test]
    fn unbounded_policy_never_gives_up() {
        let p = RetryPolicy::new(u32::MAX, Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(p.delay_before(1000), Some(Duration::from_secs(60)));
    }
}
