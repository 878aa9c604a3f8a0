//! Network-path findings: changes AWS accepts whose damage shows later,
//! when nodes stop joining or clients stop reaching the endpoint
//! (DESIGN.md section 1b, "Network paths"). Each looks at the endpoint
//! states a cluster's planned `UpdateClusterConfig` calls pass through, or at
//! its `private_access_from`, against what the provider read:
//!
//! - public access only, restricted to some CIDRs, at any step: every public
//!   address of the VPC's `available` NAT gateways must be inside the list,
//!   or nodes and Fargate pods that reach the API through them stop joining
//!   (blocks); with no NAT gateway, nodes with public addresses of their own
//!   cannot be checked (warns);
//! - IPv6 blocks sent in `publicAccessCidrs` to a cluster that is not an
//!   IPv6 cluster created in or after October 2024: EKS refuses them (the
//!   service model's doc of `VpcConfigRequest.publicAccessCidrs`) (blocks);
//! - a CIDR of `private_access_from` outside the VPC's blocks with no route
//!   to it, through a transit gateway, peering connection or virtual private
//!   gateway, in the route table of each of the cluster's subnets (warns);
//! - a security group of `private_access_from` in another VPC with no
//!   `active` peering connection between the two (warns);
//! - EKS Hybrid Nodes with public and private access both on (blocks at the
//!   end state, warns for a staged step through it).
//!
//! [`reads`] says which EC2 facts those need, for the clusters where one can
//! apply; `findings` turns what was read into findings. Facts that were not
//! read give no finding. Pure: no I/O, nothing rendered.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;

use super::path::endpoint_path;
use super::{Finding, FindingCode, Severity};
use crate::desired::{AccessSource, DesiredCluster};
use crate::endpoint::{EndpointSettings, PublicCidr, PublicCidrs};
use crate::live::{
    ClusterObservation, ClusterStatus, Live, LiveCluster, LiveVpc, SecurityGroupKey, VpcKey,
};
use crate::network::{Route, RouteTable, RouteTarget, ScopeReads};
use crate::text::{join_and, mode_name, some_of};

/// 2024-10-01T00:00:00Z: IPv6 clusters made from October 2024 have a
/// dual-stack public endpoint that takes IPv6 blocks; those made before do
/// not (service model `eks` 2017-11-01, doc of
/// `VpcConfigRequest.publicAccessCidrs`: "the public endpoints are
/// dual-stack for only IPv6 clusters that are made after October 2024. You
/// can't add IPv6 CIDR blocks to IPv4 clusters or IPv6 clusters that were
/// made before October 2024").
pub const DUAL_STACK_SINCE: i64 = 1_727_740_800;

/// The EKS Hybrid Nodes constraint, from the EKS User Guide, "Create an
/// Amazon EKS cluster with hybrid nodes", Considerations
/// (<https://docs.aws.amazon.com/eks/latest/userguide/hybrid-nodes-cluster-create.html>):
/// "Your cluster must use either Public or Private cluster endpoint
/// connectivity. Your cluster cannot use “Public and Private” cluster
/// endpoint connectivity, because the Amazon EKS Kubernetes API server
/// endpoint will resolve to the public IPs for hybrid nodes running outside
/// of your VPC."
pub const HYBRID_NODES_DOC: &str =
    "https://docs.aws.amazon.com/eks/latest/userguide/hybrid-nodes-cluster-create.html";

/// The EC2 reads the network findings need for the clusters `wants` of one
/// scope once they and their VPCs are read: NAT gateways for clusters whose
/// plan makes them public only with restricted CIDRs, route tables for
/// clusters with a `private_access_from` CIDR outside their VPC, the VPCs of
/// source security groups. Each VPC, subnet or group once.
pub fn scope_reads<'a>(
    wants: impl IntoIterator<Item = &'a DesiredCluster>,
    live: &Live,
) -> ScopeReads {
    let mut reads = ScopeReads::default();
    for want in wants {
        add_reads(&mut reads, want, live);
    }
    reads
}

/// Adds what the network findings of `want` need read.
fn add_reads(reads: &mut ScopeReads, want: &DesiredCluster, live: &Live) {
    let Some(ClusterObservation::Found(found)) = live.clusters.get(&want.key) else {
        return;
    };
    if !matches!(
        found.status,
        ClusterStatus::Active | ClusterStatus::Updating
    ) || want.endpoint.both_off()
    {
        return;
    }
    let path = endpoint_path(found, want);
    if public_only_step(found, &path).is_some() {
        reads.nat_vpcs.insert(found.vpc_id.clone());
    }
    if want.endpoint.private_access {
        let outside =
            vpc_of(live, want, found).is_some_and(|vpc| !outside_vpc(want, vpc, live).is_empty());
        if outside && !found.network.subnet_ids.is_empty() {
            reads.route_vpcs.insert(found.vpc_id.clone());
        }
        let groups: Vec<String> = want
            .private_access_from
            .iter()
            .filter_map(|s| match s {
                AccessSource::SecurityGroup(g) => Some(g.clone()),
                AccessSource::Cidr(_) | AccessSource::PrefixList(_) => None,
            })
            .collect();
        if !groups.is_empty() {
            reads
                .source_groups
                .entry(found.vpc_id.clone())
                .or_default()
                .extend(groups);
        }
    }
}

