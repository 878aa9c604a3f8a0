//! The planning function: a pure map from the desired state (manifests) and
//! the live state (AWS) to a [`Plan`], with the reason for every edge
//! between its steps (DESIGN.md section 2: DNS support, then hostnames, then
//! private access; 443 ingress and private access `Successful` before public
//! access goes off; never both off; never a call that changes nothing).
//!
//! This module must not do I/O or render: the sentences it writes are the
//! plan's own data (reasons, findings), and views decide how a plan looks.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use rayon::prelude::*;

use crate::desired::{AccessSource, ClusterKey, Desired, DesiredCluster};
use crate::endpoint::EndpointSettings;
use crate::live::{
    ClusterObservation, ClusterStatus, DnsAttribute, Live, LiveCluster, LiveSecurityGroup, LiveVpc,
    SecurityGroupKey, VpcKey, DEFAULT_SG_RULE_QUOTA,
};
use crate::set::SortedSet;
use crate::text::{join_and, mode_name, some_of};

use super::path::endpoint_path;
use super::{
    fingerprint_of, AccessCheck, Action, ClusterPlan, ClusterSettings, Finding, FindingCode, Plan,
    PlanStatus, Severity, Step, FORMAT_VERSION,
};
use crate::access::AuthenticationMode;

/// What one cluster needs, decided before shared steps are built.
struct Analysis<'a> {
    want: &'a DesiredCluster,
    live: Option<&'a LiveCluster>,
    sg_live: Option<&'a LiveSecurityGroup>,
    findings: Vec<Finding>,
    /// The VPC whose DNS settings must be on, when some are off.
    vpc: Option<(VpcKey, &'a LiveVpc)>,
    /// The security group and the sources this cluster still needs on 443.
    sg: Option<SgGap<'a>>,
    /// `(before, after)` of each `UpdateClusterConfig`, in order.
    endpoint: Vec<(EndpointSettings, EndpointSettings)>,
    /// `(live, wanted)` authentication mode, when it must move (`access`).
    access_mode: Option<(AuthenticationMode, AuthenticationMode)>,
    /// The principals apply checks again before public access goes off.
    access_recheck: Vec<String>,
    /// The fingerprint of the live cluster, once it has steps to plan.
    fingerprint: Option<String>,
}

impl Analysis<'_> {
    fn blocked(&self) -> bool {
        self.findings.iter().any(Finding::blocks)
    }

    /// Whether the cluster needs calls of its own (endpoint or
    /// authentication-mode updates): only then does it get steps, and a
    /// fingerprint of what they are planned on.
    fn has_calls(&self) -> bool {
        !self.endpoint.is_empty() || self.access_mode.is_some()
    }
}

/// One copy of each text that many steps share: the reasons of a fleet's
/// endpoint steps are a handful of sentences, its roles a handful of ARNs.
#[derive(Default)]
struct Shared(HashSet<Arc<str>>);

impl Shared {
    fn get(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.0.get(text) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.0.insert(shared.clone());
        shared
    }
}

/// Sources a cluster needs on 443 that its security group does not let in.
struct SgGap<'a> {
    key: SecurityGroupKey,
    live: &'a LiveSecurityGroup,
    missing: SortedSet<AccessSource>,
}

/// Plans the steps that bring every declared cluster to its manifest.
pub fn plan(desired: &Desired, live: &Live) -> Plan {
    // Prefix lists of `public_access_cidrs` become their CIDRs first.
    let (expanded, mut expansion) = super::allow_list::expand(desired, live);
    let desired = &expanded;
    let mut wanted: Vec<&DesiredCluster> = desired.clusters.iter().collect();
    wanted.sort_by(|a, b| sort_key(&a.key).cmp(&sort_key(&b.key)));

    let groups = Groups::new(live);
    let mut analyses: Vec<Analysis> = wanted
        .iter()
        .map(|want| analyse(want, live, &groups, desired.allow_unverified_access))
        .collect();
    let mut seen = BTreeSet::new();
    for a in &mut analyses {
        let want = a.want;
        // The manifest loader rejects duplicates; if two slipped through,
        // planning both would give two steps with one id.
        if !seen.insert(&want.key) {
            a.findings = vec![Finding {
                cluster: want.key.clone(),
                code: FindingCode::DeclaredTwice,
                severity: Severity::Block,
                message: format!("cluster `{}` is declared more than once", want.key),
                hint: Some(format!("remove one of the declarations ({})", want.origin)),
            }];
        }
        let (mine, rest) = expansion.drain(..).partition(|f| f.cluster == want.key);
        expansion = rest;
        a.findings.extend::<Vec<Finding>>(mine);
    }

    // Network paths: what AWS accepts but breaks nodes or clients later.
    // With the fingerprint of what a cluster's steps are planned on. On
    // every core: what this pass allocates is small (a few findings, one
    // short fingerprint per cluster), unlike the analyses above.
    analyses.par_iter_mut().for_each(|a| {
        let Some(found) = a.live.filter(|_| !a.blocked()) else {
            return;
        };
        let more = super::network::findings(a.want, found, &a.endpoint, live);
        a.findings.extend(more);
        if !a.blocked() && a.has_calls() {
            a.fingerprint = Some(fingerprint_of(found));
        }
    });

    block_groups_over_quota(&mut analyses, live);

    // Shared things: one node each, with every non-blocked dependent.
    let mut vpc_users: BTreeMap<VpcKey, VpcNeed> = BTreeMap::new();
    let mut sg_users: BTreeMap<SecurityGroupKey, SgNeed> = BTreeMap::new();
    for a in analyses.iter().filter(|a| !a.blocked()) {
        if let Some((key, vpc)) = &a.vpc {
            vpc_users
                .entry(key.clone())
                .or_insert_with(|| VpcNeed {
                    live: vpc,
                    clusters: Vec::new(),
                    role_arn: a.want.role_arn.as_deref(),
                })
                .clusters
                .push(&a.want.key);
        }
        if let Some(gap) = &a.sg {
            let need = sg_users.entry(gap.key.clone()).or_insert_with(|| SgNeed {
                live: gap.live,
                add: SortedSet::new(),
                clusters: Vec::new(),
                role_arn: a.want.role_arn.as_deref(),
                before_public_off: false,
            });
            need.add.extend(gap.missing.iter().cloned());
            need.clusters.push(&a.want.key);
            need.before_public_off |= a
                .endpoint
                .iter()
                .any(|(b, af)| b.public_access && !af.public_access);
        }
    }
    let vpc_steps: BTreeMap<VpcKey, Vec<Step>> = vpc_users
        .iter()
        .map(|(key, need)| (key.clone(), vpc_steps_for(key, need)))
        .collect();
    let sg_steps: BTreeMap<SecurityGroupKey, Step> = sg_users
        .iter()
        .map(|(key, need)| (key.clone(), sg_step_for(key, need)))
        .collect();
    let revokes =
        super::allow_list::revocations(&group_users(&analyses, &groups), &sg_steps, id_prefix);

    // Sized up front: a large fleet's plan is the biggest thing a run
    // holds, and a vector that doubles leaves the memory it grew out of.
    // Every cluster that goes on emits its endpoint and access steps (waits
    // are rare and may still grow it), and each shared step once.
    let own_steps: usize = analyses
        .iter()
        .filter(|a| !a.blocked() && a.live.is_some())
        .map(|a| a.endpoint.len() + usize::from(a.access_mode.is_some()))
        .sum();
    let shared_steps =
        vpc_steps.values().map(Vec::len).sum::<usize>() + sg_steps.len() + revokes.len();
    // The revocations each cluster waits for, in their order: looked up,
    // not scanned for every cluster (with every group owned, a scan made
    // planning 10,000 clusters take 4.8 s).
    let mut revokes_of: BTreeMap<&ClusterKey, Vec<&super::allow_list::Revocation>> =
        BTreeMap::new();
    for r in revokes.values() {
        for c in &r.clusters {
            revokes_of.entry(*c).or_default().push(r);
        }
    }
    let mut steps: Vec<Step> = Vec::with_capacity(own_steps + shared_steps);
    // The shared steps already emitted.
    let mut emitted: BTreeSet<&str> = BTreeSet::new();
    let mut clusters = Vec::with_capacity(analyses.len());
    let mut findings = Vec::with_capacity(analyses.iter().map(|a| a.findings.len()).sum());
    let mut access_checks = Vec::new();
    let mut shared = Shared::default();
    // Each analysis is let go once its cluster is planned.
    for mut a in analyses {
        let mut ids = Vec::new();
        if !a.blocked() {
            /// A shared step is emitted with the first cluster that needs it.
            fn emit<'s>(
                step: &'s Step,
                ids: &mut Vec<String>,
                steps: &mut Vec<Step>,
                emitted: &mut BTreeSet<&'s str>,
            ) {
                if emitted.insert(&step.id) {
                    steps.push(step.clone());
                }
                ids.push(step.id.clone());
            }
            let mut dns_ids = Vec::new();
            if let Some((key, _)) = &a.vpc {
                for s in vpc_steps.get(key).into_iter().flatten() {
                    emit(s, &mut ids, &mut steps, &mut emitted);
                    dns_ids.push(s.id.clone());
                }
            }
            let mut sg_id = None;
            if let Some(gap) = &a.sg {
                if let Some(s) = sg_steps.get(&gap.key) {
                    emit(s, &mut ids, &mut steps, &mut emitted);
                    sg_id = Some(s.id.clone());
                }
            }
            if let Some(live) = a.live {
                // The cluster's own steps: moved in, not copied, and not
                // recorded in `emitted` (their ids name the cluster, which
                // is planned once, and end unlike any shared step's).
                for s in endpoint_steps(&a, live, &dns_ids, sg_id.as_deref(), &mut shared) {
                    ids.push(s.id.clone());
                    steps.push(s);
                }
            }
            // A revocation is emitted with the last cluster that waits for
            // it, so every step it depends on comes before it.
            if let Some(r) = revokes_of.get(&a.want.key).and_then(|rs| rs.first()) {
                if r.clusters.last() == Some(&&a.want.key) {
                    emit(&r.step, &mut ids, &mut steps, &mut emitted);
                } else {
                    ids.push(r.step.id.clone());
                }
            }
        }
        let status = if a.blocked() {
            PlanStatus::Blocked
        } else if ids.is_empty() {
            PlanStatus::NoChanges
        } else {
            PlanStatus::Changes
        };
        if status == PlanStatus::Changes && !a.access_recheck.is_empty() {
            access_checks.push(AccessCheck {
                cluster: a.want.key.clone(),
                principals: std::mem::take(&mut a.access_recheck),
            });
        }
        // Held until the plan is written: no spare room.
        ids.shrink_to_fit();
        let mut cp = cluster_plan(&a, status, ids);
        if let Some(after) = cp.after.as_mut() {
            for r in revokes_of.get(&a.want.key).into_iter().flatten() {
                if let Action::HttpsRevoke { revoke, .. } = &r.step.action {
                    after.private_access_from.retain(|s| !revoke.contains(s));
                    after.managed_by_eksgate.retain(|s| !revoke.contains(s));
                }
            }
        }
        clusters.push(cp);
        findings.append(&mut a.findings);
        if status == PlanStatus::Changes {
            findings.extend(owner_warning(&a));
        }
    }
    // Only a revocation's wave can move after the waves are assigned (a
    // plan without one keeps no copy of every step id).
    let emitted: Option<BTreeMap<String, usize>> = (!revokes.is_empty()).then(|| {
        steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect()
    });
    assign_waves(&mut steps, &clusters);
    if let Some(emitted) = emitted {
        super::allow_list::settle_revoke_waves(&mut steps, &emitted);
    }

    Plan {
        format_version: FORMAT_VERSION,
        manifest_digest: desired.digest.clone(),
        steps,
        clusters,
        findings,
        access_checks,
    }
}

