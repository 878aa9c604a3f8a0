//! An in-memory AWS for the engine's tests: EKS endpoint updates that stay
//! `InProgress` for a while and then end `Successful` (or `Failed`), one
//! update at a time per cluster (`InUse`), AWS's own updates, the rejection
//! of a no-op and of both-off, EC2's "support before hostnames" rule, and
//! duplicate security-group rules, and access entries (listed only in the
//! modes that have them). Every call is recorded with its time, and
//! every call the real AWS would reject, or that breaks a safety rule, is
//! recorded as a violation, so tests can assert there were none.
//!
//! Test-only. It models DESIGN.md section 1 at the trait level; the wire
//! format is the emulator's job (`sim`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::{apply, cancel_signal, ApplyOptions, ApplyReport};
use crate::access::{find_entry, AssociatedPolicy, AuthenticationMode, LiveAccess, LiveEntry};
use crate::desired::{AccessSource, ClusterKey, Desired, DesiredCluster, Origin};
use crate::endpoint::{EndpointSettings, PublicCidr};
use crate::event::Event;
use crate::live::{
    ClusterObservation, ClusterStatus, Live, LiveCluster, LiveSecurityGroup, LiveVpc,
    SecurityGroupKey, VpcKey,
};
use crate::plan::Plan;
use crate::provider::{
    DnsAttribute, IngressOutcome, Provider, ProviderError, ReadRequest, Scope, UpdateStart,
    UpdateState, UpdateStatus,
};
use crate::set::SortedSet;
use crate::wait::WaitOptions;

pub const REGION: &str = "eu-west-1";

/// Whether the endpoints are on: the fake's shorthand for a mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointAccess {
    pub public: bool,
    pub private: bool,
}

/// A manifest's cluster in [`REGION`] that wants `endpoint` and lets `from`
/// (CIDRs, or `sg-` security group ids) in on TCP 443.
pub fn want(name: &str, endpoint: EndpointAccess, from: &[&str]) -> DesiredCluster {
    DesiredCluster {
        key: ClusterKey {
            account: None,
            region: REGION.into(),
            name: name.into(),
        },
        role_arn: None,
        endpoint: EndpointSettings::new(endpoint.public, endpoint.private),
        private_access_from: from
            .iter()
            .map(|s| {
                if s.starts_with("sg-") {
                    AccessSource::SecurityGroup(s.to_string())
                } else {
                    AccessSource::Cidr(s.parse::<IpNet>().unwrap().trunc())
                }
            })
            .collect(),
        wave: 0,
        owner_acknowledged: false,
        private_access_from_exclusive: false,
        public_access_prefix_lists: Default::default(),
        origin: Origin {
            file: "fleet.toml".into(),
            line: 1,
            column: 1,
        },
        access: Default::default(),
    }
}

/// Options for tests that read an apply's outcome in order: one step calling
/// and one update in flight at a time, polls every few milliseconds.
pub fn one_at_a_time() -> ApplyOptions {
    ApplyOptions {
        parallelism: 1,
        max_updates: 1,
        wait: WaitOptions {
            first_interval: Duration::from_millis(5),
            max_interval: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
        },
        ..ApplyOptions::default()
    }
}

/// The plan for `wants` against what `aws` holds now.
pub fn plan(aws: &FakeAws, wants: Vec<DesiredCluster>) -> Plan {
    let live = aws.live(&wants);
    crate::plan::plan(
        &Desired {
            clusters: wants,
            digest: "t".into(),
            allow_unverified_access: false,
        },
        &live,
    )
}

/// Plans `wants` against `aws`, lets `after_plan` change it, then applies
/// with `opts`: the report and every event.
pub async fn plan_and_apply(
    aws: &FakeAws,
    wants: Vec<DesiredCluster>,
    opts: ApplyOptions,
    after_plan: impl FnOnce(&FakeAws),
) -> (ApplyReport, Vec<Event>) {
    let plan = plan(aws, wants);
    after_plan(aws);
    let (tx, rx) = crate::channel::channel();
    let (_cancel, cancel_rx) = cancel_signal();
    tokio::join!(apply(&plan, aws, &opts, tx, cancel_rx), collect(rx))
}

