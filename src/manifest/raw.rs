//! The manifest as written: serde types that mirror the TOML, keep the span
//! of every value for messages, and are the single source of the JSON schema
//! (`eksgate schema`). Their doc comments are the schema's descriptions, so
//! they speak to the person writing a manifest.
//!
//! These types check shape only (keys, types). Every field is optional here,
//! even required ones, so a missing key gets eksgate's own message and does
//! not hide the other mistakes of the table; the schema still marks them
//! required. Meaning is checked by the cluster rules (`cluster`, `rules`),
//! never here.

use schemars::JsonSchema;
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// An eksgate manifest (format 1): the EKS clusters whose API-server endpoint access eksgate manages. Every `*.toml` file passed to eksgate is one manifest; `[defaults]` apply to the clusters of the same file only.
// The loader walks the top level itself (so one bad table does not hide the
// others); this type exists for the schema, hence no reader of its fields.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "eksgate manifest")]
pub struct Manifest {
    /// Settings every `[[cluster]]` of this file inherits unless it sets its own.
    #[serde(default)]
    #[schemars(with = "Defaults")]
    pub defaults: Option<Defaults>,
    /// One `[[cluster]]` table per EKS cluster.
    #[serde(default)]
    pub cluster: Vec<Cluster>,
}

/// Settings every `[[cluster]]` of this file inherits unless it sets its own.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// AWS region of the clusters, like `eu-west-1`.
    #[serde(default)]
    #[schemars(with = "String", regex(pattern = r"^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$"))]
    pub region: Option<Spanned<String>>,
    /// The 12-digit AWS account the clusters live in. eksgate refuses to act when the credentials resolve to another account. Quote it, so leading zeros stay.
    #[serde(default)]
    #[schemars(with = "String", regex(pattern = r"^[0-9]{12}$"))]
    pub account: Option<Spanned<String>>,
    /// An IAM role to assume for these clusters, like `arn:aws:iam::111122223333:role/eksgate`. Its account must equal `account` when both are given.
    #[serde(default)]
    #[schemars(
        with = "String",
        regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")
    )]
    pub role_arn: Option<Spanned<String>>,
    /// `true` once the team that owns the cluster's infrastructure code (Terraform, eksctl, CloudFormation, CDK) has handed the endpoint settings over to eksgate: silences the plan's warning that another tool owns them. Default false; a cluster's own setting wins.
    #[serde(default)]
    #[schemars(with = "bool", extend("default" = false))]
    pub owner_acknowledged: Option<Spanned<bool>>,
    /// `true` to own the allow-list of these clusters: TCP 443 rules of the cluster security group whose source is not in `private_access_from` are revoked. Default false: eksgate only adds rules. A cluster's own setting wins.
    #[serde(default)]
    #[schemars(with = "bool", extend("default" = false))]
    pub private_access_from_exclusive: Option<Spanned<bool>>,
    /// The IAM roles and users that must still use the Kubernetes API once public access is off, like `["arn:aws:iam::111122223333:role/bastion"]`, for every private-only cluster of this file that lists none of its own.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub private_access_principals: Option<Spanned<Vec<Spanned<String>>>>,
    /// The authentication mode these clusters must have (a cluster's own setting wins): `API_AND_CONFIG_MAP` or `API`. The mode only moves forward.
    #[serde(default)]
    #[schemars(with = "AuthenticationModeName")]
    pub authentication_mode: Option<Spanned<String>>,
}

/// An EKS authentication mode: `CONFIG_MAP` → `API_AND_CONFIG_MAP` → `API`, forward only.
#[allow(dead_code)]
#[derive(JsonSchema)]
enum AuthenticationModeName {
    #[serde(rename = "CONFIG_MAP")]
    ConfigMap,
    #[serde(rename = "API_AND_CONFIG_MAP")]
    ApiAndConfigMap,
    #[serde(rename = "API")]
    Api,
}

