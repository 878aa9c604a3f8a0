//! One step of a plan: one call (or one wait) against AWS, as typed data.
//!
//! What a step does is an [`Action`] whose payload is typed (DNS attribute,
//! sources as [`AccessSource`]s, endpoint settings with CIDRs as `IpNet`s), so
//! a malformed step cannot be represented: a saved plan whose step does not
//! decode is refused when it is read, not when the step runs.
//!
//! On the wire a step keeps the flat form plans have always had (`kind`,
//! `before`, `after`, in this field order), so the plan's JSON output and
//! saved plans read the same as before; [`wire`] does the translation, with
//! typed `before` and `after` per `kind` from which the plan's JSON schema is
//! derived. This module must not plan, run or render anything.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::access::AuthenticationMode;
use crate::desired::AccessSource;
use crate::endpoint::EndpointSettings;
use crate::live::DnsAttribute;
use crate::set::SortedSet;

/// The kind of a step, as JSON, reports and events name it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// `ModifyVpcAttribute` `enableDnsSupport`.
    VpcDnsSupport,
    /// `ModifyVpcAttribute` `enableDnsHostnames`.
    VpcDnsHostnames,
    /// `AuthorizeSecurityGroupIngress` on TCP 443 for the missing sources.
    SgHttpsIngress,
    /// Exactly one `UpdateClusterConfig` call, then a wait until `Successful`.
    EksEndpoint,
    /// An update already `InProgress` in AWS, waited on by id.
    WaitUpdate,
    /// One `UpdateClusterConfig` with `accessConfig` (an
    /// `AccessConfigUpdate`), then a wait until `Successful`.
    EksAccessConfig,
    /// `RevokeSecurityGroupIngress` (by rule id) of the exact TCP 443 rules
    /// from sources the manifest no longer declares.
    SgHttpsRevoke,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::VpcDnsSupport => "vpc_dns_support",
            StepKind::VpcDnsHostnames => "vpc_dns_hostnames",
            StepKind::SgHttpsIngress => "sg_https_ingress",
            StepKind::EksEndpoint => "eks_endpoint",
            StepKind::WaitUpdate => "wait_update",
            StepKind::EksAccessConfig => "eks_access_config",
            StepKind::SgHttpsRevoke => "sg_https_revoke",
        }
    }
}

/// What a step does, with what it was planned on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Turn one VPC DNS attribute on (`ModifyVpcAttribute`).
    VpcDns { attribute: DnsAttribute },
    /// Allow TCP 443 into the step's security group from `add`; `present` is
    /// what the group let in when the plan was made.
    HttpsIngress {
        present: SortedSet<AccessSource>,
        add: SortedSet<AccessSource>,
    },
    /// One `UpdateClusterConfig` from `before` to `after`, then a wait.
    Endpoint {
        before: EndpointSettings,
        after: EndpointSettings,
    },
    /// Wait for an update already running; `update_id` is `None` when the
    /// cluster said `UPDATING` but listed no update (wait until `ACTIVE`).
    WaitUpdate { update_id: Option<String> },
    /// One `UpdateClusterConfig` moving the authentication mode from
    /// `before` to `after` (forward only), then a wait.
    AccessConfig {
        before: AuthenticationMode,
        after: AuthenticationMode,
    },
    /// Revoke the exact TCP 443 rules of the step's security group from
    /// `revoke` (`private_access_from_exclusive`); `present` is what the
    /// group let in when the plan was made.
    HttpsRevoke {
        present: SortedSet<AccessSource>,
        revoke: SortedSet<AccessSource>,
    },
}

impl Action {
    pub fn kind(&self) -> StepKind {
        match self {
            Action::VpcDns {
                attribute: DnsAttribute::Support,
            } => StepKind::VpcDnsSupport,
            Action::VpcDns {
                attribute: DnsAttribute::Hostnames,
            } => StepKind::VpcDnsHostnames,
            Action::HttpsIngress { .. } => StepKind::SgHttpsIngress,
            Action::Endpoint { .. } => StepKind::EksEndpoint,
            Action::WaitUpdate { .. } => StepKind::WaitUpdate,
            Action::AccessConfig { .. } => StepKind::EksAccessConfig,
            Action::HttpsRevoke { .. } => StepKind::SgHttpsRevoke,
        }
    }
}

