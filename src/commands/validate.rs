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
    if let Some(note) = super::first_use::defaults_note(&manifest) {
        printer.status(&note);
    }
    let files = match &manifest.local {
        // SPEC §11.1, first use: the local layer alone.
        Some(local) if manifest.committed_absent => manifest.relative(&local.path),
        None if manifest.committed_absent => {
            printer.status("Nothing is declared.");
            return Ok(ExitCode::SUCCESS);
        }
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
