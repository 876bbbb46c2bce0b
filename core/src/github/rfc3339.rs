//! RFC 3339 date-times as GitHub writes them (`2020-01-22T12:13:35.123-08:00`, `...Z`), read
//! into [`Timestamp`]s: token expiries and delivery times. Core has no date crate, and the
//! grammar GitHub uses is small enough to parse exactly here.

use crate::time::Timestamp;

/// Why a date-time was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 date-time at or after 1970: {0:?}")]
pub struct DateTimeError(pub String);

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into milliseconds since the epoch.
pub fn parse(text: &str) -> Result<Timestamp, DateTimeError> {
    let err = || DateTimeError(text.chars().take(40).collect());
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(err());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(err());
    }
    let num = |from: usize, to: usize| -> Result<i64, DateTimeError> {
        let s = text.get(from..to).ok_or_else(err)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err());
        }
        s.parse::<i64>().map_err(|_| err())
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(err());
    }
    let mut rest = text.get(19..).ok_or_else(err)?;
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        let first3: String = frac[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = first3.parse::<i64>().map_err(|_| err())?;
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let ob = rest.as_bytes();
            if ob.len() != 6 || ob[3] != b':' {
                return Err(err());
            }
            let sign = match ob[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(err()),
            };
            let oh = rest[1..3].parse::<i64>().map_err(|_| err())?;
            let om = rest[4..6].parse::<i64>().map_err(|_| err())?;
            if oh > 23 || om > 59 {
                return Err(err());
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let ms = secs
        .checked_mul(1000)
        .and_then(|s| s.checked_add(millis))
        .ok_or_else(err)?;
    u64::try_from(ms).map(Timestamp).map_err(|_| err())
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_githubs_shapes() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Ok(Timestamp(0)));
        // date -u -d 2016-07-11T22:14:10Z +%s = 1468275250
        assert_eq!(
            parse("2016-07-11T22:14:10Z"),
            Ok(Timestamp(1_468_275_250_000))
        );
        // 2020-01-22T20:13:35.123Z
        assert_eq!(
            parse("2020-01-22T12:13:35.123-08:00"),
            Ok(Timestamp(1_579_724_015_123))
        );
        assert_eq!(
            parse("2024-02-29T00:00:00.5+01:00"),
            Ok(Timestamp(1_709_161_200_500))
        );
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "2020-01-22",
            "2020-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2020-01-22T12:13:35",
            "2020-01-22T12:13:35.Z",
            "1969-12-31T23:59:59Z",
            "2020-01-22T12:13:35+0800",
            "２020-01-22T12:13:35Z",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
