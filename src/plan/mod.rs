//! `plan(&Manifest, &State) -> Plan`: the rules of SPEC §3, §6 and §7 as a pure function.
//!
//! No I/O and no gix types: everything the rules need is in `State`, so every rule can be
//! tested with plain values. Expected outcomes — a blocked removal, drift — are values in
//! the plan, not errors. The plan is the whole contract with apply: every decision and
//! every value apply needs (the expected commit of each ref edit, the base recorded, the
//! remote tracked, the files a forced removal may lose, housekeeping) is a field of a step,
//! so apply decides nothing and reads neither the manifest nor the state.

pub mod adopt;
#[cfg(test)]
mod roundtrip;
pub mod rules;
pub mod saved;
pub mod tracking;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::manifest::{Manifest, Session};
// The reader's findings a plan carries, named here so that render words the plan's
// vocabulary and never imports the reader.
pub use crate::read::inspect::Integration;
pub use crate::read::state::BaseFailure;
use crate::read::state::{Branch, Needs, State, Worktree};
use crate::store::metadata::{MetadataFile, SetupProgress, SetupState, Wanted};
use crate::store::ownership::{OwnedSession, OwnedState};
use crate::store::recover::Leftover;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Sorted by session id, then path.
    pub changes: Vec<Change>,
    pub unmanaged: Vec<Unmanaged>,
    /// Steps that belong to no session, carried out first.
    pub housekeeping: Vec<Housekeeping>,
    /// Made with `--force`.
    pub force: bool,
    /// Ports this repository's sessions hold by their `metadata.json`, when a step
    /// allocates ports: never handed out again, even when the machine's registry lost them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub held_ports: BTreeSet<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub session: String,
    pub branch: String,
    /// Absolute worktree path.
    pub path: PathBuf,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Branch (per `start`), worktree, session folder, metadata, ownership entry (recording
    /// `base`).
    Create {
        start: Start,
        wanted: Wanted,
        base: String,
        /// The repository's `post-checkout` hook, run in the new worktree as git runs it.
        post_checkout: Option<crate::hooks::HooksDir>,
        /// What the session gets after its checkout (SPEC §10).
        prepare: Prepare,
    },
    /// Repairs of a declared session, in the order apply carries them out.
    Update {
        repairs: Vec<Repair>,
        wanted: Wanted,
        base: String,
    },
    /// An orphan's removal.
    Remove(Removal),
    /// An orphan whose worktree can go but whose branch is not integrated: the worktree
    /// goes (when there is one), the branch and its ownership entry stay until the branch
    /// is integrated or removed with `--force` (SPEC §7, retained).
    Retain {
        removal: Removal,
        reasons: Vec<Reason>,
    },
    /// An orphan whose removal was interrupted between moving its worktree into the trash
    /// and dropping its registration: the folder goes back, and the next plan judges it
    /// afresh, with every check.
    Restore {
        from: PathBuf,
        base: String,
    },
    Blocked {
        reasons: Vec<Reason>,
    },
}

impl Action {
    /// Whether carrying it out touches the repository.
    pub fn changes_anything(&self) -> bool {
        match self {
            Action::Blocked { .. } => false,
            Action::Retain { removal, .. } => removal.worktree != WorktreeRemoval::None,
            _ => true,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Action::Create { .. } => "create",
            Action::Update { .. } => "update",
            Action::Remove(_) => "remove",
            Action::Retain { .. } => "retained",
            Action::Restore { .. } => "update",
            Action::Blocked { .. } => "blocked",
        }
    }
}

/// What the trust store covers of a session's environment: the manifest's lists in the
/// store's type (the manifest does not know the trust store, nor the store the manifest).
pub trait SetupOf {
    /// What must be trusted before `setup` runs (SPEC §10): the commands, `env` and
    /// `teardown`.
    fn setup_script(&self) -> crate::store::machine::SetupScript;
}

impl SetupOf for crate::manifest::Environment {
    fn setup_script(&self) -> crate::store::machine::SetupScript {
        crate::store::machine::SetupScript {
            commands: self.setup.clone(),
            env: self.env.clone(),
            teardown: self.teardown.clone(),
        }
    }
}

/// One ignored entry of the main worktree to copy (a folder whole), relative to the main
/// worktree and to the new session's worktree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CopyItem {
    /// `/`-separated.
    pub path: String,
    pub dir: bool,
}

impl From<crate::read::copy::Ignored> for CopyItem {
    fn from(entry: crate::read::copy::Ignored) -> Self {
        CopyItem {
            path: entry.path,
            dir: entry.dir,
        }
    }
}

/// SPEC §10: what a new session gets after its checkout, in this order: the copies, then
/// its ports (kept in `metadata.json`), then the `setup` commands with its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepare {
    /// The main worktree the copies come from.
    pub from: Option<PathBuf>,
    /// Ignored entries of the main worktree to copy (folders whole).
    pub copy: Vec<CopyItem>,
    /// Names of the ports to allocate.
    pub ports: Vec<String>,
    /// `env`, placeholders not yet filled in.
    pub env: BTreeMap<String, String>,
    /// The commands to run; only a list this machine trusts gets here.
    pub setup: Vec<String>,
}

impl Prepare {
    pub fn is_empty(&self) -> bool {
        self.copy.is_empty() && self.ports.is_empty() && self.setup.is_empty()
    }
}

/// Where a new branch starts (SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    pub from: StartFrom,
    /// The local branch, `<remote>/<branch>`, or the base revspec.
    pub reference: String,
    pub commit: String,
    /// The upstream the new branch gets (`branch.autoSetupMerge`, as `git branch` sets it).
    pub upstream: Option<crate::read::tracking::Upstream>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    Local,
    Remote,
    Base,
}

impl StartFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            StartFrom::Local => "local",
            StartFrom::Remote => "remote",
            StartFrom::Base => "base",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Repair {
    /// The worktree is gone (folder deleted by hand) or half-made by a killed apply: drop
    /// the registration and add it again. `reset`: the half-made checkout is deleted first,
    /// after apply checks again that every file in it is its branch's.
    Worktree {
        start: Start,
        reset: bool,
        post_checkout: Option<crate::hooks::HooksDir>,
        /// What the new checkout gets, as a new session (SPEC §10).
        prepare: Prepare,
    },
    /// Write `metadata.json`: `old` is the text found (None when missing), `new` the text
    /// to write (None: a new file, made at apply time with `startTime` and `shellPid`).
    Metadata { old: Option<String>, new: Option<String> },
    /// The worktree is checked out on `from` and clean: check out the session's branch there
    /// (created per `start` when it does not exist).
    SwitchBranch { from: String, start: Start },
    /// Create `sessions/<id>/artifacts/`.
    Artifacts,
    /// A killed removal had moved the checked worktree folder into the trash, and the
    /// session is declared again: move it back (its registration is still there).
    Restore { from: PathBuf },
    /// SPEC §10: the manifest names ports its `metadata.json` does not hold (added to the
    /// manifest after the session was made): allocate them and add them to the file.
    Ports { names: Vec<String> },
    /// A killed apply left the ownership entry in `creating` or `removing`: mark it created.
    FinishRecord,
    /// SPEC §11.3: the session's worktree is at `from` (its `root` or `worktree` template
    /// changed): move it to the session's path as `git worktree move` does — the folder with
    /// every file in it (uncommitted, ignored), the registration `admin_id`'s `gitdir`, the
    /// worktree's `.git`, the ownership entry, metadata's `workingDirectory`. `across`:
    /// another file system, so the folder is copied, verified, then deleted. `resumed`: a
    /// killed apply had started it (the record says so); only what is left is done.
    Move {
        from: PathBuf,
        admin_id: String,
        across: bool,
        resumed: bool,
    },
    /// SPEC §11.3: copy ignored entries of the main worktree `from` into the session, never
    /// overwriting what it has. `finishing`: the copy a creation started (killed or failed)
    /// is finished, folders merged file by file; otherwise `items` are the entries the
    /// session lacks (added to `copy` since it was made) and `kept` those it already has,
    /// left as they are.
    Copies {
        from: PathBuf,
        items: Vec<CopyItem>,
        kept: Vec<String>,
        finishing: bool,
    },
    /// SPEC §11.3: the setup that did not finish: run `commands` (those that did not succeed
    /// yet; `done` did, and are not run again) with the session's `env`, then record the
    /// setup `ok` (or `failed`). `copied`: the copies were done before this apply.
    RunSetup {
        commands: Vec<String>,
        done: Vec<String>,
        env: BTreeMap<String, String>,
        copied: bool,
    },
}

/// How an orphan goes: its worktree (after apply checks it again), then its branch, then
/// its ownership entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    pub worktree: WorktreeRemoval,
    /// The branch is deleted only if it still points at this commit.
    pub delete_branch: Option<String>,
    /// How the branch's commits are already in its base or upstream, when they are not
    /// reachable from it (a squash or rebase merge).
    pub integrated: Option<crate::read::inspect::Integration>,
    /// Forced: where what would be lost is kept first.
    pub archive: Option<Archive>,
    /// Forced: the files (relative to the worktree) whose changes the removal may lose;
    /// anything else found when apply checks again blocks it.
    pub discard: Vec<String>,
    /// The base recorded in the ownership entry (kept while the removal runs).
    pub base: String,
    /// Lines of flowloom's `info/exclude` block that only this session needs: dropped once
    /// it is gone.
    pub exclude_drop: Vec<String>,
    /// SPEC §11.3: the (trusted) `teardown` commands run in the worktree right before it
    /// goes, once it is checked; a worktree already gone has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown: Option<Teardown>,
}

/// SPEC §11.3: what runs in a session right before its worktree is removed, with the
/// session's variables (SPEC §10) as they will be set, expanded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Teardown {
    pub commands: Vec<String>,
    pub vars: Vec<(String, String)>,
    /// `--force`: a failing command is reported and the removal goes on; otherwise it
    /// blocks the removal, which leaves the session as it was.
    pub go_on: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorktreeRemoval {
    /// Check again, move the folder into the trash, drop the registration, delete the trash.
    /// `half_made`: the worktree is locked `initializing` by a checkout flowloom's own
    /// killed apply started.
    Remove { admin_id: String, half_made: bool },
    /// The folder was deleted by hand: drop the registration only.
    Prune { admin_id: String },
    /// An interrupted removal had checked the worktree and moved it into `trash`, where it
    /// still is exactly as checked: check that once more, drop the registration, delete it.
    Trashed {
        admin_id: String,
        trash: PathBuf,
        half_made: bool,
    },
    /// Nothing registered at the path any more.
    None,
}

/// Where a forced removal keeps the commits (and, with `snapshot`, the uncommitted files)
/// it would otherwise lose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Archive {
    /// `refs/flowloom/archive/<n>/<branch>` (`name_archives`): never clashes with another
    /// archive, never overwrites one.
    pub reference: String,
    /// The commits to keep: the branch tip, a detached `HEAD`.
    pub keep: Vec<String>,
    /// How many commits only this ref keeps.
    pub commits: usize,
    /// Commit the worktree's uncommitted and untracked files (as `git stash -u` would) on
    /// top of its `HEAD` first; the archive points at that commit.
    pub snapshot: Option<String>,
}

