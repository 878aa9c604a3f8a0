//! The EC2 Query-protocol operations eksgate uses: DescribeVpcs,
//! DescribeVpcAttribute, ModifyVpcAttribute, DescribeDhcpOptions,
//! DescribeSecurityGroups, AuthorizeSecurityGroupIngress, and the network
//! reads of `network` (DescribeNatGateways, DescribeRouteTables,
//! DescribeVpcPeeringConnections). Requests are
//! form-encoded (`Action=...&Version=2016-11-15&...`), answers are XML in the
//! `ec2` 2016-11-15 shapes, errors are `<Response><Errors><Error>`.

use std::fmt::Write as _;

use ipnet::IpNet;
use quick_xml::escape::escape;
use tokio::time::Instant;

use super::protocol::AwsError;
use super::state::{Event, RegionKey, Rule, RuleSource, State};

const XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// The operations this emulator answers; anything else is `InvalidAction`.
pub const ACTIONS: &[&str] = &[
    "DescribeVpcs",
    "DescribeVpcAttribute",
    "ModifyVpcAttribute",
    "DescribeDhcpOptions",
    "DescribeSecurityGroups",
    "AuthorizeSecurityGroupIngress",
    "DescribeNatGateways",
    "DescribeRouteTables",
    "DescribeVpcPeeringConnections",
    "RevokeSecurityGroupIngress",
    "DescribeSecurityGroupRules",
    "DescribeManagedPrefixLists",
    "GetManagedPrefixListEntries",
    "ModifyManagedPrefixList",
];

/// Form parameters of one request.
pub struct Params<'a>(pub &'a [(String, String)]);

impl Params<'_> {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str())
    }

    /// `Prefix.1`, `Prefix.2`, ... in index order.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let mut items: Vec<(u32, String)> = self
            .0
            .iter()
            .filter_map(|(k, v)| {
                let idx = k.strip_prefix(prefix)?.strip_prefix('.')?;
                Some((idx.parse().ok()?, v.clone()))
            })
            .collect();
        items.sort();
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// Indices N present under `Prefix.N.` (for lists of structures).
    pub fn indices(&self, prefix: &str) -> Vec<u32> {
        let mut idx: Vec<u32> = self
            .0
            .iter()
            .filter_map(|(k, _)| {
                let rest = k.strip_prefix(prefix)?.strip_prefix('.')?;
                rest.split('.').next()?.parse().ok()
            })
            .collect();
        idx.sort();
        idx.dedup();
        idx
    }

    /// `Filter.N.Name` / `Filter.N.Value.M`.
    pub fn filters(&self) -> Vec<(String, Vec<String>)> {
        self.indices("Filter")
            .into_iter()
            .filter_map(|i| {
                let name = self.get(&format!("Filter.{i}.Name"))?.to_string();
                Some((name, self.list(&format!("Filter.{i}.Value"))))
            })
            .collect()
    }
}

fn esc(s: &str) -> String {
    escape(s).into_owned()
}

fn wrap(action: &str, request_id: &str, inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{XMLNS}\"><requestId>{request_id}</requestId>{inner}</{action}Response>"
    )
}

/// EC2's error document.
pub fn error_xml(err: &AwsError, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>",
        esc(&err.code),
        esc(&err.message)
    )
}

pub(super) fn missing(name: &str) -> AwsError {
    AwsError::new(
        400,
        "MissingParameter",
        format!("The request must contain the parameter {name}"),
    )
}

fn vpc_not_found(id: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidVpcID.NotFound",
        format!("The vpc ID '{id}' does not exist"),
    )
}

pub(super) fn group_not_found(id: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidGroup.NotFound",
        format!("The security group '{id}' does not exist"),
    )
}

pub(super) fn bad_filter(name: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidParameterValue",
        format!("The filter '{name}' is invalid"),
    )
}

/// Keeps the items a `Describe*` request names by id (`ids`; none named:
/// all of them), or answers AWS's not-found error for the first id no item
/// has, as EC2 does for an explicit id list.
pub(super) fn select_ids<T>(
    items: &mut Vec<&T>,
    ids: &[String],
    id_of: impl Fn(&T) -> &str,
    not_found: impl FnOnce(&str) -> AwsError,
) -> Result<(), AwsError> {
    if let Some(missing) = ids
        .iter()
        .find(|id| !items.iter().any(|i| id_of(i) == id.as_str()))
    {
        return Err(not_found(missing));
    }
    if !ids.is_empty() {
        items.retain(|i| ids.iter().any(|id| id_of(i) == id.as_str()));
    }
    Ok(())
}

