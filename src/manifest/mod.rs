//! Manifests: finding the files, parsing the TOML with spans, and checking
//! every rule, into a [`Desired`] that the planner can trust without looking
//! again. Every mistake of a run is reported, each pointing at its
//! `file:line:col`: all files are read, every table is checked, and one bad
//! value does not hide the next.
//!
//! This module is pure apart from reading the files: it never talks to AWS,
//! never prints, and never guesses a value the manifest did not give.
//!
//! - `files`: which files the paths name (directories are walked);
//! - `raw`: the serde types of the TOML, the source of the JSON schema;
//! - `rules`: what AWS accepts for each kind of value.

mod files;
mod raw;
mod rules;

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::desired::{ClusterKey, Desired, DesiredCluster, EndpointAccess, Origin};
use crate::diagnostic::{Diagnostic, Source};
pub use raw::json_schema;
use rules::{lit, Problem, RoleArn};

/// A checked role: the ARN as written, and its parts.
type Role = (String, RoleArn);

fn parse_role(arn: &str) -> Result<Role, Problem> {
    rules::parse_role_arn(arn).map(|parts| (arn.to_string(), parts))
}

/// AWS's limit on `publicAccessCidrs` per cluster (not adjustable).
pub const MAX_PUBLIC_ACCESS_CIDRS: usize = 40;

/// What a successful load gives.
#[derive(Debug)]
pub struct Loaded {
    pub desired: Desired,
    /// Things worth a look that do not stop eksgate.
    pub warnings: Vec<Diagnostic>,
    /// How many files were read.
    pub files: usize,
}

/// Loads and checks the manifests under `paths` (files, or directories whose
/// `*.toml` files are read recursively in sorted order).
///
/// On failure, the error holds every diagnostic of the run (errors and
/// warnings) in file order, then position order.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, Vec<Diagnostic>> {
    let (found, path_errors) = files::discover(paths);
    let mut early: Vec<Diagnostic> = path_errors.iter().map(path_diagnostic).collect();
    let mut inputs = Vec::with_capacity(found.len());
    for file in found {
        match std::fs::read(&file.path) {
            Ok(bytes) => inputs.push((file.display, bytes)),
            Err(source) => early.push(path_diagnostic(&files::PathError::Read {
                path: file.display,
                source,
            })),
        }
    }
    load_inputs(inputs, early)
}

/// Loads manifests already in memory, as `(name, bytes)` in load order.
pub fn load_bytes(inputs: Vec<(String, Vec<u8>)>) -> Result<Loaded, Vec<Diagnostic>> {
    load_inputs(inputs, Vec::new())
}

fn path_diagnostic(err: &files::PathError) -> Diagnostic {
    let diag = Diagnostic::error(err.to_string());
    match err.hint() {
        Some(hint) => diag.hint(hint),
        None => diag,
    }
}

fn load_inputs(
    inputs: Vec<(String, Vec<u8>)>,
    early: Vec<Diagnostic>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let file_count = inputs.len();
    let mut hasher = Sha256::new();
    let mut per_file: Vec<Vec<Diagnostic>> = Vec::with_capacity(file_count);
    let mut clusters = Vec::new();
    // One pass over all clusters of all files: each key is looked up once.
    let mut first_seen: HashMap<ClusterKey, Origin> = HashMap::new();
    for (name, bytes) in inputs {
        // Lengths first, so no two different file lists hash the same.
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);

        let mut diags = Vec::new();
        let source = match String::from_utf8(bytes) {
            Ok(text) => Source::new(name, text),
            Err(err) => {
                let valid = err.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(err.as_bytes()).into_owned();
                let source = Source::new(name, text);
                // The lossy text keeps the valid prefix byte for byte, then
                // U+FFFD (3 bytes) where the bad bytes were.
                diags.push(
                    Diagnostic::error("this file is not valid UTF-8")
                        .at(&source, valid..valid + 3)
                        .hint("manifests are UTF-8 text; save the file as UTF-8"),
                );
                per_file.push(diags);
                continue;
            }
        };
        let outcomes = FileLoader::new(&source, &mut diags).load();
        for outcome in outcomes {
            if let Some(key) = outcome.key {
                match first_seen.entry(key) {
                    Entry::Occupied(first) => {
                        let key = first.key();
                        let account = key
                            .account
                            .as_ref()
                            .map(|a| format!(" of account `{a}`"))
                            .unwrap_or_default();
                        diags.push(
                            Diagnostic::error(format!(
                                "cluster {} in `{}`{account} is declared twice",
                                lit(&key.name),
                                key.region
                            ))
                            .at(&source, outcome.header.clone())
                            .note(format!("first declared at {}", first.get()))
                            .hint("keep one `[[cluster]]` table per cluster"),
                        );
                        continue;
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(outcome.origin.clone());
                    }
                }
            }
            if let Some(cluster) = outcome.cluster {
                clusters.push(cluster);
            }
        }
        per_file.push(diags);
    }

    let mut all = early;
    for mut diags in per_file {
        diags.sort_by_key(Diagnostic::offset);
        all.extend(diags);
    }
    if all.iter().any(Diagnostic::is_error) {
        return Err(all);
    }
    Ok(Loaded {
        desired: Desired {
            clusters,
            digest: hex::encode(hasher.finalize()),
        },
        warnings: all,
        files: file_count,
    })
}

