//! The scrape loop: Kubernetes pod discovery against the fake Kubernetes API (`fakekube`) through
//! the real kube-rs client — annotated running pods are found, others not; a discovered pod
//! (pointing at a local target) is scraped with the pod's labels on every series; and a dead
//! target is counted while the others go on.

mod prometheus_support;

use cellwarden_collector::ingest::{Ingest, IngestConfig};
use cellwarden_collector::pull::Clock;
use cellwarden_collector::scrape::{discover_pods, KubernetesDiscovery, ScrapeConfig, Scraper};
use cellwarden_models::Timestamp;
use fakekube::{FakeKube, Options};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use prometheus_support::Target as DemoTarget;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

async fn fake() -> (FakeKube, Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeKube::start(Options::default()).await.expect("fake starts");
    let mut cfg = Config::new(fake.url().parse().unwrap());
    cfg.default_namespace = "default".into();
    cfg.read_timeout = Some(Duration::from_secs(10));
    let client = Client::try_from(cfg).expect("client");
    (fake, client)
}

/// Creates a pod and sets its status (the API server, like the real one, takes status only
/// through the status subresource).
async fn pod(
    client: &Client,
    ns: &str,
    name: &str,
    labels: serde_json::Value,
    annotations: serde_json::Value,
    ip: Option<&str>,
    phase: &str,
) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let p: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "wallet:1", "ports": [{"containerPort": 8080}]}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &p).await.unwrap();
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": phase, "podIP": ip}})),
    )
    .await
    .unwrap();
}

async fn namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
}

