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
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

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

/// The Lease as this instance last saw it change, and when — on this instance's own clock, so
/// expiry never compares another node's clock with ours (client-go's `observedTime`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Holder identity read.
    pub holder: String,
    /// The Lease's `resourceVersion`: every renewal changes it, whatever the holder's clock says.
    pub resource_version: String,
    /// Local milliseconds (any monotonic origin) when this record was first seen.
    pub at_ms: i64,
}

/// Decides from the Lease as read (its spec and `resourceVersion`), our identity, the local time
/// (milliseconds on a monotonic clock of ours) and what we observed before; returns the decision
/// and the observation to keep. Another holder's Lease expires `leaseDurationSeconds` after we
/// first saw its current version — never by its `renewTime`, which is the holder's clock. So a
/// newly started instance waits a whole duration before taking over, as client-go does.
pub fn decide(
    spec: Option<&LeaseSpec>,
    resource_version: &str,
    me: &str,
    local_ms: i64,
    last: Option<&Observed>,
) -> (Decision, Option<Observed>) {
    let Some(spec) = spec else { return (Decision::Create, None) };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let seen_at = match last {
        Some(o) if o.holder == holder && o.resource_version == resource_version => o.at_ms,
        _ => local_ms,
    };
    let observed = Some(Observed {
        holder: holder.clone(),
        resource_version: resource_version.to_string(),
        at_ms: seen_at,
    });
    if holder == me {
        return (Decision::Renew, observed);
    }
    if holder.is_empty() {
        return (Decision::TakeOver { from: holder }, observed);
    }
    let duration_ms = i64::from(spec.lease_duration_seconds.unwrap_or(15).max(1)) * 1000;
    if local_ms > seen_at.saturating_add(duration_ms) {
        (Decision::TakeOver { from: holder }, observed)
    } else {
        (Decision::Follow { holder }, observed)
    }
}

/// The leader's timing, from the lease duration, as client-go's leader election sets it
/// (15 s lease: 10 s renew deadline, 2 s retry; here the retry is a third of the duration, as
/// the loop always renewed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long the Lease holds without renewal (what followers wait).
    pub lease_duration: Duration,
    /// How long the leader may go without a proven renewal before it stops acting: two thirds
    /// of the duration, so it has stepped down a third of a duration before any follower can
    /// take over (that margin absorbs the two clocks' rates and the API's latency).
    pub renew_deadline: Duration,
    /// How often the Lease is read and renewed.
    pub retry_period: Duration,
    /// The most one API call of the election (or a fencing read, or an actuator call) may take:
    /// a fifth of the duration (3 s for 15 s), so a get and a replace fit in the renew deadline
    /// and a hung call is abandoned while there is time to try again.
    pub call_timeout: Duration,
}

