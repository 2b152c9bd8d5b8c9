//! `flowloom setup ID`: run a session's `setup` commands again, on demand (SPEC §11.3), in
//! its worktree with its environment, as a new session runs them; trusted as always (§10).
//! The session's metadata records the outcome (`ok` or `failed`), as apply records it.

use std::path::Path;
use std::process::ExitCode;

use super::{Error, load, open_repo, take_lock};
use crate::apply::setup::SetupError;
use crate::cli::{Cli, SetupArgs};
use crate::plan::SetupOf as _;
use crate::render::output::Printer;
use crate::store::metadata::{MetadataFile, SetupProgress, SetupState};

pub fn run(cli: &Cli, start_dir: &Path, args: &SetupArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let repo = open_repo(start_dir)?;
    let manifest = load(cli, start_dir, Some(&repo))?;
    let session = super::declared(&manifest, &args.id)?;
    let worktree = crate::read::state::session_path(&repo, &manifest, &session.worktree)?;
    let common_dir = crate::fsutil::canonical(repo.common_dir());
    let MetadataFile::Valid(found) = crate::store::metadata::read(&worktree, &session.id) else {
        return Err(Error::NoWorktree {
            id: session.id.clone(),
            path: worktree,
            with_metadata: true,
        });
    };
    if session.environment.setup.is_empty() {
        printer.status(&format!("session `{}` has no setup commands", session.id));
        return Ok(ExitCode::SUCCESS);
    }
    let script = session.environment.setup_script();
    let key = crate::store::machine::repository_key(&common_dir);
    if !crate::store::machine::trusted(&key)?.contains(&crate::store::machine::setup_hash(&script)) {
        return Err(Error::NotTrusted {
            message: format!(
                "session `{}`'s setup is not trusted on this machine, so nothing runs",
                session.id
            ),
            help: "review it in the manifest, then run `flowloom trust`".into(),
        });
    }
    // One writer of a session's metadata at a time: apply's lock.
    let _lock = take_lock(&common_dir, cli.global.lock_timeout, printer)?;
    let ports = found.ports();
    let vars = session.variables(&worktree, &ports);
    let progress = SetupProgress {
        state: SetupState::Incomplete,
        copied: found.setup_progress().copied,
        done: Vec::new(),
    };
    let around = |run: &mut dyn FnMut() -> Result<(), SetupError>| run();
    let commands = &session.environment.setup;
    match crate::apply::setup::run_recorded(&session.id, &worktree, &vars, commands, progress, &around) {
        Ok(()) => {
            printer.status(&format!("setup of `{}` ran ({} commands)", session.id, commands.len()));
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => Err(Error::Setup {
            session: session.id.clone(),
            why,
        }),
    }
}
