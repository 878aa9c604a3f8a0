//! The single calls `eksgate doctor` makes to learn, before any plan or
//! apply, what would stop one: whether the base credentials load, who they
//! (or a role) act as, and whether each call eksgate makes on a cluster is
//! allowed. Each read is made once, on one cluster; the one write with a
//! dry run (`AuthorizeSecurityGroupIngress` with `DryRun=true`, answered
//! `DryRunOperation` when allowed) is asked with it; the writes without one
//! are reported as not checkable. Nothing here changes anything in AWS.
//!
//! This file makes the calls and reports each answer as data; `doctor`
//! decides what the answers mean for the user.

use aws_sdk_ec2::types::{IpPermission, IpRange, VpcAttributeName};

use super::aws::{key_suffix, AwsProvider};
use super::sdk_error::sdk_error;
use super::{ProviderError, Scope};

/// What one probed call answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Allowed, with what eksgate learnt.
    Allowed(String),
    /// Refused or failed.
    Failed(ProviderError),
    /// Not asked, and why.
    NotAsked(String),
}

/// One probed IAM action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub action: &'static str,
    pub answer: Answer,
}

/// Who a set of credentials acts as (`GetCallerIdentity`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub arn: String,
}

/// A documentation address, a test network (RFC 5737): the dry run's rule
/// names a source no one uses.
const DRY_RUN_SOURCE: &str = "192.0.2.1/32";

impl AwsProvider {
    /// Loads the base credentials: where they come from, with the last
    /// characters of their key id.
    pub async fn probe_credentials(&self) -> Result<String, ProviderError> {
        let key = self.clients.load_base_credentials().await?;
        Ok(format!(
            "the access key ending `{}` from {}",
            key_suffix(&key),
            self.clients.source()
        ))
    }

    /// The region the base configuration names, if any.
    pub fn configured_region(&self) -> Option<String> {
        self.clients.configured_region()
    }

