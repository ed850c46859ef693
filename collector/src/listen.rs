//! Serving an axum [`Router`] on a TCP listener (plain or TLS) with bounds on what a client can
//! hold: a request's headers and its body must arrive within their timeouts, a connection with
//! no request under way is closed after `idle_timeout_secs`, and at most `max_connections` are
//! open at once (further ones are closed as soon as they are accepted). Every connection closed
//! or refused by one of these bounds is counted by listener and reason
//! (`cellwarden_listener_connections_closed_total`, `..._refused_total`).
//!
//! The receivers and the daemon's admin endpoints both serve through [`serve`]. hyper's own
//! header timeout is not used: it starts when the connection waits for a request, so on a
//! keep-alive connection it is an idle timeout, and HTTP/2 has none. Here a small watchdog per
//! connection reads what the connection did ([`ConnState`]: bytes read while no request is under
//! way, requests under way, when it went idle) and closes it when a bound is passed.
//!
//! On shutdown the listener stops accepting, asks open connections to finish the request under
//! way (hyper's graceful shutdown) and closes what is left after `drain_timeout_secs`.

use axum::body::Bytes;
use axum::Router;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::service::Service as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Semaphore};

/// Bounds on the connections of one listener (`receivers.connections` and `admin_connections`
/// in `cellwarden.yaml`). The defaults are in [`ConnectionLimits::default`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionLimits {
    /// Longest a request's headers may take from their first byte, seconds; then the connection
    /// is closed (slow-header senders hold a socket and a task each).
    pub header_read_timeout_secs: u64,
    /// Longest a request's body may take after its headers, seconds; then 408 and the
    /// connection is closed.
    pub body_read_timeout_secs: u64,
    /// How long a connection with no request under way stays open, seconds (keep-alive between
    /// requests, and a new connection that sends nothing).
    pub idle_timeout_secs: u64,
    /// Most connections open at once; further ones are closed as soon as they are accepted.
    pub max_connections: usize,
    /// On shutdown, how long requests under way may take to finish, seconds.
    pub drain_timeout_secs: u64,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            // A request's headers are a few hundred bytes: 10 s is generous on any network.
            header_read_timeout_secs: 10,
            // 8 MiB (the default max_body_bytes) in 30 s needs ~2.2 Mbit/s from the sender.
            body_read_timeout_secs: 30,
            // Shorter than the 90 s idle timeout of Go's HTTP client (Prometheus, the OTel
            // Collector, Alertmanager), long enough for a 15-60 s push interval to reuse it.
            idle_timeout_secs: 60,
            // Far below the default fd limit (1,024 soft in many images, more in Kubernetes):
            // senders keep a few connections each, and one more is refused, not a crash.
            max_connections: 1024,
            drain_timeout_secs: 5,
        }
    }
}

/// The longest timeout accepted, seconds: a day is already no bound at all.
pub const MAX_TIMEOUT_SECS: u64 = 86_400;
/// The most connections a listener may be allowed (far beyond any fd limit in practice).
pub const MAX_CONNECTIONS: usize = 1_000_000;

/// A setting that cannot work, named by its path in the config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidSetting {
    /// The setting's path, e.g. `receivers.max_body_bytes`.
    pub field: String,
    /// What is wrong with its value.
    pub problem: String,
}

