//! `eksgate import --region REGION [--cluster NAME]... [--out FILE]`: write a
//! manifest from the live state of a region's clusters. Maps the arguments
//! to `import::read` and `import::render`, and puts the text on stdout or in
//! a new file; it decides nothing about the content.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::commands::{Context, Exit};
use crate::diagnostic::Diagnostic;
use crate::error::{Error, Result};
use crate::import;
use crate::provider::aws::{AwsOptions, AwsProvider};
use crate::text::plural;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The region whose clusters are imported, like `eu-west-1`.
    #[arg(long)]
    pub region: String,
    /// Import only this cluster (repeatable); without it, every cluster of
    /// the region.
    #[arg(long = "cluster", value_name = "NAME")]
    pub clusters: Vec<String>,
    /// Write the manifest to FILE instead of stdout; an existing file is
    /// kept unless `--force`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Overwrite `--out FILE` when it exists.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Use this profile of the AWS shared config files.
    #[arg(long, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Bounds the AWS calls at once: a quarter of it are in flight per
    /// account and region.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
}

pub async fn run(args: ImportArgs, ctx: &Context) -> Result<Exit> {
    // Refuse before reading AWS, so a large region is not read for nothing.
    if let Some(path) = &args.out {
        if !args.force && path.exists() {
            return Err(exists(path));
        }
    }
    let provider = AwsProvider::new(AwsOptions {
        profile: args.profile.clone(),
        region: Some(args.region.clone()),
        ..AwsOptions::default()
    })
    .await;
    let imported = import::read(
        &provider,
        &args.region,
        &args.clusters,
        usize::from(args.parallelism),
    )
    .await?;

    let schema = args
        .out
        .as_deref()
        .and_then(|p| import::schema_reference(parent(p)));
    let text = import::render(&imported, schema.as_deref());
    match &args.out {
        Some(path) => write(path, &text, args.force)?,
        None => {
            let mut out = ctx.printer.stdout();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }

    let mut notes = ctx.printer.notes();
    let color = notes.color();
    for name in &imported.vanished {
        let d = Diagnostic::warning(format!(
            "cluster `{name}` was listed but gone when described; it is not imported"
        ));
        write!(notes, "{}", d.render(color))?;
    }
    if imported.clusters.is_empty() {
        let d = Diagnostic::warning(format!("region `{}` has no clusters", args.region))
            .hint("check `--region` and the account the credentials resolve to");
        write!(notes, "{}", d.render(color))?;
    } else if let Some(path) = &args.out {
        writeln!(
            notes,
            "Imported {} of `{}` into `{}`; check it with `eksgate plan {}`.",
            plural(imported.clusters.len(), "cluster", "clusters"),
            args.region,
            path.display(),
            path.display()
        )?;
    }
    Ok(Exit::Success)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn exists(path: &Path) -> Error {
    Error::user_hint(
        format!("`{}` already exists", path.display()),
        "pass `--force` to overwrite it, or choose another `--out`",
    )
}

/// Writes a new file, or replaces one with `force`; `create_new` closes the
/// gap between the check in `run` and the write.
fn write(path: &Path, text: &str, force: bool) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut file = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists(path)),
        Err(source) => {
            return Err(Error::Write {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    file.write_all(text.as_bytes())
        .map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
}
