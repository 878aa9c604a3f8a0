//! The EC2 operations of owning the allow-list: rules by id
//! (`DescribeSecurityGroupRules`, `RevokeSecurityGroupIngress` by
//! `SecurityGroupRuleIds` or by `IpPermissions`) and managed prefix lists
//! (`DescribeManagedPrefixLists`, `GetManagedPrefixListEntries`,
//! `ModifyManagedPrefixList`), plus the parsing of `IpPermissions` that
//! `AuthorizeSecurityGroupIngress` shares.
//!
//! Shapes are the `ec2` 2016-11-15 service model's (botocore
//! `botocore/data/ec2/2016-11-15/service-2.json`): `SecurityGroupRule`
//! (`securityGroupRuleSet`), `RevokeSecurityGroupIngressResult` (`return`,
//! `unknownIpPermissionSet`, `revokedSecurityGroupRuleSet`),
//! `ManagedPrefixList` (`prefixListSet`), `PrefixListEntry` (`entrySet`),
//! with `NextToken` paging and `MaxResults` of 5–1000 for rules and 1–100
//! for prefix lists. The model does not list EC2's error codes; those below
//! are the ones EC2 answers (EC2 API reference, "Error codes"):
//! `InvalidSecurityGroupRuleId.NotFound` / `.Malformed`,
//! `InvalidPermission.NotFound` ("The specified rule does not exist in this
//! security group", as reported in cloud-custodian/cloud-custodian#6099),
//! `InvalidPrefixListID.NotFound` ("The prefix list ID 'pl-…' does not
//! exist", as reported in aws-cloudformation/rain#308),
//! `InvalidPrefixListId.Malformed`, `PrefixListVersionMismatch`.
//!
//! Like `ec2`, this module answers one request against the state; it does
//! not schedule or fault anything.

use std::fmt::Write as _;

use ipnet::IpNet;
use quick_xml::escape::escape;
use serde::Serialize;
use tokio::time::Instant;

use super::ec2::{group_not_found, missing, select_ids, Params};
use super::protocol::AwsError;
use super::state::{Event, Region, RegionKey, Rule, RuleSource, State};
use super::world::PrefixListDef;

/// A customer-managed prefix list.
#[derive(Clone, Debug, Serialize)]
pub struct PrefixList {
    pub id: String,
    pub name: String,
    pub owner: String,
    /// `IPv4` or `IPv6`, from its first entry.
    pub address_family: String,
    pub max_entries: u32,
    pub version: u64,
    /// (cidr, description), in the order they were added.
    pub entries: Vec<(IpNet, Option<String>)>,
}

impl PrefixList {
    pub fn from_def(d: &PrefixListDef, owner: &str) -> PrefixList {
        let entries: Vec<(IpNet, Option<String>)> = d
            .entries
            .iter()
            .filter_map(|e| e.parse::<IpNet>().ok())
            .map(|n| (n.trunc(), None))
            .collect();
        let family = match entries.first() {
            Some((IpNet::V6(_), _)) => "IPv6",
            _ => "IPv4",
        };
        PrefixList {
            id: d.id.clone(),
            name: d.name.clone().unwrap_or_else(|| d.id.clone()),
            owner: owner.to_string(),
            address_family: family.to_string(),
            max_entries: d.max_entries.unwrap_or(entries.len().max(1) as u32),
            version: 1,
            entries,
        }
    }
}

/// The inbound rules EC2 counts against a group's quota for `sources`:
/// (IPv4, IPv6). A CIDR block counts once in its family, a group reference
/// once in each, and a customer-managed prefix list as its `max_entries` in
/// its family, however many entries it holds now ("Quotas" of the VPC user
/// guide: "the maximum number of entries for the prefix lists counts against
/// the quota").
pub fn weighted_counts(region: Option<&Region>, sources: Vec<&RuleSource>) -> (u32, u32) {
    let (mut v4, mut v6) = (0, 0);
    for s in sources {
        match s {
            RuleSource::PrefixList(id) => match region.and_then(|r| r.prefix_lists.get(id)) {
                Some(l) if l.address_family == "IPv6" => v6 += l.max_entries,
                Some(l) => v4 += l.max_entries,
                None => {
                    v4 += 1;
                    v6 += 1;
                }
            },
            other => {
                let (a, b) = super::state::rule_counts([other]);
                v4 += a;
                v6 += b;
            }
        }
    }
    (v4, v6)
}

