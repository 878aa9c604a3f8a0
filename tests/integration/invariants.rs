//! One checker of eksgate's safety invariants over the emulator's history,
//! shared by every reliability test. It replays the history from the world's
//! initial state (taken with [`Initial::of`] before eksgate runs) and reports
//! each violation with its time:
//!
//! 1. never both endpoints off on any cluster (every `Endpoint` event);
//! 2. public access is turned off only while private access is on, i.e. after
//!    a private-access update of that cluster ended `Successful` (or private
//!    access was on from the start);
//! 3. `enableDnsHostnames` is enabled only while `enableDnsSupport` is on;
//! 4. no `UpdateClusterConfig` answered `InvalidParameterException` (a no-op
//!    "already at the desired configuration", or worse);
//! 5. no call answered `ResourceInUseException` (a conflicting update);
//! 6. every `UpdateClusterConfig` targets a cluster with no update
//!    `InProgress` (AWS's own platform updates included);
//! 7. no write is repeated: no `ModifyVpcAttribute` that sets what already
//!    holds, no `AuthorizeSecurityGroupIngress` answered
//!    `InvalidPermission.Duplicate`, and no write rejected for any reason but
//!    throttling or a server error.
//!
//! The settings of each endpoint update come from `DescribeUpdate` on the
//! emulator (its `params`), read after the run, so the history needs no
//! fields of its own for them.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use eksgate::sim::{Event, HistoryEntry, SimHandle};

use crate::common::{fast_retry, sdk_config};

/// (account, region, name or id)
pub type Key = (String, String, String);

/// The world before eksgate ran.
#[derive(Clone, Debug, Default)]
pub struct Initial {
    /// (public, private) per cluster.
    pub endpoints: BTreeMap<Key, (bool, bool)>,
    /// (dns_support, dns_hostnames) per VPC.
    pub vpcs: BTreeMap<Key, (bool, bool)>,
    /// Update ids `InProgress` per cluster (AWS's own platform updates).
    pub running: BTreeMap<Key, BTreeSet<String>>,
    /// How many history entries existed when this was taken.
    pub history_len: usize,
}

impl Initial {
    pub fn of(sim: &SimHandle) -> Initial {
        let snap = sim.snapshot();
        let mut init = Initial {
            history_len: sim.history().len(),
            ..Initial::default()
        };
        let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        for r in snap["regions"].as_array().into_iter().flatten() {
            let (account, region) = (s(&r["account"]), s(&r["region"]));
            for c in r["clusters"].as_array().into_iter().flatten() {
                let key = (account.clone(), region.clone(), s(&c["name"]));
                init.endpoints.insert(
                    key.clone(),
                    (
                        c["public_access"].as_bool().unwrap_or(false),
                        c["private_access"].as_bool().unwrap_or(false),
                    ),
                );
                for u in c["updates"].as_array().into_iter().flatten() {
                    if u["status"] == "InProgress" {
                        init.running
                            .entry(key.clone())
                            .or_default()
                            .insert(s(&u["id"]));
                    }
                }
            }
            for v in r["vpcs"].as_array().into_iter().flatten() {
                init.vpcs.insert(
                    (account.clone(), region.clone(), s(&v["id"])),
                    (
                        v["dns_support"].as_bool().unwrap_or(false),
                        v["dns_hostnames"].as_bool().unwrap_or(false),
                    ),
                );
            }
        }
        init
    }
}

/// The settings an endpoint update asked for, from `DescribeUpdate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateParams {
    pub public: Option<bool>,
    pub private: Option<bool>,
    pub cidrs: Option<String>,
}

/// What the history held, besides violations: proof the run exercised
/// something.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub violations: Vec<String>,
    pub requests: usize,
    pub throttled: usize,
    pub server_errors: usize,
    pub malformed: usize,
    /// `UpdateClusterConfig` calls that started an update.
    pub updates_started: usize,
    /// Endpoint updates that ended `Successful` (AWS's own not counted).
    pub updates_successful: usize,
    pub updates_failed: usize,
    /// Started endpoint updates per cluster, in order: (id, params, final
    /// status).
    pub updates: BTreeMap<Key, Vec<(String, UpdateParams, String)>>,
    pub vpc_writes: usize,
    pub ingress_writes: usize,
}

impl Summary {
    pub fn assert_clean(&self, context: &str) {
        assert!(
            self.violations.is_empty(),
            "{context}: {} invariant violation(s):\n  {}",
            self.violations.len(),
            self.violations.join("\n  ")
        );
    }
}

fn transient(outcome: &str) -> bool {
    matches!(
        outcome,
        "ThrottlingException"
            | "RequestLimitExceeded"
            | "Throttling"
            | "ServerException"
            | "InternalError"
            | "InternalFailure"
    )
}

