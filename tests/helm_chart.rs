//! The Helm chart, rendered by the real `helm` v4 (the test script installs it and sets `HELM`):
//! its generated files match the code, its RBAC grants exactly what the operator uses, its
//! defaults are safe, its config is one cellwarden accepts, the README's example renders, and
//! real `kubectl` applies every rendered object to the fake API server, and the default config,
//! run against the fake API server, scrapes an annotated pod.

use cellwarden_remediator::{crd, rbac};
use serde_yaml_ng::Value;

mod support;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("helm/cellwarden")
}

fn tool(var: &str, name: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(name));
    let args: &[&str] = if name == "kubectl" {
        &["version", "--client"]
    } else {
        &["version"]
    };
    let ok = Command::new(&path).args(args).output().map(|o| o.status.success()).unwrap_or(false);
    assert!(
        ok,
        "{name} not found at {}: run scripts/test.sh (it installs helm and kubectl and sets {var})",
        path.display()
    );
    path
}

fn render(values: &[&str]) -> Vec<Value> {
    render_with(values, &[]).unwrap_or_else(|e| panic!("helm template failed: {e}"))
}

/// `helm template` with values files (in the chart) and `--set` pairs: the objects, or helm's error.
fn render_with(values: &[&str], sets: &[&str]) -> Result<Vec<Value>, String> {
    let mut cmd = Command::new(tool("HELM", "helm"));
    cmd.args(["template", "cw"]).arg(chart()).args(["--namespace", "cellwarden"]);
    for v in values {
        cmd.arg("-f").arg(chart().join(v));
    }
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    Ok(text
        .split("\n---")
        .filter_map(|d| serde_yaml_ng::from_str::<Value>(d).ok())
        .filter(|v| v.get("kind").is_some())
        .collect())
}

/// The config a rendering's ConfigMap holds, loaded (and checked) as `cellwarden run` would.
fn rendered_config(docs: &[Value]) -> Result<cellwarden::run::Config, String> {
    let cm = of_kind(docs, "ConfigMap")[0];
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cellwarden.yaml");
    std::fs::write(&p, cm["data"]["cellwarden.yaml"].as_str().unwrap()).unwrap();
    cellwarden::run::Config::load(&p).map_err(|e| format!("{e:#}"))
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"].as_str() == Some(kind)).collect()
}

/// (group, resource, verb) triples a Role or ClusterRole grants.
fn grants(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_sequence().unwrap() {
        for g in rule["apiGroups"].as_sequence().unwrap() {
            for r in rule["resources"].as_sequence().unwrap() {
                for v in rule["verbs"].as_sequence().unwrap() {
                    out.insert((g.as_str().unwrap().into(), r.as_str().unwrap().into(), v.as_str().unwrap().into()));
                }
            }
        }
    }
    out
}

fn needed(cluster_wide: bool, acting: bool) -> BTreeSet<(String, String, String)> {
    rbac::RULES
        .iter()
        .filter(|r| r.cluster_wide == cluster_wide)
        .flat_map(|r| {
            rbac::verbs(r, acting)
                .into_iter()
                .map(move |v| (r.api_group.to_string(), r.resource.to_string(), v.to_string()))
        })
        .collect()
}

#[test]
fn generated_chart_files_match_the_code() {
    let read = |f: &str| std::fs::read_to_string(chart().join("files").join(f)).unwrap();
    assert_eq!(
        read("crds.yaml"),
        crd::crds_yaml(),
        "helm/cellwarden/files/crds.yaml is stale: cellwarden crd > helm/cellwarden/files/crds.yaml"
    );
    assert_eq!(
        read("rbac-cluster.yaml"),
        rbac::rules_yaml(true, true),
        "stale: cellwarden rbac --cluster > helm/cellwarden/files/rbac-cluster.yaml"
    );
    assert_eq!(
        read("rbac-cluster-dry-run.yaml"),
        rbac::rules_yaml(true, false),
        "stale: cellwarden rbac --cluster --mode dry-run > helm/cellwarden/files/rbac-cluster-dry-run.yaml"
    );
    assert_eq!(
        read("rbac-namespace.yaml"),
        rbac::rules_yaml(false, true),
        "stale: cellwarden rbac > helm/cellwarden/files/rbac-namespace.yaml"
    );
    assert_eq!(
        rbac::rules_yaml(false, true),
        rbac::rules_yaml(false, false),
        "the Role holds only cellwarden's own objects"
    );
}

