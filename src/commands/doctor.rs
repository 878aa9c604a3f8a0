//! `eksgate doctor [PATH]...`: check, before a first plan or apply, what
//! would stop one: credentials, identity, roles, endpoints and permissions.
//! Maps the arguments to `doctor::run` and prints its report (a table, or
//! JSON with `--format json`); exit 1 when a check failed.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::commands::common::print_warnings;
use crate::commands::{Context, Exit};
use crate::doctor;
use crate::error::Result;
use crate::provider::aws::{AwsOptions, AwsProvider};
use crate::view;
use crate::workflow;

/// `doctor --format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum DoctorFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Manifest files, or directories whose `*.toml` files are read;
    /// without any, only the credentials and the identity are checked.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = DoctorFormat::Text)]
    pub format: DoctorFormat,
    /// Use this profile of the AWS shared config files.
    #[arg(long, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// The region of the checks without manifests (default: the
    /// configured one, else `us-east-1`).
    #[arg(long)]
    pub region: Option<String>,
}

pub async fn run(args: DoctorArgs, ctx: &Context) -> Result<Exit> {
    let manifests = if args.paths.is_empty() {
        None
    } else {
        let m = workflow::load(&args.paths)?;
        print_warnings(&m.warnings, ctx)?;
        Some(m)
    };
    let provider = AwsProvider::new(AwsOptions {
        profile: args.profile.clone(),
        region: args.region.clone(),
        ..AwsOptions::default()
    })
    .await;
    let region = args
        .region
        .clone()
        .or_else(|| provider.configured_region())
        .unwrap_or_else(|| "us-east-1".to_string());
    let report = doctor::run(&provider, manifests.as_ref().map(|m| &m.desired), &region).await;
    let mut out = ctx.printer.stdout();
    match args.format {
        DoctorFormat::Text => write!(out, "{}", view::doctor::render_text(&report, out.color()))?,
        DoctorFormat::Json => write!(out, "{}", view::doctor::render_json(&report))?,
    }
    Ok(if report.failed() > 0 {
        Exit::Failure
    } else {
        Exit::Success
    })
}
