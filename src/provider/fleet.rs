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
//! - One `DescribeManagedPrefixLists` and one paged
//!   `GetManagedPrefixListEntries` per managed prefix list and scope,
//!   however many clusters name it.
//! - Reads of many clusters are issued round-robin over scopes, so every
//!   region's rate is used at once instead of one region after another, and
//!   at most `parallelism` calls run at once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{DnsAttribute, ProviderError, ReadRequest, Scope};
use crate::access::LiveAccess;
use crate::live::{
    ClusterObservation, Live, LivePrefixList, LiveSecurityGroup, LiveVpc, PrefixListKey,
    SecurityGroupKey, VpcKey,
};

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
}

/// What `DescribeVpcs` says of one VPC.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct VpcDescription {
    pub dhcp_options_id: String,
    /// The IPv4 blocks in state `associated`.
    pub cidr_blocks: Vec<ipnet::IpNet>,
}

/// Reads what the planner needs for `request`, at most `parallelism` calls
/// at once.
pub(super) async fn read<P: FleetCalls>(
    calls: &P,
    request: &ReadRequest,
    parallelism: usize,
) -> Result<Live, ProviderError> {
    let limit = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut live = Live::default();

    // Accounts first: a pinned account that the credentials do not reach
    // blocks its clusters before anything else is read for them.
    let scopes: BTreeSet<Scope> = request.clusters.iter().map(|c| c.scope()).collect();
    let mut mismatched: BTreeMap<Scope, (String, String)> = BTreeMap::new();
    for scope in scopes.iter().filter(|s| s.account.is_some()) {
        match calls.check_account(scope).await {
            Ok(()) => {}
            Err(ProviderError::AccountMismatch { expected, actual }) => {
                mismatched.insert(scope.clone(), (expected, actual));
            }
            Err(other) => return Err(other),
        }
    }

    // Clusters, concurrently.
    let mut jobs = Vec::new();
    for c in &request.clusters {
        let scope = c.scope();
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
        let conn = calls.connect(&scope).await;
        jobs.push((c.key.clone(), scope, conn));
    }
    let jobs = interleave(jobs, |(_, scope, _)| scope);
    let results = bounded(jobs, &limit, |(key, scope, conn)| async move {
        let obs = P::describe_cluster(conn, scope, key.name.clone()).await;
        (key, obs)
    })
    .await;
    for (key, obs) in results {
        live.clusters.insert(key, obs?);
    }

    // Who can still use the Kubernetes API: the access entries of clusters
    // that go private only with declared principals, in modes whose access
    // entries can be listed (a `CONFIG_MAP` cluster answers
    // `InvalidRequestException`; the planner says why it is not checked).
    let mut access_jobs = Vec::new();
    for c in request
        .clusters
        .iter()
        .filter(|c| !c.access_principals.is_empty())
    {
        let Some(ClusterObservation::Found(found)) = live.clusters.get(&c.key) else {
            continue;
        };
        // No mode named: a cluster from before access entries, `CONFIG_MAP`.
        if found
            .authentication_mode
            .as_ref()
            .is_none_or(|m| *m == crate::access::AuthenticationMode::ConfigMap)
        {
            continue;
        }
        let scope = c.scope();
        let conn = calls.connect(&scope).await;
        access_jobs.push((c.key.clone(), scope, conn, c.access_principals.clone()));
    }
    let access_jobs = interleave(access_jobs, |(_, scope, ..)| scope);
    let read = bounded(
        access_jobs,
        &limit,
        |(key, _, conn, principals)| async move {
            let name = key.name.clone();
            (key, P::cluster_access(conn, name, principals).await)
        },
    )
    .await;
    live.access.extend(read);

    // The managed prefix lists of `public_access_cidrs`: each read once per
    // account and region however many clusters name it, with the
    // credentials of the first cluster that does, concurrently like the
    // rest. A list EC2 does not know is kept as `None` (the planner blocks
    // its clusters); any other failure fails the read.
    let mut list_jobs = Vec::new();
    let mut seen: BTreeSet<PrefixListKey> = BTreeSet::new();
    for c in &request.clusters {
        let scope = c.scope();
        if mismatched.contains_key(&scope) {
            continue;
        }
        for id in &c.prefix_lists {
            let key = PrefixListKey {
                account: c.key.account.clone(),
                region: c.key.region.clone(),
                id: id.clone(),
            };
            if seen.insert(key.clone()) {
                let conn = calls.connect(&scope).await;
                list_jobs.push((key, scope.clone(), conn));
            }
        }
    }
    let list_jobs = interleave(list_jobs, |(_, scope, _)| scope);
    let lists = bounded(list_jobs, &limit, |(key, _, conn)| async move {
        let read = P::prefix_list(conn, key.id.clone()).await;
        (key, read)
    })
    .await;
    for (key, read) in lists {
        let read = match read {
            Ok(list) => list,
            Err(ProviderError::Aws { code, .. })
                if code.eq_ignore_ascii_case("InvalidPrefixListID.NotFound") =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        live.prefix_lists.insert(key, read);
    }

    // What private access needs: the VPCs and cluster security groups of
    // clusters that want it, each read once per scope however many clusters
    // share it.
    let mut vpcs: BTreeMap<Scope, BTreeSet<String>> = BTreeMap::new();
    let mut groups: BTreeMap<Scope, BTreeSet<String>> = BTreeMap::new();
    for c in request.clusters.iter().filter(|c| c.wants_private) {
        let Some(ClusterObservation::Found(found)) = live.clusters.get(&c.key) else {
            continue;
        };
        let scope = c.scope();
        vpcs.entry(scope.clone())
            .or_default()
            .insert(found.vpc_id.clone());
        if let Some(sg) = &found.security_group_id {
            groups.entry(scope).or_default().insert(sg.clone());
        }
    }

    let mut attr_jobs = Vec::new();
    for (scope, ids) in &vpcs {
        let conn = calls.connect(scope).await;
        for id in ids {
            for attr in [DnsAttribute::Support, DnsAttribute::Hostnames] {
                attr_jobs.push((scope.clone(), conn.clone(), id.clone(), attr));
            }
        }
    }
    let attr_jobs = interleave(attr_jobs, |(scope, ..)| scope);
    let attrs = bounded(attr_jobs, &limit, |(scope, conn, id, attr)| async move {
        let v = P::vpc_attribute(conn, id.clone(), attr).await;
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

    let mut scope_jobs = Vec::new();
    let mut all: BTreeSet<Scope> = vpcs.keys().cloned().collect();
    all.extend(groups.keys().cloned());
    for scope in all {
        let conn = calls.connect(&scope).await;
        let vpc_ids: Vec<String> = vpcs
            .get(&scope)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        let sg_ids: Vec<String> = groups
            .get(&scope)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        scope_jobs.push((scope, conn, vpc_ids, sg_ids));
    }
    let per_scope = bounded(
        scope_jobs,
        &limit,
        |(scope, conn, vpc_ids, sg_ids)| async move {
            let r = scope_network::<P>(&conn, &vpc_ids, &sg_ids).await;
            (scope, r)
        },
    )
    .await;
    for (scope, r) in per_scope {
        let (dhcp_of, servers, sgs) = r?;
        for (vpc_id, described) in dhcp_of {
            let VpcDescription {
                dhcp_options_id: dopt,
                cidr_blocks,
            } = described;
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
                    cidr_blocks,
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

/// What one scope's VPCs and groups hold, in batches: the DHCP options id
/// of each VPC, the servers of each DHCP options set, and each group.
type ScopeNetwork = (
    BTreeMap<String, VpcDescription>,
    BTreeMap<String, Vec<String>>,
    BTreeMap<String, LiveSecurityGroup>,
);

async fn scope_network<P: FleetCalls>(
    conn: &P::Conn,
    vpc_ids: &[String],
    sg_ids: &[String],
) -> Result<ScopeNetwork, ProviderError> {
    let mut dhcp_of = BTreeMap::new();
    for chunk in vpc_ids.chunks(BATCH) {
        dhcp_of.extend(P::vpc_dhcp_options(conn, chunk).await?);
    }
    let dhcp_ids: Vec<String> = dhcp_of
        .values()
        .map(|v| v.dhcp_options_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut servers = BTreeMap::new();
    for batch in dhcp_batches(&dhcp_ids) {
        servers.extend(P::dhcp_servers(conn, &batch).await?);
    }
    let mut sgs = BTreeMap::new();
    for chunk in sg_ids.chunks(BATCH) {
        sgs.extend(P::security_groups(conn, chunk).await?);
    }
    Ok((dhcp_of, servers, sgs))
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

/// Reorders jobs round-robin over their scopes (keeping each scope's order),
/// so that a fleet listed region by region uses every region's API rate at
/// once instead of exhausting one region's while the others idle.
fn interleave<T>(jobs: Vec<T>, scope_of: impl Fn(&T) -> &Scope) -> Vec<T> {
    let mut queues: BTreeMap<Scope, VecDeque<T>> = BTreeMap::new();
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
pub(super) async fn bounded<T, R, F, Fut>(items: Vec<T>, limit: &Arc<Semaphore>, f: F) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::desired::ClusterKey;
    use crate::endpoint::EndpointSettings;
    use crate::live::{ClusterStatus, LiveCluster};
    use crate::provider::ClusterTarget;

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
                endpoint: EndpointSettings::new(true, false).with_cidrs(Some(BTreeSet::new())),
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
        let live = read(&counting, &ReadRequest { clusters: targets }, 4)
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
