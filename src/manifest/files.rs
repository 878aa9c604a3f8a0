//! Which files a list of paths names, and their bytes: a file stands for
//! itself, a directory for every `*.toml` below it, recursively, in sorted
//! order. Hidden entries (`.git`, `.terraform`) are skipped and symbolic
//! links to directories are not followed (no loops). A file named twice is
//! read once.
//!
//! This module only finds and reads; it must not parse.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

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
