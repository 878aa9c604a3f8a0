//! `eksgate apply` end to end: the real binary, the real SDK, the emulator on
//! loopback. What a user would notice is checked from the emulator's history:
//! the order of calls, that nothing was rejected, what changed.

use std::time::Duration;

use eksgate::sim::{Behaviour, Event, HistoryEntry};

use crate::common::*;
use crate::fixture::fixture;

/// Three clusters, two regions; `payments` and `ledger` share a VPC whose
/// DNS is off.
const WORLD: &str = fixture!("worlds/two-regions-dns-off.toml");

/// `payments` goes private only (a staged move), `ledger` narrows its CIDRs,
/// `web` goes public only (the reverse move).
const MANIFEST: &str = concat!(
    fixture!("manifests/payments-private-ledger-cidrs.toml"),
    "\n",
    fixture!("manifests/web-public.toml")
);

const FAST: &[&str] = &[
    "--auto-approve",
    "--poll-interval",
    "50ms",
    "--poll-max-interval",
    "200ms",
];

fn apply_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["apply", "prod.toml"];
    v.extend_from_slice(FAST);
    v.extend_from_slice(extra);
    v
}

/// The order in which things happened, as a user would check it afterwards.
struct Timeline(Vec<HistoryEntry>);

impl Timeline {
    fn of(sim: &eksgate::sim::SimHandle) -> Timeline {
        Timeline(sim.history())
    }

    /// Time of the first event matching `f`.
    fn first(&self, f: impl Fn(&Event) -> bool) -> Option<f64> {
        self.0.iter().find(|e| f(&e.event)).map(|e| e.t_ms)
    }

    fn endpoint_changes(&self, cluster: &str) -> Vec<(f64, bool, bool)> {
        self.0
            .iter()
            .filter_map(|e| match &e.event {
                Event::Endpoint {
                    cluster: c,
                    public,
                    private,
                    ..
                } if c == cluster => Some((e.t_ms, *public, *private)),
                _ => None,
            })
            .collect()
    }

    fn rejected_calls(&self) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|e| match &e.event {
                Event::Request {
                    operation,
                    target,
                    outcome,
                    ..
                } if outcome != "ok"
                    && !(operation == "DescribeCluster"
                        && outcome == "ResourceNotFoundException") =>
                {
                    Some(format!("{operation} {target:?}: {outcome}"))
                }
                _ => None,
            })
            .collect()
    }

    fn update_calls(&self, cluster: &str) -> usize {
        self.0
            .iter()
            .filter(|e| matches!(&e.event, Event::Request { operation, target, .. } if operation == "UpdateClusterConfig" && target.as_deref() == Some(cluster)))
            .count()
    }
}

