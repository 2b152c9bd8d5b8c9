//! The session's branch: made from its start (with its upstream), undone when its creation
//! fails, its config section dropped with it.

use std::path::{Path, PathBuf};

use gix::refs::transaction::{Change as RefChange, LogChange, PreviousValue, RefEdit, RefLog};

use super::{Executor, failpoint};
use crate::error::RepoError;
use crate::plan::Upstream;
use crate::plan::{Start, StartFrom};

impl Executor<'_> {
    /// Create the local branch unless it exists (SPEC §6); from a remote, also track it.
    pub(super) fn ensure_branch(&self, branch: &str, start: &Start) -> Result<(), RepoError> {
        let full = crate::names::branch_ref(branch);
        if start.from == StartFrom::Local {
            return Ok(());
        }
        if let Some(mut existing) = self.repo.try_find_reference(full.as_str()).ok().flatten() {
            // A killed apply got this far already and the branch is where it made it; or
            // someone made it since the plan, elsewhere: not ours to take over.
            let at = existing.peel_to_id().ok().map(|id| id.to_string());
            if at.as_deref() != Some(start.commit.as_str()) {
                return Err(RepoError::message(format!(
                    "branch `{branch}` was made since the plan, at {}; nothing was made: run `flowloom plan` again",
                    at.as_deref().unwrap_or("an unreadable commit")
                )));
            }
            // What may be missing is its upstream.
            if let Some(upstream) = &start.upstream {
                self.set_upstream(branch, upstream)?;
            }
            return Ok(());
        }
        let id = gix::ObjectId::from_hex(start.commit.as_bytes())
            .map_err(|e| RepoError::git("parse object id", Path::new(&start.commit), e))?;
        let _intent = crate::store::recover::Intent::begin(
            &self.common_dir,
            &crate::apply::refs::delete_locks(&self.common_dir, branch),
        );
        let message = format!("branch: Created from {}", start.reference);
        // With `core.sharedRepository`, the ref, its reflog and the folders made for them
        // get git's shared modes.
        let made: Vec<PathBuf> = [&full, &format!("logs/{full}")]
            .iter()
            .map(|rel| self.common_dir.join(rel))
            .flat_map(|file| crate::fsutil::shared::missing_folders(&file))
            .collect();
        self.repo
            .edit_reference(RefEdit {
                change: RefChange::Update {
                    log: LogChange {
                        mode: RefLog::AndReference,
                        force_create_reflog: false,
                        message: message.into(),
                    },
                    expected: PreviousValue::MustNotExist,
                    new: gix::refs::Target::Object(id),
                },
                name: full
                    .as_str()
                    .try_into()
                    .map_err(|e| RepoError::git("name branch", Path::new(&full), e))?,
                deref: false,
            })
            .map_err(|e| RepoError::git("create branch", Path::new(&full), e))?;
        made.iter().rev().for_each(|p| crate::fsutil::shared::adjust(p));
        if let Some(upstream) = &start.upstream {
            failpoint("create:branch-ref");
            self.set_upstream(branch, upstream)?;
        }
        Ok(())
    }

    /// `branch.<name>.remote`, every `.merge` and `.rebase`, in git's order, as `git branch
    /// --track` writes them (branch.c, `install_branch_config_multiple_remotes`). gix locks
    /// the config file before it reads it, so a concurrent edit is never lost.
    pub(super) fn set_upstream(&self, branch: &str, upstream: &Upstream) -> Result<(), RepoError> {
        const WHAT: &str = "set the upstream in";
        self.edit_config(|config, path| {
            config
                .set_raw_value_by("branch", Some(branch.into()), "remote", upstream.remote.as_str())
                .and_then(|_| config.set_raw_value_by("branch", Some(branch.into()), "merge", upstream.merge.as_str()))
                .map_err(|e| RepoError::git(WHAT, path, e))?;
            if upstream.also_merge.is_empty() && !upstream.rebase {
                return Ok(true);
            }
            let mut section = config
                .section_mut_or_create_new("branch", Some(branch.into()))
                .map_err(|e| RepoError::git(WHAT, path, e))?;
            // A killed apply may have written some already: only what is missing.
            let present = section.values("merge");
            for merge in upstream
                .also_merge
                .iter()
                .filter(|m| !present.iter().any(|p| p == m.as_str()))
            {
                section
                    .push("merge", Some(merge.as_str().into()))
                    .map_err(|e| RepoError::git(WHAT, path, e))?;
            }
            if upstream.rebase && section.value("rebase").is_none() {
                section
                    .push("rebase", Some("true".into()))
                    .map_err(|e| RepoError::git(WHAT, path, e))?;
            }
            Ok(true)
        })
    }

    /// Edit the repository's own config file under its lock (gix locks it before it reads
    /// it, so a concurrent edit is never lost); `edit` says whether to write.
    pub(super) fn edit_config(
        &self,
        edit: impl FnOnce(&mut gix::config::FileTransaction, &Path) -> Result<bool, RepoError>,
    ) -> Result<(), RepoError> {
        let config_path = self.common_dir.join("config");
        // git keeps a config file's mode when it rewrites it; gix writes a new file.
        let mode = std::fs::metadata(&config_path).map(|m| m.permissions()).ok();
        let _intent = crate::store::recover::Intent::begin(&self.common_dir, &[self.common_dir.join("config.lock")]);
        let mut config = self
            .repo
            .config_file_mut(&config_path)
            .map_err(|e| RepoError::git("open", &config_path, e))?;
        if edit(&mut config, &config_path)? {
            config.commit().map_err(|e| RepoError::git("write", &config_path, e))?;
            if let Some(mode) = mode {
                let _ = std::fs::set_permissions(&config_path, mode);
            }
        }
        Ok(())
    }

    /// Delete the branch a failed creation made (still at `commit`), with its config.
    pub(super) fn undo_branch(&self, branch: &str, commit: &str) -> Result<(), RepoError> {
        let _intent = crate::store::recover::Intent::begin(
            &self.common_dir,
            &crate::apply::refs::delete_locks(&self.common_dir, branch),
        );
        match crate::apply::refs::delete_branch(&self.common_dir, branch, commit) {
            Ok(()) => self.drop_branch_config(branch),
            Err(crate::apply::refs::DeleteError::Repo(e)) => Err(e),
            // Moved since, by someone else: theirs now, kept.
            Err(_) => Ok(()),
        }
    }

    /// `git branch -d` drops the branch's config section with it. Only lock the config
    /// when there is one: most session branches have none.
    pub(super) fn drop_branch_config(&self, branch: &str) -> Result<(), RepoError> {
        let has_section = self
            .repo
            .config_snapshot()
            .plumbing()
            .section("branch", Some(branch.into()))
            .is_ok();
        if !has_section {
            return Ok(());
        }
        self.edit_config(|config, _| Ok(config.remove_section("branch", Some(branch.into())).is_some()))
    }
}
