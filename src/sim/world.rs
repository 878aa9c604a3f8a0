//! The world file: the accounts, regions, VPCs, DHCP options, security groups
//! and clusters the emulator starts with, plus its `[faults]`. Loading reports
//! mistakes like a manifest does: file, line, column, caret.
//!
//! This module only parses and checks references; `state` turns a world into
//! the emulator's live state.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, Source};

/// The account used for credentials that no `[[account]]` claims.
pub const DEFAULT_ACCOUNT: &str = "123456789012";

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    #[serde(default)]
    pub account: Vec<AccountDef>,
    #[serde(default)]
    pub dhcp_options: Vec<DhcpOptionsDef>,
    #[serde(default)]
    pub vpc: Vec<VpcDef>,
    #[serde(default)]
    pub security_group: Vec<SecurityGroupDef>,
    #[serde(default)]
    pub cluster: Vec<ClusterDef>,
    #[serde(default)]
    pub nat_gateway: Vec<super::network::NatGatewayDef>,
    #[serde(default)]
    pub route_table: Vec<super::network::RouteTableDef>,
    #[serde(default)]
    pub vpc_peering: Vec<super::network::VpcPeeringDef>,
    #[serde(default)]
    pub prefix_list: Vec<PrefixListDef>,
    #[serde(default)]
    pub faults: FaultsDef,
}

/// A customer-managed prefix list: `entries` are CIDR blocks of one address
/// family; `max_entries` is the most it may hold (default: its entries, at
/// least 1), which is also what a security-group rule that references it
/// counts against the group's quota.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixListDef {
    pub id: String,
    pub region: String,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub entries: Vec<String>,
    #[serde(default)]
    pub max_entries: Option<u32>,
}

/// An account and the access key ids that act in it. A world with any
/// `[[account]]` checks credentials: a key id no account lists is refused,
/// and a key given with its secret has its signature verified.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountDef {
    pub id: String,
    /// Key ids accepted with any secret (the signature is not verified).
    #[serde(default)]
    pub access_key_ids: Vec<String>,
    /// Keys whose SigV4 signature is verified against their secret.
    #[serde(default)]
    pub access_keys: Vec<AccessKeyDef>,
    /// Roles that exist in this account (ARNs); `AssumeRole` into them acts here.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Actions denied to one of this account's keys or roles, as an IAM
    /// policy with an explicit deny would (see `sim::policy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<DenyDef>,
    /// Opt-in regions this account has not enabled: every call signed for
    /// one of them is refused as from an unknown key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_regions: Vec<String>,
}

/// `[[account.deny]]`: what a key or a role may not do.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DenyDef {
    /// An access key id of the account, or the ARN of one of its roles
    /// (then every session of the role is denied).
    pub principal: String,
    /// IAM actions, like `eks:DescribeCluster` or `ec2:*`.
    pub actions: Vec<String>,
}

/// An access key with its secret.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyDef {
    pub id: String,
    pub secret: String,
}

/// The DHCP options id EC2 reports for a VPC associated with no options set:
/// the VPC uses the Amazon-provided DNS server, and `DescribeDhcpOptions`
/// knows no set by that id.
pub const NO_DHCP_OPTIONS: &str = "default";

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpOptionsDef {
    pub id: String,
    pub region: String,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub domain_name_servers: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VpcDef {
    pub id: String,
    pub region: String,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default = "yes")]
    pub dns_support: bool,
    #[serde(default)]
    pub dns_hostnames: bool,
    /// Omitted: the region's default set, which lists `AmazonProvidedDNS`.
    /// `"default"`: no options set at all, as EC2 reports it after
    /// `AssociateDhcpOptions` with `default`.
    #[serde(default)]
    pub dhcp_options: Option<String>,
    #[serde(default = "default_vpc_cidr")]
    pub cidr_block: String,
    /// IPv4 blocks associated with the VPC besides `cidr_block`.
    #[serde(default)]
    pub secondary_cidr_blocks: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupDef {
    pub id: String,
    pub region: String,
    #[serde(default)]
    pub account: Option<String>,
    pub vpc_id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Sources (CIDRs or security-group ids) already allowed on TCP 443.
    #[serde(default)]
    pub https_ingress: Vec<String>,
    /// Other inbound rules already there, of any protocol and port range.
    #[serde(default)]
    pub ingress: Vec<RuleDef>,
    /// The most inbound rules this group holds (per address family, as EC2
    /// counts them); default `[faults] rule_quota`, else 60.
    #[serde(default)]
    pub rule_quota: Option<u32>,
}

