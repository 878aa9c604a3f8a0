//! The emulator's world as it is now: clusters with their asynchronous
//! updates, VPCs, DHCP options and security groups, partitioned by account and
//! region, plus the history of requests and state changes (all of them, or the
//! most recent `Behaviour::history_limit`, counting the ones dropped).
//!
//! Time is lazy: an update's end is computed when it starts, and every access
//! first calls [`State::settle`], which completes the updates that are due (at
//! their own end time, so the history stays in order). No timer task is needed
//! and nothing depends on scheduling.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::time::Instant;

use super::world::{self, World, DEFAULT_ACCOUNT};

/// (account, region)
pub type RegionKey = (String, String);

#[derive(Clone, Debug, Serialize)]
pub struct ErrorDetail {
    #[serde(rename = "errorCode")]
    pub error_code: String,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
    #[serde(rename = "resourceIds")]
    pub resource_ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum UpdateStatus {
    InProgress,
    Failed,
    Cancelled,
    Successful,
}

impl UpdateStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            UpdateStatus::InProgress => "InProgress",
            UpdateStatus::Failed => "Failed",
            UpdateStatus::Cancelled => "Cancelled",
            UpdateStatus::Successful => "Successful",
        }
    }
}

/// The endpoint settings of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub public: bool,
    pub private: bool,
    pub cidrs: Vec<IpNet>,
}

#[derive(Clone, Debug, Serialize)]
pub enum UpdateKind {
    /// An `UpdateClusterConfig` of the endpoint settings, to this target.
    EndpointAccess(Endpoint),
    /// An update AWS started on its own.
    Platform,
    /// An update of another kind, from the cluster's past (`past_updates`).
    Past(&'static str),
    /// An `UpdateClusterConfig` of `accessConfig`, to this authentication mode.
    AccessConfig(String),
}

#[derive(Clone, Debug, Serialize)]
pub struct Update {
    pub id: String,
    pub kind: UpdateKind,
    pub status: UpdateStatus,
    pub params: Vec<(String, String)>,
    #[serde(skip)]
    pub created_at: SystemTime,
    /// When it started, for the lag before the cluster says `UPDATING`.
    #[serde(skip)]
    pub started_at: Instant,
    #[serde(skip)]
    pub ends_at: Instant,
    pub errors: Vec<ErrorDetail>,
    /// Set when a fault makes this update end `Failed`.
    #[serde(skip)]
    pub fail_with: Option<ErrorDetail>,
    #[serde(skip)]
    pub client_token: Option<String>,
}

impl Update {
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            UpdateKind::EndpointAccess(_) => "EndpointAccessUpdate",
            UpdateKind::Platform => "VersionUpdate",
            UpdateKind::Past(t) => t,
            UpdateKind::AccessConfig(_) => "AccessConfigUpdate",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Cluster {
    pub name: String,
    pub arn: String,
    #[serde(skip)]
    pub created_at: SystemTime,
    /// The status apart from updates (`ACTIVE`, `CREATING`, ...).
    pub base_status: &'static str,
    pub vpc_id: String,
    pub security_group: Option<String>,
    pub endpoint: Endpoint,
    pub endpoint_hostname: String,
    /// `resourcesVpcConfig.subnetIds`.
    pub subnet_ids: Vec<String>,
    /// `kubernetesNetworkConfig.ipFamily`.
    pub ip_family: String,
    /// `remoteNetworkConfig.remoteNodeNetworks` CIDRs (hybrid nodes).
    pub remote_node_networks: Vec<String>,
    /// The cluster's tags, as `DescribeCluster` and `ListTagsForResource`
    /// return them.
    pub tags: std::collections::BTreeMap<String, String>,
    pub updates: Vec<Update>,
    /// How many endpoint updates were started, for `failed_update.nth`.
    pub endpoint_updates_started: u32,
    /// `accessConfig.authenticationMode`.
    pub authentication_mode: String,
    /// Access entries by principal ARN (see `sim::access`).
    pub access_entries: std::collections::BTreeMap<String, super::access::Entry>,
}

impl Cluster {
    /// `UPDATING` while one of our endpoint updates runs; AWS's own platform
    /// updates leave it `ACTIVE`, as the real service does.
    pub fn status(&self) -> &'static str {
        let updating = self.updates.iter().any(|u| {
            u.status == UpdateStatus::InProgress
                && matches!(
                    u.kind,
                    UpdateKind::EndpointAccess(_) | UpdateKind::AccessConfig(_)
                )
        });
        if updating && self.base_status == "ACTIVE" {
            "UPDATING"
        } else {
            self.base_status
        }
    }

