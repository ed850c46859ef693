//! fakekube: a stateful fake Kubernetes API server for cellwarden's end-to-end tests. Dev-only:
//! it is never shipped in the image. No kube-apiserver can be installed on the machines this
//! project is built on, and an operator tested only against canned mock replies is not
//! trustworthy; this fake speaks the API over HTTP faithfully enough for kube-rs, kubectl and the
//! Helm chart's manifests.
//!
//! Layout:
//! - [`registry`]: served kinds, discovery documents, CRD registration.
//! - [`store`]: objects, resourceVersions, the change log for watches, faults, snapshots.
//! - [`patch`]: merge, strategic merge, JSON patch, server-side apply and managedFields.
//! - [`selector`]: label and field selectors.
//! - [`rbac`]: RBAC for one identity (the operator's token), when a test asks for it.
//! - this file: the HTTP server — routing, verbs, watches, subresources, Status errors, faults.
//!
//! What it does: discovery; get, list and watch (from a resourceVersion, with bookmarks and
//! `timeoutSeconds`) with label and field selectors; create, replace, delete with finalizers;
//! JSON, merge and strategic-merge patches; server-side apply with conflicts; `status` and
//! `scale` subresources; optimistic concurrency; proper `Status` errors. What it does not: run
//! controllers (a Deployment's pods never appear), authenticate (except the one token whose RBAC
//! [`FakeKube::enforce_rbac`] checks), validate schemas, serve OpenAPI,
//! or read protobuf bodies (kubectl's imperative `create <kind>` sends protobuf; `apply` sends JSON).
//!
//! Admin endpoints: `POST /fakekube/faults` (a [`store::Fault`], or a [`store::BodyFault`] with
//! `body_contains` for the requests whose body contains it), `GET`/`DELETE /fakekube/faults`,
//! `GET /fakekube/state` (a [`store::Snapshot`]).

// Handlers return a ready `Response` as their error: boxing it would only add noise to a test tool.
#![allow(clippy::result_large_err)]

pub mod patch;
pub mod rbac;
pub mod registry;
pub mod selector;
pub mod store;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use registry::ResourceType;
use selector::{FieldSelector, LabelSelector};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use store::{BodyFault, Change, Fault, Inner, Key, Snapshot};
use tokio::sync::{broadcast, watch};

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_INTERVAL_SECS: u64 = 2;
/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

struct Shared {
    inner: Mutex<Inner>,
    /// The identity whose requests are checked against its grants, once a test set it.
    rbac: Mutex<Option<rbac::Rbac>>,
    changes: broadcast::Sender<Change>,
    // Flipped to true when the server stops, so open watches end and connections close.
    stopping: watch::Receiver<bool>,
    state_file: Option<PathBuf>,
}

/// Options for [`FakeKube::start`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// 0: any free port.
    pub port: u16,
    /// Save the state here after every change, and load it at start when it exists.
    pub state_file: Option<PathBuf>,
    /// Start from this state (e.g. [`FakeKube::stop`]'s).
    pub snapshot: Option<Snapshot>,
}

/// A running fake API server.
pub struct FakeKube {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeKube {
    /// Starts a fake on 127.0.0.1.
    pub async fn start(opts: Options) -> std::io::Result<FakeKube> {
        let snapshot = match (&opts.snapshot, &opts.state_file) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(f)) if f.exists() => {
                let text = std::fs::read_to_string(f)?;
                Some(
                    serde_json::from_str(&text)
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", f.display())))?,
                )
            }
            _ => None,
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopping) = watch::channel(false);
        let (changes, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::new(snapshot)),
            rbac: Mutex::new(None),
            changes,
            stopping: stopping.clone(),
            state_file: opts.state_file.clone(),
        });
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let mut shutdown = stopping;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = shutdown.wait_for(|s| *s).await;
                })
                .await;
        });
        Ok(FakeKube { addr, shared, stop, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig pointing at this fake (plain HTTP, no credentials).
    pub fn kubeconfig(&self) -> String {
        kubeconfig_for(&self.url())
    }

    pub fn snapshot(&self) -> Snapshot {
        self.shared.inner.lock().expect("state lock").snapshot()
    }

    /// From now on, requests presenting `token` are allowed only what `grants` grant (403
    /// otherwise, recorded in [`FakeKube::refused`]); other requests are not checked.
    pub fn enforce_rbac(&self, token: &str, grants: Vec<rbac::Grant>) {
        *self.shared.rbac.lock().expect("rbac lock") = Some(rbac::Rbac {
            token: token.into(),
            grants,
            refused: Vec::new(),
        });
    }

    /// The requests [`FakeKube::enforce_rbac`] refused, in order.
    pub fn refused(&self) -> Vec<String> {
        self.shared
            .rbac
            .lock()
            .expect("rbac lock")
            .as_ref()
            .map(|r| r.refused.clone())
            .unwrap_or_default()
    }

    /// A kubeconfig for this fake whose user presents `token` (the identity RBAC checks).
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        kubeconfig_with_user(&self.url(), &format!("\n    token: {token}"))
    }

    /// Injects a fault into the next matching requests.
    pub fn inject(&self, fault: Fault) {
        self.shared.inner.lock().expect("state lock").faults.push(fault);
    }

    /// Injects a fault into the next matching requests whose body contains `needle` (a
    /// [`store::BodyFault`]).
    pub fn inject_when_body_contains(&self, fault: Fault, needle: &str) {
        self.shared.inner.lock().expect("state lock").body_faults.push(BodyFault {
            fault,
            body_contains: needle.to_string(),
        });
    }

    /// Stops serving (open watches end) and returns the state, to start again with.
    pub async fn stop(self) -> Snapshot {
        let snap = self.snapshot();
        let _ = self.stop.send(true);
        let _ = self.task.await;
        snap
    }

    /// Stops and starts again on the same port with the state kept.
    pub async fn restart(self) -> std::io::Result<FakeKube> {
        let port = self.addr.port();
        let state_file = self.shared.state_file.clone();
        let snap = self.stop().await;
        FakeKube::start(Options {
            port,
            state_file,
            snapshot: Some(snap),
        })
        .await
    }
}

