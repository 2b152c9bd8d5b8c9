//! SPEC §10 `copy`: ignored files and folders of the main worktree, named by the manifest's
//! `copy` patterns and by `.worktreeinclude`, copied into each new session.
//!
//! Which entries are copied is decided when planning ([`select`], a pure function of the
//! patterns and of the ignored entries the reader found), so the plan shows them. Copying
//! ([`copy_into`]) never overwrites anything the checkout holds, never follows a symlink,
//! clones files copy-on-write where the filesystem can, and copies large folders with
//! several threads.

use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use gix::bstr::BStr;
use serde::Serialize;

use crate::error::RepoError;

/// The file at the main worktree's root that lists more entries to copy.
pub const INCLUDE_FILE: &str = ".worktreeinclude";

/// An ignored entry of the main worktree, as the reader found it. Ignored folders are
/// reported whole (as `git status --ignored` shows them), not file by file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Ignored {
    /// Relative to the main worktree, `/`-separated.
    pub path: String,
    pub dir: bool,
}

/// One entry to copy, relative to the main worktree and the new session's worktree.
pub type CopyItem = Ignored;

/// The ignored entries that `patterns` (the manifest's `copy`) or `include` (the text of
/// `.worktreeinclude`) name. An entry is named when it or a folder above it matches, the
/// last matching pattern deciding (`!` excludes again), as in gitignore files.
pub fn select(patterns: &[String], include: Option<&[u8]>, ignored: &[Ignored]) -> Vec<CopyItem> {
    if patterns.is_empty() && include.is_none_or(|t| t.trim_ascii().is_empty()) {
        return Vec::new();
    }
    let mut search = gix::ignore::Search::from_overrides(patterns.iter().map(String::as_str), Default::default());
    if let Some(text) = include {
        // Cannot fail: the bytes are in memory.
        let _ = search.add_patterns_buffer(text, INCLUDE_FILE, None, Default::default());
    }
    // `from_overrides` and the buffer are separate lists, each matched on its own: the
    // buffer's (added last) wins where both match, as a later line would.
    let matches = |path: &str, is_dir: bool| -> Option<bool> {
        let mut decision = None;
        let mut at = 0;
        // Folders above the entry first, then the entry: a folder's match covers its files.
        loop {
            let end = path.get(at..).and_then(|rest| rest.find('/')).map(|i| at + i);
            let (prefix, dir) = match end {
                Some(end) => (path.get(..end).unwrap_or(path), true),
                None => (path, is_dir),
            };
            if let Some(m) = search.pattern_matching_relative_path(
                BStr::new(prefix.as_bytes()),
                Some(dir),
                gix::glob::pattern::Case::Sensitive,
            ) {
                decision = Some(!m.pattern.is_negative());
            }
            match end {
                Some(end) => at = end + 1,
                None => return decision,
            }
        }
    };
    ignored
        .iter()
        .filter(|e| matches(&e.path, e.dir) == Some(true))
        .cloned()
        .collect()
}

/// What one copy did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    pub files: usize,
    pub bytes: u64,
    /// Entries left alone, with why (the checkout has them, they are gone, a special file).
    pub skipped: Vec<(String, String)>,
}

/// Copies `items` from `from` (the main worktree) into `to` (the new worktree). Nothing in
/// `to` is ever replaced: an entry the checkout already has is skipped (folders are merged
/// file by file). Symlinks are copied as symlinks; FIFOs, sockets and devices are skipped.
pub fn copy_into(from: &Path, to: &Path, items: &[CopyItem], interrupt: &AtomicBool) -> Result<Copied, RepoError> {
    let mut plan = Walk::default();
    for item in items {
        if interrupt.load(Ordering::Relaxed) {
            break;
        }
        let rel = Path::new(&item.path);
        // The folders above the entry are made as folders, never through a symlink.
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty())
            && let Err(e) = crate::fsutil::create_dir_beneath(to, parent)
        {
            plan.skipped.push((item.path.clone(), e.to_string()));
            continue;
        }
        plan.entry(from, to, rel)?;
    }
    let copied = copy_files(&plan.files, interrupt)?;
    Ok(Copied {
        files: copied.0,
        bytes: copied.1,
        skipped: plan.skipped,
    })
}

/// The files to copy, found by walking the entries; folders and symlinks are made on the way.
#[derive(Default)]
struct Walk {
    files: Vec<(PathBuf, PathBuf)>,
    skipped: Vec<(String, String)>,
}