/// Every event of a run, read as a view reads them: while the run goes on,
/// so no poll is coalesced away.
pub async fn collect(mut rx: crate::channel::EventReceiver) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    events
}

/// One recorded call.
#[derive(Clone, Debug)]
pub struct Call {
    pub at: Duration,
    pub op: &'static str,
    #[allow(dead_code)] // shown by `{:?}` when a test fails
    pub target: String,
    pub detail: String,
}

#[derive(Clone, Debug)]
pub struct FakeUpdate {
    pub id: String,
    pub started: Instant,
    pub duration: Duration,
    /// `errorCode`, `errorMessage` when it ends `Failed`.
    pub fails: Option<(String, String)>,
    /// The endpoint it sets once `Successful`; `None` for AWS's own updates.
    pub target: Option<(EndpointAccess, Option<BTreeSet<IpNet>>)>,
    pub ours: bool,
    applied: bool,
}

impl FakeUpdate {
    pub fn ends_at(&self) -> Instant {
        self.started + self.duration
    }

    fn status(&self, now: Instant) -> UpdateStatus {
        if now < self.ends_at() {
            UpdateStatus::InProgress
        } else if self.fails.is_some() {
            UpdateStatus::Failed
        } else {
            UpdateStatus::Successful
        }
    }
}

#[derive(Clone, Debug)]
pub struct FakeCluster {
    pub vpc_id: String,
    pub sg: Option<String>,
    pub endpoint: EndpointAccess,
    pub cidrs: BTreeSet<IpNet>,
    pub updates: Vec<FakeUpdate>,
    /// How long each new update of ours runs.
    pub update_duration: Duration,
    /// Our next updates end `Failed` with this error.
    pub fail_updates: Option<(String, String)>,
    /// The next `UpdateClusterConfig` finds an AWS update that started just
    /// before it (the race the re-read cannot close), running this long.
    pub race_next_update: Option<Duration>,
    /// `accessConfig.authenticationMode`; `None`: AWS names none, a cluster
    /// from before access entries.
    pub authentication_mode: Option<AuthenticationMode>,
    /// The access entries, by principal ARN as EKS holds it.
    pub access_entries: BTreeMap<String, LiveEntry>,
}

#[derive(Clone, Debug)]
pub struct FakeVpc {
    pub dns_support: bool,
    pub dns_hostnames: bool,
}

#[derive(Default)]
struct World {
    clusters: BTreeMap<String, FakeCluster>,
    vpcs: BTreeMap<String, FakeVpc>,
    groups: BTreeMap<String, SortedSet<AccessSource>>,
    calls: Vec<Call>,
    violations: Vec<String>,
    next_id: u32,
}

