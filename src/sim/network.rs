//! The network around the emulator's clusters: NAT gateways, route tables
//! and VPC peering connections, as a world declares them (`[[nat_gateway]]`,
//! `[[route_table]]`, `[[vpc_peering]]`), and the EC2 operations that read
//! them: `DescribeNatGateways`, `DescribeRouteTables` and
//! `DescribeVpcPeeringConnections`, with their filters and paging, in the
//! shapes of the `ec2` 2016-11-15 service model. Also the refusal of IPv6
//! blocks in `publicAccessCidrs` by a cluster that does not take them.
//!
//! Like `ec2`, handlers run under the state lock and never sleep.

use std::fmt::Write as _;

use ipnet::IpNet;
use quick_xml::escape::escape;
use serde::{Deserialize, Serialize};

use super::ec2::{bad_filter, select_ids, Params};
use super::protocol::AwsError;
use super::state::{RegionKey, State};
use super::world::World;
use crate::diagnostic::{Diagnostic, Source};

/// `[[nat_gateway]]`: a NAT gateway of a VPC. A public one has a
/// `public_ip`; a private one (`connectivityType` `private`) has none.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NatGatewayDef {
    pub id: String,
    pub region: String,
    #[serde(default)]
    pub account: Option<String>,
    pub vpc_id: String,
    #[serde(default)]
    pub public_ip: Option<String>,
    /// `pending`, `failed`, `available`, `deleting` or `deleted`.
    #[serde(default = "available")]
    pub state: String,
}

/// `[[route_table]]`: a route table, the subnets associated with it, and
/// whether it is the VPC's main table. A route to each of the VPC's blocks
/// through `local` is there without being listed, as in every EC2 table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTableDef {
    pub id: String,
    pub region: String,
    #[serde(default)]
    pub account: Option<String>,
    pub vpc_id: String,
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub main: bool,
    #[serde(default)]
    pub routes: Vec<RouteDef>,
}

/// One route: a destination block and where it goes (`local`, `tgw-…`,
/// `pcx-…`, `vgw-…`, `igw-…`, `nat-…`, `eni-…`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDef {
    pub destination: String,
    pub target: String,
}

/// `[[vpc_peering]]`: a peering connection between two VPCs of the region.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VpcPeeringDef {
    pub id: String,
    pub region: String,
    #[serde(default)]
    pub account: Option<String>,
    pub requester_vpc: String,
    pub accepter_vpc: String,
    /// `Status.Code`: `active`, `pending-acceptance`, `rejected`, ...
    #[serde(default = "active")]
    pub status: String,
}

fn available() -> String {
    "available".to_string()
}
fn active() -> String {
    "active".to_string()
}

/// `NatGatewayState` of the service model.
const NAT_STATES: &[&str] = &["pending", "failed", "available", "deleting", "deleted"];
/// `VpcPeeringConnectionStateReasonCode` of the service model.
const PEERING_STATES: &[&str] = &[
    "initiating-request",
    "pending-acceptance",
    "active",
    "deleted",
    "rejected",
    "failed",
    "expired",
    "provisioning",
    "deleting",
];
/// Route targets by the prefix of their id.
const TARGET_PREFIXES: &[&str] = &["tgw-", "pcx-", "vgw-", "igw-", "nat-", "eni-", "eigw-"];

/// The subnets a cluster has when its world table names none (EKS needs at
/// least two).
pub fn default_subnets() -> Vec<String> {
    vec![
        "subnet-0a000000000000001".to_string(),
        "subnet-0a000000000000002".to_string(),
    ]
}

pub fn default_ip_family() -> String {
    "ipv4".to_string()
}

/// Seconds since the epoch of a world's `created_at`: RFC 3339
/// (`2025-03-01T12:00:00Z`) or a date (`2025-03-01`, midnight UTC).
pub fn parse_created_at(s: &str) -> Option<std::time::SystemTime> {
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    humantime::parse_rfc3339(&full).ok()
}

