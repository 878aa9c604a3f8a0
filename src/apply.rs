//! The apply engine: walks a [`Plan`]'s step graph and runs each step through
//! a [`Provider`], in dependency order, independent steps concurrently up to a
//! limit, waiting for every AWS update to end `Successful` before its
//! dependents start. It returns an [`ApplyReport`] of what happened and what
//! changed in AWS.
//!
//! Every step re-reads what it is about to change just before calling AWS, so
//! it never makes a call AWS would reject as a no-op or as a conflict with an
//! update in progress (DESIGN.md section 1); it waits for such updates instead.
//! A failed step skips its dependents and nothing else.
//!
//! This module must not print or render: it reports through [`Event`]s on a
//! channel, and views turn those into bars, lines or JSON. It must not plan
//! either: which steps exist and what they wait for is `plan`'s decision, and
//! the one safety rule it relies on (public access goes off only after the
//! private-access update it depends on is `Successful`) holds because a step
//! succeeds only once its update is `Successful`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use futures_util::stream::{FuturesUnordered, StreamExt};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{watch, Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::desired::ClusterKey;
use crate::event::{ApplyCluster, Event, RunningUpdate, StepCounts, StepOutcome};
use crate::live::{ClusterObservation, ClusterStatus, LiveCluster};
use crate::plan::{
    mode_name, EndpointSettings, HttpsSources, Plan, PlanStatus, Step, StepKind, UpdateWait,
};
use crate::provider::{
    DnsAttribute, IngressOutcome, Provider, ProviderError, Scope, UpdateStart, UpdateStatus,
};
use crate::wait::{self, cancelled, WaitEnd, WaitOptions};

#[cfg(test)]
pub(crate) mod fake;

/// How an apply runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyOptions {
    /// At most this many steps read or call AWS at once (0 counts as 1). A
    /// step waiting for an AWS update lets its slot go: the wait costs a
    /// poll now and then, not a call in flight.
    pub parallelism: usize,
    /// At most this many endpoint steps run at once (`--max-updates`; 0
    /// means no limit), so at most this many updates are in flight: each
    /// starts at most one and holds its permit until that update ended.
    pub max_updates: usize,
    /// After the first failed, refused or timed-out step, start no new step
    /// (the running ones finish).
    pub fail_fast: bool,
    /// Run steps marked `lockout_risk` instead of refusing them.
    pub allow_lockout: bool,
    /// A later wave starts only while at most this many clusters failed in
    /// the waves before it (`--max-failures`).
    pub max_failures: usize,
    /// Apply this many clusters of the first wave first, and the rest of it
    /// only once they finished (`--canary`); 0 means no canaries.
    pub canary: usize,
    pub wait: WaitOptions,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            parallelism: 10,
            max_updates: 0,
            fail_fast: false,
            allow_lockout: false,
            max_failures: 0,
            canary: 0,
            wait: WaitOptions::default(),
        }
    }
}

/// The input of the "stop starting new steps" signal: send `true` on the
/// sender (first Ctrl-C) and the apply stops starting steps, stops waiting
/// for updates and returns. Dropping the sender without sending never
/// cancels.
pub fn cancel_signal() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

/// How many times an endpoint step re-reads the cluster and waits for an
/// update it did not start before giving up: AWS rarely starts more than one
/// update of its own in a row, so five rounds is generous.
const MAX_ROUNDS: usize = 5;

// ---------------------------------------------------------------------------
// The report

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
        sources: HttpsSources,
    },
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

// ---------------------------------------------------------------------------
// The walker

/// Runs `plan` through `provider` and reports what happened. See the module
/// docs; `events` gets every [`Event`] (sending errors are ignored: a view
/// that went away does not stop the apply), `cancel` is the signal from
/// [`cancel_signal`].
pub async fn apply<P: Provider>(
    plan: &Plan,
    provider: &P,
    opts: &ApplyOptions,
    events: UnboundedSender<Event>,
    cancel: watch::Receiver<bool>,
) -> ApplyReport {
    let ctx = Ctx {
        provider,
        opts,
        events,
        start: Instant::now(),
        watching: Mutex::new(BTreeMap::new()),
        learning: wait::RunLearning::default(),
        calls: Semaphore::new(opts.parallelism.max(1)),
        updates: (opts.max_updates > 0).then(|| Semaphore::new(opts.max_updates)),
    };
    let apply_clusters: Vec<ApplyCluster> = plan
        .clusters
        .iter()
        .filter(|c| !c.steps.is_empty())
        .map(|c| ApplyCluster {
            key: c.key.clone(),
            steps: c.steps.clone(),
        })
        .collect();
    ctx.emit(Event::ApplyStarted {
        elapsed_ms: ctx.ms(),
        steps: plan.steps.len(),
        clusters: apply_clusters,
    });

    let mut w = Walk::new(plan);
    match plan.graph() {
        Ok(graph) => {
            let order = graph.order().to_vec();
            let deps: Vec<Vec<usize>> = plan
                .steps
                .iter()
                .map(|s| graph.dependencies(&s.id))
                .collect();
            let phases = Phases::new(plan, opts.canary);
            walk(&ctx, plan, &order, &deps, &phases, &mut w, cancel).await;
        }
        Err(err) => {
            w.invalid_plan = Some(err.to_string());
            let message = format!("not started: the plan is invalid: {err}");
            for i in 0..plan.steps.len() {
                w.finish(&ctx, plan, i, StepOutcome::NotStarted, message.clone());
            }
        }
    }
    let report = w.into_report(plan, ctx.ms());
    ctx.emit(Event::ApplyFinished {
        elapsed_ms: ctx.ms(),
        success: report.success(),
        counts: report.counts,
    });
    report
}

/// What every running step shares.
struct Ctx<'a, P> {
    provider: &'a P,
    opts: &'a ApplyOptions,
    events: UnboundedSender<Event>,
    start: Instant,
    /// Updates steps are waiting on right now, by step id: what the
    /// `interrupted` event lists.
    watching: Mutex<BTreeMap<String, RunningUpdate>>,
    /// What this run's waits learn about its updates' durations.
    learning: wait::RunLearning,
    /// `--parallelism`: steps reading or calling.
    calls: Semaphore,
    /// `--max-updates`, when set: endpoint steps running.
    updates: Option<Semaphore>,
}

/// A step's `--parallelism` slot: held while it reads and calls, let go
/// while it waits for an AWS update, so a long update does not keep other
/// clusters from starting theirs.
struct CallSlot<'a> {
    slots: &'a Semaphore,
    held: Option<SemaphorePermit<'a>>,
}

impl<'a> CallSlot<'a> {
    fn release(&mut self) {
        self.held = None;
    }

    async fn hold(&mut self) {
        if self.held.is_none() {
            // The semaphore is never closed, so this always gets a permit.
            self.held = self.slots.acquire().await.ok();
        }
    }
}

impl<P> Ctx<'_, P> {
    fn ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn emit(&self, event: Event) {
        // A closed channel means nobody watches; the apply goes on.
        let _ = self.events.send(event);
    }

    fn watching(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, RunningUpdate>> {
        // The lock is never held across an await or a panic point, so a
        // poisoned lock can only follow a bug elsewhere; its data is intact.
        self.watching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Finished(StepOutcome),
}

/// The walker's bookkeeping.
struct Walk {
    state: Vec<State>,
    reports: Vec<Option<StepReport>>,
    blocked_by: Vec<Option<String>>,
    changes: Vec<Change>,
    still_running: Vec<RunningUpdate>,
    interrupted: bool,
    stopped_after: Option<String>,
    invalid_plan: Option<String>,
    held: Vec<HeldWave>,
}

impl Walk {
    fn new(plan: &Plan) -> Self {
        let n = plan.steps.len();
        Walk {
            state: vec![State::Pending; n],
            reports: vec![None; n],
            blocked_by: vec![None; n],
            changes: Vec::new(),
            still_running: Vec::new(),
            interrupted: false,
            stopped_after: None,
            invalid_plan: None,
            held: Vec::new(),
        }
    }

    fn stopped(&self) -> bool {
        self.interrupted || self.stopped_after.is_some()
    }

    fn finish<P>(
        &mut self,
        ctx: &Ctx<'_, P>,
        plan: &Plan,
        i: usize,
        outcome: StepOutcome,
        message: String,
    ) {
        self.finish_with(ctx, plan, i, outcome, message, Vec::new());
    }

    fn finish_with<P>(
        &mut self,
        ctx: &Ctx<'_, P>,
        plan: &Plan,
        i: usize,
        outcome: StepOutcome,
        message: String,
        update_ids: Vec<String>,
    ) {
        let step = &plan.steps[i];
        self.state[i] = State::Finished(outcome);
        ctx.emit(Event::StepFinished {
            elapsed_ms: ctx.ms(),
            step_id: step.id.clone(),
            outcome,
            message: message.clone(),
        });
        self.reports[i] = Some(StepReport {
            id: step.id.clone(),
            kind: step.kind,
            account: step.account.clone(),
            region: step.region.clone(),
            cluster: step.cluster.clone(),
            description: step.describe(),
            outcome,
            message,
            update_ids,
            blocked_by: self.blocked_by[i].clone(),
        });
    }

    /// Why dependents of step `i` cannot run, if they cannot: the root
    /// cause's id. A cancelled or not-started dependency is no failure: its
    /// dependents just do not start.
    fn failure_cause(&self, plan: &Plan, i: usize) -> Option<String> {
        match self.state[i] {
            State::Finished(StepOutcome::Failed | StepOutcome::Refused | StepOutcome::TimedOut) => {
                Some(plan.steps[i].id.clone())
            }
            State::Finished(StepOutcome::Skipped) => self.blocked_by[i].clone(),
            _ => None,
        }
    }

    fn into_report(self, plan: &Plan, elapsed_ms: u64) -> ApplyReport {
        let steps: Vec<StepReport> = self
            .reports
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                // The walker finishes every step before it returns; this
                // fallback only keeps a bug from losing a step.
                r.unwrap_or_else(|| {
                    let s = &plan.steps[i];
                    StepReport {
                        id: s.id.clone(),
                        kind: s.kind,
                        account: s.account.clone(),
                        region: s.region.clone(),
                        cluster: s.cluster.clone(),
                        description: s.describe(),
                        outcome: StepOutcome::NotStarted,
                        message: "not started".to_string(),
                        update_ids: Vec::new(),
                        blocked_by: None,
                    }
                })
            })
            .collect();
        let counts = StepCounts::from_outcomes(steps.iter().map(|s| s.outcome));
        let clusters = cluster_reports(plan, &steps);
        let mut still_running = self.still_running;
        still_running.sort();
        still_running.dedup();
        ApplyReport {
            steps,
            clusters,
            changes: self.changes,
            updates_still_running: still_running,
            counts,
            interrupted: self.interrupted,
            stopped_after: self.stopped_after,
            held: self.held,
            invalid_plan: self.invalid_plan,
            elapsed_ms,
        }
    }
}