/// One inbound rule: `protocol` is `tcp`, `udp`, `icmp` or `-1` (all, with
/// no ports); `source` a CIDR block or a security-group id (the group's own
/// id for a self-reference).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    pub protocol: String,
    #[serde(default)]
    pub from_port: Option<i32>,
    #[serde(default)]
    pub to_port: Option<i32>,
    pub source: String,
    /// The rule's description (`managed by eksgate` marks one eksgate added).
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterStatusDef {
    #[default]
    Active,
    Creating,
    Deleting,
    Failed,
}

impl ClusterStatusDef {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterStatusDef::Active => "ACTIVE",
            ClusterStatusDef::Creating => "CREATING",
            ClusterStatusDef::Deleting => "DELETING",
            ClusterStatusDef::Failed => "FAILED",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterDef {
    pub name: String,
    pub region: String,
    #[serde(default)]
    pub account: Option<String>,
    pub vpc_id: String,
    /// The cluster security group (`clusterSecurityGroupId`).
    #[serde(default)]
    pub security_group: Option<String>,
    pub public_access: bool,
    pub private_access: bool,
    #[serde(default = "default_cidrs")]
    pub public_access_cidrs: Vec<String>,
    #[serde(default)]
    pub status: ClusterStatusDef,
    /// An AWS-started update already running when the emulator starts.
    #[serde(default, with = "opt_duration")]
    pub platform_update: Option<Duration>,
    /// Updates already in the cluster's history, all `Successful`, of
    /// assorted types, as a cluster that has lived a while has them.
    #[serde(default)]
    pub past_updates: u32,
    /// The cluster's tags (`tags = { key = "value" }`), as the tool that
    /// created it left them.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// `resourcesVpcConfig.subnetIds`; default two stand-in subnets.
    #[serde(default)]
    pub subnet_ids: Option<Vec<String>>,
    /// `kubernetesNetworkConfig.ipFamily`: `ipv4` (default) or `ipv6`.
    #[serde(default = "super::network::default_ip_family")]
    pub ip_family: String,
    /// `createdAt`, as `2025-03-01` or `2025-03-01T12:00:00Z`; default a
    /// month before the emulator starts.
    #[serde(default)]
    pub created_at: Option<String>,
    /// `remoteNetworkConfig.remoteNodeNetworks` CIDRs: a cluster with EKS
    /// Hybrid Nodes.
    #[serde(default)]
    pub remote_node_networks: Vec<String>,
    /// `accessConfig.authenticationMode`: `CONFIG_MAP`, `API_AND_CONFIG_MAP`
    /// (the default) or `API`.
    #[serde(default = "default_authentication_mode")]
    pub authentication_mode: String,
    /// The cluster's access entries (`[[cluster.access_entry]]`); none on a
    /// `CONFIG_MAP` cluster, as in AWS.
    #[serde(default)]
    pub access_entry: Vec<AccessEntryDef>,
}

fn default_authentication_mode() -> String {
    "API_AND_CONFIG_MAP".to_string()
}

/// One access entry of a cluster.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessEntryDef {
    /// The IAM role or user ARN, as `CreateAccessEntry` was given it.
    pub principal_arn: String,
    /// `STANDARD` (the default), `EC2_LINUX`, `FARGATE_LINUX`, ...
    #[serde(default = "default_entry_type", rename = "type")]
    pub entry_type: String,
    #[serde(default)]
    pub kubernetes_groups: Vec<String>,
    /// Access policy ARNs associated with the entry, with cluster scope.
    #[serde(default)]
    pub access_policies: Vec<String>,
}

fn default_entry_type() -> String {
    "STANDARD".to_string()
}

