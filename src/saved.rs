//! Saved plans (`plan --out FILE`, `apply --plan FILE`): the plan (each step
//! naming the role it is applied with), the desired state it was made from
//! (so apply can re-read exactly those clusters, each with its own role), the
//! manifests' digest, the eksgate version, and a checksum over all of it. A file whose checksum does not match was altered after it
//! was written and is refused. The checksum guards against edits, not against
//! someone who recomputes it: protect saved plans as you protect manifests.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::desired::Desired;
use crate::diagnostic::{Diagnostic, Source};
use crate::error::{Error, Result};
use crate::plan::Plan;

/// 2: a cluster's desired endpoint settings are one object
/// (`endpoint: {public_access, private_access, public_access_cidrs}`).
/// 3: clusters carry `access` (principals, authentication mode),
/// `private_access_from_exclusive` and `public_access_prefix_lists`; plans
/// their `access_checks`; sources may be prefix lists; steps may move the
/// authentication mode (`eks_access_config`) or revoke TCP 443 rules
/// (`sg_https_revoke`).
pub const SAVED_FORMAT: u32 = 3;

/// Everything in a saved plan but its checksum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedBody {
    pub saved_format: u32,
    pub eksgate_version: String,
    pub manifest_digest: String,
    pub desired: Desired,
    pub plan: Plan,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedFile {
    #[serde(flatten)]
    body: SavedBody,
    checksum: String,
}

fn checksum(body: &SavedBody) -> Result<String> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| Error::Internal(format!("cannot encode the plan: {e}")))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

impl SavedBody {
    pub fn new(desired: Desired, plan: Plan) -> SavedBody {
        SavedBody {
            saved_format: SAVED_FORMAT,
            eksgate_version: env!("CARGO_PKG_VERSION").to_string(),
            manifest_digest: desired.digest.clone(),
            desired,
            plan,
        }
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let file = SavedFile {
            body: self.clone(),
            checksum: checksum(self)?,
        };
        let text = serde_json::to_string_pretty(&file)
            .map_err(|e| Error::Internal(format!("cannot encode the plan: {e}")))?;
        std::fs::write(path, text + "\n").map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a saved plan, refusing one that is malformed, from another
    /// format or version, or altered.
    pub fn read(path: &Path) -> Result<SavedBody> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        SavedBody::parse(&path.display().to_string(), &text)
    }

