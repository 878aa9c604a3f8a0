//! Owning the allow-list: the planner's part of
//! `private_access_from_exclusive` and of managed prefix lists.
//!
//! - [`expand`] turns the prefix lists of `public_access_cidrs` into their
//!   CIDRs (as read from EC2), so the endpoint steps send blocks and a list
//!   whose entries changed shows as a CIDR difference; a list EC2 does not
//!   know, or an expansion past EKS's 40 blocks, blocks the cluster.
//! - [`revocations`] decides, per cluster security group, which exact TCP
//!   443–443 rules no cluster sharing the group declares, and builds the one
//!   step that revokes them: after the step that adds the new sources and
//!   after the last endpoint change of every cluster using the group, marked
//!   a lockout risk when a private-only cluster would be left with no 443
//!   source at all. Rules on other ports or protocols (`-1` included), the
//!   group's reference to itself and outbound rules never become candidates:
//!   only `LiveSecurityGroup::exact_https` is looked at.
//!
//! Pure functions over `Desired` and `Live`; the planner calls them.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::desired::{AccessSource, ClusterKey, Desired, DesiredCluster};
use crate::endpoint::{PublicCidr, PublicCidrs};
use crate::live::{Live, LiveSecurityGroup, PrefixListKey, SecurityGroupKey};
use crate::set::SortedSet;
use crate::text::join_and;

use super::{fingerprint_of, Action, Finding, FindingCode, Severity, Step};

/// EKS's limit of `publicAccessCidrs` blocks per cluster (not adjustable).
const MAX_PUBLIC_CIDRS: usize = 40;

/// Finds prefix list `id` by the account and region it is read in,
/// falling back to region and id (ids are unique in a region whichever
/// account read them).
pub(super) fn find_list<'a>(
    live: &'a Live,
    account: &Option<String>,
    region: &str,
    id: &str,
) -> Option<&'a Option<crate::live::LivePrefixList>> {
    let key = PrefixListKey {
        account: account.clone(),
        region: region.to_string(),
        id: id.to_string(),
    };
    live.prefix_lists.get(&key).or_else(|| {
        live.prefix_lists
            .iter()
            .find(|(k, _)| k.region == key.region && k.id == key.id)
            .map(|(_, v)| v)
    })
}

/// The desired state with every prefix list of `public_access_cidrs`
/// replaced by its entries, and the findings that block clusters whose lists
/// could not be expanded or expand past the limit.
/// Borrows the desired state when no cluster has a list to expand, so a
/// large fleet's manifests are not copied for nothing.
pub fn expand<'d>(desired: &'d Desired, live: &Live) -> (Cow<'d, Desired>, Vec<Finding>) {
    let expands =
        |c: &DesiredCluster| !c.public_access_prefix_lists.is_empty() && c.endpoint.public_access;
    if !desired.clusters.iter().any(expands) {
        let findings = desired
            .clusters
            .iter()
            .filter_map(|c| unknown_source_lists(c, live))
            .collect();
        return (Cow::Borrowed(desired), findings);
    }
    let mut out = desired.clone();
    let mut findings = Vec::new();
    for c in &mut out.clusters {
        if let Some(f) = unknown_source_lists(c, live) {
            findings.push(f);
        }
        if c.public_access_prefix_lists.is_empty() || !c.endpoint.public_access {
            continue;
        }
        let mut cidrs: PublicCidrs = c.endpoint.public_access_cidrs.clone().unwrap_or_default();
        let mut missing = Vec::new();
        for id in &c.public_access_prefix_lists {
            match find_list(live, &c.key.account, &c.key.region, id) {
                Some(Some(list)) => {
                    cidrs.extend(list.entries.iter().map(|n| PublicCidr::Net(n.trunc())))
                }
                Some(None) => missing.push(format!("`{id}`")),
                // Not read: the cluster itself was not found or not read,
                // which blocks it already.
                None => {}
            }
        }
        let block = |code, message, hint: &str| Finding {
            cluster: c.key.clone(),
            code,
            severity: Severity::Block,
            message,
            hint: Some(hint.to_string()),
        };
        if !missing.is_empty() {
            findings.push(block(
                FindingCode::PrefixListNotFound,
                format!(
                    "`public_access_cidrs` of `{}` names {}, which EC2 does not know in region `{}`",
                    c.key,
                    join_and(&missing),
                    c.key.region
                ),
                "check the id and the region; a prefix list shared from another account must be shared with this one (AWS RAM)",
            ));
            continue;
        }
        if cidrs.len() > MAX_PUBLIC_CIDRS {
            let lists: Vec<String> = c
                .public_access_prefix_lists
                .iter()
                .map(|id| format!("`{id}`"))
                .collect();
            findings.push(block(
                FindingCode::PublicAccessCidrsLimit,
                format!(
                    "`public_access_cidrs` of `{}` expands to {} blocks with the prefix {} {}, past EKS's limit of {MAX_PUBLIC_CIDRS}",
                    c.key,
                    cidrs.len(),
                    if lists.len() == 1 { "list" } else { "lists" },
                    join_and(&lists),
                ),
                "shorten the prefix lists or merge neighbouring blocks; EKS refuses more than 40 public CIDRs and the limit cannot be raised",
            ));
            continue;
        }
        c.endpoint.public_access_cidrs = Some(cidrs);
    }
    (Cow::Owned(out), findings)
}

