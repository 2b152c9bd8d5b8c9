//! SPEC §10 `setup`: the manifest's commands, run in a new session with its environment.
//! They are code from whoever last changed the manifest, so they only get here when this
//! machine trusts exactly this list (the planner blocks the session otherwise).

use std::io::Write;
use std::path::Path;

use crate::error::RepoError;
use crate::escape::escape;
use crate::store::metadata::{MetadataFile, SetupProgress, SetupState};

/// How a session's setup failed (SPEC §10, §11.3): the session was made all the same.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The command could not be started.
    #[error("could not run setup command `{}`: {source}", escape(command))]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// The command ran and did not succeed; the rest did not run.
    #[error(
        "setup command `{}` failed ({status}); the session was created, and the rest of its setup did not run (the next `flowloom apply` runs what did not succeed; `flowloom setup {session}` runs it all again)",
        escape(command)
    )]
    Failed {
        session: String,
        command: String,
        status: std::process::ExitStatus,
    },
    /// How far the setup got could not be recorded: the session has no metadata to hold it.
    #[error("session `{session}` has no metadata.json flowloom can record its setup in")]
    NoMetadata { session: String },
    /// How far the setup got could not be written.
    #[error(transparent)]
    Record(RepoError),
}

/// The variables with which git finds a repository, its index, its objects or the
/// caller's place in it: the place-naming part of what git itself clears when it enters
/// another repository (`git rev-parse --local-env-vars`). A caller's `GIT_DIR` (a hook, a
/// git alias, an editor run by git) would otherwise send a `git commit` made in a session
/// to the caller's repository. `GIT_CONFIG` names a file (`git config` reads and writes it
/// instead of the repository's own), so it goes, as git drops it for another repository;
/// so does `GIT_QUARANTINE_PATH` (set with `GIT_OBJECT_DIRECTORY` in a `pre-receive` hook:
/// with it, git refuses every ref update). The shell function drops these too after
/// `flowloom cd` (`commands::shell_init`): in the session they would still name the place
/// the shell came from.
///
/// git's configuration settings (`GIT_CONFIG_PARAMETERS`, `GIT_CONFIG_COUNT` and its keys,
/// `GIT_CONFIG_GLOBAL`) are the user's, not a place: they are kept, as git keeps them for a
/// submodule. So is `GIT_ALTERNATE_OBJECT_DIRECTORIES`: it only adds folders to read
/// objects from, flowloom reads them too (`store::objects`), and `git worktree add` hands
/// it to the `post-checkout` hook; without it, `git` in a session made from objects found
/// only there could not read its own commits.
pub const CALLER_GIT_PLACES: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_GRAFT_FILE",
    "GIT_INTERNAL_SUPER_PREFIX",
    "GIT_CONFIG",
    "GIT_QUARANTINE_PATH",
];

/// What a session's commands do not inherit besides [`CALLER_GIT_PLACES`]: the caller's
/// namespace (which a local `git push` or `fetch` from the session would carry into the
/// other repository's refs), its replace refs, and its limits on discovery (ceilings,
/// file-system boundary: set for the caller's place, not the session's). The shell function
/// keeps these: in an interactive shell they are the user's own settings.
pub const CALLER_GIT_VARIABLES: &[&str] = &[
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
];

/// THE way to start anything inside a session (SPEC §10, §11.4): `flowloom run`, setup
/// and teardown commands, the repository's hooks. `program` runs in `worktree` with the
/// caller's environment minus [`CALLER_GIT_PLACES`] and [`CALLER_GIT_VARIABLES`], plus `vars` (the session's
/// environment; empty for a hook, which gets what git gives it). git run by it then
/// works on the session.
pub fn session_command(
    program: impl AsRef<std::ffi::OsStr>,
    worktree: &Path,
    vars: &[(String, String)],
) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    // `PWD` too: a program that reads it (rather than asking the system) would otherwise
    // work in the caller's folder, the main worktree perhaps.
    command.current_dir(worktree).env("PWD", worktree);
    for name in CALLER_GIT_PLACES.iter().chain(CALLER_GIT_VARIABLES) {
        command.env_remove(name);
    }
    // A caller inside another session (`flowloom run a -- flowloom run b -- ...`, a setup
    // command that runs flowloom) has that session's variables: a port `b` does not declare
    // would still name `a`'s. So none of the caller's `FLOWLOOM_` variables go through, nor
    // the shell function's (a nested `new` must not move the caller's shell).
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_session_variable) {
            command.env_remove(name);
        }
    }
    command.envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command
}

/// Whether the caller's variable `name` describes the session it runs in, or the shell
/// function's call (SPEC §10's variables, the `cd` file, the shell's pid).
fn is_session_variable(name: &str) -> bool {
    name.strip_prefix("FLOWLOOM_").is_some_and(|rest| {
        matches!(rest, "SESSION" | "BRANCH" | "WORKTREE" | "CD_FILE" | "SHELL_PID") || rest.starts_with("PORT_")
    })
}

