//! Rehearsals (`eksgate apply --rehearse`): the live state read from the real
//! account is copied into an emulator world ([`World::from_live`]), the
//! emulator runs in-process on a loopback port with short updates, and the
//! whole apply runs against that copy. What the copy's history recorded
//! becomes a timeline of calls and waits ([`timeline`]), and reading the copy
//! afterwards gives the predicted end state ([`end_state`]).
//!
//! This module builds worlds and turns the copy's history into data; it must
//! not print (the command does) and must never hold a client for the real
//! account: everything it starts points at the copy.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::desired::{AccessSource, DesiredCluster};
use crate::live::{ClusterObservation, ClusterStatus, Live};
use crate::plan::{mode_name, ClusterSettings, Plan, PlanStatus, StepKind};
use crate::provider::aws::{AwsOptions, AwsProvider};
use crate::sim::world::{
    AccountDef, ClusterDef, ClusterStatusDef, DhcpOptionsDef, FaultsDef, SecurityGroupDef, VpcDef,
    DEFAULT_ACCOUNT,
};
use crate::sim::{self, Behaviour, HistoryEntry, SimHandle, World};
use crate::text::string_list;

/// The access key the rehearsal's provider signs with; the copy maps it to
/// the account the real credentials act in.
pub const ACCESS_KEY: &str = "AKIDEKSGATEREHEARSAL";
const SECRET_KEY: &str = "eksgate-rehearsal-secret";

/// The account the copy treats as the caller's: the one the manifests pin
/// without a role (the real credentials must act there, or those clusters
/// would be blocked), else the emulator's default.
fn caller_account(desired: &[DesiredCluster]) -> String {
    desired
        .iter()
        .find(|d| d.role_arn.is_none() && d.key.account.is_some())
        .and_then(|d| d.key.account.clone())
        .unwrap_or_else(|| DEFAULT_ACCOUNT.to_string())
}

