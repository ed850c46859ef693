//! The command line: one `run_*` per subcommand. Output for people on stdout, logs on stderr.

use anyhow::{bail, Context, Result};
use cellwarden_collector::fixture::load_dir;
use cellwarden_detector::signals::rules::SignalRules;
use cellwarden_engine::drive;
use cellwarden_engine::eval::{self, CaseRun, CaseScore, Summary};
use cellwarden_engine::pipeline::{self, Prepared};
use cellwarden_models::report::Report;
use cellwarden_models::{units, Timestamp};
use cellwarden_remediator::report as render;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(name = "cellwarden", version, about = "Self-healing operator for cellular digital-wallet platforms", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a recorded fixture through the pipeline and print what it would have seen, concluded and done (dry-run).
    Replay {
        /// A fixture folder (metrics.om[.gz], traces.jsonl[.gz], topology.yaml, truth.yaml).
        fixture: PathBuf,
        /// Write report.md, report.html and report.json into this folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A config file (cellwarden.yaml) whose `signals:` rules apply, as in `run`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Replay fixtures that have a truth.yaml and score detection and root-cause ranking.
    Eval {
        /// Fixture folders, parent folders of fixtures, or globs of either.
        #[arg(required = true)]
        fixtures: Vec<String>,
        /// Rank at the true fault start, seeing telemetry up to its end (the protocol of published RCA tables).
        #[arg(long)]
        at_truth_start: bool,
        /// Print one JSON object (summary and cases) instead of the table.
        #[arg(long)]
        json: bool,
        /// Write each case's report.md, report.html and report.json under DIR/<case>/.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A config file (cellwarden.yaml) whose `signals:` rules apply, as in `run`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Show which series of a fixture became which signal, by which rule, profile or inference,
    /// and which were left out and why.
    Signals {
        /// A fixture folder (its metrics.om[.gz] is read).
        #[arg(required_unless_present = "from", conflicts_with = "from")]
        fixture: Option<PathBuf>,
        /// Scrape this exposition endpoint once instead (`http://host:port/metrics`), with the
        /// `job` and `instance` labels a scrape adds.
        #[arg(long)]
        from: Option<String>,
        /// A config file (cellwarden.yaml) whose `signals:` rules come before the built-in profiles.
        #[arg(long)]
        config: Option<PathBuf>,
        /// One line per series instead of one per metric and outcome.
        #[arg(long)]
        series: bool,
    },
    /// Run a simulated incident without action, acting under the legacy rules and acting under
    /// the current ones, and compare what users felt.
    Simulate {
        /// Scenario id: memory-leak, provider-errors, zone-outage, db-latency-drift, consumer-poison-pill,
        /// loyalty-outage, traffic-surge, healthy-day (and the bundled variants, e.g. memory-leak-s2).
        scenario: String,
        /// Seed of the simulated wallet (default: the scenario's own).
        #[arg(long)]
        seed: Option<u64>,
        /// Only the runs with cellwarden acting.
        #[arg(long, conflicts_with = "no_act")]
        act_only: bool,
        /// Only the run without action.
        #[arg(long)]
        no_act: bool,
        /// Act under these rule sets only (`current`, `legacy`; repeatable). Default: both.
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// Write the last acting run's report.md, report.html and report.json into this folder.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// (Re)generate the bundled simulator fixtures; the output is identical on every run.
    GenerateFixtures {
        /// Where the fixture folders go.
        #[arg(long, default_value = "fixtures")]
        out: PathBuf,
        /// Only these scenario ids (default: all bundled ones).
        #[arg(long = "only")]
        only: Vec<String>,
    },
    /// Run the detector over the NAB corpus and score it with NAB's protocol, or score existing results.
    Nab {
        /// The NAB corpus folder (data/<category>/<file>.csv, labels/combined_windows.json).
        corpus: PathBuf,
        /// Write OUT/<category>/<file>.csv (timestamp,value,anomaly_score), then score it.
        #[arg(long, required_unless_present = "score_only")]
        out: Option<PathBuf>,
        /// Only score an existing result folder (e.g. ../shared/nab/results/numenta).
        #[arg(long, conflicts_with = "out")]
        score_only: Option<PathBuf>,
        /// The detector to run: the streaming ensemble, or a baseline to compare with.
        #[arg(long, value_enum, default_value_t = crate::nab_cmd::DetectorKind::Ensemble)]
        detector: crate::nab_cmd::DetectorKind,
    },
    /// Print the CustomResourceDefinitions (Cell, RemediationPolicy, Incident) as YAML.
    Crd,
    /// Print the RBAC rules the operator needs (`--cluster` for the ClusterRole, else the Role)
    /// in a mode (`--mode observe|dry-run` grants no write verb on what it would change).
    Rbac {
        #[arg(long)]
        cluster: bool,
        #[arg(long, default_value = "act", value_parser = ["observe", "dry-run", "act"])]
        mode: String,
    },
    /// The operator daemon: detect, rank, plan and (in act mode) act through the Kubernetes API.
    Run {
        /// The config file (cellwarden.yaml); defaults apply without one.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A kubeconfig; without it, in-cluster config or KUBECONFIG.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Override the config's source: live, fixture:<dir>, simulator:<scenario>.
        #[arg(long)]
        source: Option<String>,
        /// Override the config's clock speed (simulated seconds per second).
        #[arg(long)]
        clock_speed: Option<f64>,
        /// The cells this instance handles, comma-separated (a shard with its own Lease,
        /// `cellwarden-leader-<cells>`); overrides the config's `cells`.
        #[arg(long, value_delimiter = ',')]
        cells: Option<Vec<String>>,
    },
    /// Create the namespaces, Deployments and Cells a simulated scenario expects (demos, tests).
    SeedCluster {
        scenario: String,
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// cellwarden's own namespace, created too.
        #[arg(long, default_value = "cellwarden")]
        namespace: String,
    },
    /// Record telemetry into a fixture folder: raw samples from a Prometheus, or what senders push to the receivers.
    Record(crate::record::RecordArgs),
    /// Work with the audit log (the JSON lines `run` writes on stdout).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Render a stored report.json for people.
    Report {
        /// A report.json written by replay, eval or simulate, or the folder holding it (`--out DIR`).
        report: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Md)]
        format: Format,
    },
}

/// `cellwarden audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of an audit log: each line must carry the SHA-256 of the one before.
    /// Exits non-zero naming the first line that does not follow (a gap, an edit, a line that is
    /// not JSON).
    Verify {
        /// The audit log, one JSON line per decision (`-` for stdin).
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Md,
    Html,
    Json,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Replay { fixture, out, config } => run_replay(&fixture, out.as_deref(), &signal_rules(config.as_deref())?),
        Command::Eval {
            fixtures,
            at_truth_start,
            json,
            out,
            config,
        } => run_eval(&fixtures, at_truth_start, json, out.as_deref(), &signal_rules(config.as_deref())?),
        Command::Signals {
            fixture,
            from,
            config,
            series,
        } => {
            let rules = signal_rules(config.as_deref())?;
            match (fixture, from) {
                (_, Some(url)) => crate::signals_cmd::run_url(&url, &rules, series),
                (Some(dir), None) => crate::signals_cmd::run(&dir, &rules, series),
                (None, None) => anyhow::bail!("give a fixture folder or --from URL"),
            }
        }
        Command::Report { report, format } => run_report(&report, format),
        Command::Record(args) => crate::record::run(&args),
        Command::Audit {
            command: AuditCommand::Verify { file },
        } => run_audit_verify(&file),
        Command::Run {
            config,
            kubeconfig,
            source,
            clock_speed,
            cells,
        } => {
            let mut cfg = match &config {
                Some(p) => crate::run::Config::load(p)?,
                None => crate::run::Config::default(),
            };
            if let Some(s) = source {
                cfg.source = s.parse().map_err(anyhow::Error::msg)?;
            }
            if let Some(c) = clock_speed {
                cfg.clock_speed_x = c;
            }
            if let Some(cells) = cells {
                cfg.cells = cells.into_iter().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
            }
            tokio::runtime::Runtime::new()?.block_on(crate::run::run(cfg, kubeconfig.as_deref()))
        }
        Command::SeedCluster {
            scenario,
            kubeconfig,
            namespace,
        } => tokio::runtime::Runtime::new()?.block_on(async {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = match kubeconfig {
                Some(p) => kube::Client::try_from(
                    kube::Config::from_custom_kubeconfig(kube::config::Kubeconfig::read_from(&p)?, &Default::default()).await?,
                )?,
                None => kube::Client::try_default().await?,
            };
            crate::run::seed_cluster(&client, &scenario, &namespace).await
        }),
        Command::Rbac { cluster, mode } => {
            std::io::stdout()
                .lock()
                .write_all(cellwarden_remediator::rbac::rules_yaml(cluster, mode == "act").as_bytes())?;
            Ok(())
        }
        Command::Crd => {
            std::io::stdout()
                .lock()
                .write_all(cellwarden_remediator::crd::crds_yaml().as_bytes())?;
            Ok(())
        }
        Command::Simulate {
            scenario,
            seed,
            act_only,
            no_act,
            policies,
            out,
        } => run_simulate(&scenario, seed, !act_only, !no_act, &policies, out.as_deref()),
        Command::GenerateFixtures { out, only } => run_generate(&out, &only),
        Command::Nab {
            corpus,
            out,
            score_only,
            detector,
        } => crate::nab_cmd::run_with(&corpus, out.as_deref(), score_only.as_deref(), detector),
    }
}

