//! The AWS implementation of [`Provider`]: each operation as the single SDK
//! call it is (or one paged listing), and what AWS's answer means for
//! eksgate (a no-op update is "already converged", a busy cluster names the
//! update to wait for, a duplicate ingress rule is checked against the
//! group). The clients and credentials come from `clients`, one set per
//! (role, region); the fleet read's batching, sharing and concurrency are in
//! `fleet`, which this file serves with single calls. This file must not
//! orchestrate many calls at once.
//!
//! The reads of the network findings (NAT gateways, route tables, peering
//! connections) are in `network`, which batches them the same way.
//!
//! The account the base credentials act in (`GetCallerIdentity`) is asked
//! once, whatever the region, and kept, but only once AWS has answered: a
//! failure (after the SDK's own retries of throttling and server errors) is
//! not kept, so the next step in that account asks again instead of failing
//! on an old error. A role's account is the one its ARN names.
//!
//! What an update's answer means, and which updates still run, are in
//! `updates`, shared with `access`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_ec2::types::{
    AttributeBooleanValue, IpPermission, IpRange, Ipv6Range, UserIdGroupPair, VpcAttributeName,
};
use aws_sdk_eks::types::VpcConfigRequest;
use ipnet::IpNet;

pub use super::clients::AwsOptions;
use super::clients::{ClientSets, Clients};
use super::fleet::{self, FleetCalls, VpcDescription, NO_DHCP_OPTIONS};
use super::paging;
use super::sdk_error::{code_of, sdk_error};
use super::updates::{
    describe_update, in_progress_updates, listed_updates, request_token, update_started, Search,
};
use super::{
    DnsAttribute, IngressOutcome, NetworkReads, Provider, ProviderError, ReadRequest,
    RevokeOutcome, Scope, UpdateStart, UpdateState,
};
use crate::access::{AuthenticationMode, LiveAccess, LiveEntry};
use crate::desired::{AccessSource, ClusterKey};
use crate::endpoint::{public_cidrs, EndpointSettings};
use crate::live::{
    ClusterObservation, ClusterStatus, Live, LiveCluster, LivePrefixList, LiveSecurityGroup,
    LiveVpc, RuleCount, MANAGED_DESCRIPTION,
};
use crate::network::{LiveNetwork, ScopeReads};
use crate::set::SortedSet;
use tokio::sync::OnceCell;

/// How many times a duplicate ingress rule leads to a fresh read of the
/// group and a call for what is still missing. A second duplicate means a
/// rule appeared between the read and the call (someone else adding the
/// same sources at that moment); a third is not worth waiting for.
const INGRESS_ROUNDS: usize = 3;

/// At most this many pages of `ListClusters` (100 clusters each) per
/// region: far past EKS's quota of clusters, a guard against a token that
/// never ends (see `paging`).
const MAX_CLUSTER_PAGES: usize = 1000;

pub struct AwsProvider {
    pub(super) clients: ClientSets,
    /// The account each role (`None`: the base credentials) acts in, once
    /// AWS answered: the same in every region.
    identities: Mutex<HashMap<Option<String>, Arc<OnceCell<String>>>>,
}

impl AwsProvider {
    pub async fn new(opts: AwsOptions) -> AwsProvider {
        AwsProvider {
            clients: ClientSets::new(opts).await,
            identities: Mutex::new(HashMap::new()),
        }
    }