impl Walk {
    fn entry(&mut self, from: &Path, to: &Path, rel: &Path) -> Result<(), RepoError> {
        let source = from.join(rel);
        let target = to.join(rel);
        let shown = rel.to_string_lossy().into_owned();
        let meta = match std::fs::symlink_metadata(&source) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.skipped.push((shown, "gone from the main worktree".into()));
                return Ok(());
            }
            Err(e) => return Err(RepoError::io("inspect", &source, e)),
        };
        let existing = std::fs::symlink_metadata(&target).ok();
        let kind = meta.file_type();
        if kind.is_dir() {
            match existing {
                None => {
                    std::fs::create_dir(&target).map_err(|e| RepoError::io("create", &target, e))?;
                    let _ = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(meta.mode() & 0o7777));
                }
                Some(m) if m.file_type().is_dir() => {}
                Some(_) => {
                    self.skipped.push((shown, "the checkout has a file there".into()));
                    return Ok(());
                }
            }
            let entries = std::fs::read_dir(&source).map_err(|e| RepoError::io("read", &source, e))?;
            let mut names: Vec<_> = entries
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(|e| RepoError::io("read", &source, e))?;
            names.sort();
            for name in names {
                self.entry(from, to, &rel.join(name))?;
            }
            return Ok(());
        }
        if existing.is_some() {
            self.skipped
                .push((shown, "the checkout has it (never overwritten)".into()));
            return Ok(());
        }
        if kind.is_symlink() {
            let link = std::fs::read_link(&source).map_err(|e| RepoError::io("read", &source, e))?;
            std::os::unix::fs::symlink(&link, &target).map_err(|e| RepoError::io("create", &target, e))?;
        } else if kind.is_file() {
            self.files.push((source, target));
        } else {
            self.skipped.push((shown, "not a file, folder or symlink".into()));
        }
        Ok(())
    }
}

/// Copies the files with a few threads: a folder such as `node_modules` is many small files.
fn copy_files(files: &[(PathBuf, PathBuf)], interrupt: &AtomicBool) -> Result<(usize, u64), RepoError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(files.len().max(1));
    let next = AtomicUsize::new(0);
    let bytes = std::sync::atomic::AtomicU64::new(0);
    let failure: Mutex<Option<RepoError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    if interrupt.load(Ordering::Relaxed) || failure.lock().map_or(true, |f| f.is_some()) {
                        return;
                    }
                    let Some((source, target)) = files.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    match copy_file(source, target) {
                        Ok(n) => {
                            bytes.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(e) => {
                            if let Ok(mut slot) = failure.lock() {
                                slot.get_or_insert(e);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let done = next.load(Ordering::Relaxed).min(files.len());
    Ok((done, bytes.into_inner()))
}

/// One file: a copy-on-write clone where the filesystem can make one, else its bytes. The
/// target is created new (never replacing, never through a symlink); mode and modification
/// time follow the source, as `cp -a` keeps them.
fn copy_file(source: &Path, target: &Path) -> Result<u64, RepoError> {
    // O_NONBLOCK: a FIFO put there since the walk must not hang the copy (it is then
    // skipped below); on a regular file the flag changes nothing.
    let src = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(source)
        .map_err(|e| RepoError::io("open", source, e))?;
    let meta = src.metadata().map_err(|e| RepoError::io("inspect", source, e))?;
    if !meta.is_file() {
        return Ok(0);
    }
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(meta.mode() & 0o777)
        .open(target)
        .map_err(|e| RepoError::io("create", target, e))?;
    let len = if reflink_copy::reflink_file(&src, &dst).is_ok() {
        meta.len()
    } else {
        let mut src: &File = &src;
        io::copy(&mut src, &mut dst).map_err(|e| RepoError::io("copy", source, e))?
    };
    let _ = dst.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777));
    if let Ok(modified) = meta.modified() {
        let _ = dst.set_modified(modified);
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignored(entries: &[(&str, bool)]) -> Vec<Ignored> {
        entries
            .iter()
            .map(|(p, d)| Ignored {
                path: (*p).to_owned(),
                dir: *d,
            })
            .collect()
    }

    fn paths(items: &[CopyItem]) -> Vec<&str> {
        items.iter().map(|i| i.path.as_str()).collect()
    }

    #[test]
    fn patterns_name_entries_and_the_folders_above_them() {
        let found = ignored(&[
            (".env", false),
            ("node_modules", true),
            ("config/local.yml", false),
            ("target", true),
            ("logs/a.log", false),
        ]);
        let copy = vec![".env".to_owned(), "node_modules/".to_owned(), "config/".to_owned()];
        assert_eq!(
            paths(&select(&copy, None, &found)),
            [".env", "node_modules", "config/local.yml"]
        );
        assert_eq!(paths(&select(&[], Some(b"*.log\n"), &found)), ["logs/a.log"]);
        assert_eq!(
            paths(&select(&["*".to_owned()], Some(b"!target\n"), &found)),
            [".env", "node_modules", "config/local.yml", "logs/a.log"]
        );
        assert!(select(&[], Some(b"# only a comment\n"), &found).is_empty());
        assert!(select(&[], None, &found).is_empty());
    }
}
