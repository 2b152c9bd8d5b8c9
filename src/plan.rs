//! `plan(&Manifest, &State) -> Plan`: the rules of SPEC §3, §6 and §7 as a pure function.
//!
//! No I/O and no gix types: everything the rules need is in `State`, so every rule can be
//! tested with plain values. Expected outcomes — a blocked removal, drift — are values in
//! the plan, not errors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::manifest::{Manifest, Session};
use crate::metadata::{MetadataFile, Wanted};
use crate::ownership::{OwnedSession, OwnedState};
use crate::state::{State, Worktree};

/// The lock reason `git worktree add` (and gix) leave while a checkout is under way.
pub const INITIALIZING: &str = "initializing";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Sorted by session id, then path.
    pub changes: Vec<Change>,
    pub unmanaged: Vec<Unmanaged>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub session: String,
    pub branch: String,
    /// Absolute worktree path.
    pub path: PathBuf,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Branch (per `start`), worktree, session folder, metadata, ownership entry.
    Create {
        start: Start,
        wanted: Wanted,
        base: String,
    },
    /// Repairs of a declared session, in the order apply carries them out.
    Update {
        repairs: Vec<Repair>,
        wanted: Wanted,
    },
    /// An orphan: its worktree (removed, or pruned when the folder is gone), then its branch.
    Remove {
        worktree: WorktreeRemoval,
        delete_branch: bool,
    },
    Blocked {
        reasons: Vec<String>,
    },
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Create { .. } => "create",
            Action::Update { .. } => "update",
            Action::Remove { .. } => "remove",
            Action::Blocked { .. } => "blocked",
        }
    }
}

/// Where a new branch starts (SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub from: StartFrom,
    /// The local branch, `<remote>/<branch>`, or the base revspec.
    pub reference: String,
    pub commit: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    Local,
    Remote,
    Base,
}

impl StartFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            StartFrom::Local => "local",
            StartFrom::Remote => "remote",
            StartFrom::Base => "base",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// The worktree is gone (folder deleted by hand) or half-made by a killed apply: drop
    /// the registration (`reset` also discards a half-made checkout) and add it again.
    Worktree { start: Start, reset: bool },
    /// Write `metadata.json`: `old` is the text found (None when missing), `new` the text
    /// to write (None: a new file, made at apply time with `startTime` and `shellPid`).
    Metadata { old: Option<String>, new: Option<String> },
    /// Create `sessions/<id>/artifacts/`.
    Artifacts,
    /// A killed apply left the ownership entry in `creating`: mark it created.
    FinishRecord,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorktreeRemoval {
    Remove,
    /// The folder was deleted by hand: drop the registration only.
    Prune,
    /// Nothing registered at the path any more.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmanaged {
    pub session: String,
    pub branch: Option<String>,
    pub path: Option<PathBuf>,
}

impl Plan {
    pub fn count(&self, kind: &str) -> usize {
        self.changes.iter().filter(|c| c.action.kind() == kind).count()
    }

    /// Whether applying would change anything (blocked entries change nothing).
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| !matches!(c.action, Action::Blocked { .. }))
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Compute the plan. `state` must have been read for this `manifest`.
pub fn plan(manifest: &Manifest, state: &State) -> Plan {
    let mut changes = Vec::new();
    // Where each branch is checked out, across every worktree flowloom knows of.
    let mut checked_out: BTreeMap<&str, &Path> = state
        .busy_branches
        .iter()
        .map(|(b, p)| (b.as_str(), p.as_path()))
        .collect();
    for wt in state.worktrees.values() {
        if let Some(b) = &wt.branch {
            checked_out.insert(b.as_str(), wt.path.as_path());
        }
    }

    for session in manifest.sessions.values() {
        let path = state.root.join(&session.worktree);
        let action = plan_declared(manifest, state, session, &path, &checked_out);
        if let Some(action) = action {
            changes.push(Change {
                session: session.id.clone(),
                branch: session.branch.clone(),
                path,
                action,
            });
        }
    }

    for owned in orphans(manifest, &state.root, state) {
        if let Some(action) = plan_orphan(state, owned, &checked_out) {
            changes.push(Change {
                session: owned.id.clone(),
                branch: owned.branch.clone(),
                path: owned.path.clone(),
                action,
            });
        }
    }
    changes.sort_by(|a, b| a.session.cmp(&b.session).then_with(|| a.path.cmp(&b.path)));

    Plan {
        changes,
        unmanaged: unmanaged(manifest, state),
    }
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
        .collect()
}

