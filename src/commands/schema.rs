//! `eksgate schema`: print the JSON schema of a manifest, generated from the
//! serde types in `manifest`. The committed `schemas/manifest.schema.json` is
//! this output (a test fails when it is stale). Nothing is computed here.

use std::io::Write as _;

use clap::Args;

use crate::commands::{Context, Exit};
use crate::error::Result;
use crate::manifest;

#[derive(Debug, Args)]
pub struct SchemaArgs {}

pub async fn run(_args: SchemaArgs, ctx: &Context) -> Result<Exit> {
    write!(ctx.printer.stdout(), "{}", manifest::json_schema())?;
    Ok(Exit::Success)
}
