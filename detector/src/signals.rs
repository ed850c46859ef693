//! From raw series to signal series: counters become rates (resets handled), success percentages
//! become error ratios, histograms become mean latency, request counters by status become request
//! rate and error ratio. Every derived point uses only the samples up to its own time.

use cellwarden_models::signal::{default_signal, Transform};
use cellwarden_models::{Entity, Family, MetricType, Sample, Series, SeriesKey, Signal};
use std::collections::BTreeMap;

/// A series the detectors work on.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalSeries {
    /// The raw series' key, or a derived key (`<family>:mean`, `<family>:error_ratio`).
    pub key: SeriesKey,
    pub signal: Signal,
    /// The entity the series describes; `None` for platform-wide series.
    pub entity: Option<Entity>,
    /// Values in time order.
    pub points: Vec<Sample>,
}

/// Labels that split one entity's series into parts the detectors aggregate over.
const AGGREGATED_LABELS: &[&str] = &["status", "code", "route", "method", "le"];

pub use cellwarden_models::series::counter_rate;

fn increases(samples: &[Sample]) -> BTreeMap<i64, f64> {
    let mut out = BTreeMap::new();
    for w in samples.windows(2) {
        if w[1].t > w[0].t {
            let inc = if w[1].value >= w[0].value {
                w[1].value - w[0].value
            } else {
                w[1].value
            };
            out.insert(w[1].t.millis(), inc);
        }
    }
    out
}

fn entity_key(metric: &str, key: &SeriesKey) -> SeriesKey {
    SeriesKey::new(
        metric,
        key.labels.iter().filter(|(k, _)| !AGGREGATED_LABELS.contains(&k.as_str())).cloned(),
    )
}

/// Derives the signal series of metric families.
pub fn derive(families: &[Family]) -> Vec<SignalSeries> {
    let mut out = Vec::new();
    for fam in families {
        match fam.kind {
            MetricType::Histogram if fam.name.ends_with("_seconds") => out.extend(histogram_mean(&fam.name, &fam.series)),
            _ if fam.name == "http_server_requests" || fam.name == "http_server_requests_total" => {
                out.extend(request_counters(&fam.series))
            }
            _ => {
                for s in &fam.series {
                    let Some((signal, transform)) = default_signal(&s.key) else {
                        continue;
                    };
                    let points = match transform {
                        Transform::Identity => s.samples.iter().copied().filter(|p| p.value.is_finite()).collect(),
                        Transform::Rate => counter_rate(&s.samples),
                        Transform::OneMinus => s
                            .samples
                            .iter()
                            .filter(|p| p.value.is_finite())
                            .map(|p| Sample {
                                t: p.t,
                                value: (1.0 - p.value).clamp(0.0, 1.0),
                            })
                            .collect(),
                        Transform::SuccessPercentToErrorRatio => s
                            .samples
                            .iter()
                            .filter(|p| p.value.is_finite())
                            .map(|p| Sample {
                                t: p.t,
                                value: (1.0 - p.value / 100.0).clamp(0.0, 1.0),
                            })
                            .collect(),
                    };
                    if !points.is_empty() {
                        out.push(SignalSeries {
                            entity: Entity::of_series(&s.key),
                            key: s.key.clone(),
                            signal,
                            points,
                        });
                    }
                }
            }
        }
    }
    out
}

/// `rate(sum) / rate(count)` per label set (route and status aggregated): mean latency.
fn histogram_mean(family: &str, series: &[Series]) -> Vec<SignalSeries> {
    let mut sums: BTreeMap<SeriesKey, BTreeMap<i64, f64>> = BTreeMap::new();
    let mut counts: BTreeMap<SeriesKey, BTreeMap<i64, f64>> = BTreeMap::new();
    for s in series {
        let target = if s.key.metric.ends_with("_sum") {
            &mut sums
        } else if s.key.metric.ends_with("_count") {
            &mut counts
        } else {
            continue;
        };
        let k = entity_key(&format!("{family}:mean"), &s.key);
        let acc = target.entry(k).or_default();
        for (t, inc) in increases(&s.samples) {
            *acc.entry(t).or_default() += inc;
        }
    }
    let mut out = Vec::new();
    for (k, sum) in sums {
        let Some(count) = counts.get(&k) else { continue };
        let points: Vec<Sample> = sum
            .iter()
            .filter_map(|(t, s)| {
                count.get(t).filter(|c| **c > 0.0).map(|c| Sample {
                    t: cellwarden_models::Timestamp(*t),
                    value: s / c,
                })
            })
            .collect();
        if !points.is_empty() {
            out.push(SignalSeries {
                entity: Entity::of_series(&k),
                key: k,
                signal: Signal::Latency,
                points,
            });
        }
    }
    out
}

