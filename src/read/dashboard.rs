//! What `flowloom status` reads of the repository beyond the plan: for the main worktree
//! and each session the dashboard shows, the facts only the dashboard asks.
//!
//! The rows are classified by the `status` stage (which asks the plan); this module reads,
//! for each of them, dirt by kind (every worktree's `git status`, in parallel), how far its
//! branch is from its base and its upstream, the last commit, the setup state its metadata
//! records, the processes working inside (one scan of `/proc` for all of them), whether its
//! commits are in its base already, and its changed paths (one tree diff per session
//! against the merge base with its base, plus its uncommitted files), folded into one map
//! of path → sessions: never a comparison of two sessions. It words and ranks nothing: the
//! facts go back to `status`, which completes its rows with them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::RepoError;
use crate::read::inspect::Dirt;
pub use crate::read::inspect::Process;
use crate::read::state::{State, Worktree};
use crate::store::metadata::{MetadataFile, SetupState};

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

/// A path that two or more sessions change relative to their bases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overlap {
    pub path: String,
    /// Session ids, sorted.
    pub sessions: Vec<String>,
}

/// A worktree whose contents could not be read, and why.
pub struct Unreadable {
    pub path: PathBuf,
    pub error: RepoError,
}

/// What the dashboard asks about one session: which worktree, branch and base to read.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub session: &'a str,
    pub branch: Option<&'a str>,
    /// Absolute worktree path (the wanted one for declared sessions).
    pub path: Option<&'a Path>,
    /// The revspec ahead/behind are counted against.
    pub base: &'a str,
    /// Whether to ask if its commits are in its base already: only where the answer can
    /// change the word the row shows (the walk is not free).
    pub integration: bool,
}

/// What the reader found of one session (or of the main worktree).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Commits on the branch that are not on the base, and the reverse; `None` when the
    /// branch or the base does not exist.
    pub ahead: Option<usize>,
    pub behind: Option<usize>,
    pub upstream: Option<Upstream>,
    pub last_commit: Option<LastCommit>,
    /// `None` when there is no worktree to check (or the check failed).
    pub dirt: Option<DirtCounts>,
    /// The worktree is there, but its contents could not be read.
    pub unchecked: bool,
    pub locked: bool,
    /// The setup state its metadata records (SPEC §11.3); `None` without metadata.
    pub setup: Option<SetupState>,
    /// Processes whose working directory or an open file is inside its worktree.
    pub in_use: Vec<Process>,
    /// The command runs inside this worktree (or a folder of it).
    pub current: bool,
    /// Its branch has commits of its own, its base moved since, and the commits are in the
    /// base already (by ancestry, same tree or patch id). Asked only where `integration`.
    pub integrated: bool,
}

/// The main worktree and what the reader found of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MainWorktree {
    pub path: PathBuf,
    /// `None` when its `HEAD` is detached.
    pub branch: Option<String>,
    pub facts: Facts,
}

/// Everything the dashboard reads: the main worktree (none in a bare repository), each
/// subject's facts in the order asked, the overlaps, and the worktrees that could not be
/// read (to warn about; they do not stop the others).
pub struct Found {
    pub main: Option<MainWorktree>,
    pub sessions: Vec<Facts>,
    pub overlaps: Vec<Overlap>,
    /// Where the command runs (canonical): paths are shown relative to it.
    pub cwd: PathBuf,
    pub unreadable: Vec<Unreadable>,
}