type StepFuture<'a> = Pin<Box<dyn Future<Output = (usize, StepResult)> + Send + 'a>>;

/// The running steps. Their futures borrow the provider, so they run as
/// futures of the walker's task rather than as spawned tasks (which would
/// need `'static`); steps spend their time awaiting AWS, so one task is
/// enough, and only the futures that were woken are polled.
type Running<'a> = FuturesUnordered<StepFuture<'a>>;

/// One stretch of the rollout: a wave, or with `--canary` the canaries of
/// the first wave and then the rest of it. A phase opens only once every
/// step of the phases before it finished.
#[derive(Debug)]
struct Phase {
    wave: u32,
    canary: bool,
    /// Follows the canary phase of the same wave.
    after_canary: bool,
    /// Clusters (indices into `plan.clusters`) that finish in this phase.
    clusters: Vec<usize>,
}

#[derive(Debug)]
struct Phases {
    list: Vec<Phase>,
    /// Per step, the phase it runs in.
    of_step: Vec<usize>,
    /// Per cluster of the plan, the phase its last step runs in (`None` for
    /// clusters without steps).
    of_cluster: Vec<Option<usize>>,
}

impl Phases {
    /// Waves from the steps' `wave`; the canaries are the first `canary`
    /// clusters of the first wave in the plan's order, with every step they
    /// need (shared ones included). Canaries that would be the whole wave are
    /// no canaries.
    fn new(plan: &Plan, canary: usize) -> Phases {
        let waves: BTreeSet<u32> = plan.steps.iter().map(|s| s.wave).collect();
        let first = waves.first().copied();
        let in_first: Vec<usize> = plan
            .clusters
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.steps.is_empty() && Some(c.wave) == first)
            .map(|(k, _)| k)
            .collect();
        let canaries: BTreeSet<&str> = if canary > 0 && canary < in_first.len() {
            in_first[..canary]
                .iter()
                .flat_map(|&k| plan.clusters[k].steps.iter().map(String::as_str))
                .collect()
        } else {
            BTreeSet::new()
        };
        let mut list = Vec::new();
        for &wave in &waves {
            if Some(wave) == first && !canaries.is_empty() {
                list.push(Phase {
                    wave,
                    canary: true,
                    after_canary: false,
                    clusters: Vec::new(),
                });
            }
            let rest = plan
                .steps
                .iter()
                .any(|s| s.wave == wave && !canaries.contains(s.id.as_str()));
            if rest {
                list.push(Phase {
                    wave,
                    canary: false,
                    after_canary: Some(wave) == first && !canaries.is_empty(),
                    clusters: Vec::new(),
                });
            }
        }
        let of_step: Vec<usize> = plan
            .steps
            .iter()
            .map(|s| {
                let canary = canaries.contains(s.id.as_str());
                list.iter()
                    .position(|p| p.wave == s.wave && p.canary == canary)
                    .unwrap_or(0)
            })
            .collect();
        let index: BTreeMap<&str, usize> = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let of_cluster: Vec<Option<usize>> = plan
            .clusters
            .iter()
            .map(|c| {
                c.steps
                    .iter()
                    .filter_map(|id| index.get(id.as_str()).map(|&i| of_step[i]))
                    .max()
            })
            .collect();
        for (k, p) in of_cluster.iter().enumerate() {
            if let Some(p) = p {
                list[*p].clusters.push(k);
            }
        }
        Phases {
            list,
            of_step,
            of_cluster,
        }
    }

    fn keys(&self, plan: &Plan, phase: usize) -> Vec<ClusterKey> {
        self.list[phase]
            .clusters
            .iter()
            .map(|&k| plan.clusters[k].key.clone())
            .collect()
    }

    fn started<P>(&self, ctx: &Ctx<'_, P>, plan: &Plan, phase: usize) {
        // One wave and no canaries: no wave events, so such an apply reads
        // exactly as it did before waves existed.
        if self.list.len() < 2 {
            return;
        }
        let p = &self.list[phase];
        ctx.emit(Event::WaveStarted {
            elapsed_ms: ctx.ms(),
            wave: p.wave,
            canary: p.canary,
            clusters: self.keys(plan, phase),
        });
    }
}

/// The clusters that failed so far, from the phases up to `current`: any of
/// their steps failed, was refused, timed out or was skipped because of one
/// of those.
fn failed_clusters(plan: &Plan, phases: &Phases, w: &Walk, current: usize) -> Vec<usize> {
    let bad: BTreeSet<&str> = plan
        .steps
        .iter()
        .zip(&w.state)
        .filter(|(_, st)| {
            matches!(
                st,
                State::Finished(
                    StepOutcome::Failed
                        | StepOutcome::Refused
                        | StepOutcome::TimedOut
                        | StepOutcome::Skipped
                )
            )
        })
        .map(|(s, _)| s.id.as_str())
        .collect();
    plan.clusters
        .iter()
        .enumerate()
        .filter(|(k, c)| {
            phases.of_cluster[*k].is_some_and(|p| p <= current)
                && c.steps.iter().any(|id| bad.contains(id.as_str()))
        })
        .map(|(k, _)| k)
        .collect()
}

/// `2 clusters failed in wave 0, more than `--max-failures 1``.
fn hold_reason(
    plan: &Plan,
    phases: &Phases,
    failed: &[usize],
    current: usize,
    max: usize,
) -> String {
    let n = failed.len();
    let clusters = if n == 1 { "cluster" } else { "clusters" };
    let cur = &phases.list[current];
    let place = if cur.canary {
        format!("among the canaries of wave {}", cur.wave)
    } else {
        let waves: BTreeSet<u32> = failed.iter().map(|&k| plan.clusters[k].wave).collect();
        let names: Vec<String> = waves.iter().map(u32::to_string).collect();
        match names.as_slice() {
            [one] => format!("in wave {one}"),
            [init @ .., last] => format!("in waves {} and {last}", init.join(", ")),
            [] => "so far".to_string(),
        }
    };
    format!("{n} {clusters} failed {place}, more than `--max-failures {max}`")
}

