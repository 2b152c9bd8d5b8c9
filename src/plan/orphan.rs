//! Orphans (SPEC §7): sessions flowloom made that the manifest no longer declares, removed
//! when nothing would be lost, retained or blocked otherwise; archives for forced removals.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::SetupOf;
use super::environment::trusts;
use super::moves::owned_worktree;
use super::{Action, Archive, Change, Options, Reason, Removal, Teardown, WorktreeRemoval, rules};
use crate::manifest::Manifest;
use crate::read::state::{Branch, State, Worktree};
use crate::store::metadata::MetadataFile;
use crate::store::ownership::{OwnedSession, OwnedState};

/// A checkout flowloom's own killed apply left half-made: recorded `creating`, locked
/// `initializing`, folder present.
pub(super) fn half_made(owned: &OwnedSession, wt: &Worktree) -> bool {
    // A kill between the registration and the folder (or during the prune of such a
    // registration) leaves its own `initializing` lock on a folder that is not there.
    let unfinished = match wt.missing {
        false => owned.state == OwnedState::Creating,
        true => owned.state != OwnedState::Created,
    };
    unfinished && rules::own_checkout_lock(wt.lock.as_deref())
}

/// Owned sessions that no declared session claims (by worktree path or branch).
pub fn orphans<'a>(manifest: &Manifest, root: &Path, state: &'a State) -> Vec<&'a OwnedSession> {
    let paths: BTreeSet<PathBuf> = manifest.sessions.values().map(|s| root.join(&s.worktree)).collect();
    let branches: BTreeSet<&str> = manifest.sessions.values().map(|s| s.branch.as_str()).collect();
    state
        .owned
        .sessions
        .iter()
        .filter(|o| !paths.contains(&o.path) && !branches.contains(o.branch.as_str()))
        // Inside the root; outside it (a changed `root` left it there, or `git worktree
        // move` took it) only while git registers it there on its branch: a hand-edited
        // record cannot make flowloom touch anything else outside its root (record paths
        // are normalised when read: no `..` survives).
        .filter(|o| {
            (o.path.starts_with(root) && o.path != root)
                || owned_worktree(state, o).is_some_and(|wt| wt.branch.as_deref() == Some(o.branch.as_str()))
        })
        .filter(|o| {
            !o.path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        })
        .collect()
}

/// An orphan whose worktree is in the trash and changed since it was checked. Moved back
/// only while its registration waits for it: a folder no registration points at any more
/// would come back as a folder that is not a worktree (SPEC §11.4).
pub(super) fn changed_in_trash(owned: &OwnedSession, wt: Option<&Worktree>, from: &Path) -> Action {
    if wt.is_some_and(|wt| wt.missing) {
        return Action::Restore {
            from: from.to_owned(),
            base: owned.base.clone(),
        };
    }
    Action::Blocked {
        reasons: vec![Reason::NewSincePlan {
            files: vec![format!(
                "(the folder {} changed in the trash after its registration was dropped)",
                from.display()
            )],
        }],
    }
}

/// What deleting an orphan's branch would lose: its commits the base (or its upstream) does
/// not reach, unless the base integrated them; gives the integration that vouches for it.
pub(super) fn branch_loss(
    owned: &OwnedSession,
    b: &Branch,
    loss: &mut Loss,
) -> Option<crate::read::inspect::Integration> {
    match b.unmerged.map(|n| rules::merge(n, || b.integrated)) {
        Some(rules::Merge::Merged) => None,
        Some(rules::Merge::Integrated(how)) => Some(how),
        Some(rules::Merge::Unmerged(n)) => {
            loss.reasons.push(Reason::Unmerged {
                branch: owned.branch.clone(),
                count: n,
                base: owned.base.clone(),
                upstream: b.upstream.as_ref().map(|(u, _)| u.clone()),
            });
            loss.keep.push(b.commit.clone());
            loss.commits += n;
            None
        }
        None => {
            loss.reasons.push(Reason::UnmergedUnchecked {
                branch: owned.branch.clone(),
            });
            None
        }
    }
}

