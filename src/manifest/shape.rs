//! Shape checks: is the file TOML, and does each table have the keys and
//! value types of [`raw`]? Syntax errors, unknown keys (with "did you mean"),
//! values of the wrong type (with a hint when the fix is obvious, such as
//! quoting an account id), `[cluster]` written with single brackets, and a
//! file without any `[[cluster]]`.
//!
//! Every mistake is reported, not only the first serde meets: a key that is
//! wrong is reported and dropped, and the rest of the table is still read.
//! This module judges shape only; what a value means (is it a region, do the
//! role and the account agree) is for `cluster` and `rules`.

use std::borrow::Cow;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::raw;
use super::rules::lit;
use crate::diagnostic::{Collector, Diagnostic};

/// A table after the shape check: the typed value when it could be built,
/// the known keys that were dropped because their value had the wrong type
/// (reported already), and whether the check reported anything at all.
pub(super) struct Shaped<T> {
    pub value: Option<T>,
    pub broken: Vec<String>,
    pub clean: bool,
}

impl<T> Shaped<T> {
    /// Whether `key` was given with a value of the wrong type.
    pub fn is_broken(&self, key: &str) -> bool {
        self.broken.iter().any(|b| b == key)
    }
}

/// The parsed file, or `None` after reporting its syntax error.
pub(super) fn parse<'t>(out: &mut Collector<'_>, text: &'t str) -> Option<DeTable<'t>> {
    let (root, errors) = DeTable::parse_recoverable(text);
    // After a syntax error the parser's recovery can invent follow-on
    // errors; the first one by position is the one worth reading.
    if let Some(first) = errors
        .iter()
        .min_by_key(|e| e.span().map_or(usize::MAX, |s| s.start))
    {
        syntax_error(out, text, first);
        return None;
    }
    Some(root.into_inner())
}

fn syntax_error(out: &mut Collector<'_>, text: &str, err: &toml::de::Error) {
    let mut diag = Diagnostic::from_toml(out.source(), err);
    if diag.message == "duplicate key" {
        if let Some(key) = err.span().and_then(|s| text.get(s)) {
            diag.message = format!("duplicate key {}", lit(key));
        }
        diag = diag.hint("a key can be set only once in a table");
    }
    out.push(diag);
}

/// The values of the two top-level keys a manifest may have.
pub(super) struct TopLevel<'r, 't> {
    pub defaults: Option<&'r Spanned<DeValue<'t>>>,
    pub cluster: Option<&'r Spanned<DeValue<'t>>>,
}

/// Picks `defaults` and `cluster` out of the file; other keys are reported.
pub(super) fn top_level<'r, 't>(
    out: &mut Collector<'_>,
    root: &'r DeTable<'t>,
) -> TopLevel<'r, 't> {
    let mut top = TopLevel {
        defaults: None,
        cluster: None,
    };
    for (key, value) in root.iter() {
        match key.get_ref().as_ref() {
            "defaults" => top.defaults = Some(value),
            "cluster" => top.cluster = Some(value),
            other => unknown_key(
                out,
                key.span(),
                other,
                raw::TOP_KEYS,
                "at the top level",
                &[],
            ),
        }
    }
    top
}

/// The `[[cluster]]` tables of a file, each with the span of its header.
/// `cluster` that is not an array of tables, or an entry that is not a
/// table, is reported and skipped. A file without clusters gets a warning,
/// but only when `clean`: a file whose keys are wrong has better things to
/// say than "no clusters" (which is often a consequence, as with
/// `[[clusters]]`).
pub(super) fn cluster_tables<'r, 't>(
    out: &mut Collector<'_>,
    value: Option<&'r Spanned<DeValue<'t>>>,
    clean: bool,
) -> Vec<(Range<usize>, &'r DeTable<'t>)> {
    let no_clusters = || {
        Diagnostic::warning("no `[[cluster]]` in this file").hint(
            "a manifest lists its clusters as `[[cluster]]` tables; add one, or stop passing this file",
        )
    };
    let source = out.source();
    let mut tables = Vec::new();
    match value {
        None if clean => out.push(no_clusters().in_file(source.name.clone())),
        None => {}
        Some(value) => match value.get_ref() {
            DeValue::Array(items) if items.is_empty() => {
                if clean {
                    out.push(no_clusters().at(source, value.span()))
                }
            }
            DeValue::Array(items) => {
                tables.reserve(items.len());
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::Table(table) => tables.push((item.span(), table)),
                        other => out.error(
                            item.span(),
                            format!("each `cluster` must be a table, not {}", type_of(other)),
                            Some("write one `[[cluster]]` table per cluster"),
                        ),
                    }
                }
            }
            other => out.error(
                value.span(),
                format!(
                    "`cluster` must be an array of tables, not {}",
                    type_of(other)
                ),
                Some("write `[[cluster]]`, with double brackets, once per cluster"),
            ),
        },
    }
    tables
}

