//! The `cellwarden` binary end to end: replay, eval and report on the bundled fixture, on broken
//! input, and (ignored unless ../shared exists) on the 45 Train Ticket cases.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cellwarden"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the binary runs");
    if !out.status.success() {
        eprintln!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

const BUNDLED: &str = "fixtures/memory-leak";

/// The guards see the recorded platform (four cells), so a zone outage's reroute is allowed and
/// its cordon waits for approval, and each incident's later rankings are shown with their time.
#[test]
fn replay_of_a_zone_outage_plans_what_the_guards_allow_on_the_recorded_platform() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = run(bin()
        .arg("replay")
        .arg(root().join("fixtures/zone-outage"))
        .arg("--out")
        .arg(out_dir.path()));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("reroute cell-2, cordon cell-2 (needs approval)"), "{text}");
    assert!(!text.contains("refused by blast-radius"), "{text}");
    assert!(
        text.contains("re-ranked at") && text.contains("ranked on telemetry up to"),
        "{text}"
    );
}

#[test]
fn replay_of_bundled_fixture_prints_incidents_candidates_and_a_dry_run_plan() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = run(bin().arg("replay").arg(root().join(BUNDLED)).arg("--out").arg(out_dir.path()));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("warning") && text.contains("reaches its limit"),
        "a memory forecast: {text}"
    );
    assert!(text.contains("incident"), "{text}");
    assert!(text.contains("restart_pods cell-2/ledger"), "{text}");
    assert!(text.contains("(dry-run)"), "{text}");
    assert!(text.contains("   1. "), "a ranked candidate list: {text}");
    let md = std::fs::read_to_string(out_dir.path().join("report.md")).unwrap();
    assert!(md.contains("| rank | candidate |"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert!(!json["incidents"].as_array().unwrap().is_empty());
    let html = std::fs::read_to_string(out_dir.path().join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("class=\"depgraph\"") && html.contains("cell-2/ledger"));
    let as_html = run(bin()
        .arg("report")
        .arg(out_dir.path().join("report.json"))
        .args(["--format", "html"]));
    assert!(as_html.status.success());
    assert_eq!(String::from_utf8(as_html.stdout).unwrap(), html);
    // A stored report renders again.
    let again = run(bin().arg("report").arg(out_dir.path().join("report.json")).args(["--format", "md"]));
    assert!(again.status.success());
    assert_eq!(String::from_utf8(again.stdout).unwrap(), md);
    // The folder `--out` wrote is enough: its report.json is found.
    let from_dir = run(bin().arg("report").arg(out_dir.path()).args(["--format", "md"]));
    assert!(from_dir.status.success());
    assert_eq!(String::from_utf8(from_dir.stdout).unwrap(), md);
}

#[test]
fn eval_json_has_the_stable_keys() {
    let out = run(bin().current_dir(root()).args(["eval", "fixtures", "--at-truth-start", "--json"]));
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "cases",
        "faulty",
        "healthy",
        "detected",
        "recall",
        "false_alarms_per_hour",
        "median_delay_s",
        "median_lead_s",
        "ac1",
        "ac3",
        "avg5",
    ] {
        assert!(v["summary"].get(key).is_some(), "summary.{key} missing: {v}");
    }
    let case = &v["cases"][0];
    for key in ["case", "detected", "delay_s", "lead_s", "rank", "top5"] {
        assert!(case.get(key).is_some(), "cases[0].{key} missing: {case}");
    }
    for case in v["cases"].as_array().unwrap() {
        for c in case["top5"].as_array().unwrap() {
            assert!(["service", "provider", "node", "zone", "cell"].contains(&c["kind"].as_str().unwrap()));
            assert!(["internal", "external", "infrastructure"].contains(&c["class"].as_str().unwrap()));
        }
    }
    assert_eq!(v["summary"]["cases"], 24);
    assert_eq!(v["summary"]["healthy"], 2);
    assert!(v["summary"]["false_alarms_per_hour"].is_number());
}

