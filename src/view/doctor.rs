//! The report of `eksgate doctor` as a table for people and as JSON for
//! CI. Formats the report it is given; it checks nothing.

use std::fmt::Write as _;

use crate::doctor::{Outcome, Report};
use crate::text::plural;
use crate::view::paint;

/// One row per check: what, where, and the result, with the hint under a
/// failed one; then a count.
pub fn render_text(report: &Report, color: bool) -> String {
    let width = |f: fn(&crate::doctor::Check) -> &str, title: &str| {
        report
            .checks
            .iter()
            .map(|c| f(c).chars().count())
            .chain([title.len()])
            .max()
            .unwrap_or(0)
    };
    let w_check = width(|c| &c.check, "CHECK");
    let w_scope = width(|c| &c.scope, "SCOPE");
    let mut out = String::new();
    let _ = writeln!(out, "{:w_check$}  {:w_scope$}  RESULT", "CHECK", "SCOPE");
    let indent = " ".repeat(w_check + w_scope + 4);
    for c in &report.checks {
        let (word, code) = match c.outcome {
            Outcome::Ok => ("ok", "32"),
            Outcome::Failed => ("FAILED", "1;31"),
            Outcome::NotCheckable => ("not checked", "2"),
        };
        let _ = writeln!(
            out,
            "{:w_check$}  {:w_scope$}  {}: {}",
            c.check,
            c.scope,
            paint(color, code, word),
            c.detail
        );
        if let Some(h) = &c.hint {
            let _ = writeln!(out, "{indent}{}: {h}", paint(color, "1;36", "hint"));
        }
    }
    let _ = writeln!(
        out,
        "\n{}: {} ok, {} failed, {} not checked",
        plural(report.checks.len(), "check", "checks"),
        report.count(Outcome::Ok),
        report.count(Outcome::Failed),
        report.count(Outcome::NotCheckable)
    );
    out
}

/// `{"checks": [{check, scope, outcome, detail, hint?}], "ok": N, "failed": N, "not_checkable": N}`.
pub fn render_json(report: &Report) -> String {
    let value = serde_json::json!({
        "checks": report.checks,
        "ok": report.count(Outcome::Ok),
        "failed": report.count(Outcome::Failed),
        "not_checkable": report.count(Outcome::NotCheckable),
    });
    format!("{value}\n")
}
