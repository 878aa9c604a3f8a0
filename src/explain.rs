//! The one place that words a failed call to AWS for the user: no
//! credentials, an SSO login to renew, credentials AWS refused, an action
//! it denied, an endpoint that cannot be reached, a region that is unknown
//! or not enabled. Each becomes one sentence that names what failed and
//! where, `note:` lines with what eksgate knows about it, and a `hint:`
//! with what to do; never an SDK type name or a `Debug` dump (the SDK's
//! own chain of errors is logged at `-v`).
//!
//! `plan`, `apply`, `import` and `doctor` all word their failures here. It
//! is pure: it reads the provider's typed errors and what the caller says
//! about the credentials, and touches neither the network nor the SDK.

use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::provider::failure::{is_known_region, service_of, Cause, Failure, Unreachable};
use crate::provider::{ProviderError, REFUSED_CREDENTIALS};

/// The IAM actions eksgate's read of a fleet makes (`plan`, and `apply`
/// before it changes anything). `sts:GetCallerIdentity` needs no
/// permission, and `sts:AssumeRole` is named by its own error.
pub const READ_ACTIONS: &[&str] = &[
    "eks:DescribeCluster",
    "eks:ListUpdates",
    "eks:DescribeUpdate",
    "ec2:DescribeVpcs",
    "ec2:DescribeVpcAttribute",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSecurityGroups",
    // The network findings (`plan::network`).
    "ec2:DescribeNatGateways",
    "ec2:DescribeRouteTables",
    "ec2:DescribeVpcPeeringConnections",
    // The access check of `private_access_principals` (`plan::access`).
    "eks:ListAccessEntries",
    "eks:DescribeAccessEntry",
    "eks:ListAssociatedAccessPolicies",
    // Managed prefix lists named in the manifests (`plan::allow_list`).
    "ec2:DescribeManagedPrefixLists",
    "ec2:GetManagedPrefixListEntries",
];

/// What `apply` adds to [`READ_ACTIONS`].
pub const WRITE_ACTIONS: &[&str] = &[
    "eks:UpdateClusterConfig",
    "ec2:ModifyVpcAttribute",
    "ec2:AuthorizeSecurityGroupIngress",
    // `private_access_from_exclusive` (`plan::allow_list`).
    "ec2:DescribeSecurityGroupRules",
    "ec2:RevokeSecurityGroupIngress",
    // EKS asks for it when private access is turned on (DESIGN.md §1b).
    "route53:AssociateVPCWithHostedZone",
];

/// What `import` calls.
pub const IMPORT_ACTIONS: &[&str] = &["eks:ListClusters", "eks:DescribeCluster"];

/// Which command's IAM actions a hint lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// `plan` and `apply`: the read, and apply's writes.
    PlanApply,
    Import,
}

impl Needs {
    fn sentence(self) -> String {
        match self {
            Needs::PlanApply => format!(
                "`plan` needs {}; `apply` also {}",
                ticks(READ_ACTIONS),
                ticks(WRITE_ACTIONS)
            ),
            Needs::Import => format!("`import` needs {}", ticks(IMPORT_ACTIONS)),
        }
    }
}

/// What the caller knows about the credentials a failed call used.
#[derive(Clone, Copy, Debug)]
pub struct Credentials<'a> {
    /// Where they came from, in words (`the access key ending `WXYZ` from
    /// the environment (`AWS_ACCESS_KEY_ID`)`).
    pub source: &'a str,
    /// The profile of the AWS config files, when one was chosen.
    pub profile: Option<&'a str>,
}

/// A provider error as the user reads it.
pub fn provider_error(e: ProviderError, creds: Credentials<'_>, needs: Needs) -> Error {
    Error::Explained(Box::new(diagnose(&e, creds, needs)))
}

/// A provider error as a diagnostic: message, notes, hint.
pub fn diagnose(e: &ProviderError, creds: Credentials<'_>, needs: Needs) -> Diagnostic {
    match e {
        ProviderError::Local { failure, .. } => local(failure, creds),
        ProviderError::Aws {
            operation,
            code,
            message,
        } => aws(operation, code, message, creds, needs),
        ProviderError::AccountMismatch { .. } => Diagnostic::error(e.to_string()).hint(
            "use credentials for the account the manifest pins (`--profile`), or fix `account`",
        ),
        ProviderError::Transport { .. } => Diagnostic::error(e.to_string())
            .hint("check the credentials, the region and the network; `-v` shows each call"),
    }
}

