//! Views: turn plans (and, later, apply events) into text for people and
//! programs — a terminal diff, JSON, a pull-request comment. Views only format
//! data they are given; they must not plan, call AWS, or print: callers decide
//! where the text goes and whether colour is wanted.

pub mod describe;
pub mod doctor;
pub mod dot;
pub mod mermaid;
mod order;
pub(crate) mod picture;
pub mod plan;
pub mod progress;
pub mod rehearsal;
pub mod report;

pub use plan::{render_json, render_markdown, render_text};

pub(crate) use crate::text::paint;
