//! The command line: the global flags and the list of verbs, each verb's
//! arguments defined beside its code in `commands`. Parsed by clap, then
//! handed to `commands`, which map them to the library's operations. Nothing
//! here does work of its own, and `commands` never imports this module.

use clap::{Parser, Subcommand};

use crate::commands;
use crate::printer::ColorChoice;

#[derive(Debug, Parser)]
#[command(
    name = "eksgate",
    version,
    about = "Declarative plan/apply for the endpoint access of Amazon EKS clusters",
    propagate_version = true
)]
pub struct Cli {
    /// More log output (repeat for more); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr, no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// When to use colour (never with `NO_COLOR` set, unless `always`).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the local EKS/EC2 emulator.
    #[command(subcommand)]
    Sim(commands::sim::SimCommand),
    /// Show the changes that would bring the clusters to their manifests.
    Plan(commands::plan::PlanArgs),
    /// Change the clusters to match their manifests, in a safe order.
    Apply(commands::apply::ApplyArgs),
    /// Show eksgate at work on an emulated AWS account, in under a minute.
    Demo(commands::demo::DemoArgs),
    /// Check manifests without calling AWS: every error, with its place.
    Validate(commands::validate::ValidateArgs),
    /// Print the JSON schema of a manifest (for editors and CI), or of a plan.
    Schema(commands::schema::SchemaArgs),
    /// Write a manifest from the live state of a region's clusters.
    Import(commands::import::ImportArgs),
    /// Check credentials, roles, endpoints and permissions before a first run.
    Doctor(commands::doctor::DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(commands::completions::CompletionsArgs),
    /// Print the roff man page, generated from the command line definition.
    Man(commands::man::ManArgs),
}
