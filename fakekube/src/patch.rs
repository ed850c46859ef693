//! Patches and field ownership: JSON merge patch (RFC 7386), strategic merge patch (lists keyed
//! by `name` — containers, env, volumes — or by port), JSON patch (RFC 6902, by the json-patch
//! crate), and server-side apply with `managedFields` per field manager.
//!
//! Field sets follow Kubernetes' FieldsV1 shape: a field is `f:<name>`, an item of a keyed list
//! `k:{"name":"app"}`; a path is the list of those segments down to a leaf.

use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Lists merged by a key in strategic merge patches and apply, and the key.
fn list_key(field: &str, items: &[Value]) -> Option<&'static str> {
    let all_have = |k: &str| !items.is_empty() && items.iter().all(|i| i.get(k).is_some());
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "volumeMounts"
        | "imagePullSecrets"
        | "backendRefs"
            if all_have("name") =>
        {
            Some("name")
        }
        "ports" if all_have("containerPort") => Some("containerPort"),
        "ports" if all_have("port") => Some("port"),
        "conditions" if all_have("type") => Some("type"),
        _ => None,
    }
}

/// RFC 7386: objects merge, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Strategic merge patch: a merge patch whose keyed lists merge item by item (an item with
/// `$patch: delete` is removed); directives kubectl sends (`$setElementOrder/…`, `$retainKeys`)
/// are accepted and ignored.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Array(items) => match (list_key(k, items), t.get_mut(k)) {
                (Some(key), Some(Value::Array(existing))) => {
                    for item in items {
                        let id = item.get(key).cloned();
                        let pos = existing.iter().position(|e| e.get(key) == id.as_ref());
                        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                        match (pos, delete) {
                            (Some(i), true) => {
                                existing.remove(i);
                            }
                            (Some(i), false) => strategic_merge(&mut existing[i], item),
                            (None, false) => {
                                let mut fresh = Value::Object(Map::new());
                                strategic_merge(&mut fresh, item);
                                existing.push(fresh);
                            }
                            (None, true) => {}
                        }
                    }
                }
                _ => {
                    let cleaned: Vec<Value> = items
                        .iter()
                        .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("delete"))
                        .cloned()
                        .collect();
                    t.insert(k.clone(), Value::Array(cleaned));
                }
            },
            Value::Object(_) => strategic_merge(t.entry(k.clone()).or_insert(Value::Object(Map::new())), v),
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let p: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| format!("not a JSON patch: {e}"))?;
    json_patch::patch(target, &p).map_err(|e| e.to_string())
}

/// A path of FieldsV1 segments.
pub type FieldPath = Vec<String>;

/// Top-level fields that are identity or server-owned, never managed.
fn unmanaged(top: &str) -> bool {
    matches!(top, "f:apiVersion" | "f:kind" | "f:status")
}

fn collect(v: &Value, field: &str, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                if prefix.len() == 1
                    && prefix[0] == "f:metadata"
                    && !matches!(k.as_str(), "labels" | "annotations" | "finalizers" | "ownerReferences")
                {
                    continue;
                }
                prefix.push(format!("f:{k}"));
                if !(prefix.len() == 1 && unmanaged(&prefix[0])) {
                    collect(child, k, prefix, out);
                }
                prefix.pop();
            }
        }
        Value::Array(items) => match list_key(field, items) {
            Some(key) => {
                for item in items {
                    let id = serde_json::json!({ key: item.get(key).cloned().unwrap_or(Value::Null) });
                    prefix.push(format!("k:{id}"));
                    collect(item, "", prefix, out);
                    prefix.pop();
                }
            }
            None => {
                out.insert(prefix.clone());
            }
        },
        _ => {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
        }
    }
}

/// The leaf field paths an object sets (identity and status excluded).
pub fn fields_of(obj: &Value) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    collect(obj, "", &mut Vec::new(), &mut out);
    out
}

fn step<'a>(v: &'a Value, seg: &str) -> Option<&'a Value> {
    if let Some(name) = seg.strip_prefix("f:") {
        return v.get(name);
    }
    let id: Value = serde_json::from_str(seg.strip_prefix("k:")?).ok()?;
    let (k, want) = id.as_object()?.iter().next()?;
    v.as_array()?.iter().find(|i| i.get(k) == Some(want))
}

/// The value at `path`, if present. A keyed-list item's path continues inside the item.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    let mut i = 0;
    while i < path.len() {
        cur = step(cur, &path[i])?;
        i += 1;
    }
    Some(cur)
}

