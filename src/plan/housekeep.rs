//! Steps that belong to no session (`Housekeeping`), the `info/exclude` lines a removal
//! drops, and the sessions flowloom does not manage.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::moves::{moved_by_git, owned_worktree};
use super::orphan::orphans;
use super::{Action, Change, Housekeeping, Repair, Unmanaged};
use crate::manifest::Manifest;
use crate::read::state::State;

/// For each removal, the exclude lines no session that stays needs.
pub(super) fn exclude_drops(manifest: &Manifest, state: &State, changes: &mut [Change]) {
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
pub(super) fn hidden_sessions<'a>(
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
pub(super) fn staying_elsewhere(state: &State, changes: &[Change]) -> Vec<String> {
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
pub(super) fn moved_from(change: &Change) -> Option<&Path> {
    match &change.action {
        Action::Update { repairs, .. } => repairs.iter().find_map(|r| match r {
            Repair::Move { from, .. } => Some(from.as_path()),
            _ => None,
        }),
        _ => None,
    }
}

pub(super) fn folder_name(path: &Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Steps outside any session: `info/exclude`, what a killed apply left, the trash of an
/// interrupted removal, ownership entries of sessions that are gone.
pub(super) fn housekeeping(manifest: &Manifest, state: &State, changes: &[Change]) -> Vec<Housekeeping> {
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

pub(super) fn unmanaged(manifest: &Manifest, state: &State) -> Vec<Unmanaged> {
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
