//! `eksgate apply --rehearse`: a second emulator stands in for the real
//! account. The rehearsal may only read from it; the apply runs against the
//! in-process copy, and stdout shows the copy's timeline and an end state
//! that matches the manifests.

use crate::fixture::fixture;
use crate::snapshot::{eksgate_snapshot, sort_block};
use crate::test::Test;

const WORLD: &str = fixture!("worlds/payments-ledger.toml");

const MANIFEST: &str = fixture!("manifests/rehearsal.toml");

#[tokio::test]
async fn a_rehearsal_only_reads_the_account_and_predicts_the_end_state() {
    // No `--auto-approve` and no terminal: a real apply would refuse, a
    // rehearsal asks nothing.
    let out = Test::new()
        .world(WORLD)
        .manifest(MANIFEST)
        .args([
            "apply",
            "prod.toml",
            "--rehearse",
            "--rehearse-update-duration",
            "200ms",
            "--poll-interval",
            "30ms",
            "--poll-max-interval",
            "60ms",
        ])
        .run()
        .await
        .success();

    assert_eq!(
        out.writes(),
        Vec::<String>::new(),
        "the real account was changed"
    );
    let state = out.state().to_string();
    assert!(
        !state.contains("\"private_access\":true"),
        "nothing changed in the real account: {state}"
    );

    let text = out.stdout();
    let (before, rest) = text
        .split_once("Rehearsal timeline")
        .unwrap_or_else(|| panic!("no timeline: {text}"));
    let (timeline, after) = rest
        .split_once("Predicted end state:")
        .unwrap_or_else(|| panic!("no end state: {text}"));
    // The header and the plan.
    eksgate_snapshot!(before, @r#"
    Rehearsal: nothing in AWS changes. The live state was read with read-only calls and copied into an emulator on `127.0.0.1:[PORT]`; the apply runs against that copy, each endpoint update taking 200ms.

    == wave 0 ==

    us-east-1/payments: 4 steps
        -public_access = true
        -private_access = false
        +public_access = false
        +private_access = true
         public_access_cidrs = ["0.0.0.0/0"]
        -private_access_from = []
        +private_access_from = ["sg-0b1a2c3d4e5f60099", "10.20.0.0/16"]

      1. us-east-1/vpc-0shared/dns_hostnames
         enable `enableDnsHostnames` on `vpc-0shared`
         why: private access on `payments` needs `enableDnsHostnames` in `vpc-0shared`, or the endpoint's name does not resolve there

      2. us-east-1/sg-0cluster1/https_ingress
         allow TCP 443 into `sg-0cluster1` from `sg-0b1a2c3d4e5f60099`, `10.20.0.0/16`
         why: the `private_access_from` sources of `payments` must reach the private endpoint on TCP 443 before public access is turned off

      3. us-east-1/payments/endpoint.1
         endpoint public only → public and private
         waits for: 1. us-east-1/vpc-0shared/dns_hostnames
         why: turn private access on first, so the cluster stays reachable while public access is turned off in the next step; it waits for the VPC DNS settings private access needs

      4. us-east-1/payments/endpoint.2
         endpoint public and private → private only
         waits for: 2. us-east-1/sg-0cluster1/https_ingress, 3. us-east-1/payments/endpoint.1
         why: make the endpoint private only, as the manifest asks; it waits for the previous endpoint update to be `Successful` and the TCP 443 ingress for `private_access_from`

    == wave 1 ==

    us-east-1/ledger: 1 step
         public_access = true
         private_access = false
        -public_access_cidrs = ["0.0.0.0/0"]
        +public_access_cidrs = ["203.0.113.0/24"]
         private_access_from = []

      5. us-east-1/ledger/endpoint.1
         endpoint stays public only, public CIDRs ["0.0.0.0/0"] → ["203.0.113.0/24"]
         why: set the public access CIDRs the manifest lists

    warning: public access of `us-east-1/payments` goes off, and `private_access_principals` names nobody who must still use its Kubernetes API
    hint: list the IAM roles of your bastions, CI and admins in `private_access_principals`, so eksgate checks their access entries before public access goes off

    Plan: 5 steps on 2 clusters, 1 VPC change, 1 security group change
    "#);
    // The timeline's offsets, the number of polls it folds into one line
    // and the order of calls made at once vary from run to run: it is
    // checked for what it must hold, not snapshotted.
    for needle in [
        "ModifyVpcAttribute",
        "AuthorizeSecurityGroupIngress",
        "UpdateClusterConfig",
        "DescribeUpdate",
        "us-east-1/payments",
        "us-east-1/ledger",
        "Successful",
        "private only",
    ] {
        assert!(timeline.contains(needle), "`{needle}` in:\n{timeline}");
    }
    // The end state and the report; the shared VPC step and the ingress
    // run at once, so what changed in AWS is sorted.
    eksgate_snapshot!(sort_block(after, "Changed in AWS:"), @r#"

      us-east-1/ledger: public only, public CIDRs ["203.0.113.0/24"]: matches the manifest
      us-east-1/payments: private only, TCP 443 from ["sg-0b1a2c3d4e5f60099", "10.20.0.0/16"]: matches the manifest

    Predicted report:
    us-east-1/ledger: done
    us-east-1/payments: done

    Changed in AWS:
        us-east-1/ledger: update `[UPDATE_ID]` made the endpoint public only, public CIDRs ["203.0.113.0/24"]
        us-east-1/payments: update `[UPDATE_ID]` made the endpoint private only
        us-east-1/payments: update `[UPDATE_ID]` made the endpoint public and private
        us-east-1/sg-0cluster1: TCP 443 ingress added from `sg-0b1a2c3d4e5f60099`, `10.20.0.0/16`
        us-east-1/vpc-0shared: `enableDnsHostnames` turned on

    Apply complete: 5 steps done, 0 already converged, 0 failed

    This was a rehearsal: nothing in AWS was changed. Run `eksgate apply` without `--rehearse` to apply for real.
    "#);
}