/// One EKS cluster and the endpoint access it must have.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// The EKS cluster name: 1 to 100 letters, digits, `-` and `_`, starting with a letter or a digit.
    #[schemars(with = "String", regex(pattern = r"^[0-9A-Za-z][0-9A-Za-z_-]{0,99}$"))]
    pub name: Option<Spanned<String>>,
    /// AWS region of the cluster, like `eu-west-1`; required unless `[defaults]` gives one.
    #[serde(default)]
    #[schemars(with = "String", regex(pattern = r"^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$"))]
    pub region: Option<Spanned<String>>,
    /// The 12-digit AWS account of the cluster (overrides `[defaults]`). eksgate refuses to act when the credentials resolve to another account.
    #[serde(default)]
    #[schemars(with = "String", regex(pattern = r"^[0-9]{12}$"))]
    pub account: Option<Spanned<String>>,
    /// An IAM role to assume for this cluster (overrides `[defaults]`). Its account must equal `account` when both are given.
    #[serde(default)]
    #[schemars(
        with = "String",
        regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")
    )]
    pub role_arn: Option<Spanned<String>>,
    /// Whether the public endpoint is on. Required: eksgate never guesses.
    #[schemars(with = "bool")]
    pub public_access: Option<Spanned<bool>>,
    /// Whether the private endpoint (inside the cluster's VPC) is on. Required: eksgate never guesses. At least one of `public_access` and `private_access` must be true.
    #[schemars(with = "bool")]
    pub private_access: Option<Spanned<bool>>,
    /// CIDR blocks allowed to reach the public endpoint (at most 40, host bits clear), like `["203.0.113.0/24"]`, or managed prefix lists (`pl-0a1b2c3d4e5f67890`), expanded into their CIDRs when planning (the 40 counts the expanded blocks). Only with `public_access = true`. Omitted: eksgate leaves the list as it is.
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(min = 1, max = 40))]
    pub public_access_cidrs: Option<Spanned<Vec<Spanned<String>>>>,
    /// Who must reach the private endpoint on TCP 443: security-group ids (`sg-0a1b2c3d4e5f67890`), managed prefix lists (`pl-0a1b2c3d4e5f67890`) or CIDR blocks (`10.20.0.0/16`). eksgate opens the cluster security group to them before it turns the public endpoint off. Only with `private_access = true`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub private_access_from: Option<Spanned<Vec<Spanned<String>>>>,
    /// Rollout wave: clusters of wave 0 change first, then wave 1, and so on. Default 0.
    #[serde(default)]
    #[schemars(with = "u32", extend("default" = 0))]
    pub wave: Option<Spanned<i64>>,
    /// `true` once the team that owns the cluster's infrastructure code (Terraform, eksctl, CloudFormation, CDK) has handed the endpoint settings over to eksgate: silences the plan's warning that another tool owns them. Overrides `[defaults]`; default false.
    #[serde(default)]
    #[schemars(with = "bool", extend("default" = false))]
    pub owner_acknowledged: Option<Spanned<bool>>,
    /// The IAM roles and users (ARNs, a role's path allowed) that must still use the Kubernetes API once public access is off, like `["arn:aws:iam::111122223333:role/bastion"]`. eksgate checks that each has an EKS access entry with an access policy before it turns the public endpoint off. Only with `private_access = true`; overrides `[defaults]`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub private_access_principals: Option<Spanned<Vec<Spanned<String>>>>,
    /// The cluster's authentication mode: `API_AND_CONFIG_MAP` (access entries and the `aws-auth` ConfigMap) or `API`. eksgate moves it forward (never back) before it turns the public endpoint off, so the access entries can be checked. Omitted: left as it is.
    #[serde(default)]
    #[schemars(with = "AuthenticationModeName")]
    pub authentication_mode: Option<Spanned<String>>,
    /// `true` to own the allow-list: inbound rules of the cluster security group that are exactly TCP 443 and whose source is not in `private_access_from` are revoked, once the new sources are in and any endpoint change has finished. Rules on other ports or protocols, the group's reference to itself and outbound rules are never touched. Only with `private_access = true`. Overrides `[defaults]`; default false.
    #[serde(default)]
    #[schemars(with = "bool", extend("default" = false))]
    pub private_access_from_exclusive: Option<Spanned<bool>>,
}