/// What is wrong with a `[[prefix_list]]` of a world, if anything.
pub fn check_prefix_list(d: &PrefixListDef) -> Option<String> {
    if !d.id.starts_with("pl-") {
        return Some(format!(
            "prefix list `{}` must have an id starting `pl-`",
            d.id
        ));
    }
    if let Some(bad) = d.entries.iter().find(|e| e.parse::<IpNet>().is_err()) {
        return Some(format!(
            "prefix list `{}` has entry `{bad}`, which is not a CIDR block",
            d.id
        ));
    }
    let families: std::collections::BTreeSet<bool> = d
        .entries
        .iter()
        .filter_map(|e| e.parse::<IpNet>().ok())
        .map(|n| matches!(n, IpNet::V4(_)))
        .collect();
    if families.len() > 1 {
        return Some(format!(
            "prefix list `{}` mixes IPv4 and IPv6 entries; EC2 lists hold one address family",
            d.id
        ));
    }
    match d.max_entries {
        Some(m) if (m as usize) < d.entries.len() => Some(format!(
            "prefix list `{}` has {} entries, more than its `max_entries` of {m}",
            d.id,
            d.entries.len()
        )),
        _ => None,
    }
}

fn esc(s: &str) -> String {
    escape(s).into_owned()
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterValue", message)
}

fn list_not_found(id: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidPrefixListID.NotFound",
        format!("The prefix list ID '{id}' does not exist"),
    )
}

fn rule_not_found(id: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidSecurityGroupRuleId.NotFound",
        format!("The security group rule ID '{id}' does not exist"),
    )
}

fn is_hex_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// `MaxResults` within `min..=max` (absent: `max`), and the offset in
/// `NextToken` (a token this emulator handed out).
fn page(p: &Params, min: u32, max: u32) -> Result<(usize, usize), AwsError> {
    let size = match p.get("MaxResults") {
        None => max,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                return Err(invalid(format!(
                    "Value ( {v} ) for parameter maxResults is invalid. Parameter must be between {min} and {max}."
                )))
            }
        },
    };
    let start = match p.get("NextToken") {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| {
            AwsError::new(
                400,
                "InvalidPaginationToken",
                format!("Invalid pagination token: {t}"),
            )
        })?,
    };
    Ok((size as usize, start))
}

fn next_token(start: usize, size: usize, total: usize) -> String {
    if start + size < total {
        format!("<nextToken>{}</nextToken>", start + size)
    } else {
        String::new()
    }
}

/// One parsed permission entry: protocol, ports, source and description.
pub type Perm = (String, i32, i32, RuleSource, Option<String>);

/// The `IpPermissions.N` of a request, one entry per source, as
/// `AuthorizeSecurityGroupIngress` and `RevokeSecurityGroupIngress` take
/// them. Groups and prefix lists must exist in `region`.
pub fn permissions(p: &Params, region: Option<&Region>) -> Result<Vec<Perm>, AwsError> {
    let mut out = Vec::new();
    for i in p.indices("IpPermissions") {
        let field = |f: &str| p.get(&format!("IpPermissions.{i}.{f}"));
        let proto = field("IpProtocol").ok_or_else(|| missing("IpPermissions.IpProtocol"))?;
        let proto = match proto.to_ascii_lowercase().as_str() {
            "6" | "tcp" => "tcp".to_string(),
            "17" | "udp" => "udp".to_string(),
            "-1" | "all" => "-1".to_string(),
            "1" | "icmp" => "icmp".to_string(),
            other => {
                return Err(invalid(format!(
                    "Invalid value '{other}' for IP protocol. Unknown protocol."
                )))
            }
        };
        let port = |f: &str| -> Result<i32, AwsError> {
            match field(f) {
                Some(v) => v
                    .parse()
                    .map_err(|_| invalid(format!("Invalid value '{v}' for {f}"))),
                None if proto == "-1" => Ok(-1),
                None => Err(missing(&format!("IpPermissions.{f}"))),
            }
        };
        let (from, to) = (port("FromPort")?, port("ToPort")?);
        let list = |name: &str, key: &str| -> Vec<(String, Option<String>)> {
            p.indices(&format!("IpPermissions.{i}.{name}"))
                .into_iter()
                .filter_map(|j| {
                    let v = p.get(&format!("IpPermissions.{i}.{name}.{j}.{key}"))?;
                    let d = p.get(&format!("IpPermissions.{i}.{name}.{j}.Description"));
                    Some((v.to_string(), d.map(str::to_string)))
                })
                .collect()
        };
        let mut sources = Vec::new();
        for (c, d) in list("IpRanges", "CidrIp")
            .into_iter()
            .chain(list("Ipv6Ranges", "CidrIpv6"))
        {
            let net = c
                .parse::<IpNet>()
                .map_err(|_| invalid(format!("CIDR block {c} is malformed")))?;
            sources.push((RuleSource::Cidr(net.trunc()), d));
        }
        for (g, d) in list("Groups", "GroupId") {
            if !region.is_some_and(|r| r.security_groups.contains_key(&g)) {
                return Err(group_not_found(&g));
            }
            sources.push((RuleSource::Group(g), d));
        }
        for (l, d) in list("PrefixListIds", "PrefixListId") {
            if !is_hex_id(&l, "pl-") {
                return Err(AwsError::new(
                    400,
                    "InvalidPrefixListId.Malformed",
                    format!("Invalid id: \"{l}\" (expecting \"pl-...\")"),
                ));
            }
            if !region.is_some_and(|r| r.prefix_lists.contains_key(&l)) {
                return Err(list_not_found(&l));
            }
            sources.push((RuleSource::PrefixList(l), d));
        }
        if sources.is_empty() {
            return Err(missing(
                "IpPermissions.IpRanges, Ipv6Ranges, Groups or PrefixListIds",
            ));
        }
        for (s, d) in sources {
            out.push((proto.clone(), from, to, s, d));
        }
    }
    Ok(out)
}

