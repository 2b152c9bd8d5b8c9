//! SPEC §10, §11: the paths git tracks in a session, which a `copy` (for untracked files
//! such as `.env`) never writes. Deleting a tracked file (in the worktree, `git rm`, or a
//! commit of the session's branch) is the agent's work: a copy that put the main
//! worktree's file back would undo it.

use std::path::Path;

/// The most commits of the session's own looked at for deletions (`HEAD` not in the main
/// worktree's `HEAD`); a longer branch is looked at this far back.
const MOST_COMMITS: usize = 2000;

/// What git tracks in one session: its index, its `HEAD` tree, the trees of the commits
/// only its branch has and of their parents (a file one of them deleted).
pub struct SessionTracks {
    known: Option<Known>,
}

struct Known {
    repo: gix::Repository,
    index: gix::worktree::Index,
    trees: Vec<gix::ObjectId>,
}

impl SessionTracks {
    /// The session at `worktree`, read with gix; a session git cannot read tracks
    /// everything, so nothing is written into it.
    pub fn read(worktree: &Path) -> Self {
        SessionTracks {
            known: Known::read(worktree),
        }
    }

    /// Git tracks something at `rel` (`/`-separated, relative to the worktree) that is not
    /// a folder: in the index (staged, or deleted from the worktree only), in `HEAD`, or in
    /// a commit of the session's branch (deleted by a later one).
    pub fn tracks(&self, rel: &str) -> bool {
        let Some(known) = &self.known else {
            return true;
        };
        if known.index.entry_by_path(rel.into()).is_some() {
            return true;
        }
        known.trees.iter().any(|id| {
            known
                .repo
                .find_tree(*id)
                .ok()
                .and_then(|tree| tree.lookup_entry_by_path(rel).ok().flatten())
                .is_some_and(|entry| !entry.mode().is_tree())
        })
    }

    /// Git tracks nothing at or below `rel`: a folder to copy is then copied without a
    /// look at each of its files.
    pub fn tracks_nothing_below(&self, rel: &str) -> bool {
        let Some(known) = &self.known else {
            return false;
        };
        let prefix = format!("{rel}/");
        if known
            .index
            .prefixed_entries(prefix.as_str().into())
            .is_some_and(|e| !e.is_empty())
        {
            return false;
        }
        !known.trees.iter().any(|id| {
            known
                .repo
                .find_tree(*id)
                .ok()
                .and_then(|tree| tree.lookup_entry_by_path(rel).ok().flatten())
                .is_some()
        })
    }
}

impl Known {
    fn read(worktree: &Path) -> Option<Self> {
        let repo = gix::open_opts(worktree, gix::open::Options::isolated()).ok()?;
        let index = repo.index_or_empty().ok()?;
        let mut trees = Vec::new();
        if let Ok(head) = repo.head_commit() {
            let hidden: Vec<gix::ObjectId> = repo
                .main_repo()
                .ok()
                .and_then(|main| main.head_id().ok().map(gix::Id::detach))
                .into_iter()
                .collect();
            trees.push(head.tree_id().ok()?.detach());
            let walk = repo.rev_walk([head.id]).with_hidden(hidden).all().ok()?;
            for info in walk.take(MOST_COMMITS) {
                let commit = info.ok()?.object().ok()?;
                trees.push(commit.tree_id().ok()?.detach());
                for parent in commit.parent_ids() {
                    trees.push(parent.object().ok()?.peel_to_commit().ok()?.tree_id().ok()?.detach());
                }
            }
        }
        trees.sort();
        trees.dedup();
        Some(Known { repo, index, trees })
    }
}
