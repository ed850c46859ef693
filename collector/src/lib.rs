//! cellwarden's telemetry sources.
//!
//! Layout:
//! - [`fixture`]: recorded fixtures (FIXTURES.md) — open a folder, read it whole, write one back.
//!
//! Live sources (Prometheus scrape and HTTP API, remote_write, OTLP, Zipkin, Alertmanager), the
//! bounded window store and `record` arrive with the collector issue. Depends on `cellwarden-models`.

pub mod fixture;
