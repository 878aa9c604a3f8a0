//! Mermaid diagrams for markdown that GitHub renders: the plan's step graph
//! as a `flowchart` (in a collapsible `<details>` below the plan's table) and
//! a rehearsal's predicted timeline as a `gantt`.
//!
//! The flowchart draws the same graph as [`super::dot`]: steps by number,
//! boxes per cluster and wave, edges labelled by reason kind, blocked
//! clusters greyed. Past [`GROUP_ABOVE`] steps it draws one node per cluster
//! (or per shared VPC or security group) with counts, so a fleet-wide plan
//! stays readable and under GitHub's size limits.
//!
//! Node ids are generated (`s1`, `c1`, `w0`, `b1`), never taken from names;
//! every label is quoted and escaped with Mermaid's entity codes. Pure
//! formatting over plan data.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::picture::{short_change, EdgeReason, Owner, Picture};
use crate::event::StepOutcome;
use crate::plan::{Plan, Step, StepKind};
use crate::rehearse::TimelineEntry;
use crate::report::ApplyReport;
use crate::text::plural;

/// Above this many steps the flowchart draws clusters, not steps.
pub const GROUP_ABOVE: usize = 60;

/// Mermaid refuses a diagram over 50,000 characters (its default
/// `maxTextSize`, which GitHub keeps): a grouped chart longer than this is
/// drawn by wave instead.
pub const MAX_CHARS: usize = 40_000;

/// How much the flowchart folds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// A node per step.
    Steps,
    /// A node per cluster and per shared VPC or security group.
    Clusters,
    /// A node per wave.
    Waves,
}

const CLASSES: &str = "  classDef blocked fill:#eeeeee,stroke:#999999,color:#666666,stroke-dasharray:4 3\n  classDef risk stroke:#cc0000,stroke-width:2px\n";

/// The step graph as a collapsible section holding a fenced `mermaid`
/// block; empty when the plan has no steps.
pub fn flowchart_details(plan: &Plan) -> String {
    if plan.steps.is_empty() {
        return String::new();
    }
    let (source, grouping) = flowchart(plan);
    let steps = plural(plan.steps.len(), "step", "steps");
    let summary = match grouping {
        Grouping::Steps => format!("Step graph ({steps})"),
        Grouping::Clusters => format!("Step graph ({steps}, grouped by cluster)"),
        Grouping::Waves => format!("Step graph ({steps}, grouped by wave)"),
    };
    format!("<details>\n<summary>{summary}</summary>\n\n```mermaid\n{source}```\n\n</details>\n")
}

/// The step graph as Mermaid `flowchart` source (no fence), and how much
/// it was folded to stay readable and under Mermaid's size limit.
pub fn flowchart(plan: &Plan) -> (String, Grouping) {
    let pic = Picture::of(plan);
    if pic.steps.len() <= GROUP_ABOVE {
        return (detailed(&pic), Grouping::Steps);
    }
    let source = grouped(&pic);
    if source.len() <= MAX_CHARS {
        return (source, Grouping::Clusters);
    }
    (by_wave(&pic), Grouping::Waves)
}

fn detailed(pic: &Picture<'_>) -> String {
    let mut out = String::from("flowchart LR\n");
    let mut classes: Vec<String> = Vec::new();
    for w in pic.wave_list() {
        let depth = open_wave(&mut out, pic, w);
        let pad = "  ".repeat(depth);
        for i in pic.shared_in(w) {
            let _ = writeln!(out, "{pad}{}", step_node(pic, i, &mut classes));
        }
        for c in pic.clusters_in(w) {
            if blocked_node(&mut out, &pad, pic, c, &mut classes) {
                continue;
            }
            let cluster = pic.clusters[c];
            let _ = writeln!(
                out,
                "{pad}subgraph c{}[\"{}\"]",
                c + 1,
                escape(&cluster.key.to_string())
            );
            for i in pic.steps_of(c) {
                let _ = writeln!(out, "{pad}  {}", step_node(pic, i, &mut classes));
            }
            let _ = writeln!(out, "{pad}end");
        }
        if pic.waves {
            out.push_str("  end\n");
        }
    }
    for e in &pic.edges {
        let _ = writeln!(
            out,
            "  s{} -->|\"{}\"| s{}",
            e.from + 1,
            escape(e.reason.label()),
            e.to + 1
        );
    }
    order_waves(&mut out, pic);
    out.push_str(CLASSES);
    for c in classes {
        let _ = writeln!(out, "  {c}");
    }
    out
}

