//! One file per verb. Each defines its clap arguments, maps them to options
//! and calls the library; none holds logic of its own. `cli` gathers the
//! verbs' arguments into the command line, so imports go one way: `cli`
//! uses `commands`, never the reverse (a verb that needs the whole command
//! line, like `completions`, is handed it).

pub mod apply;
pub mod common;
pub mod completions;
pub mod demo;
pub mod doctor;
pub mod import;
pub mod man;
pub mod plan;
pub mod schema;
pub mod sim;
pub mod validate;

use crate::printer::Printer;

/// What a command asks `main` to exit with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// The command ran, and the answer is "no" (invalid, failed steps).
    Failure,
    /// `plan --detailed-exitcode` found changes.
    Changes,
    /// Stopped by Ctrl-C.
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Changes => 2,
            Exit::Interrupted => 130,
        }
    }
}

/// Shared by every command.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    pub printer: Printer,
}
