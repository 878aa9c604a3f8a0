//! The endpoint settings eksgate manages on a cluster: public access on or
//! off, private access on or off, and the CIDR blocks allowed on the public
//! endpoint. One type serves the manifests' wish ([`crate::desired`]), what
//! AWS reports ([`crate::live`]), and the before and after of each planned
//! `UpdateClusterConfig` ([`crate::plan`]), so the triple has one shape from
//! the manifest to the SDK call.
//!
//! CIDRs stay [`IpNet`]s all the way; they become strings only at the
//! provider boundary and in views. A block AWS returns that does not parse is
//! kept as AWS wrote it ([`PublicCidr::Unparsed`]): eksgate never drops what
//! AWS holds, so the diff shows it and a plan that manages the list replaces
//! it. This module does no I/O and writes no sentences.

use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::set::SortedSet;

/// One block of `publicAccessCidrs`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PublicCidr {
    Net(IpNet),
    /// A block AWS returned that is not a CIDR this version can read; kept
    /// verbatim.
    Unparsed(String),
}

impl PublicCidr {
    /// Reads one block as AWS or a saved plan writes it; what does not parse
    /// is kept as it is.
    pub fn parse(text: &str) -> PublicCidr {
        match text.parse::<IpNet>() {
            Ok(net) => PublicCidr::Net(net),
            Err(_) => PublicCidr::Unparsed(text.to_string()),
        }
    }

    /// The block with host bits cleared, as EKS compares lists.
    pub fn normalised(&self) -> PublicCidr {
        match self {
            PublicCidr::Net(net) => PublicCidr::Net(net.trunc()),
            other => other.clone(),
        }
    }

    pub fn net(&self) -> Option<&IpNet> {
        match self {
            PublicCidr::Net(net) => Some(net),
            PublicCidr::Unparsed(_) => None,
        }
    }
}

impl From<IpNet> for PublicCidr {
    fn from(net: IpNet) -> Self {
        PublicCidr::Net(net)
    }
}

impl fmt::Display for PublicCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublicCidr::Net(net) => write!(f, "{net}"),
            PublicCidr::Unparsed(text) => f.write_str(text),
        }
    }
}

impl Serialize for PublicCidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicCidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(PublicCidr::parse(&text))
    }
}

/// A normalised, ordered list of public CIDR blocks.
pub type PublicCidrs = SortedSet<PublicCidr>;

/// Reads a list as AWS returns it: host bits cleared, duplicates folded,
/// nothing dropped.
pub fn public_cidrs<S: AsRef<str>>(items: &[S]) -> PublicCidrs {
    items
        .iter()
        .map(|s| PublicCidr::parse(s.as_ref()).normalised())
        .collect()
}

/// The endpoint settings of one cluster, or of one `UpdateClusterConfig`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EndpointSettings {
    pub public_access: bool,
    pub private_access: bool,
    /// Desired: `None` when the manifest does not manage the list. Live: the
    /// list AWS holds. In a step: present only when the call sends CIDRs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_access_cidrs: Option<PublicCidrs>,
}

impl EndpointSettings {
    pub fn new(public_access: bool, private_access: bool) -> Self {
        EndpointSettings {
            public_access,
            private_access,
            public_access_cidrs: None,
        }
    }

    pub fn with_cidrs(mut self, cidrs: Option<PublicCidrs>) -> Self {
        self.public_access_cidrs = cidrs;
        self
    }

    /// The two flags, to compare modes without the CIDRs.
    pub fn mode(&self) -> (bool, bool) {
        (self.public_access, self.private_access)
    }

    /// EKS rejects a cluster with both endpoints off; nothing in eksgate may
    /// ask for one.
    pub fn both_off(&self) -> bool {
        !self.public_access && !self.private_access
    }

    /// Whether `live` already is what these settings ask: CIDRs count only
    /// when they are set here and public access is wanted (EKS keeps the old
    /// list while public access is off). Lists compare as normalised sets.
    pub fn satisfied_by(&self, live: &EndpointSettings) -> bool {
        let cidrs_match = match &self.public_access_cidrs {
            Some(want) if self.public_access => {
                let norm = |set: &PublicCidrs| -> PublicCidrs {
                    set.iter().map(PublicCidr::normalised).collect()
                };
                live.public_access_cidrs.as_ref().map(norm) == Some(norm(want))
            }
            _ => true,
        };
        self.mode() == live.mode() && cidrs_match
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unparsed_blocks_are_kept_verbatim_and_round_trip() {
        let list = public_cidrs(&["10.0.0.1/8", "bogus/99", "10.0.0.0/8"]);
        let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "bogus/99"]);
        let json = serde_json::to_string(&list).unwrap();
        assert_eq!(json, r#"["10.0.0.0/8","bogus/99"]"#);
        let back: PublicCidrs = serde_json::from_str(&json).unwrap();
        assert_eq!(back, list);
    }

    #[test]
    fn satisfied_by_compares_cidrs_only_when_public_access_is_wanted() {
        let live = EndpointSettings::new(true, true)
            .with_cidrs(Some(public_cidrs(&["203.0.113.7/24", "bogus"])));
        let cases = [
            (EndpointSettings::new(true, true), true),
            (EndpointSettings::new(true, false), false),
            (
                EndpointSettings::new(true, true)
                    .with_cidrs(Some(public_cidrs(&["203.0.113.0/24", "bogus"]))),
                true,
            ),
            (
                EndpointSettings::new(true, true)
                    .with_cidrs(Some(public_cidrs(&["203.0.113.0/24"]))),
                false,
            ),
            (
                EndpointSettings::new(false, true)
                    .with_cidrs(Some(public_cidrs(&["198.51.100.0/24"]))),
                false,
            ),
        ];
        for (want, expected) in cases {
            assert_eq!(want.satisfied_by(&live), expected, "{want:?}");
        }
    }
}
