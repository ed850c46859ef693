//! Hand-made incidents with known answers, built span by span.

use super::traces::tests::SpanBuilder;
use super::*;
use crate::signals::SignalSeries;
use cellwarden_models::{CauseClass, Sample, SeriesKey};

fn series(service: &str, signal: Signal, values: &[f64]) -> SignalSeries {
    SignalSeries {
        key: SeriesKey::new("m", [("service".to_string(), service.to_string())]),
        signal,
        entity: Some(Entity::service(None, service)),
        points: values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample {
                t: Timestamp(i as i64 * 60_000),
                value: *v,
            })
            .collect(),
    }
}

/// The trouble starts at 30 min and is seen until 35 min; traces come every 20 s before and after.
const START_MS: i64 = 30 * 60_000;
const UNTIL_MS: i64 = 35 * 60_000;

/// Trace start times (ms): 60 in the baseline, 12 after the start.
fn trace_times() -> impl Iterator<Item = (usize, f64, bool)> {
    (0..72).map(|i| {
        let t = if i < 60 {
            (START_MS - 1_250_000) as f64 + i as f64 * 20_000.0
        } else {
            (START_MS + 5_000) as f64 + (i - 60) as f64 * 20_000.0
        };
        (i, t, i >= 60)
    })
}

fn rank_spans(spans: &[Span]) -> Vec<Candidate> {
    let input = RcaInput {
        series: &[],
        spans,
        start: Timestamp(START_MS),
        until: Timestamp(UNTIL_MS),
        anomalies: &[],
        start_is_estimate: false,
    };
    rank(&input, &RcaParams::default(), 10)
}

fn position(c: &[Candidate], name: &str) -> Option<usize> {
    c.iter().position(|c| c.entity.name == name)
}

/// A little jitter, the same on every run.
fn jitter(i: usize) -> f64 {
    ((i * 7919) % 13) as f64 * 0.1
}

#[test]
fn the_only_service_that_moved_ranks_first() {
    let mut slow = vec![0.1; 30];
    slow.extend([0.1, 0.9, 1.0]);
    let steady: Vec<f64> = (0..33).map(|i| 0.1 + (i % 3) as f64 * 0.001).collect();
    let s = vec![series("ledger", Signal::Latency, &slow), series("wallet", Signal::Latency, &steady)];
    let input = RcaInput {
        series: &s,
        spans: &[],
        start: Timestamp(30 * 60_000),
        until: Timestamp(33 * 60_000),
        anomalies: &[],
        start_is_estimate: false,
    };
    let c = rank(&input, &RcaParams::default(), 5);
    assert_eq!(c[0].entity.name, "ledger");
    assert!(c.iter().all(|c| c.entity.name != "wallet" || c.score < 0.1));
}

#[test]
fn nothing_after_until_is_seen() {
    let mut late = vec![0.1; 33];
    late.extend([5.0, 5.0]);
    let s = vec![series("ledger", Signal::Latency, &late)];
    let input = RcaInput {
        series: &s,
        spans: &[],
        start: Timestamp(30 * 60_000),
        until: Timestamp(32 * 60_000),
        anomalies: &[],
        start_is_estimate: false,
    };
    assert!(rank(&input, &RcaParams::default(), 5).is_empty());
}

#[test]
fn spans_that_end_after_until_are_not_seen() {
    // Every request after the start is slow, but none has finished by `until`.
    let mut spans = Vec::new();
    for (i, t, after) in trace_times() {
        let dur = if after { 10_000_000.0 } else { 10.0 + jitter(i) };
        spans.push(SpanBuilder::new(&format!("{i:x}"), "1", "", "ledger").at(t, dur).build());
    }
    assert!(rank_spans(&spans).iter().all(|c| c.score < 0.1));
}

