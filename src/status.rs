//! `flowloom status`: the dashboard. One row per in-scope session, classified by the planner
//! and completed with what only status asks: is each worktree dirty, how far is each branch
//! from its base and its upstream, is its work integrated already, and what was its last
//! commit.
//!
//! The classification is the plan's (a declared session with a create change is missing,
//! with an update drifted, an undeclared one the plan retains is retained), so `status` and
//! `plan` can never disagree. Dirty checks read every existing worktree, so they run in
//! parallel; everything else is one ref or commit read and a few history walks per row.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::RepoError;
use crate::manifest::Manifest;
use crate::plan::{Action, Change, Plan, WorktreeRemoval};
use crate::read::state::{Dirt, State, Worktree};
use crate::render::output::{Printer, Style};

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
            SessionState::Locked => "locked",
            SessionState::Dirty => "dirty",
            SessionState::Unchecked => "unchecked",
            SessionState::Ok => "ok",
        }
    }

    fn style(self) -> Style {
        match self {
            SessionState::Ok => Style::Create,
            SessionState::Missing | SessionState::Drifted => Style::Update,
            SessionState::Orphan => Style::Remove,
            SessionState::Retained | SessionState::Unmanaged => Style::Dim,
            SessionState::Integrated => Style::Bold,
            SessionState::Locked | SessionState::Dirty | SessionState::Unchecked => Style::Warn,
        }
    }
}

/// The remote-tracking branch a session's branch follows, and how far apart they are
/// (`None` when the remote-tracking branch is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub reference: String,
    pub ahead: Option<usize>,
    pub behind: Option<usize>,
}

/// The commit a session's branch points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastCommit {
    pub id: String,
    /// As `git log --format=%s` shows it: the first paragraph, on one line.
    pub subject: String,
    /// Committer time, seconds since the epoch.
    pub time: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub session: String,
    /// The manifest's, else the metadata file's.
    pub purpose: Option<String>,
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
    pub upstream: Option<Upstream>,
    pub last_commit: Option<LastCommit>,
    /// `None` when there is no worktree to check (or the check failed).
    pub dirty: Option<bool>,
    pub locked: bool,
    /// Why a declared session is blocked, from the plan.
    pub reasons: Vec<String>,
    /// SPEC §10: the ports its `metadata.json` holds.
    pub ports: std::collections::BTreeMap<String, u16>,
}

impl Row {
    fn new(session: String, branch: Option<String>, path: Option<PathBuf>, state: SessionState, base: String) -> Row {
        Row {
            session,
            purpose: None,
            branch,
            path,
            state,
            base,
            ahead: None,
            behind: None,
            upstream: None,
            last_commit: None,
            dirty: None,
            locked: false,
            reasons: Vec::new(),
            ports: Default::default(),
        }
    }
}