/// Every cluster whose cluster security group was read, for the
/// revocations of `private_access_from_exclusive`.
/// A cluster blocked before its group was looked at (not `ACTIVE`, say)
/// still counts: what it declares is never revoked.
/// Only the groups that some cluster going on owns exclusively are
/// revoked from (see `allow_list::revocations`), so only their clusters are
/// listed: none in a fleet that owns no allow-list.
fn group_users<'a>(
    analyses: &[Analysis<'a>],
    groups: &Groups<'a>,
) -> Vec<super::allow_list::GroupUser<'a>> {
    let exclusive =
        |a: &Analysis| a.want.private_access_from_exclusive && a.want.endpoint.private_access;
    let group_of = |a: &Analysis<'a>| {
        let group_id = a.live?.security_group_id.as_deref()?;
        Some((
            a.want.key.account.as_deref(),
            a.want.key.region.as_str(),
            group_id,
        ))
    };
    let owned: BTreeSet<(Option<&str>, &str, &str)> = analyses
        .iter()
        .filter(|a| exclusive(a) && !a.blocked())
        .filter_map(group_of)
        .collect();
    let mut out = Vec::new();
    if owned.is_empty() {
        return out;
    }
    for a in analyses {
        let Some((_, _, group_id)) = group_of(a).filter(|g| owned.contains(g)) else {
            continue;
        };
        let key = &a.want.key;
        let group = SecurityGroupKey {
            account: key.account.clone(),
            region: key.region.clone(),
            group_id: group_id.to_string(),
        };
        let Some(g) = a.sg_live.or_else(|| groups.find(&group).map(|(_, g)| g)) else {
            continue;
        };
        let last_endpoint = (!a.endpoint.is_empty()).then(|| {
            format!(
                "{}/{}/endpoint.{}",
                id_prefix(&key.account, &key.region),
                key.name,
                a.endpoint.len()
            )
        });
        out.push(super::allow_list::GroupUser {
            key,
            group,
            live: g,
            declared: &a.want.private_access_from,
            exclusive: exclusive(a),
            blocked: a.blocked(),
            ends_private_only: a.want.endpoint.mode() == (false, true),
            last_endpoint,
            role_arn: a.want.role_arn.as_deref(),
            wave: a.want.wave,
        });
    }
    out
}

/// The warning for a cluster another tool created (its tags say which), when
/// the plan changes it and the manifest has not acknowledged the hand-over.
/// Clusters the plan leaves alone get none: nothing of theirs would be put
/// back.
fn owner_warning(a: &Analysis) -> Option<Finding> {
    if a.want.owner_acknowledged {
        return None;
    }
    let owner = super::owner::Owner::of(&a.live?.tags)?;
    Some(Finding {
        cluster: a.want.key.clone(),
        code: owner.code(),
        severity: Severity::Warn,
        message: format!(
            "`{}` was created by {}, which also holds its endpoint settings: its next run may put back what this plan changes",
            a.want.key,
            owner.describe()
        ),
        hint: Some(owner.hand_over()),
    })
}

/// Blocks every cluster that would add 443 rules to a security group past its
/// quota of inbound rules (counting what the group holds plus what every
/// cluster sharing it would add): AWS would refuse the whole call with
/// `RulesPerSecurityGroupLimitExceeded`. Other clusters go on.
fn block_groups_over_quota(analyses: &mut [Analysis], world: &Live) {
    let mut adds: BTreeMap<SecurityGroupKey, (&LiveSecurityGroup, SortedSet<AccessSource>)> =
        BTreeMap::new();
    for a in analyses.iter().filter(|a| !a.blocked()) {
        if let Some(gap) = &a.sg {
            adds.entry(gap.key.clone())
                .or_insert_with(|| (gap.live, SortedSet::new()))
                .1
                .extend(gap.missing.iter().cloned());
        }
    }
    let mut over: BTreeMap<SecurityGroupKey, String> = BTreeMap::new();
    for (key, (live, add)) in &adds {
        let Some(have) = super::allow_list::held_rules(live, world, &key.account, &key.region)
        else {
            continue;
        };
        let quota = live.rule_quota.unwrap_or(DEFAULT_SG_RULE_QUOTA);
        let add = super::allow_list::rule_count(add, world, &key.account, &key.region);
        let families = [("IPv4", have.ipv4, add.ipv4), ("IPv6", have.ipv6, add.ipv6)];
        if let Some((family, have, add)) = families
            .into_iter()
            .find(|(_, have, add)| *add > 0 && have + add > quota)
        {
            over.insert(
                key.clone(),
                format!(
                    "security group `{}` holds {have} inbound {family} rules and the plan would add {add}, past its quota of {quota}",
                    key.group_id
                ),
            );
        }
    }
    for a in analyses.iter_mut().filter(|a| !a.blocked()) {
        let Some(message) = a.sg.as_ref().and_then(|gap| over.get(&gap.key)) else {
            continue;
        };
        a.findings.push(Finding {
            cluster: a.want.key.clone(),
            code: FindingCode::SecurityGroupRuleQuota,
            severity: Severity::Block,
            message: format!(
                "`{}` needs TCP 443 rules, but {message}: AWS would refuse them with `RulesPerSecurityGroupLimitExceeded`",
                a.want.key
            ),
            hint: Some(
                "remove rules the group no longer needs, or ask AWS to raise the quota \"Inbound or outbound rules per security group\" and plan with `--sg-rule-quota N`"
                    .to_string(),
            ),
        });
    }
}

/// Gives each step the lowest wave among the clusters that need it, then
/// orders the steps by wave (stably, so within a wave the order is the one
/// built above). A step only depends on steps of its own cluster or on
/// shared ones, whose wave is never higher, so the order stays topological.
fn assign_waves(steps: &mut [Step], clusters: &[ClusterPlan]) {
    // Without waves every cluster, and so every step, is in wave 0: no map
    // of every step id (a tenth of planning 10,000 clusters) to say so.
    if clusters.iter().all(|c| c.wave == 0) {
        for s in steps.iter_mut() {
            s.wave = 0;
        }
        return;
    }
    let mut wave: BTreeMap<&str, u32> = BTreeMap::new();
    for c in clusters {
        for id in &c.steps {
            let w = wave.entry(id.as_str()).or_insert(c.wave);
            *w = (*w).min(c.wave);
        }
    }
    for s in steps.iter_mut() {
        s.wave = wave.get(s.id.as_str()).copied().unwrap_or(0);
    }
    // Most plans have one wave: a stable sort would still take a copy of
    // half the steps as its buffer.
    if !steps.is_sorted_by_key(|s| s.wave) {
        steps.sort_by_key(|s| s.wave);
    }
}

/// A VPC whose DNS settings some clusters need on. Its steps run with the
/// role of the first of them, in plan order.
struct VpcNeed<'a> {
    live: &'a LiveVpc,
    clusters: Vec<&'a ClusterKey>,
    role_arn: Option<&'a str>,
}

/// A security group and every source its clusters still need on 443.
struct SgNeed<'a> {
    live: &'a LiveSecurityGroup,
    add: SortedSet<AccessSource>,
    clusters: Vec<&'a ClusterKey>,
    role_arn: Option<&'a str>,
    before_public_off: bool,
}

fn sort_key(k: &ClusterKey) -> (&str, &str, Option<&str>) {
    (&k.region, &k.name, k.account.as_deref())
}

/// `ACCOUNT/` when the manifest pins one, so ids stay unique across accounts.
fn id_prefix(account: &Option<String>, region: &str) -> String {
    match account {
        Some(acc) => format!("{acc}/{region}"),
        None => region.to_string(),
    }
}

/// Looks a VPC up by the cluster's account, falling back to region and id
/// alone: ids are unique in a region whichever account the reader used.
fn find_vpc<'a>(live: &'a Live, key: &VpcKey) -> Option<(VpcKey, &'a LiveVpc)> {
    // The node keeps the cluster's account either way: apply makes the call
    // with that account's credentials.
    let found = live.vpcs.get(key).or_else(|| {
        live.vpcs
            .iter()
            .find(|(k, _)| k.region == key.region && k.vpc_id == key.vpc_id)
            .map(|(_, v)| v)
    });
    found.map(|v| (key.clone(), v))
}

/// The security groups the read found, looked up by the cluster's key and,
/// failing that, by region and id alone (ids are unique in a region,
/// whichever account read them), the first in the map's order. The second
/// lookup's index is built at its first use: scanning every group for each
/// cluster whose group was not read (one without private access) made
/// planning quadratic in such clusters.
struct Groups<'a> {
    live: &'a Live,
    by_id: std::cell::OnceCell<BTreeMap<(&'a str, &'a str), &'a LiveSecurityGroup>>,
}

