//! eksgate keeps its invariants under faults, interruptions and hostile
//! input. Every test here drives the real apply engine (the binary, or the
//! library with the real AWS provider) against the emulator on loopback and
//! checks the emulator's history with the one checker in `invariants`:
//!
//! - a fault soak (throttling, server errors, latency) over a fleet of 60
//!   clusters with every kind of move, for three seeds;
//! - a property test over random fleets, manifests and fault schedules, with
//!   and without a permanent fault on one cluster;
//! - SIGKILL at seeded moments, then a second run; SIGINT during a wait;
//! - an update that outlives `--wait-timeout`;
//! - damaged AWS answers, arbitrary manifest bytes;
//! - secrets at the most verbose log level, altered saved plans, a pinned
//!   account that the credentials do not reach.
//!
//! No assertion is on time: waits are bounded only so a hang fails the test.

use std::fmt::Write as _;
use std::time::Duration;

use eksgate::sim::{Behaviour, Event, SimHandle};
use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::common::*;
use crate::invariants::{self, Initial};
use crate::test::Test;

// ---------------------------------------------------------------------------
// Fleets: one description gives the world file, the manifest and the check
// of the end state.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mode {
    public: bool,
    private: bool,
}

const PUBLIC: Mode = Mode {
    public: true,
    private: false,
};
const BOTH: Mode = Mode {
    public: true,
    private: true,
};
const PRIVATE: Mode = Mode {
    public: false,
    private: true,
};

#[derive(Clone, Debug)]
struct ClusterSpec {
    name: String,
    region: String,
    vpc: String,
    sg: String,
    live: Mode,
    live_cidrs: Vec<String>,
    want: Mode,
    want_cidrs: Option<Vec<String>>,
    from: Vec<String>,
    platform_update: Option<Duration>,
    /// Owns its allow-list (`private_access_from_exclusive`); its group
    /// starts with a stale 443 source and rules that must never be revoked.
    exclusive: bool,
}

#[derive(Clone, Debug)]
struct VpcSpec {
    id: String,
    region: String,
    dns_support: bool,
    dns_hostnames: bool,
}

#[derive(Clone, Debug, Default)]
struct Fleet {
    vpcs: Vec<VpcSpec>,
    /// Security groups only used as sources (bastions).
    bastions: Vec<(String, String, String)>,
    clusters: Vec<ClusterSpec>,
}

impl Fleet {
    fn world(&self, faults: &str) -> String {
        let mut w = String::new();
        for v in &self.vpcs {
            let _ = writeln!(
                w,
                "[[vpc]]\nid = \"{}\"\nregion = \"{}\"\ndns_support = {}\ndns_hostnames = {}\n",
                v.id, v.region, v.dns_support, v.dns_hostnames
            );
        }
        for (id, region, vpc) in &self.bastions {
            let _ = writeln!(
                w,
                "[[security_group]]\nid = \"{id}\"\nregion = \"{region}\"\nvpc_id = \"{vpc}\"\nname = \"bastion\"\n"
            );
        }
        for (i, c) in self.clusters.iter().enumerate() {
            let _ = writeln!(
                w,
                "[[security_group]]\nid = \"{}\"\nregion = \"{}\"\nvpc_id = \"{}\"\n",
                c.sg, c.region, c.vpc
            );
            if c.exclusive {
                let stale = format!("10.250.{}.0/24", i % 250);
                let _ = writeln!(
                    w,
                    "https_ingress = [\"{stale}\"]\ningress = [\n  {{ protocol = \"tcp\", from_port = 443, to_port = 443, source = \"{sg}\" }},\n  {{ protocol = \"-1\", source = \"{sg}\" }},\n  {{ protocol = \"-1\", source = \"10.251.0.0/16\" }},\n  {{ protocol = \"tcp\", from_port = 22, to_port = 22, source = \"{stale}\" }},\n]\n",
                    sg = c.sg
                );
            }
            let _ = writeln!(
                w,
                "[[cluster]]\nname = \"{}\"\nregion = \"{}\"\nvpc_id = \"{}\"\nsecurity_group = \"{}\"\npublic_access = {}\nprivate_access = {}\npublic_access_cidrs = {:?}",
                c.name, c.region, c.vpc, c.sg, c.live.public, c.live.private, c.live_cidrs
            );
            if let Some(d) = c.platform_update {
                let _ = writeln!(w, "platform_update = \"{}ms\"", d.as_millis());
            }
            w.push('\n');
        }
        w.push_str(faults);
        w
    }

    fn manifest(&self) -> String {
        let mut m = String::new();
        for c in &self.clusters {
            let _ = writeln!(
                m,
                "[[cluster]]\nname = \"{}\"\nregion = \"{}\"\npublic_access = {}\nprivate_access = {}",
                c.name, c.region, c.want.public, c.want.private
            );
            if let Some(cidrs) = &c.want_cidrs {
                let _ = writeln!(m, "public_access_cidrs = {cidrs:?}");
            }
            if !c.from.is_empty() {
                let _ = writeln!(m, "private_access_from = {:?}", c.from);
            }
            if c.exclusive {
                m.push_str("private_access_from_exclusive = true\n");
            }
            m.push('\n');
        }
        m
    }