/// What is wrong with the network tables of a world, each pointing at the
/// first occurrence of the value it names.
pub fn check(world: &World, source: &Source) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let locate = |value: &str, message: String| {
        let needle = format!("\"{value}\"");
        let d = Diagnostic::error(message);
        match source.text.find(&needle) {
            Some(i) => d.at(source, i..i + needle.len()),
            None => d.in_file(source.name.clone()),
        }
    };
    let acct = |a: &Option<String>| {
        a.clone()
            .unwrap_or_else(|| super::world::DEFAULT_ACCOUNT.into())
    };
    let vpc_exists = |a: &Option<String>, region: &str, id: &str| {
        world
            .vpc
            .iter()
            .any(|v| acct(&v.account) == acct(a) && v.region == region && v.id == id)
    };
    for v in &world.vpc {
        for b in &v.secondary_cidr_blocks {
            if b.parse::<ipnet::Ipv4Net>().is_err() {
                diags.push(locate(b, format!("`{b}` is not an IPv4 CIDR block")));
            }
        }
    }
    for n in &world.nat_gateway {
        if !vpc_exists(&n.account, &n.region, &n.vpc_id) {
            diags.push(locate(
                &n.vpc_id,
                format!(
                    "nat gateway `{}` names vpc `{}`, which is not defined in region `{}`",
                    n.id, n.vpc_id, n.region
                ),
            ));
        }
        if !NAT_STATES.contains(&n.state.as_str()) {
            diags.push(locate(
                &n.state,
                format!(
                    "nat gateway `{}` has state `{}`; use one of {}",
                    n.id,
                    n.state,
                    NAT_STATES.join(", ")
                ),
            ));
        }
        if let Some(ip) = &n.public_ip {
            if ip.parse::<std::net::Ipv4Addr>().is_err() {
                diags.push(locate(ip, format!("`{ip}` is not an IPv4 address")));
            }
        }
    }
    let mut associated: Vec<(String, String)> = Vec::new();
    for t in &world.route_table {
        if !vpc_exists(&t.account, &t.region, &t.vpc_id) {
            diags.push(locate(
                &t.vpc_id,
                format!(
                    "route table `{}` names vpc `{}`, which is not defined in region `{}`",
                    t.id, t.vpc_id, t.region
                ),
            ));
        }
        if t.main
            && world
                .route_table
                .iter()
                .any(|o| o.main && o.id != t.id && o.vpc_id == t.vpc_id && o.region == t.region)
        {
            diags.push(locate(
                &t.id,
                format!("vpc `{}` has more than one main route table", t.vpc_id),
            ));
        }
        for s in &t.subnets {
            if associated.iter().any(|(r, sub)| r == &t.region && sub == s) {
                diags.push(locate(
                    s,
                    format!("subnet `{s}` is associated with more than one route table"),
                ));
            }
            associated.push((t.region.clone(), s.clone()));
        }
        for r in &t.routes {
            if r.destination.parse::<IpNet>().is_err() {
                diags.push(locate(
                    &r.destination,
                    format!("`{}` is not a CIDR block", r.destination),
                ));
            }
            if r.target != "local" && !TARGET_PREFIXES.iter().any(|p| r.target.starts_with(p)) {
                diags.push(locate(
                    &r.target,
                    format!(
                        "route target `{}` is not `local` or an id starting with {}",
                        r.target,
                        TARGET_PREFIXES.join(", ")
                    ),
                ));
            }
        }
    }
    for p in &world.vpc_peering {
        for vpc in [&p.requester_vpc, &p.accepter_vpc] {
            if !vpc_exists(&p.account, &p.region, vpc) {
                diags.push(locate(
                    vpc,
                    format!(
                        "vpc peering `{}` names vpc `{vpc}`, which is not defined in region `{}`",
                        p.id, p.region
                    ),
                ));
            }
        }
        if !PEERING_STATES.contains(&p.status.as_str()) {
            diags.push(locate(
                &p.status,
                format!(
                    "vpc peering `{}` has status `{}`; use one of {}",
                    p.id,
                    p.status,
                    PEERING_STATES.join(", ")
                ),
            ));
        }
    }
    for c in &world.cluster {
        if !["ipv4", "ipv6"].contains(&c.ip_family.as_str()) {
            diags.push(locate(
                &c.ip_family,
                format!(
                    "cluster `{}` has `ip_family = \"{}\"`; use `ipv4` or `ipv6`",
                    c.name, c.ip_family
                ),
            ));
        }
        if let Some(t) = &c.created_at {
            if parse_created_at(t).is_none() {
                diags.push(locate(
                    t,
                    format!("`{t}` is not a time like `2025-03-01` or `2025-03-01T12:00:00Z`"),
                ));
            }
        }
        // EKS Hybrid Nodes need an IPv4 cluster (EKS User Guide, "Create an
        // Amazon EKS cluster with hybrid nodes", Considerations).
        if !c.remote_node_networks.is_empty() && c.ip_family != "ipv4" {
            diags.push(locate(
                &c.name,
                format!(
                    "cluster `{}` has `remote_node_networks` and `ip_family = \"{}\"`; EKS hybrid nodes need an `ipv4` cluster",
                    c.name, c.ip_family
                ),
            ));
        }
        for n in &c.remote_node_networks {
            if n.parse::<ipnet::Ipv4Net>().is_err() {
                diags.push(locate(n, format!("`{n}` is not an IPv4 CIDR block")));
            }
        }
        if c.subnet_ids.as_ref().is_some_and(Vec::is_empty) {
            diags.push(locate(
                &c.name,
                format!(
                    "cluster `{}` has no subnets; EKS needs at least two",
                    c.name
                ),
            ));
        }
    }
    diags
}

