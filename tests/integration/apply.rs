//! `eksgate apply` end to end: the real binary, the real SDK, the emulator on
//! loopback. What a user would notice is checked from the emulator's history:
//! the order of calls, that nothing was rejected, what changed.

use std::time::Duration;

use eksgate::sim::{Behaviour, Event, HistoryEntry};

use crate::common::*;

const WORLD: &str = r#"
[[vpc]]
id = "vpc-0shared"
region = "us-east-1"
dns_support = false
dns_hostnames = false

[[vpc]]
id = "vpc-0eu"
region = "eu-west-1"
dns_hostnames = true

[[security_group]]
id = "sg-0a1b2c3d4e5f60001"
region = "us-east-1"
vpc_id = "vpc-0shared"

[[security_group]]
id = "sg-0a1b2c3d4e5f60002"
region = "us-east-1"
vpc_id = "vpc-0shared"

[[security_group]]
id = "sg-0a1b2c3d4e5f60003"
region = "eu-west-1"
vpc_id = "vpc-0eu"

[[cluster]]
name = "payments"
region = "us-east-1"
vpc_id = "vpc-0shared"
security_group = "sg-0a1b2c3d4e5f60001"
public_access = true
private_access = false

[[cluster]]
name = "ledger"
region = "us-east-1"
vpc_id = "vpc-0shared"
security_group = "sg-0a1b2c3d4e5f60002"
public_access = true
private_access = false

[[cluster]]
name = "web"
region = "eu-west-1"
vpc_id = "vpc-0eu"
security_group = "sg-0a1b2c3d4e5f60003"
public_access = false
private_access = true
"#;

const MANIFEST: &str = r#"
[[cluster]]
name = "payments"
region = "us-east-1"
public_access = false
private_access = true
private_access_from = ["10.20.0.0/16"]

[[cluster]]
name = "ledger"
region = "us-east-1"
public_access = true
private_access = true
public_access_cidrs = ["203.0.113.0/24"]
private_access_from = ["10.20.0.0/16"]

[[cluster]]
name = "web"
region = "eu-west-1"
public_access = true
private_access = false
public_access_cidrs = ["198.51.100.0/24"]
"#;

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

// ---------------------------------------------------------------------------
// Credentials per cluster, identity checks, duplicate ingress rules

const ROLES_WORLD: &str = r#"
[[account]]
id = "111122223333"
access_key_ids = ["AKIDEKSGATETEST"]
roles = [
  "arn:aws:iam::111122223333:role/payments-admin",
  "arn:aws:iam::111122223333:role/ledger-admin",
]

[[vpc]]
id = "vpc-0roles"
region = "us-east-1"
account = "111122223333"
dns_hostnames = false

[[cluster]]
name = "payments"
region = "us-east-1"
account = "111122223333"
vpc_id = "vpc-0roles"
public_access = true
private_access = false

[[cluster]]
name = "ledger"
region = "us-east-1"
account = "111122223333"
vpc_id = "vpc-0roles"
public_access = true
private_access = false

[[cluster]]
name = "web"
region = "us-east-1"
account = "111122223333"
vpc_id = "vpc-0roles"
public_access = true
private_access = false
"#;