/// The network findings of one cluster that nothing else blocked, given the
/// endpoint calls planned for it.
pub(super) fn findings(
    want: &DesiredCluster,
    found: &LiveCluster,
    path: &[(EndpointSettings, EndpointSettings)],
    live: &Live,
) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(nat_finding(want, found, path, live));
    out.extend(ipv6_finding(want, found, path));
    out.extend(hybrid_finding(want, found, path));
    if want.endpoint.private_access {
        out.extend(route_findings(want, found, live));
        out.extend(peering_findings(want, found, live));
    }
    out
}

fn finding(
    want: &DesiredCluster,
    code: FindingCode,
    severity: Severity,
    message: String,
    hint: String,
) -> Finding {
    Finding {
        cluster: want.key.clone(),
        code,
        severity,
        message,
        hint: Some(hint),
    }
}

/// The public CIDRs of the first planned state that is public only with a
/// list that does not let everyone in, if any.
fn public_only_step(
    found: &LiveCluster,
    path: &[(EndpointSettings, EndpointSettings)],
) -> Option<PublicCidrs> {
    let mut cidrs = found
        .endpoint
        .public_access_cidrs
        .clone()
        .unwrap_or_default();
    for (_, after) in path {
        if let Some(sent) = &after.public_access_cidrs {
            cidrs = sent.clone();
        }
        if after.public_access && !after.private_access && restricted(&cidrs) {
            return Some(cidrs);
        }
    }
    None
}

/// A list that exists and does not hold `0.0.0.0/0`.
fn restricted(cidrs: &PublicCidrs) -> bool {
    !cidrs.is_empty()
        && !cidrs
            .iter()
            .any(|c| matches!(c.net(), Some(IpNet::V4(n)) if n.prefix_len() == 0))
}

fn cidr_list(cidrs: &PublicCidrs) -> String {
    let items: Vec<String> = cidrs.iter().map(|c| format!("`{c}`")).collect();
    some_of(&items, 4)
}

