//! `eksgate plan --format dot`: the step graph in Graphviz DOT, for `dot
//! -Tsvg` and for diffing. One node per step (its number, id, kind and change
//! in a few words), edges labelled with the kind of reason they exist, a box
//! per cluster inside a box per wave, and each blocked cluster as one greyed
//! node carrying the codes of the findings that block it.
//!
//! Written by hand rather than with petgraph's `Dot`: that writer has no
//! subgraphs, so it cannot draw the cluster and wave boxes, and its node
//! names are petgraph's indices. Same plan, same bytes: everything is in the
//! plan's apply order. Pure formatting; nothing here reads or decides.

use std::fmt::Write as _;

use super::describe;
use super::picture::Picture;
use crate::plan::Plan;

/// The plan's step graph as a DOT `digraph`.
pub fn render_dot(plan: &Plan) -> String {
    let pic = Picture::of(plan);
    let mut out = String::new();
    out.push_str("digraph eksgate_plan {\n");
    let _ = writeln!(
        out,
        "  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=12, labelloc=t, label={}];",
        quote(&describe::summary(&plan.summary()))
    );
    out.push_str(
        "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", fontname=\"Helvetica\", fontsize=10];\n",
    );
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9, color=\"#555555\"];\n");
    for w in pic.wave_list() {
        let depth = if pic.waves {
            let _ = writeln!(out, "  subgraph cluster_wave_{w} {{");
            let _ = writeln!(
                out,
                "    label={}; style=\"dashed\"; color=\"#7777aa\";",
                quote(&format!("wave {w}"))
            );
            2
        } else {
            1
        };
        let pad = "  ".repeat(depth);
        for i in pic.shared_in(w) {
            let _ = writeln!(out, "{pad}{}", step_node(&pic, i));
        }
        for c in pic.clusters_in(w) {
            let cluster = pic.clusters[c];
            if let Some(codes) = pic.blocked.get(&c) {
                let label = format!("{}\nblocked: {}", cluster.key, codes.join(", "));
                let _ = writeln!(
                    out,
                    "{pad}b{} [label={}, style=\"filled,dashed\", fillcolor=\"#eeeeee\", color=\"#999999\", fontcolor=\"#666666\"];",
                    c + 1,
                    quote(&label)
                );
                continue;
            }
            let _ = writeln!(out, "{pad}subgraph cluster_c{} {{", c + 1);
            let _ = writeln!(
                out,
                "{pad}  label={}; style=\"rounded\"; color=\"#888888\";",
                quote(&cluster.key.to_string())
            );
            for i in pic.steps_of(c) {
                let _ = writeln!(out, "{pad}  {}", step_node(&pic, i));
            }
            let _ = writeln!(out, "{pad}}}");
        }
        if pic.waves {
            out.push_str("  }\n");
        }
    }
    for e in &pic.edges {
        let _ = writeln!(
            out,
            "  s{} -> s{} [label={}];",
            e.from + 1,
            e.to + 1,
            quote(e.reason.label())
        );
    }
    out.push_str("}\n");
    out
}

fn step_node(pic: &Picture<'_>, i: usize) -> String {
    let step = pic.steps[i];
    let mut label = format!(
        "{}. {}\n{}\n{}",
        i + 1,
        step.id,
        step.kind().as_str(),
        super::picture::short_change(step)
    );
    let mut attrs = String::new();
    if step.lockout_risk {
        label.push_str("\nlockout risk");
        attrs.push_str(", color=\"#cc0000\", penwidth=2");
    }
    format!("s{} [label={}{attrs}];", i + 1, quote(&label))
}

/// A DOT double-quoted string: backslashes and quotes escaped, line breaks
/// as `\n` (centred lines).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::plan::tests::{moving_mode, typical, waved};

    #[test]
    fn dot_of_a_typical_plan() {
        insta::assert_snapshot!(render_dot(&typical()));
    }

    #[test]
    fn dot_of_a_plan_with_waves() {
        insta::assert_snapshot!(render_dot(&waved()));
    }

    #[test]
    fn dot_of_a_plan_that_moves_the_authentication_mode() {
        let dot = render_dot(&moving_mode());
        // Says why the mode goes first, not the generic "waits for".
        assert!(
            dot.contains("label=\"access entries readable before public off\""),
            "{dot}"
        );
        assert!(!dot.contains("\"waits for\""), "{dot}");
        insta::assert_snapshot!(dot);
    }

    #[test]
    fn same_plan_same_bytes() {
        let plan = typical();
        let back: Plan = serde_json::from_str(&serde_json::to_string(&plan).unwrap()).unwrap();
        assert_eq!(render_dot(&plan), render_dot(&back));
    }

    #[test]
    fn labels_are_quoted() {
        assert_eq!(quote(r#"a "b" \ c"#), r#""a \"b\" \\ c""#);
        assert_eq!(quote("one\ntwo"), r#""one\ntwo""#);
    }
}
