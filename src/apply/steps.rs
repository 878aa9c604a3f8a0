//! The step executors: what running one step of each kind does against the
//! provider. Every step re-reads what it is about to change just before the
//! call, so it never makes a call AWS would reject as a no-op or as a
//! conflict with an update in progress (DESIGN.md section 1); it waits for
//! such updates instead, letting its `--parallelism` slot go meanwhile.

use tokio::sync::watch;
use tokio::time::Instant;

use super::{CallSlot, Ctx};
use crate::access::{grant_commands, AuthenticationMode, Verdict};
use crate::desired::AccessSource;
use crate::endpoint::EndpointSettings;
use crate::event::{Event, RunningUpdate, StepOutcome};
use crate::live::{ClusterObservation, ClusterStatus, DnsAttribute, LiveCluster};
use crate::plan::{Action, Step};
use crate::provider::{IngressOutcome, Provider, ProviderError, Scope, UpdateStart, UpdateStatus};
use crate::report::Change;
use crate::set::SortedSet;
use crate::text::mode_name;
use crate::wait::{self, WaitEnd};

/// How many times an endpoint step re-reads the cluster and waits for an
/// update it did not start before giving up: AWS rarely starts more than one
/// update of its own in a row, so five rounds is generous.
const MAX_ROUNDS: usize = 5;

// ---------------------------------------------------------------------------
// The report

/// What running one step gave the walker.
pub(super) struct StepResult {
    pub(super) outcome: StepOutcome,
    pub(super) message: String,
    pub(super) changes: Vec<Change>,
    pub(super) still_running: Vec<RunningUpdate>,
    pub(super) update_ids: Vec<String>,
}

/// A step that ended well.
struct Finish {
    pub(super) outcome: StepOutcome,
    pub(super) message: String,
    pub(super) change: Option<Change>,
}

impl Finish {
    fn done(message: String, change: Option<Change>) -> Self {
        Finish {
            outcome: StepOutcome::Done,
            message,
            change,
        }
    }

    fn converged(message: String) -> Self {
        Finish {
            outcome: StepOutcome::AlreadyConverged,
            message,
            change: None,
        }
    }
}

/// Why a step did not end well. Each message is what the user reads after
/// `failed:` (or `timed out:`, `cancelled:`).
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("cluster `{0}` was not found")]
    ClusterNotFound(String),
    #[error("refusing to turn both public and private access off: EKS rejects it")]
    BothOff,
    #[error("refusing to turn public access off: private access is off on `{0}` now (it changed since the plan); run `eksgate plan` again")]
    PrivateAccessOff(String),
    #[error("`enableDnsHostnames` needs `enableDnsSupport`, which is off on `{0}` now (it changed since the plan); run `eksgate plan` again")]
    DnsSupportOff(String),
    #[error("update `{id}` ended `{status}`: {errors}")]
    UpdateFailed {
        id: String,
        status: String,
        errors: String,
    },
    #[error("refusing to turn public access off: {0}")]
    AccessLost(String),
    #[error("cluster `{0}` still had updates in progress after {MAX_ROUNDS} waits; run `eksgate apply` again later")]
    Busy(String),
    #[error("{what} did not finish within {}; the update may still finish in AWS: running `eksgate apply` again resumes, waiting for the running update instead of starting another", humantime::format_duration(*.waited))]
    TimedOut {
        what: String,
        update_id: Option<String>,
        waited: std::time::Duration,
    },
    /// Interrupted; `update_id` is the update it was waiting on, which goes
    /// on in AWS.
    #[error("{message}")]
    Cancelled {
        message: String,
        update_id: Option<String>,
    },
}

fn scope(step: &Step) -> Scope {
    Scope {
        account: step.account.clone(),
        region: step.region.clone(),
        role_arn: step.role_arn.as_deref().map(str::to_string),
    }
}

/// The update ids a step touched, kept even when it ends badly.
#[derive(Default)]
struct Trace {
    pub(super) update_ids: Vec<String>,
}

impl Trace {
    fn touched(&mut self, id: &str) {
        if !self.update_ids.iter().any(|u| u == id) {
            self.update_ids.push(id.to_string());
        }
    }
}