impl World {
    /// A world holding what `live` read for `desired`: each cluster found
    /// with its endpoint, CIDRs, status, VPC and cluster security group; the
    /// VPCs with their DNS attributes and DHCP options' servers; the security
    /// groups with the sources they let in on 443. Things eksgate did not
    /// read (the VPC of a cluster that stays public, a source security group
    /// of `private_access_from`) are filled in as harmless stand-ins, since
    /// the plan does not depend on them. A cluster with an update in progress
    /// gets an update of AWS's own, running for `update_duration`.
    pub fn from_live(live: &Live, desired: &[DesiredCluster], update_duration: Duration) -> World {
        let caller = caller_account(desired);
        let acct = |a: &Option<String>| Some(a.clone().unwrap_or_else(|| caller.clone()));
        let mut world = World::default();

        let mut accounts: BTreeMap<String, AccountDef> = BTreeMap::new();
        accounts.insert(
            caller.clone(),
            AccountDef {
                id: caller.clone(),
                access_key_ids: vec![ACCESS_KEY.to_string()],
                roles: Vec::new(),
            },
        );
        for d in desired {
            if let (Some(a), Some(role)) = (&d.key.account, &d.role_arn) {
                let entry = accounts.entry(a.clone()).or_insert_with(|| AccountDef {
                    id: a.clone(),
                    access_key_ids: Vec::new(),
                    roles: Vec::new(),
                });
                if !entry.roles.contains(role) {
                    entry.roles.push(role.clone());
                }
            }
        }
        world.account = accounts.into_values().collect();

        // (account, region, id) of what is defined already.
        let mut vpcs: BTreeSet<(Option<String>, String, String)> = BTreeSet::new();
        let mut dhcp: BTreeSet<(Option<String>, String, String)> = BTreeSet::new();
        let mut groups: BTreeSet<(Option<String>, String, String)> = BTreeSet::new();

        for (key, vpc) in &live.vpcs {
            let account = acct(&key.account);
            let d = (
                account.clone(),
                key.region.clone(),
                vpc.dhcp_options_id.clone(),
            );
            if dhcp.insert(d) {
                world.dhcp_options.push(DhcpOptionsDef {
                    id: vpc.dhcp_options_id.clone(),
                    region: key.region.clone(),
                    account: account.clone(),
                    domain_name_servers: vpc.domain_name_servers.clone(),
                });
            }
            if vpcs.insert((account.clone(), key.region.clone(), key.vpc_id.clone())) {
                world.vpc.push(VpcDef {
                    id: key.vpc_id.clone(),
                    region: key.region.clone(),
                    account,
                    dns_support: vpc.dns_support,
                    // EC2 has no hostnames without support; a live read
                    // cannot say otherwise, but the world must be valid.
                    dns_hostnames: vpc.dns_hostnames && vpc.dns_support,
                    dhcp_options: Some(vpc.dhcp_options_id.clone()),
                    cidr_block: "10.0.0.0/16".to_string(),
                });
            }
        }

        let wanted: BTreeMap<_, _> = desired.iter().map(|d| (&d.key, d)).collect();
        for obs in live.clusters.values() {
            let ClusterObservation::Found(c) = obs else {
                continue;
            };
            let account = acct(&c.key.account);
            let region = c.key.region.clone();
            if vpcs.insert((account.clone(), region.clone(), c.vpc_id.clone())) {
                // Not read: the cluster keeps or gets public access only.
                world.vpc.push(VpcDef {
                    id: c.vpc_id.clone(),
                    region: region.clone(),
                    account: account.clone(),
                    dns_support: true,
                    dns_hostnames: false,
                    dhcp_options: None,
                    cidr_block: "10.0.0.0/16".to_string(),
                });
            }
            if let Some(sg) = &c.security_group_id {
                if groups.insert((account.clone(), region.clone(), sg.clone())) {
                    let https = live
                        .security_groups
                        .iter()
                        .find(|(k, _)| k.region == region && &k.group_id == sg)
                        .map(|(_, g)| g.https_ingress.iter().map(|s| s.to_string()).collect())
                        .unwrap_or_default();
                    world.security_group.push(SecurityGroupDef {
                        id: sg.clone(),
                        region: region.clone(),
                        account: account.clone(),
                        vpc_id: c.vpc_id.clone(),
                        name: None,
                        https_ingress: https,
                    });
                }
            }
            // Source groups are not read; AWS accepts rules from groups that
            // exist, so the copy assumes they do.
            if let Some(d) = wanted.get(&c.key) {
                for s in &d.private_access_from {
                    if let AccessSource::SecurityGroup(id) = s {
                        if groups.insert((account.clone(), region.clone(), id.clone())) {
                            world.security_group.push(SecurityGroupDef {
                                id: id.clone(),
                                region: region.clone(),
                                account: account.clone(),
                                vpc_id: c.vpc_id.clone(),
                                name: Some(format!("{id} (stand-in)")),
                                https_ingress: Vec::new(),
                            });
                        }
                    }
                }
            }
            let (status, running) = match &c.status {
                ClusterStatus::Active => (ClusterStatusDef::Active, false),
                ClusterStatus::Updating => (ClusterStatusDef::Active, true),
                ClusterStatus::Deleting => (ClusterStatusDef::Deleting, false),
                ClusterStatus::Failed => (ClusterStatusDef::Failed, false),
                ClusterStatus::Creating | ClusterStatus::Pending | ClusterStatus::Other(_) => {
                    (ClusterStatusDef::Creating, false)
                }
            };
            let running = running || !c.updates_in_progress.is_empty();
            world.cluster.push(ClusterDef {
                name: c.key.name.clone(),
                region,
                account,
                vpc_id: c.vpc_id.clone(),
                security_group: c.security_group_id.clone(),
                public_access: c.endpoint.public,
                private_access: c.endpoint.private,
                public_access_cidrs: c
                    .public_access_cidrs
                    .iter()
                    .map(|n| n.to_string())
                    .collect(),
                status,
                platform_update: running.then_some(update_duration),
            });
        }
        world.faults = FaultsDef::default();
        world
    }
}

/// The in-process copy and a provider that talks only to it.
pub struct Copy {
    pub sim: SimHandle,
    pub provider: AwsProvider,
}

/// Starts the copy of `live` on `127.0.0.1:0`, endpoint updates taking
/// `update_duration`, and a provider signed with the copy's own key (the
/// roles the manifests name are assumed inside the copy).
pub async fn start_copy(
    live: &Live,
    desired: &[DesiredCluster],
    update_duration: Duration,
    region: Option<String>,
    roles: BTreeMap<String, String>,
) -> std::io::Result<Copy> {
    let world = World::from_live(live, desired, update_duration);
    let behaviour = Behaviour {
        update_duration,
        ..Behaviour::default()
    };
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let sim = sim::start(&world, behaviour, loopback).await?;
    let provider = AwsProvider::new(AwsOptions {
        region,
        roles,
        endpoint_url: Some(sim.url()),
        static_credentials: Some((ACCESS_KEY.to_string(), SECRET_KEY.to_string())),
        ..AwsOptions::default()
    })
    .await;
    Ok(Copy { sim, provider })
}

