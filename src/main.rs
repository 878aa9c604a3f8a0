use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = eksgate::cli::Cli::parse();
    ExitCode::from(eksgate::run_cli(cli))
}
