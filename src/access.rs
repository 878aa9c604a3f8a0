//! Who can still use the Kubernetes API once public access is off: the
//! cluster's authentication mode, the IAM principals a manifest says must keep
//! access (`private_access_principals`), what EKS holds for them (access
//! entries, their Kubernetes groups and associated access policies), and the
//! verdict for one principal. Plain data and pure functions, shared by the
//! planner (findings), apply (the re-check right before public access goes
//! off) and the provider (what it reads); nothing here does I/O.
//!
//! Facts (EKS user guide, "Grant IAM users access to Kubernetes with EKS
//! access entries", "Change authentication mode to use access entries"
//! <https://docs.aws.amazon.com/eks/latest/userguide/setting-up-access-entries.html>
//! and "Create access entries"
//! <https://docs.aws.amazon.com/eks/latest/userguide/creating-access-entries.html>;
//! service model `eks` 2017-11-01, DESIGN.md section 1b):
//! - the access-entry API answers only in `API` and `API_AND_CONFIG_MAP`; on a
//!   `CONFIG_MAP` cluster it fails with `InvalidRequestException`, and who the
//!   `aws-auth` ConfigMap maps cannot be seen through the EKS API at all;
//! - the mode only moves away from `CONFIG_MAP`, never back, and `CONFIG_MAP`
//!   to `API` is one update ("If you want to disable the ConfigMap method
//!   permanently, replace API_AND_CONFIG_MAP with API" in the CLI step of
//!   "Change authentication mode to use access entries", run on a
//!   `CONFIG_MAP` cluster);
//! - an access entry holds the principal's ARN as it was given, and "if the
//!   ARN is for an IAM role, it can include a path" ("Create access
//!   entries"), while `aws-auth` ARNs cannot and `GetCallerIdentity` shows no
//!   path either: so a role is compared by partition, account and role name,
//!   whatever path either side writes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// `accessConfig.authenticationMode` of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AuthenticationMode {
    /// Only the `aws-auth` ConfigMap.
    #[serde(rename = "CONFIG_MAP")]
    ConfigMap,
    /// Access entries and the ConfigMap.
    #[serde(rename = "API_AND_CONFIG_MAP")]
    ApiAndConfigMap,
    /// Only access entries.
    #[serde(rename = "API")]
    Api,
    /// A mode this version of eksgate does not know.
    #[serde(untagged)]
    Other(String),
}

impl AuthenticationMode {
    pub fn as_str(&self) -> &str {
        match self {
            AuthenticationMode::ConfigMap => "CONFIG_MAP",
            AuthenticationMode::ApiAndConfigMap => "API_AND_CONFIG_MAP",
            AuthenticationMode::Api => "API",
            AuthenticationMode::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "CONFIG_MAP" => AuthenticationMode::ConfigMap,
            "API_AND_CONFIG_MAP" => AuthenticationMode::ApiAndConfigMap,
            "API" => AuthenticationMode::Api,
            other => AuthenticationMode::Other(other.to_string()),
        }
    }

    /// How far along `CONFIG_MAP` → `API_AND_CONFIG_MAP` → `API` the mode
    /// is; `None` for a mode this version does not know.
    pub fn rank(&self) -> Option<u8> {
        match self {
            AuthenticationMode::ConfigMap => Some(0),
            AuthenticationMode::ApiAndConfigMap => Some(1),
            AuthenticationMode::Api => Some(2),
            AuthenticationMode::Other(_) => None,
        }
    }

    /// Whether the access-entry API answers in this mode.
    pub fn has_access_entries(&self) -> bool {
        matches!(
            self,
            AuthenticationMode::ApiAndConfigMap | AuthenticationMode::Api
        )
    }
}

impl fmt::Display for AuthenticationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a manifest says about who reaches the Kubernetes API of a cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredAccess {
    /// `private_access_principals`: IAM role or user ARNs, as written.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub principals: BTreeSet<String>,
    /// `authentication_mode`, when the manifest sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_mode: Option<AuthenticationMode>,
}

