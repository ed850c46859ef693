//! Prometheus remote_write 1.0 (`POST /api/v1/write`): a snappy block-compressed protobuf
//! `WriteRequest`. The messages are hand-written prost structs ([`proto`]), so no protoc is needed.
//!
//! Labels become a [`SeriesKey`] (`__name__` is the metric); samples keep their millisecond
//! timestamps. Staleness markers are skipped, native histograms are counted and skipped (not
//! modelled), and the request's metadata is noted on the [`crate::ingest::Ingest`]. A request
//! admitted by the limiter is answered 204; one refused is answered 429 and stores nothing.

use super::request::{self, Refusal};
use super::ReceiverState;
use crate::ingest::BorrowedBatch;
use crate::ingest::Source;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cellwarden_models::{MetricType, Sample, Timestamp};
use prost::Message;
use std::borrow::Cow;

/// The remote_write 1.0 messages (prometheus/prompb `types.proto` and `remote.proto`), only the
/// fields cellwarden reads; prost skips the others.
pub mod proto {
    /// `prometheus.WriteRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    /// `prometheus.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        /// Native histograms, kept as raw bytes only to count them.
        #[prost(bytes = "vec", repeated, tag = "4")]
        pub histograms: Vec<Vec<u8>>,
    }

    /// `prometheus.Label`. The strings are read as bytes: decoded from a `Bytes` buffer they are
    /// slices of it, not copies (checked as UTF-8 when used).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(bytes = "bytes", tag = "1")]
        pub name: prost::bytes::Bytes,
        #[prost(bytes = "bytes", tag = "2")]
        pub value: prost::bytes::Bytes,
    }

    impl Label {
        /// A label from strings (for senders and tests).
        pub fn new(name: &str, value: &str) -> Label {
            Label {
                name: prost::bytes::Bytes::copy_from_slice(name.as_bytes()),
                value: prost::bytes::Bytes::copy_from_slice(value.as_bytes()),
            }
        }
    }

    /// `prometheus.Sample`: a value at Unix milliseconds.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    /// `prometheus.MetricMetadata`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        /// `MetricType`: 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gaugehistogram, 5 summary,
        /// 6 info, 7 stateset.
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        #[prost(string, tag = "4")]
        pub help: String,
        #[prost(string, tag = "5")]
        pub unit: String,
    }
}

/// Prometheus' staleness marker: a NaN with this exact bit pattern.
const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// What a request holds, borrowed from the decoded [`proto::WriteRequest`].
#[derive(Debug, Clone, Default)]
pub struct WriteBatch<'a> {
    /// The series and their samples (labels sorted by name).
    pub samples: BorrowedBatch<'a>,
    /// (family name, type, help) of each metadata entry.
    pub metadata: Vec<(&'a str, MetricType, &'a str)>,
    /// Items skipped, by reason (`stale_marker`, `native_histogram`, `no_metric_name`).
    pub skipped: Vec<(&'static str, u64)>,
}

/// Why a body is not a remote_write 1.0 request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not snappy block format.
    #[error("the body is not snappy block-compressed data: {0}")]
    Snappy(String),
    /// Decompressed, it would pass `max_decoded_bytes`.
    #[error("the decompressed body would be {len} bytes, more than max_decoded_bytes ({max})")]
    TooLarge { len: usize, max: usize },
    /// Not a `WriteRequest` protobuf (truncated, or another message).
    #[error("the body is not a valid remote_write WriteRequest: {0}")]
    Protobuf(String),
    /// A label name or value is not UTF-8.
    #[error("time series {series}: a label {what} is not UTF-8")]
    NotUtf8 { series: usize, what: &'static str },
}

fn metric_type(v: i32) -> MetricType {
    match v {
        1 => MetricType::Counter,
        2 => MetricType::Gauge,
        3 => MetricType::Histogram,
        4 => MetricType::GaugeHistogram,
        5 => MetricType::Summary,
        6 => MetricType::Info,
        7 => MetricType::StateSet,
        _ => MetricType::Unknown,
    }
}

