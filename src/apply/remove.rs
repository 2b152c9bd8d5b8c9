//! An orphan's removal (`Action::Remove`, `Action::Retain`): checked again, teardown,
//! archive (forced only), the worktree into the trash, the branch, the ownership entry.

use std::path::Path;

use gix::refs::transaction::{Change as RefChange, LogChange, PreviousValue, RefEdit, RefLog};

use super::{Executor, Failure, failpoint, test_hook};
use crate::apply::reporter::Warning;
use crate::error::RepoError;
use crate::plan::{Archive, Change, Reason, Removal, WorktreeRemoval};
use crate::store::ownership::OwnedState;

impl Executor<'_> {
    /// Check again, archive (forced only), record `removing`, move the worktree into the
    /// trash, drop its registration, delete the trash, delete the branch, drop the entry. A
    /// kill between any two leaves an orphan that the next plan judges afresh, or a trash
    /// folder that was checked before it was moved.
    /// `retain`: the branch and the ownership entry stay (a retained branch, SPEC §7).
    pub(super) fn remove(&mut self, change: &Change, removal: &Removal, retain: bool) -> Result<(), Failure> {
        let mut stamps = None;
        if let WorktreeRemoval::Remove { admin_id, half_made } = &removal.worktree {
            test_hook("FLOWLOOM_TEST_BEFORE_RECHECK", &change.session);
            let mut checked = self.recheck(change, admin_id, *half_made, removal)?;
            // SPEC §11.3: only a removal that will go ahead runs the teardown; what it left
            // in the worktree is then checked as anything else (the stamps read anew).
            if let Some(teardown) = &removal.teardown {
                self.teardown(change, teardown)?;
                checked = self.recheck(change, admin_id, *half_made, removal)?;
            }
            stamps = Some(checked);
        }
        if let WorktreeRemoval::Prune { .. } = &removal.worktree
            && change.path.symlink_metadata().is_ok()
        {
            return Err(Failure::Blocked(vec![Reason::FolderInTheWay {
                path: change.path.clone(),
            }]));
        }
        if let Some(archive) = &removal.archive {
            self.write_archive(change, archive, &removal.discard)?;
            failpoint("remove:archive");
        }
        match (&removal.worktree, stamps) {
            (WorktreeRemoval::Remove { admin_id, half_made }, Some(stamps)) => {
                self.trash_worktree(change, removal, admin_id, *half_made, &stamps)?;
            }
            (
                WorktreeRemoval::Trashed {
                    admin_id,
                    trash,
                    half_made,
                },
                _,
            ) => self.finish_in_trash(change, removal, admin_id, trash, *half_made, None)?,
            (WorktreeRemoval::Prune { admin_id }, _) => {
                let own_lock = self.own_lock_on_missing(change, admin_id);
                self.mark(change, &removal.base, OwnedState::Removing)?;
                failpoint("remove:marked");
                self.unregister(admin_id, &change.path, own_lock)?;
            }
            _ => {}
        }
        failpoint("remove:worktree");
        if let Some(expected) = &removal.delete_branch {
            let archived = removal.archive.as_ref().is_some_and(|a| a.keep.contains(expected));
            if !archived {
                self.recheck_merged(change, expected, &removal.base)?;
            }
            if let Some(other) = self.checked_out_at(&change.branch) {
                return Err(Failure::Blocked(vec![Reason::BranchCheckedOutElsewhere {
                    branch: change.branch.clone(),
                    path: other,
                }]));
            }
            let _intent = crate::store::recover::Intent::begin(
                &self.common_dir,
                &crate::apply::refs::delete_locks(&self.common_dir, &change.branch),
            );
            crate::apply::refs::delete_branch(&self.common_dir, &change.branch, expected).map_err(|e| match e {
                crate::apply::refs::DeleteError::Repo(e) => e,
                other => RepoError::message(other.to_string()),
            })?;
            self.drop_branch_config(&change.branch)?;
            failpoint("remove:branch");
        }
        if retain {
            self.mark(change, &removal.base, OwnedState::Created)?;
        } else {
            self.record.remove_path(&change.path);
            self.save_record()?;
        }
        // Dropped after the last change, with the other removals' (`drop_exclude_lines`).
        self.exclude_drops.extend(removal.exclude_drop.iter().cloned());
        // SPEC §10: a session without a worktree holds no ports.
        if !retain || removal.worktree != WorktreeRemoval::None {
            crate::store::machine::release_ports(&self.repository_key(), &change.session)?;
        }
        Ok(())
    }

    /// SPEC §11.3: run the removal's teardown in the worktree. A failure blocks the removal
    /// (nothing of it is done yet); with `--force` it is reported and the removal goes on.
    pub(super) fn teardown(&self, change: &Change, teardown: &crate::plan::Teardown) -> Result<(), Failure> {
        let run = || {
            crate::apply::setup::teardown(
                &change.session,
                &teardown.commands,
                &change.path,
                &teardown.vars,
                teardown.go_on,
            )
        };
        let mut failed = Vec::new();
        self.reporter.around(&mut || failed = run());
        failpoint("remove:teardown");
        // A Ctrl-C during the teardown stops before anything is removed (even with
        // `--force`, and even when the command ignored it and succeeded).
        if crate::store::lock::interrupted() {
            return Err(Failure::Interrupted);
        }
        if failed.is_empty() {
            return Ok(());
        }
        if !teardown.go_on {
            return Err(Failure::Blocked(
                failed
                    .into_iter()
                    .map(|f| Reason::TeardownFailed {
                        command: f.command,
                        status: f.status,
                    })
                    .collect(),
            ));
        }
        for f in failed {
            self.reporter.warn(&Warning::TeardownFailed {
                session: change.session.clone(),
                command: f.command,
                status: f.status,
            });
        }
        Ok(())
    }

    /// Drop the registration `admin_id` of a worktree whose folder is gone.
    /// A registration a killed creation (or prune) left without its folder: its own
    /// `initializing` lock is no lock, as the plan judged it.
    fn own_lock_on_missing(&self, change: &Change, admin_id: &str) -> bool {
        let lock = crate::fsutil::read_small(&self.common_dir.join("worktrees").join(admin_id).join("locked"));
        let lock = lock.map(|l| String::from_utf8_lossy(&l).trim().to_owned());
        crate::plan::rules::own_checkout_lock(lock.as_deref())
            && self
                .record
                .by_path(&change.path)
                .is_some_and(|o| o.state != OwnedState::Created)
    }

    pub(super) fn unregister(&self, admin_id: &str, path: &Path, override_lock: bool) -> Result<(), RepoError> {
        use gix::worktree::remove::Force;
        let proxy = self
            .repo
            .worktree_proxy_by_id(gix::bstr::BStr::new(admin_id.as_bytes()))
            .map_err(|e| RepoError::git("find worktree", path, e))?;
        let Some(proxy) = proxy else { return Ok(()) };
        if path.symlink_metadata().is_ok() {
            return Err(RepoError::message(format!(
                "{} exists again; its registration was kept",
                path.display()
            )));
        }
        let force = if override_lock {
            Force::OverrideLock
        } else {
            Force::Never
        };
        proxy
            .remove(force, gix::progress::Discard)
            .map_err(|e| RepoError::git("remove the registration of", path, e))
    }

    /// Keep what a forced removal would lose under an archive ref, with a reflog so that
    /// `git reflog` shows when and why: the branch tip or detached commits, and with a
    /// snapshot, the worktree's files committed on top of its `HEAD`.
    pub(super) fn write_archive(&self, change: &Change, archive: &Archive, files: &[String]) -> Result<(), RepoError> {
        let oid = |hex: &str| {
            gix::ObjectId::from_hex(hex.as_bytes()).map_err(|e| RepoError::git("parse object id", Path::new(hex), e))
        };
        let parents: Vec<gix::ObjectId> = archive.keep.iter().map(|h| oid(h)).collect::<Result<_, _>>()?;
        let target = match (&archive.snapshot, parents.as_slice()) {
            (None, [only]) => *only,
            (snapshot, _) => {
                let head = match snapshot {
                    Some(h) => oid(h)?,
                    None => parents[0],
                };
                self.snapshot_commit(change, head, &parents, files)?
            }
        };
        let _intent = crate::store::recover::Intent::begin(
            &self.common_dir,
            &[self.common_dir.join(format!("{}.lock", archive.reference))],
        );
        let name: gix::refs::FullName = archive
            .reference
            .as_str()
            .try_into()
            .map_err(|e| RepoError::git("name archive", Path::new(&archive.reference), e))?;
        let expected = if archive.snapshot.is_some() {
            PreviousValue::MustNotExist
        } else {
            // Either new, or an earlier (killed) run already stored this commit.
            PreviousValue::ExistingMustMatch(gix::refs::Target::Object(target))
        };
        self.repo
            .edit_reference(RefEdit {
                change: RefChange::Update {
                    log: LogChange {
                        mode: RefLog::AndReference,
                        force_create_reflog: true,
                        message: format!("flowloom: archived {} before a forced removal", change.branch).into(),
                    },
                    expected,
                    new: gix::refs::Target::Object(target),
                },
                name,
                deref: false,
            })
            .map_err(|e| RepoError::git("write archive", Path::new(&archive.reference), e))?;
        // Objects written a moment ago were reachable from no ref until now: a `git gc
        // --prune=now` running beside apply may have deleted them. Nothing is removed
        // unless the archive is whole.
        if let Some(missing) = self.probe.missing_objects(self.repo, target) {
            return Err(RepoError::message(format!(
                "the archive {} lacks {missing} (was git gc --prune=now running?); nothing was removed — apply again",
                archive.reference
            )));
        }
        Ok(())
    }

    /// Commit the worktree's `files` (as found now: changed, new, or deleted) on top of
    /// `head`'s tree, with `parents`, as `git stash -u` keeps them. Nothing is written to
    /// the worktree or its index.
    pub(super) fn snapshot_commit(
        &self,
        change: &Change,
        head: gix::ObjectId,
        parents: &[gix::ObjectId],
        files: &[String],
    ) -> Result<gix::ObjectId, RepoError> {
        use gix::object::tree::EntryKind;
        let git = |action: &'static str| move |e: gix::Error| RepoError::git(action, &change.path, e);
        let tree = self
            .repo
            .find_commit(head)
            .map_err(|e| RepoError::git("read the commit of", &change.path, e))?
            .tree_id()
            .map_err(|e| RepoError::git("read the tree of", &change.path, e))?;
        let mut editor = self.repo.edit_tree(tree).map_err(git("edit a tree for"))?;
        for rel in files {
            let file = change.path.join(rel);
            // Through a folder that became a symlink, the file is not the worktree's: it is
            // gone from the worktree (the symlink itself is listed on its own).
            let through_link = Path::new(rel)
                .parent()
                .is_some_and(|parent| crate::fsutil::check_beneath(&change.path, parent).is_err());
            if through_link {
                editor.remove(rel.as_str()).map_err(git("edit a tree for"))?;
                continue;
            }
            match std::fs::symlink_metadata(&file) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    editor.remove(rel.as_str()).map_err(git("edit a tree for"))?;
                }
                Err(e) => return Err(RepoError::io("read", &file, e)),
                Ok(m) if m.file_type().is_symlink() => {
                    let target = std::fs::read_link(&file).map_err(|e| RepoError::io("read", &file, e))?;
                    let target = gix::path::into_bstr(target)
                        .map_err(|e| RepoError::message(format!("{}: {e}", file.display())))?
                        .into_owned();
                    let blob = self.repo.write_blob(&target).map_err(git("store a file of"))?;
                    editor
                        .upsert(rel.as_str(), EntryKind::Link, blob.detach())
                        .map_err(git("edit a tree for"))?;
                }
                Ok(m) if m.is_file() => {
                    let bytes = std::fs::read(&file).map_err(|e| RepoError::io("read", &file, e))?;
                    let blob = self.repo.write_blob(&bytes).map_err(git("store a file of"))?;
                    let kind = if is_executable(&m) {
                        EntryKind::BlobExecutable
                    } else {
                        EntryKind::Blob
                    };
                    editor
                        .upsert(rel.as_str(), kind, blob.detach())
                        .map_err(git("edit a tree for"))?;
                }
                // Folders are walked file by file; special files hold no content to keep.
                Ok(_) => {}
            }
        }
        let tree = editor.write().map_err(git("write a tree for"))?.detach();
        let message = format!(
            "flowloom: uncommitted work of {} before a forced removal\n\nworktree: {}\n",
            change.branch,
            change.path.display()
        );
        let commit = self
            .repo
            .new_commit(message, tree, parents.iter().copied())
            .map_err(git("commit a snapshot of"))?;
        Ok(commit.id)
    }
}

#[cfg(unix)]
pub(super) fn is_executable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
pub(super) fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}
