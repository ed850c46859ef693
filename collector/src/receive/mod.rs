//! The push receivers: one axum [`Router`] on one listener (DESIGN.md, `:4318`), writing into the
//! shared [`Ingest`].
//!
//! Layout:
//! - this file: [`ReceiverConfig`], the router with its bearer-token check, and [`serve`] (plain
//!   HTTP or rustls, through [`crate::listen`]: header, body and idle timeouts, a connection cap);
//! - [`request`]: what every receiver shares — reading a bounded body, content types and
//!   encodings, and the [`request::Refusal`] each bad request becomes (a 4xx with a clear message);
//! - [`remote_write`]: Prometheus remote_write 1.0 (`POST /api/v1/write`);
//! - [`otlp`]: OTLP/HTTP traces, protobuf and JSON (`POST /v1/traces`);
//! - [`zipkin`]: Zipkin v2 JSON spans (`POST /api/v2/spans`);
//! - [`alertmanager`]: the Alertmanager webhook, payload version 4 (`POST /api/v1/alerts`);
//! - [`tls`]: loading the certificate and key for rustls.
//!
//! Every receiver refuses a body over `max_body_bytes` (413), a wrong content type (415), malformed
//! input (400, naming what was wrong), a missing or wrong token (401) and, when the ingest limiter
//! says so, answers 429 with `Retry-After`; a refused request stores nothing.
//!
//! Time comes from a [`Clock`] in the router's state, so tests drive the limiter deterministically.

pub mod alertmanager;
pub mod otlp;
pub mod remote_write;
pub mod request;
pub mod tls;
pub mod zipkin;

use crate::ingest::{Ingest, IngestConfig, Source};
use crate::limits::IngestLimits;
use crate::listen::{self, ConnectionLimits, InvalidSetting, ListenerMetrics};
use crate::store::WindowConfig;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use cellwarden_models::Timestamp;
use request::Refusal;
use serde::Deserialize;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Prometheus remote_write 1.0.
pub const REMOTE_WRITE_PATH: &str = "/api/v1/write";
/// OTLP/HTTP traces.
pub const OTLP_TRACES_PATH: &str = "/v1/traces";
/// Zipkin v2 spans.
pub const ZIPKIN_SPANS_PATH: &str = "/api/v2/spans";
/// Alertmanager webhook.
pub const ALERTMANAGER_PATH: &str = "/api/v1/alerts";

/// Where the receivers read the time (the limiter's and the spans' "now").
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The wall clock, for the daemon.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since.as_millis() as i64)
    })
}

/// Settings of the receivers (the `receivers:` section of `cellwarden.yaml`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiverConfig {
    /// Address of the one listener every receiver shares (DESIGN.md: port 4318).
    pub listen: SocketAddr,
    /// A file holding the bearer token senders must present (`Authorization: Bearer <token>`);
    /// surrounding whitespace is ignored. Unset: no authentication (the daemon refuses that in
    /// `mode: act` unless `insecure_receivers: true`).
    pub bearer_token_file: Option<PathBuf>,
    /// PEM certificate chain; with `tls_key_file`, the listener speaks TLS only.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Largest request body accepted as sent (compressed), bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Largest body after snappy/gzip decompression, bytes: guards against compression bombs.
    pub max_decoded_bytes: usize,
    /// Samples per second admitted over all sources (bursts up to one second's worth); beyond it
    /// senders get 429 with Retry-After. One request may carry at most this many samples.
    pub max_ingest_samples_per_sec: u64,
    /// Spans per second admitted over OTLP and Zipkin together, as for samples.
    pub max_ingest_spans_per_sec: u64,
    /// Spans buffered for the pipeline; the oldest are dropped (and counted) beyond it.
    pub max_spans_buffered: usize,
    /// Alerts buffered for the pipeline; the oldest are dropped (and counted) beyond it.
    pub max_alerts_buffered: usize,
    /// Bytes the buffered spans may hold (each charged at its real size); the oldest are dropped
    /// (and counted) beyond it.
    pub max_spans_buffered_bytes: usize,
    /// Bytes the buffered alerts may hold, as for spans.
    pub max_alerts_buffered_bytes: usize,
    /// Timeouts and the connection cap of the listener.
    pub connections: ConnectionLimits,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        let ingest = IngestConfig::default();
        ReceiverConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 4318)),
            bearer_token_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            // Prometheus sends ~2,000 samples a request (a few hundred KiB); OTLP SDKs batch 512
            // spans. 8 MiB leaves room for large batches and bounds what one request can pin.
            max_body_bytes: 8 << 20,
            max_decoded_bytes: 64 << 20,
            max_ingest_samples_per_sec: ingest.max_ingest_samples_per_sec,
            max_ingest_spans_per_sec: ingest.max_ingest_spans_per_sec,
            max_spans_buffered: ingest.max_spans_buffered,
            max_alerts_buffered: ingest.max_alerts_buffered,
            max_spans_buffered_bytes: ingest.max_spans_buffered_bytes,
            max_alerts_buffered_bytes: ingest.max_alerts_buffered_bytes,
            connections: ConnectionLimits::default(),
        }
    }
}

