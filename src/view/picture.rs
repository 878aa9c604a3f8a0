//! The step graph as the pictures draw it ([`super::dot`], [`super::mermaid`]):
//! the steps numbered in apply order, each placed in the box of the one
//! cluster that needs it (or left shared between clusters), the edges with
//! the kind of reason they exist, and the blocked clusters with the codes of
//! the findings that block them.
//!
//! Everything here is derived from the typed plan (step actions and the
//! dependency between two steps), never from the planner's sentences, so a
//! reworded reason does not change a picture. Pure data; the writers decide
//! the syntax.

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::{Action, ClusterPlan, Plan, PlanStatus, Step};

/// Why one step waits for another, by kind: the label of an edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum EdgeReason {
    /// `enableDnsHostnames` waits for `enableDnsSupport` (an EC2 rule).
    DnsSupportFirst,
    /// Private access waits for the VPC DNS settings.
    DnsBeforePrivate,
    /// The same, from a VPC step that several clusters share.
    SharedVpc,
    /// Public access goes off once the private endpoint is `Successful`.
    PrivateBeforePublicOff,
    /// The reverse move: private goes off once public is `Successful`.
    PublicBeforePrivateOff,
    /// Public access goes off once TCP 443 is open to the declared clients.
    HttpsBeforePublicOff,
    /// The endpoint change waits for an update already running.
    RunningUpdate,
    /// EKS runs one update at a time per cluster.
    PreviousUpdate,
    /// A revocation (`private_access_from_exclusive`) waits for the new
    /// sources to be let in.
    AddBeforeRevoke,
    /// A revocation waits for the endpoint change to finish.
    EndpointBeforeRevoke,
    /// The authentication mode moves first, so the access entries of
    /// `private_access_principals` can be read before public access goes off.
    AccessEntriesBeforePublicOff,
    /// A dependency the kinds above do not explain (a hand-edited plan).
    Other,
}

impl EdgeReason {
    pub(crate) fn label(self) -> &'static str {
        match self {
            EdgeReason::DnsSupportFirst => "DNS support before hostnames",
            EdgeReason::DnsBeforePrivate => "DNS before private",
            EdgeReason::SharedVpc => "shared VPC: DNS before private",
            EdgeReason::PrivateBeforePublicOff => "private Successful before public off",
            EdgeReason::PublicBeforePrivateOff => "public Successful before private off",
            EdgeReason::HttpsBeforePublicOff => "443 before public off",
            EdgeReason::RunningUpdate => "wait for running update",
            EdgeReason::AddBeforeRevoke => "new sources before revoking",
            EdgeReason::EndpointBeforeRevoke => "endpoint change before revoking",
            EdgeReason::AccessEntriesBeforePublicOff => "access entries readable before public off",
            EdgeReason::PreviousUpdate => "one update at a time",
            EdgeReason::Other => "waits for",
        }
    }
}

/// The kind of reason `step` waits for `dep`. `shared` says whether `dep`
/// is needed by more than one cluster.
pub(crate) fn edge_reason(dep: &Step, step: &Step, shared: bool) -> EdgeReason {
    use crate::live::DnsAttribute;
    match (&dep.action, &step.action) {
        (
            Action::VpcDns {
                attribute: DnsAttribute::Support,
            },
            Action::VpcDns { .. },
        ) => EdgeReason::DnsSupportFirst,
        (Action::VpcDns { .. }, Action::Endpoint { .. }) if shared => EdgeReason::SharedVpc,
        (Action::VpcDns { .. }, Action::Endpoint { .. }) => EdgeReason::DnsBeforePrivate,
        (Action::HttpsIngress { .. }, Action::Endpoint { .. }) => EdgeReason::HttpsBeforePublicOff,
        (Action::WaitUpdate { .. }, _) => EdgeReason::RunningUpdate,
        (Action::HttpsIngress { .. }, Action::HttpsRevoke { .. }) => EdgeReason::AddBeforeRevoke,
        (Action::Endpoint { .. }, Action::HttpsRevoke { .. }) => EdgeReason::EndpointBeforeRevoke,
        // One update at a time; why the mode goes first when public access
        // goes off later in the cluster's plan, [`Picture::of`] tells.
        (
            Action::AccessConfig { .. },
            Action::Endpoint {
                before: b,
                after: a,
            },
        ) if b.public_access && !a.public_access => EdgeReason::AccessEntriesBeforePublicOff,
        (Action::AccessConfig { .. }, Action::Endpoint { .. }) => EdgeReason::PreviousUpdate,
        (
            Action::Endpoint {
                before: b1,
                after: a1,
            },
            Action::Endpoint {
                before: b2,
                after: a2,
            },
        ) => {
            if !b1.private_access && a1.private_access && b2.public_access && !a2.public_access {
                EdgeReason::PrivateBeforePublicOff
            } else if !b1.public_access
                && a1.public_access
                && b2.private_access
                && !a2.private_access
            {
                EdgeReason::PublicBeforePrivateOff
            } else {
                EdgeReason::PreviousUpdate
            }
        }
        _ => EdgeReason::Other,
    }
}

