//! Exact output with inline insta snapshots, as uv's `uv_snapshot!`:
//! [`eksgate_snapshot!`] pins a [`Run`] (exit code, stdout, stderr) or any
//! text, after filters replace what differs from run to run with a
//! placeholder:
//!
//! | what                                   | becomes         |
//! |----------------------------------------|-----------------|
//! | the run's temporary directory          | `[TEMP]`        |
//! | the emulator's loopback address        | `127.0.0.1:[PORT]` |
//! | update ids and other UUIDs             | `[UPDATE_ID]`   |
//! | timestamps (`2026-11-28T21:05:00Z`)    | `[TIME]`        |
//! | elapsed times                          | `[ELAPSED]`     |
//!
//! Elapsed times are what eksgate measured: the JSON events' `elapsed_ms`,
//! the rehearsal timeline's offsets (`+1.234s`). Durations the user gave
//! (`--wait-timeout 1s`, `each endpoint update taking 200ms`) are pinned as
//! they are: a filter on every `1.2s` or `340ms` would hide them too.
//!
//! When the order of some lines depends on scheduling (clusters that run at
//! once), the test snapshots them through [`by_target`], [`sort_block`],
//! [`after_line`], [`without`] or [`only`], and says so.
//!
//! To accept a new or changed snapshot: `cargo insta test --accept --test
//! integration -- NAME` (or run the test, then `cargo insta review`).
//!
//! [`Run`]: crate::test::Run

use crate::test::Run;

