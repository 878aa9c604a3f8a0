//! The fleet read: how [`Provider::read`](super::Provider::read) turns a
//! [`ReadRequest`] into the fewest AWS calls, issued so a large fleet reads
//! fast without tripping the API rates. It owns the order and the sharing of
//! calls, not the calls themselves (those are single SDK calls in `aws`,
//! reached through [`FleetCalls`]), and it must not interpret AWS's answers
//! beyond putting them into [`Live`].
//!
//! - Accounts first: a pinned account that a cluster's credentials do not
//!   reach blocks that cluster before anything else is read for it.
//! - One `DescribeCluster` per cluster; two `DescribeVpcAttribute` per VPC
//!   that private access needs, however many clusters share it; batched
//!   `DescribeVpcs`, `DescribeDhcpOptions` and `DescribeSecurityGroups` per
//!   scope. A VPC or group is shared by the clusters of one scope, so each
//!   cluster's facts are read with its own credentials.
//! - The access entries of a cluster that goes private only with declared
//!   principals, once it was described and its mode lets them be listed.
//! - One `DescribeManagedPrefixLists` and one paged
//!   `GetManagedPrefixListEntries` per managed prefix list and scope,
//!   however many clusters name it, or security groups reference it (its
//!   `MaxEntries` counts against a group's quota; such a list that cannot
//!   be read, say for want of permission, is left out, and the group's
//!   quota counts its rules as the read saw them).
//! - Reads of many clusters are issued round-robin over scopes, so every
//!   region's rate is used at once instead of one region after another, and
//!   a quarter of `parallelism` calls run at once per scope (see
//!   [`reads_per_scope`]): AWS limits each account and region on its own, so
//!   ten calls in flight for the whole fleet left most of sixteen regions'
//!   rates unused (a 10,000-cluster plan over 16 regions took twice what the
//!   rates allow, never throttled).
//!   [`MAX_IN_FLIGHT`] bounds the calls of all scopes together.
//! - Every call goes as soon as what it needs is known, not phase after
//!   phase: a VPC's attributes once a cluster in it was described, batches
//!   as their ids come in. A phase that waited for its slowest call (a call
//!   throttled several times sleeps in its backoff) left the API rate
//!   unused meanwhile.
//! - The calls other calls wait for (`DescribeVpcs`, the DHCP options and
//!   the network reads, which need the scope's clusters and VPCs) go ahead
//!   of those queued before them, so a scope's last tokens go to DNS
//!   attributes while that chain runs: when they queued behind the
//!   attributes, a 10,000-cluster plan's busiest scopes ended on five calls
//!   one round trip after another (VPCs, groups, DHCP options, two
//!   route-table reads), up to 120 ms after their rate allowed.
//! - A call's task is spawned only when it may start, so a large fleet
//!   holds a few hundred calls' state at a time, not one per cluster.
//! - Accounts are checked for every scope at once (a role's account is
//!   asked once, see `aws`), not one scope after another.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;

use tokio::task::JoinSet;

use super::{DnsAttribute, NetworkReads, ProviderError, ReadRequest, Scope};
use crate::access::{AuthenticationMode, LiveAccess};
use crate::desired::ClusterKey;
use crate::live::{
    ClusterObservation, Live, LivePrefixList, LiveSecurityGroup, LiveVpc, PrefixListKey,
    SecurityGroupKey, VpcKey,
};
use crate::network::{LiveNetwork, ScopeReads};

/// The most calls in flight for all scopes together, whatever
/// `parallelism` per scope allows: far under the 1,024 open files a
/// process is commonly allowed, and more than the rates of any fleet need.
pub(super) const MAX_IN_FLIGHT: usize = 512;

/// The reads in flight per scope for a `parallelism`: a quarter of it
/// (three for the default ten). A read is a single call, and a few in
/// flight already outrun a scope's rate: ten per scope made a 1,000-cluster
/// plan over 4 regions throttle five times as often and take 1.2 times as
/// long, ten for the whole fleet (the old limit) left sixteen regions'
/// rates unused. Two (a fifth) made a 10,000-cluster plan over 80 scopes
/// throttle 330–360 times instead of 2,600–2,950 and hold 4 MB less, but a
/// 1,000-cluster plan over the same 80 scopes, where latency and not the
/// rates bounds the read, took 0.48 s instead of 0.33 s.
pub(super) fn reads_per_scope(parallelism: usize) -> usize {
    parallelism.div_ceil(4).max(1)
}

/// How many ids one EC2 `Describe*` call asks for.
pub(super) const BATCH: usize = 100;

/// What a VPC without a DHCP options set names as its set: no set to ask
/// about (it uses the Amazon resolver), so it never takes a call.
pub(super) const NO_DHCP_OPTIONS: &str = "default";

/// The single calls the fleet read is made of. The AWS provider implements
/// them with the SDK; the tests below count them in memory. The calls that
/// run concurrently take an owned client handle (`Conn`), so they can run
/// as tasks of their own.
pub(super) trait FleetCalls: Send + Sync + 'static {
    /// The clients of one scope, cheap to clone.
    type Conn: Clone + Send + Sync + 'static;

    fn connect(&self, scope: &Scope) -> impl Future<Output = Self::Conn> + Send;

    /// Fails with [`ProviderError::AccountMismatch`] when the scope's
    /// credentials act in another account than it pins.
    fn check_account(
        &self,
        scope: &Scope,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send;

    /// `DescribeCluster`, and the updates in progress of a cluster that is
    /// `UPDATING`.
    fn describe_cluster(
        conn: Self::Conn,
        scope: Scope,
        name: String,
    ) -> impl Future<Output = Result<ClusterObservation, ProviderError>> + Send + 'static;

    /// One `DescribeVpcAttribute`.
    fn vpc_attribute(
        conn: Self::Conn,
        vpc_id: String,
        attribute: DnsAttribute,
    ) -> impl Future<Output = Result<bool, ProviderError>> + Send + 'static;

    /// One `DescribeVpcs` for at most [`BATCH`] ids: their DHCP options ids
    /// and CIDR blocks.
    fn vpc_dhcp_options(
        conn: &Self::Conn,
        vpc_ids: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, VpcDescription>, ProviderError>> + Send;

    /// The domain name servers of DHCP options sets: one
    /// `DescribeDhcpOptions` for at most [`BATCH`] ids besides
    /// [`NO_DHCP_OPTIONS`], which is answered without a call.
    fn dhcp_servers(
        conn: &Self::Conn,
        dhcp_ids: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<String>>, ProviderError>> + Send;

    /// One `DescribeSecurityGroups` for at most [`BATCH`] ids.
    fn security_groups(
        conn: &Self::Conn,
        group_ids: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, LiveSecurityGroup>, ProviderError>> + Send;

    /// `ListAccessEntries` (every page) and the entries of `principals`; a
    /// failure is the cluster's (`LiveAccess::NotRead`), not the read's.
    fn cluster_access(
        conn: Self::Conn,
        name: String,
        principals: Vec<String>,
    ) -> impl Future<Output = LiveAccess> + Send + 'static {
        let _ = (conn, name, principals);
        std::future::ready(LiveAccess::NotRead {
            code: String::new(),
            message: "not supported".into(),
        })
    }

    /// One managed prefix list: `DescribeManagedPrefixLists` for its size
    /// and family, then `GetManagedPrefixListEntries` (every page); `None`
    /// when EC2 lists no such list.
    fn prefix_list(
        conn: Self::Conn,
        id: String,
    ) -> impl Future<Output = Result<Option<LivePrefixList>, ProviderError>> + Send + 'static {
        let _ = conn;
        std::future::ready(Err(ProviderError::Transport {
            operation: "DescribeManagedPrefixLists".into(),
            message: format!("prefix list `{id}`: not supported"),
        }))
    }

    /// The network findings' reads of one scope (see `provider::network`).
    fn network(
        conn: Self::Conn,
        scope: Scope,
        reads: ScopeReads,
    ) -> impl Future<Output = Result<LiveNetwork, ProviderError>> + Send + 'static {
        let _ = (conn, scope, reads);
        std::future::ready(Err(ProviderError::Transport {
            operation: "DescribeRouteTables".into(),
            message: "not supported".into(),
        }))
    }
}