/// A NAT gateway in the emulator's state.
#[derive(Clone, Debug, Serialize)]
pub struct NatGateway {
    pub id: String,
    pub vpc_id: String,
    pub public_ip: Option<String>,
    pub state: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    pub subnets: Vec<String>,
    pub main: bool,
    /// `(destination, target)`, the VPC's `local` routes first.
    pub routes: Vec<(IpNet, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Peering {
    pub id: String,
    pub requester_vpc: String,
    pub accepter_vpc: String,
    pub status: String,
}

/// Puts a world's network tables into the state (after its VPCs).
pub fn seed(state: &mut State, world: &World) {
    let acct = |a: &Option<String>| {
        a.clone()
            .unwrap_or_else(|| super::world::DEFAULT_ACCOUNT.into())
    };
    for n in &world.nat_gateway {
        let key = (acct(&n.account), n.region.clone());
        state.region_mut(&key).nat_gateways.push(NatGateway {
            id: n.id.clone(),
            vpc_id: n.vpc_id.clone(),
            public_ip: n.public_ip.clone(),
            state: n.state.clone(),
        });
    }
    for t in &world.route_table {
        let key = (acct(&t.account), t.region.clone());
        let region = state.region_mut(&key);
        let mut routes: Vec<(IpNet, String)> = region
            .vpcs
            .get(&t.vpc_id)
            .map(|v| v.cidr_blocks())
            .unwrap_or_default()
            .into_iter()
            .map(|b| (b, "local".to_string()))
            .collect();
        for r in &t.routes {
            if let Ok(d) = r.destination.parse::<IpNet>() {
                if !routes.iter().any(|(x, _)| *x == d.trunc()) {
                    routes.push((d.trunc(), r.target.clone()));
                }
            }
        }
        region.route_tables.push(RouteTable {
            id: t.id.clone(),
            vpc_id: t.vpc_id.clone(),
            subnets: t.subnets.clone(),
            main: t.main,
            routes,
        });
    }
    for p in &world.vpc_peering {
        let key = (acct(&p.account), p.region.clone());
        state.region_mut(&key).peerings.push(Peering {
            id: p.id.clone(),
            requester_vpc: p.requester_vpc.clone(),
            accepter_vpc: p.accepter_vpc.clone(),
            status: p.status.clone(),
        });
    }
}

fn esc(s: &str) -> String {
    escape(s).into_owned()
}

/// One page of `items`: `MaxResults` between `min` and `max` (all when
/// absent) and an opaque `NextToken`.
fn page<T: Clone>(
    items: &[T],
    p: &Params,
    min: usize,
    max: usize,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let size = match p.get("MaxResults") {
        None => items.len().max(1),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                return Err(AwsError::new(
                    400,
                    "InvalidParameterValue",
                    format!("Value ( {v} ) for parameter maxResults is invalid. Parameter must be between {min} and {max}."),
                ))
            }
        },
    };
    let start = match p.get("NextToken") {
        None => 0,
        Some(t) => hex::decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("eksgate-sim-ec2:")?.parse::<usize>().ok())
            .ok_or_else(|| {
                AwsError::new(
                    400,
                    "InvalidPaginationToken",
                    format!("Invalid pagination token: {t}"),
                )
            })?,
    };
    let start = start.min(items.len());
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| hex::encode(format!("eksgate-sim-ec2:{end}")));
    Ok((items[start..end].to_vec(), next))
}

