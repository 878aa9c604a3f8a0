//! The EKS REST-JSON operations: ListClusters, DescribeCluster,
//! UpdateClusterConfig, ListUpdates, DescribeUpdate, ListTagsForResource,
//! and the access-entry operations of `sim::access`. Shapes and messages follow
//! the `eks` 2017-11-01 service model and DESIGN.md section 1 and 1b: updates
//! are listed in no order, a cluster says `UPDATING` only a while after an
//! update started, and errors on a cluster carry its `clusterName`.
//!
//! Handlers run under the state lock and never sleep; latency and throttling
//! are applied before they are called.

use std::time::UNIX_EPOCH;

use ipnet::IpNet;
use rand::Rng;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::access;
use super::protocol::AwsError;
use super::state::{normalise_cidrs, Cluster, Endpoint, RegionKey, State, Update, UpdateKind};

/// AWS's limit on `publicAccessCidrs` (not adjustable).
pub const MAX_PUBLIC_CIDRS: usize = 40;

/// An EKS operation with its path parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    ListClusters,
    DescribeCluster(String),
    UpdateClusterConfig(String),
    ListUpdates(String),
    DescribeUpdate(String, String),
    /// `GET /tags/{resourceArn}`.
    ListTagsForResource(String),
    ListAccessEntries(String),
    CreateAccessEntry(String),
    /// Cluster and principal ARN.
    DescribeAccessEntry(String, String),
    DeleteAccessEntry(String, String),
    ListAssociatedAccessPolicies(String, String),
    AssociateAccessPolicy(String, String),
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::ListClusters => "ListClusters",
            Op::DescribeCluster(_) => "DescribeCluster",
            Op::UpdateClusterConfig(_) => "UpdateClusterConfig",
            Op::ListUpdates(_) => "ListUpdates",
            Op::DescribeUpdate(..) => "DescribeUpdate",
            Op::ListTagsForResource(_) => "ListTagsForResource",
            Op::ListAccessEntries(_) => "ListAccessEntries",
            Op::CreateAccessEntry(_) => "CreateAccessEntry",
            Op::DescribeAccessEntry(..) => "DescribeAccessEntry",
            Op::DeleteAccessEntry(..) => "DeleteAccessEntry",
            Op::ListAssociatedAccessPolicies(..) => "ListAssociatedAccessPolicies",
            Op::AssociateAccessPolicy(..) => "AssociateAccessPolicy",
        }
    }

    pub fn target(&self) -> Option<String> {
        match self {
            Op::ListClusters => None,
            Op::DescribeCluster(n) | Op::UpdateClusterConfig(n) | Op::ListUpdates(n) => {
                Some(n.clone())
            }
            Op::DescribeUpdate(n, _) => Some(n.clone()),
            Op::ListAccessEntries(n) | Op::CreateAccessEntry(n) => Some(n.clone()),
            Op::DescribeAccessEntry(n, _)
            | Op::DeleteAccessEntry(n, _)
            | Op::ListAssociatedAccessPolicies(n, _)
            | Op::AssociateAccessPolicy(n, _) => Some(n.clone()),
            Op::ListTagsForResource(arn) => arn
                .rsplit_once(":cluster/")
                .map(|(_, name)| name.to_string()),
        }
    }
}