    /// `initial` told what each cluster security group must let in, and
    /// which groups' allow-lists the manifest owns.
    fn declared(&self, initial: Initial) -> Initial {
        self.clusters
            .iter()
            .filter(|c| c.want.private)
            .fold(initial, |i, c| {
                let key = ("123456789012".to_string(), c.region.clone(), c.sg.clone());
                i.declare(key, &c.from, c.exclusive)
            })
    }

    /// What differs between the emulator now and the manifest (empty when
    /// converged), for the clusters `only` accepts.
    fn divergence(&self, sim: &SimHandle, only: impl Fn(&ClusterSpec) -> bool) -> Vec<String> {
        let snap = sim.snapshot();
        let mut out = Vec::new();
        let regions = snap["regions"].as_array().cloned().unwrap_or_default();
        let find = |region: &str, list: &str, field: &str, id: &str| {
            regions
                .iter()
                .filter(|r| r["region"] == region)
                .flat_map(|r| r[list].as_array().cloned().unwrap_or_default())
                .find(|x| x[field] == id)
        };
        for c in self.clusters.iter().filter(|c| only(c)) {
            let Some(live) = find(&c.region, "clusters", "name", &c.name) else {
                out.push(format!("{}: missing", c.name));
                continue;
            };
            let got = (
                live["public_access"].as_bool(),
                live["private_access"].as_bool(),
            );
            if got != (Some(c.want.public), Some(c.want.private)) {
                out.push(format!("{}: endpoint {got:?}, want {:?}", c.name, c.want));
            }
            if let (Some(want), true) = (&c.want_cidrs, c.want.public) {
                let mut want = want.clone();
                want.sort();
                let mut have: Vec<String> = live["public_access_cidrs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                have.sort();
                if have != want {
                    out.push(format!("{}: CIDRs {have:?}, want {want:?}", c.name));
                }
            }
            if c.want.private {
                let vpc = find(&c.region, "vpcs", "id", &c.vpc).unwrap_or_default();
                if vpc["dns_support"] != true || vpc["dns_hostnames"] != true {
                    out.push(format!("{}: VPC {} DNS not fully on", c.name, c.vpc));
                }
                let sg = find(&c.region, "security_groups", "id", &c.sg).unwrap_or_default();
                let sources: Vec<String> = sg["ingress"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| r["from_port"] == 443 || r["protocol"] == "-1")
                    .filter_map(|r| r["source"].as_str().map(str::to_string))
                    .collect();
                for f in &c.from {
                    if !sources.contains(f) {
                        out.push(format!("{}: {f} cannot reach 443 on {}", c.name, c.sg));
                    }
                }
                if c.exclusive {
                    for r in sg["ingress"].as_array().into_iter().flatten() {
                        let src = r["source"].as_str().unwrap_or_default();
                        let exact =
                            r["protocol"] == "tcp" && r["from_port"] == 443 && r["to_port"] == 443;
                        if exact && src != c.sg && !c.from.iter().any(|f| f == src) {
                            out.push(format!(
                                "{}: undeclared {src} still on 443 of {}",
                                c.name, c.sg
                            ));
                        }
                    }
                }
            }
        }
        out
    }
}

const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

/// A fleet of `n` clusters with every kind of move, in two regions, with
/// shared VPCs whose DNS is off, bastion security groups as sources, and
/// a few clusters that AWS is updating on its own when the run starts.
fn mixed_fleet(n: usize) -> Fleet {
    let mut f = Fleet::default();
    for (r, region) in REGIONS.iter().enumerate() {
        // Shared: DNS fully off (support then hostnames), hostnames off, on.
        for (k, (support, hostnames)) in [(false, false), (true, false), (true, true)]
            .into_iter()
            .enumerate()
        {
            f.vpcs.push(VpcSpec {
                id: format!("vpc-0{r}{k}shared"),
                region: region.to_string(),
                dns_support: support,
                dns_hostnames: hostnames,
            });
        }
        f.bastions.push((
            format!("sg-0b{r}{:014x}", 0xba57),
            region.to_string(),
            format!("vpc-0{r}2shared"),
        ));
    }
    for i in 0..n {
        let r = i % 2;
        let region = REGIONS[r].to_string();
        let vpc = format!("vpc-0{r}{}shared", (i / 2) % 3);
        let bastion = format!("sg-0b{r}{:014x}", 0xba57);
        let cidr = format!("10.{}.0.0/16", 20 + i % 200);
        let (live, live_cidrs, want, want_cidrs, from) = match i % 6 {
            // public only → private only: staged through public and private.
            0 => (PUBLIC, vec!["0.0.0.0/0"], PRIVATE, None, vec![cidr]),
            // public only → public and private, with new CIDRs.
            1 => (
                PUBLIC,
                vec!["0.0.0.0/0"],
                BOTH,
                Some(vec!["203.0.113.0/24".to_string()]),
                vec![bastion],
            ),
            // private only → public only: public on first, then private off.
            2 => (
                PRIVATE,
                vec!["0.0.0.0/0"],
                PUBLIC,
                Some(vec!["198.51.100.0/24".to_string()]),
                vec![],
            ),
            // A CIDR change on a public cluster.
            3 => (
                PUBLIC,
                vec!["0.0.0.0/0"],
                PUBLIC,
                Some(vec![
                    "192.0.2.0/24".to_string(),
                    format!("100.64.{}.0/24", i % 250),
                ]),
                vec![],
            ),
            // public and private → private only, with new 443 sources.
            4 => (BOTH, vec!["0.0.0.0/0"], PRIVATE, None, vec![cidr, bastion]),
            // Already as wanted.
            _ => (BOTH, vec!["0.0.0.0/0"], BOTH, None, vec![]),
        };
        f.clusters.push(ClusterSpec {
            name: format!("c{i:03}"),
            region,
            vpc,
            sg: format!("sg-0c{i:015x}"),
            live,
            live_cidrs: live_cidrs.into_iter().map(str::to_string).collect(),
            want,
            want_cidrs,
            from,
            platform_update: (i % 10 == 7).then(|| Duration::from_secs(15)),
            // Going private only with sources, and staying as it is with
            // none declared: both own their allow-list.
            exclusive: matches!(i % 6, 4 | 5),
        });
    }
    f
}

fn write_manifest(fleet: &Fleet) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.toml"), fleet.manifest()).unwrap();
    dir
}

