//! `eksgate doctor`: everything that would stop a plan or an apply, found
//! before either runs. Per account and region the manifests use (or only
//! the environment, without manifests) it checks that the credentials
//! load, that `GetCallerIdentity` answers and acts in the pinned `account`,
//! that each `role_arn` can be assumed, that the EKS and EC2 endpoints
//! answer, that each call eksgate makes is allowed on one declared cluster,
//! and that `AuthorizeSecurityGroupIngress` and, for
//! `private_access_from_exclusive`, `RevokeSecurityGroupIngress` are allowed
//! (by a dry run). EKS writes, `ModifyVpcAttribute` and the Route 53
//! association EKS makes with the caller's permissions have no dry run:
//! they are listed as not checkable before apply.
//!
//! The calls only some manifests make (the access check, the network
//! findings, prefix lists, the exclusive allow-list; see [`Wanted`]) are
//! asked only when a cluster of the group needs them, on that cluster, and
//! otherwise listed as not needed by these manifests: a permission the
//! manifests never use must not fail the report, and the row still says
//! the action exists. Every action the report names is in
//! `explain::READ_ACTIONS` or `explain::WRITE_ACTIONS`, the lists the
//! permission hints print, and every action of those lists is in it.
//!
//! This file decides what to check and what each answer means, and words
//! failures through `explain`; the calls are the provider's (`probe`), the
//! table and the JSON are `view::doctor`'s. It changes nothing in AWS.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::desired::{AccessSource, Desired, DesiredCluster};
use crate::explain::{self, Credentials, Needs};
use crate::provider::aws::AwsProvider;
use crate::provider::failure::Failure;
use crate::provider::probe::{Answer, Identity, Probe};
use crate::provider::probe_needed::Listing;
use crate::provider::{Provider as _, ProviderError, Scope};

/// What a check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed,
    /// Cannot be known before apply (no dry run), or not asked because an
    /// earlier check failed.
    NotCheckable,
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked: `credentials`, `identity`, `eks:DescribeCluster`...
    pub check: String,
    /// Where: `environment`, a region, a role, a cluster.
    pub scope: String,
    pub outcome: Outcome,
    /// What was found, in a few words.
    pub detail: String,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Every check, in the order they ran.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.count(Outcome::Failed)
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.checks.iter().filter(|c| c.outcome == outcome).count()
    }

    fn push(
        &mut self,
        check: &str,
        scope: &str,
        outcome: Outcome,
        detail: String,
        hint: Option<String>,
    ) {
        self.checks.push(Check {
            check: check.to_string(),
            scope: scope.to_string(),
            outcome,
            detail,
            hint,
        });
    }

    fn ok(&mut self, check: &str, scope: &str, detail: String) {
        self.push(check, scope, Outcome::Ok, detail, None);
    }

    fn failed_with(
        &mut self,
        check: &str,
        scope: &str,
        err: &ProviderError,
        creds: Credentials<'_>,
    ) {
        let d = explain::diagnose(err, creds, Needs::PlanApply);
        let mut detail = d.message;
        for n in d.notes {
            detail.push_str("; ");
            detail.push_str(&n);
        }
        self.push(check, scope, Outcome::Failed, detail, d.hint);
    }

    fn not_checkable(&mut self, check: &str, scope: &str, why: &str) {
        self.push(check, scope, Outcome::NotCheckable, why.to_string(), None);
    }
}

/// The credentials, region and role one group of clusters is read with,
/// and the cluster whose calls are probed.
struct Group {
    scope: Scope,
    cluster: String,
    wanted: Wanted,
}

/// The first cluster of a group that needs each call only some manifests
/// make, as the read and apply decide it from the manifest (what AWS holds
/// can make a needed read unnecessary, never the reverse).
#[derive(Debug, Default)]
struct Wanted {
    /// `private_access_principals`: the cluster and one principal
    /// (`plan::access`).
    access: Option<(String, String)>,
    /// Public access without private access: the NAT gateways of the VPC
    /// (`plan::network`, a public-only endpoint with restricted CIDRs).
    nat_gateways: Option<String>,
    /// Private access from a CIDR: the route tables of the subnets
    /// (`plan::network`, a CIDR outside the VPC).
    route_tables: Option<String>,
    /// Private access from a security group: the peering connections
    /// (`plan::network`, a group in another VPC).
    peerings: Option<String>,
    /// A managed prefix list in `public_access_cidrs` with public access,
    /// or in `private_access_from` with private access: the cluster and the
    /// list.
    prefix_list: Option<(String, String)>,
    /// `private_access_from_exclusive` (`plan::allow_list`).
    exclusive: Option<String>,
}

