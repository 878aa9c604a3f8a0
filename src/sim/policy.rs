//! What an account's policies deny, for worlds that say so, and EC2's
//! `DryRun`. A world's `[[account]]` may deny actions to one of its keys or
//! roles:
//!
//! ```toml
//! [[account]]
//! id = "111122223333"
//! access_key_ids = ["AKIDREADER"]
//! roles = ["arn:aws:iam::111122223333:role/deployer"]
//! deny = [
//!   { principal = "arn:aws:iam::111122223333:role/deployer", actions = ["ec2:AuthorizeSecurityGroupIngress"] },
//!   { principal = "AKIDREADER", actions = ["eks:DescribeCluster"] },
//! ]
//! disabled_regions = ["ap-east-1"]
//! ```
//!
//! A denied call is answered as AWS answers an explicit deny in an
//! identity-based policy (IAM user guide, "Troubleshoot access denied error
//! messages"): EKS `AccessDeniedException` (403), EC2
//! `UnauthorizedOperation` (403, with an encoded authorization message),
//! STS `AccessDenied` (403), each naming the principal, the action and,
//! where the action has one, the resource. `sts:GetCallerIdentity` needs no
//! permission and cannot be denied. A role's deny applies to every session
//! of the role.
//!
//! An EC2 request with `DryRun=true` is checked for permission and then
//! answered `DryRunOperation` (412) instead of being carried out, as the
//! `DryRun` member of every EC2 request shape documents ("If you have the
//! required permissions, the error response is `DryRunOperation`.
//! Otherwise, it is `UnauthorizedOperation`.").
//!
//! In a region the account has not enabled (`disabled_regions`), AWS knows
//! no key: every call is refused as from an unknown key.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use super::protocol::AwsError;
use super::world::World;

/// The denies and disabled regions of a world.
#[derive(Clone, Debug, Default)]
pub struct Policies {
    /// key id or role ARN → the actions denied to it.
    denied: BTreeMap<String, BTreeSet<String>>,
    /// session key id → the role it is a session of.
    sessions: BTreeMap<String, String>,
    /// account → regions it has not enabled.
    disabled: BTreeMap<String, BTreeSet<String>>,
}

/// One request, as the deny check sees it.
pub struct Request<'a> {
    /// `eks`, `ec2`, `sts`.
    pub service: &'a str,
    pub operation: &'a str,
    pub access_key: &'a str,
    /// The ARN `GetCallerIdentity` reports for the key.
    pub principal: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    /// The cluster, VPC, group or role the request names.
    pub target: Option<&'a str>,
    pub request_id: &'a str,
}

impl Policies {
    pub fn from_world(world: &World) -> Policies {
        let mut access = Policies::default();
        for a in &world.account {
            for d in &a.deny {
                access
                    .denied
                    .entry(d.principal.clone())
                    .or_default()
                    .extend(d.actions.iter().cloned());
            }
            if !a.disabled_regions.is_empty() {
                access
                    .disabled
                    .entry(a.id.clone())
                    .or_default()
                    .extend(a.disabled_regions.iter().cloned());
            }
        }
        access
    }

    /// Records that `key` is a session of `role` (from `AssumeRole`).
    pub fn session_of(&mut self, key: &str, role: &str) {
        self.sessions.insert(key.to_string(), role.to_string());
    }

    /// Whether `account` has not enabled `region`.
    pub fn region_disabled(&self, account: &str, region: &str) -> bool {
        self.disabled
            .get(account)
            .is_some_and(|r| r.contains(region))
    }

    /// AWS's answer when a policy denies the request, `None` when nothing
    /// does.
    pub fn denied(&self, req: &Request<'_>) -> Option<AwsError> {
        if req.operation == "GetCallerIdentity" {
            return None;
        }
        let action = format!("{}:{}", req.service, req.operation);
        let holders = [
            Some(req.access_key),
            self.sessions.get(req.access_key).map(String::as_str),
        ];
        let denied = holders.iter().flatten().any(|h| {
            self.denied
                .get(*h)
                .is_some_and(|actions| actions.iter().any(|a| matches(a, &action)))
        });
        if !denied {
            return None;
        }
        let resource = resource(req);
        let on = resource
            .as_deref()
            .map(|r| format!(" on resource: {r}"))
            .unwrap_or_default();
        let why = format!(
            "User: {} is not authorized to perform: {action}{on} with an explicit deny in an identity-based policy",
            req.principal
        );
        Some(match req.service {
            "eks" => AwsError::new(403, "AccessDeniedException", why),
            "sts" => AwsError::new(403, "AccessDenied", why),
            _ => AwsError::new(
                403,
                "UnauthorizedOperation",
                format!(
                    "You are not authorized to perform this operation. {why}. Encoded authorization failure message: {}",
                    encoded(req)
                ),
            ),
        })
    }
}

/// Whether an EC2 request asks for a dry run of an action that has one.
pub fn dry_run(action: &str, params: &[(String, String)]) -> bool {
    action != "ModifyVpcAttribute"
        && params
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("DryRun") && v.eq_ignore_ascii_case("true"))
}

