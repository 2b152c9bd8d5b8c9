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

// The executor's steps, by family (each an `impl Executor` of its own).
mod add_worktree;
mod branches;
mod create;
mod housekeeping;
mod moving;
mod prepare;
mod recheck;
mod remove;
mod switch;
mod trash;
mod update;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::apply::probe::Probe;
use crate::apply::reporter::Reporter;
use crate::error::RepoError;
use crate::plan::{Action, Change, Housekeeping, Plan, Reason, Repair, Start};
use crate::store::ownership::{OwnedSession, OwnedState, Record};
pub use prepare::CopyFailed;
use recheck::HeadStamp;

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
    /// Carried out, but the repository's `post-checkout` hook, a copy or a `setup` command
    /// failed (as `git worktree add` reports a hook): the session is made.
    HookFailed(LateFailure),
    Error(RepoError),
}

/// What failed once a session was made (SPEC §10): the session stands, and the next apply
/// finishes what is left of its copies and setup.
#[derive(Debug, thiserror::Error)]
pub enum LateFailure {
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    #[error(transparent)]
    Copy(#[from] prepare::CopyFailed),
    #[error(transparent)]
    Setup(#[from] setup::SetupError),
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

    /// How the machine's trust and port files name this repository.
    fn repository_key(&self) -> String {
        crate::store::machine::repository_key(&self.common_dir)
    }
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
