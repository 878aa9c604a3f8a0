//! The rehearsal's predicted end state: per declared cluster, what the copy
//! holds after the apply and whether planning on it again finds nothing
//! left to do.
//!
//! Pure functions over a plan made on the copy; rendering returns text and
//! prints nothing.

use serde::Serialize;

use crate::plan::{ClusterSettings, Plan, PlanStatus, StepKind};
use crate::text::{mode_name, string_list};

/// One cluster as the rehearsal predicts it after the apply.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EndState {
    pub cluster: String,
    /// As read from the copy after the apply; `None` if it could not be read.
    pub settings: Option<ClusterSettings>,
    /// Planning again on the copy finds nothing to do.
    pub matches: bool,
    /// Why not, when it does not match.
    pub note: String,
}

/// Per declared cluster, the copy's settings after the apply and whether a
/// new plan on the copy has nothing left to do.
pub fn end_state(after: &Plan) -> Vec<EndState> {
    after
        .clusters
        .iter()
        .map(|c| {
            let (matches, note) = match c.status {
                PlanStatus::NoChanges => (true, "matches the manifest".to_string()),
                PlanStatus::Changes => {
                    let left = c.steps.iter().filter(|id| {
                        after
                            .step(id)
                            .is_some_and(|s| s.kind() != StepKind::WaitUpdate)
                    });
                    (
                        false,
                        format!(
                            "does not match the manifest: {} step(s) would remain",
                            left.count()
                        ),
                    )
                }
                PlanStatus::Blocked => {
                    let why: Vec<&str> = after
                        .blocking()
                        .filter(|f| f.cluster == c.key)
                        .map(|f| f.message.as_str())
                        .collect();
                    (false, format!("blocked: {}", why.join("; ")))
                }
            };
            EndState {
                cluster: c.key.to_string(),
                settings: c.live.clone(),
                matches,
                note,
            }
        })
        .collect()
}

/// `us-east-1/payments: private only, TCP 443 from ["10.20.0.0/16"]: matches the manifest`.
pub fn render_end_state(states: &[EndState]) -> String {
    let mut out = String::new();
    for s in states {
        let settings = match &s.settings {
            Some(c) => {
                let mut t = mode_name(c.public_access, c.private_access).to_string();
                if c.public_access {
                    if let Some(cidrs) = &c.public_access_cidrs {
                        t.push_str(&format!(", public CIDRs {}", string_list(cidrs)));
                    }
                }
                if c.private_access {
                    t.push_str(&format!(
                        ", TCP 443 from {}",
                        string_list(&c.private_access_from)
                    ));
                }
                t
            }
            None => "not read".to_string(),
        };
        out.push_str(&format!("  {}: {settings}: {}\n", s.cluster, s.note));
    }
    out
}