#[tokio::test]
async fn apply_converges_in_the_safe_order() {
    let sim = start(WORLD, quick()).await;
    let dir = manifest_dir(MANIFEST);
    let out = eksgate(&sim, dir.path(), &apply_args(&[])).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let t = Timeline::of(&sim);

    // Nothing AWS would reject: no no-op, no conflict, no ordering error.
    assert_eq!(t.rejected_calls(), Vec::<String>::new());

    // DNS support before DNS hostnames, both before private access is asked for.
    let support = t
        .first(|e| matches!(e, Event::VpcAttribute { attribute, value: true, .. } if attribute == "enableDnsSupport"))
        .expect("DNS support turned on");
    let hostnames = t
        .first(|e| matches!(e, Event::VpcAttribute { attribute, value: true, .. } if attribute == "enableDnsHostnames"))
        .expect("DNS hostnames turned on");
    // (`web` is in another VPC and wants no private access: it may go first.)
    let first_update = t
        .first(|e| matches!(e, Event::Request { operation, target, .. } if operation == "UpdateClusterConfig" && target.as_deref() != Some("web")))
        .unwrap();
    assert!(
        support < hostnames && hostnames <= first_update,
        "{support} {hostnames} {first_update}"
    );

    // payments: private on (Successful) strictly before public off; never both off.
    let changes = t.endpoint_changes("payments");
    assert_eq!(
        changes.iter().map(|c| (c.1, c.2)).collect::<Vec<_>>(),
        [(true, true), (false, true)]
    );
    let private_on = changes[0].0;
    let off_call = t
        .0
        .iter()
        .filter(|e| matches!(&e.event, Event::Request { operation, target, .. } if operation == "UpdateClusterConfig" && target.as_deref() == Some("payments")))
        .map(|e| e.t_ms)
        .nth(1)
        .expect("a second update on payments");
    assert!(
        private_on <= off_call,
        "public access off was asked for at {off_call} before private was on at {private_on}"
    );
    // Before the second update eksgate looks for updates in progress again
    // (ListUpdates) but does not ask about the first one, which it saw end.
    let ops: Vec<&str> =
        t.0.iter()
            .filter_map(|e| match &e.event {
                Event::Request {
                    operation, target, ..
                } if target.as_deref() == Some("payments") => Some(operation.as_str()),
                _ => None,
            })
            .collect();
    let second = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| **op == "UpdateClusterConfig")
        .map(|(i, _)| i)
        .nth(1)
        .unwrap();
    let listed = ops[..second]
        .iter()
        .rposition(|op| *op == "ListUpdates")
        .expect("updates listed before the second update");
    assert_eq!(
        ops[listed..second],
        ["ListUpdates"],
        "calls on payments: {ops:?}"
    );
    // The TCP 443 ingress was in place before public access went off.
    let ingress = t
        .first(|e| matches!(e, Event::SecurityGroupIngress { group_id, .. } if group_id == "sg-0a1b2c3d4e5f60001"))
        .unwrap();
    assert!(ingress < off_call);

    // web (reverse move): public on first, then private off.
    assert_eq!(
        t.endpoint_changes("web")
            .iter()
            .map(|c| (c.1, c.2))
            .collect::<Vec<_>>(),
        [(true, true), (true, false)]
    );
    for name in ["payments", "ledger", "web"] {
        for (_, public, private) in t.endpoint_changes(name) {
            assert!(public || private, "{name} had both endpoints off");
        }
    }

    let report = stdout(&out);
    assert!(report.contains("us-east-1/payments: done"), "{report}");
    assert!(report.contains("Apply complete:"), "{report}");

    // Applying again changes nothing and calls nothing that writes.
    let before = t.0.len();
    let again = eksgate(&sim, dir.path(), &apply_args(&[])).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("No changes: 3 clusters match their manifests"),
        "{}",
        stdout(&again)
    );
    let later = Timeline(sim.history()[before..].to_vec());
    assert!(later.0.iter().all(|e| match &e.event {
        Event::Request { operation, .. } =>
            operation.starts_with("Describe") || operation.starts_with("List"),
        _ => false,
    }));
}