#[test]
fn a_slow_leaf_behind_a_chain_of_callers_ranks_first() {
    // gateway → wallet → ledger → ledger-store; only ledger-store slows down, its callers
    // inherit the latency (their own time stays the same).
    let mut spans = Vec::new();
    for (i, t, after) in trace_times() {
        let tr = format!("{i:x}");
        let leaf = if after { 250.0 } else { 10.0 + jitter(i) };
        let own = 5.0 + jitter(i + 1);
        spans.push(SpanBuilder::new(&tr, "1", "", "gateway").at(t, leaf + 3.0 * own).build());
        spans.push(
            SpanBuilder::new(&tr, "2", "1", "wallet")
                .at(t + own * 0.5, leaf + 2.0 * own)
                .build(),
        );
        spans.push(SpanBuilder::new(&tr, "3", "2", "ledger").at(t + own, leaf + own).build());
        spans.push(SpanBuilder::new(&tr, "4", "3", "ledger-store").at(t + own * 1.5, leaf).build());
    }
    let c = rank_spans(&spans);
    assert_eq!(c[0].entity.name, "ledger-store", "{c:#?}");
    assert_eq!(c[0].class, CauseClass::Internal);
    for caller in ["ledger", "wallet", "gateway"] {
        assert!(
            position(&c, caller).is_none_or(|p| c[p].score < c[0].score / 2.0),
            "{caller}: {c:#?}"
        );
    }
}

#[test]
fn an_external_provider_shared_by_all_cells_ranks_above_the_services_that_call_it() {
    // payments in four cells call provider-a; after the start a third of its calls fail and the
    // failure travels up to payments and the gateway of each cell.
    let mut spans = Vec::new();
    for (i, t, after) in trace_times() {
        for cell in 1..=4 {
            let tr = format!("{i:x}{cell}");
            let fails = after && (i + cell) % 3 == 0;
            let c = format!("cell-{cell}");
            let mut gw = SpanBuilder::new(&tr, "1", "", "api-gateway").cell(&c).at(t, 60.0);
            let mut pay = SpanBuilder::new(&tr, "2", "1", "payments").cell(&c).at(t + 2.0, 50.0);
            let mut call = SpanBuilder::new(&tr, "3", "2", "payments")
                .cell(&c)
                .peer("provider-a")
                .at(t + 5.0, 40.0 + jitter(i));
            if fails {
                gw = gw.failed();
                pay = pay.failed();
                call = call.failed();
            }
            spans.extend([gw.build(), pay.build(), call.build()]);
        }
    }
    let c = rank_spans(&spans);
    assert_eq!(c[0].entity, Entity::new(EntityKind::Provider, "provider-a"), "{c:#?}");
    assert_eq!(c[0].class, CauseClass::External);
    for cell in 1..=4 {
        let name = format!("cell-{cell}/payments");
        assert!(position(&c, &name).is_none_or(|p| c[p].score < c[0].score), "{name}: {c:#?}");
    }
}

#[test]
fn a_node_shared_by_two_services_ranks_as_the_infrastructure_cause_when_both_degrade() {
    // search and images run on node-1, billing on node-2; after the start both services on
    // node-1 take five times longer on their own, billing does not.
    let mut spans = Vec::new();
    for (i, t, after) in trace_times() {
        for (k, (service, node)) in [("search", "node-1"), ("images", "node-1"), ("billing", "node-2")]
            .iter()
            .enumerate()
        {
            let slow = after && *node == "node-1";
            let dur = if slow { 100.0 } else { 20.0 } + jitter(i + k);
            let tr = format!("{i:x}{k}");
            spans.push(SpanBuilder::new(&tr, "1", "", service).node(node).at(t, dur).build());
        }
    }
    let c = rank_spans(&spans);
    assert_eq!(c[0].entity, Entity::new(EntityKind::Node, "node-1"), "{c:#?}");
    assert_eq!(c[0].class, CauseClass::Infrastructure);
    assert!(position(&c, "search").is_some_and(|p| p > 0));
    assert!(position(&c, "billing").is_none_or(|p| c[p].score < 0.1));
}

