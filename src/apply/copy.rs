//! SPEC §10 `copy`: ignored files and folders of the main worktree, named by the manifest's
//! `copy` patterns and by `.worktreeinclude`, copied into each new session.
//!
//! Which entries are copied is decided when planning (the reader's `copy::select`, a
//! function of the patterns and of the ignored entries the reader found), so the plan shows
//! them. Copying ([`copy_into`]) never overwrites anything the checkout holds, never follows a symlink,
//! clones files copy-on-write where the filesystem can, and copies large folders with
//! several threads.

use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::error::RepoError;
pub use crate::plan::CopyItem;
use crate::store::tracked::SessionTracks;

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
/// `tracks`: what git tracks in the session `to`, never written (a tracked file the agent
/// deleted stays deleted); `None` when `to` is no session (a folder being moved).
pub fn copy_into(
    from: &Path,
    to: &Path,
    items: &[CopyItem],
    interrupt: &AtomicBool,
    tracks: Option<&SessionTracks>,
) -> Copied {
    let mut walk = Walk {
        tracks,
        ..Walk::default()
    };
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
        walk.entry(from, to, rel, tracks.is_some());
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
struct Walk<'t> {
    tracks: Option<&'t SessionTracks>,
    files: Vec<(PathBuf, PathBuf)>,
    /// Folders made, with the source's mode, in the order made.
    modes: Vec<(PathBuf, u32)>,
    skipped: Vec<(String, String)>,
    failed: Vec<(String, String)>,
}

impl Walk<'_> {
    /// `careful`: git may track something at or below `rel` in the session.
    fn entry(&mut self, from: &Path, to: &Path, rel: &Path, careful: bool) {
        let shown = rel.to_string_lossy().into_owned();
        if let Err(e) = self.try_entry(from, to, rel, &shown, careful) {
            self.failed.push((shown, e.to_string()));
        }
    }

    fn try_entry(&mut self, from: &Path, to: &Path, rel: &Path, shown: &str, careful: bool) -> Result<(), RepoError> {
        let source = from.join(rel);
        let target = to.join(rel);
        if rel.file_name().is_some_and(|n| n == ".git") {
            self.skipped.push((shown.to_owned(), "a `.git` is never copied".into()));
            return Ok(());
        }
        let tracks = self.tracks.filter(|_| careful);
        if tracks.is_some_and(|t| t.tracks(shown)) {
            self.skipped
                .push((shown.to_owned(), "git tracks it in the session (left alone)".into()));
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
            let careful = tracks.is_some_and(|t| !t.tracks_nothing_below(shown));
            for name in names {
                self.entry(from, to, &rel.join(name), careful);
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
/// time follow the source, as `cp -a` keeps them. The bytes go into an unnamed file in the
/// target's folder that is given its name only once it is whole, so a kill (`kill -9`
/// included) never leaves a half file that a later apply would take for a copied one (and
/// never overwrite); where the filesystem has no unnamed files, the file is written in place.
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
    if let Some(mut dst) = unnamed_beside(target, meta.mode()) {
        let len = fill(&src, &mut dst, &meta).map_err(|e| RepoError::io("copy", source, e))?;
        name_it(&dst, target).map_err(|e| RepoError::io("create", target, e))?;
        return Ok(len);
    }
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(meta.mode() & 0o777)
        .open(target)
        .map_err(|e| RepoError::io("create", target, e))?;
    fill(&src, &mut dst, &meta).map_err(|e| RepoError::io("copy", source, e))
}

/// The bytes of `src` (a clone where the filesystem can), then its mode and modification
/// time, into the new, empty `dst`; returns the length.
fn fill(src: &File, dst: &mut File, meta: &std::fs::Metadata) -> io::Result<u64> {
    failpoint_half_file(src, dst, meta.len());
    let len = if reflink_copy::reflink_file(src, dst).is_ok() {
        meta.len()
    } else {
        copy_keeping_holes(src, dst, meta.len())?
    };
    let _ = dst.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777));
    if let Ok(modified) = meta.modified() {
        let _ = dst.set_modified(modified);
    }
    Ok(len)
}

/// Debug builds only: `FLOWLOOM_FAILPOINT=copy:half-file` writes the first half of a file's
/// bytes and aborts, as a `kill -9` in the middle of a large file would.
fn failpoint_half_file(src: &File, dst: &File, len: u64) {
    #[cfg(debug_assertions)]
    if std::env::var("FLOWLOOM_FAILPOINT").is_ok_and(|v| v == "copy:half-file") {
        let _ = copy_range(src, dst, 0, len / 2);
        let _ = dst.sync_all();
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = (src, dst, len);
}

/// An unnamed file (`O_TMPFILE`) in the folder of `target`, or `None` where the
/// filesystem cannot make one.
fn unnamed_beside(target: &Path, mode: u32) -> Option<File> {
    use rustix::fs::{Mode, OFlags};
    let dir = target.parent()?;
    let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
    rustix::fs::openat(rustix::fs::CWD, dir, flags, Mode::from_raw_mode(mode & 0o777))
        .ok()
        .map(File::from)
}

/// Give the whole unnamed file `dst` its name `target`; an entry there (made meanwhile)
/// is never replaced (`EEXIST`).
fn name_it(dst: &File, target: &Path) -> io::Result<()> {
    use rustix::fs::{AtFlags, CWD, linkat};
    use std::os::fd::AsRawFd;
    let by_proc = format!("/proc/self/fd/{}", dst.as_raw_fd());
    match linkat(CWD, by_proc.as_str(), CWD, target, AtFlags::SYMLINK_FOLLOW) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) => Err(rustix::io::Errno::EXIST.into()),
        // No /proc: by the descriptor itself (which needs CAP_DAC_READ_SEARCH).
        Err(_) => linkat(dst, "", CWD, target, AtFlags::EMPTY_PATH).map_err(Into::into),
    }
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
