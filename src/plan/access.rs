//! The identity path: before public access goes off, can the IAM principals
//! the manifest names (`private_access_principals`) still use the Kubernetes
//! API? Network access is the rest of the planner's; this module looks at
//! the cluster's authentication mode and access entries (`crate::access`)
//! and turns them into findings, the `AccessConfigUpdate` the manifest's
//! `authentication_mode` asks for, and the list apply checks again right
//! before the public-off call.
//!
//! The check applies to a cluster the manifest wants private only, when the
//! plan turns its public access off or it declares principals. Blocking:
//! a declared principal with no entry, or with an entry that carries neither
//! an access policy nor Kubernetes groups; a `CONFIG_MAP` cluster with
//! declared principals (who the `aws-auth` ConfigMap maps cannot be read
//! through the EKS API) unless its mode moves forward in this plan or
//! `--allow-unverified-access` is given; entries that could not be read; a
//! manifest asking the mode to go back. Warnings: an entry with Kubernetes
//! groups only (eksgate cannot see RBAC), no principals declared while public
//! access goes off (so existing manifests keep working), and checks left to
//! apply or not made at all.
//!
//! Pure: no I/O, no rendering.

use crate::access::{grant_commands, AuthenticationMode, LiveAccess, Verdict};
use crate::desired::DesiredCluster;
use crate::endpoint::EndpointSettings;
use crate::live::LiveCluster;

use super::{Finding, FindingCode, Severity};

/// Whether a finding of this kind is about who can use the Kubernetes API
/// (a saved plan whose access findings changed is stale for that reason).
pub fn is_access_code(code: FindingCode) -> bool {
    use FindingCode::*;
    matches!(
        code,
        PrincipalWithoutAccessEntry
            | AccessEntryWithoutPermissions
            | AccessEntryGroupsOnly
            | AccessConfigMap
            | AccessUnverified
            | AccessCheckedAtApply
            | AccessNotRead
            | NoPrivateAccessPrincipals
            | AuthenticationModeBackwards
    )
}

/// What the access check decided for one cluster.
#[derive(Debug, Default)]
pub struct AccessOutcome {
    pub findings: Vec<Finding>,
    /// `(live, wanted)` when the manifest's `authentication_mode` needs an
    /// `AccessConfigUpdate`.
    pub mode_change: Option<(AuthenticationMode, AuthenticationMode)>,
    /// The principals apply checks again right before the public-off call.
    pub recheck: Vec<String>,
}

/// The principals whose access entries the provider reads for `want`: its
/// `private_access_principals` when it is to be private only.
pub fn principals_to_read(want: &DesiredCluster) -> Vec<String> {
    if want.endpoint.public_access || !want.endpoint.private_access {
        return Vec::new();
    }
    want.access.principals.iter().cloned().collect()
}

