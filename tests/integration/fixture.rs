//! Worlds and manifests that tests share, as files under `tests/fixtures/`:
//! `worlds/` holds emulator worlds (`eksgate sim serve --world`),
//! `worlds/additions/` tables that a test adds to one of them (its first
//! line says which), `manifests/` holds manifests. Each file opens with a comment saying what
//! it sets up; tests name them with [`fixture!`], which reads the file at
//! compile time, so a missing fixture is a build error.
//!
//! A fixture serves more than one test; a value only one test needs (a
//! fault, a one-cluster manifest) stays in that test, next to what it
//! asserts. The tests at the bottom check that every world loads and every
//! manifest validates, so a broken fixture fails by its own name.

use std::path::{Path, PathBuf};

/// The text of `tests/fixtures/NAME`.
macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $name
        ))
    };
}
pub(crate) use fixture;

fn files(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(folder);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures in {}", dir.display());
    paths
}

fn load_world(name: &str, text: &str) {
    let source = eksgate::diagnostic::Source::new(name, text);
    if let Err(d) = eksgate::sim::World::parse(&source) {
        panic!("{}", eksgate::diagnostic::render_all(&d, false));
    }
}

#[test]
fn every_world_fixture_loads() {
    for path in files("worlds") {
        load_world(
            &path.display().to_string(),
            &std::fs::read_to_string(&path).unwrap(),
        );
    }
    // Each addition with the world its first line names.
    for path in files("worlds/additions") {
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let base = first
            .split('`')
            .find(|w| w.ends_with(".toml"))
            .unwrap_or_else(|| panic!("{}: its first line names no world", path.display()));
        let base_path = path.parent().unwrap().parent().unwrap().join(base);
        let world = std::fs::read_to_string(&base_path)
            .unwrap_or_else(|e| panic!("{}: {e}", base_path.display()));
        load_world(&path.display().to_string(), &format!("{world}\n{text}"));
    }
}

#[test]
fn every_manifest_fixture_validates() {
    for path in files("manifests") {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Err(d) = eksgate::manifest::load_bytes(vec![(name, bytes)]) {
            panic!("{}", eksgate::diagnostic::render_all(&d, false));
        }
    }
}
