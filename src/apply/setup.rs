//! SPEC §10 `setup`: the manifest's commands, run in a new session with its environment.
//! They are code from whoever last changed the manifest, so they only get here when this
//! machine trusts exactly this list (the planner blocks the session otherwise).

use std::io::Write;
use std::path::Path;

/// The variables with which git finds a repository, its index, its objects or the
/// caller's place in it: the repository-locating part of what git itself clears when it
/// enters another repository (`git rev-parse --local-env-vars`). A caller's `GIT_DIR` (a
/// hook, a git alias, an editor run by git) would otherwise send a `git commit` made in a
/// session to the caller's repository. git's configuration variables (`GIT_CONFIG_*`) are
/// the user's settings, not a place, and `GIT_NAMESPACE` only changes what is served to
/// remotes: both are kept.
pub const CALLER_GIT_VARIABLES: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_GRAFT_FILE",
    "GIT_INTERNAL_SUPER_PREFIX",
];

/// THE way to start anything inside a session (SPEC §10, §11.4): `flowloom run`, setup
/// and teardown commands, the repository's hooks. `program` runs in `worktree` with the
/// caller's environment minus [`CALLER_GIT_VARIABLES`], plus `vars` (the session's
/// environment; empty for a hook, which gets what git gives it). git run by it then
/// works on the session.
pub fn session_command(
    program: impl AsRef<std::ffi::OsStr>,
    worktree: &Path,
    vars: &[(String, String)],
) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    command.current_dir(worktree);
    for name in CALLER_GIT_VARIABLES {
        command.env_remove(name);
    }
    command.envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command
}

/// Runs `commands` in order with `sh -c` in `worktree`, with `vars` set, standard input
/// closed and their output on standard error (standard output may be JSON). Stops at the
/// first command that fails; `Err` says which and how.
pub fn run(session: &str, commands: &[String], worktree: &Path, vars: &[(String, String)]) -> Result<(), String> {
    for command in commands {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "setup of `{session}`: $ {}",
            crate::render::output::escape(command)
        );
        drop(err);
        let status = session_command("sh", worktree, vars)
            .arg("-c")
            .arg(command)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::from(std::io::stderr()))
            .status()
            .map_err(|e| {
                format!(
                    "could not run setup command `{}`: {e}",
                    crate::render::output::escape(command)
                )
            })?;
        if !status.success() {
            return Err(format!(
                "setup command `{}` failed ({status}); the session was created, and the rest of its setup did not run (run it with `flowloom run {session} -- ...`)",
                crate::render::output::escape(command)
            ));
        }
    }
    Ok(())
}
