//! Renders a [`Plan`] three ways from the same data: text for a terminal
//! (a diff per cluster, the steps in apply order, errors, a summary), JSON for
//! programs, and markdown for a pull-request comment.
//!
//! Pure formatting: nothing here changes the plan or decides what is safe.
//! Clusters with no changes are counted in the summary, not listed, so a
//! fleet-wide plan shows only what needs a reader's attention.

use std::collections::HashMap;
use std::fmt::Write as _;

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde::Serialize;
use similar::{ChangeTag, TextDiff};

use super::describe;
use super::order::{has_waves, sorted_clusters};
use super::paint;
use crate::diagnostic::Diagnostic;
use crate::plan::{ClusterPlan, ClusterSettings, Finding, Plan, PlanStatus, Step, Summary};
use crate::text::{painted, push_string_list};

/// The plan as a person reads it in a terminal. Colour only when `color`.
pub fn render_text(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    // Writing into a `String` cannot fail.
    let _ = write_text(&mut out, plan, color);
    out
}

/// [`render_text`] written piece by piece into `out`, so a large plan's
/// text is never held whole (10,000 clusters make 10 MB of it). The
/// clusters, then the findings, are rendered a part at a time on several
/// threads and written in order (see [`write_parts`]).
pub fn write_text(out: &mut impl std::fmt::Write, plan: &Plan, color: bool) -> std::fmt::Result {
    let ordered = plan.ordered_steps();
    let number = step_numbers(&ordered);
    let text = ClusterText {
        ordered: &ordered,
        number: &number,
        waves: has_waves(plan),
        color,
    };
    let listed: Vec<&ClusterPlan> = sorted_clusters(plan)
        .into_iter()
        .filter(|c| c.status != PlanStatus::NoChanges)
        .collect();
    write_parts(out, &listed, |start, part| {
        // The wave of the cluster before: a heading comes where it changes.
        let before = start.checked_sub(1).map(|i| listed[i].wave);
        let mut s = String::new();
        text.write(&mut s, part, before)?;
        Ok(s)
    })?;
    // Findings too: a fleet that warns of each cluster has as many of them.
    write_parts(out, &plan.findings, |_, part| {
        let mut s = String::new();
        for finding in part {
            s.push_str(&finding_diagnostic(finding).render(color));
            s.push('\n');
        }
        Ok(s)
    })?;
    writeln!(
        out,
        "{}",
        paint(color, "1", &describe::summary(&plan.summary()))
    )?;
    Ok(())
}

/// Items (clusters, findings) one thread renders at a time.
const PART: usize = 256;
/// The most threads that render at once (the calling one included).
const MAX_RENDERERS: usize = 4;
/// Parts a helper renders ahead of the writer, so the text held at once
/// stays a few parts whatever the plan's size.
const AHEAD: usize = 2;

/// Writes `items` in order, rendered [`PART`] at a time on up to
/// [`MAX_RENDERERS`] threads: `render(start, part)` renders the part that
/// begins at `items[start]`. The calling thread renders every n-th part
/// and writes each in turn; helper thread k renders the parts at positions
/// k, k + n, ..., each at most [`AHEAD`] parts ahead of the writer.
///
/// Threads of their own, not the rayon pool's: a parallel iterator per
/// batch of parts, asked from outside the pool, was rendered by one pool
/// thread while the other slept through it (a 10,000-cluster plan spent
/// 25–35 ms rendering on one of two cores).
fn write_parts<T: Sync>(
    out: &mut impl std::fmt::Write,
    items: &[T],
    render: impl Fn(usize, &[T]) -> Result<String, std::fmt::Error> + Sync,
) -> std::fmt::Result {
    let parts: Vec<(usize, &[T])> = items
        .chunks(PART)
        .enumerate()
        .map(|(i, part)| (i * PART, part))
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_RENDERERS)
        .min(parts.len());
    if threads <= 1 {
        for (start, part) in parts {
            out.write_str(&render(start, part)?)?;
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        // Helper k sends its parts, in order, on channel k - 1. A writer
        // that stops early drops the receivers, which ends the helpers.
        let mut helpers = Vec::with_capacity(threads - 1);
        for k in 1..threads {
            let (tx, rx) = std::sync::mpsc::sync_channel(AHEAD);
            let (parts, render) = (&parts, &render);
            scope.spawn(move || {
                for &(start, part) in parts.iter().skip(k).step_by(threads) {
                    if tx.send(render(start, part)).is_err() {
                        return;
                    }
                }
            });
            helpers.push(rx);
        }
        for (i, &(start, part)) in parts.iter().enumerate() {
            let text = match i % threads {
                0 => render(start, part)?,
                k => helpers[k - 1].recv().map_err(|_| std::fmt::Error)??,
            };
            out.write_str(&text)?;
        }
        Ok(())
    })
}

/// What the text of a cluster needs of the whole plan.
struct ClusterText<'a> {
    ordered: &'a [&'a Step],
    number: &'a HashMap<&'a str, usize>,
    waves: bool,
    color: bool,
}

