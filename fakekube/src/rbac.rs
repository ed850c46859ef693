//! RBAC for one identity: the operator's requests (those presenting its bearer token) are allowed
//! only what its Role and ClusterRole grant, as the API server's RBAC authorizer would allow them;
//! anything else (the tests' own set-up, kubectl) is not checked. A refused request gets the API
//! server's 403 and is recorded, so a test can assert that the chart's RBAC covers every call the
//! operator made.

/// One permission, as a Role or ClusterRole rule grants it (expanded to one verb).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Grant {
    /// API group; empty for the core group.
    pub group: String,
    /// The resource, with its subresource when the rule names one (`cells/status`).
    pub resource: String,
    pub verb: String,
    /// The Role's namespace; `None` for a ClusterRole (every namespace, and cluster-scoped kinds).
    pub namespace: Option<String>,
}

/// The checked identity: its token, what it is granted, and what was refused.
#[derive(Debug, Clone, Default)]
pub struct Rbac {
    pub token: String,
    pub grants: Vec<Grant>,
    /// `verb resource in group (namespace)` of every refused request, in order.
    pub refused: Vec<String>,
}

impl Rbac {
    /// Whether a request for `verb` on `resource` (with its subresource) in `namespace` is
    /// granted.
    pub fn allows(&self, group: &str, resource: &str, verb: &str, namespace: Option<&str>) -> bool {
        self.grants.iter().any(|g| {
            g.group == group && g.resource == resource && g.verb == verb && g.namespace.as_deref().is_none_or(|ns| Some(ns) == namespace)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_grants_in_its_namespace_only_and_a_cluster_role_everywhere() {
        let grant = |resource: &str, verb: &str, namespace: Option<&str>| Grant {
            group: "apps".into(),
            resource: resource.into(),
            verb: verb.into(),
            namespace: namespace.map(String::from),
        };
        let r = Rbac {
            token: "t".into(),
            grants: vec![grant("deployments", "get", None), grant("deployments", "patch", Some("cell-1"))],
            refused: vec![],
        };
        assert!(r.allows("apps", "deployments", "get", Some("cell-2")));
        assert!(r.allows("apps", "deployments", "get", None));
        assert!(r.allows("apps", "deployments", "patch", Some("cell-1")));
        assert!(!r.allows("apps", "deployments", "patch", Some("cell-2")));
        assert!(
            !r.allows("apps", "deployments", "patch", None),
            "a Role does not list across namespaces"
        );
        assert!(
            !r.allows("apps", "deployments/scale", "get", Some("cell-1")),
            "a subresource is its own"
        );
        assert!(!r.allows("", "deployments", "get", None), "the group counts");
    }
}
