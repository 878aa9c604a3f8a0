//! What an apply did: per step, per cluster, the changes made in AWS, the
//! updates still running and the waves held. Plain serde data built by the
//! apply engine and rendered by `view::report`; the report types sit beside
//! the events ([`crate::event`]) they summarise. Nothing here runs or prints.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::desired::{AccessSource, ClusterKey};
use crate::endpoint::EndpointSettings;
use crate::event::{RunningUpdate, StepCounts, StepOutcome};
use crate::plan::{Plan, PlanStatus, StepKind};
use crate::set::SortedSet;

/// One step as it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    pub id: String,
    pub kind: StepKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub description: String,
    pub outcome: StepOutcome,
    pub message: String,
    /// Updates this step started or waited on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub update_ids: Vec<String>,
    /// For a skipped step, the failed (or refused, or timed-out) step that
    /// caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
}

/// How one cluster came out of the apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterOutcome {
    Done,
    AlreadyConverged,
    Failed,
    Refused,
    TimedOut,
    Cancelled,
    Skipped,
    NotStarted,
    /// The plan found a problem with it; it had no steps.
    Blocked,
}

impl ClusterOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterOutcome::Done => "done",
            ClusterOutcome::AlreadyConverged => "already converged",
            ClusterOutcome::Failed => "failed",
            ClusterOutcome::Refused => "refused",
            ClusterOutcome::TimedOut => "timed out",
            ClusterOutcome::Cancelled => "cancelled",
            ClusterOutcome::Skipped => "skipped",
            ClusterOutcome::NotStarted => "not started",
            ClusterOutcome::Blocked => "blocked",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterReport {
    pub key: ClusterKey,
    pub outcome: ClusterOutcome,
    /// The step that decided the outcome (the failed one, or for a skipped
    /// cluster the step that caused the skip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
    /// Why, for anything but done and already converged.
    pub message: String,
    pub steps: Vec<String>,
}

/// A call that changed something in AWS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// An `UpdateClusterConfig` that ended `Successful`.
    EndpointUpdated {
        step_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        region: String,
        cluster: String,
        update_id: String,
        settings: EndpointSettings,
    },
    /// A `ModifyVpcAttribute` that turned `enableDnsSupport` or
    /// `enableDnsHostnames` on.
    VpcAttributeEnabled {
        step_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        region: String,
        vpc_id: String,
        attribute: String,
    },
    /// An `AuthorizeSecurityGroupIngress` that added TCP 443 rules.
    HttpsIngressAdded {
        step_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        region: String,
        group_id: String,
        #[serde(with = "crate::plan::step::sources_split")]
        sources: SortedSet<AccessSource>,
    },
    /// An `UpdateClusterConfig` of the authentication mode that ended
    /// `Successful`.
    AccessConfigUpdated {
        step_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        region: String,
        cluster: String,
        update_id: String,
        authentication_mode: crate::access::AuthenticationMode,
    },
    /// A `RevokeSecurityGroupIngress` that removed TCP 443 rules
    /// (`private_access_from_exclusive`).
    HttpsIngressRevoked {
        step_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        region: String,
        group_id: String,
        #[serde(with = "crate::plan::step::sources_split")]
        sources: SortedSet<AccessSource>,
        /// The ids of the rules revoked (`sgr-…`).
        rule_ids: Vec<String>,
    },
}

/// Why apply ran short of a step or a wave, as data: the views word it
/// (`view::describe::stop`), naming the options that decide it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The step turns public access off with no `private_access_from`, and
    /// lockout was not allowed.
    Lockout,
    /// The step revokes the last TCP 443 source of a private-only cluster,
    /// and lockout was not allowed.
    LockoutRevoke,
    /// Fail-fast stopped the apply after this step.
    FailFast { after: String },
    /// More clusters failed than allowed before a wave.
    Held {
        failed: usize,
        place: FailedWhere,
        max_failures: usize,
    },
}

/// Where the clusters that held a wave failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailedWhere {
    Canaries { wave: u32 },
    Waves(Vec<u32>),
}

