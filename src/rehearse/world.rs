//! The rehearsal's copy of the account: a world for the emulator holding
//! what the real read found ([`World::from_live`]).
//!
//! Pure data: it builds a world and starts nothing; what it does not know
//! (a VPC eksgate did not read) it fills with harmless stand-ins.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::ACCESS_KEY;
use crate::desired::{AccessSource, DesiredCluster};
use crate::live::{ClusterObservation, ClusterStatus, Live, LiveSecurityGroup, RuleCount};
use crate::sim::world::{
    AccountDef, ClusterDef, ClusterStatusDef, DhcpOptionsDef, FaultsDef, PrefixListDef, RuleDef,
    SecurityGroupDef, VpcDef, DEFAULT_ACCOUNT,
};
use crate::sim::World;

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
    /// groups with the sources they let in on 443; the network facts of
    /// `rehearse::network`. Things eksgate did not
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
                access_keys: Vec::new(),
                roles: Vec::new(),
                deny: Vec::new(),
                disabled_regions: Vec::new(),
            },
        );
        for d in desired {
            if let (Some(a), Some(role)) = (&d.key.account, &d.role_arn) {
                let entry = accounts.entry(a.clone()).or_insert_with(|| AccountDef {
                    id: a.clone(),
                    access_key_ids: Vec::new(),
                    access_keys: Vec::new(),
                    roles: Vec::new(),
                    deny: Vec::new(),
                    disabled_regions: Vec::new(),
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
        // Prefix lists the copy's rules reference.
        let mut lists: BTreeSet<(Option<String>, String, String)> = BTreeSet::new();

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
                    cidr_block: super::network::vpc_blocks(vpc).0,
                    secondary_cidr_blocks: super::network::vpc_blocks(vpc).1,
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
                    cidr_block: super::network::STAND_IN_BLOCK.to_string(),
                    secondary_cidr_blocks: Vec::new(),
                });
            }
            if let Some(sg) = &c.security_group_id {
                if groups.insert((account.clone(), region.clone(), sg.clone())) {
                    let read = live
                        .security_groups
                        .iter()
                        .find(|(k, _)| k.region == region && &k.group_id == sg)
                        .map(|(_, g)| g);
                    // Exact 443 rules as they are (eksgate's with its
                    // description); sources covered only by wider rules as
                    // one wide TCP rule each, so the copy revokes what the
                    // real group would.
                    let https = read
                        .map(|g| {
                            g.exact_https
                                .difference(&g.managed_https)
                                .map(|s| s.to_string())
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut ingress: Vec<RuleDef> = Vec::new();
                    if let Some(g) = read {
                        let rule =
                            |source: &AccessSource, ports: (i32, i32), managed: bool| RuleDef {
                                protocol: "tcp".to_string(),
                                from_port: Some(ports.0),
                                to_port: Some(ports.1),
                                source: source.to_string(),
                                description: managed
                                    .then(|| crate::live::MANAGED_DESCRIPTION.to_string()),
                            };
                        ingress.extend(g.managed_https.iter().map(|s| rule(s, (443, 443), true)));
                        ingress.extend(
                            g.https_ingress
                                .difference(&g.exact_https)
                                .map(|s| rule(s, (0, 65535), false)),
                        );
                        for s in &g.https_ingress {
                            if let AccessSource::PrefixList(id) = s {
                                lists.insert((account.clone(), region.clone(), id.clone()));
                            }
                        }
                    }
                    world.security_group.push(SecurityGroupDef {
                        id: sg.clone(),
                        region: region.clone(),
                        account: account.clone(),
                        vpc_id: c.vpc_id.clone(),
                        name: None,
                        https_ingress: https,
                        ingress: ingress
                            .into_iter()
                            .chain(read.map(stand_in_rules).unwrap_or_default())
                            .collect(),
                        rule_quota: read.and_then(|g| g.rule_quota),
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
                                vpc_id: super::network::group_vpc(live, &region, id)
                                    .cloned()
                                    .unwrap_or_else(|| c.vpc_id.clone()),
                                name: Some(format!("{id} (stand-in)")),
                                https_ingress: Vec::new(),
                                ingress: Vec::new(),
                                rule_quota: None,
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
            let (subnet_ids, ip_family, created_at, remote_node_networks) =
                super::network::cluster_fields(c);
            world.cluster.push(ClusterDef {
                subnet_ids,
                ip_family,
                created_at,
                remote_node_networks,
                name: c.key.name.clone(),
                region,
                account,
                vpc_id: c.vpc_id.clone(),
                security_group: c.security_group_id.clone(),
                public_access: c.endpoint.public_access,
                private_access: c.endpoint.private_access,
                public_access_cidrs: c
                    .endpoint
                    .public_access_cidrs
                    .iter()
                    .flatten()
                    .map(|n| n.to_string())
                    .collect(),
                status,
                platform_update: running.then_some(update_duration),
                past_updates: 0,
                tags: c.tags.clone(),
                authentication_mode: c
                    .authentication_mode
                    .as_ref()
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_else(|| "CONFIG_MAP".to_string()),
                // Only the declared principals' entries are read: the copy
                // holds those, which is what apply checks again.
                access_entry: match live.access.get(&c.key) {
                    Some(crate::access::LiveAccess::Read { entries, .. }) => entries
                        .values()
                        .map(|e| crate::sim::world::AccessEntryDef {
                            principal_arn: e.principal_arn.clone(),
                            entry_type: "STANDARD".to_string(),
                            kubernetes_groups: e.kubernetes_groups.clone(),
                            access_policies: e
                                .policies
                                .iter()
                                .map(|p| p.policy_arn.clone())
                                .collect(),
                        })
                        .collect(),
                    _ => Vec::new(),
                },
            });
        }
        super::network::add(&mut world, live, &acct, &mut vpcs);
        // The lists `public_access_cidrs` names, with the entries read; the
        // ones only rules reference, as empty stand-ins.
        for (key, list) in &live.prefix_lists {
            let Some(list) = list else { continue };
            let account = acct(&key.account);
            lists.remove(&(account.clone(), key.region.clone(), key.id.clone()));
            world.prefix_list.push(PrefixListDef {
                id: key.id.clone(),
                region: key.region.clone(),
                account,
                name: None,
                entries: list.entries.iter().map(|n| n.to_string()).collect(),
                max_entries: None,
            });
        }
        for (account, region, id) in lists {
            world.prefix_list.push(PrefixListDef {
                id,
                region,
                account,
                name: Some("stand-in".to_string()),
                entries: Vec::new(),
                max_entries: None,
            });
        }
        world.faults = FaultsDef::default();
        world
    }
}

/// Rules that stand in for the ones a group holds besides its 443 sources
/// (eksgate reads how many there are, not what they are), so the copy's
/// group is as full as the real one against its quota: SSH from
/// documentation addresses, one per rule.
fn stand_in_rules(g: &LiveSecurityGroup) -> Vec<RuleDef> {
    let Some(held) = g.inbound_rules else {
        return Vec::new();
    };
    let https = RuleCount::of(&g.https_ingress);
    let v4 = (0..held.ipv4.saturating_sub(https.ipv4))
        .map(|i| format!("198.18.{}.{}/32", i / 256, i % 256));
    let v6 = (0..held.ipv6.saturating_sub(https.ipv6)).map(|i| format!("2001:db8::{i:x}/128"));
    v4.chain(v6)
        .map(|source| RuleDef {
            protocol: "tcp".to_string(),
            from_port: Some(22),
            to_port: Some(22),
            source,
            description: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::apply::fake::EndpointAccess;
    use crate::desired::ClusterKey;
    use crate::endpoint::{public_cidrs, EndpointSettings};
    use crate::live::{LiveCluster, LiveSecurityGroup, LiveVpc, SecurityGroupKey, VpcKey};
    use crate::set::SortedSet;

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
                    network: Default::default(),
                    key: key(name),
                    arn: format!("arn:aws:eks:us-east-1:123456789012:cluster/{name}"),
                    status: if updating {
                        ClusterStatus::Updating
                    } else {
                        ClusterStatus::Active
                    },
                    vpc_id: format!("vpc-{name}"),
                    security_group_id: Some(format!("sg-{name}")),
                    endpoint: EndpointSettings::new(true, false)
                        .with_cidrs(Some(public_cidrs(&["203.0.113.0/24"]))),
                    tags: Default::default(),
                    updates_in_progress: if updating {
                        vec!["u-1".into()]
                    } else {
                        Vec::new()
                    },
                    authentication_mode: None,
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
                cidr_blocks: Vec::new(),
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
                https_ingress: SortedSet::from([AccessSource::Cidr(
                    "10.1.0.0/16".parse().unwrap(),
                )]),
                exact_https: SortedSet::from([AccessSource::Cidr("10.1.0.0/16".parse().unwrap())]),
                ..LiveSecurityGroup::default()
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

    /// The copy's group is as full as the real one, so a plan on the copy
    /// meets the same quota as the real plan.
    #[test]
    fn a_copied_group_holds_as_many_rules_as_the_real_one() {
        let mut live = live_of();
        for g in live.security_groups.values_mut() {
            g.inbound_rules = Some(RuleCount { ipv4: 58, ipv6: 2 });
            g.rule_quota = Some(70);
        }
        let wants = vec![desired("payments", false, true, &["sg-bastion"])];
        let world = World::from_live(&live, &wants, Duration::from_secs(2));
        let sg = world
            .security_group
            .iter()
            .find(|s| s.id == "sg-payments")
            .unwrap();
        assert_eq!(sg.rule_quota, Some(70));
        let v6 = sg.ingress.iter().filter(|r| r.source.contains(':')).count();
        // 58 IPv4 rules: the one 443 source and 57 stand-ins.
        assert_eq!((sg.ingress.len() - v6, v6), (57, 2));
        let text = toml::to_string(&world).unwrap();
        World::parse(&crate::diagnostic::Source::new("copy.toml", text))
            .unwrap_or_else(|d| panic!("{}", crate::diagnostic::render_all(&d, false)));
    }
}
