//! `git worktree add`, as git writes it: register the worktree, check it out, and give it
//! what gix leaves out (executable bits, `ident`, encodings, the index format, shared modes).

use std::path::Path;

use gix::refs::transaction::{LogChange, PreviousValue, RefEdit, RefLog};

use super::trash::delete_tree;
use super::{Executor, failpoint, worktree_config};
use crate::error::RepoError;
use crate::plan::Change;

impl Executor<'_> {
    /// Register and check out the worktree; the commit checked out.
    pub(super) fn add_worktree(&self, change: &Change) -> Result<String, RepoError> {
        let path = &change.path;
        self.leading_folders_as_git_makes_them(path)?;
        if let Some(parent) = path.parent() {
            // The root the plan checked is its real path: a symlink put in its place (or on
            // the way to it) since then would lead the checkout elsewhere, into `.git` say.
            if crate::fsutil::canonical(parent) != parent {
                return Err(RepoError::UnsafeRoot {
                    path: parent.to_path_buf(),
                    why: format!(
                        "it now leads to {} (a symlink appeared since the plan)",
                        crate::fsutil::canonical(parent).display()
                    ),
                });
            }
        }
        let full: gix::refs::FullName = crate::names::branch_ref(&change.branch)
            .try_into()
            .map_err(|e| RepoError::git("name branch", Path::new(&change.branch), e))?;
        let progress = self.reporter.checkout(&change.session);
        let wt_repo = if needs_gix_add(self.repo) {
            self.add_worktree_with_gix(path, full, progress)?
        } else {
            self.add_worktree_directly(path, full, progress)?
        };
        self.reporter.checkout_done();
        worktree_config::as_git_writes_it(wt_repo.git_dir())?;
        executables_as_git_writes_them(&wt_repo, path)?;
        ident_as_git_writes_it(&wt_repo, path)?;
        encodings_as_git_writes_them(&wt_repo, path)?;
        index_as_configured(&wt_repo)?;
        shared_modes_as_git_gives_them(&wt_repo, path);
        let head = wt_repo
            .head_id()
            .map(|id| id.to_string())
            .map_err(|e| RepoError::git("read the HEAD of", path, e))?;
        Ok(head)
    }

    /// The folders leading to a new worktree and `worktrees/` in the common dir, made as
    /// `git worktree add` makes them: with `core.sharedRepository`, each new one gets git's
    /// shared mode before anything is made inside it (so that what is made there inherits
    /// its set-group-id bit, as under git).
    pub(super) fn leading_folders_as_git_makes_them(&self, path: &Path) -> Result<(), RepoError> {
        use crate::fsutil::shared;
        let Some(parent) = path.parent() else { return Ok(()) };
        let made = shared::missing_folders(parent);
        std::fs::create_dir_all(parent).map_err(|e| RepoError::io("create", parent, e))?;
        made.iter().rev().for_each(|folder| shared::adjust(folder));
        let worktrees = self.common_dir.join("worktrees");
        if !shared::missing_folders(&worktrees).is_empty() {
            std::fs::create_dir_all(&worktrees).map_err(|e| RepoError::io("create", &worktrees, e))?;
            shared::adjust(&worktrees);
        }
        Ok(())
    }

    /// `git worktree add` for the common configuration, through gix's parts, each once.
    ///
    /// gix's `prepare_add_worktree` checks the branch is checked out nowhere (opening every
    /// other worktree, with `Head::Attached`) and the destination registered nowhere
    /// (reading and resolving every other registration): per session, a cost that grows
    /// with the number of sessions, quadratic over an apply that makes many. Both were
    /// checked by the planner, from the worktrees it read once (`plan::checked_out` and
    /// `State::worktrees`; a create is only planned where neither holds), under the lock
    /// that this apply still holds. The rest is what gix does, in its order: the
    /// administration folder (gix-worktree's `add::prepare`, locked `initializing`), `HEAD`
    /// attached to the branch with its reflog's first line, the checkout and index, then the
    /// lock dropped. Any failure before that drops the folder and the registration again.
    pub(super) fn add_worktree_directly(
        &self,
        path: &Path,
        full: gix::refs::FullName,
        mut progress: gix::progress::BoxedDynNestedProgress,
    ) -> Result<gix::Repository, RepoError> {
        use gix::progress::{NestedProgress, Progress};
        use std::sync::atomic::Ordering;
        let (commit, tree) = self.commit_and_tree(&full, path)?;
        if self.interrupt.load(Ordering::Relaxed) {
            return Err(RepoError::message("interrupted"));
        }
        let prepared = gix_worktree::add::prepare(
            path,
            gix_worktree::add::Context::new(&self.common_dir),
            gix_worktree::add::Options::default(),
        )
        .map_err(|e| RepoError::io("prepare the worktree", path, e))?;
        // As git, before anything is made in it (what is made inherits its set-group-id bit).
        crate::fsutil::shared::adjust(path);
        let head_file = prepared.git_dir().join("HEAD");
        std::fs::write(&head_file, format!("ref: {}\n", full.as_bstr()))
            .map_err(|e| RepoError::io("write", &head_file, e))?;
        let id = prepared
            .git_dir()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut wt_repo = self
            .repo
            .worktree_proxy_by_id(gix::bstr::BStr::new(id.as_bytes()))
            .map_err(|e| RepoError::git("find worktree", path, e))?
            .ok_or_else(|| RepoError::message(format!("{} was not registered", path.display())))?
            .into_repo()
            .map_err(|e| RepoError::git("open worktree", path, e))?;
        wt_repo.objects = self.repo.objects.clone(); // the same objects (and alternates)
        wt_repo.clear_namespace();
        crate::apply::checkout::config_as_git_reads_it(&mut wt_repo)?;
        // As gix (and clone): the symbolic HEAD's reflog starts at the commit, the branch
        // itself untouched.
        let head: gix::refs::FullName = "HEAD".try_into().map_err(|e| RepoError::git("name HEAD", path, e))?;
        wt_repo
            .edit_reference(RefEdit::update_with_log(
                head,
                commit,
                PreviousValue::Any,
                LogChange {
                    mode: RefLog::Only,
                    ..Default::default()
                },
            ))
            .map_err(|e| RepoError::git("write the HEAD reflog of", path, e))?;
        // Registered and locked `initializing`, nothing checked out: where a kill during
        // checkout leaves a worktree.
        failpoint("create:registered");
        let workdir = prepared.work_dir().to_owned();
        let failed = |e: gix::Error| self.checkout_failed(tree, RepoError::git("check out worktree", path, e));
        let mut index = wt_repo.index_from_tree(&tree).map_err(failed)?;
        let mut options = wt_repo
            .checkout_options(gix::worktree::stack::state::attributes::Source::IdMapping)
            .map_err(failed)?;
        options.destination_is_initially_empty = true;
        let mut files = progress.add_child("checkout");
        let mut bytes = progress.add_child("writing");
        files.init(Some(index.entries().len()), None);
        bytes.init(None, None);
        let objects = wt_repo
            .objects
            .clone()
            .into_arc()
            .map_err(|e| RepoError::git("open objects of", path, e))?;
        gix::worktree::state::checkout(&mut index, &workdir, objects, &files, &bytes, self.interrupt, options)
            .map_err(failed)?;
        if self.interrupt.load(Ordering::Relaxed) {
            return Err(RepoError::message("interrupted"));
        }
        index
            .write(Default::default())
            .map_err(|e| RepoError::git("write the index of", path, e))?;
        prepared
            .persist()
            .map_err(|e| RepoError::io("finish adding the worktree", path, e))?;
        Ok(wt_repo)
    }

    /// The commit the new branch `full` is at, and its tree.
    pub(super) fn commit_and_tree(
        &self,
        full: &gix::refs::FullName,
        path: &Path,
    ) -> Result<(gix::ObjectId, gix::ObjectId), RepoError> {
        let commit = self
            .repo
            .find_reference(full.as_ref())
            .and_then(|mut r| r.peel_to_commit())
            .map_err(|e| RepoError::git("read the branch for", path, e))?;
        let tree = commit
            .tree_id()
            .map_err(|e| RepoError::git("read the tree for", path, e))?
            .detach();
        Ok((commit.id, tree))
    }

    /// A checkout of `tree` that failed: explained when a filter the repository configures
    /// caused it ([`crate::apply::checkout::filter_failure`]); an interrupted one stays so.
    pub(super) fn checkout_failed(&self, tree: gix::ObjectId, e: RepoError) -> RepoError {
        if self.interrupt.load(std::sync::atomic::Ordering::Relaxed) {
            return RepoError::message("interrupted");
        }
        crate::apply::checkout::filter_failure(self.repo, tree, &e).unwrap_or(e)
    }

    /// `git worktree add` by gix itself, for configurations whose extra files it writes
    /// (`worktree.useRelativePaths`, `extensions.worktreeConfig`, `core.sparseCheckout`) or
    /// whose config depends on the branch (`includeIf "onbranch:…"`).
    pub(super) fn add_worktree_with_gix(
        &self,
        path: &Path,
        full: gix::refs::FullName,
        progress: gix::progress::BoxedDynNestedProgress,
    ) -> Result<gix::Repository, RepoError> {
        let (_, tree) = self.commit_and_tree(&full, path)?;
        let prepared = self
            .repo
            .prepare_add_worktree(path, gix::worktree::add::Head::Attached(full), self.interrupt)
            .map_err(|e| RepoError::git("add worktree", path, e))?;
        crate::fsutil::shared::adjust(path); // as git, before the checkout
        failpoint("create:registered");
        if crate::apply::checkout::has_gitdir_condition(self.repo) {
            return self.check_out_registered(prepared, path, tree, progress);
        }
        let (wt_repo, _) = prepared
            .checkout(progress, self.interrupt)
            .map_err(|e| self.checkout_failed(tree, RepoError::git("check out worktree", path, e)))?;
        Ok(wt_repo)
    }

    /// The checkout of a worktree gix registered, with its config read as git reads it
    /// there ([`crate::apply::checkout::config_as_git_reads_it`]): gix's own checkout opens
    /// the worktree with gix's reading of `includeIf "gitdir:…"`. The registration is
    /// completed first, and dropped again (with anything checked out) when the checkout fails.
    pub(super) fn check_out_registered(
        &self,
        prepared: gix::worktree::add::PrepareCheckout,
        path: &Path,
        tree: gix::ObjectId,
        progress: gix::progress::BoxedDynNestedProgress,
    ) -> Result<gix::Repository, RepoError> {
        let mut wt_repo = prepared
            .persist()
            .map_err(|e| RepoError::git("add worktree", path, e))?;
        let checked_out = crate::apply::checkout::config_as_git_reads_it(&mut wt_repo).and_then(|()| {
            let worktree = wt_repo
                .worktree()
                .ok_or_else(|| RepoError::message(format!("{} has no worktree", path.display())))?;
            worktree
                .checkout(progress, self.interrupt)
                .map_err(|e| self.checkout_failed(tree, RepoError::git("check out worktree", path, e)))
        });
        if let Err(e) = checked_out {
            self.drop_registration(path, true)?;
            return Err(e);
        }
        Ok(wt_repo)
    }

    /// Remove the registration of a worktree whose folder is gone (`reset`: or whose
    /// checkout a killed apply left half-made, checked again just before, which goes first).
    pub(super) fn drop_registration(&self, path: &Path, reset: bool) -> Result<(), RepoError> {
        let force = if reset {
            delete_tree(path)?;
            gix::worktree::remove::Force::OverrideLock
        } else {
            gix::worktree::remove::Force::Never
        };
        if let Some(proxy) = self.proxy(path)? {
            proxy
                .remove(force, gix::progress::Discard)
                .map_err(|e| RepoError::git("remove the registration of", path, e))?;
        }
        Ok(())
    }

    /// The registration of the worktree at `path` (canonical), if any.
    pub(super) fn proxy(&self, path: &Path) -> Result<Option<gix::worktree::Proxy<'_>>, RepoError> {
        let proxies = self
            .repo
            .worktrees()
            .map_err(|e| RepoError::git("list worktrees", path, e))?;
        Ok(proxies
            .into_iter()
            .find(|p| p.base().is_ok_and(|base| crate::fsutil::canonical(&base) == path)))
    }
}