/// Maps a method and a (percent-decoded) path to an operation.
pub fn route(method: &str, path: &str) -> Option<Op> {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (method, segs.as_slice()) {
        ("GET", ["clusters"]) => Some(Op::ListClusters),
        ("GET", ["clusters", name]) => Some(Op::DescribeCluster(name.to_string())),
        ("POST", ["clusters", name, "update-config"]) => {
            Some(Op::UpdateClusterConfig(name.to_string()))
        }
        ("GET", ["clusters", name, "updates"]) => Some(Op::ListUpdates(name.to_string())),
        ("GET", ["clusters", name, "updates", id]) => {
            Some(Op::DescribeUpdate(name.to_string(), id.to_string()))
        }
        ("GET", ["clusters", name, "access-entries"]) => {
            Some(Op::ListAccessEntries(name.to_string()))
        }
        ("POST", ["clusters", name, "access-entries"]) => {
            Some(Op::CreateAccessEntry(name.to_string()))
        }
        // A principal ARN holds `/`s; the SDK encodes them, raw ones split.
        ("GET" | "POST", ["clusters", name, "access-entries", rest @ .., "access-policies"])
            if !rest.is_empty() =>
        {
            let (name, arn) = (name.to_string(), rest.join("/"));
            Some(if method == "GET" {
                Op::ListAssociatedAccessPolicies(name, arn)
            } else {
                Op::AssociateAccessPolicy(name, arn)
            })
        }
        ("GET", ["clusters", name, "access-entries", rest @ ..]) if !rest.is_empty() => {
            Some(Op::DescribeAccessEntry(name.to_string(), rest.join("/")))
        }
        ("DELETE", ["clusters", name, "access-entries", rest @ ..]) if !rest.is_empty() => {
            Some(Op::DeleteAccessEntry(name.to_string(), rest.join("/")))
        }
        // The ARN holds a `/`; the SDK encodes it, a raw one splits here.
        ("GET", ["tags", arn @ ..]) if !arn.is_empty() => {
            Some(Op::ListTagsForResource(arn.join("/")))
        }
        _ => None,
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn not_found(name: &str) -> AwsError {
    AwsError::new(
        404,
        "ResourceNotFoundException",
        format!("No cluster found for name: {name}."),
    )
    .on_cluster(name)
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterException", message)
}

fn epoch(t: std::time::SystemTime) -> f64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    // Milliseconds, as EKS returns them.
    (d.as_millis() as f64) / 1000.0
}

/// Runs one operation against the state.
pub fn handle(
    state: &mut State,
    key: &RegionKey,
    op: &Op,
    query: &[(String, String)],
    body: &[u8],
    now: Instant,
) -> Result<Value, AwsError> {
    match op {
        Op::ListClusters => {
            let names: Vec<String> = state
                .regions
                .get(key)
                .map(|r| r.clusters.keys().cloned().collect())
                .unwrap_or_default();
            let (page, next) = paginate(&names, query, 0)?;
            Ok(json!({ "clusters": page, "nextToken": next }))
        }
        Op::DescribeCluster(name) => {
            let lag = state.behaviour.status_lag;
            let cluster = cluster(state, key, name)?;
            let mut out = describe_cluster(cluster, key);
            out["status"] = json!(cluster.status_seen(now, lag));
            Ok(json!({ "cluster": out }))
        }
        Op::ListTagsForResource(arn) => list_tags(state, key, arn),
        Op::ListUpdates(name) => {
            list_updates(state, key, name, query).map_err(|e| e.on_cluster(name))
        }
        Op::DescribeUpdate(name, id) => {
            let cluster = cluster(state, key, name)?;
            let update = cluster
                .updates
                .iter()
                .find(|u| &u.id == id)
                .ok_or_else(|| {
                    AwsError::new(
                        404,
                        "ResourceNotFoundException",
                        format!("No update found for ID: {id}."),
                    )
                    .on_cluster(name)
                })?;
            Ok(json!({ "update": describe_update(update) }))
        }
        Op::ListAccessEntries(name) => access::list_entries(state, key, name, query),
        Op::CreateAccessEntry(name) => access::create_entry(state, key, name, body),
        Op::DescribeAccessEntry(name, arn) => access::describe_entry(state, key, name, arn),
        Op::DeleteAccessEntry(name, arn) => access::delete_entry(state, key, name, arn),
        Op::ListAssociatedAccessPolicies(name, arn) => {
            access::list_policies(state, key, name, arn, query)
        }
        Op::AssociateAccessPolicy(name, arn) => {
            access::associate_policy(state, key, name, arn, body)
        }
        Op::UpdateClusterConfig(name) => update_cluster_config(state, key, name, body, now)
            .map_err(|e| match e.code.as_str() {
                "SerializationException" => e,
                _ => e.on_cluster(name),
            }),
    }
}

/// `ListUpdates`: AWS promises no order, so each listing (a first page and
/// the pages its `nextToken` leads to) gets its own random order, drawn from
/// the seeded `shuffle_rng`; the token carries the listing's salt so its
/// pages neither repeat nor skip an id. `shuffle_updates = false` lists
/// oldest first.
fn list_updates(
    state: &mut State,
    key: &RegionKey,
    name: &str,
    query: &[(String, String)],
) -> Result<Value, AwsError> {
    let shuffle = state.behaviour.shuffle_updates;
    let token = query
        .iter()
        .find(|(q, _)| q == "nextToken")
        .map(|(_, v)| v.as_str());
    let salt = match token {
        Some(t) => {
            decode_token(t)
                .ok_or_else(|| invalid("The nextToken provided is invalid."))?
                .1
        }
        None if shuffle => state.shuffle_rng.random::<u64>() | 1,
        None => 0,
    };
    let cluster = cluster(state, key, name)?;
    let mut ids: Vec<String> = cluster.updates.iter().map(|u| u.id.clone()).collect();
    if salt != 0 {
        ids.sort_by_key(|id| (mix(salt, id), id.clone()));
    }
    let (page, next) = paginate(&ids, query, salt)?;
    Ok(json!({ "updateIds": page, "nextToken": next }))
}

/// A 64-bit FNV-1a of `id` seeded with `salt`, finished with a multiply-xorshift.
fn mix(salt: u64, id: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325 ^ salt;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

fn cluster<'a>(state: &'a State, key: &RegionKey, name: &str) -> Result<&'a Cluster, AwsError> {
    state
        .regions
        .get(key)
        .and_then(|r| r.clusters.get(name))
        .ok_or_else(|| not_found(name))
}

