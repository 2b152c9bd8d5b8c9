//! What `flowloom status` shows, read from the repository: one row for the main worktree,
//! one per session, and the paths that two or more sessions change (overlaps).
//!
//! The rows arrive classified (`status::rows` asks the plan); this module completes them
//! with what only the dashboard asks: dirt by kind (every worktree's `git status`, in
//! parallel), how far each branch is from its base and its upstream, the last commit, the
//! setup state its metadata records, the processes working inside (one scan of `/proc`
//! for all of them), and each session's changed paths (one tree diff per session against
//! the merge base with its base, plus its uncommitted files), folded into one map of path
//! → sessions: never a comparison of two sessions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::RepoError;
use crate::read::inspect::Dirt;
pub use crate::read::inspect::Process;
use crate::read::state::{State, Worktree};
use crate::store::metadata::{MetadataFile, SetupState};

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
    /// Its setup command failed (SPEC §11.3): never `ok`.
    #[serde(rename = "setup failed")]
    SetupFailed,
    /// Its copy or setup did not finish (a kill, Ctrl-C): the next `apply` finishes it.
    Incomplete,
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
            SessionState::SetupFailed => "setup failed",
            SessionState::Incomplete => "incomplete",
            SessionState::Locked => "locked",
            SessionState::Dirty => "dirty",
            SessionState::Unchecked => "unchecked",
            SessionState::Ok => "ok",
        }
    }
}

/// The remote-tracking branch a branch follows, and how far apart they are (`None` when
/// the remote-tracking branch is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub reference: String,
    pub ahead: Option<usize>,
    pub behind: Option<usize>,
}

/// The commit a branch points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastCommit {
    pub id: String,
    /// As `git log --format=%s` shows it: the first paragraph, on one line.
    pub subject: String,
    /// Committer time, seconds since the epoch.
    pub time: i64,
}

/// Uncommitted work by kind, as `git status --porcelain` counts it: entries staged (index
/// against `HEAD`), changed or deleted in the worktree (against the index), untracked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DirtCounts {
    pub staged: usize,
    pub modified: usize,
    pub untracked: usize,
}

impl DirtCounts {
    pub fn of(dirt: &Dirt) -> DirtCounts {
        DirtCounts {
            staged: dirt.staged.len(),
            modified: dirt.modified.len() + dirt.deleted.len(),
            untracked: dirt.untracked.len(),
        }
    }

    pub fn is_clean(&self) -> bool {
        *self == DirtCounts::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub session: String,
    /// The manifest file that declares it (SPEC §11.1); `None` when none does.
    pub layer: Option<crate::manifest::Layer>,
    /// The manifest's, else the metadata file's.
    pub purpose: Option<String>,
    pub branch: Option<String>,
    /// Absolute worktree path: the wanted one for declared sessions, the found one else.
    pub path: Option<PathBuf>,
    pub state: SessionState,
    /// The revspec ahead/behind are counted against (empty for the main worktree).
    pub base: String,
    /// Commits on the branch that are not on the base, and the reverse; `None` when the
    /// branch or the base does not exist.
    pub ahead: Option<usize>,
    pub behind: Option<usize>,
    pub upstream: Option<Upstream>,
    pub last_commit: Option<LastCommit>,
    /// `None` when there is no worktree to check (or the check failed).
    pub dirt: Option<DirtCounts>,
    pub locked: bool,
    /// Why a declared session is blocked, from the plan.
    pub reasons: Vec<String>,
    /// SPEC §10: the ports its `metadata.json` holds.
    pub ports: BTreeMap<String, u16>,
    /// The setup state its metadata records (SPEC §11.3); `None` without metadata.
    pub setup: Option<SetupState>,
    /// Processes whose working directory or an open file is inside its worktree.
    pub in_use: Vec<Process>,
    /// The command runs inside this worktree (or a folder of it).
    pub current: bool,
}

impl Row {
    pub fn new(
        session: String,
        branch: Option<String>,
        path: Option<PathBuf>,
        state: SessionState,
        base: String,
    ) -> Row {
        Row {
            session,
            layer: None,
            purpose: None,
            branch,
            path,
            state,
            base,
            ahead: None,
            behind: None,
            upstream: None,
            last_commit: None,
            dirt: None,
            locked: false,
            reasons: Vec::new(),
            ports: BTreeMap::new(),
            setup: None,
            in_use: Vec::new(),
            current: false,
        }
    }

