//! What apply tells the outside world while it runs: one [`Event`] per thing
//! worth showing (a step started, an update was polled, a step finished...),
//! sent on a channel to whichever view the CLI chose (bars, lines, JSON).
//!
//! This module owns only the event types and the step outcomes they carry.
//! It must not render them (that is `view::progress`) and must not decide
//! anything (that is `apply`). The JSON form is a public interface: rename a
//! field or a variant only with a changelog entry.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::desired::ClusterKey;
use crate::plan::StepKind;

/// How one step ended. Every step of a plan gets exactly one outcome, and
/// exactly one `step_finished` event carrying it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// The step changed something in AWS (or waited for an update to end).
    Done,
    /// A re-read showed there was nothing to do; no call was made.
    AlreadyConverged,
    Failed,
    /// A step it depends on failed, was refused or timed out.
    Skipped,
    /// A lockout risk without `--allow-lockout`.
    Refused,
    /// The AWS update did not finish within the wait timeout.
    TimedOut,
    /// The apply was interrupted while this step ran.
    Cancelled,
    /// The apply stopped (interrupted, or `--fail-fast`) before this step.
    NotStarted,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Done => "done",
            StepOutcome::AlreadyConverged => "already converged",
            StepOutcome::Failed => "failed",
            StepOutcome::Skipped => "skipped",
            StepOutcome::Refused => "refused",
            StepOutcome::TimedOut => "timed out",
            StepOutcome::Cancelled => "cancelled",
            StepOutcome::NotStarted => "not started",
        }
    }

    /// Done or already converged: dependents may start.
    pub fn is_success(self) -> bool {
        matches!(self, StepOutcome::Done | StepOutcome::AlreadyConverged)
    }
}

impl fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many steps ended which way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCounts {
    pub done: usize,
    pub already_converged: usize,
    pub failed: usize,
    pub skipped: usize,
    pub refused: usize,
    pub timed_out: usize,
    pub cancelled: usize,
    pub not_started: usize,
}

impl StepCounts {
    pub fn add(&mut self, outcome: StepOutcome) {
        match outcome {
            StepOutcome::Done => self.done += 1,
            StepOutcome::AlreadyConverged => self.already_converged += 1,
            StepOutcome::Failed => self.failed += 1,
            StepOutcome::Skipped => self.skipped += 1,
            StepOutcome::Refused => self.refused += 1,
            StepOutcome::TimedOut => self.timed_out += 1,
            StepOutcome::Cancelled => self.cancelled += 1,
            StepOutcome::NotStarted => self.not_started += 1,
        }
    }

    pub fn from_outcomes(outcomes: impl IntoIterator<Item = StepOutcome>) -> Self {
        let mut c = StepCounts::default();
        for o in outcomes {
            c.add(o);
        }
        c
    }

    pub fn total(&self) -> usize {
        self.done
            + self.already_converged
            + self.failed
            + self.skipped
            + self.refused
            + self.timed_out
            + self.cancelled
            + self.not_started
    }

    /// Every step done or already converged.
    pub fn all_succeeded(&self) -> bool {
        self.total() == self.done + self.already_converged
    }
}

/// A cluster the apply touches and the ids of its steps (shared VPC and
/// security-group steps included), so views can show one line per cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyCluster {
    #[serde(flatten)]
    pub key: ClusterKey,
    pub steps: Vec<String>,
}

/// An AWS update that was still `InProgress` when eksgate stopped watching it
/// (interrupted or timed out). It keeps running in AWS.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunningUpdate {
    pub step_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub region: String,
    pub cluster: String,
    pub update_id: String,
}

/// One thing that happened during an apply. `elapsed_ms` counts from the
/// start of the apply on a monotonic clock, so it never goes backwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    ApplyStarted {
        elapsed_ms: u64,
        /// Number of steps in the plan.
        steps: usize,
        clusters: Vec<ApplyCluster>,
    },
    StepStarted {
        elapsed_ms: u64,
        step_id: String,
        kind: StepKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        region: String,
        /// The cluster's name, for endpoint and wait steps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        description: String,
    },
    /// eksgate started an AWS update.
    UpdateStarted {
        elapsed_ms: u64,
        step_id: String,
        update_id: String,
    },
    /// One `DescribeUpdate` answer (or `DescribeCluster`'s status when the
    /// cluster is `UPDATING` with no update id).
    UpdatePolled {
        elapsed_ms: u64,
        step_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        update_id: Option<String>,
        status: String,
    },
    /// The step waits for an update it did not start (AWS's own, one still
    /// running from an earlier apply, or the one `ResourceInUseException`
    /// named) before deciding what to do.
    WaitingForUpdate {
        elapsed_ms: u64,
        step_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        update_id: Option<String>,
        reason: String,
    },
    StepFinished {
        elapsed_ms: u64,
        step_id: String,
        outcome: StepOutcome,
        message: String,
    },
    /// A rollout wave opened: its steps may start now. With `--canary N` the
    /// first wave opens twice, first for its canaries (`canary: true`), then
    /// for the rest of its clusters. Sent only when the plan has more than
    /// one wave (or canaries); a single-wave apply looks as it always did.
    WaveStarted {
        elapsed_ms: u64,
        wave: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        canary: bool,
        clusters: Vec<ClusterKey>,
    },
    /// A wave will not start: too many clusters failed before it (more than
    /// `--max-failures`). Its steps end `not_started`.
    WaveHeld {
        elapsed_ms: u64,
        wave: u32,
        /// The rest of a wave whose canaries failed, rather than a whole wave.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        after_canary: bool,
        reason: String,
        clusters: Vec<ClusterKey>,
    },
    /// The cancel signal arrived: no new step starts, waits stop, and these
    /// updates keep running in AWS.
    Interrupted {
        elapsed_ms: u64,
        running_updates: Vec<RunningUpdate>,
    },
    ApplyFinished {
        elapsed_ms: u64,
        success: bool,
        counts: StepCounts,
    },
}

