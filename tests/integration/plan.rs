//! `eksgate plan` as a user runs it: the real binary, the real SDK, the
//! emulator on loopback. Output is pinned; exit codes 0/1/2; the number of
//! calls a large fleet costs is counted from the emulator's history.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::fixture::fixture;
use crate::snapshot::eksgate_snapshot;
use crate::test::Test;

/// `payments` public only, `ledger` public and private, sharing a VPC whose
/// DNS hostnames are off; `analytics` in a VPC without `AmazonProvidedDNS`.
const WORLD: &str = fixture!("worlds/shared-vpc-corp-dns.toml");

/// `payments` goes private only, `ledger` narrows its public CIDRs.
const MANIFEST: &str = fixture!("manifests/payments-private-ledger-cidrs.toml");

/// A [`Test`] of `WORLD` and `MANIFEST`.
fn test() -> Test {
    Test::new().world(WORLD).manifest(MANIFEST)
}

#[tokio::test]
async fn plan_shows_the_diff_and_the_ordered_steps() {
    let out = test().args(["plan", "prod.toml"]).run().await.success();
    eksgate_snapshot!(out.stdout(), @r#"
    us-east-1/ledger: 2 steps
         public_access = true
         private_access = true
        -public_access_cidrs = ["0.0.0.0/0"]
        +public_access_cidrs = ["203.0.113.0/24"]
         private_access_from = ["10.20.0.0/16"]

      1. us-east-1/vpc-0shared/dns_hostnames
         enable `enableDnsHostnames` on `vpc-0shared`
         why: private access on `ledger` and `payments` needs `enableDnsHostnames` in `vpc-0shared`, or the endpoint's name does not resolve there

      2. us-east-1/ledger/endpoint.1
         endpoint stays public and private, public CIDRs ["0.0.0.0/0"] → ["203.0.113.0/24"]
         waits for: 1. us-east-1/vpc-0shared/dns_hostnames
         why: set the public access CIDRs the manifest lists; it waits for the VPC DNS settings private access needs

    us-east-1/payments: 4 steps
        -public_access = true
        -private_access = false
        +public_access = false
        +private_access = true
         public_access_cidrs = ["0.0.0.0/0"]
        -private_access_from = []
        +private_access_from = ["10.20.0.0/16"]

      1. us-east-1/vpc-0shared/dns_hostnames
         enable `enableDnsHostnames` on `vpc-0shared`
         why: private access on `ledger` and `payments` needs `enableDnsHostnames` in `vpc-0shared`, or the endpoint's name does not resolve there

      3. us-east-1/sg-0a1b2c3d4e5f60001/https_ingress
         allow TCP 443 into `sg-0a1b2c3d4e5f60001` from `10.20.0.0/16`
         why: the `private_access_from` sources of `payments` must reach the private endpoint on TCP 443 before public access is turned off

      4. us-east-1/payments/endpoint.1
         endpoint public only → public and private
         waits for: 1. us-east-1/vpc-0shared/dns_hostnames
         why: turn private access on first, so the cluster stays reachable while public access is turned off in the next step; it waits for the VPC DNS settings private access needs

      5. us-east-1/payments/endpoint.2
         endpoint public and private → private only
         waits for: 3. us-east-1/sg-0a1b2c3d4e5f60001/https_ingress, 4. us-east-1/payments/endpoint.1
         why: make the endpoint private only, as the manifest asks; it waits for the previous endpoint update to be `Successful` and the TCP 443 ingress for `private_access_from`

    Plan: 5 steps on 2 clusters, 1 VPC change, 1 security group change
    "#);
    // Planning changes nothing.
    assert_eq!(out.writes(), Vec::<String>::new());
}

#[tokio::test]
async fn plan_json_lists_steps_with_their_dependencies() {
    let out = test()
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .success();
    let v: serde_json::Value = serde_json::from_str(out.stdout()).unwrap();
    assert_eq!(v["format_version"], 1);
    let steps = v["steps"].as_array().unwrap();
    let by_id: BTreeMap<&str, &serde_json::Value> = steps
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s))
        .collect();
    let off = by_id["us-east-1/payments/endpoint.2"];
    assert_eq!(off["kind"], "eks_endpoint");
    assert_eq!(off["cluster"], "payments");
    assert_eq!(off["region"], "us-east-1");
    assert_eq!(
        off["after"],
        serde_json::json!({"public_access": false, "private_access": true})
    );
    let deps: Vec<&str> = off["depends_on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(deps.contains(&"us-east-1/payments/endpoint.1"), "{deps:?}");
    assert!(
        deps.contains(&"us-east-1/sg-0a1b2c3d4e5f60001/https_ingress"),
        "{deps:?}"
    );
    let cidrs = by_id["us-east-1/ledger/endpoint.1"];
    assert_eq!(
        cidrs["after"],
        serde_json::json!({"public_access": true, "private_access": true, "public_access_cidrs": ["203.0.113.0/24"]})
    );
    for s in steps {
        assert!(s["reason"].as_str().is_some_and(|r| !r.is_empty()));
        for d in s["depends_on"].as_array().unwrap() {
            assert!(
                by_id.contains_key(d.as_str().unwrap()),
                "dangling dependency {d}"
            );
        }
    }
}

