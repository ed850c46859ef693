//! Zipkin v2 JSON spans (`POST /api/v2/spans`, `application/json`, optionally gzip), reduced to
//! [`cellwarden_models::Span`].
//!
//! Mapping: `traceId` (16 or 32 hex, padded to 32), `id`, `parentId`; `kind` CLIENT/SERVER/
//! PRODUCER/CONSUMER; `timestamp` and `duration` in microseconds; `localEndpoint.serviceName` is
//! the service; `remoteEndpoint.serviceName` becomes `peer.service` (unless a tag says otherwise);
//! tags the fixture format keeps are kept (`http.status_code` is renamed
//! `http.response.status_code`), `k8s.pod.name`, `k8s.namespace.name`, `k8s.node.name` and
//! `wallet.cell` tags fill the resource; an `error` tag marks the span failed. A malformed span
//! refuses the whole request (Zipkin has no partial success), naming the span.

use super::request::{self, Refusal};
use super::ReceiverState;
use crate::ingest::Source;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cellwarden_models::span::{SpanKind, SpanResource, KEPT_ATTRIBUTES};
use cellwarden_models::Span;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// One Zipkin v2 span, the fields read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ZipkinSpan {
    trace_id: String,
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    /// Microseconds since the epoch.
    #[serde(default)]
    timestamp: Option<u64>,
    /// Microseconds.
    #[serde(default)]
    duration: Option<u64>,
    #[serde(default)]
    local_endpoint: Option<Endpoint>,
    #[serde(default)]
    remote_endpoint: Option<Endpoint>,
    #[serde(default)]
    tags: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    #[serde(default)]
    service_name: Option<String>,
}

fn hex(s: &str, lens: &[usize], what: &str) -> Result<String, String> {
    if !lens.contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let want = lens.iter().map(usize::to_string).collect::<Vec<_>>().join(" or ");
        return Err(format!("`{what}` must be {want} hex characters, got {s:?}"));
    }
    Ok(s.to_ascii_lowercase())
}

fn convert(z: ZipkinSpan, max_attributes: usize) -> Result<Span, String> {
    if z.tags.len() > max_attributes {
        return Err(format!(
            "{} tags, more than max_attributes_per_span ({max_attributes})",
            z.tags.len()
        ));
    }
    let trace_id = format!("{:0>32}", hex(&z.trace_id, &[16, 32], "traceId")?);
    let span_id = hex(&z.id, &[16], "id")?;
    let parent_span_id = match z.parent_id.as_deref() {
        None | Some("") => String::new(),
        Some(p) => hex(p, &[16], "parentId")?,
    };
    let start_us = z.timestamp.ok_or("no `timestamp`")?;
    let start_ns = i64::try_from(start_us)
        .ok()
        .and_then(|us| us.checked_mul(1000))
        .ok_or("`timestamp` out of range")?;
    let dur_ns = i64::try_from(z.duration.unwrap_or(0))
        .ok()
        .and_then(|us| us.checked_mul(1000))
        .ok_or("`duration` out of range")?;
    let kind = match z.kind.as_deref() {
        Some("CLIENT") => SpanKind::Client,
        Some("SERVER") => SpanKind::Server,
        Some("PRODUCER") => SpanKind::Producer,
        Some("CONSUMER") => SpanKind::Consumer,
        None => SpanKind::Unspecified,
        Some(other) => return Err(format!("unknown `kind` {other:?}")),
    };
    let service = z
        .local_endpoint
        .and_then(|e| e.service_name)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown_service".into());
    let mut resource = SpanResource {
        service,
        ..SpanResource::default()
    };
    let mut attributes = BTreeMap::new();
    let mut error = false;
    for (k, v) in z.tags {
        match k.as_str() {
            "error" => error = true,
            "k8s.pod.name" => resource.pod = Some(v),
            "k8s.namespace.name" => resource.namespace = Some(v),
            "k8s.node.name" => resource.node = Some(v),
            "wallet.cell" => resource.cell = Some(v),
            "http.status_code" => {
                attributes.entry("http.response.status_code".to_string()).or_insert(v);
            }
            _ if KEPT_ATTRIBUTES.contains(&k.as_str()) => {
                attributes.insert(k, v);
            }
            _ => {}
        }
    }
    if let Some(peer) = z.remote_endpoint.and_then(|e| e.service_name).filter(|s| !s.is_empty()) {
        attributes.entry("peer.service".to_string()).or_insert(peer);
    }
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        name: z.name.unwrap_or_default(),
        kind,
        start_ns,
        end_ns: start_ns.saturating_add(dur_ns),
        error,
        resource,
        attributes,
    })
}