fn nat_finding(
    want: &DesiredCluster,
    found: &LiveCluster,
    path: &[(EndpointSettings, EndpointSettings)],
    live: &Live,
) -> Option<Finding> {
    let cidrs = public_only_step(found, path)?;
    let key = VpcKey {
        account: want.key.account.clone(),
        region: want.key.region.clone(),
        vpc_id: found.vpc_id.clone(),
    };
    let gateways = live.network.nat_gateways.get(&key).or_else(|| {
        live.network
            .nat_gateways
            .iter()
            .find(|(k, _)| k.region == key.region && k.vpc_id == key.vpc_id)
            .map(|(_, v)| v)
    })?;
    let k = &want.key;
    let addresses: Vec<IpAddr> = gateways
        .iter()
        .flat_map(|g| g.public_ips.iter().copied())
        .collect();
    if addresses.is_empty() {
        return Some(finding(
            want,
            FindingCode::NoNatGateway,
            Severity::Warn,
            format!(
                "`{k}` would have public access only, from {}, and VPC `{}` has no available NAT gateway: the public addresses of nodes and Fargate pods cannot be checked against the list",
                cidr_list(&cidrs),
                found.vpc_id
            ),
            "make sure every node's public address is in `public_access_cidrs`, or turn on `private_access` so nodes reach the API inside the VPC".to_string(),
        ));
    }
    let outside: Vec<IpAddr> = addresses
        .into_iter()
        .filter(|ip| {
            !cidrs
                .iter()
                .filter_map(PublicCidr::net)
                .any(|n| n.contains(ip))
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if outside.is_empty() {
        return None;
    }
    let named: Vec<String> = outside.iter().map(|ip| format!("`{ip}`")).collect();
    let add: Vec<String> = outside
        .iter()
        .map(|ip| match ip {
            IpAddr::V4(a) => format!("\"{a}/32\""),
            IpAddr::V6(a) => format!("\"{a}/128\""),
        })
        .collect();
    Some(finding(
        want,
        FindingCode::NatOutsidePublicCidrs,
        Severity::Block,
        format!(
            "`{k}` would have public access only, from {}, but the NAT gateway {} {} of VPC `{}` {} outside it: nodes and Fargate pods that reach the API through {} would stop joining",
            cidr_list(&cidrs),
            if outside.len() == 1 { "address" } else { "addresses" },
            join_and(&named),
            found.vpc_id,
            if outside.len() == 1 { "is" } else { "are" },
            if outside.len() == 1 { "it" } else { "them" },
        ),
        format!(
            "add {} to `public_access_cidrs`, or turn on `private_access`",
            join_and(&add)
        ),
    ))
}

fn ipv6_finding(
    want: &DesiredCluster,
    found: &LiveCluster,
    path: &[(EndpointSettings, EndpointSettings)],
) -> Option<Finding> {
    let sent: BTreeSet<String> = path
        .iter()
        .filter_map(|(_, after)| after.public_access_cidrs.as_ref())
        .flatten()
        .filter(|c| matches!(c.net(), Some(IpNet::V6(_))))
        .map(ToString::to_string)
        .collect();
    if sent.is_empty() {
        return None;
    }
    let family = found.network.ip_family.as_deref()?;
    let why = match (family, found.network.created_at) {
        ("ipv6", Some(t)) if t >= DUAL_STACK_SINCE => return None,
        ("ipv6", Some(t)) => format!(
            "an IPv6 cluster created on {}, before October 2024",
            date(t)
        ),
        ("ipv6", None) => return None,
        (other, _) => format!("an `{other}` cluster"),
    };
    let blocks: Vec<String> = sent.iter().map(|c| format!("`{c}`")).collect();
    Some(finding(
        want,
        FindingCode::Ipv6PublicCidrs,
        Severity::Block,
        format!(
            "`{}` would send the IPv6 {} {} in `publicAccessCidrs`, but it is {why}: EKS refuses them (`The following CIDRs are invalid in publicAccessCidrs`)",
            want.key,
            if blocks.len() == 1 { "block" } else { "blocks" },
            join_and(&blocks)
        ),
        "remove the IPv6 blocks from `public_access_cidrs`; only IPv6 clusters created from October 2024 on have a dual-stack public endpoint".to_string(),
    ))
}

/// `2024-09-30` for seconds since the epoch.
fn date(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_else(|_| secs.to_string())
}

fn hybrid_finding(
    want: &DesiredCluster,
    found: &LiveCluster,
    path: &[(EndpointSettings, EndpointSettings)],
) -> Option<Finding> {
    let networks = &found.network.remote_node_networks;
    if networks.is_empty() {
        return None;
    }
    let both = |s: &EndpointSettings| s.public_access && s.private_access;
    let (last, staged) = path.split_last()?;
    let nets: Vec<String> = networks.iter().map(|n| format!("`{n}`")).collect();
    let k = &want.key;
    if both(&last.1) {
        return Some(finding(
            want,
            FindingCode::HybridNodesPublicAndPrivate,
            Severity::Block,
            format!(
                "`{k}` runs EKS Hybrid Nodes (remote node networks {}), which need public or private endpoint access, not both: with both on, the endpoint resolves to its public addresses for hybrid nodes outside the VPC ({HYBRID_NODES_DOC})",
                some_of(&nets, 3)
            ),
            "set `public_access = false` (hybrid nodes reach the private endpoint over the VPN or Direct Connect) or `private_access = false`".to_string(),
        ));
    }
    if staged.iter().any(|(_, after)| both(after)) {
        let to = mode_name(last.1.public_access, last.1.private_access);
        return Some(finding(
            want,
            FindingCode::HybridNodesPublicAndPrivate,
            Severity::Warn,
            format!(
                "`{k}` runs EKS Hybrid Nodes (remote node networks {}), and the plan passes through public and private access on its way to {to}: while that step lasts, the endpoint resolves to its public addresses for hybrid nodes outside the VPC ({HYBRID_NODES_DOC})",
                some_of(&nets, 3)
            ),
            "apply in a maintenance window, or make sure the hybrid nodes can reach the public endpoint meanwhile (their egress addresses in `public_access_cidrs`)".to_string(),
        ));
    }
    None
}

fn vpc_of<'a>(live: &'a Live, want: &DesiredCluster, found: &LiveCluster) -> Option<&'a LiveVpc> {
    let key = VpcKey {
        account: want.key.account.clone(),
        region: want.key.region.clone(),
        vpc_id: found.vpc_id.clone(),
    };
    live.vpcs.get(&key).or_else(|| {
        live.vpcs
            .iter()
            .find(|(k, _)| k.region == key.region && k.vpc_id == key.vpc_id)
            .map(|(_, v)| v)
    })
}

/// The CIDRs of `private_access_from` outside every block of the VPC (none
/// when the VPC's blocks are not known), each with the prefix list it is an
/// entry of, if any (a list's entries as read; a list not read adds none).
fn outside_vpc<'a>(
    want: &'a DesiredCluster,
    vpc: &LiveVpc,
    live: &'a Live,
) -> Vec<(IpNet, Option<&'a str>)> {
    if vpc.cidr_blocks.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<(IpNet, Option<&str>)> = Vec::new();
    for source in &want.private_access_from {
        match source {
            AccessSource::Cidr(n) => out.push((*n, None)),
            AccessSource::PrefixList(id) => {
                let (account, region) = (&want.key.account, &want.key.region);
                if let Some(Some(list)) = super::allow_list::find_list(live, account, region, id) {
                    out.extend(list.entries.iter().map(|n| (*n, Some(id.as_str()))));
                }
            }
            AccessSource::SecurityGroup(_) => {}
        }
    }
    out.retain(|(n, _)| !vpc.cidr_blocks.iter().any(|b| b.contains(n)));
    out
}

/// The route table each of the cluster's subnets uses: its own, else the
/// VPC's main table. Subnets whose table was not read are left out.
fn subnet_tables<'a>(found: &LiveCluster, tables: &'a [RouteTable]) -> Vec<&'a RouteTable> {
    let mut out: Vec<&RouteTable> = Vec::new();
    for subnet in &found.network.subnet_ids {
        let table = tables
            .iter()
            .find(|t| t.subnets.contains(subnet))
            .or_else(|| tables.iter().find(|t| t.main));
        if let Some(t) = table {
            if !out.iter().any(|o| o.id == t.id) {
                out.push(t);
            }
        }
    }
    out
}

