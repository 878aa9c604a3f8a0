//! Decides how eksgate talks to the user, once, and hands out the writers
//! every command writes through: data to stdout, everything else to stderr;
//! colour only on a terminal and never with `NO_COLOR`; progress bars only
//! when stderr is a terminal and `--quiet` is not given.
//!
//! Three writers, by what is written:
//! - [`Printer::stdout`]: data (plans, reports, JSON, generated files). Never
//!   silenced: `--quiet` quiets stderr only.
//! - [`Printer::stderr`]: what the user must see even with `--quiet` (errors,
//!   the confirmation prompt, why a run stopped).
//! - [`Printer::notes`]: warnings and notes on stderr that `--quiet` silences.
//!
//! Commands must not call `print!` or `eprint!` themselves, nor decide
//! colour or quietness again: they ask the writer ([`Writer::color`]).

use std::io::{self, IsTerminal, Write};

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
        let stdout_tty = io::stdout().is_terminal();
        let stderr_tty = io::stderr().is_terminal();
        let decide = |tty: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        Printer {
            stdout_color: decide(stdout_tty),
            stderr_color: decide(stderr_tty),
            stderr_is_terminal: stderr_tty,
            stdin_is_terminal: io::stdin().is_terminal(),
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

    /// Data on stdout; `--quiet` does not silence it.
    pub fn stdout(&self) -> Writer {
        Writer {
            stream: Stream::Stdout,
            enabled: true,
            color: self.stdout_color,
        }
    }

    /// Errors, prompts and what stopped a run, on stderr; shown even with
    /// `--quiet`.
    pub fn stderr(&self) -> Writer {
        Writer {
            stream: Stream::Stderr,
            enabled: true,
            color: self.stderr_color,
        }
    }

    /// Warnings and notes on stderr; `--quiet` silences them.
    pub fn notes(&self) -> Writer {
        Writer {
            stream: Stream::Stderr,
            enabled: !self.quiet,
            color: self.stderr_color,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// A stream as the printer decided it: whether it is shown at all, and
/// whether it takes colour. Cheap to copy and `Send`, so views running
/// beside the engine can own one. A silenced writer accepts and drops.
#[derive(Clone, Copy, Debug)]
pub struct Writer {
    stream: Stream,
    enabled: bool,
    color: bool,
}

impl Writer {
    /// Whether text written here may carry ANSI colour.
    pub fn color(&self) -> bool {
        self.color
    }

    /// Whether what is written here is shown (`false`: silenced by `--quiet`).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.enabled {
            return Ok(buf.len());
        }
        match self.stream {
            Stream::Stdout => io::stdout().write(buf),
            Stream::Stderr => io::stderr().write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        match self.stream {
            Stream::Stdout => io::stdout().lock().write_all(buf),
            Stream::Stderr => io::stderr().lock().write_all(buf),
        }
    }

    /// One lock for the whole text, so lines written from two tasks do not
    /// interleave.
    fn write_fmt(&mut self, args: std::fmt::Arguments<'_>) -> io::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        match self.stream {
            Stream::Stdout => io::stdout().lock().write_fmt(args),
            Stream::Stderr => io::stderr().lock().write_fmt(args),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.stream {
            Stream::Stdout => io::stdout().flush(),
            Stream::Stderr => io::stderr().flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_silences_notes_only() {
        let quiet = Printer {
            quiet: true,
            ..Printer::plain()
        };
        assert!(quiet.stdout().is_enabled(), "data is never silenced");
        assert!(quiet.stderr().is_enabled(), "errors are never silenced");
        assert!(!quiet.notes().is_enabled());
        assert!(Printer::plain().notes().is_enabled());
    }

    #[test]
    fn each_writer_takes_its_stream_colour() {
        let p = Printer {
            stdout_color: true,
            ..Printer::plain()
        };
        assert!(p.stdout().color());
        assert!(!p.stderr().color());
        assert!(!p.notes().color());
    }

    #[test]
    fn a_silenced_writer_accepts_everything() {
        let mut w = Printer {
            quiet: true,
            ..Printer::plain()
        }
        .notes();
        assert_eq!(w.write(b"dropped").unwrap(), 7);
        write!(w, "also {}", 7).unwrap();
        w.flush().unwrap();
    }
}
