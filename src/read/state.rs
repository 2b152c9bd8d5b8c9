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
use crate::fsutil::{canonical, normalise};
use crate::manifest::Manifest;
use crate::read::worktree_status::Objects;
use crate::store::metadata::{self, MetadataFile};
use crate::store::ownership::Record;

/// Everything `plan()` needs to know about the repository.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct State {
    /// The worktrees root, canonical.
    pub root: PathBuf,
    /// Declared worktree paths that exist on disk without being registered worktrees.
    pub occupied: BTreeSet<PathBuf>,
    /// The worktree flowloom was started in, when that is a linked worktree inside the root
    /// (or an owned one outside it).
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
    pub bases: BTreeMap<String, Result<String, BaseFailure>>,
    /// Base revspec → the branch it names, for those that name one (a new branch's upstream).
    pub base_branches: BTreeMap<String, crate::read::tracking::BaseBranch>,
    /// `branch.autoSetupMerge`.
    pub auto_setup_merge: crate::read::tracking::AutoSetupMerge,
    /// `branch.autoSetupRebase`.
    pub auto_setup_rebase: crate::read::tracking::AutoSetupRebase,
    /// The ownership record (SPEC §3).
    pub owned: Record,
    /// `refs/flowloom/archive/*` → commit: where forced removals kept commits.
    pub archives: BTreeMap<String, String>,
    /// SPEC §11.4: a ref named as a folder of the archives (`refs/flowloom`,
    /// `refs/flowloom/archive`), which leaves no room for one.
    pub archive_in_the_way: Option<String>,
    /// What flowloom's part of `info/exclude` holds now (SPEC §5).
    pub exclude: crate::store::exclude::Found,
    /// The main worktree, canonical (none in a bare repository).
    pub main_workdir: Option<PathBuf>,
    /// Folders an interrupted removal moved into `<root>/.flowloom-trash/` (as the record
    /// says) that are still there.
    pub trash: Vec<PathBuf>,
    /// Folders whose deletion started (the record's `deleting`) that are still there, in
    /// whole or in part: only ever finished (SPEC §11.4).
    pub deleting: Vec<PathBuf>,
    /// Those of them that are exactly what the check before the move saw (their stamps
    /// match the digest the record holds).
    pub trash_intact: BTreeSet<PathBuf>,
    /// Where the repository's hooks are (for `post-checkout` in new worktrees).
    pub hooks: Option<crate::hooks::HooksDir>,
    /// Commit → why checking it out would go wrong (answered for the commits a creation
    /// or a recreated worktree would check out).
    pub checkout_problems: BTreeMap<String, String>,
    /// Commit → session id → the path it tracks where flowloom keeps that session's own
    /// files (`sessions/<id>/metadata.json`, say), for the same commits.
    pub tracked_session_files: BTreeMap<String, BTreeMap<String, String>>,
    /// What a killed apply left behind (read by the caller, which knows whether the apply
    /// lock was taken over from a dead holder).
    pub leftovers: Vec<crate::store::recover::Leftover>,
    /// The text of `.worktreeinclude` at the main worktree's root (SPEC §10).
    pub include: Option<Vec<u8>>,
    /// The main worktree's ignored entries, folders whole (answered when a creation copies).
    pub ignored: Vec<crate::read::copy::Ignored>,
    /// The hashes of the `setup` lists this machine trusts for this repository.
    pub trusted: BTreeSet<String>,
    /// How this repository is named in the machine's trust and port files.
    pub repository_key: String,
    /// Registrations whose links a moved folder broke: repaired first, read as repaired.
    pub broken_links: Vec<crate::read::links::LinkRepair>,
    /// Owned worktrees outside the root (a changed `root` left them there), by absolute
    /// path: what moving them needs (SPEC §11.3).
    pub elsewhere: BTreeMap<PathBuf, Worktree>,
    /// The file system the root is on (or would be, for a root not made yet): a worktree on
    /// another one moves by copy-and-verify.
    pub root_device: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
    /// The commit of a detached `HEAD`.
    pub detached: Option<String>,
    /// The commit `HEAD` points at (read for worktrees a removal would delete).
    pub head: Option<String>,
    /// For a detached `HEAD` of a worktree a removal would delete: how many commits no
    /// branch or tag reaches.
    pub unreachable: Option<usize>,
    /// An initialized submodule inside (read for worktrees a removal would delete).
    pub submodule: Option<String>,
    /// Why its `.git` does not lead back to its registration (read likewise).
    pub foreign_git: Option<String>,
    /// Repositories of their own inside, anywhere (ignored folders too), with commits no
    /// remote-tracking ref of theirs reaches (read likewise).
    pub nested: Vec<crate::read::inspect::Nested>,
    /// Processes working inside (read for worktrees a removal would delete).
    pub processes: Vec<crate::read::inspect::Process>,
    /// A symlink or special file where flowloom would write the session folder.
    pub unsafe_session: Option<String>,
    /// SPEC §11.3: the main worktree's ignored entries (`State::ignored`) that need no copy
    /// into this worktree: it has them, or copy would never copy them (a special file, a
    /// `.git`). Read for sessions in place whose manifest copies.
    pub copy_settled: Option<BTreeSet<String>>,
    /// The file system the folder is on (`None` when it is gone).
    pub device: Option<u64>,
}

pub use crate::read::inspect::Dirt;

