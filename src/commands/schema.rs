//! `eksgate schema`: print the JSON schema of a manifest, generated from the
//! serde types in `manifest`, or with `--plan` the schema of the JSON plan
//! (`plan --format json`), generated from the types `view::plan` writes. The
//! committed `schemas/manifest.schema.json` and `schemas/plan.schema.json`
//! are these outputs (a test fails when one is stale). Nothing is computed
//! here.

use std::io::Write as _;

use clap::Args;

use crate::commands::{Context, Exit};
use crate::error::Result;
use crate::manifest;
use crate::view;

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Print the schema of `eksgate plan --format json` instead, for policy
    /// tools (OPA/conftest, Checkov, jq) that check plans.
    #[arg(long)]
    pub plan: bool,
}

pub async fn run(args: SchemaArgs, ctx: &Context) -> Result<Exit> {
    let schema = if args.plan {
        view::plan::json_schema()
    } else {
        manifest::json_schema()
    };
    write!(ctx.printer.stdout(), "{schema}")?;
    Ok(Exit::Success)
}
