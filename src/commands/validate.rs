//! `eksgate validate [PATH]...`: load the manifests and say whether they are
//! valid. Maps the arguments to `manifest::load` and prints; it holds no rule
//! of its own. Diagnostics and the failure summary go to stderr, the success
//! summary to stdout.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;

use crate::commands::{Context, Exit};
use crate::diagnostic::{render_all, Diagnostic};
use crate::error::Result;
use crate::manifest;
use crate::text::plural;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Manifest files, or directories whose `*.toml` files are read
    /// recursively.
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,
}

pub async fn run(args: ValidateArgs, ctx: &Context) -> Result<Exit> {
    match manifest::load(&args.paths) {
        Ok(loaded) => {
            let mut notes = ctx.printer.notes();
            if !loaded.warnings.is_empty() {
                write!(notes, "{}", render_all(&loaded.warnings, notes.color()))?;
                writeln!(notes)?;
            }
            writeln!(ctx.printer.stdout(), "{}", success_summary(&loaded))?;
            Ok(Exit::Success)
        }
        Err(diags) => {
            // Errors are shown even with `--quiet`; warnings are not.
            let shown: Vec<Diagnostic> = if ctx.printer.notes().is_enabled() {
                diags.clone()
            } else {
                diags.iter().filter(|d| d.is_error()).cloned().collect()
            };
            let mut err = ctx.printer.stderr();
            let color = err.color();
            write!(err, "{}", render_all(&shown, color))?;
            writeln!(err)?;
            write!(
                err,
                "{}",
                Diagnostic::error(failure_summary(&diags)).render(color)
            )?;
            Ok(Exit::Failure)
        }
    }
}

/// `3 files, 42 clusters: valid`, and `, 1 warning` when there are some.
fn success_summary(loaded: &manifest::Loaded) -> String {
    let mut line = format!(
        "{}, {}: valid",
        plural(loaded.files, "file", "files"),
        plural(loaded.desired.clusters.len(), "cluster", "clusters")
    );
    if !loaded.warnings.is_empty() {
        line.push_str(&format!(
            ", {}",
            plural(loaded.warnings.len(), "warning", "warnings")
        ));
    }
    line
}

/// `2 errors in 1 file`: the files counted are those with errors; errors
/// that name no file (a path that does not exist) count in no file.
fn failure_summary(diags: &[Diagnostic]) -> String {
    let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
    let files: BTreeSet<&str> = errors.iter().filter_map(|d| d.file.as_deref()).collect();
    let count = plural(errors.len(), "error", "errors");
    if files.is_empty() {
        count
    } else {
        format!("{count} in {}", plural(files.len(), "file", "files"))
    }
}