fn eval_cases() -> serde_json::Value {
    let out = run(bin().current_dir(root()).args(["eval", "fixtures", "--json"]));
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn bundled_incidents_are_detected_and_classed_at_our_own_detection() {
    let v = eval_cases();
    let case = |name: &str| {
        v["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["case"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .clone()
    };
    let top = |name: &str| case(name)["top5"][0].clone();
    for name in [
        "memory-leak",
        "provider-errors",
        "zone-outage",
        "db-latency-drift",
        "consumer-poison-pill",
        "loyalty-outage",
        "loyalty-outage-istio",
    ] {
        assert_eq!(case(name)["detected"], true, "{name}");
    }
    // Seen through Istio's metrics only (the istio profile), the failing service still comes first.
    assert_eq!(case("loyalty-outage-istio")["rank"], 1);
    assert_eq!(top("provider-errors")["class"], "external");
    assert_eq!(top("provider-errors")["entity"], "provider-a");
    assert_eq!(top("zone-outage")["class"], "infrastructure");
    assert_eq!(top("memory-leak")["entity"], "cell-2/ledger");
    // The leak is announced well before the OOM kill it would end in.
    assert!(case("memory-leak")["lead_s"].as_f64().unwrap() >= 15.0 * 60.0);
}

#[test]
fn generated_fixtures_are_rewritten_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(bin()
        .current_dir(root())
        .args(["generate-fixtures", "--only", "provider-errors", "--only", "zone-outage", "--out"])
        .arg(dir.path()));
    assert!(out.status.success());
    for id in ["provider-errors", "zone-outage"] {
        for file in ["metrics.om.gz", "traces.jsonl.gz", "topology.yaml", "truth.yaml"] {
            let fresh = std::fs::read(dir.path().join(id).join(file)).unwrap();
            let committed = std::fs::read(root().join("fixtures").join(id).join(file)).unwrap();
            assert!(
                fresh == committed,
                "fixtures/{id}/{file} differs from what the simulator writes now: run `cargo run --release -- generate-fixtures`"
            );
        }
    }
}

#[test]
fn simulate_closed_loop_fails_fewer_payments_with_action() {
    let out = run(bin().args(["simulate", "provider-errors"]));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let row = text
        .lines()
        .find(|l| l.starts_with("failed payments"))
        .unwrap_or_else(|| panic!("{text}"));
    let nums: Vec<f64> = row.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert_eq!(nums.len(), 3, "without, legacy, current: {row}");
    assert!(nums[1] < nums[0] / 2.0, "without {} legacy {}", nums[0], nums[1]);
    assert!(nums[2] < nums[0] / 2.0, "without {} current {}", nums[0], nums[2]);
    assert!(text.contains("failover_provider provider-a: done"), "{text}");
}

/// The numbers of the `simulate` table row starting with `name`: without, legacy, current.
fn table_row(text: &str, name: &str) -> Vec<f64> {
    let row = text
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name}: {text}"));
    row[name.len()..].split_whitespace().filter_map(|w| w.parse().ok()).collect()
}

/// The memory leak follows a deploy: the current rules restart, then (the restart not holding)
/// roll back, and end with the fewest OOM kills, no more failed payments than the legacy rules
/// or no action, one incident, no action taken twice and at most one replica added.
#[test]
fn simulate_memory_leak_rolls_back_the_deploy_and_beats_restart_and_scale() {
    let out = run(bin().args(["simulate", "memory-leak"]));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let oom = table_row(&text, "OOM kills");
    let failed = table_row(&text, "failed payments");
    let incidents = table_row(&text, "incidents opened");
    assert_eq!((oom.len(), failed.len()), (3, 3), "{text}");
    assert!(
        oom[2] < oom[0] && oom[2] < oom[1],
        "OOM kills without {} legacy {} current {}",
        oom[0],
        oom[1],
        oom[2]
    );
    assert!(failed[2] <= failed[0] && failed[2] <= failed[1], "{failed:?}");
    assert_eq!(incidents[2], 1.0, "{text}");
    let current = text.split("acting (current rules): what cellwarden did").nth(1).unwrap();
    assert!(
        current.contains("rollback cell-2/ledger: approved") && current.contains("done: rolled cell-2/ledger back to revision 1"),
        "{current}"
    );
    // The restart comes first; the rollback only after it.
    let restart = current.find("restart_pods cell-2/ledger: done").expect("a restart");
    assert!(restart < current.find("rollback cell-2/ledger").unwrap());
    for kind in ["restart_pods", "scale", "rollback"] {
        let n = current
            .lines()
            .filter(|l| l.contains(&format!("{kind} cell-2/ledger: ")) && l.contains("done"))
            .count();
        assert!(n <= 1, "{kind} carried out {n} times: {current}");
    }
}