/// One line of the timeline: a call (runs of the same call folded into one,
/// with a count) or a change of state in the copy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// Milliseconds since the first entry.
    pub offset_ms: u64,
    /// `UpdateClusterConfig`, or for a state change `update`, `endpoint`...
    pub operation: String,
    pub region: String,
    pub target: String,
    /// `ok`, an error code, or the new state.
    pub outcome: String,
    /// How many identical calls in a row this line stands for.
    pub count: usize,
}

/// The copy's history from entry `from` on, as a timeline. Polls of an
/// update are folded: one line per run of the same call with the same
/// answer.
pub fn timeline(history: &[HistoryEntry], from: usize) -> Vec<TimelineEntry> {
    use crate::sim::Event as H;
    let mut entries: Vec<&HistoryEntry> = history.get(from..).unwrap_or_default().iter().collect();
    // The emulator records a call's state change just before the call's own
    // line, at the same instant: show the call first, then what it changed.
    entries.sort_by(|a, b| {
        let is_state = |e: &HistoryEntry| !matches!(e.event, H::Request { .. });
        a.t_ms
            .total_cmp(&b.t_ms)
            .then(is_state(a).cmp(&is_state(b)))
    });
    let start = entries.first().map(|e| e.t_ms).unwrap_or(0.0);
    let mut out: Vec<TimelineEntry> = Vec::new();
    for e in entries {
        let (operation, region, target, outcome) = match &e.event {
            H::Request {
                operation,
                region,
                target,
                outcome,
                ..
            } => (
                operation.clone(),
                region.clone(),
                target.clone().unwrap_or_default(),
                outcome.clone(),
            ),
            H::UpdateStatus {
                region,
                cluster,
                update_id,
                status,
                ..
            } => (
                "update".to_string(),
                region.clone(),
                format!("{cluster} {}", short_id(update_id)),
                status.clone(),
            ),
            H::ClusterStatus { .. } => continue,
            H::Endpoint {
                region,
                cluster,
                public,
                private,
                cidrs,
                ..
            } => {
                let mut now = mode_name(*public, *private).to_string();
                if *public {
                    now.push_str(&format!(", public CIDRs {}", string_list(cidrs)));
                }
                ("endpoint".to_string(), region.clone(), cluster.clone(), now)
            }
            H::VpcAttribute {
                region,
                vpc_id,
                attribute,
                value,
                ..
            } => (
                "vpc attribute".to_string(),
                region.clone(),
                vpc_id.clone(),
                format!("`{attribute}` = {value}"),
            ),
            H::SecurityGroupIngress {
                region,
                group_id,
                sources,
                ..
            } => (
                "ingress".to_string(),
                region.clone(),
                group_id.clone(),
                format!("TCP 443 from {}", string_list(sources)),
            ),
        };
        if let Some(last) = out.last_mut() {
            if last.operation == operation
                && last.region == region
                && last.target == target
                && last.outcome == outcome
            {
                last.count += 1;
                continue;
            }
        }
        out.push(TimelineEntry {
            // Offsets are whole milliseconds; the fraction is noise.
            offset_ms: (e.t_ms - start).max(0.0) as u64,
            operation,
            region,
            target,
            outcome,
            count: 1,
        });
    }
    out
}

/// The first block of a uuid: enough to tell updates apart on a line.
fn short_id(id: &str) -> &str {
    id.split('-').next().unwrap_or(id)
}

/// The timeline as aligned text lines.
pub fn render_timeline(entries: &[TimelineEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        let op = if e.count > 1 {
            format!("{} ×{}", e.operation, e.count)
        } else {
            e.operation.clone()
        };
        let at = format!("+{}.{:03}s", e.offset_ms / 1000, e.offset_ms % 1000);
        let target = format!("{}/{}", e.region, e.target);
        out.push_str(&format!("  {at:>9}  {op:<30} {target:<40} {}\n", e.outcome));
    }
    out
}

/// One cluster as the rehearsal predicts it after the apply.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EndState {
    pub cluster: String,
    /// As read from the copy after the apply; `None` if it could not be read.
    pub settings: Option<ClusterSettings>,
    /// Planning again on the copy finds nothing to do.
    pub matches: bool,
    /// Why not, when it does not match.
    pub note: String,
}

