//! `cellwarden record`: capture telemetry into a fixture folder.
//!
//! `--from http(s)://prometheus:9090` reads the raw samples of every metric over `--duration`
//! (ending `--end`, default now) from a Prometheus; `--from 0.0.0.0:4318` serves the push receivers
//! (remote_write, OTLP, Zipkin) for `--duration` and keeps what arrives. The logic lives in
//! `cellwarden_collector::record`; this file parses the arguments, shows progress on stderr, writes
//! the folder and reads it back to check it.

use anyhow::{bail, Context, Result};
use cellwarden_collector::fixture::{is_fixture_dir, load_dir, write_dir};
use cellwarden_collector::pull::system_clock;
use cellwarden_collector::query::PromClient;
use cellwarden_collector::receive::ReceiverConfig;
use cellwarden_collector::record::{record_prometheus, record_receivers, RAW_CHUNK_SECS};
use cellwarden_models::Timestamp;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where `record` reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordSource {
    /// The base URL of a Prometheus.
    Prometheus(String),
    /// The address the push receivers listen on.
    Listen(SocketAddr),
}

/// Parses `--from`: an http(s) URL, or a listen address (`0.0.0.0:4318`, `:4318`).
pub fn parse_from(s: &str) -> Result<RecordSource> {
    let s = s.trim();
    if s.starts_with("http://") || s.starts_with("https://") {
        return Ok(RecordSource::Prometheus(s.to_string()));
    }
    let addr = if let Some(port) = s.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else {
        s.to_string()
    };
    addr.parse::<SocketAddr>().map(RecordSource::Listen).map_err(|_| {
        anyhow::anyhow!("--from {s:?} is neither a Prometheus URL (http://prometheus:9090) nor a listen address (0.0.0.0:4318)")
    })
}

/// Parses a duration as Prometheus writes them: `90s`, `30m`, `2h`, `1d`, `1h30m`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || anyhow::anyhow!("bad duration {s:?}: use a number and a unit, e.g. 90s, 30m, 2h, 1h30m");
    let mut total_ms: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return Err(bad()),
        };
        total_ms = n.checked_mul(unit_ms).and_then(|x| total_ms.checked_add(x)).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    if total_ms == 0 {
        bail!("bad duration {s:?}: it must be longer than zero");
    }
    Ok(Duration::from_millis(total_ms))
}

/// The arguments of `cellwarden record`.
#[derive(Debug, Clone, clap::Args)]
pub struct RecordArgs {
    /// A Prometheus URL (http://prometheus:9090) or a listen address for the receivers (0.0.0.0:4318).
    #[arg(long)]
    pub from: String,
    /// How much to record: 30m, 2h, 1h30m (from a Prometheus: the span ending at --end).
    #[arg(long)]
    pub duration: String,
    /// End of the span read from a Prometheus, RFC 3339 (default: now).
    #[arg(long)]
    pub end: Option<String>,
    /// The fixture folder to write (e.g. fixtures/my-incident).
    #[arg(long)]
    pub out: PathBuf,
    /// Gzip metrics.om and traces.jsonl.
    #[arg(long)]
    pub gzip: bool,
}

fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    // Drawn only when stderr is a terminal (indicatif hides itself otherwise).
    let pb = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Runs `cellwarden record`.
pub fn run(args: &RecordArgs) -> Result<()> {
    let from = parse_from(&args.from)?;
    let duration = parse_duration(&args.duration)?;
    if is_fixture_dir(&args.out) {
        bail!("{} already holds a fixture; remove it or choose another --out", args.out.display());
    }
    let rt = tokio::runtime::Runtime::new()?;
    let fixture = match &from {
        RecordSource::Prometheus(url) => {
            let end = match &args.end {
                Some(e) => Timestamp::parse_rfc3339(e).map_err(|e| anyhow::anyhow!("--end: {e}"))?,
                None => system_clock()(),
            };
            let start = Timestamp(end.millis() - duration.as_millis() as i64);
            let client = PromClient::new(url, Duration::from_secs(120), None)?;
            eprintln!("recording {url} from {start} to {end} into {}", args.out.display());
            let pb = progress_bar(0, "reading raw samples");
            let fx = rt
                .block_on(record_prometheus(&client, start, end, RAW_CHUNK_SECS, &mut |done, total| {
                    pb.set_length(total as u64);
                    pb.set_position(done as u64);
                }))
                .with_context(|| format!("cannot record from {url}"))?;
            pb.finish_and_clear();
            fx
        }
        RecordSource::Listen(addr) => {
            if args.end.is_some() {
                bail!("--end applies to a Prometheus source only; a listen address records from now on");
            }
            let cfg = ReceiverConfig {
                listen: *addr,
                ..ReceiverConfig::default()
            };
            eprintln!(
                "receiving on {addr} for {} s (remote_write /api/v1/write, OTLP /v1/traces, Zipkin /api/v2/spans) into {}",
                duration.as_secs(),
                args.out.display()
            );
            let pb = progress_bar(duration.as_secs(), "receiving (seconds)");
            let fx = rt
                .block_on(record_receivers(&cfg, duration, system_clock(), &mut |done, _| {
                    pb.set_position(done as u64)
                }))
                .with_context(|| format!("cannot receive on {addr}"))?;
            pb.finish_and_clear();
            fx
        }
    };
    write_dir(&args.out, &fixture, args.gzip).with_context(|| format!("cannot write the fixture into {}", args.out.display()))?;
    check_written(&args.out)?;
    let samples = fixture.metrics.sample_count();
    let series = fixture.metrics.series().count();
    let span = fixture
        .metrics
        .series()
        .flat_map(|s| s.samples.first().into_iter().chain(s.samples.last()))
        .fold(None::<(Timestamp, Timestamp)>, |acc, p| match acc {
            None => Some((p.t, p.t)),
            Some((a, b)) => Some((a.min(p.t), b.max(p.t))),
        });
    let when = span.map(|(a, b)| format!(" from {a} to {b}")).unwrap_or_default();
    eprintln!(
        "recorded {series} series, {samples} samples{when}, {} spans into {}",
        fixture.spans.len(),
        args.out.display()
    );
    if samples == 0 && fixture.spans.is_empty() {
        eprintln!("warning: nothing was recorded (wrong range, or nothing sent?)");
    }
    Ok(())
}

/// Reads the written fixture back, so a recording that replay could not read fails here.
fn check_written(dir: &Path) -> Result<()> {
    load_dir(dir)
        .map(|_| ())
        .with_context(|| format!("the fixture written into {} does not read back", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_prometheus_writes_them() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1500ms").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        for bad in ["", "30", "m", "30x", "-5m", "1.5h", "0s"] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.contains("bad duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn from_is_a_url_or_a_listen_address() {
        assert_eq!(
            parse_from("http://p:9090").unwrap(),
            RecordSource::Prometheus("http://p:9090".into())
        );
        assert_eq!(parse_from(":4318").unwrap(), RecordSource::Listen("0.0.0.0:4318".parse().unwrap()));
        assert_eq!(
            parse_from("127.0.0.1:9").unwrap(),
            RecordSource::Listen("127.0.0.1:9".parse().unwrap())
        );
        let e = parse_from("prometheus:9090").unwrap_err().to_string();
        assert!(e.contains("neither a Prometheus URL"), "{e}");
    }
}