fn wanted(session: &Session, path: &Path) -> Wanted {
    Wanted {
        session_id: session.id.clone(),
        purpose: session.purpose.clone(),
        working_directory: path.to_string_lossy().into_owned(),
        git_branch: session.branch.clone(),
        worktree_name: session.worktree.clone(),
    }
}

/// Where a branch for `session` would start (SPEC §6), or why it cannot.
fn start_of(manifest: &Manifest, state: &State, session: &Session) -> Result<Start, String> {
    if let Some(b) = state.branches.get(&session.branch) {
        return Ok(Start {
            from: StartFrom::Local,
            reference: session.branch.clone(),
            commit: b.commit.clone(),
        });
    }
    let remote_ref = format!("{}/{}", manifest.defaults.remote, session.branch);
    if let Some(commit) = state.remote_branches.get(&remote_ref) {
        return Ok(Start {
            from: StartFrom::Remote,
            reference: remote_ref,
            commit: commit.clone(),
        });
    }
    match state.bases.get(&session.base) {
        Some(Ok(commit)) => Ok(Start {
            from: StartFrom::Base,
            reference: session.base.clone(),
            commit: commit.clone(),
        }),
        Some(Err(why)) => Err(format!("base `{}` does not resolve to a commit: {why}", session.base)),
        None => Err(format!("base `{}` was not read", session.base)),
    }
}

