//! SPEC §11.2 `flowloom merge`: land a session's branch on its base branch. [`prepare`]
//! computes everything in memory (tree merges, new commits, the worktree's changes) and
//! checks that nothing is in the way; [`write`] then writes the objects, the worktree where
//! the base is checked out, and moves the base with a compare-and-swap. A conflict or a
//! refusal writes nothing: no object, no ref, no file.

use std::collections::BTreeSet;
use std::path::PathBuf;

use gix::bstr::{BStr, BString, ByteSlice};
use gix::refs::transaction::{Change as RefChange, LogChange, PreviousValue, RefEdit, RefLog};
use miette::Diagnostic;

use crate::error::RepoError;

/// How the session's commits land on the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One new commit on the base with the session's changes.
    Squash,
    /// Each commit replayed onto the base (cherry-pick semantics), linear.
    Rebase,
    /// Only when the base is an ancestor: the base moves to the session's tip.
    FfOnly,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Squash => "squash",
            Mode::Rebase => "rebase",
            Mode::FfOnly => "ff-only",
        }
    }
}

/// What to land: the session's branch onto its base branch (short names).
#[derive(Debug, Clone)]
pub struct Request {
    pub session: String,
    pub branch: String,
    pub base: String,
    pub mode: Mode,
    /// The squash commit's message; `None`: the purpose and the commits' subjects.
    pub message: Option<String>,
    pub purpose: String,
}

/// A file that the base's move changes (a blob, link or gitlink; never a tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathChange {
    pub path: BString,
    /// `None`: the file is deleted.
    pub new: Option<(gix::objs::tree::EntryMode, gix::ObjectId)>,
}

/// Everything a merge will do, computed and checked, nothing written yet.
pub struct Landing {
    pub base_ref: String,
    pub old: gix::ObjectId,
    pub new: gix::ObjectId,
    /// The session's commits (oldest first) as `(id, subject)`.
    pub commits: Vec<(gix::ObjectId, String)>,
    /// The commits the base gets (the squash commit, replayed commits): empty for a
    /// fast-forward.
    pub written: Vec<gix::ObjectId>,
    pub changes: Vec<PathChange>,
    /// The worktree where the base is checked out, if any.
    pub worktree: Option<gix::Repository>,
    pub reflog: String,
    /// The repository with the merge's objects in memory, written by [`write`].
    mem: gix::Repository,
}

impl Landing {
    pub fn fast_forward(&self) -> bool {
        self.written.is_empty()
    }

    pub fn worktree_path(&self) -> Option<PathBuf> {
        self.worktree
            .as_ref()
            .and_then(|r| r.workdir())
            .map(crate::fsutil::canonical)
    }
}