impl Worktree {
    /// What one registration holds, cheaply: its lock, HEAD, switch marker, and the session
    /// folder's metadata (never through a symlink or from a special file).
    fn read(
        proxy: &gix::worktree::Proxy<'_>,
        path: PathBuf,
        branch: Option<String>,
        detached: Option<String>,
        missing: bool,
        session_id: Option<String>,
    ) -> Worktree {
        let admin_id = proxy.id().map(|id| id.to_str_lossy().into_owned()).unwrap_or_default();
        let present_id = session_id.as_deref().filter(|_| !missing);
        let unsafe_session = present_id.and_then(|id| {
            crate::fsutil::check_beneath(&path, &crate::names::metadata_file(id))
                .and_then(|()| crate::fsutil::check_beneath(&path, &crate::names::artifacts_dir(id)))
                .err()
                .map(|e| e.to_string())
        });
        let (metadata, has_artifacts) = match present_id {
            Some(id) if unsafe_session.is_none() => (
                metadata::read(&path, id),
                path.join(crate::names::artifacts_dir(id)).is_dir(),
            ),
            _ => (MetadataFile::Missing, false),
        };
        let device = std::fs::symlink_metadata(&path)
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::dev(&m));
        Worktree {
            admin_id,
            lock: proxy.lock_reason().map(|r| r.to_str_lossy().into_owned()),
            switching_to: crate::read::inspect::read_small(&proxy.git_dir().join(crate::names::SWITCH_MARKER))
                .map(|t| String::from_utf8_lossy(&t).trim().to_owned()),
            detached,
            path,
            branch,
            missing,
            session_id,
            metadata,
            has_artifacts,
            dirt: None,
            unreadable: None,
            stray: None,
            switch_resumable: false,
            head: None,
            unreachable: None,
            submodule: None,
            foreign_git: None,
            nested: Vec::new(),
            processes: Vec::new(),
            unsafe_session,
            copy_settled: None,
            device,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Branch {
    pub name: String,
    pub commit: String,
    /// The remote-tracking branch it follows, e.g. `origin/x`, and its commit when present.
    pub upstream: Option<(String, Option<String>)>,
    /// Commits reachable from the branch but neither from its base nor its upstream; read
    /// only for branches a removal would delete.
    pub unmerged: Option<usize>,
    /// For such a branch with unmerged commits: how its changes are in its base or
    /// upstream anyway (squash, rebase, cherry-pick), if they are.
    pub integrated: Option<crate::read::inspect::Integration>,
}

impl State {
    /// Read the in-scope state of the repository that holds `manifest`: cheap reads only
    /// (refs, registrations, one metadata file per session); `answer` does the rest.
    pub fn read(repo: &gix::Repository, manifest: &Manifest, start_dir: &Path) -> Result<State, RepoError> {
        let common_dir = canonical(repo.common_dir());
        let main_workdir = main_workdir(repo);
        let root = check_root_beside(repo, manifest, main_workdir.as_deref())?;
        let mut state = State {
            owned: Record::read(&common_dir)?,
            exclude: crate::store::exclude::read(&common_dir),
            root,
            ..State::default()
        };
        if let Some(main) = &main_workdir {
            // Checked out, or being rebased there (git counts both).
            let rebased = crate::read::inspect::rebasing(&common_dir)
                .and_then(|full| full.strip_prefix("refs/heads/").map(str::to_owned));
            for branch in head_branch(&common_dir.join("HEAD")).into_iter().chain(rebased) {
                state.busy_branches.insert(branch, main.clone());
            }
        }
        if let Some(main) = &main_workdir {
            state.include =
                crate::fsutil::read_regular_beneath(main, Path::new(crate::read::copy::INCLUDE_FILE), 1 << 20)
                    .ok()
                    .flatten();
        }
        state.main_workdir = main_workdir;
        state.repository_key = crate::store::machine::repository_key(&common_dir);
        // Setup and teardown (one trust, SPEC §11.3); `[defaults]`' teardown is an orphan's.
        let scripted = |e: &crate::manifest::Environment| !e.setup.is_empty() || !e.teardown.is_empty();
        if manifest.sessions.values().any(|s| scripted(&s.environment)) || scripted(&manifest.defaults.environment) {
            state.trusted = crate::store::machine::trusted(&state.repository_key)?;
        }
        state.hooks = Some(crate::hooks::hooks_dir(repo));
        // Only folders flowloom recorded moving into the trash, beside their session's path
        // in the root, still real folders there.
        state.trash = state
            .owned
            .sessions
            .iter()
            .filter(|o| o.path.parent() == Some(state.root.as_path()))
            .filter_map(|o| {
                o.trash
                    .as_ref()
                    .filter(|t| crate::read::inspect::is_trash_of(t, &o.path))
            })
            .cloned()
            .collect();
        state.trash_intact = state
            .owned
            .sessions
            .iter()
            .filter_map(|o| Some((o.trash.as_ref()?, o.trash_digest.as_ref()?)))
            .filter(|(t, digest)| state.trash.contains(t) && crate::read::inspect::Stamps::read(t).digest() == **digest)
            .map(|(t, _)| t.clone())
            .collect();
        state.deleting = state
            .owned
            .deleting
            .iter()
            .filter(|p| p.symlink_metadata().is_ok())
            .cloned()
            .collect();
        state.root_device = device_of(&state.root);
        state.read_worktrees(repo, manifest, &common_dir)?;
        state.read_branches(repo, manifest, &common_dir)?;
        for session in manifest.sessions.values() {
            let remote_ref = format!("{}/{}", manifest.defaults.remote, session.branch);
            if let Some(id) = peeled(repo, &format!("refs/remotes/{remote_ref}")) {
                state.remote_branches.insert(remote_ref, id);
            }
        }
        state.read_bases(repo, manifest);
        if let Ok(cwd) = start_dir.canonicalize() {
            let registered = state.worktrees.keys().chain(state.elsewhere.keys());
            state.current_worktree = registered.into_iter().find(|p| cwd.starts_with(p)).cloned();
        }
        Ok(state)
    }

    /// Every base a session names (and the default), resolved as git resolves it, the branch
    /// each names, and the settings that make a new branch's upstream.
    fn read_bases(&mut self, repo: &gix::Repository, manifest: &Manifest) {
        let mut bases: BTreeSet<&str> = manifest.sessions.values().map(|s| s.base.as_str()).collect();
        bases.extend(self.owned.sessions.iter().map(|o| o.base.as_str()));
        bases.insert(manifest.defaults.base.as_str());
        for spec in bases {
            self.bases.insert(spec.to_owned(), resolve_base(repo, spec));
            if let Some(branch) = crate::read::tracking::base_branch(repo, spec) {
                self.base_branches.insert(spec.to_owned(), branch);
            }
        }
        self.auto_setup_merge = crate::read::tracking::auto_setup_merge(repo);
        self.auto_setup_rebase = crate::read::tracking::auto_setup_rebase(repo);
    }

    /// Registrations inside the root are in scope; the others only make their branch
    /// unavailable to new sessions. Declared paths that exist unregistered are `occupied`.
    fn read_worktrees(
        &mut self,
        repo: &gix::Repository,
        manifest: &Manifest,
        common_dir: &Path,
    ) -> Result<(), RepoError> {
        let declared: BTreeMap<PathBuf, &crate::manifest::Session> = manifest
            .sessions
            .values()
            .map(|s| (self.root.join(&s.worktree), s))
            .collect();
        let ids: Vec<gix::bstr::BString> = repo
            .worktrees()
            .map_err(|e| RepoError::git("list worktrees", common_dir, e))?
            .iter()
            .filter_map(|proxy| proxy.id().ok().map(ToOwned::to_owned))
            .collect();
        self.broken_links = broken_links(repo, &ids, &declared, common_dir);
        // Read as they will be once repaired (the plan's first step), with the ownership
        // entries following them.
        for repair in &self.broken_links {
            if let Some(mut entry) = self.owned.by_path(&repair.from).cloned() {
                self.owned.remove_path(&repair.from);
                entry.path = repair.to.clone();
                self.owned.upsert(entry);
            }
        }
        let found = {
            let (root, owned, repairs) = (&self.root, &self.owned, &self.broken_links);
            let read_one = |repo: &gix::Repository, id: &gix::bstr::BString| match repo
                .worktree_proxy_by_id(gix::bstr::BStr::new(id.as_slice()))
            {
                Ok(Some(proxy)) => {
                    let moved = repairs
                        .iter()
                        .find(|r| id == r.admin_id.as_bytes())
                        .map(|r| r.to.as_path());
                    read_registration(&proxy, moved, root, &declared, manifest, owned)
                }
                _ => Found::Gone,
            };
            in_parallel(repo, &ids, read_one)
        };
        // In the order of the registrations, as one loop over them would.
        for found in found {
            match found {
                Found::Unsafe(problem) => {
                    return Err(RepoError::message(format!(
                        "a worktree registration cannot be read safely: {problem}; git cannot use it either. \
                         Fix or delete that file, or remove the registration (git worktree prune), then run flowloom again"
                    )));
                }
                Found::Gone => {}
                Found::Outside { branch, path, owned } => {
                    if let Some(worktree) = owned {
                        self.elsewhere.insert(path.clone(), *worktree);
                    }
                    if let Some(branch) = branch {
                        self.busy_branches.insert(branch, path);
                    }
                }
                Found::Inside(worktree) => {
                    self.worktrees.insert(worktree.path.clone(), *worktree);
                }
            }
        }
        for path in declared.keys() {
            if self.worktrees.contains_key(path) {
                continue;
            }
            // An empty folder is fine: git (and gix) check out into it; a symlink to
            // one is not (flowloom never writes through a symlink).
            if path.symlink_metadata().is_ok() && !crate::fsutil::is_empty_folder(path) {
                self.occupied.insert(path.clone());
            }
        }
        Ok(())
    }

    /// In-scope local branches (what the default template could have produced, every
    /// declared one, every owned one) and flowloom's archive refs.
    fn read_branches(
        &mut self,
        repo: &gix::Repository,
        manifest: &Manifest,
        common_dir: &Path,
    ) -> Result<(), RepoError> {
        let declared: BTreeSet<&str> = manifest.sessions.values().map(|s| s.branch.as_str()).collect();
        let owned: BTreeSet<&str> = self.owned.sessions.iter().map(|o| o.branch.as_str()).collect();
        let refs = repo
            .references()
            .map_err(|e| RepoError::git("read references", common_dir, e))?;
        let local = refs
            .local_branches()
            .map_err(|e| RepoError::git("read local branches", common_dir, e))?;
        // Branch tips, peeled once per commit: sessions share a few (their bases), and
        // peeling looks the object up to see whether it is a tag.
        let mut peeled_ids: std::collections::HashMap<gix::ObjectId, Option<gix::ObjectId>> = Default::default();
        for mut reference in local.flatten() {
            let full = reference.name().as_bstr().to_str_lossy().into_owned();
            let Some(name) = full.strip_prefix(crate::names::HEADS) else {
                continue;
            };
            let in_scope =
                manifest.defaults.branch.match_id(name).is_some() || declared.contains(name) || owned.contains(name);
            if !in_scope {
                continue;
            }
            let target = reference.target().try_id().map(ToOwned::to_owned);
            let id = match target {
                Some(target) => *peeled_ids
                    .entry(target)
                    .or_insert_with(|| reference.peel_to_id().ok().map(|id| id.detach())),
                None => reference.peel_to_id().ok().map(|id| id.detach()),
            };
            let Some(id) = id else { continue };
            let upstream = upstream_of(repo, reference.name());
            self.branches.insert(
                name.to_owned(),
                Branch {
                    name: name.to_owned(),
                    commit: id.to_string(),
                    upstream,
                    unmerged: None,
                    integrated: None,
                },
            );
        }
        if let Ok(archives) = refs.prefixed(crate::names::ARCHIVE_PREFIX) {
            for mut r in archives.flatten() {
                // A ref that names no commit still takes its name (never reused).
                let id = r.peel_to_id().map(|id| id.to_string()).unwrap_or_default();
                self.archives.insert(r.name().as_bstr().to_str_lossy().into_owned(), id);
            }
        }
        self.archive_in_the_way = archive_in_the_way(repo);
        Ok(())
    }

    /// Answer the planner's expensive questions (`plan::questions`): only where a decision
    /// depends on the answer.
    pub fn answer(&mut self, repo: &gix::Repository, needs: &Needs) -> Result<(), RepoError> {
        for (path, branch) in &needs.stray {
            let stray = crate::read::inspect::stray_files(repo, path, Some(branch));
            if let Some(wt) = self.worktrees.get_mut(path) {
                wt.stray = Some(stray);
            }
        }
        self.answer_dirt(repo, needs);
        self.answer_removal(repo, needs)?;
        let paths: Vec<&Path> = needs
            .removal
            .iter()
            .chain(&needs.moving)
            .map(PathBuf::as_path)
            .collect();
        for (path, found) in crate::read::inspect::processes_inside(&paths) {
            if let Some(wt) = self.worktrees.get_mut(&path).or(self.elsewhere.get_mut(&path)) {
                wt.processes = found;
            }
        }
        if let Some(patterns) = &needs.copy
            && let Some(main) = &self.main_workdir
        {
            let lines = crate::read::copy::pattern_lines(patterns, self.include.as_deref());
            self.ignored = crate::read::inspect::ignored_entries(repo, main, &lines)?;
        }
        for path in &needs.copy_settled {
            let (Some(main), Some(wt)) = (&self.main_workdir, self.worktrees.get_mut(path)) else {
                continue;
            };
            wt.copy_settled = Some(copy_settled(main, path, &self.ignored));
        }
        for commit in &needs.checkout {
            if let Some(why) = crate::read::inspect::checkout_problem(repo, commit) {
                self.checkout_problems.insert(commit.clone(), why);
            }
            let tracked = crate::read::inspect::tracked_session_files(repo, commit);
            if !tracked.is_empty() {
                self.tracked_session_files.insert(commit.clone(), tracked);
            }
        }
        self.answer_unmerged(repo, needs)?;
        Ok(())
    }

    /// Which worktrees have uncommitted changes (a worktree git cannot read is unreadable,
    /// not an error), and whether a switch a kill interrupted can be finished.
    fn answer_dirt(&mut self, repo: &gix::Repository, needs: &Needs) {
        // Owned worktrees outside the root too: an orphan there is removed with every check.
        let to_check: Vec<&Worktree> = needs
            .dirt
            .iter()
            .filter_map(|p| self.worktrees.get(p).or_else(|| self.elsewhere.get(p)))
            .collect();
        let mut lines = self.exclude.lines.clone();
        lines.extend(self.exclude.legacy_lines.iter().cloned());
        let hidden = crate::store::exclude::line_paths(&lines);
        let results = read_dirt_parallel(repo, &to_check, &hidden, false);
        let checked: Vec<PathBuf> = to_check.iter().map(|w| w.path.clone()).collect();
        for (path, dirt) in checked.iter().zip(results) {
            // A worktree git cannot read (a half-made registration, a broken index) is not
            // an error of the whole plan: it blocks what would touch it, with the reason.
            if let Some(wt) = self.worktrees.get_mut(path).or(self.elsewhere.get_mut(path)) {
                match dirt {
                    Ok(dirt) => wt.dirt = Some(dirt),
                    Err(e) => wt.unreadable = Some(e.to_string()),
                }
            }
        }
        // A switch a kill interrupted: can it be finished without losing anything?
        let interrupted: Vec<PathBuf> = self
            .worktrees
            .values()
            .filter(|wt| wt.switching_to.is_some() && wt.dirt.as_ref().is_some_and(|d| !d.is_clean_tracked()))
            .map(|wt| wt.path.clone())
            .collect();
        for path in interrupted {
            let ours = switch_leftovers_are_ours(repo, &self.worktrees[&path]);
            if let Some(wt) = self.worktrees.get_mut(&path) {
                wt.switch_resumable = ours;
            }
        }
    }

    /// What removing each worktree would take with it besides files.
    fn answer_removal(&mut self, repo: &gix::Repository, needs: &Needs) -> Result<(), RepoError> {
        for path in &needs.removal {
            let Some(wt) = self.worktrees.get(path).or_else(|| self.elsewhere.get(path)) else {
                continue;
            };
            // A worktree whose index cannot be read is unreadable, not "with a submodule".
            let (submodule, unreadable) = match crate::read::inspect::populated_submodule(repo, &wt.admin_id, path) {
                Ok(found) => (found, None),
                Err(e) => (None, Some(e.to_string())),
            };
            let unreachable = match &wt.detached {
                Some(head) => Some(crate::read::inspect::unreachable_from_refs(repo, head)?),
                None => None,
            };
            let head = wt.detached.clone().or_else(|| {
                let branch = wt.branch.as_ref()?;
                let mut r = repo
                    .try_find_reference(crate::names::branch_ref(branch).as_str())
                    .ok()??;
                r.peel_to_id().ok().map(|id| id.to_string())
            });
            let foreign_git =
                crate::read::inspect::backlink_problem(path, &repo.common_dir().join("worktrees").join(&wt.admin_id));
            let nested = crate::read::inspect::unpushed_nested_repositories(path);
            if let Some(wt) = self.worktrees.get_mut(path).or(self.elsewhere.get_mut(path)) {
                if let Some(why) = unreadable {
                    wt.dirt = None;
                    wt.unreadable = Some(why);
                }
                wt.head = head;
                wt.foreign_git = foreign_git;
                wt.nested = nested;
                wt.submodule = submodule;
                wt.unreachable = unreachable;
            }
        }
        Ok(())
    }

    /// Each branch's commits its base and upstream do not reach, and whether one of them
    /// integrated the commits another way.
    fn answer_unmerged(&mut self, repo: &gix::Repository, needs: &Needs) -> Result<(), RepoError> {
        for (branch, base) in &needs.unmerged {
            let base = self.bases.get(base).and_then(|b| b.as_ref().ok()).cloned();
            if let Some(b) = self.branches.get_mut(branch) {
                let tip = gix::ObjectId::from_hex(b.commit.as_bytes())
                    .map_err(|_| RepoError::message(format!("bad object id {}", b.commit)))?;
                let targets = merge_targets(b, base.as_deref());
                let unmerged = crate::read::inspect::unmerged(repo, &b.name, tip, targets.clone())?;
                b.unmerged = Some(unmerged);
                if unmerged > 0 {
                    b.integrated = crate::read::inspect::integration(repo, tip, &targets);
                }
            }
        }
        Ok(())
    }
}

/// The planner's questions to the reader: which worktrees need a dirty check, a removal
/// check (submodules, processes, detached commits) or a half-made checkout's stray files,
/// and which branches a merge check (against which base).
#[derive(Debug, Default)]
pub struct Needs {
    pub dirt: BTreeSet<PathBuf>,
    pub removal: BTreeSet<PathBuf>,
    pub stray: BTreeMap<PathBuf, String>,
    pub unmerged: BTreeMap<String, String>,
    /// Commits a checkout would write: can they be written as git would?
    pub checkout: BTreeSet<String>,
    /// A creation copies ignored files: which ones does the main worktree have? The `copy`
    /// patterns of every creation (`.worktreeinclude` is read anyway).
    pub copy: Option<Vec<String>>,
    /// Sessions in place whose copy may lack entries: which ignored entries need no copy?
    pub copy_settled: BTreeSet<PathBuf>,
    /// Worktrees a move would rename: which processes use them?
    pub moving: BTreeSet<PathBuf>,
}

/// The file system `path` is on, or its nearest existing folder above (a root not made yet
/// is made there). In debug builds `FLOWLOOM_TEST_OTHER_DEVICE` makes it another one, so
/// that tests can move across file systems on one.
fn device_of(path: &Path) -> Option<u64> {
    let found = path
        .ancestors()
        .find_map(|p| std::fs::symlink_metadata(p).ok())
        .map(|m| std::os::unix::fs::MetadataExt::dev(&m));
    #[cfg(debug_assertions)]
    if std::env::var_os("FLOWLOOM_TEST_OTHER_DEVICE").is_some() {
        return found.map(|d| d ^ 1);
    }
    found
}

/// The ignored entries of `main` that need no copy into `worktree`: it has something at
/// that path (never replaced), or the entry is nothing copy copies (not a file, folder or
/// symlink; a `.git`), or git tracks a file there in the session.
fn copy_settled(main: &Path, worktree: &Path, ignored: &[crate::read::copy::Ignored]) -> BTreeSet<String> {
    let tracks = std::cell::OnceCell::new();
    ignored
        .iter()
        .filter(|entry| {
            let rel = Path::new(&entry.path);
            let copyable = rel.file_name().is_some_and(|n| n != ".git")
                && std::fs::symlink_metadata(main.join(rel)).is_ok_and(|m| {
                    let t = m.file_type();
                    t.is_file() || t.is_dir() || t.is_symlink()
                });
            // SPEC §10: a copy never writes what git tracks in the session (a tracked file
            // the agent deleted stays deleted).
            !copyable
                || std::fs::symlink_metadata(worktree.join(rel)).is_ok()
                || tracks
                    .get_or_init(|| crate::store::tracked::SessionTracks::read(worktree))
                    .tracks(&entry.path)
        })
        .map(|entry| entry.path.clone())
        .collect()
}

/// What one registration is, as `State::read_worktrees` sorts them.
enum Found {
    /// One of its administration files cannot be read safely.
    Unsafe(String),
    /// Gone, or its worktree path unreadable: skipped.
    Gone,
    /// Outside the root: only its branch counts (not available to new sessions).
    Outside {
        branch: Option<String>,
        path: PathBuf,
        /// Read when flowloom owns it: a changed root moves it.
        owned: Option<Box<Worktree>>,
    },
    Inside(Box<Worktree>),
}

/// Read one registration: what a plan needs of it, cheaply (`Worktree::read`).
/// The registrations whose links a moved folder broke ([`crate::read::links`]), looked for
/// at the declared sessions' paths.
fn broken_links(
    repo: &gix::Repository,
    ids: &[gix::bstr::BString],
    declared: &BTreeMap<PathBuf, &crate::manifest::Session>,
    common_dir: &Path,
) -> Vec<crate::read::links::LinkRepair> {
    let candidates: Vec<&Path> = declared.keys().map(PathBuf::as_path).collect();
    ids.iter()
        .filter_map(|id| {
            let proxy = repo.worktree_proxy_by_id(gix::bstr::BStr::new(id.as_slice())).ok()??;
            let registered = normalise(&proxy.base().ok()?);
            crate::read::links::repair_for(common_dir, &id.to_str_lossy(), &registered, &candidates)
        })
        .collect()
}

/// `moved`: where the worktree is, when its registration names an old place (the links
/// are repaired before anything else is done).
fn read_registration(
    proxy: &gix::worktree::Proxy<'_>,
    moved: Option<&Path>,
    root: &Path,
    declared: &BTreeMap<PathBuf, &crate::manifest::Session>,
    manifest: &Manifest,
    owned: &Record,
) -> Found {
    if let Some(problem) = crate::read::inspect::admin_problem(proxy.git_dir()) {
        return Found::Unsafe(problem);
    }
    let Some(base) = moved.map(Path::to_owned).or_else(|| proxy.base().ok()) else {
        return Found::Gone;
    };
    let missing = !base.exists();
    let path = if missing { normalise(&base) } else { canonical(&base) };
    // Read once: its branch, or the commit it is detached at.
    let head = crate::read::inspect::read_small(&proxy.git_dir().join("HEAD"));
    let branch = head.as_deref().and_then(branch_in);
    // A copy's registration naming the original's worktree: its branch counts, the worktree
    // is never this repository's to move, repair or remove.
    if !missing && crate::read::links::belongs_elsewhere(&path, proxy.git_dir()) {
        return Found::Outside {
            branch,
            path,
            owned: None,
        };
    }
    if !path.starts_with(root) || path == root {
        // A branch being rebased there is as taken as one checked out.
        let branch = branch.or_else(|| {
            crate::read::inspect::rebasing(proxy.git_dir())
                .and_then(|full| full.strip_prefix("refs/heads/").map(str::to_owned))
        });
        // Owned there, or (git keeps a registration's name) an owned session's worktree that
        // `git worktree move` took there: the plan decides which.
        let name: &[u8] = proxy.id().map(|id| id.as_ref()).unwrap_or_default();
        let moved = || {
            owned
                .sessions
                .iter()
                .find(|o| o.path.file_name().is_some_and(|f| f.as_encoded_bytes() == name))
        };
        let owned = owned.by_path(&path).or_else(moved).map(|o| {
            let detached = head
                .as_deref()
                .filter(|_| !missing)
                .and_then(crate::read::inspect::detached_in);
            Box::new(Worktree::read(
                proxy,
                path.clone(),
                branch.clone(),
                detached,
                missing,
                Some(o.id.clone()),
            ))
        });
        return Found::Outside { branch, path, owned };
    }
    let session_id = match declared.get(&path) {
        Some(s) => Some(s.id.clone()),
        None if missing => None,
        None => {
            let folder = path.file_name().map(|f| f.to_string_lossy().into_owned());
            infer_session_id(&path, manifest, branch.as_deref(), folder.as_deref())
        }
    }
    .or_else(|| owned.by_path(&path).map(|o| o.id.clone()));
    let detached = head
        .as_deref()
        .filter(|_| !missing)
        .and_then(crate::read::inspect::detached_in);
    Found::Inside(Box::new(Worktree::read(
        proxy, path, branch, detached, missing, session_id,
    )))
}

/// `read` of every item, in their order, spread over the available cores once there are
/// enough to be worth the threads (each thread with its own handle of `repo`). Reading a
/// thousand registrations is some 70,000 small system calls.
fn in_parallel<T: Sync, R: Send>(
    repo: &gix::Repository,
    items: &[T],
    read: impl Fn(&gix::Repository, &T) -> R + Sync,
) -> Vec<R> {
    const MIN_PER_THREAD: usize = 64;
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .min(items.len() / MIN_PER_THREAD);
    if threads <= 1 {
        return items.iter().map(|item| read(repo, item)).collect();
    }
    let shared = repo.clone().into_sync();
    let chunk = items.len().div_ceil(threads);
    let (mine, rest) = items.split_at(chunk);
    std::thread::scope(|scope| {
        let (shared, read) = (&shared, &read);
        // The first chunk on this thread: one thread and one allocator arena fewer (what a
        // thread reads stays in its arena for as long as the state lives).
        let handles: Vec<_> = rest
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let repo = shared.to_thread_local();
                    part.iter().map(|item| read(&repo, item)).collect::<Vec<R>>()
                })
            })
            .collect();
        let first: Vec<R> = mine.iter().map(|item| read(repo, item)).collect();
        first
            .into_iter()
            .chain(handles.into_iter().flat_map(|h| match h.join() {
                Ok(done) => done,
                Err(panic) => std::panic::resume_unwind(panic),
            }))
            .collect()
    })
}

