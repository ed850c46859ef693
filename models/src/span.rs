//! Spans: the trace half of the data model, and OTLP/JSON (one `ExportTraceServiceRequest` a line).
//!
//! Only what cellwarden uses is kept from a span: identity, timing, kind, error status, the
//! resource's service/pod/node/namespace/cell, and the attributes that mark calls leaving the
//! platform. Unknown attributes are ignored on read (FIXTURES.md: forward compatibility).

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};

/// OTLP span kinds (`SpanKind` enum values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    pub fn from_otlp(v: i64) -> SpanKind {
        match v {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
    pub fn to_otlp(self) -> i64 {
        match self {
            SpanKind::Unspecified => 0,
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
            SpanKind::Producer => 4,
            SpanKind::Consumer => 5,
        }
    }
    fn from_json_name(s: &str) -> SpanKind {
        match s {
            "SPAN_KIND_INTERNAL" => SpanKind::Internal,
            "SPAN_KIND_SERVER" => SpanKind::Server,
            "SPAN_KIND_CLIENT" => SpanKind::Client,
            "SPAN_KIND_PRODUCER" => SpanKind::Producer,
            "SPAN_KIND_CONSUMER" => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
}

/// What a client span calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DependencyKind {
    /// Outside the platform: a payment provider, KYC, a card scheme.
    External,
    /// The platform's own database or queue (`db.system` / `messaging.system`).
    Datastore,
}

/// Where a span ran: the resource attributes cellwarden reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct SpanResource {
    /// `service.name`.
    pub service: String,
    /// `k8s.pod.name`.
    pub pod: Option<String>,
    /// `k8s.namespace.name`.
    pub namespace: Option<String>,
    /// `k8s.node.name`.
    pub node: Option<String>,
    /// `wallet.cell`.
    pub cell: Option<String>,
}

impl SpanResource {
    /// Takes one resource attribute by its OTLP key (`service.name`, `k8s.pod.name`,
    /// `k8s.namespace.name`, `k8s.node.name`, `wallet.cell`); any other is ignored.
    pub fn set(&mut self, key: &str, value: String) {
        match key {
            "service.name" => self.service = value,
            "k8s.pod.name" => self.pod = Some(value),
            "k8s.namespace.name" => self.namespace = Some(value),
            "k8s.node.name" => self.node = Some(value),
            "wallet.cell" => self.cell = Some(value),
            _ => {}
        }
    }

    /// Names a resource without `service.name` `unknown_service`, as the OpenTelemetry SDKs do.
    pub fn with_service_default(mut self) -> SpanResource {
        if self.service.is_empty() {
            self.service = "unknown_service".into();
        }
        self
    }
}

/// One span, reduced to what the pipeline uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// 32 lower-case hex characters.
    pub trace_id: String,
    /// 16 lower-case hex characters.
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    pub kind: SpanKind,
    pub start_ns: i64,
    pub end_ns: i64,
    /// `status.code == 2` (ERROR).
    pub error: bool,
    pub resource: SpanResource,
    /// The span attributes cellwarden understands (`peer.service`, `server.address`,
    /// `http.response.status_code`, `rpc.grpc.status_code`, `db.system`, `messaging.system`),
    /// as strings; others are dropped on read.
    pub attributes: BTreeMap<String, String>,
}

/// Span attributes kept on read.
pub const KEPT_ATTRIBUTES: &[&str] = &[
    "peer.service",
    "server.address",
    "http.response.status_code",
    "rpc.grpc.status_code",
    "db.system",
    "messaging.system",
];

impl Span {
    pub fn start(&self) -> Timestamp {
        Timestamp::from_nanos(self.start_ns)
    }
    pub fn duration_secs(&self) -> f64 {
        (self.end_ns - self.start_ns).max(0) as f64 / 1e9
    }
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
    /// The dependency this client span calls, if it names one: `peer.service`, else
    /// `server.address`, else the `db.system`/`messaging.system` name; a datastore or queue when
    /// `db.system` or `messaging.system` is set (the platform's own), else an external provider.
    pub fn dependency(&self) -> Option<(&str, DependencyKind)> {
        if !matches!(self.kind, SpanKind::Client | SpanKind::Producer | SpanKind::Unspecified) {
            return None;
        }
        let store = self.attr("db.system").or_else(|| self.attr("messaging.system"));
        let name = self.attr("peer.service").or_else(|| self.attr("server.address")).or(store)?;
        Some((
            name,
            if store.is_some() {
                DependencyKind::Datastore
            } else {
                DependencyKind::External
            },
        ))
    }

