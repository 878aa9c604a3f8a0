//! The walker: runs a plan's steps in dependency order, a step once all its
//! dependencies succeeded, independent steps at once within `--parallelism`
//! slots (per account and region) and `--max-updates` permits, free slots
//! going first to clusters under way and then round-robin over (account,
//! region). A failed step skips its dependents and nothing else. It knows nothing of what a step
//! does (`steps`) or of waves (`phases`, which it asks when to go on).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{watch, SemaphorePermit};

use super::phases::Phases;
use super::steps::{run_step, StepResult};
use super::{CallSlot, Ctx};
use crate::event::{Event, RunningUpdate, StepCounts, StepOutcome};
use crate::plan::{Plan, Step, StepKind};
use crate::provider::Provider;
use crate::report::{
    cluster_reports, ApplyReport, Change, FailedWhere, HeldWave, StepReport, Stop,
};
use crate::view::describe;
use crate::wait::cancelled;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Finished(StepOutcome),
}

/// The walker's bookkeeping.
pub(super) struct Walk {
    state: Vec<State>,
    reports: Vec<Option<StepReport>>,
    blocked_by: Vec<Option<String>>,
    changes: Vec<Change>,
    still_running: Vec<RunningUpdate>,
    interrupted: bool,
    stopped_after: Option<String>,
    pub(super) invalid_plan: Option<String>,
    held: Vec<HeldWave>,
}

impl Walk {
    pub(super) fn new(plan: &Plan) -> Self {
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

    pub(super) fn finish<P>(
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
            kind: step.kind(),
            account: step.account.clone(),
            region: step.region.clone(),
            cluster: step.cluster.clone(),
            description: describe::step(step),
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

    pub(super) fn into_report(self, plan: &Plan, elapsed_ms: u64) -> ApplyReport {
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
                        kind: s.kind(),
                        account: s.account.clone(),
                        region: s.region.clone(),
                        cluster: s.cluster.clone(),
                        description: describe::step(s),
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

#[allow(clippy::too_many_arguments)]
pub(super) async fn walk<P: Provider>(
    ctx: &Ctx<'_, P>,
    plan: &Plan,
    order: &[usize],
    deps: &[Vec<usize>],
    phases: &Phases,
    w: &mut Walk,
    mut cancel: watch::Receiver<bool>,
) {
    let mut running: Running<'_> = FuturesUnordered::new();
    // A `--max-updates` permit the walker got while waiting for one, for
    // the next ready endpoint step.
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
                w.finish(ctx, plan, i, StepOutcome::Refused, lockout_message(step));
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
                // An authentication-mode update is an update in flight too.
                .filter(|_| {
                    matches!(
                        step.kind(),
                        StepKind::EksEndpoint | StepKind::EksAccessConfig
                    )
                });
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
            let scope_slots = ctx.calls.of(step);
            let Some(permit) = scope_slots.clone().try_acquire_owned().ok() else {
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
                kind: step.kind(),
                account: step.account.clone(),
                region: step.region.clone(),
                cluster: step.cluster.clone(),
                description: describe::step(step),
            });
            let rx = cancel.clone();
            let slot = CallSlot {
                slots: &ctx.calls,
                scope: scope_slots,
                held: Some(permit),
            };
            running.push(Box::pin(async move {
                let result = run_step(ctx, step, slot, rx).await;
                drop(update_permit);
                (i, result)
            }));
        }
        // A permit no step took goes back.
        spare_update = None;
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
            // A step waiting for an update let its slot go: look again.
            () = ctx.calls.freed.notified(), if want_slot && !w.stopped() => {}
            permit = async { ctx.updates.as_ref()?.acquire().await.ok() },
                if want_update && !w.stopped() => spare_update = permit,
        }
    }
    // Whatever is still pending never started: the apply was stopped.
    let message = match (&w.stopped_after, w.interrupted) {
        (_, true) => "not started: the apply was interrupted".to_string(),
        (Some(id), false) => describe::stop(&Stop::FailFast { after: id.clone() }),
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

fn note_interrupt<P>(ctx: &Ctx<'_, P>, w: &mut Walk) {
    w.interrupted = true;
    let running_updates: Vec<RunningUpdate> = ctx.watching().values().cloned().collect();
    ctx.emit(Event::Interrupted {
        elapsed_ms: ctx.ms(),
        running_updates,
    });
}

fn lockout_message(step: &crate::plan::Step) -> String {
    if step.kind() == crate::plan::StepKind::SgHttpsRevoke {
        return describe::stop(&Stop::LockoutRevoke);
    }
    describe::stop(&Stop::Lockout)
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

/// Why the phases after `current` are held, worded by the view.
fn hold_reason(
    plan: &Plan,
    phases: &Phases,
    failed: &[usize],
    current: usize,
    max: usize,
) -> String {
    let cur = &phases.list[current];
    let place = if cur.canary {
        FailedWhere::Canaries { wave: cur.wave }
    } else {
        let waves: BTreeSet<u32> = failed.iter().map(|&k| plan.clusters[k].wave).collect();
        FailedWhere::Waves(waves.into_iter().collect())
    };
    describe::stop(&Stop::Held {
        failed: failed.len(),
        place,
        max_failures: max,
    })
}

/// Holds every phase from `from` on: one `wave_held` each, and their steps
/// end `not_started` with the reason.
pub(super) fn hold<P>(
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
