//! `eksgate doctor`: everything that would stop a plan or an apply, found
//! before either runs. Per account and region the manifests use (or only
//! the environment, without manifests) it checks that the credentials
//! load, that `GetCallerIdentity` answers and acts in the pinned `account`,
//! that each `role_arn` can be assumed, that the EKS and EC2 endpoints
//! answer, that each call eksgate makes is allowed on one declared cluster,
//! and that `AuthorizeSecurityGroupIngress` is allowed (by a dry run). EKS
//! writes and `ModifyVpcAttribute` have no dry run: they are listed as not
//! checkable before apply.
//!
//! This file decides what to check and what each answer means, and words
//! failures through `explain`; the calls are the provider's (`probe`), the
//! table and the JSON are `view::doctor`'s. It changes nothing in AWS.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::desired::Desired;
use crate::explain::{self, Credentials, Needs};
use crate::provider::aws::AwsProvider;
use crate::provider::failure::Failure;
use crate::provider::probe::{Answer, Identity};
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
        groups.entry(key).or_insert_with(|| Group {
            scope: Scope {
                account: c.key.account.clone(),
                region: c.key.region.clone(),
                role_arn: c.role_arn.clone(),
            },
            cluster: c.key.name.clone(),
        });
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
    let region = &g.scope.region;
    let at = match &g.scope.role_arn {
        Some(role) => format!("{region}/{} as {}", g.cluster, role_name(role)),
        None => format!("{region}/{}", g.cluster),
    };
    let probes = provider.probe_cluster(&g.scope, &g.cluster).await;
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
    for p in &probes {
        let service = p.action.split(':').next().unwrap_or("");
        if down.contains(&service) {
            report.not_checkable(p.action, &at, "the endpoint does not answer");
            continue;
        }
        match &p.answer {
            Answer::Allowed(what) => report.ok(p.action, &at, what.clone()),
            Answer::Failed(err) => report.failed_with(p.action, &at, err, creds),
            Answer::NotAsked(why) => report.not_checkable(p.action, &at, why),
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