/// Why a change cannot be made; turned into words only where output is made (`render`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    BranchCheckedOutElsewhere {
        branch: String,
        path: PathBuf,
    },
    FolderInTheWay {
        path: PathBuf,
    },
    BaseUnresolved {
        base: String,
        why: BaseFailure,
    },
    BaseUnread {
        base: String,
    },
    HalfMadeHoldsOtherFiles {
        files: Vec<String>,
    },
    LockedWithFolderGone {
        lock: String,
    },
    SwitchBack {
        from: Option<String>,
        to: String,
        path: PathBuf,
        why: SwitchBlock,
    },
    MetadataInvalid {
        id: String,
        why: String,
    },
    UnsafeSessionFolder {
        why: String,
    },
    Locked {
        lock: String,
    },
    StartedInside,
    Dirty {
        what: DirtKind,
        count: usize,
    },
    SessionFiles {
        id: String,
        count: usize,
    },
    Unreadable {
        why: String,
    },
    Unmerged {
        branch: String,
        count: usize,
        base: String,
        upstream: Option<String>,
    },
    UnmergedUnchecked {
        branch: String,
    },
    Submodule {
        what: String,
    },
    Process {
        pid: u32,
        name: String,
        uses: String,
    },
    DetachedCommits {
        count: usize,
    },
    /// Found when apply checked again right before deleting: files the plan did not show.
    NewSincePlan {
        files: Vec<String>,
    },
    /// The worktree's `.git` does not lead back to its registration.
    ForeignGit {
        why: String,
    },
    /// A repository of its own anywhere inside the worktree (ignored folders too) with
    /// commits none of its remote-tracking refs reaches (`None`: it could not be read):
    /// nothing keeps its history, so even `--force` leaves it (SPEC §11.4).
    NestedRepository {
        path: String,
        unpushed: Option<usize>,
    },
    /// The checkout could not be written as git would write it.
    CannotCheckOut {
        why: String,
    },
    /// The commit to check out tracks a file where flowloom keeps the session's own
    /// (`sessions/<id>/metadata.json`): git would check it out, and flowloom never
    /// overwrites a tracked file.
    SessionFolderTracked {
        path: String,
    },
    /// SPEC §10: the session's `setup` list is not trusted on this machine (or changed since).
    SetupNotTrusted {
        script: crate::store::machine::SetupScript,
    },
    /// SPEC §11.3: the `teardown` a removal would run is not trusted on this machine: it
    /// neither runs nor is skipped (`--force` does not lift it), so the session stays.
    TeardownNotTrusted {
        script: crate::store::machine::SetupScript,
    },
    /// SPEC §11.3: a teardown command failed (`status`: its exit status or signal); the
    /// session was left as it was.
    TeardownFailed {
        command: String,
        status: String,
    },
    /// SPEC §11.1: there is no `flowloom.toml` (found by the usual search), so an owned
    /// session no layer declares may be one that file declared (an older commit checked
    /// out, the file stashed): kept, never removed or archived, until the file is back or
    /// `rm`/`merge` name the session. `--force` does not lift it.
    CommittedMissing {
        file: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SwitchBlock {
    Detached,
    CheckedOutElsewhere { path: PathBuf },
    Uncommitted,
    Unchecked,
    Start { reason: Box<Reason> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirtKind {
    Modified,
    Staged,
    Deleted,
    Untracked,
}

impl DirtKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DirtKind::Modified => "modified",
            DirtKind::Staged => "staged",
            DirtKind::Deleted => "deleted",
            DirtKind::Untracked => "untracked",
        }
    }
}

impl Reason {
    /// Whether `--force` lifts it (SPEC §7): dirty files, session files, unmerged and
    /// detached commits yes; a lock, a submodule, a process or the current worktree never.
    pub fn forceable(&self) -> bool {
        matches!(
            self,
            Reason::Dirty { .. }
                | Reason::SessionFiles { .. }
                | Reason::Unmerged { .. }
                | Reason::DetachedCommits { .. }
        )
    }
}

/// A step that belongs to no session. Tagged `step`, not `kind`: a leftover has a `kind`
/// of its own, and a second `kind` key would not read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Housekeeping {
    /// Rewrite flowloom's block of `info/exclude` to exactly these lines (dropping the
    /// first version's `legacy` lines, when its block is there).
    Excludes {
        old: Vec<String>,
        new: Vec<String>,
        legacy: Vec<String>,
    },
    /// Remove what a killed apply left (re-checked by apply).
    Leftover(Leftover),
    /// Delete a folder an interrupted removal had moved into the trash (it was checked
    /// before it was moved).
    EmptyTrash { path: PathBuf },
    /// Drop an ownership entry whose worktree and branch are both gone.
    DropRecord { session: String, path: PathBuf },
    /// SPEC §11.3: a worktree move a kill interrupted (the record's `moving`): once its
    /// folder is at `to`, point the registration and the ownership entry there; while it is
    /// still at `from`, forget the move (the session's plan moves it again).
    FinishMove {
        admin_id: String,
        from: PathBuf,
        to: PathBuf,
    },
    /// A worktree or its repository moved since the session was made: write both links
    /// again as `git worktree repair` does (the registration's `gitdir` names `<to>/.git`,
    /// the worktree's `.git` names the registration), the ownership entry following it.
    RepairLinks {
        admin_id: String,
        from: PathBuf,
        to: PathBuf,
    },
}

/// How to plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// `--force`: remove orphans despite dirty files, session files and unmerged commits.
    pub force: bool,
    /// `--target`: plan only these sessions (as Terraform's `-target`); empty plans all.
    pub targets: BTreeSet<String>,
    /// Sessions the command ends by dropping their declaration (`rm`, `merge`): their
    /// environment as declared, whose `teardown` runs. Other orphans get `[defaults]`'.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ending: BTreeMap<String, crate::manifest::Environment>,
}

