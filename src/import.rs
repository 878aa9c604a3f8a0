//! `eksgate import`: a manifest written from the live state of one region, so
//! clusters that already exist can be put under eksgate without typing them
//! out. [`read`] asks the [`Provider`] (ListClusters, then the same `read` a
//! plan uses); [`render`] is a pure function from what was read to the TOML
//! text.
//!
//! The contract is that the text, validated and planned as it is, shows no
//! changes: every value written is the live one, normalised as the planner
//! compares it. Where a plan would still show something (a VPC without DNS
//! hostnames, a cluster that is not `ACTIVE`), a comment says so. This module
//! must not print or write files (the command does), and writes no date, so
//! two imports of an unchanged region are byte for byte the same and a `diff`
//! between them is a drift check.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use crate::desired::{AccessSource, ClusterKey};
use crate::error::{Error, Result};
use crate::live::{ClusterObservation, ClusterStatus, Live, LiveCluster, LiveVpc};
use crate::provider::{ClusterTarget, Provider, ReadRequest, Scope};
use crate::set::SortedSet;
use crate::workflow::provider_error;

/// Where the committed schema lives, relative to a repository root.
pub const SCHEMA_PATH: &str = "schemas/manifest.schema.json";

/// Lines longer than this put one array item per line.
const WIDTH: usize = 100;

/// One cluster as it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedCluster {
    pub live: LiveCluster,
    /// The sources the cluster security group allows on TCP 443; read only
    /// when private access is on and the cluster has such a group.
    pub https_ingress: Option<SortedSet<AccessSource>>,
    /// Those of them whose TCP 443 rule carries eksgate's description.
    pub managed: SortedSet<AccessSource>,
    /// The cluster's VPC; read only when private access is on.
    pub vpc: Option<LiveVpc>,
    /// Principals whose access entries carry a cluster-wide access policy:
    /// candidates for `private_access_principals`, written as a comment.
    pub principals: Vec<String>,
}

/// Everything one import read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    pub region: String,
    /// True when the clusters were named with `--cluster`, false when they
    /// are every cluster `ListClusters` gave.
    pub named: bool,
    /// Sorted by name.
    pub clusters: Vec<ImportedCluster>,
    /// Listed by `ListClusters` but gone when described (deleted meanwhile).
    pub vanished: Vec<String>,
}

/// Reads the clusters to import: `names`, or every cluster of the region
/// when `names` is empty. A named cluster that does not exist is an error
/// (all of them are named in it).
pub async fn read<P: Provider>(
    provider: &P,
    region: &str,
    names: &[String],
    parallelism: usize,
) -> Result<Import> {
    let scope = Scope {
        account: None,
        region: region.to_string(),
        role_arn: None,
    };
    let named = !names.is_empty();
    let names: BTreeSet<String> = if named {
        names.iter().cloned().collect()
    } else {
        provider
            .list_clusters(&scope)
            .await
            .map_err(provider_error)?
            .into_iter()
            .collect()
    };

    // First the endpoints: without the private-access facts, `read` does one
    // DescribeCluster per cluster and nothing else.
    let wanted = request(region, names.iter(), false);
    let mut live = provider
        .read(wanted, parallelism)
        .await
        .map_err(provider_error)?;

    // Then the VPC and the cluster security group of those with private
    // access on. The endpoint is read again with them, which keeps each
    // cluster's facts from one snapshot.
    let private = request(
        region,
        names
            .iter()
            .filter(|n| matches!(found(&live, region, n), Some(c) if c.endpoint.private_access)),
        true,
    );
    let detail = if private.clusters.is_empty() {
        Live::default()
    } else {
        provider
            .read(private, parallelism)
            .await
            .map_err(provider_error)?
    };
    live.clusters.extend(detail.clusters.clone());

    let mut import = Import {
        region: region.to_string(),
        named,
        clusters: Vec::new(),
        vanished: Vec::new(),
    };
    let mut missing = Vec::new();
    for name in &names {
        let Some(c) = found(&live, region, name) else {
            if named {
                missing.push(format!("`{name}`"));
            } else {
                import.vanished.push(name.clone());
            }
            continue;
        };
        let managed = c
            .security_group_id
            .as_ref()
            .and_then(|id| {
                detail
                    .security_groups
                    .iter()
                    .find(|(k, _)| &k.group_id == id)
                    .map(|(_, g)| g.managed_https.clone())
            })
            .filter(|_| c.endpoint.private_access)
            .unwrap_or_default();
        let (vpc, https_ingress) = if c.endpoint.private_access {
            let vpc = detail
                .vpcs
                .iter()
                .find(|(k, _)| k.vpc_id == c.vpc_id)
                .map(|(_, v)| v.clone());
            let sg = c.security_group_id.as_ref().and_then(|id| {
                detail
                    .security_groups
                    .iter()
                    .find(|(k, _)| &k.group_id == id)
                    .map(|(_, g)| g.https_ingress.clone())
            });
            (vpc, sg)
        } else {
            (None, None)
        };
        let principals = cluster_wide_principals(provider, &scope, c).await;
        import.clusters.push(ImportedCluster {
            live: c.clone(),
            https_ingress,
            managed,
            vpc,
            principals,
        });
    }
    if !missing.is_empty() {
        let n = missing.len();
        return Err(Error::user_hint(
            format!(
                "{} {} not found in region `{region}`",
                if n == 1 { "cluster" } else { "clusters" },
                missing.join(", ")
            ),
            format!(
                "check the names and the account the credentials resolve to; without `--cluster`, `eksgate import --region {region}` imports every cluster of the region"
            ),
        ));
    }
    Ok(import)
}

