//! Pure conversions of raw Prometheus series into the values detectors read: counters into
//! per-second rates, histogram buckets into quantiles.
//!
//! Semantics follow Prometheus so a number here can be checked against a PromQL query:
//! - a counter that drops has been reset; the new value is the increase since the reset (as
//!   `rate()`/`increase()` treat resets; [`counter_rate`] is the one in `models`, which the
//!   detector uses too);
//! - [`bucket_quantile`] is `histogram_quantile`: buckets sorted by `le`, coalesced, made
//!   monotonic, linear interpolation inside the bucket holding the rank, the top finite bound when
//!   the rank falls into `+Inf`.
//!
//! Nothing here reads a clock or does IO: samples in, samples out.

use cellwarden_models::openmetrics::parse_value;
use cellwarden_models::{Sample, Series, SeriesKey};
use std::collections::BTreeMap;

pub use cellwarden_models::series::{counter_increase, counter_rate};

/// One cumulative bucket: observations `<= upper_bound`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub upper_bound: f64,
    pub count: f64,
}

/// The `q`-quantile of cumulative `buckets`, as Prometheus' `histogram_quantile` computes it.
///
/// `None` where Prometheus answers NaN: `q` is NaN, there is no `+Inf` bucket, fewer than two
/// buckets remain after merging equal bounds, or nothing was observed. `q < 0` gives `-Inf` and
/// `q > 1` gives `+Inf`, as in PromQL.
pub fn bucket_quantile(q: f64, buckets: &[Bucket]) -> Option<f64> {
    if q.is_nan() {
        return None;
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    let mut b: Vec<Bucket> = buckets.iter().copied().filter(|b| !b.upper_bound.is_nan()).collect();
    b.sort_by(|x, y| x.upper_bound.total_cmp(&y.upper_bound));
    if b.last().is_none_or(|l| l.upper_bound != f64::INFINITY) {
        return None;
    }
    // Coalesce buckets with the same bound (the same histogram scraped twice under other labels).
    let mut merged: Vec<Bucket> = Vec::with_capacity(b.len());
    for x in b {
        match merged.last_mut() {
            Some(last) if last.upper_bound == x.upper_bound => last.count += x.count,
            _ => merged.push(x),
        }
    }
    // Cumulative counts must not fall; a fall comes from buckets scraped at slightly different
    // moments. Prometheus raises such a bucket to the running maximum.
    let mut max = f64::NEG_INFINITY;
    for x in &mut merged {
        if x.count > max {
            max = x.count;
        } else {
            x.count = max;
        }
    }
    if merged.len() < 2 {
        return None;
    }
    let observations = merged[merged.len() - 1].count;
    if observations <= 0.0 || !observations.is_finite() {
        return None;
    }
    let mut rank = q * observations;
    let i = merged[..merged.len() - 1].partition_point(|x| x.count < rank);
    if i == merged.len() - 1 {
        return Some(merged[merged.len() - 2].upper_bound);
    }
    if i == 0 && merged[0].upper_bound <= 0.0 {
        return Some(merged[0].upper_bound);
    }
    let end = merged[i].upper_bound;
    let mut count = merged[i].count;
    let mut start = 0.0;
    if i > 0 {
        start = merged[i - 1].upper_bound;
        count -= merged[i - 1].count;
        rank -= merged[i - 1].count;
    }
    Some(start + (end - start) * (rank / count))
}

/// The metric name of a derived quantile series: `<family>:p95` (`:p99.9` for 0.999), next to the
/// detector's `<family>:mean`.
pub fn quantile_metric(family: &str, q: f64) -> String {
    let pct = format!("{:.3}", q * 100.0);
    let pct = pct.trim_end_matches('0').trim_end_matches('.');
    format!("{family}:p{pct}")
}

/// One bucket series reduced to its growth: at each sample time after the first, the increase
/// since the previous sample, and a running total of those increases for window sums.
struct Growth {
    times: Vec<i64>,
    /// `cumulative[i]` = sum of increases up to and including `times[i]`.
    cumulative: Vec<f64>,
}

impl Growth {
    fn of(samples: &[Sample]) -> Growth {
        let mut times = Vec::with_capacity(samples.len());
        let mut cumulative = Vec::with_capacity(samples.len());
        let mut total = 0.0;
        for w in samples.windows(2) {
            if w[1].t > w[0].t && w[0].value.is_finite() && w[1].value.is_finite() {
                total += counter_increase(w[0].value, w[1].value);
                times.push(w[1].t.millis());
                cumulative.push(total);
            }
        }
        Growth { times, cumulative }
    }

    /// Growth over the interval `(lo, hi]` of milliseconds.
    fn over(&self, lo: i64, hi: i64) -> f64 {
        let upto = |t: i64| {
            let n = self.times.partition_point(|&x| x <= t);
            if n == 0 {
                0.0
            } else {
                self.cumulative[n - 1]
            }
        };
        upto(hi) - upto(lo)
    }
}

/// Quantile series of every histogram among `series`: `_bucket` series with an `le` label are
/// grouped by their other labels, and at each sample time of the group's `+Inf` bucket the
/// quantiles of the observations made during the last `window_secs` are computed — what
/// `histogram_quantile(q, rate(x_bucket[window]))` shows, without `rate`'s extrapolation.
/// With `window_secs` 0 the window is the interval since the previous sample.
///
/// Output: one series per group and quantile, named by [`quantile_metric`] with the group's labels;
/// points where nothing was observed in the window are left out. Series that are not buckets are
/// ignored; a bucket whose `le` is not a number is ignored.
pub fn histogram_quantiles(series: &[Series], quantiles: &[f64], window_secs: i64) -> Vec<Series> {
    let mut groups: BTreeMap<SeriesKey, Vec<(f64, &Series)>> = BTreeMap::new();
    for s in series {
        let Some(family) = s.key.metric.strip_suffix("_bucket") else {
            continue;
        };
        let Some(le) = s.key.label("le").and_then(parse_value) else {
            continue;
        };
        let mut group = s.key.without_label("le");
        group.metric = family.to_string();
        groups.entry(group).or_default().push((le, s));
    }
    let mut out = Vec::new();
    for (group, buckets) in groups {
        let Some((_, inf)) = buckets.iter().find(|(le, _)| *le == f64::INFINITY) else {
            continue;
        };
        let growth: Vec<(f64, Growth)> = buckets.iter().map(|(le, s)| (*le, Growth::of(&s.samples))).collect();
        let mut per_q: Vec<Vec<Sample>> = vec![Vec::new(); quantiles.len()];
        for w in inf.samples.windows(2) {
            let hi = w[1].t.millis();
            let lo = if window_secs > 0 {
                hi - window_secs * 1000
            } else {
                w[0].t.millis()
            };
            let window: Vec<Bucket> = growth
                .iter()
                .map(|(le, g)| Bucket {
                    upper_bound: *le,
                    count: g.over(lo, hi),
                })
                .collect();
            for (qi, q) in quantiles.iter().enumerate() {
                if let Some(v) = bucket_quantile(*q, &window) {
                    per_q[qi].push(Sample { t: w[1].t, value: v });
                }
            }
        }
        for (q, samples) in quantiles.iter().zip(per_q) {
            if !samples.is_empty() {
                out.push(Series {
                    key: SeriesKey {
                        metric: quantile_metric(&group.metric, *q),
                        labels: group.labels.clone(),
                    },
                    samples,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwarden_models::Timestamp;

    fn s(secs: i64, v: f64) -> Sample {
        Sample {
            t: Timestamp(secs * 1000),
            value: v,
        }
    }

    fn b(upper_bound: f64, count: f64) -> Bucket {
        Bucket { upper_bound, count }
    }

    #[test]
    fn counter_rate_is_growth_per_second() {
        assert_eq!(counter_rate(&[s(0, 0.0), s(10, 50.0), s(40, 110.0)]), vec![s(10, 5.0), s(40, 2.0)]);
    }

    #[test]
    fn a_counter_drop_is_a_reset_and_the_new_value_counts_from_zero() {
        // 10 → 30 is +20 over 10 s; 30 → 5 is a restart: 5 new since then, over 10 s.
        assert_eq!(counter_rate(&[s(0, 10.0), s(10, 30.0), s(20, 5.0)]), vec![s(10, 2.0), s(20, 0.5)]);
    }

    #[test]
    fn counter_rate_skips_repeated_timestamps_and_nan() {
        let r = counter_rate(&[s(0, 1.0), s(0, 2.0), s(5, f64::NAN), s(10, 4.0), s(20, 6.0)]);
        assert_eq!(r, vec![s(20, 0.2)]);
    }

    #[test]
    fn quantile_interpolates_linearly_inside_the_bucket() {
        // 100 observations: 50 ≤ 0.1, 40 in (0.1, 0.5], 10 in (0.5, 1].
        let h = [b(0.1, 50.0), b(0.5, 90.0), b(1.0, 100.0), b(f64::INFINITY, 100.0)];
        // p50: rank 50 is the top of the first bucket: 0 + 0.1 * 50/50.
        assert_eq!(bucket_quantile(0.5, &h), Some(0.1));
        // p70: rank 70 is 20 of 40 into (0.1, 0.5]: 0.1 + 0.4 * 0.5 = 0.3.
        assert!((bucket_quantile(0.7, &h).unwrap() - 0.3).abs() < 1e-12);
        // p95: rank 95 is 5 of 10 into (0.5, 1]: 0.75.
        assert!((bucket_quantile(0.95, &h).unwrap() - 0.75).abs() < 1e-12);
    }

    #[test]
    fn a_rank_in_the_inf_bucket_answers_the_highest_finite_bound() {
        let h = [b(0.1, 10.0), b(0.5, 20.0), b(f64::INFINITY, 100.0)];
        assert_eq!(bucket_quantile(0.99, &h), Some(0.5));
    }

    #[test]
    fn quantile_sorts_buckets_and_repairs_non_monotonic_counts() {
        // Out of order, and the 0.5 bucket (read a moment earlier) shows fewer than the 0.25 one.
        let h = [b(f64::INFINITY, 40.0), b(0.5, 10.0), b(0.25, 20.0), b(1.0, 40.0)];
        // After repair: 0.25→20, 0.5→20, 1→40, +Inf→40. p75: rank 30, 10 of 20 into (0.5, 1]: 0.75.
        assert!((bucket_quantile(0.75, &h).unwrap() - 0.75).abs() < 1e-12);
    }

    #[test]
    fn quantile_is_undefined_where_prometheus_answers_nan() {
        assert_eq!(bucket_quantile(0.5, &[b(0.1, 1.0), b(1.0, 2.0)]), None, "no +Inf bucket");
        assert_eq!(bucket_quantile(0.5, &[b(f64::INFINITY, 2.0)]), None, "one bucket");
        assert_eq!(bucket_quantile(0.5, &[b(0.1, 0.0), b(f64::INFINITY, 0.0)]), None, "no observations");
        assert_eq!(bucket_quantile(f64::NAN, &[b(0.1, 1.0), b(f64::INFINITY, 1.0)]), None);
        assert_eq!(
            bucket_quantile(-0.1, &[b(0.1, 1.0), b(f64::INFINITY, 1.0)]),
            Some(f64::NEG_INFINITY)
        );
        assert_eq!(bucket_quantile(1.5, &[b(0.1, 1.0), b(f64::INFINITY, 1.0)]), Some(f64::INFINITY));
    }

    #[test]
    fn a_first_bucket_with_a_negative_bound_answers_its_bound() {
        assert_eq!(
            bucket_quantile(0.1, &[b(-1.0, 5.0), b(1.0, 10.0), b(f64::INFINITY, 10.0)]),
            Some(-1.0)
        );
    }

    #[test]
    fn quantile_names_read_as_percentiles() {
        assert_eq!(quantile_metric("lat_seconds", 0.5), "lat_seconds:p50");
        assert_eq!(quantile_metric("lat_seconds", 0.95), "lat_seconds:p95");
        assert_eq!(quantile_metric("lat_seconds", 0.999), "lat_seconds:p99.9");
    }

    fn bucket_series(le: &str, pod: &str, values: &[(i64, f64)]) -> Series {
        Series {
            key: SeriesKey::new(
                "lat_seconds_bucket",
                [("le".to_string(), le.to_string()), ("pod".to_string(), pod.to_string())],
            ),
            samples: values.iter().map(|&(t, v)| s(t, v)).collect(),
        }
    }

    #[test]
    fn histogram_series_become_quantiles_of_each_interval() {
        // Interval 0→10: 10 observations, all ≤ 0.1. Interval 10→20: 10 more, all in (0.1, 1].
        // Interval 20→30: the pod restarted (counters reset) and made 4 observations in (0.1, 1].
        let series = vec![
            bucket_series("0.1", "a", &[(0, 0.0), (10, 10.0), (20, 10.0), (30, 0.0)]),
            bucket_series("1", "a", &[(0, 0.0), (10, 10.0), (20, 20.0), (30, 4.0)]),
            bucket_series("+Inf", "a", &[(0, 0.0), (10, 10.0), (20, 20.0), (30, 4.0)]),
        ];
        let out = histogram_quantiles(&series, &[0.5], 0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].key.metric, "lat_seconds:p50");
        assert_eq!(out[0].key.labels, vec![("pod".to_string(), "a".to_string())]);
        // 0→10: rank 5 of 10 in (0, 0.1] → 0.05. 10→20: rank 5 of 10 in (0.1, 1] → 0.55.
        // 20→30: 0.1 bucket reset to 0 (+0), 1 bucket reset to 4 (+4): rank 2 of 4 → 0.55.
        let v: Vec<f64> = out[0].samples.iter().map(|x| x.value).collect();
        assert_eq!(
            out[0].samples.iter().map(|x| x.t.millis()).collect::<Vec<_>>(),
            [10_000, 20_000, 30_000]
        );
        assert!(
            (v[0] - 0.05).abs() < 1e-12 && (v[1] - 0.55).abs() < 1e-12 && (v[2] - 0.55).abs() < 1e-12,
            "{v:?}"
        );
    }

    #[test]
    fn a_window_sums_the_intervals_it_covers() {
        let series = vec![
            bucket_series("0.1", "a", &[(0, 0.0), (10, 10.0), (20, 10.0)]),
            bucket_series("1", "a", &[(0, 0.0), (10, 10.0), (20, 20.0)]),
            bucket_series("+Inf", "a", &[(0, 0.0), (10, 10.0), (20, 20.0)]),
        ];
        // Over 20 s at t=20: 10 ≤ 0.1 and 10 in (0.1, 1]; p50 is rank 10 = top of the first bucket.
        let out = histogram_quantiles(&series, &[0.5], 20);
        assert_eq!(out[0].samples.last().unwrap().value, 0.1);
    }

    #[test]
    fn intervals_without_observations_give_no_point_and_groups_stay_apart() {
        let series = vec![
            bucket_series("0.1", "a", &[(0, 5.0), (10, 5.0)]),
            bucket_series("+Inf", "a", &[(0, 5.0), (10, 5.0)]),
            bucket_series("0.1", "b", &[(0, 0.0), (10, 2.0)]),
            bucket_series("+Inf", "b", &[(0, 0.0), (10, 2.0)]),
        ];
        let out = histogram_quantiles(&series, &[0.5, 0.99], 0);
        assert!(out.iter().all(|s| s.key.label("pod") == Some("b")), "pod a observed nothing");
        assert_eq!(out.len(), 2);
    }
}
