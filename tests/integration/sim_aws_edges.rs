//! The emulator where AWS is not kind (DESIGN.md section 1b), checked through
//! boto3, a client eksgate did not write: updates listed in no order, the
//! lag before `UPDATING`, AWS's answers to `AuthorizeSecurityGroupIngress`,
//! checked credentials and expiring sessions, changes answered with a 5xx
//! after they took effect, 503s, the `default` DHCP options, seeded rules of
//! any protocol, update `params` and `clusterName` in EKS errors.
//!
//! CI installs boto3 and sets `EKSGATE_REQUIRE_BOTO3=1`; elsewhere each test
//! says it was skipped when boto3 is missing.

use std::time::Duration;

use eksgate::sim::{Behaviour, Event, SimHandle};
use serde_json::{json, Value};

use crate::common::*;
use crate::tools;

/// What every script starts with: `client(service, key, secret)` builds a
/// boto3 client against the emulator with no retries, and `err(e)` turns a
/// `ClientError` into `[code, status, message, body]`.
const PRELUDE: &str = r#"
import boto3, botocore, botocore.config, json, sys, time
URL = sys.argv[1]
def client(service, key="AKIDBOTO", secret="boto-secret", token=None, validate=True):
    return boto3.client(service, endpoint_url=URL, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1},
                                      parameter_validation=validate))