/// What `DescribeVpcs` says of one VPC.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct VpcDescription {
    pub dhcp_options_id: String,
    /// The IPv4 blocks in state `associated`.
    pub cidr_blocks: Vec<ipnet::IpNet>,
}

/// Reads what the planner needs for `request`, at most
/// [`reads_per_scope`]`(parallelism)` calls at once per scope.
///
/// With `network`, each scope's network reads are asked for as soon as its
/// clusters and their VPCs are read, and run within the same limits: a
/// scope whose read ends early does not wait for the slowest scope's before
/// its last calls.
pub(super) async fn read<P: FleetCalls>(
    calls: &P,
    request: ReadRequest,
    parallelism: usize,
    network: Option<&NetworkReads<'_>>,
) -> Result<Live, ProviderError> {
    // Every declared cluster has its entry from the start, in order, and
    // each answer only fills its own: answers come in any order, and a map
    // grown from them would have nodes about half full at the run's peak.
    // An entry is filled (or the read fails) before the read returns.
    let mut live = Live {
        clusters: request
            .clusters
            .iter()
            .map(|c| (c.key.clone(), ClusterObservation::NotFound))
            .collect(),
        ..Live::default()
    };

    // Accounts first: a pinned account that the credentials do not reach
    // blocks its clusters before anything else is read for them. Every
    // scope at once: the base credentials' account is one question (a
    // role's is the one its ARN names), and the clusters are queued while
    // it is asked.
    let scopes: BTreeSet<Scope> = request.clusters.iter().map(|c| c.scope()).collect();
    let checks = futures_util::future::join_all(
        scopes
            .iter()
            .filter(|s| s.account.is_some())
            .map(|scope| async move { (scope, calls.check_account(scope).await) }),
    );
    // The scopes in the order the request first names them, each with its
    // clusters in order.
    let queued = async {
        // A role's first client set asks STS for the role's credentials
        // (see `clients`): one scope of each role is connected first, so
        // every role is assumed while its clusters are queued, not when
        // their first call is sent. `plan` and `apply` have built these
        // sets already, before their request (`Provider::prepare`, with the
        // same first scope of each role): then each is found built. A read
        // asked for directly (`import`) builds them here.
        let mut roles: BTreeSet<&str> = BTreeSet::new();
        for c in &request.clusters {
            if let Some(role) = c.role_arn.as_deref() {
                if roles.insert(role) {
                    calls.connect(&c.scope()).await;
                }
            }
        }
        let mut index: BTreeMap<Scope, usize> = BTreeMap::new();
        let mut reads: Vec<ScopeRead<P::Conn>> = Vec::new();
        let mut sched: Scheduler<Job, Done> = Scheduler::new(Limit {
            per_scope: reads_per_scope(parallelism),
            total: MAX_IN_FLIGHT,
        });
        // The request is let go as its clusters are queued: each job takes
        // its cluster's key and principals (a 10,000-cluster request is
        // 2.5 MB, which the read held to its end, the run's peak).
        for c in request.clusters {
            let scope = c.scope();
            let q = match index.get(&scope) {
                Some(&q) => q,
                None => {
                    let conn = calls.connect(&scope).await;
                    index.insert(scope.clone(), reads.len());
                    reads.push(ScopeRead::new(scope, conn));
                    reads.len() - 1
                }
            };
            // The managed prefix lists the cluster names: each read once per
            // account and region, with the credentials of the first cluster
            // that names it.
            for id in c.prefix_lists {
                if let Some(job) = reads[q].list_job(id, false) {
                    sched.push(q, job);
                }
            }
            reads[q].clusters_left += 1;
            sched.push(
                q,
                Job::Cluster {
                    key: c.key,
                    wants_private: c.wants_private,
                    principals: c.access_principals,
                },
            );
        }
        (reads, sched)
    };
    let (checks, (mut reads, mut sched)) = futures_util::future::join(checks, queued).await;
    let mut mismatched: BTreeMap<Scope, (String, String)> = BTreeMap::new();
    for (scope, checked) in checks {
        match checked {
            Ok(()) => {}
            Err(ProviderError::AccountMismatch { expected, actual }) => {
                mismatched.insert(scope.clone(), (expected, actual));
            }
            Err(other) => return Err(other),
        }
    }
    // A scope in another account than its manifest's reads nothing: its
    // queue is let go, and each of its clusters says why.
    for (q, read) in reads.iter_mut().enumerate() {
        let Some((expected, actual)) = mismatched.get(&read.scope) else {
            continue;
        };
        for job in sched.take_queue(q) {
            if let Job::Cluster { key, .. } = job {
                live.clusters.insert(
                    key,
                    ClusterObservation::AccountMismatch {
                        expected: expected.clone(),
                        actual: actual.clone(),
                    },
                );
            }
        }
        read.clusters_left = 0;
        read.network_asked = true;
        read.finished = true;
    }

    // Every call as soon as what it needs is known: a VPC's attributes once
    // a cluster in it was described, its `DescribeVpcs` and the groups in
    // batches as their ids come in, the DHCP options once a `DescribeVpcs`
    // named them. No phase waits for another scope's calls, or for a slow
    // call of its own scope that the next calls do not need.
    //
    // A scope's last calls are the ones others wait for: a `DescribeVpcs`,
    // the DHCP options it names and the network reads go ahead of the
    // calls queued before them (the DNS attributes of the last VPCs, which
    // nothing waits for), so the scope's rate is spent on those while the
    // chain runs, not after it.
    loop {
        sched.start(|q, job| run_job::<P>(reads[q].conn.clone(), reads[q].scope.clone(), job));
        let Some((q, done)) = sched.next().await else {
            break;
        };
        let read = &mut reads[q];
        let mut next = read.learn(done, &mut live)?;
        // Once a scope's clusters and VPCs are in, its network reads, which
        // need only those, are asked for.
        if !read.network_asked && read.clusters_and_vpcs_in() {
            read.network_asked = true;
            if let Some(wanted) = network.map(|n| n(&read.scope, &live)) {
                if !wanted.is_empty() {
                    next.push(Job::Network { reads: wanted });
                }
            }
        }
        for job in next {
            if job.is_awaited() {
                sched.push_front(q, job);
            } else {
                sched.push(q, job);
            }
        }
        // A scope's last answer leaves it idle: its VPCs' DNS attributes
        // and servers go into `live` then.
        if !read.finished && sched.idle(q) {
            read.finish(&mut live);
        }
    }
    // The groups' answers came in any order, which leaves the map's nodes
    // about half full; the planner holds them at the run's peak, so they
    // are rebuilt into full nodes.
    live.security_groups = full_nodes(std::mem::take(&mut live.security_groups));
    Ok(live)
}

