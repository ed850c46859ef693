//! Sampled traces of the simulated wallet as OTLP spans: a payment is
//! `api-gateway → wallet-api → {ledger → ledger-db, payments → provider-gateway → provider, loyalty}`,
//! a balance read `api-gateway → wallet-api → ledger → ledger-db`. Database and provider calls are
//! client spans with `db.system` / `peer.service`, as OpenTelemetry instrumentation writes them.

use crate::model::*;
use crate::wallet::Wallet;
use cellwarden_models::span::{SpanKind, SpanResource};
use cellwarden_models::Span;
use std::collections::BTreeMap;

struct Builder<'a> {
    w: &'a mut Wallet,
    cell: usize,
    trace_id: String,
    trace_no: u64,
    next_span: u64,
}

impl Builder<'_> {
    fn noise(&mut self, sigma: f64) -> f64 {
        (sigma * self.w.rng().normal()).exp()
    }

    fn resource(&mut self, svc: usize) -> SpanResource {
        let cell_name = self.w.cells[self.cell].name.clone();
        let d = self.w.dep(self.cell, svc);
        let n = d.pods.len().max(1);
        let pick = (self.w.rng().next_u64() % n as u64) as usize;
        let (pod, node) = match self.w.dep(self.cell, svc).pods.get(pick) {
            Some(p) => (Some(p.name.clone()), Some(self.w.nodes[p.node].name.clone())),
            None => (None, None),
        };
        SpanResource {
            service: SERVICES[svc].name.into(),
            pod,
            namespace: Some(cell_name.clone()),
            node,
            cell: Some(cell_name),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn span(
        &mut self,
        parent: &str,
        resource: SpanResource,
        name: &str,
        kind: SpanKind,
        start_ns: i64,
        dur_secs: f64,
        error: bool,
        attrs: &[(&str, String)],
    ) -> (String, i64) {
        self.next_span += 1;
        let id = format!("{:016x}", self.trace_no * 16 + self.next_span);
        // Microsecond precision, as most tracers record (and fixtures compress far better).
        let start_ns = start_ns / 1000 * 1000;
        let end_ns = start_ns + (dur_secs.max(1e-5) * 1e6) as i64 * 1000;
        let attributes: BTreeMap<String, String> = attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        self.w.recorder.span(Span {
            trace_id: self.trace_id.clone(),
            span_id: id.clone(),
            parent_span_id: parent.to_string(),
            name: name.into(),
            kind,
            start_ns,
            end_ns,
            error,
            resource,
            attributes,
        });
        (id, end_ns)
    }
}

/// Emits one sampled trace entering `cell` at `start_ns`.
pub(crate) fn emit(w: &mut Wallet, cell: usize, start_ns: i64, is_payment: bool) {
    if w.cell_down(cell) {
        return; // nothing in the cell answers, so nothing is traced
    }
    let trace_no = w.recorder.next_trace;
    w.recorder.next_trace += 1;
    let trace_id = format!("{:08x}{:024x}", w.recorder.trace_prefix, trace_no);
    let mut b = Builder {
        w,
        cell,
        trace_id,
        trace_no,
        next_span: 0,
    };
    let own = |b: &Builder, svc: usize| b.w.dep(b.cell, svc).own_error;
    let status = |e: bool| if e { "500".to_string() } else { "200".to_string() };

    // Decide outcomes bottom-up, so a callee's failure shows in its callers.
    let db_lat = b.w.cells[cell].db_latency * b.noise(0.2);
    let db_fail = db_lat > 0.25;
    let ledger_fail = db_fail || b.w.rng().uniform() < own(&b, LEDGER);
    let (mut pay_fail, mut loyalty_fail, mut prov) = (false, false, 0usize);
    let mut prov_fail = false;
    let loyalty_on = is_payment && b.w.loyalty_enabled;
    if is_payment {
        let weights = b.w.provider_weights();
        prov = b.w.rng().weighted(&weights);
        prov_fail = b.w.rng().uniform() < b.w.providers[prov].error;
        let pgw_fail = prov_fail || b.w.rng().uniform() < own(&b, PROVIDER_GATEWAY);
        pay_fail = pgw_fail || b.w.rng().uniform() < own(&b, PAYMENTS);
        loyalty_fail = loyalty_on && b.w.rng().uniform() < own(&b, LOYALTY);
    }
    let wallet_fail = ledger_fail || pay_fail || (loyalty_fail && b.w.rng().uniform() < 0.5) || b.w.rng().uniform() < own(&b, WALLET_API);
    let gw_fail = wallet_fail || b.w.rng().uniform() < own(&b, API_GATEWAY);

    let ms = 1_000_000i64;
    let own_lat = |b: &mut Builder, svc: usize| SERVICES[svc].base_latency_secs * b.w.cells[b.cell].latency_factor * b.noise(0.3);
    // Top-down, with durations covering the children.
    let gw_res = b.resource(API_GATEWAY);
    let wallet_res = b.resource(WALLET_API);
    let ledger_res = b.resource(LEDGER);
    let route = if is_payment { "POST /pay" } else { "GET /balance" };
    // Children first (their times decide the parents'), ids allocated in order of creation.
    let gw_start = start_ns;
    let wallet_start = gw_start + ms;
    let ledger_start = wallet_start + ms;
    let (gw_id, _) = b.span(
        "",
        gw_res,
        route,
        SpanKind::Server,
        gw_start,
        0.0,
        gw_fail,
        &[("http.response.status_code", status(gw_fail))],
    );
    let (wallet_id, _) = b.span(
        &gw_id,
        wallet_res,
        route,
        SpanKind::Server,
        wallet_start,
        0.0,
        wallet_fail,
        &[("http.response.status_code", status(wallet_fail))],
    );
    let ledger_own = own_lat(&mut b, LEDGER);
    let (ledger_id, _) = b.span(
        &wallet_id,
        ledger_res.clone(),
        "GET /balance",
        SpanKind::Server,
        ledger_start,
        0.0,
        ledger_fail,
        &[("http.response.status_code", status(ledger_fail))],
    );
    let db_dur = db_lat.min(0.25);
    let (_, db_end) = b.span(
        &ledger_id,
        ledger_res,
        "SELECT balances",
        SpanKind::Client,
        ledger_start + ms / 2,
        db_dur,
        db_fail,
        &[("db.system", "postgresql".into()), ("peer.service", DATABASE.into())],
    );
    let ledger_end = db_end + (ledger_own * 1e9) as i64;
    let mut cursor = ledger_end;
    if is_payment {
        let pay_res = b.resource(PAYMENTS);
        let pgw_res = b.resource(PROVIDER_GATEWAY);
        let pay_start = cursor + ms / 2;
        let pgw_start = pay_start + ms;
        let (pay_id, _) = b.span(
            &wallet_id,
            pay_res,
            "POST /payments",
            SpanKind::Server,
            pay_start,
            0.0,
            pay_fail,
            &[("http.response.status_code", status(pay_fail))],
        );
        let (pgw_id, _) = b.span(
            &pay_id,
            pgw_res.clone(),
            "POST /charge",
            SpanKind::Server,
            pgw_start,
            0.0,
            pay_fail && prov_fail,
            &[("http.response.status_code", status(prov_fail))],
        );
        let prov_lat = b.w.providers[prov].latency * b.noise(0.25);
        let prov_code = if prov_fail { "502" } else { "200" };
        let (_, prov_end) = b.span(
            &pgw_id,
            pgw_res,
            "POST /v1/charges",
            SpanKind::Client,
            pgw_start + ms / 2,
            prov_lat,
            prov_fail,
            &[
                ("peer.service", PROVIDERS[prov].name.into()),
                ("http.response.status_code", prov_code.into()),
            ],
        );
        let pgw_end = prov_end + (own_lat(&mut b, PROVIDER_GATEWAY) * 1e9) as i64;
        let pay_end = pgw_end + (own_lat(&mut b, PAYMENTS) * 1e9) as i64;
        fix_end(&mut b, &pgw_id, pgw_end);
        fix_end(&mut b, &pay_id, pay_end);
        cursor = pay_end;
        if loyalty_on {
            let loy_res = b.resource(LOYALTY);
            let dur = if b.w.service_down[LOYALTY] { 2.0 } else { own_lat(&mut b, LOYALTY) };
            let (_, loy_end) = b.span(
                &wallet_id,
                loy_res,
                "POST /points",
                SpanKind::Server,
                cursor + ms / 2,
                dur,
                loyalty_fail,
                &[("http.response.status_code", status(loyalty_fail))],
            );
            cursor = loy_end;
        }
    }
    fix_end(&mut b, &ledger_id, ledger_end);
    let wallet_end = cursor + (own_lat(&mut b, WALLET_API) * 1e9) as i64;
    fix_end(&mut b, &wallet_id, wallet_end);
    let gw_end = wallet_end + (own_lat(&mut b, API_GATEWAY) * 1e9) as i64;
    fix_end(&mut b, &gw_id, gw_end);
}

fn fix_end(b: &mut Builder, span_id: &str, end_ns: i64) {
    if let Some(s) = b.w.recorder.pending_mut().iter_mut().rev().find(|s| s.span_id == span_id) {
        s.end_ns = (end_ns / 1000 * 1000).max(s.start_ns + 1000);
    }
}
