//! Diagnostics that point at the source: `error: MESSAGE`, then
//! `--> FILE:LINE:COL`, the offending line, a caret under the span and an
//! optional `hint:`. Used for manifests, world files and saved plans alike, so
//! every file eksgate reads reports mistakes the same way.
//!
//! [`Source`] holds the crate's one line index: every byte offset becomes a
//! line and column there, and nowhere else. A [`Collector`] gathers the
//! diagnostics of one source while a check runs.
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
#[derive(Clone)]
pub struct Source {
    pub name: Arc<str>,
    pub text: Arc<str>,
    lines: Arc<LineIndex>,
}

impl Source {
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<Arc<str>>) -> Self {
        let text = text.into();
        Source {
            name: name.into(),
            lines: Arc::new(LineIndex::new(&text)),
            text,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        self.lines.line_col(&self.text, offset)
    }

    /// `file:line:col` of a byte offset.
    pub fn position(&self, offset: usize) -> String {
        let (line, col) = self.line_col(offset);
        format!("{}:{line}:{col}", self.name)
    }

    /// The text of a 1-based line, without its line ending; empty past the
    /// last line.
    pub fn line_text(&self, line: usize) -> &str {
        self.lines.line_text(&self.text, line)
    }

    /// The byte offset of a 1-based line and a 1-based column counted in
    /// bytes, as JSON parsers report positions; past the end, the end.
    pub fn offset_of(&self, line: usize, byte_column: usize) -> usize {
        self.lines.offset_of(&self.text, line, byte_column)
    }
}

// By hand, so the index stays out of debug output.
impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("text", &self.text)
            .finish()
    }
}

/// Where each line of a text starts: the one place byte offsets become
/// lines and columns, and lines become text. Built once per [`Source`], so
/// pointing at the 10,000th cluster of a file does not rescan the file.
struct LineIndex {
    /// Byte offset of the start of each line; `starts[0] == 0`.
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        // Bytes, not chars: `\n` is never part of a longer UTF-8 sequence,
        // and a byte scan is several times faster on a 10,000-cluster file.
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// An offset past the end counts as the end; one inside a character as
    /// that character's start.
    fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(text.len());
        while offset > 0 && !text.is_char_boundary(offset) {
            offset -= 1;
        }
        // `starts[0] == 0 <= offset`, so the line is at least 1.
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let col = text[start..offset].chars().count() + 1;
        (line, col)
    }

    /// Without the `\n` and any `\r` before it.
    fn line_text<'t>(&self, text: &'t str, line: usize) -> &'t str {
        let Some(&start) = line.checked_sub(1).and_then(|i| self.starts.get(i)) else {
            return "";
        };
        // The next line starts just after this line's `\n`.
        let end = self.starts.get(line).map_or(text.len(), |next| next - 1);
        text[start..end].trim_end_matches('\r')
    }

    fn offset_of(&self, text: &str, line: usize, byte_column: usize) -> usize {
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(text.len());
        (start + byte_column.saturating_sub(1)).min(text.len())
    }
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

    /// A hint when there is one.
    pub fn maybe_hint(mut self, hint: Option<impl Into<String>>) -> Self {
        self.hint = hint.map(Into::into).or(self.hint);
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
            (Some((src, span)), _) => Some(src.position(span.start)),
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
            let line_text = src.line_text(line_no);
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

/// The diagnostics of one source while a check goes through it: each rule
/// says what is wrong and where, the collector keeps them in the order they
/// came and counts the errors.
pub struct Collector<'a> {
    source: &'a Source,
    diags: Vec<Diagnostic>,
    errors: usize,
}

impl<'a> Collector<'a> {
    pub fn new(source: &'a Source) -> Self {
        Collector {
            source,
            diags: Vec::new(),
            errors: 0,
        }
    }

    pub fn source(&self) -> &'a Source {
        self.source
    }

    pub fn push(&mut self, diag: Diagnostic) {
        if diag.is_error() {
            self.errors += 1;
        }
        self.diags.push(diag);
    }

    /// An error at `span` of this source, with a hint when there is one.
    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>, hint: Option<&str>) {
        self.push(
            Diagnostic::error(message)
                .at(self.source, span)
                .maybe_hint(hint),
        );
    }

    /// How many errors (not warnings) were collected so far.
    pub fn error_count(&self) -> usize {
        self.errors
    }

    pub fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diags
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

    /// The index against the plain scans it replaced, on every offset and
    /// line of `text`.
    fn agrees_with_a_rescan(text: &str) {
        let src = Source::new("t", text);
        for offset in 0..=text.len() + 2 {
            let mut at = offset.min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let before = &text[..at];
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let want = (
                before.matches('\n').count() + 1,
                before[line_start..].chars().count() + 1,
            );
            assert_eq!(src.line_col(offset), want, "offset {offset} of {text:?}");
        }
        for line in 0..text.lines().count() + 3 {
            let want = line
                .checked_sub(1)
                .and_then(|i| text.lines().nth(i))
                .unwrap_or("")
                .trim_end_matches('\r');
            assert_eq!(src.line_text(line), want, "line {line} of {text:?}");
            for column in 0..6_usize {
                let start: usize = text
                    .split_inclusive('\n')
                    .take(line.saturating_sub(1))
                    .map(str::len)
                    .sum();
                let want = (start + column.saturating_sub(1)).min(text.len());
                assert_eq!(
                    src.offset_of(line, column),
                    want,
                    "line {line} column {column} of {text:?}"
                );
            }
        }
    }

    #[test]
    fn line_index_agrees_with_a_rescan() {
        for text in [
            "",
            "\n",
            "a",
            "a\n",
            "a\né\r\n\n  x = 1\n\t\"ü\"",
            "x\r\r\ny\r",
        ] {
            agrees_with_a_rescan(text);
        }
    }

    proptest::proptest! {
        #[test]
        fn line_index_agrees_with_a_rescan_on_any_text(text in "(\n|\r|a|é|\t| ){0,40}") {
            agrees_with_a_rescan(&text);
        }
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
