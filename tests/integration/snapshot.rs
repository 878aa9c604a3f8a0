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
