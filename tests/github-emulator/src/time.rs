//! Time for the emulator: the wall clock in milliseconds, GitHub's RFC 3339 timestamps, and the
//! time scale that lets a test run an hour-long token lifetime in seconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now (0 if the system clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Scales emulated durations (job run times, token lifetimes, the runner-vanished failure
/// delay) so tests and demos can compress GitHub's hours into seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeScale(f64);

impl TimeScale {
    /// A scale factor: 1.0 is real time, 0.01 makes an hour last 36 s. Non-finite or
    /// non-positive factors are refused so a typo cannot make every token expire at once.
    pub fn new(factor: f64) -> Option<Self> {
        (factor.is_finite() && factor > 0.0).then_some(Self(factor))
    }

    /// The factor.
    pub fn factor(self) -> f64 {
        self.0
    }

    /// `d` on the emulator's clock.
    pub fn scale(self, d: Duration) -> Duration {
        Duration::from_secs_f64((d.as_secs_f64() * self.0).min(1.0e9))
    }
}

impl Default for TimeScale {
    fn default() -> Self {
        Self(1.0)
    }
}

/// `ms` since the epoch as GitHub writes webhook times: `2021-09-13T02:21:13Z`.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_631_499_673_000), "2021-09-13T02:21:13Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn scale_refuses_nonsense() {
        assert!(TimeScale::new(0.0).is_none());
        assert!(TimeScale::new(f64::NAN).is_none());
        let s = TimeScale::new(0.5).map(|s| s.scale(Duration::from_secs(10)));
        assert_eq!(s, Some(Duration::from_secs(5)));
    }
}