fn local(failure: &Failure, creds: Credentials<'_>) -> Diagnostic {
    let profile = creds.profile.unwrap_or("default");
    match failure {
        Failure::NoCredentials => {
            let (config, credentials) = config_files();
            Diagnostic::error("no AWS credentials found")
                .note(format!(
                    "eksgate looked in the environment (`AWS_ACCESS_KEY_ID`), profile `{profile}` of `{config}` and `{credentials}`, SSO, web identity (`AWS_WEB_IDENTITY_TOKEN_FILE`), the container credentials endpoint and the instance metadata service"
                ))
                .hint(
                    "run `aws configure` to store an access key, or `aws sso login --profile NAME` and pass `--profile NAME` (or set `AWS_PROFILE`)",
                )
        }
        Failure::SsoLogin => Diagnostic::error(format!(
            "the SSO login of profile `{profile}` is missing or has expired"
        ))
        .hint(format!(
            "run `aws sso login --profile {profile}`, then run eksgate again"
        )),
        Failure::Credentials { detail } => Diagnostic::error(format!(
            "cannot load the credentials of profile `{profile}`: {detail}"
        ))
        .hint("check the profile's settings (`aws configure list --profile NAME` shows where each comes from)"),
        Failure::Endpoint(u) => unreachable(u),
        Failure::Region { region, detail } => Diagnostic::error(format!(
            "AWS refused {} in `{region}`, a region each account must enable before use",
            creds.source
        ))
        .note(format!("AWS said: {detail}"))
        .hint(format!(
            "enable `{region}` for the account (`aws account enable-region --region-name {region}`, or the console's account settings), or use a region the account has"
        )),
    }
}

fn unreachable(u: &Unreachable) -> Diagnostic {
    let e = &u.endpoint;
    let name = service_name(&e.service);
    if u.cause == Cause::Dns && e.set_by.is_none() && !is_known_region(&e.region) {
        return Diagnostic::error(format!(
            "`{}` is not an AWS region: the {name} endpoint `{}` does not resolve",
            e.region, e.address
        ))
        .hint("check `region` in the manifest (`aws ec2 describe-regions --all-regions` lists the regions)");
    }
    let d = Diagnostic::error(format!(
        "cannot reach the {name} endpoint of `{}` at `{}`: {}",
        e.region,
        e.address,
        u.cause.words()
    ));
    match &e.set_by {
        Some(by) => d
            .note(format!("{by} sets this endpoint"))
            .hint(format!(
                "check {by}: {}",
                match u.cause {
                    Cause::Dns => "its host name does not resolve",
                    Cause::Refused => "nothing listens at that address",
                    Cause::Tls => "the server's certificate is not trusted, or it does not speak TLS",
                    Cause::Timeout | Cause::Network => "the address does not answer from this machine",
                }
            )),
        None => d.hint(match u.cause {
            Cause::Dns => "check this machine's DNS and network (a VPN, or a proxy in `HTTPS_PROXY`)",
            Cause::Tls => "a proxy that intercepts TLS needs its certificate in the system's trust store",
            Cause::Refused | Cause::Timeout | Cause::Network => {
                "check the network: a firewall, a proxy (`HTTPS_PROXY`) or a VPC endpoint's security group may stop the connection"
            }
        }),
    }
}

fn aws(
    operation: &str,
    code: &str,
    message: &str,
    creds: Credentials<'_>,
    needs: Needs,
) -> Diagnostic {
    let said = format!("{operation} failed: {code}: {message}");
    if code.starts_with("Expired") {
        let profile = creds.profile.unwrap_or("default");
        return Diagnostic::error(format!("the session of {} has expired", creds.source))
            .note(format!("AWS said: {said}"))
            .hint(format!(
                "renew it: `aws sso login --profile {profile}` for an SSO profile, otherwise get new temporary credentials from where these came from"
            ));
    }
    if REFUSED_CREDENTIALS.contains(&code) {
        return Diagnostic::error(format!("AWS refused {}: {said}", creds.source)).hint(
            "check that the access key id and its secret belong together and the key is active (`aws iam list-access-keys`); eksgate asked no further with them",
        );
    }
    if is_denied(code) {
        return denied(operation, code, message, creds, needs);
    }
    Diagnostic::error(said)
}

/// AWS's codes for "the principal may not do this".
pub fn is_denied(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation"
    )
}

