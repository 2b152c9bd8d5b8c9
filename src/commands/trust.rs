//! `flowloom trust`: record that this machine trusts the manifest's current `setup` lists
//! for this repository (SPEC §10). What is trusted is a hash of each exact list, so a
//! changed list is refused again until it is trusted again.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use super::{Error, load, open_repo};
use crate::cli::Cli;
use crate::output::Printer;

pub fn run(cli: &Cli, start_dir: &Path, printer: &Printer) -> Result<ExitCode, Error> {
    let repo = open_repo(start_dir)?;
    let manifest = load(cli, start_dir, Some(&repo))?;
    let mut lists: Vec<&Vec<String>> = Vec::new();
    let all = std::iter::once(&manifest.defaults.environment.setup)
        .chain(manifest.sessions.values().map(|s| &s.environment.setup));
    for list in all {
        if !list.is_empty() && !lists.contains(&list) {
            lists.push(list);
        }
    }
    let shown = manifest.relative(&manifest.path);
    if lists.is_empty() {
        printer.status(&format!("{shown} has no setup commands; nothing to trust."));
        return Ok(ExitCode::SUCCESS);
    }
    let key = crate::machine::repository_key(repo.common_dir());
    let already = crate::machine::trusted(&key)?;
    let hashes: BTreeSet<String> = lists.iter().map(|l| crate::machine::setup_hash(l)).collect();
    let mut text = format!("setup commands of {shown}, now trusted on this machine:\n");
    for list in &lists {
        for command in list.iter() {
            text.push_str(&format!("    $ {command}\n"));
        }
    }
    if hashes.is_subset(&already) {
        printer.status(&format!(
            "{shown}'s setup commands are already trusted on this machine."
        ));
        return Ok(ExitCode::SUCCESS);
    }
    crate::machine::trust(&key, &hashes)?;
    printer.out(&text);
    Ok(ExitCode::SUCCESS)
}