impl Wanted {
    fn add(&mut self, c: &DesiredCluster) {
        let name = || Some(c.key.name.clone());
        if self.access.is_none() {
            if let Some(p) = c.access.principals.iter().next() {
                self.access = Some((c.key.name.clone(), p.clone()));
            }
        }
        let e = &c.endpoint;
        if self.nat_gateways.is_none() && e.public_access && !e.private_access {
            self.nat_gateways = name();
        }
        let from =
            |f: fn(&AccessSource) -> bool| e.private_access && c.private_access_from.iter().any(f);
        if self.route_tables.is_none() && from(|s| matches!(s, AccessSource::Cidr(_))) {
            self.route_tables = name();
        }
        if self.peerings.is_none() && from(|s| matches!(s, AccessSource::SecurityGroup(_))) {
            self.peerings = name();
        }
        if self.prefix_list.is_none() {
            // The lists the read asks for, as it asks.
            if let Some(id) = crate::workflow::prefix_lists_of(c).into_iter().next() {
                self.prefix_list = Some((c.key.name.clone(), id));
            }
        }
        if self.exclusive.is_none() && c.private_access_from_exclusive {
            self.exclusive = name();
        }
    }
}

/// Runs every check for `desired` (`None`: the environment only, in
/// `region`).
pub async fn run(provider: &AwsProvider, desired: Option<&Desired>, region: &str) -> Report {
    let mut report = Report::default();
    let source_fallback = "the default credential chain".to_string();
    let profile = provider.profile();
    let source = match provider.probe_credentials().await {
        Ok(source) => {
            report.ok("credentials", "environment", source.clone());
            source
        }
        Err(err) => {
            let creds = Credentials {
                source: &source_fallback,
                profile: profile.as_deref(),
            };
            report.failed_with("credentials", "environment", &err, creds);
            return report;
        }
    };
    let creds = Credentials {
        source: &source,
        profile: profile.as_deref(),
    };

    // The base identity, in the first region used.
    let first_region = desired
        .and_then(|d| d.clusters.first())
        .map_or(region.to_string(), |c| c.key.region.clone());
    let base = Scope {
        account: None,
        region: first_region.clone(),
        role_arn: None,
    };
    let base_identity = match provider.probe_identity(&base).await {
        Ok(id) => {
            report.ok(
                "sts:GetCallerIdentity",
                &first_region,
                format!("acts as `{}` in account `{}`", id.arn, id.account),
            );
            Some(id)
        }
        Err(err) => {
            report.failed_with("sts:GetCallerIdentity", &first_region, &err, creds);
            None
        }
    };
    let Some(desired) = desired else {
        return report;
    };

    // One group per (account, region, role): the first declared cluster
    // of each stands for the others.
    let mut groups: BTreeMap<(Option<String>, String, Option<String>), Group> = BTreeMap::new();
    for c in &desired.clusters {
        let key = (
            c.key.account.clone(),
            c.key.region.clone(),
            c.role_arn.clone(),
        );
        groups
            .entry(key)
            .or_insert_with(|| Group {
                scope: Scope {
                    account: c.key.account.clone(),
                    region: c.key.region.clone(),
                    role_arn: c.role_arn.clone(),
                },
                cluster: c.key.name.clone(),
                wanted: Wanted::default(),
            })
            .wanted
            .add(c);
    }

    // Each role, once, and who each (account, role) acts as.
    let mut identities: BTreeMap<Option<String>, Option<Identity>> = BTreeMap::new();
    identities.insert(None, base_identity);
    for g in groups.values() {
        let Some(role) = &g.scope.role_arn else {
            continue;
        };
        if identities.contains_key(&g.scope.role_arn) {
            continue;
        }
        let id = match provider.probe_identity(&g.scope).await {
            Ok(id) => {
                report.ok("sts:AssumeRole", role, format!("acts as `{}`", id.arn));
                Some(id)
            }
            Err(err) => {
                report.failed_with("sts:AssumeRole", role, &err, creds);
                None
            }
        };
        identities.insert(g.scope.role_arn.clone(), id);
    }
    let mut accounts_checked = std::collections::BTreeSet::new();
    for g in groups.values() {
        let Some(expected) = &g.scope.account else {
            continue;
        };
        if !accounts_checked.insert((expected.clone(), g.scope.role_arn.clone())) {
            continue;
        }
        let scope = format!("account {expected}");
        match identities.get(&g.scope.role_arn).cloned().flatten() {
            Some(id) if &id.account == expected => {
                report.ok("account", &scope, format!("the credentials act in `{expected}`"));
            }
            Some(id) => report.push(
                "account",
                &scope,
                Outcome::Failed,
                format!(
                    "the credentials act in account `{}`, not `{expected}`",
                    id.account
                ),
                Some("use credentials for the account the manifest pins (`--profile`), or fix `account`".into()),
            ),
            None => report.not_checkable("account", &scope, "the identity is not known"),
        }
    }

    // The calls of each group, on its first cluster.
    for g in groups.values() {
        if g.scope.role_arn.is_some() && !matches!(identities.get(&g.scope.role_arn), Some(Some(_)))
        {
            let at = format!("{}/{}", g.scope.region, g.cluster);
            report.not_checkable("reads", &at, "the role could not be assumed");
            continue;
        }
        probe_group(&mut report, provider, g, creds).await;
    }
    report
}