/// One `SecurityGroupRule` (or `RevokedSecurityGroupRule`, which names the
/// referenced group `referencedGroupId`) item.
fn rule_xml(out: &mut String, owner: &str, group: &str, r: &Rule, egress: bool, revoked: bool) {
    let _ = write!(
        out,
        "<item><securityGroupRuleId>{}</securityGroupRuleId><groupId>{}</groupId>",
        esc(&r.id),
        esc(group)
    );
    if !revoked {
        let _ = write!(out, "<groupOwnerId>{}</groupOwnerId>", esc(owner));
    }
    let _ = write!(
        out,
        "<isEgress>{egress}</isEgress><ipProtocol>{}</ipProtocol><fromPort>{}</fromPort><toPort>{}</toPort>",
        esc(&r.protocol),
        r.from_port,
        r.to_port
    );
    match &r.source {
        RuleSource::Cidr(IpNet::V4(n)) => {
            let _ = write!(out, "<cidrIpv4>{n}</cidrIpv4>");
        }
        RuleSource::Cidr(IpNet::V6(n)) => {
            let _ = write!(out, "<cidrIpv6>{n}</cidrIpv6>");
        }
        RuleSource::PrefixList(l) => {
            let _ = write!(out, "<prefixListId>{}</prefixListId>", esc(l));
        }
        RuleSource::Group(g) if revoked => {
            let _ = write!(out, "<referencedGroupId>{}</referencedGroupId>", esc(g));
        }
        RuleSource::Group(g) => {
            let _ = write!(
                out,
                "<referencedGroupInfo><groupId>{}</groupId><userId>{}</userId></referencedGroupInfo>",
                esc(g),
                esc(owner)
            );
        }
    }
    if let Some(d) = &r.description {
        let _ = write!(out, "<description>{}</description>", esc(d));
    }
    if !revoked {
        let _ = write!(
            out,
            "<securityGroupRuleArn>arn:aws:ec2:::security-group-rule/{}</securityGroupRuleArn><tagSet/>",
            esc(&r.id)
        );
    }
    out.push_str("</item>");
}

/// The outbound rule every group holds: all traffic to `0.0.0.0/0`.
fn egress_rule(id: &str) -> Rule {
    Rule {
        id: id.to_string(),
        protocol: "-1".into(),
        from_port: -1,
        to_port: -1,
        source: RuleSource::Cidr("0.0.0.0/0".parse().expect("a valid block")),
        description: None,
    }
}

