//! The value rules of a manifest, as AWS accepts them: cluster names, regions,
//! account ids, IAM role ARNs, CIDR blocks and security-group ids, and AWS's
//! limit on public CIDR blocks.
//!
//! Pure functions from a string to a checked value or a [`Problem`] (message
//! and hint). They know nothing of files, keys or spans: the cluster rules
//! (`cluster`) place each problem in the source. They must not accept
//! anything AWS would reject.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::desired::AccessSource;

/// Why a value is wrong, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub(super) fn new(message: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            hint: None,
        }
    }

    pub(super) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// A value quoted for a message: in backticks, control characters escaped
/// (so a stray newline cannot break the rendered diagnostic), and cut short
/// when long (a 10 kB string in a message helps nobody).
pub fn lit(value: &str) -> String {
    const MAX: usize = 80;
    if value.is_empty() {
        return "`\"\"`".to_string();
    }
    let escaped: String = value
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if escaped.chars().count() > MAX {
        let cut: String = escaped.chars().take(MAX).collect();
        format!("`{cut}…`")
    } else {
        format!("`{escaped}`")
    }
}

const NAME_RULE: &str = "EKS cluster names are 1 to 100 characters: letters, digits, `-` and `_`, starting with a letter or a digit";

/// EKS: `^[0-9A-Za-z][A-Za-z0-9\-_]*`, 1 to 100 characters.
pub fn check_name(name: &str) -> Result<(), Problem> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(Problem::new("cluster name is empty").hint(NAME_RULE));
    };
    let len = name.chars().count();
    if len > 100 {
        return Err(Problem::new(format!(
            "cluster name is {len} characters long, EKS allows at most 100"
        )));
    }
    if !first.is_ascii_alphanumeric() {
        return Err(Problem::new(format!(
            "cluster name {} must start with a letter or a digit",
            lit(name)
        ))
        .hint(NAME_RULE));
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        return Err(Problem::new(format!(
            "cluster name {} contains {}, which EKS does not allow",
            lit(name),
            describe_char(bad)
        ))
        .hint(NAME_RULE));
    }
    Ok(())
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        '`' => "a backtick".to_string(),
        c if c.is_control() => format!("the control character `{}`", c.escape_default()),
        c => format!("`{c}`"),
    }
}

const REGION_SHAPE: &str = "regions look like `us-east-1`, `eu-central-2` or `us-gov-west-1`";

/// The shape of an AWS region name: a 2-4 letter prefix, one or more
/// lowercase words, and a number (`us-east-1`, `us-gov-west-1`,
/// `us-isob-east-1`, `eusc-de-east-1`). Not a list of regions on purpose:
/// new regions must not need a new eksgate.
pub fn check_region(region: &str) -> Result<(), Problem> {
    if region_shape(region) {
        return Ok(());
    }
    let lower = region.to_ascii_lowercase();
    if lower != region && region_shape(&lower) {
        return Err(
            Problem::new(format!("{} is not an AWS region", lit(region)))
                .hint(format!("regions are lowercase: `{lower}`")),
        );
    }
    if let Some(stripped) = region.strip_suffix(|c: char| c.is_ascii_lowercase()) {
        if region_shape(stripped) {
            return Err(Problem::new(format!(
                "{} is an availability zone, not a region",
                lit(region)
            ))
            .hint(format!("use its region: `{stripped}`")));
        }
    }
    Err(Problem::new(format!("{} is not an AWS region", lit(region))).hint(REGION_SHAPE))
}

fn region_shape(s: &str) -> bool {
    // Checked for every cluster: no allocation.
    if !(3..=5).contains(&s.split('-').count()) {
        return false;
    }
    let letters = |p: &str, min: usize, max: usize| {
        (min..=max).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase())
    };
    let mut parts = s.split('-');
    let (Some(first), Some(last)) = (parts.next(), parts.next_back()) else {
        return false;
    };
    letters(first, 2, 4)
        && parts.all(|p| letters(p, 1, 16))
        && (1..=2).contains(&last.len())
        && last.bytes().all(|b| b.is_ascii_digit())
}

/// The partition a region belongs to, from its prefix.
pub fn partition_of_region(region: &str) -> &'static str {
    const PREFIXES: &[(&str, &str)] = &[
        ("cn-", "aws-cn"),
        ("us-gov-", "aws-us-gov"),
        ("us-isob-", "aws-iso-b"),
        ("us-isof-", "aws-iso-f"),
        ("eu-isoe-", "aws-iso-e"),
        ("us-iso-", "aws-iso"),
        ("eusc-", "aws-eusc"),
    ];
    PREFIXES
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map_or("aws", |(_, partition)| partition)
}