impl<'a> Groups<'a> {
    fn new(live: &'a Live) -> Groups<'a> {
        Groups {
            live,
            by_id: std::cell::OnceCell::new(),
        }
    }

    fn find(&self, key: &SecurityGroupKey) -> Option<(SecurityGroupKey, &'a LiveSecurityGroup)> {
        let found = self.live.security_groups.get(key).or_else(|| {
            let by_id = self.by_id.get_or_init(|| {
                let mut by_id = BTreeMap::new();
                for (k, g) in &self.live.security_groups {
                    by_id
                        .entry((k.region.as_str(), k.group_id.as_str()))
                        .or_insert(g);
                }
                by_id
            });
            by_id
                .get(&(key.region.as_str(), key.group_id.as_str()))
                .copied()
        });
        found.map(|g| (key.clone(), g))
    }
}

fn analyse<'a>(
    want: &'a DesiredCluster,
    live: &'a Live,
    groups: &Groups<'a>,
    allow_unverified_access: bool,
) -> Analysis<'a> {
    let mut a = Analysis {
        want,
        live: None,
        sg_live: None,
        findings: Vec::new(),
        vpc: None,
        sg: None,
        endpoint: Vec::new(),
        access_mode: None,
        access_recheck: Vec::new(),
        fingerprint: None,
    };
    let key = &want.key;
    let block = |code: FindingCode, message: String, hint: Option<String>| Finding {
        cluster: key.clone(),
        code,
        severity: Severity::Block,
        message,
        hint,
    };
    let found = match live.clusters.get(key) {
        None => {
            a.findings.push(block(
                FindingCode::NotRead,
                format!("the live state of `{key}` was not read"),
                None,
            ));
            return a;
        }
        Some(ClusterObservation::NotFound) => {
            let account = key
                .account
                .as_ref()
                .map(|acc| format!(" of account `{acc}`"))
                .unwrap_or_default();
            a.findings.push(block(
                FindingCode::ClusterNotFound,
                format!(
                    "cluster `{}` not found in region `{}`{account}",
                    key.name, key.region
                ),
                Some(format!(
                    "check the region, the account the credentials resolve to and the cluster name (declared at {})",
                    want.origin
                )),
            ));
            return a;
        }
        Some(ClusterObservation::AccountMismatch { expected, actual }) => {
            a.findings.push(block(
                FindingCode::AccountMismatch,
                format!(
                    "the credentials for `{key}` resolve to account `{actual}`, but the manifest expects `{expected}`"
                ),
                Some(format!(
                    "use credentials for account `{expected}` (a profile, or `role_arn` in the manifest)"
                )),
            ));
            return a;
        }
        Some(ClusterObservation::Found(c)) => c,
    };
    a.live = Some(found);

    let status_hint = match &found.status {
        ClusterStatus::Active | ClusterStatus::Updating => None,
        ClusterStatus::Creating | ClusterStatus::Pending => {
            Some("wait until it is `ACTIVE`, then plan again".to_string())
        }
        ClusterStatus::Deleting => {
            Some("remove it from the manifest, or wait and recreate it".to_string())
        }
        ClusterStatus::Failed => Some(
            "a `FAILED` cluster cannot be updated; recreate it or remove it from the manifest"
                .to_string(),
        ),
        ClusterStatus::Other(_) => Some("wait until it is `ACTIVE`, then plan again".to_string()),
    };
    if let Some(hint) = status_hint {
        a.findings.push(block(
            FindingCode::ClusterNotActive,
            format!(
                "cluster `{key}` is `{}`; its endpoint cannot be changed now",
                found.status.as_str()
            ),
            Some(hint),
        ));
        return a;
    }
    if want.endpoint.both_off() {
        a.findings.push(block(
            FindingCode::BothEndpointsOff,
            format!("`{key}` asks for neither public nor private access"),
            Some("EKS rejects this: turn on `public_access` or `private_access`".to_string()),
        ));
        return a;
    }

    let sg_key = found.security_group_id.as_ref().map(|id| SecurityGroupKey {
        account: key.account.clone(),
        region: key.region.clone(),
        group_id: id.clone(),
    });
    let sg = sg_key.as_ref().and_then(|k| groups.find(k));
    a.sg_live = sg.as_ref().map(|(_, g)| *g);

    if want.endpoint.private_access {
        let vpc_key = VpcKey {
            account: key.account.clone(),
            region: key.region.clone(),
            vpc_id: found.vpc_id.clone(),
        };
        match find_vpc(live, &vpc_key) {
            None => a.findings.push(block(
                FindingCode::VpcNotRead,
                format!(
                    "the VPC `{}` of `{key}` was not read; private access needs its DNS settings",
                    found.vpc_id
                ),
                None,
            )),
            Some((_, vpc)) if !vpc.has_amazon_dns() => a.findings.push(block(
                FindingCode::DhcpWithoutAmazonDns,
                format!(
                    "`{key}` asks for private access, but the DHCP options `{}` of VPC `{}` do not list `AmazonProvidedDNS`",
                    vpc.dhcp_options_id, found.vpc_id
                ),
                Some(format!(
                    "create a DHCP options set whose `domain-name-servers` include `AmazonProvidedDNS` and associate it with `{}` (replacing `{}`); otherwise the private endpoint's name does not resolve in the VPC",
                    found.vpc_id, vpc.dhcp_options_id
                )),
            )),
            Some((k, vpc)) if !(vpc.dns_support && vpc.dns_hostnames) => a.vpc = Some((k, vpc)),
            Some(_) => {}
        }

        if !want.private_access_from.is_empty() || want.private_access_from_exclusive {
            match (&found.security_group_id, sg) {
                (None, _) => a.findings.push(block(
                    FindingCode::NoClusterSecurityGroup,
                    format!(
                        "`{key}` declares `private_access_from`, but the cluster has no cluster security group"
                    ),
                    Some(
                        "allow TCP 443 from those sources on the cluster's security groups yourself, or remove `private_access_from`"
                            .to_string(),
                    ),
                )),
                (Some(id), None) => a.findings.push(block(
                    FindingCode::SecurityGroupNotRead,
                    format!("the security group `{id}` of `{key}` was not read"),
                    None,
                )),
                (Some(_), Some((k, g))) => {
                    let missing: SortedSet<AccessSource> = want
                        .private_access_from
                        .difference(&g.https_ingress)
                        .cloned()
                        .collect();
                    if !missing.is_empty() {
                        a.sg = Some(SgGap {
                            key: k,
                            live: g,
                            missing,
                        });
                    }
                }
            }
        }
    }

    a.endpoint = endpoint_path(found, want);
    let access = super::access::check(
        want,
        found,
        live.access.get(key),
        &a.endpoint,
        allow_unverified_access,
    );
    a.findings.extend(access.findings);
    a.access_mode = access.mode_change;
    a.access_recheck = access.recheck;
    a
}

/// Names a few clusters for a reason: `a`, `b` and 3 more.
fn name_clusters(keys: &[&ClusterKey]) -> String {
    let names: Vec<String> = keys.iter().map(|k| format!("`{}`", k.name)).collect();
    some_of(&names, 2)
}

fn vpc_steps_for(key: &VpcKey, need: &VpcNeed) -> Vec<Step> {
    let vpc = need.live;
    let prefix = format!("{}/{}", id_prefix(&key.account, &key.region), key.vpc_id);
    let fingerprint = fingerprint_of(vpc);
    let who = name_clusters(&need.clusters);
    let step =
        |attribute: DnsAttribute, attr: &str, reason: String, depends_on: Vec<String>| Step {
            id: format!("{prefix}/{attr}"),
            action: Action::VpcDns { attribute },
            account: key.account.clone(),
            region: key.region.clone(),
            role_arn: need.role_arn.map(Arc::from),
            cluster: None,
            vpc_id: Some(key.vpc_id.clone()),
            security_group_id: None,
            depends_on,
            reason: reason.into(),
            lockout_risk: false,
            fingerprint: fingerprint.clone(),
            wave: 0,
        };
    let mut out = Vec::new();
    if !vpc.dns_support {
        out.push(step(
            DnsAttribute::Support,
            "dns_support",
            format!(
                "private access on {who} needs `enableDnsSupport` in `{}`, or the endpoint's name does not resolve there",
                key.vpc_id
            ),
            Vec::new(),
        ));
    }
    if !vpc.dns_hostnames {
        let (reason, deps) = match out.first() {
            Some(support) => (
                format!(
                    "private access on {who} needs `enableDnsHostnames` in `{}`, which EC2 accepts only once `enableDnsSupport` is on, so it waits for that",
                    key.vpc_id
                ),
                vec![support.id.clone()],
            ),
            None => (
                format!(
                    "private access on {who} needs `enableDnsHostnames` in `{}`, or the endpoint's name does not resolve there",
                    key.vpc_id
                ),
                Vec::new(),
            ),
        };
        out.push(step(DnsAttribute::Hostnames, "dns_hostnames", reason, deps));
    }
    out
}

fn sg_step_for(key: &SecurityGroupKey, need: &SgNeed) -> Step {
    let who = name_clusters(&need.clusters);
    let reason = if need.before_public_off {
        format!(
            "the `private_access_from` sources of {who} must reach the private endpoint on TCP 443 before public access is turned off"
        )
    } else {
        format!(
            "the `private_access_from` sources of {who} must reach the private endpoint on TCP 443"
        )
    };
    Step {
        id: format!(
            "{}/{}/https_ingress",
            id_prefix(&key.account, &key.region),
            key.group_id
        ),
        action: Action::HttpsIngress {
            present: need.live.https_ingress.clone(),
            add: need.add.clone(),
        },
        account: key.account.clone(),
        region: key.region.clone(),
        role_arn: need.role_arn.map(Arc::from),
        cluster: None,
        vpc_id: None,
        security_group_id: Some(key.group_id.clone()),
        depends_on: Vec::new(),
        reason: reason.into(),
        lockout_risk: false,
        fingerprint: fingerprint_of(need.live),
        wave: 0,
    }
}

/// Waits for updates already running, then the endpoint calls, chained.
fn endpoint_steps(
    a: &Analysis,
    live: &LiveCluster,
    dns_ids: &[String],
    sg_id: Option<&str>,
    shared: &mut Shared,
) -> Vec<Step> {
    // Nothing to call: waiting for someone else's update would only slow the
    // apply down, so no wait step either.
    if !a.has_calls() {
        return Vec::new();
    }
    let key = &a.want.key;
    let prefix = format!("{}/{}", id_prefix(&key.account, &key.region), key.name);
    let fingerprint = a
        .fingerprint
        .clone()
        .unwrap_or_else(|| fingerprint_of(live));
    let role_arn = a.want.role_arn.as_deref().map(|r| shared.get(r));
    let base = |id: String, action: Action| Step {
        id,
        action,
        account: key.account.clone(),
        region: key.region.clone(),
        role_arn: role_arn.clone(),
        cluster: Some(key.name.clone()),
        vpc_id: Some(live.vpc_id.clone()),
        security_group_id: live.security_group_id.clone(),
        depends_on: Vec::new(),
        reason: "".into(),
        lockout_risk: false,
        fingerprint: fingerprint.clone(),
        wave: a.want.wave,
    };

    let mut out = Vec::new();
    let mut waits: Vec<Option<&str>> = Vec::new();
    for id in &live.updates_in_progress {
        if !waits.contains(&Some(id.as_str())) {
            waits.push(Some(id));
        }
    }
    if waits.is_empty() && live.status == ClusterStatus::Updating {
        waits.push(None);
    }
    for w in &waits {
        let mut s = base(
            format!("{prefix}/wait.{}", w.unwrap_or("updating")),
            Action::WaitUpdate {
                update_id: w.map(str::to_string),
            },
        );
        s.reason = match w {
            Some(id) => format!(
                "update `{id}` is already in progress and EKS runs one update at a time per cluster, so the endpoint change waits for it"
            ).into(),
            None => shared.get("the cluster is `UPDATING` and EKS runs one update at a time per cluster, so the endpoint change waits until it is `ACTIVE`"),
        };
        out.push(s);
    }
    let wait_ids: Vec<String> = out.iter().map(|s| s.id.clone()).collect();

    // The authentication mode moves first: it is an update of its own type
    // (never in the endpoint's call), and public access goes off only once
    // the access entries can be checked.
    let mut access_id = None;
    if let Some((before, after)) = &a.access_mode {
        let mut s = base(
            format!("{prefix}/access_config"),
            Action::AccessConfig {
                before: before.clone(),
                after: after.clone(),
            },
        );
        s.depends_on.extend(wait_ids.iter().cloned());
        let public_off = a
            .endpoint
            .iter()
            .any(|(b, af)| b.public_access && !af.public_access);
        let why = if public_off {
            ", before public access goes off, so the access entries of `private_access_principals` can be checked"
        } else {
            ""
        };
        let waits = if wait_ids.is_empty() {
            ""
        } else {
            "; it waits for the update already in progress"
        };
        s.reason = shared.get(&format!(
            "move the authentication mode from `{before}` to `{after}`, as the manifest asks{why}{waits}"
        ));
        access_id = Some(s.id.clone());
        out.push(s);
    }

    let to = &a.want.endpoint;
    let n = a.endpoint.len();
    let mut prev: Option<String> = None;
    for (i, (before, after)) in a.endpoint.iter().enumerate() {
        let mut s = base(
            format!("{prefix}/endpoint.{}", i + 1),
            Action::Endpoint {
                before: before.clone(),
                after: after.clone(),
            },
        );
        let mut waits_for: Vec<&str> = Vec::new();
        match &prev {
            Some(p) => {
                s.depends_on.push(p.clone());
                waits_for.push("the previous endpoint update to be `Successful`");
            }
            None => {
                if let Some(acc) = &access_id {
                    s.depends_on.push(acc.clone());
                    waits_for.push("the authentication mode update to be `Successful`");
                } else if !wait_ids.is_empty() {
                    s.depends_on.extend(wait_ids.iter().cloned());
                    waits_for.push("the update already in progress");
                }
                if !dns_ids.is_empty() {
                    s.depends_on.extend(dns_ids.iter().cloned());
                    waits_for.push("the VPC DNS settings private access needs");
                }
            }
        }
        let public_off = before.public_access && !after.public_access;
        if public_off {
            if let Some(sg) = sg_id {
                s.depends_on.push(sg.to_string());
                waits_for.push("the TCP 443 ingress for `private_access_from`");
            }
        }
        let staged_first = i + 1 < n;
        // Borrowed where it is fixed: `shared` copies it once per plan.
        let what: std::borrow::Cow<'static, str> = if staged_first
            && after.private_access
            && !before.private_access
        {
            "turn private access on first, so the cluster stays reachable while public access is turned off in the next step".into()
        } else if staged_first && after.public_access && !before.public_access {
            "turn public access on first, so the cluster stays reachable while private access is turned off in the next step".into()
        } else if before.mode() == after.mode() {
            "set the public access CIDRs the manifest lists".into()
        } else {
            format!(
                "make the endpoint {}, as the manifest asks",
                mode_name(to.public_access, to.private_access)
            )
            .into()
        };
        s.reason = match waits_for.len() {
            0 => shared.get(&what),
            _ => shared.get(&format!("{what}; it waits for {}", join_and(&waits_for))),
        };
        s.lockout_risk = public_off && a.want.private_access_from.is_empty();
        s.depends_on.shrink_to_fit();
        prev = Some(s.id.clone());
        out.push(s);
    }
    out
}

