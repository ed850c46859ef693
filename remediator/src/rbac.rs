//! The Kubernetes permissions the operator needs — one list, the single source of truth: the Helm
//! chart's ClusterRole and Role are rendered from it (`cellwarden rbac`), and a test fails when the
//! chart grants more or less. In observe and dry-run the ClusterRole has no write verb on what the
//! operator would change ([`ACTED_ON`]). Add a line here when code starts calling a new verb or resource.

/// One permission rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub api_group: &'static str,
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    /// Granted cluster-wide (ClusterRole) rather than in cellwarden's own namespace (Role).
    pub cluster_wide: bool,
    /// Where the code uses it.
    pub used_by: &'static str,
}

pub const RULES: &[Rule] = &[
    Rule {
        api_group: "cellwarden.io",
        resource: "cells",
        verbs: &["get", "list", "patch"],
        cluster_wide: true,
        used_by: "actuate::drain, run::sync_from_api",
    },
    Rule {
        api_group: "cellwarden.io",
        resource: "cells/status",
        verbs: &["patch"],
        cluster_wide: true,
        used_by: "actuate::drain",
    },
    Rule {
        api_group: "apps",
        resource: "deployments",
        verbs: &["get", "list", "patch"],
        cluster_wide: true,
        used_by: "actuate::scale, actuate::restart, run::sync_from_api",
    },
    Rule {
        api_group: "apps",
        resource: "replicasets",
        verbs: &["get", "list"],
        cluster_wide: true,
        used_by: "actuate::rollback (the previous revision's pod template)",
    },
    Rule {
        api_group: "",
        resource: "configmaps",
        verbs: &["get", "patch", "delete"],
        cluster_wide: true,
        used_by: "actuate::flag, actuate revert (deletes a ConfigMap cellwarden created), run::sync_from_api",
    },
    Rule {
        api_group: "",
        resource: "nodes",
        verbs: &["list", "patch"],
        cluster_wide: true,
        used_by: "actuate::drain (cordon)",
    },
    Rule {
        api_group: "cellwarden.io",
        resource: "incidents",
        verbs: &["create", "get", "list", "watch", "patch", "delete"],
        cluster_wide: false,
        used_by: "controller::open, controller::reconcile (Controller watch), run::check_crds, run::history_from_incidents, retention::sweep (delete)",
    },
    Rule {
        api_group: "cellwarden.io",
        resource: "incidents/status",
        verbs: &["patch"],
        cluster_wide: false,
        used_by: "controller::open, controller::reconcile",
    },
    Rule {
        api_group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["get", "create", "update"],
        cluster_wide: false,
        used_by: "lease::Elector (leader election)",
    },
    Rule {
        api_group: "",
        resource: "pods",
        verbs: &["patch"],
        cluster_wide: false,
        used_by: "lease::Elector::label_pod (cellwarden.io/leader)",
    },
    Rule {
        api_group: "",
        resource: "pods",
        verbs: &["list"],
        cluster_wide: true,
        used_by: "collector::scrape::discover_pods",
    },
    Rule {
        api_group: "gateway.networking.k8s.io",
        resource: "httproutes",
        verbs: &["get", "list", "patch"],
        cluster_wide: true,
        used_by: "actuate::drain_routes, actuate::set_route_weights",
    },
    Rule {
        api_group: "cellwarden.io",
        resource: "remediationpolicies",
        verbs: &["list"],
        cluster_wide: false,
        used_by: "run::load_policy",
    },
    Rule {
        api_group: "events.k8s.io",
        resource: "events",
        verbs: &["create", "patch"],
        cluster_wide: false,
        used_by: "controller::Context::event (kube Recorder)",
    },
];

/// What the operator changes when it acts, besides its own objects (Incidents, Events, the
/// Lease, its pod's label). In observe and dry-run it writes none of them, so the chart grants
/// none of their write verbs there.
pub const ACTED_ON: &[(&str, &str)] = &[
    ("apps", "deployments"),
    ("apps", "deployments/scale"),
    ("cellwarden.io", "cells"),
    ("cellwarden.io", "cells/status"),
    ("", "configmaps"),
    ("", "nodes"),
    ("gateway.networking.k8s.io", "httproutes"),
];

/// The verbs that change an object.
pub const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// The verbs of `rule` the operator needs: all of them when it acts, else none that writes what
/// [`ACTED_ON`] names.
pub fn verbs(rule: &Rule, acting: bool) -> Vec<&'static str> {
    let acted_on = ACTED_ON.contains(&(rule.api_group, rule.resource));
    rule.verbs
        .iter()
        .copied()
        .filter(|v| acting || !acted_on || !WRITE_VERBS.contains(v))
        .collect()
}

/// The rules as the YAML list a Role's or ClusterRole's `rules:` takes, for an operator that acts
/// (`mode: act`) or does not (observe, dry-run).
pub fn rules_yaml(cluster_wide: bool, acting: bool) -> String {
    let mut out = String::new();
    for r in RULES.iter().filter(|r| r.cluster_wide == cluster_wide) {
        let verbs = verbs(r, acting);
        if verbs.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "# used by {}\n- apiGroups: [\"{}\"]\n  resources: [\"{}\"]\n  verbs: [{}]\n",
            r.used_by,
            r.api_group,
            r.resource,
            verbs.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ")
        ));
    }
    out
}