pub struct FakeAws {
    start: Instant,
    /// Each call takes this long, so concurrent steps really overlap.
    latency: Duration,
    world: Mutex<World>,
    /// Calls other than `DescribeUpdate` in flight now, and the most seen.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

pub fn public() -> EndpointAccess {
    EndpointAccess {
        public: true,
        private: false,
    }
}

pub fn private() -> EndpointAccess {
    EndpointAccess {
        public: false,
        private: true,
    }
}

pub fn both() -> EndpointAccess {
    EndpointAccess {
        public: true,
        private: true,
    }
}

pub fn open() -> BTreeSet<IpNet> {
    ["0.0.0.0/0".parse::<IpNet>().unwrap()]
        .into_iter()
        .collect()
}

fn aws(operation: &str, code: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::Aws {
        operation: operation.into(),
        code: code.into(),
        message: message.into(),
    }
}

impl FakeAws {
    pub fn new() -> Self {
        FakeAws {
            start: Instant::now(),
            latency: Duration::from_millis(1),
            world: Mutex::new(World::default()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    /// A cluster in its own VPC (`vpc-NAME`, DNS on) with a cluster security
    /// group `sg-NAME` that lets nothing in on 443.
    pub fn cluster(self, name: &str, endpoint: EndpointAccess) -> Self {
        self.cluster_in(name, endpoint, &format!("vpc-{name}"))
    }

    pub fn cluster_in(self, name: &str, endpoint: EndpointAccess, vpc: &str) -> Self {
        {
            let mut w = self.world.lock().unwrap();
            w.clusters.insert(
                name.to_string(),
                FakeCluster {
                    vpc_id: vpc.to_string(),
                    sg: Some(format!("sg-{name}")),
                    endpoint,
                    cidrs: open(),
                    updates: Vec::new(),
                    update_duration: Duration::from_millis(40),
                    fail_updates: None,
                    race_next_update: None,
                    authentication_mode: None,
                    access_entries: BTreeMap::new(),
                },
            );
            w.vpcs.entry(vpc.to_string()).or_insert(FakeVpc {
                dns_support: true,
                dns_hostnames: true,
            });
            w.groups.insert(format!("sg-{name}"), SortedSet::new());
        }
        self
    }

    pub fn vpc(self, vpc: &str, dns_support: bool, dns_hostnames: bool) -> Self {
        self.world.lock().unwrap().vpcs.insert(
            vpc.to_string(),
            FakeVpc {
                dns_support,
                dns_hostnames,
            },
        );
        self
    }

    /// An access entry of `principal` on `name` with cluster-wide `policies`
    /// (none: an entry that grants nothing); the cluster's mode becomes
    /// `API_AND_CONFIG_MAP` unless one is set.
    pub fn access_entry(self, name: &str, principal: &str, policies: &[&str]) -> Self {
        self.edit(name, |c| {
            c.authentication_mode
                .get_or_insert(AuthenticationMode::ApiAndConfigMap);
            c.access_entries.insert(
                principal.to_string(),
                LiveEntry {
                    principal_arn: principal.to_string(),
                    kubernetes_groups: Vec::new(),
                    policies: policies
                        .iter()
                        .map(|p| AssociatedPolicy {
                            policy_arn: p.to_string(),
                            scope: "cluster".into(),
                        })
                        .collect(),
                },
            );
        });
        self
    }

    pub fn edit(&self, name: &str, f: impl FnOnce(&mut FakeCluster)) {
        let mut w = self.world.lock().unwrap();
        f(w.clusters.get_mut(name).expect("a cluster of the fake"));
    }

    /// Starts an update of AWS's own on `name`, running for `duration`.
    pub fn aws_update(&self, name: &str, id: &str, duration: Duration) {
        self.edit(name, |c| {
            c.updates.push(FakeUpdate {
                id: id.to_string(),
                started: Instant::now(),
                duration,
                fails: None,
                target: None,
                ours: false,
                applied: false,
            })
        });
    }

    /// The most calls that were in flight at once, polls of updates
    /// (`DescribeUpdate`) left out.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// One call's latency, counted as in flight.
    async fn call(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.latency).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.world.lock().unwrap().calls.clone()
    }

    pub fn calls_of(&self, op: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.op == op).collect()
    }

    pub fn violations(&self) -> Vec<String> {
        self.world.lock().unwrap().violations.clone()
    }

    pub fn endpoint_of(&self, name: &str) -> EndpointAccess {
        let mut w = self.world.lock().unwrap();
        settle(&mut w, Instant::now());
        w.clusters[name].endpoint
    }

    pub fn updates_of(&self, name: &str) -> Vec<FakeUpdate> {
        self.world.lock().unwrap().clusters[name].updates.clone()
    }

    /// Time since the fake was made, as calls record it.
    pub fn at(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }

    /// The live state the planner needs for `desired`, read without delay.
    pub fn live(&self, desired: &[DesiredCluster]) -> Live {
        let mut live = self.live_of(desired.iter().map(|d| &d.key));
        let w = self.world.lock().unwrap();
        for d in desired.iter().filter(|d| !d.access.principals.is_empty()) {
            let principals: Vec<String> = d.access.principals.iter().cloned().collect();
            if let Some(Ok(access)) = w
                .clusters
                .get(&d.key.name)
                .map(|c| access_of(c, &principals))
            {
                live.access.insert(d.key.clone(), access);
            }
        }
        live
    }

    fn live_of<'a>(&self, keys: impl Iterator<Item = &'a ClusterKey>) -> Live {
        let mut w = self.world.lock().unwrap();
        settle(&mut w, Instant::now());
        let mut live = Live::default();
        for key in keys {
            let Some(c) = w.clusters.get(&key.name) else {
                live.clusters
                    .insert(key.clone(), ClusterObservation::NotFound);
                continue;
            };
            live.clusters.insert(
                key.clone(),
                ClusterObservation::Found(observe(&key.name, c, Instant::now())),
            );
            let v = &w.vpcs[&c.vpc_id];
            live.vpcs.insert(
                VpcKey {
                    account: None,
                    region: REGION.into(),
                    vpc_id: c.vpc_id.clone(),
                },
                live_vpc(v),
            );
            if let Some(sg) = &c.sg {
                live.security_groups.insert(
                    SecurityGroupKey {
                        account: None,
                        region: REGION.into(),
                        group_id: sg.clone(),
                    },
                    LiveSecurityGroup {
                        https_ingress: w.groups[sg].clone(),
                        ..LiveSecurityGroup::default()
                    },
                );
            }
        }
        live
    }