#[tokio::test]
async fn detailed_exitcode_says_changes_and_no_changes() {
    let out = test()
        .args(["plan", "prod.toml", "--detailed-exitcode"])
        .run()
        .await
        .exit(2);

    out.again()
        .file(
            "prod.toml",
            "[[cluster]]\nname = \"analytics\"\nregion = \"eu-west-1\"\npublic_access = true\nprivate_access = false\npublic_access_cidrs = [\"0.0.0.0/0\"]\n",
        )
        .args(["plan", "prod.toml", "--detailed-exitcode"])
        .run()
        .await
        .success()
        .stdout_is("No changes: 1 cluster matches its manifest\n");
}

#[tokio::test]
async fn blocked_clusters_exit_1_and_the_others_are_still_planned() {
    let out = test()
        .manifest("[[cluster]]\nname = \"analytics\"\nregion = \"eu-west-1\"\npublic_access = true\nprivate_access = true\n\n[[cluster]]\nname = \"ghost\"\nregion = \"eu-west-1\"\npublic_access = true\nprivate_access = false\n")
        .args(["plan", "prod.toml", "--detailed-exitcode"])
        .run()
        .await
        .failure();
    eksgate_snapshot!(out, @r#"
    success: false
    exit_code: 1
    ----- stdout -----
    eu-west-1/analytics: blocked

    eu-west-1/ghost: blocked

    us-east-1/ledger: 2 steps
         public_access = true
         private_access = true
        -public_access_cidrs = ["0.0.0.0/0"]
        +public_access_cidrs = ["203.0.113.0/24"]
         private_access_from = ["10.20.0.0/16"]

      1. us-east-1/vpc-0shared/dns_hostnames
         enable `enableDnsHostnames` on `vpc-0shared`
         why: private access on `ledger` and `payments` needs `enableDnsHostnames` in `vpc-0shared`, or the endpoint's name does not resolve there

      2. us-east-1/ledger/endpoint.1
         endpoint stays public and private, public CIDRs ["0.0.0.0/0"] → ["203.0.113.0/24"]
         waits for: 1. us-east-1/vpc-0shared/dns_hostnames
         why: set the public access CIDRs the manifest lists; it waits for the VPC DNS settings private access needs

    us-east-1/payments: 4 steps
        -public_access = true
        -private_access = false
        +public_access = false
        +private_access = true
         public_access_cidrs = ["0.0.0.0/0"]
        -private_access_from = []
        +private_access_from = ["10.20.0.0/16"]

      1. us-east-1/vpc-0shared/dns_hostnames
         enable `enableDnsHostnames` on `vpc-0shared`
         why: private access on `ledger` and `payments` needs `enableDnsHostnames` in `vpc-0shared`, or the endpoint's name does not resolve there

      3. us-east-1/sg-0a1b2c3d4e5f60001/https_ingress
         allow TCP 443 into `sg-0a1b2c3d4e5f60001` from `10.20.0.0/16`
         why: the `private_access_from` sources of `payments` must reach the private endpoint on TCP 443 before public access is turned off

      4. us-east-1/payments/endpoint.1
         endpoint public only → public and private
         waits for: 1. us-east-1/vpc-0shared/dns_hostnames
         why: turn private access on first, so the cluster stays reachable while public access is turned off in the next step; it waits for the VPC DNS settings private access needs

      5. us-east-1/payments/endpoint.2
         endpoint public and private → private only
         waits for: 3. us-east-1/sg-0a1b2c3d4e5f60001/https_ingress, 4. us-east-1/payments/endpoint.1
         why: make the endpoint private only, as the manifest asks; it waits for the previous endpoint update to be `Successful` and the TCP 443 ingress for `private_access_from`

    error: `eu-west-1/analytics` asks for private access, but the DHCP options `dopt-0corp` of VPC `vpc-0corp` do not list `AmazonProvidedDNS`
    hint: create a DHCP options set whose `domain-name-servers` include `AmazonProvidedDNS` and associate it with `vpc-0corp` (replacing `dopt-0corp`); otherwise the private endpoint's name does not resolve in the VPC

    error: cluster `ghost` not found in region `eu-west-1`
    hint: check the region, the account the credentials resolve to and the cluster name (declared at prod.toml:25:1)

    Plan: 5 steps on 2 clusters, 1 VPC change, 1 security group change; 2 clusters blocked

    ----- stderr -----
    error: the plan is blocked for 2 clusters
    hint: the plan above says why for each; the other clusters were planned
    "#);
}

#[tokio::test]
async fn target_limits_the_plan_and_an_unknown_target_is_an_error() {
    let out = test()
        .args([
            "plan",
            "prod.toml",
            "--target",
            "us-east-1/ledger",
            "--format",
            "json",
        ])
        .run()
        .await
        .success();
    let v: serde_json::Value = serde_json::from_str(out.stdout()).unwrap();
    assert!(v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["cluster"] != "payments"));
    let described: Vec<_> = out
        .requests()
        .into_iter()
        .filter(|(_, op, _, _)| op == "DescribeCluster")
        .map(|(_, _, t, _)| t.unwrap_or_default())
        .collect();
    assert_eq!(described, ["ledger"]);

    out.again()
        .args(["plan", "prod.toml", "--target", "us-east-1/nope"])
        .run()
        .await
        .failure()
        .stderr_is("error: `--target us-east-1/nope` names no cluster of the manifests\nhint: `eksgate validate` lists how many clusters the manifests declare\n");
}

