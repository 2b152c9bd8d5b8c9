//! Questions about one worktree's contents, asked by the reader while planning and asked
//! again by apply, under the lock, right before it deletes anything (SPEC §7): what would
//! be lost (git status plus the files flowloom's own excludes hide), initialized
//! submodules, processes working inside, commits only a detached `HEAD` holds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use gix::bstr::ByteSlice;

use crate::error::RepoError;
use crate::read::worktree_status::Objects;

pub use crate::fsutil::read_small;

/// Why a worktree's administration folder cannot be read safely, if it cannot: one of the
/// files git keeps there is a symlink or not a regular file (a FIFO would hang every read).
pub fn admin_problem(admin_dir: &Path) -> Option<String> {
    for name in [
        "HEAD",
        "gitdir",
        "commondir",
        "index",
        "locked",
        crate::names::SWITCH_MARKER,
    ] {
        let file = admin_dir.join(name);
        match std::fs::symlink_metadata(&file) {
            Ok(m) if m.is_file() => {}
            Ok(m) => {
                let kind = if m.file_type().is_symlink() {
                    "a symlink"
                } else {
                    "not a regular file"
                };
                return Some(format!("{} is {kind}", file.display()));
            }
            Err(_) => {}
        }
    }
    None
}

/// Work that removing a worktree would lose: paths relative to the worktree.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Dirt {
    pub modified: Vec<String>,
    pub staged: Vec<String>,
    pub deleted: Vec<String>,
    pub untracked: Vec<String>,
    /// Untracked files under `sessions/` other than the session's own `metadata.json`
    /// (artifacts, notes): `info/exclude` hides session folders from git status, so they
    /// are listed here whether or not anything ignores them.
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

/// Open the linked worktree registered under `admin_id`, sharing `repo`'s object database.
pub fn open_worktree(repo: &gix::Repository, admin_id: &str, path: &Path) -> Result<gix::Repository, RepoError> {
    let mut wt_repo = open_linked(repo, admin_id, path)?;
    // Worktrees share the common dir's object database: use the one already open instead
    // of mapping its packs again for every worktree.
    wt_repo.objects = repo.objects.clone();
    Ok(wt_repo)
}

/// Open the linked worktree registered under `admin_id`, with the object database handle
/// its opening made (a status walk reads objects through its thread's [`Objects`]: a
/// handle cloned from `repo` would be one more inflate state per worktree).
fn open_linked(repo: &gix::Repository, admin_id: &str, path: &Path) -> Result<gix::Repository, RepoError> {
    let proxy = repo
        .worktree_proxy_by_id(admin_id.as_bytes().as_bstr())
        .map_err(|e| RepoError::git("find worktree", path, e))?
        .ok_or_else(|| RepoError::message(format!("worktree {} is not registered", path.display())))?;
    let mut wt_repo = proxy
        .into_repo()
        .map_err(|e| RepoError::git("open worktree", path, e))?;
    if crate::error::alternates_env_is_read() {
        // Its own opening reads no `GIT_ALTERNATE_OBJECT_DIRECTORIES`: `repo`'s store does.
        wt_repo.objects = repo.objects.clone();
    }
    Ok(wt_repo)
}

/// Count what removing this worktree would lose: `git status` in it, plus every untracked
/// file under its `sessions/` folder (which flowloom's excludes hide from git status),
/// but the session's own `metadata.json`. `for_status`: report as `git status` would (the
/// metadata file counts when git shows it) and write refreshed stats back to the index as
/// `git status` does; for a removal, neither (flowloom's own file is not work, and a person
/// may need the worktree's `index.lock`).
pub fn dirt(
    repo: &gix::Repository,
    admin_id: &str,
    path: &Path,
    session_id: Option<&str>,
    hidden_roots: &[PathBuf],
    for_status: bool,
) -> Result<Dirt, RepoError> {
    dirt_with(
        &Objects::of(repo),
        repo,
        admin_id,
        path,
        session_id,
        hidden_roots,
        for_status,
    )
}

