//! One worktree's `git status`, on the calling thread.
//!
//! gix's `status()` iterator starts two producer threads per call (the tree-against-index
//! comparison and the index-against-worktree check), each with its own repository handle,
//! attribute and exclude stacks and object caches, and hands every item over a channel.
//! `flowloom status` asks it of every worktree (500 sessions, 500 calls) from one worker
//! thread per core: the threads only contend for the cores the workers already fill, and
//! each call's short-lived threads, handles and stacks left the allocator's arenas
//! fragmented, so that peak memory grew with the number of sessions although the live
//! data did not. Here the same two comparisons run one after the other on the caller's
//! thread, with the options `status()` uses, and the stats `git status` would write back
//! are collected for [`refresh_index`].

use std::path::Path;
use std::sync::atomic::AtomicBool;

use gix::bstr::ByteSlice;
use gix::status::index_worktree::iter::Summary;

use crate::error::RepoError;
use crate::read::inspect::Dirt;

/// What `git status` writes back to the index after a status: the stats of entries it
/// re-checked (same content, new stat) and the entries it marks racily clean (size zero).
pub struct Refresh {
    index: gix::worktree::Index,
    changes: Vec<(usize, StatChange)>,
}

enum StatChange {
    SizeToZero,
    New(gix::index::entry::Stat),
}

/// The status of an opened worktree by kind. `one_thread`: the check of the tracked files
/// runs on the calling thread too (status checks many worktrees at once, one per core).
pub fn status_of(wt_repo: &gix::Repository, path: &Path, one_thread: bool) -> Result<(Dirt, Refresh), RepoError> {
    let err = |e: gix::Error| RepoError::git("read status of", path, e);
    let index = wt_repo.index_or_empty().map_err(err)?;
    let mut dirt = Dirt::default();
    staged(wt_repo, &index, &mut dirt).map_err(err)?;
    let mut collect = Collect {
        dirt: &mut dirt,
        changes: Vec::new(),
    };
    let options = gix::status::index_worktree::Options {
        sorting: None,
        dirwalk_options: Some(
            wt_repo
                .dirwalk_options()
                .map_err(err)?
                .emit_untracked(gix::dir::walk::EmissionMode::Matching),
        ),
        rewrites: None,
        thread_limit: one_thread.then_some(1),
    };
    let submodules = Submodules::of(wt_repo, &index).map_err(err)?;
    wt_repo
        .index_worktree_status(
            &index,
            None::<&gix::bstr::BStr>,
            &mut collect,
            gix::status::plumbing::index_as_worktree::traits::FastEq,
            submodules,
            &mut gix::progress::Discard,
            &AtomicBool::new(false),
            options,
        )
        .map_err(err)?;
    let changes = collect.changes;
    Ok((dirt, Refresh { index, changes }))
}

/// The submodule check `git status` makes of gitlink entries; none at all (and no second
/// repository handle opened for it) when the index has no gitlink.
#[derive(Clone)]
enum Submodules {
    None,
    Builtin(Box<gix::status::index_worktree::BuiltinSubmoduleStatus>),
}

impl Submodules {
    fn of(wt_repo: &gix::Repository, index: &gix::index::State) -> Result<Submodules, gix::Error> {
        if !index
            .entries()
            .iter()
            .any(|e| e.mode == gix::index::entry::Mode::COMMIT)
        {
            return Ok(Submodules::None);
        }
        let builtin = gix::status::index_worktree::BuiltinSubmoduleStatus::new(
            wt_repo.clone().into_sync(),
            gix::status::Submodule::AsConfigured { check_dirty: false },
        )?;
        Ok(Submodules::Builtin(Box::new(builtin)))
    }
}

impl gix::status::plumbing::index_as_worktree::traits::SubmoduleStatus for Submodules {
    type Output = gix::submodule::Status;

    fn status(&mut self, entry: &gix::index::Entry, rela_path: &gix::bstr::BStr) -> gix::Result<Option<Self::Output>> {
        match self {
            Submodules::None => Ok(None),
            Submodules::Builtin(builtin) => builtin.status(entry, rela_path),
        }
    }
}

