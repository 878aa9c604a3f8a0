//! The one door to AWS. `Provider` is what the rest of eksgate may ask of the
//! cloud: read the live state for a [`ReadRequest`], and the few calls apply
//! makes. `aws` implements it with the AWS SDK (`aws`, `access`, `clients`,
//! `network`, `probe` and `probe_needed` are the only code that imports the
//! SDK crates; `fleet` schedules the read's calls, `network` those of the network
//! findings); tests of pure engine logic may implement it in memory, everything
//! else runs the AWS implementation against the emulator.
//!
//! This file owns the trait and the types that cross it; it must not know
//! manifests or plans beyond the value types it is handed (a read request is
//! built from the manifests by `workflow`, not here).
//!
//! Errors are typed so apply can tell "AWS said no" (with AWS's code and
//! message, shown to the user) from "could not reach AWS".

mod access;
mod allow_list;
pub mod aws;
mod clients;
pub mod failure;
mod fleet;
mod network;
mod pace;
mod paging;
pub mod probe;
pub mod probe_needed;
mod sdk_error;
mod updates;

use std::future::Future;

use crate::access::{AuthenticationMode, LiveAccess, LiveEntry};
use crate::desired::ClusterKey;
use crate::live::{ClusterObservation, Live, LiveVpc};
use crate::set::SortedSet;

use crate::desired::AccessSource;
use crate::endpoint::EndpointSettings;

pub use pace::sent_at;

/// The network findings' reads of one scope, given what the read found:
/// every cluster of that scope and their VPCs (see
/// [`Provider::read_with_network`]).
pub type NetworkReads<'a> = dyn Fn(&Scope, &Live) -> crate::network::ScopeReads + Sync + 'a;

/// Which credentials and region a call uses: the role to assume (`None`:
/// the base credentials, as the default chain or `--profile` give them),
/// and the account the manifest pins, which the credentials must act in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub account: Option<String>,
    pub region: String,
    pub role_arn: Option<String>,
}

/// What [`Provider::read`] reads: the clusters, each with its own
/// credentials, and whether the facts private access needs are wanted too.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadRequest {
    pub clusters: Vec<ClusterTarget>,
}

/// One cluster to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterTarget {
    pub key: ClusterKey,
    /// The role whose credentials read this cluster (`None`: the base
    /// credentials).
    pub role_arn: Option<String>,
    /// Also read what private access needs: the cluster's VPC (DNS
    /// attributes, DHCP options) and its cluster security group.
    pub wants_private: bool,
    /// The `private_access_principals` whose access entries are read, when
    /// the manifest wants the cluster private only (see `plan::access`);
    /// empty: none are read.
    pub access_principals: Vec<String>,
    /// Managed prefix lists whose entries the plan needs (those named in
    /// `public_access_cidrs`).
    pub prefix_lists: Vec<String>,
}

impl ClusterTarget {
    /// The credentials and region this cluster is read with.
    pub fn scope(&self) -> Scope {
        Scope {
            account: self.key.account.clone(),
            region: self.key.region.clone(),
            role_arn: self.role_arn.clone(),
        }
    }
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
    /// At least one of the requested rules was added.
    Added,
    /// `InvalidPermission.Duplicate`, and a fresh read of the group showed
    /// every requested source there already.
    AlreadyPresent,
}

/// What a revocation of TCP 443 rules did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// These rules (by id) were revoked.
    Revoked(Vec<String>),
    /// None of the rules was there any more.
    AlreadyGone,
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
    /// The call never reached AWS: no credentials, or no way to the
    /// endpoint (see [`failure`]).
    #[error("{operation} failed: {failure}")]
    Local {
        operation: String,
        failure: Box<failure::Failure>,
    },
    /// The credentials resolve to another account than the manifest pins.
    #[error("the credentials resolve to account `{actual}`, not `{expected}`")]
    AccountMismatch { expected: String, actual: String },
}

/// The error codes with which AWS refuses the credentials themselves (an
/// unknown key, a bad signature, an expired session): asking again with the
/// same credentials cannot help.
pub const REFUSED_CREDENTIALS: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "AuthFailure",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "ExpiredTokenException",
    "ExpiredToken",
    "MissingAuthenticationTokenException",
    "MissingAuthenticationToken",
];

impl ProviderError {
    /// Whether AWS refused the credentials rather than the request.
    pub fn refused_credentials(&self) -> bool {
        matches!(self, ProviderError::Aws { code, .. } if REFUSED_CREDENTIALS.contains(&code.as_str()))
    }
}

