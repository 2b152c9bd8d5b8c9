//! Carry a plan out, through gix only. The executor takes the plan and the repository,
//! nothing else: every decision was made by the planner and is a field of a step.
//!
//! Every step is ordered so that a kill between any two of them leaves a state that `plan`
//! reads as "create" or "repair", never as unmanaged work and never as an orphan with
//! someone's commits: the ownership entry (`creating`) is written before anything else
//! of a session exists, and marked `created` only once everything does. Before anything is
//! deleted, under the lock, the worktree is checked again; what the plan did not show
//! blocks that deletion.

pub mod checkout;
pub mod copy;
pub mod hooks;
pub mod land;
pub mod probe;
pub mod refs;
pub mod relocate;
pub mod reporter;
pub mod setup;
mod worktree_config;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use gix::refs::transaction::{Change as RefChange, LogChange, PreviousValue, RefEdit, RefLog};

use crate::apply::probe::Probe;
use crate::apply::reporter::{Reporter, Warning};
use crate::error::RepoError;
use crate::plan::{
    Action, Archive, Change, Housekeeping, Plan, Reason, Removal, Repair, Start, StartFrom, WorktreeRemoval,
};
use crate::store::metadata::{SetupProgress, SetupState, Wanted};
use crate::store::ownership::{OwnedSession, OwnedState, Record};

/// What happened to one change.
#[derive(Debug)]
pub struct Outcome<'p> {
    pub change: &'p Change,
    pub result: Result<(), Failure>,
}

/// Why a housekeeping step was left undone.
#[derive(Debug, thiserror::Error)]
pub enum HousekeepError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Leftover(#[from] crate::store::recover::RemoveError),
    #[error("{} is not in a trash folder; left alone", .0.display())]
    NotInTrash(PathBuf),
    #[error("{} is not flowloom's to delete; left alone", .0.display())]
    NotOurs(PathBuf),
}

/// Why a change was not carried out.
#[derive(Debug)]
pub enum Failure {
    /// Checked again right before acting, the repository held what the plan did not show.
    Blocked(Vec<Reason>),
    /// Ctrl-C arrived before it started (or stopped a checkout part-way).
    Interrupted,
    /// Carried out, but the repository's `post-checkout` hook or a `setup` command failed
    /// (as `git worktree add` reports a hook): the session is made.
    HookFailed(String),
    Error(RepoError),
}

impl From<RepoError> for Failure {
    fn from(e: RepoError) -> Self {
        Failure::Error(e)
    }
}

/// What happened to the housekeeping steps and the changes.
#[derive(Debug)]
pub struct Report<'p> {
    /// Housekeeping steps that could not be done, with why (the rest were).
    pub housekeeping: Vec<(&'p Housekeeping, HousekeepError)>,
    pub changes: Vec<Outcome<'p>>,
}

pub struct Executor<'a> {
    repo: &'a gix::Repository,
    /// What the re-checks read again, through the command layer's reader.
    probe: &'a dyn Probe,
    common_dir: PathBuf,
    /// Where flowloom was started (a worktree it runs in is never removed).
    start_dir: PathBuf,
    record: Record,
    /// Raised by Ctrl-C while apply writes: checked between steps, and by checkouts.
    interrupt: &'static AtomicBool,
    /// Tells what happens while apply works (the command layer's progress bar, warnings).
    reporter: &'a dyn Reporter,
    /// Every worktree `HEAD` file `checked_out_at` read: its stat when read, whether that
    /// stat vouches for the content (not `HeadStamp::racy`), the content. Each check stats
    /// every `HEAD` again and reads those whose stat changed or cannot vouch.
    heads: std::collections::HashMap<PathBuf, (HeadStamp, bool, Option<Vec<u8>>)>,
    /// `info/exclude` lines of sessions removed by this apply, dropped once after the last
    /// change (`Removal::exclude_drop`): rewriting the file per removal made removing k
    /// sessions O(k·N).
    exclude_drops: Vec<String>,
    /// The record's entries as last written (`Record::write_with`).
    rendered: crate::store::ownership::Rendered,
    /// Ports the plan found held by this repository's sessions (`Plan::held_ports`).
    held_ports: BTreeSet<u16>,
    /// The administration folders the last check before a checkout saw
    /// (`recheck_before_checkout`).
    seen_admins: Option<std::collections::HashSet<PathBuf>>,
}

