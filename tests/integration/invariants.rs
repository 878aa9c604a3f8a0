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
//!    throttling or a server error;
//! 8. the allow-list (`private_access_from_exclusive`): a revocation only
//!    ever removes inbound TCP 443–443 rules of a group whose allow-list a
//!    manifest owns, never the group's reference to itself nor a source a
//!    manifest declares; and once the run ends, every source a manifest
//!    declares is let in on 443 by its cluster security group (the end
//!    state, read from the emulator). Tests say which groups are owned and
//!    what is declared with [`Initial::declare`].
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
    /// The `private_access_from` of each cluster security group (account,
    /// region, group id), and whether its allow-list is owned
    /// (`private_access_from_exclusive`): only those may lose rules.
    pub declared: BTreeMap<Key, (BTreeSet<String>, bool)>,
    /// The run may end short of the manifest (a damaged answer stopped it):
    /// declared sources are not required to be there at the end.
    pub during_run: bool,
}

impl Initial {
    /// Says what the manifest declares for a group, and whether it owns the
    /// group's allow-list.
    pub fn declare(mut self, key: Key, sources: &[String], exclusive: bool) -> Initial {
        let entry = self.declared.entry(key).or_default();
        entry.0.extend(sources.iter().cloned());
        entry.1 |= exclusive;
        self
    }

