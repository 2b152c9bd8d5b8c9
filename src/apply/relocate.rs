//! SPEC §11.3 moves: a session's worktree goes to its new path as `git worktree move` takes
//! it there. On one file system the folder is renamed (every file in it, uncommitted and
//! ignored ones too, with its inodes); across file systems it is copied beside the target,
//! compared entry by entry with the original, and only then renamed into place (the
//! original is deleted after the registration points at the copy). The registration's
//! `gitdir` and the worktree's `.git` are then written as git writes them.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::RepoError;

/// Where a copy across file systems is made before it is renamed into place: beside the
/// target, so that the last step is one rename.
pub fn staging(to: &Path) -> PathBuf {
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    to.with_file_name(format!(".{name}.flowloom-moving"))
}

/// Take the folder `from` to `to` (which is absent or an empty folder): a rename, or with
/// `across` (or when the rename finds another file system) a verified copy.
pub fn relocate(from: &Path, to: &Path, across: bool) -> Result<(), RepoError> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| RepoError::io("create", parent, e))?;
    }
    if crate::fsutil::is_empty_folder(to) {
        std::fs::remove_dir(to).map_err(|e| RepoError::io("replace the empty folder", to, e))?;
    }
    if !across {
        match std::fs::rename(from, to) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {}
            Err(e) => return Err(RepoError::io("move", from, e)),
        }
    }
    copy_verified(from, to)
}

/// Copy `from` into a staging folder beside `to`, compare the two, rename it to `to`.
fn copy_verified(from: &Path, to: &Path) -> Result<(), RepoError> {
    let stage = staging(to);
    if stage.symlink_metadata().is_ok() {
        std::fs::remove_dir_all(&stage).map_err(|e| RepoError::io("delete", &stage, e))?;
    }
    std::fs::create_dir(&stage).map_err(|e| RepoError::io("create", &stage, e))?;
    let mode = std::fs::symlink_metadata(from)
        .map_err(|e| RepoError::io("read", from, e))?
        .mode();
    let mut items = Vec::new();
    for entry in std::fs::read_dir(from).map_err(|e| RepoError::io("read", from, e))? {
        let entry = entry.map_err(|e| RepoError::io("read", from, e))?;
        let dir = entry.file_type().is_ok_and(|t| t.is_dir());
        items.push(crate::apply::copy::CopyItem {
            path: entry.file_name().to_string_lossy().into_owned(),
            dir,
        });
    }
    let never = std::sync::atomic::AtomicBool::new(false);
    let copied = crate::apply::copy::copy_into(from, &stage, &items, &never, None);
    let failed = match (copied.failed.first(), first_difference(from, &stage)) {
        (Some((path, why)), _) => Some(format!("could not copy {path} to the other file system ({why})")),
        // What a copy skips: a FIFO, a socket, a device (a running server's socket, say).
        (None, Some(path)) => Some(format!(
            "{path} cannot be copied to the other file system (a FIFO, socket or device, or it changed during the copy)"
        )),
        (None, None) => None,
    };
    if let Some(why) = failed {
        // The copy is flowloom's own and the worktree is untouched: nothing half-made stays.
        let _ = super::trash::delete_tree(&stage);
        return Err(RepoError::message(format!(
            "{why}; the worktree was left where it is, at {}: move what is in the way out of it, or keep `root` on its file system",
            from.display()
        )));
    }
    let _ = std::fs::set_permissions(&stage, std::fs::Permissions::from_mode(mode & 0o7777));
    std::fs::rename(&stage, to).map_err(|e| RepoError::io("move", &stage, e))
}