    /// The account the credentials of `scope` act in: asked once, and asked
    /// again after a failure.
    async fn caller_account(&self, scope: &Scope) -> Result<String, ProviderError> {
        let cell = {
            let mut map = self.identities.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(scope.role_arn.clone()).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            let c = self.clients.get(scope).await;
            caller_identity(&c).await
        })
        .await
        .cloned()
    }

    /// Refuses to change anything in an account other than the one pinned.
    /// A role's sessions act in the role's own account, which its ARN
    /// names: no call is needed to know it (the manifest already refuses a
    /// `role_arn` in another account than `account`). The base credentials
    /// are asked with `GetCallerIdentity`.
    async fn check_account(&self, scope: &Scope) -> Result<(), ProviderError> {
        if let Some(expected) = &scope.account {
            let actual = match scope.role_arn.as_deref().and_then(role_account) {
                Some(account) => account,
                None => self.caller_account(scope).await?,
            };
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

/// The account of an IAM role ARN (`arn:PARTITION:iam::ACCOUNT:role/…`),
/// when it is one by the manifest's own rule.
fn role_account(arn: &str) -> Option<String> {
    crate::manifest::parse_role_arn(arn).ok().map(|r| r.account)
}

/// `GetCallerIdentity`: the account the credentials act in.
async fn caller_identity(c: &Clients) -> Result<String, ProviderError> {
    let out = c
        .sts()
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| sdk_error(c, "GetCallerIdentity", e))?;
    out.account()
        .map(str::to_string)
        .ok_or_else(|| ProviderError::Transport {
            operation: "GetCallerIdentity".into(),
            message: "the answer named no account".into(),
        })
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
    // A re-read lists the updates while it describes the cluster. An update
    // that ends between the two answers would be in neither (the
    // description still shows the settings before it, the list no update
    // running) and the step would ask for what it already did, which EKS
    // rejects. Only an update not known to have ended before the re-read
    // can do that: when the list names one that is not running (and none
    // that is), the cluster is described again, after the list.
    let (described, listed) = if all_updates {
        let (d, l) = futures_util::future::join(
            c.eks.describe_cluster().name(name).send(),
            listed_updates(c, name, Search::Budgeted),
        )
        .await;
        match l {
            Ok(l) if !l.settled && l.running.is_empty() => (
                c.eks.describe_cluster().name(name).send().await,
                Some(Ok(l.running)),
            ),
            l => (d, Some(l.map(|l| l.running))),
        }
    } else {
        (c.eks.describe_cluster().name(name).send().await, None)
    };
    let out = match described {
        Ok(o) => o,
        Err(e) => {
            let err = sdk_error(c, "DescribeCluster", e);
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
    let updates_in_progress = match listed {
        Some(listed) => listed?,
        None if status == ClusterStatus::Updating => {
            in_progress_updates(c, name, Search::Budgeted).await?
        }
        None => Vec::new(),
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
        endpoint: endpoint_of(vpc),
        updates_in_progress,
        tags: cluster
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        authentication_mode: cluster
            .access_config()
            .and_then(|a| a.authentication_mode())
            .map(|m| crate::access::AuthenticationMode::parse(m.as_str())),
        network: super::network::cluster_network(cluster),
    }))
}

/// The endpoint settings of a `DescribeCluster` answer. Every block AWS
/// holds is kept, even one this version cannot parse: the diff shows it and
/// a managed list replaces it.
fn endpoint_of(vpc: Option<&aws_sdk_eks::types::VpcConfigResponse>) -> EndpointSettings {
    EndpointSettings::new(
        vpc.is_some_and(|v| v.endpoint_public_access()),
        vpc.is_some_and(|v| v.endpoint_private_access()),
    )
    .with_cidrs(Some(public_cidrs(
        vpc.map(|v| v.public_access_cidrs()).unwrap_or_default(),
    )))
}

/// Sources a security group lets in on TCP 443.
fn https_sources(group: &aws_sdk_ec2::types::SecurityGroup) -> SortedSet<AccessSource> {
    let mut out = Vec::new();
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
                out.push(AccessSource::Cidr(n.trunc()));
            }
        }
        for r in p.ipv6_ranges() {
            if let Some(n) = r.cidr_ipv6().and_then(|c| c.parse::<IpNet>().ok()) {
                out.push(AccessSource::Cidr(n.trunc()));
            }
        }
        for g in p.user_id_group_pairs() {
            if let Some(id) = g.group_id() {
                out.push(AccessSource::SecurityGroup(id.to_string()));
            }
        }
        for l in p.prefix_list_ids() {
            if let Some(id) = l.prefix_list_id() {
                out.push(AccessSource::PrefixList(id.to_string()));
            }
        }
    }
    out.into()
}

