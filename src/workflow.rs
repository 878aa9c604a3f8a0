//! The steps `plan` and `apply` share: load the manifests, narrow them to the
//! `--target`s, turn them into the provider's read request, read the live
//! state through a provider, and plan. Pure glue
//! over the library's parts; the commands decide what to print.

use std::path::PathBuf;

use crate::desired::Desired;
use crate::diagnostic::Diagnostic;
use crate::error::{Error, Result};
use crate::live::Live;
use crate::manifest;
use crate::plan::{self, Plan};
use crate::provider::{ClusterTarget, Provider, ProviderError, ReadRequest};

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
                prefix_lists: prefix_lists_of(c),
            })
            .collect(),
    }
}

/// The managed prefix lists a cluster's plan needs: those of
/// `public_access_cidrs` (expanded into their entries) when public access is
/// wanted, and those of `private_access_from` (which must exist) when
/// private access is.
fn prefix_lists_of(c: &crate::desired::DesiredCluster) -> Vec<String> {
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

pub fn provider_error(e: ProviderError) -> Error {
    provider_error_from(e, "the default credential chain")
}

/// A provider error as the user reads it; `source` says where the
/// credentials came from, for the error that says AWS refused them.
pub fn provider_error_from(e: ProviderError, source: &str) -> Error {
    if e.refused_credentials() {
        return Error::user_hint(
            format!("AWS refused the credentials from {source}: {e}"),
            "check the access key id and secret (or refresh the session) those credentials hold; eksgate asks no further with them",
        );
    }
    let hint = match &e {
        ProviderError::Aws { code, .. } if code.contains("AccessDenied") || code.contains("Unauthorized") => {
            "check the credentials' permissions (eksgate needs eks:Describe*/List*/UpdateClusterConfig, ec2:Describe*, ec2:ModifyVpcAttribute, ec2:AuthorizeSecurityGroupIngress)"
        }
        ProviderError::AccountMismatch { .. } => "use credentials for the account the manifest pins (`--profile`), or fix `account`",
        _ => "check the credentials, the region and the network; `-v` shows each call",
    };
    Error::user_hint(e.to_string(), hint)
}

/// Reads the live state of `desired` and plans.
pub async fn read_and_plan<P: Provider>(
    provider: &P,
    desired: &Desired,
    parallelism: usize,
) -> Result<(Live, Plan)> {
    let live = provider
        .read(&read_request(desired), parallelism)
        .await
        .map_err(|e| provider_error_from(e, &provider.credentials_source()))?;
    let plan = plan::plan(desired, &live);
    Ok((live, plan))
}