/// The most endpoint updates that were in flight at once in the emulator.
fn updates_at_once(history: &[HistoryEntry]) -> usize {
    let mut edges: Vec<(f64, i32)> = history
        .iter()
        .filter_map(|e| match &e.event {
            Event::UpdateStatus {
                update_type,
                status,
                ..
            } if update_type == "EndpointAccessUpdate" => {
                Some((e.t_ms, if status == "InProgress" { 1 } else { -1 }))
            }
            _ => None,
        })
        .collect();
    // An update ending when another starts did not overlap it.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

#[tokio::test]
async fn max_updates_bounds_the_updates_in_flight() {
    // By default the clusters' updates overlap (steps waiting for an update
    // hold no `--parallelism` slot); `--max-updates 1` runs them one at a
    // time, with the default ten slots for calls.
    for (extra, expect_one) in [(&[][..], false), (&["--max-updates", "1"][..], true)] {
        let sim = start(WORLD, quick()).await;
        let dir = manifest_dir(MANIFEST);
        let out = eksgate(&sim, dir.path(), &apply_args(extra)).await;
        assert_eq!(out.status.code(), Some(0), "{extra:?}\n{}", stderr(&out));
        let history = sim.history();
        let at_once = updates_at_once(&history);
        if expect_one {
            assert_eq!(at_once, 1, "{extra:?}");
        } else {
            assert!(at_once >= 2, "{extra:?}: {at_once}");
        }
        assert_eq!(Timeline(history).rejected_calls(), Vec::<String>::new());
    }
}

#[tokio::test]
async fn a_failed_update_skips_its_dependents_and_nothing_else() {
    let world = format!(
        "{WORLD}\n[[faults.failed_update]]\ncluster = \"payments\"\nregion = \"us-east-1\"\nerror_code = \"AccessDenied\"\nerror_message = \"missing route53:AssociateVPCWithHostedZone\"\n"
    );
    let sim = start(&world, quick()).await;
    let dir = manifest_dir(MANIFEST);
    let out = eksgate(&sim, dir.path(), &apply_args(&[])).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("us-east-1/payments: failed"), "{report}");
    assert!(report.contains("AccessDenied"), "{report}");
    assert!(
        report.contains("missing route53:AssociateVPCWithHostedZone"),
        "{report}"
    );
    assert!(report.contains("us-east-1/ledger: done"), "{report}");
    assert!(report.contains("eu-west-1/web: done"), "{report}");
    assert!(report.contains("Apply failed:"), "{report}");

    let t = Timeline::of(&sim);
    // payments' second step (public off) never ran: one update call only, and
    // the cluster is still public only.
    assert_eq!(t.update_calls("payments"), 1);
    assert!(t.endpoint_changes("payments").is_empty());
    // The other clusters converged.
    assert_eq!(t.endpoint_changes("ledger").len(), 1);
    assert_eq!(t.endpoint_changes("web").len(), 2);
    assert_eq!(t.rejected_calls(), Vec::<String>::new());
}