/// One call (or one wait) against AWS.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(into = "wire::Flat", try_from = "wire::Step")]
pub struct Step {
    /// Stable and readable: `[ACCOUNT/]REGION/THING/WHAT`.
    pub id: String,
    pub action: Action,
    pub account: Option<String>,
    pub region: String,
    /// The role the step's calls are made with (`role_arn` of its cluster,
    /// or of the first cluster of a shared VPC or security group).
    /// Shared, like `reason`: a large fleet's plan holds tens of thousands
    /// of steps with a handful of roles and of reasons.
    pub role_arn: Option<Arc<str>>,
    /// The cluster, for endpoint and wait steps.
    pub cluster: Option<String>,
    pub vpc_id: Option<String>,
    pub security_group_id: Option<String>,
    pub depends_on: Vec<String>,
    /// Why the step is needed and why it waits for its dependencies.
    pub reason: Arc<str>,
    /// Turns public access off while the manifest declares no
    /// `private_access_from`: apply refuses it unless told to allow lockout.
    pub lockout_risk: bool,
    /// A fingerprint of the live facts the step was planned on. They are the
    /// facts before *any* step ran, so compare them before applying, not
    /// between steps (a wait or an earlier step legitimately changes them).
    pub fingerprint: String,
    /// The rollout wave the step runs in: its cluster's `wave`, or for a VPC
    /// or security-group step shared by clusters of several waves the lowest
    /// of them, so it runs before the first cluster that needs it.
    pub wave: u32,
}

impl Step {
    pub fn kind(&self) -> StepKind {
        self.action.kind()
    }

    /// Whether `other` makes the same change: same kind and same end state
    /// (what it was planned *from* may differ).
    pub fn same_change(&self, other: &Step) -> bool {
        match (&self.action, &other.action) {
            (Action::VpcDns { attribute: a }, Action::VpcDns { attribute: b }) => a == b,
            (Action::HttpsIngress { add: a, .. }, Action::HttpsIngress { add: b, .. }) => a == b,
            (Action::Endpoint { after: a, .. }, Action::Endpoint { after: b, .. }) => a == b,
            (Action::WaitUpdate { update_id: a }, Action::WaitUpdate { update_id: b }) => a == b,
            (Action::AccessConfig { after: a, .. }, Action::AccessConfig { after: b, .. }) => {
                a == b
            }
            (Action::HttpsRevoke { revoke: a, .. }, Action::HttpsRevoke { revoke: b, .. }) => {
                a == b
            }
            _ => false,
        }
    }

    /// Turns public access off: an endpoint step whose `before` has it on and
    /// whose `after` has it off.
    pub fn turns_public_off(&self) -> bool {
        matches!(&self.action, Action::Endpoint { before, after }
            if before.public_access && !after.public_access)
    }
}

/// Serde for a set of sources in the split form steps and reports use:
/// `{"cidrs": [...], "security_groups": [...]}`.
pub mod sources_split {
    use crate::set::SortedSet;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::wire::HttpsSources;
    use crate::desired::AccessSource;

    pub fn serialize<S: Serializer>(
        set: &SortedSet<AccessSource>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        HttpsSources::from(set).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<SortedSet<AccessSource>, D::Error> {
        HttpsSources::deserialize(d)?
            .into_set()
            .map_err(serde::de::Error::custom)
    }
}

/// The flat JSON form of a step. Field order is the order plans have always
/// been written in. A step is written as a typed `Flat` (what the plan's
/// JSON schema is derived from) and read as a `Step` whose `before` and
/// `after` are decoded by `kind`, so a step that does not fit its kind is
/// refused with its id.
///
/// A new kind of step needs a [`StepKind`] variant, a `Body` variant of the
/// same name with a typed `before`/`after` struct (closed with
/// `deny_unknown_fields`), and an arm in each conversion below;
/// `schemas/plan.schema.json` is then regenerated (`eksgate schema --plan`).
pub(crate) mod wire {
    use std::collections::BTreeSet;

    use crate::set::SortedSet;

    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};
    use serde_json::{json, Value};

    use super::{Action, StepKind};
    use crate::access::AuthenticationMode;
    use crate::desired::AccessSource;
    use crate::endpoint::{EndpointSettings, PublicCidrs};
    use crate::live::DnsAttribute;

    /// A step as written: `kind` says what `before` and `after` hold. No
    /// other keys (`unevaluatedProperties` sees through the kinds' `oneOf`).
    #[derive(Serialize, JsonSchema)]
    #[schemars(rename = "Step", extend("unevaluatedProperties" = false))]
    pub struct Flat {
        /// Stable and readable: `[ACCOUNT/]REGION/THING/WHAT`.
        id: String,
        #[serde(flatten)]
        body: Body,
    }