#[test]
fn a_caller_that_stops_short_after_calling_x_blames_x() {
    // checkout calls cart, then stock, then pricing. After the start, in most requests it stops
    // right after cart answers (no status is recorded): cart's answer made it stop.
    let mut spans = Vec::new();
    for (i, t, after) in trace_times() {
        let tr = format!("{i:x}");
        let stops = after && i % 4 != 0;
        spans.push(
            // checkout's own work is 10 ms; it returns as soon as it stops calling.
            SpanBuilder::new(&tr, "1", "", "checkout")
                .named("POST /checkout")
                .at(t, if stops { 20.0 } else { 40.0 })
                .build(),
        );
        spans.push(
            SpanBuilder::new(&tr, "2", "1", "cart")
                .named("GET /cart")
                .at(t + 2.0, 8.0 + jitter(i))
                .build(),
        );
        if !stops {
            spans.push(
                SpanBuilder::new(&tr, "3", "1", "stock")
                    .named("GET /stock")
                    .at(t + 12.0, 8.0)
                    .build(),
            );
            spans.push(
                SpanBuilder::new(&tr, "4", "1", "pricing")
                    .named("GET /price")
                    .at(t + 22.0, 8.0)
                    .build(),
            );
        }
    }
    let c = rank_spans(&spans);
    assert_eq!(c[0].entity.name, "cart", "{c:#?}");
    let structure = c[0]
        .evidence
        .iter()
        .find(|e| e.source == "trace:structure")
        .expect("structural evidence");
    assert!(structure.detail.contains("checkout"), "{}", structure.detail);
    assert!(position(&c, "pricing").is_none_or(|p| c[p].score < 0.05), "{c:#?}");
    assert!(position(&c, "checkout").is_none_or(|p| c[p].score < c[0].score), "{c:#?}");
}

#[test]
fn a_caller_that_stops_after_a_failed_call_blames_the_failing_callee_only() {
    let mut spans = Vec::new();
    for (i, t, after) in trace_times() {
        let tr = format!("{i:x}");
        let stops = after && i % 4 != 0;
        spans.push(
            SpanBuilder::new(&tr, "1", "", "checkout")
                .at(t, if stops { 20.0 } else { 30.0 })
                .build(),
        );
        let mut cart = SpanBuilder::new(&tr, "2", "1", "cart").at(t + 2.0, 8.0 + jitter(i));
        if stops {
            cart = cart.failed();
        }
        spans.push(cart.build());
        if !stops {
            spans.push(SpanBuilder::new(&tr, "3", "1", "stock").at(t + 12.0, 8.0).build());
        }
    }
    let c = rank_spans(&spans);
    assert_eq!(c[0].entity.name, "cart", "{c:#?}");
    assert!(position(&c, "stock").is_none(), "{c:#?}");
}

#[test]
fn a_gap_increase_on_the_edges_into_x_blames_x() {
    // orders and refunds both call inventory through client spans; after the start the time
    // between their client spans and inventory's server spans grows from ~2 ms to ~80 ms (the
    // network in front of inventory), while inventory's own work and the callers' stay the same.
    let mut spans = Vec::new();
    for (i, t, after) in trace_times() {
        for (k, caller) in ["orders", "refunds"].iter().enumerate() {
            let tr = format!("{i:x}{k}");
            let gap = if after { 80.0 } else { 2.0 + jitter(i + k) * 0.5 };
            let work = 10.0 + jitter(i);
            spans.push(SpanBuilder::new(&tr, "1", "", caller).at(t, work + gap + 10.0).build());
            spans.push(SpanBuilder::new(&tr, "2", "1", caller).client().at(t + 5.0, work + gap).build());
            spans.push(SpanBuilder::new(&tr, "3", "2", "inventory").at(t + 5.0 + gap / 2.0, work).build());
        }
    }
    let c = rank_spans(&spans);
    assert_eq!(c[0].entity.name, "inventory", "{c:#?}");
    let network = c[0]
        .evidence
        .iter()
        .find(|e| e.source == "trace:network")
        .expect("network evidence");
    assert!(network.detail.contains("callee"), "{}", network.detail);
    for caller in ["orders", "refunds"] {
        assert!(
            position(&c, caller).is_none_or(|p| c[p].score < c[0].score / 2.0),
            "{caller}: {c:#?}"
        );
    }
}