impl Options {
    fn targets(&self, session: &str) -> bool {
        self.targets.is_empty() || self.targets.contains(session)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmanaged {
    pub session: String,
    pub branch: Option<String>,
    pub path: Option<PathBuf>,
}

impl Plan {
    pub fn count(&self, kind: &str) -> usize {
        self.changes.iter().filter(|c| c.action.kind() == kind).count()
    }

    /// Whether applying would change anything (blocked entries, and retained branches
    /// without a worktree, change nothing).
    pub fn has_changes(&self) -> bool {
        !self.housekeeping.is_empty() || self.changes.iter().any(|c| c.action.changes_anything())
    }

    /// Whether any session's base did not resolve.
    pub fn has_unresolved_base(&self) -> bool {
        self.changes.iter().any(|c| match &c.action {
            Action::Blocked { reasons } => reasons.iter().any(|r| matches!(r, Reason::BaseUnresolved { .. })),
            _ => false,
        })
    }
}

/// Compute the plan. `state` must have been read for this `manifest` and have answered
/// `questions(manifest, state)`.
pub fn plan(manifest: &Manifest, state: &State) -> Plan {
    plan_with(manifest, state, &Options::default())
}

pub fn plan_with(manifest: &Manifest, state: &State, options: &Options) -> Plan {
    let checked_out = checked_out(state);
    let mut changes = Vec::new();
    for session in manifest.sessions.values() {
        let path = state.root.join(&session.worktree);
        if let Some(action) = plan_declared(manifest, state, session, &path, &checked_out) {
            changes.push(Change {
                session: session.id.clone(),
                branch: session.branch.clone(),
                path,
                action,
            });
        }
    }
    for owned in orphans(manifest, &state.root, state) {
        let environment = options.ending.get(&owned.id).unwrap_or(&manifest.defaults.environment);
        let action = plan_orphan(state, owned, &checked_out, options, environment);
        // SPEC §11.1: nothing the missing flowloom.toml may declare is removed (a removal
        // under way is finished; `rm`/`merge` name the sessions they end).
        let action = match action {
            Some(a)
                if manifest.committed_absent
                    && owned.state != OwnedState::Removing
                    && !options.ending.contains_key(&owned.id)
                    && (a.changes_anything() || matches!(a, Action::Blocked { .. })) =>
            {
                let mut reasons = vec![Reason::CommittedMissing {
                    file: manifest.path.clone(),
                }];
                if let Action::Blocked { reasons: other } = a {
                    reasons.extend(other);
                }
                Some(Action::Blocked { reasons })
            }
            other => other,
        };
        if let Some(action) = action {
            changes.push(Change {
                session: owned.id.clone(),
                branch: owned.branch.clone(),
                path: owned_path(state, owned),
                action,
            });
        }
    }
    changes.retain(|c| options.targets(&c.session));
    changes.sort_by(|a, b| a.session.cmp(&b.session).then_with(|| a.path.cmp(&b.path)));
    exclude_drops(manifest, state, &mut changes);
    name_archives(state, &mut changes);
    let mut housekeeping = housekeeping(manifest, state, &changes);
    // With targets, only their own housekeeping (and what every run needs).
    housekeeping.retain(|step| match step {
        Housekeeping::DropRecord { session, .. } => options.targets(session),
        Housekeeping::EmptyTrash { path } => {
            state.deleting.contains(path)
                || state
                    .owned
                    .sessions
                    .iter()
                    .any(|o| o.trash.as_ref() == Some(path) && options.targets(&o.id))
        }
        Housekeeping::Excludes { .. }
        | Housekeeping::Leftover(_)
        | Housekeeping::FinishMove { .. }
        | Housekeeping::RepairLinks { .. } => true,
    });
    let allocates = changes.iter().any(|c| match &c.action {
        Action::Create { prepare, .. } => !prepare.ports.is_empty(),
        Action::Update { repairs, .. } => repairs.iter().any(|r| matches!(r, Repair::Ports { .. })),
        _ => false,
    });
    Plan {
        changes,
        unmanaged: unmanaged(manifest, state),
        housekeeping,
        force: options.force,
        held_ports: if allocates { held_ports(state) } else { BTreeSet::new() },
    }
}

/// Where each branch is checked out, across every worktree flowloom knows of.
fn checked_out(state: &State) -> BTreeMap<&str, &Path> {
    let mut map: BTreeMap<&str, &Path> = state
        .busy_branches
        .iter()
        .map(|(b, p)| (b.as_str(), p.as_path()))
        .collect();
    for wt in state.worktrees.values() {
        if let Some(b) = &wt.branch {
            map.insert(b.as_str(), wt.path.as_path());
        }
    }
    map
}

/// The planner's questions to the reader, asked before it plans so that it can stay pure:
/// worktrees that would be removed or switched back need a dirty check, worktrees that
/// would be removed a removal check, half-made checkouts their stray files, and branches
/// that would be deleted a merge check.
pub fn questions(manifest: &Manifest, state: &State) -> Needs {
    let mut needs = Needs::default();
    let root = &state.root;
    for session in manifest.sessions.values() {
        let path = root.join(&session.worktree);
        let checks_out = state.worktrees.get(&path).is_none_or(|wt| wt.missing);
        if checks_out && let Ok(start) = start_of(manifest, state, session) {
            needs.checkout.insert(start.commit);
            ask_copy(&mut needs, state, session);
        }
        match move_source(state, session, &path) {
            Some(MoveSource::Found(wt)) => {
                needs.moving.insert(wt.path.clone());
            }
            // A move a kill interrupted before its rename moves the folder still: the
            // processes working there are as much in the way.
            Some(MoveSource::Resumed(m)) => {
                needs.moving.insert(m.from.clone());
            }
            None => {}
        }
        let Some(wt) = state.worktrees.get(&path) else { continue };
        // SPEC §11.3: a session in place gets what its copy lacks: which entries has it?
        if !wt.missing && (!session.environment.copy.is_empty() || state.include.is_some()) {
            ask_copy(&mut needs, state, session);
            needs.copy_settled.insert(path.clone());
        }
        if !wt.missing && wt.branch.is_some() && wt.branch.as_deref() != Some(session.branch.as_str()) {
            needs.dirt.insert(path.clone());
        }
        if let Some(o) = state.owned.by_path(&path)
            && half_made(o, wt)
        {
            needs.stray.insert(path, o.branch.clone());
        }
    }
    for owned in orphans(manifest, root, state) {
        if let Some(wt) = owned_worktree(state, owned)
            && !wt.missing
        {
            needs.dirt.insert(wt.path.clone());
            needs.removal.insert(wt.path.clone());
        }
        if state.branches.contains_key(&owned.branch) {
            needs.unmerged.insert(owned.branch.clone(), owned.base.clone());
        }
    }
    needs
}

/// Ask for the main worktree's ignored entries that `session`'s copy names.
fn ask_copy(needs: &mut Needs, state: &State, session: &Session) {
    if session.environment.copy.is_empty() && state.include.is_none() {
        return;
    }
    let patterns = needs.copy.get_or_insert_with(Vec::new);
    for p in &session.environment.copy {
        if !patterns.contains(p) {
            patterns.push(p.clone());
        }
    }
}

/// Whether the session's `setup` list may run: an empty one always may.
fn trusted(state: &State, session: &Session) -> bool {
    trusts(state, &session.environment)
}

/// Whether this machine trusts an environment's setup and teardown (one trust covers both,
/// with `env`): empty lists need none.
fn trusts(state: &State, env: &crate::manifest::Environment) -> bool {
    !env.runs_commands()
        || state
            .trusted
            .contains(&crate::store::machine::setup_hash(&env.setup_script()))
}

/// SPEC §10 for a new session: the entries to copy are chosen here, from what the reader
/// found ignored in the main worktree, leaving out flowloom's own folders.
fn prepare(state: &State, session: &Session) -> Prepare {
    let env = &session.environment;
    let main = state.main_workdir.as_deref();
    let own = |path: &str| {
        let Some(main) = main else { return true };
        let abs = main.join(path);
        abs.starts_with(&state.root)
            || state.root.starts_with(&abs)
            || path == crate::names::SESSIONS
            || path.starts_with(&format!("{}/", crate::names::SESSIONS))
    };
    let copy = if main.is_some() {
        crate::read::copy::select(&env.copy, state.include.as_deref(), &state.ignored)
            .into_iter()
            .map(CopyItem::from)
            .filter(|item| !own(&item.path))
            .collect()
    } else {
        Vec::new()
    };
    Prepare {
        from: main.map(Path::to_path_buf),
        copy,
        ports: env.ports.clone(),
        env: env.env.clone(),
        setup: env.setup.clone(),
    }
}

/// The ports this repository's sessions hold, by their `metadata.json`.
fn held_ports(state: &State) -> BTreeSet<u16> {
    state
        .worktrees
        .values()
        .filter_map(|wt| match &wt.metadata {
            MetadataFile::Valid(m) => Some(m.ports().into_values()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// A checkout flowloom's own killed apply left half-made: recorded `creating`, locked
/// `initializing`, folder present.
fn half_made(owned: &OwnedSession, wt: &Worktree) -> bool {
    owned.state == OwnedState::Creating && !wt.missing && rules::own_checkout_lock(wt.lock.as_deref())
}

/// Owned sessions that no declared session claims (by worktree path or branch).
pub fn orphans<'a>(manifest: &Manifest, root: &Path, state: &'a State) -> Vec<&'a OwnedSession> {
    let paths: BTreeSet<PathBuf> = manifest.sessions.values().map(|s| root.join(&s.worktree)).collect();
    let branches: BTreeSet<&str> = manifest.sessions.values().map(|s| s.branch.as_str()).collect();
    state
        .owned
        .sessions
        .iter()
        .filter(|o| !paths.contains(&o.path) && !branches.contains(o.branch.as_str()))
        // Inside the root; outside it (a changed `root` left it there, or `git worktree
        // move` took it) only while git registers it there on its branch: a hand-edited
        // record cannot make flowloom touch anything else outside its root (record paths
        // are normalised when read: no `..` survives).
        .filter(|o| {
            (o.path.starts_with(root) && o.path != root)
                || owned_worktree(state, o).is_some_and(|wt| wt.branch.as_deref() == Some(o.branch.as_str()))
        })
        .filter(|o| {
            !o.path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        })
        .collect()
}

fn wanted(session: &Session, path: &Path) -> Wanted {
    Wanted {
        session_id: session.id.clone(),
        purpose: session.purpose.clone(),
        working_directory: path.to_string_lossy().into_owned(),
        git_branch: session.branch.clone(),
        worktree_name: session.worktree.clone(),
    }
}

/// Where a branch for `session` would start (SPEC §6), or why it cannot.
fn start_of(manifest: &Manifest, state: &State, session: &Session) -> Result<Start, Reason> {
    let remote = &manifest.defaults.remote;
    let remote_ref = format!("{remote}/{}", session.branch);
    let remote_commit = state.remote_branches.get(&remote_ref);
    if let crate::read::tracking::AutoSetupMerge::Invalid(value) = &state.auto_setup_merge {
        return Err(Reason::BaseUnresolved {
            base: session.base.clone(),
            why: BaseFailure::BadAutoSetupMerge { value: value.clone() },
        });
    }
    let remote_branch = crate::read::tracking::BaseBranch::Remote(crate::read::tracking::Upstream {
        remote: remote.clone(),
        merge: crate::names::branch_ref(&session.branch),
    });
    let from_remote = |commit: &String| Start {
        from: StartFrom::Remote,
        reference: remote_ref.clone(),
        commit: commit.clone(),
        upstream: tracking::upstream_for(&state.auto_setup_merge, Some(&remote_branch), &session.branch),
    };
    // A killed apply may have made the branch from the remote one but not yet written its
    // upstream: still unmoved, still being created, it is finished as a remote start.
    let path = state.root.join(&session.worktree);
    let creating = state
        .owned
        .by_path(&path)
        .is_some_and(|o| o.state == OwnedState::Creating);
    if let (true, Some(b), Some(commit)) = (creating, state.branches.get(&session.branch), remote_commit)
        && b.upstream.is_none()
        && &b.commit == commit
    {
        return Ok(from_remote(commit));
    }
    if let Some(b) = state.branches.get(&session.branch) {
        return Ok(Start {
            from: StartFrom::Local,
            reference: session.branch.clone(),
            commit: b.commit.clone(),
            upstream: None,
        });
    }
    if let Some(commit) = remote_commit {
        return Ok(from_remote(commit));
    }
    match state.bases.get(&session.base) {
        Some(Ok(commit)) => Ok(Start {
            from: StartFrom::Base,
            reference: session.base.clone(),
            commit: commit.clone(),
            upstream: tracking::upstream_for(
                &state.auto_setup_merge,
                state.base_branches.get(&session.base),
                &session.branch,
            ),
        }),
        Some(Err(why)) => Err(Reason::BaseUnresolved {
            base: session.base.clone(),
            why: why.clone(),
        }),
        None => Err(Reason::BaseUnread {
            base: session.base.clone(),
        }),
    }
}

/// The hooks folder, when a `post-checkout` hook there may run.
fn post_checkout(state: &State) -> Option<crate::hooks::HooksDir> {
    state.hooks.clone().filter(|h| h.may_run("post-checkout"))
}

/// Why checking `start` out for session `id` would go wrong: what git could not write as
/// flowloom writes it, or a file the commit tracks where flowloom keeps the session's own
/// (git checks the committed `sessions/<id>/metadata.json` out; flowloom never overwrites it).
fn checkout_blocker(state: &State, start: &Start, id: &str) -> Option<Reason> {
    if let Some(why) = state.checkout_problems.get(&start.commit) {
        return Some(Reason::CannotCheckOut { why: why.clone() });
    }
    let tracked = state.tracked_session_files.get(&start.commit)?;
    let path = tracked.get(id).or_else(|| tracked.get(""))?;
    Some(Reason::SessionFolderTracked { path: path.clone() })
}

fn blocked(reason: Reason) -> Option<Action> {
    Some(Action::Blocked { reasons: vec![reason] })
}

fn plan_declared(
    manifest: &Manifest,
    state: &State,
    session: &Session,
    path: &Path,
    checked_out: &BTreeMap<&str, &Path>,
) -> Option<Action> {
    let wanted = wanted(session, path);
    let owned = state.owned.by_path(path);
    let base = owned.map_or_else(|| session.base.clone(), |o| o.base.clone());
    let elsewhere = checked_out
        .get(session.branch.as_str())
        .filter(|p| **p != path)
        .map(|p| Reason::BranchCheckedOutElsewhere {
            branch: session.branch.clone(),
            path: p.to_path_buf(),
        });

    if let Some(found) = move_source(state, session, path) {
        return plan_move(manifest, state, session, path, found, wanted, base);
    }
    let Some(wt) = state.worktrees.get(path) else {
        return Some(plan_create(manifest, state, session, path, wanted, elsewhere));
    };

    let half_made = owned.is_some_and(|o| half_made(o, wt));
    // An interrupted removal moved the folder into the trash or had not touched it yet:
    // either way the session is planned as it is found, never wiped.
    let unfinished = owned.is_some_and(|o| o.state != OwnedState::Created);
    if let Some(stray) = wt.stray.as_ref().filter(|s| !s.is_empty() && half_made) {
        return blocked(Reason::HalfMadeHoldsOtherFiles { files: stray.clone() });
    }
    if let Some(why) = &wt.unsafe_session {
        return blocked(Reason::UnsafeSessionFolder { why: why.clone() });
    }
    if let Some(from) = owned
        .and_then(|o| o.trash.as_ref())
        .filter(|t| wt.missing && state.trash.contains(t))
    {
        return Some(Action::Update {
            repairs: vec![Repair::Restore { from: from.clone() }, Repair::FinishRecord],
            wanted,
            base,
        });
    }
    let found = if wt.missing || half_made {
        remake(manifest, state, session, wt, half_made, elsewhere).map(|repairs| (repairs, Vec::new()))
    } else {
        repairs_in_place(manifest, state, session, wt, &wanted, elsewhere)
            .and_then(|repairs| Ok((repairs, copies_and_setup(state, session, wt, owned)?)))
    };
    let (mut repairs, finishing) = match found {
        Ok(found) => found,
        Err(reason) => return blocked(reason),
    };
    repairs.extend(missing_ports(session, wt));
    repairs.extend(finishing);
    if unfinished {
        repairs.push(Repair::FinishRecord);
    }
    (!repairs.is_empty()).then_some(Action::Update { repairs, wanted, base })
}

/// A declared session with no worktree registered at its path: created, unless something
/// is in the way (its branch checked out elsewhere, a folder, an untrusted setup, a start
/// that does not resolve or cannot be checked out).
fn plan_create(
    manifest: &Manifest,
    state: &State,
    session: &Session,
    path: &Path,
    wanted: Wanted,
    elsewhere: Option<Reason>,
) -> Action {
    let mut reasons: Vec<Reason> = elsewhere.into_iter().collect();
    if state.occupied.contains(path) {
        reasons.push(Reason::FolderInTheWay { path: path.to_owned() });
    }
    if !trusted(state, session) {
        reasons.push(Reason::SetupNotTrusted {
            script: session.environment.setup_script(),
        });
    }
    match start_of(manifest, state, session) {
        Ok(start) if checkout_blocker(state, &start, &session.id).is_some() => Action::Blocked {
            reasons: checkout_blocker(state, &start, &session.id).into_iter().collect(),
        },
        Ok(start) if reasons.is_empty() => Action::Create {
            start,
            wanted,
            base: session.base.clone(),
            post_checkout: post_checkout(state),
            prepare: prepare(state, session),
        },
        Ok(_) => Action::Blocked { reasons },
        Err(why) => {
            reasons.push(why);
            Action::Blocked { reasons }
        }
    }
}

/// A registered worktree whose folder is gone, or that a killed apply left half-made: its
/// checkout made again (reset: over the half-made one), with metadata and artifacts.
fn remake(
    manifest: &Manifest,
    state: &State,
    session: &Session,
    wt: &Worktree,
    half_made: bool,
    elsewhere: Option<Reason>,
) -> Result<Vec<Repair>, Reason> {
    if let Some(lock) = rules::blocking_lock(wt.lock.as_deref(), half_made) {
        return Err(Reason::LockedWithFolderGone { lock: lock.to_owned() });
    }
    if let Some(why) = elsewhere {
        return Err(why);
    }
    let start = start_of(manifest, state, session)?;
    if let Some(reason) = checkout_blocker(state, &start, &session.id) {
        return Err(reason);
    }
    if !trusted(state, session) {
        return Err(Reason::SetupNotTrusted {
            script: session.environment.setup_script(),
        });
    }
    Ok(vec![
        Repair::Worktree {
            start,
            reset: half_made,
            post_checkout: post_checkout(state),
            prepare: prepare(state, session),
        },
        Repair::Metadata { old: None, new: None },
        Repair::Artifacts,
    ])
}

/// The ports the session declares that its metadata does not hold yet.
fn missing_ports(session: &Session, wt: &Worktree) -> Option<Repair> {
    let held = match &wt.metadata {
        MetadataFile::Valid(found) if !wt.missing => found.ports(),
        _ => BTreeMap::new(),
    };
    let names: Vec<String> = session
        .environment
        .ports
        .iter()
        .filter(|name| !held.contains_key(*name))
        .cloned()
        .collect();
    (!names.is_empty()).then_some(Repair::Ports { names })
}

/// An orphan whose worktree is in the trash and changed since it was checked. Moved back
/// only while its registration waits for it: a folder no registration points at any more
/// would come back as a folder that is not a worktree (SPEC §11.4).
fn changed_in_trash(owned: &OwnedSession, wt: Option<&Worktree>, from: &Path) -> Action {
    if wt.is_some_and(|wt| wt.missing) {
        return Action::Restore {
            from: from.to_owned(),
            base: owned.base.clone(),
        };
    }
    Action::Blocked {
        reasons: vec![Reason::NewSincePlan {
            files: vec![format!(
                "(the folder {} changed in the trash after its registration was dropped)",
                from.display()
            )],
        }],
    }
}

/// What deleting an orphan's branch would lose: its commits the base (or its upstream) does
/// not reach, unless the base integrated them; gives the integration that vouches for it.
fn branch_loss(owned: &OwnedSession, b: &Branch, loss: &mut Loss) -> Option<crate::read::inspect::Integration> {
    match b.unmerged.map(|n| rules::merge(n, || b.integrated)) {
        Some(rules::Merge::Merged) => None,
        Some(rules::Merge::Integrated(how)) => Some(how),
        Some(rules::Merge::Unmerged(n)) => {
            loss.reasons.push(Reason::Unmerged {
                branch: owned.branch.clone(),
                count: n,
                base: owned.base.clone(),
                upstream: b.upstream.as_ref().map(|(u, _)| u.clone()),
            });
            loss.keep.push(b.commit.clone());
            loss.commits += n;
            None
        }
        None => {
            loss.reasons.push(Reason::UnmergedUnchecked {
                branch: owned.branch.clone(),
            });
            None
        }
    }
}

/// How an orphan's worktree goes: its trashed folder finished, a registration whose folder is
/// gone pruned, or the worktree removed.
fn worktree_removal(wt: Option<&Worktree>, trashed: Option<&PathBuf>, half_made: bool) -> WorktreeRemoval {
    match wt {
        Some(wt) if wt.missing && trashed.is_some() => WorktreeRemoval::Trashed {
            admin_id: wt.admin_id.clone(),
            trash: trashed.cloned().unwrap_or_default(),
            half_made: rules::own_checkout_lock(wt.lock.as_deref()),
        },
        Some(wt) if wt.missing => WorktreeRemoval::Prune {
            admin_id: wt.admin_id.clone(),
        },
        Some(wt) => WorktreeRemoval::Remove {
            admin_id: wt.admin_id.clone(),
            half_made,
        },
        None => WorktreeRemoval::None,
    }
}

/// Where a declared session's worktree is when it is not at its path: a move a killed
/// apply started towards it, or its owned worktree at another path (a changed `root` or
/// `worktree` template), with the registration there.
enum MoveSource<'a> {
    Resumed(&'a crate::store::ownership::Moving),
    Found(&'a Worktree),
}

fn move_source<'a>(state: &'a State, session: &Session, path: &Path) -> Option<MoveSource<'a>> {
    if state.worktrees.get(path).is_some_and(|wt| !wt.missing) {
        return None;
    }
    if let Some(m) = state.owned.moving.iter().find(|m| m.to == path) {
        return Some(MoveSource::Resumed(m));
    }
    state
        .owned
        .sessions
        .iter()
        .filter(|o| o.id == session.id && o.branch == session.branch && o.path != path)
        .find_map(|o| state.worktrees.get(&o.path).or(state.elsewhere.get(&o.path)))
        .filter(|wt| !wt.missing)
        .or_else(|| {
            let owned = state
                .owned
                .sessions
                .iter()
                .find(|o| o.id == session.id && o.branch == session.branch && o.path == path)?;
            moved_by_git(state, owned)
        })
        .map(MoveSource::Found)
}

/// The owned session's worktree that `git worktree move` took elsewhere: git keeps the
/// registration's name (the folder name flowloom gave it), so it is the worktree
/// registered under that name, on the session's branch, at another path that no other
/// entry of the record claims.
fn moved_by_git<'a>(state: &'a State, owned: &OwnedSession) -> Option<&'a Worktree> {
    let name = owned.path.file_name()?.to_str()?;
    state.worktrees.values().chain(state.elsewhere.values()).find(|wt| {
        !wt.missing
            && wt.path != owned.path
            && wt.admin_id == name
            && wt.branch.as_deref() == Some(&owned.branch)
            && state.owned.by_path(&wt.path).is_none()
    })
}

/// Where an owned session's worktree is: registered at its recorded path (inside the root
/// or not), else where `git worktree move` took it (SPEC §3: the record is what flowloom
/// owns, wherever git says it now lies).
pub fn owned_worktree<'a>(state: &'a State, owned: &OwnedSession) -> Option<&'a Worktree> {
    state
        .worktrees
        .get(&owned.path)
        .or_else(|| state.elsewhere.get(&owned.path))
        .or_else(|| moved_by_git(state, owned))
}

