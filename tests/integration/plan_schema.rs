//! The JSON plan's schema, `schemas/plan.schema.json`: committed as
//! `eksgate schema --plan` prints it, checked by a JSON Schema validator
//! (boon, draft 2020-12) against real plans of the binary — the demo, a
//! 200-cluster fleet, clusters another tool owns — and refusing plans with a
//! field removed, added or of the wrong shape. The README's `jq` gate runs
//! over real plans too.
//!
//! CI installs jq and sets `EKSGATE_REQUIRE_JQ=1`; elsewhere the `jq` test
//! says it was skipped when `jq` is missing.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::fixture::fixture;
use crate::owners;
use crate::pictures::fleet_with_updates_running;
use crate::test::Test;
use crate::tools;

const DEMO_WORLD: &str = include_str!("../../examples/worlds/demo.toml");
const DEMO_MANIFEST: &str = include_str!("../../examples/demo.toml");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The committed schema, compiled.
struct PlanSchema {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl PlanSchema {
    fn committed() -> PlanSchema {
        let path = repo().join("schemas/plan.schema.json");
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V2020_12);
        let index = compiler
            .compile(path.to_str().unwrap(), &mut schemas)
            .unwrap_or_else(|e| panic!("schemas/plan.schema.json does not compile: {e:#}"));
        PlanSchema { schemas, index }
    }

    /// Why `plan` does not fit, or `None` when it does.
    fn check(&self, plan: &Value) -> Option<String> {
        self.schemas
            .validate(plan, self.index)
            .err()
            .map(|e| format!("{e}"))
    }

    fn assert_fits(&self, what: &str, plan: &Value) {
        if let Some(why) = self.check(plan) {
            panic!("the {what} plan does not fit schemas/plan.schema.json:\n{why}");
        }
    }
}

/// The step kinds and finding severities of `plan`.
fn kinds(plan: &Value) -> BTreeSet<String> {
    let steps = plan["steps"].as_array().unwrap().iter();
    let findings = plan["findings"].as_array().unwrap().iter();
    steps
        .map(|s| s["kind"].as_str().unwrap().to_string())
        .chain(findings.map(|f| format!("finding:{}", f["severity"].as_str().unwrap())))
        .collect()
}

