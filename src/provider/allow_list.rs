//! The AWS calls of owning the allow-list: which TCP 443 rules of a group
//! are exact (443–443) and which carry eksgate's description, managed prefix
//! lists (`DescribeManagedPrefixLists` for their size and family,
//! `GetManagedPrefixListEntries`, every page, for their entries), and the
//! revocation of rules by id (`DescribeSecurityGroupRules`, then
//! `RevokeSecurityGroupIngress` with `SecurityGroupRuleIds`).
//!
//! Only `aws` calls into this file; like it, it makes single calls (or one
//! paged listing) and does not orchestrate.

use std::collections::BTreeSet;

use ipnet::IpNet;

use super::clients::Clients;
use super::paging;
use super::{ProviderError, RevokeOutcome};
use crate::desired::AccessSource;
use crate::live::{is_managed_description, LivePrefixList};
use crate::set::SortedSet;

/// The sources of the exact TCP 443–443 inbound rules of `group`, and those
/// of them whose rule carries eksgate's description.
pub(super) fn exact_https(
    group: &aws_sdk_ec2::types::SecurityGroup,
) -> (SortedSet<AccessSource>, SortedSet<AccessSource>) {
    let (mut exact, mut managed) = (Vec::new(), Vec::new());
    for p in group.ip_permissions() {
        let tcp = matches!(p.ip_protocol(), Some("tcp" | "6"));
        if !(tcp && p.from_port() == Some(443) && p.to_port() == Some(443)) {
            continue;
        }
        let mut note = |source: AccessSource, description: Option<&str>| {
            if description.is_some_and(is_managed_description) {
                managed.push(source.clone());
            }
            exact.push(source);
        };
        for r in p.ip_ranges() {
            if let Some(n) = r.cidr_ip().and_then(|c| c.parse::<IpNet>().ok()) {
                note(AccessSource::Cidr(n.trunc()), r.description());
            }
        }
        for r in p.ipv6_ranges() {
            if let Some(n) = r.cidr_ipv6().and_then(|c| c.parse::<IpNet>().ok()) {
                note(AccessSource::Cidr(n.trunc()), r.description());
            }
        }
        for g in p.user_id_group_pairs() {
            if let Some(id) = g.group_id() {
                note(AccessSource::SecurityGroup(id.to_string()), g.description());
            }
        }
        for l in p.prefix_list_ids() {
            if let Some(id) = l.prefix_list_id() {
                note(AccessSource::PrefixList(id.to_string()), l.description());
            }
        }
    }
    (exact.into(), managed.into())
}

/// One managed prefix list: its size and family, then its entries; `None`
/// when EC2 lists no such list. The fleet read decides which lists and how
/// many at once.
pub(super) async fn read_prefix_list(
    c: &Clients,
    id: &str,
) -> Result<Option<LivePrefixList>, ProviderError> {
    Ok(match describe_prefix_list(c, id).await? {
        Some((max_entries, ipv6)) => Some(LivePrefixList {
            entries: prefix_list_entries(c, id).await?,
            max_entries,
            ipv6,
        }),
        None => None,
    })
}

/// `DescribeManagedPrefixLists` of one list: its `MaxEntries` and whether
/// it holds IPv6 blocks; `None` when EC2 lists no such list.
async fn describe_prefix_list(
    c: &Clients,
    id: &str,
) -> Result<Option<(Option<u32>, bool)>, ProviderError> {
    let resp = c
        .ec2
        .describe_managed_prefix_lists()
        .prefix_list_ids(id)
        .send()
        .await
        .map_err(|e| super::sdk_error::sdk_error(c, "DescribeManagedPrefixLists", e))?;
    Ok(resp
        .prefix_lists()
        .iter()
        .find(|l| l.prefix_list_id() == Some(id))
        .map(|l| {
            (
                l.max_entries().and_then(|m| u32::try_from(m).ok()),
                l.address_family() == Some("IPv6"),
            )
        }))
}