/// `[defaults]` after the shape check, or `None` when it is not a table
/// (reported).
pub(super) fn defaults(
    out: &mut Collector<'_>,
    value: &Spanned<DeValue<'_>>,
) -> Option<Shaped<raw::Defaults>> {
    let DeValue::Table(table) = value.get_ref() else {
        out.error(
            value.span(),
            format!(
                "`defaults` must be a table, not {}",
                type_of(value.get_ref())
            ),
            Some("write it as a `[defaults]` section"),
        );
        return None;
    };
    const ELSEWHERE: &[(&str, &str)] = &[
        ("name", "in a `[[cluster]]` table"),
        ("public_access", "in a `[[cluster]]` table"),
        ("private_access", "in a `[[cluster]]` table"),
        ("public_access_cidrs", "in a `[[cluster]]` table"),
        ("private_access_from", "in a `[[cluster]]` table"),
        ("wave", "in a `[[cluster]]` table"),
    ];
    Some(table_of(
        out,
        value.span(),
        table,
        raw::DEFAULTS_KEYS,
        "in `[defaults]`",
        ELSEWHERE,
        |_| None,
    ))
}

/// One `[[cluster]]` table after the shape check.
pub(super) fn cluster(
    out: &mut Collector<'_>,
    header: Range<usize>,
    table: &DeTable<'_>,
) -> Shaped<raw::Cluster> {
    table_of(
        out,
        header,
        table,
        raw::CLUSTER_KEYS,
        "in `[[cluster]]`",
        &[],
        raw::Cluster::from_table,
    )
}

