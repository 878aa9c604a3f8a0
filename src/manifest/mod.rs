//! Manifests: finding the files, parsing the TOML with spans, and checking
//! every rule, into a [`Desired`](crate::desired::Desired) that the planner
//! can trust without looking again. Every mistake of a run is reported, each
//! pointing at its `file:line:col`: all files are read, every table is
//! checked, and one bad value does not hide the next.
//!
//! This module is pure apart from reading the files: it never talks to AWS,
//! never prints, and never guesses a value the manifest did not give.
//!
//! - `files`: file loading: which files the paths name (directories are
//!   walked), reading them, and what spans files (digest, clusters declared
//!   twice, order of diagnostics);
//! - `shape`: shape checks: TOML syntax, known keys ("did you mean"), value
//!   types, `[[cluster]]` written as `[cluster]`;
//! - `raw`: the serde types of the TOML, the source of the JSON schema;
//! - `cluster`: cluster rules: a well-shaped table into a checked cluster
//!   (defaults, required settings, role against account and region, lists,
//!   waves);
//! - `access`: `private_access_principals` and `authentication_mode`;
//! - `rules`: what AWS accepts for each kind of value;
//! - `network`: public CIDRs no internet client has (a warning).
//!
//! The tests here load whole manifests through [`load_bytes`]; each part's
//! own tests sit in its file.

mod access;
mod allow_list;
mod cluster;
mod files;
mod network;
mod raw;
mod rules;
mod shape;