/// [`dirt`], the walks reading objects through `objects` (one per thread for many worktrees).
pub fn dirt_with(
    objects: &Objects,
    repo: &gix::Repository,
    admin_id: &str,
    path: &Path,
    session_id: Option<&str>,
    hidden_roots: &[PathBuf],
    for_status: bool,
) -> Result<Dirt, RepoError> {
    let wt_repo = open_linked(repo, admin_id, path)?;
    let (mut dirt, stats) = crate::read::worktree_status::status_of(&wt_repo, path, objects)?;
    // The session's own metadata file is flowloom's, never work (git status shows it when
    // no exclude hides it).
    let own_metadata = session_id.map(|id| crate::names::metadata_file(id).to_string_lossy().into_owned());
    if !for_status {
        dirt.untracked.retain(|f| Some(f) != own_metadata.as_ref());
    }
    // Everything under `sessions/` and under every folder flowloom's excludes name that
    // the index does not track: git status cannot be trusted to show it, since flowloom's
    // own excludes hide those folders in every worktree.
    let mut hidden = Vec::new();
    let mut roots: Vec<&Path> = vec![Path::new(crate::names::SESSIONS)];
    roots.extend(
        hidden_roots
            .iter()
            .map(PathBuf::as_path)
            .filter(|r| !r.starts_with(crate::names::SESSIONS)),
    );
    for root in roots {
        list_files(path, root, &mut hidden);
    }
    if !hidden.is_empty() {
        let index = wt_repo
            .index_or_empty()
            .map_err(|e| RepoError::git("read the index of", path, e))?;
        let untracked: BTreeSet<&String> = dirt.untracked.iter().collect();
        dirt.session_files = hidden
            .into_iter()
            .filter(|f| Some(f) != own_metadata.as_ref())
            .filter(|f| !untracked.contains(f))
            .filter(|f| index.entry_by_path(f.as_str().into()).is_none())
            .collect();
        dirt.session_files.sort();
        dirt.session_files.dedup();
    }
    if for_status {
        crate::read::worktree_status::refresh_index(&wt_repo, stats);
    }
    Ok(dirt)
}

/// The `git status` of an opened worktree, by kind (no hidden session files); with
/// `refresh`, the re-checked stats written back to its index as `git status` does.
pub fn status_dirt(wt_repo: &gix::Repository, path: &Path, refresh: bool) -> Result<Dirt, RepoError> {
    let (dirt, stats) = crate::read::worktree_status::status_of(wt_repo, path, &Objects::of(wt_repo))?;
    if refresh {
        crate::read::worktree_status::refresh_index(wt_repo, stats);
    }
    Ok(dirt)
}

/// Whether the worktree holds an initialized submodule, as `git worktree remove` judges
/// it: a `modules/` folder in its administration folder, or a gitlink entry whose folder
/// has a `.git`. Its repository would be deleted with the worktree.
pub fn populated_submodule(repo: &gix::Repository, admin_id: &str, path: &Path) -> Result<Option<String>, RepoError> {
    let wt_repo = open_worktree(repo, admin_id, path)?;
    let modules = wt_repo.git_dir().join("modules");
    if std::fs::read_dir(&modules).is_ok_and(|mut d| d.next().is_some()) {
        return Ok(Some(format!("{}", modules.display())));
    }
    let index = wt_repo
        .index_or_empty()
        .map_err(|e| RepoError::git("read the index of", path, e))?;
    for entry in index.entries() {
        if entry.mode != gix::index::entry::Mode::COMMIT {
            continue;
        }
        let rel = entry.path(&index).to_str_lossy().into_owned();
        if path.join(&rel).join(".git").symlink_metadata().is_ok() {
            return Ok(Some(rel));
        }
    }
    Ok(None)
}

/// A process that works inside a worktree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Process {
    pub pid: u32,
    pub name: String,
    /// `cwd`, or the open file's path.
    pub uses: String,
}

/// Processes (other than this one) whose working directory or an open file lies inside
/// one of `paths`, from `/proc`; one scan for all of them. Empty where `/proc` is absent.
pub fn processes_inside(paths: &[&Path]) -> BTreeMap<PathBuf, Vec<Process>> {
    let mut found: BTreeMap<PathBuf, Vec<Process>> = BTreeMap::new();
    if paths.is_empty() {
        return found;
    }
    let me = std::process::id();
    let wanted: std::collections::HashSet<&Path> = paths.iter().copied().collect();
    let shell = invoking_shell();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || Some(pid) == shell {
            continue;
        }
        let dir = entry.path();
        let mut targets: Vec<(String, PathBuf)> = Vec::new();
        if let Ok(cwd) = std::fs::read_link(dir.join("cwd")) {
            targets.push(("cwd".to_owned(), cwd));
        }
        if let Ok(fds) = std::fs::read_dir(dir.join("fd")) {
            for fd in fds.flatten() {
                if let Ok(target) = std::fs::read_link(fd.path()) {
                    targets.push((target.to_string_lossy().into_owned(), target));
                }
            }
        }
        for (uses, target) in targets {
            // A look-up per folder above the target, not a comparison per worktree.
            let Some(path) = target.ancestors().find_map(|a| wanted.get(a)) else {
                continue;
            };
            let list = found.entry(path.to_path_buf()).or_default();
            if list.iter().any(|p| p.pid == pid) {
                continue;
            }
            let name = std::fs::read_to_string(dir.join("comm"))
                .map(|n| n.trim().to_owned())
                .unwrap_or_default();
            list.push(Process { pid, name, uses });
        }
    }
    found
}