    pub fn dirty(&self) -> Option<bool> {
        self.dirt.map(|d| !d.is_clean())
    }
}

/// A path that two or more sessions change relative to their bases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overlap {
    pub path: String,
    /// Session ids, sorted.
    pub sessions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    /// The main worktree (none in a bare repository).
    pub main: Option<Row>,
    pub sessions: Vec<Row>,
    pub overlaps: Vec<Overlap>,
    /// Where the command runs (canonical): paths are shown relative to it.
    pub cwd: PathBuf,
}

/// A worktree whose contents could not be read, and why.
pub struct Unreadable {
    pub path: PathBuf,
    pub error: RepoError,
}

/// The dashboard from classified session rows: every fact completed, the main worktree's
/// row added, overlaps folded. Worktrees that could not be read are returned beside it.
pub fn read(
    repo: &gix::Repository,
    state: &State,
    mut sessions: Vec<Row>,
    start_dir: &Path,
) -> (Dashboard, Vec<Unreadable>) {
    let cwd = start_dir.canonicalize().unwrap_or_else(|_| start_dir.to_path_buf());
    let mut main = main_row(repo, state, &cwd);
    let (dirts, unreadable) = read_dirt(repo, state, &mut sessions, main.as_mut());
    if let Some(main) = main.as_mut() {
        classify(main);
    }
    mark_in_use(state, &mut sessions);
    let mut changed: Vec<(String, BTreeSet<String>)> = Vec::new();
    for (row, dirt) in sessions.iter_mut().zip(&dirts) {
        row.current = row.path.is_some() && row.path == state.current_worktree;
        row.setup = row
            .path
            .as_ref()
            .and_then(|p| state.worktrees.get(p))
            .and_then(setup_state);
        let tip = complete(repo, state, row);
        let mut paths = committed_changes(repo, state, row, tip);
        paths.extend(dirt.iter().flat_map(uncommitted_paths));
        changed.push((row.session.clone(), paths));
        classify(row);
    }
    let dashboard = Dashboard {
        main,
        sessions,
        overlaps: overlaps(changed),
        cwd,
    };
    (dashboard, unreadable)
}

/// The main worktree's row: its branch, dirt (read with the sessions'), upstream, last commit.
fn main_row(repo: &gix::Repository, state: &State, cwd: &Path) -> Option<Row> {
    let path = state.main_workdir.clone()?;
    let head = crate::read::inspect::read_small(&repo.common_dir().join("HEAD"))?;
    let branch = crate::read::state::branch_in(&head);
    let mut row = Row::new(
        String::new(),
        branch.clone(),
        Some(path.clone()),
        SessionState::Ok,
        String::new(),
    );
    row.current = state.current_worktree.is_none() && cwd.starts_with(&path);
    let tip = match &branch {
        Some(b) => branch_tip(repo, b),
        None => crate::read::inspect::detached_in(&head).as_deref().and_then(oid),
    };
    let Some(tip) = tip else { return Some(row) };
    row.last_commit = last_commit(repo, tip);
    let tracking = branch.as_deref().and_then(|b| {
        let name = crate::names::branch_ref(b);
        let full: &gix::refs::FullNameRef = name.as_str().try_into().ok()?;
        crate::read::state::upstream_of(repo, full)
    });
    row.upstream = tracking.map(|(reference, commit)| upstream(repo, tip, reference, commit.as_deref()));
    Some(row)
}