impl Cluster {
    /// The common table read without serde: when every key is one of
    /// [`CLUSTER_KEYS`] and its value has that key's type, the `Cluster`
    /// serde would give, without the copy of the table serde consumes (a
    /// tenth of `validate`'s time on 10,000 clusters). `None` for anything
    /// else, `wave` included, which then goes through serde and its
    /// messages; a test holds both to the same answer.
    pub fn from_table(table: &DeTable<'_>) -> Option<Cluster> {
        fn string(value: &Spanned<DeValue<'_>>) -> Option<Spanned<String>> {
            match value.get_ref() {
                DeValue::String(s) => Some(Spanned::new(value.span(), s.to_string())),
                _ => None,
            }
        }
        fn boolean(value: &Spanned<DeValue<'_>>) -> Option<Spanned<bool>> {
            match value.get_ref() {
                DeValue::Boolean(b) => Some(Spanned::new(value.span(), *b)),
                _ => None,
            }
        }
        fn strings(value: &Spanned<DeValue<'_>>) -> Option<Spanned<Vec<Spanned<String>>>> {
            match value.get_ref() {
                DeValue::Array(items) => {
                    let items = items.iter().map(string).collect::<Option<Vec<_>>>()?;
                    Some(Spanned::new(value.span(), items))
                }
                _ => None,
            }
        }
        let mut c = Cluster::default();
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "name" => c.name = Some(string(value)?),
                "region" => c.region = Some(string(value)?),
                "account" => c.account = Some(string(value)?),
                "role_arn" => c.role_arn = Some(string(value)?),
                "public_access" => c.public_access = Some(boolean(value)?),
                "private_access" => c.private_access = Some(boolean(value)?),
                "public_access_cidrs" => c.public_access_cidrs = Some(strings(value)?),
                "private_access_from" => c.private_access_from = Some(strings(value)?),
                "owner_acknowledged" => c.owner_acknowledged = Some(boolean(value)?),
                "private_access_principals" => c.private_access_principals = Some(strings(value)?),
                "authentication_mode" => c.authentication_mode = Some(string(value)?),
                "private_access_from_exclusive" => {
                    c.private_access_from_exclusive = Some(boolean(value)?)
                }
                _ => return None,
            }
        }
        Some(c)
    }
}

/// The keys each table accepts, in schema order. Checked against the schema
/// by a test, so they cannot drift from the types above.
pub const TOP_KEYS: &[&str] = &["defaults", "cluster"];
pub const DEFAULTS_KEYS: &[&str] = &[
    "region",
    "account",
    "role_arn",
    "owner_acknowledged",
    "private_access_principals",
    "authentication_mode",
    "private_access_from_exclusive",
];
pub const CLUSTER_KEYS: &[&str] = &[
    "name",
    "region",
    "account",
    "role_arn",
    "public_access",
    "private_access",
    "public_access_cidrs",
    "private_access_from",
    "wave",
    "owner_acknowledged",
    "private_access_principals",
    "authentication_mode",
    "private_access_from_exclusive",
];