/// Three clusters of one account: two with roles of their own, one with
/// none. Each must be read and changed with its own credentials; before,
/// the roles were kept per account, so all three used whichever role was
/// declared last and `web` acted with a role it never asked for.
#[tokio::test]
async fn regression_each_cluster_is_read_and_changed_with_its_own_role() {
    let sim = start(ROLES_WORLD, quick()).await;
    let dir = manifest_dir(
        r#"
[defaults]
region = "us-east-1"
account = "111122223333"

[[cluster]]
name = "payments"
role_arn = "arn:aws:iam::111122223333:role/payments-admin"
public_access = true
private_access = true

[[cluster]]
name = "ledger"
role_arn = "arn:aws:iam::111122223333:role/ledger-admin"
public_access = true
private_access = true

[[cluster]]
name = "web"
public_access = true
private_access = true
"#,
    );
    let out = eksgate(&sim, dir.path(), &apply_args(&[])).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );

    let session = |role: &str| format!("arn:aws:sts::111122223333:assumed-role/{role}/eksgate");
    let user = "arn:aws:iam::111122223333:user/eksgate-sim".to_string();
    // Who made each call about a cluster, and who changed the shared VPC.
    let mut signers: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for e in sim.history() {
        if let Event::Request {
            operation,
            target,
            principal,
            ..
        } = e.event
        {
            let about = match (operation.as_str(), target) {
                ("ModifyVpcAttribute", _) => "vpc".to_string(),
                (_, Some(t)) if ["payments", "ledger", "web"].contains(&t.as_str()) => t,
                _ => continue,
            };
            signers.entry(about).or_default().insert(principal);
        }
    }
    let want: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = [
        ("payments", session("payments-admin")),
        ("ledger", session("ledger-admin")),
        ("web", user),
        // Shared by all three: the role of the first in plan order.
        ("vpc", session("ledger-admin")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), [v].into()))
    .collect();
    assert_eq!(signers, want);
    let t = Timeline::of(&sim);
    for name in ["payments", "ledger", "web"] {
        assert_eq!(
            t.endpoint_changes(name).last().map(|c| (c.1, c.2)),
            Some((true, true)),
            "{name}"
        );
    }
}

/// A provider against the emulator, one attempt per call unless
/// `attempts` says otherwise.
async fn provider_for(
    sim: &eksgate::sim::SimHandle,
    attempts: Option<u32>,
) -> eksgate::provider::aws::AwsProvider {
    use eksgate::provider::aws::{AwsOptions, AwsProvider};
    AwsProvider::new(AwsOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(sim.url()),
        static_credentials: Some(("AKIDEKSGATETEST".into(), "eksgate-test-secret".into())),
        max_attempts: attempts,
        ..AwsOptions::default()
    })
    .await
}

/// One transient `GetCallerIdentity` failure that outlasts the SDK's
/// retries fails that read, but not the next one: only answers are kept.
/// Before, the failure was kept for the whole run and blocked the account.
#[tokio::test]
async fn regression_a_failed_caller_identity_is_asked_again() {
    use eksgate::provider::{ClusterTarget, Provider, ReadRequest};
    let request = ReadRequest {
        clusters: vec![ClusterTarget {
            key: eksgate::desired::ClusterKey {
                account: Some("111122223333".into()),
                region: "us-east-1".into(),
                name: "payments".into(),
            },
            role_arn: None,
            wants_private: false,
        }],
    };
    let identity_calls = |sim: &eksgate::sim::SimHandle| -> Vec<String> {
        requests(sim)
            .into_iter()
            .filter(|(_, op, _, _)| op == "GetCallerIdentity")
            .map(|(_, _, _, outcome)| outcome)
            .collect()
    };
    let faulty = || Behaviour {
        fail_next: [("GetCallerIdentity".to_string(), 1)].into(),
        ..quick()
    };

    // One attempt per call: the failure reaches eksgate.
    let sim = start(ROLES_WORLD, faulty()).await;
    let provider = provider_for(&sim, Some(1)).await;
    let err = provider.read(&request, 4).await.unwrap_err();
    assert!(
        err.to_string().contains("GetCallerIdentity failed"),
        "{err}"
    );
    for _ in 0..2 {
        let live = provider.read(&request, 4).await.unwrap();
        assert!(
            matches!(
                live.clusters.values().next(),
                Some(eksgate::live::ClusterObservation::Found(_))
            ),
            "{live:?}"
        );
    }
    // Asked again once after the failure, then the answer is kept.
    assert_eq!(identity_calls(&sim), ["InternalFailure", "ok"]);

    // With the default attempts, the SDK's retries absorb it at once.
    let sim = start(ROLES_WORLD, faulty()).await;
    let provider = provider_for(&sim, None).await;
    provider.read(&request, 4).await.unwrap();
    assert_eq!(identity_calls(&sim), ["InternalFailure", "ok"]);
}

