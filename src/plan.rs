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
    /// Forced (`--force`), it first stores the commits that would become unreachable
    /// under `archive`, and `discard` lists the files it deletes.
    Remove {
        worktree: WorktreeRemoval,
        delete_branch: bool,
        archive: Option<Archive>,
        discard: Vec<String>,
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
    /// The worktree is checked out on `from` and clean: check out the session's branch there
    /// (created per `start` when it does not exist).
    SwitchBranch { from: String, start: Start },
    /// Create `sessions/<id>/artifacts/`.
    Artifacts,
    /// A killed apply left the ownership entry in `creating`: mark it created.
    FinishRecord,
}

/// Where a forced removal keeps the commits it would otherwise make unreachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// `refs/flowloom/archive/<branch>`.
    pub reference: String,
    pub commit: String,
    /// How many commits only this ref keeps.
    pub commits: usize,
}

pub const ARCHIVE_PREFIX: &str = "refs/flowloom/archive/";

/// How to plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// `--force`: remove orphans despite dirty files, session files and unmerged commits.
    pub force: bool,
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
}

/// Compute the plan. `state` must have been read for this `manifest`.
pub fn plan(manifest: &Manifest, state: &State) -> Plan {
    plan_with(manifest, state, &Options::default())
}

pub fn plan_with(manifest: &Manifest, state: &State, options: &Options) -> Plan {
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
        if let Some(action) = plan_orphan(state, owned, &checked_out, options) {
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
        // A hand-edited record cannot make flowloom touch what lies outside its root.
        .filter(|o| o.path.starts_with(root) && o.path != root)
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
    let remote_ref = format!("{}/{}", manifest.defaults.remote, session.branch);
    let remote_commit = state.remote_branches.get(&remote_ref);
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
        return Ok(Start {
            from: StartFrom::Remote,
            reference: remote_ref,
            commit: commit.clone(),
        });
    }
    if let Some(b) = state.branches.get(&session.branch) {
        return Ok(Start {
            from: StartFrom::Local,
            reference: session.branch.clone(),
            commit: b.commit.clone(),
        });
    }
    if let Some(commit) = remote_commit {
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
    // Declared again while a removal of it was interrupted: the files that removal deleted
    // come back with a fresh checkout; anything else in the worktree is someone's work.
    let half_removed = owned.is_some_and(|o| o.state == OwnedState::Removing);
    if half_removed && !wt.missing {
        match &wt.dirt {
            Some(dirt)
                if dirt.modified.is_empty()
                    && dirt.staged.is_empty()
                    && dirt.untracked.is_empty()
                    && dirt.session_files.is_empty() => {}
            _ => {
                return Some(Action::Blocked {
                    reasons: vec![
                        "its removal was interrupted and the worktree has changes besides the deleted files; \
                         commit or remove them"
                            .to_owned(),
                    ],
                });
            }
        }
    }
    if let Some(stray) = wt.stray.as_ref().filter(|s| !s.is_empty() && half_made) {
        return Some(Action::Blocked {
            reasons: vec![format!(
                "a killed apply left this checkout half-made, and it now holds {} {} its checkout did not write \
                 ({}); move {} away, then apply again",
                stray.len(),
                plural(stray.len(), "file"),
                stray.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                if stray.len() == 1 { "it" } else { "them" }
            )],
        });
    }
    if wt.missing || half_removed || (half_made && wt.lock.as_deref() == Some(INITIALIZING)) {
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
            match switch_back(manifest, state, session, wt, elsewhere) {
                Ok(repair) => repairs.push(repair),
                Err(why) => {
                    return Some(Action::Blocked {
                        reasons: vec![format!(
                            "{why}; switch it back by hand (git -C {} switch {})",
                            display(manifest, path),
                            session.branch
                        )],
                    });
                }
            }
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
    if half_made || half_removed {
        repairs.push(Repair::FinishRecord);
    }
    (!repairs.is_empty()).then_some(Action::Update { repairs, wanted })
}

/// A reason a removal is blocked, and whether `--force` lifts it (SPEC §7: dirty files,
/// session files and unmerged commits yes; a lock or the current worktree never).
struct Block {
    reason: String,
    forceable: bool,
}

/// A worktree checked out on another branch goes back to its session's branch only when
/// that loses nothing: it is on a branch (which keeps its commits), and it is clean.
fn switch_back(
    manifest: &Manifest,
    state: &State,
    session: &Session,
    wt: &Worktree,
    elsewhere: Option<String>,
) -> Result<Repair, String> {
    let Some(from) = wt.branch.clone() else {
        return Err("worktree has a detached HEAD, whose commits only it may hold".to_owned());
    };
    let on = format!("worktree is checked out on `{from}` instead of `{}`", session.branch);
    if let Some(why) = elsewhere {
        return Err(format!("{on} and {why}"));
    }
    // A switch back that a kill interrupted leaves changes of its own; they do not count
    // when every one of them is (`State::read` checked the contents).
    let finishing = wt.switching_to.as_deref() == Some(session.branch.as_str()) && wt.switch_resumable;
    match &wt.dirt {
        Some(dirt) if dirt.is_clean_tracked() || finishing => {}
        Some(_) => return Err(format!("{on}, with uncommitted changes")),
        None => return Err(format!("{on}; its contents were not checked")),
    }
    let start = start_of(manifest, state, session).map_err(|why| format!("{on}: {why}"))?;
    Ok(Repair::SwitchBranch { from, start })
}

fn plan_orphan(
    state: &State,
    owned: &OwnedSession,
    checked_out: &BTreeMap<&str, &Path>,
    options: &Options,
) -> Option<Action> {
    let wt: Option<&Worktree> = state.worktrees.get(&owned.path);
    let branch = state.branches.get(&owned.branch);
    if wt.is_none() && branch.is_none() {
        return None;
    }
    let mut blocks = Vec::new();
    let mut block = |reason: String, forceable: bool| blocks.push(Block { reason, forceable });
    let half_made = owned.state == OwnedState::Creating;
    // A removal that was interrupted deleted some files itself: those are not work.
    let resuming = owned.state == OwnedState::Removing;
    let mut discard = Vec::new();
    if let Some(wt) = wt {
        if let Some(reason) = wt.lock.as_deref().filter(|r| !(half_made && *r == INITIALIZING)) {
            block(format!("worktree is locked ({})", lock_text(reason)), false);
        }
        if state.current_worktree.as_deref() == Some(owned.path.as_path()) {
            block("flowloom was started inside this worktree".to_owned(), false);
        }
        if let Some(dirt) = &wt.dirt {
            for (files, what) in [
                (&dirt.modified, "modified"),
                (&dirt.staged, "staged"),
                (&dirt.deleted, "deleted"),
                (&dirt.untracked, "untracked"),
            ] {
                let ours = resuming && what == "deleted";
                if !files.is_empty() && !ours {
                    let n = files.len();
                    block(format!("worktree has {n} {what} {}", plural(n, "file")), true);
                }
            }
            if !dirt.session_files.is_empty() {
                let n = dirt.session_files.len();
                block(
                    format!("sessions/{}/ holds {n} {} (artifacts)", owned.id, plural(n, "file")),
                    true,
                );
            }
            discard = dirt.all_paths();
            if resuming {
                discard.retain(|p| !dirt.deleted.contains(p));
            }
        } else if !wt.missing {
            let why = wt.unreadable.as_deref().unwrap_or("not checked");
            block(format!("worktree contents could not be checked ({why})"), false);
        }
    }
    // The branch goes with the session only when no other worktree has it checked out,
    // and never when it is what sessions start from.
    let is_a_base = state.bases.contains_key(&owned.branch);
    let delete_branch = branch.is_some()
        && !is_a_base
        && checked_out
            .get(owned.branch.as_str())
            .is_none_or(|p| *p == owned.path.as_path());
    let mut archive = None;
    if let (true, Some(b)) = (delete_branch, branch) {
        match b.unmerged {
            Some(0) => {}
            Some(n) => {
                let upstream = b
                    .upstream
                    .as_ref()
                    .map(|(u, _)| format!(" nor from `{u}`"))
                    .unwrap_or_default();
                block(
                    format!(
                        "branch `{}` has {n} {} reachable neither from base `{}`{upstream}",
                        owned.branch,
                        plural(n, "commit"),
                        owned.base
                    ),
                    true,
                );
                archive = Some(Archive {
                    reference: archive_ref(state, &owned.branch, &b.commit),
                    commit: b.commit.clone(),
                    commits: n,
                });
            }
            None => block(
                format!("branch `{}` was not checked for unmerged commits", owned.branch),
                false,
            ),
        }
    }
    let forced = !blocks.is_empty() && options.force && blocks.iter().all(|b| b.forceable);
    if !blocks.is_empty() && !forced {
        return Some(Action::Blocked {
            reasons: blocks.into_iter().map(|b| b.reason).collect(),
        });
    }
    let worktree = match wt {
        Some(wt) if wt.missing => WorktreeRemoval::Prune,
        Some(_) => WorktreeRemoval::Remove,
        None => WorktreeRemoval::None,
    };
    if !forced {
        discard.clear();
    }
    Some(Action::Remove {
        worktree,
        delete_branch,
        archive,
        discard,
    })
}

/// `refs/flowloom/archive/<branch>`, or with `-2`, `-3`… when an earlier archive of a
/// branch of the same name holds other commits: an archive is never overwritten.
fn archive_ref(state: &State, branch: &str, commit: &str) -> String {
    let base = format!("{ARCHIVE_PREFIX}{branch}");
    let mut name = base.clone();
    let mut n = 1;
    while let Some(existing) = state.archives.get(&name) {
        if existing == commit {
            break;
        }
        n += 1;
        name = format!("{base}-{n}");
    }
    name
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

#[cfg(test)]
mod tests {
    //! Property tests: plans are deterministic, and carrying a plan out (modelled on plain
    //! values, as apply does it on disk) then planning again leaves nothing to do.
    use super::*;
    use crate::metadata::Metadata;
    use crate::ownership::Record;
    use crate::state::{Branch, Dirt};
    use proptest::prelude::*;

    const IDS: [&str; 4] = ["a", "b", "c", "d"];
    const COMMIT: &str = "1111111111111111111111111111111111111111";

    #[derive(Debug, Clone)]
    struct Case {
        declared: Vec<Option<String>>, // per id: declared with this purpose?
        sessions: Vec<SessionState>,
    }

    #[derive(Debug, Clone)]
    struct SessionState {
        worktree: u8, // 0 none, 1 present, 2 folder gone
        branch: bool,
        owned: Option<OwnedState>,
        dirty: bool,
        unmerged: usize,
        metadata: u8, // 0 missing, 1 matching, 2 other purpose
        locked: bool,
        on_other_branch: bool,
    }

    fn session_state() -> impl Strategy<Value = SessionState> {
        (
            0u8..3,
            any::<bool>(),
            prop_oneof![
                Just(None),
                Just(Some(OwnedState::Created)),
                Just(Some(OwnedState::Creating)),
                Just(Some(OwnedState::Removing))
            ],
            any::<bool>(),
            0usize..2,
            0u8..3,
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.2),
        )
            .prop_map(
                |(worktree, branch, owned, dirty, unmerged, metadata, locked, on_other_branch)| SessionState {
                    worktree,
                    branch: branch || worktree > 0,
                    owned,
                    dirty,
                    unmerged,
                    metadata,
                    locked,
                    on_other_branch,
                },
            )
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            prop::collection::vec(
                prop::option::of(prop_oneof![Just("one".to_owned()), Just("two".to_owned())]),
                4,
            ),
            prop::collection::vec(session_state(), 4),
        )
            .prop_map(|(declared, sessions)| Case { declared, sessions })
    }

    fn manifest(case: &Case) -> Manifest {
        let mut text = String::new();
        for (id, purpose) in IDS.iter().zip(&case.declared) {
            if let Some(p) = purpose {
                text.push_str(&format!("[sessions.{id}]\npurpose = \"{p}\"\n"));
            }
        }
        Manifest::from_source(Path::new("/repo/flowloom.toml"), text).expect("generated manifests are valid")
    }

    fn metadata_for(id: &str, purpose: &str, path: &Path) -> MetadataFile {
        let w = Wanted {
            session_id: id.to_owned(),
            purpose: purpose.to_owned(),
            working_directory: path.to_string_lossy().into_owned(),
            git_branch: format!("session/{id}"),
            worktree_name: format!("shell-instance-{id}"),
        };
        parse(&w.create(1, "2026-01-01T00:00:00Z"))
    }

    fn parse(text: &str) -> MetadataFile {
        match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(fields)) => MetadataFile::Valid(Metadata {
                fields,
                text: text.to_owned(),
            }),
            _ => MetadataFile::Invalid("bad".into()),
        }
    }

    fn state(case: &Case) -> State {
        let root = PathBuf::from("/repo/sessions");
        let mut state = State {
            root: root.clone(),
            ..State::default()
        };
        state.bases.insert("main".into(), Ok(COMMIT.into()));
        for (id, s) in IDS.iter().zip(&case.sessions) {
            let path = root.join(format!("shell-instance-{id}"));
            let branch = format!("session/{id}");
            if s.worktree > 0 {
                let missing = s.worktree == 2;
                let metadata = match s.metadata {
                    _ if missing => MetadataFile::Missing,
                    0 => MetadataFile::Missing,
                    1 => metadata_for(id, "one", &path),
                    _ => metadata_for(id, "other", &path),
                };
                let dirt = Dirt {
                    modified: if s.dirty { vec!["README.md".into()] } else { vec![] },
                    ..Dirt::default()
                };
                state.worktrees.insert(
                    path.clone(),
                    Worktree {
                        path: path.clone(),
                        admin_id: format!("shell-instance-{id}"),
                        branch: Some(if s.on_other_branch {
                            format!("other-{id}")
                        } else {
                            branch.clone()
                        }),
                        lock: s.locked.then(|| "on a usb disk".to_owned()),
                        missing,
                        session_id: Some((*id).to_owned()),
                        metadata,
                        has_artifacts: !missing,
                        dirt: (!missing).then_some(dirt),
                        unreadable: None,
                        stray: None,
                        switching_to: None,
                        switch_resumable: false,
                    },
                );
            }
            if s.branch {
                state.branches.insert(
                    branch.clone(),
                    Branch {
                        name: branch.clone(),
                        commit: COMMIT.into(),
                        upstream: None,
                        unmerged: Some(s.unmerged),
                    },
                );
            }
            if let Some(owned) = s.owned {
                state.owned.sessions.push(OwnedSession {
                    id: (*id).to_owned(),
                    branch,
                    path,
                    base: "main".into(),
                    state: owned,
                });
            }
        }
        state
    }

    /// What apply does, on values.
    fn carry_out(plan: &Plan, state: &State) -> State {
        let mut next = state.clone();
        let mut record = Record {
            version: 1,
            sessions: next.owned.sessions.clone(),
        };
        for change in &plan.changes {
            let fresh = |wanted: &Wanted| parse(&wanted.create(1, "2026-01-01T00:00:00Z"));
            match &change.action {
                Action::Create { wanted, base, .. } => {
                    next.branches.entry(change.branch.clone()).or_insert_with(|| Branch {
                        name: change.branch.clone(),
                        commit: COMMIT.into(),
                        upstream: None,
                        unmerged: Some(0),
                    });
                    next.worktrees.insert(
                        change.path.clone(),
                        Worktree {
                            path: change.path.clone(),
                            admin_id: String::new(),
                            branch: Some(change.branch.clone()),
                            lock: None,
                            missing: false,
                            session_id: Some(change.session.clone()),
                            metadata: fresh(wanted),
                            has_artifacts: true,
                            dirt: Some(Dirt::default()),
                            unreadable: None,
                            stray: None,
                            switching_to: None,
                            switch_resumable: false,
                        },
                    );
                    record.upsert(OwnedSession {
                        id: change.session.clone(),
                        branch: change.branch.clone(),
                        path: change.path.clone(),
                        base: base.clone(),
                        state: OwnedState::Created,
                    });
                }
                Action::Update { repairs, wanted } => {
                    let wt = next.worktrees.get_mut(&change.path).expect("updates have a worktree");
                    for r in repairs {
                        match r {
                            Repair::Worktree { .. } => {
                                wt.branch = Some(change.branch.clone());
                                wt.missing = false;
                                wt.lock = None;
                                wt.dirt = Some(Dirt::default());
                            }
                            Repair::Metadata { new: Some(text), .. } => wt.metadata = parse(text),
                            Repair::Metadata { new: None, .. } => wt.metadata = fresh(wanted),
                            Repair::SwitchBranch { .. } => wt.branch = Some(change.branch.clone()),
                            Repair::Artifacts => wt.has_artifacts = true,
                            Repair::FinishRecord => {
                                if let Some(o) = record.sessions.iter_mut().find(|o| o.path == change.path) {
                                    o.state = OwnedState::Created;
                                }
                            }
                        }
                    }
                }
                Action::Remove {
                    worktree,
                    delete_branch,
                    ..
                } => {
                    if *worktree != WorktreeRemoval::None {
                        next.worktrees.remove(&change.path);
                    }
                    if *delete_branch {
                        next.branches.remove(&change.branch);
                    }
                    record.remove_path(&change.path);
                }
                Action::Blocked { .. } => {}
            }
        }
        next.owned = record;
        next
    }

    proptest! {
        #[test]
        fn plans_are_deterministic(case in case()) {
            let (m, s) = (manifest(&case), state(&case));
            prop_assert_eq!(plan(&m, &s), plan(&m, &s));
        }

        #[test]
        fn applying_a_plan_converges(case in case(), force in any::<bool>()) {
            let (m, s) = (manifest(&case), state(&case));
            let options = Options { force };
            let first = plan_with(&m, &s, &options);
            let after = carry_out(&first, &s);
            let second = plan_with(&m, &after, &options);
            prop_assert!(!second.has_changes(), "first plan {:#?}\nsecond plan {:#?}", first, second);
            // Whatever stayed blocked is blocked for the same reasons.
            let blocked = |p: &Plan| p.changes.iter().filter(|c| matches!(c.action, Action::Blocked { .. })).cloned().collect::<Vec<_>>();
            prop_assert_eq!(blocked(&first), blocked(&second));
        }

        #[test]
        fn blocked_sessions_keep_their_work(case in case(), force in any::<bool>()) {
            let (m, s) = (manifest(&case), state(&case));
            let p = plan_with(&m, &s, &Options { force });
            for change in &p.changes {
                if let Action::Remove { archive, discard, delete_branch, .. } = &change.action {
                    // Only owned sessions are ever removed, never locked ones; without
                    // --force never dirty or unmerged ones; with it, what would be lost is
                    // archived (commits) or listed (files).
                    prop_assert!(s.owned.by_path(&change.path).is_some());
                    if let Some(wt) = s.worktrees.get(&change.path) {
                        prop_assert!(wt.lock.is_none());
                        let dirt = wt.dirt.clone().unwrap_or_default();
                        prop_assert_eq!(discard, &dirt.all_paths());
                        prop_assert!(force || dirt.is_clean());
                    }
                    if let (true, Some(b)) = (*delete_branch, s.branches.get(&change.branch)) {
                        let unmerged = b.unmerged.expect("checked");
                        prop_assert!(force || unmerged == 0);
                        prop_assert_eq!(archive.as_ref().map(|a| a.commits), (unmerged > 0).then_some(unmerged));
                    }
                }
            }
        }
    }
}
