//! OTLP/HTTP traces (`POST /v1/traces`): an `ExportTraceServiceRequest` as protobuf
//! (`application/x-protobuf`) or JSON (`application/json`), optionally gzip-compressed, decoded with
//! `opentelemetry-proto` and reduced to [`cellwarden_models::Span`].
//!
//! The reduction follows the OTLP/JSON fixture reader in `models/src/span.rs` field by field
//! (resource `service.name`, `k8s.*`, `wallet.cell`; the kept span attributes; status code 2 is an
//! error; attribute values as strings), so a fixture line and the same request pushed here give the
//! same spans. Where the fixture reader refuses a whole line, a receiver refuses only the bad spans
//! and reports them in `partial_success`, as OTLP/HTTP specifies. Responses are encoded like the
//! request: an `ExportTraceServiceResponse` on success, a `google.rpc.Status` on failure.

use super::request::{self, Refusal};
use super::ReceiverState;
use crate::ingest::Source;
use crate::limits::Refused;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cellwarden_models::span::{SpanKind, SpanResource, KEPT_ATTRIBUTES};
use cellwarden_models::Span;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use prost::Message;

/// The two encodings OTLP/HTTP allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error response (details omitted).
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// Decodes a request body (already decompressed).
pub fn decode_request(body: &[u8], encoding: Encoding) -> Result<ExportTraceServiceRequest, String> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body)
            .map_err(|e| format!("the body is not a valid OTLP ExportTraceServiceRequest (protobuf): {e}")),
        Encoding::Json => {
            serde_json::from_slice(body).map_err(|e| format!("the body is not a valid OTLP ExportTraceServiceRequest (JSON): {e}"))
        }
    }
}

