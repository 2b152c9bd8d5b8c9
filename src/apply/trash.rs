//! The trash beside the worktrees root (SPEC §11.4): a checked worktree moves there, is
//! checked once more, and is deleted; anything found moves it back.

use std::path::{Path, PathBuf};

use super::{Executor, Failure, failpoint, test_hook};
use crate::error::RepoError;
use crate::plan::{Change, Reason, Removal};
use crate::store::ownership::OwnedState;

impl Executor<'_> {
    /// Move a worktree an interrupted removal left in the trash back where it was.
    pub(super) fn restore(&mut self, change: &Change, from: &Path, base: &str) -> Result<(), Failure> {
        if change.path.symlink_metadata().is_ok() {
            return Err(Failure::Blocked(vec![Reason::FolderInTheWay {
                path: change.path.clone(),
            }]));
        }
        // Once its deletion started, a folder never moves back (SPEC §11.4).
        if !self.probe.is_trash_of(from, &change.path) || self.record.deleting.iter().any(|p| p == from) {
            return Err(RepoError::message(format!("{} is no longer in the trash", from.display())).into());
        }
        std::fs::rename(from, &change.path).map_err(|e| RepoError::io("move back out of the trash", from, e))?;
        if let Some(dir) = from.parent() {
            let _ = std::fs::remove_dir(dir);
        }
        self.mark(change, base, OwnedState::Created)?;
        Ok(())
    }

    /// Move a checked worktree into the trash (recording where, and a digest of what the
    /// check saw), then finish its removal there.
    pub(super) fn trash_worktree(
        &mut self,
        change: &Change,
        removal: &Removal,
        admin_id: &str,
        half_made: bool,
        stamps: &crate::fsutil::stamps::Stamps,
    ) -> Result<(), Failure> {
        let trash = trash_target(&change.path)?;
        test_hook("FLOWLOOM_TEST_BEFORE_TRASH", &change.session);
        let digest = Some(stamps.digest());
        self.mark_with_trash(change, &removal.base, OwnedState::Removing, Some(trash.clone()), digest)?;
        failpoint("remove:marked");
        move_into_trash(&change.path, &trash)?;
        failpoint("remove:trashed");
        self.finish_in_trash(change, removal, admin_id, &trash, half_made, Some(stamps))
    }

    /// A worktree in the trash: check it there once more (nobody works in it any more):
    /// files changed since the check (against `before`, else the recorded digest), a process
    /// inside, a lock. Then drop its registration and delete it. Anything found, or any
    /// failure before the registration is gone, moves it back.
    pub(super) fn finish_in_trash(
        &mut self,
        change: &Change,
        removal: &Removal,
        admin_id: &str,
        trash: &Path,
        half_made: bool,
        before: Option<&crate::fsutil::stamps::Stamps>,
    ) -> Result<(), Failure> {
        if !self.probe.is_trash_of(trash, &change.path) {
            return Err(RepoError::message(format!("{} is not this worktree's trash", trash.display())).into());
        }
        let mut reasons = Vec::new();
        let now = crate::fsutil::stamps::Stamps::read(trash);
        let changed = match before {
            Some(before) => before.changed(&now),
            None => {
                let recorded = self.record.by_path(&change.path).and_then(|o| o.trash_digest.clone());
                if recorded.as_deref() == Some(now.digest().as_str()) {
                    Vec::new()
                } else {
                    vec!["(files changed in the trash since they were checked)".to_owned()]
                }
            }
        };
        if !changed.is_empty() {
            reasons.push(Reason::NewSincePlan { files: changed });
        }
        reasons.extend(self.probe.processes_inside(trash).into_iter().map(|p| Reason::Process {
            pid: p.pid,
            name: p.name,
            uses: p.uses,
        }));
        let lock = crate::fsutil::read_small(&self.common_dir.join("worktrees").join(admin_id).join("locked"))
            .map(|r| String::from_utf8_lossy(&r).trim().to_owned());
        if let Some(lock) = crate::plan::rules::blocking_lock(lock.as_deref(), half_made) {
            reasons.push(Reason::Locked { lock: lock.to_owned() });
        }
        if !reasons.is_empty() {
            self.move_back(change, removal, trash)?;
            return Err(Failure::Blocked(reasons));
        }
        failpoint("remove:checked");
        if let Err(e) = self.unregister(admin_id, &change.path, half_made) {
            self.move_back(change, removal, trash)?;
            return Err(e.into());
        }
        failpoint("remove:unregistered");
        self.delete_trash(change, trash)
    }

    /// SPEC §11.4: the checked folder, unregistered, is deleted. First the record says so
    /// (in one write, the folder leaves its session's entry for the list of deletions
    /// started): from then on the removal is finished, never undone — a kill part-way, or a
    /// file that cannot be deleted, leaves a folder that every later plan shows as a step to
    /// finish, and that never moves back into the root.
    pub(super) fn delete_trash(&mut self, change: &Change, trash: &Path) -> Result<(), Failure> {
        if let Some(mut entry) = self.record.by_path(&change.path).cloned() {
            entry.trash = None;
            entry.trash_digest = None;
            self.record.upsert(entry);
        }
        self.start_deletion(trash)?;
        Ok(self.finish_deletion(trash)?)
    }

    /// One record write: `path` leaves every session entry's trash for the list of
    /// deletions started. From then on no plan moves it back; every plan finishes it.
    pub(super) fn start_deletion(&mut self, path: &Path) -> Result<(), RepoError> {
        for o in &mut self.record.sessions {
            if o.trash.as_deref() == Some(path) {
                o.trash = None;
                o.trash_digest = None;
            }
        }
        if !self.record.deleting.iter().any(|p| p == path) {
            self.record.deleting.push(path.to_owned());
        }
        self.save_record()
    }

    /// Delete a folder whose deletion the record says started, then drop it from the
    /// record, then the trash folder if that is empty now (a kill before that leaves an
    /// empty trash folder, which the next plan removes as a leftover).
    pub(super) fn finish_deletion(&mut self, path: &Path) -> Result<(), RepoError> {
        failpoint_part_way("remove:deleting", path);
        delete_tree(path)?;
        self.record.deleting.retain(|p| p != path);
        self.save_record()?;
        failpoint("remove:deleted");
        if let Some(dir) = path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
        Ok(())
    }

    /// Undo a move into the trash: the worktree is back where it was, recorded as created.
    pub(super) fn move_back(&mut self, change: &Change, removal: &Removal, trash: &Path) -> Result<(), RepoError> {
        std::fs::rename(trash, &change.path).map_err(|e| RepoError::io("move back out of the trash", trash, e))?;
        if let Some(dir) = trash.parent() {
            let _ = std::fs::remove_dir(dir);
        }
        self.mark(change, &removal.base, OwnedState::Created)
    }
}

