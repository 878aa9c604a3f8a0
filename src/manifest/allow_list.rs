//! Manifest rules for owning the allow-list: `public_access_cidrs` entries,
//! CIDR blocks or managed prefix list ids (`pl-…`, whose shape is checked in
//! `rules` beside the other ids'). A prefix list in `public_access_cidrs` is
//! expanded into its CIDRs by the planner, once its entries are read; here
//! it is only checked for its shape.
//!
//! Pure string rules; this module does not read files or AWS.

use ipnet::IpNet;

use super::rules::{self, bad_prefix_list, is_prefix_list, Problem};

/// One entry of `public_access_cidrs`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PublicEntry {
    Cidr(IpNet),
    PrefixList(String),
}

impl std::fmt::Display for PublicEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublicEntry::Cidr(n) => write!(f, "{n}"),
            PublicEntry::PrefixList(id) => f.write_str(id),
        }
    }
}

/// A CIDR block or a managed prefix list id, for `public_access_cidrs`.
pub fn parse_public_entry(s: &str) -> Result<PublicEntry, Problem> {
    if is_prefix_list(s) {
        return Ok(PublicEntry::PrefixList(s.to_string()));
    }
    if let Some(problem) = bad_prefix_list(s) {
        return Err(problem);
    }
    rules::parse_cidr(s).map(PublicEntry::Cidr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_list_ids_are_accepted_where_sources_and_cidrs_are() {
        assert_eq!(
            parse_public_entry("pl-0a1b2c3d"),
            Ok(PublicEntry::PrefixList("pl-0a1b2c3d".into()))
        );
        assert_eq!(
            parse_public_entry("10.0.0.0/8"),
            Ok(PublicEntry::Cidr("10.0.0.0/8".parse().unwrap()))
        );
        let err = parse_public_entry("PL-0A1B2C3D").unwrap_err();
        assert_eq!(err.message, "`PL-0A1B2C3D` is not a prefix-list id");
        assert_eq!(
            err.hint.as_deref(),
            Some("prefix-list ids are lowercase: `pl-0a1b2c3d`")
        );
        let err = parse_public_entry("pl-nothex").unwrap_err();
        assert_eq!(err.hint.as_deref(), Some(rules::PREFIX_LIST_SHAPE));
        assert_eq!(
            rules::parse_access_source("pl-0a1b2c3d4e5f67890"),
            Ok(crate::desired::AccessSource::PrefixList(
                "pl-0a1b2c3d4e5f67890".into()
            ))
        );
    }
}
