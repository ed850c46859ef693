//! cellwarden's telemetry sources.
//!
//! Layout:
//! - [`convert`]: counters into rates, histogram buckets into quantiles (pure, Prometheus' semantics).
//! - [`exposition`]: OpenMetrics text straight into the store, borrowing names and labels from the text.
//! - [`fixture`]: recorded fixtures (FIXTURES.md) — open a folder, read it whole, write one back.
//! - [`limits`]: what one series, sample, span or alert may hold, why one was refused, what each costs in bytes.
//! - [`listen`]: serving a router under bounds — header, body and idle timeouts, a connection cap, drain on shutdown.
//! - [`ingest`]: the shared sink every live source writes into (store, limiter, span/alert rings, metrics).
//! - [`pull`]: what the pull sources share — clock, HTTP client, batched delivery into the ingest.
//! - [`query`]: the Prometheus HTTP API source (query_range backfill and polling, raw range-vector reads).
//! - [`receive`]: the push receivers on one listener — remote_write, OTLP/HTTP, Zipkin, Alertmanager.
//! - [`record`]: telemetry into a fixture — raw samples from a Prometheus, or what the receivers got.
//! - [`scrape`]: scraping exposition endpoints (static targets, Kubernetes pods), both text formats.
//! - [`store`]: the bounded window store (Gorilla-compressed chunks, retention, series cap) and the ingest limiter.
//!
//! Depends on `cellwarden-models` only among cellwarden's crates.

pub mod convert;
pub mod exposition;
pub mod fixture;
pub mod ingest;
pub mod limits;
pub mod listen;
pub mod pull;
pub mod query;
pub mod receive;
pub mod record;
pub mod scrape;
pub mod store;