pub(super) async fn run_step<'a, P: Provider>(
    ctx: &'a Ctx<'a, P>,
    step: &Step,
    mut slot: CallSlot<'a>,
    mut cancel: watch::Receiver<bool>,
) -> StepResult {
    let mut trace = Trace::default();
    let result = match &step.action {
        Action::VpcDns { attribute } => vpc_step(ctx, step, *attribute, &cancel).await,
        Action::HttpsIngress { add, .. } => sg_step(ctx, step, add, &cancel).await,
        Action::HttpsRevoke { revoke, .. } => revoke_step(ctx, step, revoke, &cancel).await,
        Action::Endpoint { after, .. } => {
            endpoint_step(ctx, step, after, &mut slot, &mut cancel, &mut trace).await
        }
        Action::AccessConfig { after, .. } => {
            access_config_step(ctx, step, after, &mut slot, &mut cancel, &mut trace).await
        }
        Action::WaitUpdate { update_id } => {
            wait_step(
                ctx,
                step,
                update_id.as_deref(),
                &mut slot,
                &mut cancel,
                &mut trace,
            )
            .await
        }
    };
    drop(slot);
    ctx.watching().remove(&step.id);
    let running = |id: &str| RunningUpdate {
        step_id: step.id.clone(),
        account: step.account.clone(),
        region: step.region.clone(),
        cluster: step.cluster.clone().unwrap_or_default(),
        update_id: id.to_string(),
    };
    let (outcome, still_running) = match &result {
        Ok(f) => (f.outcome, None),
        Err(StepError::TimedOut { update_id, .. }) => (StepOutcome::TimedOut, update_id.clone()),
        Err(StepError::Cancelled { update_id, .. }) => (StepOutcome::Cancelled, update_id.clone()),
        Err(_) => (StepOutcome::Failed, None),
    };
    let (message, changes) = match result {
        Ok(f) => (f.message, f.change.into_iter().collect()),
        Err(e) => (e.to_string(), Vec::new()),
    };
    StepResult {
        outcome,
        message,
        changes,
        still_running: still_running.iter().map(|id| running(id)).collect(),
        update_ids: trace.update_ids,
    }
}

/// The last look before a call that changes something: once interrupted,
/// no new change starts.
fn check_cancel(cancel: &watch::Receiver<bool>) -> Result<(), StepError> {
    if *cancel.borrow() {
        return Err(StepError::Cancelled {
            message: "interrupted before its call; nothing was changed".to_string(),
            update_id: None,
        });
    }
    Ok(())
}

async fn vpc_step<P: Provider>(
    ctx: &Ctx<'_, P>,
    step: &Step,
    attribute: DnsAttribute,
    cancel: &watch::Receiver<bool>,
) -> Result<Finish, StepError> {
    // A step of this kind always names its VPC (`plan::step` checks it).
    let vpc_id = step.vpc_id.as_deref().unwrap_or_default();
    let name = attribute.api_name();
    let scope = scope(step);
    let vpc = ctx.provider.read_vpc(&scope, vpc_id).await?;
    if attribute.is_on(&vpc) {
        return Ok(Finish::converged(format!(
            "`{name}` is already on in `{vpc_id}`"
        )));
    }
    // EC2 rejects hostnames without support; the plan orders them, but the
    // VPC may have changed since.
    if attribute == DnsAttribute::Hostnames && !vpc.dns_support {
        return Err(StepError::DnsSupportOff(vpc_id.to_string()));
    }
    check_cancel(cancel)?;
    ctx.provider
        .set_vpc_dns(&scope, vpc_id, attribute, true)
        .await?;
    Ok(Finish::done(
        format!("`{name}` turned on in `{vpc_id}`"),
        Some(Change::VpcAttributeEnabled {
            step_id: step.id.clone(),
            account: step.account.clone(),
            region: step.region.clone(),
            vpc_id: vpc_id.to_string(),
            attribute: name.to_string(),
        }),
    ))
}

async fn sg_step<P: Provider>(
    ctx: &Ctx<'_, P>,
    step: &Step,
    sources: &SortedSet<AccessSource>,
    cancel: &watch::Receiver<bool>,
) -> Result<Finish, StepError> {
    // A step of this kind always names its group (`plan::step` checks it).
    let group_id = step.security_group_id.as_deref().unwrap_or_default();
    if sources.is_empty() {
        return Ok(Finish::converged("no sources to add".to_string()));
    }
    check_cancel(cancel)?;
    match ctx
        .provider
        .authorize_https_ingress(&scope(step), group_id, sources)
        .await?
    {
        IngressOutcome::Added => Ok(Finish::done(
            format!("TCP 443 ingress added to `{group_id}`"),
            Some(Change::HttpsIngressAdded {
                step_id: step.id.clone(),
                account: step.account.clone(),
                region: step.region.clone(),
                group_id: group_id.to_string(),
                sources: sources.clone(),
            }),
        )),
        IngressOutcome::AlreadyPresent => Ok(Finish::converged(format!(
            "the TCP 443 rules were already in `{group_id}`"
        ))),
    }
}

