//! The plan and its steps: every value apply needs is a field of one (SPEC §3).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Reason, Variables};
use crate::store::metadata::Wanted;
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
    /// SPEC §10's variables for `setup`, all but the ports' numbers filled in.
    pub variables: Variables,
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
    /// left as they are. `setup_done`: for such a late copy, the setup commands the
    /// session's metadata counts as run, recorded with the copy marked unfinished while it
    /// runs (so that a kill is finished by the next apply and runs nothing again).
    Copies {
        from: PathBuf,
        items: Vec<CopyItem>,
        kept: Vec<String>,
        finishing: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        setup_done: Vec<String>,
    },
    /// SPEC §11.3: the setup that did not finish: run `commands` (those that did not succeed
    /// yet; `done` did, and are not run again) with the session's `env`, then record the
    /// setup `ok` (or `failed`). `copied`: the copies were done before this apply.
    RunSetup {
        commands: Vec<String>,
        done: Vec<String>,
        variables: Variables,
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
    pub(super) fn targets(&self, session: &str) -> bool {
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