#[test]
fn rendered_rbac_grants_exactly_what_the_operator_uses() {
    // The defaults are dry-run; all-on acts.
    for (values, acting) in [(&[][..], false), (&["ci/all-on-values.yaml"][..], true)] {
        let docs = render(values);
        let cluster = of_kind(&docs, "ClusterRole");
        let ns = of_kind(&docs, "Role");
        assert_eq!((cluster.len(), ns.len()), (1, 1));
        assert_eq!(
            grants(cluster[0]),
            needed(true, acting),
            "ClusterRole differs from remediator/src/rbac.rs"
        );
        assert_eq!(grants(ns[0]), needed(false, acting), "Role differs from remediator/src/rbac.rs");
        // In dry-run, no write verb on what the operator would change.
        let writes: Vec<_> = grants(cluster[0])
            .into_iter()
            .filter(|(g, r, v)| rbac::ACTED_ON.contains(&(g.as_str(), r.as_str())) && rbac::WRITE_VERBS.contains(&v.as_str()))
            .collect();
        assert_eq!(writes.is_empty(), !acting, "{values:?}: writes granted {writes:?}");
        for role in cluster.iter().chain(ns.iter()) {
            assert!(
                !grants(role).iter().any(|(g, r, v)| g == "*" || r == "*" || v == "*"),
                "no wildcards"
            );
        }
    }
}

#[test]
fn defaults_are_safe_and_highly_available() {
    let docs = render(&[]);
    let dep = of_kind(&docs, "Deployment")[0];
    assert_eq!(dep["spec"]["replicas"].as_u64(), Some(2));
    let pod = &dep["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0].as_str(), Some("ALL"));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"].as_str(), Some("/healthz"));
    assert_eq!(c["readinessProbe"]["httpGet"]["path"].as_str(), Some("/readyz"));
    assert!(c["resources"]["limits"]["memory"].as_str().is_some());
    assert!(pod["volumes"].as_sequence().unwrap().iter().any(|v| v["emptyDir"].is_mapping()));
    // The receivers Service selects the leader only.
    let svc = of_kind(&docs, "Service")
        .into_iter()
        .find(|s| s["metadata"]["name"].as_str().unwrap().ends_with("-receivers"))
        .unwrap();
    assert_eq!(svc["spec"]["selector"]["cellwarden.io/leader"].as_str(), Some("true"));
    assert_eq!(of_kind(&docs, "PodDisruptionBudget").len(), 1);
    // The two replicas spread across zones.
    let spread = &pod["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"].as_str(), Some("topology.kubernetes.io/zone"));
    assert_eq!(spread["maxSkew"].as_u64(), Some(1));
    assert!(spread["labelSelector"]["matchLabels"].as_mapping().is_some_and(|m| !m.is_empty()));
    assert!(of_kind(&docs, "ServiceMonitor").is_empty() && of_kind(&docs, "NetworkPolicy").is_empty());
    // The rendered config is one cellwarden accepts, in dry-run.
    let cfg = rendered_config(&docs).unwrap();
    assert_eq!((cfg.mode.as_str(), cfg.namespace.as_str()), ("dry-run", "cellwarden"));
}

/// values.schema.json: a bad `mode` fails `helm lint --strict` (and so install), not as a crash loop.
#[test]
fn a_bad_mode_fails_helm_lint_through_the_schema() {
    let lint = |set: &str| {
        Command::new(tool("HELM", "helm"))
            .args(["lint", "--strict"])
            .arg(chart())
            .args(["--set", set])
            .output()
            .unwrap()
    };
    let bad = lint("config.mode=dryrun");
    let stderr = String::from_utf8_lossy(&bad.stdout).into_owned() + &String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "helm lint accepted mode dryrun: {stderr}");
    assert!(stderr.contains("mode"), "the error names the key: {stderr}");
    let good = lint("config.mode=observe");
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stdout));
    assert!(
        render_with(&[], &["config.mode=acts"]).is_err(),
        "helm template checks the schema too"
    );
}