impl ClusterText<'_> {
    /// The text of `clusters` (in order, none without changes); `before` is
    /// the wave of the cluster listed before them.
    fn write(
        &self,
        out: &mut impl std::fmt::Write,
        clusters: &[&ClusterPlan],
        before: Option<u32>,
    ) -> std::fmt::Result {
        let (ordered, number, waves, color) = (self.ordered, self.number, self.waves, self.color);
        let mut heading = before;
        for &cluster in clusters {
            if waves && heading != Some(cluster.wave) {
                heading = Some(cluster.wave);
                writeln!(
                    out,
                    "{}\n",
                    paint(color, "1;36", &format!("== wave {} ==", cluster.wave))
                )?;
            }
            // Written in place, not built as strings first: a 10,000-cluster
            // plan is 160,000 lines.
            painted(
                out,
                color.then_some("1"),
                format_args!("{}: {}", cluster_title(cluster), status_text(cluster)),
            )?;
            out.write_char('\n')?;
            for (tag, line) in diff_lines(cluster) {
                out.write_str("    ")?;
                let code = match tag {
                    '+' => Some("32"),
                    '-' => Some("31"),
                    _ => None,
                };
                painted(out, code.filter(|_| color), format_args!("{tag}{line}"))?;
                out.write_char('\n')?;
            }
            // The cluster's steps in the plan's order, found through their
            // numbers: scanning every step for each cluster made a
            // 10,000-cluster plan spend seconds here.
            let mut mine: Vec<usize> = cluster
                .steps
                .iter()
                .filter_map(|id| number.get(id.as_str()).map(|n| n - 1))
                .collect();
            mine.sort_unstable();
            mine.dedup();
            for step in mine.into_iter().map(|i| ordered[i]) {
                out.write_char('\n')?;
                let n = number.get(step.id.as_str()).copied().unwrap_or(0);
                // A shared step runs with the lowest wave that needs it.
                let tag = if waves && step.wave != cluster.wave {
                    format!(" (wave {})", step.wave)
                } else {
                    String::new()
                };
                out.write_str("  ")?;
                painted(
                    out,
                    color.then_some("1"),
                    format_args!("{n}. {}{tag}", step.id),
                )?;
                out.write_char('\n')?;
                writeln!(out, "     {}", describe::step(step))?;
                if !step.depends_on.is_empty() {
                    let mut deps: Vec<(usize, &str)> = step
                        .depends_on
                        .iter()
                        .map(|d| (number.get(d.as_str()).copied().unwrap_or(0), d.as_str()))
                        .collect();
                    deps.sort_unstable();
                    out.write_str("     waits for: ")?;
                    for (i, (n, d)) in deps.iter().enumerate() {
                        let sep = if i == 0 { "" } else { ", " };
                        write!(out, "{sep}{n}. {d}")?;
                    }
                    out.write_char('\n')?;
                }
                writeln!(out, "     why: {}", step.reason)?;
                if step.lockout_risk {
                    let text = if step.kind() == crate::plan::StepKind::SgHttpsRevoke {
                        revoke_lockout_text()
                    } else {
                        lockout_text()
                    };
                    writeln!(out, "     {}", paint(color, "1;33", &text))?;
                }
            }
            out.write_char('\n')?;
        }
        Ok(())
    }
}

/// What the JSON output holds: the plan itself plus its summary. `Plan`
/// ignores the extra `summary` key, so this parses back into a `Plan`.
/// `schemas/plan.schema.json` is derived from this type.
#[derive(Serialize, JsonSchema)]
#[schemars(
    title = "eksgate plan",
    description = "The output of `eksgate plan --format json` (format_version 1): the steps apply would run, one entry per declared cluster with its live, desired and planned settings, the findings, and a summary.",
    deny_unknown_fields
)]
struct JsonPlan<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    summary: JsonSummary,
}

/// The counts and the summary line, as the JSON output has always held them.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Summary", deny_unknown_fields)]
struct JsonSummary {
    #[serde(flatten)]
    counts: Summary,
    /// The plan's last line, as the text output prints it.
    message: String,
}

/// The JSON schema of `--format json`, pretty-printed with a final newline:
/// the exact text of `schemas/plan.schema.json`. It describes what eksgate
/// writes (schemars' serialize contract), so every field it always writes is
/// required.
pub fn json_schema() -> String {
    let generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let schema = generator.into_root_schema_for::<JsonPlan<'static>>();
    // Serialising a `serde_json::Value`-backed schema cannot fail.
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// The plan as pretty JSON, keys in a fixed order.
pub fn render_json(plan: &Plan) -> String {
    let doc = JsonPlan {
        plan,
        summary: JsonSummary {
            message: describe::summary(&plan.summary()),
            counts: plan.summary(),
        },
    };
    // A plan is strings, bools and JSON values: serialising cannot fail.
    let mut s = serde_json::to_string_pretty(&doc)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the plan: {e}\"}}"));
    s.push('\n');
    s
}

