//! The one formatter of values for people: every report, explanation, Event and log line that
//! shows a measured value goes through here, so "512 MiB" never sits beside "5.37e8".
//!
//! - [`value`]: a value of a [`Signal`] in its unit (MiB/GiB, %, ms/s, req/s, cores, messages).
//! - [`bytes`], [`secs`], [`ratio_pct`], [`per_sec`], [`number`]: the units themselves.
//! - [`duration`]: a span of time ("45 s", "12 min", "2 h 05 min").
//! - [`clock`]: a timestamp's time of day in UTC ("10:10:30"), for lines beside a date.
//!
//! No function here prints scientific notation: tiny values get more decimals, huge ones a
//! k/M/G suffix.

use crate::signal::Signal;
use crate::time::Timestamp;

const KIB: f64 = 1024.0;

/// `v` of `signal` in that signal's unit.
pub fn value(signal: Signal, v: f64) -> String {
    match signal {
        Signal::Memory | Signal::MemoryLimit => bytes(v),
        Signal::Latency | Signal::ClientLatency => secs(v),
        Signal::ErrorRatio => ratio_pct(v),
        Signal::RequestRate => per_sec(v, "req"),
        Signal::Cpu => cores(v),
        Signal::QueueLag => format!("{} messages", number(v)),
        Signal::Other => number(v),
    }
}

/// The unit a per-minute slope of `signal` is shown in ("MiB/min" for memory).
pub fn slope_per_min(signal: Signal, per_sec: f64) -> String {
    format!("{}/min", value(signal, per_sec * 60.0))
}

/// Bytes with a binary prefix: "512 MiB", "1.50 GiB", "800 B".
pub fn bytes(v: f64) -> String {
    if !v.is_finite() {
        return number(v);
    }
    let a = v.abs();
    let (scaled, unit) = if a >= KIB * KIB * KIB * KIB {
        (v / (KIB * KIB * KIB * KIB), "TiB")
    } else if a >= KIB * KIB * KIB {
        (v / (KIB * KIB * KIB), "GiB")
    } else if a >= KIB * KIB {
        (v / (KIB * KIB), "MiB")
    } else if a >= KIB {
        (v / KIB, "KiB")
    } else {
        return format!("{v:.0} B");
    };
    format!("{} {unit}", three_digits(scaled))
}

/// Seconds as ms below one second, else seconds: "12.5 ms", "1.20 s", "850 µs".
pub fn secs(v: f64) -> String {
    if !v.is_finite() {
        return number(v);
    }
    let a = v.abs();
    if a == 0.0 {
        "0 ms".into()
    } else if a < 1e-3 {
        format!("{} µs", three_digits(v * 1e6))
    } else if a < 1.0 {
        format!("{} ms", three_digits(v * 1e3))
    } else {
        format!("{} s", three_digits(v))
    }
}

/// A ratio (0.25) as a percentage ("25.0%"); small ones keep two significant digits ("0.049%").
pub fn ratio_pct(v: f64) -> String {
    if !v.is_finite() {
        return number(v);
    }
    let p = v * 100.0;
    let a = p.abs();
    if a == 0.0 {
        "0%".into()
    } else if a >= 10.0 {
        format!("{p:.0}%")
    } else if a >= 1.0 {
        format!("{p:.1}%")
    } else {
        format!("{}%", small(p))
    }
}

/// A rate per second of `what` ("12.5 req/s").
pub fn per_sec(v: f64, what: &str) -> String {
    format!("{} {what}/s", number(v))
}

/// CPU in cores: "0.25 cores", "1.50 cores", "3 m" (millicores) when tiny.
pub fn cores(v: f64) -> String {
    if v.is_finite() && v.abs() < 0.01 && v != 0.0 {
        format!("{} m", three_digits(v * 1000.0))
    } else if (v - 1.0).abs() < 1e-9 {
        "1 core".into()
    } else {
        format!("{} cores", number(v))
    }
}

/// A plain number: three significant digits, a k/M/G/T suffix past 10,000, never "1e9".
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "n/a".into()
        } else if v > 0.0 {
            "∞".into()
        } else {
            "-∞".into()
        };
    }
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    for (div, suffix) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e4, "k")] {
        if a >= div {
            let d = if suffix == "k" { 1e3 } else { div };
            return format!("{}{suffix}", three_digits(v / d));
        }
    }
    if a >= 1.0 {
        three_digits(v)
    } else {
        small(v)
    }
}