/// `cellwarden audit verify FILE`: reads the log (`-`: stdin) and checks its chain with
/// [`cellwarden_remediator::audit::verify`]; prints how many lines hold, or fails naming the first
/// one that does not.
pub fn run_audit_verify(file: &Path) -> Result<()> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    if file == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read the audit log from stdin")?;
    } else {
        bytes = std::fs::read(file).with_context(|| format!("cannot read audit log {}", file.display()))?;
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 text (byte {}); is it an audit log?",
            file.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        anyhow::bail!("{}: empty; an audit log has at least one line", file.display());
    }
    let n = cellwarden_remediator::audit::verify(&lines).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    println!("{}: {n} lines, the hash chain holds.", file.display());
    Ok(())
}

/// The signal rules of the config at `path` (loaded and checked as `run` does), or the built-in
/// ones without a config.
fn signal_rules(path: Option<&Path>) -> Result<SignalRules> {
    match path {
        Some(p) => crate::run::Config::load(p)?.signal_rules(),
        None => Ok(SignalRules::default()),
    }
}

/// A progress bar on stderr, only when stderr is a terminal and the work is large.
fn progress_bar(total: u64, min_total: u64, what: &str) -> Option<indicatif::ProgressBar> {
    if total < min_total || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    Some(pb)
}