    /// Skips the end-state check of declared sources.
    pub fn during_run(mut self) -> Initial {
        self.during_run = true;
        self
    }

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
    /// `RevokeSecurityGroupIngress` calls that succeeded, and the rules
    /// they removed.
    pub revoke_writes: usize,
    pub rules_revoked: usize,
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

const WRITES: [&str; 4] = [
    "UpdateClusterConfig",
    "ModifyVpcAttribute",
    "AuthorizeSecurityGroupIngress",
    "RevokeSecurityGroupIngress",
];

/// Replays the history since `initial` was taken and checks every invariant.
pub async fn check(sim: &SimHandle, initial: &Initial) -> Summary {
    let history = sim.history();
    let params = update_params(sim, &history[initial.history_len..]).await;
    let mut sum = check_history(&history[initial.history_len..], initial, &params);
    if !initial.during_run {
        sum.violations
            .extend(missing_declared(&sim.snapshot(), initial));
    }
    sum
}

/// Declared sources the end state does not let in on TCP 443 (a rule of
/// protocol `-1`, or TCP whose ports cover 443).
pub fn missing_declared(snapshot: &serde_json::Value, initial: &Initial) -> Vec<String> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let mut out = Vec::new();
    for r in snapshot["regions"].as_array().into_iter().flatten() {
        for g in r["security_groups"].as_array().into_iter().flatten() {
            let key = (s(&r["account"]), s(&r["region"]), s(&g["id"]));
            let Some((declared, _)) = initial.declared.get(&key) else {
                continue;
            };
            let open: BTreeSet<String> = g["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|rule| {
                    rule["protocol"] == "-1"
                        || (rule["protocol"] == "tcp"
                            && rule["from_port"].as_i64().unwrap_or(-1) <= 443
                            && rule["to_port"].as_i64().unwrap_or(-1) >= 443)
                })
                .map(|rule| s(&rule["source"]))
                .collect();
            for d in declared.difference(&open) {
                out.push(format!(
                    "{}/{}: declared source `{d}` is not let in on TCP 443 after the run",
                    key.1, key.2
                ));
            }
        }
    }
    out
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
                    "RevokeSecurityGroupIngress" if ok => sum.revoke_writes += 1,
                    _ => {}
                }
            }
            Event::SecurityGroupRevoke {
                account,
                region,
                group_id,
                rules,
            } => {
                sum.rules_revoked += rules.len();
                let key = (account.clone(), region.clone(), group_id.clone());
                let owned = initial
                    .declared
                    .get(&key)
                    .filter(|(_, exclusive)| *exclusive);
                for r in rules {
                    let exact =
                        !r.egress && r.protocol == "tcp" && r.from_port == 443 && r.to_port == 443;
                    let src = &r.source;
                    if owned.is_none() {
                        v.push(format!(
                            "{at} {region}/{group_id}: rule {} from `{src}` revoked, but no manifest owns this group's allow-list",
                            r.id
                        ));
                    }
                    if !exact {
                        v.push(format!(
                            "{at} {region}/{group_id}: rule {} from `{src}` ({} {}-{}, egress {}) revoked, which is not an inbound TCP 443 rule",
                            r.id, r.protocol, r.from_port, r.to_port, r.egress
                        ));
                    }
                    if src == group_id {
                        v.push(format!(
                            "{at} {region}/{group_id}: the group's reference to itself was revoked"
                        ));
                    }
                    if owned.is_some_and(|(d, _)| d.contains(src)) {
                        v.push(format!(
                            "{at} {region}/{group_id}: declared source `{src}` was revoked"
                        ));
                    }
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
    fn revoking_an_undeclared_exact_443_rule_of_an_owned_group_passes() {
        let h = vec![at(
            0.0,
            Event::SecurityGroupRevoke {
                account: "123456789012".into(),
                region: "us-east-1".into(),
                group_id: "sg-own".into(),
                rules: vec![eksgate::sim::RevokedRule {
                    id: "sgr-1".into(),
                    protocol: "tcp".into(),
                    from_port: 443,
                    to_port: 443,
                    source: "10.9.0.0/16".into(),
                    egress: false,
                }],
            },
        )];
        let owning = initial().declare(key("sg-own"), &["10.1.0.0/16".to_string()], true);
        check_history(&h, &owning, &BTreeMap::new()).assert_clean("owned");
        // The same revocation on a group nobody owns is one.
        let sum = check_history(&h, &initial(), &BTreeMap::new());
        assert!(
            sum.violations[0].contains("no manifest owns"),
            "{:?}",
            sum.violations
        );
    }

    #[test]
    fn a_declared_source_missing_at_the_end_is_reported() {
        let snap = serde_json::json!({"regions": [{
            "account": "123456789012", "region": "us-east-1",
            "security_groups": [{"id": "sg-own", "ingress": [
                {"protocol": "-1", "from_port": -1, "to_port": -1, "source": "sg-a"},
                {"protocol": "tcp", "from_port": 0, "to_port": 1024, "source": "10.1.0.0/16"},
                {"protocol": "tcp", "from_port": 22, "to_port": 22, "source": "10.2.0.0/16"},
            ]}],
        }]});
        let declared = ["sg-a", "10.1.0.0/16", "10.2.0.0/16"].map(String::from);
        let init = initial().declare(key("sg-own"), &declared, false);
        assert_eq!(
            missing_declared(&snap, &init),
            vec!["us-east-1/sg-own: declared source `10.2.0.0/16` is not let in on TCP 443 after the run"]
        );
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
        let revoke = |rule: (&str, i32, i32, &str, bool)| Event::SecurityGroupRevoke {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            group_id: "sg-own".into(),
            rules: vec![eksgate::sim::RevokedRule {
                id: "sgr-1".into(),
                protocol: rule.0.into(),
                from_port: rule.1,
                to_port: rule.2,
                source: rule.3.into(),
                egress: rule.4,
            }],
        };
        let mut cases = cases;
        cases.extend([
            (
                "which is not an inbound TCP 443 rule",
                vec![at(0.0, revoke(("-1", -1, -1, "10.9.0.0/16", false)))],
                BTreeMap::new(),
            ),
            (
                "which is not an inbound TCP 443 rule",
                vec![at(0.0, revoke(("tcp", 443, 443, "10.9.0.0/16", true)))],
                BTreeMap::new(),
            ),
            (
                "which is not an inbound TCP 443 rule",
                vec![at(0.0, revoke(("tcp", 22, 22, "10.9.0.0/16", false)))],
                BTreeMap::new(),
            ),
            (
                "reference to itself was revoked",
                vec![at(0.0, revoke(("tcp", 443, 443, "sg-own", false)))],
                BTreeMap::new(),
            ),
            (
                "declared source `10.1.0.0/16` was revoked",
                vec![at(0.0, revoke(("tcp", 443, 443, "10.1.0.0/16", false)))],
                BTreeMap::new(),
            ),
            (
                "RevokeSecurityGroupIngress on us-east-1/sg-1 was rejected",
                vec![at(
                    0.0,
                    req(
                        "RevokeSecurityGroupIngress",
                        "sg-1",
                        "InvalidSecurityGroupRuleId.NotFound",
                    ),
                )],
                BTreeMap::new(),
            ),
        ]);
        let owning = initial().declare(key("sg-own"), &["10.1.0.0/16".to_string()], true);
        for (want, h, params) in cases {
            let sum = check_history(&h, &owning, &params);
            assert!(
                sum.violations.iter().any(|v| v.contains(want)),
                "expected a violation containing {want:?}, got {:?}",
                sum.violations
            );
        }
    }
}