/// A count of things, rounded: "5,017" style grouping is left to the reader's locale; we print
/// "5017", and "78.1k" past 10,000.
pub fn count(v: f64) -> String {
    if v.is_finite() && v.abs() < 1e4 {
        format!("{v:.0}")
    } else {
        number(v)
    }
}

/// A span of time: "45 s", "12 min", "2 h 05 min", "3 d 04 h".
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() {
        return number(secs);
    }
    let s = secs.abs().round() as u64;
    let sign = if secs < 0.0 { "-" } else { "" };
    if s < 90 {
        format!("{sign}{s} s")
    } else if s < 5400 {
        let m = (secs.abs() / 60.0).round() as u64;
        format!("{sign}{m} min")
    } else if s < 2 * 86_400 {
        format!("{sign}{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else {
        format!("{sign}{} d {:02} h", s / 86_400, (s % 86_400) / 3600)
    }
}

/// The time of day of `t` in UTC, to the second: "10:10:30".
pub fn clock(t: Timestamp) -> String {
    let s = t.to_string();
    // RFC 3339 as `Timestamp` prints it: `2026-03-02T10:10:30Z` or with milliseconds.
    s.split_once('T')
        .map(|(_, time)| time.trim_end_matches('Z').split('.').next().unwrap_or(time).to_string())
        .unwrap_or(s)
}

/// Three significant digits, trailing zeros after the point kept to show precision: 1.50, 12.5,
/// 512.
fn three_digits(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A value below 1 with two significant digits, in plain decimals: 0.12, 0.0049, 0.000012.
fn small(v: f64) -> String {
    let a = v.abs();
    // Decimals so that two significant digits show: 0.12 → 2, 0.012 → 3, …
    let decimals = (-(a.log10().floor()) as usize + 1).clamp(2, 12);
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_signal_has_its_unit() {
        assert_eq!(value(Signal::Memory, 536_870_912.0), "512 MiB");
        assert_eq!(value(Signal::MemoryLimit, 1.5 * 1024.0 * 1024.0 * 1024.0), "1.50 GiB");
        assert_eq!(value(Signal::Latency, 0.0125), "12.5 ms");
        assert_eq!(value(Signal::ClientLatency, 2.0), "2.00 s");
        assert_eq!(value(Signal::ErrorRatio, 0.1011), "10%");
        assert_eq!(value(Signal::ErrorRatio, 4.86e-4), "0.049%");
        assert_eq!(value(Signal::ErrorRatio, 0.025), "2.5%");
        assert_eq!(value(Signal::RequestRate, 12.5), "12.5 req/s");
        assert_eq!(value(Signal::Cpu, 0.25), "0.25 cores");
        assert_eq!(value(Signal::Cpu, 0.003), "3.00 m");
        assert_eq!(value(Signal::QueueLag, 12_000.0), "12.0k messages");
        assert_eq!(slope_per_min(Signal::Memory, 5.0 * 1024.0 * 1024.0 / 60.0), "5.00 MiB/min");
    }

    #[test]
    fn no_value_prints_in_scientific_notation() {
        for v in [5.34e9, 5.37e8, 4.86e-4, 1.2e-7, 3.3e15, -7.7e-9, 1e-12, 123_456_789.0] {
            for signal in [Signal::Memory, Signal::Latency, Signal::ErrorRatio, Signal::Other, Signal::Cpu] {
                let s = value(signal, v);
                assert!(
                    !s.contains('e') || s.contains("messages") || s.contains("cores"),
                    "{v} as {signal}: {s}"
                );
                assert!(!s.contains("e-") && !s.contains("e+") && !s.contains("e1"), "{v} as {signal}: {s}");
            }
        }
        assert_eq!(number(5.34e9), "5.34G");
        assert_eq!(number(78_100.0), "78.1k");
        assert_eq!(number(0.000012), "0.000012");
        assert_eq!(number(f64::NAN), "n/a");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(45.0), "45 s");
        assert_eq!(duration(12.0 * 60.0), "12 min");
        assert_eq!(duration(2.0 * 3600.0 + 5.0 * 60.0), "2 h 05 min");
        assert_eq!(duration(3.0 * 86_400.0 + 4.0 * 3600.0), "3 d 04 h");
        assert_eq!(count(5017.4), "5017");
        assert_eq!(count(78_100.0), "78.1k");
    }

    #[test]
    fn clock_is_the_time_of_day_in_utc() {
        let t = Timestamp::parse_rfc3339("2026-03-02T10:10:30Z").unwrap();
        assert_eq!(clock(t), "10:10:30");
        assert_eq!(clock(Timestamp(t.millis() + 250)), "10:10:30");
    }
}
