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

mod phases;
mod steps;
mod walk;

use std::collections::BTreeMap;
use std::sync::Mutex;

use std::sync::Arc;

use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::channel::EventSender;
use crate::event::{ApplyCluster, Event, RunningUpdate, StepOutcome};
use crate::plan::Plan;
use crate::provider::Provider;
pub use crate::report::{ApplyReport, Change, ClusterOutcome, ClusterReport, HeldWave, StepReport};
use crate::wait::{self, WaitOptions};

use phases::Phases;
use walk::{walk, Walk};

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

/// How an apply runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyOptions {
    /// At most this many steps read or call AWS at once in each account and
    /// region (0 counts as 1), as AWS limits each on its own. A step waiting
    /// for an AWS update lets its slot go: the wait costs a poll now and
    /// then, not a call in flight.
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

/// Runs `plan` through `provider` and reports what happened. See the module
/// docs; `events` gets every [`Event`] (sending errors are ignored: a view
/// that went away does not stop the apply), `cancel` is the signal from
/// [`cancel_signal`].
pub async fn apply<P: Provider>(
    plan: &Plan,
    provider: &P,
    opts: &ApplyOptions,
    events: EventSender,
    cancel: watch::Receiver<bool>,
) -> ApplyReport {
    let ctx = Ctx {
        provider,
        opts,
        events,
        start: Instant::now(),
        watching: Mutex::new(BTreeMap::new()),
        learning: wait::RunLearning::default(),
        calls: Slots::new(opts.parallelism),
        updates: (opts.max_updates > 0).then(|| Semaphore::new(opts.max_updates)),
        access_checks: plan.access_checks.iter().map(|c| (&c.cluster, c)).collect(),
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
    pub(super) provider: &'a P,
    pub(super) opts: &'a ApplyOptions,
    pub(super) events: EventSender,
    pub(super) start: Instant,
    /// Updates steps are waiting on right now, by step id: what the
    /// `interrupted` event lists.
    pub(super) watching: Mutex<BTreeMap<String, RunningUpdate>>,
    /// What this run's waits learn about its updates' durations.
    pub(super) learning: wait::RunLearning,
    /// `--parallelism`: steps reading or calling, per account and region.
    pub(super) calls: Slots,
    /// `--max-updates`, when set: endpoint steps running.
    pub(super) updates: Option<Semaphore>,
    /// The principals each cluster must still let in when its public access
    /// goes off (checked again right before that call), by cluster: a scan
    /// of every cluster's for each public-off step made a fleet that names
    /// principals everywhere quadratic in its clusters.
    pub(super) access_checks:
        std::collections::HashMap<&'a crate::desired::ClusterKey, &'a crate::plan::AccessCheck>,
}

/// The `--parallelism` slots of each (account, region). A single limit for
/// the whole fleet left the second updates of a rollout queueing for slots
/// while other regions' rates went unused: in a 200-cluster apply over 4
/// regions the median time from seeing a first update end to re-reading the
/// cluster was 430 ms.
pub(super) struct Slots {
    per_scope: usize,
    scopes: Mutex<BTreeMap<ScopeKey, Arc<Semaphore>>>,
    /// Told when a waiting step lets its slot go, so the walker can start
    /// another step (a step that ends wakes the walker anyway).
    pub(super) freed: Notify,
}

/// An (account, region).
type ScopeKey = (Option<String>, String);

impl Slots {
    fn new(per_scope: usize) -> Self {
        Slots {
            per_scope: per_scope.max(1),
            scopes: Mutex::new(BTreeMap::new()),
            freed: Notify::new(),
        }
    }

    /// The slots of `step`'s account and region.
    pub(super) fn of(&self, step: &crate::plan::Step) -> Arc<Semaphore> {
        // Held only for a lookup, never across an await.
        let mut map = self
            .scopes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry((step.account.clone(), step.region.clone()))
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_scope)))
            .clone()
    }
}

/// A step's `--parallelism` slot: held while it reads and calls, let go
/// while it waits for an AWS update, so a long update does not keep other
/// clusters from starting theirs.
struct CallSlot<'a> {
    pub(super) slots: &'a Slots,
    /// The semaphore of the step's account and region.
    pub(super) scope: Arc<Semaphore>,
    pub(super) held: Option<OwnedSemaphorePermit>,
}

impl CallSlot<'_> {
    pub(super) fn release(&mut self) {
        if self.held.take().is_some() {
            // Stored when the walker is not waiting: it then looks once more.
            self.slots.freed.notify_one();
        }
    }

    pub(super) async fn hold(&mut self) {
        if self.held.is_none() {
            // The semaphore is never closed, so this always gets a permit.
            self.held = self.scope.clone().acquire_owned().await.ok();
        }
    }
}

impl<P> Ctx<'_, P> {
    pub(super) fn ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(super) fn emit(&self, event: Event) {
        // A closed channel means nobody watches; the apply goes on.
        let _ = self.events.send(event);
    }

    pub(super) fn watching(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, RunningUpdate>> {
        // The lock is never held across an await or a panic point, so a
        // poisoned lock can only follow a bug elsewhere; its data is intact.
        self.watching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