/// The shell that runs flowloom through the function of `shell-init`, which moves that
/// shell out of a session it removes (SPEC §11.2): its pid in `FLOWLOOM_SHELL_PID`, counted
/// only when it is this process's parent, so that no other process can be waved through.
pub fn invoking_shell() -> Option<u32> {
    let pid: u32 = std::env::var("FLOWLOOM_SHELL_PID").ok()?.trim().parse().ok()?;
    (pid == std::os::unix::process::parent_id()).then_some(pid)
}

/// How many commits `head` reaches that no local branch and no tag reaches: what a
/// detached `HEAD` alone keeps alive.
pub fn unreachable_from_refs(repo: &gix::Repository, head: &str) -> Result<usize, RepoError> {
    let oid =
        gix::ObjectId::from_hex(head.as_bytes()).map_err(|e| RepoError::git("parse object id", Path::new(head), e))?;
    let refs = repo
        .references()
        .map_err(|e| RepoError::git("read references of", repo.common_dir(), e))?;
    let mut tips = Vec::new();
    for prefix in [crate::names::HEADS, "refs/tags/"] {
        if let Ok(iter) = refs.prefixed(prefix) {
            for mut r in iter.flatten() {
                if let Ok(id) = r.peel_to_id() {
                    tips.push(id.detach());
                }
            }
        }
    }
    unmerged(repo, head, oid, tips)
}

/// The commit a detached `HEAD` file names; `None` when on a branch or unreadable.
pub fn detached_head(admin_dir: &Path) -> Option<String> {
    detached_in(&read_small(&admin_dir.join("HEAD"))?)
}

/// The commit a `HEAD` file's `content` names, when detached.
pub fn detached_in(content: &[u8]) -> Option<String> {
    let text = content.trim().to_str().ok()?;
    (!text.starts_with("ref:") && gix::ObjectId::from_hex(text.as_bytes()).is_ok()).then(|| text.to_owned())
}

/// Path → blob id of every file of `branch`'s tree.
pub fn tree_blobs(repo: &gix::Repository, branch: &str) -> Option<std::collections::HashMap<String, gix::ObjectId>> {
    let tree = repo
        .find_reference(crate::names::branch_ref(branch).as_str())
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
pub fn stray_files(repo: &gix::Repository, worktree: &Path, branch: Option<&str>) -> Vec<String> {
    let Some(blobs) = branch.and_then(|b| tree_blobs(repo, b)) else {
        return vec!["(the branch's tree could not be read)".to_owned()];
    };
    let mut found = Vec::new();
    list_files(worktree, Path::new(""), &mut found);
    found
        .into_iter()
        .filter(|f| f != ".git" && !is_from_tree(repo, &blobs, worktree, f))
        .collect()
}

/// Whether the file at `rel` holds what the tree has there, or a prefix of it.
pub fn is_from_tree(
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
        Ok(m) if m.file_type().is_file() => std::fs::read(&file).ok(),
        _ => None,
    };
    on_disk.is_some_and(|bytes| repo.find_object(*id).is_ok_and(|blob| blob.data.starts_with(&bytes)))
}

/// Files (and symlinks, and special files) below `base/rel`, recursively, as paths relative
/// to `base`; symlinks to folders are listed, not followed.
pub fn list_files(base: &Path, rel: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(base.join(rel)) else {
        return;
    };
    for entry in entries.flatten() {
        let child = rel.join(entry.file_name());
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => list_files(base, &child, out),
            _ => out.push(child.to_string_lossy().into_owned()),
        }
    }
}

pub use crate::fsutil::stamps::Stamps;

/// Whether `path` is where a removal of the worktree at `worktree` moves it: a real folder
/// (never a symlink) named after the worktree (`<name>` or `<name>-N`), in a real
/// `.flowloom-trash` folder beside it. The only shape of folder flowloom deletes as trash.
pub fn is_trash_of(path: &Path, worktree: &Path) -> bool {
    let real_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
    let (Some(trash), Some(root), Some(name), Some(folder)) =
        (path.parent(), worktree.parent(), path.file_name(), worktree.file_name())
    else {
        return false;
    };
    let (name, folder) = (name.to_string_lossy(), folder.to_string_lossy());
    let named_after = name == folder
        || name
            .strip_prefix(folder.as_ref())
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    trash == root.join(crate::names::TRASH_DIR) && named_after && real_dir(trash) && real_dir(root) && real_dir(path)
}