/// A kubeconfig for a fake at `url`.
pub fn kubeconfig_for(url: &str) -> String {
    kubeconfig_with_user(url, " {}")
}

/// A kubeconfig for a fake at `url` whose user entry is `user` (YAML after `user:`).
fn kubeconfig_with_user(url: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fakekube\n  cluster:\n    server: {url}\ncontexts:\n- name: fakekube\n  context:\n    cluster: fakekube\n    user: fakekube\n    namespace: default\ncurrent-context: fakekube\nusers:\n- name: fakekube\n  user:{user}\n"
    )
}

/// The 403 of a request by the RBAC-checked identity that its grants do not allow (recorded).
fn forbidden(
    shared: &Shared,
    headers: &HeaderMap,
    rt: &ResourceType,
    verb: &str,
    namespace: Option<&str>,
    name: Option<&str>,
    sub: Option<&str>,
) -> Option<Response> {
    let mut guard = shared.rbac.lock().expect("rbac lock");
    let rbac = guard.as_mut()?;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented != Some(rbac.token.as_str()) {
        return None;
    }
    let resource = match sub {
        Some(s) => format!("{}/{s}", rt.plural),
        None => rt.plural.clone(),
    };
    if rbac.allows(&rt.group, &resource, verb, namespace) {
        return None;
    }
    let scope = namespace.map(|ns| format!(" in the namespace \"{ns}\"")).unwrap_or_default();
    let message = format!(
        "{}{} is forbidden: User \"system:serviceaccount:cellwarden:cellwarden\" cannot {verb} resource \"{resource}\" in API group \"{}\"{scope}",
        rt.qualified(),
        name.map(|n| format!(" \"{n}\"")).unwrap_or_default(),
        rt.group
    );
    rbac.refused.push(format!("{verb} {resource} in group {:?}{scope}", rt.group));
    Some(status(403, "Forbidden", message, None))
}

// ---------------------------------------------------------------------------------------------
// Responses

fn json_response(code: StatusCode, v: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(v).expect("JSON"),
    )
        .into_response()
}

/// A Kubernetes `Status` error.
fn status(code: u16, reason: &str, message: String, details: Option<Value>) -> Response {
    let mut body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code});
    if let Some(d) = details {
        body["details"] = d;
    }
    json_response(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &body)
}

fn not_found(rt: &ResourceType, name: &str) -> Response {
    status(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", rt.qualified()),
        Some(json!({"name": name, "group": rt.group, "kind": rt.plural})),
    )
}

fn bad_request(message: String) -> Response {
    status(400, "BadRequest", message, None)
}

fn invalid(rt: &ResourceType, name: &str, message: String) -> Response {
    status(
        422,
        "Invalid",
        format!("{} \"{name}\" is invalid: {message}", rt.kind),
        Some(json!({"name": name, "group": rt.group, "kind": rt.kind})),
    )
}

fn conflict(rt: &ResourceType, name: &str, message: String) -> Response {
    status(
        409,
        "Conflict",
        format!("Operation cannot be fulfilled on {} \"{name}\": {message}", rt.qualified()),
        Some(json!({"name": name, "group": rt.group, "kind": rt.plural})),
    )
}

// ---------------------------------------------------------------------------------------------
// Routing

enum Route {
    Version,
    CoreVersions,
    Groups,
    Group(String),
    ResourceList(String, String),
    Resource {
        rt: ResourceType,
        namespace: Option<String>,
        name: Option<String>,
        sub: Option<String>,
    },
    Admin(Vec<String>),
    Unknown(String),
}

fn route(inner: &Inner, path: &str) -> Route {
    let segs: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(String::from).collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (group, version, rest): (&str, &str, &[&str]) = match s.as_slice() {
        ["version"] => return Route::Version,
        ["fakekube", rest @ ..] => return Route::Admin(rest.iter().map(|x| x.to_string()).collect()),
        ["api"] => return Route::CoreVersions,
        ["api", "v1"] => return Route::ResourceList(String::new(), "v1".into()),
        ["apis"] => return Route::Groups,
        ["apis", g] => return Route::Group(g.to_string()),
        ["apis", g, v] => return Route::ResourceList(g.to_string(), v.to_string()),
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (g, v, rest),
        _ => return Route::Unknown(path.into()),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if !(tail.is_empty() && matches!(*plural, "status" | "finalize")) => {
            (Some(ns.to_string()), {
                let mut v = vec![*plural];
                v.extend_from_slice(tail);
                v
            })
        }
        other => (None, other.to_vec()),
    };
    let Some(rt) = rest.first().and_then(|p| inner.registry.find(group, version, p)) else {
        return Route::Unknown(path.into());
    };
    if rest.len() > 3 {
        return Route::Unknown(path.into());
    }
    Route::Resource {
        rt: rt.clone(),
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.get(2).map(|s| s.to_string()),
    }
}

