//! The planner: a pure function from the desired state (manifests) and the
//! live state (AWS) to a [`Plan`], the steps that converge one to the other
//! with the reason for every edge between them (DESIGN.md section 2).
//!
//! A plan is plain serde data so it can be saved, reviewed and applied later;
//! apply rebuilds the DAG from `depends_on` through [`Plan::graph`]. This
//! module must not do I/O, print, or decide how a plan looks: views render it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::desired::{AccessSource, ClusterKey, Desired, DesiredCluster, EndpointAccess};
use crate::graph::{GraphError, StepGraph};
use crate::live::{
    ClusterObservation, ClusterStatus, Live, LiveCluster, LiveSecurityGroup, LiveVpc,
    SecurityGroupKey, VpcKey,
};

/// Bumped when a saved plan of an older version can no longer be applied.
pub const FORMAT_VERSION: u32 = 1;

/// Everything `plan` decided. Serialisable; nothing here refers to memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    /// `Desired::digest` of the manifests this plan was made from.
    pub manifest_digest: String,
    /// In a topological order (shared VPC and security-group steps come
    /// before the first cluster that needs them).
    pub steps: Vec<Step>,
    /// One per declared cluster, sorted by region, name and account.
    pub clusters: Vec<ClusterPlan>,
    /// Problems that block a cluster. Blocked clusters get no steps.
    pub findings: Vec<Finding>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// `ModifyVpcAttribute` `enableDnsSupport`.
    VpcDnsSupport,
    /// `ModifyVpcAttribute` `enableDnsHostnames`.
    VpcDnsHostnames,
    /// `AuthorizeSecurityGroupIngress` on TCP 443 for the missing sources.
    SgHttpsIngress,
    /// Exactly one `UpdateClusterConfig` call, then a wait until `Successful`.
    EksEndpoint,
    /// An update already `InProgress` in AWS, waited on by id.
    WaitUpdate,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::VpcDnsSupport => "vpc_dns_support",
            StepKind::VpcDnsHostnames => "vpc_dns_hostnames",
            StepKind::SgHttpsIngress => "sg_https_ingress",
            StepKind::EksEndpoint => "eks_endpoint",
            StepKind::WaitUpdate => "wait_update",
        }
    }
}

/// One call (or one wait) against AWS.
///
/// `before` and `after` depend on `kind`:
/// - `vpc_dns_support` / `vpc_dns_hostnames`: `{"dns_support": false}` →
///   `{"dns_support": true}` (or `dns_hostnames`);
/// - `sg_https_ingress`: [`HttpsSources`], before the sources already let in
///   on 443, after only the ones this step adds;
/// - `eks_endpoint`: [`EndpointSettings`], both with the same keys;
/// - `wait_update`: [`UpdateWait`], `InProgress` → `Successful`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Stable and readable: `[ACCOUNT/]REGION/THING/WHAT`.
    pub id: String,
    pub kind: StepKind,
    pub account: Option<String>,
    pub region: String,
    /// The cluster, for `eks_endpoint` and `wait_update` steps.
    pub cluster: Option<String>,
    pub vpc_id: Option<String>,
    pub security_group_id: Option<String>,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    pub depends_on: Vec<String>,
    /// Why the step is needed and why it waits for its dependencies.
    pub reason: String,
    /// Turns public access off while the manifest declares no
    /// `private_access_from`: apply refuses it without `--allow-lockout`.
    pub lockout_risk: bool,
    /// The role apply assumes for the step: its cluster's `role_arn`, or
    /// for a VPC or security-group step shared by clusters the role of the
    /// first of them in plan order. `None`: the base credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// [`fingerprint_of`] the live facts the step was planned on. They are the
    /// facts before *any* step ran, so compare them before applying, not
    /// between steps (a wait or an earlier step legitimately changes them).
    pub fingerprint: String,
    /// The rollout wave the step runs in: its cluster's `wave`, or for a VPC
    /// or security-group step shared by clusters of several waves the lowest
    /// of them, so it runs before the first cluster that needs it. Plans
    /// saved before waves existed read as wave 0.
    #[serde(default)]
    pub wave: u32,
}

/// `before` / `after` of an `eks_endpoint` step: the body of one
/// `UpdateClusterConfig` call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSettings {
    pub public_access: bool,
    pub private_access: bool,
    /// Present only when the call sends CIDRs (sorted, normalised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_access_cidrs: Option<Vec<String>>,
}

/// `before` / `after` of a `sg_https_ingress` step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpsSources {
    pub cidrs: Vec<String>,
    pub security_groups: Vec<String>,
}

/// `before` / `after` of a `wait_update` step. `update_id` is `None` when the
/// cluster said `UPDATING` but listed no update: wait until it is `ACTIVE`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateWait {
    pub update_id: Option<String>,
    pub status: String,
}