/// `GetManagedPrefixListEntries`, following `NextToken` to the last page.
async fn prefix_list_entries(c: &Clients, id: &str) -> Result<BTreeSet<IpNet>, ProviderError> {
    let mut out = BTreeSet::new();
    // A list holds at most 1000 entries; 100 a page is EC2's largest.
    let what = || format!("prefix list `{id}`");
    paging::follow(
        "GetManagedPrefixListEntries",
        what,
        100,
        |token| async move {
            c.ec2
                .get_managed_prefix_list_entries()
                .prefix_list_id(id)
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| super::sdk_error::sdk_error(c, "GetManagedPrefixListEntries", e))
        },
        |resp| {
            for e in resp.entries() {
                let net = e
                    .cidr()
                    .and_then(|c| c.parse::<IpNet>().ok())
                    .ok_or_else(|| ProviderError::Transport {
                        operation: "GetManagedPrefixListEntries".into(),
                        message: format!(
                            "prefix list `{id}` holds an entry that is not a CIDR block"
                        ),
                    })?;
                out.insert(net.trunc());
            }
            Ok(resp.next_token().map(str::to_string))
        },
    )
    .await?;
    Ok(out)
}

/// The rule source of one `DescribeSecurityGroupRules` answer.
fn rule_source(r: &aws_sdk_ec2::types::SecurityGroupRule) -> Option<AccessSource> {
    if let Some(c) = r.cidr_ipv4().or(r.cidr_ipv6()) {
        return c
            .parse::<IpNet>()
            .ok()
            .map(|n| AccessSource::Cidr(n.trunc()));
    }
    if let Some(id) = r.prefix_list_id() {
        return Some(AccessSource::PrefixList(id.to_string()));
    }
    r.referenced_group_info()
        .and_then(|g| g.group_id())
        .map(|id| AccessSource::SecurityGroup(id.to_string()))
}

/// Revokes the exact TCP 443–443 inbound rules of `group_id` from
/// `sources`: the group's rules are listed (`DescribeSecurityGroupRules`,
/// every page) just before the call, so only rules that are there now, and
/// only inbound TCP 443–443 ones, are named by id. Nothing else can be
/// revoked: the group's reference to itself is never named. EC2 refuses the
/// whole call when one id is gone (`InvalidSecurityGroupRuleId.NotFound`,
/// someone else revoked it meanwhile, or a retried call took effect): then
/// the rules are listed again, at most three times.
pub(super) async fn revoke_https_ingress(
    c: &Clients,
    group_id: &str,
    sources: &SortedSet<AccessSource>,
) -> Result<RevokeOutcome, ProviderError> {
    let mut revoked_before = false;
    for round in 0..3 {
        let ids = exact_rule_ids(c, group_id, sources).await?;
        if ids.is_empty() {
            return Ok(if revoked_before {
                RevokeOutcome::Revoked(Vec::new())
            } else {
                RevokeOutcome::AlreadyGone
            });
        }
        let result = c
            .ec2
            .revoke_security_group_ingress()
            .group_id(group_id)
            .set_security_group_rule_ids(Some(ids.clone()))
            .send()
            .await;
        match result {
            Ok(_) => return Ok(RevokeOutcome::Revoked(ids)),
            Err(e) => {
                let err = super::sdk_error::sdk_error(c, "RevokeSecurityGroupIngress", e);
                let gone = matches!(&err, ProviderError::Aws { code, .. }
                    if code == "InvalidSecurityGroupRuleId.NotFound");
                if !gone || round == 2 {
                    return Err(err);
                }
                revoked_before = true;
            }
        }
    }
    Ok(RevokeOutcome::AlreadyGone)
}

/// The ids of the inbound TCP 443–443 rules of `group_id` from `sources`.
async fn exact_rule_ids(
    c: &Clients,
    group_id: &str,
    sources: &SortedSet<AccessSource>,
) -> Result<Vec<String>, ProviderError> {
    let own = AccessSource::SecurityGroup(group_id.to_string());
    let mut ids = Vec::new();
    let what = || format!("the rules of `{group_id}`");
    paging::follow(
        "DescribeSecurityGroupRules",
        what,
        100,
        |token| async move {
            c.ec2
                .describe_security_group_rules()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("group-id")
                        .values(group_id)
                        .build(),
                )
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| super::sdk_error::sdk_error(c, "DescribeSecurityGroupRules", e))
        },
        |resp| {
            for r in resp.security_group_rules() {
                let exact = r.is_egress() == Some(false)
                    && matches!(r.ip_protocol(), Some("tcp" | "6"))
                    && r.from_port() == Some(443)
                    && r.to_port() == Some(443)
                    && r.group_id() == Some(group_id);
                let Some(source) = rule_source(r).filter(|s| exact && *s != own) else {
                    continue;
                };
                if sources.contains(&source) {
                    if let Some(id) = r.security_group_rule_id() {
                        ids.push(id.to_string());
                    }
                }
            }
            Ok(resp.next_token().map(str::to_string))
        },
    )
    .await?;
    Ok(ids)
}
