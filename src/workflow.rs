//! The steps `plan` and `apply` share: load the manifests, narrow them to the
//! `--target`s, turn them into the provider's read request, read the live
//! state through a provider, and plan. Pure glue
//! over the library's parts; the commands decide what to print.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::desired::{Desired, DesiredCluster};
use crate::diagnostic::Diagnostic;
use crate::error::{Error, Result};
use crate::explain;
use crate::live::Live;
use crate::manifest;
use crate::plan::{self, Plan};
use crate::provider::{ClusterTarget, Provider, ProviderError, ReadRequest, Scope};

/// Loaded manifests, with their warnings.
pub struct Manifests {
    pub desired: Desired,
    pub warnings: Vec<Diagnostic>,
}

pub fn load(paths: &[PathBuf]) -> Result<Manifests> {
    let loaded = manifest::load(paths).map_err(Error::Diagnostics)?;
    Ok(Manifests {
        desired: loaded.desired,
        warnings: loaded.warnings,
    })
}

/// What the provider reads for `desired`: each cluster with its own role,
/// and the facts private access needs for those that want it.
pub fn read_request(desired: &Desired) -> ReadRequest {
    ReadRequest {
        clusters: desired
            .clusters
            .iter()
            .map(|c| ClusterTarget {
                key: c.key.clone(),
                role_arn: c.role_arn.clone(),
                wants_private: c.endpoint.private_access,
                access_principals: crate::plan::access::principals_to_read(c),
                prefix_lists: prefix_lists_of(c),
            })
            .collect(),
    }
}

/// The managed prefix lists a cluster's plan needs: those of
/// `public_access_cidrs` (expanded into their entries) when public access is
/// wanted, and those of `private_access_from` (which must exist) when
/// private access is.
pub(crate) fn prefix_lists_of(c: &crate::desired::DesiredCluster) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if c.endpoint.public_access {
        out.extend(c.public_access_prefix_lists.iter().cloned());
    }
    if c.endpoint.private_access {
        for s in &c.private_access_from {
            if let crate::desired::AccessSource::PrefixList(id) = s {
                if !out.contains(id) {
                    out.push(id.clone());
                }
            }
        }
    }
    out
}

/// The scope of the first cluster of each role, in the manifests' order:
/// the fleet read builds the same client sets first.
fn role_scopes(desired: &Desired) -> Vec<Scope> {
    let mut seen = std::collections::HashSet::new();
    desired
        .clusters
        .iter()
        .filter(|c| c.role_arn.as_deref().is_some_and(|r| seen.insert(r)))
        .map(|c| Scope {
            account: c.key.account.clone(),
            region: c.key.region.clone(),
            role_arn: c.role_arn.clone(),
        })
        .collect()
}

/// A provider error of `import`, worded by `explain`.
pub fn provider_error(e: ProviderError) -> Error {
    explain::provider_error(
        e,
        explain::Credentials {
            source: "the credentials of the default chain",
            profile: None,
        },
        explain::Needs::Import,
    )
}

/// A provider error of `plan` or `apply`, worded by `explain`; `source`
/// says where the credentials came from and `profile` which profile was
/// chosen, for the errors about them.
pub fn provider_error_from(e: ProviderError, source: &str, profile: Option<&str>) -> Error {
    explain::provider_error(
        e,
        explain::Credentials { source, profile },
        explain::Needs::PlanApply,
    )
}

/// A read's error, worded with where the credentials came from.
async fn read_error<P: Provider>(provider: &P, e: ProviderError) -> Error {
    let source = provider.credentials_source().await;
    provider_error_from(e, &source, provider.profile().as_deref())
}

/// Reads the live state of `desired` (then what the network findings need
/// of it) and plans.
pub async fn read_and_plan<P: Provider>(
    provider: &P,
    desired: &Desired,
    parallelism: usize,
) -> Result<(Live, Plan)> {
    let live = read(provider, desired, parallelism).await?;
    let plan = plan::plan(desired, &live);
    Ok((live, plan))
}

/// Reads the live state of `desired`, then what the network findings need
/// of it.
pub async fn read<P: Provider>(
    provider: &P,
    desired: &Desired,
    parallelism: usize,
) -> Result<Live> {
    // The first scope of each role first: its credentials are asked for
    // while the request below is built (about 6 ms for 10,000 clusters).
    provider.prepare(role_scopes(desired)).await;
    // The network findings' reads depend on what the first read found (the
    // planned endpoint states, the VPC's blocks, the subnets), scope by
    // scope.
    // The request holds one target per declared cluster, in order.
    let request = read_request(desired);
    let mut by_scope: BTreeMap<Scope, Vec<&DesiredCluster>> = BTreeMap::new();
    for (target, want) in request.clusters.iter().zip(&desired.clusters) {
        by_scope.entry(target.scope()).or_default().push(want);
    }
    let network = |scope: &Scope, live: &Live| {
        let wants = by_scope.get(scope).into_iter().flatten().copied();
        plan::network::scope_reads(wants, live)
    };
    match provider
        .read_with_network(request, parallelism, &network)
        .await
    {
        Ok(live) => Ok(live),
        Err(e) => Err(read_error(provider, e).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(text: &str) -> Desired {
        manifest::load_bytes(vec![("m.toml".to_string(), text.as_bytes().to_vec())])
            .unwrap_or_else(|d| panic!("{d:?}"))
            .desired
    }

    #[test]
    fn each_role_is_prepared_once_in_the_region_of_its_first_cluster() {
        let d = desired(
            r#"
[defaults]
account = "111122223333"

[[cluster]]
name = "no-role"
public_access = true
private_access = false
region = "us-east-1"

[[cluster]]
name = "a"
public_access = true
private_access = false
region = "eu-west-1"
role_arn = "arn:aws:iam::111122223333:role/one"

[[cluster]]
name = "b"
public_access = true
private_access = false
region = "us-east-1"
role_arn = "arn:aws:iam::111122223333:role/one"

[[cluster]]
name = "c"
public_access = true
private_access = false
region = "us-east-1"
role_arn = "arn:aws:iam::111122223333:role/two"
"#,
        );
        let scopes = role_scopes(&d);
        let got: Vec<(&str, &str)> = scopes
            .iter()
            .map(|s| (s.role_arn.as_deref().unwrap_or("-"), s.region.as_str()))
            .collect();
        // What the fleet read builds first for each role: the first
        // cluster's scope in the manifests' order (the read asks STS in the
        // region of that set).
        assert_eq!(
            got,
            [
                ("arn:aws:iam::111122223333:role/one", "eu-west-1"),
                ("arn:aws:iam::111122223333:role/two", "us-east-1"),
            ]
        );
        assert!(scopes
            .iter()
            .all(|s| s.account.as_deref() == Some("111122223333")));
    }
}
