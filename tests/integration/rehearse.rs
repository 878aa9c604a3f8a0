//! `eksgate apply --rehearse`: a second emulator stands in for the real
//! account. The rehearsal may only read from it; the apply runs against the
//! in-process copy, and stdout shows the copy's timeline and an end state
//! that matches the manifests.

use crate::common::*;
use crate::fixture::fixture;

const WORLD: &str = fixture!("worlds/payments-ledger.toml");

const MANIFEST: &str = fixture!("manifests/rehearsal.toml");

#[tokio::test]
async fn a_rehearsal_only_reads_the_account_and_predicts_the_end_state() {
    let real = start(WORLD, quick()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prod.toml"), MANIFEST).unwrap();
    // No `--auto-approve` and no terminal: a real apply would refuse, a
    // rehearsal asks nothing.
    let out = eksgate(
        &real,
        dir.path(),
        &[
            "apply",
            "prod.toml",
            "--rehearse",
            "--rehearse-update-duration",
            "200ms",
            "--poll-interval",
            "30ms",
            "--poll-max-interval",
            "60ms",
        ],
    )
    .await;
    let text = stdout(&out);
    eprintln!("{text}");
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));

    let writes: Vec<_> = requests(&real)
        .into_iter()
        .filter(|(_, op, _, _)| {
            !(op.starts_with("Describe") || op.starts_with("List") || op == "GetCallerIdentity")
        })
        .collect();
    assert!(
        writes.is_empty(),
        "the real account was changed: {writes:?}"
    );
    let state = real.snapshot().to_string();
    assert!(
        !state.contains("\"private_access\":true"),
        "nothing changed in the real account: {state}"
    );

    assert!(
        text.starts_with("Rehearsal: nothing in AWS changes."),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with(
            "This was a rehearsal: nothing in AWS was changed. Run `eksgate apply` without `--rehearse` to apply for real."
        ),
        "{text}"
    );
    let timeline = text
        .split("Rehearsal timeline")
        .nth(1)
        .and_then(|t| t.split("Predicted end state:").next())
        .unwrap_or_else(|| panic!("no timeline: {text}"));
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
    assert!(
        text.contains(
            "  us-east-1/ledger: public only, public CIDRs [\"203.0.113.0/24\"]: matches the manifest\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "  us-east-1/payments: private only, TCP 443 from [\"sg-0b1a2c3d4e5f60099\", \"10.20.0.0/16\"]: matches the manifest\n"
        ),
        "{text}"
    );
    let report = text.split("Predicted report:\n").nth(1).unwrap_or_default();
    assert!(
        report.starts_with("us-east-1/ledger: done\nus-east-1/payments: done\n"),
        "{text}"
    );
}
