//! cellwarden's telemetry sources.
//!
//! Layout:
//! - [`fixture`]: recorded fixtures (FIXTURES.md) — open a folder, read it whole, write one back.
//! - [`store`]: the bounded window store (Gorilla-compressed chunks, retention, series cap) and the ingest limiter.
//!
//! Live sources (Prometheus scrape and HTTP API, remote_write, OTLP, Zipkin, Alertmanager) and
//! `record` arrive with the collector issue. Depends on `cellwarden-models`.

pub mod fixture;
pub mod store;