fn next_token_xml(next: Option<String>) -> String {
    next.map(|t| format!("<nextToken>{t}</nextToken>"))
        .unwrap_or_default()
}

/// `DescribeNatGateways`: ids (`NatGatewayId.N`) and filters `vpc-id`,
/// `state`, `nat-gateway-id`, pages of 5 to 1000.
pub fn describe_nat_gateways(
    state: &State,
    key: &RegionKey,
    p: &Params,
) -> Result<String, AwsError> {
    let mut gws: Vec<&NatGateway> = state
        .regions
        .get(key)
        .map(|r| r.nat_gateways.iter().collect())
        .unwrap_or_default();
    let ids = p.list("NatGatewayId");
    select_ids(
        &mut gws,
        &ids,
        |g| &g.id,
        |m| {
            AwsError::new(
                400,
                "NatGatewayNotFound",
                format!("NAT gateway {m} was not found"),
            )
        },
    )?;
    for (name, values) in p.filters() {
        match name.as_str() {
            "vpc-id" => gws.retain(|g| values.contains(&g.vpc_id)),
            "state" => gws.retain(|g| values.contains(&g.state)),
            "nat-gateway-id" => gws.retain(|g| values.contains(&g.id)),
            other => return Err(bad_filter(other)),
        }
    }
    let (items, next) = page(&gws, p, 5, 1000)?;
    let mut out = String::from("<natGatewaySet>");
    for g in items {
        let _ = write!(
            out,
            "<item><createTime>2024-01-01T00:00:00.000Z</createTime>"
        );
        match &g.public_ip {
            Some(ip) => {
                let _ = write!(
                    out,
                    "<natGatewayAddressSet><item><allocationId>eipalloc-{0}</allocationId><networkInterfaceId>eni-{0}</networkInterfaceId><privateIp>10.0.0.5</privateIp><publicIp>{1}</publicIp><isPrimary>true</isPrimary><status>succeeded</status></item></natGatewayAddressSet><connectivityType>public</connectivityType>",
                    esc(g.id.trim_start_matches("nat-")),
                    esc(ip)
                );
            }
            None => {
                let _ = write!(
                    out,
                    "<natGatewayAddressSet><item><networkInterfaceId>eni-{0}</networkInterfaceId><privateIp>10.0.0.5</privateIp><isPrimary>true</isPrimary><status>succeeded</status></item></natGatewayAddressSet><connectivityType>private</connectivityType>",
                    esc(g.id.trim_start_matches("nat-"))
                );
            }
        }
        let _ = write!(
            out,
            "<natGatewayId>{}</natGatewayId><state>{}</state><subnetId>subnet-nat{}</subnetId><vpcId>{}</vpcId><tagSet/></item>",
            esc(&g.id),
            esc(&g.state),
            esc(g.id.trim_start_matches("nat-")),
            esc(&g.vpc_id)
        );
    }
    out.push_str("</natGatewaySet>");
    out.push_str(&next_token_xml(next));
    Ok(out)
}

