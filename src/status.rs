//! `flowloom status`: the dashboard. One row per in-scope session, classified by the planner,
//! then completed by the reader (`read::dashboard`) with what only status asks, and put into
//! words by `render::status`.
//!
//! The classification is the plan's (a declared session with a create change is missing,
//! with an update drifted, an undeclared one the plan retains is retained), so `status` and
//! `plan` can never disagree.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::manifest::Manifest;
use crate::plan::{Action, Change, Plan, WorktreeRemoval};
use crate::read::dashboard::{Dashboard, Row, SessionState, Unreadable};
use crate::read::state::{State, Worktree};

/// The dashboard: the classified rows completed by the reader. Worktrees that could not be
/// read come back beside it (to warn about; they do not stop the others).
///
/// `plan` should be made from a state whose merge questions are answered (see
/// `commands::status`): that is what tells a retained branch from one apply deletes.
pub fn dashboard(
    repo: &gix::Repository,
    manifest: &Manifest,
    state: &State,
    plan: &Plan,
    start_dir: &Path,
) -> (Dashboard, Vec<Unreadable>) {
    crate::read::dashboard::read(repo, state, rows(manifest, state, plan), start_dir)
}

/// The plan's changes by session id and path: one look-up per session, not a search of the
/// plan, so classifying stays linear in sessions.
type ByKey<'a> = HashMap<(&'a str, &'a Path), &'a Change>;

/// The classified rows, sorted by session id then path.
fn rows(manifest: &Manifest, state: &State, plan: &Plan) -> Vec<Row> {
    let by_key: ByKey<'_> = plan
        .changes
        .iter()
        .map(|c| ((c.session.as_str(), c.path.as_path()), c))
        .collect();
    let mut rows = declared_rows(manifest, state, &by_key);
    rows.extend(orphan_rows(manifest, state, &by_key));
    rows.extend(unmanaged_rows(manifest, state, plan));
    rows.sort_by(|a, b| a.session.cmp(&b.session).then_with(|| a.path.cmp(&b.path)));
    rows
}

/// One row per declared session, classified by its change.
fn declared_rows(manifest: &Manifest, state: &State, by_key: &ByKey<'_>) -> Vec<Row> {
    let mut rows = Vec::new();
    for session in manifest.sessions.values() {
        let path = state.root.join(&session.worktree);
        let change = by_key.get(&(session.id.as_str(), path.as_path())).copied();
        let (kind, reasons) = classify_declared(change, manifest, state, &path);
        let mut row = Row::new(
            session.id.clone(),
            Some(session.branch.clone()),
            Some(path),
            kind,
            session.base.clone(),
        );
        row.purpose = Some(session.purpose.clone());
        row.layer = Some(session.layer);
        row.ports = state
            .worktrees
            .get(&row_path(&row))
            .map(metadata_ports)
            .unwrap_or_default();
        row.reasons = reasons;
        rows.push(row);
    }
    rows
}

/// A declared session's state from its change (none: it is as declared), with the reasons
/// a blocked one shows.
fn classify_declared(
    change: Option<&Change>,
    manifest: &Manifest,
    state: &State,
    path: &Path,
) -> (SessionState, Vec<String>) {
    match change.map(|c| &c.action) {
        None => (SessionState::Ok, Vec::new()),
        Some(Action::Create { .. }) => (SessionState::Missing, Vec::new()),
        // Finishing a copy or setup is not drift: the setup state (from metadata) says it.
        Some(Action::Update { repairs, .. })
            if repairs.iter().all(|r| {
                matches!(
                    r,
                    crate::plan::Repair::Copies { finishing: true, .. } | crate::plan::Repair::RunSetup { .. }
                )
            }) =>
        {
            (SessionState::Ok, Vec::new())
        }
        Some(Action::Update { .. }) => (SessionState::Drifted, Vec::new()),
        // Blocked with a worktree in place means it differs in a way apply will not
        // repair (another branch, bad metadata); without one, it is not made yet.
        Some(Action::Blocked { reasons }) => {
            let words = reasons
                .iter()
                .map(|r| crate::render::reason_text(r, manifest))
                .collect();
            match state.worktrees.get(path) {
                Some(wt) if !wt.missing => (SessionState::Drifted, words),
                _ => (SessionState::Missing, words),
            }
        }
        Some(Action::Remove(_) | Action::Retain { .. } | Action::Restore { .. }) => (SessionState::Orphan, Vec::new()),
    }
}

/// One row per session flowloom made that the manifest no longer declares, while anything
/// of it is left in the repository.
fn orphan_rows(manifest: &Manifest, state: &State, by_key: &ByKey<'_>) -> Vec<Row> {
    let mut rows = Vec::new();
    for owned in crate::plan::orphans(manifest, &state.root, state) {
        let wt = crate::plan::owned_worktree(state, owned);
        if wt.is_none() && !state.branches.contains_key(&owned.branch) {
            continue; // Gone entirely: nothing in the repository to report.
        }
        let path = crate::plan::owned_path(state, owned);
        let change = by_key.get(&(owned.id.as_str(), path.as_path())).copied();
        // Retained: the plan keeps the branch, and there is no worktree left to remove
        // (or only a registration whose folder is gone).
        let kind = match change.map(|c| &c.action) {
            Some(Action::Retain { removal, .. })
                if matches!(removal.worktree, WorktreeRemoval::None | WorktreeRemoval::Prune { .. }) =>
            {
                SessionState::Retained
            }
            // SPEC §11.1: kept while flowloom.toml is missing.
            Some(Action::Blocked { reasons })
                if reasons
                    .iter()
                    .any(|r| matches!(r, crate::plan::Reason::CommittedMissing { .. })) =>
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
            Some(Action::Blocked { reasons }) if kind == SessionState::Retained => reasons
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
    rows
}

/// One row per worktree or branch the plan found that flowloom did not make.
fn unmanaged_rows(manifest: &Manifest, state: &State, plan: &Plan) -> Vec<Row> {
    plan.unmanaged
        .iter()
        .map(|u| {
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
            row
        })
        .collect()
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