fn denied(
    operation: &str,
    code: &str,
    message: &str,
    creds: Credentials<'_>,
    needs: Needs,
) -> Diagnostic {
    let words = Denial::parse(message);
    let action = words
        .action
        .clone()
        .unwrap_or_else(|| format!("{}:{operation}", service_of(operation)));
    let principal = words
        .principal
        .map(|p| format!("`{p}`"))
        .unwrap_or_else(|| creds.source.to_string());
    let on = words
        .resource
        .map(|r| format!(" on `{r}`"))
        .unwrap_or_default();
    if action == "sts:AssumeRole" {
        return Diagnostic::error(format!(
            "cannot assume the role: AWS denied `sts:AssumeRole`{on} to {principal} ({code})"
        ))
        .hint("the role's trust policy must name that principal, and the principal's policy must allow `sts:AssumeRole` on the role; check `role_arn`");
    }
    Diagnostic::error(format!(
        "AWS denied `{action}`{on} to {principal} ({operation}: {code})"
    ))
    .hint(format!(
        "allow `{action}` in that principal's IAM policy; {} (`eksgate doctor` checks them)",
        needs.sentence()
    ))
}

/// The parts of AWS's access-denied message: `User: P is not authorized
/// to perform: A on resource: R [because|with] ...` (EKS, STS), after
/// `You are not authorized to perform this operation.` for EC2.
#[derive(Debug, Default, PartialEq, Eq)]
struct Denial {
    principal: Option<String>,
    action: Option<String>,
    resource: Option<String>,
}

impl Denial {
    fn parse(message: &str) -> Denial {
        let Some(rest) = message.split("User: ").nth(1) else {
            return Denial::default();
        };
        let Some((principal, rest)) = rest.split_once(" is not authorized to perform: ") else {
            return Denial::default();
        };
        let word = |s: &str| {
            s.split_whitespace()
                .next()
                .map(|w| w.trim_end_matches(['.', ',']).to_string())
        };
        let action = word(rest);
        let resource = rest.split_once(" on resource: ").and_then(|(_, r)| word(r));
        Denial {
            principal: Some(principal.trim().to_string()),
            action,
            resource,
        }
    }
}

fn service_name(service: &str) -> &'static str {
    match service {
        "eks" => "EKS",
        "ec2" => "EC2",
        "sts" => "STS",
        _ => "AWS",
    }
}

/// The shared config and credentials files the SDK reads.
fn config_files() -> (String, String) {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    (
        var("AWS_CONFIG_FILE").unwrap_or_else(|| "~/.aws/config".into()),
        var("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|| "~/.aws/credentials".into()),
    )
}

fn ticks(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::failure::Endpoint;

    const CREDS: Credentials<'static> = Credentials {
        source: "the access key ending `TEST` from the environment (`AWS_ACCESS_KEY_ID`)",
        profile: None,
    };

    #[test]
    fn reads_the_parts_of_aws_denials() {
        let eks = Denial::parse("User: arn:aws:sts::111122223333:assumed-role/reader/eksgate is not authorized to perform: eks:DescribeCluster on resource: arn:aws:eks:us-east-1:111122223333:cluster/payments with an explicit deny in an identity-based policy");
        assert_eq!(eks.action.as_deref(), Some("eks:DescribeCluster"));
        assert_eq!(
            eks.resource.as_deref(),
            Some("arn:aws:eks:us-east-1:111122223333:cluster/payments")
        );
        let ec2 = Denial::parse("You are not authorized to perform this operation. User: arn:aws:iam::111122223333:user/ci is not authorized to perform: ec2:DescribeVpcs with an explicit deny in an identity-based policy. Encoded authorization failure message: abc");
        assert_eq!(
            ec2.principal.as_deref(),
            Some("arn:aws:iam::111122223333:user/ci")
        );
        assert_eq!(ec2.action.as_deref(), Some("ec2:DescribeVpcs"));
        assert_eq!(ec2.resource, None);
        assert_eq!(
            Denial::parse("You are not authorized to perform this operation."),
            Denial::default()
        );
    }

    #[test]
    fn an_unknown_region_is_named_as_such() {
        let d = local(
            &Failure::Endpoint(Unreachable {
                endpoint: Endpoint {
                    service: "eks".into(),
                    region: "mars-north-1".into(),
                    address: "eks.mars-north-1.amazonaws.com:443".into(),
                    set_by: None,
                },
                cause: Cause::Dns,
            }),
            CREDS,
        );
        assert_eq!(
            d.render(false),
            "error: `mars-north-1` is not an AWS region: the EKS endpoint `eks.mars-north-1.amazonaws.com:443` does not resolve\nhint: check `region` in the manifest (`aws ec2 describe-regions --all-regions` lists the regions)\n"
        );
    }

    #[test]
    fn no_message_shows_a_type_name_or_a_structure() {
        let failures = [
            Failure::NoCredentials,
            Failure::SsoLogin,
            Failure::Credentials {
                detail: "profile `x` names `source_profile = y`, which does not exist".into(),
            },
        ];
        for f in &failures {
            let text = local(f, CREDS).render(false);
            assert!(!text.contains('{') && !text.contains("Error"), "{text}");
        }
    }
}
