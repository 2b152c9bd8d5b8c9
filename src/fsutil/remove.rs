//! Deleting a whole folder on several threads, never through a symlink.
//!
//! A removal's last step deletes a worktree of thousands of files; one thread spends its
//! time in the kernel, one `unlink` after the other, while another core idles. Here the
//! folder's first levels are split into subtrees that the threads take from one queue.
//! Every folder is opened from its parent's descriptor with `O_NOFOLLOW` and every entry
//! deleted relative to its folder's descriptor (as the standard library's
//! `remove_dir_all`), so a symlink swapped in anywhere below the top is deleted as a link,
//! never followed; the top itself is the caller's to vouch for.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

/// How many threads delete: the work is the kernel's, so a few cores are all it can use.
const THREADS: usize = 4;

/// Split the first levels until there are this many subtrees per thread (or the levels run
/// out), so that one big subtree does not leave the other threads idle.
const UNITS_PER_THREAD: usize = 8;
const SPLIT_LEVELS: usize = 3;

/// An entry to delete: its name in the folder open as `parent`.
struct Unit {
    parent: Arc<OwnedFd>,
    name: CString,
    kind: FileType,
}

/// Delete the folder `top` and everything in it. On an error, what could go is gone and
/// the first error is returned (the caller may make folders writable and try again).
pub fn remove_tree(top: &Path) -> std::io::Result<()> {
    let root = Arc::new(open_dir(rustix::fs::CWD, top)?);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(THREADS));
    let mut units = entries(&root)?;
    // Folders whose entries became units: deleted once those are, deepest first.
    let mut split = Vec::new();
    for _ in 0..SPLIT_LEVELS {
        if threads < 2 || units.len() >= threads * UNITS_PER_THREAD {
            break;
        }
        let mut next = Vec::new();
        for unit in units {
            match open_unit(&unit)? {
                Some(fd) => {
                    next.extend(entries(&Arc::new(fd))?);
                    split.push(unit);
                }
                None => next.push(unit),
            }
        }
        units = next;
    }
    let queue = Mutex::new(units);
    let first_error: Mutex<Option<std::io::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some(unit) = queue.lock().ok().and_then(|mut q| q.pop()) {
                    if let Err(e) = remove_unit(&unit)
                        && let Ok(mut first) = first_error.lock()
                    {
                        first.get_or_insert(e);
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }
    for unit in split.iter().rev() {
        gone_is_fine(rustix::fs::unlinkat(
            unit.parent.as_fd(),
            unit.name.as_c_str(),
            AtFlags::REMOVEDIR,
        ))?;
    }
    drop(root);
    std::fs::remove_dir(top)
}

/// Open a folder without following a symlink.
fn open_dir<Fd: AsFd>(parent: Fd, name: impl rustix::path::Arg) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The unit as an open folder, `None` when it is anything else (or a folder no longer).
fn open_unit(unit: &Unit) -> std::io::Result<Option<OwnedFd>> {
    if !matches!(unit.kind, FileType::Directory | FileType::Unknown) {
        return Ok(None);
    }
    match open_dir(unit.parent.as_fd(), unit.name.as_c_str()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOTDIR | Errno::LOOP | Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The entries of the open folder `dir`, but `.` and `..`.
fn entries(dir: &Arc<OwnedFd>) -> std::io::Result<Vec<Unit>> {
    let mut out = Vec::new();
    for entry in Dir::read_from(dir.as_fd())? {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        out.push(Unit {
            parent: Arc::clone(dir),
            name: name.to_owned(),
            kind: entry.file_type(),
        });
    }
    Ok(out)
}

fn remove_unit(unit: &Unit) -> std::io::Result<()> {
    remove_at(unit.parent.as_fd(), &unit.name, unit.kind)
}

/// Delete `name` in the folder `parent`: a folder with everything in it, anything else
/// (a symlink included) as itself.
fn remove_at(parent: BorrowedFd<'_>, name: &CStr, kind: FileType) -> std::io::Result<()> {
    let folder = match kind {
        FileType::Directory | FileType::Unknown => match open_dir(parent, name) {
            Ok(fd) => Some(fd),
            Err(Errno::NOTDIR | Errno::LOOP) => None,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        },
        _ => None,
    };
    let Some(fd) = folder else {
        return gone_is_fine(rustix::fs::unlinkat(parent, name, AtFlags::empty()));
    };
    let mut dir = Dir::new(fd)?;
    let mut children = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let child = entry.file_name();
        if child != c"." && child != c".." {
            children.push((child.to_owned(), entry.file_type()));
        }
    }
    let fd = dir.fd()?;
    for (child, kind) in &children {
        remove_at(fd, child, *kind)?;
    }
    gone_is_fine(rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR))
}

/// An entry already gone is what was wanted.
fn gone_is_fine(result: rustix::io::Result<()>) -> std::io::Result<()> {
    match result {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_everything_and_follows_no_symlink() {
        let tmp = tempfile::tempdir().expect("tmp");
        let keep = tmp.path().join("keep");
        std::fs::create_dir_all(keep.join("inside")).expect("keep");
        std::fs::write(keep.join("inside/file"), "kept").expect("file");
        let top = tmp.path().join("top");
        for i in 0..40 {
            let dir = top.join(format!("d{}/e{}/f{i}", i % 3, i % 5));
            std::fs::create_dir_all(&dir).expect("dir");
            std::fs::write(dir.join("file"), "x").expect("file");
        }
        std::os::unix::fs::symlink(&keep, top.join("d0/link")).expect("link");
        std::os::unix::fs::symlink(keep.join("inside/file"), top.join("d1/e1/flink")).expect("link");
        std::fs::create_dir_all(top.join("empty/deeper")).expect("empty");
        remove_tree(&top).expect("removed");
        assert!(!top.exists());
        assert_eq!(std::fs::read_to_string(keep.join("inside/file")).expect("kept"), "kept");
    }

    #[test]
    fn a_folder_that_cannot_be_emptied_is_an_error_and_the_rest_goes() {
        use std::os::unix::fs::PermissionsExt;
        if rustix::process::geteuid().is_root() {
            return; // root deletes from a read-only folder
        }
        let tmp = tempfile::tempdir().expect("tmp");
        let top = tmp.path().join("top");
        std::fs::create_dir_all(top.join("locked")).expect("dir");
        std::fs::write(top.join("locked/file"), "x").expect("file");
        std::fs::write(top.join("free"), "x").expect("file");
        std::fs::set_permissions(top.join("locked"), std::fs::Permissions::from_mode(0o555)).expect("chmod");
        assert!(remove_tree(&top).is_err());
        assert!(top.join("locked/file").exists());
        std::fs::set_permissions(top.join("locked"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}