/// Invisible links from each wave's box to the next: without them Mermaid
/// may lay later waves out before earlier ones.
fn order_waves(out: &mut String, pic: &Picture<'_>) {
    if pic.waves {
        for pair in pic.wave_list().windows(2) {
            let _ = writeln!(out, "  w{} ~~~ w{}", pair[0], pair[1]);
        }
    }
}

/// Opens the box of wave `w` when the plan has waves; the depth inside.
fn open_wave(out: &mut String, pic: &Picture<'_>, w: u32) -> usize {
    if pic.waves {
        let _ = writeln!(out, "  subgraph w{w}[\"wave {w}\"]");
        2
    } else {
        1
    }
}

/// Writes the node of cluster `c` when it is blocked (its codes, greyed),
/// and says whether it was: a blocked cluster has no steps to draw.
fn blocked_node(
    out: &mut String,
    pad: &str,
    pic: &Picture<'_>,
    c: usize,
    classes: &mut Vec<String>,
) -> bool {
    let Some(codes) = pic.blocked.get(&c) else {
        return false;
    };
    let _ = writeln!(
        out,
        "{pad}b{}[\"{}<br/>blocked: {}\"]",
        c + 1,
        escape(&pic.clusters[c].key.to_string()),
        escape(&codes.join(", "))
    );
    classes.push(format!("class b{} blocked", c + 1));
    true
}

fn step_node(pic: &Picture<'_>, i: usize, classes: &mut Vec<String>) -> String {
    let step = pic.steps[i];
    let mut label = format!(
        "{}. {}<br/>{}<br/>{}",
        i + 1,
        escape(&step.id),
        step.kind().as_str(),
        escape(&short_change(step))
    );
    if step.lockout_risk {
        label.push_str("<br/>lockout risk");
        classes.push(format!("class s{} risk", i + 1));
    }
    format!("s{}[\"{label}\"]", i + 1)
}

/// One node per cluster in a box per wave (a box "clusters" without
/// waves), and one per shared VPC or security group outside the boxes. A
/// shared node has one edge per wave box it serves, labelled with the reason
/// kinds and how many of that wave's clusters wait for it, rather than one
/// edge per cluster.
fn grouped(pic: &Picture<'_>) -> String {
    // The shared groups by name, numbered in order of their first step.
    let mut shared: BTreeMap<String, (usize, Vec<usize>)> = BTreeMap::new();
    for i in 0..pic.steps.len() {
        if pic.owner[i] == Owner::Shared {
            let n = shared.len();
            let name = shared_name(pic.steps[i]);
            shared.entry(name).or_insert((n, Vec::new())).1.push(i);
        }
    }
    let shared_id = |i: usize| {
        shared
            .get(&shared_name(pic.steps[i]))
            .map(|s| s.0 + 1)
            .unwrap_or(0)
    };
    let mut out = String::from("flowchart LR\n");
    let mut classes: Vec<String> = Vec::new();
    let mut nodes: Vec<(usize, String)> = shared
        .iter()
        .map(|(name, (n, steps))| {
            let steps: Vec<&Step> = steps.iter().map(|i| pic.steps[*i]).collect();
            (
                *n,
                format!("  r{}[\"{}<br/>{}\"]", n + 1, escape(name), counts(&steps)),
            )
        })
        .collect();
    nodes.sort();
    for (_, line) in nodes {
        let _ = writeln!(out, "{line}");
    }
    for w in pic.wave_list() {
        let title = if pic.waves {
            format!("wave {w}")
        } else {
            "clusters".to_string()
        };
        // Unlinked nodes in a box go in one column this way (Mermaid's
        // layout turns the box's direction).
        let _ = writeln!(out, "  subgraph w{w}[\"{title}\"]\n    direction LR");
        for c in pic.clusters_in(w) {
            if blocked_node(&mut out, "    ", pic, c, &mut classes) {
                continue;
            }
            let cluster = pic.clusters[c];
            let steps: Vec<&Step> = pic.steps_of(c).iter().map(|i| pic.steps[*i]).collect();
            let _ = writeln!(
                out,
                "    c{}[\"{}<br/>{}\"]",
                c + 1,
                escape(&cluster.key.to_string()),
                counts(&steps)
            );
            if steps.iter().any(|s| s.lockout_risk) {
                classes.push(format!("class c{} risk", c + 1));
            }
        }
        out.push_str("  end\n");
    }
    // From each shared group to each wave box: the reason kinds, and the
    // clusters of that wave that wait for it.
    type Reach = (BTreeSet<EdgeReason>, BTreeSet<usize>);
    let mut edges: BTreeMap<(usize, u32), Reach> = BTreeMap::new();
    for e in &pic.edges {
        let (Owner::Shared, Owner::Cluster(c)) = (pic.owner[e.from], pic.owner[e.to]) else {
            continue;
        };
        let entry = edges
            .entry((shared_id(e.from), pic.clusters[c].wave))
            .or_default();
        entry.0.insert(e.reason);
        entry.1.insert(c);
    }
    for ((r, w), (reasons, clusters)) in &edges {
        let labels: Vec<&str> = reasons.iter().map(|r| r.label()).collect();
        let _ = writeln!(
            out,
            "  r{r} -->|\"{}, {}\"| w{w}",
            escape(&labels.join(", ")),
            plural(clusters.len(), "cluster", "clusters")
        );
    }
    for pair in pic.wave_list().windows(2) {
        let _ = writeln!(out, "  w{} ~~~ w{}", pair[0], pair[1]);
    }
    out.push_str(CLASSES);
    for c in classes {
        let _ = writeln!(out, "  {c}");
    }
    out
}