fn faulty(seed: u64) -> Behaviour {
    Behaviour {
        update_duration: Duration::from_millis(600),
        latency: Duration::from_millis(100),
        latency_jitter: Duration::from_millis(200),
        throttle_rate: 0.3,
        error_rate: 0.05,
        seed,
        ..Behaviour::default()
    }
}

const APPLY: [&str; 9] = [
    "apply",
    "--auto-approve",
    "--poll-interval",
    "100ms",
    "--poll-max-interval",
    "300ms",
    "--parallelism",
    "32",
    "fleet.toml",
];

/// Lines of stderr that report a problem (the progress lines of a run that
/// went well are not).
fn problems(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("error")
                || l.contains("panicked")
                || l.contains(" error ")
                || l.contains(" failed")
                || l.contains(" timed out")
                || l.contains(" skipped")
        })
        .collect()
}

fn endpoint_steps_planned(plan_json: &str) -> usize {
    let v: serde_json::Value = serde_json::from_str(plan_json).expect("plan JSON");
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "eks_endpoint")
        .count()
}

// ---------------------------------------------------------------------------
// 1. The fault soak

async fn soak(seed: u64) {
    let fleet = mixed_fleet(60);
    let sim = start(&fleet.world(""), faulty(seed)).await;
    let initial = fleet.declared(Initial::of(&sim));
    let dir = write_manifest(&fleet);
    let out = eksgate(&sim, dir.path(), &APPLY).await;
    let (so, se) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "seed {seed}\n{so}\n{se}");
    assert!(problems(&se).is_empty(), "seed {seed}: {:?}", problems(&se));
    assert_eq!(
        fleet.divergence(&sim, |_| true),
        Vec::<String>::new(),
        "seed {seed}"
    );
    let sum = invariants::check(&sim, &initial).await;
    sum.assert_clean(&format!("soak seed {seed}"));
    // The faults were there, and so was the work.
    assert!(
        sum.throttled > 10,
        "seed {seed}: {} throttled",
        sum.throttled
    );
    assert!(sum.server_errors > 0, "seed {seed}");
    assert!(
        sum.updates_started >= 50,
        "seed {seed}: {}",
        sum.updates_started
    );
    assert!(
        sum.vpc_writes >= 2 && sum.ingress_writes >= 10,
        "seed {seed}: {sum:?}"
    );
    // Every owning group lost its stale source, and nothing else.
    let owning = fleet.clusters.iter().filter(|c| c.exclusive).count();
    assert!(
        sum.revoke_writes == owning && sum.rules_revoked == owning,
        "seed {seed}: {} revocations of {} rules for {owning} owning clusters",
        sum.revoke_writes,
        sum.rules_revoked
    );
    eprintln!(
        "soak seed {seed}: {} requests, {} throttled, {} server errors, {} updates",
        sum.requests, sum.throttled, sum.server_errors, sum.updates_started
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_soak_seed_1() {
    soak(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_soak_seed_2() {
    soak(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_soak_seed_3() {
    soak(3).await;
}

// ---------------------------------------------------------------------------
// 2. Property test: random fleets, manifests and fault schedules through the
// real engine in-process.

const MODES: [Mode; 3] = [PUBLIC, BOTH, PRIVATE];
const CIDRS: [&str; 4] = [
    "203.0.113.0/24",
    "198.51.100.0/24",
    "192.0.2.0/25",
    "0.0.0.0/0",
];

#[derive(Clone, Debug)]
struct Case {
    fleet: Fleet,
    behaviour: Behaviour,
    /// The cluster whose every endpoint update fails.
    doomed: Option<usize>,
}

fn arb_case() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        2usize..7,
        0.0f64..0.3,
        0.0f64..0.1,
        0u64..20,
        any::<bool>(),
    )
        .prop_map(|(seed, n, throttle, error, latency, doom)| {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut fleet = Fleet::default();
            for k in 0..2 {
                fleet.vpcs.push(VpcSpec {
                    id: format!("vpc-0p{k}"),
                    region: "us-east-1".into(),
                    dns_support: rng.random_bool(0.5),
                    dns_hostnames: false,
                });
            }
            for v in &mut fleet.vpcs {
                v.dns_hostnames = v.dns_support && rng.random_bool(0.5);
            }
            for i in 0..n {
                let live = MODES[rng.random_range(0..3)];
                let want = MODES[rng.random_range(0..3)];
                let pick = |rng: &mut SmallRng| {
                    let mut v: Vec<String> = CIDRS
                        .iter()
                        .filter(|_| rng.random_bool(0.4))
                        .map(|s| s.to_string())
                        .collect();
                    if v.is_empty() {
                        v.push(CIDRS[0].to_string());
                    }
                    v
                };
                let live_cidrs = pick(&mut rng);
                let want_cidrs = (want.public && rng.random_bool(0.5)).then(|| pick(&mut rng));
                let from = if want.private {
                    vec![format!("10.{i}.0.0/16")]
                } else {
                    vec![]
                };
                fleet.clusters.push(ClusterSpec {
                    name: format!("p{i}"),
                    region: "us-east-1".into(),
                    vpc: format!("vpc-0p{}", rng.random_range(0..2)),
                    sg: format!("sg-0d{i:015x}"),
                    live,
                    live_cidrs,
                    want,
                    want_cidrs,
                    from,
                    platform_update: rng
                        .random_bool(0.2)
                        .then(|| Duration::from_millis(rng.random_range(50..300))),
                    exclusive: false,
                });
            }
            // A permanent fault only means something on a cluster that moves.
            let doomed = if doom {
                fleet.clusters.iter().position(|c| c.live != c.want)
            } else {
                None
            };
            Case {
                fleet,
                behaviour: Behaviour {
                    update_duration: Duration::from_millis(150),
                    latency: Duration::from_millis(latency),
                    latency_jitter: Duration::from_millis(latency),
                    throttle_rate: throttle,
                    error_rate: error,
                    seed,
                    ..Behaviour::default()
                },
                doomed,
            }
        })
}

async fn run_case(case: Case) -> Result<(), TestCaseError> {
    use eksgate::apply::{self, ApplyOptions, ClusterOutcome};
    use eksgate::event::StepOutcome;
    use eksgate::provider::aws::{AwsOptions, AwsProvider};
    use eksgate::wait::WaitOptions;

    let faults = match case.doomed {
        Some(i) => format!(
            "[[faults.failed_update]]\ncluster = \"{}\"\nregion = \"us-east-1\"\nalways = true\nerror_code = \"AccessDenied\"\nerror_message = \"missing route53:AssociateVPCWithHostedZone\"\n",
            case.fleet.clusters[i].name
        ),
        None => String::new(),
    };
    let sim = start(&case.fleet.world(&faults), case.behaviour.clone()).await;
    let initial = Initial::of(&sim);
    let loaded = eksgate::manifest::load_bytes(vec![(
        "fleet.toml".into(),
        case.fleet.manifest().into_bytes(),
    )])
    .map_err(|d| TestCaseError::fail(eksgate::diagnostic::render_all(&d, false)))?;
    let provider = AwsProvider::new(AwsOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(sim.url()),
        static_credentials: Some(("AKIDPROPTEST".into(), "proptest-secret".into())),
        ..AwsOptions::default()
    })
    .await;
    let (_live, plan) = eksgate::workflow::read_and_plan(&provider, &loaded.desired, 10)
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    // These fleets declare no `private_access_principals` (public access
    // going off warns of that) and their VPCs have no NAT gateway, so a
    // cluster the plan makes public only with restricted CIDRs is warned of
    // (nodes with public addresses cannot be checked); nothing else is found.
    let expected = |f: &eksgate::plan::Finding| {
        f.code == eksgate::plan::FindingCode::NoPrivateAccessPrincipals
            || (f.code == eksgate::plan::FindingCode::NoNatGateway
                && !f.blocks()
                && case
                    .fleet
                    .clusters
                    .iter()
                    .any(|c| c.name == f.cluster.name && c.want.public && !c.want.private))
    };
    prop_assert!(plan.findings.iter().all(expected), "{:?}", plan.findings);
    let opts = ApplyOptions {
        parallelism: 10,
        allow_lockout: false,
        wait: WaitOptions {
            first_interval: Duration::from_millis(20),
            max_interval: Duration::from_millis(100),
            timeout: Duration::from_secs(20),
        },
        ..ApplyOptions::default()
    };
    let (tx, mut rx) = eksgate::channel::channel();
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let (_cancel_tx, cancel_rx) = apply::cancel_signal();
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        apply::apply(&plan, &provider, &opts, tx, cancel_rx),
    )
    .await
    .map_err(|_| TestCaseError::fail("apply did not finish in 60s"))?;
    let _ = drain.await;

    let sum = invariants::check(&sim, &initial).await;
    prop_assert!(sum.violations.is_empty(), "{:#?}", sum.violations);

    match case.doomed {
        None => {
            prop_assert!(report.success(), "{:#?}", report.steps);
            let div = case.fleet.divergence(&sim, |_| true);
            prop_assert!(div.is_empty(), "{div:?}");
        }
        Some(d) => {
            let doomed = &case.fleet.clusters[d];
            // Exactly the doomed cluster's first endpoint step fails and
            // its dependents (its later endpoint step) are skipped.
            for s in &report.steps {
                let mine = s.cluster.as_deref() == Some(doomed.name.as_str());
                match s.outcome {
                    StepOutcome::Failed => {
                        prop_assert!(mine, "{} failed: {}", s.id, s.message);
                        prop_assert!(s.message.contains("AccessDenied"), "{}", s.message);
                    }
                    StepOutcome::Skipped => {
                        prop_assert!(mine, "{} skipped", s.id);
                        let cause = s.blocked_by.clone().unwrap_or_default();
                        prop_assert!(
                            report
                                .step(&cause)
                                .is_some_and(|c| c.outcome == StepOutcome::Failed
                                    && c.cluster.as_deref() == Some(doomed.name.as_str())),
                            "{} skipped because of {cause}",
                            s.id
                        );
                    }
                    o => prop_assert!(o.is_success(), "{}: {o}", s.id),
                }
            }
            prop_assert!(report
                .steps
                .iter()
                .any(|s| s.outcome == StepOutcome::Failed));
            for c in &report.clusters {
                if c.key.name != doomed.name {
                    prop_assert!(
                        matches!(
                            c.outcome,
                            ClusterOutcome::Done | ClusterOutcome::AlreadyConverged
                        ),
                        "{}: {:?}",
                        c.key.name,
                        c.outcome
                    );
                }
            }
            let div = case.fleet.divergence(&sim, |c| c.name != doomed.name);
            prop_assert!(div.is_empty(), "{div:?}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn reliability_random_fleets_keep_invariants_and_converge(case in arb_case()) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_case(case))?;
    }
}

// ---------------------------------------------------------------------------
// 3. Crash and resume

/// Starts `eksgate` with the harness's environment and returns the child.
fn spawn_eksgate(sim: &SimHandle, dir: &std::path::Path, args: &[&str]) -> tokio::process::Child {
    eksgate_cmd(sim, dir, args)
        // Files, not pipes: nobody reads a pipe until the process ends, and
        // a full pipe would stall it mid-apply.
        .stdout(std::fs::File::create(dir.join("stdout.txt")).expect("stdout file"))
        .stderr(std::fs::File::create(dir.join("stderr.txt")).expect("stderr file"))
        .spawn()
        .expect("eksgate starts")
}

fn signal(child: &tokio::process::Child, sig: &str) {
    let pid = child.id().expect("the child is running").to_string();
    let status = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig} {pid}");
}

async fn wait_output(
    mut child: tokio::process::Child,
    dir: &std::path::Path,
) -> std::process::Output {
    let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .expect("eksgate ended within 2 minutes")
        .expect("eksgate ran");
    std::process::Output {
        status,
        stdout: std::fs::read(dir.join("stdout.txt")).unwrap_or_default(),
        stderr: std::fs::read(dir.join("stderr.txt")).unwrap_or_default(),
    }
}

/// Endpoint updates started so far.
fn started_updates(sim: &SimHandle) -> usize {
    sim.history()
        .iter()
        .filter(|e| {
            matches!(&e.event, Event::UpdateStatus { update_type, status, .. }
                if status == "InProgress" && update_type == "EndpointAccessUpdate")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_sigkill_at_random_points_then_resume() {
    let mut fleet = mixed_fleet(18);
    // AWS's own updates are the soak's business; here they only slow the
    // second run down.
    for c in &mut fleet.clusters {
        c.platform_update = None;
    }
    for seed in [11u64, 12, 13, 14] {
        let behaviour = Behaviour {
            update_duration: Duration::from_millis(500),
            latency: Duration::from_millis(5),
            latency_jitter: Duration::from_millis(20),
            throttle_rate: 0.1,
            seed,
            ..Behaviour::default()
        };
        let sim = start(&fleet.world(""), behaviour).await;
        let initial = fleet.declared(Initial::of(&sim));
        let dir = write_manifest(&fleet);
        let planned = eksgate(
            &sim,
            dir.path(),
            &["plan", "--format", "json", "fleet.toml"],
        )
        .await;
        let planned_updates = endpoint_steps_planned(&stdout(&planned));

        // Kill at a seeded point of the apply: once the k-th update has
        // started, plus a seeded delay (mid-wait, mid-call, between steps).
        let mut rng = SmallRng::seed_from_u64(seed);
        let k = rng.random_range(1..=planned_updates);
        let delay = rng.random_range(0..600);
        let child = spawn_eksgate(&sim, dir.path(), &APPLY);
        for _ in 0..600 {
            if started_updates(&sim) >= k {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(delay)).await;
        signal(&child, "-KILL");
        let killed = wait_output(child, dir.path()).await;
        let first_run = invariants::check(&sim, &initial).await;

        let out = eksgate(&sim, dir.path(), &APPLY).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "seed {seed} (killed {delay}ms after update {k} started, status {:?})\n{}\n{}",
            killed.status,
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(fleet.divergence(&sim, |_| true), Vec::<String>::new());
        let sum = invariants::check(&sim, &initial).await;
        sum.assert_clean(&format!("sigkill seed {seed}, {delay}ms after update {k}"));
        // Not a single update more than planned across both runs: nothing
        // finished before the kill was done again.
        assert_eq!(sum.updates_started, planned_updates, "seed {seed}: {sum:?}");
        assert_eq!(sum.updates_successful, planned_updates, "seed {seed}");
        eprintln!(
            "sigkill seed {seed}: killed {delay}ms after update {k} started; {} of {planned_updates} updates had started",
            first_run.updates_started
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_sigint_during_a_wait_lists_running_updates_then_resume() {
    let fleet = mixed_fleet(6);
    let behaviour = Behaviour {
        update_duration: Duration::from_secs(3),
        ..quick()
    };
    let sim = start(&fleet.world(""), behaviour).await;
    let initial = fleet.declared(Initial::of(&sim));
    let dir = write_manifest(&fleet);
    let child = spawn_eksgate(&sim, dir.path(), &APPLY);
    // Wait (bounded) until an update eksgate started is running.
    let mut started = None;
    for _ in 0..200 {
        started = sim.history().into_iter().find_map(|e| match e.event {
            Event::UpdateStatus {
                update_id, status, ..
            } if status == "InProgress" => Some(update_id),
            _ => None,
        });
        if started.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = started.expect("an update started within 10s");
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&child, "-INT");
    let out = wait_output(child, dir.path()).await;
    let se = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{}\n{se}", stdout(&out));
    assert!(
        se.contains(&started),
        "stderr does not list {started}:\n{se}"
    );
    assert!(!se.contains("panicked"), "{se}");

    let out = eksgate(&sim, dir.path(), &APPLY).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(fleet.divergence(&sim, |_| true), Vec::<String>::new());
    invariants::check(&sim, &initial)
        .await
        .assert_clean("sigint then resume");
}

// ---------------------------------------------------------------------------
// 4. An update that outlives the wait

#[tokio::test]
async fn reliability_stuck_update_times_out_then_a_later_run_converges() {
    // One cluster, one CIDR change: a single update.
    let mut fleet = mixed_fleet(4);
    fleet.clusters.retain(|c| c.name == "c003");
    let behaviour = Behaviour {
        update_duration: Duration::from_secs(3),
        ..quick()
    };
    let sim = start(&fleet.world(""), behaviour).await;
    let initial = fleet.declared(Initial::of(&sim));
    let dir = write_manifest(&fleet);
    let mut args = APPLY.to_vec();
    args.splice(2..2, ["--wait-timeout", "1s"]);
    let out = eksgate(&sim, dir.path(), &args).await;
    let (so, se) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{:?}\n{so}\n{se}", out.status);
    assert!(so.contains("timed out"), "{so}");
    assert!(
        so.contains("did not finish within 1s")
            && so.contains("running `eksgate apply` again resumes"),
        "{so}"
    );
    assert!(!se.contains("panicked"), "{se}");

    // Bounded wait for AWS to finish the update on its own.
    for _ in 0..100 {
        let running = sim.snapshot()["regions"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["clusters"].as_array().cloned().unwrap_or_default())
            .any(|c| c["status"] == "UPDATING");
        if !running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = eksgate(&sim, dir.path(), &APPLY).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(fleet.divergence(&sim, |_| true), Vec::<String>::new());
    invariants::check(&sim, &initial)
        .await
        .assert_clean("timeout then resume");
}

// ---------------------------------------------------------------------------
// 5. Hostile input

/// Iterations for the arbitrary-bytes tests: 2,000 in CI, more with
/// `EKSGATE_FUZZ_CASES` (the longer run in docs/reliability.md used 50,000).
fn fuzz_cases() -> u32 {
    std::env::var("EKSGATE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: fuzz_cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn reliability_manifest_loader_survives_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        prefix in proptest::sample::select(vec!["", "[[cluster]]\nname = \"a\"\nregion = \"us-east-1\"\n", "[defaults]\n"]),
    ) {
        let mut input = prefix.as_bytes().to_vec();
        input.extend(bytes);
        match eksgate::manifest::load_bytes(vec![("m.toml".into(), input)]) {
            Ok(_) => {}
            Err(diags) => {
                prop_assert!(!diags.is_empty());
                let text = eksgate::diagnostic::render_all(&diags, false);
                prop_assert!(text.contains("error"), "{text}");
            }
        }
    }
}

/// The damaged answers end in a clear error naming the operation, or the
/// SDK's retries get a good answer; never a panic, never a wrong write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_malformed_answers_give_clear_errors_not_panics() {
    use eksgate::provider::aws::{AwsOptions, AwsProvider};

    let fleet = mixed_fleet(6);
    let manifest = fleet.manifest();
    let loaded =
        eksgate::manifest::load_bytes(vec![("fleet.toml".into(), manifest.into_bytes())]).unwrap();
    // In-process, one attempt per call: every damaged answer surfaces.
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 0..12u64 {
        let behaviour = Behaviour {
            malformed_rate: 1.0,
            seed,
            ..quick()
        };
        let sim = start(&fleet.world(""), behaviour).await;
        let provider = AwsProvider::new(AwsOptions {
            region: Some("us-east-1".into()),
            endpoint_url: Some(sim.url()),
            static_credentials: Some(("AKIDMALFORMED".into(), "malformed-secret".into())),
            max_attempts: Some(1),
            ..AwsOptions::default()
        })
        .await;
        let got = eksgate::workflow::read_and_plan(&provider, &loaded.desired, 4).await;
        for e in sim.history() {
            if let Event::Request { outcome, .. } = e.event {
                if let Some(k) = outcome.strip_prefix("ok+malformed:") {
                    kinds.insert(k.to_string());
                }
            }
        }
        match got {
            // Every answer is damaged, and the reads of one plan run at
            // once: the first to fail may be any of them, and it is named.
            Err(e) => {
                let text = e.render(false);
                assert!(text.starts_with("error: "), "seed {seed}: {text}");
                // Every call a plan reads with (`plan` needs these).
                let named = eksgate::explain::READ_ACTIONS.iter().any(|action| {
                    let op = action.split_once(':').map_or(*action, |(_, op)| op);
                    text.contains(&format!("{op} failed: "))
                });
                assert!(named, "seed {seed}: {text}");
                assert!(!text.contains("Unknown: "), "seed {seed}: {text}");
            }
            // Damage the SDK cannot see (an unknown status, an emptied
            // cluster) must not pass for a healthy cluster: every cluster is
            // blocked with a finding.
            Ok((_, plan)) => {
                assert!(
                    plan.steps.is_empty(),
                    "seed {seed}: planned on damaged answers: {:?}",
                    plan.steps.iter().map(|s| &s.id).collect::<Vec<_>>()
                );
                assert!(!plan.findings.is_empty(), "seed {seed}");
            }
        }
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["missing_fields", "truncated", "unknown_enum", "wrong_type"],
        "every kind of damage was tried"
    );

    // The binary, with retries, at a damaging rate, for three seeds.
    for seed in [21u64, 22, 23] {
        let behaviour = Behaviour {
            malformed_rate: 0.3,
            seed,
            ..quick()
        };
        let sim = start(&fleet.world(""), behaviour).await;
        // A run a damaged answer stopped may end short of the manifest.
        let initial = fleet.declared(Initial::of(&sim)).during_run();
        let dir = write_manifest(&fleet);
        let out = eksgate(&sim, dir.path(), &APPLY).await;
        let (so, se) = (stdout(&out), stderr(&out));
        assert!(!se.contains("panicked"), "seed {seed}: {se}");
        match out.status.code() {
            Some(0) => {}
            Some(1) => {
                let named = [
                    "DescribeCluster",
                    "ListUpdates",
                    "DescribeUpdate",
                    "UpdateClusterConfig",
                    "DescribeVpcAttribute",
                    "DescribeVpcs",
                    "DescribeDhcpOptions",
                    "DescribeSecurityGroups",
                    "ModifyVpcAttribute",
                    "AuthorizeSecurityGroupIngress",
                    "DescribeSecurityGroupRules",
                    "RevokeSecurityGroupIngress",
                ];
                let clear = se.lines().chain(so.lines()).any(|l| {
                    (l.starts_with("error:") || l.contains("failed"))
                        && named.iter().any(|op| l.contains(op))
                });
                assert!(
                    clear,
                    "seed {seed}: no error naming an operation\n{so}\n{se}"
                );
            }
            other => panic!("seed {seed}: exit {other:?}\n{so}\n{se}"),
        }
        let sum = invariants::check(&sim, &initial).await;
        assert!(sum.malformed > 0, "seed {seed}");
        sum.assert_clean(&format!("malformed seed {seed}"));
    }
}

// ---------------------------------------------------------------------------
// 6. Secrets, altered plans, pinned accounts

const LEAK_KEY: &str = "AKIDLEAKCHECK0001";
const LEAK_SECRET: &str = "SECRETLEAKCHECKxyz";
const LEAK_TOKEN: &str = "TOKENLEAKCHECK";

fn assert_no_secret(what: &str, text: &str) {
    for s in [LEAK_KEY, LEAK_SECRET, "SECRETLEAK", LEAK_TOKEN] {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(s)).take(5).collect();
        assert!(
            lines.is_empty(),
            "{what} contains `{s}`:\n{}",
            lines.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_secrets_never_appear_at_any_log_level() {
    let fleet = mixed_fleet(3);
    let sim = start(&fleet.world(""), quick()).await;
    let dir = write_manifest(&fleet);
    // A second manifest whose cluster does not exist: the error path.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(
        bad.path().join("fleet.toml"),
        "[[cluster]]\nname = \"ghost\"\nregion = \"us-east-1\"\naccount = \"999999999999\"\npublic_access = true\nprivate_access = true\n",
    )
    .unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", LEAK_KEY),
        ("AWS_SECRET_ACCESS_KEY", LEAK_SECRET),
        ("AWS_SESSION_TOKEN", LEAK_TOKEN),
        ("RUST_LOG", "trace"),
    ];
    let runs: [(&std::path::Path, Vec<&str>); 3] = [
        (
            dir.path(),
            vec!["-vvv", "plan", "--out", "plan.json", "fleet.toml"],
        ),
        (
            dir.path(),
            vec![
                "-vvv",
                "apply",
                "--auto-approve",
                "--poll-interval",
                "100ms",
                "--plan",
                "plan.json",
            ],
        ),
        (
            bad.path(),
            vec!["-vvv", "apply", "--auto-approve", "fleet.toml"],
        ),
    ];
    for (k, (d, args)) in runs.iter().enumerate() {
        let out = eksgate_env(&sim, d, args, &env).await;
        let (so, se) = (stdout(&out), stderr(&out));
        // The run really logged at trace and really reached the emulator.
        assert!(se.contains("TRACE"), "run {k} logged no trace lines");
        let code = out.status.code();
        assert_eq!(
            code,
            Some(if k == 2 { 1 } else { 0 }),
            "run {k}\n{so}\n{se}"
        );
        assert_no_secret(&format!("stdout of run {k}"), &so);
        assert_no_secret(&format!("stderr of run {k}"), &se);
    }
    let saved = std::fs::read_to_string(dir.path().join("plan.json")).unwrap();
    assert_no_secret("the saved plan", &saved);
    assert!(fleet.divergence(&sim, |_| true).is_empty());
}

fn write_calls(sim: &SimHandle) -> Vec<(String, Option<String>, String)> {
    requests(sim)
        .into_iter()
        .filter(|(_, op, _, _)| {
            matches!(
                op.as_str(),
                "UpdateClusterConfig" | "ModifyVpcAttribute" | "AuthorizeSecurityGroupIngress"
            )
        })
        .map(|(_, op, target, outcome)| (op, target, outcome))
        .collect()
}

#[tokio::test]
async fn reliability_an_altered_saved_plan_is_refused_before_any_write() {
    let fleet = mixed_fleet(4);
    let planned = Test::new()
        .world(&fleet.world(""))
        .file("fleet.toml", &fleet.manifest())
        .args(["plan", "--out", "plan.json", "fleet.toml"])
        .run()
        .await
        .success();
    let text = planned.read("plan.json");
    // Turn a staged step's target into "public off" without re-checksumming.
    let altered = text.replacen("\"private_access\": true", "\"private_access\": false", 1);
    assert_ne!(altered, text);
    let out = planned
        .again()
        .file("plan.json", &altered)
        .args(["apply", "--auto-approve", "--plan", "plan.json"])
        .run()
        .await
        .failure();
    let se = out.stderr();
    assert!(
        se.contains("error:") && se.contains("was altered after it was saved"),
        "{se}"
    );
    assert_eq!(write_calls(out.sim()), vec![]);
}

#[tokio::test]
async fn reliability_a_pinned_account_mismatch_makes_no_write() {
    let fleet = mixed_fleet(3);
    let manifest = fleet
        .manifest()
        .replace("[[cluster]]\n", "[[cluster]]\naccount = \"999999999999\"\n");
    let out = Test::new()
        .world(&fleet.world(""))
        .file("fleet.toml", &manifest)
        .args(["apply", "--auto-approve", "fleet.toml"])
        .run()
        .await
        .failure();
    let (so, se) = (out.stdout(), out.stderr());
    assert!(format!("{so}{se}").contains("999999999999"), "{so}\n{se}");
    assert_eq!(write_calls(out.sim()), vec![]);
    // It asked who the credentials are before anything else.
    let ops: Vec<String> = out.requests().into_iter().map(|r| r.1).collect();
    assert_eq!(
        ops.first().map(String::as_str),
        Some("GetCallerIdentity"),
        "{ops:?}"
    );
}