/// The inbound rules of a group as EC2 counts them against its quota: each
/// CIDR block one of its family, each group or prefix-list reference one of
/// each.
fn inbound_rules(group: &aws_sdk_ec2::types::SecurityGroup) -> RuleCount {
    let mut n = RuleCount::default();
    for p in group.ip_permissions() {
        let refs = (p.user_id_group_pairs().len() + p.prefix_list_ids().len()) as u32;
        n.ipv4 += p.ip_ranges().len() as u32 + refs;
        n.ipv6 += p.ipv6_ranges().len() as u32 + refs;
    }
    n
}

/// The prefix lists the group's inbound rules reference, once per
/// reference, in the order EC2 lists them.
fn inbound_prefix_lists(group: &aws_sdk_ec2::types::SecurityGroup) -> Vec<String> {
    group
        .ip_permissions()
        .iter()
        .flat_map(|p| p.prefix_list_ids())
        .filter_map(|l| l.prefix_list_id().map(str::to_string))
        .collect()
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
        .map_err(|e| sdk_error(c, "DescribeVpcAttribute", e))?;
    let value = match attr {
        DnsAttribute::Support => out.enable_dns_support().and_then(|v| v.value()),
        DnsAttribute::Hostnames => out.enable_dns_hostnames().and_then(|v| v.value()),
    };
    value.ok_or_else(|| ProviderError::Transport {
        operation: "DescribeVpcAttribute".into(),
        message: format!("the answer for `{vpc_id}` had no value"),
    })
}

/// One `DescribeVpcs` for at most `fleet::BATCH` ids: their DHCP options ids
/// and the IPv4 blocks associated with them.
async fn vpc_dhcp_ids(
    c: &Clients,
    ids: &[String],
) -> Result<BTreeMap<String, VpcDescription>, ProviderError> {
    let resp = c
        .ec2
        .describe_vpcs()
        .set_vpc_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| sdk_error(c, "DescribeVpcs", e))?;
    let mut out = BTreeMap::new();
    for v in resp.vpcs() {
        if let (Some(id), Some(d)) = (v.vpc_id(), v.dhcp_options_id()) {
            out.insert(
                id.to_string(),
                VpcDescription {
                    dhcp_options_id: d.to_string(),
                    cidr_blocks: super::network::vpc_cidr_blocks(v),
                },
            );
        }
    }
    Ok(out)
}

/// One `DescribeDhcpOptions` for at most `fleet::BATCH` ids, none when they
/// are all [`NO_DHCP_OPTIONS`].
async fn dhcp_servers(
    c: &Clients,
    ids: &[String],
) -> Result<BTreeMap<String, Vec<String>>, ProviderError> {
    let mut out = BTreeMap::new();
    let real: Vec<String> = ids
        .iter()
        .filter(|d| d.as_str() != NO_DHCP_OPTIONS)
        .cloned()
        .collect();
    if !real.is_empty() {
        let resp = c
            .ec2
            .describe_dhcp_options()
            .set_dhcp_options_ids(Some(real))
            .send()
            .await
            .map_err(|e| sdk_error(c, "DescribeDhcpOptions", e))?;
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
    if ids.iter().any(|d| d == NO_DHCP_OPTIONS) {
        out.insert(NO_DHCP_OPTIONS.into(), vec!["AmazonProvidedDNS".into()]);
    }
    Ok(out)
}

/// One `DescribeSecurityGroups` for at most `fleet::BATCH` ids.
async fn security_groups(
    c: &Clients,
    ids: &[String],
) -> Result<BTreeMap<String, LiveSecurityGroup>, ProviderError> {
    let resp = c
        .ec2
        .describe_security_groups()
        .set_group_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| sdk_error(c, "DescribeSecurityGroups", e))?;
    let mut out = BTreeMap::new();
    for g in resp.security_groups() {
        if let Some(id) = g.group_id() {
            let (exact_https, managed_https) = super::allow_list::exact_https(g);
            out.insert(
                id.to_string(),
                LiveSecurityGroup {
                    https_ingress: https_sources(g),
                    exact_https,
                    managed_https,
                    inbound_rules: Some(inbound_rules(g)),
                    inbound_prefix_lists: inbound_prefix_lists(g),
                    rule_quota: Some(c.rule_quota),
                },
            );
        }
    }
    Ok(out)
}

impl Provider for AwsProvider {
    fn profile(&self) -> Option<String> {
        self.clients.profile().map(str::to_string)
    }

