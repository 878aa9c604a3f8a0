//! Who can still use the Kubernetes API once public access is off (issue:
//! nobody loses the API): `private_access_principals` checked against the
//! clusters' access entries, the `CONFIG_MAP` block and its two ways out
//! (`authentication_mode`, `--allow-unverified-access`), and apply's check
//! right before the public-off call. Through the binary, against the
//! emulator.

use std::time::Duration;

use eksgate::sim::{Event, HistoryEntry};
use serde_json::Value;

use crate::common::*;
use crate::test::{Test, MANIFEST, NO_ARGS};

const BASTION: &str = "arn:aws:iam::123456789012:role/bastion";
const VIEW_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";

/// `payments`: its bastion role has an entry (stored with the role's path)
/// and a policy. `ledger`: no entry. `legacy`: `CONFIG_MAP`. All public only.
const WORLD: &str = r#"
[[vpc]]
id = "vpc-0access"
region = "us-east-1"

[[security_group]]
id = "sg-0payments"
region = "us-east-1"
vpc_id = "vpc-0access"

[[security_group]]
id = "sg-0ledger"
region = "us-east-1"
vpc_id = "vpc-0access"

[[security_group]]
id = "sg-0legacy"
region = "us-east-1"
vpc_id = "vpc-0access"

[[cluster]]
name = "payments"
region = "us-east-1"
vpc_id = "vpc-0access"
security_group = "sg-0payments"
public_access = true
private_access = false

[[cluster.access_entry]]
principal_arn = "arn:aws:iam::123456789012:role/ops/bastion"
access_policies = ["arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"]

[[cluster]]
name = "ledger"
region = "us-east-1"
vpc_id = "vpc-0access"
security_group = "sg-0ledger"
public_access = true
private_access = false

[[cluster]]
name = "legacy"
region = "us-east-1"
vpc_id = "vpc-0access"
security_group = "sg-0legacy"
public_access = true
private_access = false
authentication_mode = "CONFIG_MAP"
"#;

/// A manifest that wants each of `names` private only, reached from
/// `10.0.0.0/8`, with the bastion role as the principal that must keep the
/// Kubernetes API; `extra` goes into each cluster table.
fn manifest(names: &[&str], extra: &str) -> String {
    let mut text = format!(
        "[defaults]\nregion = \"us-east-1\"\nprivate_access_principals = [\"{BASTION}\"]\n"
    );
    for name in names {
        text.push_str(&format!(
            "\n[[cluster]]\nname = \"{name}\"\npublic_access = false\nprivate_access = true\nprivate_access_from = [\"10.0.0.0/8\"]\n{extra}"
        ));
    }
    text
}

/// The emulator's view of cluster `name`.
fn cluster(state: &Value, name: &str) -> Value {
    state["regions"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["clusters"].as_array().cloned().unwrap_or_default())
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no cluster `{name}` in {state}"))
}

fn endpoint(state: &Value, name: &str) -> (bool, bool) {
    let c = cluster(state, name);
    (
        c["public_access"].as_bool().unwrap(),
        c["private_access"].as_bool().unwrap(),
    )
}

/// Whether public access of `name` ever went off in `history`.
fn public_went_off(history: &[HistoryEntry], name: &str) -> bool {
    history.iter().any(|e| {
        matches!(&e.event, Event::Endpoint { cluster, public, .. } if cluster == name && !public)
    })
}

