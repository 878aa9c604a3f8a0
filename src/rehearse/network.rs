//! The network facts in the rehearsal's copy: what the real read found of a
//! cluster's IP family, creation time, subnets and hybrid node networks, of
//! its VPC's blocks, and of the NAT gateways, route tables, peering
//! connections and source groups the network findings read. Without them the
//! copy would plan a cluster the real plan blocks (and change it).
//!
//! Pure data, like `world`: it fills world tables and starts nothing.

use std::collections::BTreeSet;

use crate::live::{Live, LiveCluster, LiveVpc};
use crate::network::RouteTarget;
use crate::sim::network::{NatGatewayDef, RouteDef, RouteTableDef, VpcPeeringDef};
use crate::sim::world::VpcDef;
use crate::sim::World;

/// The stand-in block of a VPC whose blocks were not read.
pub(super) const STAND_IN_BLOCK: &str = "10.0.0.0/16";

/// `(cidr_block, secondary_cidr_blocks)` of a VPC that was read.
pub(super) fn vpc_blocks(vpc: &LiveVpc) -> (String, Vec<String>) {
    let mut blocks = vpc.cidr_blocks.iter().map(ToString::to_string);
    let primary = blocks.next().unwrap_or_else(|| STAND_IN_BLOCK.to_string());
    (primary, blocks.collect())
}

/// The network fields of a cluster's world table:
/// `(subnet_ids, ip_family, created_at, remote_node_networks)`.
pub(super) type ClusterFields = (Option<Vec<String>>, String, Option<String>, Vec<String>);

pub(super) fn cluster_fields(c: &LiveCluster) -> ClusterFields {
    let n = &c.network;
    let created = n.created_at.and_then(|s| {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(s).ok()?);
        Some(humantime::format_rfc3339_seconds(t).to_string())
    });
    (
        (!n.subnet_ids.is_empty()).then(|| n.subnet_ids.clone()),
        n.ip_family.clone().unwrap_or_else(|| "ipv4".to_string()),
        created,
        n.remote_node_networks.clone(),
    )
}

/// A stand-in VPC for one the copy needs but did not read (the VPC of a
/// source group, the other side of a peering connection).
fn stand_in_vpc(
    world: &mut World,
    vpcs: &mut BTreeSet<(Option<String>, String, String)>,
    account: &Option<String>,
    region: &str,
    id: &str,
) {
    if vpcs.insert((account.clone(), region.to_string(), id.to_string())) {
        world.vpc.push(VpcDef {
            id: id.to_string(),
            region: region.to_string(),
            account: account.clone(),
            dns_support: true,
            dns_hostnames: false,
            dhcp_options: None,
            cidr_block: STAND_IN_BLOCK.to_string(),
            secondary_cidr_blocks: Vec::new(),
        });
    }
}

/// The VPC a source group is in, as the real read found it.
pub(super) fn group_vpc<'a>(live: &'a Live, region: &str, group: &str) -> Option<&'a String> {
    live.network
        .group_vpcs
        .iter()
        .find(|(k, _)| k.region == region && k.group_id == group)
        .map(|(_, v)| v)
}

/// Adds what the network findings read: NAT gateways, route tables and
/// peering connections, with stand-ins for VPCs the copy lacks. `acct` gives
/// the copy's account for a live one; `vpcs` holds the VPCs already in the
/// world.
pub(super) fn add(
    world: &mut World,
    live: &Live,
    acct: &dyn Fn(&Option<String>) -> Option<String>,
    vpcs: &mut BTreeSet<(Option<String>, String, String)>,
) {
    for (key, gateways) in &live.network.nat_gateways {
        let account = acct(&key.account);
        stand_in_vpc(world, vpcs, &account, &key.region, &key.vpc_id);
        for g in gateways {
            // The emulator's gateway has one address; one table per address.
            for (i, ip) in g.public_ips.iter().enumerate() {
                world.nat_gateway.push(NatGatewayDef {
                    id: if i == 0 {
                        g.id.clone()
                    } else {
                        format!("{}-{i}", g.id)
                    },
                    region: key.region.clone(),
                    account: account.clone(),
                    vpc_id: key.vpc_id.clone(),
                    public_ip: Some(ip.to_string()),
                    state: "available".to_string(),
                });
            }
        }
    }
    for (key, tables) in &live.network.route_tables {
        let account = acct(&key.account);
        stand_in_vpc(world, vpcs, &account, &key.region, &key.vpc_id);
        for t in tables {
            let routes = t
                .routes
                .iter()
                .filter_map(|r| {
                    let target = match &r.target {
                        RouteTarget::Local => return None,
                        RouteTarget::TransitGateway(id)
                        | RouteTarget::PeeringConnection(id)
                        | RouteTarget::VirtualPrivateGateway(id) => id.clone(),
                        // Anything else leads nowhere a private client is:
                        // an internet gateway stands in for it.
                        RouteTarget::Other(_) => "igw-0standin".to_string(),
                    };
                    Some(RouteDef {
                        destination: r.destination.to_string(),
                        target,
                    })
                })
                .collect();
            world.route_table.push(RouteTableDef {
                id: t.id.clone(),
                region: key.region.clone(),
                account: account.clone(),
                vpc_id: key.vpc_id.clone(),
                subnets: t.subnets.clone(),
                main: t.main,
                routes,
            });
        }
    }
    let mut peerings: BTreeSet<(Option<String>, String, String)> = BTreeSet::new();
    for (key, list) in &live.network.peerings {
        let account = acct(&key.account);
        for p in list {
            if !peerings.insert((account.clone(), key.region.clone(), p.id.clone())) {
                continue;
            }
            for vpc in [&p.requester_vpc, &p.accepter_vpc] {
                stand_in_vpc(world, vpcs, &account, &key.region, vpc);
            }
            world.vpc_peering.push(VpcPeeringDef {
                id: p.id.clone(),
                region: key.region.clone(),
                account: account.clone(),
                requester_vpc: p.requester_vpc.clone(),
                accepter_vpc: p.accepter_vpc.clone(),
                status: p.status.clone(),
            });
        }
    }
    for (key, vpc) in &live.network.group_vpcs {
        stand_in_vpc(world, vpcs, &acct(&key.account), &key.region, vpc);
    }
}
