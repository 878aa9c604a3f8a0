//! Renders the apply's [`Event`] stream while it runs, three ways: indicatif
//! bars on a terminal ([`TerminalView`]: a line per cluster and an overall
//! bar), one timestamped line per event for CI logs ([`LineView`]), and one
//! JSON object per event per line for programs ([`JsonView`]). [`drive`]
//! feeds a view from the channel apply sends on.
//!
//! Views only format what events say: they must not call AWS or decide
//! outcomes. Bars and lines go to stderr (progress is not data), JSON to
//! stdout (it is). A write that fails (a closed pipe) is ignored: losing the
//! progress display must not stop an apply that is changing clusters.

use crate::text::{plural, some_of};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

use crate::channel::EventReceiver;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use time::OffsetDateTime;

use crate::event::{Event, StepCounts, StepOutcome};

/// Something that shows events as they come.
/// Renders nothing (`--quiet`): the report after the run is all there is.
pub struct SilentView;

impl EventView for SilentView {
    fn event(&mut self, _event: &Event) {}
}

pub trait EventView {
    fn event(&mut self, event: &Event);
    /// The stream ended (the apply returned).
    fn finish(&mut self) {}
    /// Called every [`TICK`] by [`drive`] when [`EventView::wants_ticks`],
    /// to animate spinners and elapsed times between events.
    fn tick(&mut self) {}
    fn wants_ticks(&self) -> bool {
        false
    }
}

/// How often [`drive`] ticks a view that animates.
pub const TICK: Duration = Duration::from_millis(120);

/// Feeds `view` every event until the apply drops its sender. One timer
/// here animates every bar, rather than one ticker thread per bar.
pub async fn drive<V: EventView + ?Sized>(view: &mut V, mut rx: EventReceiver) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let animate = view.wants_ticks();
    loop {
        tokio::select! {
            event = rx.recv() => match event {
                Some(event) => view.event(&event),
                None => break,
            },
            _ = ticks.tick(), if animate => view.tick(),
        }
    }
    view.finish();
}

/// `eu-west-1/payments/endpoint.1` → (`eu-west-1/payments`, `endpoint.1`).
fn split_step_id(id: &str) -> (&str, &str) {
    id.rsplit_once('/').unwrap_or(("", id))
}

