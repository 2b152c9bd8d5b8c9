//! `git switch` in a clean worktree: the session's branch checked out where another was.

use std::path::Path;

use gix::refs::transaction::{Change as RefChange, LogChange, PreviousValue, RefEdit, RefLog};

use super::add_worktree::index_as_configured;
use super::{Executor, failpoint};
use crate::error::RepoError;
use crate::plan::Change;

impl Executor<'_> {
    /// Check out the session's branch in a clean worktree that is on `from`, as
    /// `git switch` does for a clean tree: files tracked only by `from` are deleted, the
    /// branch's tree is written over the rest, then the index and `HEAD` follow. Untracked
    /// (ignored) files and the session folder stay. A kill in between leaves `HEAD` on
    /// `from` with changes, which the next plan reports as blocked instead of guessing.
    pub(super) fn switch_branch(&self, change: &Change, from: &str) -> Result<(), RepoError> {
        let path = &change.path;
        let git = |action: &'static str| move |e: gix::Error| RepoError::git(action, path, e);
        // Through its registration, so that it inherits this repository's open options.
        let mut wt_repo = self
            .proxy(path)?
            .ok_or_else(|| RepoError::message(format!("{} is not a registered worktree", path.display())))?
            .into_repo()
            .map_err(|e| RepoError::git("open worktree", path, e))?;
        wt_repo.objects = self.repo.objects.clone(); // the same objects (and alternates)
        let workdir = wt_repo
            .workdir()
            .map(Path::to_owned)
            .ok_or_else(|| RepoError::message("no worktree"))?;
        let full = format!("refs/heads/{}", change.branch);
        let tree = wt_repo
            .find_reference(full.as_str())
            .and_then(|mut r| r.peel_to_commit())
            .and_then(|c| c.tree_id().map(|t| t.detach()))
            .map_err(git("read the branch tree for"))?;
        let mut index = wt_repo.index_from_tree(&tree).map_err(git("build the index for"))?;
        let old = wt_repo.open_index().map_err(git("read the index of"))?;
        // Say, in the worktree's administration folder, that the files about to change are
        // a switch to this branch: a kill in the middle then leaves changes the next plan
        // can recognise as this switch's own and finish (`state::switch_leftovers_are_ours`).
        let marker = wt_repo.git_dir().join(crate::names::SWITCH_MARKER);
        crate::fsutil::write_atomic(&marker, format!("{}\n", change.branch).as_bytes())?;
        remove_files_not_in(&index, &old, &workdir, path)?;
        let (options, objects) = crate::apply::checkout::over_what_is_there(&wt_repo, path)?;
        let files = gix::progress::Discard;
        let bytes = gix::progress::Discard;
        failpoint("switch:deleted");
        gix::worktree::state::checkout(&mut index, &workdir, objects, &files, &bytes, self.interrupt, options)
            .map_err(|e| RepoError::git("check out", path, e))?;
        failpoint("switch:checked-out");
        index
            .write(Default::default())
            .map_err(|e| RepoError::git("write the index of", path, e))?;
        index_as_configured(&wt_repo)?;
        self.point_head(
            &wt_repo,
            path,
            &full,
            &format!("checkout: moving from {from} to {}", change.branch),
        )?;
        // As `git switch`: what it writes through lock files gets git's shared modes.
        for rel in ["HEAD", "index", "logs/HEAD"] {
            crate::fsutil::shared::adjust(&wt_repo.git_dir().join(rel));
        }
        let _ = std::fs::remove_file(&marker);
        Ok(())
    }

    /// Points the worktree's HEAD at branch `full`, then logs the move in HEAD's own reflog
    /// (as git does) without touching the branch itself.
    pub(super) fn point_head(
        &self,
        wt_repo: &gix::Repository,
        path: &Path,
        full: &str,
        message: &str,
    ) -> Result<(), RepoError> {
        let git = |action: &'static str| move |e: gix::Error| RepoError::git(action, path, e);
        let head: gix::refs::FullName = full.try_into().map_err(|e| RepoError::git("name branch", path, e))?;
        let head_ref: gix::refs::FullName = "HEAD".try_into().map_err(|e| RepoError::git("name HEAD", path, e))?;
        let commit = wt_repo
            .find_reference(full)
            .and_then(|mut r| r.peel_to_id().map(|id| id.detach()))
            .map_err(git("read the branch of"))?;
        let message: gix::bstr::BString = message.into();
        let _intent = crate::store::recover::Intent::begin(
            &self.common_dir,
            &[
                wt_repo.git_dir().join("HEAD.lock"),
                wt_repo.git_dir().join("logs/HEAD.lock"),
            ],
        );
        for edit in [
            RefEdit {
                change: RefChange::Update {
                    log: LogChange {
                        mode: RefLog::AndReference,
                        force_create_reflog: false,
                        message: message.clone(),
                    },
                    expected: PreviousValue::Any,
                    new: gix::refs::Target::Symbolic(head),
                },
                name: head_ref.clone(),
                deref: false,
            },
            RefEdit {
                change: RefChange::Update {
                    log: LogChange {
                        mode: RefLog::Only,
                        force_create_reflog: true,
                        message,
                    },
                    expected: PreviousValue::Any,
                    new: gix::refs::Target::Object(commit),
                },
                name: head_ref,
                deref: false,
            },
        ] {
            wt_repo.edit_reference(edit).map_err(git("point HEAD of"))?;
        }
        Ok(())
    }
}

/// Deletes from the worktree the files the old index tracks that the new one does not (as
/// a switch of branches does), with the folders that leaves empty.
pub(super) fn remove_files_not_in(
    index: &gix::index::State,
    old: &gix::index::State,
    workdir: &Path,
    path: &Path,
) -> Result<(), RepoError> {
    use gix::bstr::ByteSlice;
    let keep: std::collections::BTreeSet<&gix::bstr::BStr> = index.entries().iter().map(|e| e.path(index)).collect();
    for entry in old.entries() {
        let rel = entry.path(old);
        if keep.contains(rel) {
            continue;
        }
        let rel = gix::path::from_bstr(rel.as_bstr()).map_err(|e| RepoError::git("name a file in", path, e))?;
        crate::apply::checkout::delete_tracked(workdir, &workdir.join(rel))?;
    }
    Ok(())
}
