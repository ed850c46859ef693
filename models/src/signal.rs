//! Signals: what a series measures, independent of what an exporter calls it.
//!
//! Detectors reason about signals (memory, latency, error ratio, …); this module maps metric names
//! to signals with the defaults of FIXTURES.md's signals table. The daemon's config (later) can add
//! names on top of these.

use crate::series::SeriesKey;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Memory,
    MemoryLimit,
    Cpu,
    /// Server-side latency of the entity itself.
    Latency,
    /// Latency of the entity's outgoing calls: evidence about its callees, not itself.
    ClientLatency,
    /// Fraction of requests failing (or a success-rate percentage, inverted by the reader).
    ErrorRatio,
    RequestRate,
    QueueLag,
    /// A series cellwarden does not interpret (kept for completeness; not detected on).
    Other,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Memory => "memory",
            Signal::MemoryLimit => "memory_limit",
            Signal::Cpu => "cpu",
            Signal::Latency => "latency",
            Signal::ClientLatency => "client_latency",
            Signal::ErrorRatio => "error_ratio",
            Signal::RequestRate => "request_rate",
            Signal::QueueLag => "queue_lag",
            Signal::Other => "other",
        }
    }

    /// The signal named by [`Signal::as_str`].
    pub fn parse(s: &str) -> Option<Signal> {
        [
            Signal::Memory,
            Signal::MemoryLimit,
            Signal::Cpu,
            Signal::Latency,
            Signal::ClientLatency,
            Signal::ErrorRatio,
            Signal::RequestRate,
            Signal::QueueLag,
            Signal::Other,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