def err(e):
    r = e.response
    extra = {k: v for k, v in r.items() if k not in ("Error", "ResponseMetadata", "message", "Message")}
    return [r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Message"), extra]
def fails(f):
    try:
        f()
    except botocore.exceptions.ClientError as e:
        return err(e)
    return None
out = {}
"#;

/// Runs `script` (after [`PRELUDE`]) against the emulator and returns the
/// JSON it prints as `out`.
pub(crate) async fn boto3(sim: &SimHandle, script: &str) -> Value {
    let program = format!("{PRELUDE}\n{script}\nprint(json.dumps(out))\n");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("python3")
            .arg("-c")
            .arg(program)
            .arg(sim.url())
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output(),
    )
    .await
    .expect("the boto3 script finished within 2 minutes")
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const BASE: &str = r#"
[[vpc]]
id = "vpc-0a1b2c3d"
region = "us-east-1"

[[security_group]]
id = "sg-0cluster1"
region = "us-east-1"
vpc_id = "vpc-0a1b2c3d"

[[cluster]]
name = "payments"
region = "us-east-1"
vpc_id = "vpc-0a1b2c3d"
security_group = "sg-0cluster1"
public_access = true
private_access = false
"#;

#[tokio::test]
async fn list_updates_answers_in_no_order_and_its_pages_hold_together() {
    if !tools::BOTO3.present() {
        return;
    }
    let world = format!("{BASE}past_updates = 150\n");
    let sim = start(&world, quick()).await;
    let v = boto3(
        &sim,
        r#"
eks = client("eks")
def listing():
    ids = []
    for page in eks.get_paginator("list_updates").paginate(name="payments", PaginationConfig={"PageSize": 20}):
        ids += page["updateIds"]
    return ids
a, b = listing(), listing()
out["count"] = len(a)
out["distinct"] = len(set(a))
out["same_set"] = set(a) == set(b)
out["same_order"] = a == b
first = eks.list_updates(name="payments")
out["first_page"] = len(first["updateIds"])
out["next"] = "nextToken" in first
updates = [eks.describe_update(name="payments", updateId=i)["update"] for i in a]
out["statuses"] = sorted(set(u["status"] for u in updates))
out["types"] = len(set(u["type"] for u in updates))
times = [u["createdAt"].timestamp() for u in updates]
out["oldest_first"] = times == sorted(times)
out["newest_first"] = times == sorted(times, reverse=True)
"#,
    )
    .await;
    assert_eq!(v["count"], 150);
    assert_eq!(v["distinct"], 150);
    assert_eq!(v["same_set"], true);
    assert_eq!(v["same_order"], false, "each listing has its own order");
    assert_eq!(v["first_page"], 100, "100 ids a page by default");
    assert_eq!(v["next"], true);
    assert_eq!(v["statuses"], json!(["Successful"]));
    assert!(v["types"].as_u64().unwrap() >= 5, "{v}");
    assert_eq!(v["oldest_first"], false);
    assert_eq!(v["newest_first"], false);
}

/// `shuffle_updates = false` keeps the old order, oldest first.
#[tokio::test]
async fn list_updates_can_be_ordered_for_a_world_that_asks() {
    if !tools::BOTO3.present() {
        return;
    }
    let world = format!("{BASE}past_updates = 5\n\n[faults]\nshuffle_updates = false\n");
    let w = world_of(&world);
    let behaviour = eksgate::sim::behaviour_from(&w, quick(), &Default::default());
    let sim = start(&world, behaviour).await;
    let v = boto3(
        &sim,
        r#"
eks = client("eks")
ids = eks.list_updates(name="payments")["updateIds"]
times = [eks.describe_update(name="payments", updateId=i)["update"]["createdAt"].timestamp() for i in ids]
out["oldest_first"] = times == sorted(times) and len(ids) == 5
"#,
    )
    .await;
    assert_eq!(v["oldest_first"], true);
}

fn world_of(text: &str) -> eksgate::sim::World {
    world(text)
}

/// The move to `UPDATING` lags: `ACTIVE` just after the update started, while
/// a second update is refused with the running one named; the update lists
/// only what the request sent; EKS errors on a cluster carry `clusterName`.
#[tokio::test]
async fn the_cluster_says_active_for_a_while_after_an_update_starts() {
    if !tools::BOTO3.present() {
        return;
    }
    let sim = start(
        BASE,
        Behaviour {
            update_duration: Duration::from_secs(5),
            status_lag: Duration::from_millis(1500),
            ..quick()
        },
    )
    .await;
    let v = boto3(
        &sim,
        r#"
eks = client("eks")
u = eks.update_cluster_config(name="payments", resourcesVpcConfig={"endpointPrivateAccess": True})["update"]
out["params"] = u["params"]
out["status_at_once"] = eks.describe_cluster(name="payments")["cluster"]["status"]
out["update_status"] = eks.describe_update(name="payments", updateId=u["id"])["update"]["status"]
out["second"] = fails(lambda: eks.update_cluster_config(name="payments", resourcesVpcConfig={"endpointPublicAccess": True, "endpointPrivateAccess": False}))
out["update_id"] = u["id"]
time.sleep(2.0)
out["status_later"] = eks.describe_cluster(name="payments")["cluster"]["status"]
out["missing"] = fails(lambda: eks.describe_cluster(name="ghost"))
out["bad_update"] = fails(lambda: eks.describe_update(name="payments", updateId="nope"))
"#,
    )
    .await;
    assert_eq!(
        v["params"],
        json!([{"type": "EndpointPrivateAccess", "value": "true"}])
    );
    assert_eq!(v["status_at_once"], "ACTIVE");
    assert_eq!(v["update_status"], "InProgress");
    let id = v["update_id"].as_str().unwrap();
    assert_eq!(
        v["second"],
        json!([
            "ResourceInUseException",
            409,
            format!("Cannot EndpointAccessUpdate because cluster payments currently has update {id} in progress"),
            {"clusterName": "payments"}
        ])
    );
    assert_eq!(v["status_later"], "UPDATING");
    assert_eq!(
        v["missing"],
        json!([
            "ResourceNotFoundException",
            404,
            "No cluster found for name: ghost.",
            {"clusterName": "ghost"}
        ])
    );
    assert_eq!(
        v["bad_update"],
        json!([
            "ResourceNotFoundException",
            404,
            "No update found for ID: nope.",
            {"clusterName": "payments"}
        ])
    );
}

const RULES: &str = r#"
[[vpc]]
id = "vpc-0a1b2c3d"
region = "us-east-1"

[[security_group]]
id = "sg-0cluster1"
region = "us-east-1"
vpc_id = "vpc-0a1b2c3d"
ingress = [
  { protocol = "-1", source = "sg-0cluster1" },
  { protocol = "tcp", from_port = 0, to_port = 65535, source = "10.0.0.0/8" },
  { protocol = "tcp", from_port = 80, to_port = 80, source = "0.0.0.0/0" },
]

[[security_group]]
id = "sg-0small"
region = "us-east-1"
vpc_id = "vpc-0a1b2c3d"
rule_quota = 3
https_ingress = ["10.1.0.0/16", "10.2.0.0/16"]
"#;

/// AuthorizeSecurityGroupIngress as AWS answers it, on groups seeded with
/// rules of any protocol and port range.
#[tokio::test]
async fn authorize_ingress_refuses_a_repeated_permission_and_a_full_group() {
    if !tools::BOTO3.present() {
        return;
    }
    let sim = start(RULES, quick()).await;
    let v = boto3(
        &sim,
        r#"
ec2 = client("ec2")
g = ec2.describe_security_groups(GroupIds=["sg-0cluster1"])["SecurityGroups"][0]
out["seeded"] = sorted([[p["IpProtocol"], p.get("FromPort"), p.get("ToPort"),
    [r["CidrIp"] for r in p["IpRanges"]] + [r["GroupId"] for r in p["UserIdGroupPairs"]]] for p in g["IpPermissions"]], key=str)
perm = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.9.0.0/16"}]}
out["twice"] = fails(lambda: ec2.authorize_security_group_ingress(GroupId="sg-0cluster1", IpPermissions=[perm, perm]))
out["twice_in_ranges"] = fails(lambda: ec2.authorize_security_group_ingress(GroupId="sg-0cluster1",
    IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.9.0.0/16"}, {"CidrIp": "10.9.0.0/16"}]}]))
out["443_beside_wide_rules"] = ec2.authorize_security_group_ingress(GroupId="sg-0cluster1", IpPermissions=[perm])["Return"]
out["again"] = fails(lambda: ec2.authorize_security_group_ingress(GroupId="sg-0cluster1", IpPermissions=[perm]))
def add(cidrs):
    return ec2.authorize_security_group_ingress(GroupId="sg-0small",
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": c} for c in cidrs]}])
out["over"] = fails(lambda: add(["10.3.0.0/16", "10.4.0.0/16"]))
out["to_the_quota"] = add(["10.3.0.0/16"])["Return"]
out["past_it"] = fails(lambda: add(["10.5.0.0/16"]))
out["ipv6_apart"] = ec2.authorize_security_group_ingress(GroupId="sg-0small",
    IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]}])["Return"]
"#,
    )
    .await;
    assert_eq!(
        v["seeded"],
        json!([
            ["-1", null, null, ["sg-0cluster1"]],
            ["tcp", 0, 65535, ["10.0.0.0/8"]],
            ["tcp", 80, 80, ["0.0.0.0/0"]]
        ])
    );
    let twice = json!([
        "InvalidParameterValue",
        400,
        "The same permission must not appear multiple times",
        {}
    ]);
    assert_eq!(v["twice"], twice);
    assert_eq!(v["twice_in_ranges"], twice);
    assert_eq!(v["443_beside_wide_rules"], true);
    assert_eq!(v["again"][0], "InvalidPermission.Duplicate");
    assert_eq!(v["again"][1], 400);
    let full = json!([
        "RulesPerSecurityGroupLimitExceeded",
        400,
        "The maximum number of rules per security group has been reached.",
        {}
    ]);
    assert_eq!(v["over"], full);
    assert_eq!(v["to_the_quota"], true);
    assert_eq!(v["past_it"], full);
    assert_eq!(v["ipv6_apart"], true, "IPv6 rules have their own quota");
}

const ACCOUNTS: &str = r#"
[[account]]
id = "111122223333"
access_key_ids = ["AKIDANYSECRET"]
access_keys = [{ id = "AKIDSIGNED", secret = "signed-secret" }]
roles = ["arn:aws:iam::111122223333:role/deployer"]
"#;

/// In a world with `[[account]]`, unknown keys and wrong signatures are
/// refused as each service refuses them, and sessions expire.
#[tokio::test]
async fn checked_credentials_are_refused_as_aws_refuses_them() {
    if !tools::BOTO3.present() {
        return;
    }
    let world = format!("{BASE}\n{ACCOUNTS}");
    let sim = start(
        &world,
        Behaviour {
            session_duration: Some(Duration::from_millis(1500)),
            ..quick()
        },
    )
    .await;
    let v = boto3(
        &sim,
        r#"
def three(key, secret, token=None):
    return [
        fails(lambda: client("eks", key, secret, token).list_clusters()),
        fails(lambda: client("ec2", key, secret, token).describe_vpcs()),
        fails(lambda: client("sts", key, secret, token).get_caller_identity()),
    ]
out["unknown"] = three("AKIDSTRANGER", "whatever")
out["wrong_secret"] = three("AKIDSIGNED", "not-the-secret")
out["right_secret"] = three("AKIDSIGNED", "signed-secret")
out["any_secret"] = three("AKIDANYSECRET", "anything")
out["short"] = fails(lambda: client("sts", "AKIDSIGNED", "signed-secret", validate=False).assume_role(
    RoleArn="arn:aws:iam::111122223333:role/deployer", RoleSessionName="short", DurationSeconds=60))
c = client("sts", "AKIDSIGNED", "signed-secret").assume_role(
    RoleArn="arn:aws:iam::111122223333:role/deployer", RoleSessionName="rollout", DurationSeconds=900)["Credentials"]
k, s, t = c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]
out["lasts_s"] = (c["Expiration"] - __import__("datetime").datetime.now(c["Expiration"].tzinfo)).total_seconds()
out["session_fresh"] = three(k, s, t)
out["session_wrong_token"] = fails(lambda: client("eks", k, s, "forged").list_clusters())
time.sleep(1.7)
out["session_expired"] = three(k, s, t)
"#,
    )
    .await;
    let invalid = "The security token included in the request is invalid.";
    let signature = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
    let expired = "The security token included in the request is expired";
    assert_eq!(
        v["unknown"],
        json!([
            ["UnrecognizedClientException", 403, invalid, {}],
            [
                "AuthFailure",
                401,
                "AWS was not able to validate the provided access credentials",
                {}
            ],
            ["InvalidClientTokenId", 403, invalid, {}]
        ])
    );
    assert_eq!(
        v["wrong_secret"],
        json!([
            ["InvalidSignatureException", 403, signature, {}],
            ["SignatureDoesNotMatch", 403, signature, {}],
            ["SignatureDoesNotMatch", 403, signature, {}]
        ])
    );
    assert_eq!(v["right_secret"], json!([null, null, null]));
    assert_eq!(v["any_secret"], json!([null, null, null]));
    assert_eq!(v["short"][0], "ValidationError");
    assert_eq!(v["short"][1], 400);
    let lasts = v["lasts_s"].as_f64().unwrap();
    assert!(lasts < 5.0, "the expiration says when it ends: {lasts}");
    assert_eq!(v["session_fresh"], json!([null, null, null]));
    assert_eq!(v["session_wrong_token"][0], "UnrecognizedClientException");
    assert_eq!(
        v["session_expired"],
        json!([
            ["ExpiredTokenException", 403, expired, {}],
            ["ExpiredToken", 400, expired, {}],
            ["ExpiredToken", 403, expired, {}]
        ])
    );
}

