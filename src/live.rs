//! The live state as read from AWS: clusters, their VPCs and cluster security
//! groups. Plain data, filled by `provider` and read by `plan`; nothing here
//! does I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::desired::{AccessSource, ClusterKey};
use crate::endpoint::EndpointSettings;
pub use crate::network::{ClusterNetwork, LiveNetwork};
use crate::set::SortedSet;

/// `DescribeCluster`'s `status`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterStatus {
    Active,
    Creating,
    Updating,
    Deleting,
    Failed,
    Pending,
    /// A status this version of eksgate does not know.
    #[serde(untagged)]
    Other(String),
}

impl ClusterStatus {
    pub fn as_str(&self) -> &str {
        match self {
            ClusterStatus::Active => "ACTIVE",
            ClusterStatus::Creating => "CREATING",
            ClusterStatus::Updating => "UPDATING",
            ClusterStatus::Deleting => "DELETING",
            ClusterStatus::Failed => "FAILED",
            ClusterStatus::Pending => "PENDING",
            ClusterStatus::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "ACTIVE" => ClusterStatus::Active,
            "CREATING" => ClusterStatus::Creating,
            "UPDATING" => ClusterStatus::Updating,
            "DELETING" => ClusterStatus::Deleting,
            "FAILED" => ClusterStatus::Failed,
            "PENDING" => ClusterStatus::Pending,
            other => ClusterStatus::Other(other.to_string()),
        }
    }
}

/// One cluster as `DescribeCluster` (and `ListUpdates`) showed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveCluster {
    pub key: ClusterKey,
    pub arn: String,
    pub status: ClusterStatus,
    pub vpc_id: String,
    /// The cluster security group (`clusterSecurityGroupId`).
    pub security_group_id: Option<String>,
    /// `public_access_cidrs` normalised (host bits cleared, as a set), and
    /// `None` only when AWS sent no list.
    pub endpoint: EndpointSettings,
    /// Ids of updates still `InProgress` on this cluster (ours or AWS's).
    pub updates_in_progress: Vec<String>,
    /// `DescribeCluster`'s `tags`: they tell which tool created the cluster
    /// (see `plan::owner`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// `accessConfig.authenticationMode`; `None` when AWS sent none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_mode: Option<crate::access::AuthenticationMode>,
    /// IP family, creation time, subnets and hybrid node networks (see
    /// `plan::network`).
    #[serde(default, skip_serializing_if = "ClusterNetwork::is_empty")]
    pub network: ClusterNetwork,
}

/// What reading one declared cluster found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
// Nearly every observation is `Found`; boxing it would only add a pointer.
#[allow(clippy::large_enum_variant)]
pub enum ClusterObservation {
    Found(LiveCluster),
    NotFound,
    /// The credentials for this cluster resolve to another account than the
    /// manifest pins.
    AccountMismatch {
        expected: String,
        actual: String,
    },
}

/// A VPC is identified by its region and id (ids are unique within a region).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VpcKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub region: String,
    pub vpc_id: String,
}

/// The VPC settings private access depends on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveVpc {
    pub dns_support: bool,
    pub dns_hostnames: bool,
    pub dhcp_options_id: String,
    /// `domain-name-servers` of the VPC's DHCP options set.
    pub domain_name_servers: Vec<String>,
    /// The VPC's IPv4 blocks in state `associated` (`CidrBlockAssociationSet`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidr_blocks: Vec<ipnet::IpNet>,
}

impl LiveVpc {
    pub fn has_amazon_dns(&self) -> bool {
        self.domain_name_servers
            .iter()
            .any(|s| s == "AmazonProvidedDNS")
    }
}

/// The two VPC attributes private access needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsAttribute {
    /// `enableDnsSupport`.
    #[serde(rename = "dns_support")]
    Support,
    /// `enableDnsHostnames`.
    #[serde(rename = "dns_hostnames")]
    Hostnames,
}

impl DnsAttribute {
    /// The attribute's name in the EC2 API.
    pub fn api_name(self) -> &'static str {
        match self {
            DnsAttribute::Support => "enableDnsSupport",
            DnsAttribute::Hostnames => "enableDnsHostnames",
        }
    }

    /// Whether `vpc` has it on.
    pub fn is_on(self, vpc: &LiveVpc) -> bool {
        match self {
            DnsAttribute::Support => vpc.dns_support,
            DnsAttribute::Hostnames => vpc.dns_hostnames,
        }
    }
}