/// One access entry as far as eksgate read it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveEntry {
    /// The entry's principal ARN, as EKS holds it.
    pub principal_arn: String,
    /// `kubernetesGroups` (read only when the entry has no access policy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_groups: Vec<String>,
    /// The associated access policies: policy ARN and scope type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AssociatedPolicy>,
}

/// `associatedAccessPolicies[]` of `ListAssociatedAccessPolicies`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AssociatedPolicy {
    pub policy_arn: String,
    /// `cluster` or `namespace`.
    pub scope: String,
}

/// What was read of a cluster's access entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LiveAccess {
    /// Every principal ARN `ListAccessEntries` gave (all pages), and the
    /// entries of the declared principals, read in detail.
    Read {
        principals: BTreeSet<String>,
        entries: BTreeMap<String, LiveEntry>,
    },
    /// AWS refused or failed the reads: its code and message.
    NotRead { code: String, message: String },
}

/// What one declared principal can do, by what EKS holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// An entry with at least one access policy.
    Policy,
    /// An entry with Kubernetes groups and no access policy: whether RBAC
    /// binds those groups to anything, eksgate cannot see.
    GroupsOnly(Vec<String>),
    /// An entry with neither access policies nor groups.
    NoPermissions,
    NoEntry,
}

/// A principal ARN in the parts that identify it: `role` or `user`, and
/// partition, account and name (the path left out: see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PrincipalId {
    pub partition: String,
    pub account: String,
    pub kind: String,
    pub name: String,
}

impl PrincipalId {
    /// `arn:PARTITION:iam::ACCOUNT:role|user/[PATH/]NAME`, or `None`.
    pub fn of(arn: &str) -> Option<PrincipalId> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ["arn", partition, "iam", "", account, resource] = parts[..] else {
            return None;
        };
        let (kind, rest) = resource.split_once('/')?;
        if kind != "role" && kind != "user" {
            return None;
        }
        let name = rest.rsplit('/').next()?;
        if name.is_empty() {
            return None;
        }
        Some(PrincipalId {
            partition: partition.to_string(),
            account: account.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
        })
    }
}

