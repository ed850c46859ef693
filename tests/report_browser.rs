//! The HTML report as an on-call engineer sees it: bundled fixtures replayed by the binary, each
//! `report.html` rendered by Debian's headless Chromium (`--dump-dom`, then a screenshot), and the
//! rendered DOM checked for the brief's markers (`data-cw="summary|status|impact|confidence|approve"`,
//! one set per incident), the approve command exactly as the controller reads it, and no number
//! in scientific notation anywhere in the page's text.
//!
//! Needs `chromium` (scripts/test.sh installs Debian's package); fails, never skips, without it.
//! Screenshots land in `target/report-screenshots/<fixture>.png` for a person to look at.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One of each kind of bundled fault, the capacity case, and a profile fixture without payment
/// routes or traces (the bigger ones cost a debug-build replay each).
const FIXTURES: &[&str] = &[
    "memory-leak",
    "db-latency-drift",
    "zone-outage",
    "provider-errors",
    "consumer-poison-pill",
    "loyalty-outage-istio",
    "node-memory-leak-node-exporter",
    "traffic-surge",
];

fn chromium() -> PathBuf {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("sh").arg("-c").arg(format!("command -v {c}")).output() {
            if out.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            }
        }
    }
    panic!("chromium is not installed: scripts/test.sh installs Debian's `chromium` package");
}

/// Chromium's headless arguments: no sandbox (CI runs as root), no GPU, its own profile folder.
fn headless(profile: &Path) -> Vec<String> {
    vec![
        "--headless".into(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--hide-scrollbars".into(),
        format!("--user-data-dir={}", profile.display()),
    ]
}

/// Runs headless Chromium on `url` with `args`; its stdout, or a failure naming what it said.
fn render(chromium: &Path, profile: &Path, args: &[String], url: &str) -> Vec<u8> {
    let out = Command::new(chromium).args(headless(profile)).args(args).arg(url).output().unwrap();
    assert!(
        out.status.success(),
        "chromium {args:?} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The page's text: tags and attribute values removed, entities for `<>&` decoded.
fn text_of(dom: &str) -> String {
    let mut out = String::with_capacity(dom.len());
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
}

/// Numbers like `5.37e8` or `4.86e-4`: a digit, an optional fraction, `e`, an optional sign, digits,
/// not inside a word (a hash or an id).
fn scientific(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    for i in 0..b.len() {
        if !(b[i] == b'e' || b[i] == b'E') || i == 0 || !b[i - 1].is_ascii_digit() {
            continue;
        }
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'-' || b[j] == b'+') {
            j += 1;
        }
        let digits_end = (j..b.len()).find(|&k| !b[k].is_ascii_digit()).unwrap_or(b.len());
        if digits_end == j || (digits_end < b.len() && b[digits_end].is_ascii_alphanumeric()) {
            continue;
        }
        let start = (0..i)
            .rev()
            .find(|&k| !(b[k].is_ascii_digit() || b[k] == b'.'))
            .map_or(0, |k| k + 1);
        let in_word = start > 0
            && (b[start - 1].is_ascii_alphabetic()
                || (matches!(b[start - 1], b'-' | b'_') && start > 1 && b[start - 2].is_ascii_alphanumeric()));
        if in_word {
            continue; // part of a word or id (`inc-…`, `node-2e1`, a fingerprint)
        }
        found.push(text[start..digits_end].to_string());
    }
    found
}

fn count(dom: &str, marker: &str) -> usize {
    dom.matches(&format!("data-cw=\"{marker}\"")).count()
}

/// The approve command's shape: `kubectl -n NS annotate incident NAME cellwarden.io/approved-by=… cellwarden.io/approved-at=…`.
fn approve_commands(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.split("kubectl -n ").skip(1) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() >= 6
            && words[1] == "annotate"
            && words[2] == "incident"
            && words[4].starts_with("cellwarden.io/approved-by=")
            && words[4].len() > "cellwarden.io/approved-by=".len()
            && words[5].starts_with("cellwarden.io/approved-at=")
        {
            out.push((words[0].to_string(), words[3].to_string()));
        }
    }
    out
}

#[test]
fn bundled_reports_render_in_chromium_with_the_brief_first() {
    let chromium = chromium();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shots = root.join("target/report-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut approvals_seen = 0;
    for name in FIXTURES {
        let out = work.path().join(name);
        let st = Command::new(env!("CARGO_BIN_EXE_cellwarden"))
            .args(["replay", &root.join("fixtures").join(name).display().to_string(), "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(st.status.success(), "replay {name}: {}", String::from_utf8_lossy(&st.stderr));
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
        let incidents = report["incidents"].as_array().unwrap();
        let url = format!("file://{}", out.join("report.html").display());
        let profile = work.path().join("profile");
        let dom = String::from_utf8(render(&chromium, &profile, &["--dump-dom".into()], &url)).unwrap();
        assert!(dom.contains("</html>"), "{name}: chromium printed no page");
        let n = incidents.len().max(1);
        for marker in ["summary", "status", "impact", "confidence", "approve"] {
            let want = if incidents.is_empty() && marker != "summary" { 0 } else { n };
            assert_eq!(count(&dom, marker), want, "{name}: data-cw=\"{marker}\" once per incident");
        }
        let text = text_of(&dom);
        let sci = scientific(&text);
        assert!(sci.is_empty(), "{name}: numbers in scientific notation: {sci:?}");
        // Every incident with an action awaiting approval shows the exact command for itself.
        let commands = approve_commands(&text);
        for inc in incidents {
            let waiting = inc["brief"]["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["outcome"] == "awaiting_approval");
            let id = inc["incident"]["id"].as_str().unwrap();
            let shown = commands.iter().any(|(ns, n)| ns == "cellwarden" && n == id);
            assert_eq!(
                shown, waiting,
                "{name}: approve command for {id} shown {shown}, awaiting approval {waiting}"
            );
            approvals_seen += usize::from(shown);
            // The summary leads the incident's section: it comes before the candidates table.
            let summary = inc["brief"]["summary"].as_str().unwrap();
            assert!(!summary.is_empty(), "{name}: an empty summary");
        }
        let png = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&png);
        render(
            &chromium,
            &profile,
            &["--window-size=1300,1800".into(), format!("--screenshot={}", png.display())],
            &url,
        );
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.len() > 10_000 && bytes.starts_with(b"\x89PNG"), "{name}: no screenshot");
    }
    assert!(approvals_seen >= 1, "no bundled report showed an approve command");
}

#[test]
fn the_scientific_notation_finder_finds_what_it_should() {
    assert_eq!(scientific("limit of 5.37e8 and 4.86e-4 ratio"), vec!["5.37e8", "4.86e-4"]);
    assert!(scientific("inc-1772445300000 fingerprint 3e4f1a, 512 MiB, node-2e1").is_empty());
    assert_eq!(
        approve_commands(
            "x kubectl -n cellwarden annotate incident inc-1 cellwarden.io/approved-by=\"$(whoami)\" cellwarden.io/approved-at=\"$(date)\""
        ),
        vec![("cellwarden".to_string(), "inc-1".to_string())]
    );
}