    fn record(&self, w: &mut World, op: &'static str, target: &str, detail: String) {
        w.calls.push(Call {
            at: self.start.elapsed(),
            op,
            target: target.to_string(),
            detail,
        });
    }
}

fn live_vpc(v: &FakeVpc) -> LiveVpc {
    LiveVpc {
        cidr_blocks: Vec::new(),
        dns_support: v.dns_support,
        dns_hostnames: v.dns_hostnames,
        dhcp_options_id: "dopt-1".into(),
        domain_name_servers: vec!["AmazonProvidedDNS".into()],
    }
}

/// Applies the updates that ended `Successful` by `now`, in order.
fn settle(w: &mut World, now: Instant) {
    for c in w.clusters.values_mut() {
        for u in c.updates.iter_mut() {
            if u.applied || now < u.ends_at() {
                continue;
            }
            u.applied = true;
            if u.fails.is_some() {
                continue;
            }
            if let Some((endpoint, cidrs)) = &u.target {
                c.endpoint = *endpoint;
                if let Some(cidrs) = cidrs {
                    c.cidrs = cidrs.clone();
                }
            }
        }
    }
}

/// What `ListAccessEntries` and the reads of the declared principals'
/// entries give, or EKS's answer on a cluster without access entries.
fn access_of(c: &FakeCluster, principals: &[String]) -> Result<LiveAccess, ProviderError> {
    if c.authentication_mode
        .as_ref()
        .is_none_or(|m| *m == AuthenticationMode::ConfigMap)
    {
        return Err(aws(
            "ListAccessEntries",
            "InvalidRequestException",
            "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.",
        ));
    }
    let listed: BTreeSet<String> = c.access_entries.keys().cloned().collect();
    let entries = principals
        .iter()
        .filter_map(|p| find_entry(p, &listed))
        .map(|arn| (arn.clone(), c.access_entries[arn].clone()))
        .collect();
    Ok(LiveAccess::Read {
        principals: listed,
        entries,
    })
}

fn in_progress(c: &FakeCluster, now: Instant) -> Vec<String> {
    c.updates
        .iter()
        .filter(|u| u.status(now) == UpdateStatus::InProgress)
        .map(|u| u.id.clone())
        .collect()
}

fn observe(name: &str, c: &FakeCluster, now: Instant) -> LiveCluster {
    // AWS's own updates may leave the cluster `ACTIVE` (DESIGN.md section 1);
    // ours make it `UPDATING`.
    let ours_running = c
        .updates
        .iter()
        .any(|u| u.ours && u.status(now) == UpdateStatus::InProgress);
    LiveCluster {
        network: Default::default(),
        key: ClusterKey {
            account: None,
            region: REGION.into(),
            name: name.into(),
        },
        arn: format!("arn:aws:eks:{REGION}:111122223333:cluster/{name}"),
        status: if ours_running {
            ClusterStatus::Updating
        } else {
            ClusterStatus::Active
        },
        vpc_id: c.vpc_id.clone(),
        security_group_id: c.sg.clone(),
        endpoint: EndpointSettings::new(c.endpoint.public, c.endpoint.private)
            .with_cidrs(Some(c.cidrs.iter().map(|n| PublicCidr::Net(*n)).collect())),
        tags: Default::default(),
        updates_in_progress: in_progress(c, now),
        authentication_mode: c.authentication_mode.clone(),
    }
}

impl Provider for FakeAws {
    async fn read(&self, request: ReadRequest, _parallelism: usize) -> Result<Live, ProviderError> {
        let mut live = self.live_of(request.clusters.iter().map(|c| &c.key));
        let w = self.world.lock().unwrap();
        for c in request
            .clusters
            .iter()
            .filter(|c| !c.access_principals.is_empty())
        {
            if let Some(Ok(access)) = w
                .clusters
                .get(&c.key.name)
                .map(|f| access_of(f, &c.access_principals))
            {
                live.access.insert(c.key.clone(), access);
            }
        }
        Ok(live)
    }