/// The plan as a pull-request comment (GitHub-flavoured markdown).
pub fn render_markdown(plan: &Plan) -> String {
    let counts = plan.summary();
    let summary = describe::summary(&counts);
    let waves = has_waves(plan);
    let mut out = String::new();
    let _ = writeln!(out, "## eksgate plan\n");
    let _ = writeln!(out, "**{summary}**\n");
    for cluster in sorted_clusters(plan) {
        if cluster.status == PlanStatus::NoChanges {
            continue;
        }
        let wave = if waves {
            format!(" (wave {})", cluster.wave)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "### `{}` — {}{wave}\n",
            cluster_title(cluster),
            status_text(cluster)
        );
        let lines = diff_lines(cluster);
        if !lines.is_empty() {
            let _ = writeln!(out, "```diff");
            for (tag, line) in lines {
                let _ = writeln!(out, "{tag}{line}");
            }
            let _ = writeln!(out, "```\n");
        }
    }
    let ordered = plan.ordered_steps();
    if !ordered.is_empty() {
        let number = step_numbers(&ordered);
        let _ = writeln!(out, "### Steps\n");
        if waves {
            let _ = writeln!(out, "| # | Wave | Step | Change | Waits for | Why |");
            let _ = writeln!(out, "|---|------|------|--------|-----------|-----|");
        } else {
            let _ = writeln!(out, "| # | Step | Change | Waits for | Why |");
            let _ = writeln!(out, "|---|------|--------|-----------|-----|");
        }
        for (i, step) in ordered.iter().enumerate() {
            let mut deps: Vec<usize> = step
                .depends_on
                .iter()
                .filter_map(|d| number.get(d.as_str()).copied())
                .collect();
            deps.sort_unstable();
            let waits: Vec<String> = deps.iter().map(|n| n.to_string()).collect();
            let mut change = describe::step(step);
            if step.lockout_risk {
                change.push_str(" **(lockout risk)**");
            }
            let wave = if waves {
                format!(" {} |", step.wave)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} |{wave} `{}` | {} | {} | {} |",
                i + 1,
                cell(&step.id),
                cell(&change),
                cell(&waits.join(", ")),
                cell(&step.reason)
            );
        }
        out.push('\n');
        let revoke = |s: &&crate::plan::Step| s.kind() == crate::plan::StepKind::SgHttpsRevoke;
        let risky = || plan.steps.iter().filter(|s| s.lockout_risk);
        if counts.lockout_risks > 0 && risky().any(|s| !revoke(&s)) {
            let _ = writeln!(out, "> [!WARNING]\n> {}\n", lockout_text());
        }
        if risky().any(|s| revoke(&s)) {
            let _ = writeln!(out, "> [!WARNING]\n> {}\n", revoke_lockout_text());
        }
        out.push_str(&super::mermaid::flowchart_details(plan));
        out.push('\n');
    }
    for (title, word, findings) in [
        ("Errors", "error", plan.blocking().collect::<Vec<_>>()),
        ("Warnings", "warning", plan.warnings().collect()),
    ] {
        if findings.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {title}\n");
        for f in findings {
            let _ = writeln!(out, "- **{word}** `{}`: {}", f.code.as_str(), f.message);
            if let Some(h) = &f.hint {
                let _ = writeln!(out, "  hint: {h}");
            }
        }
        out.push('\n');
    }
    // One trailing newline, however the last section ended.
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

/// Each step's number in apply order, from 1, by id: how the views refer to
/// the steps a step waits for.
fn step_numbers<'a>(ordered: &[&'a Step]) -> HashMap<&'a str, usize> {
    ordered
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i + 1))
        .collect()
}

/// `REGION/NAME`, with the account when the manifest pins one.
fn cluster_title(c: &ClusterPlan) -> String {
    match &c.key.account {
        Some(acc) => format!("{} (account {acc})", c.key),
        None => c.key.to_string(),
    }
}

fn status_text(c: &ClusterPlan) -> String {
    match c.status {
        PlanStatus::Blocked => "blocked".to_string(),
        PlanStatus::NoChanges => "no changes".to_string(),
        PlanStatus::Changes => match c.steps.len() {
            1 => "1 step".to_string(),
            n => format!("{n} steps"),
        },
    }
}

fn revoke_lockout_text() -> String {
    "lockout risk: this revokes the last TCP 443 source of a private-only cluster; apply refuses this without `--allow-lockout`".to_string()
}

fn lockout_text() -> String {
    "lockout risk: public access goes off and no `private_access_from` is declared; apply refuses this without `--allow-lockout`".to_string()
}