/// SPEC §2, §8: the root is checked on the real path, before anything is written; the
/// canonical root when it may be used. No folder on the way from the manifest's folder to
/// it may be a symlink (a leading `..` leaves the manifest's folder, which is canonical,
/// for its real parent). The root may not lie inside a git directory, hold the main
/// worktree (or be it), nor lie in a git work tree other than the main worktree: not in
/// another repository, not in another worktree of this one, whose `git status` would then
/// list the sessions. Above the main worktree's own folder nothing is looked at: a root
/// beside the repository shares the surroundings the repository already has.
pub fn check_root(repo: &gix::Repository, manifest: &Manifest) -> Result<PathBuf, RepoError> {
    check_root_beside(repo, manifest, main_workdir(repo).as_deref())
}

/// SPEC §11.4: a declared session's worktree folder as every command that uses it (`run`,
/// `path` and so `cd`, `setup`) finds it: the root checked as `plan` checks it, then the
/// session's own folder, which may be missing (not made yet) but never a symlink or
/// anything but a folder. The path returned lies in the canonical root.
pub fn session_path(
    repo: &gix::Repository,
    manifest: &Manifest,
    worktree: impl AsRef<Path>,
) -> Result<PathBuf, RepoError> {
    let path = check_root(repo, manifest)?.join(worktree);
    let why = match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_symlink() => "it is a symlink",
        Ok(m) if !m.is_dir() => "it is not a folder",
        Ok(_) => {
            return match foreign_folder(repo.common_dir(), &path) {
                None => Ok(path),
                Some(why) => Err(RepoError::ForeignSessionFolder { path, why }),
            };
        }
        Err(_) => return Ok(path),
    };
    Err(RepoError::UnsafeSession { path, why: why.into() })
}