/// Revokes the exact TCP 443 rules from sources no longer declared. The
/// provider lists the group's rules just before the call, so a rule already
/// gone is not an error and nothing but those rules is named.
async fn revoke_step<P: Provider>(
    ctx: &Ctx<'_, P>,
    step: &Step,
    sources: &SortedSet<AccessSource>,
    cancel: &watch::Receiver<bool>,
) -> Result<Finish, StepError> {
    // A step of this kind always names its group (`plan::step` checks it).
    let group_id = step.security_group_id.as_deref().unwrap_or_default();
    if sources.is_empty() {
        return Ok(Finish::converged("no sources to revoke".to_string()));
    }
    check_cancel(cancel)?;
    match ctx
        .provider
        .revoke_https_ingress(&scope(step), group_id, sources)
        .await?
    {
        crate::provider::RevokeOutcome::Revoked(rule_ids) => Ok(Finish::done(
            format!("TCP 443 ingress revoked from `{group_id}`"),
            Some(Change::HttpsIngressRevoked {
                step_id: step.id.clone(),
                account: step.account.clone(),
                region: step.region.clone(),
                group_id: group_id.to_string(),
                sources: sources.clone(),
                rule_ids,
            }),
        )),
        crate::provider::RevokeOutcome::AlreadyGone => Ok(Finish::converged(format!(
            "the TCP 443 rules were already gone from `{group_id}`"
        ))),
    }
}

fn cluster_or_error(obs: ClusterObservation, name: &str) -> Result<LiveCluster, StepError> {
    match obs {
        ClusterObservation::Found(c) => Ok(c),
        ClusterObservation::NotFound => Err(StepError::ClusterNotFound(name.to_string())),
        ClusterObservation::AccountMismatch { expected, actual } => {
            Err(ProviderError::AccountMismatch { expected, actual }.into())
        }
    }
}

async fn endpoint_step<'a, P: Provider>(
    ctx: &'a Ctx<'a, P>,
    step: &Step,
    want: &EndpointSettings,
    slot: &mut CallSlot<'a>,
    cancel: &mut watch::Receiver<bool>,
    trace: &mut Trace,
) -> Result<Finish, StepError> {
    // A step of this kind always names its cluster (`plan::step` checks it).
    let name = step.cluster.as_deref().unwrap_or_default();
    if want.both_off() {
        return Err(StepError::BothOff);
    }
    let scope = scope(step);
    let mode = mode_name(want.public_access, want.private_access);
    let mut waited: Option<String> = None;
    let mut rounds = 0;
    while rounds < MAX_ROUNDS {
        slot.hold().await;
        // Read just before deciding: the plan's view is minutes old when
        // earlier steps waited, and AWS starts updates of its own.
        let live = cluster_or_error(ctx.provider.describe_cluster(&scope, name).await?, name)?;
        if want.satisfied_by(&live.endpoint) {
            let message = match &waited {
                Some(id) => {
                    format!("the endpoint is already {mode} (after update `{id}`); no call made")
                }
                None => format!("the endpoint is already {mode}; no call made"),
            };
            return Ok(Finish::converged(message));
        }
        if let Some(id) = live.updates_in_progress.first() {
            let reason = format!(
                "update `{id}` is in progress on `{name}` and EKS runs one update at a time"
            );
            wait_other(
                ctx,
                step,
                &scope,
                name,
                Some(id),
                reason,
                slot,
                cancel,
                trace,
            )
            .await?;
            waited = Some(id.clone());
            rounds += 1;
            continue;
        }
        if live.status == ClusterStatus::Updating {
            let reason = format!("`{name}` is `UPDATING` and EKS runs one update at a time");
            wait_other(ctx, step, &scope, name, None, reason, slot, cancel, trace).await?;
            rounds += 1;
            continue;
        }
        // The staged order enables private access before public access goes
        // off; if private access is off now, someone changed the cluster and
        // turning public off in one call could cut everyone off.
        if live.endpoint.public_access && !want.public_access && !live.endpoint.private_access {
            return Err(StepError::PrivateAccessOff(name.to_string()));
        }
        // An access entry may have gone since the plan: read them again
        // right before the call that leaves only the private path.
        if live.endpoint.public_access && !want.public_access {
            recheck_access(ctx, step, &scope, name).await?;
        }
        check_cancel(cancel)?;
        match ctx.provider.update_endpoint(&scope, name, want).await? {
            UpdateStart::Started(id) => {
                let change = Change::EndpointUpdated {
                    step_id: step.id.clone(),
                    account: step.account.clone(),
                    region: step.region.clone(),
                    cluster: name.to_string(),
                    update_id: id.clone(),
                    settings: want.clone(),
                };
                let what = format!("the endpoint is {mode}");
                return wait_started(
                    ctx, step, &scope, name, id, what, change, slot, cancel, trace,
                )
                .await;
            }
            UpdateStart::InUse(id) => {
                let reason = format!(
                    "EKS answered `ResourceInUseException`: update `{id}` is in progress on `{name}`"
                );
                wait_other(
                    ctx,
                    step,
                    &scope,
                    name,
                    Some(&id),
                    reason,
                    slot,
                    cancel,
                    trace,
                )
                .await?;
                waited = Some(id);
                rounds += 1;
            }
            UpdateStart::AlreadyConverged => {
                return Ok(Finish::converged(format!(
                    "EKS answered that the endpoint is already {mode}"
                )));
            }
        }
    }
    Err(StepError::Busy(name.to_string()))
}

