//! What the command layer hands `apply`: the reader, for its just-in-time re-checks
//! ([`crate::apply::probe::Probe`]), and the renderer, for its progress and warnings
//! ([`crate::apply::reporter::Reporter`]), so that apply imports nothing of `src/read` or
//! `src/render`.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::apply::probe::Probe;
use crate::apply::reporter::{Reporter, Warning};
use crate::error::RepoError;
use crate::plan::rules::{Integration, Process, WorktreeFacts};
use crate::read::inspect;
use crate::render::output::escape;
use crate::render::progress::Bar;

/// apply's re-checks, answered by `src/read` as the planner's questions are.
pub(crate) struct Reader;

impl Probe for Reader {
    fn worktree(
        &self,
        repo: &gix::Repository,
        admin_id: &str,
        path: &Path,
        session: &str,
        hidden: &[PathBuf],
    ) -> Result<WorktreeFacts, RepoError> {
        let admin = crate::fsutil::canonical(repo.common_dir())
            .join("worktrees")
            .join(admin_id);
        let detached = match inspect::detached_head(&admin) {
            Some(head) => {
                let n = inspect::unreachable_from_refs(repo, &head)?;
                Some((head, Some(n)))
            }
            None => None,
        };
        Ok(WorktreeFacts {
            submodule: inspect::populated_submodule(repo, admin_id, path)?,
            processes: self.processes_inside(path),
            detached,
            foreign_git: inspect::backlink_problem(path, &admin),
            dirt: Some(inspect::dirt(repo, admin_id, path, Some(session), hidden, false)?),
            nested: inspect::unpushed_nested_repositories(path),
            ..WorktreeFacts::default()
        })
    }

    fn processes_inside(&self, path: &Path) -> Vec<Process> {
        inspect::processes_inside(&[path]).into_values().flatten().collect()
    }

    fn stray_files(&self, repo: &gix::Repository, worktree: &Path, branch: &str) -> Vec<String> {
        inspect::stray_files(repo, worktree, Some(branch))
    }

    fn unmerged(
        &self,
        repo: &gix::Repository,
        branch: &str,
        tip: gix::ObjectId,
        targets: Vec<gix::ObjectId>,
    ) -> Result<usize, RepoError> {
        inspect::unmerged(repo, branch, tip, targets)
    }

    fn integration(
        &self,
        repo: &gix::Repository,
        tip: gix::ObjectId,
        targets: &[gix::ObjectId],
    ) -> Option<Integration> {
        inspect::integration(repo, tip, targets)
    }

    fn rebasing(&self, admin_dir: &Path) -> Option<String> {
        inspect::rebasing(admin_dir)
    }

    fn bisecting(&self, admin_dir: &Path) -> Option<String> {
        inspect::bisecting(admin_dir)
    }

    fn missing_objects(&self, repo: &gix::Repository, commit: gix::ObjectId) -> Option<String> {
        inspect::missing_objects(repo, commit)
    }

    fn is_trash_of(&self, path: &Path, worktree: &Path) -> bool {
        inspect::is_trash_of(path, worktree)
    }
}

/// apply's progress on standard error: a bar over the checkouts on a terminal (`progress`),
/// warnings always.
pub(crate) struct Terminal {
    progress: bool,
    bar: RefCell<Option<Bar>>,
}

impl Terminal {
    pub fn new(progress: bool) -> Terminal {
        Terminal {
            progress,
            bar: RefCell::new(None),
        }
    }
}

impl Reporter for Terminal {
    fn start(&self, checkouts: usize) {
        *self.bar.borrow_mut() = Some(Bar::new(self.progress && checkouts > 0, checkouts));
    }

    fn checkout(&self, session: &str) -> gix::progress::BoxedDynNestedProgress {
        let files = match &*self.bar.borrow() {
            Some(bar) => bar.files(session),
            None => Bar::new(false, 0).files(session),
        };
        gix::progress::BoxedDynNestedProgress::new(files)
    }

    fn checkout_done(&self) {
        if let Some(bar) = &*self.bar.borrow() {
            bar.session_done();
        }
    }

    fn around(&self, f: &mut dyn FnMut()) {
        match &*self.bar.borrow() {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    fn warn(&self, warning: &Warning) {
        let text = match warning {
            Warning::CopySkipped {
                session,
                path,
                why,
                others: 0,
            } => format!("copy into `{session}`: left {} alone: {why}", escape(path)),
            Warning::CopySkipped {
                session,
                path,
                why,
                others,
            } => format!(
                "copy into `{session}`: left {} and {others} more alone: {why}",
                escape(path)
            ),
            Warning::TeardownFailed {
                session,
                command,
                status,
            } => format!(
                "teardown of `{session}`: `{}` failed ({status}); --force: the removal goes on",
                escape(command)
            ),
        };
        self.around(&mut || {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        });
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish();
        }
    }
}
