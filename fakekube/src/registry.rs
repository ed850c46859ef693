//! The resource types the fake serves, and the discovery documents that describe them
//! (`/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`), so kube-rs and kubectl find them.
//! A `CustomResourceDefinition` created through the API registers its kind here.

use serde_json::{json, Value};

/// One served resource type.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    /// URL segment, e.g. `deployments`.
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    /// PUT/PATCH `.../status` changes only `.status`; the main resource ignores status changes.
    pub status_subresource: bool,
    /// `.../scale` reads and writes `.spec.replicas` as an `autoscaling/v1` Scale.
    pub scale_subresource: bool,
    pub short_names: Vec<String>,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// `deployments.apps`, as Status messages name resources.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    status: bool,
    scale: bool,
    short: &[&str],
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        namespaced,
        status_subresource: status,
        scale_subresource: scale,
        short_names: short.iter().map(|s| s.to_string()).collect(),
    }
}

/// The registry: built-in kinds plus those registered by CRDs.
#[derive(Debug, Clone)]
pub struct Registry {
    pub types: Vec<ResourceType>,
}

impl Default for Registry {
    fn default() -> Self {
        let types = vec![
            builtin("", "v1", "Namespace", "namespaces", false, true, false, &["ns"]),
            builtin("", "v1", "Pod", "pods", true, true, false, &["po"]),
            builtin("", "v1", "Node", "nodes", false, true, false, &["no"]),
            builtin("", "v1", "ConfigMap", "configmaps", true, false, false, &["cm"]),
            builtin("", "v1", "Secret", "secrets", true, false, false, &[]),
            builtin("", "v1", "Event", "events", true, false, false, &["ev"]),
            builtin("", "v1", "Service", "services", true, true, false, &["svc"]),
            builtin("", "v1", "ServiceAccount", "serviceaccounts", true, false, false, &["sa"]),
            builtin("events.k8s.io", "v1", "Event", "events", true, false, false, &["ev"]),
            builtin("apps", "v1", "Deployment", "deployments", true, true, true, &["deploy"]),
            builtin("apps", "v1", "StatefulSet", "statefulsets", true, true, true, &["sts"]),
            // Served for the rollback actuator, which lists a Deployment's ReplicaSets by its
            // selector and reads their revision annotation (no controller creates them here).
            builtin("apps", "v1", "ReplicaSet", "replicasets", true, true, true, &["rs"]),
            builtin("coordination.k8s.io", "v1", "Lease", "leases", true, false, false, &[]),
            builtin("rbac.authorization.k8s.io", "v1", "Role", "roles", true, false, false, &[]),
            builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "RoleBinding",
                "rolebindings",
                true,
                false,
                false,
                &[],
            ),
            builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRole",
                "clusterroles",
                false,
                false,
                false,
                &[],
            ),
            builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRoleBinding",
                "clusterrolebindings",
                false,
                false,
                false,
                &[],
            ),
            builtin(
                "policy",
                "v1",
                "PodDisruptionBudget",
                "poddisruptionbudgets",
                true,
                true,
                false,
                &["pdb"],
            ),
            builtin(
                "networking.k8s.io",
                "v1",
                "NetworkPolicy",
                "networkpolicies",
                true,
                false,
                false,
                &["netpol"],
            ),
            builtin(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
                true,
                false,
                &["crd", "crds"],
            ),
            builtin("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", true, true, false, &[]),
        ];
        Registry { types }
    }
}

impl Registry {
    /// The type served at `group`/`version` under `plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// Registers (or re-registers) the kinds a CRD object defines; returns them.
    pub fn register_crd(&mut self, crd: &Value) -> Result<Vec<ResourceType>, String> {
        let spec = crd.get("spec").ok_or("a CRD needs a spec")?;
        let group = spec.get("group").and_then(Value::as_str).ok_or("spec.group is required")?;
        let names = spec.get("names").ok_or("spec.names is required")?;
        let plural = names.get("plural").and_then(Value::as_str).ok_or("spec.names.plural is required")?;
        let kind = names.get("kind").and_then(Value::as_str).ok_or("spec.names.kind is required")?;
        let singular = names
            .get("singular")
            .and_then(Value::as_str)
            .unwrap_or(&kind.to_ascii_lowercase())
            .to_string();
        let short: Vec<String> = names
            .get("shortNames")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let scope = spec.get("scope").and_then(Value::as_str).unwrap_or("Namespaced");
        let expected_name = format!("{plural}.{group}");
        if crd.pointer("/metadata/name").and_then(Value::as_str) != Some(expected_name.as_str()) {
            return Err(format!("metadata.name must be {expected_name}"));
        }
        let versions = spec.get("versions").and_then(Value::as_array).ok_or("spec.versions is required")?;
        if versions.is_empty() {
            return Err("spec.versions must not be empty".into());
        }
        self.unregister_crd(group, plural);
        let mut added = Vec::new();
        for v in versions {
            let name = v.get("name").and_then(Value::as_str).ok_or("spec.versions[].name is required")?;
            if v.get("served").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let t = ResourceType {
                group: group.into(),
                version: name.into(),
                kind: kind.into(),
                plural: plural.into(),
                singular: singular.clone(),
                namespaced: scope == "Namespaced",
                status_subresource: v.pointer("/subresources/status").is_some(),
                scale_subresource: v.pointer("/subresources/scale").is_some(),
                short_names: short.clone(),
            };
            self.types.push(t.clone());
            added.push(t);
        }
        Ok(added)
    }

    pub fn unregister_crd(&mut self, group: &str, plural: &str) {
        self.types.retain(|t| !(t.group == group && t.plural == plural));
    }

    fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.types.iter().filter(|t| !t.group.is_empty()) {
            match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, vs)) if !vs.contains(&t.version) => vs.push(t.version.clone()),
                Some(_) => {}
                None => out.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        out
    }

    /// `GET /api`.
    pub fn core_versions(&self) -> Value {
        json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
    }

    /// `GET /apis`.
    pub fn group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .into_iter()
            .map(|(g, vs)| {
                let versions: Vec<Value> = vs
                    .iter()
                    .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                    .collect();
                json!({"name": g, "versions": versions, "preferredVersion": versions[0].clone()})
            })
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `GET /apis/<group>` (an APIGroup), if served.
    pub fn group(&self, group: &str) -> Option<Value> {
        let (_, vs) = self.groups().into_iter().find(|(g, _)| g == group)?;
        let versions: Vec<Value> = vs
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        Some(json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions, "preferredVersion": versions[0].clone()}))
    }

    /// `GET /api/v1` or `GET /apis/<group>/<version>`, if served.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let types: Vec<&ResourceType> = self.types.iter().filter(|t| t.group == group && t.version == version).collect();
        if types.is_empty() {
            return None;
        }
        let mut resources = Vec::new();
        for t in &types {
            let mut verbs = vec!["create", "delete", "get", "list", "patch", "update", "watch"];
            if t.plural != "namespaces" {
                verbs.push("deletecollection");
            }
            resources.push(json!({"name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind, "verbs": verbs, "shortNames": t.short_names}));
            if t.status_subresource {
                resources.push(json!({"name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]}));
            }
            if t.scale_subresource {
                resources.push(json!({"name": format!("{}/scale", t.plural), "singularName": "", "namespaced": t.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
            }
        }
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
    }
}
