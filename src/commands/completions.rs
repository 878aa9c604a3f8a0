//! `eksgate completions SHELL`: print the shell completion script that
//! `clap_complete` generates from the command line definition it is handed
//! (`cli`'s). It adds nothing by hand, so the script cannot drift from the
//! real flags.

use std::io::Write as _;

use clap::Args;
use clap_complete::Shell;

use crate::commands::{Context, Exit};
use crate::error::Result;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  eksgate completions bash > ~/.local/share/bash-completion/completions/eksgate
  eksgate completions zsh > ~/.zfunc/_eksgate
  eksgate completions fish > ~/.config/fish/completions/eksgate.fish")]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The completion script of `cmd` for `shell`.
pub fn script(shell: Shell, mut cmd: clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "eksgate", &mut out);
    out
}

pub async fn run(args: CompletionsArgs, cmd: clap::Command, ctx: &Context) -> Result<Exit> {
    let mut stdout = ctx.printer.stdout();
    stdout.write_all(&script(args.shell, cmd))?;
    stdout.flush()?;
    Ok(Exit::Success)
}