/// The finding for prefix lists of `private_access_from` that EC2 does not
/// know: the rule referencing them would be refused
/// (`InvalidPrefixListID.NotFound`).
fn unknown_source_lists(c: &DesiredCluster, live: &Live) -> Option<Finding> {
    if !c.endpoint.private_access {
        return None;
    }
    let missing: Vec<String> = c
        .private_access_from
        .iter()
        .filter_map(|s| match s {
            AccessSource::PrefixList(id) => Some(id),
            _ => None,
        })
        .filter(|id| {
            matches!(
                find_list(live, &c.key.account, &c.key.region, id),
                Some(None)
            )
        })
        .map(|id| format!("`{id}`"))
        .collect();
    (!missing.is_empty()).then(|| Finding {
        cluster: c.key.clone(),
        code: FindingCode::PrefixListNotFound,
        severity: Severity::Block,
        message: format!(
            "`private_access_from` of `{}` names {}, which EC2 does not know in region `{}`",
            c.key,
            join_and(&missing),
            c.key.region
        ),
        hint: Some(
            "check the id and the region; a prefix list shared from another account must be shared with this one (AWS RAM)"
                .to_string(),
        ),
    })
}

/// The inbound rules group `g` of `region` holds, as EC2 counts them
/// against its quota: a rule that references a prefix list counts as
/// [`list_rules`] says, where the group's read counted it as one rule of
/// each family. `None` when the group's rules were not read.
pub fn held_rules(
    g: &crate::live::LiveSecurityGroup,
    live: &Live,
    account: &Option<String>,
    region: &str,
) -> Option<crate::live::RuleCount> {
    let mut n = g.inbound_rules?;
    for id in &g.inbound_prefix_lists {
        let weight = list_rules(live, account, region, id);
        n.ipv4 = n.ipv4.saturating_sub(1) + weight.ipv4;
        n.ipv6 = n.ipv6.saturating_sub(1) + weight.ipv6;
    }
    Some(n)
}

/// The inbound rules `add` would add to a group of `region`, as EC2 counts
/// them: a prefix list as [`list_rules`] says, everything else as
/// [`RuleCount::of`] does.
pub fn rule_count(
    add: &SortedSet<AccessSource>,
    live: &Live,
    account: &Option<String>,
    region: &str,
) -> crate::live::RuleCount {
    let mut n = crate::live::RuleCount::of(
        add.iter()
            .filter(|s| !matches!(s, AccessSource::PrefixList(_))),
    );
    for s in add {
        if let AccessSource::PrefixList(id) = s {
            let weight = list_rules(live, account, region, id);
            n.ipv4 += weight.ipv4;
            n.ipv6 += weight.ipv6;
        }
    }
    n
}