/// Why the existing folder `path` is not a linked worktree of the repository whose common
/// dir is `common_dir`, as git would find it from inside: its `.git` must be a file naming
/// a registration under `<common dir>/worktrees/`, whose `gitdir` names this folder back
/// (a copy of a session's folder names the original's registration; another repository's
/// worktree or clone, or a plain folder, names none of ours). `None` when it is one.
fn foreign_folder(common_dir: &Path, path: &Path) -> Option<String> {
    let dot_git = path.join(".git");
    let text = match std::fs::symlink_metadata(&dot_git) {
        Err(_) => return Some("it holds no `.git`: it is not a worktree of this repository".into()),
        Ok(m) if m.is_dir() => return Some("it is a git repository of its own (its `.git` is a folder)".into()),
        Ok(m) if !m.is_file() => return Some("its `.git` is not a file".into()),
        Ok(_) => crate::read::inspect::read_small(&dot_git).and_then(|t| String::from_utf8(t).ok()),
    };
    let registration = text
        .as_deref()
        .and_then(|t| t.strip_prefix("gitdir:"))
        .map(|t| canonical(&path.join(t.trim())));
    let worktrees = canonical(&common_dir.join("worktrees"));
    let Some(registration) = registration.filter(|r| r.parent() == Some(worktrees.as_path())) else {
        return Some(
            "its `.git` names no registration of this repository: it is another repository's worktree, or no worktree"
                .into(),
        );
    };
    let back = crate::read::inspect::read_small(&registration.join("gitdir"))
        .and_then(|t| String::from_utf8(t).ok())
        .map(|t| canonical(&registration.join(t.trim_end_matches(['\n', '\r']))));
    if back.as_deref() != Some(canonical(&dot_git).as_path()) {
        return Some(format!(
            "its `.git` names the registration {}, which belongs to another folder (a copy of a session?)",
            registration.display()
        ));
    }
    None
}