fn query_map(uri: &Uri) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if body.len() > MAX_BODY_BYTES {
        return status(
            413,
            "RequestEntityTooLarge",
            format!("request body of {} bytes is over the {MAX_BODY_BYTES}-byte limit", body.len()),
            None,
        );
    }
    let q = query_map(&uri);
    let r = {
        let inner = shared.inner.lock().expect("state lock");
        route(&inner, uri.path())
    };
    match r {
        Route::Version => json_response(
            StatusCode::OK,
            &json!({"major": "1", "minor": "37", "gitVersion": "v1.37.0-fakekube", "platform": "linux/amd64", "goVersion": "go1.25", "compiler": "gc", "buildDate": "2026-01-01T00:00:00Z", "gitCommit": "fakekube", "gitTreeState": "clean"}),
        ),
        Route::CoreVersions => json_response(StatusCode::OK, &shared.inner.lock().expect("lock").registry.core_versions()),
        Route::Groups => json_response(StatusCode::OK, &shared.inner.lock().expect("lock").registry.group_list()),
        Route::Group(g) => match shared.inner.lock().expect("lock").registry.group(&g) {
            Some(v) => json_response(StatusCode::OK, &v),
            None => status(
                404,
                "NotFound",
                format!("the server could not find the requested resource (group {g})"),
                None,
            ),
        },
        Route::ResourceList(g, v) => match shared.inner.lock().expect("lock").registry.resource_list(&g, &v) {
            Some(v) => json_response(StatusCode::OK, &v),
            None => status(404, "NotFound", "the server could not find the requested resource".into(), None),
        },
        Route::Admin(rest) => admin(&shared, &method, &rest, &body),
        Route::Unknown(p) => status(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({p})"),
            None,
        ),
        Route::Resource { rt, namespace, name, sub } => {
            let verb = match (&method, &name) {
                (&Method::GET, Some(_)) => "get",
                (&Method::GET, None) if matches!(q.get("watch").map(String::as_str), Some("true" | "1")) => "watch",
                (&Method::GET, None) => "list",
                (&Method::POST, None) => "create",
                (&Method::PUT, Some(_)) => "update",
                (&Method::PATCH, Some(_)) => "patch",
                (&Method::DELETE, Some(_)) => "delete",
                (&Method::DELETE, None) => "deletecollection",
                _ => return status(405, "MethodNotAllowed", format!("{method} is not supported here"), None),
            };
            if let Some(refused) = forbidden(&shared, &headers, &rt, verb, namespace.as_deref(), name.as_deref(), sub.as_deref()) {
                return refused;
            }
            let fault = shared.inner.lock().expect("lock").take_fault(verb, &rt.plural, &body);
            if let Some(f) = fault {
                return injected(f).await;
            }
            let ns = namespace.clone().unwrap_or_default();
            if rt.namespaced && namespace.is_none() && !matches!(verb, "list" | "watch") {
                return bad_request(format!("{} is namespaced: the request needs a namespace", rt.qualified()));
            }
            let ctype = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_string();
            let resp = match verb {
                "get" => get(&shared, &rt, &ns, name.as_deref().unwrap_or(""), sub.as_deref()),
                "list" => list(&shared, &rt, namespace.as_deref(), &q),
                "watch" => return watch_stream(shared.clone(), rt, namespace, q).await,
                "create" => create(&shared, &rt, &ns, &body, &ctype, &q),
                "update" => update(&shared, &rt, &ns, name.as_deref().unwrap_or(""), sub.as_deref(), &body, &ctype, &q),
                "patch" => patch_object(&shared, &rt, &ns, name.as_deref().unwrap_or(""), sub.as_deref(), &body, &ctype, &q),
                "delete" => delete(&shared, &rt, &ns, name.as_deref().unwrap_or("")),
                _ => delete_collection(&shared, &rt, namespace.as_deref(), &q),
            };
            if method != Method::GET {
                persist(&shared);
            }
            resp
        }
    }
}

async fn injected(f: Fault) -> Response {
    match f.code {
        0 => {
            tokio::time::sleep(std::time::Duration::from_secs(f.hang_secs)).await;
            status(504, "Timeout", "injected hang".into(), None)
        }
        409 => status(
            409,
            "Conflict",
            "injected conflict: the object has been modified; please apply your changes to the latest version and try again".into(),
            None,
        ),
        429 => {
            let mut r = status(
                429,
                "TooManyRequests",
                "injected: too many requests, please try again later".into(),
                Some(json!({"retryAfterSeconds": f.retry_after_secs})),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, f.retry_after_secs.to_string().parse().expect("digits"));
            r
        }
        code => status(code, "InternalError", format!("injected error {code}"), None),
    }
}

fn admin(shared: &Shared, method: &Method, rest: &[String], body: &[u8]) -> Response {
    let mut inner = shared.inner.lock().expect("lock");
    match (method, rest.first().map(String::as_str)) {
        (&Method::POST, Some("faults")) if serde_json::from_slice::<BodyFault>(body).is_ok() => {
            let f = serde_json::from_slice::<BodyFault>(body).expect("parsed just above");
            inner.body_faults.push(f.clone());
            json_response(StatusCode::CREATED, &serde_json::to_value(f).expect("JSON"))
        }
        (&Method::POST, Some("faults")) => match serde_json::from_slice::<Fault>(body) {
            Ok(f) => {
                inner.faults.push(f.clone());
                json_response(StatusCode::CREATED, &serde_json::to_value(f).expect("JSON"))
            }
            Err(e) => bad_request(format!("not a fault: {e}")),
        },
        (&Method::GET, Some("faults")) => json_response(StatusCode::OK, &serde_json::to_value(&inner.faults).expect("JSON")),
        (&Method::DELETE, Some("faults")) => {
            inner.faults.clear();
            inner.body_faults.clear();
            json_response(StatusCode::OK, &json!({"cleared": true}))
        }
        (&Method::GET, Some("state")) => json_response(StatusCode::OK, &serde_json::to_value(inner.snapshot()).expect("JSON")),
        (&Method::GET, Some("healthz")) => json_response(StatusCode::OK, &json!({"ok": true})),
        _ => status(404, "NotFound", "unknown admin endpoint".into(), None),
    }
}

