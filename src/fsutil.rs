//! Small filesystem helpers shared by the readers and writers (SPEC §8): flowloom reads
//! only regular files of bounded size, and never writes through a symlink or into a
//! special file.
//!
//! The `*_beneath` functions walk a relative path one component at a time from an open
//! directory (`openat` with `O_NOFOLLOW`), so a symlink swapped in anywhere below `top` is
//! refused instead of followed; `top` itself is the caller's to vouch for.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::error::RepoError;

pub mod index_v4;
pub mod remove;
pub mod shared;
pub mod stamps;
pub mod walk;
pub mod wide;

/// What the temporary files of the atomic writes are called: a kill between write and
/// rename leaves one, which a later apply recognises as its own (`recover`).
pub const TMP_PREFIX: &str = ".flowloom-tmp-";

/// The mode new files are created with; the kernel then applies the umask, as for git's
/// files (0644 under umask 022). `tempfile` alone would make them 0600.
const FILE_MODE: u32 = 0o666;
const DIR_MODE: u32 = 0o777;

/// Why a file flowloom wanted to read was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("it is a symlink (flowloom does not follow symlinks here)")]
    Symlink,
    #[error("it is {kind}, not a regular file")]
    NotRegular { kind: &'static str },
    #[error("it is larger than {max} bytes")]
    TooLarge { max: u64 },
    /// A folder on the way to the file is a symlink or not a folder.
    #[error("`{}` {problem}", component.display())]
    Parent { component: PathBuf, problem: &'static str },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What kind of non-regular file `meta` describes, in words.
fn kind_of(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symlink"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

fn kind_of_raw(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        FileType::Fifo => "a FIFO",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        FileType::RegularFile => "a regular file",
        _ => "a special file",
    }
}

fn is_not_found(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
}

/// Read the whole of an open file, refusing anything but a regular file of at most `max`
/// bytes (checked on the open descriptor, so a file swapped in meanwhile changes nothing).
fn read_open(file: File, max: u64) -> Result<Vec<u8>, ReadError> {
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular {
            kind: kind_of(meta.file_type()),
        });
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge { max });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // One byte more than allowed: a file that grew since the stat is still caught.
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge { max });
    }
    Ok(bytes)
}

/// A small file git keeps (`HEAD`, `gitdir`, a `.git` link, a marker): read only when it
/// is a regular file, and at most 64 KiB of it, so a FIFO or a device there never hangs
/// or floods a read.
pub fn read_small(path: &Path) -> Option<Vec<u8>> {
    crate::fsutil::read_regular(path, 64 * 1024).ok().flatten()
}

/// Read `path` if it is a regular file of at most `max` bytes. `Ok(None)` when nothing is
/// there. A final symlink is not followed, and a FIFO, device or folder is never opened
/// for reading (a FIFO would hang, `/dev/zero` would never end).
pub fn read_regular(path: &Path, max: u64) -> Result<Option<Vec<u8>>, ReadError> {
    // Look before opening: opening some devices has effects of its own.
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => return Err(ReadError::Symlink),
        Ok(meta) if !meta.file_type().is_file() => {
            return Err(ReadError::NotRegular {
                kind: kind_of(meta.file_type()),
            });
        }
        Ok(_) => {}
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if is_not_found(&e) => return Ok(None),
        // Swapped for a symlink between the look and the open.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(ReadError::Symlink),
        Err(e) => return Err(e.into()),
    };
    read_open(file, max).map(Some)
}

/// The normal components of `rel`; `None` when it is absolute or has a `..`.
fn components(rel: &Path) -> Option<Vec<&std::ffi::OsStr>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn open_dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

