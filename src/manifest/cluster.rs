//! Cluster rules: a `[[cluster]]` table whose shape is right becomes a
//! [`DesiredCluster`], or says every reason it cannot. Each value is checked
//! with its rule (`rules`: names, regions, accounts, role ARNs, CIDR blocks,
//! access sources), then the rules between values: settings inherited from
//! `[defaults]`, a role in the account and partition the cluster is in, the
//! settings that are required, both endpoints off, lists without repeats and
//! within AWS's limit, lists that contradict their endpoint, and waves.
//!
//! Works on tables that passed `shape`; it does not read files and does not
//! judge keys or types.

use std::collections::BTreeSet;
use std::ops::Range;

use toml::Spanned;

use super::access::{self, AccessFields};
use super::allow_list::PublicEntry;
use super::raw;
use super::rules::{self, lit, Problem, RoleArn, MAX_PUBLIC_ACCESS_CIDRS};
use super::shape::Shaped;
use crate::desired::{ClusterKey, DesiredCluster, Origin};
use crate::diagnostic::{Collector, Diagnostic};
use crate::endpoint::{EndpointSettings, PublicCidr};

/// What one `[[cluster]]` table gave: its key when name, region and account
/// could be read (for the duplicate check, even if other values are wrong),
/// and the cluster when the table had no error at all.
pub(super) struct Outcome {
    pub header: Range<usize>,
    pub origin: Origin,
    pub key: Option<ClusterKey>,
    pub cluster: Option<DesiredCluster>,
}

/// A setting after checking.
#[derive(Clone, Debug, Default)]
enum Field<T> {
    /// Not given.
    #[default]
    Absent,
    /// Given but wrong; already reported, so nothing may complain about it
    /// being missing.
    Broken,
    Valid {
        value: T,
        span: Range<usize>,
        /// Comes from `[defaults]`: checks of defaults alone were made there.
        inherited: bool,
    },
}

impl<T: Clone> Field<T> {
    fn value(&self) -> Option<&T> {
        match self {
            Field::Valid { value, .. } => Some(value),
            _ => None,
        }
    }

    fn inherit(&self) -> Field<T> {
        match self {
            Field::Valid { value, span, .. } => Field::Valid {
                value: value.clone(),
                span: span.clone(),
                inherited: true,
            },
            other => other.clone(),
        }
    }

    /// This table's own setting, or else the inherited one.
    fn or_inherit(self, default: &Field<T>) -> Field<T> {
        match self {
            Field::Absent => default.inherit(),
            own => own,
        }
    }
}

/// A checked role: the ARN as written, and its parts.
type Role = (String, RoleArn);

fn parse_role(arn: &str) -> Result<Role, Problem> {
    rules::parse_role_arn(arn).map(|parts| (arn.to_string(), parts))
}

/// A rule that only accepts or refuses, as one that gives the value as
/// written.
fn as_written(rule: fn(&str) -> Result<(), Problem>) -> impl Fn(&str) -> Result<String, Problem> {
    move |s| rule(s).map(|()| s.to_string())
}

/// Where a cluster is and who acts on it: the settings a cluster may take
/// from `[defaults]`. The checked `[defaults]` of a file is one of these.
#[derive(Clone, Debug, Default)]
pub(super) struct Placement {
    region: Field<String>,
    account: Field<String>,
    role: Field<Role>,
    /// `owner_acknowledged`, when the table sets it.
    owner_acknowledged: Option<bool>,
    /// `private_access_principals` and `authentication_mode`.
    access: AccessFields,
    /// `private_access_from_exclusive`, when the table sets it.
    exclusive: Option<bool>,
}

impl Placement {
    /// The three settings as one table wrote them.
    fn check(
        out: &mut Collector<'_>,
        region: &Option<Spanned<String>>,
        account: &Option<Spanned<String>>,
        role_arn: &Option<Spanned<String>>,
        owner_acknowledged: &Option<Spanned<bool>>,
        exclusive: &Option<Spanned<bool>>,
        is_broken: impl Fn(&str) -> bool,
    ) -> Placement {
        Placement {
            region: check(
                out,
                region,
                is_broken("region"),
                as_written(rules::check_region),
            ),
            account: check(
                out,
                account,
                is_broken("account"),
                as_written(rules::check_account),
            ),
            role: check(out, role_arn, is_broken("role_arn"), parse_role),
            owner_acknowledged: owner_acknowledged.as_ref().map(|b| *b.get_ref()),
            access: AccessFields::default(),
            exclusive: exclusive.as_ref().map(|b| *b.get_ref()),
        }
    }

