//! Which tool created a cluster, read from its tags: eksctl, CDK,
//! CloudFormation or Terraform. Those tools hold the endpoint settings in
//! their own state and put them back on their next run, so a plan that
//! changes such a cluster warns, naming the tool and the hand-over.

use std::collections::BTreeMap;

use super::FindingCode;

/// The tag CloudFormation puts on every resource of a stack.
pub const CLOUDFORMATION_STACK: &str = "aws:cloudformation:stack-name";
/// The tags eksctl puts on its clusters (new and old spelling).
pub const EKSCTL_CLUSTER: [&str; 2] = [
    "alpha.eksctl.io/cluster-name",
    "eksctl.cluster.k8s.io/v1alpha1/cluster-name",
];

/// A tool that owns a cluster's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// eksctl, with the CloudFormation stack it made, when tagged.
    Eksctl {
        stack: Option<String>,
    },
    /// AWS CDK, with its CloudFormation stack, when tagged.
    Cdk {
        stack: Option<String>,
    },
    CloudFormation {
        stack: String,
    },
    Terraform,
}

impl Owner {
    /// The owner the tags name, if any. eksctl and CDK deploy through
    /// CloudFormation and carry its tag too: they are named, with the stack,
    /// in one finding.
    pub fn of(tags: &BTreeMap<String, String>) -> Option<Owner> {
        let stack = tags.get(CLOUDFORMATION_STACK).cloned();
        if EKSCTL_CLUSTER.iter().any(|k| tags.contains_key(*k)) {
            return Some(Owner::Eksctl { stack });
        }
        if tags.keys().any(|k| k.starts_with("aws-cdk:")) {
            return Some(Owner::Cdk { stack });
        }
        if let Some(stack) = stack {
            return Some(Owner::CloudFormation { stack });
        }
        let names_terraform = |s: &String| s.to_ascii_lowercase().contains("terraform");
        if tags
            .iter()
            .any(|(k, v)| names_terraform(k) || names_terraform(v))
        {
            return Some(Owner::Terraform);
        }
        None
    }

    pub fn code(&self) -> FindingCode {
        match self {
            Owner::Eksctl { .. } => FindingCode::OwnedByEksctl,
            Owner::Cdk { .. } => FindingCode::OwnedByCdk,
            Owner::CloudFormation { .. } => FindingCode::OwnedByCloudformation,
            Owner::Terraform => FindingCode::OwnedByTerraform,
        }
    }

    /// Who owns the cluster, for the finding's message.
    pub fn describe(&self) -> String {
        let stack = |s: &Option<String>| match s {
            Some(s) => format!(" (CloudFormation stack `{s}`)"),
            None => String::new(),
        };
        match self {
            Owner::Eksctl { stack: s } => format!("eksctl{}", stack(s)),
            Owner::Cdk { stack: s } => format!("AWS CDK{}", stack(s)),
            Owner::CloudFormation { stack } => format!("CloudFormation stack `{stack}`"),
            Owner::Terraform => "Terraform".to_string(),
        }
    }

    /// How to hand the endpoint settings over to eksgate.
    pub fn hand_over(&self) -> String {
        let tail = "then set `owner_acknowledged = true` on the cluster";
        match self {
            Owner::Eksctl { .. } => format!(
                "remove `vpc.clusterEndpoints` (`publicAccess`, `privateAccess`) and `vpc.publicAccessCIDRs` from the eksctl config, and do not run `eksctl utils update-cluster-endpoints` or `eksctl utils set-public-access-cidrs` on it; {tail}"
            ),
            Owner::Cdk { .. } | Owner::CloudFormation { .. } => format!(
                "drop `ResourcesVpcConfig.EndpointPublicAccess`, `EndpointPrivateAccess` and `PublicAccessCidrs` from the template (or stop the next stack update from setting them), or expect drift on the stack; {tail}"
            ),
            Owner::Terraform => format!(
                "add `lifecycle {{ ignore_changes = [vpc_config[0].endpoint_public_access, vpc_config[0].endpoint_private_access, vpc_config[0].public_access_cidrs] }}` to the `aws_eks_cluster` resource; {tail}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Tags, and the owner they name.
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<Owner>);

    #[test]
    fn tags_name_their_owner() {
        let cases: &[Case] = &[
            (&[], None),
            (&[("team", "payments")], None),
            (
                &[(CLOUDFORMATION_STACK, "net")],
                Some(Owner::CloudFormation {
                    stack: "net".into(),
                }),
            ),
            (
                &[
                    (CLOUDFORMATION_STACK, "eksctl-a-cluster"),
                    ("alpha.eksctl.io/cluster-name", "a"),
                ],
                Some(Owner::Eksctl {
                    stack: Some("eksctl-a-cluster".into()),
                }),
            ),
            (
                &[("eksctl.cluster.k8s.io/v1alpha1/cluster-name", "a")],
                Some(Owner::Eksctl { stack: None }),
            ),
            (
                &[(CLOUDFORMATION_STACK, "app"), ("aws-cdk:auto-tag", "x")],
                Some(Owner::Cdk {
                    stack: Some("app".into()),
                }),
            ),
            (&[("ManagedBy", "Terraform")], Some(Owner::Terraform)),
            (&[("terraform", "true")], Some(Owner::Terraform)),
        ];
        for (t, want) in cases {
            assert_eq!(&Owner::of(&tags(t)), want, "{t:?}");
        }
    }
}
