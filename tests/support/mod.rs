//! What the operator's end-to-end tests share: a free port, a kube client of the fake API server,
//! the CRDs installed, and the reasons of the Events published in a namespace; [`live`] runs
//! live daemons against it; [`operator_grants`] is the operator's RBAC for the fake to enforce.
#![allow(dead_code)] // each test binary uses its own part

pub mod live;

use cellwarden_remediator::crd::{Cell, Incident, RemediationPolicy};
use fakekube::FakeKube;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, CustomResourceExt};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The real kube-rs client, talking to `fake`.
pub async fn client(fake: &FakeKube) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::try_from(kube::Config::new(fake.url().parse().unwrap())).unwrap()
}

/// Installs the Cell, RemediationPolicy and Incident CRDs.
pub async fn install_crds(c: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    for crd in [Cell::crd(), RemediationPolicy::crd(), Incident::crd()] {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
}

/// The reasons of the Events (events.k8s.io) in `namespace`.
pub async fn event_reasons(c: &Client, namespace: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(c.clone(), namespace);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect()
}

/// The token the operator presents to the fake API when its RBAC is enforced.
pub const OPERATOR_TOKEN: &str = "cellwarden-operator";

/// What `remediator::rbac` grants the operator (acting, or in observe/dry-run), as the chart's
/// ClusterRole (every namespace) and Role (in `cellwarden`) would: for
/// `FakeKube::enforce_rbac`.
pub fn operator_grants(acting: bool) -> Vec<fakekube::rbac::Grant> {
    use cellwarden_remediator::rbac;
    rbac::RULES
        .iter()
        .flat_map(|r| {
            rbac::verbs(r, acting).into_iter().map(move |v| fakekube::rbac::Grant {
                group: r.api_group.into(),
                resource: r.resource.into(),
                verb: v.into(),
                namespace: (!r.cluster_wide).then(|| "cellwarden".to_string()),
            })
        })
        .collect()
}
