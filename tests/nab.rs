//! The NAB harness and scorer end to end: on a small synthetic corpus, and (ignored unless
//! ../shared exists) on the NAB corpus against the published scores of two reference detectors.

use cellwarden::nab_cmd::{
    self, find_result, load_corpus, read_scores, run_nab_with, score_results, EnsembleDetector, NabDetector, RobustZBaseline,
};
use cellwarden_detector::nab::{NabScores, NabTime};
use std::path::{Path, PathBuf};

fn shared_nab() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/nab")
}

/// Standard / reward_low_FP_rate / reward_low_FN_rate.
fn figures(s: &NabScores) -> [f64; 3] {
    s.profiles().map(|r| r.score)
}

fn assert_reproduces(detector: &str, published: [f64; 3]) {
    let corpus = shared_nab();
    let scores = score_results(&corpus, &corpus.join("results").join(detector)).unwrap();
    let mut text = Vec::new();
    nab_cmd::print_scores(&mut text, detector, &scores).unwrap();
    eprintln!("{}", String::from_utf8_lossy(&text));
    for (r, want) in scores.profiles().into_iter().zip(published) {
        assert!(
            (r.score - want).abs() < 0.1,
            "{detector} {}: {:.3}, published {want} (threshold {}, raw {})",
            r.profile.name,
            r.score,
            r.threshold,
            r.raw
        );
    }
    assert_eq!(scores.standard.files.len(), 58);
    assert_eq!(scores.standard.perfect, 116.0);
    assert_eq!(scores.standard.null, -116.0);
    assert_eq!(scores.reward_low_fn_rate.null, -232.0);
}

#[test]
#[ignore = "needs ../shared"]
fn numenta_results_reproduce_the_published_scores() {
    assert_reproduces("numenta", [70.10, 63.21, 74.32]);
}

#[test]
#[ignore = "needs ../shared"]
fn windowed_gaussian_results_reproduce_the_published_scores() {
    assert_reproduces("windowedGaussian", [39.65, 20.87, 47.41]);
}

#[test]
#[ignore = "needs ../shared"]
fn baseline_runs_over_the_corpus_without_look_ahead() {
    let corpus = shared_nab();
    let out = tempfile::tempdir().unwrap();
    let scores = run_nab_with(&corpus, out.path(), RobustZBaseline::default).unwrap();
    let mut text = Vec::new();
    nab_cmd::print_scores(&mut text, "robust-z baseline", &scores).unwrap();
    eprintln!("{}", String::from_utf8_lossy(&text));
    for f in figures(&scores) {
        assert!(f.is_finite() && f < 100.0, "{f}");
    }
    // Every data file has a result with one row per data row, in NAB's column layout.
    let loaded = load_corpus(&corpus).unwrap();
    assert_eq!(loaded.files.len(), 58);
    assert_eq!(loaded.windows(), 116);
    for f in &loaded.files {
        let path = out.path().join(&f.file.name);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("timestamp,value,anomaly_score\n"), "{}", path.display());
        assert_eq!(read_scores(&path, &f.file).unwrap().len(), f.file.timestamps.len());
    }
    // Scoring the written folder again gives the same figures.
    assert_eq!(figures(&score_results(&corpus, out.path()).unwrap()), figures(&scores));
    // No look-ahead: the scores of a prefix of a file are the prefix of its scores.
    let f = &loaded
        .files
        .iter()
        .find(|f| f.file.name == "realKnownCause/nyc_taxi.csv")
        .unwrap()
        .file;
    let run = |n: usize| {
        let mut d = RobustZBaseline::default();
        f.timestamps
            .iter()
            .zip(&f.values)
            .take(n)
            .map(|(t, v)| d.score(*t, *v))
            .collect::<Vec<f64>>()
    };
    let full = run(f.values.len());
    assert_eq!(run(5000)[..], full[..5000]);
}

