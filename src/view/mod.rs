//! Views: turn plans (and, later, apply events) into text for people and
//! programs — a terminal diff, JSON, a pull-request comment. Views only format
//! data they are given; they must not plan, call AWS, or print: callers decide
//! where the text goes and whether colour is wanted.

pub mod describe;
pub mod plan;
pub mod progress;
pub mod report;

pub use plan::{render_json, render_markdown, render_text};

/// Wraps `s` in an ANSI SGR sequence when `color` is on.
pub(crate) fn paint(color: bool, code: &str, s: &str) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}