/// One node per wave, with its clusters and steps counted, chained in
/// rollout order: for fleets too large to draw cluster by cluster.
fn by_wave(pic: &Picture<'_>) -> String {
    let mut out = String::from("flowchart LR\n");
    let waves = pic.wave_list();
    for w in &waves {
        let clusters = pic.clusters_in(*w);
        let blocked = clusters
            .iter()
            .filter(|c| pic.blocked.contains_key(c))
            .count();
        let steps: Vec<&Step> = pic.steps.iter().filter(|s| s.wave == *w).copied().collect();
        let mut label = format!(
            "wave {w}<br/>{}",
            plural(clusters.len(), "cluster", "clusters")
        );
        if blocked > 0 {
            let _ = write!(label, " ({blocked} blocked)");
        }
        if !steps.is_empty() {
            let _ = write!(label, "<br/>{}", counts(&steps));
        }
        let _ = writeln!(out, "  w{w}[\"{label}\"]");
        if blocked == clusters.len() && steps.is_empty() {
            let _ = writeln!(out, "  class w{w} blocked");
        }
    }
    for pair in waves.windows(2) {
        let _ = writeln!(out, "  w{} -->|\"next wave\"| w{}", pair[0], pair[1]);
    }
    out.push_str(CLASSES);
    out
}

/// The shared thing a step acts on: `REGION/VPC` or `REGION/GROUP`.
fn shared_name(step: &Step) -> String {
    let thing = match step.kind() {
        StepKind::SgHttpsIngress | StepKind::SgHttpsRevoke => step.security_group_id.as_deref(),
        _ => step.vpc_id.as_deref(),
    };
    let prefix = match &step.account {
        Some(a) => format!("{a}/{}", step.region),
        None => step.region.clone(),
    };
    format!("{prefix}/{}", thing.unwrap_or("?"))
}

/// `3 steps: 2 endpoint updates, 1 wait`.
fn counts(steps: &[&Step]) -> String {
    let n = |k: &[StepKind]| steps.iter().filter(|s| k.contains(&s.kind())).count();
    let mut parts = Vec::new();
    for (count, one, many) in [
        (
            n(&[StepKind::VpcDnsSupport, StepKind::VpcDnsHostnames]),
            "VPC change",
            "VPC changes",
        ),
        (
            n(&[StepKind::SgHttpsIngress, StepKind::SgHttpsRevoke]),
            "security group change",
            "security group changes",
        ),
        (n(&[StepKind::WaitUpdate]), "wait", "waits"),
        (
            n(&[StepKind::EksEndpoint]),
            "endpoint update",
            "endpoint updates",
        ),
    ] {
        if count > 0 {
            parts.push(plural(count, one, many));
        }
    }
    format!(
        "{}: {}",
        plural(steps.len(), "step", "steps"),
        parts.join(", ")
    )
}

