//! `flowloom validate`: the manifest alone, no repository writes.

use std::path::Path;
use std::process::ExitCode;

use super::{Error, load, open_repo};
use crate::cli::Cli;
use crate::render::output::Printer;

pub fn run(cli: &Cli, start_dir: &Path, printer: &Printer) -> Result<ExitCode, Error> {
    let repo = if cli.global.manifest.is_some() {
        None
    } else {
        Some(open_repo(start_dir)?)
    };
    let manifest = load(cli, start_dir, repo.as_ref())?;
    let n = manifest.sessions.len();
    let files = match &manifest.local {
        Some(local) => {
            let own = manifest
                .sessions
                .values()
                .filter(|s| s.layer == crate::manifest::Layer::Local)
                .count();
            format!(
                "{} with {} ({own} of them)",
                manifest.relative(&manifest.path),
                manifest.relative(&local.path)
            )
        }
        None => manifest.relative(&manifest.path),
    };
    printer.status(&format!(
        "{files} is valid: {n} {} declared.",
        crate::plan::plural(n, "session")
    ));
    Ok(ExitCode::SUCCESS)
}