async fn probe_group(
    report: &mut Report,
    provider: &AwsProvider,
    g: &Group,
    creds: Credentials<'_>,
) {
    let at = where_asked(&g.scope, &g.cluster);
    let probes = provider.probe_cluster(&g.scope, &g.cluster).await;
    let region = &g.scope.region;
    let mut down: Vec<&str> = Vec::new();
    for service in ["eks", "ec2"] {
        let first = probes
            .iter()
            .find(|p| p.action.starts_with(service) && !matches!(p.answer, Answer::NotAsked(_)));
        let endpoint_scope = format!("{region} {}", service.to_ascii_uppercase());
        match first.map(|p| &p.answer) {
            Some(Answer::Failed(err)) if no_answer(err) => {
                down.push(service);
                report.failed_with("endpoint", &endpoint_scope, err, creds);
            }
            Some(_) => report.ok("endpoint", &endpoint_scope, "answers".into()),
            None => report.not_checkable("endpoint", &endpoint_scope, "no call was made"),
        }
    }
    let mut rows: Vec<(String, Probe)> = probes.into_iter().map(|p| (at.clone(), p)).collect();
    rows.extend(probe_wanted(provider, g, &down).await);
    for (at, p) in &rows {
        let service = p.action.split(':').next().unwrap_or("");
        if down.contains(&service) && !matches!(&p.answer, Answer::NotAsked(w) if w == NOT_NEEDED) {
            report.not_checkable(p.action, at, "the endpoint does not answer");
            continue;
        }
        match &p.answer {
            Answer::Allowed(what) => report.ok(p.action, at, what.clone()),
            Answer::Failed(err) => report.failed_with(p.action, at, err, creds),
            Answer::NotAsked(why) => report.not_checkable(p.action, at, why),
        }
    }
    report.not_checkable(
        "eks:UpdateClusterConfig",
        &at,
        "EKS writes have no dry run: apply is the first call to know",
    );
    report.not_checkable(
        "ec2:ModifyVpcAttribute",
        &at,
        "the call has no dry run: apply is the first call to know",
    );
    report.not_checkable(
        "route53:AssociateVPCWithHostedZone",
        &at,
        "turning private access on needs it besides the EKS permission; it has no dry run: apply is the first call to know",
    );
}

/// Why a call only some manifests make was not asked.
const NOT_NEEDED: &str = "not needed by these manifests";