/// Checks a table's keys and types into `T`. Unknown keys and values of
/// the wrong type are reported and dropped one by one, so every one of
/// them is reported, not only the first serde meets. `fast` reads a table
/// that has neither without serde, or leaves it to serde (`None`).
fn table_of<T: DeserializeOwned>(
    out: &mut Collector<'_>,
    span: Range<usize>,
    table: &DeTable<'_>,
    known: &[&str],
    place: &str,
    elsewhere: &[(&str, &str)],
    fast: fn(&DeTable<'_>) -> Option<T>,
) -> Shaped<T> {
    if let Some(value) = fast(table) {
        return Shaped {
            value: Some(value),
            broken: Vec::new(),
            clean: true,
        };
    }
    let errors_before = out.error_count();
    // Borrowed until a key must go: the common, valid table is cloned
    // once, for the deserializer, and no more.
    let mut table = Cow::Borrowed(table);
    let unknown: Vec<Spanned<Cow<'_, str>>> = table
        .keys()
        .filter(|k| !known.contains(&k.get_ref().as_ref()))
        .cloned()
        .collect();
    for key in &unknown {
        unknown_key(out, key.span(), key.get_ref(), known, place, elsewhere);
        table.to_mut().remove(key);
    }
    let mut broken = Vec::new();
    let mut value = None;
    // Each failed round drops one key, so this ends; the bound is a
    // guard against a deserializer that errs without a matching key.
    for _ in 0..=table.len() {
        let whole = Spanned::new(span.clone(), DeValue::Table(table.as_ref().clone()));
        let err = match T::deserialize(ValueDeserializer::from(whole)) {
            Ok(typed) => {
                value = Some(typed);
                break;
            }
            Err(err) => err,
        };
        let at = err.span().map(|s| s.start);
        let culprit = at.and_then(|at| {
            table
                .iter()
                .find(|(k, v)| {
                    let (ks, vs) = (k.span(), v.span());
                    (ks.start <= at && at < ks.end.max(ks.start + 1))
                        || (vs.start <= at && at < vs.end.max(vs.start + 1))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
        });
        let Some((key, wrong)) = culprit else {
            out.push(Diagnostic::from_toml(out.source(), &err));
            break;
        };
        type_error(out, key.get_ref(), &wrong, &err);
        broken.push(key.get_ref().to_string());
        table.to_mut().remove(&key);
    }
    Shaped {
        value,
        broken,
        clean: out.error_count() == errors_before,
    }
}

fn unknown_key(
    out: &mut Collector<'_>,
    span: Range<usize>,
    key: &str,
    known: &[&str],
    place: &str,
    elsewhere: &[(&str, &str)],
) {
    let hint = if let Some((_, there)) = elsewhere.iter().find(|(k, _)| *k == key) {
        format!("`{key}` can only be set {there}")
    } else if let Some(near) = closest(key, known) {
        format!("did you mean `{near}`?")
    } else {
        let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        format!("expected one of {}", list.join(", "))
    };
    out.error(
        span,
        format!("unknown key {} {place}", lit(key)),
        Some(&hint),
    );
}

fn type_error(
    out: &mut Collector<'_>,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    err: &toml::de::Error,
) {
    let kind = kind_of(key);
    let at = err.span();
    let raw = out.source().text.get(value.span()).unwrap_or_default();
    if at == Some(value.span()) {
        let hint = match (kind, value.get_ref()) {
            // Account ids and cluster names can be all digits; quoting
            // keeps them (and an account's leading zeros) as written.
            (Kind::String, DeValue::Integer(_)) if key == "account" || key == "name" => {
                Some(format!("quote it: `\"{raw}\"`"))
            }
            (Kind::Bool, DeValue::String(s))
                if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
            {
                Some(format!("write `{}` without quotes", s.to_ascii_lowercase()))
            }
            (Kind::List, DeValue::String(_)) => {
                Some(format!("write a list, even for one entry: `[{raw}]`"))
            }
            (Kind::Integer, DeValue::String(s)) if s.parse::<u32>().is_ok() => {
                Some(format!("write it without quotes: `{s}`"))
            }
            _ => None,
        };
        out.error(
            value.span(),
            format!(
                "`{key}` must be {}, not {}",
                kind.expected(),
                type_of(value.get_ref())
            ),
            hint.as_deref(),
        );
        return;
    }
    if let (Kind::List, DeValue::Array(items)) = (kind, value.get_ref()) {
        if let Some(item) = items.iter().find(|i| Some(i.span()) == at) {
            out.error(
                item.span(),
                format!(
                    "entries of `{key}` must be strings, not {}",
                    type_of(item.get_ref())
                ),
                None,
            );
            return;
        }
    }
    out.push(Diagnostic::from_toml(out.source(), err));
}

/// What a key's value must be, for messages and hints.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Bool,
    List,
    Integer,
    Table,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Bool => "`true` or `false`",
            Kind::List => "a list of strings",
            Kind::Integer => "a whole number",
            Kind::Table => "a table",
        }
    }
}

fn kind_of(key: &str) -> Kind {
    match key {
        "public_access" | "private_access" | "private_access_from_exclusive" => Kind::Bool,
        "public_access_cidrs" | "private_access_from" => Kind::List,
        "wave" => Kind::Integer,
        "defaults" => Kind::Table,
        _ => Kind::String,
    }
}

/// "a string", "an integer"... for the type TOML parsed.
fn type_of(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Levenshtein distance, for "did you mean" on unknown keys (short strings).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    if key.chars().count() > 40 {
        return None;
    }
    known
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean() {
        assert_eq!(closest("regoin", raw::CLUSTER_KEYS), Some("region"));
        assert_eq!(
            closest("public_acess", raw::CLUSTER_KEYS),
            Some("public_access")
        );
        assert_eq!(closest("clusters", raw::TOP_KEYS), Some("cluster"));
        assert_eq!(closest("zone", raw::CLUSTER_KEYS), None);
    }
}
