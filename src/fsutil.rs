//! Small filesystem helpers shared by the writers.

use std::io::Write;
use std::path::Path;

use crate::error::RepoError;

/// What the temporary files of the atomic writes are called: a kill between write and
/// rename leaves one, which a later apply recognises as its own (`recover`).
pub const TMP_PREFIX: &str = ".flowloom-tmp-";

fn temporary_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new().prefix(TMP_PREFIX).tempfile_in(dir)
}

/// Write `bytes` to `path` atomically: a temporary file in the same folder, synced, then
/// renamed over the target. Creates the parent folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| RepoError::io("create", dir, e))?;
    let mut tmp = temporary_in(dir).map_err(|e| RepoError::io("create a temporary file in", dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| RepoError::io("write", tmp.path(), e))?;
    tmp.persist(path).map_err(|e| RepoError::io("replace", path, e.error))?;
    Ok(())
}

/// Like [`write_atomic`], but fails with `AlreadyExists` instead of replacing a file that is
/// there: the check and the rename are one step, so a file made meanwhile is not lost.
pub fn write_new_atomic(path: &Path, bytes: &[u8]) -> Result<(), std::io::Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = temporary_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    Ok(())
}
