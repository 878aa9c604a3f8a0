//! Keeps the README's table of findings ("Checks before anything changes")
//! true: every finding code the plan schema names is listed there, with the
//! severity it is raised with. Test-only: it reads files, the planner does not.

use super::{FindingCode, Severity};

/// The severities each code is raised with. The match has no wildcard, so a
/// new code does not compile until it says how it is raised, and the README
/// test below then wants it documented with that word.
fn raised_as(code: FindingCode) -> &'static [Severity] {
    use FindingCode::*;
    use Severity::{Block, Warn};
    match code {
        NotRead
        | ClusterNotFound
        | AccountMismatch
        | ClusterNotActive
        | BothEndpointsOff
        | VpcNotRead
        | DhcpWithoutAmazonDns
        | NoClusterSecurityGroup
        | SecurityGroupNotRead
        | DeclaredTwice
        | SecurityGroupRuleQuota => &[Block],
        OwnedByCloudformation | OwnedByEksctl | OwnedByTerraform | OwnedByCdk => &[Warn],
        PrincipalWithoutAccessEntry | AccessEntryWithoutPermissions | AccessConfigMap => &[Block],
        AccessEntryGroupsOnly
        | AccessUnverified
        | AccessCheckedAtApply
        | NoPrivateAccessPrincipals => &[Warn],
        // A block, or a warning under `--allow-unverified-access`.
        AccessNotRead => &[Block, Warn],
        AuthenticationModeBackwards => &[Block],
        NatOutsidePublicCidrs | Ipv6PublicCidrs => &[Block],
        NoNatGateway | NoRouteToSource | NoActivePeering => &[Warn],
        // A warning when only a staged step passes through both.
        HybridNodesPublicAndPrivate => &[Block, Warn],
        PrefixListNotFound | PublicAccessCidrsLimit => &[Block],
    }
}

fn word(severity: Severity) -> &'static str {
    match severity {
        Severity::Block => "block",
        Severity::Warn => "warn",
    }
}

fn repo_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every code of the plan schema's `FindingCode` (the schema is generated
/// from the types, and its own test fails when it is stale).
fn schema_codes() -> Vec<String> {
    let schema: serde_json::Value = serde_json::from_str(&repo_file("schemas/plan.schema.json"))
        .expect("the plan schema is JSON");
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .expect("the plan schema has definitions");
    let mut codes = Vec::new();
    for alt in defs["FindingCode"]["oneOf"].as_array().expect("`oneOf`") {
        if let Some(c) = alt.get("const").and_then(|c| c.as_str()) {
            codes.push(c.to_string());
        }
        for c in alt
            .get("enum")
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
        {
            codes.push(c.as_str().expect("a string code").to_string());
        }
    }
    codes
}

/// The rows of the README's findings table: the codes of each row, and its
/// severity cell.
fn readme_rows() -> Vec<(Vec<String>, String)> {
    let readme = repo_file("README.md");
    let start = readme
        .find("\n## Checks before anything changes\n")
        .expect("the README has a section \"Checks before anything changes\"");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let codes = cells[0]
                .trim_start_matches("| ")
                .split(", ")
                .map(|c| c.trim_matches('`').to_string())
                .collect();
            (codes, cells[1].to_string())
        })
        .collect()
}

#[test]
fn readme_lists_every_finding_code_with_its_severity() {
    let codes = schema_codes();
    assert!(codes.len() > 30, "the schema lists the codes: {codes:?}");
    let rows = readme_rows();
    let mut problems = Vec::new();
    for name in &codes {
        let code: FindingCode = serde_json::from_value(serde_json::Value::String(name.clone()))
            .unwrap_or_else(|e| panic!("`{name}` is a finding code: {e}"));
        assert_eq!(code.as_str(), name);
        let Some((_, cell)) = rows.iter().find(|(cs, _)| cs.contains(name)) else {
            problems.push(format!("`{name}` is not in the table"));
            continue;
        };
        let raised = raised_as(code);
        let ok = match raised {
            [one] => cell == word(*one),
            all => all.iter().all(|s| cell.contains(word(*s))),
        };
        if !ok {
            let want: Vec<&str> = raised.iter().map(|s| word(*s)).collect();
            problems.push(format!(
                "`{name}` is documented as `{cell}`, but is raised as {}",
                want.join(" or ")
            ));
        }
    }
    for (cs, _) in &rows {
        for c in cs {
            if !codes.contains(c) {
                problems.push(format!("the table lists `{c}`, which is no finding code"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the README's \"Checks before anything changes\" is out of date:\n{}",
        problems.join("\n")
    );
}
