//! `eksgate validate` and `eksgate schema`, run as the real binary on
//! manifests written to a temporary directory. Each case pins the exact
//! stderr (the whole rendered diagnostic), stdout and exit code. Paths are
//! relative to the temporary directory, so the text is stable.
//!
//! To add a case, add a `Case` below; the failure message shows the actual
//! output, ready to paste once it is right.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

struct Case {
    name: &'static str,
    /// `(path relative to the temporary directory, contents)`.
    files: &'static [(&'static str, &'static str)],
    /// Arguments after `validate`; the command runs in the temporary directory.
    args: &'static [&'static str],
    code: i32,
    stdout: &'static str,
    stderr: &'static str,
}

fn eksgate(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("eksgate").expect("the eksgate binary is built");
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    cmd
}

/// Runs one case; `Err` describes every difference, naming the case.
fn check(case: &Case) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    for (path, text) in case.files {
        let path = dir.path().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
    }
    let output = eksgate(dir.path())
        .arg("validate")
        .args(case.args)
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code().unwrap_or(-1);
    let mut diffs = Vec::new();
    if code != case.code {
        diffs.push(format!("exit code: want {}, got {code}", case.code));
    }
    if stdout != case.stdout {
        diffs.push(format!("stdout: want\n{}\ngot\n{stdout}", case.stdout));
    }
    if stderr != case.stderr {
        diffs.push(format!("stderr: want\n{}\ngot\n{stderr}", case.stderr));
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(format!("case {:?}:\n{}", case.name, diffs.join("\n")))
    }
}