/// Whether two principal ARNs name the same IAM role or user, a role's path
/// written or not on either side.
pub fn same_principal(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (PrincipalId::of(a), PrincipalId::of(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The listed principal ARN that names `declared`, if any.
pub fn find_entry<'a>(
    declared: &str,
    listed: impl IntoIterator<Item = &'a String>,
) -> Option<&'a String> {
    listed.into_iter().find(|l| same_principal(declared, l))
}

impl LiveAccess {
    /// The verdict for `declared`; `None` when the entries were not read.
    pub fn verdict(&self, declared: &str) -> Option<Verdict> {
        let LiveAccess::Read {
            principals,
            entries,
        } = self
        else {
            return None;
        };
        let Some(listed) = find_entry(declared, principals) else {
            return Some(Verdict::NoEntry);
        };
        let Some(entry) = entries.get(listed) else {
            // Listed but not read in detail: it exists, nothing more is known.
            return Some(Verdict::NoPermissions);
        };
        Some(if !entry.policies.is_empty() {
            Verdict::Policy
        } else if !entry.kubernetes_groups.is_empty() {
            Verdict::GroupsOnly(entry.kubernetes_groups.clone())
        } else {
            Verdict::NoPermissions
        })
    }
}

/// The AWS CLI commands that give `principal` cluster-wide access to `cluster`
/// in `region`, for hints: an entry (unless `has_entry`), then the view
/// policy associated with it.
pub fn grant_commands(cluster: &str, region: &str, principal: &str, has_entry: bool) -> String {
    let partition = PrincipalId::of(principal)
        .map(|p| p.partition)
        .unwrap_or_else(|| "aws".to_string());
    let mut out = Vec::new();
    if !has_entry {
        out.push(format!(
            "`aws eks create-access-entry --cluster-name {cluster} --region {region} --principal-arn {principal}`"
        ));
    }
    out.push(format!(
        "`aws eks associate-access-policy --cluster-name {cluster} --region {region} --principal-arn {principal} --policy-arn arn:{partition}:eks::aws:cluster-access-policy/AmazonEKSViewPolicy --access-scope type=cluster`"
    ));
    out.join(" then ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_compare_by_account_and_name_whatever_their_path() {
        let cases = [
            (
                "arn:aws:iam::111122223333:role/bastion",
                "arn:aws:iam::111122223333:role/ops/bastion",
                true,
            ),
            (
                "arn:aws:iam::111122223333:role/a/b/bastion",
                "arn:aws:iam::111122223333:role/bastion",
                true,
            ),
            (
                "arn:aws:iam::111122223333:role/bastion",
                "arn:aws:iam::444455556666:role/bastion",
                false,
            ),
            (
                "arn:aws:iam::111122223333:role/bastion",
                "arn:aws:iam::111122223333:user/bastion",
                false,
            ),
            (
                "arn:aws:iam::111122223333:role/bastion",
                "arn:aws-cn:iam::111122223333:role/bastion",
                false,
            ),
            (
                "arn:aws:iam::111122223333:role/bastion",
                "arn:aws:iam::111122223333:role/bastion-2",
                false,
            ),
            ("not an arn", "not an arn", true),
            ("not an arn", "arn:aws:iam::111122223333:role/x", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(same_principal(a, b), want, "{a} vs {b}");
            assert_eq!(same_principal(b, a), want, "{b} vs {a}");
        }
    }

    #[test]
    fn modes_only_move_forward() {
        use AuthenticationMode::*;
        assert!(ConfigMap.rank() < ApiAndConfigMap.rank());
        assert!(ApiAndConfigMap.rank() < Api.rank());
        assert_eq!(AuthenticationMode::parse("API"), Api);
        assert_eq!(
            serde_json::to_string(&ApiAndConfigMap).unwrap(),
            "\"API_AND_CONFIG_MAP\""
        );
        let other: AuthenticationMode = serde_json::from_str("\"NEW\"").unwrap();
        assert_eq!(other, Other("NEW".into()));
    }

    #[test]
    fn verdicts() {
        let role = "arn:aws:iam::111122223333:role/bastion";
        let entry = |policies: &[&str], groups: &[&str]| LiveEntry {
            principal_arn: "arn:aws:iam::111122223333:role/ops/bastion".into(),
            kubernetes_groups: groups.iter().map(|s| s.to_string()).collect(),
            policies: policies
                .iter()
                .map(|p| AssociatedPolicy {
                    policy_arn: p.to_string(),
                    scope: "cluster".into(),
                })
                .collect(),
        };
        let read = |e: Option<LiveEntry>| {
            let mut principals = BTreeSet::new();
            let mut entries = BTreeMap::new();
            if let Some(e) = e {
                principals.insert(e.principal_arn.clone());
                entries.insert(e.principal_arn.clone(), e);
            }
            LiveAccess::Read {
                principals,
                entries,
            }
        };
        assert_eq!(read(None).verdict(role), Some(Verdict::NoEntry));
        assert_eq!(
            read(Some(entry(&["p"], &[]))).verdict(role),
            Some(Verdict::Policy)
        );
        assert_eq!(
            read(Some(entry(&[], &["ops"]))).verdict(role),
            Some(Verdict::GroupsOnly(vec!["ops".into()]))
        );
        assert_eq!(
            read(Some(entry(&[], &[]))).verdict(role),
            Some(Verdict::NoPermissions)
        );
        let not_read = LiveAccess::NotRead {
            code: "AccessDeniedException".into(),
            message: String::new(),
        };
        assert_eq!(not_read.verdict(role), None);
    }
}
