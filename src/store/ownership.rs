//! The ownership record (SPEC §3): every session flowloom created or adopted, kept in
//! `<git common dir>/flowloom/owned.json`. Only owned sessions can ever become orphans and
//! be removed; losing the record makes sessions unmanaged, never removed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::RepoError;

const DIR: &str = "flowloom";
const FILE: &str = "owned.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub sessions: Vec<OwnedSession>,
    /// Folders in a `.flowloom-trash` whose deletion has started (SPEC §11.4): a removal
    /// moves its checked worktree here, in the same write that takes it off its session's
    /// entry, before it drops the registration and deletes anything. From then on the
    /// removal is only ever finished, never undone: such a folder never moves back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleting: Vec<PathBuf>,
    /// Worktree moves under way (SPEC §11.3), recorded before the folder is renamed: a kill
    /// in the middle leaves this entry, and the next apply finishes the move (or, when the
    /// folder had not moved yet, forgets it and moves it again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moving: Vec<Moving>,
    /// Where each path's entry is in `sessions`, so that [`Record::by_path`] (asked once or
    /// more per worktree by the reader, the planner and apply) is not a scan: kept by
    /// `read`, `new`, `upsert`, `remove_path` and `reindex`. Code that edits `sessions`
    /// itself calls `reindex` after; until then (told by a count that differs, or an entry
    /// that is not where the index says) lookups scan.
    #[serde(skip)]
    index: std::collections::HashMap<PathBuf, usize>,
}

/// Equal records hold the same entries; the index is derived from them.
impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
            && self.sessions == other.sessions
            && self.deleting == other.deleting
            && self.moving == other.moving
    }
}

impl Eq for Record {}

/// A name of one path component, no `..`, no separator (an administration folder's name).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// A worktree move under way: its registration, where the folder was and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moving {
    pub admin_id: String,
    pub from: PathBuf,
    pub to: PathBuf,
}

/// Entries as [`Record::write_with`] last serialised them, by path.
#[derive(Debug, Default)]
pub struct Rendered(std::collections::HashMap<PathBuf, (OwnedSession, String)>);

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
    /// While it is removed: where its worktree folder was moved (`<root>/.flowloom-trash/…`)
    /// once it was checked. Only folders named here are ever deleted from the trash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trash: Option<PathBuf>,
    /// A digest of every file's size, time, inode and mode as the check before the move saw
    /// them: a folder in the trash that still matches it is exactly what was checked, and
    /// may be deleted; one that does not is moved back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trash_digest: Option<String>,
    /// Whether flowloom created the branch (SPEC §11.2): a branch that existed (locally, or
    /// as `<remote>/<branch>`) when the session was made, or that `import` adopted, is never
    /// deleted by flowloom. Records written before this field existed say nothing: they
    /// keep what they did.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub branch_created: bool,
}

fn yes() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_yes(value: &bool) -> bool {
    *value
}

/// The largest ownership record flowloom reads (tens of thousands of entries fit).
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// A record entry left out because it cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub id: String,
    pub path: PathBuf,
    pub reason: Untrusted,
}

/// Why a record entry (or a path in it) cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    #[error("its id is not a valid session id")]
    InvalidId,
    #[error("its branch is not a valid branch name: {0}")]
    InvalidBranch(String),
    #[error("its path contains a NUL byte")]
    NulInPath,
    #[error("its path is longer than 4096 bytes")]
    PathTooLong,
    #[error("its path is not absolute")]
    PathNotAbsolute,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ignored the ownership record's entry `{}` ({}): {}; its session is treated as unmanaged",
            self.id,
            self.path.display(),
            self.reason
        )
    }
}

impl OwnedSession {
    /// Normalise the path in place; why the entry cannot be trusted, if it cannot.
    fn check(&mut self) -> Result<(), Untrusted> {
        if !crate::names::is_valid_id(&self.id) {
            return Err(Untrusted::InvalidId);
        }
        if let Some(problem) = crate::names::branch_problem(&self.branch) {
            return Err(Untrusted::InvalidBranch(problem.to_string()));
        }
        self.path = normalise(&self.path)?;
        if let Some(trash) = &self.trash {
            self.trash = Some(normalise(trash)?);
        }
        Ok(())
    }
}

