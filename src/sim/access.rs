//! The EKS access-entry operations of the emulator, and `UpdateClusterConfig`
//! with `accessConfig`: `ListAccessEntries` (paged), `DescribeAccessEntry`,
//! `ListAssociatedAccessPolicies`, `CreateAccessEntry`, `DeleteAccessEntry`
//! and `AssociateAccessPolicy`. Shapes follow the `eks` 2017-11-01 service
//! model; behaviour follows DESIGN.md section 1b and the EKS user guide:
//!
//! - on a `CONFIG_MAP` cluster every access-entry call fails with
//!   `InvalidRequestException` ("The cluster's authentication mode must be set
//!   to one of [API, API_AND_CONFIG_MAP] to perform this operation.");
//! - a principal without an entry is `ResourceNotFoundException` (404);
//! - an entry holds the principal ARN as it was given, a role's path
//!   included ("Create access entries");
//! - the mode moves `CONFIG_MAP` → `API_AND_CONFIG_MAP` → `API`, `CONFIG_MAP`
//!   → `API` in one update; any other move is `InvalidParameterException`. It
//!   is an `AccessConfigUpdate` of its own, never mixed with another kind.
//!
//! Handlers run under the state lock and never sleep, like `eks`.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::time::Instant;

use super::eks::{describe_update, paginate};
use super::protocol::AwsError;
use super::state::{Cluster, RegionKey, State, UpdateKind};
use super::world::ClusterDef;

/// The modes `accessConfig.authenticationMode` takes, in the order they
/// move.
pub const MODES: [&str; 3] = ["CONFIG_MAP", "API_AND_CONFIG_MAP", "API"];

/// One access entry, as EKS holds it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Entry {
    pub principal_arn: String,
    pub entry_type: String,
    pub kubernetes_groups: Vec<String>,
    pub username: String,
    pub access_entry_arn: String,
    #[serde(skip)]
    pub created_at: SystemTime,
    /// Associated access policy ARNs (cluster scope) and when.
    #[serde(skip)]
    pub policies: Vec<(String, SystemTime)>,
}

fn epoch(t: SystemTime) -> f64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

/// What a world's cluster says wrong about access (its mode, its entries).
pub fn check_world(c: &ClusterDef) -> Vec<String> {
    let mut out = Vec::new();
    if !MODES.contains(&c.authentication_mode.as_str()) {
        out.push(format!(
            "cluster `{}` has `authentication_mode = \"{}\"`; EKS knows {}",
            c.name,
            c.authentication_mode,
            MODES.join(", ")
        ));
    }
    if c.authentication_mode == "CONFIG_MAP" && !c.access_entry.is_empty() {
        out.push(format!(
            "cluster `{}` is `CONFIG_MAP` and has access entries, which EKS does not allow",
            c.name
        ));
    }
    let mut seen = Vec::new();
    for e in &c.access_entry {
        if principal_kind(&e.principal_arn).is_none() {
            out.push(format!(
                "cluster `{}`: `{}` is not an IAM role or user ARN",
                c.name, e.principal_arn
            ));
        }
        if seen.contains(&&e.principal_arn) {
            out.push(format!(
                "cluster `{}` lists the access entry of `{}` twice",
                c.name, e.principal_arn
            ));
        }
        seen.push(&e.principal_arn);
        for p in &e.access_policies {
            if !p.contains(":cluster-access-policy/") {
                out.push(format!(
                    "cluster `{}`: `{p}` is not an access policy ARN",
                    c.name
                ));
            }
        }
    }
    out
}

/// `role` or `user` for `arn:PARTITION:iam::ACCOUNT:role|user/...`.
fn principal_kind(arn: &str) -> Option<&'static str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", _, "iam", "", account, resource] = parts[..] else {
        return None;
    };
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match resource.split_once('/') {
        Some(("role", rest)) if !rest.is_empty() && !rest.ends_with('/') => Some("role"),
        Some(("user", rest)) if !rest.is_empty() && !rest.ends_with('/') => Some("user"),
        _ => None,
    }
}

