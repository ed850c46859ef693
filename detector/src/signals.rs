//! From raw series to signal series, by rules ([`rules`]): counters become rates (resets
//! handled), success shares become error ratios, histograms become mean latency, request counters
//! by status become request rate and error ratio. Every derived point uses only the samples up to
//! its own time.
//!
//! [`derive`] gives the signal series; [`explain`] gives them with the fate of every raw series
//! (which rule read it into what, or why it was left out) for `cellwarden signals`.

pub mod rules;

#[cfg(test)]
mod legacy;
#[cfg(test)]
mod profiles_test;

use cellwarden_models::{Entity, Family, Sample, Series, SeriesKey, Signal};
use rules::{CompiledRule, Read, RuleRef, SignalRule, SignalRules};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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

/// Labels that split one entity's series into parts the detectors aggregate over (for rules
/// that do not name the entity's labels themselves).
const AGGREGATED_LABELS: &[&str] = &["status", "code", "route", "method", "le"];

pub use cellwarden_models::series::counter_rate;

/// What became of one raw series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesFate {
    pub key: SeriesKey,
    pub fate: Fate,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    /// Read by a rule into these signal series.
    Read { by: RuleRef, into: Vec<(Signal, SeriesKey)> },
    /// Named by a rule, but it gave nothing: the reason.
    Unread { by: RuleRef, reason: &'static str },
    /// No rule names it; `near` is the first rule that names its metric but not its labels.
    Ignored { near: Option<NearMiss> },
}

/// A rule that names a series' metric and would have read it, but for a label.
#[derive(Debug, Clone, PartialEq)]
pub struct NearMiss {
    pub by: RuleRef,
    pub label: String,
    pub wanted: String,
    pub found: Option<String>,
}

/// Signal series and the fate of every raw series, in exposition order.
#[derive(Debug, Clone, PartialEq)]
pub struct Derivation {
    pub series: Vec<SignalSeries>,
    pub fates: Vec<SeriesFate>,
}

/// Derives the signal series of metric families with `rules` (the first rule naming a series
/// reads it).
pub fn derive(families: &[Family], rules: &SignalRules) -> Vec<SignalSeries> {
    run(families, rules, None)
}

/// [`derive`], telling what became of every raw series.
pub fn explain(families: &[Family], rules: &SignalRules) -> Derivation {
    let mut fates = Vec::new();
    let series = run(families, rules, Some(&mut fates));
    // A group reader may still give nothing (a `_sum` without its `_count`, no increase at all).
    let made: BTreeSet<&SeriesKey> = series.iter().filter(|s| !s.points.is_empty()).map(|s| &s.key).collect();
    for f in &mut fates {
        if let Fate::Read { by, into } = &f.fate {
            if !into.iter().any(|(_, k)| made.contains(k)) {
                f.fate = Fate::Unread {
                    by: by.clone(),
                    reason: "its signal series got no points (e.g. a _sum without a _count, or no increase)",
                };
            }
        }
    }
    Derivation { series, fates }
}

/// A place in the output: a finished series, or a group read once all its series are known.
/// Groups keep the position of their first series, so the output is in exposition order; a
/// group never spans families (as the hard-coded readers this replaced read one family each).
enum Slot {
    Done(SignalSeries),
    Group(usize),
}

struct Group<'a> {
    rule: usize,
    base: String,
    series: Vec<&'a Series>,
}