    /// Each of this table's own settings, or else the inherited one.
    fn or_inherit(self, defaults: &Placement) -> Placement {
        Placement {
            region: self.region.or_inherit(&defaults.region),
            account: self.account.or_inherit(&defaults.account),
            role: self.role.or_inherit(&defaults.role),
            owner_acknowledged: self.owner_acknowledged.or(defaults.owner_acknowledged),
            access: self.access.or_inherit(&defaults.access),
            exclusive: self.exclusive.or(defaults.exclusive),
        }
    }
}

/// The checked `[defaults]` of a file, from its shape check (`None` when
/// `defaults` was not a table, which was reported).
pub(super) fn defaults(
    out: &mut Collector<'_>,
    shaped: Option<Shaped<raw::Defaults>>,
) -> Placement {
    let Some(shaped) = shaped else {
        return Placement::default();
    };
    let Some(raw) = &shaped.value else {
        return Placement {
            region: Field::Broken,
            account: Field::Broken,
            role: Field::Broken,
            owner_acknowledged: None,
            access: AccessFields::default(),
            exclusive: None,
        };
    };
    let mut placement = Placement::check(
        out,
        &raw.region,
        &raw.account,
        &raw.role_arn,
        &raw.owner_acknowledged,
        &raw.private_access_from_exclusive,
        |k| shaped.is_broken(k),
    );
    placement.access = access::check(
        out,
        &raw.private_access_principals,
        &raw.authentication_mode,
        |k| shaped.is_broken(k),
    );
    role_matches(out, &placement);
    placement
}

fn check<T>(
    out: &mut Collector<'_>,
    value: &Option<Spanned<String>>,
    broken: bool,
    rule: impl Fn(&str) -> Result<T, Problem>,
) -> Field<T> {
    if broken {
        return Field::Broken;
    }
    let Some(value) = value else {
        return Field::Absent;
    };
    match rule(value.get_ref()) {
        Ok(checked) => Field::Valid {
            value: checked,
            span: value.span(),
            inherited: false,
        },
        Err(problem) => {
            report(out, value.span(), problem);
            Field::Broken
        }
    }
}

fn report(out: &mut Collector<'_>, span: Range<usize>, problem: Problem) {
    let Problem { message, hint } = problem;
    out.error(span, message, hint.as_deref());
}

/// A role must be in the pinned account and in the region's partition.
fn role_matches(out: &mut Collector<'_>, placement: &Placement) {
    let Field::Valid {
        value: (_, arn),
        span: role_span,
        inherited: role_inherited,
    } = &placement.role
    else {
        return;
    };
    let role = (role_span, *role_inherited);
    if let Field::Valid {
        value: account,
        span,
        inherited,
    } = &placement.account
    {
        if arn.account != *account {
            disagree(
                out,
                role,
                (span, *inherited, "account"),
                Diagnostic::error(format!(
                    "`role_arn` is in account `{}`, but `account` is `{account}`",
                    arn.account
                ))
                .hint(
                    "eksgate acts with the role's credentials, so both must name the same account",
                ),
            );
        }
    }
    if let Field::Valid {
        value: region,
        span,
        inherited,
    } = &placement.region
    {
        let partition = rules::partition_of_region(region);
        if arn.partition != partition {
            disagree(
                out,
                role,
                (span, *inherited, "region"),
                Diagnostic::error(format!(
                    "`role_arn` is in partition `{}`, but region `{region}` is in `{partition}`",
                    arn.partition
                ))
                .hint(format!(
                    "use a role of the `{partition}` partition: `arn:{partition}:iam::ACCOUNT:role/NAME`"
                )),
            );
        }
    }
}

/// Reports a role that disagrees with another setting at whichever of the
/// two this table set itself, with a note on where the other is set. A pair
/// that both come from `[defaults]` was checked there, once.
fn disagree(
    out: &mut Collector<'_>,
    (role_span, role_inherited): (&Range<usize>, bool),
    (span, inherited, key): (&Range<usize>, bool, &str),
    diag: Diagnostic,
) {
    if role_inherited && inherited {
        return;
    }
    let (at, other, other_key) = if role_inherited {
        (span, role_span, "role_arn")
    } else {
        (role_span, span, key)
    };
    let source = out.source();
    let note = format!("`{other_key}` is set at {}", source.position(other.start));
    out.push(diag.at(source, at.clone()).note(note));
}

