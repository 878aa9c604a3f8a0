//! The emulator's access-entry operations and `UpdateClusterConfig` with
//! `accessConfig`, checked through boto3 (a client eksgate did not write)
//! against the `eks` service model: `accessConfig` in `DescribeCluster`,
//! `ListAccessEntries` pages, `DescribeAccessEntry`,
//! `ListAssociatedAccessPolicies`, create / associate / delete, and AWS's
//! errors (a `CONFIG_MAP` cluster, an unknown principal, a mode moving back,
//! a mode change mixed with an endpoint change).

use serde_json::json;

use crate::common::*;
use crate::sim_aws_edges::boto3;
use crate::tools;

const WORLD: &str = r#"
[[vpc]]
id = "vpc-0a1b2c3d"
region = "us-east-1"

[[cluster]]
name = "modern"
region = "us-east-1"
vpc_id = "vpc-0a1b2c3d"
public_access = true
private_access = false

[[cluster.access_entry]]
principal_arn = "arn:aws:iam::123456789012:role/ops/bastion"
access_policies = ["arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"]

[[cluster.access_entry]]
principal_arn = "arn:aws:iam::123456789012:role/ci"
kubernetes_groups = ["deployers"]

[[cluster.access_entry]]
principal_arn = "arn:aws:iam::123456789012:user/alice"

[[cluster]]
name = "legacy"
region = "us-east-1"
vpc_id = "vpc-0a1b2c3d"
public_access = true
private_access = false
authentication_mode = "CONFIG_MAP"
"#;

#[tokio::test]
async fn access_entries_read_as_the_service_model_says() {
    if !tools::BOTO3.present() {
        return;
    }
    let sim = start(WORLD, quick()).await;
    let v = boto3(
        &sim,
        r#"
eks = client("eks")
out["modes"] = [eks.describe_cluster(name=n)["cluster"]["accessConfig"]["authenticationMode"] for n in ("modern", "legacy")]
pages = list(eks.get_paginator("list_access_entries").paginate(clusterName="modern", PaginationConfig={"PageSize": 2}))
out["pages"] = [p["accessEntries"] for p in pages]
e = eks.describe_access_entry(clusterName="modern", principalArn="arn:aws:iam::123456789012:role/ops/bastion")["accessEntry"]
out["entry"] = [e["principalArn"], e["type"], e["kubernetesGroups"], e["username"], e["clusterName"]]
out["groups"] = eks.describe_access_entry(clusterName="modern", principalArn="arn:aws:iam::123456789012:role/ci")["accessEntry"]["kubernetesGroups"]
p = eks.list_associated_access_policies(clusterName="modern", principalArn="arn:aws:iam::123456789012:role/ops/bastion")
out["policies"] = [[x["policyArn"], x["accessScope"]["type"]] for x in p["associatedAccessPolicies"]]
out["none"] = eks.list_associated_access_policies(clusterName="modern", principalArn="arn:aws:iam::123456789012:user/alice")["associatedAccessPolicies"]
out["unknown"] = fails(lambda: eks.describe_access_entry(clusterName="modern", principalArn="arn:aws:iam::123456789012:role/ghost"))
out["unknown_policies"] = fails(lambda: eks.list_associated_access_policies(clusterName="modern", principalArn="arn:aws:iam::123456789012:role/ghost"))
out["config_map"] = fails(lambda: eks.list_access_entries(clusterName="legacy"))
out["config_map_describe"] = fails(lambda: eks.describe_access_entry(clusterName="legacy", principalArn="arn:aws:iam::123456789012:role/ci"))
out["no_cluster"] = fails(lambda: eks.list_access_entries(clusterName="ghost"))
"#,
    )
    .await;
    assert_eq!(v["modes"], json!(["API_AND_CONFIG_MAP", "CONFIG_MAP"]));
    // Listed in order of principal ARN, two per page, nothing repeated.
    assert_eq!(
        v["pages"],
        json!([
            [
                "arn:aws:iam::123456789012:role/ci",
                "arn:aws:iam::123456789012:role/ops/bastion"
            ],
            ["arn:aws:iam::123456789012:user/alice"]
        ])
    );
    // The role's path is kept as given; the Kubernetes user has none.
    assert_eq!(
        v["entry"],
        json!([
            "arn:aws:iam::123456789012:role/ops/bastion",
            "STANDARD",
            [],
            "arn:aws:sts::123456789012:assumed-role/bastion/{{SessionName}}",
            "modern"
        ])
    );
    assert_eq!(v["groups"], json!(["deployers"]));
    assert_eq!(
        v["policies"],
        json!([[
            "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
            "cluster"
        ]])
    );
    assert_eq!(v["none"], json!([]));
    for k in ["unknown", "unknown_policies"] {
        assert_eq!(v[k][0], "ResourceNotFoundException", "{k}: {}", v[k]);
        assert_eq!(v[k][1], 404, "{k}");
        assert_eq!(v[k][3]["clusterName"], "modern", "{k}");
    }
    for k in ["config_map", "config_map_describe"] {
        assert_eq!(
            v[k],
            json!([
                "InvalidRequestException",
                400,
                "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.",
                {"clusterName": "legacy"}
            ]),
            "{k}"
        );
    }
    assert_eq!(v["no_cluster"][0], "ResourceNotFoundException");
}

