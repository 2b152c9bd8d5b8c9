//! The repository's own `post-checkout` hook, run in a new worktree as `git worktree add`
//! runs it (SPEC §5): in the worktree's folder, without the caller's `GIT_DIR` and the like
//! (`setup::session_command`), with `GIT_PREFIX` as git sets it for the commands it runs
//! (where flowloom was started, relative to the top of the worktree it found, `sub/`; empty
//! outside), with the null object id, the new `HEAD` and `1`; its standard output goes to
//! standard error, as git sends it. Running the repository's hooks is not running git.
//!
//! One difference on purpose: `git worktree add` lets a caller's `GIT_INDEX_FILE` (and
//! `GIT_COMMON_DIR`, `GIT_OBJECT_DIRECTORY`) through to the hook, whose `git` then works on
//! the caller's index instead of the new worktree's; flowloom clears them (SPEC §11.4).

use std::path::{Path, PathBuf};

use crate::hooks::{HooksDir, is_executable};

/// How the `post-checkout` hook failed; the session it ran in was made all the same.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("could not run the post-checkout hook {}: {source}", .hook.display())]
    Spawn {
        hook: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the post-checkout hook {} failed ({status}); the session was created", .hook.display())]
    Failed {
        hook: PathBuf,
        status: std::process::ExitStatus,
    },
}

/// Run `post-checkout` in `worktree`, if there is an executable one.
pub fn post_checkout(dir: &HooksDir, worktree: &Path, prefix: &str, null: &str, head: &str) -> Result<(), HookError> {
    let hook = dir.hook(worktree, "post-checkout");
    if !is_executable(&hook) {
        return Ok(());
    }
    let vars = [("GIT_PREFIX".to_owned(), prefix.to_owned())];
    let status = crate::apply::setup::session_command(&hook, worktree, &vars)
        .args([null, head, "1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .status();
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(HookError::Failed { hook, status }),
        Err(source) => Err(HookError::Spawn { hook, source }),
    }
}
