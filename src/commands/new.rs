//! `flowloom new ID`: declare the session (the manifest edited as `import` edits it,
//! comments kept) and apply that session alone, without asking: creating loses nothing.
//! Under the lock from reading the manifest to the end, so that many agents can run it at
//! once and all succeed.

use std::path::Path;
use std::process::ExitCode;

use super::apply::{Confirm, Run};
use super::{Error, load, manifest_path, open_repo, take_lock};
use crate::cli::{Cli, NewArgs};
use crate::manifest::Manifest;
use crate::plan::adopt::Adoption;
use crate::render::output::Printer;

pub fn run(cli: &Cli, start_dir: &Path, args: &NewArgs, printer: &Printer) -> Result<ExitCode, Error> {
    if !crate::manifest::is_valid_id(&args.id) {
        return Err(Error::Usage {
            message: format!("`{}` is not a session id", crate::render::output::escape(&args.id)),
            help: Some("an id is [A-Za-z0-9][A-Za-z0-9._-]*, at most 64 characters, not ending in .lock".into()),
        });
    }
    let repo = open_repo(start_dir)?;
    let path = manifest_path(cli, start_dir, Some(&repo))?;
    let lock = take_lock(
        &crate::fsutil::canonical(repo.common_dir()),
        cli.global.lock_timeout,
        printer,
    )?;
    // Read under the lock: another `flowloom new` may just have added its session.
    if path.symlink_metadata().is_err() {
        return Err(Error::Usage {
            message: format!("there is no manifest at {}", path.display()),
            help: Some(
                "run `flowloom init` first (it writes one with this repository's base), then `flowloom new`".into(),
            ),
        });
    }
    let current = load(cli, start_dir, Some(&repo))?;
    // An unusable root is refused before the manifest is touched.
    crate::read::state::check_root(&repo, &current)?;
    if let Some(base) = &args.base
        && repo.rev_parse_single(format!("{base}^{{commit}}").as_str()).is_err()
    {
        return Err(Error::Usage {
            message: format!(
                "base `{}` does not resolve to a commit; nothing was written",
                crate::render::output::escape(base)
            ),
            help: Some("name a branch, tag or commit of this repository, or fetch it first".into()),
        });
    }
    let manifest = match current.sessions.get(&args.id) {
        Some(session) => {
            let differs = args.purpose.as_ref().is_some_and(|p| *p != session.purpose)
                || args.base.as_ref().is_some_and(|b| *b != session.base);
            if differs {
                return Err(Error::Usage {
                    message: format!(
                        "session `{}` is already declared, with another purpose or base",
                        args.id
                    ),
                    help: Some(format!(
                        "edit [sessions.{}] in {}",
                        args.id,
                        current.relative(&current.path)
                    )),
                });
            }
            current
        }
        None => declare(&current, args)?,
    };
    let run = Run {
        plan_on_stderr: true,
        ..Run::new(&repo, start_dir, printer, &lock)
    };
    let options = crate::plan::Options {
        force: false,
        targets: [args.id.clone()].into(),
    };
    let code = run.carry_out(&manifest, &options, Confirm::Given, None, &mut || Ok(()))?;
    if let Some(session) = manifest.sessions.get(&args.id) {
        let worktree = manifest.worktree_path(session);
        if worktree.is_dir() {
            printer.out(&format!("{}\n", crate::fsutil::canonical(&worktree).display()));
        }
    }
    Ok(code)
}

/// Add `[sessions.<id>]` to the manifest on disk, refusing anything that would make it
/// invalid; the manifest as now written.
fn declare(current: &Manifest, args: &NewArgs) -> Result<Manifest, Error> {
    let mut keys = Vec::new();
    if let Some(purpose) = &args.purpose {
        keys.push(("purpose", purpose.clone()));
    }
    if let Some(base) = &args.base {
        keys.push(("base", base.clone()));
    }
    let adoption = Adoption {
        id: args.id.clone(),
        keys,
        branch: String::new(),
        path: Default::default(),
        notes: Vec::new(),
    };
    let text = crate::plan::adopt::edit(&current.source, &[adoption]).map_err(|why| Error::Usage {
        message: format!("cannot edit {}: {why}", current.relative(&current.path)),
        help: Some("run `flowloom validate` and fix what it reports".into()),
    })?;
    // The default base and `{repo}` as the current manifest resolved them.
    let manifest = current.with_source(text)?;
    crate::fsutil::write_atomic(&manifest.path, manifest.source.as_bytes())?;
    Ok(manifest)
}
