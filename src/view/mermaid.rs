//! Mermaid diagrams for markdown that GitHub renders: the plan's step graph
//! as a `flowchart` (in a collapsible `<details>` below the plan's table).
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
use crate::plan::{Plan, Step, StepKind};
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
            let cluster = pic.clusters[c];
            if let Some(codes) = pic.blocked.get(&c) {
                let _ = writeln!(
                    out,
                    "{pad}b{}[\"{}<br/>blocked: {}\"]",
                    c + 1,
                    escape(&cluster.key.to_string()),
                    escape(&codes.join(", "))
                );
                classes.push(format!("class b{} blocked", c + 1));
                continue;
            }
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
            let cluster = pic.clusters[c];
            if let Some(codes) = pic.blocked.get(&c) {
                let _ = writeln!(
                    out,
                    "    b{}[\"{}<br/>blocked: {}\"]",
                    c + 1,
                    escape(&cluster.key.to_string()),
                    escape(&codes.join(", "))
                );
                classes.push(format!("class b{} blocked", c + 1));
                continue;
            }
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
        StepKind::SgHttpsIngress => step.security_group_id.as_deref(),
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
            n(&[StepKind::SgHttpsIngress]),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::plan::tests::{fleet, typical, waved};

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
}