/// Waits for update `id`, which this step just started, to end: `done`
/// with `change` (worded "update `ID` is `Successful`: WHAT") when it is
/// `Successful`, else the update's failure. The step's call slot is freed
/// for the wait.
#[allow(clippy::too_many_arguments)]
async fn wait_started<'a, P: Provider>(
    ctx: &'a Ctx<'a, P>,
    step: &Step,
    scope: &Scope,
    name: &str,
    id: String,
    what: String,
    change: Change,
    slot: &mut CallSlot<'a>,
    cancel: &mut watch::Receiver<bool>,
    trace: &mut Trace,
) -> Result<Finish, StepError> {
    let anchor = Instant::now();
    trace.touched(&id);
    ctx.emit(Event::UpdateStarted {
        elapsed_ms: ctx.ms(),
        step_id: step.id.clone(),
        update_id: id.clone(),
    });
    slot.release();
    let (state, _) =
        wait_update_counted(ctx, step, scope, name, &id, anchor, false, cancel).await?;
    match state.status {
        UpdateStatus::Successful => Ok(Finish::done(
            format!("update `{id}` is `Successful`: {what}"),
            Some(change),
        )),
        other => Err(StepError::UpdateFailed {
            id,
            status: wait::status_str(&other).to_string(),
            errors: aws_errors(&state.errors),
        }),
    }
}

