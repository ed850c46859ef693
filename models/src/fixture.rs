//! Fixture format v1 (FIXTURES.md): readers and writers over `BufRead`/`Write`.
//!
//! Opening files is the caller's job (the collector's fixture source does it); these functions take
//! the file's name only to put it in error messages and to decide whether it is gzip-compressed.

use crate::openmetrics::{self, Exposition, ParseOptions};
use crate::series::Family;
use crate::span::{self, Span};
use crate::topology::Topology;
use crate::truth::Truth;
use std::io::{BufRead, BufReader, Read, Write};

/// The files of a fixture folder, by their uncompressed names.
pub const METRICS_FILE: &str = "metrics.om";
pub const TRACES_FILE: &str = "traces.jsonl";
pub const TOPOLOGY_FILE: &str = "topology.yaml";
pub const TRUTH_FILE: &str = "truth.yaml";

/// A fixture file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The content is malformed at a line.
    #[error("{file}:{line}: {reason}")]
    Malformed { file: String, line: usize, reason: String },
    /// The bytes could not be read or written (including corrupt gzip streams).
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A required file is missing from the folder.
    #[error("{dir}: no {file} (or {file}.gz): not a fixture folder?")]
    Missing { dir: String, file: String },
}

impl FixtureError {
    /// A bounded label for metrics about failures.
    pub fn metric_label(&self) -> &'static str {
        match self {
            FixtureError::Malformed { .. } => "malformed",
            FixtureError::Io { .. } => "io",
            FixtureError::Missing { .. } => "missing",
        }
    }
}

/// A whole fixture in memory.
#[derive(Debug, Clone, Default)]
pub struct Fixture {
    pub metrics: Exposition,
    pub spans: Vec<Span>,
    pub topology: Option<Topology>,
    pub truth: Option<Truth>,
}

/// Wraps `reader` in a gzip decoder when `file` ends with `.gz`.
pub fn decompress_if_gz<'a, R: BufRead + 'a>(file: &str, reader: R) -> Box<dyn BufRead + 'a> {
    if file.ends_with(".gz") {
        Box::new(BufReader::with_capacity(64 * 1024, flate2::bufread::MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    }
}

/// Reads `metrics.om[.gz]`: OpenMetrics with a timestamp on every sample.
pub fn read_metrics<R: BufRead>(file: &str, reader: R) -> Result<Exposition, FixtureError> {
    openmetrics::parse(decompress_if_gz(file, reader), ParseOptions { require_timestamps: true }).map_err(|e| FixtureError::Malformed {
        file: file.to_string(),
        line: e.line,
        reason: e.reason,
    })
}

/// Reads `traces.jsonl[.gz]`.
pub fn read_traces<R: BufRead>(file: &str, reader: R) -> Result<Vec<Span>, FixtureError> {
    span::read_jsonl(decompress_if_gz(file, reader)).map_err(|(line, reason)| FixtureError::Malformed {
        file: file.to_string(),
        line,
        reason,
    })
}

fn read_yaml<T: serde::de::DeserializeOwned, R: BufRead>(file: &str, reader: R) -> Result<T, FixtureError> {
    let mut text = String::new();
    decompress_if_gz(file, reader)
        .read_to_string(&mut text)
        .map_err(|source| FixtureError::Io {
            file: file.to_string(),
            source,
        })?;
    serde_yaml_ng::from_str(&text).map_err(|e| FixtureError::Malformed {
        file: file.to_string(),
        line: e.location().map(|l| l.line()).unwrap_or(0),
        reason: e.to_string(),
    })
}

/// Reads `topology.yaml[.gz]`; unknown keys are ignored.
pub fn read_topology<R: BufRead>(file: &str, reader: R) -> Result<Topology, FixtureError> {
    read_yaml(file, reader)
}

/// Reads `truth.yaml[.gz]`; unknown keys are ignored, `faults` is required.
pub fn read_truth<R: BufRead>(file: &str, reader: R) -> Result<Truth, FixtureError> {
    read_yaml(file, reader)
}

/// Wraps `writer` in a gzip encoder when `file` ends with `.gz`; call `finish` on the result.
pub fn compress_if_gz<'a, W: Write + 'a>(file: &str, writer: W) -> Box<dyn FinishWrite + 'a> {
    if file.ends_with(".gz") {
        Box::new(flate2::write::GzEncoder::new(writer, flate2::Compression::best()))
    } else {
        Box::new(Plain(writer))
    }
}

/// A writer that must be finished (gzip writes its trailer then).
pub trait FinishWrite: Write {
    fn finish_write(self: Box<Self>) -> std::io::Result<()>;
}

struct Plain<W: Write>(W);
impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
impl<W: Write> FinishWrite for Plain<W> {
    fn finish_write(mut self: Box<Self>) -> std::io::Result<()> {
        self.0.flush()
    }
}
impl<W: Write> FinishWrite for flate2::write::GzEncoder<W> {
    fn finish_write(self: Box<Self>) -> std::io::Result<()> {
        (*self).finish()?.flush()
    }
}

fn io_err(file: &str) -> impl Fn(std::io::Error) -> FixtureError + '_ {
    move |source| FixtureError::Io {
        file: file.to_string(),
        source,
    }
}

/// Writes `metrics.om[.gz]`.
pub fn write_metrics<W: Write>(file: &str, writer: W, families: &[Family]) -> Result<(), FixtureError> {
    let mut w = compress_if_gz(file, writer);
    openmetrics::write(&mut w, families).map_err(io_err(file))?;
    w.finish_write().map_err(io_err(file))
}

/// Writes `traces.jsonl[.gz]`, at most 500 spans a line.
pub fn write_traces<W: Write>(file: &str, writer: W, spans: &[Span]) -> Result<(), FixtureError> {
    let mut w = compress_if_gz(file, writer);
    span::write_jsonl(&mut w, spans, 500).map_err(io_err(file))?;
    w.finish_write().map_err(io_err(file))
}

fn write_yaml<T: serde::Serialize, W: Write>(file: &str, writer: W, value: &T) -> Result<(), FixtureError> {
    let text = serde_yaml_ng::to_string(value).map_err(|e| FixtureError::Malformed {
        file: file.to_string(),
        line: 0,
        reason: e.to_string(),
    })?;
    let mut w = compress_if_gz(file, writer);
    w.write_all(text.as_bytes()).map_err(io_err(file))?;
    w.finish_write().map_err(io_err(file))
}

pub fn write_topology<W: Write>(file: &str, writer: W, topology: &Topology) -> Result<(), FixtureError> {
    write_yaml(file, writer, topology)
}

pub fn write_truth<W: Write>(file: &str, writer: W, truth: &Truth) -> Result<(), FixtureError> {
    write_yaml(file, writer, truth)
}