/// Dirt by kind for every row with a worktree (and the main worktree), in parallel: the
/// planner's answer where it already read one. Returns each session's dirt (for overlaps).
fn read_dirt(
    repo: &gix::Repository,
    state: &State,
    sessions: &mut [Row],
    main: Option<&mut Row>,
) -> (Vec<Option<Dirt>>, Vec<Unreadable>) {
    let mut dirts: Vec<Option<Dirt>> = vec![None; sessions.len()];
    let mut unreadable = Vec::new();
    let mut to_check: Vec<(usize, &Worktree)> = Vec::new();
    for (i, row) in sessions.iter_mut().enumerate() {
        let Some(wt) = row.path.as_ref().and_then(|p| state.worktrees.get(p)) else {
            continue;
        };
        if wt.missing {
            continue;
        }
        row.locked = wt.lock.is_some();
        match &wt.dirt {
            Some(dirt) => dirts[i] = Some(dirt.clone()),
            None if wt.unreadable.is_some() => row.state = row.state.min(SessionState::Unchecked),
            None => to_check.push((i, wt)),
        }
    }
    let worktrees: Vec<&Worktree> = to_check.iter().map(|(_, wt)| *wt).collect();
    let results = crate::read::state::read_dirt_parallel(repo, &worktrees, &[], true);
    for ((i, wt), result) in to_check.iter().zip(results) {
        match result {
            Ok(dirt) => dirts[*i] = Some(dirt),
            Err(error) => {
                sessions[*i].state = sessions[*i].state.min(SessionState::Unchecked);
                unreadable.push(Unreadable {
                    path: wt.path.clone(),
                    error,
                });
            }
        }
    }
    for (row, dirt) in sessions.iter_mut().zip(&dirts) {
        row.dirt = dirt.as_ref().map(DirtCounts::of);
    }
    if let Some(main) = main {
        match main_dirt(repo) {
            Ok(dirt) => main.dirt = Some(DirtCounts::of(&dirt)),
            Err(error) => {
                main.state = SessionState::Unchecked;
                unreadable.push(Unreadable {
                    path: main.path.clone().unwrap_or_default(),
                    error,
                });
            }
        }
    }
    (dirts, unreadable)
}

/// The main worktree's `git status`.
fn main_dirt(repo: &gix::Repository) -> Result<Dirt, RepoError> {
    let mut main = repo
        .main_repo()
        .map_err(|e| RepoError::git("open the main worktree of", repo.common_dir(), e))?;
    main.objects = repo.objects.clone(); // the same objects (and alternates)
    let path = main.workdir().unwrap_or(main.git_dir()).to_path_buf();
    crate::read::inspect::status_dirt(&main, &path, true)
}

/// One scan of the processes for every session worktree.
fn mark_in_use(state: &State, sessions: &mut [Row]) {
    let paths: Vec<&Path> = sessions
        .iter()
        .filter_map(|r| r.path.as_deref())
        .filter(|p| state.worktrees.get(*p).is_some_and(|wt| !wt.missing))
        .collect();
    let mut found = crate::read::inspect::processes_inside(&paths);
    for row in sessions {
        if let Some(list) = row.path.as_ref().and_then(|p| found.remove(p)) {
            row.in_use = list;
        }
    }
}

/// What the session's metadata records of its setup (none without valid metadata).
fn setup_state(wt: &Worktree) -> Option<SetupState> {
    match &wt.metadata {
        MetadataFile::Valid(m) => Some(m.setup_state()),
        _ => None,
    }
}