/// The target an action acts on, for the history.
pub fn target(action: &str, p: &Params) -> Option<String> {
    match action {
        "DescribeVpcAttribute" | "ModifyVpcAttribute" => p.get("VpcId").map(str::to_string),
        "AuthorizeSecurityGroupIngress" | "RevokeSecurityGroupIngress" => {
            p.get("GroupId").map(str::to_string)
        }
        "GetManagedPrefixListEntries" | "ModifyManagedPrefixList" => {
            p.get("PrefixListId").map(str::to_string)
        }
        "DescribeManagedPrefixLists" => {
            Some(p.list("PrefixListId").join(",")).filter(|s| !s.is_empty())
        }
        "DescribeVpcs" => Some(p.list("VpcId").join(",")).filter(|s| !s.is_empty()),
        "DescribeDhcpOptions" => Some(p.list("DhcpOptionsId").join(",")).filter(|s| !s.is_empty()),
        "DescribeSecurityGroups" => Some(p.list("GroupId").join(",")).filter(|s| !s.is_empty()),
        // The filtered listings name what they filter on.
        "DescribeNatGateways" | "DescribeRouteTables" | "DescribeVpcPeeringConnections" => Some(
            p.filters()
                .into_iter()
                .map(|(n, v)| format!("{n}={}", v.join(",")))
                .collect::<Vec<_>>()
                .join(";"),
        )
        .filter(|s| !s.is_empty()),
        "DescribeSecurityGroupRules" => p
            .filters()
            .into_iter()
            .find(|(name, _)| name == "group-id")
            .map(|(_, values)| values.join(","))
            .filter(|s| !s.is_empty()),
        _ => None,
    }
}

pub fn handle(
    state: &mut State,
    key: &RegionKey,
    action: &str,
    p: &Params,
    request_id: &str,
    now: Instant,
) -> Result<String, AwsError> {
    let inner = match action {
        "DescribeVpcs" => describe_vpcs(state, key, p)?,
        "DescribeVpcAttribute" => describe_vpc_attribute(state, key, p)?,
        "ModifyVpcAttribute" => modify_vpc_attribute(state, key, p, now)?,
        "DescribeDhcpOptions" => describe_dhcp_options(state, key, p)?,
        "DescribeSecurityGroups" => describe_security_groups(state, key, p)?,
        "AuthorizeSecurityGroupIngress" => authorize_ingress(state, key, p, now)?,
        "DescribeNatGateways" => super::network::describe_nat_gateways(state, key, p)?,
        "DescribeRouteTables" => super::network::describe_route_tables(state, key, p)?,
        "DescribeVpcPeeringConnections" => {
            super::network::describe_vpc_peering_connections(state, key, p)?
        }
        "RevokeSecurityGroupIngress" => super::allow_list::revoke_ingress(state, key, p, now)?,
        "DescribeSecurityGroupRules" => {
            super::allow_list::describe_security_group_rules(state, key, p)?
        }
        "DescribeManagedPrefixLists" => {
            super::allow_list::describe_managed_prefix_lists(state, key, p)?
        }
        "GetManagedPrefixListEntries" => {
            super::allow_list::get_managed_prefix_list_entries(state, key, p)?
        }
        "ModifyManagedPrefixList" => super::allow_list::modify_managed_prefix_list(state, key, p)?,
        other => {
            return Err(AwsError::new(
                400,
                "InvalidAction",
                format!("The action {other} is not valid for this web service."),
            ))
        }
    };
    Ok(wrap(action, request_id, &inner))
}

fn describe_vpcs(state: &State, key: &RegionKey, p: &Params) -> Result<String, AwsError> {
    let region = state.regions.get(key);
    let ids = p.list("VpcId");
    let mut vpcs: Vec<_> = region
        .map(|r| r.vpcs.values().collect())
        .unwrap_or_default();
    select_ids(&mut vpcs, &ids, |v| &v.id, vpc_not_found)?;
    for (name, values) in p.filters() {
        match name.as_str() {
            "vpc-id" => vpcs.retain(|v| values.contains(&v.id)),
            "dhcp-options-id" => vpcs.retain(|v| values.contains(&v.dhcp_options_id)),
            other => return Err(bad_filter(other)),
        }
    }
    let mut out = String::from("<vpcSet>");
    for v in vpcs {
        let mut blocks = String::from("<cidrBlockAssociationSet>");
        for (i, b) in std::iter::once(&v.cidr_block)
            .chain(&v.secondary_cidr_blocks)
            .enumerate()
        {
            let _ = write!(
                blocks,
                "<item><cidrBlock>{}</cidrBlock><associationId>vpc-cidr-assoc-{}{i:02}</associationId><cidrBlockState><state>associated</state></cidrBlockState></item>",
                esc(b),
                esc(v.id.trim_start_matches("vpc-"))
            );
        }
        blocks.push_str("</cidrBlockAssociationSet>");
        let _ = write!(
            out,
            "<item><vpcId>{}</vpcId><ownerId>{}</ownerId><state>available</state><cidrBlock>{}</cidrBlock>{blocks}<dhcpOptionsId>{}</dhcpOptionsId><instanceTenancy>default</instanceTenancy><isDefault>false</isDefault></item>",
            esc(&v.id), esc(&key.0), esc(&v.cidr_block), esc(&v.dhcp_options_id)
        );
    }
    out.push_str("</vpcSet>");
    Ok(out)
}