/// What a step changes, in very few words (a node label, not a sentence).
pub(crate) fn short_change(step: &Step) -> String {
    match &step.action {
        Action::VpcDns { attribute } => {
            format!(
                "{} on {}",
                attribute.api_name(),
                step.vpc_id.as_deref().unwrap_or("?")
            )
        }
        Action::HttpsIngress { add, .. } => {
            let group = step.security_group_id.as_deref().unwrap_or("?");
            match add.len() {
                1 => format!(
                    "443 into {group} from {}",
                    add.iter().next().map(|s| s.to_string()).unwrap_or_default()
                ),
                n => format!("443 into {group} from {n} sources"),
            }
        }
        Action::Endpoint { before, after } => {
            let mut s = super::describe::mode_change(before, after);
            if let Some(to) = &after.public_access_cidrs {
                let from = before
                    .public_access_cidrs
                    .as_ref()
                    .map(|c| c.len())
                    .unwrap_or(0);
                s.push_str(&format!(", public CIDRs {from} → {}", to.len()));
            }
            s
        }
        Action::WaitUpdate { update_id } => match update_id {
            Some(id) => format!("wait for update {id}"),
            None => "wait until ACTIVE".to_string(),
        },
        Action::AccessConfig { before, after } => format!("auth mode {before} → {after}"),
        Action::HttpsRevoke { revoke, .. } => {
            let group = step.security_group_id.as_deref().unwrap_or("?");
            match revoke.len() {
                1 => format!(
                    "revoke 443 into {group} from {}",
                    revoke
                        .iter()
                        .next()
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                ),
                n => format!("revoke 443 into {group} from {n} sources"),
            }
        }
    }
}

/// Where a step is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// In the box of this cluster (an index into [`Picture::clusters`]).
    Cluster(usize),
    /// Needed by several clusters (or none): drawn in its wave, outside them.
    Shared,
}

/// One edge: step numbers are indices into [`Picture::steps`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Edge {
    pub from: usize,
    pub to: usize,
    pub reason: EdgeReason,
}

/// The graph a picture draws.
pub(crate) struct Picture<'a> {
    /// In apply order: step `i` is numbered `i + 1`, as in the plan's table.
    pub steps: Vec<&'a Step>,
    pub owner: Vec<Owner>,
    /// Sorted by each step's dependents, then by dependency.
    pub edges: Vec<Edge>,
    /// The clusters drawn: those with steps and those blocked, by wave,
    /// region, name and account.
    pub clusters: Vec<&'a ClusterPlan>,
    /// The codes of the findings that block each blocked cluster.
    pub blocked: BTreeMap<usize, Vec<&'static str>>,
    /// The plan rolls out in more than one wave.
    pub waves: bool,
}