fn persist(shared: &Shared) {
    let Some(path) = &shared.state_file else { return };
    let snap = shared.inner.lock().expect("lock").snapshot();
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, serde_json::to_vec(&snap).expect("JSON")).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

// ---------------------------------------------------------------------------------------------
// Verbs

fn key(rt: &ResourceType, ns: &str, name: &str) -> Key {
    (
        rt.group.clone(),
        rt.plural.clone(),
        if rt.namespaced { ns.to_string() } else { String::new() },
        name.to_string(),
    )
}

fn parse_body(body: &[u8], ctype: &str) -> Result<Value, String> {
    if ctype.contains("protobuf") {
        return Err(
            "protobuf bodies are not supported by fakekube: send JSON (kubectl apply does; kubectl create <kind> sends protobuf)".into(),
        );
    }
    if ctype.contains("yaml") {
        let text = std::str::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?;
        serde_yaml_ng::from_str(text).map_err(|e| format!("invalid YAML: {e}"))
    } else {
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

fn rv_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn manager(q: &HashMap<String, String>) -> String {
    q.get("fieldManager").cloned().unwrap_or_else(|| "unknown".into())
}

/// The managers' field sets of an object, from its `metadata.managedFields`.
fn managers_of(obj: &Value) -> Vec<(String, String, BTreeSet<patch::FieldPath>)> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    let m = e.get("manager")?.as_str()?.to_string();
                    let op = e.get("operation").and_then(Value::as_str).unwrap_or("Update").to_string();
                    Some((m, op, patch::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null))))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn set_managers(obj: &mut Value, api_version: &str, managers: &[(String, String, BTreeSet<patch::FieldPath>)]) {
    let entries: Vec<Value> = managers
        .iter()
        .filter(|(_, _, f)| !f.is_empty())
        .map(|(m, op, f)| json!({"manager": m, "operation": op, "apiVersion": api_version, "time": store::now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": patch::to_fields_v1(f)}))
        .collect();
    if let Some(md) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            md.remove("managedFields");
        } else {
            md.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

/// After a non-apply write by `manager`: it owns every field whose value changed.
fn track_update(old: Option<&Value>, new: &mut Value, manager: &str, api_version: &str) {
    let mut managers = old.map(managers_of).unwrap_or_default();
    let new_fields = patch::fields_of(new);
    let changed: BTreeSet<patch::FieldPath> = new_fields
        .iter()
        .filter(|p| old.and_then(|o| patch::value_at(o, p)) != patch::value_at(new, p))
        .cloned()
        .collect();
    if changed.is_empty() && old.is_some() {
        set_managers(new, api_version, &managers);
        return;
    }
    for (m, _, f) in managers.iter_mut() {
        if m != manager {
            f.retain(|p| !changed.contains(p));
        }
        f.retain(|p| new_fields.contains(p));
    }
    match managers.iter_mut().find(|(m, op, _)| m == manager && op == "Update") {
        Some((_, _, f)) => f.extend(changed),
        None => managers.push((manager.to_string(), "Update".into(), changed)),
    }
    set_managers(new, api_version, &managers);
}

fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
        }
        v
    };
    strip(old) != strip(new)
}

fn get(shared: &Shared, rt: &ResourceType, ns: &str, name: &str, sub: Option<&str>) -> Response {
    let inner = shared.inner.lock().expect("lock");
    let Some(obj) = inner.objects.get(&key(rt, ns, name)) else {
        return not_found(rt, name);
    };
    match sub {
        None | Some("status") => json_response(StatusCode::OK, obj),
        Some("scale") if rt.scale_subresource => json_response(StatusCode::OK, &scale_of(obj)),
        Some(s) => status(404, "NotFound", format!("{} has no subresource {s}", rt.qualified()), None),
    }
}

fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let replicas = obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1));
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"], "uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"], "creationTimestamp": obj["metadata"]["creationTimestamp"]},
        "spec": {"replicas": replicas},
        "status": {"replicas": obj.pointer("/status/replicas").cloned().unwrap_or(replicas.clone()), "selector": selector}
    })
}

fn selectors(q: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), Response> {
    let ls = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(|e| bad_request(format!("invalid labelSelector: {e}")))?;
    let fs = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))
        .map_err(|e| bad_request(format!("invalid fieldSelector: {e}")))?;
    Ok((ls, fs))
}

fn list(shared: &Shared, rt: &ResourceType, ns: Option<&str>, q: &HashMap<String, String>) -> Response {
    let (ls, fs) = match selectors(q) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let inner = shared.inner.lock().expect("lock");
    let items: Vec<Value> = inner
        .objects
        .iter()
        .filter(|(k, _)| k.0 == rt.group && k.1 == rt.plural && ns.is_none_or(|n| k.2 == n))
        .map(|(_, v)| v)
        .filter(|v| ls.matches(v) && fs.matches(v))
        .cloned()
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {"resourceVersion": inner.rv.to_string()}, "items": items}),
    )
}