/// `maxResults` (1–100, default 100) and an opaque `nextToken`.
pub(super) fn paginate(
    items: &[String],
    query: &[(String, String)],
    salt: u64,
) -> Result<(Vec<String>, Option<String>), AwsError> {
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    let max = match get("maxResults") {
        None => 100,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(invalid(
                    "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100",
                ))
            }
        },
    };
    let start = match get("nextToken") {
        None => 0,
        Some(t) => {
            decode_token(t)
                .ok_or_else(|| invalid("The nextToken provided is invalid."))?
                .0
        }
    };
    let start = start.min(items.len());
    let end = (start + max).min(items.len());
    let next = (end < items.len()).then(|| encode_token(end, salt));
    Ok((items[start..end].to_vec(), next))
}

/// An opaque token: the next position, and the order of the listing.
fn encode_token(i: usize, salt: u64) -> String {
    hex::encode(format!("eksgate-sim:{i}:{salt:x}"))
}

fn decode_token(t: &str) -> Option<(usize, u64)> {
    let raw = String::from_utf8(hex::decode(t).ok()?).ok()?;
    let (i, salt) = raw.strip_prefix("eksgate-sim:")?.split_once(':')?;
    Some((i.parse().ok()?, u64::from_str_radix(salt, 16).ok()?))
}

pub fn describe_cluster(c: &Cluster, key: &RegionKey) -> Value {
    let mut vpc = json!({
        "subnetIds": c.subnet_ids,
        "securityGroupIds": [],
        "vpcId": c.vpc_id,
        "endpointPublicAccess": c.endpoint.public,
        "endpointPrivateAccess": c.endpoint.private,
        "publicAccessCidrs": c.endpoint.cidrs.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
    });
    if let Some(sg) = &c.security_group {
        vpc["clusterSecurityGroupId"] = json!(sg);
    }
    let mut out = json!({
        "name": c.name,
        "arn": c.arn,
        "createdAt": epoch(c.created_at),
        "version": "1.31",
        "roleArn": format!("arn:aws:iam::{}:role/eks-cluster-role", key.0),
        "resourcesVpcConfig": vpc,
        "kubernetesNetworkConfig": network_config(c),
        "status": c.status(),
        "platformVersion": "eks.1",
        "tags": c.tags,
        "accessConfig": {
            "authenticationMode": c.authentication_mode,
            "bootstrapClusterCreatorAdminPermissions": true,
        },
    });
    if !c.remote_node_networks.is_empty() {
        out["remoteNetworkConfig"] = json!({
            "remoteNodeNetworks": [{"cidrs": c.remote_node_networks}],
            "remotePodNetworks": [],
        });
    }
    if c.base_status != "CREATING" {
        out["endpoint"] = json!(format!("https://{}", c.endpoint_hostname));
        out["certificateAuthority"] = json!({"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="});
    }
    out
}

/// `kubernetesNetworkConfig`: an IPv6 cluster has its service block in
/// `serviceIpv6Cidr` (from the unique local range, as EKS assigns it).
fn network_config(c: &Cluster) -> Value {
    if c.ip_family == "ipv6" {
        json!({"serviceIpv6Cidr": "fd30:1c53:5f8a::/108", "ipFamily": "ipv6"})
    } else {
        json!({"serviceIpv4Cidr": "172.20.0.0/16", "ipFamily": c.ip_family})
    }
}

