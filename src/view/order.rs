//! The order every view shows a plan in: clusters by rollout wave, then
//! region, name and account; and whether the plan has waves at all (only
//! then are they shown).

use crate::plan::{ClusterPlan, Plan};

/// Whether the plan rolls out in more than one wave: only then do the views
/// show waves, so a plan whose clusters are all in wave 0 reads as before.
pub(crate) fn has_waves(plan: &Plan) -> bool {
    let mut waves = plan
        .clusters
        .iter()
        .map(|c| c.wave)
        .chain(plan.steps.iter().map(|s| s.wave));
    let first = waves.next();
    waves.any(|w| Some(w) != first) || first.is_some_and(|w| w != 0)
}

/// By wave (rollout order), then region, name and account.
pub(crate) fn sorted_clusters(plan: &Plan) -> Vec<&ClusterPlan> {
    let mut v: Vec<&ClusterPlan> = plan.clusters.iter().collect();
    v.sort_by(|a, b| {
        (a.wave, &a.key.region, &a.key.name, &a.key.account).cmp(&(
            b.wave,
            &b.key.region,
            &b.key.name,
            &b.key.account,
        ))
    });
    v
}