/// `DescribeRouteTables`: ids (`RouteTableId.N`) and filters
/// `association.subnet-id`, `association.main`, `vpc-id`, `route-table-id`,
/// pages of 5 to 100.
pub fn describe_route_tables(
    state: &State,
    key: &RegionKey,
    p: &Params,
) -> Result<String, AwsError> {
    let mut tables: Vec<&RouteTable> = state
        .regions
        .get(key)
        .map(|r| r.route_tables.iter().collect())
        .unwrap_or_default();
    let ids = p.list("RouteTableId");
    select_ids(
        &mut tables,
        &ids,
        |t| &t.id,
        |m| {
            AwsError::new(
                400,
                "InvalidRouteTableID.NotFound",
                format!("The routeTable ID '{m}' does not exist"),
            )
        },
    )?;
    for (name, values) in p.filters() {
        match name.as_str() {
            "association.subnet-id" => {
                tables.retain(|t| t.subnets.iter().any(|s| values.contains(s)))
            }
            "association.main" => tables.retain(|t| values.contains(&t.main.to_string())),
            "vpc-id" => tables.retain(|t| values.contains(&t.vpc_id)),
            "route-table-id" => tables.retain(|t| values.contains(&t.id)),
            other => return Err(bad_filter(other)),
        }
    }
    let (items, next) = page(&tables, p, 5, 100)?;
    let mut out = String::from("<routeTableSet>");
    for t in items {
        let _ = write!(
            out,
            "<item><routeTableId>{}</routeTableId><vpcId>{}</vpcId><ownerId>{}</ownerId><routeSet>",
            esc(&t.id),
            esc(&t.vpc_id),
            esc(&key.0)
        );
        for (dest, target) in &t.routes {
            let dest_xml = match dest {
                IpNet::V4(_) => format!("<destinationCidrBlock>{dest}</destinationCidrBlock>"),
                IpNet::V6(_) => {
                    format!("<destinationIpv6CidrBlock>{dest}</destinationIpv6CidrBlock>")
                }
            };
            let element = match target.split('-').next().unwrap_or_default() {
                "tgw" => "transitGatewayId",
                "pcx" => "vpcPeeringConnectionId",
                "nat" => "natGatewayId",
                "eni" => "networkInterfaceId",
                "eigw" => "egressOnlyInternetGatewayId",
                _ => "gatewayId",
            };
            let origin = if target == "local" {
                "CreateRouteTable"
            } else {
                "CreateRoute"
            };
            let _ = write!(
                out,
                "<item>{dest_xml}<{element}>{}</{element}><state>active</state><origin>{origin}</origin></item>",
                esc(target)
            );
        }
        out.push_str("</routeSet><associationSet>");
        if t.main {
            let _ = write!(
                out,
                "<item><routeTableAssociationId>rtbassoc-main{0}</routeTableAssociationId><routeTableId>{1}</routeTableId><main>true</main><associationState><state>associated</state></associationState></item>",
                esc(t.id.trim_start_matches("rtb-")),
                esc(&t.id)
            );
        }
        for (i, s) in t.subnets.iter().enumerate() {
            let _ = write!(
                out,
                "<item><routeTableAssociationId>rtbassoc-{0}{i:04}</routeTableAssociationId><routeTableId>{1}</routeTableId><subnetId>{2}</subnetId><main>false</main><associationState><state>associated</state></associationState></item>",
                esc(t.id.trim_start_matches("rtb-")),
                esc(&t.id),
                esc(s)
            );
        }
        out.push_str("</associationSet><propagatingVgwSet/><tagSet/></item>");
    }
    out.push_str("</routeTableSet>");
    out.push_str(&next_token_xml(next));
    Ok(out)
}