/// Whether adding a worktree needs gix's own `prepare_add_worktree`: the config asks for
/// files or links the direct path does not write (relative links, `config.worktree`, sparse
/// patterns), or may depend on the new worktree's branch (`includeIf "onbranch:…"`).
pub(super) fn needs_gix_add(repo: &gix::Repository) -> bool {
    let config = repo.config_snapshot();
    let set = |key: &str| config.boolean(key).unwrap_or(false);
    // `worktree.useRelativePaths` is not among them: gix would write relative links and the
    // `relativeWorktrees` extension, which git before 2.48 refuses (every git command then
    // fails in the repository); absolute links, as git before 2.48 writes them whatever
    // the setting, are read by every git.
    if set("extensions.worktreeConfig") || set("core.sparseCheckout") {
        return true;
    }
    config
        .plumbing()
        .sections_by_name("includeIf")
        .is_some_and(|mut sections| {
            sections.any(|s| {
                s.header()
                    .subsection_name()
                    .is_some_and(|n| n.len() >= 9 && n[..9].eq_ignore_ascii_case(b"onbranch:"))
            })
        })
}

/// With `core.fileMode=false`, gix writes executable entries without `x`; git still checks
/// them out executable (the setting only says not to trust the file system's bit). Add `x`
/// where `r` is set, which is what git's `0777 & ~umask` gives.
pub(super) fn executables_as_git_writes_them(wt_repo: &gix::Repository, worktree: &Path) -> Result<(), RepoError> {
    use gix::bstr::ByteSlice;
    use std::os::unix::fs::PermissionsExt;
    if wt_repo.config_snapshot().boolean("core.fileMode") != Some(false) {
        return Ok(());
    }
    let index = wt_repo
        .open_index()
        .map_err(|e| RepoError::git("read the index of", worktree, e))?;
    for entry in index.entries() {
        if entry.mode != gix::index::entry::Mode::FILE_EXECUTABLE {
            continue;
        }
        let Ok(rel) = gix::path::from_bstr(entry.path(&index).as_bstr()) else {
            continue;
        };
        let file = worktree.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&file) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let mode = meta.permissions().mode();
        let wanted = mode | ((mode & 0o444) >> 2);
        if wanted != mode {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(wanted))
                .map_err(|e| RepoError::io("make executable", &file, e))?;
        }
    }
    Ok(())
}

