//! The reads of the network findings (`plan::network`): the `available` NAT
//! gateways of a VPC (`DescribeNatGateways`), the route tables of the
//! VPCs of clusters' subnets (`DescribeRouteTables`: a subnet's own table,
//! or its VPC's main one), the VPC of each source security group
//! (`DescribeSecurityGroups` filtered by `group-id`, which answers without
//! the groups it does not find instead of failing), and the peering
//! connections of a VPC (`DescribeVpcPeeringConnections`).
//!
//! Each is one filtered call per scope (credentials and region) for up to
//! [`BATCH`] VPCs, subnets or groups, following `NextToken` to the last page,
//! so the cost grows with the VPCs and regions of a fleet, not its clusters.
//! A scope's reads go one call after another, as one job of the fleet read
//! (`fleet`), started as soon as that scope's own reads end, so no scope
//! waits for the slowest. Which VPCs, subnets and groups to read is the
//! request's ([`ScopeReads`], built by the planner's side); this file only
//! reads and puts AWS's answers into [`LiveNetwork`], and it also turns the
//! network parts of `DescribeCluster` and `DescribeVpcs` into their live
//! types.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::Filter;
use ipnet::IpNet;

use super::clients::Clients;
use super::fleet::BATCH;
use super::paging;
use super::sdk_error::sdk_error;
use super::{ProviderError, Scope};
use crate::live::{SecurityGroupKey, VpcKey};
use crate::network::{
    ClusterNetwork, LiveNetwork, NatGateway, Peering, Route, RouteTable, RouteTarget, ScopeReads,
};

/// Pages asked of `DescribeNatGateways` and `DescribeVpcPeeringConnections`
/// (their largest) and of `DescribeRouteTables` (its largest is 100).
const NAT_PAGE: i32 = 1000;
const ROUTE_PAGE: i32 = 100;
const PEERING_PAGE: i32 = 1000;
/// At most this many pages of one filtered listing: a guard against a
/// `NextToken` that never ends, far past any real VPC's count (more is an
/// error, see `paging`).
const MAX_PAGES: usize = 1000;

/// The reads of one scope, one kind after another (the peerings depend on
/// where the source groups are).
pub(super) async fn read_scope(
    c: &Clients,
    scope: &Scope,
    reads: &ScopeReads,
) -> Result<LiveNetwork, ProviderError> {
    let vpc_key = |vpc_id: &str| VpcKey {
        account: scope.account.clone(),
        region: scope.region.clone(),
        vpc_id: vpc_id.to_string(),
    };
    let mut out = LiveNetwork::default();

    let nat_vpcs: Vec<String> = reads.nat_vpcs.iter().cloned().collect();
    for chunk in nat_vpcs.chunks(BATCH) {
        let found = nat_gateways(c, chunk).await?;
        for vpc in chunk {
            out.nat_gateways
                .insert(vpc_key(vpc), found.get(vpc).cloned().unwrap_or_default());
        }
    }

    // Every table of the VPCs whose subnets matter, in one call per batch:
    // each subnet's own table or, without one, the VPC's main table is
    // among them (filtering by subnet, then asking for the main tables of
    // the VPCs where some subnet has none, took two calls one after the
    // other). A table names its VPC and its associations.
    let vpcs: Vec<String> = reads.route_vpcs.iter().cloned().collect();
    for vpc in &vpcs {
        out.route_tables.entry(vpc_key(vpc)).or_default();
    }
    for chunk in vpcs.chunks(BATCH) {
        for (vpc, t) in route_tables(c, chunk).await? {
            out.route_tables.entry(vpc_key(&vpc)).or_default().push(t);
        }
    }
    // In the order of their ids, whatever the order of the answer.
    for tables in out.route_tables.values_mut() {
        tables.sort_by(|a, b| a.id.cmp(&b.id));
    }

    let groups: Vec<String> = reads
        .source_groups
        .values()
        .flatten()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut group_vpcs: BTreeMap<String, String> = BTreeMap::new();
    for chunk in groups.chunks(BATCH) {
        group_vpcs.extend(security_group_vpcs(c, chunk).await?);
    }
    // Peerings matter only for a cluster whose source group is in another VPC.
    let peered: Vec<String> = reads
        .source_groups
        .iter()
        .filter(|(vpc, gs)| {
            gs.iter()
                .any(|g| group_vpcs.get(g).is_some_and(|gv| gv != *vpc))
        })
        .map(|(vpc, _)| vpc.clone())
        .collect();
    for chunk in peered.chunks(BATCH) {
        let mut found: BTreeMap<String, Peering> = BTreeMap::new();
        for side in ["requester-vpc-info.vpc-id", "accepter-vpc-info.vpc-id"] {
            for p in peerings(c, side, chunk).await? {
                found.insert(p.id.clone(), p);
            }
        }
        for vpc in chunk {
            let of_vpc = found
                .values()
                .filter(|p| &p.requester_vpc == vpc || &p.accepter_vpc == vpc)
                .cloned()
                .collect();
            out.peerings.insert(vpc_key(vpc), of_vpc);
        }
    }
    for (group_id, vpc) in group_vpcs {
        out.group_vpcs.insert(
            SecurityGroupKey {
                account: scope.account.clone(),
                region: scope.region.clone(),
                group_id,
            },
            vpc,
        );
    }
    Ok(out)
}

fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

/// `DescribeNatGateways` with `vpc-id` in `vpcs` and `state` `available`,
/// every page: the gateways of each VPC.
async fn nat_gateways(
    c: &Clients,
    vpcs: &[String],
) -> Result<BTreeMap<String, Vec<NatGateway>>, ProviderError> {
    let mut out: BTreeMap<String, Vec<NatGateway>> = BTreeMap::new();
    let what = || format!("the NAT gateways of {} VPCs", vpcs.len());
    paging::follow(
        "DescribeNatGateways",
        what,
        MAX_PAGES,
        |token| async move {
            c.ec2
                .describe_nat_gateways()
                .filter(filter("vpc-id", vpcs))
                .filter(filter("state", &["available".to_string()]))
                .max_results(NAT_PAGE)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(c, "DescribeNatGateways", e))
        },
        |resp| {
            for g in resp.nat_gateways() {
                let (Some(id), Some(vpc)) = (g.nat_gateway_id(), g.vpc_id()) else {
                    continue;
                };
                out.entry(vpc.to_string()).or_default().push(NatGateway {
                    id: id.to_string(),
                    public_ips: g
                        .nat_gateway_addresses()
                        .iter()
                        .filter_map(|a| a.public_ip()?.parse().ok())
                        .collect(),
                });
            }
            Ok(resp.next_token().map(str::to_string))
        },
    )
    .await?;
    Ok(out)
}

/// `DescribeRouteTables` with `vpc-id` in `vpcs`, every page: each table
/// with its VPC.
async fn route_tables(
    c: &Clients,
    vpcs: &[String],
) -> Result<Vec<(String, RouteTable)>, ProviderError> {
    let mut out = Vec::new();
    let what = || format!("the route tables of {} VPCs", vpcs.len());
    paging::follow(
        "DescribeRouteTables",
        what,
        MAX_PAGES,
        |token| async move {
            c.ec2
                .describe_route_tables()
                .filters(filter("vpc-id", vpcs))
                .max_results(ROUTE_PAGE)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(c, "DescribeRouteTables", e))
        },
        |resp| {
            for t in resp.route_tables() {
                let (Some(id), Some(vpc)) = (t.route_table_id(), t.vpc_id()) else {
                    continue;
                };
                let routes = t
                    .routes()
                    .iter()
                    .filter_map(|r| {
                        let destination = r
                            .destination_cidr_block()
                            .or(r.destination_ipv6_cidr_block())?
                            .parse::<IpNet>()
                            .ok()?;
                        let target = r
                            .transit_gateway_id()
                            .or(r.vpc_peering_connection_id())
                            .or(r.gateway_id())
                            .or(r.nat_gateway_id())
                            .or(r.network_interface_id())
                            .or(r.instance_id())
                            .map(RouteTarget::of_id)
                            .unwrap_or_else(|| RouteTarget::Other(String::new()));
                        Some(Route {
                            destination,
                            target,
                        })
                    })
                    .collect();
                let assoc = t.associations();
                out.push((
                    vpc.to_string(),
                    RouteTable {
                        id: id.to_string(),
                        main: assoc.iter().any(|a| a.main() == Some(true)),
                        subnets: assoc
                            .iter()
                            .filter_map(|a| a.subnet_id().map(str::to_string))
                            .collect(),
                        routes,
                    },
                ));
            }
            Ok(resp.next_token().map(str::to_string))
        },
    )
    .await?;
    Ok(out)
}