/// `DescribeVpcPeeringConnections`: ids (`VpcPeeringConnectionId.N`) and
/// filters `requester-vpc-info.vpc-id`, `accepter-vpc-info.vpc-id`,
/// `status-code`, `vpc-peering-connection-id`, pages of 5 to 1000.
pub fn describe_vpc_peering_connections(
    state: &State,
    key: &RegionKey,
    p: &Params,
) -> Result<String, AwsError> {
    let region = state.regions.get(key);
    let mut peerings: Vec<&Peering> = region
        .map(|r| r.peerings.iter().collect())
        .unwrap_or_default();
    let ids = p.list("VpcPeeringConnectionId");
    select_ids(
        &mut peerings,
        &ids,
        |x| &x.id,
        |m| {
            AwsError::new(
                400,
                "InvalidVpcPeeringConnectionID.NotFound",
                format!("The vpcPeeringConnection ID '{m}' does not exist"),
            )
        },
    )?;
    for (name, values) in p.filters() {
        match name.as_str() {
            "requester-vpc-info.vpc-id" => peerings.retain(|x| values.contains(&x.requester_vpc)),
            "accepter-vpc-info.vpc-id" => peerings.retain(|x| values.contains(&x.accepter_vpc)),
            "status-code" => peerings.retain(|x| values.contains(&x.status)),
            "vpc-peering-connection-id" => peerings.retain(|x| values.contains(&x.id)),
            other => return Err(bad_filter(other)),
        }
    }
    let (items, next) = page(&peerings, p, 5, 1000)?;
    let info = |vpc: &str| {
        let cidr = region
            .and_then(|r| r.vpcs.get(vpc))
            .map(|v| format!("<cidrBlock>{}</cidrBlock>", esc(&v.cidr_block)))
            .unwrap_or_default();
        format!(
            "{cidr}<ownerId>{}</ownerId><vpcId>{}</vpcId><region>{}</region>",
            esc(&key.0),
            esc(vpc),
            esc(&key.1)
        )
    };
    let mut out = String::from("<vpcPeeringConnectionSet>");
    for x in items {
        let message = match x.status.as_str() {
            "active" => "Active",
            "pending-acceptance" => "Pending Acceptance by the accepter",
            "rejected" => "Rejected",
            "deleted" => "Deleted",
            "failed" => "Failed",
            "expired" => "Expired",
            _ => "Provisioning",
        };
        let _ = write!(
            out,
            "<item><accepterVpcInfo>{}</accepterVpcInfo><requesterVpcInfo>{}</requesterVpcInfo><status><code>{}</code><message>{message}</message></status><tagSet/><vpcPeeringConnectionId>{}</vpcPeeringConnectionId></item>",
            info(&x.accepter_vpc),
            info(&x.requester_vpc),
            esc(&x.status),
            esc(&x.id)
        );
    }
    out.push_str("</vpcPeeringConnectionSet>");
    out.push_str(&next_token_xml(next));
    Ok(out)
}