    /// The status `DescribeCluster` reports at `now`: the move to `UPDATING`
    /// is eventually consistent, so it shows only `lag` after the update
    /// started (the service model says so of `UpdateClusterConfig`).
    pub fn status_seen(&self, now: Instant, lag: Duration) -> &'static str {
        let updating = self.updates.iter().any(|u| {
            u.status == UpdateStatus::InProgress
                && matches!(
                    u.kind,
                    UpdateKind::EndpointAccess(_) | UpdateKind::AccessConfig(_)
                )
                && now >= u.started_at + lag
        });
        if updating && self.base_status == "ACTIVE" {
            "UPDATING"
        } else {
            self.base_status
        }
    }

    pub fn update_in_progress(&self) -> Option<&Update> {
        self.updates
            .iter()
            .find(|u| u.status == UpdateStatus::InProgress)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Vpc {
    pub id: String,
    pub cidr_block: String,
    /// Associated IPv4 blocks besides `cidr_block`.
    pub secondary_cidr_blocks: Vec<String>,
    pub dns_support: bool,
    pub dns_hostnames: bool,
    pub dhcp_options_id: String,
}

impl Vpc {
    /// Every IPv4 block of the VPC, the primary first.
    pub fn cidr_blocks(&self) -> Vec<IpNet> {
        std::iter::once(&self.cidr_block)
            .chain(&self.secondary_cidr_blocks)
            .filter_map(|b| b.parse::<IpNet>().ok())
            .map(|n| n.trunc())
            .collect()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DhcpOptions {
    pub id: String,
    pub domain_name_servers: Vec<String>,
}

/// A TCP/UDP/all ingress rule from one source.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Rule {
    pub id: String,
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub source: RuleSource,
    /// The rule's description, as `AuthorizeSecurityGroupIngress` set it.
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleSource {
    Cidr(IpNet),
    Group(String),
    /// A managed prefix list (`pl-…`).
    PrefixList(String),
}

impl RuleSource {
    /// A source as a world file writes it: a CIDR block, a prefix list id
    /// or a security-group id.
    pub fn parse(s: &str) -> RuleSource {
        match s.parse::<IpNet>() {
            Ok(n) => RuleSource::Cidr(n.trunc()),
            Err(_) if s.starts_with("pl-") => RuleSource::PrefixList(s.to_string()),
            Err(_) => RuleSource::Group(s.to_string()),
        }
    }
}

impl std::fmt::Display for RuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleSource::Cidr(n) => write!(f, "{n}"),
            RuleSource::Group(g) | RuleSource::PrefixList(g) => f.write_str(g),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub vpc_id: String,
    pub ingress: Vec<Rule>,
    /// The id of the one outbound rule every group starts with (all
    /// traffic to `0.0.0.0/0`).
    pub egress_rule_id: String,
    /// The most inbound rules per address family
    /// (`RulesPerSecurityGroupLimitExceeded` past it).
    pub rule_quota: u32,
}

/// The inbound rules EC2 counts against a group's quota: (IPv4, IPv6). A
/// rule that references a security group counts once in each.
pub fn rule_counts<'a>(sources: impl IntoIterator<Item = &'a RuleSource>) -> (u32, u32) {
    let (mut v4, mut v6) = (0, 0);
    for s in sources {
        match s {
            RuleSource::Cidr(IpNet::V4(_)) => v4 += 1,
            RuleSource::Cidr(IpNet::V6(_)) => v6 += 1,
            RuleSource::Group(_) | RuleSource::PrefixList(_) => {
                v4 += 1;
                v6 += 1;
            }
        }
    }
    (v4, v6)
}

/// EC2's default quota of inbound rules per security group.
pub const DEFAULT_RULE_QUOTA: u32 = 60;

/// A session `AssumeRole` handed out.
#[derive(Clone, Debug)]
pub struct Session {
    pub token: String,
    pub expires: Instant,
}

/// Token bucket for one region's request rate.
#[derive(Clone, Debug)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Region {
    pub clusters: BTreeMap<String, Cluster>,
    pub vpcs: BTreeMap<String, Vpc>,
    pub dhcp_options: BTreeMap<String, DhcpOptions>,
    pub security_groups: BTreeMap<String, SecurityGroup>,
    pub nat_gateways: Vec<super::network::NatGateway>,
    pub route_tables: Vec<super::network::RouteTable>,
    pub peerings: Vec<super::network::Peering>,
    /// Managed prefix lists, by id.
    pub prefix_lists: BTreeMap<String, super::allow_list::PrefixList>,
    #[serde(skip)]
    pub bucket: Option<Bucket>,
}

/// One line of `/_sim/history`.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryEntry {
    /// Milliseconds since the emulator started.
    pub t_ms: f64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Request {
        service: String,
        operation: String,
        account: String,
        /// Who signed the request: the ARN `GetCallerIdentity` reports for
        /// its access key (an assumed role's session, or the account's user).
        principal: String,
        region: String,
        target: Option<String>,
        /// `ok`, or the error code returned.
        outcome: String,
        http_status: u16,
    },
    UpdateStatus {
        account: String,
        region: String,
        cluster: String,
        update_id: String,
        update_type: String,
        status: String,
    },
    ClusterStatus {
        account: String,
        region: String,
        cluster: String,
        status: String,
    },
    Endpoint {
        account: String,
        region: String,
        cluster: String,
        public: bool,
        private: bool,
        cidrs: Vec<String>,
    },
    VpcAttribute {
        account: String,
        region: String,
        vpc_id: String,
        attribute: String,
        value: bool,
    },
    SecurityGroupIngress {
        account: String,
        region: String,
        group_id: String,
        sources: Vec<String>,
    },
    /// Inbound rules `RevokeSecurityGroupIngress` removed.
    SecurityGroupRevoke {
        account: String,
        region: String,
        group_id: String,
        rules: Vec<RevokedRule>,
    },
}

