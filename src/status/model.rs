//! The dashboard's rows: what `flowloom status` shows of each session, as values. The
//! `status` stage fills them (the plan classifies, the reader's facts complete) and
//! `render::status` puts them into words. What the reader found and a row carries (dirt
//! counts, an upstream, a process) is named here, so the renderer words the dashboard's
//! vocabulary without importing the reader.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::plan::Reason;
pub use crate::read::dashboard::{DirtCounts, LastCommit, Overlap, Process, Upstream};
use crate::store::metadata::SetupState;

/// One word for a session; when several apply, the first in this order wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    /// Declared, not created (or cannot be created yet: see `reasons`).
    Missing,
    /// Declared, differs from the manifest: `apply` repairs it, or says why it cannot.
    Drifted,
    /// Created by flowloom, no longer declared: `apply` removes it when nothing is lost.
    Orphan,
    /// Created by flowloom, no longer declared, its worktree gone: its branch is kept because
    /// its work is in no base yet (SPEC §7).
    Retained,
    /// Its branch has commits of its own, and they are in its base or upstream already (by
    /// ancestry, same tree or patch id): the work is done, the session can go.
    Integrated,
    /// In scope, neither declared nor owned: left alone; `flowloom import` adopts it.
    Unmanaged,
    /// Its setup command failed (SPEC §11.3): never `ok`.
    #[serde(rename = "setup failed")]
    SetupFailed,
    /// Its copy or setup did not finish (a kill, Ctrl-C): the next `apply` finishes it.
    Incomplete,
    /// Matches the manifest; the worktree is locked (`git worktree lock`).
    Locked,
    /// Matches the manifest; the worktree has uncommitted or untracked files.
    Dirty,
    /// Matches the manifest as far as refs tell, but its worktree's contents could not be
    /// read: never reported `ok` unseen.
    Unchecked,
    Ok,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Missing => "missing",
            SessionState::Drifted => "drifted",
            SessionState::Orphan => "orphan",
            SessionState::Retained => "retained",
            SessionState::Integrated => "integrated",
            SessionState::Unmanaged => "unmanaged",
            SessionState::SetupFailed => "setup failed",
            SessionState::Incomplete => "incomplete",
            SessionState::Locked => "locked",
            SessionState::Dirty => "dirty",
            SessionState::Unchecked => "unchecked",
            SessionState::Ok => "ok",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub session: String,
    /// The manifest file that declares it (SPEC §11.1); `None` when none does.
    pub layer: Option<crate::manifest::Layer>,
    /// The manifest's, else the metadata file's.
    pub purpose: Option<String>,
    pub branch: Option<String>,
    /// Absolute worktree path: the wanted one for declared sessions, the found one else.
    pub path: Option<PathBuf>,
    pub state: SessionState,
    /// The revspec ahead/behind are counted against (empty for the main worktree).
    pub base: String,
    /// Commits on the branch that are not on the base, and the reverse; `None` when the
    /// branch or the base does not exist.
    pub ahead: Option<usize>,
    pub behind: Option<usize>,
    pub upstream: Option<Upstream>,
    pub last_commit: Option<LastCommit>,
    /// `None` when there is no worktree to check (or the check failed).
    pub dirt: Option<DirtCounts>,
    pub locked: bool,
    /// Why a declared session is blocked, or why an undeclared one's branch is kept: the
    /// plan's reasons, worded by the renderer.
    pub reasons: Vec<Reason>,
    /// SPEC §10: the ports its `metadata.json` holds.
    pub ports: BTreeMap<String, u16>,
    /// The setup state its metadata records (SPEC §11.3); `None` without metadata.
    pub setup: Option<SetupState>,
    /// Processes whose working directory or an open file is inside its worktree.
    pub in_use: Vec<Process>,
    /// The command runs inside this worktree (or a folder of it).
    pub current: bool,
}

impl Row {
    pub fn new(
        session: String,
        branch: Option<String>,
        path: Option<PathBuf>,
        state: SessionState,
        base: String,
    ) -> Row {
        Row {
            session,
            layer: None,
            purpose: None,
            branch,
            path,
            state,
            base,
            ahead: None,
            behind: None,
            upstream: None,
            last_commit: None,
            dirt: None,
            locked: false,
            reasons: Vec::new(),
            ports: BTreeMap::new(),
            setup: None,
            in_use: Vec::new(),
            current: false,
        }
    }

    pub fn dirty(&self) -> Option<bool> {
        self.dirt.map(|d| !d.is_clean())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    /// The main worktree (none in a bare repository).
    pub main: Option<Row>,
    pub sessions: Vec<Row>,
    pub overlaps: Vec<Overlap>,
    /// Where the command runs (canonical): paths are shown relative to it.
    pub cwd: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_rank_in_the_documented_order() {
        use SessionState::*;
        let order = [
            Missing,
            Drifted,
            Orphan,
            Retained,
            Integrated,
            Unmanaged,
            SetupFailed,
            Incomplete,
            Locked,
            Dirty,
            Unchecked,
            Ok,
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }
}