#[test]
fn simulate_unknown_scenario_lists_the_known_ones() {
    let out = bin().args(["simulate", "meteor-strike"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no scenario") && err.contains("memory-leak"), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn malformed_fixture_fails_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("broken");
    std::fs::create_dir_all(&fx).unwrap();
    std::fs::write(
        fx.join("metrics.om"),
        "# TYPE m gauge\nm{service=\"a\"} 1 10\nm{service=\"a\"} oops 20\n# EOF\n",
    )
    .unwrap();
    std::fs::write(fx.join("truth.yaml"), "faults: []\n").unwrap();
    let out = bin().arg("replay").arg(&fx).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("metrics.om:3:") && err.contains("invalid value"), "{err}");
    // eval reports the broken case, still scores the good one, and exits non-zero.
    copy_dir(&root().join(BUNDLED), &dir.path().join("good"));
    let out = bin().arg("eval").arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("good"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("metrics.om:3:"));
}

#[test]
fn eval_of_a_folder_without_fixtures_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin().arg("eval").arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no fixture here"));
}

fn nezha() -> PathBuf {
    root().join("../shared/datasets/nezha-train-ticket")
}

#[test]
#[ignore = "needs ../shared"]
fn replay_runs_on_every_train_ticket_case() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(nezha())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("truth.yaml").exists())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 45);
    for c in cases {
        let out = run(bin().arg("replay").arg(&c));
        assert!(out.status.success(), "{}", c.display());
    }
}

#[test]
#[ignore = "needs ../shared"]
fn eval_at_truth_start_scores_all_45_train_ticket_cases() {
    let out = run(bin().arg("eval").arg(nezha()).args(["--at-truth-start", "--json"]));
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["cases"], 45);
    assert_eq!(v["summary"]["faulty"], 45);
    let ac1 = v["summary"]["ac1"].as_f64().unwrap();
    let ac3 = v["summary"]["ac3"].as_f64().unwrap();
    let avg5 = v["summary"]["avg5"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&ac1) && ac1 <= ac3 && (0.0..=1.0).contains(&avg5));
    eprintln!("nezha-train-ticket at truth start: AC@1 {ac1:.3} AC@3 {ac3:.3} Avg@5 {avg5:.3}");
}

#[test]
fn crd_prints_the_three_custom_resource_definitions() {
    let out = run(bin().arg("crd"));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for name in [
        "cells.cellwarden.io",
        "remediationpolicies.cellwarden.io",
        "incidents.cellwarden.io",
    ] {
        assert!(text.contains(&format!("name: {name}")), "{name} missing");
    }
    assert_eq!(text.matches("kind: CustomResourceDefinition").count(), 3);
}

/// A TCP listener standing in for a Kubernetes API that accepts connections and never answers;
/// it counts the connections it got.
struct SilentApi {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SilentApi {
    fn start() -> SilentApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in listener.incoming().map_while(Result::ok) {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(s);
            }
        });
        SilentApi { port, accepted }
    }

    fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let p = dir.join("kubeconfig");
        std::fs::write(&p, fakekube::kubeconfig_for(&format!("http://127.0.0.1:{}", self.port))).unwrap();
        p
    }

    fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `cellwarden run` with `config` (a file), killed if still running after `limit`: its output and
/// how long it ran.
fn run_daemon(config: &Path, kubeconfig: &Path, limit: std::time::Duration) -> (Output, std::time::Duration) {
    let t = std::time::Instant::now();
    let mut child = bin()
        .args(["run", "--config"])
        .arg(config)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "`cellwarden run` still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), t.elapsed())
}