fn describe_vpc_attribute(state: &State, key: &RegionKey, p: &Params) -> Result<String, AwsError> {
    let id = p.get("VpcId").ok_or_else(|| missing("VpcId"))?;
    let attr = p.get("Attribute").ok_or_else(|| missing("Attribute"))?;
    let vpc = state
        .regions
        .get(key)
        .and_then(|r| r.vpcs.get(id))
        .ok_or_else(|| vpc_not_found(id))?;
    let value = match attr {
        "enableDnsSupport" => vpc.dns_support,
        "enableDnsHostnames" => vpc.dns_hostnames,
        "enableNetworkAddressUsageMetrics" => false,
        other => {
            return Err(AwsError::new(
                400,
                "InvalidParameterValue",
                format!("Value ({other}) for parameter attribute is invalid. Unknown attribute."),
            ))
        }
    };
    Ok(format!(
        "<vpcId>{}</vpcId><{attr}><value>{value}</value></{attr}>",
        esc(id)
    ))
}

fn parse_bool(v: &str, name: &str) -> Result<bool, AwsError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(AwsError::new(
            400,
            "InvalidParameterValue",
            format!(
                "Value ({other}) for parameter {name} is invalid. Expected: 'true' or 'false'."
            ),
        )),
    }
}

fn modify_vpc_attribute(
    state: &mut State,
    key: &RegionKey,
    p: &Params,
    now: Instant,
) -> Result<String, AwsError> {
    let id = p.get("VpcId").ok_or_else(|| missing("VpcId"))?.to_string();
    let support = p.get("EnableDnsSupport.Value");
    let hostnames = p.get("EnableDnsHostnames.Value");
    let metrics = p.get("EnableNetworkAddressUsageMetrics.Value");
    let given: Vec<&str> = [
        (hostnames, "enableDnsHostnames"),
        (support, "enableDnsSupport"),
        (metrics, "enableNetworkAddressUsageMetrics"),
    ]
    .iter()
    .filter(|(v, _)| v.is_some())
    .map(|(_, n)| *n)
    .collect();
    if given.len() > 1 {
        return Err(AwsError::new(
            400,
            "InvalidParameterCombination",
            format!(
                "Fields for multiple attribute types specified: {}",
                given.join(", ")
            ),
        ));
    }
    let vpc = state
        .regions
        .get_mut(key)
        .and_then(|r| r.vpcs.get_mut(&id))
        .ok_or_else(|| vpc_not_found(&id))?;
    let (attribute, value) = if let Some(v) = support {
        let v = parse_bool(v, "EnableDnsSupport")?;
        vpc.dns_support = v;
        ("enableDnsSupport", v)
    } else if let Some(v) = hostnames {
        let v = parse_bool(v, "EnableDnsHostnames")?;
        if v && !vpc.dns_support {
            // EC2 refuses DNS hostnames on a VPC without DNS support.
            return Err(AwsError::new(
                400,
                "InvalidParameterValue",
                "Cannot enable DNS hostnames for a VPC that does not have DNS support enabled.",
            ));
        }
        vpc.dns_hostnames = v;
        ("enableDnsHostnames", v)
    } else if metrics.is_some() {
        return Ok("<return>true</return>".into());
    } else {
        return Err(AwsError::new(
            400,
            "MissingParameter",
            "The request must contain exactly one attribute to modify",
        ));
    };
    state.record(
        now,
        Event::VpcAttribute {
            account: key.0.clone(),
            region: key.1.clone(),
            vpc_id: id,
            attribute: attribute.into(),
            value,
        },
    );
    Ok("<return>true</return>".into())
}