/// `DescribeSecurityGroupRules`: every rule (inbound and outbound) of the
/// region's groups, narrowed by `SecurityGroupRuleId.N` and the `group-id`
/// and `security-group-rule-id` filters, in pages.
pub fn describe_security_group_rules(
    state: &State,
    key: &RegionKey,
    p: &Params,
) -> Result<String, AwsError> {
    let (size, start) = page(p, 5, 1000)?;
    let mut rules: Vec<(&str, Rule, bool)> = Vec::new();
    if let Some(region) = state.regions.get(key) {
        for g in region.security_groups.values() {
            for r in &g.ingress {
                rules.push((&g.id, r.clone(), false));
            }
            rules.push((&g.id, egress_rule(&g.egress_rule_id), true));
        }
    }
    let ids = p.list("SecurityGroupRuleId");
    if let Some(m) = ids
        .iter()
        .find(|id| !rules.iter().any(|(_, r, _)| &&r.id == id))
    {
        return Err(rule_not_found(m));
    }
    if !ids.is_empty() {
        rules.retain(|(_, r, _)| ids.contains(&r.id));
    }
    for (name, values) in p.filters() {
        match name.as_str() {
            "group-id" => rules.retain(|(g, _, _)| values.iter().any(|v| v == g)),
            "security-group-rule-id" => rules.retain(|(_, r, _)| values.contains(&r.id)),
            other => return Err(invalid(format!("The filter '{other}' is invalid"))),
        }
    }
    let mut out = String::from("<securityGroupRuleSet>");
    for (g, r, egress) in rules.iter().skip(start).take(size) {
        rule_xml(&mut out, &key.0, g, r, *egress, false);
    }
    out.push_str("</securityGroupRuleSet>");
    out.push_str(&next_token(start, size, rules.len()));
    Ok(out)
}

/// `RevokeSecurityGroupIngress`, by `SecurityGroupRuleId.N` (all or
/// nothing: one unknown id fails the call) or by `IpPermissions.N` (the
/// rules that match are revoked, the others come back in
/// `unknownIpPermissionSet`; none matching is `InvalidPermission.NotFound`).
pub fn revoke_ingress(
    state: &mut State,
    key: &RegionKey,
    p: &Params,
    now: Instant,
) -> Result<String, AwsError> {
    let group_id = p
        .get("GroupId")
        .ok_or_else(|| missing("GroupId"))?
        .to_string();
    let region = state.regions.get(key);
    let Some(group) = region.and_then(|r| r.security_groups.get(&group_id)) else {
        return Err(group_not_found(&group_id));
    };
    let ids = p.list("SecurityGroupRuleId");
    let has_perms = !p.indices("IpPermissions").is_empty();
    if !ids.is_empty() && has_perms {
        return Err(AwsError::new(
            400,
            "InvalidParameterCombination",
            "The parameter SecurityGroupRuleIds cannot be used with the parameter IpPermissions",
        ));
    }
    let mut unknown: Vec<Perm> = Vec::new();
    let doomed: Vec<String> = if !ids.is_empty() {
        for id in &ids {
            if !is_hex_id(id, "sgr-") {
                return Err(AwsError::new(
                    400,
                    "InvalidSecurityGroupRuleId.Malformed",
                    format!("Invalid id: \"{id}\" (expecting \"sgr-...\")"),
                ));
            }
            // An outbound rule's id is not an inbound rule of the group.
            if !group.ingress.iter().any(|r| &r.id == id) {
                return Err(rule_not_found(id));
            }
        }
        ids
    } else if has_perms {
        let perms = permissions(p, region)?;
        let mut found = Vec::new();
        for perm in perms {
            let (proto, from, to, src, _) = &perm;
            match group.ingress.iter().find(|r| {
                &r.protocol == proto && r.from_port == *from && r.to_port == *to && &r.source == src
            }) {
                Some(r) => found.push(r.id.clone()),
                None => unknown.push(perm),
            }
        }
        if found.is_empty() {
            return Err(AwsError::new(
                400,
                "InvalidPermission.NotFound",
                "The specified rule does not exist in this security group.",
            ));
        }
        found
    } else {
        return Err(missing("IpPermissions or SecurityGroupRuleIds"));
    };
    let mut removed = Vec::new();
    if let Some(g) = state
        .regions
        .get_mut(key)
        .and_then(|r| r.security_groups.get_mut(&group_id))
    {
        let (gone, kept): (Vec<Rule>, Vec<Rule>) =
            g.ingress.drain(..).partition(|r| doomed.contains(&r.id));
        g.ingress = kept;
        removed = gone;
    }
    let mut xml = String::from("<return>true</return>");
    if !unknown.is_empty() {
        xml.push_str("<unknownIpPermissionSet>");
        for (proto, from, to, src, _) in &unknown {
            let _ = write!(xml, "<item><ipProtocol>{}</ipProtocol>", esc(proto));
            if proto != "-1" {
                let _ = write!(xml, "<fromPort>{from}</fromPort><toPort>{to}</toPort>");
            }
            match src {
                RuleSource::Cidr(IpNet::V4(n)) => {
                    let _ = write!(
                        xml,
                        "<ipRanges><item><cidrIp>{n}</cidrIp></item></ipRanges>"
                    );
                }
                RuleSource::Cidr(IpNet::V6(n)) => {
                    let _ = write!(
                        xml,
                        "<ipv6Ranges><item><cidrIpv6>{n}</cidrIpv6></item></ipv6Ranges>"
                    );
                }
                RuleSource::Group(g) => {
                    let _ = write!(
                        xml,
                        "<groups><item><groupId>{}</groupId></item></groups>",
                        esc(g)
                    );
                }
                RuleSource::PrefixList(l) => {
                    let _ = write!(
                        xml,
                        "<prefixListIds><item><prefixListId>{}</prefixListId></item></prefixListIds>",
                        esc(l)
                    );
                }
            }
            xml.push_str("</item>");
        }
        xml.push_str("</unknownIpPermissionSet>");
    }
    xml.push_str("<revokedSecurityGroupRuleSet>");
    for r in &removed {
        rule_xml(&mut xml, &key.0, &group_id, r, false, true);
    }
    xml.push_str("</revokedSecurityGroupRuleSet>");
    state.record(
        now,
        Event::SecurityGroupRevoke {
            account: key.0.clone(),
            region: key.1.clone(),
            group_id,
            rules: removed
                .iter()
                .map(|r| super::state::RevokedRule {
                    id: r.id.clone(),
                    protocol: r.protocol.clone(),
                    from_port: r.from_port,
                    to_port: r.to_port,
                    source: r.source.to_string(),
                    egress: false,
                })
                .collect(),
        },
    );
    Ok(xml)
}