/// EC2's answer to an allowed dry run.
pub fn dry_run_answer() -> AwsError {
    AwsError::new(
        412,
        "DryRunOperation",
        "Request would have succeeded, but DryRun flag is set.",
    )
}

/// Whether `action` is written as an IAM action of a service the
/// emulator serves (`eks:DescribeCluster`, `ec2:*`, `*`).
pub fn is_action(action: &str) -> bool {
    if action == "*" {
        return true;
    }
    match action.split_once(':') {
        Some((svc, op)) => {
            matches!(svc, "eks" | "ec2" | "sts")
                && !op.is_empty()
                && op.chars().all(|c| c.is_ascii_alphanumeric() || c == '*')
        }
        None => false,
    }
}

/// IAM's match of a policy's action against a request's: case-insensitive,
/// `*` anywhere.
fn matches(pattern: &str, action: &str) -> bool {
    fn glob(p: &[u8], a: &[u8]) -> bool {
        match p.split_first() {
            None => a.is_empty(),
            Some((b'*', rest)) => (0..=a.len()).any(|i| glob(rest, &a[i..])),
            Some((c, rest)) => a
                .split_first()
                .is_some_and(|(d, tail)| c.eq_ignore_ascii_case(d) && glob(rest, tail)),
        }
    }
    glob(pattern.as_bytes(), action.as_bytes())
}

/// The resource AWS names in the denial, for actions that have one.
fn resource(req: &Request<'_>) -> Option<String> {
    let (region, account) = (req.region, req.account);
    match (req.service, req.operation) {
        ("eks", "ListClusters") => Some(format!("arn:aws:eks:{region}:{account}:cluster/*")),
        ("eks", _) => req
            .target
            .map(|name| format!("arn:aws:eks:{region}:{account}:cluster/{name}")),
        // Both take the group as their resource (Service Authorization
        // Reference, Amazon EC2: `security-group*`).
        ("ec2", "AuthorizeSecurityGroupIngress" | "RevokeSecurityGroupIngress") => req
            .target
            .map(|g| format!("arn:aws:ec2:{region}:{account}:security-group/{g}")),
        ("ec2", "ModifyVpcAttribute") => req
            .target
            .map(|v| format!("arn:aws:ec2:{region}:{account}:vpc/{v}")),
        ("sts", "AssumeRole") => req.target.map(str::to_string),
        _ => None,
    }
}

/// A stand-in for AWS's encoded authorization message (which only
/// `sts:DecodeAuthorizationMessage` can read): opaque, and the same for the
/// same request.
fn encoded(req: &Request<'_>) -> String {
    let digest = Sha256::digest(format!(
        "{}/{}/{}",
        req.request_id, req.operation, req.principal
    ));
    hex::encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_match_as_iam_matches_them() {
        assert!(matches("eks:DescribeCluster", "eks:DescribeCluster"));
        assert!(matches("EKS:describecluster", "eks:DescribeCluster"));
        assert!(matches("ec2:*", "ec2:DescribeVpcs"));
        assert!(matches("ec2:Describe*", "ec2:DescribeVpcs"));
        assert!(!matches(
            "ec2:Describe*",
            "ec2:AuthorizeSecurityGroupIngress"
        ));
        assert!(matches("*", "sts:AssumeRole"));
        assert!(is_action("ec2:Describe*"));
        assert!(!is_action("s3:GetObject"));
        assert!(!is_action("DescribeCluster"));
    }

    #[test]
    fn a_denied_call_is_answered_as_aws_answers_it() {
        let mut access = Policies::default();
        access.denied.insert(
            "arn:aws:iam::111122223333:role/reader".into(),
            ["eks:DescribeCluster".to_string()].into(),
        );
        access.session_of("ASIASESSION", "arn:aws:iam::111122223333:role/reader");
        let req = |service, operation, key| Request {
            service,
            operation,
            access_key: key,
            principal: "arn:aws:sts::111122223333:assumed-role/reader/eksgate",
            account: "111122223333",
            region: "eu-west-1",
            target: Some("payments"),
            request_id: "r-1",
        };
        let e = access
            .denied(&req("eks", "DescribeCluster", "ASIASESSION"))
            .unwrap();
        assert_eq!((e.status, e.code.as_str()), (403, "AccessDeniedException"));
        assert_eq!(e.message, "User: arn:aws:sts::111122223333:assumed-role/reader/eksgate is not authorized to perform: eks:DescribeCluster on resource: arn:aws:eks:eu-west-1:111122223333:cluster/payments with an explicit deny in an identity-based policy");
        assert!(access
            .denied(&req("eks", "ListUpdates", "ASIASESSION"))
            .is_none());
        assert!(access
            .denied(&req("eks", "DescribeCluster", "AKIDOTHER"))
            .is_none());
        assert!(access
            .denied(&req("sts", "GetCallerIdentity", "ASIASESSION"))
            .is_none());
    }
}