/// Per declared cluster, the copy's settings after the apply and whether a
/// new plan on the copy has nothing left to do.
pub fn end_state(after: &Plan) -> Vec<EndState> {
    after
        .clusters
        .iter()
        .map(|c| {
            let (matches, note) = match c.status {
                PlanStatus::NoChanges => (true, "matches the manifest".to_string()),
                PlanStatus::Changes => {
                    let left = c.steps.iter().filter(|id| {
                        after
                            .step(id)
                            .is_some_and(|s| s.kind != StepKind::WaitUpdate)
                    });
                    (
                        false,
                        format!(
                            "does not match the manifest: {} step(s) would remain",
                            left.count()
                        ),
                    )
                }
                PlanStatus::Blocked => {
                    let why: Vec<&str> = after
                        .findings
                        .iter()
                        .filter(|f| f.cluster == c.key)
                        .map(|f| f.message.as_str())
                        .collect();
                    (false, format!("blocked: {}", why.join("; ")))
                }
            };
            EndState {
                cluster: c.key.to_string(),
                settings: c.live.clone(),
                matches,
                note,
            }
        })
        .collect()
}

/// `us-east-1/payments: private only, TCP 443 from ["10.20.0.0/16"]: matches the manifest`.
pub fn render_end_state(states: &[EndState]) -> String {
    let mut out = String::new();
    for s in states {
        let settings = match &s.settings {
            Some(c) => {
                let mut t = mode_name(c.public_access, c.private_access).to_string();
                if c.public_access {
                    if let Some(cidrs) = &c.public_access_cidrs {
                        t.push_str(&format!(", public CIDRs {}", string_list(cidrs)));
                    }
                }
                if c.private_access {
                    t.push_str(&format!(
                        ", TCP 443 from {}",
                        string_list(&c.private_access_from)
                    ));
                }
                t
            }
            None => "not read".to_string(),
        };
        out.push_str(&format!("  {}: {settings}: {}\n", s.cluster, s.note));
    }
    out
}

