//! Rehearsals (`eksgate apply --rehearse`): the live state read from the real
//! account is copied into an emulator world ([`World::from_live`]), the
//! emulator runs in-process on a loopback port with short updates, and the
//! whole apply runs against that copy ([`Rehearsal`]). What the copy's
//! history recorded becomes a timeline of calls and waits ([`timeline`]),
//! and reading the copy afterwards gives the predicted end state
//! ([`end_state`]).
//!
//! This module runs the rehearsal and returns data; it must not print (the
//! command does) and must never hold a client for the real account:
//! everything it starts points at the copy.
//!
//! [`World::from_live`]: crate::sim::World::from_live

mod end_state;
mod network;
mod timeline;
mod world;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

pub use end_state::{end_state, render_end_state, EndState};
pub use timeline::{render_timeline, timeline, TimelineEntry};

use crate::apply::{ApplyOptions, ApplyReport};
use crate::desired::{Desired, DesiredCluster};
use crate::error::{Error, Result};
use crate::execute::{execute, Executed};
use crate::interrupt::Signals;
use crate::live::Live;
use crate::plan::{Plan, StepKind};
use crate::provider::aws::{AwsOptions, AwsProvider};
use crate::sim::{self, Behaviour, SimHandle, World};
use crate::view::progress::EventView;
use crate::workflow;

/// The access key the rehearsal's provider signs with; the copy maps it to
/// the account the real credentials act in.
pub const ACCESS_KEY: &str = "AKIDEKSGATEREHEARSAL";
const SECRET_KEY: &str = "eksgate-rehearsal-secret";

/// How the copy is built and read.
#[derive(Clone, Debug)]
pub struct RehearsalOptions {
    /// How long each endpoint update takes in the copy.
    pub update_duration: Duration,
    /// The region for calls that need one before any cluster's.
    pub region: Option<String>,
    /// How many calls to the copy may run at once.
    pub parallelism: usize,
}

/// The in-process copy and a provider that talks only to it.
struct LiveCopy {
    sim: SimHandle,
    provider: AwsProvider,
}

impl LiveCopy {
    /// Starts the copy of `live` on `127.0.0.1:0`, endpoint updates taking
    /// `update_duration`, and a provider signed with the copy's own key (the
    /// roles the steps name are assumed inside the copy).
    async fn start(
        live: &Live,
        desired: &[DesiredCluster],
        update_duration: Duration,
        region: Option<String>,
    ) -> std::io::Result<LiveCopy> {
        let world = World::from_live(live, desired, update_duration);
        let behaviour = Behaviour {
            update_duration,
            ..Behaviour::default()
        };
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let sim = sim::start(&world, behaviour, loopback).await?;
        let provider = AwsProvider::new(AwsOptions {
            region,
            endpoint_url: Some(sim.url()),
            static_credentials: Some((ACCESS_KEY.to_string(), SECRET_KEY.to_string())),
            // The quota the real read was told, so the copy's plan counts alike.
            sg_rule_quota: live.security_groups.values().find_map(|g| g.rule_quota),
            ..AwsOptions::default()
        })
        .await;
        Ok(LiveCopy { sim, provider })
    }
}

/// A rehearsal ready to run: the copy is up and planned on.
pub struct Rehearsal {
    copy: LiveCopy,
    desired: Desired,
    parallelism: usize,
    plan: Plan,
    divergence: Option<String>,
}

/// What a rehearsal predicts.
#[derive(Clone, Debug)]
pub struct Rehearsed {
    /// The report of the apply against the copy.
    pub report: ApplyReport,
    pub timeline: Vec<TimelineEntry>,
    pub end_state: Vec<EndState>,
}

impl Rehearsed {
    /// Every declared cluster matches its manifest in the copy afterwards.
    pub fn converged(&self) -> bool {
        self.end_state.iter().all(|e| e.matches)
    }
}

impl Rehearsal {
    /// Copies what the real read found (`live`, for `desired`) into an
    /// emulator and plans on the copy; `real` is the plan made from the real
    /// account, to tell when the copy plans otherwise.
    pub async fn start(
        live: &Live,
        desired: Desired,
        real: &Plan,
        opts: RehearsalOptions,
    ) -> Result<Rehearsal> {
        let copy = LiveCopy::start(live, &desired.clusters, opts.update_duration, opts.region)
            .await
            .map_err(|e| Error::Internal(format!("cannot start the rehearsal's emulator: {e}")))?;
        let (_copy_live, plan) =
            workflow::read_and_plan(&copy.provider, &desired, opts.parallelism).await?;
        let divergence = divergence(real, &plan);
        Ok(Rehearsal {
            copy,
            desired,
            parallelism: opts.parallelism,
            plan,
            divergence,
        })
    }

    /// Where the copy listens.
    pub fn addr(&self) -> SocketAddr {
        self.copy.sim.addr()
    }

    /// How the copy's plan differs from the real one, if it does; the
    /// rehearsal runs the copy's.
    pub fn divergence(&self) -> Option<&str> {
        self.divergence.as_deref()
    }

    /// Applies the copy's plan while `view` renders its events and
    /// `signals` are watched, reads the copy again, and stops it. `None`
    /// when a second Ctrl-C abandoned the run.
    pub async fn run<S: Signals, W: Write>(
        self,
        opts: &ApplyOptions,
        view: &mut (dyn EventView + Send),
        signals: S,
        err: W,
    ) -> Result<Option<Rehearsed>> {
        let from = self.copy.sim.history().len();
        let executed = execute(&self.plan, &self.copy.provider, opts, view, signals, err).await;
        let Executed::Finished(report) = executed else {
            self.copy.sim.stop().await;
            return Ok(None);
        };
        let timeline = timeline(&self.copy.sim.history(), from);
        let (_after_live, after) =
            workflow::read_and_plan(&self.copy.provider, &self.desired, self.parallelism).await?;
        let end_state = end_state(&after);
        self.copy.sim.stop().await;
        Ok(Some(Rehearsed {
            report,
            timeline,
            end_state,
        }))
    }
}

/// What the copy would plan differently from the real plan, ignoring waits
/// for updates already running (their ids differ in the copy): `None` when
/// the copy is faithful.
pub fn divergence(real: &Plan, copy: &Plan) -> Option<String> {
    let steps = |p: &'_ Plan| -> BTreeMap<String, crate::plan::Step> {
        p.steps
            .iter()
            .filter(|s| s.kind() != StepKind::WaitUpdate)
            .map(|s| (s.id.clone(), s.clone()))
            .collect()
    };
    let (a, b) = (steps(real), steps(copy));
    let differ = |x: &BTreeMap<String, crate::plan::Step>,
                  y: &BTreeMap<String, crate::plan::Step>| {
        x.iter()
            .filter(|(id, s)| !y.get(*id).is_some_and(|t| t.same_change(s)))
            .map(|(id, _)| format!("`{id}`"))
            .collect::<Vec<String>>()
    };
    let (only_real, only_copy) = (differ(&a, &b), differ(&b, &a));
    if only_real.is_empty() && only_copy.is_empty() {
        return None;
    }
    Some(format!(
        "the copy plans differently from the live state (only live: {}; only copy: {})",
        if only_real.is_empty() {
            "none".to_string()
        } else {
            only_real.join(", ")
        },
        if only_copy.is_empty() {
            "none".to_string()
        } else {
            only_copy.join(", ")
        }
    ))
}
