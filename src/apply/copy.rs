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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
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
    let chosen: Vec<CopyItem> = ignored
        .iter()
        .filter(|e| matches(&e.path, e.dir) == Some(true))
        .cloned()
        .collect();
    // What a chosen folder holds is copied with it, not again on its own.
    let folders: std::collections::BTreeSet<&str> = chosen.iter().filter(|c| c.dir).map(|c| c.path.as_str()).collect();
    let inside_a_folder = |path: &str| {
        path.match_indices('/')
            .any(|(at, _)| path.get(..at).is_some_and(|above| folders.contains(above)))
    };
    chosen.iter().filter(|c| !inside_a_folder(&c.path)).cloned().collect()
}

/// Whether `pattern` could name something inside the ignored folder `dir`, which git lists
/// as one entry. Patterns with a slash (anchored to the main worktree's root) look inside
/// along their fixed start (`config/local.yml` inside `config/`), and `**/…` anywhere; a
/// pattern without a slash (`.env`, `*.yml`) matches what git lists, as `git status
/// --ignored` lists it, and does not make flowloom walk every ignored folder (`target/`,
/// `node_modules/`) looking for it.
pub fn could_match_inside(pattern: &str, dir: &str) -> bool {
    let p = pattern.trim();
    if p.is_empty() || p.starts_with('#') || p.starts_with('!') {
        return false;
    }
    let p = p.trim_end_matches('/');
    if p.starts_with("**/") {
        return true;
    }
    let anchored = p.trim_start_matches('/');
    if !anchored.contains('/') {
        return false;
    }
    let fixed = anchored
        .find(['*', '?', '[', '\\'])
        .map_or(anchored, |at| anchored.get(..at).unwrap_or(anchored));
    let inside = format!("{dir}/");
    fixed.starts_with(&inside) || inside.starts_with(fixed)
}

/// The patterns of `copy` lists and of `.worktreeinclude`, one per line.
pub fn pattern_lines<'a>(patterns: &'a [String], include: Option<&'a [u8]>) -> Vec<&'a str> {
    let mut lines: Vec<&str> = patterns.iter().map(String::as_str).collect();
    if let Some(text) = include.and_then(|t| std::str::from_utf8(t).ok()) {
        lines.extend(text.lines());
    }
    lines
}

/// What one copy did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    pub files: usize,
    pub bytes: u64,
    /// Entries left alone, with why (the checkout has them, they are gone, a special file).
    pub skipped: Vec<(String, String)>,
    /// Entries that could not be copied, with the error; the rest were.
    pub failed: Vec<(String, String)>,
}

/// Copies `items` from `from` (the main worktree) into `to` (the new worktree). Nothing in
/// `to` is ever replaced: an entry the checkout already has is skipped (folders are merged
/// file by file). Symlinks are copied as symlinks; FIFOs, sockets, devices and any `.git`
/// (another repository's, or another worktree's link) are skipped. An entry that fails does
/// not stop the others. Folders get their modes last, so a read-only folder is filled first.
pub fn copy_into(from: &Path, to: &Path, items: &[CopyItem], interrupt: &AtomicBool) -> Copied {
    let mut walk = Walk::default();
    for item in items {
        if interrupt.load(Ordering::Relaxed) {
            break;
        }
        let rel = Path::new(&item.path);
        // The folders above the entry are made as folders, never through a symlink.
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty())
            && let Err(e) = crate::fsutil::create_dir_beneath(to, parent)
        {
            walk.skipped.push((item.path.clone(), e.to_string()));
            continue;
        }
        walk.entry(from, to, rel);
    }
    let (files, bytes, mut failed) = copy_files(&walk.files, interrupt);
    // Deepest first: a folder made read-only cannot be written into any more.
    for (dir, mode) in walk.modes.iter().rev() {
        if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(*mode)) {
            failed.push((dir.to_string_lossy().into_owned(), e.to_string()));
        }
    }
    failed.extend(walk.failed);
    Copied {
        files,
        bytes,
        skipped: walk.skipped,
        failed,
    }
}

/// The files to copy, found by walking the entries; folders and symlinks are made on the way.
#[derive(Default)]
struct Walk {
    files: Vec<(PathBuf, PathBuf)>,
    /// Folders made, with the source's mode, in the order made.
    modes: Vec<(PathBuf, u32)>,
    skipped: Vec<(String, String)>,
    failed: Vec<(String, String)>,
}

impl Walk {
    fn entry(&mut self, from: &Path, to: &Path, rel: &Path) {
        let shown = rel.to_string_lossy().into_owned();
        if let Err(e) = self.try_entry(from, to, rel, &shown) {
            self.failed.push((shown, e.to_string()));
        }
    }

