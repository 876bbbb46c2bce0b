//! The wall clock as core's [`Timestamp`], never going backwards: core's timers compare
//! instants, and a clock stepped back by NTP must not make a deadline fire twice or never.

use anklet_core::time::Timestamp;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A clamped wall clock; cheap to share by reference.
#[derive(Debug, Default)]
pub struct Clock {
    last: AtomicU64,
}

impl Clock {
    /// A clock that has not been read yet.
    pub const fn new() -> Self {
        Self {
            last: AtomicU64::new(0),
        }
    }

    /// Now, in milliseconds since the epoch, never earlier than any earlier reading.
    pub fn now(&self) -> Timestamp {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let prev = self.last.fetch_max(wall, Ordering::AcqRel);
        Timestamp(prev.max(wall))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_backwards() {
        let c = Clock::new();
        c.last.store(u64::MAX - 1, Ordering::SeqCst);
        assert_eq!(c.now(), Timestamp(u64::MAX - 1));
        let d = Clock::new();
        let a = d.now();
        assert!(d.now() >= a && a.as_millis() > 1_600_000_000_000);
    }
}
