//! Rollout waves with the real binary against the emulator: wave order as
//! the emulator's history records it, `--max-failures` holding a later wave
//! when an update of an earlier one ends `Failed`, and `--canary` first.

use crate::fixture::fixture;
use crate::snapshot::{after_line, eksgate_snapshot, only, sort_block};
use crate::test::{Run, Test};

/// Four public-only clusters sharing a VPC whose DNS hostnames are off.
const WORLD: &str = fixture!("worlds/four-public.toml");

/// The four clusters in `waves` (`alpha`, `bravo`, `charlie`, `delta`); all
/// want both endpoints, so each gets one update, after the shared VPC step.
fn manifest_text(waves: [u32; 4]) -> String {
    let mut text = String::new();
    for (name, wave) in ["alpha", "bravo", "charlie", "delta"].iter().zip(waves) {
        text.push_str(&format!(
            "[[cluster]]\nname = \"{name}\"\nregion = \"us-east-1\"\npublic_access = true\nprivate_access = true\nwave = {wave}\n\n"
        ));
    }
    text
}

/// The world and the manifest with these waves, for a [`Test`].
fn test(world: &str, waves: [u32; 4]) -> Test {
    Test::new().world(world).manifest(&manifest_text(waves))
}

const FAST: &[&str] = &[
    "--auto-approve",
    "--poll-interval",
    "30ms",
    "--poll-max-interval",
    "60ms",
];

fn apply_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["apply", "prod.toml"];
    v.extend_from_slice(FAST);
    v.extend_from_slice(extra);
    v
}

/// From the emulator's history, per cluster: the times of its
/// `UpdateClusterConfig` calls and of its updates' final statuses.
struct Times {
    calls: Vec<(String, f64)>,
    ends: Vec<(String, f64, String)>,
    vpc_changes: Vec<f64>,
}

fn times_of(run: &Run) -> Times {
    times(run.sim())
}

fn times(sim: &eksgate::sim::SimHandle) -> Times {
    let mut t = Times {
        calls: Vec::new(),
        ends: Vec::new(),
        vpc_changes: Vec::new(),
    };
    for e in sim.history() {
        match e.event {
            eksgate::sim::Event::Request {
                operation,
                target,
                outcome,
                ..
            } if outcome == "ok" => match operation.as_str() {
                "UpdateClusterConfig" => t.calls.push((target.unwrap_or_default(), e.t_ms)),
                "ModifyVpcAttribute" => t.vpc_changes.push(e.t_ms),
                _ => {}
            },
            eksgate::sim::Event::UpdateStatus {
                cluster, status, ..
            } if status != "InProgress" => t.ends.push((cluster, e.t_ms, status)),
            _ => {}
        }
    }
    t
}

impl Times {
    fn first_call(&self, cluster: &str) -> Option<f64> {
        self.calls
            .iter()
            .filter(|(c, _)| c == cluster)
            .map(|(_, t)| *t)
            .reduce(f64::min)
    }

    fn last_end(&self, cluster: &str) -> Option<f64> {
        self.ends
            .iter()
            .filter(|(c, _, _)| c == cluster)
            .map(|(_, t, _)| *t)
            .reduce(f64::max)
    }
}

