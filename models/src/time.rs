//! Timestamps: integer milliseconds since the Unix epoch, with RFC 3339 (UTC) parsing and formatting.
//!
//! Every stage of cellwarden takes time as data; this type is that data. Milliseconds keep the
//! fractions OpenMetrics allows while staying an exact integer for ordering and hashing.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A point in time, milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From Unix seconds with an optional fraction, as OpenMetrics writes them.
    pub fn from_secs_f64(secs: f64) -> Timestamp {
        Timestamp((secs * 1000.0).round() as i64)
    }
    /// From Unix nanoseconds, as OTLP writes them.
    pub fn from_nanos(nanos: i64) -> Timestamp {
        Timestamp(nanos.div_euclid(1_000_000))
    }
    pub fn millis(self) -> i64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
    /// `self + secs` (seconds may be negative).
    pub fn plus_secs(self, secs: i64) -> Timestamp {
        Timestamp(self.0 + secs * 1000)
    }
    /// Seconds from `earlier` to `self` (negative when `self` is earlier).
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1000.0
    }

    /// Parses RFC 3339 date-times: `2026-03-01T10:12:00Z`, `2026-03-01T10:12:00.250+02:00`.
    /// A lower-case `t`/`z` and a space instead of `T` are accepted, as RFC 3339 allows.
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, String> {
        let b = s.trim().as_bytes();
        let bad = || format!("not an RFC 3339 date-time: {s:?}");
        if b.len() < 20 {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
            let part = &b[r];
            if part.iter().all(u8::is_ascii_digit) {
                Ok(std::str::from_utf8(part).map_err(|_| bad())?.parse::<i64>().map_err(|_| bad())?)
            } else {
                Err(bad())
            }
        };
        if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
            return Err(bad());
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || hour > 23 || min > 59 || sec > 60 {
            return Err(bad());
        }
        let mut i = 19;
        let mut millis = 0i64;
        if b[i] == b'.' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return Err(bad());
            }
            let frac = std::str::from_utf8(&b[start..i.min(start + 3)]).map_err(|_| bad())?;
            millis = frac.parse::<i64>().map_err(|_| bad())? * 10i64.pow(3 - frac.len() as u32);
        }
        let offset_secs = match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
                let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
                if *sign == b'+' {
                    off
                } else {
                    -off
                }
            }
            _ => return Err(bad()),
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
        Ok(Timestamp(secs * 1000 + millis))
    }

    /// Formats as RFC 3339 in UTC, with milliseconds only when they are not zero.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1000);
        let millis = self.0.rem_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
        if millis == 0 {
            format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
        } else {
            format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{millis:03}Z")
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in month `m` (1–12) of year `y`.
pub fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a count of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_and_offsets_to_the_same_instant() {
        let a = Timestamp::parse_rfc3339("2023-01-29T09:12:56Z").unwrap();
        assert_eq!(a.millis(), 1_674_983_576_000);
        let b = Timestamp::parse_rfc3339("2023-01-29T11:12:56+02:00").unwrap();
        assert_eq!(a, b);
        let c = Timestamp::parse_rfc3339("2023-01-29T09:12:56.25Z").unwrap();
        assert_eq!(c.millis(), a.millis() + 250);
    }

    #[test]
    fn formats_back_what_it_parses() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:59.001Z",
            "2026-11-26T13:17:35Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(s).unwrap().to_rfc3339(), s);
        }
    }

    #[test]
    fn rejects_impossible_dates() {
        for s in [
            "2023-02-30T00:00:00Z",
            "2023-01-29 09:12:56",
            "2023-13-01T00:00:00Z",
            "yesterday",
            "2023-01-29T09:12:56+0200",
        ] {
            assert!(Timestamp::parse_rfc3339(s).is_err(), "{s}");
        }
    }
}
