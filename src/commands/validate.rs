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
    printer.status(&format!(
        "{} is valid: {n} {} declared.",
        manifest.relative(&manifest.path),
        crate::plan::plural(n, "session")
    ));
    Ok(ExitCode::SUCCESS)
}