/// Runs `commands` in order with `sh -c` in `worktree`, with `vars` set, standard input
/// closed and their output on standard error (standard output may be JSON). Stops at the
/// first command that fails; `Err` says which and how.
pub fn run(session: &str, commands: &[String], worktree: &Path, vars: &[(String, String)]) -> Result<(), SetupError> {
    commands
        .iter()
        .try_for_each(|command| run_one(session, command, worktree, vars))
}

/// One setup command, as [`run`] runs each.
pub fn run_one(session: &str, command: &str, worktree: &Path, vars: &[(String, String)]) -> Result<(), SetupError> {
    let status = run_shell("setup", session, command, worktree, vars).map_err(|source| SetupError::Spawn {
        command: command.to_owned(),
        source,
    })?;
    if !status.success() {
        return Err(SetupError::Failed {
            session: session.to_owned(),
            command: command.to_owned(),
            status,
        });
    }
    Ok(())
}

/// One `setup` or `teardown` (`what`) command: named on standard error, then run with
/// `sh -c` in `worktree` with `vars`, standard input closed, its output on standard error
/// (standard output may be JSON).
fn run_shell(
    what: &str,
    session: &str,
    command: &str,
    worktree: &Path,
    vars: &[(String, String)],
) -> std::io::Result<std::process::ExitStatus> {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{what} of `{session}`: $ {}", escape(command));
    drop(err);
    session_command("sh", worktree, vars)
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .status()
}

/// A teardown command that did not succeed: the command and its exit status or signal (or
/// why it could not start).
#[derive(Debug)]
pub struct TeardownFailed {
    pub command: String,
    pub status: String,
}

/// SPEC §11.3: a removal's `teardown` commands, in order, in the worktree about to go, as
/// setup commands run. Stops at the first that fails unless `go_on` (`--force`), which runs
/// every one; the failures, in order.
pub fn teardown(
    session: &str,
    commands: &[String],
    worktree: &Path,
    vars: &[(String, String)],
    go_on: bool,
) -> Vec<TeardownFailed> {
    let mut failed = Vec::new();
    for command in commands {
        if crate::store::lock::interrupted() {
            break;
        }
        let status = match run_shell("teardown", session, command, worktree, vars) {
            Ok(status) if status.success() => continue,
            Ok(status) => status.to_string(),
            Err(e) => format!("could not start: {e}"),
        };
        failed.push(TeardownFailed {
            command: command.clone(),
            status,
        });
        if !go_on {
            break;
        }
    }
    failed
}

/// What wraps each setup command as it runs (a progress bar steps aside).
pub type Around<'a> = dyn Fn(&mut dyn FnMut() -> Result<(), SetupError>) -> Result<(), SetupError> + 'a;

/// SPEC §11.3: runs `commands` one by one (as [`run`]), recording each success in the
/// session's metadata after `progress.done`, so that a kill never runs it again; then
/// records the setup `ok`, `failed`, or still `incomplete` (Ctrl-C; `progress.copied`
/// false: the copy did not finish). `around` wraps each command (a progress bar steps aside).
pub fn run_recorded(
    session: &str,
    worktree: &Path,
    vars: &[(String, String)],
    commands: &[String],
    mut progress: SetupProgress,
    around: &Around<'_>,
) -> Result<(), SetupError> {
    let before = progress.done.len();
    let mut result = Ok(());
    for command in commands {
        if crate::store::lock::interrupted() {
            break;
        }
        result = around(&mut || run_one(session, command, worktree, vars));
        if result.is_err() {
            break;
        }
        progress.done.push(command.clone());
        record_progress(worktree, session, &progress)?;
        super::failpoint("setup:recorded");
    }
    let finished = progress.done.len() - before == commands.len();
    progress.state = match (&result, progress.copied && finished) {
        (Err(_), _) => SetupState::Failed,
        (Ok(()), true) => SetupState::Ok,
        (Ok(()), false) => SetupState::Incomplete,
    };
    record_progress(worktree, session, &progress)?;
    result
}

/// Write how far copy and setup got into the session's metadata. A file that records
/// nothing yet and would only be told "finished" is left as it is.
pub fn record_progress(worktree: &Path, session: &str, progress: &SetupProgress) -> Result<(), SetupError> {
    let MetadataFile::Valid(found) = crate::store::metadata::read(worktree, session) else {
        return Err(SetupError::NoMetadata {
            session: session.to_owned(),
        });
    };
    if !found.records_setup() && progress.state == SetupState::Ok && progress.done.is_empty() {
        return Ok(());
    }
    let rel = crate::names::metadata_file(session);
    crate::fsutil::write_beneath(worktree, &rel, found.with_progress(progress).as_bytes()).map_err(SetupError::Record)
}
