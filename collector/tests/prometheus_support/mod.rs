//! A real Prometheus (Debian's `prometheus` 2.42) for the tests: started on a free 127.0.0.1 port
//! with a temporary data directory and config, ready when `/-/ready` says so, killed on drop.
//! Also `promtool`, and a tiny exposition target (an axum server) whose values the test knows.
//!
//! Without the binaries the tests fail and say how to install them (`scripts/test.sh` does).
//! Used by `collector/tests/prometheus.rs` and, through `#[path]`, by the root crate's
//! `tests/record.rs`.
#![allow(dead_code)] // each test crate uses a part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The program named by `$var`, else `default`, checked to run; fails the test otherwise.
fn require(var: &str, default: &str) -> String {
    let bin = std::env::var(var).unwrap_or_else(|_| default.into());
    match Command::new(&bin).arg("--version").output() {
        Ok(out) if out.status.success() => bin,
        _ => panic!("{bin} is not installed; run scripts/test.sh or `apt-get install -y prometheus` (or set {var})"),
    }
}

pub fn prometheus_bin() -> String {
    require("PROMETHEUS_BIN", "prometheus")
}

pub fn promtool_bin() -> String {
    require("PROMTOOL_BIN", "promtool")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running Prometheus; killed (and its data removed) on drop.
pub struct Prometheus {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus with `config` (YAML) and, when given, an existing TSDB directory (e.g.
    /// blocks from promtool), and waits until it is ready.
    pub fn start(config: &str, data: Option<&Path>) -> Prometheus {
        let bin = prometheus_bin();
        let dir = tempfile::tempdir().unwrap();
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let data = data.map(Path::to_path_buf).unwrap_or_else(|| dir.path().join("data"));
        let log = dir.path().join("prometheus.log");
        let port = free_port();
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            // Fixtures are months old: keep every block whatever its age.
            .arg("--storage.tsdb.retention.time=100y")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let mut p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            log,
        };
        p.wait_ready(Duration::from_secs(60));
        p
    }

    fn wait_ready(&mut self, limit: Duration) {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited ({status}) before it was ready:\n{}", self.log_text());
            }
            if http_get(&format!("{}/-/ready", self.url)).is_some_and(|(code, _)| code == 200) {
                return;
            }
            if started.elapsed() > limit {
                panic!("prometheus was not ready within {limit:?}:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking HTTP GET without a client library: `(status, body)`, `None` when nothing answers.
pub fn http_get(url: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((code, body))
}

/// Runs `promtool tsdb create-blocks-from openmetrics <om> <out>`; fails the test with its output.
pub fn promtool_create_blocks(om: &Path, out: &Path) {
    let res = Command::new(promtool_bin())
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(om)
        .arg(out)
        .output()
        .expect("run promtool");
    assert!(
        res.status.success(),
        "promtool failed: {}\n{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
}

/// The exposition a [`Target`] serves at step `n`: counters and a histogram growing linearly with
/// `n`, a gauge, and label values and help texts that need escaping.
pub fn exposition(n: u64, openmetrics: bool) -> String {
    let n = n as f64;
    let mut s = String::new();
    let path = r#"path="/pay,now=1""#;
    if openmetrics {
        s.push_str("# TYPE demo_requests counter\n# HELP demo_requests Requests served, by code \\\\ path.\n");
        s.push_str(&format!("demo_requests_total{{code=\"200\",{path}}} {}\n", 10.0 * n));
        s.push_str(&format!("demo_requests_created{{code=\"200\",{path}}} 1700000000\n"));
        s.push_str(&format!("demo_requests_total{{code=\"500\",{path}}} {}\n", n));
        s.push_str(&format!("demo_requests_created{{code=\"500\",{path}}} 1700000000\n"));
    } else {
        s.push_str("# HELP demo_requests_total Requests served, by code \\\\ path.\n# TYPE demo_requests_total counter\n");
        s.push_str(&format!("demo_requests_total{{code=\"200\",{path}}} {}\n", 10.0 * n));
        s.push_str(&format!("demo_requests_total{{code=\"500\",{path}}} {}\n", n));
    }
    s.push_str("# TYPE demo_latency_seconds histogram\n# HELP demo_latency_seconds Latency of requests.\n");
    for (le, share) in [("0.1", 2.0), ("0.5", 5.0), ("1.0", 9.0), ("+Inf", 10.0)] {
        s.push_str(&format!("demo_latency_seconds_bucket{{le=\"{le}\"}} {}\n", share * n));
    }
    s.push_str(&format!(
        "demo_latency_seconds_sum {}\ndemo_latency_seconds_count {}\n",
        2.5 * n,
        10.0 * n
    ));
    s.push_str("# TYPE demo_temperature_celsius gauge\n");
    s.push_str("demo_temperature_celsius{room=\"a \\\"big\\\" one\"} 21.5\n");
    if openmetrics {
        s.push_str("# EOF\n");
    }
    s
}

/// The buckets of `demo_latency_seconds` served at step `n`, as `(le, count)`.
pub fn buckets(n: u64) -> Vec<(f64, f64)> {
    let n = n as f64;
    vec![(0.1, 2.0 * n), (0.5, 5.0 * n), (1.0, 9.0 * n), (f64::INFINITY, 10.0 * n)]
}

/// A tiny exposition endpoint at `/metrics`: OpenMetrics when the `Accept` header asks for it,
/// the classic text format otherwise. Each request serves the next step `n` (1, 2, …) unless
/// frozen; every served `(n, openmetrics)` is logged.
pub struct Target {
    pub addr: std::net::SocketAddr,
    pub served: Arc<Mutex<Vec<(u64, bool)>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Target {
    /// Starts the target; `frozen_at` serves that step forever instead of advancing.
    pub async fn start(frozen_at: Option<u64>) -> Target {
        use axum::http::{header, HeaderMap};
        let served: Arc<Mutex<Vec<(u64, bool)>>> = Arc::default();
        let log = served.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move |headers: HeaderMap| {
                let log = log.clone();
                async move {
                    let om = headers
                        .get(header::ACCEPT)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|a| a.contains("application/openmetrics-text"));
                    let n = {
                        let mut log = log.lock().unwrap();
                        let n = frozen_at.unwrap_or(log.len() as u64 + 1);
                        log.push((n, om));
                        n
                    };
                    let ct = if om {
                        "application/openmetrics-text; version=1.0.0; charset=utf-8"
                    } else {
                        "text/plain; version=0.0.4; charset=utf-8"
                    };
                    ([(header::CONTENT_TYPE, ct)], exposition(n, om))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Target {
            addr,
            served,
            stop: Some(stop),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// The steps served so far, in order.
    pub fn steps(&self) -> Vec<u64> {
        self.served.lock().unwrap().iter().map(|(n, _)| *n).collect()
    }

    /// Waits (polling) until at least `n` requests were served; fails after `limit`.
    pub async fn wait_served(&self, n: usize, limit: Duration) {
        let started = Instant::now();
        while self.served.lock().unwrap().len() < n {
            assert!(
                started.elapsed() < limit,
                "the target was scraped only {} times in {limit:?}",
                self.served.lock().unwrap().len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A Prometheus config scraping `target` (host:port) every second as job `demo`, with extra YAML
/// appended (e.g. a `remote_write` section).
pub fn scrape_config(target: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['{target}']\n{extra}"
    )
}
