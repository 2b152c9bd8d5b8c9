//! `flowloom share ID` / `flowloom unshare ID`: move a session's table between this clone's
//! `flowloom.local.toml` and the committed manifest (SPEC §11.1), comments kept, both files
//! compare-and-swap. The worktree, the branch and the ownership record stay as they are:
//! the session is declared all along.

use std::cell::RefCell;
use std::path::Path;
use std::process::ExitCode;

use super::{Error, load, open_repo, take_lock};
use crate::cli::{Cli, ShareArgs};
use crate::manifest::{Layer, Manifest};
use crate::render::output::{Printer, escape};

pub fn run(cli: &Cli, start_dir: &Path, args: &ShareArgs, to: Layer, printer: &Printer) -> Result<ExitCode, Error> {
    let repo = open_repo(start_dir)?;
    let common_dir = crate::fsutil::canonical(repo.common_dir());
    let _lock = take_lock(&common_dir, cli.global.lock_timeout, printer)?;
    let manifest = load(cli, start_dir, Some(&repo))?;
    // SPEC §11.4: the one root check, as for every command that edits a session.
    crate::read::state::check_root(&repo, &manifest)?;
    let Some(session) = manifest.sessions.get(&args.id) else {
        return Err(Error::NoSession {
            message: format!("no session `{}` is declared", escape(&args.id)),
            help: "`flowloom status` lists the sessions".into(),
        });
    };
    let target = manifest.relative(&manifest.layer_path(to));
    if to == Layer::Shared && session.layer == Layer::Local {
        super::first_use::needs_committed(&manifest, &format!("share `{}` in", escape(&args.id)))?;
    }
    if session.layer == to {
        printer.status(&format!("`{}` is already declared in {target}", args.id));
        return Ok(ExitCode::SUCCESS);
    }
    move_session(&manifest, &common_dir, &args.id, session.layer, to)?;
    printer.status(&format!(
        "moved `{}` from {} to {target}; its worktree and branch are unchanged",
        args.id,
        manifest.relative(&manifest.layer_path(session.layer)),
    ));
    Ok(ExitCode::SUCCESS)
}

/// Take `[sessions.<id>]` out of `from` and put it at the end of `to`.
fn move_session(manifest: &Manifest, common_dir: &Path, id: &str, from: Layer, to: Layer) -> Result<(), Error> {
    let taken = RefCell::new(None);
    let failed = |layer: Layer, why: crate::plan::adopt::EditError| Error::ManifestEdit {
        file: manifest.relative(&manifest.layer_path(layer)),
        why,
    };
    let take = |text: &str| -> Result<Option<String>, Error> {
        let (rest, table) = crate::plan::adopt::take_session(text, id)
            .map_err(|e| failed(from, e))?
            .ok_or_else(|| Error::NoSession {
                message: format!("`{id}` is no longer declared; nothing was moved"),
                help: "`flowloom status` lists the sessions".into(),
            })?;
        *taken.borrow_mut() = Some(table);
        Ok(Some(rest))
    };
    let put = |text: &str| -> Result<Option<String>, Error> {
        let table = taken.borrow_mut().take().unwrap_or_default();
        crate::plan::adopt::put_session(text, id, table)
            .map(Some)
            .map_err(|e| failed(to, e))
    };
    super::edit::edit(manifest, common_dir, &[(from, &take), (to, &put)])?;
    Ok(())
}
