//! Network paths (issue "Nodes and clients stay connected"): the emulator's
//! NAT gateways, route tables, peering connections, IP families and hybrid
//! node networks, the findings a plan makes of them before anything changes,
//! and the `validate` warning for public CIDRs no internet client has. Each
//! finding is shown firing and staying quiet when the world is right.

use crate::common::*;
use crate::test::{Test, NO_ARGS};

/// One VPC with two blocks and three NAT gateways: two `available` ones,
/// one still `pending` (whose address does not count).
const NAT_WORLD: &str = r#"
[[vpc]]
id = "vpc-0net"
region = "us-east-1"
cidr_block = "10.0.0.0/16"
secondary_cidr_blocks = ["10.1.0.0/16"]

[[nat_gateway]]
id = "nat-0a"
region = "us-east-1"
vpc_id = "vpc-0net"
public_ip = "198.51.100.7"

[[nat_gateway]]
id = "nat-0b"
region = "us-east-1"
vpc_id = "vpc-0net"
public_ip = "198.51.100.8"

[[nat_gateway]]
id = "nat-0c"
region = "us-east-1"
vpc_id = "vpc-0net"
public_ip = "192.0.2.99"
state = "pending"

[[vpc]]
id = "vpc-0bare"
region = "us-east-1"

[[cluster]]
name = "edge"
region = "us-east-1"
vpc_id = "vpc-0net"
public_access = true
private_access = true

[[cluster]]
name = "inside"
region = "us-east-1"
vpc_id = "vpc-0net"
public_access = true
private_access = false

[[cluster]]
name = "bare"
region = "us-east-1"
vpc_id = "vpc-0bare"
public_access = true
private_access = false
"#;

/// `name` public only, from `cidrs`.
fn public_only(name: &str, cidrs: &str) -> String {
    format!(
        "[[cluster]]\nname = \"{name}\"\nregion = \"us-east-1\"\npublic_access = true\nprivate_access = false\npublic_access_cidrs = {cidrs}\n\n"
    )
}

/// `(cluster, code, severity)` of every finding of a JSON plan.
fn codes(json: &str) -> Vec<(String, String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let mut out: Vec<(String, String, String)> = v["findings"]
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
    out.sort();
    out
}

fn code(cluster: &str, code: &str, severity: &str) -> (String, String, String) {
    (cluster.to_string(), code.to_string(), severity.to_string())
}

#[tokio::test]
async fn the_emulator_lists_nat_gateways_by_vpc_and_state_in_pages() {
    let sim = start(NAT_WORLD, quick()).await;
    let client = ec2(&sim, "us-east-1").await;
    let filter = |name: &str, v: &str| {
        aws_sdk_ec2::types::Filter::builder()
            .name(name)
            .values(v)
            .build()
    };
    let out = client
        .describe_nat_gateways()
        .filter(filter("vpc-id", "vpc-0net"))
        .filter(filter("state", "available"))
        .max_results(5)
        .send()
        .await
        .unwrap();
    let ips: Vec<&str> = out
        .nat_gateways()
        .iter()
        .flat_map(|g| g.nat_gateway_addresses())
        .filter_map(|a| a.public_ip())
        .collect();
    assert_eq!(ips, ["198.51.100.7", "198.51.100.8"]);
    assert!(out.next_token().is_none());

    // Pages of at least five, in order, with a token to the next.
    let mut world = String::from("[[vpc]]\nid = \"vpc-0many\"\nregion = \"us-east-1\"\n");
    for i in 0..7 {
        world.push_str(&format!(
            "[[nat_gateway]]\nid = \"nat-0{i}\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-0many\"\npublic_ip = \"198.51.100.{i}\"\n"
        ));
    }
    let many = start(&world, quick()).await;
    let paged = ec2(&many, "us-east-1").await;
    let first = paged
        .describe_nat_gateways()
        .filter(filter("vpc-id", "vpc-0many"))
        .max_results(5)
        .send()
        .await
        .unwrap();
    assert_eq!(first.nat_gateways().len(), 5);
    let second = paged
        .describe_nat_gateways()
        .filter(filter("vpc-id", "vpc-0many"))
        .max_results(5)
        .next_token(first.next_token().unwrap())
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = second
        .nat_gateways()
        .iter()
        .filter_map(|g| g.nat_gateway_id())
        .collect();
    assert_eq!(ids, ["nat-05", "nat-06"]);
    assert!(second.next_token().is_none());

    let err = client
        .describe_nat_gateways()
        .filter(filter("subnet-idd", "x"))
        .send()
        .await
        .unwrap_err();
    let (code, status, _) = err_parts(&err);
    assert_eq!((code.as_str(), status), ("InvalidParameterValue", 400));
    let err = client
        .describe_nat_gateways()
        .max_results(2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_parts(&err).0, "InvalidParameterValue");
}

