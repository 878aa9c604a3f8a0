//! `eksgate demo`: the whole tool in under a minute with no AWS account. It
//! starts the emulator in-process on the world in `examples/worlds/demo.toml`
//! (compiled in, so it runs from any directory), then validates, plans,
//! applies and plans again the manifest in `examples/demo.toml`, saying in a
//! sentence what each stage shows. Everything it touches is on loopback.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use crate::apply::ApplyOptions;
use crate::commands::common::{event_view, ProgressFormat};
use crate::commands::{Context, Exit};
use crate::diagnostic::{render_all, Source};
use crate::error::{Error, Result};
use crate::execute::{execute, Executed};
use crate::interrupt::CtrlC;
use crate::manifest;
use crate::printer::Writer;
use crate::provider::aws::{AwsOptions, AwsProvider};
use crate::sim::{self, Behaviour, World};
use crate::view;
use crate::wait::WaitOptions;
use crate::workflow;

const WORLD: &str = include_str!("../../examples/worlds/demo.toml");
const MANIFEST: &str = include_str!("../../examples/demo.toml");

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long each emulated EKS update takes (AWS: minutes).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub update_duration: Duration,
}

fn stage(out: &mut Writer, n: u8, title: &str, what: &str) -> std::io::Result<()> {
    writeln!(out, "\n== {n}/4 {title} ==\n{what}\n")
}

pub async fn run(args: DemoArgs, ctx: &Context) -> Result<Exit> {
    let world = World::parse(&Source::new("examples/worlds/demo.toml", WORLD))
        .map_err(Error::Diagnostics)?;
    let behaviour = Behaviour {
        update_duration: args.update_duration,
        ..Behaviour::default()
    };
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let emulator = sim::start(&world, behaviour, loopback)
        .await
        .map_err(|e| Error::user(format!("cannot start the emulator on loopback: {e}")))?;
    let mut out = ctx.printer.stdout();
    writeln!(
        out,
        "eksgate demo: an emulated AWS account on {} with 6 EKS clusters in us-east-1 and eu-west-1.\nNothing here touches AWS; the manifest is examples/demo.toml.",
        emulator.url()
    )?;

    stage(&mut out, 1, "validate", "Manifests are checked before any AWS call: every mistake is pointed at by file, line and column.")?;
    let loaded = manifest::load_bytes(vec![(
        "examples/demo.toml".into(),
        MANIFEST.as_bytes().to_vec(),
    )])
    .map_err(Error::Diagnostics)?;
    if !loaded.warnings.is_empty() {
        let mut notes = ctx.printer.notes();
        write!(notes, "{}", render_all(&loaded.warnings, notes.color()))?;
    }
    writeln!(
        out,
        "1 file, {} clusters: valid",
        loaded.desired.clusters.len()
    )?;

    stage(&mut out, 2, "plan", "eksgate reads the live state and orders the steps: VPC DNS before private access, TCP 443 and private access `Successful` before public access goes off. `analytics` is blocked: its DHCP options lack `AmazonProvidedDNS`. `billing` is blocked too: the CI role it names has no access entry, so it could not use the Kubernetes API once public access is off.")?;
    let provider = AwsProvider::new(AwsOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(emulator.url()),
        static_credentials: Some(("AKIDEKSGATEDEMO".into(), "eksgate-demo-secret".into())),
        ..AwsOptions::default()
    })
    .await;
    let (_live, plan) = workflow::read_and_plan(&provider, &loaded.desired, 10).await?;
    write!(out, "{}", view::plan::render_text(&plan, out.color()))?;

    stage(&mut out, 3, "apply", "The steps run in that order, clusters in parallel, each EKS update waited for until `Successful`. AWS is running an update of its own on `search`: eksgate sees it and waits for it instead of making a call EKS would reject.")?;
    let poll = (args.update_duration / 10).max(Duration::from_millis(50));
    let opts = ApplyOptions {
        wait: WaitOptions {
            first_interval: poll,
            max_interval: poll * 4,
            timeout: args.update_duration * 20 + Duration::from_secs(30),
        },
        ..ApplyOptions::default()
    };
    let mut view = event_view(ProgressFormat::Text, &ctx.printer);
    let executed = execute(
        &plan,
        &provider,
        &opts,
        view.as_mut(),
        CtrlC::listen(),
        ctx.printer.stderr(),
    )
    .await;
    let Executed::Finished(report) = executed else {
        emulator.stop().await;
        return Ok(Exit::Interrupted);
    };
    write!(out, "{}", view::report::render_report(&report, out.color()))?;
    if report.interrupted {
        return Ok(Exit::Interrupted);
    }

    stage(&mut out, 4, "plan again", "What could converge now matches the manifest; `analytics` stays blocked until its DHCP options are fixed, `billing` until its CI role has an access entry.")?;
    let (_live, again) = workflow::read_and_plan(&provider, &loaded.desired, 10).await?;
    write!(out, "{}", view::plan::render_text(&again, out.color()))?;
    emulator.stop().await;

    if report.success() && !again.has_changes() {
        writeln!(out, "\nDemo complete. Next: `eksgate import --region REGION` to write manifests for your own clusters, then `eksgate plan`.")?;
        Ok(Exit::Success)
    } else {
        Err(Error::Internal(
            "the demo did not converge as expected".into(),
        ))
    }
}
