//! `flowloom trust`: record that this machine trusts the manifest's current `setup` lists
//! for this repository (SPEC §10). What is trusted is a hash of each exact list, so a
//! changed list is refused again until it is trusted again.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use super::{Error, load, open_repo};
use crate::cli::Cli;
use crate::plan::SetupOf as _;
use crate::render::output::Printer;

pub fn run(cli: &Cli, start_dir: &Path, printer: &Printer) -> Result<ExitCode, Error> {
    let repo = open_repo(start_dir)?;
    let manifest = load(cli, start_dir, Some(&repo))?;
    // Each distinct script (commands and the `env` they run with) of a session that has
    // setup commands or variables, the defaults' own included.
    let mut scripts: Vec<crate::store::machine::SetupScript> = Vec::new();
    let all = std::iter::once(&manifest.defaults.environment).chain(manifest.sessions.values().map(|s| &s.environment));
    for environment in all {
        let script = environment.setup_script();
        // `env` alone counts too: `flowloom run` applies it only once trusted.
        let nothing = script.commands.is_empty() && script.env.is_empty() && script.teardown.is_empty();
        if !nothing && !scripts.contains(&script) {
            scripts.push(script);
        }
    }
    let shown = manifest.relative(&manifest.path);
    if scripts.is_empty() {
        printer.status(&format!(
            "{shown} has no setup commands or variables; nothing to trust."
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let key = crate::store::machine::repository_key(repo.common_dir());
    let already = crate::store::machine::trusted(&key)?;
    let hashes: BTreeSet<String> = scripts.iter().map(crate::store::machine::setup_hash).collect();
    if hashes.is_subset(&already) {
        printer.status(&format!(
            "{shown}'s setup commands are already trusted on this machine."
        ));
        return Ok(ExitCode::SUCCESS);
    }
    crate::store::machine::trust(&key, &hashes)?;
    printer.out(&format!(
        "setup commands of {shown}, now trusted on this machine:\n{}",
        describe_scripts(&scripts)
    ));
    Ok(ExitCode::SUCCESS)
}

/// The scripts as the user reviews them: each command whole on its own line, escaped (a
/// command padded with newlines cannot hide its first line above the screen, SPEC §11.4),
/// then the variables it runs with.
pub(super) fn describe_scripts(scripts: &[crate::store::machine::SetupScript]) -> String {
    use crate::render::output::escape;
    let mut text = String::new();
    for script in scripts {
        for command in &script.commands {
            text.push_str(&format!("    $ {}\n", escape(command)));
        }
        for command in &script.teardown {
            text.push_str(&format!("    $ {}   (teardown)\n", escape(command)));
        }
        for (name, value) in &script.env {
            text.push_str(&format!("      with {}={}\n", escape(name), escape(value)));
        }
    }
    text
}