/// Whether the objects an archive ref needs are all in the object database: the commit and
/// every tree and blob of its tree (a `git gc --prune=now` running beside apply can delete
/// objects no ref reached yet). What is missing, if anything.
pub fn missing_objects(repo: &gix::Repository, commit: gix::ObjectId) -> Option<String> {
    let Ok(commit) = repo.find_commit(commit) else {
        return Some(format!("commit {commit}"));
    };
    let Ok(tree) = commit.tree_id() else {
        return Some(format!("the tree of {}", commit.id));
    };
    let mut pending = vec![tree.detach()];
    while let Some(id) = pending.pop() {
        let Ok(tree) = repo.find_tree(id) else {
            return Some(format!("tree {id}"));
        };
        for entry in tree.iter() {
            let Ok(entry) = entry else {
                return Some(format!("an entry of tree {id}"));
            };
            let oid = entry.oid().to_owned();
            if entry.mode().is_tree() {
                pending.push(oid);
            } else if entry.mode().is_commit() {
                // A submodule's commit lives in another repository.
            } else if !repo.has_object(oid) {
                return Some(format!("blob {oid}"));
            }
        }
    }
    None
}

/// Why the worktree's `.git` does not lead back to its registration `admin_dir`, if it does
/// not (`git worktree remove` refuses such a worktree: its `.git` may be a repository of
/// its own).
pub fn backlink_problem(worktree: &Path, admin_dir: &Path) -> Option<String> {
    let dot_git = worktree.join(".git");
    let Ok(meta) = std::fs::symlink_metadata(&dot_git) else {
        return Some("it has no `.git` file".to_owned());
    };
    if !meta.is_file() {
        return Some(if meta.is_dir() {
            "its `.git` is a repository of its own, not a link to its registration".to_owned()
        } else {
            "its `.git` is not a regular file".to_owned()
        });
    }
    let text = read_small(&dot_git).unwrap_or_default();
    let target = text
        .strip_prefix(b"gitdir: ")
        .and_then(|t| gix::path::from_bstr(t.trim().as_bstr()).ok().map(|p| p.into_owned()));
    let points_back = target.is_some_and(|t| {
        let t = if t.is_absolute() { t } else { worktree.join(t) };
        crate::fsutil::canonical(&t) == crate::fsutil::canonical(admin_dir)
    });
    (!points_back).then(|| "its `.git` file points elsewhere than its registration".to_owned())
}

/// A repository of its own inside a worktree whose history a removal would lose.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Nested {
    /// Relative to the worktree.
    pub path: String,
    /// How many of its commits none of its remote-tracking refs reaches; `None` when it
    /// could not be read (which blocks as well: nothing vouches for its history).
    pub unpushed: Option<usize>,
    /// How many files of its work tree `git status` shows changed, staged or untracked:
    /// work no remote holds, whatever its commits.
    pub uncommitted: usize,
}

