//! Links between a linked worktree and its registration that a moved folder broke, found as
//! `git worktree repair` finds them: the registration's `gitdir` names where its worktree
//! was, and the worktree's `.git` file names where its registration was. When the whole
//! repository moved (sessions inside it or beside it, moved with it), both name the old
//! place; when the repository moved and the sessions stayed, only the `.git` files do.
//! git matches the two by the registration's folder name (the last part of the path the
//! `.git` file names); so does this reader.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One registration whose links are to be written again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRepair {
    /// Its folder under `<common dir>/worktrees/`.
    pub admin_id: String,
    /// Where its `gitdir` says the worktree is (the folder).
    pub from: PathBuf,
    /// Where the worktree is: the folder whose `.git` names this registration.
    pub to: PathBuf,
}

/// What a worktree's `.git` file names (the registration folder), when it is a gitfile.
fn gitfile_target(worktree: &Path) -> Option<PathBuf> {
    let text = crate::fsutil::read_regular_beneath(worktree, Path::new(".git"), 1 << 16)
        .ok()
        .flatten()?;
    let text = String::from_utf8(text).ok()?;
    let target = text.strip_prefix("gitdir: ")?.trim_end_matches(['\n', '\r']);
    Some(worktree.join(target))
}

/// Whether the `.git` of `worktree` names an existing registration other than `admin` (a
/// copy of the repository, `cp -a repo repo2`: the copy's registrations name the original's
/// worktrees, whose `.git` names the original's registrations). Such a worktree is the
/// other repository's: `git worktree repair` would take it (rewriting its `.git`, or the
/// other repository's `gitdir`); flowloom leaves it alone.
pub fn belongs_elsewhere(worktree: &Path, admin: &Path) -> bool {
    gitfile_target(worktree)
        .is_some_and(|target| target.is_dir() && crate::fsutil::canonical(&target) != crate::fsutil::canonical(admin))
}

/// Whether the `.git` of `worktree` names the registration `admin_id`, but at a place that
/// is not `admin` and no longer exists (a moved repository): git's `repair` takes such a
/// link for this registration.
fn stale_link_to(worktree: &Path, admin_id: &str, admin: &Path) -> bool {
    let Some(target) = gitfile_target(worktree) else {
        return false;
    };
    let names_it = target.file_name().is_some_and(|n| n == admin_id)
        && target
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "worktrees");
    names_it && target.symlink_metadata().is_err() && crate::fsutil::canonical(&target) != admin
}

/// The repair a registration needs: `registered` is where its `gitdir` says the worktree
/// is, `candidates` where flowloom would look for it (the declared sessions' paths).
pub fn repair_for(common_dir: &Path, admin_id: &str, registered: &Path, candidates: &[&Path]) -> Option<LinkRepair> {
    let admin = crate::fsutil::canonical(&common_dir.join("worktrees").join(admin_id));
    let repair = |to: &Path| LinkRepair {
        admin_id: admin_id.to_owned(),
        from: registered.to_owned(),
        to: to.to_owned(),
    };
    if registered.symlink_metadata().is_ok() {
        // The worktree is where it was: only its `.git` may name an old place.
        return stale_link_to(registered, admin_id, &admin).then(|| repair(registered));
    }
    candidates
        .iter()
        .find(|c| stale_link_to(c, admin_id, &admin))
        .map(|c| repair(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_repository_and_its_moved_worktree_are_matched_by_the_registration_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let common = dir.path().join("new/.git");
        std::fs::create_dir_all(common.join("worktrees/wt")).expect("admin");
        let worktree = dir.path().join("new/sessions/wt");
        std::fs::create_dir_all(&worktree).expect("worktree");
        let old_admin = dir.path().join("old/.git/worktrees/wt");
        std::fs::write(worktree.join(".git"), format!("gitdir: {}\n", old_admin.display())).expect("gitfile");
        let registered = dir.path().join("old/sessions/wt");
        let found = repair_for(&common, "wt", &registered, &[worktree.as_path()]).expect("repair");
        assert_eq!((found.from, found.to), (registered.clone(), worktree.clone()));
        // Another registration's name does not match.
        assert!(repair_for(&common, "other", &registered, &[worktree.as_path()]).is_none());
        // Once the link names this registration, nothing is left to repair.
        let admin = common.join("worktrees/wt");
        std::fs::write(worktree.join(".git"), format!("gitdir: {}\n", admin.display())).expect("gitfile");
        assert!(repair_for(&common, "wt", &worktree, &[]).is_none());
    }

    #[test]
    fn a_worktree_left_in_place_gets_its_dot_git_repaired() {
        let dir = tempfile::tempdir().expect("tempdir");
        let common = dir.path().join("new/.git");
        std::fs::create_dir_all(common.join("worktrees/wt")).expect("admin");
        let worktree = dir.path().join("beside/wt");
        std::fs::create_dir_all(&worktree).expect("worktree");
        let old_admin = dir.path().join("old/.git/worktrees/wt");
        std::fs::write(worktree.join(".git"), format!("gitdir: {}\n", old_admin.display())).expect("gitfile");
        let found = repair_for(&common, "wt", &worktree, &[]).expect("repair");
        assert_eq!(
            (found.from.as_path(), found.to.as_path()),
            (worktree.as_path(), worktree.as_path())
        );
    }
}