#[allow(clippy::too_many_arguments)]
async fn walk<P: Provider>(
    ctx: &Ctx<'_, P>,
    plan: &Plan,
    order: &[usize],
    deps: &[Vec<usize>],
    phases: &Phases,
    w: &mut Walk,
    mut cancel: watch::Receiver<bool>,
) {
    let mut running: Running<'_> = FuturesUnordered::new();
    // Permits the walker got while waiting for one, for the next ready step.
    let mut spare: Option<SemaphorePermit<'_>> = None;
    let mut spare_update: Option<SemaphorePermit<'_>> = None;
    // The (account, region) of the step started last.
    let mut last_scope: Option<ScopeKey<'_>> = None;
    let mut current = 0;
    if !phases.list.is_empty() {
        phases.started(ctx, plan, current);
    }
    loop {
        if !w.interrupted && *cancel.borrow() {
            note_interrupt(ctx, w);
        }
        let mut progressed = false;
        // A ready step found no free `--parallelism` slot, or an endpoint
        // step no free `--max-updates` permit.
        let (mut want_slot, mut want_update) = (false, false);
        let mut ready: Vec<usize> = Vec::new();
        for &i in order {
            // A step of a later wave waits for its wave to open, failures
            // included: it is skipped, or held, only once its turn comes.
            if w.state[i] != State::Pending || phases.of_step[i] > current {
                continue;
            }
            // Dependencies come earlier in `order`, so one pass carries a
            // failure down a whole chain.
            if let Some(cause) = deps[i].iter().find_map(|&d| w.failure_cause(plan, d)) {
                let what = match w.state.iter().zip(&plan.steps).find(|(_, s)| s.id == cause) {
                    Some((State::Finished(o), _)) => o.as_str(),
                    _ => "failed",
                };
                w.blocked_by[i] = Some(cause.clone());
                w.finish(
                    ctx,
                    plan,
                    i,
                    StepOutcome::Skipped,
                    format!("skipped: `{cause}` {what}"),
                );
                progressed = true;
                continue;
            }
            if w.stopped() {
                continue;
            }
            if !deps[i]
                .iter()
                .all(|&d| matches!(w.state[d], State::Finished(o) if o.is_success()))
            {
                continue;
            }
            let step = &plan.steps[i];
            if step.lockout_risk && !ctx.opts.allow_lockout {
                progressed = true;
                w.finish(ctx, plan, i, StepOutcome::Refused, lockout_message());
                if ctx.opts.fail_fast {
                    w.stopped_after = Some(step.id.clone());
                }
                continue;
            }
            ready.push(i);
        }
        // A cluster already under way goes first: it finishes sooner and
        // spends less time between its staged updates, where starting new
        // clusters would only add to the queue for the same API rate.
        ready.sort_by_key(|&i| !continues_a_cluster(plan, deps, i));
        // Free slots go round-robin over (account, region): AWS limits each
        // separately, so spreading the calls uses every region's rate at
        // once instead of queueing one region's steps behind another's.
        for i in round_robin(plan, &ready, &last_scope) {
            // A refusal in this pass may have stopped the apply.
            if w.stopped() {
                break;
            }
            let step = &plan.steps[i];
            let updates = ctx
                .updates
                .as_ref()
                .filter(|_| step.kind == StepKind::EksEndpoint);
            let update_permit = match updates {
                Some(u) => match spare_update.take().or_else(|| u.try_acquire().ok()) {
                    Some(p) => Some(p),
                    None => {
                        want_update = true;
                        continue;
                    }
                },
                None => None,
            };
            let Some(permit) = spare.take().or_else(|| ctx.calls.try_acquire().ok()) else {
                want_slot = true;
                spare_update = update_permit.or(spare_update);
                continue;
            };
            progressed = true;
            last_scope = Some(scope_key(step));
            w.state[i] = State::Running;
            ctx.emit(Event::StepStarted {
                elapsed_ms: ctx.ms(),
                step_id: step.id.clone(),
                kind: step.kind,
                account: step.account.clone(),
                region: step.region.clone(),
                cluster: step.cluster.clone(),
                description: step.describe(),
            });
            let rx = cancel.clone();
            let slot = CallSlot {
                slots: &ctx.calls,
                held: Some(permit),
            };
            running.push(Box::pin(async move {
                let result = run_step(ctx, step, slot, rx).await;
                drop(update_permit);
                (i, result)
            }));
        }
        // Permits no step took go back.
        (spare, spare_update) = (None, None);
        if running.is_empty() {
            if progressed {
                continue;
            }
            // Nothing runs and nothing more can start: the phase is over.
            if w.stopped() || current + 1 >= phases.list.len() {
                break;
            }
            let failed = failed_clusters(plan, phases, w, current);
            if failed.len() > ctx.opts.max_failures {
                let reason = hold_reason(plan, phases, &failed, current, ctx.opts.max_failures);
                hold(ctx, plan, phases, current + 1, &reason, w);
                break;
            }
            current += 1;
            phases.started(ctx, plan, current);
            continue;
        }
        tokio::select! {
            // The signal first: the `interrupted` event must list the updates
            // being waited on before the waits see the signal and end.
            biased;
            () = cancelled(&mut cancel), if !w.interrupted => note_interrupt(ctx, w),
            Some((i, result)) = running.next() => {
                let failed = matches!(
                    result.outcome,
                    StepOutcome::Failed | StepOutcome::TimedOut
                );
                w.changes.extend(result.changes);
                w.still_running.extend(result.still_running);
                w.finish_with(ctx, plan, i, result.outcome, result.message, result.update_ids);
                if failed && ctx.opts.fail_fast && w.stopped_after.is_none() {
                    w.stopped_after = Some(plan.steps[i].id.clone());
                }
            }
            // A step waiting for an update let its slot go: start the next.
            permit = ctx.calls.acquire(), if want_slot && !w.stopped() => spare = permit.ok(),
            permit = async { ctx.updates.as_ref()?.acquire().await.ok() },
                if want_update && !w.stopped() => spare_update = permit,
        }
    }
    // Whatever is still pending never started: the apply was stopped.
    let message = match (&w.stopped_after, w.interrupted) {
        (_, true) => "not started: the apply was interrupted".to_string(),
        (Some(id), false) => format!("not started: `--fail-fast` stopped the apply after `{id}`"),
        (None, false) => "not started".to_string(),
    };
    for &i in order {
        if w.state[i] == State::Pending {
            w.finish(ctx, plan, i, StepOutcome::NotStarted, message.clone());
        }
    }
}

type ScopeKey<'a> = (Option<&'a str>, &'a str);

/// Whether step `i` follows an earlier step of its own cluster (the second
/// update of a staged move, or the update after a wait).
fn continues_a_cluster(plan: &Plan, deps: &[Vec<usize>], i: usize) -> bool {
    let step = &plan.steps[i];
    step.cluster.is_some()
        && deps[i].iter().any(|&d| {
            let dep = &plan.steps[d];
            dep.cluster == step.cluster && scope_key(dep) == scope_key(step)
        })
}

fn scope_key(step: &Step) -> ScopeKey<'_> {
    (step.account.as_deref(), step.region.as_str())
}

/// `ready` (in dependency order) interleaved over (account, region): one
/// step of each in turn, starting with the one after `last`, each keeping
/// its own order.
fn round_robin<'a>(plan: &'a Plan, ready: &[usize], last: &Option<ScopeKey<'a>>) -> Vec<usize> {
    let mut groups: BTreeMap<ScopeKey<'a>, std::collections::VecDeque<usize>> = BTreeMap::new();
    for &i in ready {
        groups
            .entry(scope_key(&plan.steps[i]))
            .or_default()
            .push_back(i);
    }
    let mut queues: Vec<_> = groups.into_iter().collect();
    if let Some(last) = last {
        let first = queues.iter().position(|(k, _)| k > last).unwrap_or(0);
        queues.rotate_left(first);
    }
    let mut out = Vec::with_capacity(ready.len());
    while out.len() < ready.len() {
        for (_, q) in &mut queues {
            out.extend(q.pop_front());
        }
    }
    out
}

/// Holds every phase from `from` on: one `wave_held` each, and their steps
/// end `not_started` with the reason.
fn hold<P>(
    ctx: &Ctx<'_, P>,
    plan: &Plan,
    phases: &Phases,
    from: usize,
    reason: &str,
    w: &mut Walk,
) {
    for p in from..phases.list.len() {
        let phase = &phases.list[p];
        let held = HeldWave {
            wave: phase.wave,
            after_canary: phase.after_canary,
            reason: reason.to_string(),
            clusters: phases.keys(plan, p),
        };
        ctx.emit(Event::WaveHeld {
            elapsed_ms: ctx.ms(),
            wave: held.wave,
            after_canary: held.after_canary,
            reason: held.reason.clone(),
            clusters: held.clusters.clone(),
        });
        let message = format!("not started: {} held: {reason}", held.label());
        for i in 0..plan.steps.len() {
            if phases.of_step[i] == p && w.state[i] == State::Pending {
                w.finish(ctx, plan, i, StepOutcome::NotStarted, message.clone());
            }
        }
        w.held.push(held);
    }
}

fn note_interrupt<P>(ctx: &Ctx<'_, P>, w: &mut Walk) {
    w.interrupted = true;
    let running_updates: Vec<RunningUpdate> = ctx.watching().values().cloned().collect();
    ctx.emit(Event::Interrupted {
        elapsed_ms: ctx.ms(),
        running_updates,
    });
}

fn lockout_message() -> String {
    "refused: this step turns public access off while the manifest declares no `private_access_from`, which can lock you out of the cluster; apply with `--allow-lockout` to run it anyway".to_string()
}