/// Where a checked worktree folder goes: `<root>/.flowloom-trash/<name>` (numbered when
/// taken), in the same folder so that the move is one rename. The trash folder must be a
/// real folder, never a symlink; it is made by `move_into_trash`.
pub(super) fn trash_target(path: &Path) -> Result<PathBuf, RepoError> {
    let parent = path
        .parent()
        .ok_or_else(|| RepoError::message(format!("{} has no parent folder", path.display())))?;
    let trash = parent.join(crate::names::TRASH_DIR);
    if std::fs::symlink_metadata(&trash).is_ok_and(|m| !m.is_dir()) {
        return Err(RepoError::message(format!(
            "{} is not a folder (a symlink?); flowloom moves nothing there",
            trash.display()
        )));
    }
    let name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    let mut target = trash.join(&name);
    let mut n = 1;
    while target.symlink_metadata().is_ok() {
        n += 1;
        let mut numbered = name.clone();
        numbered.push(format!("-{n}"));
        target = trash.join(numbered);
    }
    Ok(target)
}

/// Make the trash folder (a real folder: a symlink there is refused) and move `path` to
/// `target` in it, in one rename.
pub(super) fn move_into_trash(path: &Path, target: &Path) -> Result<(), RepoError> {
    if let Some(trash) = target.parent() {
        match std::fs::create_dir(trash) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(RepoError::io("create", trash, e)),
        }
        if !std::fs::symlink_metadata(trash).is_ok_and(|m| m.is_dir()) {
            return Err(RepoError::message(format!(
                "{} is not a folder (a symlink?); flowloom moves nothing there",
                trash.display()
            )));
        }
    }
    match std::fs::rename(path, target) {
        // Moving a folder to another parent rewrites its `..`: a worktree folder made
        // read-only gets its owner's write permission back first (SPEC §11.3).
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::symlink_metadata(path).map_err(|e| RepoError::io("read", path, e))?;
            if meta.is_dir() {
                let mode = meta.permissions().mode() | 0o700;
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
            }
            std::fs::rename(path, target).map_err(|e| RepoError::io("move into the trash", path, e))
        }
        other => other.map_err(|e| RepoError::io("move into the trash", path, e)),
    }
}

