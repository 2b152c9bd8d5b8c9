//! SPEC §11.3: a session whose worktree is elsewhere than its path (its `root` or
//! `worktree` changed, or git moved it): moved, or its links repaired.

use std::path::{Path, PathBuf};

use super::declared::{blocked, repairs_in_place};
use super::{Action, Reason, Repair};
use crate::manifest::{Manifest, Session};
use crate::read::state::{State, Worktree};
use crate::store::metadata::Wanted;
use crate::store::ownership::OwnedSession;

/// Where a declared session's worktree is when it is not at its path: a move a killed
/// apply started towards it, or its owned worktree at another path (a changed `root` or
/// `worktree` template), with the registration there.
pub(super) enum MoveSource<'a> {
    Resumed(&'a crate::store::ownership::Moving),
    Found(&'a Worktree),
}

pub(super) fn move_source<'a>(state: &'a State, session: &Session, path: &Path) -> Option<MoveSource<'a>> {
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
pub(super) fn moved_by_git<'a>(state: &'a State, owned: &OwnedSession) -> Option<&'a Worktree> {
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
pub(super) fn plan_move(
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
pub(super) fn move_blockers(state: &State, wt: &Worktree, to: Option<&Path>) -> Vec<Reason> {
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