/// `3 done, 1 already converged, 1 failed`: the done count, then every
/// other non-zero count, worst first.
pub fn counts_phrase(c: &StepCounts) -> String {
    let mut parts = Vec::new();
    for (n, what) in [
        (c.failed, "failed"),
        (c.refused, "refused"),
        (c.timed_out, "timed out"),
        (c.cancelled, "cancelled"),
        (c.skipped, "skipped"),
        (c.not_started, "not started"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    parts.push(format!("{} done", c.done));
    if c.already_converged > 0 {
        parts.push(format!("{} already converged", c.already_converged));
    }
    parts.join(", ")
}

/// A few clusters by `REGION/NAME`: `` `eu-west-1/a`, `eu-west-1/b` and 3 more ``.
pub fn cluster_names(keys: &[crate::desired::ClusterKey]) -> String {
    if keys.is_empty() {
        return "no clusters".to_string();
    }
    let names: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    some_of(&names, 3)
}

/// `wave 1`, `wave 0 canaries`, `the rest of wave 0 after its canaries`.
fn wave_label(wave: u32, canary: bool, after_canary: bool) -> String {
    if canary {
        format!("wave {wave} canaries")
    } else if after_canary {
        format!("the rest of wave {wave} after its canaries")
    } else {
        format!("wave {wave}")
    }
}

/// One line for `event` (no timestamp, no newline), as [`LineView`] writes
/// it; `None` for events it does not show.
pub fn event_line(event: &Event) -> Option<String> {
    Some(match event {
        Event::ApplyStarted {
            steps, clusters, ..
        } => format!(
            "apply started: {} on {}",
            plural(*steps, "step", "steps"),
            plural(clusters.len(), "cluster", "clusters")
        ),
        Event::StepStarted {
            step_id,
            description,
            ..
        } => {
            let (target, what) = split_step_id(step_id);
            format!("{target} {what} started: {description}")
        }
        Event::UpdateStarted {
            step_id, update_id, ..
        } => {
            let (target, what) = split_step_id(step_id);
            format!("{target} {what} update `{update_id}` started")
        }
        Event::UpdatePolled {
            step_id,
            update_id,
            status,
            ..
        } => {
            let (target, what) = split_step_id(step_id);
            match update_id {
                Some(id) => format!("{target} {what} update `{id}` is `{status}`"),
                None => format!("{target} {what} cluster is `{status}`"),
            }
        }
        Event::WaitingForUpdate {
            step_id, reason, ..
        } => {
            let (target, what) = split_step_id(step_id);
            format!("{target} {what} waiting: {reason}")
        }
        Event::StepFinished {
            step_id,
            outcome,
            message,
            ..
        } => {
            let (target, what) = split_step_id(step_id);
            // Skip and refusal messages already start with their outcome.
            let prefix = format!("{}: ", outcome.as_str());
            let message = message.strip_prefix(&prefix).unwrap_or(message);
            format!("{target} {what} {outcome}: {message}")
        }
        Event::WaveStarted {
            wave,
            canary,
            clusters,
            ..
        } => format!(
            "{} started: {}",
            wave_label(*wave, *canary, false),
            cluster_names(clusters)
        ),
        Event::WaveHeld {
            wave,
            after_canary,
            reason,
            clusters,
            ..
        } => format!(
            "{} held: {reason}; not started: {}",
            wave_label(*wave, false, *after_canary),
            cluster_names(clusters)
        ),
        Event::Interrupted {
            running_updates, ..
        } => {
            if running_updates.is_empty() {
                "interrupted: no new step starts".to_string()
            } else {
                let list: Vec<String> = running_updates
                    .iter()
                    .map(|u| format!("`{}/{}` update `{}`", u.region, u.cluster, u.update_id))
                    .collect();
                format!(
                    "interrupted: no new step starts; still running in AWS: {}",
                    list.join(", ")
                )
            }
        }
        Event::ApplyFinished {
            success, counts, ..
        } => {
            let verdict = if *success { "complete" } else { "failed" };
            format!("apply {verdict}: {}", counts_phrase(counts))
        }
    })
}

/// `2026-11-28T21:05:00Z`.
fn timestamp(t: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// One timestamped line per event, for CI logs and any stderr that is not a
/// terminal.
pub struct LineView<W: Write> {
    out: W,
}

impl LineView<std::io::Stderr> {
    pub fn stderr() -> Self {
        LineView::new(std::io::stderr())
    }
}

impl<W: Write> LineView<W> {
    pub fn new(out: W) -> Self {
        LineView { out }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> EventView for LineView<W> {
    fn event(&mut self, event: &Event) {
        if let Some(line) = event_line(event) {
            let _ = writeln!(self.out, "{} {line}", timestamp(OffsetDateTime::now_utc()));
        }
    }

    fn finish(&mut self) {
        let _ = self.out.flush();
    }
}

/// One JSON object per event per line (the serde form of [`Event`]).
pub struct JsonView<W: Write> {
    out: W,
}

impl JsonView<std::io::Stdout> {
    pub fn stdout() -> Self {
        JsonView::new(std::io::stdout())
    }
}

impl<W: Write> JsonView<W> {
    pub fn new(out: W) -> Self {
        JsonView { out }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> EventView for JsonView<W> {
    fn event(&mut self, event: &Event) {
        // Events are strings, numbers and enums: serialising cannot fail.
        if let Ok(line) = serde_json::to_string(event) {
            let _ = writeln!(self.out, "{line}");
            // A consumer reading line by line should see each event now.
            let _ = self.out.flush();
        }
    }
}

/// Bars on a terminal: one spinner line per cluster with its current step and
/// how long that step has run, and an overall bar of finished steps.
pub struct TerminalView {
    multi: MultiProgress,
    overall: ProgressBar,
    clusters: Vec<ClusterLine>,
    /// Step id → indices into `clusters`.
    users: BTreeMap<String, Vec<usize>>,
    finished: BTreeSet<String>,
}

struct ClusterLine {
    bar: ProgressBar,
    steps: Vec<String>,
    /// The worst outcome so far and its step, for the final message.
    worst: Option<(StepOutcome, String, String)>,
}

fn style(template: &str, fallback: ProgressStyle) -> ProgressStyle {
    // The templates are constants; a typo would show the fallback style.
    ProgressStyle::with_template(template).unwrap_or(fallback)
}

impl Default for TerminalView {
    fn default() -> Self {
        TerminalView::new()
    }
}

impl TerminalView {
    /// Draws on stderr.
    pub fn new() -> Self {
        TerminalView::with_target(ProgressDrawTarget::stderr())
    }

    /// Draws on `target` (hidden in tests).
    pub fn with_target(target: ProgressDrawTarget) -> Self {
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(style(
            "{bar:30.cyan/blue} {pos}/{len} steps  {elapsed}",
            ProgressStyle::default_bar(),
        ));
        TerminalView {
            multi,
            overall,
            clusters: Vec::new(),
            users: BTreeMap::new(),
            finished: BTreeSet::new(),
        }
    }

    /// The message a cluster's line shows now, for tests.
    pub fn cluster_message(&self, cluster: &str) -> Option<String> {
        self.clusters
            .iter()
            .find(|c| c.bar.prefix() == cluster)
            .map(|c| c.bar.message())
    }

    pub fn steps_finished(&self) -> u64 {
        self.overall.position()
    }

    fn set_message(&self, step_id: &str, message: String) {
        let (_, what) = split_step_id(step_id);
        for &k in self.users.get(step_id).into_iter().flatten() {
            let line = &self.clusters[k];
            if !line.bar.is_finished() {
                line.bar.set_message(format!("{what}: {message}"));
            }
        }
    }

    fn step_finished(&mut self, step_id: &str, outcome: StepOutcome, message: &str) {
        if !self.finished.insert(step_id.to_string()) {
            return;
        }
        self.overall.inc(1);
        let (_, what) = split_step_id(step_id);
        for &k in self.users.get(step_id).into_iter().flatten() {
            let line = &mut self.clusters[k];
            if !outcome.is_success() && line.worst.as_ref().is_none_or(|(o, _, _)| outcome < *o) {
                line.worst = Some((outcome, what.to_string(), message.to_string()));
            }
            let done = line.steps.iter().all(|s| self.finished.contains(s));
            if done {
                let text = match &line.worst {
                    None => "done".to_string(),
                    Some((o, what, m)) => {
                        let prefix = format!("{}: ", o.as_str());
                        format!("{what} {o}: {}", m.strip_prefix(&prefix).unwrap_or(m))
                    }
                };
                line.bar.finish_with_message(text);
            } else {
                line.bar.set_message(format!("{what}: {outcome}"));
            }
        }
    }
}

impl EventView for TerminalView {
    fn event(&mut self, event: &Event) {
        match event {
            Event::ApplyStarted {
                steps, clusters, ..
            } => {
                self.overall.set_length(*steps as u64);
                let spinner = style(
                    "{spinner:.green} {prefix:.bold} {wide_msg} {elapsed:.dim}",
                    ProgressStyle::default_spinner(),
                );
                for c in clusters {
                    let bar = self
                        .multi
                        .insert_before(&self.overall, ProgressBar::new_spinner());
                    bar.set_style(spinner.clone());
                    bar.set_prefix(c.key.to_string());
                    bar.set_message("waiting for its turn");
                    let k = self.clusters.len();
                    for s in &c.steps {
                        self.users.entry(s.clone()).or_default().push(k);
                    }
                    self.clusters.push(ClusterLine {
                        bar,
                        steps: c.steps.clone(),
                        worst: None,
                    });
                }
            }
            Event::StepStarted {
                step_id,
                description,
                ..
            } => {
                for &k in self.users.get(step_id).into_iter().flatten() {
                    // The time shown is the current step's.
                    self.clusters[k].bar.reset_elapsed();
                }
                self.set_message(step_id, description.clone());
            }
            Event::UpdateStarted {
                step_id, update_id, ..
            } => self.set_message(step_id, format!("update `{update_id}` started")),
            Event::UpdatePolled {
                step_id,
                update_id,
                status,
                ..
            } => {
                let text = match update_id {
                    Some(id) => format!("update `{id}` is `{status}`"),
                    None => format!("cluster is `{status}`"),
                };
                self.set_message(step_id, text);
            }
            Event::WaitingForUpdate {
                step_id, update_id, ..
            } => {
                let text = match update_id {
                    Some(id) => format!("waiting for update `{id}` (not ours)"),
                    None => "waiting for the cluster to leave `UPDATING`".to_string(),
                };
                self.set_message(step_id, text);
            }
            Event::StepFinished {
                step_id,
                outcome,
                message,
                ..
            } => self.step_finished(step_id, *outcome, message),
            Event::Interrupted { .. } | Event::WaveStarted { .. } | Event::WaveHeld { .. } => {
                if let Some(line) = event_line(event) {
                    let _ = self.multi.println(line);
                }
            }
            Event::ApplyFinished { .. } => self.finish(),
        }
    }

    fn tick(&mut self) {
        for line in &self.clusters {
            if !line.bar.is_finished() {
                line.bar.tick();
            }
        }
        self.overall.tick();
    }

    fn wants_ticks(&self) -> bool {
        true
    }

    fn finish(&mut self) {
        for line in &self.clusters {
            if !line.bar.is_finished() {
                line.bar.abandon();
            }
        }
        self.overall.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::ClusterKey;
    use crate::event::ApplyCluster;

    use crate::apply::fake;

    /// Applies a small fleet through the fake: `a` goes private (two
    /// endpoint steps and a security-group step), `b` fails.
    async fn events_of_a_real_apply() -> Vec<Event> {
        let aws = fake::FakeAws::new()
            .cluster("a", fake::public())
            .cluster("b", fake::public());
        aws.edit("b", |c| {
            c.fail_updates = Some(("ClusterUnreachable".into(), "no answer".into()))
        });
        let from = ["10.0.0.0/8"];
        let wants = vec![
            fake::want("a", fake::private(), &from),
            fake::want("b", fake::both(), &from),
        ];
        fake::plan_and_apply(&aws, wants, fake::one_at_a_time(), |_| {})
            .await
            .1
    }

    fn feed(view: &mut impl EventView, events: &[Event]) {
        for e in events {
            view.event(e);
        }
        view.finish();
    }

    #[tokio::test]
    async fn line_view_writes_one_timestamped_line_per_event() {
        let events = events_of_a_real_apply().await;
        let mut view = LineView::new(Vec::new());
        feed(&mut view, &events);
        let text = String::from_utf8(view.into_inner()).unwrap();
        assert_eq!(text.lines().count(), events.len());
        // How many polls an update takes depends on timing: keep one.
        let mut kept: Vec<&str> = Vec::new();
        for line in text.lines() {
            if line.ends_with("is `InProgress`")
                && kept.last().is_some_and(|l| l.ends_with("is `InProgress`"))
            {
                continue;
            }
            kept.push(line);
        }
        insta::with_settings!({filters => vec![
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]"),
        ]}, {
            insta::assert_snapshot!(kept.join("\n"), @r"
            [TIME] apply started: 5 steps on 2 clusters
            [TIME] eu-west-1/sg-a https_ingress started: allow TCP 443 into `sg-a` from `10.0.0.0/8`
            [TIME] eu-west-1/sg-a https_ingress done: TCP 443 ingress added to `sg-a`
            [TIME] eu-west-1/a endpoint.1 started: endpoint public only → public and private
            [TIME] eu-west-1/a endpoint.1 update `upd-1` started
            [TIME] eu-west-1/sg-b https_ingress started: allow TCP 443 into `sg-b` from `10.0.0.0/8`
            [TIME] eu-west-1/sg-b https_ingress done: TCP 443 ingress added to `sg-b`
            [TIME] eu-west-1/a endpoint.1 update `upd-1` is `InProgress`
            [TIME] eu-west-1/a endpoint.1 update `upd-1` is `Successful`
            [TIME] eu-west-1/a endpoint.1 done: update `upd-1` is `Successful`: the endpoint is public and private
            [TIME] eu-west-1/a endpoint.2 started: endpoint public and private → private only
            [TIME] eu-west-1/a endpoint.2 update `upd-2` started
            [TIME] eu-west-1/a endpoint.2 update `upd-2` is `InProgress`
            [TIME] eu-west-1/a endpoint.2 update `upd-2` is `Successful`
            [TIME] eu-west-1/a endpoint.2 done: update `upd-2` is `Successful`: the endpoint is private only
            [TIME] eu-west-1/b endpoint.1 started: endpoint public only → public and private
            [TIME] eu-west-1/b endpoint.1 update `upd-3` started
            [TIME] eu-west-1/b endpoint.1 update `upd-3` is `InProgress`
            [TIME] eu-west-1/b endpoint.1 update `upd-3` is `Failed`
            [TIME] eu-west-1/b endpoint.1 failed: update `upd-3` ended `Failed`: ClusterUnreachable: no answer
            [TIME] apply failed: 1 failed, 4 done
            ");
        });
    }

    #[tokio::test]
    async fn json_view_writes_one_parsable_object_per_line() {
        let events = events_of_a_real_apply().await;
        let mut view = JsonView::new(Vec::new());
        feed(&mut view, &events);
        let text = String::from_utf8(view.into_inner()).unwrap();
        let parsed: Vec<Event> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(parsed, events);
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["event"], "apply_started");
    }

    #[tokio::test]
    async fn terminal_view_keeps_a_line_per_cluster() {
        let events = events_of_a_real_apply().await;
        let mut view = TerminalView::with_target(ProgressDrawTarget::hidden());
        feed(&mut view, &events);
        assert_eq!(view.steps_finished(), 5);
        assert_eq!(view.cluster_message("eu-west-1/a").as_deref(), Some("done"));
        assert_eq!(
            view.cluster_message("eu-west-1/b").as_deref(),
            Some("endpoint.1 failed: update `upd-3` ended `Failed`: ClusterUnreachable: no answer")
        );
    }

    #[tokio::test]
    async fn drive_feeds_a_view_until_the_channel_closes() {
        let events = events_of_a_real_apply().await;
        let (tx, rx) = crate::channel::channel();
        for e in &events {
            tx.send(e.clone()).unwrap();
        }
        drop(tx);
        // Sent all at once, intermediate polls of a step are coalesced.
        let coalesced = usize::try_from(rx.coalesced()).unwrap();
        let mut view = JsonView::new(Vec::new());
        drive(&mut view, rx).await;
        assert_eq!(
            String::from_utf8(view.into_inner())
                .unwrap()
                .lines()
                .count(),
            events.len() - coalesced
        );
        let mut bars = TerminalView::with_target(ProgressDrawTarget::hidden());
        let (tx, rx) = crate::channel::channel();
        for e in &events {
            tx.send(e.clone()).unwrap();
        }
        drop(tx);
        drive(&mut bars, rx).await;
        assert_eq!(bars.steps_finished(), 5);
    }

    #[test]
    fn wave_events_read_as_one_line_each() {
        let key = |name: &str| ClusterKey {
            account: None,
            region: "eu-west-1".into(),
            name: name.into(),
        };
        let cases = [
            (
                Event::WaveStarted {
                    elapsed_ms: 0,
                    wave: 0,
                    canary: true,
                    clusters: vec![key("a")],
                },
                "wave 0 canaries started: `eu-west-1/a`",
            ),
            (
                Event::WaveStarted {
                    elapsed_ms: 0,
                    wave: 1,
                    canary: false,
                    clusters: ["a", "b", "c", "d", "e"].map(key).to_vec(),
                },
                "wave 1 started: `eu-west-1/a`, `eu-west-1/b`, `eu-west-1/c` and 2 more",
            ),
            (
                Event::WaveHeld {
                    elapsed_ms: 0,
                    wave: 1,
                    after_canary: false,
                    reason: "2 clusters failed in wave 0, more than `--max-failures 1`".into(),
                    clusters: vec![key("c"), key("d")],
                },
                "wave 1 held: 2 clusters failed in wave 0, more than `--max-failures 1`; not started: `eu-west-1/c` and `eu-west-1/d`",
            ),
            (
                Event::WaveHeld {
                    elapsed_ms: 0,
                    wave: 0,
                    after_canary: true,
                    reason: "r".into(),
                    clusters: vec![key("b")],
                },
                "the rest of wave 0 after its canaries held: r; not started: `eu-west-1/b`",
            ),
        ];
        for (event, line) in cases {
            assert_eq!(event_line(&event).as_deref(), Some(line));
        }
        // The terminal view prints them above the bars and keeps going.
        let mut view = TerminalView::with_target(ProgressDrawTarget::hidden());
        view.event(&Event::WaveStarted {
            elapsed_ms: 0,
            wave: 0,
            canary: false,
            clusters: vec![key("a")],
        });
        assert_eq!(view.steps_finished(), 0);
    }

    #[test]
    fn terminal_view_shows_the_current_step() {
        let mut view = TerminalView::with_target(ProgressDrawTarget::hidden());
        let key = ClusterKey {
            account: None,
            region: "eu-west-1".into(),
            name: "a".into(),
        };
        let step = "eu-west-1/a/endpoint.1".to_string();
        view.event(&Event::ApplyStarted {
            elapsed_ms: 0,
            steps: 1,
            clusters: vec![ApplyCluster {
                key,
                steps: vec![step.clone()],
            }],
        });
        view.event(&Event::UpdatePolled {
            elapsed_ms: 5,
            step_id: step,
            update_id: Some("u-1".into()),
            status: "InProgress".into(),
        });
        assert_eq!(
            view.cluster_message("eu-west-1/a").as_deref(),
            Some("endpoint.1: update `u-1` is `InProgress`")
        );
    }
}