#[tokio::test]
async fn the_manifest_account_is_checked_against_sts() {
    let out = Test::new()
        .world(WORLD)
        .world("[[account]]\nid = \"111122223333\"\naccess_key_ids = [\"AKIDEKSGATETEST\"]\n")
        .manifest("[defaults]\naccount = \"999988887777\"\n\n[[cluster]]\nname = \"payments\"\nregion = \"us-east-1\"\npublic_access = true\nprivate_access = true\n")
        .args(["plan", "prod.toml"])
        .run()
        .await
        .failure();
    eksgate_snapshot!(out, @"
    success: false
    exit_code: 1
    ----- stdout -----
    us-east-1/payments (account 999988887777): blocked

    error: the credentials for `us-east-1/payments` resolve to account `111122223333`, but the manifest expects `999988887777`
    hint: use credentials for account `999988887777` (a profile, or `role_arn` in the manifest)

    No steps: 1 cluster blocked

    ----- stderr -----
    error: the plan is blocked for 1 cluster
    hint: the plan above says why for each; the other clusters were planned
    ");
    let ops: Vec<String> = out.requests().into_iter().map(|(_, op, _, _)| op).collect();
    assert_eq!(
        ops,
        ["GetCallerIdentity"],
        "nothing is read for a cluster in the wrong account"
    );
}

#[tokio::test]
async fn plan_out_saves_a_plan_with_its_checksum() {
    let out = test()
        .args(["plan", "prod.toml", "--out", "plan.json"])
        .run()
        .await
        .success();
    eksgate_snapshot!(out.stderr(), @"Saved the plan to `plan.json`; apply it with `eksgate apply --plan plan.json`.");
    let saved: serde_json::Value = serde_json::from_str(&out.read("plan.json")).unwrap();
    assert_eq!(saved["saved_format"], 3);
    assert_eq!(saved["eksgate_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(saved["checksum"].as_str().unwrap().len(), 64);
    assert_eq!(saved["plan"]["steps"].as_array().unwrap().len(), 5);
    assert!(saved["plan"]["steps"][0]["fingerprint"].as_str().is_some());
}

/// A fleet of 1,000 clusters over 4 regions, VPCs shared by 10 clusters each:
/// one DescribeCluster per cluster and one read of each VPC attribute per VPC.
#[tokio::test]
async fn reading_a_large_fleet_costs_one_call_per_thing() {
    let regions = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];
    let mut world = String::new();
    let mut manifest = String::new();
    for i in 0..1000 {
        let region = regions[i % 4];
        let vpc = format!("vpc-{:08x}", i / 40 * 4 + i % 4);
        if i / 4 % 10 == 0 {
            world.push_str(&format!(
                "[[vpc]]\nid = \"{vpc}\"\nregion = \"{region}\"\ndns_hostnames = {}\n\n",
                i % 3 == 0
            ));
        }
        world.push_str(&format!(
            "[[security_group]]\nid = \"sg-{i:017x}\"\nregion = \"{region}\"\nvpc_id = \"{vpc}\"\n\n[[cluster]]\nname = \"c{i:04}\"\nregion = \"{region}\"\nvpc_id = \"{vpc}\"\nsecurity_group = \"sg-{i:017x}\"\npublic_access = true\nprivate_access = false\n\n"
        ));
        manifest.push_str(&format!(
            "[[cluster]]\nname = \"c{i:04}\"\nregion = \"{region}\"\npublic_access = true\nprivate_access = true\nprivate_access_from = [\"10.0.0.0/8\"]\n\n"
        ));
    }
    let out = Test::new()
        .world(&world)
        .update_duration(Duration::from_secs(1))
        .manifest(&manifest)
        .args([
            "plan",
            "prod.toml",
            "--parallelism",
            "32",
            "--format",
            "json",
        ])
        .run()
        .await
        .success();
    let reqs = out.requests();
    let mut per: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (_, op, target, outcome) in &reqs {
        assert_eq!(outcome, "ok");
        *per.entry((op.clone(), target.clone().unwrap_or_default()))
            .or_default() += 1;
    }
    let count = |op: &str| reqs.iter().filter(|r| r.1 == op).count();
    assert_eq!(count("DescribeCluster"), 1000);
    assert!(per
        .iter()
        .filter(|((op, _), _)| op == "DescribeCluster")
        .all(|(_, n)| *n == 1));
    // 100 VPCs, two attributes each, each read once.
    assert_eq!(count("DescribeVpcAttribute"), 200);
    assert!(per
        .iter()
        .filter(|((op, _), _)| op == "DescribeVpcAttribute")
        .all(|(_, n)| *n == 2));
    // DHCP options and security groups are read in batches per region.
    assert!(
        count("DescribeVpcs") <= 4 && count("DescribeDhcpOptions") <= 4,
        "{per:?}"
    );
    assert!(count("DescribeSecurityGroups") <= 40);
    eprintln!(
        "1000 clusters / 4 regions: {} calls: {} DescribeCluster, {} DescribeVpcAttribute, {} DescribeVpcs, {} DescribeDhcpOptions, {} DescribeSecurityGroups",
        reqs.len(),
        count("DescribeCluster"),
        count("DescribeVpcAttribute"),
        count("DescribeVpcs"),
        count("DescribeDhcpOptions"),
        count("DescribeSecurityGroups")
    );
}