/// The inbound rules one rule that references prefix list `id` counts for:
/// a customer-managed list's `MaxEntries` in its address family (VPC user
/// guide, "Quotas": the maximum number of entries counts against the
/// quota), once the list was read; one of each family otherwise, as for a
/// group reference.
fn list_rules(
    live: &Live,
    account: &Option<String>,
    region: &str,
    id: &str,
) -> crate::live::RuleCount {
    match find_list(live, account, region, id) {
        Some(Some(crate::live::LivePrefixList {
            max_entries: Some(m),
            ipv6: true,
            ..
        })) => crate::live::RuleCount { ipv4: 0, ipv6: *m },
        Some(Some(crate::live::LivePrefixList {
            max_entries: Some(m),
            ..
        })) => crate::live::RuleCount { ipv4: *m, ipv6: 0 },
        _ => crate::live::RuleCount { ipv4: 1, ipv6: 1 },
    }
}

/// One cluster that uses a cluster security group, as the planner sees it.
pub struct GroupUser<'a> {
    pub key: &'a ClusterKey,
    pub group: SecurityGroupKey,
    pub live: &'a LiveSecurityGroup,
    /// `private_access_from`: kept whatever else is asked.
    pub declared: &'a SortedSet<AccessSource>,
    /// The cluster is planned (not blocked) and owns its allow-list.
    pub exclusive: bool,
    pub blocked: bool,
    /// The cluster ends with the public endpoint off and the private on.
    pub ends_private_only: bool,
    /// The id of its last endpoint step, when it has endpoint steps.
    pub last_endpoint: Option<String>,
    pub role_arn: Option<&'a str>,
    pub wave: u32,
}

/// A planned revocation: its step and the clusters that list it.
pub struct Revocation<'a> {
    pub step: Step,
    pub clusters: Vec<&'a ClusterKey>,
}

/// The revocation step of each cluster security group that some planned,
/// exclusive cluster uses and that holds exact TCP 443 rules from sources
/// none of its clusters declares. `adds` are the ingress steps of the plan,
/// by group: a revocation waits for them, and their sources count as present.
pub fn revocations<'a>(
    users: &[GroupUser<'a>],
    adds: &BTreeMap<SecurityGroupKey, Step>,
    id_prefix: impl Fn(&Option<String>, &str) -> String,
) -> BTreeMap<SecurityGroupKey, Revocation<'a>> {
    let mut by_group: BTreeMap<&SecurityGroupKey, Vec<&GroupUser<'a>>> = BTreeMap::new();
    for u in users {
        by_group.entry(&u.group).or_default().push(u);
    }
    let mut out = BTreeMap::new();
    for (group, us) in by_group {
        if !us.iter().any(|u| u.exclusive && !u.blocked) {
            continue;
        }
        let live = us[0].live;
        // A source any cluster of the group declares stays, blocked or not.
        let declared: BTreeSet<&AccessSource> = us.iter().flat_map(|u| u.declared.iter()).collect();
        let own = AccessSource::SecurityGroup(group.group_id.clone());
        let revoke: SortedSet<AccessSource> = live
            .exact_https
            .iter()
            .filter(|s| **s != own && !declared.contains(s))
            .cloned()
            .collect();
        if revoke.is_empty() {
            continue;
        }
        let add = adds.get(group);
        let mut left: BTreeSet<&AccessSource> = live.https_ingress.iter().collect();
        if let Some(Step {
            action: Action::HttpsIngress { add, .. },
            ..
        }) = add
        {
            left.extend(add.iter());
        }
        left.retain(|s| **s != own && !revoke.contains(*s));
        let planned: Vec<&&GroupUser> = us.iter().filter(|u| !u.blocked).collect();
        let lockout_risk = left.is_empty() && planned.iter().any(|u| u.ends_private_only);
        let mut depends_on: Vec<String> = add.iter().map(|s| s.id.clone()).collect();
        depends_on.extend(planned.iter().filter_map(|u| u.last_endpoint.clone()));
        let names: Vec<String> = planned
            .iter()
            .map(|u| format!("`{}`", u.key.name))
            .collect();
        let mut waits = Vec::new();
        if add.is_some() {
            waits.push("the new sources to be let in");
        }
        if planned.iter().any(|u| u.last_endpoint.is_some()) {
            waits.push("the endpoint change to finish");
        }
        let mut reason = format!(
            "{} {} `private_access_from_exclusive`: TCP 443 rules from sources the manifest does not declare are revoked",
            join_and(&names),
            if names.len() == 1 { "sets" } else { "set" },
        );
        if !waits.is_empty() {
            reason.push_str(&format!("; it waits for {}", join_and(&waits)));
        }
        let step = Step {
            id: format!(
                "{}/{}/https_revoke",
                id_prefix(&group.account, &group.region),
                group.group_id
            ),
            action: Action::HttpsRevoke {
                present: live.https_ingress.clone(),
                revoke,
            },
            account: group.account.clone(),
            region: group.region.clone(),
            role_arn: planned.first().and_then(|u| u.role_arn).map(Arc::from),
            cluster: None,
            vpc_id: None,
            security_group_id: Some(group.group_id.clone()),
            depends_on,
            reason: reason.into(),
            lockout_risk,
            fingerprint: fingerprint_of(live),
            wave: planned.iter().map(|u| u.wave).max().unwrap_or(0),
        };
        out.insert(
            group.clone(),
            Revocation {
                step,
                clusters: planned.iter().map(|u| u.key).collect(),
            },
        );
    }
    out
}

