//! The probes of the calls eksgate makes only for some manifests: the
//! access check of `private_access_principals` (`ListAccessEntries`,
//! `DescribeAccessEntry`, `ListAssociatedAccessPolicies`), the network
//! findings (`DescribeNatGateways`, `DescribeRouteTables`,
//! `DescribeVpcPeeringConnections`), managed prefix lists
//! (`DescribeManagedPrefixLists`, `GetManagedPrefixListEntries`) and
//! `private_access_from_exclusive` (`DescribeSecurityGroupRules`, and
//! `RevokeSecurityGroupIngress` by a dry run). Each is asked once, like the
//! calls of `probe`; which of them a set of manifests needs is `doctor`'s
//! decision. Nothing here changes anything in AWS.
//!
//! EC2's `Describe*` calls take no resource-level permission (the Service
//! Authorization Reference lists no resource type for them), so any page of
//! the account's items answers whether they are allowed; the EKS access
//! calls and the EC2 writes are asked on the cluster (or its group) that
//! needs them.

use aws_sdk_ec2::types::{Filter, IpPermission, IpRange};

use super::aws::AwsProvider;
use super::probe::{Answer, Probe};
use super::sdk_error::sdk_error;
use super::{ProviderError, Scope};

/// The smallest page the EC2 listings accept (`MaxResults` 5 in the `ec2`
/// service model of each).
const PAGE: i32 = 5;

/// The source of the revoke dry run: a documentation address (RFC 5737)
/// no rule uses.
const DRY_RUN_SOURCE: &str = "192.0.2.1/32";

/// An EC2 listing whose permission `doctor` probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    NatGateways,
    RouteTables,
    VpcPeeringConnections,
}

impl Listing {
    pub fn action(self) -> &'static str {
        match self {
            Listing::NatGateways => "ec2:DescribeNatGateways",
            Listing::RouteTables => "ec2:DescribeRouteTables",
            Listing::VpcPeeringConnections => "ec2:DescribeVpcPeeringConnections",
        }
    }
}

fn probe(action: &'static str, answer: Answer) -> Probe {
    Probe { action, answer }
}

/// `Allowed` for a call that named something that does not exist: AWS
/// checks permissions before it looks.
fn allowed_unless(err: ProviderError, absent: &[&str], what: String) -> Answer {
    match &err {
        ProviderError::Aws { code, .. } if absent.contains(&code.as_str()) => Answer::Allowed(what),
        _ => Answer::Failed(err),
    }
}

impl AwsProvider {
    /// The access-entry reads of cluster `name`, for `principal`: the
    /// listing, then the principal's entry and its access policies. A
    /// principal without an entry (`ResourceNotFoundException`) and a
    /// `CONFIG_MAP` cluster (`InvalidRequestException`) were allowed.
    pub async fn probe_access(&self, scope: &Scope, name: &str, principal: &str) -> Vec<Probe> {
        let c = self.clients.get(scope).await;
        let absent = ["ResourceNotFoundException", "InvalidRequestException"];
        let listed = match c
            .eks
            .list_access_entries()
            .cluster_name(name)
            .max_results(1)
            .send()
            .await
        {
            Ok(_) => Answer::Allowed(format!("the entries of `{name}` listed")),
            Err(e) => allowed_unless(
                sdk_error(&c, "ListAccessEntries", e),
                &absent,
                format!("allowed (cluster `{name}` has no access entries to list)"),
            ),
        };
        let entry = match c
            .eks
            .describe_access_entry()
            .cluster_name(name)
            .principal_arn(principal)
            .send()
            .await
        {
            Ok(_) => Answer::Allowed(format!("the entry of `{principal}` read")),
            Err(e) => allowed_unless(
                sdk_error(&c, "DescribeAccessEntry", e),
                &absent,
                format!("allowed (`{principal}` has no entry)"),
            ),
        };
        let policies = match c
            .eks
            .list_associated_access_policies()
            .cluster_name(name)
            .principal_arn(principal)
            .max_results(1)
            .send()
            .await
        {
            Ok(_) => Answer::Allowed(format!("the policies of `{principal}` listed")),
            Err(e) => allowed_unless(
                sdk_error(&c, "ListAssociatedAccessPolicies", e),
                &absent,
                format!("allowed (`{principal}` has no entry)"),
            ),
        };
        vec![
            probe("eks:ListAccessEntries", listed),
            probe("eks:DescribeAccessEntry", entry),
            probe("eks:ListAssociatedAccessPolicies", policies),
        ]
    }