impl ReceiverConfig {
    /// Refuses settings that would leave the receivers useless (every push refused, nothing
    /// buffered), naming them as `receivers.<field>`. Reads no file and opens no socket.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes as u64),
            ("max_decoded_bytes", self.max_decoded_bytes as u64),
            ("max_ingest_samples_per_sec", self.max_ingest_samples_per_sec),
            ("max_ingest_spans_per_sec", self.max_ingest_spans_per_sec),
            ("max_spans_buffered", self.max_spans_buffered as u64),
            ("max_alerts_buffered", self.max_alerts_buffered as u64),
            ("max_spans_buffered_bytes", self.max_spans_buffered_bytes as u64),
            ("max_alerts_buffered_bytes", self.max_alerts_buffered_bytes as u64),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(InvalidSetting::new(
                    format!("receivers.{name}"),
                    "must be at least 1 (0 would refuse every push)",
                ));
            }
        }
        if self.max_decoded_bytes < self.max_body_bytes {
            return Err(InvalidSetting::new(
                "receivers.max_decoded_bytes",
                format!(
                    "must be at least max_body_bytes ({}): an uncompressed body that arrives whole would be refused",
                    self.max_body_bytes
                ),
            ));
        }
        for (name, path) in [
            ("bearer_token_file", &self.bearer_token_file),
            ("tls_cert_file", &self.tls_cert_file),
            ("tls_key_file", &self.tls_key_file),
        ] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(InvalidSetting::new(format!("receivers.{name}"), "is empty; leave it out instead"));
            }
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(InvalidSetting::new(
                "receivers.tls_cert_file",
                "tls_cert_file and tls_key_file must be given together",
            ));
        }
        self.connections.validate("receivers.connections")
    }

    /// The sink settings these receivers imply, with the window store's `window` and the
    /// per-item `limits`.
    pub fn ingest_config(&self, window: WindowConfig, limits: IngestLimits) -> IngestConfig {
        IngestConfig {
            window,
            limits,
            max_spans_buffered_bytes: self.max_spans_buffered_bytes,
            max_alerts_buffered_bytes: self.max_alerts_buffered_bytes,
            max_ingest_samples_per_sec: self.max_ingest_samples_per_sec,
            max_ingest_spans_per_sec: self.max_ingest_spans_per_sec,
            max_spans_buffered: self.max_spans_buffered,
            max_alerts_buffered: self.max_alerts_buffered,
        }
    }
}