#[tokio::test]
async fn access_entries_are_created_associated_and_deleted() {
    if !tools::BOTO3.present() {
        return;
    }
    let sim = start(WORLD, quick()).await;
    let v = boto3(
        &sim,
        r#"
eks = client("eks")
arn = "arn:aws:iam::123456789012:role/platform/admin"
e = eks.create_access_entry(clusterName="modern", principalArn=arn, kubernetesGroups=["ops"])["accessEntry"]
out["created"] = [e["principalArn"], e["type"], e["kubernetesGroups"]]
out["twice"] = fails(lambda: eks.create_access_entry(clusterName="modern", principalArn=arn))
a = eks.associate_access_policy(clusterName="modern", principalArn=arn,
    policyArn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy", accessScope={"type": "cluster"})
out["associated"] = [a["principalArn"], a["associatedAccessPolicy"]["policyArn"]]
out["bad_policy"] = fails(lambda: eks.associate_access_policy(clusterName="modern", principalArn=arn,
    policyArn="arn:aws:iam::aws:policy/AdministratorAccess", accessScope={"type": "cluster"}))
out["listed"] = arn in eks.list_access_entries(clusterName="modern")["accessEntries"]
eks.delete_access_entry(clusterName="modern", principalArn=arn)
out["gone"] = fails(lambda: eks.describe_access_entry(clusterName="modern", principalArn=arn))
out["delete_again"] = fails(lambda: eks.delete_access_entry(clusterName="modern", principalArn=arn))
out["config_map_create"] = fails(lambda: eks.create_access_entry(clusterName="legacy", principalArn=arn))
"#,
    )
    .await;
    assert_eq!(
        v["created"],
        json!([
            "arn:aws:iam::123456789012:role/platform/admin",
            "STANDARD",
            ["ops"]
        ])
    );
    assert_eq!(v["twice"][0], "ResourceInUseException");
    assert_eq!(v["twice"][1], 409);
    assert_eq!(
        v["associated"][1],
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    );
    assert_eq!(v["bad_policy"][0], "InvalidParameterException");
    assert_eq!(v["listed"], true);
    assert_eq!(v["gone"][0], "ResourceNotFoundException");
    assert_eq!(v["delete_again"][0], "ResourceNotFoundException");
    assert_eq!(v["config_map_create"][0], "InvalidRequestException");
}

#[tokio::test]
async fn the_authentication_mode_moves_forward_in_one_update_of_its_own() {
    if !tools::BOTO3.present() {
        return;
    }
    let sim = start(WORLD, quick()).await;
    let v = boto3(
        &sim,
        r#"
eks = client("eks")
out["mixed"] = fails(lambda: eks.update_cluster_config(name="legacy",
    accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"},
    resourcesVpcConfig={"endpointPrivateAccess": True}))
out["back"] = fails(lambda: eks.update_cluster_config(name="modern", accessConfig={"authenticationMode": "CONFIG_MAP"}))
out["same"] = fails(lambda: eks.update_cluster_config(name="modern", accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"}))
u = eks.update_cluster_config(name="legacy", accessConfig={"authenticationMode": "API"})["update"]
out["update"] = [u["type"], u["status"], u["params"]]
out["busy"] = fails(lambda: eks.update_cluster_config(name="legacy", resourcesVpcConfig={"endpointPrivateAccess": True}))
out["status"] = eks.describe_cluster(name="legacy")["cluster"]["status"]
for _ in range(100):
    if eks.describe_update(name="legacy", updateId=u["id"])["update"]["status"] != "InProgress":
        break
    time.sleep(0.05)
out["final"] = eks.describe_update(name="legacy", updateId=u["id"])["update"]["status"]
out["mode"] = eks.describe_cluster(name="legacy")["cluster"]["accessConfig"]["authenticationMode"]
out["listed_now"] = eks.list_access_entries(clusterName="legacy")["accessEntries"]
"#,
    )
    .await;
    let first3 = |k: &str| v[k].as_array().unwrap()[..3].to_vec();
    assert_eq!(
        first3("mixed"),
        [
            json!("InvalidParameterException"),
            json!(400),
            json!("Only one type of update can be allowed.")
        ]
    );
    assert_eq!(
        first3("back"),
        [
            json!("InvalidParameterException"),
            json!(400),
            json!("Unsupported authentication mode update from API_AND_CONFIG_MAP to CONFIG_MAP")
        ]
    );
    assert_eq!(v["same"][0], "InvalidParameterException");
    // `CONFIG_MAP` to `API` is one update.
    assert_eq!(
        v["update"],
        json!(["AccessConfigUpdate", "InProgress", [{"type": "AuthenticationMode", "value": "API"}]])
    );
    assert_eq!(v["busy"][0], "ResourceInUseException");
    assert_eq!(v["busy"][1], 409);
    assert_eq!(v["final"], "Successful");
    assert_eq!(v["mode"], "API");
    assert_eq!(v["listed_now"], json!([]));
}