/// Decodes a Zipkin v2 JSON body (a list of spans), each with at most `max_attributes` tags.
pub fn decode(body: &[u8], max_attributes: usize) -> Result<Vec<Span>, String> {
    let raw: Vec<ZipkinSpan> = serde_json::from_slice(body).map_err(|e| format!("the body is not a Zipkin v2 JSON list of spans: {e}"))?;
    raw.into_iter()
        .enumerate()
        .map(|(i, z)| {
            let id = z.id.clone();
            convert(z, max_attributes).map_err(|e| format!("span {i} (id {id:?}): {e}"))
        })
        .collect()
}

async fn receive(st: &ReceiverState, headers: &HeaderMap, body: Body) -> Result<Response, Refusal> {
    let raw = request::json_body(
        headers,
        body,
        st.max_body_bytes,
        st.max_decoded_bytes,
        "Zipkin v2 spans must be application/json (the protobuf encoding is not supported)",
    )
    .await?;
    let spans = decode(&raw, st.ingest.config().limits.max_attributes_per_span).map_err(Refusal::Malformed)?;
    let per_sec = st.ingest.config().max_ingest_spans_per_sec;
    request::check_batch_size(spans.len(), per_sec, "spans", "max_ingest_spans_per_sec")?;
    st.ingest
        .push_spans(Source::Zipkin, spans, st.now())
        .map_err(|t| Refusal::Throttled(t.retry_after_secs))?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST /api/v2/spans`.
pub(crate) async fn handle(State(st): State<ReceiverState>, headers: HeaderMap, body: Body) -> Response {
    match receive(&st, &headers, body).await {
        Ok(resp) => resp,
        Err(refusal) => st.refuse(Source::Zipkin, refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_span_maps_kind_peer_tags_and_error() {
        let body = br#"[{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","parentId":"0020000000000001",
            "name":"post /charge","kind":"CLIENT","timestamp":1700000000000000,"duration":250000,
            "localEndpoint":{"serviceName":"payments","ipv4":"10.0.0.7"},
            "remoteEndpoint":{"serviceName":"provider-a"},
            "tags":{"http.status_code":"503","error":"timeout","wallet.cell":"cell-2","color":"blue"}}]"#;
        let spans = decode(body, 128).unwrap();
        assert!(decode(body, 3)
            .unwrap_err()
            .contains("4 tags, more than max_attributes_per_span (3)"));
        let s = &spans[0];
        assert_eq!(s.trace_id, "0000000000000000463ac35c9f6413ad");
        assert_eq!(s.parent_span_id, "0020000000000001");
        assert_eq!(s.kind, SpanKind::Client);
        assert_eq!((s.start_ns, s.end_ns), (1_700_000_000_000_000_000, 1_700_000_000_250_000_000));
        assert_eq!(s.resource.service, "payments");
        assert_eq!(s.resource.cell.as_deref(), Some("cell-2"));
        assert!(s.error);
        assert_eq!(s.external_peer(), Some("provider-a"));
        assert_eq!(s.attr("http.response.status_code"), Some("503"));
        assert_eq!(s.attr("color"), None);
    }

    #[test]
    fn a_bad_span_is_named_by_index_and_reason() {
        let body = br#"[{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","timestamp":1},
                        {"traceId":"463ac35c9f6413ad","id":"xyz","timestamp":1}]"#;
        assert_eq!(
            decode(body, 128).unwrap_err(),
            "span 1 (id \"xyz\"): `id` must be 16 hex characters, got \"xyz\""
        );
        assert!(decode(b"[{\"traceId\": 12}]", 128)
            .unwrap_err()
            .contains("not a Zipkin v2 JSON list"));
    }
}
