//! `flowloom merge ID` (SPEC §11.2): land a session on its base branch, then remove it.
//! Under the lock: compute the merge in memory, show what it will do, ask, write the
//! objects, the base's worktree and the base ref (compare-and-swap), then remove the
//! session through `rm`'s own path, with every check of SPEC §7. A blocked removal leaves
//! the merge done and says what blocks it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::apply::{Confirm, lock_and_load, refuse_without_terminal};
use super::{Error, open_repo};
use crate::apply::land::{Landing, Mode, Request};
use crate::cli::{Cli, MergeArgs, RmArgs};
use crate::manifest::MergeMode;
use crate::plan::SetupOf as _;
use crate::render::output::{Printer, escape};

pub fn run(cli: &Cli, start_dir: &Path, args: &MergeArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let printer = if args.json { printer.plain() } else { *printer };
    refuse_empty_message(args)?;
    let confirm = if args.yes { Confirm::Given } else { Confirm::Ask };
    refuse_without_terminal(
        confirm,
        "merge a session",
        "review what it does, then run `flowloom merge --yes ID`",
    )?;
    let repo = open_repo(start_dir)?;
    let (lock, manifest) = lock_and_load(cli, start_dir, &repo, &printer)?;
    let session = super::declared(&manifest, &args.id)?;
    // Its declaration goes last: a read-only file is refused before anything lands.
    super::edit::check_writable(&manifest, session.layer)?;
    // SPEC §11.4: the root checked as `plan` checks it, before anything lands on the base.
    let worktree = crate::fsutil::canonical(&crate::read::state::session_path(&repo, &manifest, &session.worktree)?);
    let request = request(session, args);
    let mut landing = crate::apply::land::prepare(&repo, &request, &super::wiring::Reader)?;
    let teardown = &session.environment.teardown;
    let trusted = teardown_trusted(&repo, &session.environment, confirm, &printer)?;
    if !args.json {
        printer.out(&describe(&request, &landing, &worktree, teardown, trusted));
    }
    if confirm == Confirm::Ask && !printer.confirm("Merge and remove the session?") {
        printer.status("Nothing merged.");
        return Ok(ExitCode::SUCCESS);
    }
    crate::apply::test_hook("FLOWLOOM_TEST_BEFORE_LANDING", &request.session);
    crate::apply::land::write(&repo, &mut landing, crate::store::lock::interrupt_flag())?;
    if !args.json {
        printer.status(&landed(&request, &landing));
    }
    let inside = crate::fsutil::canonical(start_dir).starts_with(&worktree);
    let landing_dir = landing
        .worktree_path()
        .or_else(|| crate::read::state::main_workdir(&repo));
    let removal_dir = removal_start(start_dir, inside, landing_dir.as_deref());
    let rm = RmArgs {
        id: args.id.clone(),
        yes: true,
        force: args.force,
    };
    // Opened again from where the removal runs: a repository opened inside the session
    // reaches its objects through the session's folder, which the removal moves away.
    let removal_repo = if removal_dir == start_dir {
        repo
    } else {
        open_repo(&removal_dir)?
    };
    let landed = super::rm::Landed {
        branch: request.branch.clone(),
        base: request.base.clone(),
        commit: short(&landing.new),
    };
    let removed = super::rm::remove_locked(
        cli,
        &removal_dir,
        &removal_repo,
        &lock,
        &rm,
        Confirm::Given,
        &printer,
        Some(&landed),
    )
    .map_err(|e| landed_anyway(e, &landed, &request.session, args.force))?;
    let gone = !worktree.exists();
    if args.json {
        printer.out(&json(&request, &landing, gone));
    }
    if inside
        && gone
        && let Some(dir) = &landing_dir
    {
        tell_shell(dir);
    }
    if removed != ExitCode::SUCCESS {
        printer.status(&format!(
            "`{}` is merged into `{}`; its removal is blocked (see above): fix that and run `flowloom rm {}`",
            request.session, request.base, request.session
        ));
    }
    Ok(removed)
}

/// As `git commit -m ""` aborts ("empty commit message"): a message that is only
/// whitespace would be stored empty once cleaned up.
fn refuse_empty_message(args: &MergeArgs) -> Result<(), Error> {
    if args.message.as_deref().is_some_and(|m| m.trim().is_empty()) {
        return Err(Error::Usage {
            message: "the commit message given with -m is empty; nothing was merged".into(),
            help: Some(
                "give the squash commit a message, or leave -m out for the purpose and the commits' subjects".into(),
            ),
        });
    }
    Ok(())
}

/// What to land: the session's branch on its local base branch (named without
/// `refs/heads/`), in the mode the command line or the manifest asks for.
fn request(session: &crate::manifest::Session, args: &MergeArgs) -> Request {
    Request {
        session: session.id.clone(),
        branch: session.branch.clone(),
        base: session
            .base
            .strip_prefix("refs/heads/")
            .unwrap_or(&session.base)
            .to_owned(),
        mode: mode(args, session.environment.merge),
        message: args.message.clone(),
        purpose: session.purpose.clone(),
    }
}

/// The removal after a merge failed: what blocked it (already saying the merge stays), or
/// any other error, told with what landed and how to finish the removal.
fn landed_anyway(error: Error, landed: &super::rm::Landed, session: &str, force: bool) -> Error {
    if matches!(error, Error::Blocked { .. }) {
        return error;
    }
    Error::Landed {
        landed: landed.text(),
        session: session.to_owned(),
        help: super::rm::force_help(session, force, true, true),
        removal: vec![error],
    }
}

