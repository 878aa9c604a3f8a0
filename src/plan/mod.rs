//! Plans: what `eksgate plan` decided, as plain data. A plan is the steps
//! that converge the live state (AWS) to the desired state (manifests), the
//! reason for every edge between them, one entry per declared cluster with
//! its diff, and the findings that block clusters (DESIGN.md section 2).
//!
//! A plan is serde data so it can be saved, reviewed and applied later;
//! apply rebuilds the DAG from `depends_on` through [`Plan::graph`]. The
//! types live here and in [`step`]; the planning function is [`planner`].
//! Nothing here does I/O or decides how a plan looks: views render it.

pub mod access;
pub mod allow_list;
pub mod network;
pub mod owner;
mod path;
pub mod planner;
#[cfg(test)]
mod readme_findings;
pub mod step;

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::desired::{AccessSource, ClusterKey};
use crate::endpoint::PublicCidrs;
use crate::graph::{GraphError, Node, StepGraph};
use crate::set::SortedSet;

pub use planner::plan;
pub use step::{Action, Step, StepKind};

/// Bumped when a saved plan of an older version can no longer be applied.
pub const FORMAT_VERSION: u32 = 1;

/// Everything `plan` decided. Serialisable; nothing here refers to memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    pub format_version: u32,
    /// `Desired::digest` of the manifests this plan was made from.
    #[schemars(description = "A digest of the manifests this plan was made from.")]
    pub manifest_digest: String,
    /// In a topological order (shared VPC and security-group steps come
    /// before the first cluster that needs them).
    pub steps: Vec<Step>,
    /// One per declared cluster, sorted by region, name and account.
    pub clusters: Vec<ClusterPlan>,
    /// What the planner found, blocking or not, in cluster order. Clusters
    /// with a blocking finding get no steps.
    pub findings: Vec<Finding>,
    /// The clusters whose declared principals apply checks again right
    /// before the call that turns public access off (`plan::access`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_checks: Vec<AccessCheck>,
}

/// The principals that must still have access entries when a cluster's
/// public access goes off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccessCheck {
    pub cluster: ClusterKey,
    pub principals: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Changes,
    NoChanges,
    Blocked,
}

/// The settings eksgate manages on one cluster, in the form the diff shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ClusterSettings {
    pub public_access: bool,
    pub private_access: bool,
    /// `None` on the desired side: the manifest does not manage them.
    #[schemars(
        with = "Option<BTreeSet<String>>",
        description = "`null` on the desired side when the manifest does not manage them."
    )]
    pub public_access_cidrs: Option<PublicCidrs>,
    /// Desired: the manifest's list. Live and after: what the cluster security
    /// group lets in on 443 (eksgate adds, and removes only with
    /// `private_access_from_exclusive`).
    #[serde(with = "crate::desired::sources_as_strings")]
    #[schemars(with = "Vec<String>")]
    pub private_access_from: SortedSet<AccessSource>,
    /// Live: the sources whose current TCP 443 rule carries eksgate's
    /// description (`managed by eksgate`); after: those of them that stay.
    #[serde(
        default,
        skip_serializing_if = "SortedSet::is_empty",
        with = "crate::desired::sources_as_strings"
    )]
    #[schemars(with = "Vec<String>")]
    pub managed_by_eksgate: SortedSet<AccessSource>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ClusterPlan {
    pub key: ClusterKey,
    pub status: PlanStatus,
    /// `None` when the cluster could not be read (not found, wrong account).
    #[schemars(
        description = "`null` when the cluster could not be read (not found, wrong account)."
    )]
    pub live: Option<ClusterSettings>,
    /// What the manifest says.
    pub desired: ClusterSettings,
    /// What the cluster will look like once the steps ran; `None` when
    /// blocked. The diff is `live` against this.
    #[schemars(
        description = "What the cluster will look like once the steps ran; `null` when blocked. The diff is `live` against this."
    )]
    pub after: Option<ClusterSettings>,
    /// Ids of the steps this cluster needs, shared ones included, in order.
    pub steps: Vec<String>,
    /// The manifest's rollout wave for this cluster.
    #[serde(default)]
    pub wave: u32,
}

/// Something the planner found about a cluster: a blocking finding stops
/// the cluster (it gets no steps; `error:` in views), a warning does not
/// (`warning:`). `code` is stable, for programs and policy checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Finding {
    pub cluster: ClusterKey,
    pub code: FindingCode,
    pub severity: Severity,
    pub message: String,
    pub hint: Option<String>,
}

impl Finding {
    pub fn blocks(&self) -> bool {
        self.severity == Severity::Block
    }
}

/// Whether a finding stops its cluster.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Block,
    Warn,
}