/// The most access entries read per cluster for the import's comment.
const MAX_ENTRIES: usize = 100;

/// Principals whose entries on `c` carry a cluster-wide access policy. Only
/// a comment depends on them, so a cluster in `CONFIG_MAP` mode, or entries
/// the credentials may not read, give none instead of failing the import.
async fn cluster_wide_principals<P: Provider>(
    provider: &P,
    scope: &Scope,
    c: &LiveCluster,
) -> Vec<String> {
    if !c
        .authentication_mode
        .as_ref()
        .is_some_and(|m| m.has_access_entries())
    {
        return Vec::new();
    }
    match provider
        .access_entries(scope, &c.key.name, MAX_ENTRIES)
        .await
    {
        Ok(entries) => entries
            .into_iter()
            .filter(|e| e.policies.iter().any(|p| p.scope == "cluster"))
            .map(|e| e.principal_arn)
            .collect(),
        Err(e) => {
            tracing::debug!("access entries of `{}` not read: {e}", c.key.name);
            Vec::new()
        }
    }
}

/// A read of these clusters of `region` with the base credentials, and of
/// what private access needs when `private`.
fn request<'a>(
    region: &str,
    names: impl Iterator<Item = &'a String>,
    private: bool,
) -> ReadRequest {
    ReadRequest {
        clusters: names
            .map(|name| ClusterTarget {
                key: ClusterKey {
                    account: None,
                    region: region.to_string(),
                    name: name.clone(),
                },
                role_arn: None,
                wants_private: private,
                access_principals: Vec::new(),
                prefix_lists: Vec::new(),
            })
            .collect(),
    }
}

fn found<'a>(live: &'a Live, region: &str, name: &str) -> Option<&'a LiveCluster> {
    let key = ClusterKey {
        account: None,
        region: region.to_string(),
        name: name.to_string(),
    };
    match live.clusters.get(&key) {
        Some(ClusterObservation::Found(c)) => Some(c),
        _ => None,
    }
}

/// The `#:schema` path for a manifest written in `dir`: the committed
/// schema of the first ancestor of `dir` that has one, relative to `dir`.
/// `None` when no ancestor has it (the header then says how to get it).
pub fn schema_reference(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    dir.ancestors().enumerate().find_map(|(depth, d)| {
        d.join(SCHEMA_PATH)
            .is_file()
            .then(|| format!("{}{SCHEMA_PATH}", "../".repeat(depth)))
    })
}

/// The manifest text. `schema` is the `#:schema` path, when there is one.
pub fn render(import: &Import, schema: Option<&str>) -> String {
    let mut out = String::new();
    // Editors read `#:schema` only on the first line.
    if let Some(path) = schema {
        let _ = writeln!(out, "#:schema {path}");
    }
    let n = import.clusters.len();
    let which = if import.named {
        format!("the {} named with `--cluster`", clusters(n))
    } else {
        format!("all {} of the region", clusters(n))
    };
    let _ = writeln!(
        out,
        "# Imported by `eksgate import` from the live state of region `{}`\n# ({which}).",
        import.region
    );
    out.push_str(
        "# As written, `eksgate plan` shows no changes (except where a comment below says\n\
         # otherwise); edit the values to what the clusters should be, then plan again.\n\
         # No `account` is written: add one (or `[defaults]`) to pin the account the\n\
         # credentials must resolve to.\n",
    );
    if schema.is_none() {
        out.push_str(
            "# For completion and checks in editors: `eksgate schema > manifest.schema.json`,\n\
             # then make `#:schema manifest.schema.json` the first line of this file.\n",
        );
    }
    if import.clusters.is_empty() {
        let _ = writeln!(out, "# No clusters were found in `{}`.", import.region);
    }
    for c in &import.clusters {
        out.push('\n');
        cluster(&mut out, c);
    }
    out
}

