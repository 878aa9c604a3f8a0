//! Renders an [`ApplyReport`] as the text a person reads when an apply
//! ends: each cluster that needs attention with its steps, one line per
//! cluster that converged, what changed in AWS, the updates still running
//! there, and a last summary line.
//!
//! Pure formatting: nothing here decides an outcome, and nothing prints; the
//! caller chooses the stream and whether colour is wanted.

use std::fmt::Write as _;

use super::paint;
use super::progress::counts_phrase;
use crate::event::StepOutcome;
use crate::report::{ApplyReport, Change, ClusterOutcome};
use crate::text::{mode_name, string_list};

fn outcome_color(outcome: StepOutcome) -> &'static str {
    match outcome {
        StepOutcome::Done => "32",
        StepOutcome::AlreadyConverged => "2",
        StepOutcome::Failed | StepOutcome::Refused | StepOutcome::TimedOut => "31",
        StepOutcome::Skipped | StepOutcome::Cancelled | StepOutcome::NotStarted => "33",
    }
}

fn cluster_color(outcome: ClusterOutcome) -> &'static str {
    match outcome {
        ClusterOutcome::Done => "32",
        ClusterOutcome::AlreadyConverged => "2",
        ClusterOutcome::Failed
        | ClusterOutcome::Refused
        | ClusterOutcome::TimedOut
        | ClusterOutcome::Blocked => "31",
        ClusterOutcome::Cancelled | ClusterOutcome::Skipped | ClusterOutcome::NotStarted => "33",
    }
}

/// The cluster's own prefix in step ids: `[ACCOUNT/]REGION/NAME`.
fn id_prefix(key: &crate::desired::ClusterKey) -> String {
    match &key.account {
        Some(acc) => format!("{acc}/{}/{}", key.region, key.name),
        None => format!("{}/{}", key.region, key.name),
    }
}

/// The last line: `Apply complete: ...` or `Apply failed: ...`.
pub fn summary_line(report: &ApplyReport) -> String {
    if let Some(err) = &report.invalid_plan {
        return format!("Apply failed: the plan is invalid: {err}");
    }
    let c = &report.counts;
    if report.success() {
        if c.total() == 0 {
            return "Apply complete: no steps to run".to_string();
        }
        return format!(
            "Apply complete: {} done, {} already converged, 0 failed",
            if c.done == 1 {
                "1 step".to_string()
            } else {
                format!("{} steps", c.done)
            },
            c.already_converged
        );
    }
    let verdict = if report.interrupted {
        "Apply interrupted"
    } else {
        "Apply failed"
    };
    format!("{verdict}: {}", counts_phrase(c))
}

