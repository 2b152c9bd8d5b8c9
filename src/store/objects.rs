//! `GIT_ALTERNATE_OBJECT_DIRECTORIES`, honoured as git honours it: objects found only in a
//! folder the variable names are read. gix reads alternates from `objects/info/alternates`
//! alone and cannot be told of others, so flowloom hands gix an object directory of its
//! own, `<git common dir>/flowloom/objects-<key>`, that is the repository's (each fan-out
//! folder and `pack` a symlink to the repository's, so an object written lands there) with
//! an `info/alternates` of its own: the variable's folders, then the repository's own
//! alternates. Nothing of the repository's own files changes, except that missing fan-out
//! folders of `objects/` are made (git makes them as it writes objects).
//!
//! Each variable's value gets its own folder, so they would pile up: a run that uses one
//! holds a shared lock on its `in-use` file for as long as it runs (and stamps the file's
//! time), and removes the folders of other values nobody holds and nobody used for
//! [`UNUSED_FOR`], each under an exclusive lock on its `in-use` file. A run that finds its
//! `in-use` file removed under it (a pruner got there first) makes its folder again.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::RepoError;

const VARIABLE: &str = "GIT_ALTERNATE_OBJECT_DIRECTORIES";
/// flowloom's object folders start with this (`objects-<key>`).
const PREFIX: &str = "objects-";
/// The file a run that uses a folder holds a shared lock on.
const IN_USE: &str = "in-use";
/// Another value's folder nobody used for this long is removed.
pub const UNUSED_FOR: Duration = Duration::from_secs(24 * 60 * 60);

/// The `in-use` files this process holds, locked until it exits.
static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());

/// Makes `repo` (and any repository made from it on another thread) read the objects of
/// the folders `GIT_ALTERNATE_OBJECT_DIRECTORIES` names, as git reads them: separated by
/// `:`, C-quoted when they start with `"`, relative ones taken from the top of the worktree
/// (where git runs; one that leads above it, `../x`, skipped as git skips it), folders that
/// do not exist skipped. Nothing changes when the variable
/// is unset or names no folder, or when the git dir cannot take flowloom's folder (a
/// read-only repository): objects found only there are then reported as missing, naming
/// the variable.
pub fn honour_environment(repo: &mut gix::Repository) -> Result<(), RepoError> {
    let Some(value) = std::env::var_os(VARIABLE).filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    let base = match repo.workdir() {
        Some(dir) => dir.to_path_buf(),
        None => std::env::current_dir().map_err(|e| RepoError::io("read", Path::new("the current directory"), e))?,
    };
    let real = crate::fsutil::canonical(&repo.common_dir().join("objects"));
    let mut folders: Vec<PathBuf> = Vec::new();
    for folder in entries(value.as_bytes()) {
        if goes_up(&folder) {
            continue; // git: "unable to normalize alternate object path"
        }
        let folder = crate::fsutil::canonical(&base.join(folder));
        if folder.is_dir() && folder != real && !folders.contains(&folder) {
            folders.push(folder);
        }
    }
    if folders.is_empty() {
        return Ok(());
    }
    let own = gix::odb::alternate::resolve(real.clone(), &base)
        .map_err(|e| RepoError::git("read the alternates of", &real, e))?;
    for folder in own {
        if !folders.contains(&folder) {
            folders.push(folder);
        }
    }
    let listing = alternates_file(&folders);
    let state = repo.common_dir().join(crate::names::STATE_DIR);
    let dir = state.join(format!("{PREFIX}{:016x}", key(&real, &listing)));
    if hold(&dir).and_then(|()| build(&dir, &real, &listing)).is_err() {
        return Ok(());
    }
    prune(&state, &dir);
    let replacements: Vec<_> = repo.objects.store_ref().replacements().collect();
    let store = gix::odb::Store::at_opts(
        dir.clone(),
        repo.object_hash(),
        &mut replacements.into_iter(),
        gix::odb::store::init::Options {
            current_dir: Some(base),
            ..Default::default()
        },
    )
    .map_err(|e| RepoError::io("open the object directory", &dir, e))?;
    repo.objects = gix::odb::memory::Proxy::from(gix::odb::Cache::from(std::sync::Arc::new(store).to_handle()))
        .with_write_passthrough();
    crate::error::alternates_env_read();
    Ok(())
}

