//! `eksgate man [COMMAND]`: print a roff man page that `clap_mangen` generates
//! from the command line definition it is handed (`cli`'s): the top-level
//! page, or the page of one subcommand (`eksgate-plan(1)`). Nothing is
//! written by hand, so the page cannot drift from the real flags.

use std::io::Write as _;

use clap::Args;

use crate::commands::{Context, Exit};
use crate::error::{Error, Result};

#[derive(Debug, Args)]
#[command(after_help = "Example:
  eksgate man > eksgate.1 && man ./eksgate.1")]
pub struct ManArgs {
    /// The page of this subcommand (like `plan`) instead of the top-level one.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// The roff source of the page of `command` of `cmd`, or of `cmd` itself.
pub fn page(mut cmd: clap::Command, command: Option<&str>) -> Result<Vec<u8>> {
    // Subcommands learn their full names (`eksgate-plan`, `eksgate plan`)
    // only when the command is built.
    cmd.build();
    let cmd = match command {
        None => cmd,
        Some(name) => {
            let known: Vec<String> = cmd
                .get_subcommands()
                .map(|s| format!("`{}`", s.get_name()))
                .collect();
            let Some(sub) = cmd.find_subcommand(name) else {
                return Err(Error::user_hint(
                    format!("`{name}` is not an eksgate command"),
                    format!("the commands are {}", known.join(", ")),
                ));
            };
            // Built, it is titled `eksgate-plan` and used as `eksgate plan`.
            sub.clone()
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    Ok(out)
}

pub async fn run(args: ManArgs, cmd: clap::Command, ctx: &Context) -> Result<Exit> {
    let text = page(cmd, args.command.as_deref())?;
    let mut stdout = ctx.printer.stdout();
    stdout.write_all(&text)?;
    stdout.flush()?;
    Ok(Exit::Success)
}