/// Request rate and 5xx error ratio per label set (route and status aggregated).
fn request_counters(series: &[Series]) -> Vec<SignalSeries> {
    let mut total: BTreeMap<SeriesKey, BTreeMap<i64, f64>> = BTreeMap::new();
    let mut errors: BTreeMap<SeriesKey, BTreeMap<i64, f64>> = BTreeMap::new();
    let mut step_secs: BTreeMap<SeriesKey, BTreeMap<i64, f64>> = BTreeMap::new();
    for s in series {
        if !s.key.metric.ends_with("_total") {
            continue;
        }
        let k = entity_key("http_server_requests", &s.key);
        let is_error = s
            .key
            .label("status")
            .or_else(|| s.key.label("code"))
            .is_some_and(|c| c.starts_with('5'));
        let incs = increases(&s.samples);
        for w in s.samples.windows(2) {
            step_secs
                .entry(k.clone())
                .or_default()
                .insert(w[1].t.millis(), w[1].t.secs_since(w[0].t));
        }
        for (t, inc) in incs {
            *total.entry(k.clone()).or_default().entry(t).or_default() += inc;
            if is_error {
                *errors.entry(k.clone()).or_default().entry(t).or_default() += inc;
            }
        }
    }
    let mut out = Vec::new();
    for (k, tot) in total {
        let steps = &step_secs[&k];
        let errs = errors.get(&k);
        let entity = Entity::of_series(&k);
        let rate: Vec<Sample> = tot
            .iter()
            .filter(|(t, _)| steps.get(t).is_some_and(|d| *d > 0.0))
            .map(|(t, v)| Sample {
                t: cellwarden_models::Timestamp(*t),
                value: v / steps[t],
            })
            .collect();
        let ratio: Vec<Sample> = tot
            .iter()
            .filter(|(_, v)| **v > 0.0)
            .map(|(t, v)| Sample {
                t: cellwarden_models::Timestamp(*t),
                value: errs.and_then(|e| e.get(t)).copied().unwrap_or(0.0) / v,
            })
            .collect();
        out.push(SignalSeries {
            key: SeriesKey::new("http_server_requests:rate", k.labels.clone()),
            signal: Signal::RequestRate,
            entity: entity.clone(),
            points: rate,
        });
        out.push(SignalSeries {
            key: SeriesKey::new("http_server_requests:error_ratio", k.labels.clone()),
            signal: Signal::ErrorRatio,
            entity,
            points: ratio,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwarden_models::Timestamp;

    fn s(t: i64, v: f64) -> Sample {
        Sample {
            t: Timestamp(t * 1000),
            value: v,
        }
    }

    #[test]
    fn counter_reset_counts_the_new_value_as_the_increase() {
        let r = counter_rate(&[s(0, 10.0), s(10, 30.0), s(20, 5.0)]);
        assert_eq!(r, vec![s(10, 2.0), s(20, 0.5)]);
    }

    #[test]
    fn requests_by_status_become_rate_and_error_ratio() {
        let mk = |status: &str, vals: [f64; 3]| Series {
            key: SeriesKey::new(
                "http_server_requests_total",
                [
                    ("service".to_string(), "ledger".to_string()),
                    ("status".to_string(), status.to_string()),
                ],
            ),
            samples: vec![s(0, vals[0]), s(30, vals[1]), s(60, vals[2])],
        };
        let out = request_counters(&[mk("200", [0.0, 90.0, 180.0]), mk("503", [0.0, 30.0, 30.0])]);
        let rate = out.iter().find(|x| x.signal == Signal::RequestRate).unwrap();
        let ratio = out.iter().find(|x| x.signal == Signal::ErrorRatio).unwrap();
        assert_eq!(rate.points, vec![s(30, 4.0), s(60, 3.0)]);
        assert_eq!(ratio.points, vec![s(30, 0.25), s(60, 0.0)]);
        assert_eq!(rate.entity.as_ref().unwrap().name, "ledger");
    }
}