/// SPEC §11.4: every git repository nested anywhere in `worktree` — untracked, in an
/// ignored folder (a tool's clone, `pip -e` sources), in the session folder, inside another
/// nested one; a folder with a `.git` (a folder or a gitlink file) or a bare repository —
/// that has a commit none of its own remote-tracking refs reaches. The one rule the
/// planner and apply's check right before deletion both ask. Symlinks are never followed
/// (deleting one deletes no repository), nor is any `.git` folder walked. One directory
/// listing per folder, no `stat`: cheap beside the stamps a removal reads anyway.
pub fn unpushed_nested_repositories(worktree: &Path) -> Vec<Nested> {
    use crate::fsutil::walk;
    use rustix::fs::FileType;
    let mut found = Vec::new();
    // Each folder opened from its parent's: a tree deeper than `PATH_MAX` is read whole.
    let mut pending = vec![walk::Folder::default()];
    while let Some(folder) = pending.pop() {
        let rel = folder.rel.clone();
        let listed = folder.open(worktree).and_then(|fd| Ok((walk::entries(&fd)?, fd)));
        let (entries, fd) = match listed {
            Ok(listed) => listed,
            // A folder that cannot be listed (mode 000, another user's) may hold a
            // repository nothing here can vouch for: it blocks as one that cannot be read.
            Err(e) if !rel.as_os_str().is_empty() && e.kind() == std::io::ErrorKind::PermissionDenied => {
                found.push(Nested {
                    path: rel.to_string_lossy().into_owned(),
                    unpushed: None,
                    uncommitted: 0,
                });
                continue;
            }
            Err(_) => continue,
        };
        let mut dirs = Vec::new();
        let (mut dot_git, mut head, mut objects, mut refs) = (false, false, false, false);
        for (name, listed) in entries {
            let Some(kind) = walk::kind_at(&fd, &name, listed) else {
                continue;
            };
            let is_dir = kind == FileType::Directory;
            match name.to_str() {
                // A folder, a gitlink file or a symlink to a git folder: a work tree either way.
                Some(".git") => dot_git = is_dir || kind == FileType::RegularFile || kind == FileType::Symlink,
                Some("HEAD") => head = kind == FileType::RegularFile,
                Some("objects") => objects = is_dir,
                Some("refs") => refs = is_dir,
                _ => {}
            }
            if is_dir && name != ".git" {
                dirs.push(folder.child(&fd, &name));
            }
        }
        let top = rel.as_os_str().is_empty();
        let bare = !top && !dot_git && head && objects && refs;
        if !top && (dot_git || bare) {
            let dir = worktree.join(&rel);
            let mut unpushed = unpushed_commits(&dir);
            // Pushed commits do not vouch for its work tree: a changed, staged or untracked
            // file there (a linked worktree of a repository elsewhere too) is lost with it.
            let uncommitted = if bare { Some(0) } else { uncommitted_files(&dir) };
            if uncommitted.is_none() {
                unpushed = None;
            }
            let uncommitted = uncommitted.unwrap_or(0);
            if unpushed != Some(0) || uncommitted > 0 {
                found.push(Nested {
                    path: rel.to_string_lossy().into_owned(),
                    unpushed,
                    uncommitted,
                });
            }
        }
        // A bare repository holds no work tree to look into; a nested one's may hold more.
        if !bare {
            pending.extend(dirs);
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// How many files `git status` in the work tree at `dir` shows (changed, staged, deleted,
/// untracked and not ignored); `None` when it cannot be read.
fn uncommitted_files(dir: &Path) -> Option<usize> {
    let repo = gix::open_opts(dir, gix::open::Options::isolated()).ok()?;
    let dirt = status_dirt(&repo, dir, false).ok()?;
    Some(dirt.all_paths().len())
}

/// How many commits the repository at `dir` (a folder with a `.git`, or a bare one) holds
/// that none of its remote-tracking refs reaches: from every other ref (branches, tags,
/// `refs/stash`, notes) and its `HEAD`. `None` when it cannot be read.
fn unpushed_commits(dir: &Path) -> Option<usize> {
    let repo = gix::open_opts(dir, gix::open::Options::isolated()).ok()?;
    let mut tips = Vec::new();
    let mut pushed = Vec::new();
    let platform = repo.references().ok()?;
    for reference in platform.all().ok()? {
        let mut reference = reference.ok()?;
        let remote = reference.name().as_bstr().starts_with(b"refs/remotes/");
        let Ok(id) = reference.peel_to_id() else { continue };
        // Only commits make history (a tag may name a tree or a blob).
        if repo.find_commit(id.detach()).is_err() {
            continue;
        }
        if remote {
            pushed.push(id.detach());
        } else {
            tips.push(id.detach());
        }
    }
    if let Ok(head) = repo.head_id() {
        tips.push(head.detach());
    }
    if tips.is_empty() {
        return Some(0);
    }
    let mut count = 0;
    for info in repo.rev_walk(tips).with_hidden(pushed).all().ok()? {
        info.ok()?;
        count += 1;
    }
    Some(count)
}

/// How many commits `tip` reaches that none of `hidden` reaches (`git branch -d` semantics:
/// zero means merged).
pub fn unmerged(
    repo: &gix::Repository,
    name: &str,
    tip: gix::ObjectId,
    hidden: Vec<gix::ObjectId>,
) -> Result<usize, RepoError> {
    let walk = repo
        .rev_walk([tip])
        .with_hidden(hidden)
        .all()
        .map_err(|e| RepoError::git("walk the history of", Path::new(name), e))?;
    let mut count = 0;
    for info in walk {
        info.map_err(|e| RepoError::git("walk the history of", Path::new(name), e))?;
        count += 1;
    }
    Ok(count)
}

/// How a branch's changes are already in a target (its base or upstream), SPEC §7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Integration {
    /// Its tip is an ancestor of the target.
    Ancestor,
    /// Its tip's tree is the target's tree.
    SameTree,
    /// Merging it would add nothing: every path it changed since the merge base already
    /// holds, in the target, what the branch has there (a squash or rebase merge, then
    /// changes elsewhere).
    NothingToAdd,
    /// Each of its commits, or their squash, appears in the target by patch id (the same
    /// change of the same files), even where the target changed those files since.
    PatchId,
}

/// The most commits of a target that are read for patch ids.
const PATCH_ID_WINDOW: usize = 2000;

/// Whether `tip`'s changes are in one of `targets` already, and how.
pub fn integration(repo: &gix::Repository, tip: gix::ObjectId, targets: &[gix::ObjectId]) -> Option<Integration> {
    let mut best = None;
    for &target in targets {
        let found = integration_into(repo, tip, target);
        if found.is_some() {
            best = found;
            break;
        }
    }
    best
}

fn integration_into(repo: &gix::Repository, tip: gix::ObjectId, target: gix::ObjectId) -> Option<Integration> {
    let base = repo.merge_base(tip, target).ok().flatten()?.detach();
    if base == tip {
        return Some(Integration::Ancestor);
    }
    let tree_of = |id: gix::ObjectId| repo.find_commit(id).ok()?.tree().ok();
    let (tip_tree, target_tree, base_tree) = (tree_of(tip)?, tree_of(target)?, tree_of(base)?);
    if tip_tree.id == target_tree.id {
        return Some(Integration::SameTree);
    }
    let branch_changes = changes(repo, &base_tree, &tip_tree)?;
    // Compared by (mode, id): a change of mode alone (`chmod +x`, a symlink turned into a
    // file of the same bytes) is a change the target must hold too (SPEC §11.4).
    let holds = |path: &gix::bstr::BString, new: &Option<Entry>| -> Option<bool> {
        let path = gix::path::from_bstr(path.as_bstr()).ok()?;
        let entry = target_tree.lookup_entry_by_path(path.as_ref()).ok()?;
        Some(entry.map(|e| (e.mode().kind() as u16, e.object_id())) == *new)
    };
    let all_there = branch_changes
        .iter()
        .all(|(path, _, new)| holds(path, new).unwrap_or(false));
    if all_there {
        return Some(Integration::NothingToAdd);
    }
    // Patch ids: the change sets of the target's commits since the merge base.
    let mut target_ids = std::collections::HashSet::new();
    let walk = repo.rev_walk([target]).with_hidden([base]).all().ok()?;
    for info in walk.take(PATCH_ID_WINDOW) {
        let info = info.ok()?;
        if let Some(id) = commit_patch_id(repo, info.id) {
            target_ids.insert(id);
        }
    }
    if target_ids.contains(&patch_id(&branch_changes)) {
        return Some(Integration::PatchId); // The squash of the branch.
    }
    let walk = repo.rev_walk([tip]).with_hidden([target]).all().ok()?;
    let mut any = false;
    for info in walk {
        let info = info.ok()?;
        any = true;
        let id = commit_patch_id(repo, info.id)?;
        if !target_ids.contains(&id) {
            return None;
        }
    }
    any.then_some(Integration::PatchId)
}

/// A tree entry as integration compares it: its kind of mode (`100644`, `100755`, `120000`,
/// `160000`, as git normalises them) and its object id.
type Entry = (u16, gix::ObjectId);

type ChangeSet = Vec<(gix::bstr::BString, Option<Entry>, Option<Entry>)>;

/// Every path that differs between two trees, in content or in mode: (path, old entry, new
/// entry), sorted.
fn changes(repo: &gix::Repository, old: &gix::Tree<'_>, new: &gix::Tree<'_>) -> Option<ChangeSet> {
    use gix::object::tree::diff::ChangeDetached as C;
    let list = repo
        .diff_tree_to_tree(old, new, gix::diff::Options::default().with_rewrites(None))
        .ok()?;
    let mut out: ChangeSet = list
        .into_iter()
        .filter(|c| !c.entry_mode().is_tree())
        .map(|c| {
            let entry = |mode: gix::object::tree::EntryMode, id| (mode.kind() as u16, id);
            match c {
                C::Addition {
                    location,
                    entry_mode,
                    id,
                    ..
                } => (location, None, Some(entry(entry_mode, id))),
                C::Deletion {
                    location,
                    entry_mode,
                    id,
                    ..
                } => (location, Some(entry(entry_mode, id)), None),
                C::Modification {
                    location,
                    previous_entry_mode,
                    previous_id,
                    entry_mode,
                    id,
                } => (
                    location,
                    Some(entry(previous_entry_mode, previous_id)),
                    Some(entry(entry_mode, id)),
                ),
                C::Rewrite {
                    location,
                    source_entry_mode,
                    source_id,
                    entry_mode,
                    id,
                    ..
                } => (
                    location,
                    Some(entry(source_entry_mode, source_id)),
                    Some(entry(entry_mode, id)),
                ),
            }
        })
        .collect();
    out.sort();
    Some(out)
}

/// The paths whose content or mode differs between two commits' trees (`git diff
/// --name-only old new`); `None` when a tree cannot be read.
pub fn changed_paths(
    repo: &gix::Repository,
    old: gix::ObjectId,
    new: gix::ObjectId,
) -> Option<std::collections::BTreeSet<String>> {
    let tree = |id: gix::ObjectId| repo.find_commit(id).ok()?.tree().ok();
    let list = changes(repo, &tree(old)?, &tree(new)?)?;
    Some(
        list.into_iter()
            .map(|(path, _, _)| path.to_str_lossy().into_owned())
            .collect(),
    )
}

/// A patch id at the level of files: a hash of which paths change from which content and
/// mode to which. Two commits that make the same change to the same files share it; a
/// change of mode alone has one of its own.
fn patch_id(changes: &ChangeSet) -> gix::ObjectId {
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    for (path, old, new) in changes {
        hasher.update(path);
        hasher.update(b"\0");
        for entry in [old, new] {
            match entry {
                Some((mode, id)) => {
                    hasher.update(&mode.to_be_bytes());
                    hasher.update(id.as_bytes());
                }
                None => hasher.update(b"-"),
            }
        }
        hasher.update(b"\n");
    }
    hasher
        .try_finalize()
        .unwrap_or_else(|_| gix::ObjectId::null(gix::hash::Kind::Sha1))
}

fn commit_patch_id(repo: &gix::Repository, id: gix::ObjectId) -> Option<gix::ObjectId> {
    let commit = repo.find_commit(id).ok()?;
    let tree = commit.tree().ok()?;
    let parent_tree = match commit.parent_ids().next() {
        Some(parent) => repo.find_commit(parent.detach()).ok()?.tree().ok()?,
        None => repo.empty_tree(),
    };
    Some(patch_id(&changes(repo, &parent_tree, &tree)?))
}

/// Why checking out `commit` would go wrong before anything is written, if it would: blobs
/// missing from the object database (a partial clone not fetched yet), or a
/// wide `working-tree-encoding` flowloom cannot write (UCS-2, UCS-4, odd UTF-16/32 names:
/// gix would write such files as their UTF-8 blob, which git then shows modified).
pub fn checkout_problem(repo: &gix::Repository, commit: &str) -> Option<String> {
    let id = gix::ObjectId::from_hex(commit.as_bytes()).ok()?;
    let tree = repo.find_commit(id).ok()?.tree_id().ok()?;
    let index = repo.index_from_tree(&tree).ok()?;
    let mut missing = 0usize;
    let mut first_missing = None;
    let mut attributes = Vec::new();
    for entry in index.entries() {
        if entry.mode == gix::index::entry::Mode::COMMIT {
            continue;
        }
        let path = entry.path(&index);
        if !repo.has_object(entry.id) {
            missing += 1;
            first_missing.get_or_insert_with(|| path.to_str_lossy().into_owned());
            continue;
        }
        if path == ".gitattributes" || path.ends_with(b"/.gitattributes") {
            attributes.push(entry.id);
        }
    }
    if missing > 0 {
        // A partial clone: `extensions.partialClone` (older git) or a promisor remote.
        let config = repo.config_snapshot();
        let partial = config
            .string("extensions.partialClone")
            .map(|r| r.to_string())
            .or_else(|| {
                repo.remote_names()
                    .into_iter()
                    .find(|name| config.boolean(format!("remote.{name}.promisor").as_str()) == Some(true))
                    .map(|name| name.to_string())
            });
        return Some(match partial {
            Some(remote) => format!(
                "{missing} file(s) of {commit} (e.g. {}) are not fetched yet in this partial clone; fetch them first: \
                 git fetch {remote} {commit}, or git checkout the commit once",
                first_missing.unwrap_or_default()
            ),
            None => format!(
                "{missing} file(s) of {commit} (e.g. {}) are missing from the object database; {}",
                first_missing.unwrap_or_default(),
                crate::error::alternates_env_hint().unwrap_or("run git fsck")
            ),
        });
    }
    let mut texts: Vec<Vec<u8>> = attributes
        .into_iter()
        .filter_map(|id| repo.find_object(id).ok().map(|o| o.data.clone()))
        .collect();
    if let Some(info) = read_small(&repo.common_dir().join("info").join("attributes")) {
        texts.push(info);
    }
    for text in texts {
        for word in text.split(|b| b.is_ascii_whitespace()) {
            let Some(value) = word.strip_prefix(b"working-tree-encoding=") else {
                continue;
            };
            // UTF-16 and UTF-32 flowloom writes itself (`fsutil::wide`); other wide forms not.
            if crate::fsutil::wide::is_wide_name(value) && crate::fsutil::wide::by_name(value).is_none() {
                return Some(format!(
                    "its attributes ask for working-tree-encoding={}, which gitoxide cannot write yet (it would \
                     check the UTF-8 blob out unconverted); make this session with `git worktree add`",
                    value.to_str_lossy()
                ));
            }
        }
    }
    None
}

/// What `commit` tracks where flowloom keeps a session's own files, by session id: a
/// committed `sessions/<id>/metadata.json`, or `sessions/<id>` or `sessions/<id>/artifacts`
/// as anything but a folder. git checks such a file out; flowloom would have to overwrite it.
pub fn tracked_session_files(repo: &gix::Repository, commit: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let Some(sessions) = gix::ObjectId::from_hex(commit.as_bytes())
        .ok()
        .and_then(|id| repo.find_commit(id).ok())
        .and_then(|c| c.tree().ok())
        .and_then(|t| t.find_entry(crate::names::SESSIONS).map(|e| (e.mode(), e.object_id())))
    else {
        return found;
    };
    let entries = |mode: gix::object::tree::EntryMode, id: gix::ObjectId| {
        mode.is_tree().then(|| repo.find_tree(id).ok()).flatten().map(|t| {
            t.decode()
                .map(|d| {
                    d.entries
                        .iter()
                        .map(|e| (e.filename.to_str_lossy().into_owned(), e.mode, e.oid.to_owned()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    let Some(ids) = entries(sessions.0, sessions.1) else {
        found.insert(String::new(), crate::names::SESSIONS.to_owned());
        return found;
    };
    for (id, mode, oid) in ids {
        let folder = format!("{}/{id}", crate::names::SESSIONS);
        let path = match entries(mode, oid) {
            None => Some(folder),
            Some(inside) => inside.iter().find_map(|(name, mode, _)| match name.as_str() {
                "metadata.json" => Some(format!("{folder}/metadata.json")),
                "artifacts" if !mode.is_tree() => Some(format!("{folder}/artifacts")),
                _ => None,
            }),
        };
        if let Some(path) = path {
            found.insert(id, path);
        }
    }
    found
}

/// The branch a rebase in progress in this administration folder (the common dir for the
/// main worktree) will put back, as a full ref name: git counts it as checked out there.
pub fn rebasing(admin_dir: &Path) -> Option<String> {
    ["rebase-merge/head-name", "rebase-apply/head-name"]
        .iter()
        .find_map(|rel| read_small(&admin_dir.join(rel)))
        .map(|text| String::from_utf8_lossy(&text).trim().to_owned())
        .filter(|name| name.starts_with("refs/heads/"))
}

/// The branch a bisect in progress in this administration folder started from (git's
/// `BISECT_START` names it, or the commit when HEAD was detached), as a full ref name: git
/// counts it as checked out there until `git bisect reset` checks it out again.
pub fn bisecting(admin_dir: &Path) -> Option<String> {
    read_small(&admin_dir.join("BISECT_START"))
        .map(|text| String::from_utf8_lossy(&text).trim().to_owned())
        .filter(|name| !name.is_empty())
        .map(|name| format!("refs/heads/{name}"))
}

/// SPEC §10: the ignored entries of the main worktree, folders whole (as `git status
/// --ignored` shows them), for `copy` to choose from. `main` is the main worktree. Inside an
/// ignored folder, only what a pattern with a slash could name is listed on its own
/// ([`crate::read::copy::could_match_inside`]).
pub fn ignored_entries(
    repo: &gix::Repository,
    main: &Path,
    patterns: &[&str],
) -> Result<Vec<crate::read::copy::Ignored>, RepoError> {
    use gix::dir::entry::{Kind, Status};
    use gix::dir::walk::EmissionMode;
    let main_repo = repo
        .main_repo()
        .map_err(|e| RepoError::git("open the main worktree", main, e))?;
    let index = main_repo
        .index_or_empty()
        .map_err(|e| RepoError::git("read the index of", main, e))?;
    // Untracked folders are walked file by file, so that ignored files inside them are
    // listed; ignored folders are one entry.
    let options = main_repo
        .dirwalk_options()
        .map_err(|e| RepoError::git("walk", main, e))?
        .emit_ignored(Some(EmissionMode::CollapseDirectory))
        .emit_untracked(EmissionMode::Matching);
    let mut collect = gix::dir::walk::delegate::Collect::default();
    let none: [&gix::bstr::BStr; 0] = [];
    main_repo
        .dirwalk(
            &index,
            none,
            &std::sync::atomic::AtomicBool::new(false),
            options,
            &mut collect,
        )
        .map_err(|e| RepoError::git("walk", main, e))?;
    let mut found = Vec::new();
    for (e, _) in collect.into_entries_by_path() {
        if !matches!(e.status, Status::Ignored(_)) {
            continue;
        }
        let Ok(path) = e.rela_path.to_str() else { continue };
        let path = path.trim_end_matches('/').to_owned();
        let dir = matches!(e.disk_kind, Some(Kind::Directory));
        if dir && patterns.iter().any(|p| crate::read::copy::could_match_inside(p, &path)) {
            list_inside(main, &path, patterns, &mut found);
        }
        found.push(crate::read::copy::Ignored { path, dir });
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// The entries inside the ignored folder `dir` that a pattern could name, each one: folders a
/// pattern could look into are walked (never through a symlink, never into a `.git`).
fn list_inside(main: &Path, dir: &str, patterns: &[&str], found: &mut Vec<crate::read::copy::Ignored>) {
    let Ok(entries) = std::fs::read_dir(main.join(dir)) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name == ".git" {
            continue;
        }
        let path = format!("{dir}/{name}");
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && patterns.iter().any(|p| crate::read::copy::could_match_inside(p, &path)) {
            list_inside(main, &path, patterns, found);
        }
        found.push(crate::read::copy::Ignored { path, dir: is_dir });
    }
}
