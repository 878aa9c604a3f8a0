//! Sentences about a plan's data: what a step does in a few words (for the
//! plan views, progress lines and reports) and a plan's one-line summary.
//! Pure functions of typed data; nothing here decides or runs anything.

use std::fmt::Write as _;

use crate::endpoint::EndpointSettings;
use crate::plan::{Action, Step, Summary};
use crate::report::{FailedWhere, Stop};
use crate::text::{join_and, mode_name, plural, string_list};

/// What the step does, in a few words.
pub fn step(step: &Step) -> String {
    let vpc = step.vpc_id.as_deref().unwrap_or("?");
    match &step.action {
        Action::VpcDns { attribute } => format!("enable `{}` on `{vpc}`", attribute.api_name()),
        Action::HttpsIngress { add, .. } => {
            // Security groups sort before CIDRs, as plans always listed them.
            let sources: Vec<String> = add.iter().map(|s| format!("`{s}`")).collect();
            format!(
                "allow TCP 443 into `{}` from {}",
                step.security_group_id.as_deref().unwrap_or("?"),
                sources.join(", ")
            )
        }
        Action::Endpoint { before, after } => {
            let mut s = format!("endpoint {}", mode_change(before, after));
            if let Some(to) = &after.public_access_cidrs {
                let from = before.public_access_cidrs.clone().unwrap_or_default();
                let _ = write!(
                    s,
                    ", public CIDRs {} → {}",
                    string_list(&from),
                    string_list(to)
                );
            }
            s
        }
        Action::WaitUpdate { update_id } => match update_id {
            Some(id) => format!("wait for update `{id}` to finish"),
            None => "wait for the cluster to leave `UPDATING`".to_string(),
        },
        Action::HttpsRevoke { revoke, .. } => {
            let sources: Vec<String> = revoke.iter().map(|s| format!("`{s}`")).collect();
            format!(
                "revoke TCP 443 into `{}` from {}",
                step.security_group_id.as_deref().unwrap_or("?"),
                sources.join(", ")
            )
        }
        Action::AccessConfig { before, after } => {
            format!("authentication mode `{before}` → `{after}`")
        }
    }
}

/// `stays public only` or `public only → public and private`.
pub(crate) fn mode_change(before: &EndpointSettings, after: &EndpointSettings) -> String {
    let name = |e: &EndpointSettings| mode_name(e.public_access, e.private_access);
    if before.mode() == after.mode() {
        format!("stays {}", name(after))
    } else {
        format!("{} → {}", name(before), name(after))
    }
}

/// `Plan: 5 steps on 3 clusters, 1 VPC change` or `No changes: ...`.
pub fn summary(s: &Summary) -> String {
    let matching = match s.clusters_without_changes {
        1 => "1 cluster matches its manifest".to_string(),
        n => format!("{n} clusters match their manifests"),
    };
    let blocked = plural(s.clusters_blocked, "cluster blocked", "clusters blocked");
    if s.steps > 0 {
        let mut m = format!(
            "Plan: {} on {}",
            plural(s.steps, "step", "steps"),
            plural(s.clusters_with_changes, "cluster", "clusters")
        );
        if s.vpc_changes > 0 {
            let _ = write!(
                m,
                ", {}",
                plural(s.vpc_changes, "VPC change", "VPC changes")
            );
        }
        if s.security_group_changes > 0 {
            let _ = write!(
                m,
                ", {}",
                plural(
                    s.security_group_changes,
                    "security group change",
                    "security group changes"
                )
            );
        }
        if s.clusters_blocked > 0 {
            let _ = write!(m, "; {blocked}");
        }
        m
    } else if s.clusters_blocked > 0 {
        if s.clusters_without_changes > 0 {
            format!("No steps: {blocked}, {matching}")
        } else {
            format!("No steps: {blocked}")
        }
    } else if s.clusters_without_changes == 0 {
        "No changes: no clusters in the manifests".to_string()
    } else {
        format!("No changes: {matching}")
    }
}

/// Why apply ran short of a step or a wave, naming the option that decides.
pub fn stop(stop: &Stop) -> String {
    match stop {
        Stop::Lockout => "refused: this step turns public access off while the manifest declares no `private_access_from`, which can lock you out of the cluster; apply with `--allow-lockout` to run it anyway".to_string(),
        Stop::LockoutRevoke => "refused: this step revokes the last TCP 443 source of a private-only cluster, which can lock you out of it; declare a source in `private_access_from`, or apply with `--allow-lockout` to run it anyway".to_string(),
        Stop::FailFast { after } => {
            format!("not started: `--fail-fast` stopped the apply after `{after}`")
        }
        Stop::Held {
            failed,
            place,
            max_failures,
        } => {
            let place = match place {
                FailedWhere::Canaries { wave } => format!("among the canaries of wave {wave}"),
                FailedWhere::Waves(waves) => match waves.as_slice() {
                    [] => "so far".to_string(),
                    [one] => format!("in wave {one}"),
                    many => {
                        let names: Vec<String> = many.iter().map(u32::to_string).collect();
                        format!("in waves {}", join_and(&names))
                    }
                },
            };
            format!(
                "{} failed {place}, more than `--max-failures {max_failures}`",
                plural(*failed, "cluster", "clusters")
            )
        }
    }
}
