//! The Alertmanager webhook (`POST /api/v1/alerts`, `application/json`): payload version "4" only,
//! each alert becoming a typed [`Alert`]. Another version is refused with a 400 that says which
//! version came and which one is spoken, before the rest of the payload is looked at.

use super::request::{self, Refusal};
use super::ReceiverState;
use crate::ingest::{Alert, AlertStatus, Source};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cellwarden_models::Timestamp;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The payload version this receiver speaks.
pub const WEBHOOK_VERSION: &str = "4";

/// The fields of a version 4 payload cellwarden reads (group keys and common labels are implied
/// by the alerts).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Webhook {
    alerts: Vec<WebhookAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
    #[serde(default)]
    fingerprint: String,
}

/// A time of the payload; Go's zero time (`0001-01-01T00:00:00Z`, "not set") and anything before
/// the epoch become `None`.
fn time(v: Option<&str>, what: &str) -> Result<Option<Timestamp>, String> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => {
            let t = Timestamp::parse_rfc3339(s).map_err(|e| format!("`{what}`: {e}"))?;
            Ok((t.millis() > 0).then_some(t))
        }
    }
}

/// Decodes a webhook body, refusing any payload version but "4".
pub fn decode(body: &[u8]) -> Result<Vec<Alert>, Refusal> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| Refusal::Malformed(format!("the body is not JSON: {e}")))?;
    match v.get("version") {
        Some(serde_json::Value::String(s)) if s == WEBHOOK_VERSION => {}
        Some(other) => {
            return Err(Refusal::UnsupportedVersion(format!(
                "Alertmanager webhook payload version {other} is not supported; this receiver speaks version \"{WEBHOOK_VERSION}\""
            )))
        }
        None => {
            return Err(Refusal::UnsupportedVersion(format!(
                "the payload has no \"version\"; this receiver speaks Alertmanager webhook version \"{WEBHOOK_VERSION}\""
            )))
        }
    }
    let hook: Webhook = serde_json::from_value(v).map_err(|e| Refusal::Malformed(format!("not an Alertmanager version 4 payload: {e}")))?;
    hook.alerts
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let bad = |e: String| Refusal::Malformed(format!("alert {i}: {e}"));
            let status = match a.status.as_str() {
                "firing" => AlertStatus::Firing,
                "resolved" => AlertStatus::Resolved,
                other => return Err(bad(format!("`status` must be \"firing\" or \"resolved\", got {other:?}"))),
            };
            Ok(Alert {
                status,
                starts_at: time(a.starts_at.as_deref(), "startsAt").map_err(bad)?,
                ends_at: time(a.ends_at.as_deref(), "endsAt").map_err(bad)?,
                labels: a.labels,
                annotations: a.annotations,
                fingerprint: a.fingerprint,
                generator_url: a.generator_url,
            })
        })
        .collect()
}

async fn receive(st: &ReceiverState, headers: &HeaderMap, body: Body) -> Result<Response, Refusal> {
    let raw = request::json_body(
        headers,
        body,
        st.max_body_bytes,
        st.max_decoded_bytes,
        "the Alertmanager webhook is application/json",
    )
    .await?;
    let alerts = decode(&raw)?;
    st.ingest.push_alerts(alerts, st.now());
    Ok(StatusCode::OK.into_response())
}

/// `POST /api/v1/alerts`.
pub(crate) async fn handle(State(st): State<ReceiverState>, headers: HeaderMap, body: Body) -> Response {
    match receive(&st, &headers, body).await {
        Ok(resp) => resp,
        Err(refusal) => st.refuse(Source::Alertmanager, refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_4_payload_becomes_typed_alerts() {
        let body = br#"{"version":"4","groupKey":"{}:{alertname=\"LedgerDown\"}","truncatedAlerts":0,"status":"firing",
            "receiver":"cellwarden","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am",
            "alerts":[{"status":"firing","labels":{"alertname":"LedgerDown","cell":"cell-2"},"annotations":{"summary":"down"},
            "startsAt":"2026-03-01T10:12:00.123456789Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/graph","fingerprint":"a1b2"}]}"#;
        let alerts = decode(body).unwrap();
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.labels["cell"], "cell-2");
        assert_eq!(a.annotations["summary"], "down");
        assert_eq!(a.starts_at, Some(Timestamp::parse_rfc3339("2026-03-01T10:12:00.123Z").unwrap()));
        assert_eq!(a.ends_at, None, "Go's zero time means not set");
        assert_eq!((a.fingerprint.as_str(), a.generator_url.as_str()), ("a1b2", "http://prom/graph"));
    }

    #[test]
    fn other_versions_are_refused_with_the_version_named() {
        let err = decode(br#"{"version":"3","alerts":[]}"#).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(err.to_string().contains("version \"3\" is not supported"), "{err}");
        assert!(decode(br#"{"alerts":[]}"#).unwrap_err().to_string().contains("no \"version\""));
    }
}
