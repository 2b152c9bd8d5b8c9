//! SPEC §10 `setup`: the manifest's commands, run in a new session with its environment.
//! They are code from whoever last changed the manifest, so they only get here when this
//! machine trusts exactly this list (the planner blocks the session otherwise).

use std::io::Write;
use std::path::Path;

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
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(worktree)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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