fn plan_declared(
    manifest: &Manifest,
    state: &State,
    session: &Session,
    path: &Path,
    checked_out: &BTreeMap<&str, &Path>,
) -> Option<Action> {
    let wanted = wanted(session, path);
    let owned = state.owned.by_path(path);
    let elsewhere = checked_out
        .get(session.branch.as_str())
        .filter(|p| **p != path)
        .map(|p| format!("branch `{}` is checked out in {}", session.branch, display(manifest, p)));

    let Some(wt) = state.worktrees.get(path) else {
        let mut reasons: Vec<String> = elsewhere.into_iter().collect();
        if state.occupied.contains(path) {
            reasons.push(format!(
                "{} exists and is not a registered worktree; move it away",
                display(manifest, path)
            ));
        }
        return Some(match start_of(manifest, state, session) {
            Ok(start) if reasons.is_empty() => Action::Create {
                start,
                wanted,
                base: session.base.clone(),
            },
            Ok(_) => Action::Blocked { reasons },
            Err(why) => {
                reasons.push(why);
                Action::Blocked { reasons }
            }
        });
    };

    let mut repairs = Vec::new();
    let half_made = owned.is_some_and(|o| o.state == OwnedState::Creating);
    if wt.missing || (half_made && wt.lock.as_deref() == Some(INITIALIZING)) {
        if let Some(reason) = wt.lock.as_deref().filter(|r| *r != INITIALIZING || !half_made) {
            return Some(Action::Blocked {
                reasons: vec![format!(
                    "worktree folder is gone but the worktree is locked ({})",
                    lock_text(reason)
                )],
            });
        }
        if let Some(why) = elsewhere {
            return Some(Action::Blocked { reasons: vec![why] });
        }
        let start = match start_of(manifest, state, session) {
            Ok(start) => start,
            Err(why) => return Some(Action::Blocked { reasons: vec![why] }),
        };
        repairs.push(Repair::Worktree {
            start,
            reset: !wt.missing,
        });
        repairs.push(Repair::Metadata { old: None, new: None });
        repairs.push(Repair::Artifacts);
    } else {
        if wt.branch.as_deref() != Some(session.branch.as_str()) {
            let on = wt
                .branch
                .as_deref()
                .map_or("a detached HEAD".to_owned(), |b| format!("`{b}`"));
            return Some(Action::Blocked {
                reasons: vec![format!(
                    "worktree is checked out on {on} instead of `{}`; switch it back (git -C {} switch {})",
                    session.branch,
                    display(manifest, path),
                    session.branch
                )],
            });
        }
        match &wt.metadata {
            MetadataFile::Missing => repairs.push(Repair::Metadata { old: None, new: None }),
            MetadataFile::Invalid(why) => {
                return Some(Action::Blocked {
                    reasons: vec![format!(
                        "sessions/{}/metadata.json is not valid ({why}); fix or delete it",
                        session.id
                    )],
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
    }
    if half_made {
        repairs.push(Repair::FinishRecord);
    }
    (!repairs.is_empty()).then_some(Action::Update { repairs, wanted })
}

fn plan_orphan(state: &State, owned: &OwnedSession, checked_out: &BTreeMap<&str, &Path>) -> Option<Action> {
    let wt: Option<&Worktree> = state.worktrees.get(&owned.path);
    let branch = state.branches.get(&owned.branch);
    if wt.is_none() && branch.is_none() {
        return None;
    }
    let mut reasons = Vec::new();
    let half_made = owned.state == OwnedState::Creating;
    if let Some(wt) = wt {
        if let Some(reason) = wt.lock.as_deref().filter(|r| !(half_made && *r == INITIALIZING)) {
            reasons.push(format!("worktree is locked ({})", lock_text(reason)));
        }
        if state.current_worktree.as_deref() == Some(owned.path.as_path()) {
            reasons.push("flowloom was started inside this worktree".to_owned());
        }
        if let Some(dirt) = &wt.dirt {
            for (n, what) in [
                (dirt.modified, "modified"),
                (dirt.staged, "staged"),
                (dirt.deleted, "deleted"),
                (dirt.untracked, "untracked"),
            ] {
                if n > 0 {
                    reasons.push(format!("worktree has {n} {what} {}", plural(n, "file")));
                }
            }
            if dirt.session_files > 0 {
                reasons.push(format!(
                    "sessions/{}/ holds {} {} (artifacts)",
                    owned.id,
                    dirt.session_files,
                    plural(dirt.session_files, "file")
                ));
            }
        } else if !wt.missing {
            reasons.push("worktree contents were not checked".to_owned());
        }
    }
    // The branch goes with the session only when no other worktree has it checked out.
    let delete_branch = branch.is_some()
        && checked_out
            .get(owned.branch.as_str())
            .is_none_or(|p| *p == owned.path.as_path());
    if let (true, Some(b)) = (delete_branch, branch) {
        match b.unmerged {
            Some(0) => {}
            Some(n) => {
                let upstream = b
                    .upstream
                    .as_ref()
                    .map(|(u, _)| format!(" nor from `{u}`"))
                    .unwrap_or_default();
                reasons.push(format!(
                    "branch `{}` has {n} {} reachable neither from base `{}`{upstream}",
                    owned.branch,
                    plural(n, "commit"),
                    owned.base
                ));
            }
            None => reasons.push(format!(
                "branch `{}` was not checked for unmerged commits",
                owned.branch
            )),
        }
    }
    if !reasons.is_empty() {
        return Some(Action::Blocked { reasons });
    }
    let worktree = match wt {
        Some(wt) if wt.missing => WorktreeRemoval::Prune,
        Some(_) => WorktreeRemoval::Remove,
        None => WorktreeRemoval::None,
    };
    Some(Action::Remove {
        worktree,
        delete_branch,
    })
}

fn unmanaged(manifest: &Manifest, state: &State) -> Vec<Unmanaged> {
    let declared_paths: BTreeSet<PathBuf> = manifest
        .sessions
        .values()
        .map(|s| state.root.join(&s.worktree))
        .collect();
    let declared_branches: BTreeSet<&str> = manifest.sessions.values().map(|s| s.branch.as_str()).collect();
    let owned_branches: BTreeSet<&str> = state.owned.sessions.iter().map(|o| o.branch.as_str()).collect();
    let mut out = Vec::new();
    let mut listed_branches = BTreeSet::new();
    for wt in state.worktrees.values() {
        if declared_paths.contains(&wt.path) || state.owned.by_path(&wt.path).is_some() {
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
        if state.worktrees.values().any(|wt| wt.branch.as_deref() == Some(b)) {
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

fn lock_text(reason: &str) -> String {
    if reason.is_empty() {
        "no reason given".to_owned()
    } else {
        format!("reason: {reason}")
    }
}

pub fn plural(n: usize, word: &str) -> String {
    if n == 1 { word.to_owned() } else { format!("{word}s") }
}

/// A path for messages: relative to the manifest's folder when inside it.
fn display(manifest: &Manifest, path: &Path) -> String {
    manifest.relative(path)
}