/// What one `[[cluster]]` table gave: its key when name, region and account
/// could be read (for the duplicate check, even if other values are wrong),
/// and the cluster when the table had no error at all.
struct Outcome {
    header: Range<usize>,
    origin: Origin,
    key: Option<ClusterKey>,
    cluster: Option<DesiredCluster>,
}

/// A setting after checking.
#[derive(Clone, Debug)]
enum Field<T> {
    /// Not given.
    Absent,
    /// Given but wrong; already reported, so nothing may complain about it
    /// being missing.
    Broken,
    Valid {
        value: T,
        span: Range<usize>,
        /// Comes from `[defaults]`: checks of defaults alone were made there.
        inherited: bool,
    },
}

impl<T: Clone> Field<T> {
    fn value(&self) -> Option<&T> {
        match self {
            Field::Valid { value, .. } => Some(value),
            _ => None,
        }
    }

    fn inherit(&self) -> Field<T> {
        match self {
            Field::Valid { value, span, .. } => Field::Valid {
                value: value.clone(),
                span: span.clone(),
                inherited: true,
            },
            other => other.clone(),
        }
    }

    /// This table's own setting, or else the inherited one.
    fn or_inherit(self, default: &Field<T>) -> Field<T> {
        match self {
            Field::Absent => default.inherit(),
            own => own,
        }
    }
}

/// The checked `[defaults]` of a file.
#[derive(Clone, Debug)]
struct Defaults {
    region: Field<String>,
    account: Field<String>,
    role: Field<Role>,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            region: Field::Absent,
            account: Field::Absent,
            role: Field::Absent,
        }
    }
}

/// A table after the shape check: the typed value when it could be built,
/// and the known keys that were dropped because their value had the wrong
/// type (reported already).
struct Shaped<T> {
    value: Option<T>,
    broken: Vec<String>,
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

fn kind_of(key: &str) -> Kind {
    match key {
        "public_access" | "private_access" => Kind::Bool,
        "public_access_cidrs" | "private_access_from" => Kind::List,
        "wave" => Kind::Integer,
        "defaults" => Kind::Table,
        _ => Kind::String,
    }
}

fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::String => "a string",
        Kind::Bool => "`true` or `false`",
        Kind::List => "a list of strings",
        Kind::Integer => "a whole number",
        Kind::Table => "a table",
    }
}