/// One rule a revocation removed, as the history shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RevokedRule {
    pub id: String,
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub source: String,
    pub egress: bool,
}

/// Which endpoint updates end `Failed`.
#[derive(Clone, Debug)]
pub struct FailRule {
    pub key: RegionKey,
    pub cluster: String,
    pub nth: u32,
    pub always: bool,
    pub detail: ErrorDetail,
}

/// The settings that shape the emulator's behaviour.
#[derive(Clone, Debug)]
pub struct Behaviour {
    pub update_duration: Duration,
    pub latency: Duration,
    pub latency_jitter: Duration,
    pub rate_limit: Option<f64>,
    pub throttle_rate: f64,
    pub error_rate: f64,
    /// Share of successful calls answered with a damaged body (see
    /// `sim::malformed` for the kinds).
    pub malformed_rate: f64,
    /// Operation name → how many of its next calls fail with the service's
    /// server error (500), before any other fault: a transient failure
    /// aimed at one call.
    pub fail_next: BTreeMap<String, u32>,
    pub seed: u64,
    /// Share of changes answered with a 5xx after they took effect.
    pub applied_error_rate: f64,
    /// Share of calls answered 503 (`ServiceUnavailableException`,
    /// `Unavailable`).
    pub unavailable_rate: f64,
    /// How long a cluster keeps saying `ACTIVE` after an update started.
    pub status_lag: Duration,
    /// `ListUpdates` answers in a new random order each listing (seeded), as
    /// AWS promises no order; `false` lists oldest first.
    pub shuffle_updates: bool,
    /// Sessions from `AssumeRole` last at most this long (`None`: as asked).
    pub session_duration: Option<Duration>,
    /// Inbound rules per security group unless the world says otherwise.
    pub rule_quota: u32,
    /// The most recent history entries kept; older ones are dropped and
    /// counted. `None` keeps every entry: an emulator started in-process
    /// lives for one run, and its readers slice the history by position.
    /// `eksgate sim serve` runs until stopped, so it bounds the history
    /// (`--history-limit`, default [`DEFAULT_HISTORY_LIMIT`]).
    pub history_limit: Option<usize>,
}

