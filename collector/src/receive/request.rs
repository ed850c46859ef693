//! What every receiver does with a request before decoding it: read the body within
//! `max_body_bytes`, check the content type, undo a gzip content encoding within
//! `max_decoded_bytes`; and the [`Refusal`] a bad request becomes.

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::io::Read;

/// Why a request was refused; each becomes a 4xx with a message that names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 401: no bearer token, or not the configured one.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// 415: a content type or encoding this receiver does not speak.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// 413: the body, or the batch in it, is larger than allowed.
    #[error("too large: {0}")]
    TooLarge(String),
    /// 400: the body could not be decoded; the message says where and why.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// 400: an Alertmanager payload of another version.
    #[error("unsupported payload version: {0}")]
    UnsupportedVersion(String),
    /// 429: the ingest limiter refused the batch; retry after this many seconds.
    #[error("ingest rate limit reached; retry after {0} s")]
    Throttled(u64),
    /// 408: the body did not arrive within the listener's `body_read_timeout_secs`.
    #[error("request timeout: {0}")]
    TimedOut(String),
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Refusal::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Malformed(_) | Refusal::UnsupportedVersion(_) => StatusCode::BAD_REQUEST,
            Refusal::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// A bounded label for the `requests_rejected` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Refusal::Unauthorized(_) => "unauthorized",
            Refusal::UnsupportedMediaType(_) => "unsupported_media_type",
            Refusal::TooLarge(_) => "too_large",
            Refusal::Malformed(_) => "malformed",
            Refusal::UnsupportedVersion(_) => "unsupported_version",
            Refusal::Throttled(_) => "throttled",
            Refusal::TimedOut(_) => "body_timeout",
        }
    }

    /// The headers that go with the status: `Retry-After` on 429, `WWW-Authenticate` on 401.
    pub fn extra_headers(&self) -> Vec<(header::HeaderName, HeaderValue)> {
        match self {
            Refusal::Throttled(secs) => vec![(header::RETRY_AFTER, HeaderValue::from(*secs))],
            Refusal::Unauthorized(_) => vec![(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
            _ => Vec::new(),
        }
    }
}

impl IntoResponse for Refusal {
    /// A plain-text body with the message.
    fn into_response(self) -> Response {
        let mut resp = (self.status(), format!("{self}\n")).into_response();
        resp.headers_mut().extend(self.extra_headers());
        resp
    }
}

/// The media type of `Content-Type`, lower case, without parameters (`None` when absent).
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

/// The value of parameter `name` in `Content-Type` (e.g. `proto` in
/// `application/x-protobuf;proto=prometheus.WriteRequest`).
pub fn media_type_param(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    v.split(';').skip(1).find_map(|p| {
        let (k, val) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| val.trim().trim_matches('"').to_string())
    })
}

/// The `Content-Encoding`, lower case (`None` when absent or `identity`).
pub fn content_encoding(headers: &HeaderMap) -> Result<Option<String>, Refusal> {
    match headers.get(header::CONTENT_ENCODING) {
        None => Ok(None),
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| Refusal::UnsupportedMediaType("Content-Encoding is not ASCII".into()))?
                .trim()
                .to_ascii_lowercase();
            Ok((!v.is_empty() && v != "identity").then_some(v))
        }
    }
}

/// Reads the whole body, refusing it (413) as soon as it passes `max_body_bytes`.
pub async fn read_body(headers: &HeaderMap, mut body: Body, max_body_bytes: usize) -> Result<Bytes, Refusal> {
    let too_large = || Refusal::TooLarge(format!("the request body is larger than max_body_bytes ({max_body_bytes} bytes)"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body_bytes as u64) {
        return Err(too_large());
    }
    let mut buf: Vec<u8> = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| match body_timeout(&e) {
            Some(t) => Refusal::TimedOut(t.to_string()),
            None => Refusal::Malformed(format!("the request body could not be read: {e}")),
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max_body_bytes {
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

/// The listener's body deadline, when that is why reading the body failed.
fn body_timeout(e: &axum::Error) -> Option<crate::listen::BodyReadTimeout> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(t) = c.downcast_ref::<crate::listen::BodyReadTimeout>() {
            return Some(*t);
        }
        cause = c.source();
    }
    None
}

/// The decoded body of a JSON-only receiver: 415 (`wrong_type` says what it expects) unless the
/// content type is `application/json`, then read under `max_body_bytes` and decompressed under
/// `max_decoded_bytes`.
pub async fn json_body(
    headers: &HeaderMap,
    body: Body,
    max_body_bytes: usize,
    max_decoded_bytes: usize,
    wrong_type: &str,
) -> Result<Bytes, Refusal> {
    match media_type(headers).as_deref() {
        Some("application/json") => {}
        other => {
            return Err(Refusal::UnsupportedMediaType(format!(
                "{wrong_type}, got {}",
                other.map_or("no Content-Type".to_string(), |t| format!("{t:?}"))
            )))
        }
    }
    let encoding = content_encoding(headers)?;
    let raw = read_body(headers, body, max_body_bytes).await?;
    decode_content(raw, encoding.as_deref(), max_decoded_bytes)
}

/// Undoes a `gzip` content encoding (none: the body as is), refusing other encodings (415) and
/// output past `max_decoded_bytes` (413).
pub fn decode_content(body: Bytes, encoding: Option<&str>, max_decoded_bytes: usize) -> Result<Bytes, Refusal> {
    match encoding {
        None => Ok(body),
        Some("gzip" | "x-gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .take(max_decoded_bytes as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| Refusal::Malformed(format!("the gzip body could not be decompressed: {e}")))?;
            if out.len() > max_decoded_bytes {
                return Err(Refusal::TooLarge(format!(
                    "the decompressed body is larger than max_decoded_bytes ({max_decoded_bytes} bytes)"
                )));
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(Refusal::UnsupportedMediaType(format!(
            "Content-Encoding {other:?} is not supported here (use gzip or none)"
        ))),
    }
}

/// 413 when one batch alone is over the per-second limit: the limiter could never admit it, so a
/// 429 would make the sender retry forever.
pub fn check_batch_size(n: usize, per_sec: u64, what: &str, setting: &str) -> Result<(), Refusal> {
    if n as u64 > per_sec {
        return Err(Refusal::TooLarge(format!(
            "one request carries {n} {what}, more than {setting} ({per_sec}); send smaller batches"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_is_undone_within_the_decoded_limit() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&[b'a'; 1000]).unwrap();
        let gz = Bytes::from(enc.finish().unwrap());
        assert_eq!(decode_content(gz.clone(), Some("gzip"), 1000).unwrap().len(), 1000);
        assert!(matches!(decode_content(gz, Some("gzip"), 999), Err(Refusal::TooLarge(_))));
        assert!(matches!(
            decode_content(Bytes::from_static(b"not gzip"), Some("gzip"), 100),
            Err(Refusal::Malformed(_))
        ));
        assert!(matches!(
            decode_content(Bytes::new(), Some("br"), 100),
            Err(Refusal::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn media_type_drops_parameters_and_case() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/X-Protobuf; proto=prometheus.WriteRequest"),
        );
        assert_eq!(media_type(&h).as_deref(), Some("application/x-protobuf"));
        assert_eq!(media_type_param(&h, "proto").as_deref(), Some("prometheus.WriteRequest"));
    }
}
