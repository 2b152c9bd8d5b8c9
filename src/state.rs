//! What the repository holds, as plain values: the in-scope worktrees and branches, the
//! start points the manifest names, and the ownership record. Read through gix.
//!
//! The reader is told the manifest so that it reads only what a decision needs: a
//! converged plan reads refs, worktree registrations and one small metadata file per
//! session, never worktree contents. Dirty checks run only for worktrees that a removal
//! or a branch switch would touch (SPEC §7).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use gix::bstr::ByteSlice;

use crate::error::RepoError;
use crate::manifest::Manifest;
use crate::metadata::{self, MetadataFile};
use crate::ownership::Record;

/// Everything `plan()` needs to know about the repository.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    /// The worktrees root, canonical.
    pub root: PathBuf,
    /// Declared worktree paths that exist on disk without being registered worktrees.
    pub occupied: BTreeSet<PathBuf>,
    /// The worktree flowloom was started in, when that is a linked worktree inside the root.
    pub current_worktree: Option<PathBuf>,
    /// Linked worktrees whose folder lies inside the root, by absolute path.
    pub worktrees: BTreeMap<PathBuf, Worktree>,
    /// In-scope local branches by short name.
    pub branches: BTreeMap<String, Branch>,
    /// Branches checked out in worktrees *outside* the root (or the main worktree), by
    /// short name, with where: a new session cannot check them out.
    pub busy_branches: BTreeMap<String, PathBuf>,
    /// `<remote>/<branch>` → commit, for the branches of declared sessions that exist there.
    pub remote_branches: BTreeMap<String, String>,
    /// Base revspec → the commit it resolves to, or why it does not.
    pub bases: BTreeMap<String, Result<String, String>>,
    /// The ownership record (SPEC §3).
    pub owned: Record,
    /// `refs/flowloom/archive/*` → commit: where forced removals kept commits.
    pub archives: BTreeMap<String, String>,
    /// Lines `info/exclude` lacks (SPEC §5).
    pub missing_excludes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Worktree {
    pub path: PathBuf,
    /// Name of its admin folder under `<common dir>/worktrees/`.
    pub admin_id: String,
    /// The branch checked out (short name), `None` when detached or unreadable.
    pub branch: Option<String>,
    /// `Some(reason)` when locked (`git worktree lock`); the reason may be empty.
    pub lock: Option<String>,
    /// The folder is gone: git would prune this registration.
    pub missing: bool,
    /// The session id it holds (metadata `sessionId`, else the templates' `{id}`).
    pub session_id: Option<String>,
    /// `sessions/<id>/metadata.json`, when a session id is known.
    pub metadata: MetadataFile,
    /// `sessions/<id>/artifacts/` exists.
    pub has_artifacts: bool,
    /// Uncommitted work, read only where a decision needs it.
    pub dirt: Option<Dirt>,
    /// Why the dirty check could not be done, when it failed.
    pub unreadable: Option<String>,
    /// For a checkout a kill interrupted: files in it that its branch does not have (read
    /// only for such worktrees).
    pub stray: Option<Vec<String>>,
    /// A branch switch to this branch was under way when flowloom was killed.
    pub switching_to: Option<String>,
    /// For such a worktree: whether every change in it is one that switch makes (files of
    /// the target branch, whole or cut short by the kill), so that finishing it loses nothing.
    pub switch_resumable: bool,
}

/// Work that removing a worktree would lose: paths relative to the worktree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dirt {
    pub modified: Vec<String>,
    pub staged: Vec<String>,
    pub deleted: Vec<String>,
    pub untracked: Vec<String>,
    /// Files under `sessions/<id>/` other than `metadata.json` (artifacts, notes), which
    /// `info/exclude` hides from git status.
    pub session_files: Vec<String>,
}

impl Dirt {
    pub fn is_clean(&self) -> bool {
        *self == Dirt::default()
    }

    /// No tracked changes and no untracked files (files in the session folder do not count:
    /// a branch switch leaves them in place).
    pub fn is_clean_tracked(&self) -> bool {
        self.modified.is_empty() && self.staged.is_empty() && self.deleted.is_empty() && self.untracked.is_empty()
    }