/// Fault injection. Rates are probabilities in `[0, 1]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsDef {
    #[serde(default, with = "opt_duration")]
    pub latency: Option<Duration>,
    /// Extra random latency, uniformly in `[0, latency_jitter]`.
    #[serde(default, with = "opt_duration")]
    pub latency_jitter: Option<Duration>,
    /// Requests per second per region (token bucket); over it, throttling errors.
    #[serde(default)]
    pub rate_limit: Option<f64>,
    #[serde(default)]
    pub throttle_rate: Option<f64>,
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// Share of successful calls answered with a damaged body: truncated,
    /// a wrong type, an unknown enum value or missing fields.
    #[serde(default)]
    pub malformed_rate: Option<f64>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Share of changes (`UpdateClusterConfig`, `ModifyVpcAttribute`,
    /// `AuthorizeSecurityGroupIngress`) that take effect and are then
    /// answered with a server error (500 or 503).
    #[serde(default)]
    pub applied_error_rate: Option<f64>,
    /// Share of calls answered `503` (EKS `ServiceUnavailableException`, EC2
    /// `Unavailable`, STS `ServiceUnavailable`).
    #[serde(default)]
    pub unavailable_rate: Option<f64>,
    /// How long a cluster keeps saying `ACTIVE` after an update started.
    #[serde(default, with = "opt_duration")]
    pub status_lag: Option<Duration>,
    /// `false` lists updates oldest first instead of in no order.
    #[serde(default)]
    pub shuffle_updates: Option<bool>,
    /// Sessions from `AssumeRole` end after this, when shorter than asked.
    #[serde(default, with = "opt_duration")]
    pub session_duration: Option<Duration>,
    /// The most inbound rules a security group holds unless it says otherwise.
    #[serde(default)]
    pub rule_quota: Option<u32>,
    #[serde(default)]
    pub failed_update: Vec<FailedUpdateDef>,
}

/// Endpoint updates of one cluster that end `Failed`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FailedUpdateDef {
    pub cluster: String,
    pub region: String,
    #[serde(default)]
    pub account: Option<String>,
    /// Which endpoint update on this cluster fails, counting from 1.
    #[serde(default = "one")]
    pub nth: u32,
    /// Every endpoint update of this cluster fails (a permanent fault).
    #[serde(default)]
    pub always: bool,
    #[serde(default = "default_error_code")]
    pub error_code: String,
    #[serde(default = "default_error_message")]
    pub error_message: String,
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn default_vpc_cidr() -> String {
    "10.0.0.0/16".to_string()
}
pub fn default_cidrs() -> Vec<String> {
    vec!["0.0.0.0/0".to_string()]
}
fn default_error_code() -> String {
    "AccessDenied".to_string()
}
fn default_error_message() -> String {
    "You don't have permissions to perform the specified operation".to_string()
}

/// Durations written as `"90s"`, `"1m 30s"`, `"250ms"`.
pub mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration `{s}`: {e}")))
    }
}

impl World {
    /// Parses a world file and checks that every reference resolves.
    pub fn parse(source: &Source) -> Result<World, Vec<Diagnostic>> {
        let world: World =
            toml::from_str(&source.text).map_err(|e| vec![Diagnostic::from_toml(source, &e)])?;
        let diags = world.check(source);
        if diags.is_empty() {
            Ok(world)
        } else {
            Err(diags)
        }
    }