/// The main worktree, canonical; `None` in a bare repository. Opens no second repository
/// when `repo` is the main one.
pub fn main_workdir(repo: &gix::Repository) -> Option<PathBuf> {
    if repo.git_dir() == repo.common_dir() {
        return repo.workdir().map(canonical);
    }
    repo.main_repo().ok().and_then(|r| r.workdir().map(canonical))
}

/// SPEC §11.4: why a folder on the way from the manifest's folder to the root (of those
/// that exist) cannot be used, when one is a symlink or a file.
fn symlink_on_the_way(manifest: &Manifest) -> Option<String> {
    use std::path::Component;
    let mut at = manifest.dir.clone();
    for part in manifest.root_rel().components() {
        match part {
            Component::ParentDir => {
                at.pop();
            }
            Component::Normal(name) => {
                at.push(name);
                match std::fs::symlink_metadata(&at) {
                    Ok(m) if m.file_type().is_symlink() => return Some(format!("{} is a symlink", at.display())),
                    Ok(m) if !m.is_dir() => return Some(format!("{} is not a folder", at.display())),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            _ => {}
        }
    }
    None
}

/// [`check_root`] with the main worktree already known.
fn check_root_beside(repo: &gix::Repository, manifest: &Manifest, main: Option<&Path>) -> Result<PathBuf, RepoError> {
    let unsafe_root = |why: String| RepoError::UnsafeRoot {
        path: manifest.root_dir(),
        why,
    };
    if manifest.root_uses_repo() && manifest.repo.is_empty() {
        return Err(unsafe_root(
            "`{repo}` stands for the main worktree's folder name, and this one has none (the filesystem root)".into(),
        ));
    }
    if let Some(why) = symlink_on_the_way(manifest) {
        return Err(unsafe_root(why));
    }
    let root = canonical(&manifest.root_dir());
    let common_dir = canonical(repo.common_dir());
    for git in [&common_dir, &canonical(repo.git_dir())] {
        if root.starts_with(git) {
            return Err(unsafe_root(format!(
                "it lies inside the git directory {}",
                git.display()
            )));
        }
    }
    if root.components().any(|c| c.as_os_str().eq_ignore_ascii_case(".git")) {
        return Err(unsafe_root("it lies inside a `.git` folder".into()));
    }
    // The main worktree; in a bare repository, the manifest's folder stands for it.
    let main = main.map_or_else(|| canonical(&manifest.dir), Path::to_owned);
    if main.starts_with(&root) {
        return Err(unsafe_root(if main == root {
            format!("it is the main worktree {} itself", main.display())
        } else {
            format!("it holds the main worktree {}", main.display())
        }));
    }
    let worktrees = common_dir.join("worktrees");
    let mut folder = Some(root.as_path());
    while let Some(dir) = folder.filter(|d| !main.starts_with(d)) {
        folder = dir.parent();
        let where_ = if dir == root {
            "it is".to_owned()
        } else {
            format!("it lies inside {}, which is", dir.display())
        };
        let dot_git = dir.join(".git");
        match std::fs::symlink_metadata(&dot_git) {
            Ok(m) => {
                // A linked worktree's `.git` file names its registration.
                let registration = m
                    .is_file()
                    .then(|| crate::read::inspect::read_small(&dot_git))
                    .flatten()
                    .and_then(|text| {
                        let text = String::from_utf8(text).ok()?;
                        let linked = text.trim().strip_prefix("gitdir:")?.trim().to_owned();
                        Some(canonical(&dir.join(linked)))
                    });
                let what = if registration.is_some_and(|r| r.starts_with(&worktrees)) {
                    "a worktree of this repository".to_owned()
                } else {
                    "the work tree of another git repository".to_owned()
                };
                return Err(unsafe_root(format!(
                    "{where_} {what} (it holds `.git`): its `git status` would list every session"
                )));
            }
            Err(_) if dir.join("HEAD").exists() && gix::discover::is_git(dir).is_ok() => {
                return Err(unsafe_root(format!("{where_} a git directory")));
            }
            Err(_) => {}
        }
    }
    Ok(root)
}

/// The short branch name a `HEAD` file points at; `None` when detached or unreadable.
fn head_branch(head_file: &Path) -> Option<String> {
    branch_in(&crate::read::inspect::read_small(head_file)?)
}

/// The branch a `HEAD` file's `content` is on.
pub(crate) fn branch_in(content: &[u8]) -> Option<String> {
    let target = content.trim().strip_prefix(b"ref: ")?;
    let name = target.strip_prefix(crate::names::HEADS.as_bytes())?;
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
    if let Ok(entries) = std::fs::read_dir(path.join(crate::names::SESSIONS)) {
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

/// The object id a reference points at, peeled.
fn peeled(repo: &gix::Repository, full: &str) -> Option<String> {
    // A full name, looked up as it is: a `&str` is a partial name, tried under every
    // prefix git's rules allow (five files per missing ref, for every session).
    let full: gix::refs::FullName = full.try_into().ok()?;
    let mut r = repo.try_find_reference(full.as_ref()).ok()??;
    r.peel_to_id().ok().map(|id| id.to_string())
}

pub(crate) fn upstream_of(repo: &gix::Repository, name: &gix::refs::FullNameRef) -> Option<(String, Option<String>)> {
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

/// A session's base as `git worktree add -b <branch> <path> <base>` takes it: a name that
/// expands to more than one ref (a tag and a branch, say) is refused as git refuses it
/// (`fatal: ambiguous object name`), anything else resolved to its commit.
fn resolve_base(repo: &gix::Repository, spec: &str) -> Result<String, BaseFailure> {
    let named = crate::read::tracking::expand_branch_marks(repo, spec);
    let refs = crate::read::tracking::refs_named(repo, named.as_deref().unwrap_or(spec));
    if refs.len() > 1 {
        return Err(BaseFailure::Ambiguous { refs });
    }
    // A branch whose name is a whole object id: `git branch` starts from the branch (its
    // `dwim_ref`), where a plain revision reads the name as the id.
    let full_id = spec.len() == repo.object_hash().len_in_hex() && spec.bytes().all(|b| b.is_ascii_hexdigit());
    let spec = match refs.as_slice() {
        [only] if full_id => only.as_str(),
        _ => spec,
    };
    repo.rev_parse_single(crate::names::commit_spec(spec).as_str())
        .map(|id| id.to_string())
        .map_err(|e| BaseFailure::NotFound {
            reason: crate::error::chain(&e),
            alternates_env: crate::error::alternates_env_hint().is_some(),
        })
}

/// Why a base does not resolve to a commit; the planner blocks the session on it and the
/// renderer words it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BaseFailure {
    /// The name expands to more than one ref (a tag and a branch, say): git refuses it
    /// too (`fatal: ambiguous object name`).
    Ambiguous { refs: Vec<String> },
    /// No commit by that name: gitoxide's reason, and whether objects may be where
    /// gitoxide cannot read them (`GIT_ALTERNATE_OBJECT_DIRECTORIES` is set).
    NotFound { reason: String, alternates_env: bool },
    /// `branch.autoSetupMerge` holds a value git refuses, so no branch is made from any base.
    BadAutoSetupMerge { value: String },
    /// The base is a ref the fetch refspecs of more than one remote write: git cannot pick
    /// the new branch's upstream and refuses (`not tracking: ambiguous information for ref`).
    AmbiguousUpstream { reference: String, remotes: Vec<String> },
}

/// What a branch's work is checked against (SPEC §7): its base's commit and its upstream's.
fn merge_targets(branch: &Branch, base: Option<&str>) -> Vec<gix::ObjectId> {
    let oid = |hex: &str| gix::ObjectId::from_hex(hex.as_bytes()).ok();
    base.and_then(oid)
        .into_iter()
        .chain(branch.upstream.as_ref().and_then(|(_, c)| c.as_deref()).and_then(oid))
        .collect()
}

/// Dirty checks, one per worktree, spread over the available cores: each is a full
/// `git status` (index against tree, worktree against index, untracked files), and they
/// are independent. This thread takes one share itself: one thread fewer, and one
/// allocator arena fewer (each thread's arena keeps the peak of what it allocated).
pub(crate) fn read_dirt_parallel(
    repo: &gix::Repository,
    worktrees: &[&Worktree],
    hidden_roots: &[PathBuf],
    refresh: bool,
) -> Vec<Result<Dirt, RepoError>> {
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, worktrees.len().max(1));
    // Every `threads`-th worktree from `first`, with a panic caught: its slots stay empty.
    let share = |first: usize, repo: &gix::Repository| {
        let objects = Objects::of(repo);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            (first..worktrees.len())
                .step_by(threads)
                .map(|i| (i, read_dirt(&objects, repo, worktrees[i], hidden_roots, refresh)))
                .collect::<Vec<_>>()
        }))
        .unwrap_or_default()
    };
    let shared = (threads > 1).then(|| repo.clone().into_sync());
    let mut results: Vec<Option<Result<Dirt, RepoError>>> = (0..worktrees.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads)
            .filter_map(|t| {
                let shared = shared.as_ref()?;
                Some(scope.spawn(move || share(t, &shared.to_thread_local())))
            })
            .collect();
        let mine = share(0, repo);
        for done in std::iter::once(mine).chain(handles.into_iter().filter_map(|h| h.join().ok())) {
            for (i, result) in done {
                results[i] = Some(result);
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

/// The dirty check of one worktree (`inspect::dirt`).
pub(crate) fn read_dirt(
    objects: &Objects,
    repo: &gix::Repository,
    wt: &Worktree,
    hidden_roots: &[PathBuf],
    refresh: bool,
) -> Result<Dirt, RepoError> {
    crate::read::inspect::dirt_with(
        objects,
        repo,
        &wt.admin_id,
        &wt.path,
        wt.session_id.as_deref(),
        hidden_roots,
        refresh,
    )
}

/// Whether every change in a worktree whose switch to `switching_to` was interrupted is one
/// that switch makes: a modified or new file holds the target branch's content or a prefix
/// of it (a write the kill cut short), a staged entry is the target's, and deletions are
/// what the switch deletes or has yet to write. Anything else is someone's work.
fn switch_leftovers_are_ours(repo: &gix::Repository, wt: &Worktree) -> bool {
    let (Some(to), Some(dirt)) = (&wt.switching_to, &wt.dirt) else {
        return false;
    };
    let Some(blobs) = crate::read::inspect::tree_blobs(repo, to) else {
        return false;
    };
    let content_is_ours = |rel: &String| crate::read::inspect::is_from_tree(repo, &blobs, &wt.path, rel);
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

/// SPEC §11.4: the first of the folders of the archive refs that is a ref itself (or a
/// file in the ref store that git cannot read as one): no archive fits below it.
fn archive_in_the_way(repo: &gix::Repository) -> Option<String> {
    let prefix = crate::names::ARCHIVE_PREFIX.trim_end_matches('/');
    let mut at = 0;
    let mut folders = Vec::new();
    while let Some(i) = prefix.get(at..).and_then(|rest| rest.find('/')).map(|i| at + i) {
        folders.push(&prefix[..i]);
        at = i + 1;
    }
    folders.push(prefix);
    folders
        .into_iter()
        .filter(|name| *name != "refs")
        .find(|name| {
            let loose = repo.common_dir().join(name);
            !matches!(repo.try_find_reference(*name), Ok(None))
                || std::fs::symlink_metadata(loose).is_ok_and(|m| !m.is_dir())
        })
        .map(str::to_owned)
}
