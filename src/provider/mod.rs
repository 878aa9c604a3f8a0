//! The one door to AWS. `Provider` is what the rest of eksgate may ask of the
//! cloud: read the live state for a set of declared clusters, and the few
//! calls apply makes. `aws` implements it with the AWS SDK (the only code that
//! imports the SDK crates); tests of pure engine logic may implement it in
//! memory, everything else runs the AWS implementation against the emulator.
//!
//! Errors are typed so apply can tell "AWS said no" (with AWS's code and
//! message, shown to the user) from "could not reach AWS".

pub mod aws;

use std::future::Future;

use crate::desired::DesiredCluster;
use crate::live::{ClusterObservation, Live, LiveVpc};
use std::collections::BTreeSet;

use crate::desired::AccessSource;
use crate::endpoint::EndpointSettings;

/// Which credentials and region a call uses. The provider maps an account to
/// the role to assume for it (from the manifests or the saved plan).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub account: Option<String>,
    pub region: String,
    /// The role to assume for the call (`role_arn` of the cluster); `None`
    /// uses the base credentials.
    pub role_arn: Option<String>,
}

/// What `UpdateClusterConfig` answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateStart {
    /// A new update is running, with this id.
    Started(String),
    /// AWS said the cluster is already at the desired configuration.
    AlreadyConverged,
    /// Another update (ours or AWS's) is running, with this id.
    InUse(String),
}

/// `DescribeUpdate`'s status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateStatus {
    InProgress,
    Successful,
    Failed,
    Cancelled,
    /// A status this version does not know; treated as still running.
    Other(String),
}

/// One `DescribeUpdate` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateState {
    pub id: String,
    pub status: UpdateStatus,
    /// AWS's `errorCode` and `errorMessage` of a failed update.
    pub errors: Vec<(String, String)>,
}

/// What `AuthorizeSecurityGroupIngress` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngressOutcome {
    Added,
    /// `InvalidPermission.Duplicate`: the rules were there already.
    AlreadyPresent,
}

pub use crate::live::DnsAttribute;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// AWS answered with an error.
    #[error("{operation} failed: {code}: {message}")]
    Aws {
        operation: String,
        code: String,
        message: String,
    },
    /// No answer: network, timeout, credentials, or a response that could
    /// not be read.
    #[error("{operation} failed: {message}")]
    Transport { operation: String, message: String },
    /// The credentials resolve to another account than the manifest pins.
    #[error("the credentials resolve to account `{actual}`, not `{expected}`")]
    AccountMismatch { expected: String, actual: String },
}

/// What eksgate may ask of AWS.
pub trait Provider: Send + Sync {
    /// Reads the live state the planner needs for these clusters, at most
    /// `parallelism` calls at once; a VPC or security group shared by several
    /// clusters is read once.
    fn read(
        &self,
        clusters: &[DesiredCluster],
        parallelism: usize,
    ) -> impl Future<Output = Result<Live, ProviderError>> + Send;

    /// The names of every cluster in the scope's region (`ListClusters`,
    /// following `nextToken` to the last page), for `eksgate import`.
    ///
    /// The default says "not supported" so in-memory providers that have no
    /// use for it need not implement it.
    fn list_clusters(
        &self,
        scope: &Scope,
    ) -> impl Future<Output = Result<Vec<String>, ProviderError>> + Send {
        let _ = scope;
        std::future::ready(Err(ProviderError::Transport {
            operation: "ListClusters".into(),
            message: "not supported".into(),
        }))
    }

    /// One cluster now, with the ids of its updates still `InProgress`.
    fn describe_cluster(
        &self,
        scope: &Scope,
        name: &str,
    ) -> impl Future<Output = Result<ClusterObservation, ProviderError>> + Send;

    /// One `UpdateClusterConfig` with these endpoint settings.
    fn update_endpoint(
        &self,
        scope: &Scope,
        name: &str,
        settings: &EndpointSettings,
    ) -> impl Future<Output = Result<UpdateStart, ProviderError>> + Send;

    fn describe_update(
        &self,
        scope: &Scope,
        name: &str,
        update_id: &str,
    ) -> impl Future<Output = Result<UpdateState, ProviderError>> + Send;

    fn read_vpc(
        &self,
        scope: &Scope,
        vpc_id: &str,
    ) -> impl Future<Output = Result<LiveVpc, ProviderError>> + Send;

    /// One `ModifyVpcAttribute` call.
    fn set_vpc_dns(
        &self,
        scope: &Scope,
        vpc_id: &str,
        attribute: DnsAttribute,
        value: bool,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send;

    /// One `AuthorizeSecurityGroupIngress` call for TCP 443 from `sources`.
    fn authorize_https_ingress(
        &self,
        scope: &Scope,
        group_id: &str,
        sources: &BTreeSet<AccessSource>,
    ) -> impl Future<Output = Result<IngressOutcome, ProviderError>> + Send;
}