    async fn read_access(
        &self,
        _scope: &Scope,
        name: &str,
        principals: &[String],
    ) -> Result<LiveAccess, ProviderError> {
        self.call().await;
        let mut w = self.world.lock().unwrap();
        self.record(&mut w, "ListAccessEntries", name, principals.join(","));
        match w.clusters.get(name) {
            Some(c) => access_of(c, principals),
            None => Err(aws(
                "ListAccessEntries",
                "ResourceNotFoundException",
                "No cluster found",
            )),
        }
    }

    async fn describe_cluster(
        &self,
        _scope: &Scope,
        name: &str,
    ) -> Result<ClusterObservation, ProviderError> {
        self.call().await;
        let mut w = self.world.lock().unwrap();
        let now = Instant::now();
        settle(&mut w, now);
        self.record(&mut w, "DescribeCluster", name, String::new());
        Ok(match w.clusters.get(name) {
            Some(c) => ClusterObservation::Found(observe(name, c, now)),
            None => ClusterObservation::NotFound,
        })
    }

    async fn update_endpoint(
        &self,
        _scope: &Scope,
        name: &str,
        settings: &EndpointSettings,
    ) -> Result<UpdateStart, ProviderError> {
        self.call().await;
        let mut guard = self.world.lock().unwrap();
        let w = &mut *guard;
        let now = Instant::now();
        settle(w, now);
        let detail = format!(
            "public={} private={} cidrs={:?}",
            settings.public_access,
            settings.private_access,
            settings
                .public_access_cidrs
                .as_ref()
                .map(|l| l.iter().map(ToString::to_string).collect::<Vec<_>>())
        );
        self.record(w, "UpdateClusterConfig", name, detail);
        let op = "UpdateClusterConfig";
        let Some(c) = w.clusters.get_mut(name) else {
            return Err(aws(op, "ResourceNotFoundException", "No cluster found"));
        };
        if let Some(d) = c.race_next_update.take() {
            let id = format!("aws-race-{name}");
            c.updates.push(FakeUpdate {
                id: id.clone(),
                started: now,
                duration: d,
                fails: None,
                target: None,
                ours: false,
                applied: false,
            });
            return Ok(UpdateStart::InUse(id));
        }
        if !settings.public_access && !settings.private_access {
            w.violations.push(format!("{name}: both-off call"));
            return Err(aws(
                op,
                "InvalidParameterException",
                "Both private and public endpoint access cannot be false",
            ));
        }
        if let Some(id) = in_progress(c, now).first() {
            w.violations
                .push(format!("{name}: call while update `{id}` was in progress"));
            return Ok(UpdateStart::InUse(id.clone()));
        }
        let cidrs: Option<BTreeSet<IpNet>> = settings.public_access_cidrs.as_ref().map(|l| {
            l.iter()
                .filter_map(PublicCidr::net)
                .map(IpNet::trunc)
                .collect()
        });
        let target = EndpointAccess {
            public: settings.public_access,
            private: settings.private_access,
        };
        if target == c.endpoint && cidrs.as_ref().is_none_or(|l| *l == c.cidrs) {
            w.violations.push(format!("{name}: no-op call"));
            return Ok(UpdateStart::AlreadyConverged);
        }
        // The staged order: public access goes off only once private access
        // is on, i.e. its update ended `Successful`.
        if c.endpoint.public && !target.public && !c.endpoint.private {
            w.violations.push(format!(
                "{name}: public access turned off before private access was on"
            ));
        }
        w.next_id += 1;
        let id = format!("upd-{}", w.next_id);
        c.updates.push(FakeUpdate {
            id: id.clone(),
            started: now,
            duration: c.update_duration,
            fails: c.fail_updates.clone(),
            target: Some((target, cidrs)),
            ours: true,
            applied: false,
        });
        Ok(UpdateStart::Started(id))
    }