    /// The external provider this span calls, if it is a call leaving the platform (datastores and
    /// queues, which belong to the platform, are not).
    pub fn external_peer(&self) -> Option<&str> {
        self.dependency().filter(|(_, k)| *k == DependencyKind::External).map(|(n, _)| n)
    }

    /// Whether the span failed: error status, HTTP 5xx, or a non-zero gRPC status.
    pub fn failed(&self) -> bool {
        self.error
            || self
                .attr("http.response.status_code")
                .and_then(|s| s.parse::<u16>().ok())
                .is_some_and(|c| c >= 500)
            || self
                .attr("rpc.grpc.status_code")
                .and_then(|s| s.parse::<u16>().ok())
                .is_some_and(|c| c != 0)
    }
}

fn attr_string(v: &Value) -> Option<String> {
    // AnyValue in OTLP/JSON: {"stringValue": ..} | {"intValue": "12" or 12} | {"boolValue"} | {"doubleValue"}.
    let obj = v.as_object()?;
    if let Some(s) = obj.get("stringValue").and_then(Value::as_str) {
        return Some(s.to_string());
    }
    if let Some(i) = obj.get("intValue") {
        return match i {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
    }
    if let Some(b) = obj.get("boolValue").and_then(Value::as_bool) {
        return Some(b.to_string());
    }
    obj.get("doubleValue").and_then(Value::as_f64).map(|d| d.to_string())
}

fn attributes(v: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let arr = v.as_array().ok_or("`attributes` is not an array")?;
    let mut out = Vec::with_capacity(arr.len());
    for kv in arr {
        let key = kv.get("key").and_then(Value::as_str).ok_or("attribute without a string `key`")?;
        if let Some(val) = kv.get("value").and_then(attr_string) {
            out.push((key.to_string(), val));
        }
    }
    Ok(out)
}

fn nanos(v: Option<&Value>, what: &str) -> Result<i64, String> {
    match v {
        Some(Value::String(s)) => s.parse::<i64>().map_err(|_| format!("`{what}` is not an integer: {s:?}")),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| format!("`{what}` is not an integer: {n}")),
        None => Err(format!("span without `{what}`")),
        Some(other) => Err(format!("`{what}` has the wrong type: {other}")),
    }
}

fn hex_id(v: Option<&Value>, len: usize, what: &str, optional: bool) -> Result<String, String> {
    match v.and_then(Value::as_str) {
        None | Some("") if optional => Ok(String::new()),
        None => Err(format!("span without `{what}`")),
        Some(s) if s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(s.to_ascii_lowercase()),
        Some(s) => Err(format!("`{what}` must be {len} hex characters, got {s:?}")),
    }
}

/// Decodes one OTLP/JSON `ExportTraceServiceRequest` into spans.
pub fn decode_export_request(v: &Value) -> Result<Vec<Span>, String> {
    let mut out = Vec::new();
    let rs = match v.get("resourceSpans") {
        None => return Ok(out),
        Some(rs) => rs.as_array().ok_or("`resourceSpans` is not an array")?,
    };
    for r in rs {
        let mut resource = SpanResource::default();
        for (k, val) in attributes(r.get("resource").and_then(|res| res.get("attributes")))? {
            resource.set(&k, val);
        }
        let resource = resource.with_service_default();
        let scopes = match r.get("scopeSpans").or_else(|| r.get("instrumentationLibrarySpans")) {
            None => continue,
            Some(s) => s.as_array().ok_or("`scopeSpans` is not an array")?,
        };
        for scope in scopes {
            let Some(spans) = scope.get("spans") else { continue };
            for s in spans.as_array().ok_or("`spans` is not an array")? {
                let kind = match s.get("kind") {
                    Some(Value::Number(n)) => SpanKind::from_otlp(n.as_i64().unwrap_or(0)),
                    Some(Value::String(name)) => SpanKind::from_json_name(name),
                    _ => SpanKind::Unspecified,
                };
                let error = match s.get("status").and_then(|st| st.get("code")) {
                    Some(Value::Number(n)) => n.as_i64() == Some(2),
                    Some(Value::String(c)) => c == "STATUS_CODE_ERROR",
                    _ => false,
                };
                let attributes = attributes(s.get("attributes"))?
                    .into_iter()
                    .filter(|(k, _)| KEPT_ATTRIBUTES.contains(&k.as_str()))
                    .collect();
                let start_ns = nanos(s.get("startTimeUnixNano"), "startTimeUnixNano")?;
                let end_ns = nanos(s.get("endTimeUnixNano"), "endTimeUnixNano")?;
                if end_ns < start_ns {
                    return Err(format!("span ends before it starts ({end_ns} < {start_ns})"));
                }
                out.push(Span {
                    trace_id: hex_id(s.get("traceId"), 32, "traceId", false)?,
                    span_id: hex_id(s.get("spanId"), 16, "spanId", false)?,
                    parent_span_id: hex_id(s.get("parentSpanId"), 16, "parentSpanId", true)?,
                    name: s.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                    kind,
                    start_ns,
                    end_ns,
                    error,
                    resource: resource.clone(),
                    attributes,
                });
            }
        }
    }
    Ok(out)
}