#[test]
fn committed_plan_schema_is_up_to_date() {
    let output = Command::new(env!("CARGO_BIN_EXE_eksgate"))
        .args(["schema", "--plan"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let generated = String::from_utf8(output.stdout).unwrap();
    let committed =
        std::fs::read_to_string(repo().join("schemas/plan.schema.json")).unwrap_or_default();
    assert!(
        generated == committed,
        "schemas/plan.schema.json is stale; run `cargo run -- schema --plan > schemas/plan.schema.json`"
    );
}

/// The plans of the demo, of a 200-cluster fleet with waits and blocked
/// clusters, of a VPC with DNS off and of clusters other tools own fit the
/// schema; together they hold every kind of step, errors and warnings.
#[tokio::test]
async fn real_plans_fit_the_schema() {
    let schema = PlanSchema::committed();
    let owned = owners::manifest("", "");
    // (what, the world and manifest, the plan's exit code: 1 with a
    // blocked cluster, whose plan is still printed)
    let worlds = [
        (
            "demo",
            Test::new().world(DEMO_WORLD).manifest(DEMO_MANIFEST),
            1,
        ),
        ("200-cluster", fleet_with_updates_running().await.again(), 1),
        (
            "DNS-off",
            Test::new()
                .world(fixture!("worlds/two-regions-dns-off.toml"))
                .manifest(fixture!("manifests/payments-private-ledger-cidrs.toml")),
            0,
        ),
        (
            "owned clusters'",
            Test::new().world(owners::WORLD).manifest(&owned),
            0,
        ),
    ];
    let mut seen = BTreeSet::new();
    for (what, test, code) in worlds {
        let run = test
            .args(["plan", "prod.toml", "--format", "json"])
            .run()
            .await
            .exit(code);
        let plan: Value = serde_json::from_str(run.stdout()).unwrap();
        schema.assert_fits(what, &plan);
        seen.extend(kinds(&plan));
        if what == "200-cluster" {
            assert_eq!(plan["clusters"].as_array().unwrap().len(), 200);
        }
    }
    for want in [
        "vpc_dns_support",
        "vpc_dns_hostnames",
        "sg_https_ingress",
        "eks_endpoint",
        "wait_update",
        "finding:block",
        "finding:warn",
    ] {
        assert!(
            seen.contains(want),
            "no plan checked holds {want}: {seen:?}"
        );
    }
}

/// A plan with a field removed, an unknown field, or a value of the wrong
/// shape does not fit: the schema marks fields required and closes objects.
#[tokio::test]
async fn altered_plans_do_not_fit_the_schema() {
    let schema = PlanSchema::committed();
    let run = Test::new()
        .world(DEMO_WORLD)
        .manifest(DEMO_MANIFEST)
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .failure();
    let plan: Value = serde_json::from_str(run.stdout()).unwrap();
    schema.assert_fits("demo", &plan);
    let endpoint = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .position(|s| s["kind"] == "eks_endpoint")
        .unwrap();
    let e = format!("/steps/{endpoint}");

    // (what, JSON pointer of the object, key, `None` to remove it or the
    // value to set, what the validator says)
    let cases: [(&str, String, &str, Option<Value>, &str); 11] = [
        (
            "removed",
            String::new(),
            "summary",
            None,
            "missing properties 'summary'",
        ),
        ("removed", "/steps/0".into(), "reason", None, "reason"),
        ("removed", e.clone(), "after", None, "after"),
        (
            "removed",
            "/clusters/0".into(),
            "live",
            None,
            "missing properties 'live'",
        ),
        (
            "removed",
            "/findings/0".into(),
            "code",
            None,
            "missing properties 'code'",
        ),
        (
            "removed",
            "/summary".into(),
            "message",
            None,
            "missing properties 'message'",
        ),
        (
            "added",
            String::new(),
            "approved",
            Some(json!(true)),
            "approved",
        ),
        ("added", e.clone(), "note", Some(json!("x")), "note"),
        (
            "of another kind",
            e.clone(),
            "after",
            Some(json!({"dns_support": true})),
            "after",
        ),
        (
            "unknown",
            "/findings/0".into(),
            "code",
            Some(json!("no_such_code")),
            "code",
        ),
        (
            "of the wrong type",
            "/clusters/0".into(),
            "wave",
            Some(json!("1")),
            "wave",
        ),
    ];
    for (what, pointer, key, value, says) in cases {
        let mut altered = plan.clone();
        let object = altered
            .pointer_mut(&pointer)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("no object at `{pointer}`"));
        match value {
            None => assert!(object.remove(key).is_some(), "no `{key}` at `{pointer}`"),
            Some(v) => {
                object.insert(key.to_string(), v);
            }
        }
        let why = schema
            .check(&altered)
            .unwrap_or_else(|| panic!("a plan with `{pointer}/{key}` {what} fits the schema"));
        assert!(why.contains(says), "`{pointer}/{key}` {what}: {why}");
    }
}

/// The filter of the README's `jq -e '...'` gate, so the README shows what
/// this test runs.
fn readme_jq_gate() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.trim_start().starts_with("jq -e '"))
        .expect("the README shows a `jq -e '...'` check over a plan");
    let start = line.find('\'').unwrap() + 1;
    let end = line.rfind('\'').unwrap();
    line[start..end].to_string()
}

/// `jq -e FILTER` over `input`: whether it passed.
fn jq_passes(filter: &str, input: &str) -> bool {
    let mut child = Command::new("jq")
        .args(["-e", filter])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jq runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "jq: {stderr}");
    out.status.success()
}

/// The README's gate "no plan may turn public access on" refuses a plan
/// that turns a private-only cluster public and passes one that does not.
#[tokio::test]
async fn the_readme_jq_gate_refuses_a_plan_that_turns_public_access_on() {
    if !tools::JQ.present() {
        return;
    }
    let filter = readme_jq_gate();
    // `web` is private only.
    let world = fixture!("worlds/two-regions-dns-off.toml");
    let web = |public: bool| {
        format!(
            "[[cluster]]\nname = \"web\"\nregion = \"eu-west-1\"\npublic_access = {public}\nprivate_access = true\n"
        )
    };
    let opens = Test::new()
        .world(world)
        .manifest(&web(true))
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .success();
    assert!(opens.stdout().contains("\"public_access\": true"));
    assert!(
        !jq_passes(&filter, opens.stdout()),
        "the gate let a plan turning public access on through"
    );
    // Another change on the same cluster, public access staying off.
    let stays = Test::new()
        .world(world)
        .manifest(&(web(false) + "private_access_from = [\"10.9.0.0/16\"]\n"))
        .args(["plan", "prod.toml", "--format", "json"])
        .run()
        .await
        .success();
    assert!(stays.stdout().contains("\"kind\": \"sg_https_ingress\""));
    assert!(
        jq_passes(&filter, stays.stdout()),
        "the gate refused a plan that keeps public access off"
    );
}