    /// `GetCallerIdentity` with the credentials of `scope` (its role's,
    /// when it has one: that is also the check that the role can be
    /// assumed).
    pub async fn probe_identity(&self, scope: &Scope) -> Result<Identity, ProviderError> {
        let c = self.clients.get(scope).await;
        let out = c
            .sts()
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| sdk_error(&c, "GetCallerIdentity", e))?;
        Ok(Identity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
        })
    }

    /// Each call eksgate makes on cluster `name`, asked once with the
    /// credentials of `scope`, in the order a plan and an apply make them.
    /// A call that needs an id an earlier one did not give is not asked.
    pub async fn probe_cluster(&self, scope: &Scope, name: &str) -> Vec<Probe> {
        let c = self.clients.get(scope).await;
        let mut out = Vec::new();
        let mut push = |action: &'static str, answer: Answer| out.push(Probe { action, answer });

        let (vpc, group) = match c.eks.describe_cluster().name(name).send().await {
            Ok(o) => {
                let v = o.cluster().and_then(|c| c.resources_vpc_config());
                push(
                    "eks:DescribeCluster",
                    Answer::Allowed(format!("cluster `{name}` read")),
                );
                (
                    v.and_then(|v| v.vpc_id()).map(str::to_string),
                    v.and_then(|v| v.cluster_security_group_id())
                        .map(str::to_string),
                )
            }
            Err(e) => {
                let err = sdk_error(&c, "DescribeCluster", e);
                push("eks:DescribeCluster", allowed_if_not_found(err, name));
                (None, None)
            }
        };
        let updates = match c.eks.list_updates().name(name).max_results(1).send().await {
            Ok(o) => {
                push("eks:ListUpdates", Answer::Allowed("listed".into()));
                o.update_ids().first().cloned()
            }
            Err(e) => {
                push(
                    "eks:ListUpdates",
                    allowed_if_not_found(sdk_error(&c, "ListUpdates", e), name),
                );
                None
            }
        };
        match updates {
            Some(id) => {
                let answer = match c
                    .eks
                    .describe_update()
                    .name(name)
                    .update_id(&id)
                    .send()
                    .await
                {
                    Ok(_) => Answer::Allowed(format!("update `{id}` read")),
                    Err(e) => Answer::Failed(sdk_error(&c, "DescribeUpdate", e)),
                };
                push("eks:DescribeUpdate", answer);
            }
            None => push(
                "eks:DescribeUpdate",
                Answer::NotAsked(format!("cluster `{name}` has no update to read")),
            ),
        }

        // Without the cluster's VPC (its read failed), the account's first
        // VPC stands in: the permission is the same.
        let (vpc, dhcp) = match c
            .ec2
            .describe_vpcs()
            .set_vpc_ids(vpc.clone().map(|v| vec![v]))
            .set_max_results(vpc.is_none().then_some(5))
            .send()
            .await
        {
            Ok(o) => {
                let first = o.vpcs().first();
                let vpc = vpc.or_else(|| first.and_then(|v| v.vpc_id()).map(str::to_string));
                let what = vpc
                    .as_ref()
                    .map_or("listed".into(), |v| format!("`{v}` read"));
                push("ec2:DescribeVpcs", Answer::Allowed(what));
                let dhcp = first.and_then(|v| v.dhcp_options_id()).map(str::to_string);
                (vpc, dhcp)
            }
            Err(e) => {
                let err = sdk_error(&c, "DescribeVpcs", e);
                push("ec2:DescribeVpcs", Answer::Failed(err));
                (vpc, None)
            }
        };
        match &vpc {
            Some(v) => {
                let answer = match c
                    .ec2
                    .describe_vpc_attribute()
                    .vpc_id(v)
                    .attribute(VpcAttributeName::EnableDnsSupport)
                    .send()
                    .await
                {
                    Ok(_) => Answer::Allowed(format!("`{v}` read")),
                    Err(e) => Answer::Failed(sdk_error(&c, "DescribeVpcAttribute", e)),
                };
                push("ec2:DescribeVpcAttribute", answer);
            }
            None => push(
                "ec2:DescribeVpcAttribute",
                Answer::NotAsked("no VPC is known to read".into()),
            ),
        }
        let answer = match c
            .ec2
            .describe_dhcp_options()
            .set_dhcp_options_ids(dhcp.filter(|d| d != "default").map(|d| vec![d]))
            .send()
            .await
        {
            Ok(_) => Answer::Allowed("read".into()),
            Err(e) => Answer::Failed(sdk_error(&c, "DescribeDhcpOptions", e)),
        };
        push("ec2:DescribeDhcpOptions", answer);
        // Without the cluster's group, the account's first group stands
        // in, for the read and for the dry run.
        let group = match c
            .ec2
            .describe_security_groups()
            .set_group_ids(group.clone().map(|g| vec![g]))
            .set_max_results(group.is_none().then_some(5))
            .send()
            .await
        {
            Ok(o) => {
                let first = o.security_groups().first().and_then(|g| g.group_id());
                let group = group.or_else(|| first.map(str::to_string));
                let what = group
                    .as_ref()
                    .map_or("listed".into(), |g| format!("`{g}` read"));
                push("ec2:DescribeSecurityGroups", Answer::Allowed(what));
                group
            }
            Err(e) => {
                let err = sdk_error(&c, "DescribeSecurityGroups", e);
                push("ec2:DescribeSecurityGroups", Answer::Failed(err));
                group
            }
        };
        let answer = match &group {
            None => Answer::NotAsked("no security group is known to try it on".into()),
            Some(g) => match c
                .ec2
                .authorize_security_group_ingress()
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
                    operation: "AuthorizeSecurityGroupIngress".into(),
                    message: "the dry run was carried out".into(),
                }),
                Err(e) => match sdk_error(&c, "AuthorizeSecurityGroupIngress", e) {
                    ProviderError::Aws { code, .. } if code == "DryRunOperation" => {
                        Answer::Allowed(format!("dry run on `{g}`"))
                    }
                    err => Answer::Failed(err),
                },
            },
        };
        push("ec2:AuthorizeSecurityGroupIngress", answer);
        out
    }
}

/// A call on a cluster that does not exist was allowed: AWS checks
/// permissions before it looks.
fn allowed_if_not_found(err: ProviderError, name: &str) -> Answer {
    match &err {
        ProviderError::Aws { code, .. } if code == "ResourceNotFoundException" => {
            Answer::Allowed(format!("allowed (cluster `{name}` does not exist)"))
        }
        _ => Answer::Failed(err),
    }
}
