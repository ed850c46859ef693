//! The profiles against the real exporters Debian packages (the test script installs them):
//! `prometheus-node-exporter` 1.5 and `prometheus-postgres-exporter` 0.11 (with no database
//! behind it, so `pg_up` is 0), each started on a free 127.0.0.1 port and read once with
//! `cellwarden signals --from URL` as a user would.
//!
//! Checked: the series the profile names are read by that profile's rules; nothing else the
//! exporter serves (the rest of /proc/meminfo, the Go runtime's `go_memstats_*`, the exporter's
//! own bookkeeping) is inferred into a signal — a real node_exporter serves 60-odd
//! `node_memory_*_bytes` gauges per node that the memory inference took for memory before.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `bin` (overridable by the environment variable `var`) and waits for its `/metrics`.
fn exporter(var: &str, bin: &str, args: &[String], env: &[(&str, &str)]) -> (Kill, String) {
    let bin = std::env::var(var).unwrap_or_else(|_| bin.to_string());
    let child = Command::new(&bin)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin} ({e}); run scripts/test.sh or set {var}"));
    let port = args
        .iter()
        .find_map(|a| a.strip_prefix("--web.listen-address=127.0.0.1:"))
        .unwrap()
        .to_string();
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err() {
        assert!(t.elapsed() < Duration::from_secs(20), "{bin} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Kill(child), format!("http://127.0.0.1:{port}/metrics"))
}

fn signals_from(url: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cellwarden"))
        .args(["signals", "--from", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The number of signal series a report's summary line counts.
fn signal_series(report: &str) -> usize {
    report
        .lines()
        .find_map(|l| l.split_once(" raw series → ")?.1.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no summary line: {report}"))
}

#[test]
fn a_real_node_exporter_is_read_by_its_profile_and_nothing_else_is_inferred() {
    let port = free_port();
    let (_ne, url) = exporter(
        "NODE_EXPORTER_BIN",
        "prometheus-node-exporter",
        &[format!("--web.listen-address=127.0.0.1:{port}")],
        &[],
    );
    let report = signals_from(&url);
    for (metric, rule) in [
        ("node_memory_Active_bytes", "node-memory-active (profile node-exporter)"),
        ("node_memory_MemTotal_bytes", "node-memory-total (profile node-exporter)"),
    ] {
        let line = report
            .lines()
            .find(|l| l.trim_start().starts_with(metric))
            .unwrap_or_else(|| panic!("{metric}: {report}"));
        assert!(line.contains(&format!("by {rule}")), "{line}");
    }
    assert!(!report.contains("(inferred)"), "{report}");
    // The node's memory and its total, and the exporter's own resident memory: nothing more.
    assert!(signal_series(&report) <= 3, "{report}");
    assert!(
        report.contains("node-exporter-other (profile node-exporter): left out on purpose"),
        "{report}"
    );
}

#[test]
fn a_real_postgres_exporter_is_read_by_its_profile_and_its_bookkeeping_is_not() {
    let port = free_port();
    let (_pe, url) = exporter(
        "POSTGRES_EXPORTER_BIN",
        "prometheus-postgres-exporter",
        &[format!("--web.listen-address=127.0.0.1:{port}")],
        // No database behind it: pg_up is 0, which is what the profile reads as an error.
        &[("DATA_SOURCE_NAME", "postgresql://cellwarden@127.0.0.1:1/none?sslmode=disable")],
    );
    let report = signals_from(&url);
    let up = report
        .lines()
        .find(|l| l.trim_start().starts_with("pg_up"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        up.contains("→ error_ratio (pg_up)  by postgres-up (profile postgres-exporter)"),
        "{up}"
    );
    assert!(!report.contains("(inferred)"), "{report}");
    assert!(signal_series(&report) <= 2, "{report}");
}