/// `ListTagsForResource` on a cluster ARN: `BadRequestException` for what is
/// not an EKS ARN, `NotFoundException` (404) for a cluster that is not there.
fn list_tags(state: &State, key: &RegionKey, arn: &str) -> Result<Value, AwsError> {
    let valid = arn.starts_with("arn:aws") && arn.split(':').count() >= 6;
    if !valid {
        return Err(AwsError::new(
            400,
            "BadRequestException",
            format!("{arn} is not a valid ARN."),
        ));
    }
    let cluster = state
        .regions
        .get(key)
        .and_then(|r| r.clusters.values().find(|c| c.arn == arn))
        .ok_or_else(|| {
            AwsError::new(
                404,
                "NotFoundException",
                format!("Resource {arn} not found."),
            )
        })?;
    Ok(json!({ "tags": cluster.tags }))
}

pub fn describe_update(u: &Update) -> Value {
    json!({
        "id": u.id,
        "status": u.status.as_str(),
        "type": u.type_name(),
        "params": u.params.iter().map(|(t, v)| json!({"type": t, "value": v})).collect::<Vec<_>>(),
        "createdAt": epoch(u.created_at),
        "errors": u.errors,
    })
}

fn update_cluster_config(
    state: &mut State,
    key: &RegionKey,
    name: &str,
    body: &[u8],
    now: Instant,
) -> Result<Value, AwsError> {
    let req: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| AwsError::new(400, "SerializationException", format!("{e}")))?
    };
    let current = cluster(state, key, name)?.clone();
    let token = req["clientRequestToken"].as_str().map(str::to_string);
    // The same token again is the same request (a retry): the same update.
    if let Some(t) = &token {
        if let Some(u) = current
            .updates
            .iter()
            .find(|u| u.client_token.as_deref() == Some(t))
        {
            return Ok(json!({ "update": describe_update(u) }));
        }
    }
    let vpc = req.get("resourcesVpcConfig").filter(|v| !v.is_null());
    let endpoint_fields = [
        "endpointPublicAccess",
        "endpointPrivateAccess",
        "publicAccessCidrs",
    ];
    let has_endpoint = vpc.is_some_and(|v| endpoint_fields.iter().any(|f| !v[*f].is_null()));
    let mut kinds = 0;
    if has_endpoint {
        kinds += 1;
    }
    if vpc.is_some_and(|v| !v["subnetIds"].is_null() || !v["securityGroupIds"].is_null()) {
        kinds += 1;
    }
    for other in [
        "logging",
        "accessConfig",
        "upgradePolicy",
        "zonalShiftConfig",
        "computeConfig",
        "kubernetesNetworkConfig",
        "storageConfig",
        "remoteNetworkConfig",
        "deletionProtection",
        "controlPlaneScalingConfig",
    ] {
        if !req[other].is_null() {
            kinds += 1;
        }
    }
    if kinds > 1 {
        return Err(invalid("Only one type of update can be allowed."));
    }
    if !req["accessConfig"].is_null() {
        return access::update_access_config(state, key, name, &req, token, now);
    }
    if !has_endpoint {
        if kinds == 0 {
            return Err(invalid(no_op_message(&current.endpoint)));
        }
        return Err(AwsError::new(
            400,
            "InvalidRequestException",
            "The emulator supports only endpoint access updates.",
        ));
    }
    let Some(vpc) = vpc else {
        unreachable!("has_endpoint implies resourcesVpcConfig is present")
    };
    let flag = |field: &str, current: bool| -> Result<bool, AwsError> {
        match &vpc[field] {
            Value::Null => Ok(current),
            Value::Bool(b) => Ok(*b),
            other => Err(AwsError::new(
                400,
                "SerializationException",
                format!("Cannot deserialize value of type `java.lang.Boolean` from {other} for `{field}`"),
            )),
        }
    };
    let public = flag("endpointPublicAccess", current.endpoint.public)?;
    let private = flag("endpointPrivateAccess", current.endpoint.private)?;
    let cidrs = match &vpc["publicAccessCidrs"] {
        Value::Null => current.endpoint.cidrs.clone(),
        Value::Array(items) => {
            let raw: Vec<String> = items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect();
            let bad: Vec<&str> = raw
                .iter()
                .filter(|s| s.parse::<IpNet>().is_err())
                .map(String::as_str)
                .collect();
            if !bad.is_empty() {
                return Err(invalid(format!(
                    "The following CIDRs are invalid in publicAccessCidrs: [{}]",
                    bad.join(",")
                )));
            }
            if let Some(refused) =
                super::network::refused_ipv6(&current.ip_family, current.created_at, &raw)
            {
                return Err(refused);
            }
            if raw.len() > MAX_PUBLIC_CIDRS {
                return Err(invalid(format!(
                    "publicAccessCidrs can contain at most {MAX_PUBLIC_CIDRS} CIDR blocks, got {}",
                    raw.len()
                )));
            }
            normalise_cidrs(raw.iter().filter_map(|s| s.parse::<IpNet>().ok()))
        }
        other => {
            return Err(AwsError::new(
                400,
                "SerializationException",
                format!("Cannot deserialize value of type `java.util.ArrayList` from {other} for `publicAccessCidrs`"),
            ))
        }
    };
    if !public && !private {
        return Err(invalid(
            "Both private and public endpoint access cannot be false",
        ));
    }
    if current.base_status != "ACTIVE" {
        return Err(AwsError::new(
            409,
            "ResourceInUseException",
            format!(
                "Cannot EndpointAccessUpdate because cluster {name} is in {} state",
                current.base_status
            ),
        ));
    }
    if let Some(running) = current.update_in_progress() {
        return Err(AwsError::new(
            409,
            "ResourceInUseException",
            format!(
                "Cannot EndpointAccessUpdate because cluster {name} currently has update {} in progress",
                running.id
            ),
        ));
    }
    let target = Endpoint {
        public,
        private,
        cidrs,
    };
    if target == current.endpoint {
        return Err(invalid(no_op_message(&current.endpoint)));
    }
    // The update lists the settings the request sent, not the others.
    let mut params = Vec::new();
    for (field, param) in [
        ("endpointPublicAccess", "EndpointPublicAccess"),
        ("endpointPrivateAccess", "EndpointPrivateAccess"),
        ("publicAccessCidrs", "PublicAccessCidrs"),
    ] {
        if !vpc[field].is_null() {
            params.push((param.to_string(), vpc[field].to_string()));
        }
    }
    let update = state.start_update(key, name, target, params, token, now);
    debug_assert!(matches!(update.kind, UpdateKind::EndpointAccess(_)));
    Ok(json!({ "update": describe_update(&update) }))
}