/// `ident` as git writes it ([`crate::apply::checkout::ident_as_git_writes_it`]), in a new
/// worktree.
pub(super) fn ident_as_git_writes_it(wt_repo: &gix::Repository, worktree: &Path) -> Result<(), RepoError> {
    let mut index = wt_repo
        .open_index()
        .map_err(|e| RepoError::git("read the index of", worktree, e))?;
    if crate::apply::checkout::ident_as_git_writes_it(wt_repo, &mut index, worktree, None)? {
        index
            .write(Default::default())
            .map_err(|e| RepoError::git("write the index of", worktree, e))?;
    }
    Ok(())
}

/// UTF-16 and UTF-32 `working-tree-encoding` as git writes them
/// ([`crate::apply::checkout::encodings_as_git_writes_them`]), in a new worktree.
pub(super) fn encodings_as_git_writes_them(wt_repo: &gix::Repository, worktree: &Path) -> Result<(), RepoError> {
    let mut index = wt_repo
        .open_index()
        .map_err(|e| RepoError::git("read the index of", worktree, e))?;
    if crate::apply::checkout::encodings_as_git_writes_them(wt_repo, &mut index, worktree, None)? {
        index
            .write(Default::default())
            .map_err(|e| RepoError::git("write the index of", worktree, e))?;
    }
    Ok(())
}

/// gix writes index format 2 (or 3) with a checksum; a repository that asks for format 4
/// or a null trailer (`index.skipHash`, `feature.manyFiles`) gets it, as git would write it.
pub(super) fn index_as_configured(wt_repo: &gix::Repository) -> Result<(), RepoError> {
    crate::fsutil::index_v4::write_as_configured(wt_repo)
        .map_err(|e| RepoError::io("write the index", &wt_repo.index_path(), e))
}

/// With `core.sharedRepository`, what `git worktree add` adjusts gets git's shared modes:
/// the worktree folder, and in its administration folder `HEAD`, the index and the reflog
/// (`gitdir` and `commondir` git writes without adjusting them).
pub(super) fn shared_modes_as_git_gives_them(wt_repo: &gix::Repository, worktree: &Path) {
    use crate::fsutil::shared::adjust;
    adjust(worktree);
    let admin = wt_repo.git_dir();
    for rel in ["HEAD", "index", "logs", "logs/HEAD"] {
        adjust(&admin.join(rel));
    }
}
