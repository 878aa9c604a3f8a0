//! Whether a saved plan still holds (`apply --plan FILE`): the live state of
//! its clusters is read again and planned again, and the saved plan is
//! applied only if planning now gives the same steps, on the same live
//! facts, with the same findings. The first difference found is the reason
//! the whole plan is refused.
//!
//! Pure comparison of two plans: reading the live state is the caller's, and
//! so is the sentence the user reads around [`Staleness`].

use std::collections::HashMap;
use std::fmt;

use crate::desired::ClusterKey;
use crate::plan::{Finding, Plan, Step};

/// The first way in which a saved plan differs from planning now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Staleness {
    /// A saved step is no longer planned (its change happened already).
    NoLongerNeeded { step: String },
    /// The live facts a saved step was planned on are no longer true.
    LiveChanged { step: String },
    /// A saved step would now change something else, or wait for others.
    PlannedDifferently { step: String },
    /// Planning now needs a step the saved plan does not have.
    NowNeeded { step: String },
    /// What blocks the clusters is not what it was.
    FindingsChanged,
    /// What eksgate found about who can use this cluster's Kubernetes API
    /// (`plan::access`) is not what it was: an access entry came or went.
    AccessChanged { cluster: String },
}

impl fmt::Display for Staleness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Staleness::NoLongerNeeded { step } => write!(f, "step `{step}` is no longer needed"),
            Staleness::LiveChanged { step } => write!(
                f,
                "the live state of step `{step}` changed since it was planned"
            ),
            Staleness::PlannedDifferently { step } => {
                write!(f, "step `{step}` would now be planned differently")
            }
            Staleness::NowNeeded { step } => {
                write!(f, "step `{step}` is now needed but is not in the plan")
            }
            Staleness::FindingsChanged => {
                f.write_str("what blocks the clusters changed since the plan was made")
            }
            Staleness::AccessChanged { cluster } => write!(
                f,
                "who can use the Kubernetes API of `{cluster}` changed since the plan was made"
            ),
        }
    }
}

