//! A rehearsal (`eksgate apply --rehearse`) as a pull-request comment
//! (`--format markdown`): the predicted report's verdict, the predicted
//! timeline as a Mermaid Gantt chart, the predicted end state, and the
//! copy's calls and the report as plain text under `<details>`. Also the
//! Gantt section of the text output, for pasting into any Mermaid renderer.
//!
//! Pure formatting over what the rehearsal returned; the command decides
//! where it goes.

use std::fmt::Write as _;

use super::mermaid;
use crate::plan::Plan;
use crate::rehearse::{render_end_state, render_timeline, EndState, TimelineEntry};
use crate::report::ApplyReport;

/// What a rehearsal predicts, borrowed for rendering.
pub struct Rehearsed<'a> {
    /// The plan made from the real account.
    pub plan: &'a Plan,
    pub timeline: &'a [TimelineEntry],
    pub end_state: &'a [EndState],
    pub report: &'a ApplyReport,
    /// How long each endpoint update took in the copy, as people write it.
    pub update_duration: String,
    /// How the copy planned otherwise, when it did.
    pub divergence: Option<&'a str>,
}

/// The rehearsal as GitHub-flavoured markdown.
pub fn render_markdown(r: &Rehearsed<'_>) -> String {
    let mut out = String::new();
    out.push_str("## eksgate rehearsal\n\n");
    let _ = writeln!(
        out,
        "Nothing in AWS changed: the apply ran against a copy of the live state, each endpoint update taking {}.\n",
        r.update_duration
    );
    let _ = writeln!(
        out,
        "**Predicted: {}**\n",
        super::report::summary_line(r.report)
    );
    if let Some(d) = r.divergence {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> {d}; the rehearsal ran the copy's plan\n"
        );
    }
    if !r.timeline.is_empty() {
        out.push_str("### Predicted timeline\n\n```mermaid\n");
        out.push_str(&mermaid::gantt(r.plan, r.timeline, Some(r.report)));
        out.push_str("```\n\n");
    }
    out.push_str("### Predicted end state\n\n");
    out.push_str("| Cluster | Matches | Settings and note |\n|---|---|---|\n");
    for e in r.end_state {
        let line = render_end_state(std::slice::from_ref(e));
        let rest = line
            .trim()
            .strip_prefix(&format!("{}: ", e.cluster))
            .unwrap_or(line.trim())
            .to_string();
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            e.cluster,
            if e.matches { "yes" } else { "**no**" },
            rest.replace('|', "\\|")
        );
    }
    out.push('\n');
    out.push_str("<details>\n<summary>The copy's calls and updates</summary>\n\n```text\n");
    out.push_str(&render_timeline(r.timeline));
    out.push_str("```\n\n</details>\n\n");
    out.push_str("<details>\n<summary>Predicted report</summary>\n\n```text\n");
    out.push_str(&super::report::render_report(r.report, false));
    out.push_str("```\n\n</details>\n");
    out
}

/// The Gantt chart for the text output: a heading, then the Mermaid source
/// as it is, to paste into any Mermaid renderer. Empty with no timeline.
pub fn gantt_text(plan: &Plan, timeline: &[TimelineEntry], report: &ApplyReport) -> String {
    if timeline.is_empty() {
        return String::new();
    }
    format!(
        "\nPredicted timeline as a Mermaid Gantt chart (`--format markdown` puts it in a comment GitHub renders):\n{}",
        mermaid::gantt(plan, timeline, Some(report))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::StepCounts;
    use crate::view::mermaid::tests::typical_timeline;
    use crate::view::plan::tests::typical;

    /// A report of the typical plan whose last step failed.
    fn report() -> ApplyReport {
        ApplyReport {
            steps: Vec::new(),
            clusters: Vec::new(),
            changes: Vec::new(),
            updates_still_running: Vec::new(),
            counts: StepCounts {
                done: 5,
                failed: 1,
                ..StepCounts::default()
            },
            interrupted: false,
            stopped_after: None,
            held: Vec::new(),
            invalid_plan: None,
            elapsed_ms: 4130,
        }
    }

    #[test]
    fn a_rehearsal_as_a_comment() {
        let plan = typical();
        let end = crate::rehearse::end_state(&plan);
        let timeline = typical_timeline();
        let report = report();
        let md = render_markdown(&Rehearsed {
            plan: &plan,
            timeline: &timeline,
            end_state: &end,
            report: &report,
            update_duration: "2s".into(),
            divergence: None,
        });
        // One fenced mermaid block, closed, holding the chart.
        assert_eq!(md.matches("```mermaid\ngantt\n").count(), 1, "{md}");
        assert_eq!(md.matches("```").count() % 2, 0, "{md}");
        insta::assert_snapshot!(md);
        assert_eq!(gantt_text(&plan, &[], &report), "");
        assert!(gantt_text(&plan, &timeline, &report).contains("\ngantt\n"));
    }
}