/// Checks one `[[cluster]]` table, after its shape check, against the rules
/// and the file's `[defaults]`.
pub(super) fn cluster(
    out: &mut Collector<'_>,
    header: Range<usize>,
    shaped: Shaped<raw::Cluster>,
    defaults: &Placement,
) -> Outcome {
    let source = out.source();
    let (line, column) = source.line_col(header.start);
    let origin = Origin {
        file: source.name.clone(),
        line,
        column,
    };
    let errors_before = out.error_count();
    let Some(raw) = &shaped.value else {
        return Outcome {
            header,
            origin,
            key: None,
            cluster: None,
        };
    };
    let is_broken = |k: &str| shaped.is_broken(k);

    let name = check(
        out,
        &raw.name,
        is_broken("name"),
        as_written(rules::check_name),
    );
    if let Field::Absent = name {
        out.error(
            header.clone(),
            "`[[cluster]]` has no `name`",
            Some("add `name = \"...\"`, the EKS cluster's name"),
        );
    }
    // Only messages use it: built when one is written, not per cluster.
    let label = || match name.value() {
        Some(name) => format!("cluster {}", lit(name)),
        None => "this cluster".to_string(),
    };

    let mut own = Placement::check(
        out,
        &raw.region,
        &raw.account,
        &raw.role_arn,
        &raw.owner_acknowledged,
        &raw.private_access_from_exclusive,
        is_broken,
    );
    own.access = access::check(
        out,
        &raw.private_access_principals,
        &raw.authentication_mode,
        is_broken,
    );
    let placement = own.or_inherit(defaults);
    if let Field::Absent = placement.region {
        out.error(
            header.clone(),
            format!("{} has no `region`, and `[defaults]` gives none", label()),
            Some("add `region = \"eu-west-1\"` to the table, or to `[defaults]` for every cluster of this file"),
        );
    }
    role_matches(out, &placement);

    let public = flag(
        out,
        &raw.public_access,
        is_broken("public_access"),
        "public_access",
        &label,
        &header,
    );
    let private = flag(
        out,
        &raw.private_access,
        is_broken("private_access"),
        "private_access",
        &label,
        &header,
    );
    if let (Some((false, _)), Some((false, private_span))) = (&public, &private) {
        out.error(
            private_span.clone(),
            "`public_access` and `private_access` cannot both be false",
            Some("AWS rejects it (\"Both private and public endpoint access cannot be false\"); for a private-only endpoint set `private_access = true`"),
        );
    }

    let public_access_cidrs = raw.public_access_cidrs.as_ref().map(|list| {
        let nets = unique_list(
            out,
            list,
            "public_access_cidrs",
            super::allow_list::parse_public_entry,
        );
        if list.get_ref().is_empty() {
            out.error(
                list.span(),
                "`public_access_cidrs` is empty",
                Some("list at least one CIDR block, or remove the key to leave the list as it is; `[\"0.0.0.0/0\"]` opens the endpoint to everyone"),
            );
        }
        let count = list.get_ref().len();
        if let Some(first_extra) = list.get_ref().get(MAX_PUBLIC_ACCESS_CIDRS) {
            out.error(
                first_extra.span(),
                format!("`public_access_cidrs` lists {count} blocks, AWS allows at most {MAX_PUBLIC_ACCESS_CIDRS}"),
                Some("merge neighbouring blocks into wider ones, or reach the cluster through the private endpoint"),
            );
        }
        if !matches!(public, Some((false, _))) {
            super::network::warn_unrouted(out, list);
        }
        if let Some((false, _)) = public {
            out.error(
                list.span(),
                "`public_access_cidrs` is set but `public_access = false`",
                Some("remove `public_access_cidrs`, or set `public_access = true`"),
            );
        }
        nets
    });
    let private_access_from = raw.private_access_from.as_ref().map(|list| {
        let sources = unique_list(out, list, "private_access_from", rules::parse_access_source);
        if let Some((false, _)) = private {
            out.error(
                list.span(),
                "`private_access_from` is set but `private_access = false`",
                Some("remove `private_access_from`, or set `private_access = true`"),
            );
        }
        sources
    });
    if let (Some(own), Some((false, _))) = (&raw.private_access_from_exclusive, &private) {
        if *own.get_ref() {
            out.error(
                own.span(),
                "`private_access_from_exclusive` is set but `private_access = false`",
                Some("remove `private_access_from_exclusive`, or set `private_access = true`"),
            );
        }
    }
    let private_only = matches!((&public, &private), (Some((false, _)), Some((true, _))));
    let nothing_declared = match &raw.private_access_from {
        None => !is_broken("private_access_from"),
        Some(list) => list.get_ref().is_empty(),
    };
    if private_only && nothing_declared {
        let at = raw.name.as_ref().map_or(header.clone(), |name| name.span());
        out.push(
            Diagnostic::warning("nothing outside the VPC is declared to reach this cluster")
                .at(source, at)
                .hint("list the security groups or CIDR blocks of your bastions, CI runners or VPN in `private_access_from`, so eksgate opens TCP 443 to them"),
        );
    }

    let wave = match &raw.wave {
        None => Some(0),
        Some(wave) => match u32::try_from(*wave.get_ref()) {
            Ok(wave) => Some(wave),
            Err(_) => {
                out.error(
                    wave.span(),
                    format!("`wave` must be between 0 and {}", u32::MAX),
                    Some("waves roll out in increasing order, starting at 0"),
                );
                None
            }
        },
    };

    let Placement {
        region,
        account,
        role,
        owner_acknowledged,
        access,
        exclusive,
    } = placement;
    let access = access::finish(
        out,
        access,
        region.value().map(String::as_str),
        private.as_ref(),
    );
    let key = match (&name, &region, &account, &role) {
        (Field::Valid { value: name, .. }, Field::Valid { value: region, .. }, account, role)
            if !matches!(account, Field::Broken) && !matches!(role, Field::Broken) =>
        {
            Some(ClusterKey {
                // With a role and no pinned account, the role's account is
                // where the calls land: pin that one.
                account: account
                    .value()
                    .cloned()
                    .or_else(|| role.value().map(|(_, r)| r.account.clone())),
                region: region.clone(),
                name: name.clone(),
            })
        }
        _ => None,
    };

    let clean = shaped.clean && out.error_count() == errors_before;
    let cluster = match (clean, &key, public, private, wave) {
        (true, Some(key), Some((public, _)), Some((private, _)), Some(wave)) => {
            let role_arn = role.value().map(|(arn, _)| arn.clone());
            let entries = public_access_cidrs.flatten();
            let nets = entries.as_ref().map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| match e {
                        PublicEntry::Cidr(n) => Some(PublicCidr::Net(*n)),
                        PublicEntry::PrefixList(_) => None,
                    })
                    .collect()
            });
            let prefix_lists = entries
                .iter()
                .flatten()
                .filter_map(|e| match e {
                    PublicEntry::PrefixList(id) => Some(id.clone()),
                    PublicEntry::Cidr(_) => None,
                })
                .collect();
            Some(DesiredCluster {
                key: key.clone(),
                role_arn,
                endpoint: EndpointSettings::new(public, private).with_cidrs(nets),
                private_access_from: private_access_from.flatten().unwrap_or_default().into(),
                wave,
                owner_acknowledged: owner_acknowledged.unwrap_or(false),
                // `[defaults]` may say it for a file whose public-only
                // clusters have no private allow-list to own.
                private_access_from_exclusive: private && exclusive.unwrap_or(false),
                public_access_prefix_lists: prefix_lists,
                origin: origin.clone(),
                access,
            })
        }
        _ => None,
    };
    Outcome {
        header,
        origin,
        key,
        cluster,
    }
}