/// The rows, sorted by session id then path. Warnings (a dirty check that failed) go
/// through `warn`; they do not stop the others.
///
/// `plan` should be made from a state whose merge questions are answered (see
/// `commands::status`): that is what tells a retained branch from one apply deletes.
pub fn rows(repo: &gix::Repository, manifest: &Manifest, state: &State, plan: &Plan, warn: &dyn Fn(&str)) -> Vec<Row> {
    let mut rows = Vec::new();
    // One look-up per session, not a search of the plan: linear in sessions.
    let by_key: HashMap<(&str, &Path), &Change> = plan
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
        let mut row = Row::new(
            session.id.clone(),
            Some(session.branch.clone()),
            Some(path),
            kind,
            session.base.clone(),
        );
        row.purpose = Some(session.purpose.clone());
        row.ports = state
            .worktrees
            .get(&row_path(&row))
            .map(metadata_ports)
            .unwrap_or_default();
        row.reasons = reasons;
        rows.push(row);
    }
    for owned in crate::plan::orphans(manifest, &state.root, state) {
        let wt = state.worktrees.get(&owned.path);
        if wt.is_none() && !state.branches.contains_key(&owned.branch) {
            continue; // Gone entirely: nothing in the repository to report.
        }
        let change = by_key.get(&(owned.id.as_str(), owned.path.as_path())).copied();
        // Retained: the plan keeps the branch, and there is no worktree left to remove
        // (or only a registration whose folder is gone).
        let kind = match change.map(|c| &c.action) {
            Some(Action::Retain { removal, .. })
                if matches!(removal.worktree, WorktreeRemoval::None | WorktreeRemoval::Prune { .. }) =>
            {
                SessionState::Retained
            }
            _ => SessionState::Orphan,
        };
        let reasons = match change.map(|c| &c.action) {
            Some(Action::Retain { reasons, .. }) => reasons
                .iter()
                .map(|r| crate::render::reason_text(r, manifest))
                .collect(),
            _ => Vec::new(),
        };
        let mut row = Row::new(
            owned.id.clone(),
            Some(owned.branch.clone()),
            wt.filter(|wt| !wt.missing).map(|_| owned.path.clone()),
            kind,
            owned.base.clone(),
        );
        row.purpose = wt.and_then(metadata_purpose);
        row.ports = wt.map(metadata_ports).unwrap_or_default();
        row.reasons = reasons;
        rows.push(row);
    }
    for u in &plan.unmanaged {
        let mut row = Row::new(
            u.session.clone(),
            u.branch.clone(),
            u.path.clone(),
            SessionState::Unmanaged,
            manifest.defaults.base.clone(),
        );
        row.purpose = u
            .path
            .as_ref()
            .and_then(|p| state.worktrees.get(p))
            .and_then(metadata_purpose);
        rows.push(row);
    }
    rows.sort_by(|a, b| a.session.cmp(&b.session).then_with(|| a.path.cmp(&b.path)));

    // Dirty checks: the planner's answer where it already read one, else read now.
    let mut to_check: Vec<(usize, &Worktree)> = Vec::new();
    let mut unreadable: Vec<usize> = Vec::new();
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
            None if wt.unreadable.is_some() => unreadable.push(i),
            None => to_check.push((i, wt)),
        }
    }
    let worktrees: Vec<&Worktree> = to_check.iter().map(|(_, wt)| *wt).collect();
    for ((i, wt), result) in to_check
        .iter()
        .zip(crate::read::state::read_dirt_parallel(repo, &worktrees, &[], true))
    {
        match result {
            Ok(dirt) => rows[*i].dirty = Some(!Dirt::is_clean_tracked(&dirt)),
            Err(e) => {
                unreadable.push(*i);
                warn(&format!(
                    "could not check {} for uncommitted work: {}",
                    crate::render::output::escape(&manifest.relative(&wt.path)),
                    crate::render::output::escape(&e.to_string())
                ));
            }
        }
    }
    for i in unreadable {
        rows[i].state = rows[i].state.min(SessionState::Unchecked);
    }

    for row in &mut rows {
        if row.state == SessionState::Ok || row.state == SessionState::Unchecked {
            if row.locked {
                row.state = SessionState::Locked;
            } else if row.dirty == Some(true) {
                row.state = SessionState::Dirty;
            }
        }
        let base = state
            .bases
            .get(&row.base)
            .and_then(|b| b.as_ref().ok())
            .and_then(|b| oid(b));
        let known = row.branch.as_deref().and_then(|b| state.branches.get(b));
        let tip = match known {
            Some(b) => oid(&b.commit),
            None => row.branch.as_deref().and_then(|b| branch_tip(repo, b)),
        };
        let Some(tip) = tip else { continue };
        row.last_commit = last_commit(repo, tip);
        if let Some(base) = base {
            row.ahead = count_between(repo, tip, base).ok();
            row.behind = count_between(repo, base, tip).ok();
        }
        let upstream = known.and_then(|b| b.upstream.as_ref());
        let upstream_tip = upstream.and_then(|(_, c)| c.as_deref()).and_then(oid);
        row.upstream = upstream.map(|(reference, _)| {
            let (ahead, behind) = match upstream_tip {
                Some(up) => (count_between(repo, tip, up).ok(), count_between(repo, up, tip).ok()),
                None => (None, None),
            };
            Upstream {
                reference: reference.clone(),
                ahead,
                behind,
            }
        });
        // Integrated outranks only what comes after it, and only a branch with commits of
        // its own has work to integrate (a fresh session's tip is its base's ancestor). On
        // the dashboard it means "landed in its base": a branch pushed to its own upstream
        // is not finished work (a removal still counts the upstream, SPEC §7).
        if row.state > SessionState::Integrated
            && row.ahead.is_some_and(|n| n > 0)
            // With the base not moved since, nothing of the branch can be in it.
            && row.behind.is_some_and(|n| n > 0)
            && let Some(base) = base
            && crate::read::inspect::integration(repo, tip, &[base]).is_some()
        {
            row.state = SessionState::Integrated;
        }
    }
    rows
}