/// `map` rebuilt into full nodes, each old node freed as its entries move:
/// `collect` would first copy every entry into a vector, which the rebuild
/// of 10,000 groups held (1.6 MB) at the end of the read, a run's peak.
/// `append` builds a new tree from the two maps' sorted entries, unless
/// one of them is empty (then it swaps them), so the first entry goes
/// first on its own.
fn full_nodes<K: Ord, V>(mut map: BTreeMap<K, V>) -> BTreeMap<K, V> {
    let Some((key, value)) = map.pop_first() else {
        return map;
    };
    let mut full = BTreeMap::from([(key, value)]);
    full.append(&mut map);
    full
}

/// One call of the fleet read (or two, for `DescribeVpcs` of unknown ids).
enum Job {
    Cluster {
        key: ClusterKey,
        wants_private: bool,
        /// The `private_access_principals` whose entries are read once the
        /// cluster is described (empty: none).
        principals: Vec<String>,
    },
    /// `ListAccessEntries` and the entries of the declared principals.
    Access {
        key: ClusterKey,
        principals: Vec<String>,
    },
    /// One managed prefix list, with its entries; `quota_only` when only a
    /// group's rules reference it (its failure fails nothing).
    PrefixList {
        key: PrefixListKey,
        quota_only: bool,
    },
    Attribute {
        vpc_id: String,
        attribute: DnsAttribute,
    },
    Vpcs {
        ids: Vec<String>,
    },
    Dhcp {
        ids: Vec<String>,
    },
    Groups {
        ids: Vec<String>,
    },
    /// The network findings' reads of the scope, once its own are done.
    Network {
        reads: ScopeReads,
    },
}

impl Job {
    /// Whether other calls of the scope wait for this one's answer.
    fn is_awaited(&self) -> bool {
        matches!(
            self,
            Job::Vpcs { .. } | Job::Dhcp { .. } | Job::Network { .. }
        )
    }
}

/// A job's answer.
enum Done {
    Cluster {
        key: ClusterKey,
        wants_private: bool,
        principals: Vec<String>,
        /// Boxed: the other answers are much smaller.
        observed: Box<Result<ClusterObservation, ProviderError>>,
    },
    Access {
        key: ClusterKey,
        access: Box<LiveAccess>,
    },
    PrefixList {
        key: PrefixListKey,
        quota_only: bool,
        read: Result<Option<LivePrefixList>, ProviderError>,
    },
    Attribute {
        vpc_id: String,
        attribute: DnsAttribute,
        value: Result<bool, ProviderError>,
    },
    Vpcs(Result<BTreeMap<String, VpcDescription>, ProviderError>),
    Dhcp(Result<BTreeMap<String, Vec<String>>, ProviderError>),
    Groups(Result<BTreeMap<String, LiveSecurityGroup>, ProviderError>),
    Network(Result<LiveNetwork, ProviderError>),
}

/// Each call's future is boxed: an SDK call's state is about 15 KB, and a
/// task holding it inline was copied whole each time it was spawned, moved
/// and joined (a fifth of a 1,000-cluster plan's instructions went to those
/// copies).
async fn run_job<P: FleetCalls>(conn: P::Conn, scope: Scope, job: Job) -> Done {
    match job {
        Job::Cluster {
            key,
            wants_private,
            principals,
        } => {
            let observed = Box::pin(P::describe_cluster(conn, scope, key.name.clone())).await;
            Done::Cluster {
                key,
                wants_private,
                principals,
                observed: Box::new(observed),
            }
        }
        Job::Access { key, principals } => {
            let access = Box::pin(P::cluster_access(conn, key.name.clone(), principals)).await;
            Done::Access {
                key,
                access: Box::new(access),
            }
        }
        Job::PrefixList { key, quota_only } => {
            let read = Box::pin(P::prefix_list(conn, key.id.clone())).await;
            Done::PrefixList {
                key,
                quota_only,
                read,
            }
        }
        Job::Attribute { vpc_id, attribute } => {
            let value = Box::pin(P::vpc_attribute(conn, vpc_id.clone(), attribute)).await;
            Done::Attribute {
                vpc_id,
                attribute,
                value,
            }
        }
        Job::Vpcs { ids } => Done::Vpcs(Box::pin(P::vpc_dhcp_options(&conn, &ids)).await),
        Job::Dhcp { ids } => Done::Dhcp(Box::pin(P::dhcp_servers(&conn, &ids)).await),
        Job::Groups { ids } => Done::Groups(Box::pin(P::security_groups(&conn, &ids)).await),
        Job::Network { reads } => Done::Network(Box::pin(P::network(conn, scope, reads)).await),
    }
}

/// What the read of one scope has learnt, and what it still waits for.
struct ScopeRead<C> {
    scope: Scope,
    conn: C,
    clusters_left: usize,
    /// Prefix lists the clusters name, asked for and not answered yet: the
    /// network reads take their entries as sources.
    lists_left: usize,
    /// The prefix lists asked for: those the clusters name, and those the
    /// groups' rules reference (their `MaxEntries` count against a
    /// group's quota).
    lists_seen: BTreeSet<String>,
    /// `DescribeVpcs` calls asked for and not answered yet.
    vpcs_asked: usize,
    /// Its network reads were asked for (or found not wanted).
    network_asked: bool,
    /// Every answer of its own reads is in, and its VPCs in `live` have
    /// their DNS attributes and servers.
    finished: bool,
    vpcs_seen: BTreeSet<String>,
    vpcs_pending: Vec<String>,
    groups_seen: BTreeSet<String>,
    groups_pending: Vec<String>,
    dhcp_seen: BTreeSet<String>,
    dns: BTreeMap<String, (bool, bool)>,
    /// The VPCs described and put into `live`, with their DHCP options.
    described: Vec<(String, String)>,
    servers: BTreeMap<String, Vec<String>>,
}