const WRITES: [&str; 3] = [
    "UpdateClusterConfig",
    "ModifyVpcAttribute",
    "AuthorizeSecurityGroupIngress",
];

/// Replays the history since `initial` was taken and checks every invariant.
pub async fn check(sim: &SimHandle, initial: &Initial) -> Summary {
    let history = sim.history();
    let params = update_params(sim, &history[initial.history_len..]).await;
    check_history(&history[initial.history_len..], initial, &params)
}

/// The checks, over a history and the updates' settings.
pub fn check_history(
    history: &[HistoryEntry],
    initial: &Initial,
    params: &BTreeMap<String, UpdateParams>,
) -> Summary {
    let mut sum = Summary::default();
    let mut endpoints = initial.endpoints.clone();
    let mut vpcs = initial.vpcs.clone();
    let mut running = initial.running.clone();
    // The update most recently started per cluster: the history records an
    // update's `InProgress` before the request that started it.
    let mut just_started: BTreeMap<Key, String> = BTreeMap::new();
    let mut v = Vec::new();
    for (i, e) in history.iter().enumerate() {
        let at = format!("[#{i} t={:.0}ms]", e.t_ms);
        match &e.event {
            Event::Endpoint {
                account,
                region,
                cluster,
                public,
                private,
                ..
            } => {
                if !public && !private {
                    v.push(format!("{at} {region}/{cluster}: both endpoints off"));
                }
                endpoints.insert(
                    (account.clone(), region.clone(), cluster.clone()),
                    (*public, *private),
                );
            }
            Event::UpdateStatus {
                account,
                region,
                cluster,
                update_id,
                update_type,
                status,
            } => {
                let key = (account.clone(), region.clone(), cluster.clone());
                if status == "InProgress" {
                    if update_type == "EndpointAccessUpdate" {
                        let before = endpoints.get(&key).copied().unwrap_or((true, false));
                        if let Some(p) = params.get(update_id) {
                            // Public goes off: private must be on already.
                            if before.0 && p.public == Some(false) && !before.1 {
                                v.push(format!(
                                    "{at} {region}/{cluster}: update {update_id} turns public access off while private access is off"
                                ));
                            }
                            if p.public == Some(false) && p.private == Some(false) {
                                v.push(format!(
                                    "{at} {region}/{cluster}: update {update_id} asks for both endpoints off"
                                ));
                            }
                            sum.updates.entry(key.clone()).or_default().push((
                                update_id.clone(),
                                p.clone(),
                                "InProgress".into(),
                            ));
                        } else {
                            v.push(format!(
                                "{at} {region}/{cluster}: no settings found for update {update_id}"
                            ));
                        }
                    }
                    running
                        .entry(key.clone())
                        .or_default()
                        .insert(update_id.clone());
                    just_started.insert(key, update_id.clone());
                } else {
                    if let Some(set) = running.get_mut(&key) {
                        set.remove(update_id);
                    }
                    if let Some(list) = sum.updates.get_mut(&key) {
                        if let Some(u) = list.iter_mut().find(|u| &u.0 == update_id) {
                            u.2 = status.clone();
                        }
                    }
                    match (update_type.as_str(), status.as_str()) {
                        ("EndpointAccessUpdate", "Successful") => sum.updates_successful += 1,
                        ("EndpointAccessUpdate", _) => sum.updates_failed += 1,
                        _ => {}
                    }
                }
            }
            Event::VpcAttribute {
                account,
                region,
                vpc_id,
                attribute,
                value,
            } => {
                let key = (account.clone(), region.clone(), vpc_id.clone());
                let cur = vpcs.get(&key).copied().unwrap_or((true, false));
                let next = match attribute.as_str() {
                    "enableDnsSupport" => {
                        if cur.0 == *value {
                            v.push(format!(
                                "{at} {region}/{vpc_id}: `enableDnsSupport` set to {value}, which it already was (a repeated write)"
                            ));
                        }
                        (*value, cur.1)
                    }
                    _ => {
                        if *value && !cur.0 {
                            v.push(format!(
                                "{at} {region}/{vpc_id}: `enableDnsHostnames` enabled while `enableDnsSupport` is off"
                            ));
                        }
                        if cur.1 == *value {
                            v.push(format!(
                                "{at} {region}/{vpc_id}: `enableDnsHostnames` set to {value}, which it already was (a repeated write)"
                            ));
                        }
                        (cur.0, *value)
                    }
                };
                vpcs.insert(key, next);
            }
            Event::Request {
                operation,
                account,
                region,
                target,
                outcome,
                ..
            } => {
                sum.requests += 1;
                match outcome.as_str() {
                    "ThrottlingException" | "RequestLimitExceeded" | "Throttling" => {
                        sum.throttled += 1
                    }
                    "ServerException" | "InternalError" | "InternalFailure" => {
                        sum.server_errors += 1
                    }
                    o if o.starts_with("ok+malformed") => sum.malformed += 1,
                    _ => {}
                }
                let target = target.clone().unwrap_or_default();
                if outcome == "ResourceInUseException" {
                    v.push(format!(
                        "{at} {operation} on {region}/{target} answered `ResourceInUseException` (a conflicting call)"
                    ));
                }
                let ok = outcome.starts_with("ok");
                if WRITES.contains(&operation.as_str()) && !ok && !transient(outcome) {
                    v.push(format!(
                        "{at} {operation} on {region}/{target} was rejected: `{outcome}`"
                    ));
                }
                match operation.as_str() {
                    "UpdateClusterConfig" => {
                        let key = (account.clone(), region.clone(), target.clone());
                        let mut busy = running.get(&key).cloned().unwrap_or_default();
                        if ok {
                            sum.updates_started += 1;
                            if let Some(id) = just_started.get(&key) {
                                busy.remove(id);
                            }
                        }
                        if !busy.is_empty() {
                            v.push(format!(
                                "{at} UpdateClusterConfig on {region}/{target} while update(s) {busy:?} were in progress"
                            ));
                        }
                    }
                    "ModifyVpcAttribute" if ok => sum.vpc_writes += 1,
                    "AuthorizeSecurityGroupIngress" if ok => sum.ingress_writes += 1,
                    _ => {}
                }
            }
            Event::ClusterStatus { .. } | Event::SecurityGroupIngress { .. } => {}
        }
    }
    // A repeat of a finished endpoint step: the same settings again after an
    // update with them ended `Successful`.
    for ((_, region, cluster), list) in &sum.updates {
        for (k, later) in list.iter().enumerate() {
            if let Some(earlier) = list[..k]
                .iter()
                .rev()
                .find(|e| e.2 == "Successful")
                .filter(|e| e.1 == later.1)
            {
                v.push(format!(
                    "{region}/{cluster}: update {} repeats the settings of update {}, which had ended `Successful`",
                    later.0, earlier.0
                ));
            }
        }
    }
    sum.violations = v;
    sum
}

