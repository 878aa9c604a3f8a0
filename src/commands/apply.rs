//! `eksgate apply [PATH]...` / `eksgate apply --plan FILE`: plan (or load a
//! saved plan and check it still holds, `stale`), show it, ask for `yes` on
//! a terminal unless `--auto-approve`, run it (`execute`: the engine, a view
//! of its events, Ctrl-C), then print the report. The first Ctrl-C stops
//! starting steps and lists the AWS updates still running; a second one exits
//! at once (130, returned through `main`).
//!
//! `--rehearse` reads the live state as usual (read-only calls), then runs
//! the apply against an in-process copy of it (`rehearse`) and prints the
//! copy's timeline, the predicted end state and the predicted report;
//! nothing in AWS changes, so it asks no confirmation.
//!
//! This file maps flags to options, calls those operations and prints what
//! they return; the decisions are theirs.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::apply::{ApplyOptions, ApplyReport};
use crate::commands::common::{
    blocked_exit, event_view, print_warnings, render, select, PlanFormat, ProgressFormat,
};
use crate::commands::plan::AwsArgs;
use crate::commands::{Context, Exit};
use crate::desired::Desired;
use crate::error::{Error, Result};
use crate::execute::{execute, Executed};
use crate::interrupt::CtrlC;
use crate::live::Live;
use crate::plan::Plan;
use crate::prompt;
use crate::provider::aws::AwsProvider;
use crate::rehearse::{self, Rehearsal, RehearsalOptions};
use crate::saved::SavedBody;
use crate::stale::staleness;
use crate::view::report::render_report;
use crate::wait::WaitOptions;
use crate::workflow;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Manifest files, or directories whose `*.toml` files are read.
    #[arg(value_name = "PATH", conflicts_with = "plan")]
    pub paths: Vec<PathBuf>,
    /// Apply a plan saved with `eksgate plan --out FILE`, if it still holds.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Apply only these clusters (`REGION/NAME`, repeatable).
    #[arg(long, value_name = "REGION/NAME", conflicts_with = "plan")]
    pub target: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Start no new step after the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Run steps that turn public access off with nothing declared in
    /// `private_access_from`.
    #[arg(long)]
    pub allow_lockout: bool,
    /// Let a cluster whose access entries cannot be checked (authentication
    /// mode `CONFIG_MAP`, or entries that could not be read) turn public
    /// access off, with a warning instead of a block. A saved plan keeps the
    /// choice it was made with.
    #[arg(long, conflicts_with = "plan")]
    pub allow_unverified_access: bool,
    /// How long to wait for one AWS update.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30m")]
    pub wait_timeout: Duration,
    /// The first interval between two polls of an update.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub poll_interval: Duration,
    /// The longest interval between two polls of an update.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "15s")]
    pub poll_max_interval: Duration,
    /// Start at most N endpoint updates at once; more wait for one to end
    /// (0: no limit beyond `--parallelism` calls in flight).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_updates: usize,
    /// Start a later wave only while at most N clusters failed before it.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_failures: usize,
    /// Apply the first N clusters of the first wave first, and the rest of
    /// it only once they finished.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub canary: usize,
    /// Read the live state, then apply to an in-process copy of it instead
    /// of AWS, and show the predicted timeline, end state and report.
    #[arg(long)]
    pub rehearse: bool,
    /// How long each endpoint update takes in the rehearsal's copy.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s", requires = "rehearse")]
    pub rehearse_update_duration: Duration,
    #[arg(long, value_enum, default_value_t = ProgressFormat::Text)]
    pub format: ProgressFormat,
    #[command(flatten)]
    pub aws: AwsArgs,
}

impl ApplyArgs {
    fn options(&self) -> ApplyOptions {
        ApplyOptions {
            parallelism: usize::from(self.aws.parallelism),
            max_updates: self.max_updates,
            fail_fast: self.fail_fast,
            allow_lockout: self.allow_lockout,
            max_failures: self.max_failures,
            canary: self.canary,
            wait: WaitOptions {
                first_interval: self.poll_interval,
                max_interval: self.poll_max_interval.max(self.poll_interval),
                timeout: self.wait_timeout,
            },
        }
    }
}

/// What apply works from: the manifests' clusters, what was read of them,
/// the plan, and the provider for the real account.
struct Prepared {
    desired: Desired,
    live: Live,
    plan: Plan,
    provider: AwsProvider,
}

