use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = eksgate::cli::Cli::parse();
    ExitCode::from(eksgate::run_cli(cli))
}