#[test]
#[ignore = "needs ../shared"]
fn ensemble_scores_at_least_65_on_the_standard_profile() {
    let corpus = shared_nab();
    let out = tempfile::tempdir().unwrap();
    let scores = run_nab_with(&corpus, out.path(), EnsembleDetector::default).unwrap();
    let mut text = Vec::new();
    nab_cmd::print_scores(&mut text, "streaming ensemble", &scores).unwrap();
    eprintln!("{}", String::from_utf8_lossy(&text));
    let [standard, low_fp, low_fn] = figures(&scores);
    eprintln!("standard {standard:.2} / reward_low_FP_rate {low_fp:.2} / reward_low_FN_rate {low_fn:.2}");
    assert!(standard >= 65.0, "standard profile {standard:.2} < 65");
    // No look-ahead: the scores of a prefix of a file are the prefix of its scores.
    let loaded = load_corpus(&corpus).unwrap();
    let f = &loaded
        .files
        .iter()
        .find(|f| f.file.name == "realKnownCause/machine_temperature_system_failure.csv")
        .unwrap()
        .file;
    let run = |n: usize| {
        let mut d = EnsembleDetector::default();
        f.timestamps
            .iter()
            .zip(&f.values)
            .take(n)
            .map(|(t, v)| d.score(*t, *v))
            .collect::<Vec<f64>>()
    };
    let full = run(f.values.len());
    assert_eq!(run(9000)[..], full[..9000]);
}

#[test]
#[ignore = "needs ../shared"]
fn nab_reference_results_are_found_by_either_name() {
    let corpus = shared_nab();
    let p = find_result(&corpus.join("results/numenta"), "realKnownCause/nyc_taxi.csv").unwrap();
    assert!(
        p.ends_with("realKnownCause/nyc_taxi.csv") || p.ends_with("realKnownCause/numenta_nyc_taxi.csv"),
        "{}",
        p.display()
    );
}

/// A synthetic corpus: two categories, three files of 200 rows five minutes apart, one spike per
/// labelled window.
fn synthetic_corpus(root: &Path) {
    let t0 = NabTime::parse("2020-03-01 00:00:00").unwrap().0;
    let ts = |i: i64| NabTime(t0 + i * 300_000_000).to_string();
    let files = [
        ("catA/one.csv", vec![(120, 140)]),
        ("catA/two.csv", vec![]),
        ("catB/three.csv", vec![(60, 80), (150, 170)]),
    ];
    let mut labels = serde_json::Map::new();
    for (name, windows) in &files {
        let path = root.join("data").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut csv = String::from("timestamp,value\n");
        for i in 0..200 {
            let spike = windows.iter().any(|&(a, _)| i == a + 2);
            csv.push_str(&format!("{},{}\n", ts(i), if spike { 50.0 } else { 10.0 + (i % 3) as f64 * 0.1 }));
        }
        std::fs::write(&path, csv).unwrap();
        let w: Vec<serde_json::Value> = windows
            .iter()
            .map(|&(a, b)| serde_json::json!([format!("{}.000000", ts(a)), format!("{}.000000", ts(b))]))
            .collect();
        labels.insert(name.to_string(), serde_json::Value::Array(w));
    }
    std::fs::create_dir_all(root.join("labels")).unwrap();
    std::fs::write(
        root.join("labels/combined_windows.json"),
        serde_json::Value::Object(labels).to_string(),
    )
    .unwrap();
}

/// Fires at values above 20: catches each spike two rows into its window, nothing else.
struct Above20;
impl NabDetector for Above20 {
    fn score(&mut self, _t: NabTime, value: f64) -> f64 {
        if value > 20.0 {
            1.0
        } else {
            0.0
        }
    }
}

