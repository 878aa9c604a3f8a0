//! The desired state: what the manifests ask for, after loading and
//! validation. Everything here is already checked and normalised (CIDRs with
//! host bits cleared, sets sorted), so the planner never re-validates input.
//!
//! This module owns only the types; `manifest` builds them.

use std::collections::BTreeSet;
use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::endpoint::EndpointSettings;
use crate::set::SortedSet;

/// Identifies one cluster: EKS cluster names are unique per account and region.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[schemars(deny_unknown_fields)]
pub struct ClusterKey {
    /// The account the manifest pins, if any; `None` means "whatever the
    /// credentials resolve to".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        with = "String",
        description = "The account the manifest pins; absent when it pins none."
    )]
    pub account: Option<String>,
    pub region: String,
    pub name: String,
}

impl fmt::Display for ClusterKey {
    /// `REGION/NAME`, the form `--target` takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.region, self.name)
    }
}

/// Who must reach the private endpoint on TCP 443.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessSource {
    SecurityGroup(String),
    Cidr(IpNet),
    /// A managed prefix list (`pl-…`), referenced by the rule as a whole.
    PrefixList(String),
}

impl fmt::Display for AccessSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessSource::SecurityGroup(id) | AccessSource::PrefixList(id) => f.write_str(id),
            AccessSource::Cidr(net) => write!(f, "{net}"),
        }
    }
}

/// Where in the manifests a cluster was declared, for messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Shared by every cluster of the file.
    pub file: std::sync::Arc<str>,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One cluster as the manifests want it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredCluster {
    pub key: ClusterKey,
    /// A role to assume (through STS) for this cluster's calls.
    pub role_arn: Option<String>,
    /// `public_access_cidrs` is `None` when the manifest does not manage the
    /// public CIDRs.
    pub endpoint: EndpointSettings,
    pub private_access_from: SortedSet<AccessSource>,
    /// Rollout wave, lowest first.
    pub wave: u32,
    /// The manifest's `owner_acknowledged`: the team has handed the endpoint
    /// settings over from the tool that created the cluster.
    #[serde(default)]
    pub owner_acknowledged: bool,
    /// Who must keep using the Kubernetes API once public access is off, and
    /// the authentication mode the manifest asks for.
    #[serde(default)]
    pub access: crate::access::DesiredAccess,
    /// The manifest's `private_access_from_exclusive`: TCP 443 rules of the
    /// cluster security group from sources not in `private_access_from` are
    /// revoked (see `plan::allow_list`).
    #[serde(default)]
    pub private_access_from_exclusive: bool,
    /// The managed prefix lists (`pl-…`) `public_access_cidrs` names; the
    /// planner expands them into their CIDRs, which `endpoint` does not hold.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub public_access_prefix_lists: BTreeSet<String>,
    pub origin: Origin,
}

/// Every cluster of every manifest that was loaded, in a stable order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    pub clusters: Vec<DesiredCluster>,
    /// A digest of the manifests' bytes, recorded in saved plans.
    pub digest: String,
    /// `--allow-unverified-access`: a cluster whose access entries cannot be
    /// checked (`CONFIG_MAP`) gets a warning instead of a block. Kept with
    /// the desired state so a saved plan is checked again the same way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_unverified_access: bool,
}

impl std::str::FromStr for AccessSource {
    type Err = String;

    /// `sg-…` is a security group, anything else must be a CIDR block. The
    /// manifest loader checks sources with its own messages; this reads back
    /// what eksgate wrote.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with("sg-") {
            Ok(AccessSource::SecurityGroup(s.to_string()))
        } else if s.starts_with("pl-") {
            Ok(AccessSource::PrefixList(s.to_string()))
        } else {
            s.parse()
                .map(AccessSource::Cidr)
                .map_err(|_| format!("`{s}` is neither a security group id nor a CIDR block"))
        }
    }
}

/// Serde for a set of sources as a list of strings, the form plans show.
pub mod sources_as_strings {
    use crate::set::SortedSet;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::AccessSource;

    pub fn serialize<S: Serializer>(
        set: &SortedSet<AccessSource>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(set.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<SortedSet<AccessSource>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}
