//! One file per verb. Each maps its arguments to options and calls the
//! library; none holds logic of its own.

pub mod apply;
pub mod common;
pub mod completions;
pub mod demo;
pub mod import;
pub mod man;
pub mod plan;
pub mod schema;
pub mod sim;
pub mod validate;

use crate::cli::{Cli, Command};
use crate::error::Result;
use crate::printer::Printer;

/// What a command asks `main` to exit with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// The command ran, and the answer is "no" (invalid, failed steps).
    Failure,
    /// `plan --detailed-exitcode` found changes.
    Changes,
    /// Stopped by Ctrl-C.
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Changes => 2,
            Exit::Interrupted => 130,
        }
    }
}

/// Shared by every command.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    pub printer: Printer,
}

pub async fn run(cli: Cli, ctx: Context) -> Result<Exit> {
    match cli.command {
        Command::Sim(cmd) => sim::run(cmd, &ctx).await,
        Command::Plan(args) => plan::run(args, &ctx).await,
        Command::Apply(args) => apply::run(args, &ctx).await,
        Command::Demo(args) => demo::run(args, &ctx).await,
        Command::Validate(args) => validate::run(args, &ctx).await,
        Command::Schema(args) => schema::run(args, &ctx).await,
        Command::Import(args) => import::run(args, &ctx).await,
        Command::Completions(args) => completions::run(args, &ctx).await,
        Command::Man(args) => man::run(args, &ctx).await,
    }
}
