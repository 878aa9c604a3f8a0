//! The AWS implementation of [`Provider`], and the only code that imports the
//! AWS SDK. Clients come from `aws-config`, so the default credential chain,
//! `--profile`, SSO, web identity, `AWS_REGION` and `AWS_ENDPOINT_URL` all work
//! as AWS users expect. One client set per (account, region); an account with
//! a `role_arn` gets credentials from STS `AssumeRole`.
//!
//! Retries: the SDK's standard retry mode (exponential backoff with full
//! jitter) with a generous attempt budget, on retry partitions of eksgate's
//! own with no retry quota, so throttling across a large fleet is absorbed
//! instead of surfacing as errors. Not the adaptive mode: its client-side
//! rate limiter drops to half a request per second after a burst of
//! throttles and then delays every call by up to 20 s, which turned a
//! throttled rollout into a stall. AWS throttles per account, region and
//! service, so each (scope, service) has its own partition: a throttled
//! region does not use up another's retries. The backoff window stops
//! growing at 2 s instead of the SDK's 20 s: with hundreds of calls in flight
//! against one region's rate, a few calls are throttled six or seven times in
//! a row, and a window that keeps doubling left one of them asleep for
//! seconds after every other call was done (a 1,000-cluster plan at
//! `--parallelism 256` took 1.7 times its lower bound, 0.9 with the cap);
//! twenty attempts still span half a minute or more.
//! Reads of many clusters are issued round-robin over scopes, so every
//! region's rate is used at once instead of one region after another.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::types::{
    AttributeBooleanValue, IpPermission, IpRange, Ipv6Range, UserIdGroupPair, VpcAttributeName,
};
use aws_sdk_eks::config::retry::{RetryPartition, TokenBucket};
use aws_sdk_eks::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_eks::types::VpcConfigRequest;
use ipnet::IpNet;
use tokio::sync::{OnceCell, Semaphore};
use tokio::task::JoinSet;

use super::{
    DnsAttribute, IngressOutcome, Provider, ProviderError, Scope, UpdateStart, UpdateState,
    UpdateStatus,
};
use crate::desired::{AccessSource, ClusterKey, DesiredCluster};
use crate::endpoint::{public_cidrs, EndpointSettings};
use crate::live::{
    ClusterObservation, ClusterStatus, Live, LiveCluster, LiveSecurityGroup, LiveVpc,
    SecurityGroupKey, VpcKey,
};

/// How many ids one EC2 `Describe*` call asks for.
const BATCH: usize = 100;
/// How many of a cluster's most recent updates are checked for `InProgress`.
const RECENT_UPDATES: usize = 20;
/// The first retry's backoff window (see `AwsProvider::new`).
const RETRY_INITIAL_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);
/// The largest backoff window (see `AwsProvider::new`).
const RETRY_MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);

/// How the provider builds its clients.
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    /// A profile of the shared config files (`--profile`).
    pub profile: Option<String>,
    /// The region for clusters that name none (`--region`).
    pub region: Option<String>,
    /// Attempts per call, including the first (default 20).
    pub max_attempts: Option<u32>,
    /// Roles to assume, per account (from the manifests or a saved plan).
    pub roles: BTreeMap<String, String>,
    /// Another endpoint for every service (the in-process emulator of
    /// `eksgate demo`); otherwise `AWS_ENDPOINT_URL` and the config files
    /// decide, as for any AWS tool.
    pub endpoint_url: Option<String>,
    /// Fixed credentials (for the emulator) instead of the default chain.
    pub static_credentials: Option<(String, String)>,
}

#[derive(Clone)]
struct Clients {
    eks: aws_sdk_eks::Client,
    ec2: aws_sdk_ec2::Client,
    sts: aws_sdk_sts::Client,
    /// Updates (cluster, update id) seen in a final state: they never run
    /// again, so the check for updates in progress does not ask about them
    /// twice (the second endpoint step of a cluster would otherwise describe
    /// the first one's update again).
    ended: Arc<Mutex<HashSet<(String, String)>>>,
}