fn describe_dhcp_options(state: &State, key: &RegionKey, p: &Params) -> Result<String, AwsError> {
    let ids = p.list("DhcpOptionsId");
    let mut sets: Vec<_> = state
        .regions
        .get(key)
        .map(|r| r.dhcp_options.values().collect())
        .unwrap_or_default();
    select_ids(
        &mut sets,
        &ids,
        |d| &d.id,
        |m| {
            AwsError::new(
                400,
                "InvalidDhcpOptionID.NotFound",
                format!("The dhcpOption ID '{m}' does not exist"),
            )
        },
    )?;
    for (name, values) in p.filters() {
        match name.as_str() {
            "dhcp-options-id" => sets.retain(|d| values.contains(&d.id)),
            other => return Err(bad_filter(other)),
        }
    }
    let mut out = String::from("<dhcpOptionsSet>");
    for d in sets {
        let _ = write!(
            out,
            "<item><dhcpOptionsId>{}</dhcpOptionsId><ownerId>{}</ownerId><dhcpConfigurationSet>",
            esc(&d.id),
            esc(&key.0)
        );
        if !d.domain_name_servers.is_empty() {
            out.push_str("<item><key>domain-name-servers</key><valueSet>");
            for s in &d.domain_name_servers {
                let _ = write!(out, "<item><value>{}</value></item>", esc(s));
            }
            out.push_str("</valueSet></item>");
        }
        out.push_str("</dhcpConfigurationSet><tagSet/></item>");
    }
    out.push_str("</dhcpOptionsSet>");
    Ok(out)
}

fn describe_security_groups(
    state: &State,
    key: &RegionKey,
    p: &Params,
) -> Result<String, AwsError> {
    let ids = p.list("GroupId");
    let mut groups: Vec<_> = state
        .regions
        .get(key)
        .map(|r| r.security_groups.values().collect())
        .unwrap_or_default();
    select_ids(&mut groups, &ids, |g| &g.id, group_not_found)?;
    for (name, values) in p.filters() {
        match name.as_str() {
            "group-id" => groups.retain(|g| values.contains(&g.id)),
            "vpc-id" => groups.retain(|g| values.contains(&g.vpc_id)),
            other => return Err(bad_filter(other)),
        }
    }
    let mut out = String::from("<securityGroupInfo>");
    for g in groups {
        let _ = write!(
            out,
            "<item><ownerId>{}</ownerId><groupId>{}</groupId><groupName>{}</groupName><groupDescription>EKS created security group</groupDescription><vpcId>{}</vpcId><ipPermissions>",
            esc(&key.0), esc(&g.id), esc(&g.name), esc(&g.vpc_id)
        );
        // EC2 groups rules with the same protocol and ports into one permission.
        let mut perms: Vec<(&str, i32, i32, Vec<&Rule>)> = Vec::new();
        for r in &g.ingress {
            match perms
                .iter_mut()
                .find(|(p, f, t, _)| *p == r.protocol && *f == r.from_port && *t == r.to_port)
            {
                Some(perm) => perm.3.push(r),
                None => perms.push((&r.protocol, r.from_port, r.to_port, vec![r])),
            }
        }
        let described = |r: &Rule| {
            r.description
                .as_deref()
                .map(|d| format!("<description>{}</description>", esc(d)))
                .unwrap_or_default()
        };
        for (proto, from, to, sources) in perms {
            let _ = write!(out, "<item><ipProtocol>{}</ipProtocol>", esc(proto));
            if proto != "-1" {
                let _ = write!(out, "<fromPort>{from}</fromPort><toPort>{to}</toPort>");
            }
            out.push_str("<groups>");
            for r in &sources {
                if let RuleSource::Group(id) = &r.source {
                    let _ = write!(
                        out,
                        "<item>{}<userId>{}</userId><groupId>{}</groupId></item>",
                        described(r),
                        esc(&key.0),
                        esc(id)
                    );
                }
            }
            out.push_str("</groups><ipRanges>");
            for r in &sources {
                if let RuleSource::Cidr(IpNet::V4(n)) = &r.source {
                    let _ = write!(out, "<item><cidrIp>{n}</cidrIp>{}</item>", described(r));
                }
            }
            out.push_str("</ipRanges><ipv6Ranges>");
            for r in &sources {
                if let RuleSource::Cidr(IpNet::V6(n)) = &r.source {
                    let _ = write!(out, "<item><cidrIpv6>{n}</cidrIpv6>{}</item>", described(r));
                }
            }
            out.push_str("</ipv6Ranges><prefixListIds>");
            for r in &sources {
                if let RuleSource::PrefixList(l) = &r.source {
                    let _ = write!(
                        out,
                        "<item>{}<prefixListId>{}</prefixListId></item>",
                        described(r),
                        esc(l)
                    );
                }
            }
            out.push_str("</prefixListIds></item>");
        }
        out.push_str("</ipPermissions><ipPermissionsEgress><item><ipProtocol>-1</ipProtocol><groups/><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges><ipv6Ranges/><prefixListIds/></item></ipPermissionsEgress><tagSet/></item>");
    }
    out.push_str("</securityGroupInfo>");
    Ok(out)
}