fn clusters(n: usize) -> String {
    if n == 1 {
        "1 cluster".into()
    } else {
        format!("{n} clusters")
    }
}

fn cluster(out: &mut String, c: &ImportedCluster) {
    let l = &c.live;
    let _ = writeln!(out, "# {} ({})", l.arn, l.status.as_str());
    match &l.status {
        ClusterStatus::Active => {}
        ClusterStatus::Updating => {}
        other => {
            let _ = writeln!(
                out,
                "# `{}`, not `ACTIVE`: `eksgate plan` blocks this cluster until it is `ACTIVE`",
                other.as_str()
            );
        }
    }
    if !l.updates_in_progress.is_empty() {
        let ids: Vec<String> = l
            .updates_in_progress
            .iter()
            .map(|id| format!("`{id}`"))
            .collect();
        let _ = writeln!(
            out,
            "# update {} in progress: `eksgate plan` shows a wait for it until it ends",
            ids.join(", ")
        );
    }
    if let Some(owner) = crate::plan::owner::Owner::of(&l.tags) {
        let _ = writeln!(
            out,
            "# owner: created by {}, which also holds the endpoint settings;\n\
             # hand them over before changing them here, then add `owner_acknowledged = true`",
            owner.describe()
        );
    }
    if l.endpoint.private_access {
        vpc_notes(out, l, c.vpc.as_ref());
    }
    if !c.principals.is_empty() {
        out.push_str(
            "# access entries with a cluster-wide access policy; list those that must keep\n\
             # the Kubernetes API once public access is off in `private_access_principals`:\n",
        );
        for p in &c.principals {
            let _ = writeln!(out, "#   {}", quote(p));
        }
    }

    out.push_str("[[cluster]]\n");
    let _ = writeln!(out, "name = {}", quote(&l.key.name));
    let _ = writeln!(out, "region = {}", quote(&l.key.region));
    let _ = writeln!(out, "public_access = {}", l.endpoint.public_access);
    let _ = writeln!(out, "private_access = {}", l.endpoint.private_access);
    // EKS keeps the old list while public access is off, and a manifest may
    // not set one then: written only when it is in force.
    if l.endpoint.public_access {
        let cidrs: Vec<String> = l
            .endpoint
            .public_access_cidrs
            .iter()
            .flatten()
            .map(|n| n.to_string())
            .collect();
        array(out, "public_access_cidrs", &cidrs);
    }
    if l.endpoint.private_access {
        sources(out, l, c.https_ingress.as_ref());
        if !c.managed.is_empty() {
            let items: Vec<String> = c.managed.iter().map(|s| quote(&s.to_string())).collect();
            let _ = writeln!(
                out,
                "# managed by eksgate (their rules carry its description): {}",
                items.join(", ")
            );
        }
    }
}

