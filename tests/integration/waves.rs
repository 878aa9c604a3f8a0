//! Rollout waves with the real binary against the emulator: wave order as
//! the emulator's history records it, `--max-failures` holding a later wave
//! when an update of an earlier one ends `Failed`, and `--canary` first.

use crate::common::*;
use crate::fixture::fixture;

/// Four public-only clusters sharing a VPC whose DNS hostnames are off.
const WORLD: &str = fixture!("worlds/four-public.toml");

/// `charlie` and `delta` in wave 1, the others in wave 0; all want both
/// endpoints, so each gets one update, after the shared VPC step.
fn manifest(waves: [u32; 4]) -> tempfile::TempDir {
    let mut text = String::new();
    for (name, wave) in ["alpha", "bravo", "charlie", "delta"].iter().zip(waves) {
        text.push_str(&format!(
            "[[cluster]]\nname = \"{name}\"\nregion = \"us-east-1\"\npublic_access = true\nprivate_access = true\nwave = {wave}\n\n"
        ));
    }
    manifest_dir(&text)
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
    let sim = start(WORLD, quick()).await;
    let dir = manifest([0, 0, 1, 1]);
    let plan = eksgate(&sim, dir.path(), &["plan", "prod.toml"]).await;
    let text = stdout(&plan);
    assert!(text.starts_with("== wave 0 ==\n"), "{text}");
    assert!(text.contains("== wave 1 ==\n"), "{text}");
    assert!(
        text.contains("1. us-east-1/vpc-0shared/dns_hostnames (wave 0)"),
        "{text}"
    );

    let out = eksgate(&sim, dir.path(), &apply_args(&[])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t = times(&sim);
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
    let progress = stderr(&out);
    assert!(
        progress.contains("wave 0 started: `us-east-1/alpha` and `us-east-1/bravo`"),
        "{progress}"
    );
    assert!(
        progress.contains("wave 1 started: `us-east-1/charlie` and `us-east-1/delta`"),
        "{progress}"
    );
}

#[tokio::test]
async fn a_failed_update_in_wave_0_holds_wave_1() {
    let failing = format!(
        "{WORLD}\n[[faults.failed_update]]\ncluster = \"alpha\"\nregion = \"us-east-1\"\nnth = 1\nerror_code = \"AccessDenied\"\nerror_message = \"missing route53:AssociateVPCWithHostedZone\"\n"
    );
    // (--max-failures, whether wave 1 runs)
    for (max, runs) in [("0", false), ("1", true)] {
        let sim = start(&failing, quick()).await;
        let dir = manifest([0, 0, 1, 1]);
        let out = eksgate(&sim, dir.path(), &apply_args(&["--max-failures", max])).await;
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let t = times(&sim);
        let touched: Vec<&str> = t.calls.iter().map(|(c, _)| c.as_str()).collect();
        let report = stdout(&out);
        if runs {
            assert!(touched.contains(&"charlie") && touched.contains(&"delta"));
            assert!(report.contains("us-east-1/charlie: done"), "{report}");
        } else {
            assert!(
                !touched.contains(&"charlie") && !touched.contains(&"delta"),
                "{touched:?}"
            );
            assert!(
                report.contains("us-east-1/charlie: not started\n")
                    && report.contains("    endpoint.1  not started: wave 1 held: 1 cluster failed in wave 0, more than `--max-failures 0`\n"),
                "{report}"
            );
            assert!(
                report.contains("Not started:\n    wave 1 held: 1 cluster failed in wave 0, more than `--max-failures 0`\n        `us-east-1/charlie` and `us-east-1/delta`\n"),
                "{report}"
            );
            assert!(
                stderr(&out).contains("wave 1 held: 1 cluster failed in wave 0"),
                "{}",
                stderr(&out)
            );
        }
        assert!(
            report.contains("us-east-1/alpha: failed\n")
                && report.contains("    endpoint.1  failed: update `"),
            "{report}"
        );
    }
}

#[tokio::test]
async fn canaries_finish_before_the_rest_of_their_wave() {
    let sim = start(WORLD, quick()).await;
    let dir = manifest([0, 0, 0, 1]);
    let out = eksgate(&sim, dir.path(), &apply_args(&["--canary", "1"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t = times(&sim);
    // `alpha` comes first in the plan's order, so it is the canary.
    let canary_done = t.last_end("alpha").unwrap();
    for rest in ["bravo", "charlie", "delta"] {
        let began = t.first_call(rest).unwrap();
        assert!(began >= canary_done, "`{rest}` before the canary ended");
    }
    let progress = stderr(&out);
    assert!(
        progress.contains("wave 0 canaries started: `us-east-1/alpha`"),
        "{progress}"
    );
    assert!(
        progress.contains("wave 0 started: `us-east-1/bravo` and `us-east-1/charlie`"),
        "{progress}"
    );
}