/// The sources sg-0dup lets in on TCP 443, as DescribeSecurityGroups gives them.
async fn https_rules(sim: &eksgate::sim::SimHandle, group: &str) -> Vec<String> {
    let out = ec2(sim, "us-east-1")
        .await
        .describe_security_groups()
        .group_ids(group)
        .send()
        .await
        .unwrap();
    let mut rules = Vec::new();
    for p in out.security_groups()[0].ip_permissions() {
        assert_eq!((p.from_port(), p.to_port()), (Some(443), Some(443)));
        rules.extend(
            p.ip_ranges()
                .iter()
                .filter_map(|r| r.cidr_ip())
                .map(str::to_string),
        );
        rules.extend(
            p.user_id_group_pairs()
                .iter()
                .filter_map(|g| g.group_id())
                .map(str::to_string),
        );
    }
    rules.sort();
    rules
}

/// AWS refuses a whole `AuthorizeSecurityGroupIngress` when one of its
/// rules exists (the emulator too, checked first). The provider then adds
/// what is still missing; before, it reported the step converged and the
/// other sources were never added.
#[tokio::test]
async fn regression_a_duplicate_ingress_rule_does_not_hide_the_missing_sources() {
    use eksgate::desired::AccessSource;
    use eksgate::provider::{IngressOutcome, Provider, Scope};
    let world = r#"
[[vpc]]
id = "vpc-0dup"
region = "us-east-1"

[[security_group]]
id = "sg-0dup"
region = "us-east-1"
vpc_id = "vpc-0dup"
https_ingress = ["10.20.0.0/16"]

[[security_group]]
id = "sg-0bastion"
region = "us-east-1"
vpc_id = "vpc-0dup"
"#;
    let sim = start(world, quick()).await;

    // The emulator as AWS: one existing rule fails the call, nothing added.
    let rule = |cidr: &str| aws_sdk_ec2::types::IpRange::builder().cidr_ip(cidr).build();
    let err = ec2(&sim, "us-east-1")
        .await
        .authorize_security_group_ingress()
        .group_id("sg-0dup")
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443)
                .ip_ranges(rule("10.20.0.0/16"))
                .ip_ranges(rule("10.30.0.0/16"))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_parts(&err).0, "InvalidPermission.Duplicate");
    assert_eq!(https_rules(&sim, "sg-0dup").await, ["10.20.0.0/16"]);

    let provider = provider_for(&sim, Some(1)).await;
    let scope = Scope {
        account: None,
        region: "us-east-1".into(),
        role_arn: None,
    };
    let sources: std::collections::BTreeSet<AccessSource> =
        ["10.20.0.0/16", "10.30.0.0/16", "sg-0bastion"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
    let outcome = provider
        .authorize_https_ingress(&scope, "sg-0dup", &sources)
        .await
        .unwrap();
    assert_eq!(outcome, IngressOutcome::Added);
    assert_eq!(
        https_rules(&sim, "sg-0dup").await,
        ["10.20.0.0/16", "10.30.0.0/16", "sg-0bastion"]
    );
    // Everything there now: the truth is "already present", with no change.
    let outcome = provider
        .authorize_https_ingress(&scope, "sg-0dup", &sources)
        .await
        .unwrap();
    assert_eq!(outcome, IngressOutcome::AlreadyPresent);
    assert_eq!(
        https_rules(&sim, "sg-0dup").await,
        ["10.20.0.0/16", "10.30.0.0/16", "sg-0bastion"]
    );
}