    async fn describe_update(
        &self,
        _scope: &Scope,
        name: &str,
        update_id: &str,
    ) -> Result<UpdateState, ProviderError> {
        tokio::time::sleep(self.latency).await;
        let mut w = self.world.lock().unwrap();
        let now = Instant::now();
        settle(&mut w, now);
        self.record(&mut w, "DescribeUpdate", name, update_id.to_string());
        let u = w
            .clusters
            .get(name)
            .and_then(|c| c.updates.iter().find(|u| u.id == update_id))
            .ok_or_else(|| {
                aws(
                    "DescribeUpdate",
                    "ResourceNotFoundException",
                    "No update found",
                )
            })?;
        let status = u.status(now);
        let errors = match (&status, &u.fails) {
            (UpdateStatus::Failed, Some(e)) => vec![e.clone()],
            _ => Vec::new(),
        };
        Ok(UpdateState {
            id: u.id.clone(),
            status,
            errors,
        })
    }

    async fn read_vpc(&self, _scope: &Scope, vpc_id: &str) -> Result<LiveVpc, ProviderError> {
        self.call().await;
        let mut w = self.world.lock().unwrap();
        self.record(&mut w, "DescribeVpcAttribute", vpc_id, String::new());
        w.vpcs
            .get(vpc_id)
            .map(live_vpc)
            .ok_or_else(|| aws("DescribeVpcs", "InvalidVpcID.NotFound", "no such VPC"))
    }

    async fn set_vpc_dns(
        &self,
        _scope: &Scope,
        vpc_id: &str,
        attribute: DnsAttribute,
        value: bool,
    ) -> Result<(), ProviderError> {
        self.call().await;
        let mut guard = self.world.lock().unwrap();
        let w = &mut *guard;
        self.record(
            w,
            "ModifyVpcAttribute",
            vpc_id,
            format!("{attribute:?}={value}"),
        );
        let Some(v) = w.vpcs.get_mut(vpc_id) else {
            return Err(aws(
                "ModifyVpcAttribute",
                "InvalidVpcID.NotFound",
                "no such VPC",
            ));
        };
        match attribute {
            DnsAttribute::Support => v.dns_support = value,
            DnsAttribute::Hostnames => {
                if value && !v.dns_support {
                    w.violations
                        .push(format!("{vpc_id}: DNS hostnames before DNS support"));
                    return Err(aws(
                        "ModifyVpcAttribute",
                        "InvalidParameterValue",
                        "enableDnsHostnames requires enableDnsSupport",
                    ));
                }
                v.dns_hostnames = value;
            }
        }
        Ok(())
    }

    async fn authorize_https_ingress(
        &self,
        _scope: &Scope,
        group_id: &str,
        sources: &SortedSet<AccessSource>,
    ) -> Result<IngressOutcome, ProviderError> {
        self.call().await;
        let mut w = self.world.lock().unwrap();
        self.record(
            &mut w,
            "AuthorizeSecurityGroupIngress",
            group_id,
            format!("{sources:?}"),
        );
        let add = sources.clone();
        let Some(g) = w.groups.get_mut(group_id) else {
            return Err(aws(
                "AuthorizeSecurityGroupIngress",
                "InvalidGroup.NotFound",
                "no such group",
            ));
        };
        // EC2 fails the whole call on one duplicate rule.
        if add.iter().any(|s| g.contains(s)) {
            return Ok(IngressOutcome::AlreadyPresent);
        }
        g.extend(add);
        Ok(IngressOutcome::Added)
    }
}