/// What the copy would plan differently from the real plan, ignoring waits
/// for updates already running (their ids differ in the copy): `None` when
/// the copy is faithful.
pub fn divergence(real: &Plan, copy: &Plan) -> Option<String> {
    let key = |p: &Plan| -> BTreeSet<(String, String)> {
        p.steps
            .iter()
            .filter(|s| s.kind != StepKind::WaitUpdate)
            .map(|s| (s.id.clone(), s.after.to_string()))
            .collect()
    };
    let (a, b) = (key(real), key(copy));
    if a == b {
        return None;
    }
    let only_real: Vec<String> = a.difference(&b).map(|(id, _)| format!("`{id}`")).collect();
    let only_copy: Vec<String> = b.difference(&a).map(|(id, _)| format!("`{id}`")).collect();
    Some(format!(
        "the copy plans differently from the live state (only live: {}; only copy: {})",
        if only_real.is_empty() {
            "none".to_string()
        } else {
            only_real.join(", ")
        },
        if only_copy.is_empty() {
            "none".to_string()
        } else {
            only_copy.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::desired::{ClusterKey, EndpointAccess};
    use crate::live::{LiveCluster, LiveSecurityGroup, LiveVpc, SecurityGroupKey, VpcKey};

    fn key(name: &str) -> ClusterKey {
        ClusterKey {
            account: None,
            region: "us-east-1".into(),
            name: name.into(),
        }
    }

    fn desired(name: &str, public: bool, private: bool, from: &[&str]) -> DesiredCluster {
        let mut d = crate::apply::fake::want(name, EndpointAccess { public, private }, from);
        d.key = key(name);
        d
    }

    fn live_of() -> Live {
        let mut live = Live::default();
        for (name, updating) in [("payments", false), ("ledger", true)] {
            live.clusters.insert(
                key(name),
                ClusterObservation::Found(LiveCluster {
                    key: key(name),
                    arn: format!("arn:aws:eks:us-east-1:123456789012:cluster/{name}"),
                    status: if updating {
                        ClusterStatus::Updating
                    } else {
                        ClusterStatus::Active
                    },
                    vpc_id: format!("vpc-{name}"),
                    security_group_id: Some(format!("sg-{name}")),
                    endpoint: EndpointAccess {
                        public: true,
                        private: false,
                    },
                    public_access_cidrs: ["203.0.113.0/24".parse().unwrap()].into(),
                    updates_in_progress: if updating {
                        vec!["u-1".into()]
                    } else {
                        Vec::new()
                    },
                }),
            );
        }
        live.clusters
            .insert(key("ghost"), ClusterObservation::NotFound);
        live.vpcs.insert(
            VpcKey {
                account: None,
                region: "us-east-1".into(),
                vpc_id: "vpc-payments".into(),
            },
            LiveVpc {
                dns_support: true,
                dns_hostnames: false,
                dhcp_options_id: "dopt-1".into(),
                domain_name_servers: vec!["AmazonProvidedDNS".into()],
            },
        );
        live.security_groups.insert(
            SecurityGroupKey {
                account: None,
                region: "us-east-1".into(),
                group_id: "sg-payments".into(),
            },
            LiveSecurityGroup {
                https_ingress: BTreeSet::from([AccessSource::Cidr("10.1.0.0/16".parse().unwrap())]),
            },
        );
        live
    }

    #[test]
    fn a_world_from_live_holds_what_was_read() {
        let wants = vec![
            desired("payments", false, true, &["sg-bastion"]),
            desired("ledger", true, false, &[]),
            desired("ghost", true, false, &[]),
        ];
        let world = World::from_live(&live_of(), &wants, Duration::from_secs(2));
        let names: Vec<&str> = world.cluster.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["ledger", "payments"],
            "the missing one stays missing"
        );
        let payments = world.cluster.iter().find(|c| c.name == "payments").unwrap();
        assert_eq!(payments.public_access_cidrs, vec!["203.0.113.0/24"]);
        assert_eq!(payments.platform_update, None);
        assert_eq!(payments.account.as_deref(), Some(DEFAULT_ACCOUNT));
        let ledger = world.cluster.iter().find(|c| c.name == "ledger").unwrap();
        assert_eq!(ledger.platform_update, Some(Duration::from_secs(2)));
        let vpc = world.vpc.iter().find(|v| v.id == "vpc-payments").unwrap();
        assert!(vpc.dns_support && !vpc.dns_hostnames);
        assert_eq!(vpc.dhcp_options.as_deref(), Some("dopt-1"));
        assert!(world.vpc.iter().any(|v| v.id == "vpc-ledger"));
        let sg = world
            .security_group
            .iter()
            .find(|s| s.id == "sg-payments")
            .unwrap();
        assert_eq!(sg.https_ingress, vec!["10.1.0.0/16"]);
        assert!(world.security_group.iter().any(|s| s.id == "sg-bastion"));
        assert_eq!(world.account[0].access_key_ids, vec![ACCESS_KEY]);
        // The world passes the checks a world file gets.
        let text = toml::to_string(&world).unwrap();
        World::parse(&crate::diagnostic::Source::new("copy.toml", text))
            .unwrap_or_else(|d| panic!("{}", crate::diagnostic::render_all(&d, false)));
    }

    #[test]
    fn polls_fold_into_one_line() {
        use crate::sim::Event as H;
        let req = |t: f64, op: &str, outcome: &str| HistoryEntry {
            t_ms: t,
            event: H::Request {
                service: "eks".into(),
                operation: op.into(),
                account: DEFAULT_ACCOUNT.into(),
                region: "us-east-1".into(),
                target: Some("payments".into()),
                outcome: outcome.into(),
                http_status: 200,
            },
        };
        let history = vec![
            req(5.0, "DescribeCluster", "ok"),
            req(10.0, "UpdateClusterConfig", "ok"),
            req(12.5, "DescribeUpdate", "ok"),
            req(200.0, "DescribeUpdate", "ok"),
            req(400.0, "DescribeUpdate", "ok"),
            HistoryEntry {
                t_ms: 2010.0,
                event: H::UpdateStatus {
                    account: DEFAULT_ACCOUNT.into(),
                    region: "us-east-1".into(),
                    cluster: "payments".into(),
                    update_id: "4f1c0d2a-0000-4000-a000-000000000000".into(),
                    update_type: "EndpointAccessUpdate".into(),
                    status: "Successful".into(),
                },
            },
        ];
        let text = render_timeline(&timeline(&history, 1));
        insta::assert_snapshot!(text, @r"
           +0.000s  UpdateClusterConfig            us-east-1/payments                       ok
           +0.002s  DescribeUpdate ×3              us-east-1/payments                       ok
           +2.000s  update                         us-east-1/payments 4f1c0d2a              Successful
        ");
    }
}