/// Ahead/behind its base and upstream, and the last commit; returns the branch's tip.
fn complete(repo: &gix::Repository, state: &State, row: &mut Row) -> Option<gix::ObjectId> {
    let base = base_commit(state, &row.base);
    let known = row.branch.as_deref().and_then(|b| state.branches.get(b));
    let tip = match known {
        Some(b) => oid(&b.commit),
        None => row.branch.as_deref().and_then(|b| branch_tip(repo, b)),
    }?;
    row.last_commit = last_commit(repo, tip);
    if let Some(base) = base {
        row.ahead = count_between(repo, tip, base).ok();
        row.behind = count_between(repo, base, tip).ok();
    }
    if let Some((reference, commit)) = known.and_then(|b| b.upstream.clone()) {
        row.upstream = Some(upstream(repo, tip, reference, commit.as_deref()));
    }
    // Integrated outranks only what comes after it, and only a branch with commits of its
    // own has work to integrate (a fresh session's tip is its base's ancestor). On the
    // dashboard it means "landed in its base": a branch pushed to its own upstream is not
    // finished work (a removal still counts the upstream, SPEC §7).
    if row.state > SessionState::Integrated
        && row.ahead.is_some_and(|n| n > 0)
        // With the base not moved since, nothing of the branch can be in it.
        && row.behind.is_some_and(|n| n > 0)
        && let Some(base) = base
        && crate::read::inspect::integration(repo, tip, &[base]).is_some()
    {
        row.state = SessionState::Integrated;
    }
    Some(tip)
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

fn base_commit(state: &State, base: &str) -> Option<gix::ObjectId> {
    state.bases.get(base).and_then(|b| b.as_ref().ok()).and_then(|b| oid(b))
}

fn upstream(repo: &gix::Repository, tip: gix::ObjectId, reference: String, commit: Option<&str>) -> Upstream {
    let (ahead, behind) = match commit.and_then(oid) {
        Some(up) => (count_between(repo, tip, up).ok(), count_between(repo, up, tip).ok()),
        None => (None, None),
    };
    Upstream {
        reference,
        ahead,
        behind,
    }
}

/// The paths a session's commits change: its tip's tree against the merge base with its
/// base (`git diff base...branch --name-only`). Nothing when the tip is in the base.
fn committed_changes(repo: &gix::Repository, state: &State, row: &Row, tip: Option<gix::ObjectId>) -> BTreeSet<String> {
    let (Some(tip), Some(base)) = (tip, base_commit(state, &row.base)) else {
        return BTreeSet::new();
    };
    if row.ahead == Some(0) {
        return BTreeSet::new();
    }
    let Some(fork) = repo.merge_base(tip, base).ok().flatten().map(gix::Id::detach) else {
        return BTreeSet::new();
    };
    crate::read::inspect::changed_paths(repo, fork, tip).unwrap_or_default()
}

/// Every path the worktree changes without committing it.
fn uncommitted_paths(dirt: &Dirt) -> Vec<String> {
    [&dirt.staged, &dirt.modified, &dirt.deleted, &dirt.untracked]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
}

/// Path → the sessions that change it, kept where there are two or more; sorted by path.
pub fn overlaps(changed: Vec<(String, BTreeSet<String>)>) -> Vec<Overlap> {
    let mut by_path: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (session, paths) in changed {
        for path in paths {
            by_path.entry(path).or_default().insert(session.clone());
        }
    }
    by_path
        .into_iter()
        .filter(|(_, sessions)| sessions.len() > 1)
        .map(|(path, sessions)| Overlap {
            path,
            sessions: sessions.into_iter().collect(),
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_rank_in_the_documented_order() {
        use SessionState::*;
        let order = [
            Missing,
            Drifted,
            Orphan,
            Retained,
            Integrated,
            Unmanaged,
            SetupFailed,
            Incomplete,
            Locked,
            Dirty,
            Unchecked,
            Ok,
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn overlaps_are_the_paths_two_sessions_change() {
        let set = |paths: &[&str]| paths.iter().map(|p| (*p).to_owned()).collect::<BTreeSet<_>>();
        let found = overlaps(vec![
            ("beta".into(), set(&["src/api.rs", "b.txt"])),
            ("alpha".into(), set(&["src/api.rs", "a.txt"])),
            ("gamma".into(), set(&["a.txt", "src/api.rs"])),
        ]);
        assert_eq!(
            found,
            [
                Overlap {
                    path: "a.txt".into(),
                    sessions: vec!["alpha".into(), "gamma".into()]
                },
                Overlap {
                    path: "src/api.rs".into(),
                    sessions: vec!["alpha".into(), "beta".into(), "gamma".into()]
                },
            ]
        );
    }
}
