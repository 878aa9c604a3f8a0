//! eksgate: declarative plan/apply for the endpoint access of Amazon EKS
//! clusters.
//!
//! Data flows one way: manifests are loaded into [`desired::Desired`], the
//! provider reads [`live::Live`], the planner turns both into a plan, and apply
//! walks it. Only `provider` and `sim` do network I/O.

pub mod access;
pub mod apply;
pub mod channel;
pub mod cli;
pub mod commands;
pub mod desired;
pub mod diagnostic;
pub mod doctor;
pub mod endpoint;
pub mod error;
pub mod event;
pub mod execute;
pub mod explain;
pub mod graph;
pub mod import;
pub mod interrupt;
pub mod live;
pub mod manifest;
pub mod network;
pub mod plan;
pub mod printer;
pub mod prompt;
pub mod provider;
pub mod reclaim;
pub mod redact;
pub mod rehearse;
pub mod report;
pub mod saved;
pub mod set;
pub mod sim;
pub mod stale;
pub mod text;
pub mod view;
pub mod wait;
pub mod workflow;

use clap::CommandFactory;

use commands::{Context, Exit};
use printer::Printer;

/// Runs a parsed command line and returns the process exit code.
pub fn run_cli(cli: cli::Cli) -> u8 {
    let printer = Printer::new(cli.color, cli.quiet);
    init_logging(cli.verbose, cli.quiet, printer.stderr_color);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(reclaim::on_park)
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            let err = error::Error::Internal(format!("cannot start the async runtime: {err}"));
            report_error(&printer, &err);
            return Exit::Failure.code();
        }
    };
    let ctx = Context { printer };
    let code = match runtime.block_on(dispatch(cli.command, &ctx)) {
        Ok(exit) => exit.code(),
        Err(err) => {
            report_error(&printer, &err);
            Exit::Failure.code()
        }
    };
    // Tasks still running (an apply abandoned by a second Ctrl-C) are
    // dropped here, their destructors run; a blocking call that cannot be
    // cancelled (a stdin read, a DNS lookup) must not hold the exit. With
    // none left there is nothing to drop, and the process does not wait
    // for the workers to stop (3–5 ms after a 10,000-cluster plan, most of
    // it their allocator handing back what the read left them).
    if runtime.metrics().num_alive_tasks() == 0 {
        runtime.shutdown_background();
    } else {
        runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    }
    code
}

/// Hands each verb its arguments.
async fn dispatch(command: cli::Command, ctx: &Context) -> error::Result<Exit> {
    use cli::Command as C;
    match command {
        C::Sim(cmd) => commands::sim::run(cmd, ctx).await,
        C::Plan(args) => commands::plan::run(args, ctx).await,
        C::Apply(args) => commands::apply::run(args, ctx).await,
        C::Demo(args) => commands::demo::run(args, ctx).await,
        C::Validate(args) => commands::validate::run(args, ctx).await,
        C::Schema(args) => commands::schema::run(args, ctx).await,
        C::Import(args) => commands::import::run(args, ctx).await,
        C::Doctor(args) => commands::doctor::run(args, ctx).await,
        C::Completions(args) => commands::completions::run(args, cli::Cli::command(), ctx).await,
        C::Man(args) => commands::man::run(args, cli::Cli::command(), ctx).await,
    }
}

/// The error as the user sees it; if stderr itself is gone, there is no one
/// left to tell.
fn report_error(printer: &Printer, err: &error::Error) {
    use std::io::Write as _;
    let mut stderr = printer.stderr();
    let _ = write!(stderr, "{}", err.render(stderr.color()));
}

/// Logs go to stderr through `tracing`, credentials redacted (the SDK logs
/// identities at debug and trace); `RUST_LOG` wins over `-v`/`-q`.
fn init_logging(verbose: u8, quiet: bool, color: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "eksgate=error",
        // Nothing of the SDK's at the default verbosity: what matters in
        // its warnings (no credentials, a role STS refused, an endpoint
        // that does not answer) reaches the user as one error of
        // eksgate's own (`explain`); `-v` shows them.
        (false, 0) => "eksgate=warn",
        (false, 1) => "eksgate=info,warn",
        (false, 2) => "eksgate=debug,info",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(redact::RedactingStderr::from_env())
        .with_ansi(color)
        .with_target(false)
        .try_init();
}