    pub fn parse(name: &str, text: &str) -> Result<SavedBody> {
        // The format first: an older file does not fit today's types, and
        // "plan again" is the useful answer, not a field-level parse error.
        #[derive(Deserialize)]
        struct Header {
            saved_format: u32,
        }
        if let Ok(header) = serde_json::from_str::<Header>(text) {
            if header.saved_format != SAVED_FORMAT {
                return Err(Error::user_hint(
                    format!("`{name}` is a saved plan of format {}, this eksgate reads format {SAVED_FORMAT}", header.saved_format),
                    "plan again with this version of eksgate",
                ));
            }
        }
        let file: SavedFile = serde_json::from_str(text).map_err(|e| {
            let source = Source::new(name, text);
            let offset = source.offset_of(e.line(), e.column());
            Error::Diagnostics(vec![Diagnostic::error(format!(
                "not a saved eksgate plan: {e}"
            ))
            .at(&source, offset..offset)
            .hint("write one with `eksgate plan --out FILE`")])
        })?;
        if checksum(&file.body)? != file.checksum {
            return Err(Error::user_hint(
                format!("`{name}` was altered after it was saved: its checksum does not match"),
                "plan again with `eksgate plan --out FILE` instead of editing a saved plan",
            ));
        }
        if file.body.eksgate_version != env!("CARGO_PKG_VERSION") {
            return Err(Error::user_hint(
                format!(
                    "`{name}` was saved by eksgate {}, this is eksgate {}",
                    file.body.eksgate_version,
                    env!("CARGO_PKG_VERSION")
                ),
                "plan again with this version of eksgate",
            ));
        }
        Ok(file.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SavedBody {
        let desired = Desired {
            clusters: Vec::new(),
            digest: "abc".into(),
            allow_unverified_access: false,
        };
        let plan = crate::plan::plan(&desired, &crate::live::Live::default());
        SavedBody::new(desired, plan)
    }

    #[test]
    fn round_trips_and_refuses_alterations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        sample().write(&path).unwrap();
        let back = SavedBody::read(&path).unwrap();
        assert_eq!(back, sample());

        let text = std::fs::read_to_string(&path).unwrap();
        let altered = text.replace(
            "\"manifest_digest\": \"abc\"",
            "\"manifest_digest\": \"abd\"",
        );
        assert_ne!(text, altered);
        let err = SavedBody::parse("p.json", &altered).unwrap_err();
        assert!(
            err.to_string().contains("was altered after it was saved"),
            "{err}"
        );
    }

    /// A plan of two clusters' endpoint steps: `a` in account `111`, `b` in
    /// `222`, neither step naming a role.
    fn two_accounts() -> SavedBody {
        use crate::apply::fake::{both, public, want, FakeAws};
        let aws = FakeAws::new().cluster("a", public()).cluster("b", public());
        let wants = vec![want("a", both(), &[]), want("b", both(), &[])];
        let mut plan = crate::apply::fake::plan(&aws, wants.clone());
        for step in &mut plan.steps {
            step.account = Some(
                if step.id.contains("/a/") {
                    "111"
                } else {
                    "222"
                }
                .into(),
            );
        }
        assert_eq!(plan.steps.len(), 2, "{:?}", plan.steps);
        let desired = Desired {
            clusters: wants,
            digest: "abc".into(),
            allow_unverified_access: false,
        };
        SavedBody::new(desired, plan)
    }

    fn roles_of(body: &SavedBody) -> Vec<Option<&str>> {
        body.plan
            .steps
            .iter()
            .map(|s| s.role_arn.as_deref())
            .collect()
    }

    #[test]
    fn new_plans_carry_roles_on_their_steps_and_no_account_map() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let mut body = two_accounts();
        body.plan.steps[0].role_arn = Some("arn:aws:iam::111:role/a".into());
        body.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("\"roles\""), "{text}");
        assert_eq!(
            text.matches("\"role_arn\": \"arn:aws:iam::111:role/a\"")
                .count(),
            1,
            "{text}"
        );
        let back = SavedBody::read(&path).unwrap();
        assert_eq!(back, body);
        assert_eq!(roles_of(&back), [Some("arn:aws:iam::111:role/a"), None]);
    }

    #[test]
    fn garbage_is_not_a_plan() {
        for text in ["", "{", "[]", "{\"saved_format\": 3}", "null", "\u{0}"] {
            let err = SavedBody::parse("p.json", text).unwrap_err();
            assert!(matches!(err, Error::Diagnostics(_)), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_plan_of_another_format_is_refused_with_plan_again() {
        let err = SavedBody::parse("p.json", "{\"saved_format\": 1, \"plan\": {}}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`p.json` is a saved plan of format 1, this eksgate reads format 3"
        );
    }

    /// 2,000 cases in CI; `EKSGATE_FUZZ_CASES` for a longer run.
    fn fuzz_cases() -> u32 {
        std::env::var("EKSGATE_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000)
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: fuzz_cases(), failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_text_is_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let text = String::from_utf8_lossy(&bytes);
            prop_assert!(SavedBody::parse("p.json", &text).is_err());
        }

        /// One changed byte of a valid saved plan: refused, or (in
        /// insignificant whitespace) read back as the same plan.
        #[test]
        fn an_edited_saved_plan_is_refused_or_unchanged(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.json");
            sample().write(&path).unwrap();
            let mut bytes = std::fs::read(&path).unwrap();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(body) = SavedBody::parse("p.json", &text) {
                prop_assert_eq!(body, sample());
            }
        }
    }
}