impl Step {
    /// `before`/`after` read back as a typed value, e.g. [`EndpointSettings`].
    pub fn before_as<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_value(self.before.clone()).ok()
    }

    pub fn after_as<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_value(self.after.clone()).ok()
    }

    /// What the step does, in a few words, for views and progress lines.
    pub fn describe(&self) -> String {
        let vpc = self.vpc_id.as_deref().unwrap_or("?");
        match self.kind {
            StepKind::VpcDnsSupport => format!("enable `enableDnsSupport` on `{vpc}`"),
            StepKind::VpcDnsHostnames => format!("enable `enableDnsHostnames` on `{vpc}`"),
            StepKind::SgHttpsIngress => {
                let add = self.after_as::<HttpsSources>().unwrap_or_default();
                let sources: Vec<String> = add
                    .security_groups
                    .iter()
                    .chain(&add.cidrs)
                    .map(|s| format!("`{s}`"))
                    .collect();
                format!(
                    "allow TCP 443 into `{}` from {}",
                    self.security_group_id.as_deref().unwrap_or("?"),
                    sources.join(", ")
                )
            }
            StepKind::EksEndpoint => {
                match (
                    self.before_as::<EndpointSettings>(),
                    self.after_as::<EndpointSettings>(),
                ) {
                    (Some(b), Some(a)) => {
                        let mut s = if (b.public_access, b.private_access)
                            == (a.public_access, a.private_access)
                        {
                            format!(
                                "endpoint stays {}",
                                mode_name(a.public_access, a.private_access)
                            )
                        } else {
                            format!(
                                "endpoint {} → {}",
                                mode_name(b.public_access, b.private_access),
                                mode_name(a.public_access, a.private_access)
                            )
                        };
                        if let Some(after) = &a.public_access_cidrs {
                            let before = b.public_access_cidrs.unwrap_or_default();
                            let _ = write!(
                                s,
                                ", public CIDRs {} → {}",
                                string_list(&before),
                                string_list(after)
                            );
                        }
                        s
                    }
                    _ => "update the endpoint".to_string(),
                }
            }
            StepKind::WaitUpdate => {
                match self.before_as::<UpdateWait>().and_then(|w| w.update_id) {
                    Some(id) => format!("wait for update `{id}` to finish"),
                    None => "wait for the cluster to leave `UPDATING`".to_string(),
                }
            }
        }
    }
}

/// `public only`, `public and private`, `private only`.
pub fn mode_name(public: bool, private: bool) -> &'static str {
    match (public, private) {
        (true, false) => "public only",
        (true, true) => "public and private",
        (false, true) => "private only",
        (false, false) => "off",
    }
}

/// `["a", "b"]`, the TOML-like form views use.
pub fn string_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Changes,
    NoChanges,
    Blocked,
}

/// The settings eksgate manages on one cluster, in the form the diff shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSettings {
    pub public_access: bool,
    pub private_access: bool,
    /// `None` on the desired side: the manifest does not manage them.
    pub public_access_cidrs: Option<Vec<String>>,
    /// Desired: the manifest's list. Live and after: what the cluster security
    /// group lets in on 443 (eksgate only adds, never removes).
    pub private_access_from: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterPlan {
    pub key: ClusterKey,
    pub status: PlanStatus,
    /// `None` when the cluster could not be read (not found, wrong account).
    pub live: Option<ClusterSettings>,
    /// What the manifest says.
    pub desired: ClusterSettings,
    /// What the cluster will look like once the steps ran; `None` when
    /// blocked. The diff is `live` against this.
    pub after: Option<ClusterSettings>,
    /// Ids of the steps this cluster needs, shared ones included, in order.
    pub steps: Vec<String>,
    /// The manifest's rollout wave for this cluster.
    #[serde(default)]
    pub wave: u32,
}

/// A problem that blocks a cluster; rendered as `error:` plus `hint:`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub cluster: ClusterKey,
    pub message: String,
    pub hint: Option<String>,
}

/// Counts for the last line of a plan, and for CI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub steps: usize,
    pub endpoint_updates: usize,
    pub waits: usize,
    pub vpc_changes: usize,
    pub security_group_changes: usize,
    pub lockout_risks: usize,
    pub clusters_with_changes: usize,
    pub clusters_without_changes: usize,
    pub clusters_blocked: usize,
    /// `Plan: 5 steps on 3 clusters, 1 VPC change` or `No changes: ...`.
    pub message: String,
}

impl Plan {
    /// The checked DAG of the steps. Fails only for a plan edited by hand.
    pub fn graph(&self) -> Result<StepGraph, GraphError> {
        StepGraph::build(&self.steps)
    }