/// The folders of the variable's value (git's `parse_alt_odb_entry`): separated by `:`; an
/// entry that starts with `"` is C-quoted and may hold any byte.
fn entries(mut value: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    while !value.is_empty() {
        let end = quoted_end(value).unwrap_or_else(|| value.iter().position(|b| *b == b':').unwrap_or(value.len()));
        let entry = &value[..end];
        let path = if entry.first() == Some(&b'"') {
            gix::odb::alternate::parse(entry).ok().and_then(|mut p| p.pop())
        } else {
            (!entry.is_empty()).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(entry)))
        };
        out.extend(path);
        value = value.get(end + 1..).unwrap_or_default();
    }
    out
}

/// Whether a relative `path` leads above where it starts (`../x`): git cannot normalise
/// such an entry of the variable and skips it.
fn goes_up(path: &Path) -> bool {
    let mut depth = 0usize;
    for part in path.components() {
        match part {
            std::path::Component::ParentDir if depth == 0 => return path.is_relative(),
            std::path::Component::ParentDir => depth -= 1,
            std::path::Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    false
}

/// Where a C-quoted entry ends (just after its closing quote), when it is followed by `:` or
/// the end; `None` for an entry that is not quoted, or not validly (git then takes it raw).
fn quoted_end(value: &[u8]) -> Option<usize> {
    if value.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < value.len() {
        match value[i] {
            b'\\' => i += 2,
            b'"' => {
                let end = i + 1;
                return matches!(value.get(end), None | Some(b':')).then_some(end);
            }
            _ => i += 1,
        }
    }
    None
}

/// An `info/alternates` listing `folders`, one a line, C-quoted where a line could not hold
/// it as it is.
fn alternates_file(folders: &[PathBuf]) -> Vec<u8> {
    let mut out = Vec::new();
    for folder in folders {
        let bytes = folder.as_os_str().as_bytes();
        if bytes.iter().any(|b| matches!(b, b'\n' | b'\\' | b'"')) || bytes.first() == Some(&b'#') {
            out.push(b'"');
            for b in bytes {
                match b {
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\\' | b'"' => out.extend_from_slice(&[b'\\', *b]),
                    _ => out.push(*b),
                }
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(bytes);
        }
        out.push(b'\n');
    }
    out
}

/// The folder's name: the same for the same repository and the same alternates, so runs
/// with the same variable share one folder and runs with another never change it under
/// each other's feet.
fn key(real: &Path, listing: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    real.hash(&mut hasher);
    listing.hash(&mut hasher);
    hasher.finish()
}

/// Makes (or completes) flowloom's object directory `dir`: `info/alternates`, and a symlink
/// to the repository's `real` folder for `pack`, each fan-out folder (made in `real` where
/// missing, with git's modes) and the commit-graph files.
fn build(dir: &Path, real: &Path, listing: &[u8]) -> std::io::Result<()> {
    let info = dir.join("info");
    for folder in crate::fsutil::shared::missing_folders(&info).into_iter().rev() {
        match std::fs::create_dir(&folder) {
            Ok(()) => crate::fsutil::shared::adjust(&folder),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    if std::fs::read(info.join("alternates")).ok().as_deref() != Some(listing) {
        crate::fsutil::write_atomic(&info.join("alternates"), listing).map_err(std::io::Error::other)?;
    }
    let fanout = (0..=255u8).map(|b| format!("{b:02x}"));
    for name in fanout.chain(["pack".to_owned()]) {
        let target = real.join(&name);
        match std::fs::create_dir(&target) {
            Ok(()) => crate::fsutil::shared::adjust(&target),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        link(&target, &dir.join(&name))?;
    }
    for name in ["commit-graph", "commit-graphs"] {
        let target = real.join("info").join(name);
        if std::fs::symlink_metadata(&target).is_ok() {
            link(&target, &info.join(name))?;
        }
    }
    Ok(())
}

/// Takes a shared lock on `dir`'s `in-use` file for the rest of the run (making `dir`
/// where missing) and stamps its time: no pruner removes `dir` while it is held. A file
/// removed between its opening and its locking was a pruner's: open it again.
fn hold(dir: &Path) -> std::io::Result<()> {
    for _ in 0..8 {
        for folder in crate::fsutil::shared::missing_folders(dir).into_iter().rev() {
            match std::fs::create_dir(&folder) {
                Ok(()) => crate::fsutil::shared::adjust(&folder),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let path = dir.join(IN_USE);
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        file.lock_shared()?;
        let held = file.metadata()?;
        let current = std::fs::symlink_metadata(&path).ok();
        if current.is_some_and(|m| (m.dev(), m.ino()) == (held.dev(), held.ino())) {
            crate::fsutil::shared::adjust(&path);
            file.set_modified(SystemTime::now())?;
            HELD.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(file);
            return Ok(());
        }
    }
    Err(std::io::Error::other("flowloom's object folder kept being removed"))
}

/// Removes the object folders in `state` other than `mine` that no run holds and none
/// used for [`UNUSED_FOR`]: each under an exclusive lock on its `in-use` file (a folder
/// without one, left by an older flowloom, gets one now and waits its turn). Their
/// symlinks are removed, never what they point to. Failures leave a folder for next time.
fn prune(state: &Path, mine: &Path) {
    let Ok(entries) = std::fs::read_dir(state) else { return };
    for entry in entries.filter_map(Result::ok) {
        let dir = entry.path();
        let ours = entry.file_name().to_str().is_some_and(|n| n.starts_with(PREFIX));
        if !ours || dir == mine || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(IN_USE))
        else {
            continue;
        };
        if file.try_lock().is_err() {
            continue; // another run uses it
        }
        let used = file
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| SystemTime::now());
        if SystemTime::now()
            .duration_since(used)
            .is_ok_and(|age| age >= UNUSED_FOR)
        {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// A symlink at `at` to `target`, unless one is there already.
fn link(target: &Path, at: &Path) -> std::io::Result<()> {
    match std::os::unix::fs::symlink(target, at) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && std::fs::read_link(at)? == target => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_read_as_git_reads_them() {
        assert_eq!(entries(b"/a:b::/c"), vec![PathBuf::from("/a"), "b".into(), "/c".into()]);
        assert_eq!(
            entries(b"\"/x:y\\\"z\":/w"),
            vec![PathBuf::from("/x:y\"z"), PathBuf::from("/w")]
        );
        assert_eq!(
            entries(b"\"/unterminated:/w"),
            vec![PathBuf::from("\"/unterminated"), "/w".into()]
        );
    }

    #[test]
    fn relative_entries_leading_up_are_skipped_as_git_skips_them() {
        assert!(goes_up(Path::new("../x")));
        assert!(goes_up(Path::new("a/../../x")));
        assert!(!goes_up(Path::new("a/../x")));
        assert!(!goes_up(Path::new("/a/../../x")));
    }

    #[test]
    fn the_alternates_file_quotes_what_a_line_cannot_hold() {
        let folders = [
            PathBuf::from("/plain"),
            PathBuf::from("/new\nline"),
            PathBuf::from("#hash"),
        ];
        let text = alternates_file(&folders);
        assert_eq!(text, b"/plain\n\"/new\\nline\"\n\"#hash\"\n");
        assert_eq!(gix::odb::alternate::parse(&text).expect("parses"), folders);
    }
}
