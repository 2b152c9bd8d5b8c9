//! `flowloom path <id>`: the absolute worktree path of a session, for
//! `cd "$(flowloom path ID)"`.
//!
//! A declared session without a worktree is an error (exit 1, SPEC §4): `cd "$(flowloom
//! path ID)"` must not land somewhere else. Orphans and unmanaged sessions need the
//! repository read.

use std::path::Path;
use std::process::ExitCode;

use super::{Error, open_repo};
use crate::cli::{Cli, PathArgs};
use crate::read::state::State;
use crate::render::output::Printer;

pub fn run(cli: &Cli, start_dir: &Path, args: &PathArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let repo = open_repo(start_dir)?;
    let manifest = super::fallback::load_or_record(cli, start_dir, &repo, printer)?;
    if let Some(session) = manifest.sessions.get(&args.id) {
        let path = crate::read::state::session_path(&repo, &manifest, &session.worktree)?;
        if !path.is_dir() {
            return Err(Error::NoWorktree {
                id: args.id.clone(),
                path,
                with_metadata: false,
            });
        }
        printer.out(&line(&args.id, &path)?);
        return Ok(ExitCode::SUCCESS);
    }

    let state = State::read(&repo, &manifest, start_dir)?;
    let plan = crate::plan::plan(&manifest, &state);
    let orphans = crate::plan::orphans(&manifest, &state.root, &state);
    let found = orphans
        .iter()
        .find(|o| o.id == args.id)
        .map(|o| crate::plan::owned_path(&state, o))
        .or_else(|| {
            plan.unmanaged
                .iter()
                .find(|u| u.session == args.id)
                .and_then(|u| u.path.clone())
        });
    if let Some(path) = found {
        printer.out(&line(&args.id, &path)?);
        return Ok(ExitCode::SUCCESS);
    }

    let mut known: Vec<&str> = manifest.sessions.keys().map(String::as_str).collect();
    known.extend(orphans.iter().map(|o| o.id.as_str()));
    known.extend(
        plan.unmanaged
            .iter()
            .filter(|u| u.path.is_some())
            .map(|u| u.session.as_str()),
    );
    known.sort_unstable();
    known.dedup();
    let help = if known.is_empty() {
        format!(
            "no session is declared in {} yet: add a `[sessions.{}]` table and run `flowloom apply`",
            manifest.relative(&manifest.path),
            args.id
        )
    } else {
        format!("known sessions: {}", known.join(", "))
    };
    Err(Error::NoSession {
        message: format!(
            "no session `{}` in {} or the repository",
            args.id,
            manifest.relative(&manifest.path)
        ),
        help,
    })
}

/// The line printed for session `id`'s `path`: the path as it is, or an error when it
/// cannot be printed so (a worktree made by hand, a main worktree's folder name): escaped it
/// would name another folder, raw it could fake a line; a name that is not UTF-8 would be
/// printed as another.
fn line(id: &str, path: &Path) -> Result<String, Error> {
    let shown = path.to_string_lossy();
    let escaped = crate::render::output::escape(&shown);
    if escaped != shown || path.to_str().is_none() {
        return Err(Error::UnprintablePath {
            id: id.to_owned(),
            path: escaped.into_owned(),
        });
    }
    Ok(format!("{}\n", path.display()))
}
