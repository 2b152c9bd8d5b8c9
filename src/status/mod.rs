//! `flowloom status`: the dashboard. One row per in-scope session, classified by the planner,
//! then completed with the facts the reader (`read::dashboard`) finds of it, and put into
//! words by `render::status`, which imports the rows from here (`status::model`).
//!
//! The classification is the plan's (a declared session with a create change is missing,
//! with an update drifted, an undeclared one the plan retains is retained), so `status` and
//! `plan` can never disagree. What the reader finds ranks after it: setup, lock and dirt
//! words only a row the plan found in order.

mod model;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use model::{Dashboard, DirtCounts, LastCommit, Overlap, Process, Row, SessionState, Upstream};

use crate::manifest::Manifest;
use crate::plan::{Action, Change, Plan, Reason, WorktreeRemoval};
use crate::read::dashboard::{Facts, MainWorktree, Subject, Unreadable};
use crate::read::state::{State, Worktree};
use crate::store::metadata::SetupState;

/// The dashboard: the classified rows completed with what the reader found. Worktrees that
/// could not be read come back beside it (to warn about; they do not stop the others).
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
    let rows = rows(manifest, state, plan);
    let subjects: Vec<Subject<'_>> = rows
        .iter()
        .map(|row| Subject {
            session: &row.session,
            branch: row.branch.as_deref(),
            path: row.path.as_deref(),
            base: &row.base,
            // Integrated outranks only what comes after it.
            integration: row.state > SessionState::Integrated,
        })
        .collect();
    let found = crate::read::dashboard::read(repo, state, &subjects, start_dir);
    drop(subjects);
    let dashboard = Dashboard {
        main: found.main.map(main_row),
        sessions: rows
            .into_iter()
            .zip(found.sessions)
            .map(|(row, facts)| completed(row, facts))
            .collect(),
        overlaps: found.overlaps,
        cwd: found.cwd,
    };
    (dashboard, found.unreadable)
}

/// The main worktree's row.
fn main_row(main: MainWorktree) -> Row {
    let row = Row::new(
        String::new(),
        main.branch,
        Some(main.path),
        SessionState::Ok,
        String::new(),
    );
    completed(row, main.facts)
}

/// A classified row with what the reader found of it, and its final word.
fn completed(mut row: Row, facts: Facts) -> Row {
    if facts.unchecked {
        row.state = row.state.min(SessionState::Unchecked);
    }
    if facts.integrated && row.state > SessionState::Integrated {
        row.state = SessionState::Integrated;
    }
    row.ahead = facts.ahead;
    row.behind = facts.behind;
    row.upstream = facts.upstream;
    row.last_commit = facts.last_commit;
    row.dirt = facts.dirt;
    row.locked = facts.locked;
    row.setup = facts.setup;
    row.in_use = facts.in_use;
    row.current = facts.current;
    classify(&mut row);
    row
}

/// The final word for a row the plan found in order: its setup, lock or dirt.
fn classify(row: &mut Row) {
    if row.state < SessionState::SetupFailed {
        return;
    }
    match row.setup {
        Some(SetupState::Failed) => row.state = SessionState::SetupFailed,
        Some(SetupState::Incomplete) => row.state = SessionState::Incomplete,
        _ if row.state < SessionState::Unchecked => {}
        _ if row.locked => row.state = SessionState::Locked,
        _ if row.dirty() == Some(true) => row.state = SessionState::Dirty,
        _ => {}
    }
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
        let (kind, reasons) = classify_declared(change, state, &path);
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
fn classify_declared(change: Option<&Change>, state: &State, path: &Path) -> (SessionState, Vec<Reason>) {
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
        Some(Action::Blocked { reasons }) => match state.worktrees.get(path) {
            Some(wt) if !wt.missing => (SessionState::Drifted, reasons.clone()),
            _ => (SessionState::Missing, reasons.clone()),
        },
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
            Some(Action::Retain { reasons, .. }) => reasons.clone(),
            Some(Action::Blocked { reasons }) if kind == SessionState::Retained => reasons.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_reader_found_ranks_after_the_plans_word() {
        let row = |state| Row::new("a".into(), Some("b".into()), None, state, "main".into());
        let dirty = Facts {
            dirt: Some(DirtCounts {
                staged: 1,
                modified: 0,
                untracked: 0,
            }),
            ..Facts::default()
        };
        assert_eq!(
            completed(row(SessionState::Ok), dirty.clone()).state,
            SessionState::Dirty
        );
        assert_eq!(
            completed(row(SessionState::Missing), dirty.clone()).state,
            SessionState::Missing
        );
        let integrated = Facts {
            integrated: true,
            ..dirty
        };
        assert_eq!(
            completed(row(SessionState::Ok), integrated.clone()).state,
            SessionState::Integrated
        );
        assert_eq!(
            completed(row(SessionState::Orphan), integrated).state,
            SessionState::Orphan
        );
        let unchecked = Facts {
            unchecked: true,
            ..Facts::default()
        };
        assert_eq!(
            completed(row(SessionState::Ok), unchecked.clone()).state,
            SessionState::Unchecked
        );
        let failed = Facts {
            setup: Some(SetupState::Failed),
            ..unchecked
        };
        assert_eq!(
            completed(row(SessionState::Ok), failed).state,
            SessionState::SetupFailed
        );
    }
}