/// Open `name` inside `dir` as a folder without following a symlink. `Ok(None)` when it
/// does not exist; an error naming what it is when it is not a plain folder.
fn open_subdir(dir: &OwnedFd, name: &std::ffi::OsStr) -> Result<Option<OwnedFd>, Result<&'static str, std::io::Error>> {
    match rustix::fs::openat(dir, name, open_dir_flags() | OFlags::NOFOLLOW, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
            match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => Err(Ok(match FileType::from_raw_mode(st.st_mode) {
                    FileType::Symlink => "is a symlink",
                    _ => "is not a folder",
                })),
                Err(e) => Err(Err(e.into())),
            }
        }
        Err(e) => Err(Err(e.into())),
    }
}

fn open_top(top: &Path) -> std::io::Result<OwnedFd> {
    rustix::fs::openat(rustix::fs::CWD, top, open_dir_flags(), Mode::empty()).map_err(Into::into)
}

/// Like [`read_regular`] for `top/rel`, refusing also a symlink or a non-folder anywhere
/// between `top` and the file (`top` itself may be one).
pub fn read_regular_beneath(top: &Path, rel: &Path, max: u64) -> Result<Option<Vec<u8>>, ReadError> {
    let Some(parts) = components(rel) else {
        return Err(ReadError::Io(std::io::Error::other("not a path below the folder")));
    };
    let Some((file_name, dirs)) = parts.split_last() else {
        return Err(ReadError::NotRegular { kind: "a directory" });
    };
    let mut dir = match open_top(top) {
        Ok(fd) => fd,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut walked = PathBuf::new();
    for name in dirs {
        walked.push(name);
        dir = match open_subdir(&dir, name) {
            Ok(Some(fd)) => fd,
            Ok(None) => return Ok(None),
            Err(Ok(problem)) => {
                return Err(ReadError::Parent {
                    component: walked,
                    problem,
                });
            }
            Err(Err(e)) => return Err(e.into()),
        };
    }
    match rustix::fs::statat(&dir, *file_name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {}
            FileType::Symlink => return Err(ReadError::Symlink),
            other => {
                return Err(ReadError::NotRegular {
                    kind: kind_of_raw(other),
                });
            }
        },
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(std::io::Error::from(e).into()),
    }
    let fd = match rustix::fs::openat(
        &dir,
        *file_name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP) => return Err(ReadError::Symlink),
        Err(e) => return Err(std::io::Error::from(e).into()),
    };
    read_open(File::from(fd), max).map(Some)
}

fn refuse(path: &Path, component: &Path, problem: &str) -> RepoError {
    RepoError::message(format!(
        "refusing to write {}: `{}` {problem}; flowloom never writes through a symlink or into a special file \
         (move it away, then run flowloom again)",
        path.display(),
        component.display()
    ))
}

/// Create `top/rel` and every folder on the way, one component at a time, refusing any
/// existing component that is a symlink or not a folder. Returns the open folder.
fn dir_beneath(top: &Path, rel: &Path) -> Result<OwnedFd, RepoError> {
    let target = top.join(rel);
    let parts = components(rel).ok_or_else(|| refuse(&target, rel, "leaves the folder it must stay in"))?;
    let mut dir = open_top(top).map_err(|e| RepoError::io("open", top, e))?;
    let mut walked = PathBuf::new();
    for name in parts {
        walked.push(name);
        match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(DIR_MODE)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(RepoError::io("create", &top.join(&walked), e.into())),
        }
        dir = match open_subdir(&dir, name) {
            Ok(Some(fd)) => fd,
            // Removed between the mkdir and the open: someone else is at work here.
            Ok(None) => {
                return Err(RepoError::io(
                    "create",
                    &top.join(&walked),
                    std::io::ErrorKind::NotFound.into(),
                ));
            }
            Err(Ok(problem)) => return Err(refuse(&target, &walked, problem)),
            Err(Err(e)) => return Err(RepoError::io("open", &top.join(&walked), e)),
        };
    }
    Ok(dir)
}