/// The IPv6 blocks a cluster refuses in `publicAccessCidrs`, as EKS answers
/// them: only IPv6 clusters made from October 2024 on have a dual-stack
/// public endpoint (service model `eks` 2017-11-01, doc of
/// `VpcConfigRequest.publicAccessCidrs`: "You can't add IPv6 CIDR blocks to
/// IPv4 clusters or IPv6 clusters that were made before October 2024").
/// EKS says so with the message it gives any block it will not take
/// (DESIGN.md section 1b; the message's form as aws/aws-cdk#33176 quotes it:
/// `The following CIDRs are invalid in publicAccessCidrs: [a,b]`).
pub fn refused_ipv6(
    ip_family: &str,
    created_at: std::time::SystemTime,
    cidrs: &[String],
) -> Option<AwsError> {
    // 2024-10-01T00:00:00Z.
    let dual_stack_since = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_727_740_800);
    if ip_family == "ipv6" && created_at >= dual_stack_since {
        return None;
    }
    let v6: Vec<&str> = cidrs
        .iter()
        .filter(|c| matches!(c.parse::<IpNet>(), Ok(IpNet::V6(_))))
        .map(String::as_str)
        .collect();
    (!v6.is_empty()).then(|| {
        AwsError::new(
            400,
            "InvalidParameterException",
            format!(
                "The following CIDRs are invalid in publicAccessCidrs: [{}]",
                v6.join(",")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> String {
        match World::parse(&Source::new("world.toml", text)) {
            Ok(_) => String::new(),
            Err(d) => crate::diagnostic::render_all(&d, false),
        }
    }

    const VPC: &str = "[[vpc]]\nid = \"vpc-1\"\nregion = \"us-east-1\"\n";

    #[test]
    fn network_tables_are_checked() {
        let cases: &[(&str, &str)] = &[
            (
                "[[nat_gateway]]\nid = \"nat-1\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-9\"\npublic_ip = \"198.51.100.1\"\n",
                "nat gateway `nat-1` names vpc `vpc-9`, which is not defined in region `us-east-1`",
            ),
            (
                "[[nat_gateway]]\nid = \"nat-1\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-1\"\nstate = \"up\"\n",
                "nat gateway `nat-1` has state `up`",
            ),
            (
                "[[nat_gateway]]\nid = \"nat-1\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-1\"\npublic_ip = \"2001:db8::1\"\n",
                "`2001:db8::1` is not an IPv4 address",
            ),
            (
                "[[route_table]]\nid = \"rtb-1\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-1\"\nmain = true\n[[route_table]]\nid = \"rtb-2\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-1\"\nmain = true\n",
                "vpc `vpc-1` has more than one main route table",
            ),
            (
                "[[route_table]]\nid = \"rtb-1\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-1\"\nsubnets = [\"s-1\"]\n[[route_table]]\nid = \"rtb-2\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-1\"\nsubnets = [\"s-1\"]\n",
                "subnet `s-1` is associated with more than one route table",
            ),
            (
                "[[route_table]]\nid = \"rtb-1\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-1\"\nroutes = [{ destination = \"10.9.0.0/16\", target = \"router-1\" }]\n",
                "route target `router-1` is not `local` or an id starting with",
            ),
            (
                "[[vpc_peering]]\nid = \"pcx-1\"\nregion = \"us-east-1\"\nrequester_vpc = \"vpc-1\"\naccepter_vpc = \"vpc-2\"\n",
                "vpc peering `pcx-1` names vpc `vpc-2`",
            ),
            (
                "[[cluster]]\nname = \"a\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-1\"\npublic_access = true\nprivate_access = false\nip_family = \"ipv5\"\n",
                "cluster `a` has `ip_family = \"ipv5\"`; use `ipv4` or `ipv6`",
            ),
            (
                "[[cluster]]\nname = \"a\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-1\"\npublic_access = true\nprivate_access = false\ncreated_at = \"last year\"\n",
                "`last year` is not a time like `2025-03-01`",
            ),
            (
                "[[cluster]]\nname = \"a\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-1\"\npublic_access = true\nprivate_access = false\nip_family = \"ipv6\"\nremote_node_networks = [\"192.168.0.0/24\"]\n",
                "EKS hybrid nodes need an `ipv4` cluster",
            ),
        ];
        for (text, want) in cases {
            let got = errors(&format!("{VPC}{text}"));
            assert!(got.contains(want), "for {text:?}:\n{got}\nwanted {want:?}");
        }
        let good = "[[nat_gateway]]\nid = \"nat-1\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-1\"\npublic_ip = \"198.51.100.1\"\n[[cluster]]\nname = \"a\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-1\"\npublic_access = true\nprivate_access = false\nip_family = \"ipv6\"\ncreated_at = \"2025-02-10T09:30:00Z\"\n";
        assert_eq!(errors(&format!("{VPC}{good}")), "");
    }

    #[test]
    fn ipv6_blocks_are_refused_by_family_and_age() {
        let at = |s: &str| parse_created_at(s).unwrap();
        let v6 = vec!["2001:db8::/32".to_string(), "203.0.113.0/24".to_string()];
        let v4 = vec!["203.0.113.0/24".to_string()];
        assert!(refused_ipv6("ipv4", at("2025-01-01"), &v6).is_some());
        assert!(refused_ipv6("ipv6", at("2024-09-30T23:59:59Z"), &v6).is_some());
        assert!(refused_ipv6("ipv6", at("2024-10-01"), &v6).is_none());
        assert!(refused_ipv6("ipv4", at("2025-01-01"), &v4).is_none());
        assert_eq!(
            refused_ipv6("ipv4", at("2025-01-01"), &v6).unwrap().message,
            "The following CIDRs are invalid in publicAccessCidrs: [2001:db8::/32]"
        );
    }
}