/// A wave (or the rest of the first wave after its canaries) that did not
/// start because too many clusters failed before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldWave {
    pub wave: u32,
    /// Only the part of the wave after its canaries was held.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_canary: bool,
    pub reason: String,
    /// The clusters that did not start, in the plan's order.
    pub clusters: Vec<ClusterKey>,
}

impl HeldWave {
    /// `wave 1` or `the rest of wave 0 after its canaries`.
    pub fn label(&self) -> String {
        if self.after_canary {
            format!("the rest of wave {} after its canaries", self.wave)
        } else {
            format!("wave {}", self.wave)
        }
    }
}

/// Everything an apply did, for the final report and for exit codes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyReport {
    /// In the plan's order.
    pub steps: Vec<StepReport>,
    /// Clusters with steps, and blocked ones, in the plan's order.
    pub clusters: Vec<ClusterReport>,
    /// In the order the calls finished.
    pub changes: Vec<Change>,
    /// Updates eksgate started or waited on that were still running when it
    /// stopped watching them (interrupted, timed out). They go on in AWS.
    pub updates_still_running: Vec<RunningUpdate>,
    pub counts: StepCounts,
    /// The cancel signal fired.
    pub interrupted: bool,
    /// `--fail-fast` stopped the apply after this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_after: Option<String>,
    /// Waves that did not start (`--max-failures`), in rollout order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<HeldWave>,
    /// The plan's steps do not form a valid graph (a hand-edited plan); no
    /// step ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_plan: Option<String>,
    pub elapsed_ms: u64,
}

impl ApplyReport {
    /// True only when every step is done or already converged.
    pub fn success(&self) -> bool {
        self.invalid_plan.is_none() && self.counts.all_succeeded()
    }

    pub fn step(&self, id: &str) -> Option<&StepReport> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// Per cluster, the most telling outcome among its steps.
pub(crate) fn cluster_reports(plan: &Plan, steps: &[StepReport]) -> Vec<ClusterReport> {
    let by_id: BTreeMap<&str, &StepReport> = steps.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut out = Vec::new();
    for c in &plan.clusters {
        if c.status == PlanStatus::Blocked {
            let message = plan
                .blocking()
                .filter(|f| f.cluster == c.key)
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            out.push(ClusterReport {
                key: c.key.clone(),
                outcome: ClusterOutcome::Blocked,
                step_id: None,
                message,
                steps: Vec::new(),
            });
            continue;
        }
        if c.steps.is_empty() {
            continue;
        }
        let mine: Vec<&StepReport> = c
            .steps
            .iter()
            .filter_map(|id| by_id.get(id.as_str()).copied())
            .collect();
        let first = |o: StepOutcome| mine.iter().find(|s| s.outcome == o).copied();
        let ranked = [
            (StepOutcome::Failed, ClusterOutcome::Failed),
            (StepOutcome::Refused, ClusterOutcome::Refused),
            (StepOutcome::TimedOut, ClusterOutcome::TimedOut),
            (StepOutcome::Cancelled, ClusterOutcome::Cancelled),
            (StepOutcome::Skipped, ClusterOutcome::Skipped),
            (StepOutcome::NotStarted, ClusterOutcome::NotStarted),
        ];
        let bad = ranked
            .iter()
            .find_map(|(so, co)| first(*so).map(|s| (*co, s)));
        let (outcome, step_id, message) = match bad {
            Some((ClusterOutcome::Skipped, s)) => (
                ClusterOutcome::Skipped,
                s.blocked_by.clone().or(Some(s.id.clone())),
                s.message.clone(),
            ),
            Some((co, s)) => (co, Some(s.id.clone()), s.message.clone()),
            None if mine.iter().any(|s| s.outcome == StepOutcome::Done) => {
                (ClusterOutcome::Done, None, String::new())
            }
            None => (ClusterOutcome::AlreadyConverged, None, String::new()),
        };
        out.push(ClusterReport {
            key: c.key.clone(),
            outcome,
            step_id,
            message,
            steps: c.steps.clone(),
        });
    }
    out
}