/// How an orphan's worktree goes: its trashed folder finished, a registration whose folder is
/// gone pruned, or the worktree removed.
pub(super) fn worktree_removal(wt: Option<&Worktree>, trashed: Option<&PathBuf>, half_made: bool) -> WorktreeRemoval {
    match wt {
        Some(wt) if wt.missing && trashed.is_some() => WorktreeRemoval::Trashed {
            admin_id: wt.admin_id.clone(),
            trash: trashed.cloned().unwrap_or_default(),
            half_made: rules::own_checkout_lock(wt.lock.as_deref()),
        },
        Some(wt) if wt.missing => WorktreeRemoval::Prune {
            admin_id: wt.admin_id.clone(),
        },
        Some(wt) => WorktreeRemoval::Remove {
            admin_id: wt.admin_id.clone(),
            half_made,
        },
        None => WorktreeRemoval::None,
    }
}

pub(super) fn plan_orphan(
    state: &State,
    owned: &OwnedSession,
    checked_out: &BTreeMap<&str, &Path>,
    options: &Options,
    environment: &crate::manifest::Environment,
) -> Option<Action> {
    let wt: Option<&Worktree> = owned_worktree(state, owned);
    let path = wt.map_or(owned.path.as_path(), |wt| wt.path.as_path());
    let branch = state.branches.get(&owned.branch);
    // Its worktree is in the trash: changed since it was checked, it goes back (and the next
    // plan judges it afresh); exactly as checked, its removal is finished below.
    let trashed = owned.trash.as_ref().filter(|t| state.trash.contains(t));
    if let Some(from) = trashed.filter(|t| !state.trash_intact.contains(*t)) {
        return Some(changed_in_trash(owned, wt, from));
    }
    if wt.is_none() && branch.is_none() {
        return None;
    }
    let half_made = wt.is_some_and(|wt| half_made(owned, wt));
    let mut loss = match wt {
        Some(wt) => worktree_loss(state, owned, wt, half_made),
        None => Loss::default(),
    };
    // The branch goes with the session only when flowloom created it (SPEC §11.2), no
    // other worktree has it checked out, and never when it is what sessions start from.
    let is_a_base = state.bases.contains_key(&owned.branch);
    let delete_branch = branch.filter(|_| {
        owned.branch_created && !is_a_base && checked_out.get(owned.branch.as_str()).is_none_or(|p| *p == path)
    });
    let integrated = delete_branch.and_then(|b| branch_loss(owned, b, &mut loss));
    let worktree = worktree_removal(wt, trashed, half_made);
    let forced = !loss.reasons.is_empty() && options.force && loss.reasons.iter().all(Reason::forceable);
    // Only the branch holds unmerged work: the worktree can go, the branch stays.
    let only_branch = !loss.reasons.is_empty() && loss.reasons.iter().all(|r| matches!(r, Reason::Unmerged { .. }));
    // SPEC §11.3: a worktree that is there and goes runs the teardown first (a checkout a
    // killed apply left half-made never ran its setup).
    let teardown = match (&worktree, loss.reasons.is_empty() || forced || only_branch) {
        (WorktreeRemoval::Remove { half_made: false, .. }, true) => {
            match teardown_of(state, owned, wt, environment, options.force) {
                Ok(teardown) => teardown,
                Err(reason) => {
                    loss.reasons.push(reason);
                    return Some(Action::Blocked { reasons: loss.reasons });
                }
            }
        }
        // The folder is gone: nothing to run the teardown in. It does not run (nor needs
        // trust); the plan names it, so that what it would have dropped is not forgotten.
        (WorktreeRemoval::Prune { .. }, _) if !environment.teardown.is_empty() => Some(Teardown {
            commands: environment.teardown.clone(),
            vars: Vec::new(),
            go_on: false,
        }),
        _ => None,
    };
    if only_branch && !forced {
        return Some(Action::Retain {
            removal: Removal {
                worktree,
                delete_branch: None,
                integrated: None,
                archive: None,
                discard: Vec::new(),
                base: owned.base.clone(),
                exclude_drop: Vec::new(),
                teardown,
            },
            reasons: loss.reasons,
        });
    }
    if !loss.reasons.is_empty() && !forced {
        return Some(Action::Blocked { reasons: loss.reasons });
    }
    let archive = if forced {
        match archive_for(wt.and_then(|wt| wt.head.clone()), &mut loss) {
            Ok(archive) => archive,
            Err(reason) => return Some(Action::Blocked { reasons: vec![reason] }),
        }
    } else {
        None
    };
    Some(Action::Remove(Removal {
        worktree,
        delete_branch: delete_branch.map(|b| b.commit.clone()),
        integrated,
        archive,
        discard: if forced { loss.discard } else { Vec::new() },
        base: owned.base.clone(),
        exclude_drop: Vec::new(),
        teardown,
    }))
}