impl<'a> Picture<'a> {
    pub(crate) fn of(plan: &'a Plan) -> Picture<'a> {
        let steps = plan.ordered_steps();
        let number: BTreeMap<&str, usize> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let clusters: Vec<&ClusterPlan> = super::order::sorted_clusters(plan)
            .into_iter()
            .filter(|c| c.status != PlanStatus::NoChanges)
            .collect();
        // Which drawn clusters list each step.
        let mut users: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); steps.len()];
        for (ci, c) in clusters.iter().enumerate() {
            for id in &c.steps {
                if let Some(&i) = number.get(id.as_str()) {
                    users[i].insert(ci);
                }
            }
        }
        let owner = users
            .iter()
            .map(|u| match (u.len(), u.iter().next()) {
                (1, Some(&c)) => Owner::Cluster(c),
                _ => Owner::Shared,
            })
            .collect();
        // The clusters whose plan turns public access off at some step.
        let public_off: BTreeSet<(&Option<String>, &str, Option<&str>)> = steps
            .iter()
            .filter(|s| {
                matches!(&s.action, Action::Endpoint { before, after }
                    if before.public_access && !after.public_access)
            })
            .map(|s| (&s.account, s.region.as_str(), s.cluster.as_deref()))
            .collect();
        let mut edges = Vec::new();
        for (to, step) in steps.iter().enumerate() {
            let mut deps: Vec<usize> = step
                .depends_on
                .iter()
                .filter_map(|d| number.get(d.as_str()).copied())
                .collect();
            deps.sort_unstable();
            deps.dedup();
            for from in deps {
                let shared = users[from].len() > 1;
                let mut reason = edge_reason(steps[from], step, shared);
                if matches!(steps[from].action, Action::AccessConfig { .. })
                    && public_off.contains(&(
                        &step.account,
                        step.region.as_str(),
                        step.cluster.as_deref(),
                    ))
                {
                    reason = EdgeReason::AccessEntriesBeforePublicOff;
                }
                edges.push(Edge { from, to, reason });
            }
        }
        let mut blocked = BTreeMap::new();
        for (ci, c) in clusters.iter().enumerate() {
            if c.status == PlanStatus::Blocked {
                let mut codes: Vec<&'static str> = plan
                    .findings
                    .iter()
                    .filter(|f| f.cluster == c.key && f.blocks())
                    .map(|f| f.code.as_str())
                    .collect();
                codes.dedup();
                blocked.insert(ci, codes);
            }
        }
        Picture {
            steps,
            owner,
            edges,
            clusters,
            blocked,
            waves: super::order::has_waves(plan),
        }
    }

    /// The waves drawn, in order: those of the clusters and of the steps.
    pub(crate) fn wave_list(&self) -> Vec<u32> {
        let set: BTreeSet<u32> = self
            .clusters
            .iter()
            .map(|c| c.wave)
            .chain(self.steps.iter().map(|s| s.wave))
            .collect();
        set.into_iter().collect()
    }

    /// Steps drawn in cluster `c`'s box, in order.
    pub(crate) fn steps_of(&self, c: usize) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|i| self.owner[*i] == Owner::Cluster(c))
            .collect()
    }

    /// Shared steps drawn in wave `w`, in order.
    pub(crate) fn shared_in(&self, w: u32) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|i| self.owner[*i] == Owner::Shared && self.steps[*i].wave == w)
            .collect()
    }

    /// Drawn clusters of wave `w`, in order.
    pub(crate) fn clusters_in(&self, w: u32) -> Vec<usize> {
        (0..self.clusters.len())
            .filter(|c| self.clusters[*c].wave == w)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(action: Action) -> Step {
        Step {
            id: "x".into(),
            action,
            account: None,
            region: "eu-west-1".into(),
            role_arn: None,
            cluster: Some("a".into()),
            vpc_id: Some("vpc-1".into()),
            security_group_id: Some("sg-1".into()),
            depends_on: Vec::new(),
            reason: "".into(),
            lockout_risk: false,
            fingerprint: String::new(),
            wave: 0,
        }
    }

    #[test]
    fn each_dependency_has_its_reason_kind() {
        use crate::endpoint::EndpointSettings as E;
        use crate::live::DnsAttribute;
        let support = step(Action::VpcDns {
            attribute: DnsAttribute::Support,
        });
        let hostnames = step(Action::VpcDns {
            attribute: DnsAttribute::Hostnames,
        });
        let ingress = step(Action::HttpsIngress {
            present: Default::default(),
            add: Default::default(),
        });
        let wait = step(Action::WaitUpdate { update_id: None });
        let endpoint = |b: (bool, bool), a: (bool, bool)| {
            step(Action::Endpoint {
                before: E::new(b.0, b.1),
                after: E::new(a.0, a.1),
            })
        };
        let private_on = endpoint((true, false), (true, true));
        let public_off = endpoint((true, true), (false, true));
        let public_on = endpoint((false, true), (true, true));
        let private_off = endpoint((true, true), (true, false));
        let access = step(Action::AccessConfig {
            before: crate::access::AuthenticationMode::ConfigMap,
            after: crate::access::AuthenticationMode::ApiAndConfigMap,
        });
        let cases = [
            (&support, &hostnames, false, EdgeReason::DnsSupportFirst),
            (&hostnames, &private_on, false, EdgeReason::DnsBeforePrivate),
            (&hostnames, &private_on, true, EdgeReason::SharedVpc),
            (
                &ingress,
                &public_off,
                false,
                EdgeReason::HttpsBeforePublicOff,
            ),
            (&wait, &private_on, false, EdgeReason::RunningUpdate),
            (
                &private_on,
                &public_off,
                false,
                EdgeReason::PrivateBeforePublicOff,
            ),
            (
                &public_on,
                &private_off,
                false,
                EdgeReason::PublicBeforePrivateOff,
            ),
            (&public_on, &public_off, false, EdgeReason::PreviousUpdate),
            (
                &access,
                &public_off,
                false,
                EdgeReason::AccessEntriesBeforePublicOff,
            ),
            (&access, &private_on, false, EdgeReason::PreviousUpdate),
            (&private_on, &ingress, false, EdgeReason::Other),
        ];
        for (dep, s, shared, want) in cases {
            assert_eq!(
                edge_reason(dep, s, shared),
                want,
                "{:?} -> {:?}",
                dep.action,
                s.action
            );
        }
    }
}