#[tokio::test]
async fn a_stale_or_altered_saved_plan_changes_nothing() {
    let sim = start(WORLD, quick()).await;
    let dir = manifest_dir(MANIFEST);
    let out = eksgate(
        &sim,
        dir.path(),
        &["plan", "prod.toml", "--out", "plan.json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan_path = dir.path().join("plan.json");
    let saved = std::fs::read_to_string(&plan_path).unwrap();

    // Altered: one value edited by hand.
    let altered = saved.replacen("203.0.113.0/24", "0.0.0.0/0", 1);
    assert_ne!(altered, saved);
    std::fs::write(dir.path().join("altered.json"), &altered).unwrap();
    let before = sim.history().len();
    let out = eksgate(
        &sim,
        dir.path(),
        &["apply", "--plan", "altered.json", "--auto-approve"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`altered.json` was altered after it was saved"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        sim.history().len(),
        before,
        "an altered plan makes no call at all"
    );

    // Stale: the live state changed after the plan was made.
    let eks = eks(&sim, "eu-west-1").await;
    eks.update_cluster_config()
        .name("web")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .endpoint_public_access(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = sim.history().len();
    let out = eksgate(
        &sim,
        dir.path(),
        &["apply", "--plan", "plan.json", "--auto-approve"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).starts_with("error: the plan is stale: "),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("nothing was changed"),
        "{}",
        stderr(&out)
    );
    let writes: Vec<_> = sim.history()[before..]
        .iter()
        .filter(|e| matches!(&e.event, Event::Request { operation, .. } if !operation.starts_with("Describe") && !operation.starts_with("List")))
        .cloned()
        .collect();
    assert!(writes.is_empty(), "{writes:?}");

    // A fresh saved plan applies.
    let out = eksgate(
        &sim,
        dir.path(),
        &["plan", "prod.toml", "--out", "plan.json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    let mut args = vec!["apply", "--plan", "plan.json"];
    args.extend_from_slice(FAST);
    let out = eksgate(&sim, dir.path(), &args).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
}

#[tokio::test]
async fn without_a_terminal_apply_asks_for_auto_approve() {
    let sim = start(WORLD, quick()).await;
    let dir = manifest_dir(MANIFEST);
    let out = eksgate(&sim, dir.path(), &["apply", "prod.toml"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("error: refusing to apply without confirmation: standard input is not a terminal\nhint: review the plan, then run again with `--auto-approve`"),
        "{}",
        stderr(&out)
    );
    assert!(Timeline::of(&sim).0.iter().all(|e| match &e.event {
        Event::Request { operation, .. } =>
            operation.starts_with("Describe") || operation.starts_with("List"),
        _ => false,
    }));
}

#[tokio::test]
async fn a_lockout_step_is_refused_without_allow_lockout() {
    let sim = start(WORLD, quick()).await;
    let dir = manifest_dir(
        "[[cluster]]\nname = \"payments\"\nregion = \"us-east-1\"\npublic_access = false\nprivate_access = true\n",
    );
    let out = eksgate(&sim, dir.path(), &apply_args(&[])).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let t = Timeline::of(&sim);
    // Private access went on; public access was left on.
    assert_eq!(t.update_calls("payments"), 1);
    assert!(stdout(&out).contains("--allow-lockout"), "{}", stdout(&out));
    let out = eksgate(&sim, dir.path(), &apply_args(&["--allow-lockout"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        Timeline::of(&sim)
            .endpoint_changes("payments")
            .last()
            .map(|c| (c.1, c.2)),
        Some((false, true))
    );
}

/// Ctrl-C during a wait: exit 130, the running update is named, and a second
/// run finishes the job without a conflicting call.
#[tokio::test]
async fn an_interrupted_apply_resumes_without_a_conflicting_call() {
    let sim = start(
        WORLD,
        Behaviour {
            update_duration: Duration::from_secs(3),
            ..Behaviour::default()
        },
    )
    .await;
    let dir = manifest_dir(MANIFEST);
    let child = eksgate_cmd(&sim, dir.path(), &apply_args(&[]))
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    // Wait until an update is running, then interrupt.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let started = sim.history().iter().any(
            |e| matches!(&e.event, Event::UpdateStatus { status, .. } if status == "InProgress"),
        );
        if started {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no update started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("apply stopped after Ctrl-C")
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("Interrupted: starting no new step"), "{err}");
    let running: Vec<String> = sim
        .history()
        .iter()
        .filter_map(|e| match &e.event {
            Event::UpdateStatus {
                update_id, status, ..
            } if status == "InProgress" => Some(update_id.clone()),
            _ => None,
        })
        .collect();
    let report = stdout(&out);
    assert!(
        running
            .iter()
            .any(|id| report.contains(id) || err.contains(id)),
        "the running updates {running:?} are listed:\n{report}\n{err}"
    );

    // The second run waits for what is still running and converges.
    let again = eksgate(&sim, dir.path(), &apply_args(&[])).await;
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&again),
        stderr(&again)
    );
    let t = Timeline::of(&sim);
    assert_eq!(
        t.rejected_calls(),
        Vec::<String>::new(),
        "no call was rejected, in either run"
    );
    assert_eq!(
        t.endpoint_changes("payments").last().map(|c| (c.1, c.2)),
        Some((false, true))
    );
}

#[tokio::test]
async fn the_demo_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(assert_cmd::cargo::cargo_bin!("eksgate"))
            .current_dir(dir.path())
            .args(["demo", "--update-duration", "500ms"])
            .env("NO_COLOR", "1")
            .env_remove("AWS_ENDPOINT_URL")
            .output(),
    )
    .await
    .expect("the demo finished within two minutes")
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    for want in [
        "== 1/4 validate ==",
        "1 file, 5 clusters: valid",
        "== 2/4 plan ==",
        "Plan: 8 steps on 3 clusters, 1 VPC change, 3 security group changes; 1 cluster blocked",
        "== 3/4 apply ==",
        "Apply complete: 8 steps done",
        "== 4/4 plan again ==",
        "No steps: 1 cluster blocked, 4 clusters match their manifests",
        "Demo complete.",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // AWS's own update on `search` is found by the re-read and waited for,
    // before any call that EKS would reject.
    let err = stderr(&out);
    assert!(
        err.contains("search endpoint.1 waiting: update `")
            && err.contains("is in progress on `search` and EKS runs one update at a time"),
        "{err}"
    );
    assert!(!err.contains("ResourceInUseException"), "{err}");
}
