//! The Helm chart, rendered by the real `helm` v4 (the test script installs it and sets `HELM`):
//! its generated files match the code, its RBAC grants exactly what the operator uses, its
//! defaults are safe, its config is one cellwarden accepts, the README's example renders, and
//! real `kubectl` applies every rendered object to the fake API server.

use cellwarden_remediator::{crd, rbac};
use serde_yaml_ng::Value;
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

fn needed(cluster_wide: bool) -> BTreeSet<(String, String, String)> {
    rbac::RULES
        .iter()
        .filter(|r| r.cluster_wide == cluster_wide)
        .flat_map(|r| {
            r.verbs
                .iter()
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
        rbac::rules_yaml(true),
        "stale: cellwarden rbac --cluster > helm/cellwarden/files/rbac-cluster.yaml"
    );
    assert_eq!(
        read("rbac-namespace.yaml"),
        rbac::rules_yaml(false),
        "stale: cellwarden rbac > helm/cellwarden/files/rbac-namespace.yaml"
    );
}

#[test]
fn rendered_rbac_grants_exactly_what_the_operator_uses() {
    for values in [&[][..], &["ci/all-on-values.yaml"][..]] {
        let docs = render(values);
        let cluster = of_kind(&docs, "ClusterRole");
        let ns = of_kind(&docs, "Role");
        assert_eq!((cluster.len(), ns.len()), (1, 1));
        assert_eq!(grants(cluster[0]), needed(true), "ClusterRole differs from remediator/src/rbac.rs");
        assert_eq!(grants(ns[0]), needed(false), "Role differs from remediator/src/rbac.rs");
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
        // (kubectl's imperative `create` sends protobuf, which the fake does not speak: apply a manifest.)
        let ns = base.join("ns.yaml");
        std::fs::write(&ns, "apiVersion: v1\nkind: Namespace\nmetadata: {name: cellwarden}\n").unwrap();
        run(&["apply", "--validate=false"], Some(&ns));
        let rendered = base.join("rendered.yaml");
        let out = Command::new(&helm).args(["template", "cw"]).arg(&chart_dir).args(["--namespace", "cellwarden", "-f"]).arg(chart_dir.join("ci/all-on-values.yaml")).output().unwrap();
        assert!(out.status.success());
        std::fs::write(&rendered, out.stdout).unwrap();
        let applied = run(&["apply", "--validate=false"], Some(&rendered));
        assert_eq!(applied.lines().count(), 16, "{applied}");
        let got = run(&["get", "deployments,services,configmaps,roles,poddisruptionbudgets,networkpolicies,servicemonitors", "-n", "cellwarden", "-o", "name"], None);
        for want in ["deployment.apps/cw-cellwarden", "service/cw-cellwarden-receivers", "configmap/cw-cellwarden", "servicemonitor.monitoring.coreos.com/cw-cellwarden"] {
            assert!(got.contains(want), "{want} missing in {got}");
        }
        assert!(run(&["get", "crd", "-o", "name"], None).contains("incidents.cellwarden.io"));
    })
    .await
    .unwrap();
}