/// Where and when an entry is made, for its ARN.
#[derive(Clone, Copy)]
struct Place<'a> {
    account: &'a str,
    region: &'a str,
    cluster: &'a str,
    created_at: SystemTime,
    /// Entries made before it in this emulator.
    n: usize,
}

fn new_entry(
    arn: &str,
    entry_type: &str,
    groups: Vec<String>,
    username: Option<String>,
    place: &Place,
) -> Entry {
    let Place {
        account,
        region,
        cluster,
        created_at,
        n,
    } = *place;
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let partition = parts.get(1).copied().unwrap_or("aws");
    let principal_account = parts.get(4).copied().unwrap_or(account);
    let name = arn.rsplit('/').next().unwrap_or_default();
    // EKS derives the Kubernetes user name from the role (its session shows
    // as an assumed role, whose ARN holds no path) or the user.
    let username = username.unwrap_or_else(|| match principal_kind(arn) {
        Some("role") => format!(
            "arn:{partition}:sts::{principal_account}:assumed-role/{name}/{{{{SessionName}}}}"
        ),
        _ => arn.to_string(),
    });
    let kind = principal_kind(arn).unwrap_or("role");
    Entry {
        principal_arn: arn.to_string(),
        entry_type: entry_type.to_string(),
        kubernetes_groups: groups,
        username,
        access_entry_arn: format!(
            "arn:{partition}:eks:{region}:{account}:access-entry/{cluster}/{kind}/{principal_account}/{name}/{n:08x}-0000-4000-8000-000000000000"
        ),
        created_at,
        policies: Vec::new(),
    }
}

/// The entries a world's cluster starts with.
pub fn entries_of(c: &ClusterDef, account: &str, created: SystemTime) -> BTreeMap<String, Entry> {
    c.access_entry
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let place = Place {
                account,
                region: &c.region,
                cluster: &c.name,
                created_at: created,
                n: i,
            };
            let mut entry = new_entry(
                &e.principal_arn,
                &e.entry_type,
                e.kubernetes_groups.clone(),
                None,
                &place,
            );
            entry.policies = e
                .access_policies
                .iter()
                .map(|p| (p.clone(), created))
                .collect();
            (e.principal_arn.clone(), entry)
        })
        .collect()
}

fn not_found(name: &str) -> AwsError {
    AwsError::new(
        404,
        "ResourceNotFoundException",
        format!("No cluster found for name: {name}."),
    )
    .on_cluster(name)
}

fn no_entry(name: &str) -> AwsError {
    AwsError::new(
        404,
        "ResourceNotFoundException",
        "The specified principalArn could not be found. You can view your available access entries with 'list-access-entries'.",
    )
    .on_cluster(name)
}

fn invalid(name: &str, message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterException", message).on_cluster(name)
}

/// The cluster, answering only in modes with access entries.
fn with_entries<'a>(
    state: &'a State,
    key: &RegionKey,
    name: &str,
) -> Result<&'a Cluster, AwsError> {
    let c = state
        .regions
        .get(key)
        .and_then(|r| r.clusters.get(name))
        .ok_or_else(|| not_found(name))?;
    if c.authentication_mode == "CONFIG_MAP" {
        return Err(AwsError::new(
            400,
            "InvalidRequestException",
            "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.",
        )
        .on_cluster(name));
    }
    Ok(c)
}

fn with_entries_mut<'a>(
    state: &'a mut State,
    key: &RegionKey,
    name: &str,
) -> Result<&'a mut Cluster, AwsError> {
    with_entries(state, key, name)?;
    state
        .regions
        .get_mut(key)
        .and_then(|r| r.clusters.get_mut(name))
        .ok_or_else(|| not_found(name))
}

fn describe(name: &str, e: &Entry) -> Value {
    json!({
        "clusterName": name,
        "principalArn": e.principal_arn,
        "kubernetesGroups": e.kubernetes_groups,
        "accessEntryArn": e.access_entry_arn,
        "createdAt": epoch(e.created_at),
        "modifiedAt": epoch(e.created_at),
        "tags": {},
        "username": e.username,
        "type": e.entry_type,
    })
}