#[test]
fn a_gap_increase_on_every_edge_of_a_caller_blames_the_caller() {
    // web calls three backends; after the start every one of its calls waits ~60 ms longer
    // before the backend sees it (web is starved), the backends' other callers see nothing.
    let mut spans = Vec::new();
    for (i, t, after) in trace_times() {
        for (k, backend) in ["users", "posts", "likes"].iter().enumerate() {
            for (m, caller) in ["web", "batch"].iter().enumerate() {
                let tr = format!("{i:x}{k}{m}");
                let gap = if after && *caller == "web" {
                    60.0
                } else {
                    2.0 + jitter(i + k + m) * 0.5
                };
                spans.push(SpanBuilder::new(&tr, "1", "", caller).at(t, gap + 20.0).build());
                spans.push(SpanBuilder::new(&tr, "2", "1", caller).client().at(t + 1.0, gap + 10.0).build());
                spans.push(SpanBuilder::new(&tr, "3", "2", backend).at(t + 1.0 + gap / 2.0, 10.0).build());
            }
        }
    }
    let c = rank_spans(&spans);
    assert_eq!(c[0].entity.name, "web", "{c:#?}");
}

#[test]
fn a_datastore_named_by_a_client_span_is_a_service_of_the_callers_cell() {
    // ledger in two cells queries its own cell's database; cell-2's database slows down. The
    // database has no spans of its own: the client spans speak for it.
    let mut spans = Vec::new();
    for (i, t, after) in trace_times() {
        for cell in ["cell-1", "cell-2"] {
            let tr = format!("{i:x}{cell}");
            let query = if after && cell == "cell-2" { 60.0 } else { 4.0 + jitter(i) };
            spans.push(SpanBuilder::new(&tr, "1", "", "ledger").cell(cell).at(t, query + 10.0).build());
            spans.push(
                SpanBuilder::new(&tr, "2", "1", "ledger")
                    .cell(cell)
                    .datastore("ledger-db")
                    .at(t + 5.0, query)
                    .build(),
            );
        }
    }
    let c = rank_spans(&spans);
    assert_eq!(c[0].entity, Entity::service(Some("cell-2"), "ledger-db"), "{c:#?}");
    assert_eq!(c[0].class, CauseClass::Internal);
    assert!(
        position(&c, "cell-2/ledger").is_none_or(|p| c[p].score < c[0].score / 2.0),
        "{c:#?}"
    );
}

#[test]
fn an_estimated_start_also_looks_from_later_onsets() {
    // The incident's earliest anomaly came four minutes before the trouble: seen from there,
    // the last minute's slow requests are a minority; seen from a later onset, they are all.
    let mut spans = Vec::new();
    for i in 0..90usize {
        let t = (START_MS - 1_250_000) as f64 + i as f64 * 20_000.0; // the last ones after START_MS
        let slow = t >= (UNTIL_MS - 60_000) as f64;
        let dur = if slow { 100.0 } else { 20.0 + jitter(i) };
        spans.push(SpanBuilder::new(&format!("{i:x}"), "1", "", "search").at(t, dur).build());
    }
    let at = |start_is_estimate: bool| {
        rank(
            &RcaInput {
                series: &[],
                spans: &spans,
                start: Timestamp(UNTIL_MS - 270_000),
                until: Timestamp(UNTIL_MS),
                anomalies: &[],
                start_is_estimate,
            },
            &RcaParams::default(),
            5,
        )
    };
    let given = at(false);
    let estimated = at(true);
    assert!(given.first().is_none_or(|c| c.score < 0.2), "{given:#?}");
    assert_eq!(estimated[0].entity.name, "search", "{estimated:#?}");
    assert!(estimated[0].score > 0.3, "{estimated:#?}");
}

