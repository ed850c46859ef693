//! Signals: what a series measures, independent of what an exporter calls it.
//!
//! Detectors reason about signals (memory, latency, error ratio, …). Which metric names carry
//! which signal is data, not code: `cellwarden_detector::signals::rules` (the config's rules and
//! the profiles shipped with the binary).

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

    /// The signal in words, for people ("error ratio", "queue lag").
    pub fn label(self) -> &'static str {
        match self {
            Signal::Memory => "memory",
            Signal::MemoryLimit => "memory limit",
            Signal::Cpu => "CPU",
            Signal::Latency => "latency",
            Signal::ClientLatency => "latency of its calls",
            Signal::ErrorRatio => "error ratio",
            Signal::RequestRate => "request rate",
            Signal::QueueLag => "queue lag",
            Signal::Other => "value",
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