/// The path an owned session's plan and status name: where its worktree is now.
pub fn owned_path(state: &State, owned: &OwnedSession) -> PathBuf {
    owned_worktree(state, owned).map_or_else(|| owned.path.clone(), |wt| wt.path.clone())
}

/// SPEC §11.3: move a session's worktree to its declared path, unless something forbids
/// it: a lock, a process working inside, flowloom started inside it, the path taken.
fn plan_move(
    manifest: &Manifest,
    state: &State,
    session: &Session,
    path: &Path,
    found: MoveSource<'_>,
    wanted: Wanted,
    base: String,
) -> Option<Action> {
    let wt = match found {
        MoveSource::Resumed(m) => {
            // Still at `from` (registered, there): the rename is still to come, and what
            // blocks a move blocks it. Once at `to`, only the registration is left.
            if let Some(wt) = state
                .worktrees
                .get(&m.from)
                .or(state.elsewhere.get(&m.from))
                .filter(|wt| !wt.missing)
            {
                let reasons = move_blockers(state, wt, None);
                if !reasons.is_empty() {
                    return Some(Action::Blocked { reasons });
                }
            }
            let repairs = vec![Repair::Move {
                from: m.from.clone(),
                admin_id: m.admin_id.clone(),
                across: false,
                resumed: true,
            }];
            return Some(Action::Update { repairs, wanted, base });
        }
        MoveSource::Found(wt) => wt,
    };
    let reasons = move_blockers(state, wt, Some(path));
    if !reasons.is_empty() {
        return Some(Action::Blocked { reasons });
    }
    let mut repairs = vec![Repair::Move {
        from: wt.path.clone(),
        admin_id: wt.admin_id.clone(),
        across: wt.device.is_none() || wt.device != state.root_device,
        resumed: false,
    }];
    // What else the session needs, judged on the worktree as it is; metadata's
    // `workingDirectory` is the move's own.
    let moved = Worktree {
        path: path.to_owned(),
        ..wt.clone()
    };
    match repairs_in_place(manifest, state, session, &moved, &wanted, None) {
        Ok(found) => repairs.extend(
            found
                .into_iter()
                .filter(|r| !matches!(r, Repair::Metadata { old: Some(_), .. })),
        ),
        Err(reason) => return blocked(reason),
    }
    Some(Action::Update { repairs, wanted, base })
}

/// What forbids moving `wt` (to `to`, when the target is still to check): a lock, a
/// process working inside, flowloom started inside it, the target taken.
fn move_blockers(state: &State, wt: &Worktree, to: Option<&Path>) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if let Some(lock) = &wt.lock {
        reasons.push(Reason::Locked { lock: lock.clone() });
    }
    for p in &wt.processes {
        reasons.push(Reason::Process {
            pid: p.pid,
            name: p.name.clone(),
            uses: p.uses.clone(),
        });
    }
    if state.current_worktree.as_deref() == Some(wt.path.as_path()) {
        reasons.push(Reason::StartedInside);
    }
    if let Some(to) = to.filter(|to| state.occupied.contains(*to)) {
        reasons.push(Reason::FolderInTheWay { path: to.to_owned() });
    }
    reasons
}

/// SPEC §11.3 for a session in place: the copy and setup a creation did not finish (a kill,
/// Ctrl-C, a failed command), or else the `copy` entries it lacks. A creation killed before
/// its metadata recorded anything (still `creating`) has finished nothing.
fn copies_and_setup(
    state: &State,
    session: &Session,
    wt: &Worktree,
    owned: Option<&OwnedSession>,
) -> Result<Vec<Repair>, Reason> {
    let creating = owned.is_some_and(|o| o.state == OwnedState::Creating);
    let progress = match &wt.metadata {
        MetadataFile::Valid(m) if m.records_setup() => Some(m.setup_progress()),
        MetadataFile::Valid(_) | MetadataFile::Missing if creating => Some(SetupProgress::started()),
        _ => None,
    };
    let prepare = prepare(state, session);
    let Some(progress) = progress.filter(|p| p.state != SetupState::Ok) else {
        return Ok(late_copies(wt, prepare).into_iter().collect());
    };
    let mut steps = Vec::new();
    let copying = !progress.copied && !prepare.copy.is_empty();
    if let (true, Some(from)) = (copying, prepare.from.clone()) {
        steps.push(Repair::Copies {
            from,
            items: prepare.copy.clone(),
            kept: Vec::new(),
            finishing: true,
        });
    }
    let commands = progress.remaining(&prepare.setup).to_vec();
    if !commands.is_empty() && !trusted(state, session) {
        return Err(Reason::SetupNotTrusted {
            script: session.environment.setup_script(),
        });
    }
    let recorded = matches!(&wt.metadata, MetadataFile::Valid(m) if m.records_setup());
    if recorded || !steps.is_empty() || !commands.is_empty() {
        steps.push(Repair::RunSetup {
            commands,
            done: progress.done,
            env: prepare.env,
            copied: !copying,
        });
    }
    Ok(steps)
}

/// SPEC §11.3: the `copy` entries a finished session lacks (added since it was made), and
/// those it has, which stay as they are.
fn late_copies(wt: &Worktree, prepare: Prepare) -> Option<Repair> {
    let settled = wt.copy_settled.as_ref()?;
    let from = prepare.from?;
    let (kept, items): (Vec<_>, Vec<_>) = prepare.copy.into_iter().partition(|i| settled.contains(&i.path));
    (!items.is_empty()).then(|| Repair::Copies {
        from,
        items,
        kept: kept.into_iter().map(|i| i.path).collect(),
        finishing: false,
    })
}

/// Drift of a declared session whose worktree is in place: another branch checked out,
/// metadata missing or outdated, the artifacts folder missing.
fn repairs_in_place(
    manifest: &Manifest,
    state: &State,
    session: &Session,
    wt: &Worktree,
    wanted: &Wanted,
    elsewhere: Option<Reason>,
) -> Result<Vec<Repair>, Reason> {
    let mut repairs = Vec::new();
    if wt.branch.as_deref() != Some(session.branch.as_str()) {
        let repair = switch_back(manifest, state, session, wt, elsewhere).map_err(|why| Reason::SwitchBack {
            from: wt.branch.clone(),
            to: session.branch.clone(),
            path: wt.path.clone(),
            why,
        })?;
        repairs.push(repair);
    }
    match &wt.metadata {
        MetadataFile::Missing => repairs.push(Repair::Metadata { old: None, new: None }),
        MetadataFile::Invalid(why) => {
            return Err(Reason::MetadataInvalid {
                id: session.id.clone(),
                why: why.clone(),
            });
        }
        MetadataFile::Valid(found) if !wanted.matches(found) => repairs.push(Repair::Metadata {
            old: Some(found.text.clone()),
            new: Some(wanted.update(found)),
        }),
        MetadataFile::Valid(_) => {}
    }
    if !wt.has_artifacts {
        repairs.push(Repair::Artifacts);
    }
    Ok(repairs)
}

/// A worktree checked out on another branch goes back to its session's branch only when
/// that loses nothing: it is on a branch (which keeps its commits), and it is clean.
fn switch_back(
    manifest: &Manifest,
    state: &State,
    session: &Session,
    wt: &Worktree,
    elsewhere: Option<Reason>,
) -> Result<Repair, SwitchBlock> {
    let Some(from) = wt.branch.clone() else {
        return Err(SwitchBlock::Detached);
    };
    if let Some(Reason::BranchCheckedOutElsewhere { path, .. }) = elsewhere {
        return Err(SwitchBlock::CheckedOutElsewhere { path });
    }
    // A switch back that a kill interrupted leaves changes of its own; they do not count
    // when every one of them is (`State::answer` checked the contents).
    let finishing = wt.switching_to.as_deref() == Some(session.branch.as_str()) && wt.switch_resumable;
    match &wt.dirt {
        Some(dirt) if dirt.is_clean_tracked() || finishing => {}
        Some(_) => return Err(SwitchBlock::Uncommitted),
        None => return Err(SwitchBlock::Unchecked),
    }
    let start = start_of(manifest, state, session).map_err(|reason| SwitchBlock::Start {
        reason: Box::new(reason),
    })?;
    Ok(Repair::SwitchBranch { from, start })
}