/// What [`eksgate_snapshot!`] can pin: the text, and filters that only this
/// value knows (its directory, its emulator's port).
pub trait Snapshot {
    fn text(&self) -> String;
    fn filters(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

impl Snapshot for Run {
    /// uv's layout: whether it succeeded, the exit code, then both streams.
    fn text(&self) -> String {
        format!(
            "success: {}\nexit_code: {}\n----- stdout -----\n{}\n----- stderr -----\n{}",
            self.code() == Some(0),
            self.code()
                .map_or("none (a signal)".to_string(), |c| c.to_string()),
            self.stdout(),
            self.stderr()
        )
    }

    fn filters(&self) -> Vec<(String, String)> {
        let mut f = Vec::new();
        let dir = self.dir().to_string_lossy().into_owned();
        // macOS's temporary directory is a link into `/private`.
        f.push((
            format!("(/private)?{}", regex::escape(&dir)),
            "[TEMP]".to_string(),
        ));
        f.push((
            regex::escape(&self.sim().addr().to_string()),
            "127.0.0.1:[PORT]".to_string(),
        ));
        f
    }
}

impl Snapshot for str {
    fn text(&self) -> String {
        self.to_string()
    }
}

impl Snapshot for String {
    fn text(&self) -> String {
        self.clone()
    }
}

impl<T: Snapshot + ?Sized> Snapshot for &T {
    fn text(&self) -> String {
        (**self).text()
    }
    fn filters(&self) -> Vec<(String, String)> {
        (**self).filters()
    }
}

/// The filters every snapshot gets, in the order they apply.
pub fn filters() -> Vec<(String, String)> {
    [
        // Whatever a run's own filters did not catch.
        (r"(/private)?/tmp/\.tmp[A-Za-z0-9]+", "[TEMP]"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[UPDATE_ID]",
        ),
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
            "[TIME]",
        ),
        (r#""(elapsed_ms|offset_ms)":\s*\d+"#, r#""$1":[ELAPSED]"#),
        (r"\+\d+\.\d{3}s\b", "+[ELAPSED]"),
    ]
    .into_iter()
    .map(|(re, to)| (re.to_string(), to.to_string()))
    .collect()
}

/// The filters for `value`: its own, then every snapshot's.
pub fn filters_for(value: &impl Snapshot) -> Vec<(String, String)> {
    let mut f = value.filters();
    f.extend(filters());
    f
}

/// `text` with every snapshot's filters applied (for a test that must
/// rearrange filtered lines).
pub fn filtered(text: &str) -> String {
    filters().iter().fold(text.to_string(), |t, (re, to)| {
        let re = regex::Regex::new(re).expect("a valid filter");
        re.replace_all(&t, to.as_str()).into_owned()
    })
}

/// The progress lines of `text` (`[TIME] TARGET ...`), filtered, grouped by
/// their target (a cluster or shared resource, or `apply`), each target's
/// lines in the order they came: for progress of clusters that run at
/// once, whose lines interleave as scheduling has it.
pub fn by_target(text: &str) -> String {
    let filtered = filtered(text);
    let mut lines: Vec<&str> = filtered.lines().collect();
    lines.sort_by_key(|l| l.split(' ').nth(1).unwrap_or_default().to_string());
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// `text`, filtered, with the indented lines under the line `heading`
/// sorted: for a list in the order things happened (`Changed in AWS:` when
/// clusters run at once).
pub fn sort_block(text: &str, heading: &str) -> String {
    let filtered = filtered(text);
    let mut out = Vec::new();
    let mut lines = filtered.lines().peekable();
    while let Some(line) = lines.next() {
        out.push(line.to_string());
        if line == heading {
            let mut block = Vec::new();
            while let Some(l) = lines.next_if(|l| l.starts_with(' ')) {
                block.push(l.to_string());
            }
            block.sort_unstable();
            out.extend(block);
        }
    }
    out.iter().map(|l| format!("{l}\n")).collect()
}

/// The lines of `text` after the first one that starts with `prefix` (the
/// apply's report, after the plan it printed first).
pub fn after_line(text: &str, prefix: &str) -> String {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(prefix));
    assert!(
        lines.next().is_some(),
        "no line starts with {prefix:?} in:\n{text}"
    );
    lines.map(|l| format!("{l}\n")).collect()
}

/// The lines of `text` that do not contain `needle`, in their order (a
/// poll's `InProgress`, as often as timing has it).
pub fn without(text: &str, needle: &str) -> String {
    text.lines()
        .filter(|l| !l.contains(needle))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The lines of `text` that contain `needle`, in their order.
pub fn only(text: &str, needle: &str) -> String {
    text.lines()
        .filter(|l| l.contains(needle))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Pins `value` (a [`Run`] or text) against an inline snapshot, after the
/// filters in this module.
macro_rules! eksgate_snapshot {
    ($value:expr, @$snapshot:literal) => {{
        let value = &$value;
        let text = $crate::snapshot::Snapshot::text(value);
        let mut settings = insta::Settings::clone_current();
        for (re, to) in $crate::snapshot::filters_for(value) {
            settings.add_filter(&re, to);
        }
        settings.set_omit_expression(true);
        settings.bind(|| {
            insta::assert_snapshot!(text, @$snapshot);
        });
    }};
}
pub(crate) use eksgate_snapshot;

#[test]
fn the_filters_replace_what_varies_and_keep_what_the_user_gave() {
    let text = concat!(
        "update `c5a0ef11-1f71-4422-a31d-9d54dee17b11` at 2026-12-01T10:45:02Z\n",
        "on http://127.0.0.1:40449 in /tmp/.tmpAbC123/prod.toml\n",
        "{\"elapsed_ms\":57,\"offset_ms\": 3}\n",
        "    +0.226s  UpdateClusterConfig\n",
        "did not finish within 1s, each update taking 200ms\n",
    );
    assert_eq!(
        filtered(text),
        concat!(
            "update `[UPDATE_ID]` at [TIME]\n",
            "on http://127.0.0.1:[PORT] in [TEMP]/prod.toml\n",
            "{\"elapsed_ms\":[ELAPSED],\"offset_ms\":[ELAPSED]}\n",
            "    +[ELAPSED]  UpdateClusterConfig\n",
            "did not finish within 1s, each update taking 200ms\n",
        )
    );
}

#[test]
fn lines_in_scheduling_order_are_made_stable() {
    let progress = concat!(
        "2026-12-01T10:45:02Z apply started: 2 steps\n",
        "2026-12-01T10:45:02Z us-east-1/b endpoint.1 started\n",
        "2026-12-01T10:45:02Z us-east-1/a endpoint.1 started\n",
        "2026-12-01T10:45:03Z us-east-1/b endpoint.1 done\n",
        "2026-12-01T10:45:03Z us-east-1/a endpoint.1 done\n",
        "2026-12-01T10:45:03Z apply complete: 2 done\n",
    );
    assert_eq!(
        by_target(progress),
        concat!(
            "[TIME] apply started: 2 steps\n",
            "[TIME] apply complete: 2 done\n",
            "[TIME] us-east-1/a endpoint.1 started\n",
            "[TIME] us-east-1/a endpoint.1 done\n",
            "[TIME] us-east-1/b endpoint.1 started\n",
            "[TIME] us-east-1/b endpoint.1 done\n",
        )
    );
    let report =
        "Plan: 2 steps\na: done\n\nChanged in AWS:\n    b: on\n    a: on\n\nApply complete\n";
    assert_eq!(
        after_line(&sort_block(report, "Changed in AWS:"), "Plan: "),
        "a: done\n\nChanged in AWS:\n    a: on\n    b: on\n\nApply complete\n"
    );
    assert_eq!(
        without(report, ": on"),
        "Plan: 2 steps\na: done\n\nChanged in AWS:\n\nApply complete\n"
    );
}
