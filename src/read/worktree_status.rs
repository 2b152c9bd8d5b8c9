//! One worktree's `git status`, on the calling thread.
//!
//! gix's `status()` starts two producer threads per call (the tree-against-index
//! comparison and the index-against-worktree check), each with its own clone of the
//! object database handle, attribute and exclude stacks, and hands every item over a
//! channel. Every database handle carries a 47 KiB inflate state allocated with 64-byte
//! alignment, and an aligned request cannot reuse the chunk a previous one freed: with
//! five such handles per worktree (opening it, sharing the database, gix's own clone,
//! its two threads), `flowloom status` over 1,000 worktrees grew the allocator's arenas
//! to 55 MiB for 7 MiB of live data. Here the modification check and the untracked walk
//! run one after the other on the caller's thread, through gix's plumbing with the
//! options `index_worktree_status` uses, reading objects through one handle per thread
//! ([`Objects`]); only the handle that opening the worktree makes is left. The stats
//! `git status` would write back are collected for [`refresh_index`].

use std::path::Path;
use std::sync::atomic::AtomicBool;

use gix::bstr::ByteSlice;

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

/// The object database for the status walk: gix's plumbing takes objects it can clone and
/// send (`Find + Send + Clone`), and every clone of a database handle allocates a new
/// inflate state (47 KiB, 64-byte aligned) that the allocator cannot reuse for the next
/// one. One handle per thread behind a lock, cloned as a pointer; never contended (the
/// walk runs on the thread that made it).
#[derive(Clone)]
pub struct Objects(std::sync::Arc<std::sync::Mutex<gix::OdbHandle>>);

impl Objects {
    /// One more handle on `repo`'s object database, for the status walks of this thread.
    pub fn of(repo: &gix::Repository) -> Objects {
        Objects(std::sync::Arc::new(std::sync::Mutex::new(repo.objects.clone())))
    }
}

impl gix::objs::Find for Objects {
    fn try_find<'a>(&self, id: &gix::oid, buffer: &'a mut Vec<u8>) -> gix::Result<Option<gix::objs::Data<'a>>> {
        let handle = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        handle.try_find(id, buffer)
    }
}

/// The status of an opened worktree by kind, on the calling thread (`status` checks many
/// worktrees at once, one per core). `objects`: the object database, shared by the walks.
pub fn status_of(wt_repo: &gix::Repository, path: &Path, objects: &Objects) -> Result<(Dirt, Refresh), RepoError> {
    let err = |e: gix::Error| RepoError::git("read status of", path, e);
    let index = wt_repo.index_or_empty().map_err(err)?;
    let mut dirt = Dirt::default();
    staged(wt_repo, &index, &mut dirt).map_err(err)?;
    let mut collect = Collect {
        dirt: &mut dirt,
        changes: Vec::new(),
    };
    unstaged(wt_repo, &index, objects, &mut collect).map_err(err)?;
    let changes = collect.changes;
    Ok((dirt, Refresh { index, changes }))
}

/// The index against the worktree, then the untracked files, one after the other on this
/// thread: what gix's `index_worktree_status` does (same configuration, stacks and
/// options) without its two threads per call and their clones of the object database.
fn unstaged(
    wt_repo: &gix::Repository,
    index: &gix::index::State,
    objects: &Objects,
    collect: &mut Collect<'_>,
) -> Result<(), gix::Error> {
    let workdir = wt_repo.workdir().unwrap_or(wt_repo.git_dir());
    let interrupt = AtomicBool::new(false);
    // No patterns: `empty_patterns_match_prefix` is gix's default (false) for a status.
    let (mut pathspec, _) = wt_repo
        .pathspec(
            false,
            None::<&str>,
            true,
            index,
            gix::worktree::stack::state::attributes::Source::WorktreeThenIdMapping,
        )?
        .into_parts();
    let (stack, mut excludes, filter) = stacks(wt_repo, index, workdir)?;
    let context = gix::status::plumbing::index_as_worktree::Context {
        pathspec: pathspec.clone(),
        stack,
        filter,
        should_interrupt: &interrupt,
    };
    tracked(wt_repo, index, workdir, objects, collect, context)?;
    let git_dir_realpath = gix::path::realpath_opts(
        wt_repo.git_dir(),
        wt_repo.current_dir(),
        gix::path::realpath::MAX_SYMLINKS,
    )
    .map_err(gix::Error::from_error)?;
    let icase = wt_repo
        .filesystem_options()?
        .ignore_case
        .then(|| index.prepare_icase_backing());
    let dirwalk = wt_repo
        .dirwalk_options()?
        .emit_untracked(gix::dir::walk::EmissionMode::Matching);
    gix::dir::walk(
        workdir,
        gix::dir::walk::Context {
            should_interrupt: Some(&interrupt),
            git_dir_realpath: &git_dir_realpath,
            current_dir: wt_repo.current_dir(),
            index,
            ignore_case_index_lookup: icase.as_ref(),
            pathspec: &mut pathspec,
            // Only patterns with attributes ask, and there are no patterns.
            pathspec_attributes: &mut |_, _, _, _| false,
            excludes: Some(&mut excludes),
            objects,
            explicit_traversal_root: Some(workdir),
        },
        dirwalk.into(),
        collect,
    )?;
    Ok(())
}