/// Text inside a quoted Mermaid label: the characters Mermaid or HTML would
/// read as syntax become entity codes (`#quot;`, `#35;`...), so a name can
/// never close the label or start markup.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '`' => out.push_str("#96;"),
            '|' => out.push_str("#124;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// One bar of the Gantt chart: when a step ran in the rehearsal's copy, in
/// milliseconds from the start of the apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bar {
    /// Index into the plan's ordered steps.
    pub step: usize,
    pub start_ms: u64,
    pub end_ms: u64,
    /// How the AWS update ended, for endpoint and wait steps.
    pub status: Option<String>,
}

/// The update type of an authentication mode change.
const ACCESS_CONFIG_UPDATE: &str = "AccessConfigUpdate";

/// Finds each step of `plan` in the rehearsal's `timeline`: a VPC or
/// security-group step at its change, an endpoint or authentication mode
/// step from its `UpdateClusterConfig` to its update's end, a wait from its
/// first poll to the end of the update it waited on. Steps that did not run
/// have no bar.
///
/// The timeline names clusters by region and name; the updates of one
/// cluster run one at a time, so its waits take its first updates to end
/// and its endpoint steps, chained, take the rest in order.
pub fn bars(plan: &Plan, timeline: &[TimelineEntry]) -> Vec<Bar> {
    let steps = plan.ordered_steps();
    let ended = |e: &TimelineEntry| {
        e.operation == "update"
            && matches!(e.outcome.as_str(), "Successful" | "Failed" | "Cancelled")
    };
    // An entry about this cluster: a call to it, or one of its updates.
    let about = |e: &TimelineEntry, region: &str, cluster: &str| {
        e.region == region && e.target.split(' ').next() == Some(cluster)
    };
    // The update a call started: its `InProgress` line follows the call at
    // the same instant. Authentication mode updates are their own steps'.
    let started_access = |i: usize, call: &TimelineEntry| {
        timeline[i + 1..]
            .iter()
            .take_while(|n| n.offset_ms == call.offset_ms)
            .find(|n| {
                n.operation == "update"
                    && n.outcome == "InProgress"
                    && about(n, &call.region, &call.target)
                    && n.update_type.as_deref() == Some(ACCESS_CONFIG_UPDATE)
            })
    };
    // Per cluster: the times its endpoint calls were accepted, and the ends
    // of its updates, in order; and its authentication mode updates (when
    // started, and the target of their lines).
    let mut calls: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
    let mut ends: BTreeMap<(&str, &str), Vec<&TimelineEntry>> = BTreeMap::new();
    let mut access: BTreeMap<(&str, &str), Vec<(u64, &str)>> = BTreeMap::new();
    for (i, e) in timeline.iter().enumerate() {
        if e.operation == "UpdateClusterConfig" && e.outcome == "ok" {
            let key = (e.region.as_str(), e.target.as_str());
            match started_access(i, e) {
                Some(update) => access
                    .entry(key)
                    .or_default()
                    .push((e.offset_ms, update.target.as_str())),
                None => calls.entry(key).or_default().push(e.offset_ms),
            }
        }
    }
    let access_update = |e: &TimelineEntry| {
        access
            .values()
            .flatten()
            .any(|(_, target)| *target == e.target)
    };
    for e in timeline {
        if ended(e) && !access_update(e) {
            let name = e.target.split(' ').next().unwrap_or("");
            ends.entry((e.region.as_str(), name)).or_default().push(e);
        }
    }
    let mut used_access: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut used_calls: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut used_ends: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let region = step.region.as_str();
        let bar = match step.kind() {
            StepKind::VpcDnsSupport | StepKind::VpcDnsHostnames => {
                let vpc = step.vpc_id.as_deref().unwrap_or("");
                let attr = if step.kind() == StepKind::VpcDnsSupport {
                    "`enableDnsSupport`"
                } else {
                    "`enableDnsHostnames`"
                };
                timeline
                    .iter()
                    .find(|e| {
                        e.operation == "vpc attribute"
                            && e.region == region
                            && e.target == vpc
                            && e.outcome.starts_with(attr)
                    })
                    .map(|e| (e.offset_ms, e.offset_ms, None))
            }
            StepKind::SgHttpsIngress => {
                let group = step.security_group_id.as_deref().unwrap_or("");
                timeline
                    .iter()
                    .find(|e| {
                        (e.operation == "ingress" || e.operation == "AuthorizeSecurityGroupIngress")
                            && e.region == region
                            && e.target == group
                    })
                    .map(|e| (e.offset_ms, e.offset_ms, None))
            }
            StepKind::SgHttpsRevoke => {
                let group = step.security_group_id.as_deref().unwrap_or("");
                timeline
                    .iter()
                    .find(|e| {
                        e.operation == "RevokeSecurityGroupIngress"
                            && e.region == region
                            && e.target == group
                    })
                    .map(|e| (e.offset_ms, e.offset_ms, None))
            }
            StepKind::WaitUpdate => {
                let cluster = step.cluster.as_deref().unwrap_or("");
                let key = (region, cluster);
                let first_call = calls.get(&key).and_then(|c| c.first()).copied();
                let n = used_ends.entry(key).or_insert(0);
                let end = ends
                    .get(&key)
                    .and_then(|v| v.get(*n))
                    .filter(|e| first_call.is_none_or(|c| e.offset_ms <= c));
                let start = timeline
                    .iter()
                    .find(|e| about(e, region, cluster))
                    .map(|e| e.offset_ms);
                match (start, end) {
                    (Some(s), Some(e)) => {
                        *n += 1;
                        Some((s.min(e.offset_ms), e.offset_ms, Some(e.outcome.clone())))
                    }
                    // Waited until `ACTIVE` with no update listed: until the
                    // endpoint call it held back.
                    (Some(s), None) => first_call.map(|c| (s, c.max(s), None)),
                    _ => None,
                }
            }
            // From its call to the end of the update it started.
            StepKind::EksAccessConfig => {
                let cluster = step.cluster.as_deref().unwrap_or("");
                let key = (region, cluster);
                let k = used_access.entry(key).or_insert(0);
                match access.get(&key).and_then(|a| a.get(*k)).copied() {
                    Some((start, target)) => {
                        *k += 1;
                        let end = timeline.iter().find(|e| {
                            ended(e)
                                && e.region == region
                                && e.target == target
                                && e.offset_ms >= start
                        });
                        match end {
                            Some(e) => Some((start, e.offset_ms, Some(e.outcome.clone()))),
                            None => Some((start, start, None)),
                        }
                    }
                    None => None,
                }
            }
            StepKind::EksEndpoint => {
                let cluster = step.cluster.as_deref().unwrap_or("");
                let key = (region, cluster);
                let k = used_calls.entry(key).or_insert(0);
                match calls.get(&key).and_then(|c| c.get(*k)).copied() {
                    Some(start) => {
                        *k += 1;
                        let n = used_ends.entry(key).or_insert(0);
                        let list = ends.get(&key).map(Vec::as_slice).unwrap_or_default();
                        // Skip ends before this call (waits not planned).
                        while list.get(*n).is_some_and(|e| e.offset_ms < start) {
                            *n += 1;
                        }
                        match list.get(*n) {
                            Some(e) => {
                                *n += 1;
                                Some((start, e.offset_ms, Some(e.outcome.clone())))
                            }
                            None => Some((start, start, None)),
                        }
                    }
                    None => None,
                }
            }
        };
        if let Some((start_ms, end_ms, status)) = bar {
            out.push(Bar {
                step: i,
                start_ms,
                end_ms,
                status,
            });
        }
    }
    out
}

