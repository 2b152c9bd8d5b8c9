//! After a killed apply: what it left half-done that git would otherwise trip over.
//!
//! Before apply takes a lock file that git commands also use (`packed-refs.lock`,
//! `config.lock`, a branch's `.lock`, a worktree's `HEAD.lock`/`index.lock`), it writes an
//! *intent* naming it, and removes the intent when done. After a kill, only lock files an
//! intent names are flowloom's: a lock file nobody named may belong to a git command
//! running right now and is never touched. The planner lists what it finds as housekeeping
//! (`plan` shows it); apply removes each one only if it is still there, unchanged, after
//! longer than git holds such a lock.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::store::ownership::{OwnedState, Record};

/// Something a killed apply left behind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Leftover {
    pub path: PathBuf,
    pub kind: LeftoverKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftoverKind {
    /// A lock file an intent of the dead apply names.
    LockFile,
    /// The intent file itself.
    Intent,
    /// A temporary file of one of flowloom's atomic writes.
    TempFile,
    /// A worktree administration folder without a `gitdir` file (a registration cut short).
    HalfRegistration,
    /// The folder of a session being created that holds nothing but the `.git` link a
    /// registration cut short wrote.
    LoneLink,
    /// An empty `<root>/.flowloom-trash` folder: a removal killed between finishing its
    /// deletion (or moving a folder back) and removing the trash folder itself.
    EmptyTrash,
}

const INTENT_PREFIX: &str = "intent-";

/// When the apply that last held `flowloom.lock` started, if it ended without releasing it
/// (killed). For `plan`, which does not take the lock: a lock held right now is a live
/// apply's, not stale.
pub fn stale_since(common_dir: &Path) -> Option<jiff::Timestamp> {
    let path = common_dir.join(crate::store::lock::FILE_NAME);
    let file = std::fs::File::open(&path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    match file.try_lock_shared() {
        Ok(()) => {}
        Err(_) => return None,
    }
    let mut text = String::new();
    use std::io::Read;
    let _ = (&file).take(4096).read_to_string(&mut text);
    let _ = file.unlock();
    parse_started(&text)
}

/// The `started` line of a lock holder's text.
pub fn parse_started(text: &str) -> Option<jiff::Timestamp> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("started "))
        .and_then(|t| t.parse().ok())
}

/// What an apply that started at `since` and was killed left behind.
pub fn leftovers(common_dir: &Path, record: &Record, since: Option<jiff::Timestamp>) -> Vec<Leftover> {
    let Some(since) = since
        .map(SystemTime::from)
        // File times come from the kernel's coarse clock: allow for that.
        .and_then(|t| t.checked_sub(std::time::Duration::from_secs(2)))
    else {
        return Vec::new();
    };
    let state_dir = common_dir.join(crate::names::STATE_DIR);
    let mut found = intents(common_dir, &state_dir);
    found.extend(half_registrations(common_dir, since));
    found.extend(lone_links(record, since));
    // flowloom's own atomic writes leave a temporary file behind when killed: next to the
    // record and `info/exclude`, and in the session folders of the sessions it worked on.
    let mut tmp_dirs = vec![state_dir, common_dir.join("info")];
    tmp_dirs.extend(
        record
            .sessions
            .iter()
            .filter(|o| o.state != OwnedState::Created)
            .map(|o| o.path.join(crate::names::session_dir(&o.id))),
    );
    found.extend(temp_files(&tmp_dirs, since));
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found.dedup();
    found
}

/// The intents in the state folder, and the lock files (inside the repository's git
/// directory) they name.
fn intents(common_dir: &Path, state_dir: &Path) -> Vec<Leftover> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(state_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(INTENT_PREFIX) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let lock = PathBuf::from(line);
            // Only lock files inside the repository's git directory.
            if lock.starts_with(common_dir)
                && lock.extension().is_some_and(|e| e == "lock")
                && lock.symlink_metadata().is_ok_and(|m| m.is_file())
            {
                found.push(Leftover {
                    path: lock,
                    kind: LeftoverKind::LockFile,
                });
            }
        }
        found.push(Leftover {
            path: entry.path(),
            kind: LeftoverKind::Intent,
        });
    }
    found
}

/// A worktree registration killed half-way can leave an administration folder without
/// its `gitdir` file, or with an empty one, which git lists but cannot use.
fn half_registrations(common_dir: &Path, since: SystemTime) -> Vec<Leftover> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(common_dir.join("worktrees"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let admin = entry.path();
        let gitdir = std::fs::read_to_string(admin.join("gitdir")).unwrap_or_default();
        if gitdir.trim().is_empty() && admin.is_dir() && is_no_older_than(&admin, since) {
            found.push(Leftover {
                path: admin,
                kind: LeftoverKind::HalfRegistration,
            });
        }
    }
    found
}

/// The folder of a session being created, when it holds nothing but the `.git` link
/// that registration writes first and no registration points at it: nobody else's,
/// since creation is planned only where the folder is absent or empty.
fn lone_links(record: &Record, since: SystemTime) -> Vec<Leftover> {
    let mut found = Vec::new();
    for owned in record.sessions.iter().filter(|o| o.state == OwnedState::Creating) {
        let only_link = std::fs::read_dir(&owned.path)
            .is_ok_and(|entries| entries.flatten().all(|e| e.file_name() == ".git"))
            && owned.path.join(".git").symlink_metadata().is_ok_and(|m| m.is_file());
        let registered = std::fs::read_to_string(owned.path.join(".git"))
            .ok()
            .and_then(|t| t.trim().strip_prefix("gitdir: ").map(|g| Path::new(g).join("gitdir")))
            .is_some_and(|g| g.is_file());
        if only_link && !registered && is_no_older_than(&owned.path, since) {
            found.push(Leftover {
                path: owned.path.clone(),
                kind: LeftoverKind::LoneLink,
            });
        }
    }
    found
}