fn authorize_ingress(
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
    let new_rules = super::allow_list::permissions(p, region)?;
    if new_rules.is_empty() {
        return Err(missing("IpPermissions"));
    }
    // The same permission twice in one request is a bad parameter, before
    // anything is compared with the group.
    for (i, (proto, from, to, src, _)) in new_rules.iter().enumerate() {
        if new_rules[..i]
            .iter()
            .any(|(p2, f2, t2, s2, _)| p2 == proto && f2 == from && t2 == to && s2 == src)
        {
            return Err(AwsError::new(
                400,
                "InvalidParameterValue",
                "The same permission must not appear multiple times",
            ));
        }
    }
    // Any rule the group already has fails the whole call.
    for (proto, from, to, src, _) in &new_rules {
        let existing = group.ingress.iter().any(|r| {
            &r.protocol == proto && r.from_port == *from && r.to_port == *to && &r.source == src
        });
        if existing {
            let proto_name = match proto.as_str() {
                "tcp" => "TCP",
                "udp" => "UDP",
                "icmp" => "ICMP",
                _ => "ALL",
            };
            return Err(AwsError::new(
                400,
                "InvalidPermission.Duplicate",
                format!(
                    "the specified rule \"peer: {src}, {proto_name}, from port: {from}, to port: {to}, ALLOW\" already exists"
                ),
            ));
        }
    }
    // The quota counts IPv4 and IPv6 rules apart; a group reference counts
    // in both.
    // A customer-managed prefix list counts as its `max_entries`.
    let region = state.regions.get(key);
    let weigh = |sources: Vec<&RuleSource>| super::allow_list::weighted_counts(region, sources);
    let (have4, have6) = weigh(group.ingress.iter().map(|r| &r.source).collect());
    let (add4, add6) = weigh(new_rules.iter().map(|r| &r.3).collect());
    let quota = group.rule_quota;
    if (add4 > 0 && have4 + add4 > quota) || (add6 > 0 && have6 + add6 > quota) {
        return Err(AwsError::new(
            400,
            "RulesPerSecurityGroupLimitExceeded",
            "The maximum number of rules per security group has been reached.",
        ));
    }
    let mut rules_xml = String::from("<securityGroupRuleSet>");
    let mut added = Vec::new();
    for (proto, from, to, src, description) in new_rules {
        let id = state.rule_id();
        let _ = write!(
            rules_xml,
            "<item><securityGroupRuleId>{id}</securityGroupRuleId><groupId>{}</groupId><groupOwnerId>{}</groupOwnerId><isEgress>false</isEgress><ipProtocol>{proto}</ipProtocol><fromPort>{from}</fromPort><toPort>{to}</toPort>",
            esc(&group_id), esc(&key.0)
        );
        match &src {
            RuleSource::Cidr(IpNet::V4(n)) => {
                let _ = write!(rules_xml, "<cidrIpv4>{n}</cidrIpv4>");
            }
            RuleSource::Cidr(IpNet::V6(n)) => {
                let _ = write!(rules_xml, "<cidrIpv6>{n}</cidrIpv6>");
            }
            RuleSource::Group(g) => {
                let _ = write!(
                    rules_xml,
                    "<referencedGroupInfo><groupId>{}</groupId><userId>{}</userId></referencedGroupInfo>",
                    esc(g),
                    esc(&key.0)
                );
            }
            RuleSource::PrefixList(l) => {
                let _ = write!(rules_xml, "<prefixListId>{}</prefixListId>", esc(l));
            }
        }
        if let Some(d) = &description {
            let _ = write!(rules_xml, "<description>{}</description>", esc(d));
        }
        rules_xml.push_str("</item>");
        added.push(src.to_string());
        let rule = Rule {
            id,
            protocol: proto,
            from_port: from,
            to_port: to,
            source: src,
            description,
        };
        if let Some(g) = state
            .regions
            .get_mut(key)
            .and_then(|r| r.security_groups.get_mut(&group_id))
        {
            g.ingress.push(rule);
        }
    }
    rules_xml.push_str("</securityGroupRuleSet>");
    state.record(
        now,
        Event::SecurityGroupIngress {
            account: key.0.clone(),
            region: key.1.clone(),
            group_id,
            sources: added,
        },
    );
    Ok(format!("<return>true</return>{rules_xml}"))
}
