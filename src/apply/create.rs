//! A new session (`Action::Create`): ports, ownership entry, branch, worktree, session
//! folder and metadata, in the order that lets a kill anywhere be finished by the next apply.

use std::path::Path;

use super::{Executor, Failure, failpoint, test_hook};
use crate::plan::{Change, Reason, Start, StartFrom};
use crate::store::metadata::{SetupProgress, Wanted};
use crate::store::ownership::OwnedState;

impl Executor<'_> {
    pub(super) fn create(
        &mut self,
        change: &Change,
        start: &Start,
        wanted: &Wanted,
        base: &str,
        post_checkout: Option<&crate::hooks::HooksDir>,
        prepare: &crate::plan::Prepare,
    ) -> Result<(), Failure> {
        test_hook("FLOWLOOM_TEST_BEFORE_CREATE", &change.session);
        self.recheck_before_checkout(change, false)?;
        // SPEC §10: ports first (kept in metadata.json): when none is left, nothing is made.
        // A session asking again gets the ports it already holds.
        let ports = if prepare.ports.is_empty() {
            std::collections::BTreeMap::new()
        } else {
            crate::store::machine::allocate_ports(
                &self.repository_key(),
                &change.session,
                &prepare.ports,
                &self.held_ports,
            )?
        };
        self.mark_new(change, base, start)?;
        failpoint("create:record");
        let full = crate::names::branch_ref(&change.branch);
        let made_branch =
            start.from != StartFrom::Local && self.repo.try_find_reference(full.as_str()).ok().flatten().is_none();
        self.ensure_branch(&change.branch, start)?;
        failpoint("create:branch");
        let head = match self.add_worktree(change) {
            Ok(head) => head,
            Err(e) => {
                // Nothing of the session is left: the branch this creation made goes too.
                if made_branch {
                    self.undo_branch(&change.branch, &start.commit)?;
                }
                return Err(e.into());
            }
        };
        failpoint("create:checkout");
        // As `git worktree add`: the hook runs right after the checkout; its failure is
        // reported once the session is complete.
        let hook = post_checkout.map(|dir| {
            let null = gix::ObjectId::null(self.repo.object_hash()).to_string();
            crate::apply::hooks::post_checkout(dir, &change.path, &self.git_prefix(), &null, &head)
        });
        // SPEC §10: the copies, then setup (the ports were allocated first).
        // SPEC §11.3: a session with copies or setup is recorded `incomplete` until both end.
        let tracked = !prepare.copy.is_empty() || !prepare.setup.is_empty();
        self.write_session_folder(change, wanted, &ports, tracked)?;
        failpoint("create:metadata");
        let copy_failed = self.copy_for(change, prepare);
        failpoint("create:copy");
        self.mark(change, base, OwnedState::Created)?;
        let setup = self.finish_setup(change, &prepare.setup, &[], &prepare.variables, copy_failed.is_none());
        if let Some(Err(why)) = hook {
            return Err(Failure::HookFailed(why.into()));
        }
        if let Some(why) = copy_failed {
            return Err(Failure::HookFailed(why.into()));
        }
        setup.map_err(|why| Failure::HookFailed(why.into()))
    }

    /// `GIT_PREFIX` as git sets it for a command's hooks: where flowloom was started,
    /// relative to the top of the worktree it found (`sub/`), empty outside it.
    pub(super) fn git_prefix(&self) -> String {
        let Some(top) = self.repo.workdir() else {
            return String::new();
        };
        let start = crate::fsutil::canonical(&self.start_dir);
        match start.strip_prefix(crate::fsutil::canonical(top)) {
            Ok(rel) if !rel.as_os_str().is_empty() => format!("{}/", rel.to_string_lossy()),
            _ => String::new(),
        }
    }

    /// A new session's folder: `artifacts/`, and a new `metadata.json` holding its ports.
    pub(super) fn write_session_folder(
        &self,
        change: &Change,
        wanted: &Wanted,
        ports: &std::collections::BTreeMap<String, u16>,
        tracked: bool,
    ) -> Result<(), Failure> {
        self.create_dir_in_worktree(&change.path, &crate::names::artifacts_dir(&change.session))?;
        let mut fresh = wanted.create_with_ports(shell_pid(), &now(), ports);
        if tracked && let Some(m) = crate::store::metadata::Metadata::parse(&fresh) {
            fresh = m.with_progress(&SetupProgress::started());
        }
        self.write_metadata(change, wanted, Some(&fresh))
    }

    /// Create `rel` below `worktree`, one folder at a time, never through a symlink: what
    /// the plan checked is checked again right before.
    pub(super) fn create_dir_in_worktree(&self, worktree: &Path, rel: &Path) -> Result<(), Failure> {
        crate::fsutil::check_beneath(worktree, rel)
            .map_err(|why| Failure::Blocked(vec![Reason::UnsafeSessionFolder { why: why.to_string() }]))?;
        crate::fsutil::create_dir_beneath(worktree, rel)?;
        Ok(())
    }

    pub(super) fn write_metadata(&self, change: &Change, wanted: &Wanted, text: Option<&str>) -> Result<(), Failure> {
        let rel = crate::names::metadata_file(&change.session);
        crate::fsutil::check_beneath(&change.path, &rel)
            .map_err(|why| Failure::Blocked(vec![Reason::UnsafeSessionFolder { why: why.to_string() }]))?;
        let fresh;
        let text = match text {
            Some(t) => t,
            None => {
                fresh = wanted.create(shell_pid(), &now());
                &fresh
            }
        };
        crate::fsutil::write_beneath(&change.path, &rel, text.as_bytes())?;
        Ok(())
    }
}

/// The parent of this process: the shell that ran flowloom (SPEC §5 `shellPid`).
pub(super) fn shell_pid() -> u32 {
    #[cfg(unix)]
    {
        std::os::unix::process::parent_id()
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// Now, in UTC, to the second: `2026-11-24T06:00:00Z`.
pub(super) fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