/// The rehearsal's predicted timeline as Mermaid `gantt` source (no fence):
/// one bar per step that ran, a section per wave, endpoint and
/// authentication mode updates and waits as bars as long as the update took, the instant VPC and
/// security-group calls as milestones. `report` marks the steps that did
/// not end `done`.
pub fn gantt(plan: &Plan, timeline: &[TimelineEntry], report: Option<&ApplyReport>) -> String {
    let steps = plan.ordered_steps();
    let bars = bars(plan, timeline);
    let waves = super::order::has_waves(plan);
    let mut out = String::from("gantt\n");
    out.push_str("  title Predicted timeline (time since the apply started)\n");
    out.push_str("  dateFormat x\n");
    out.push_str("  axisFormat %M:%S\n");
    let span = bars.iter().map(|b| b.end_ms).max().unwrap_or(0);
    let _ = writeln!(out, "  tickInterval {}", tick_interval(span));
    let wave_list: BTreeSet<u32> = bars.iter().map(|b| steps[b.step].wave).collect();
    for w in wave_list {
        if waves {
            let _ = writeln!(out, "  section wave {w}");
        } else {
            out.push_str("  section steps\n");
        }
        for b in bars.iter().filter(|b| steps[b.step].wave == w) {
            let step = steps[b.step];
            let mut tags: Vec<&str> = Vec::new();
            let failed = b.status.as_deref().is_some_and(|s| s != "Successful")
                || report.and_then(|r| r.step(&step.id)).is_some_and(|s| {
                    !matches!(s.outcome, StepOutcome::Done | StepOutcome::AlreadyConverged)
                });
            if failed {
                tags.push("crit");
            }
            let instant = matches!(
                step.kind(),
                StepKind::VpcDnsSupport
                    | StepKind::VpcDnsHostnames
                    | StepKind::SgHttpsIngress
                    | StepKind::SgHttpsRevoke
            );
            if instant {
                tags.push("milestone");
            }
            let mut name = format!("{}. {}", b.step + 1, step.id);
            if !instant {
                let ms = b.end_ms - b.start_ms;
                let _ = write!(name, " ({}.{}s)", ms / 1000, (ms % 1000) / 100);
            }
            tags.push("");
            let tags = tags.join(", ");
            let _ = writeln!(
                out,
                "  {} :{tags}s{}, {}, {}",
                task_name(&name),
                b.step + 1,
                b.start_ms,
                b.end_ms.max(b.start_ms)
            );
        }
    }
    let ran: BTreeSet<usize> = bars.iter().map(|b| b.step).collect();
    for (i, step) in steps.iter().enumerate() {
        if !ran.contains(&i) {
            let _ = writeln!(out, "  %% did not run: {}. {}", i + 1, step.id);
        }
    }
    out
}