    async fn credentials_source(&self) -> String {
        let source = self.clients.source();
        match self.clients.base_key_id().await {
            Some(key) => format!("the access key ending `{}` from {source}", key_suffix(&key)),
            None => source.to_string(),
        }
    }

    async fn read(&self, request: ReadRequest, parallelism: usize) -> Result<Live, ProviderError> {
        fleet::read(self, request, parallelism, None).await
    }

    async fn prepare(&self, scopes: Vec<Scope>) {
        for scope in &scopes {
            self.clients.get(scope).await;
        }
    }

    async fn read_with_network(
        &self,
        request: ReadRequest,
        parallelism: usize,
        network: &NetworkReads<'_>,
    ) -> Result<Live, ProviderError> {
        fleet::read(self, request, parallelism, Some(network)).await
    }

    async fn list_clusters(&self, scope: &Scope) -> Result<Vec<String>, ProviderError> {
        let c = self.clients.get(scope).await;
        let mut names = Vec::new();
        let what = || format!("the clusters of `{}`", scope.region);
        let c = &c;
        paging::follow(
            "ListClusters",
            what,
            MAX_CLUSTER_PAGES,
            // 100 is EKS's largest page: the fewest calls for a big region.
            |token| async move {
                c.eks
                    .list_clusters()
                    .max_results(100)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| sdk_error(c, "ListClusters", e))
            },
            |out| {
                names.extend(out.clusters().iter().cloned());
                Ok(out.next_token().map(str::to_string))
            },
        )
        .await?;
        Ok(names)
    }

    async fn describe_cluster(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<ClusterObservation, ProviderError> {
        let c = self.clients.get(scope).await;
        describe(&c, scope, name, true).await
    }

    async fn update_endpoint(
        &self,
        scope: &Scope,
        name: &str,
        settings: &EndpointSettings,
    ) -> Result<UpdateStart, ProviderError> {
        self.check_account(scope).await?;
        let c = self.clients.get(scope).await;
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
        // The SDK retries a call answered with a 5xx, and AWS may have made
        // the change before answering: with the same token, the retry gets
        // the update the first attempt started instead of a conflict.
        let sent = c
            .eks
            .update_cluster_config()
            .name(name)
            .resources_vpc_config(cfg)
            .client_request_token(request_token())
            .send()
            .await
            .map(|out| out.update().and_then(|u| u.id()).map(str::to_string));
        update_started(&c, name, sent).await
    }

    async fn describe_update(
        &self,
        scope: &Scope,
        name: &str,
        update_id: &str,
    ) -> Result<UpdateState, ProviderError> {
        let c = self.clients.get(scope).await;
        describe_update(&c, name, update_id).await
    }

    async fn read_vpc(&self, scope: &Scope, vpc_id: &str) -> Result<LiveVpc, ProviderError> {
        let c = self.clients.get(scope).await;
        let support = read_vpc_attr(&c, vpc_id, DnsAttribute::Support).await?;
        let hostnames = read_vpc_attr(&c, vpc_id, DnsAttribute::Hostnames).await?;
        let described = vpc_dhcp_ids(&c, &[vpc_id.to_string()])
            .await?
            .remove(vpc_id)
            .unwrap_or_default();
        let dopt = described.dhcp_options_id;
        let servers = if dopt.is_empty() {
            Vec::new()
        } else {
            dhcp_servers(&c, std::slice::from_ref(&dopt))
                .await?
                .remove(&dopt)
                .unwrap_or_default()
        };
        Ok(LiveVpc {
            cidr_blocks: described.cidr_blocks,
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
        let c = self.clients.get(scope).await;
        let v = AttributeBooleanValue::builder().value(value).build();
        let req = c.ec2.modify_vpc_attribute().vpc_id(vpc_id);
        let req = match attribute {
            DnsAttribute::Support => req.enable_dns_support(v),
            DnsAttribute::Hostnames => req.enable_dns_hostnames(v),
        };
        req.send()
            .await
            .map_err(|e| sdk_error(&c, "ModifyVpcAttribute", e))?;
        Ok(())
    }

    async fn authorize_https_ingress(
        &self,
        scope: &Scope,
        group_id: &str,
        sources: &SortedSet<AccessSource>,
    ) -> Result<IngressOutcome, ProviderError> {
        self.check_account(scope).await?;
        let c = self.clients.get(scope).await;
        authorize_https_ingress(&c, group_id, sources).await
    }

    async fn read_access(
        &self,
        scope: &Scope,
        name: &str,
        principals: &[String],
    ) -> Result<LiveAccess, ProviderError> {
        let c = self.clients.get(scope).await;
        super::access::read_access(&c, name, principals).await
    }

    async fn access_entries(
        &self,
        scope: &Scope,
        name: &str,
        limit: usize,
    ) -> Result<Vec<LiveEntry>, ProviderError> {
        let c = self.clients.get(scope).await;
        super::access::read_all_entries(&c, name, limit).await
    }

    async fn update_access_config(
        &self,
        scope: &Scope,
        name: &str,
        mode: &AuthenticationMode,
    ) -> Result<UpdateStart, ProviderError> {
        self.check_account(scope).await?;
        let c = self.clients.get(scope).await;
        super::access::update_access_config(&c, name, mode).await
    }

    async fn revoke_https_ingress(
        &self,
        scope: &Scope,
        group_id: &str,
        sources: &SortedSet<AccessSource>,
    ) -> Result<RevokeOutcome, ProviderError> {
        self.check_account(scope).await?;
        let c = self.clients.get(scope).await;
        super::allow_list::revoke_https_ingress(&c, group_id, sources).await
    }
}

/// The single calls of the fleet read (`fleet` batches and schedules them).
impl FleetCalls for AwsProvider {
    type Conn = Clients;

    async fn connect(&self, scope: &Scope) -> Clients {
        self.clients.get(scope).await
    }

    async fn check_account(&self, scope: &Scope) -> Result<(), ProviderError> {
        AwsProvider::check_account(self, scope).await
    }

    async fn describe_cluster(
        conn: Clients,
        scope: Scope,
        name: String,
    ) -> Result<ClusterObservation, ProviderError> {
        describe(&conn, &scope, &name, false).await
    }

    async fn vpc_attribute(
        conn: Clients,
        vpc_id: String,
        attribute: DnsAttribute,
    ) -> Result<bool, ProviderError> {
        read_vpc_attr(&conn, &vpc_id, attribute).await
    }

    async fn vpc_dhcp_options(
        conn: &Clients,
        vpc_ids: &[String],
    ) -> Result<BTreeMap<String, VpcDescription>, ProviderError> {
        vpc_dhcp_ids(conn, vpc_ids).await
    }

    async fn dhcp_servers(
        conn: &Clients,
        dhcp_ids: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, ProviderError> {
        dhcp_servers(conn, dhcp_ids).await
    }

    async fn security_groups(
        conn: &Clients,
        group_ids: &[String],
    ) -> Result<BTreeMap<String, LiveSecurityGroup>, ProviderError> {
        security_groups(conn, group_ids).await
    }

    async fn prefix_list(
        conn: Clients,
        id: String,
    ) -> Result<Option<LivePrefixList>, ProviderError> {
        super::allow_list::read_prefix_list(&conn, &id).await
    }

    async fn network(
        conn: Clients,
        scope: Scope,
        reads: ScopeReads,
    ) -> Result<LiveNetwork, ProviderError> {
        super::network::read_scope(&conn, &scope, &reads).await
    }

    async fn cluster_access(conn: Clients, name: String, principals: Vec<String>) -> LiveAccess {
        match super::access::read_access(&conn, &name, &principals).await {
            Ok(access) => access,
            Err(ProviderError::Aws { code, message, .. }) => LiveAccess::NotRead { code, message },
            Err(other) => LiveAccess::NotRead {
                code: String::new(),
                message: other.to_string(),
            },
        }
    }
}

/// Lets `sources` in on TCP 443. AWS refuses a whole
/// `AuthorizeSecurityGroupIngress` when any one of its rules exists
/// (`InvalidPermission.Duplicate`), adding none of the others: on that
/// answer the group is read again and only what is still missing is asked
/// for, at most [`INGRESS_ROUNDS`] times.
async fn authorize_https_ingress(
    c: &Clients,
    group_id: &str,
    sources: &SortedSet<AccessSource>,
) -> Result<IngressOutcome, ProviderError> {
    let mut pending = sources.clone();
    let mut rounds = 0;
    loop {
        rounds += 1;
        let err = match authorize_once(c, group_id, &pending).await {
            Ok(()) => return Ok(IngressOutcome::Added),
            Err(err) if code_of(&err) == Some("InvalidPermission.Duplicate") => err,
            Err(err) => return Err(err),
        };
        let present = security_groups(c, &[group_id.to_string()])
            .await?
            .remove(group_id)
            .map(|g| g.https_ingress)
            .unwrap_or_default();
        pending = sources.difference(&present).cloned().collect();
        if pending.is_empty() {
            return Ok(IngressOutcome::AlreadyPresent);
        }
        if rounds == INGRESS_ROUNDS {
            return Err(err);
        }
    }
}

/// One `AuthorizeSecurityGroupIngress` for TCP 443 from `sources`.
async fn authorize_once(
    c: &Clients,
    group_id: &str,
    sources: &SortedSet<AccessSource>,
) -> Result<(), ProviderError> {
    let mut perm = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(443)
        .to_port(443);
    for source in sources {
        let cidr = match source {
            AccessSource::Cidr(net) => net.to_string(),
            AccessSource::SecurityGroup(g) => {
                perm = perm.user_id_group_pairs(
                    UserIdGroupPair::builder()
                        .group_id(g)
                        .description(MANAGED_DESCRIPTION)
                        .build(),
                );
                continue;
            }
            AccessSource::PrefixList(l) => {
                perm = perm.prefix_list_ids(
                    aws_sdk_ec2::types::PrefixListId::builder()
                        .prefix_list_id(l)
                        .description(MANAGED_DESCRIPTION)
                        .build(),
                );
                continue;
            }
        };
        perm = if cidr.contains(':') {
            perm.ipv6_ranges(
                Ipv6Range::builder()
                    .cidr_ipv6(cidr)
                    .description(MANAGED_DESCRIPTION)
                    .build(),
            )
        } else {
            perm.ip_ranges(
                IpRange::builder()
                    .cidr_ip(cidr)
                    .description(MANAGED_DESCRIPTION)
                    .build(),
            )
        };
    }
    c.ec2
        .authorize_security_group_ingress()
        .group_id(group_id)
        .ip_permissions(perm.build())
        .send()
        .await
        .map_err(|e| sdk_error(c, "AuthorizeSecurityGroupIngress", e))?;
    Ok(())
}

/// The last four characters of an access key id: enough to tell keys
/// apart, not enough to be a secret.
pub fn key_suffix(key: &str) -> &str {
    let start = key.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
    &key[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roles_account_is_the_one_its_arn_names() {
        assert_eq!(
            role_account("arn:aws:iam::200000000003:role/eksgate").as_deref(),
            Some("200000000003")
        );
        assert_eq!(
            role_account("arn:aws-cn:iam::200000000003:role/ops/eksgate").as_deref(),
            Some("200000000003")
        );
        // Anything else is asked of STS.
        for other in [
            "arn:aws:sts::200000000003:assumed-role/eksgate/s",
            "arn:aws:iam::200000000003:user/eksgate",
            "arn:aws:iam::2000:role/eksgate",
            "arn:aws:iam::20000000000x:role/eksgate",
            "not an arn",
        ] {
            assert_eq!(role_account(other), None, "{other}");
        }
    }

    /// AWS's list is kept whole: a block this version cannot read was once
    /// dropped, so the diff hid it and a plan never replaced it.
    #[test]
    fn regression_public_cidrs_that_do_not_parse_are_kept() {
        let vpc = aws_sdk_eks::types::VpcConfigResponse::builder()
            .endpoint_public_access(true)
            .public_access_cidrs("203.0.113.9/24")
            .public_access_cidrs("203.0.113.0/33")
            .build();
        let shown: Vec<String> = endpoint_of(Some(&vpc))
            .public_access_cidrs
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["203.0.113.0/24", "203.0.113.0/33"]);
    }
}