impl Timing {
    pub fn for_duration_secs(secs: u32) -> Timing {
        let d = Duration::from_secs(u64::from(secs.max(1)));
        Timing {
            lease_duration: d,
            renew_deadline: d * 2 / 3,
            retry_period: d / 3,
            call_timeout: d / 5,
        }
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

impl LeaseConfig {
    pub fn timing(&self) -> Timing {
        Timing::for_duration_secs(self.lease_duration_secs)
    }
}

/// Until when this instance may act as leader: the start of its last proven renewal plus the
/// renew deadline. Shared by the elector (which extends it) and every fencing check (which reads
/// it); a stalled elector cannot extend it, so leadership lapses on time by itself.
#[derive(Debug, Default)]
pub struct Term {
    until: Mutex<Option<Instant>>,
}

impl Term {
    /// Whether a renewal was proven within the renew deadline.
    pub fn is_valid(&self) -> bool {
        self.remaining().is_some()
    }

    /// Time left before the term lapses (`None`: lapsed or never held).
    pub fn remaining(&self) -> Option<Duration> {
        let until = (*self.until.lock().unwrap_or_else(|p| p.into_inner()))?;
        until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
    }

    fn extend_to(&self, until: Instant) {
        *self.until.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
    }

    fn end(&self) {
        *self.until.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// A call that did not answer within [`Timing::call_timeout`].
#[derive(Debug, thiserror::Error)]
#[error("the Kubernetes API did not answer {what} within {timeout_ms} ms")]
pub struct CallTimedOut {
    pub what: &'static str,
    pub timeout_ms: u64,
}

/// Runs one API call under `timeout`; a call past it becomes a `kube::Error::Service` naming it.
pub async fn timed<T>(
    timeout: Duration,
    what: &'static str,
    call: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, kube::Error> {
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r,
        Err(_) => Err(kube::Error::Service(Box::new(CallTimedOut {
            what,
            timeout_ms: timeout.as_millis() as u64,
        }))),
    }
}

/// Why an action was not carried out by this instance.
#[derive(Debug, thiserror::Error)]
pub enum Fenced {
    /// No renewal proven within the renew deadline.
    #[error("this instance has not proven a Lease renewal within the renew deadline")]
    TermLapsed,
    /// The Lease names another holder.
    #[error("the Lease {lease} is held by {holder:?}, not by this instance")]
    NotHolder { lease: String, holder: String },
    /// The Lease could not be read (in time).
    #[error("cannot re-read the Lease {lease}: {source}")]
    Unreadable {
        lease: String,
        #[source]
        source: kube::Error,
    },
}

/// The check before each action: our term is valid and a fresh read of the Lease names us. An
/// instance that lost the Lease (a hung renewal, a partition) cannot pass it, whatever its own
/// flags say.
#[derive(Clone)]
pub struct Fence {
    client: Client,
    cfg: LeaseConfig,
    term: Arc<Term>,
}

impl Fence {
    pub async fn check(&self) -> Result<(), Fenced> {
        if !self.term.is_valid() {
            return Err(Fenced::TermLapsed);
        }
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.cfg.namespace);
        let timeout = self.cfg.timing().call_timeout;
        let lease = timed(timeout, "the fencing read of the Lease", api.get_opt(&self.cfg.name))
            .await
            .map_err(|source| Fenced::Unreadable {
                lease: self.cfg.name.clone(),
                source,
            })?;
        let holder = lease.and_then(|l| l.spec).and_then(|s| s.holder_identity).unwrap_or_default();
        if holder != self.cfg.identity {
            return Err(Fenced::NotHolder {
                lease: self.cfg.name.clone(),
                holder,
            });
        }
        // The read may have taken most of the call timeout: the term must still hold after it.
        if !self.term.is_valid() {
            return Err(Fenced::TermLapsed);
        }
        Ok(())
    }
}

/// One instance's side of the election.
pub struct Elector {
    client: Client,
    cfg: LeaseConfig,
    /// Whether we held the Lease after the last step.
    pub leading: bool,
    term: Arc<Term>,
    /// The Lease as last seen changing (expiry is judged from it).
    observed: Option<Observed>,
    /// The origin of the local clock [`decide`] reads.
    origin: Instant,
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
            term: Arc::new(Term::default()),
            observed: None,
            origin: Instant::now(),
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.cfg
    }

    /// The term every fencing check reads.
    pub fn term(&self) -> Arc<Term> {
        self.term.clone()
    }

    /// The check to run before each action.
    pub fn fence(&self) -> Fence {
        Fence {
            client: self.client.clone(),
            cfg: self.cfg.clone(),
            term: self.term.clone(),
        }
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

    /// Reads the Lease, decides, writes; returns whether we lead now. Each API call is bounded by
    /// the call timeout, and the whole step by the term's end while we lead: a renewal that
    /// cannot be proven in time ends the term (a Warning, and `leading` false) instead of
    /// leaving this instance acting on a Lease another may have taken. An API error leaves us a
    /// follower. `now_ms` is the wall clock, written into the Lease for people to read.
    pub async fn step(&mut self, now_ms: i64) -> Result<bool, kube::Error> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.cfg.namespace);
        let timing = self.cfg.timing();
        let started = Instant::now();
        // While leading, the step may take only what is left of the term; otherwise two calls.
        let budget = match self.term.remaining() {
            Some(left) if self.leading => left,
            _ => timing.call_timeout * 2,
        };
        let result = match tokio::time::timeout(budget, self.try_step(&api, now_ms)).await {
            Ok(r) => r,
            Err(_) => Err(kube::Error::Service(Box::new(CallTimedOut {
                what: "the Lease renewal",
                timeout_ms: budget.as_millis() as u64,
            }))),
        };
        let leading = matches!(result, Ok(true));
        if leading {
            // Proven at the latest when the step started: the term runs from there.
            self.term.extend_to(started + timing.renew_deadline);
        } else {
            self.term.end();
        }
        if leading != self.leading {
            if leading {
                tracing::info!(lease = %self.cfg.name, identity = %self.cfg.identity, "Took the Lease; this instance leads.");
            } else {
                let error = result.as_ref().err().map(ToString::to_string).unwrap_or_default();
                tracing::warn!(lease = %self.cfg.name, identity = %self.cfg.identity, error = %error, "Lost the Lease or could not prove a renewal within the renew deadline; this instance stops acting and follows.");
            }
            self.leading = leading;
            self.label_pod(leading).await;
        }
        result.map(|_| leading)
    }

    /// Marks the term over when it lapsed without a step noticing (the caller's loop wakes at
    /// the term's end); returns whether we still lead.
    pub fn check_term(&mut self) -> bool {
        if self.leading && !self.term.is_valid() {
            tracing::warn!(lease = %self.cfg.name, identity = %self.cfg.identity, "No Lease renewal proven within the renew deadline; this instance stops acting and follows.");
            self.leading = false;
        }
        self.leading
    }

    async fn try_step(&mut self, api: &Api<Lease>, now_ms: i64) -> Result<bool, kube::Error> {
        let timeout = self.cfg.timing().call_timeout;
        let current = timed(timeout, "the Lease read", api.get_opt(&self.cfg.name)).await?;
        let rv = current
            .as_ref()
            .and_then(|l| l.metadata.resource_version.clone())
            .unwrap_or_default();
        let local_ms = self.origin.elapsed().as_millis() as i64;
        let (decision, observed) = decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &rv,
            &self.cfg.identity,
            local_ms,
            self.observed.as_ref(),
        );
        self.observed = observed;
        match decision {
            Decision::Create => {
                let mut lease = Lease {
                    spec: Some(self.spec(now_ms, now_ms, 0)),
                    ..Lease::default()
                };
                lease.metadata.name = Some(self.cfg.name.clone());
                lease.metadata.namespace = Some(self.cfg.namespace.clone());
                match timed(timeout, "the Lease create", api.create(&PostParams::default(), &lease)).await {
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
                match timed(
                    timeout,
                    "the Lease update",
                    api.replace(&self.cfg.name, &PostParams::default(), &lease),
                )
                .await
                {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Gives the Lease up (on shutdown) so a follower takes over at once.
    pub async fn release(&mut self) {
        self.term.end();
        if !self.leading {
            return;
        }
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.cfg.namespace);
        let timeout = self.cfg.timing().call_timeout;
        if let Ok(Some(mut lease)) = timed(timeout, "the Lease read", api.get_opt(&self.cfg.name)).await {
            if let Some(spec) = lease.spec.as_mut() {
                if spec.holder_identity.as_deref() == Some(&self.cfg.identity) {
                    spec.holder_identity = None;
                    let _ = timed(
                        timeout,
                        "the Lease release",
                        api.replace(&self.cfg.name, &PostParams::default(), &lease),
                    )
                    .await;
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
        let timeout = self.cfg.timing().call_timeout;
        if let Err(e) = timed(
            timeout,
            "the pod label patch",
            pods.patch(pod, &PatchParams::default(), &Patch::Merge(&patch)),
        )
        .await
        {
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
    fn expiry_is_judged_from_when_we_saw_the_lease_change_not_from_its_renew_time() {
        assert_eq!(decide(None, "", "a", 0, None).0, Decision::Create);
        assert_eq!(decide(Some(&held("a", 0)), "7", "a", 1_000, None).0, Decision::Renew);
        // b's renewTime says 1970 (its clock, or a skewed one): first seen now, it still holds.
        let (d, seen) = decide(Some(&held("b", 0)), "7", "a", 100_000, None);
        assert_eq!(d, Decision::Follow { holder: "b".into() }, "a first sight counts as a renewal");
        let seen = seen.unwrap();
        assert_eq!(seen.at_ms, 100_000);
        // Unchanged for the lease duration (15 s) on our clock: still held at 15 s, expired after.
        let (d, same) = decide(Some(&held("b", 0)), "7", "a", 115_000, Some(&seen));
        assert_eq!(d, Decision::Follow { holder: "b".into() });
        assert_eq!(
            same.as_ref().unwrap().at_ms,
            100_000,
            "the observation is kept while nothing changes"
        );
        assert_eq!(
            decide(Some(&held("b", 0)), "7", "a", 115_001, Some(&seen)).0,
            Decision::TakeOver { from: "b".into() }
        );
        // A renewal (a new resourceVersion) restarts the wait, whatever renewTime it carries.
        let (d, renewed) = decide(Some(&held("b", -5_000_000)), "8", "a", 115_001, Some(&seen));
        assert_eq!(d, Decision::Follow { holder: "b".into() });
        assert_eq!(renewed.unwrap().at_ms, 115_001);
        // b's renewTime far in the future (a clock ahead) does not keep a stale Lease alive.
        let future = held("b", i64::MAX / 4);
        let (_, seen) = decide(Some(&future), "9", "a", 0, None);
        assert_eq!(
            decide(Some(&future), "9", "a", 15_001, seen.as_ref()).0,
            Decision::TakeOver { from: "b".into() }
        );
        let released = LeaseSpec {
            holder_identity: None,
            ..held("b", 0)
        };
        assert_eq!(
            decide(Some(&released), "9", "a", 1, None).0,
            Decision::TakeOver { from: String::new() }
        );
    }

    #[test]
    fn the_leader_steps_down_a_third_of_a_duration_before_a_follower_may_take_over() {
        let t = Timing::for_duration_secs(15);
        assert_eq!(t.renew_deadline, Duration::from_secs(10));
        assert_eq!(t.retry_period, Duration::from_secs(5));
        assert_eq!(t.call_timeout, Duration::from_secs(3));
        assert!(t.call_timeout * 2 < t.renew_deadline && t.renew_deadline < t.lease_duration);
        let t = Timing::for_duration_secs(2);
        assert!(t.renew_deadline < t.lease_duration && !t.call_timeout.is_zero());
    }

    #[tokio::test(start_paused = true)]
    async fn a_term_lapses_by_itself_at_the_renew_deadline() {
        let term = Term::default();
        assert!(!term.is_valid(), "never held");
        term.extend_to(Instant::now() + Duration::from_secs(10));
        assert!(term.is_valid());
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert!(term.is_valid());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!term.is_valid(), "no one has to notice: the term ends at its deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_call_is_cut_at_its_timeout_with_an_error_naming_it() {
        let hang = std::future::pending::<Result<(), kube::Error>>();
        let err = timed(Duration::from_secs(3), "the Lease read", hang).await.unwrap_err();
        assert!(err.to_string().contains("did not answer the Lease read within 3000 ms"), "{err}");
    }

    #[test]
    fn shard_lease_names_are_valid_object_names() {
        assert_eq!(lease_name(None), "cellwarden-leader");
        assert_eq!(lease_name(Some("shard=a")), "cellwarden-leader-shard-a");
        assert_eq!(lease_name(Some("shard in (A, b)")), "cellwarden-leader-shard-in-a-b");
    }
}