pub async fn run(args: ApplyArgs, ctx: &Context) -> Result<Exit> {
    if !args.rehearse && args.format == ProgressFormat::Markdown {
        return Err(Error::user_hint(
            "`--format markdown` shows a rehearsal",
            "add `--rehearse`, or use `--format text` or `--format json`",
        ));
    }
    let prepared = match &args.plan {
        Some(path) => saved_plan(path, &args).await?,
        None => fresh_plan(&args, ctx).await?,
    };
    if args.rehearse {
        return rehearse(prepared, &args, ctx).await;
    }
    let Prepared { plan, provider, .. } = prepared;
    let json = args.format == ProgressFormat::Json;
    if !json {
        let mut out = ctx.printer.stdout();
        write!(out, "{}", render(&plan, PlanFormat::Text, out.color()))?;
    }
    if !plan.has_changes() {
        return Ok(blocked_exit(&plan, ctx)?.unwrap_or(Exit::Success));
    }
    if !args.auto_approve && !confirm(&plan, ctx).await? {
        writeln!(
            ctx.printer.stderr(),
            "Apply cancelled; nothing was changed."
        )?;
        return Ok(Exit::Failure);
    }
    let mut view = event_view(args.format, &ctx.printer);
    let executed = execute(
        &plan,
        &provider,
        &args.options(),
        view.as_mut(),
        CtrlC::listen(),
        ctx.printer.stderr(),
    )
    .await;
    match executed {
        Executed::Finished(report) => finish(&plan, &report, json, ctx),
        Executed::Abandoned(_) => Ok(Exit::Interrupted),
    }
}

fn finish(plan: &Plan, report: &ApplyReport, json: bool, ctx: &Context) -> Result<Exit> {
    let mut out = ctx.printer.stdout();
    if json {
        let line = serde_json::to_string(report).map_err(|e| Error::Internal(e.to_string()))?;
        writeln!(out, "{line}")?;
    } else {
        write!(out, "{}", render_report(report, out.color()))?;
    }
    if report.interrupted {
        return Ok(Exit::Interrupted);
    }
    if plan.is_blocked() || !report.success() {
        return Ok(Exit::Failure);
    }
    Ok(Exit::Success)
}

/// `--rehearse`: the same apply, against an in-process copy of `live`. The
/// provider for the real account is dropped unused once the copy is built:
/// after the read, nothing here can reach AWS.
async fn rehearse(prepared: Prepared, args: &ApplyArgs, ctx: &Context) -> Result<Exit> {
    let Prepared {
        desired,
        live,
        plan,
        provider,
    } = prepared;
    drop(provider);
    let json = args.format == ProgressFormat::Json;
    let markdown = args.format == ProgressFormat::Markdown;
    let rehearsal = Rehearsal::start(
        &live,
        desired.clone(),
        &plan,
        RehearsalOptions {
            update_duration: args.rehearse_update_duration,
            region: args.aws.region.clone(),
            parallelism: usize::from(args.aws.parallelism),
        },
    )
    .await?;
    let divergence = rehearsal.divergence().map(str::to_string);
    let mut out = ctx.printer.stdout();
    if !json && !markdown {
        writeln!(
            out,
            "Rehearsal: nothing in AWS changes. The live state was read with read-only calls and copied into an emulator on `{}`; the apply runs against that copy, each endpoint update taking {}.\n",
            rehearsal.addr(),
            humantime::format_duration(args.rehearse_update_duration)
        )?;
        write!(out, "{}", render(&plan, PlanFormat::Text, out.color()))?;
        if let Some(d) = &divergence {
            writeln!(out, "\nwarning: {d}; the rehearsal runs the copy's plan")?;
        }
    }
    let mut view = event_view(args.format, &ctx.printer);
    let Some(done) = rehearsal
        .run(
            &args.options(),
            view.as_mut(),
            CtrlC::listen(),
            ctx.printer.stderr(),
        )
        .await?
    else {
        return Ok(Exit::Interrupted);
    };
    if json {
        let doc = serde_json::json!({
            "rehearsal": true,
            "divergence": divergence,
            "timeline": done.timeline,
            "end_state": done.end_state,
            "report": done.report,
        });
        writeln!(out, "{doc}")?;
    } else if markdown {
        let picture = crate::view::rehearsal::Rehearsed {
            plan: &plan,
            timeline: &done.timeline,
            end_state: &done.end_state,
            report: &done.report,
            update_duration: humantime::format_duration(args.rehearse_update_duration).to_string(),
            divergence: divergence.as_deref(),
        };
        write!(out, "{}", crate::view::rehearsal::render_markdown(&picture))?;
    } else {
        writeln!(
            out,
            "\nRehearsal timeline (the copy's calls and updates; offsets from the start of the apply):"
        )?;
        write!(out, "{}", rehearse::render_timeline(&done.timeline))?;
        write!(
            out,
            "{}",
            crate::view::rehearsal::gantt_text(&plan, &done.timeline, &done.report)
        )?;
        writeln!(out, "\nPredicted end state:")?;
        write!(out, "{}", rehearse::render_end_state(&done.end_state))?;
        writeln!(out, "\nPredicted report:")?;
        write!(out, "{}", render_report(&done.report, out.color()))?;
        writeln!(
            out,
            "\nThis was a rehearsal: nothing in AWS was changed. Run `eksgate apply` without `--rehearse` to apply for real."
        )?;
    }
    if done.report.interrupted {
        return Ok(Exit::Interrupted);
    }
    if plan.is_blocked() || !done.report.success() || !done.converged() {
        return Ok(Exit::Failure);
    }
    Ok(Exit::Success)
}