#[test]
fn harness_writes_one_result_per_data_file_and_scores_it() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    synthetic_corpus(&corpus);
    let out = dir.path().join("out");
    let scores = run_nab_with(&corpus, &out, || Above20).unwrap();
    let text = std::fs::read_to_string(out.join("catB/three.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "timestamp,value,anomaly_score");
    assert_eq!(lines.len(), 201);
    assert_eq!(lines[1], "2020-03-01 00:00:00,10,0");
    assert_eq!(lines[63], "2020-03-01 05:10:00,50,1");
    // Three windows each caught at their third row of 21: just under the perfect 100.
    for r in scores.profiles() {
        assert_eq!(r.threshold, 1.0);
        assert!(r.score > 95.0 && r.score < 100.0, "{}: {}", r.profile.name, r.score);
    }
    assert_eq!(scores.standard.perfect, 3.0);
    assert_eq!(
        scores.standard.files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["catA/one.csv", "catA/two.csv", "catB/three.csv"]
    );
}

#[test]
fn nab_named_results_with_extra_columns_are_scored_by_column_name() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    synthetic_corpus(&corpus);
    let ours = dir.path().join("ours");
    let reference = run_nab_with(&corpus, &ours, || Above20).unwrap();
    // Rewrite as NAB does: results/<detector>/<category>/<detector>_<file>.csv, more columns.
    let nab = dir.path().join("results/mydet");
    for cat in ["catA", "catB"] {
        std::fs::create_dir_all(nab.join(cat)).unwrap();
        for e in std::fs::read_dir(ours.join(cat)).unwrap() {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap();
            let mut out = String::new();
            for (i, line) in text.lines().enumerate() {
                let f: Vec<&str> = line.split(',').collect();
                out.push_str(&if i == 0 {
                    "timestamp,value,label,anomaly_score,S(t)_standard\n".to_string()
                } else {
                    format!("{},{},0,{},0\n", f[0], f[1], f[2])
                });
            }
            std::fs::write(
                nab.join(cat).join(format!("mydet_{}", p.file_name().unwrap().to_string_lossy())),
                out,
            )
            .unwrap();
        }
    }
    assert_eq!(score_results(&corpus, &nab).unwrap(), reference);
}

#[test]
fn bad_input_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    synthetic_corpus(&corpus);
    let out = dir.path().join("out");
    run_nab_with(&corpus, &out, || Above20).unwrap();

    // A result row with a score outside [0, 1].
    let p = out.join("catA/two.csv");
    let text = std::fs::read_to_string(&p).unwrap().replacen(",0\n", ",1.5\n", 1);
    std::fs::write(&p, text).unwrap();
    let err = format!("{:#}", score_results(&corpus, &out).unwrap_err());
    assert!(err.contains("two.csv:2:") && err.contains("[0, 1]"), "{err}");

    // A result file with a row missing.
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, &text[..text.trim_end().rfind('\n').unwrap() + 1]).unwrap();
    let err = format!("{:#}", score_results(&corpus, &out).unwrap_err());
    assert!(err.contains("199 rows") && err.contains("has 200"), "{err}");

    // A missing result file.
    std::fs::remove_file(&p).unwrap();
    let err = format!("{:#}", score_results(&corpus, &out).unwrap_err());
    assert!(err.contains("no result for catA/two.csv"), "{err}");

    // A data row that is not a number.
    let data = corpus.join("data/catB/three.csv");
    let text = std::fs::read_to_string(&data).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[5] = lines[5].replace(",10", ",ten");
    std::fs::write(&data, lines.join("\n")).unwrap();
    let err = format!("{:#}", load_corpus(&corpus).unwrap_err());
    assert!(err.contains("three.csv:6:") && err.contains("\"ten"), "{err}");

    // A data file the labels do not mention.
    std::fs::write(&data, text).unwrap();
    let extra = corpus.join("data/catB/extra.csv");
    std::fs::write(&extra, "timestamp,value\n2020-03-01 00:00:00,1\n").unwrap();
    let err = format!("{:#}", load_corpus(&corpus).unwrap_err());
    assert!(err.contains("no entry for catB/extra.csv"), "{err}");
    std::fs::remove_file(&extra).unwrap();

    // A window whose timestamp is not in its file: found when the corpus is read, before any run.
    let labels = corpus.join("labels/combined_windows.json");
    let json = std::fs::read_to_string(&labels)
        .unwrap()
        .replace("2020-03-01 11:40:00.000000", "2020-03-01 11:41:00.000000");
    std::fs::write(&labels, json).unwrap();
    let err = format!("{:#}", load_corpus(&corpus).unwrap_err());
    assert!(err.contains("catA/one.csv") && err.contains("occurs 0 times"), "{err}");
}
