//! The library's error type. Each variant is a situation the user can act on;
//! `main` renders it as `error: MESSAGE` with an optional `hint:` and exits 1.

use std::path::PathBuf;

use crate::diagnostic::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something the user asked for cannot be done; the message says why.
    #[error("{message}")]
    User {
        message: String,
        hint: Option<String>,
    },
    /// A failure explained in full: a message, notes and a hint (see
    /// `explain`).
    #[error("{}", .0.message)]
    Explained(Box<Diagnostic>),
    /// Errors in files eksgate read, each pointing at its place.
    #[error("{} error(s) in input files", .0.len())]
    Diagnostics(Vec<Diagnostic>),
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A bug or an impossible state: worth a report.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn user(message: impl Into<String>) -> Self {
        Error::User {
            message: message.into(),
            hint: None,
        }
    }

    pub fn user_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::User {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// The error as the user sees it on stderr.
    pub fn render(&self, color: bool) -> String {
        match self {
            Error::Diagnostics(diags) => crate::diagnostic::render_all(diags, color),
            Error::Explained(d) => d.render(color),
            Error::User { message, hint } => {
                let mut d = Diagnostic::error(message.clone());
                if let Some(h) = hint {
                    d = d.hint(h.clone());
                }
                d.render(color)
            }
            other => Diagnostic::error(other.to_string()).render(color),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
