//! Pictures: `plan --format dot` checked by Graphviz itself, the committed
//! `docs/demo-plan.dot` and `docs/demo-plan.svg` checked against what the
//! demo's plan gives now, and a rehearsal's Gantt chart in markdown and text.
//!
//! CI installs Graphviz and sets `EKSGATE_REQUIRE_GRAPHVIZ=1`; elsewhere the
//! Graphviz checks say they were skipped when `dot` is missing.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::eks;
use crate::test::{Run, Test, FAST_POLLS};
use crate::tools;

const DEMO_WORLD: &str = include_str!("../../examples/worlds/demo.toml");
const DEMO_MANIFEST: &str = include_str!("../../examples/demo.toml");

/// `dot -Tsvg` on `source`: the SVG, or a panic with Graphviz's complaint.
fn svg_of(source: &str) -> String {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dot runs");
    let mut stdin = child.stdin.take().unwrap();
    let input = source.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "dot rejected the graph: {stderr}"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The lines of text an SVG Graphviz made shows (labels of nodes, edges
/// and boxes), sorted.
fn texts(svg: &str) -> Vec<String> {
    let mut out: Vec<String> = svg
        .split("</text>")
        .filter_map(|s| s.rsplit_once('>').map(|(_, t)| t.to_string()))
        .filter(|t| !t.trim().is_empty())
        .collect();
    out.sort();
    out
}

/// The `<title>`s of an SVG Graphviz made: one per node and edge, named by
/// DOT ids, so two SVGs of the same graph have the same titles.
fn titles(svg: &str) -> Vec<String> {
    let mut out: Vec<String> = svg
        .split("<title>")
        .skip(1)
        .filter_map(|s| s.split("</title>").next())
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

async fn demo_dot() -> String {
    // `analytics` is blocked: the plan exits 1 and still prints the graph.
    Test::new()
        .world(DEMO_WORLD)
        .manifest(DEMO_MANIFEST)
        .args(["plan", "prod.toml", "--format", "dot"])
        .run()
        .await
        .failure()
        .stdout()
        .to_string()
}

/// `docs/demo-plan.dot` is what `eksgate plan --format dot` gives for the
/// demo now, and `docs/demo-plan.svg` was drawn from it.
#[tokio::test]
async fn the_committed_demo_picture_is_the_demo_plan() {
    let dot = demo_dot().await;
    assert_eq!(dot, demo_dot().await, "the same plan gives the same bytes");
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let committed = std::fs::read_to_string(docs.join("demo-plan.dot")).unwrap();
    assert_eq!(
        committed, dot,
        "docs/demo-plan.dot is stale: regenerate it and docs/demo-plan.svg as the README's \"Pictures\" section says"
    );
    if !tools::GRAPHVIZ.present() {
        return;
    }
    let svg = svg_of(&dot);
    let committed_svg = std::fs::read_to_string(docs.join("demo-plan.svg")).unwrap();
    assert_eq!(
        titles(&committed_svg),
        titles(&svg),
        "docs/demo-plan.svg was not drawn from docs/demo-plan.dot"
    );
    assert_eq!(
        texts(&committed_svg),
        texts(&svg),
        "docs/demo-plan.svg does not show the labels of docs/demo-plan.dot"
    );
    assert!(titles(&svg).contains(&"s1&#45;&gt;s3".to_string()));
    assert!(texts(&svg).contains(&"blocked: dhcp_without_amazon_dns".to_string()));
}

/// 200 clusters over four waves, ten to a shared VPC, ten blocked by DHCP options without `AmazonProvidedDNS`.
fn fleet() -> (String, String) {
    let mut world = String::from(
        "[[dhcp_options]]\nid = \"dopt-0corp\"\nregion = \"eu-west-1\"\ndomain_name_servers = [\"10.50.0.2\"]\n\n",
    );
    let mut manifest = String::new();
    for v in 0..20 {
        let region = if v % 2 == 0 { "us-east-1" } else { "eu-west-1" };
        let dhcp = if v == 19 {
            "dhcp_options = \"dopt-0corp\"\n"
        } else {
            ""
        };
        let _ = write!(
            world,
            "[[vpc]]\nid = \"vpc-{v:04}\"\nregion = \"{region}\"\ndns_hostnames = false\n{dhcp}\n"
        );
    }
    for i in 0..200 {
        let v = i / 10;
        let region = if v % 2 == 0 { "us-east-1" } else { "eu-west-1" };
        let _ = write!(
            world,
            "[[security_group]]\nid = \"sg-{i:04}\"\nregion = \"{region}\"\nvpc_id = \"vpc-{v:04}\"\n\n\
             [[cluster]]\nname = \"c{i:03}\"\nregion = \"{region}\"\nvpc_id = \"vpc-{v:04}\"\n\
             security_group = \"sg-{i:04}\"\npublic_access = true\nprivate_access = false\n\n"
        );
        let (public, from) = if i % 3 == 0 {
            ("true", "")
        } else {
            ("false", "private_access_from = [\"10.20.0.0/16\"]\n")
        };
        let _ = write!(
            manifest,
            "[[cluster]]\nname = \"c{i:03}\"\nregion = \"{region}\"\npublic_access = {public}\nprivate_access = true\n{from}wave = {}\n\n",
            i % 4
        );
    }
    (world, manifest)
}

/// The emulator holding [`fleet`] (its manifest in `prod.toml`), with
/// someone else's endpoint update running on every 17th cluster, each
/// cluster saying `UPDATING`: a plan of it has every kind of step but
/// `vpc_dns_support`, waits and blocked clusters.
pub(crate) async fn fleet_with_updates_running() -> Run {
    let (world, manifest) = fleet();
    let first = Test::new()
        .world(&world)
        .update_duration(std::time::Duration::from_secs(600))
        .manifest(&manifest)
        .args(["validate", "prod.toml"])
        .run()
        .await
        .success();
    // Someone else's endpoint updates run on a few clusters: waits.
    for i in (0..200).step_by(17) {
        let region = if (i / 10) % 2 == 0 {
            "us-east-1"
        } else {
            "eu-west-1"
        };
        eks(first.sim(), region)
            .await
            .update_cluster_config()
            .name(format!("c{i:03}"))
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .public_access_cidrs("198.51.100.0/24")
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    // As in AWS, a cluster may still say `ACTIVE` for a moment after an
    // update started; the plan waits only for clusters that say `UPDATING`.
    for i in (0..200).step_by(17) {
        let region = if (i / 10) % 2 == 0 {
            "us-east-1"
        } else {
            "eu-west-1"
        };
        let client = eks(first.sim(), region).await;
        for attempt in 0.. {
            let c = client
                .describe_cluster()
                .name(format!("c{i:03}"))
                .send()
                .await
                .unwrap();
            let status = c.cluster().and_then(|c| c.status()).map(|s| s.as_str());
            if status == Some("UPDATING") {
                break;
            }
            assert!(attempt < 100, "c{i:03} never said `UPDATING`");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    first
}

/// Graphviz parses the DOT of a 200-cluster plan with waves, blocked
/// clusters and waits; the graph has a node per step.
#[tokio::test]
async fn graphviz_reads_the_graph_of_a_200_cluster_plan() {
    let first = fleet_with_updates_running().await;
    let json = first
        .again()
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .failure();
    let plan: serde_json::Value = serde_json::from_str(json.stdout()).unwrap();
    let steps = plan["steps"].as_array().unwrap().len();
    assert!(steps > 400, "{steps} steps");
    assert_eq!(plan["summary"]["clusters_blocked"], 10);
    assert!(plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["kind"] == "wait_update"));

    let out = first
        .again()
        .args(["plan", "prod.toml", "--format", "dot"])
        .run()
        .await
        .failure();
    let dot = out.stdout();
    for w in 0..4 {
        assert!(
            dot.contains(&format!("subgraph cluster_wave_{w} {{")),
            "{w}"
        );
    }
    assert_eq!(dot.matches("blocked: dhcp_without_amazon_dns").count(), 10);
    if !tools::GRAPHVIZ.present() {
        return;
    }
    let svg = svg_of(dot);
    let nodes = titles(&svg)
        .iter()
        .filter(|t| t.starts_with('s') && !t.contains("&#45;&gt;"))
        .count();
    assert_eq!(nodes, steps);
}

/// A graph Graphviz cannot read fails the check: the check is not a no-op.
#[test]
fn graphviz_rejects_a_broken_graph() {
    if !tools::GRAPHVIZ.present() {
        return;
    }
    let broken = std::panic::catch_unwind(|| svg_of("digraph x { a -> ; }"));
    assert!(broken.is_err());
}

const REHEARSAL_WORLD: &str = r#"
[[vpc]]
id = "vpc-0shared"
region = "us-east-1"
dns_hostnames = false

[[security_group]]
id = "sg-0cluster1"
region = "us-east-1"
vpc_id = "vpc-0shared"

[[cluster]]
name = "payments"
region = "us-east-1"
vpc_id = "vpc-0shared"
security_group = "sg-0cluster1"
public_access = true
private_access = false

[[cluster]]
name = "ledger"
region = "us-east-1"
vpc_id = "vpc-0shared"
public_access = true
private_access = false
"#;

const REHEARSAL_MANIFEST: &str = r#"
[[cluster]]
name = "payments"
region = "us-east-1"
public_access = false
private_access = true
private_access_from = ["10.20.0.0/16"]

[[cluster]]
name = "ledger"
region = "us-east-1"
public_access = true
private_access = false
public_access_cidrs = ["203.0.113.0/24"]
wave = 1
"#;

const REHEARSE: [&str; 5] = [
    "apply",
    "prod.toml",
    "--rehearse",
    "--rehearse-update-duration",
    "300ms",
];

fn rehearsal() -> Test {
    Test::new()
        .world(REHEARSAL_WORLD)
        .manifest(REHEARSAL_MANIFEST)
        .args(REHEARSE)
        .args(FAST_POLLS)
}

/// `--format markdown` on a rehearsal: a comment with a Gantt chart, one
/// bar per step, a section per wave, the updates as long as they took.
#[tokio::test]
async fn a_rehearsal_in_markdown_draws_its_timeline() {
    let run = rehearsal()
        .args(["--format", "markdown"])
        .run()
        .await
        .success();
    let md = run.stdout();
    assert!(md.starts_with("## eksgate rehearsal\n"), "{md}");
    let gantt = md
        .split("```mermaid\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .unwrap_or_else(|| panic!("no mermaid block in {md}"));
    assert!(gantt.starts_with("gantt\n"), "{gantt}");
    assert!(gantt.contains("  section wave 0\n"), "{gantt}");
    assert!(gantt.contains("  section wave 1\n"), "{gantt}");
    let bars: Vec<&str> = gantt.lines().filter(|l| l.contains(" :")).collect();
    // dns_hostnames, https_ingress, payments' two updates, ledger's one.
    assert_eq!(bars.len(), 5, "{gantt}");
    for id in [
        "us-east-1/vpc-0shared/dns_hostnames :milestone, ",
        "us-east-1/sg-0cluster1/https_ingress :milestone, ",
        "us-east-1/payments/endpoint.1 (",
        "us-east-1/payments/endpoint.2 (",
        "us-east-1/ledger/endpoint.1 (",
    ] {
        assert!(bars.iter().any(|b| b.contains(id)), "{id} in {gantt}");
    }
    // An endpoint bar lasts about as long as the copy's update.
    for b in bars.iter().filter(|b| b.contains("/endpoint.")) {
        let nums: Vec<u64> = b
            .rsplit(", ")
            .take(2)
            .map(|n| n.trim().parse().unwrap())
            .collect();
        let ms = nums[0] - nums[1];
        assert!((250..5000).contains(&ms), "{b}");
    }
    assert!(md.contains("| `us-east-1/payments` | yes |"), "{md}");
    // The machine's own progress lines stay on stderr.
    assert!(!md.contains("Rehearsal timeline ("), "{md}");
}

/// The text output carries the same chart as Mermaid source, and markdown
/// without `--rehearse` is refused.
#[tokio::test]
async fn a_rehearsal_in_text_carries_the_chart_and_markdown_needs_rehearse() {
    let run = rehearsal().run().await.success();
    let text = run.stdout();
    let chart = text
        .split("Predicted timeline as a Mermaid Gantt chart")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .unwrap_or_else(|| panic!("no chart in {text}"));
    assert!(chart.contains("\ngantt\n  title "), "{chart}");
    assert!(!chart.contains("://"), "link-free: {chart}");

    let refused = run
        .again()
        .args(["apply", "prod.toml", "--format", "markdown", "--auto-approve"])
        .run()
        .await
        .failure()
        .stderr_is("error: `--format markdown` shows a rehearsal\nhint: add `--rehearse`, or use `--format text` or `--format json`\n");
    assert_eq!(
        refused.writes(),
        Vec::<String>::new(),
        "nothing changed in the account"
    );
}