/// History entries `eksgate sim serve` keeps by default: a long benchmark's
/// worth, about 30 MB.
pub const DEFAULT_HISTORY_LIMIT: usize = 100_000;

/// How long a cluster keeps saying `ACTIVE` after an update started, unless
/// told otherwise.
pub const DEFAULT_STATUS_LAG: Duration = Duration::from_secs(1);

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            update_duration: Duration::from_secs(10),
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            rate_limit: None,
            throttle_rate: 0.0,
            error_rate: 0.0,
            malformed_rate: 0.0,
            fail_next: BTreeMap::new(),
            seed: 0,
            applied_error_rate: 0.0,
            unavailable_rate: 0.0,
            status_lag: DEFAULT_STATUS_LAG,
            shuffle_updates: true,
            session_duration: None,
            rule_quota: DEFAULT_RULE_QUOTA,
            history_limit: None,
        }
    }
}

pub struct State {
    pub regions: BTreeMap<RegionKey, Region>,
    /// access key id → account
    pub access_keys: BTreeMap<String, String>,
    /// role ARN → account
    pub roles: BTreeMap<String, String>,
    /// access key id → the ARN `GetCallerIdentity` reports (assumed roles)
    pub arns: BTreeMap<String, String>,
    /// The world declares `[[account]]`: unknown key ids are refused.
    pub credentials_checked: bool,
    /// access key id → secret, for keys whose signature is verified.
    pub secrets: BTreeMap<String, String>,
    /// access key id → the session `AssumeRole` gave it.
    pub sessions: BTreeMap<String, Session>,
    /// What `sim::policy` denies and which regions accounts have not
    /// enabled.
    pub policy: super::policy::Policies,
    /// Orders `ListUpdates` answers; apart from `rng` so the fault sequence
    /// of a seed does not depend on how often updates are listed.
    pub shuffle_rng: StdRng,
    /// The most recent entries, oldest first.
    pub history: VecDeque<HistoryEntry>,
    /// Entries dropped from the front of `history` to keep it within
    /// `behaviour.history_limit`.
    pub history_dropped: u64,
    pub behaviour: Behaviour,
    pub fail_rules: Vec<FailRule>,
    pub rng: StdRng,
    pub started: Instant,
    /// (ends_at, region, cluster, update id) of every update still running.
    pending: BTreeSet<(Instant, RegionKey, String, String)>,
    next_rule: u64,
    /// Access entries created so far, for their ARNs.
    pub access_entries_created: usize,
}

fn acct(a: &Option<String>) -> String {
    a.clone().unwrap_or_else(|| DEFAULT_ACCOUNT.to_string())
}

