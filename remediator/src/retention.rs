//! Retention of resolved Incidents: once resolved for longer than `incident_ttl_secs` an Incident
//! is deleted by the leader, so the history listed on every takeover stays bounded (without it
//! every Incident ever opened is read back each time). Escalated and open ones are never deleted:
//! a person still has to look at them.
//!
//! [`expired`] is pure (the Incidents and the time in, names out); [`sweep`] lists, checks the
//! fence and deletes.

use crate::actuate::{Actuator, CALL_TIMEOUT};
use crate::crd::{Incident, Phase};
use crate::lease::timed;
use cellwarden_models::Timestamp;
use kube::api::{Api, DeleteParams, ListParams};
use kube::Client;

/// The names of the Incidents resolved more than `ttl_secs` before `now_ms` (an Incident whose
/// resolution time cannot be read is kept).
pub fn expired(incidents: &[Incident], now_ms: i64, ttl_secs: u64) -> Vec<String> {
    let horizon = now_ms.saturating_sub(i64::try_from(ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX));
    incidents
        .iter()
        .filter(|i| {
            let Some(lc) = i.status.as_ref().and_then(|s| s.lifecycle.as_ref()) else {
                return false;
            };
            lc.phase == Phase::Resolved
                && lc
                    .resolved_at
                    .as_deref()
                    .and_then(|t| Timestamp::parse_rfc3339(t).ok())
                    .is_some_and(|t| t.millis() < horizon)
        })
        .filter_map(|i| i.metadata.name.clone())
        .collect()
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Incidents deleted.
    pub deleted: usize,
    /// Deletes that failed (tried again at the next sweep).
    pub failed: usize,
}

/// Lists the Incidents of `namespace` (of this shard when `selector` is set) and deletes the
/// expired ones, each only after the actuator's fencing check passes (only the leader deletes).
pub async fn sweep(
    client: &Client,
    actuator: &Actuator,
    namespace: &str,
    selector: Option<&str>,
    now_ms: i64,
    ttl_secs: u64,
) -> Result<Swept, kube::Error> {
    let api: Api<Incident> = Api::namespaced(client.clone(), namespace);
    let lp = selector.map_or_else(ListParams::default, |s| ListParams::default().labels(s));
    let list = timed(CALL_TIMEOUT, "the Incident list", api.list(&lp)).await?;
    let mut out = Swept::default();
    for name in expired(&list.items, now_ms, ttl_secs) {
        if actuator.fence().await.is_err() {
            break;
        }
        match timed(CALL_TIMEOUT, "an Incident delete", api.delete(&name, &DeleteParams::default())).await {
            Ok(_) => out.deleted += 1,
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                tracing::warn!(incident = %name, error = %e, "Could not delete an expired Incident; trying again at the next sweep.");
                out.failed += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{IncidentSpec, IncidentStatus, LifecycleStatus, Phase};

    fn spec() -> IncidentSpec {
        IncidentSpec {
            opened_at: "2026-12-01T00:00:00Z".into(),
            class: "fault".into(),
            cells: vec![],
        }
    }

    fn incident(name: &str, phase: Phase, resolved_at: Option<&str>) -> Incident {
        let mut i = Incident::new(name, spec());
        i.status = Some(IncidentStatus {
            lifecycle: Some(LifecycleStatus {
                phase,
                resolved_at: resolved_at.map(str::to_string),
                ..LifecycleStatus::default()
            }),
            ..IncidentStatus::default()
        });
        i
    }

    #[test]
    fn only_incidents_resolved_longer_than_the_ttl_expire() {
        let now = Timestamp::parse_rfc3339("2026-12-09T12:00:00Z").unwrap().millis();
        let week = 7 * 24 * 3600;
        let list = [
            incident("old-resolved", Phase::Resolved, Some("2026-12-02T11:59:59Z")),
            incident("just-inside", Phase::Resolved, Some("2026-12-02T12:00:01Z")),
            incident("old-escalated", Phase::Escalated, Some("2026-11-01T00:00:00Z")),
            incident("open", Phase::Open, None),
            incident("unreadable", Phase::Resolved, Some("last tuesday")),
            Incident::new("no-status", spec()),
        ];
        assert_eq!(expired(&list, now, week), ["old-resolved"]);
        assert!(expired(&list, now, u64::MAX).is_empty(), "no overflow with a huge ttl");
    }
}