fn policy(arn: &str, at: SystemTime) -> Value {
    json!({
        "policyArn": arn,
        "accessScope": {"type": "cluster", "namespaces": []},
        "associatedAt": epoch(at),
        "modifiedAt": epoch(at),
    })
}

/// `ListAccessEntries`: principal ARNs, paged (`maxResults` 1–100).
pub fn list_entries(
    state: &State,
    key: &RegionKey,
    name: &str,
    query: &[(String, String)],
) -> Result<Value, AwsError> {
    let c = with_entries(state, key, name)?;
    let arns: Vec<String> = c.access_entries.keys().cloned().collect();
    let (page, next) = paginate(&arns, query, 0).map_err(|e| e.on_cluster(name))?;
    Ok(json!({ "accessEntries": page, "nextToken": next }))
}

/// `DescribeAccessEntry`.
pub fn describe_entry(
    state: &State,
    key: &RegionKey,
    name: &str,
    principal: &str,
) -> Result<Value, AwsError> {
    let c = with_entries(state, key, name)?;
    let e = c
        .access_entries
        .get(principal)
        .ok_or_else(|| no_entry(name))?;
    Ok(json!({ "accessEntry": describe(name, e) }))
}

/// `ListAssociatedAccessPolicies`, paged.
pub fn list_policies(
    state: &State,
    key: &RegionKey,
    name: &str,
    principal: &str,
    query: &[(String, String)],
) -> Result<Value, AwsError> {
    let c = with_entries(state, key, name)?;
    let e = c
        .access_entries
        .get(principal)
        .ok_or_else(|| no_entry(name))?;
    let arns: Vec<String> = e.policies.iter().map(|(p, _)| p.clone()).collect();
    let (page, next) = paginate(&arns, query, 0).map_err(|e| e.on_cluster(name))?;
    let policies: Vec<Value> = page
        .iter()
        .filter_map(|p| e.policies.iter().find(|(q, _)| q == p))
        .map(|(p, at)| policy(p, *at))
        .collect();
    Ok(json!({
        "clusterName": name,
        "principalArn": e.principal_arn,
        "associatedAccessPolicies": policies,
        "nextToken": next,
    }))
}

fn body_of(body: &[u8]) -> Result<Value, AwsError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| AwsError::new(400, "SerializationException", format!("{e}")))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `CreateAccessEntry`.
pub fn create_entry(
    state: &mut State,
    key: &RegionKey,
    name: &str,
    body: &[u8],
) -> Result<Value, AwsError> {
    let req = body_of(body)?;
    let arn = req["principalArn"].as_str().unwrap_or_default().to_string();
    if principal_kind(&arn).is_none() {
        return Err(invalid(
            name,
            format!("The specified principalArn is invalid: {arn}."),
        ));
    }
    let entry_type = req["type"].as_str().unwrap_or("STANDARD").to_string();
    let groups = strings(&req["kubernetesGroups"]);
    let username = req["username"].as_str().map(str::to_string);
    let n = state.access_entries_created;
    state.access_entries_created += 1;
    let (account, region) = (key.0.clone(), key.1.clone());
    let c = with_entries_mut(state, key, name)?;
    if c.access_entries.contains_key(&arn) {
        return Err(AwsError::new(
            409,
            "ResourceInUseException",
            "The specified access entry resource is already in use on this cluster.",
        )
        .on_cluster(name));
    }
    let place = Place {
        account: &account,
        region: &region,
        cluster: name,
        created_at: SystemTime::now(),
        n,
    };
    let entry = new_entry(&arn, &entry_type, groups, username, &place);
    let out = describe(name, &entry);
    c.access_entries.insert(arn, entry);
    Ok(json!({ "accessEntry": out }))
}

