//! Leader election with a `coordination.k8s.io/v1` Lease (DESIGN.md: `cellwarden-leader`, or
//! `cellwarden-leader-<shard>` per `--cells` shard). Only the holder acts and receives pushes;
//! the holder labels its own pod `cellwarden.io/leader=true` so the receivers' Service selects it.
//!
//! The decision is pure ([`decide`]: the Lease as read, who we are, the time → what to do); the
//! loop ([`Elector::step`]) carries it out with optimistic concurrency (`resourceVersion` on
//! every replace), so two instances racing for an expired Lease cannot both win: the loser's
//! write is refused with 409 and it stays a follower.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

/// Label the leader puts on its own pod (the receivers' Service selects it).
pub const LEADER_LABEL: &str = "cellwarden.io/leader";

/// The Lease name for a shard (`None`: the whole platform).
pub fn lease_name(shard: Option<&str>) -> String {
    match shard {
        None => "cellwarden-leader".into(),
        Some(s) => {
            // A selector such as `shard in (a,b)` becomes a valid object name.
            let mut name: String = s
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
                .collect();
            while name.contains("--") {
                name = name.replace("--", "-");
            }
            format!("cellwarden-leader-{}", name.trim_matches('-'))
        }
    }
}

/// What to do with the Lease as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, held by us.
    Create,
    /// We hold it: renew.
    Renew,
    /// Its holder stopped renewing (or released it): take it over.
    TakeOver { from: String },
    /// Someone else holds it and renews: stay a follower.
    Follow { holder: String },
}

/// Decides from the Lease's spec, our identity and the time (milliseconds since the epoch).
pub fn decide(spec: Option<&LeaseSpec>, me: &str, now_ms: i64) -> Decision {
    let Some(spec) = spec else { return Decision::Create };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == me {
        return Decision::Renew;
    }
    if holder.is_empty() {
        return Decision::TakeOver { from: holder };
    }
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0.as_millisecond())
        .unwrap_or(i64::MIN / 2);
    let duration_ms = i64::from(spec.lease_duration_seconds.unwrap_or(15)) * 1000;
    if now_ms > renewed + duration_ms {
        Decision::TakeOver { from: holder }
    } else {
        Decision::Follow { holder }
    }
}

/// Settings of the election.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// Who we are (the pod name in a cluster).
    pub identity: String,
    /// How long a Lease holds without renewal, seconds.
    pub lease_duration_secs: u32,
    /// Our pod, to label when we lead (`None` outside a cluster).
    pub pod: Option<String>,
}

/// One instance's side of the election.
pub struct Elector {
    client: Client,
    cfg: LeaseConfig,
    /// Whether we held the Lease after the last step.
    pub leading: bool,
}

fn micro(ms: i64) -> MicroTime {
    MicroTime(jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH))
}

impl Elector {
    pub fn new(client: Client, cfg: LeaseConfig) -> Elector {
        Elector {
            client,
            cfg,
            leading: false,
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.cfg
    }

    fn spec(&self, now_ms: i64, acquired_ms: i64, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(self.cfg.lease_duration_secs as i32),
            acquire_time: Some(micro(acquired_ms)),
            renew_time: Some(micro(now_ms)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Reads the Lease, decides, writes; returns whether we lead now. An API error leaves us a
    /// follower (acting without a confirmed Lease could mean two leaders).
    pub async fn step(&mut self, now_ms: i64) -> Result<bool, kube::Error> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.cfg.namespace);
        let result = self.try_step(&api, now_ms).await;
        let leading = matches!(result, Ok(true));
        if leading != self.leading {
            if leading {
                tracing::info!(lease = %self.cfg.name, identity = %self.cfg.identity, "Took the Lease; this instance leads.");
            } else {
                tracing::warn!(lease = %self.cfg.name, identity = %self.cfg.identity, "Lost the Lease; this instance follows.");
            }
            self.leading = leading;
            self.label_pod(leading).await;
        }
        result.map(|_| leading)
    }

    async fn try_step(&self, api: &Api<Lease>, now_ms: i64) -> Result<bool, kube::Error> {
        let current = api.get_opt(&self.cfg.name).await?;
        match decide(current.as_ref().and_then(|l| l.spec.as_ref()), &self.cfg.identity, now_ms) {
            Decision::Create => {
                let mut lease = Lease {
                    spec: Some(self.spec(now_ms, now_ms, 0)),
                    ..Lease::default()
                };
                lease.metadata.name = Some(self.cfg.name.clone());
                lease.metadata.namespace = Some(self.cfg.namespace.clone());
                match api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Decision::Follow { .. } => Ok(false),
            d @ (Decision::Renew | Decision::TakeOver { .. }) => {
                let mut lease = current.expect("decide() creates when absent");
                let old = lease.spec.clone().unwrap_or_default();
                let (acquired, transitions) = match d {
                    Decision::Renew => (
                        old.acquire_time.map(|t| t.0.as_millisecond()).unwrap_or(now_ms),
                        old.lease_transitions.unwrap_or(0),
                    ),
                    _ => (now_ms, old.lease_transitions.unwrap_or(0) + 1),
                };
                lease.spec = Some(self.spec(now_ms, acquired, transitions));
                // `replace` carries the resourceVersion read above: a concurrent writer wins, we get 409.
                match api.replace(&self.cfg.name, &PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Gives the Lease up (on shutdown) so a follower takes over at once.
    pub async fn release(&mut self) {
        if !self.leading {
            return;
        }
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.cfg.namespace);
        if let Ok(Some(mut lease)) = api.get_opt(&self.cfg.name).await {
            if let Some(spec) = lease.spec.as_mut() {
                if spec.holder_identity.as_deref() == Some(&self.cfg.identity) {
                    spec.holder_identity = None;
                    let _ = api.replace(&self.cfg.name, &PostParams::default(), &lease).await;
                }
            }
        }
        self.leading = false;
        self.label_pod(false).await;
    }

    async fn label_pod(&self, leading: bool) {
        let Some(pod) = &self.cfg.pod else { return };
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.cfg.namespace);
        let patch = json!({"metadata": {"labels": {LEADER_LABEL: if leading { "true" } else { "false" }}}});
        if let Err(e) = pods.patch(pod, &PatchParams::default(), &Patch::Merge(&patch)).await {
            tracing::warn!(error = %e, pod = %pod, "Could not label the pod with its leadership.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(by: &str, renewed_ms: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(by.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(micro(renewed_ms)),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn the_decision_follows_the_holder_and_the_clock() {
        assert_eq!(decide(None, "a", 0), Decision::Create);
        assert_eq!(decide(Some(&held("a", 0)), "a", 1_000), Decision::Renew);
        assert_eq!(
            decide(Some(&held("b", 0)), "a", 15_000),
            Decision::Follow { holder: "b".into() },
            "a Lease renewed 15 s ago with a 15 s duration still holds"
        );
        assert_eq!(decide(Some(&held("b", 0)), "a", 15_001), Decision::TakeOver { from: "b".into() });
        let released = LeaseSpec {
            holder_identity: None,
            ..held("b", 0)
        };
        assert_eq!(decide(Some(&released), "a", 1), Decision::TakeOver { from: String::new() });
    }

    #[test]
    fn shard_lease_names_are_valid_object_names() {
        assert_eq!(lease_name(None), "cellwarden-leader");
        assert_eq!(lease_name(Some("shard=a")), "cellwarden-leader-shard-a");
        assert_eq!(lease_name(Some("shard in (A, b)")), "cellwarden-leader-shard-in-a-b");
    }
}