/// The settings as `key = value` lines, the form the manifests use: one
/// key each, in a fixed order.
fn settings_lines(s: &ClusterSettings) -> Vec<String> {
    // Each line written in place: a 10,000-cluster plan renders 100,000
    // of them.
    let line = |key: &str, value: &dyn Fn(&mut String)| {
        let mut line = String::with_capacity(48);
        line.push_str(key);
        line.push_str(" = ");
        value(&mut line);
        line
    };
    let mut lines = Vec::with_capacity(5);
    lines.push(line("public_access", &|l| {
        l.push_str(bool_text(s.public_access))
    }));
    lines.push(line("private_access", &|l| {
        l.push_str(bool_text(s.private_access))
    }));
    if let Some(c) = &s.public_access_cidrs {
        lines.push(line("public_access_cidrs", &|l| push_string_list(l, c)));
    }
    lines.push(line("private_access_from", &|l| {
        push_string_list(l, &s.private_access_from)
    }));
    // Which of them eksgate added (their rules carry its description).
    if !s.managed_by_eksgate.is_empty() {
        lines.push(line("managed_by_eksgate", &|l| {
            push_string_list(l, &s.managed_by_eksgate)
        }));
    }
    lines
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// The live settings against the planned ones, every line kept: four lines
/// need no hunks. Empty when there is nothing to compare.
fn diff_lines(c: &ClusterPlan) -> Vec<(char, String)> {
    let (Some(live), Some(after)) = (&c.live, &c.after) else {
        return Vec::new();
    };
    let (old, new) = (settings_lines(live), settings_lines(after));
    if same_keys(&old, &new) {
        keyed_diff(old, new)
    } else {
        text_diff(&old, &new)
    }
}

/// The line diff of `old` and `new` as `similar` gives it.
fn text_diff(old: &[String], new: &[String]) -> Vec<(char, String)> {
    let (old, new) = (old.join("\n") + "\n", new.join("\n") + "\n");
    TextDiff::from_lines(&old, &new)
        .iter_all_changes()
        .map(|ch| {
            let tag = match ch.tag() {
                ChangeTag::Delete => '-',
                ChangeTag::Insert => '+',
                ChangeTag::Equal => ' ',
            };
            (tag, ch.value().trim_end_matches('\n').to_string())
        })
        .collect()
}

/// Whether `old` and `new` have the same keys in the same order (almost
/// every cluster): a line can then only equal the line of its own key.
fn same_keys(old: &[String], new: &[String]) -> bool {
    fn key(line: &str) -> &str {
        line.split_once(" = ").map_or(line, |(key, _)| key)
    }
    old.len() == new.len() && old.iter().zip(new).all(|(o, n)| key(o) == key(n))
}

/// The diff of `old` and `new` with the same keys (see [`same_keys`]),
/// without a diff algorithm: each run of changed lines is its old lines,
/// then its new ones. (A 10,000-cluster plan spent a fifth of its rendering
/// in the diff algorithm.) The lines are moved, not copied.
fn keyed_diff(old: Vec<String>, new: Vec<String>) -> Vec<(char, String)> {
    let mut out = Vec::with_capacity(old.len() + 2);
    let mut run: Vec<String> = Vec::new();
    for (o, n) in old.into_iter().zip(new) {
        if o == n {
            out.extend(run.drain(..).map(|l| ('+', l)));
            out.push((' ', o));
        } else {
            out.push(('-', o));
            run.push(n);
        }
    }
    out.extend(run.drain(..).map(|l| ('+', l)));
    out
}

fn finding_diagnostic(f: &Finding) -> Diagnostic {
    let d = if f.blocks() {
        Diagnostic::error(f.message.clone())
    } else {
        Diagnostic::warning(f.message.clone())
    };
    d.maybe_hint(f.hint.clone())
}

/// Markdown table cells cannot hold `|` or line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
pub(crate) mod tests {

    use super::*;
    use crate::desired::{AccessSource, ClusterKey, Desired, DesiredCluster, Origin};
    use crate::endpoint::{public_cidrs, EndpointSettings as EndpointAccess};
    use crate::live::{
        ClusterObservation, ClusterStatus, Live, LiveCluster, LiveSecurityGroup, LiveVpc,
        SecurityGroupKey, VpcKey,
    };
    use crate::plan::plan;
    use crate::set::SortedSet;

    #[test]
    fn the_keyed_diff_is_the_text_diff_for_every_pattern_of_changes() {
        // Every number of keys a cluster's settings have (4 or 5, when
        // both sides have the same), every set of changed lines.
        for n in 1..=6 {
            for changed in 0u32..(1 << n) {
                let old: Vec<String> = (0..n).map(|k| format!("key{k} = old")).collect();
                let new: Vec<String> = (0..n)
                    .map(|k| {
                        let v = if changed & (1 << k) != 0 {
                            "new"
                        } else {
                            "old"
                        };
                        format!("key{k} = {v}")
                    })
                    .collect();
                assert!(same_keys(&old, &new));
                assert_eq!(
                    keyed_diff(old.clone(), new.clone()),
                    text_diff(&old, &new),
                    "{n} keys, changed {changed:b}"
                );
            }
        }
        // Different keys: no keyed diff.
        let four = ["a = 1", "b = 1", "c = 1", "d = 1"].map(String::from);
        let five = ["a = 1", "b = 1", "x = 1", "c = 1", "d = 1"].map(String::from);
        assert!(!same_keys(&four, &five));
        assert!(!same_keys(&four, &five[..4]));
    }

    fn mode(public: bool, private: bool) -> EndpointAccess {
        EndpointAccess::new(public, private)
    }

    fn key(region: &str, name: &str) -> ClusterKey {
        ClusterKey {
            account: None,
            region: region.into(),
            name: name.into(),
        }
    }

    fn want(region: &str, name: &str, m: EndpointAccess) -> DesiredCluster {
        DesiredCluster {
            key: key(region, name),
            role_arn: None,
            endpoint: m,
            private_access_from: SortedSet::new(),
            wave: 0,
            owner_acknowledged: false,
            private_access_from_exclusive: false,
            public_access_prefix_lists: Default::default(),
            origin: Origin {
                file: "prod.toml".into(),
                line: 7,
                column: 1,
            },
            access: Default::default(),
        }
    }

    fn found(region: &str, name: &str, m: EndpointAccess) -> LiveCluster {
        LiveCluster {
            network: Default::default(),
            key: key(region, name),
            arn: format!("arn:aws:eks:{region}:111122223333:cluster/{name}"),
            status: ClusterStatus::Active,
            vpc_id: "vpc-0a1b".into(),
            security_group_id: Some("sg-0c1d".into()),
            endpoint: m.with_cidrs(Some(public_cidrs(&["0.0.0.0/0"]))),
            tags: Default::default(),
            updates_in_progress: Vec::new(),
            authentication_mode: None,
        }
    }

    fn world(
        pairs: Vec<(DesiredCluster, ClusterObservation)>,
        dns_hostnames: bool,
    ) -> (Desired, Live) {
        let mut live = Live::default();
        live.vpcs.insert(
            VpcKey {
                account: None,
                region: "eu-west-1".into(),
                vpc_id: "vpc-0a1b".into(),
            },
            LiveVpc {
                cidr_blocks: Vec::new(),
                dns_support: true,
                dns_hostnames,
                dhcp_options_id: "dopt-0e0f".into(),
                domain_name_servers: vec!["AmazonProvidedDNS".into()],
            },
        );
        live.security_groups.insert(
            SecurityGroupKey {
                account: None,
                region: "eu-west-1".into(),
                group_id: "sg-0c1d".into(),
            },
            LiveSecurityGroup {
                https_ingress: [AccessSource::Cidr("10.0.0.0/16".parse().unwrap())].into(),
                ..LiveSecurityGroup::default()
            },
        );
        let mut desired = Desired {
            clusters: Vec::new(),
            digest: "sha256:0123".into(),
            allow_unverified_access: false,
        };
        for (d, o) in pairs {
            live.clusters.insert(d.key.clone(), o);
            desired.clusters.push(d);
        }
        (desired, live)
    }

    /// Two clusters sharing a VPC, one going private only, one changing its
    /// CIDRs behind an update in progress; one unchanged; one missing.
    pub(crate) fn typical() -> Plan {
        let mut payments = want("eu-west-1", "payments", mode(false, true));
        payments.private_access_from = [
            AccessSource::Cidr("10.20.0.0/16".parse().unwrap()),
            AccessSource::SecurityGroup("sg-0bastion".into()),
        ]
        .into();
        let mut orders = want("eu-west-1", "orders", mode(true, true));
        orders.endpoint.public_access_cidrs = Some(public_cidrs(&["203.0.113.0/24"]));
        let mut orders_live = found("eu-west-1", "orders", mode(true, true));
        orders_live.updates_in_progress = vec!["9f2c".into()];
        let (d, l) = world(
            vec![
                (
                    payments,
                    ClusterObservation::Found(found("eu-west-1", "payments", mode(true, false))),
                ),
                (orders, ClusterObservation::Found(orders_live)),
                (
                    want("eu-west-1", "logs", mode(true, false)),
                    ClusterObservation::Found(found("eu-west-1", "logs", mode(true, false))),
                ),
                (
                    want("us-east-1", "legacy", mode(true, true)),
                    ClusterObservation::NotFound,
                ),
            ],
            false,
        );
        plan(&d, &l)
    }

    /// Three clusters over two waves sharing a VPC and a security group; in
    /// wave 1 `payments` goes private only behind an update in progress.
    pub(crate) fn waved() -> Plan {
        let mut payments = want("eu-west-1", "payments", mode(false, true));
        payments.wave = 1;
        payments.private_access_from = [AccessSource::SecurityGroup("sg-0bastion".into())].into();
        let mut payments_live = found("eu-west-1", "payments", mode(true, false));
        payments_live.updates_in_progress = vec!["7a1e".into()];
        let orders = want("eu-west-1", "orders", mode(true, true));
        let mut ledger = want("eu-west-1", "ledger", mode(true, true));
        ledger.wave = 2;
        let (d, l) = world(
            vec![
                (payments, ClusterObservation::Found(payments_live)),
                (
                    orders,
                    ClusterObservation::Found(found("eu-west-1", "orders", mode(true, false))),
                ),
                (
                    ledger,
                    ClusterObservation::Found(found("eu-west-1", "ledger", mode(true, false))),
                ),
            ],
            false,
        );
        plan(&d, &l)
    }

    /// `n` clusters in three waves going private only in one shared VPC and
    /// security group, and one blocked: a plan of `2n + 2` steps.
    pub(crate) fn fleet(n: usize) -> Plan {
        let mut pairs = Vec::new();
        for i in 0..n {
            let name = format!("c{i:03}");
            let mut w = want("eu-west-1", &name, mode(false, true));
            w.wave = (i % 3) as u32;
            w.private_access_from = [AccessSource::Cidr(
                format!("10.{}.0.0/16", i % 250).parse().unwrap(),
            )]
            .into();
            pairs.push((
                w,
                ClusterObservation::Found(found("eu-west-1", &name, mode(true, false))),
            ));
        }
        pairs.push((
            want("us-east-1", "gone", mode(true, true)),
            ClusterObservation::NotFound,
        ));
        let (d, l) = world(pairs, false);
        plan(&d, &l)
    }

    /// Two clusters moving from authentication mode `CONFIG_MAP`: `payments`
    /// then goes private only (its access entries are checked before public
    /// access goes off), `orders` only turns private access on.
    pub(crate) fn moving_mode() -> Plan {
        use crate::access::AuthenticationMode;
        let mut payments = want("eu-west-1", "payments", mode(false, true));
        payments.access.authentication_mode = Some(AuthenticationMode::ApiAndConfigMap);
        payments.access.principals = ["arn:aws:iam::111122223333:role/bastion".to_string()].into();
        let mut payments_live = found("eu-west-1", "payments", mode(true, false));
        payments_live.authentication_mode = Some(AuthenticationMode::ConfigMap);
        let mut orders = want("eu-west-1", "orders", mode(true, true));
        orders.access.authentication_mode = Some(AuthenticationMode::Api);
        let mut orders_live = found("eu-west-1", "orders", mode(true, false));
        orders_live.authentication_mode = Some(AuthenticationMode::ApiAndConfigMap);
        let (d, l) = world(
            vec![
                (payments, ClusterObservation::Found(payments_live)),
                (orders, ClusterObservation::Found(orders_live)),
            ],
            true,
        );
        plan(&d, &l)
    }

    fn no_changes() -> Plan {
        let (d, l) = world(
            vec![
                (
                    want("eu-west-1", "logs", mode(true, false)),
                    ClusterObservation::Found(found("eu-west-1", "logs", mode(true, false))),
                ),
                (
                    want("eu-west-1", "orders", mode(true, true)),
                    ClusterObservation::Found(found("eu-west-1", "orders", mode(true, true))),
                ),
            ],
            true,
        );
        plan(&d, &l)
    }

    #[test]
    fn text_of_a_typical_plan() {
        insta::assert_snapshot!(render_text(&typical(), false), @r#"
        eu-west-1/orders: 3 steps
             public_access = true
             private_access = true
            -public_access_cidrs = ["0.0.0.0/0"]
            +public_access_cidrs = ["203.0.113.0/24"]
             private_access_from = ["10.0.0.0/16"]

          1. eu-west-1/vpc-0a1b/dns_hostnames
             enable `enableDnsHostnames` on `vpc-0a1b`
             why: private access on `orders` and `payments` needs `enableDnsHostnames` in `vpc-0a1b`, or the endpoint's name does not resolve there

          2. eu-west-1/orders/wait.9f2c
             wait for update `9f2c` to finish
             why: update `9f2c` is already in progress and EKS runs one update at a time per cluster, so the endpoint change waits for it

          3. eu-west-1/orders/endpoint.1
             endpoint stays public and private, public CIDRs ["0.0.0.0/0"] → ["203.0.113.0/24"]
             waits for: 1. eu-west-1/vpc-0a1b/dns_hostnames, 2. eu-west-1/orders/wait.9f2c
             why: set the public access CIDRs the manifest lists; it waits for the update already in progress and the VPC DNS settings private access needs

        eu-west-1/payments: 4 steps
            -public_access = true
            -private_access = false
            +public_access = false
            +private_access = true
             public_access_cidrs = ["0.0.0.0/0"]
            -private_access_from = ["10.0.0.0/16"]
            +private_access_from = ["sg-0bastion", "10.0.0.0/16", "10.20.0.0/16"]

          1. eu-west-1/vpc-0a1b/dns_hostnames
             enable `enableDnsHostnames` on `vpc-0a1b`
             why: private access on `orders` and `payments` needs `enableDnsHostnames` in `vpc-0a1b`, or the endpoint's name does not resolve there

          4. eu-west-1/sg-0c1d/https_ingress
             allow TCP 443 into `sg-0c1d` from `sg-0bastion`, `10.20.0.0/16`
             why: the `private_access_from` sources of `payments` must reach the private endpoint on TCP 443 before public access is turned off

          5. eu-west-1/payments/endpoint.1
             endpoint public only → public and private
             waits for: 1. eu-west-1/vpc-0a1b/dns_hostnames
             why: turn private access on first, so the cluster stays reachable while public access is turned off in the next step; it waits for the VPC DNS settings private access needs

          6. eu-west-1/payments/endpoint.2
             endpoint public and private → private only
             waits for: 4. eu-west-1/sg-0c1d/https_ingress, 5. eu-west-1/payments/endpoint.1
             why: make the endpoint private only, as the manifest asks; it waits for the previous endpoint update to be `Successful` and the TCP 443 ingress for `private_access_from`

        us-east-1/legacy: blocked

        warning: public access of `eu-west-1/payments` goes off, and `private_access_principals` names nobody who must still use its Kubernetes API
        hint: list the IAM roles of your bastions, CI and admins in `private_access_principals`, so eksgate checks their access entries before public access goes off

        error: cluster `legacy` not found in region `us-east-1`
        hint: check the region, the account the credentials resolve to and the cluster name (declared at prod.toml:7:1)

        Plan: 6 steps on 2 clusters, 1 VPC change, 1 security group change; 1 cluster blocked
        "#);
    }

    /// Findings are rendered a part at a time on several threads, each
    /// helper ahead of the writer: more of them than every thread's parts
    /// several times over still come out once each, in the plan's order.
    #[test]
    fn many_findings_come_out_in_the_plans_order() {
        let mut plan = typical();
        let n = 3 * MAX_RENDERERS * (AHEAD + 1) * PART + 7;
        plan.findings = (0..n)
            .map(|i| Finding {
                cluster: key("eu-west-1", &format!("c{i}")),
                code: crate::plan::FindingCode::NoPrivateAccessPrincipals,
                severity: crate::plan::Severity::Warn,
                message: format!("finding {i}"),
                hint: None,
            })
            .collect();
        let text = render_text(&plan, false);
        let seen: Vec<usize> = text
            .lines()
            .filter_map(|l| l.strip_prefix("warning: finding ")?.parse().ok())
            .collect();
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
    }

    /// A wave's heading comes once, where the wave changes, however the
    /// clusters fall into the parts rendered on different cores.
    #[test]
    fn a_wave_is_headed_once_across_the_parts() {
        let mut plan = typical();
        let template = plan
            .clusters
            .iter()
            .find(|c| c.status == PlanStatus::Changes)
            .cloned()
            .unwrap();
        // Parts of `PART` clusters: the wave changes inside the second.
        plan.clusters = (0..2 * PART + 100)
            .map(|i| {
                let mut c = template.clone();
                c.key = key("eu-west-1", &format!("c{i:04}"));
                c.wave = u32::from(i >= PART + 44);
                c
            })
            .collect();
        let text = render_text(&plan, false);
        let headings: Vec<&str> = text.lines().filter(|l| l.starts_with("== wave")).collect();
        assert_eq!(headings, ["== wave 0 ==", "== wave 1 =="]);
    }

    #[test]
    fn text_when_nothing_changes() {
        insta::assert_snapshot!(render_text(&no_changes(), false), @"No changes: 2 clusters match their manifests");
    }

    #[test]
    fn markdown_of_a_typical_plan() {
        insta::assert_snapshot!(render_markdown(&typical()), @r#"
        ## eksgate plan

        **Plan: 6 steps on 2 clusters, 1 VPC change, 1 security group change; 1 cluster blocked**

        ### `eu-west-1/orders` — 3 steps

        ```diff
         public_access = true
         private_access = true
        -public_access_cidrs = ["0.0.0.0/0"]
        +public_access_cidrs = ["203.0.113.0/24"]
         private_access_from = ["10.0.0.0/16"]
        ```

        ### `eu-west-1/payments` — 4 steps

        ```diff
        -public_access = true
        -private_access = false
        +public_access = false
        +private_access = true
         public_access_cidrs = ["0.0.0.0/0"]
        -private_access_from = ["10.0.0.0/16"]
        +private_access_from = ["sg-0bastion", "10.0.0.0/16", "10.20.0.0/16"]
        ```

        ### `us-east-1/legacy` — blocked

        ### Steps

        | # | Step | Change | Waits for | Why |
        |---|------|--------|-----------|-----|
        | 1 | `eu-west-1/vpc-0a1b/dns_hostnames` | enable `enableDnsHostnames` on `vpc-0a1b` |  | private access on `orders` and `payments` needs `enableDnsHostnames` in `vpc-0a1b`, or the endpoint's name does not resolve there |
        | 2 | `eu-west-1/orders/wait.9f2c` | wait for update `9f2c` to finish |  | update `9f2c` is already in progress and EKS runs one update at a time per cluster, so the endpoint change waits for it |
        | 3 | `eu-west-1/orders/endpoint.1` | endpoint stays public and private, public CIDRs ["0.0.0.0/0"] → ["203.0.113.0/24"] | 1, 2 | set the public access CIDRs the manifest lists; it waits for the update already in progress and the VPC DNS settings private access needs |
        | 4 | `eu-west-1/sg-0c1d/https_ingress` | allow TCP 443 into `sg-0c1d` from `sg-0bastion`, `10.20.0.0/16` |  | the `private_access_from` sources of `payments` must reach the private endpoint on TCP 443 before public access is turned off |
        | 5 | `eu-west-1/payments/endpoint.1` | endpoint public only → public and private | 1 | turn private access on first, so the cluster stays reachable while public access is turned off in the next step; it waits for the VPC DNS settings private access needs |
        | 6 | `eu-west-1/payments/endpoint.2` | endpoint public and private → private only | 4, 5 | make the endpoint private only, as the manifest asks; it waits for the previous endpoint update to be `Successful` and the TCP 443 ingress for `private_access_from` |

        <details>
        <summary>Step graph (6 steps)</summary>

        ```mermaid
        flowchart LR
          s1["1. eu-west-1/vpc-0a1b/dns_hostnames<br/>vpc_dns_hostnames<br/>enableDnsHostnames on vpc-0a1b"]
          subgraph c1["eu-west-1/orders"]
            s2["2. eu-west-1/orders/wait.9f2c<br/>wait_update<br/>wait for update 9f2c"]
            s3["3. eu-west-1/orders/endpoint.1<br/>eks_endpoint<br/>stays public and private, public CIDRs 1 → 1"]
          end
          subgraph c2["eu-west-1/payments"]
            s4["4. eu-west-1/sg-0c1d/https_ingress<br/>sg_https_ingress<br/>443 into sg-0c1d from 2 sources"]
            s5["5. eu-west-1/payments/endpoint.1<br/>eks_endpoint<br/>public only → public and private"]
            s6["6. eu-west-1/payments/endpoint.2<br/>eks_endpoint<br/>public and private → private only"]
          end
          b3["us-east-1/legacy<br/>blocked: cluster_not_found"]
          s1 -->|"shared VPC: DNS before private"| s3
          s2 -->|"wait for running update"| s3
          s1 -->|"shared VPC: DNS before private"| s5
          s4 -->|"443 before public off"| s6
          s5 -->|"private Successful before public off"| s6
          classDef blocked fill:#eeeeee,stroke:#999999,color:#666666,stroke-dasharray:4 3
          classDef risk stroke:#cc0000,stroke-width:2px
          class b3 blocked
        ```

        </details>

        ### Errors

        - **error** `cluster_not_found`: cluster `legacy` not found in region `us-east-1`
          hint: check the region, the account the credentials resolve to and the cluster name (declared at prod.toml:7:1)

        ### Warnings

        - **warning** `no_private_access_principals`: public access of `eu-west-1/payments` goes off, and `private_access_principals` names nobody who must still use its Kubernetes API
          hint: list the IAM roles of your bastions, CI and admins in `private_access_principals`, so eksgate checks their access entries before public access goes off
        "#);
    }

    #[test]
    fn json_parses_back_into_the_plan() {
        let plan = typical();
        let json = render_json(&plan);
        let back: Plan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plan);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["format_version"], 1);
        assert_eq!(
            value["summary"]["message"],
            "Plan: 6 steps on 2 clusters, 1 VPC change, 1 security group change; 1 cluster blocked"
        );
        let keys: Vec<&str> = value["steps"][0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(keys.starts_with(&["account", "after", "before", "cluster", "depends_on"]));
        // Stable: rendering twice gives the same bytes.
        assert_eq!(json, render_json(&back));
    }

    /// The exact text of `--format json`, key order included: programs and
    /// policy rules read it, and `schemas/plan.schema.json` describes it.
    #[test]
    fn json_of_a_typical_plan() {
        insta::assert_snapshot!(render_json(&typical()));
    }

    #[test]
    fn waves_are_headed_and_tagged() {
        let mut payments = want("eu-west-1", "payments", mode(true, true));
        payments.wave = 1;
        let orders = want("eu-west-1", "orders", mode(true, true));
        let (d, l) = world(
            vec![
                (
                    payments,
                    ClusterObservation::Found(found("eu-west-1", "payments", mode(true, false))),
                ),
                (
                    orders,
                    ClusterObservation::Found(found("eu-west-1", "orders", mode(true, false))),
                ),
            ],
            false,
        );
        let plan = plan(&d, &l);
        insta::assert_snapshot!(render_text(&plan, false), @r#"
        == wave 0 ==

        eu-west-1/orders: 2 steps
             public_access = true
            -private_access = false
            +private_access = true
             public_access_cidrs = ["0.0.0.0/0"]
             private_access_from = ["10.0.0.0/16"]

          1. eu-west-1/vpc-0a1b/dns_hostnames
             enable `enableDnsHostnames` on `vpc-0a1b`
             why: private access on `orders` and `payments` needs `enableDnsHostnames` in `vpc-0a1b`, or the endpoint's name does not resolve there

          2. eu-west-1/orders/endpoint.1
             endpoint public only → public and private
             waits for: 1. eu-west-1/vpc-0a1b/dns_hostnames
             why: make the endpoint public and private, as the manifest asks; it waits for the VPC DNS settings private access needs

        == wave 1 ==

        eu-west-1/payments: 2 steps
             public_access = true
            -private_access = false
            +private_access = true
             public_access_cidrs = ["0.0.0.0/0"]
             private_access_from = ["10.0.0.0/16"]

          1. eu-west-1/vpc-0a1b/dns_hostnames (wave 0)
             enable `enableDnsHostnames` on `vpc-0a1b`
             why: private access on `orders` and `payments` needs `enableDnsHostnames` in `vpc-0a1b`, or the endpoint's name does not resolve there

          3. eu-west-1/payments/endpoint.1
             endpoint public only → public and private
             waits for: 1. eu-west-1/vpc-0a1b/dns_hostnames
             why: make the endpoint public and private, as the manifest asks; it waits for the VPC DNS settings private access needs

        Plan: 3 steps on 2 clusters, 1 VPC change
        "#);
        let md = render_markdown(&plan);
        assert!(
            md.contains("### `eu-west-1/payments` — 2 steps (wave 1)"),
            "{md}"
        );
        assert!(md.contains("| # | Wave | Step |"), "{md}");
        assert!(
            md.contains("| 3 | 1 | `eu-west-1/payments/endpoint.1` |"),
            "{md}"
        );
        let json: serde_json::Value = serde_json::from_str(&render_json(&plan)).unwrap();
        let waves: Vec<u64> = json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["wave"].as_u64().unwrap())
            .collect();
        assert_eq!(waves, vec![0, 0, 1]);
        // All in wave 0: no wave shown, as before waves existed.
        assert!(!render_text(&typical(), false).contains("wave"));
        assert!(!render_markdown(&typical()).contains("Wave"));
    }

    #[test]
    fn colour_only_when_asked() {
        let plan = typical();
        assert!(!render_text(&plan, false).contains('\x1b'));
        let coloured = render_text(&plan, true);
        assert!(coloured.contains("\x1b[32m+public_access = false\x1b[0m"));
        assert!(coloured.contains("\x1b[31m-public_access = true\x1b[0m"));
        assert!(coloured.contains("\x1b[1meu-west-1/payments: 4 steps\x1b[0m"));
    }

    #[test]
    fn lockout_risk_is_called_out() {
        let (d, l) = world(
            vec![(
                want("eu-west-1", "payments", mode(false, true)),
                ClusterObservation::Found(found("eu-west-1", "payments", mode(true, true))),
            )],
            true,
        );
        let plan = plan(&d, &l);
        let text = render_text(&plan, false);
        assert!(text.contains(
            "     lockout risk: public access goes off and no `private_access_from` is declared; apply refuses this without `--allow-lockout`\n"
        ));
        let md = render_markdown(&plan);
        assert!(md.contains("**(lockout risk)**"));
        assert!(md.contains("> [!WARNING]"));
        // The pictures mark the step too.
        assert!(md.contains("endpoint.1<br/>eks_endpoint<br/>public and private → private only<br/>lockout risk\"]\n"), "{md}");
        assert!(md.contains("  class s1 risk\n"), "{md}");
        let dot = crate::view::dot::render_dot(&plan);
        assert!(
            dot.contains(r##"private only\nlockout risk", color="#cc0000", penwidth=2];"##),
            "{dot}"
        );
    }
}