fn plan_orphan(
    state: &State,
    owned: &OwnedSession,
    checked_out: &BTreeMap<&str, &Path>,
    options: &Options,
    environment: &crate::manifest::Environment,
) -> Option<Action> {
    let wt: Option<&Worktree> = owned_worktree(state, owned);
    let path = wt.map_or(owned.path.as_path(), |wt| wt.path.as_path());
    let branch = state.branches.get(&owned.branch);
    // Its worktree is in the trash: changed since it was checked, it goes back (and the next
    // plan judges it afresh); exactly as checked, its removal is finished below.
    let trashed = owned.trash.as_ref().filter(|t| state.trash.contains(t));
    if let Some(from) = trashed.filter(|t| !state.trash_intact.contains(*t)) {
        return Some(changed_in_trash(owned, wt, from));
    }
    if wt.is_none() && branch.is_none() {
        return None;
    }
    let half_made = wt.is_some_and(|wt| half_made(owned, wt));
    let mut loss = match wt {
        Some(wt) => worktree_loss(state, owned, wt, half_made),
        None => Loss::default(),
    };
    // The branch goes with the session only when flowloom created it (SPEC §11.2), no
    // other worktree has it checked out, and never when it is what sessions start from.
    let is_a_base = state.bases.contains_key(&owned.branch);
    let delete_branch = branch.filter(|_| {
        owned.branch_created && !is_a_base && checked_out.get(owned.branch.as_str()).is_none_or(|p| *p == path)
    });
    let integrated = delete_branch.and_then(|b| branch_loss(owned, b, &mut loss));
    let worktree = worktree_removal(wt, trashed, half_made);
    let forced = !loss.reasons.is_empty() && options.force && loss.reasons.iter().all(Reason::forceable);
    // Only the branch holds unmerged work: the worktree can go, the branch stays.
    let only_branch = !loss.reasons.is_empty() && loss.reasons.iter().all(|r| matches!(r, Reason::Unmerged { .. }));
    // SPEC §11.3: a worktree that is there and goes runs the teardown first (a checkout a
    // killed apply left half-made never ran its setup).
    let teardown = match (&worktree, loss.reasons.is_empty() || forced || only_branch) {
        (WorktreeRemoval::Remove { half_made: false, .. }, true) => {
            match teardown_of(state, owned, wt, environment, options.force) {
                Ok(teardown) => teardown,
                Err(reason) => {
                    loss.reasons.push(reason);
                    return Some(Action::Blocked { reasons: loss.reasons });
                }
            }
        }
        _ => None,
    };
    if only_branch && !forced {
        return Some(Action::Retain {
            removal: Removal {
                worktree,
                delete_branch: None,
                integrated: None,
                archive: None,
                discard: Vec::new(),
                base: owned.base.clone(),
                exclude_drop: Vec::new(),
                teardown,
            },
            reasons: loss.reasons,
        });
    }
    if !loss.reasons.is_empty() && !forced {
        return Some(Action::Blocked { reasons: loss.reasons });
    }
    let archive = if forced {
        match archive_for(wt.and_then(|wt| wt.head.clone()), &mut loss) {
            Ok(archive) => archive,
            Err(reason) => return Some(Action::Blocked { reasons: vec![reason] }),
        }
    } else {
        None
    };
    Some(Action::Remove(Removal {
        worktree,
        delete_branch: delete_branch.map(|b| b.commit.clone()),
        integrated,
        archive,
        discard: if forced { loss.discard } else { Vec::new() },
        base: owned.base.clone(),
        exclude_drop: Vec::new(),
        teardown,
    }))
}

/// SPEC §11.3: the teardown an orphan's removal runs, from `environment` (its declaration
/// when the command drops it, else `[defaults]`), with its variables expanded (its ports
/// from its `metadata.json`); blocked when this machine does not trust it.
fn teardown_of(
    state: &State,
    owned: &OwnedSession,
    wt: Option<&Worktree>,
    environment: &crate::manifest::Environment,
    force: bool,
) -> Result<Option<Teardown>, Reason> {
    if environment.teardown.is_empty() {
        return Ok(None);
    }
    if !trusts(state, environment) {
        return Err(Reason::TeardownNotTrusted {
            script: environment.setup_script(),
        });
    }
    let ports = match wt.map(|wt| &wt.metadata) {
        Some(MetadataFile::Valid(m)) => m.ports(),
        _ => BTreeMap::new(),
    };
    let worktree = wt
        .map_or(owned.path.as_path(), |wt| wt.path.as_path())
        .to_string_lossy();
    let vars = crate::manifest::environment::variables(
        environment,
        &crate::manifest::environment::Values {
            id: &owned.id,
            branch: &owned.branch,
            worktree: &worktree,
            ports: &ports,
        },
    );
    Ok(Some(Teardown {
        commands: environment.teardown.clone(),
        vars,
        go_on: force,
    }))
}

/// What removing an orphan would lose, and why that blocks it.
#[derive(Default)]
struct Loss {
    reasons: Vec<Reason>,
    /// Files whose changes would be lost (relative to the worktree).
    discard: Vec<String>,
    /// Commits to keep in an archive, and how many commits only they hold.
    keep: Vec<String>,
    commits: usize,
}

/// What deleting an orphan's worktree would lose (SPEC §7): files, session files,
/// detached commits; and what forbids it outright: a lock, a submodule, a process, the
/// worktree flowloom runs in (`rules::removal_blockers`, which apply checks again with).
fn worktree_loss(state: &State, owned: &OwnedSession, wt: &Worktree, half_made: bool) -> Loss {
    let facts = worktree_facts(state, wt, half_made);
    let mut loss = Loss {
        reasons: rules::removal_blockers(&facts, &owned.id, None),
        ..Loss::default()
    };
    if let Some((head, Some(n))) = facts.detached
        && n > 0
    {
        loss.keep.push(head);
        loss.commits += n;
    }
    if let Some(dirt) = &wt.dirt {
        loss.discard = dirt.all_paths();
    }
    loss
}

/// What the reader found in an orphan's worktree, as the removal rules take it.
fn worktree_facts(state: &State, wt: &Worktree, half_made: bool) -> rules::WorktreeFacts {
    rules::WorktreeFacts {
        lock: wt.lock.clone(),
        half_made,
        started_inside: state.current_worktree.as_deref() == Some(wt.path.as_path()),
        submodule: wt.submodule.clone(),
        foreign_git: wt.foreign_git.clone(),
        nested: wt.nested.clone(),
        processes: wt.processes.clone(),
        detached: wt.detached.clone().map(|head| (head, wt.unreachable)),
        dirt: wt.dirt.clone(),
        unreadable: wt.unreadable.clone(),
        missing: wt.missing,
    }
}

/// Where a forced removal keeps what it would lose: the worktree's files committed on top
/// of its `HEAD`, a detached `HEAD`'s commits, the branch's unmerged commits; all under one
/// archive ref. `None` when nothing needs keeping.
fn archive_for(head: Option<String>, loss: &mut Loss) -> Result<Option<Archive>, Reason> {
    let snapshot = match (&head, loss.discard.is_empty()) {
        (_, true) => None,
        (Some(head), false) => Some(head.clone()),
        (None, false) => {
            return Err(Reason::Unreadable {
                why: "its HEAD does not name a commit to keep its uncommitted files on".to_owned(),
            });
        }
    };
    if let Some(s) = &snapshot
        && !loss.keep.contains(s)
    {
        loss.keep.insert(0, s.clone());
    }
    if loss.keep.is_empty() {
        return Ok(None);
    }
    let keep = std::mem::take(&mut loss.keep);
    // Named once the whole plan is known (`name_archives`): two archives of one plan never
    // share a name.
    Ok(Some(Archive {
        reference: String::new(),
        keep,
        commits: loss.commits,
        snapshot,
    }))
}

/// SPEC §11.4: archive refs never clash. Each archive gets a folder of its own,
/// `refs/flowloom/archive/<n>/<branch>`, `<n>` one more than the largest number already
/// used: `feat` and `feat/x` can both be archived (`…/1/feat`, `…/2/feat/x`, where
/// `…/feat` beside `…/feat/x` is a file/folder clash git refuses), and a second archive of
/// a branch never overwrites the first. Names of the first version (`…/archive/<branch>`,
/// `…/<branch>-2`) stay as they are and are read as archives too. An archive an earlier,
/// interrupted run already wrote for exactly these commits is reused.
fn name_archives(state: &State, changes: &mut [Change]) {
    let prefix = crate::names::ARCHIVE_PREFIX;
    let first_parts: BTreeSet<&str> = state
        .archives
        .keys()
        .filter_map(|name| name.strip_prefix(prefix)?.split('/').next())
        .collect();
    let mut next = first_parts
        .iter()
        .filter_map(|part| part.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    for change in changes {
        let Action::Remove(Removal {
            archive: Some(archive), ..
        }) = &mut change.action
        else {
            continue;
        };
        let reusable = match (&archive.snapshot, archive.keep.as_slice()) {
            (None, [only]) => state
                .archives
                .iter()
                .find(|(name, commit)| *commit == only && archived_branch(name) == Some(change.branch.as_str()))
                .map(|(name, _)| name.clone()),
            _ => None,
        };
        if let Some(name) = reusable {
            archive.reference = name;
            continue;
        }
        next += 1;
        while first_parts.contains(next.to_string().as_str()) {
            next += 1;
        }
        archive.reference = crate::names::archive_ref(next, &change.branch);
    }
}

/// The branch an archive ref keeps, by its name: `…/archive/<n>/<branch>`, or the first
/// version's `…/archive/<branch>` (its `-2`, `-3`… names are not told apart from branches
/// that end so, and are never reused).
fn archived_branch(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(crate::names::ARCHIVE_PREFIX)?;
    match rest.split_once('/') {
        Some((n, branch)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Some(branch),
        _ => Some(rest),
    }
}

/// For each removal, the exclude lines no session that stays needs.
fn exclude_drops(manifest: &Manifest, state: &State, changes: &mut [Change]) {
    let removed: BTreeSet<PathBuf> = changes
        .iter()
        .filter(|c| matches!(c.action, Action::Remove(_) | Action::Retain { .. }))
        .map(|c| c.path.clone())
        .collect();
    let top = state.main_workdir.as_deref();
    let staying: Vec<(&str, String)> = hidden_sessions(manifest, state, changes)
        .into_iter()
        .filter(|(_, _, path)| !removed.contains(path))
        .map(|(id, folder, _)| (id, folder))
        .collect();
    let kept: BTreeSet<String> =
        crate::store::exclude::wanted(top, &state.root, staying.iter().map(|(i, w)| (*i, w.as_str())))
            .into_iter()
            .collect();
    for change in changes {
        let folder = folder_name(&change.path);
        // An orphan outside the root has its lines where it lies (`staying_elsewhere`).
        let parent = match change.path.parent() {
            Some(parent) if !change.path.starts_with(&state.root) => parent,
            _ => state.root.as_path(),
        };
        if let Action::Remove(r) | Action::Retain { removal: r, .. } = &mut change.action {
            r.exclude_drop = crate::store::exclude::wanted(top, parent, [(change.session.as_str(), folder.as_str())])
                .into_iter()
                .filter(|l| !kept.contains(l))
                .collect();
        }
    }
}

/// The sessions whose paths flowloom's excludes hide while apply runs: those with a
/// worktree, or about to get one (a blocked creation hides nothing): (id, folder, path).
fn hidden_sessions<'a>(
    manifest: &'a Manifest,
    state: &'a State,
    changes: &[Change],
) -> Vec<(&'a str, String, PathBuf)> {
    let creating: BTreeSet<&Path> = changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create { .. }) || moved_from(c).is_some())
        .map(|c| c.path.as_path())
        .collect();
    let moving_from: BTreeSet<&Path> = changes.iter().filter_map(moved_from).collect();
    let mut sessions = Vec::new();
    for s in manifest.sessions.values() {
        let path = state.root.join(&s.worktree);
        if state.worktrees.contains_key(&path) || creating.contains(path.as_path()) {
            sessions.push((s.id.as_str(), s.worktree.clone(), path));
        }
    }
    for o in &state.owned.sessions {
        // A session's lines stay while its worktree does (a retained branch has none).
        if state.worktrees.contains_key(&o.path) && !moving_from.contains(o.path.as_path()) {
            sessions.push((o.id.as_str(), folder_name(&o.path), o.path.clone()));
        }
    }
    sessions
}

/// SPEC §11.3: the lines of owned worktrees a changed `root` left outside it and that this
/// plan does not move (blocked): hidden where they are until they move.
fn staying_elsewhere(state: &State, changes: &[Change]) -> Vec<String> {
    let moving: BTreeSet<&Path> = changes.iter().filter_map(moved_from).collect();
    state
        .elsewhere
        .values()
        .filter(|wt| !wt.missing && !moving.contains(wt.path.as_path()))
        .filter_map(|wt| {
            let id = state.owned.by_path(&wt.path)?.id.as_str();
            let parent = wt.path.parent()?;
            Some(crate::store::exclude::wanted(
                state.main_workdir.as_deref(),
                parent,
                [(id, folder_name(&wt.path).as_str())],
            ))
        })
        .flatten()
        .collect()
}