/// The index against `HEAD`'s tree (renames as configured, as `git status` shows them).
fn staged(wt_repo: &gix::Repository, index: &gix::index::State, dirt: &mut Dirt) -> Result<(), gix::Error> {
    let tree = wt_repo.head_tree_id_or_empty()?;
    // No patterns, and none taken from the current directory: the whole worktree.
    let mut pathspec = wt_repo.pathspec(
        false,
        None::<&str>,
        false,
        &gix::index::State::new(wt_repo.object_hash()),
        gix::worktree::stack::state::attributes::Source::IdMapping,
    )?;
    wt_repo.tree_index_status(
        &tree,
        index,
        Some(&mut pathspec),
        gix::status::tree_index::TrackRenames::AsConfigured,
        |change, _, _| {
            dirt.staged.push(change.location().to_str_lossy().into_owned());
            Ok(std::ops::ControlFlow::Continue(()))
        },
    )?;
    Ok(())
}

/// Sorts each entry the check reports into `dirt`, and keeps the stat updates aside.
struct Collect<'a> {
    dirt: &'a mut Dirt,
    changes: Vec<(usize, StatChange)>,
}

impl<'index> gix::status::plumbing::index_as_worktree_with_renames::VisitEntry<'index> for Collect<'_> {
    type ContentChange = ();
    type SubmoduleStatus = gix::submodule::Status;

    fn visit_entry(
        &mut self,
        entry: gix::status::plumbing::index_as_worktree_with_renames::Entry<'index, (), gix::submodule::Status>,
    ) {
        use gix::status::index_worktree::Item;
        use gix::status::plumbing::index_as_worktree::{Change, EntryStatus};
        let item: Item = entry.into();
        if let Item::Modification {
            status, entry_index, ..
        } = &item
        {
            match status {
                EntryStatus::NeedsUpdate(stat) => {
                    self.changes.push((*entry_index, StatChange::New(*stat)));
                    return;
                }
                EntryStatus::Change(Change::Modification {
                    set_entry_stat_size_zero: true,
                    ..
                }) => self.changes.push((*entry_index, StatChange::SizeToZero)),
                _ => {}
            }
        }
        let rel = item.rela_path().to_str_lossy().into_owned();
        match item.summary() {
            Some(Summary::Removed) => self.dirt.deleted.push(rel),
            Some(Summary::Added) => self.dirt.untracked.push(rel),
            Some(_) => self.dirt.modified.push(rel),
            None => {}
        }
    }
}

/// Write back the file stats the status had to re-check, as `git status` does: without
/// it, files checked out within the index's own timestamp tick stay "racily clean" and
/// every later status hashes them again. Opportunistic: skipped (silently, as git does)
/// unless the index on disk is still the one the status read, so a concurrent
/// `git add` is never undone.
pub fn refresh_index(repo: &gix::Repository, refresh: Refresh) {
    use std::io::{Read, Seek, SeekFrom};
    if refresh.changes.is_empty() {
        return;
    }
    let Some(read) = refresh.index.checksum() else { return };
    let mut on_disk = [0u8; 20];
    let unchanged = std::fs::File::open(repo.index_path())
        .and_then(|mut f| {
            f.seek(SeekFrom::End(-20))?;
            f.read_exact(&mut on_disk)
        })
        .is_ok_and(|()| on_disk.as_slice() == read.as_bytes());
    if !unchanged {
        return;
    }
    let mut index = (**refresh.index).clone();
    let entries = index.entries_mut();
    for (i, change) in refresh.changes {
        let Some(entry) = entries.get_mut(i) else { return };
        match change {
            StatChange::SizeToZero => entry.stat.size = 0,
            StatChange::New(stat) => entry.stat = stat,
        }
    }
    let options = gix::index::write::Options {
        extensions: Default::default(),
        skip_hash: false,
    };
    // Then as git writes it: format 4, the null trailer, the untracked cache, as configured.
    if index.write(options).is_ok() {
        let _ = crate::apply::index_v4::write_as_configured(repo);
    }
}