    /// Every path a forced removal deletes or discards, sorted, without repeats.
    pub fn all_paths(&self) -> Vec<String> {
        let mut all: Vec<String> = [
            &self.modified,
            &self.staged,
            &self.deleted,
            &self.untracked,
            &self.session_files,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        all.sort();
        all.dedup();
        all
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    pub name: String,
    pub commit: String,
    /// The remote-tracking branch it follows, e.g. `origin/x`, and its commit when present.
    pub upstream: Option<(String, Option<String>)>,
    /// Commits reachable from the branch but neither from its base nor its upstream; read
    /// only for branches a removal would delete.
    pub unmerged: Option<usize>,
}

/// Which worktrees need a dirty check and which branches a merge check: the planner's
/// questions, asked before it runs so that it can stay pure.
struct Needs {
    dirt: BTreeSet<PathBuf>,
    unmerged: BTreeMap<String, String>,
}

impl State {
    /// Read the in-scope state of the repository that holds `manifest`.
    pub fn read(repo: &gix::Repository, manifest: &Manifest, start_dir: &Path) -> Result<State, RepoError> {
        let common_dir = canonical(repo.common_dir());
        let root = manifest.root_dir();
        let root_canonical = canonical(&root);
        let main_dir = repo.main_repo().ok().and_then(|r| r.workdir().map(canonical));
        let mut state = State {
            root: root_canonical.clone(),
            owned: Record::read(&common_dir)?,
            missing_excludes: crate::exclude::missing(&common_dir, manifest, main_dir.as_deref()),
            ..State::default()
        };

        // Worktrees: registrations inside the root are in scope; the others only make
        // their branch unavailable to new sessions.
        let declared_paths: BTreeMap<PathBuf, &crate::manifest::Session> = manifest
            .sessions
            .values()
            .map(|s| (root_canonical.join(&s.worktree), s))
            .collect();
        if let Some(main) = &main_dir
            && let Some(branch) = head_branch(&common_dir.join("HEAD"))
        {
            state.busy_branches.insert(branch, main.clone());
        }
        let proxies = repo
            .worktrees()
            .map_err(|e| RepoError::git("list worktrees", &common_dir, e))?;
        for proxy in proxies {
            let Ok(base) = proxy.base() else { continue };
            let admin_id = proxy.id().map(|id| id.to_str_lossy().into_owned()).unwrap_or_default();
            let missing = !base.exists();
            let path = if missing { normalise(&base) } else { canonical(&base) };
            let branch = head_branch(&proxy.git_dir().join("HEAD"));
            if !path.starts_with(&root_canonical) || path == root_canonical {
                if let Some(branch) = branch {
                    state.busy_branches.insert(branch, path);
                }
                continue;
            }
            let lock = proxy.lock_reason().map(|r| r.to_str_lossy().into_owned());
            let switching_to = std::fs::read_to_string(proxy.git_dir().join(SWITCH_MARKER))
                .ok()
                .map(|t| t.trim().to_owned());
            let folder = path.file_name().map(|f| f.to_string_lossy().into_owned());
            let declared = declared_paths.get(&path);
            let session_id = match declared {
                Some(s) => Some(s.id.clone()),
                None if missing => None,
                None => infer_session_id(&path, manifest, branch.as_deref(), folder.as_deref()),
            }
            .or_else(|| state.owned.by_path(&path).map(|o| o.id.clone()));
            let (metadata, has_artifacts) = match (&session_id, missing) {
                (Some(id), false) => (
                    metadata::read(&path, id),
                    path.join("sessions").join(id).join("artifacts").is_dir(),
                ),
                _ => (MetadataFile::Missing, false),
            };
            state.worktrees.insert(
                path.clone(),
                Worktree {
                    path,
                    admin_id,
                    branch,
                    lock,
                    missing,
                    session_id,
                    metadata,
                    has_artifacts,
                    dirt: None,
                    unreadable: None,
                    stray: None,
                    switching_to,
                    switch_resumable: false,
                },
            );
        }
        for path in declared_paths.keys() {
            // An empty folder is fine: git (and gix) check out into it.
            let empty_dir = std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none());
            if !state.worktrees.contains_key(path) && path.symlink_metadata().is_ok() && !empty_dir {
                state.occupied.insert(path.clone());
            }
        }

        // Branches: what the default template could have produced, and every declared one.
        let declared_branches: BTreeSet<&str> = manifest.sessions.values().map(|s| s.branch.as_str()).collect();
        let owned_branches: BTreeSet<&str> = state.owned.sessions.iter().map(|o| o.branch.as_str()).collect();
        let refs = repo
            .references()
            .map_err(|e| RepoError::git("read references", &common_dir, e))?;
        let local = refs
            .local_branches()
            .map_err(|e| RepoError::git("read local branches", &common_dir, e))?;
        for reference in local.flatten() {
            let full = reference.name().as_bstr().to_str_lossy().into_owned();
            let Some(name) = full.strip_prefix("refs/heads/") else {
                continue;
            };
            let in_scope = manifest.defaults.branch.match_id(name).is_some()
                || declared_branches.contains(name)
                || owned_branches.contains(name);
            if !in_scope {
                continue;
            }
            let mut reference = reference;
            let Ok(id) = reference.peel_to_id() else { continue };
            let upstream = upstream_of(repo, reference.name());
            state.branches.insert(
                name.to_owned(),
                Branch {
                    name: name.to_owned(),
                    commit: id.to_string(),
                    upstream,
                    unmerged: None,
                },
            );
        }

        if let Ok(archives) = refs.prefixed(crate::plan::ARCHIVE_PREFIX) {
            for mut r in archives.flatten() {
                if let Ok(id) = r.peel_to_id() {
                    state
                        .archives
                        .insert(r.name().as_bstr().to_str_lossy().into_owned(), id.to_string());
                }
            }
        }

        for session in manifest.sessions.values() {
            let remote_ref = format!("{}/{}", manifest.defaults.remote, session.branch);
            if let Ok(Some(mut r)) = repo.try_find_reference(format!("refs/remotes/{remote_ref}").as_str())
                && let Ok(id) = r.peel_to_id()
            {
                state.remote_branches.insert(remote_ref, id.to_string());
            }
        }

        let mut bases: BTreeSet<&str> = manifest.sessions.values().map(|s| s.base.as_str()).collect();
        bases.extend(state.owned.sessions.iter().map(|o| o.base.as_str()));
        bases.insert(manifest.defaults.base.as_str());
        for spec in bases {
            state.bases.insert(spec.to_owned(), resolve(repo, spec));
        }

        if let Ok(cwd) = start_dir.canonicalize() {
            state.current_worktree = state.worktrees.keys().find(|p| cwd.starts_with(p)).cloned();
        }

        // A checkout a kill interrupted is redone from scratch; make sure that deletes only
        // what the checkout wrote (files of its branch), not what someone added since.
        let half_made: Vec<PathBuf> = state
            .worktrees
            .values()
            .filter(|wt| !wt.missing && wt.lock.as_deref() == Some(crate::plan::INITIALIZING))
            .filter(|wt| {
                state
                    .owned
                    .by_path(&wt.path)
                    .is_some_and(|o| o.state == crate::ownership::OwnedState::Creating)
            })
            .map(|wt| wt.path.clone())
            .collect();
        for path in half_made {
            // The record's branch: the half-made worktree's own HEAD may not be written yet.
            let branch = state.owned.by_path(&path).map(|o| o.branch.clone());
            let stray = stray_files(repo, &path, branch.as_deref());
            if let Some(wt) = state.worktrees.get_mut(&path) {
                wt.stray = Some(stray);
            }
        }

        // The expensive questions, only where the plan depends on the answer.
        let needs = state.needs(manifest);
        let to_check: Vec<&Worktree> = needs.dirt.iter().map(|p| &state.worktrees[p]).collect();
        let results = read_dirt_parallel(repo, &to_check);
        for (path, dirt) in needs.dirt.iter().zip(results) {
            // A worktree git cannot read (a half-made registration, a broken index) is not
            // an error of the whole plan: it blocks what would touch it, with the reason.
            if let Some(wt) = state.worktrees.get_mut(path) {
                match dirt {
                    Ok(dirt) => wt.dirt = Some(dirt),
                    Err(e) => wt.unreadable = Some(e.to_string()),
                }
            }
        }
        // A switch a kill interrupted: can it be finished without losing anything?
        let interrupted: Vec<PathBuf> = state
            .worktrees
            .values()
            .filter(|wt| wt.switching_to.is_some() && wt.dirt.as_ref().is_some_and(|d| !d.is_clean_tracked()))
            .map(|wt| wt.path.clone())
            .collect();
        for path in interrupted {
            let ours = switch_leftovers_are_ours(repo, &state.worktrees[&path]);
            if let Some(wt) = state.worktrees.get_mut(&path) {
                wt.switch_resumable = ours;
            }
        }
        for (branch, base) in needs.unmerged {
            let base = state.bases.get(&base).and_then(|b| b.as_ref().ok()).cloned();
            if let Some(b) = state.branches.get_mut(&branch) {
                b.unmerged = Some(count_unmerged(repo, b, base.as_deref())?);
            }
        }
        Ok(state)
    }

    /// Worktrees that would be removed or switched back need a dirty check; branches that would
    /// be deleted need a merge check. Mirrors the decisions in `plan()`.
    fn needs(&self, manifest: &Manifest) -> Needs {
        let mut needs = Needs {
            dirt: BTreeSet::new(),
            unmerged: BTreeMap::new(),
        };
        let root = self.root.clone();
        for session in manifest.sessions.values() {
            let path = root.join(&session.worktree);
            let removing = self
                .owned
                .by_path(&path)
                .is_some_and(|o| o.state == crate::ownership::OwnedState::Removing);
            if let Some(wt) = self.worktrees.get(&path)
                && !wt.missing
                && (removing || (wt.branch.is_some() && wt.branch.as_deref() != Some(session.branch.as_str())))
            {
                needs.dirt.insert(path);
            }
        }
        for session in manifest.sessions.values() {
            let path = root.join(&session.worktree);
            if let Some(wt) = self.worktrees.get(&path)
                && !wt.missing
                && wt.branch.as_deref() != Some(session.branch.as_str())
            {
                needs.dirt.insert(path);
            }
        }
        for owned in crate::plan::orphans(manifest, &root, self) {
            if let Some(wt) = self.worktrees.get(&owned.path)
                && !wt.missing
            {
                needs.dirt.insert(owned.path.clone());
            }
            if self.branches.contains_key(&owned.branch) {
                needs.unmerged.insert(owned.branch.clone(), owned.base.clone());
            }
        }
        needs
    }
}

/// The short branch name a `HEAD` file points at; `None` when detached or unreadable.
fn head_branch(head_file: &Path) -> Option<String> {
    let content = std::fs::read(head_file).ok()?;
    let target = content.trim().strip_prefix(b"ref: ")?;
    let name = target.strip_prefix(b"refs/heads/")?;
    Some(name.to_str().ok()?.to_owned())
}

/// A worktree made by hand has no declared session; its id is its metadata's `sessionId`,
/// else what the default templates say (SPEC §5).
fn infer_session_id(path: &Path, manifest: &Manifest, branch: Option<&str>, folder: Option<&str>) -> Option<String> {
    let from_branch = branch.and_then(|b| manifest.defaults.branch.match_id(b));
    let from_folder = folder.and_then(|f| manifest.defaults.worktree.match_id(f));
    for id in from_branch.into_iter().chain(from_folder) {
        if let MetadataFile::Valid(m) = metadata::read(path, id)
            && let Some(sid) = m.session_id()
        {
            return Some(sid.to_owned());
        }
    }
    // The manual process names the session folder after the session, not the worktree:
    // look for the one folder under `sessions/` that holds a metadata file.
    if let Ok(entries) = std::fs::read_dir(path.join("sessions")) {
        let found: Vec<(String, metadata::Metadata)> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter_map(|id| match metadata::read(path, &id) {
                MetadataFile::Valid(m) => Some((id, m)),
                _ => None,
            })
            .collect();
        if let [(only, m)] = found.as_slice() {
            return m.session_id().map(str::to_owned).or(Some(only.clone()));
        }
    }
    from_branch.or(from_folder).map(str::to_owned)
}

fn upstream_of(repo: &gix::Repository, name: &gix::refs::FullNameRef) -> Option<(String, Option<String>)> {
    let tracking = repo
        .branch_remote_tracking_ref_name(name, gix::remote::Direction::Fetch)?
        .ok()?;
    let short = tracking.as_bstr().to_str_lossy();
    let short = short.strip_prefix("refs/remotes/").unwrap_or(&short).to_owned();
    let commit = repo
        .try_find_reference(tracking.as_ref())
        .ok()
        .flatten()
        .and_then(|mut r| r.peel_to_id().ok())
        .map(|id| id.to_string());
    Some((short, commit))
}

fn resolve(repo: &gix::Repository, spec: &str) -> Result<String, String> {
    repo.rev_parse_single(format!("{spec}^{{commit}}").as_str())
        .map(|id| id.to_string())
        .map_err(|e| crate::error::chain(&e))
}

fn count_unmerged(repo: &gix::Repository, branch: &Branch, base: Option<&str>) -> Result<usize, RepoError> {
    let oid = |hex: &str| gix::ObjectId::from_hex(hex.as_bytes()).ok();
    let tip = oid(&branch.commit).ok_or_else(|| RepoError::message(format!("bad object id {}", branch.commit)))?;
    let hidden: Vec<gix::ObjectId> = base
        .and_then(oid)
        .into_iter()
        .chain(branch.upstream.as_ref().and_then(|(_, c)| c.as_deref()).and_then(oid))
        .collect();
    let walk = repo
        .rev_walk([tip])
        .with_hidden(hidden)
        .all()
        .map_err(|e| RepoError::git("walk the history of", Path::new(&branch.name), e))?;
    let mut count = 0;
    for info in walk {
        info.map_err(|e| RepoError::git("walk the history of", Path::new(&branch.name), e))?;
        count += 1;
    }
    Ok(count)
}

/// Dirty checks, one per worktree, spread over the available cores: each is a full
/// `git status` (index against tree, worktree against index, untracked files), and they
/// are independent.
pub(crate) fn read_dirt_parallel(repo: &gix::Repository, worktrees: &[&Worktree]) -> Vec<Result<Dirt, RepoError>> {
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .min(worktrees.len());
    if threads <= 1 {
        return worktrees.iter().map(|wt| read_dirt(repo, wt)).collect();
    }
    let shared = repo.clone().into_sync();
    let mut results: Vec<Option<Result<Dirt, RepoError>>> = (0..worktrees.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let shared = &shared;
                scope.spawn(move || {
                    let repo = shared.to_thread_local();
                    (t..worktrees.len())
                        .step_by(threads)
                        .map(|i| (i, read_dirt(&repo, worktrees[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            // A thread that panicked leaves its slots empty: reported below as an error.
            if let Ok(done) = handle.join() {
                for (i, result) in done {
                    results[i] = Some(result);
                }
            }
        }
    });
    results
        .into_iter()
        .zip(worktrees)
        .map(|(r, wt)| {
            r.unwrap_or_else(|| {
                Err(RepoError::message(format!(
                    "the status of {} could not be read",
                    wt.path.display()
                )))
            })
        })
        .collect()
}

/// Count what removing this worktree would lose: `git status` in it, plus the files of its
/// session folder (which `info/exclude` hides from git status).
pub(crate) fn read_dirt(repo: &gix::Repository, wt: &Worktree) -> Result<Dirt, RepoError> {
    use gix::status::index_worktree::iter::Summary;
    let mut dirt = Dirt::default();
    let proxy = repo
        .worktree_proxy_by_id(wt.admin_id.as_bytes().as_bstr())
        .map_err(|e| RepoError::git("find worktree", &wt.path, e))?
        .ok_or_else(|| RepoError::message(format!("worktree {} vanished while reading", wt.path.display())))?;
    let mut wt_repo = proxy
        .into_repo()
        .map_err(|e| RepoError::git("open worktree", &wt.path, e))?;
    // Worktrees share the common dir's object database: use the one already open instead
    // of mapping its packs again for every worktree (unmapping them cost more than the
    // status itself, in TLB shootdowns).
    wt_repo.objects = repo.objects.clone();
    let mut iter = wt_repo
        .status(gix::progress::Discard)
        .map_err(|e| RepoError::git("read status of", &wt.path, e))?
        .untracked_files(gix::status::UntrackedFiles::Files)
        .into_iter(None)
        .map_err(|e| RepoError::git("read status of", &wt.path, e))?;
    for item in &mut iter {
        let item = item.map_err(|e| RepoError::git("read status of", &wt.path, e))?;
        match item {
            gix::status::Item::TreeIndex(change) => dirt.staged.push(change.location().to_str_lossy().into_owned()),
            gix::status::Item::IndexWorktree(item) => {
                let path = item.rela_path().to_str_lossy().into_owned();
                match item.summary() {
                    Some(Summary::Removed) => dirt.deleted.push(path),
                    Some(Summary::Added) => dirt.untracked.push(path),
                    Some(_) => dirt.modified.push(path),
                    None => {}
                }
            }
        }
    }
    if let Some(mut outcome) = iter.into_outcome() {
        refresh_index(&wt_repo, &mut outcome);
    }
    if let Some(id) = &wt.session_id {
        let folder = Path::new("sessions").join(id);
        list_files(&wt.path, &folder, true, &mut dirt.session_files);
    }
    Ok(dirt)
}

/// Write back the file stats the status had to re-check, as `git status` does: without
/// it, files checked out within the index's own timestamp tick stay "racily clean" and
/// every later status hashes them again. Opportunistic: skipped (silently, as git does)
/// unless the index on disk is still the one the status read, so a concurrent
/// `git add` is never undone.
fn refresh_index(repo: &gix::Repository, outcome: &mut gix::status::Outcome) {
    use std::io::{Read, Seek, SeekFrom};
    if !outcome.has_changes() {
        return;
    }
    let gix::worktree::IndexPersistedOrInMemory::Persisted(index) = &outcome.worktree_index else {
        return;
    };
    let Some(read) = index.checksum() else { return };
    let mut on_disk = [0u8; 20];
    let unchanged = std::fs::File::open(repo.index_path())
        .and_then(|mut f| {
            f.seek(SeekFrom::End(-20))?;
            f.read_exact(&mut on_disk)
        })
        .is_ok_and(|()| on_disk.as_slice() == read.as_bytes());
    if unchanged {
        let _ = outcome.write_changes();
    }
}

/// The file, in a worktree's administration folder, that says a branch switch is under way.
pub const SWITCH_MARKER: &str = "flowloom-switch";

/// Whether every change in a worktree whose switch to `switching_to` was interrupted is one
/// that switch makes: a modified or new file holds the target branch's content or a prefix
/// of it (a write the kill cut short), a staged entry is the target's, and deletions are
/// what the switch deletes or has yet to write. Anything else is someone's work.
fn switch_leftovers_are_ours(repo: &gix::Repository, wt: &Worktree) -> bool {
    let (Some(to), Some(dirt)) = (&wt.switching_to, &wt.dirt) else {
        return false;
    };
    let Some(blobs) = tree_blobs(repo, to) else {
        return false;
    };
    let content_is_ours = |rel: &String| is_from_tree(repo, &blobs, &wt.path, rel);
    if !dirt.modified.iter().chain(&dirt.untracked).all(content_is_ours) {
        return false;
    }
    if dirt.staged.is_empty() {
        return true;
    }
    // Staged: the switch wrote the target's index before the kill; each entry must be the
    // target's (or absent from both).
    let index = repo
        .worktree_proxy_by_id(wt.admin_id.as_bytes().as_bstr())
        .ok()
        .flatten()
        .and_then(|p| p.into_repo().ok())
        .and_then(|r| r.open_index().ok());
    let Some(index) = index else { return false };
    dirt.staged
        .iter()
        .all(|rel| match index.entry_by_path(rel.as_str().into()) {
            Some(entry) => blobs.get(rel) == Some(&entry.id),
            None => !blobs.contains_key(rel),
        })
}

/// Path → blob id of every file of `branch`'s tree.
fn tree_blobs(repo: &gix::Repository, branch: &str) -> Option<std::collections::HashMap<String, gix::ObjectId>> {
    let tree = repo
        .find_reference(format!("refs/heads/{branch}").as_str())
        .ok()?
        .peel_to_commit()
        .ok()?
        .tree_id()
        .ok()?;
    let index = repo.index_from_tree(&tree).ok()?;
    Some(
        index
            .entries()
            .iter()
            .map(|e| (e.path(&index).to_str_lossy().into_owned(), e.id))
            .collect(),
    )
}

/// Files in a half-made worktree that its checkout did not write: paths the tree of
/// `branch` does not have, or content that is not (a prefix of, when the kill cut a write
/// short) the tree's. Relative to the worktree, `.git` aside; unreadable means unknown,
/// reported as one entry.
fn stray_files(repo: &gix::Repository, worktree: &Path, branch: Option<&str>) -> Vec<String> {
    let Some(blobs) = branch.and_then(|b| tree_blobs(repo, b)) else {
        return vec!["(the branch's tree could not be read)".to_owned()];
    };
    let mut found = Vec::new();
    list_files(worktree, Path::new(""), false, &mut found);
    found
        .into_iter()
        .filter(|f| f != ".git" && !is_from_tree(repo, &blobs, worktree, f))
        .collect()
}

/// Whether the file at `rel` holds what the tree has there, or a prefix of it.
fn is_from_tree(
    repo: &gix::Repository,
    blobs: &std::collections::HashMap<String, gix::ObjectId>,
    worktree: &Path,
    rel: &str,
) -> bool {
    let Some(id) = blobs.get(rel) else { return false };
    let file = worktree.join(rel);
    let on_disk = match std::fs::symlink_metadata(&file) {
        Ok(m) if m.file_type().is_symlink() => std::fs::read_link(&file)
            .ok()
            .map(|t| t.to_string_lossy().into_owned().into_bytes()),
        Ok(_) => std::fs::read(&file).ok(),
        Err(_) => None,
    };
    on_disk.is_some_and(|bytes| repo.find_object(*id).is_ok_and(|blob| blob.data.starts_with(&bytes)))
}

/// Files below `base/rel` (recursively) as paths relative to `base`; a top-level
/// `metadata.json` is left out when asked.
fn list_files(base: &Path, rel: &Path, skip_metadata: bool, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(base.join(rel)) else {
        return;
    };
    for entry in entries.flatten() {
        let child = rel.join(entry.file_name());
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => list_files(base, &child, false, out),
            _ if skip_metadata && entry.file_name() == "metadata.json" => {}
            _ => out.push(child.to_string_lossy().into_owned()),
        }
    }
}

/// The canonical form of a path that exists; else the path, made absolute and lexically
/// normalised against its longest existing ancestor (gix hands out `…/x/../..` forms).
pub fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let path = normalise(path);
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    while let Some(parent) = existing.parent() {
        if let Some(name) = existing.file_name() {
            rest.push(name.to_owned());
        }
        existing = parent;
        if let Ok(p) = existing.canonicalize() {
            return rest.iter().rev().fold(p, |acc, n| acc.join(n));
        }
    }
    path
}

/// Lexical normalisation: drop `.`, fold `..`.
fn normalise(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
