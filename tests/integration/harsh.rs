//! eksgate against the emulator where AWS is unkind (DESIGN.md section 1b):
//! a long update history listed in no order, an update the cluster does not
//! show yet, a security group at its rule quota, refused credentials, an
//! assumed-role session shorter than the rollout, and changes answered with
//! a 5xx after they took effect. The real binary, the real SDK, loopback.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eksgate::sim::{Behaviour, Event};

use crate::common::*;

/// Requests per (operation, outcome), for reporting what a run cost.
fn calls(sim: &eksgate::sim::SimHandle) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for (_, op, _, outcome) in requests(sim) {
        *out.entry((op, outcome)).or_insert(0) += 1;
    }
    out
}

fn count(calls: &BTreeMap<(String, String), usize>, op: &str) -> usize {
    calls
        .iter()
        .filter(|((o, _), _)| o == op)
        .map(|(_, n)| n)
        .sum()
}

/// Updates started per cluster (the emulator's `InProgress` events of
/// endpoint updates).
fn started_updates(sim: &eksgate::sim::SimHandle) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in sim.history() {
        if let Event::UpdateStatus {
            cluster,
            update_type,
            status,
            ..
        } = e.event
        {
            if update_type == "EndpointAccessUpdate" && status == "InProgress" {
                *out.entry(cluster).or_insert(0) += 1;
            }
        }
    }
    out
}

const VETERAN: &str = r#"
[[vpc]]
id = "vpc-0old"
region = "us-east-1"
dns_hostnames = true

[[cluster]]
name = "veteran"
region = "us-east-1"
vpc_id = "vpc-0old"
public_access = true
private_access = false
past_updates = 150
platform_update = "1500ms"
"#;