async fn fresh_plan(args: &ApplyArgs, ctx: &Context) -> Result<Prepared> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let manifests = workflow::load(&paths)?;
    print_warnings(&manifests.warnings, ctx)?;
    let mut desired = select(manifests.desired, &args.target)?;
    desired.allow_unverified_access = args.allow_unverified_access;
    let provider = AwsProvider::new(args.aws.options()).await;
    let (live, plan) =
        workflow::read_and_plan(&provider, &desired, usize::from(args.aws.parallelism)).await?;
    Ok(Prepared {
        desired,
        live,
        plan,
        provider,
    })
}

/// Loads a saved plan and re-reads the live state of its clusters: if any
/// step would now be planned differently, the whole plan is refused and
/// nothing is changed.
async fn saved_plan(path: &Path, args: &ApplyArgs) -> Result<Prepared> {
    let saved = SavedBody::read(path)?;
    let provider = AwsProvider::new(args.aws.options()).await;
    let (live, now) =
        workflow::read_and_plan(&provider, &saved.desired, usize::from(args.aws.parallelism))
            .await?;
    if let Some(why) = staleness(&saved.plan, &now) {
        return Err(Error::user_hint(
            format!("the plan is stale: {why}; nothing was changed"),
            "plan again with `eksgate plan --out FILE` and review the new plan",
        ));
    }
    Ok(Prepared {
        desired: saved.desired,
        live,
        plan: saved.plan,
        provider,
    })
}

/// Asks for `yes` on a terminal; refuses without one. The answer is read
/// off the runtime (`prompt`).
async fn confirm(plan: &Plan, ctx: &Context) -> Result<bool> {
    if !ctx.printer.stdin_is_terminal {
        return Err(Error::user_hint(
            "refusing to apply without confirmation: standard input is not a terminal",
            "review the plan, then run again with `--auto-approve`",
        ));
    }
    let revokes = |s: &&crate::plan::Step| s.kind() == crate::plan::StepKind::SgHttpsRevoke;
    let risky = plan
        .steps
        .iter()
        .filter(|s| s.lockout_risk && !revokes(s))
        .count();
    let risky_revokes = plan
        .steps
        .iter()
        .filter(|s| s.lockout_risk && revokes(s))
        .count();
    let mut err = ctx.printer.stderr();
    if risky > 0 {
        writeln!(
            err,
            "warning: {risky} step(s) turn public access off with nothing in `private_access_from`; they are refused unless `--allow-lockout` is given"
        )?;
    }
    if risky_revokes > 0 {
        writeln!(
            err,
            "warning: {risky_revokes} step(s) revoke the last TCP 443 source of a private-only cluster; they are refused unless `--allow-lockout` is given"
        )?;
    }
    write!(
        err,
        "\nApply these {} steps? Only `yes` is accepted: ",
        plan.steps.len()
    )?;
    err.flush()?;
    let line = prompt::read_line(std::io::stdin()).await?;
    Ok(line.trim() == "yes")
}