/// Reads OTLP/JSON lines: one `ExportTraceServiceRequest` per non-empty line.
/// Errors carry the 1-based line number and the reason.
pub fn read_jsonl<R: BufRead>(reader: R) -> Result<Vec<Span>, (usize, String)> {
    let mut spans = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| (i + 1, format!("cannot read: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line).map_err(|e| (i + 1, format!("invalid JSON at column {}: {e}", e.column())))?;
        spans.extend(decode_export_request(&v).map_err(|e| (i + 1, e))?);
    }
    Ok(spans)
}

fn kv(key: &str, value: &str) -> Value {
    serde_json::json!({"key": key, "value": {"stringValue": value}})
}

/// Writes spans as OTLP/JSON lines, one request per resource, at most `spans_per_line` spans a line.
pub fn write_jsonl<W: Write>(mut w: W, spans: &[Span], spans_per_line: usize) -> std::io::Result<()> {
    let mut by_resource: BTreeMap<(String, String, String, String, String), Vec<&Span>> = BTreeMap::new();
    for s in spans {
        let r = &s.resource;
        let key = (
            r.service.clone(),
            r.pod.clone().unwrap_or_default(),
            r.namespace.clone().unwrap_or_default(),
            r.node.clone().unwrap_or_default(),
            r.cell.clone().unwrap_or_default(),
        );
        by_resource.entry(key).or_default().push(s);
    }
    for (_, group) in by_resource {
        let r = &group[0].resource;
        let mut res_attrs = vec![kv("service.name", &r.service)];
        for (k, v) in [
            ("k8s.pod.name", &r.pod),
            ("k8s.namespace.name", &r.namespace),
            ("k8s.node.name", &r.node),
            ("wallet.cell", &r.cell),
        ] {
            if let Some(v) = v {
                res_attrs.push(kv(k, v));
            }
        }
        for chunk in group.chunks(spans_per_line.max(1)) {
            let spans: Vec<Value> = chunk
                .iter()
                .map(|s| {
                    let mut o = serde_json::json!({
                        "traceId": s.trace_id,
                        "spanId": s.span_id,
                        "name": s.name,
                        "kind": s.kind.to_otlp(),
                        "startTimeUnixNano": s.start_ns.to_string(),
                        "endTimeUnixNano": s.end_ns.to_string(),
                    });
                    if !s.parent_span_id.is_empty() {
                        o["parentSpanId"] = Value::String(s.parent_span_id.clone());
                    }
                    if !s.attributes.is_empty() {
                        o["attributes"] = Value::Array(s.attributes.iter().map(|(k, v)| kv(k, v)).collect());
                    }
                    if s.error {
                        o["status"] = serde_json::json!({"code": 2});
                    }
                    o
                })
                .collect();
            let req = serde_json::json!({"resourceSpans": [{"resource": {"attributes": res_attrs}, "scopeSpans": [{"scope": {"name": "cellwarden"}, "spans": spans}]}]});
            serde_json::to_writer(&mut w, &req)?;
            w.write_all(b"\n")?;
        }
    }
    Ok(())
}