/// SPEC §11.3: the teardown an orphan's removal runs, from `environment` (its declaration
/// when the command drops it, else `[defaults]`), with its variables expanded (its ports
/// from its `metadata.json`); blocked when this machine does not trust it.
pub(super) fn teardown_of(
    state: &State,
    owned: &OwnedSession,
    wt: Option<&Worktree>,
    environment: &crate::manifest::Environment,
    force: bool,
) -> Result<Option<Teardown>, Reason> {
    if environment.teardown.is_empty() {
        return Ok(None);
    }
    if !trusts(state, environment) {
        return Err(Reason::TeardownNotTrusted {
            script: environment.setup_script(),
        });
    }
    let ports = match wt.map(|wt| &wt.metadata) {
        Some(MetadataFile::Valid(m)) => m.ports(),
        _ => BTreeMap::new(),
    };
    let worktree = wt
        .map_or(owned.path.as_path(), |wt| wt.path.as_path())
        .to_string_lossy();
    let vars = crate::manifest::environment::variables(
        environment,
        &crate::manifest::environment::Values {
            id: &owned.id,
            branch: &owned.branch,
            worktree: &worktree,
            ports: &ports,
        },
    );
    Ok(Some(Teardown {
        commands: environment.teardown.clone(),
        vars,
        go_on: force,
    }))
}

/// What removing an orphan would lose, and why that blocks it.
#[derive(Default)]
pub(super) struct Loss {
    reasons: Vec<Reason>,
    /// Files whose changes would be lost (relative to the worktree).
    discard: Vec<String>,
    /// Commits to keep in an archive, and how many commits only they hold.
    keep: Vec<String>,
    commits: usize,
}

/// What deleting an orphan's worktree would lose (SPEC §7): files, session files,
/// detached commits; and what forbids it outright: a lock, a submodule, a process, the
/// worktree flowloom runs in (`rules::removal_blockers`, which apply checks again with).
pub(super) fn worktree_loss(state: &State, owned: &OwnedSession, wt: &Worktree, half_made: bool) -> Loss {
    let facts = worktree_facts(state, wt, half_made);
    let mut loss = Loss {
        reasons: rules::removal_blockers(&facts, &owned.id, None),
        ..Loss::default()
    };
    if let Some((head, Some(n))) = facts.detached
        && n > 0
    {
        loss.keep.push(head);
        loss.commits += n;
    }
    if let Some(dirt) = &wt.dirt {
        loss.discard = dirt.all_paths();
    }
    loss
}