/// Act mode with receivers anyone could push to is refused before the API is contacted.
#[test]
fn run_refuses_act_mode_with_receivers_open_to_anyone() {
    let api = SilentApi::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = api.kubeconfig(dir.path());
    let cfg = dir.path().join("cellwarden.yaml");
    std::fs::write(
        &cfg,
        format!(
            "mode: act\nsource: live\nadmin_listen: 127.0.0.1:{}\nreceivers:\n  listen: 127.0.0.1:{}\n",
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let (out, took) = run_daemon(&cfg, &kc, std::time::Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("receivers.bearer_token_file") && err.contains("insecure_receivers"),
        "{err}"
    );
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    assert_eq!(api.connections(), 0, "nothing is asked of the API");
}

/// Bad settings fail in milliseconds, by name, without a connection to the API.
#[test]
fn run_with_a_bad_setting_fails_at_once_naming_it() {
    let api = SilentApi::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = api.kubeconfig(dir.path());
    let cases = [
        (
            "receivers:\n  max_ingest_samples_per_sec: 0\n",
            "receivers.max_ingest_samples_per_sec",
        ),
        ("receivers:\n  max_body_bytes: 0\n", "receivers.max_body_bytes"),
        ("notify:\n  - url: not a url\n", "notify[0].url"),
        ("namespace: Not-A-Namespace\n", "namespace"),
        ("cells: [cell_1]\n", "cells"),
        ("admin_listen: 8081\n", "admin_listen"),
    ];
    for (yaml, field) in cases {
        let cfg = dir.path().join("bad.yaml");
        std::fs::write(&cfg, yaml).unwrap();
        let (out, took) = run_daemon(&cfg, &kc, std::time::Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(field), "{yaml:?} should name {field}: {err}");
        assert!(took < std::time::Duration::from_secs(3), "{yaml:?} took {took:?}");
    }
    // A config "file" that never ends is refused after its first MiB.
    let (out, took) = run_daemon(Path::new("/dev/zero"), &kc, std::time::Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("larger than"), "{err}");
    assert!(took < std::time::Duration::from_secs(3), "/dev/zero took {took:?}");
    assert_eq!(api.connections(), 0, "nothing is asked of the API");
}

/// An API that accepts connections and never answers: start-up gives up after
/// `startup_timeout_secs` with an error that says so.
#[test]
fn run_gives_up_on_an_api_that_never_answers_after_startup_timeout_secs() {
    let api = SilentApi::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = api.kubeconfig(dir.path());
    let cfg = dir.path().join("cellwarden.yaml");
    std::fs::write(
        &cfg,
        format!(
            "source: live\nstartup_timeout_secs: 2\nadmin_listen: 127.0.0.1:{}\nreceivers:\n  listen: 127.0.0.1:{}\n",
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let (out, took) = run_daemon(&cfg, &kc, std::time::Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("did not answer within startup_timeout_secs (2 s)") && err.contains(&format!("127.0.0.1:{}", api.port)),
        "{err}"
    );
    assert!(
        took >= std::time::Duration::from_millis(1800) && took < std::time::Duration::from_secs(10),
        "{took:?}"
    );
    assert!(api.connections() >= 1, "it did try the API");
    println!("start-up against a silent API gave up after {took:?} (startup_timeout_secs: 2)");
}

const ISTIO: &str = "fixtures/loyalty-outage-istio";

fn write_config(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("cellwarden.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn signals_names_the_rule_that_read_each_metric_and_why_the_rest_was_ignored() {
    let out = run(bin().arg("signals").arg(root().join(ISTIO)));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}: {text}"))
            .to_string()
    };
    assert!(
        line("by istio-requests (profile istio)").contains("request_rate (istio_requests:rate), error_ratio"),
        "{text}"
    );
    assert!(
        line("by istio-request-duration (profile istio)").contains("latency (istio_request_duration_milliseconds:mean)"),
        "{text}"
    );
    // The provider gateway's outbound calls are only the client's report: named, but not read.
    assert!(
        line("wants reporter=\"destination\"").contains("(the series has \"source\")"),
        "{text}"
    );
    assert!(
        line("istio_request_duration_milliseconds_bucket").contains("buckets are not read"),
        "{text}"
    );
}

#[test]
fn a_config_rule_comes_before_the_profiles_in_signals_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "signals:\n  - name: restarts\n    metric: kube_pod_container_status_restarts_total\n    signal: request_rate\n    read: counter_rate\n",
    );
    let out = run(bin().arg("signals").arg(root().join(BUNDLED)).arg("--config").arg(&config));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let restarts = text
        .lines()
        .find(|l| l.contains("kube_pod_container_status_restarts_total"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(restarts.contains("by restarts (config)"), "{text}");
    assert!(
        text.contains("rules, first match wins: the config (1), then profile cellwarden"),
        "{text}"
    );
    // Without the config the same metric is named as ignored.
    let out = run(bin().arg("signals").arg(root().join(BUNDLED)));
    let text = String::from_utf8(out.stdout).unwrap();
    let restarts = text
        .lines()
        .find(|l| l.contains("kube_pod_container_status_restarts_total"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(restarts.contains("no rule or inference names this metric"), "{text}");
    let out = run(bin().arg("eval").arg(root().join(BUNDLED)).arg("--config").arg(&config));
    assert!(out.status.success(), "eval takes the same config");
}

#[test]
fn a_typo_in_a_signals_rule_stops_every_command_that_reads_the_config() {
    let dir = tempfile::tempdir().unwrap();
    for (yaml, named) in [
        (
            "signals:\n  - {metric: x, signal: latency, read: gauge, units: milliseconds}\n",
            "units",
        ),
        ("signals:\n  - {metric: x, signal: latency, read: gauge, unit: ms}\n", "ms"),
        (
            "signals:\n  - {metric: x, signal: latency, read: gauge, entity: {servce: [app]}}\n",
            "servce",
        ),
        ("signals:\n  - {metric_regex: '(', signal: latency, read: gauge}\n", "metric_regex"),
        ("signals:\n  - {metric: x, read: gauge}\n", "signal is required"),
    ] {
        let config = write_config(dir.path(), yaml);
        for cmd in ["signals", "replay", "eval"] {
            let out = bin()
                .arg(cmd)
                .arg(root().join(BUNDLED))
                .arg("--config")
                .arg(&config)
                .output()
                .unwrap();
            assert!(!out.status.success(), "{cmd} accepted {yaml}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(named), "{cmd} on {yaml}: {err}");
        }
    }
}

/// The fixtures that show one profile each (only that exporter's metrics, a fault in the entity it
/// names): each is detected and that entity ranked first.
#[test]
fn every_profile_fixture_is_detected_and_its_entity_ranked_first() {
    let v = eval_cases();
    for (case, top, profile) in [
        ("loyalty-outage-istio", "loyalty", "istio"),
        ("loyalty-outage-linkerd", "loyalty", "linkerd"),
        ("loyalty-outage-envoy", "loyalty", "envoy"),
        ("loyalty-outage-ingress-nginx", "loyalty", "ingress-nginx"),
        ("memory-leak-micrometer", "cell-2/ledger", "micrometer"),
        ("memory-leak-prometheus-client", "cell-2/ledger", "prometheus-client"),
        ("memory-leak-kubernetes", "cell-2/ledger", "kubernetes"),
        ("node-memory-leak-node-exporter", "node-2-1", "node-exporter"),
        ("db-latency-drift-opentelemetry", "cell-3/ledger-db", "opentelemetry"),
        ("db-latency-drift-postgres-exporter", "cell-3/ledger-db", "postgres-exporter"),
        ("db-latency-drift-cockroachdb", "cell-3/ledger-db", "cockroachdb"),
        ("consumer-poison-pill-kafka-exporter", "cell-4/consumer", "kafka-exporter"),
    ] {
        let c = v["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["case"] == case)
            .unwrap_or_else(|| panic!("{case} missing"));
        assert_eq!(c["detected"], true, "{case}: {c}");
        assert_eq!(c["rank"], 1, "{case}: {c}");
        // The loyalty outages' truth names no cell (loyalty fails in every cell, near-tied): the
        // service is what must come first; elsewhere the cell too.
        let first = c["top5"][0]["entity"].as_str().unwrap_or_default();
        let first = if top.contains('/') {
            first
        } else {
            first.rsplit('/').next().unwrap_or(first)
        };
        assert_eq!(first, top, "{case}: {c}");
        // And it is that profile's rules that read it.
        let out = run(bin().arg("signals").arg(root().join("fixtures").join(case)));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(&format!("(profile {profile})")), "{case}: {text}");
        // Nothing is left unnamed (Istio's client reports are named, and left out on purpose).
        assert!(!text.contains("no rule or inference names this metric"), "{case}: {text}");
        assert!(!text.contains("(inferred)"), "{case}: {text}");
    }
}

/// The config rules that make the custom-names scenario's home-grown gauges signals.
const CUSTOM_RULES: &str = "signals:
  - name: acme-p99
    metric: acme_svc_p99_ms
    signal: latency
    read: gauge
    unit: milliseconds
    entity: {service: [app], cell: [ns]}
  - name: acme-errors
    metric: acme_svc_errors_pct
    signal: error_ratio
    read: gauge
    unit: percent
    entity: {service: [app], cell: [ns]}
";

#[test]
fn metrics_no_builtin_rule_names_are_seen_through_a_config_rule_and_explained_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let id = "loyalty-outage-custom-names";
    run(bin().args(["generate-fixtures", "--only", id, "--out"]).arg(dir.path()));
    let fixture = dir.path().join(id);
    let eval = |config: Option<&Path>| {
        let mut cmd = bin();
        cmd.arg("eval").arg(&fixture).arg("--json");
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let out = run(&mut cmd);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["cases"][0].clone()
    };
    let without = eval(None);
    assert_eq!(without["detected"], false, "{without}");
    let out = run(bin().arg("signals").arg(&fixture));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("→ 0 signal series"), "{text}");
    for metric in ["acme_svc_p99_ms", "acme_svc_errors_pct"] {
        let line = text.lines().find(|l| l.contains(metric)).unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains("no rule or inference names this metric"), "{text}");
    }
    let config = write_config(dir.path(), CUSTOM_RULES);
    let with = eval(Some(&config));
    assert_eq!(with["detected"], true, "{with}");
    assert_eq!(with["rank"], 1, "{with}");
    assert_eq!(with["top5"][0]["entity"], "cell-1/loyalty", "{with}");
    let out = run(bin().arg("signals").arg(&fixture).arg("--config").arg(&config));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("by acme-p99 (config)") && text.contains("by acme-errors (config)"),
        "{text}"
    );
}

#[test]
fn signals_lists_inferred_series_apart_from_the_ruled_ones() {
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("inferred");
    std::fs::create_dir(&fx).unwrap();
    std::fs::write(
        fx.join("metrics.om"),
        "# TYPE checkout_latency_p99_milliseconds gauge\n\
         checkout_latency_p99_milliseconds{service=\"checkout\",cell=\"cell-1\"} 120 0\n\
         checkout_latency_p99_milliseconds{service=\"checkout\",cell=\"cell-1\"} 250 30\n\
         # TYPE container_memory_working_set_bytes gauge\n\
         container_memory_working_set_bytes{service=\"checkout\",cell=\"cell-1\"} 1e8 0\n\
         container_memory_working_set_bytes{service=\"checkout\",cell=\"cell-1\"} 1e8 30\n\
         # EOF\n",
    )
    .unwrap();
    let out = run(bin().arg("signals").arg(&fx));
    let text = String::from_utf8(out.stdout).unwrap();
    let (ruled, inferred) = text.split_once("inferred (no rule names them").unwrap_or_else(|| panic!("{text}"));
    assert!(
        ruled.contains("container_memory_working_set_bytes") && ruled.contains("(profile cellwarden)"),
        "{text}"
    );
    assert!(
        inferred.contains("checkout_latency_p99_milliseconds")
            && inferred.contains("by gauge named like a latency in milliseconds (inferred)"),
        "{text}"
    );
}

#[test]
fn audit_verify_accepts_a_whole_chain_and_names_the_first_line_after_a_gap_or_an_edit() {
    let mut log = cellwarden_remediator::audit::AuditLog::new(Vec::new());
    let lines: Vec<String> = (0..4)
        .map(|i| {
            log.record("2026-12-02T10:00:00Z", "action_taken", serde_json::json!({"n": i}))
                .unwrap()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, lines: &[String]| {
        let p = dir.path().join(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    };
    let whole = write("whole.jsonl", &lines);
    let out = bin().args(["audit", "verify"]).arg(&whole).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 lines, the hash chain holds"));

    let gap = write("gap.jsonl", &[lines[0].clone(), lines[2].clone(), lines[3].clone()]);
    let out = bin().args(["audit", "verify"]).arg(&gap).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gap.jsonl: line 2: does not follow line 1"), "{err}");

    let mut edited = lines.clone();
    edited[2] = edited[2].replace("\"n\":2", "\"n\":9");
    let out = bin()
        .args(["audit", "verify"])
        .arg(write("edited.jsonl", &edited))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 4: does not follow line 3"));

    let mut garbled = lines.clone();
    garbled[1] = "not json".into();
    let out = bin()
        .args(["audit", "verify"])
        .arg(write("garbled.jsonl", &garbled))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2: not JSON"));
    let out = bin().args(["audit", "verify", "/nonexistent/audit.jsonl"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read audit log /nonexistent/audit.jsonl"));
}
