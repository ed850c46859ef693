//! The receivers' listener against clients that hold sockets: unfinished headers (sent at once,
//! or a byte at a time), unfinished bodies, idle sockets (new, and kept alive after a request),
//! more connections than `max_connections`, and an idle HTTP/2 connection. Each is closed (or
//! refused) within its bound and counted on the listener's metrics; a well-behaved client is
//! served throughout.
//!
//! Timeouts are 1 s here; closures are timed with generous margins (0.8 s .. 6 s) so a loaded
//! machine does not fail them.

use cellwarden_collector::ingest::{Ingest, Source};
use cellwarden_collector::listen::{CloseReason, ConnectionLimits, ListenerMetrics};
use cellwarden_collector::receive::{self, ReceiverConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LISTENER: &str = receive::LISTENER_NAME;

struct Served {
    addr: SocketAddr,
    ingest: Arc<Ingest>,
    metrics: ListenerMetrics,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), receive::ReceiverError>>,
}

async fn serve(max_connections: usize) -> Served {
    serve_with(max_connections, None).await
}

/// [`serve`], with senders required to present the token in `bearer_token_file`.
async fn serve_with(max_connections: usize, bearer_token_file: Option<std::path::PathBuf>) -> Served {
    let cfg = ReceiverConfig {
        bearer_token_file,
        connections: ConnectionLimits {
            header_read_timeout_secs: 1,
            body_read_timeout_secs: 1,
            idle_timeout_secs: 1,
            max_connections,
            drain_timeout_secs: 1,
        },
        ..ReceiverConfig::default()
    };
    let ingest = Arc::new(Ingest::new(cfg.ingest_config(Default::default(), Default::default())));
    let router = receive::router(ingest.clone(), &cfg).unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let metrics = ListenerMetrics::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served_metrics = metrics.clone();
    let task = tokio::spawn(async move {
        receive::serve_listener(tcp, &cfg, router, served_metrics, async {
            let _ = stopped.await;
        })
        .await
    });
    Served {
        addr,
        ingest,
        metrics,
        stop: Some(stop),
        task,
    }
}

/// Reads until the server closes the socket: what it sent, and how long that took from `since`.
async fn until_closed(s: &mut (impl AsyncReadExt + Unpin), since: Instant) -> (String, Duration) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Err(_) => panic!("the server kept the socket open for 10 s; got {:?}", String::from_utf8_lossy(&out)),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), since.elapsed()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn within_bound(took: Duration, what: &str) {
    assert!(
        took >= Duration::from_millis(800) && took <= Duration::from_secs(6),
        "{what} closed after {took:?}, expected about 1 s"
    );
}

const ALERTS: &str = "{\"version\": \"4\", \"status\": \"firing\", \"alerts\": []}";

fn alerts_request(keep_alive: bool) -> String {
    format!(
        "POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{ALERTS}",
        ALERTS.len(),
        if keep_alive { "" } else { "Connection: close\r\n" }
    )
}

