//! The manifest's identity keys: `private_access_principals` (the IAM roles
//! and users that must still use the Kubernetes API once public access is
//! off) and `authentication_mode`, on a `[[cluster]]` or in `[defaults]`.
//! Each principal must be an IAM role or user ARN (paths allowed) of a
//! 12-digit account, in the partition of the cluster's region; the list only
//! goes with `private_access = true`, without repeats.
//!
//! Works on tables that passed `shape`, like `cluster`, which calls it.

use std::ops::Range;

use toml::Spanned;

use super::rules::{is_account, lit, partition_of_region, Problem, PARTITIONS};
use crate::access::{AuthenticationMode, DesiredAccess, PrincipalId};
use crate::diagnostic::{Collector, Diagnostic};

/// The two keys of one table after checking each value on its own.
#[derive(Clone, Debug, Default)]
pub(super) struct AccessFields {
    /// The principals and each one's span; `None`: not given (or broken).
    principals: Option<Vec<(String, Range<usize>)>>,
    principals_span: Option<Range<usize>>,
    /// Whether this table's own list was given (not inherited).
    own_principals: bool,
    mode: Option<AuthenticationMode>,
    broken: bool,
}

const SHAPE: &str =
    "principals look like `arn:aws:iam::111122223333:role/bastion` or `arn:aws:iam::111122223333:user/ci`; a role may have a path (`role/ops/bastion`)";

/// `arn:PARTITION:iam::ACCOUNT:role|user/[PATH/]NAME`, with its messages.
pub(super) fn parse_principal(arn: &str) -> Result<PrincipalId, Problem> {
    let not_arn =
        || Problem::new(format!("{} is not an IAM role or user ARN", lit(arn))).hint(SHAPE);
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [scheme, partition, service, region, account, resource] = parts[..] else {
        return Err(not_arn());
    };
    if scheme != "arn" {
        return Err(not_arn());
    }
    if service == "sts" && resource.starts_with("assumed-role/") {
        return Err(Problem::new(format!(
            "{} is an assumed-role session, not a role",
            lit(arn)
        ))
        .hint(format!(
            "use the role's own ARN: `arn:{partition}:iam::{account}:role/NAME` (EKS access entries cannot hold sessions)"
        )));
    }
    if service != "iam" || !region.is_empty() {
        return Err(not_arn());
    }
    if !PARTITIONS.contains(&partition) {
        return Err(Problem::new(format!(
            "unknown partition {} in {}",
            lit(partition),
            lit(arn)
        ))
        .hint(SHAPE));
    }
    if !is_account(account) {
        return Err(Problem::new(format!(
            "the account {} in {} is not 12 digits",
            lit(account),
            lit(arn)
        ))
        .hint(SHAPE));
    }
    let word_ok = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    };
    let valid = resource
        .split_once('/')
        .filter(|(kind, _)| *kind == "role" || *kind == "user")
        .is_some_and(|(_, rest)| {
            let mut words: Vec<&str> = rest.split('/').collect();
            let name = words.pop().unwrap_or_default();
            word_ok(name) && name.len() <= 64 && words.iter().all(|w| word_ok(w))
        });
    if !valid {
        return Err(Problem::new(format!(
            "{} names no IAM role or user (its resource is {})",
            lit(arn),
            lit(resource)
        ))
        .hint(SHAPE));
    }
    PrincipalId::of(arn).ok_or_else(not_arn)
}

