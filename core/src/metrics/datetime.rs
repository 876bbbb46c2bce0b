//! Timestamps written the way Anklet's metrics write them: RFC 3339 in UTC, to the second
//! (`2026-11-23T14:41:50Z`) or to the nanosecond for `last_update`, and Go's zero time
//! (`0001-01-01T00:00:00Z`) for "never". Core has no date crate, and civil-from-days is a few
//! lines.

use crate::time::Timestamp;

/// Go's zero `time.Time` as Anklet prints it for a run that never happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `YYYY-MM-DDTHH:MM:SSZ`, or [`ZERO_TIME`] for `None`.
pub fn rfc3339_seconds(t: Option<Timestamp>) -> String {
    match t {
        Some(t) => {
            let (date, secs) = civil(t);
            format!("{date}T{}Z", clock(secs))
        }
        None => ZERO_TIME.to_owned(),
    }
}

/// Go's `RFC3339Nano` for `last_update`: the fraction is the milliseconds a [`Timestamp`]
/// holds, left out when zero (Go trims trailing zeros the same way).
pub fn rfc3339_nanos(t: Timestamp) -> String {
    let (date, secs) = civil(t);
    let millis = t.0 % 1000;
    if millis == 0 {
        format!("{date}T{}Z", clock(secs))
    } else {
        let fraction = format!("{millis:03}");
        format!("{date}T{}.{}Z", clock(secs), fraction.trim_end_matches('0'))
    }
}

/// Seconds since the epoch as a Prometheus sample value (0 for "never").
pub fn unix_seconds(t: Option<Timestamp>) -> f64 {
    t.map_or(0.0, |t| t.0 as f64 / 1000.0)
}

fn clock(secs_of_day: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

/// The date and the seconds into that day of `t` (Howard Hinnant's civil-from-days).
fn civil(t: Timestamp) -> (String, u64) {
    let secs = t.0 / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (format!("{year:04}-{month:02}-{day:02}"), secs % 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::rfc3339::parse;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_seconds(Some(Timestamp(0))), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_seconds(Some(Timestamp(1_795_963_310_000))),
            "2026-11-29T14:41:50Z"
        );
        assert_eq!(rfc3339_seconds(None), ZERO_TIME);
        assert_eq!(
            rfc3339_nanos(Timestamp(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            rfc3339_nanos(Timestamp(951_782_400_120)),
            "2000-02-29T00:00:00.12Z"
        );
    }

    #[test]
    fn round_trips_through_the_parser() {
        for ms in [
            0u64,
            86_399_000,
            951_782_400_000,
            4_102_444_799_000,
            1_700_000_000_000,
        ] {
            let t = Timestamp(ms);
            assert_eq!(parse(&rfc3339_seconds(Some(t))), Ok(t), "{ms}");
        }
    }
}