/// Why `saved` no longer matches `now` (what planning gives today), if it
/// does not. Steps and findings are looked up by id and by cluster, not
/// scanned for each one: a saved plan of 10,000 clusters has 20,000 steps.
pub fn staleness(saved: &Plan, now: &Plan) -> Option<Staleness> {
    // Access findings first: an access entry deleted after the plan blocks
    // the cluster, so its steps are gone too, but the entry is the cause,
    // and the finding names the cluster.
    fn access(p: &Plan) -> HashMap<&ClusterKey, Vec<&Finding>> {
        let mut by_cluster: HashMap<&ClusterKey, Vec<&Finding>> = HashMap::new();
        for f in &p.findings {
            if crate::plan::access::is_access_code(f.code) {
                by_cluster.entry(&f.cluster).or_default().push(f);
            }
        }
        by_cluster
    }
    let (saved_access, now_access) = (access(saved), access(now));
    for c in &saved.clusters {
        if saved_access.get(&c.key) != now_access.get(&c.key) {
            return Some(Staleness::AccessChanged {
                cluster: c.key.to_string(),
            });
        }
    }
    // The first step of each id, as `Plan::step` finds it.
    fn by_id(p: &Plan) -> HashMap<&str, &Step> {
        let mut by_id: HashMap<&str, &Step> = HashMap::with_capacity(p.steps.len());
        for s in &p.steps {
            by_id.entry(s.id.as_str()).or_insert(s);
        }
        by_id
    }
    let (saved_steps, now_steps) = (by_id(saved), by_id(now));
    for s in &saved.steps {
        let step = || s.id.clone();
        match now_steps.get(s.id.as_str()) {
            None => return Some(Staleness::NoLongerNeeded { step: step() }),
            Some(n) if n.fingerprint != s.fingerprint => {
                return Some(Staleness::LiveChanged { step: step() })
            }
            Some(n) if !n.same_change(s) || n.depends_on != s.depends_on => {
                return Some(Staleness::PlannedDifferently { step: step() })
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = now
        .steps
        .iter()
        .find(|n| !saved_steps.contains_key(n.id.as_str()))
    {
        return Some(Staleness::NowNeeded {
            step: extra.id.clone(),
        });
    }
    if now.findings != saved.findings {
        return Some(Staleness::FindingsChanged);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::fake;

    /// A cluster going private: an endpoint step, a wait and an ingress step.
    fn saved() -> Plan {
        let aws = fake::FakeAws::new().cluster("a", fake::public());
        let plan = fake::plan(
            &aws,
            vec![fake::want("a", fake::private(), &["10.0.0.0/8"])],
        );
        assert!(plan.steps.len() >= 2, "{:?}", plan.steps);
        plan
    }

    #[test]
    fn the_same_plan_holds() {
        assert_eq!(staleness(&saved(), &saved()), None);
    }

    #[test]
    fn each_difference_is_named() {
        let first = saved().steps[0].id.clone();
        let last = saved().steps.last().map(|s| s.id.clone()).unwrap();
        type Edit = fn(&mut Plan);
        let cases: [(&str, Edit, Staleness); 7] = [
            (
                "a step gone",
                |p| {
                    p.steps.remove(0);
                },
                Staleness::NoLongerNeeded {
                    step: first.clone(),
                },
            ),
            (
                "other live facts",
                |p| p.steps[0].fingerprint.push('x'),
                Staleness::LiveChanged {
                    step: first.clone(),
                },
            ),
            (
                "another change",
                |p| {
                    p.steps[0].action = crate::plan::Action::WaitUpdate {
                        update_id: Some("changed".into()),
                    }
                },
                Staleness::PlannedDifferently {
                    step: first.clone(),
                },
            ),
            (
                "other dependencies",
                |p| {
                    let last = p.steps.last_mut().unwrap();
                    last.depends_on.push("elsewhere".into());
                },
                Staleness::PlannedDifferently { step: last.clone() },
            ),
            (
                "a step more",
                |p| {
                    let mut extra = p.steps[0].clone();
                    extra.id.push_str(".extra");
                    p.steps.push(extra);
                },
                Staleness::NowNeeded {
                    step: format!("{first}.extra"),
                },
            ),
            (
                "a new finding",
                |p| {
                    p.findings.push(Finding {
                        cluster: p.clusters[0].key.clone(),
                        code: crate::plan::FindingCode::NotRead,
                        severity: crate::plan::Severity::Block,
                        message: "blocked".into(),
                        hint: None,
                    })
                },
                Staleness::FindingsChanged,
            ),
            (
                "an access entry gone",
                |p| {
                    p.findings.push(Finding {
                        cluster: p.clusters[0].key.clone(),
                        code: crate::plan::FindingCode::PrincipalWithoutAccessEntry,
                        severity: crate::plan::Severity::Block,
                        message: "no entry".into(),
                        hint: None,
                    })
                },
                Staleness::AccessChanged {
                    cluster: "eu-west-1/a".into(),
                },
            ),
        ];
        for (what, edit, want) in cases {
            let mut now = saved();
            edit(&mut now);
            assert_eq!(staleness(&saved(), &now), Some(want), "{what}");
        }
    }

    #[test]
    fn reasons_read_as_before() {
        let step = || "eu-west-1/a/endpoint.1".to_string();
        let cases = [
            (
                Staleness::NoLongerNeeded { step: step() },
                "step `eu-west-1/a/endpoint.1` is no longer needed",
            ),
            (
                Staleness::LiveChanged { step: step() },
                "the live state of step `eu-west-1/a/endpoint.1` changed since it was planned",
            ),
            (
                Staleness::PlannedDifferently { step: step() },
                "step `eu-west-1/a/endpoint.1` would now be planned differently",
            ),
            (
                Staleness::NowNeeded { step: step() },
                "step `eu-west-1/a/endpoint.1` is now needed but is not in the plan",
            ),
            (
                Staleness::FindingsChanged,
                "what blocks the clusters changed since the plan was made",
            ),
            (
                Staleness::AccessChanged {
                    cluster: "eu-west-1/a".into(),
                },
                "who can use the Kubernetes API of `eu-west-1/a` changed since the plan was made",
            ),
        ];
        for (s, want) in cases {
            assert_eq!(s.to_string(), want);
        }
    }
}
