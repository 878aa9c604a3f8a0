//! `eksgate apply` end to end: the real binary, the real SDK, the emulator on
//! loopback. What a user would notice is checked from the emulator's history:
//! the order of calls, that nothing was rejected, what changed. What apply
//! prints (the report, the progress lines of a run without a terminal, the
//! JSON events) is pinned with snapshots.

use std::time::Duration;

use eksgate::sim::{Behaviour, Event, HistoryEntry};

use crate::common::*;
use crate::fixture::fixture;
use crate::snapshot::{after_line, by_target, eksgate_snapshot, sort_block, without};
use crate::test::{Test, NO_ARGS};

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

/// The order in which things happened, as a user would check it afterwards.
struct Timeline(Vec<HistoryEntry>);

impl Timeline {
    fn of(sim: &eksgate::sim::SimHandle) -> Timeline {
        Timeline(sim.history())
    }

    fn since(sim: &eksgate::sim::SimHandle, from: usize) -> Timeline {
        Timeline(sim.history()[from..].to_vec())
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
    let run = Test::new()
        .world(WORLD)
        .manifest(MANIFEST)
        .apply(NO_ARGS)
        .run()
        .await
        .success();
    let sim = run.sim();
    let t = Timeline::of(sim);

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
    // while it describes the cluster, and nothing more: it does not ask
    // about the first update, which it saw end before, so the description
    // cannot predate its end and need not be read again.
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
    let mut reread = ops[second - 2..second].to_vec();
    reread.sort_unstable();
    assert_eq!(
        reread,
        ["DescribeCluster", "ListUpdates"],
        "calls on payments: {ops:?}"
    );
    assert!(listed >= second - 2, "calls on payments: {ops:?}");
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

    // What changed in AWS is listed in the order it happened, and the
    // clusters run at once: that list is sorted.
    eksgate_snapshot!(sort_block(run.stdout(), "Changed in AWS:"), @r#"
    eu-west-1/web: 2 steps
        -public_access = false
        -private_access = true
        -public_access_cidrs = ["0.0.0.0/0"]
        +public_access = true
        +private_access = false
        +public_access_cidrs = ["198.51.100.0/24"]
         private_access_from = []

      1. eu-west-1/web/endpoint.1
         endpoint private only → public and private, public CIDRs ["0.0.0.0/0"] → ["198.51.100.0/24"]
         why: turn public access on first, so the cluster stays reachable while private access is turned off in the next step

      2. eu-west-1/web/endpoint.2
         endpoint public and private → public only
         waits for: 1. eu-west-1/web/endpoint.1
         why: make the endpoint public only, as the manifest asks; it waits for the previous endpoint update to be `Successful`

    us-east-1/ledger: 4 steps
         public_access = true
        -private_access = false
        -public_access_cidrs = ["0.0.0.0/0"]
        -private_access_from = []
        +private_access = true
        +public_access_cidrs = ["203.0.113.0/24"]
        +private_access_from = ["10.20.0.0/16"]

      3. us-east-1/vpc-0shared/dns_support
         enable `enableDnsSupport` on `vpc-0shared`
         why: private access on `ledger` and `payments` needs `enableDnsSupport` in `vpc-0shared`, or the endpoint's name does not resolve there

      4. us-east-1/vpc-0shared/dns_hostnames
         enable `enableDnsHostnames` on `vpc-0shared`
         waits for: 3. us-east-1/vpc-0shared/dns_support
         why: private access on `ledger` and `payments` needs `enableDnsHostnames` in `vpc-0shared`, which EC2 accepts only once `enableDnsSupport` is on, so it waits for that

      5. us-east-1/sg-0a1b2c3d4e5f60002/https_ingress
         allow TCP 443 into `sg-0a1b2c3d4e5f60002` from `10.20.0.0/16`
         why: the `private_access_from` sources of `ledger` must reach the private endpoint on TCP 443

      6. us-east-1/ledger/endpoint.1
         endpoint public only → public and private, public CIDRs ["0.0.0.0/0"] → ["203.0.113.0/24"]
         waits for: 3. us-east-1/vpc-0shared/dns_support, 4. us-east-1/vpc-0shared/dns_hostnames
         why: make the endpoint public and private, as the manifest asks; it waits for the VPC DNS settings private access needs

    us-east-1/payments: 5 steps
        -public_access = true
        -private_access = false
        +public_access = false
        +private_access = true
         public_access_cidrs = ["0.0.0.0/0"]
        -private_access_from = []
        +private_access_from = ["10.20.0.0/16"]

      3. us-east-1/vpc-0shared/dns_support
         enable `enableDnsSupport` on `vpc-0shared`
         why: private access on `ledger` and `payments` needs `enableDnsSupport` in `vpc-0shared`, or the endpoint's name does not resolve there

      4. us-east-1/vpc-0shared/dns_hostnames
         enable `enableDnsHostnames` on `vpc-0shared`
         waits for: 3. us-east-1/vpc-0shared/dns_support
         why: private access on `ledger` and `payments` needs `enableDnsHostnames` in `vpc-0shared`, which EC2 accepts only once `enableDnsSupport` is on, so it waits for that

      7. us-east-1/sg-0a1b2c3d4e5f60001/https_ingress
         allow TCP 443 into `sg-0a1b2c3d4e5f60001` from `10.20.0.0/16`
         why: the `private_access_from` sources of `payments` must reach the private endpoint on TCP 443 before public access is turned off

      8. us-east-1/payments/endpoint.1
         endpoint public only → public and private
         waits for: 3. us-east-1/vpc-0shared/dns_support, 4. us-east-1/vpc-0shared/dns_hostnames
         why: turn private access on first, so the cluster stays reachable while public access is turned off in the next step; it waits for the VPC DNS settings private access needs

      9. us-east-1/payments/endpoint.2
         endpoint public and private → private only
         waits for: 7. us-east-1/sg-0a1b2c3d4e5f60001/https_ingress, 8. us-east-1/payments/endpoint.1
         why: make the endpoint private only, as the manifest asks; it waits for the previous endpoint update to be `Successful` and the TCP 443 ingress for `private_access_from`

    warning: public access of `us-east-1/payments` goes off, and `private_access_principals` names nobody who must still use its Kubernetes API
    hint: list the IAM roles of your bastions, CI and admins in `private_access_principals`, so eksgate checks their access entries before public access goes off

    Plan: 9 steps on 3 clusters, 2 VPC changes, 2 security group changes
    eu-west-1/web: done
    us-east-1/ledger: done
    us-east-1/payments: done

    Changed in AWS:
        eu-west-1/web: update `[UPDATE_ID]` made the endpoint public and private, public CIDRs ["198.51.100.0/24"]
        eu-west-1/web: update `[UPDATE_ID]` made the endpoint public only
        us-east-1/ledger: update `[UPDATE_ID]` made the endpoint public and private, public CIDRs ["203.0.113.0/24"]
        us-east-1/payments: update `[UPDATE_ID]` made the endpoint private only
        us-east-1/payments: update `[UPDATE_ID]` made the endpoint public and private
        us-east-1/sg-0a1b2c3d4e5f60001: TCP 443 ingress added from `10.20.0.0/16`
        us-east-1/sg-0a1b2c3d4e5f60002: TCP 443 ingress added from `10.20.0.0/16`
        us-east-1/vpc-0shared: `enableDnsHostnames` turned on
        us-east-1/vpc-0shared: `enableDnsSupport` turned on

    Apply complete: 9 steps done, 0 already converged, 0 failed
    "#);
    // The progress lines of clusters that run at once interleave as
    // scheduling has it: they are grouped by cluster. An update is seen
    // `InProgress` as often as timing has it: those lines are left out.
    eksgate_snapshot!(by_target(&without(run.stderr(), "is `InProgress`")), @r#"
    [TIME] apply started: 9 steps on 3 clusters
    [TIME] apply complete: 9 done
    [TIME] eu-west-1/web endpoint.1 started: endpoint private only → public and private, public CIDRs ["0.0.0.0/0"] → ["198.51.100.0/24"]
    [TIME] eu-west-1/web endpoint.1 update `[UPDATE_ID]` started
    [TIME] eu-west-1/web endpoint.1 update `[UPDATE_ID]` is `Successful`
    [TIME] eu-west-1/web endpoint.1 done: update `[UPDATE_ID]` is `Successful`: the endpoint is public and private
    [TIME] eu-west-1/web endpoint.2 started: endpoint public and private → public only
    [TIME] eu-west-1/web endpoint.2 update `[UPDATE_ID]` started
    [TIME] eu-west-1/web endpoint.2 update `[UPDATE_ID]` is `Successful`
    [TIME] eu-west-1/web endpoint.2 done: update `[UPDATE_ID]` is `Successful`: the endpoint is public only
    [TIME] us-east-1/ledger endpoint.1 started: endpoint public only → public and private, public CIDRs ["0.0.0.0/0"] → ["203.0.113.0/24"]
    [TIME] us-east-1/ledger endpoint.1 update `[UPDATE_ID]` started
    [TIME] us-east-1/ledger endpoint.1 update `[UPDATE_ID]` is `Successful`
    [TIME] us-east-1/ledger endpoint.1 done: update `[UPDATE_ID]` is `Successful`: the endpoint is public and private
    [TIME] us-east-1/payments endpoint.1 started: endpoint public only → public and private
    [TIME] us-east-1/payments endpoint.1 update `[UPDATE_ID]` started
    [TIME] us-east-1/payments endpoint.1 update `[UPDATE_ID]` is `Successful`
    [TIME] us-east-1/payments endpoint.1 done: update `[UPDATE_ID]` is `Successful`: the endpoint is public and private
    [TIME] us-east-1/payments endpoint.2 started: endpoint public and private → private only
    [TIME] us-east-1/payments endpoint.2 update `[UPDATE_ID]` started
    [TIME] us-east-1/payments endpoint.2 update `[UPDATE_ID]` is `Successful`
    [TIME] us-east-1/payments endpoint.2 done: update `[UPDATE_ID]` is `Successful`: the endpoint is private only
    [TIME] us-east-1/sg-0a1b2c3d4e5f60001 https_ingress started: allow TCP 443 into `sg-0a1b2c3d4e5f60001` from `10.20.0.0/16`
    [TIME] us-east-1/sg-0a1b2c3d4e5f60001 https_ingress done: TCP 443 ingress added to `sg-0a1b2c3d4e5f60001`
    [TIME] us-east-1/sg-0a1b2c3d4e5f60002 https_ingress started: allow TCP 443 into `sg-0a1b2c3d4e5f60002` from `10.20.0.0/16`
    [TIME] us-east-1/sg-0a1b2c3d4e5f60002 https_ingress done: TCP 443 ingress added to `sg-0a1b2c3d4e5f60002`
    [TIME] us-east-1/vpc-0shared dns_support started: enable `enableDnsSupport` on `vpc-0shared`
    [TIME] us-east-1/vpc-0shared dns_support done: `enableDnsSupport` turned on in `vpc-0shared`
    [TIME] us-east-1/vpc-0shared dns_hostnames started: enable `enableDnsHostnames` on `vpc-0shared`
    [TIME] us-east-1/vpc-0shared dns_hostnames done: `enableDnsHostnames` turned on in `vpc-0shared`
    "#);

    // Applying again changes nothing and calls nothing that writes.
    let before = t.0.len();
    let again = run.again().apply(NO_ARGS).run().await.success();
    eksgate_snapshot!(again, @"
    success: true
    exit_code: 0
    ----- stdout -----
    No changes: 3 clusters match their manifests

    ----- stderr -----
    ");
    let later = Timeline::since(sim, before);
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
        let run = Test::new()
            .world(WORLD)
            .manifest(MANIFEST)
            .apply(extra)
            .run()
            .await
            .success();
        let history = run.history();
        let at_once = updates_at_once(&history);
        if expect_one {
            assert_eq!(at_once, 1, "{extra:?}");
        } else {
            assert!(at_once >= 2, "{extra:?}: {at_once}");
        }
        assert_eq!(Timeline(history).rejected_calls(), Vec::<String>::new());
    }
}

/// `payments`' first endpoint update ends `Failed` with this error.
const PAYMENTS_UPDATE_FAILS: &str = r#"
[[faults.failed_update]]
cluster = "payments"
region = "us-east-1"
error_code = "AccessDenied"
error_message = "missing route53:AssociateVPCWithHostedZone"
"#;

#[tokio::test]
async fn a_failed_update_skips_its_dependents_and_nothing_else() {
    let run = Test::new()
        .world(WORLD)
        .world(PAYMENTS_UPDATE_FAILS)
        .manifest(MANIFEST)
        .apply(NO_ARGS)
        .run()
        .await
        .failure();
    // The plan printed first is pinned in `apply_converges_in_the_safe_order`;
    // the changes are sorted (the clusters run at once).
    eksgate_snapshot!(after_line(&sort_block(run.stdout(), "Changed in AWS:"), "Plan: "), @r#"
    eu-west-1/web: done
    us-east-1/ledger: done
    us-east-1/payments: failed
        us-east-1/vpc-0shared/dns_support  done: `enableDnsSupport` turned on in `vpc-0shared`
        us-east-1/vpc-0shared/dns_hostnames  done: `enableDnsHostnames` turned on in `vpc-0shared`
        us-east-1/sg-0a1b2c3d4e5f60001/https_ingress  done: TCP 443 ingress added to `sg-0a1b2c3d4e5f60001`
        endpoint.1  failed: update `[UPDATE_ID]` ended `Failed`: AccessDenied: missing route53:AssociateVPCWithHostedZone
        endpoint.2  skipped: `us-east-1/payments/endpoint.1` failed

    Changed in AWS:
        eu-west-1/web: update `[UPDATE_ID]` made the endpoint public and private, public CIDRs ["198.51.100.0/24"]
        eu-west-1/web: update `[UPDATE_ID]` made the endpoint public only
        us-east-1/ledger: update `[UPDATE_ID]` made the endpoint public and private, public CIDRs ["203.0.113.0/24"]
        us-east-1/sg-0a1b2c3d4e5f60001: TCP 443 ingress added from `10.20.0.0/16`
        us-east-1/sg-0a1b2c3d4e5f60002: TCP 443 ingress added from `10.20.0.0/16`
        us-east-1/vpc-0shared: `enableDnsHostnames` turned on
        us-east-1/vpc-0shared: `enableDnsSupport` turned on

    Apply failed: 1 failed, 1 skipped, 7 done
    "#);

    let t = Timeline::of(run.sim());
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
    let planned = Test::new()
        .world(WORLD)
        .manifest(MANIFEST)
        .args(["plan", "prod.toml", "--out", "plan.json"])
        .run()
        .await
        .success();
    let sim = planned.sim();
    let saved = planned.read("plan.json");

    // Altered: one value edited by hand.
    let altered = saved.replacen("203.0.113.0/24", "0.0.0.0/0", 1);
    assert_ne!(altered, saved);
    let before = sim.history().len();
    let run = planned
        .again()
        .file("altered.json", &altered)
        .args(["apply", "--plan", "altered.json", "--auto-approve"])
        .run()
        .await
        .failure();
    eksgate_snapshot!(run, @"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: `altered.json` was altered after it was saved: its checksum does not match
    hint: plan again with `eksgate plan --out FILE` instead of editing a saved plan
    ");
    assert_eq!(
        sim.history().len(),
        before,
        "an altered plan makes no call at all"
    );

    // Stale: the live state changed after the plan was made.
    let eks = eks(sim, "eu-west-1").await;
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
    let run = planned
        .again()
        .args(["apply", "--plan", "plan.json", "--auto-approve"])
        .run()
        .await
        .failure();
    eksgate_snapshot!(run, @"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: the plan is stale: the live state of step `eu-west-1/web/endpoint.1` changed since it was planned; nothing was changed
    hint: plan again with `eksgate plan --out FILE` and review the new plan
    ");
    let writes: Vec<_> = sim.history()[before..]
        .iter()
        .filter(|e| matches!(&e.event, Event::Request { operation, .. } if !operation.starts_with("Describe") && !operation.starts_with("List")))
        .cloned()
        .collect();
    assert!(writes.is_empty(), "{writes:?}");

    // A fresh saved plan applies.
    planned
        .again()
        .args(["plan", "prod.toml", "--out", "plan.json"])
        .run()
        .await
        .success();
    planned
        .again()
        .args(["apply", "--plan", "plan.json"])
        .arg("--auto-approve")
        .args(crate::test::FAST_POLLS)
        .run()
        .await
        .success();
}

#[tokio::test]
async fn without_a_terminal_apply_asks_for_auto_approve() {
    let run = Test::new()
        .world(WORLD)
        .manifest(MANIFEST)
        .args(["apply", "prod.toml"])
        .run()
        .await
        .failure();
    eksgate_snapshot!(run.stderr(), @"
    error: refusing to apply without confirmation: standard input is not a terminal
    hint: review the plan, then run again with `--auto-approve`
    ");
    assert!(Timeline::of(run.sim()).0.iter().all(|e| match &e.event {
        Event::Request { operation, .. } =>
            operation.starts_with("Describe") || operation.starts_with("List"),
        _ => false,
    }));
}

#[tokio::test]
async fn a_lockout_step_is_refused_without_allow_lockout() {
    let run = Test::new()
        .world(WORLD)
        .manifest(
            "[[cluster]]\nname = \"payments\"\nregion = \"us-east-1\"\npublic_access = false\nprivate_access = true\n",
        )
        .apply(NO_ARGS)
        .run()
        .await
        .failure();
    let t = Timeline::of(run.sim());
    // Private access went on; public access was left on.
    assert_eq!(t.update_calls("payments"), 1);
    eksgate_snapshot!(after_line(run.stdout(), "Plan: "), @"
    us-east-1/payments: refused
        us-east-1/vpc-0shared/dns_support  done: `enableDnsSupport` turned on in `vpc-0shared`
        us-east-1/vpc-0shared/dns_hostnames  done: `enableDnsHostnames` turned on in `vpc-0shared`
        endpoint.1  done: update `[UPDATE_ID]` is `Successful`: the endpoint is public and private
        endpoint.2  refused: this step turns public access off while the manifest declares no `private_access_from`, which can lock you out of the cluster; apply with `--allow-lockout` to run it anyway

    Changed in AWS:
        us-east-1/vpc-0shared: `enableDnsSupport` turned on
        us-east-1/vpc-0shared: `enableDnsHostnames` turned on
        us-east-1/payments: update `[UPDATE_ID]` made the endpoint public and private

    Apply failed: 1 refused, 3 done
    ");
    let run = run.again().apply(["--allow-lockout"]).run().await.success();
    assert_eq!(
        Timeline::of(run.sim())
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
    let running = Test::new()
        .world(WORLD)
        .update_duration(Duration::from_secs(3))
        .manifest(MANIFEST)
        .args(apply_args(&[]))
        .spawn()
        .await;
    // Wait until an update is running, then interrupt.
    running
        .until("an update started", |h| {
            h.iter().any(
                |e| matches!(&e.event, Event::UpdateStatus { status, .. } if status == "InProgress"),
            )
        })
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    running.signal("-INT");
    let out = running.wait().await.exit(130);
    let sim = out.sim();
    // Which steps had started when the signal came depends on timing: the
    // lines are checked, not snapshotted.
    let err = out.stderr();
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
    let report = out.stdout();
    assert!(
        running
            .iter()
            .any(|id| report.contains(id) || err.contains(id)),
        "the running updates {running:?} are listed:\n{report}\n{err}"
    );

    // The second run waits for what is still running and converges.
    out.again().args(apply_args(&[])).run().await.success();
    let t = Timeline::of(sim);
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
    // The four stages; the clusters run at once, so what changed in AWS is
    // sorted.
    eksgate_snapshot!(sort_block(&stdout(&out), "Changed in AWS:"), @r#"
    eksgate demo: an emulated AWS account on http://127.0.0.1:[PORT] with 6 EKS clusters in us-east-1 and eu-west-1.
    Nothing here touches AWS; the manifest is examples/demo.toml.

    == 1/4 validate ==
    Manifests are checked before any AWS call: every mistake is pointed at by file, line and column.

    1 file, 6 clusters: valid

    == 2/4 plan ==
    eksgate reads the live state and orders the steps: VPC DNS before private access, TCP 443 and private access `Successful` before public access goes off. `analytics` is blocked: its DHCP options lack `AmazonProvidedDNS`. `billing` is blocked too: the CI role it names has no access entry, so it could not use the Kubernetes API once public access is off.

    eu-west-1/analytics: blocked

    us-east-1/billing: blocked

    us-east-1/ledger: 3 steps
         public_access = true
         private_access = true
        -public_access_cidrs = ["0.0.0.0/0"]
        -private_access_from = []
        +public_access_cidrs = ["198.51.100.0/24", "203.0.113.0/24"]
        +private_access_from = ["sg-0b0b0b0b0b0b0b0b0"]

      1. us-east-1/vpc-0shared/dns_hostnames
         enable `enableDnsHostnames` on `vpc-0shared`
         why: private access on `ledger`, `payments` and `search` needs `enableDnsHostnames` in `vpc-0shared`, or the endpoint's name does not resolve there

      2. us-east-1/sg-0a1b2c3d4e5f60002/https_ingress
         allow TCP 443 into `sg-0a1b2c3d4e5f60002` from `sg-0b0b0b0b0b0b0b0b0`
         why: the `private_access_from` sources of `ledger` must reach the private endpoint on TCP 443

      3. us-east-1/ledger/endpoint.1
         endpoint stays public and private, public CIDRs ["0.0.0.0/0"] → ["198.51.100.0/24", "203.0.113.0/24"]
         waits for: 1. us-east-1/vpc-0shared/dns_hostnames
         why: set the public access CIDRs the manifest lists; it waits for the VPC DNS settings private access needs

    us-east-1/payments: 4 steps
        -public_access = true
        -private_access = false
        +public_access = false
        +private_access = true
         public_access_cidrs = ["0.0.0.0/0"]
        -private_access_from = []
        +private_access_from = ["sg-0b0b0b0b0b0b0b0b0", "10.20.0.0/16"]

      1. us-east-1/vpc-0shared/dns_hostnames
         enable `enableDnsHostnames` on `vpc-0shared`
         why: private access on `ledger`, `payments` and `search` needs `enableDnsHostnames` in `vpc-0shared`, or the endpoint's name does not resolve there

      4. us-east-1/sg-0a1b2c3d4e5f60001/https_ingress
         allow TCP 443 into `sg-0a1b2c3d4e5f60001` from `sg-0b0b0b0b0b0b0b0b0`, `10.20.0.0/16`
         why: the `private_access_from` sources of `payments` must reach the private endpoint on TCP 443 before public access is turned off

      5. us-east-1/payments/endpoint.1
         endpoint public only → public and private
         waits for: 1. us-east-1/vpc-0shared/dns_hostnames
         why: turn private access on first, so the cluster stays reachable while public access is turned off in the next step; it waits for the VPC DNS settings private access needs

      6. us-east-1/payments/endpoint.2
         endpoint public and private → private only
         waits for: 4. us-east-1/sg-0a1b2c3d4e5f60001/https_ingress, 5. us-east-1/payments/endpoint.1
         why: make the endpoint private only, as the manifest asks; it waits for the previous endpoint update to be `Successful` and the TCP 443 ingress for `private_access_from`

    us-east-1/search: 3 steps
         public_access = true
        -private_access = false
        +private_access = true
         public_access_cidrs = ["0.0.0.0/0"]
        -private_access_from = []
        +private_access_from = ["sg-0b0b0b0b0b0b0b0b0"]

      1. us-east-1/vpc-0shared/dns_hostnames
         enable `enableDnsHostnames` on `vpc-0shared`
         why: private access on `ledger`, `payments` and `search` needs `enableDnsHostnames` in `vpc-0shared`, or the endpoint's name does not resolve there

      7. us-east-1/sg-0a1b2c3d4e5f60003/https_ingress
         allow TCP 443 into `sg-0a1b2c3d4e5f60003` from `sg-0b0b0b0b0b0b0b0b0`
         why: the `private_access_from` sources of `search` must reach the private endpoint on TCP 443

      8. us-east-1/search/endpoint.1
         endpoint public only → public and private
         waits for: 1. us-east-1/vpc-0shared/dns_hostnames
         why: make the endpoint public and private, as the manifest asks; it waits for the VPC DNS settings private access needs

    error: `eu-west-1/analytics` asks for private access, but the DHCP options `dopt-0corpdns` of VPC `vpc-0analytics` do not list `AmazonProvidedDNS`
    hint: create a DHCP options set whose `domain-name-servers` include `AmazonProvidedDNS` and associate it with `vpc-0analytics` (replacing `dopt-0corpdns`); otherwise the private endpoint's name does not resolve in the VPC

    error: `arn:aws:iam::123456789012:role/ci-deployer` has no access entry on `us-east-1/billing`: it could not use the Kubernetes API once public access is off
    hint: give it one: `aws eks create-access-entry --cluster-name billing --region us-east-1 --principal-arn arn:aws:iam::123456789012:role/ci-deployer` then `aws eks associate-access-policy --cluster-name billing --region us-east-1 --principal-arn arn:aws:iam::123456789012:role/ci-deployer --policy-arn arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy --access-scope type=cluster`

    Plan: 8 steps on 3 clusters, 1 VPC change, 3 security group changes; 2 clusters blocked

    == 3/4 apply ==
    The steps run in that order, clusters in parallel, each EKS update waited for until `Successful`. AWS is running an update of its own on `search`: eksgate sees it and waits for it instead of making a call EKS would reject.

    eu-west-1/analytics: blocked
        `eu-west-1/analytics` asks for private access, but the DHCP options `dopt-0corpdns` of VPC `vpc-0analytics` do not list `AmazonProvidedDNS`
    us-east-1/billing: blocked
        `arn:aws:iam::123456789012:role/ci-deployer` has no access entry on `us-east-1/billing`: it could not use the Kubernetes API once public access is off
    us-east-1/ledger: done
    us-east-1/payments: done
    us-east-1/search: done

    Changed in AWS:
        us-east-1/ledger: update `[UPDATE_ID]` made the endpoint public and private, public CIDRs ["198.51.100.0/24", "203.0.113.0/24"]
        us-east-1/payments: update `[UPDATE_ID]` made the endpoint private only
        us-east-1/payments: update `[UPDATE_ID]` made the endpoint public and private
        us-east-1/search: update `[UPDATE_ID]` made the endpoint public and private
        us-east-1/sg-0a1b2c3d4e5f60001: TCP 443 ingress added from `sg-0b0b0b0b0b0b0b0b0`, `10.20.0.0/16`
        us-east-1/sg-0a1b2c3d4e5f60002: TCP 443 ingress added from `sg-0b0b0b0b0b0b0b0b0`
        us-east-1/sg-0a1b2c3d4e5f60003: TCP 443 ingress added from `sg-0b0b0b0b0b0b0b0b0`
        us-east-1/vpc-0shared: `enableDnsHostnames` turned on

    Apply complete: 8 steps done, 0 already converged, 0 failed

    == 4/4 plan again ==
    What could converge now matches the manifest; `analytics` stays blocked until its DHCP options are fixed, `billing` until its CI role has an access entry.

    eu-west-1/analytics: blocked

    us-east-1/billing: blocked

    error: `eu-west-1/analytics` asks for private access, but the DHCP options `dopt-0corpdns` of VPC `vpc-0analytics` do not list `AmazonProvidedDNS`
    hint: create a DHCP options set whose `domain-name-servers` include `AmazonProvidedDNS` and associate it with `vpc-0analytics` (replacing `dopt-0corpdns`); otherwise the private endpoint's name does not resolve in the VPC

    error: `arn:aws:iam::123456789012:role/ci-deployer` has no access entry on `us-east-1/billing`: it could not use the Kubernetes API once public access is off
    hint: give it one: `aws eks create-access-entry --cluster-name billing --region us-east-1 --principal-arn arn:aws:iam::123456789012:role/ci-deployer` then `aws eks associate-access-policy --cluster-name billing --region us-east-1 --principal-arn arn:aws:iam::123456789012:role/ci-deployer --policy-arn arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy --access-scope type=cluster`

    No steps: 2 clusters blocked, 4 clusters match their manifests

    Demo complete. Next: `eksgate import --region REGION` to write manifests for your own clusters, then `eksgate plan`.
    "#);
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

/// A pinned account reached through a role is the one the role's ARN
/// names: no `GetCallerIdentity` is asked for it, the role is assumed once,
/// and a role that cannot be
/// assumed still fails the plan by name, at its first read, with nothing
/// read for it.
#[tokio::test]
async fn a_role_is_assumed_without_asking_who_it_is() {
    let manifest = |role: &str| {
        format!(
            "[defaults]\nregion = \"us-east-1\"\naccount = \"111122223333\"\n\n[[cluster]]\nname = \"payments\"\nrole_arn = \"arn:aws:iam::111122223333:role/{role}\"\npublic_access = true\nprivate_access = true\n"
        )
    };
    let operations = |sim: &eksgate::sim::SimHandle| -> Vec<(String, String)> {
        requests(sim)
            .into_iter()
            .map(|(_, op, _, outcome)| (op, outcome))
            .collect()
    };

    let sim = start(ROLES_WORLD, quick()).await;
    let dir = manifest_dir(&manifest("payments-admin"));
    let out = eksgate(&sim, dir.path(), &["plan", "."]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ops = operations(&sim);
    assert_eq!(
        ops.first().map(|o| o.0.as_str()),
        Some("AssumeRole"),
        "{ops:?}"
    );
    assert!(ops.iter().all(|o| o.0 != "GetCallerIdentity"), "{ops:?}");
    // Asked for as soon as the role's clients are built, and asked once.
    assert_eq!(
        ops.iter().filter(|o| o.0 == "AssumeRole").count(),
        1,
        "{ops:?}"
    );

    let sim = start(ROLES_WORLD, quick()).await;
    let dir = manifest_dir(&manifest("nobody"));
    let out = eksgate(&sim, dir.path(), &["plan", "."]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("cannot assume the role: AWS denied `sts:AssumeRole` on `arn:aws:iam::111122223333:role/nobody`"),
        "{}",
        stderr(&out)
    );
    let ops = operations(&sim);
    assert!(
        !ops.is_empty() && ops.iter().all(|o| o.0 == "AssumeRole" && o.1 != "ok"),
        "only refused AssumeRole calls: {ops:?}"
    );
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
            access_principals: Vec::new(),
            prefix_lists: Vec::new(),
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
    let err = provider.read(request.clone(), 4).await.unwrap_err();
    assert!(
        err.to_string().contains("GetCallerIdentity failed"),
        "{err}"
    );
    for _ in 0..2 {
        let live = provider.read(request.clone(), 4).await.unwrap();
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
    provider.read(request.clone(), 4).await.unwrap();
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
    let sources: eksgate::set::SortedSet<AccessSource> =
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

/// `--format json`: one object per event on stdout, then the report as one
/// object. One cluster, so the events come in one order.
#[tokio::test]
async fn json_events_are_one_object_per_line() {
    let run = Test::new()
        .world(WORLD)
        .manifest(fixture!("manifests/web-public.toml"))
        .apply(["--format", "json"])
        .run()
        .await
        .success();
    for line in run.stdout().lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
    }
    // An update is seen `InProgress` as often as timing has it.
    eksgate_snapshot!(without(run.stdout(), r#""status":"InProgress""#), @r#"
    {"event":"apply_started","elapsed_ms":[ELAPSED],"steps":2,"clusters":[{"region":"eu-west-1","name":"web","steps":["eu-west-1/web/endpoint.1","eu-west-1/web/endpoint.2"]}]}
    {"event":"step_started","elapsed_ms":[ELAPSED],"step_id":"eu-west-1/web/endpoint.1","kind":"eks_endpoint","region":"eu-west-1","cluster":"web","description":"endpoint private only → public and private, public CIDRs [\"0.0.0.0/0\"] → [\"198.51.100.0/24\"]"}
    {"event":"update_started","elapsed_ms":[ELAPSED],"step_id":"eu-west-1/web/endpoint.1","update_id":"[UPDATE_ID]"}
    {"event":"update_polled","elapsed_ms":[ELAPSED],"step_id":"eu-west-1/web/endpoint.1","update_id":"[UPDATE_ID]","status":"Successful"}
    {"event":"step_finished","elapsed_ms":[ELAPSED],"step_id":"eu-west-1/web/endpoint.1","outcome":"done","message":"update `[UPDATE_ID]` is `Successful`: the endpoint is public and private"}
    {"event":"step_started","elapsed_ms":[ELAPSED],"step_id":"eu-west-1/web/endpoint.2","kind":"eks_endpoint","region":"eu-west-1","cluster":"web","description":"endpoint public and private → public only"}
    {"event":"update_started","elapsed_ms":[ELAPSED],"step_id":"eu-west-1/web/endpoint.2","update_id":"[UPDATE_ID]"}
    {"event":"update_polled","elapsed_ms":[ELAPSED],"step_id":"eu-west-1/web/endpoint.2","update_id":"[UPDATE_ID]","status":"Successful"}
    {"event":"step_finished","elapsed_ms":[ELAPSED],"step_id":"eu-west-1/web/endpoint.2","outcome":"done","message":"update `[UPDATE_ID]` is `Successful`: the endpoint is public only"}
    {"event":"apply_finished","elapsed_ms":[ELAPSED],"success":true,"counts":{"done":2,"already_converged":0,"failed":0,"skipped":0,"refused":0,"timed_out":0,"cancelled":0,"not_started":0}}
    {"steps":[{"id":"eu-west-1/web/endpoint.1","kind":"eks_endpoint","region":"eu-west-1","cluster":"web","description":"endpoint private only → public and private, public CIDRs [\"0.0.0.0/0\"] → [\"198.51.100.0/24\"]","outcome":"done","message":"update `[UPDATE_ID]` is `Successful`: the endpoint is public and private","update_ids":["[UPDATE_ID]"]},{"id":"eu-west-1/web/endpoint.2","kind":"eks_endpoint","region":"eu-west-1","cluster":"web","description":"endpoint public and private → public only","outcome":"done","message":"update `[UPDATE_ID]` is `Successful`: the endpoint is public only","update_ids":["[UPDATE_ID]"]}],"clusters":[{"key":{"region":"eu-west-1","name":"web"},"outcome":"done","message":"","steps":["eu-west-1/web/endpoint.1","eu-west-1/web/endpoint.2"]}],"changes":[{"change":"endpoint_updated","step_id":"eu-west-1/web/endpoint.1","region":"eu-west-1","cluster":"web","update_id":"[UPDATE_ID]","settings":{"public_access":true,"private_access":true,"public_access_cidrs":["198.51.100.0/24"]}},{"change":"endpoint_updated","step_id":"eu-west-1/web/endpoint.2","region":"eu-west-1","cluster":"web","update_id":"[UPDATE_ID]","settings":{"public_access":true,"private_access":false}}],"updates_still_running":[],"counts":{"done":2,"already_converged":0,"failed":0,"skipped":0,"refused":0,"timed_out":0,"cancelled":0,"not_started":0},"interrupted":false,"elapsed_ms":[ELAPSED]}
    "#);
    eksgate_snapshot!(run.stderr(), @"");
}
