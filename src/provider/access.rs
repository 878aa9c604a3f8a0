//! The access-entry calls of the AWS provider, each the single SDK call it is
//! (or one paged listing): `ListAccessEntries` (every page, once per
//! cluster), `ListAssociatedAccessPolicies` and, for an entry with no access
//! policy, `DescribeAccessEntry` (its Kubernetes groups), for the declared
//! principals only; and `UpdateClusterConfig` with `accessConfig`. Which
//! clusters are read and how many calls run at once is `fleet`'s; what the
//! answers mean for a plan is `plan::access`'s.
//!
//! Listings are bounded (see `paging`): an account holds at most a few
//! thousand entries per cluster, so more than [`MAX_PAGES`] pages means the
//! token never ends, and the read stops with an error instead of looping.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_eks::types::{AuthenticationMode as SdkMode, UpdateAccessConfigRequest};

use super::clients::Clients;
use super::paging;
use super::sdk_error::{code_of, sdk_error};
use super::updates::{request_token, update_started};
use super::{ProviderError, UpdateStart};
use crate::access::{find_entry, AssociatedPolicy, AuthenticationMode, LiveAccess, LiveEntry};

/// The most pages one listing follows (100 items each).
const MAX_PAGES: usize = 100;

/// Every principal ARN with an access entry on `name`.
async fn list_entries(c: &Clients, name: &str) -> Result<BTreeSet<String>, ProviderError> {
    let mut out = BTreeSet::new();
    let what = || format!("the access entries of `{name}`");
    paging::follow(
        "ListAccessEntries",
        what,
        MAX_PAGES,
        |token| async move {
            c.eks
                .list_access_entries()
                .cluster_name(name)
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(c, "ListAccessEntries", e))
        },
        |page| {
            out.extend(page.access_entries().iter().cloned());
            Ok(page.next_token().map(str::to_string))
        },
    )
    .await?;
    Ok(out)
}

/// The access policies associated with `principal`'s entry.
async fn list_policies(
    c: &Clients,
    name: &str,
    principal: &str,
) -> Result<Vec<AssociatedPolicy>, ProviderError> {
    let mut out = Vec::new();
    let what = || format!("the access policies of `{principal}` on `{name}`");
    paging::follow(
        "ListAssociatedAccessPolicies",
        what,
        MAX_PAGES,
        |token| async move {
            c.eks
                .list_associated_access_policies()
                .cluster_name(name)
                .principal_arn(principal)
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(c, "ListAssociatedAccessPolicies", e))
        },
        |page| {
            for p in page.associated_access_policies() {
                out.push(AssociatedPolicy {
                    policy_arn: p.policy_arn().unwrap_or_default().to_string(),
                    scope: p
                        .access_scope()
                        .and_then(|s| s.r#type())
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                });
            }
            Ok(page.next_token().map(str::to_string))
        },
    )
    .await?;
    Ok(out)
}

/// The access entries of `name` that matter for `principals`: every listed
/// principal, and the entry of each declared one in detail. An entry deleted
/// between the listing and its detail reads as not there.
pub(super) async fn read_access(
    c: &Clients,
    name: &str,
    principals: &[String],
) -> Result<LiveAccess, ProviderError> {
    let mut listed = list_entries(c, name).await?;
    let mut entries = BTreeMap::new();
    for declared in principals {
        let Some(arn) = find_entry(declared, &listed).cloned() else {
            continue;
        };
        if entries.contains_key(&arn) {
            continue;
        }
        let policies = match list_policies(c, name, &arn).await {
            Ok(p) => p,
            Err(e) if code_of(&e) == Some("ResourceNotFoundException") => {
                listed.remove(&arn);
                continue;
            }
            Err(e) => return Err(e),
        };
        // Groups matter only without a policy: one call fewer per entry.
        let kubernetes_groups = if policies.is_empty() {
            match c
                .eks
                .describe_access_entry()
                .cluster_name(name)
                .principal_arn(&arn)
                .send()
                .await
            {
                Ok(out) => out
                    .access_entry()
                    .map(|e| e.kubernetes_groups().to_vec())
                    .unwrap_or_default(),
                Err(e) => {
                    let e = sdk_error(c, "DescribeAccessEntry", e);
                    if code_of(&e) == Some("ResourceNotFoundException") {
                        listed.remove(&arn);
                        continue;
                    }
                    return Err(e);
                }
            }
        } else {
            Vec::new()
        };
        entries.insert(
            arn.clone(),
            LiveEntry {
                principal_arn: arn,
                kubernetes_groups,
                policies,
            },
        );
    }
    Ok(LiveAccess::Read {
        principals: listed,
        entries,
    })
}

/// Every entry of `name` with its policies, for `eksgate import`: at most
/// `limit` entries are read in detail.
pub(super) async fn read_all_entries(
    c: &Clients,
    name: &str,
    limit: usize,
) -> Result<Vec<LiveEntry>, ProviderError> {
    let listed = list_entries(c, name).await?;
    let mut out = Vec::new();
    for arn in listed.into_iter().take(limit) {
        let policies = match list_policies(c, name, &arn).await {
            Ok(p) => p,
            Err(e) if code_of(&e) == Some("ResourceNotFoundException") => continue,
            Err(e) => return Err(e),
        };
        out.push(LiveEntry {
            principal_arn: arn,
            kubernetes_groups: Vec::new(),
            policies,
        });
    }
    Ok(out)
}

/// One `UpdateClusterConfig` with `accessConfig { authenticationMode }`.
pub(super) async fn update_access_config(
    c: &Clients,
    name: &str,
    mode: &AuthenticationMode,
) -> Result<UpdateStart, ProviderError> {
    let cfg = UpdateAccessConfigRequest::builder()
        .authentication_mode(SdkMode::from(mode.as_str()))
        .build();
    let sent = c
        .eks
        .update_cluster_config()
        .name(name)
        .access_config(cfg)
        .client_request_token(request_token())
        .send()
        .await
        .map(|out| out.update().and_then(|u| u.id()).map(str::to_string));
    update_started(c, name, sent).await
}
