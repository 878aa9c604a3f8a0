//! `eksgate import`, `completions` and `man` as a user runs them. The import
//! contract is checked end to end: import a region (more clusters than one
//! `ListClusters` page), validate the file, plan it, and see no changes.

use std::fmt::Write as _;

use crate::common::*;
use crate::fixture::fixture;
use crate::snapshot::eksgate_snapshot;
use crate::test::Test;

/// The clusters whose settings matter; `filler` clusters are added to pass
/// one `ListClusters` page (100).
const WORLD: &str = fixture!("worlds/import-region.toml");

/// Clusters that a plan of their import does not pass as "no changes", each
/// for a reason the import says in a comment.
const ODD: &str = fixture!("worlds/additions/import-odd.toml");

const FILLERS: usize = 120;

fn world_with_fillers() -> String {
    let mut w = WORLD.to_string();
    for i in 0..FILLERS {
        let _ = write!(
            w,
            "\n[[cluster]]\nname = \"filler-{i:03}\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-0good\"\npublic_access = true\nprivate_access = false\n"
        );
    }
    w
}

#[tokio::test]
async fn an_imported_region_validates_and_plans_with_no_changes() {
    // A repository that commits the schema, with manifests in a folder.
    let out = Test::new()
        .world(&world_with_fillers())
        .file("schemas/manifest.schema.json", "{}")
        .folder("fleet")
        .args([
            "import",
            "--region",
            "us-east-1",
            "--out",
            "fleet/us-east-1.toml",
        ])
        .run()
        .await
        .success()
        .stdout_is("")
        .stderr_is("Imported 124 clusters of `us-east-1` into `fleet/us-east-1.toml`; check it with `eksgate plan fleet/us-east-1.toml`.\n");
    // Every page was read, and only the region asked for.
    let lists: Vec<_> = out
        .requests()
        .into_iter()
        .filter(|(_, op, _, _)| op == "ListClusters")
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");

    let text = out.read("fleet/us-east-1.toml");
    assert!(
        text.starts_with("#:schema ../schemas/manifest.schema.json\n"),
        "{text}"
    );
    assert!(!text.contains("elsewhere"), "{text}");
    for line in [
        "public_access_cidrs = [\"198.51.100.0/24\", \"203.0.113.0/24\"]",
        "private_access_from = [\"sg-0b000000000000001\", \"10.20.0.0/16\"]",
        "private_access_from = [\"192.168.0.0/24\"]",
        "public_access_cidrs = [\"192.0.2.0/25\"]",
        "name = \"filler-119\"",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }

    let validated = out
        .again()
        .args(["validate", "fleet/us-east-1.toml"])
        .run()
        .await
        .success();
    // `private-bare`: the import says the same in a comment.
    eksgate_snapshot!(validated, @r#"
    success: true
    exit_code: 0
    ----- stdout -----
    1 file, 124 clusters: valid, 1 warning

    ----- stderr -----
    warning: nothing outside the VPC is declared to reach this cluster
       --> fleet/us-east-1.toml:981:8
        |
    981 | name = "private-bare"
        |        ^^^^^^^^^^^^^^
    hint: list the security groups or CIDR blocks of your bastions, CI runners or VPN in `private_access_from`, so eksgate opens TCP 443 to them
    "#);

    out.again()
        .args(["plan", "--detailed-exitcode", "fleet/us-east-1.toml"])
        .run()
        .await
        .success()
        .stdout_is("No changes: 124 clusters match their manifests\n");
}

#[tokio::test]
async fn a_small_import_is_pinned() {
    let out = Test::new()
        .world(WORLD)
        .world(ODD)
        .args([
            "import",
            "--region",
            "us-east-1",
            "--cluster",
            "restricted",
            "--cluster",
            "private-only",
            "--cluster",
            "both",
            "--cluster",
            "private-bare",
            "--cluster",
            "creating",
            "--cluster",
            "no-hostnames",
            "--cluster",
            "corp-dns",
        ])
        .run()
        .await
        .success()
        .stderr_is("");
    // No date or other run-dependent value: two imports of an unchanged
    // region are the same bytes.
    eksgate_snapshot!(out.stdout(), @r#"
    # Imported by `eksgate import` from the live state of region `us-east-1`
    # (the 7 clusters named with `--cluster`).
    # As written, `eksgate plan` shows no changes (except where a comment below says
    # otherwise); edit the values to what the clusters should be, then plan again.
    # No `account` is written: add one (or `[defaults]`) to pin the account the
    # credentials must resolve to.
    # For completion and checks in editors: `eksgate schema > manifest.schema.json`,
    # then make `#:schema manifest.schema.json` the first line of this file.

    # arn:aws:eks:us-east-1:123456789012:cluster/both (ACTIVE)
    [[cluster]]
    name = "both"
    region = "us-east-1"
    public_access = true
    private_access = true
    public_access_cidrs = ["192.0.2.0/25"]
    # the sources the cluster security group `sg-0a00000000000000b` allows on TCP 443 now
    private_access_from = ["192.168.0.0/24"]

    # arn:aws:eks:us-east-1:123456789012:cluster/corp-dns (ACTIVE)
    # warning: the DHCP options `dopt-0corp` of VPC `vpc-0corpdns` do not list `AmazonProvidedDNS`;
    # `eksgate plan` blocks this cluster until they do (else the private endpoint's
    # name does not resolve in the VPC)
    [[cluster]]
    name = "corp-dns"
    region = "us-east-1"
    public_access = false
    private_access = true
    # no `private_access_from`: the cluster has no cluster security group, so nothing
    # outside the VPC is declared

    # arn:aws:eks:us-east-1:123456789012:cluster/creating (CREATING)
    # `CREATING`, not `ACTIVE`: `eksgate plan` blocks this cluster until it is `ACTIVE`
    [[cluster]]
    name = "creating"
    region = "us-east-1"
    public_access = true
    private_access = false
    public_access_cidrs = ["0.0.0.0/0"]

    # arn:aws:eks:us-east-1:123456789012:cluster/no-hostnames (ACTIVE)
    # warning: VPC `vpc-0nohostnames` has `enableDnsHostnames` off;
    # `eksgate plan` turns it on, as private access needs
    [[cluster]]
    name = "no-hostnames"
    region = "us-east-1"
    public_access = true
    private_access = true
    public_access_cidrs = ["0.0.0.0/0"]
    # no `private_access_from`: the cluster security group `sg-0a00000000000000c` allows no
    # source on TCP 443, so nothing outside the VPC is declared

    # arn:aws:eks:us-east-1:123456789012:cluster/private-bare (ACTIVE)
    [[cluster]]
    name = "private-bare"
    region = "us-east-1"
    public_access = false
    private_access = true
    # no `private_access_from`: the cluster security group `sg-0a00000000000000c` allows no
    # source on TCP 443, so nothing outside the VPC is declared

    # arn:aws:eks:us-east-1:123456789012:cluster/private-only (ACTIVE)
    [[cluster]]
    name = "private-only"
    region = "us-east-1"
    public_access = false
    private_access = true
    # the sources the cluster security group `sg-0a00000000000000a` allows on TCP 443 now
    private_access_from = ["sg-0b000000000000001", "10.20.0.0/16"]

    # arn:aws:eks:us-east-1:123456789012:cluster/restricted (ACTIVE)
    [[cluster]]
    name = "restricted"
    region = "us-east-1"
    public_access = true
    private_access = false
    public_access_cidrs = ["198.51.100.0/24", "203.0.113.0/24"]
    "#);
}

#[tokio::test]
async fn import_refuses_to_overwrite_without_force() {
    let args = [
        "import",
        "--region",
        "us-east-1",
        "--cluster",
        "restricted",
        "--out",
        "fleet.toml",
    ];
    let out = Test::new()
        .world(WORLD)
        .file("fleet.toml", "# mine\n")
        .args(args)
        .run()
        .await
        .failure();
    eksgate_snapshot!(out.stderr(), @r"
    error: `fleet.toml` already exists
    hint: pass `--force` to overwrite it, or choose another `--out`
    ");
    assert_eq!(out.read("fleet.toml"), "# mine\n");
    // Refused before any call to AWS.
    assert!(out.requests().is_empty());

    let out = out.again().args(args).arg("--force").run().await.success();
    let text = out.read("fleet.toml");
    assert!(text.contains("name = \"restricted\""), "{text}");
}

#[tokio::test]
async fn importing_clusters_that_do_not_exist_names_them_all() {
    let out = Test::new()
        .world(WORLD)
        .args([
            "import",
            "--region",
            "us-east-1",
            "--cluster",
            "both",
            "--cluster",
            "nope",
            "--cluster",
            "gone",
        ])
        .run()
        .await
        .failure()
        .stdout_is("");
    eksgate_snapshot!(out.stderr(), @r"
    error: clusters `gone`, `nope` not found in region `us-east-1`
    hint: check the names and the account the credentials resolve to; without `--cluster`, `eksgate import --region us-east-1` imports every cluster of the region
    ");
}

#[tokio::test]
async fn an_empty_region_gives_a_manifest_and_a_warning() {
    let out = Test::new()
        .world(WORLD)
        .args(["import", "--region", "ap-south-1"])
        .run()
        .await
        .success();
    eksgate_snapshot!(out, @"
    success: true
    exit_code: 0
    ----- stdout -----
    # Imported by `eksgate import` from the live state of region `ap-south-1`
    # (all 0 clusters of the region).
    # As written, `eksgate plan` shows no changes (except where a comment below says
    # otherwise); edit the values to what the clusters should be, then plan again.
    # No `account` is written: add one (or `[defaults]`) to pin the account the
    # credentials must resolve to.
    # For completion and checks in editors: `eksgate schema > manifest.schema.json`,
    # then make `#:schema manifest.schema.json` the first line of this file.
    # No clusters were found in `ap-south-1`.

    ----- stderr -----
    warning: region `ap-south-1` has no clusters
    hint: check `--region` and the account the credentials resolve to
    ");
}

/// Runs the binary for commands that never reach AWS.
fn offline(args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("eksgate")
        .expect("the eksgate binary is built")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("eksgate ran")
}

#[test]
fn completions_cover_the_commands() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = offline(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let text = stdout(&out);
        for word in ["eksgate", "plan", "import", "validate"] {
            assert!(text.contains(word), "{shell}: no `{word}`");
        }
    }
    let out = offline(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_man_page_names_every_command() {
    let out = offline(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.contains(".TH eksgate 1"), "{page}");
    for sub in [
        "plan",
        "validate",
        "schema",
        "import",
        "completions",
        "man",
        "sim",
    ] {
        assert!(
            page.contains(&format!("eksgate\\-{sub}(1)")),
            "no `{sub}` in:\n{page}"
        );
    }

    let out = offline(&["man", "import"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.contains(".TH eksgate-import 1"), "{page}");
    assert!(page.contains("\\-\\-region"), "{page}");

    let out = offline(&["man", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: `nope` is not an eksgate command\n"));
}