    fn try_entry(&mut self, from: &Path, to: &Path, rel: &Path, shown: &str) -> Result<(), RepoError> {
        let source = from.join(rel);
        let target = to.join(rel);
        if rel.file_name().is_some_and(|n| n == ".git") {
            self.skipped.push((shown.to_owned(), "a `.git` is never copied".into()));
            return Ok(());
        }
        let meta = match std::fs::symlink_metadata(&source) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.skipped
                    .push((shown.to_owned(), "gone from the main worktree".into()));
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
                    self.modes.push((target.clone(), meta.mode() & 0o7777));
                }
                Some(m) if m.file_type().is_dir() => {}
                Some(_) => {
                    self.skipped
                        .push((shown.to_owned(), "the checkout has a file there".into()));
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
                self.entry(from, to, &rel.join(name));
            }
            return Ok(());
        }
        if existing.is_some() {
            self.skipped
                .push((shown.to_owned(), "the checkout has it (never overwritten)".into()));
            return Ok(());
        }
        if kind.is_symlink() {
            let link = std::fs::read_link(&source).map_err(|e| RepoError::io("read", &source, e))?;
            std::os::unix::fs::symlink(&link, &target).map_err(|e| RepoError::io("create", &target, e))?;
        } else if kind.is_file() {
            self.files.push((source, target));
        } else {
            self.skipped
                .push((shown.to_owned(), "not a file, folder or symlink".into()));
        }
        Ok(())
    }
}

/// Copies the files with a few threads: a folder such as `node_modules` is many small files.
/// Returns how many were copied, their bytes, and the ones that failed.
fn copy_files(files: &[(PathBuf, PathBuf)], interrupt: &AtomicBool) -> (usize, u64, Vec<(String, String)>) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(files.len().max(1));
    let next = AtomicUsize::new(0);
    let copied = AtomicUsize::new(0);
    let bytes = std::sync::atomic::AtomicU64::new(0);
    let failed: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while !interrupt.load(Ordering::Relaxed) {
                    let Some((source, target)) = files.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    match copy_file(source, target) {
                        Ok(n) => {
                            copied.fetch_add(1, Ordering::Relaxed);
                            bytes.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(e) => {
                            if let Ok(mut f) = failed.lock() {
                                f.push((target.to_string_lossy().into_owned(), e.to_string()));
                            }
                        }
                    }
                }
            });
        }
    });
    let mut failed = failed.into_inner().unwrap_or_default();
    failed.sort();
    (copied.into_inner(), bytes.into_inner(), failed)
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
        copy_keeping_holes(&src, &mut dst, meta.len()).map_err(|e| RepoError::io("copy", source, e))?
    };
    let _ = dst.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777));
    if let Ok(modified) = meta.modified() {
        let _ = dst.set_modified(modified);
    }
    Ok(len)
}

/// The bytes of `src` into the new, empty `dst`, holes kept (SPEC §11.3): only the data
/// extents the filesystem reports (`SEEK_DATA`, `SEEK_HOLE`) are copied, and the length is
/// set last, so a sparse file stays sparse. A filesystem that cannot tell reports the
/// whole file as data. Returns the length.
fn copy_keeping_holes(src: &File, dst: &mut File, len: u64) -> io::Result<u64> {
    use rustix::fs::{SeekFrom, seek};
    let mut at = 0;
    while at < len {
        let start = match seek(src, SeekFrom::Data(at)) {
            Ok(start) => start,
            // Nothing but a hole after `at`.
            Err(rustix::io::Errno::NXIO) => break,
            // No such seek here: all of it is data.
            Err(_) if at == 0 => {
                let mut from: &File = src;
                return io::copy(&mut from, dst);
            }
            Err(e) => return Err(e.into()),
        };
        let end = seek(src, SeekFrom::Hole(start)).map_or(len, |end| end.min(len));
        if start >= end {
            break;
        }
        copy_range(src, dst, start, end)?;
        at = end;
    }
    dst.set_len(len)?;
    Ok(len)
}

/// Bytes `from..end` of `src` to the same place in `dst`; stops early if `src` shrank.
fn copy_range(src: &File, dst: &File, mut from: u64, end: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buffer = vec![0; (end - from).min(1 << 18) as usize];
    while from < end {
        let want = (end - from).min(buffer.len() as u64) as usize;
        let n = match src.read_at(&mut buffer[..want], from) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all_at(&buffer[..n], from)?;
        from += n as u64;
    }
    Ok(())
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
    fn only_patterns_with_a_slash_look_inside_ignored_folders() {
        assert!(could_match_inside("config/local.yml", "config"));
        assert!(could_match_inside("/config/*.yml", "config"));
        assert!(could_match_inside("con*/x", "config"));
        assert!(could_match_inside("a/b/c", "a/b"));
        assert!(could_match_inside("**/*.yml", "node_modules"));
        assert!(!could_match_inside(".env", "node_modules"));
        assert!(!could_match_inside("*.yml", "config"));
        assert!(!could_match_inside("other/x", "config"));
        assert!(!could_match_inside("!config/x", "config"));
        assert!(!could_match_inside("# config/x", "config"));
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
        // A folder and a file inside it both named: the folder, once.
        let nested = ignored(&[("config", true), ("config/local.yml", false)]);
        assert_eq!(
            paths(&select(
                &["config/".to_owned(), "config/local.yml".to_owned()],
                None,
                &nested
            )),
            ["config"]
        );
        assert_eq!(
            paths(&select(&["config/local.yml".to_owned()], None, &nested)),
            ["config/local.yml"]
        );
        assert!(select(&[], None, &found).is_empty());
    }
}
