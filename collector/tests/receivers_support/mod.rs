//! Shared by the receiver tests: a receiver server on 127.0.0.1 with a clock the test sets, and
//! builders of remote_write requests.
#![allow(dead_code)] // each test crate uses a part

use cellwarden_collector::ingest::Ingest;
use cellwarden_collector::receive::remote_write::{encode, proto};
use cellwarden_collector::receive::{self, Clock, ReceiverConfig};
use cellwarden_models::Timestamp;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running receiver.
pub struct Server {
    pub addr: SocketAddr,
    pub ingest: Arc<Ingest>,
    /// The receivers' clock, Unix milliseconds; tests move it.
    pub now_ms: Arc<AtomicI64>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), receive::ReceiverError>>>,
}

pub const T0_MS: i64 = 1_772_360_000_000;

impl Server {
    /// Starts the receivers with `cfg` (its `listen` is ignored: port 0 on 127.0.0.1).
    pub async fn start(cfg: ReceiverConfig) -> Server {
        Self::start_with(cfg, None).await
    }

    /// As [`Server::start`], with the wall clock when `wall_clock` is set.
    pub async fn start_with(cfg: ReceiverConfig, clock: Option<Clock>) -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ingest = Arc::new(Ingest::new(cfg.ingest_config(Default::default(), Default::default())));
        let now_ms = Arc::new(AtomicI64::new(T0_MS));
        let clock = clock.unwrap_or_else(|| {
            let now = now_ms.clone();
            Arc::new(move || Timestamp(now.load(Ordering::SeqCst)))
        });
        let router = receive::router_with_clock(ingest.clone(), &cfg, clock).expect("router");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            receive::serve_listener(listener, &cfg, router, Default::default(), async {
                let _ = stopped.await;
            })
            .await
        });
        Server {
            addr,
            ingest,
            now_ms,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn advance_ms(&self, ms: i64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A plain-HTTP client.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

pub fn label(name: &str, value: &str) -> proto::Label {
    proto::Label::new(name, value)
}

/// One series `metric{pod=...}` with samples `(ms, value)`.
pub fn series(metric: &str, pod: &str, samples: &[(i64, f64)]) -> proto::TimeSeries {
    proto::TimeSeries {
        labels: vec![label("__name__", metric), label("pod", pod)],
        samples: samples
            .iter()
            .map(|&(timestamp, value)| proto::Sample { value, timestamp })
            .collect(),
        histograms: vec![],
    }
}

/// A snappy-compressed WriteRequest body.
pub fn write_body(timeseries: Vec<proto::TimeSeries>) -> Vec<u8> {
    encode(&proto::WriteRequest {
        timeseries,
        metadata: vec![],
    })
}

/// POSTs a remote_write body with the right headers.
pub async fn post_write(client: &reqwest::Client, server: &Server, body: Vec<u8>) -> reqwest::Response {
    client
        .post(server.url("/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .unwrap()
}