/// `edge` would go public only from a list that leaves out both NAT
/// addresses: blocked, with the addresses and the `/32`s to add. `inside`
/// lists them and goes ahead in the same run.
#[tokio::test]
async fn nat_addresses_outside_the_public_cidrs_block_their_cluster_only() {
    let manifest = format!(
        "{}{}",
        public_only("edge", r#"["203.0.113.0/24"]"#),
        public_only("inside", r#"["198.51.100.0/24"]"#)
    );
    let out = Test::new()
        .world(NAT_WORLD)
        .manifest(&manifest)
        .args(["plan", "prod.toml"])
        .run()
        .await
        .failure();
    let text = out.stdout();
    assert!(
        text.contains("error: `us-east-1/edge` would have public access only, from `203.0.113.0/24`, but the NAT gateway addresses `198.51.100.7` and `198.51.100.8` of VPC `vpc-0net` are outside it: nodes and Fargate pods that reach the API through them would stop joining"),
        "{text}"
    );
    assert!(
        text.contains("hint: add \"198.51.100.7/32\" and \"198.51.100.8/32\" to `public_access_cidrs`, or turn on `private_access`"),
        "{text}"
    );
    assert!(
        !text.contains("192.0.2.99"),
        "a pending gateway counts: {text}"
    );

    let json = out
        .again()
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await;
    assert_eq!(
        codes(json.stdout()),
        vec![code("edge", "nat_outside_public_cidrs", "block")],
        "`inside` lists both addresses and stays quiet"
    );
    let md = json
        .again()
        .args(["plan", "prod.toml", "--format", "markdown"])
        .run()
        .await;
    assert!(
        md.stdout()
            .contains("- **error** `nat_outside_public_cidrs`: `us-east-1/edge`"),
        "{}",
        md.stdout()
    );

    // The blocked cluster makes no write; the other converges.
    let applied = md.again().apply(NO_ARGS).run().await.failure();
    let writes = applied.writes();
    assert!(
        writes.iter().all(|w| !w.contains(" edge:")),
        "edge was changed: {writes:?}"
    );
    assert!(
        writes
            .iter()
            .any(|w| w.starts_with("UpdateClusterConfig inside: ok")),
        "{writes:?}"
    );
    // Afterwards `inside` has its list and `edge` is as it was.
    let again = applied
        .again()
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await;
    let v: serde_json::Value = serde_json::from_str(again.stdout()).unwrap();
    let status = |n: &str| {
        v["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"]["name"] == n)
            .map(|c| c["status"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(status("inside"), "no_changes");
    assert_eq!(status("edge"), "blocked");

    // The reads: NAT gateways once for the VPC the two clusters share.
    let nat: Vec<_> = applied
        .requests()
        .into_iter()
        .filter(|r| r.1 == "DescribeNatGateways")
        .collect();
    assert!(
        nat.iter()
            .all(|r| r.2.as_deref() == Some("vpc-id=vpc-0net;state=available")),
        "{nat:?}"
    );
}

#[tokio::test]
async fn a_vpc_without_nat_gateways_warns_that_nodes_cannot_be_checked() {
    let out = Test::new()
        .world(NAT_WORLD)
        .manifest(&public_only("bare", r#"["203.0.113.0/24"]"#))
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .success();
    assert_eq!(
        codes(out.stdout()),
        vec![code("bare", "no_nat_gateway", "warn")]
    );
    let text = out
        .again()
        .args(["plan", "prod.toml"])
        .run()
        .await
        .success();
    assert!(
        text.stdout().contains("warning: `us-east-1/bare` would have public access only, from `203.0.113.0/24`, and VPC `vpc-0bare` has no available NAT gateway"),
        "{}",
        text.stdout()
    );
    // A list that lets everyone in needs no check and no read.
    let open = text
        .again()
        .manifest(&public_only("bare", r#"["0.0.0.0/0"]"#))
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .success();
    assert_eq!(codes(open.stdout()), vec![]);
}

/// Clusters of three kinds: IPv4, IPv6 made in March 2024, IPv6 made in
/// 2025.
const IPV6_WORLD: &str = r#"
[[vpc]]
id = "vpc-0six"
region = "eu-west-1"

[[cluster]]
name = "four"
region = "eu-west-1"
vpc_id = "vpc-0six"
public_access = true
private_access = true

[[cluster]]
name = "six-early"
region = "eu-west-1"
vpc_id = "vpc-0six"
public_access = true
private_access = true
ip_family = "ipv6"
created_at = "2024-03-01"

[[cluster]]
name = "six-late"
region = "eu-west-1"
vpc_id = "vpc-0six"
public_access = true
private_access = true
ip_family = "ipv6"
created_at = "2025-02-10T09:30:00Z"
"#;

fn dual(name: &str) -> String {
    format!(
        "[[cluster]]\nname = \"{name}\"\nregion = \"eu-west-1\"\npublic_access = true\nprivate_access = true\npublic_access_cidrs = [\"203.0.113.0/24\", \"2001:db8::/32\"]\n\n"
    )
}

#[tokio::test]
async fn the_emulator_refuses_ipv6_public_cidrs_where_eks_does() {
    let sim = start(IPV6_WORLD, quick()).await;
    let eks = eks(&sim, "eu-west-1").await;
    let cfg = aws_sdk_eks::types::VpcConfigRequest::builder()
        .public_access_cidrs("2001:db8::/32")
        .public_access_cidrs("203.0.113.0/24")
        .build();
    for name in ["four", "six-early"] {
        let err = eks
            .update_cluster_config()
            .name(name)
            .resources_vpc_config(cfg.clone())
            .send()
            .await
            .unwrap_err();
        let (code, status, message) = err_parts(&err);
        assert_eq!(
            (code.as_str(), status, message.as_str()),
            (
                "InvalidParameterException",
                400,
                "The following CIDRs are invalid in publicAccessCidrs: [2001:db8::/32]"
            ),
            "{name}"
        );
    }
    eks.update_cluster_config()
        .name("six-late")
        .resources_vpc_config(cfg)
        .send()
        .await
        .unwrap();
    let c = eks
        .describe_cluster()
        .name("six-early")
        .send()
        .await
        .unwrap();
    let c = c.cluster().unwrap();
    assert_eq!(
        c.kubernetes_network_config()
            .unwrap()
            .ip_family()
            .unwrap()
            .as_str(),
        "ipv6"
    );
    assert_eq!(c.created_at().unwrap().secs(), 1_709_251_200);
}

#[tokio::test]
async fn ipv6_public_cidrs_block_clusters_that_do_not_take_them() {
    let manifest = format!("{}{}{}", dual("four"), dual("six-early"), dual("six-late"));
    let out = Test::new()
        .world(IPV6_WORLD)
        .manifest(&manifest)
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .failure();
    assert_eq!(
        codes(out.stdout()),
        vec![
            code("four", "ipv6_public_cidrs", "block"),
            code("six-early", "ipv6_public_cidrs", "block"),
        ],
        "an IPv6 cluster made in 2025 stays quiet"
    );
    let text = out
        .again()
        .args(["plan", "prod.toml"])
        .run()
        .await
        .failure();
    assert!(text.stdout().contains("error: `eu-west-1/four` would send the IPv6 block `2001:db8::/32` in `publicAccessCidrs`, but it is an `ipv4` cluster: EKS refuses them"), "{}", text.stdout());
    assert!(
        text.stdout()
            .contains("but it is an IPv6 cluster created on 2024-03-01, before October 2024"),
        "{}",
        text.stdout()
    );

    // Only the 2025 cluster is changed, and EKS takes its list.
    let applied = text.again().apply(NO_ARGS).run().await.failure();
    let writes = applied.writes();
    assert_eq!(
        writes
            .iter()
            .filter(|w| w.starts_with("UpdateClusterConfig"))
            .cloned()
            .collect::<Vec<_>>(),
        vec!["UpdateClusterConfig six-late: ok".to_string()]
    );

    // `validate` stays offline and takes IPv6 blocks.
    let valid = applied
        .again()
        .args(["validate", "prod.toml"])
        .run()
        .await
        .success();
    assert_eq!(valid.stdout(), "1 file, 3 clusters: valid\n");
}

/// A VPC `10.0.0.0/16` + `10.1.0.0/16`; the cluster's two subnets use the
/// main table (no table of their own), which only goes to the internet.
const ROUTE_WORLD: &str = r#"
[[vpc]]
id = "vpc-0rt"
region = "us-east-1"
cidr_block = "10.0.0.0/16"
secondary_cidr_blocks = ["10.1.0.0/16"]

[[security_group]]
id = "sg-0000000c"
region = "us-east-1"
vpc_id = "vpc-0rt"

[[route_table]]
id = "rtb-0main"
region = "us-east-1"
vpc_id = "vpc-0rt"
main = true
routes = [{ destination = "0.0.0.0/0", target = "igw-0a1b2c3d" }]

[[cluster]]
name = "ledger"
region = "us-east-1"
vpc_id = "vpc-0rt"
security_group = "sg-0000000c"
subnet_ids = ["subnet-0aa", "subnet-0bb"]
public_access = true
private_access = false
"#;

/// The subnets' own table reaches `10.50.0.0/16` through a transit gateway.
const ROUTE_VIA_TGW: &str = r#"
[[route_table]]
id = "rtb-0private"
region = "us-east-1"
vpc_id = "vpc-0rt"
subnets = ["subnet-0aa", "subnet-0bb"]
routes = [{ destination = "10.50.0.0/16", target = "tgw-0f00d" }, { destination = "0.0.0.0/0", target = "nat-0a" }]
"#;

const LEDGER_PRIVATE: &str = "[[cluster]]\nname = \"ledger\"\nregion = \"us-east-1\"\npublic_access = true\nprivate_access = true\nprivate_access_from = [\"10.50.0.0/16\", \"10.1.4.0/24\"]\n";

#[tokio::test]
async fn a_source_outside_the_vpc_with_no_route_back_warns() {
    let out = Test::new()
        .world(ROUTE_WORLD)
        .manifest(LEDGER_PRIVATE)
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .success();
    // `10.1.4.0/24` is inside the VPC's secondary block: no finding.
    assert_eq!(
        codes(out.stdout()),
        vec![code("ledger", "no_route_to_source", "warn")]
    );
    let text = out
        .again()
        .args(["plan", "prod.toml"])
        .run()
        .await
        .success();
    assert!(
        text.stdout().contains("warning: `us-east-1/ledger` lets `10.50.0.0/16` in on TCP 443, but it is outside VPC `vpc-0rt` (`10.0.0.0/16` and `10.1.0.0/16`) and the route table `rtb-0main` of the cluster's subnets does not send all of it through a transit gateway, peering connection or virtual private gateway"),
        "{}",
        text.stdout()
    );
    // One call for every table of the VPC, in each of the two plans: the
    // subnets' own (none here) and the main one they fall back on.
    let rt: Vec<Option<String>> = text
        .requests()
        .into_iter()
        .filter(|r| r.1 == "DescribeRouteTables")
        .map(|r| r.2)
        .collect();
    assert_eq!(rt, vec![Some("vpc-id=vpc-0rt".to_string()); 2]);
}

#[tokio::test]
async fn a_route_through_a_transit_gateway_stays_quiet() {
    let out = Test::new()
        .world(ROUTE_WORLD)
        .world(ROUTE_VIA_TGW)
        .manifest(LEDGER_PRIVATE)
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .success();
    assert_eq!(codes(out.stdout()), vec![]);
    // Every subnet has its own table, which decides over the main one
    // (that has no route to the source): both came in one call.
    let rt: Vec<Option<String>> = out
        .requests()
        .into_iter()
        .filter(|r| r.1 == "DescribeRouteTables")
        .map(|r| r.2)
        .collect();
    assert_eq!(rt, vec![Some("vpc-id=vpc-0rt".to_string())]);
}

/// A transit gateway route holds `10.0.0.0/8`, but a more specific route
/// sends `10.50.8.0/21`, inside the declared `10.50.0.0/16`, to a NAT
/// gateway: VPC routing picks that one for those addresses.
const ROUTE_PART_VIA_NAT: &str = r#"
[[route_table]]
id = "rtb-0split"
region = "us-east-1"
vpc_id = "vpc-0rt"
subnets = ["subnet-0aa", "subnet-0bb"]
routes = [{ destination = "10.0.0.0/8", target = "tgw-0f00d" }, { destination = "10.50.8.0/21", target = "nat-0a" }]
"#;

#[tokio::test]
async fn a_more_specific_route_elsewhere_takes_part_of_a_source() {
    let out = Test::new()
        .world(ROUTE_WORLD)
        .world(ROUTE_PART_VIA_NAT)
        .manifest(LEDGER_PRIVATE)
        .args(["plan", "prod.toml"])
        .run()
        .await
        .success();
    assert!(
        out.stdout().contains("lets `10.50.0.0/16` in on TCP 443, but it is outside VPC `vpc-0rt` (`10.0.0.0/16` and `10.1.0.0/16`) and the route table `rtb-0split` of the cluster's subnets does not send all of it through"),
        "{}",
        out.stdout()
    );
}

#[tokio::test]
async fn a_prefix_list_entry_outside_the_vpc_needs_a_route_back_too() {
    let list = r#"
[[prefix_list]]
id = "pl-0a1b2c3d4e5f60009"
region = "us-east-1"
name = "offices"
entries = ["10.50.0.0/16", "10.1.9.0/24"]
max_entries = 10
"#;
    let manifest = "[[cluster]]\nname = \"ledger\"\nregion = \"us-east-1\"\npublic_access = true\nprivate_access = true\nprivate_access_from = [\"pl-0a1b2c3d4e5f60009\"]\n";
    let out = Test::new()
        .world(ROUTE_WORLD)
        .world(list)
        .manifest(manifest)
        .args(["plan", "prod.toml"])
        .run()
        .await
        .success();
    // `10.1.9.0/24` is inside the VPC's secondary block; `10.50.0.0/16`
    // only has the main table's internet route.
    assert!(
        out.stdout().contains("warning: `us-east-1/ledger` lets `10.50.0.0/16` (an entry of prefix list `pl-0a1b2c3d4e5f60009`) in on TCP 443, but it is outside VPC `vpc-0rt`"),
        "{}",
        out.stdout()
    );
    assert!(!out.stdout().contains("`10.1.9.0/24`"), "{}", out.stdout());
    assert!(
        out.stdout()
            .contains("or remove it from prefix list `pl-0a1b2c3d4e5f60009`"),
        "{}",
        out.stdout()
    );
    // With a transit gateway route for it, nothing to say.
    let quiet = Test::new()
        .world(ROUTE_WORLD)
        .world(ROUTE_VIA_TGW)
        .world(list)
        .manifest(manifest)
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .success();
    assert_eq!(codes(quiet.stdout()), vec![]);
}

/// The cluster's VPC and a tools VPC whose group reaches it, and a peering
/// connection between them in `status`.
fn peering_world(status: &str) -> String {
    format!(
        r#"
[[vpc]]
id = "vpc-0app"
region = "us-east-1"

[[vpc]]
id = "vpc-0tools"
region = "us-east-1"
cidr_block = "10.9.0.0/16"

[[security_group]]
id = "sg-0000000d"
region = "us-east-1"
vpc_id = "vpc-0app"

[[security_group]]
id = "sg-0000000e"
region = "us-east-1"
vpc_id = "vpc-0tools"

[[vpc_peering]]
id = "pcx-0tools"
region = "us-east-1"
requester_vpc = "vpc-0tools"
accepter_vpc = "vpc-0app"
status = "{status}"

[[cluster]]
name = "app"
region = "us-east-1"
vpc_id = "vpc-0app"
security_group = "sg-0000000d"
public_access = true
private_access = true
"#
    )
}

const APP_FROM_TOOLS: &str = "[[cluster]]\nname = \"app\"\nregion = \"us-east-1\"\npublic_access = true\nprivate_access = true\nprivate_access_from = [\"sg-0000000e\"]\n";

#[tokio::test]
async fn a_group_of_another_vpc_without_an_active_peering_warns() {
    let out = Test::new()
        .world(&peering_world("pending-acceptance"))
        .manifest(APP_FROM_TOOLS)
        .args(["plan", "prod.toml"])
        .run()
        .await
        .success();
    assert!(
        out.stdout().contains("warning: `us-east-1/app` lets security group `sg-0000000e` of VPC `vpc-0tools` in on TCP 443, but VPC `vpc-0app` has no active peering connection (`pcx-0tools` is `pending-acceptance`) with it"),
        "{}",
        out.stdout()
    );
    let json = out
        .again()
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .success();
    assert_eq!(
        codes(json.stdout()),
        vec![code("app", "no_active_peering", "warn")]
    );
}

#[tokio::test]
async fn an_active_peering_stays_quiet() {
    let out = Test::new()
        .world(&peering_world("active"))
        .manifest(APP_FROM_TOOLS)
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .success();
    assert_eq!(codes(out.stdout()), vec![]);
    let peerings = out
        .requests()
        .into_iter()
        .filter(|r| r.1 == "DescribeVpcPeeringConnections")
        .count();
    assert_eq!(peerings, 2, "one per side of the connection");
}

/// A hybrid-nodes cluster, public only today.
const HYBRID_WORLD: &str = r#"
[[vpc]]
id = "vpc-0hy"
region = "us-east-1"

[[security_group]]
id = "sg-0000000f"
region = "us-east-1"
vpc_id = "vpc-0hy"

[[cluster]]
name = "edge-sites"
region = "us-east-1"
vpc_id = "vpc-0hy"
security_group = "sg-0000000f"
public_access = true
private_access = false
remote_node_networks = ["192.168.100.0/23"]
"#;

#[tokio::test]
async fn hybrid_nodes_block_public_and_private_access() {
    let both = "[[cluster]]\nname = \"edge-sites\"\nregion = \"us-east-1\"\npublic_access = true\nprivate_access = true\n";
    let out = Test::new()
        .world(HYBRID_WORLD)
        .manifest(both)
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .failure();
    assert_eq!(
        codes(out.stdout()),
        vec![code(
            "edge-sites",
            "hybrid_nodes_public_and_private",
            "block"
        )]
    );
    let text = out
        .again()
        .args(["plan", "prod.toml"])
        .run()
        .await
        .failure();
    assert!(text.stdout().contains("error: `us-east-1/edge-sites` runs EKS Hybrid Nodes (remote node networks `192.168.100.0/23`), which need public or private endpoint access, not both"), "{}", text.stdout());

    // Private only is allowed; the staged step through both warns.
    let private = "[[cluster]]\nname = \"edge-sites\"\nregion = \"us-east-1\"\npublic_access = false\nprivate_access = true\nprivate_access_from = [\"192.168.100.0/23\"]\n";
    let out = text
        .again()
        .manifest(private)
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .success();
    // Public access goes off with no `private_access_principals`: that
    // warns too.
    assert_eq!(
        codes(out.stdout()),
        vec![
            code("edge-sites", "hybrid_nodes_public_and_private", "warn"),
            code("edge-sites", "no_private_access_principals", "warn"),
        ]
    );
}

#[tokio::test]
async fn a_rehearsal_shows_the_findings_and_changes_only_what_the_plan_may() {
    let manifest = format!(
        "{}{}",
        public_only("edge", r#"["203.0.113.0/24"]"#),
        public_only("inside", r#"["198.51.100.0/24"]"#)
    );
    let out = Test::new()
        .world(NAT_WORLD)
        .manifest(&manifest)
        .args([
            "apply",
            "prod.toml",
            "--rehearse",
            "--rehearse-update-duration",
            "100ms",
            "--poll-interval",
            "20ms",
            "--poll-max-interval",
            "40ms",
        ])
        .run()
        .await;
    let all = format!("{}{}", out.stdout(), out.stderr());
    assert!(
        all.contains("`us-east-1/edge` would have public access only, from `203.0.113.0/24`, but the NAT gateway addresses"),
        "{all}"
    );
    assert!(!all.contains("the copy plans differently"), "{all}");
    assert_eq!(
        out.writes(),
        Vec::<String>::new(),
        "the real account was changed"
    );
}

#[tokio::test]
async fn validate_warns_of_private_ranges_in_public_cidrs_and_stays_offline() {
    let out = Test::new()
        .manifest(&public_only(
            "edge",
            r#"["10.20.0.0/16", "2001:db8::/32", "203.0.113.0/24"]"#,
        ))
        .args(["validate", "prod.toml"])
        .run()
        .await
        .success();
    assert_eq!(out.stdout(), "1 file, 1 cluster: valid, 1 warning\n");
    assert!(
        out.stderr().contains("warning: `10.20.0.0/16` in `public_access_cidrs` is a private range (RFC 1918): no traffic from the internet comes from it"),
        "{}",
        out.stderr()
    );
    assert!(
        out.stderr().contains("hint: the public endpoint sees public addresses only; to let clients inside the VPC or a connected network in, turn on `private_access` and list them in `private_access_from`"),
        "{}",
        out.stderr()
    );
    assert!(out.requests().is_empty(), "validate called AWS");
}