fn create(shared: &Shared, rt: &ResourceType, ns: &str, body: &[u8], ctype: &str, q: &HashMap<String, String>) -> Response {
    let mut obj = match parse_body(body, ctype) {
        Ok(v) if v.is_object() => v,
        Ok(_) => return bad_request("the body is not an object".into()),
        Err(e) => return bad_request(e),
    };
    if let Some(k) = obj.get("kind").and_then(Value::as_str) {
        if k != rt.kind {
            return bad_request(format!("the kind {k} does not match the resource {}", rt.qualified()));
        }
    }
    obj["kind"] = rt.kind.clone().into();
    obj["apiVersion"] = rt.api_version().into();
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    let mut inner = shared.inner.lock().expect("lock");
    if obj.pointer("/metadata/name").and_then(Value::as_str).is_none_or(str::is_empty) {
        if let Some(prefix) = obj.pointer("/metadata/generateName").and_then(Value::as_str).map(String::from) {
            let n = inner.uid_counter + 1;
            obj["metadata"]["name"] = format!("{prefix}{:05x}", (n.wrapping_mul(0x9E37_79B9) >> 7) & 0xfffff).into();
        }
    }
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    if !valid_name(&name) {
        return invalid(rt, &name, format!("metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"));
    }
    if rt.namespaced {
        if let Some(body_ns) = obj.pointer("/metadata/namespace").and_then(Value::as_str) {
            if body_ns != ns {
                return bad_request("the namespace of the provided object does not match the namespace sent on the request".into());
            }
        }
        obj["metadata"]["namespace"] = ns.into();
        if !inner
            .objects
            .contains_key(&(String::new(), "namespaces".into(), String::new(), ns.to_string()))
        {
            return status(
                404,
                "NotFound",
                format!("namespaces \"{ns}\" not found"),
                Some(json!({"name": ns, "kind": "namespaces"})),
            );
        }
    } else if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("namespace");
    }
    let k = key(rt, ns, &name);
    if inner.objects.contains_key(&k) {
        return status(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified()),
            Some(json!({"name": name, "group": rt.group, "kind": rt.plural})),
        );
    }
    if let Some(m) = obj["metadata"].as_object_mut() {
        for f in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "managedFields",
            "generation",
        ] {
            m.remove(f);
        }
    }
    if rt.plural == "customresourcedefinitions" {
        if let Err(e) = inner.registry.register_crd(&obj) {
            return invalid(rt, &name, e);
        }
        obj["status"] = crd_status(&obj);
    }
    if rt.plural == "namespaces" && obj.pointer("/status/phase").is_none() {
        obj["status"] = json!({"phase": "Active"});
    }
    let mut obj = inner.stamp_new(obj);
    track_update(None, &mut obj, &manager(q), &rt.api_version());
    inner.objects.insert(k.clone(), obj.clone());
    let c = inner.record(&k, "ADDED", &obj);
    let _ = shared.changes.send(c);
    json_response(StatusCode::CREATED, &obj)
}

fn crd_status(crd: &Value) -> Value {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let now = store::now_rfc3339();
    json!({"acceptedNames": names, "conditions": [
        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now}
    ], "storedVersions": crd.pointer("/spec/versions").and_then(Value::as_array).map(|vs| vs.iter().filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true)).filter_map(|v| v.get("name").cloned()).collect::<Vec<_>>()).unwrap_or_default()})
}

/// Stores `new` in place of the current object: checks resourceVersion, keeps identity, bumps
/// generation on spec changes, tracks field managers, finishes deletions whose finalizers are gone.
#[allow(clippy::too_many_arguments)]
fn store_update(
    shared: &Shared,
    inner: &mut Inner,
    rt: &ResourceType,
    k: &Key,
    mut new: Value,
    sub: Option<&str>,
    mgr: &str,
    check_rv: bool,
) -> Response {
    let name = k.3.clone();
    let Some(old) = inner.objects.get(k).cloned() else {
        return not_found(rt, &name);
    };
    if check_rv {
        if let Some(rv) = rv_of(&new) {
            if Some(rv) != rv_of(&old) {
                return conflict(
                    rt,
                    &name,
                    "the object has been modified; please apply your changes to the latest version and try again".into(),
                );
            }
        }
    }
    if !new.is_object() {
        return bad_request("the body is not an object".into());
    }
    if new.pointer("/metadata/name").and_then(Value::as_str).is_some_and(|n| n != name) {
        return bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            new["metadata"]["name"]
        ));
    }
    // Subresource semantics.
    match sub {
        Some("status") => {
            let status = new.get("status").cloned();
            new = old.clone();
            match status {
                Some(s) => new["status"] = s,
                None => {
                    new.as_object_mut().expect("object").remove("status");
                }
            }
        }
        _ if rt.status_subresource => match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                new.as_object_mut().expect("object").remove("status");
            }
        },
        _ => {}
    }
    new["kind"] = rt.kind.clone().into();
    new["apiVersion"] = rt.api_version().into();
    if !new.get("metadata").is_some_and(Value::is_object) {
        new["metadata"] = json!({});
    }
    for f in ["name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "generation"] {
        match old["metadata"].get(f) {
            Some(v) => new["metadata"][f] = v.clone(),
            None => {
                new["metadata"].as_object_mut().expect("object").remove(f);
            }
        }
    }
    if spec_changed(&old, &new) {
        let g = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
        new["metadata"]["generation"] = (g + 1).into();
    }
    if rt.plural == "customresourcedefinitions" {
        if let Err(e) = inner.registry.register_crd(&new) {
            return invalid(rt, &name, e);
        }
    }
    track_update(Some(&old), &mut new, mgr, &rt.api_version());
    // Nothing changed: no new resourceVersion, no event (as the real API server does).
    let same = {
        let mut a = old.clone();
        let mut b = new.clone();
        for v in [&mut a, &mut b] {
            if let Some(m) = v["metadata"].as_object_mut() {
                m.remove("resourceVersion");
                m.remove("managedFields");
            }
        }
        a == b
    };
    if same {
        return json_response(StatusCode::OK, &old);
    }
    let rv = inner.bump();
    new["metadata"]["resourceVersion"] = rv.to_string().into();
    let finalizers_gone = new
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if new.pointer("/metadata/deletionTimestamp").is_some() && finalizers_gone {
        inner.objects.remove(k);
        let c = inner.record(k, "DELETED", &new);
        let _ = shared.changes.send(c);
        return json_response(StatusCode::OK, &new);
    }
    inner.objects.insert(k.clone(), new.clone());
    let c = inner.record(k, "MODIFIED", &new);
    let _ = shared.changes.send(c);
    json_response(StatusCode::OK, &new)
}