    /// Reads and parses a world file from disk.
    pub fn load(path: &std::path::Path) -> Result<World, Vec<Diagnostic>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Diagnostic::error(format!("cannot read world file: {e}"))
                .in_file(path.display().to_string())]
        })?;
        World::parse(&Source::new(path.display().to_string(), text))
    }

    fn check(&self, source: &Source) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        // Points at the first occurrence of `key = "value"` in the file; the
        // parsed structs carry no spans, and ids are unique enough to find.
        let locate = |value: &str, message: String, hint: Option<String>| {
            let needle = format!("\"{value}\"");
            let d = Diagnostic::error(message);
            let d = match source.text.find(&needle) {
                Some(i) => d.at(source, i..i + needle.len()),
                None => d.in_file(source.name.clone()),
            };
            match hint {
                Some(h) => d.hint(h),
                None => d,
            }
        };
        let region_of = |acct: &Option<String>, region: &str| {
            (
                acct.clone().unwrap_or_else(|| DEFAULT_ACCOUNT.to_string()),
                region.to_string(),
            )
        };
        let dhcp: BTreeSet<_> = self
            .dhcp_options
            .iter()
            .map(|d| (region_of(&d.account, &d.region), d.id.clone()))
            .collect();
        let vpcs: BTreeSet<_> = self
            .vpc
            .iter()
            .map(|v| (region_of(&v.account, &v.region), v.id.clone()))
            .collect();
        let sgs: BTreeSet<_> = self
            .security_group
            .iter()
            .map(|s| (region_of(&s.account, &s.region), s.id.clone()))
            .collect();
        for v in &self.vpc {
            if let Some(d) = v.dhcp_options.as_ref().filter(|d| *d != NO_DHCP_OPTIONS) {
                if !dhcp.contains(&(region_of(&v.account, &v.region), d.clone())) {
                    diags.push(locate(
                        d,
                        format!("vpc `{}` names dhcp options `{d}`, which are not defined in region `{}`", v.id, v.region),
                        Some("add a `[[dhcp_options]]` table with this id and region".into()),
                    ));
                }
            }
            if !v.dns_support && v.dns_hostnames {
                diags.push(locate(
                    &v.id,
                    format!("vpc `{}` has `dns_hostnames = true` with `dns_support = false`, which EC2 does not allow", v.id),
                    None,
                ));
            }
        }
        let lists: BTreeSet<_> = self
            .prefix_list
            .iter()
            .map(|l| (region_of(&l.account, &l.region), l.id.clone()))
            .collect();
        for l in &self.prefix_list {
            diags.extend(super::allow_list::check_prefix_list(l).map(|m| locate(&l.id, m, None)));
        }
        for s in &self.security_group {
            for src in s
                .https_ingress
                .iter()
                .chain(s.ingress.iter().map(|r| &r.source))
            {
                if src.starts_with("pl-")
                    && !lists.contains(&(region_of(&s.account, &s.region), src.clone()))
                {
                    diags.push(locate(
                        src,
                        format!(
                            "security group `{}` allows prefix list `{src}`, which is not defined in region `{}`",
                            s.id, s.region
                        ),
                        Some("add a `[[prefix_list]]` table with this id and region".into()),
                    ));
                }
            }
            for r in &s.ingress {
                diags.extend(
                    check_rule(r, &s.id, |g| {
                        sgs.contains(&(region_of(&s.account, &s.region), g.to_string()))
                    })
                    .map(|m| locate(&r.source, m, None)),
                );
            }
            if !vpcs.contains(&(region_of(&s.account, &s.region), s.vpc_id.clone())) {
                diags.push(locate(
                    &s.vpc_id,
                    format!(
                        "security group `{}` names vpc `{}`, which is not defined in region `{}`",
                        s.id, s.vpc_id, s.region
                    ),
                    None,
                ));
            }
        }
        let mut names = BTreeSet::new();
        for c in &self.cluster {
            let key = region_of(&c.account, &c.region);
            if !names.insert((key.clone(), c.name.clone())) {
                diags.push(locate(
                    &c.name,
                    format!(
                        "cluster `{}` is defined twice in region `{}`",
                        c.name, c.region
                    ),
                    None,
                ));
            }
            if !vpcs.contains(&(key.clone(), c.vpc_id.clone())) {
                diags.push(locate(
                    &c.vpc_id,
                    format!(
                        "cluster `{}` names vpc `{}`, which is not defined in region `{}`",
                        c.name, c.vpc_id, c.region
                    ),
                    Some("add a `[[vpc]]` table with this id and region".into()),
                ));
            }
            if let Some(sg) = &c.security_group {
                if !sgs.contains(&(key.clone(), sg.clone())) {
                    diags.push(locate(
                        sg,
                        format!("cluster `{}` names security group `{sg}`, which is not defined in region `{}`", c.name, c.region),
                        None,
                    ));
                }
            }
            diags.extend(
                super::access::check_world(c)
                    .into_iter()
                    .map(|m| locate(&c.name, m, None)),
            );
            if !c.public_access && !c.private_access {
                diags.push(locate(
                    &c.name,
                    format!(
                        "cluster `{}` has both endpoints off, which EKS does not allow",
                        c.name
                    ),
                    None,
                ));
            }
            for cidr in &c.public_access_cidrs {
                if cidr.parse::<ipnet::IpNet>().is_err() {
                    diags.push(locate(cidr, format!("`{cidr}` is not a CIDR block"), None));
                }
            }
        }
        for a in &self.account {
            for d in &a.deny {
                let known = a.access_key_ids.contains(&d.principal)
                    || a.access_keys.iter().any(|k| k.id == d.principal)
                    || a.roles.contains(&d.principal);
                if !known {
                    diags.push(locate(
                        &d.principal,
                        format!(
                            "`deny` names `{}`, which is neither a key nor a role of account `{}`",
                            d.principal, a.id
                        ),
                        Some(
                            "name one of the account's `access_key_ids`, `access_keys` or `roles`"
                                .into(),
                        ),
                    ));
                }
                for action in &d.actions {
                    if !crate::sim::policy::is_action(action) {
                        diags.push(locate(
                            action,
                            format!("`{action}` is not an IAM action of `eks`, `ec2` or `sts`"),
                            Some(
                                "write `SERVICE:Operation`, like `eks:DescribeCluster` or `ec2:*`"
                                    .into(),
                            ),
                        ));
                    }
                }
            }
        }
        diags.extend(super::network::check(self, source));
        for f in &self.faults.failed_update {
            let key = region_of(&f.account, &f.region);
            if !names.contains(&(key, f.cluster.clone())) {
                diags.push(locate(
                    &f.cluster,
                    format!(
                        "failed update names cluster `{}`, which is not defined in region `{}`",
                        f.cluster, f.region
                    ),
                    None,
                ));
            }
        }
        for (name, rate) in [
            ("throttle_rate", self.faults.throttle_rate),
            ("error_rate", self.faults.error_rate),
            ("applied_error_rate", self.faults.applied_error_rate),
            ("unavailable_rate", self.faults.unavailable_rate),
        ] {
            if let Some(r) = rate {
                if !(0.0..=1.0).contains(&r) {
                    diags.push(
                        Diagnostic::error(format!(
                            "`faults.{name}` must be between 0 and 1, got {r}"
                        ))
                        .in_file(source.name.clone()),
                    );
                }
            }
        }
        diags
    }
}