fn write_reports(dir: &Path, report: &Report) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let files = [
        ("report.md", render::to_markdown(report)),
        ("report.html", cellwarden_remediator::html::to_html(report)),
        ("report.json", render::to_json(report)),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).with_context(|| format!("cannot write {}", dir.join(name).display()))?;
    }
    Ok(())
}

fn hhmmss(t: Timestamp) -> String {
    t.to_rfc3339()
}

pub fn run_replay(dir: &Path, out: Option<&Path>, rules: &SignalRules) -> Result<()> {
    let fx = load_dir(dir).with_context(|| format!("cannot read fixture {}", dir.display()))?;
    let prepared = pipeline::prepare(&fx, rules);
    let total: usize = prepared.series.iter().map(|s| s.points.len()).sum();
    let pb = progress_bar(total as u64, 200_000, "replaying");
    let outcome = drive::replay(&dir.display().to_string(), fx.topology.as_ref(), &prepared, &mut |done, _| {
        if let Some(pb) = &pb {
            pb.set_position(done as u64);
        }
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let r = &outcome.report;
    let mut so = std::io::stdout().lock();
    let span = match (r.from, r.to) {
        (Some(f), Some(t)) => format!("{} – {} ({:.0} min)", hhmmss(f), hhmmss(t), t.secs_since(f) / 60.0),
        _ => "empty".into(),
    };
    writeln!(so, "cellwarden replay {}", r.source)?;
    writeln!(
        so,
        "telemetry {span}: {} series ({} signal series), {} samples, {} spans",
        r.series,
        prepared.series.len(),
        r.samples,
        r.spans
    )?;
    writeln!(so)?;
    let mut incidents = r.incidents.iter();
    for e in &r.timeline {
        writeln!(so, "{}  {:<8} {}", hhmmss(e.t), e.kind, e.text)?;
        if e.kind == "incident" {
            if let Some(ir) = incidents.next() {
                if ir.incident.ranked_at != ir.incident.opened_at {
                    writeln!(so, "{:>22}ranked on telemetry up to {}:", "", hhmmss(ir.incident.ranked_at))?;
                }
                for (i, c) in ir.incident.candidates.iter().enumerate() {
                    let ev = c
                        .evidence
                        .first()
                        .map(|e| format!("{}: {}", e.source, e.detail))
                        .unwrap_or_default();
                    writeln!(
                        so,
                        "{:>22}{}. {:<40} {:<8} {:<14} {:.2}  {}",
                        "",
                        i + 1,
                        c.entity.name,
                        c.entity.kind.as_str(),
                        c.class.as_str(),
                        c.score,
                        ev
                    )?;
                }
            }
        }
    }
    writeln!(so)?;
    for ir in &r.incidents {
        writeln!(so, "{}: {}", ir.incident.id, ir.brief.summary)?;
    }
    let n = r.incidents.len();
    writeln!(
        so,
        "summary: {} anomalous points, {} warnings, {n} incident{} (plans are dry-run: nothing was changed)",
        r.anomalies_total,
        r.warnings.len(),
        if n == 1 { "" } else { "s" }
    )?;
    if let Some(out) = out {
        write_reports(out, r)?;
        writeln!(so, "wrote report.md, report.html and report.json in {}", out.display())?;
    }
    Ok(())
}

fn case_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// Replays and scores one case; `None` when it has no truth.yaml.
fn eval_case(dir: &Path, at_truth_start: bool, out: Option<&Path>, rules: &SignalRules) -> Result<Option<CaseScore>> {
    let fx = load_dir(dir).with_context(|| format!("cannot read fixture {}", dir.display()))?;
    let Some(truth) = fx.truth.clone() else { return Ok(None) };
    let prepared: Prepared<'_> = pipeline::prepare(&fx, rules);
    let outcome = drive::replay(&dir.display().to_string(), fx.topology.as_ref(), &prepared, &mut |_, _| {});
    let alarms = &outcome.report.incidents;
    let warning_times: Vec<Timestamp> = outcome.warnings.iter().map(|w| w.t).collect();
    let at_start = if at_truth_start {
        eval::truth_rank_window(&truth)
            .map(|(s, u)| pipeline::rank_at(&prepared, s, u, &[]))
            .or(Some(Vec::new()))
    } else {
        None
    };
    let name = case_name(dir);
    let score = eval::score_case(
        &name,
        &truth,
        &CaseRun {
            alarms,
            rank_after_secs: pipeline::RERANK_AFTER_SECS.iter().max().copied().unwrap_or(0),
            warning_times: &warning_times,
            from: outcome.report.from,
            to: outcome.report.to,
            at_truth_start: at_start,
        },
    );
    if let Some(out) = out {
        write_reports(&out.join(&name), &outcome.report)?;
    }
    Ok(Some(score))
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

pub fn run_eval(args: &[String], at_truth_start: bool, json: bool, out: Option<&Path>, rules: &SignalRules) -> Result<()> {
    let dirs = crate::discover::fixtures(args).map_err(anyhow::Error::msg)?;
    let pb = progress_bar(dirs.len() as u64, 2, "evaluating");
    let mut scores = Vec::new();
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    for d in &dirs {
        if let Some(pb) = &pb {
            pb.set_message(case_name(d));
        }
        match eval_case(d, at_truth_start, out, rules) {
            Ok(Some(s)) => scores.push(s),
            Ok(None) => skipped.push(case_name(d)),
            Err(e) => failures.push(format!("{}: {e:#}", d.display())),
        }
        if let Some(pb) = &pb {
            pb.inc(1);
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let summary = eval::summarise(&scores);
    let mut so = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({"summary": summary, "cases": scores});
        writeln!(so, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        print_table(&mut so, &scores, &summary, at_truth_start)?;
        for s in &skipped {
            writeln!(so, "skipped {s}: no truth.yaml")?;
        }
    }
    for f in &failures {
        eprintln!("error: {f}");
    }
    if !failures.is_empty() {
        bail!("{} of {} fixtures could not be evaluated", failures.len(), dirs.len());
    }
    if scores.is_empty() {
        bail!("no fixture with a truth.yaml among {} found", dirs.len());
    }
    Ok(())
}

fn print_table(so: &mut impl Write, scores: &[CaseScore], s: &Summary, at_truth_start: bool) -> std::io::Result<()> {
    writeln!(
        so,
        "{:<32} {:<16} {:>8} {:>9} {:>9} {:>5} {:>9} {:>7} {:>5}  top candidate",
        "case", "kind", "detected", "delay_s", "lead_s", "rank", "incidents", "repeats", "pages"
    )?;
    for c in scores {
        let top = c
            .top5
            .first()
            .map(|t| format!("{} ({})", t.entity, t.class))
            .unwrap_or_else(|| "-".into());
        let detected = if c.healthy {
            format!("{} FA", c.false_alarms)
        } else {
            if c.detected { "yes" } else { "no" }.to_string()
        };
        let or_dash = |healthy: bool, v: String| if healthy { "-".to_string() } else { v };
        writeln!(
            so,
            "{:<32} {:<16} {:>8} {:>9} {:>9} {:>5} {:>9} {:>7} {:>5}  {}",
            c.case,
            c.kind,
            detected,
            fmt_opt(c.delay_s, 0),
            fmt_opt(c.lead_s, 0),
            c.rank.map_or("-".into(), |r| r.to_string()),
            c.incidents.map_or("-".into(), |n| n.to_string()),
            or_dash(c.healthy, c.repeated_actions.to_string()),
            or_dash(c.healthy, c.pages.to_string()),
            top
        )?;
    }
    writeln!(so)?;
    writeln!(
        so,
        "ranking protocol: {}",
        if at_truth_start {
            "at the true fault start (telemetry up to its end)".to_string()
        } else {
            format!(
                "cellwarden's own first alarm in the detection window, as last ranked (at most {} s after it opened, on telemetry up to then)",
                pipeline::RERANK_AFTER_SECS.iter().max().copied().unwrap_or(0)
            )
        }
    )?;
    writeln!(
        so,
        "cases {} (faulty {}, healthy {}), detected {}",
        s.cases, s.faulty, s.healthy, s.detected
    )?;
    writeln!(
        so,
        "recall {}  false alarms/h {}  median delay {} s  median lead {} s",
        fmt_opt(s.recall, 3),
        fmt_opt(s.false_alarms_per_hour, 3),
        fmt_opt(s.median_delay_s, 0),
        fmt_opt(s.median_lead_s, 0)
    )?;
    writeln!(
        so,
        "AC@1 {}  AC@3 {}  Avg@5 {}",
        fmt_opt(s.ac1, 3),
        fmt_opt(s.ac3, 3),
        fmt_opt(s.avg5, 3)
    )?;
    writeln!(
        so,
        "incidents per fault {} (at most {} in one case)  repeated actions {}  pages per fault {}",
        fmt_opt(s.incidents_per_fault, 2),
        s.max_incidents_per_fault.map_or("-".into(), |n| n.to_string()),
        s.repeated_actions,
        fmt_opt(s.pages_per_fault, 2)
    )?;
    writeln!(
        so,
        "briefs naming the root cause {} of {} detected  impact within {:.0}% of the truth's failed payments/min {} of {} checked",
        s.summaries_naming_root_cause,
        s.detected,
        eval::IMPACT_TOLERANCE * 100.0,
        s.impacts_within_tolerance,
        s.impacts_checked
    )?;
    let checked: Vec<&CaseScore> = scores.iter().filter(|c| c.impact.is_some()).collect();
    if !checked.is_empty() {
        writeln!(
            so,
            "impact at the last ranking (failed payments/min, reported vs the truth's count of that minute):"
        )?;
        for c in checked {
            let i = c.impact.expect("filtered");
            writeln!(
                so,
                "  {:<32} {:>8} vs {:>8}  {}",
                c.case,
                units::number(i.reported_per_min),
                units::number(i.truth_per_min),
                if i.within_tolerance() { "ok" } else { "OFF" }
            )?;
        }
    }
    let mut kinds: Vec<&str> = scores.iter().filter(|c| !c.healthy).map(|c| c.kind.as_str()).collect();
    kinds.sort();
    kinds.dedup();
    if kinds.len() > 1 {
        writeln!(so, "by fault kind:")?;
        for k in kinds {
            let ranks: Vec<Option<usize>> = scores.iter().filter(|c| !c.healthy && c.kind == k).map(|c| c.rank).collect();
            writeln!(
                so,
                "  {:<16} n={:<3} AC@1 {}  AC@3 {}  Avg@5 {}",
                k,
                ranks.len(),
                fmt_opt(eval::ac_at(&ranks, 1), 3),
                fmt_opt(eval::ac_at(&ranks, 3), 3),
                fmt_opt(eval::avg_at(&ranks, 5), 3)
            )?;
        }
    }
    Ok(())
}

pub fn run_report(path: &Path, format: Format) -> Result<()> {
    // A folder `replay --out` or `simulate --out` wrote holds its report.json.
    let joined = path.join("report.json");
    let path = if path.is_dir() { joined.as_path() } else { path };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let report: Report = serde_json::from_str(&text).with_context(|| format!("{} is not a cellwarden report.json", path.display()))?;
    let rendered = match format {
        Format::Md => render::to_markdown(&report),
        Format::Html => cellwarden_remediator::html::to_html(&report),
        Format::Json => render::to_json(&report),
    };
    std::io::stdout().lock().write_all(rendered.as_bytes())?;
    Ok(())
}

fn scenario_or_list(id: &str, seed: Option<u64>) -> Result<cellwarden_simulator::Scenario> {
    cellwarden_simulator::scenario(id, seed).with_context(|| {
        format!(
            "no scenario {id:?}; known: {}",
            cellwarden_simulator::scenario::bundled_ids().join(", ")
        )
    })
}

pub fn run_simulate(id: &str, seed: Option<u64>, without: bool, with: bool, policies: &[String], out: Option<&Path>) -> Result<()> {
    use crate::simulate::SimPolicy;
    use cellwarden_engine::rules::RuleSet;
    let mut acting = Vec::new();
    for name in policies {
        let r = RuleSet::parse(name).ok_or_else(|| {
            let names: Vec<&str> = RuleSet::ALL.iter().map(|(_, n)| *n).collect();
            anyhow::anyhow!("unknown policy {name:?}; the rule sets are {}", names.join(", "))
        })?;
        if !acting.contains(&SimPolicy::Act(r)) {
            acting.push(SimPolicy::Act(r));
        }
    }
    if acting.is_empty() {
        acting = vec![SimPolicy::Act(RuleSet::Legacy), SimPolicy::Act(RuleSet::Current)];
    }
    let scn = scenario_or_list(id, seed)?;
    let mut so = std::io::stdout().lock();
    writeln!(
        so,
        "scenario {} (seed {}, {} cells, {} min): {}",
        scn.id,
        scn.cfg.seed,
        scn.cfg.cells,
        scn.cfg.duration_secs / 60,
        scn.description
    )?;
    if let Some(start) = scn.fault_start() {
        writeln!(so, "fault starts at +{} min ({start})", start.secs_since(scn.cfg.start) / 60.0)?;
    }
    let mut hows = Vec::new();
    if without {
        hows.push(SimPolicy::NoAction);
    }
    if with {
        hows.extend(acting);
    }
    let mut runs = Vec::new();
    for how in hows {
        let label = how.label();
        let pb = progress_bar(scn.steps() as u64, 0, &label);
        let r = crate::simulate::run(&scn, how, &mut |done, _| {
            if let Some(pb) = &pb {
                pb.set_position(done as u64);
            }
        });
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        runs.push((label, how != SimPolicy::NoAction, r));
    }
    let fault_start_secs = scn.faults.first().map(|f| f.at_secs);
    writeln!(so)?;
    write!(so, "{:<34}", "")?;
    for (label, _, _) in &runs {
        write!(so, "{label:>26}")?;
    }
    writeln!(so)?;
    let row = |so: &mut std::io::StdoutLock, name: &str, f: &dyn Fn(&crate::simulate::RunResult) -> String| -> std::io::Result<()> {
        write!(so, "{name:<34}")?;
        for (_, _, r) in &runs {
            write!(so, "{:>26}", f(r))?;
        }
        writeln!(so)
    };
    row(&mut so, "payments", &|r| format!("{:.0}", r.outcome.payments))?;
    row(&mut so, "failed payments", &|r| format!("{:.0}", r.outcome.failed_payments))?;
    row(&mut so, "minutes of SLO violation", &|r| {
        format!("{:.1}", r.outcome.slo_violation_secs / 60.0)
    })?;
    row(&mut so, "OOM kills", &|r| r.outcome.oom_kills.to_string())?;
    row(&mut so, "incidents opened", &|r| r.report.incidents.len().to_string())?;
    row(&mut so, "time to mitigate (first action)", &|r| match (
        fault_start_secs,
        r.outcome.actions.iter().find(|(t, _)| fault_start_secs.is_none_or(|s| *t >= s)),
    ) {
        (Some(s), Some((t, _))) => format!("{:.1} min", (t - s) as f64 / 60.0),
        (None, Some((t, _))) => format!("at +{:.1} min", *t as f64 / 60.0),
        _ => "-".into(),
    })?;
    for (label, act, r) in &runs {
        writeln!(so)?;
        writeln!(
            so,
            "{label}: {}",
            if *act {
                "what cellwarden did"
            } else {
                "what cellwarden would have done"
            }
        )?;
        if r.decisions.is_empty() {
            writeln!(so, "  nothing")?;
        }
        for d in &r.decisions {
            writeln!(so, "  {d}")?;
        }
        for ir in r.report.incidents.iter().take(5) {
            if let Some(c) = ir.incident.candidates.first() {
                writeln!(
                    so,
                    "  incident at +{:.1} min ranked {} ({}) first",
                    ir.incident.opened_at.secs_since(scn.cfg.start) / 60.0,
                    c.entity.name,
                    c.class.as_str()
                )?;
            }
        }
    }
    if let (Some(out), Some((_, _, r))) = (out, runs.last()) {
        write_reports(out, &r.report)?;
        writeln!(so, "wrote report.md, report.html and report.json in {}", out.display())?;
    }
    Ok(())
}

pub fn run_generate(out: &Path, only: &[String]) -> Result<()> {
    let ids: Vec<String> = if only.is_empty() {
        cellwarden_simulator::scenario::bundled_ids()
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        only.to_vec()
    };
    for id in &ids {
        let scn = scenario_or_list(id, None)?;
        let pb = progress_bar(scn.steps() as u64, 0, id);
        let fx = cellwarden_simulator::fixture::generate(&scn, &mut |done, _| {
            if let Some(pb) = &pb {
                pb.set_position(done as u64);
            }
        });
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        let dir = out.join(id);
        cellwarden_collector::fixture::write_dir(&dir, &fx, true).with_context(|| format!("cannot write {}", dir.display()))?;
        let size: u64 = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        println!(
            "{}: {} series, {} samples, {} spans, {:.2} MiB",
            dir.display(),
            fx.metrics.series().count(),
            fx.metrics.sample_count(),
            fx.spans.len(),
            size as f64 / 1_048_576.0
        );
    }
    Ok(())
}