/// Where a change moves its worktree from (SPEC §11.3).
fn moved_from(change: &Change) -> Option<&Path> {
    match &change.action {
        Action::Update { repairs, .. } => repairs.iter().find_map(|r| match r {
            Repair::Move { from, .. } => Some(from.as_path()),
            _ => None,
        }),
        _ => None,
    }
}

fn folder_name(path: &Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Steps outside any session: `info/exclude`, what a killed apply left, the trash of an
/// interrupted removal, ownership entries of sessions that are gone.
fn housekeeping(manifest: &Manifest, state: &State, changes: &[Change]) -> Vec<Housekeeping> {
    let mut steps: Vec<Housekeeping> = state.leftovers.iter().cloned().map(Housekeeping::Leftover).collect();
    // Every session that exists when apply starts keeps its lines until it is gone: a
    // removal drops its own lines once it is done (`Removal::exclude_drop`), so one blocked
    // at the last moment stays hidden.
    let sessions: Vec<(&str, String)> = hidden_sessions(manifest, state, changes)
        .into_iter()
        .map(|(id, folder, _)| (id, folder))
        .collect();
    let mut new = crate::store::exclude::wanted(
        state.main_workdir.as_deref(),
        &state.root,
        sessions.iter().map(|(id, wt)| (*id, wt.as_str())),
    );
    new.extend(staying_elsewhere(state, changes));
    new.sort();
    new.dedup();
    if new != state.exclude.lines || state.exclude.legacy {
        steps.push(Housekeeping::Excludes {
            old: state.exclude.lines.clone(),
            new,
            legacy: if state.exclude.legacy {
                crate::store::exclude::legacy_lines(state.main_workdir.as_deref(), &state.root)
            } else {
                Vec::new()
            },
        });
    }
    // A folder in the trash goes, unless a declared session takes it back.
    let restored: BTreeSet<&PathBuf> = changes
        .iter()
        .filter_map(|c| match &c.action {
            Action::Update { repairs, .. } => repairs.iter().find_map(|r| match r {
                Repair::Restore { from } => Some(from),
                _ => None,
            }),
            _ => None,
        })
        .collect();
    // Only a folder compared after its move, whose registration is gone, is deleted.
    steps.extend(
        state
            .owned
            .sessions
            .iter()
            .filter(|o| !state.worktrees.contains_key(&o.path))
            .filter_map(|o| o.trash.as_ref())
            .filter(|t| state.trash_intact.contains(*t) && !restored.contains(t))
            .map(|path| Housekeeping::EmptyTrash { path: path.clone() }),
    );
    // A deletion that started is finished, whatever is left of the folder.
    steps.extend(
        state
            .deleting
            .iter()
            .map(|path| Housekeeping::EmptyTrash { path: path.clone() }),
    );
    // Links a moved folder broke: repaired before anything else reads the worktrees.
    steps.extend(state.broken_links.iter().map(|r| Housekeeping::RepairLinks {
        admin_id: r.admin_id.clone(),
        from: r.from.clone(),
        to: r.to.clone(),
    }));
    // An orphan that `git worktree move` took elsewhere: its ownership entry follows it
    // before it is removed there (git wrote the links already).
    steps.extend(orphans(manifest, &state.root, state).into_iter().filter_map(|o| {
        let wt = owned_worktree(state, o).filter(|wt| wt.path != o.path)?;
        Some(Housekeeping::RepairLinks {
            admin_id: wt.admin_id.clone(),
            from: o.path.clone(),
            to: wt.path.clone(),
        })
    }));
    // A move a kill interrupted: finished (or forgotten, when its folder had not moved).
    steps.extend(state.owned.moving.iter().map(|m| Housekeeping::FinishMove {
        admin_id: m.admin_id.clone(),
        from: m.from.clone(),
        to: m.to.clone(),
    }));
    for o in &state.owned.sessions {
        let gone = owned_worktree(state, o).is_none() && !state.branches.contains_key(&o.branch);
        if gone {
            steps.push(Housekeeping::DropRecord {
                session: o.id.clone(),
                path: o.path.clone(),
            });
        }
    }
    steps
}

fn unmanaged(manifest: &Manifest, state: &State) -> Vec<Unmanaged> {
    let declared_paths: BTreeSet<PathBuf> = manifest
        .sessions
        .values()
        .map(|s| state.root.join(&s.worktree))
        .collect();
    let declared_branches: BTreeSet<&str> = manifest.sessions.values().map(|s| s.branch.as_str()).collect();
    let owned_branches: BTreeSet<&str> = state.owned.sessions.iter().map(|o| o.branch.as_str()).collect();
    let worktree_branches: BTreeSet<&str> = state.worktrees.values().filter_map(|wt| wt.branch.as_deref()).collect();
    // Owned worktrees that `git worktree move` took elsewhere are moved back (or removed,
    // when orphans), never unmanaged.
    let moved: BTreeSet<&Path> = state
        .owned
        .sessions
        .iter()
        .filter_map(|o| moved_by_git(state, o))
        .map(|wt| wt.path.as_path())
        .collect();
    let mut out = Vec::new();
    let mut listed_branches = BTreeSet::new();
    for wt in state.worktrees.values() {
        if declared_paths.contains(&wt.path)
            || state.owned.by_path(&wt.path).is_some()
            || moved.contains(wt.path.as_path())
        {
            continue;
        }
        if let Some(b) = &wt.branch {
            listed_branches.insert(b.as_str());
        }
        let folder = wt
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push(Unmanaged {
            session: wt.session_id.clone().unwrap_or(folder),
            branch: wt.branch.clone(),
            path: Some(wt.path.clone()),
        });
    }
    for b in state.branches.keys() {
        if declared_branches.contains(b.as_str())
            || owned_branches.contains(b.as_str())
            || listed_branches.contains(b.as_str())
        {
            continue;
        }
        // Checked out in an owned or declared worktree: that session covers it.
        if worktree_branches.contains(b.as_str()) {
            continue;
        }
        if let Some(id) = manifest.defaults.branch.match_id(b) {
            out.push(Unmanaged {
                session: id.to_owned(),
                branch: Some(b.clone()),
                path: None,
            });
        }
    }
    out.sort_by(|a, b| a.session.cmp(&b.session).then_with(|| a.path.cmp(&b.path)));
    out
}

pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else if ["s", "x", "z", "ch", "sh"].iter().any(|end| word.ends_with(end)) {
        format!("{word}es")
    } else {
        format!("{word}s")
    }
}

#[cfg(test)]
mod tests {
    //! Property tests: plans are deterministic, and carrying a plan out (modelled on plain
    //! values, as apply does it on disk) then planning again leaves nothing to do.
    use super::*;
    use crate::read::state::{Branch, Dirt};
    use crate::store::metadata::Metadata;
    use crate::store::ownership::Record;
    use proptest::prelude::*;

    const IDS: [&str; 4] = ["a", "b", "c", "d"];
    const COMMIT: &str = "1111111111111111111111111111111111111111";

    #[derive(Debug, Clone)]
    struct Case {
        declared: Vec<Option<String>>, // per id: declared with this purpose?
        sessions: Vec<SessionState>,
    }

    #[derive(Debug, Clone)]
    struct SessionState {
        worktree: u8, // 0 none, 1 present, 2 folder gone
        branch: bool,
        owned: Option<OwnedState>,
        dirty: bool,
        unmerged: usize,
        metadata: u8, // 0 missing, 1 matching, 2 other purpose
        locked: bool,
        on_other_branch: bool,
    }