/// The attributes stack and content filters of the modification check, and the excludes
/// of the walk: what gix-status splits from the one stack `index_worktree_status` builds
/// (`Repository::attributes`), built apart instead, so that the exclude patterns (one
/// line per session in flowloom's block of `info/exclude`) are parsed once per worktree
/// and never copied.
fn stacks(
    wt_repo: &gix::Repository,
    index: &gix::index::State,
    workdir: &Path,
) -> Result<
    (
        gix::worktree::Stack,
        gix::worktree::Stack,
        gix::filter::plumbing::Pipeline,
    ),
    gix::Error,
> {
    use gix::worktree::stack::state::{attributes, ignore};
    let excludes = wt_repo
        .excludes(index, None, ignore::Source::WorktreeThenIdMappingIfNotSkipped)?
        .detach();
    let attributes = wt_repo
        .attributes_only(index, attributes::Source::WorktreeThenIdMapping)?
        .detach();
    let gix::diff::blob::Platform { attr_stack, filter, .. } = gix::diff::resource_cache(
        wt_repo,
        gix::diff::blob::pipeline::Mode::ToGit,
        attributes,
        gix::diff::blob::pipeline::WorktreeRoots {
            old_root: None,
            new_root: Some(workdir.to_owned()),
        },
    )?;
    Ok((attr_stack, excludes, filter.worktree_filter))
}

/// The tracked files against the index (gix-status's modification check, on this thread).
fn tracked(
    wt_repo: &gix::Repository,
    index: &gix::index::State,
    workdir: &Path,
    objects: &Objects,
    collect: &mut Collect<'_>,
    context: gix::status::plumbing::index_as_worktree::Context<'_>,
) -> Result<(), gix::Error> {
    let fscache = wt_repo
        .config_snapshot()
        .boolean("core.fscache")
        .unwrap_or(cfg!(windows));
    gix::status::plumbing::index_as_worktree(
        index,
        workdir,
        collect,
        gix::status::plumbing::index_as_worktree::traits::FastEq,
        Submodules::of(wt_repo, index)?,
        objects.clone(),
        &mut gix::progress::Discard,
        context,
        gix::status::plumbing::index_as_worktree::Options {
            fs: wt_repo.filesystem_options()?,
            thread_limit: Some(1),
            stat: wt_repo.stat_options()?,
            fscache,
        },
    )?;
    Ok(())
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

impl<'index> gix::status::plumbing::index_as_worktree::VisitEntry<'index> for Collect<'_> {
    type ContentChange = ();
    type SubmoduleStatus = gix::submodule::Status;

    fn visit_entry(
        &mut self,
        _entries: &'index [gix::index::Entry],
        _entry: &'index gix::index::Entry,
        entry_index: usize,
        rela_path: &'index gix::bstr::BStr,
        status: gix::status::plumbing::index_as_worktree::EntryStatus<(), gix::submodule::Status>,
    ) {
        use gix::status::plumbing::index_as_worktree::{Change, EntryStatus};
        // As gix's `Item::summary` sorts them: a stat update alone is no change.
        let list = match status {
            EntryStatus::NeedsUpdate(stat) => {
                self.changes.push((entry_index, StatChange::New(stat)));
                return;
            }
            EntryStatus::Change(Change::Removed) => &mut self.dirt.deleted,
            EntryStatus::Change(Change::Modification {
                set_entry_stat_size_zero,
                ..
            }) => {
                if set_entry_stat_size_zero {
                    self.changes.push((entry_index, StatChange::SizeToZero));
                }
                &mut self.dirt.modified
            }
            EntryStatus::Change(_) | EntryStatus::Conflict { .. } | EntryStatus::IntentToAdd => &mut self.dirt.modified,
        };
        list.push(rela_path.to_str_lossy().into_owned());
    }
}

impl gix::dir::walk::Delegate for Collect<'_> {
    fn emit(
        &mut self,
        entry: gix::dir::EntryRef<'_>,
        _collapsed_directory_status: Option<gix::dir::entry::Status>,
    ) -> gix::dir::walk::Action {
        // `git status` never shows what it cannot track (sockets, FIFOs), nor what the
        // walk emits that is not untracked.
        if entry.disk_kind != Some(gix::dir::entry::Kind::Untrackable)
            && entry.status == gix::dir::entry::Status::Untracked
        {
            self.dirt.untracked.push(entry.rela_path.to_str_lossy().into_owned());
        }
        std::ops::ControlFlow::Continue(())
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
    let was_v4 = index.version() == gix::index::Version::V4;
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
    // Then as git rewrites an index it read: in the format it had (`index.version` only
    // chooses a new index's), the null trailer and the untracked cache as configured.
    if index.write(options).is_ok() {
        let _ = crate::fsutil::index_v4::write_keeping_version(repo, was_v4);
    }
}