impl<C> ScopeRead<C> {
    fn new(scope: Scope, conn: C) -> Self {
        ScopeRead {
            scope,
            conn,
            clusters_left: 0,
            lists_left: 0,
            lists_seen: BTreeSet::new(),
            vpcs_asked: 0,
            network_asked: false,
            finished: false,
            vpcs_seen: BTreeSet::new(),
            vpcs_pending: Vec::new(),
            groups_seen: BTreeSet::new(),
            groups_pending: Vec::new(),
            dhcp_seen: BTreeSet::new(),
            dns: BTreeMap::new(),
            described: Vec::new(),
            servers: BTreeMap::new(),
        }
    }

    /// Takes in an answer; returns the calls it makes possible.
    fn learn(&mut self, done: Done, live: &mut Live) -> Result<Vec<Job>, ProviderError> {
        let mut next = Vec::new();
        match done {
            Done::Cluster {
                key,
                wants_private,
                principals,
                observed,
            } => {
                let observed = (*observed)?;
                self.clusters_left -= 1;
                // Who can still use the Kubernetes API: the entries of a
                // cluster with declared principals, in a mode whose entries
                // can be listed (a `CONFIG_MAP` cluster, or one that names
                // no mode, answers `InvalidRequestException`; the planner
                // says why it is not checked).
                if let ClusterObservation::Found(found) = &observed {
                    let listable = found
                        .authentication_mode
                        .as_ref()
                        .is_some_and(|m| *m != AuthenticationMode::ConfigMap);
                    if !principals.is_empty() && listable {
                        next.push(Job::Access {
                            key: key.clone(),
                            principals,
                        });
                    }
                }
                if let (true, ClusterObservation::Found(found)) = (wants_private, &observed) {
                    if self.vpcs_seen.insert(found.vpc_id.clone()) {
                        for attribute in [DnsAttribute::Support, DnsAttribute::Hostnames] {
                            next.push(Job::Attribute {
                                vpc_id: found.vpc_id.clone(),
                                attribute,
                            });
                        }
                        self.vpcs_pending.push(found.vpc_id.clone());
                    }
                    if let Some(sg) = &found.security_group_id {
                        if self.groups_seen.insert(sg.clone()) {
                            self.groups_pending.push(sg.clone());
                        }
                    }
                }
                live.clusters.insert(key, observed);
                let last = self.clusters_left == 0;
                if self.vpcs_pending.len() >= BATCH || (last && !self.vpcs_pending.is_empty()) {
                    self.vpcs_asked += 1;
                    next.push(Job::Vpcs {
                        ids: std::mem::take(&mut self.vpcs_pending),
                    });
                }
                if self.groups_pending.len() >= BATCH || (last && !self.groups_pending.is_empty()) {
                    next.push(Job::Groups {
                        ids: std::mem::take(&mut self.groups_pending),
                    });
                }
            }
            Done::Attribute {
                vpc_id,
                attribute,
                value,
            } => {
                let value = value?;
                let entry = self.dns.entry(vpc_id).or_insert((false, false));
                match attribute {
                    DnsAttribute::Support => entry.0 = value,
                    DnsAttribute::Hostnames => entry.1 = value,
                }
            }
            Done::Access { key, access } => {
                live.access.insert(key, *access);
            }
            Done::PrefixList {
                key,
                quota_only,
                read,
            } => {
                if !quota_only {
                    self.lists_left -= 1;
                }
                // A list EC2 does not know is kept as `None` (the planner
                // blocks its clusters); any other failure fails the read,
                // unless only a group's rules reference the list: its
                // rules are then counted as the read saw them.
                let read = match read {
                    Ok(list) => list,
                    Err(ProviderError::Aws { code, .. })
                        if code.eq_ignore_ascii_case("InvalidPrefixListID.NotFound") =>
                    {
                        None
                    }
                    Err(e) if quota_only => {
                        tracing::debug!(list = %key.id, error = %e, "prefix list not read; its rules count as one");
                        return Ok(next);
                    }
                    Err(e) => return Err(e),
                };
                live.prefix_lists.insert(key, read);
            }
            Done::Vpcs(answer) => {
                self.vpcs_asked -= 1;
                let mut new = Vec::new();
                // In `live` at once, for the network reads; the DNS
                // attributes and servers are filled in when the scope ends.
                for (vpc_id, described) in answer? {
                    let VpcDescription {
                        dhcp_options_id,
                        cidr_blocks,
                    } = described;
                    if self.dhcp_seen.insert(dhcp_options_id.clone()) {
                        new.push(dhcp_options_id.clone());
                    }
                    live.vpcs.insert(
                        self.vpc_key(&vpc_id),
                        LiveVpc {
                            dns_support: false,
                            dns_hostnames: false,
                            domain_name_servers: Vec::new(),
                            dhcp_options_id: dhcp_options_id.clone(),
                            cidr_blocks,
                        },
                    );
                    self.described.push((vpc_id, dhcp_options_id));
                }
                for ids in dhcp_batches(&new) {
                    next.push(Job::Dhcp { ids });
                }
            }
            Done::Dhcp(answer) => self.servers.extend(answer?),
            Done::Network(answer) => live.network.merge(answer?),
            Done::Groups(answer) => {
                let answer = answer?;
                for id in answer.values().flat_map(|g| &g.inbound_prefix_lists) {
                    next.extend(self.list_job(id.clone(), true));
                }
                for (group_id, g) in answer {
                    live.security_groups.insert(
                        SecurityGroupKey {
                            account: self.scope.account.clone(),
                            region: self.scope.region.clone(),
                            group_id,
                        },
                        g,
                    );
                }
            }
        }
        Ok(next)
    }

    /// The read of prefix list `id` in this scope, unless asked for
    /// already (the lists clusters name are asked for first).
    fn list_job(&mut self, id: String, quota_only: bool) -> Option<Job> {
        if !self.lists_seen.insert(id.clone()) {
            return None;
        }
        // A list only a group's rules reference is no source: the network
        // reads do not wait for it.
        if !quota_only {
            self.lists_left += 1;
        }
        Some(Job::PrefixList {
            key: PrefixListKey {
                account: self.scope.account.clone(),
                region: self.scope.region.clone(),
                id,
            },
            quota_only,
        })
    }