    fn session_state() -> impl Strategy<Value = SessionState> {
        (
            0u8..3,
            any::<bool>(),
            prop_oneof![
                Just(None),
                Just(Some(OwnedState::Created)),
                Just(Some(OwnedState::Creating)),
                Just(Some(OwnedState::Removing))
            ],
            any::<bool>(),
            0usize..2,
            0u8..3,
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.2),
        )
            .prop_map(
                |(worktree, branch, owned, dirty, unmerged, metadata, locked, on_other_branch)| SessionState {
                    worktree,
                    branch: branch || worktree > 0,
                    owned,
                    dirty,
                    unmerged,
                    metadata,
                    locked,
                    on_other_branch,
                },
            )
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            prop::collection::vec(
                prop::option::of(prop_oneof![Just("one".to_owned()), Just("two".to_owned())]),
                4,
            ),
            prop::collection::vec(session_state(), 4),
        )
            .prop_map(|(declared, sessions)| Case { declared, sessions })
    }

    fn manifest(case: &Case) -> Manifest {
        let mut text = String::new();
        for (id, purpose) in IDS.iter().zip(&case.declared) {
            if let Some(p) = purpose {
                text.push_str(&format!("[sessions.{id}]\npurpose = \"{p}\"\n"));
            }
        }
        Manifest::from_source(Path::new("/repo/flowloom.toml"), text).expect("generated manifests are valid")
    }

    fn metadata_for(id: &str, purpose: &str, path: &Path) -> MetadataFile {
        let w = Wanted {
            session_id: id.to_owned(),
            purpose: purpose.to_owned(),
            working_directory: path.to_string_lossy().into_owned(),
            git_branch: format!("session/{id}"),
            worktree_name: format!("shell-instance-{id}"),
        };
        parse(&w.create(1, "2026-01-01T00:00:00Z"))
    }

    fn parse(text: &str) -> MetadataFile {
        match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(fields)) => MetadataFile::Valid(Metadata {
                fields,
                text: text.to_owned(),
            }),
            _ => MetadataFile::Invalid("bad".into()),
        }
    }

    fn state(case: &Case) -> State {
        let root = PathBuf::from("/repo/sessions");
        let mut state = State {
            root: root.clone(),
            ..State::default()
        };
        state.bases.insert("main".into(), Ok(COMMIT.into()));
        for (id, s) in IDS.iter().zip(&case.sessions) {
            let path = root.join(format!("shell-instance-{id}"));
            let branch = format!("session/{id}");
            if s.worktree > 0 {
                let missing = s.worktree == 2;
                let metadata = match s.metadata {
                    _ if missing => MetadataFile::Missing,
                    0 => MetadataFile::Missing,
                    1 => metadata_for(id, "one", &path),
                    _ => metadata_for(id, "other", &path),
                };
                let dirt = Dirt {
                    modified: if s.dirty { vec!["README.md".into()] } else { vec![] },
                    ..Dirt::default()
                };
                state.worktrees.insert(
                    path.clone(),
                    Worktree {
                        path: path.clone(),
                        admin_id: format!("shell-instance-{id}"),
                        branch: Some(if s.on_other_branch {
                            format!("other-{id}")
                        } else {
                            branch.clone()
                        }),
                        lock: s.locked.then(|| "on a usb disk".to_owned()),
                        missing,
                        session_id: Some((*id).to_owned()),
                        metadata,
                        has_artifacts: !missing,
                        dirt: (!missing).then_some(dirt),
                        unreadable: None,
                        stray: None,
                        switching_to: None,
                        switch_resumable: false,
                        detached: None,
                        head: Some(COMMIT.into()),
                        unreachable: None,
                        submodule: None,
                        foreign_git: None,
                        nested: Vec::new(),
                        processes: Vec::new(),
                        unsafe_session: None,
                        copy_settled: None,
                        device: None,
                    },
                );
            }
            if s.branch {
                state.branches.insert(
                    branch.clone(),
                    Branch {
                        name: branch.clone(),
                        commit: COMMIT.into(),
                        upstream: None,
                        unmerged: Some(s.unmerged),
                        integrated: None,
                    },
                );
            }
            if let Some(owned) = s.owned {
                state.owned.sessions.push(OwnedSession {
                    id: (*id).to_owned(),
                    branch,
                    path,
                    base: "main".into(),
                    state: owned,
                    trash: None,
                    trash_digest: None,
                    branch_created: true,
                });
            }
        }
        state
    }

    /// What apply does, on values.
    fn carry_out(plan: &Plan, state: &State) -> State {
        let mut next = state.clone();
        let mut record = Record::new(1, next.owned.sessions.clone());
        carry_out_housekeeping(plan, &mut next, &mut record);
        for change in &plan.changes {
            match &change.action {
                Action::Create { wanted, base, .. } => {
                    next.branches.entry(change.branch.clone()).or_insert_with(|| Branch {
                        name: change.branch.clone(),
                        commit: COMMIT.into(),
                        upstream: None,
                        unmerged: Some(0),
                        integrated: None,
                    });
                    next.worktrees
                        .insert(change.path.clone(), created(change, fresh(wanted)));
                    record.upsert(OwnedSession {
                        id: change.session.clone(),
                        branch: change.branch.clone(),
                        path: change.path.clone(),
                        base: base.clone(),
                        state: OwnedState::Created,
                        trash: None,
                        trash_digest: None,
                        branch_created: true,
                    });
                }
                Action::Update { repairs, wanted, .. } => {
                    carry_out_update(change, repairs, wanted, &mut next, &mut record)
                }
                Action::Retain { removal, .. } => {
                    if removal.worktree != WorktreeRemoval::None {
                        next.worktrees.remove(&change.path);
                    }
                    next.exclude.lines.retain(|l| !removal.exclude_drop.contains(l));
                }
                Action::Remove(r) => {
                    if r.worktree != WorktreeRemoval::None {
                        next.worktrees.remove(&change.path);
                    }
                    if let Some(expected) = &r.delete_branch
                        && next.branches.get(&change.branch).is_some_and(|b| &b.commit == expected)
                    {
                        next.branches.remove(&change.branch);
                    }
                    record.remove_path(&change.path);
                    next.exclude.lines.retain(|l| !r.exclude_drop.contains(l));
                }
                Action::Restore { from, .. } => {
                    next.trash.retain(|t| t != from);
                    if let Some(o) = record.sessions.iter_mut().find(|o| o.path == change.path) {
                        o.trash = None;
                        o.state = OwnedState::Created;
                    }
                }
                Action::Blocked { .. } => {}
            }
        }
        next.owned = record;
        next
    }

    /// The metadata apply writes for a session it makes.
    fn fresh(wanted: &Wanted) -> MetadataFile {
        parse(&wanted.create(1, "2026-01-01T00:00:00Z"))
    }

    /// Housekeeping, as apply carries it out (first).
    fn carry_out_housekeeping(plan: &Plan, next: &mut State, record: &mut Record) {
        for step in &plan.housekeeping {
            match step {
                Housekeeping::Excludes { new, .. } => {
                    next.exclude.lines = new.clone();
                    next.exclude.legacy = false;
                }
                Housekeeping::DropRecord { path, .. } => record.remove_path(path),
                Housekeeping::EmptyTrash { path } => {
                    next.trash.retain(|t| t != path);
                    next.deleting.retain(|t| t != path);
                }
                Housekeeping::Leftover(l) => next.leftovers.retain(|x| x != l),
                Housekeeping::FinishMove { to, .. } => record.moving.retain(|m| m.to != *to),
                Housekeeping::RepairLinks { to, .. } => next.broken_links.retain(|r| r.to != *to),
            }
        }
    }

    /// The worktree apply makes for a created session: clean, on its branch.
    fn created(change: &Change, metadata: MetadataFile) -> Worktree {
        Worktree {
            path: change.path.clone(),
            admin_id: String::new(),
            branch: Some(change.branch.clone()),
            lock: None,
            missing: false,
            session_id: Some(change.session.clone()),
            metadata,
            has_artifacts: true,
            dirt: Some(Dirt::default()),
            unreadable: None,
            stray: None,
            switching_to: None,
            switch_resumable: false,
            detached: None,
            head: Some(COMMIT.into()),
            unreachable: None,
            submodule: None,
            foreign_git: None,
            nested: Vec::new(),
            processes: Vec::new(),
            unsafe_session: None,
            copy_settled: None,
            device: None,
        }
    }

    /// An update's repairs, as apply carries them out.
    fn carry_out_update(change: &Change, repairs: &[Repair], wanted: &Wanted, next: &mut State, record: &mut Record) {
        if let Some(from) = moved_from(change)
            && let Some(mut moved) = next.worktrees.remove(from)
        {
            moved.path = change.path.clone();
            next.worktrees.insert(change.path.clone(), moved);
        }
        let wt = next.worktrees.get_mut(&change.path).expect("updates have a worktree");
        for r in repairs {
            match r {
                Repair::Worktree { .. } => {
                    wt.branch = Some(change.branch.clone());
                    wt.missing = false;
                    wt.lock = None;
                    wt.dirt = Some(Dirt::default());
                }
                Repair::Metadata { new: Some(text), .. } => wt.metadata = parse(text),
                Repair::Metadata { new: None, .. } => wt.metadata = fresh(wanted),
                Repair::SwitchBranch { .. } => wt.branch = Some(change.branch.clone()),
                Repair::Artifacts => wt.has_artifacts = true,
                Repair::Restore { from } => {
                    wt.missing = false;
                    next.trash.retain(|t| t != from);
                }
                Repair::Ports { names } => {
                    if let MetadataFile::Valid(m) = &wt.metadata {
                        let ports = names.iter().map(|n| (n.clone(), 20000)).collect();
                        wt.metadata = parse(&m.with_ports(&ports));
                    }
                }
                Repair::FinishRecord => {
                    if let Some(o) = record.sessions.iter_mut().find(|o| o.path == change.path) {
                        o.state = OwnedState::Created;
                    }
                }
                Repair::Move { from, .. } => {
                    if let Some(o) = record.sessions.iter_mut().find(|o| o.path == *from) {
                        o.path = change.path.clone();
                    }
                }
                Repair::Copies { .. } | Repair::RunSetup { .. } => {}
            }
        }
    }

    proptest! {
        #[test]
        fn plans_are_deterministic(case in case()) {
            let (m, s) = (manifest(&case), state(&case));
            prop_assert_eq!(plan(&m, &s), plan(&m, &s));
        }

        #[test]
        fn applying_a_plan_converges(case in case(), force in any::<bool>()) {
            let (m, s) = (manifest(&case), state(&case));
            let options = Options { force, ..Options::default() };
            let first = plan_with(&m, &s, &options);
            let after = carry_out(&first, &s);
            let second = plan_with(&m, &after, &options);
            prop_assert!(!second.has_changes(), "first plan {:#?}\nsecond plan {:#?}", first, second);
            // Whatever stayed blocked is blocked for the same reasons.
            let blocked = |p: &Plan| p.changes.iter().filter(|c| matches!(c.action, Action::Blocked { .. })).cloned().collect::<Vec<_>>();
            prop_assert_eq!(blocked(&first), blocked(&second));
        }

        #[test]
        fn blocked_sessions_keep_their_work(case in case(), force in any::<bool>()) {
            let (m, s) = (manifest(&case), state(&case));
            let p = plan_with(&m, &s, &Options { force, ..Options::default() });
            for change in &p.changes {
                if let Action::Remove(Removal { archive, discard, delete_branch, .. }) = &change.action {
                    // Only owned sessions are ever removed, never locked ones; without
                    // --force never dirty or unmerged ones; with it, what would be lost is
                    // archived (commits) or listed (files).
                    prop_assert!(s.owned.by_path(&change.path).is_some());
                    if let Some(wt) = s.worktrees.get(&change.path) {
                        prop_assert!(wt.lock.is_none());
                        let dirt = wt.dirt.clone().unwrap_or_default();
                        prop_assert_eq!(discard, &dirt.all_paths());
                        prop_assert!(force || dirt.is_clean());
                        // Uncommitted work is committed into the archive before it goes.
                        prop_assert_eq!(archive.as_ref().and_then(|a| a.snapshot.as_ref()).is_some(), !dirt.is_clean());
                    }
                    if let (Some(_), Some(b)) = (delete_branch, s.branches.get(&change.branch)) {
                        let unmerged = b.unmerged.expect("checked");
                        prop_assert!(force || unmerged == 0);
                        if unmerged > 0 {
                            let a = archive.as_ref().expect("unmerged commits are archived");
                            prop_assert!(a.keep.contains(&b.commit) && a.commits >= unmerged);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod reason_table {
    //! One row per blocked reason the planner gives: plain values in, the reason out, and
    //! whether `--force` lifts it. (`NewSincePlan` is apply's, found when it checks again.)
    use super::*;
    use crate::names::INITIALIZING;
    use crate::read::inspect::Process;
    use crate::read::state::{Branch, Dirt};

    const COMMIT: &str = "1111111111111111111111111111111111111111";
    const ROOT: &str = "/repo/sessions";

    fn path(id: &str) -> PathBuf {
        Path::new(ROOT).join(format!("shell-instance-{id}"))
    }

    fn worktree(id: &str) -> Worktree {
        Worktree {
            path: path(id),
            admin_id: format!("shell-instance-{id}"),
            branch: Some(format!("session/{id}")),
            lock: None,
            missing: false,
            session_id: Some(id.to_owned()),
            metadata: MetadataFile::Missing,
            has_artifacts: true,
            dirt: Some(Dirt::default()),
            unreadable: None,
            stray: None,
            switching_to: None,
            switch_resumable: false,
            detached: None,
            head: Some(COMMIT.to_owned()),
            unreachable: None,
            submodule: None,
            foreign_git: None,
            nested: Vec::new(),
            processes: Vec::new(),
            unsafe_session: None,
            copy_settled: None,
            device: None,
        }
    }

    fn branch(id: &str, unmerged: Option<usize>) -> Branch {
        Branch {
            name: format!("session/{id}"),
            commit: COMMIT.to_owned(),
            upstream: None,
            unmerged,
            integrated: None,
        }
    }

    fn owned(id: &str, state: OwnedState) -> OwnedSession {
        OwnedSession {
            id: id.to_owned(),
            branch: format!("session/{id}"),
            path: path(id),
            base: "main".to_owned(),
            state,
            trash: None,
            trash_digest: None,
            branch_created: true,
        }
    }

    /// `x` declared (not created yet); `o` an owned orphan with a clean worktree and a
    /// merged branch.
    fn start() -> (Manifest, State) {
        let manifest = Manifest::from_source(
            Path::new("/repo/flowloom.toml"),
            "[sessions.x]\nsetup = [\"make setup\"]\n".to_owned(),
        )
        .expect("valid");
        let mut state = State {
            root: PathBuf::from(ROOT),
            ..State::default()
        };
        state
            .trusted
            .insert(crate::store::machine::setup_hash(&crate::store::machine::SetupScript {
                commands: vec!["make setup".to_owned()],
                env: BTreeMap::new(),
                teardown: Vec::new(),
            }));
        state.bases.insert("main".into(), Ok(COMMIT.into()));
        state.worktrees.insert(path("o"), worktree("o"));
        state.branches.insert("session/o".into(), branch("o", Some(0)));
        state.owned.sessions.push(owned("o", OwnedState::Created));
        (manifest, state)
    }

    fn reasons_of(plan: &Plan, session: &str) -> Vec<Reason> {
        plan.changes
            .iter()
            .filter(|c| c.session == session)
            .flat_map(|c| match &c.action {
                Action::Blocked { reasons } | Action::Retain { reasons, .. } => reasons.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn an_unmerged_branch_is_retained_and_an_integrated_one_goes() {
        let (manifest, mut state) = start();
        state.branches.insert("session/o".into(), branch("o", Some(2)));
        let action = |plan: &Plan| {
            plan.changes
                .iter()
                .find(|c| c.session == "o")
                .map(|c| c.action.clone())
                .expect("o is planned")
        };
        // The worktree can go: it goes, the branch stays.
        match action(&plan(&manifest, &state)) {
            Action::Retain { removal, .. } => {
                assert!(matches!(removal.worktree, WorktreeRemoval::Remove { .. }));
                assert_eq!(removal.delete_branch, None);
            }
            other => panic!("expected retained, got {other:?}"),
        }
        // Once only the branch is left, it is listed, and nothing is to do.
        state.worktrees.clear();
        let p = plan(&manifest, &state);
        assert!(matches!(action(&p), Action::Retain { .. }));
        assert!(!action(&p).changes_anything());
        // Integrated (a squash merge): the branch goes without --force.
        state.branches.get_mut("session/o").expect("o").integrated = Some(crate::read::inspect::Integration::PatchId);
        match action(&plan(&manifest, &state)) {
            Action::Remove(r) => {
                assert_eq!(r.delete_branch.as_deref(), Some(COMMIT));
                assert_eq!(r.integrated, Some(crate::read::inspect::Integration::PatchId));
            }
            other => panic!("expected remove, got {other:?}"),
        }
    }

    /// SPEC §11.4: a folder whose deletion started is only ever finished (a housekeeping
    /// step), never moved back; a folder in the trash moves back only while its
    /// registration waits for it.
    #[test]
    fn a_started_deletion_is_finished_never_undone() {
        let (manifest, mut state) = start();
        let trash = Path::new(ROOT).join(".flowloom-trash/shell-instance-o");
        state.worktrees.clear();
        state.branches.clear();
        state.owned.sessions.clear();
        state.owned.deleting = vec![trash.clone()];
        state.deleting = vec![trash.clone()];
        let finishing = |p: &Plan| {
            p.housekeeping
                .iter()
                .filter(|h| matches!(h, Housekeeping::EmptyTrash { .. }))
                .cloned()
                .collect::<Vec<_>>()
        };
        let p = plan(&manifest, &state);
        assert_eq!(finishing(&p), vec![Housekeeping::EmptyTrash { path: trash.clone() }]);
        assert!(p.changes.iter().all(|c| !matches!(c.action, Action::Restore { .. })));
        // With targets too: finishing a started deletion belongs to no session.
        let targeted = plan_with(
            &manifest,
            &state,
            &Options {
                targets: ["x".to_owned()].into(),
                ..Options::default()
            },
        );
        assert_eq!(finishing(&targeted).len(), 1);
        // Changed in the trash before its deletion started: back while registered, else
        // blocked, never a folder in the root that no registration points at.
        let (manifest, mut state) = start();
        let entry = &mut state.owned.sessions[0];
        entry.trash = Some(trash.clone());
        entry.trash_digest = Some("old".into());
        entry.state = OwnedState::Removing;
        state.trash = vec![trash.clone()];
        state.worktrees.get_mut(&path("o")).expect("o").missing = true;
        let p = plan(&manifest, &state);
        let o = p.changes.iter().find(|c| c.session == "o").expect("o");
        assert!(matches!(o.action, Action::Restore { .. }), "{:?}", o.action);
        state.worktrees.clear();
        let p = plan(&manifest, &state);
        let o = p.changes.iter().find(|c| c.session == "o").expect("o");
        assert!(matches!(o.action, Action::Blocked { .. }), "{:?}", o.action);
    }

    /// SPEC §11.4: archive refs never clash (`feat` beside `feat/x`), never overwrite one
    /// another, and an archive an interrupted run wrote for the same commit is reused.
    #[test]
    fn archive_names_never_clash() {
        let removal = |keep: &str| {
            Action::Remove(Removal {
                worktree: WorktreeRemoval::None,
                delete_branch: None,
                integrated: None,
                archive: Some(Archive {
                    reference: String::new(),
                    keep: vec![keep.to_owned()],
                    commits: 1,
                    snapshot: None,
                }),
                discard: Vec::new(),
                base: "main".into(),
                exclude_drop: Vec::new(),
                teardown: None,
            })
        };
        let change = |branch: &str, keep: &str| Change {
            session: branch.replace('/', "-"),
            branch: branch.to_owned(),
            path: path(branch),
            action: removal(keep),
        };
        let mut state = State::default();
        for (name, commit) in [
            ("refs/flowloom/archive/feat/y", "a"),
            ("refs/flowloom/archive/3", "b"),
            ("refs/flowloom/archive/1/old", "c"),
        ] {
            state.archives.insert(name.into(), commit.into());
        }
        let mut changes = vec![
            change("feat", "d"),
            change("feat/x", "e"),
            change("old", "c"),
            change("feat/y", "a"),
        ];
        name_archives(&state, &mut changes);
        let names: Vec<String> = changes
            .iter()
            .map(|c| match &c.action {
                Action::Remove(Removal { archive: Some(a), .. }) => a.reference.clone(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(
            names,
            [
                "refs/flowloom/archive/4/feat",
                "refs/flowloom/archive/5/feat/x",
                "refs/flowloom/archive/1/old",
                "refs/flowloom/archive/feat/y",
            ]
        );
        // No name is a folder of another, nor one of the archives already there.
        let all: Vec<&String> = names.iter().chain(state.archives.keys()).collect();
        for a in &all {
            for b in &all {
                assert!(!b.starts_with(&format!("{a}/")), "{a} clashes with {b}");
            }
        }
    }

    type Setup = fn(&mut State);

    fn not_found() -> BaseFailure {
        BaseFailure::NotFound {
            reason: "not found".into(),
            alternates_env: false,
        }
    }

    /// A session, what the row checks, the state that blocks it, and the one reason expected.
    type ReasonRow = (&'static str, &'static str, Setup, Reason);

    /// Why a session is not made: what is in the way of creating it.
    fn creation_rows() -> Vec<ReasonRow> {
        vec![
            (
                "x",
                "branch checked out elsewhere",
                |s| {
                    s.busy_branches.insert("session/x".into(), PathBuf::from("/elsewhere"));
                },
                Reason::BranchCheckedOutElsewhere {
                    branch: "session/x".into(),
                    path: PathBuf::from("/elsewhere"),
                },
            ),
            (
                "x",
                "folder in the way",
                |s| {
                    s.occupied.insert(path("x"));
                },
                Reason::FolderInTheWay { path: path("x") },
            ),
            (
                "x",
                "base does not resolve",
                |s| {
                    s.bases.insert("main".into(), Err(not_found()));
                },
                Reason::BaseUnresolved {
                    base: "main".into(),
                    why: not_found(),
                },
            ),
            (
                "x",
                "a checkout git would write otherwise",
                |s| {
                    s.checkout_problems.insert(COMMIT.into(), "UTF-16".into());
                },
                Reason::CannotCheckOut { why: "UTF-16".into() },
            ),
            (
                "x",
                "setup not trusted",
                |s| {
                    s.trusted.clear();
                },
                Reason::SetupNotTrusted {
                    script: crate::store::machine::SetupScript {
                        commands: vec!["make setup".into()],
                        env: BTreeMap::new(),
                        teardown: Vec::new(),
                    },
                },
            ),
            (
                "x",
                "base not read",
                |s| {
                    s.bases.clear();
                },
                Reason::BaseUnread { base: "main".into() },
            ),
        ]
    }

    /// Why a worktree in place is not repaired.
    fn repair_rows() -> Vec<ReasonRow> {
        vec![
            (
                "x",
                "half-made checkout holds other files",
                |s| {
                    let mut w = worktree("x");
                    w.lock = Some(INITIALIZING.into());
                    w.stray = Some(vec!["mine.txt".into()]);
                    s.worktrees.insert(path("x"), w);
                    s.owned.sessions.push(owned("x", OwnedState::Creating));
                },
                Reason::HalfMadeHoldsOtherFiles {
                    files: vec!["mine.txt".into()],
                },
            ),
            (
                "x",
                "locked with its folder gone",
                |s| {
                    let mut w = worktree("x");
                    w.missing = true;
                    w.lock = Some("usb".into());
                    s.worktrees.insert(path("x"), w);
                },
                Reason::LockedWithFolderGone { lock: "usb".into() },
            ),
            (
                "x",
                "detached, cannot switch back",
                |s| {
                    let mut w = worktree("x");
                    w.branch = None;
                    s.worktrees.insert(path("x"), w);
                },
                Reason::SwitchBack {
                    from: None,
                    to: "session/x".into(),
                    path: path("x"),
                    why: SwitchBlock::Detached,
                },
            ),
            (
                "x",
                "on another branch with changes",
                |s| {
                    let mut w = worktree("x");
                    w.branch = Some("other".into());
                    w.dirt = Some(Dirt {
                        modified: vec!["a".into()],
                        ..Dirt::default()
                    });
                    s.worktrees.insert(path("x"), w);
                },
                Reason::SwitchBack {
                    from: Some("other".into()),
                    to: "session/x".into(),
                    path: path("x"),
                    why: SwitchBlock::Uncommitted,
                },
            ),
        ]
    }

    /// Why a session's own folder is not written.
    fn session_folder_rows() -> Vec<ReasonRow> {
        vec![
            (
                "x",
                "metadata invalid",
                |s| {
                    let mut w = worktree("x");
                    w.metadata = MetadataFile::Invalid("not JSON".into());
                    s.worktrees.insert(path("x"), w);
                },
                Reason::MetadataInvalid {
                    id: "x".into(),
                    why: "not JSON".into(),
                },
            ),
            (
                "x",
                "session folder is a symlink",
                |s| {
                    let mut w = worktree("x");
                    w.unsafe_session = Some("`sessions/x` is a symlink".into());
                    s.worktrees.insert(path("x"), w);
                },
                Reason::UnsafeSessionFolder {
                    why: "`sessions/x` is a symlink".into(),
                },
            ),
        ]
    }

    /// Why an orphan's worktree is not removed: what is in it or using it.
    fn removal_rows() -> Vec<ReasonRow> {
        vec![
            (
                "o",
                "locked",
                |s| s.worktrees.get_mut(&path("o")).expect("o").lock = Some("usb".into()),
                Reason::Locked { lock: "usb".into() },
            ),
            (
                "o",
                "started inside",
                |s| s.current_worktree = Some(path("o")),
                Reason::StartedInside,
            ),
            (
                "o",
                "modified files",
                |s| {
                    s.worktrees.get_mut(&path("o")).expect("o").dirt = Some(Dirt {
                        modified: vec!["a".into(), "b".into()],
                        ..Dirt::default()
                    })
                },
                Reason::Dirty {
                    what: DirtKind::Modified,
                    count: 2,
                },
            ),
            (
                "o",
                "session files",
                |s| {
                    s.worktrees.get_mut(&path("o")).expect("o").dirt = Some(Dirt {
                        session_files: vec!["sessions/o/artifacts/r".into()],
                        ..Dirt::default()
                    })
                },
                Reason::SessionFiles {
                    id: "o".into(),
                    count: 1,
                },
            ),
            (
                "o",
                "contents unreadable",
                |s| {
                    let w = s.worktrees.get_mut(&path("o")).expect("o");
                    w.dirt = None;
                    w.unreadable = Some("broken index".into());
                },
                Reason::Unreadable {
                    why: "broken index".into(),
                },
            ),
            (
                "o",
                "a process inside",
                |s| {
                    s.worktrees.get_mut(&path("o")).expect("o").processes = vec![Process {
                        pid: 7,
                        name: "vim".into(),
                        uses: "cwd".into(),
                    }]
                },
                Reason::Process {
                    pid: 7,
                    name: "vim".into(),
                    uses: "cwd".into(),
                },
            ),
        ]
    }

    /// Why an orphan is not removed: what removing it would lose or cut short.
    fn loss_rows() -> Vec<ReasonRow> {
        vec![
            (
                "o",
                "unmerged commits",
                |s| {
                    s.branches.insert("session/o".into(), branch("o", Some(2)));
                },
                Reason::Unmerged {
                    branch: "session/o".into(),
                    count: 2,
                    base: "main".into(),
                    upstream: None,
                },
            ),
            (
                "o",
                "merge not checked",
                |s| {
                    s.branches.insert("session/o".into(), branch("o", None));
                },
                Reason::UnmergedUnchecked {
                    branch: "session/o".into(),
                },
            ),
            (
                "o",
                "initialized submodule",
                |s| s.worktrees.get_mut(&path("o")).expect("o").submodule = Some("lib".into()),
                Reason::Submodule { what: "lib".into() },
            ),
            (
                "o",
                "a .git that is not its registration's",
                |s| s.worktrees.get_mut(&path("o")).expect("o").foreign_git = Some("points elsewhere".into()),
                Reason::ForeignGit {
                    why: "points elsewhere".into(),
                },
            ),
            (
                "o",
                "a nested repository",
                |s| {
                    let w = s.worktrees.get_mut(&path("o")).expect("o");
                    w.nested = vec![crate::read::inspect::Nested {
                        path: "tool".into(),
                        unpushed: Some(2),
                    }];
                },
                Reason::NestedRepository {
                    path: "tool".into(),
                    unpushed: Some(2),
                },
            ),
            (
                "o",
                "detached commits",
                |s| {
                    let w = s.worktrees.get_mut(&path("o")).expect("o");
                    w.branch = None;
                    w.detached = Some(COMMIT.into());
                    w.unreachable = Some(1);
                },
                Reason::DetachedCommits { count: 1 },
            ),
        ]
    }

    #[test]
    fn every_reason_has_its_row() {
        let rows = [
            creation_rows(),
            repair_rows(),
            session_folder_rows(),
            removal_rows(),
            loss_rows(),
        ]
        .concat();
        for (session, what, setup, reason) in rows {
            let (manifest, mut state) = start();
            // Without the setup, nothing blocks.
            assert!(
                reasons_of(&plan(&manifest, &state), session).is_empty(),
                "{what}: blocked without cause"
            );
            setup(&mut state);
            let plain = plan(&manifest, &state);
            assert_eq!(reasons_of(&plain, session), vec![reason.clone()], "{what}");
            // --force lifts exactly the forceable reasons.
            let forced = plan_with(
                &manifest,
                &state,
                &Options {
                    force: true,
                    ..Options::default()
                },
            );
            let still = reasons_of(&forced, session);
            assert_eq!(still.is_empty(), reason.forceable(), "{what}: forced plan {still:?}");
        }
    }
}