/// The VPC of each of `groups` that exists (`DescribeSecurityGroups` with a
/// `group-id` filter: a group that is not there, or is in another account,
/// is left out rather than failing the call).
async fn security_group_vpcs(
    c: &Clients,
    groups: &[String],
) -> Result<BTreeMap<String, String>, ProviderError> {
    let mut out = BTreeMap::new();
    let what = || format!("the VPCs of {} security groups", groups.len());
    paging::follow(
        "DescribeSecurityGroups",
        what,
        MAX_PAGES,
        |token| async move {
            c.ec2
                .describe_security_groups()
                .filters(filter("group-id", groups))
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(c, "DescribeSecurityGroups", e))
        },
        |resp| {
            for g in resp.security_groups() {
                if let (Some(id), Some(vpc)) = (g.group_id(), g.vpc_id()) {
                    out.insert(id.to_string(), vpc.to_string());
                }
            }
            Ok(resp.next_token().map(str::to_string))
        },
    )
    .await?;
    Ok(out)
}

/// `DescribeVpcPeeringConnections` with `side` (`requester-vpc-info.vpc-id`
/// or `accepter-vpc-info.vpc-id`) in `vpcs`, every page, whatever the status
/// (the finding names a connection that is not `active`).
async fn peerings(c: &Clients, side: &str, vpcs: &[String]) -> Result<Vec<Peering>, ProviderError> {
    let mut out = Vec::new();
    let what = || format!("the peering connections of {} VPCs", vpcs.len());
    paging::follow(
        "DescribeVpcPeeringConnections",
        what,
        MAX_PAGES,
        |token| async move {
            c.ec2
                .describe_vpc_peering_connections()
                .filters(filter(side, vpcs))
                .max_results(PEERING_PAGE)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(c, "DescribeVpcPeeringConnections", e))
        },
        |resp| {
            for p in resp.vpc_peering_connections() {
                let vpc = |info: Option<&aws_sdk_ec2::types::VpcPeeringConnectionVpcInfo>| {
                    info.and_then(|i| i.vpc_id())
                        .unwrap_or_default()
                        .to_string()
                };
                let Some(id) = p.vpc_peering_connection_id() else {
                    continue;
                };
                out.push(Peering {
                    id: id.to_string(),
                    requester_vpc: vpc(p.requester_vpc_info()),
                    accepter_vpc: vpc(p.accepter_vpc_info()),
                    status: p
                        .status()
                        .and_then(|s| s.code())
                        .map(|c| c.as_str().to_string())
                        .unwrap_or_default(),
                });
            }
            Ok(resp.next_token().map(str::to_string))
        },
    )
    .await?;
    Ok(out)
}