    /// Whether its clusters, their VPCs and the prefix lists they name are
    /// read (or its last cluster answered and no VPC was wanted): what its
    /// network reads need.
    fn clusters_and_vpcs_in(&self) -> bool {
        self.clusters_left == 0
            && self.lists_left == 0
            && self.vpcs_pending.is_empty()
            && self.vpcs_asked == 0
    }

    fn vpc_key(&self, vpc_id: &str) -> VpcKey {
        VpcKey {
            account: self.scope.account.clone(),
            region: self.scope.region.clone(),
            vpc_id: vpc_id.to_string(),
        }
    }

    /// Gives the scope's VPCs in `live` their DNS attributes and servers,
    /// once every answer is in.
    fn finish(&mut self, live: &mut Live) {
        self.finished = true;
        for (vpc_id, dopt) in std::mem::take(&mut self.described) {
            let Some(vpc) = live.vpcs.get_mut(&self.vpc_key(&vpc_id)) else {
                continue;
            };
            let (support, hostnames) = self.dns.get(&vpc_id).copied().unwrap_or_default();
            vpc.dns_support = support;
            vpc.dns_hostnames = hostnames;
            vpc.domain_name_servers = self.servers.get(&dopt).cloned().unwrap_or_default();
        }
    }
}

/// DHCP options ids in batches of [`BATCH`] real ids; [`NO_DHCP_OPTIONS`]
/// rides along with the last batch, since it takes no call.
fn dhcp_batches(ids: &[String]) -> Vec<Vec<String>> {
    let (none, real): (Vec<String>, Vec<String>) =
        ids.iter().cloned().partition(|d| d == NO_DHCP_OPTIONS);
    let mut batches: Vec<Vec<String>> = real.chunks(BATCH).map(<[String]>::to_vec).collect();
    if !none.is_empty() {
        match batches.last_mut() {
            Some(last) => last.extend(none),
            None => batches.push(none),
        }
    }
    batches
}

/// How many calls the [`Scheduler`] lets run at once.
#[derive(Clone, Copy, Debug)]
struct Limit {
    per_scope: usize,
    total: usize,
}

/// Runs jobs of many scopes, at most `limit.per_scope` at once per scope
/// and `limit.total` in all, started round-robin over the scopes (so a fleet
/// listed region by region uses every region's API rate at once), each
/// scope's jobs in the order they were queued. A job is made into a task
/// only when it may start, so a large fleet holds a few hundred calls'
/// state at a time, not one per cluster.
struct Scheduler<J, R> {
    queues: Vec<VecDeque<J>>,
    in_flight: Vec<usize>,
    set: JoinSet<(usize, R)>,
    /// The scope to look at first: the one after the last that started a
    /// job.
    turn: usize,
    limit: Limit,
}