    /// One page of an EC2 listing of the account.
    pub async fn probe_listing(&self, scope: &Scope, listing: Listing) -> Probe {
        let c = self.clients.get(scope).await;
        let result = match listing {
            Listing::NatGateways => c
                .ec2
                .describe_nat_gateways()
                .max_results(PAGE)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error(&c, "DescribeNatGateways", e)),
            Listing::RouteTables => c
                .ec2
                .describe_route_tables()
                .max_results(PAGE)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error(&c, "DescribeRouteTables", e)),
            Listing::VpcPeeringConnections => c
                .ec2
                .describe_vpc_peering_connections()
                .max_results(PAGE)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error(&c, "DescribeVpcPeeringConnections", e)),
        };
        probe(
            listing.action(),
            match result {
                Ok(()) => Answer::Allowed("listed".into()),
                Err(err) => Answer::Failed(err),
            },
        )
    }

    /// The reads of managed prefix list `id`: its description and a page
    /// of its entries. A list that does not exist was allowed (the plan
    /// says it is missing).
    pub async fn probe_prefix_list(&self, scope: &Scope, id: &str) -> Vec<Probe> {
        let c = self.clients.get(scope).await;
        let absent = [
            "InvalidPrefixListID.NotFound",
            "InvalidPrefixListId.NotFound",
        ];
        let described = match c
            .ec2
            .describe_managed_prefix_lists()
            .prefix_list_ids(id)
            .send()
            .await
        {
            Ok(_) => Answer::Allowed(format!("`{id}` read")),
            Err(e) => allowed_unless(
                sdk_error(&c, "DescribeManagedPrefixLists", e),
                &absent,
                format!("allowed (`{id}` does not exist)"),
            ),
        };
        let entries = match c
            .ec2
            .get_managed_prefix_list_entries()
            .prefix_list_id(id)
            .max_results(PAGE)
            .send()
            .await
        {
            Ok(_) => Answer::Allowed(format!("the entries of `{id}` read")),
            Err(e) => allowed_unless(
                sdk_error(&c, "GetManagedPrefixListEntries", e),
                &absent,
                format!("allowed (`{id}` does not exist)"),
            ),
        };
        vec![
            probe("ec2:DescribeManagedPrefixLists", described),
            probe("ec2:GetManagedPrefixListEntries", entries),
        ]
    }

    /// What `private_access_from_exclusive` needs on cluster `name`: the
    /// rules of its security group (`DescribeSecurityGroupRules`) and their
    /// revocation, asked with `DryRun=true` (`DryRunOperation` when
    /// allowed, `UnauthorizedOperation` otherwise: the `DryRun` member of
    /// `RevokeSecurityGroupIngressRequest` in the `ec2` service model). In a
    /// non-default VPC a rule that does not match is
    /// `InvalidPermission.NotFound` (EC2 API reference,
    /// `RevokeSecurityGroupIngress`), an answer only an allowed caller gets,
    /// so it also means allowed. The group is the cluster's, from
    /// `DescribeCluster`.
    pub async fn probe_exclusive(&self, scope: &Scope, name: &str) -> Vec<Probe> {
        let c = self.clients.get(scope).await;
        let group = c
            .eks
            .describe_cluster()
            .name(name)
            .send()
            .await
            .ok()
            .and_then(|o| {
                o.cluster()
                    .and_then(|c| c.resources_vpc_config())
                    .and_then(|v| v.cluster_security_group_id())
                    .map(str::to_string)
            });
        let rules = match c
            .ec2
            .describe_security_group_rules()
            .set_filters(
                group
                    .clone()
                    .map(|g| vec![Filter::builder().name("group-id").values(g).build()]),
            )
            .max_results(PAGE)
            .send()
            .await
        {
            Ok(_) => Answer::Allowed(match &group {
                Some(g) => format!("the rules of `{g}` read"),
                None => "listed".into(),
            }),
            Err(e) => Answer::Failed(sdk_error(&c, "DescribeSecurityGroupRules", e)),
        };
        let revoke = match &group {
            None => Answer::NotAsked(format!(
                "the security group of cluster `{name}` is not known"
            )),
            Some(g) => match c
                .ec2
                .revoke_security_group_ingress()
                .group_id(g)
                .ip_permissions(
                    IpPermission::builder()
                        .ip_protocol("tcp")
                        .from_port(443)
                        .to_port(443)
                        .ip_ranges(IpRange::builder().cidr_ip(DRY_RUN_SOURCE).build())
                        .build(),
                )
                .dry_run(true)
                .send()
                .await
            {
                Ok(_) => Answer::Failed(ProviderError::Transport {
                    operation: "RevokeSecurityGroupIngress".into(),
                    message: "the dry run was carried out".into(),
                }),
                Err(e) => match sdk_error(&c, "RevokeSecurityGroupIngress", e) {
                    ProviderError::Aws { code, .. } if code == "DryRunOperation" => {
                        Answer::Allowed(format!("dry run on `{g}`"))
                    }
                    err => allowed_unless(
                        err,
                        &["InvalidPermission.NotFound"],
                        format!("allowed (no such rule on `{g}`)"),
                    ),
                },
            },
        };
        vec![
            probe("ec2:DescribeSecurityGroupRules", rules),
            probe("ec2:RevokeSecurityGroupIngress", revoke),
        ]
    }
}