/// Create the folder `top/rel` and every folder on the way below `top`, refusing any
/// existing component that is a symlink or not a folder (`top` itself may be a symlink:
/// the caller vouches for it). Returns `top/rel`.
pub fn create_dir_beneath(top: &Path, rel: &Path) -> Result<PathBuf, RepoError> {
    dir_beneath(top, rel)?;
    Ok(top.join(rel))
}

/// A name for a temporary file that no other process picks at the same moment.
fn temporary_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{TMP_PREFIX}{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Write `top/rel` atomically: the folders on the way are checked (and made) as by
/// [`create_dir_beneath`], the file is written to a temporary file in that verified folder,
/// synced, and renamed over the target. Refuses when the target is a symlink or anything but
/// a regular file. The new file's mode honours the umask.
pub fn write_beneath(top: &Path, rel: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    let target = top.join(rel);
    let parts = components(rel).ok_or_else(|| refuse(&target, rel, "leaves the folder it must stay in"))?;
    let Some((file_name, _)) = parts.split_last() else {
        return Err(refuse(&target, rel, "is not a file name"));
    };
    let parent = rel.parent().unwrap_or(Path::new(""));
    let dir = dir_beneath(top, parent)?;
    match rustix::fs::statat(&dir, *file_name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {}
            FileType::Symlink => return Err(refuse(&target, rel, "is a symlink")),
            other => return Err(refuse(&target, rel, &format!("is {}", kind_of_raw(other)))),
        },
        Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(RepoError::io("inspect", &target, e.into())),
    }
    let tmp_name = temporary_name();
    let tmp_path = target.with_file_name(&tmp_name);
    let fd = rustix::fs::openat(
        &dir,
        tmp_name.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(FILE_MODE),
    )
    .map_err(|e| RepoError::io("create", &tmp_path, e.into()))?;
    let mut file = File::from(fd);
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| RepoError::io("write", &tmp_path, e))
        .and_then(|()| {
            rustix::fs::renameat(&dir, tmp_name.as_str(), &dir, *file_name)
                .map_err(|e| RepoError::io("replace", &target, e.into()))
        });
    if written.is_err() {
        let _ = rustix::fs::unlinkat(&dir, tmp_name.as_str(), AtFlags::empty());
    }
    written
}

/// Why a path below a folder could not be written there safely.
#[derive(Debug, thiserror::Error)]
pub enum Unsafe {
    #[error("`{}` leaves the folder it must stay in", .0.display())]
    Leaves(PathBuf),
    #[error("cannot inspect `{}`: {source}", path.display())]
    Uninspectable { path: PathBuf, source: std::io::Error },
    #[error("`{}` is a symlink", .0.display())]
    Symlink(PathBuf),
    #[error("`{}` is {kind}", path.display())]
    Special { path: PathBuf, kind: &'static str },
}

/// Whether `top/rel` could be written by [`write_beneath`] or made by
/// [`create_dir_beneath`]: the first component below `top` that is a symlink, or that is
/// neither a folder nor (for the last one) a regular file, as a reason for a blocked plan.
/// Components that do not exist yet are fine.
pub fn check_beneath(top: &Path, rel: &Path) -> Result<(), Unsafe> {
    let Some(parts) = components(rel) else {
        return Err(Unsafe::Leaves(rel.to_owned()));
    };
    let mut walked = PathBuf::new();
    let count = parts.len();
    for (i, name) in parts.into_iter().enumerate() {
        walked.push(name);
        let meta = match std::fs::symlink_metadata(top.join(&walked)) {
            Ok(m) => m,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(source) => return Err(Unsafe::Uninspectable { path: walked, source }),
        };
        let file_type = meta.file_type();
        let last = i + 1 == count;
        if file_type.is_symlink() {
            return Err(Unsafe::Symlink(walked));
        }
        if !(file_type.is_dir() || last && file_type.is_file()) {
            return Err(Unsafe::Special {
                path: walked,
                kind: kind_of(file_type),
            });
        }
    }
    Ok(())
}

fn temporary_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .permissions(std::fs::Permissions::from_mode(FILE_MODE))
        .tempfile_in(dir)
}