pub(super) const PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

pub(super) fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// An AWS account id: exactly 12 digits, leading zeros kept.
pub fn check_account(account: &str) -> Result<(), Problem> {
    if is_account(account) {
        return Ok(());
    }
    let digits: String = account.chars().filter(char::is_ascii_digit).collect();
    let separated = account
        .chars()
        .all(|c| c.is_ascii_digit() || c == '-' || c == ' ');
    let problem = Problem::new(format!("account {} is not 12 digits", lit(account)));
    if digits.len() == 12 && separated {
        return Err(problem.hint(format!("write it without separators: `{digits}`")));
    }
    Err(problem
        .hint("AWS account ids are exactly 12 digits, leading zeros included, like `111122223333`"))
}

/// The parts of a role ARN that other rules need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleArn {
    pub partition: String,
    pub account: String,
}

const ARN_SHAPE: &str = "role ARNs look like `arn:aws:iam::111122223333:role/eksgate`";
const ROLE_NAME_RULE: &str =
    "role names are 1 to 64 characters: letters, digits and `+=,.@_-`; paths are `/`-separated words of the same";

/// `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`.
pub fn parse_role_arn(arn: &str) -> Result<RoleArn, Problem> {
    let not_arn = || Problem::new(format!("{} is not an IAM role ARN", lit(arn))).hint(ARN_SHAPE);
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [scheme, partition, service, region, account, resource] = parts[..] else {
        return Err(not_arn());
    };
    if scheme != "arn" {
        return Err(not_arn());
    }
    if !PARTITIONS.contains(&partition) {
        return Err(Problem::new(format!(
            "unknown partition {} in role ARN {}",
            lit(partition),
            lit(arn)
        ))
        .hint(format!(
            "partitions are {}",
            PARTITIONS
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if service == "sts" && resource.starts_with("assumed-role/") {
        return Err(Problem::new(format!(
            "{} is an assumed-role session, not a role",
            lit(arn)
        ))
        .hint(format!(
            "use the role's own ARN: `arn:{partition}:iam::{account}:role/NAME`"
        )));
    }
    if service != "iam" {
        return Err(not_arn());
    }
    if !region.is_empty() {
        return Err(Problem::new(format!(
            "role ARN {} names a region, IAM ARNs have none",
            lit(arn)
        ))
        .hint(format!(
            "remove it: `arn:{partition}:iam::{account}:{resource}`"
        )));
    }
    if !is_account(account) {
        return Err(Problem::new(format!(
            "the account {} in role ARN {} is not 12 digits",
            lit(account),
            lit(arn)
        ))
        .hint(ARN_SHAPE));
    }
    let Some(path_and_name) = resource.strip_prefix("role/") else {
        return Err(Problem::new(format!(
            "{} is not a role ARN (its resource is {})",
            lit(arn),
            lit(resource)
        ))
        .hint(ARN_SHAPE));
    };
    let word_ok = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    };
    let mut words: Vec<&str> = path_and_name.split('/').collect();
    // `split` always yields at least one item, so `pop` cannot fail here.
    let name = words.pop().unwrap_or_default();
    if !word_ok(name) || name.len() > 64 || !words.iter().all(|w| word_ok(w)) {
        return Err(Problem::new(format!(
            "role ARN {} has an invalid role name or path",
            lit(arn)
        ))
        .hint(ROLE_NAME_RULE));
    }
    Ok(RoleArn {
        partition: partition.to_string(),
        account: account.to_string(),
    })
}

/// AWS's limit on `publicAccessCidrs` per cluster (not adjustable).
pub const MAX_PUBLIC_ACCESS_CIDRS: usize = 40;

const CIDR_SHAPE: &str = "CIDR blocks look like `203.0.113.0/24` or `2001:db8::/32`";

/// An IPv4 or IPv6 network with its host bits clear.
pub fn parse_cidr(s: &str) -> Result<IpNet, Problem> {
    match s.parse::<IpNet>() {
        Ok(net) => {
            let network = net.trunc();
            if network == net {
                Ok(net)
            } else {
                let one = match net.addr() {
                    IpAddr::V4(a) => format!("{a}/32"),
                    IpAddr::V6(a) => format!("{a}/128"),
                };
                Err(
                    Problem::new(format!("{} has host bits set", lit(s))).hint(format!(
                        "the network is `{network}`; for the one address write `{one}`"
                    )),
                )
            }
        }
        Err(_) => match s.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => Err(Problem::new(format!("{} has no prefix length", lit(s)))
                .hint(format!("for this one address write `{a}/32`"))),
            Ok(IpAddr::V6(a)) => Err(Problem::new(format!("{} has no prefix length", lit(s)))
                .hint(format!("for this one address write `{a}/128`"))),
            Err(_) => Err(Problem::new(format!("{} is not a CIDR block", lit(s))).hint(CIDR_SHAPE)),
        },
    }
}

/// What managed prefix list ids look like: `pl-` and 8 or 17 hex digits.
pub const PREFIX_LIST_SHAPE: &str =
    "prefix-list ids are `pl-` and 8 or 17 hex digits, like `pl-0a1b2c3d4e5f67890`";

/// Whether `s` is a managed prefix list id (`pl-` and 8 or 17 lowercase hex
/// digits, as EC2 writes them).
pub fn is_prefix_list(s: &str) -> bool {
    s.strip_prefix("pl-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The problem with a string that starts like a prefix list id but is not
/// one, if it does.
pub fn bad_prefix_list(s: &str) -> Option<Problem> {
    if !s.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("pl-")) || is_prefix_list(s) {
        return None;
    }
    let problem = Problem::new(format!("{} is not a prefix-list id", lit(s)));
    let lower = s.to_ascii_lowercase();
    Some(if is_prefix_list(&lower) {
        problem.hint(format!("prefix-list ids are lowercase: `{lower}`"))
    } else {
        problem.hint(PREFIX_LIST_SHAPE)
    })
}

const SG_SHAPE: &str =
    "security-group ids are `sg-` and 8 or 17 hex digits, like `sg-0a1b2c3d4e5f67890`";

fn is_security_group(s: &str) -> bool {
    s.strip_prefix("sg-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A security-group id, a managed prefix list id or a CIDR block, for
/// `private_access_from`.
pub fn parse_access_source(s: &str) -> Result<AccessSource, Problem> {
    if is_security_group(s) {
        return Ok(AccessSource::SecurityGroup(s.to_string()));
    }
    if is_prefix_list(s) {
        return Ok(AccessSource::PrefixList(s.to_string()));
    }
    if let Some(problem) = bad_prefix_list(s) {
        return Err(problem);
    }
    if s.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("sg-")) {
        let problem = Problem::new(format!("{} is not a security-group id", lit(s)));
        let lower = s.to_ascii_lowercase();
        if is_security_group(&lower) {
            return Err(problem.hint(format!("security-group ids are lowercase: `{lower}`")));
        }
        return Err(problem.hint(SG_SHAPE));
    }
    let looks_like_address =
        s.contains('/') || s.contains(':') || s.starts_with(|c: char| c.is_ascii_digit());
    if looks_like_address {
        return parse_cidr(s).map(AccessSource::Cidr);
    }
    Err(Problem::new(format!(
        "{} is neither a security-group id nor a CIDR block",
        lit(s)
    ))
    .hint("write a security-group id like `sg-0a1b2c3d4e5f67890` or a CIDR block like `10.20.0.0/16`; security-group names are not accepted"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(input, Ok(()) or Err((message, hint)))`, for every string rule.
    type Case<'a> = (&'a str, Result<(), (&'a str, Option<&'a str>)>);

    fn run(rule: fn(&str) -> Result<(), Problem>, cases: &[Case<'_>]) {
        for (input, want) in cases {
            let got = rule(input).map_err(|p| (p.message, p.hint));
            let want = (*want).map_err(|(m, h)| (m.to_string(), h.map(str::to_string)));
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn cluster_names() {
        let (a100, a101) = ("a".repeat(100), "a".repeat(101));
        run(
            check_name,
            &[
                ("payments-prod", Ok(())),
                ("a", Ok(())),
                ("0_x-Y", Ok(())),
                (&a100, Ok(())),
                ("", Err(("cluster name is empty", Some(NAME_RULE)))),
                (
                    &a101,
                    Err(("cluster name is 101 characters long, EKS allows at most 100", None)),
                ),
                (
                    "-x",
                    Err(("cluster name `-x` must start with a letter or a digit", Some(NAME_RULE))),
                ),
                (
                    "payments.prod",
                    Err((
                        "cluster name `payments.prod` contains `.`, which EKS does not allow",
                        Some(NAME_RULE),
                    )),
                ),
                (
                    "a b",
                    Err(("cluster name `a b` contains a space, which EKS does not allow", Some(NAME_RULE))),
                ),
                (
                    "a\nb",
                    Err((
                        "cluster name `a\\nb` contains the control character `\\n`, which EKS does not allow",
                        Some(NAME_RULE),
                    )),
                ),
            ],
        );
    }

    #[test]
    fn regions() {
        let ok = [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "cn-north-1",
            "ap-southeast-4",
            "us-isob-east-1",
            "eusc-de-east-1",
            "mx-central-1",
        ];
        for r in ok {
            assert_eq!(check_region(r), Ok(()), "{r}");
        }
        run(
            check_region,
            &[
                (
                    "eu-west",
                    Err(("`eu-west` is not an AWS region", Some(REGION_SHAPE))),
                ),
                (
                    "euwest1",
                    Err(("`euwest1` is not an AWS region", Some(REGION_SHAPE))),
                ),
                ("", Err(("`\"\"` is not an AWS region", Some(REGION_SHAPE)))),
                (
                    "eu-west-123",
                    Err(("`eu-west-123` is not an AWS region", Some(REGION_SHAPE))),
                ),
                (
                    "EU-WEST-1",
                    Err((
                        "`EU-WEST-1` is not an AWS region",
                        Some("regions are lowercase: `eu-west-1`"),
                    )),
                ),
                (
                    "eu-west-1a",
                    Err((
                        "`eu-west-1a` is an availability zone, not a region",
                        Some("use its region: `eu-west-1`"),
                    )),
                ),
            ],
        );
    }

    #[test]
    fn partitions_follow_the_region_prefix() {
        for (region, partition) in [
            ("eu-west-1", "aws"),
            ("cn-north-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
            ("us-iso-east-1", "aws-iso"),
            ("us-isob-east-1", "aws-iso-b"),
            ("eusc-de-east-1", "aws-eusc"),
        ] {
            assert_eq!(partition_of_region(region), partition, "{region}");
        }
    }

    #[test]
    fn accounts() {
        const RULE: &str =
            "AWS account ids are exactly 12 digits, leading zeros included, like `111122223333`";
        run(
            check_account,
            &[
                ("111122223333", Ok(())),
                ("012345678901", Ok(())),
                (
                    "12345678901",
                    Err(("account `12345678901` is not 12 digits", Some(RULE))),
                ),
                (
                    "1111222233334",
                    Err(("account `1111222233334` is not 12 digits", Some(RULE))),
                ),
                (
                    "11112222333a",
                    Err(("account `11112222333a` is not 12 digits", Some(RULE))),
                ),
                (
                    "1111-2222-3333",
                    Err((
                        "account `1111-2222-3333` is not 12 digits",
                        Some("write it without separators: `111122223333`"),
                    )),
                ),
                (
                    "١١١١٢٢٢٢٣٣٣٣",
                    Err(("account `١١١١٢٢٢٢٣٣٣٣` is not 12 digits", Some(RULE))),
                ),
            ],
        );
    }

    #[test]
    fn role_arns() {
        let ok = |arn: &str, partition: &str, account: &str| {
            assert_eq!(
                parse_role_arn(arn),
                Ok(RoleArn {
                    partition: partition.into(),
                    account: account.into()
                }),
                "{arn}"
            );
        };
        ok(
            "arn:aws:iam::111122223333:role/eksgate",
            "aws",
            "111122223333",
        );
        ok(
            "arn:aws:iam::111122223333:role/ops/ci/eksgate",
            "aws",
            "111122223333",
        );
        ok(
            "arn:aws-cn:iam::111122223333:role/a+b=c,d.e@f_g-h",
            "aws-cn",
            "111122223333",
        );
        ok(
            "arn:aws-us-gov:iam::000000000001:role/x",
            "aws-us-gov",
            "000000000001",
        );
        let err = |arn: &str| {
            parse_role_arn(arn)
                .map_err(|p| (p.message, p.hint))
                .unwrap_err()
        };
        let shape = Some(ARN_SHAPE.to_string());
        assert_eq!(
            err("eksgate"),
            ("`eksgate` is not an IAM role ARN".into(), shape.clone())
        );
        assert_eq!(
            err("arn:aws:s3:::bucket/x"),
            (
                "`arn:aws:s3:::bucket/x` is not an IAM role ARN".into(),
                shape.clone()
            )
        );
        assert_eq!(
            err("arn:aws:iam::111122223333:user/bob"),
            (
                "`arn:aws:iam::111122223333:user/bob` is not a role ARN (its resource is `user/bob`)".into(),
                shape.clone()
            )
        );
        assert_eq!(
            err("arn:aws:iam::1111:role/x").0,
            "the account `1111` in role ARN `arn:aws:iam::1111:role/x` is not 12 digits"
        );
        assert_eq!(
            err("arn:aws:iam:eu-west-1:111122223333:role/x"),
            (
                "role ARN `arn:aws:iam:eu-west-1:111122223333:role/x` names a region, IAM ARNs have none".into(),
                Some("remove it: `arn:aws:iam::111122223333:role/x`".into())
            )
        );
        assert_eq!(
            err("arn:amazon:iam::111122223333:role/x").0,
            "unknown partition `amazon` in role ARN `arn:amazon:iam::111122223333:role/x`"
        );
        assert_eq!(
            err("arn:aws:sts::111122223333:assumed-role/eksgate/session"),
            (
                "`arn:aws:sts::111122223333:assumed-role/eksgate/session` is an assumed-role session, not a role".into(),
                Some("use the role's own ARN: `arn:aws:iam::111122223333:role/NAME`".into())
            )
        );
        for bad in [
            "arn:aws:iam::111122223333:role/",
            "arn:aws:iam::111122223333:role/a b",
            "arn:aws:iam::111122223333:role//x",
            &format!("arn:aws:iam::111122223333:role/{}", "n".repeat(65)),
        ] {
            assert_eq!(err(bad).1.as_deref(), Some(ROLE_NAME_RULE), "{bad}");
        }
    }

    #[test]
    fn cidrs() {
        let ok = |s: &str, want: &str| {
            assert_eq!(parse_cidr(s).map(|n| n.to_string()), Ok(want.to_string()))
        };
        ok("10.0.0.0/8", "10.0.0.0/8");
        ok("0.0.0.0/0", "0.0.0.0/0");
        ok("203.0.113.7/32", "203.0.113.7/32");
        ok("2001:DB8::/32", "2001:db8::/32");
        run(
            |s| parse_cidr(s).map(drop),
            &[
                (
                    "10.0.0.1/8",
                    Err((
                        "`10.0.0.1/8` has host bits set",
                        Some("the network is `10.0.0.0/8`; for the one address write `10.0.0.1/32`"),
                    )),
                ),
                (
                    "2001:db8::1/32",
                    Err((
                        "`2001:db8::1/32` has host bits set",
                        Some("the network is `2001:db8::/32`; for the one address write `2001:db8::1/128`"),
                    )),
                ),
                (
                    "203.0.113.7",
                    Err(("`203.0.113.7` has no prefix length", Some("for this one address write `203.0.113.7/32`"))),
                ),
                ("10.0.0.0/33", Err(("`10.0.0.0/33` is not a CIDR block", Some(CIDR_SHAPE)))),
                ("10.0.0/8", Err(("`10.0.0/8` is not a CIDR block", Some(CIDR_SHAPE)))),
                ("", Err(("`\"\"` is not a CIDR block", Some(CIDR_SHAPE)))),
            ],
        );
    }

    #[test]
    fn access_sources() {
        assert_eq!(
            parse_access_source("sg-0a1b2c3d4e5f67890"),
            Ok(AccessSource::SecurityGroup("sg-0a1b2c3d4e5f67890".into()))
        );
        assert_eq!(
            parse_access_source("sg-0a1b2c3d"),
            Ok(AccessSource::SecurityGroup("sg-0a1b2c3d".into()))
        );
        assert_eq!(
            parse_access_source("10.20.0.0/16"),
            Ok(AccessSource::Cidr("10.20.0.0/16".parse().unwrap()))
        );
        run(
            |s| parse_access_source(s).map(drop),
            &[
                ("sg-123", Err(("`sg-123` is not a security-group id", Some(SG_SHAPE)))),
                ("sg-0a1b2c3d4e5f6789", Err(("`sg-0a1b2c3d4e5f6789` is not a security-group id", Some(SG_SHAPE)))),
                ("sg-0a1b2c3g", Err(("`sg-0a1b2c3g` is not a security-group id", Some(SG_SHAPE)))),
                (
                    "SG-0A1B2C3D",
                    Err(("`SG-0A1B2C3D` is not a security-group id", Some("security-group ids are lowercase: `sg-0a1b2c3d`"))),
                ),
                (
                    "10.20.0.1/16",
                    Err((
                        "`10.20.0.1/16` has host bits set",
                        Some("the network is `10.20.0.0/16`; for the one address write `10.20.0.1/32`"),
                    )),
                ),
                (
                    "bastion",
                    Err((
                        "`bastion` is neither a security-group id nor a CIDR block",
                        Some("write a security-group id like `sg-0a1b2c3d4e5f67890` or a CIDR block like `10.20.0.0/16`; security-group names are not accepted"),
                    )),
                ),
            ],
        );
    }

    #[test]
    fn literals_are_escaped_and_cut_short() {
        assert_eq!(lit("a\tb"), "`a\\tb`");
        assert_eq!(lit(&"x".repeat(200)), format!("`{}…`", "x".repeat(80)));
    }
}
