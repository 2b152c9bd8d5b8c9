//! `flowloom status`: one row per in-scope session, classified by the planner and completed
//! with what only status asks: is each worktree dirty, and how far is each branch from its
//! base.
//!
//! The classification is the plan's (a declared session with a create change is missing,
//! with an update drifted), so `status` and `plan` can never disagree. Dirty checks read
//! every existing worktree, so they run in parallel.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::RepoError;
use crate::manifest::Manifest;
use crate::output::{Printer, Style};
use crate::plan::{Action, Plan};
use crate::state::{Dirt, State, Worktree};

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
    /// In scope, neither declared nor owned: left alone; `flowloom import` adopts it.
    Unmanaged,
    /// Matches the manifest; the worktree is locked (`git worktree lock`).
    Locked,
    /// Matches the manifest; the worktree has uncommitted or untracked files.
    Dirty,
    Ok,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Missing => "missing",
            SessionState::Drifted => "drifted",
            SessionState::Orphan => "orphan",
            SessionState::Unmanaged => "unmanaged",
            SessionState::Locked => "locked",
            SessionState::Dirty => "dirty",
            SessionState::Ok => "ok",
        }
    }

    fn style(self) -> Style {
        match self {
            SessionState::Ok => Style::Create,
            SessionState::Missing | SessionState::Drifted => Style::Update,
            SessionState::Orphan => Style::Remove,
            SessionState::Unmanaged => Style::Dim,
            SessionState::Locked | SessionState::Dirty => Style::Warn,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub session: String,
    pub branch: Option<String>,
    /// Absolute worktree path: the wanted one for declared sessions, the found one else.
    pub path: Option<PathBuf>,
    pub state: SessionState,
    /// The revspec ahead/behind are counted against.
    pub base: String,
    /// Commits on the branch that are not on the base, and the reverse; `None` when the
    /// branch or the base does not exist.
    pub ahead: Option<usize>,
    pub behind: Option<usize>,
    /// `None` when there is no worktree to check (or the check failed).
    pub dirty: Option<bool>,
    pub locked: bool,
    /// Why a declared session is blocked, from the plan.
    pub reasons: Vec<String>,
}

/// The rows, sorted by session id then path. Warnings (a dirty check that failed) go
/// through `warn`; they do not stop the others.
pub fn rows(repo: &gix::Repository, manifest: &Manifest, state: &State, plan: &Plan, warn: &dyn Fn(&str)) -> Vec<Row> {
    let mut rows = Vec::new();
    // One look-up per session, not a search of the plan: linear in sessions.
    let by_key: std::collections::HashMap<(&str, &Path), &crate::plan::Change> = plan
        .changes
        .iter()
        .map(|c| ((c.session.as_str(), c.path.as_path()), c))
        .collect();
    for session in manifest.sessions.values() {
        let path = state.root.join(&session.worktree);
        let change = by_key.get(&(session.id.as_str(), path.as_path())).copied();
        let (kind, reasons) = match change.map(|c| &c.action) {
            None => (SessionState::Ok, Vec::new()),
            Some(Action::Create { .. }) => (SessionState::Missing, Vec::new()),
            Some(Action::Update { .. }) => (SessionState::Drifted, Vec::new()),
            // Blocked with a worktree in place means it differs in a way apply will not
            // repair (another branch, bad metadata); without one, it is not made yet.
            Some(Action::Blocked { reasons }) => {
                let words = reasons
                    .iter()
                    .map(|r| crate::render::reason_text(r, manifest))
                    .collect();
                match state.worktrees.get(&path) {
                    Some(wt) if !wt.missing => (SessionState::Drifted, words),
                    _ => (SessionState::Missing, words),
                }
            }
            Some(Action::Remove(_) | Action::Retain { .. } | Action::Restore { .. }) => {
                (SessionState::Orphan, Vec::new())
            }
        };
        rows.push(Row {
            session: session.id.clone(),
            branch: Some(session.branch.clone()),
            path: Some(path),
            state: kind,
            base: session.base.clone(),
            ahead: None,
            behind: None,
            dirty: None,
            locked: false,
            reasons,
        });
    }
    for owned in crate::plan::orphans(manifest, &state.root, state) {
        let has_worktree = state.worktrees.contains_key(&owned.path);
        if !has_worktree && !state.branches.contains_key(&owned.branch) {
            continue; // Gone entirely: nothing in the repository to report.
        }
        rows.push(Row {
            session: owned.id.clone(),
            branch: Some(owned.branch.clone()),
            path: has_worktree.then(|| owned.path.clone()),
            state: SessionState::Orphan,
            base: owned.base.clone(),
            ahead: None,
            behind: None,
            dirty: None,
            locked: false,
            reasons: Vec::new(),
        });
    }
    for u in &plan.unmanaged {
        rows.push(Row {
            session: u.session.clone(),
            branch: u.branch.clone(),
            path: u.path.clone(),
            state: SessionState::Unmanaged,
            base: manifest.defaults.base.clone(),
            ahead: None,
            behind: None,
            dirty: None,
            locked: false,
            reasons: Vec::new(),
        });
    }
    rows.sort_by(|a, b| a.session.cmp(&b.session).then_with(|| a.path.cmp(&b.path)));

    // Dirty checks: the planner's answer where it already read one, else read now.
    let mut to_check: Vec<(usize, &Worktree)> = Vec::new();
    for (i, row) in rows.iter_mut().enumerate() {
        let Some(wt) = row.path.as_ref().and_then(|p| state.worktrees.get(p)) else {
            continue;
        };
        if wt.missing {
            continue;
        }
        row.locked = wt.lock.is_some();
        match &wt.dirt {
            Some(dirt) => row.dirty = Some(!Dirt::is_clean_tracked(dirt)),
            None => to_check.push((i, wt)),
        }
    }
    let worktrees: Vec<&Worktree> = to_check.iter().map(|(_, wt)| *wt).collect();
    for ((i, wt), result) in to_check
        .iter()
        .zip(crate::state::read_dirt_parallel(repo, &worktrees, &[], true))
    {
        match result {
            Ok(dirt) => rows[*i].dirty = Some(!Dirt::is_clean_tracked(&dirt)),
            Err(e) => warn(&format!(
                "could not check {} for uncommitted work: {e}",
                manifest.relative(&wt.path)
            )),
        }
    }

    for row in &mut rows {
        if row.state == SessionState::Ok {
            if row.locked {
                row.state = SessionState::Locked;
            } else if row.dirty == Some(true) {
                row.state = SessionState::Dirty;
            }
        }
        let base = state.bases.get(&row.base).and_then(|b| b.as_ref().ok());
        let tip = row.branch.as_deref().and_then(|b| branch_tip(repo, b));
        if let (Some(base), Some(tip)) = (base.and_then(|b| oid(b)), tip) {
            row.ahead = count_between(repo, tip, base).ok();
            row.behind = count_between(repo, base, tip).ok();
        }
    }
    rows
}

fn oid(hex: &str) -> Option<gix::ObjectId> {
    gix::ObjectId::from_hex(hex.as_bytes()).ok()
}

fn branch_tip(repo: &gix::Repository, branch: &str) -> Option<gix::ObjectId> {
    let mut reference = repo
        .try_find_reference(crate::names::branch_ref(branch).as_str())
        .ok()??;
    reference.peel_to_id().ok().map(gix::Id::detach)
}

/// Commits reachable from `tip` but not from `hidden` (`git rev-list --count hidden..tip`).
fn count_between(repo: &gix::Repository, tip: gix::ObjectId, hidden: gix::ObjectId) -> Result<usize, RepoError> {
    let walk = repo
        .rev_walk([tip])
        .with_hidden([hidden])
        .all()
        .map_err(|e| RepoError::git("walk the history from", Path::new(&tip.to_string()), e))?;
    let mut count = 0;
    for info in walk {
        info.map_err(|e| RepoError::git("walk the history from", Path::new(&tip.to_string()), e))?;
        count += 1;
    }
    Ok(count)
}

/// The table for people: a header, then one aligned row per session.
pub fn text(rows: &[Row], manifest: &Manifest, p: &Printer) -> String {
    if rows.is_empty() {
        return format!(
            "No sessions. Declare some in {} and run `flowloom apply`.\n",
            manifest.relative(&manifest.path)
        );
    }
    let header = ["SESSION", "BRANCH", "PATH", "STATE", "AHEAD", "BEHIND"].map(str::to_owned);
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.session.clone(),
                r.branch.clone().unwrap_or_else(|| "(detached)".into()),
                r.path
                    .as_deref()
                    .map(|p| manifest.relative(p))
                    .unwrap_or_else(|| "(no worktree)".into()),
                r.state.as_str().to_owned(),
                count_text(r.ahead),
                count_text(r.behind),
            ]
        })
        .collect();
    let widths = crate::render::column_widths(std::iter::once(&header).chain(&cells));
    let mut out = String::new();
    let line = |out: &mut String, row: &[String; 6], state: Option<Style>, bold: bool| {
        let mut parts = Vec::new();
        for (i, cell) in row.iter().enumerate() {
            let w = widths[i];
            // Numbers align right, words left; the last column carries no padding.
            let padded = if i >= 4 {
                crate::render::pad_left(cell, w)
            } else {
                crate::render::pad(cell, w)
            };
            let painted = match (i, state) {
                _ if bold => p.paint(Style::Bold, &padded),
                (3, Some(style)) => p.paint(style, &padded),
                _ => padded,
            };
            parts.push(painted);
        }
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&mut out, &header, None, true);
    for (row, r) in cells.iter().zip(rows) {
        line(&mut out, row, Some(r.state.style()), false);
    }
    out
}

fn count_text(n: Option<usize>) -> String {
    n.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

#[derive(Serialize)]
pub struct JsonStatus {
    pub format_version: u32,
    pub sessions: Vec<JsonRow>,
}

#[derive(Serialize)]
pub struct JsonRow {
    pub session: String,
    pub branch: Option<String>,
    /// Relative to the manifest's folder.
    pub path: Option<String>,
    pub state: SessionState,
    pub base: String,
    pub ahead: Option<usize>,
    pub behind: Option<usize>,
    pub dirty: Option<bool>,
    pub locked: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

pub fn json(rows: &[Row], manifest: &Manifest) -> JsonStatus {
    JsonStatus {
        format_version: 1,
        sessions: rows
            .iter()
            .map(|r| JsonRow {
                session: r.session.clone(),
                branch: r.branch.clone(),
                path: r.path.as_deref().map(|p| manifest.relative(p)),
                state: r.state,
                base: r.base.clone(),
                ahead: r.ahead,
                behind: r.behind,
                dirty: r.dirty,
                locked: r.locked,
                reasons: r.reasons.clone(),
            })
            .collect(),
    }
}
