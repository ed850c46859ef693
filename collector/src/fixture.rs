//! The recorded-fixture source: opens a fixture folder (FIXTURES.md) and reads it whole into
//! memory with the readers of `cellwarden-models`, and writes one back.
//!
//! Fixtures are megabytes, not gigabytes: metrics are grouped by family on disk, so a time-ordered
//! replay needs every family first. Reading whole is the design, not a shortcut.

use cellwarden_models::fixture::{self, Fixture, FixtureError, METRICS_FILE, TOPOLOGY_FILE, TRACES_FILE, TRUTH_FILE};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// The path of `name` or `name.gz` in `dir`, whichever exists (plain first).
pub fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))].into_iter().find(|p| p.is_file())
}

/// Whether `dir` looks like a fixture folder (it has `metrics.om` or `metrics.om.gz`).
pub fn is_fixture_dir(dir: &Path) -> bool {
    find_file(dir, METRICS_FILE).is_some()
}

fn open(path: &Path) -> Result<BufReader<File>, FixtureError> {
    File::open(path)
        .map(|f| BufReader::with_capacity(256 * 1024, f))
        .map_err(|source| FixtureError::Io {
            file: path.display().to_string(),
            source,
        })
}

/// Reads the fixture in `dir`. `metrics.om[.gz]` is required; the other files are optional.
pub fn load_dir(dir: &Path) -> Result<Fixture, FixtureError> {
    let metrics_path = find_file(dir, METRICS_FILE).ok_or_else(|| FixtureError::Missing {
        dir: dir.display().to_string(),
        file: METRICS_FILE.into(),
    })?;
    let name = |p: &Path| p.display().to_string();
    let metrics = fixture::read_metrics(&name(&metrics_path), open(&metrics_path)?)?;
    let spans = match find_file(dir, TRACES_FILE) {
        Some(p) => fixture::read_traces(&name(&p), open(&p)?)?,
        None => Vec::new(),
    };
    let topology = match find_file(dir, TOPOLOGY_FILE) {
        Some(p) => Some(fixture::read_topology(&name(&p), open(&p)?)?),
        None => None,
    };
    let truth = match find_file(dir, TRUTH_FILE) {
        Some(p) => Some(fixture::read_truth(&name(&p), open(&p)?)?),
        None => None,
    };
    Ok(Fixture {
        metrics,
        spans,
        topology,
        truth,
    })
}

/// Writes `fx` into `dir` (created if needed); metrics and traces gzip-compressed when `gzip`.
pub fn write_dir(dir: &Path, fx: &Fixture, gzip: bool) -> Result<(), FixtureError> {
    std::fs::create_dir_all(dir).map_err(|source| FixtureError::Io {
        file: dir.display().to_string(),
        source,
    })?;
    let create = |file: &str| -> Result<(String, std::io::BufWriter<File>), FixtureError> {
        let path = dir.join(file);
        let f = File::create(&path).map_err(|source| FixtureError::Io {
            file: path.display().to_string(),
            source,
        })?;
        Ok((path.display().to_string(), std::io::BufWriter::new(f)))
    };
    let gz = if gzip { ".gz" } else { "" };
    let (n, w) = create(&format!("{METRICS_FILE}{gz}"))?;
    fixture::write_metrics(&n, w, &fx.metrics.families)?;
    if !fx.spans.is_empty() {
        let (n, w) = create(&format!("{TRACES_FILE}{gz}"))?;
        fixture::write_traces(&n, w, &fx.spans)?;
    }
    if let Some(t) = &fx.topology {
        let (n, w) = create(TOPOLOGY_FILE)?;
        fixture::write_topology(&n, w, t)?;
    }
    if let Some(t) = &fx.truth {
        let (n, w) = create(TRUTH_FILE)?;
        fixture::write_truth(&n, w, t)?;
    }
    Ok(())
}
