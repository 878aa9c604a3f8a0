//! Waves and canaries: the stretches of a rollout (each wave in turn, the
//! first wave's canaries before the rest of it) and which stretch each step
//! and cluster belongs to. The walker asks, and decides whether the next
//! stretch opens; this module runs and decides nothing.

use std::collections::{BTreeMap, BTreeSet};

use super::Ctx;
use crate::desired::ClusterKey;
use crate::event::Event;
use crate::plan::Plan;

/// One stretch of the rollout: a wave, or with `--canary` the canaries of
/// the first wave and then the rest of it. A phase opens only once every
/// step of the phases before it finished.
#[derive(Debug)]
pub(super) struct Phase {
    pub(super) wave: u32,
    pub(super) canary: bool,
    /// Follows the canary phase of the same wave.
    pub(super) after_canary: bool,
    /// Clusters (indices into `plan.clusters`) that finish in this phase.
    pub(super) clusters: Vec<usize>,
}

#[derive(Debug)]
pub(super) struct Phases {
    pub(super) list: Vec<Phase>,
    /// Per step, the phase it runs in.
    pub(super) of_step: Vec<usize>,
    /// Per cluster of the plan, the phase its last step runs in (`None` for
    /// clusters without steps).
    pub(super) of_cluster: Vec<Option<usize>>,
}

impl Phases {
    /// Waves from the steps' `wave`; the canaries are the first `canary`
    /// clusters of the first wave in the plan's order, with every step they
    /// need (shared ones included). Canaries that would be the whole wave are
    /// no canaries.
    pub(super) fn new(plan: &Plan, canary: usize) -> Phases {
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

    pub(super) fn keys(&self, plan: &Plan, phase: usize) -> Vec<ClusterKey> {
        self.list[phase]
            .clusters
            .iter()
            .map(|&k| plan.clusters[k].key.clone())
            .collect()
    }

    pub(super) fn started<P>(&self, ctx: &Ctx<'_, P>, plan: &Plan, phase: usize) {
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