/// Why a merge cannot go ahead; nothing was written.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum LandError {
    #[error("session `{session}`: its base `{base}` is not a local branch")]
    #[diagnostic(
        code(flowloom::merge::base),
        help(
            "`flowloom merge` lands a session on the local branch its `base` names; set `base` to a local branch, or merge by hand"
        )
    )]
    NotLocalBranch { session: String, base: String },
    #[error("session `{session}`: `{base}` is not an ancestor of `{branch}`, so it cannot fast-forward")]
    #[diagnostic(
        code(flowloom::merge::not_fast_forward),
        help("rebase the session onto `{base}` inside it (`git rebase {base}`), or use `--squash` or `--rebase`")
    )]
    NotFastForward {
        session: String,
        base: String,
        branch: String,
    },
    #[error("merging `{branch}` into `{base}` conflicts in {}: nothing was written", list(.paths))]
    #[diagnostic(
        code(flowloom::merge::conflict),
        help(
            "inside the session, rebase it onto its base (`git rebase {base}`), resolve the conflicts there, then run `flowloom merge` again"
        )
    )]
    Conflicts {
        branch: String,
        base: String,
        paths: Vec<String>,
    },
    #[error("the worktree where `{base}` is checked out ({}) has local changes or untracked files at paths the merge changes: {}", .worktree.display(), list(.paths))]
    #[diagnostic(
        code(flowloom::merge::local_changes),
        help("commit, stash or move those files there, then run `flowloom merge` again")
    )]
    LocalChanges {
        base: String,
        worktree: PathBuf,
        paths: Vec<String>,
    },
    #[error("the checkout filter `{driver}` fails on {}: {reason}; nothing was merged", list(.files))]
    #[diagnostic(
        code(flowloom::merge::filter),
        help(
            "the attributes send these files through filter.{driver}.smudge (or .process), which `git merge` needs too: check that the program is installed and works, then run `flowloom merge` again"
        )
    )]
    FilterFailed {
        driver: String,
        files: Vec<String>,
        reason: SmudgeError,
    },
    #[error("another git command holds the index of the worktree where `{base}` is checked out ({}): nothing was merged", .lock.display())]
    #[diagnostic(
        code(flowloom::merge::index_locked),
        help(
            "wait for that command to finish and run `flowloom merge` again; if no git command is running there (one was killed), delete {} first, as git asks", .lock.display()
        )
    )]
    IndexLocked { base: String, lock: PathBuf },
    #[error("another git command is updating `{base}` ({} exists): nothing was merged", .lock.display())]
    #[diagnostic(
        code(flowloom::merge::ref_locked),
        help(
            "wait for that command to finish and run `flowloom merge` again; if no git command is running (one was killed), delete {} first, as git asks", .lock.display()
        )
    )]
    RefLocked { base: String, lock: PathBuf },
    #[error("`{base}` moved while the merge ran (it was {expected}); nothing of the merge was applied to it")]
    #[diagnostic(code(flowloom::merge::moved), help("run `flowloom merge` again"))]
    Moved { base: String, expected: String },
    #[error("a {operation} is in progress on `{base}` in {}: nothing was merged", .worktree.display())]
    #[diagnostic(
        code(flowloom::merge::in_progress),
        help(
            "finish it or abort it there first (`git {operation} --continue` or `git {operation} --abort`; a bisect ends with `git bisect reset`), then run `flowloom merge` again"
        )
    )]
    InProgress {
        base: String,
        worktree: PathBuf,
        operation: &'static str,
    },
    #[error("the worktree where `{base}` is checked out ({}) has unmerged files: {}; nothing was merged", .worktree.display(), list(.paths))]
    #[diagnostic(
        code(flowloom::merge::unmerged),
        help(
            "resolve them there (edit, then `git add`) and commit, then run `flowloom merge` again, as `git merge` asks"
        )
    )]
    Unmerged {
        base: String,
        worktree: PathBuf,
        paths: Vec<String>,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Repo(#[from] RepoError),
}

/// Why a checkout filter failed on a file the merge changes.
#[derive(Debug, thiserror::Error)]
pub enum SmudgeError {
    /// The filter (or its process) failed.
    #[error("{0}")]
    Filter(gix::Error),
    /// Its output could not be read to the end.
    #[error("{0}")]
    Read(std::io::Error),
}

/// At most 20 paths, then a count.
fn list(paths: &[String]) -> String {
    let mut shown: Vec<String> = paths.iter().take(20).map(|p| format!("`{}`", escape(p))).collect();
    if paths.len() > 20 {
        shown.push(format!("and {} more", paths.len() - 20));
    }
    shown.join(", ")
}

fn escape(text: &str) -> String {
    text.chars()
        .flat_map(char::escape_default)
        .collect::<String>()
        .replace("\\'", "'")
}

fn git<'a>(action: &'static str, what: &'a str) -> impl Fn(gix::Error) -> LandError + 'a {
    move |e| LandError::Repo(RepoError::git(action, std::path::Path::new(what), e))
}

/// Compute the merge in memory and check that nothing is in the way.
pub fn prepare(
    repo: &gix::Repository,
    request: &Request,
    probe: &dyn crate::apply::probe::Probe,
) -> Result<Landing, LandError> {
    let base_ref = format!("refs/heads/{}", request.base);
    let old = match repo.try_find_reference(base_ref.as_str()) {
        Ok(Some(mut r)) => r.peel_to_id().map_err(git("read", &base_ref))?.detach(),
        _ => {
            return Err(LandError::NotLocalBranch {
                session: request.session.clone(),
                base: request.base.clone(),
            });
        }
    };
    let branch_ref = format!("refs/heads/{}", request.branch);
    let tip = repo
        .find_reference(branch_ref.as_str())
        .and_then(|mut r| r.peel_to_id().map(|id| id.detach()))
        .map_err(git("read", &branch_ref))?;
    let mut mem = repo.clone().with_object_memory();
    mem.object_cache_size_if_unset(16 * 1024 * 1024);
    let commits = commits_to_land(&mem, tip, old)?;
    let ancestor = mem.merge_base(old, tip).ok().flatten().map(|id| id.detach());
    let fast_forward = ancestor == Some(old);
    let (new, written) = match request.mode {
        _ if commits.is_empty() => (old, Vec::new()),
        Mode::FfOnly if !fast_forward => {
            return Err(LandError::NotFastForward {
                session: request.session.clone(),
                base: request.base.clone(),
                branch: request.branch.clone(),
            });
        }
        Mode::FfOnly | Mode::Rebase if fast_forward => (tip, Vec::new()),
        Mode::FfOnly => unreachable!("refused above"),
        Mode::Squash => match squash(&mem, request, old, tip, ancestor, &commits)? {
            id if id == old => (old, Vec::new()),
            id => (id, vec![id]),
        },
        Mode::Rebase => replay(&mem, request, old, &commits)?,
    };
    let changes = changed_paths(&mem, old, new)?;
    let worktree = checked_out(repo, &base_ref)?;
    check_in_progress(repo, &base_ref, worktree.as_ref(), &request.base, probe)?;
    if let Some(wt) = &worktree {
        check_local_changes(wt, &mem, old, &changes, &request.base)?;
        check_filters(wt, &mem, new, &changes)?;
    }
    let reflog = reflog_message(request, &commits, written.is_empty());
    Ok(Landing {
        base_ref,
        old,
        new,
        commits,
        written,
        changes,
        worktree,
        reflog,
        mem,
    })
}

/// The session's commits not in the base, oldest first.
fn commits_to_land(
    repo: &gix::Repository,
    tip: gix::ObjectId,
    base: gix::ObjectId,
) -> Result<Vec<(gix::ObjectId, String)>, LandError> {
    let walk = repo
        .rev_walk([tip])
        .with_hidden([base])
        .all()
        .map_err(|e| git("walk", "the session's commits")(e))?;
    let mut commits = Vec::new();
    for info in walk {
        let info = info.map_err(|e| git("walk", "the session's commits")(e))?;
        let commit = info.object().map_err(|e| git("read", "a commit")(e))?;
        let subject = commit
            .message()
            .map(|m| m.summary().to_str_lossy().into_owned())
            .unwrap_or_default();
        commits.push((info.id, subject));
    }
    commits.reverse();
    Ok(commits)
}

fn tree_of(repo: &gix::Repository, commit: gix::ObjectId) -> Result<gix::ObjectId, LandError> {
    repo.find_commit(commit)
        .map_err(|e| git("read", "a commit")(e))?
        .tree_id()
        .map(|t| t.detach())
        .map_err(|e| git("read", "a commit's tree")(e))
}

/// Three-way merge of trees; conflicts are named by path.
fn merge_trees(
    repo: &gix::Repository,
    request: &Request,
    ancestor: gix::ObjectId,
    ours: gix::ObjectId,
    theirs: gix::ObjectId,
) -> Result<gix::ObjectId, LandError> {
    let options = repo
        .tree_merge_options()
        .map_err(git("read merge options of", "the repository"))?;
    let labels = gix::merge::blob::builtin_driver::text::Labels {
        ancestor: Some("ancestor".into()),
        current: Some(request.base.as_str().into()),
        other: Some(request.branch.as_str().into()),
    };
    let mut outcome = repo
        .merge_trees(ancestor, ours, theirs, labels, options)
        .map_err(git("merge", "the trees"))?;
    let how = gix::merge::tree::TreatAsUnresolved::git();
    if outcome.has_unresolved_conflicts(how) {
        let mut paths: Vec<String> = outcome
            .conflicts
            .iter()
            .filter(|c| c.is_unresolved(how))
            .map(|c| c.ours.location().to_str_lossy().into_owned())
            .collect();
        paths.sort();
        paths.dedup();
        return Err(LandError::Conflicts {
            branch: request.branch.clone(),
            base: request.base.clone(),
            paths,
        });
    }
    let tree = outcome.tree.write().map_err(|e| git("write", "the merged tree")(e))?;
    Ok(tree.detach())
}

/// The squash commit: the session's changes as one commit on top of the base.
fn squash(
    repo: &gix::Repository,
    request: &Request,
    old: gix::ObjectId,
    tip: gix::ObjectId,
    ancestor: Option<gix::ObjectId>,
    commits: &[(gix::ObjectId, String)],
) -> Result<gix::ObjectId, LandError> {
    let tip_tree = tree_of(repo, tip)?;
    let tree = if ancestor == Some(old) {
        tip_tree
    } else {
        let ancestor_tree = match ancestor {
            Some(a) => tree_of(repo, a)?,
            None => gix::ObjectId::empty_tree(repo.object_hash()),
        };
        merge_trees(repo, request, ancestor_tree, tree_of(repo, old)?, tip_tree)?
    };
    // Its changes are in the base already (squash-merged before): nothing to commit, as
    // `git commit` after `git merge --squash` says.
    if tree == tree_of(repo, old)? {
        return Ok(old);
    }
    let message = match &request.message {
        Some(given) => cleaned_up(given),
        None => squash_message(request, commits),
    };
    let commit = repo
        .new_commit(message, tree, [old])
        .map_err(git("write", "the squash commit"))?;
    Ok(commit.id)
}

/// A message given with `-m` as `git commit -m` stores it (`--cleanup=whitespace`): trailing
/// whitespace of each line and blank lines at either end dropped, runs of blank lines made
/// one, and a final newline.
fn cleaned_up(message: &str) -> String {
    let mut out = String::new();
    let mut blank = false;
    for line in message.lines().map(str::trim_end) {
        if line.is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if blank {
            out.push('\n');
            blank = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The purpose, then one line per commit subject.
fn squash_message(request: &Request, commits: &[(gix::ObjectId, String)]) -> String {
    let mut message = format!("{}\n", request.purpose.trim());
    if !commits.is_empty() {
        message.push('\n');
        for (_, subject) in commits {
            message.push_str(&format!("* {subject}\n"));
        }
    }
    message
}

/// Each commit replayed onto the base: merge(parent → commit) into the new tip, keeping its
/// author and message; a commit whose changes are already there is dropped, as `git rebase`
/// drops it.
fn replay(
    repo: &gix::Repository,
    request: &Request,
    old: gix::ObjectId,
    commits: &[(gix::ObjectId, String)],
) -> Result<(gix::ObjectId, Vec<gix::ObjectId>), LandError> {
    let committer = repo
        .committer()
        .transpose()
        .map_err(|e| git("read", "the committer identity")(e))?
        .map(|s| s.to_owned())
        .transpose()
        .map_err(|e| git("read", "the committer identity")(e))?
        .ok_or_else(|| {
            LandError::Repo(RepoError::message(
                "no committer identity is configured (user.name, user.email)",
            ))
        })?;
    let mut current = old;
    let mut current_tree = tree_of(repo, old)?;
    let mut written = Vec::new();
    for (id, _) in commits {
        let commit = repo.find_commit(*id).map_err(|e| git("read", "a commit")(e))?;
        let decoded = commit.decode().map_err(|e| git("read", "a commit")(e))?;
        let parent_tree = match decoded.parents().next() {
            Some(p) => tree_of(repo, p)?,
            None => gix::ObjectId::empty_tree(repo.object_hash()),
        };
        let tree = merge_trees(repo, request, parent_tree, current_tree, decoded.tree())?;
        if tree == current_tree {
            continue;
        }
        let new = gix::objs::Commit {
            tree,
            parents: [current].into(),
            author: decoded.author().map_err(|e| git("read", "a commit")(e))?.into(),
            committer: committer.clone(),
            encoding: decoded.encoding.map(Into::into),
            message: decoded.message.into(),
            extra_headers: Vec::new(),
        };
        current = repo
            .write_object(&new)
            .map_err(git("write", "a replayed commit"))?
            .detach();
        current_tree = tree;
        written.push(current);
    }
    Ok((current, written))
}

/// The files that differ between the two commits' trees.
fn changed_paths(repo: &gix::Repository, old: gix::ObjectId, new: gix::ObjectId) -> Result<Vec<PathChange>, LandError> {
    if old == new {
        return Ok(Vec::new());
    }
    let old_tree = repo
        .find_tree(tree_of(repo, old)?)
        .map_err(|e| git("read", "a tree")(e))?;
    let new_tree = repo
        .find_tree(tree_of(repo, new)?)
        .map_err(|e| git("read", "a tree")(e))?;
    let mut options = gix::diff::Options::default();
    options.track_path();
    let changes = repo
        .diff_tree_to_tree(&old_tree, &new_tree, options.with_rewrites(None))
        .map_err(git("compare", "the trees"))?;
    use gix::object::tree::diff::ChangeDetached as C;
    let mut out = Vec::new();
    for change in changes {
        if change.entry_mode().is_tree() {
            continue;
        }
        let new = match &change {
            C::Deletion { .. } => None,
            C::Addition { entry_mode, id, .. } | C::Modification { entry_mode, id, .. } => Some((*entry_mode, *id)),
            C::Rewrite { entry_mode, id, .. } => Some((*entry_mode, *id)),
        };
        out.push(PathChange {
            path: change.location().to_owned(),
            new,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The main worktree or the linked worktree whose `HEAD` is `base_ref`.
fn checked_out(repo: &gix::Repository, base_ref: &str) -> Result<Option<gix::Repository>, LandError> {
    let on_base = |r: &gix::Repository| {
        r.head_name()
            .ok()
            .flatten()
            .is_some_and(|n| n.as_bstr() == base_ref.as_bytes().as_bstr())
    };
    let mut main = repo.main_repo().map_err(git("open", "the main worktree"))?;
    main.objects = repo.objects.clone(); // the same objects (and alternates)
    if main.workdir().is_some() && on_base(&main) {
        return Ok(Some(main));
    }
    for proxy in repo.worktrees().map_err(|e| git("list", "the worktrees")(e))? {
        let Ok(mut wt) = proxy.into_repo_with_possibly_inaccessible_worktree() else {
            continue;
        };
        wt.objects = repo.objects.clone();
        if on_base(&wt) && wt.workdir().is_some_and(std::path::Path::exists) {
            return Ok(Some(wt));
        }
    }
    Ok(None)
}

/// As git: a rebase or a bisect of the base in any worktree counts as the base checked out
/// there although HEAD is detached (and a rebase, finished or aborted, would set the base
/// back over the landed commit); where the base is checked out, `git merge` refuses while
/// a merge, cherry-pick, revert or `am` is not concluded, or the index has unmerged entries.
fn check_in_progress(
    repo: &gix::Repository,
    base_ref: &str,
    worktree: Option<&gix::Repository>,
    base: &str,
    probe: &dyn crate::apply::probe::Probe,
) -> Result<(), LandError> {
    let in_progress = |worktree: PathBuf, operation: &'static str| LandError::InProgress {
        base: base.to_owned(),
        worktree,
        operation,
    };
    let mut admins = Vec::new();
    if let Ok(main) = repo.main_repo() {
        let path = main.workdir().unwrap_or_else(|| main.git_dir()).to_path_buf();
        admins.push((main.git_dir().to_path_buf(), path));
    }
    for proxy in repo.worktrees().map_err(|e| git("list", "the worktrees")(e))? {
        admins.push((proxy.git_dir().to_path_buf(), proxy.base().unwrap_or_default()));
    }
    for (admin, path) in admins {
        if probe.rebasing(&admin).as_deref() == Some(base_ref) {
            return Err(in_progress(path, "rebase"));
        }
        if probe.bisecting(&admin).as_deref() == Some(base_ref) {
            return Err(in_progress(path, "bisect"));
        }
    }
    let Some(wt) = worktree else { return Ok(()) };
    let path = wt.workdir().unwrap_or_else(|| wt.git_dir()).to_path_buf();
    use gix::state::InProgress as Op;
    match wt.state() {
        None | Some(Op::Bisect) => {}
        Some(Op::Merge) => return Err(in_progress(path, "merge")),
        Some(Op::CherryPick | Op::CherryPickSequence) => return Err(in_progress(path, "cherry-pick")),
        Some(Op::Revert | Op::RevertSequence) => return Err(in_progress(path, "revert")),
        Some(Op::ApplyMailbox | Op::ApplyMailboxRebase) => return Err(in_progress(path, "am")),
        Some(Op::Rebase | Op::RebaseInteractive) => return Err(in_progress(path, "rebase")),
    }
    let index = wt
        .index_or_empty()
        .map_err(|e| LandError::Repo(RepoError::git("read the index of", &path, e)))?;
    let mut paths: Vec<String> = index
        .entries()
        .iter()
        .filter(|e| e.stage() != gix::index::entry::Stage::Unconflicted)
        .map(|e| e.path(&index).to_str_lossy().into_owned())
        .collect();
    paths.dedup();
    if paths.is_empty() {
        return Ok(());
    }
    Err(LandError::Unmerged {
        base: base.to_owned(),
        worktree: path,
        paths,
    })
}

/// Above this many changed paths the local-changes check looks at the whole worktree
/// instead of one pathspec per path (matching is linear in the number of patterns).
const MAX_PATHSPECS: usize = 256;

/// As `git merge` refuses: local changes (staged or not) or untracked files at a path the
/// merge changes, or in the way of one (a file where a folder comes, or the reverse).
/// As git, only the paths the merge touches are looked at (a pathspec per changed path,
/// and per file standing where a changed path needs a folder), against the index and the
/// tree of `old`, so the cost follows the merge's size, not the worktree's.
///
/// A path that holds the merge's result already (in the worktree, with the index at the
/// old or the new entry) is not in the way: that is what a merge stopped part-way (a kill,
/// a failed write) leaves, and the next `merge` finishes it.
fn check_local_changes(
    wt: &gix::Repository,
    mem: &gix::Repository,
    old: gix::ObjectId,
    changes: &[PathChange],
    base: &str,
) -> Result<(), LandError> {
    if changes.is_empty() {
        return Ok(());
    }
    let workdir = wt.workdir().map(std::path::Path::to_path_buf).unwrap_or_default();
    let changed: BTreeSet<&BStr> = changes.iter().map(|c| c.path.as_bstr()).collect();
    let status_error = |e: gix::Error| LandError::Repo(RepoError::git("read status of", &workdir, e));
    let old_tree = tree_of(wt, old)?;
    let iter = wt
        .status(gix::progress::Discard)
        .map_err(&status_error)?
        .head_tree(old_tree)
        .untracked_files(gix::status::UntrackedFiles::Files)
        .into_iter(pathspecs(&workdir, &changed))
        .map_err(&status_error)?;
    let mut blocking = Vec::new();
    for item in iter {
        let item = item.map_err(&status_error)?;
        let path: BString = match &item {
            gix::status::Item::TreeIndex(change) => change.location().to_owned(),
            gix::status::Item::IndexWorktree(item) => {
                if item.summary().is_none() {
                    continue;
                }
                item.rela_path().to_owned()
            }
        };
        if touches(&changed, path.as_bstr()) {
            blocking.push(path);
        }
    }
    blocking.extend(hidden_changes(wt, &changed)?);
    blocking.sort();
    blocking.dedup();
    if !blocking.is_empty() {
        let landed = landed_already(wt, mem, old_tree, changes, &blocking)?;
        blocking.retain(|p| !landed.contains(p));
    }
    if blocking.is_empty() {
        return Ok(());
    }
    Err(LandError::LocalChanges {
        base: base.to_owned(),
        worktree: workdir,
        paths: blocking.iter().map(|p| p.to_str_lossy().into_owned()).collect(),
    })
}

/// gix's status trusts an entry marked skip-worktree or assume-unchanged and never reads its
/// file; git's merge reads it (`verify_uptodate`): a file at a path the merge changes whose
/// entry is so marked, and that differs from the entry, is a local change in the way (a
/// config file kept with local settings under `--skip-worktree`). A missing file is not.
fn hidden_changes(wt: &gix::Repository, changed: &BTreeSet<&BStr>) -> Result<Vec<BString>, LandError> {
    use gix::index::entry::Flags;
    let workdir = wt.workdir().map(std::path::Path::to_path_buf).unwrap_or_default();
    let err = |e: gix::Error| LandError::Repo(RepoError::git("read status of", &workdir, e));
    let index = wt.index_or_empty().map_err(&err)?;
    let marked = Flags::SKIP_WORKTREE | Flags::ASSUME_VALID;
    let hidden: BTreeSet<BString> = index
        .entries()
        .iter()
        .filter(|e| e.flags.intersects(marked) && changed.contains(e.path(&index)))
        .map(|e| e.path(&index).to_owned())
        .filter(|path| {
            gix::path::from_bstr(path.as_bstr()).is_ok_and(|rel| std::fs::symlink_metadata(workdir.join(rel)).is_ok())
        })
        .collect();
    if hidden.is_empty() {
        return Ok(Vec::new());
    }
    // The index with these entries unmarked and without stat, so their files are read.
    let mut plain: gix::index::File = (**index).clone();
    for (entry, path) in plain.entries_mut_with_paths() {
        if hidden.contains(path) {
            entry.flags.remove(marked);
            entry.stat = Default::default();
        }
    }
    let specs: Vec<BString> = hidden.iter().map(|p| literal_spec(p)).collect();
    let iter = wt
        .status(gix::progress::Discard)
        .map_err(&err)?
        .index(plain.into())
        .untracked_files(gix::status::UntrackedFiles::None)
        .into_index_worktree_iter(specs)
        .map_err(&err)?;
    let mut differ = Vec::new();
    for item in iter {
        let item = item.map_err(&err)?;
        if item.summary().is_some() && hidden.contains(item.rela_path()) {
            differ.push(item.rela_path().to_owned());
        }
    }
    Ok(differ)
}

/// Of the `blocking` paths, those the merge changes that already hold its result: the
/// worktree matches the new entry (or has no file where the merge deletes one), and the
/// index holds the old entry or the new one at that path, nothing else (no conflict).
/// The worktree is compared as `git status` compares it, against an index that has the
/// new entries at these paths.
fn landed_already(
    wt: &gix::Repository,
    mem: &gix::Repository,
    old_tree: gix::ObjectId,
    changes: &[PathChange],
    blocking: &[BString],
) -> Result<BTreeSet<BString>, LandError> {
    type Entry = Option<(gix::index::entry::Mode, gix::ObjectId)>;
    let workdir = wt.workdir().map(std::path::Path::to_path_buf).unwrap_or_default();
    let err = |e: gix::Error| LandError::Repo(RepoError::git("read status of", &workdir, e));
    let targets: std::collections::BTreeMap<&BStr, Entry> = changes
        .iter()
        .filter(|c| blocking.iter().any(|b| b == &c.path))
        .map(|c| (c.path.as_bstr(), c.new.map(|(mode, id)| (mode.into(), id))))
        .collect();
    if targets.is_empty() {
        return Ok(BTreeSet::new());
    }
    let index = wt.index_or_empty().map_err(&err)?;
    let old = wt.find_tree(old_tree).map_err(&err)?;
    let mut candidates: Vec<&BStr> = Vec::new();
    for (path, target) in &targets {
        let unmerged = index
            .entry_range(path)
            .is_some_and(|r| index.entries()[r].iter().any(|e| e.stage_raw() != 0));
        let staged: Entry = index.entry_by_path(path).map(|e| (e.mode, e.id));
        let before: Entry = gix::path::from_bstr(*path)
            .ok()
            .and_then(|rel| old.lookup_entry_by_path(rel).ok().flatten())
            .map(|e| (e.mode().into(), e.object_id()));
        if !unmerged && (staged == *target || staged == before) {
            candidates.push(path);
        }
    }
    if candidates.is_empty() {
        return Ok(BTreeSet::new());
    }
    // The index as the merge leaves it at these paths; no stat, so the files are read.
    let mut merged: gix::index::File = (**index).clone();
    merged.remove_entries(|_, path, _| targets.contains_key(path));
    for (path, target) in &targets {
        if let Some((mode, id)) = target {
            merged.dangerously_push_entry(Default::default(), *id, gix::index::entry::Flags::empty(), *mode, path);
        }
    }
    merged.sort_entries();
    let mut with_merge = wt.clone();
    with_merge.objects = mem.objects.clone();
    let specs: Vec<BString> = candidates.iter().map(|p| literal_spec(p)).collect();
    let iter = with_merge
        .status(gix::progress::Discard)
        .map_err(&err)?
        .index(merged.into())
        .untracked_files(gix::status::UntrackedFiles::Files)
        .into_index_worktree_iter(specs)
        .map_err(&err)?;
    let mut differ: BTreeSet<&BStr> = BTreeSet::new();
    let mut reported = Vec::new();
    for item in iter {
        let item = item.map_err(&err)?;
        if item.summary().is_some() {
            reported.push(item.rela_path().to_owned());
        }
    }
    for path in &reported {
        for candidate in &candidates {
            if touches(&BTreeSet::from([*candidate]), path.as_bstr()) {
                differ.insert(candidate);
            }
        }
    }
    // A file missing from the worktree is no local change in the way, as git's
    // `verify_uptodate` counts it (and a merge stopped part-way has unlinked it).
    let missing = |path: &BStr| {
        gix::path::from_bstr(path).is_ok_and(|rel| {
            std::fs::symlink_metadata(workdir.join(rel)).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        })
    };
    Ok(candidates
        .into_iter()
        .filter(|p| !differ.contains(p) || missing(p))
        .map(ToOwned::to_owned)
        .collect())
}

/// One literal pathspec per changed path (from the top, wherever flowloom runs) (which covers what lies below it), and one per
/// folder above a changed path that is not a folder in the worktree (a file or symlink in
/// the way); none (the whole worktree) past [`MAX_PATHSPECS`].
fn pathspecs(workdir: &std::path::Path, changed: &BTreeSet<&BStr>) -> Vec<BString> {
    let mut above: BTreeSet<&BStr> = BTreeSet::new();
    for path in changed {
        let mut at = path.len();
        while let Some(slash) = path[..at].rfind_byte(b'/') {
            if !above.insert(path[..slash].as_bstr()) {
                break;
            }
            at = slash;
        }
    }
    let in_the_way = above.into_iter().filter(|dir| {
        gix::path::from_bstr(*dir)
            .ok()
            .and_then(|rel| workdir.join(rel).symlink_metadata().ok())
            .is_some_and(|m| !m.is_dir())
    });
    let specs: Vec<BString> = changed
        .iter()
        .copied()
        .chain(in_the_way)
        .map(|p| literal_spec(p))
        .collect();
    if specs.len() > MAX_PATHSPECS {
        return Vec::new();
    }
    specs
}

/// As git's checkout fails on a filter that is `required` and cannot run or fails (a
/// missing program, an LFS object that cannot be had), the merge is refused before
/// anything is written: every new file whose attributes (as the merged tree holds them)
/// name a configured `smudge` or `process` driver is put through the filters in memory
/// first. A driver that is not required falls back to the blob, as in git; nothing is
/// asked where no driver is configured.
fn check_filters(
    wt: &gix::Repository,
    mem: &gix::Repository,
    new: gix::ObjectId,
    changes: &[PathChange],
) -> Result<(), LandError> {
    let config = wt.config_snapshot();
    let drivers: BTreeSet<String> = config
        .plumbing()
        .sections_by_name("filter")
        .into_iter()
        .flatten()
        .filter(|s| s.value("smudge").is_some() || s.value("process").is_some())
        .filter_map(|s| s.header().subsection_name().map(|n| n.to_str_lossy().into_owned()))
        .collect();
    if drivers.is_empty() || changes.iter().all(|c| c.new.is_none()) {
        return Ok(());
    }
    let workdir = wt.workdir().map(std::path::Path::to_path_buf).unwrap_or_default();
    let err = |e: gix::Error| LandError::Repo(RepoError::git("read the filters of", &workdir, e));
    // The worktree's configuration, with the merge's objects (a merged `.gitattributes`).
    let mut with_merge = wt.clone();
    with_merge.objects = mem.objects.clone();
    let index = with_merge.index_from_tree(&tree_of(mem, new)?).map_err(&err)?;
    let source = gix::worktree::stack::state::attributes::Source::IdMapping;
    let mut attributes = with_merge.attributes_only(&index, source).map_err(&err)?;
    let mut outcome = attributes.selected_attribute_matches(["filter"]);
    let stack = with_merge.attributes_only(&index, source).map_err(&err)?.detach();
    let mut pipeline = gix::filter::Pipeline::new(&with_merge, stack).map_err(&err)?;
    let mut failed: Vec<(String, String, SmudgeError)> = Vec::new();
    for change in changes {
        let Some((mode, id)) = change.new else { continue };
        if !mode.is_blob() {
            continue;
        }
        let Ok(platform) = attributes.at_entry(change.path.as_bstr(), Some(mode.into())) else {
            continue;
        };
        platform.matching_attributes(&mut outcome);
        let driver = outcome.iter_selected().find_map(|m| match m.assignment.state {
            gix::attrs::StateRef::Value(v) => Some(v.as_bstr().to_str_lossy().into_owned()),
            _ => None,
        });
        let Some(driver) = driver.filter(|d| drivers.contains(d)) else {
            continue;
        };
        let blob = with_merge.find_object(id).map_err(&err)?.detach();
        if let Err(reason) = smudge(&mut pipeline, &blob.data, change.path.as_bstr()) {
            failed.push((driver, change.path.to_str_lossy().into_owned(), reason));
        }
    }
    let mut failed = failed.into_iter();
    let Some((driver, first, reason)) = failed.next() else {
        return Ok(());
    };
    let others = failed.filter(|(d, ..)| *d == driver).map(|(_, f, _)| f);
    Err(LandError::FilterFailed {
        files: std::iter::once(first).chain(others).collect(),
        driver,
        reason,
    })
}

/// Put `data` through the worktree filters of `path`, to the end of the output; why not.
fn smudge(pipeline: &mut gix::filter::Pipeline<'_>, data: &[u8], path: &BStr) -> Result<(), SmudgeError> {
    use gix::filter::plumbing::driver::apply::MaybeDelayed;
    use gix::filter::plumbing::pipeline::convert::ToWorktreeOutcome;
    let options = gix::filter::plumbing::pipeline::convert::to_worktree::Options::default();
    match pipeline.convert_to_worktree(data, path, options) {
        Ok(ToWorktreeOutcome::Process(MaybeDelayed::Immediate(mut read))) => {
            std::io::copy(&mut read, &mut std::io::sink())
                .map(drop)
                .map_err(SmudgeError::Read)
        }
        Ok(_) => Ok(()),
        Err(e) => Err(SmudgeError::Filter(e)),
    }
}

/// Whether `path` is a changed path, a folder above one, or a file below one.
fn touches(changed: &BTreeSet<&BStr>, path: &BStr) -> bool {
    if changed.contains(path) {
        return true;
    }
    let mut prefix: BString = path.to_owned();
    prefix.push(b'/');
    if changed
        .range(prefix.as_bstr()..)
        .next()
        .is_some_and(|p| p.starts_with(prefix.as_slice()))
    {
        return true;
    }
    let mut at = path.len();
    while let Some(slash) = path[..at].rfind_byte(b'/') {
        if changed.contains(path[..slash].as_bstr()) {
            return true;
        }
        at = slash;
    }
    false
}

/// As git words the base's reflog entry.
fn reflog_message(request: &Request, commits: &[(gix::ObjectId, String)], fast_forward: bool) -> String {
    match request.mode {
        _ if fast_forward => format!("merge {}: Fast-forward", request.branch),
        Mode::Squash => {
            let subject = request
                .message
                .as_deref()
                .map(|m| cleaned_up(m).lines().next().unwrap_or_default().to_owned())
                .unwrap_or_else(|| request.purpose.trim().lines().next().unwrap_or_default().to_owned());
            format!("commit: {subject}")
        }
        _ => format!(
            "rebase (finish): refs/heads/{} onto {} ({} commits)",
            request.base,
            request.branch,
            commits.len()
        ),
    }
}

/// Write what [`prepare`] computed: the objects, then the worktree where the base is
/// checked out (as `git merge` does, before the ref; its local changes checked once more
/// first), then the base ref, compare-and-swap with the value read at the start, with its
/// reflog entry.
pub fn write(
    repo: &gix::Repository,
    landing: &mut Landing,
    interrupt: &std::sync::atomic::AtomicBool,
) -> Result<(), LandError> {
    // The locks a killed merge left (flowloom's lock is held: none is running) go first.
    let mut journal = Journal::open(repo);
    if landing.old == landing.new {
        return Ok(());
    }
    // As git, the index of the base's worktree is locked before anything is written: a
    // git command running there refuses the merge, and none can start until it is done.
    let index_lock = match &landing.worktree {
        Some(wt) if !landing.changes.is_empty() => Some(lock_index(wt, base_name(landing))?),
        _ => None,
    };
    if let Some(wt) = landing.worktree.as_ref().filter(|_| index_lock.is_some()) {
        journal.hold(&wt.index_path().with_extension("lock"));
    }
    // Again right before anything is written (the plan may have waited on a question):
    // cheap, as it looks only at the paths the merge changes.
    if let Some(wt) = &landing.worktree {
        check_local_changes(wt, &landing.mem, landing.old, &landing.changes, base_name(landing))?;
    }
    if let Some(objects) = landing.mem.objects.take_object_memory() {
        for (id, (kind, data)) in objects.iter() {
            let written =
                gix::objs::Write::write_buf(&repo.objects, *kind, data).map_err(|e| git("write", "an object")(e))?;
            debug_assert_eq!(written, *id);
        }
    }
    crate::apply::failpoint("merge:objects");
    // The base ref is locked (and found still at `old`) before the worktree is written, and
    // moved once it is: nothing can move the base in between, which would leave the worktree
    // written for a base that is elsewhere.
    let store = ref_store(repo, landing);
    let locked = lock_base(repo, &store, landing)?;
    journal.hold(&repo.common_dir().join(format!("{}.lock", landing.base_ref)));
    if let Some(wt) = &landing.worktree {
        journal.hold(&wt.git_dir().join("HEAD.lock"));
    }
    crate::apply::test_hook("FLOWLOOM_TEST_BASE_LOCKED", base_name(landing));
    if let (Some(wt), Some(lock)) = (&landing.worktree, index_lock) {
        crate::apply::checkout::update_worktree(wt, &landing.changes, lock, interrupt)?;
    }
    crate::apply::failpoint("merge:index");
    let committer = repo
        .committer()
        .transpose()
        .map_err(|e| git("read", "the committer identity")(e))?;
    locked.commit(committer).map_err(git("move", &landing.base_ref))?;
    crate::apply::failpoint("merge:base");
    Ok(())
}

/// The lock files a merge holds while it writes, recorded (with their inodes) in
/// `<common dir>/flowloom-merge-locks` until it is done: a merge killed with them held
/// left them behind, as a killed git leaves its own; the next merge (under flowloom's
/// lock, so no merge is running) deletes those that are still the same files, and only
/// those — a lock another git command took since is another file.
struct Journal {
    path: PathBuf,
    held: Vec<String>,
}

impl Journal {
    fn open(repo: &gix::Repository) -> Journal {
        let path = repo.common_dir().join("flowloom-merge-locks");
        if let Some(text) = crate::fsutil::read_regular(&path, 1 << 16).ok().flatten() {
            for line in text.to_str_lossy().lines() {
                let mut parts = line.splitn(3, ' ');
                let (Some(dev), Some(ino), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
                    continue;
                };
                if std::fs::symlink_metadata(file).is_ok_and(|m| {
                    use std::os::unix::fs::MetadataExt;
                    m.is_file() && m.dev().to_string() == dev && m.ino().to_string() == ino
                }) {
                    let _ = std::fs::remove_file(file);
                }
            }
            let _ = std::fs::remove_file(&path);
        }
        Journal { path, held: Vec::new() }
    }

    /// Record the lock file just taken at `lock`.
    fn hold(&mut self, lock: &std::path::Path) {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::symlink_metadata(lock) {
            self.held
                .push(format!("{} {} {}\n", meta.dev(), meta.ino(), lock.display()));
            let _ = crate::fsutil::write_atomic(&self.path, self.held.concat().as_bytes());
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if !self.held.is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The `index.lock` of the base's worktree, taken now or refused.
fn lock_index(wt: &gix::Repository, base: &str) -> Result<gix::lock::File, LandError> {
    let index = wt.index_path();
    // Its mode follows `core.sharedRepository` once written (`index_v4::write_as_configured`).
    gix::lock::File::acquire_to_update_resource(&index, gix::lock::acquire::Fail::Immediately, None, 0).map_err(|_| {
        LandError::IndexLocked {
            base: base.to_owned(),
            lock: index.with_extension("lock"),
        }
    })
}

fn moved(landing: &Landing) -> LandError {
    LandError::Moved {
        base: base_name(landing).to_owned(),
        expected: landing.old.to_string(),
    }
}

/// The base branch's short name.
fn base_name(landing: &Landing) -> &str {
    landing
        .base_ref
        .strip_prefix("refs/heads/")
        .unwrap_or(&landing.base_ref)
}

/// The ref store the base moves through: that of the worktree where it is checked out (its
/// `HEAD` is there), else the repository's. With `core.logAllRefUpdates=false` gix writes no
/// reflog at all; git still appends to the reflogs that exist (it only makes no new ones):
/// where the branch's (and `HEAD`'s) exist, the store writes them.
fn ref_store(repo: &gix::Repository, landing: &Landing) -> gix::refs::file::Store {
    use gix::refs::store::WriteReflog;
    let mut store = landing.worktree.as_ref().unwrap_or(repo).refs.clone();
    if store.write_reflog == WriteReflog::Disable {
        let branch = repo.common_dir().join("logs").join(&landing.base_ref);
        let head = landing
            .worktree
            .as_ref()
            .map(|wt| wt.git_dir().join("logs").join("HEAD"));
        if branch.is_file() && head.is_none_or(|h| h.is_file()) {
            store.write_reflog = WriteReflog::Normal;
        }
    }
    store
}

/// The base ref's update, prepared: its lock taken, its value checked to be `old`. Where the
/// base is checked out, the update goes through that worktree's `HEAD` (as `git commit` or
/// `git merge` there move it): `HEAD` is locked too and gets the same reflog entry as the
/// branch (`logs/HEAD` of the main worktree, `worktrees/<id>/logs/HEAD` of a linked one),
/// and it must still name the base once locked.
fn lock_base<'r>(
    repo: &gix::Repository,
    store: &'r gix::refs::file::Store,
    landing: &Landing,
) -> Result<gix::refs::file::Transaction<'r, 'r>, LandError> {
    let (name, deref) = match &landing.worktree {
        Some(_) => ("HEAD", true),
        None => (landing.base_ref.as_str(), false),
    };
    let name: gix::refs::FullName = name.try_into().map_err(|_| {
        LandError::Repo(RepoError::message(format!(
            "`{}` is not a valid ref name",
            landing.base_ref
        )))
    })?;
    let edit = RefEdit {
        change: RefChange::Update {
            log: LogChange {
                mode: RefLog::AndReference,
                force_create_reflog: false,
                message: landing.reflog.as_str().into(),
            },
            expected: PreviousValue::MustExistAndMatch(gix::refs::Target::Object(landing.old)),
            new: gix::refs::Target::Object(landing.new),
        },
        name,
        deref,
    };
    let fail = gix::lock::acquire::Fail::Immediately;
    let transaction = store.transaction().prepare([edit], fail, fail).map_err(|_| {
        let head = landing.worktree.as_ref().map(|wt| wt.git_dir().join("HEAD.lock"));
        let held = std::iter::once(repo.common_dir().join(format!("{}.lock", landing.base_ref)))
            .chain(head)
            .find(|lock| lock.exists());
        match held {
            Some(lock) => LandError::RefLocked {
                base: base_name(landing).to_owned(),
                lock,
            },
            None => moved(landing),
        }
    })?;
    // `HEAD` was read before its lock was taken: the branch it names now is the base's, or
    // the transaction (dropped) moves nothing.
    if let Some(wt) = &landing.worktree {
        let head = crate::fsutil::read_regular(&wt.git_dir().join("HEAD"), 1 << 12)
            .ok()
            .flatten()
            .unwrap_or_default();
        let expected = format!("ref: {}", landing.base_ref);
        if head.trim() != expected.as_bytes() {
            return Err(moved(landing));
        }
    }
    Ok(transaction)
}

/// A pathspec that names exactly `path`, from the top, no glob (`:(top,literal)path`).
fn literal_spec(path: &[u8]) -> BString {
    let mut spec = BString::from(":(top,literal)");
    spec.extend_from_slice(path);
    spec
}