/// `params` of every endpoint update in the history, by update id. Reads go
/// through the emulator with generous retries, since its faults apply to
/// them too.
async fn update_params(
    sim: &SimHandle,
    history: &[HistoryEntry],
) -> BTreeMap<String, UpdateParams> {
    let mut wanted: Vec<(String, String, String)> = Vec::new();
    for e in history {
        if let Event::UpdateStatus {
            region,
            cluster,
            update_id,
            update_type,
            status,
            ..
        } = &e.event
        {
            if status == "InProgress" && update_type == "EndpointAccessUpdate" {
                wanted.push((region.clone(), cluster.clone(), update_id.clone()));
            }
        }
    }
    let mut clients: BTreeMap<String, aws_sdk_eks::Client> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (region, cluster, id) in wanted {
        if !clients.contains_key(&region) {
            let conf = sdk_config(sim, &region, fast_retry(50)).await;
            clients.insert(region.clone(), aws_sdk_eks::Client::new(&conf));
        }
        let eks = &clients[&region];
        // A damaged answer (malformed faults) parses without params: ask again.
        for _ in 0..50 {
            let Ok(resp) = eks
                .describe_update()
                .name(&cluster)
                .update_id(&id)
                .send()
                .await
            else {
                continue;
            };
            let Some(u) = resp.update() else { continue };
            if u.params().is_empty() {
                continue;
            }
            let get = |t: &str| {
                u.params()
                    .iter()
                    .find(|p| p.r#type().map(|x| x.as_str()) == Some(t))
                    .and_then(|p| p.value())
                    .map(str::to_string)
            };
            out.insert(
                id.clone(),
                UpdateParams {
                    public: get("EndpointPublicAccess").map(|s| s == "true"),
                    private: get("EndpointPrivateAccess").map(|s| s == "true"),
                    cidrs: get("PublicAccessCidrs"),
                },
            );
            break;
        }
    }
    out
}

// The checker must be able to fail: each case below is a history that breaks
// one invariant, and the checker has to say so.
#[cfg(test)]
mod self_test {
    use super::*;

    fn key(name: &str) -> Key {
        ("123456789012".into(), "us-east-1".into(), name.into())
    }

    fn at(t: f64, event: Event) -> HistoryEntry {
        HistoryEntry { t_ms: t, event }
    }

    fn req(op: &str, target: &str, outcome: &str) -> Event {
        Event::Request {
            service: "eks".into(),
            operation: op.into(),
            account: "123456789012".into(),
            principal: String::new(),
            region: "us-east-1".into(),
            target: Some(target.into()),
            outcome: outcome.into(),
            http_status: 200,
        }
    }

    fn status(c: &str, id: &str, s: &str) -> Event {
        Event::UpdateStatus {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            cluster: c.into(),
            update_id: id.into(),
            update_type: "EndpointAccessUpdate".into(),
            status: s.into(),
        }
    }

    fn endpoint(c: &str, public: bool, private: bool) -> Event {
        Event::Endpoint {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            cluster: c.into(),
            public,
            private,
            cidrs: vec![],
        }
    }

    fn p(public: bool, private: bool) -> UpdateParams {
        UpdateParams {
            public: Some(public),
            private: Some(private),
            cidrs: None,
        }
    }

    fn initial() -> Initial {
        let mut i = Initial::default();
        i.endpoints.insert(key("a"), (true, false));
        i.vpcs.insert(key("vpc-1"), (false, false));
        i
    }

    #[test]
    fn the_staged_order_passes() {
        let h = vec![
            at(0.0, status("a", "u1", "InProgress")),
            at(0.0, req("UpdateClusterConfig", "a", "ok")),
            at(1.0, status("a", "u1", "Successful")),
            at(1.0, endpoint("a", true, true)),
            at(2.0, status("a", "u2", "InProgress")),
            at(2.0, req("UpdateClusterConfig", "a", "ok")),
            at(3.0, status("a", "u2", "Successful")),
            at(3.0, endpoint("a", false, true)),
        ];
        let params = BTreeMap::from([("u1".into(), p(true, true)), ("u2".into(), p(false, true))]);
        check_history(&h, &initial(), &params).assert_clean("staged");
    }

    #[test]
    fn each_broken_invariant_is_reported() {
        let cases: Vec<(&str, Vec<HistoryEntry>, BTreeMap<String, UpdateParams>)> = vec![
            (
                "turns public access off while private access is off",
                vec![
                    at(0.0, status("a", "u1", "InProgress")),
                    at(0.0, req("UpdateClusterConfig", "a", "ok")),
                ],
                BTreeMap::from([("u1".into(), p(false, true))]),
            ),
            (
                "both endpoints off",
                vec![at(0.0, endpoint("a", false, false))],
                BTreeMap::new(),
            ),
            (
                "was rejected: `InvalidParameterException`",
                vec![at(
                    0.0,
                    req("UpdateClusterConfig", "a", "InvalidParameterException"),
                )],
                BTreeMap::new(),
            ),
            (
                "a conflicting call",
                vec![at(
                    0.0,
                    req("UpdateClusterConfig", "a", "ResourceInUseException"),
                )],
                BTreeMap::new(),
            ),
            (
                "were in progress",
                vec![
                    at(0.0, status("a", "u1", "InProgress")),
                    at(0.0, req("UpdateClusterConfig", "a", "ok")),
                    at(1.0, req("UpdateClusterConfig", "a", "ThrottlingException")),
                ],
                BTreeMap::from([("u1".into(), p(true, true))]),
            ),
            (
                "while `enableDnsSupport` is off",
                vec![at(
                    0.0,
                    Event::VpcAttribute {
                        account: "123456789012".into(),
                        region: "us-east-1".into(),
                        vpc_id: "vpc-1".into(),
                        attribute: "enableDnsHostnames".into(),
                        value: true,
                    },
                )],
                BTreeMap::new(),
            ),
            (
                "a repeated write",
                vec![at(
                    0.0,
                    Event::VpcAttribute {
                        account: "123456789012".into(),
                        region: "us-east-1".into(),
                        vpc_id: "vpc-1".into(),
                        attribute: "enableDnsSupport".into(),
                        value: false,
                    },
                )],
                BTreeMap::new(),
            ),
            (
                "`InvalidPermission.Duplicate`",
                vec![at(
                    0.0,
                    req(
                        "AuthorizeSecurityGroupIngress",
                        "sg-1",
                        "InvalidPermission.Duplicate",
                    ),
                )],
                BTreeMap::new(),
            ),
            (
                "repeats the settings of update u1",
                vec![
                    at(0.0, status("a", "u1", "InProgress")),
                    at(1.0, status("a", "u1", "Successful")),
                    at(2.0, status("a", "u2", "InProgress")),
                ],
                BTreeMap::from([("u1".into(), p(true, true)), ("u2".into(), p(true, true))]),
            ),
        ];
        for (want, h, params) in cases {
            let sum = check_history(&h, &initial(), &params);
            assert!(
                sum.violations.iter().any(|v| v.contains(want)),
                "expected a violation containing {want:?}, got {:?}",
                sum.violations
            );
        }
    }
}