/// The path a row stands for (empty when it has none).
fn row_path(row: &Row) -> PathBuf {
    row.path.clone().unwrap_or_default()
}

/// A found worktree's ports, from its metadata file (SPEC §10).
fn metadata_ports(wt: &Worktree) -> std::collections::BTreeMap<String, u16> {
    match &wt.metadata {
        crate::store::metadata::MetadataFile::Valid(m) => m.ports(),
        _ => Default::default(),
    }
}

/// A found worktree's purpose, from its metadata file.
fn metadata_purpose(wt: &Worktree) -> Option<String> {
    match &wt.metadata {
        crate::store::metadata::MetadataFile::Valid(m) => m.str_field("purpose").map(str::to_owned),
        _ => None,
    }
}

fn last_commit(repo: &gix::Repository, tip: gix::ObjectId) -> Option<LastCommit> {
    let commit = repo.find_commit(tip).ok()?;
    let subject = commit.message().map(|m| m.summary().to_string()).unwrap_or_default();
    let time = commit.time().map(|t| t.seconds).unwrap_or_default();
    Some(LastCommit {
        id: tip.to_string(),
        subject,
        time,
    })
}

/// The time ages are measured from, in seconds since the epoch. Debug builds (the test
/// suite's binary) read `FLOWLOOM_NOW` (RFC 3339, e.g. `2026-01-01T03:00:00Z`): the tests
/// fix commit dates with `GIT_COMMITTER_DATE`, and with "now" fixed too, ages in snapshots
/// stay the same from run to run. Release builds never read it.
pub fn now() -> i64 {
    #[cfg(debug_assertions)]
    if let Some(t) = std::env::var("FLOWLOOM_NOW")
        .ok()
        .and_then(|v| v.parse::<jiff::Timestamp>().ok())
    {
        return t.as_second();
    }
    jiff::Timestamp::now().as_second()
}