/// The first entry (relative path) where the trees `a` and `b` differ — kind, mode, size,
/// symlink target or bytes; the worktree's own `.git` at the top is not compared (it is
/// written afresh). `None` when they hold the same.
pub fn first_difference(a: &Path, b: &Path) -> Option<String> {
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let names = |dir: &Path| -> Option<Vec<std::ffi::OsString>> {
            let mut names: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().map(|e| e.file_name()).collect();
            names.retain(|n| !(rel.as_os_str().is_empty() && n == ".git"));
            names.sort();
            Some(names)
        };
        let (left, right) = (names(&a.join(&rel)), names(&b.join(&rel)));
        if left.is_none() || left != right {
            // The first name one side has and the other lacks.
            let (l, r) = (left.unwrap_or_default(), right.unwrap_or_default());
            let odd = l
                .iter()
                .find(|n| !r.contains(n))
                .or_else(|| r.iter().find(|n| !l.contains(n)));
            return Some(odd.map_or(rel.clone(), |n| rel.join(n)).to_string_lossy().into_owned());
        }
        for name in left.unwrap_or_default() {
            let child = rel.join(&name);
            match same_entry(&a.join(&child), &b.join(&child)) {
                Some(true) => pending.push(child),
                Some(false) => {}
                None => return Some(child.to_string_lossy().into_owned()),
            }
        }
    }
    None
}

/// `Some(true)`: two folders (to compare inside); `Some(false)`: the same non-folder;
/// `None`: they differ.
fn same_entry(a: &Path, b: &Path) -> Option<bool> {
    let (ma, mb) = (std::fs::symlink_metadata(a).ok()?, std::fs::symlink_metadata(b).ok()?);
    let (ta, tb) = (ma.file_type(), mb.file_type());
    if (ma.mode() & 0o7777) != (mb.mode() & 0o7777) && !ta.is_symlink() {
        return None;
    }
    if ta.is_dir() && tb.is_dir() {
        return Some(true);
    }
    if ta.is_symlink() && tb.is_symlink() {
        return (std::fs::read_link(a).ok()? == std::fs::read_link(b).ok()?).then_some(false);
    }
    if ta.is_file() && tb.is_file() && ma.len() == mb.len() {
        return same_bytes(a, b).then_some(false);
    }
    None
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    let (Ok(mut fa), Ok(mut fb)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
        return false;
    };
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        match (fill(&mut fa, &mut ba), fill(&mut fb, &mut bb)) {
            (Ok(na), Ok(nb)) if na == nb && ba.get(..na) == bb.get(..nb) => {
                if na == 0 {
                    return true;
                }
            }
            _ => return false,
        }
    }
}

/// Read until `buf` is full or the file ends; how many bytes were read.
fn fill(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut at = 0;
    while at < buf.len() {
        match file.read(buf.get_mut(at..).unwrap_or_default())? {
            0 => break,
            n => at += n,
        }
    }
    Ok(at)
}

/// Point the registration `<common>/worktrees/<admin_id>` at the worktree now at `to`, as
/// `git worktree move` does: its `gitdir` file names `<to>/.git`, and the worktree's `.git`
/// file names the registration (absolute, git's default).
pub fn point_registration(common_dir: &Path, admin_id: &str, to: &Path) -> Result<(), RepoError> {
    let admin = common_dir.join("worktrees").join(admin_id);
    let gitdir = format!("{}\n", to.join(".git").display());
    crate::fsutil::write_atomic(&admin.join("gitdir"), gitdir.as_bytes())?;
    let link = format!("gitdir: {}\n", admin.display());
    let dot_git = to.join(".git");
    let current = crate::fsutil::read_regular_beneath(to, Path::new(".git"), 1 << 16)
        .ok()
        .flatten();
    if current.as_deref() != Some(link.as_bytes()) {
        crate::fsutil::write_atomic(&dot_git, link.as_bytes())?;
    }
    Ok(())
}

/// Where the registration's `gitdir` says its worktree is (the folder holding `.git`).
pub fn registered_path(common_dir: &Path, admin_id: &str) -> Option<PathBuf> {
    let admin = common_dir.join("worktrees").join(admin_id);
    let text = crate::fsutil::read_regular_beneath(&admin, Path::new("gitdir"), 1 << 16)
        .ok()
        .flatten()?;
    let text = String::from_utf8(text).ok()?;
    Path::new(text.trim_end_matches(['\n', '\r']))
        .parent()
        .map(crate::fsutil::normalise)
}

/// The lock reason of the registration, when `git worktree lock` locked it.
pub fn lock_of(common_dir: &Path, admin_id: &str) -> Option<String> {
    let admin = common_dir.join("worktrees").join(admin_id);
    crate::fsutil::read_regular_beneath(&admin, Path::new("locked"), 1 << 16)
        .ok()
        .flatten()
        .map(|t| String::from_utf8_lossy(&t).trim().to_owned())
}