/// Refuse to replace `path` when it is a symlink or anything but a regular file.
fn check_target(path: &Path) -> Result<(), RepoError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => Ok(()),
        Ok(meta) => Err(refuse(path, path, &format!("is {}", kind_of(meta.file_type())))),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(RepoError::io("inspect", path, e)),
    }
}

/// Write `bytes` to `path` atomically: a temporary file in the same folder, synced, then
/// renamed over the target. Creates the parent folder. Refuses a target that is a symlink or
/// a special file; the new file's mode honours the umask.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| RepoError::io("create", dir, e))?;
    check_target(path)?;
    let mut tmp = temporary_in(dir).map_err(|e| RepoError::io("create a temporary file in", dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| RepoError::io("write", tmp.path(), e))?;
    tmp.persist(path).map_err(|e| RepoError::io("replace", path, e.error))?;
    Ok(())
}

/// Like [`write_atomic`], but fails with `AlreadyExists` instead of replacing a file that is
/// there (a dangling symlink included): the check and the rename are one step, so a file
/// made meanwhile is not lost.
pub fn write_new_atomic(path: &Path, bytes: &[u8]) -> Result<(), std::io::Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = temporary_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    Ok(())
}

/// `path` is a real, empty folder (not a symlink to one): what git and flowloom may check
/// out or move into. A symlink to an empty folder elsewhere is a folder in the way.
pub fn is_empty_folder(path: &Path) -> bool {
    path.symlink_metadata().is_ok_and(|m| m.is_dir()) && std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
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
pub fn normalise(path: &Path) -> PathBuf {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo");
        assert!(status.success());
    }

    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .expect("Umask line");
        u32::from_str_radix(line.trim(), 8).expect("octal")
    }

    #[test]
    fn reads_regular_files_and_refuses_everything_else() {
        let t = tmp();
        let file = t.path().join("f");
        std::fs::write(&file, b"hello").expect("write");
        assert_eq!(read_regular(&file, 5).expect("read"), Some(b"hello".to_vec()));
        assert!(matches!(read_regular(&file, 4), Err(ReadError::TooLarge { max: 4 })));
        assert_eq!(read_regular(&t.path().join("none"), 5).expect("missing"), None);
        symlink(&file, t.path().join("link")).expect("symlink");
        assert!(matches!(
            read_regular(&t.path().join("link"), 5),
            Err(ReadError::Symlink)
        ));
        symlink("nowhere", t.path().join("dangling")).expect("symlink");
        assert!(matches!(
            read_regular(&t.path().join("dangling"), 5),
            Err(ReadError::Symlink)
        ));
        assert!(matches!(
            read_regular(t.path(), 5),
            Err(ReadError::NotRegular { kind: "a directory" })
        ));
        let fifo = t.path().join("fifo");
        mkfifo(&fifo);
        assert!(matches!(
            read_regular(&fifo, 5),
            Err(ReadError::NotRegular { kind: "a FIFO" })
        ));
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), 5),
            Err(ReadError::NotRegular {
                kind: "a character device"
            })
        ));
    }

    #[test]
    fn reads_beneath_refuse_symlinked_folders() {
        let t = tmp();
        std::fs::create_dir_all(t.path().join("real/s")).expect("mkdir");
        std::fs::write(t.path().join("real/s/m.json"), b"{}").expect("write");
        let rel = Path::new("s/m.json");
        assert_eq!(
            read_regular_beneath(&t.path().join("real"), rel, 10).expect("read"),
            Some(b"{}".to_vec())
        );
        std::fs::create_dir(t.path().join("top")).expect("mkdir");
        symlink(t.path().join("real/s"), t.path().join("top/s")).expect("symlink");
        assert!(matches!(
            read_regular_beneath(&t.path().join("top"), rel, 10),
            Err(ReadError::Parent {
                problem: "is a symlink",
                ..
            })
        ));
        assert_eq!(
            read_regular_beneath(&t.path().join("real"), Path::new("x/y"), 10).expect("missing"),
            None
        );
        mkfifo(&t.path().join("real/s/fifo"));
        assert!(matches!(
            read_regular_beneath(&t.path().join("real"), Path::new("s/fifo"), 10),
            Err(ReadError::NotRegular { kind: "a FIFO" })
        ));
    }

    #[test]
    fn writes_beneath_a_plain_folder_with_the_umask_mode() {
        let t = tmp();
        write_beneath(t.path(), Path::new("a/b/c.json"), b"one").expect("write");
        write_beneath(t.path(), Path::new("a/b/c.json"), b"two").expect("rewrite");
        let file = t.path().join("a/b/c.json");
        assert_eq!(std::fs::read(&file).expect("read"), b"two");
        let mode = std::fs::metadata(&file).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask());
        let names: Vec<_> = std::fs::read_dir(t.path().join("a/b")).expect("ls").flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
        assert_eq!(
            create_dir_beneath(t.path(), Path::new("a/d")).expect("mkdir"),
            t.path().join("a/d")
        );
        assert!(t.path().join("a/d").is_dir());
        assert!(check_beneath(t.path(), Path::new("a/b/c.json")).is_ok());
        assert!(check_beneath(t.path(), Path::new("a/new/x")).is_ok());
    }

    #[test]
    fn writes_refuse_symlinked_parents_targets_and_special_files() {
        let t = tmp();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        let top = t.path().join("top");
        std::fs::create_dir(&top).expect("mkdir");
        symlink(&outside, top.join("s")).expect("symlink");
        assert!(write_beneath(&top, Path::new("s/x/m.json"), b"x").is_err());
        assert!(create_dir_beneath(&top, Path::new("s/x")).is_err());
        assert!(!outside.join("x").exists(), "nothing written through the symlink");
        assert_eq!(
            check_beneath(&top, Path::new("s/x")).map_err(|e| e.to_string()),
            Err("`s` is a symlink".to_owned())
        );

        std::fs::write(outside.join("target"), b"keep").expect("write");
        symlink(outside.join("target"), top.join("link")).expect("symlink");
        assert!(write_beneath(&top, Path::new("link"), b"x").is_err());
        assert!(write_atomic(&top.join("link"), b"x").is_err());
        assert_eq!(std::fs::read(outside.join("target")).expect("read"), b"keep");
        assert!(top.join("link").is_symlink());

        symlink("nowhere", top.join("dangling")).expect("symlink");
        assert!(write_beneath(&top, Path::new("dangling"), b"x").is_err());
        assert!(write_atomic(&top.join("dangling"), b"x").is_err());
        assert!(!top.join("nowhere").exists());

        mkfifo(&top.join("fifo"));
        assert!(write_beneath(&top, Path::new("fifo"), b"x").is_err());
        assert!(write_atomic(&top.join("fifo"), b"x").is_err());
        assert_eq!(
            check_beneath(&top, Path::new("fifo")).map_err(|e| e.to_string()),
            Err("`fifo` is a FIFO".to_owned())
        );

        std::fs::write(top.join("file"), b"").expect("write");
        assert!(write_beneath(&top, Path::new("file/x"), b"x").is_err());
        assert!(check_beneath(&top, Path::new("file/x")).is_err());
        assert!(write_beneath(&top, Path::new("../escape"), b"x").is_err());
    }

    #[test]
    fn atomic_writes_honour_the_umask() {
        let t = tmp();
        let file = t.path().join("d/record.json");
        write_atomic(&file, b"{}").expect("write");
        let mode = std::fs::metadata(&file).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask());
        write_new_atomic(&t.path().join("d/new"), b"x").expect("write new");
        let mode = std::fs::metadata(t.path().join("d/new"))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o666 & !umask());
    }
}
