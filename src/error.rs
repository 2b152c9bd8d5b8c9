//! Errors: what went wrong while reading or writing the repository. Expected outcomes (a
//! blocked removal, drift) are values in the plan, never errors.

use std::path::{Path, PathBuf};

use miette::Diagnostic;

/// The whole error chain of a gix error in one line, in sentences: a library's bare
/// identifiers (`NotFound`, an error kind shown as Rust names it) are left out.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    // Also where a library's own message ends in one (`…or in any of its parents: NotFound`).
    text.split(": ")
        .filter(|part| !is_identifier(part))
        .collect::<Vec<_>>()
        .join(": ")
}

/// `NotFound`, `PermissionDenied`: a name from the code, not words for the user.
fn is_identifier(text: &str) -> bool {
    text.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What to do when objects git would find through `GIT_ALTERNATE_OBJECT_DIRECTORIES` are
/// missing because flowloom could not read its folders (it reads them through a folder of
/// its own in the git dir, `store::objects`, which a read-only repository cannot take).
pub const ALTERNATES_ENV_HINT: &str = "GIT_ALTERNATE_OBJECT_DIRECTORIES is set, and flowloom could not read objects from it \
     (it needs to write a folder of its own in the git dir for that): list those folders in \
     .git/objects/info/alternates instead (one a line), which git reads too";

/// Set once this process reads the folders `GIT_ALTERNATE_OBJECT_DIRECTORIES` names.
static ALTERNATES_READ: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Says that this process reads the variable's folders (`store::objects`).
pub fn alternates_env_read() {
    ALTERNATES_READ.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether this process reads the variable's folders (through `repo.objects` of the
/// repository the command opened: a repository opened anew does not).
pub fn alternates_env_is_read() -> bool {
    ALTERNATES_READ.load(std::sync::atomic::Ordering::Relaxed)
}

/// [`ALTERNATES_ENV_HINT`], when `GIT_ALTERNATE_OBJECT_DIRECTORIES` is set (and not empty)
/// and its folders are not read.
pub fn alternates_env_hint() -> Option<&'static str> {
    std::env::var_os("GIT_ALTERNATE_OBJECT_DIRECTORIES")
        .filter(|v| !v.is_empty() && !ALTERNATES_READ.load(std::sync::atomic::Ordering::Relaxed))
        .map(|_| ALTERNATES_ENV_HINT)
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum RepoError {
    #[error("could not {action} {}: {reason}", path.display())]
    #[diagnostic(code(flowloom::git))]
    Git {
        action: &'static str,
        path: PathBuf,
        reason: String,
    },

    #[error("could not {action} {}: {source}", path.display())]
    #[diagnostic(code(flowloom::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the ownership record {} is corrupt: {reason}", path.display())]
    #[diagnostic(
        code(flowloom::record),
        help(
            "flowloom will not guess who owns which session. Fix the file, or move it away: its sessions then show as unmanaged and are never removed"
        )
    )]
    CorruptRecord { path: PathBuf, reason: String },

    #[error("the worktrees root {} cannot be used: {why}", path.display())]
    #[diagnostic(
        code(flowloom::root),
        help(
            "flowloom never writes through a symlink, inside a git directory, or in another repository's or worktree's files: set `root` in [defaults] to a real folder of its own, inside the main worktree (`sessions`) or beside it (`../{{repo}}.sessions`), or replace the symlink with a folder"
        )
    )]
    UnsafeRoot { path: PathBuf, why: String },

    #[error("the session folder {} cannot be used: {why}", path.display())]
    #[diagnostic(
        code(flowloom::session_folder),
        help(
            "flowloom never runs or points into a session through a symlink: move the symlink away and run `flowloom apply`, which makes the session's folder again"
        )
    )]
    UnsafeSession { path: PathBuf, why: String },

    /// SPEC §11.4: a session's folder is there but is not a worktree of this repository:
    /// git run in it would work on another repository, or on another session's branch.
    #[error("the session folder {} is not a worktree of this repository: {why}", path.display())]
    #[diagnostic(
        code(flowloom::session_folder_foreign),
        help(
            "flowloom runs and points only into this repository's own worktrees: move the folder away, then `flowloom apply` makes the session there (`flowloom plan` shows it blocked until then)"
        )
    )]
    ForeignSessionFolder { path: PathBuf, why: String },

    #[error("the LFS object{} of {} {} not in this repository, so the checkout failed (git's fails too); nothing of the session was left", if files.len() == 1 { "" } else { "s" }, list(files), if files.len() == 1 { "is" } else { "are" })]
    #[diagnostic(
        code(flowloom::lfs_missing),
        help("fetch them first: git lfs fetch (or git lfs pull), then run `flowloom apply` again")
    )]
    LfsObjectsMissing { files: Vec<String> },

    #[error(
        "the checkout filter `{driver}` failed on {}: {reason}; nothing of the session was left",
        list(files)
    )]
    #[diagnostic(
        code(flowloom::filter),
        help(
            "the repository's attributes send these files through filter.{driver}.process (or .smudge): check that the program is installed and works, as a git checkout needs it too"
        )
    )]
    FilterFailed {
        driver: String,
        files: Vec<String>,
        reason: String,
    },

    #[error("{0}")]
    #[diagnostic(code(flowloom::repo))]
    Message(String),
}

/// Up to three file names, and how many more.
fn list(files: &[String]) -> String {
    let shown = files.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    match files.len() {
        0..=3 => shown,
        n => format!("{shown} and {} more", n - 3),
    }
}

impl RepoError {
    pub fn git(action: &'static str, path: &Path, err: impl std::error::Error + 'static) -> Self {
        RepoError::Git {
            action,
            path: path.to_owned(),
            reason: chain(&err),
        }
    }

    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        RepoError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    pub fn message(text: impl Into<String>) -> Self {
        RepoError::Message(text.into())
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("could not find a repository")]
    struct Outer(#[source] Inner);
    #[derive(Debug, thiserror::Error)]
    #[error("NotFound")]
    struct Inner;

    #[test]
    fn bare_identifiers_never_reach_the_user() {
        assert_eq!(super::chain(&Outer(Inner)), "could not find a repository");
    }
}
