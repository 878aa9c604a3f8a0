//! The apply engine against an in-memory provider.

use std::time::Duration;

use std::collections::BTreeSet;

use super::fake::{both, private, public, want, FakeAws, REGION};
use super::*;

use super::fake::EndpointAccess;
use crate::desired::DesiredCluster;

fn plan_for(fake: &FakeAws, wants: Vec<DesiredCluster>) -> Plan {
    let plan = super::fake::plan(fake, wants);
    // The fake declares no `private_access_principals`: public access going
    // off warns of that (plan::access), and nothing else may be found.
    let other: Vec<_> = plan
        .findings
        .iter()
        .filter(|f| f.code != crate::plan::FindingCode::NoPrivateAccessPrincipals)
        .collect();
    assert!(other.is_empty(), "{other:?}");
    plan
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        parallelism: 10,
        max_updates: 0,
        fail_fast: false,
        allow_lockout: false,
        max_failures: 0,
        canary: 0,
        wait: WaitOptions {
            first_interval: Duration::from_millis(5),
            max_interval: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
        },
    }
}

/// Applies and collects every event; cancels after `cancel_after` if set.
async fn run_with(
    plan: &Plan,
    fake: &FakeAws,
    opts: ApplyOptions,
    cancel_after: Option<Duration>,
) -> (ApplyReport, Vec<Event>) {
    let (tx, rx) = crate::channel::channel();
    let (cancel_tx, cancel_rx) = cancel_signal();
    let canceller = async {
        if let Some(d) = cancel_after {
            tokio::time::sleep(d).await;
            let _ = cancel_tx.send(true);
        }
    };
    let (report, (), events) = tokio::join!(
        apply(plan, fake, &opts, tx, cancel_rx),
        canceller,
        super::fake::collect(rx)
    );
    (report, events)
}

async fn run(plan: &Plan, fake: &FakeAws, opts: ApplyOptions) -> (ApplyReport, Vec<Event>) {
    run_with(plan, fake, opts, None).await
}

fn outcomes(report: &ApplyReport) -> Vec<(String, StepOutcome)> {
    report
        .steps
        .iter()
        .map(|s| (s.id.clone(), s.outcome))
        .collect()
}

fn ids(v: &[(&str, StepOutcome)]) -> Vec<(String, StepOutcome)> {
    v.iter().map(|(i, o)| (i.to_string(), *o)).collect()
}

use StepOutcome::*;

/// Every step gets exactly one `step_finished`, and events come in time
/// order between `apply_started` and `apply_finished`.
fn check_event_stream(report: &ApplyReport, events: &[Event]) {
    assert!(matches!(events.first(), Some(Event::ApplyStarted { .. })));
    assert!(matches!(events.last(), Some(Event::ApplyFinished { .. })));
    assert!(events
        .windows(2)
        .all(|w| w[0].elapsed_ms() <= w[1].elapsed_ms()));
    for s in &report.steps {
        let finished: Vec<&Event> = events
            .iter()
            .filter(|e| matches!(e, Event::StepFinished { step_id, .. } if *step_id == s.id))
            .collect();
        assert_eq!(finished.len(), 1, "{}", s.id);
    }
}

