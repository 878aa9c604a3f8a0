//! Decides how eksgate talks to the user: data to stdout, everything else to
//! stderr; colour only on a terminal and never with `NO_COLOR`; progress bars
//! only when stderr is a terminal and `--quiet` is not given.

use std::io::IsTerminal;

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug)]
pub struct Printer {
    pub stdout_color: bool,
    pub stderr_color: bool,
    pub stderr_is_terminal: bool,
    pub stdin_is_terminal: bool,
    pub quiet: bool,
}

impl Printer {
    pub fn new(choice: ColorChoice, quiet: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let stdout_tty = std::io::stdout().is_terminal();
        let stderr_tty = std::io::stderr().is_terminal();
        let decide = |tty: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        Printer {
            stdout_color: decide(stdout_tty),
            stderr_color: decide(stderr_tty),
            stderr_is_terminal: stderr_tty,
            stdin_is_terminal: std::io::stdin().is_terminal(),
            quiet,
        }
    }

    /// A printer with no colour and no terminal, for tests.
    pub fn plain() -> Self {
        Printer {
            stdout_color: false,
            stderr_color: false,
            stderr_is_terminal: false,
            stdin_is_terminal: false,
            quiet: false,
        }
    }

    /// Progress bars are drawn only on a terminal and never with `--quiet`.
    pub fn progress_bars(&self) -> bool {
        self.stderr_is_terminal && !self.quiet
    }
}