impl Clients {
    fn ended(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String)>> {
        // Held only for an insert or a lookup, never across an await.
        self.ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A value computed once per scope, shared by concurrent askers.
type PerScope<T> = Mutex<HashMap<Scope, Arc<OnceCell<T>>>>;

pub struct AwsProvider {
    base: SdkConfig,
    roles: BTreeMap<String, String>,
    clients: PerScope<Clients>,
    /// GetCallerIdentity per scope, asked once.
    identities: PerScope<Result<String, ProviderError>>,
}

impl AwsProvider {
    pub async fn new(opts: AwsOptions) -> AwsProvider {
        // A throttle is usually over within milliseconds; the SDK's 1 s
        // initial backoff would make every throttled call wait seconds, so
        // retries start from a shorter backoff (still exponential with full
        // jitter), and stop growing at 2 s (see the module docs).
        let retry = RetryConfig::standard()
            .with_max_attempts(opts.max_attempts.unwrap_or(20))
            .with_initial_backoff(RETRY_INITIAL_BACKOFF)
            .with_max_backoff(RETRY_MAX_BACKOFF);
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry);
        if let Some(p) = &opts.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &opts.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(url) = &opts.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some((key, secret)) = &opts.static_credentials {
            loader = loader.credentials_provider(aws_sdk_eks::config::Credentials::new(
                key.clone(),
                secret.clone(),
                None,
                None,
                "eksgate-static",
            ));
        }
        let base = loader.load().await;
        AwsProvider {
            base,
            roles: opts.roles,
            clients: Mutex::new(HashMap::new()),
            identities: Mutex::new(HashMap::new()),
        }
    }

    async fn clients(&self, scope: &Scope) -> Clients {
        let cell = {
            let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(scope.clone()).or_default().clone()
        };
        cell.get_or_init(|| self.build_clients(scope)).await.clone()
    }

    async fn build_clients(&self, scope: &Scope) -> Clients {
        let region = Region::new(scope.region.clone());
        let role = scope.account.as_ref().and_then(|a| self.roles.get(a));
        let mut config = self.base.to_builder().region(region.clone());
        if let Some(role) = role {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .session_name("eksgate")
                .region(region)
                .configure(&self.base)
                .build()
                .await;
            config = config.credentials_provider(
                aws_sdk_eks::config::SharedCredentialsProvider::new(provider),
            );
        }
        let config = config.build();
        // Each `build` makes a new rate limiter; clients are built once per
        // scope, so each (scope, service) has one.
        let partition = |service: &str| {
            RetryPartition::custom(format!(
                "eksgate-{service}-{}-{}",
                scope.account.as_deref().unwrap_or("default"),
                scope.region
            ))
            .token_bucket(TokenBucket::unlimited())
            .build()
        };
        Clients {
            eks: aws_sdk_eks::Client::from_conf(
                aws_sdk_eks::config::Builder::from(&config)
                    .retry_partition(partition("eks"))
                    .build(),
            ),
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&config)
                    .retry_partition(partition("ec2"))
                    .build(),
            ),
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(&config)
                    .retry_partition(partition("sts"))
                    .build(),
            ),
            ended: Arc::default(),
        }
    }

    /// The account the credentials of `scope` act in (asked once).
    async fn caller_account(&self, scope: &Scope) -> Result<String, ProviderError> {
        let cell = {
            let mut map = self.identities.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(scope.clone()).or_default().clone()
        };
        cell.get_or_init(|| async {
            let c = self.clients(scope).await;
            let out = c
                .sts
                .get_caller_identity()
                .send()
                .await
                .map_err(|e| sdk_error("GetCallerIdentity", e))?;
            out.account()
                .map(str::to_string)
                .ok_or_else(|| ProviderError::Transport {
                    operation: "GetCallerIdentity".into(),
                    message: "the answer named no account".into(),
                })
        })
        .await
        .clone()
    }

    /// Refuses to change anything in an account other than the one pinned.
    async fn check_account(&self, scope: &Scope) -> Result<(), ProviderError> {
        if let Some(expected) = &scope.account {
            let actual = self.caller_account(scope).await?;
            if &actual != expected {
                return Err(ProviderError::AccountMismatch {
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        Ok(())
    }
}

fn sdk_error<E, R>(operation: &str, err: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(se) => ProviderError::Aws {
            operation: operation.to_string(),
            code: se.err().code().unwrap_or("Unknown").to_string(),
            message: se.err().message().unwrap_or("").to_string(),
        },
        _ => ProviderError::Transport {
            operation: operation.to_string(),
            message: DisplayErrorContext(&err).to_string(),
        },
    }
}

fn code_of(e: &ProviderError) -> Option<&str> {
    match e {
        ProviderError::Aws { code, .. } => Some(code),
        _ => None,
    }
}

/// `DescribeCluster`, and the updates in progress. `all_updates` lists them
/// whatever the status: AWS's own platform updates leave a cluster `ACTIVE`
/// while they run, and a call made then is rejected with
/// `ResourceInUseException`. The plan's bulk read skips that for `ACTIVE`
/// clusters (two calls or more per cluster); the re-read before a change
/// never does.
async fn describe(
    c: &Clients,
    scope: &Scope,
    name: &str,
    all_updates: bool,
) -> Result<ClusterObservation, ProviderError> {
    let out = match c.eks.describe_cluster().name(name).send().await {
        Ok(o) => o,
        Err(e) => {
            let err = sdk_error("DescribeCluster", e);
            if code_of(&err) == Some("ResourceNotFoundException") {
                return Ok(ClusterObservation::NotFound);
            }
            return Err(err);
        }
    };
    let Some(cluster) = out.cluster() else {
        return Err(ProviderError::Transport {
            operation: "DescribeCluster".into(),
            message: "the answer had no `cluster`".into(),
        });
    };
    let vpc = cluster.resources_vpc_config();
    let status = ClusterStatus::parse(cluster.status().map(|s| s.as_str()).unwrap_or("UNKNOWN"));
    let updates_in_progress = if all_updates || status == ClusterStatus::Updating {
        in_progress_updates(c, name).await?
    } else {
        Vec::new()
    };
    Ok(ClusterObservation::Found(LiveCluster {
        key: ClusterKey {
            account: scope.account.clone(),
            region: scope.region.clone(),
            name: name.to_string(),
        },
        arn: cluster.arn().unwrap_or_default().to_string(),
        status,
        vpc_id: vpc.and_then(|v| v.vpc_id()).unwrap_or_default().to_string(),
        security_group_id: vpc
            .and_then(|v| v.cluster_security_group_id())
            .map(str::to_string),
        // Every block AWS holds is kept, even one this version cannot parse:
        // the diff shows it and a managed list replaces it.
        endpoint: EndpointSettings::new(
            vpc.is_some_and(|v| v.endpoint_public_access()),
            vpc.is_some_and(|v| v.endpoint_private_access()),
        )
        .with_cidrs(Some(public_cidrs(
            vpc.map(|v| v.public_access_cidrs()).unwrap_or_default(),
        ))),
        updates_in_progress,
    }))
}

/// Ids of the cluster's updates still `InProgress` (ListUpdates, then
/// DescribeUpdate on the most recent ones).
async fn in_progress_updates(c: &Clients, name: &str) -> Result<Vec<String>, ProviderError> {
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = c
            .eks
            .list_updates()
            .name(name)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| sdk_error("ListUpdates", e))?;
        ids.extend(out.update_ids().iter().cloned());
        match out.next_token() {
            Some(t) if !t.is_empty() && ids.len() < 1000 => token = Some(t.to_string()),
            _ => break,
        }
    }
    let mut running = Vec::new();
    for id in ids.iter().rev().take(RECENT_UPDATES) {
        if c.ended().contains(&(name.to_string(), id.clone())) {
            continue;
        }
        let u = describe_update(c, name, id).await?;
        if u.status == UpdateStatus::InProgress {
            running.push(id.clone());
        }
    }
    running.reverse();
    Ok(running)
}