/// The access findings of one cluster. `path` is the planned endpoint
/// updates, `(before, after)`.
pub fn check(
    want: &DesiredCluster,
    live: &LiveCluster,
    access: Option<&LiveAccess>,
    path: &[(EndpointSettings, EndpointSettings)],
    allow_unverified: bool,
) -> AccessOutcome {
    let key = &want.key;
    let mut out = AccessOutcome::default();
    let finding =
        |code: FindingCode, severity: Severity, message: String, hint: Option<String>| Finding {
            cluster: key.clone(),
            code,
            severity,
            message,
            hint,
        };
    // A cluster that names no mode predates access entries: `CONFIG_MAP`.
    let live_mode = live
        .authentication_mode
        .clone()
        .unwrap_or(AuthenticationMode::ConfigMap);

    if let Some(wanted) = &want.access.authentication_mode {
        match (live_mode.rank(), wanted.rank()) {
            (Some(l), Some(w)) if w < l => out.findings.push(finding(
                FindingCode::AuthenticationModeBackwards,
                Severity::Block,
                format!(
                    "`{key}` asks for authentication mode `{wanted}`, but it is `{live_mode}` and EKS never moves a mode back (`CONFIG_MAP` → `API_AND_CONFIG_MAP` → `API`)"
                ),
                Some(format!(
                    "set `authentication_mode = \"{live_mode}\"`, or remove the key"
                )),
            )),
            (Some(l), Some(w)) if w > l => {
                out.mode_change = Some((live_mode.clone(), wanted.clone()));
            }
            _ => {}
        }
    }

    let private_only = !want.endpoint.public_access && want.endpoint.private_access;
    let public_off = path
        .iter()
        .any(|(b, a)| b.public_access && !a.public_access);
    let principals: Vec<&String> = want.access.principals.iter().collect();
    if !private_only || (!public_off && principals.is_empty()) {
        return out;
    }
    if principals.is_empty() {
        out.findings.push(finding(
            FindingCode::NoPrivateAccessPrincipals,
            Severity::Warn,
            format!(
                "public access of `{key}` goes off, and `private_access_principals` names nobody who must still use its Kubernetes API"
            ),
            Some(
                "list the IAM roles of your bastions, CI and admins in `private_access_principals`, so eksgate checks their access entries before public access goes off"
                    .to_string(),
            ),
        ));
        return out;
    }
    let names = crate::text::join_and(
        &principals
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>(),
    );

    // A mode this version does not know is read as one with access entries:
    // the listing says whether it answers.
    if live_mode == AuthenticationMode::ConfigMap {
        if let Some((_, to)) = &out.mode_change {
            out.findings.push(finding(
                FindingCode::AccessCheckedAtApply,
                Severity::Warn,
                format!(
                    "`{key}` moves from authentication mode `{live_mode}` to `{to}` in this plan, so the access entries of {names} can only be read then: apply checks them right before public access goes off"
                ),
                Some(format!(
                    "create the entries once the mode is `{to}`, or apply refuses the public-off step"
                )),
            ));
            if public_off {
                out.recheck = principals.iter().map(|p| p.to_string()).collect();
            }
        } else if allow_unverified {
            out.findings.push(finding(
                FindingCode::AccessUnverified,
                Severity::Warn,
                format!(
                    "`{key}` uses authentication mode `{live_mode}`: whether {names} can still use the Kubernetes API is not verified (`--allow-unverified-access`)"
                ),
                None,
            ));
        } else {
            out.findings.push(finding(
                FindingCode::AccessConfigMap,
                Severity::Block,
                format!(
                    "`{key}` uses authentication mode `{live_mode}`: who the `aws-auth` ConfigMap maps cannot be read through the EKS API, so eksgate cannot check that {names} can still use the Kubernetes API once public access is off"
                ),
                Some(
                    "set `authentication_mode = \"API_AND_CONFIG_MAP\"` on the cluster (eksgate moves the mode before public access goes off, and the ConfigMap keeps working), or plan with `--allow-unverified-access` once you checked the ConfigMap yourself"
                        .to_string(),
                ),
            ));
        }
        return out;
    }

    let access = match access {
        Some(a @ LiveAccess::Read { .. }) => a,
        other => {
            let why = match other {
                Some(LiveAccess::NotRead { code, message }) if !code.is_empty() => {
                    format!("{code}: {message}")
                }
                Some(LiveAccess::NotRead { message, .. }) => message.clone(),
                _ => "they were not read".to_string(),
            };
            let (severity, hint) = if allow_unverified {
                (Severity::Warn, None)
            } else {
                (
                    Severity::Block,
                    Some(
                        "the credentials need `eks:ListAccessEntries`, `eks:DescribeAccessEntry` and `eks:ListAssociatedAccessPolicies`; or plan with `--allow-unverified-access`"
                            .to_string(),
                    ),
                )
            };
            out.findings.push(finding(
                FindingCode::AccessNotRead,
                severity,
                format!("the access entries of `{key}` were not read ({why}), so whether {names} can still use the Kubernetes API is not known"),
                hint,
            ));
            return out;
        }
    };
    for p in principals {
        let grant = |has_entry: bool| grant_commands(&key.name, &key.region, p, has_entry);
        match access.verdict(p) {
            Some(Verdict::Policy) | None => {}
            Some(Verdict::GroupsOnly(groups)) => out.findings.push(finding(
                FindingCode::AccessEntryGroupsOnly,
                Severity::Warn,
                format!(
                    "the access entry of `{p}` on `{key}` has Kubernetes groups ({}) and no access policy: whether RBAC binds those groups to anything, eksgate cannot see",
                    groups.iter().map(|g| format!("`{g}`")).collect::<Vec<_>>().join(", ")
                ),
                Some(format!("to be sure, associate an access policy: {}", grant(true))),
            )),
            Some(Verdict::NoPermissions) => out.findings.push(finding(
                FindingCode::AccessEntryWithoutPermissions,
                Severity::Block,
                format!(
                    "the access entry of `{p}` on `{key}` has neither an access policy nor Kubernetes groups: it could not use the Kubernetes API once public access is off"
                ),
                Some(format!("associate an access policy: {}", grant(true))),
            )),
            Some(Verdict::NoEntry) => out.findings.push(finding(
                FindingCode::PrincipalWithoutAccessEntry,
                Severity::Block,
                format!(
                    "`{p}` has no access entry on `{key}`: it could not use the Kubernetes API once public access is off"
                ),
                Some(format!("give it one: {}", grant(false))),
            )),
        }
    }
    if public_off {
        out.recheck = want.access.principals.iter().cloned().collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::access::{AssociatedPolicy, LiveEntry};
    use crate::apply::fake;

    const BASTION: &str = "arn:aws:iam::111122223333:role/bastion";

    fn want(principals: &[&str], mode: Option<AuthenticationMode>) -> DesiredCluster {
        let mut w = fake::want("a", fake::private(), &["10.0.0.0/8"]);
        w.access.principals = principals.iter().map(|s| s.to_string()).collect();
        w.access.authentication_mode = mode;
        w
    }

    fn live(mode: AuthenticationMode) -> LiveCluster {
        let aws = fake::FakeAws::new().cluster("a", fake::public());
        let w = want(&[], None);
        let Some(crate::live::ClusterObservation::Found(mut c)) =
            aws.live(std::slice::from_ref(&w)).clusters.remove(&w.key)
        else {
            panic!("the fake has cluster `a`");
        };
        c.authentication_mode = Some(mode);
        c
    }

    fn path() -> Vec<(EndpointSettings, EndpointSettings)> {
        vec![(
            EndpointSettings::new(true, true),
            EndpointSettings::new(false, true),
        )]
    }

    fn entries(list: &[(&str, &[&str], &[&str])]) -> LiveAccess {
        let mut principals = BTreeSet::new();
        let mut entries = BTreeMap::new();
        for (arn, policies, groups) in list {
            principals.insert(arn.to_string());
            entries.insert(
                arn.to_string(),
                LiveEntry {
                    principal_arn: arn.to_string(),
                    kubernetes_groups: groups.iter().map(|s| s.to_string()).collect(),
                    policies: policies
                        .iter()
                        .map(|p| AssociatedPolicy {
                            policy_arn: p.to_string(),
                            scope: "cluster".into(),
                        })
                        .collect(),
                },
            );
        }
        LiveAccess::Read {
            principals,
            entries,
        }
    }

    fn codes(o: &AccessOutcome) -> Vec<(FindingCode, Severity)> {
        o.findings.iter().map(|f| (f.code, f.severity)).collect()
    }

    #[test]
    fn each_case_gives_its_finding() {
        use AuthenticationMode::*;
        use FindingCode::*;
        use Severity::*;
        let with_path = entries(&[("arn:aws:iam::111122223333:role/ops/bastion", &["view"], &[])]);
        type Case<'a> = (
            &'a str,
            DesiredCluster,
            AuthenticationMode,
            Option<LiveAccess>,
            bool,
            Vec<(FindingCode, Severity)>,
        );
        let cases: Vec<Case> = vec![
            (
                "policy",
                want(&[BASTION], None),
                Api,
                Some(entries(&[(BASTION, &["view"], &[])])),
                false,
                vec![],
            ),
            (
                "path on the entry",
                want(&[BASTION], None),
                ApiAndConfigMap,
                Some(with_path),
                false,
                vec![],
            ),
            (
                "no entry",
                want(&[BASTION], None),
                Api,
                Some(entries(&[])),
                false,
                vec![(PrincipalWithoutAccessEntry, Block)],
            ),
            (
                "groups only",
                want(&[BASTION], None),
                Api,
                Some(entries(&[(BASTION, &[], &["ops"])])),
                false,
                vec![(AccessEntryGroupsOnly, Warn)],
            ),
            (
                "nothing on the entry",
                want(&[BASTION], None),
                Api,
                Some(entries(&[(BASTION, &[], &[])])),
                false,
                vec![(AccessEntryWithoutPermissions, Block)],
            ),
            (
                "config map",
                want(&[BASTION], None),
                ConfigMap,
                None,
                false,
                vec![(AccessConfigMap, Block)],
            ),
            (
                "config map, allowed",
                want(&[BASTION], None),
                ConfigMap,
                None,
                true,
                vec![(AccessUnverified, Warn)],
            ),
            (
                "config map, moving",
                want(&[BASTION], Some(ApiAndConfigMap)),
                ConfigMap,
                None,
                false,
                vec![(AccessCheckedAtApply, Warn)],
            ),
            (
                "nobody declared",
                want(&[], None),
                ConfigMap,
                None,
                false,
                vec![(NoPrivateAccessPrincipals, Warn)],
            ),
            (
                "backwards",
                want(&[], Some(ConfigMap)),
                Api,
                None,
                false,
                vec![
                    (AuthenticationModeBackwards, Block),
                    (NoPrivateAccessPrincipals, Warn),
                ],
            ),
            (
                "not read",
                want(&[BASTION], None),
                Api,
                Some(LiveAccess::NotRead {
                    code: "AccessDeniedException".into(),
                    message: "no".into(),
                }),
                false,
                vec![(AccessNotRead, Block)],
            ),
        ];
        for (what, w, mode, access, allow, expected) in cases {
            let o = check(&w, &live(mode), access.as_ref(), &path(), allow);
            assert_eq!(codes(&o), expected, "{what}");
        }
    }

    #[test]
    fn the_hint_gives_the_commands_that_fix_a_missing_entry() {
        let o = check(
            &want(&[BASTION], None),
            &live(AuthenticationMode::Api),
            Some(&entries(&[])),
            &path(),
            false,
        );
        let hint = o.findings[0].hint.as_deref().unwrap();
        assert!(hint.contains(&format!("`aws eks create-access-entry --cluster-name a --region eu-west-1 --principal-arn {BASTION}`")), "{hint}");
        assert!(
            hint.contains("aws eks associate-access-policy --cluster-name a --region eu-west-1"),
            "{hint}"
        );
        assert_eq!(o.recheck, vec![BASTION.to_string()]);
    }

    #[test]
    fn the_mode_moves_forward_only_and_in_one_update() {
        use AuthenticationMode::*;
        for (live_mode, wanted, change) in [
            (ConfigMap, ApiAndConfigMap, true),
            (ConfigMap, Api, true),
            (ApiAndConfigMap, Api, true),
            (Api, Api, false),
            (Api, ApiAndConfigMap, false),
        ] {
            let o = check(
                &want(&[], Some(wanted.clone())),
                &live(live_mode.clone()),
                None,
                &[],
                false,
            );
            assert_eq!(o.mode_change.is_some(), change, "{live_mode} -> {wanted}");
            if change {
                assert_eq!(o.mode_change, Some((live_mode, wanted)));
            }
        }
    }

    #[test]
    fn the_mode_update_runs_before_the_endpoint_updates() {
        let aws = fake::FakeAws::new().cluster("a", fake::public());
        // The fake names no mode: a cluster from before access entries.
        let p = fake::plan(&aws, vec![want(&[], Some(AuthenticationMode::Api))]);
        let ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "eu-west-1/sg-a/https_ingress",
                "eu-west-1/a/access_config",
                "eu-west-1/a/endpoint.1",
                "eu-west-1/a/endpoint.2"
            ]
        );
        assert_eq!(
            p.steps[1].action,
            crate::plan::Action::AccessConfig {
                before: AuthenticationMode::ConfigMap,
                after: AuthenticationMode::Api,
            }
        );
        assert_eq!(p.steps[2].depends_on, ["eu-west-1/a/access_config"]);
        assert!(p.steps[2]
            .reason
            .contains("the authentication mode update to be `Successful`"));
        assert!(p.access_checks.is_empty());
    }

    #[test]
    fn clusters_that_keep_public_access_are_not_checked() {
        let mut w = want(&[BASTION], None);
        w.endpoint = EndpointSettings::new(true, true);
        let o = check(&w, &live(AuthenticationMode::ConfigMap), None, &[], false);
        assert!(o.findings.is_empty());
        assert!(principals_to_read(&w).is_empty());
        assert_eq!(principals_to_read(&want(&[BASTION], None)), vec![BASTION]);
    }
}