/// SPEC §11.3: whether the session's teardown may run when the removal comes (an empty one
/// always may); on a terminal, an untrusted one is shown and asked about first, as `apply`
/// asks (`--yes` never implies trust).
fn teardown_trusted(
    repo: &gix::Repository,
    environment: &crate::manifest::Environment,
    confirm: Confirm,
    printer: &Printer,
) -> Result<bool, Error> {
    if environment.teardown.is_empty() {
        return Ok(true);
    }
    let script = environment.setup_script();
    let hash = crate::store::machine::setup_hash(&script);
    let key = crate::store::machine::repository_key(&crate::fsutil::canonical(repo.common_dir()));
    if crate::store::machine::trusted(&key)?.contains(&hash) {
        return Ok(true);
    }
    if confirm == Confirm::Ask && super::apply::ask_trust(&[script], printer) {
        crate::store::machine::trust(&key, &[hash].into())?;
        return Ok(true);
    }
    Ok(false)
}

/// `--squash`/`--rebase`/`--ff-only`, else the manifest's `merge`, else squash.
fn mode(args: &MergeArgs, configured: Option<MergeMode>) -> Mode {
    if args.squash {
        return Mode::Squash;
    }
    if args.rebase {
        return Mode::Rebase;
    }
    if args.ff_only {
        return Mode::FfOnly;
    }
    match configured.unwrap_or_default() {
        MergeMode::Squash => Mode::Squash,
        MergeMode::Rebase => Mode::Rebase,
        MergeMode::FfOnly => Mode::FfOnly,
    }
}

/// Started inside the session through the shell function (which moves the shell out once
/// it is done): the removal runs as if started where the shell lands, so the session is
/// not "the worktree flowloom was started in".
fn removal_start(start_dir: &Path, inside: bool, landing_dir: Option<&Path>) -> PathBuf {
    match landing_dir {
        // The process keeps its own directory: the repository is open relative to it.
        Some(dir) if inside && shell_moves_out() => dir.to_path_buf(),
        _ => start_dir.to_path_buf(),
    }
}

/// Whether the shell function started this process: it names its shell, the parent.
fn shell_moves_out() -> bool {
    std::env::var(crate::names::SHELL_PID_VAR)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .is_some_and(|pid| pid == std::os::unix::process::parent_id())
}

/// The shell function reads where to go from the file it named.
fn tell_shell(dir: &Path) {
    if let Some(file) = std::env::var_os(crate::names::CD_FILE_VAR) {
        let _ = std::fs::write(file, dir.as_os_str().as_encoded_bytes());
    }
}

fn short(id: &gix::ObjectId) -> String {
    id.to_hex_with_len(7).to_string()
}

/// The plan: the commits, the base's move, the worktree's update, the removal (and the
/// teardown it runs first).
fn describe(request: &Request, landing: &Landing, worktree: &Path, teardown: &[String], trusted: bool) -> String {
    let mut text = format!(
        "flowloom will merge session `{}` ({}) into `{}`:\n",
        request.session,
        request.mode.as_str(),
        request.base
    );
    if landing.commits.is_empty() {
        text.push_str(&format!(
            "  `{}` has nothing that `{}` lacks\n",
            request.branch, request.base
        ));
    }
    for (id, subject) in &landing.commits {
        text.push_str(&format!("  {} {}\n", short(id), escape(subject)));
    }
    let how = match (request.mode, landing.fast_forward()) {
        _ if landing.old == landing.new => String::new(),
        (_, true) => " (fast-forward)".to_owned(),
        (Mode::Squash, false) => " (one squash commit)".to_owned(),
        (_, false) => format!(" ({} replayed commits)", landing.written.len()),
    };
    if landing.old != landing.new {
        text.push_str(&format!(
            "  ~ `{}` {} -> {}{how}\n",
            request.base,
            short(&landing.old),
            short(&landing.new)
        ));
    }
    match landing.worktree_path() {
        Some(path) if !landing.changes.is_empty() => text.push_str(&format!(
            "  ~ worktree {}: {} {}\n",
            path.display(),
            landing.changes.len(),
            crate::plan::plural(landing.changes.len(), "file")
        )),
        Some(_) => {}
        None => text.push_str(&format!(
            "  `{}` is checked out nowhere: only the branch moves\n",
            request.base
        )),
    }
    text.push_str(&format!(
        "  - then session `{}` is removed ({}, branch `{}`), with every check of `flowloom rm`\n",
        request.session,
        worktree.display(),
        request.branch
    ));
    for command in teardown {
        text.push_str(&format!("      runs teardown: {}\n", escape(command)));
    }
    if !trusted {
        text.push_str(
            "      the teardown is not trusted on this machine: the removal will be blocked until `flowloom trust`\n",
        );
    }
    text
}

fn landed(request: &Request, landing: &Landing) -> String {
    if landing.old == landing.new {
        return format!("`{}` already holds `{}`", request.base, request.branch);
    }
    format!(
        "Merged `{}` into `{}`: {} -> {}",
        request.branch,
        request.base,
        short(&landing.old),
        short(&landing.new)
    )
}

fn json(request: &Request, landing: &Landing, removed: bool) -> String {
    let value = serde_json::json!({
        "session": request.session,
        "branch": request.branch,
        "base": request.base,
        "mode": request.mode,
        "old": landing.old.to_string(),
        "new": landing.new.to_string(),
        "commits": landing.commits.iter().map(|(id, s)| serde_json::json!({"id": id.to_string(), "subject": s})).collect::<Vec<_>>(),
        "written": landing.written.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "files": landing.changes.len(),
        "worktree": landing.worktree_path(),
        "removed": removed,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}