fn discovery(value: serde_json::Value) -> KubernetesDiscovery {
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn annotated_running_pods_are_found_and_others_are_not() {
    let (_fake, client) = fake().await;
    namespace(&client, "cell-1").await;
    let scrape = json!({"prometheus.io/scrape": "true", "prometheus.io/port": "9102"});
    pod(
        &client,
        "cell-1",
        "ledger-a",
        json!({"app": "ledger"}),
        scrape.clone(),
        Some("10.0.0.1"),
        "Running",
    )
    .await;
    pod(
        &client,
        "cell-1",
        "ledger-b",
        json!({"app": "ledger"}),
        json!({}),
        Some("10.0.0.2"),
        "Running",
    )
    .await;
    pod(
        &client,
        "cell-1",
        "ledger-c",
        json!({"app": "ledger"}),
        scrape.clone(),
        None,
        "Pending",
    )
    .await;
    pod(
        &client,
        "cell-1",
        "loyalty-a",
        json!({"app": "loyalty"}),
        scrape.clone(),
        Some("10.0.0.4"),
        "Running",
    )
    .await;
    pod(
        &client,
        "default",
        "other-a",
        json!({"app": "ledger"}),
        scrape.clone(),
        Some("10.0.0.5"),
        "Running",
    )
    .await;

    // Annotation mode, one namespace: the annotated running pods of cell-1.
    let found = discover_pods(&client, &discovery(json!({"namespaces": ["cell-1"]}))).await.unwrap();
    let urls: Vec<&str> = found.iter().map(|t| t.url.as_str()).collect();
    assert_eq!(urls, ["http://10.0.0.1:9102/metrics", "http://10.0.0.4:9102/metrics"]);
    let labels: std::collections::BTreeMap<_, _> = found[0].labels.iter().cloned().collect();
    assert_eq!(labels["pod"], "ledger-a");
    assert_eq!(labels["namespace"], "cell-1");
    assert_eq!(labels["node"], "node-1");

    // All namespaces, narrowed by a label selector.
    let found = discover_pods(&client, &discovery(json!({"label_selector": "app=ledger"})))
        .await
        .unwrap();
    let pods: Vec<String> = found
        .iter()
        .map(|t| t.labels.iter().find(|(k, _)| k == "pod").unwrap().1.clone())
        .collect();
    assert_eq!(pods, ["ledger-a", "other-a"]);

    // Selector mode without the annotation: every running pod with an IP, port from the container.
    let found = discover_pods(
        &client,
        &discovery(json!({"namespaces": ["cell-1"], "label_selector": "app=ledger", "require_scrape_annotation": false})),
    )
    .await
    .unwrap();
    let urls: Vec<&str> = found.iter().map(|t| t.url.as_str()).collect();
    assert_eq!(urls, ["http://10.0.0.1:9102/metrics", "http://10.0.0.2:8080/metrics"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrape_loop_scrapes_discovered_pods_with_their_labels() {
    let (_fake, client) = fake().await;
    namespace(&client, "cell-2").await;
    let target = DemoTarget::start(None).await;
    let annotations = json!({"prometheus.io/scrape": "true", "prometheus.io/port": target.addr.port().to_string()});
    pod(
        &client,
        "cell-2",
        "ledger-x",
        json!({"app": "ledger", "cell": "cell-2"}),
        annotations,
        Some("127.0.0.1"),
        "Running",
    )
    .await;

    let cfg: ScrapeConfig = serde_json::from_value(json!({
        "scrape_interval_secs": 1,
        "kubernetes": {"namespaces": ["cell-2"], "copy_pod_labels": {"app": "service", "cell": "cell"}}
    }))
    .unwrap();
    let ingest = Arc::new(Ingest::new(IngestConfig::default()));
    let start_ms = 1_772_400_000_000i64;
    let calls = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let c = calls.clone();
    // Each read of the clock moves it 1 s, so successive scrapes get increasing timestamps.
    let clock: Clock = Arc::new(move || Timestamp(start_ms + 1000 * c.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
    let scraper = Scraper::new(cfg).unwrap();
    let run = scraper.run(ingest.clone(), Some(client), clock, tokio::time::sleep(Duration::from_millis(2500)));
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the loop stops on shutdown");

    let served = target.steps();
    assert!(served.len() >= 2, "scraped on each tick: {served:?}");
    let fams = ingest.families(Timestamp(0));
    let ok = fams
        .iter()
        .flat_map(|f| f.series.iter())
        .find(|s| s.key.metric == "demo_requests_total" && s.key.label("code") == Some("200"))
        .expect("the pod's series");
    assert_eq!(ok.key.label("pod"), Some("ledger-x"));
    assert_eq!(ok.key.label("namespace"), Some("cell-2"));
    assert_eq!(ok.key.label("service"), Some("ledger"));
    assert_eq!(ok.key.label("cell"), Some("cell-2"));
    assert_eq!(ok.key.label("job"), Some("kubernetes-pods"));
    let values: Vec<f64> = ok.samples.iter().map(|s| s.value).collect();
    let want: Vec<f64> = served.iter().map(|n| 10.0 * *n as f64).collect();
    // A scrape cut short by the shutdown may have been served but not stored.
    assert!(values.len() + 1 >= want.len() && values.len() >= 2, "{values:?} vs {want:?}");
    assert_eq!(values[..], want[..values.len()], "each served scrape stored once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_target_is_counted_and_logged_while_the_others_are_scraped() {
    let live = DemoTarget::start(None).await;
    let dead = format!("http://127.0.0.1:{}/metrics", prometheus_support::free_port());
    let cfg: ScrapeConfig = serde_json::from_value(json!({
        "scrape_interval_secs": 1,
        "scrape_timeout_secs": 1,
        "targets": [{"url": dead, "job": "gone"}, {"url": live.url(), "job": "demo"}]
    }))
    .unwrap();
    let ingest = Arc::new(Ingest::new(IngestConfig::default()));
    let scraper = Scraper::new(cfg).unwrap();
    let run = scraper.run(
        ingest.clone(),
        None,
        cellwarden_collector::pull::system_clock(),
        tokio::time::sleep(Duration::from_millis(1500)),
    );
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the loop stops on shutdown");

    assert!(!live.steps().is_empty(), "the live target was scraped");
    let fams = ingest.families(Timestamp(0));
    assert!(fams.iter().any(|f| f.name == "demo_requests"), "its series were stored");
    let mut registry = prometheus_client::registry::Registry::default();
    ingest.register_metrics(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let failed = text
        .lines()
        .find(|l| l.starts_with("collector_scrapes_failed_total") && l.contains(&dead))
        .unwrap_or_else(|| panic!("no failure counted for {dead}:\n{text}"));
    let n: f64 = failed.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 1.0, "{failed}");
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("collector_scrapes_failed_total") && l.contains(&live.url())),
        "the live target did not fail"
    );
}
