//! Reading a tree folder by folder, each opened from its parent's descriptor: no path is
//! ever longer than one name, so a tree deeper than `PATH_MAX` (4,096 bytes) is read whole,
//! and a symlink below the top is never followed. The checks before a removal (stamps,
//! nested repositories) walk this way, so that what they see is what the deletion, which
//! works the same way, deletes.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

/// A folder of a walk: its path relative to the top, and its parent's open descriptor.
#[derive(Debug, Clone, Default)]
pub struct Folder {
    pub rel: PathBuf,
    parent: Option<Arc<OwnedFd>>,
}

impl Folder {
    /// Open this folder, never through a symlink below `top` (the top is the caller's to
    /// vouch for). Out of descriptors, it falls back to the whole path.
    pub fn open(&self, top: &Path) -> std::io::Result<Arc<OwnedFd>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let (Some(parent), Some(name)) = (&self.parent, self.rel.file_name()) else {
            return Ok(Arc::new(rustix::fs::open(top, flags, Mode::empty())?));
        };
        match rustix::fs::openat(parent.as_fd(), name, flags | OFlags::NOFOLLOW, Mode::empty()) {
            Ok(fd) => Ok(Arc::new(fd)),
            Err(Errno::MFILE | Errno::NFILE) => Ok(Arc::new(rustix::fs::open(
                top.join(&self.rel),
                flags | OFlags::NOFOLLOW,
                Mode::empty(),
            )?)),
            Err(e) => Err(e.into()),
        }
    }

    /// The folder `name` inside this one, open as `fd`.
    pub fn child(&self, fd: &Arc<OwnedFd>, name: &OsStr) -> Folder {
        Folder {
            rel: self.rel.join(name),
            parent: Some(Arc::clone(fd)),
        }
    }
}

/// The names in the open folder `fd` (but `.` and `..`) with their kind as the folder
/// lists it (`Unknown` on file systems that do not say).
pub fn entries(fd: &OwnedFd) -> std::io::Result<Vec<(OsString, FileType)>> {
    let mut out = Vec::new();
    for entry in Dir::read_from(fd.as_fd())? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push((OsStr::from_bytes(name).to_owned(), entry.file_type()));
        }
    }
    Ok(out)
}

/// `lstat` of `name` in the open folder `fd`.
pub fn stat_at(fd: &OwnedFd, name: &OsStr) -> std::io::Result<rustix::fs::Stat> {
    Ok(rustix::fs::statat(fd.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW)?)
}

/// The kind of `name` in `fd`: as listed, or from its `lstat` where the listing does not say.
pub fn kind_at(fd: &OwnedFd, name: &OsStr, listed: FileType) -> Option<FileType> {
    if listed != FileType::Unknown {
        return Some(listed);
    }
    stat_at(fd, name).ok().map(|s| FileType::from_raw_mode(s.st_mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_deeper_than_path_max_is_read_whole() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut dir = tmp.path().to_owned();
        let fd = |p: &Path| rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).expect("open");
        // 3,000 levels, made from each parent's descriptor (the whole path is too long).
        let mut parent = fd(&dir);
        for _ in 0..3000 {
            rustix::fs::mkdirat(&parent, "d", Mode::from_raw_mode(0o755)).expect("mkdir");
            parent = rustix::fs::openat(&parent, "d", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).expect("open");
        }
        dir.push("unused");
        let mut folder = Folder::default();
        let mut depth = 0;
        loop {
            let open = folder.open(tmp.path()).expect("open");
            let list = entries(&open).expect("list");
            let Some((name, _)) = list.first() else { break };
            folder = folder.child(&open, name);
            depth += 1;
        }
        assert_eq!(depth, 3000);
        assert!(folder.rel.as_os_str().len() > 4096);
    }
}