/// A second Ctrl-C exits at once with 130, through `main`: the events
/// written before it are whole JSON lines, no report follows, and nothing
/// waits for the calls still in flight. Every call takes 3 s here, so the
/// first Ctrl-C (sent once the apply started) leaves steps mid-call, and the
/// second one comes while they still are.
#[tokio::test]
async fn a_second_interrupt_exits_130_with_whole_json_lines() {
    let sim = start(
        WORLD,
        Behaviour {
            latency: Duration::from_secs(3),
            update_duration: Duration::from_secs(60),
            ..Behaviour::default()
        },
    )
    .await;
    let dir = manifest_dir(MANIFEST);
    let out_path = dir.path().join("stdout.txt");
    let err_path = dir.path().join("stderr.txt");
    // Files, not pipes: nobody reads a pipe while the apply runs.
    let child = eksgate_cmd(&sim, dir.path(), &apply_args(&["--format", "json"]))
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();
    let interrupt = || {
        assert!(std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success());
    };
    let contains = |path: &std::path::Path, what: &str| {
        std::fs::read_to_string(path).is_ok_and(|t| t.contains(what))
    };
    wait_until("the apply did not start", || {
        contains(&out_path, "\"event\":\"apply_started\"")
    })
    .await;
    interrupt();
    wait_until("the first Ctrl-C was not answered", || {
        contains(&err_path, "Interrupted:")
    })
    .await;
    let interrupted = std::time::Instant::now();
    interrupt();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("exited after the second Ctrl-C")
        .unwrap()
        .status;
    let elapsed = interrupted.elapsed();
    let out = std::fs::read_to_string(&out_path).unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert_eq!(status.code(), Some(130), "{out}\n{err}");
    assert!(
        err.contains("Exiting; AWS updates already started go on in AWS."),
        "{err}"
    );
    assert!(
        elapsed < Duration::from_millis(2500),
        "waited {elapsed:?} for calls in flight"
    );
    assert!(out.ends_with('\n'), "the last line is whole:\n{out}");
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(events[0]["event"], "apply_started", "{out}");
    assert!(
        events.iter().all(|e| e.get("event").is_some()),
        "events only: no report after a second Ctrl-C\n{out}"
    );
}

/// Polls `done` on the test's runtime (the emulator runs on it too) for up
/// to a minute.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// On a terminal, a second Ctrl-C closes the progress bars before the
/// process exits: the last frame drawn before `Exiting` shows every
/// cluster's spinner stopped (blank), not frozen mid-turn. The binary runs
/// under a pseudo-terminal from `script` (util-linux); Ctrl-C is typed into
/// it. Every call takes 2 s, so both Ctrl-Cs come while steps are mid-call.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_second_interrupt_on_a_terminal_closes_the_progress_bars() {
    use tokio::io::AsyncWriteExt as _;
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` to run a pseudo-terminal");
        return;
    }
    let sim = start(
        WORLD,
        Behaviour {
            latency: Duration::from_secs(2),
            update_duration: Duration::from_secs(60),
            ..Behaviour::default()
        },
    )
    .await;
    let dir = manifest_dir(MANIFEST);
    let screen_path = dir.path().join("screen.txt");
    // The test's environment for the binary, handed to `script` instead.
    let eksgate = eksgate_cmd(&sim, dir.path(), &apply_args(&[]));
    let eksgate = eksgate.as_std();
    let line = std::iter::once(eksgate.get_program())
        .chain(eksgate.get_args())
        .map(|a| a.to_str().unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = tokio::process::Command::new("script");
    script
        .args([
            "-qfec",
            &format!("stty cols 120 rows 40; exec {line}"),
            "/dev/null",
        ])
        .current_dir(dir.path())
        .env_clear()
        .envs(
            eksgate
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&screen_path).unwrap())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = script.spawn().unwrap();
    let mut keys = child.stdin.take().unwrap();
    let screen = || String::from_utf8_lossy(&std::fs::read(&screen_path).unwrap()).to_string();
    // The overall bar (`3/9 steps`), not the plan's summary.
    wait_until("no progress bars", || screen().contains("/9 steps")).await;
    keys.write_all(b"\x03").await.unwrap();
    wait_until("the first Ctrl-C was not answered", || {
        screen().contains("Interrupted:")
    })
    .await;
    keys.write_all(b"\x03").await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exited after the second Ctrl-C")
        .unwrap();
    let screen = screen();
    assert_eq!(status.code(), Some(130), "{screen}");
    let exiting = screen
        .rfind("Exiting; AWS updates already started go on in AWS.")
        .unwrap_or_else(|| panic!("no `Exiting` line:\n{screen}"));
    // Each frame is drawn after a last escape that moves the cursor up.
    let frame = &screen[screen[..exiting].rfind("\x1b[").unwrap_or(0)..exiting];
    assert!(
        frame.contains("/9 steps"),
        "the last frame is the bars:\n{frame:?}"
    );
    let spinning: Vec<char> = frame
        .chars()
        .filter(|c| ('\u{2800}'..='\u{28ff}').contains(c))
        .collect();
    assert!(
        spinning.is_empty(),
        "bars left spinning ({spinning:?}) in the last frame:\n{frame:?}"
    );
}