fn prefix_list_xml(out: &mut String, region: &str, l: &PrefixList, state: &str) {
    let _ = write!(
        out,
        "<item><prefixListId>{id}</prefixListId><addressFamily>{}</addressFamily><state>{state}</state><prefixListArn>arn:aws:ec2:{region}:{owner}:prefix-list/{id}</prefixListArn><prefixListName>{}</prefixListName><maxEntries>{}</maxEntries><version>{}</version><tagSet/><ownerId>{owner}</ownerId></item>",
        esc(&l.address_family),
        esc(&l.name),
        l.max_entries,
        l.version,
        id = esc(&l.id),
        owner = esc(&l.owner),
    );
}

/// `DescribeManagedPrefixLists`: the region's lists, narrowed by
/// `PrefixListId.N` and the `prefix-list-id`, `prefix-list-name` and
/// `owner-id` filters, in pages.
pub fn describe_managed_prefix_lists(
    state: &State,
    key: &RegionKey,
    p: &Params,
) -> Result<String, AwsError> {
    let (size, start) = page(p, 1, 100)?;
    let mut lists: Vec<&PrefixList> = state
        .regions
        .get(key)
        .map(|r| r.prefix_lists.values().collect())
        .unwrap_or_default();
    let ids = p.list("PrefixListId");
    select_ids(&mut lists, &ids, |l| &l.id, list_not_found)?;
    for (name, values) in p.filters() {
        match name.as_str() {
            "prefix-list-id" => lists.retain(|l| values.contains(&l.id)),
            "prefix-list-name" => lists.retain(|l| values.contains(&l.name)),
            "owner-id" => lists.retain(|l| values.contains(&l.owner)),
            other => return Err(invalid(format!("The filter '{other}' is invalid"))),
        }
    }
    let mut out = String::from("<prefixListSet>");
    for l in lists.iter().skip(start).take(size) {
        prefix_list_xml(&mut out, &key.1, l, "create-complete");
    }
    out.push_str("</prefixListSet>");
    out.push_str(&next_token(start, size, lists.len()));
    Ok(out)
}

fn the_list<'a>(state: &'a State, key: &RegionKey, p: &Params) -> Result<&'a PrefixList, AwsError> {
    let id = p
        .get("PrefixListId")
        .ok_or_else(|| missing("PrefixListId"))?;
    if !is_hex_id(id, "pl-") {
        return Err(AwsError::new(
            400,
            "InvalidPrefixListId.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"pl-...\")"),
        ));
    }
    state
        .regions
        .get(key)
        .and_then(|r| r.prefix_lists.get(id))
        .ok_or_else(|| list_not_found(id))
}