pub use files::{load, load_bytes, Loaded};
pub use raw::json_schema;
pub use rules::{parse_role_arn, MAX_PUBLIC_ACCESS_CIDRS};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{AccessSource, ClusterKey};
    use crate::diagnostic::{Diagnostic, Severity};
    use proptest::prelude::*;
    use sha2::{Digest as _, Sha256};
    use toml::de::DeTable;

    use crate::set::SortedSet;

    fn load_one(text: &str) -> Result<Loaded, Vec<Diagnostic>> {
        load_bytes(vec![("m.toml".to_string(), text.as_bytes().to_vec())])
    }

    /// Every diagnostic as `"error: MESSAGE @LINE:COL"`, in order.
    fn messages(diags: &[Diagnostic]) -> Vec<String> {
        diags
            .iter()
            .map(|d| {
                let level = match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                let at = d
                    .position()
                    .and_then(|p| p.strip_prefix("m.toml").map(str::to_string))
                    .unwrap_or_default();
                format!("{level}: {}{at}", d.message)
            })
            .collect()
    }

    fn diagnostics_of(text: &str) -> Vec<String> {
        match load_one(text) {
            Ok(loaded) => messages(&loaded.warnings),
            Err(diags) => messages(&diags),
        }
    }

    const OK: &str = "[[cluster]]\nname = \"a\"\nregion = \"eu-west-1\"\npublic_access = true\nprivate_access = true\n";

    /// One cluster table with `body` after a valid name.
    fn cluster(body: &str) -> String {
        format!("[[cluster]]\nname = \"a\"\n{body}")
    }

    #[test]
    fn rules_table() {
        let both = "public_access = true\nprivate_access = true\n";
        let cases: Vec<(&str, String, Vec<&str>)> = vec![
            ("valid", OK.to_string(), vec![]),
            (
                "region from defaults",
                format!("[defaults]\nregion = \"eu-west-1\"\n{}", cluster(both)),
                vec![],
            ),
            (
                "no region anywhere",
                cluster(both),
                vec!["error: cluster `a` has no `region`, and `[defaults]` gives none:1:1"],
            ),
            (
                "bad defaults region is reported once, not missing",
                format!("[defaults]\nregion = \"eu-west\"\n{}{}", cluster(both), cluster(both).replace("\"a\"", "\"b\"")),
                vec!["error: `eu-west` is not an AWS region:2:10"],
            ),
            (
                "both endpoints off",
                cluster("region = \"eu-west-1\"\npublic_access = false\nprivate_access = false\n"),
                vec!["error: `public_access` and `private_access` cannot both be false:5:18"],
            ),
            (
                "private only without clients warns",
                cluster("region = \"eu-west-1\"\npublic_access = false\nprivate_access = true\n"),
                vec!["warning: nothing outside the VPC is declared to reach this cluster:2:8"],
            ),
            (
                "private only with an empty list warns",
                cluster("region = \"eu-west-1\"\npublic_access = false\nprivate_access = true\nprivate_access_from = []\n"),
                vec!["warning: nothing outside the VPC is declared to reach this cluster:2:8"],
            ),
            (
                "missing flags",
                cluster("region = \"eu-west-1\"\n"),
                vec![
                    "error: cluster `a` does not set `public_access`:1:1",
                    "error: cluster `a` does not set `private_access`:1:1",
                ],
            ),
            (
                "a wrong type does not also count as missing",
                cluster("region = \"eu-west-1\"\npublic_access = \"yes\"\nprivate_access = true\n"),
                vec!["error: `public_access` must be `true` or `false`, not a string:4:17"],
            ),
            (
                "every wrong key of one table is reported",
                cluster("region = 1\npublic_access = 2\nprivate_access = true\nregoin = \"x\"\n"),
                vec![
                    "error: `region` must be a string, not an integer:3:10",
                    "error: `public_access` must be `true` or `false`, not an integer:4:17",
                    "error: unknown key `regoin` in `[[cluster]]`:6:1",
                ],
            ),
            (
                "host bits",
                cluster(&format!("region = \"eu-west-1\"\n{both}public_access_cidrs = [\"10.0.0.1/8\"]\n")),
                vec!["error: `10.0.0.1/8` has host bits set:6:24"],
            ),
            (
                "duplicate cidr after normalising",
                cluster(&format!("region = \"eu-west-1\"\n{both}public_access_cidrs = [\"2001:db8::/32\", \"2001:DB8:0::/32\"]\n")),
                vec!["error: `2001:db8::/32` is listed twice in `public_access_cidrs`:6:41"],
            ),
            (
                "41 cidrs",
                cluster(&format!(
                    "region = \"eu-west-1\"\n{both}public_access_cidrs = [{}]\n",
                    (0..41).map(|i| format!("\"11.{i}.0.0/16\"")).collect::<Vec<_>>().join(", ")
                )),
                vec!["error: `public_access_cidrs` lists 41 blocks, AWS allows at most 40:6:654"],
            ),
            (
                "a private range in public cidrs warns",
                cluster(&format!(
                    "region = \"eu-west-1\"\n{both}public_access_cidrs = [\"203.0.113.0/24\", \"10.1.0.0/16\", \"fd00::/8\"]\n"
                )),
                vec![
                    "warning: `10.1.0.0/16` in `public_access_cidrs` is a private range (RFC 1918): no traffic from the internet comes from it:6:42",
                    "warning: `fd00::/8` in `public_access_cidrs` is a unique local range (RFC 4193): no traffic from the internet comes from it:6:57",
                ],
            ),
            (
                "cidrs with public off",
                cluster("region = \"eu-west-1\"\npublic_access = false\nprivate_access = true\nprivate_access_from = [\"sg-0a1b2c3d\"]\npublic_access_cidrs = [\"10.0.0.0/8\"]\n"),
                vec!["error: `public_access_cidrs` is set but `public_access = false`:7:23"],
            ),
            (
                "clients with private off",
                cluster("region = \"eu-west-1\"\npublic_access = true\nprivate_access = false\nprivate_access_from = [\"10.0.0.0/8\"]\n"),
                vec!["error: `private_access_from` is set but `private_access = false`:6:23"],
            ),
            (
                "bad client",
                cluster(&format!("region = \"eu-west-1\"\n{both}private_access_from = [\"sg-12\", \"bastion\"]\n")),
                vec![
                    "error: `sg-12` is not a security-group id:6:24",
                    "error: `bastion` is neither a security-group id nor a CIDR block:6:33",
                ],
            ),
            (
                "account and role disagree",
                cluster(&format!("region = \"eu-west-1\"\naccount = \"111122223333\"\nrole_arn = \"arn:aws:iam::444455556666:role/x\"\n{both}")),
                vec!["error: `role_arn` is in account `444455556666`, but `account` is `111122223333`:5:12"],
            ),
            (
                "cluster account against defaults role points at the cluster",
                format!("[defaults]\nrole_arn = \"arn:aws:iam::444455556666:role/x\"\n{}", cluster(&format!("region = \"eu-west-1\"\naccount = \"111122223333\"\n{both}"))),
                vec!["error: `role_arn` is in account `444455556666`, but `account` is `111122223333`:6:11"],
            ),
            (
                "role of another partition",
                cluster(&format!("region = \"cn-north-1\"\nrole_arn = \"arn:aws:iam::444455556666:role/x\"\n{both}")),
                vec!["error: `role_arn` is in partition `aws`, but region `cn-north-1` is in `aws-cn`:4:12"],
            ),
            (
                "negative wave",
                cluster(&format!("region = \"eu-west-1\"\n{both}wave = -1\n")),
                vec!["error: `wave` must be between 0 and 4294967295:6:8"],
            ),
            (
                "no name",
                "[[cluster]]\nregion = \"eu-west-1\"\npublic_access = true\nprivate_access = true\n".to_string(),
                vec!["error: `[[cluster]]` has no `name`:1:1"],
            ),
            (
                "single brackets",
                "[cluster]\nname = \"a\"\n".to_string(),
                vec!["error: `cluster` must be an array of tables, not a table:1:1"],
            ),
            (
                "empty file",
                String::new(),
                vec!["warning: no `[[cluster]]` in this file"],
            ),
            (
                "unknown top-level key",
                format!("[default]\nregion = \"eu-west-1\"\n{OK}"),
                vec!["error: unknown key `default` at the top level:1:2"],
            ),
            (
                "cluster key in defaults",
                format!("[defaults]\nwave = 1\n{OK}"),
                vec!["error: unknown key `wave` in `[defaults]`:2:1"],
            ),
            (
                "duplicate in one file",
                format!("{OK}{OK}"),
                vec!["error: cluster `a` in `eu-west-1` is declared twice:6:1"],
            ),
            (
                "same name in another region is another cluster",
                format!("{OK}{}", OK.replace("eu-west-1", "eu-west-2")),
                vec![],
            ),
            (
                "same name in another account is another cluster",
                format!("{OK}{}", OK.replace("region", "account = \"111122223333\"\nregion")),
                vec![],
            ),
            (
                "syntax",
                "[[cluster]\nname = \"a\"\n".to_string(),
                vec!["error: unclosed array table, expected `]`:1:11"],
            ),
        ];
        for (name, text, want) in cases {
            assert_eq!(diagnostics_of(&text), want, "case {name:?}\n{text}");
        }
    }

    #[test]
    fn a_valid_manifest_becomes_normalised_desired_state() {
        let text = r#"
[defaults]
region = "eu-west-1"
role_arn = "arn:aws:iam::111122223333:role/eksgate"

[[cluster]]
name = "payments-prod"
public_access = true
private_access = true
public_access_cidrs = ["203.0.113.0/24", "198.51.100.0/24"]
private_access_from = ["sg-0a1b2c3d4e5f67890", "10.20.0.0/16"]
wave = 2
"#;
        let loaded = load_one(text).unwrap();
        assert_eq!(loaded.files, 1);
        assert!(loaded.warnings.is_empty());
        let c = &loaded.desired.clusters[0];
        assert_eq!(
            c.key,
            ClusterKey {
                account: Some("111122223333".into()),
                region: "eu-west-1".into(),
                name: "payments-prod".into()
            }
        );
        assert_eq!(
            c.role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/eksgate")
        );
        assert_eq!(c.endpoint.mode(), (true, true));
        let cidrs: Vec<String> = c
            .endpoint
            .public_access_cidrs
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(cidrs, ["198.51.100.0/24", "203.0.113.0/24"]);
        assert_eq!(
            c.private_access_from,
            SortedSet::from([
                AccessSource::SecurityGroup("sg-0a1b2c3d4e5f67890".into()),
                AccessSource::Cidr("10.20.0.0/16".parse().unwrap()),
            ])
        );
        assert_eq!(c.wave, 2);
        assert_eq!(c.origin.to_string(), "m.toml:6:1");
        assert_eq!(loaded.desired.digest.len(), 64);
    }

    #[test]
    fn duplicates_across_files_name_both_places() {
        let files = vec![
            ("a.toml".to_string(), OK.as_bytes().to_vec()),
            ("b.toml".to_string(), format!("\n{OK}").into_bytes()),
        ];
        let diags = load_bytes(files).unwrap_err();
        assert_eq!(diags.len(), 1);
        let text = diags[0].render(false);
        assert!(text.contains("--> b.toml:2:1"), "{text}");
        assert!(
            text.contains("note: first declared at a.toml:1:1"),
            "{text}"
        );
    }

    #[test]
    fn errors_of_every_file_are_reported() {
        let files = vec![
            ("a.toml".to_string(), b"[[cluster]\n".to_vec()),
            ("b.toml".to_string(), cluster("region = 5\n").into_bytes()),
        ];
        let diags = load_bytes(files).unwrap_err();
        let places: Vec<_> = diags.iter().filter_map(Diagnostic::position).collect();
        assert_eq!(
            places,
            ["a.toml:1:11", "b.toml:1:1", "b.toml:1:1", "b.toml:3:10"]
        );
    }

    #[test]
    fn digest_covers_names_and_bytes_in_order() {
        let digest = |files: Vec<(&str, &str)>| {
            load_bytes(
                files
                    .into_iter()
                    .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
                    .collect(),
            )
            .unwrap()
            .desired
            .digest
        };
        let other = OK.replace("\"a\"", "\"b\"");
        let base = digest(vec![("a.toml", OK), ("b.toml", &other)]);
        assert_eq!(base, digest(vec![("a.toml", OK), ("b.toml", &other)]));
        assert_ne!(base, digest(vec![("b.toml", &other), ("a.toml", OK)]));
        assert_ne!(base, digest(vec![("x.toml", OK), ("b.toml", &other)]));
        assert_ne!(
            base,
            digest(vec![("a.toml", &format!("{OK}\n")), ("b.toml", &other)])
        );
    }

    #[test]
    fn invalid_utf8_points_at_the_first_bad_byte() {
        let diags =
            load_bytes(vec![("m.toml".into(), b"# ok\nname = \"\xff\"\n".to_vec())]).unwrap_err();
        assert_eq!(
            messages(&diags),
            ["error: this file is not valid UTF-8:2:9"]
        );
        diags[0].render(false);
    }

    /// Loads `text`, then renders every diagnostic: neither may panic.
    fn survives(text: &[u8]) {
        let diags = match load_bytes(vec![("p.toml".to_string(), text.to_vec())]) {
            Ok(loaded) => loaded.warnings,
            Err(diags) => diags,
        };
        for d in &diags {
            d.render(false);
            d.render(true);
        }
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>().prop_map(|s| format!("{s:?}")),
            "[a-z0-9:/.\\-]{0,24}".prop_map(|s| format!("\"{s}\"")),
            any::<i64>().prop_map(|i| i.to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            proptest::collection::vec("[0-9a-fsg:./\\-]{0,20}", 0..5)
                .prop_map(|v| format!("{v:?}")),
            Just("1979-05-27T07:32:00Z".to_string()),
            Just("{ a = 1 }".to_string()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_do_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            survives(&bytes);
        }

        #[test]
        fn toml_ish_text_does_not_panic(text in "(\\[\\[?[a-z_]{0,10}\\]?\\]?\n|[a-z_]{0,12} ?= ?(\"[^\"\n]{0,12}\"?|[0-9-]{0,5}|true|\\[[^\\]\n]{0,20}\\]?)\n|#[^\n]{0,8}\n|\t \u{e9}\r\n){0,16}") {
            survives(text.as_bytes());
        }

        #[test]
        fn random_values_in_cluster_fields_do_not_panic(
            fields in proptest::collection::vec(
                (proptest::sample::select(raw::CLUSTER_KEYS.to_vec()), value()),
                0..10,
            ),
            defaults in proptest::collection::vec(
                (proptest::sample::select(raw::DEFAULTS_KEYS.to_vec()), value()),
                0..3,
            ),
        ) {
            let mut text = String::from("[defaults]\n");
            for (k, v) in &defaults {
                text.push_str(&format!("{k} = {v}\n"));
            }
            text.push_str("[[cluster]]\n");
            for (k, v) in &fields {
                text.push_str(&format!("{k} = {v}\n"));
            }
            survives(text.as_bytes());
        }
    }

    /// Loads 10,000 clusters and prints the time. Run it with
    /// `cargo test --lib manifest::tests::ten_thousand -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement, not a check"]
    fn ten_thousand_clusters() {
        let mut text =
            String::from("[defaults]\nregion = \"eu-west-1\"\naccount = \"111122223333\"\n");
        // `EKSGATE_BENCH_CLUSTERS` changes the count, to see that time grows
        // linearly.
        let count: usize = std::env::var("EKSGATE_BENCH_CLUSTERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        for i in 0..count {
            text.push_str(&format!(
                "\n[[cluster]]\nname = \"cluster-{i}\"\nregion = \"{}\"\npublic_access = true\nprivate_access = true\npublic_access_cidrs = [\"203.0.{}.0/24\", \"198.51.100.0/24\"]\nprivate_access_from = [\"sg-0a1b2c3d4e5f67890\", \"10.{}.0.0/16\"]\nwave = {}\n",
                if i % 2 == 0 { "eu-west-1" } else { "us-east-1" },
                i % 256,
                i % 256,
                i % 5
            ));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.toml");
        std::fs::write(&path, &text).unwrap();
        let parse = std::time::Instant::now();
        let _ = DeTable::parse(&text).unwrap();
        println!("parsing alone: {:?}", parse.elapsed());
        let hashing = std::time::Instant::now();
        let _ = hex::encode(Sha256::digest(text.as_bytes()));
        println!("hashing alone: {:?}", hashing.elapsed());
        let start = std::time::Instant::now();
        let loaded = load(&[path]).unwrap();
        let took = start.elapsed();
        assert_eq!(loaded.desired.clusters.len(), count);
        println!("loaded {} bytes, {count} clusters in {took:?}", text.len());
    }
}