#[test]
fn the_receivers_require_a_generated_token_and_the_pod_stops_within_its_grace_period() {
    let docs = render(&[]);
    let secret = of_kind(&docs, "Secret")
        .into_iter()
        .find(|s| s["metadata"]["name"].as_str() == Some("cw-cellwarden-receiver-token"))
        .expect("a token Secret");
    assert!(secret["data"]["token"].as_str().is_some_and(|t| t.len() >= 32), "{secret:?}");
    let pod = &of_kind(&docs, "Deployment")[0]["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["secret"]["secretName"].as_str() == Some("cw-cellwarden-receiver-token"))
        .expect("the Secret is a volume");
    let mount = pod["containers"][0]["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("and mounted");
    let cfg = rendered_config(&docs).unwrap();
    let token_file = cfg.receivers.bearer_token_file.clone().expect("the config names the token file");
    assert_eq!(
        token_file,
        Path::new(mount["mountPath"].as_str().unwrap()).join(volume["secret"]["items"][0]["path"].as_str().unwrap())
    );
    assert_eq!(mount["readOnly"].as_bool(), Some(true));
    // SIGTERM: cellwarden's own grace period ends before the kubelet's.
    let kubelet_grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds is set");
    assert!(
        cfg.shutdown_grace_secs < kubelet_grace,
        "{} vs {kubelet_grace}",
        cfg.shutdown_grace_secs
    );
    // Act mode (all-on values) starts with the token; without it, the render fails unless told.
    let act = rendered_config(&render(&["ci/all-on-values.yaml"])).unwrap();
    assert_eq!(act.mode, cellwarden_models::Mode::Act);
    assert!(act.receivers.bearer_token_file.is_some());
    let err = render_with(&["ci/all-on-values.yaml"], &["receiverToken.enabled=false"]).unwrap_err();
    assert!(err.contains("insecure_receivers"), "{err}");
    let open = render_with(
        &["ci/all-on-values.yaml"],
        &["receiverToken.enabled=false", "config.insecure_receivers=true"],
    )
    .unwrap();
    assert!(of_kind(&open, "Secret").is_empty());
    assert!(rendered_config(&open).unwrap().receivers.bearer_token_file.is_none());
    // A Secret of one's own replaces the generated one.
    let own = render_with(&[], &["receiverToken.existingSecret=wallet-push-token"]).unwrap();
    assert!(of_kind(&own, "Secret").is_empty());
    let text = serde_yaml_ng::to_string(&of_kind(&own, "Deployment")[0]).unwrap();
    assert!(text.contains("secretName: wallet-push-token"), "{text}");
    let err = render_with(&[], &["config.shutdown_grace_secs=30"]).unwrap_err();
    assert!(err.contains("terminationGracePeriodSeconds"), "{err}");
}

#[test]
fn the_sender_examples_present_the_chart_token() {
    let readme = std::fs::read_to_string(chart().join("README.md")).unwrap();
    for f in ["alertmanager.yml", "otel-collector.yaml", "prometheus-remote-write.yaml"] {
        let text = std::fs::read_to_string(chart().join("examples/senders").join(f)).unwrap();
        let example: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(text.contains("cellwarden-receiver-token"), "{f} names the Secret");
        assert!(
            text.contains("cellwarden-receivers.cellwarden.svc:4318"),
            "{f} sends to the receivers Service"
        );
        let flat = serde_yaml_ng::to_string(&example).unwrap();
        assert!(flat.contains("Bearer"), "{f} presents a bearer token");
        assert!(readme.contains(&format!("examples/senders/{f}")), "the README shows {f}");
    }
}

#[test]
fn optional_parts_and_the_readme_example_render() {
    let docs = render(&["ci/all-on-values.yaml"]);
    assert_eq!(of_kind(&docs, "ServiceMonitor").len(), 1);
    assert_eq!(of_kind(&docs, "NetworkPolicy").len(), 1);
    // The PrometheusRule's groups are rules Prometheus' own promtool accepts.
    let rules = of_kind(&docs, "PrometheusRule");
    assert_eq!(rules.len(), 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, serde_yaml_ng::to_string(&rules[0]["spec"]).unwrap()).unwrap();
    let promtool = std::env::var("PROMTOOL_BIN").unwrap_or_else(|_| "promtool".into());
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {promtool} ({e}); run scripts/test.sh or `apt-get install -y prometheus`"));
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let example = render(&["examples/four-cell-wallet.yaml"]);
    let cm = of_kind(&example, "ConfigMap")[0];
    assert!(cm["data"]["cellwarden.yaml"].as_str().unwrap().contains("cell-4"));
    let readme = std::fs::read_to_string(chart().join("README.md")).unwrap();
    assert!(
        readme.contains("examples/four-cell-wallet.yaml"),
        "the README's install example uses the file rendered here"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_the_rendered_chart_to_the_fake_api_server() {
    let fake = fakekube::FakeKube::start(fakekube::Options::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, fake.kubeconfig()).unwrap();
    let helm = tool("HELM", "helm");
    let kubectl = tool("KUBECTL", "kubectl");
    let chart_dir = chart();
    let base = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let run = |args: &[&str], input: Option<&Path>| {
            let mut cmd = Command::new(&kubectl);
            cmd.env("KUBECONFIG", &kc).args(args);
            if let Some(f) = input {
                cmd.arg("-f").arg(f);
            }
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "kubectl {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        // The ServiceMonitor kind exists where the Prometheus Operator runs; register it first.
        let sm_crd = base.join("servicemonitor-crd.yaml");
        std::fs::write(&sm_crd, "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: servicemonitors.monitoring.coreos.com}\nspec:\n  group: monitoring.coreos.com\n  scope: Namespaced\n  names: {plural: servicemonitors, singular: servicemonitor, kind: ServiceMonitor}\n  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]\n").unwrap();
        run(&["apply", "--validate=false"], Some(&sm_crd));
        let pr_crd = base.join("prometheusrule-crd.yaml");
        std::fs::write(&pr_crd, "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: prometheusrules.monitoring.coreos.com}\nspec:\n  group: monitoring.coreos.com\n  scope: Namespaced\n  names: {plural: prometheusrules, singular: prometheusrule, kind: PrometheusRule}\n  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]\n").unwrap();
        run(&["apply", "--validate=false"], Some(&pr_crd));
        // (kubectl's imperative `create` sends protobuf, which the fake does not speak: apply a manifest.)
        let ns = base.join("ns.yaml");
        std::fs::write(&ns, "apiVersion: v1\nkind: Namespace\nmetadata: {name: cellwarden}\n").unwrap();
        run(&["apply", "--validate=false"], Some(&ns));
        let rendered = base.join("rendered.yaml");
        let out = Command::new(&helm).args(["template", "cw"]).arg(&chart_dir).args(["--namespace", "cellwarden", "-f"]).arg(chart_dir.join("ci/all-on-values.yaml")).output().unwrap();
        assert!(out.status.success());
        std::fs::write(&rendered, out.stdout).unwrap();
        let applied = run(&["apply", "--validate=false"], Some(&rendered));
        assert_eq!(applied.lines().count(), 17, "{applied}");
        let got = run(&["get", "deployments,services,configmaps,roles,poddisruptionbudgets,networkpolicies,servicemonitors", "-n", "cellwarden", "-o", "name"], None);
        for want in ["deployment.apps/cw-cellwarden", "service/cw-cellwarden-receivers", "configmap/cw-cellwarden", "servicemonitor.monitoring.coreos.com/cw-cellwarden"] {
            assert!(got.contains(want), "{want} missing in {got}");
        }
        assert!(run(&["get", "crd", "-o", "name"], None).contains("incidents.cellwarden.io"));
    })
    .await
    .unwrap();
}

/// A Prometheus text exposition on 127.0.0.1 (a pod's `/metrics`): the port, and how many
/// scrapes it answered.
fn exposition_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for mut conn in tcp.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1.5e8\n";
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, hits)
}

/// The default values end to end: the config `helm template` renders — only its listeners and
/// token path moved to this machine — run against the fake API server, where a running pod in
/// cell-1 is annotated `prometheus.io/scrape`/`port` and serves metrics on 127.0.0.1. The daemon
/// finds the pod, scrapes it, and its series become signal series; no no-signal warning comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_config_scrapes_an_annotated_pod_against_the_fake_api() {
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    use kube::api::{Api, Patch, PatchParams, PostParams};
    let docs = render(&[]);
    let text = of_kind(&docs, "ConfigMap")[0]["data"]["cellwarden.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    let mut cfg: Value = serde_yaml_ng::from_str(&text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken-of-the-test").unwrap();
    let (admin, recv) = (support::free_port(), support::free_port());
    cfg["admin_listen"] = Value::from(format!("127.0.0.1:{admin}"));
    cfg["receivers"]["listen"] = Value::from(format!("127.0.0.1:{recv}"));
    cfg["receivers"]["bearer_token_file"] = Value::from(token.display().to_string());
    assert!(
        cfg["scrape"]["kubernetes"].is_mapping(),
        "the default config discovers pods: {text}"
    );
    let path = dir.path().join("cellwarden.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();

    let fake = fakekube::FakeKube::start(fakekube::Options::default()).await.unwrap();
    let c = support::client(&fake).await;
    support::install_crds(&c).await;
    let nss: Api<Namespace> = Api::all(c.clone());
    for name in ["cellwarden", "cell-1"] {
        let ns = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        nss.create(&PostParams::default(), &ns).await.unwrap();
    }
    let (port, hits) = exposition_server();
    let pods: Api<Pod> = Api::namespaced(c.clone(), "cell-1");
    let pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "ledger-0", "labels": {"app.kubernetes.io/name": "ledger"},
                     "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": port.to_string()}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "ledger", "image": "wallet/ledger:1"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    pods.patch_status(
        "ledger-0",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": {"phase": "Running", "podIP": "127.0.0.1"}})),
    )
    .await
    .unwrap();
    // The operator may do only what the rendered ClusterRole and Role (dry-run) grant.
    let as_grants = |role: &Value, namespace: Option<String>| {
        grants(role).into_iter().map(move |(group, resource, verb)| fakekube::rbac::Grant {
            group,
            resource,
            verb,
            namespace: namespace.clone(),
        })
    };
    let rbac: Vec<_> = as_grants(of_kind(&docs, "ClusterRole")[0], None)
        .chain(as_grants(of_kind(&docs, "Role")[0], Some("cellwarden".into())))
        .collect();
    fake.enforce_rbac(support::OPERATOR_TOKEN, rbac);
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, fake.kubeconfig_with_token(support::OPERATOR_TOKEN)).unwrap();

    let d = support::live::Daemon::spawn(&path, &kc, admin, recv);
    // The first scrape comes at once; the first step after evaluate_every_secs (15 s).
    let took = support::live::wait_for(
        "the pod's series become signals",
        std::time::Duration::from_secs(90),
        || d.logs(),
        async || d.metric("cellwarden_signal_series").is_some_and(|n| n > 0.0),
    )
    .await;
    assert!(
        hits.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the pod was never scraped:\n{}",
        d.logs()
    );
    // An alert with the chart's token opens a dry-run incident: its Incident, Events and plan
    // are written under the dry-run RBAC, and nothing is refused.
    let (status, body) = support::live::request(
        recv,
        "/api/v1/alerts",
        &[("Content-Type", "application/json"), ("Authorization", "Bearer t0ken-of-the-test")],
        support::live::alert("LedgerHighMemory").as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let incidents: Api<cellwarden_remediator::crd::Incident> = Api::namespaced(c.clone(), "cellwarden");
    support::live::wait_for(
        "the dry-run Incident",
        std::time::Duration::from_secs(60),
        || d.logs(),
        async || incidents.list(&Default::default()).await.is_ok_and(|l| !l.items.is_empty()),
    )
    .await;
    assert_eq!(
        fake.refused(),
        Vec::<String>::new(),
        "calls the rendered RBAC does not grant:\n{}",
        d.logs()
    );
    // Every metric the PrometheusRule alerts on is one the daemon exposes (a sample of +Inf,
    // refused, brings the rejection counter's family out).
    use cellwarden_collector::receive::remote_write::{self, proto};
    let inf = remote_write::encode(&proto::WriteRequest {
        timeseries: vec![proto::TimeSeries {
            labels: vec![
                proto::Label::new("__name__", "process_resident_memory_bytes"),
                proto::Label::new("pod", "x"),
            ],
            samples: vec![proto::Sample {
                value: f64::INFINITY,
                timestamp: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as i64,
            }],
            histograms: vec![],
        }],
        metadata: vec![],
    });
    let headers = [
        ("Content-Type", "application/x-protobuf"),
        ("Content-Encoding", "snappy"),
        ("Authorization", "Bearer t0ken-of-the-test"),
    ];
    let (status, body) = support::live::request(recv, "/api/v1/write", &headers, &inf);
    assert!(status < 500, "{status} {body}");
    let (_, exposed) = support::live::http(admin, "/metrics", "");
    let all_on = render(&["ci/all-on-values.yaml"]);
    let rule_text = serde_yaml_ng::to_string(&of_kind(&all_on, "PrometheusRule")[0]["spec"]).unwrap();
    for name in rule_text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("cellwarden_"))
    {
        let family = name.trim_end_matches("_total");
        assert!(
            exposed.contains(&format!("# TYPE {family} ")),
            "{name} is not on /metrics:\n{exposed}"
        );
    }
    let logs = d.logs();
    assert!(!logs.contains("No signal series arrived"), "{logs}");
    assert!(!logs.contains("ERROR"), "{logs}");
    println!("default config: the annotated pod's series became signals after {took:?}");
}