#[tokio::test]
async fn wave_1_starts_after_every_wave_0_update_is_successful() {
    let plan = test(WORLD, [0, 0, 1, 1])
        .args(["plan", "prod.toml"])
        .run()
        .await
        .success();
    eksgate_snapshot!(plan.stdout(), @r#"
    == wave 0 ==

    us-east-1/alpha: 2 steps
         public_access = true
        -private_access = false
        +private_access = true
         public_access_cidrs = ["0.0.0.0/0"]
         private_access_from = []

      1. us-east-1/vpc-0shared/dns_hostnames
         enable `enableDnsHostnames` on `vpc-0shared`
         why: private access on `alpha`, `bravo` and 2 more needs `enableDnsHostnames` in `vpc-0shared`, or the endpoint's name does not resolve there

      2. us-east-1/alpha/endpoint.1
         endpoint public only → public and private
         waits for: 1. us-east-1/vpc-0shared/dns_hostnames
         why: make the endpoint public and private, as the manifest asks; it waits for the VPC DNS settings private access needs

    us-east-1/bravo: 2 steps
         public_access = true
        -private_access = false
        +private_access = true
         public_access_cidrs = ["0.0.0.0/0"]
         private_access_from = []

      1. us-east-1/vpc-0shared/dns_hostnames
         enable `enableDnsHostnames` on `vpc-0shared`
         why: private access on `alpha`, `bravo` and 2 more needs `enableDnsHostnames` in `vpc-0shared`, or the endpoint's name does not resolve there

      3. us-east-1/bravo/endpoint.1
         endpoint public only → public and private
         waits for: 1. us-east-1/vpc-0shared/dns_hostnames
         why: make the endpoint public and private, as the manifest asks; it waits for the VPC DNS settings private access needs

    == wave 1 ==

    us-east-1/charlie: 2 steps
         public_access = true
        -private_access = false
        +private_access = true
         public_access_cidrs = ["0.0.0.0/0"]
         private_access_from = []

      1. us-east-1/vpc-0shared/dns_hostnames (wave 0)
         enable `enableDnsHostnames` on `vpc-0shared`
         why: private access on `alpha`, `bravo` and 2 more needs `enableDnsHostnames` in `vpc-0shared`, or the endpoint's name does not resolve there

      4. us-east-1/charlie/endpoint.1
         endpoint public only → public and private
         waits for: 1. us-east-1/vpc-0shared/dns_hostnames
         why: make the endpoint public and private, as the manifest asks; it waits for the VPC DNS settings private access needs

    us-east-1/delta: 2 steps
         public_access = true
        -private_access = false
        +private_access = true
         public_access_cidrs = ["0.0.0.0/0"]
         private_access_from = []

      1. us-east-1/vpc-0shared/dns_hostnames (wave 0)
         enable `enableDnsHostnames` on `vpc-0shared`
         why: private access on `alpha`, `bravo` and 2 more needs `enableDnsHostnames` in `vpc-0shared`, or the endpoint's name does not resolve there

      5. us-east-1/delta/endpoint.1
         endpoint public only → public and private
         waits for: 1. us-east-1/vpc-0shared/dns_hostnames
         why: make the endpoint public and private, as the manifest asks; it waits for the VPC DNS settings private access needs

    Plan: 5 steps on 4 clusters, 1 VPC change
    "#);

    let out = plan.again().args(apply_args(&[])).run().await.success();
    let t = times_of(&out);
    for early in ["alpha", "bravo"] {
        let statuses: Vec<&str> = t
            .ends
            .iter()
            .filter(|(c, _, _)| c == early)
            .map(|(_, _, s)| s.as_str())
            .collect();
        assert_eq!(statuses, ["Successful"], "{early}");
        let done = t.last_end(early).unwrap();
        for late in ["charlie", "delta"] {
            let began = t.first_call(late).unwrap();
            assert!(
                began >= done,
                "`{late}` was updated at {began}ms, before `{early}` was `Successful` at {done}ms"
            );
        }
    }
    // The shared VPC step ran first, with wave 0.
    let first_update = t.calls.iter().map(|(_, at)| *at).reduce(f64::min).unwrap();
    assert!(t.vpc_changes.iter().all(|at| *at < first_update));
    eksgate_snapshot!(only(out.stderr(), " wave "), @"
    [TIME] wave 0 started: `us-east-1/alpha` and `us-east-1/bravo`
    [TIME] wave 1 started: `us-east-1/charlie` and `us-east-1/delta`
    ");
}

#[tokio::test]
async fn a_failed_update_in_wave_0_holds_wave_1() {
    let failing = format!(
        "{WORLD}\n[[faults.failed_update]]\ncluster = \"alpha\"\nregion = \"us-east-1\"\nnth = 1\nerror_code = \"AccessDenied\"\nerror_message = \"missing route53:AssociateVPCWithHostedZone\"\n"
    );
    // (--max-failures, whether wave 1 runs)
    for (max, runs) in [("0", false), ("1", true)] {
        let out = test(&failing, [0, 0, 1, 1])
            .args(apply_args(&["--max-failures", max]))
            .run()
            .await
            .failure();
        let t = times_of(&out);
        let touched: Vec<&str> = t.calls.iter().map(|(c, _)| c.as_str()).collect();
        // The report after the plan (pinned in the test above); the
        // changes in AWS are sorted, as the clusters of a wave run at once.
        if runs {
            assert!(touched.contains(&"charlie") && touched.contains(&"delta"));
            eksgate_snapshot!(after_line(&sort_block(out.stdout(), "Changed in AWS:"), "Plan: "), @"
            us-east-1/alpha: failed
                us-east-1/vpc-0shared/dns_hostnames  done: `enableDnsHostnames` turned on in `vpc-0shared`
                endpoint.1  failed: update `[UPDATE_ID]` ended `Failed`: AccessDenied: missing route53:AssociateVPCWithHostedZone
            us-east-1/bravo: done
            us-east-1/charlie: done
            us-east-1/delta: done

            Changed in AWS:
                us-east-1/bravo: update `[UPDATE_ID]` made the endpoint public and private
                us-east-1/charlie: update `[UPDATE_ID]` made the endpoint public and private
                us-east-1/delta: update `[UPDATE_ID]` made the endpoint public and private
                us-east-1/vpc-0shared: `enableDnsHostnames` turned on

            Apply failed: 1 failed, 4 done
            ");
        } else {
            assert!(
                !touched.contains(&"charlie") && !touched.contains(&"delta"),
                "{touched:?}"
            );
            eksgate_snapshot!(after_line(&sort_block(out.stdout(), "Changed in AWS:"), "Plan: "), @"
            us-east-1/alpha: failed
                us-east-1/vpc-0shared/dns_hostnames  done: `enableDnsHostnames` turned on in `vpc-0shared`
                endpoint.1  failed: update `[UPDATE_ID]` ended `Failed`: AccessDenied: missing route53:AssociateVPCWithHostedZone
            us-east-1/bravo: done
            us-east-1/charlie: not started
                us-east-1/vpc-0shared/dns_hostnames  done: `enableDnsHostnames` turned on in `vpc-0shared`
                endpoint.1  not started: wave 1 held: 1 cluster failed in wave 0, more than `--max-failures 0`
            us-east-1/delta: not started
                us-east-1/vpc-0shared/dns_hostnames  done: `enableDnsHostnames` turned on in `vpc-0shared`
                endpoint.1  not started: wave 1 held: 1 cluster failed in wave 0, more than `--max-failures 0`

            Changed in AWS:
                us-east-1/bravo: update `[UPDATE_ID]` made the endpoint public and private
                us-east-1/vpc-0shared: `enableDnsHostnames` turned on

            Not started:
                wave 1 held: 1 cluster failed in wave 0, more than `--max-failures 0`
                    `us-east-1/charlie` and `us-east-1/delta`
            hint: fix what failed and run `eksgate apply` again: converged clusters make no call; `--max-failures N` lets a rollout go on past N failed clusters

            Apply failed: 1 failed, 2 not started, 2 done
            ");
            eksgate_snapshot!(only(out.stderr(), " wave "), @"
            [TIME] wave 0 started: `us-east-1/alpha` and `us-east-1/bravo`
            [TIME] wave 1 held: 1 cluster failed in wave 0, more than `--max-failures 0`; not started: `us-east-1/charlie` and `us-east-1/delta`
            [TIME] us-east-1/charlie endpoint.1 not started: wave 1 held: 1 cluster failed in wave 0, more than `--max-failures 0`
            [TIME] us-east-1/delta endpoint.1 not started: wave 1 held: 1 cluster failed in wave 0, more than `--max-failures 0`
            ");
        }
    }
}

#[tokio::test]
async fn canaries_finish_before_the_rest_of_their_wave() {
    let out = test(WORLD, [0, 0, 0, 1])
        .args(apply_args(&["--canary", "1"]))
        .run()
        .await
        .success();
    let t = times_of(&out);
    // `alpha` comes first in the plan's order, so it is the canary.
    let canary_done = t.last_end("alpha").unwrap();
    for rest in ["bravo", "charlie", "delta"] {
        let began = t.first_call(rest).unwrap();
        assert!(began >= canary_done, "`{rest}` before the canary ended");
    }
    eksgate_snapshot!(only(out.stderr(), " wave "), @"
    [TIME] wave 0 canaries started: `us-east-1/alpha`
    [TIME] wave 0 started: `us-east-1/bravo` and `us-east-1/charlie`
    [TIME] wave 1 started: `us-east-1/delta`
    ");
}