/// Per cluster, the most telling outcome among its steps.
fn cluster_reports(plan: &Plan, steps: &[StepReport]) -> Vec<ClusterReport> {
    let by_id: BTreeMap<&str, &StepReport> = steps.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut out = Vec::new();
    for c in &plan.clusters {
        if c.status == PlanStatus::Blocked {
            let message = plan
                .findings
                .iter()
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

// ---------------------------------------------------------------------------
// Steps

/// What running one step gave the walker.
struct StepResult {
    outcome: StepOutcome,
    message: String,
    changes: Vec<Change>,
    still_running: Vec<RunningUpdate>,
    update_ids: Vec<String>,
}

/// A step that ended well.
struct Finish {
    outcome: StepOutcome,
    message: String,
    change: Option<Change>,
}

impl Finish {
    fn done(message: String, change: Option<Change>) -> Self {
        Finish {
            outcome: StepOutcome::Done,
            message,
            change,
        }
    }

    fn converged(message: String) -> Self {
        Finish {
            outcome: StepOutcome::AlreadyConverged,
            message,
            change: None,
        }
    }
}

/// Why a step did not end well. Each message is what the user reads after
/// `failed:` (or `timed out:`, `cancelled:`).
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("the step's `{0}` cannot be read (a plan from another version, or edited by hand); run `eksgate plan` again")]
    Malformed(&'static str),
    #[error("cluster `{0}` was not found")]
    ClusterNotFound(String),
    #[error("refusing to turn both public and private access off: EKS rejects it")]
    BothOff,
    #[error("refusing to turn public access off: private access is off on `{0}` now (it changed since the plan); run `eksgate plan` again")]
    PrivateAccessOff(String),
    #[error("`enableDnsHostnames` needs `enableDnsSupport`, which is off on `{0}` now (it changed since the plan); run `eksgate plan` again")]
    DnsSupportOff(String),
    #[error("update `{id}` ended `{status}`: {errors}")]
    UpdateFailed {
        id: String,
        status: String,
        errors: String,
    },
    #[error("cluster `{0}` still had updates in progress after {MAX_ROUNDS} waits; run `eksgate apply` again later")]
    Busy(String),
    #[error("{what} did not finish within {}; the update may still finish in AWS: running `eksgate apply` again resumes, waiting for the running update instead of starting another", humantime::format_duration(*.waited))]
    TimedOut {
        what: String,
        update_id: Option<String>,
        waited: std::time::Duration,
    },
    /// Interrupted; `update_id` is the update it was waiting on, which goes
    /// on in AWS.
    #[error("{message}")]
    Cancelled {
        message: String,
        update_id: Option<String>,
    },
}

fn scope(step: &Step) -> Scope {
    Scope {
        account: step.account.clone(),
        region: step.region.clone(),
        role_arn: step.role_arn.clone(),
    }
}

/// The update ids a step touched, kept even when it ends badly.
#[derive(Default)]
struct Trace {
    update_ids: Vec<String>,
}

impl Trace {
    fn touched(&mut self, id: &str) {
        if !self.update_ids.iter().any(|u| u == id) {
            self.update_ids.push(id.to_string());
        }
    }
}

async fn run_step<'a, P: Provider>(
    ctx: &'a Ctx<'a, P>,
    step: &Step,
    mut slot: CallSlot<'a>,
    mut cancel: watch::Receiver<bool>,
) -> StepResult {
    let mut trace = Trace::default();
    let result = match step.kind {
        StepKind::VpcDnsSupport => vpc_step(ctx, step, DnsAttribute::Support, &cancel).await,
        StepKind::VpcDnsHostnames => vpc_step(ctx, step, DnsAttribute::Hostnames, &cancel).await,
        StepKind::SgHttpsIngress => sg_step(ctx, step, &cancel).await,
        StepKind::EksEndpoint => endpoint_step(ctx, step, &mut slot, &mut cancel, &mut trace).await,
        StepKind::WaitUpdate => wait_step(ctx, step, &mut slot, &mut cancel, &mut trace).await,
    };
    drop(slot);
    ctx.watching().remove(&step.id);
    let running = |id: &str| RunningUpdate {
        step_id: step.id.clone(),
        account: step.account.clone(),
        region: step.region.clone(),
        cluster: step.cluster.clone().unwrap_or_default(),
        update_id: id.to_string(),
    };
    let (outcome, still_running) = match &result {
        Ok(f) => (f.outcome, None),
        Err(StepError::TimedOut { update_id, .. }) => (StepOutcome::TimedOut, update_id.clone()),
        Err(StepError::Cancelled { update_id, .. }) => (StepOutcome::Cancelled, update_id.clone()),
        Err(_) => (StepOutcome::Failed, None),
    };
    let (message, changes) = match result {
        Ok(f) => (f.message, f.change.into_iter().collect()),
        Err(e) => (e.to_string(), Vec::new()),
    };
    StepResult {
        outcome,
        message,
        changes,
        still_running: still_running.iter().map(|id| running(id)).collect(),
        update_ids: trace.update_ids,
    }
}

/// The last look before a call that changes something: once interrupted,
/// no new change starts.
fn check_cancel(cancel: &watch::Receiver<bool>) -> Result<(), StepError> {
    if *cancel.borrow() {
        return Err(StepError::Cancelled {
            message: "interrupted before its call; nothing was changed".to_string(),
            update_id: None,
        });
    }
    Ok(())
}

async fn vpc_step<P: Provider>(
    ctx: &Ctx<'_, P>,
    step: &Step,
    attribute: DnsAttribute,
    cancel: &watch::Receiver<bool>,
) -> Result<Finish, StepError> {
    let vpc_id = step
        .vpc_id
        .as_deref()
        .ok_or(StepError::Malformed("vpc_id"))?;
    let name = match attribute {
        DnsAttribute::Support => "enableDnsSupport",
        DnsAttribute::Hostnames => "enableDnsHostnames",
    };
    let scope = scope(step);
    let vpc = ctx.provider.read_vpc(&scope, vpc_id).await?;
    let on = match attribute {
        DnsAttribute::Support => vpc.dns_support,
        DnsAttribute::Hostnames => vpc.dns_hostnames,
    };
    if on {
        return Ok(Finish::converged(format!(
            "`{name}` is already on in `{vpc_id}`"
        )));
    }
    // EC2 rejects hostnames without support; the plan orders them, but the
    // VPC may have changed since.
    if attribute == DnsAttribute::Hostnames && !vpc.dns_support {
        return Err(StepError::DnsSupportOff(vpc_id.to_string()));
    }
    check_cancel(cancel)?;
    ctx.provider
        .set_vpc_dns(&scope, vpc_id, attribute, true)
        .await?;
    Ok(Finish::done(
        format!("`{name}` turned on in `{vpc_id}`"),
        Some(Change::VpcAttributeEnabled {
            step_id: step.id.clone(),
            account: step.account.clone(),
            region: step.region.clone(),
            vpc_id: vpc_id.to_string(),
            attribute: name.to_string(),
        }),
    ))
}

async fn sg_step<P: Provider>(
    ctx: &Ctx<'_, P>,
    step: &Step,
    cancel: &watch::Receiver<bool>,
) -> Result<Finish, StepError> {
    let group_id = step
        .security_group_id
        .as_deref()
        .ok_or(StepError::Malformed("security_group_id"))?;
    let sources: HttpsSources = step.after_as().ok_or(StepError::Malformed("after"))?;
    if sources.cidrs.is_empty() && sources.security_groups.is_empty() {
        return Ok(Finish::converged("no sources to add".to_string()));
    }
    check_cancel(cancel)?;
    match ctx
        .provider
        .authorize_https_ingress(&scope(step), group_id, &sources)
        .await?
    {
        IngressOutcome::Added => Ok(Finish::done(
            format!("TCP 443 ingress added to `{group_id}`"),
            Some(Change::HttpsIngressAdded {
                step_id: step.id.clone(),
                account: step.account.clone(),
                region: step.region.clone(),
                group_id: group_id.to_string(),
                sources,
            }),
        )),
        IngressOutcome::AlreadyPresent => Ok(Finish::converged(format!(
            "the TCP 443 rules were already in `{group_id}`"
        ))),
    }
}

fn found(obs: ClusterObservation, name: &str) -> Result<LiveCluster, StepError> {
    match obs {
        ClusterObservation::Found(c) => Ok(c),
        ClusterObservation::NotFound => Err(StepError::ClusterNotFound(name.to_string())),
        ClusterObservation::AccountMismatch { expected, actual } => {
            Err(ProviderError::AccountMismatch { expected, actual }.into())
        }
    }
}

/// The step's CIDRs as a normalised set, when it sends them.
fn wanted_cidrs(want: &EndpointSettings) -> Result<Option<BTreeSet<IpNet>>, StepError> {
    let Some(list) = &want.public_access_cidrs else {
        return Ok(None);
    };
    list.iter()
        .map(|s| {
            s.parse::<IpNet>()
                .map(|n| n.trunc())
                .map_err(|_| StepError::Malformed("after.public_access_cidrs"))
        })
        .collect::<Result<BTreeSet<_>, _>>()
        .map(Some)
}

/// Whether the live endpoint already is what the step asks. CIDRs count only
/// when the step sends them and wants public access (EKS keeps the old list
/// while public access is off).
fn endpoint_converged(
    live: &LiveCluster,
    want: &EndpointSettings,
    cidrs: &Option<BTreeSet<IpNet>>,
) -> bool {
    let flags =
        live.endpoint.public == want.public_access && live.endpoint.private == want.private_access;
    let cidrs_match = match cidrs {
        Some(c) if want.public_access => {
            let live_set: BTreeSet<IpNet> =
                live.public_access_cidrs.iter().map(IpNet::trunc).collect();
            live_set == *c
        }
        _ => true,
    };
    flags && cidrs_match
}

async fn endpoint_step<'a, P: Provider>(
    ctx: &'a Ctx<'a, P>,
    step: &Step,
    slot: &mut CallSlot<'a>,
    cancel: &mut watch::Receiver<bool>,
    trace: &mut Trace,
) -> Result<Finish, StepError> {
    let name = step
        .cluster
        .as_deref()
        .ok_or(StepError::Malformed("cluster"))?;
    let want: EndpointSettings = step.after_as().ok_or(StepError::Malformed("after"))?;
    if !want.public_access && !want.private_access {
        return Err(StepError::BothOff);
    }
    let cidrs = wanted_cidrs(&want)?;
    let scope = scope(step);
    let mode = mode_name(want.public_access, want.private_access);
    let mut waited: Option<String> = None;
    let mut rounds = 0;
    while rounds < MAX_ROUNDS {
        slot.hold().await;
        // Read just before deciding: the plan's view is minutes old when
        // earlier steps waited, and AWS starts updates of its own.
        let live = found(ctx.provider.describe_cluster(&scope, name).await?, name)?;
        if endpoint_converged(&live, &want, &cidrs) {
            let message = match &waited {
                Some(id) => {
                    format!("the endpoint is already {mode} (after update `{id}`); no call made")
                }
                None => format!("the endpoint is already {mode}; no call made"),
            };
            return Ok(Finish::converged(message));
        }
        if let Some(id) = live.updates_in_progress.first() {
            let reason = format!(
                "update `{id}` is in progress on `{name}` and EKS runs one update at a time"
            );
            wait_other(
                ctx,
                step,
                &scope,
                name,
                Some(id),
                reason,
                slot,
                cancel,
                trace,
            )
            .await?;
            waited = Some(id.clone());
            rounds += 1;
            continue;
        }
        if live.status == ClusterStatus::Updating {
            let reason = format!("`{name}` is `UPDATING` and EKS runs one update at a time");
            wait_other(ctx, step, &scope, name, None, reason, slot, cancel, trace).await?;
            rounds += 1;
            continue;
        }
        // The staged order enables private access before public access goes
        // off; if private access is off now, someone changed the cluster and
        // turning public off in one call could cut everyone off.
        if live.endpoint.public && !want.public_access && !live.endpoint.private {
            return Err(StepError::PrivateAccessOff(name.to_string()));
        }
        check_cancel(cancel)?;
        match ctx.provider.update_endpoint(&scope, name, &want).await? {
            UpdateStart::Started(id) => {
                let anchor = Instant::now();
                trace.touched(&id);
                ctx.emit(Event::UpdateStarted {
                    elapsed_ms: ctx.ms(),
                    step_id: step.id.clone(),
                    update_id: id.clone(),
                });
                slot.release();
                let state =
                    wait_update(ctx, step, &scope, name, &id, anchor, false, cancel).await?;
                return match state.status {
                    UpdateStatus::Successful => Ok(Finish::done(
                        format!("update `{id}` is `Successful`: the endpoint is {mode}"),
                        Some(Change::EndpointUpdated {
                            step_id: step.id.clone(),
                            account: step.account.clone(),
                            region: step.region.clone(),
                            cluster: name.to_string(),
                            update_id: id.clone(),
                            settings: want.clone(),
                        }),
                    )),
                    other => Err(StepError::UpdateFailed {
                        id: id.clone(),
                        status: wait::status_str(&other).to_string(),
                        errors: aws_errors(&state.errors),
                    }),
                };
            }
            UpdateStart::InUse(id) => {
                let reason = format!(
                    "EKS answered `ResourceInUseException`: update `{id}` is in progress on `{name}`"
                );
                wait_other(
                    ctx,
                    step,
                    &scope,
                    name,
                    Some(&id),
                    reason,
                    slot,
                    cancel,
                    trace,
                )
                .await?;
                waited = Some(id);
                rounds += 1;
            }
            UpdateStart::AlreadyConverged => {
                return Ok(Finish::converged(format!(
                    "EKS answered that the endpoint is already {mode}"
                )));
            }
        }
    }
    Err(StepError::Busy(name.to_string()))
}

