//! What apply reads again of the repository right before it acts (its just-in-time checks,
//! under the lock): handed in by the command layer, which reads it with `src/read`. Apply
//! never reads on its own what the planner read, and it decides on what it reads again with
//! the planner's own rules (`plan::rules`), so its checks are exactly as strict as the plan.

use std::path::{Path, PathBuf};

use crate::error::RepoError;
use crate::plan::rules::{Integration, Process, WorktreeFacts};

/// The reader's answers apply's re-checks need.
pub trait Probe {
    /// What a removal checks in a registered worktree (SPEC §7): its submodules, processes,
    /// detached commits, `.git` link, changes (`hidden`: the folders flowloom's excludes
    /// hide, whose files count too) and nested repositories. The lock, whether flowloom runs
    /// inside it and whether it is half-made are apply's to fill in.
    fn worktree(
        &self,
        repo: &gix::Repository,
        admin_id: &str,
        path: &Path,
        session: &str,
        hidden: &[PathBuf],
    ) -> Result<WorktreeFacts, RepoError>;

    /// Processes (other than this one) working inside `path`.
    fn processes_inside(&self, path: &Path) -> Vec<Process>;

    /// Files of a half-made checkout that the tree of `branch` does not hold.
    fn stray_files(&self, repo: &gix::Repository, worktree: &Path, branch: &str) -> Vec<String>;

    /// How many commits `tip` reaches that none of `targets` reaches.
    fn unmerged(
        &self,
        repo: &gix::Repository,
        branch: &str,
        tip: gix::ObjectId,
        targets: Vec<gix::ObjectId>,
    ) -> Result<usize, RepoError>;

    /// Whether `tip`'s changes are in one of `targets` already, and how.
    fn integration(&self, repo: &gix::Repository, tip: gix::ObjectId, targets: &[gix::ObjectId])
    -> Option<Integration>;

    /// The branch (full ref name) a rebase in the administration folder `admin_dir` works on.
    fn rebasing(&self, admin_dir: &Path) -> Option<String>;

    /// The branch (full ref name) a bisect in the administration folder `admin_dir` started
    /// from, which `git bisect reset` checks out again.
    fn bisecting(&self, admin_dir: &Path) -> Option<String>;

    /// What of `commit`'s objects the object database lacks, if anything.
    fn missing_objects(&self, repo: &gix::Repository, commit: gix::ObjectId) -> Option<String>;

    /// Whether `path` is where a removal of the worktree at `worktree` moved it: the only
    /// shape of folder flowloom deletes as trash.
    fn is_trash_of(&self, path: &Path, worktree: &Path) -> bool;
}
