//! `eksgate sim serve`: run the local EKS/EC2/STS emulator until SIGINT or
//! SIGTERM. The first line on stdout is `listening on http://ADDR`, so scripts
//! can read the port when they pass `--listen 127.0.0.1:0`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::commands::{Context, Exit};
use crate::error::{Error, Result};
use crate::sim::{self, Behaviour, FaultFlags, World};

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve the emulator on a loopback port.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The world file (TOML) that seeds accounts, VPCs and clusters.
    #[arg(long)]
    pub world: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// How long an endpoint update stays `InProgress` (e.g. `3s`, `5m`).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub update_duration: Duration,
    /// Latency added to every call.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub latency: Option<Duration>,
    /// Requests per second per region before throttling errors.
    #[arg(long)]
    pub rate_limit: Option<f64>,
    /// Share of calls answered with a throttling error, 0 to 1.
    #[arg(long, value_parser = probability)]
    pub throttle_rate: Option<f64>,
    /// Share of calls answered with a server error, 0 to 1.
    #[arg(long, value_parser = probability)]
    pub error_rate: Option<f64>,
    /// Share of successful calls answered with a damaged body (truncated, a
    /// wrong type, an unknown enum value, missing fields), 0 to 1.
    #[arg(long, value_parser = probability)]
    pub malformed_rate: Option<f64>,
    /// Seed for the random faults, so a run can be repeated.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Share of changes that take effect and are then answered with a server
    /// error (500 or 503), so a client retries a call that already happened;
    /// 0 to 1.
    #[arg(long, value_parser = probability)]
    pub applied_error_rate: Option<f64>,
    /// Share of calls answered 503 (EKS `ServiceUnavailableException`, EC2
    /// `Unavailable`), 0 to 1.
    #[arg(long, value_parser = probability)]
    pub unavailable_rate: Option<f64>,
    /// How long a cluster keeps saying `ACTIVE` after an update started (the
    /// move to `UPDATING` is eventually consistent). Default 1s.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub status_lag: Option<Duration>,
    /// List updates oldest first instead of in no order (AWS promises none).
    #[arg(long)]
    pub ordered_updates: bool,
    /// End sessions from `AssumeRole` after this long when they asked for
    /// more, to show a run outliving its credentials.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub session_duration: Option<Duration>,
    /// Inbound rules a security group holds before
    /// `RulesPerSecurityGroupLimitExceeded`, unless the world sets it. Default 60.
    #[arg(long, value_parser = at_least_one_rule)]
    pub rule_quota: Option<u32>,
    /// The most recent entries `GET /_sim/history` keeps; older ones are
    /// dropped and counted, so a long-running emulator's memory stays bounded.
    #[arg(long, value_parser = at_least_one, default_value_t = sim::DEFAULT_HISTORY_LIMIT)]
    pub history_limit: usize,
}

fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("the history keeps at least one entry".to_string()),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

fn at_least_one_rule(s: &str) -> std::result::Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("a security group holds at least one rule".to_string()),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

fn probability(s: &str) -> std::result::Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("`{s}` is not between 0 and 1"))
    }
}

pub async fn run(cmd: SimCommand, _ctx: &Context) -> Result<Exit> {
    match cmd {
        SimCommand::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> Result<Exit> {
    if !args.listen.ip().is_loopback() {
        return Err(Error::user_hint(
            format!("`{}` is not a loopback address", args.listen),
            "the emulator only listens on loopback, e.g. `--listen 127.0.0.1:0`",
        ));
    }
    let world = World::load(&args.world).map_err(Error::Diagnostics)?;
    let flags = FaultFlags {
        update_duration: Some(args.update_duration),
        latency: args.latency,
        rate_limit: args.rate_limit,
        throttle_rate: args.throttle_rate,
        error_rate: args.error_rate,
        malformed_rate: args.malformed_rate,
        seed: args.seed,
        applied_error_rate: args.applied_error_rate,
        unavailable_rate: args.unavailable_rate,
        status_lag: args.status_lag,
        ordered_updates: args.ordered_updates,
        session_duration: args.session_duration,
        rule_quota: args.rule_quota,
    };
    let behaviour = Behaviour {
        history_limit: Some(args.history_limit),
        ..sim::behaviour_from(&world, Behaviour::default(), &flags)
    };
    let handle = sim::start(&world, behaviour, args.listen)
        .await
        .map_err(|e| Error::user(format!("cannot listen on `{}`: {e}", args.listen)))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", handle.url())?;
        out.flush()?;
    }
    tracing::info!("emulator serving {} clusters", world.cluster.len());
    wait_for_signal().await;
    handle.stop().await;
    Ok(Exit::Success)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