/// The network parts of a `DescribeCluster` answer.
pub(super) fn cluster_network(c: &aws_sdk_eks::types::Cluster) -> ClusterNetwork {
    ClusterNetwork {
        ip_family: c
            .kubernetes_network_config()
            .and_then(|k| k.ip_family())
            .map(|f| f.as_str().to_string()),
        created_at: c.created_at().map(|t| t.secs()),
        subnet_ids: c
            .resources_vpc_config()
            .map(|v| v.subnet_ids().to_vec())
            .unwrap_or_default(),
        remote_node_networks: c
            .remote_network_config()
            .map(|r| {
                r.remote_node_networks()
                    .iter()
                    .flat_map(|n| n.cidrs().iter().cloned())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The IPv4 blocks of a `DescribeVpcs` item in state `associated`: the
/// primary block and the secondary ones (`CidrBlockAssociationSet`), or the
/// primary `CidrBlock` alone when the set is missing.
pub(super) fn vpc_cidr_blocks(v: &aws_sdk_ec2::types::Vpc) -> Vec<IpNet> {
    let set = v.cidr_block_association_set();
    let blocks: Vec<IpNet> = if set.is_empty() {
        v.cidr_block()
            .and_then(|b| b.parse().ok())
            .into_iter()
            .collect()
    } else {
        set.iter()
            .filter(|a| {
                a.cidr_block_state()
                    .and_then(|s| s.state())
                    .is_some_and(|s| s.as_str() == "associated")
            })
            .filter_map(|a| a.cidr_block()?.parse().ok())
            .collect()
    };
    blocks.into_iter().map(|n: IpNet| n.trunc()).collect()
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{VpcCidrBlockAssociation, VpcCidrBlockState, VpcCidrBlockStateCode};

    use super::*;

    #[test]
    fn only_associated_blocks_belong_to_the_vpc() {
        let block = |cidr: &str, state: VpcCidrBlockStateCode| {
            VpcCidrBlockAssociation::builder()
                .cidr_block(cidr)
                .cidr_block_state(VpcCidrBlockState::builder().state(state).build())
                .build()
        };
        let vpc = aws_sdk_ec2::types::Vpc::builder()
            .cidr_block("10.0.0.0/16")
            .cidr_block_association_set(block("10.0.0.0/16", VpcCidrBlockStateCode::Associated))
            .cidr_block_association_set(block("10.1.0.0/16", VpcCidrBlockStateCode::Associated))
            .cidr_block_association_set(block("10.2.0.0/16", VpcCidrBlockStateCode::Disassociated))
            .build();
        let got: Vec<String> = vpc_cidr_blocks(&vpc)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["10.0.0.0/16", "10.1.0.0/16"]);
        // Without the set, the primary block alone.
        let bare = aws_sdk_ec2::types::Vpc::builder()
            .cidr_block("172.31.0.0/16")
            .build();
        assert_eq!(
            vpc_cidr_blocks(&bare),
            ["172.31.0.0/16".parse::<IpNet>().unwrap()]
        );
    }

    #[test]
    fn a_clusters_network_from_describe_cluster() {
        use aws_sdk_eks::types::{
            Cluster, IpFamily, KubernetesNetworkConfigResponse, RemoteNetworkConfigResponse,
            RemoteNodeNetwork, VpcConfigResponse,
        };
        let c = Cluster::builder()
            .created_at(aws_smithy_types::DateTime::from_secs(1_727_740_800))
            .kubernetes_network_config(
                KubernetesNetworkConfigResponse::builder()
                    .ip_family(IpFamily::Ipv4)
                    .build(),
            )
            .resources_vpc_config(
                VpcConfigResponse::builder()
                    .subnet_ids("subnet-1")
                    .subnet_ids("subnet-2")
                    .build(),
            )
            .remote_network_config(
                RemoteNetworkConfigResponse::builder()
                    .remote_node_networks(
                        RemoteNodeNetwork::builder()
                            .cidrs("192.168.100.0/23")
                            .cidrs("192.168.200.0/24")
                            .build(),
                    )
                    .build(),
            )
            .build();
        let n = cluster_network(&c);
        assert_eq!(n.ip_family.as_deref(), Some("ipv4"));
        assert_eq!(n.created_at, Some(1_727_740_800));
        assert_eq!(n.subnet_ids, ["subnet-1", "subnet-2"]);
        assert_eq!(
            n.remote_node_networks,
            ["192.168.100.0/23", "192.168.200.0/24"]
        );
        assert!(cluster_network(&Cluster::builder().build()).is_empty());
    }
}
