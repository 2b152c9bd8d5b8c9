//! The repairs of a declared session (`Action::Update`), in the order the plan gives them.

use super::hooks::HookError;
use super::{Executor, Failure, LateFailure};
use crate::plan::{Change, Reason, Repair, Start};
use crate::store::metadata::{SetupProgress, SetupState, Wanted};
use crate::store::ownership::OwnedState;

impl Executor<'_> {
    pub(super) fn update(
        &mut self,
        change: &Change,
        repairs: &[Repair],
        wanted: &Wanted,
        base: &str,
    ) -> Result<(), Failure> {
        let mut recreated = None;
        let mut hook_failure = None;
        let mut copy_failure = None;
        let mut finished_copy = false;
        let mut setup = Ok(());
        for repair in repairs {
            match repair {
                Repair::Worktree {
                    start,
                    reset,
                    post_checkout,
                    prepare,
                } => {
                    hook_failure = self.remake_worktree(change, start, *reset, post_checkout.as_ref(), base)?;
                    // A worktree made again is a new checkout: it gets its copies and setup
                    // as a new session does (its ports are the ones it holds), once its
                    // metadata is written (below), which records how far they get.
                    recreated = Some(prepare);
                }
                Repair::Metadata { new, .. } => self.write_metadata(change, wanted, new.as_deref())?,
                Repair::SwitchBranch { from, start } => {
                    self.ensure_branch(&change.branch, start)?;
                    self.switch_branch(change, from)?;
                }
                Repair::Artifacts => {
                    self.create_dir_in_worktree(&change.path, &crate::names::artifacts_dir(&change.session))?;
                }
                Repair::Restore { from } => self.restore(change, from, base)?,
                Repair::Ports { names } => self.add_ports(change, wanted, names)?,
                Repair::FinishRecord => self.mark(change, base, OwnedState::Created)?,
                Repair::Move {
                    from,
                    admin_id,
                    across,
                    resumed,
                } => self.move_worktree(change, from, admin_id, *across && !*resumed, wanted)?,
                Repair::Copies {
                    from,
                    items,
                    finishing,
                    setup_done,
                    ..
                } => {
                    if !*finishing {
                        self.late_copy_progress(change, setup_done, false)?;
                    }
                    let failed = self.copy_items(change, from, items);
                    if !*finishing && failed.is_none() && !crate::store::lock::interrupted() {
                        self.late_copy_progress(change, setup_done, true)?;
                    }
                    finished_copy = *finishing && failed.is_none();
                    copy_failure = copy_failure.or(failed);
                }
                Repair::RunSetup {
                    commands,
                    done,
                    variables,
                    copied,
                } => {
                    setup = self.finish_setup(change, commands, done, variables, *copied || finished_copy);
                }
            }
        }
        if let Some(prepare) = recreated {
            if !prepare.copy.is_empty() || !prepare.setup.is_empty() {
                self.record_progress(change, &SetupProgress::started())
                    .map_err(|why| Failure::HookFailed(why.into()))?;
            }
            copy_failure = self.copy_for(change, prepare);
            self.mark(change, base, OwnedState::Created)?;
            setup = self.finish_setup(change, &prepare.setup, &[], &prepare.variables, copy_failure.is_none());
        }
        let late = hook_failure
            .map(LateFailure::from)
            .or_else(|| copy_failure.map(LateFailure::from));
        if let Some(why) = late {
            return Err(Failure::HookFailed(why));
        }
        setup.map_err(|why| Failure::HookFailed(why.into()))?;
        Ok(())
    }

    /// Make a missing (or half-made, `reset`) worktree again on the session's branch, as
    /// creating it does; returns the post-checkout hook's failure, which does not stop the
    /// rest of the update.
    pub(super) fn remake_worktree(
        &mut self,
        change: &Change,
        start: &Start,
        reset: bool,
        post_checkout: Option<&crate::hooks::HooksDir>,
        base: &str,
    ) -> Result<Option<HookError>, Failure> {
        if reset {
            // Checked again under the lock: the half-made checkout still holds
            // nothing but its branch's files.
            let branch = self
                .record
                .by_path(&change.path)
                .map_or_else(|| change.branch.clone(), |o| o.branch.clone());
            let stray = self.probe.stray_files(self.repo, &change.path, &branch);
            if !stray.is_empty() {
                return Err(Failure::Blocked(vec![Reason::HalfMadeHoldsOtherFiles { files: stray }]));
            }
        }
        self.recheck_before_checkout(change, true)?;
        // Making the worktree again is creating it: recorded the same way, so
        // that a kill during its checkout is recognised and redone.
        self.mark(change, base, OwnedState::Creating)?;
        self.drop_registration(&change.path, reset)?;
        self.ensure_branch(&change.branch, start)?;
        let head = self.add_worktree(change)?;
        let Some(dir) = post_checkout else { return Ok(None) };
        let null = gix::ObjectId::null(self.repo.object_hash()).to_string();
        Ok(crate::apply::hooks::post_checkout(dir, &change.path, &self.git_prefix(), &null, &head).err())
    }

    /// Ports the manifest names and the session's metadata does not hold yet: allocated
    /// (a port the session already holds in the registry is given again) and added.
    pub(super) fn add_ports(&self, change: &Change, wanted: &Wanted, names: &[String]) -> Result<(), Failure> {
        let crate::store::metadata::MetadataFile::Valid(found) =
            crate::store::metadata::read(&change.path, &change.session)
        else {
            return Err(Failure::Blocked(vec![Reason::MetadataInvalid {
                id: change.session.clone(),
                why: "not a metadata file flowloom can add ports to".into(),
            }]));
        };
        let ports =
            crate::store::machine::allocate_ports(&self.repository_key(), &change.session, names, &self.held_ports)?;
        self.write_metadata(change, wanted, Some(&found.with_ports(&ports)))
    }

    /// SPEC §11.3: a late copy is recorded unfinished (`incomplete`, not copied, `done` the
    /// setup commands already run) before it starts and finished once it is whole, so that a
    /// kill in the middle (a folder half copied) is finished by the next apply instead of
    /// being taken for a copy that was made. A session without metadata records nothing.
    fn late_copy_progress(&self, change: &Change, done: &[String], finished: bool) -> Result<(), Failure> {
        let progress = SetupProgress {
            state: if finished {
                SetupState::Ok
            } else {
                SetupState::Incomplete
            },
            copied: finished,
            done: done.to_vec(),
        };
        match self.record_progress(change, &progress) {
            Err(crate::apply::setup::SetupError::NoMetadata { .. }) | Ok(()) => Ok(()),
            Err(why) => Err(Failure::HookFailed(why.into())),
        }
    }
}