/// An attribute value as the fixture reader renders it: strings as they are, integers, booleans
/// and doubles in decimal; arrays, maps and bytes are not kept.
fn value_string(kv: &KeyValue) -> Option<String> {
    match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        any_value::Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

fn hex_id(bytes: &[u8], len: usize, what: &str, optional: bool) -> Result<String, String> {
    if bytes.is_empty() && optional {
        return Ok(String::new());
    }
    if bytes.len() != len {
        return Err(format!("`{what}` must be {len} bytes, got {}", bytes.len()));
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn nanos(v: u64, what: &str) -> Result<i64, String> {
    i64::try_from(v).map_err(|_| format!("`{what}` {v} is past the year 2262"))
}

/// The spans of a request, and the spans refused: (the counter's reason, a message) each. A span
/// with more than `max_attributes` attributes is refused before any of them is read.
pub fn spans_from_request(req: &ExportTraceServiceRequest, max_attributes: usize) -> (Vec<Span>, Vec<(&'static str, String)>) {
    let mut spans = Vec::new();
    let mut refused = Vec::new();
    for rs in &req.resource_spans {
        let mut resource = SpanResource::default();
        for kv in rs.resource.iter().flat_map(|r| &r.attributes) {
            if let Some(val) = value_string(kv) {
                resource.set(&kv.key, val);
            }
        }
        let resource = resource.with_service_default();
        for s in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            if s.attributes.len() > max_attributes {
                refused.push((
                    Refused::TooManyAttributes.as_str(),
                    format!(
                        "span {:?}: {} attributes, more than max_attributes_per_span ({max_attributes})",
                        s.name,
                        s.attributes.len()
                    ),
                ));
                continue;
            }
            let one = || -> Result<Span, String> {
                let start_ns = nanos(s.start_time_unix_nano, "startTimeUnixNano")?;
                let end_ns = nanos(s.end_time_unix_nano, "endTimeUnixNano")?;
                if end_ns < start_ns {
                    return Err(format!("span ends before it starts ({end_ns} < {start_ns})"));
                }
                Ok(Span {
                    trace_id: hex_id(&s.trace_id, 16, "traceId", false)?,
                    span_id: hex_id(&s.span_id, 8, "spanId", false)?,
                    parent_span_id: hex_id(&s.parent_span_id, 8, "parentSpanId", true)?,
                    name: s.name.clone(),
                    kind: SpanKind::from_otlp(i64::from(s.kind)),
                    start_ns,
                    end_ns,
                    error: s.status.as_ref().is_some_and(|st| st.code == 2),
                    resource: resource.clone(),
                    attributes: s
                        .attributes
                        .iter()
                        .filter(|kv| KEPT_ATTRIBUTES.contains(&kv.key.as_str()))
                        .filter_map(|kv| Some((kv.key.clone(), value_string(kv)?)))
                        .collect(),
                })
            };
            match one() {
                Ok(span) => spans.push(span),
                Err(reason) => refused.push(("invalid_span", format!("span {:?}: {reason}", s.name))),
            }
        }
    }
    (spans, refused)
}

fn encode_body<M: Message + serde::Serialize>(msg: &M, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => msg.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(msg).unwrap_or_default(),
    }
}

/// A refusal as OTLP/HTTP wants it: the status, and a `google.rpc.Status` in the request's encoding.
fn otlp_refusal(st: &ReceiverState, refusal: Refusal, encoding: Encoding) -> Response {
    st.ingest.reject_request(Source::Otlp, refusal.metric_label());
    let code = match refusal {
        Refusal::Throttled(_) => 8, // RESOURCE_EXHAUSTED
        Refusal::TimedOut(_) => 4,  // DEADLINE_EXCEEDED
        _ => 3,                     // INVALID_ARGUMENT
    };
    let status = RpcStatus {
        code,
        message: refusal.to_string(),
    };
    let mut resp = (refusal.status(), encode_body(&status, encoding)).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(encoding.content_type()));
    resp.headers_mut().extend(refusal.extra_headers());
    resp
}

/// `POST /v1/traces`.
pub(crate) async fn handle(State(st): State<ReceiverState>, headers: HeaderMap, body: Body) -> Response {
    let encoding = match request::media_type(&headers).as_deref() {
        Some("application/x-protobuf") => Encoding::Protobuf,
        Some("application/json") => Encoding::Json,
        other => {
            let refusal = Refusal::UnsupportedMediaType(format!(
                "OTLP/HTTP accepts application/x-protobuf or application/json, got {}",
                other.map_or("no Content-Type".to_string(), |t| format!("{t:?}"))
            ));
            return st.refuse(Source::Otlp, refusal);
        }
    };
    let decoded = async {
        let content_encoding = request::content_encoding(&headers)?;
        let raw = request::read_body(&headers, body, st.max_body_bytes).await?;
        let raw = request::decode_content(raw, content_encoding.as_deref(), st.max_decoded_bytes)?;
        decode_request(&raw, encoding).map_err(Refusal::Malformed)
    }
    .await;
    let req = match decoded {
        Ok(req) => req,
        Err(refusal) => return otlp_refusal(&st, refusal, encoding),
    };
    let (spans, refused) = spans_from_request(&req, st.ingest.config().limits.max_attributes_per_span);
    let per_sec = st.ingest.config().max_ingest_spans_per_sec;
    if let Err(refusal) = request::check_batch_size(spans.len(), per_sec, "spans", "max_ingest_spans_per_sec") {
        return otlp_refusal(&st, refusal, encoding);
    }
    if let Err(t) = st.ingest.push_spans(Source::Otlp, spans, st.now()) {
        return otlp_refusal(&st, Refusal::Throttled(t.retry_after_secs), encoding);
    }
    let partial_success = (!refused.is_empty()).then(|| {
        for (reason, _) in &refused {
            st.ingest.reject(Source::Otlp, reason, 1);
        }
        let mut error_message = refused[0].1.clone();
        if refused.len() > 1 {
            error_message.push_str(&format!(" (and {} more)", refused.len() - 1));
        }
        ExportTracePartialSuccess {
            rejected_spans: refused.len() as i64,
            error_message,
        }
    });
    let body = encode_body(&ExportTraceServiceResponse { partial_success }, encoding);
    (StatusCode::OK, [(header::CONTENT_TYPE, encoding.content_type())], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwarden_models::span::{decode_export_request, write_jsonl};
    use std::collections::BTreeMap;

    fn model_span(id: u8, parent: &str, error: bool) -> Span {
        Span {
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: format!("b7ad6b71692033{id:02x}"),
            parent_span_id: parent.into(),
            name: format!("op-{id}"),
            kind: SpanKind::Client,
            start_ns: 1_700_000_000_000_000_000,
            end_ns: 1_700_000_000_250_000_000,
            error,
            resource: SpanResource {
                service: "payments".into(),
                pod: Some("payments-1".into()),
                namespace: None,
                node: None,
                cell: Some("cell-2".into()),
            },
            attributes: BTreeMap::from([
                ("peer.service".to_string(), "provider-a".to_string()),
                ("http.response.status_code".to_string(), "502".to_string()),
            ]),
        }
    }

    #[test]
    fn a_fixture_line_decodes_to_the_same_spans_here_and_in_models() {
        let spans = vec![model_span(1, "", false), model_span(2, "b7ad6b7169203301", true)];
        let mut line = Vec::new();
        write_jsonl(&mut line, &spans, 10).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        let from_models = decode_export_request(&value).unwrap();
        let req = decode_request(&line, Encoding::Json).unwrap();
        let (from_json, refused) = spans_from_request(&req, 128);
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(from_json, from_models);
        assert_eq!(from_json, spans);
        let (from_proto, _) = spans_from_request(&decode_request(&req.encode_to_vec(), Encoding::Protobuf).unwrap(), 128);
        assert_eq!(from_proto, spans);
    }

    #[test]
    fn bad_spans_are_refused_one_by_one() {
        let mut line = Vec::new();
        write_jsonl(&mut line, &[model_span(1, "", false), model_span(2, "", false)], 10).unwrap();
        let mut req = decode_request(&line, Encoding::Json).unwrap();
        let bad = &mut req.resource_spans[0].scope_spans[0].spans[1];
        bad.span_id = vec![1, 2, 3];
        let (spans, refused) = spans_from_request(&req, 128);
        assert_eq!(spans.len(), 1);
        assert_eq!(
            refused,
            [("invalid_span", "span \"op-2\": `spanId` must be 8 bytes, got 3".to_string())]
        );
        let span = &mut req.resource_spans[0].scope_spans[0].spans[0];
        span.attributes = (0..4)
            .map(|i| KeyValue {
                key: format!("k{i}"),
                ..KeyValue::default()
            })
            .collect();
        let (spans, refused) = spans_from_request(&req, 3);
        assert!(spans.is_empty());
        assert_eq!(refused[0].0, "too_many_attributes");
        assert!(
            refused[0].1.contains("4 attributes, more than max_attributes_per_span (3)"),
            "{refused:?}"
        );
    }
}
