//! `flowloom rm ID`: drop the session from the manifest and carry out that removal alone,
//! asking as `apply` does, with every check of SPEC §7. Nothing is written before the user
//! agrees; then the manifest first, then the removal.

use std::path::Path;
use std::process::ExitCode;

use super::apply::{Confirm, Run, refuse_without_terminal};
use super::{Error, load, open_repo, take_lock};
use crate::cli::{Cli, RmArgs};
use crate::render::output::Printer;

pub fn run(cli: &Cli, start_dir: &Path, args: &RmArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let confirm = if args.yes { Confirm::Given } else { Confirm::Ask };
    refuse_without_terminal(
        confirm,
        "remove a session",
        "review `flowloom plan`, then run `flowloom rm --yes ID`",
    )?;
    let repo = open_repo(start_dir)?;
    let lock = take_lock(
        &crate::fsutil::canonical(repo.common_dir()),
        cli.global.lock_timeout,
        printer,
    )?;
    remove_locked(cli, start_dir, &repo, &lock, args, confirm, printer, false)
}

/// The removal itself, under the lock already taken (`flowloom merge` ends with it, its
/// plan on standard error).
#[allow(clippy::too_many_arguments)]
pub(super) fn remove_locked(
    cli: &Cli,
    start_dir: &Path,
    repo: &gix::Repository,
    lock: &crate::store::lock::ApplyLock,
    args: &RmArgs,
    confirm: Confirm,
    printer: &Printer,
    plan_on_stderr: bool,
) -> Result<ExitCode, Error> {
    let current = load(cli, start_dir, Some(repo))?;
    let owned = crate::store::ownership::Record::read(&crate::fsutil::canonical(repo.common_dir()))?
        .sessions
        .iter()
        .any(|o| o.id == args.id);
    let edited = crate::plan::adopt::remove_session(&current.source, &args.id).map_err(|why| Error::Usage {
        message: format!("cannot edit {}: {why}", current.relative(&current.path)),
        help: Some("run `flowloom validate` and fix what it reports".into()),
    })?;
    if edited.is_none() && !owned {
        return Err(Error::Usage {
            message: format!(
                "no session `{}` in {}",
                crate::render::output::escape(&args.id),
                current.relative(&current.path)
            ),
            help: Some("`flowloom status` lists the sessions".into()),
        });
    }
    if !owned {
        // Declared but never made (or made by hand, which flowloom never removes): dropping
        // the declaration is all there is to do, and it loses nothing.
        if let Some(text) = &edited {
            crate::fsutil::write_atomic(&current.path, text.as_bytes())?;
        }
        printer.status(&format!(
            "removed `{}` from {}; flowloom owns nothing of it in the repository",
            args.id,
            current.relative(&current.path)
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let manifest = match &edited {
        Some(text) => current.with_source(text.clone())?,
        None => current.clone(),
    };
    let run = Run {
        plan_on_stderr,
        ..Run::new(repo, start_dir, printer, lock)
    };
    let options = crate::plan::Options {
        force: args.force,
        targets: [args.id.clone()].into(),
    };
    let path = manifest.path.clone();
    let source = manifest.source.clone();
    let mut write = || -> Result<(), Error> {
        if edited.is_some() {
            crate::fsutil::write_atomic(&path, source.as_bytes())?;
        }
        Ok(())
    };
    let result = run.carry_out(&manifest, &options, confirm, None, &mut write);
    // Written, but not carried out in full: say where that leaves the session.
    let written = crate::fsutil::read_regular(&manifest.path, crate::manifest::MAX_BYTES)
        .ok()
        .flatten()
        .is_some_and(|bytes| bytes == manifest.source.as_bytes());
    if edited.is_some() && written && !matches!(result, Ok(ExitCode::SUCCESS)) {
        printer.status(&format!(
            "note: `{}` is no longer declared; `flowloom apply` removes it once nothing blocks it, and `flowloom new {}` declares it again",
            args.id, args.id
        ));
    }
    result
}