#[allow(clippy::too_many_arguments)]
fn update(
    shared: &Shared,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    body: &[u8],
    ctype: &str,
    q: &HashMap<String, String>,
) -> Response {
    let new = match parse_body(body, ctype) {
        Ok(v) => v,
        Err(e) => return bad_request(e),
    };
    let mut inner = shared.inner.lock().expect("lock");
    let k = key(rt, ns, name);
    if sub == Some("scale") {
        return write_scale(shared, &mut inner, rt, &k, |_| new.pointer("/spec/replicas").cloned(), &manager(q));
    }
    if rt.namespaced && new.pointer("/metadata/namespace").and_then(Value::as_str).is_some_and(|n| n != ns) {
        return bad_request("the namespace of the provided object does not match the namespace sent on the request".into());
    }
    store_update(shared, &mut inner, rt, &k, new, sub, &manager(q), true)
}

fn write_scale(
    shared: &Shared,
    inner: &mut Inner,
    rt: &ResourceType,
    k: &Key,
    replicas: impl Fn(&Value) -> Option<Value>,
    mgr: &str,
) -> Response {
    if !rt.scale_subresource {
        return status(404, "NotFound", format!("{} has no scale subresource", rt.qualified()), None);
    }
    let Some(old) = inner.objects.get(k).cloned() else {
        return not_found(rt, &k.3);
    };
    let Some(r) = replicas(&scale_of(&old)).filter(|r| r.as_i64().is_some_and(|n| n >= 0)) else {
        return invalid(rt, &k.3, "spec.replicas: Invalid value: must be a non-negative integer".into());
    };
    let mut new = old.clone();
    new["spec"]["replicas"] = r;
    let resp = store_update(shared, inner, rt, k, new, None, mgr, false);
    if resp.status() != StatusCode::OK {
        return resp;
    }
    match inner.objects.get(k) {
        Some(o) => json_response(StatusCode::OK, &scale_of(o)),
        None => resp,
    }
}

