//! One test per profile shipped with the binary: an exposition sample written from the project's
//! documented metric names (two scrapes, 30 s apart) is read into the signals the profile
//! promises, for the entity it names, by that profile's rules and not by a guess. Plus the
//! inferences, on names no rule has.

use super::rules::{Origin, SignalRules};
use super::{explain, Derivation, Fate};
use cellwarden_models::openmetrics::{parse, ParseOptions};
use cellwarden_models::{Entity, EntityKind, Signal};

fn derive_text(text: &str) -> Derivation {
    let expo = parse(std::io::Cursor::new(text), ParseOptions { require_timestamps: true }).expect("the sample parses");
    explain(&expo.families, &SignalRules::default())
}

/// The one signal series of `signal` for `entity`, its last value, and the rule that made it.
fn read_one(d: &Derivation, signal: Signal, entity: &Entity) -> (f64, Origin) {
    let found: Vec<_> = d
        .series
        .iter()
        .filter(|s| s.signal == signal && s.entity.as_ref() == Some(entity))
        .collect();
    assert_eq!(found.len(), 1, "{signal:?} of {entity:?}: {:#?}", d.series);
    let s = found[0];
    let origin = d
        .fates
        .iter()
        .find_map(|f| match &f.fate {
            Fate::Read { by, into } if into.iter().any(|(_, k)| *k == s.key) => Some(by.origin.clone()),
            _ => None,
        })
        .expect("a fate for the series");
    (s.points.last().expect("points").value, origin)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

fn assert_read(d: &Derivation, signal: Signal, entity: &Entity, value: f64, profile: &'static str) {
    let (v, origin) = read_one(d, signal, entity);
    assert!(close(v, value), "{signal:?} of {entity:?}: {v} != {value}");
    assert_eq!(origin, Origin::Profile(profile), "{signal:?} of {entity:?}");
}

fn svc(cell: &str, name: &str) -> Entity {
    Entity::service(Some(cell), name)
}

#[test]
fn opentelemetry_http_client_rpc_db_and_messaging() {
    let d = derive_text(concat!(
        "# TYPE http_client_request_duration_seconds histogram\n",
        "http_client_request_duration_seconds_sum{service_name=\"payments\",service_namespace=\"cell-1\",http_request_method=\"POST\",server_address=\"provider-a\"} 0 0\n",
        "http_client_request_duration_seconds_sum{service_name=\"payments\",service_namespace=\"cell-1\",http_request_method=\"POST\",server_address=\"provider-a\"} 12 30\n",
        "http_client_request_duration_seconds_count{service_name=\"payments\",service_namespace=\"cell-1\",http_request_method=\"POST\",server_address=\"provider-a\"} 0 0\n",
        "http_client_request_duration_seconds_count{service_name=\"payments\",service_namespace=\"cell-1\",http_request_method=\"POST\",server_address=\"provider-a\"} 60 30\n",
        "# TYPE rpc_server_duration_milliseconds histogram\n",
        "rpc_server_duration_milliseconds_sum{service_name=\"ledger\",service_namespace=\"cell-1\",rpc_system=\"grpc\",rpc_method=\"Post\"} 0 0\n",
        "rpc_server_duration_milliseconds_sum{service_name=\"ledger\",service_namespace=\"cell-1\",rpc_system=\"grpc\",rpc_method=\"Post\"} 4000 30\n",
        "rpc_server_duration_milliseconds_count{service_name=\"ledger\",service_namespace=\"cell-1\",rpc_system=\"grpc\",rpc_method=\"Post\"} 0 0\n",
        "rpc_server_duration_milliseconds_count{service_name=\"ledger\",service_namespace=\"cell-1\",rpc_system=\"grpc\",rpc_method=\"Post\"} 100 30\n",
        "# TYPE db_client_operation_duration_seconds histogram\n",
        "db_client_operation_duration_seconds_sum{service_name=\"ledger\",service_namespace=\"cell-1\",db_system=\"postgresql\",db_namespace=\"ledgerdb\",db_operation_name=\"SELECT\"} 0 0\n",
        "db_client_operation_duration_seconds_sum{service_name=\"ledger\",service_namespace=\"cell-1\",db_system=\"postgresql\",db_namespace=\"ledgerdb\",db_operation_name=\"SELECT\"} 3 30\n",
        "db_client_operation_duration_seconds_count{service_name=\"ledger\",service_namespace=\"cell-1\",db_system=\"postgresql\",db_namespace=\"ledgerdb\",db_operation_name=\"SELECT\"} 0 0\n",
        "db_client_operation_duration_seconds_count{service_name=\"ledger\",service_namespace=\"cell-1\",db_system=\"postgresql\",db_namespace=\"ledgerdb\",db_operation_name=\"SELECT\"} 300 30\n",
        "# TYPE messaging_process_duration_seconds histogram\n",
        "messaging_process_duration_seconds_sum{service_name=\"consumer\",service_namespace=\"cell-1\",messaging_system=\"kafka\",messaging_consumer_group_name=\"payment-events-consumer\"} 0 0\n",
        "messaging_process_duration_seconds_sum{service_name=\"consumer\",service_namespace=\"cell-1\",messaging_system=\"kafka\",messaging_consumer_group_name=\"payment-events-consumer\"} 1 30\n",
        "messaging_process_duration_seconds_count{service_name=\"consumer\",service_namespace=\"cell-1\",messaging_system=\"kafka\",messaging_consumer_group_name=\"payment-events-consumer\"} 0 0\n",
        "messaging_process_duration_seconds_count{service_name=\"consumer\",service_namespace=\"cell-1\",messaging_system=\"kafka\",messaging_consumer_group_name=\"payment-events-consumer\"} 50 30\n",
        "# EOF\n"
    ));
    let p = "opentelemetry";
    assert_read(&d, Signal::ClientLatency, &svc("cell-1", "payments"), 0.2, p);
    assert_read(&d, Signal::Latency, &svc("cell-1", "ledger"), 0.04, p);
    assert_read(&d, Signal::Latency, &svc("cell-1", "ledgerdb"), 0.01, p);
    assert_read(&d, Signal::Latency, &svc("cell-1", "payment-events-consumer"), 0.02, p);
}

#[test]
fn prometheus_client_defaults_and_http_conventions() {
    let pod = "namespace=\"cell-2\",pod=\"wallet-api-7d9f8b6c5d-x2x7q\"";
    let d = derive_text(&format!(
        "# TYPE process_resident_memory_bytes gauge\n\
         process_resident_memory_bytes{{{pod}}} 1.5e8 0\n\
         process_resident_memory_bytes{{{pod}}} 2.0e8 30\n\
         # TYPE process_cpu_seconds counter\n\
         process_cpu_seconds_total{{{pod}}} 100 0\n\
         process_cpu_seconds_total{{{pod}}} 115 30\n\
         # TYPE http_requests counter\n\
         http_requests_total{{{pod},handler=\"/pay\",code=\"200\"}} 0 0\n\
         http_requests_total{{{pod},handler=\"/pay\",code=\"200\"}} 270 30\n\
         http_requests_total{{{pod},handler=\"/pay\",code=\"503\"}} 0 0\n\
         http_requests_total{{{pod},handler=\"/pay\",code=\"503\"}} 30 30\n\
         # EOF\n"
    ));
    let wallet = svc("cell-2", "wallet-api");
    let p = "prometheus-client";
    assert_read(&d, Signal::Memory, &wallet, 2.0e8, p);
    assert_read(&d, Signal::Cpu, &wallet, 0.5, p);
    assert_read(&d, Signal::RequestRate, &wallet, 10.0, p);
    assert_read(&d, Signal::ErrorRatio, &wallet, 0.1, p);
}

#[test]
fn micrometer_spring_boot_timers_heap_and_cpu() {
    let app = "application=\"payments\",namespace=\"cell-3\"";
    let d = derive_text(&format!(
        "# TYPE http_server_requests_seconds histogram\n\
         http_server_requests_seconds_sum{{{app},method=\"POST\",uri=\"/pay\",status=\"200\",outcome=\"SUCCESS\",exception=\"None\"}} 0 0\n\
         http_server_requests_seconds_sum{{{app},method=\"POST\",uri=\"/pay\",status=\"200\",outcome=\"SUCCESS\",exception=\"None\"}} 25 30\n\
         http_server_requests_seconds_count{{{app},method=\"POST\",uri=\"/pay\",status=\"200\",outcome=\"SUCCESS\",exception=\"None\"}} 0 0\n\
         http_server_requests_seconds_count{{{app},method=\"POST\",uri=\"/pay\",status=\"200\",outcome=\"SUCCESS\",exception=\"None\"}} 100 30\n\
         # TYPE jvm_memory_used_bytes gauge\n\
         jvm_memory_used_bytes{{{app},area=\"heap\",id=\"G1 Old Gen\"}} 3.0e8 0\n\
         jvm_memory_used_bytes{{{app},area=\"heap\",id=\"G1 Old Gen\"}} 3.5e8 30\n\
         jvm_memory_used_bytes{{{app},area=\"nonheap\",id=\"Metaspace\"}} 9.0e7 0\n\
         jvm_memory_used_bytes{{{app},area=\"nonheap\",id=\"Metaspace\"}} 9.0e7 30\n\
         # TYPE jvm_memory_max_bytes gauge\n\
         jvm_memory_max_bytes{{{app},area=\"heap\",id=\"G1 Old Gen\"}} 1.0e9 0\n\
         jvm_memory_max_bytes{{{app},area=\"heap\",id=\"G1 Old Gen\"}} 1.0e9 30\n\
         # TYPE process_cpu_usage gauge\n\
         process_cpu_usage{{{app}}} 0.25 0\n\
         process_cpu_usage{{{app}}} 0.5 30\n\
         # EOF\n"
    ));
    let pay = svc("cell-3", "payments");
    let p = "micrometer";
    assert_read(&d, Signal::Latency, &pay, 0.25, p);
    assert_read(&d, Signal::Memory, &pay, 3.5e8, p);
    assert_read(&d, Signal::MemoryLimit, &pay, 1.0e9, p);
    assert_read(&d, Signal::Cpu, &pay, 0.5, p);
    let nonheap = d.fates.iter().find(|f| f.key.label("area") == Some("nonheap")).unwrap();
    assert!(
        matches!(&nonheap.fate, Fate::Ignored { near: Some(n) } if n.label == "area"),
        "the non-heap pools are not the heap: {:?}",
        nonheap.fate
    );
}

#[test]
fn linkerd_inbound_responses_and_latency_per_deployment() {
    let dep = "direction=\"inbound\",deployment=\"ledger\",namespace=\"cell-1\",pod=\"ledger-5c9d-abcde\",tls=\"true\"";
    let d = derive_text(&format!(
        "# TYPE response counter\n\
         response_total{{{dep},status_code=\"200\",classification=\"success\"}} 0 0\n\
         response_total{{{dep},status_code=\"200\",classification=\"success\"}} 240 30\n\
         response_total{{{dep},status_code=\"500\",classification=\"failure\"}} 0 0\n\
         response_total{{{dep},status_code=\"500\",classification=\"failure\"}} 60 30\n\
         # TYPE response_latency_ms histogram\n\
         response_latency_ms_sum{{{dep},status_code=\"200\"}} 0 0\n\
         response_latency_ms_sum{{{dep},status_code=\"200\"}} 9000 30\n\
         response_latency_ms_count{{{dep},status_code=\"200\"}} 0 0\n\
         response_latency_ms_count{{{dep},status_code=\"200\"}} 300 30\n\
         # EOF\n"
    ));
    let ledger = svc("cell-1", "ledger");
    assert_read(&d, Signal::RequestRate, &ledger, 10.0, "linkerd");
    assert_read(&d, Signal::ErrorRatio, &ledger, 0.2, "linkerd");
    assert_read(&d, Signal::Latency, &ledger, 0.03, "linkerd");
}

#[test]
fn envoy_upstream_clusters_without_total_suffix() {
    let c = "envoy_cluster_name=\"payments\",namespace=\"cell-2\"";
    let d = derive_text(&format!(
        "# TYPE envoy_cluster_upstream_rq_xx counter\n\
         envoy_cluster_upstream_rq_xx{{{c},envoy_response_code_class=\"2\"}} 1000 0\n\
         envoy_cluster_upstream_rq_xx{{{c},envoy_response_code_class=\"2\"}} 1150 30\n\
         envoy_cluster_upstream_rq_xx{{{c},envoy_response_code_class=\"5\"}} 10 0\n\
         envoy_cluster_upstream_rq_xx{{{c},envoy_response_code_class=\"5\"}} 160 30\n\
         # TYPE envoy_cluster_upstream_rq_time histogram\n\
         envoy_cluster_upstream_rq_time_sum{{{c}}} 0 0\n\
         envoy_cluster_upstream_rq_time_sum{{{c}}} 15000 30\n\
         envoy_cluster_upstream_rq_time_count{{{c}}} 0 0\n\
         envoy_cluster_upstream_rq_time_count{{{c}}} 300 30\n\
         # EOF\n"
    ));
    let pay = svc("cell-2", "payments");
    assert_read(&d, Signal::RequestRate, &pay, 10.0, "envoy");
    assert_read(&d, Signal::ErrorRatio, &pay, 0.5, "envoy");
    assert_read(&d, Signal::Latency, &pay, 0.05, "envoy");
}

#[test]
fn ingress_nginx_requests_and_durations_per_backend_service() {
    let i = "controller_class=\"k8s.io/ingress-nginx\",ingress=\"wallet\",namespace=\"cell-4\",service=\"wallet-api\",method=\"POST\",path=\"/pay\"";
    let d = derive_text(&format!(
        "# TYPE nginx_ingress_controller_requests counter\n\
         nginx_ingress_controller_requests{{{i},status=\"200\"}} 0 0\n\
         nginx_ingress_controller_requests{{{i},status=\"200\"}} 285 30\n\
         nginx_ingress_controller_requests{{{i},status=\"502\"}} 0 0\n\
         nginx_ingress_controller_requests{{{i},status=\"502\"}} 15 30\n\
         # TYPE nginx_ingress_controller_request_duration_seconds histogram\n\
         nginx_ingress_controller_request_duration_seconds_sum{{{i},status=\"200\"}} 0 0\n\
         nginx_ingress_controller_request_duration_seconds_sum{{{i},status=\"200\"}} 36 30\n\
         nginx_ingress_controller_request_duration_seconds_count{{{i},status=\"200\"}} 0 0\n\
         nginx_ingress_controller_request_duration_seconds_count{{{i},status=\"200\"}} 300 30\n\
         # EOF\n"
    ));
    let w = svc("cell-4", "wallet-api");
    assert_read(&d, Signal::RequestRate, &w, 10.0, "ingress-nginx");
    assert_read(&d, Signal::ErrorRatio, &w, 0.05, "ingress-nginx");
    assert_read(&d, Signal::Latency, &w, 0.12, "ingress-nginx");
}

#[test]
fn kafka_exporter_lag_per_consumer_group() {
    let d = derive_text(concat!(
        "# TYPE kafka_consumergroup_lag_sum gauge\n",
        "kafka_consumergroup_lag_sum{consumergroup=\"settlement\",topic=\"payment-events\",namespace=\"cell-1\"} 12 0\n",
        "kafka_consumergroup_lag_sum{consumergroup=\"settlement\",topic=\"payment-events\",namespace=\"cell-1\"} 480 30\n",
        "# TYPE kafka_consumergroup_lag gauge\n",
        "kafka_consumergroup_lag{consumergroup=\"settlement\",topic=\"payment-events\",partition=\"0\",namespace=\"cell-1\"} 7 0\n",
        "kafka_consumergroup_lag{consumergroup=\"settlement\",topic=\"payment-events\",partition=\"0\",namespace=\"cell-1\"} 300 30\n",
        "# EOF\n"
    ));
    let group = svc("cell-1", "settlement");
    let lag: Vec<_> = d.series.iter().filter(|s| s.signal == Signal::QueueLag).collect();
    assert_eq!(lag.len(), 2, "{lag:#?}");
    assert!(lag.iter().all(|s| s.entity.as_ref() == Some(&group)));
    assert_eq!(lag[0].points.last().unwrap().value, 480.0);
    assert_eq!(lag[1].key.label("partition"), Some("0"), "the per-partition series stays apart");
}

#[test]
fn postgres_exporter_up_and_longest_transaction_per_database() {
    let d = derive_text(concat!(
        "# TYPE pg_up gauge\n",
        "pg_up{namespace=\"cell-2\",pod=\"postgres-exporter-7d9f8b6c5d-x2x7q\"} 1 0\n",
        "pg_up{namespace=\"cell-2\",pod=\"postgres-exporter-7d9f8b6c5d-x2x7q\"} 0 30\n",
        "# TYPE pg_stat_activity_max_tx_duration gauge\n",
        "pg_stat_activity_max_tx_duration{datname=\"ledger\",state=\"active\",usename=\"ledger\",namespace=\"cell-2\"} 0.5 0\n",
        "pg_stat_activity_max_tx_duration{datname=\"ledger\",state=\"active\",usename=\"ledger\",namespace=\"cell-2\"} 42 30\n",
        "# EOF\n"
    ));
    assert_read(
        &d,
        Signal::ErrorRatio,
        &svc("cell-2", "postgres-exporter"),
        1.0,
        "postgres-exporter",
    );
    assert_read(&d, Signal::Latency, &svc("cell-2", "ledger"), 42.0, "postgres-exporter");
}

#[test]
fn cockroachdb_sql_latency_in_nanoseconds_rss_and_cpu() {
    let pod = "namespace=\"cell-1\",pod=\"cockroachdb-0\",node_id=\"1\"";
    let d = derive_text(&format!(
        "# TYPE sql_service_latency histogram\n\
         sql_service_latency_sum{{{pod}}} 0 0\n\
         sql_service_latency_sum{{{pod}}} 6.0e10 30\n\
         sql_service_latency_count{{{pod}}} 0 0\n\
         sql_service_latency_count{{{pod}}} 3000 30\n\
         # TYPE sys_rss gauge\n\
         sys_rss{{{pod}}} 2.0e9 0\n\
         sys_rss{{{pod}}} 2.5e9 30\n\
         # TYPE sys_cpu_combined_percent_normalized gauge\n\
         sys_cpu_combined_percent_normalized{{{pod}}} 0.3 0\n\
         sys_cpu_combined_percent_normalized{{{pod}}} 0.9 30\n\
         # EOF\n"
    ));
    let db = svc("cell-1", "cockroachdb");
    assert_read(&d, Signal::Latency, &db, 0.02, "cockroachdb");
    assert_read(&d, Signal::Memory, &db, 2.5e9, "cockroachdb");
    assert_read(&d, Signal::Cpu, &db, 0.9, "cockroachdb");
}

#[test]
fn node_exporter_memory_and_cpu_pressure_per_node() {
    let n = "instance=\"10.0.1.7:9100\",node=\"node-3\"";
    let d = derive_text(&format!(
        "# TYPE node_memory_Active_bytes gauge\n\
         node_memory_Active_bytes{{{n}}} 4.0e9 0\n\
         node_memory_Active_bytes{{{n}}} 6.0e9 30\n\
         # TYPE node_memory_MemTotal_bytes gauge\n\
         node_memory_MemTotal_bytes{{{n}}} 1.6e10 0\n\
         node_memory_MemTotal_bytes{{{n}}} 1.6e10 30\n\
         # TYPE node_pressure_cpu_waiting_seconds counter\n\
         node_pressure_cpu_waiting_seconds_total{{{n}}} 100 0\n\
         node_pressure_cpu_waiting_seconds_total{{{n}}} 109 30\n\
         # EOF\n"
    ));
    let node = Entity::new(EntityKind::Node, "node-3");
    let p = "node-exporter";
    assert_read(&d, Signal::Memory, &node, 6.0e9, p);
    assert_read(&d, Signal::MemoryLimit, &node, 1.6e10, p);
    assert_read(&d, Signal::Cpu, &node, 0.3, p);
}

#[test]
fn kubernetes_pod_readiness_and_rss() {
    let pod = "namespace=\"cell-3\",pod=\"ledger-7d9f8b6c5d-x2x7q\"";
    let d = derive_text(&format!(
        "# TYPE kube_pod_status_ready gauge\n\
         kube_pod_status_ready{{{pod},condition=\"true\"}} 1 0\n\
         kube_pod_status_ready{{{pod},condition=\"true\"}} 0 30\n\
         kube_pod_status_ready{{{pod},condition=\"false\"}} 0 0\n\
         kube_pod_status_ready{{{pod},condition=\"false\"}} 1 30\n\
         # TYPE container_memory_rss gauge\n\
         container_memory_rss{{{pod},container=\"ledger\"}} 1.0e8 0\n\
         container_memory_rss{{{pod},container=\"ledger\"}} 1.2e8 30\n\
         # EOF\n"
    ));
    let ledger = svc("cell-3", "ledger");
    assert_read(&d, Signal::ErrorRatio, &ledger, 1.0, "kubernetes");
    assert_read(&d, Signal::Memory, &ledger, 1.2e8, "kubernetes");
}

#[test]
fn inference_reads_what_no_rule_names_and_says_so() {
    let s = "service=\"checkout\",cell=\"cell-1\"";
    let d = derive_text(&format!(
        "# TYPE checkout_latency_p99_milliseconds gauge\n\
         checkout_latency_p99_milliseconds{{{s}}} 120 0\n\
         checkout_latency_p99_milliseconds{{{s}}} 250 30\n\
         # TYPE checkout_heap_max_bytes gauge\n\
         checkout_heap_max_bytes{{{s}}} 1.0e9 0\n\
         checkout_heap_max_bytes{{{s}}} 1.0e9 30\n\
         # TYPE checkout_heap_used_bytes gauge\n\
         checkout_heap_used_bytes{{{s}}} 4.0e8 0\n\
         checkout_heap_used_bytes{{{s}}} 5.0e8 30\n\
         # TYPE checkout_requests counter\n\
         checkout_requests_total{{{s},outcome=\"SUCCESS\"}} 0 0\n\
         checkout_requests_total{{{s},outcome=\"SUCCESS\"}} 90 30\n\
         checkout_requests_total{{{s},outcome=\"SERVER_ERROR\"}} 0 0\n\
         checkout_requests_total{{{s},outcome=\"SERVER_ERROR\"}} 30 30\n\
         # TYPE checkout_jobs counter\n\
         checkout_jobs_total{{{s}}} 0 0\n\
         checkout_jobs_total{{{s}}} 30 30\n\
         # TYPE checkout_step_duration_ms histogram\n\
         checkout_step_duration_ms_sum{{{s}}} 0 0\n\
         checkout_step_duration_ms_sum{{{s}}} 500 30\n\
         checkout_step_duration_ms_count{{{s}}} 0 0\n\
         checkout_step_duration_ms_count{{{s}}} 10 30\n\
         # EOF\n"
    ));
    let c = svc("cell-1", "checkout");
    for (signal, value) in [
        (Signal::Latency, None),
        (Signal::MemoryLimit, Some(1.0e9)),
        (Signal::Memory, Some(5.0e8)),
        (Signal::RequestRate, Some(4.0)),
        (Signal::ErrorRatio, Some(0.25)),
    ] {
        let found: Vec<_> = d
            .series
            .iter()
            .filter(|x| x.signal == signal && x.entity.as_ref() == Some(&c))
            .collect();
        assert!(!found.is_empty(), "{signal:?}: {:#?}", d.series);
        if let Some(v) = value {
            assert!(close(found[0].points.last().unwrap().value, v), "{signal:?}: {:?}", found[0].points);
        }
    }
    let lat: Vec<f64> = d
        .series
        .iter()
        .filter(|x| x.signal == Signal::Latency)
        .map(|x| x.points.last().unwrap().value)
        .collect();
    assert_eq!(lat, vec![0.25, 0.05], "the p99 gauge and the histogram mean, in seconds");
    for f in &d.fates {
        match &f.fate {
            Fate::Read { by, .. } => assert_eq!(by.origin, Origin::Inferred, "{}", f.key),
            Fate::Ignored { .. } => assert_eq!(f.key.metric, "checkout_jobs_total", "no status label, no guess"),
            Fate::Unread { .. } => panic!("{}: {:?}", f.key, f.fate),
        }
    }
}

#[test]
fn an_inference_never_outranks_a_rule() {
    // `pod_client_latency_p99_seconds` looks like a latency gauge to the inference; the cellwarden
    // profile says it is the caller's wait (client latency), and the profile wins.
    let d = derive_text(concat!(
        "# TYPE pod_client_latency_p99_seconds gauge\n",
        "pod_client_latency_p99_seconds{service=\"payments\",cell=\"cell-1\"} 0.2 0\n",
        "# EOF\n"
    ));
    assert_eq!(d.series[0].signal, Signal::ClientLatency);
    assert!(matches!(&d.fates[0].fate, Fate::Read { by, .. } if by.origin == Origin::Profile("cellwarden")));
}