/// `GetManagedPrefixListEntries`: the entries of one list, in pages.
pub fn get_managed_prefix_list_entries(
    state: &State,
    key: &RegionKey,
    p: &Params,
) -> Result<String, AwsError> {
    let (size, start) = page(p, 1, 100)?;
    let list = the_list(state, key, p)?;
    let mut out = String::from("<entrySet>");
    for (cidr, d) in list.entries.iter().skip(start).take(size) {
        let _ = write!(out, "<item><cidr>{cidr}</cidr>");
        if let Some(d) = d {
            let _ = write!(out, "<description>{}</description>", esc(d));
        }
        out.push_str("</item>");
    }
    out.push_str("</entrySet>");
    out.push_str(&next_token(start, size, list.entries.len()));
    Ok(out)
}

/// The answer to an edit that would take list `id` past its `MaxEntries`.
///
/// Not confirmed against AWS: EC2's error codes are not in its service
/// model, and the API reference says only that a list holds at most
/// `MaxEntries` entries. The code is the one public clients of
/// `ModifyManagedPrefixList` handle (`PrefixListMaxEntriesExceeded`, beside
/// `PrefixListVersionMismatch`); the message is the emulator's own wording,
/// not AWS's.
fn max_entries_exceeded(id: &str, max: u32) -> AwsError {
    AwsError::new(
        400,
        "PrefixListMaxEntriesExceeded",
        format!("The prefix list {id} would exceed its maximum number of entries ({max})."),
    )
}

/// `ModifyManagedPrefixList`: `AddEntry.N.Cidr` (with `Description`) and
/// `RemoveEntry.N.Cidr`, checked against `CurrentVersion` when given and
/// refused as a whole when the list would hold more than its `max_entries`;
/// the version goes up by one.
pub fn modify_managed_prefix_list(
    state: &mut State,
    key: &RegionKey,
    p: &Params,
) -> Result<String, AwsError> {
    let list = the_list(state, key, p)?;
    if let Some(v) = p.get("CurrentVersion") {
        if v.parse::<u64>().ok() != Some(list.version) {
            return Err(AwsError::new(
                400,
                "PrefixListVersionMismatch",
                format!(
                    "The prefix list has the incorrect version number. The current version is {}.",
                    list.version
                ),
            ));
        }
    }
    let cidr = |f: String| -> Result<IpNet, AwsError> {
        f.parse::<IpNet>()
            .map(|n| n.trunc())
            .map_err(|_| invalid(format!("CIDR block {f} is malformed")))
    };
    let mut add = Vec::new();
    for i in p.indices("AddEntry") {
        if let Some(c) = p.get(&format!("AddEntry.{i}.Cidr")) {
            let d = p
                .get(&format!("AddEntry.{i}.Description"))
                .map(str::to_string);
            add.push((cidr(c.to_string())?, d));
        }
    }
    let mut remove = Vec::new();
    for i in p.indices("RemoveEntry") {
        if let Some(c) = p.get(&format!("RemoveEntry.{i}.Cidr")) {
            remove.push(cidr(c.to_string())?);
        }
    }
    let id = list.id.clone();
    let Some(list) = state
        .regions
        .get_mut(key)
        .and_then(|r| r.prefix_lists.get_mut(&id))
    else {
        return Err(list_not_found(&id));
    };
    let mut entries = list.entries.clone();
    entries.retain(|(n, _)| !remove.contains(n));
    for (n, d) in add {
        if !entries.iter().any(|(e, _)| *e == n) {
            entries.push((n, d));
        }
    }
    if entries.len() > list.max_entries as usize {
        return Err(max_entries_exceeded(&id, list.max_entries));
    }
    list.entries = entries;
    list.version += 1;
    let mut out = String::from("<prefixList>");
    let mut item = String::new();
    prefix_list_xml(&mut item, &key.1, list, "modify-complete");
    // The single `prefixList` is the item's content, not a set.
    out.push_str(
        item.strip_prefix("<item>")
            .and_then(|s| s.strip_suffix("</item>"))
            .unwrap_or(&item),
    );
    out.push_str("</prefixList>");
    Ok(out)
}