/// What the reader found in an orphan's worktree, as the removal rules take it.
pub(super) fn worktree_facts(state: &State, wt: &Worktree, half_made: bool) -> rules::WorktreeFacts {
    rules::WorktreeFacts {
        lock: wt.lock.clone(),
        half_made,
        started_inside: state.current_worktree.as_deref() == Some(wt.path.as_path()),
        submodule: wt.submodule.clone(),
        foreign_git: wt.foreign_git.clone(),
        nested: wt.nested.clone(),
        processes: wt.processes.clone(),
        detached: wt.detached.clone().map(|head| (head, wt.unreachable)),
        dirt: wt.dirt.clone(),
        unreadable: wt.unreadable.clone(),
        missing: wt.missing,
    }
}

/// Where a forced removal keeps what it would lose: the worktree's files committed on top
/// of its `HEAD`, a detached `HEAD`'s commits, the branch's unmerged commits; all under one
/// archive ref. `None` when nothing needs keeping.
pub(super) fn archive_for(head: Option<String>, loss: &mut Loss) -> Result<Option<Archive>, Reason> {
    let snapshot = match (&head, loss.discard.is_empty()) {
        (_, true) => None,
        (Some(head), false) => Some(head.clone()),
        (None, false) => {
            return Err(Reason::Unreadable {
                why: "its HEAD does not name a commit to keep its uncommitted files on".to_owned(),
            });
        }
    };
    if let Some(s) = &snapshot
        && !loss.keep.contains(s)
    {
        loss.keep.insert(0, s.clone());
    }
    if loss.keep.is_empty() {
        return Ok(None);
    }
    let keep = std::mem::take(&mut loss.keep);
    // Named once the whole plan is known (`name_archives`): two archives of one plan never
    // share a name.
    Ok(Some(Archive {
        reference: String::new(),
        keep,
        commits: loss.commits,
        snapshot,
    }))
}

/// SPEC §11.4: archive refs never clash. Each archive gets a folder of its own,
/// `refs/flowloom/archive/<n>/<branch>`, `<n>` one more than the largest number already
/// used: `feat` and `feat/x` can both be archived (`…/1/feat`, `…/2/feat/x`, where
/// `…/feat` beside `…/feat/x` is a file/folder clash git refuses), and a second archive of
/// a branch never overwrites the first. Names of the first version (`…/archive/<branch>`,
/// `…/<branch>-2`) stay as they are and are read as archives too. An archive an earlier,
/// interrupted run already wrote for exactly these commits is reused.
pub(super) fn name_archives(state: &State, changes: &mut [Change]) {
    let prefix = crate::names::ARCHIVE_PREFIX;
    let first_parts: BTreeSet<&str> = state
        .archives
        .keys()
        .filter_map(|name| name.strip_prefix(prefix)?.split('/').next())
        .collect();
    let mut next = first_parts
        .iter()
        .filter_map(|part| part.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    for change in changes {
        let Action::Remove(Removal {
            archive: Some(archive), ..
        }) = &mut change.action
        else {
            continue;
        };
        if let Some(reference) = &state.archive_in_the_way {
            change.action = Action::Blocked {
                reasons: vec![Reason::ArchiveRefInTheWay {
                    reference: reference.clone(),
                }],
            };
            continue;
        }
        let reusable = match (&archive.snapshot, archive.keep.as_slice()) {
            (None, [only]) => state
                .archives
                .iter()
                .find(|(name, commit)| *commit == only && archived_branch(name) == Some(change.branch.as_str()))
                .map(|(name, _)| name.clone()),
            _ => None,
        };
        if let Some(name) = reusable {
            archive.reference = name;
            continue;
        }
        next += 1;
        while first_parts.contains(next.to_string().as_str()) {
            next += 1;
        }
        archive.reference = crate::names::archive_ref(next, &change.branch);
    }
}

/// The branch an archive ref keeps, by its name: `…/archive/<n>/<branch>`, or the first
/// version's `…/archive/<branch>` (its `-2`, `-3`… names are not told apart from branches
/// that end so, and are never reused).
pub(super) fn archived_branch(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(crate::names::ARCHIVE_PREFIX)?;
    match rest.split_once('/') {
        Some((n, branch)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Some(branch),
        _ => Some(rest),
    }
}
