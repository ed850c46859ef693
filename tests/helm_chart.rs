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
    let mut cmd = Command::new(tool("HELM", "helm"));
    cmd.args(["template", "cw"]).arg(chart()).args(["--namespace", "cellwarden"]);
    for v in values {
        cmd.arg("-f").arg(chart().join(v));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.split("\n---")
        .filter_map(|d| serde_yaml_ng::from_str::<Value>(d).ok())
        .filter(|v| v.get("kind").is_some())
        .collect()
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
    assert!(of_kind(&docs, "ServiceMonitor").is_empty() && of_kind(&docs, "NetworkPolicy").is_empty());
    // The rendered config is one cellwarden accepts, in dry-run.
    let cm = of_kind(&docs, "ConfigMap")[0];
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cellwarden.yaml");
    std::fs::write(&p, cm["data"]["cellwarden.yaml"].as_str().unwrap()).unwrap();
    let cfg = cellwarden::run::Config::load(&p).unwrap();
    assert_eq!((cfg.mode.as_str(), cfg.namespace.as_str()), ("dry-run", "cellwarden"));
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
        assert_eq!(applied.lines().count(), 15, "{applied}");
        let got = run(&["get", "deployments,services,configmaps,roles,poddisruptionbudgets,networkpolicies,servicemonitors", "-n", "cellwarden", "-o", "name"], None);
        for want in ["deployment.apps/cw-cellwarden", "service/cw-cellwarden-receivers", "configmap/cw-cellwarden", "servicemonitor.monitoring.coreos.com/cw-cellwarden"] {
            assert!(got.contains(want), "{want} missing in {got}");
        }
        assert!(run(&["get", "crd", "-o", "name"], None).contains("incidents.cellwarden.io"));
    })
    .await
    .unwrap();
}