/// AWS's 503s, and a change that took effect answered with a server error:
/// a retry with the same `clientRequestToken` returns the same update.
#[tokio::test]
async fn changes_can_take_effect_and_still_be_answered_with_a_5xx() {
    if !tools::BOTO3.present() {
        return;
    }
    let unavailable = start(
        BASE,
        Behaviour {
            unavailable_rate: 1.0,
            ..quick()
        },
    )
    .await;
    let v = boto3(
        &unavailable,
        r#"
out["eks"] = fails(lambda: client("eks").describe_cluster(name="payments"))
out["ec2"] = fails(lambda: client("ec2").describe_vpcs())
"#,
    )
    .await;
    assert_eq!(
        v["eks"],
        json!([
            "ServiceUnavailableException",
            503,
            "The service is unavailable. Back off and retry the operation.",
            {}
        ])
    );
    assert_eq!(
        v["ec2"],
        json!([
            "Unavailable",
            503,
            "The server is overloaded and can't handle the request.",
            {}
        ])
    );

    let applied = start(
        BASE,
        Behaviour {
            applied_error_rate: 1.0,
            update_duration: Duration::from_secs(30),
            ..quick()
        },
    )
    .await;
    let v = boto3(
        &applied,
        r#"
eks, ec2 = client("eks"), client("ec2")
out["update"] = fails(lambda: eks.update_cluster_config(name="payments", resourcesVpcConfig={"endpointPrivateAccess": True}, clientRequestToken="tok-1"))
ids = eks.list_updates(name="payments")["updateIds"]
out["started"] = [eks.describe_update(name="payments", updateId=i)["update"]["status"] for i in ids]
out["vpc"] = fails(lambda: ec2.modify_vpc_attribute(VpcId="vpc-0a1b2c3d", EnableDnsHostnames={"Value": True}))
out["hostnames"] = ec2.describe_vpc_attribute(VpcId="vpc-0a1b2c3d", Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
out["read"] = fails(lambda: eks.describe_cluster(name="payments"))
"#,
    )
    .await;
    assert!(
        matches!(v["update"][1].as_u64(), Some(500 | 503)),
        "{}",
        v["update"]
    );
    assert_eq!(
        v["started"],
        json!(["InProgress"]),
        "the change took effect"
    );
    assert!(matches!(v["vpc"][1].as_u64(), Some(500 | 503)));
    assert_eq!(v["hostnames"], true, "the change took effect");
    assert_eq!(v["read"], Value::Null, "reads are answered");
    let outcomes: Vec<String> = applied
        .history()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Request { outcome, .. } if outcome.starts_with("applied+") => Some(outcome),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");

    // The SDK's retry of the same call (the same token) gets the same update.
    let retried = start(BASE, quick()).await;
    let v = boto3(
        &retried,
        r#"
eks = client("eks")
a = eks.update_cluster_config(name="payments", resourcesVpcConfig={"endpointPrivateAccess": True}, clientRequestToken="tok-1")["update"]["id"]
b = eks.update_cluster_config(name="payments", resourcesVpcConfig={"endpointPrivateAccess": True}, clientRequestToken="tok-1")["update"]["id"]
out["same"] = a == b
out["listed"] = len(eks.list_updates(name="payments")["updateIds"])
time.sleep(0.6)
u = eks.update_cluster_config(name="payments", resourcesVpcConfig={"publicAccessCidrs": ["203.0.113.0/24"]})["update"]
out["cidr_params"] = u["params"]
"#,
    )
    .await;
    assert_eq!(v["same"], true);
    assert_eq!(v["listed"], 1);
    // The CIDR parameter is the list as sent, JSON-encoded, as in AWS.
    assert_eq!(
        v["cidr_params"],
        json!([{"type": "PublicAccessCidrs", "value": "[\"203.0.113.0/24\"]"}])
    );
}

/// A VPC associated with no DHCP options set reports `default`, and EC2
/// knows no options set by that id.
#[tokio::test]
async fn a_vpc_can_have_the_default_dhcp_options() {
    if !tools::BOTO3.present() {
        return;
    }
    let world = r#"
[[vpc]]
id = "vpc-0plain"
region = "us-east-1"
dhcp_options = "default"
"#;
    let sim = start(world, quick()).await;
    let v = boto3(
        &sim,
        r#"
ec2 = client("ec2")
out["id"] = ec2.describe_vpcs(VpcIds=["vpc-0plain"])["Vpcs"][0]["DhcpOptionsId"]
out["describe"] = fails(lambda: ec2.describe_dhcp_options(DhcpOptionsIds=["default"]))
"#,
    )
    .await;
    assert_eq!(v["id"], "default");
    assert_eq!(
        v["describe"],
        json!([
            "InvalidDhcpOptionID.NotFound",
            400,
            "The dhcpOption ID 'default' does not exist",
            {}
        ])
    );
}

/// The example world of the harsher settings loads.
#[test]
fn the_harsh_example_world_is_valid() {
    let text = include_str!("../../examples/worlds/harsh.toml");
    let w = world(text);
    assert_eq!(w.cluster[0].past_updates, 150);
    assert_eq!(w.account[0].access_keys.len(), 1);
}

/// `ModifyManagedPrefixList` refuses to take a list past its `MaxEntries`,
/// changes nothing then (entries and version), and still takes an edit
/// that removes as many as it adds.
#[tokio::test]
async fn a_prefix_list_never_holds_more_than_its_max_entries() {
    if !tools::BOTO3.present() {
        return;
    }
    let world = format!(
        "{BASE}\n[[prefix_list]]\nid = \"pl-0a1b2c3d4e5f60001\"\nregion = \"us-east-1\"\nentries = [\"198.51.100.0/26\", \"198.51.100.64/26\"]\nmax_entries = 3\n"
    );
    let sim = start(&world, quick()).await;
    let v = boto3(
        &sim,
        r#"
ec2 = client("ec2")
PL = "pl-0a1b2c3d4e5f60001"
def entries():
    return sorted(e["Cidr"] for e in ec2.get_managed_prefix_list_entries(PrefixListId=PL)["Entries"])
def version():
    return ec2.describe_managed_prefix_lists(PrefixListIds=[PL])["PrefixLists"][0]["Version"]
v0 = version()
out["over"] = fails(lambda: ec2.modify_managed_prefix_list(PrefixListId=PL, CurrentVersion=v0,
    AddEntries=[{"Cidr": "192.0.2.0/24"}, {"Cidr": "192.0.2.128/25"}]))
out["after_refusal"] = [entries(), version() == v0]
out["fill"] = ec2.modify_managed_prefix_list(PrefixListId=PL, CurrentVersion=v0,
    AddEntries=[{"Cidr": "192.0.2.0/24"}])["PrefixList"]["Version"] == v0 + 1
out["full"] = fails(lambda: ec2.modify_managed_prefix_list(PrefixListId=PL,
    AddEntries=[{"Cidr": "203.0.113.0/24"}]))
out["swap"] = fails(lambda: ec2.modify_managed_prefix_list(PrefixListId=PL,
    AddEntries=[{"Cidr": "203.0.113.0/24"}], RemoveEntries=[{"Cidr": "192.0.2.0/24"}]))
out["end"] = entries()
"#,
    )
    .await;
    let over = &v["over"];
    assert_eq!(over[0], "PrefixListMaxEntriesExceeded", "{v}");
    assert_eq!(over[1], 400, "{v}");
    assert!(
        over[2].as_str().unwrap().contains("pl-0a1b2c3d4e5f60001"),
        "{v}"
    );
    assert_eq!(
        v["after_refusal"],
        json!([["198.51.100.0/26", "198.51.100.64/26"], true]),
        "a refused edit changes nothing"
    );
    assert_eq!(v["fill"], true, "{v}");
    assert_eq!(v["full"][0], "PrefixListMaxEntriesExceeded", "{v}");
    assert_eq!(v["swap"], Value::Null, "{v}");
    assert_eq!(
        v["end"],
        json!(["198.51.100.0/26", "198.51.100.64/26", "203.0.113.0/24"])
    );
}