impl InvalidSetting {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> InvalidSetting {
        InvalidSetting {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl ConnectionLimits {
    /// Refuses bounds that would make the listener useless; `prefix` is where they sit in the
    /// config (`receivers.connections`).
    pub fn validate(&self, prefix: &str) -> Result<(), InvalidSetting> {
        let positive = [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("body_read_timeout_secs", self.body_read_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("max_connections", self.max_connections as u64),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(InvalidSetting::new(format!("{prefix}.{name}"), "must be at least 1"));
            }
        }
        for (name, v) in [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("body_read_timeout_secs", self.body_read_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("drain_timeout_secs", self.drain_timeout_secs),
        ] {
            if v > MAX_TIMEOUT_SECS {
                return Err(InvalidSetting::new(
                    format!("{prefix}.{name}"),
                    format!("must be at most {MAX_TIMEOUT_SECS} (a day)"),
                ));
            }
        }
        if self.max_connections > MAX_CONNECTIONS {
            return Err(InvalidSetting::new(
                format!("{prefix}.max_connections"),
                format!("must be at most {MAX_CONNECTIONS}"),
            ));
        }
        Ok(())
    }
}

/// Why a connection was closed or refused (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Its headers did not arrive within `header_read_timeout_secs`.
    HeaderTimeout,
    /// A body did not arrive within `body_read_timeout_secs` (the request got 408).
    BodyTimeout,
    /// No request for `idle_timeout_secs`.
    IdleTimeout,
    /// The TLS handshake did not finish within `header_read_timeout_secs`.
    TlsHandshakeTimeout,
    /// `max_connections` were open already (refused at accept).
    MaxConnections,
}

impl CloseReason {
    /// A bounded label for metrics.
    pub fn metric_label(self) -> &'static str {
        match self {
            CloseReason::HeaderTimeout => "header_timeout",
            CloseReason::BodyTimeout => "body_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::TlsHandshakeTimeout => "tls_handshake_timeout",
            CloseReason::MaxConnections => "max_connections",
        }
    }
}

type ListenerReasonLabels = [(&'static str, &'static str); 2];
type ListenerLabels = [(&'static str, &'static str); 1];

/// The listeners' metrics, shared by every listener (label `listener`); cheap clones share values.
#[derive(Debug, Clone, Default)]
pub struct ListenerMetrics {
    closed: Family<ListenerReasonLabels, Counter>,
    refused: Family<ListenerReasonLabels, Counter>,
    open: Family<ListenerLabels, Gauge>,
}

impl ListenerMetrics {
    /// Registers under `listener_` in `registry` (the daemon's is prefixed `cellwarden`).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("listener");
        r.register(
            "connections_closed",
            "Connections closed by a bound (header, body or idle timeout, TLS handshake), by listener and reason",
            self.closed.clone(),
        );
        r.register(
            "connections_refused",
            "Connections closed at accept because max_connections were open, by listener",
            self.refused.clone(),
        );
        r.register("connections_open", "Connections open now, by listener", self.open.clone());
    }

    /// Connections of `listener` closed for `reason` so far (tests and benches read it).
    pub fn closed(&self, listener: &'static str, reason: CloseReason) -> u64 {
        self.closed
            .get_or_create(&[("listener", listener), ("reason", reason.metric_label())])
            .get()
    }

    /// Connections of `listener` refused at accept so far.
    pub fn refused(&self, listener: &'static str) -> u64 {
        self.refused
            .get_or_create(&[("listener", listener), ("reason", CloseReason::MaxConnections.metric_label())])
            .get()
    }

