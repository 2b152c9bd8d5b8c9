//! Saved plans (`plan --out`), read back for `apply FILE` and `show FILE`: the file is
//! refused when it is not a regular file or too large, and its `saved` field (whose layout
//! `plan::saved` defines) is read back whole, or not at all.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// The largest saved plan `apply FILE` reads: a plan of tens of thousands of sessions fits.
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Why a file is not read as a saved plan. `file` is named as the user wrote it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: there is no such file", file.display())]
    Missing { file: PathBuf },
    #[error("cannot read {}: {why}", file.display())]
    Io {
        file: PathBuf,
        why: crate::fsutil::ReadError,
    },
    #[error("refusing to read {}: {why}", file.display())]
    Refused {
        file: PathBuf,
        why: crate::fsutil::ReadError,
    },
    #[error("{} is not a saved flowloom plan: {why}", file.display())]
    NotJson { file: PathBuf, why: serde_json::Error },
    #[error("{} is not a saved flowloom plan: it has no `saved` field", file.display())]
    NotSaved { file: PathBuf },
    #[error("{} was saved by another version of flowloom (saved plan version {found}; this one reads {reads})", file.display())]
    OtherVersion { file: PathBuf, found: u64, reads: u32 },
    #[error("{} is not a saved flowloom plan: its `saved` field is not valid: {why}", file.display())]
    Invalid { file: PathBuf, why: serde_json::Error },
}

/// Read a saved plan's `saved` field as `T`: a regular file (not a symlink, FIFO or device)
/// of at most [`MAX_BYTES`], whose `saved` field has the layout `version`, and reads back
/// whole. `file` names it in errors.
pub fn read<T: DeserializeOwned>(path: &Path, file: &Path, version: u32) -> Result<T, ReadError> {
    let file = file.to_owned();
    let bytes = match crate::fsutil::read_regular(path, MAX_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(ReadError::Missing { file }),
        Err(why @ crate::fsutil::ReadError::Io(_)) => return Err(ReadError::Io { file, why }),
        Err(why) => return Err(ReadError::Refused { file, why }),
    };
    let mut doc: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(doc) => doc,
        Err(why) => return Err(ReadError::NotJson { file, why }),
    };
    let Some(saved) = doc
        .get_mut("saved")
        .filter(|s| s.is_object())
        .map(serde_json::Value::take)
    else {
        return Err(ReadError::NotSaved { file });
    };
    let found = saved.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0);
    if found != u64::from(version) {
        return Err(ReadError::OtherVersion {
            file,
            found,
            reads: version,
        });
    }
    serde_json::from_value(saved).map_err(|why| ReadError::Invalid { file, why })
}