fn run(families: &[Family], rules: &SignalRules, mut fates: Option<&mut Vec<SeriesFate>>) -> Vec<SignalSeries> {
    let mut slots = Vec::new();
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut group_of: HashMap<(usize, usize, String), usize> = HashMap::new();
    for (f, fam) in families.iter().enumerate() {
        // Rules depend on the sample name, of which a family has a handful.
        let mut naming: HashMap<&str, Vec<usize>> = HashMap::new();
        for s in &fam.series {
            let candidates = naming
                .entry(s.key.metric.as_str())
                .or_insert_with(|| rules.naming(fam, &s.key.metric));
            // A metric some rule names is that rule's to take or leave by its labels: an
            // inference does not pick up what a rule left out on purpose (Istio's client reports).
            let ruled = candidates.iter().any(|i| rules.rules()[*i].origin != rules::Origin::Inferred);
            let chosen = candidates
                .iter()
                .copied()
                .filter(|i| !ruled || rules.rules()[*i].origin != rules::Origin::Inferred)
                .find(|i| rules.rules()[*i].accepts(&s.key));
            let Some(i) = chosen else {
                if let Some(out) = fates.as_deref_mut() {
                    let near = candidates.first().and_then(|i| {
                        let r = &rules.rules()[*i];
                        r.mismatch(&s.key).map(|(label, wanted, found)| NearMiss {
                            by: r.rule_ref(),
                            label,
                            wanted,
                            found,
                        })
                    });
                    out.push(SeriesFate {
                        key: s.key.clone(),
                        fate: Fate::Ignored { near },
                    });
                }
                continue;
            };
            let r = &rules.rules()[i];
            if r.spec.read == Read::Ignore {
                if let Some(out) = fates.as_deref_mut() {
                    out.push(SeriesFate {
                        key: s.key.clone(),
                        fate: Fate::Unread {
                            by: r.rule_ref(),
                            reason: "left out on purpose: no signal of a service's health",
                        },
                    });
                }
                continue;
            }
            if r.spec.read.aggregates() {
                let (base, unread) = group_base(r, &s.key.metric);
                if let Some(out) = fates.as_deref_mut() {
                    out.push(SeriesFate {
                        key: s.key.clone(),
                        fate: match unread {
                            Some(reason) => Fate::Unread { by: r.rule_ref(), reason },
                            None => Fate::Read {
                                by: r.rule_ref(),
                                into: group_keys(r, &base, &s.key),
                            },
                        },
                    });
                }
                if unread.is_some() {
                    continue;
                }
                let g = *group_of.entry((f, i, base.clone())).or_insert_with(|| {
                    groups.push(Group {
                        rule: i,
                        base,
                        series: Vec::new(),
                    });
                    slots.push(Slot::Group(groups.len() - 1));
                    groups.len() - 1
                });
                groups[g].series.push(s);
            } else {
                let signal = r.spec.signal.expect("compiled rules that do not read requests have a signal");
                let key = series_key(&r.spec, &s.key);
                let points = read_series(&r.spec, &s.samples);
                if let Some(out) = fates.as_deref_mut() {
                    out.push(SeriesFate {
                        key: s.key.clone(),
                        fate: if points.is_empty() {
                            Fate::Unread {
                                by: r.rule_ref(),
                                reason: "no points: no finite sample (or, for a rate, fewer than two)",
                            }
                        } else {
                            Fate::Read {
                                by: r.rule_ref(),
                                into: vec![(signal, key.clone())],
                            }
                        },
                    });
                }
                if !points.is_empty() {
                    slots.push(Slot::Done(SignalSeries {
                        entity: Entity::of_series(&key),
                        key,
                        signal,
                        points,
                    }));
                }
            }
        }
    }
    let mut done: Vec<Option<Vec<SignalSeries>>> = groups
        .iter()
        .map(|g| {
            let r = &rules.rules()[g.rule];
            Some(match r.spec.read {
                Read::HistogramMean => histogram_mean(&g.base, &r.spec, &g.series),
                Read::HistogramQuantile => histogram_quantile(&g.base, &r.spec, &g.series),
                _ => request_counters(&g.base, &r.spec, &g.series),
            })
        })
        .collect();
    let mut out = Vec::with_capacity(slots.len());
    for slot in slots {
        match slot {
            Slot::Done(s) => out.push(s),
            Slot::Group(g) => out.extend(done[g].take().unwrap_or_default()),
        }
    }
    out
}

/// The name a group reader files `sample` under, or why it does not read it.
fn group_base(r: &CompiledRule, sample: &str) -> (String, Option<&'static str>) {
    match r.spec.read {
        Read::HistogramMean => {
            let base = r.name_of(sample).unwrap_or(sample).to_string();
            let unread = sample
                .ends_with("_bucket")
                .then_some("buckets are not read: the mean comes from _sum and _count");
            (base, unread)
        }
        Read::HistogramQuantile => {
            let base = r.name_of(sample).unwrap_or(sample).to_string();
            let unread = (!sample.ends_with("_bucket")).then_some("a quantile comes from the buckets only");
            (base, unread)
        }
        // Envoy and ingress-nginx write counters without `_total`; the rule names the sample.
        _ => match sample.strip_suffix("_total") {
            Some(base) => (base.to_string(), None),
            None if sample.ends_with("_created") => (sample.to_string(), Some("a _created sample is a start time, not a count")),
            None => (sample.to_string(), None),
        },
    }
}