/// The kind of a finding. The JSON names (`snake_case`) are a public
/// interface: add kinds, never rename one.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FindingCode {
    /// The live state of the cluster was not read.
    NotRead,
    ClusterNotFound,
    /// The credentials reach another account than the manifest pins.
    AccountMismatch,
    /// The cluster is not `ACTIVE` (or `UPDATING`).
    ClusterNotActive,
    BothEndpointsOff,
    /// The VPC private access needs was not read.
    VpcNotRead,
    /// The VPC's DHCP options do not list `AmazonProvidedDNS`.
    DhcpWithoutAmazonDns,
    /// `private_access_from` is declared, but the cluster has no cluster
    /// security group.
    NoClusterSecurityGroup,
    SecurityGroupNotRead,
    /// The cluster is declared more than once.
    DeclaredTwice,
    /// The cluster security group would hold more inbound rules than its
    /// quota.
    SecurityGroupRuleQuota,
    /// Warning: a CloudFormation stack created the cluster
    /// (`aws:cloudformation:stack-name`) and holds its endpoint settings.
    OwnedByCloudformation,
    /// Warning: eksctl created the cluster (and its CloudFormation stack).
    OwnedByEksctl,
    /// Warning: a tag names Terraform.
    OwnedByTerraform,
    /// Warning: AWS CDK created the cluster (`aws-cdk:*` tags).
    OwnedByCdk,
    /// A `private_access_principals` entry has no access entry on the
    /// cluster.
    PrincipalWithoutAccessEntry,
    /// Its access entry has neither an access policy nor Kubernetes groups.
    AccessEntryWithoutPermissions,
    /// Warning: its access entry has Kubernetes groups only (RBAC unseen).
    AccessEntryGroupsOnly,
    /// The cluster's authentication mode is `CONFIG_MAP`: who may use the
    /// Kubernetes API cannot be read.
    AccessConfigMap,
    /// Warning: `--allow-unverified-access` let an unchecked cluster through.
    AccessUnverified,
    /// Warning: the mode moves forward in this plan; apply checks the
    /// entries right before public access goes off.
    AccessCheckedAtApply,
    /// The access entries could not be read.
    AccessNotRead,
    /// Warning: public access goes off and no principals are declared.
    NoPrivateAccessPrincipals,
    /// The manifest asks the authentication mode to move back.
    AuthenticationModeBackwards,
    /// Public access only with restricted CIDRs that leave out a public
    /// address of the VPC's NAT gateways (see `network`).
    NatOutsidePublicCidrs,
    /// Warning: public access only with restricted CIDRs, and the VPC has no
    /// NAT gateway whose addresses could be checked.
    NoNatGateway,
    /// IPv6 blocks in `publicAccessCidrs` of a cluster that does not take them.
    Ipv6PublicCidrs,
    /// Warning: a `private_access_from` CIDR outside the VPC with no route
    /// back to it from the cluster's subnets.
    NoRouteToSource,
    /// Warning: a `private_access_from` security group in another VPC with no
    /// active peering connection.
    NoActivePeering,
    /// EKS Hybrid Nodes with public and private access both on (a warning
    /// when only a staged step passes through it).
    HybridNodesPublicAndPrivate,
    /// A managed prefix list of `public_access_cidrs` does not exist.
    PrefixListNotFound,
    /// `public_access_cidrs` expands (prefix lists included) past 40 blocks.
    PublicAccessCidrsLimit,
}

impl FindingCode {
    /// The stable name, as JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::NotRead => "not_read",
            FindingCode::ClusterNotFound => "cluster_not_found",
            FindingCode::AccountMismatch => "account_mismatch",
            FindingCode::ClusterNotActive => "cluster_not_active",
            FindingCode::BothEndpointsOff => "both_endpoints_off",
            FindingCode::VpcNotRead => "vpc_not_read",
            FindingCode::DhcpWithoutAmazonDns => "dhcp_without_amazon_dns",
            FindingCode::NoClusterSecurityGroup => "no_cluster_security_group",
            FindingCode::SecurityGroupNotRead => "security_group_not_read",
            FindingCode::DeclaredTwice => "declared_twice",
            FindingCode::SecurityGroupRuleQuota => "security_group_rule_quota",
            FindingCode::OwnedByCloudformation => "owned_by_cloudformation",
            FindingCode::OwnedByEksctl => "owned_by_eksctl",
            FindingCode::OwnedByTerraform => "owned_by_terraform",
            FindingCode::OwnedByCdk => "owned_by_cdk",
            FindingCode::PrincipalWithoutAccessEntry => "principal_without_access_entry",
            FindingCode::AccessEntryWithoutPermissions => "access_entry_without_permissions",
            FindingCode::AccessEntryGroupsOnly => "access_entry_groups_only",
            FindingCode::AccessConfigMap => "access_config_map",
            FindingCode::AccessUnverified => "access_unverified",
            FindingCode::AccessCheckedAtApply => "access_checked_at_apply",
            FindingCode::AccessNotRead => "access_not_read",
            FindingCode::NoPrivateAccessPrincipals => "no_private_access_principals",
            FindingCode::AuthenticationModeBackwards => "authentication_mode_backwards",
            FindingCode::NatOutsidePublicCidrs => "nat_outside_public_cidrs",
            FindingCode::NoNatGateway => "no_nat_gateway",
            FindingCode::Ipv6PublicCidrs => "ipv6_public_cidrs",
            FindingCode::NoRouteToSource => "no_route_to_source",
            FindingCode::NoActivePeering => "no_active_peering",
            FindingCode::HybridNodesPublicAndPrivate => "hybrid_nodes_public_and_private",
            FindingCode::PrefixListNotFound => "prefix_list_not_found",
            FindingCode::PublicAccessCidrsLimit => "public_access_cidrs_limit",
        }
    }
}

