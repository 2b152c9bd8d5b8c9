//! The repository's own `post-checkout` hook, run in a new worktree as `git worktree add`
//! runs it (SPEC §5): in the worktree's folder, with `GIT_DIR` and `GIT_WORK_TREE` unset,
//! with the null object id, the new `HEAD` and `1`; its standard output goes to standard
//! error, as git sends it. Running the repository's hooks is not running git.

use std::path::{Path, PathBuf};

/// Where hooks are looked for: `core.hooksPath` (relative to the worktree the hook runs
/// in, as git resolves it), else `hooks/` in the git common dir.
pub fn hooks_dir(repo: &gix::Repository) -> HooksDir {
    match repo.config_snapshot().trusted_path("core.hooksPath") {
        Ok(Some(path)) if path.is_absolute() => HooksDir::Absolute(path),
        Ok(Some(path)) => HooksDir::InWorktree(path),
        _ => HooksDir::Absolute(crate::state::canonical(repo.common_dir()).join("hooks")),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HooksDir {
    Absolute(PathBuf),
    /// A relative `core.hooksPath`: resolved in the worktree the hook runs in.
    InWorktree(PathBuf),
}

impl HooksDir {
    fn hook(&self, worktree: &Path, name: &str) -> PathBuf {
        match self {
            HooksDir::Absolute(dir) => dir.join(name),
            HooksDir::InWorktree(rel) => worktree.join(rel).join(name),
        }
    }

    /// For the plan: what will run, as the user wrote it.
    pub fn describe(&self, name: &str) -> String {
        match self {
            HooksDir::Absolute(dir) => dir.join(name).display().to_string(),
            HooksDir::InWorktree(rel) => format!("{} (core.hooksPath, in the new worktree)", rel.join(name).display()),
        }
    }

    /// Whether a hook may run: for an absolute folder, only when it is there and
    /// executable now; a folder inside the worktree is only known after the checkout.
    pub fn may_run(&self, name: &str) -> bool {
        match self {
            HooksDir::Absolute(dir) => is_executable(&dir.join(name)),
            HooksDir::InWorktree(_) => true,
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Run `post-checkout` in `worktree`, if there is an executable one. `Err` says how it failed.
pub fn post_checkout(dir: &HooksDir, worktree: &Path, null: &str, head: &str) -> Result<(), String> {
    let hook = dir.hook(worktree, "post-checkout");
    if !is_executable(&hook) {
        return Ok(());
    }
    let status = std::process::Command::new(&hook)
        .args([null, head, "1"])
        .current_dir(worktree)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| format!("could not run the post-checkout hook {}: {e}", hook.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the post-checkout hook {} failed ({status}); the session was created",
            hook.display()
        ))
    }
}