fn cluster_plan(a: &Analysis, status: PlanStatus, steps: Vec<String>) -> ClusterPlan {
    let want = a.want;
    let settings = |e: &EndpointSettings, sources: &SortedSet<AccessSource>| ClusterSettings {
        public_access: e.public_access,
        private_access: e.private_access,
        public_access_cidrs: e.public_access_cidrs.clone(),
        private_access_from: sources.clone(),
        managed_by_eksgate: SortedSet::new(),
    };
    let live_managed: SortedSet<AccessSource> = a
        .sg_live
        .map(|g| g.managed_https.clone())
        .unwrap_or_default();
    let desired = settings(&want.endpoint, &want.private_access_from);
    let live_sources: SortedSet<AccessSource> = a
        .sg_live
        .map(|g| g.https_ingress.clone())
        .unwrap_or_default();
    let live_cidrs = |l: &LiveCluster| l.endpoint.public_access_cidrs.clone().unwrap_or_default();
    let live = a.live.map(|l| {
        let mut s = settings(&l.endpoint, &live_sources);
        s.public_access_cidrs = Some(live_cidrs(l));
        s.managed_by_eksgate = live_managed.clone();
        s
    });
    let after = match (status, a.live) {
        (PlanStatus::Blocked, _) | (_, None) => None,
        (_, Some(l)) => {
            let cidrs = match (
                &want.endpoint.public_access_cidrs,
                want.endpoint.public_access,
            ) {
                (Some(c), true) => c.clone(),
                _ => live_cidrs(l),
            };
            let mut sources = live_sources.clone();
            if want.endpoint.private_access && a.sg.is_some() {
                sources.extend(want.private_access_from.iter().cloned());
            }
            let mut s = settings(&want.endpoint, &sources);
            s.public_access_cidrs = Some(cidrs);
            // The current rules that carry eksgate's description (those a
            // revocation removes are taken out by the caller).
            s.managed_by_eksgate = live_managed.clone();
            Some(s)
        }
    };
    ClusterPlan {
        key: want.key.clone(),
        status,
        live,
        desired,
        after,
        steps,
        wave: want.wave,
    }
}

#[cfg(test)]
mod tests {
    use ipnet::IpNet;
    use proptest::prelude::*;
    use serde::de::DeserializeOwned;

    use super::*;
    use crate::desired::Origin;
    use crate::endpoint::{EndpointSettings as Settings, PublicCidr, PublicCidrs};
    use crate::plan::StepKind;
    use crate::set::SortedSet;
    use crate::view::describe;