async fn describe_update(c: &Clients, name: &str, id: &str) -> Result<UpdateState, ProviderError> {
    let out = c
        .eks
        .describe_update()
        .name(name)
        .update_id(id)
        .send()
        .await
        .map_err(|e| sdk_error("DescribeUpdate", e))?;
    let Some(u) = out.update() else {
        return Err(ProviderError::Transport {
            operation: "DescribeUpdate".into(),
            message: "the answer had no `update`".into(),
        });
    };
    let status = match u.status().map(|s| s.as_str()) {
        Some("InProgress") => UpdateStatus::InProgress,
        Some("Successful") => UpdateStatus::Successful,
        Some("Failed") => UpdateStatus::Failed,
        Some("Cancelled") => UpdateStatus::Cancelled,
        other => UpdateStatus::Other(other.unwrap_or("").to_string()),
    };
    if matches!(
        status,
        UpdateStatus::Successful | UpdateStatus::Failed | UpdateStatus::Cancelled
    ) {
        c.ended().insert((name.to_string(), id.to_string()));
    }
    Ok(UpdateState {
        id: id.to_string(),
        status,
        errors: u
            .errors()
            .iter()
            .map(|e| {
                (
                    e.error_code()
                        .map(|c| c.as_str().to_string())
                        .unwrap_or_default(),
                    e.error_message().unwrap_or_default().to_string(),
                )
            })
            .collect(),
    })
}