    /// The steps in a stable topological order (the plan's own order when
    /// the graph is broken, which only a hand-edited plan can be).
    pub fn ordered_steps(&self) -> Vec<&Step> {
        match self.graph() {
            Ok(g) => g.order().iter().map(|i| &self.steps[*i]).collect(),
            Err(_) => self.steps.iter().collect(),
        }
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    pub fn has_changes(&self) -> bool {
        !self.steps.is_empty()
    }

    pub fn is_blocked(&self) -> bool {
        !self.findings.is_empty()
    }

    pub fn summary(&self) -> Summary {
        let count = |k: StepKind| self.steps.iter().filter(|s| s.kind == k).count();
        let status = |st: PlanStatus| self.clusters.iter().filter(|c| c.status == st).count();
        let mut s = Summary {
            steps: self.steps.len(),
            endpoint_updates: count(StepKind::EksEndpoint),
            waits: count(StepKind::WaitUpdate),
            vpc_changes: count(StepKind::VpcDnsSupport) + count(StepKind::VpcDnsHostnames),
            security_group_changes: count(StepKind::SgHttpsIngress),
            lockout_risks: self.steps.iter().filter(|s| s.lockout_risk).count(),
            clusters_with_changes: status(PlanStatus::Changes),
            clusters_without_changes: status(PlanStatus::NoChanges),
            clusters_blocked: status(PlanStatus::Blocked),
            message: String::new(),
        };
        s.message = summary_message(&s);
        s
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summary_message(s: &Summary) -> String {
    let matching = match s.clusters_without_changes {
        1 => "1 cluster matches its manifest".to_string(),
        n => format!("{n} clusters match their manifests"),
    };
    let blocked = plural(s.clusters_blocked, "cluster blocked", "clusters blocked");
    if s.steps > 0 {
        let mut m = format!(
            "Plan: {} on {}",
            plural(s.steps, "step", "steps"),
            plural(s.clusters_with_changes, "cluster", "clusters")
        );
        if s.vpc_changes > 0 {
            let _ = write!(
                m,
                ", {}",
                plural(s.vpc_changes, "VPC change", "VPC changes")
            );
        }
        if s.security_group_changes > 0 {
            let _ = write!(
                m,
                ", {}",
                plural(
                    s.security_group_changes,
                    "security group change",
                    "security group changes"
                )
            );
        }
        if s.clusters_blocked > 0 {
            let _ = write!(m, "; {blocked}");
        }
        m
    } else if s.clusters_blocked > 0 {
        if s.clusters_without_changes > 0 {
            format!("No steps: {blocked}, {matching}")
        } else {
            format!("No steps: {blocked}")
        }
    } else if s.clusters_without_changes == 0 {
        "No changes: no clusters in the manifests".to_string()
    } else {
        format!("No changes: {matching}")
    }
}

/// A short sha256 (16 hex digits) of `v` as JSON: what a step was planned on.
pub fn fingerprint_of<T: Serialize>(v: &T) -> String {
    // Serialising the live types cannot fail (string keys, no custom
    // serialisers); if it ever did, hashing the error still gives a value
    // that will not match the live facts, which is the safe outcome.
    let bytes = serde_json::to_vec(v).unwrap_or_else(|e| e.to_string().into_bytes());
    let digest = Sha256::digest(&bytes);
    hex::encode(&digest[..8])
}

// ---------------------------------------------------------------------------
// Planning

/// What one cluster needs, decided before shared steps are built.
struct Analysis<'a> {
    want: &'a DesiredCluster,
    live: Option<&'a LiveCluster>,
    sg_live: Option<&'a LiveSecurityGroup>,
    findings: Vec<Finding>,
    /// The VPC whose DNS settings must be on, when some are off.
    vpc: Option<(VpcKey, &'a LiveVpc)>,
    /// The security group and the sources this cluster still needs on 443.
    sg: Option<(
        SecurityGroupKey,
        &'a LiveSecurityGroup,
        BTreeSet<AccessSource>,
    )>,
    /// `(before, after)` of each `UpdateClusterConfig`, in order.
    endpoint: Vec<(EndpointSettings, EndpointSettings)>,
}

impl Analysis<'_> {
    fn blocked(&self) -> bool {
        !self.findings.is_empty()
    }
}

/// Plans the steps that bring every declared cluster to its manifest.
pub fn plan(desired: &Desired, live: &Live) -> Plan {
    let mut wanted: Vec<&DesiredCluster> = desired.clusters.iter().collect();
    wanted.sort_by(|a, b| sort_key(&a.key).cmp(&sort_key(&b.key)));

    let mut seen = BTreeSet::new();
    let analyses: Vec<Analysis> = wanted
        .into_iter()
        .map(|want| {
            let mut a = analyse(want, live);
            // The manifest loader rejects duplicates; if two slipped through,
            // planning both would give two steps with one id.
            if !seen.insert(&want.key) {
                a.findings = vec![Finding {
                    cluster: want.key.clone(),
                    message: format!("cluster `{}` is declared more than once", want.key),
                    hint: Some(format!("remove one of the declarations ({})", want.origin)),
                }];
            }
            a
        })
        .collect();

    // Shared things: one node each, with every non-blocked dependent.
    let mut vpc_users: BTreeMap<VpcKey, (&LiveVpc, Vec<&ClusterKey>)> = BTreeMap::new();
    let mut sg_users: BTreeMap<SecurityGroupKey, SgNeed> = BTreeMap::new();
    for a in analyses.iter().filter(|a| !a.blocked()) {
        if let Some((key, vpc)) = &a.vpc {
            vpc_users
                .entry(key.clone())
                .or_insert_with(|| (vpc, Vec::new()))
                .1
                .push(&a.want.key);
        }
        if let Some((key, sg, missing)) = &a.sg {
            let need = sg_users.entry(key.clone()).or_insert_with(|| SgNeed {
                live: sg,
                add: BTreeSet::new(),
                clusters: Vec::new(),
                before_public_off: false,
            });
            need.add.extend(missing.iter().cloned());
            need.clusters.push(&a.want.key);
            need.before_public_off |= a
                .endpoint
                .iter()
                .any(|(b, af)| b.public_access && !af.public_access);
        }
    }
    let vpc_steps: BTreeMap<VpcKey, Vec<Step>> = vpc_users
        .iter()
        .map(|(key, (vpc, users))| (key.clone(), vpc_steps_for(key, vpc, users)))
        .collect();
    let sg_steps: BTreeMap<SecurityGroupKey, Step> = sg_users
        .iter()
        .map(|(key, need)| (key.clone(), sg_step_for(key, need)))
        .collect();

    let mut steps: Vec<Step> = Vec::new();
    let mut emitted: BTreeSet<String> = BTreeSet::new();
    let mut clusters = Vec::new();
    let mut findings = Vec::new();
    for a in &analyses {
        let mut ids = Vec::new();
        if !a.blocked() {
            let mut emit = |step: &Step, ids: &mut Vec<String>, steps: &mut Vec<Step>| {
                if emitted.insert(step.id.clone()) {
                    // The first cluster that needs the step lends it its role.
                    steps.push(Step {
                        role_arn: a.want.role_arn.clone(),
                        ..step.clone()
                    });
                }
                ids.push(step.id.clone());
            };
            let mut dns_ids = Vec::new();
            if let Some((key, _)) = &a.vpc {
                for s in vpc_steps.get(key).into_iter().flatten() {
                    emit(s, &mut ids, &mut steps);
                    dns_ids.push(s.id.clone());
                }
            }
            let mut sg_id = None;
            if let Some((key, _, _)) = &a.sg {
                if let Some(s) = sg_steps.get(key) {
                    emit(s, &mut ids, &mut steps);
                    sg_id = Some(s.id.clone());
                }
            }
            if let Some(live) = a.live {
                for s in endpoint_steps(a, live, &dns_ids, sg_id.as_deref()) {
                    emit(&s, &mut ids, &mut steps);
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
        clusters.push(cluster_plan(a, status, ids));
        findings.extend(a.findings.iter().cloned());
    }
    assign_waves(&mut steps, &clusters);

    Plan {
        format_version: FORMAT_VERSION,
        manifest_digest: desired.digest.clone(),
        steps,
        clusters,
        findings,
    }
}

/// Gives each step the lowest wave among the clusters that need it, then
/// orders the steps by wave (stably, so within a wave the order is the one
/// built above). A step only depends on steps of its own cluster or on
/// shared ones, whose wave is never higher, so the order stays topological.
fn assign_waves(steps: &mut [Step], clusters: &[ClusterPlan]) {
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
    steps.sort_by_key(|s| s.wave);
}

struct SgNeed<'a> {
    live: &'a LiveSecurityGroup,
    add: BTreeSet<AccessSource>,
    clusters: Vec<&'a ClusterKey>,
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

fn find_sg<'a>(
    live: &'a Live,
    key: &SecurityGroupKey,
) -> Option<(SecurityGroupKey, &'a LiveSecurityGroup)> {
    let found = live.security_groups.get(key).or_else(|| {
        live.security_groups
            .iter()
            .find(|(k, _)| k.region == key.region && k.group_id == key.group_id)
            .map(|(_, g)| g)
    });
    found.map(|g| (key.clone(), g))
}

fn analyse<'a>(want: &'a DesiredCluster, live: &'a Live) -> Analysis<'a> {
    let mut a = Analysis {
        want,
        live: None,
        sg_live: None,
        findings: Vec::new(),
        vpc: None,
        sg: None,
        endpoint: Vec::new(),
    };
    let key = &want.key;
    let block = |message: String, hint: Option<String>| Finding {
        cluster: key.clone(),
        message,
        hint,
    };
    let found = match live.clusters.get(key) {
        None => {
            a.findings.push(block(
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
            format!(
                "cluster `{key}` is `{}`; its endpoint cannot be changed now",
                found.status.as_str()
            ),
            Some(hint),
        ));
        return a;
    }
    if !want.endpoint.public && !want.endpoint.private {
        a.findings.push(block(
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
    let sg = sg_key.as_ref().and_then(|k| find_sg(live, k));
    a.sg_live = sg.as_ref().map(|(_, g)| *g);

    if want.endpoint.private {
        let vpc_key = VpcKey {
            account: key.account.clone(),
            region: key.region.clone(),
            vpc_id: found.vpc_id.clone(),
        };
        match find_vpc(live, &vpc_key) {
            None => a.findings.push(block(
                format!(
                    "the VPC `{}` of `{key}` was not read; private access needs its DNS settings",
                    found.vpc_id
                ),
                None,
            )),
            Some((_, vpc)) if !vpc.has_amazon_dns() => a.findings.push(block(
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

        if !want.private_access_from.is_empty() {
            match (&found.security_group_id, sg) {
                (None, _) => a.findings.push(block(
                    format!(
                        "`{key}` declares `private_access_from`, but the cluster has no cluster security group"
                    ),
                    Some(
                        "allow TCP 443 from those sources on the cluster's security groups yourself, or remove `private_access_from`"
                            .to_string(),
                    ),
                )),
                (Some(id), None) => a.findings.push(block(
                    format!("the security group `{id}` of `{key}` was not read"),
                    None,
                )),
                (Some(_), Some((k, g))) => {
                    let missing: BTreeSet<AccessSource> = want
                        .private_access_from
                        .difference(&g.https_ingress)
                        .cloned()
                        .collect();
                    if !missing.is_empty() {
                        a.sg = Some((k, g, missing));
                    }
                }
            }
        }
    }

    a.endpoint = endpoint_path(found, want);
    a
}

fn cidr_strings(set: &BTreeSet<IpNet>) -> Vec<String> {
    set.iter().map(|n| n.to_string()).collect()
}

fn source_strings<'a>(it: impl IntoIterator<Item = &'a AccessSource>) -> Vec<String> {
    it.into_iter().map(|s| s.to_string()).collect()
}

/// The `UpdateClusterConfig` calls from the live endpoint to the desired one.
///
/// A move that turns one side on and the other off goes through "both on",
/// so the cluster stays reachable if the second call fails. CIDRs are sent
/// only when the manifest manages them and wants public access, and then
/// only when public access is being turned on (EKS kept the old list) or the
/// list differs. A call that changes nothing is never planned.
fn endpoint_path(
    live: &LiveCluster,
    want: &DesiredCluster,
) -> Vec<(EndpointSettings, EndpointSettings)> {
    let from = live.endpoint;
    let to = want.endpoint;
    let both = EndpointAccess {
        public: true,
        private: true,
    };
    // One side on and the other off, in a single move: stage it.
    let swap = (from.public && !from.private && !to.public && to.private)
        || (!from.public && from.private && to.public && !to.private);
    let mut stops = Vec::new();
    if swap {
        stops.push(both);
    }
    stops.push(to);

    let managed = want.public_access_cidrs.as_ref().filter(|_| to.public);
    let mut cur = from;
    let mut cur_cidrs = live.public_access_cidrs.clone();
    let mut out = Vec::new();
    for stop in stops {
        let send = managed.filter(|c| stop.public && (!cur.public || cur_cidrs != **c));
        if stop == cur && send.is_none() {
            continue;
        }
        let before = EndpointSettings {
            public_access: cur.public,
            private_access: cur.private,
            public_access_cidrs: send.map(|_| cidr_strings(&cur_cidrs)),
        };
        let after = EndpointSettings {
            public_access: stop.public,
            private_access: stop.private,
            public_access_cidrs: send.map(cidr_strings),
        };
        out.push((before, after));
        cur = stop;
        if let Some(c) = send {
            cur_cidrs = c.clone();
        }
    }
    out
}

/// Names a few clusters for a reason: `a`, `b` and 3 more.
fn name_clusters(keys: &[&ClusterKey]) -> String {
    let names: Vec<String> = keys.iter().map(|k| format!("`{}`", k.name)).collect();
    match names.len() {
        0 => String::new(),
        1 => names[0].clone(),
        2 | 3 => format!(
            "{} and {}",
            names[..names.len() - 1].join(", "),
            names[names.len() - 1]
        ),
        n => format!("{} and {} more", names[..2].join(", "), n - 2),
    }
}

fn vpc_steps_for(key: &VpcKey, vpc: &LiveVpc, users: &[&ClusterKey]) -> Vec<Step> {
    let prefix = format!("{}/{}", id_prefix(&key.account, &key.region), key.vpc_id);
    let fingerprint = fingerprint_of(vpc);
    let who = name_clusters(users);
    let step = |kind: StepKind, attr: &str, reason: String, depends_on: Vec<String>| Step {
        id: format!("{prefix}/{attr}"),
        kind,
        account: key.account.clone(),
        region: key.region.clone(),
        cluster: None,
        vpc_id: Some(key.vpc_id.clone()),
        security_group_id: None,
        before: serde_json::json!({ attr: false }),
        after: serde_json::json!({ attr: true }),
        depends_on,
        reason,
        lockout_risk: false,
        role_arn: None,
        fingerprint: fingerprint.clone(),
        wave: 0,
    };
    let mut out = Vec::new();
    if !vpc.dns_support {
        out.push(step(
            StepKind::VpcDnsSupport,
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
        out.push(step(
            StepKind::VpcDnsHostnames,
            "dns_hostnames",
            reason,
            deps,
        ));
    }
    out
}

fn sg_step_for(key: &SecurityGroupKey, need: &SgNeed) -> Step {
    let split = |set: &BTreeSet<AccessSource>| {
        let mut h = HttpsSources::default();
        for s in set {
            match s {
                AccessSource::Cidr(n) => h.cidrs.push(n.to_string()),
                AccessSource::SecurityGroup(id) => h.security_groups.push(id.clone()),
            }
        }
        h
    };
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
        kind: StepKind::SgHttpsIngress,
        account: key.account.clone(),
        region: key.region.clone(),
        cluster: None,
        vpc_id: None,
        security_group_id: Some(key.group_id.clone()),
        before: to_json(&split(&need.live.https_ingress)),
        after: to_json(&split(&need.add)),
        depends_on: Vec::new(),
        reason,
        lockout_risk: false,
        role_arn: None,
        fingerprint: fingerprint_of(need.live),
        wave: 0,
    }
}

fn to_json<T: Serialize>(v: &T) -> serde_json::Value {
    // Plain structs of strings and bools always serialise.
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Waits for updates already running, then the endpoint calls, chained.
fn endpoint_steps(
    a: &Analysis,
    live: &LiveCluster,
    dns_ids: &[String],
    sg_id: Option<&str>,
) -> Vec<Step> {
    // Nothing to call: waiting for someone else's update would only slow the
    // apply down, so no wait step either.
    if a.endpoint.is_empty() {
        return Vec::new();
    }
    let key = &a.want.key;
    let prefix = format!("{}/{}", id_prefix(&key.account, &key.region), key.name);
    let fingerprint = fingerprint_of(live);
    let base = |id: String, kind: StepKind| Step {
        id,
        kind,
        account: key.account.clone(),
        region: key.region.clone(),
        cluster: Some(key.name.clone()),
        vpc_id: Some(live.vpc_id.clone()),
        security_group_id: live.security_group_id.clone(),
        before: serde_json::Value::Null,
        after: serde_json::Value::Null,
        depends_on: Vec::new(),
        reason: String::new(),
        lockout_risk: false,
        role_arn: None,
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
            StepKind::WaitUpdate,
        );
        s.before = to_json(&UpdateWait {
            update_id: w.map(str::to_string),
            status: "InProgress".into(),
        });
        s.after = to_json(&UpdateWait {
            update_id: w.map(str::to_string),
            status: "Successful".into(),
        });
        s.reason = match w {
            Some(id) => format!(
                "update `{id}` is already in progress and EKS runs one update at a time per cluster, so the endpoint change waits for it"
            ),
            None => "the cluster is `UPDATING` and EKS runs one update at a time per cluster, so the endpoint change waits until it is `ACTIVE`".to_string(),
        };
        out.push(s);
    }
    let wait_ids: Vec<String> = out.iter().map(|s| s.id.clone()).collect();

    let to = a.want.endpoint;
    let n = a.endpoint.len();
    let mut prev: Option<String> = None;
    for (i, (before, after)) in a.endpoint.iter().enumerate() {
        let mut s = base(
            format!("{prefix}/endpoint.{}", i + 1),
            StepKind::EksEndpoint,
        );
        let mut waits_for: Vec<&str> = Vec::new();
        match &prev {
            Some(p) => {
                s.depends_on.push(p.clone());
                waits_for.push("the previous endpoint update to be `Successful`");
            }
            None => {
                if !wait_ids.is_empty() {
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
        let what = if staged_first && after.private_access && !before.private_access {
            "turn private access on first, so the cluster stays reachable while public access is turned off in the next step".to_string()
        } else if staged_first && after.public_access && !before.public_access {
            "turn public access on first, so the cluster stays reachable while private access is turned off in the next step".to_string()
        } else if (before.public_access, before.private_access)
            == (after.public_access, after.private_access)
        {
            "set the public access CIDRs the manifest lists".to_string()
        } else {
            format!(
                "make the endpoint {}, as the manifest asks",
                mode_name(to.public, to.private)
            )
        };
        s.reason = match waits_for.len() {
            0 => what,
            _ => format!("{what}; it waits for {}", join_and(&waits_for)),
        };
        s.lockout_risk = public_off && a.want.private_access_from.is_empty();
        s.before = to_json(before);
        s.after = to_json(after);
        prev = Some(s.id.clone());
        out.push(s);
    }
    out
}

fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn cluster_plan(a: &Analysis, status: PlanStatus, steps: Vec<String>) -> ClusterPlan {
    let want = a.want;
    let desired = ClusterSettings {
        public_access: want.endpoint.public,
        private_access: want.endpoint.private,
        public_access_cidrs: want.public_access_cidrs.as_ref().map(cidr_strings),
        private_access_from: source_strings(&want.private_access_from),
    };
    let live_sources: BTreeSet<AccessSource> = a
        .sg_live
        .map(|g| g.https_ingress.clone())
        .unwrap_or_default();
    let live = a.live.map(|l| ClusterSettings {
        public_access: l.endpoint.public,
        private_access: l.endpoint.private,
        public_access_cidrs: Some(cidr_strings(&l.public_access_cidrs)),
        private_access_from: source_strings(&live_sources),
    });
    let after = match (status, a.live) {
        (PlanStatus::Blocked, _) | (_, None) => None,
        (_, Some(l)) => {
            let cidrs = match (&want.public_access_cidrs, want.endpoint.public) {
                (Some(c), true) => c,
                _ => &l.public_access_cidrs,
            };
            let mut sources = live_sources.clone();
            if want.endpoint.private && a.sg.is_some() {
                sources.extend(want.private_access_from.iter().cloned());
            }
            Some(ClusterSettings {
                public_access: want.endpoint.public,
                private_access: want.endpoint.private,
                public_access_cidrs: Some(cidr_strings(cidrs)),
                private_access_from: source_strings(&sources),
            })
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
    use super::*;
    use crate::desired::Origin;
    use proptest::prelude::*;

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

    fn nets(v: &[&str]) -> BTreeSet<IpNet> {
        v.iter().map(|s| net(s)).collect()
    }

    fn src(s: &str) -> AccessSource {
        if s.starts_with("sg-") {
            AccessSource::SecurityGroup(s.to_string())
        } else {
            AccessSource::Cidr(net(s))
        }
    }

    fn srcs(v: &[&str]) -> BTreeSet<AccessSource> {
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
            endpoint: mode,
            public_access_cidrs: None,
            private_access_from: BTreeSet::new(),
            wave: 0,
            origin: Origin {
                file: "prod.toml".into(),
                line: 3,
                column: 1,
            },
        }
    }

    fn found(name: &str, mode: EndpointAccess) -> LiveCluster {
        LiveCluster {
            key: key(name),
            arn: format!("arn:aws:eks:eu-west-1:111122223333:cluster/{name}"),
            status: ClusterStatus::Active,
            vpc_id: "vpc-1".into(),
            security_group_id: Some("sg-c".into()),
            endpoint: mode,
            public_access_cidrs: nets(&["0.0.0.0/0"]),
            updates_in_progress: Vec::new(),
        }
    }

    fn vpc(support: bool, hostnames: bool, amazon: bool) -> LiveVpc {
        LiveVpc {
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
            .filter(|s| s.kind == StepKind::EksEndpoint)
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
            assert!(plan.findings.is_empty(), "{label}");
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
            w.public_access_cidrs = dc.map(nets);
            let mut l = found("a", lm);
            l.public_access_cidrs = nets(lc);
            let (d, l) = one(w, l);
            let plan = plan(&d, &l);
            assert_eq!(afters(&plan), expected, "case {i}");
        }
    }

    #[test]
    fn cidr_step_shows_the_list_it_replaces() {
        let mut w = want("a", PUB);
        w.public_access_cidrs = Some(nets(&["203.0.113.0/24", "10.0.0.0/8"]));
        let (d, l) = one(w, found("a", PUB));
        let plan = plan(&d, &l);
        let s = eks(&plan)[0];
        assert_eq!(
            s.before,
            serde_json::json!({"public_access": true, "private_access": false, "public_access_cidrs": ["0.0.0.0/0"]})
        );
        assert_eq!(
            s.after,
            serde_json::json!({"public_access": true, "private_access": false, "public_access_cidrs": ["10.0.0.0/8", "203.0.113.0/24"]})
        );
        assert_eq!(
            s.describe(),
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
                first.before,
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
            plan.steps[0].after,
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
            .filter(|s| s.kind == StepKind::SgHttpsIngress)
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
            plan(&d, &l).summary().message,
            "No changes: 1 cluster matches its manifest"
        );
        let (d, l) = world(vec![
            (want("a", PUB), ClusterObservation::Found(found("a", PUB))),
            (want("b", BOTH), ClusterObservation::Found(found("b", BOTH))),
        ]);
        assert_eq!(
            plan(&d, &l).summary().message,
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
            s.message,
            "Plan: 4 steps on 2 clusters, 1 VPC change; 1 cluster blocked"
        );
        assert_eq!((s.endpoint_updates, s.lockout_risks), (3, 1));
        let (d, l) = world(vec![(want("c", BOTH), ClusterObservation::NotFound)]);
        assert_eq!(
            plan(&d, &l).summary().message,
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
        let kinds: Vec<&str> = p.steps.iter().map(|s| s.kind.as_str()).collect();
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
        proptest::sample::subsequence(CIDR_POOL.to_vec(), 0..=3).prop_map(|v| nets(&v))
    }

    fn arb_sources() -> impl Strategy<Value = BTreeSet<AccessSource>> {
        proptest::sample::subsequence(SOURCE_POOL.to_vec(), 0..=4).prop_map(|v| srcs(&v))
    }

    #[derive(Clone, Debug)]
    struct Case {
        want: EndpointAccess,
        want_cidrs: Option<BTreeSet<IpNet>>,
        from: BTreeSet<AccessSource>,
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
        sgs: &[BTreeSet<AccessSource>],
    ) -> (Desired, Live) {
        let mut pairs = Vec::new();
        for (i, c) in cases.iter().enumerate() {
            let name = format!("c{i}");
            let mut w = want(&name, c.want);
            w.public_access_cidrs = c.want_cidrs.clone();
            w.private_access_from = c.from.clone();
            let mut l = found(&name, c.live);
            l.public_access_cidrs = c.live_cidrs.clone();
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
            prop_assert_ne!(&s.before, &s.after, "no-op step {}", s.id);
            if s.kind == StepKind::EksEndpoint {
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
            let blocked = p.findings.iter().any(|f| f.cluster == w.key);
            prop_assert_eq!(blocked, cp.status == PlanStatus::Blocked);
            if blocked {
                prop_assert!(mine.is_empty() && cp.steps.is_empty());
                continue;
            }
            let ClusterObservation::Found(live) = &l.clusters[&w.key] else {
                unreachable!("unblocked clusters were found");
            };
            // Replay the endpoint calls from the live state.
            let mut cur = live.endpoint;
            let mut cidrs = cidr_strings(&live.public_access_cidrs);
            let endpoint: Vec<&&Step> = mine
                .iter()
                .filter(|s| s.kind == StepKind::EksEndpoint)
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
            prop_assert_eq!(cur, w.endpoint);
            match (&w.public_access_cidrs, w.endpoint.public) {
                (Some(c), true) => prop_assert_eq!(&cidrs, &cidr_strings(c)),
                _ => prop_assert_eq!(&cidrs, &cidr_strings(&live.public_access_cidrs)),
            }
            // Waits only in front of endpoint calls.
            if endpoint.is_empty() {
                prop_assert!(mine.is_empty());
            }
            if w.endpoint.private {
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
                    vpc_steps.iter().any(|s| s.kind == StepKind::VpcDnsSupport)
                );
                prop_assert_eq!(
                    !v.dns_hostnames,
                    vpc_steps
                        .iter()
                        .any(|s| s.kind == StepKind::VpcDnsHostnames)
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
                            && s.kind == StepKind::SgHttpsIngress
                    });
                    // A shared group may have a step for another cluster.
                    prop_assert!(missing.is_empty() || sg_step.is_some());
                    if let (false, Some(sg_step)) = (missing.is_empty(), sg_step) {
                        let add: HttpsSources = sg_step.after_as().unwrap();
                        for m in &missing {
                            let listed = match m {
                                AccessSource::Cidr(n) => add.cidrs.contains(&n.to_string()),
                                AccessSource::SecurityGroup(g) => add.security_groups.contains(g),
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