/// The signal series a group reader makes of `key` (for [`explain`]).
fn group_keys(r: &CompiledRule, base: &str, key: &SeriesKey) -> Vec<(Signal, SeriesKey)> {
    let labels = group_labels(&r.spec, key);
    match r.spec.read {
        Read::HistogramMean => vec![(
            r.spec.signal.unwrap_or(Signal::Latency),
            SeriesKey::new(format!("{base}:mean"), labels),
        )],
        Read::HistogramQuantile => vec![(
            r.spec.signal.unwrap_or(Signal::Latency),
            SeriesKey::new(quantile_metric(base, r.spec.quantile.unwrap_or(0.5)), labels),
        )],
        _ => vec![
            (Signal::RequestRate, SeriesKey::new(format!("{base}:rate"), labels.clone())),
            (Signal::ErrorRatio, SeriesKey::new(format!("{base}:error_ratio"), labels)),
        ],
    }
}

/// The labels of the signal series a group reader makes: the entity's (under cellwarden's
/// names) when the rule names them, else all but those that split an entity.
fn group_labels(rule: &SignalRule, key: &SeriesKey) -> Vec<(String, String)> {
    match &rule.entity {
        Some(e) => e.resolve(key),
        None => key
            .labels
            .iter()
            .filter(|(k, _)| !AGGREGATED_LABELS.contains(&k.as_str()) && !rule.status_labels.contains(k))
            .cloned()
            .collect(),
    }
}

/// The key of a series read on its own: the raw key, with the entity's labels renamed to
/// cellwarden's when the rule names them.
fn series_key(rule: &SignalRule, key: &SeriesKey) -> SeriesKey {
    match &rule.entity {
        None => key.clone(),
        Some(e) => SeriesKey::new(
            key.metric.clone(),
            key.labels.iter().filter(|(k, _)| !e.mentions(k)).cloned().chain(e.resolve(key)),
        ),
    }
}

/// The values of one series under a per-series reader.
fn read_series(rule: &SignalRule, samples: &[Sample]) -> Vec<Sample> {
    let unit = rule.unit;
    let finite = samples.iter().filter(|p| p.value.is_finite());
    match rule.read {
        Read::Gauge | Read::SummaryQuantile => finite
            .map(|p| Sample {
                t: p.t,
                value: unit.to_base(p.value),
            })
            .collect(),
        Read::CounterRate => counter_rate(samples)
            .into_iter()
            .map(|p| Sample {
                t: p.t,
                value: unit.to_base(p.value),
            })
            .collect(),
        Read::SuccessRatio => finite
            .map(|p| Sample {
                t: p.t,
                value: (1.0 - unit.to_base(p.value)).clamp(0.0, 1.0),
            })
            .collect(),
        Read::HistogramMean | Read::HistogramQuantile | Read::Requests => unreachable!("group readers read groups"),
        Read::Ignore => unreachable!("ignored series are not read"),
    }
}

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

/// `rate(sum) / rate(count)` per entity (the labels that split one aggregated): mean latency.
fn histogram_mean(base: &str, rule: &SignalRule, series: &[&Series]) -> Vec<SignalSeries> {
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
        let k = SeriesKey::new(format!("{base}:mean"), group_labels(rule, &s.key));
        let acc = target.entry(k).or_default();
        for (t, inc) in increases(&s.samples) {
            *acc.entry(t).or_default() += inc;
        }
    }
    let signal = rule.signal.unwrap_or(Signal::Latency);
    let mut out = Vec::new();
    for (k, sum) in sums {
        let Some(count) = counts.get(&k) else { continue };
        let points: Vec<Sample> = sum
            .iter()
            .filter_map(|(t, s)| {
                count.get(t).filter(|c| **c > 0.0).map(|c| Sample {
                    t: cellwarden_models::Timestamp(*t),
                    value: rule.unit.to_base(s / c),
                })
            })
            .collect();
        if !points.is_empty() {
            out.push(SignalSeries {
                entity: Entity::of_series(&k),
                key: k,
                signal,
                points,
            });
        }
    }
    out
}