/// An age as a person glances at it: `45s`, `12m`, `3h`, `2d`, `5w`, `4mo`, `2y`.
pub fn age_text(seconds: i64) -> String {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let s = seconds.max(0);
    match s {
        _ if s < MINUTE => format!("{s}s"),
        _ if s < HOUR => format!("{}m", s / MINUTE),
        _ if s < DAY => format!("{}h", s / HOUR),
        _ if s < 14 * DAY => format!("{}d", s / DAY),
        _ if s < 60 * DAY => format!("{}w", s / (7 * DAY)),
        _ if s < 365 * DAY => format!("{}mo", s / (30 * DAY)),
        _ => format!("{}y", s / (365 * DAY)),
    }
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

/// The longest commit subject shown; narrower when `COLUMNS` says the terminal is.
const MAX_SUBJECT: usize = 50;
/// The longest purpose shown.
const MAX_PURPOSE: usize = 32;

/// `text` as the terminal will show it (escaped), cut to `max` characters with an ellipsis.
fn truncated(text: &str, max: usize) -> String {
    let shown = crate::render::output::escape(text);
    if shown.chars().count() <= max {
        return shown.into_owned();
    }
    let mut out: String = shown.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The terminal's width when the shell exports it (`COLUMNS`); unknown otherwise, and
/// flowloom reads no terminal size itself (that takes an ioctl, which this crate forbids).
fn columns() -> Option<usize> {
    std::env::var("COLUMNS").ok()?.trim().parse().ok().filter(|n| *n > 0)
}

/// `+1 -2` against a base or upstream; `-` when either side is unknown.
fn divergence(ahead: Option<usize>, behind: Option<usize>) -> String {
    match (ahead, behind) {
        (Some(a), Some(b)) => format!("+{a} -{b}"),
        _ => "-".to_owned(),
    }
}

/// The table for people: a header, then one aligned row per session. The purpose and
/// upstream columns appear only when some row has something to put there.
pub fn text(rows: &[Row], manifest: &Manifest, p: &Printer, now: i64) -> String {
    if rows.is_empty() {
        return format!(
            "No sessions. Declare some in {} and run `flowloom apply`.\n",
            manifest.relative(&manifest.path)
        );
    }
    // A purpose that only repeats the id (the manifest's default) says nothing.
    let show_purpose = rows
        .iter()
        .any(|r| r.purpose.as_deref().is_some_and(|p| !p.is_empty() && p != r.session));
    let show_upstream = rows.iter().any(|r| r.upstream.is_some());
    let show_ports = rows.iter().any(|r| !r.ports.is_empty());
    #[derive(Clone, Copy, PartialEq)]
    enum Col {
        Session,
        Purpose,
        Branch,
        State,
        Base,
        Upstream,
        Age,
        Ports,
        Subject,
        Path,
    }
    let cols: Vec<(Col, &str)> = [
        (Col::Session, "SESSION"),
        (Col::Purpose, "PURPOSE"),
        (Col::Branch, "BRANCH"),
        (Col::State, "STATE"),
        (Col::Base, "BASE"),
        (Col::Upstream, "UPSTREAM"),
        (Col::Age, "AGE"),
        (Col::Ports, "PORTS"),
        (Col::Subject, "LAST COMMIT"),
        (Col::Path, "PATH"),
    ]
    .into_iter()
    .filter(|(c, _)| {
        (*c != Col::Purpose || show_purpose)
            && (*c != Col::Upstream || show_upstream)
            && (*c != Col::Ports || show_ports)
    })
    .collect();
    let cell = |r: &Row, c: Col| -> String {
        match c {
            Col::Session => r.session.clone(),
            Col::Purpose => match r.purpose.as_deref() {
                Some(p) if p != r.session => truncated(p, MAX_PURPOSE),
                _ => String::new(),
            },
            Col::Branch => r.branch.clone().unwrap_or_else(|| "(detached)".into()),
            Col::State => r.state.as_str().to_owned(),
            Col::Base => divergence(r.ahead, r.behind),
            Col::Upstream => match &r.upstream {
                Some(u) if u.ahead.is_none() => format!("{} gone", u.reference),
                Some(u) => format!("{} {}", u.reference, divergence(u.ahead, u.behind)),
                None => String::new(),
            },
            Col::Ports => r
                .ports
                .iter()
                .map(|(name, port)| format!("{name}={port}"))
                .collect::<Vec<_>>()
                .join(" "),
            Col::Age => r
                .last_commit
                .as_ref()
                .map_or_else(|| "-".to_owned(), |c| age_text(now - c.time)),
            // Escaped and cut below, once the room for it is known.
            Col::Subject => r.last_commit.as_ref().map(|c| c.subject.clone()).unwrap_or_default(),
            Col::Path => r
                .path
                .as_deref()
                .map(|p| manifest.relative(p))
                .unwrap_or_else(|| "(no worktree)".into()),
        }
    };
    let mut cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cols.iter().map(|(c, _)| cell(r, *c)).collect())
        .collect();
    let header: Vec<String> = cols.iter().map(|(_, h)| (*h).to_owned()).collect();
    let subject_at = cols.iter().position(|(c, _)| *c == Col::Subject);
    let widths_of = |cells: &[Vec<String>]| -> Vec<usize> {
        let mut widths = vec![0; header.len()];
        for row in std::iter::once(&header).chain(cells) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(
                    crate::render::output::escape(cell)
                        .chars()
                        .count()
                        .min(crate::render::MAX_COLUMN),
                );
            }
        }
        widths
    };
    if let Some(at) = subject_at {
        let widths = widths_of(&cells);
        let others: usize = widths
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != at)
            .map(|(_, w)| w + 2)
            .sum();
        // What is left of the terminal, but never so little that a subject says nothing.
        let room = columns().map_or(MAX_SUBJECT, |c| c.saturating_sub(others).clamp(12, MAX_SUBJECT));
        for row in &mut cells {
            row[at] = truncated(&row[at], room);
        }
    }
    let widths = widths_of(&cells);
    let numeric = |c: Col| c == Col::Age;
    let mut out = String::new();
    let line = |out: &mut String, row: &[String], state: Option<Style>, bold: bool| {
        let mut parts = Vec::new();
        for (i, text) in row.iter().enumerate() {
            let (col, _) = cols[i];
            let w = widths[i];
            let padded = if numeric(col) && !bold {
                crate::render::pad_left(text, w)
            } else {
                crate::render::pad(text, w)
            };
            let painted = match (col, state) {
                _ if bold => p.paint(Style::Bold, &padded),
                (Col::State, Some(style)) => p.paint(style, &padded),
                (Col::Subject | Col::Age | Col::Purpose, Some(_)) => p.paint(Style::Dim, &padded),
                _ => padded,
            };
            parts.push(painted);
        }
        // The last column carries no padding.
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&mut out, &header, None, true);
    for (row, r) in cells.iter().zip(rows) {
        line(&mut out, row, Some(r.state.style()), false);
    }
    out
}