/// Sources a security group lets in on TCP 443.
fn https_sources(group: &aws_sdk_ec2::types::SecurityGroup) -> BTreeSet<AccessSource> {
    let mut out = BTreeSet::new();
    for p in group.ip_permissions() {
        let proto = p.ip_protocol().unwrap_or("");
        let covers = match proto {
            "-1" | "all" => true,
            "tcp" | "6" => p.from_port().unwrap_or(-1) <= 443 && 443 <= p.to_port().unwrap_or(-1),
            _ => false,
        };
        if !covers {
            continue;
        }
        for r in p.ip_ranges() {
            if let Some(n) = r.cidr_ip().and_then(|c| c.parse::<IpNet>().ok()) {
                out.insert(AccessSource::Cidr(n.trunc()));
            }
        }
        for r in p.ipv6_ranges() {
            if let Some(n) = r.cidr_ipv6().and_then(|c| c.parse::<IpNet>().ok()) {
                out.insert(AccessSource::Cidr(n.trunc()));
            }
        }
        for g in p.user_id_group_pairs() {
            if let Some(id) = g.group_id() {
                out.insert(AccessSource::SecurityGroup(id.to_string()));
            }
        }
    }
    out
}

async fn read_vpc_attr(
    c: &Clients,
    vpc_id: &str,
    attr: DnsAttribute,
) -> Result<bool, ProviderError> {
    let name = match attr {
        DnsAttribute::Support => VpcAttributeName::EnableDnsSupport,
        DnsAttribute::Hostnames => VpcAttributeName::EnableDnsHostnames,
    };
    let out = c
        .ec2
        .describe_vpc_attribute()
        .vpc_id(vpc_id)
        .attribute(name)
        .send()
        .await
        .map_err(|e| sdk_error("DescribeVpcAttribute", e))?;
    let value = match attr {
        DnsAttribute::Support => out.enable_dns_support().and_then(|v| v.value()),
        DnsAttribute::Hostnames => out.enable_dns_hostnames().and_then(|v| v.value()),
    };
    value.ok_or_else(|| ProviderError::Transport {
        operation: "DescribeVpcAttribute".into(),
        message: format!("the answer for `{vpc_id}` had no value"),
    })
}

/// `DescribeVpcs` for many ids: their DHCP options ids.
async fn vpc_dhcp_ids(
    c: &Clients,
    ids: &[String],
) -> Result<BTreeMap<String, String>, ProviderError> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(BATCH) {
        let resp = c
            .ec2
            .describe_vpcs()
            .set_vpc_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error("DescribeVpcs", e))?;
        for v in resp.vpcs() {
            if let (Some(id), Some(d)) = (v.vpc_id(), v.dhcp_options_id()) {
                out.insert(id.to_string(), d.to_string());
            }
        }
    }
    Ok(out)
}