fn aws_errors(errors: &[(String, String)]) -> String {
    if errors.is_empty() {
        return "AWS gave no reason".to_string();
    }
    errors
        .iter()
        .map(|(code, message)| format!("{code}: {message}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Waits for update `id` (started by this step when `poll_now` is false) and
/// returns its final state; timeouts and interruptions become errors.
#[allow(clippy::too_many_arguments)]
async fn wait_update<P: Provider>(
    ctx: &Ctx<'_, P>,
    step: &Step,
    scope: &Scope,
    name: &str,
    id: &str,
    anchor: Instant,
    poll_now: bool,
    cancel: &mut watch::Receiver<bool>,
) -> Result<crate::provider::UpdateState, StepError> {
    Ok(
        wait_update_counted(ctx, step, scope, name, id, anchor, poll_now, cancel)
            .await?
            .0,
    )
}

#[allow(clippy::too_many_arguments)]
async fn wait_update_counted<P: Provider>(
    ctx: &Ctx<'_, P>,
    step: &Step,
    scope: &Scope,
    name: &str,
    id: &str,
    anchor: Instant,
    poll_now: bool,
    cancel: &mut watch::Receiver<bool>,
) -> Result<(crate::provider::UpdateState, u32), StepError> {
    ctx.watching().insert(
        step.id.clone(),
        RunningUpdate {
            step_id: step.id.clone(),
            account: step.account.clone(),
            region: step.region.clone(),
            cluster: name.to_string(),
            update_id: id.to_string(),
        },
    );
    let end = wait::wait_for_update(
        ctx.provider,
        scope,
        name,
        id,
        &ctx.opts.wait,
        cancel,
        &ctx.learning,
        anchor,
        poll_now,
        |status| {
            ctx.emit(Event::UpdatePolled {
                elapsed_ms: ctx.ms(),
                step_id: step.id.clone(),
                update_id: Some(id.to_string()),
                status: status.to_string(),
            })
        },
    )
    .await;
    ctx.watching().remove(&step.id);
    match end {
        WaitEnd::Finished { value, polls } => Ok((value, polls)),
        // The configured timeout reads better than the exact time waited.
        WaitEnd::TimedOut { .. } => Err(StepError::TimedOut {
            what: format!("update `{id}` of `{name}`"),
            update_id: Some(id.to_string()),
            waited: ctx.opts.wait.timeout,
        }),
        WaitEnd::Cancelled => Err(StepError::Cancelled {
            message: format!("interrupted while waiting for update `{id}`, which goes on in AWS"),
            update_id: Some(id.to_string()),
        }),
        WaitEnd::Failed(err) => Err(err.into()),
    }
}

/// Waits for an update this step did not start (or, with no id, for the
/// cluster to leave `UPDATING`). How that update ends is not this step's
/// outcome: the step decides again afterwards.
#[allow(clippy::too_many_arguments)]
async fn wait_other<P: Provider>(
    ctx: &Ctx<'_, P>,
    step: &Step,
    scope: &Scope,
    name: &str,
    id: Option<&str>,
    reason: String,
    slot: &mut CallSlot<'_>,
    cancel: &mut watch::Receiver<bool>,
    trace: &mut Trace,
) -> Result<Option<(crate::provider::UpdateState, u32)>, StepError> {
    slot.release();
    ctx.emit(Event::WaitingForUpdate {
        elapsed_ms: ctx.ms(),
        step_id: step.id.clone(),
        update_id: id.map(str::to_string),
        reason,
    });
    match id {
        Some(id) => {
            trace.touched(id);
            let got = wait_update_counted(ctx, step, scope, name, id, Instant::now(), true, cancel)
                .await?;
            Ok(Some(got))
        }
        None => {
            let end = wait::wait_while_updating(
                ctx.provider,
                scope,
                name,
                &ctx.opts.wait,
                cancel,
                |status| {
                    ctx.emit(Event::UpdatePolled {
                        elapsed_ms: ctx.ms(),
                        step_id: step.id.clone(),
                        update_id: None,
                        status: status.to_string(),
                    })
                },
            )
            .await;
            match end {
                WaitEnd::Finished { .. } => Ok(None),
                WaitEnd::TimedOut { .. } => Err(StepError::TimedOut {
                    what: format!("the update running on `{name}`"),
                    update_id: None,
                    waited: ctx.opts.wait.timeout,
                }),
                WaitEnd::Cancelled => Err(StepError::Cancelled {
                    message: format!("interrupted while waiting for `{name}` to leave `UPDATING`"),
                    update_id: None,
                }),
                WaitEnd::Failed(err) => Err(err.into()),
            }
        }
    }
}

async fn wait_step<P: Provider>(
    ctx: &Ctx<'_, P>,
    step: &Step,
    slot: &mut CallSlot<'_>,
    cancel: &mut watch::Receiver<bool>,
    trace: &mut Trace,
) -> Result<Finish, StepError> {
    let name = step
        .cluster
        .as_deref()
        .ok_or(StepError::Malformed("cluster"))?;
    let w: UpdateWait = step
        .after_as()
        .or_else(|| step.before_as())
        .ok_or(StepError::Malformed("after"))?;
    let scope = scope(step);
    let reason = match &w.update_id {
        Some(id) => format!("update `{id}` was in progress when the plan was made"),
        None => format!("`{name}` was `UPDATING` when the plan was made"),
    };
    match wait_other(
        ctx,
        step,
        &scope,
        name,
        w.update_id.as_deref(),
        reason,
        slot,
        cancel,
        trace,
    )
    .await?
    {
        Some((state, polls)) => {
            let status = wait::status_str(&state.status);
            let tail = match state.status {
                UpdateStatus::Successful => String::new(),
                // Someone else's update failing is no failure of this apply:
                // the cluster is free again, and the endpoint step re-reads.
                _ => format!(" ({})", aws_errors(&state.errors)),
            };
            if polls <= 1 {
                Ok(Finish::converged(format!(
                    "update `{}` had already ended `{status}`{tail}",
                    state.id
                )))
            } else {
                Ok(Finish::done(
                    format!("update `{}` ended `{status}`{tail}", state.id),
                    None,
                ))
            }
        }
        None => Ok(Finish::done(
            format!("`{name}` is no longer `UPDATING`"),
            None,
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::fake::{both, private, public, want, FakeAws, REGION};
    use super::*;
    use crate::desired::{DesiredCluster, EndpointAccess};

    fn plan_for(fake: &FakeAws, wants: Vec<DesiredCluster>) -> Plan {
        let plan = super::fake::plan(fake, wants);
        assert!(plan.findings.is_empty(), "{:?}", plan.findings);
        plan
    }

    fn opts() -> ApplyOptions {
        ApplyOptions {
            parallelism: 10,
            max_updates: 0,
            fail_fast: false,
            allow_lockout: false,
            max_failures: 0,
            canary: 0,
            wait: WaitOptions {
                first_interval: Duration::from_millis(5),
                max_interval: Duration::from_millis(20),
                timeout: Duration::from_secs(5),
            },
        }
    }

    /// Applies and collects every event; cancels after `cancel_after` if set.
    async fn run_with(
        plan: &Plan,
        fake: &FakeAws,
        opts: ApplyOptions,
        cancel_after: Option<Duration>,
    ) -> (ApplyReport, Vec<Event>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (cancel_tx, cancel_rx) = cancel_signal();
        let canceller = async {
            if let Some(d) = cancel_after {
                tokio::time::sleep(d).await;
                let _ = cancel_tx.send(true);
            }
        };
        let (report, ()) = tokio::join!(apply(plan, fake, &opts, tx, cancel_rx), canceller);
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        (report, events)
    }

    async fn run(plan: &Plan, fake: &FakeAws, opts: ApplyOptions) -> (ApplyReport, Vec<Event>) {
        run_with(plan, fake, opts, None).await
    }

    fn outcomes(report: &ApplyReport) -> Vec<(String, StepOutcome)> {
        report
            .steps
            .iter()
            .map(|s| (s.id.clone(), s.outcome))
            .collect()
    }

    fn ids(v: &[(&str, StepOutcome)]) -> Vec<(String, StepOutcome)> {
        v.iter().map(|(i, o)| (i.to_string(), *o)).collect()
    }

    use StepOutcome::*;

    /// Every step gets exactly one `step_finished`, and events come in time
    /// order between `apply_started` and `apply_finished`.
    fn check_event_stream(report: &ApplyReport, events: &[Event]) {
        assert!(matches!(events.first(), Some(Event::ApplyStarted { .. })));
        assert!(matches!(events.last(), Some(Event::ApplyFinished { .. })));
        assert!(events
            .windows(2)
            .all(|w| w[0].elapsed_ms() <= w[1].elapsed_ms()));
        for s in &report.steps {
            let finished: Vec<&Event> = events
                .iter()
                .filter(|e| matches!(e, Event::StepFinished { step_id, .. } if *step_id == s.id))
                .collect();
            assert_eq!(finished.len(), 1, "{}", s.id);
        }
    }

    /// Our updates of each cluster never overlap, and an update that turns
    /// public access off starts only after every earlier update of that
    /// cluster ended `Successful`.
    fn check_safe_order(fake: &FakeAws, clusters: &[&str]) {
        for name in clusters {
            let ups: Vec<_> = fake
                .updates_of(name)
                .into_iter()
                .filter(|u| u.ours)
                .collect();
            for (k, u) in ups.iter().enumerate() {
                for earlier in &ups[..k] {
                    assert!(
                        earlier.ends_at() <= u.started,
                        "{name}: overlapping updates"
                    );
                    if let Some((t, _)) = &u.target {
                        if !t.public {
                            assert!(earlier.fails.is_none(), "{name}: after a failed update");
                        }
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn steps_run_in_a_safe_order() {
        struct Case {
            name: &'static str,
            fake: FakeAws,
            wants: Vec<DesiredCluster>,
            outcomes: Vec<(&'static str, StepOutcome)>,
            end: EndpointAccess,
        }
        let cases = [
            Case {
                name: "public to private, DNS off, a bastion",
                fake: FakeAws::new()
                    .cluster("a", public())
                    .vpc("vpc-a", false, false),
                wants: vec![want("a", private(), &["sg-bastion"])],
                outcomes: vec![
                    ("eu-west-1/vpc-a/dns_support", Done),
                    ("eu-west-1/vpc-a/dns_hostnames", Done),
                    ("eu-west-1/sg-a/https_ingress", Done),
                    ("eu-west-1/a/endpoint.1", Done),
                    ("eu-west-1/a/endpoint.2", Done),
                ],
                end: private(),
            },
            Case {
                name: "private to public",
                fake: FakeAws::new().cluster("b", private()),
                wants: vec![want("b", public(), &[])],
                outcomes: vec![
                    ("eu-west-1/b/endpoint.1", Done),
                    ("eu-west-1/b/endpoint.2", Done),
                ],
                end: public(),
            },
            Case {
                name: "public to both",
                fake: FakeAws::new().cluster("c", public()),
                wants: vec![want("c", both(), &[])],
                outcomes: vec![("eu-west-1/c/endpoint.1", Done)],
                end: both(),
            },
        ];
        for case in cases {
            let plan = plan_for(&case.fake, case.wants.clone());
            let (report, events) = run(&plan, &case.fake, opts()).await;
            let name = case.name;
            let mut got = outcomes(&report);
            got.sort();
            let mut expected = ids(&case.outcomes);
            expected.sort();
            assert_eq!(got, expected, "{name}");
            assert!(report.success(), "{name}");
            assert_eq!(case.fake.violations(), Vec::<String>::new(), "{name}");
            let cluster = case.wants[0].key.name.as_str();
            assert_eq!(case.fake.endpoint_of(cluster), case.end, "{name}");
            check_safe_order(&case.fake, &[cluster]);
            check_event_stream(&report, &events);
            // DNS hostnames never before DNS support.
            let vpc_calls: Vec<String> = case
                .fake
                .calls_of("ModifyVpcAttribute")
                .into_iter()
                .map(|c| c.detail)
                .collect();
            if !vpc_calls.is_empty() {
                assert_eq!(vpc_calls, vec!["Support=true", "Hostnames=true"], "{name}");
            }
        }
    }

    /// The most updates in flight at once in the fake.
    fn max_updates_at_once(fake: &FakeAws, names: &[String]) -> usize {
        let mut edges: Vec<(std::time::Instant, i32)> = names
            .iter()
            .flat_map(|c| fake.updates_of(c))
            .flat_map(|u| [(u.started, 1), (u.ends_at(), -1)])
            .collect();
        // An update ending at the instant another starts did not overlap it.
        edges.sort();
        let (mut now, mut max) = (0i32, 0i32);
        for (_, d) in edges {
            now += d;
            max = max.max(now);
        }
        usize::try_from(max).unwrap_or(0)
    }

    #[tokio::test]
    async fn parallelism_bounds_calls_and_max_updates_bounds_updates() {
        // (parallelism, max_updates, clusters, calls at once, updates at once).
        // A step waiting for its update lets its call slot go, so even one
        // slot gets every cluster's update going; `--max-updates` is what
        // bounds the updates.
        let cases = [
            (1, 0, 4, 1, 4),
            (2, 0, 4, 2, 4),
            (8, 0, 3, 3, 3),
            (0, 0, 2, 1, 2),
            (1, 1, 4, 1, 1),
            (4, 2, 5, 2, 2),
            (2, 3, 6, 2, 3),
        ];
        for (parallelism, max_updates, n, calls, updates) in cases {
            let case = format!("parallelism {parallelism}, max_updates {max_updates}");
            let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
            let mut fake = FakeAws::new();
            for name in &names {
                fake = fake.cluster(name, public());
            }
            for name in &names {
                fake.edit(name, |c| c.update_duration = Duration::from_millis(120));
            }
            let plan = plan_for(&fake, names.iter().map(|c| want(c, both(), &[])).collect());
            let (report, events) = run(
                &plan,
                &fake,
                ApplyOptions {
                    parallelism,
                    max_updates,
                    ..opts()
                },
            )
            .await;
            assert!(report.success(), "{case}");
            assert_eq!(fake.max_in_flight(), calls, "calls at once, {case}");
            assert_eq!(
                max_updates_at_once(&fake, &names),
                updates,
                "updates at once, {case}"
            );
            check_event_stream(&report, &events);
        }
    }

    #[tokio::test]
    async fn free_slots_go_round_robin_over_regions() {
        // The plan lists every `eu-west-1` step before the `us-east-1` ones;
        // with two slots, the second step to start is in the other region,
        // so both regions' API rates are in use from the start.
        let names = ["a0", "a1", "a2", "b0", "b1", "b2"];
        let mut fake = FakeAws::new();
        for n in names {
            fake = fake.cluster(n, both());
        }
        let wants = names
            .iter()
            .map(|n| {
                let mut d = want(n, public(), &[]);
                if n.starts_with('b') {
                    d.key.region = "us-east-1".into();
                }
                d
            })
            .collect();
        let plan = plan_for(&fake, wants);
        let (report, events) = run(
            &plan,
            &fake,
            ApplyOptions {
                parallelism: 2,
                max_updates: 2,
                ..opts()
            },
        )
        .await;
        assert!(report.success());
        let regions: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                Event::StepStarted { region, .. } => Some(region.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(regions.len(), 6);
        assert_eq!(regions[..2], [REGION, "us-east-1"], "{regions:?}");
        check_event_stream(&report, &events);
    }

    #[tokio::test]
    async fn a_failed_update_skips_its_dependents_and_nothing_else() {
        let fake = FakeAws::new().cluster("a", public()).cluster("b", public());
        fake.edit("a", |c| {
            c.fail_updates = Some((
                "ClusterUnreachable".into(),
                "the control plane could not be reached".into(),
            ))
        });
        let plan = plan_for(
            &fake,
            vec![
                want("a", private(), &["10.0.0.0/8"]),
                want("b", both(), &[]),
            ],
        );
        let (report, events) = run(&plan, &fake, opts()).await;
        let mut got = outcomes(&report);
        got.sort();
        assert_eq!(
            got,
            ids(&[
                ("eu-west-1/a/endpoint.1", Failed),
                ("eu-west-1/a/endpoint.2", Skipped),
                ("eu-west-1/b/endpoint.1", Done),
                ("eu-west-1/sg-a/https_ingress", Done),
            ])
        );
        let failed = report.step("eu-west-1/a/endpoint.1").unwrap();
        // Update ids depend on which cluster called first.
        assert_eq!(
            failed.message.replace(|c: char| c.is_ascii_digit(), "N"),
            "update `upd-N` ended `Failed`: ClusterUnreachable: the control plane could not be reached"
        );
        let skipped = report.step("eu-west-1/a/endpoint.2").unwrap();
        assert_eq!(
            skipped.blocked_by.as_deref(),
            Some("eu-west-1/a/endpoint.1")
        );
        assert_eq!(skipped.message, "skipped: `eu-west-1/a/endpoint.1` failed");
        // What changed: b's update and a's rules; a's failed update is no change.
        let changed: Vec<&str> = report
            .changes
            .iter()
            .map(|c| match c {
                Change::EndpointUpdated { step_id, .. }
                | Change::VpcAttributeEnabled { step_id, .. }
                | Change::HttpsIngressAdded { step_id, .. } => step_id.as_str(),
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            changed,
            vec!["eu-west-1/b/endpoint.1", "eu-west-1/sg-a/https_ingress"]
        );
        let by_cluster: Vec<(&str, ClusterOutcome, Option<&str>)> = report
            .clusters
            .iter()
            .map(|c| (c.key.name.as_str(), c.outcome, c.step_id.as_deref()))
            .collect();
        assert_eq!(
            by_cluster,
            vec![
                ("a", ClusterOutcome::Failed, Some("eu-west-1/a/endpoint.1")),
                ("b", ClusterOutcome::Done, None),
            ]
        );
        assert!(!report.success());
        assert_eq!(fake.endpoint_of("a"), public(), "a stays reachable");
        assert_eq!(fake.violations(), Vec::<String>::new());
        check_event_stream(&report, &events);
    }

    #[tokio::test]
    async fn fail_fast_starts_no_new_step_after_a_failure() {
        let fake = FakeAws::new()
            .cluster("a", public())
            .cluster("b", public())
            .cluster("c", public());
        let plan = plan_for(
            &fake,
            vec![
                want("a", both(), &[]),
                want("b", both(), &[]),
                want("c", both(), &[]),
            ],
        );
        for (fail_fast, expected) in [
            (true, [Failed, NotStarted, NotStarted]),
            (false, [Failed, Done, Done]),
        ] {
            let fake = FakeAws::new()
                .cluster("a", public())
                .cluster("b", public())
                .cluster("c", public());
            fake.edit("a", |c| c.fail_updates = Some(("E".into(), "boom".into())));
            let (report, events) = run(
                &plan,
                &fake,
                // One update at a time, so `b` and `c` are still waiting
                // for their turn when `a` fails.
                ApplyOptions {
                    parallelism: 1,
                    max_updates: 1,
                    fail_fast,
                    ..opts()
                },
            )
            .await;
            let got: Vec<StepOutcome> = report.steps.iter().map(|s| s.outcome).collect();
            assert_eq!(got, expected, "fail_fast {fail_fast}");
            if fail_fast {
                assert_eq!(
                    report.stopped_after.as_deref(),
                    Some("eu-west-1/a/endpoint.1")
                );
                assert_eq!(
                    report.steps[1].message,
                    "not started: `--fail-fast` stopped the apply after `eu-west-1/a/endpoint.1`"
                );
                assert_eq!(fake.calls_of("UpdateClusterConfig").len(), 1);
            }
            check_event_stream(&report, &events);
        }
    }

    #[tokio::test]
    async fn steps_re_read_before_calling() {
        enum Twist {
            /// Someone made the change after the plan.
            AlreadyDone,
            /// AWS started an update of its own after the plan.
            AwsUpdate,
            /// AWS started one between the re-read and the call.
            InUseRace,
            /// An update was running when the plan was made (a wait step).
            PlannedWait,
        }
        // (twist, outcome of endpoint.1, UpdateClusterConfig calls, waited-for id)
        let cases = [
            (Twist::AlreadyDone, AlreadyConverged, 0, None),
            (Twist::AwsUpdate, Done, 1, Some("aws-1")),
            (Twist::InUseRace, Done, 2, Some("aws-race-a")),
            (Twist::PlannedWait, Done, 1, Some("aws-1")),
        ];
        for (twist, outcome, calls, waited) in cases {
            let fake = FakeAws::new().cluster("a", public());
            if let Twist::PlannedWait = twist {
                fake.aws_update("a", "aws-1", Duration::from_millis(40));
            }
            let plan = plan_for(&fake, vec![want("a", both(), &[])]);
            match twist {
                Twist::AlreadyDone => fake.edit("a", |c| c.endpoint = both()),
                Twist::AwsUpdate => fake.aws_update("a", "aws-1", Duration::from_millis(40)),
                Twist::InUseRace => fake.edit("a", |c| {
                    c.race_next_update = Some(Duration::from_millis(40))
                }),
                Twist::PlannedWait => {}
            }
            let (report, events) = run(&plan, &fake, opts()).await;
            let step = report.step("eu-west-1/a/endpoint.1").unwrap();
            assert_eq!(step.outcome, outcome, "{}", step.message);
            let update_calls = fake.calls_of("UpdateClusterConfig");
            assert_eq!(update_calls.len(), calls);
            assert_eq!(fake.violations(), Vec::<String>::new());
            assert!(report.success());
            if let Some(id) = waited {
                assert!(events.iter().any(|e| matches!(
                    e,
                    Event::WaitingForUpdate { update_id: Some(u), .. } if u == id
                )));
                // The successful call came after the awaited update ended.
                let theirs = fake
                    .updates_of("a")
                    .into_iter()
                    .find(|u| u.id == id)
                    .unwrap();
                let last = update_calls.last().unwrap();
                assert!(last.at >= fake.at(theirs.ends_at()), "called during `{id}`");
            }
            if let Twist::PlannedWait = twist {
                assert_eq!(report.step("eu-west-1/a/wait.aws-1").unwrap().outcome, Done);
            }
            check_event_stream(&report, &events);
        }
    }

    #[tokio::test]
    async fn a_lockout_risk_is_refused_without_allow_lockout() {
        for (allow_lockout, second) in [(false, Refused), (true, Done)] {
            let fake = FakeAws::new().cluster("a", public());
            let plan = plan_for(&fake, vec![want("a", private(), &[])]);
            assert!(plan.steps[1].lockout_risk);
            let (report, events) = run(
                &plan,
                &fake,
                ApplyOptions {
                    allow_lockout,
                    ..opts()
                },
            )
            .await;
            assert_eq!(
                outcomes(&report),
                ids(&[
                    ("eu-west-1/a/endpoint.1", Done),
                    ("eu-west-1/a/endpoint.2", second)
                ])
            );
            assert_eq!(report.success(), allow_lockout);
            if !allow_lockout {
                assert!(report.steps[1].message.contains("`--allow-lockout`"));
                assert_eq!(fake.endpoint_of("a"), both());
                assert_eq!(report.clusters[0].outcome, ClusterOutcome::Refused);
            }
            check_event_stream(&report, &events);
        }
    }

    #[tokio::test]
    async fn a_slow_update_times_out_and_skips_its_dependents() {
        let fake = FakeAws::new().cluster("a", public());
        fake.edit("a", |c| c.update_duration = Duration::from_secs(60));
        let plan = plan_for(&fake, vec![want("a", private(), &["10.0.0.0/8"])]);
        let mut o = opts();
        o.wait.timeout = Duration::from_millis(100);
        let began = std::time::Instant::now();
        let (report, events) = run(&plan, &fake, o).await;
        assert!(began.elapsed() < Duration::from_secs(2));
        let step = report.step("eu-west-1/a/endpoint.1").unwrap();
        assert_eq!(step.outcome, TimedOut);
        let message = step.message.replace(|c: char| c.is_ascii_digit(), "N");
        assert_eq!(
            message,
            "update `upd-N` of `a` did not finish within NNNms; the update may still finish in AWS: running `eksgate apply` again resumes, waiting for the running update instead of starting another"
        );
        assert_eq!(
            report.step("eu-west-1/a/endpoint.2").unwrap().outcome,
            Skipped
        );
        assert_eq!(
            report
                .updates_still_running
                .iter()
                .map(|u| u.update_id.as_str())
                .collect::<Vec<_>>(),
            vec!["upd-1"]
        );
        assert_eq!(report.clusters[0].outcome, ClusterOutcome::TimedOut);
        check_event_stream(&report, &events);
    }

    #[tokio::test]
    async fn cancel_stops_waits_and_starts_nothing_new() {
        let fake = FakeAws::new().cluster("a", public()).cluster("b", public());
        fake.edit("a", |c| c.update_duration = Duration::from_secs(60));
        let plan = plan_for(&fake, vec![want("a", both(), &[]), want("b", both(), &[])]);
        let began = std::time::Instant::now();
        let (report, events) = run_with(
            &plan,
            &fake,
            ApplyOptions {
                max_updates: 1,
                ..opts()
            },
            Some(Duration::from_millis(60)),
        )
        .await;
        assert!(began.elapsed() < Duration::from_secs(2));
        assert_eq!(
            outcomes(&report),
            ids(&[
                ("eu-west-1/a/endpoint.1", Cancelled),
                ("eu-west-1/b/endpoint.1", NotStarted)
            ])
        );
        assert!(report.interrupted);
        let running = vec![RunningUpdate {
            step_id: "eu-west-1/a/endpoint.1".into(),
            account: None,
            region: REGION.into(),
            cluster: "a".into(),
            update_id: "upd-1".into(),
        }];
        assert_eq!(report.updates_still_running, running);
        assert!(events.iter().any(|e| matches!(
            e,
            Event::Interrupted { running_updates, .. } if *running_updates == running
        )));
        assert_eq!(
            report.steps[0].message,
            "interrupted while waiting for update `upd-1`, which goes on in AWS"
        );
        assert_eq!(
            fake.calls_of("UpdateClusterConfig").len(),
            1,
            "b never called"
        );
        assert!(!report.success());
        check_event_stream(&report, &events);
    }

    #[tokio::test]
    async fn cancel_while_waiting_for_an_aws_update_makes_no_call() {
        let fake = FakeAws::new().cluster("a", public());
        let plan = plan_for(&fake, vec![want("a", both(), &[])]);
        fake.aws_update("a", "aws-1", Duration::from_secs(60));
        let (report, events) =
            run_with(&plan, &fake, opts(), Some(Duration::from_millis(40))).await;
        assert_eq!(
            outcomes(&report),
            ids(&[("eu-west-1/a/endpoint.1", Cancelled)])
        );
        let still: Vec<&str> = report
            .updates_still_running
            .iter()
            .map(|u| u.update_id.as_str())
            .collect();
        assert_eq!(still, vec!["aws-1"]);
        assert!(fake.calls_of("UpdateClusterConfig").is_empty());
        check_event_stream(&report, &events);
    }

    #[tokio::test]
    async fn polls_stay_few_for_a_short_update() {
        // D = 100ms, first interval D/10: about 10 polls.
        let fake = FakeAws::new().cluster("a", public());
        fake.edit("a", |c| c.update_duration = Duration::from_millis(100));
        let plan = plan_for(&fake, vec![want("a", both(), &[])]);
        let mut o = opts();
        o.wait.first_interval = Duration::from_millis(10);
        let (report, _) = run(&plan, &fake, o).await;
        assert!(report.success());
        let polls = fake.calls_of("DescribeUpdate").len();
        assert!((5..=11).contains(&polls), "{polls} polls");
    }

    fn in_wave(mut d: DesiredCluster, wave: u32) -> DesiredCluster {
        d.wave = wave;
        d
    }

    /// When each cluster's first update started and its last one ended.
    fn span(fake: &FakeAws, name: &str) -> (std::time::Instant, std::time::Instant) {
        let ups: Vec<_> = fake
            .updates_of(name)
            .into_iter()
            .filter(|u| u.ours)
            .collect();
        assert!(!ups.is_empty(), "{name} was updated");
        let first = ups.iter().map(|u| u.started).min().unwrap();
        let last = ups.iter().map(|u| u.ends_at()).max().unwrap();
        (first, last)
    }

    fn waves_seen(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::WaveStarted {
                    wave,
                    canary,
                    clusters,
                    ..
                } => Some(format!(
                    "started {wave}{} {}",
                    if *canary { " canary" } else { "" },
                    clusters
                        .iter()
                        .map(|k| k.name.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                )),
                Event::WaveHeld {
                    wave,
                    after_canary,
                    clusters,
                    ..
                } => Some(format!(
                    "held {wave}{} {}",
                    if *after_canary { " rest" } else { "" },
                    clusters
                        .iter()
                        .map(|k| k.name.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                )),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_wave_starts_only_once_the_one_before_finished() {
        // `c` and `a` share a VPC whose DNS support is off; `c` is in the
        // later wave, so the shared step runs in wave 0, with `a`.
        let fake = FakeAws::new()
            .cluster_in("a", public(), "vpc-shared")
            .cluster("b", public())
            .cluster_in("c", public(), "vpc-shared")
            .vpc("vpc-shared", false, true);
        fake.edit("b", |c| c.update_duration = Duration::from_millis(120));
        let plan = plan_for(
            &fake,
            vec![
                in_wave(want("c", both(), &[]), 1),
                want("a", both(), &[]),
                want("b", both(), &[]),
            ],
        );
        let shared = plan.step("eu-west-1/vpc-shared/dns_support").unwrap();
        assert_eq!(shared.wave, 0);
        let (report, events) = run(&plan, &fake, opts()).await;
        assert!(report.success(), "{report:?}");
        let (c_first, _) = span(&fake, "c");
        for earlier in ["a", "b"] {
            let (_, last) = span(&fake, earlier);
            assert!(last <= c_first, "`c` started before `{earlier}` ended");
        }
        // Wave 0 itself ran its clusters concurrently.
        assert!(span(&fake, "a").0 < span(&fake, "b").1);
        assert_eq!(waves_seen(&events), vec!["started 0 a,b", "started 1 c"]);
        assert!(report.held.is_empty());
        assert_eq!(fake.violations(), Vec::<String>::new());
        check_event_stream(&report, &events);
    }

    #[tokio::test]
    async fn too_many_failures_hold_the_later_waves() {
        // (max_failures, outcome of c and d)
        for (max_failures, later) in [(0, NotStarted), (1, Done)] {
            let fake = FakeAws::new()
                .cluster("a", public())
                .cluster("b", public())
                .cluster("c", public())
                .cluster("d", public());
            fake.edit("a", |c| c.fail_updates = Some(("E".into(), "boom".into())));
            let plan = plan_for(
                &fake,
                vec![
                    want("a", both(), &[]),
                    want("b", both(), &[]),
                    in_wave(want("c", both(), &[]), 1),
                    in_wave(want("d", both(), &[]), 2),
                ],
            );
            let (report, events) = run(
                &plan,
                &fake,
                ApplyOptions {
                    max_failures,
                    ..opts()
                },
            )
            .await;
            assert_eq!(
                outcomes(&report),
                ids(&[
                    ("eu-west-1/a/endpoint.1", Failed),
                    ("eu-west-1/b/endpoint.1", Done),
                    ("eu-west-1/c/endpoint.1", later),
                    ("eu-west-1/d/endpoint.1", later),
                ]),
                "max_failures {max_failures}"
            );
            if later == NotStarted {
                let reason = "1 cluster failed in wave 0, more than `--max-failures 0`";
                assert_eq!(
                    report.step("eu-west-1/c/endpoint.1").unwrap().message,
                    format!("not started: wave 1 held: {reason}")
                );
                assert_eq!(
                    report.step("eu-west-1/d/endpoint.1").unwrap().message,
                    format!("not started: wave 2 held: {reason}")
                );
                assert_eq!(
                    waves_seen(&events),
                    vec!["started 0 a,b", "held 1 c", "held 2 d"]
                );
                assert_eq!(report.held.len(), 2);
                assert_eq!(report.held[0].reason, reason);
                let c = &report.clusters[2];
                assert_eq!(c.outcome, ClusterOutcome::NotStarted);
                for name in ["c", "d"] {
                    assert!(fake.updates_of(name).is_empty(), "{name} was not touched");
                }
            } else {
                assert_eq!(
                    waves_seen(&events),
                    vec!["started 0 a,b", "started 1 c", "started 2 d"]
                );
            }
            assert!(!report.success());
            check_event_stream(&report, &events);
        }
    }

    #[tokio::test]
    async fn canaries_go_first_and_their_failure_holds_the_rest() {
        for canary_fails in [false, true] {
            let fake = FakeAws::new()
                .cluster("a", public())
                .cluster("b", public())
                .cluster("c", public())
                .cluster("d", public());
            if canary_fails {
                fake.edit("a", |c| c.fail_updates = Some(("E".into(), "boom".into())));
            }
            let plan = plan_for(
                &fake,
                vec![
                    want("a", both(), &[]),
                    want("b", both(), &[]),
                    want("c", both(), &[]),
                    in_wave(want("d", both(), &[]), 1),
                ],
            );
            let (report, events) = run(
                &plan,
                &fake,
                ApplyOptions {
                    canary: 1,
                    ..opts()
                },
            )
            .await;
            if canary_fails {
                assert_eq!(
                    waves_seen(&events),
                    vec!["started 0 canary a", "held 0 rest b,c", "held 1 d"]
                );
                assert_eq!(
                    report.step("eu-west-1/b/endpoint.1").unwrap().message,
                    "not started: the rest of wave 0 after its canaries held: 1 cluster failed among the canaries of wave 0, more than `--max-failures 0`"
                );
                assert_eq!(fake.calls_of("UpdateClusterConfig").len(), 1);
            } else {
                assert!(report.success());
                assert_eq!(
                    waves_seen(&events),
                    vec!["started 0 canary a", "started 0 b,c", "started 1 d"]
                );
                let (_, canary_end) = span(&fake, "a");
                for rest in ["b", "c", "d"] {
                    assert!(
                        canary_end <= span(&fake, rest).0,
                        "{rest} before the canary"
                    );
                }
            }
            check_event_stream(&report, &events);
        }
    }

    #[tokio::test]
    async fn one_wave_sends_no_wave_events_and_canaries_of_the_whole_wave_are_none() {
        let fake = FakeAws::new().cluster("a", public()).cluster("b", public());
        let plan = plan_for(&fake, vec![want("a", both(), &[]), want("b", both(), &[])]);
        for canary in [0, 2, 5] {
            let fake = FakeAws::new().cluster("a", public()).cluster("b", public());
            let (report, events) = run(&plan, &fake, ApplyOptions { canary, ..opts() }).await;
            assert!(report.success());
            assert_eq!(waves_seen(&events), Vec::<String>::new(), "canary {canary}");
        }
        let _ = fake;
    }

    #[tokio::test]
    async fn an_invalid_plan_runs_nothing() {
        let fake = FakeAws::new().cluster("a", public());
        let mut plan = plan_for(&fake, vec![want("a", both(), &[])]);
        plan.steps[0].depends_on.push("nowhere".into());
        let (report, events) = run(&plan, &fake, opts()).await;
        assert!(!report.success());
        assert!(report.invalid_plan.is_some());
        assert_eq!(report.steps[0].outcome, NotStarted);
        assert!(fake.calls().is_empty());
        check_event_stream(&report, &events);
    }
}