/// The temporary files of flowloom's atomic writes in these folders.
fn temp_files(dirs: &[PathBuf], since: SystemTime) -> Vec<Leftover> {
    let mut found = Vec::new();
    for dir in dirs {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let ours = entry
                .file_name()
                .to_string_lossy()
                .starts_with(crate::fsutil::TMP_PREFIX);
            if ours && is_no_older_than(&path, since) {
                found.push(Leftover {
                    path,
                    kind: LeftoverKind::TempFile,
                });
            }
        }
    }
    found
}

/// Empty trash folders in the root and beside the recorded sessions: nothing records them
/// (they are made right before a move into them and removed once empty), so a kill in
/// between leaves them to be found here. Only a real, empty folder; nothing else.
pub fn empty_trash(root: &Path, record: &Record) -> Vec<Leftover> {
    let mut parents: Vec<&Path> = vec![root];
    parents.extend(record.sessions.iter().filter_map(|o| o.path.parent()));
    parents.sort();
    parents.dedup();
    parents
        .into_iter()
        .map(|p| p.join(crate::names::TRASH_DIR))
        .filter(|t| is_empty_folder(t))
        .map(|path| Leftover {
            path,
            kind: LeftoverKind::EmptyTrash,
        })
        .collect()
}

fn is_empty_folder(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
        && std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

/// Why a leftover was not removed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// A lock file that changed, or is too recent: a git command may hold it.
    #[error("{} is in use (it changed, or is too recent); left alone", .0.display())]
    InUse(PathBuf),
    #[error("{} is not an empty folder now; left alone", .0.display())]
    NotEmpty(PathBuf),
    #[error("{} holds more than a `.git` link now; left alone", .0.display())]
    NotALoneLink(PathBuf),
    #[error("{} is a complete registration now; left alone", .0.display())]
    RegistrationComplete(PathBuf),
    #[error("could not delete {}: {source}", path.display())]
    Delete { path: PathBuf, source: std::io::Error },
}

/// Remove one leftover, re-checking it first: a lock file only if it stays unchanged for
/// longer than git holds one (a git command that took it since is left alone).
pub fn remove(leftover: &Leftover) -> Result<(), RemoveError> {
    let path = &leftover.path;
    let delete = |source| RemoveError::Delete {
        path: path.clone(),
        source,
    };
    match leftover.kind {
        LeftoverKind::LockFile => {
            if !is_abandoned(path, std::time::Duration::from_secs(2)) {
                return Err(RemoveError::InUse(path.clone()));
            }
            remove_file(path)
        }
        LeftoverKind::Intent | LeftoverKind::TempFile => remove_file(path),
        LeftoverKind::EmptyTrash => {
            if !is_empty_folder(path) {
                return Err(RemoveError::NotEmpty(path.clone()));
            }
            match std::fs::remove_dir(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(delete(e)),
            }
        }
        LeftoverKind::LoneLink => {
            let only_link =
                std::fs::read_dir(path).is_ok_and(|entries| entries.flatten().all(|e| e.file_name() == ".git"));
            if !only_link {
                return Err(RemoveError::NotALoneLink(path.clone()));
            }
            remove_file(&path.join(".git"))?;
            std::fs::remove_dir(path).map_err(delete)
        }
        LeftoverKind::HalfRegistration => {
            let gitdir = std::fs::read_to_string(path.join("gitdir")).unwrap_or_default();
            if !gitdir.trim().is_empty() {
                return Err(RemoveError::RegistrationComplete(path.clone()));
            }
            match std::fs::remove_dir_all(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(delete(e)),
            }
        }
    }
}

fn remove_file(path: &Path) -> Result<(), RemoveError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RemoveError::Delete {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Names, in the git common dir, the lock files apply is about to take; removed when
/// dropped. Found after a kill, it says those lock files (if there) are the dead apply's.
pub struct Intent {
    file: Option<PathBuf>,
}

impl Intent {
    pub fn begin(common_dir: &Path, locks: &[PathBuf]) -> Intent {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = common_dir.join(crate::names::STATE_DIR);
        let file = dir.join(format!(
            "{INTENT_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut text = String::new();
        for lock in locks {
            text.push_str(&lock.to_string_lossy());
            text.push('\n');
        }
        // Best effort: without the intent, a lock left by a kill is reported, not removed.
        let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, text));
        Intent {
            file: written.is_ok().then_some(file),
        }
    }
}

impl Drop for Intent {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// A lock file the dead apply may have held: if it is still there, unchanged, after longer
/// than any git command holds such a lock, it is the dead apply's. Waits at most `patience`.
fn is_abandoned(path: &Path, patience: std::time::Duration) -> bool {
    let started = std::time::Instant::now();
    let stamp = |p: &Path| std::fs::symlink_metadata(p).and_then(|m| Ok((m.modified()?, m.len())));
    let Ok(first) = stamp(path) else {
        return false;
    };
    loop {
        match stamp(path) {
            Ok(now) if now != first => return false,
            Ok(_) => {}
            Err(_) => return false,
        }
        let age = SystemTime::now().duration_since(first.0).unwrap_or_default();
        if age >= patience {
            return true;
        }
        if started.elapsed() >= patience {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn is_no_older_than(path: &Path, since: SystemTime) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|modified| modified >= since)
}