/// `DeleteAccessEntry`.
pub fn delete_entry(
    state: &mut State,
    key: &RegionKey,
    name: &str,
    principal: &str,
) -> Result<Value, AwsError> {
    let c = with_entries_mut(state, key, name)?;
    c.access_entries
        .remove(principal)
        .ok_or_else(|| no_entry(name))?;
    Ok(json!({}))
}

/// `AssociateAccessPolicy` (cluster or namespace scope; the emulator keeps
/// the policy, which is all eksgate reads).
pub fn associate_policy(
    state: &mut State,
    key: &RegionKey,
    name: &str,
    principal: &str,
    body: &[u8],
) -> Result<Value, AwsError> {
    let req = body_of(body)?;
    let policy_arn = req["policyArn"].as_str().unwrap_or_default().to_string();
    if !policy_arn.contains(":eks::aws:cluster-access-policy/") {
        return Err(invalid(
            name,
            format!("The specified policyArn is invalid: {policy_arn}."),
        ));
    }
    match req["accessScope"]["type"].as_str() {
        Some("cluster" | "namespace") => {}
        _ => {
            return Err(invalid(
                name,
                "accessScope.type must be one of [cluster, namespace].",
            ))
        }
    }
    let c = with_entries_mut(state, key, name)?;
    let e = c
        .access_entries
        .get_mut(principal)
        .ok_or_else(|| no_entry(name))?;
    let now = SystemTime::now();
    if !e.policies.iter().any(|(p, _)| *p == policy_arn) {
        e.policies.push((policy_arn.clone(), now));
    }
    Ok(json!({
        "clusterName": name,
        "principalArn": e.principal_arn,
        "associatedAccessPolicy": policy(&policy_arn, now),
    }))
}

/// `UpdateClusterConfig` with `accessConfig` (the caller has checked that no
/// other kind of update rides along).
pub fn update_access_config(
    state: &mut State,
    key: &RegionKey,
    name: &str,
    req: &Value,
    token: Option<String>,
    now: Instant,
) -> Result<Value, AwsError> {
    let current = state
        .regions
        .get(key)
        .and_then(|r| r.clusters.get(name))
        .ok_or_else(|| not_found(name))?
        .clone();
    let wanted = match &req["accessConfig"]["authenticationMode"] {
        Value::String(s) => s.clone(),
        Value::Null => return Err(invalid(name, "accessConfig must set authenticationMode.")),
        other => other.to_string(),
    };
    let rank = |m: &str| MODES.iter().position(|x| *x == m);
    let Some(to) = rank(&wanted) else {
        return Err(invalid(
            name,
            format!(
                "1 validation error detected: Value '{wanted}' at 'accessConfig.authenticationMode' failed to satisfy constraint: Member must satisfy enum value set: [API, API_AND_CONFIG_MAP, CONFIG_MAP]"
            ),
        ));
    };
    let from = rank(&current.authentication_mode).unwrap_or(0);
    // Back towards `CONFIG_MAP` is refused; AWS documents no wording for the
    // same mode again, which it refuses too: the emulator answers both alike.
    if to <= from {
        return Err(invalid(
            name,
            format!(
                "Unsupported authentication mode update from {} to {wanted}",
                current.authentication_mode
            ),
        ));
    }
    if current.base_status != "ACTIVE" {
        return Err(AwsError::new(
            409,
            "ResourceInUseException",
            format!(
                "Cannot AccessConfigUpdate because cluster {name} is in {} state",
                current.base_status
            ),
        )
        .on_cluster(name));
    }
    if let Some(running) = current.update_in_progress() {
        return Err(AwsError::new(
            409,
            "ResourceInUseException",
            format!(
                "Cannot AccessConfigUpdate because cluster {name} currently has update {} in progress",
                running.id
            ),
        )
        .on_cluster(name));
    }
    let update = state.start_update_of(
        key,
        name,
        UpdateKind::AccessConfig(wanted.clone()),
        vec![("AuthenticationMode".to_string(), wanted)],
        token,
        now,
    );
    Ok(json!({ "update": describe_update(&update) }))
}