async fn dhcp_servers(
    c: &Clients,
    ids: &[String],
) -> Result<BTreeMap<String, Vec<String>>, ProviderError> {
    let mut out = BTreeMap::new();
    let real: Vec<String> = ids
        .iter()
        .filter(|d| d.as_str() != "default")
        .cloned()
        .collect();
    for chunk in real.chunks(BATCH) {
        let resp = c
            .ec2
            .describe_dhcp_options()
            .set_dhcp_options_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error("DescribeDhcpOptions", e))?;
        for d in resp.dhcp_options() {
            let servers = d
                .dhcp_configurations()
                .iter()
                .filter(|c| c.key() == Some("domain-name-servers"))
                .flat_map(|c| {
                    c.values()
                        .iter()
                        .filter_map(|v| v.value().map(str::to_string))
                })
                .collect();
            if let Some(id) = d.dhcp_options_id() {
                out.insert(id.to_string(), servers);
            }
        }
    }
    // A VPC with no DHCP options set (`default`) uses the Amazon resolver.
    if ids.iter().any(|d| d == "default") {
        out.insert("default".into(), vec!["AmazonProvidedDNS".into()]);
    }
    Ok(out)
}

async fn security_groups(
    c: &Clients,
    ids: &[String],
) -> Result<BTreeMap<String, LiveSecurityGroup>, ProviderError> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(BATCH) {
        let resp = c
            .ec2
            .describe_security_groups()
            .set_group_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error("DescribeSecurityGroups", e))?;
        for g in resp.security_groups() {
            if let Some(id) = g.group_id() {
                out.insert(
                    id.to_string(),
                    LiveSecurityGroup {
                        https_ingress: https_sources(g),
                    },
                );
            }
        }
    }
    Ok(out)
}

