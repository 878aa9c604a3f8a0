//! The network around a cluster, as far as reaching its endpoint goes: what
//! `DescribeCluster` says of it (IP family, creation time, subnets, hybrid
//! node networks), and what EC2 says of its VPC (NAT gateways, route tables,
//! peering connections, the VPCs of source security groups). Also which of
//! those EC2 facts a plan needs of each scope ([`ScopeReads`]), so the
//! provider reads them once per VPC and region, and only for clusters where
//! a finding can apply.
//!
//! Plain data, filled by `provider` and read by `plan::network`; nothing
//! here does I/O or decides anything.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::live::{SecurityGroupKey, VpcKey};

/// What `DescribeCluster` says of a cluster's network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNetwork {
    /// `kubernetesNetworkConfig.ipFamily`: `ipv4` or `ipv6`; `None` when
    /// AWS sent none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_family: Option<String>,
    /// `createdAt`, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    /// `resourcesVpcConfig.subnetIds`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnet_ids: Vec<String>,
    /// Every CIDR of `remoteNetworkConfig.remoteNodeNetworks`: not empty on
    /// a cluster with EKS Hybrid Nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_node_networks: Vec<String>,
}

impl ClusterNetwork {
    /// Nothing was read (a provider that does not read it, an old value).
    pub fn is_empty(&self) -> bool {
        *self == ClusterNetwork::default()
    }
}

/// A NAT gateway of a VPC, with its public addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatGateway {
    pub id: String,
    /// `NatGatewayAddresses[].PublicIp` (a private NAT gateway has none).
    pub public_ips: Vec<std::net::IpAddr>,
}

/// Where a route sends its traffic, as far as reaching clients outside the
/// VPC goes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum RouteTarget {
    /// `local`: inside the VPC.
    Local,
    TransitGateway(String),
    PeeringConnection(String),
    /// A virtual private gateway (`vgw-`): Site-to-Site VPN or Direct Connect.
    VirtualPrivateGateway(String),
    /// Anything else (internet, NAT or egress-only gateways, instances,
    /// network interfaces): no way back to a private client.
    Other(String),
}

impl RouteTarget {
    /// The target of a route as EC2 names it by id prefix.
    pub fn of_id(id: &str) -> RouteTarget {
        if id == "local" {
            RouteTarget::Local
        } else if id.starts_with("tgw-") {
            RouteTarget::TransitGateway(id.to_string())
        } else if id.starts_with("pcx-") {
            RouteTarget::PeeringConnection(id.to_string())
        } else if id.starts_with("vgw-") {
            RouteTarget::VirtualPrivateGateway(id.to_string())
        } else {
            RouteTarget::Other(id.to_string())
        }
    }

    /// Whether traffic can come back this way from a client outside the VPC
    /// that reaches it privately.
    pub fn leaves_privately(&self) -> bool {
        matches!(
            self,
            RouteTarget::TransitGateway(_)
                | RouteTarget::PeeringConnection(_)
                | RouteTarget::VirtualPrivateGateway(_)
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub destination: IpNet,
    pub target: RouteTarget,
}

/// A route table, with the subnets it is associated with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    pub id: String,
    /// The VPC's main table, used by subnets with no table of their own.
    pub main: bool,
    pub subnets: Vec<String>,
    pub routes: Vec<Route>,
}

/// A VPC peering connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peering {
    pub id: String,
    pub requester_vpc: String,
    pub accepter_vpc: String,
    /// `Status.Code`: `active`, `pending-acceptance`, `deleted`, ...
    pub status: String,
}

impl Peering {
    /// Whether this connection joins `a` and `b`, either way round.
    pub fn joins(&self, a: &str, b: &str) -> bool {
        (self.requester_vpc == a && self.accepter_vpc == b)
            || (self.requester_vpc == b && self.accepter_vpc == a)
    }
}

/// The EC2 facts read for the network findings. A VPC absent from a map was
/// not read (no cluster needed it); present with an empty list, it was read
/// and has none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveNetwork {
    /// The `available` NAT gateways of each VPC read.
    pub nat_gateways: BTreeMap<VpcKey, Vec<NatGateway>>,
    /// The route tables of the subnets read, and the main table of their VPC.
    pub route_tables: BTreeMap<VpcKey, Vec<RouteTable>>,
    /// The VPC of each source security group read (absent: not found).
    pub group_vpcs: BTreeMap<SecurityGroupKey, String>,
    /// The peering connections of each VPC read, in either role.
    pub peerings: BTreeMap<VpcKey, Vec<Peering>>,
}

impl LiveNetwork {
    pub fn is_empty(&self) -> bool {
        self.nat_gateways.is_empty()
            && self.route_tables.is_empty()
            && self.group_vpcs.is_empty()
            && self.peerings.is_empty()
    }

    /// Takes in what another scope's reads found.
    pub fn merge(&mut self, part: LiveNetwork) {
        self.nat_gateways.extend(part.nat_gateways);
        self.route_tables.extend(part.route_tables);
        self.group_vpcs.extend(part.group_vpcs);
        self.peerings.extend(part.peerings);
    }
}

/// What to read with one set of credentials in one region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeReads {
    /// VPCs whose `available` NAT gateways are wanted.
    pub nat_vpcs: BTreeSet<String>,
    /// VPCs whose route tables are wanted: all of them, each subnet's own
    /// table and the main one that stands in for a subnet with none.
    pub route_vpcs: BTreeSet<String>,
    /// Source security groups whose VPC is wanted, by the VPC of the cluster
    /// that lists them: when one lies in another VPC, the peering
    /// connections of the cluster's VPC are read too.
    pub source_groups: BTreeMap<String, BTreeSet<String>>,
}

impl ScopeReads {
    pub fn is_empty(&self) -> bool {
        self.nat_vpcs.is_empty() && self.route_vpcs.is_empty() && self.source_groups.is_empty()
    }
}
