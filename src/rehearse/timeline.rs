//! The rehearsal's timeline: the copy's history (every call it answered and
//! every change of state) turned into lines a person can read, polls of one
//! update folded into one line with a count.
//!
//! Pure functions over the history; rendering returns text and prints
//! nothing.

use serde::Serialize;

use crate::sim::HistoryEntry;
use crate::text::{mode_name, string_list};

/// One line of the timeline: a call (runs of the same call folded into one,
/// with a count) or a change of state in the copy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// Milliseconds since the first entry.
    pub offset_ms: u64,
    /// `UpdateClusterConfig`, or for a state change `update`, `endpoint`...
    pub operation: String,
    pub region: String,
    pub target: String,
    /// `ok`, an error code, or the new state.
    pub outcome: String,
    /// How many identical calls in a row this line stands for.
    pub count: usize,
    /// For a change of an update's state: the update's type
    /// (`EndpointAccessUpdate`, `AccessConfigUpdate`...), so a picture can
    /// tell whose bar an update is. Not written out: the line shows the id.
    #[serde(skip)]
    pub update_type: Option<String>,
}

/// The copy's history from entry `from` on, as a timeline. Polls of an
/// update are folded: one line per run of the same call with the same
/// answer.
pub fn timeline(history: &[HistoryEntry], from: usize) -> Vec<TimelineEntry> {
    use crate::sim::Event as H;
    let mut entries: Vec<&HistoryEntry> = history.get(from..).unwrap_or_default().iter().collect();
    // The emulator records a call's state change just before the call's own
    // line, at the same instant: show the call first, then what it changed.
    entries.sort_by(|a, b| {
        let is_state = |e: &HistoryEntry| !matches!(e.event, H::Request { .. });
        a.t_ms
            .total_cmp(&b.t_ms)
            .then(is_state(a).cmp(&is_state(b)))
    });
    let start = entries.first().map(|e| e.t_ms).unwrap_or(0.0);
    let mut out: Vec<TimelineEntry> = Vec::new();
    for e in entries {
        let mut update_type = None;
        let (operation, region, target, outcome) = match &e.event {
            H::Request {
                operation,
                region,
                target,
                outcome,
                ..
            } => (
                operation.clone(),
                region.clone(),
                target.clone().unwrap_or_default(),
                outcome.clone(),
            ),
            H::UpdateStatus {
                region,
                cluster,
                update_id,
                update_type: kind,
                status,
                ..
            } => {
                update_type = Some(kind.clone());
                (
                    "update".to_string(),
                    region.clone(),
                    format!("{cluster} {}", short_id(update_id)),
                    status.clone(),
                )
            }
            H::ClusterStatus { .. } => continue,
            H::Endpoint {
                region,
                cluster,
                public,
                private,
                cidrs,
                ..
            } => {
                let mut now = mode_name(*public, *private).to_string();
                if *public {
                    now.push_str(&format!(", public CIDRs {}", string_list(cidrs)));
                }
                ("endpoint".to_string(), region.clone(), cluster.clone(), now)
            }
            H::VpcAttribute {
                region,
                vpc_id,
                attribute,
                value,
                ..
            } => (
                "vpc attribute".to_string(),
                region.clone(),
                vpc_id.clone(),
                format!("`{attribute}` = {value}"),
            ),
            H::SecurityGroupIngress {
                region,
                group_id,
                sources,
                ..
            } => (
                "ingress".to_string(),
                region.clone(),
                group_id.clone(),
                format!("TCP 443 from {}", string_list(sources)),
            ),
            H::SecurityGroupRevoke {
                region,
                group_id,
                rules,
                ..
            } => (
                "revoke".to_string(),
                region.clone(),
                group_id.clone(),
                format!(
                    "TCP 443 from {} revoked",
                    string_list(rules.iter().map(|r| &r.source))
                ),
            ),
        };
        if let Some(last) = out.last_mut() {
            if last.operation == operation
                && last.region == region
                && last.target == target
                && last.outcome == outcome
            {
                last.count += 1;
                continue;
            }
        }
        out.push(TimelineEntry {
            // Offsets are whole milliseconds; the fraction is noise.
            offset_ms: (e.t_ms - start).max(0.0) as u64,
            operation,
            region,
            target,
            outcome,
            count: 1,
            update_type,
        });
    }
    out
}

/// The first block of a uuid: enough to tell updates apart on a line.
fn short_id(id: &str) -> &str {
    id.split('-').next().unwrap_or(id)
}

/// The timeline as aligned text lines.
pub fn render_timeline(entries: &[TimelineEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        let op = if e.count > 1 {
            format!("{} ×{}", e.operation, e.count)
        } else {
            e.operation.clone()
        };
        let at = format!("+{}.{:03}s", e.offset_ms / 1000, e.offset_ms % 1000);
        let target = format!("{}/{}", e.region, e.target);
        out.push_str(&format!("  {at:>9}  {op:<30} {target:<40} {}\n", e.outcome));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::world::DEFAULT_ACCOUNT;

    #[test]
    fn polls_fold_into_one_line() {
        use crate::sim::Event as H;
        let req = |t: f64, op: &str, outcome: &str| HistoryEntry {
            t_ms: t,
            event: H::Request {
                service: "eks".into(),
                operation: op.into(),
                account: DEFAULT_ACCOUNT.into(),
                principal: String::new(),
                region: "us-east-1".into(),
                target: Some("payments".into()),
                outcome: outcome.into(),
                http_status: 200,
            },
        };
        let history = vec![
            req(5.0, "DescribeCluster", "ok"),
            req(10.0, "UpdateClusterConfig", "ok"),
            req(12.5, "DescribeUpdate", "ok"),
            req(200.0, "DescribeUpdate", "ok"),
            req(400.0, "DescribeUpdate", "ok"),
            HistoryEntry {
                t_ms: 2010.0,
                event: H::UpdateStatus {
                    account: DEFAULT_ACCOUNT.into(),
                    region: "us-east-1".into(),
                    cluster: "payments".into(),
                    update_id: "4f1c0d2a-0000-4000-a000-000000000000".into(),
                    update_type: "EndpointAccessUpdate".into(),
                    status: "Successful".into(),
                },
            },
        ];
        let text = render_timeline(&timeline(&history, 1));
        insta::assert_snapshot!(text, @r"
           +0.000s  UpdateClusterConfig            us-east-1/payments                       ok
           +0.002s  DescribeUpdate ×3              us-east-1/payments                       ok
           +2.000s  update                         us-east-1/payments 4f1c0d2a              Successful
        ");
    }
}
