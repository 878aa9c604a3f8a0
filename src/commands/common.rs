//! What `plan`, `apply` and `demo` share at the command line: the clusters
//! `--target` selects, the output formats they accept, the plan rendered in
//! one of them, the manifests' warnings, the blocked-plan error, and the
//! view apply's events are shown in. Each maps a choice to a call into `view`; none plans or applies.

use std::io::Write as _;

use clap::ValueEnum;

use crate::commands::{Context, Exit};
use crate::desired::Desired;
use crate::diagnostic::{render_all, Diagnostic};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::printer::Printer;
use crate::text::plural;
use crate::view;
use crate::view::progress::{self, EventView};

/// `plan --format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    #[default]
    Text,
    Json,
    Markdown,
    Dot,
}

/// `apply --format`: how the apply's progress is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ProgressFormat {
    /// Progress bars on a terminal, timestamped lines otherwise.
    #[default]
    Text,
    /// One JSON object per event on stdout.
    Json,
    /// With `--rehearse`: the rehearsal as a pull-request comment, with its
    /// timeline as a Mermaid Gantt chart (progress as with `text`).
    Markdown,
}

pub fn render(plan: &Plan, format: PlanFormat, color: bool) -> String {
    match format {
        PlanFormat::Text => view::plan::render_text(plan, color),
        PlanFormat::Json => view::plan::render_json(plan),
        PlanFormat::Markdown => view::plan::render_markdown(plan),
        PlanFormat::Dot => view::dot::render_dot(plan),
    }
}

/// Writes the plan to `out` in `format`. The text form goes out through a
/// buffer as it is rendered, never held whole: a 10,000-cluster plan's
/// text is 10 MB.
pub fn write_plan(out: crate::printer::Writer, plan: &Plan, format: PlanFormat) -> Result<()> {
    let color = out.color();
    let mut out = std::io::BufWriter::new(out);
    if format != PlanFormat::Text {
        write!(out, "{}", render(plan, format, color))?;
        out.flush()?;
        return Ok(());
    }
    /// `fmt::Write` over an `io::Write`, keeping the I/O error.
    struct Adapter<W> {
        inner: W,
        error: Option<std::io::Error>,
    }
    impl<W: std::io::Write> std::fmt::Write for Adapter<W> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.inner.write_all(s.as_bytes()).map_err(|e| {
                self.error = Some(e);
                std::fmt::Error
            })
        }
    }
    let mut adapter = Adapter {
        inner: &mut out,
        error: None,
    };
    if view::plan::write_text(&mut adapter, plan, color).is_err() {
        return Err(adapter
            .error
            .unwrap_or_else(|| std::io::Error::other("formatting failed"))
            .into());
    }
    out.flush()?;
    Ok(())
}

/// The manifests' warnings, unless `--quiet`.
pub fn print_warnings(warnings: &[Diagnostic], ctx: &Context) -> Result<()> {
    let mut notes = ctx.printer.notes();
    if !warnings.is_empty() {
        write!(notes, "{}", render_all(warnings, notes.color()))?;
        writeln!(notes)?;
    }
    Ok(())
}

/// Exit 1 when a cluster is blocked, and says so on stderr.
pub fn blocked_exit(plan: &Plan, ctx: &Context) -> Result<Option<Exit>> {
    if !plan.is_blocked() {
        return Ok(None);
    }
    let d = Diagnostic::error(format!(
        "the plan is blocked for {}",
        // Clusters, not findings: warnings and a cluster's several
        // findings are no more clusters.
        plural(plan.summary().clusters_blocked, "cluster", "clusters")
    ))
    .hint("the plan above says why for each; the other clusters were planned");
    let mut err = ctx.printer.stderr();
    write!(err, "{}", d.render(err.color()))?;
    Ok(Some(Exit::Failure))
}

/// The view an apply's events are shown in: JSON lines on stdout, bars on
/// a terminal, timestamped lines on any other stderr, nothing with
/// `--quiet`.
pub fn event_view(format: ProgressFormat, printer: &Printer) -> Box<dyn EventView + Send> {
    match format {
        ProgressFormat::Json => Box::new(progress::JsonView::new(printer.stdout())),
        ProgressFormat::Text | ProgressFormat::Markdown if printer.progress_bars() => {
            Box::new(progress::TerminalView::new())
        }
        ProgressFormat::Text | ProgressFormat::Markdown if !printer.notes().is_enabled() => {
            Box::new(progress::SilentView)
        }
        ProgressFormat::Text | ProgressFormat::Markdown => {
            Box::new(progress::LineView::new(printer.notes()))
        }
    }
}

/// Keeps only the clusters named by `--target REGION/NAME`; a target that
/// names no declared cluster is an error.
pub fn select(mut desired: Desired, targets: &[String]) -> Result<Desired> {
    if targets.is_empty() {
        return Ok(desired);
    }
    for t in targets {
        let Some((region, name)) = t.split_once('/') else {
            return Err(Error::user_hint(
                format!("`--target {t}` is not of the form `REGION/NAME`"),
                "for example `--target eu-west-1/payments-prod`",
            ));
        };
        if !desired
            .clusters
            .iter()
            .any(|c| c.key.region == region && c.key.name == name)
        {
            return Err(Error::user_hint(
                format!("`--target {t}` names no cluster of the manifests"),
                "`eksgate validate` lists how many clusters the manifests declare",
            ));
        }
    }
    desired
        .clusters
        .retain(|c| targets.iter().any(|t| *t == c.key.to_string()));
    Ok(desired)
}