/// Checks one table's own values.
pub(super) fn check(
    out: &mut Collector<'_>,
    principals: &Option<Spanned<Vec<Spanned<String>>>>,
    mode: &Option<Spanned<String>>,
    is_broken: impl Fn(&str) -> bool,
) -> AccessFields {
    let mut f = AccessFields {
        broken: is_broken("private_access_principals") || is_broken("authentication_mode"),
        ..AccessFields::default()
    };
    if let Some(list) = principals {
        let source = out.source();
        let mut seen: Vec<(PrincipalId, Range<usize>)> = Vec::new();
        let mut ok = Vec::new();
        for entry in list.get_ref() {
            match parse_principal(entry.get_ref()) {
                Ok(id) => {
                    if let Some((_, first)) = seen.iter().find(|(s, _)| *s == id) {
                        let note = format!("first listed at {}", source.position(first.start));
                        out.push(
                            Diagnostic::error(format!(
                                "{} is listed twice in `private_access_principals`",
                                lit(entry.get_ref())
                            ))
                            .at(source, entry.span())
                            .note(note)
                            .hint("a role is the same whatever its path; remove one of the two"),
                        );
                        f.broken = true;
                        continue;
                    }
                    seen.push((id, entry.span()));
                    ok.push((entry.get_ref().clone(), entry.span()));
                }
                Err(Problem { message, hint }) => {
                    out.error(entry.span(), message, hint.as_deref());
                    f.broken = true;
                }
            }
        }
        f.principals = Some(ok);
        f.principals_span = Some(list.span());
        f.own_principals = true;
    }
    if let Some(m) = mode {
        match AuthenticationMode::parse(m.get_ref()) {
            AuthenticationMode::Other(other) => {
                out.error(
                    m.span(),
                    format!("unknown authentication mode {}", lit(&other)),
                    Some("use `\"API_AND_CONFIG_MAP\"` (access entries and the `aws-auth` ConfigMap) or `\"API\"` (access entries only)"),
                );
                f.broken = true;
            }
            known => f.mode = Some(known),
        }
    }
    f
}

impl AccessFields {
    /// This table's own values, or else `[defaults]`'s, key by key.
    pub(super) fn or_inherit(self, defaults: &AccessFields) -> AccessFields {
        let own = self.principals.is_some();
        AccessFields {
            principals: self.principals.or_else(|| defaults.principals.clone()),
            principals_span: if own {
                self.principals_span
            } else {
                defaults.principals_span.clone()
            },
            own_principals: own,
            mode: self.mode.or_else(|| defaults.mode.clone()),
            broken: self.broken,
        }
    }
}

/// The rules between the keys and the rest of the cluster: principals in
/// the region's partition, and only with private access. `private` is the
/// table's `private_access` (and its span) when given.
pub(super) fn finish(
    out: &mut Collector<'_>,
    fields: AccessFields,
    region: Option<&str>,
    private: Option<&(bool, Range<usize>)>,
) -> DesiredAccess {
    let mut access = DesiredAccess {
        authentication_mode: fields.mode,
        ..DesiredAccess::default()
    };
    let Some(list) = fields.principals else {
        return access;
    };
    if let (Some((false, _)), true, Some(span)) =
        (private, fields.own_principals, &fields.principals_span)
    {
        out.error(
            span.clone(),
            "`private_access_principals` is set but `private_access = false`",
            Some("remove `private_access_principals`, or set `private_access = true`"),
        );
        return access;
    }
    if matches!(private, Some((false, _))) {
        // Inherited from `[defaults]` by a cluster that stays public.
        return access;
    }
    for (arn, span) in list {
        if let (Some(region), Some(id)) = (region, PrincipalId::of(&arn)) {
            let partition = partition_of_region(region);
            if id.partition != partition {
                out.error(
                    span,
                    format!(
                        "{} is in partition {}, but region {} is in {}",
                        lit(&arn),
                        lit(&id.partition),
                        lit(region),
                        lit(partition)
                    ),
                    Some(&format!(
                        "use a principal of the `{partition}` partition: `arn:{partition}:iam::ACCOUNT:role/NAME`"
                    )),
                );
                continue;
            }
        }
        access.principals.insert(arn);
    }
    access
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_are_roles_or_users_with_paths_allowed() {
        let ok = [
            "arn:aws:iam::111122223333:role/bastion",
            "arn:aws:iam::111122223333:role/ops/ci/bastion",
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws-cn:iam::111122223333:role/x",
        ];
        for arn in ok {
            assert!(parse_principal(arn).is_ok(), "{arn}");
        }
        let bad = [
            ("arn:aws:iam::11112222333:role/x", "is not 12 digits"),
            (
                "arn:aws:iam::111122223333:group/x",
                "names no IAM role or user",
            ),
            (
                "arn:aws:iam::111122223333:role/",
                "names no IAM role or user",
            ),
            (
                "arn:aws:sts::111122223333:assumed-role/x/s",
                "assumed-role session",
            ),
            (
                "arn:aws:iam:eu-west-1:111122223333:role/x",
                "is not an IAM role or user ARN",
            ),
            ("arn:nope:iam::111122223333:role/x", "unknown partition"),
            ("bastion", "is not an IAM role or user ARN"),
        ];
        for (arn, want) in bad {
            let err = parse_principal(arn).unwrap_err();
            assert!(err.message.contains(want), "{arn}: {}", err.message);
        }
    }
}