/// Delete a folder that a check found holds nothing to keep (a trash folder, a half-made
/// checkout). SPEC §11.3: a read-only folder inside (a copied Go module cache, `chmod -R
/// a-w`) never stops it: where a folder's entries cannot be deleted for want of permission,
/// the folders are made writable by their owner, as `rm -rf` after `chmod -R u+w` would,
/// and the deletion goes on. A symlink is deleted, never followed.
pub(super) fn delete_tree(path: &Path) -> Result<(), RepoError> {
    let remove = |p: &Path| match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) => Err(e),
    };
    // First on every core; anything left after an error goes the careful way below.
    let first = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => crate::fsutil::remove::remove_tree(path),
        _ => remove(path),
    };
    match first {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                writable_folders(path);
            }
            match remove(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => {
                    // As much as can go goes; the error names an entry that cannot.
                    let (at, e) = delete_what_can_go(path).unwrap_or((path.to_owned(), e));
                    Err(RepoError::io("delete", &at, e))
                }
            }
        }
    }
}

/// Delete every entry below `dir` that can be deleted, each whole (the standard library's
/// `remove_dir_all`, which never follows a symlink, even one swapped in meanwhile); the
/// first that cannot, at its deepest, with why.
pub(super) fn delete_what_can_go(dir: &Path) -> Option<(PathBuf, std::io::Error)> {
    let mut first = None;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let child = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let result = if is_dir {
            std::fs::remove_dir_all(&child)
        } else {
            std::fs::remove_file(&child)
        };
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let found = if is_dir {
                    delete_what_can_go(&child).unwrap_or((child, e))
                } else {
                    (child, e)
                };
                first.get_or_insert(found);
            }
        }
    }
    first
}

/// Give every folder below `path` (itself included) its owner's read, write and search
/// permission, top down, never through a symlink. Best effort: a folder this user does not
/// own stays as it is (its deletion then fails, and says where).
pub(super) fn writable_folders(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut pending = vec![path.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let mode = meta.permissions().mode();
        if mode & 0o700 != 0o700 {
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode | 0o700));
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            }
        }
    }
}

/// Debug builds only: `FLOWLOOM_FAILPOINT=<step>` deletes part of `dir` (one file of its
/// top level) and aborts, as a `kill -9` in the middle of a deletion would.
pub(super) fn failpoint_part_way(step: &str, dir: &Path) {
    #[cfg(debug_assertions)]
    if std::env::var("FLOWLOOM_FAILPOINT").is_ok_and(|v| v == step) {
        let first_file = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .find(|e| e.file_type().is_ok_and(|t| t.is_file()));
        if let Some(file) = first_file {
            let _ = std::fs::remove_file(file.path());
        }
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = (step, dir);
}