/// A tick interval that puts at most about a dozen ticks on a chart `span_ms`
/// long (Mermaid's default puts several ticks on the same second).
fn tick_interval(span_ms: u64) -> &'static str {
    const TICKS: [(u64, &str); 10] = [
        (1_000, "1second"),
        (2_000, "2second"),
        (5_000, "5second"),
        (10_000, "10second"),
        (30_000, "30second"),
        (60_000, "1minute"),
        (120_000, "2minute"),
        (300_000, "5minute"),
        (600_000, "10minute"),
        (1_800_000, "30minute"),
    ];
    TICKS
        .iter()
        .find(|(ms, _)| span_ms <= ms * 12)
        .map(|(_, t)| *t)
        .unwrap_or("1hour")
}

/// A Gantt task's name ends at `:` and cannot hold `#` or `;`.
fn task_name(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ':' | ';' | '#' => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::view::plan::tests::{fleet, moving_mode, typical, waved};

    /// What GitHub needs of a flowchart: ids it accepts, every label quoted
    /// and free of characters that end it.
    fn check_flowchart(src: &str) {
        assert!(src.starts_with("flowchart LR\n"), "{src}");
        let reserved = ["end", "graph", "subgraph", "flowchart", "class", "style"];
        for line in src.lines().skip(1) {
            let t = line.trim();
            if t == "end"
                || t.starts_with("classDef ")
                || t.starts_with("class ")
                || t.starts_with("direction ")
            {
                continue;
            }
            let id: String = t
                .trim_start_matches("subgraph ")
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                !id.is_empty() && id.chars().next().unwrap().is_ascii_alphabetic(),
                "bad id in {t}"
            );
            assert!(!reserved.contains(&id.as_str()), "reserved id in {t}");
            // Every label is one quoted string with no quote inside.
            for part in t.split("[\"").skip(1).chain(t.split("|\"").skip(1)) {
                let inner = part.split('"').next().unwrap();
                assert!(
                    !inner.contains(['<', '>', '|', '`']) || inner.contains("<br/>"),
                    "{t}"
                );
                assert!(!inner.replace("<br/>", "").contains(['<', '>']), "{t}");
            }
            assert_eq!(t.matches('"').count() % 2, 0, "unbalanced quotes in {t}");
        }
    }

    #[test]
    fn a_typical_plan_as_a_flowchart() {
        let (src, grouping) = flowchart(&typical());
        assert_eq!(grouping, Grouping::Steps);
        check_flowchart(&src);
        insta::assert_snapshot!(src);
    }

    #[test]
    fn a_plan_with_waves_as_a_flowchart() {
        let (src, _) = flowchart(&waved());
        check_flowchart(&src);
        insta::assert_snapshot!(src);
    }

    #[test]
    fn a_large_plan_is_grouped_by_cluster() {
        let plan = fleet(40);
        assert!(plan.steps.len() > GROUP_ABOVE);
        let (src, grouping) = flowchart(&plan);
        assert_eq!(grouping, Grouping::Clusters);
        check_flowchart(&src);
        // One node per cluster and shared thing, not per step.
        assert!(!src.contains("s1["), "{src}");
        assert!(
            src.contains("c1[\"eu-west-1/c000<br/>2 steps: 2 endpoint updates\"]"),
            "{src}"
        );
        insta::assert_snapshot!(src);
    }

    #[test]
    fn a_fleet_too_large_for_mermaid_is_drawn_by_wave() {
        let plan = fleet(1000);
        let (src, grouping) = flowchart(&plan);
        assert_eq!(grouping, Grouping::Waves);
        check_flowchart(&src);
        assert!(src.len() < MAX_CHARS);
        insta::assert_snapshot!(src);
        assert!(flowchart_details(&plan)
            .contains("<summary>Step graph (2002 steps, grouped by wave)</summary>"));
    }

    #[test]
    fn the_details_block_holds_a_fenced_mermaid_block() {
        let md = flowchart_details(&typical());
        assert!(
            md.starts_with(
                "<details>\n<summary>Step graph (6 steps)</summary>\n\n```mermaid\nflowchart LR\n"
            ),
            "{md}"
        );
        assert!(md.ends_with("```\n\n</details>\n"), "{md}");
        assert_eq!(md.matches("```").count(), 2);
        assert_eq!(flowchart_details(&fleet(0)), "");
    }

    #[test]
    fn labels_cannot_break_out() {
        assert_eq!(
            escape(r#"a"b <i>#1 | `x` & y"#),
            "a#quot;b #lt;i#gt;#35;1 #124; #96;x#96; #amp; y"
        );
    }

    pub(crate) fn entry(
        offset_ms: u64,
        operation: &str,
        target: &str,
        outcome: &str,
    ) -> TimelineEntry {
        TimelineEntry {
            offset_ms,
            operation: operation.into(),
            region: "eu-west-1".into(),
            target: target.into(),
            outcome: outcome.into(),
            count: 1,
            update_type: None,
        }
    }

    /// The typical plan's timeline as the copy would record it.
    pub(crate) fn typical_timeline() -> Vec<TimelineEntry> {
        vec![
            entry(0, "ModifyVpcAttribute", "vpc-0a1b", "ok"),
            entry(
                0,
                "vpc attribute",
                "vpc-0a1b",
                "`enableDnsHostnames` = true",
            ),
            entry(3, "DescribeUpdate", "orders", "ok"),
            entry(4, "AuthorizeSecurityGroupIngress", "sg-0c1d", "ok"),
            entry(
                4,
                "ingress",
                "sg-0c1d",
                "TCP 443 from [\"sg-0bastion\", \"10.20.0.0/16\"]",
            ),
            entry(6, "UpdateClusterConfig", "payments", "ok"),
            entry(2006, "update", "payments 4f1c0d2a", "Successful"),
            entry(2100, "update", "orders 9e0b1c2d", "Successful"),
            entry(2110, "UpdateClusterConfig", "orders", "ok"),
            entry(2130, "UpdateClusterConfig", "payments", "ok"),
            entry(4110, "update", "orders 5a6b7c8d", "Successful"),
            entry(4130, "update", "payments 1b2c3d4e", "Failed"),
        ]
    }

    #[test]
    fn bars_follow_the_timeline() {
        let plan = typical();
        let bars = bars(&plan, &typical_timeline());
        let got: Vec<(usize, u64, u64, Option<&str>)> = bars
            .iter()
            .map(|b| (b.step + 1, b.start_ms, b.end_ms, b.status.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 0, 0, None),
                (2, 3, 2100, Some("Successful")),
                (3, 2110, 4110, Some("Successful")),
                (4, 4, 4, None),
                (5, 6, 2006, Some("Successful")),
                (6, 2130, 4130, Some("Failed")),
            ]
        );
    }

    #[test]
    fn a_rehearsal_as_a_gantt_chart() {
        let src = gantt(&typical(), &typical_timeline(), None);
        assert!(src.starts_with("gantt\n"));
        for line in src.lines().filter(|l| l.contains(" :")) {
            let name = line.split(" :").next().unwrap();
            assert!(!name.contains([':', ';', '#']), "{line}");
        }
        insta::assert_snapshot!(src);
    }

    #[test]
    fn a_plan_that_moves_the_authentication_mode_as_a_flowchart() {
        let (src, _) = flowchart(&moving_mode());
        check_flowchart(&src);
        // Says why the mode goes first, not the generic "waits for".
        assert!(
            src.contains("|\"access entries readable before public off\"|"),
            "{src}"
        );
        assert!(!src.contains("|\"waits for\"|"), "{src}");
        insta::assert_snapshot!(src);
    }

    /// The copy's history of [`moving_mode`]: each cluster's authentication
    /// mode update, then its endpoint updates.
    fn moving_mode_timeline() -> Vec<TimelineEntry> {
        use crate::sim::{Event as H, HistoryEntry};
        let call = |t: f64, cluster: &str| HistoryEntry {
            t_ms: t,
            event: H::Request {
                service: "eks".into(),
                operation: "UpdateClusterConfig".into(),
                account: "111122223333".into(),
                principal: String::new(),
                region: "eu-west-1".into(),
                target: Some(cluster.into()),
                outcome: "ok".into(),
                http_status: 200,
            },
        };
        let update = |t: f64, cluster: &str, id: &str, kind: &str, status: &str| HistoryEntry {
            t_ms: t,
            event: H::UpdateStatus {
                account: "111122223333".into(),
                region: "eu-west-1".into(),
                cluster: cluster.into(),
                update_id: format!("{id}-0000-4000-a000-000000000000"),
                update_type: kind.into(),
                status: status.into(),
            },
        };
        let (acc, ep) = ("AccessConfigUpdate", "EndpointAccessUpdate");
        let history = vec![
            update(10.0, "payments", "a0000001", acc, "InProgress"),
            call(10.0, "payments"),
            update(12.0, "orders", "a0000002", acc, "InProgress"),
            call(12.0, "orders"),
            update(1010.0, "payments", "a0000001", acc, "Successful"),
            update(1012.0, "orders", "a0000002", acc, "Successful"),
            update(1020.0, "payments", "e0000001", ep, "InProgress"),
            call(1020.0, "payments"),
            update(1022.0, "orders", "e0000002", ep, "InProgress"),
            call(1022.0, "orders"),
            update(3020.0, "payments", "e0000001", ep, "Successful"),
            update(3022.0, "orders", "e0000002", ep, "Successful"),
            update(3030.0, "payments", "e0000003", ep, "InProgress"),
            call(3030.0, "payments"),
            update(5030.0, "payments", "e0000003", ep, "Successful"),
        ];
        crate::rehearse::timeline(&history, 0)
    }

    #[test]
    fn the_authentication_mode_update_has_its_bar() {
        let plan = moving_mode();
        let steps = plan.ordered_steps();
        let bars = bars(&plan, &moving_mode_timeline());
        let got: Vec<(&str, u64, u64, Option<&str>)> = bars
            .iter()
            .map(|b| {
                let id = steps[b.step].id.as_str();
                (id, b.start_ms, b.end_ms, b.status.as_deref())
            })
            .collect();
        let want = [
            ("eu-west-1/orders/access_config", 12, 1012),
            ("eu-west-1/orders/endpoint.1", 1022, 3022),
            ("eu-west-1/payments/access_config", 10, 1010),
            ("eu-west-1/payments/endpoint.1", 1020, 3020),
            ("eu-west-1/payments/endpoint.2", 3030, 5030),
        ];
        let mut got = got;
        got.sort();
        // Offsets count from the first entry, at 10 ms.
        assert_eq!(
            got,
            want.iter()
                .map(|(id, s, e)| (*id, s - 10, e - 10, Some("Successful")))
                .collect::<Vec<_>>()
        );
        let src = gantt(&plan, &moving_mode_timeline(), None);
        assert!(!src.contains("did not run"), "{src}");
        insta::assert_snapshot!(src);
    }

    #[test]
    fn ticks_stay_about_a_dozen() {
        for (span, tick) in [
            (0, "1second"),
            (4_130, "1second"),
            (12_001, "2second"),
            (300_000, "30second"),
            (3_600_000, "5minute"),
            (100_000_000, "1hour"),
        ] {
            assert_eq!(tick_interval(span), tick, "{span}");
        }
    }

    #[test]
    fn steps_that_did_not_run_have_no_bar() {
        let src = gantt(&waved(), &[], None);
        assert!(!src.contains(" :"), "{src}");
        assert!(src.contains("%% did not run: 1. "), "{src}");
    }
}