    /// Whether the endpoints are on, for tables of modes.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    struct EndpointAccess {
        public: bool,
        private: bool,
    }

    fn mode_of(e: &Settings) -> EndpointAccess {
        EndpointAccess {
            public: e.public_access,
            private: e.private_access,
        }
    }

    /// The settings of a step as its JSON form shows them (CIDRs as strings).
    #[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
    struct EndpointSettings {
        public_access: bool,
        private_access: bool,
        #[serde(default)]
        public_access_cidrs: Option<Vec<String>>,
    }

    /// The sources of an ingress step as its JSON form shows them.
    #[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
    struct HttpsSources {
        cidrs: Vec<String>,
        security_groups: Vec<String>,
    }

    /// A step's `before` and `after` as saved plans and `--format json`
    /// show them: the tests pin that form.
    trait Wire {
        fn json(&self) -> serde_json::Value;
        fn before(&self) -> serde_json::Value {
            self.json()["before"].clone()
        }
        fn after(&self) -> serde_json::Value {
            self.json()["after"].clone()
        }
        fn before_as<T: DeserializeOwned>(&self) -> Option<T> {
            serde_json::from_value(self.before()).ok()
        }
        fn after_as<T: DeserializeOwned>(&self) -> Option<T> {
            serde_json::from_value(self.after()).ok()
        }
    }

    impl Wire for Step {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap()
        }
    }

    fn cidr_strings(set: &PublicCidrs) -> Vec<String> {
        set.iter().map(ToString::to_string).collect()
    }

    fn to_cidrs(set: BTreeSet<IpNet>) -> PublicCidrs {
        set.into_iter().map(PublicCidr::Net).collect()
    }

    const PUB: EndpointAccess = EndpointAccess {
        public: true,
        private: false,
    };
    const BOTH: EndpointAccess = EndpointAccess {
        public: true,
        private: true,
    };
    const PRIV: EndpointAccess = EndpointAccess {
        public: false,
        private: true,
    };

    /// Normalised like the manifest loader and the provider do.
    fn net(s: &str) -> IpNet {
        s.parse::<IpNet>().unwrap().trunc()
    }

    fn nets(v: &[&str]) -> PublicCidrs {
        v.iter().map(|s| PublicCidr::Net(net(s))).collect()
    }

    fn src(s: &str) -> AccessSource {
        if s.starts_with("sg-") {
            AccessSource::SecurityGroup(s.to_string())
        } else {
            AccessSource::Cidr(net(s))
        }
    }

    fn srcs(v: &[&str]) -> SortedSet<AccessSource> {
        v.iter().map(|s| src(s)).collect()
    }

    fn key(name: &str) -> ClusterKey {
        ClusterKey {
            account: None,
            region: "eu-west-1".into(),
            name: name.into(),
        }
    }

    fn want(name: &str, mode: EndpointAccess) -> DesiredCluster {
        DesiredCluster {
            key: key(name),
            role_arn: None,
            endpoint: Settings::new(mode.public, mode.private),
            private_access_from: SortedSet::new(),
            wave: 0,
            owner_acknowledged: false,
            private_access_from_exclusive: false,
            public_access_prefix_lists: Default::default(),
            origin: Origin {
                file: "prod.toml".into(),
                line: 3,
                column: 1,
            },
            access: Default::default(),
        }
    }

    fn found(name: &str, mode: EndpointAccess) -> LiveCluster {
        LiveCluster {
            network: Default::default(),
            key: key(name),
            arn: format!("arn:aws:eks:eu-west-1:111122223333:cluster/{name}"),
            status: ClusterStatus::Active,
            vpc_id: "vpc-1".into(),
            security_group_id: Some("sg-c".into()),
            endpoint: Settings::new(mode.public, mode.private)
                .with_cidrs(Some(nets(&["0.0.0.0/0"]))),
            tags: Default::default(),
            updates_in_progress: Vec::new(),
            authentication_mode: None,
        }
    }

    fn vpc(support: bool, hostnames: bool, amazon: bool) -> LiveVpc {
        LiveVpc {
            cidr_blocks: Vec::new(),
            dns_support: support,
            dns_hostnames: hostnames,
            dhcp_options_id: "dopt-1".into(),
            domain_name_servers: vec![if amazon {
                "AmazonProvidedDNS".into()
            } else {
                "10.0.0.2".into()
            }],
        }
    }

    fn vpc_key(id: &str) -> VpcKey {
        VpcKey {
            account: None,
            region: "eu-west-1".into(),
            vpc_id: id.into(),
        }
    }

    fn sg_key(id: &str) -> SecurityGroupKey {
        SecurityGroupKey {
            account: None,
            region: "eu-west-1".into(),
            group_id: id.into(),
        }
    }

    /// A world where `vpc-1` has DNS on and `sg-c` lets nothing in on 443.
    fn world(pairs: Vec<(DesiredCluster, ClusterObservation)>) -> (Desired, Live) {
        let mut live = Live::default();
        live.vpcs.insert(vpc_key("vpc-1"), vpc(true, true, true));
        live.security_groups
            .insert(sg_key("sg-c"), LiveSecurityGroup::default());
        let mut desired = Desired {
            clusters: Vec::new(),
            digest: "digest".into(),
            allow_unverified_access: false,
        };
        for (d, o) in pairs {
            live.clusters.insert(d.key.clone(), o);
            desired.clusters.push(d);
        }
        (desired, live)
    }

    fn one(d: DesiredCluster, l: LiveCluster) -> (Desired, Live) {
        world(vec![(d, ClusterObservation::Found(l))])
    }

    fn eks(plan: &Plan) -> Vec<&Step> {
        plan.steps
            .iter()
            .filter(|s| s.kind() == StepKind::EksEndpoint)
            .collect()
    }

    fn afters(plan: &Plan) -> Vec<EndpointSettings> {
        eks(plan).iter().map(|s| s.after_as().unwrap()).collect()
    }

    fn ep(public: bool, private: bool, cidrs: Option<&[&str]>) -> EndpointSettings {
        EndpointSettings {
            public_access: public,
            private_access: private,
            public_access_cidrs: cidrs.map(|c| c.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn ids(plan: &Plan) -> Vec<&str> {
        plan.steps.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn every_transition_between_endpoint_modes() {
        // (live, desired, afters, lockout flags), private_access_from empty.
        let cases: Vec<(
            EndpointAccess,
            EndpointAccess,
            Vec<EndpointSettings>,
            Vec<bool>,
        )> = vec![
            (PUB, PUB, vec![], vec![]),
            (BOTH, BOTH, vec![], vec![]),
            (PRIV, PRIV, vec![], vec![]),
            (PUB, BOTH, vec![ep(true, true, None)], vec![false]),
            (
                PUB,
                PRIV,
                vec![ep(true, true, None), ep(false, true, None)],
                vec![false, true],
            ),
            (BOTH, PUB, vec![ep(true, false, None)], vec![false]),
            (BOTH, PRIV, vec![ep(false, true, None)], vec![true]),
            (
                PRIV,
                PUB,
                vec![ep(true, true, None), ep(true, false, None)],
                vec![false, false],
            ),
            (PRIV, BOTH, vec![ep(true, true, None)], vec![false]),
        ];
        for (from, to, expected, lockout) in cases {
            let (d, l) = one(want("a", to), found("a", from));
            let plan = plan(&d, &l);
            let label = format!(
                "{} -> {}",
                mode_name(from.public, from.private),
                mode_name(to.public, to.private)
            );
            assert_eq!(afters(&plan), expected, "{label}");
            let steps = eks(&plan);
            assert_eq!(
                steps.iter().map(|s| s.lockout_risk).collect::<Vec<_>>(),
                lockout,
                "{label}"
            );
            if steps.len() == 2 {
                assert_eq!(steps[1].depends_on, vec![steps[0].id.clone()], "{label}");
                assert_eq!(steps[0].id, "eu-west-1/a/endpoint.1");
                assert_eq!(steps[1].id, "eu-west-1/a/endpoint.2");
            }
            let status = if expected.is_empty() {
                PlanStatus::NoChanges
            } else {
                PlanStatus::Changes
            };
            assert_eq!(plan.clusters[0].status, status, "{label}");
            // Public access going off with no `private_access_principals`
            // is a warning (plan::access); nothing else is found.
            let codes: Vec<FindingCode> = plan.findings.iter().map(|f| f.code).collect();
            let warned = lockout.contains(&true);
            assert_eq!(
                codes,
                if warned {
                    vec![FindingCode::NoPrivateAccessPrincipals]
                } else {
                    vec![]
                },
                "{label}"
            );
        }
    }

    #[test]
    fn public_access_cidrs() {
        let x = &["203.0.113.0/24"][..];
        let zero = &["0.0.0.0/0"][..];
        // (live mode, live cidrs, desired mode, desired cidrs, expected afters)
        type Case<'a> = (
            EndpointAccess,
            &'a [&'a str],
            EndpointAccess,
            Option<&'a [&'a str]>,
            Vec<EndpointSettings>,
        );
        let cases: Vec<Case> = vec![
            // A CIDR-only change while public stays on: one call.
            (PUB, zero, PUB, Some(x), vec![ep(true, false, Some(x))]),
            (BOTH, zero, BOTH, Some(x), vec![ep(true, true, Some(x))]),
            // Same set, other order and host bits set: nothing to do.
            (
                PUB,
                &["10.0.0.0/8", "192.168.0.0/16"],
                PUB,
                Some(&["192.168.7.1/16", "10.1.2.3/8"]),
                vec![],
            ),
            // Unmanaged: never sent.
            (PUB, &["198.51.100.0/24"], PUB, None, vec![]),
            (PRIV, zero, BOTH, None, vec![ep(true, true, None)]),
            // Public off in the manifest: CIDRs ignored.
            (PRIV, zero, PRIV, Some(x), vec![]),
            (
                PUB,
                zero,
                PRIV,
                Some(x),
                vec![ep(true, true, None), ep(false, true, None)],
            ),
            // Public turned on: managed CIDRs sent even if EKS kept them.
            (
                PRIV,
                zero,
                BOTH,
                Some(zero),
                vec![ep(true, true, Some(zero))],
            ),
            (
                PRIV,
                zero,
                PUB,
                Some(x),
                vec![ep(true, true, Some(x)), ep(true, false, None)],
            ),
            // Flags and CIDRs in one call.
            (BOTH, zero, PUB, Some(x), vec![ep(true, false, Some(x))]),
            (PUB, zero, BOTH, Some(x), vec![ep(true, true, Some(x))]),
        ];
        for (i, (lm, lc, dm, dc, expected)) in cases.into_iter().enumerate() {
            let mut w = want("a", dm);
            w.endpoint.public_access_cidrs = dc.map(nets);
            let mut l = found("a", lm);
            l.endpoint.public_access_cidrs = Some(nets(lc));
            let (d, l) = one(w, l);
            let plan = plan(&d, &l);
            assert_eq!(afters(&plan), expected, "case {i}");
        }
    }

    #[test]
    fn cidr_step_shows_the_list_it_replaces() {
        let mut w = want("a", PUB);
        w.endpoint.public_access_cidrs = Some(nets(&["203.0.113.0/24", "10.0.0.0/8"]));
        let (d, l) = one(w, found("a", PUB));
        let plan = plan(&d, &l);
        let s = eks(&plan)[0];
        assert_eq!(
            s.before(),
            serde_json::json!({"public_access": true, "private_access": false, "public_access_cidrs": ["0.0.0.0/0"]})
        );
        assert_eq!(
            s.after(),
            serde_json::json!({"public_access": true, "private_access": false, "public_access_cidrs": ["10.0.0.0/8", "203.0.113.0/24"]})
        );
        assert_eq!(
            describe::step(s),
            "endpoint stays public only, public CIDRs [\"0.0.0.0/0\"] → [\"10.0.0.0/8\", \"203.0.113.0/24\"]"
        );
    }

    #[test]
    fn dns_settings_come_before_private_access() {
        // (dns_support, dns_hostnames, expected VPC step ids)
        let cases = [
            (false, true, vec!["eu-west-1/vpc-1/dns_support"]),
            (true, false, vec!["eu-west-1/vpc-1/dns_hostnames"]),
            (
                false,
                false,
                vec![
                    "eu-west-1/vpc-1/dns_support",
                    "eu-west-1/vpc-1/dns_hostnames",
                ],
            ),
            (true, true, vec![]),
        ];
        for (support, hostnames, expected) in cases {
            let (d, mut l) = one(want("a", BOTH), found("a", PUB));
            l.vpcs
                .insert(vpc_key("vpc-1"), vpc(support, hostnames, true));
            let plan = plan(&d, &l);
            let vpc_ids: Vec<&str> = plan
                .steps
                .iter()
                .filter(|s| s.vpc_id.is_some() && s.cluster.is_none())
                .map(|s| s.id.as_str())
                .collect();
            assert_eq!(vpc_ids, expected);
            let e = eks(&plan)[0];
            for id in &expected {
                assert!(e.depends_on.contains(&id.to_string()), "{id}");
            }
            if expected.len() == 2 {
                assert_eq!(
                    plan.step(expected[1]).unwrap().depends_on,
                    vec![expected[0].to_string()]
                );
            }
            if expected.is_empty() {
                continue;
            }
            let first = plan.steps.first().unwrap();
            assert_eq!(
                first.before(),
                serde_json::json!({ first.id.rsplit('/').next().unwrap(): false })
            );
            assert_eq!(
                first.fingerprint,
                fingerprint_of(&vpc(support, hostnames, true))
            );
        }
    }

    #[test]
    fn dns_is_repaired_when_private_is_already_on() {
        let (d, mut l) = one(want("a", BOTH), found("a", BOTH));
        l.vpcs.insert(vpc_key("vpc-1"), vpc(true, false, true));
        let plan = plan(&d, &l);
        assert_eq!(ids(&plan), vec!["eu-west-1/vpc-1/dns_hostnames"]);
        assert_eq!(plan.clusters[0].status, PlanStatus::Changes);
    }

    #[test]
    fn dns_is_not_touched_without_private_access() {
        let (d, mut l) = one(want("a", PUB), found("a", BOTH));
        l.vpcs.insert(vpc_key("vpc-1"), vpc(false, false, false));
        let plan = plan(&d, &l);
        assert_eq!(ids(&plan), vec!["eu-west-1/a/endpoint.1"]);
        assert!(plan.findings.is_empty());
    }

    #[test]
    fn a_shared_vpc_is_one_node_with_many_dependents() {
        let mut creating = found("d", PUB);
        creating.status = ClusterStatus::Creating;
        let (d, mut l) = world(vec![
            (want("a", BOTH), ClusterObservation::Found(found("a", PUB))),
            (want("b", PRIV), ClusterObservation::Found(found("b", PUB))),
            (want("c", BOTH), ClusterObservation::Found(found("c", PRIV))),
            (want("d", BOTH), ClusterObservation::Found(creating)),
        ]);
        l.vpcs.insert(vpc_key("vpc-1"), vpc(false, false, true));
        let plan = plan(&d, &l);
        let support = "eu-west-1/vpc-1/dns_support";
        assert_eq!(plan.steps.iter().filter(|s| s.id == support).count(), 1);
        let graph = plan.graph().unwrap();
        let dependents: Vec<&str> = graph
            .dependents("eu-west-1/vpc-1/dns_hostnames")
            .iter()
            .map(|i| plan.steps[*i].id.as_str())
            .collect();
        assert_eq!(
            dependents,
            vec![
                "eu-west-1/a/endpoint.1",
                "eu-west-1/b/endpoint.1",
                "eu-west-1/c/endpoint.1"
            ]
        );
        for c in ["a", "b", "c"] {
            let cp = plan.clusters.iter().find(|p| p.key.name == c).unwrap();
            assert!(cp.steps.contains(&support.to_string()), "{c}");
        }
        let d = plan.clusters.iter().find(|p| p.key.name == "d").unwrap();
        assert_eq!(d.status, PlanStatus::Blocked);
        assert!(d.steps.is_empty());
        assert!(plan
            .step(support)
            .unwrap()
            .reason
            .contains("`a`, `b` and `c`"));
    }

    #[test]
    fn a_shared_step_runs_in_the_lowest_wave_that_needs_it() {
        let mut a = want("a", BOTH);
        a.wave = 2;
        let mut b = want("b", BOTH);
        b.wave = 1;
        let (d, mut l) = world(vec![
            (a, ClusterObservation::Found(found("a", PUB))),
            (b, ClusterObservation::Found(found("b", PUB))),
        ]);
        l.vpcs.insert(vpc_key("vpc-1"), vpc(false, true, true));
        let plan = plan(&d, &l);
        let waves: Vec<(&str, u32)> = plan.steps.iter().map(|s| (s.id.as_str(), s.wave)).collect();
        // Sorted by wave; the shared VPC step goes with `b`, the lower wave.
        assert_eq!(
            waves,
            vec![
                ("eu-west-1/vpc-1/dns_support", 1),
                ("eu-west-1/b/endpoint.1", 1),
                ("eu-west-1/a/endpoint.1", 2),
            ]
        );
        let by_name: Vec<(&str, u32)> = plan
            .clusters
            .iter()
            .map(|c| (c.key.name.as_str(), c.wave))
            .collect();
        assert_eq!(by_name, vec![("a", 2), ("b", 1)]);
        // The plan's order is still one the graph accepts.
        let order: Vec<usize> = plan.graph().unwrap().order().to_vec();
        assert_eq!(order, vec![0, 1, 2]);
    }

    #[test]
    fn vpc_steps_only_for_clusters_that_are_not_blocked() {
        let mut failed = found("a", PUB);
        failed.status = ClusterStatus::Failed;
        let (d, mut l) = one(want("a", BOTH), failed);
        l.vpcs.insert(vpc_key("vpc-1"), vpc(false, false, true));
        let plan = plan(&d, &l);
        assert!(plan.steps.is_empty());
    }

    #[test]
    fn dhcp_options_without_amazon_dns_block_private_access() {
        let mut other = found("b", PUB);
        other.vpc_id = "vpc-2".into();
        let (d, mut l) = world(vec![
            (want("a", BOTH), ClusterObservation::Found(found("a", PUB))),
            (want("b", BOTH), ClusterObservation::Found(other)),
        ]);
        l.vpcs.insert(vpc_key("vpc-1"), vpc(false, true, false));
        l.vpcs.insert(vpc_key("vpc-2"), vpc(true, true, true));
        let plan = plan(&d, &l);
        assert_eq!(plan.findings.len(), 1);
        let f = &plan.findings[0];
        assert_eq!(f.cluster, key("a"));
        assert_eq!(
            f.message,
            "`eu-west-1/a` asks for private access, but the DHCP options `dopt-1` of VPC `vpc-1` do not list `AmazonProvidedDNS`"
        );
        let hint = f.hint.as_deref().unwrap();
        assert!(
            hint.contains("`AmazonProvidedDNS`")
                && hint.contains("`vpc-1`")
                && hint.contains("`dopt-1`")
        );
        assert_eq!(plan.clusters[0].status, PlanStatus::Blocked);
        // No DNS step for the blocked cluster's VPC; the other cluster goes on.
        assert_eq!(ids(&plan), vec!["eu-west-1/b/endpoint.1"]);
        // Public only does not care about DHCP.
        let (d, mut l) = one(want("a", PUB), found("a", BOTH));
        l.vpcs.insert(vpc_key("vpc-1"), vpc(true, true, false));
        assert!(super::plan(&d, &l).findings.is_empty());
    }

    #[test]
    fn clusters_that_cannot_be_changed_are_blocked() {
        let with_status = |s: ClusterStatus| {
            let mut c = found("a", PUB);
            c.status = s;
            ClusterObservation::Found(c)
        };
        let cases = [
            (ClusterObservation::NotFound, "cluster `a` not found in region `eu-west-1`"),
            (with_status(ClusterStatus::Creating), "cluster `eu-west-1/a` is `CREATING`; its endpoint cannot be changed now"),
            (with_status(ClusterStatus::Deleting), "cluster `eu-west-1/a` is `DELETING`; its endpoint cannot be changed now"),
            (with_status(ClusterStatus::Failed), "cluster `eu-west-1/a` is `FAILED`; its endpoint cannot be changed now"),
            (
                ClusterObservation::AccountMismatch {
                    expected: "111122223333".into(),
                    actual: "444455556666".into(),
                },
                "the credentials for `eu-west-1/a` resolve to account `444455556666`, but the manifest expects `111122223333`",
            ),
        ];
        for (obs, message) in cases {
            let (d, l) = world(vec![
                (want("a", BOTH), obs),
                (want("b", BOTH), ClusterObservation::Found(found("b", PUB))),
            ]);
            let plan = plan(&d, &l);
            assert_eq!(plan.findings.len(), 1, "{message}");
            assert_eq!(plan.findings[0].message, message);
            assert!(plan.findings[0].hint.is_some(), "{message}");
            assert_eq!(plan.clusters[0].status, PlanStatus::Blocked);
            assert!(plan.clusters[0].steps.is_empty());
            assert_eq!(ids(&plan), vec!["eu-west-1/b/endpoint.1"], "{message}");
        }
        let (d, l) = world(vec![(want("a", BOTH), ClusterObservation::NotFound)]);
        assert_eq!(
            plan(&d, &l).findings[0].hint.as_deref(),
            Some("check the region, the account the credentials resolve to and the cluster name (declared at prod.toml:3:1)")
        );
    }

    #[test]
    fn updates_in_progress_are_waited_for() {
        let mut l = found("a", PUB);
        l.updates_in_progress = vec!["u-1".into(), "u-2".into()];
        let (d, lv) = one(want("a", PRIV), l.clone());
        let plan = plan(&d, &lv);
        assert_eq!(
            ids(&plan),
            vec![
                "eu-west-1/a/wait.u-1",
                "eu-west-1/a/wait.u-2",
                "eu-west-1/a/endpoint.1",
                "eu-west-1/a/endpoint.2"
            ]
        );
        assert_eq!(
            plan.steps[2].depends_on,
            vec!["eu-west-1/a/wait.u-1", "eu-west-1/a/wait.u-2"]
        );
        assert_eq!(
            plan.steps[0].after(),
            serde_json::json!({"update_id": "u-1", "status": "Successful"})
        );
        assert_eq!(plan.steps[0].fingerprint, fingerprint_of(&l));

        // UPDATING with no update listed: wait for the cluster itself.
        let mut l = found("a", PUB);
        l.status = ClusterStatus::Updating;
        let (d, lv) = one(want("a", BOTH), l);
        assert_eq!(
            ids(&super::plan(&d, &lv)),
            vec!["eu-west-1/a/wait.updating", "eu-west-1/a/endpoint.1"]
        );

        // Nothing to change: no wait either.
        let mut l = found("a", PUB);
        l.updates_in_progress = vec!["u-1".into()];
        let (d, lv) = one(want("a", PUB), l);
        let p = super::plan(&d, &lv);
        assert!(p.steps.is_empty());
        assert_eq!(p.clusters[0].status, PlanStatus::NoChanges);
    }

    /// A group holding exact 443 rules from `exact`, wider rules from
    /// `wide`, and its own reference.
    fn owned_group(exact: &[&str], wide: &[&str]) -> LiveSecurityGroup {
        let mut g = LiveSecurityGroup {
            exact_https: srcs(exact),
            https_ingress: srcs(exact),
            ..LiveSecurityGroup::default()
        };
        g.https_ingress.extend(srcs(wide));
        g.https_ingress.insert(src("sg-c"));
        g.exact_https.insert(src("sg-c"));
        g
    }

    fn exclusive(mut d: DesiredCluster, from: &[&str]) -> DesiredCluster {
        d.private_access_from = srcs(from);
        d.private_access_from_exclusive = true;
        d
    }

    #[test]
    fn exclusive_revokes_only_undeclared_exact_443_rules_after_the_changes() {
        let (d, mut l) = one(
            exclusive(want("a", PRIV), &["10.1.0.0/16", "sg-bastion"]),
            found("a", BOTH),
        );
        l.security_groups.insert(
            sg_key("sg-c"),
            owned_group(&["10.1.0.0/16", "10.9.0.0/16", "sg-old"], &["10.8.0.0/16"]),
        );
        let p = super::plan(&d, &l);
        assert_eq!(
            ids(&p),
            vec![
                "eu-west-1/sg-c/https_ingress",
                "eu-west-1/a/endpoint.1",
                "eu-west-1/sg-c/https_revoke"
            ]
        );
        let revoke = p.step("eu-west-1/sg-c/https_revoke").unwrap();
        let Action::HttpsRevoke { revoke: gone, .. } = &revoke.action else {
            panic!("{revoke:?}")
        };
        // Not the wider rule's source, not the group itself, not declared.
        assert_eq!(gone, &srcs(&["10.9.0.0/16", "sg-old"]));
        assert_eq!(
            revoke.depends_on,
            vec!["eu-west-1/sg-c/https_ingress", "eu-west-1/a/endpoint.1"]
        );
        assert!(!revoke.lockout_risk);
        let after = p.clusters[0].after.as_ref().unwrap();
        assert_eq!(
            after.private_access_from,
            srcs(&["10.1.0.0/16", "10.8.0.0/16", "sg-bastion", "sg-c"])
        );

        // Without `exclusive`, nothing is revoked.
        let mut plain = d.clone();
        plain.clusters[0].private_access_from_exclusive = false;
        assert!(super::plan(&plain, &l)
            .step("eu-west-1/sg-c/https_revoke")
            .is_none());
    }

    #[test]
    fn revoking_the_last_443_source_of_a_private_only_cluster_is_a_lockout_risk() {
        // (wider rules, desired mode, lockout)
        let cases: [(&[&str], EndpointAccess, bool); 3] = [
            (&[], PRIV, true),
            (&["10.8.0.0/16"], PRIV, false),
            (&[], BOTH, false),
        ];
        for (wide, mode, lockout) in cases {
            let (d, mut l) = one(exclusive(want("a", mode), &[]), found("a", mode));
            l.security_groups
                .insert(sg_key("sg-c"), owned_group(&["10.9.0.0/16"], wide));
            let p = super::plan(&d, &l);
            let revoke = p.step("eu-west-1/sg-c/https_revoke").unwrap();
            assert_eq!(revoke.lockout_risk, lockout, "{wide:?} {mode:?}");
            assert!(revoke.depends_on.is_empty());
        }
    }

    #[test]
    fn a_shared_group_keeps_what_any_of_its_clusters_declares_and_waits_for_all() {
        let mut b = want("b", BOTH);
        b.wave = 1;
        b.private_access_from = srcs(&["10.2.0.0/16"]);
        let (d, mut l) = world(vec![
            (
                exclusive(want("a", PRIV), &["10.1.0.0/16"]),
                ClusterObservation::Found(found("a", BOTH)),
            ),
            (b, ClusterObservation::Found(found("b", PUB))),
        ]);
        l.security_groups.insert(
            sg_key("sg-c"),
            owned_group(&["10.1.0.0/16", "10.2.0.0/16", "10.9.0.0/16"], &[]),
        );
        let p = super::plan(&d, &l);
        let revoke = p.step("eu-west-1/sg-c/https_revoke").unwrap();
        let Action::HttpsRevoke { revoke: gone, .. } = &revoke.action else {
            panic!("{revoke:?}")
        };
        assert_eq!(gone, &srcs(&["10.9.0.0/16"]));
        assert_eq!(
            revoke.depends_on,
            vec!["eu-west-1/a/endpoint.1", "eu-west-1/b/endpoint.1"]
        );
        // It runs with the later wave, after everything it waits for.
        assert_eq!(revoke.wave, 1);
        assert_eq!(ids(&p).last(), Some(&"eu-west-1/sg-c/https_revoke"));
        p.graph().unwrap();
    }

    /// A group read under another account's key than the cluster's is
    /// found by its region and id: its sources count, and only the first
    /// such group in the map's order does.
    #[test]
    fn a_group_read_under_another_accounts_key_is_found_by_its_id() {
        let mut w = want("a", PRIV);
        w.private_access_from = srcs(&["10.20.0.0/16", "10.30.0.0/16"]);
        let (d, mut l) = one(w, found("a", BOTH));
        l.security_groups.remove(&sg_key("sg-c"));
        let under = |account: &str, have: &[&str]| {
            (
                SecurityGroupKey {
                    account: Some(account.into()),
                    ..sg_key("sg-c")
                },
                LiveSecurityGroup {
                    https_ingress: srcs(have),
                    ..LiveSecurityGroup::default()
                },
            )
        };
        l.security_groups.extend([
            under("111122223333", &["10.20.0.0/16"]),
            under("444455556666", &["10.30.0.0/16"]),
            (
                SecurityGroupKey {
                    region: "eu-west-2".into(),
                    ..sg_key("sg-c")
                },
                LiveSecurityGroup {
                    https_ingress: srcs(&["10.30.0.0/16"]),
                    ..LiveSecurityGroup::default()
                },
            ),
        ]);
        let plan = plan(&d, &l);
        assert!(
            plan.findings.iter().all(|f| !f.blocks()),
            "{:?}",
            plan.findings
        );
        let sg = plan.step("eu-west-1/sg-c/https_ingress").unwrap();
        assert_eq!(
            sg.after_as::<HttpsSources>().unwrap(),
            HttpsSources {
                cidrs: vec!["10.30.0.0/16".into()],
                security_groups: vec![],
            }
        );
    }

    #[test]
    fn security_group_ingress_adds_only_missing_sources() {
        // (already allowed, wanted, expected after)
        let cases: [(&[&str], &[&str], Option<HttpsSources>); 3] = [
            (
                &[],
                &["10.20.0.0/16", "sg-bastion"],
                Some(HttpsSources {
                    cidrs: vec!["10.20.0.0/16".into()],
                    security_groups: vec!["sg-bastion".into()],
                }),
            ),
            (
                &["sg-bastion", "192.168.0.0/16"],
                &["10.20.0.0/16", "sg-bastion"],
                Some(HttpsSources {
                    cidrs: vec!["10.20.0.0/16".into()],
                    security_groups: vec![],
                }),
            ),
            (
                &["10.20.0.0/16", "sg-bastion"],
                &["10.20.0.0/16", "sg-bastion"],
                None,
            ),
        ];
        for (have, wanted, expected) in cases {
            let mut w = want("a", PRIV);
            w.private_access_from = srcs(wanted);
            let (d, mut l) = one(w, found("a", BOTH));
            l.security_groups.insert(
                sg_key("sg-c"),
                LiveSecurityGroup {
                    https_ingress: srcs(have),
                    ..LiveSecurityGroup::default()
                },
            );
            let plan = plan(&d, &l);
            let sg = plan.step("eu-west-1/sg-c/https_ingress");
            assert_eq!(sg.map(|s| s.after_as::<HttpsSources>().unwrap()), expected);
            let off = eks(&plan)[0];
            assert_eq!(
                off.after_as::<EndpointSettings>().unwrap(),
                ep(false, true, None)
            );
            assert_eq!(
                off.depends_on
                    .contains(&"eu-west-1/sg-c/https_ingress".to_string()),
                sg.is_some()
            );
            assert!(!off.lockout_risk);
        }
    }

    #[test]
    fn a_shared_security_group_is_one_step_with_every_missing_source() {
        let mut a = want("a", BOTH);
        a.private_access_from = srcs(&["10.1.0.0/16"]);
        let mut b = want("b", PRIV);
        b.private_access_from = srcs(&["10.2.0.0/16", "10.1.0.0/16"]);
        let (d, l) = world(vec![
            (a, ClusterObservation::Found(found("a", PUB))),
            (b, ClusterObservation::Found(found("b", BOTH))),
        ]);
        let plan = plan(&d, &l);
        let sg: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|s| s.kind() == StepKind::SgHttpsIngress)
            .collect();
        assert_eq!(sg.len(), 1);
        assert_eq!(
            sg[0].after_as::<HttpsSources>().unwrap().cidrs,
            vec!["10.1.0.0/16", "10.2.0.0/16"]
        );
        // Only the step that turns public off waits for the ingress.
        assert!(!plan
            .step("eu-west-1/a/endpoint.1")
            .unwrap()
            .depends_on
            .contains(&sg[0].id));
        assert!(plan
            .step("eu-west-1/b/endpoint.1")
            .unwrap()
            .depends_on
            .contains(&sg[0].id));
    }

    #[test]
    fn a_security_group_past_its_rule_quota_blocks_only_its_clusters() {
        let mut a = want("a", PRIV);
        a.private_access_from = srcs(&["10.1.0.0/16", "sg-bastion"]);
        let mut b = want("b", PRIV);
        b.private_access_from = srcs(&["10.2.0.0/16"]);
        let mut lb = found("b", BOTH);
        lb.security_group_id = Some("sg-d".into());
        let (d, mut l) = world(vec![
            (a, ClusterObservation::Found(found("a", BOTH))),
            (b, ClusterObservation::Found(lb)),
        ]);
        let group = |ipv4, ipv6, quota| LiveSecurityGroup {
            inbound_rules: Some(crate::live::RuleCount { ipv4, ipv6 }),
            rule_quota: quota,
            ..LiveSecurityGroup::default()
        };
        // 59 + 2 IPv4 rules (a group reference counts in both families).
        l.security_groups.insert(sg_key("sg-c"), group(59, 0, None));
        l.security_groups.insert(sg_key("sg-d"), group(10, 0, None));
        let p = plan(&d, &l);
        assert_eq!(p.clusters[0].status, PlanStatus::Blocked);
        assert_eq!(p.clusters[1].status, PlanStatus::Changes);
        let blocking: Vec<&Finding> = p.blocking().collect();
        assert_eq!(blocking.len(), 1);
        assert_eq!(
            blocking[0].message,
            "`eu-west-1/a` needs TCP 443 rules, but security group `sg-c` holds 59 inbound IPv4 rules and the plan would add 2, past its quota of 60: AWS would refuse them with `RulesPerSecurityGroupLimitExceeded`"
        );
        assert!(blocking[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("`--sg-rule-quota N`"));
        assert!(p.step("eu-west-1/sg-c/https_ingress").is_none());
        assert!(p.step("eu-west-1/sg-d/https_ingress").is_some());

        // Exactly at the quota is allowed; a raised quota lets it through.
        l.security_groups.insert(sg_key("sg-c"), group(58, 0, None));
        assert_eq!(plan(&d, &l).clusters[0].status, PlanStatus::Changes);
        l.security_groups
            .insert(sg_key("sg-c"), group(59, 0, Some(100)));
        assert_eq!(plan(&d, &l).clusters[0].status, PlanStatus::Changes);
        // IPv6 is counted apart: a full IPv6 side does not stop IPv4 rules.
        let mut c = want("c", PRIV);
        c.private_access_from = srcs(&["10.3.0.0/16"]);
        let (d, mut l) = one(c, found("c", BOTH));
        l.security_groups.insert(sg_key("sg-c"), group(3, 60, None));
        assert_eq!(plan(&d, &l).clusters[0].status, PlanStatus::Changes);
    }

    #[test]
    fn private_access_from_without_a_cluster_security_group_is_a_finding() {
        let mut w = want("a", PRIV);
        w.private_access_from = srcs(&["10.0.0.0/8"]);
        let mut l = found("a", BOTH);
        l.security_group_id = None;
        let (d, l) = one(w, l);
        let plan = plan(&d, &l);
        assert_eq!(
            plan.findings[0].message,
            "`eu-west-1/a` declares `private_access_from`, but the cluster has no cluster security group"
        );
        assert!(plan.steps.is_empty());
    }

    #[test]
    fn turning_public_off_without_declared_clients_is_a_lockout_risk() {
        let (d, l) = one(want("a", PRIV), found("a", PUB));
        let risky: Vec<bool> = eks(&plan(&d, &l)).iter().map(|s| s.lockout_risk).collect();
        assert_eq!(risky, vec![false, true]);
        let mut w = want("a", PRIV);
        w.private_access_from = srcs(&["sg-bastion"]);
        let (d, l) = one(w, found("a", PUB));
        assert!(eks(&plan(&d, &l)).iter().all(|s| !s.lockout_risk));
    }

    #[test]
    fn summary_counts_and_plurals() {
        let (d, l) = one(want("a", PUB), found("a", PUB));
        assert_eq!(
            describe::summary(&plan(&d, &l).summary()),
            "No changes: 1 cluster matches its manifest"
        );
        let (d, l) = world(vec![
            (want("a", PUB), ClusterObservation::Found(found("a", PUB))),
            (want("b", BOTH), ClusterObservation::Found(found("b", BOTH))),
        ]);
        assert_eq!(
            describe::summary(&plan(&d, &l).summary()),
            "No changes: 2 clusters match their manifests"
        );
        let (d, mut l) = world(vec![
            (want("a", PRIV), ClusterObservation::Found(found("a", PUB))),
            (want("b", BOTH), ClusterObservation::Found(found("b", PUB))),
            (want("c", BOTH), ClusterObservation::NotFound),
        ]);
        l.vpcs.insert(vpc_key("vpc-1"), vpc(true, false, true));
        let s = plan(&d, &l).summary();
        assert_eq!(
            describe::summary(&s),
            "Plan: 4 steps on 2 clusters, 1 VPC change; 1 cluster blocked"
        );
        assert_eq!((s.endpoint_updates, s.lockout_risks), (3, 1));
        let (d, l) = world(vec![(want("c", BOTH), ClusterObservation::NotFound)]);
        assert_eq!(
            describe::summary(&plan(&d, &l).summary()),
            "No steps: 1 cluster blocked"
        );
    }

    #[test]
    fn a_plan_survives_a_json_round_trip() {
        let mut w = want("a", PRIV);
        w.private_access_from = srcs(&["sg-bastion"]);
        let (d, mut l) = one(w, found("a", PUB));
        l.vpcs.insert(vpc_key("vpc-1"), vpc(false, false, true));
        let p = plan(&d, &l);
        let back: Plan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert_eq!(p.manifest_digest, "digest");
        let kinds: Vec<&str> = p.steps.iter().map(|s| s.kind().as_str()).collect();
        assert_eq!(
            kinds,
            vec![
                "vpc_dns_support",
                "vpc_dns_hostnames",
                "sg_https_ingress",
                "eks_endpoint",
                "eks_endpoint"
            ]
        );
        assert_eq!(
            serde_json::to_value(StepKind::SgHttpsIngress).unwrap(),
            "sg_https_ingress"
        );
    }

    #[test]
    fn account_pinned_ids_carry_the_account() {
        let mut w = want("a", BOTH);
        w.key.account = Some("111122223333".into());
        let mut c = found("a", PUB);
        c.key = w.key.clone();
        let (d, mut l) = world(vec![(w, ClusterObservation::Found(c))]);
        // The provider may key the VPC without the account: found anyway.
        l.vpcs.insert(vpc_key("vpc-1"), vpc(false, true, true));
        assert_eq!(
            ids(&plan(&d, &l)),
            vec![
                "111122223333/eu-west-1/vpc-1/dns_support",
                "111122223333/eu-west-1/a/endpoint.1"
            ]
        );
    }

    // ---- property test -----------------------------------------------------

    const CIDR_POOL: [&str; 4] = ["0.0.0.0/0", "10.0.0.0/8", "192.0.2.0/24", "203.0.113.0/24"];
    const SOURCE_POOL: [&str; 4] = ["10.0.0.0/8", "172.16.0.0/12", "sg-a", "sg-b"];

    fn arb_mode() -> impl Strategy<Value = EndpointAccess> {
        prop_oneof![Just(PUB), Just(BOTH), Just(PRIV)]
    }

    fn arb_cidrs() -> impl Strategy<Value = BTreeSet<IpNet>> {
        proptest::sample::subsequence(CIDR_POOL.to_vec(), 0..=3)
            .prop_map(|v| v.iter().map(|s| net(s)).collect())
    }

    fn arb_sources() -> impl Strategy<Value = SortedSet<AccessSource>> {
        proptest::sample::subsequence(SOURCE_POOL.to_vec(), 0..=4).prop_map(|v| srcs(&v))
    }

    #[derive(Clone, Debug)]
    struct Case {
        want: EndpointAccess,
        want_cidrs: Option<BTreeSet<IpNet>>,
        from: SortedSet<AccessSource>,
        live: EndpointAccess,
        live_cidrs: BTreeSet<IpNet>,
        vpc: usize,
        sg: Option<usize>,
        /// 0 not found, 1 wrong account, 2 creating, 3 updating, else active.
        state: u8,
        updates: usize,
    }

    fn arb_case() -> impl Strategy<Value = Case> {
        (
            (arb_mode(), proptest::option::of(arb_cidrs()), arb_sources()),
            (arb_mode(), arb_cidrs()),
            (
                0..2usize,
                proptest::option::weighted(0.9, 0..2usize),
                0..12u8,
                0..3usize,
            ),
        )
            .prop_map(
                |((want, want_cidrs, from), (live, live_cidrs), (vpc, sg, state, updates))| Case {
                    want,
                    want_cidrs,
                    from,
                    live,
                    live_cidrs,
                    vpc,
                    sg,
                    state,
                    updates,
                },
            )
    }

    fn build(
        cases: &[Case],
        vpcs: &[(bool, bool, bool)],
        sgs: &[SortedSet<AccessSource>],
    ) -> (Desired, Live) {
        let mut pairs = Vec::new();
        for (i, c) in cases.iter().enumerate() {
            let name = format!("c{i}");
            let mut w = want(&name, c.want);
            w.endpoint.public_access_cidrs = c.want_cidrs.clone().map(to_cidrs);
            w.private_access_from = c.from.clone();
            let mut l = found(&name, c.live);
            l.endpoint.public_access_cidrs = Some(to_cidrs(c.live_cidrs.clone()));
            l.vpc_id = format!("vpc-{}", c.vpc);
            l.security_group_id = c.sg.map(|g| format!("sg-c{g}"));
            l.updates_in_progress = (0..c.updates).map(|k| format!("u-{i}-{k}")).collect();
            let obs = match c.state {
                0 => ClusterObservation::NotFound,
                1 => ClusterObservation::AccountMismatch {
                    expected: "1".into(),
                    actual: "2".into(),
                },
                2 => {
                    l.status = ClusterStatus::Creating;
                    ClusterObservation::Found(l)
                }
                3 => {
                    l.status = ClusterStatus::Updating;
                    ClusterObservation::Found(l)
                }
                _ => ClusterObservation::Found(l),
            };
            pairs.push((w, obs));
        }
        let (d, mut l) = world(pairs);
        l.vpcs.clear();
        l.security_groups.clear();
        for (i, (s, h, a)) in vpcs.iter().enumerate() {
            l.vpcs.insert(vpc_key(&format!("vpc-{i}")), vpc(*s, *h, *a));
        }
        for (i, g) in sgs.iter().enumerate() {
            l.security_groups.insert(
                sg_key(&format!("sg-c{i}")),
                LiveSecurityGroup {
                    https_ingress: g.clone(),
                    ..LiveSecurityGroup::default()
                },
            );
        }
        (d, l)
    }

    fn check(d: &Desired, l: &Live, p: &Plan) -> Result<(), TestCaseError> {
        let graph = p
            .graph()
            .map_err(|e| TestCaseError::fail(format!("not a DAG: {e}")))?;
        for s in &p.steps {
            prop_assert_ne!(&s.before(), &s.after(), "no-op step {}", s.id);
            if s.kind() == StepKind::EksEndpoint {
                let a: EndpointSettings = s.after_as().unwrap();
                let b: EndpointSettings = s.before_as().unwrap();
                prop_assert!(a.public_access || a.private_access, "both off: {}", s.id);
                // Public goes off only from a state where private is on,
                // and the other way round.
                if b.public_access && !a.public_access {
                    prop_assert!(b.private_access, "{}", s.id);
                }
                if b.private_access && !a.private_access {
                    prop_assert!(b.public_access, "{}", s.id);
                }
            }
        }
        let ancestors = |id: &str| -> Vec<&str> {
            graph
                .ancestors(id)
                .iter()
                .map(|i| p.steps[*i].id.as_str())
                .collect()
        };
        for w in &d.clusters {
            let cp = p.clusters.iter().find(|c| c.key == w.key).unwrap();
            let mine: Vec<&Step> = p
                .ordered_steps()
                .into_iter()
                .filter(|s| s.cluster.as_deref() == Some(w.key.name.as_str()))
                .collect();
            let blocked = p.blocking().any(|f| f.cluster == w.key);
            prop_assert_eq!(blocked, cp.status == PlanStatus::Blocked);
            if blocked {
                prop_assert!(mine.is_empty() && cp.steps.is_empty());
                continue;
            }
            let ClusterObservation::Found(live) = &l.clusters[&w.key] else {
                unreachable!("unblocked clusters were found");
            };
            // Replay the endpoint calls from the live state.
            let mut cur = mode_of(&live.endpoint);
            let live_cidrs = live
                .endpoint
                .public_access_cidrs
                .clone()
                .unwrap_or_default();
            let mut cidrs = cidr_strings(&live_cidrs);
            let endpoint: Vec<&&Step> = mine
                .iter()
                .filter(|s| s.kind() == StepKind::EksEndpoint)
                .collect();
            for s in &endpoint {
                let b: EndpointSettings = s.before_as().unwrap();
                let a: EndpointSettings = s.after_as().unwrap();
                prop_assert_eq!(
                    (b.public_access, b.private_access),
                    (cur.public, cur.private)
                );
                if let Some(bc) = &b.public_access_cidrs {
                    prop_assert_eq!(bc, &cidrs);
                }
                cur = EndpointAccess {
                    public: a.public_access,
                    private: a.private_access,
                };
                if let Some(ac) = a.public_access_cidrs {
                    cidrs = ac;
                }
            }
            prop_assert_eq!(cur, mode_of(&w.endpoint));
            match (&w.endpoint.public_access_cidrs, w.endpoint.public_access) {
                (Some(c), true) => prop_assert_eq!(&cidrs, &cidr_strings(c)),
                _ => prop_assert_eq!(&cidrs, &cidr_strings(&live_cidrs)),
            }
            // Waits only in front of endpoint calls.
            if endpoint.is_empty() {
                prop_assert!(mine.is_empty());
            }
            if w.endpoint.private_access {
                let vk = vpc_key(&live.vpc_id);
                let v = &l.vpcs[&vk];
                let vpc_steps: Vec<&Step> = p
                    .steps
                    .iter()
                    .filter(|s| s.cluster.is_none() && s.vpc_id.as_deref() == Some(&live.vpc_id))
                    .collect();
                // DNS ends up on, support before hostnames before any call.
                prop_assert_eq!(
                    !v.dns_support,
                    vpc_steps
                        .iter()
                        .any(|s| s.kind() == StepKind::VpcDnsSupport)
                );
                prop_assert_eq!(
                    !v.dns_hostnames,
                    vpc_steps
                        .iter()
                        .any(|s| s.kind() == StepKind::VpcDnsHostnames)
                );
                if vpc_steps.len() == 2 {
                    prop_assert_eq!(
                        &ancestors(&vpc_steps[1].id),
                        &vec![vpc_steps[0].id.as_str()]
                    );
                }
                for e in &endpoint {
                    let anc = ancestors(&e.id);
                    for v in &vpc_steps {
                        prop_assert!(anc.contains(&v.id.as_str()), "{} before {}", v.id, e.id);
                    }
                }
                // Declared clients can reach 443 before public goes off.
                if let Some(sg) = &live.security_group_id {
                    let have = &l.security_groups[&sg_key(sg)].https_ingress;
                    let missing: Vec<&AccessSource> =
                        w.private_access_from.difference(have).collect();
                    let sg_step = p.steps.iter().find(|s| {
                        s.security_group_id.as_deref() == Some(sg)
                            && s.kind() == StepKind::SgHttpsIngress
                    });
                    // A shared group may have a step for another cluster.
                    prop_assert!(missing.is_empty() || sg_step.is_some());
                    if let (false, Some(sg_step)) = (missing.is_empty(), sg_step) {
                        let add: HttpsSources = sg_step.after_as().unwrap();
                        for m in &missing {
                            let listed = match m {
                                AccessSource::Cidr(n) => add.cidrs.contains(&n.to_string()),
                                AccessSource::SecurityGroup(g) => add.security_groups.contains(g),
                                // Not generated by these cases.
                                AccessSource::PrefixList(_) => false,
                            };
                            prop_assert!(listed, "{} not added", m);
                        }
                        let before: HttpsSources = sg_step.before_as().unwrap();
                        prop_assert!(add.cidrs.iter().all(|c| !before.cidrs.contains(c)));
                        prop_assert!(add
                            .security_groups
                            .iter()
                            .all(|c| !before.security_groups.contains(c)));
                        for e in &endpoint {
                            let b: EndpointSettings = e.before_as().unwrap();
                            let a: EndpointSettings = e.after_as().unwrap();
                            if b.public_access && !a.public_access {
                                prop_assert!(ancestors(&e.id).contains(&sg_step.id.as_str()));
                            }
                        }
                    }
                }
            }
            for e in &endpoint {
                let b: EndpointSettings = e.before_as().unwrap();
                let a: EndpointSettings = e.after_as().unwrap();
                let off = b.public_access && !a.public_access;
                prop_assert_eq!(e.lockout_risk, off && w.private_access_from.is_empty());
            }
            prop_assert_eq!(cp.status == PlanStatus::NoChanges, cp.steps.is_empty());
        }
        Ok(())
    }

    /// What revocations may and must do, whatever the fleet: only exact 443
    /// rules of a group some planned cluster owns, never a source any
    /// cluster of the group declares nor the group itself, after the group's
    /// add and every endpoint change of its planned clusters, in a
    /// topological order, a lockout risk exactly when a private-only cluster
    /// keeps no source.
    fn check_revocations(d: &Desired, l: &Live, p: &Plan) -> Result<(), TestCaseError> {
        let pos: BTreeMap<&str, usize> = p
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        for s in &p.steps {
            for dep in &s.depends_on {
                prop_assert!(
                    pos[dep.as_str()] < pos[s.id.as_str()],
                    "{} before {}",
                    dep,
                    s.id
                );
                let dw = p.step(dep).map(|x| x.wave).unwrap_or(0);
                prop_assert!(
                    dw <= s.wave,
                    "{} (wave {}) waits for {} (wave {})",
                    s.id,
                    s.wave,
                    dep,
                    dw
                );
            }
        }
        let blocked: BTreeSet<&ClusterKey> = p.blocking().map(|f| &f.cluster).collect();
        let mut users: BTreeMap<String, Vec<(&DesiredCluster, &LiveCluster)>> = BTreeMap::new();
        for w in &d.clusters {
            if let Some(ClusterObservation::Found(c)) = l.clusters.get(&w.key) {
                if let Some(g) = &c.security_group_id {
                    users.entry(g.clone()).or_default().push((w, c));
                }
            }
        }
        for (group, us) in &users {
            let Some(g) = l.security_groups.get(&sg_key(group)) else {
                continue;
            };
            let id = format!("eu-west-1/{group}/https_revoke");
            let step = p.step(&id);
            let owners = us.iter().any(|(w, _)| {
                w.private_access_from_exclusive
                    && w.endpoint.private_access
                    && !blocked.contains(&w.key)
            });
            let declared: BTreeSet<&AccessSource> = us
                .iter()
                .flat_map(|(w, _)| w.private_access_from.iter())
                .collect();
            let own = AccessSource::SecurityGroup(group.clone());
            let due: BTreeSet<&AccessSource> = g
                .exact_https
                .iter()
                .filter(|x| **x != own && !declared.contains(x))
                .collect();
            prop_assert_eq!(step.is_some(), owners && !due.is_empty(), "{}", id);
            let Some(step) = step else { continue };
            let Action::HttpsRevoke { revoke, .. } = &step.action else {
                return Err(TestCaseError::fail(format!("{id} is not a revocation")));
            };
            prop_assert_eq!(revoke.iter().collect::<BTreeSet<_>>(), due);
            let add = format!("eu-west-1/{group}/https_ingress");
            if p.step(&add).is_some() {
                prop_assert!(step.depends_on.contains(&add), "{} waits for {}", id, add);
            }
            let mut left: BTreeSet<&AccessSource> = g.https_ingress.iter().collect();
            if let Some(Action::HttpsIngress { add, .. }) = p.step(&add).map(|s| &s.action) {
                left.extend(add.iter());
            }
            left.retain(|x| **x != own && !revoke.contains(*x));
            let mut private_only = false;
            for (w, _) in us.iter().filter(|(w, _)| !blocked.contains(&w.key)) {
                private_only |= w.endpoint.mode() == (false, true);
                let cp = p.clusters.iter().find(|c| c.key == w.key).unwrap();
                for e in cp.steps.iter().filter(|x| x.contains("/endpoint.")) {
                    prop_assert!(
                        step.depends_on.contains(e)
                            || p.step(e).is_some_and(|x| {
                                // An earlier stage of a staged move: the last one
                                // is waited for, and it waits for this one.
                                cp.steps.iter().any(|later| {
                                    later != e
                                        && later.contains("/endpoint.")
                                        && step.depends_on.contains(later)
                                        && p.step(later)
                                            .is_some_and(|l| l.depends_on.contains(&x.id))
                                })
                            }),
                        "{} does not wait for {}",
                        id,
                        e
                    );
                }
            }
            prop_assert_eq!(step.lockout_risk, left.is_empty() && private_only, "{}", id);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn revocations_touch_only_undeclared_exact_443_rules_after_every_change(
            cases in proptest::collection::vec(arb_case(), 1..5),
            exclusive in proptest::collection::vec(any::<bool>(), 5),
            waves in proptest::collection::vec(0..3u32, 5),
            vpcs in proptest::collection::vec((any::<bool>(), any::<bool>(), proptest::bool::weighted(0.85)), 2),
            sgs in proptest::collection::vec((arb_sources(), any::<u8>(), any::<bool>()), 2),
        ) {
            let groups: Vec<SortedSet<AccessSource>> = sgs.iter().map(|g| g.0.clone()).collect();
            let (mut d, mut l) = build(&cases, &vpcs, &groups);
            for (i, c) in d.clusters.iter_mut().enumerate() {
                c.private_access_from_exclusive = exclusive[i];
                c.wave = waves[i];
            }
            for (i, (sources, mask, own)) in sgs.iter().enumerate() {
                let g = l.security_groups.get_mut(&sg_key(&format!("sg-c{i}"))).unwrap();
                // Some sources by an exact rule, the others by wider ones;
                // maybe the group's own reference on 443 too.
                g.exact_https = sources
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| mask & (1 << k) != 0)
                    .map(|(_, x)| x.clone())
                    .collect();
                if *own {
                    let me = AccessSource::SecurityGroup(format!("sg-c{i}"));
                    g.exact_https.insert(me.clone());
                    g.https_ingress.insert(me);
                }
            }
            let p = plan(&d, &l);
            p.graph().map_err(|e| TestCaseError::fail(format!("not a DAG: {e}")))?;
            check_revocations(&d, &l, &p)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn plans_are_safe_and_converge(
            cases in proptest::collection::vec(arb_case(), 1..5),
            vpcs in proptest::collection::vec((any::<bool>(), any::<bool>(), proptest::bool::weighted(0.85)), 2),
            sgs in proptest::collection::vec(arb_sources(), 2),
        ) {
            let (d, l) = build(&cases, &vpcs, &sgs);
            let p = plan(&d, &l);
            check(&d, &l, &p)?;
        }
    }
}