fn no_op_message(e: &Endpoint) -> String {
    format!(
        "Cluster is already at the desired configuration with endpointPrivateAccess: {} , endpointPublicAccess: {}, and Public Endpoint Restrictions: [{}]",
        e.private,
        e.public,
        e.cidrs.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_paths_to_operations() {
        assert_eq!(route("GET", "/clusters"), Some(Op::ListClusters));
        assert_eq!(
            route("GET", "/clusters/a%2Db"),
            Some(Op::DescribeCluster("a-b".into()))
        );
        assert_eq!(
            route("POST", "/clusters/x/update-config"),
            Some(Op::UpdateClusterConfig("x".into()))
        );
        assert_eq!(
            route("GET", "/clusters/x/updates/u-1"),
            Some(Op::DescribeUpdate("x".into(), "u-1".into()))
        );
        assert_eq!(route("DELETE", "/clusters/x"), None);
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let items: Vec<String> = (0..5).map(|i| i.to_string()).collect();
        let q = vec![("maxResults".to_string(), "2".to_string())];
        let (page, next) = paginate(&items, &q, 0).unwrap();
        assert_eq!(page, vec!["0", "1"]);
        let q2 = vec![
            ("maxResults".to_string(), "2".to_string()),
            ("nextToken".to_string(), next.unwrap()),
        ];
        assert_eq!(paginate(&items, &q2, 0).unwrap().0, vec!["2", "3"]);
        let bad = vec![("nextToken".to_string(), "zz".to_string())];
        assert!(paginate(&items, &bad, 0).is_err());
        let zero = vec![("maxResults".to_string(), "0".to_string())];
        assert!(paginate(&items, &zero, 0).is_err());
    }
}