fn route_findings(want: &DesiredCluster, found: &LiveCluster, live: &Live) -> Vec<Finding> {
    let Some(vpc) = vpc_of(live, want, found) else {
        return Vec::new();
    };
    let outside = outside_vpc(want, vpc, live);
    if outside.is_empty() {
        return Vec::new();
    }
    let key = VpcKey {
        account: want.key.account.clone(),
        region: want.key.region.clone(),
        vpc_id: found.vpc_id.clone(),
    };
    let Some(tables) = live.network.route_tables.get(&key).or_else(|| {
        live.network
            .route_tables
            .iter()
            .find(|(k, _)| k.region == key.region && k.vpc_id == key.vpc_id)
            .map(|(_, v)| v)
    }) else {
        return Vec::new();
    };
    let used = subnet_tables(found, tables);
    if used.is_empty() {
        return Vec::new();
    }
    let blocks: Vec<String> = vpc.cidr_blocks.iter().map(|b| format!("`{b}`")).collect();
    let mut out = Vec::new();
    for (cidr, list) in outside {
        let lacking: Vec<String> = used
            .iter()
            .filter(|t| !routes_all_privately(&t.routes, &cidr))
            .map(|t| format!("`{}`", t.id))
            .collect();
        if lacking.is_empty() {
            continue;
        }
        out.push(finding(
            want,
            FindingCode::NoRouteToSource,
            Severity::Warn,
            format!(
                "`{}` lets `{cidr}`{} in on TCP 443, but it is outside VPC `{}` ({}) and the route {} {} of the cluster's subnets {} not send all of it through a transit gateway, peering connection or virtual private gateway: the private endpoint's answers cannot reach it",
                want.key,
                list.map(|id| format!(" (an entry of prefix list `{id}`)")).unwrap_or_default(),
                found.vpc_id,
                join_and(&blocks),
                if lacking.len() == 1 { "table" } else { "tables" },
                some_of(&lacking, 3),
                if lacking.len() == 1 { "does" } else { "do" },
            ),
            format!(
                "add a route to `{cidr}` through the transit gateway, peering connection or VPN that reaches those clients, or remove it from {}",
                list.map(|id| format!("prefix list `{id}`"))
                    .unwrap_or_else(|| "`private_access_from`".to_string())
            ),
        ));
    }
    out
}

/// Whether a route table sends every address of `source` where answers
/// reach a client outside the VPC (a transit gateway, peering connection or
/// virtual private gateway) or keep inside it (`local`), as VPC routing
/// picks a route: the most specific destination that holds the address.
/// A more specific route elsewhere (an internet or NAT gateway) takes its
/// part of the source away from a broader private route, and private
/// routes that each hold part of the source may together hold all of it.
fn routes_all_privately(routes: &[Route], source: &IpNet) -> bool {
    let overlaps = |d: &IpNet| d.contains(source) || source.contains(d);
    let mut deciding: Vec<&Route> = routes.iter().filter(|r| overlaps(&r.destination)).collect();
    // Most specific first: each route decides what no more specific route
    // decided before it.
    deciding.sort_by_key(|r| std::cmp::Reverse(r.destination.prefix_len()));
    // The parts of the source no route has decided yet, as address ranges.
    let mut open = vec![span(source)];
    for r in deciding {
        let (lo, hi) = span(&r.destination);
        let private = r.target == RouteTarget::Local || r.target.leaves_privately();
        let mut rest = Vec::with_capacity(open.len() + 1);
        for (a, b) in open {
            if hi < a || b < lo {
                rest.push((a, b));
                continue;
            }
            if !private {
                return false;
            }
            if a < lo {
                rest.push((a, lo - 1));
            }
            if hi < b {
                rest.push((hi + 1, b));
            }
        }
        open = rest;
    }
    // Addresses no route holds are not routed at all.
    open.is_empty()
}

/// The first and last address of `net`, as numbers (only compared with
/// nets of the same family: a route holds addresses of its own family).
fn span(net: &IpNet) -> (u128, u128) {
    match net {
        IpNet::V4(n) => (
            u128::from(u32::from(n.network())),
            u128::from(u32::from(n.broadcast())),
        ),
        IpNet::V6(n) => (u128::from(n.network()), u128::from(n.broadcast())),
    }
}