/// A well-behaved client: one request on a fresh connection, its status.
async fn good_request(addr: SocketAddr) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(alerts_request(false).as_bytes()).await.unwrap();
    let (resp, _) = until_closed(&mut s, Instant::now()).await;
    resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_headers_are_closed_after_the_header_read_timeout() {
    let srv = serve(16).await;
    // All but the blank line that ends the headers.
    let mut stalled = TcpStream::connect(srv.addr).await.unwrap();
    let t = Instant::now();
    stalled.write_all(b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // Slowloris: a header byte every 200 ms keeps the socket busy but never finishes.
    let (mut dribble_read, mut dribble) = TcpStream::connect(srv.addr).await.unwrap().into_split();
    let t2 = Instant::now();
    let dribbler = tokio::spawn(async move {
        for b in b"POST /api/v1/alerts HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if dribble.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let (_, took) = until_closed(&mut stalled, t).await;
    within_bound(took, "a socket with unfinished headers");
    let (_, took) = until_closed(&mut dribble_read, t2).await;
    within_bound(took, "a socket sending its headers a byte at a time");
    dribbler.abort();
    assert_eq!(srv.metrics.closed(LISTENER, CloseReason::HeaderTimeout), 2);
    assert_eq!(good_request(srv.addr).await, 200);
    println!("unfinished headers: closed after {took:?} (header_read_timeout_secs: 1)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_body_gets_408_and_its_socket_is_closed() {
    let srv = serve(16).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"version\"")
        .await
        .unwrap();
    let t = Instant::now();
    let (resp, took) = until_closed(&mut s, t).await;
    within_bound(took, "a socket with an unfinished body");
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    assert!(resp.contains("body_read_timeout_secs"), "the 408 says which bound: {resp}");
    assert_eq!(srv.metrics.closed(LISTENER, CloseReason::BodyTimeout), 1);
    assert_eq!(srv.ingest.requests_rejected(Source::Alertmanager, "body_timeout"), 1);
    assert_eq!(good_request(srv.addr).await, 200);
    println!("unfinished body: 408 and closed after {took:?} (body_read_timeout_secs: 1)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_are_closed_after_the_idle_timeout() {
    let srv = serve(16).await;
    // A connection that never sends anything.
    let mut silent = TcpStream::connect(srv.addr).await.unwrap();
    let t = Instant::now();
    // A keep-alive connection after its request was answered.
    let mut kept = TcpStream::connect(srv.addr).await.unwrap();
    kept.write_all(alerts_request(true).as_bytes()).await.unwrap();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), kept.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let answered = Instant::now();
    let (_, took) = until_closed(&mut silent, t).await;
    within_bound(took, "a silent socket");
    let (_, took) = until_closed(&mut kept, answered).await;
    within_bound(took, "an idle keep-alive socket");
    assert_eq!(srv.metrics.closed(LISTENER, CloseReason::IdleTimeout), 2);
    println!("idle keep-alive: closed after {took:?} (idle_timeout_secs: 1)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_max_connections_are_refused_and_counted() {
    let mut srv = serve(3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(srv.addr).await.unwrap());
    }
    // Accepted, then closed at once: the client sees the end of the stream, not a hang.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(srv.addr).await.unwrap();
    let t = Instant::now();
    let _ = extra.write_all(alerts_request(false).as_bytes()).await;
    let (resp, took) = until_closed(&mut extra, t).await;
    assert!(resp.is_empty() && took < Duration::from_secs(1), "{took:?} {resp}");
    assert_eq!(srv.metrics.refused(LISTENER), 1);
    // Once the held ones are closed (idle), there is room again.
    for mut s in held {
        let (_, took) = until_closed(&mut s, t).await;
        assert!(took <= Duration::from_secs(6), "{took:?}");
    }
    assert_eq!(good_request(srv.addr).await, 200);
    // Shutdown stops the listener and returns.
    srv.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), srv.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(srv.addr).await.is_err(), "the listener is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_requests_are_served_and_their_idle_connection_closed() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let srv = serve(16).await;
    let client = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let resp = client
        .post(format!("http://{}/api/v1/alerts", srv.addr))
        .header("content-type", "application/json")
        .body(ALERTS)
        .send()
        .await
        .unwrap();
    assert_eq!((resp.version(), resp.status().as_u16()), (reqwest::Version::HTTP_2, 200));
    let deadline = Instant::now() + Duration::from_secs(6);
    while srv.metrics.closed(LISTENER, CloseReason::IdleTimeout) == 0 {
        assert!(Instant::now() < deadline, "the idle HTTP/2 connection was not closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Token-less requests over HTTP/2 are each answered 401 — with no body, or one the client is
/// still sending when the answer comes (1 KiB .. 2 MiB) — not reset; with the token, the same
/// connection is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_requests_without_the_token_are_answered_401_not_reset() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let srv = serve_with(16, Some(token)).await;
    let client = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let url = format!("http://{}/api/v1/alerts", srv.addr);
    let mut answered = Vec::new();
    for len in [0usize, 1 << 10, 256 << 10, 2 << 20] {
        for _ in 0..5 {
            let resp = client
                .post(&url)
                .header("content-type", "application/json")
                .body(vec![b' '; len])
                .send()
                .await
                .unwrap_or_else(|e| panic!("a {len}-byte token-less request was not answered: {e:?}"));
            answered.push((len, resp.version(), resp.status().as_u16()));
        }
    }
    assert!(
        answered
            .iter()
            .all(|&(_, v, status)| v == reqwest::Version::HTTP_2 && status == 401),
        "{answered:?}"
    );
    let resp = client
        .post(&url)
        .bearer_auth("s3cret")
        .header("content-type", "application/json")
        .body(ALERTS)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}