/// The derived metric of a histogram quantile: `<base>:p99` for 0.99.
fn quantile_metric(base: &str, q: f64) -> String {
    format!("{base}:p{}", q * 100.0)
}

/// The `q` quantile of one step's bucket increases (upper bound → cumulative count, `+Inf`
/// last), interpolated linearly within the bucket it falls in, as PromQL's
/// `histogram_quantile`; in the `+Inf` bucket, the highest finite bound.
fn bucket_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower);
            }
            let inside = count - below;
            return Some(if inside > 0.0 {
                lower + (bound - lower) * (rank - below) / inside
            } else {
                bound
            });
        }
        (lower, below) = (bound, count);
    }
    Some(lower)
}

/// A quantile per entity from bucket increases (the labels that split one summed over).
fn histogram_quantile(base: &str, rule: &SignalRule, series: &[&Series]) -> Vec<SignalSeries> {
    let q = rule.quantile.unwrap_or(0.5);
    // Per derived key: step → bucket bound (as bits, to key a map) → summed increase.
    let mut acc: BTreeMap<SeriesKey, BTreeMap<i64, BTreeMap<u64, f64>>> = BTreeMap::new();
    for s in series {
        let Some(le) = s.key.label("le").and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        if le.is_nan() {
            continue;
        }
        let k = SeriesKey::new(quantile_metric(base, q), group_labels(rule, &s.key));
        let steps = acc.entry(k).or_default();
        // Bounds of a histogram are ordered like their bit patterns when positive (`le` ≥ 0).
        let bits = le.max(0.0).to_bits();
        for (t, inc) in increases(&s.samples) {
            *steps.entry(t).or_default().entry(bits).or_default() += inc;
        }
    }
    let signal = rule.signal.unwrap_or(Signal::Latency);
    let mut out = Vec::new();
    for (k, steps) in acc {
        let points: Vec<Sample> = steps
            .iter()
            .filter_map(|(t, buckets)| {
                let b: Vec<(f64, f64)> = buckets.iter().map(|(bits, c)| (f64::from_bits(*bits), *c)).collect();
                bucket_quantile(q, &b).map(|v| Sample {
                    t: cellwarden_models::Timestamp(*t),
                    value: rule.unit.to_base(v),
                })
            })
            .collect();
        if !points.is_empty() {
            out.push(SignalSeries {
                entity: Entity::of_series(&k),
                key: k,
                signal,
                points,
            });
        }
    }
    out
}

