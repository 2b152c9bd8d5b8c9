//! Where the repository's hooks live (`core.hooksPath`, else `hooks/` in the common dir):
//! a value the reader finds, the plan carries and apply uses (`apply::hooks` runs them).

use std::path::{Path, PathBuf};

/// Where hooks are looked for: `core.hooksPath` (relative to the worktree the hook runs
/// in, as git resolves it), else `hooks/` in the git common dir.
pub fn hooks_dir(repo: &gix::Repository) -> HooksDir {
    match repo.config_snapshot().trusted_path("core.hooksPath") {
        Ok(Some(path)) if path.is_absolute() => HooksDir::Absolute(path),
        Ok(Some(path)) => HooksDir::InWorktree(path),
        _ => HooksDir::Absolute(crate::fsutil::canonical(repo.common_dir()).join("hooks")),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HooksDir {
    Absolute(PathBuf),
    /// A relative `core.hooksPath`: resolved in the worktree the hook runs in.
    InWorktree(PathBuf),
}

impl HooksDir {
    pub fn hook(&self, worktree: &Path, name: &str) -> PathBuf {
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

pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
