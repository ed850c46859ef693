//! The fake's state: objects by resource, namespace and name; the global resourceVersion; a
//! bounded log of changes for watches from a resourceVersion; injected faults. It serialises to a
//! snapshot so the fake can restart with its state kept.

use crate::registry::Registry;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};

/// Changes kept for watches from an older resourceVersion (older ones get 410 Gone).
pub const LOG_CAPACITY: usize = 10_000;

/// Where an object lives: group, plural, namespace ("" when cluster-scoped), name.
pub type Key = (String, String, String, String);

/// One change, as a watch reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: String,
    pub object: Value,
}

/// A fault to inject into the next matching requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, or `*`.
    pub verb: String,
    /// A plural (`deployments`), or `*`.
    pub resource: String,
    /// 409, 429, 500 (or another HTTP status); 0 hangs the request for `hang_secs` and then
    /// answers 504.
    pub code: u16,
    /// How many matching requests get the fault.
    pub count: u32,
    #[serde(default = "one")]
    pub retry_after_secs: u64,
    #[serde(default = "thirty")]
    pub hang_secs: u64,
}

/// A [`Fault`] for only the requests whose body contains `body_contains` — e.g. the Lease
/// updates of one holder (`"holderIdentity":"a"`), so one instance's renewals hang while another's
/// takeover goes through (the split brain of a partition between one node and the API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BodyFault {
    #[serde(flatten)]
    pub fault: Fault,
    pub body_contains: String,
}

fn one() -> u64 {
    1
}
fn thirty() -> u64 {
    30
}

/// Everything the fake knows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub rv: u64,
    pub objects: BTreeMap<String, Value>,
    pub log: VecDeque<Change>,
    /// Counter behind generated uids.
    pub uid_counter: u64,
}

pub(crate) fn key_text(k: &Key) -> String {
    format!("{}|{}|{}|{}", k.0, k.1, k.2, k.3)
}

pub(crate) fn key_from_text(s: &str) -> Option<Key> {
    let mut it = s.splitn(4, '|');
    Some((it.next()?.into(), it.next()?.into(), it.next()?.into(), it.next()?.into()))
}

/// The mutable state behind the server's lock.
pub struct Inner {
    pub registry: Registry,
    pub objects: BTreeMap<Key, Value>,
    pub rv: u64,
    pub log: VecDeque<Change>,
    pub faults: Vec<Fault>,
    /// Faults for requests whose body contains a string; tried before `faults`.
    pub body_faults: Vec<BodyFault>,
    pub uid_counter: u64,
}

impl Inner {
    pub fn new(snapshot: Option<Snapshot>) -> Inner {
        let mut inner = Inner {
            registry: Registry::default(),
            objects: BTreeMap::new(),
            rv: 1,
            log: VecDeque::new(),
            faults: Vec::new(),
            body_faults: Vec::new(),
            uid_counter: 0,
        };
        if let Some(s) = snapshot {
            inner.rv = s.rv;
            inner.log = s.log;
            inner.uid_counter = s.uid_counter;
            for (k, v) in s.objects {
                if let Some(key) = key_from_text(&k) {
                    inner.objects.insert(key, v);
                }
            }
            // CRDs register their kinds again.
            let crds: Vec<Value> = inner
                .objects
                .iter()
                .filter(|(k, _)| k.1 == "customresourcedefinitions")
                .map(|(_, v)| v.clone())
                .collect();
            for crd in crds {
                let _ = inner.registry.register_crd(&crd);
            }
        } else {
            for ns in ["default", "kube-system", "kube-public"] {
                let obj = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
                let obj = inner.stamp_new(obj);
                inner
                    .objects
                    .insert((String::new(), "namespaces".into(), String::new(), ns.into()), obj);
            }
        }
        inner
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            rv: self.rv,
            objects: self.objects.iter().map(|(k, v)| (key_text(k), v.clone())).collect(),
            log: self.log.clone(),
            uid_counter: self.uid_counter,
        }
    }

    /// The next resourceVersion.
    pub fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn uid(&mut self) -> String {
        self.uid_counter += 1;
        let mut z = self.uid_counter.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z2 = z.rotate_left(17) ^ self.uid_counter;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            z >> 32,
            (z >> 16) & 0xffff,
            z & 0xfff,
            z2 & 0xfff,
            z2 >> 16 & 0xffff_ffff_ffff
        )
    }

    /// Sets uid, resourceVersion, generation and creationTimestamp on a new object.
    pub fn stamp_new(&mut self, mut obj: Value) -> Value {
        let rv = self.bump();
        let uid = self.uid();
        let md = obj["metadata"].as_object_mut().expect("metadata is an object");
        md.insert("uid".into(), uid.into());
        md.insert("resourceVersion".into(), rv.to_string().into());
        md.insert("generation".into(), 1.into());
        md.insert("creationTimestamp".into(), now_rfc3339().into());
        obj
    }

    /// Records a change for watches.
    pub fn record(&mut self, key: &Key, kind: &str, object: &Value) -> Change {
        let rv = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(self.rv);
        let c = Change {
            rv,
            group: key.0.clone(),
            plural: key.1.clone(),
            namespace: key.2.clone(),
            kind: kind.into(),
            object: object.clone(),
        };
        self.log.push_back(c.clone());
        while self.log.len() > LOG_CAPACITY {
            self.log.pop_front();
        }
        c
    }

    /// Takes the first matching fault, if any.
    pub fn take_fault(&mut self, verb: &str, plural: &str, body: &[u8]) -> Option<Fault> {
        let matches = |f: &Fault| f.count > 0 && (f.verb == "*" || f.verb == verb) && (f.resource == "*" || f.resource == plural);
        let contains = |needle: &str| !needle.is_empty() && body.windows(needle.len()).any(|w| w == needle.as_bytes());
        if let Some(i) = self
            .body_faults
            .iter()
            .position(|b| matches(&b.fault) && contains(&b.body_contains))
        {
            self.body_faults[i].fault.count -= 1;
            let f = self.body_faults[i].fault.clone();
            if f.count == 0 {
                self.body_faults.remove(i);
            }
            return Some(f);
        }
        let i = self
            .faults
            .iter()
            .position(|f| f.count > 0 && (f.verb == "*" || f.verb == verb) && (f.resource == "*" || f.resource == plural))?;
        self.faults[i].count -= 1;
        let f = self.faults[i].clone();
        if self.faults[i].count == 0 {
            self.faults.remove(i);
        }
        Some(f)
    }
}

/// Now in RFC 3339, seconds precision, as Kubernetes writes timestamps.
pub fn now_rfc3339() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    cellwarden_models::Timestamp(ms / 1000 * 1000).to_rfc3339()
}