/// What eksgate may ask of AWS.
pub trait Provider: Send + Sync {
    /// Where the base credentials come from, in words (with the last
    /// characters of their access key id when they load), for an error
    /// that says AWS refused them.
    fn credentials_source(&self) -> impl Future<Output = String> + Send {
        std::future::ready("the default credential chain".to_string())
    }

    /// The profile of the AWS config files the credentials come from, when
    /// one was chosen (`--profile`, `AWS_PROFILE`).
    fn profile(&self) -> Option<String> {
        None
    }

    /// Starts what the first reads of `scopes` wait for, without waiting
    /// for it to end: the AWS provider builds their client sets, and a
    /// role's first set asks STS for the role's credentials (see
    /// `clients`), so that round trip runs while the read is prepared.
    /// Nothing by default.
    fn prepare(&self, scopes: Vec<Scope>) -> impl Future<Output = ()> + Send {
        let _ = scopes;
        std::future::ready(())
    }

    /// Reads the live state the planner needs for the request's clusters,
    /// with calls in flight bounded per account and region by
    /// `parallelism`, each cluster with its own credentials; a VPC or
    /// security group shared by several clusters read with the same
    /// credentials is read once.
    ///
    /// The request is taken, not borrowed: a large fleet's request is
    /// megabytes, let go once its reads are queued.
    fn read(
        &self,
        request: ReadRequest,
        parallelism: usize,
    ) -> impl Future<Output = Result<Live, ProviderError>> + Send;

    /// [`read`](Provider::read), and for each scope the EC2 facts the
    /// network findings need (`NatGateways`, `RouteTables`,
    /// `VpcPeeringConnections`, the VPCs of source security groups), as
    /// `network` asks for them given what the scope's read found, each VPC
    /// or group once per scope.
    ///
    /// The default reads no network facts: a provider without them leaves
    /// the network findings unchecked, as for facts that were not read.
    fn read_with_network(
        &self,
        request: ReadRequest,
        parallelism: usize,
        network: &NetworkReads<'_>,
    ) -> impl Future<Output = Result<Live, ProviderError>> + Send {
        let _ = network;
        self.read(request, parallelism)
    }

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

    /// Lets `sources` in on TCP 443 (`AuthorizeSecurityGroupIngress`). When
    /// AWS refuses the call because one of the rules exists already, what is
    /// still missing is added: `AlreadyPresent` only when nothing was.
    fn authorize_https_ingress(
        &self,
        scope: &Scope,
        group_id: &str,
        sources: &SortedSet<AccessSource>,
    ) -> impl Future<Output = Result<IngressOutcome, ProviderError>> + Send;

    /// The access entries of cluster `name` that matter for `principals`
    /// (`ListAccessEntries`, then the declared principals' entries). The
    /// default says "not supported", for in-memory providers.
    fn read_access(
        &self,
        scope: &Scope,
        name: &str,
        principals: &[String],
    ) -> impl Future<Output = Result<LiveAccess, ProviderError>> + Send {
        let _ = (scope, name, principals);
        std::future::ready(Err(not_supported("ListAccessEntries")))
    }

    /// Every access entry of cluster `name` with its access policies (at
    /// most `limit` read in detail), for `eksgate import`.
    fn access_entries(
        &self,
        scope: &Scope,
        name: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LiveEntry>, ProviderError>> + Send {
        let _ = (scope, name, limit);
        std::future::ready(Err(not_supported("ListAccessEntries")))
    }

    /// One `UpdateClusterConfig` with `accessConfig { authenticationMode }`.
    fn update_access_config(
        &self,
        scope: &Scope,
        name: &str,
        mode: &AuthenticationMode,
    ) -> impl Future<Output = Result<UpdateStart, ProviderError>> + Send {
        let _ = (scope, name, mode);
        std::future::ready(Err(not_supported("UpdateClusterConfig")))
    }

    /// Revokes the inbound rules of `group_id` that are exactly TCP 443–443
    /// from `sources` (`RevokeSecurityGroupIngress` by rule id), and no
    /// other rule.
    ///
    /// The default says "not supported", for in-memory providers that have
    /// no use for it.
    fn revoke_https_ingress(
        &self,
        scope: &Scope,
        group_id: &str,
        sources: &SortedSet<AccessSource>,
    ) -> impl Future<Output = Result<RevokeOutcome, ProviderError>> + Send {
        let _ = (scope, group_id, sources);
        std::future::ready(Err(not_supported("RevokeSecurityGroupIngress")))
    }
}

fn not_supported(operation: &str) -> ProviderError {
    ProviderError::Transport {
        operation: operation.into(),
        message: "not supported".into(),
    }
}
