//! Clusters another tool created: the emulator returns their tags
//! (`DescribeCluster`, `ListTagsForResource`), and a plan that changes one
//! warns, naming the tool and the hand-over, without changing the exit code.

use crate::common::*;
use crate::test::Test;

/// Four public clusters in one VPC: one from a CloudFormation stack, one
/// from eksctl (which tags its stack too), one from Terraform, one untagged.
pub(crate) const WORLD: &str = r#"
[[vpc]]
id = "vpc-0owners"
region = "us-east-1"

# The VPC's NAT gateway, inside the public CIDRs the manifests ask for.
[[nat_gateway]]
id = "nat-0owners"
region = "us-east-1"
vpc_id = "vpc-0owners"
public_ip = "203.0.113.10"

[[cluster]]
name = "stacked"
region = "us-east-1"
vpc_id = "vpc-0owners"
public_access = true
private_access = false
tags = { "aws:cloudformation:stack-name" = "platform-eks", team = "core" }

[[cluster]]
name = "made-by-eksctl"
region = "us-east-1"
vpc_id = "vpc-0owners"
public_access = true
private_access = false
tags = { "aws:cloudformation:stack-name" = "eksctl-made-by-eksctl-cluster", "alpha.eksctl.io/cluster-name" = "made-by-eksctl", "eksctl.cluster.k8s.io/v1alpha1/cluster-name" = "made-by-eksctl" }

[[cluster]]
name = "terraformed"
region = "us-east-1"
vpc_id = "vpc-0owners"
public_access = true
private_access = false
tags = { ManagedBy = "Terraform" }

[[cluster]]
name = "plain"
region = "us-east-1"
vpc_id = "vpc-0owners"
public_access = true
private_access = false
"#;

/// Every cluster narrows its public CIDRs: each plan changes something.
pub(crate) fn manifest(defaults: &str, extra: &str) -> String {
    let mut text = format!("[defaults]\nregion = \"us-east-1\"\n{defaults}\n");
    for name in ["stacked", "made-by-eksctl", "terraformed", "plain"] {
        text.push_str(&format!(
            "[[cluster]]\nname = \"{name}\"\npublic_access = true\nprivate_access = false\npublic_access_cidrs = [\"203.0.113.0/24\"]\n{}\n",
            if name == "stacked" { extra } else { "" }
        ));
    }
    text
}

#[tokio::test]
async fn the_emulator_returns_a_clusters_tags() {
    let sim = start(WORLD, quick()).await;
    let eks = eks(&sim, "us-east-1").await;
    let c = eks.describe_cluster().name("stacked").send().await.unwrap();
    let tags = c.cluster().unwrap().tags().unwrap();
    assert_eq!(
        tags.get("aws:cloudformation:stack-name").unwrap(),
        "platform-eks"
    );
    assert_eq!(tags.get("team").unwrap(), "core");
    let c = eks.describe_cluster().name("plain").send().await.unwrap();
    assert!(c.cluster().unwrap().tags().is_none_or(|t| t.is_empty()));

    let arn = "arn:aws:eks:us-east-1:123456789012:cluster/terraformed";
    let out = eks
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    assert_eq!(out.tags().unwrap().get("ManagedBy").unwrap(), "Terraform");

    let err = eks
        .list_tags_for_resource()
        .resource_arn("arn:aws:eks:us-east-1:123456789012:cluster/ghost")
        .send()
        .await
        .unwrap_err();
    let (code, status, _) = err_parts(&err);
    assert_eq!((code.as_str(), status), ("NotFoundException", 404));
}

#[tokio::test]
async fn a_plan_warns_of_clusters_another_tool_owns() {
    let out = Test::new()
        .world(WORLD)
        .manifest(&manifest("", ""))
        .args(["plan", "prod.toml", "--detailed-exitcode"])
        .run()
        .await
        .exit(2);
    let all = format!("{}{}", out.stdout(), out.stderr());
    assert!(all.contains("CloudFormation stack `platform-eks`"), "{all}");
    assert!(all.contains("EndpointPublicAccess"), "{all}");
    assert!(
        all.contains("eksctl (CloudFormation stack `eksctl-made-by-eksctl-cluster`)"),
        "{all}"
    );
    assert!(all.contains("vpc.clusterEndpoints"), "{all}");
    assert!(
        all.contains("vpc_config[0].endpoint_public_access"),
        "{all}"
    );
    assert!(!all.contains("`us-east-1/plain` was created"), "{all}");
    assert_eq!(all.matches("was created by").count(), 3, "{all}");

    let out = out
        .again()
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .success();
    let v: serde_json::Value = serde_json::from_str(out.stdout()).unwrap();
    // The fields the README's `jq` and Rego checks read.
    for c in v["clusters"].as_array().unwrap() {
        assert!(c["key"]["name"].is_string(), "{c}");
        assert_eq!(c["live"]["public_access"], true, "{c}");
        assert_eq!(c["after"]["public_access"], true, "{c}");
    }
    let mut codes: Vec<(String, String, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["cluster"]["name"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    codes.sort();
    let want = |n: &str, c: &str| (n.to_string(), c.to_string(), "warn".to_string());
    assert_eq!(
        codes,
        vec![
            want("made-by-eksctl", "owned_by_eksctl"),
            want("stacked", "owned_by_cloudformation"),
            want("terraformed", "owned_by_terraform"),
        ]
    );
}

#[tokio::test]
async fn owner_acknowledged_silences_the_warning() {
    // On one cluster: the others still warn.
    let out = Test::new()
        .world(WORLD)
        .manifest(&manifest("", "owner_acknowledged = true"))
        .args(["plan", "prod.toml", "--detailed-exitcode"])
        .run()
        .await
        .exit(2);
    let all = format!("{}{}", out.stdout(), out.stderr());
    assert!(!all.contains("platform-eks"), "{all}");
    assert_eq!(all.matches("was created by").count(), 2, "{all}");

    // In `[defaults]`: none warns, and a cluster may take it back.
    let out = out
        .again()
        .manifest(&manifest(
            "owner_acknowledged = true",
            "owner_acknowledged = false",
        ))
        .args(["plan", "prod.toml", "--detailed-exitcode"])
        .run()
        .await
        .exit(2);
    let all = format!("{}{}", out.stdout(), out.stderr());
    assert_eq!(all.matches("was created by").count(), 1, "{all}");
    assert!(all.contains("platform-eks"), "{all}");
}

#[tokio::test]
async fn a_cluster_the_plan_leaves_alone_gets_no_warning() {
    let out = Test::new()
        .world(WORLD)
        .manifest("[[cluster]]\nname = \"stacked\"\nregion = \"us-east-1\"\npublic_access = true\nprivate_access = false\n")
        .args(["plan", "prod.toml", "--detailed-exitcode"])
        .run()
        .await
        .success();
    let all = format!("{}{}", out.stdout(), out.stderr());
    assert!(!all.contains("was created by"), "{all}");
}

#[tokio::test]
async fn import_names_the_owner_in_a_comment() {
    let out = Test::new()
        .world(WORLD)
        .args(["import", "--region", "us-east-1", "--out", "fleet.toml"])
        .run()
        .await
        .success();
    let text = out.read("fleet.toml");
    assert!(
        text.contains("# owner: created by CloudFormation stack `platform-eks`"),
        "{text}"
    );
    assert!(text.contains("# owner: created by Terraform"), "{text}");
    assert_eq!(text.matches("# owner:").count(), 3, "{text}");
}
