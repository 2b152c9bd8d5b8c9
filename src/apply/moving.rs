//! SPEC §11.3: a session's worktree moved to its new path as `git worktree move` moves it,
//! recorded first so that a kill anywhere is finished by the next apply.

use std::path::Path;

use super::trash::{delete_tree, move_into_trash, trash_target};
use super::{Executor, Failure, failpoint, relocate, test_hook};
use crate::error::RepoError;
use crate::plan::{Change, Reason};
use crate::store::metadata::Wanted;

impl Executor<'_> {
    /// SPEC §11.3: move the session's worktree from `from` to its path, as `git worktree
    /// move` does. Checked again first (its lock; the target still free; the registration
    /// still at `from`), the move is recorded in the ownership record before the folder
    /// moves, so that a kill anywhere is finished by the next apply (`resume_move`).
    pub(super) fn move_worktree(
        &mut self,
        change: &Change,
        from: &Path,
        admin_id: &str,
        across: bool,
        wanted: &Wanted,
    ) -> Result<(), Failure> {
        let to = change.path.as_path();
        let registered = relocate::registered_path(&self.common_dir, admin_id);
        let done = registered.as_deref() == Some(to) && to.is_dir();
        // A killed apply had moved the folder already: only the rest is left.
        let moved = from.symlink_metadata().is_err() && to.is_dir() && self.moving_to(to);
        if !done && !moved {
            test_hook("FLOWLOOM_TEST_BEFORE_RECHECK", &change.session);
            self.recheck_move(change, from, admin_id, registered.as_deref())?;
            self.record.moving.retain(|m| m.to != to);
            self.record.moving.push(crate::store::ownership::Moving {
                admin_id: admin_id.to_owned(),
                from: from.to_owned(),
                to: to.to_owned(),
            });
            self.save_record()?;
            failpoint("move:recorded");
            if let Err(e) = relocate::relocate(from, to, across) {
                // Nothing moved (a rename is all or nothing; a copy that failed is deleted):
                // no move is left for the next apply to "finish".
                if from.is_dir() && to.symlink_metadata().is_err() {
                    self.record.moving.retain(|m| m.to != to);
                    self.save_record()?;
                }
                return Err(e.into());
            }
            failpoint("move:renamed");
        }
        self.finish_move(admin_id, from, to)?;
        match crate::store::metadata::read(to, &change.session) {
            crate::store::metadata::MetadataFile::Valid(found) if !wanted.matches(&found) => {
                self.write_metadata(change, wanted, Some(&wanted.update(&found)))
            }
            _ => Ok(()),
        }
    }

    pub(super) fn moving_to(&self, to: &Path) -> bool {
        self.record.moving.iter().any(|m| m.to == to)
    }

    /// Right before a move, what the plan saw still holds: not locked, no process working
    /// in it (one started since the plan would lose its place, and across file systems
    /// the files it writes), the registration at `from`, nothing at the target but an
    /// empty folder.
    pub(super) fn recheck_move(
        &self,
        change: &Change,
        from: &Path,
        admin_id: &str,
        registered: Option<&Path>,
    ) -> Result<(), Failure> {
        if let Some(lock) = relocate::lock_of(&self.common_dir, admin_id) {
            return Err(Failure::Blocked(vec![Reason::Locked { lock }]));
        }
        let users: Vec<Reason> = self
            .probe
            .processes_inside(from)
            .into_iter()
            .map(|p| Reason::Process {
                pid: p.pid,
                name: p.name,
                uses: p.uses,
            })
            .collect();
        if !users.is_empty() {
            return Err(Failure::Blocked(users));
        }
        let to = change.path.as_path();
        let empty = crate::fsutil::is_empty_folder(to);
        if to.symlink_metadata().is_ok() && !empty {
            return Err(Failure::Blocked(vec![Reason::FolderInTheWay { path: to.to_owned() }]));
        }
        if registered.map(crate::fsutil::canonical) != Some(crate::fsutil::canonical(from)) || !from.is_dir() {
            return Err(Failure::Error(RepoError::message(format!(
                "the worktree registered as {admin_id} is no longer at {} as the plan saw it; nothing was moved: run `flowloom plan` again",
                from.display()
            ))));
        }
        Ok(())
    }

    /// The folder is at `to`: point the registration and the ownership entry there, forget
    /// the recorded move, and (after a copy across file systems) delete the original once it
    /// still equals the copy.
    pub(super) fn finish_move(&mut self, admin_id: &str, from: &Path, to: &Path) -> Result<(), RepoError> {
        relocate::point_registration(&self.common_dir, admin_id, to)?;
        failpoint("move:registered");
        if let Some(mut entry) = self.record.by_path(from).cloned() {
            self.record.remove_path(from);
            entry.path = to.to_owned();
            self.record.upsert(entry);
        }
        self.record.moving.retain(|m| m.to != to);
        self.save_record()?;
        if from.symlink_metadata().is_ok() {
            if let Some(at) = relocate::first_difference(from, to) {
                return Err(RepoError::message(format!(
                    "{} was copied to {} but differs from the copy at {at}; it was left as it is",
                    from.display(),
                    to.display()
                )));
            }
            self.delete_moved(from)?;
        }
        Ok(())
    }

    /// `git worktree repair` for one registration whose worktree or repository moved: the
    /// ownership entry first (a kill after it leaves links the next plan repairs again),
    /// then both links, as a move writes them.
    pub(super) fn repair_links(&mut self, admin_id: &str, from: &Path, to: &Path) -> Result<(), RepoError> {
        if let Some(mut entry) = self.record.by_path(from).cloned() {
            self.record.remove_path(from);
            entry.path = to.to_owned();
            self.record.upsert(entry);
            self.save_record()?;
        }
        failpoint("repair:recorded");
        relocate::point_registration(&self.common_dir, admin_id, to)
    }

    /// The original of a worktree copied to another file system: into the trash beside it,
    /// recorded as a deletion that started (only ever finished), then deleted.
    pub(super) fn delete_moved(&mut self, from: &Path) -> Result<(), RepoError> {
        let trash = trash_target(from)?;
        move_into_trash(from, &trash)?;
        self.record.deleting.push(trash.clone());
        self.save_record()?;
        delete_tree(&trash)?;
        self.record.deleting.retain(|p| *p != trash);
        self.save_record()?;
        if let Some(dir) = trash.parent() {
            let _ = std::fs::remove_dir(dir);
        }
        Ok(())
    }

    /// A move a kill interrupted: finished when the folder is at `to`, forgotten while it is
    /// still at `from` (the session's plan moves it again).
    pub(super) fn resume_move(&mut self, admin_id: &str, from: &Path, to: &Path) -> Result<(), RepoError> {
        let stage = relocate::staging(to);
        if stage.symlink_metadata().is_ok() {
            delete_tree(&stage)?;
        }
        if to.is_dir() && (from.symlink_metadata().is_err() || relocate::first_difference(from, to).is_none()) {
            return self.finish_move(admin_id, from, to);
        }
        self.record.moving.retain(|m| m.to != to);
        self.save_record()
    }
}