impl State {
    pub fn new(world: &World, behaviour: Behaviour) -> State {
        let now = Instant::now();
        let mut state = State {
            regions: BTreeMap::new(),
            access_keys: BTreeMap::new(),
            roles: BTreeMap::new(),
            arns: BTreeMap::new(),
            credentials_checked: !world.account.is_empty(),
            secrets: BTreeMap::new(),
            sessions: BTreeMap::new(),
            policy: super::policy::Policies::from_world(world),
            shuffle_rng: StdRng::seed_from_u64(behaviour.seed ^ 0x5eed_f00d_1157),
            history: VecDeque::new(),
            history_dropped: 0,
            rng: StdRng::seed_from_u64(behaviour.seed),
            behaviour,
            fail_rules: Vec::new(),
            started: now,
            pending: BTreeSet::new(),
            next_rule: 1,
            access_entries_created: 0,
        };
        for a in &world.account {
            for k in &a.access_key_ids {
                state.access_keys.insert(k.clone(), a.id.clone());
            }
            for k in &a.access_keys {
                state.access_keys.insert(k.id.clone(), a.id.clone());
                state.secrets.insert(k.id.clone(), k.secret.clone());
            }
            for r in &a.roles {
                state.roles.insert(r.clone(), a.id.clone());
            }
        }
        for d in &world.dhcp_options {
            state
                .region_mut(&(acct(&d.account), d.region.clone()))
                .dhcp_options
                .insert(
                    d.id.clone(),
                    DhcpOptions {
                        id: d.id.clone(),
                        domain_name_servers: d.domain_name_servers.clone(),
                    },
                );
        }
        for v in &world.vpc {
            let key = (acct(&v.account), v.region.clone());
            let dhcp = match &v.dhcp_options {
                Some(d) if d == world::NO_DHCP_OPTIONS => d.clone(),
                Some(d) => d.clone(),
                None => state.default_dhcp(&key),
            };
            state.region_mut(&key).vpcs.insert(
                v.id.clone(),
                Vpc {
                    id: v.id.clone(),
                    cidr_block: v.cidr_block.clone(),
                    secondary_cidr_blocks: v.secondary_cidr_blocks.clone(),
                    dns_support: v.dns_support,
                    dns_hostnames: v.dns_hostnames,
                    dhcp_options_id: dhcp,
                },
            );
        }
        for s in &world.security_group {
            let key = (acct(&s.account), s.region.clone());
            let mut ingress = Vec::new();
            for src in &s.https_ingress {
                let id = state.rule_id();
                ingress.push(Rule {
                    id,
                    protocol: "tcp".into(),
                    from_port: 443,
                    to_port: 443,
                    source: RuleSource::parse(src),
                    description: None,
                });
            }
            for r in &s.ingress {
                let id = state.rule_id();
                ingress.push(Rule {
                    id,
                    protocol: r.protocol.clone(),
                    from_port: r.from_port.unwrap_or(-1),
                    to_port: r.to_port.unwrap_or(-1),
                    source: RuleSource::parse(&r.source),
                    description: r.description.clone(),
                });
            }
            let egress_rule_id = state.rule_id();
            let rule_quota = s
                .rule_quota
                .or(world.faults.rule_quota)
                .unwrap_or(state.behaviour.rule_quota);
            state.region_mut(&key).security_groups.insert(
                s.id.clone(),
                SecurityGroup {
                    id: s.id.clone(),
                    name: s
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("eks-cluster-sg-{}", s.id)),
                    vpc_id: s.vpc_id.clone(),
                    ingress,
                    egress_rule_id,
                    rule_quota,
                },
            );
        }
        let created = SystemTime::now() - Duration::from_secs(86_400 * 30);
        for c in &world.cluster {
            let key = (acct(&c.account), c.region.clone());
            let hostname = format!(
                "{:032X}.gr7.{}.eks.amazonaws.com",
                state.rng.random::<u128>(),
                c.region
            );
            let lived = Duration::from_secs(86_400) * (c.past_updates + 1);
            let mut cluster = Cluster {
                name: c.name.clone(),
                arn: format!("arn:aws:eks:{}:{}:cluster/{}", c.region, key.0, c.name),
                created_at: c
                    .created_at
                    .as_deref()
                    .and_then(super::network::parse_created_at)
                    .unwrap_or_else(|| created.min(SystemTime::now() - lived)),
                base_status: c.status.as_str(),
                vpc_id: c.vpc_id.clone(),
                security_group: c.security_group.clone(),
                endpoint: Endpoint {
                    public: c.public_access,
                    private: c.private_access,
                    cidrs: normalise_cidrs(
                        c.public_access_cidrs
                            .iter()
                            .filter_map(|s| s.parse::<IpNet>().ok()),
                    ),
                },
                endpoint_hostname: hostname,
                subnet_ids: c
                    .subnet_ids
                    .clone()
                    .unwrap_or_else(super::network::default_subnets),
                ip_family: c.ip_family.clone(),
                remote_node_networks: c.remote_node_networks.clone(),
                tags: c.tags.clone(),
                updates: Vec::new(),
                endpoint_updates_started: 0,
                authentication_mode: c.authentication_mode.clone(),
                access_entries: super::access::entries_of(c, &key.0, created),
            };
            for i in 0..c.past_updates {
                let id = state.uuid();
                cluster
                    .updates
                    .push(past_update(id, i, c.past_updates, now));
            }
            if let Some(d) = c.platform_update {
                let id = state.uuid();
                cluster.updates.push(Update {
                    id: id.clone(),
                    kind: UpdateKind::Platform,
                    status: UpdateStatus::InProgress,
                    params: vec![("PlatformVersion".into(), "eks.2".into())],
                    created_at: SystemTime::now(),
                    started_at: now,
                    ends_at: now + d,
                    errors: Vec::new(),
                    fail_with: None,
                    client_token: None,
                });
                state
                    .pending
                    .insert((now + d, key.clone(), c.name.clone(), id));
            }
            state
                .region_mut(&key)
                .clusters
                .insert(c.name.clone(), cluster);
        }
        super::network::seed(&mut state, world);
        for l in &world.prefix_list {
            let key = (acct(&l.account), l.region.clone());
            let list = super::allow_list::PrefixList::from_def(l, &key.0);
            state
                .region_mut(&key)
                .prefix_lists
                .insert(l.id.clone(), list);
        }
        for f in &world.faults.failed_update {
            state.fail_rules.push(FailRule {
                key: (acct(&f.account), f.region.clone()),
                cluster: f.cluster.clone(),
                nth: f.nth,
                always: f.always,
                detail: ErrorDetail {
                    error_code: f.error_code.clone(),
                    error_message: f.error_message.clone(),
                    resource_ids: Vec::new(),
                },
            });
        }
        state
    }

    pub fn region_mut(&mut self, key: &RegionKey) -> &mut Region {
        self.regions.entry(key.clone()).or_default()
    }

    /// Each region has a default DHCP options set listing `AmazonProvidedDNS`.
    fn default_dhcp(&mut self, key: &RegionKey) -> String {
        let id = format!("dopt-default{}", short_hash(&key.1));
        self.region_mut(key)
            .dhcp_options
            .entry(id.clone())
            .or_insert_with(|| DhcpOptions {
                id: id.clone(),
                domain_name_servers: vec!["AmazonProvidedDNS".into()],
            });
        id
    }

    pub fn account_for(&self, access_key: &str) -> String {
        self.access_keys
            .get(access_key)
            .cloned()
            .unwrap_or_else(|| DEFAULT_ACCOUNT.to_string())
    }

    /// The ARN `GetCallerIdentity` reports for an access key.
    pub fn caller_arn(&self, access_key: &str) -> String {
        self.arns.get(access_key).cloned().unwrap_or_else(|| {
            format!(
                "arn:aws:iam::{}:user/eksgate-sim",
                self.account_for(access_key)
            )
        })
    }

    /// Takes one of the failures `Behaviour::fail_next` holds for
    /// `operation`, if any is left.
    pub fn take_injected_failure(&mut self, operation: &str) -> bool {
        match self.behaviour.fail_next.get_mut(operation) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    pub fn uuid(&mut self) -> String {
        let v: u128 = self.rng.random();
        let h = format!("{v:032x}");
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    pub fn rule_id(&mut self) -> String {
        self.next_rule += 1;
        format!("sgr-{:017x}", self.next_rule)
    }

    pub fn elapsed_ms(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.started).as_secs_f64() * 1000.0
    }

    pub fn record(&mut self, at: Instant, event: Event) {
        let t_ms = self.elapsed_ms(at);
        self.history.push_back(HistoryEntry { t_ms, event });
        if let Some(limit) = self.behaviour.history_limit {
            while self.history.len() > limit {
                self.history.pop_front();
                self.history_dropped += 1;
            }
        }
    }

    /// Starts an update on a cluster; it ends after the configured duration.
    pub fn start_update(
        &mut self,
        key: &RegionKey,
        cluster_name: &str,
        target: Endpoint,
        params: Vec<(String, String)>,
        client_token: Option<String>,
        now: Instant,
    ) -> Update {
        let kind = UpdateKind::EndpointAccess(target);
        self.start_update_of(key, cluster_name, kind, params, client_token, now)
    }

    /// Starts an update of any kind; only endpoint updates count for
    /// `failed_update.nth` and can be made to fail.
    pub fn start_update_of(
        &mut self,
        key: &RegionKey,
        cluster_name: &str,
        kind: UpdateKind,
        params: Vec<(String, String)>,
        client_token: Option<String>,
        now: Instant,
    ) -> Update {
        let endpoint = matches!(kind, UpdateKind::EndpointAccess(_));
        let id = self.uuid();
        let ends_at = now + self.behaviour.update_duration;
        let fail_rules = self.fail_rules.clone();
        let region = self.region_mut(key);
        let Some(cluster) = region.clusters.get_mut(cluster_name) else {
            unreachable!("start_update is only called for a cluster that exists")
        };
        let fail_with = if endpoint {
            cluster.endpoint_updates_started += 1;
            let nth = cluster.endpoint_updates_started;
            fail_rules
                .iter()
                .find(|r| &r.key == key && r.cluster == cluster_name && (r.always || r.nth == nth))
                .map(|r| {
                    let mut d = r.detail.clone();
                    d.resource_ids = vec![cluster_name.to_string()];
                    d
                })
        } else {
            None
        };
        let update = Update {
            id: id.clone(),
            kind,
            status: UpdateStatus::InProgress,
            params,
            created_at: SystemTime::now(),
            started_at: now,
            ends_at,
            errors: Vec::new(),
            fail_with,
            client_token,
        };
        cluster.updates.push(update.clone());
        self.pending
            .insert((ends_at, key.clone(), cluster_name.to_string(), id.clone()));
        self.record(
            now,
            Event::UpdateStatus {
                account: key.0.clone(),
                region: key.1.clone(),
                cluster: cluster_name.to_string(),
                update_id: id,
                update_type: update.type_name().to_string(),
                status: "InProgress".into(),
            },
        );
        self.record(
            now,
            Event::ClusterStatus {
                account: key.0.clone(),
                region: key.1.clone(),
                cluster: cluster_name.to_string(),
                status: "UPDATING".into(),
            },
        );
        update
    }

    /// Completes every update whose end time has come, in order of end time.
    pub fn settle(&mut self, now: Instant) {
        while let Some(first) = self.pending.first().cloned() {
            if first.0 > now {
                break;
            }
            self.pending.pop_first();
            let (at, key, name, id) = first;
            self.complete(at, &key, &name, &id);
        }
    }

    fn complete(&mut self, at: Instant, key: &RegionKey, name: &str, id: &str) {
        let mut events = Vec::new();
        if let Some(cluster) = self
            .regions
            .get_mut(key)
            .and_then(|r| r.clusters.get_mut(name))
        {
            let before = cluster.status();
            let Some(update) = cluster.updates.iter_mut().find(|u| u.id == id) else {
                return;
            };
            if update.status != UpdateStatus::InProgress {
                return;
            }
            let mut new_endpoint = None;
            let mut new_mode = None;
            if let Some(detail) = update.fail_with.take() {
                update.status = UpdateStatus::Failed;
                update.errors.push(detail);
            } else {
                update.status = UpdateStatus::Successful;
                if let UpdateKind::EndpointAccess(target) = &update.kind {
                    new_endpoint = Some(target.clone());
                }
                if let UpdateKind::AccessConfig(mode) = &update.kind {
                    new_mode = Some(mode.clone());
                }
            }
            if let Some(mode) = new_mode {
                cluster.authentication_mode = mode;
            }
            events.push(Event::UpdateStatus {
                account: key.0.clone(),
                region: key.1.clone(),
                cluster: name.to_string(),
                update_id: id.to_string(),
                update_type: update.type_name().to_string(),
                status: update.status.as_str().to_string(),
            });
            if let Some(ep) = new_endpoint {
                cluster.endpoint = ep.clone();
                events.push(Event::Endpoint {
                    account: key.0.clone(),
                    region: key.1.clone(),
                    cluster: name.to_string(),
                    public: ep.public,
                    private: ep.private,
                    cidrs: ep.cidrs.iter().map(|c| c.to_string()).collect(),
                });
            }
            let after = cluster.status();
            if after != before {
                events.push(Event::ClusterStatus {
                    account: key.0.clone(),
                    region: key.1.clone(),
                    cluster: name.to_string(),
                    status: after.to_string(),
                });
            }
        }
        for e in events {
            self.record(at, e);
        }
    }

    /// Token bucket per (account, region): `false` when over the rate.
    pub fn take_token(&mut self, key: &RegionKey, now: Instant) -> bool {
        let Some(rate) = self.behaviour.rate_limit else {
            return true;
        };
        let region = self.region_mut(key);
        let bucket = region.bucket.get_or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        let refill = now.saturating_duration_since(bucket.last).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(rate.max(1.0));
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The world now, for `/_sim/state`.
    pub fn snapshot(&self) -> serde_json::Value {
        let mut regions = Vec::new();
        for ((account, region), r) in &self.regions {
            let clusters: Vec<_> = r
                .clusters
                .values()
                .map(|c| {
                    serde_json::json!({
                        "name": c.name,
                        "arn": c.arn,
                        "status": c.status(),
                        "vpc_id": c.vpc_id,
                        "security_group": c.security_group,
                        "public_access": c.endpoint.public,
                        "private_access": c.endpoint.private,
                        "public_access_cidrs": c.endpoint.cidrs.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                        "authentication_mode": c.authentication_mode,
                        "access_entries": c.access_entries.values().map(|e| serde_json::json!({
                            "principal_arn": e.principal_arn,
                            "kubernetes_groups": e.kubernetes_groups,
                            "access_policies": e.policies.iter().map(|(p, _)| p).collect::<Vec<_>>(),
                        })).collect::<Vec<_>>(),
                        "updates": c.updates.iter().map(|u| serde_json::json!({
                            "id": u.id,
                            "type": u.type_name(),
                            "status": u.status.as_str(),
                            "errors": u.errors,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let sgs: Vec<_> = r
                .security_groups
                .values()
                .map(|s| {
                    serde_json::json!({
                        "id": s.id,
                        "vpc_id": s.vpc_id,
                        "ingress": s.ingress.iter().map(|rule| serde_json::json!({
                            "id": rule.id,
                            "protocol": rule.protocol,
                            "from_port": rule.from_port,
                            "to_port": rule.to_port,
                            "source": rule.source.to_string(),
                            "description": rule.description,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            regions.push(serde_json::json!({
                "account": account,
                "region": region,
                "clusters": clusters,
                "vpcs": r.vpcs.values().collect::<Vec<_>>(),
                "dhcp_options": r.dhcp_options.values().collect::<Vec<_>>(),
                "security_groups": sgs,
                "prefix_lists": r.prefix_lists.values().collect::<Vec<_>>(),
            }));
        }
        serde_json::json!({ "regions": regions })
    }
}

/// The `i`th of `n` past updates: `Successful`, of a type picked in turn,
/// created `n - i` days ago.
fn past_update(id: String, i: u32, n: u32, now: Instant) -> Update {
    const KINDS: &[(&str, &str, &str)] = &[
        ("VersionUpdate", "Version", "1.30"),
        (
            "LoggingUpdate",
            "ClusterLogging",
            "{\"clusterLogging\":[{\"types\":[\"api\"],\"enabled\":true}]}",
        ),
        ("EndpointAccessUpdate", "EndpointPrivateAccess", "true"),
        ("ConfigUpdate", "PlatformVersion", "eks.3"),
        (
            "AccessConfigUpdate",
            "AuthenticationMode",
            "API_AND_CONFIG_MAP",
        ),
        (
            "UpgradePolicyUpdate",
            "UpgradePolicy",
            "{\"supportType\":\"STANDARD\"}",
        ),
        (
            "AssociateIdentityProviderConfig",
            "IdentityProviderConfig",
            "[{\"type\":\"oidc\",\"name\":\"corp\"}]",
        ),
        ("VpcConfigUpdate", "SecurityGroups", "[\"sg-0past\"]"),
    ];
    let (kind, param, value) = KINDS[i as usize % KINDS.len()];
    let age = Duration::from_secs(86_400) * (n - i);
    Update {
        id,
        kind: UpdateKind::Past(kind),
        status: UpdateStatus::Successful,
        params: vec![(param.to_string(), value.to_string())],
        created_at: SystemTime::now() - age,
        started_at: now,
        ends_at: now,
        errors: Vec::new(),
        fail_with: None,
        client_token: None,
    }
}

/// Host bits cleared, duplicates removed, sorted: the form EKS returns.
pub fn normalise_cidrs(cidrs: impl IntoIterator<Item = IpNet>) -> Vec<IpNet> {
    let set: BTreeSet<IpNet> = cidrs.into_iter().map(|n| n.trunc()).collect();
    set.into_iter().collect()
}

fn short_hash(s: &str) -> String {
    let mut h: u32 = 2166136261;
    for b in s.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(16777619);
    }
    format!("{h:08x}")
}

/// Parses the `world::default_cidrs` form; kept here so tests can build states.
pub fn default_endpoint_cidrs() -> Vec<IpNet> {
    normalise_cidrs(
        world::default_cidrs()
            .iter()
            .filter_map(|s| s.parse::<IpNet>().ok()),
    )
}