/// What a file's stat says about its content: a `HEAD` rewritten (git renames a new file
/// over it: new inode) or edited in place (new times, size) differs in one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeadStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl HeadStamp {
    /// Whether the file changed too shortly before `read_at` for its stat to tell a later
    /// change: file times are kept at a clock tick's grain, so a same-size write in place
    /// within that tick would leave the stat as it was (git's "racy clean" case). Such a file
    /// is read again each time.
    fn racy(&self, read_at: std::time::SystemTime) -> bool {
        let secs = read_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.mtime.0.max(self.ctime.0) >= secs.saturating_sub(2)
    }

    fn of(path: &Path) -> Option<HeadStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(HeadStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

impl<'a> Executor<'a> {
    pub fn new(
        repo: &'a gix::Repository,
        probe: &'a dyn Probe,
        reporter: &'a dyn Reporter,
        start_dir: &Path,
    ) -> Result<Self, RepoError> {
        let common_dir = crate::fsutil::canonical(repo.common_dir());
        Ok(Executor {
            repo,
            probe,
            record: Record::read(&common_dir)?,
            common_dir,
            start_dir: start_dir.to_owned(),
            interrupt: crate::store::lock::interrupt_flag(),
            reporter,
            heads: Default::default(),
            exclude_drops: Vec::new(),
            rendered: Default::default(),
            held_ports: BTreeSet::new(),
            seen_admins: None,
        })
    }

    /// Carry out every step it can; one failure does not stop the others (but a failure to
    /// write `info/exclude` stops everything: new sessions would show as untracked files).
    pub fn execute<'p>(&mut self, plan: &'p Plan) -> Report<'p> {
        // Every step writes: Ctrl-C stops between steps, never inside one.
        let _critical = crate::store::lock::Critical::enter();
        self.held_ports = plan.held_ports.clone();
        let mut report = Report {
            housekeeping: Vec::new(),
            changes: Vec::new(),
        };
        for step in &plan.housekeeping {
            if let Err(why) = self.housekeep(step) {
                if matches!(step, Housekeeping::Excludes { .. }) {
                    report.changes = plan
                        .changes
                        .iter()
                        .map(|change| Outcome {
                            change,
                            result: Err(Failure::Error(RepoError::message(why.to_string()))),
                        })
                        .collect();
                    report.housekeeping.push((step, why));
                    return report;
                }
                report.housekeeping.push((step, why));
            }
        }
        let checkouts = plan
            .changes
            .iter()
            .filter(|c| match &c.action {
                Action::Create { .. } => true,
                Action::Update { repairs, .. } => repairs.iter().any(|r| matches!(r, Repair::Worktree { .. })),
                _ => false,
            })
            .count();
        self.reporter.start(checkouts);
        // The removals whose exclude lines wait in `exclude_drops`.
        let mut dropping = Vec::new();
        for change in &plan.changes {
            if crate::store::lock::interrupted() && !matches!(change.action, Action::Blocked { .. }) {
                report.changes.push(Outcome {
                    change,
                    result: Err(Failure::Interrupted),
                });
                continue;
            }
            let queued = self.exclude_drops.len();
            let result = match &change.action {
                Action::Create {
                    start,
                    wanted,
                    base,
                    post_checkout,
                    prepare,
                } => self.create(change, start, wanted, base, post_checkout.as_ref(), prepare),
                Action::Update { repairs, wanted, base } => self.update(change, repairs, wanted, base),
                Action::Remove(removal) => self.remove(change, removal, false),
                Action::Retain { removal, .. } => self.remove(change, removal, true),
                Action::Restore { from, base } => self.restore(change, from, base),
                Action::Blocked { .. } => Ok(()),
            };
            if self.exclude_drops.len() > queued {
                dropping.push(report.changes.len());
            }
            report.changes.push(Outcome { change, result });
        }
        self.drop_exclude_lines(&mut report, &dropping);
        self.reporter.finish();
        report
    }

    fn housekeep(&mut self, step: &Housekeeping) -> Result<(), HousekeepError> {
        match step {
            Housekeeping::Excludes { new, legacy, .. } => {
                Ok(crate::store::exclude::write(&self.common_dir, new, legacy)?)
            }
            Housekeeping::Leftover(leftover) => Ok(crate::store::recover::remove(leftover)?),
            Housekeeping::EmptyTrash { path } if self.record.deleting.contains(path) => {
                // A deletion that started: finished, whatever is left of the folder (it was
                // checked before anything of it was deleted). Only in a real trash folder.
                let in_trash = path.parent().is_some_and(|t| {
                    t.file_name() == Some(crate::names::TRASH_DIR.as_ref())
                        && std::fs::symlink_metadata(t).is_ok_and(|m| m.is_dir())
                });
                if !in_trash {
                    return Err(HousekeepError::NotInTrash(path.clone()));
                }
                Ok(self.finish_deletion(path)?)
            }
            Housekeeping::EmptyTrash { path } => {
                // Only a folder the record says flowloom moved there, checked before it was
                // moved, in a trash folder that is a real folder (never through a symlink).
                // It is exactly what the check before the move saw (the recorded digest),
                // lies beside its session's path, and no registration points there any more.
                let owner = self.record.sessions.iter().find(|o| {
                    o.trash.as_deref() == Some(path.as_path())
                        && o.trash_digest.as_deref()
                            == Some(crate::fsutil::stamps::Stamps::read(path).digest().as_str())
                });
                let registered = match owner {
                    Some(o) => self.proxy(&o.path)?.is_some(),
                    None => false,
                };
                let ours = owner.is_some_and(|o| self.probe.is_trash_of(path, &o.path));
                if !ours || registered {
                    return Err(HousekeepError::NotOurs(path.clone()));
                }
                self.start_deletion(path)?;
                Ok(self.finish_deletion(path)?)
            }
            Housekeeping::FinishMove { admin_id, from, to } => Ok(self.resume_move(admin_id, from, to)?),
            Housekeeping::RepairLinks { admin_id, from, to } => Ok(self.repair_links(admin_id, from, to)?),
            Housekeeping::DropRecord { path, session } => {
                self.record.remove_path(path);
                self.save_record()?;
                // A creation that died before its worktree existed may hold ports (unless
                // the id lives on in another entry: its ports are that session's).
                if self.record.sessions.iter().any(|o| o.id == *session) {
                    return Ok(());
                }
                Ok(crate::store::machine::release_ports(&self.repository_key(), session)?)
            }
        }
    }

    /// Drop the exclude lines of the sessions this apply removed, in one rewrite. Until then
    /// they hide a little more than needed, never less. A failure fails each of those
    /// removals, as it did when each dropped its own lines.
    fn drop_exclude_lines(&mut self, report: &mut Report<'_>, dropping: &[usize]) {
        if self.exclude_drops.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.exclude_drops);
        if let Err(e) = crate::store::exclude::drop_lines(&self.common_dir, &lines) {
            for &i in dropping {
                if let Some(outcome) = report.changes.get_mut(i)
                    && outcome.result.is_ok()
                {
                    outcome.result = Err(Failure::Error(RepoError::message(e.to_string())));
                }
            }
        }
    }

    fn save_record(&mut self) -> Result<(), RepoError> {
        // A deletion a kill cut short right after it ended is forgotten here.
        self.record.deleting.retain(|p| p.symlink_metadata().is_ok());
        self.record.write_with(&self.common_dir, &mut self.rendered)
    }

    fn mark(&mut self, change: &Change, base: &str, state: OwnedState) -> Result<(), RepoError> {
        self.mark_with_trash(change, base, state, None, None)
    }

    fn mark_with_trash(
        &mut self,
        change: &Change,
        base: &str,
        state: OwnedState,
        trash: Option<PathBuf>,
        trash_digest: Option<String>,
    ) -> Result<(), RepoError> {
        // Whether flowloom created the branch is settled when the session is made.
        let branch_created = self
            .record
            .by_path(&change.path)
            .is_none_or(|o| o.branch_created && o.branch == change.branch);
        self.record.upsert(OwnedSession {
            id: change.session.clone(),
            branch: change.branch.clone(),
            path: change.path.clone(),
            base: base.to_owned(),
            state,
            trash,
            trash_digest,
            branch_created,
        });
        self.save_record()
    }

    /// The first entry of a session being made: it says whether flowloom makes its branch.
    /// A creation that a killed apply started keeps what that one recorded: the branch
    /// it made now exists, but is flowloom's all the same.
    fn mark_new(&mut self, change: &Change, base: &str, start: &Start) -> Result<(), RepoError> {
        let earlier = self
            .record
            .by_path(&change.path)
            .filter(|o| o.state == OwnedState::Creating && o.branch == change.branch)
            .map(|o| o.branch_created);
        self.record.upsert(OwnedSession {
            id: change.session.clone(),
            branch: change.branch.clone(),
            path: change.path.clone(),
            base: base.to_owned(),
            state: OwnedState::Creating,
            trash: None,
            trash_digest: None,
            branch_created: earlier.unwrap_or(start.from == crate::plan::StartFrom::Base),
        });
        self.save_record()
    }

    fn create(
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
        let setup = self.finish_setup(change, &prepare.setup, &[], &prepare.env, copy_failed.is_none());
        if let Some(Err(why)) = hook {
            return Err(Failure::HookFailed(why));
        }
        if let Some(why) = copy_failed {
            return Err(Failure::HookFailed(why));
        }
        setup.map_err(Failure::HookFailed)
    }

    /// `GIT_PREFIX` as git sets it for a command's hooks: where flowloom was started,
    /// relative to the top of the worktree it found (`sub/`), empty outside it.
    fn git_prefix(&self) -> String {
        let Some(top) = self.repo.workdir() else {
            return String::new();
        };
        let start = crate::fsutil::canonical(&self.start_dir);
        match start.strip_prefix(crate::fsutil::canonical(top)) {
            Ok(rel) if !rel.as_os_str().is_empty() => format!("{}/", rel.to_string_lossy()),
            _ => String::new(),
        }
    }

    /// SPEC §10: copy the planned entries into a new worktree; what could not be copied, as
    /// a failure to report once the session is made.
    fn copy_for(&self, change: &Change, prepare: &crate::plan::Prepare) -> Option<String> {
        self.copy_items(change, prepare.from.as_deref()?, &prepare.copy)
    }

    /// Copy `items` from the main worktree `from` into the session (never overwriting); what
    /// could not be copied, as a failure to report.
    fn copy_items(&self, change: &Change, from: &Path, items: &[crate::apply::copy::CopyItem]) -> Option<String> {
        if items.is_empty() {
            return None;
        }
        failpoint_copying(from, &change.path, items);
        let copied = crate::apply::copy::copy_into(from, &change.path, items, self.interrupt);
        for (path, why) in &copied.skipped {
            self.reporter.warn(&Warning::CopySkipped {
                session: change.session.clone(),
                path: path.clone(),
                why: why.clone(),
            });
        }
        let (path, why) = copied.failed.first()?;
        Some(format!(
            "could not copy {} {} into the session ({}: {why}); the rest was copied and the session was created",
            copied.failed.len(),
            crate::plan::plural(copied.failed.len(), "path"),
            crate::render::output::escape(path)
        ))
    }

    /// SPEC §10, §11.3: the (trusted) setup `commands` not yet run (`done` did), recorded
    /// one by one in the session's metadata (`setup::run_recorded`).
    fn finish_setup(
        &self,
        change: &Change,
        commands: &[String],
        done: &[String],
        env: &std::collections::BTreeMap<String, String>,
        copied: bool,
    ) -> Result<(), String> {
        let ports = match crate::store::metadata::read(&change.path, &change.session) {
            crate::store::metadata::MetadataFile::Valid(m) => m.ports(),
            _ => Default::default(),
        };
        let vars = session_variables(change, env, &ports);
        let progress = SetupProgress {
            state: SetupState::Incomplete,
            copied,
            done: done.to_vec(),
        };
        let around = |run: &mut dyn FnMut() -> Result<(), String>| {
            let mut result = Ok(());
            self.reporter.around(&mut || result = run());
            result
        };
        crate::apply::setup::run_recorded(&change.session, &change.path, &vars, commands, progress, &around)
    }

    fn record_progress(&self, change: &Change, progress: &SetupProgress) -> Result<(), String> {
        crate::apply::setup::record_progress(&change.path, &change.session, progress)
    }

    /// Ports the manifest names and the session's metadata does not hold yet: allocated
    /// (a port the session already holds in the registry is given again) and added.
    fn add_ports(&self, change: &Change, wanted: &Wanted, names: &[String]) -> Result<(), Failure> {
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

    /// Checked again under the lock, right before a checkout, as `git worktree add` checks:
    /// the plan saw the branch checked out nowhere else and (for a new session, `!ours`) no
    /// registration at the path, but git (or a person) may have acted since (during the
    /// prompt, or a long apply). `ours`: the session's own registration is there, to be made
    /// again.
    fn recheck_before_checkout(&mut self, change: &Change, ours: bool) -> Result<(), Failure> {
        let admins: Vec<PathBuf> = std::fs::read_dir(self.common_dir.join("worktrees"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .collect();
        let own = registered_at(&change.path, &admins);
        let except = own.clone().filter(|_| ours);
        // The first creation of an apply reads every worktree's `HEAD` (what the prompt gave
        // git time for); later ones the main worktree's and those of registrations made
        // since, so that an apply making a thousand sessions stays linear.
        let dirs: Vec<PathBuf> = match &self.seen_admins {
            None => std::iter::once(self.common_dir.clone())
                .chain(admins.iter().cloned())
                .collect(),
            Some(seen) => std::iter::once(self.common_dir.clone())
                .chain(admins.iter().filter(|a| !seen.contains(*a)).cloned())
                .collect(),
        };
        self.seen_admins = Some(admins.into_iter().collect());
        if let Some(other) = self.branch_in(&change.branch, dirs, except.as_deref()) {
            return Err(Failure::Blocked(vec![Reason::BranchCheckedOutElsewhere {
                branch: change.branch.clone(),
                path: self.worktree_of(&other),
            }]));
        }
        if let Some(admin) = own.filter(|_| !ours) {
            return Err(Failure::Error(RepoError::message(format!(
                "git registered a worktree at {} since the plan ({}); nothing was made: run `flowloom plan` again",
                change.path.display(),
                admin.display()
            ))));
        }
        Ok(())
    }

    /// The worktree an administration folder belongs to (the main worktree for the common
    /// dir), for messages; the folder itself when that cannot be read.
    fn worktree_of(&self, admin: &Path) -> PathBuf {
        if admin == self.common_dir {
            return self
                .repo
                .main_repo()
                .ok()
                .and_then(|r| r.workdir().map(crate::fsutil::canonical))
                .unwrap_or_else(|| admin.to_path_buf());
        }
        crate::fsutil::read_small(&admin.join("gitdir"))
            .map(|text| PathBuf::from(String::from_utf8_lossy(&text).trim()))
            .and_then(|gitdir| gitdir.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| admin.to_path_buf())
    }

    /// How the machine's trust and port files name this repository.
    fn repository_key(&self) -> String {
        crate::store::machine::repository_key(&self.common_dir)
    }

    /// Make a missing (or half-made, `reset`) worktree again on the session's branch, as
    /// creating it does; returns the post-checkout hook's failure, which does not stop the
    /// rest of the update.
    fn remake_worktree(
        &mut self,
        change: &Change,
        start: &Start,
        reset: bool,
        post_checkout: Option<&crate::hooks::HooksDir>,
        base: &str,
    ) -> Result<Option<String>, Failure> {
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

    fn update(&mut self, change: &Change, repairs: &[Repair], wanted: &Wanted, base: &str) -> Result<(), Failure> {
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
                    from, items, finishing, ..
                } => {
                    let failed = self.copy_items(change, from, items);
                    finished_copy = *finishing && failed.is_none();
                    copy_failure = copy_failure.or(failed);
                }
                Repair::RunSetup {
                    commands,
                    done,
                    env,
                    copied,
                } => {
                    setup = self.finish_setup(change, commands, done, env, *copied || finished_copy);
                }
            }
        }
        if let Some(prepare) = recreated {
            if !prepare.copy.is_empty() || !prepare.setup.is_empty() {
                self.record_progress(change, &SetupProgress::started())
                    .map_err(Failure::HookFailed)?;
            }
            copy_failure = self.copy_for(change, prepare);
            self.mark(change, base, OwnedState::Created)?;
            setup = self.finish_setup(change, &prepare.setup, &[], &prepare.env, copy_failure.is_none());
        }
        if let Some(why) = hook_failure.or(copy_failure) {
            return Err(Failure::HookFailed(why));
        }
        setup.map_err(Failure::HookFailed)?;
        Ok(())
    }

    /// SPEC §11.3: move the session's worktree from `from` to its path, as `git worktree
    /// move` does. Checked again first (its lock; the target still free; the registration
    /// still at `from`), the move is recorded in the ownership record before the folder
    /// moves, so that a kill anywhere is finished by the next apply (`resume_move`).
    fn move_worktree(
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
            self.recheck_move(change, from, admin_id, registered.as_deref())?;
            self.record.moving.retain(|m| m.to != to);
            self.record.moving.push(crate::store::ownership::Moving {
                admin_id: admin_id.to_owned(),
                from: from.to_owned(),
                to: to.to_owned(),
            });
            self.save_record()?;
            failpoint("move:recorded");
            relocate::relocate(from, to, across)?;
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

    fn moving_to(&self, to: &Path) -> bool {
        self.record.moving.iter().any(|m| m.to == to)
    }

    /// Right before a move, what the plan saw still holds: not locked, the registration at
    /// `from`, nothing at the target but an empty folder.
    fn recheck_move(
        &self,
        change: &Change,
        from: &Path,
        admin_id: &str,
        registered: Option<&Path>,
    ) -> Result<(), Failure> {
        if let Some(lock) = relocate::lock_of(&self.common_dir, admin_id) {
            return Err(Failure::Blocked(vec![Reason::Locked { lock }]));
        }
        let to = change.path.as_path();
        let empty = std::fs::read_dir(to).is_ok_and(|mut d| d.next().is_none());
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
    fn finish_move(&mut self, admin_id: &str, from: &Path, to: &Path) -> Result<(), RepoError> {
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
    fn repair_links(&mut self, admin_id: &str, from: &Path, to: &Path) -> Result<(), RepoError> {
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
    fn delete_moved(&mut self, from: &Path) -> Result<(), RepoError> {
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
    fn resume_move(&mut self, admin_id: &str, from: &Path, to: &Path) -> Result<(), RepoError> {
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

    /// Check again, archive (forced only), record `removing`, move the worktree into the
    /// trash, drop its registration, delete the trash, delete the branch, drop the entry. A
    /// kill between any two leaves an orphan that the next plan judges afresh, or a trash
    /// folder that was checked before it was moved.
    /// `retain`: the branch and the ownership entry stay (a retained branch, SPEC §7).
    fn remove(&mut self, change: &Change, removal: &Removal, retain: bool) -> Result<(), Failure> {
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
                self.mark(change, &removal.base, OwnedState::Removing)?;
                failpoint("remove:marked");
                self.unregister(admin_id, &change.path, false)?;
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
    fn teardown(&self, change: &Change, teardown: &crate::plan::Teardown) -> Result<(), Failure> {
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

    /// Move a worktree an interrupted removal left in the trash back where it was.
    fn restore(&mut self, change: &Change, from: &Path, base: &str) -> Result<(), Failure> {
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
    fn trash_worktree(
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
    fn finish_in_trash(
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
    fn delete_trash(&mut self, change: &Change, trash: &Path) -> Result<(), Failure> {
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
    fn start_deletion(&mut self, path: &Path) -> Result<(), RepoError> {
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
    fn finish_deletion(&mut self, path: &Path) -> Result<(), RepoError> {
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
    fn move_back(&mut self, change: &Change, removal: &Removal, trash: &Path) -> Result<(), RepoError> {
        std::fs::rename(trash, &change.path).map_err(|e| RepoError::io("move back out of the trash", trash, e))?;
        if let Some(dir) = trash.parent() {
            let _ = std::fs::remove_dir(dir);
        }
        self.mark(change, &removal.base, OwnedState::Created)
    }

    /// SPEC §7, just in time: under the lock, right before the worktree is touched, it holds
    /// nothing the plan did not show — including what flowloom's own excludes hide.
    fn recheck(
        &self,
        change: &Change,
        admin_id: &str,
        half_made: bool,
        removal: &Removal,
    ) -> Result<crate::fsutil::stamps::Stamps, Failure> {
        // Every file as it is now, before anything is looked at: a change after this moment
        // is found when the folder is in the trash.
        let stamps = crate::fsutil::stamps::Stamps::read(&change.path);
        let proxy = self
            .repo
            .worktree_proxy_by_id(gix::bstr::BStr::new(admin_id.as_bytes()))
            .map_err(|e| RepoError::git("find worktree", &change.path, e))?;
        let Some(proxy) = proxy else {
            return Err(
                RepoError::message(format!("{} is no longer a registered worktree", change.path.display())).into(),
            );
        };
        let registered_here = proxy.base().is_ok_and(|b| crate::fsutil::canonical(&b) == change.path);
        if !registered_here {
            return Err(RepoError::message(format!(
                "the registration {admin_id} no longer points at {}",
                change.path.display()
            ))
            .into());
        }
        let hidden = crate::store::exclude::line_paths(&crate::store::exclude::read(&self.common_dir).lines);
        let facts = crate::plan::rules::WorktreeFacts {
            lock: proxy.lock_reason().map(|l| l.to_string()),
            half_made,
            started_inside: self.start_dir.starts_with(&change.path),
            ..self
                .probe
                .worktree(self.repo, admin_id, &change.path, &change.session, &hidden)?
        };
        let keep = removal.archive.as_ref().map_or(&[][..], |a| a.keep.as_slice());
        let accepted = crate::plan::rules::Accepted {
            discard: &removal.discard,
            keep,
        };
        let reasons = crate::plan::rules::removal_blockers(&facts, &change.session, Some(accepted));
        if reasons.is_empty() {
            Ok(stamps)
        } else {
            Err(Failure::Blocked(reasons))
        }
    }

    /// `git branch -d` semantics at the moment of deletion: the plan found the branch's
    /// commits in its base or upstream; if those moved since (a fetch pruned the upstream,
    /// the base was reset), the branch stays.
    fn recheck_merged(&self, change: &Change, tip: &str, base: &str) -> Result<(), Failure> {
        let tip_id = gix::ObjectId::from_hex(tip.as_bytes())
            .map_err(|e| RepoError::git("parse object id", Path::new(tip), e))?;
        let mut hidden = Vec::new();
        if let Ok(id) = self.repo.rev_parse_single(crate::names::commit_spec(base).as_str()) {
            hidden.push(id.detach());
        }
        let full: gix::refs::FullName = crate::names::branch_ref(&change.branch)
            .try_into()
            .map_err(|e| RepoError::git("name branch", Path::new(&change.branch), e))?;
        if let Some(Ok(tracking)) = self
            .repo
            .branch_remote_tracking_ref_name(full.as_ref(), gix::remote::Direction::Fetch)
            && let Ok(Some(mut r)) = self.repo.try_find_reference(tracking.as_ref())
            && let Ok(id) = r.peel_to_id()
        {
            hidden.push(id.detach());
        }
        let count = self.probe.unmerged(self.repo, &change.branch, tip_id, hidden.clone())?;
        let merge = crate::plan::rules::merge(count, || self.probe.integration(self.repo, tip_id, &hidden));
        if let crate::plan::rules::Merge::Unmerged(count) = merge {
            return Err(Failure::Blocked(vec![Reason::Unmerged {
                branch: change.branch.clone(),
                count,
                base: base.to_owned(),
                upstream: None,
            }]));
        }
        Ok(())
    }

    /// Where another worktree (or the main one) has `branch` checked out now, if anywhere.
    /// Every `HEAD` is looked at again, each time (git could have switched any of them
    /// since the plan); one this apply already read and whose stat has not changed since
    /// is not read again.
    fn checked_out_at(&mut self, branch: &str) -> Option<PathBuf> {
        self.checked_out_at_except(branch, None)
    }

    /// Where `branch` is checked out (its `HEAD`), or being rebased (git counts that as
    /// checked out too), leaving out the administration folder `except`.
    fn checked_out_at_except(&mut self, branch: &str, except: Option<&Path>) -> Option<PathBuf> {
        let linked = std::fs::read_dir(self.common_dir.join("worktrees"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path());
        let dirs: Vec<PathBuf> = std::iter::once(self.common_dir.clone()).chain(linked).collect();
        self.branch_in(branch, dirs, except)
    }

    /// Of the administration folders `dirs`, the first where `branch` is checked out or
    /// being rebased, leaving out `except`.
    fn branch_in(&mut self, branch: &str, dirs: Vec<PathBuf>, except: Option<&Path>) -> Option<PathBuf> {
        let full = crate::names::branch_ref(branch);
        for dir in dirs {
            if except.is_some_and(|e| e == dir) {
                continue;
            }
            let content = self.head_content(dir.join("HEAD"));
            let head = content.map(|t| String::from_utf8_lossy(t).trim().to_owned());
            match head.as_deref().map(|h| h.strip_prefix("ref: ")) {
                Some(Some(name)) if name == full.as_str() => return Some(dir),
                // A rebase detaches `HEAD`: only then can the branch be being rebased there.
                Some(None) if self.probe.rebasing(&dir).as_deref() == Some(full.as_str()) => {
                    return Some(dir);
                }
                _ => {}
            }
        }
        None
    }

    /// A `HEAD` file's content as it is now: read again when its stat differs from the one
    /// taken before it was last read (taken before, so that a write during the read shows
    /// as a change next time), else as read then.
    fn head_content(&mut self, head: PathBuf) -> Option<&[u8]> {
        use std::collections::hash_map::Entry;
        let Some(stamp) = HeadStamp::of(&head) else {
            self.heads.remove(&head);
            return None;
        };
        // Read, with whether the stat can vouch for the content from now on: not when the
        // file had changed just before.
        let read = |path: &Path| {
            let content = crate::fsutil::read_small(path);
            (stamp, !stamp.racy(std::time::SystemTime::now()), content)
        };
        let slot = match self.heads.entry(head) {
            Entry::Occupied(o) if o.get().0 == stamp && o.get().1 => o.into_mut(),
            Entry::Occupied(mut o) => {
                let fresh = read(o.key());
                o.insert(fresh);
                o.into_mut()
            }
            Entry::Vacant(v) => {
                let fresh = read(v.key());
                v.insert(fresh)
            }
        };
        slot.2.as_deref()
    }

    /// Drop the registration `admin_id` of a worktree whose folder is gone.
    fn unregister(&self, admin_id: &str, path: &Path, override_lock: bool) -> Result<(), RepoError> {
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
    fn write_archive(&self, change: &Change, archive: &Archive, files: &[String]) -> Result<(), RepoError> {
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
    fn snapshot_commit(
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

    /// Create the local branch unless it exists (SPEC §6); from a remote, also track it.
    fn ensure_branch(&self, branch: &str, start: &Start) -> Result<(), RepoError> {
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
                self.set_upstream(branch, &upstream.remote, &upstream.merge)?;
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
            self.set_upstream(branch, &upstream.remote, &upstream.merge)?;
        }
        Ok(())
    }

    /// `branch.<name>.remote` and `.merge`, as `git branch --track` writes them. gix locks
    /// the config file before it reads it, so a concurrent edit is never lost.
    fn set_upstream(&self, branch: &str, remote: &str, merge: &str) -> Result<(), RepoError> {
        self.edit_config(|config, path| {
            config
                .set_raw_value_by("branch", Some(branch.into()), "remote", remote)
                .and_then(|_| config.set_raw_value_by("branch", Some(branch.into()), "merge", merge))
                .map_err(|e| RepoError::git("set the upstream in", path, e))?;
            Ok(true)
        })
    }

    /// Edit the repository's own config file under its lock (gix locks it before it reads
    /// it, so a concurrent edit is never lost); `edit` says whether to write.
    fn edit_config(
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
    fn undo_branch(&self, branch: &str, commit: &str) -> Result<(), RepoError> {
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
    fn drop_branch_config(&self, branch: &str) -> Result<(), RepoError> {
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

    /// Register and check out the worktree; the commit checked out.
    fn add_worktree(&self, change: &Change) -> Result<String, RepoError> {
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
    fn leading_folders_as_git_makes_them(&self, path: &Path) -> Result<(), RepoError> {
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
    fn add_worktree_directly(
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
    fn commit_and_tree(
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
    fn checkout_failed(&self, tree: gix::ObjectId, e: RepoError) -> RepoError {
        if self.interrupt.load(std::sync::atomic::Ordering::Relaxed) {
            return RepoError::message("interrupted");
        }
        crate::apply::checkout::filter_failure(self.repo, tree, &e).unwrap_or(e)
    }

    /// `git worktree add` by gix itself, for configurations whose extra files it writes
    /// (`worktree.useRelativePaths`, `extensions.worktreeConfig`, `core.sparseCheckout`) or
    /// whose config depends on the branch (`includeIf "onbranch:…"`).
    fn add_worktree_with_gix(
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
    fn check_out_registered(
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

    /// Check out the session's branch in a clean worktree that is on `from`, as
    /// `git switch` does for a clean tree: files tracked only by `from` are deleted, the
    /// branch's tree is written over the rest, then the index and `HEAD` follow. Untracked
    /// (ignored) files and the session folder stay. A kill in between leaves `HEAD` on
    /// `from` with changes, which the next plan reports as blocked instead of guessing.
    fn switch_branch(&self, change: &Change, from: &str) -> Result<(), RepoError> {
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
        let mut options = wt_repo
            .checkout_options(gix::worktree::stack::state::attributes::Source::IdMapping)
            .map_err(git("read checkout options for"))?;
        options.overwrite_existing = true;
        options.destination_is_initially_empty = false;
        let objects = wt_repo
            .objects
            .clone()
            .into_arc()
            .map_err(|e| RepoError::git("open objects of", path, e))?;
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
    fn point_head(&self, wt_repo: &gix::Repository, path: &Path, full: &str, message: &str) -> Result<(), RepoError> {
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

    /// Remove the registration of a worktree whose folder is gone (`reset`: or whose
    /// checkout a killed apply left half-made, checked again just before, which goes first).
    fn drop_registration(&self, path: &Path, reset: bool) -> Result<(), RepoError> {
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
    fn proxy(&self, path: &Path) -> Result<Option<gix::worktree::Proxy<'_>>, RepoError> {
        let proxies = self
            .repo
            .worktrees()
            .map_err(|e| RepoError::git("list worktrees", path, e))?;
        Ok(proxies
            .into_iter()
            .find(|p| p.base().is_ok_and(|base| crate::fsutil::canonical(&base) == path)))
    }

    /// A new session's folder: `artifacts/`, and a new `metadata.json` holding its ports.
    fn write_session_folder(
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
    fn create_dir_in_worktree(&self, worktree: &Path, rel: &Path) -> Result<(), Failure> {
        crate::fsutil::check_beneath(worktree, rel)
            .map_err(|why| Failure::Blocked(vec![Reason::UnsafeSessionFolder { why: why.to_string() }]))?;
        crate::fsutil::create_dir_beneath(worktree, rel)?;
        Ok(())
    }

    fn write_metadata(&self, change: &Change, wanted: &Wanted, text: Option<&str>) -> Result<(), Failure> {
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

/// Deletes from the worktree the files the old index tracks that the new one does not (as
/// a switch of branches does), with the folders that leaves empty.
fn remove_files_not_in(
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

/// gix writes index format 2 (or 3) with a checksum; a repository that asks for format 4
/// or a null trailer (`index.skipHash`, `feature.manyFiles`) gets it, as git would write it.
fn index_as_configured(wt_repo: &gix::Repository) -> Result<(), RepoError> {
    crate::fsutil::index_v4::write_as_configured(wt_repo)
        .map_err(|e| RepoError::io("write the index", &wt_repo.index_path(), e))
}

/// With `core.sharedRepository`, what `git worktree add` adjusts gets git's shared modes:
/// the worktree folder, and in its administration folder `HEAD`, the index and the reflog
/// (`gitdir` and `commondir` git writes without adjusting them).
fn shared_modes_as_git_gives_them(wt_repo: &gix::Repository, worktree: &Path) {
    use crate::fsutil::shared::adjust;
    adjust(worktree);
    let admin = wt_repo.git_dir();
    for rel in ["HEAD", "index", "logs", "logs/HEAD"] {
        adjust(&admin.join(rel));
    }
}

/// Of the administration folders `admins`, one whose `gitdir` points at `path`. git names
/// a worktree's folder after the worktree's folder name (with a number when taken), so only
/// folders whose name starts with it are read.
fn registered_at(path: &Path, admins: &[PathBuf]) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let wanted = crate::fsutil::canonical(&path.join(".git"));
    admins
        .iter()
        .filter(|admin| {
            admin
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&name))
        })
        .find(|admin| {
            crate::fsutil::read_small(&admin.join("gitdir")).is_some_and(|text| {
                let text = String::from_utf8_lossy(&text);
                let gitdir = Path::new(text.trim());
                let gitdir = if gitdir.is_absolute() {
                    gitdir.to_path_buf()
                } else {
                    admin.join(gitdir)
                };
                crate::fsutil::canonical(&gitdir) == wanted
            })
        })
        .cloned()
}

/// SPEC §10's variables for a new session's `setup`.
fn session_variables(
    change: &Change,
    env: &std::collections::BTreeMap<String, String>,
    ports: &std::collections::BTreeMap<String, u16>,
) -> Vec<(String, String)> {
    let environment = crate::manifest::Environment {
        env: env.clone(),
        ..Default::default()
    };
    let worktree = change.path.to_string_lossy();
    crate::manifest::environment::variables(
        &environment,
        &crate::manifest::environment::Values {
            id: &change.session,
            branch: &change.branch,
            worktree: &worktree,
            ports,
        },
    )
}

/// Where a checked worktree folder goes: `<root>/.flowloom-trash/<name>` (numbered when
/// taken), in the same folder so that the move is one rename. The trash folder must be a
/// real folder, never a symlink; it is made by `move_into_trash`.
fn trash_target(path: &Path) -> Result<PathBuf, RepoError> {
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

/// Whether adding a worktree needs gix's own `prepare_add_worktree`: the config asks for
/// files or links the direct path does not write (relative links, `config.worktree`, sparse
/// patterns), or may depend on the new worktree's branch (`includeIf "onbranch:…"`).
fn needs_gix_add(repo: &gix::Repository) -> bool {
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
fn executables_as_git_writes_them(wt_repo: &gix::Repository, worktree: &Path) -> Result<(), RepoError> {
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
fn ident_as_git_writes_it(wt_repo: &gix::Repository, worktree: &Path) -> Result<(), RepoError> {
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
fn encodings_as_git_writes_them(wt_repo: &gix::Repository, worktree: &Path) -> Result<(), RepoError> {
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

/// Make the trash folder (a real folder: a symlink there is refused) and move `path` to
/// `target` in it, in one rename.
fn move_into_trash(path: &Path, target: &Path) -> Result<(), RepoError> {
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
fn delete_tree(path: &Path) -> Result<(), RepoError> {
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
fn delete_what_can_go(dir: &Path) -> Option<(PathBuf, std::io::Error)> {
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
fn writable_folders(path: &Path) {
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

#[cfg(unix)]
fn is_executable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

/// Debug builds only (the tests' binary): `FLOWLOOM_FAILPOINT=<step>` aborts the process at
/// that step, as a `kill -9` would, to prove every intermediate state converges.
pub(crate) fn failpoint(step: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("FLOWLOOM_FAILPOINT").is_ok_and(|v| v == step) {
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

/// Debug builds only: `FLOWLOOM_FAILPOINT=copy:part-way` copies the first of `items` and
/// aborts, as a `kill -9` in the middle of a copy would.
fn failpoint_copying(from: &Path, to: &Path, items: &[crate::apply::copy::CopyItem]) {
    #[cfg(debug_assertions)]
    if std::env::var("FLOWLOOM_FAILPOINT").is_ok_and(|v| v == "copy:part-way") {
        let never = AtomicBool::new(false);
        crate::apply::copy::copy_into(from, to, items.get(..1).unwrap_or_default(), &never);
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = (from, to, items);
}

/// Debug builds only: `FLOWLOOM_FAILPOINT=<step>` deletes part of `dir` (one file of its
/// top level) and aborts, as a `kill -9` in the middle of a deletion would.
fn failpoint_part_way(step: &str, dir: &Path) {
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

/// Debug builds only (the tests' binary): `<var>=<session>:<shell command>` runs the command
/// at that point for that session, to prove what happens when someone acts in between
/// (a file saved while apply waits or removes earlier sessions).
pub(crate) fn test_hook(var: &str, session: &str) {
    #[cfg(debug_assertions)]
    if let Ok(spec) = std::env::var(var)
        && let Some((target, command)) = spec.split_once(':')
        && target == session
    {
        let _ = std::process::Command::new("sh").arg("-c").arg(command).status();
    }
    #[cfg(not(debug_assertions))]
    let _ = (var, session);
}

/// The failpoints a plain (base-started) creation and a removal pass through; remote-started
/// creation also passes `create:branch-ref` (between the branch and its upstream).
pub const FAILPOINTS: [&str; 14] = [
    "create:record",
    "create:branch",
    "create:registered",
    "create:checkout",
    "create:metadata",
    "remove:archive",
    "remove:marked",
    "remove:trashed",
    "remove:checked",
    "remove:unregistered",
    "remove:deleting",
    "remove:deleted",
    "remove:worktree",
    "remove:branch",
];

/// The parent of this process: the shell that ran flowloom (SPEC §5 `shellPid`).
fn shell_pid() -> u32 {
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
fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