/// What a plan would still do or block for private access in this VPC.
fn vpc_notes(out: &mut String, l: &LiveCluster, vpc: Option<&LiveVpc>) {
    let Some(v) = vpc else { return };
    if !v.has_amazon_dns() {
        let _ = writeln!(
            out,
            "# warning: the DHCP options `{}` of VPC `{}` do not list `AmazonProvidedDNS`;\n\
             # `eksgate plan` blocks this cluster until they do (else the private endpoint's\n\
             # name does not resolve in the VPC)",
            v.dhcp_options_id, l.vpc_id
        );
    }
    let off: Vec<&str> = [
        (!v.dns_support).then_some("`enableDnsSupport`"),
        (!v.dns_hostnames).then_some("`enableDnsHostnames`"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !off.is_empty() {
        let _ = writeln!(
            out,
            "# warning: VPC `{}` has {} off;\n# `eksgate plan` turns {} on, as private access needs",
            l.vpc_id,
            off.join(" and "),
            if off.len() == 1 { "it" } else { "them" }
        );
    }
}

/// `private_access_from`: what the cluster security group already allows on
/// TCP 443, so a plan adds no rule.
fn sources(out: &mut String, l: &LiveCluster, ingress: Option<&SortedSet<AccessSource>>) {
    let Some(sg) = &l.security_group_id else {
        out.push_str(
            "# no `private_access_from`: the cluster has no cluster security group, so nothing\n\
             # outside the VPC is declared\n",
        );
        return;
    };
    match ingress {
        None => {
            let _ = writeln!(
                out,
                "# no `private_access_from`: the cluster security group `{sg}` was not found"
            );
        }
        Some(set) if set.is_empty() => {
            let _ = writeln!(
                out,
                "# no `private_access_from`: the cluster security group `{sg}` allows no\n\
                 # source on TCP 443, so nothing outside the VPC is declared"
            );
        }
        Some(set) => {
            let _ = writeln!(
                out,
                "# the sources the cluster security group `{sg}` allows on TCP 443 now"
            );
            if set.contains(&AccessSource::SecurityGroup(sg.clone())) {
                let _ = writeln!(
                    out,
                    "# (`{sg}` itself is its rule for the cluster's own nodes and control plane)"
                );
            }
            let items: Vec<String> = set.iter().map(|s| s.to_string()).collect();
            array(out, "private_access_from", &items);
        }
    }
}

/// `key = [..]` on one line, or one item per line when that is too long.
fn array(out: &mut String, key: &str, items: &[String]) {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    let line = format!("{key} = [{}]", quoted.join(", "));
    if line.len() <= WIDTH {
        out.push_str(&line);
        out.push('\n');
        return;
    }
    let _ = writeln!(out, "{key} = [");
    for q in &quoted {
        let _ = writeln!(out, "    {q},");
    }
    out.push_str("]\n");
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::EndpointSettings;
    use crate::manifest;
    use crate::set::SortedSet;

    fn nets(items: &[&str]) -> crate::endpoint::PublicCidrs {
        crate::endpoint::public_cidrs(items)
    }

    fn srcs(items: &[&str]) -> SortedSet<AccessSource> {
        items
            .iter()
            .map(|s| match s.parse() {
                Ok(n) => AccessSource::Cidr(n),
                Err(_) => AccessSource::SecurityGroup(s.to_string()),
            })
            .collect()
    }

    fn live(name: &str, public: bool, private: bool) -> LiveCluster {
        LiveCluster {
            network: Default::default(),
            key: ClusterKey {
                account: None,
                region: "eu-west-1".into(),
                name: name.into(),
            },
            arn: format!("arn:aws:eks:eu-west-1:111122223333:cluster/{name}"),
            status: ClusterStatus::Active,
            vpc_id: "vpc-1".into(),
            security_group_id: Some("sg-0000000a".into()),
            endpoint: EndpointSettings::new(public, private).with_cidrs(Some(nets(&["0.0.0.0/0"]))),
            tags: Default::default(),
            updates_in_progress: Vec::new(),
            authentication_mode: None,
        }
    }

    fn good_vpc() -> LiveVpc {
        LiveVpc {
            cidr_blocks: Vec::new(),
            dns_support: true,
            dns_hostnames: true,
            dhcp_options_id: "default".into(),
            domain_name_servers: vec!["AmazonProvidedDNS".into()],
        }
    }

    fn imported(l: LiveCluster, ingress: Option<&[&str]>) -> ImportedCluster {
        let private = l.endpoint.private_access;
        ImportedCluster {
            live: l,
            https_ingress: ingress.map(srcs),
            managed: SortedSet::new(),
            vpc: private.then(good_vpc),
            principals: Vec::new(),
        }
    }

    /// The rendered text loads, and every cluster loads as the live state
    /// it came from, compared as the planner compares.
    #[test]
    fn rendered_manifests_load_as_the_live_state() {
        let mut many = live("many", true, false);
        many.endpoint.public_access_cidrs = Some(
            (0..40)
                .map(|i| {
                    crate::endpoint::PublicCidr::Net(format!("198.{i}.0.0/16").parse().unwrap())
                })
                .collect(),
        );
        let mut creating = live("creating", true, true);
        creating.status = ClusterStatus::Creating;
        let mut no_sg = live("no-sg", false, true);
        no_sg.security_group_id = None;
        let cases: Vec<(ImportedCluster, Option<&[&str]>)> = vec![
            (imported(live("public", true, false), None), None),
            (
                imported(
                    live("both", true, true),
                    Some(&["10.20.0.0/16", "sg-0000000b"]),
                ),
                Some(&["10.20.0.0/16", "sg-0000000b"]),
            ),
            (imported(live("private", false, true), Some(&[])), None),
            (imported(no_sg, None), None),
            (imported(many, None), None),
            (
                imported(creating, Some(&["sg-0000000a"])),
                Some(&["sg-0000000a"]),
            ),
        ];
        let import = Import {
            region: "eu-west-1".into(),
            named: false,
            clusters: cases.iter().map(|(c, _)| c.clone()).collect(),
            vanished: Vec::new(),
        };
        let text = render(&import, Some("../schemas/manifest.schema.json"));
        let loaded = manifest::load_bytes(vec![("i.toml".into(), text.clone().into_bytes())])
            .unwrap_or_else(|d| panic!("{}\n{text}", crate::diagnostic::render_all(&d, false)));
        // `private` and `no-sg`: private only, with no source declared.
        assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
        assert_eq!(loaded.desired.clusters.len(), cases.len());
        for (c, from) in &cases {
            let d = loaded
                .desired
                .clusters
                .iter()
                .find(|d| d.key == c.live.key)
                .unwrap();
            assert_eq!(d.endpoint.mode(), c.live.endpoint.mode(), "{}", c.live.key);
            let want_cidrs = c
                .live
                .endpoint
                .public_access
                .then(|| c.live.endpoint.public_access_cidrs.clone().unwrap());
            assert_eq!(d.endpoint.public_access_cidrs, want_cidrs, "{}", c.live.key);
            assert_eq!(
                d.private_access_from,
                from.map(srcs).unwrap_or_default(),
                "{}",
                c.live.key
            );
        }
        assert!(text.starts_with("#:schema ../schemas/manifest.schema.json\n"));
        assert!(text.contains("public_access_cidrs = [\n    \"198.0.0.0/16\",\n"));
        assert!(text.contains("`CREATING`, not `ACTIVE`"));
        assert!(text.contains("(`sg-0000000a` itself is its rule"));
        assert!(text.contains(
            "no `private_access_from`: the cluster security group `sg-0000000a` allows no\n"
        ));
        assert!(text.contains("the cluster has no cluster security group"));
    }

    #[test]
    fn vpc_problems_are_noted() {
        let mut c = imported(live("p", false, true), Some(&["10.0.0.0/8"]));
        c.vpc = Some(LiveVpc {
            cidr_blocks: Vec::new(),
            dns_support: true,
            dns_hostnames: false,
            dhcp_options_id: "dopt-1".into(),
            domain_name_servers: vec!["10.0.0.2".into()],
        });
        let import = Import {
            region: "eu-west-1".into(),
            named: true,
            clusters: vec![c],
            vanished: Vec::new(),
        };
        let text = render(&import, None);
        assert!(text.contains("the 1 cluster named with `--cluster`"));
        assert!(text.contains("do not list `AmazonProvidedDNS`"));
        assert!(text
            .contains("VPC `vpc-1` has `enableDnsHostnames` off;\n# `eksgate plan` turns it on"));
        assert!(text.starts_with("# Imported by `eksgate import`"));
        assert!(text.contains("`eksgate schema > manifest.schema.json`"));
    }

    #[test]
    fn an_empty_region_is_still_a_valid_manifest() {
        let import = Import {
            region: "eu-west-1".into(),
            named: false,
            clusters: Vec::new(),
            vanished: Vec::new(),
        };
        let text = render(&import, None);
        assert!(text.contains("No clusters were found in `eu-west-1`"));
        let loaded = manifest::load_bytes(vec![("i.toml".into(), text.into_bytes())]).unwrap();
        assert!(loaded.desired.clusters.is_empty());
    }

    #[test]
    fn quoting_round_trips() {
        for s in ["plain", "with \"quotes\"", "back\\slash", "tab\there"] {
            let v: toml::Value = toml::from_str(&format!("k = {}", quote(s))).unwrap();
            assert_eq!(v["k"].as_str(), Some(s));
        }
    }

    #[test]
    fn the_schema_is_found_in_an_ancestor() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("schemas")).unwrap();
        std::fs::write(root.join(SCHEMA_PATH), "{}").unwrap();
        std::fs::create_dir_all(root.join("fleet/prod")).unwrap();
        assert_eq!(
            schema_reference(&root.join("fleet/prod")).as_deref(),
            Some("../../schemas/manifest.schema.json")
        );
        assert_eq!(
            schema_reference(root).as_deref(),
            Some("schemas/manifest.schema.json")
        );
    }
}