/// "a string", "an integer"... for the type TOML parsed.
fn found(value: &DeValue<'_>) -> &'static str {
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

/// Loads one file's text; diagnostics go to `diags`.
struct FileLoader<'a> {
    source: &'a Source,
    text: &'a str,
    diags: &'a mut Vec<Diagnostic>,
}

impl<'a> FileLoader<'a> {
    fn new(source: &'a Source, diags: &'a mut Vec<Diagnostic>) -> Self {
        FileLoader {
            source,
            text: &source.text,
            diags,
        }
    }

    fn pos(&self, span: &Range<usize>) -> String {
        self.source.position(span.start)
    }

    fn error(&mut self, span: Range<usize>, message: impl Into<String>, hint: Option<&str>) {
        let mut diag = Diagnostic::error(message).at(self.source, span);
        if let Some(hint) = hint {
            diag = diag.hint(hint);
        }
        self.diags.push(diag);
    }

    fn problem(&mut self, span: Range<usize>, problem: Problem) {
        let Problem { message, hint } = problem;
        self.error(span, message, hint.as_deref());
    }

    fn error_count(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }

    fn load(mut self) -> Vec<Outcome> {
        let text = self.text;
        let (root, errors) = DeTable::parse_recoverable(text);
        // After a syntax error the parser's recovery can invent follow-on
        // errors; the first one by position is the one worth reading.
        if let Some(first) = errors
            .iter()
            .min_by_key(|e| e.span().map_or(usize::MAX, |s| s.start))
        {
            self.syntax_error(first);
            return Vec::new();
        }
        let root = root.into_inner();
        let mut defaults = Defaults::default();
        let mut clusters = None;
        for (key, value) in root.iter() {
            match key.get_ref().as_ref() {
                "defaults" => defaults = self.defaults(value),
                "cluster" => clusters = Some((key.span(), value)),
                other => {
                    self.unknown_key(key.span(), other, raw::TOP_KEYS, "at the top level", &[])
                }
            }
        }
        let mut outcomes = Vec::new();
        // A file whose keys are wrong has better things to say than "no
        // clusters" (which is often a consequence, as with `[[clusters]]`).
        let clean = self.error_count() == 0;
        let no_clusters = || {
            Diagnostic::warning("no `[[cluster]]` in this file").hint(
                "a manifest lists its clusters as `[[cluster]]` tables; add one, or stop passing this file",
            )
        };
        match clusters {
            None if clean => self
                .diags
                .push(no_clusters().in_file(self.source.name.clone())),
            None => {}
            Some((_, value)) => match value.get_ref() {
                DeValue::Array(items) if items.is_empty() => {
                    if clean {
                        self.diags.push(no_clusters().at(self.source, value.span()))
                    }
                }
                DeValue::Array(items) => {
                    outcomes.reserve(items.len());
                    for item in items.iter() {
                        match item.get_ref() {
                            DeValue::Table(table) => {
                                outcomes.push(self.cluster(item.span(), table, &defaults))
                            }
                            other => self.error(
                                item.span(),
                                format!("each `cluster` must be a table, not {}", found(other)),
                                Some("write one `[[cluster]]` table per cluster"),
                            ),
                        }
                    }
                }
                other => self.error(
                    value.span(),
                    format!("`cluster` must be an array of tables, not {}", found(other)),
                    Some("write `[[cluster]]`, with double brackets, once per cluster"),
                ),
            },
        }
        outcomes
    }

    fn syntax_error(&mut self, err: &toml::de::Error) {
        let mut diag = Diagnostic::from_toml(self.source, err);
        if diag.message == "duplicate key" {
            if let Some(key) = err.span().and_then(|s| self.text.get(s)) {
                diag.message = format!("duplicate key {}", lit(key));
            }
            diag = diag.hint("a key can be set only once in a table");
        }
        self.diags.push(diag);
    }

    fn unknown_key(
        &mut self,
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
        self.error(
            span,
            format!("unknown key {} {place}", lit(key)),
            Some(&hint),
        );
    }

    /// Checks a table's keys and types into `T`. Unknown keys and values of
    /// the wrong type are reported and dropped one by one, so every one of
    /// them is reported, not only the first serde meets.
    fn shape<T: DeserializeOwned>(
        &mut self,
        span: Range<usize>,
        table: &DeTable<'_>,
        known: &[&str],
        place: &str,
        elsewhere: &[(&str, &str)],
    ) -> Shaped<T> {
        // Borrowed until a key must go: the common, valid table is cloned
        // once, for the deserializer, and no more.
        let mut table = Cow::Borrowed(table);
        let unknown: Vec<Spanned<Cow<'_, str>>> = table
            .keys()
            .filter(|k| !known.contains(&k.get_ref().as_ref()))
            .cloned()
            .collect();
        for key in &unknown {
            self.unknown_key(key.span(), key.get_ref(), known, place, elsewhere);
            table.to_mut().remove(key);
        }
        let mut broken = Vec::new();
        // Each failed round drops one key, so this ends; the bound is a
        // guard against a deserializer that errs without a matching key.
        for _ in 0..=table.len() {
            let value = Spanned::new(span.clone(), DeValue::Table(table.as_ref().clone()));
            let err = match T::deserialize(ValueDeserializer::from(value)) {
                Ok(value) => {
                    return Shaped {
                        value: Some(value),
                        broken,
                    }
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
            let Some((key, value)) = culprit else {
                self.diags.push(Diagnostic::from_toml(self.source, &err));
                return Shaped {
                    value: None,
                    broken,
                };
            };
            self.type_error(key.get_ref(), &value, &err);
            broken.push(key.get_ref().to_string());
            table.to_mut().remove(&key);
        }
        Shaped {
            value: None,
            broken,
        }
    }

    fn type_error(&mut self, key: &str, value: &Spanned<DeValue<'_>>, err: &toml::de::Error) {
        let kind = kind_of(key);
        let at = err.span();
        let raw = self.text.get(value.span()).unwrap_or_default();
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
            self.error(
                value.span(),
                format!(
                    "`{key}` must be {}, not {}",
                    expected(kind),
                    found(value.get_ref())
                ),
                hint.as_deref(),
            );
            return;
        }
        if let (Kind::List, DeValue::Array(items)) = (kind, value.get_ref()) {
            if let Some(item) = items.iter().find(|i| Some(i.span()) == at) {
                self.error(
                    item.span(),
                    format!(
                        "entries of `{key}` must be strings, not {}",
                        found(item.get_ref())
                    ),
                    None,
                );
                return;
            }
        }
        self.diags.push(Diagnostic::from_toml(self.source, err));
    }

    fn defaults(&mut self, value: &Spanned<DeValue<'_>>) -> Defaults {
        let DeValue::Table(table) = value.get_ref() else {
            self.error(
                value.span(),
                format!("`defaults` must be a table, not {}", found(value.get_ref())),
                Some("write it as a `[defaults]` section"),
            );
            return Defaults::default();
        };
        const ELSEWHERE: &[(&str, &str)] = &[
            ("name", "in a `[[cluster]]` table"),
            ("public_access", "in a `[[cluster]]` table"),
            ("private_access", "in a `[[cluster]]` table"),
            ("public_access_cidrs", "in a `[[cluster]]` table"),
            ("private_access_from", "in a `[[cluster]]` table"),
            ("wave", "in a `[[cluster]]` table"),
        ];
        let Shaped { value, broken } = self.shape::<raw::Defaults>(
            value.span(),
            table,
            raw::DEFAULTS_KEYS,
            "in `[defaults]`",
            ELSEWHERE,
        );
        let Some(raw) = value else {
            return Defaults {
                region: Field::Broken,
                account: Field::Broken,
                role: Field::Broken,
            };
        };
        let is_broken = |k: &str| broken.iter().any(|b| b == k);
        let defaults = Defaults {
            region: self.check(&raw.region, is_broken("region"), |s| {
                rules::check_region(s).map(|()| s.to_string())
            }),
            account: self.check(&raw.account, is_broken("account"), |s| {
                rules::check_account(s).map(|()| s.to_string())
            }),
            role: self.check(&raw.role_arn, is_broken("role_arn"), parse_role),
        };
        self.role_matches(&defaults.role, &defaults.account, &defaults.region);
        defaults
    }

    fn check<T>(
        &mut self,
        value: &Option<Spanned<String>>,
        broken: bool,
        rule: impl Fn(&str) -> Result<T, Problem>,
    ) -> Field<T> {
        if broken {
            return Field::Broken;
        }
        let Some(value) = value else {
            return Field::Absent;
        };
        match rule(value.get_ref()) {
            Ok(checked) => Field::Valid {
                value: checked,
                span: value.span(),
                inherited: false,
            },
            Err(problem) => {
                self.problem(value.span(), problem);
                Field::Broken
            }
        }
    }

    /// A role must be in the pinned account and in the region's partition.
    /// Pairs that both come from `[defaults]` were checked there, once.
    fn role_matches(
        &mut self,
        role: &Field<Role>,
        account: &Field<String>,
        region: &Field<String>,
    ) {
        let Field::Valid {
            value: (_, arn),
            span: role_span,
            inherited: role_inherited,
        } = role
        else {
            return;
        };
        if let Field::Valid {
            value: account,
            span,
            inherited,
        } = account
        {
            if !(*role_inherited && *inherited) && arn.account != *account {
                let (at, other, other_key) = if *role_inherited {
                    (span, role_span, "role_arn")
                } else {
                    (role_span, span, "account")
                };
                let note = format!("`{other_key}` is set at {}", self.pos(other));
                self.diags.push(
                    Diagnostic::error(format!(
                        "`role_arn` is in account `{}`, but `account` is `{account}`",
                        arn.account
                    ))
                    .at(self.source, at.clone())
                    .note(note)
                    .hint("eksgate acts with the role's credentials, so both must name the same account"),
                );
            }
        }
        if let Field::Valid {
            value: region,
            span,
            inherited,
        } = region
        {
            let partition = rules::partition_of_region(region);
            if !(*role_inherited && *inherited) && arn.partition != partition {
                let (at, other, other_key) = if *role_inherited {
                    (span, role_span, "role_arn")
                } else {
                    (role_span, span, "region")
                };
                let note = format!("`{other_key}` is set at {}", self.pos(other));
                self.diags.push(
                    Diagnostic::error(format!(
                        "`role_arn` is in partition `{}`, but region `{region}` is in `{partition}`",
                        arn.partition
                    ))
                    .at(self.source, at.clone())
                    .note(note)
                    .hint(format!(
                        "use a role of the `{partition}` partition: `arn:{partition}:iam::ACCOUNT:role/NAME`"
                    )),
                );
            }
        }
    }

    fn cluster(
        &mut self,
        header: Range<usize>,
        table: &DeTable<'_>,
        defaults: &Defaults,
    ) -> Outcome {
        let (line, column) = self.source.line_col(header.start);
        let origin = Origin {
            file: self.source.name.to_string(),
            line,
            column,
        };
        let errors_before = self.error_count();
        let Shaped { value, broken } = self.shape::<raw::Cluster>(
            header.clone(),
            table,
            raw::CLUSTER_KEYS,
            "in `[[cluster]]`",
            &[],
        );
        let none = |origin| Outcome {
            header: header.clone(),
            origin,
            key: None,
            cluster: None,
        };
        let Some(raw) = value else {
            return none(origin);
        };
        let is_broken = |k: &str| broken.iter().any(|b| b == k);

        let name = self.check(&raw.name, is_broken("name"), |s| {
            rules::check_name(s).map(|()| s.to_string())
        });
        if let Field::Absent = name {
            self.error(
                header.clone(),
                "`[[cluster]]` has no `name`",
                Some("add `name = \"...\"`, the EKS cluster's name"),
            );
        }
        let label = match name.value() {
            Some(name) => format!("cluster {}", lit(name)),
            None => "this cluster".to_string(),
        };

        let region = self
            .check(&raw.region, is_broken("region"), |s| {
                rules::check_region(s).map(|()| s.to_string())
            })
            .or_inherit(&defaults.region);
        if let Field::Absent = region {
            self.error(
                header.clone(),
                format!("{label} has no `region`, and `[defaults]` gives none"),
                Some("add `region = \"eu-west-1\"` to the table, or to `[defaults]` for every cluster of this file"),
            );
        }
        let account = self
            .check(&raw.account, is_broken("account"), |s| {
                rules::check_account(s).map(|()| s.to_string())
            })
            .or_inherit(&defaults.account);
        let role = self
            .check(&raw.role_arn, is_broken("role_arn"), parse_role)
            .or_inherit(&defaults.role);
        self.role_matches(&role, &account, &region);

        let public = self.flag(
            &raw.public_access,
            is_broken("public_access"),
            "public_access",
            &label,
            &header,
        );
        let private = self.flag(
            &raw.private_access,
            is_broken("private_access"),
            "private_access",
            &label,
            &header,
        );
        if let (Some((false, _)), Some((false, private_span))) = (&public, &private) {
            self.error(
                private_span.clone(),
                "`public_access` and `private_access` cannot both be false",
                Some("AWS rejects it (\"Both private and public endpoint access cannot be false\"); for a private-only endpoint set `private_access = true`"),
            );
        }

        let public_access_cidrs = raw.public_access_cidrs.as_ref().map(|list| {
            let nets = self.list(list, "public_access_cidrs", rules::parse_cidr);
            if list.get_ref().is_empty() {
                self.error(
                    list.span(),
                    "`public_access_cidrs` is empty",
                    Some("list at least one CIDR block, or remove the key to leave the list as it is; `[\"0.0.0.0/0\"]` opens the endpoint to everyone"),
                );
            }
            let count = list.get_ref().len();
            if let Some(first_extra) = list.get_ref().get(MAX_PUBLIC_ACCESS_CIDRS) {
                self.error(
                    first_extra.span(),
                    format!("`public_access_cidrs` lists {count} blocks, AWS allows at most {MAX_PUBLIC_ACCESS_CIDRS}"),
                    Some("merge neighbouring blocks into wider ones, or reach the cluster through the private endpoint"),
                );
            }
            if let Some((false, _)) = public {
                self.error(
                    list.span(),
                    "`public_access_cidrs` is set but `public_access = false`",
                    Some("remove `public_access_cidrs`, or set `public_access = true`"),
                );
            }
            nets
        });
        let private_access_from = raw.private_access_from.as_ref().map(|list| {
            let sources = self.list(list, "private_access_from", rules::parse_access_source);
            if let Some((false, _)) = private {
                self.error(
                    list.span(),
                    "`private_access_from` is set but `private_access = false`",
                    Some("remove `private_access_from`, or set `private_access = true`"),
                );
            }
            sources
        });
        let private_only = matches!((&public, &private), (Some((false, _)), Some((true, _))));
        let nothing_declared = match &raw.private_access_from {
            None => !is_broken("private_access_from"),
            Some(list) => list.get_ref().is_empty(),
        };
        if private_only && nothing_declared {
            let at = raw.name.as_ref().map_or(header.clone(), |name| name.span());
            self.diags.push(
                Diagnostic::warning("nothing outside the VPC is declared to reach this cluster")
                    .at(self.source, at)
                    .hint("list the security groups or CIDR blocks of your bastions, CI runners or VPN in `private_access_from`, so eksgate opens TCP 443 to them"),
            );
        }

        let wave = match &raw.wave {
            None => Some(0),
            Some(wave) => match u32::try_from(*wave.get_ref()) {
                Ok(wave) => Some(wave),
                Err(_) => {
                    self.error(
                        wave.span(),
                        format!("`wave` must be between 0 and {}", u32::MAX),
                        Some("waves roll out in increasing order, starting at 0"),
                    );
                    None
                }
            },
        };

        let key = match (&name, &region, &account, &role) {
            (
                Field::Valid { value: name, .. },
                Field::Valid { value: region, .. },
                account,
                role,
            ) if !matches!(account, Field::Broken) && !matches!(role, Field::Broken) => {
                Some(ClusterKey {
                    // With a role and no pinned account, the role's account is
                    // where the calls land: pin that one.
                    account: account
                        .value()
                        .cloned()
                        .or_else(|| role.value().map(|(_, r)| r.account.clone())),
                    region: region.clone(),
                    name: name.clone(),
                })
            }
            _ => None,
        };

        let clean = self.error_count() == errors_before;
        let cluster = match (clean, &key, public, private, wave) {
            (true, Some(key), Some((public, _)), Some((private, _)), Some(wave)) => {
                let role_arn = role.value().map(|(arn, _)| arn.clone());
                Some(DesiredCluster {
                    key: key.clone(),
                    role_arn,
                    endpoint: EndpointAccess { public, private },
                    public_access_cidrs: public_access_cidrs.flatten(),
                    private_access_from: private_access_from.flatten().unwrap_or_default(),
                    wave,
                    origin: origin.clone(),
                })
            }
            _ => None,
        };
        Outcome {
            header,
            origin,
            key,
            cluster,
        }
    }

    /// A required boolean: its value and span, or `None` (reported).
    fn flag(
        &mut self,
        value: &Option<Spanned<bool>>,
        broken: bool,
        key: &str,
        label: &str,
        header: &Range<usize>,
    ) -> Option<(bool, Range<usize>)> {
        match value {
            Some(v) => Some((*v.get_ref(), v.span())),
            None if broken => None,
            None => {
                self.error(
                    header.clone(),
                    format!("{label} does not set `{key}`"),
                    Some(&format!(
                        "add `{key} = true` or `{key} = false`; eksgate does not guess which endpoints you want"
                    )),
                );
                None
            }
        }
    }

    /// Checks every entry of a list, and that none repeats after
    /// normalising. `None` when any entry is wrong.
    fn list<T: Ord + Clone + std::hash::Hash + std::fmt::Display>(
        &mut self,
        list: &Spanned<Vec<Spanned<String>>>,
        key: &str,
        rule: fn(&str) -> Result<T, Problem>,
    ) -> Option<BTreeSet<T>> {
        let mut first_at: HashMap<T, Range<usize>> = HashMap::new();
        let mut ok = true;
        for entry in list.get_ref() {
            match rule(entry.get_ref()) {
                Ok(value) => match first_at.entry(value) {
                    Entry::Occupied(first) => {
                        ok = false;
                        let note = format!("first listed at {}", self.pos(first.get()));
                        self.diags.push(
                            Diagnostic::error(format!(
                                "`{}` is listed twice in `{key}`",
                                first.key()
                            ))
                            .at(self.source, entry.span())
                            .note(note)
                            .hint("remove one of the two"),
                        );
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(entry.span());
                    }
                },
                Err(problem) => {
                    ok = false;
                    self.problem(entry.span(), problem);
                }
            }
        }
        ok.then(|| first_at.into_keys().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::AccessSource;
    use crate::diagnostic::Severity;
    use proptest::prelude::*;

    fn load_one(text: &str) -> Result<Loaded, Vec<Diagnostic>> {
        load_bytes(vec![("m.toml".to_string(), text.as_bytes().to_vec())])
    }

    /// Every diagnostic as `"error: MESSAGE @LINE:COL"`, in order.
    fn messages(diags: &[Diagnostic]) -> Vec<String> {
        diags
            .iter()
            .map(|d| {
                let level = match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                let at = d
                    .position()
                    .and_then(|p| p.strip_prefix("m.toml").map(str::to_string))
                    .unwrap_or_default();
                format!("{level}: {}{at}", d.message)
            })
            .collect()
    }

    fn diagnostics_of(text: &str) -> Vec<String> {
        match load_one(text) {
            Ok(loaded) => messages(&loaded.warnings),
            Err(diags) => messages(&diags),
        }
    }

    const OK: &str = "[[cluster]]\nname = \"a\"\nregion = \"eu-west-1\"\npublic_access = true\nprivate_access = true\n";

    /// One cluster table with `body` after a valid name.
    fn cluster(body: &str) -> String {
        format!("[[cluster]]\nname = \"a\"\n{body}")
    }

    #[test]
    fn rules_table() {
        let both = "public_access = true\nprivate_access = true\n";
        let cases: Vec<(&str, String, Vec<&str>)> = vec![
            ("valid", OK.to_string(), vec![]),
            (
                "region from defaults",
                format!("[defaults]\nregion = \"eu-west-1\"\n{}", cluster(both)),
                vec![],
            ),
            (
                "no region anywhere",
                cluster(both),
                vec!["error: cluster `a` has no `region`, and `[defaults]` gives none:1:1"],
            ),
            (
                "bad defaults region is reported once, not missing",
                format!("[defaults]\nregion = \"eu-west\"\n{}{}", cluster(both), cluster(both).replace("\"a\"", "\"b\"")),
                vec!["error: `eu-west` is not an AWS region:2:10"],
            ),
            (
                "both endpoints off",
                cluster("region = \"eu-west-1\"\npublic_access = false\nprivate_access = false\n"),
                vec!["error: `public_access` and `private_access` cannot both be false:5:18"],
            ),
            (
                "private only without clients warns",
                cluster("region = \"eu-west-1\"\npublic_access = false\nprivate_access = true\n"),
                vec!["warning: nothing outside the VPC is declared to reach this cluster:2:8"],
            ),
            (
                "private only with an empty list warns",
                cluster("region = \"eu-west-1\"\npublic_access = false\nprivate_access = true\nprivate_access_from = []\n"),
                vec!["warning: nothing outside the VPC is declared to reach this cluster:2:8"],
            ),
            (
                "missing flags",
                cluster("region = \"eu-west-1\"\n"),
                vec![
                    "error: cluster `a` does not set `public_access`:1:1",
                    "error: cluster `a` does not set `private_access`:1:1",
                ],
            ),
            (
                "a wrong type does not also count as missing",
                cluster("region = \"eu-west-1\"\npublic_access = \"yes\"\nprivate_access = true\n"),
                vec!["error: `public_access` must be `true` or `false`, not a string:4:17"],
            ),
            (
                "every wrong key of one table is reported",
                cluster("region = 1\npublic_access = 2\nprivate_access = true\nregoin = \"x\"\n"),
                vec![
                    "error: `region` must be a string, not an integer:3:10",
                    "error: `public_access` must be `true` or `false`, not an integer:4:17",
                    "error: unknown key `regoin` in `[[cluster]]`:6:1",
                ],
            ),
            (
                "host bits",
                cluster(&format!("region = \"eu-west-1\"\n{both}public_access_cidrs = [\"10.0.0.1/8\"]\n")),
                vec!["error: `10.0.0.1/8` has host bits set:6:24"],
            ),
            (
                "duplicate cidr after normalising",
                cluster(&format!("region = \"eu-west-1\"\n{both}public_access_cidrs = [\"2001:db8::/32\", \"2001:DB8:0::/32\"]\n")),
                vec!["error: `2001:db8::/32` is listed twice in `public_access_cidrs`:6:41"],
            ),
            (
                "41 cidrs",
                cluster(&format!(
                    "region = \"eu-west-1\"\n{both}public_access_cidrs = [{}]\n",
                    (0..41).map(|i| format!("\"10.{i}.0.0/16\"")).collect::<Vec<_>>().join(", ")
                )),
                vec!["error: `public_access_cidrs` lists 41 blocks, AWS allows at most 40:6:654"],
            ),
            (
                "cidrs with public off",
                cluster("region = \"eu-west-1\"\npublic_access = false\nprivate_access = true\nprivate_access_from = [\"sg-0a1b2c3d\"]\npublic_access_cidrs = [\"10.0.0.0/8\"]\n"),
                vec!["error: `public_access_cidrs` is set but `public_access = false`:7:23"],
            ),
            (
                "clients with private off",
                cluster("region = \"eu-west-1\"\npublic_access = true\nprivate_access = false\nprivate_access_from = [\"10.0.0.0/8\"]\n"),
                vec!["error: `private_access_from` is set but `private_access = false`:6:23"],
            ),
            (
                "bad client",
                cluster(&format!("region = \"eu-west-1\"\n{both}private_access_from = [\"sg-12\", \"bastion\"]\n")),
                vec![
                    "error: `sg-12` is not a security-group id:6:24",
                    "error: `bastion` is neither a security-group id nor a CIDR block:6:33",
                ],
            ),
            (
                "account and role disagree",
                cluster(&format!("region = \"eu-west-1\"\naccount = \"111122223333\"\nrole_arn = \"arn:aws:iam::444455556666:role/x\"\n{both}")),
                vec!["error: `role_arn` is in account `444455556666`, but `account` is `111122223333`:5:12"],
            ),
            (
                "cluster account against defaults role points at the cluster",
                format!("[defaults]\nrole_arn = \"arn:aws:iam::444455556666:role/x\"\n{}", cluster(&format!("region = \"eu-west-1\"\naccount = \"111122223333\"\n{both}"))),
                vec!["error: `role_arn` is in account `444455556666`, but `account` is `111122223333`:6:11"],
            ),
            (
                "role of another partition",
                cluster(&format!("region = \"cn-north-1\"\nrole_arn = \"arn:aws:iam::444455556666:role/x\"\n{both}")),
                vec!["error: `role_arn` is in partition `aws`, but region `cn-north-1` is in `aws-cn`:4:12"],
            ),
            (
                "negative wave",
                cluster(&format!("region = \"eu-west-1\"\n{both}wave = -1\n")),
                vec!["error: `wave` must be between 0 and 4294967295:6:8"],
            ),
            (
                "no name",
                "[[cluster]]\nregion = \"eu-west-1\"\npublic_access = true\nprivate_access = true\n".to_string(),
                vec!["error: `[[cluster]]` has no `name`:1:1"],
            ),
            (
                "single brackets",
                "[cluster]\nname = \"a\"\n".to_string(),
                vec!["error: `cluster` must be an array of tables, not a table:1:1"],
            ),
            (
                "empty file",
                String::new(),
                vec!["warning: no `[[cluster]]` in this file"],
            ),
            (
                "unknown top-level key",
                format!("[default]\nregion = \"eu-west-1\"\n{OK}"),
                vec!["error: unknown key `default` at the top level:1:2"],
            ),
            (
                "cluster key in defaults",
                format!("[defaults]\nwave = 1\n{OK}"),
                vec!["error: unknown key `wave` in `[defaults]`:2:1"],
            ),
            (
                "duplicate in one file",
                format!("{OK}{OK}"),
                vec!["error: cluster `a` in `eu-west-1` is declared twice:6:1"],
            ),
            (
                "same name in another region is another cluster",
                format!("{OK}{}", OK.replace("eu-west-1", "eu-west-2")),
                vec![],
            ),
            (
                "same name in another account is another cluster",
                format!("{OK}{}", OK.replace("region", "account = \"111122223333\"\nregion")),
                vec![],
            ),
            (
                "syntax",
                "[[cluster]\nname = \"a\"\n".to_string(),
                vec!["error: unclosed array table, expected `]`:1:11"],
            ),
        ];
        for (name, text, want) in cases {
            assert_eq!(diagnostics_of(&text), want, "case {name:?}\n{text}");
        }
    }

    #[test]
    fn a_valid_manifest_becomes_normalised_desired_state() {
        let text = r#"
[defaults]
region = "eu-west-1"
role_arn = "arn:aws:iam::111122223333:role/eksgate"

[[cluster]]
name = "payments-prod"
public_access = true
private_access = true
public_access_cidrs = ["203.0.113.0/24", "198.51.100.0/24"]
private_access_from = ["sg-0a1b2c3d4e5f67890", "10.20.0.0/16"]
wave = 2
"#;
        let loaded = load_one(text).unwrap();
        assert_eq!(loaded.files, 1);
        assert!(loaded.warnings.is_empty());
        let c = &loaded.desired.clusters[0];
        assert_eq!(
            c.key,
            ClusterKey {
                account: Some("111122223333".into()),
                region: "eu-west-1".into(),
                name: "payments-prod".into()
            }
        );
        assert_eq!(
            c.role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/eksgate")
        );
        assert_eq!(
            c.endpoint,
            EndpointAccess {
                public: true,
                private: true
            }
        );
        let cidrs: Vec<String> = c
            .public_access_cidrs
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(cidrs, ["198.51.100.0/24", "203.0.113.0/24"]);
        assert_eq!(
            c.private_access_from,
            BTreeSet::from([
                AccessSource::SecurityGroup("sg-0a1b2c3d4e5f67890".into()),
                AccessSource::Cidr("10.20.0.0/16".parse().unwrap()),
            ])
        );
        assert_eq!(c.wave, 2);
        assert_eq!(c.origin.to_string(), "m.toml:6:1");
        assert_eq!(loaded.desired.digest.len(), 64);
    }

    #[test]
    fn duplicates_across_files_name_both_places() {
        let files = vec![
            ("a.toml".to_string(), OK.as_bytes().to_vec()),
            ("b.toml".to_string(), format!("\n{OK}").into_bytes()),
        ];
        let diags = load_bytes(files).unwrap_err();
        assert_eq!(diags.len(), 1);
        let text = diags[0].render(false);
        assert!(text.contains("--> b.toml:2:1"), "{text}");
        assert!(
            text.contains("note: first declared at a.toml:1:1"),
            "{text}"
        );
    }

    #[test]
    fn errors_of_every_file_are_reported() {
        let files = vec![
            ("a.toml".to_string(), b"[[cluster]\n".to_vec()),
            ("b.toml".to_string(), cluster("region = 5\n").into_bytes()),
        ];
        let diags = load_bytes(files).unwrap_err();
        let places: Vec<_> = diags.iter().filter_map(Diagnostic::position).collect();
        assert_eq!(
            places,
            ["a.toml:1:11", "b.toml:1:1", "b.toml:1:1", "b.toml:3:10"]
        );
    }

    #[test]
    fn digest_covers_names_and_bytes_in_order() {
        let digest = |files: Vec<(&str, &str)>| {
            load_bytes(
                files
                    .into_iter()
                    .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
                    .collect(),
            )
            .unwrap()
            .desired
            .digest
        };
        let other = OK.replace("\"a\"", "\"b\"");
        let base = digest(vec![("a.toml", OK), ("b.toml", &other)]);
        assert_eq!(base, digest(vec![("a.toml", OK), ("b.toml", &other)]));
        assert_ne!(base, digest(vec![("b.toml", &other), ("a.toml", OK)]));
        assert_ne!(base, digest(vec![("x.toml", OK), ("b.toml", &other)]));
        assert_ne!(
            base,
            digest(vec![("a.toml", &format!("{OK}\n")), ("b.toml", &other)])
        );
    }

    #[test]
    fn invalid_utf8_points_at_the_first_bad_byte() {
        let diags =
            load_bytes(vec![("m.toml".into(), b"# ok\nname = \"\xff\"\n".to_vec())]).unwrap_err();
        assert_eq!(
            messages(&diags),
            ["error: this file is not valid UTF-8:2:9"]
        );
        diags[0].render(false);
    }

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

    /// Loads `text`, then renders every diagnostic: neither may panic.
    fn survives(text: &[u8]) {
        let diags = match load_bytes(vec![("p.toml".to_string(), text.to_vec())]) {
            Ok(loaded) => loaded.warnings,
            Err(diags) => diags,
        };
        for d in &diags {
            d.render(false);
            d.render(true);
        }
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>().prop_map(|s| format!("{s:?}")),
            "[a-z0-9:/.\\-]{0,24}".prop_map(|s| format!("\"{s}\"")),
            any::<i64>().prop_map(|i| i.to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            proptest::collection::vec("[0-9a-fsg:./\\-]{0,20}", 0..5)
                .prop_map(|v| format!("{v:?}")),
            Just("1979-05-27T07:32:00Z".to_string()),
            Just("{ a = 1 }".to_string()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_do_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            survives(&bytes);
        }

        #[test]
        fn toml_ish_text_does_not_panic(text in "(\\[\\[?[a-z_]{0,10}\\]?\\]?\n|[a-z_]{0,12} ?= ?(\"[^\"\n]{0,12}\"?|[0-9-]{0,5}|true|\\[[^\\]\n]{0,20}\\]?)\n|#[^\n]{0,8}\n|\t \u{e9}\r\n){0,16}") {
            survives(text.as_bytes());
        }

        #[test]
        fn random_values_in_cluster_fields_do_not_panic(
            fields in proptest::collection::vec(
                (proptest::sample::select(raw::CLUSTER_KEYS.to_vec()), value()),
                0..10,
            ),
            defaults in proptest::collection::vec(
                (proptest::sample::select(raw::DEFAULTS_KEYS.to_vec()), value()),
                0..3,
            ),
        ) {
            let mut text = String::from("[defaults]\n");
            for (k, v) in &defaults {
                text.push_str(&format!("{k} = {v}\n"));
            }
            text.push_str("[[cluster]]\n");
            for (k, v) in &fields {
                text.push_str(&format!("{k} = {v}\n"));
            }
            survives(text.as_bytes());
        }
    }

    /// Loads 10,000 clusters and prints the time. Run it with
    /// `cargo test --lib manifest::tests::ten_thousand -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement, not a check"]
    fn ten_thousand_clusters() {
        let mut text =
            String::from("[defaults]\nregion = \"eu-west-1\"\naccount = \"111122223333\"\n");
        // `EKSGATE_BENCH_CLUSTERS` changes the count, to see that time grows
        // linearly.
        let count: usize = std::env::var("EKSGATE_BENCH_CLUSTERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        for i in 0..count {
            text.push_str(&format!(
                "\n[[cluster]]\nname = \"cluster-{i}\"\nregion = \"{}\"\npublic_access = true\nprivate_access = true\npublic_access_cidrs = [\"203.0.{}.0/24\", \"198.51.100.0/24\"]\nprivate_access_from = [\"sg-0a1b2c3d4e5f67890\", \"10.{}.0.0/16\"]\nwave = {}\n",
                if i % 2 == 0 { "eu-west-1" } else { "us-east-1" },
                i % 256,
                i % 256,
                i % 5
            ));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.toml");
        std::fs::write(&path, &text).unwrap();
        let parse = std::time::Instant::now();
        let _ = DeTable::parse(&text).unwrap();
        println!("parsing alone: {:?}", parse.elapsed());
        let hashing = std::time::Instant::now();
        let _ = hex::encode(Sha256::digest(text.as_bytes()));
        println!("hashing alone: {:?}", hashing.elapsed());
        let start = std::time::Instant::now();
        let loaded = load(&[path]).unwrap();
        let took = start.elapsed();
        assert_eq!(loaded.desired.clusters.len(), count);
        println!("loaded {} bytes, {count} clusters in {took:?}", text.len());
    }
}