/// Reorders jobs round-robin over their scopes (keeping each scope's order),
/// so that a fleet listed region by region uses every region's API rate at
/// once instead of exhausting one region's while the others idle.
fn interleave<T>(jobs: Vec<T>, scope_of: impl Fn(&T) -> &Scope) -> Vec<T> {
    let mut queues: BTreeMap<Scope, std::collections::VecDeque<T>> = BTreeMap::new();
    let mut first_seen: Vec<Scope> = Vec::new();
    for job in jobs {
        let scope = scope_of(&job).clone();
        if !queues.contains_key(&scope) {
            first_seen.push(scope.clone());
        }
        queues.entry(scope).or_default().push_back(job);
    }
    let mut out = Vec::new();
    // Each round takes one job of every scope that has one left; a round
    // that takes none ends it, so the loop runs at most (jobs + 1) times.
    loop {
        let before = out.len();
        for scope in &first_seen {
            if let Some(job) = queues.get_mut(scope).and_then(|q| q.pop_front()) {
                out.push(job);
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Runs `f` for every item with at most `limit` at once, keeping the order.
async fn bounded<T, R, F, Fut>(items: Vec<T>, limit: &Arc<Semaphore>, f: F) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = R> + Send + 'static,
{
    let mut set = JoinSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let permit_source = limit.clone();
        let fut = f(item);
        set.spawn(async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = permit_source.acquire_owned().await;
            (i, fut.await)
        });
    }
    let mut out: Vec<(usize, R)> = Vec::new();
    while let Some(res) = set.join_next().await {
        match res {
            Ok(r) => out.push(r),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

impl Provider for AwsProvider {
    async fn read(
        &self,
        clusters: &[DesiredCluster],
        parallelism: usize,
    ) -> Result<Live, ProviderError> {
        let limit = Arc::new(Semaphore::new(parallelism.max(1)));
        let mut live = Live::default();

        // Accounts first: a pinned account that the credentials do not reach
        // blocks its clusters before anything else is read for them.
        let scopes: BTreeSet<Scope> = clusters
            .iter()
            .map(|c| Scope {
                account: c.key.account.clone(),
                region: c.key.region.clone(),
                role_arn: c.role_arn.clone(),
            })
            .collect();
        let mut mismatched: BTreeMap<Scope, (String, String)> = BTreeMap::new();
        for scope in scopes.iter().filter(|s| s.account.is_some()) {
            match self.check_account(scope).await {
                Ok(()) => {}
                Err(ProviderError::AccountMismatch { expected, actual }) => {
                    mismatched.insert(scope.clone(), (expected, actual));
                }
                Err(other) => return Err(other),
            }
        }

        // Clusters, concurrently.
        let mut jobs = Vec::new();
        for c in clusters {
            let scope = Scope {
                account: c.key.account.clone(),
                region: c.key.region.clone(),
                role_arn: c.role_arn.clone(),
            };
            if let Some((expected, actual)) = mismatched.get(&scope) {
                live.clusters.insert(
                    c.key.clone(),
                    ClusterObservation::AccountMismatch {
                        expected: expected.clone(),
                        actual: actual.clone(),
                    },
                );
                continue;
            }
            jobs.push((c.key.clone(), scope.clone(), self.clients(&scope).await));
        }
        let jobs = interleave(jobs, |(_, scope, _)| scope);
        let results = bounded(jobs, &limit, |(key, scope, clients)| async move {
            let obs = describe(&clients, &scope, &key.name, false).await;
            (key, obs)
        })
        .await;
        for (key, obs) in results {
            live.clusters.insert(key, obs?);
        }

        // What private access needs: the VPCs and cluster security groups of
        // clusters that want it, each read once however many clusters share it.
        let mut vpcs: BTreeMap<Scope, BTreeSet<String>> = BTreeMap::new();
        let mut groups: BTreeMap<Scope, BTreeSet<String>> = BTreeMap::new();
        for c in clusters.iter().filter(|c| c.endpoint.private_access) {
            let Some(ClusterObservation::Found(found)) = live.clusters.get(&c.key) else {
                continue;
            };
            let scope = Scope {
                account: c.key.account.clone(),
                region: c.key.region.clone(),
                role_arn: c.role_arn.clone(),
            };
            vpcs.entry(scope.clone())
                .or_default()
                .insert(found.vpc_id.clone());
            if let Some(sg) = &found.security_group_id {
                groups.entry(scope).or_default().insert(sg.clone());
            }
        }

        let mut attr_jobs = Vec::new();
        for (scope, ids) in &vpcs {
            let clients = self.clients(scope).await;
            for id in ids {
                for attr in [DnsAttribute::Support, DnsAttribute::Hostnames] {
                    attr_jobs.push((scope.clone(), clients.clone(), id.clone(), attr));
                }
            }
        }
        let attr_jobs = interleave(attr_jobs, |(scope, ..)| scope);
        let attrs = bounded(attr_jobs, &limit, |(scope, clients, id, attr)| async move {
            let v = read_vpc_attr(&clients, &id, attr).await;
            (scope, id, attr, v)
        })
        .await;
        let mut dns: BTreeMap<(Scope, String), (bool, bool)> = BTreeMap::new();
        for (scope, id, attr, v) in attrs {
            let entry = dns.entry((scope, id)).or_insert((false, false));
            match attr {
                DnsAttribute::Support => entry.0 = v?,
                DnsAttribute::Hostnames => entry.1 = v?,
            }
        }

        let region_jobs: Vec<(Scope, Clients, Vec<String>, Vec<String>)> = {
            let mut all: BTreeSet<Scope> = vpcs.keys().cloned().collect();
            all.extend(groups.keys().cloned());
            let mut v = Vec::new();
            for scope in all {
                let clients = self.clients(&scope).await;
                let vpc_ids = vpcs
                    .get(&scope)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default();
                let sg_ids = groups
                    .get(&scope)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default();
                v.push((scope, clients, vpc_ids, sg_ids));
            }
            v
        };
        let per_region = bounded(
            region_jobs,
            &limit,
            |(scope, clients, vpc_ids, sg_ids)| async move {
                let r: Result<_, ProviderError> = async {
                    let dhcp_of = if vpc_ids.is_empty() {
                        BTreeMap::new()
                    } else {
                        vpc_dhcp_ids(&clients, &vpc_ids).await?
                    };
                    let dhcp_ids: Vec<String> = dhcp_of
                        .values()
                        .cloned()
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    let servers = if dhcp_ids.is_empty() {
                        BTreeMap::new()
                    } else {
                        dhcp_servers(&clients, &dhcp_ids).await?
                    };
                    let sgs = if sg_ids.is_empty() {
                        BTreeMap::new()
                    } else {
                        security_groups(&clients, &sg_ids).await?
                    };
                    Ok((dhcp_of, servers, sgs))
                }
                .await;
                (scope, r)
            },
        )
        .await;
        for (scope, r) in per_region {
            let (dhcp_of, servers, sgs) = r?;
            for (vpc_id, dopt) in dhcp_of {
                let (support, hostnames) = dns
                    .get(&(scope.clone(), vpc_id.clone()))
                    .copied()
                    .unwrap_or_default();
                live.vpcs.insert(
                    VpcKey {
                        account: scope.account.clone(),
                        region: scope.region.clone(),
                        vpc_id,
                    },
                    LiveVpc {
                        dns_support: support,
                        dns_hostnames: hostnames,
                        domain_name_servers: servers.get(&dopt).cloned().unwrap_or_default(),
                        dhcp_options_id: dopt,
                    },
                );
            }
            for (group_id, g) in sgs {
                live.security_groups.insert(
                    SecurityGroupKey {
                        account: scope.account.clone(),
                        region: scope.region.clone(),
                        group_id,
                    },
                    g,
                );
            }
        }
        Ok(live)
    }

    async fn list_clusters(&self, scope: &Scope) -> Result<Vec<String>, ProviderError> {
        let c = self.clients(scope).await;
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            // 100 is EKS's largest page: the fewest calls for a big region.
            let out = c
                .eks
                .list_clusters()
                .max_results(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error("ListClusters", e))?;
            names.extend(out.clusters().iter().cloned());
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(names)
    }

    async fn describe_cluster(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<ClusterObservation, ProviderError> {
        let c = self.clients(scope).await;
        describe(&c, scope, name, true).await
    }

    async fn update_endpoint(
        &self,
        scope: &Scope,
        name: &str,
        settings: &EndpointSettings,
    ) -> Result<UpdateStart, ProviderError> {
        self.check_account(scope).await?;
        let c = self.clients(scope).await;
        let cfg = VpcConfigRequest::builder()
            .endpoint_public_access(settings.public_access)
            .endpoint_private_access(settings.private_access)
            .set_public_access_cidrs(
                settings
                    .public_access_cidrs
                    .as_ref()
                    .map(|set| set.iter().map(ToString::to_string).collect()),
            )
            .build();
        match c
            .eks
            .update_cluster_config()
            .name(name)
            .resources_vpc_config(cfg)
            .send()
            .await
        {
            Ok(out) => match out.update().and_then(|u| u.id()) {
                Some(id) => Ok(UpdateStart::Started(id.to_string())),
                None => Err(ProviderError::Transport {
                    operation: "UpdateClusterConfig".into(),
                    message: "the answer named no update id".into(),
                }),
            },
            Err(e) => {
                let err = sdk_error("UpdateClusterConfig", e);
                match &err {
                    ProviderError::Aws { code, message, .. }
                        if code == "InvalidParameterException"
                            && message
                                .starts_with("Cluster is already at the desired configuration") =>
                    {
                        Ok(UpdateStart::AlreadyConverged)
                    }
                    ProviderError::Aws { code, message, .. }
                        if code == "ResourceInUseException" =>
                    {
                        match running_update_id(message) {
                            Some(id) => Ok(UpdateStart::InUse(id)),
                            None => match in_progress_updates(&c, name).await?.into_iter().next() {
                                Some(id) => Ok(UpdateStart::InUse(id)),
                                None => Err(err),
                            },
                        }
                    }
                    _ => Err(err),
                }
            }
        }
    }

    async fn describe_update(
        &self,
        scope: &Scope,
        name: &str,
        update_id: &str,
    ) -> Result<UpdateState, ProviderError> {
        let c = self.clients(scope).await;
        describe_update(&c, name, update_id).await
    }

    async fn read_vpc(&self, scope: &Scope, vpc_id: &str) -> Result<LiveVpc, ProviderError> {
        let c = self.clients(scope).await;
        let support = read_vpc_attr(&c, vpc_id, DnsAttribute::Support).await?;
        let hostnames = read_vpc_attr(&c, vpc_id, DnsAttribute::Hostnames).await?;
        let dhcp = vpc_dhcp_ids(&c, &[vpc_id.to_string()]).await?;
        let dopt = dhcp.get(vpc_id).cloned().unwrap_or_default();
        let servers = if dopt.is_empty() {
            Vec::new()
        } else {
            dhcp_servers(&c, std::slice::from_ref(&dopt))
                .await?
                .remove(&dopt)
                .unwrap_or_default()
        };
        Ok(LiveVpc {
            dns_support: support,
            dns_hostnames: hostnames,
            dhcp_options_id: dopt,
            domain_name_servers: servers,
        })
    }

    async fn set_vpc_dns(
        &self,
        scope: &Scope,
        vpc_id: &str,
        attribute: DnsAttribute,
        value: bool,
    ) -> Result<(), ProviderError> {
        self.check_account(scope).await?;
        let c = self.clients(scope).await;
        let v = AttributeBooleanValue::builder().value(value).build();
        let req = c.ec2.modify_vpc_attribute().vpc_id(vpc_id);
        let req = match attribute {
            DnsAttribute::Support => req.enable_dns_support(v),
            DnsAttribute::Hostnames => req.enable_dns_hostnames(v),
        };
        req.send()
            .await
            .map_err(|e| sdk_error("ModifyVpcAttribute", e))?;
        Ok(())
    }

    async fn authorize_https_ingress(
        &self,
        scope: &Scope,
        group_id: &str,
        sources: &BTreeSet<AccessSource>,
    ) -> Result<IngressOutcome, ProviderError> {
        self.check_account(scope).await?;
        let c = self.clients(scope).await;
        let mut perm = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443);
        for source in sources {
            let cidr = match source {
                AccessSource::Cidr(net) => net.to_string(),
                AccessSource::SecurityGroup(_) => continue,
            };
            perm = if cidr.contains(':') {
                perm.ipv6_ranges(
                    Ipv6Range::builder()
                        .cidr_ipv6(cidr)
                        .description("eksgate: private endpoint")
                        .build(),
                )
            } else {
                perm.ip_ranges(
                    IpRange::builder()
                        .cidr_ip(cidr)
                        .description("eksgate: private endpoint")
                        .build(),
                )
            };
        }
        for g in sources.iter().filter_map(|s| match s {
            AccessSource::SecurityGroup(id) => Some(id),
            AccessSource::Cidr(_) => None,
        }) {
            perm = perm.user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id(g)
                    .description("eksgate: private endpoint")
                    .build(),
            );
        }
        match c
            .ec2
            .authorize_security_group_ingress()
            .group_id(group_id)
            .ip_permissions(perm.build())
            .send()
            .await
        {
            Ok(_) => Ok(IngressOutcome::Added),
            Err(e) => {
                let err = sdk_error("AuthorizeSecurityGroupIngress", e);
                if code_of(&err) == Some("InvalidPermission.Duplicate") {
                    Ok(IngressOutcome::AlreadyPresent)
                } else {
                    Err(err)
                }
            }
        }
    }
}

/// The update id in `... currently has update <id> in progress`.
fn running_update_id(message: &str) -> Option<String> {
    let rest = message.split("has update ").nth(1)?;
    let id = rest.split_whitespace().next()?;
    (!id.is_empty()).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_issued_round_robin_over_regions() {
        let scope = |r: &str| Scope {
            account: None,
            region: r.to_string(),
            role_arn: None,
        };
        let jobs = vec![
            (scope("a"), 1),
            (scope("a"), 2),
            (scope("a"), 3),
            (scope("b"), 4),
            (scope("c"), 5),
            (scope("c"), 6),
        ];
        let order: Vec<i32> = interleave(jobs, |(s, _)| s)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(order, vec![1, 4, 5, 2, 6, 3]);
        assert!(interleave(Vec::<(Scope, i32)>::new(), |(s, _)| s).is_empty());
    }

    #[test]
    fn finds_the_running_update_in_aws_message() {
        assert_eq!(
            running_update_id("Cannot EndpointAccessUpdate because cluster x currently has update 1f2e-33 in progress"),
            Some("1f2e-33".to_string())
        );
        assert_eq!(running_update_id("Cluster is busy"), None);
    }
}