/// `path` with `.` and `..` folded lexically; it must be absolute, hold no NUL byte and be
/// at most 4096 bytes long (`PATH_MAX`).
pub fn normalise(path: &Path) -> Result<PathBuf, Untrusted> {
    use std::path::Component;
    let bytes = path.as_os_str().as_encoded_bytes();
    if bytes.contains(&0) {
        return Err(Untrusted::NulInPath);
    }
    if bytes.len() > 4096 {
        return Err(Untrusted::PathTooLong);
    }
    if !path.is_absolute() {
        return Err(Untrusted::PathNotAbsolute);
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => out.push(c.as_os_str()),
            Component::CurDir => {}
            // `/..` is `/`: `pop` at the root does nothing.
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
        }
    }
    if !out.is_absolute() {
        return Err(Untrusted::PathNotAbsolute);
    }
    Ok(out)
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
    /// Entries that cannot be trusted (see [`Record::read_checked`]) are left out.
    pub fn read(common_dir: &Path) -> Result<Record, RepoError> {
        Record::read_checked(common_dir).map(|(record, _)| record)
    }

    /// [`Record::read`], also returning the entries it left out, each with why (worth a
    /// warning). The file must be a regular file (not a symlink) of at most [`MAX_BYTES`].
    /// Every entry's path is normalised (`.` and `..` folded, so that `<root>/../x` is not
    /// taken for a path inside the root); an entry whose path is not absolute, whose id is not
    /// a valid session id, or whose branch git could not hold, is never trusted: left out, its
    /// session is unmanaged, so never removed.
    pub fn read_checked(common_dir: &Path) -> Result<(Record, Vec<Dropped>), RepoError> {
        let path = Record::path(common_dir);
        let bytes = match crate::fsutil::read_regular(&path, MAX_BYTES) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok((Record::default(), Vec::new())),
            Err(crate::fsutil::ReadError::Io(e)) => return Err(RepoError::io("read the ownership record", &path, e)),
            Err(e) => {
                return Err(RepoError::CorruptRecord {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        let mut record: Record = serde_json::from_slice(&bytes).map_err(|e| RepoError::CorruptRecord {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut dropped = Vec::new();
        record.sessions.retain_mut(|entry| match entry.check() {
            Ok(()) => true,
            Err(reason) => {
                dropped.push(Dropped {
                    id: entry.id.clone(),
                    path: entry.path.clone(),
                    reason,
                });
                false
            }
        });
        // Only a normalised absolute path inside a trash folder is ever deleted.
        record.deleting.retain_mut(|path| match normalise(path) {
            Ok(p) if p.parent().and_then(Path::file_name) == Some(crate::names::TRASH_DIR.as_ref()) => {
                *path = p;
                true
            }
            _ => false,
        });
        // Only normalised absolute paths, under an administration folder's plain name.
        record
            .moving
            .retain_mut(|m| match (normalise(&m.from), normalise(&m.to)) {
                (Ok(from), Ok(to)) if is_plain_name(&m.admin_id) => {
                    (m.from, m.to) = (from, to);
                    true
                }
                _ => false,
            });
        record.reindex();
        Ok((record, dropped))
    }

    /// A record of `sessions`, indexed.
    pub fn new(version: u32, sessions: Vec<OwnedSession>) -> Record {
        let mut record = Record {
            version,
            sessions,
            deleting: Vec::new(),
            moving: Vec::new(),
            index: Default::default(),
        };
        record.reindex();
        record
    }

    /// Rebuild the path index after `sessions` was edited directly. With an entry's path
    /// twice (a hand-edited record), the first one is found, as a scan would.
    pub fn reindex(&mut self) {
        self.index.clear();
        for (i, o) in self.sessions.iter().enumerate() {
            self.index.entry(o.path.clone()).or_insert(i);
        }
    }

    /// Where the index says `path`'s entry is, when the index describes `sessions` (one
    /// entry per path, none added since) and the entry is there.
    fn position(&self, path: &Path) -> Option<Option<usize>> {
        if self.index.len() != self.sessions.len() {
            return None;
        }
        match self.index.get(path) {
            None => Some(None),
            Some(&i) if self.sessions.get(i).is_some_and(|o| o.path == path) => Some(Some(i)),
            Some(_) => None,
        }
    }

    /// Write atomically (write-then-rename) so that a killed apply leaves the old or the new
    /// record, never half of one.
    pub fn write(&self, common_dir: &Path) -> Result<(), RepoError> {
        self.write_with(common_dir, &mut Rendered::default())
    }

    /// [`Record::write`], re-serialising only the entries that differ from the ones in
    /// `rendered` (which it updates): apply rewrites the whole record after each step of
    /// each session, and serialising a thousand entries each time made every step cost
    /// more the more sessions there are. The document is the same.
    pub fn write_with(&self, common_dir: &Path, rendered: &mut Rendered) -> Result<(), RepoError> {
        let path = Record::path(common_dir);
        let text = self.document(rendered);
        let folder = common_dir.join(DIR);
        let made = crate::fsutil::shared::missing_folders(&folder);
        crate::fsutil::write_atomic(&path, text.as_bytes())?;
        // `core.sharedRepository`: git's modes, as for a file git makes in its folder.
        made.iter().for_each(|f| crate::fsutil::shared::adjust(f));
        crate::fsutil::shared::adjust(&path);
        Ok(())
    }

    /// The record's file: `serde_json::to_string_pretty` of the version and the entries,
    /// sorted, and a newline; each entry's part is its own pretty form, indented.
    fn document(&self, rendered: &mut Rendered) -> String {
        let mut sessions: Vec<&OwnedSession> = self.sessions.iter().collect();
        sessions.sort_by(|a, b| a.id.cmp(&b.id).then(a.path.cmp(&b.path)));
        let mut deleting = if self.deleting.is_empty() {
            String::new()
        } else {
            let list = serde_json::to_string_pretty(&self.deleting).expect("paths serialise");
            format!(",\n  \"deleting\": {}", list.replace('\n', "\n  "))
        };
        if !self.moving.is_empty() {
            let list = serde_json::to_string_pretty(&self.moving).expect("moves serialise");
            deleting.push_str(&format!(",\n  \"moving\": {}", list.replace('\n', "\n  ")));
        }
        if sessions.is_empty() {
            return format!("{{\n  \"version\": 1,\n  \"sessions\": []{deleting}\n}}\n");
        }
        let mut text = String::with_capacity(64 + sessions.len() * 200);
        text.push_str("{\n  \"version\": 1,\n  \"sessions\": [\n");
        for (i, entry) in sessions.into_iter().enumerate() {
            if i > 0 {
                text.push_str(",\n");
            }
            // Each entry's own pretty form, indented to its place in the document (string
            // values escape their newlines: every newline in it is the document's).
            let part = match rendered.0.get(&entry.path) {
                Some((seen, part)) if seen == entry => part,
                _ => {
                    let own = serde_json::to_string_pretty(entry).expect("an entry serialises");
                    let part = format!("    {}", own.replace('\n', "\n    "));
                    let (_, part) = rendered
                        .0
                        .entry(entry.path.clone())
                        .insert_entry((entry.clone(), part))
                        .into_mut();
                    &*part
                }
            };
            text.push_str(part);
        }
        text.push_str("\n  ]");
        text.push_str(&deleting);
        text.push_str("\n}\n");
        text
    }

    pub fn by_path(&self, path: &Path) -> Option<&OwnedSession> {
        match self.position(path) {
            Some(at) => at.map(|i| &self.sessions[i]),
            None => self.sessions.iter().find(|o| o.path == path),
        }
    }

    /// Insert or replace the entry for the same path. The order of `sessions` is not kept
    /// (`write` sorts).
    pub fn upsert(&mut self, entry: OwnedSession) {
        match self.position(&entry.path) {
            Some(Some(i)) => self.sessions[i] = entry,
            Some(None) => {
                self.index.insert(entry.path.clone(), self.sessions.len());
                self.sessions.push(entry);
            }
            None => {
                self.sessions.retain(|o| o.path != entry.path);
                self.sessions.push(entry);
                self.reindex();
            }
        }
    }

    /// Drop the entry for `path`. The order of `sessions` is not kept (`write` sorts).
    pub fn remove_path(&mut self, path: &Path) {
        match self.position(path) {
            Some(Some(i)) => {
                self.index.remove(path);
                self.sessions.swap_remove(i);
                if let Some(moved) = self.sessions.get(i) {
                    self.index.insert(moved.path.clone(), i);
                }
            }
            Some(None) => {}
            None => {
                self.sessions.retain(|o| o.path != path);
                self.reindex();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_serde_json_pretty_of_the_sorted_entries() {
        #[derive(Serialize)]
        struct OnDisk<'a> {
            version: u32,
            sessions: Vec<&'a OwnedSession>,
            #[serde(skip_serializing_if = "<[PathBuf]>::is_empty")]
            deleting: &'a [PathBuf],
        }
        let entry = |id: &str, path: &str, trash: Option<&str>| OwnedSession {
            id: id.into(),
            branch: format!("session/{id}"),
            path: PathBuf::from(path),
            base: "main".into(),
            state: OwnedState::Created,
            trash: trash.map(PathBuf::from),
            trash_digest: trash.map(|_| "d\"ig\nest".to_owned()),
            branch_created: id != "b",
        };
        let mut record = Record::new(
            1,
            vec![
                entry("b", "/r/sessions/b", None),
                entry("a", "/r/sessions/a \"quoted\"\nline", Some("/r/.trash/a")),
            ],
        );
        let expected = |record: &Record| {
            let mut sessions: Vec<&OwnedSession> = record.sessions.iter().collect();
            sessions.sort_by(|a, b| a.id.cmp(&b.id).then(a.path.cmp(&b.path)));
            let deleting = &record.deleting;
            let mut text = serde_json::to_string_pretty(&OnDisk {
                version: 1,
                sessions,
                deleting,
            })
            .expect("json");
            text.push('\n');
            text
        };
        let mut rendered = Rendered::default();
        assert_eq!(record.document(&mut rendered), expected(&record));
        record.upsert(OwnedSession {
            state: OwnedState::Removing,
            ..entry("b", "/r/sessions/b", None)
        });
        record.upsert(entry("c", "/r/sessions/c", None));
        assert_eq!(record.document(&mut rendered), expected(&record));
        record.deleting = vec![
            PathBuf::from("/r/.flowloom-trash/a"),
            PathBuf::from("/r/.flowloom-trash/\"b\""),
        ];
        assert_eq!(record.document(&mut rendered), expected(&record));
        let mut empty = Record::default();
        assert_eq!(empty.document(&mut rendered), expected(&empty));
        empty.deleting = vec![PathBuf::from("/r/.flowloom-trash/a")];
        assert_eq!(empty.document(&mut rendered), expected(&empty));
    }

    #[test]
    fn paths_are_normalised_lexically() {
        assert_eq!(
            normalise(Path::new("/r/sessions/../outside")),
            Ok(PathBuf::from("/r/outside"))
        );
        assert_eq!(
            normalise(Path::new("/r/./sessions/x/")),
            Ok(PathBuf::from("/r/sessions/x"))
        );
        assert_eq!(normalise(Path::new("/../../etc")), Ok(PathBuf::from("/etc")));
        assert!(normalise(Path::new("sessions/x")).is_err());
        assert!(normalise(Path::new("")).is_err());
        assert!(normalise(Path::new("/r/a\\0b")).is_ok());
        assert!(normalise(Path::new("/r/a\u{0}b")).is_err());
    }

    #[test]
    fn untrustworthy_entries_are_left_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let entry = |id: &str, branch: &str, path: &str| serde_json::json!({"id": id, "branch": branch, "path": path, "base": "main", "state": "created"});
        let doc = serde_json::json!({"version": 1, "sessions": [
            entry("a", "session/a", "/r/sessions/shell-instance-a"),
            entry("b", "session/b", "/r/sessions/../outside"),
            entry("c", "session/c", "sessions/relative"),
            entry("../d", "session/d", "/r/sessions/d"),
            entry("e", "bad..branch", "/r/sessions/e"),
        ]});
        let path = Record::path(dir.path());
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, doc.to_string()).expect("write");
        let (record, dropped) = Record::read_checked(dir.path()).expect("read");
        let paths: Vec<_> = record.sessions.iter().map(|s| s.path.clone()).collect();
        assert_eq!(
            paths,
            [
                PathBuf::from("/r/sessions/shell-instance-a"),
                PathBuf::from("/r/outside")
            ]
        );
        // `/r/outside` is now what it is: outside `/r/sessions`.
        assert!(!record.sessions[1].path.starts_with("/r/sessions"));
        let ids: Vec<_> = dropped.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["c", "../d", "e"]);
        assert!(dropped[0].to_string().contains("not absolute"), "{}", dropped[0]);
    }

    #[test]
    fn a_record_that_is_not_a_regular_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Record::path(dir.path());
        std::fs::create_dir_all(&path).expect("a folder where the file should be");
        assert!(matches!(Record::read(dir.path()), Err(RepoError::CorruptRecord { .. })));
        std::fs::remove_dir(&path).expect("rmdir");
        std::os::unix::fs::symlink("/dev/zero", &path).expect("symlink");
        let err = Record::read(dir.path()).expect_err("a symlink is refused");
        assert!(err.to_string().contains("symlink"), "{err}");
    }
}