/// A required boolean: its value and span, or `None` (reported).
fn flag(
    out: &mut Collector<'_>,
    value: &Option<Spanned<bool>>,
    broken: bool,
    key: &str,
    label: &impl Fn() -> String,
    header: &Range<usize>,
) -> Option<(bool, Range<usize>)> {
    match value {
        Some(v) => Some((*v.get_ref(), v.span())),
        None if broken => None,
        None => {
            out.error(
                header.clone(),
                format!("{} does not set `{key}`", label()),
                Some(&format!(
                    "add `{key} = true` or `{key} = false`; eksgate does not guess which endpoints you want"
                )),
            );
            None
        }
    }
}

/// Checks every entry of a list, and that none repeats after normalising.
/// `None` when any entry is wrong.
fn unique_list<T: Ord + std::fmt::Display>(
    out: &mut Collector<'_>,
    list: &Spanned<Vec<Spanned<String>>>,
    key: &str,
    rule: fn(&str) -> Result<T, Problem>,
) -> Option<BTreeSet<T>> {
    let source = out.source();
    // The set the cluster keeps, built as the list is read; where a value
    // was first listed is looked up only when it repeats.
    let mut seen = BTreeSet::new();
    let mut ok = true;
    let entries = list.get_ref();
    for (i, entry) in entries.iter().enumerate() {
        match rule(entry.get_ref()) {
            Ok(value) => match seen.get(&value) {
                Some(first) => {
                    ok = false;
                    // The first earlier entry of this value is the one kept.
                    let first_at = entries[..i]
                        .iter()
                        .find(|e| rule(e.get_ref()).is_ok_and(|v| v == value))
                        .map_or(entry.span().start, |e| e.span().start);
                    let note = format!("first listed at {}", source.position(first_at));
                    out.push(
                        Diagnostic::error(format!("`{first}` is listed twice in `{key}`"))
                            .at(source, entry.span())
                            .note(note)
                            .hint("remove one of the two"),
                    );
                }
                None => {
                    seen.insert(value);
                }
            },
            Err(problem) => {
                ok = false;
                report(out, entry.span(), problem);
            }
        }
    }
    ok.then_some(seen)
}