/// The final report. Colour only when `color`.
pub fn render_report(report: &ApplyReport, color: bool) -> String {
    let mut out = String::new();
    for cluster in &report.clusters {
        let title = format!("{}: {}", id_prefix(&cluster.key), cluster.outcome.as_str());
        let _ = writeln!(
            out,
            "{}",
            paint(
                color,
                &format!("1;{}", cluster_color(cluster.outcome)),
                &title
            )
        );
        match cluster.outcome {
            // A converged cluster needs no detail: the changes list says
            // what was done.
            ClusterOutcome::Done | ClusterOutcome::AlreadyConverged => continue,
            ClusterOutcome::Blocked => {
                let _ = writeln!(out, "    {}", cluster.message);
                continue;
            }
            _ => {}
        }
        let prefix = format!("{}/", id_prefix(&cluster.key));
        for id in &cluster.steps {
            let Some(step) = report.step(id) else {
                continue;
            };
            let short = id.strip_prefix(&prefix).unwrap_or(id);
            let word = format!("{}:", step.outcome.as_str());
            let outcome_prefix = format!("{}: ", step.outcome.as_str());
            let message = step
                .message
                .strip_prefix(&outcome_prefix)
                .unwrap_or(&step.message);
            let _ = writeln!(
                out,
                "    {short}  {} {message}",
                paint(color, outcome_color(step.outcome), &word)
            );
        }
    }

    if !report.changes.is_empty() {
        let _ = writeln!(out, "\n{}", paint(color, "1", "Changed in AWS:"));
        for change in &report.changes {
            let line = match change {
                Change::EndpointUpdated {
                    account,
                    region,
                    cluster,
                    update_id,
                    settings,
                    ..
                } => {
                    let mut s = format!(
                        "{}{region}/{cluster}: update `{update_id}` made the endpoint {}",
                        account
                            .as_ref()
                            .map(|a| format!("{a}/"))
                            .unwrap_or_default(),
                        mode_name(settings.public_access, settings.private_access)
                    );
                    if let Some(cidrs) = &settings.public_access_cidrs {
                        let _ = write!(s, ", public CIDRs {}", string_list(cidrs));
                    }
                    s
                }
                Change::VpcAttributeEnabled {
                    account,
                    region,
                    vpc_id,
                    attribute,
                    ..
                } => format!(
                    "{}{region}/{vpc_id}: `{attribute}` turned on",
                    account
                        .as_ref()
                        .map(|a| format!("{a}/"))
                        .unwrap_or_default()
                ),
                Change::HttpsIngressAdded {
                    account,
                    region,
                    group_id,
                    sources,
                    ..
                } => {
                    // Security groups sort before CIDRs in the set.
                    let list: Vec<String> = sources.iter().map(|s| format!("`{s}`")).collect();
                    format!(
                        "{}{region}/{group_id}: TCP 443 ingress added from {}",
                        account
                            .as_ref()
                            .map(|a| format!("{a}/"))
                            .unwrap_or_default(),
                        list.join(", ")
                    )
                }
                Change::AccessConfigUpdated {
                    account,
                    region,
                    cluster,
                    update_id,
                    authentication_mode,
                    ..
                } => format!(
                    "{}{region}/{cluster}: update `{update_id}` set the authentication mode to `{authentication_mode}`",
                    account
                        .as_ref()
                        .map(|a| format!("{a}/"))
                        .unwrap_or_default()
                ),
                Change::HttpsIngressRevoked {
                    account,
                    region,
                    group_id,
                    sources,
                    ..
                } => {
                    let list: Vec<String> = sources.iter().map(|s| format!("`{s}`")).collect();
                    format!(
                        "{}{region}/{group_id}: TCP 443 ingress revoked from {}",
                        account
                            .as_ref()
                            .map(|a| format!("{a}/"))
                            .unwrap_or_default(),
                        list.join(", ")
                    )
                }
            };
            let _ = writeln!(out, "    {line}");
        }
    }

    if !report.updates_still_running.is_empty() {
        let _ = writeln!(out, "\n{}", paint(color, "1", "Still running in AWS:"));
        for u in &report.updates_still_running {
            let _ = writeln!(
                out,
                "    {}{}/{}: update `{}`",
                u.account
                    .as_ref()
                    .map(|a| format!("{a}/"))
                    .unwrap_or_default(),
                u.region,
                u.cluster,
                u.update_id
            );
        }
        let _ = writeln!(
            out,
            "{} run `eksgate apply` again to wait for them instead of starting new ones",
            paint(color, "1;36", "hint:")
        );
    }

    if !report.held.is_empty() {
        let _ = writeln!(out, "\n{}", paint(color, "1", "Not started:"));
        for held in &report.held {
            let _ = writeln!(out, "    {} held: {}", held.label(), held.reason);
            let _ = writeln!(
                out,
                "        {}",
                super::progress::cluster_names(&held.clusters)
            );
        }
        let _ = writeln!(
            out,
            "{} fix what failed and run `eksgate apply` again: converged clusters make no call; `--max-failures N` lets a rollout go on past N failed clusters",
            paint(color, "1;36", "hint:")
        );
    }

    if !out.is_empty() {
        out.push('\n');
    }
    let summary = summary_line(report);
    let code = if report.success() { "1;32" } else { "1;31" };
    let _ = writeln!(out, "{}", paint(color, code, &summary));
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::apply::fake::{self, want, FakeAws};
    use crate::apply::{apply, cancel_signal, ApplyOptions};
    use crate::desired::DesiredCluster;

    /// Plans, lets `after_plan` change the world, then applies.
    async fn report_of(
        aws: &FakeAws,
        wants: Vec<DesiredCluster>,
        opts: ApplyOptions,
        after_plan: impl FnOnce(&FakeAws),
    ) -> ApplyReport {
        fake::plan_and_apply(aws, wants, opts, after_plan).await.0
    }

    fn opts() -> ApplyOptions {
        fake::one_at_a_time()
    }

    #[tokio::test]
    async fn a_successful_apply() {
        let aws = FakeAws::new()
            .cluster("a", fake::public())
            .vpc("vpc-a", false, true)
            .cluster("c", fake::public());
        let report = report_of(
            &aws,
            vec![
                want("a", fake::private(), &["10.0.0.0/8"]),
                want("c", fake::both(), &[]),
            ],
            opts(),
            // Someone else makes `c`'s change between plan and apply.
            |aws| aws.edit("c", |c| c.endpoint = fake::both()),
        )
        .await;
        assert!(report.success());
        insta::assert_snapshot!(render_report(&report, false), @r"
        eu-west-1/a: done
        eu-west-1/c: already converged

        Changed in AWS:
            eu-west-1/vpc-a: `enableDnsSupport` turned on
            eu-west-1/sg-a: TCP 443 ingress added from `10.0.0.0/8`
            eu-west-1/a: update `upd-1` made the endpoint public and private
            eu-west-1/a: update `upd-2` made the endpoint private only

        Apply complete: 4 steps done, 1 already converged, 0 failed
        ");
    }

    #[tokio::test]
    async fn a_failed_apply() {
        let aws = FakeAws::new()
            .cluster("a", fake::public())
            .cluster("b", fake::public())
            .cluster("d", fake::public());
        aws.edit("a", |c| {
            c.fail_updates = Some((
                "ClusterUnreachable".into(),
                "the control plane could not be reached".into(),
            ))
        });
        let report = report_of(
            &aws,
            vec![
                want("a", fake::private(), &["10.0.0.0/8"]),
                want("b", fake::both(), &[]),
                want("d", fake::private(), &[]),
            ],
            opts(),
            |_| {},
        )
        .await;
        assert!(!report.success());
        insta::assert_snapshot!(render_report(&report, false), @r"
        eu-west-1/a: failed
            eu-west-1/sg-a/https_ingress  done: TCP 443 ingress added to `sg-a`
            endpoint.1  failed: update `upd-1` ended `Failed`: ClusterUnreachable: the control plane could not be reached
            endpoint.2  skipped: `eu-west-1/a/endpoint.1` failed
        eu-west-1/b: done
        eu-west-1/d: refused
            endpoint.1  done: update `upd-3` is `Successful`: the endpoint is public and private
            endpoint.2  refused: this step turns public access off while the manifest declares no `private_access_from`, which can lock you out of the cluster; apply with `--allow-lockout` to run it anyway

        Changed in AWS:
            eu-west-1/sg-a: TCP 443 ingress added from `10.0.0.0/8`
            eu-west-1/b: update `upd-2` made the endpoint public and private
            eu-west-1/d: update `upd-3` made the endpoint public and private

        Apply failed: 1 failed, 1 refused, 1 skipped, 3 done
        ");
    }

    #[tokio::test]
    async fn an_interrupted_apply_lists_the_updates_still_running() {
        let aws = FakeAws::new()
            .cluster("a", fake::public())
            .cluster("b", fake::public());
        aws.edit("a", |c| c.update_duration = Duration::from_secs(60));
        let plan = fake::plan(
            &aws,
            vec![want("a", fake::both(), &[]), want("b", fake::both(), &[])],
        );
        let (tx, _rx) = crate::channel::channel();
        let (cancel, cancel_rx) = cancel_signal();
        let o = opts();
        let (report, ()) = tokio::join!(apply(&plan, &aws, &o, tx, cancel_rx), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = cancel.send(true);
        });
        insta::assert_snapshot!(render_report(&report, false), @r"
        eu-west-1/a: cancelled
            endpoint.1  cancelled: interrupted while waiting for update `upd-1`, which goes on in AWS
        eu-west-1/b: not started
            endpoint.1  not started: the apply was interrupted

        Still running in AWS:
            eu-west-1/a: update `upd-1`
        hint: run `eksgate apply` again to wait for them instead of starting new ones

        Apply interrupted: 1 cancelled, 1 not started, 0 done
        ");
    }

    #[tokio::test]
    async fn a_held_wave_says_why_and_which_clusters_did_not_start() {
        let aws = FakeAws::new()
            .cluster("a", fake::public())
            .cluster("b", fake::public())
            .cluster("c", fake::public());
        aws.edit("a", |c| {
            c.fail_updates = Some(("AccessDenied".into(), "no route53".into()))
        });
        let mut b = want("b", fake::both(), &[]);
        b.wave = 1;
        let mut c = want("c", fake::both(), &[]);
        c.wave = 1;
        let report = report_of(
            &aws,
            vec![want("a", fake::both(), &[]), b, c],
            opts(),
            |_| {},
        )
        .await;
        insta::assert_snapshot!(render_report(&report, false), @r"
        eu-west-1/a: failed
            endpoint.1  failed: update `upd-1` ended `Failed`: AccessDenied: no route53
        eu-west-1/b: not started
            endpoint.1  not started: wave 1 held: 1 cluster failed in wave 0, more than `--max-failures 0`
        eu-west-1/c: not started
            endpoint.1  not started: wave 1 held: 1 cluster failed in wave 0, more than `--max-failures 0`

        Not started:
            wave 1 held: 1 cluster failed in wave 0, more than `--max-failures 0`
                `eu-west-1/b` and `eu-west-1/c`
        hint: fix what failed and run `eksgate apply` again: converged clusters make no call; `--max-failures N` lets a rollout go on past N failed clusters

        Apply failed: 1 failed, 2 not started, 0 done
        ");
    }

    #[tokio::test]
    async fn colour_only_when_asked() {
        let aws = FakeAws::new().cluster("a", fake::public());
        let report = report_of(&aws, vec![want("a", fake::both(), &[])], opts(), |_| {}).await;
        assert!(!render_report(&report, false).contains('\x1b'));
        assert!(render_report(&report, true).contains("\x1b[1;32mApply complete"));
    }
}