fn aws_errors(errors: &[(String, String)]) -> String {
    if errors.is_empty() {
        return "AWS gave no reason".to_string();
    }
    errors
        .iter()
        .map(|(code, message)| format!("{code}: {message}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Waits for update `id` (started by this step when `poll_now` is false) and
/// returns its final state with the number of polls it took; timeouts and
/// interruptions become errors.
#[allow(clippy::too_many_arguments)]
async fn wait_update_counted<P: Provider>(
    ctx: &Ctx<'_, P>,
    step: &Step,
    scope: &Scope,
    name: &str,
    id: &str,
    anchor: Instant,
    poll_now: bool,
    cancel: &mut watch::Receiver<bool>,
) -> Result<(crate::provider::UpdateState, u32), StepError> {
    ctx.watching().insert(
        step.id.clone(),
        RunningUpdate {
            step_id: step.id.clone(),
            account: step.account.clone(),
            region: step.region.clone(),
            cluster: name.to_string(),
            update_id: id.to_string(),
        },
    );
    let end = wait::wait_for_update(
        ctx.provider,
        scope,
        name,
        id,
        &ctx.opts.wait,
        cancel,
        &ctx.learning,
        anchor,
        poll_now,
        |status| {
            ctx.emit(Event::UpdatePolled {
                elapsed_ms: ctx.ms(),
                step_id: step.id.clone(),
                update_id: Some(id.to_string()),
                status: status.to_string(),
            })
        },
    )
    .await;
    ctx.watching().remove(&step.id);
    match end {
        WaitEnd::Finished { value, polls } => Ok((value, polls)),
        // The configured timeout reads better than the exact time waited.
        WaitEnd::TimedOut { .. } => Err(StepError::TimedOut {
            what: format!("update `{id}` of `{name}`"),
            update_id: Some(id.to_string()),
            waited: ctx.opts.wait.timeout,
        }),
        WaitEnd::Cancelled => Err(StepError::Cancelled {
            message: format!("interrupted while waiting for update `{id}`, which goes on in AWS"),
            update_id: Some(id.to_string()),
        }),
        WaitEnd::Failed(err) => Err(err.into()),
    }
}

/// Waits for an update this step did not start (or, with no id, for the
/// cluster to leave `UPDATING`). How that update ends is not this step's
/// outcome: the step decides again afterwards.
#[allow(clippy::too_many_arguments)]
async fn wait_other<P: Provider>(
    ctx: &Ctx<'_, P>,
    step: &Step,
    scope: &Scope,
    name: &str,
    id: Option<&str>,
    reason: String,
    slot: &mut CallSlot<'_>,
    cancel: &mut watch::Receiver<bool>,
    trace: &mut Trace,
) -> Result<Option<(crate::provider::UpdateState, u32)>, StepError> {
    slot.release();
    ctx.emit(Event::WaitingForUpdate {
        elapsed_ms: ctx.ms(),
        step_id: step.id.clone(),
        update_id: id.map(str::to_string),
        reason,
    });
    match id {
        Some(id) => {
            trace.touched(id);
            let got = wait_update_counted(ctx, step, scope, name, id, Instant::now(), true, cancel)
                .await?;
            Ok(Some(got))
        }
        None => {
            let end = wait::wait_while_updating(
                ctx.provider,
                scope,
                name,
                &ctx.opts.wait,
                cancel,
                |status| {
                    ctx.emit(Event::UpdatePolled {
                        elapsed_ms: ctx.ms(),
                        step_id: step.id.clone(),
                        update_id: None,
                        status: status.to_string(),
                    })
                },
            )
            .await;
            match end {
                WaitEnd::Finished { .. } => Ok(None),
                WaitEnd::TimedOut { .. } => Err(StepError::TimedOut {
                    what: format!("the update running on `{name}`"),
                    update_id: None,
                    waited: ctx.opts.wait.timeout,
                }),
                WaitEnd::Cancelled => Err(StepError::Cancelled {
                    message: format!("interrupted while waiting for `{name}` to leave `UPDATING`"),
                    update_id: None,
                }),
                WaitEnd::Failed(err) => Err(err.into()),
            }
        }
    }
}

async fn wait_step<P: Provider>(
    ctx: &Ctx<'_, P>,
    step: &Step,
    update_id: Option<&str>,
    slot: &mut CallSlot<'_>,
    cancel: &mut watch::Receiver<bool>,
    trace: &mut Trace,
) -> Result<Finish, StepError> {
    // A step of this kind always names its cluster (`plan::step` checks it).
    let name = step.cluster.as_deref().unwrap_or_default();
    let scope = scope(step);
    let reason = match update_id {
        Some(id) => format!("update `{id}` was in progress when the plan was made"),
        None => format!("`{name}` was `UPDATING` when the plan was made"),
    };
    match wait_other(
        ctx, step, &scope, name, update_id, reason, slot, cancel, trace,
    )
    .await?
    {
        Some((state, polls)) => {
            let status = wait::status_str(&state.status);
            let tail = match state.status {
                UpdateStatus::Successful => String::new(),
                // Someone else's update failing is no failure of this apply:
                // the cluster is free again, and the endpoint step re-reads.
                _ => format!(" ({})", aws_errors(&state.errors)),
            };
            if polls <= 1 {
                Ok(Finish::converged(format!(
                    "update `{}` had already ended `{status}`{tail}",
                    state.id
                )))
            } else {
                Ok(Finish::done(
                    format!("update `{}` ended `{status}`{tail}", state.id),
                    None,
                ))
            }
        }
        None => Ok(Finish::done(
            format!("`{name}` is no longer `UPDATING`"),
            None,
        )),
    }
}

/// The declared principals of the step's cluster, checked again: each must
/// still have an access entry with an access policy or Kubernetes groups.
async fn recheck_access<P: Provider>(
    ctx: &Ctx<'_, P>,
    step: &Step,
    scope: &Scope,
    name: &str,
) -> Result<(), StepError> {
    let key = crate::desired::ClusterKey {
        account: step.account.clone(),
        region: step.region.clone(),
        name: name.to_string(),
    };
    let Some(check) = ctx.access_checks.get(&key) else {
        return Ok(());
    };
    let access = ctx
        .provider
        .read_access(scope, name, &check.principals)
        .await?;
    let mut lost = Vec::new();
    for p in &check.principals {
        let grant = |has_entry: bool| grant_commands(name, &step.region, p, has_entry);
        match access.verdict(p) {
            Some(Verdict::Policy | Verdict::GroupsOnly(_)) => {}
            Some(Verdict::NoEntry) => lost.push(format!(
                "`{p}` has no access entry on `{name}` now (it changed since the plan), so it could not use the Kubernetes API; give it one: {}",
                grant(false)
            )),
            Some(Verdict::NoPermissions) | None => lost.push(format!(
                "the access entry of `{p}` on `{name}` has neither an access policy nor Kubernetes groups now; associate one: {}",
                grant(true)
            )),
        }
    }
    if lost.is_empty() {
        Ok(())
    } else {
        Err(StepError::AccessLost(lost.join("; ")))
    }
}

/// One `AccessConfigUpdate` to `want`, after a fresh read: a cluster already
/// at (or past) that mode takes no call; updates in progress are waited for.
async fn access_config_step<'a, P: Provider>(
    ctx: &'a Ctx<'a, P>,
    step: &Step,
    want: &AuthenticationMode,
    slot: &mut CallSlot<'a>,
    cancel: &mut watch::Receiver<bool>,
    trace: &mut Trace,
) -> Result<Finish, StepError> {
    // A step of this kind always names its cluster (`plan::step` checks it).
    let name = step.cluster.as_deref().unwrap_or_default();
    let scope = scope(step);
    let mut rounds = 0;
    while rounds < MAX_ROUNDS {
        slot.hold().await;
        let live = cluster_or_error(ctx.provider.describe_cluster(&scope, name).await?, name)?;
        let now = live
            .authentication_mode
            .clone()
            .unwrap_or(AuthenticationMode::ConfigMap);
        if now.rank() >= want.rank() {
            return Ok(Finish::converged(format!(
                "the authentication mode is already `{now}`; no call made"
            )));
        }
        let running = live.updates_in_progress.first().cloned();
        if running.is_some() || live.status == ClusterStatus::Updating {
            let reason = match &running {
                Some(id) => format!(
                    "update `{id}` is in progress on `{name}` and EKS runs one update at a time"
                ),
                None => format!("`{name}` is `UPDATING` and EKS runs one update at a time"),
            };
            wait_other(
                ctx,
                step,
                &scope,
                name,
                running.as_deref(),
                reason,
                slot,
                cancel,
                trace,
            )
            .await?;
            rounds += 1;
            continue;
        }
        check_cancel(cancel)?;
        match ctx
            .provider
            .update_access_config(&scope, name, want)
            .await?
        {
            UpdateStart::Started(id) => {
                let change = Change::AccessConfigUpdated {
                    step_id: step.id.clone(),
                    account: step.account.clone(),
                    region: step.region.clone(),
                    cluster: name.to_string(),
                    update_id: id.clone(),
                    authentication_mode: want.clone(),
                };
                let what = format!("the authentication mode is `{want}`");
                return wait_started(
                    ctx, step, &scope, name, id, what, change, slot, cancel, trace,
                )
                .await;
            }
            UpdateStart::InUse(id) => {
                let reason = format!(
                    "EKS answered `ResourceInUseException`: update `{id}` is in progress on `{name}`"
                );
                wait_other(
                    ctx,
                    step,
                    &scope,
                    name,
                    Some(&id),
                    reason,
                    slot,
                    cancel,
                    trace,
                )
                .await?;
                rounds += 1;
            }
            UpdateStart::AlreadyConverged => {
                return Ok(Finish::converged(format!(
                    "EKS answered that the authentication mode is already `{want}`"
                )));
            }
        }
    }
    Err(StepError::Busy(name.to_string()))
}
