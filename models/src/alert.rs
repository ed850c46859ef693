//! An alert from outside (Alertmanager's webhook, payload version 4), as the receivers hand it to
//! the incident engine. Plain data: the collector decodes it, the engine turns it into an anomaly.

use crate::Timestamp;
use std::collections::BTreeMap;

/// Whether an alert is firing or resolved (Alertmanager's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// One alert as Alertmanager's webhook (payload version 4) sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: Option<Timestamp>,
    /// `None` while firing (Alertmanager sends the zero time `0001-01-01T00:00:00Z`).
    pub ends_at: Option<Timestamp>,
    /// Alertmanager's identity of the alert (a hash of its labels).
    pub fingerprint: String,
    /// The link back to the rule that raised it.
    pub generator_url: String,
}
