//! After a killed apply: the lock files it was holding when it died.
//!
//! A ref or index update takes `<file>.lock` and renames it into place; a `kill -9` in
//! between leaves the `.lock`, and git (and gix) then refuse to touch that file until
//! someone deletes it by hand. When an apply takes the apply lock over from a holder that
//! died, it removes the lock files that holder can have left: those on refs and
//! worktree administration files of flowloom's own sessions, no older than the dead apply's
//! start. Lock files on what every git command shares (`config.lock`, `packed-refs.lock`)
//! might belong to a git command running right now: those are only reported.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::ownership::{OwnedSession, OwnedState, Record};

/// Remove the per-session lock files a killed apply left; describe each removal, and each
/// shared lock file that is left for the user to judge, through `report`.
///
/// Only sessions the dead apply was working on qualify: those it was creating (the record
/// says `creating`) and orphans it may have been removing (no longer declared). In a
/// declared, finished session someone may be committing right now; its locks are theirs.
pub fn leftover_locks(
    common_dir: &Path,
    declared_branches: &BTreeSet<&str>,
    started: Option<jiff::Timestamp>,
    report: &dyn Fn(String),
) {
    // File times come from the kernel's coarse clock (and some file systems keep whole or
    // even two seconds), so they can read earlier than the precise start: allow for that.
    let Some(since) = started
        .map(SystemTime::from)
        .and_then(|t| t.checked_sub(std::time::Duration::from_secs(2)))
    else {
        return;
    };
    let Ok(record) = Record::read(common_dir) else { return };
    let worked_on: Vec<&OwnedSession> = record
        .sessions
        .iter()
        .filter(|o| o.state != OwnedState::Created || !declared_branches.contains(o.branch.as_str()))
        .collect();
    let mut ours: Vec<PathBuf> = Vec::new();
    for owned in &worked_on {
        ours.push(common_dir.join("refs/heads").join(format!("{}.lock", owned.branch)));
    }
    // Archive refs are flowloom's alone: `<branch>`, `<branch>-2`, … of any branch.
    let archives = common_dir.join("refs/flowloom/archive");
    for owned in &record.sessions {
        let archive = archives.join(&owned.branch);
        ours.extend(locks_in(archive.parent(), |name| {
            archive
                .file_name()
                .is_some_and(|stem| name.starts_with(&*stem.to_string_lossy()))
        }));
    }
    // The administration folders (HEAD, index) of the worktrees of those sessions.
    if let Ok(entries) = std::fs::read_dir(common_dir.join("worktrees")) {
        for entry in entries.flatten() {
            let admin = entry.path();
            let Some(worktree) = std::fs::read_to_string(admin.join("gitdir"))
                .ok()
                .and_then(|gitdir| Path::new(gitdir.trim()).parent().map(crate::state::canonical))
            else {
                continue;
            };
            if worked_on.iter().any(|o| o.path == worktree) {
                ours.extend(locks_in(Some(&admin), |_| true));
            }
        }
    }
    // A worktree registration killed half-way (being made or being deleted) can leave an
    // administration folder without its `gitdir` file, or with an empty one, which git
    // lists but cannot use.
    let mut registered = Vec::new();
    if let Ok(entries) = std::fs::read_dir(common_dir.join("worktrees")) {
        for entry in entries.flatten() {
            let admin = entry.path();
            let gitdir = std::fs::read_to_string(admin.join("gitdir")).unwrap_or_default();
            match Path::new(gitdir.trim()).parent() {
                Some(worktree) if !gitdir.trim().is_empty() => registered.push(crate::state::canonical(worktree)),
                _ if admin.is_dir() && is_no_older_than(&admin, since) && std::fs::remove_dir_all(&admin).is_ok() => {
                    report(format!(
                        "removed {}, left half-made by the apply that was killed",
                        admin.display()
                    ));
                }
                _ => {}
            }
        }
    }
    // And the folder of a session being created, when it holds nothing but the `.git` link
    // that registration writes first: nobody else's, since creation is planned only where
    // the folder is absent or empty.
    for owned in worked_on.iter().filter(|o| o.state == OwnedState::Creating) {
        if registered.contains(&owned.path) {
            continue;
        }
        let only_link =
            std::fs::read_dir(&owned.path).is_ok_and(|entries| entries.flatten().all(|e| e.file_name() == ".git"));
        if only_link
            && is_no_older_than(&owned.path, since)
            && std::fs::remove_file(owned.path.join(".git")).map_or(true, |()| true)
            && std::fs::remove_dir(&owned.path).is_ok()
        {
            report(format!(
                "removed {}, left half-made by the apply that was killed",
                owned.path.display()
            ));
        }
    }
    // flowloom's own atomic writes leave a temporary file behind when killed: next to the
    // record and `info/exclude`, and in the session folders of the sessions it worked on.
    let is_tmp = |p: &PathBuf| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(crate::fsutil::TMP_PREFIX))
    };
    let mut tmp_dirs = vec![common_dir.join("flowloom"), common_dir.join("info")];
    tmp_dirs.extend(worked_on.iter().map(|o| o.path.join("sessions").join(&o.id)));
    for dir in tmp_dirs {
        ours.extend(
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(is_tmp),
        );
    }
    for path in ours {
        if is_no_older_than(&path, since) && std::fs::remove_file(&path).is_ok() {
            report(format!("removed {}, left by the apply that was killed", path.display()));
        }
    }
    // The dead apply was inside an edit that takes a shared lock: a lock file that stays
    // put, untouched, for two seconds is its (git holds these for milliseconds).
    let marker = common_dir.join("flowloom").join(SHARED_EDIT);
    if marker.exists() {
        for shared in SHARED_LOCKS {
            let path = common_dir.join(shared);
            if is_abandoned(&path, std::time::Duration::from_secs(2)) && std::fs::remove_file(&path).is_ok() {
                report(format!("removed {}, left by the apply that was killed", path.display()));
            }
        }
        let _ = std::fs::remove_file(&marker);
    }
    for shared in ["config.lock", "packed-refs.lock", "index.lock", "HEAD.lock"] {
        let path = common_dir.join(shared);
        if is_no_older_than(&path, since) {
            report(format!(
                "{} may have been left by the apply that was killed; if no git command is running, delete it",
                path.display()
            ));
        }
    }
}