/// A security group, identified by region and id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SecurityGroupKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub region: String,
    pub group_id: String,
}

/// The sources a cluster security group already lets in on TCP 443 (rules
/// whose port range covers 443, or that allow all traffic), and how full it
/// is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSecurityGroup {
    pub https_ingress: SortedSet<AccessSource>,
    /// The sources of inbound rules that are exactly TCP 443–443: the only
    /// rules `private_access_from_exclusive` may revoke.
    #[serde(default, skip_serializing_if = "SortedSet::is_empty")]
    pub exact_https: SortedSet<AccessSource>,
    /// Those of `exact_https` whose rule carries eksgate's description
    /// ([`MANAGED_DESCRIPTION`]).
    #[serde(default, skip_serializing_if = "SortedSet::is_empty")]
    pub managed_https: SortedSet<AccessSource>,
    /// The inbound rules the group holds, as EC2 counts them against its
    /// quota; `None` when not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_rules: Option<RuleCount>,
    /// The prefix lists its inbound rules reference, once per reference:
    /// `inbound_rules` counts each as one rule of each family, and EC2 as
    /// the list's `MaxEntries` in the list's family once the list is read
    /// (see `plan::allow_list::held_rules`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inbound_prefix_lists: Vec<String>,
    /// The quota of inbound rules per address family in this account:
    /// [`DEFAULT_SG_RULE_QUOTA`] unless raised (`--sg-rule-quota`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_quota: Option<u32>,
}

/// The description eksgate gives every rule it adds, so people and the plan
/// can tell them from rules added by hand or by another tool.
pub const MANAGED_DESCRIPTION: &str = "managed by eksgate";

/// Whether a rule's description says eksgate added it (this version's
/// description, or the one earlier versions wrote).
pub fn is_managed_description(d: &str) -> bool {
    d == MANAGED_DESCRIPTION || d == "eksgate: private endpoint"
}

/// EC2's default quota of inbound rules per security group, counted apart
/// for IPv4 and IPv6 ("Inbound or outbound rules per security group").
pub const DEFAULT_SG_RULE_QUOTA: u32 = 60;

/// Inbound rules by address family. EC2 counts each CIDR block as one rule
/// of its family, and a rule that references a security group or a prefix
/// list as one of each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCount {
    pub ipv4: u32,
    pub ipv6: u32,
}

impl RuleCount {
    /// The rules `sources` would add.
    pub fn of<'a>(sources: impl IntoIterator<Item = &'a AccessSource>) -> RuleCount {
        let mut n = RuleCount::default();
        for s in sources {
            match s {
                AccessSource::Cidr(ipnet::IpNet::V4(_)) => n.ipv4 += 1,
                AccessSource::Cidr(ipnet::IpNet::V6(_)) => n.ipv6 += 1,
                AccessSource::SecurityGroup(_) | AccessSource::PrefixList(_) => {
                    n.ipv4 += 1;
                    n.ipv6 += 1;
                }
            }
        }
        n
    }
}

/// Everything read for one plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    pub clusters: BTreeMap<ClusterKey, ClusterObservation>,
    pub vpcs: BTreeMap<VpcKey, LiveVpc>,
    pub security_groups: BTreeMap<SecurityGroupKey, LiveSecurityGroup>,
    /// The access entries of the clusters whose access is checked (see
    /// `plan::access`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub access: BTreeMap<ClusterKey, crate::access::LiveAccess>,
    /// What the network findings read: NAT gateways, route tables, peering
    /// connections (see `plan::network`).
    #[serde(default, skip_serializing_if = "LiveNetwork::is_empty")]
    pub network: LiveNetwork,
    /// The managed prefix lists `public_access_cidrs` names, with their
    /// entries; `None` when EC2 knows no such list.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prefix_lists: BTreeMap<PrefixListKey, Option<LivePrefixList>>,
}

/// A managed prefix list, identified by account, region and id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PrefixListKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub region: String,
    pub id: String,
}

/// The entries of a managed prefix list (`GetManagedPrefixListEntries`, all
/// pages), host bits cleared.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivePrefixList {
    pub entries: BTreeSet<ipnet::IpNet>,
    /// `MaxEntries` (`DescribeManagedPrefixLists`): what a rule referencing
    /// the list counts against a security group's quota, in the list's
    /// address family (`ipv6`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<u32>,
    #[serde(default)]
    pub ipv6: bool,
}