    fn count_closed(&self, listener: &'static str, reason: CloseReason) {
        let family = if reason == CloseReason::MaxConnections {
            &self.refused
        } else {
            &self.closed
        };
        family
            .get_or_create(&[("listener", listener), ("reason", reason.metric_label())])
            .inc();
    }
}

/// The error a request body yields when it did not arrive within `body_read_timeout_secs`
/// (receivers turn it into 408, see `receive::request::read_body`).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body did not arrive within body_read_timeout_secs ({secs} s)")]
pub struct BodyReadTimeout {
    pub secs: u64,
}

/// What one connection did, as its watchdog reads it. Times are milliseconds since `born`.
struct ConnState {
    born: Instant,
    /// When the connection last had no request under way (accept, or a response finished).
    idle_since_ms: AtomicU64,
    /// One more than when the first byte was read while idle (0: none since); a request's
    /// headers are under way from then.
    head_started_ms: AtomicU64,
    /// Requests under way (HTTP/2 carries several).
    in_flight: AtomicUsize,
    /// A body timed out: close once the response is out.
    close: AtomicBool,
    /// The connection carried an HTTP/2 request: bytes read while idle are then control frames
    /// (WINDOW_UPDATE, PING, SETTINGS acks that follow a response), not a request's headers, so
    /// they start no header timer and the idle timeout keeps running. A new request's headers
    /// are one HEADERS frame, dispatched when whole; until then the idle bound holds.
    http2: AtomicBool,
}

impl ConnState {
    fn new() -> ConnState {
        ConnState {
            born: Instant::now(),
            idle_since_ms: AtomicU64::new(0),
            head_started_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            close: AtomicBool::new(false),
            http2: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    fn read_some(&self) {
        if self.http2.load(Ordering::SeqCst) {
            return;
        }
        if self.in_flight.load(Ordering::SeqCst) == 0 && self.head_started_ms.load(Ordering::SeqCst) == 0 {
            let now = self.now_ms() + 1;
            let _ = self.head_started_ms.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// The bound this connection has passed, if any, at `now_ms`.
    fn overdue(&self, limits: &ConnectionLimits, now_ms: u64) -> Option<CloseReason> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        if self.close.load(Ordering::SeqCst) {
            return Some(CloseReason::BodyTimeout);
        }
        match self.head_started_ms.load(Ordering::SeqCst) {
            0 => (now_ms.saturating_sub(self.idle_since_ms.load(Ordering::SeqCst)) >= limits.idle_timeout_secs * 1000)
                .then_some(CloseReason::IdleTimeout),
            started => {
                ((now_ms + 1).saturating_sub(started) >= limits.header_read_timeout_secs * 1000).then_some(CloseReason::HeaderTimeout)
            }
        }
    }
}

/// One request under way on a connection, from its headers until its response body is done.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn begin(state: Arc<ConnState>) -> InFlight {
        state.in_flight.fetch_add(1, Ordering::SeqCst);
        state.head_started_ms.store(0, Ordering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle_since_ms.store(self.0.now_ms(), Ordering::SeqCst);
            self.0.head_started_ms.store(0, Ordering::SeqCst);
        }
    }
}

/// The connection's socket (TCP, or TLS over it), noting what it reads.
struct Tracked<T> {
    inner: T,
    state: Arc<ConnState>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.read_some();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that fails with [`BodyReadTimeout`] once its deadline passes.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    secs: u64,
    state: Arc<ConnState>,
    metrics: ListenerMetrics,
    listener: &'static str,
    timed_out: bool,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.timed_out {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.timed_out = true;
            self.state.close.store(true, Ordering::SeqCst);
            self.metrics.count_closed(self.listener, CloseReason::BodyTimeout);
            return Poll::Ready(Some(Err(Box::new(BodyReadTimeout { secs: self.secs }))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted as under way until it is done.
struct GuardedBody {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How often a connection's watchdog looks: a tenth of the shortest timeout, within 10 ms..1 s,
/// so a bound is enforced at most 10% late.
fn watch_tick(limits: &ConnectionLimits) -> Duration {
    let shortest_ms = limits.header_read_timeout_secs.min(limits.idle_timeout_secs).max(1) * 1000;
    Duration::from_millis((shortest_ms / 10).clamp(10, 1000))
}

/// One listener: its name (the `listener` label), bounds, metrics and TLS settings.
#[derive(Clone)]
pub struct Listener {
    pub name: &'static str,
    pub limits: ConnectionLimits,
    pub metrics: ListenerMetrics,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Serves `router` on `listener` until `shutdown` completes, then drains (at most
/// `drain_timeout_secs`, plus a second for the last closes).
pub async fn serve(tcp: tokio::net::TcpListener, listener: Listener, router: Router, shutdown: impl Future<Output = ()> + Send + 'static) {
    let limits = listener.limits.clone();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let acceptor = listener.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(listener = listener.name, error = %e, "Accepting a connection failed.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            listener.metrics.count_closed(listener.name, CloseReason::MaxConnections);
            tracing::debug!(listener = listener.name, %peer, max_connections = limits.max_connections, "Refused a connection: too many open.");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (listener, router, builder, acceptor, mut stop_rx) =
            (listener.clone(), router.clone(), builder.clone(), acceptor.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let open = listener.metrics.open.get_or_create(&[("listener", listener.name)]).clone();
            open.inc();
            let state = Arc::new(ConnState::new());
            let io = Tracked {
                inner: stream,
                state: state.clone(),
            };
            match acceptor {
                None => serve_connection(io, state, &listener, router, &builder, &mut stop_rx).await,
                Some(acceptor) => {
                    let handshake = Duration::from_secs(listener.limits.header_read_timeout_secs);
                    match tokio::time::timeout(handshake, acceptor.accept(io)).await {
                        Ok(Ok(tls)) => serve_connection(tls, state, &listener, router, &builder, &mut stop_rx).await,
                        Ok(Err(e)) => tracing::debug!(listener = listener.name, %peer, error = %e, "TLS handshake failed."),
                        Err(_) => {
                            listener.metrics.count_closed(listener.name, CloseReason::TlsHandshakeTimeout);
                            tracing::debug!(listener = listener.name, %peer, "TLS handshake timed out.");
                        }
                    }
                }
            }
            open.dec();
        });
    }
    drop(tcp);
    let _ = stop_tx.send(true);
    // Every connection holds a slot: all of them back means all connections are closed.
    let drain = Duration::from_secs(limits.drain_timeout_secs) + Duration::from_secs(1);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(drain, slots.acquire_many(all)).await.is_err() {
        tracing::warn!(listener = listener.name, "Open connections did not close in time; leaving them.");
    }
}

/// Serves one connection under its bounds until it ends, a bound closes it, or shutdown has
/// drained it.
async fn serve_connection<IO>(
    io: IO,
    state: Arc<ConnState>,
    listener: &Listener,
    router: Router,
    builder: &hyper_util::server::conn::auto::Builder<TokioExecutor>,
    stop_rx: &mut watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &listener.limits;
    let router = TowerToHyperService::new(router);
    let (svc_state, metrics, name, body_secs) = (
        state.clone(),
        listener.metrics.clone(),
        listener.name,
        limits.body_read_timeout_secs,
    );
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        if req.version() == hyper::Version::HTTP_2 {
            svc_state.http2.store(true, Ordering::SeqCst);
        }
        let in_flight = InFlight::begin(svc_state.clone());
        let (parts, body) = req.into_parts();
        let body = DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(Duration::from_secs(body_secs))),
            secs: body_secs,
            state: svc_state.clone(),
            metrics: metrics.clone(),
            listener: name,
            timed_out: false,
        };
        let call = router.call(hyper::Request::from_parts(parts, body));
        async move {
            let resp = call.await?;
            Ok::<_, std::convert::Infallible>(resp.map(|inner| GuardedBody {
                inner,
                _in_flight: in_flight,
            }))
        }
    });
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let tick = watch_tick(limits);
    let watchdog = async {
        loop {
            tokio::time::sleep(tick).await;
            if let Some(reason) = state.overdue(limits, state.now_ms()) {
                return reason;
            }
        }
    };
    tokio::pin!(watchdog);
    let (reason, grace) = tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(listener = listener.name, error = %e, "Connection ended with an error.");
            }
            return;
        }
        reason = &mut watchdog => (Some(reason), Duration::from_secs(1)),
        _ = stop_rx.wait_for(|stop| *stop) => (None, Duration::from_secs(limits.drain_timeout_secs)),
    };
    if let Some(reason) = reason {
        // A body timeout was counted when it happened.
        if reason != CloseReason::BodyTimeout {
            listener.metrics.count_closed(listener.name, reason);
        }
        tracing::debug!(listener = listener.name, reason = reason.metric_label(), "Closing a connection.");
        if reason == CloseReason::HeaderTimeout {
            // hyper would wait for the half-read request: drop the socket.
            return;
        }
    }
    // Lets a response being written go out (and tells an HTTP/2 client with GOAWAY).
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(grace, conn.as_mut()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After an HTTP/2 request, the control frames read while idle leave the idle clock running:
    /// the connection is closed as idle, not as a request whose headers were late.
    #[test]
    fn control_frames_read_on_an_idle_http2_connection_start_no_header_clock() {
        let limits = ConnectionLimits {
            header_read_timeout_secs: 2,
            idle_timeout_secs: 5,
            ..ConnectionLimits::default()
        };
        let s = Arc::new(ConnState::new());
        drop(InFlight::begin(s.clone()));
        s.http2.store(true, Ordering::SeqCst);
        s.read_some();
        assert_eq!(s.head_started_ms.load(Ordering::SeqCst), 0);
        assert_eq!(s.overdue(&limits, 5_000), Some(CloseReason::IdleTimeout));
        // The same bytes on HTTP/1.1 are a request's headers under way.
        let s = ConnState::new();
        s.read_some();
        assert_ne!(s.head_started_ms.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_connection_is_overdue_by_the_bound_of_what_it_is_doing() {
        let limits = ConnectionLimits {
            header_read_timeout_secs: 2,
            idle_timeout_secs: 5,
            ..ConnectionLimits::default()
        };
        let s = ConnState::new();
        assert_eq!(s.overdue(&limits, 4_999), None);
        assert_eq!(s.overdue(&limits, 5_000), Some(CloseReason::IdleTimeout));
        // A byte read at 1 s starts the header clock.
        s.head_started_ms.store(1_001, Ordering::SeqCst);
        assert_eq!(s.overdue(&limits, 2_999), None);
        assert_eq!(s.overdue(&limits, 3_000), Some(CloseReason::HeaderTimeout));
        // A request under way is bounded by its body's deadline, not here.
        let req = InFlight::begin(Arc::new(ConnState::new()));
        assert_eq!(req.0.overdue(&limits, 60_000), None);
        req.0.close.store(true, Ordering::SeqCst);
        let state = req.0.clone();
        drop(req);
        assert_eq!(state.overdue(&limits, 60_000), Some(CloseReason::BodyTimeout));
    }

    #[test]
    fn zero_bounds_are_refused_by_name() {
        let bad = ConnectionLimits {
            idle_timeout_secs: 0,
            ..ConnectionLimits::default()
        };
        let err = bad.validate("receivers.connections").unwrap_err();
        assert_eq!(err.field, "receivers.connections.idle_timeout_secs");
        let huge = ConnectionLimits {
            max_connections: usize::MAX,
            ..ConnectionLimits::default()
        };
        assert_eq!(huge.validate("x").unwrap_err().field, "x.max_connections");
        let forever = ConnectionLimits {
            header_read_timeout_secs: u64::MAX,
            ..ConnectionLimits::default()
        };
        assert_eq!(forever.validate("x").unwrap_err().field, "x.header_read_timeout_secs");
        assert!(ConnectionLimits::default().validate("x").is_ok());
    }
}
