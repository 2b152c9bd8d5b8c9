//! `flowloom rm ID`: remove the session with every check of SPEC §7, asking as `apply`
//! does, then drop it from the layer that declares it. All or nothing (SPEC §11.2): when
//! the removal is blocked, nothing changes (the manifest included), and the error names
//! what blocks it, the files by name.
//!
//! [`blockers`] and [`undeclare`] are the pieces other commands that end a session reuse.

use std::path::Path;
use std::process::ExitCode;

use super::apply::{Confirm, Run, refuse_without_terminal};
use super::{Error, load, open_repo, take_lock};
use crate::cli::{Cli, RmArgs};
use crate::manifest::{Layer, Manifest};
use crate::plan::{Action, Plan};
use crate::read::state::State;
use crate::render::output::{Printer, escape};

/// At most this many blocking files are named; the rest are counted.
const MAX_FILES: usize = 20;

pub fn run(cli: &Cli, start_dir: &Path, args: &RmArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let confirm = if args.yes { Confirm::Given } else { Confirm::Ask };
    refuse_without_terminal(
        confirm,
        "remove a session",
        "review `flowloom plan`, then run `flowloom rm --yes ID`",
    )?;
    let repo = open_repo(start_dir)?;
    let common_dir = crate::fsutil::canonical(repo.common_dir());
    let lock = take_lock(&common_dir, cli.global.lock_timeout, printer)?;
    remove_locked(cli, start_dir, &repo, &lock, args, confirm, printer, None)
}

/// What `flowloom merge` landed before the removal it ends with: a blocked removal says
/// so instead of "nothing was changed".
pub(super) struct Landed {
    pub branch: String,
    pub base: String,
    /// The base's new commit (short).
    pub commit: String,
}

impl Landed {
    /// `` `session/a` is merged into `main` (now 1a2b3c4) ``
    pub fn text(&self) -> String {
        format!(
            "`{}` is merged into `{}` (now {})",
            escape(&self.branch),
            escape(&self.base),
            self.commit
        )
    }
}

/// The removal itself, under the lock already taken (`flowloom merge` ends with it, its
/// plan on standard error, `landed` saying what the merge did).
#[allow(clippy::too_many_arguments)]
pub(super) fn remove_locked(
    cli: &Cli,
    start_dir: &Path,
    repo: &gix::Repository,
    lock: &crate::store::lock::ApplyLock,
    args: &RmArgs,
    confirm: Confirm,
    printer: &Printer,
    landed: Option<&Landed>,
) -> Result<ExitCode, Error> {
    let common_dir = crate::fsutil::canonical(repo.common_dir());

    let current = load(cli, start_dir, Some(repo))?;
    // SPEC §11.4: the one root check, before anything is edited or removed.
    crate::read::state::check_root(repo, &current)?;
    let owned = crate::store::ownership::Record::read(&common_dir)?
        .sessions
        .iter()
        .any(|o| o.id == args.id);
    let layer = current.sessions.get(&args.id).map(|s| s.layer);
    let Some(layer) = layer.filter(|_| !owned) else {
        if !owned {
            return Err(super::no_session(&current, &args.id));
        }
        return remove(repo, start_dir, &current, layer, args, confirm, lock, printer, landed);
    };
    // Declared but never made (or made by hand, which flowloom never removes): dropping
    // the declaration is all there is to do, and it loses nothing.
    undeclare(&current, &common_dir, &args.id, layer)?;
    printer.status(&format!(
        "removed `{}` from {}; flowloom owns nothing of it in the repository",
        args.id,
        current.relative(&current.layer_path(layer))
    ));
    Ok(ExitCode::SUCCESS)
}

/// Remove an owned session, then drop its declaration (from `layer`, if declared).
#[allow(clippy::too_many_arguments)]
fn remove(
    repo: &gix::Repository,
    start_dir: &Path,
    current: &Manifest,
    layer: Option<Layer>,
    args: &RmArgs,
    confirm: Confirm,
    lock: &crate::store::lock::ApplyLock,
    printer: &Printer,
    landed: Option<&Landed>,
) -> Result<ExitCode, Error> {
    let common_dir = crate::fsutil::canonical(repo.common_dir());
    if let Some(layer) = layer {
        super::edit::check_writable(current, layer)?;
    }
    // Planned without the session, written only once it is gone.
    let manifest = match layer {
        Some(layer) => {
            let text = removed(current, layer, current.layer_source(layer), &args.id)?
                .unwrap_or_else(|| current.layer_source(layer).to_owned());
            current.with_layer(layer, text)?
        }
        None => current.clone(),
    };
    // Through the shell function, the shell leaves the session with flowloom: neither
    // counts as being inside it.
    let main = crate::read::state::main_workdir(repo).map(|m| crate::fsutil::canonical(&m));
    let shell_moves = crate::read::inspect::invoking_shell().is_some();
    let (from, moved) = match (&main, shell_moves) {
        (Some(main), true) => (main.as_path(), Some(super::open_repo(main)?)),
        _ => (start_dir, None),
    };
    let refuse = |plan: &Plan, state: &State| blockers(plan, state, &manifest, &args.id, args.force, landed);
    let run = Run {
        refuse: Some(&refuse),
        plan_on_stderr: landed.is_some(),
        ..Run::new(moved.as_ref().unwrap_or(repo), from, printer, lock)
    };
    let options = crate::plan::Options {
        force: args.force,
        targets: [args.id.clone()].into(),
        // SPEC §11.3: the session's own teardown runs, as declared until now (one no layer
        // declares: `[defaults]`', as for any orphan; named, it is ended even while
        // flowloom.toml is missing, SPEC §11.1).
        ending: [(
            args.id.clone(),
            current
                .sessions
                .get(&args.id)
                .map_or_else(|| current.defaults.environment.clone(), |s| s.environment.clone()),
        )]
        .into(),
    };
    let code = run.carry_out(&manifest, &options, confirm, None, &mut || Ok(()))?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    if let Some(layer) = layer {
        undeclare(current, &common_dir, &args.id, layer)?;
    }
    if let (Some(main), true) = (&main, shell_moves) {
        super::shell_init::change_directory(main);
    }
    Ok(code)
}