    /// The kinds of step, each with the shape of its `before` and `after`.
    /// The tags are [`StepKind`]'s names.
    #[derive(Serialize, JsonSchema)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Body {
        /// `ModifyVpcAttribute` `enableDnsSupport`.
        VpcDnsSupport(Fields<DnsSupport>),
        /// `ModifyVpcAttribute` `enableDnsHostnames`.
        VpcDnsHostnames(Fields<DnsHostnames>),
        /// `AuthorizeSecurityGroupIngress` on TCP 443 for the missing sources.
        SgHttpsIngress(Fields<HttpsSources>),
        /// `RevokeSecurityGroupIngress` (by rule id) of the exact TCP 443 rules
        /// from sources no longer declared; `after` is what the group lets in
        /// once the step ran.
        SgHttpsRevoke(Fields<HttpsSources>),
        /// Exactly one `UpdateClusterConfig` call, then a wait until
        /// `Successful`.
        EksEndpoint(Fields<Endpoint>),
        /// An update already `InProgress` in AWS, waited on by id.
        WaitUpdate(Fields<UpdateWait>),
        /// One `UpdateClusterConfig` with `accessConfig`, then a wait until
        /// `Successful`.
        EksAccessConfig(Fields<AccessMode>),
    }

    /// Everything of a written step but its id and kind; `P` is the shape
    /// of its `before` and `after`. The schema inlines it in each kind.
    #[derive(Serialize, JsonSchema)]
    struct Fields<P> {
        account: Option<String>,
        region: String,
        /// The role the step's calls are made with, when not the caller's.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schemars(with = "String")]
        role_arn: Option<String>,
        /// The cluster, for endpoint and wait steps.
        cluster: Option<String>,
        vpc_id: Option<String>,
        security_group_id: Option<String>,
        /// What the step was planned from.
        before: P,
        /// What the step leaves.
        after: P,
        /// Ids of the steps that must finish first.
        depends_on: Vec<String>,
        /// Why the step is needed and why it waits for its dependencies.
        reason: String,
        /// Turns public access off while the manifest declares no
        /// `private_access_from`: apply refuses it unless told to allow
        /// lockout.
        lockout_risk: bool,
        /// A fingerprint of the live facts the step was planned on.
        fingerprint: String,
        /// The rollout wave the step runs in.
        wave: u32,
    }

    /// `before` / `after` of a `vpc_dns_support` step.
    #[derive(Serialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct DnsSupport {
        dns_support: bool,
    }

    /// `before` / `after` of a `vpc_dns_hostnames` step.
    #[derive(Serialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct DnsHostnames {
        dns_hostnames: bool,
    }

    /// `before` / `after` of an `eks_endpoint` step. The keys are in the
    /// (sorted) order plans have always written them.
    #[derive(Serialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Endpoint {
        private_access: bool,
        public_access: bool,
        /// Absent when the manifest does not manage them.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schemars(with = "BTreeSet<String>")]
        public_access_cidrs: Option<PublicCidrs>,
    }

    impl From<&EndpointSettings> for Endpoint {
        fn from(e: &EndpointSettings) -> Self {
            Endpoint {
                private_access: e.private_access,
                public_access: e.public_access,
                public_access_cidrs: e.public_access_cidrs.clone(),
            }
        }
    }

    /// A step as read: `before` and `after` are decoded by `kind`.
    #[derive(Deserialize, JsonSchema)]
    pub struct Step {
        id: String,
        kind: StepKind,
        account: Option<String>,
        region: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role_arn: Option<String>,
        cluster: Option<String>,
        vpc_id: Option<String>,
        security_group_id: Option<String>,
        before: Value,
        after: Value,
        depends_on: Vec<String>,
        reason: String,
        lockout_risk: bool,
        fingerprint: String,
        /// Plans saved before waves existed read as wave 0.
        #[serde(default)]
        wave: u32,
    }

    /// `before` / `after` of an ingress step: the sources split by kind.
    #[derive(Default, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct HttpsSources {
        cidrs: Vec<String>,
        security_groups: Vec<String>,
        /// Left out when empty, so plans without prefix lists read as before.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        prefix_lists: Vec<String>,
    }

    impl From<&SortedSet<AccessSource>> for HttpsSources {
        fn from(set: &SortedSet<AccessSource>) -> Self {
            let mut h = HttpsSources::default();
            for s in set {
                match s {
                    AccessSource::Cidr(n) => h.cidrs.push(n.to_string()),
                    AccessSource::SecurityGroup(id) => h.security_groups.push(id.clone()),
                    AccessSource::PrefixList(id) => h.prefix_lists.push(id.clone()),
                }
            }
            h
        }
    }

    impl HttpsSources {
        pub(crate) fn into_set(self) -> Result<SortedSet<AccessSource>, String> {
            let mut out = Vec::new();
            for c in self.cidrs {
                let net = c
                    .parse()
                    .map_err(|_| format!("`{c}` is not a CIDR block"))?;
                out.push(AccessSource::Cidr(net));
            }
            out.extend(
                self.security_groups
                    .into_iter()
                    .map(AccessSource::SecurityGroup),
            );
            out.extend(self.prefix_lists.into_iter().map(AccessSource::PrefixList));
            Ok(out.into())
        }
    }

    /// `before` / `after` of an access-config step.
    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct AccessMode {
        #[schemars(with = "String", extend("enum" = ["CONFIG_MAP", "API_AND_CONFIG_MAP", "API"]))]
        authentication_mode: AuthenticationMode,
    }

    /// `before` / `after` of a wait step. The keys are in the (sorted) order
    /// plans have always written them.
    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct UpdateWait {
        /// `InProgress` before, `Successful` after.
        #[schemars(extend("enum" = ["InProgress", "Successful"]))]
        status: String,
        /// `null` when the cluster said `UPDATING` but listed no update.
        update_id: Option<String>,
    }

    fn from_value<T: serde::de::DeserializeOwned>(
        id: &str,
        field: &str,
        v: Value,
    ) -> Result<T, String> {
        serde_json::from_value(v)
            .map_err(|e| format!("step `{id}`: its `{field}` does not fit its kind: {e}"))
    }

    impl From<super::Step> for Flat {
        fn from(s: super::Step) -> Self {
            fn fields<P>(s: super::Step, before: P, after: P) -> Fields<P> {
                Fields {
                    account: s.account,
                    region: s.region,
                    role_arn: s.role_arn.as_deref().map(str::to_string),
                    cluster: s.cluster,
                    vpc_id: s.vpc_id,
                    security_group_id: s.security_group_id,
                    before,
                    after,
                    depends_on: s.depends_on,
                    reason: s.reason.to_string(),
                    lockout_risk: s.lockout_risk,
                    fingerprint: s.fingerprint,
                    wave: s.wave,
                }
            }
            let id = s.id.clone();
            let body = match s.action.clone() {
                Action::VpcDns {
                    attribute: DnsAttribute::Support,
                } => Body::VpcDnsSupport(fields(
                    s,
                    DnsSupport { dns_support: false },
                    DnsSupport { dns_support: true },
                )),
                Action::VpcDns {
                    attribute: DnsAttribute::Hostnames,
                } => Body::VpcDnsHostnames(fields(
                    s,
                    DnsHostnames {
                        dns_hostnames: false,
                    },
                    DnsHostnames {
                        dns_hostnames: true,
                    },
                )),
                Action::HttpsIngress { present, add } => Body::SgHttpsIngress(fields(
                    s,
                    HttpsSources::from(&present),
                    HttpsSources::from(&add),
                )),
                Action::Endpoint { before, after } => {
                    Body::EksEndpoint(fields(s, Endpoint::from(&before), Endpoint::from(&after)))
                }
                Action::HttpsRevoke { present, revoke } => {
                    let after: SortedSet<AccessSource> =
                        present.difference(&revoke).cloned().collect();
                    Body::SgHttpsRevoke(fields(
                        s,
                        HttpsSources::from(&present),
                        HttpsSources::from(&after),
                    ))
                }
                Action::WaitUpdate { update_id } => Body::WaitUpdate(fields(
                    s,
                    UpdateWait {
                        status: "InProgress".into(),
                        update_id: update_id.clone(),
                    },
                    UpdateWait {
                        status: "Successful".into(),
                        update_id,
                    },
                )),
                Action::AccessConfig { before, after } => Body::EksAccessConfig(fields(
                    s,
                    AccessMode {
                        authentication_mode: before,
                    },
                    AccessMode {
                        authentication_mode: after,
                    },
                )),
            };
            Flat { id, body }
        }
    }

    impl TryFrom<Step> for super::Step {
        type Error = String;

        fn try_from(w: Step) -> Result<Self, String> {
            let id = w.id.as_str();
            let need = |what: &str, v: &Option<String>| {
                v.as_ref().map(|_| ()).ok_or_else(|| {
                    format!("step `{id}` of kind `{}` has no `{what}`", w.kind.as_str())
                })
            };
            let action = match w.kind {
                StepKind::VpcDnsSupport | StepKind::VpcDnsHostnames => {
                    need("vpc_id", &w.vpc_id)?;
                    let (attribute, key) = if w.kind == StepKind::VpcDnsSupport {
                        (DnsAttribute::Support, "dns_support")
                    } else {
                        (DnsAttribute::Hostnames, "dns_hostnames")
                    };
                    if w.after != json!({ key: true }) {
                        return Err(format!(
                            "step `{id}`: its `after` must be {{\"{key}\": true}}"
                        ));
                    }
                    Action::VpcDns { attribute }
                }
                StepKind::SgHttpsIngress => {
                    need("security_group_id", &w.security_group_id)?;
                    let present: HttpsSources = from_value(id, "before", w.before.clone())?;
                    let add: HttpsSources = from_value(id, "after", w.after.clone())?;
                    Action::HttpsIngress {
                        present: present
                            .into_set()
                            .map_err(|e| format!("step `{id}`: {e}"))?,
                        add: add.into_set().map_err(|e| format!("step `{id}`: {e}"))?,
                    }
                }
                StepKind::SgHttpsRevoke => {
                    need("security_group_id", &w.security_group_id)?;
                    let present: HttpsSources = from_value(id, "before", w.before.clone())?;
                    let left: HttpsSources = from_value(id, "after", w.after.clone())?;
                    let present = present
                        .into_set()
                        .map_err(|e| format!("step `{id}`: {e}"))?;
                    let left = left.into_set().map_err(|e| format!("step `{id}`: {e}"))?;
                    if !left.is_subset(&present) {
                        return Err(format!(
                            "step `{id}`: its `after` lists sources its `before` does not"
                        ));
                    }
                    Action::HttpsRevoke {
                        revoke: present.difference(&left).cloned().collect(),
                        present,
                    }
                }
                StepKind::EksEndpoint => {
                    need("cluster", &w.cluster)?;
                    let before: EndpointSettings = from_value(id, "before", w.before.clone())?;
                    let after: EndpointSettings = from_value(id, "after", w.after.clone())?;
                    if after.both_off() {
                        return Err(format!(
                            "step `{id}` turns both public and private access off, which EKS rejects"
                        ));
                    }
                    if let Some(bad) = after
                        .public_access_cidrs
                        .iter()
                        .flatten()
                        .find(|c| c.net().is_none())
                    {
                        return Err(format!("step `{id}`: `{bad}` is not a CIDR block"));
                    }
                    Action::Endpoint { before, after }
                }
                StepKind::WaitUpdate => {
                    need("cluster", &w.cluster)?;
                    let wait: UpdateWait = from_value(id, "after", w.after.clone())?;
                    Action::WaitUpdate {
                        update_id: wait.update_id,
                    }
                }
                StepKind::EksAccessConfig => {
                    need("cluster", &w.cluster)?;
                    let before: AccessMode = from_value(id, "before", w.before.clone())?;
                    let after: AccessMode = from_value(id, "after", w.after.clone())?;
                    let (b, a) = (before.authentication_mode, after.authentication_mode);
                    match (b.rank(), a.rank()) {
                        (Some(rb), Some(ra)) if ra > rb => {}
                        _ => {
                            return Err(format!(
                                "step `{id}` moves the authentication mode from `{b}` to `{a}`, which EKS does not do"
                            ))
                        }
                    }
                    Action::AccessConfig {
                        before: b,
                        after: a,
                    }
                }
            };
            Ok(super::Step {
                id: w.id,
                action,
                account: w.account,
                region: w.region,
                role_arn: w.role_arn.map(std::sync::Arc::from),
                cluster: w.cluster,
                vpc_id: w.vpc_id,
                security_group_id: w.security_group_id,
                depends_on: w.depends_on,
                reason: w.reason.into(),
                lockout_risk: w.lockout_risk,
                fingerprint: w.fingerprint,
                wave: w.wave,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::public_cidrs;
    use crate::set::SortedSet;

    fn step(action: Action) -> Step {
        Step {
            id: "eu-west-1/x/endpoint.1".into(),
            action,
            account: None,
            region: "eu-west-1".into(),
            role_arn: None,
            cluster: Some("x".into()),
            vpc_id: Some("vpc-1".into()),
            security_group_id: Some("sg-1".into()),
            depends_on: vec![],
            reason: "".into(),
            lockout_risk: false,
            fingerprint: String::new(),
            wave: 0,
        }
    }

    #[test]
    fn every_action_round_trips_through_the_flat_json_form() {
        let actions = [
            Action::VpcDns {
                attribute: DnsAttribute::Support,
            },
            Action::VpcDns {
                attribute: DnsAttribute::Hostnames,
            },
            Action::HttpsIngress {
                present: [AccessSource::SecurityGroup("sg-a".into())].into(),
                add: [
                    AccessSource::Cidr("10.0.0.0/16".parse().unwrap()),
                    AccessSource::SecurityGroup("sg-b".into()),
                ]
                .into(),
            },
            Action::Endpoint {
                before: EndpointSettings::new(true, false)
                    .with_cidrs(Some(public_cidrs(&["0.0.0.0/0"]))),
                after: EndpointSettings::new(true, true)
                    .with_cidrs(Some(public_cidrs(&["203.0.113.0/24"]))),
            },
            Action::WaitUpdate {
                update_id: Some("u-1".into()),
            },
            Action::WaitUpdate { update_id: None },
            Action::AccessConfig {
                before: AuthenticationMode::ConfigMap,
                after: AuthenticationMode::Api,
            },
            Action::HttpsRevoke {
                present: [
                    AccessSource::SecurityGroup("sg-a".into()),
                    AccessSource::PrefixList("pl-0a1b2c3d".into()),
                    AccessSource::Cidr("10.0.0.0/16".parse().unwrap()),
                ]
                .into(),
                revoke: [
                    AccessSource::PrefixList("pl-0a1b2c3d".into()),
                    AccessSource::Cidr("10.0.0.0/16".parse().unwrap()),
                ]
                .into(),
            },
        ];
        for action in actions {
            let s = step(action);
            let json = serde_json::to_string(&s).unwrap();
            let back: Step = serde_json::from_str(&json).unwrap();
            assert_eq!(back, s, "{json}");
        }
    }

    #[test]
    fn the_json_form_is_the_one_plans_always_had() {
        let s = step(Action::HttpsIngress {
            present: SortedSet::new(),
            add: [
                AccessSource::Cidr("10.0.0.0/16".parse().unwrap()),
                AccessSource::SecurityGroup("sg-b".into()),
            ]
            .into(),
        });
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"id":"eu-west-1/x/endpoint.1","kind":"sg_https_ingress","account":null,"region":"eu-west-1","cluster":"x","vpc_id":"vpc-1","security_group_id":"sg-1","before":{"cidrs":[],"security_groups":[]},"after":{"cidrs":["10.0.0.0/16"],"security_groups":["sg-b"]},"depends_on":[],"reason":"","lockout_risk":false,"fingerprint":"","wave":0}"#
        );
    }

    #[test]
    fn a_saved_step_that_moves_the_mode_back_is_refused() {
        let mut v = serde_json::to_value(step(Action::AccessConfig {
            before: AuthenticationMode::ApiAndConfigMap,
            after: AuthenticationMode::Api,
        }))
        .unwrap();
        v["after"] = serde_json::json!({"authentication_mode": "CONFIG_MAP"});
        let err = serde_json::from_value::<Step>(v).unwrap_err().to_string();
        assert!(
            err.contains("moves the authentication mode from `API_AND_CONFIG_MAP` to `CONFIG_MAP`"),
            "{err}"
        );
    }

    #[test]
    fn steps_that_do_not_fit_their_kind_are_refused_when_read() {
        let good = serde_json::to_value(step(Action::Endpoint {
            before: EndpointSettings::new(true, false),
            after: EndpointSettings::new(true, true),
        }))
        .unwrap();
        let cases: [(&str, serde_json::Value, &str); 4] = [
            (
                "/after",
                serde_json::json!({"public_access": false, "private_access": false}),
                "turns both public and private access off",
            ),
            (
                "/after",
                serde_json::json!({"public_access": true, "private_access": true, "public_access_cidrs": ["nope"]}),
                "`nope` is not a CIDR block",
            ),
            (
                "/after",
                serde_json::json!({"cidrs": []}),
                "does not fit its kind",
            ),
            ("/cluster", serde_json::Value::Null, "has no `cluster`"),
        ];
        for (path, value, expected) in cases {
            let mut v = good.clone();
            *v.pointer_mut(path).unwrap() = value;
            let err = serde_json::from_value::<Step>(v).unwrap_err().to_string();
            assert!(err.contains(expected), "{path}: {err}");
        }
    }
}