/// The calls only some manifests make, each asked on the first cluster of
/// `g` that needs it (or listed as not needed), in the order of
/// `explain::READ_ACTIONS` and `WRITE_ACTIONS`. Calls to a service whose
/// endpoint does not answer are not made.
async fn probe_wanted(provider: &AwsProvider, g: &Group, down: &[&str]) -> Vec<(String, Probe)> {
    let w = &g.wanted;
    let here = where_asked(&g.scope, &g.cluster);
    let mut rows = Vec::new();
    let skip = |rows: &mut Vec<(String, Probe)>, actions: &[&'static str]| {
        for &action in actions {
            let answer = Answer::NotAsked(NOT_NEEDED.into());
            rows.push((here.clone(), Probe { action, answer }));
        }
    };
    let eks_up = !down.contains(&"eks");
    let ec2_up = !down.contains(&"ec2");
    let unanswered = |rows: &mut Vec<(String, Probe)>, at: String, actions: &[&'static str]| {
        for &action in actions {
            let answer = Answer::NotAsked("the endpoint does not answer".into());
            rows.push((at.clone(), Probe { action, answer }));
        }
    };

    for (listing, cluster) in [
        (Listing::NatGateways, &w.nat_gateways),
        (Listing::RouteTables, &w.route_tables),
        (Listing::VpcPeeringConnections, &w.peerings),
    ] {
        match cluster {
            None => skip(&mut rows, &[listing.action()]),
            Some(c) if !ec2_up => {
                unanswered(&mut rows, where_asked(&g.scope, c), &[listing.action()])
            }
            Some(c) => rows.push((
                where_asked(&g.scope, c),
                provider.probe_listing(&g.scope, listing).await,
            )),
        }
    }
    const ACCESS: &[&str] = &[
        "eks:ListAccessEntries",
        "eks:DescribeAccessEntry",
        "eks:ListAssociatedAccessPolicies",
    ];
    match &w.access {
        None => skip(&mut rows, ACCESS),
        Some((c, _)) if !eks_up => unanswered(&mut rows, where_asked(&g.scope, c), ACCESS),
        Some((c, principal)) => {
            let at = where_asked(&g.scope, c);
            for p in provider.probe_access(&g.scope, c, principal).await {
                rows.push((at.clone(), p));
            }
        }
    }
    const PREFIX: &[&str] = &[
        "ec2:DescribeManagedPrefixLists",
        "ec2:GetManagedPrefixListEntries",
    ];
    match &w.prefix_list {
        None => skip(&mut rows, PREFIX),
        Some((c, _)) if !ec2_up => unanswered(&mut rows, where_asked(&g.scope, c), PREFIX),
        Some((c, id)) => {
            let at = where_asked(&g.scope, c);
            for p in provider.probe_prefix_list(&g.scope, id).await {
                rows.push((at.clone(), p));
            }
        }
    }
    const EXCLUSIVE: &[&str] = &[
        "ec2:DescribeSecurityGroupRules",
        "ec2:RevokeSecurityGroupIngress",
    ];
    match &w.exclusive {
        None => skip(&mut rows, EXCLUSIVE),
        Some(c) if !ec2_up => unanswered(&mut rows, where_asked(&g.scope, c), EXCLUSIVE),
        Some(c) => {
            let at = where_asked(&g.scope, c);
            for p in provider.probe_exclusive(&g.scope, c).await {
                rows.push((at.clone(), p));
            }
        }
    }
    rows
}

/// Where a call on `cluster` was asked: `us-east-1/payments as deployer`.
fn where_asked(scope: &Scope, cluster: &str) -> String {
    match &scope.role_arn {
        Some(role) => format!("{}/{cluster} as {}", scope.region, role_name(role)),
        None => format!("{}/{cluster}", scope.region),
    }
}

/// Whether a call got no answer from the endpoint at all.
fn no_answer(err: &ProviderError) -> bool {
    match err {
        ProviderError::Local { failure, .. } => matches!(**failure, Failure::Endpoint(_)),
        ProviderError::Transport { .. } => true,
        _ => false,
    }
}

/// `deployer` of `arn:aws:iam::111122223333:role/deployer`.
fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