/// The text of one layer without `[sessions.<id>]`; `None` when it declares no such session.
fn removed(manifest: &Manifest, layer: Layer, text: &str, id: &str) -> Result<Option<String>, Error> {
    crate::plan::adopt::remove_session(text, id).map_err(|why| Error::ManifestEdit {
        file: manifest.relative(&manifest.layer_path(layer)),
        why,
    })
}

/// Drop `[sessions.<id>]` from `layer`, compare-and-swap (an edit saved meanwhile is kept).
pub(super) fn undeclare(manifest: &Manifest, common_dir: &Path, id: &str, layer: Layer) -> Result<Manifest, Error> {
    let change = |text: &str| removed(manifest, layer, text, id);
    super::edit::edit(manifest, common_dir, &[(layer, &change)])
}

/// Why the removal of `id` cannot go ahead, as the error `rm` exits with: the plan's
/// reasons, the files that block it by name, and the command that would force it. After a
/// merge (`landed`), it says that the merge stays.
pub(super) fn blockers(
    plan: &Plan,
    state: &State,
    manifest: &Manifest,
    id: &str,
    force: bool,
    landed: Option<&Landed>,
) -> Option<Error> {
    let change = plan.changes.iter().find(|c| c.session == id)?;
    let Action::Blocked { reasons } = &change.action else {
        return None;
    };
    // One line: a lock reason or a process name from the repository may hold newlines.
    let why: Vec<String> = reasons
        .iter()
        .map(|r| escape(&crate::render::reason_text(r, manifest)).into_owned())
        .collect();
    let files = state
        .worktrees
        .get(&change.path)
        .or_else(|| state.elsewhere.get(&change.path))
        .and_then(|w| w.dirt.as_ref())
        .map(crate::read::inspect::Dirt::all_paths)
        .unwrap_or_default();
    let forceable = reasons.iter().all(crate::plan::Reason::forceable);
    let mut help = String::new();
    if !files.is_empty() {
        help.push_str(&format!("blocking files: {}. ", file_list(&files)));
    }
    help.push_str(&force_help(id, force, forceable, landed.is_some()));
    let message = match landed {
        None => format!(
            "session `{id}` cannot be removed: {}; nothing was changed",
            why.join("; ")
        ),
        Some(landed) => format!(
            "{}, but session `{id}` cannot be removed: {}; the merge stays and the session is left as it was",
            landed.text(),
            why.join("; ")
        ),
    };
    Some(Error::Blocked { message, help })
}

/// How to get past a blocked removal: what `--force` lifts, and the command. `merged`:
/// after `flowloom merge`, whose own run is over.
pub(super) fn force_help(id: &str, forced: bool, forceable: bool, merged: bool) -> String {
    if forced || !forceable {
        let then = if merged {
            format!(", then run `flowloom rm --yes {id}`")
        } else {
            String::new()
        };
        return format!("what blocks it even with --force must be resolved first{then}");
    }
    let first = if merged {
        format!("fix that and run `flowloom rm --yes {id}`, or force it")
    } else {
        "commit or stash the work, or force it".to_owned()
    };
    format!(
        "{first} with `flowloom rm --yes --force {id}`, which keeps every commit and file under refs/flowloom/archive first"
    )
}

/// Up to [`MAX_FILES`] names, then how many more.
fn file_list(files: &[String]) -> String {
    let mut shown: Vec<String> = files.iter().take(MAX_FILES).map(|f| escape(f).into_owned()).collect();
    if files.len() > MAX_FILES {
        shown.push(format!("and {} more", files.len() - MAX_FILES));
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use miette::Diagnostic as _;

    use super::{Error, removed};
    use crate::manifest::{Layer, Manifest};

    #[test]
    fn a_layer_the_editor_cannot_read_is_a_manifest_edit_error() {
        let manifest = Manifest::from_source(Path::new("/repo/flowloom.toml"), "[sessions.a]\n".into()).expect("valid");
        let e = removed(&manifest, Layer::Shared, "[sessions.a\n", "a").expect_err("not TOML");
        assert!(matches!(e, Error::ManifestEdit { .. }), "{e:?}");
        assert_eq!(
            e.code().map(|c| c.to_string()).as_deref(),
            Some("flowloom::manifest_edit")
        );
        // What and where, then how to fix it.
        assert!(
            e.to_string()
                .starts_with("cannot edit flowloom.toml: the manifest is not valid TOML"),
            "{e}"
        );
        assert_eq!(
            e.help().map(|h| h.to_string()).as_deref(),
            Some("run `flowloom validate` and fix what it reports")
        );
    }
}
