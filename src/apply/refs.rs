//! Deleting a branch without losing anyone else's refs.
//!
//! gix rewrites `packed-refs` from a buffer it read *before* taking `packed-refs.lock`, and
//! judges that buffer fresh by modification time alone; a `git pack-refs` (which `gc
//! --auto` runs by itself) finishing in between loses the refs it had just packed. So
//! flowloom deletes a branch as git does: it takes the branch's lock and
//! `packed-refs.lock` first, then reads both stores, compares the branch with the commit
//! the plan saw, rewrites `packed-refs` without it, and deletes the loose file and the
//! reflog.

use std::io::Write;
use std::path::{Path, PathBuf};

use gix::lock::acquire::Fail;

use crate::error::RepoError;

/// Why a branch was not deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("branch `{branch}` moved to {found} since the plan saw it at {expected}; it was kept")]
    Moved {
        branch: String,
        expected: String,
        found: String,
    },
    #[error("branch `{branch}` is a symbolic ref; it was kept")]
    Symbolic { branch: String },
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// How long to wait for a lock a git command holds (git's own default for `packed-refs`).
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// The lock files a deletion of `branch` takes (for the intent a kill leaves behind).
pub fn delete_locks(common_dir: &Path, branch: &str) -> Vec<PathBuf> {
    vec![
        lock_of(&loose_path(common_dir, branch)),
        common_dir.join("packed-refs.lock"),
    ]
}

fn loose_path(common_dir: &Path, branch: &str) -> PathBuf {
    common_dir.join(crate::names::branch_ref(branch))
}

fn lock_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Delete `refs/heads/<branch>` if it points at `expected` (a full hex object id); `None`
/// when it was already gone.
pub fn delete_branch(common_dir: &Path, branch: &str, expected: &str) -> Result<(), DeleteError> {
    let full = crate::names::branch_ref(branch);
    let loose = loose_path(common_dir, branch);
    let io = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |e: std::io::Error| RepoError::io(what, &path, e)
    };
    let _ref_lock = gix::lock::Marker::acquire_to_hold_resource(
        &loose,
        Fail::AfterDurationWithBackoff(PATIENCE),
        Some(common_dir.join("refs")),
        0,
    )
    .map_err(|e| RepoError::git("lock", &loose, e))?;
    let packed_path = common_dir.join("packed-refs");
    let mut packed_lock =
        gix::lock::File::acquire_to_update_resource(&packed_path, Fail::AfterDurationWithBackoff(PATIENCE), None, 0)
            .map_err(|e| RepoError::git("lock", &packed_path, e))?;
    // Both locks held: neither store can change under us now.
    let loose_value = match std::fs::symlink_metadata(&loose) {
        Ok(m) if m.is_file() => Some(std::fs::read_to_string(&loose).map_err(io("read", &loose))?),
        Ok(_) => {
            return Err(DeleteError::Symbolic {
                branch: branch.to_owned(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(RepoError::io("read", &loose, e).into()),
    };
    let packed_text = match std::fs::read(&packed_path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(RepoError::io("read", &packed_path, e).into()),
    };
    let packed_value = packed_text.as_deref().and_then(|t| packed_lookup(t, &full));
    let current = match &loose_value {
        Some(v) if v.trim_start().starts_with("ref:") => {
            return Err(DeleteError::Symbolic {
                branch: branch.to_owned(),
            });
        }
        Some(v) => Some(v.trim().to_owned()),
        None => packed_value.clone(),
    };
    let Some(current) = current else {
        return Ok(());
    };
    if current != expected {
        return Err(DeleteError::Moved {
            branch: branch.to_owned(),
            expected: expected.to_owned(),
            found: current,
        });
    }
    if let (Some(text), Some(_)) = (&packed_text, &packed_value) {
        let rewritten = packed_without(text, &full);
        packed_lock
            .with_mut(|f| f.write_all(&rewritten))
            .map_err(io("write", &packed_path))?;
        packed_lock
            .commit()
            .map_err(|e| RepoError::io("replace", &packed_path, e.error))?;
        crate::fsutil::shared::adjust(&packed_path);
    } else {
        drop(packed_lock);
    }
    match std::fs::remove_file(&loose) {
        Ok(()) => remove_empty_parents(&loose, &common_dir.join("refs/heads")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(RepoError::io("delete", &loose, e).into()),
    }
    let log = common_dir.join("logs").join(&full);
    if std::fs::remove_file(&log).is_ok() {
        remove_empty_parents(&log, &common_dir.join("logs/refs/heads"));
    }
    Ok(())
}

/// The object id `packed-refs` records for `full`.
fn packed_lookup(text: &[u8], full: &str) -> Option<String> {
    text.split(|b| *b == b'\n').find_map(|line| {
        let line = std::str::from_utf8(line).ok()?;
        let (id, name) = line.split_once(' ')?;
        (name == full && !line.starts_with('#') && !line.starts_with('^')).then(|| id.to_owned())
    })
}

/// `packed-refs` without `full` and its peeled line; everything else byte for byte.
fn packed_without(text: &[u8], full: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut skipping = false;
    for line in text.split_inclusive(|b| *b == b'\n') {
        if skipping && line.starts_with(b"^") {
            continue;
        }
        skipping = false;
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let is_it = body
            .iter()
            .position(|b| *b == b' ')
            .is_some_and(|i| &body[i + 1..] == full.as_bytes() && !body.starts_with(b"#"));
        if is_it {
            skipping = true;
            continue;
        }
        out.extend_from_slice(line);
    }
    out
}

/// Remove the now empty folders between `file` and `top`, as git does.
pub fn remove_empty_parents(file: &Path, top: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == top || !d.starts_with(top) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_refs_lose_only_the_deleted_ref_and_its_peeled_line() {
        let text = b"# pack-refs with: peeled fully-peeled sorted \n\
1111111111111111111111111111111111111111 refs/heads/a\n\
2222222222222222222222222222222222222222 refs/heads/session/x\n\
^3333333333333333333333333333333333333333\n\
4444444444444444444444444444444444444444 refs/heads/session/x2\n";
        assert_eq!(
            packed_lookup(text, "refs/heads/session/x").as_deref(),
            Some("2222222222222222222222222222222222222222")
        );
        let out = String::from_utf8(packed_without(text, "refs/heads/session/x")).expect("utf8");
        assert_eq!(
            out,
            "# pack-refs with: peeled fully-peeled sorted \n\
1111111111111111111111111111111111111111 refs/heads/a\n\
4444444444444444444444444444444444444444 refs/heads/session/x2\n"
        );
        assert_eq!(packed_lookup(text, "refs/heads/nope"), None);
    }
}