/// Removes the field at `path` (and any object or keyed item left empty by it).
pub fn remove_at(obj: &mut Value, path: &[String]) {
    if path.is_empty() {
        return;
    }
    if path.len() == 1 {
        if let Some(name) = path[0].strip_prefix("f:") {
            if let Some(m) = obj.as_object_mut() {
                m.remove(name);
            }
        }
        return;
    }
    let seg = &path[0];
    let child: Option<&mut Value> = if let Some(name) = seg.strip_prefix("f:") {
        obj.get_mut(name)
    } else {
        let id: Option<Value> = seg.strip_prefix("k:").and_then(|s| serde_json::from_str(s).ok());
        match (id, obj.as_array_mut()) {
            (Some(id), Some(arr)) => {
                let (k, want) = id
                    .as_object()
                    .and_then(|m| m.iter().next())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .unwrap_or_default();
                arr.iter_mut().find(|i| i.get(&k) == Some(&want))
            }
            _ => None,
        }
    };
    if let Some(c) = child {
        remove_at(c, &path[1..]);
    }
}

/// Apply's merge: objects merge, keyed lists merge by key, everything else is replaced.
pub fn apply_merge(target: &mut Value, applied: &Value, field: &str) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                match t.get_mut(k) {
                    Some(existing) => apply_merge(existing, v, k),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(a)) if list_key(field, a).is_some() && list_key(field, t).is_some() => {
            let key = list_key(field, a).expect("checked");
            for item in a {
                match t.iter_mut().find(|e| e.get(key) == item.get(key)) {
                    Some(e) => apply_merge(e, item, ""),
                    None => t.push(item.clone()),
                }
            }
        }
        (t, a) => *t = a.clone(),
    }
}

/// FieldsV1 JSON of a field set.
pub fn to_fields_v1(fields: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in fields {
        let mut cur = &mut root;
        for seg in path {
            cur = cur
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("fields are objects");
        }
    }
    Value::Object(root)
}

fn from_v1(v: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    match v.as_object() {
        Some(m) if !m.is_empty() => {
            for (k, child) in m {
                if k == "." {
                    continue;
                }
                prefix.push(k.clone());
                from_v1(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
        }
    }
}

/// The field set of a FieldsV1 JSON value.
pub fn from_fields_v1(v: &Value) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    from_v1(v, &mut Vec::new(), &mut out);
    out
}

/// `.spec.replicas`-style text of a path, for conflict messages.
pub fn display(path: &[String]) -> String {
    path.iter()
        .map(|s| {
            s.strip_prefix("f:")
                .map(|n| format!(".{n}"))
                .unwrap_or_else(|| format!("[{}]", s.trim_start_matches("k:")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_with_null_and_replaces_lists() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": null, "b": {"c": 5}, "l": [3]}));
        assert_eq!(t, json!({"b": {"c": 5, "d": 3}, "l": [3]}));
    }

    #[test]
    fn strategic_merge_merges_containers_env_and_ports_by_key() {
        let mut t = json!({"spec": {"containers": [{"name": "app", "image": "a:1", "env": [{"name": "X", "value": "1"}], "ports": [{"containerPort": 80}]}, {"name": "side", "image": "s:1"}]}});
        let p = json!({"$setElementOrder/containers": [{"name": "app"}], "spec": {"containers": [{"name": "app", "image": "a:2", "env": [{"name": "Y", "value": "2"}], "ports": [{"containerPort": 81}]}, {"name": "side", "$patch": "delete"}]}});
        strategic_merge(&mut t, &p);
        assert_eq!(t["spec"]["containers"].as_array().unwrap().len(), 1);
        assert_eq!(t["spec"]["containers"][0]["image"], "a:2");
        assert_eq!(t["spec"]["containers"][0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(t["spec"]["containers"][0]["ports"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn fields_round_trip_through_fields_v1_and_address_keyed_items() {
        let o = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "app", "image": "i"}]}}}, "status": {"replicas": 3}});
        let f = fields_of(&o);
        assert!(f.contains(&vec!["f:spec".to_string(), "f:replicas".to_string()]));
        assert!(f.contains(&vec!["f:metadata".to_string(), "f:labels".to_string(), "f:a".to_string()]));
        assert!(!f
            .iter()
            .any(|p| p[0] == "f:status" || p[0] == "f:kind" || p.get(1).is_some_and(|s| s == "f:name")));
        let image = f.iter().find(|p| p.last().unwrap() == "f:image").unwrap();
        assert_eq!(value_at(&o, image), Some(&json!("i")));
        assert_eq!(from_fields_v1(&to_fields_v1(&f)), f);
        let mut o2 = o.clone();
        remove_at(&mut o2, &["f:spec".into(), "f:replicas".into()]);
        assert!(o2["spec"].get("replicas").is_none());
    }
}
