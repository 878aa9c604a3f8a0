//! `eksgate doctor` asks the calls only some manifests make (the access
//! check, the network findings, prefix lists, the exclusive allow-list)
//! when a manifest needs them and lists them as not needed otherwise; the
//! actions it names are exactly those the permission hints list; the
//! emulator answers a `RevokeSecurityGroupIngress` dry run as AWS does.

use std::collections::BTreeSet;

use eksgate::explain::{READ_ACTIONS, WRITE_ACTIONS};

use crate::common::{err_parts, no_retry, quick, sdk_config_as, start};
use crate::snapshot::eksgate_snapshot;
use crate::test::{Run, Test};

/// Account `111122223333`: a role that may do everything, one denied
/// `ListAccessEntries`, one denied `DescribeNatGateways`; `payments` with
/// an access entry for the bastion role and a past update, `ledger`
/// public, a prefix list and a bastion security group.
const WORLD: &str = r#"
[[account]]
id = "111122223333"
access_keys = [{ id = "AKIDEKSGATETEST", secret = "eksgate-test-secret" }]
roles = [
  "arn:aws:iam::111122223333:role/deployer",
  "arn:aws:iam::111122223333:role/no-access",
  "arn:aws:iam::111122223333:role/no-nat",
]
deny = [
  { principal = "arn:aws:iam::111122223333:role/no-access", actions = ["eks:ListAccessEntries"] },
  { principal = "arn:aws:iam::111122223333:role/no-nat", actions = ["ec2:DescribeNatGateways"] },
]

[[vpc]]
id = "vpc-0d"
region = "us-east-1"
account = "111122223333"

[[security_group]]
id = "sg-0d"
region = "us-east-1"
account = "111122223333"
vpc_id = "vpc-0d"

[[security_group]]
id = "sg-0b0b0b0b"
region = "us-east-1"
account = "111122223333"
vpc_id = "vpc-0d"

[[prefix_list]]
id = "pl-0a1b2c3d4e5f60001"
region = "us-east-1"
account = "111122223333"
name = "office"
entries = ["198.51.100.0/26"]
max_entries = 10

[[cluster]]
name = "payments"
region = "us-east-1"
account = "111122223333"
vpc_id = "vpc-0d"
security_group = "sg-0d"
public_access = true
private_access = false
past_updates = 1

[[cluster.access_entry]]
principal_arn = "arn:aws:iam::111122223333:role/bastion"
access_policies = ["arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"]

[[cluster]]
name = "ledger"
region = "us-east-1"
account = "111122223333"
vpc_id = "vpc-0d"
security_group = "sg-0d"
public_access = true
private_access = false
"#;

/// `payments` private only, reached from a CIDR, a group and a prefix
/// list, exclusive, kept usable by the bastion role; `ledger` public only;
/// both read with role `ROLE`.
fn everything(role: &str) -> String {
    format!(
        r#"[defaults]
account = "111122223333"
role_arn = "arn:aws:iam::111122223333:role/{role}"

[[cluster]]
name = "payments"
region = "us-east-1"
public_access = false
private_access = true
private_access_from = ["10.0.0.0/8", "sg-0b0b0b0b", "pl-0a1b2c3d4e5f60001"]
private_access_from_exclusive = true
private_access_principals = ["arn:aws:iam::111122223333:role/bastion"]

[[cluster]]
name = "ledger"
region = "us-east-1"
public_access = true
private_access = false
"#
    )
}

/// `ledger` alone, private only from a CIDR: no principals, no prefix
/// list, not exclusive, not public.
const PLAIN: &str = r#"[defaults]
account = "111122223333"
role_arn = "arn:aws:iam::111122223333:role/deployer"

[[cluster]]
name = "ledger"
region = "us-east-1"
public_access = false
private_access = true
private_access_from = ["10.0.0.0/8"]
"#;