#[test]
fn a_service_that_stops_calling_its_callee_ranks_above_the_callee_and_its_callers() {
    // gateway → orders → payments. After the start, orders answers most requests without
    // calling payments (a code fault in orders: it returns early); no status is recorded and
    // nobody is slower.
    let mut spans = Vec::new();
    for (i, t, after) in trace_times() {
        let tr = format!("{i:x}");
        let skips = after && i % 4 != 0;
        let own = 6.0 + jitter(i);
        let pay = 12.0 + jitter(i + 3);
        let orders = if skips { own } else { own + pay };
        spans.push(SpanBuilder::new(&tr, "1", "", "gateway").at(t, orders + 4.0).build());
        spans.push(
            SpanBuilder::new(&tr, "2", "1", "orders")
                .named("POST /orders")
                .at(t + 2.0, orders)
                .build(),
        );
        if !skips {
            spans.push(SpanBuilder::new(&tr, "3", "2", "payments").at(t + 2.0 + own, pay).build());
        }
    }
    let c = rank_spans(&spans);
    assert_eq!(c[0].entity.name, "orders", "{c:#?}");
    for other in ["payments", "gateway"] {
        assert!(position(&c, other).is_none_or(|p| c[p].score < c[0].score), "{other}: {c:#?}");
    }
}

#[test]
fn a_caller_looping_over_fewer_items_has_not_stopped_short() {
    // trips calls stock once per item found: two or six items, one or the other in turn before
    // the start, mostly two after it (a quieter hour). The loop ends earlier; nothing broke.
    let mut spans = Vec::new();
    for (i, t, after) in trace_times() {
        let tr = format!("{i:x}");
        let items = if (after && i % 6 != 0) || (!after && i % 2 == 0) { 2 } else { 6 };
        spans.push(
            SpanBuilder::new(&tr, "1", "", "trips")
                .named("GET /trips")
                .at(t, 10.0 + 10.0 * items as f64)
                .build(),
        );
        spans.push(SpanBuilder::new(&tr, "2", "1", "catalog").at(t + 1.0, 6.0 + jitter(i)).build());
        for k in 0..items {
            let id = format!("{:x}", 3 + k);
            spans.push(
                SpanBuilder::new(&tr, &id, "1", "stock")
                    .at(t + 8.0 + 10.0 * k as f64, 8.0 + jitter(i + k))
                    .build(),
            );
        }
    }
    let c = rank_spans(&spans);
    for name in ["stock", "catalog", "trips"] {
        assert!(position(&c, name).is_none_or(|p| c[p].score < 0.05), "{name}: {c:#?}");
    }
}

#[test]
fn self_time_within_the_baselines_spread_is_no_evidence() {
    // ledger's own time wanders by a few percent (its baseline's own spread); a slowdown of
    // five times is evidence.
    let build = |slow: f64| {
        let mut spans = Vec::new();
        for (i, t, after) in trace_times() {
            let wobble = 1.0 + 0.04 * (((i * 5) % 7) as f64 - 3.0) / 3.0;
            let dur = 20.0 * wobble * if after { slow } else { 1.0 };
            spans.push(SpanBuilder::new(&format!("{i:x}"), "1", "", "ledger").at(t, dur).build());
        }
        rank_spans(&spans)
    };
    let drift = build(1.06);
    assert!(drift.iter().all(|c| c.score < 0.05), "{drift:#?}");
    let slow = build(5.0);
    assert_eq!(slow[0].entity.name, "ledger", "{slow:#?}");
    assert!(slow[0].score > 0.5, "{slow:#?}");
}
