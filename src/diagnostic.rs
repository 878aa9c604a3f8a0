//! Diagnostics that point at the source: `error: MESSAGE`, then
//! `--> FILE:LINE:COL`, the offending line, a caret under the span and an
//! optional `hint:`. Used for manifests, world files and saved plans alike, so
//! every file eksgate reads reports mistakes the same way.
//!
//! Rendering is pure: callers decide whether colour is wanted.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// A source file as it was read, shared by all diagnostics that point into it.
#[derive(Clone, Debug)]
pub struct Source {
    pub name: Arc<str>,
    pub text: Arc<str>,
}

impl Source {
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<Arc<str>>) -> Self {
        Source {
            name: name.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One message about one place (or no place) in one file.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub location: Option<(Source, Range<usize>)>,
    /// A file named without a position (for example one that cannot be read).
    pub file: Option<Arc<str>>,
    /// Extra facts, such as where a duplicate was first declared; rendered as
    /// `note:` lines between the source excerpt and the hint.
    pub notes: Vec<String>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            location: None,
            file: None,
            notes: Vec::new(),
            hint: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn at(mut self, source: &Source, span: Range<usize>) -> Self {
        self.file = Some(source.name.clone());
        self.location = Some((source.clone(), span));
        self
    }

    pub fn in_file(mut self, name: impl Into<Arc<str>>) -> Self {
        self.file = Some(name.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Byte offset of the start of the span, for ordering diagnostics of one
    /// file by position; diagnostics without a place sort first.
    pub fn offset(&self) -> usize {
        self.location.as_ref().map_or(0, |(_, span)| span.start)
    }

    /// Builds a diagnostic from a TOML parse or deserialisation error.
    pub fn from_toml(source: &Source, err: &toml::de::Error) -> Self {
        let message = toml_message(err.message());
        let diag = Diagnostic::error(message);
        match err.span() {
            Some(span) => diag.at(source, span),
            None => diag.in_file(source.name.clone()),
        }
    }

    /// `file:line:col` of the start of the span, when there is one.
    pub fn position(&self) -> Option<String> {
        match (&self.location, &self.file) {
            (Some((src, span)), _) => {
                let (line, col) = src.line_col(span.start);
                Some(format!("{}:{line}:{col}", src.name))
            }
            (None, Some(file)) => Some(file.to_string()),
            (None, None) => None,
        }
    }

    /// Renders the diagnostic as text, with ANSI colour when asked.
    pub fn render(&self, color: bool) -> String {
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let (label, code) = match self.severity {
            Severity::Error => ("error", "1;31"),
            Severity::Warning => ("warning", "1;33"),
        };
        let mut out = String::new();
        let _ = writeln!(out, "{}: {}", paint(code, label), self.message);
        if let Some((src, span)) = &self.location {
            let (line_no, col) = src.line_col(span.start);
            let width = line_no.to_string().len();
            let pad = " ".repeat(width);
            let _ = writeln!(
                out,
                "{pad}{} {}:{line_no}:{col}",
                paint("1;34", "-->"),
                src.name
            );
            let line_text = src.text.lines().nth(line_no - 1).unwrap_or("");
            let line_text = line_text.trim_end_matches('\r');
            let bar = paint("1;34", "|");
            let _ = writeln!(out, "{pad} {bar}");
            let _ = writeln!(
                out,
                "{} {bar} {line_text}",
                paint("1;34", &line_no.to_string())
            );
            let line_chars = line_text.chars().count();
            let start = (col - 1).min(line_chars);
            let span_text = src.text.get(span.clone()).unwrap_or("");
            let first_line_of_span = span_text.split('\n').next().unwrap_or("");
            let carets = first_line_of_span
                .chars()
                .count()
                .clamp(1, (line_chars - start).max(1));
            // Tabs stay tabs under the line so the caret lines up with the
            // text whatever the terminal's tab width.
            let indent: String = line_text
                .chars()
                .take(start)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = writeln!(
                out,
                "{pad} {bar} {indent}{}",
                paint(code, &"^".repeat(carets))
            );
        } else if let Some(file) = &self.file {
            let _ = writeln!(out, "  {} {file}", paint("1;34", "-->"));
        }
        for note in &self.notes {
            let _ = writeln!(out, "{}: {note}", paint("1;34", "note"));
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "{}: {hint}", paint("1;36", "hint"));
        }
        out
    }
}

/// toml's messages end with a newline and sometimes a period; ours do not.
fn toml_message(msg: &str) -> String {
    let msg = msg.trim();
    msg.strip_suffix('.').unwrap_or(msg).to_string()
}

/// Renders many diagnostics, one after another, separated by blank lines.
pub fn render_all(diags: &[Diagnostic], color: bool) -> String {
    diags
        .iter()
        .map(|d| d.render(color))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_column_and_caret() {
        let src = Source::new("prod.toml", "[[cluster]]\nname = \"x\"\nregion = 12\n");
        let start = src.text.find("12").unwrap();
        let d = Diagnostic::error("expected a string")
            .at(&src, start..start + 2)
            .hint("quote it: `\"eu-west-1\"`");
        assert_eq!(
            d.render(false),
            "error: expected a string\n --> prod.toml:3:10\n  |\n3 | region = 12\n  |          ^^\nhint: quote it: `\"eu-west-1\"`\n"
        );
    }

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let src = Source::new("a.toml", "name = \"é\" x\n");
        let off = src.text.find('x').unwrap();
        assert_eq!(src.line_col(off), (1, 12));
    }

    #[test]
    fn notes_come_before_the_hint_and_tabs_keep_the_caret_aligned() {
        let src = Source::new("a.toml", "\tname = \"x\"\n");
        let start = src.text.find('"').unwrap();
        let d = Diagnostic::error("declared twice")
            .at(&src, start..start + 3)
            .note("first declared at b.toml:1:1")
            .hint("keep one");
        assert_eq!(
            d.render(false),
            "error: declared twice\n --> a.toml:1:9\n  |\n1 | \tname = \"x\"\n  | \t       ^^^\nnote: first declared at b.toml:1:1\nhint: keep one\n"
        );
    }

    #[test]
    fn no_colour_codes_unless_asked() {
        let d = Diagnostic::warning("careful");
        assert!(!d.render(false).contains('\x1b'));
        assert!(d.render(true).contains('\x1b'));
    }
}