/// Our updates of each cluster never overlap, and an update that turns
/// public access off starts only after every earlier update of that
/// cluster ended `Successful`.
fn check_safe_order(fake: &FakeAws, clusters: &[&str]) {
    for name in clusters {
        let ups: Vec<_> = fake
            .updates_of(name)
            .into_iter()
            .filter(|u| u.ours)
            .collect();
        for (k, u) in ups.iter().enumerate() {
            for earlier in &ups[..k] {
                assert!(
                    earlier.ends_at() <= u.started,
                    "{name}: overlapping updates"
                );
                if let Some((t, _)) = &u.target {
                    if !t.public {
                        assert!(earlier.fails.is_none(), "{name}: after a failed update");
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn steps_run_in_a_safe_order() {
    struct Case {
        name: &'static str,
        fake: FakeAws,
        wants: Vec<DesiredCluster>,
        outcomes: Vec<(&'static str, StepOutcome)>,
        end: EndpointAccess,
    }
    let cases = [
        Case {
            name: "public to private, DNS off, a bastion",
            fake: FakeAws::new()
                .cluster("a", public())
                .vpc("vpc-a", false, false),
            wants: vec![want("a", private(), &["sg-bastion"])],
            outcomes: vec![
                ("eu-west-1/vpc-a/dns_support", Done),
                ("eu-west-1/vpc-a/dns_hostnames", Done),
                ("eu-west-1/sg-a/https_ingress", Done),
                ("eu-west-1/a/endpoint.1", Done),
                ("eu-west-1/a/endpoint.2", Done),
            ],
            end: private(),
        },
        Case {
            name: "private to public",
            fake: FakeAws::new().cluster("b", private()),
            wants: vec![want("b", public(), &[])],
            outcomes: vec![
                ("eu-west-1/b/endpoint.1", Done),
                ("eu-west-1/b/endpoint.2", Done),
            ],
            end: public(),
        },
        Case {
            name: "public to both",
            fake: FakeAws::new().cluster("c", public()),
            wants: vec![want("c", both(), &[])],
            outcomes: vec![("eu-west-1/c/endpoint.1", Done)],
            end: both(),
        },
    ];
    for case in cases {
        let plan = plan_for(&case.fake, case.wants.clone());
        let (report, events) = run(&plan, &case.fake, opts()).await;
        let name = case.name;
        let mut got = outcomes(&report);
        got.sort();
        let mut expected = ids(&case.outcomes);
        expected.sort();
        assert_eq!(got, expected, "{name}");
        assert!(report.success(), "{name}");
        assert_eq!(case.fake.violations(), Vec::<String>::new(), "{name}");
        let cluster = case.wants[0].key.name.as_str();
        assert_eq!(case.fake.endpoint_of(cluster), case.end, "{name}");
        check_safe_order(&case.fake, &[cluster]);
        check_event_stream(&report, &events);
        // DNS hostnames never before DNS support.
        let vpc_calls: Vec<String> = case
            .fake
            .calls_of("ModifyVpcAttribute")
            .into_iter()
            .map(|c| c.detail)
            .collect();
        if !vpc_calls.is_empty() {
            assert_eq!(vpc_calls, vec!["Support=true", "Hostnames=true"], "{name}");
        }
    }
}

/// The most updates in flight at once in the fake.
fn max_updates_at_once(fake: &FakeAws, names: &[String]) -> usize {
    let mut edges: Vec<(std::time::Instant, i32)> = names
        .iter()
        .flat_map(|c| fake.updates_of(c))
        .flat_map(|u| [(u.started, 1), (u.ends_at(), -1)])
        .collect();
    // An update ending at the instant another starts did not overlap it.
    edges.sort();
    let (mut now, mut max) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        max = max.max(now);
    }
    usize::try_from(max).unwrap_or(0)
}

#[tokio::test]
async fn parallelism_bounds_calls_and_max_updates_bounds_updates() {
    // (parallelism, max_updates, clusters, calls at once, updates at once).
    // A step waiting for its update lets its call slot go, so even one
    // slot gets every cluster's update going; `--max-updates` is what
    // bounds the updates.
    let cases = [
        (1, 0, 4, 1, 4),
        (2, 0, 4, 2, 4),
        (8, 0, 3, 3, 3),
        (0, 0, 2, 1, 2),
        (1, 1, 4, 1, 1),
        (4, 2, 5, 2, 2),
        (2, 3, 6, 2, 3),
    ];
    for (parallelism, max_updates, n, calls, updates) in cases {
        let case = format!("parallelism {parallelism}, max_updates {max_updates}");
        let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let mut fake = FakeAws::new();
        for name in &names {
            fake = fake.cluster(name, public());
        }
        for name in &names {
            fake.edit(name, |c| c.update_duration = Duration::from_millis(120));
        }
        let plan = plan_for(&fake, names.iter().map(|c| want(c, both(), &[])).collect());
        let (report, events) = run(
            &plan,
            &fake,
            ApplyOptions {
                parallelism,
                max_updates,
                ..opts()
            },
        )
        .await;
        assert!(report.success(), "{case}");
        assert_eq!(fake.max_in_flight(), calls, "calls at once, {case}");
        assert_eq!(
            max_updates_at_once(&fake, &names),
            updates,
            "updates at once, {case}"
        );
        check_event_stream(&report, &events);
    }
}

#[tokio::test]
async fn free_slots_go_round_robin_over_regions() {
    // The plan lists every `eu-west-1` step before the `us-east-1` ones;
    // with two slots, the second step to start is in the other region,
    // so both regions' API rates are in use from the start.
    let names = ["a0", "a1", "a2", "b0", "b1", "b2"];
    let mut fake = FakeAws::new();
    for n in names {
        fake = fake.cluster(n, both());
    }
    let wants = names
        .iter()
        .map(|n| {
            let mut d = want(n, public(), &[]);
            if n.starts_with('b') {
                d.key.region = "us-east-1".into();
            }
            d
        })
        .collect();
    let plan = plan_for(&fake, wants);
    let (report, events) = run(
        &plan,
        &fake,
        ApplyOptions {
            parallelism: 2,
            max_updates: 2,
            ..opts()
        },
    )
    .await;
    assert!(report.success());
    let regions: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::StepStarted { region, .. } => Some(region.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(regions.len(), 6);
    assert_eq!(regions[..2], [REGION, "us-east-1"], "{regions:?}");
    check_event_stream(&report, &events);
}

#[tokio::test]
async fn a_failed_update_skips_its_dependents_and_nothing_else() {
    let fake = FakeAws::new().cluster("a", public()).cluster("b", public());
    fake.edit("a", |c| {
        c.fail_updates = Some((
            "ClusterUnreachable".into(),
            "the control plane could not be reached".into(),
        ))
    });
    let plan = plan_for(
        &fake,
        vec![
            want("a", private(), &["10.0.0.0/8"]),
            want("b", both(), &[]),
        ],
    );
    let (report, events) = run(&plan, &fake, opts()).await;
    let mut got = outcomes(&report);
    got.sort();
    assert_eq!(
        got,
        ids(&[
            ("eu-west-1/a/endpoint.1", Failed),
            ("eu-west-1/a/endpoint.2", Skipped),
            ("eu-west-1/b/endpoint.1", Done),
            ("eu-west-1/sg-a/https_ingress", Done),
        ])
    );
    let failed = report.step("eu-west-1/a/endpoint.1").unwrap();
    // Update ids depend on which cluster called first.
    assert_eq!(
        failed.message.replace(|c: char| c.is_ascii_digit(), "N"),
        "update `upd-N` ended `Failed`: ClusterUnreachable: the control plane could not be reached"
    );
    let skipped = report.step("eu-west-1/a/endpoint.2").unwrap();
    assert_eq!(
        skipped.blocked_by.as_deref(),
        Some("eu-west-1/a/endpoint.1")
    );
    assert_eq!(skipped.message, "skipped: `eu-west-1/a/endpoint.1` failed");
    // What changed: b's update and a's rules; a's failed update is no change.
    let changed: Vec<&str> = report
        .changes
        .iter()
        .map(|c| match c {
            Change::EndpointUpdated { step_id, .. }
            | Change::VpcAttributeEnabled { step_id, .. }
            | Change::HttpsIngressAdded { step_id, .. }
            | Change::AccessConfigUpdated { step_id, .. } => step_id.as_str(),
            Change::HttpsIngressRevoked { step_id, .. } => step_id.as_str(),
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        changed,
        vec!["eu-west-1/b/endpoint.1", "eu-west-1/sg-a/https_ingress"]
    );
    let by_cluster: Vec<(&str, ClusterOutcome, Option<&str>)> = report
        .clusters
        .iter()
        .map(|c| (c.key.name.as_str(), c.outcome, c.step_id.as_deref()))
        .collect();
    assert_eq!(
        by_cluster,
        vec![
            ("a", ClusterOutcome::Failed, Some("eu-west-1/a/endpoint.1")),
            ("b", ClusterOutcome::Done, None),
        ]
    );
    assert!(!report.success());
    assert_eq!(fake.endpoint_of("a"), public(), "a stays reachable");
    assert_eq!(fake.violations(), Vec::<String>::new());
    check_event_stream(&report, &events);
}

#[tokio::test]
async fn fail_fast_starts_no_new_step_after_a_failure() {
    let fake = FakeAws::new()
        .cluster("a", public())
        .cluster("b", public())
        .cluster("c", public());
    let plan = plan_for(
        &fake,
        vec![
            want("a", both(), &[]),
            want("b", both(), &[]),
            want("c", both(), &[]),
        ],
    );
    for (fail_fast, expected) in [
        (true, [Failed, NotStarted, NotStarted]),
        (false, [Failed, Done, Done]),
    ] {
        let fake = FakeAws::new()
            .cluster("a", public())
            .cluster("b", public())
            .cluster("c", public());
        fake.edit("a", |c| c.fail_updates = Some(("E".into(), "boom".into())));
        let (report, events) = run(
            &plan,
            &fake,
            // One update at a time, so `b` and `c` are still waiting
            // for their turn when `a` fails.
            ApplyOptions {
                parallelism: 1,
                max_updates: 1,
                fail_fast,
                ..opts()
            },
        )
        .await;
        let got: Vec<StepOutcome> = report.steps.iter().map(|s| s.outcome).collect();
        assert_eq!(got, expected, "fail_fast {fail_fast}");
        if fail_fast {
            assert_eq!(
                report.stopped_after.as_deref(),
                Some("eu-west-1/a/endpoint.1")
            );
            assert_eq!(
                report.steps[1].message,
                "not started: `--fail-fast` stopped the apply after `eu-west-1/a/endpoint.1`"
            );
            assert_eq!(fake.calls_of("UpdateClusterConfig").len(), 1);
        }
        check_event_stream(&report, &events);
    }
}

#[tokio::test]
async fn steps_re_read_before_calling() {
    enum Twist {
        /// Someone made the change after the plan.
        AlreadyDone,
        /// AWS started an update of its own after the plan.
        AwsUpdate,
        /// AWS started one between the re-read and the call.
        InUseRace,
        /// An update was running when the plan was made (a wait step).
        PlannedWait,
    }
    // (twist, outcome of endpoint.1, UpdateClusterConfig calls, waited-for id)
    let cases = [
        (Twist::AlreadyDone, AlreadyConverged, 0, None),
        (Twist::AwsUpdate, Done, 1, Some("aws-1")),
        (Twist::InUseRace, Done, 2, Some("aws-race-a")),
        (Twist::PlannedWait, Done, 1, Some("aws-1")),
    ];
    for (twist, outcome, calls, waited) in cases {
        let fake = FakeAws::new().cluster("a", public());
        if let Twist::PlannedWait = twist {
            fake.aws_update("a", "aws-1", Duration::from_millis(40));
        }
        let plan = plan_for(&fake, vec![want("a", both(), &[])]);
        match twist {
            Twist::AlreadyDone => fake.edit("a", |c| c.endpoint = both()),
            Twist::AwsUpdate => fake.aws_update("a", "aws-1", Duration::from_millis(40)),
            Twist::InUseRace => fake.edit("a", |c| {
                c.race_next_update = Some(Duration::from_millis(40))
            }),
            Twist::PlannedWait => {}
        }
        let (report, events) = run(&plan, &fake, opts()).await;
        let step = report.step("eu-west-1/a/endpoint.1").unwrap();
        assert_eq!(step.outcome, outcome, "{}", step.message);
        let update_calls = fake.calls_of("UpdateClusterConfig");
        assert_eq!(update_calls.len(), calls);
        assert_eq!(fake.violations(), Vec::<String>::new());
        assert!(report.success());
        if let Some(id) = waited {
            assert!(events.iter().any(|e| matches!(
                e,
                Event::WaitingForUpdate { update_id: Some(u), .. } if u == id
            )));
            // The successful call came after the awaited update ended.
            let theirs = fake
                .updates_of("a")
                .into_iter()
                .find(|u| u.id == id)
                .unwrap();
            let last = update_calls.last().unwrap();
            assert!(last.at >= fake.at(theirs.ends_at()), "called during `{id}`");
        }
        if let Twist::PlannedWait = twist {
            assert_eq!(report.step("eu-west-1/a/wait.aws-1").unwrap().outcome, Done);
        }
        check_event_stream(&report, &events);
    }
}

#[tokio::test]
async fn a_lockout_risk_is_refused_without_allow_lockout() {
    for (allow_lockout, second) in [(false, Refused), (true, Done)] {
        let fake = FakeAws::new().cluster("a", public());
        let plan = plan_for(&fake, vec![want("a", private(), &[])]);
        assert!(plan.steps[1].lockout_risk);
        let (report, events) = run(
            &plan,
            &fake,
            ApplyOptions {
                allow_lockout,
                ..opts()
            },
        )
        .await;
        assert_eq!(
            outcomes(&report),
            ids(&[
                ("eu-west-1/a/endpoint.1", Done),
                ("eu-west-1/a/endpoint.2", second)
            ])
        );
        assert_eq!(report.success(), allow_lockout);
        if !allow_lockout {
            assert!(report.steps[1].message.contains("`--allow-lockout`"));
            assert_eq!(fake.endpoint_of("a"), both());
            assert_eq!(report.clusters[0].outcome, ClusterOutcome::Refused);
        }
        check_event_stream(&report, &events);
    }
}

#[tokio::test]
async fn a_slow_update_times_out_and_skips_its_dependents() {
    let fake = FakeAws::new().cluster("a", public());
    fake.edit("a", |c| c.update_duration = Duration::from_secs(60));
    let plan = plan_for(&fake, vec![want("a", private(), &["10.0.0.0/8"])]);
    let mut o = opts();
    o.wait.timeout = Duration::from_millis(100);
    let began = std::time::Instant::now();
    let (report, events) = run(&plan, &fake, o).await;
    assert!(began.elapsed() < Duration::from_secs(2));
    let step = report.step("eu-west-1/a/endpoint.1").unwrap();
    assert_eq!(step.outcome, TimedOut);
    let message = step.message.replace(|c: char| c.is_ascii_digit(), "N");
    assert_eq!(
        message,
        "update `upd-N` of `a` did not finish within NNNms; the update may still finish in AWS: running `eksgate apply` again resumes, waiting for the running update instead of starting another"
    );
    assert_eq!(
        report.step("eu-west-1/a/endpoint.2").unwrap().outcome,
        Skipped
    );
    assert_eq!(
        report
            .updates_still_running
            .iter()
            .map(|u| u.update_id.as_str())
            .collect::<Vec<_>>(),
        vec!["upd-1"]
    );
    assert_eq!(report.clusters[0].outcome, ClusterOutcome::TimedOut);
    check_event_stream(&report, &events);
}

#[tokio::test]
async fn cancel_stops_waits_and_starts_nothing_new() {
    let fake = FakeAws::new().cluster("a", public()).cluster("b", public());
    fake.edit("a", |c| c.update_duration = Duration::from_secs(60));
    let plan = plan_for(&fake, vec![want("a", both(), &[]), want("b", both(), &[])]);
    let began = std::time::Instant::now();
    let (report, events) = run_with(
        &plan,
        &fake,
        ApplyOptions {
            max_updates: 1,
            ..opts()
        },
        Some(Duration::from_millis(60)),
    )
    .await;
    assert!(began.elapsed() < Duration::from_secs(2));
    assert_eq!(
        outcomes(&report),
        ids(&[
            ("eu-west-1/a/endpoint.1", Cancelled),
            ("eu-west-1/b/endpoint.1", NotStarted)
        ])
    );
    assert!(report.interrupted);
    let running = vec![RunningUpdate {
        step_id: "eu-west-1/a/endpoint.1".into(),
        account: None,
        region: REGION.into(),
        cluster: "a".into(),
        update_id: "upd-1".into(),
    }];
    assert_eq!(report.updates_still_running, running);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Interrupted { running_updates, .. } if *running_updates == running
    )));
    assert_eq!(
        report.steps[0].message,
        "interrupted while waiting for update `upd-1`, which goes on in AWS"
    );
    assert_eq!(
        fake.calls_of("UpdateClusterConfig").len(),
        1,
        "b never called"
    );
    assert!(!report.success());
    check_event_stream(&report, &events);
}

#[tokio::test]
async fn cancel_while_waiting_for_an_aws_update_makes_no_call() {
    let fake = FakeAws::new().cluster("a", public());
    let plan = plan_for(&fake, vec![want("a", both(), &[])]);
    fake.aws_update("a", "aws-1", Duration::from_secs(60));
    let (report, events) = run_with(&plan, &fake, opts(), Some(Duration::from_millis(40))).await;
    assert_eq!(
        outcomes(&report),
        ids(&[("eu-west-1/a/endpoint.1", Cancelled)])
    );
    let still: Vec<&str> = report
        .updates_still_running
        .iter()
        .map(|u| u.update_id.as_str())
        .collect();
    assert_eq!(still, vec!["aws-1"]);
    assert!(fake.calls_of("UpdateClusterConfig").is_empty());
    check_event_stream(&report, &events);
}

#[tokio::test]
async fn polls_stay_few_for_a_short_update() {
    // D = 100ms, first interval D/10: about 10 polls.
    let fake = FakeAws::new().cluster("a", public());
    fake.edit("a", |c| c.update_duration = Duration::from_millis(100));
    let plan = plan_for(&fake, vec![want("a", both(), &[])]);
    let mut o = opts();
    o.wait.first_interval = Duration::from_millis(10);
    let (report, _) = run(&plan, &fake, o).await;
    assert!(report.success());
    let polls = fake.calls_of("DescribeUpdate").len();
    assert!((5..=11).contains(&polls), "{polls} polls");
}

/// A view that reads nothing while updates are polled holds a queue bounded
/// by the plan, not by the number of polls (an unbounded channel would hold
/// one event per poll).
#[tokio::test]
async fn a_view_that_reads_nothing_holds_a_bounded_queue() {
    let fake = FakeAws::new().cluster("a", public()).cluster("b", public());
    for name in ["a", "b"] {
        fake.edit(name, |c| c.update_duration = Duration::from_millis(400));
    }
    let plan = plan_for(
        &fake,
        vec![want("a", private(), &[]), want("b", both(), &[])],
    );
    let mut o = opts();
    o.allow_lockout = true;
    o.wait.first_interval = Duration::from_millis(2);
    o.wait.max_interval = Duration::from_millis(2);
    let (tx, rx) = crate::channel::channel();
    let (_cancel, cancel_rx) = cancel_signal();
    let report = apply(&plan, &fake, &o, tx, cancel_rx).await;
    assert!(report.success(), "{:?}", report.steps);
    let polls = fake.calls_of("DescribeUpdate").len();
    assert!(polls > 100, "only {polls} polls: the test proves nothing");
    // Per step: started, update started, one poll, finished; plus the
    // apply's own two events.
    let bound = 4 * plan.steps.len() + 2;
    assert!(
        rx.len() <= bound,
        "{} events queued for {polls} polls",
        rx.len()
    );
    assert!(rx.coalesced() as usize + rx.len() > polls);
}

fn in_wave(mut d: DesiredCluster, wave: u32) -> DesiredCluster {
    d.wave = wave;
    d
}

/// When each cluster's first update started and its last one ended.
fn span(fake: &FakeAws, name: &str) -> (std::time::Instant, std::time::Instant) {
    let ups: Vec<_> = fake
        .updates_of(name)
        .into_iter()
        .filter(|u| u.ours)
        .collect();
    assert!(!ups.is_empty(), "{name} was updated");
    let first = ups.iter().map(|u| u.started).min().unwrap();
    let last = ups.iter().map(|u| u.ends_at()).max().unwrap();
    (first, last)
}

fn waves_seen(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::WaveStarted {
                wave,
                canary,
                clusters,
                ..
            } => Some(format!(
                "started {wave}{} {}",
                if *canary { " canary" } else { "" },
                clusters
                    .iter()
                    .map(|k| k.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            )),
            Event::WaveHeld {
                wave,
                after_canary,
                clusters,
                ..
            } => Some(format!(
                "held {wave}{} {}",
                if *after_canary { " rest" } else { "" },
                clusters
                    .iter()
                    .map(|k| k.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_wave_starts_only_once_the_one_before_finished() {
    // `c` and `a` share a VPC whose DNS support is off; `c` is in the
    // later wave, so the shared step runs in wave 0, with `a`.
    let fake = FakeAws::new()
        .cluster_in("a", public(), "vpc-shared")
        .cluster("b", public())
        .cluster_in("c", public(), "vpc-shared")
        .vpc("vpc-shared", false, true);
    fake.edit("b", |c| c.update_duration = Duration::from_millis(120));
    let plan = plan_for(
        &fake,
        vec![
            in_wave(want("c", both(), &[]), 1),
            want("a", both(), &[]),
            want("b", both(), &[]),
        ],
    );
    let shared = plan.step("eu-west-1/vpc-shared/dns_support").unwrap();
    assert_eq!(shared.wave, 0);
    let (report, events) = run(&plan, &fake, opts()).await;
    assert!(report.success(), "{report:?}");
    let (c_first, _) = span(&fake, "c");
    for earlier in ["a", "b"] {
        let (_, last) = span(&fake, earlier);
        assert!(last <= c_first, "`c` started before `{earlier}` ended");
    }
    // Wave 0 itself ran its clusters concurrently.
    assert!(span(&fake, "a").0 < span(&fake, "b").1);
    assert_eq!(waves_seen(&events), vec!["started 0 a,b", "started 1 c"]);
    assert!(report.held.is_empty());
    assert_eq!(fake.violations(), Vec::<String>::new());
    check_event_stream(&report, &events);
}

#[tokio::test]
async fn too_many_failures_hold_the_later_waves() {
    // (max_failures, outcome of c and d)
    for (max_failures, later) in [(0, NotStarted), (1, Done)] {
        let fake = FakeAws::new()
            .cluster("a", public())
            .cluster("b", public())
            .cluster("c", public())
            .cluster("d", public());
        fake.edit("a", |c| c.fail_updates = Some(("E".into(), "boom".into())));
        let plan = plan_for(
            &fake,
            vec![
                want("a", both(), &[]),
                want("b", both(), &[]),
                in_wave(want("c", both(), &[]), 1),
                in_wave(want("d", both(), &[]), 2),
            ],
        );
        let (report, events) = run(
            &plan,
            &fake,
            ApplyOptions {
                max_failures,
                ..opts()
            },
        )
        .await;
        assert_eq!(
            outcomes(&report),
            ids(&[
                ("eu-west-1/a/endpoint.1", Failed),
                ("eu-west-1/b/endpoint.1", Done),
                ("eu-west-1/c/endpoint.1", later),
                ("eu-west-1/d/endpoint.1", later),
            ]),
            "max_failures {max_failures}"
        );
        if later == NotStarted {
            let reason = "1 cluster failed in wave 0, more than `--max-failures 0`";
            assert_eq!(
                report.step("eu-west-1/c/endpoint.1").unwrap().message,
                format!("not started: wave 1 held: {reason}")
            );
            assert_eq!(
                report.step("eu-west-1/d/endpoint.1").unwrap().message,
                format!("not started: wave 2 held: {reason}")
            );
            assert_eq!(
                waves_seen(&events),
                vec!["started 0 a,b", "held 1 c", "held 2 d"]
            );
            assert_eq!(report.held.len(), 2);
            assert_eq!(report.held[0].reason, reason);
            let c = &report.clusters[2];
            assert_eq!(c.outcome, ClusterOutcome::NotStarted);
            for name in ["c", "d"] {
                assert!(fake.updates_of(name).is_empty(), "{name} was not touched");
            }
        } else {
            assert_eq!(
                waves_seen(&events),
                vec!["started 0 a,b", "started 1 c", "started 2 d"]
            );
        }
        assert!(!report.success());
        check_event_stream(&report, &events);
    }
}

#[tokio::test]
async fn canaries_go_first_and_their_failure_holds_the_rest() {
    for canary_fails in [false, true] {
        let fake = FakeAws::new()
            .cluster("a", public())
            .cluster("b", public())
            .cluster("c", public())
            .cluster("d", public());
        if canary_fails {
            fake.edit("a", |c| c.fail_updates = Some(("E".into(), "boom".into())));
        }
        let plan = plan_for(
            &fake,
            vec![
                want("a", both(), &[]),
                want("b", both(), &[]),
                want("c", both(), &[]),
                in_wave(want("d", both(), &[]), 1),
            ],
        );
        let (report, events) = run(
            &plan,
            &fake,
            ApplyOptions {
                canary: 1,
                ..opts()
            },
        )
        .await;
        if canary_fails {
            assert_eq!(
                waves_seen(&events),
                vec!["started 0 canary a", "held 0 rest b,c", "held 1 d"]
            );
            assert_eq!(
                report.step("eu-west-1/b/endpoint.1").unwrap().message,
                "not started: the rest of wave 0 after its canaries held: 1 cluster failed among the canaries of wave 0, more than `--max-failures 0`"
            );
            assert_eq!(fake.calls_of("UpdateClusterConfig").len(), 1);
        } else {
            assert!(report.success());
            assert_eq!(
                waves_seen(&events),
                vec!["started 0 canary a", "started 0 b,c", "started 1 d"]
            );
            let (_, canary_end) = span(&fake, "a");
            for rest in ["b", "c", "d"] {
                assert!(
                    canary_end <= span(&fake, rest).0,
                    "{rest} before the canary"
                );
            }
        }
        check_event_stream(&report, &events);
    }
}

#[tokio::test]
async fn one_wave_sends_no_wave_events_and_canaries_of_the_whole_wave_are_none() {
    let fake = FakeAws::new().cluster("a", public()).cluster("b", public());
    let plan = plan_for(&fake, vec![want("a", both(), &[]), want("b", both(), &[])]);
    for canary in [0, 2, 5] {
        let fake = FakeAws::new().cluster("a", public()).cluster("b", public());
        let (report, events) = run(&plan, &fake, ApplyOptions { canary, ..opts() }).await;
        assert!(report.success());
        assert_eq!(waves_seen(&events), Vec::<String>::new(), "canary {canary}");
    }
    let _ = fake;
}

#[tokio::test]
async fn an_invalid_plan_runs_nothing() {
    let fake = FakeAws::new().cluster("a", public());
    let mut plan = plan_for(&fake, vec![want("a", both(), &[])]);
    plan.steps[0].depends_on.push("nowhere".into());
    let (report, events) = run(&plan, &fake, opts()).await;
    assert!(!report.success());
    assert!(report.invalid_plan.is_some());
    assert_eq!(report.steps[0].outcome, NotStarted);
    assert!(fake.calls().is_empty());
    check_event_stream(&report, &events);
}

const BASTION: &str = "arn:aws:iam::111122223333:role/bastion";
const VIEW: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";

/// `name` goes private only, reached from `10.0.0.0/8`, and `BASTION` must
/// still use its Kubernetes API.
fn want_bastion(name: &str) -> DesiredCluster {
    let mut w = want(name, private(), &["10.0.0.0/8"]);
    w.access.principals = [BASTION.to_string()].into();
    w
}

/// A change made between plan and apply, and what the stopped step says.
type LostAccess<'a> = (&'a str, fn(&mut super::fake::FakeCluster), &'a str);

#[tokio::test]
async fn an_access_entry_lost_after_the_plan_stops_only_that_public_off_step() {
    // The entry of `a` goes, or loses its policy, between plan and apply.
    let twists: [LostAccess<'_>; 2] = [
        (
            "deleted",
            |c| {
                c.access_entries.remove(BASTION);
            },
            "`arn:aws:iam::111122223333:role/bastion` has no access entry on `a` now (it changed since the plan), so it could not use the Kubernetes API; give it one: `aws eks create-access-entry --cluster-name a --region eu-west-1 --principal-arn arn:aws:iam::111122223333:role/bastion`",
        ),
        (
            "policy removed",
            |c| {
                c.access_entries.get_mut(BASTION).unwrap().policies.clear();
            },
            "the access entry of `arn:aws:iam::111122223333:role/bastion` on `a` has neither an access policy nor Kubernetes groups now; associate one: `aws eks associate-access-policy",
        ),
    ];
    for (twist, change, why) in twists {
        let fake = FakeAws::new()
            .cluster("a", public())
            .cluster("b", public())
            .access_entry("a", BASTION, &[VIEW])
            .access_entry("b", BASTION, &[VIEW]);
        let plan = plan_for(&fake, vec![want_bastion("a"), want_bastion("b")]);
        assert_eq!(plan.access_checks.len(), 2, "{twist}");
        fake.edit("a", change);
        let (report, events) = run(&plan, &fake, opts()).await;

        let mut got = outcomes(&report);
        got.sort();
        assert_eq!(
            got,
            ids(&[
                ("eu-west-1/a/endpoint.1", Done),
                ("eu-west-1/a/endpoint.2", Failed),
                ("eu-west-1/b/endpoint.1", Done),
                ("eu-west-1/b/endpoint.2", Done),
                ("eu-west-1/sg-a/https_ingress", Done),
                ("eu-west-1/sg-b/https_ingress", Done),
            ]),
            "{twist}"
        );
        let stopped = report.step("eu-west-1/a/endpoint.2").unwrap();
        assert!(
            stopped
                .message
                .starts_with("refusing to turn public access off: "),
            "{twist}: {}",
            stopped.message
        );
        assert!(
            stopped.message.contains(why),
            "{twist}: {}",
            stopped.message
        );
        // `a` keeps both paths (no call turned its public access off); `b`
        // is private only.
        assert_eq!(fake.endpoint_of("a"), both(), "{twist}");
        assert_eq!(fake.endpoint_of("b"), private(), "{twist}");
        let public_off_calls: Vec<_> = fake
            .calls_of("UpdateClusterConfig")
            .into_iter()
            .filter(|c| c.detail.starts_with("public=false"))
            .map(|c| c.target)
            .collect();
        assert_eq!(public_off_calls, vec!["b".to_string()], "{twist}");
        // Each cluster's entries were read again once, right before its
        // public-off call would be made.
        let calls = fake.calls();
        for name in ["a", "b"] {
            let reads: Vec<usize> = (0..calls.len())
                .filter(|&i| calls[i].op == "ListAccessEntries" && calls[i].target == name)
                .collect();
            assert_eq!(reads.len(), 1, "{twist}: {name}: {calls:?}");
            let next = calls[reads[0] + 1..]
                .iter()
                .find(|c| c.target == name && c.op != "DescribeUpdate");
            if name == "b" {
                assert!(
                    next.is_some_and(
                        |c| c.op == "UpdateClusterConfig" && c.detail.starts_with("public=false")
                    ),
                    "{twist}: {calls:?}"
                );
            } else {
                assert!(next.is_none(), "{twist}: {calls:?}");
            }
        }
        // The report says what changed, and what did not.
        let changed: BTreeSet<&str> = report
            .changes
            .iter()
            .map(|c| match c {
                Change::EndpointUpdated { step_id, .. }
                | Change::VpcAttributeEnabled { step_id, .. }
                | Change::HttpsIngressAdded { step_id, .. }
                | Change::AccessConfigUpdated { step_id, .. }
                | Change::HttpsIngressRevoked { step_id, .. } => step_id.as_str(),
            })
            .collect();
        assert_eq!(
            changed,
            [
                "eu-west-1/a/endpoint.1",
                "eu-west-1/b/endpoint.1",
                "eu-west-1/b/endpoint.2",
                "eu-west-1/sg-a/https_ingress",
                "eu-west-1/sg-b/https_ingress",
            ]
            .into(),
            "{twist}"
        );
        let cluster = |name: &str| report.clusters.iter().find(|c| c.key.name == name).unwrap();
        assert_eq!(cluster("a").outcome, ClusterOutcome::Failed, "{twist}");
        assert_eq!(
            cluster("a").step_id.as_deref(),
            Some("eu-west-1/a/endpoint.2")
        );
        assert_eq!(cluster("b").outcome, ClusterOutcome::Done, "{twist}");
        assert!(!report.success());
        assert!(fake.violations().is_empty(), "{:?}", fake.violations());
        check_event_stream(&report, &events);
    }
}

#[tokio::test]
async fn an_access_entry_still_in_place_lets_public_access_go_off() {
    let fake = FakeAws::new()
        .cluster("a", public())
        .access_entry("a", BASTION, &[VIEW]);
    let plan = plan_for(&fake, vec![want_bastion("a")]);
    let (report, events) = run(&plan, &fake, opts()).await;
    assert!(report.success(), "{:?}", outcomes(&report));
    assert_eq!(fake.endpoint_of("a"), private());
    assert_eq!(fake.calls_of("ListAccessEntries").len(), 1);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    check_event_stream(&report, &events);
}
