//! The ownership record (SPEC §3): every session flowloom created or adopted, kept in
//! `<git common dir>/flowloom/owned.json`. Only owned sessions can ever become orphans and
//! be removed; losing the record makes sessions unmanaged, never removed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::RepoError;

const DIR: &str = "flowloom";
const FILE: &str = "owned.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub sessions: Vec<OwnedSession>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedSession {
    pub id: String,
    pub branch: String,
    /// Absolute worktree path, as flowloom made it.
    pub path: PathBuf,
    /// The revspec the branch was started from: an orphan's branch is merged when its
    /// commits are reachable from this (or from its upstream).
    pub base: String,
    /// `creating` until every part of the session exists, `removing` from the moment its
    /// worktree starts being deleted: a crash in between leaves a record that says the
    /// half-made (or half-deleted) parts are flowloom's own doing.
    pub state: OwnedState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OwnedState {
    Creating,
    Created,
    /// Its worktree is being deleted: files missing from it are flowloom's doing.
    Removing,
}

impl Record {
    pub fn path(common_dir: &Path) -> PathBuf {
        common_dir.join(DIR).join(FILE)
    }

    /// Read the record; a missing one is empty. A corrupt one is an error: guessing would
    /// either forget sessions (harmless) or invent owners (dangerous), so the user decides.
    pub fn read(common_dir: &Path) -> Result<Record, RepoError> {
        let path = Record::path(common_dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Record::default()),
            Err(e) => return Err(RepoError::io("read the ownership record", &path, e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| RepoError::CorruptRecord {
            path,
            reason: e.to_string(),
        })
    }

    /// Write atomically (write-then-rename) so that a killed apply leaves the old or the new
    /// record, never half of one.
    pub fn write(&self, common_dir: &Path) -> Result<(), RepoError> {
        let path = Record::path(common_dir);
        let mut record = self.clone();
        record.version = 1;
        record
            .sessions
            .sort_by(|a, b| a.id.cmp(&b.id).then(a.path.cmp(&b.path)));
        let mut text = serde_json::to_string_pretty(&record).expect("the record serialises");
        text.push('\n');
        crate::fsutil::write_atomic(&path, text.as_bytes())
    }

    pub fn by_path(&self, path: &Path) -> Option<&OwnedSession> {
        self.sessions.iter().find(|o| o.path == path)
    }

    /// Insert or replace the entry for the same path.
    pub fn upsert(&mut self, entry: OwnedSession) {
        self.sessions.retain(|o| o.path != entry.path);
        self.sessions.push(entry);
    }

    pub fn remove_path(&mut self, path: &Path) {
        self.sessions.retain(|o| o.path != path);
    }
}