impl<J, R: Send + 'static> Scheduler<J, R> {
    fn new(limit: Limit) -> Self {
        Scheduler {
            queues: Vec::new(),
            in_flight: Vec::new(),
            set: JoinSet::new(),
            turn: 0,
            limit,
        }
    }

    /// Queues `job` for scope `q` (scopes are numbered from 0 as they come).
    fn push(&mut self, q: usize, job: J) {
        self.queue(q).push_back(job);
    }

    /// Queues `job` for scope `q` ahead of the jobs already queued there.
    fn push_front(&mut self, q: usize, job: J) {
        self.queue(q).push_front(job);
    }

    /// Takes every job queued for scope `q`, which starts none of them.
    fn take_queue(&mut self, q: usize) -> VecDeque<J> {
        std::mem::take(self.queue(q))
    }

    fn queue(&mut self, q: usize) -> &mut VecDeque<J> {
        while self.queues.len() <= q {
            self.queues.push(VecDeque::new());
            self.in_flight.push(0);
        }
        &mut self.queues[q]
    }

    /// Starts what the limits allow, one job of each scope in turn.
    fn start<F, Fut>(&mut self, mut f: F)
    where
        F: FnMut(usize, J) -> Fut,
        Fut: Future<Output = R> + Send + 'static,
    {
        let n = self.queues.len();
        // A round that starts nothing ends it: at most `jobs + 1` rounds.
        loop {
            let mut started = false;
            let base = self.turn;
            for k in 0..n {
                if self.set.len() >= self.limit.total {
                    return;
                }
                let q = (base + k) % n;
                if self.in_flight[q] >= self.limit.per_scope {
                    continue;
                }
                if let Some(job) = self.queues[q].pop_front() {
                    // A scope's clusters fill its queue once, at the start;
                    // what they leave when it empties is let go (at the
                    // end of a 10,000-cluster read, 1 MB of empty queues).
                    if self.queues[q].is_empty() {
                        self.queues[q] = VecDeque::new();
                    }
                    let fut = f(q, job);
                    self.in_flight[q] += 1;
                    started = true;
                    self.turn = (q + 1) % n;
                    self.set.spawn(async move { (q, fut.await) });
                }
            }
            if !started {
                return;
            }
        }
    }

    /// Whether scope `q` has nothing queued and nothing running.
    fn idle(&self, q: usize) -> bool {
        self.queues[q].is_empty() && self.in_flight[q] == 0
    }

    /// The next job to end, with its scope; `None` when none runs.
    async fn next(&mut self) -> Option<(usize, R)> {
        loop {
            match self.set.join_next().await? {
                Ok((q, r)) => {
                    self.in_flight[q] -= 1;
                    return Some((q, r));
                }
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Tasks are never cancelled while the scheduler lives.
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::desired::ClusterKey;
    use crate::endpoint::EndpointSettings;
    use crate::live::{ClusterStatus, LiveCluster};
    use crate::provider::ClusterTarget;
    use crate::set::SortedSet;

    /// Runs `jobs` (scope, number) through a scheduler, returning the
    /// numbers in the order they started and in the order they ended.
    async fn schedule(jobs: Vec<(usize, u64)>, limit: Limit, pause_ms: u64) -> Vec<u64> {
        let mut sched: Scheduler<u64, u64> = Scheduler::new(limit);
        for (q, n) in jobs {
            sched.push(q, n);
        }
        let mut started = Vec::new();
        loop {
            sched.start(|_, n| {
                started.push(n);
                async move {
                    tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
                    n
                }
            });
            if sched.next().await.is_none() {
                return started;
            }
        }
    }

    #[tokio::test]
    async fn reads_are_issued_round_robin_over_regions() {
        let jobs = vec![(0, 1), (0, 2), (0, 3), (1, 4), (2, 5), (2, 6)];
        let limit = Limit {
            per_scope: 1,
            total: 1,
        };
        assert_eq!(schedule(jobs, limit, 0).await, vec![1, 4, 5, 2, 6, 3]);
        assert!(schedule(Vec::new(), limit, 0).await.is_empty());
    }

    #[test]
    fn reads_keep_a_quarter_of_parallelism_in_flight_per_scope() {
        let per_scope: Vec<usize> = [1, 4, 5, 10, 13, 256]
            .into_iter()
            .map(reads_per_scope)
            .collect();
        assert_eq!(per_scope, [1, 1, 2, 3, 4, 64]);
    }

    /// Each scope has its own limit of calls in flight, and all together
    /// stay within the total.
    #[tokio::test]
    async fn calls_in_flight_are_limited_per_scope_and_in_all() {
        for (per_scope, total, scopes) in [(3, 100, 4), (3, 5, 4), (1, 100, 2)] {
            let mut sched: Scheduler<usize, usize> = Scheduler::new(Limit { per_scope, total });
            for i in 0..40 {
                sched.push(i % scopes, i);
            }
            let mut now = vec![0usize; scopes];
            let (mut peak, mut peak_all) = (vec![0usize; scopes], 0);
            loop {
                sched.start(|q, _| async move {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    q
                });
                // What runs now: started minus ended, per scope.
                for (q, n) in now.iter_mut().enumerate() {
                    *n = sched.in_flight[q];
                    peak[q] = peak[q].max(*n);
                }
                peak_all = peak_all.max(now.iter().sum());
                if sched.next().await.is_none() {
                    break;
                }
            }
            assert!(peak.iter().all(|&n| n <= per_scope), "{peak:?}");
            if total >= per_scope * scopes {
                assert!(peak.iter().all(|&n| n == per_scope), "{peak:?}");
            }
            assert_eq!(peak_all, (per_scope * scopes).min(total));
        }
    }

    #[test]
    fn a_map_rebuilt_into_full_nodes_keeps_every_entry() {
        // Keys inserted out of order, as the groups' answers come.
        let map: BTreeMap<u32, String> = (0..2000u32)
            .map(|i| (i * 7919 % 2003, i.to_string()))
            .collect();
        assert_eq!(full_nodes(map.clone()), map);
        assert_eq!(full_nodes(BTreeMap::<u32, u32>::new()), BTreeMap::new());
        let one = BTreeMap::from([(1, 1)]);
        assert_eq!(full_nodes(one.clone()), one);
    }

    #[test]
    fn dhcp_batches_never_spend_a_call_on_the_default_set() {
        let ids = |n: usize| (0..n).map(|i| format!("dopt-{i:03}")).collect::<Vec<_>>();
        let sizes = |v: Vec<String>| {
            dhcp_batches(&v)
                .iter()
                .map(|b| (b.len(), b.iter().any(|d| d == NO_DHCP_OPTIONS)))
                .collect::<Vec<_>>()
        };
        let with_default = |n: usize| {
            let mut v = ids(n);
            v.insert(0, NO_DHCP_OPTIONS.to_string());
            v
        };
        assert_eq!(sizes(ids(0)), vec![]);
        assert_eq!(sizes(with_default(0)), vec![(1, true)]);
        assert_eq!(sizes(ids(3)), vec![(3, false)]);
        assert_eq!(sizes(ids(101)), vec![(100, false), (1, false)]);
        assert_eq!(sizes(with_default(100)), vec![(101, true)]);
    }

    /// Clusters by name: (vpc, security group); the account every
    /// credentials act in; and every call made, with the scope's role.
    struct Counting {
        clusters: BTreeMap<String, (String, String)>,
        actual_account: String,
        calls: Arc<Mutex<Vec<String>>>,
    }

    type Conn = (
        Scope,
        Arc<Mutex<Vec<String>>>,
        BTreeMap<String, (String, String)>,
    );

    fn log(conn: &Conn, call: String) {
        let role = conn.0.role_arn.as_deref().unwrap_or("base");
        conn.1.lock().unwrap().push(format!("{call} as {role}"));
    }

    impl FleetCalls for Counting {
        type Conn = Conn;

        async fn connect(&self, scope: &Scope) -> Conn {
            (scope.clone(), self.calls.clone(), self.clusters.clone())
        }

        async fn check_account(&self, scope: &Scope) -> Result<(), ProviderError> {
            match &scope.account {
                Some(a) if *a != self.actual_account => Err(ProviderError::AccountMismatch {
                    expected: a.clone(),
                    actual: self.actual_account.clone(),
                }),
                _ => Ok(()),
            }
        }

        async fn describe_cluster(
            conn: Conn,
            scope: Scope,
            name: String,
        ) -> Result<ClusterObservation, ProviderError> {
            log(&conn, format!("DescribeCluster {name}"));
            if name.starts_with("slow") {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                log(&conn, format!("DescribeCluster {name} answered"));
            }
            let Some((vpc, sg)) = conn.2.get(&name) else {
                return Ok(ClusterObservation::NotFound);
            };
            // `a` has access entries; `b` names no mode (`CONFIG_MAP`).
            let authentication_mode =
                (name == "a").then_some(crate::access::AuthenticationMode::ApiAndConfigMap);
            Ok(ClusterObservation::Found(LiveCluster {
                network: Default::default(),
                key: ClusterKey {
                    account: scope.account.clone(),
                    region: scope.region.clone(),
                    name,
                },
                arn: String::new(),
                status: ClusterStatus::Active,
                vpc_id: vpc.clone(),
                security_group_id: Some(sg.clone()),
                endpoint: EndpointSettings::new(true, false).with_cidrs(Some(SortedSet::new())),
                tags: Default::default(),
                updates_in_progress: Vec::new(),
                authentication_mode,
            }))
        }

        async fn vpc_attribute(
            conn: Conn,
            vpc_id: String,
            attribute: DnsAttribute,
        ) -> Result<bool, ProviderError> {
            log(
                &conn,
                format!("DescribeVpcAttribute {vpc_id} {attribute:?}"),
            );
            Ok(true)
        }

        async fn vpc_dhcp_options(
            conn: &Conn,
            vpc_ids: &[String],
        ) -> Result<BTreeMap<String, VpcDescription>, ProviderError> {
            log(conn, format!("DescribeVpcs {}", vpc_ids.join(",")));
            Ok(vpc_ids
                .iter()
                .map(|v| {
                    (
                        v.clone(),
                        VpcDescription {
                            dhcp_options_id: NO_DHCP_OPTIONS.to_string(),
                            cidr_blocks: Vec::new(),
                        },
                    )
                })
                .collect())
        }

        async fn dhcp_servers(
            _conn: &Conn,
            dhcp_ids: &[String],
        ) -> Result<BTreeMap<String, Vec<String>>, ProviderError> {
            Ok(dhcp_ids
                .iter()
                .map(|d| (d.clone(), vec!["AmazonProvidedDNS".to_string()]))
                .collect())
        }

        async fn security_groups(
            conn: &Conn,
            group_ids: &[String],
        ) -> Result<BTreeMap<String, LiveSecurityGroup>, ProviderError> {
            log(
                conn,
                format!("DescribeSecurityGroups {}", group_ids.join(",")),
            );
            Ok(group_ids
                .iter()
                .map(|g| (g.clone(), LiveSecurityGroup::default()))
                .collect())
        }

        async fn cluster_access(conn: Conn, name: String, principals: Vec<String>) -> LiveAccess {
            log(
                &conn,
                format!("ListAccessEntries {name} for {}", principals.join(",")),
            );
            LiveAccess::Read {
                principals: Default::default(),
                entries: Default::default(),
            }
        }

        /// `pl-gone` does not exist; every other list holds one block.
        async fn prefix_list(
            conn: Conn,
            id: String,
        ) -> Result<Option<LivePrefixList>, ProviderError> {
            log(&conn, format!("DescribeManagedPrefixLists {id}"));
            if id == "pl-slow" {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            if id == "pl-gone" {
                return Ok(None);
            }
            log(&conn, format!("GetManagedPrefixListEntries {id}"));
            Ok(Some(LivePrefixList {
                entries: ["192.0.2.0/24".parse().unwrap()].into(),
                max_entries: Some(10),
                ipv6: false,
            }))
        }

        /// The route tables of the VPCs asked for: one empty list each.
        async fn network(
            conn: Conn,
            scope: Scope,
            reads: ScopeReads,
        ) -> Result<LiveNetwork, ProviderError> {
            let vpcs: Vec<String> = reads.route_vpcs.iter().cloned().collect();
            log(&conn, format!("DescribeRouteTables {}", vpcs.join(",")));
            let mut out = LiveNetwork::default();
            for vpc_id in vpcs {
                let key = VpcKey {
                    account: scope.account.clone(),
                    region: scope.region.clone(),
                    vpc_id,
                };
                out.route_tables.insert(key, Vec::new());
            }
            Ok(out)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_scopes_network_reads_do_not_wait_for_other_scopes() {
        let counting = Counting {
            clusters: [
                ("a".to_string(), ("vpc-1".to_string(), "sg-1".to_string())),
                (
                    "slow".to_string(),
                    ("vpc-2".to_string(), "sg-2".to_string()),
                ),
            ]
            .into(),
            actual_account: "111".into(),
            calls: Arc::default(),
        };
        let (quick, slow) = ("arn:aws:iam::111:role/a", "arn:aws:iam::111:role/b");
        let targets = vec![
            target("a", Some("111"), Some(quick)),
            target("slow", Some("111"), Some(slow)),
        ];
        // Every scope's network findings want the route tables of its
        // clusters' VPCs (`a` is the quick scope's).
        let network = |scope: &Scope, live: &Live| {
            let mine = scope.role_arn.as_deref() == Some(quick);
            let mut reads = ScopeReads::default();
            for (key, seen) in &live.clusters {
                if let (true, ClusterObservation::Found(c)) = ((key.name == "a") == mine, seen) {
                    reads.route_vpcs.insert(c.vpc_id.clone());
                }
            }
            reads
        };
        let live = read_with_network(&counting, targets, &network).await;
        let calls = counting.calls.lock().unwrap().clone();
        let at = |call: &str| calls.iter().position(|c| c == call).unwrap();
        // The quick scope's network read does not wait for the slow
        // scope's read, and asks only for its own VPC.
        assert!(
            at(&format!("DescribeRouteTables vpc-1 as {quick}"))
                < at(&format!("DescribeCluster slow answered as {slow}")),
            "{calls:#?}"
        );
        assert!(calls.contains(&format!("DescribeRouteTables vpc-2 as {slow}")));
        let read: Vec<&str> = live
            .network
            .route_tables
            .keys()
            .map(|k| k.vpc_id.as_str())
            .collect();
        assert_eq!(read, ["vpc-1", "vpc-2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_scopes_network_reads_wait_for_its_prefix_lists() {
        let counting = Counting {
            clusters: [("a".to_string(), ("vpc-1".to_string(), "sg-1".to_string()))].into(),
            actual_account: "111".into(),
            calls: Arc::default(),
        };
        let mut a = target("a", Some("111"), None);
        a.prefix_lists = vec!["pl-slow".into()];
        // What the network reads are asked on: the list's entries are
        // sources whose route back is checked.
        let seen: Mutex<Vec<bool>> = Mutex::default();
        let network = |_: &Scope, live: &Live| {
            seen.lock()
                .unwrap()
                .push(live.prefix_lists.values().any(Option::is_some));
            ScopeReads::default()
        };
        // Two calls at once in the scope: the cluster is read while the
        // list is.
        let request = ReadRequest { clusters: vec![a] };
        let live = read(&counting, request, 8, Some(&network)).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![true]);
        assert_eq!(live.prefix_lists.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_calls_others_wait_for_go_ahead_of_the_dns_attributes() {
        let counting = Counting {
            clusters: (1..=3)
                .map(|i| (format!("c{i}"), (format!("vpc-{i}"), format!("sg-{i}"))))
                .collect(),
            actual_account: "111".into(),
            calls: Arc::default(),
        };
        let targets = (1..=3)
            .map(|i| target(&format!("c{i}"), Some("111"), None))
            .collect();
        // The network reads ask for the route tables of the VPCs they find
        // in `live`: none, if they were asked for before the VPCs were in.
        let network = |_: &Scope, live: &Live| {
            let mut reads = ScopeReads::default();
            for key in live.vpcs.keys() {
                reads.route_vpcs.insert(key.vpc_id.clone());
            }
            reads
        };
        // One call at a time in the scope: the order is the queue's.
        assert_eq!(reads_per_scope(4), 1);
        let live = read_with_network(&counting, targets, &network).await;
        let calls: Vec<String> = counting
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.trim_end_matches(" as base").to_string())
            .collect();
        // The last cluster's answer leaves six DNS attributes and a batch
        // of groups queued; `DescribeVpcs` and then the network reads,
        // which wait for it, go first.
        let mut want: Vec<String> = vec![
            "DescribeCluster c1".into(),
            "DescribeCluster c2".into(),
            "DescribeCluster c3".into(),
            "DescribeVpcs vpc-1,vpc-2,vpc-3".into(),
            "DescribeRouteTables vpc-1,vpc-2,vpc-3".into(),
        ];
        for i in 1..=3 {
            want.push(format!("DescribeVpcAttribute vpc-{i} Support"));
            want.push(format!("DescribeVpcAttribute vpc-{i} Hostnames"));
        }
        want.push("DescribeSecurityGroups sg-1,sg-2,sg-3".into());
        assert_eq!(calls, want);
        // The attributes that came after the VPCs went into `live` are
        // theirs all the same.
        assert_eq!(live.vpcs.len(), 3);
        assert!(live
            .vpcs
            .values()
            .all(|v| v.dns_support && v.dns_hostnames && v.domain_name_servers.len() == 1));
        assert_eq!(live.network.route_tables.len(), 3);
    }

    /// The fleet read of `targets` with `network`, four in parallel.
    async fn read_with_network(
        counting: &Counting,
        targets: Vec<ClusterTarget>,
        network: &NetworkReads<'_>,
    ) -> Live {
        read(
            counting,
            ReadRequest { clusters: targets },
            4,
            Some(network),
        )
        .await
        .unwrap()
    }

    fn target(name: &str, account: Option<&str>, role: Option<&str>) -> ClusterTarget {
        ClusterTarget {
            key: ClusterKey {
                account: account.map(str::to_string),
                region: "eu-west-1".into(),
                name: name.into(),
            },
            role_arn: role.map(str::to_string),
            wants_private: true,
            access_principals: Vec::new(),
            prefix_lists: Vec::new(),
        }
    }

    async fn calls_for(targets: Vec<ClusterTarget>) -> (Live, Vec<String>) {
        let counting = Counting {
            clusters: [
                ("a".to_string(), ("vpc-1".to_string(), "sg-1".to_string())),
                ("b".to_string(), ("vpc-1".to_string(), "sg-1".to_string())),
            ]
            .into(),
            actual_account: "111".into(),
            calls: Arc::default(),
        };
        let live = read(&counting, ReadRequest { clusters: targets }, 4, None)
            .await
            .unwrap();
        let mut calls = counting.calls.lock().unwrap().clone();
        calls.sort();
        (live, calls)
    }

    #[tokio::test]
    async fn a_vpc_shared_by_clusters_of_one_role_is_read_once() {
        let role = Some("arn:aws:iam::111:role/a");
        let (_, calls) = calls_for(vec![
            target("a", Some("111"), role),
            target("b", Some("111"), role),
        ])
        .await;
        let role = "arn:aws:iam::111:role/a";
        assert_eq!(
            calls,
            vec![
                format!("DescribeCluster a as {role}"),
                format!("DescribeCluster b as {role}"),
                format!("DescribeSecurityGroups sg-1 as {role}"),
                format!("DescribeVpcAttribute vpc-1 Hostnames as {role}"),
                format!("DescribeVpcAttribute vpc-1 Support as {role}"),
                format!("DescribeVpcs vpc-1 as {role}"),
            ]
        );
    }

    #[tokio::test]
    async fn access_entries_are_read_once_for_clusters_with_principals_and_entries() {
        let with = |name: &str| ClusterTarget {
            access_principals: vec!["arn:aws:iam::111:role/bastion".into()],
            ..target(name, None, None)
        };
        // `b` names no authentication mode: its entries cannot be listed.
        let (live, calls) = calls_for(vec![with("a"), with("b")]).await;
        let listed: Vec<&String> = calls
            .iter()
            .filter(|c| c.starts_with("ListAccessEntries"))
            .collect();
        assert_eq!(
            listed,
            ["ListAccessEntries a for arn:aws:iam::111:role/bastion as base"]
        );
        assert_eq!(live.access.len(), 1);

        // No principals: nothing to check, no call.
        let (live, calls) = calls_for(vec![target("a", None, None)]).await;
        assert!(!calls.iter().any(|c| c.starts_with("ListAccessEntries")));
        assert!(live.access.is_empty());
    }

    #[tokio::test]
    async fn each_prefix_list_is_read_once_per_scope_however_many_clusters_name_it() {
        let with = |name: &str, lists: &[&str], account: Option<&str>| ClusterTarget {
            prefix_lists: lists.iter().map(|l| l.to_string()).collect(),
            ..target(name, account, None)
        };
        let (live, calls) = calls_for(vec![
            with("a", &["pl-1", "pl-2", "pl-gone"], Some("111")),
            with("b", &["pl-1", "pl-gone"], Some("111")),
            // Another account's `pl-1` is another list.
            with("c", &["pl-1"], None),
        ])
        .await;
        let lists: Vec<&String> = calls
            .iter()
            .filter(|c| c.contains("ManagedPrefixList"))
            .collect();
        assert_eq!(
            lists,
            [
                "DescribeManagedPrefixLists pl-1 as base",
                "DescribeManagedPrefixLists pl-1 as base",
                "DescribeManagedPrefixLists pl-2 as base",
                "DescribeManagedPrefixLists pl-gone as base",
                "GetManagedPrefixListEntries pl-1 as base",
                "GetManagedPrefixListEntries pl-1 as base",
                "GetManagedPrefixListEntries pl-2 as base",
            ]
        );
        let key = |account: Option<&str>, id: &str| PrefixListKey {
            account: account.map(str::to_string),
            region: "eu-west-1".into(),
            id: id.into(),
        };
        assert_eq!(live.prefix_lists.len(), 4);
        assert!(live.prefix_lists[&key(Some("111"), "pl-1")].is_some());
        assert!(live.prefix_lists[&key(None, "pl-1")].is_some());
        assert!(live.prefix_lists[&key(Some("111"), "pl-gone")].is_none());
    }

    #[tokio::test]
    async fn each_cluster_is_read_with_its_own_role() {
        let (live, calls) = calls_for(vec![
            target("a", Some("111"), Some("arn:aws:iam::111:role/a")),
            target("b", Some("111"), None),
        ])
        .await;
        assert!(calls.contains(&"DescribeCluster a as arn:aws:iam::111:role/a".to_string()));
        assert!(calls.contains(&"DescribeCluster b as base".to_string()));
        // The shared VPC and group are read once with each cluster's credentials.
        for who in ["arn:aws:iam::111:role/a", "base"] {
            for call in [
                "DescribeVpcs vpc-1",
                "DescribeSecurityGroups sg-1",
                "DescribeVpcAttribute vpc-1 Support",
            ] {
                let line = format!("{call} as {who}");
                assert_eq!(calls.iter().filter(|c| **c == line).count(), 1, "{line}");
            }
        }
        assert_eq!(live.vpcs.len(), 1);
    }

    #[tokio::test]
    async fn a_mismatched_account_blocks_only_its_clusters_without_reading_them() {
        let (live, calls) = calls_for(vec![
            target("a", Some("111"), None),
            target("b", Some("999"), Some("arn:aws:iam::999:role/b")),
        ])
        .await;
        let blocked: Vec<&ClusterKey> = live
            .clusters
            .iter()
            .filter(|(_, o)| matches!(o, ClusterObservation::AccountMismatch { .. }))
            .map(|(k, _)| k)
            .collect();
        assert_eq!(blocked.len(), 1);
        assert_eq!(blocked[0].name, "b");
        assert!(calls.iter().all(|c| !c.contains("role/b")), "{calls:?}");
    }
}
