//! The manifest's own network check: a block of `public_access_cidrs` in a
//! range that internet traffic never comes from (private RFC 1918 and
//! RFC 4193 ranges, the shared range of RFC 6598, link-local, loopback)
//! matches nothing at the public endpoint; its author almost always meant
//! `private_access_from`. A warning, not an error: the list is still valid
//! to AWS, and `validate` stays offline (the checks that need AWS's answers,
//! such as IPv6 blocks on an IPv4 cluster, are the planner's).

use ipnet::IpNet;
use toml::Spanned;

use crate::diagnostic::{Collector, Diagnostic};

/// Ranges no internet client has, with what they are.
const UNROUTED: &[(&str, &str)] = &[
    ("10.0.0.0/8", "a private range (RFC 1918)"),
    ("172.16.0.0/12", "a private range (RFC 1918)"),
    ("192.168.0.0/16", "a private range (RFC 1918)"),
    (
        "100.64.0.0/10",
        "the shared address space of carrier-grade NAT (RFC 6598)",
    ),
    ("169.254.0.0/16", "a link-local range"),
    ("127.0.0.0/8", "a loopback range"),
    ("fc00::/7", "a unique local range (RFC 4193)"),
    ("fe80::/10", "a link-local range"),
    ("::1/128", "the loopback address"),
];

/// What range `net` lies in that never reaches a public endpoint, if any.
pub fn unrouted(net: &IpNet) -> Option<&'static str> {
    UNROUTED.iter().find_map(|(range, what)| {
        let range: IpNet = range.parse().ok()?;
        range.contains(net).then_some(*what)
    })
}

/// Warns of each block of `public_access_cidrs` in such a range.
pub(super) fn warn_unrouted(out: &mut Collector<'_>, list: &Spanned<Vec<Spanned<String>>>) {
    let source = out.source();
    for entry in list.get_ref() {
        // A block with host bits set is an error already.
        let Ok(net) = super::rules::parse_cidr(entry.get_ref()) else {
            continue;
        };
        if let Some(what) = unrouted(&net) {
            out.push(
                Diagnostic::warning(format!(
                    "`{net}` in `public_access_cidrs` is {what}: no traffic from the internet comes from it"
                ))
                .at(source, entry.span())
                .hint("the public endpoint sees public addresses only; to let clients inside the VPC or a connected network in, turn on `private_access` and list them in `private_access_from`"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_that_never_reach_a_public_endpoint() {
        let cases: &[(&str, bool)] = &[
            ("10.20.0.0/16", true),
            ("172.31.255.0/24", true),
            ("172.32.0.0/16", false),
            ("192.168.1.7/32", true),
            ("100.64.0.0/10", true),
            ("100.128.0.0/16", false),
            ("169.254.169.254/32", true),
            ("127.0.0.1/32", true),
            ("203.0.113.0/24", false),
            ("0.0.0.0/0", false),
            ("10.0.0.0/7", false),
            ("fd00:1::/64", true),
            ("fe80::/64", true),
            ("::1/128", true),
            ("2001:db8::/32", false),
            ("::/0", false),
        ];
        for (net, want) in cases {
            let n: IpNet = net.parse().unwrap();
            assert_eq!(unrouted(&n).is_some(), *want, "{net}");
        }
    }
}