/// Gives `principal` an entry on `name` with the view policy, through the SDK.
async fn grant(sim: &eksgate::sim::SimHandle, name: &str, principal: &str) {
    let eks = eks(sim, "us-east-1").await;
    eks.create_access_entry()
        .cluster_name(name)
        .principal_arn(principal)
        .send()
        .await
        .unwrap();
    eks.associate_access_policy()
        .cluster_name(name)
        .principal_arn(principal)
        .policy_arn(VIEW_POLICY)
        .access_scope(
            aws_sdk_eks::types::AccessScope::builder()
                .r#type(aws_sdk_eks::types::AccessScopeType::Cluster)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_principal_with_an_entry_goes_private_and_one_without_is_blocked() {
    let run = Test::new()
        .world(WORLD)
        .manifest(&manifest(&["payments", "ledger"], ""))
        .apply(NO_ARGS)
        .run()
        .await
        .failure();
    let out = run.stdout();
    // The role is named without its path; the entry holds it with one.
    assert_eq!(endpoint(&run.state(), "payments"), (false, true));
    assert_eq!(endpoint(&run.state(), "ledger"), (true, false));
    assert!(
        out.contains(&format!(
            "error: `{BASTION}` has no access entry on `us-east-1/ledger`: it could not use the Kubernetes API once public access is off"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("`aws eks create-access-entry --cluster-name ledger --region us-east-1 --principal-arn {BASTION}`")),
        "{out}"
    );
    assert!(
        out.contains(&format!("`aws eks associate-access-policy --cluster-name ledger --region us-east-1 --principal-arn {BASTION} --policy-arn {VIEW_POLICY} --access-scope type=cluster`")),
        "{out}"
    );
    assert!(!public_went_off(&run.history(), "ledger"));
    assert!(
        !run.writes().iter().any(|w| w.contains("ledger")),
        "{:?}",
        run.writes()
    );
}

#[tokio::test]
async fn a_config_map_cluster_is_blocked_then_converges_once_its_mode_moves_and_an_entry_is_there()
{
    let blocked = Test::new()
        .world(WORLD)
        .manifest(&manifest(&["legacy"], ""))
        .args(["plan", MANIFEST])
        .run()
        .await
        .failure();
    let out = blocked.stdout();
    assert!(
        out.contains("error: `us-east-1/legacy` uses authentication mode `CONFIG_MAP`: who the `aws-auth` ConfigMap maps cannot be read through the EKS API"),
        "{out}"
    );
    assert!(
        out.contains("hint: set `authentication_mode = \"API_AND_CONFIG_MAP\"` on the cluster"),
        "{out}"
    );
    assert!(out.contains("`--allow-unverified-access`"), "{out}");
    assert!(blocked.writes().is_empty(), "{:?}", blocked.writes());

    // The mode moves first; with no entry yet, apply stops before public
    // access goes off.
    let moved = blocked
        .again()
        .file(
            MANIFEST,
            &manifest(
                &["legacy"],
                "authentication_mode = \"API_AND_CONFIG_MAP\"\n",
            ),
        )
        .apply(NO_ARGS)
        .run()
        .await
        .failure();
    let out = moved.stdout();
    assert!(
        out.contains("authentication mode `CONFIG_MAP` → `API_AND_CONFIG_MAP`"),
        "{out}"
    );
    assert!(
        out.contains("set the authentication mode to `API_AND_CONFIG_MAP`"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "refusing to turn public access off: `{BASTION}` has no access entry on `legacy` now"
        )),
        "{out}"
    );
    assert_eq!(
        cluster(&moved.state(), "legacy")["authentication_mode"],
        "API_AND_CONFIG_MAP"
    );
    assert_eq!(endpoint(&moved.state(), "legacy"), (true, true));
    assert!(!public_went_off(&moved.history(), "legacy"));

    grant(moved.sim(), "legacy", BASTION).await;
    let done = moved.again().apply(NO_ARGS).run().await.success();
    assert_eq!(endpoint(&done.state(), "legacy"), (false, true));

    // The history: the AccessConfigUpdate `Successful` before the update
    // that turned public access off started.
    let history = done.history();
    let mode_done = history.iter().position(|e| {
        matches!(&e.event, Event::UpdateStatus { cluster, update_type, status, .. }
            if cluster == "legacy" && update_type == "AccessConfigUpdate" && status == "Successful")
    });
    let public_off = history.iter().position(|e| {
        matches!(&e.event, Event::Endpoint { cluster, public, .. } if cluster == "legacy" && !public)
    });
    let (Some(mode_done), Some(public_off)) = (mode_done, public_off) else {
        panic!("both in the history: {mode_done:?} {public_off:?}");
    };
    assert!(mode_done < public_off);
    let last_start = history[..public_off].iter().rposition(|e| {
        matches!(&e.event, Event::UpdateStatus { cluster, update_type, status, .. }
            if cluster == "legacy" && update_type == "EndpointAccessUpdate" && status == "InProgress")
    });
    assert!(last_start.is_some_and(|s| mode_done < s), "{last_start:?}");
}

#[tokio::test]
async fn allow_unverified_access_lets_a_config_map_cluster_through_with_a_warning() {
    let run = Test::new()
        .world(WORLD)
        .manifest(&manifest(&["legacy"], ""))
        .apply(["--allow-unverified-access"])
        .run()
        .await
        .success();
    let out = run.stdout();
    assert!(
        out.contains(&format!("warning: `us-east-1/legacy` uses authentication mode `CONFIG_MAP`: whether `{BASTION}` can still use the Kubernetes API is not verified (`--allow-unverified-access`)")),
        "{out}"
    );
    assert_eq!(endpoint(&run.state(), "legacy"), (false, true));
    // The mode stays: only the manifest's `authentication_mode` moves it.
    assert_eq!(
        cluster(&run.state(), "legacy")["authentication_mode"],
        "CONFIG_MAP"
    );
}

#[tokio::test]
async fn an_entry_deleted_while_apply_runs_stops_the_public_off_step() {
    let running = Test::new()
        .world(WORLD)
        .manifest(&manifest(&["payments"], ""))
        .update_duration(Duration::from_millis(1500))
        .apply(NO_ARGS)
        .spawn()
        .await;
    running
        .until("the private-access update of `payments` started", |h| {
            h.iter().any(|e| {
                matches!(&e.event, Event::UpdateStatus { cluster, update_type, status, .. }
                    if cluster == "payments" && update_type == "EndpointAccessUpdate" && status == "InProgress")
            })
        })
        .await;
    eks(running.sim(), "us-east-1")
        .await
        .delete_access_entry()
        .cluster_name("payments")
        .principal_arn("arn:aws:iam::123456789012:role/ops/bastion")
        .send()
        .await
        .unwrap();
    let run = running.wait().await.failure();
    let out = run.stdout();
    assert!(
        out.contains(&format!("refusing to turn public access off: `{BASTION}` has no access entry on `payments` now (it changed since the plan)")),
        "{out}"
    );
    assert!(!public_went_off(&run.history(), "payments"));
    assert_eq!(endpoint(&run.state(), "payments"), (true, true));
}

#[tokio::test]
async fn an_entry_deleted_between_plan_and_apply_makes_the_saved_plan_stale() {
    let planned = Test::new()
        .world(WORLD)
        .manifest(&manifest(&["payments"], ""))
        .args(["plan", MANIFEST, "--out", "p.json"])
        .run()
        .await
        .success();
    eks(planned.sim(), "us-east-1")
        .await
        .delete_access_entry()
        .cluster_name("payments")
        .principal_arn("arn:aws:iam::123456789012:role/ops/bastion")
        .send()
        .await
        .unwrap();
    let writes_before = planned.writes().len();
    let run = planned
        .again()
        .args(["apply", "--plan", "p.json", "--auto-approve"])
        .run()
        .await
        .failure();
    assert!(
        run.stderr().contains("the plan is stale: who can use the Kubernetes API of `us-east-1/payments` changed since the plan was made; nothing was changed"),
        "{}",
        run.stderr()
    );
    assert_eq!(run.writes().len(), writes_before, "{:?}", run.writes());
    assert_eq!(endpoint(&run.state(), "payments"), (true, false));
}

#[tokio::test]
async fn a_manifest_that_moves_the_mode_back_is_a_plan_error() {
    let run = Test::new()
        .world(WORLD)
        .manifest(&manifest(
            &["payments"],
            "authentication_mode = \"CONFIG_MAP\"\n",
        ))
        .args(["plan", MANIFEST])
        .run()
        .await
        .failure();
    assert!(
        run.stdout().contains("error: `us-east-1/payments` asks for authentication mode `CONFIG_MAP`, but it is `API_AND_CONFIG_MAP` and EKS never moves a mode back"),
        "{}",
        run.stdout()
    );
}

#[tokio::test]
async fn principals_are_checked_where_the_manifest_is_written() {
    let run = Test::new()
        .world(WORLD)
        .manifest(
            "[[cluster]]\nname = \"payments\"\nregion = \"cn-north-1\"\npublic_access = true\nprivate_access = false\nprivate_access_principals = [\"arn:aws:iam::123456789012:group/ops\"]\n",
        )
        .args(["validate", MANIFEST])
        .run()
        .await
        .failure();
    let err = run.stderr();
    assert!(
        err.contains("`arn:aws:iam::123456789012:group/ops` names no IAM role or user (its resource is `group/ops`)"),
        "{err}"
    );
    assert!(err.contains("--> prod.toml:6:30"), "{err}");
}

#[tokio::test]
async fn import_names_the_principals_with_a_cluster_wide_policy() {
    let run = Test::new()
        .world(WORLD)
        .args([
            "import",
            "--region",
            "us-east-1",
            "--cluster",
            "payments",
            "--cluster",
            "ledger",
            "--cluster",
            "legacy",
        ])
        .run()
        .await
        .success();
    let text = run.stdout();
    assert!(
        text.contains("# access entries with a cluster-wide access policy; list those that must keep\n# the Kubernetes API once public access is off in `private_access_principals`:\n#   \"arn:aws:iam::123456789012:role/ops/bastion\"\n[[cluster]]\nname = \"payments\""),
        "{text}"
    );
    assert_eq!(
        text.matches("cluster-wide access policy").count(),
        1,
        "{text}"
    );
}

#[tokio::test]
async fn a_plan_lists_each_checked_clusters_entries_once_and_reads_only_the_declared_ones() {
    let run = Test::new()
        .world(WORLD)
        .manifest(&manifest(&["payments", "ledger", "legacy"], ""))
        .args(["plan", MANIFEST])
        .run()
        .await
        .failure();
    let count = |op: &str, cluster: &str| {
        run.requests()
            .iter()
            .filter(|(_, o, t, _)| o == op && t.as_deref() == Some(cluster))
            .count()
    };
    assert_eq!(count("ListAccessEntries", "payments"), 1);
    assert_eq!(count("ListAccessEntries", "ledger"), 1);
    // `CONFIG_MAP`: the listing would fail, so it is not made.
    assert_eq!(count("ListAccessEntries", "legacy"), 0);
    // The bastion's entry has a policy: its groups are not needed.
    assert_eq!(count("ListAssociatedAccessPolicies", "payments"), 1);
    assert_eq!(count("DescribeAccessEntry", "payments"), 0);
    assert_eq!(count("ListAssociatedAccessPolicies", "ledger"), 0);
}
