//! Today's hard-coded signal table and `derive`, kept verbatim (as of the commit that turned the
//! table into the `cellwarden` profile) for one purpose: the test that the built-in profile
//! derives exactly the same signal series. Test-only; nothing else may call it.

#![allow(dead_code)]

use super::SignalSeries;
use cellwarden_models::series::counter_rate;
use cellwarden_models::{Entity, Family, MetricType, Sample, Series, SeriesKey, Signal};
use std::collections::BTreeMap;

/// How a series' raw samples become the signal's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// Use the value as it is.
    Identity,
    /// A monotonic counter: use its per-second rate, with resets handled.
    Rate,
    /// A success percentage: use `1 - value/100` so that up means worse.
    SuccessPercentToErrorRatio,
    /// A 0/1 health condition (1 = healthy): use `1 - value`, the share unavailable.
    OneMinus,
}

/// Maps a series to its signal with the default names (FIXTURES.md), or `None` to skip it.
pub fn default_signal(key: &SeriesKey) -> Option<(Signal, Transform)> {
    let m = key.metric.as_str();
    use Signal::*;
    use Transform::*;
    Some(match m {
        "container_memory_working_set_bytes" | "pod_memory_usage_bytes" | "container_memory_usage_bytes" => (Memory, Identity),
        "kube_pod_container_resource_limits" if key.label("resource") == Some("memory") => (MemoryLimit, Identity),
        "memory_limit_bytes" | "container_spec_memory_limit_bytes" => (MemoryLimit, Identity),
        "container_cpu_usage_seconds_total" => (Cpu, Rate),
        "pod_cpu_usage_cores" | "pod_cpu_usage_percent" | "container_cpu_usage_percent" => (Cpu, Identity),
        "pod_server_latency_p90_seconds"
        | "pod_server_latency_p95_seconds"
        | "pod_server_latency_p99_seconds"
        | "service_request_latency_p90_seconds" => (Latency, Identity),
        "pod_client_latency_p90_seconds" | "pod_client_latency_p95_seconds" | "pod_client_latency_p99_seconds" => (ClientLatency, Identity),
        "pod_workload_ops_per_second" | "service_request_rate_per_second" => (RequestRate, Identity),
        "pod_success_rate_percent" => (ErrorRatio, SuccessPercentToErrorRatio),
        "messaging_consumer_lag_messages" | "messaging_queue_depth_messages" => (QueueLag, Identity),
        "http_server_requests_total" => (RequestRate, Rate),
        "kube_node_status_condition" if key.label("condition") == Some("Ready") && key.label("status") == Some("true") => {
            (ErrorRatio, OneMinus)
        }
        _ if m.starts_with("frontend_request_latency_") => (Latency, Identity),
        "frontend_request_success_rate_percent" => (ErrorRatio, SuccessPercentToErrorRatio),
        _ => return None,
    })
}

/// Labels that split one entity's series into parts the detectors aggregate over.
const AGGREGATED_LABELS: &[&str] = &["status", "code", "route", "method", "le"];

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
