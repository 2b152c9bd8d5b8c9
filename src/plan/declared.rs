//! The plan of a declared session: create it, repair it, or say why not (SPEC §3, §6).

use std::collections::BTreeMap;
use std::path::Path;

use super::SetupOf;
use super::environment::{copies_and_setup, missing_ports, prepare, trusted};
use super::moves::{MoveSource, move_source, owned_worktree, plan_move};
use super::orphan::{half_made, orphans};
use super::{Action, BaseFailure, Reason, Repair, Start, StartFrom, SwitchBlock, rules, tracking};
use crate::manifest::{Manifest, Session};
use crate::read::state::{Needs, State, Worktree};
use crate::store::metadata::{MetadataFile, Wanted};
use crate::store::ownership::OwnedState;

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
pub(super) fn ask_copy(needs: &mut Needs, state: &State, session: &Session) {
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

pub(super) fn wanted(session: &Session, path: &Path) -> Wanted {
    Wanted {
        session_id: session.id.clone(),
        purpose: session.purpose.clone(),
        working_directory: path.to_string_lossy().into_owned(),
        git_branch: session.branch.clone(),
        worktree_name: session.worktree.clone(),
    }
}

/// Where a branch for `session` would start (SPEC §6), or why it cannot.
pub(super) fn start_of(manifest: &Manifest, state: &State, session: &Session) -> Result<Start, Reason> {
    let remote = &manifest.defaults.remote;
    let remote_ref = format!("{remote}/{}", session.branch);
    let remote_commit = state.remote_branches.get(&remote_ref);
    if let crate::read::tracking::AutoSetupMerge::Invalid(value) = &state.auto_setup_merge {
        return Err(Reason::BaseUnresolved {
            base: session.base.clone(),
            why: BaseFailure::BadAutoSetupMerge { value: value.clone() },
        });
    }
    let remote_branch = crate::read::tracking::BaseBranch::Remote(crate::read::tracking::Upstream::new(
        remote.clone(),
        crate::names::branch_ref(&session.branch),
    ));
    let setting = tracking::Tracking {
        merge: &state.auto_setup_merge,
        rebase: state.auto_setup_rebase,
    };
    let unresolved = |why| Reason::BaseUnresolved {
        base: session.base.clone(),
        why,
    };
    let from_remote = |commit: &String| -> Result<Start, Reason> {
        Ok(Start {
            from: StartFrom::Remote,
            reference: remote_ref.clone(),
            commit: commit.clone(),
            upstream: tracking::upstream_for(setting, Some(&remote_branch), &session.branch).map_err(unresolved)?,
        })
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
        return from_remote(commit);
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
        return from_remote(commit);
    }
    match state.bases.get(&session.base) {
        Some(Ok(commit)) => Ok(Start {
            from: StartFrom::Base,
            reference: session.base.clone(),
            commit: commit.clone(),
            upstream: tracking::upstream_for(setting, state.base_branches.get(&session.base), &session.branch)
                .map_err(unresolved)?,
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
pub(super) fn post_checkout(state: &State) -> Option<crate::hooks::HooksDir> {
    state.hooks.clone().filter(|h| h.may_run("post-checkout"))
}

/// Why checking `start` out for session `id` would go wrong: what git could not write as
/// flowloom writes it, or a file the commit tracks where flowloom keeps the session's own
/// (git checks the committed `sessions/<id>/metadata.json` out; flowloom never overwrites it).
pub(super) fn checkout_blocker(state: &State, start: &Start, id: &str) -> Option<Reason> {
    if let Some(why) = state.checkout_problems.get(&start.commit) {
        return Some(Reason::CannotCheckOut { why: why.clone() });
    }
    let tracked = state.tracked_session_files.get(&start.commit)?;
    let path = tracked.get(id).or_else(|| tracked.get(""))?;
    Some(Reason::SessionFolderTracked { path: path.clone() })
}

pub(super) fn blocked(reason: Reason) -> Option<Action> {
    Some(Action::Blocked { reasons: vec![reason] })
}

pub(super) fn plan_declared(
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
            .and_then(|repairs| Ok((repairs, copies_and_setup(state, session, path, wt, owned)?)))
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
pub(super) fn plan_create(
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
            prepare: prepare(state, session, path),
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
pub(super) fn remake(
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
            prepare: prepare(state, session, &wt.path),
        },
        Repair::Metadata { old: None, new: None },
        Repair::Artifacts,
    ])
}

/// Drift of a declared session whose worktree is in place: another branch checked out,
/// metadata missing or outdated, the artifacts folder missing.
pub(super) fn repairs_in_place(
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
pub(super) fn switch_back(
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