/// Request rate and 5xx error ratio per entity (the labels that split one aggregated).
fn request_counters(base: &str, rule: &SignalRule, series: &[&Series]) -> Vec<SignalSeries> {
    const DEFAULT_STATUS_LABELS: &[&str] = &["status", "code"];
    let mut total: BTreeMap<SeriesKey, BTreeMap<i64, f64>> = BTreeMap::new();
    let mut errors: BTreeMap<SeriesKey, BTreeMap<i64, f64>> = BTreeMap::new();
    let mut step_secs: BTreeMap<SeriesKey, BTreeMap<i64, f64>> = BTreeMap::new();
    for s in series {
        if s.key.metric.ends_with("_created") {
            continue;
        }
        let k = SeriesKey::new(base, group_labels(rule, &s.key));
        let status = if rule.status_labels.is_empty() {
            DEFAULT_STATUS_LABELS.iter().find_map(|l| s.key.label(l))
        } else {
            rule.status_labels.iter().find_map(|l| s.key.label(l))
        };
        // 5xx, Envoy's code class "5", or Micrometer's outcome.
        let is_error = status.is_some_and(|c| c.starts_with('5') || c == "SERVER_ERROR");
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
            key: SeriesKey::new(format!("{base}:rate"), k.labels.clone()),
            signal: Signal::RequestRate,
            entity: entity.clone(),
            points: rate,
        });
        out.push(SignalSeries {
            key: SeriesKey::new(format!("{base}:error_ratio"), k.labels.clone()),
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
    use cellwarden_models::{MetricType, Timestamp};

    fn s(t: i64, v: f64) -> Sample {
        Sample {
            t: Timestamp(t * 1000),
            value: v,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn series(metric: &str, pairs: &[(&str, &str)], samples: Vec<Sample>) -> Series {
        Series {
            key: SeriesKey::new(metric, labels(pairs)),
            samples,
        }
    }

    fn family(name: &str, kind: MetricType, series: Vec<Series>) -> Family {
        Family {
            name: name.into(),
            kind,
            series,
            ..Default::default()
        }
    }

    #[test]
    fn counter_reset_counts_the_new_value_as_the_increase() {
        let r = counter_rate(&[s(0, 10.0), s(10, 30.0), s(20, 5.0)]);
        assert_eq!(r, vec![s(10, 2.0), s(20, 0.5)]);
    }

    #[test]
    fn requests_by_status_become_rate_and_error_ratio() {
        let mk = |status: &str, vals: [f64; 3]| {
            series(
                "http_server_requests_total",
                &[("service", "ledger"), ("status", status)],
                vec![s(0, vals[0]), s(30, vals[1]), s(60, vals[2])],
            )
        };
        let fam = family(
            "http_server_requests",
            MetricType::Counter,
            vec![mk("200", [0.0, 90.0, 180.0]), mk("503", [0.0, 30.0, 30.0])],
        );
        let out = derive(&[fam], &SignalRules::default());
        let rate = out.iter().find(|x| x.signal == Signal::RequestRate).unwrap();
        let ratio = out.iter().find(|x| x.signal == Signal::ErrorRatio).unwrap();
        assert_eq!(rate.points, vec![s(30, 4.0), s(60, 3.0)]);
        assert_eq!(ratio.points, vec![s(30, 0.25), s(60, 0.0)]);
        assert_eq!(rate.entity.as_ref().unwrap().name, "ledger");
    }

    /// Istio's two reports of the same requests, from a caller (`api-gateway`) to `ledger` in
    /// `cell-2`, with the histogram in milliseconds.
    fn istio_families() -> Vec<Family> {
        let dest = |code: &'static str| {
            vec![
                ("reporter", "destination"),
                ("source_workload", "api-gateway"),
                ("source_workload_namespace", "cell-2"),
                ("destination_workload", "ledger-v1"),
                ("destination_canonical_service", "ledger"),
                ("destination_workload_namespace", "cell-2"),
                ("response_code", code),
            ]
        };
        let mut src = dest("200");
        src[0] = ("reporter", "source");
        let requests = family(
            "istio_requests",
            MetricType::Counter,
            vec![
                series("istio_requests_total", &dest("200"), vec![s(0, 0.0), s(30, 90.0), s(60, 180.0)]),
                series("istio_requests_total", &dest("503"), vec![s(0, 0.0), s(30, 30.0), s(60, 30.0)]),
                series("istio_requests_total", &src, vec![s(0, 0.0), s(30, 90.0), s(60, 180.0)]),
            ],
        );
        let d = dest("200");
        let hist = family(
            "istio_request_duration_milliseconds",
            MetricType::Histogram,
            vec![
                series(
                    "istio_request_duration_milliseconds_sum",
                    &d,
                    vec![s(0, 0.0), s(30, 2500.0), s(60, 7500.0)],
                ),
                series(
                    "istio_request_duration_milliseconds_count",
                    &d,
                    vec![s(0, 0.0), s(30, 100.0), s(60, 200.0)],
                ),
                series(
                    "istio_request_duration_milliseconds_bucket",
                    &[d.as_slice(), &[("le", "+Inf")]].concat(),
                    vec![s(0, 0.0), s(30, 100.0), s(60, 200.0)],
                ),
            ],
        );
        vec![requests, hist]
    }

    #[test]
    fn istio_profile_reads_the_servers_report_per_workload_in_seconds() {
        let out = derive(&istio_families(), &SignalRules::default());
        let ledger = Entity::service(Some("cell-2"), "ledger");
        let rate = out.iter().find(|x| x.signal == Signal::RequestRate).expect("a request rate");
        assert_eq!(rate.entity.as_ref(), Some(&ledger));
        assert_eq!(
            rate.key,
            SeriesKey::new("istio_requests:rate", labels(&[("cell", "cell-2"), ("service", "ledger")]))
        );
        // Only the destination's report counts: 120 requests in the first 30 s, 90 in the next.
        assert_eq!(rate.points, vec![s(30, 4.0), s(60, 3.0)]);
        let ratio = out.iter().find(|x| x.signal == Signal::ErrorRatio).unwrap();
        assert_eq!(ratio.points, vec![s(30, 0.25), s(60, 0.0)]);
        let latency = out.iter().find(|x| x.signal == Signal::Latency).expect("a latency");
        assert_eq!(latency.entity.as_ref(), Some(&ledger));
        assert_eq!(latency.points, vec![s(30, 0.025), s(60, 0.05)]);
        assert_eq!(out.len(), 3, "{out:#?}");
    }

    #[test]
    fn explain_names_the_rule_and_the_label_that_kept_a_series_out() {
        let d = explain(&istio_families(), &SignalRules::default());
        let source = d
            .fates
            .iter()
            .find(|f| f.key.label("reporter") == Some("source"))
            .expect("the source report");
        let Fate::Ignored { near: Some(near) } = &source.fate else {
            panic!("the client's report is not read: {:?}", source.fate)
        };
        assert_eq!(near.by.id, "istio-requests");
        assert_eq!(
            (near.label.as_str(), near.wanted.as_str(), near.found.as_deref()),
            ("reporter", "destination", Some("source"))
        );
        let bucket = d.fates.iter().find(|f| f.key.metric.ends_with("_bucket")).unwrap();
        assert!(matches!(&bucket.fate, Fate::Unread { by, .. } if by.id == "istio-request-duration"));
        let sum = d.fates.iter().find(|f| f.key.metric.ends_with("_sum")).unwrap();
        assert!(matches!(&sum.fate, Fate::Read { into, .. } if into[0].1.metric == "istio_request_duration_milliseconds:mean"));
    }

    #[test]
    fn a_config_rule_wins_over_the_profile_and_a_series_no_rule_names_is_ignored() {
        let gauge = |name: &str| {
            family(
                name,
                MetricType::Gauge,
                vec![series(name, &[("service", "ledger")], vec![s(0, 250.0), s(30, 500.0)])],
            )
        };
        let fams = [gauge("checkout_p99_ms"), gauge("pod_server_latency_p99_seconds")];
        let without = explain(&fams, &SignalRules::default());
        assert!(matches!(without.fates[0].fate, Fate::Ignored { near: None }));
        assert_eq!(without.series.len(), 1);
        let mine: Vec<SignalRule> = serde_yaml_ng::from_str(
            "- {metric: checkout_p99_ms, signal: latency, read: gauge, unit: milliseconds}\n\
             - {metric: pod_server_latency_p99_seconds, signal: client_latency, read: gauge}\n",
        )
        .unwrap();
        let with = derive(&fams, &SignalRules::new(&mine).unwrap());
        assert_eq!(with[0].signal, Signal::Latency);
        assert_eq!(with[0].points, vec![s(0, 0.25), s(30, 0.5)]);
        assert_eq!(with[1].signal, Signal::ClientLatency, "the config's rule comes first");
    }

    #[test]
    fn a_summary_rule_reads_its_quantile_and_names_the_entity_from_the_rules_labels() {
        let q = |quantile: &str, v: f64| {
            series(
                "checkout_duration_ms",
                &[("app", "checkout"), ("kubernetes_namespace", "cell-3"), ("quantile", quantile)],
                vec![s(0, v), s(30, 2.0 * v)],
            )
        };
        let fam = family("checkout_duration_ms", MetricType::Summary, vec![q("0.5", 40.0), q("0.99", 300.0)]);
        let mine: Vec<SignalRule> = serde_yaml_ng::from_str(
            "- metric: checkout_duration_ms\n  signal: latency\n  read: summary_quantile\n  quantile: 0.99\n  unit: milliseconds\n  entity: {service: [app], cell: [kubernetes_namespace]}\n",
        )
        .unwrap();
        let d = explain(&[fam], &SignalRules::new(&mine).unwrap());
        assert_eq!(d.series.len(), 1, "only the 0.99 quantile: {:?}", d.series);
        assert_eq!(d.series[0].points, vec![s(0, 0.3), s(30, 0.6)]);
        assert_eq!(d.series[0].entity, Some(Entity::service(Some("cell-3"), "checkout")));
        assert_eq!(
            d.series[0].key.label("service"),
            Some("checkout"),
            "peer comparison reads cellwarden's labels"
        );
        let Fate::Ignored { near: Some(near) } = &d.fates[0].fate else {
            panic!("{:?}", d.fates[0])
        };
        assert_eq!((near.label.as_str(), near.found.as_deref()), ("quantile", Some("0.5")));
    }

    #[test]
    fn bucket_quantile_interpolates_within_the_bucket_as_promql_does() {
        // 100 requests: 50 at most 100 ms, 90 at most 250 ms, all at most 1000 ms.
        let b = [(100.0, 50.0), (250.0, 90.0), (1000.0, 100.0), (f64::INFINITY, 100.0)];
        assert_eq!(bucket_quantile(0.5, &b), Some(100.0));
        assert_eq!(bucket_quantile(0.25, &b), Some(50.0));
        assert_eq!(bucket_quantile(0.95, &b), Some(625.0));
        // Beyond the last finite bound: that bound, as PromQL answers.
        assert_eq!(bucket_quantile(0.99, &[(100.0, 50.0), (f64::INFINITY, 100.0)]), Some(100.0));
        assert_eq!(bucket_quantile(0.5, &[(100.0, 0.0), (f64::INFINITY, 0.0)]), None);
    }

    #[test]
    fn a_histogram_quantile_rule_reads_the_buckets_per_entity_in_seconds() {
        let mine: Vec<SignalRule> = serde_yaml_ng::from_str(
            "- metric: istio_request_duration_milliseconds\n  labels: {reporter: destination}\n  signal: latency\n  read: histogram_quantile\n  quantile: 0.5\n  unit: milliseconds\n  entity: {service: [destination_canonical_service], cell: [destination_workload_namespace]}\n",
        )
        .unwrap();
        let bucket = |le: &str, v: [f64; 2]| {
            series(
                "istio_request_duration_milliseconds_bucket",
                &[
                    ("reporter", "destination"),
                    ("destination_canonical_service", "ledger"),
                    ("destination_workload_namespace", "cell-2"),
                    ("le", le),
                ],
                vec![s(0, v[0]), s(30, v[1])],
            )
        };
        let fam = family(
            "istio_request_duration_milliseconds",
            MetricType::Histogram,
            vec![bucket("100", [0.0, 50.0]), bucket("250", [0.0, 90.0]), bucket("+Inf", [0.0, 100.0])],
        );
        let out = derive(&[fam], &SignalRules::new(&mine).unwrap());
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].key.metric, "istio_request_duration_milliseconds:p50");
        assert_eq!(out[0].entity, Some(Entity::service(Some("cell-2"), "ledger")));
        assert_eq!(out[0].points, vec![s(30, 0.1)]);
    }

    #[test]
    fn a_seconds_histogram_no_rule_names_is_inferred_as_latency() {
        let l = [("service", "ledger")];
        let fam = family(
            "rpc_server_duration_seconds",
            MetricType::Histogram,
            vec![
                series("rpc_server_duration_seconds_sum", &l, vec![s(0, 0.0), s(30, 5.0)]),
                series("rpc_server_duration_seconds_count", &l, vec![s(0, 0.0), s(30, 100.0)]),
            ],
        );
        let d = explain(&[fam], &SignalRules::default());
        assert_eq!(d.series[0].signal, Signal::Latency);
        assert_eq!(d.series[0].points, vec![s(30, 0.05)]);
        assert!(matches!(&d.fates[0].fate, Fate::Read { by, .. } if by.origin == rules::Origin::Inferred));
    }

    /// Every name of the table the profile replaced, in one exposition: both derive the same.
    #[test]
    fn builtin_profile_derives_what_the_hard_coded_table_did_on_every_name() {
        let pts = || vec![s(0, 10.0), s(30, 40.0), s(60, 95.0), s(90, 20.0)];
        let gauges = [
            "container_memory_working_set_bytes",
            "pod_memory_usage_bytes",
            "container_memory_usage_bytes",
            "memory_limit_bytes",
            "container_spec_memory_limit_bytes",
            "container_cpu_usage_seconds_total",
            "pod_cpu_usage_cores",
            "pod_cpu_usage_percent",
            "container_cpu_usage_percent",
            "pod_server_latency_p90_seconds",
            "pod_server_latency_p95_seconds",
            "pod_server_latency_p99_seconds",
            "service_request_latency_p90_seconds",
            "pod_client_latency_p90_seconds",
            "pod_client_latency_p95_seconds",
            "pod_client_latency_p99_seconds",
            "pod_workload_ops_per_second",
            "service_request_rate_per_second",
            "pod_success_rate_percent",
            "messaging_consumer_lag_messages",
            "messaging_queue_depth_messages",
            "messaging_consumer_offset",
            "frontend_request_latency_p50_seconds",
            "frontend_request_success_rate_percent",
            "kube_pod_container_status_restarts_total",
        ];
        let pod = [("namespace", "cell-1"), ("pod", "ledger-7d9f8b6c5d-x2x7q")];
        let mut fams: Vec<Family> = gauges
            .iter()
            .map(|g| family(g, MetricType::Gauge, vec![series(g, &pod, pts())]))
            .collect();
        fams.push(family(
            "kube_pod_container_resource_limits",
            MetricType::Gauge,
            ["memory", "cpu"]
                .iter()
                .map(|r| series("kube_pod_container_resource_limits", &[pod[0], pod[1], ("resource", r)], pts()))
                .collect(),
        ));
        fams.push(family(
            "kube_node_status_condition",
            MetricType::Gauge,
            [("Ready", "true"), ("Ready", "false"), ("DiskPressure", "true")]
                .iter()
                .map(|(c, st)| {
                    series(
                        "kube_node_status_condition",
                        &[("node", "n1"), ("condition", c), ("status", st)],
                        pts(),
                    )
                })
                .collect(),
        ));
        let hist = |name: &str| {
            family(
                name,
                MetricType::Histogram,
                ["_sum", "_count", "_bucket"]
                    .iter()
                    .map(|suffix| series(&format!("{name}{suffix}"), &[("service", "ledger"), ("route", "/")], pts()))
                    .collect(),
            )
        };
        fams.push(hist("http_server_request_duration_seconds"));
        fams.push(hist("db_query_duration_seconds"));
        // (`db_query_duration_milliseconds`, which the table ignored, is an inference now.)
        for name in ["http_server_requests", "http_server_requests_total"] {
            fams.push(family(
                name,
                MetricType::Counter,
                ["200", "500"]
                    .iter()
                    .map(|st| series("http_server_requests_total", &[("cell", "cell-3"), ("status", st)], pts()))
                    .collect(),
            ));
        }
        let now = derive(&fams, &SignalRules::default());
        let before = legacy::derive(&fams);
        assert_eq!(now.len(), before.len());
        for (a, b) in now.iter().zip(&before) {
            assert!(a == b, "{} differs from {}", a.key, b.key);
        }
        assert!(now.len() > gauges.len(), "the exposition exercises the readers: {}", now.len());
    }

    /// The bundled fixtures (the simulator's names) derive exactly what they did before rules.
    #[test]
    fn builtin_profile_derives_what_the_hard_coded_table_did_on_the_bundled_fixtures() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
        let mut compared = 0;
        for case in ["memory-leak", "zone-outage-s4", "consumer-poison-pill"] {
            let path = dir.join(case).join("metrics.om.gz");
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let expo =
                cellwarden_models::fixture::read_metrics("metrics.om.gz", std::io::BufReader::new(file)).expect("a bundled fixture parses");
            let now = derive(&expo.families, &SignalRules::default());
            assert!(!now.is_empty());
            let before = legacy::derive(&expo.families);
            assert_eq!(now.len(), before.len(), "{case}");
            for (a, b) in now.iter().zip(&before) {
                assert!(a == b, "{case}: {} differs from {}", a.key, b.key);
            }
            compared += now.len();
        }
        assert!(compared > 100, "{compared} signal series compared");
    }
}