/// 150 past updates in no order and one of AWS's own running: eksgate does
/// not describe them all; the one `ResourceInUseException` its change gets
/// names the running update, which it waits for, then it converges.
#[tokio::test]
async fn a_cluster_with_a_long_history_and_a_running_update_converges_with_one_rejected_call() {
    let sim = start(VETERAN, quick()).await;
    let dir = manifest_dir(
        "[[cluster]]\nname = \"veteran\"\nregion = \"us-east-1\"\npublic_access = true\nprivate_access = true\n",
    );
    let out = eksgate(&sim, dir.path(), &apply_args(&[])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let snap = sim.snapshot();
    assert_eq!(snap["regions"][0]["clusters"][0]["private_access"], true);
    let cost = calls(&sim);
    eprintln!("calls on a cluster with 150 past updates: {cost:?}");
    let rejected: Vec<_> = cost.iter().filter(|((_, o), _)| o != "ok").collect();
    assert_eq!(
        rejected,
        [(
            &(
                "UpdateClusterConfig".to_string(),
                "ResourceInUseException".to_string()
            ),
            &1
        )],
        "at most one rejected call"
    );
    assert_eq!(started_updates(&sim)["veteran"], 1);
    // Two pages per listing; no describe of the 150 finished updates.
    assert!(count(&cost, "ListUpdates") <= 6, "{cost:?}");
    assert!(count(&cost, "DescribeUpdate") < 150, "{cost:?}");
}

const ONE: &str = r#"
[[vpc]]
id = "vpc-0one"
region = "us-east-1"
dns_hostnames = true

[[cluster]]
name = "payments"
region = "us-east-1"
vpc_id = "vpc-0one"
public_access = true
private_access = false
"#;

/// An update started just before the run, while the cluster still says
/// `ACTIVE`, is found and waited for; eksgate's change never collides with it.
#[tokio::test]
async fn an_update_the_cluster_does_not_show_yet_is_waited_for() {
    let sim = start(
        ONE,
        Behaviour {
            update_duration: Duration::from_millis(1500),
            status_lag: Duration::from_secs(10),
            ..quick()
        },
    )
    .await;
    let client = eks(&sim, "us-east-1").await;
    client
        .update_cluster_config()
        .name("payments")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .endpoint_private_access(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let status = client
        .describe_cluster()
        .name("payments")
        .send()
        .await
        .unwrap()
        .cluster()
        .unwrap()
        .status()
        .cloned();
    assert_eq!(status, Some(aws_sdk_eks::types::ClusterStatus::Active));
    let dir = manifest_dir(
        "[[cluster]]\nname = \"payments\"\nregion = \"us-east-1\"\npublic_access = true\nprivate_access = true\npublic_access_cidrs = [\"203.0.113.0/24\"]\n",
    );
    let out = eksgate(&sim, dir.path(), &apply_args(&[])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rejected: Vec<_> = requests(&sim)
        .into_iter()
        .filter(|(_, _, _, o)| o != "ok")
        .collect();
    assert!(rejected.is_empty(), "{rejected:?}");
    let c = &sim.snapshot()["regions"][0]["clusters"][0];
    assert_eq!(c["private_access"], true);
    assert_eq!(
        c["public_access_cidrs"],
        serde_json::json!(["203.0.113.0/24"])
    );
}

/// Two clusters, each with its own security group; `sg-0full` holds 59
/// inbound rules, one short of EC2's default quota.
fn quota_world() -> String {
    let full: Vec<String> = (1..=59).map(|i| format!("\"10.{i}.0.0/16\"")).collect();
    format!(
        r#"
[[vpc]]
id = "vpc-0q"
region = "us-east-1"
dns_hostnames = true

[[security_group]]
id = "sg-0full"
region = "us-east-1"
vpc_id = "vpc-0q"
https_ingress = [{}]

[[security_group]]
id = "sg-0roomy"
region = "us-east-1"
vpc_id = "vpc-0q"

[[cluster]]
name = "crowded"
region = "us-east-1"
vpc_id = "vpc-0q"
security_group = "sg-0full"
public_access = true
private_access = false

[[cluster]]
name = "spacious"
region = "us-east-1"
vpc_id = "vpc-0q"
security_group = "sg-0roomy"
public_access = true
private_access = false
"#,
        full.join(", ")
    )
}

const QUOTA_MANIFEST: &str = r#"
[[cluster]]
name = "crowded"
region = "us-east-1"
public_access = true
private_access = true
private_access_from = ["10.100.0.0/16", "10.101.0.0/16"]

[[cluster]]
name = "spacious"
region = "us-east-1"
public_access = true
private_access = true
private_access_from = ["10.3.0.0/16", "10.4.0.0/16"]
"#;

/// A security group that the plan would fill past its quota blocks its
/// cluster with a clear finding; the other cluster is applied.
#[tokio::test]
async fn a_security_group_at_its_quota_blocks_only_its_cluster() {
    let sim = start(&quota_world(), quick()).await;
    let dir = manifest_dir(QUOTA_MANIFEST);
    let out = eksgate(&sim, dir.path(), &apply_args(&[])).await;
    let (so, se) = (stdout(&out), stderr(&out));
    assert_ne!(out.status.code(), Some(0), "{so}\n{se}");
    let all = format!("{so}\n{se}");
    assert!(
        all.contains("security group `sg-0full` holds 59 inbound IPv4 rules and the plan would add 2, past its quota of 60"),
        "{all}"
    );
    assert!(all.contains("--sg-rule-quota N"), "{all}");
    let snap = sim.snapshot();
    let clusters = snap["regions"][0]["clusters"].as_array().unwrap();
    let by = |n: &str| clusters.iter().find(|c| c["name"] == n).unwrap().clone();
    assert_eq!(by("spacious")["private_access"], true);
    assert_eq!(by("crowded")["private_access"], false);
    let rejected: Vec<_> = requests(&sim)
        .into_iter()
        .filter(|(_, _, _, o)| o != "ok")
        .collect();
    assert!(rejected.is_empty(), "{rejected:?}");
}

/// `--sg-rule-quota` is the account's quota when AWS raised it: the plan
/// counts against it.
#[tokio::test]
async fn the_plan_counts_against_the_quota_it_is_told() {
    let sim = start(&quota_world(), quick()).await;
    let dir = manifest_dir(QUOTA_MANIFEST);
    let raised = eksgate(
        &sim,
        dir.path(),
        &["plan", "prod.toml", "--sg-rule-quota", "100"],
    )
    .await;
    assert_eq!(raised.status.code(), Some(0), "{}", stderr(&raised));
    assert!(
        !stdout(&raised).contains("past its quota"),
        "{}",
        stdout(&raised)
    );
    let lowered = eksgate(
        &sim,
        dir.path(),
        &["plan", "prod.toml", "--sg-rule-quota", "1"],
    )
    .await;
    let text = format!("{}\n{}", stdout(&lowered), stderr(&lowered));
    assert!(
        text.contains("security group `sg-0full` holds 59 inbound IPv4 rules and the plan would add 2, past its quota of 1"),
        "{text}"
    );
    assert!(
        text.contains("security group `sg-0roomy` holds 0 inbound IPv4 rules and the plan would add 2, past its quota of 1"),
        "{text}"
    );
}

/// Credentials AWS does not know fail the run at once, with one error that
/// says where the credentials came from, and no retries.
#[tokio::test]
async fn a_refused_key_fails_fast_with_one_error() {
    let sim = start(ONE, quick()).await;
    let dir = manifest_dir(
        "[[cluster]]\nname = \"payments\"\nregion = \"us-east-1\"\npublic_access = true\nprivate_access = true\n",
    );
    let began = Instant::now();
    let out = eksgate_env(
        &sim,
        dir.path(),
        &apply_args(&[]),
        &[("AWS_ACCESS_KEY_ID", "AKIDNOBODYKNOWS")],
    )
    .await;
    let took = began.elapsed();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        ["error: AWS refused the access key ending `NOWS` from the environment (`AWS_ACCESS_KEY_ID`): DescribeCluster failed: UnrecognizedClientException: The security token included in the request is invalid."],
        "{err}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let refused = requests(&sim).len();
    assert!(refused <= 2, "no retry storm: {:?}", requests(&sim));
}

const ROLE_WORLD: &str = r#"
[[account]]
id = "111122223333"
access_keys = [{ id = "AKIDEKSGATETEST", secret = "eksgate-test-secret" }]
roles = ["arn:aws:iam::111122223333:role/deployer"]

[[vpc]]
id = "vpc-0r"
region = "us-east-1"
account = "111122223333"
dns_support = false

[[security_group]]
id = "sg-0r"
region = "us-east-1"
account = "111122223333"
vpc_id = "vpc-0r"

[[cluster]]
name = "far"
region = "us-east-1"
account = "111122223333"
vpc_id = "vpc-0r"
security_group = "sg-0r"
public_access = true
private_access = false
"#;

/// A rollout (DNS, ingress, two endpoint updates) that lasts several times
/// its assumed-role session: the credentials are refreshed and it converges.
#[tokio::test]
async fn a_rollout_longer_than_its_assumed_role_session_converges() {
    let sim = start(
        ROLE_WORLD,
        Behaviour {
            update_duration: Duration::from_millis(1500),
            session_duration: Some(Duration::from_millis(1000)),
            ..quick()
        },
    )
    .await;
    let dir = manifest_dir(
        "[defaults]\nrole_arn = \"arn:aws:iam::111122223333:role/deployer\"\naccount = \"111122223333\"\n\n[[cluster]]\nname = \"far\"\nregion = \"us-east-1\"\npublic_access = false\nprivate_access = true\nprivate_access_from = [\"10.9.0.0/16\"]\n",
    );
    let began = Instant::now();
    let out = eksgate(&sim, dir.path(), &apply_args(&[])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        began.elapsed() > Duration::from_secs(3),
        "longer than the session"
    );
    let c = &sim.snapshot()["regions"][0]["clusters"][0];
    assert_eq!(c["public_access"], false);
    assert_eq!(c["private_access"], true);
    let cost = calls(&sim);
    eprintln!("calls of a rollout outliving its session: {cost:?}");
    assert!(count(&cost, "AssumeRole") >= 2, "{cost:?}");
    let rejected: Vec<_> = cost.iter().filter(|((_, o), _)| o != "ok").collect();
    assert!(rejected.is_empty(), "{rejected:?}");
}

/// A fleet where one change in five takes effect and is then answered with
/// a 500 or 503, and one call in ten is a 503 (EKS
/// `ServiceUnavailableException`, EC2 `Unavailable`): the SDK retries, each retry ends converged (the same update
/// for the same `clientRequestToken`), no update is started twice and no
/// step fails.
#[tokio::test]
async fn changes_answered_with_a_5xx_after_taking_effect_converge_without_duplicates() {
    let mut world = String::new();
    let mut manifest = String::new();
    for i in 0..6 {
        world.push_str(&format!(
            "[[vpc]]\nid = \"vpc-0f{i}\"\nregion = \"us-east-1\"\ndns_support = false\n\n[[security_group]]\nid = \"sg-0f{i}\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-0f{i}\"\n\n[[cluster]]\nname = \"c{i}\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-0f{i}\"\nsecurity_group = \"sg-0f{i}\"\npublic_access = true\nprivate_access = false\n\n"
        ));
        manifest.push_str(&format!(
            "[[cluster]]\nname = \"c{i}\"\nregion = \"us-east-1\"\npublic_access = false\nprivate_access = true\nprivate_access_from = [\"10.{i}.0.0/16\"]\n\n"
        ));
    }
    let sim = start(
        &world,
        Behaviour {
            applied_error_rate: 0.2,
            unavailable_rate: 0.1,
            seed: 13,
            ..quick()
        },
    )
    .await;
    let dir = manifest_dir(&manifest);
    let out = eksgate(&sim, dir.path(), &apply_args(&[])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains(", 0 failed"), "{}", stdout(&out));
    let applied: usize = requests(&sim)
        .iter()
        .filter(|(_, _, _, o)| o.starts_with("applied+"))
        .count();
    assert!(applied > 0, "the fault happened");
    let unavailable = requests(&sim)
        .iter()
        .filter(|(_, _, _, o)| o == "Unavailable" || o == "ServiceUnavailableException")
        .count();
    assert!(unavailable > 0, "503s happened and were retried");
    eprintln!("changes answered with a 5xx after taking effect: {applied}");
    // Two endpoint updates per cluster (both on, then public off), each once.
    for (cluster, n) in started_updates(&sim) {
        assert_eq!(n, 2, "`{cluster}` had {n} updates started");
    }
    let snap = sim.snapshot();
    for c in snap["regions"][0]["clusters"].as_array().unwrap() {
        assert_eq!(c["public_access"], false, "{c}");
        assert_eq!(c["private_access"], true, "{c}");
    }
    for g in snap["regions"][0]["security_groups"].as_array().unwrap() {
        assert_eq!(g["ingress"].as_array().unwrap().len(), 1, "{g}");
    }
}

/// The same when the refused key was to assume a role: STS's code, not a
/// transport error, in one line.
#[tokio::test]
async fn a_refused_key_behind_a_role_fails_fast_with_one_error() {
    let sim = start(ROLE_WORLD, quick()).await;
    let dir = manifest_dir(
        "[defaults]\nrole_arn = \"arn:aws:iam::111122223333:role/deployer\"\n\n[[cluster]]\nname = \"far\"\nregion = \"us-east-1\"\npublic_access = true\nprivate_access = true\n",
    );
    let out = eksgate_env(
        &sim,
        dir.path(),
        &["plan", "prod.toml"],
        &[("AWS_SECRET_ACCESS_KEY", "not-the-secret")],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(
        err.lines().next(),
        Some("error: AWS refused the access key ending `TEST` from the environment (`AWS_ACCESS_KEY_ID`): AssumeRole failed: SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."),
        "{err}"
    );
    assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1);
    assert!(!err.contains("WARN"), "{err}");
    assert!(requests(&sim).len() <= 2, "{:?}", requests(&sim));
}
