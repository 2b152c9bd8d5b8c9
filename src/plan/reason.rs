//! Why a change cannot be made (SPEC §7): values, put into words only by `render`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::BaseFailure;

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
        /// Files its work tree holds uncommitted (changed, staged, untracked).
        #[serde(default)]
        uncommitted: usize,
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
    /// SPEC §11.4: a ref where an archive ref's folders go (`refs/flowloom`,
    /// `refs/flowloom/archive`) is a ref of its own, so no archive can be written below it
    /// and a forced removal, which archives first, would fail half-way: blocked until that
    /// ref is renamed or deleted.
    ArchiveRefInTheWay {
        reference: String,
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