fn peering_findings(want: &DesiredCluster, found: &LiveCluster, live: &Live) -> Vec<Finding> {
    let mut out = Vec::new();
    for source in &want.private_access_from {
        let AccessSource::SecurityGroup(group) = source else {
            continue;
        };
        let key = SecurityGroupKey {
            account: want.key.account.clone(),
            region: want.key.region.clone(),
            group_id: group.clone(),
        };
        let Some(other) = live.network.group_vpcs.get(&key).or_else(|| {
            live.network
                .group_vpcs
                .iter()
                .find(|(k, _)| k.region == key.region && k.group_id == key.group_id)
                .map(|(_, v)| v)
        }) else {
            continue;
        };
        if *other == found.vpc_id {
            continue;
        }
        let vpc_key = VpcKey {
            account: want.key.account.clone(),
            region: want.key.region.clone(),
            vpc_id: found.vpc_id.clone(),
        };
        let Some(peerings) = live.network.peerings.get(&vpc_key).or_else(|| {
            live.network
                .peerings
                .iter()
                .find(|(k, _)| k.region == vpc_key.region && k.vpc_id == vpc_key.vpc_id)
                .map(|(_, v)| v)
        }) else {
            continue;
        };
        let between: Vec<_> = peerings
            .iter()
            .filter(|p| p.joins(&found.vpc_id, other))
            .collect();
        if between.iter().any(|p| p.status == "active") {
            continue;
        }
        let state = if between.is_empty() {
            "no peering connection".to_string()
        } else {
            let named: Vec<String> = between
                .iter()
                .map(|p| format!("`{}` is `{}`", p.id, p.status))
                .collect();
            format!("no active peering connection ({})", join_and(&named))
        };
        out.push(finding(
            want,
            FindingCode::NoActivePeering,
            Severity::Warn,
            format!(
                "`{}` lets security group `{group}` of VPC `{other}` in on TCP 443, but VPC `{}` has {state} with it: a rule that names a group of another VPC only matches across an active peering connection",
                want.key, found.vpc_id
            ),
            format!(
                "accept (or create) a peering connection between `{}` and `{other}`, or list the clients' CIDR blocks instead of the group",
                found.vpc_id
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::fake::{want as wanted, EndpointAccess, REGION};
    use crate::desired::ClusterKey;
    use crate::endpoint::public_cidrs;
    use crate::live::PrefixListKey;
    use crate::network::{NatGateway, Peering, Route, RouteTarget};

    fn mode(public: bool, private: bool) -> EndpointAccess {
        EndpointAccess { public, private }
    }

    /// `c` in `vpc-1` (`10.0.0.0/16`, subnets `s-1` and `s-2`), live as
    /// `live` with CIDRs `0.0.0.0/0`.
    fn world(want: DesiredCluster, live: (bool, bool)) -> (DesiredCluster, Live) {
        let mut l = Live::default();
        l.clusters.insert(
            want.key.clone(),
            ClusterObservation::Found(LiveCluster {
                key: want.key.clone(),
                arn: String::new(),
                status: ClusterStatus::Active,
                vpc_id: "vpc-1".into(),
                security_group_id: Some("sg-1".into()),
                endpoint: EndpointSettings::new(live.0, live.1)
                    .with_cidrs(Some(public_cidrs(&["0.0.0.0/0"]))),
                updates_in_progress: Vec::new(),
                tags: Default::default(),
                authentication_mode: None,
                network: crate::network::ClusterNetwork {
                    ip_family: Some("ipv4".into()),
                    created_at: Some(DUAL_STACK_SINCE + 86_400),
                    subnet_ids: vec!["s-1".into(), "s-2".into()],
                    remote_node_networks: Vec::new(),
                },
            }),
        );
        l.vpcs.insert(
            vpc_key(),
            LiveVpc {
                dns_support: true,
                dns_hostnames: true,
                dhcp_options_id: "dopt-1".into(),
                domain_name_servers: vec!["AmazonProvidedDNS".into()],
                cidr_blocks: vec!["10.0.0.0/16".parse().unwrap()],
            },
        );
        (want, l)
    }

    fn vpc_key() -> VpcKey {
        VpcKey {
            account: None,
            region: REGION.into(),
            vpc_id: "vpc-1".into(),
        }
    }

    fn with_cidrs(mut d: DesiredCluster, cidrs: &[&str]) -> DesiredCluster {
        d.endpoint = d.endpoint.with_cidrs(Some(public_cidrs(cidrs)));
        d
    }

    fn found(l: &Live, k: &ClusterKey) -> LiveCluster {
        match l.clusters.get(k) {
            Some(ClusterObservation::Found(c)) => c.clone(),
            _ => unreachable!("the world has it"),
        }
    }

    /// What a case expects: each finding's code and severity.
    type Found = Vec<(FindingCode, Severity)>;
    /// Live mode, wanted mode, and the severity expected.
    type HybridCase = ((bool, bool), (bool, bool), Option<Severity>);

    fn codes(d: &DesiredCluster, l: &Live) -> Found {
        let c = found(l, &d.key);
        let path = endpoint_path(&c, d);
        findings(d, &c, &path, l)
            .into_iter()
            .map(|f| (f.code, f.severity))
            .collect()
    }

    fn nat(ips: &[&str]) -> Vec<NatGateway> {
        ips.iter()
            .enumerate()
            .map(|(i, ip)| NatGateway {
                id: format!("nat-{i}"),
                public_ips: vec![ip.parse().unwrap()],
            })
            .collect()
    }

    #[test]
    fn nat_addresses_against_the_public_cidrs() {
        type Case<'a> = (
            &'a [&'a str],
            (bool, bool),
            Option<&'a [&'a str]>,
            Vec<(FindingCode, Severity)>,
        );
        let block = vec![(FindingCode::NatOutsidePublicCidrs, Severity::Block)];
        let cases: Vec<Case> = vec![
            // Public only, restricted, one address outside.
            (
                &["203.0.113.0/24"],
                (true, false),
                Some(&["203.0.113.9", "198.51.100.1"]),
                block.clone(),
            ),
            // Every address inside.
            (
                &["203.0.113.0/24", "198.51.100.1/32"],
                (true, false),
                Some(&["203.0.113.9", "198.51.100.1"]),
                vec![],
            ),
            // No gateway: a warning.
            (
                &["203.0.113.0/24"],
                (true, false),
                Some(&[]),
                vec![(FindingCode::NoNatGateway, Severity::Warn)],
            ),
            // Not read: nothing.
            (&["203.0.113.0/24"], (true, false), None, vec![]),
            // Private access stays on: nodes use it.
            (
                &["203.0.113.0/24"],
                (true, true),
                Some(&["198.51.100.1"]),
                vec![],
            ),
            // Open to all.
            (
                &["0.0.0.0/0"],
                (true, false),
                Some(&["198.51.100.1"]),
                vec![],
            ),
        ];
        for (cidrs, (public, private), gateways, want) in cases {
            let d = with_cidrs(wanted("c", mode(public, private), &[]), cidrs);
            let (d, mut l) = world(d, (true, true));
            if let Some(ips) = gateways {
                l.network.nat_gateways.insert(vpc_key(), nat(ips));
            }
            assert_eq!(codes(&d, &l), want, "{cidrs:?} {gateways:?}");
        }
    }

    #[test]
    fn a_cluster_already_public_only_is_checked_only_when_the_plan_changes_it() {
        let d = with_cidrs(wanted("c", mode(true, false), &[]), &["203.0.113.0/24"]);
        let (d, mut l) = world(d, (true, false));
        l.network
            .nat_gateways
            .insert(vpc_key(), nat(&["198.51.100.1"]));
        assert_eq!(codes(&d, &l).len(), 1, "the CIDRs change");
        if let Some(ClusterObservation::Found(c)) = l.clusters.get_mut(&d.key) {
            c.endpoint = c
                .endpoint
                .clone()
                .with_cidrs(Some(public_cidrs(&["203.0.113.0/24"])));
        }
        assert_eq!(codes(&d, &l), vec![], "nothing changes");
    }

    #[test]
    fn ipv6_public_cidrs_by_family_and_age() {
        let cases: &[(&str, i64, bool)] = &[
            ("ipv4", DUAL_STACK_SINCE + 1, true),
            ("ipv6", DUAL_STACK_SINCE - 1, true),
            ("ipv6", DUAL_STACK_SINCE, false),
        ];
        for (family, created, blocks) in cases {
            let d = with_cidrs(
                wanted("c", mode(true, true), &[]),
                &["203.0.113.0/24", "2001:db8::/32"],
            );
            let (d, mut l) = world(d, (true, true));
            if let Some(ClusterObservation::Found(c)) = l.clusters.get_mut(&d.key) {
                c.network.ip_family = Some(family.to_string());
                c.network.created_at = Some(*created);
            }
            let want = if *blocks {
                vec![(FindingCode::Ipv6PublicCidrs, Severity::Block)]
            } else {
                vec![]
            };
            assert_eq!(codes(&d, &l), want, "{family} {created}");
        }
    }

    #[test]
    fn routes_back_to_private_sources() {
        let table = |id: &str, main: bool, subnets: &[&str], routes: &[(&str, &str)]| RouteTable {
            id: id.into(),
            main,
            subnets: subnets.iter().map(|s| s.to_string()).collect(),
            routes: routes
                .iter()
                .map(|(d, t)| Route {
                    destination: d.parse().unwrap(),
                    target: RouteTarget::of_id(t),
                })
                .collect(),
        };
        let warn = vec![(FindingCode::NoRouteToSource, Severity::Warn)];
        let cases: Vec<(Vec<RouteTable>, Found)> = vec![
            // The main table, for both subnets, goes to the internet only.
            (
                vec![table("rtb-m", true, &[], &[("0.0.0.0/0", "igw-1")])],
                warn.clone(),
            ),
            // A transit gateway route in the main table.
            (
                vec![table("rtb-m", true, &[], &[("10.0.0.0/8", "tgw-1")])],
                vec![],
            ),
            // One subnet has its own table with the route, the other uses
            // the main table without it.
            (
                vec![
                    table("rtb-m", true, &[], &[]),
                    table("rtb-1", false, &["s-1"], &[("10.50.0.0/16", "pcx-1")]),
                ],
                warn.clone(),
            ),
            // Both subnets: a VPN route.
            (
                vec![table(
                    "rtb-1",
                    false,
                    &["s-1", "s-2"],
                    &[("10.50.0.0/16", "vgw-1")],
                )],
                vec![],
            ),
            // A route to part of the source is not enough.
            (
                vec![table("rtb-m", true, &[], &[("10.50.1.0/24", "tgw-1")])],
                warn.clone(),
            ),
            // The most specific route wins: one to the internet gateway for
            // the whole source takes it from the broader transit route...
            (
                vec![table(
                    "rtb-m",
                    true,
                    &[],
                    &[("10.0.0.0/8", "tgw-1"), ("10.50.0.0/16", "igw-1")],
                )],
                warn.clone(),
            ),
            // ...and one through a NAT gateway for part of it, that part.
            (
                vec![table(
                    "rtb-m",
                    true,
                    &[],
                    &[("10.0.0.0/8", "tgw-1"), ("10.50.7.0/24", "nat-1")],
                )],
                warn.clone(),
            ),
            // A more specific private route inside a broader one changes
            // nothing.
            (
                vec![table(
                    "rtb-m",
                    true,
                    &[],
                    &[
                        ("0.0.0.0/0", "igw-1"),
                        ("10.0.0.0/8", "tgw-1"),
                        ("10.50.7.0/24", "pcx-1"),
                    ],
                )],
                vec![],
            ),
            // Two private halves hold all of the source between them,
            // though neither holds it alone.
            (
                vec![table(
                    "rtb-m",
                    true,
                    &[],
                    &[("10.50.0.0/17", "pcx-1"), ("10.50.128.0/17", "vgw-1")],
                )],
                vec![],
            ),
            // One half only leaves the other half unrouted.
            (
                vec![table("rtb-m", true, &[], &[("10.50.0.0/17", "pcx-1")])],
                warn,
            ),
            // No table read: nothing.
            (vec![], vec![]),
        ];
        for (tables, want) in cases {
            let d = wanted("c", mode(true, true), &["10.50.0.0/16", "10.0.3.0/24"]);
            let (d, mut l) = world(d, (true, true));
            l.network.route_tables.insert(vpc_key(), tables.clone());
            assert_eq!(codes(&d, &l), want, "{tables:?}");
        }
    }

    #[test]
    fn the_most_specific_route_decides_each_address() {
        let routes = |rs: &[(&str, &str)]| -> Vec<Route> {
            rs.iter()
                .map(|(d, t)| Route {
                    destination: d.parse().unwrap(),
                    target: RouteTarget::of_id(t),
                })
                .collect()
        };
        let source: IpNet = "10.0.0.0/8".parse().unwrap();
        // The VPC's own block stays inside it; the rest goes through the
        // transit gateway.
        let local_then_tgw = routes(&[("10.0.0.0/16", "local"), ("10.0.0.0/8", "tgw-1")]);
        assert!(routes_all_privately(&local_then_tgw, &source));
        assert!(!routes_all_privately(
            &routes(&[("10.0.0.0/16", "local")]),
            &source
        ));
        // A default route through the transit gateway still loses the
        // part a NAT route takes.
        assert!(!routes_all_privately(
            &routes(&[("0.0.0.0/0", "tgw-1"), ("10.200.0.0/16", "nat-1")]),
            &source
        ));
        // Routes of the other family hold none of the source.
        assert!(!routes_all_privately(
            &routes(&[("::/0", "tgw-1")]),
            &source
        ));
        let v6: IpNet = "2600:1f00::/40".parse().unwrap();
        assert!(routes_all_privately(
            &routes(&[("0.0.0.0/0", "igw-1"), ("::/0", "tgw-1")]),
            &v6
        ));
        assert!(!routes_all_privately(&[], &v6));
    }

    #[test]
    fn groups_across_a_peering() {
        let cases: &[(&str, Option<&str>, bool)] = &[
            ("vpc-2", Some("active"), false),
            ("vpc-2", Some("pending-acceptance"), true),
            ("vpc-2", None, true),
            ("vpc-1", None, false),
        ];
        for (group_vpc, status, warns) in cases {
            let d = wanted("c", mode(true, true), &["sg-0000000e"]);
            let (d, mut l) = world(d, (true, true));
            l.network.group_vpcs.insert(
                SecurityGroupKey {
                    account: None,
                    region: REGION.into(),
                    group_id: "sg-0000000e".into(),
                },
                group_vpc.to_string(),
            );
            let peerings = status
                .map(|s| {
                    vec![Peering {
                        id: "pcx-1".into(),
                        requester_vpc: "vpc-2".into(),
                        accepter_vpc: "vpc-1".into(),
                        status: s.into(),
                    }]
                })
                .unwrap_or_default();
            l.network.peerings.insert(vpc_key(), peerings);
            let want = if *warns {
                vec![(FindingCode::NoActivePeering, Severity::Warn)]
            } else {
                vec![]
            };
            assert_eq!(codes(&d, &l), want, "{group_vpc} {status:?}");
        }
    }

    #[test]
    fn hybrid_nodes_and_public_and_private_access() {
        let cases: &[HybridCase] = &[
            // Ends with both on: blocks.
            ((true, false), (true, true), Some(Severity::Block)),
            // Staged through both on the way to private only: warns.
            ((true, false), (false, true), Some(Severity::Warn)),
            // Private only to public only is staged through both too.
            ((false, true), (true, false), Some(Severity::Warn)),
            // Nothing to change.
            ((true, false), (true, false), None),
        ];
        for (live, want_mode, severity) in cases {
            let d = wanted("c", mode(want_mode.0, want_mode.1), &[]);
            let (d, mut l) = world(d, *live);
            if let Some(ClusterObservation::Found(c)) = l.clusters.get_mut(&d.key) {
                c.network.remote_node_networks = vec!["192.168.100.0/23".into()];
            }
            let got: Vec<(FindingCode, Severity)> = codes(&d, &l)
                .into_iter()
                .filter(|(c, _)| *c == FindingCode::HybridNodesPublicAndPrivate)
                .collect();
            let want: Vec<(FindingCode, Severity)> = severity
                .iter()
                .map(|s| (FindingCode::HybridNodesPublicAndPrivate, *s))
                .collect();
            assert_eq!(got, want, "{live:?} -> {want_mode:?}");
        }
    }

    #[test]
    fn reads_only_what_a_finding_can_use() {
        let a = with_cidrs(wanted("a", mode(true, false), &[]), &["203.0.113.0/24"]);
        let b = wanted("b", mode(true, true), &["10.0.5.0/24", "sg-0000000e"]);
        let c = wanted("c", mode(true, true), &["10.50.0.0/16"]);
        let (a, mut l) = world(a, (true, true));
        for d in [&b, &c] {
            let (_, more) = world(d.clone(), (true, true));
            l.clusters.extend(more.clusters);
        }
        let r = scope_reads([&a, &b, &c], &l);
        assert_eq!(r.nat_vpcs, BTreeSet::from(["vpc-1".to_string()]));
        // Only `c` has a source outside the VPC.
        assert_eq!(r.route_vpcs, BTreeSet::from(["vpc-1".to_string()]));
        assert_eq!(
            r.source_groups.get("vpc-1"),
            Some(&BTreeSet::from(["sg-0000000e".to_string()]))
        );
    }

    #[test]
    fn a_prefix_lists_entries_are_sources_with_a_route_back_too() {
        let mut d = wanted("c", mode(true, true), &[]);
        d.private_access_from = [AccessSource::PrefixList("pl-1".into())]
            .into_iter()
            .collect();
        let (d, mut l) = world(d, (true, true));
        // One entry outside the VPC, one inside it.
        l.prefix_lists.insert(
            PrefixListKey {
                account: None,
                region: REGION.into(),
                id: "pl-1".into(),
            },
            Some(crate::live::LivePrefixList {
                entries: ["10.50.0.0/16", "10.0.5.0/24"]
                    .iter()
                    .map(|n| n.parse().unwrap())
                    .collect(),
                max_entries: Some(10),
                ipv6: false,
            }),
        );
        // The reads ask for the VPC's route tables, as for a CIDR source.
        let r = scope_reads([&d], &l);
        assert_eq!(r.route_vpcs, BTreeSet::from(["vpc-1".to_string()]));
        let table = |route: (&str, &str)| RouteTable {
            id: "rtb-m".into(),
            main: true,
            subnets: Vec::new(),
            routes: vec![Route {
                destination: route.0.parse().unwrap(),
                target: RouteTarget::of_id(route.1),
            }],
        };
        // Only the internet: the entry outside the VPC is warned of, by
        // its list.
        l.network
            .route_tables
            .insert(vpc_key(), vec![table(("0.0.0.0/0", "igw-1"))]);
        let c = found(&l, &d.key);
        let got = findings(&d, &c, &endpoint_path(&c, &d), &l);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].code, FindingCode::NoRouteToSource);
        assert!(
            got[0]
                .message
                .contains("lets `10.50.0.0/16` (an entry of prefix list `pl-1`) in on TCP 443"),
            "{}",
            got[0].message
        );
        assert!(got[0]
            .hint
            .as_deref()
            .is_some_and(|h| h.ends_with("or remove it from prefix list `pl-1`")));
        // Through a transit gateway: nothing to say.
        l.network
            .route_tables
            .insert(vpc_key(), vec![table(("10.50.0.0/16", "tgw-1"))]);
        assert_eq!(codes(&d, &l), vec![]);
        // A list EC2 does not know has no entries to check (the planner
        // blocks the cluster for it).
        l.prefix_lists.values_mut().for_each(|v| *v = None);
        l.network
            .route_tables
            .insert(vpc_key(), vec![table(("0.0.0.0/0", "igw-1"))]);
        assert_eq!(codes(&d, &l), vec![]);
    }

    #[test]
    fn dual_stack_starts_on_the_first_of_october_2024() {
        assert_eq!(date(DUAL_STACK_SINCE), "2024-10-01");
        assert_eq!(date(DUAL_STACK_SINCE - 1), "2024-09-30");
    }

    #[test]
    fn a_list_with_everyone_is_not_restricted() {
        let list = |v: &[&str]| -> PublicCidrs { crate::endpoint::public_cidrs(v) };
        assert!(!restricted(&list(&["0.0.0.0/0"])));
        assert!(!restricted(&list(&["203.0.113.0/24", "0.0.0.0/0"])));
        assert!(restricted(&list(&["203.0.113.0/24"])));
        assert!(restricted(&list(&["::/0"])));
        assert!(!restricted(&list(&[])));
    }
}