/// The facts of every subject and of the main worktree, and the overlaps.
pub fn read(repo: &gix::Repository, state: &State, subjects: &[Subject<'_>], start_dir: &Path) -> Found {
    let cwd = start_dir.canonicalize().unwrap_or_else(|_| start_dir.to_path_buf());
    let mut main = main_worktree(repo, state, &cwd);
    let mut sessions = vec![Facts::default(); subjects.len()];
    let (dirts, unreadable) = read_dirt(repo, state, subjects, &mut sessions, main.as_mut());
    mark_in_use(state, subjects, &mut sessions);
    let mut changed: Vec<(String, BTreeSet<String>)> = Vec::new();
    for ((subject, facts), dirt) in subjects.iter().zip(&mut sessions).zip(&dirts) {
        facts.current = subject.path.is_some() && subject.path == state.current_worktree.as_deref();
        facts.setup = subject.path.and_then(|p| state.worktrees.get(p)).and_then(setup_state);
        let tip = complete(repo, state, subject, facts);
        let mut paths = committed_changes(repo, state, subject, facts, tip);
        paths.extend(dirt.iter().flat_map(uncommitted_paths));
        changed.push((subject.session.to_owned(), paths));
    }
    Found {
        main,
        sessions,
        overlaps: overlaps(changed),
        cwd,
        unreadable,
    }
}

/// The main worktree: its branch, dirt (read with the sessions'), upstream, last commit.
fn main_worktree(repo: &gix::Repository, state: &State, cwd: &Path) -> Option<MainWorktree> {
    let path = state.main_workdir.clone()?;
    let head = crate::read::inspect::read_small(&repo.common_dir().join("HEAD"))?;
    let branch = crate::read::state::branch_in(&head);
    let mut facts = Facts {
        current: state.current_worktree.is_none() && cwd.starts_with(&path),
        ..Facts::default()
    };
    let tip = match &branch {
        Some(b) => branch_tip(repo, b),
        None => crate::read::inspect::detached_in(&head).as_deref().and_then(oid),
    };
    if let Some(tip) = tip {
        facts.last_commit = last_commit(repo, tip);
        let tracking = branch.as_deref().and_then(|b| {
            let name = crate::names::branch_ref(b);
            let full: &gix::refs::FullNameRef = name.as_str().try_into().ok()?;
            crate::read::state::upstream_of(repo, full)
        });
        facts.upstream = tracking.map(|(reference, commit)| upstream(repo, tip, reference, commit.as_deref()));
    }
    Some(MainWorktree { path, branch, facts })
}

/// Dirt by kind for every subject with a worktree (and the main worktree), in parallel: the
/// planner's answer where it already read one. Returns each session's dirt (for overlaps).
fn read_dirt(
    repo: &gix::Repository,
    state: &State,
    subjects: &[Subject<'_>],
    facts: &mut [Facts],
    main: Option<&mut MainWorktree>,
) -> (Vec<Option<Dirt>>, Vec<Unreadable>) {
    let mut dirts: Vec<Option<Dirt>> = vec![None; subjects.len()];
    let mut unreadable = Vec::new();
    let mut to_check: Vec<(usize, &Worktree)> = Vec::new();
    for (i, (subject, found)) in subjects.iter().zip(facts.iter_mut()).enumerate() {
        let Some(wt) = subject.path.and_then(|p| state.worktrees.get(p)) else {
            continue;
        };
        if wt.missing {
            continue;
        }
        found.locked = wt.lock.is_some();
        match &wt.dirt {
            Some(dirt) => dirts[i] = Some(dirt.clone()),
            None if wt.unreadable.is_some() => found.unchecked = true,
            None => to_check.push((i, wt)),
        }
    }
    let worktrees: Vec<&Worktree> = to_check.iter().map(|(_, wt)| *wt).collect();
    let results = crate::read::state::read_dirt_parallel(repo, &worktrees, &[], true);
    for ((i, wt), result) in to_check.iter().zip(results) {
        match result {
            Ok(dirt) => dirts[*i] = Some(dirt),
            Err(error) => {
                facts[*i].unchecked = true;
                unreadable.push(Unreadable {
                    path: wt.path.clone(),
                    error,
                });
            }
        }
    }
    for (found, dirt) in facts.iter_mut().zip(&dirts) {
        found.dirt = dirt.as_ref().map(DirtCounts::of);
    }
    if let Some(main) = main {
        match main_dirt(repo) {
            Ok(dirt) => main.facts.dirt = Some(DirtCounts::of(&dirt)),
            Err(error) => {
                main.facts.unchecked = true;
                unreadable.push(Unreadable {
                    path: main.path.clone(),
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
fn mark_in_use(state: &State, subjects: &[Subject<'_>], facts: &mut [Facts]) {
    let paths: Vec<&Path> = subjects
        .iter()
        .filter_map(|s| s.path)
        .filter(|p| state.worktrees.get(*p).is_some_and(|wt| !wt.missing))
        .collect();
    let mut found = crate::read::inspect::processes_inside(&paths);
    for (subject, facts) in subjects.iter().zip(facts) {
        if let Some(list) = subject.path.and_then(|p| found.remove(p)) {
            facts.in_use = list;
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

/// Ahead/behind its base and upstream, the last commit, and whether its commits are in
/// its base already; returns the branch's tip.
fn complete(repo: &gix::Repository, state: &State, subject: &Subject<'_>, facts: &mut Facts) -> Option<gix::ObjectId> {
    let base = base_commit(state, subject.base);
    let known = subject.branch.and_then(|b| state.branches.get(b));
    let tip = match known {
        Some(b) => oid(&b.commit),
        None => subject.branch.and_then(|b| branch_tip(repo, b)),
    }?;
    facts.last_commit = last_commit(repo, tip);
    if let Some(base) = base {
        facts.ahead = count_between(repo, tip, base);
        facts.behind = count_between(repo, base, tip);
    }
    if let Some((reference, commit)) = known.and_then(|b| b.upstream.clone()) {
        facts.upstream = Some(upstream(repo, tip, reference, commit.as_deref()));
    }
    // Only a branch with commits of its own has work to integrate (a fresh session's tip
    // is its base's ancestor). On the dashboard it means "landed in its base": a branch
    // pushed to its own upstream is not finished work (a removal still counts the
    // upstream, SPEC §7).
    facts.integrated = subject.integration
        && facts.ahead.is_some_and(|n| n > 0)
        // With the base not moved since, nothing of the branch can be in it.
        && facts.behind.is_some_and(|n| n > 0)
        && base.is_some_and(|base| crate::read::inspect::integration(repo, tip, &[base]).is_some());
    Some(tip)
}

fn base_commit(state: &State, base: &str) -> Option<gix::ObjectId> {
    state.bases.get(base).and_then(|b| b.as_ref().ok()).and_then(|b| oid(b))
}

fn upstream(repo: &gix::Repository, tip: gix::ObjectId, reference: String, commit: Option<&str>) -> Upstream {
    let (ahead, behind) = match commit.and_then(oid) {
        Some(up) => (count_between(repo, tip, up), count_between(repo, up, tip)),
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
fn committed_changes(
    repo: &gix::Repository,
    state: &State,
    subject: &Subject<'_>,
    facts: &Facts,
    tip: Option<gix::ObjectId>,
) -> BTreeSet<String> {
    let (Some(tip), Some(base)) = (tip, base_commit(state, subject.base)) else {
        return BTreeSet::new();
    };
    if facts.ahead == Some(0) {
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

/// Commits reachable from `tip` but not from `hidden` (`git rev-list --count hidden..tip`):
/// the unmerged count, counted where every other is (`inspect::unmerged`); `None` when the
/// history cannot be walked.
fn count_between(repo: &gix::Repository, tip: gix::ObjectId, hidden: gix::ObjectId) -> Option<usize> {
    crate::read::inspect::unmerged(repo, &tip.to_string(), tip, vec![hidden]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