/// Marks that apply is about to take a lock every git command shares (`config.lock`,
/// `packed-refs.lock`); removed when done. Found after a kill, it says such a lock may be
/// the dead apply's.
pub struct SharedEdit {
    marker: PathBuf,
}

const SHARED_EDIT: &str = "shared-lock-intent";
const SHARED_LOCKS: [&str; 2] = ["config.lock", "packed-refs.lock"];

impl SharedEdit {
    pub fn begin(common_dir: &Path) -> SharedEdit {
        let marker = common_dir.join("flowloom").join(SHARED_EDIT);
        // Best effort: without the marker, a lock left by a kill is reported, not removed.
        let _ = std::fs::create_dir_all(common_dir.join("flowloom")).and_then(|()| std::fs::write(&marker, b""));
        SharedEdit { marker }
    }
}

impl Drop for SharedEdit {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.marker);
    }
}

/// A shared lock file the dead apply may have held: if it is still there, unchanged, after
/// longer than any git command holds such a lock, it is the dead apply's. Waits at most
/// `patience`.
fn is_abandoned(path: &Path, patience: std::time::Duration) -> bool {
    let started = std::time::Instant::now();
    let Ok(first) = std::fs::symlink_metadata(path).and_then(|m| m.modified()) else {
        return false;
    };
    loop {
        match std::fs::symlink_metadata(path).and_then(|m| m.modified()) {
            Ok(now) if now != first => return false,
            Ok(_) => {}
            Err(_) => return false,
        }
        let age = SystemTime::now().duration_since(first).unwrap_or_default();
        if age >= patience {
            return true;
        }
        if started.elapsed() >= patience {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn locks_in(dir: Option<&Path>, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Some(dir) = dir else { return Vec::new() };
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.ends_with(".lock") && keep(&n))
        })
        .collect()
}

fn is_no_older_than(path: &Path, since: SystemTime) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|modified| modified >= since)
}