/// Undoes the snappy block compression and decodes the `WriteRequest` (labels stay slices of the
/// decompressed buffer).
pub fn decode(body: &[u8], max_decoded_bytes: usize) -> Result<proto::WriteRequest, DecodeError> {
    let len = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if len > max_decoded_bytes {
        return Err(DecodeError::TooLarge {
            len,
            max: max_decoded_bytes,
        });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Snappy(e.to_string()))?;
    proto::WriteRequest::decode(prost::bytes::Bytes::from(raw)).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

fn utf8<'a>(b: &'a [u8], series: usize, what: &'static str) -> Result<&'a str, DecodeError> {
    std::str::from_utf8(b).map_err(|_| DecodeError::NotUtf8 { series, what })
}

/// The samples and metadata of a decoded request, borrowed from it. Staleness markers, native
/// histograms and series without `__name__` are skipped and counted.
pub fn batch(req: &proto::WriteRequest) -> Result<WriteBatch<'_>, DecodeError> {
    let mut out = WriteBatch {
        samples: BorrowedBatch::with_capacity(req.timeseries.len()),
        ..WriteBatch::default()
    };
    let (mut stale, mut histograms, mut nameless) = (0u64, 0u64, 0u64);
    let mut labels = Vec::new(); // reused: one allocation per request, not per series
    for (i, ts) in req.timeseries.iter().enumerate() {
        histograms += ts.histograms.len() as u64;
        let mut metric = "";
        for l in &ts.labels {
            if &l.name[..] == b"__name__" {
                metric = utf8(&l.value, i, "value")?;
            }
        }
        if metric.is_empty() {
            nameless += ts.samples.len() as u64;
            continue;
        }
        let live = ts.samples.iter().filter(|s| s.value.to_bits() != STALE_NAN_BITS);
        let n_live = live.clone().count();
        stale += (ts.samples.len() - n_live) as u64;
        if n_live == 0 {
            continue;
        }
        for l in ts.labels.iter().filter(|l| &l.name[..] != b"__name__") {
            labels.push((utf8(&l.name, i, "name")?, Cow::Borrowed(utf8(&l.value, i, "value")?)));
        }
        out.samples.push(
            metric,
            labels.drain(..),
            live.map(|s| Sample {
                t: Timestamp(s.timestamp),
                value: s.value,
            }),
        );
    }
    out.metadata = req
        .metadata
        .iter()
        .filter(|m| !m.metric_family_name.is_empty())
        .map(|m| (m.metric_family_name.as_str(), metric_type(m.r#type), m.help.as_str()))
        .collect();
    out.skipped = [
        ("stale_marker", stale),
        ("native_histogram", histograms),
        ("no_metric_name", nameless),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .collect();
    Ok(out)
}

/// Encodes a `WriteRequest` as a sender does (protobuf, then snappy block format); for tests and
/// the benchmark.
pub fn encode(req: &proto::WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("snappy compresses any input below 4 GiB")
}

async fn receive(st: &ReceiverState, headers: &HeaderMap, body: Body) -> Result<Response, Refusal> {
    match request::media_type(headers).as_deref() {
        Some("application/x-protobuf") => {}
        Some(other) => {
            return Err(Refusal::UnsupportedMediaType(format!(
                "remote_write needs Content-Type application/x-protobuf, got {other:?}"
            )))
        }
        None => {
            return Err(Refusal::UnsupportedMediaType(
                "remote_write needs Content-Type application/x-protobuf, got none".into(),
            ))
        }
    }
    if let Some(proto) = request::media_type_param(headers, "proto") {
        if proto != "prometheus.WriteRequest" {
            return Err(Refusal::UnsupportedMediaType(format!(
                "only remote_write 1.0 (proto=prometheus.WriteRequest) is supported, got proto={proto}"
            )));
        }
    }
    match request::content_encoding(headers)?.as_deref() {
        Some("snappy") => {}
        other => {
            return Err(Refusal::UnsupportedMediaType(format!(
                "remote_write bodies must be sent with Content-Encoding: snappy, got {}",
                other.unwrap_or("none")
            )))
        }
    }
    let body = request::read_body(headers, body, st.max_body_bytes).await?;
    let req = decode(&body, st.max_decoded_bytes).map_err(|e| match e {
        DecodeError::TooLarge { .. } => Refusal::TooLarge(e.to_string()),
        _ => Refusal::Malformed(e.to_string()),
    })?;
    let decoded = batch(&req).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let per_sec = st.ingest.config().max_ingest_samples_per_sec;
    request::check_batch_size(decoded.samples.sample_count(), per_sec, "samples", "max_ingest_samples_per_sec")?;
    st.ingest
        .push_borrowed(Source::RemoteWrite, &decoded.samples, st.now())
        .map_err(|t| Refusal::Throttled(t.retry_after_secs))?;
    for (family, kind, help) in &decoded.metadata {
        st.ingest.note_metadata(family, *kind, help);
    }
    for (reason, n) in decoded.skipped {
        st.ingest.reject(Source::RemoteWrite, reason, n);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/write`.
pub(crate) async fn handle(State(st): State<ReceiverState>, headers: HeaderMap, body: Body) -> Response {
    match receive(&st, &headers, body).await {
        Ok(resp) => resp,
        Err(refusal) => st.refuse(Source::RemoteWrite, refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, value: &str) -> proto::Label {
        proto::Label::new(name, value)
    }

    #[test]
    fn decodes_series_samples_metadata_and_skips_stale_markers() {
        let req = proto::WriteRequest {
            timeseries: vec![
                proto::TimeSeries {
                    labels: vec![label("__name__", "up"), label("zone", "b"), label("job", "ledger")],
                    samples: vec![
                        proto::Sample {
                            value: 1.0,
                            timestamp: 1000,
                        },
                        proto::Sample {
                            value: f64::from_bits(STALE_NAN_BITS),
                            timestamp: 2000,
                        },
                    ],
                    histograms: vec![],
                },
                proto::TimeSeries {
                    labels: vec![label("job", "nameless")],
                    samples: vec![proto::Sample {
                        value: 3.0,
                        timestamp: 1000,
                    }],
                    histograms: vec![],
                },
            ],
            metadata: vec![proto::MetricMetadata {
                r#type: 2,
                metric_family_name: "up".into(),
                help: "target up".into(),
                unit: String::new(),
            }],
        };
        let req = decode(&encode(&req), 1 << 20).unwrap();
        let d = batch(&req).unwrap();
        let series: Vec<_> = d.samples.iter().collect();
        assert_eq!(series.len(), 1);
        let (metric, labels, samples) = series[0];
        assert_eq!(metric, "up");
        assert_eq!(
            labels,
            [("job", Cow::Borrowed("ledger")), ("zone", Cow::Borrowed("b"))],
            "sorted by name"
        );
        assert_eq!(
            samples,
            [Sample {
                t: Timestamp(1000),
                value: 1.0
            }]
        );
        assert_eq!(d.metadata, [("up", MetricType::Gauge, "target up")]);
        assert_eq!(d.skipped, [("stale_marker", 1), ("no_metric_name", 1)]);
    }

    #[test]
    fn truncated_oversized_and_non_utf8_bodies_are_named() {
        let req = proto::WriteRequest {
            timeseries: vec![proto::TimeSeries {
                labels: vec![label("__name__", "up")],
                samples: vec![proto::Sample { value: 1.0, timestamp: 1 }],
                histograms: vec![],
            }],
            metadata: vec![],
        };
        let raw = req.encode_to_vec();
        let truncated = snap::raw::Encoder::new().compress_vec(&raw[..raw.len() - 3]).unwrap();
        assert!(matches!(decode(&truncated, 1 << 20), Err(DecodeError::Protobuf(_))));
        assert!(matches!(decode(b"\xff\xff\xff\xff\xff", 1 << 20), Err(DecodeError::Snappy(_))));
        assert!(matches!(decode(&encode(&req), 4), Err(DecodeError::TooLarge { .. })));
        let mut bad = req.clone();
        bad.timeseries[0].labels.push(proto::Label {
            name: prost::bytes::Bytes::from_static(b"pod"),
            value: prost::bytes::Bytes::from_static(b"\xc3\x28"),
        });
        let bad = decode(&encode(&bad), 1 << 20).unwrap();
        assert_eq!(batch(&bad).unwrap_err(), DecodeError::NotUtf8 { series: 0, what: "value" });
    }
}