impl Event {
    pub fn elapsed_ms(&self) -> u64 {
        match self {
            Event::ApplyStarted { elapsed_ms, .. }
            | Event::StepStarted { elapsed_ms, .. }
            | Event::UpdateStarted { elapsed_ms, .. }
            | Event::UpdatePolled { elapsed_ms, .. }
            | Event::WaitingForUpdate { elapsed_ms, .. }
            | Event::StepFinished { elapsed_ms, .. }
            | Event::WaveStarted { elapsed_ms, .. }
            | Event::WaveHeld { elapsed_ms, .. }
            | Event::Interrupted { elapsed_ms, .. }
            | Event::ApplyFinished { elapsed_ms, .. } => *elapsed_ms,
        }
    }

    /// The step this event is about, if any.
    pub fn step_id(&self) -> Option<&str> {
        match self {
            Event::StepStarted { step_id, .. }
            | Event::UpdateStarted { step_id, .. }
            | Event::UpdatePolled { step_id, .. }
            | Event::WaitingForUpdate { step_id, .. }
            | Event::StepFinished { step_id, .. } => Some(step_id),
            Event::ApplyStarted { .. }
            | Event::WaveStarted { .. }
            | Event::WaveHeld { .. }
            | Event::Interrupted { .. }
            | Event::ApplyFinished { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_a_snake_case_tag_and_read_back() {
        let e = Event::StepFinished {
            elapsed_ms: 12,
            step_id: "eu-west-1/a/endpoint.1".into(),
            outcome: StepOutcome::AlreadyConverged,
            message: "m".into(),
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"event":"step_finished","elapsed_ms":12,"step_id":"eu-west-1/a/endpoint.1","outcome":"already_converged","message":"m"}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);

        let started = Event::ApplyStarted {
            elapsed_ms: 0,
            steps: 1,
            clusters: vec![ApplyCluster {
                key: ClusterKey {
                    account: None,
                    region: "eu-west-1".into(),
                    name: "a".into(),
                },
                steps: vec!["s".into()],
            }],
        };
        let json = serde_json::to_string(&started).unwrap();
        assert_eq!(
            json,
            r#"{"event":"apply_started","elapsed_ms":0,"steps":1,"clusters":[{"region":"eu-west-1","name":"a","steps":["s"]}]}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), started);

        let held = Event::WaveHeld {
            elapsed_ms: 7,
            wave: 1,
            after_canary: false,
            reason: "r".into(),
            clusters: vec![ClusterKey {
                account: None,
                region: "eu-west-1".into(),
                name: "b".into(),
            }],
        };
        let json = serde_json::to_string(&held).unwrap();
        assert_eq!(
            json,
            r#"{"event":"wave_held","elapsed_ms":7,"wave":1,"reason":"r","clusters":[{"region":"eu-west-1","name":"b"}]}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), held);
        let canary = Event::WaveStarted {
            elapsed_ms: 0,
            wave: 0,
            canary: true,
            clusters: Vec::new(),
        };
        let json = serde_json::to_string(&canary).unwrap();
        assert_eq!(
            json,
            r#"{"event":"wave_started","elapsed_ms":0,"wave":0,"canary":true,"clusters":[]}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), canary);
    }

    #[test]
    fn counts_add_up() {
        let c = StepCounts::from_outcomes([
            StepOutcome::Done,
            StepOutcome::AlreadyConverged,
            StepOutcome::Skipped,
        ]);
        assert_eq!(c.total(), 3);
        assert!(!c.all_succeeded());
        assert!(StepCounts::from_outcomes([StepOutcome::Done]).all_succeeded());
    }
}