#[derive(Serialize)]
pub struct JsonStatus {
    pub format_version: u32,
    pub sessions: Vec<JsonRow>,
}

#[derive(Serialize)]
pub struct JsonRow {
    pub session: String,
    /// The file that declares it (SPEC §11.1); `null` when none does (orphans, unmanaged).
    pub layer: Option<crate::manifest::Layer>,
    pub purpose: Option<String>,
    pub branch: Option<String>,
    /// Relative to the manifest's folder.
    pub path: Option<String>,
    pub state: SessionState,
    pub base: String,
    pub ahead: Option<usize>,
    pub behind: Option<usize>,
    /// The remote-tracking branch, when the branch has one.
    pub upstream: Option<JsonUpstream>,
    pub last_commit: Option<JsonCommit>,
    /// Seconds since the last commit.
    pub age_seconds: Option<i64>,
    pub dirty: Option<bool>,
    pub locked: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// SPEC §10: name → port, from the session's `metadata.json`.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub ports: std::collections::BTreeMap<String, u16>,
}

#[derive(Serialize)]
pub struct JsonUpstream {
    #[serde(rename = "ref")]
    pub reference: String,
    pub ahead: Option<usize>,
    pub behind: Option<usize>,
}

#[derive(Serialize)]
pub struct JsonCommit {
    pub id: String,
    pub subject: String,
    /// RFC 3339, UTC.
    pub time: String,
}

pub fn json(rows: &[Row], manifest: &Manifest, now: i64) -> JsonStatus {
    JsonStatus {
        format_version: 1,
        sessions: rows
            .iter()
            .map(|r| JsonRow {
                session: r.session.clone(),
                layer: manifest.sessions.get(&r.session).map(|s| s.layer),
                purpose: r.purpose.clone(),
                branch: r.branch.clone(),
                path: r.path.as_deref().map(|p| manifest.relative(p)),
                state: r.state,
                base: r.base.clone(),
                ahead: r.ahead,
                behind: r.behind,
                upstream: r.upstream.as_ref().map(|u| JsonUpstream {
                    reference: u.reference.clone(),
                    ahead: u.ahead,
                    behind: u.behind,
                }),
                last_commit: r.last_commit.as_ref().map(|c| JsonCommit {
                    id: c.id.clone(),
                    subject: c.subject.clone(),
                    time: jiff::Timestamp::from_second(c.time)
                        .map(|t| t.to_string())
                        .unwrap_or_default(),
                }),
                age_seconds: r.last_commit.as_ref().map(|c| now - c.time),
                dirty: r.dirty,
                locked: r.locked,
                reasons: r.reasons.clone(),
                ports: r.ports.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        for (seconds, shown) in [
            (-5, "0s"),
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (3 * 3600 + 59, "3h"),
            (2 * 86_400, "2d"),
            (20 * 86_400, "2w"),
            (100 * 86_400, "3mo"),
            (800 * 86_400, "2y"),
        ] {
            assert_eq!(age_text(seconds), shown, "{seconds}");
        }
    }

    #[test]
    fn subjects_are_escaped_then_cut() {
        assert_eq!(truncated("short", 10), "short");
        assert_eq!(truncated("abcdefghij", 5), "abcd…");
        // The escape counts as shown, and is never cut into a fake one.
        assert_eq!(truncated("a\u{1b}[2K", 20), "a\\u001b[2K");
        assert_eq!(truncated("a\u{1b}bcdef", 4), "a\\u…");
        assert_eq!(truncated("ééé", 2), "é…");
    }

    #[test]
    fn states_rank_in_the_documented_order() {
        use SessionState::*;
        let order = [
            Missing, Drifted, Orphan, Retained, Integrated, Unmanaged, Locked, Dirty, Unchecked, Ok,
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }
}