/// What is wrong with a seeded rule of group `group`, if anything.
fn check_rule(r: &RuleDef, group: &str, group_exists: impl Fn(&str) -> bool) -> Option<String> {
    let ports = (r.from_port, r.to_port);
    match r.protocol.as_str() {
        "-1" if ports != (None, None) => {
            return Some(format!(
                "rule of security group `{group}` with protocol `-1` covers every port; remove `from_port` and `to_port`"
            ))
        }
        "-1" => {}
        "tcp" | "udp" | "icmp" => match ports {
            (Some(f), Some(t)) if f <= t && (-1..=65535).contains(&f) && t <= 65535 => {}
            _ => {
                return Some(format!(
                    "rule of security group `{group}` needs `from_port` <= `to_port`, both within 0-65535"
                ))
            }
        },
        other => {
            return Some(format!(
                "rule of security group `{group}` has protocol `{other}`; use `tcp`, `udp`, `icmp` or `-1`"
            ))
        }
    }
    if r.source.parse::<ipnet::IpNet>().is_err()
        && !r.source.starts_with("pl-")
        && !group_exists(&r.source)
    {
        return Some(format!(
            "rule of security group `{group}` allows `{}`, which is neither a CIDR block nor a security group in its region",
            r.source
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<World, String> {
        World::parse(&Source::new("world.toml", text))
            .map_err(|d| crate::diagnostic::render_all(&d, false))
    }

    const GOOD: &str = r#"
[[dhcp_options]]
id = "dopt-0custom1"
region = "us-east-1"
domain_name_servers = ["10.0.0.2"]

[[vpc]]
id = "vpc-0a1b2c3d"
region = "us-east-1"
dns_support = true
dns_hostnames = false
dhcp_options = "dopt-0custom1"

[[security_group]]
id = "sg-0cluster1"
region = "us-east-1"
vpc_id = "vpc-0a1b2c3d"

[[cluster]]
name = "payments"
region = "us-east-1"
vpc_id = "vpc-0a1b2c3d"
security_group = "sg-0cluster1"
public_access = true
private_access = false
platform_update = "90s"
"#;

    #[test]
    fn parses_the_documented_example() {
        let w = parse(GOOD).unwrap();
        assert_eq!(w.cluster[0].public_access_cidrs, vec!["0.0.0.0/0"]);
        assert_eq!(w.cluster[0].platform_update, Some(Duration::from_secs(90)));
        assert_eq!(w.cluster[0].status, ClusterStatusDef::Active);
    }

    #[test]
    fn errors_point_at_the_place() {
        let cases: &[(&str, &str)] = &[
            (
                "[[vpc]]\nid = \"vpc-1\"\nregion = \"us-east-1\"\ncolour = 3\n",
                "error: unknown field `colour`",
            ),
            (
                "[[vpc]]\nid = \"vpc-1\"\nregion = \"us-east-1\"\ndns_support = \"yes\"\n",
                " --> world.toml:4:15",
            ),
            (
                "[[cluster]]\nname = \"a\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-missing\"\npublic_access = true\nprivate_access = false\n",
                "error: cluster `a` names vpc `vpc-missing`, which is not defined in region `us-east-1`\n --> world.toml:4:10",
            ),
            (
                "[[cluster]]\nname = \"a\"\nregion = \"us-east-1\"\nvpc_id = \"v\"\npublic_access = true\nprivate_access = false\nplatform_update = \"soon\"\n",
                "invalid duration `soon`",
            ),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap_err();
            assert!(got.contains(want), "for {text:?}:\n{got}\nwanted {want:?}");
        }
    }
}