#[test]
fn validate_cases() {
    let failures: Vec<String> = CASES.iter().filter_map(|c| check(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

#[test]
fn invalid_utf8_points_at_the_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prod.toml"), b"# caf\xe9\n").unwrap();
    eksgate(dir.path())
        .args(["validate", "prod.toml"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(concat!(
            "error: this file is not valid UTF-8\n",
            " --> prod.toml:1:6\n",
            "  |\n",
            "1 | # caf\u{fffd}\n",
            "  |      ^\n",
            "hint: manifests are UTF-8 text; save the file as UTF-8\n",
            "\n",
            "error: 1 error in 1 file\n",
        ));
}

#[test]
fn quiet_hides_warnings_but_not_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prod.toml"),
        "[[cluster]]\nname = \"a\"\nregion = \"eu-west-1\"\npublic_access = false\nprivate_access = true\n",
    )
    .unwrap();
    eksgate(dir.path())
        .args(["validate", "--quiet", "prod.toml"])
        .assert()
        .code(0)
        .stdout("1 file, 1 cluster: valid, 1 warning\n")
        .stderr("");
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_schema_is_up_to_date() {
    let output = eksgate(&repo()).arg("schema").output().unwrap();
    assert!(output.status.success());
    let generated = String::from_utf8(output.stdout).unwrap();
    let committed =
        std::fs::read_to_string(repo().join("schemas/manifest.schema.json")).unwrap_or_default();
    assert!(
        generated == committed,
        "schemas/manifest.schema.json is stale; run `cargo run -- schema > schemas/manifest.schema.json`"
    );
}

/// Every top-level `examples/*.toml` is a valid manifest that points editors
/// at the schema (`examples/worlds/` holds emulator worlds, not manifests).
#[test]
fn examples_are_valid_manifests() {
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 2, "expected examples, found {examples:?}");
    for path in &examples {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            text.starts_with("#:schema ../schemas/manifest.schema.json\n"),
            "{} must start with `#:schema ../schemas/manifest.schema.json`",
            path.display()
        );
        let output = eksgate(&repo()).arg("validate").arg(path).output().unwrap();
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "{} is not a clean manifest:\n{}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Together too: no cluster is declared in two examples.
    eksgate(&repo())
        .arg("validate")
        .args(&examples)
        .assert()
        .success();
}

const CASES: &[Case] = &[
    Case {
        name: r#"valid"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 0,
        stdout: r#"1 file, 1 cluster: valid
"#,
        stderr: r#""#,
    },
    Case {
        name: r#"valid directory, recursively, skipping hidden"#,
        files: &[
            (
                r#"a.toml"#,
                r#"[[cluster]]
name = "a"
region = "eu-west-1"
public_access = true
private_access = true
"#,
            ),
            (
                r#"sub/b.toml"#,
                r#"[[cluster]]
name = "b"
region = "eu-west-1"
public_access = true
private_access = true

[[cluster]]
name = "c"
region = "eu-west-1"
public_access = true
private_access = true
"#,
            ),
            (r#".git/x.toml"#, r#"not toml ["#),
            (r#"notes.md"#, r#"x"#),
        ],
        args: &[],
        code: 0,
        stdout: r#"2 files, 3 clusters: valid
"#,
        stderr: r#""#,
    },
    Case {
        name: r#"warning only"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = false
private_access = true
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 0,
        stdout: r#"1 file, 1 cluster: valid, 1 warning
"#,
        stderr: r#"warning: nothing outside the VPC is declared to reach this cluster
 --> prod.toml:2:8
  |
2 | name = "payments-prod"
  |        ^^^^^^^^^^^^^^^
hint: list the security groups or CIDR blocks of your bastions, CI runners or VPN in `private_access_from`, so eksgate opens TCP 443 to them

"#,
    },
    Case {
        name: r#"syntax: unclosed array table"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]
name = "a"
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: unclosed array table, expected `]`
 --> prod.toml:1:11
  |
1 | [[cluster]
  |           ^

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"syntax: duplicate key"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
region = "eu-west-2"
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: duplicate key `region`
 --> prod.toml:4:1
  |
4 | region = "eu-west-2"
  | ^^^^^^
hint: a key can be set only once in a table

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"syntax: unterminated string"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: invalid basic string, expected `"`
 --> prod.toml:3:20
  |
3 | region = "eu-west-1
  |                    ^

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"syntax: bare word value"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = eu-west-1
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: string values must be quoted, expected literal string
 --> prod.toml:3:10
  |
3 | region = eu-west-1
  |          ^^^^^^^^^

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"unknown key in cluster"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
regoin = "eu-west-1"
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: unknown key `regoin` in `[[cluster]]`
 --> prod.toml:6:1
  |
6 | regoin = "eu-west-1"
  | ^^^^^^
hint: did you mean `region`?

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"unknown key with no near match"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
vpc = "vpc-1"
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: unknown key `vpc` in `[[cluster]]`
 --> prod.toml:6:1
  |
6 | vpc = "vpc-1"
  | ^^^
hint: expected one of `name`, `region`, `account`, `role_arn`, `public_access`, `private_access`, `public_access_cidrs`, `private_access_from`, `wave`, `owner_acknowledged`, `private_access_principals`, `authentication_mode`, `private_access_from_exclusive`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"unknown top-level table"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[clusters]]
name = "a"
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: unknown key `clusters` at the top level
 --> prod.toml:1:3
  |
1 | [[clusters]]
  |   ^^^^^^^^
hint: did you mean `cluster`?

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"cluster key in defaults"#,
        files: &[(
            r#"prod.toml"#,
            r#"[defaults]
public_access = false

[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: unknown key `public_access` in `[defaults]`
 --> prod.toml:2:1
  |
2 | public_access = false
  | ^^^^^^^^^^^^^
hint: `public_access` can only be set in a `[[cluster]]` table

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"bool written as string"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = "true"
private_access = true
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `public_access` must be `true` or `false`, not a string
 --> prod.toml:4:17
  |
4 | public_access = "true"
  |                 ^^^^^^
hint: write `true` without quotes

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"account written as integer"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
account = 111122223333
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `account` must be a string, not an integer
 --> prod.toml:6:11
  |
6 | account = 111122223333
  |           ^^^^^^^^^^^^
hint: quote it: `"111122223333"`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"list written as string"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
private_access_from = "sg-0a1b2c3d"
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `private_access_from` must be a list of strings, not a string
 --> prod.toml:6:23
  |
6 | private_access_from = "sg-0a1b2c3d"
  |                       ^^^^^^^^^^^^^
hint: write a list, even for one entry: `["sg-0a1b2c3d"]`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"integer in a cidr list"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
public_access_cidrs = ["203.0.113.0/24", 10]
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: entries of `public_access_cidrs` must be strings, not an integer
 --> prod.toml:6:42
  |
6 | public_access_cidrs = ["203.0.113.0/24", 10]
  |                                          ^^

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"defaults not a table"#,
        files: &[(
            r#"prod.toml"#,
            r#"defaults = "eu-west-1"
[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `defaults` must be a table, not a string
 --> prod.toml:1:12
  |
1 | defaults = "eu-west-1"
  |            ^^^^^^^^^^^
hint: write it as a `[defaults]` section

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"single brackets for cluster"#,
        files: &[(
            r#"prod.toml"#,
            r#"[cluster]
name = "a"
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `cluster` must be an array of tables, not a table
 --> prod.toml:1:1
  |
1 | [cluster]
  | ^^^^^^^^^
hint: write `[[cluster]]`, with double brackets, once per cluster

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"missing name"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
region = "eu-west-1"
public_access = true
private_access = true
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `[[cluster]]` has no `name`
 --> prod.toml:1:1
  |
1 | [[cluster]]
  | ^^^^^^^^^^^
hint: add `name = "..."`, the EKS cluster's name

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"invalid name"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments.prod"
region = "eu-west-1"
public_access = true
private_access = true
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: cluster name `payments.prod` contains `.`, which EKS does not allow
 --> prod.toml:2:8
  |
2 | name = "payments.prod"
  |        ^^^^^^^^^^^^^^^
hint: EKS cluster names are 1 to 100 characters: letters, digits, `-` and `_`, starting with a letter or a digit

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"name too long"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
region = "eu-west-1"
public_access = true
private_access = true
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: cluster name is 101 characters long, EKS allows at most 100
 --> prod.toml:2:8
  |
2 | name = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
  |        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"availability zone as region"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1a"
public_access = true
private_access = true
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `eu-west-1a` is an availability zone, not a region
 --> prod.toml:3:10
  |
3 | region = "eu-west-1a"
  |          ^^^^^^^^^^^^
hint: use its region: `eu-west-1`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"uppercase region"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "EU-WEST-1"
public_access = true
private_access = true
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `EU-WEST-1` is not an AWS region
 --> prod.toml:3:10
  |
3 | region = "EU-WEST-1"
  |          ^^^^^^^^^^^
hint: regions are lowercase: `eu-west-1`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"not a region"#,
        files: &[(
            r#"prod.toml"#,
            r#"[defaults]
region = "europe"

[[cluster]]
name = "payments-prod"
public_access = true
private_access = true
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `europe` is not an AWS region
 --> prod.toml:2:10
  |
2 | region = "europe"
  |          ^^^^^^^^
hint: regions look like `us-east-1`, `eu-central-2` or `us-gov-west-1`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"region missing without defaults"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
public_access = true
private_access = true
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: cluster `payments-prod` has no `region`, and `[defaults]` gives none
 --> prod.toml:1:1
  |
1 | [[cluster]]
  | ^^^^^^^^^^^
hint: add `region = "eu-west-1"` to the table, or to `[defaults]` for every cluster of this file

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"account not 12 digits"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
account = "11112222333"
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: account `11112222333` is not 12 digits
 --> prod.toml:6:11
  |
6 | account = "11112222333"
  |           ^^^^^^^^^^^^^
hint: AWS account ids are exactly 12 digits, leading zeros included, like `111122223333`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"role arn of a user"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
role_arn = "arn:aws:iam::111122223333:user/eksgate"
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `arn:aws:iam::111122223333:user/eksgate` is not a role ARN (its resource is `user/eksgate`)
 --> prod.toml:6:12
  |
6 | role_arn = "arn:aws:iam::111122223333:user/eksgate"
  |            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
hint: role ARNs look like `arn:aws:iam::111122223333:role/eksgate`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"role arn in another account"#,
        files: &[(
            r#"prod.toml"#,
            r#"[defaults]
account = "111122223333"

[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
role_arn = "arn:aws:iam::444455556666:role/eksgate"
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `role_arn` is in account `444455556666`, but `account` is `111122223333`
 --> prod.toml:9:12
  |
9 | role_arn = "arn:aws:iam::444455556666:role/eksgate"
  |            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
note: `account` is set at prod.toml:2:11
hint: eksgate acts with the role's credentials, so both must name the same account

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"role arn of another partition"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "cn-north-1"
public_access = true
private_access = true
role_arn = "arn:aws:iam::111122223333:role/eksgate"
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `role_arn` is in partition `aws`, but region `cn-north-1` is in `aws-cn`
 --> prod.toml:6:12
  |
6 | role_arn = "arn:aws:iam::111122223333:role/eksgate"
  |            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
note: `region` is set at prod.toml:3:10
hint: use a role of the `aws-cn` partition: `arn:aws-cn:iam::ACCOUNT:role/NAME`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"both endpoints off"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = false
private_access = false
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `public_access` and `private_access` cannot both be false
 --> prod.toml:5:18
  |
5 | private_access = false
  |                  ^^^^^
hint: AWS rejects it ("Both private and public endpoint access cannot be false"); for a private-only endpoint set `private_access = true`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"public_access missing"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
private_access = true
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: cluster `payments-prod` does not set `public_access`
 --> prod.toml:1:1
  |
1 | [[cluster]]
  | ^^^^^^^^^^^
hint: add `public_access = true` or `public_access = false`; eksgate does not guess which endpoints you want

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"cidr with host bits"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
public_access_cidrs = ["10.0.0.1/8"]
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `10.0.0.1/8` has host bits set
 --> prod.toml:6:24
  |
6 | public_access_cidrs = ["10.0.0.1/8"]
  |                        ^^^^^^^^^^^^
hint: the network is `10.0.0.0/8`; for the one address write `10.0.0.1/32`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"cidr without prefix"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
public_access_cidrs = ["203.0.113.7"]
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `203.0.113.7` has no prefix length
 --> prod.toml:6:24
  |
6 | public_access_cidrs = ["203.0.113.7"]
  |                        ^^^^^^^^^^^^^
hint: for this one address write `203.0.113.7/32`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"not a cidr"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
public_access_cidrs = ["203.0.113/24"]
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `203.0.113/24` is not a CIDR block
 --> prod.toml:6:24
  |
6 | public_access_cidrs = ["203.0.113/24"]
  |                        ^^^^^^^^^^^^^^
hint: CIDR blocks look like `203.0.113.0/24` or `2001:db8::/32`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"duplicate cidr after normalising"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
public_access_cidrs = ["2001:db8::/32", "2001:DB8::/32"]
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `2001:db8::/32` is listed twice in `public_access_cidrs`
 --> prod.toml:6:41
  |
6 | public_access_cidrs = ["2001:db8::/32", "2001:DB8::/32"]
  |                                         ^^^^^^^^^^^^^^^
note: first listed at prod.toml:6:24
hint: remove one of the two

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"41 cidrs"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
public_access_cidrs = ["11.0.0.0/16", "11.1.0.0/16", "11.2.0.0/16", "11.3.0.0/16", "11.4.0.0/16", "11.5.0.0/16", "11.6.0.0/16", "11.7.0.0/16", "11.8.0.0/16", "11.9.0.0/16", "11.10.0.0/16", "11.11.0.0/16", "11.12.0.0/16", "11.13.0.0/16", "11.14.0.0/16", "11.15.0.0/16", "11.16.0.0/16", "11.17.0.0/16", "11.18.0.0/16", "11.19.0.0/16", "11.20.0.0/16", "11.21.0.0/16", "11.22.0.0/16", "11.23.0.0/16", "11.24.0.0/16", "11.25.0.0/16", "11.26.0.0/16", "11.27.0.0/16", "11.28.0.0/16", "11.29.0.0/16", "11.30.0.0/16", "11.31.0.0/16", "11.32.0.0/16", "11.33.0.0/16", "11.34.0.0/16", "11.35.0.0/16", "11.36.0.0/16", "11.37.0.0/16", "11.38.0.0/16", "11.39.0.0/16", "11.40.0.0/16"]
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `public_access_cidrs` lists 41 blocks, AWS allows at most 40
 --> prod.toml:6:654
  |
6 | public_access_cidrs = ["11.0.0.0/16", "11.1.0.0/16", "11.2.0.0/16", "11.3.0.0/16", "11.4.0.0/16", "11.5.0.0/16", "11.6.0.0/16", "11.7.0.0/16", "11.8.0.0/16", "11.9.0.0/16", "11.10.0.0/16", "11.11.0.0/16", "11.12.0.0/16", "11.13.0.0/16", "11.14.0.0/16", "11.15.0.0/16", "11.16.0.0/16", "11.17.0.0/16", "11.18.0.0/16", "11.19.0.0/16", "11.20.0.0/16", "11.21.0.0/16", "11.22.0.0/16", "11.23.0.0/16", "11.24.0.0/16", "11.25.0.0/16", "11.26.0.0/16", "11.27.0.0/16", "11.28.0.0/16", "11.29.0.0/16", "11.30.0.0/16", "11.31.0.0/16", "11.32.0.0/16", "11.33.0.0/16", "11.34.0.0/16", "11.35.0.0/16", "11.36.0.0/16", "11.37.0.0/16", "11.38.0.0/16", "11.39.0.0/16", "11.40.0.0/16"]
  |                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                              ^^^^^^^^^^^^^^
hint: merge neighbouring blocks into wider ones, or reach the cluster through the private endpoint

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"empty cidr list"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
public_access_cidrs = []
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `public_access_cidrs` is empty
 --> prod.toml:6:23
  |
6 | public_access_cidrs = []
  |                       ^^
hint: list at least one CIDR block, or remove the key to leave the list as it is; `["0.0.0.0/0"]` opens the endpoint to everyone

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"cidrs while public is off"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = false
private_access = true
private_access_from = ["10.20.0.0/16"]
public_access_cidrs = ["203.0.113.0/24"]
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `public_access_cidrs` is set but `public_access = false`
 --> prod.toml:7:23
  |
7 | public_access_cidrs = ["203.0.113.0/24"]
  |                       ^^^^^^^^^^^^^^^^^^
hint: remove `public_access_cidrs`, or set `public_access = true`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"bad security-group id"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
private_access_from = ["sg-12345"]
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `sg-12345` is not a security-group id
 --> prod.toml:6:24
  |
6 | private_access_from = ["sg-12345"]
  |                        ^^^^^^^^^^
hint: security-group ids are `sg-` and 8 or 17 hex digits, like `sg-0a1b2c3d4e5f67890`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"security-group name instead of id"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
private_access_from = ["bastion"]
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `bastion` is neither a security-group id nor a CIDR block
 --> prod.toml:6:24
  |
6 | private_access_from = ["bastion"]
  |                        ^^^^^^^^^
hint: write a security-group id like `sg-0a1b2c3d4e5f67890` or a CIDR block like `10.20.0.0/16`; security-group names are not accepted

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"private source with host bits"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
private_access_from = ["10.20.0.1/16"]
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `10.20.0.1/16` has host bits set
 --> prod.toml:6:24
  |
6 | private_access_from = ["10.20.0.1/16"]
  |                        ^^^^^^^^^^^^^^
hint: the network is `10.20.0.0/16`; for the one address write `10.20.0.1/32`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"duplicate private source"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
private_access_from = ["sg-0a1b2c3d", "sg-0a1b2c3d"]
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `sg-0a1b2c3d` is listed twice in `private_access_from`
 --> prod.toml:6:39
  |
6 | private_access_from = ["sg-0a1b2c3d", "sg-0a1b2c3d"]
  |                                       ^^^^^^^^^^^^^
note: first listed at prod.toml:6:24
hint: remove one of the two

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"private sources while private is off"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = false
private_access_from = ["sg-0a1b2c3d"]
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `private_access_from` is set but `private_access = false`
 --> prod.toml:6:23
  |
6 | private_access_from = ["sg-0a1b2c3d"]
  |                       ^^^^^^^^^^^^^^^
hint: remove `private_access_from`, or set `private_access = true`

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"negative wave"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
wave = -1
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `wave` must be between 0 and 4294967295
 --> prod.toml:6:8
  |
6 | wave = -1
  |        ^^
hint: waves roll out in increasing order, starting at 0

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"duplicate cluster in one file"#,
        files: &[(
            r#"prod.toml"#,
            r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true

[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: cluster `payments-prod` in `eu-west-1` is declared twice
 --> prod.toml:7:1
  |
7 | [[cluster]]
  | ^^^^^^^^^^^
note: first declared at prod.toml:1:1
hint: keep one `[[cluster]]` table per cluster

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"duplicate cluster across files"#,
        files: &[
            (
                r#"a.toml"#,
                r#"[[cluster]]
name = "payments-prod"
region = "eu-west-1"
public_access = true
private_access = true
"#,
            ),
            (
                r#"b.toml"#,
                r#"[defaults]
region = "eu-west-1"

[[cluster]]
name = "payments-prod"
public_access = true
private_access = true
"#,
            ),
        ],
        args: &[r#"a.toml"#, r#"b.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: cluster `payments-prod` in `eu-west-1` is declared twice
 --> b.toml:4:1
  |
4 | [[cluster]]
  | ^^^^^^^^^^^
note: first declared at a.toml:1:1
hint: keep one `[[cluster]]` table per cluster

error: 1 error in 1 file
"#,
    },
    Case {
        name: r#"every error of every file"#,
        files: &[
            (
                r#"a.toml"#,
                r#"[[cluster]
"#,
            ),
            (
                r#"b.toml"#,
                r#"[[cluster]]
name = "payments-prod"
region = 1
public_access = "no"
private_access = true
public_access_cidrs = ["10.0.0.1/8"]
"#,
            ),
        ],
        args: &[r#"a.toml"#, r#"b.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: unclosed array table, expected `]`
 --> a.toml:1:11
  |
1 | [[cluster]
  |           ^

error: `region` must be a string, not an integer
 --> b.toml:3:10
  |
3 | region = 1
  |          ^

error: `public_access` must be `true` or `false`, not a string
 --> b.toml:4:17
  |
4 | public_access = "no"
  |                 ^^^^

error: `10.0.0.1/8` has host bits set
 --> b.toml:6:24
  |
6 | public_access_cidrs = ["10.0.0.1/8"]
  |                        ^^^^^^^^^^^^
hint: the network is `10.0.0.0/8`; for the one address write `10.0.0.1/32`

error: 4 errors in 2 files
"#,
    },
    Case {
        name: r#"missing path"#,
        files: &[],
        args: &[r#"nope.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: cannot read `nope.toml`: no such file or directory
hint: check the path; it is relative to the current directory

error: 1 error
"#,
    },
    Case {
        name: r#"directory without manifests"#,
        files: &[(r#"empty/notes.md"#, r#"x"#)],
        args: &[r#"empty"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: no `*.toml` files in `empty`
hint: manifests are `*.toml` files; pass a file, or a directory that holds some

error: 1 error
"#,
    },
    Case {
        name: r#"who must keep the Kubernetes API"#,
        files: &[(
            r#"prod.toml"#,
            r#"[defaults]
region = "eu-west-1"
private_access_principals = ["arn:aws:iam::111122223333:role/bastion"]

[[cluster]]
name = "a"
public_access = true
private_access = false
private_access_principals = ["arn:aws:iam::111122223333:role/ops"]

[[cluster]]
name = "b"
public_access = false
private_access = true
private_access_from = ["10.0.0.0/8"]
private_access_principals = ["arn:aws-cn:iam::111122223333:role/x", "arn:aws:iam::111122223333:role/y", "arn:aws:iam::111122223333:role/team/y"]
authentication_mode = "API_ONLY"
"#,
        )],
        args: &[r#"prod.toml"#],
        code: 1,
        stdout: r#""#,
        stderr: r#"error: `private_access_principals` is set but `private_access = false`
 --> prod.toml:9:29
  |
9 | private_access_principals = ["arn:aws:iam::111122223333:role/ops"]
  |                             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
hint: remove `private_access_principals`, or set `private_access = true`

error: `arn:aws-cn:iam::111122223333:role/x` is in partition `aws-cn`, but region `eu-west-1` is in `aws`
  --> prod.toml:16:30
   |
16 | private_access_principals = ["arn:aws-cn:iam::111122223333:role/x", "arn:aws:iam::111122223333:role/y", "arn:aws:iam::111122223333:role/team/y"]
   |                              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
hint: use a principal of the `aws` partition: `arn:aws:iam::ACCOUNT:role/NAME`

error: `arn:aws:iam::111122223333:role/team/y` is listed twice in `private_access_principals`
  --> prod.toml:16:105
   |
16 | private_access_principals = ["arn:aws-cn:iam::111122223333:role/x", "arn:aws:iam::111122223333:role/y", "arn:aws:iam::111122223333:role/team/y"]
   |                                                                                                         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
note: first listed at prod.toml:16:69
hint: a role is the same whatever its path; remove one of the two

error: unknown authentication mode `API_ONLY`
  --> prod.toml:17:23
   |
17 | authentication_mode = "API_ONLY"
   |                       ^^^^^^^^^^
hint: use `"API_AND_CONFIG_MAP"` (access entries and the `aws-auth` ConfigMap) or `"API"` (access entries only)

error: 4 errors in 1 file
"#,
    },
];