/// Why the receivers could not be set up or served.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// The bearer token file could not be read.
    #[error("cannot read bearer_token_file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bearer token file holds nothing but whitespace.
    #[error("bearer_token_file {path} is empty")]
    EmptyToken { path: PathBuf },
    /// Only one of the certificate and the key was given.
    #[error("tls_cert_file and tls_key_file must be given together (got only {given})")]
    TlsHalfConfigured { given: &'static str },
    /// A certificate or key file could not be read or holds no usable PEM.
    #[error("cannot load TLS {what} from {path}: {reason}")]
    TlsFile { what: &'static str, path: PathBuf, reason: String },
    /// rustls refused the certificate and key.
    #[error("invalid TLS certificate or key: {0}")]
    Tls(#[source] rustls::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A setting that cannot work.
    #[error(transparent)]
    Setting(#[from] InvalidSetting),
}

impl ReceiverError {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ReceiverError::TokenFile { .. } | ReceiverError::EmptyToken { .. } => "token",
            ReceiverError::TlsHalfConfigured { .. } | ReceiverError::TlsFile { .. } | ReceiverError::Tls(_) => "tls",
            ReceiverError::Bind { .. } => "bind",
            ReceiverError::Setting(_) => "setting",
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct ReceiverState {
    pub ingest: Arc<Ingest>,
    pub clock: Clock,
    pub max_body_bytes: usize,
    pub max_decoded_bytes: usize,
    /// The expected bearer token, when one is configured (never logged).
    token: Option<Arc<[u8]>>,
}

impl ReceiverState {
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Counts a refused request and turns it into its response.
    pub fn refuse(&self, source: Source, refusal: Refusal) -> Response {
        self.ingest.reject_request(source, refusal.metric_label());
        tracing::debug!(source = source.as_str(), reason = refusal.metric_label(), message = %refusal, "Refused a pushed request.");
        refusal.into_response()
    }
}

fn read_token(path: &PathBuf) -> Result<Arc<[u8]>, ReceiverError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReceiverError::TokenFile {
        path: path.clone(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ReceiverError::EmptyToken { path: path.clone() });
    }
    Ok(Arc::from(token.as_bytes()))
}

/// The receivers' router, reading time from the system clock.
pub fn router(ingest: Arc<Ingest>, cfg: &ReceiverConfig) -> Result<Router, ReceiverError> {
    router_with_clock(ingest, cfg, system_clock())
}

/// The receivers' router with the clock given (tests pass a fixed or stepped one).
pub fn router_with_clock(ingest: Arc<Ingest>, cfg: &ReceiverConfig, clock: Clock) -> Result<Router, ReceiverError> {
    let token = cfg.bearer_token_file.as_ref().map(read_token).transpose()?;
    let state = ReceiverState {
        ingest,
        clock,
        max_body_bytes: cfg.max_body_bytes,
        max_decoded_bytes: cfg.max_decoded_bytes,
        token,
    };
    let routes = Router::new()
        .route(REMOTE_WRITE_PATH, post(remote_write::handle))
        .route(OTLP_TRACES_PATH, post(otlp::handle))
        .route(ZIPKIN_SPANS_PATH, post(zipkin::handle))
        .route(ALERTMANAGER_PATH, post(alertmanager::handle))
        .fallback(not_found);
    let routes = if state.token.is_some() {
        routes.layer(middleware::from_fn_with_state(state.clone(), require_bearer))
    } else {
        routes
    };
    Ok(routes.with_state(state))
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("no receiver here; POST to {REMOTE_WRITE_PATH}, {OTLP_TRACES_PATH}, {ZIPKIN_SPANS_PATH} or {ALERTMANAGER_PATH}\n"),
    )
        .into_response()
}

fn source_of(path: &str) -> Source {
    match path {
        OTLP_TRACES_PATH => Source::Otlp,
        ZIPKIN_SPANS_PATH => Source::Zipkin,
        ALERTMANAGER_PATH => Source::Alertmanager,
        _ => Source::RemoteWrite,
    }
}

/// Lets a request through only with the configured bearer token, compared in constant time.
async fn require_bearer(State(st): State<ReceiverState>, req: Request, next: Next) -> Response {
    let Some(expected) = &st.token else { return next.run(req).await };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().as_bytes());
    let refusal = match presented {
        None => Refusal::Unauthorized("missing `Authorization: Bearer <token>` header"),
        Some(token) if bool::from(token.ct_eq(expected)) => return next.run(req).await,
        Some(_) => Refusal::Unauthorized("the bearer token is not the one configured"),
    };
    st.refuse(source_of(req.uri().path()), refusal)
}

/// The name of the receivers' listener in metrics (`listener="receivers"`).
pub const LISTENER_NAME: &str = "receivers";

/// Binds `cfg.listen` and serves `router` until `shutdown` completes (TLS when configured), under
/// `cfg.connections`' bounds, counting what they close in `metrics`.
pub async fn serve(
    cfg: &ReceiverConfig,
    router: Router,
    metrics: ListenerMetrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ReceiverError> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ReceiverError::Bind { addr: cfg.listen, source })?;
    serve_listener(listener, cfg, router, metrics, shutdown).await
}

/// Serves `router` on a listener already bound (tests bind port 0), TLS when `cfg` names a
/// certificate and key.
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    cfg: &ReceiverConfig,
    router: Router,
    metrics: ListenerMetrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ReceiverError> {
    cfg.connections.validate("receivers.connections")?;
    let tls = tls::server_config(cfg)?;
    let served = listen::Listener {
        name: LISTENER_NAME,
        limits: cfg.connections.clone(),
        metrics,
        tls,
    };
    listen::serve(listener, served, router, shutdown).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_reads_yaml_like_json_with_defaults_and_refuses_unknown_fields() {
        let cfg: ReceiverConfig = serde_json::from_str(r#"{"listen": "127.0.0.1:9999", "max_body_bytes": 1024}"#).unwrap();
        assert_eq!(cfg.listen, SocketAddr::from(([127, 0, 0, 1], 9999)));
        assert_eq!(cfg.max_body_bytes, 1024);
        assert_eq!(cfg.max_spans_buffered, ReceiverConfig::default().max_spans_buffered);
        let err = serde_json::from_str::<ReceiverConfig>(r#"{"max_body_size": 1}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `max_body_size`"), "{err}");
    }

    #[test]
    fn an_empty_token_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  \n").unwrap();
        let cfg = ReceiverConfig {
            bearer_token_file: Some(path),
            ..ReceiverConfig::default()
        };
        let err = router(Arc::new(Ingest::new(IngestConfig::default())), &cfg).unwrap_err();
        assert!(matches!(err, ReceiverError::EmptyToken { .. }), "{err}");
    }
}