/// A revocation runs after every endpoint change of its clusters, so it
/// goes in the highest wave among them, never before what it waits for.
/// `emitted` is each step's place in the order the planner emitted them
/// (a topological one): steps are ordered by wave, then by that place.
pub fn settle_revoke_waves(steps: &mut [Step], emitted: &BTreeMap<String, usize>) {
    let waves: BTreeMap<String, u32> = steps.iter().map(|s| (s.id.clone(), s.wave)).collect();
    for s in steps.iter_mut() {
        if matches!(s.action, Action::HttpsRevoke { .. }) {
            let deps = s.depends_on.iter().filter_map(|d| waves.get(d)).copied();
            s.wave = deps.fold(s.wave, u32::max);
        }
    }
    let key = |s: &Step| (s.wave, emitted.get(&s.id).copied().unwrap_or(usize::MAX));
    if !steps.is_sorted_by_key(key) {
        steps.sort_by_key(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::{LivePrefixList, LiveSecurityGroup, RuleCount};

    #[test]
    fn a_referenced_list_counts_its_max_entries_in_its_family_once_read() {
        let list = |max_entries, ipv6| {
            Some(LivePrefixList {
                entries: Default::default(),
                max_entries,
                ipv6,
            })
        };
        let mut live = Live::default();
        for (id, read) in [
            ("pl-v4", list(Some(20), false)),
            ("pl-v6", list(Some(7), true)),
            ("pl-nomax", list(None, false)),
            ("pl-gone", None),
        ] {
            let key = PrefixListKey {
                account: None,
                region: "eu-west-1".into(),
                id: id.into(),
            };
            live.prefix_lists.insert(key, read);
        }
        // Two CIDR rules of each family, and one reference to each list
        // (and one more to `pl-v4`), each counted once in both families by
        // the read, plus one list that was not read.
        let g = LiveSecurityGroup {
            inbound_rules: Some(RuleCount { ipv4: 8, ipv6: 8 }),
            inbound_prefix_lists: [
                "pl-v4",
                "pl-v6",
                "pl-nomax",
                "pl-gone",
                "pl-v4",
                "pl-unread",
            ]
            .map(String::from)
            .to_vec(),
            ..LiveSecurityGroup::default()
        };
        // `pl-v4` twice as 20 IPv4 rules, `pl-v6` as 7 IPv6 rules; the
        // others stay one of each.
        assert_eq!(
            held_rules(&g, &live, &None, "eu-west-1"),
            Some(RuleCount {
                ipv4: 8 - 3 + 40,
                ipv6: 8 - 3 + 7,
            })
        );
        let unread = LiveSecurityGroup {
            inbound_prefix_lists: vec!["pl-v4".into()],
            ..LiveSecurityGroup::default()
        };
        assert_eq!(held_rules(&unread, &live, &None, "eu-west-1"), None);
    }
}
