//! File loading: which files a list of paths names, reading them, checking
//! each one, and what spans files. A file stands for itself, a directory for
//! every `*.toml` below it, recursively, in sorted order. Hidden entries
//! (`.git`, `.terraform`) are skipped and symbolic links to directories are
//! not followed (no loops). A file named twice is read once.
//!
//! Every file is read and checked, so one bad file does not hide the next;
//! across files this module keeps the digest of all bytes, finds a cluster
//! declared twice, and orders the diagnostics (file order, then position).
//! The checks of one file are `shape` then `cluster`; this module holds no
//! rule of its own beyond "declared twice".

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use super::cluster::{self, Outcome, Placement};
use super::rules::lit;
use super::shape;
use crate::desired::{ClusterKey, Desired, Origin};
use crate::diagnostic::{Collector, Diagnostic, Source};

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
    let (found, path_errors) = discover(paths);
    let mut early: Vec<Diagnostic> = path_errors.iter().map(path_diagnostic).collect();
    let mut inputs = Vec::with_capacity(found.len());
    for file in found {
        match std::fs::read(&file.path) {
            Ok(bytes) => inputs.push((file.display, bytes)),
            Err(source) => early.push(path_diagnostic(&PathError::Read {
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

fn path_diagnostic(err: &PathError) -> Diagnostic {
    Diagnostic::error(err.to_string()).maybe_hint(err.hint())
}

fn load_inputs(
    inputs: Vec<(String, Vec<u8>)>,
    early: Vec<Diagnostic>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let file_count = inputs.len();
    // Each file is checked on its own, on every core; what spans files (the
    // digest of all bytes, a cluster declared twice) is then taken in load
    // order, so the result does not depend on which file was done first.
    let checked: Vec<Checked> = inputs.into_par_iter().map(check_file).collect();
    let mut hasher = Sha256::new();
    let mut per_file: Vec<Vec<Diagnostic>> = Vec::with_capacity(file_count);
    let mut clusters = Vec::new();
    // One pass over all clusters of all files: each key is looked up once.
    let mut first_seen: HashMap<ClusterKey, Origin> = HashMap::new();
    for file in checked {
        let bytes = file
            .bytes
            .as_deref()
            .unwrap_or_else(|| file.source.text.as_bytes());
        // Lengths first, so no two different file lists hash the same.
        hasher.update((file.source.name.len() as u64).to_le_bytes());
        hasher.update(file.source.name.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);

        let mut diags = file.diagnostics;
        first_seen.reserve(file.outcomes.len());
        for outcome in file.outcomes {
            if let Some(key) = outcome.key {
                match first_seen.entry(key) {
                    Entry::Occupied(first) => {
                        diags.push(declared_twice(
                            &file.source,
                            &outcome.header,
                            first.key(),
                            first.get(),
                        ));
                        continue;
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(outcome.origin);
                    }
                }
            }
            if let Some(cluster) = outcome.cluster {
                clusters.push(cluster);
            }
        }
        per_file.push(diags);
    }

    // What checking used (the parsed documents, several times the text,
    // freed here or on those threads) stays in those threads' heaps unless
    // they give it back: the read and the planner, on other threads, would
    // not use it again (8 MB more at a 10,000-cluster plan's peak).
    rayon::broadcast(|_| crate::reclaim::release_here());

    let mut all = early;
    for mut diags in per_file {
        diags.sort_by_key(Diagnostic::offset);
        all.extend(diags);
    }
    if all.iter().any(Diagnostic::is_error) {
        return Err(all);
    }
    // Held for the whole run: no spare room (up to 40% of a vector grown
    // one push at a time).
    clusters.shrink_to_fit();
    Ok(Loaded {
        desired: Desired {
            clusters,
            digest: hex::encode(hasher.finalize()),
            allow_unverified_access: false,
        },
        warnings: all,
        files: file_count,
    })
}

/// One file, checked on its own.
struct Checked {
    source: Source,
    /// The bytes read, when they are not the text (not valid UTF-8): the
    /// digest is of the bytes.
    bytes: Option<Vec<u8>>,
    outcomes: Vec<Outcome>,
    diagnostics: Vec<Diagnostic>,
}

fn check_file((name, bytes): (String, Vec<u8>)) -> Checked {
    match String::from_utf8(bytes) {
        Ok(text) => {
            let source = Source::new(name, text);
            let mut out = Collector::new(&source);
            let outcomes = load_file(&mut out);
            let diagnostics = out.into_diagnostics();
            Checked {
                source,
                bytes: None,
                outcomes,
                diagnostics,
            }
        }
        Err(err) => {
            let valid = err.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(err.as_bytes()).into_owned();
            let source = Source::new(name, text);
            // The lossy text keeps the valid prefix byte for byte, then
            // U+FFFD (3 bytes) where the bad bytes were.
            let diagnostics = vec![Diagnostic::error("this file is not valid UTF-8")
                .at(&source, valid..valid + 3)
                .hint("manifests are UTF-8 text; save the file as UTF-8")];
            Checked {
                source,
                bytes: Some(err.into_bytes()),
                outcomes: Vec::new(),
                diagnostics,
            }
        }
    }
}

/// Checks one file: its shape, then the rules of its `[defaults]` and of
/// each of its clusters.
fn load_file(out: &mut Collector<'_>) -> Vec<Outcome> {
    let source = out.source();
    let Some(root) = shape::parse(out, &source.text) else {
        return Vec::new();
    };
    let top = shape::top_level(out, &root);
    let defaults = match top.defaults {
        Some(value) => {
            let shaped = shape::defaults(out, value);
            cluster::defaults(out, shaped)
        }
        None => Placement::default(),
    };
    let clean = out.error_count() == 0;
    shape::cluster_tables(out, top.cluster, clean)
        .into_iter()
        .map(|(header, table)| {
            let shaped = shape::cluster(out, header.clone(), table);
            cluster::cluster(out, header, shaped, &defaults)
        })
        .collect()
}

fn declared_twice(
    source: &Source,
    header: &std::ops::Range<usize>,
    key: &ClusterKey,
    first: &Origin,
) -> Diagnostic {
    let account = key
        .account
        .as_ref()
        .map(|a| format!(" of account `{a}`"))
        .unwrap_or_default();
    Diagnostic::error(format!(
        "cluster {} in `{}`{account} is declared twice",
        lit(&key.name),
        key.region
    ))
    .at(source, header.clone())
    .note(format!("first declared at {first}"))
    .hint("keep one `[[cluster]]` table per cluster")
}

/// Why a path gives no manifest.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("cannot read `{}`: {}", .path, io_message(.source))]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("no `*.toml` files in `{path}`")]
    Empty { path: String },
}

impl PathError {
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            PathError::Empty { .. } => {
                Some("manifests are `*.toml` files; pass a file, or a directory that holds some")
            }
            PathError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Some("check the path; it is relative to the current directory")
            }
            PathError::Read { .. } => None,
        }
    }
}

/// The OS's text, lowercased at the start and without `(os error N)`, so it
/// reads like eksgate's own messages.
fn io_message(err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// A file to load, named as the user will see it in messages.
#[derive(Debug)]
pub struct Found {
    pub display: String,
    pub path: PathBuf,
}

/// How a path is shown: as given, without a leading `./`.
pub fn display(path: &Path) -> String {
    let text = path.display().to_string();
    match text.strip_prefix("./") {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => text,
    }
}

/// Expands `paths` into the files to load, in order, with one error per path
/// that yields nothing.
pub fn discover(paths: &[PathBuf]) -> (Vec<Found>, Vec<PathError>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(source) => {
                errors.push(PathError::Read {
                    path: display(path),
                    source,
                });
                continue;
            }
        };
        let mut files = Vec::new();
        if meta.is_dir() {
            let errors_before = errors.len();
            walk(path, &mut files, &mut errors);
            files.sort();
            // An unreadable directory was reported already; "no files" would
            // only repeat it less precisely.
            if files.is_empty() && errors.len() == errors_before {
                errors.push(PathError::Empty {
                    path: display(path),
                });
            }
        } else {
            files.push(path.clone());
        }
        for file in files {
            // Canonical paths spot `a.toml` given twice, or given and also
            // found in a directory; when that fails, the path itself will do.
            let identity = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if seen.insert(identity) {
                found.push(Found {
                    display: display(&file),
                    path: file,
                });
            }
        }
    }
    (found, errors)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<PathError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            errors.push(PathError::Read {
                path: display(dir),
                source,
            });
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(source) => {
                errors.push(PathError::Read {
                    path: display(dir),
                    source,
                });
                continue;
            }
        };
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(&path, files, errors);
        } else if path.extension().is_some_and(|ext| ext == "toml")
            && (kind.is_file() || (kind.is_symlink() && path.is_file()))
        {
            files.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_give_sorted_toml_files_and_skip_hidden_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "b.toml",
            "a.toml",
            "notes.md",
            "sub/c.toml",
            ".git/x.toml",
            "sub/.hidden.toml",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let (found, errors) = discover(&[root.to_path_buf(), root.join("a.toml")]);
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<_> = found
            .iter()
            .map(|f| f.path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.toml", "b.toml", "sub/c.toml"]);
    }

    #[test]
    fn missing_paths_and_empty_directories_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (found, errors) = discover(&[dir.path().join("nope.toml"), dir.path().to_path_buf()]);
        assert!(found.is_empty());
        let messages: Vec<_> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 2);
        assert!(
            messages[0].ends_with("nope.toml`: no such file or directory"),
            "{}",
            messages[0]
        );
        assert!(
            messages[1].starts_with("no `*.toml` files in `"),
            "{}",
            messages[1]
        );
    }

    #[test]
    fn display_drops_a_leading_dot_slash() {
        assert_eq!(display(Path::new("./a/b.toml")), "a/b.toml");
        assert_eq!(display(Path::new("a.toml")), "a.toml");
        assert_eq!(display(Path::new(".")), ".");
    }
}
