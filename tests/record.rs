//! `cellwarden record`, the binary: a bundled fixture loaded into a real Prometheus with `promtool`
//! is recorded back from that Prometheus exactly (record → replay round trip); bad arguments and an
//! unreachable Prometheus give clear errors.
//!
//! The round trip needs `prometheus` and `promtool` (`scripts/test.sh` installs them); without them
//! it fails and says so.

#[path = "../collector/tests/prometheus_support/mod.rs"]
mod prometheus_support;

use cellwarden_collector::fixture::{find_file, load_dir};
use cellwarden_models::fixture::{decompress_if_gz, METRICS_FILE};
use cellwarden_models::{MetricType, Sample, SeriesKey, Timestamp};
use prometheus_support::{promtool_create_blocks, Prometheus};
use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;

fn cellwarden() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cellwarden"))
}

fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// Every series of a fixture with its samples.
fn samples_of(dir: &Path) -> BTreeMap<SeriesKey, Vec<Sample>> {
    let fx = load_dir(dir).unwrap();
    fx.metrics.series().map(|s| (s.key.clone(), s.samples.clone())).collect()
}

#[test]
fn a_fixture_loaded_into_prometheus_is_recorded_back_exactly() {
    let fixture = fixture_dir("memory-leak");
    let work = tempfile::tempdir().unwrap();
    // promtool reads plain OpenMetrics ending with `# EOF` (the fixture's metrics.om.gz, unpacked).
    let packed = find_file(&fixture, METRICS_FILE).expect("the fixture has metrics");
    let om = work.path().join("metrics.om");
    let mut reader = decompress_if_gz(&packed.display().to_string(), BufReader::new(std::fs::File::open(&packed).unwrap()));
    std::io::copy(&mut reader, &mut std::fs::File::create(&om).unwrap()).unwrap();
    let data = work.path().join("tsdb");
    promtool_create_blocks(&om, &data);
    let prom = Prometheus::start("global:\n  scrape_interval: 15s\n", Some(&data));

    let original = samples_of(&fixture);
    let (first, last) = original
        .values()
        .flat_map(|s| [s[0].t, s[s.len() - 1].t])
        .fold((Timestamp(i64::MAX), Timestamp(i64::MIN)), |(a, b), t| (a.min(t), b.max(t)));
    let span_secs = (last.millis() - first.millis()) / 1000;
    let out = work.path().join("recorded");
    let run = cellwarden()
        .args([
            "record",
            "--from",
            &prom.url,
            "--duration",
            &format!("{span_secs}s"),
            "--end",
            &last.to_rfc3339(),
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "record failed: {stderr}\nprometheus log:\n{}",
        prom.log_text()
    );
    assert!(stderr.contains(&format!("recorded {} series", original.len())), "{stderr}");

    let recorded = samples_of(&out);
    assert_eq!(recorded.len(), original.len(), "every series");
    let mut compared = 0;
    for (key, want) in &original {
        let got = recorded.get(key).unwrap_or_else(|| panic!("{key} was not recorded"));
        assert_eq!(got.len(), want.len(), "{key}: sample count");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.t, w.t, "{key}: timestamp");
            assert_eq!(g.value.to_bits(), w.value.to_bits(), "{key} at {}: {} vs {}", w.t, g.value, w.value);
        }
        compared += want.len();
    }
    assert_eq!(compared, 124_800, "the fixture's sample count");

    // Counters and histograms come back typed (Prometheus keeps no metadata for imported blocks:
    // inferred from the names), and the topology from the labels.
    let fx = load_dir(&out).unwrap();
    let kind = |name: &str| fx.metrics.families.iter().find(|f| f.name == name).map(|f| f.kind);
    assert_eq!(kind("http_server_requests"), Some(MetricType::Counter));
    assert_eq!(kind("container_cpu_usage_seconds"), Some(MetricType::Counter));
    assert_eq!(kind("http_server_request_duration_seconds"), Some(MetricType::Histogram));
    let topo = fx.topology.expect("an inferred topology");
    let truth_topo = load_dir(&fixture).unwrap().topology.unwrap();
    let cells = |t: &cellwarden_models::topology::Topology| t.cells.iter().map(|c| (c.name.clone(), c.zone.clone())).collect::<Vec<_>>();
    assert_eq!(cells(&topo), cells(&truth_topo), "cells and zones");
    let ledger = topo.service("ledger").expect("ledger");
    assert_eq!(ledger.deployments.len(), 4);
    assert_eq!(ledger.deployments[1].replicas, Some(3));
    assert_eq!(
        ledger.deployments[1].memory_limit_bytes,
        truth_topo.service("ledger").unwrap().deployments[1].memory_limit_bytes
    );
    assert!(fx.truth.expect("truth.yaml").faults.is_empty());
}

#[test]
fn record_explains_bad_arguments_and_an_unreachable_prometheus() {
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("x");
    let run = |args: &[&str]| {
        let o = cellwarden().arg("record").args(args).arg("--out").arg(&dest).output().unwrap();
        assert!(!o.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = run(&["--from", "http://127.0.0.1:1", "--duration", "30"]);
    assert!(e.contains("bad duration \"30\""), "{e}");
    let e = run(&["--from", "prometheus:9090", "--duration", "30m"]);
    assert!(e.contains("neither a Prometheus URL"), "{e}");
    let e = run(&["--from", "http://127.0.0.1:1", "--duration", "30m"]);
    assert!(e.contains("cannot reach Prometheus at http://127.0.0.1:1"), "{e}");
    let e = run(&["--from", "http://127.0.0.1:1", "--duration", "30m", "--end", "yesterday"]);
    assert!(e.contains("--end") && e.contains("RFC 3339"), "{e}");
    assert!(!dest.exists(), "nothing written on failure");
}