#[allow(clippy::too_many_arguments)]
fn patch_object(
    shared: &Shared,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    body: &[u8],
    ctype: &str,
    q: &HashMap<String, String>,
) -> Response {
    let is_apply = ctype.starts_with("application/apply-patch");
    let patch_body = match parse_body(body, ctype) {
        Ok(v) => v,
        Err(e) => return bad_request(e),
    };
    let mut inner = shared.inner.lock().expect("lock");
    let k = key(rt, ns, name);
    let is_custom = inner.registry.types.iter().any(|t| t.group == rt.group && t.plural == rt.plural)
        && inner
            .objects
            .keys()
            .any(|c| c.1 == "customresourcedefinitions" && c.3 == format!("{}.{}", rt.plural, rt.group));
    let apply_patch = |target: &mut Value| -> Result<(), Response> {
        if ctype.starts_with("application/json-patch") {
            patch::json_patch(target, &patch_body)
                .map_err(|e| status(422, "Invalid", format!("the JSON patch could not be applied: {e}"), None))
        } else if ctype.starts_with("application/merge-patch") {
            patch::merge_patch(target, &patch_body);
            Ok(())
        } else if ctype.starts_with("application/strategic-merge-patch") {
            if is_custom {
                return Err(status(
                    415,
                    "UnsupportedMediaType",
                    "strategic merge patch is not supported for custom resources".into(),
                    None,
                ));
            }
            patch::strategic_merge(target, &patch_body);
            Ok(())
        } else {
            Err(status(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml ({ctype})"), None))
        }
    };
    if is_apply {
        let Some(mgr) = q.get("fieldManager").cloned() else {
            return bad_request("PATCH with apply requires fieldManager".into());
        };
        let force = q.get("force").is_some_and(|f| f == "true");
        return server_side_apply(shared, &mut inner, rt, &k, sub, patch_body, &mgr, force);
    }
    if sub == Some("scale") {
        return write_scale(
            shared,
            &mut inner,
            rt,
            &k,
            |scale| {
                let mut s = scale.clone();
                apply_patch(&mut s).ok()?;
                s.pointer("/spec/replicas").cloned()
            },
            &manager(q),
        );
    }
    let Some(old) = inner.objects.get(&k).cloned() else {
        return not_found(rt, name);
    };
    let mut new = old.clone();
    if let Err(r) = apply_patch(&mut new) {
        return r;
    }
    // A patch that names a resourceVersion is a precondition.
    let check = rv_of(&new) != rv_of(&old);
    store_update(shared, &mut inner, rt, &k, new, sub, &manager(q), check)
}

#[allow(clippy::too_many_arguments)]
fn server_side_apply(
    shared: &Shared,
    inner: &mut Inner,
    rt: &ResourceType,
    k: &Key,
    sub: Option<&str>,
    applied: Value,
    mgr: &str,
    force: bool,
) -> Response {
    if !applied.is_object() {
        return bad_request("the applied configuration is not an object".into());
    }
    if let Some(kind) = applied.get("kind").and_then(Value::as_str) {
        if kind != rt.kind {
            return bad_request(format!("the kind {kind} does not match the resource {}", rt.qualified()));
        }
    }
    let api_version = rt.api_version();
    let applied_fields = patch::fields_of(&applied);
    let Some(old) = inner.objects.get(k).cloned() else {
        if sub.is_some() {
            return not_found(rt, &k.3);
        }
        // Apply creates.
        let mut obj = applied.clone();
        obj["kind"] = rt.kind.clone().into();
        obj["apiVersion"] = api_version.clone().into();
        obj["metadata"]["name"] = k.3.clone().into();
        if rt.namespaced {
            obj["metadata"]["namespace"] = k.2.clone().into();
            if !inner
                .objects
                .contains_key(&(String::new(), "namespaces".into(), String::new(), k.2.clone()))
            {
                return status(404, "NotFound", format!("namespaces \"{}\" not found", k.2), None);
            }
        }
        if rt.plural == "customresourcedefinitions" {
            if let Err(e) = inner.registry.register_crd(&obj) {
                return invalid(rt, &k.3, e);
            }
            obj["status"] = crd_status(&obj);
        }
        let mut obj = inner.stamp_new(obj);
        set_managers(&mut obj, &api_version, &[(mgr.to_string(), "Apply".into(), applied_fields)]);
        inner.objects.insert(k.clone(), obj.clone());
        let c = inner.record(k, "ADDED", &obj);
        let _ = shared.changes.send(c);
        return json_response(StatusCode::CREATED, &obj);
    };
    let mut managers = managers_of(&old);
    // Conflicts: fields another manager owns whose value the applied configuration changes.
    let mut conflicts = Vec::new();
    for (m, _, f) in &managers {
        if m == mgr {
            continue;
        }
        for p in f.intersection(&applied_fields) {
            if patch::value_at(&old, p) != patch::value_at(&applied, p) {
                conflicts.push((m.clone(), p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(m, p)| json!({"type": "FieldManagerConflict", "message": format!("conflict with \"{m}\""), "field": patch::display(p)}))
            .collect();
        let list: Vec<String> = conflicts
            .iter()
            .map(|(m, p)| format!("- {}: conflict with \"{m}\"", patch::display(p)))
            .collect();
        return status(
            409,
            "Conflict",
            format!(
                "Apply failed with {} conflict{}: {}",
                conflicts.len(),
                if conflicts.len() == 1 { "" } else { "s" },
                list.join("\n")
            ),
            Some(json!({"name": k.3, "group": rt.group, "kind": rt.plural, "causes": causes})),
        );
    }
    // Forced: the other managers lose the fields.
    for (m, _, f) in managers.iter_mut() {
        if m != mgr {
            f.retain(|p| !conflicts.iter().any(|(_, c)| c == p));
        }
    }
    let previously: BTreeSet<patch::FieldPath> = managers
        .iter()
        .filter(|(m, op, _)| m == mgr && op == "Apply")
        .flat_map(|(_, _, f)| f.iter().cloned())
        .collect();
    let others: BTreeSet<patch::FieldPath> = managers
        .iter()
        .filter(|(m, _, _)| m != mgr)
        .flat_map(|(_, _, f)| f.iter().cloned())
        .collect();
    let mut new = old.clone();
    // Fields this manager applied before but no longer applies, and nobody else owns, go away.
    for p in previously.difference(&applied_fields) {
        if !others.contains(p) {
            patch::remove_at(&mut new, p);
        }
    }
    let mut body = applied.clone();
    if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
        ] {
            m.remove(f);
        }
    }
    if sub == Some("status") {
        if let Some(s) = body.get("status") {
            patch::apply_merge(
                new.as_object_mut().expect("object").entry("status").or_insert(json!({})),
                s,
                "status",
            );
        }
    } else {
        if rt.status_subresource {
            if let Some(m) = body.as_object_mut() {
                m.remove("status");
            }
        }
        patch::apply_merge(&mut new, &body, "");
    }
    managers.retain(|(m, op, _)| !(m == mgr && op == "Apply"));
    managers.push((mgr.to_string(), "Apply".into(), applied_fields));
    set_managers(&mut new, &api_version, &managers);
    // Hand the managedFields we computed to store_update as they are.
    let keep = new.pointer("/metadata/managedFields").cloned();
    let resp = store_update(shared, inner, rt, k, new, None, mgr, false);
    if let (Some(mf), Some(obj)) = (keep, inner.objects.get_mut(k)) {
        obj["metadata"]["managedFields"] = mf.clone();
        let obj = obj.clone();
        return json_response(resp.status(), &obj);
    }
    resp
}

fn delete(shared: &Shared, rt: &ResourceType, ns: &str, name: &str) -> Response {
    let mut inner = shared.inner.lock().expect("lock");
    let k = key(rt, ns, name);
    let Some(mut obj) = inner.objects.get(&k).cloned() else {
        return not_found(rt, name);
    };
    let has_finalizers = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if has_finalizers && rt.plural != "namespaces" {
        if obj.pointer("/metadata/deletionTimestamp").is_none() {
            obj["metadata"]["deletionTimestamp"] = store::now_rfc3339().into();
            let rv = inner.bump();
            obj["metadata"]["resourceVersion"] = rv.to_string().into();
            inner.objects.insert(k.clone(), obj.clone());
            let c = inner.record(&k, "MODIFIED", &obj);
            let _ = shared.changes.send(c);
        }
        return json_response(StatusCode::ACCEPTED, &obj);
    }
    remove(shared, &mut inner, &k, obj.clone());
    // Deleting a namespace deletes what is in it; deleting a CRD deletes its kind and objects.
    if rt.plural == "namespaces" {
        let inside: Vec<Key> = inner.objects.keys().filter(|x| x.2 == name).cloned().collect();
        for x in inside {
            if let Some(o) = inner.objects.get(&x).cloned() {
                remove(shared, &mut inner, &x, o);
            }
        }
    }
    if rt.plural == "customresourcedefinitions" {
        if let (Some(g), Some(p)) = (
            obj.pointer("/spec/group").and_then(Value::as_str),
            obj.pointer("/spec/names/plural").and_then(Value::as_str),
        ) {
            let (g, p) = (g.to_string(), p.to_string());
            inner.registry.unregister_crd(&g, &p);
            let owned: Vec<Key> = inner.objects.keys().filter(|x| x.0 == g && x.1 == p).cloned().collect();
            for x in owned {
                if let Some(o) = inner.objects.get(&x).cloned() {
                    remove(shared, &mut inner, &x, o);
                }
            }
        }
    }
    json_response(StatusCode::OK, &obj)
}

fn remove(shared: &Shared, inner: &mut Inner, k: &Key, mut obj: Value) {
    inner.objects.remove(k);
    let rv = inner.bump();
    obj["metadata"]["resourceVersion"] = rv.to_string().into();
    let c = inner.record(k, "DELETED", &obj);
    let _ = shared.changes.send(c);
}

fn delete_collection(shared: &Shared, rt: &ResourceType, ns: Option<&str>, q: &HashMap<String, String>) -> Response {
    let (ls, fs) = match selectors(q) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let names: Vec<(String, String)> = {
        let inner = shared.inner.lock().expect("lock");
        inner
            .objects
            .iter()
            .filter(|(k, v)| k.0 == rt.group && k.1 == rt.plural && ns.is_none_or(|n| k.2 == n) && ls.matches(v) && fs.matches(v))
            .map(|(k, _)| (k.2.clone(), k.3.clone()))
            .collect()
    };
    for (n, name) in &names {
        let _ = delete(shared, rt, n, name);
    }
    json_response(
        StatusCode::OK,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": {"kind": rt.plural, "group": rt.group}}),
    )
}

// ---------------------------------------------------------------------------------------------
// Watch

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).expect("JSON");
    line.push(b'\n');
    Bytes::from(line)
}

async fn watch_stream(shared: Arc<Shared>, rt: ResourceType, ns: Option<String>, q: HashMap<String, String>) -> Response {
    let (ls, fs) = match selectors(&q) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let timeout = q.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).unwrap_or(1800);
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let from: Option<u64> = q
        .get("resourceVersion")
        .filter(|s| !s.is_empty() && *s != "0")
        .and_then(|s| s.parse().ok());
    let matches = {
        let rt = rt.clone();
        let ns = ns.clone();
        move |c: &Change| {
            c.group == rt.group
                && c.plural == rt.plural
                && ns.as_deref().is_none_or(|n| c.namespace == n)
                && ls.matches(&c.object)
                && fs.matches(&c.object)
        }
    };
    // Subscribe first, then read what already happened, so nothing falls between the two.
    let (mut live, initial, mut last_rv, gone) = {
        let inner = shared.inner.lock().expect("lock");
        let live = shared.changes.subscribe();
        match from {
            None => {
                let items: Vec<Bytes> = inner
                    .objects
                    .iter()
                    .filter(|(k, _)| k.0 == rt.group && k.1 == rt.plural && ns.as_deref().is_none_or(|n| k.2 == n))
                    .map(|(k, v)| Change {
                        rv: 0,
                        group: k.0.clone(),
                        plural: k.1.clone(),
                        namespace: k.2.clone(),
                        kind: "ADDED".into(),
                        object: v.clone(),
                    })
                    .filter(|c| matches(c))
                    .map(|c| event_line("ADDED", &c.object))
                    .collect();
                (live, items, inner.rv, false)
            }
            Some(rv) => {
                let oldest = inner.log.front().map_or(inner.rv, |c| c.rv);
                let gone = rv + 1 < oldest && rv < inner.rv;
                let items: Vec<Bytes> = inner
                    .log
                    .iter()
                    .filter(|c| c.rv > rv && matches(c))
                    .map(|c| event_line(&c.kind, &c.object))
                    .collect();
                (live, items, inner.rv.max(rv), gone)
            }
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let mut stopping = shared.stopping.clone();
    let api_version = rt.api_version();
    let kind = rt.kind.clone();
    tokio::spawn(async move {
        if *stopping.borrow() {
            return;
        }
        if gone {
            let st = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "too old resource version", "reason": "Expired", "code": 410});
            let _ = tx.send(event_line("ERROR", &st)).await;
            return;
        }
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(std::time::Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(BOOKMARK_INTERVAL_SECS));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = stopping.changed() => return,
                _ = tick.tick(), if bookmarks => {
                    let b = json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": last_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
                    if tx.send(event_line("BOOKMARK", &b)).await.is_err() { return; }
                }
                msg = live.recv() => match msg {
                    Ok(c) => {
                        if c.rv > last_rv {
                            last_rv = last_rv.max(c.rv);
                            if matches(&c) && tx.send(event_line(&c.kind, &c.object)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let st = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "watch fell behind", "reason": "Expired", "code": 410});
                        let _ = tx.send(event_line("ERROR", &st)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let stream = futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|b| (Ok::<Bytes, std::io::Error>(b), rx)) },
    );
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .expect("response")
}