/// The JSON schema of a manifest, pretty-printed with a final newline: the
/// exact text of `schemas/manifest.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Manifest);
    // Serialising a `serde_json::Value`-backed schema cannot fail.
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(schema: &serde_json::Value, pointer: &str) -> Vec<String> {
        schema
            .pointer(pointer)
            .and_then(|v| v.as_object())
            .unwrap_or_else(|| panic!("no {pointer} in the schema"))
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn key_lists_match_the_schema() {
        let schema: serde_json::Value = serde_json::from_str(&json_schema()).unwrap();
        let sorted = |k: &[&str]| {
            let mut v: Vec<String> = k.iter().map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        let sorted_keys = |p: &str| {
            let mut v = keys(&schema, p);
            v.sort();
            v
        };
        assert_eq!(sorted_keys("/properties"), sorted(TOP_KEYS));
        assert_eq!(
            sorted_keys("/$defs/Defaults/properties"),
            sorted(DEFAULTS_KEYS)
        );
        assert_eq!(
            sorted_keys("/$defs/Cluster/properties"),
            sorted(CLUSTER_KEYS)
        );
        let required = schema.pointer("/$defs/Cluster/required").unwrap();
        assert_eq!(
            required,
            &serde_json::json!(["name", "public_access", "private_access"])
        );
    }

    /// `Cluster::from_table` gives what serde gives for the first
    /// `[[cluster]]` of `body`, or leaves the table to serde (`false`).
    fn agrees_with_serde(body: &str) -> bool {
        let Ok(root) = DeTable::parse(body) else {
            return false;
        };
        let Some((_, clusters)) = root.into_inner().into_iter().next() else {
            return false;
        };
        let DeValue::Array(items) = clusters.into_inner() else {
            return false;
        };
        let Some(value) = items.into_iter().next() else {
            return false;
        };
        let DeValue::Table(table) = value.get_ref() else {
            return false;
        };
        let Some(fast) = Cluster::from_table(table) else {
            return false;
        };
        let slow = Cluster::deserialize(toml::de::ValueDeserializer::from(value.clone()))
            .unwrap_or_else(|e| panic!("serde refused what from_table took: {e}\n{body}"));
        assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{body}");
        true
    }

    #[test]
    fn from_table_reads_common_tables_as_serde_does() {
        let all = "[[cluster]]\nname = \"a\"\nregion = \"eu-west-1\"\naccount = \"111122223333\"\nrole_arn = \"arn:aws:iam::111122223333:role/x\"\npublic_access = true\nprivate_access = false\npublic_access_cidrs = [\"203.0.113.0/24\", 'x\\y']\nprivate_access_from = []\nowner_acknowledged = false\nprivate_access_principals = [\"p\\u00e9\"]\nauthentication_mode = \"API\"\nprivate_access_from_exclusive = true\n";
        assert!(agrees_with_serde(all));
        assert!(agrees_with_serde("[[cluster]]\n"));
        for serde_only in [
            "[[cluster]]\nwave = 1\n",
            "[[cluster]]\nname = 1\n",
            "[[cluster]]\npublic_access = \"true\"\n",
            "[[cluster]]\nprivate_access_from = [\"a\", 1]\n",
            "[[cluster]]\nprivate_access_from = \"a\"\n",
            "[[cluster]]\nregoin = \"a\"\n",
            "[[cluster]]\nname.x = \"a\"\n",
        ] {
            assert!(!agrees_with_serde(serde_only), "{serde_only}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 1024, ..Default::default() })]

        #[test]
        fn from_table_never_disagrees_with_serde(
            fields in proptest::collection::vec(
                (
                    proptest::sample::select(CLUSTER_KEYS.to_vec()),
                    proptest::prop_oneof![
                        "\"[a-z0-9./-]{0,12}\"",
                        "true|false",
                        "-?[0-9]{1,3}",
                        "\\[(\"[a-z0-9/]{0,6}\"(, )?){0,3}\\]",
                        "\\[1, \"a\"\\]",
                        "\\{ a = 1 \\}",
                        "1979-05-27",
                    ],
                ),
                0..8,
            )
        ) {
            let mut body = String::from("[[cluster]]\n");
            let mut seen = std::collections::HashSet::new();
            for (key, value) in &fields {
                if seen.insert(*key) {
                    body.push_str(&format!("{key} = {value}\n"));
                }
            }
            agrees_with_serde(&body);
        }
    }
}