async fn doctor_json(manifest: &str) -> (Run, serde_json::Value) {
    let run = Test::new()
        .world(WORLD)
        .manifest(manifest)
        .args(["doctor", "prod.toml", "--format", "json"])
        .run()
        .await;
    let v = serde_json::from_str(run.stdout()).expect("JSON");
    (run, v)
}

/// The rows of `action`.
fn rows<'a>(v: &'a serde_json::Value, action: &str) -> Vec<&'a serde_json::Value> {
    v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["check"] == action)
        .collect()
}

/// The IAM actions (not `sts:`) the report names.
fn actions(v: &serde_json::Value) -> BTreeSet<String> {
    v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["check"].as_str())
        .filter(|c| c.contains(':') && !c.starts_with("sts:"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn doctor_passes_principals_a_prefix_list_and_exclusive_on_a_good_world() {
    let run = Test::new()
        .world(WORLD)
        .manifest(&everything("deployer"))
        .args(["doctor", "prod.toml"])
        .run()
        .await
        .success();
    eksgate_snapshot!(run, @"
    success: true
    exit_code: 0
    ----- stdout -----
    CHECK                               SCOPE                                    RESULT
    credentials                         environment                              ok: the access key ending `TEST` from the environment (`AWS_ACCESS_KEY_ID`)
    sts:GetCallerIdentity               us-east-1                                ok: acts as `arn:aws:iam::111122223333:user/eksgate-sim` in account `111122223333`
    sts:AssumeRole                      arn:aws:iam::111122223333:role/deployer  ok: acts as `arn:aws:sts::111122223333:assumed-role/deployer/eksgate`
    account                             account 111122223333                     ok: the credentials act in `111122223333`
    endpoint                            us-east-1 EKS                            ok: answers
    endpoint                            us-east-1 EC2                            ok: answers
    eks:DescribeCluster                 us-east-1/payments as deployer           ok: cluster `payments` read
    eks:ListUpdates                     us-east-1/payments as deployer           ok: listed
    eks:DescribeUpdate                  us-east-1/payments as deployer           ok: update `[UPDATE_ID]` read
    ec2:DescribeVpcs                    us-east-1/payments as deployer           ok: `vpc-0d` read
    ec2:DescribeVpcAttribute            us-east-1/payments as deployer           ok: `vpc-0d` read
    ec2:DescribeDhcpOptions             us-east-1/payments as deployer           ok: read
    ec2:DescribeSecurityGroups          us-east-1/payments as deployer           ok: `sg-0d` read
    ec2:AuthorizeSecurityGroupIngress   us-east-1/payments as deployer           ok: dry run on `sg-0d`
    ec2:DescribeNatGateways             us-east-1/ledger as deployer             ok: listed
    ec2:DescribeRouteTables             us-east-1/payments as deployer           ok: listed
    ec2:DescribeVpcPeeringConnections   us-east-1/payments as deployer           ok: listed
    eks:ListAccessEntries               us-east-1/payments as deployer           ok: the entries of `payments` listed
    eks:DescribeAccessEntry             us-east-1/payments as deployer           ok: the entry of `arn:aws:iam::111122223333:role/bastion` read
    eks:ListAssociatedAccessPolicies    us-east-1/payments as deployer           ok: the policies of `arn:aws:iam::111122223333:role/bastion` listed
    ec2:DescribeManagedPrefixLists      us-east-1/payments as deployer           ok: `pl-0a1b2c3d4e5f60001` read
    ec2:GetManagedPrefixListEntries     us-east-1/payments as deployer           ok: the entries of `pl-0a1b2c3d4e5f60001` read
    ec2:DescribeSecurityGroupRules      us-east-1/payments as deployer           ok: the rules of `sg-0d` read
    ec2:RevokeSecurityGroupIngress      us-east-1/payments as deployer           ok: dry run on `sg-0d`
    eks:UpdateClusterConfig             us-east-1/payments as deployer           not checked: EKS writes have no dry run: apply is the first call to know
    ec2:ModifyVpcAttribute              us-east-1/payments as deployer           not checked: the call has no dry run: apply is the first call to know
    route53:AssociateVPCWithHostedZone  us-east-1/payments as deployer           not checked: turning private access on needs it besides the EKS permission; it has no dry run: apply is the first call to know

    27 checks: 24 ok, 0 failed, 3 not checked

    ----- stderr -----
    ");
    assert_eq!(
        run.state()["regions"][0]["security_groups"][0]["ingress"],
        serde_json::json!([]),
        "the dry runs changed nothing"
    );
}

#[tokio::test]
async fn doctor_fails_a_denied_access_entry_listing_with_its_hint() {
    let (run, v) = doctor_json(&everything("no-access")).await;
    let run = run.failure();
    assert_eq!(v["failed"], 1, "{}", run.stdout());
    let row = rows(&v, "eks:ListAccessEntries");
    assert_eq!(row.len(), 1, "{v}");
    assert_eq!(row[0]["outcome"], "failed");
    assert_eq!(row[0]["scope"], "us-east-1/payments as no-access");
    assert_eq!(
        row[0]["detail"],
        "AWS denied `eks:ListAccessEntries` on `arn:aws:eks:us-east-1:111122223333:cluster/payments` to `arn:aws:sts::111122223333:assumed-role/no-access/eksgate` (ListAccessEntries: AccessDeniedException)"
    );
    let hint = row[0]["hint"].as_str().expect("a hint");
    assert!(
        hint.starts_with(
            "allow `eks:ListAccessEntries` in that principal's IAM policy; `plan` needs "
        ),
        "{hint}"
    );
    // Without principals the listing is not asked, so the same role passes.
    let (run, v) = doctor_json(&PLAIN.replace("deployer", "no-access")).await;
    run.success();
    assert_eq!(
        rows(&v, "eks:ListAccessEntries")[0]["outcome"],
        "not_checkable"
    );
    assert_eq!(
        rows(&v, "eks:ListAccessEntries")[0]["detail"],
        "not needed by these manifests"
    );
}

#[tokio::test]
async fn doctor_fails_a_denied_nat_gateway_read_with_its_hint() {
    let (run, v) = doctor_json(&everything("no-nat")).await;
    let run = run.failure();
    assert_eq!(v["failed"], 1, "{}", run.stdout());
    let row = rows(&v, "ec2:DescribeNatGateways");
    assert_eq!(row.len(), 1, "{v}");
    assert_eq!(row[0]["outcome"], "failed");
    assert_eq!(row[0]["scope"], "us-east-1/ledger as no-nat");
    let detail = row[0]["detail"].as_str().expect("a detail");
    assert!(
        detail.starts_with("AWS denied `ec2:DescribeNatGateways` to `arn:aws:sts::111122223333:assumed-role/no-nat/eksgate` (DescribeNatGateways: UnauthorizedOperation)"),
        "{detail}"
    );
    let hint = row[0]["hint"].as_str().expect("a hint");
    assert!(
        hint.starts_with(
            "allow `ec2:DescribeNatGateways` in that principal's IAM policy; `plan` needs "
        ),
        "{hint}"
    );
    // No cluster public only: the NAT gateways are not read.
    let (run, v) = doctor_json(&PLAIN.replace("deployer", "no-nat")).await;
    run.success();
    assert_eq!(
        rows(&v, "ec2:DescribeNatGateways")[0]["detail"],
        "not needed by these manifests"
    );
}

/// What doctor names and what the permission hints list are one list:
/// every action is in the report, probed or marked, for any manifests.
#[tokio::test]
async fn doctor_names_exactly_the_actions_the_hints_list() {
    let listed: BTreeSet<String> = READ_ACTIONS
        .iter()
        .chain(WRITE_ACTIONS)
        .map(|a| a.to_string())
        .collect();
    for manifest in [everything("deployer"), PLAIN.to_string()] {
        let (run, v) = doctor_json(&manifest).await;
        run.success();
        assert_eq!(actions(&v), listed, "{manifest}");
        for a in &listed {
            assert_eq!(rows(&v, a).len(), 1, "`{a}` once in {v}");
        }
    }
    let (_, v) = doctor_json(&everything("deployer")).await;
    let asked: BTreeSet<String> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["outcome"] == "ok")
        .filter_map(|c| c["check"].as_str())
        .filter(|c| c.contains(':') && !c.starts_with("sts:"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        asked,
        READ_ACTIONS
            .iter()
            .chain(&[
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:DescribeSecurityGroupRules",
                "ec2:RevokeSecurityGroupIngress"
            ])
            .map(|a| a.to_string())
            .collect(),
        "every read and every write with a dry run is asked when the manifests need it"
    );
}

/// `DryRun=true` on `RevokeSecurityGroupIngress` asks only whether the
/// call is allowed: `DryRunOperation` (412) when it is,
/// `UnauthorizedOperation` (403) when a policy denies it, and the rule
/// stays either way (`DryRun` member of `RevokeSecurityGroupIngressRequest`
/// in the `ec2` service model).
#[tokio::test]
async fn the_emulator_answers_a_revoke_dry_run_as_aws_does() {
    let world = r#"
[[account]]
id = "111122223333"
access_key_ids = ["AKIDALLOWED", "AKIDDENIED"]
deny = [{ principal = "AKIDDENIED", actions = ["ec2:Revoke*"] }]

[[vpc]]
id = "vpc-0d"
region = "us-east-1"
account = "111122223333"

[[security_group]]
id = "sg-0d"
region = "us-east-1"
account = "111122223333"
vpc_id = "vpc-0d"
https_ingress = ["192.0.2.1/32"]
"#;
    let sim = start(world, quick()).await;
    let call = |key: &'static str, dry: bool| {
        let sim = &sim;
        async move {
            let ec2 =
                aws_sdk_ec2::Client::new(&sdk_config_as(sim, "us-east-1", no_retry(), key).await);
            ec2.revoke_security_group_ingress()
                .group_id("sg-0d")
                .ip_permissions(
                    aws_sdk_ec2::types::IpPermission::builder()
                        .ip_protocol("tcp")
                        .from_port(443)
                        .to_port(443)
                        .ip_ranges(
                            aws_sdk_ec2::types::IpRange::builder()
                                .cidr_ip("192.0.2.1/32")
                                .build(),
                        )
                        .build(),
                )
                .dry_run(dry)
                .send()
                .await
        }
    };
    let rules = |sim: &eksgate::sim::SimHandle| {
        sim.snapshot()["regions"][0]["security_groups"][0]["ingress"]
            .as_array()
            .map(Vec::len)
    };
    let allowed = call("AKIDALLOWED", true)
        .await
        .expect_err("a dry run always errs");
    assert_eq!(
        err_parts(&allowed),
        (
            "DryRunOperation".into(),
            412,
            "Request would have succeeded, but DryRun flag is set.".into()
        )
    );
    let denied = call("AKIDDENIED", true).await.expect_err("denied");
    let (code, status, message) = err_parts(&denied);
    assert_eq!((code.as_str(), status), ("UnauthorizedOperation", 403));
    assert!(
        message.starts_with("You are not authorized to perform this operation. User: arn:aws:iam::111122223333:user/eksgate-sim is not authorized to perform: ec2:RevokeSecurityGroupIngress on resource: arn:aws:ec2:us-east-1:111122223333:security-group/sg-0d with an explicit deny in an identity-based policy. Encoded authorization failure message: "),
        "{message}"
    );
    assert_eq!(rules(&sim), Some(1), "the dry runs revoked nothing");
    call("AKIDALLOWED", false).await.expect("allowed for real");
    assert_eq!(rules(&sim), Some(0), "revoked for real");
}