/// Counts of what a plan does, for its last line and for CI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub steps: usize,
    pub endpoint_updates: usize,
    pub waits: usize,
    pub vpc_changes: usize,
    pub security_group_changes: usize,
    pub lockout_risks: usize,
    pub clusters_with_changes: usize,
    pub clusters_without_changes: usize,
    pub clusters_blocked: usize,
}

impl Plan {
    /// The checked DAG of the steps. Fails only for a plan edited by hand.
    pub fn graph(&self) -> Result<StepGraph, GraphError> {
        StepGraph::build(&self.nodes())
    }

    /// The steps as the graph sees them: each id with the ids it waits for.
    fn nodes(&self) -> Vec<Node<'_>> {
        self.steps
            .iter()
            .map(|s| (s.id.as_str(), s.depends_on.as_slice()))
            .collect()
    }

    /// The steps in a stable topological order (the plan's own order when
    /// the graph is broken, which only a hand-edited plan can be).
    pub fn ordered_steps(&self) -> Vec<&Step> {
        let nodes = self.nodes();
        if crate::graph::in_dependency_order(&nodes) {
            return self.steps.iter().collect();
        }
        match StepGraph::build(&nodes) {
            Ok(g) => g.order().iter().map(|i| &self.steps[*i]).collect(),
            Err(_) => self.steps.iter().collect(),
        }
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    pub fn has_changes(&self) -> bool {
        !self.steps.is_empty()
    }

    /// Some cluster has a blocking finding.
    pub fn is_blocked(&self) -> bool {
        self.findings.iter().any(Finding::blocks)
    }

    /// The findings that stop a cluster.
    pub fn blocking(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.blocks())
    }

    /// The findings that do not.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.blocks())
    }

    pub fn summary(&self) -> Summary {
        let count = |k: StepKind| self.steps.iter().filter(|s| s.kind() == k).count();
        let status = |st: PlanStatus| self.clusters.iter().filter(|c| c.status == st).count();
        Summary {
            steps: self.steps.len(),
            endpoint_updates: count(StepKind::EksEndpoint),
            waits: count(StepKind::WaitUpdate),
            vpc_changes: count(StepKind::VpcDnsSupport) + count(StepKind::VpcDnsHostnames),
            security_group_changes: count(StepKind::SgHttpsIngress)
                + count(StepKind::SgHttpsRevoke),
            lockout_risks: self.steps.iter().filter(|s| s.lockout_risk).count(),
            clusters_with_changes: status(PlanStatus::Changes),
            clusters_without_changes: status(PlanStatus::NoChanges),
            clusters_blocked: status(PlanStatus::Blocked),
        }
    }
}

/// A short sha256 (16 hex digits) of `v` as JSON: what a step was planned on.
pub fn fingerprint_of<T: Serialize>(v: &T) -> String {
    // Serialising the live types cannot fail (string keys, no custom
    // serialisers); if it ever did, hashing the error still gives a value
    // that will not match the live facts, which is the safe outcome.
    // Written straight into the hash: a 10,000-cluster plan built and
    // copied 10,000 JSON texts otherwise.
    let mut hasher = Sha256::new();
    let digest = match serde_json::to_writer(&mut hasher, v) {
        Ok(()) => hasher.finalize(),
        Err(e) => Sha256::digest(e.to_string().as_bytes()),
    };
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Saved plans are checked against fingerprints of the live state at
    /// apply: the value is the first 8 bytes of the sha256 of the compact
    /// JSON, whatever writes it.
    #[test]
    fn a_fingerprint_is_the_start_of_the_sha256_of_the_json() {
        let v = serde_json::json!({"a": [1, 2], "b": "x"});
        // sha256(`{"a":[1,2],"b":"x"}`)
        assert_eq!(fingerprint_of(&v), "d0f56dda38d34376");
    }
}
