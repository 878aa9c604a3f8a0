//! `eksgate plan [PATH]...`: read the live state of the declared clusters,
//! plan, and show the plan (text, JSON or markdown) on stdout. `--out` saves it
//! for `apply --plan`; `--detailed-exitcode` says whether it has changes.

use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;

use crate::commands::common::{blocked_exit, print_warnings, select, write_plan, PlanFormat};
use crate::commands::{Context, Exit};
use crate::error::Result;
use crate::provider::aws::{AwsOptions, AwsProvider};
use crate::saved::SavedBody;
use crate::workflow;

/// Where and how to reach AWS; shared by `plan` and `apply`.
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// Use this profile of the AWS shared config files.
    #[arg(long, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// The region for calls that need one before any cluster's (STS).
    #[arg(long)]
    pub region: Option<String>,
    /// How many steps may call AWS at once in each account and region (reads
    /// keep a quarter of that in flight per account and region).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// The account's quota of inbound rules per security group, when AWS
    /// raised it above the default 60 (per address family): a plan that
    /// would add rules past it blocks the cluster.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub sg_rule_quota: Option<u32>,
}

impl AwsArgs {
    pub fn options(&self) -> AwsOptions {
        AwsOptions {
            profile: self.profile.clone(),
            region: self.region.clone(),
            max_attempts: None,
            endpoint_url: None,
            static_credentials: None,
            sg_rule_quota: self.sg_rule_quota,
        }
    }
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Manifest files, or directories whose `*.toml` files are read.
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Plan only these clusters (`REGION/NAME`, repeatable).
    #[arg(long, value_name = "REGION/NAME")]
    pub target: Vec<String>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Save the plan for `eksgate apply --plan FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 with no changes, 2 with changes, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Let a cluster whose access entries cannot be checked (authentication
    /// mode `CONFIG_MAP`, or entries that could not be read) turn public
    /// access off, with a warning instead of a block.
    #[arg(long)]
    pub allow_unverified_access: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
}

pub async fn run(args: PlanArgs, ctx: &Context) -> Result<Exit> {
    let manifests = workflow::load(&args.paths)?;
    print_warnings(&manifests.warnings, ctx)?;
    let mut desired = select(manifests.desired, &args.target)?;
    desired.allow_unverified_access = args.allow_unverified_access;
    let provider = AwsProvider::new(args.aws.options()).await;
    let live = workflow::read(&provider, &desired, usize::from(args.aws.parallelism)).await?;
    // What a large fleet's read holds (clients, open connections) and then
    // the live state are let go as soon as they are no longer needed, and
    // given back to the system (see `reclaim`): the runtime's workers freed
    // the calls' memory, the planner and the renderer run on other threads.
    drop(provider);
    crate::reclaim::release_idle();
    let plan = crate::plan::plan(&desired, &live);
    drop(live);
    crate::reclaim::release_here();
    write_plan(ctx.printer.stdout(), &plan, args.format)?;
    if let Some(path) = &args.out {
        SavedBody::new(desired, plan.clone()).write(path)?;
        writeln!(
            ctx.printer.notes(),
            "Saved the plan to `{}`; apply it with `eksgate apply --plan {}`.",
            path.display(),
            path.display()
        )?;
    }
    let exit = match blocked_exit(&plan, ctx)? {
        Some(exit) => exit,
        None if args.detailed_exitcode && plan.has_changes() => Exit::Changes,
        None => Exit::Success,
    };
    // The process ends now: what a large plan holds is left to it rather
    // than freed piece by piece.
    std::mem::forget(plan);
    Ok(exit)
}
