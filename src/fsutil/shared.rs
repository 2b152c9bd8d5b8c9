//! `core.sharedRepository`: the modes git gives what it creates in a repository shared with
//! a group or everybody (`adjust_shared_perm` in git's path.c). Files and folders flowloom
//! creates where git would create them (the worktree's administration files, refs, reflogs,
//! the worktree folder and the folders leading to it, flowloom's own files in the git dir)
//! get the same modes.
//!
//! The setting is the repository's: read once when it is opened ([`set`]), as git keeps it
//! for the process (`get_shared_repository`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

/// `umask` (or `false`, `0`): nothing changes.
const UMASK: i32 = 0;
/// `group` (or `true`, `1`): the group gets what the owner has.
const GROUP: i32 = 0o660;
/// `all`, `world`, `everybody` (or `2`): the group and others may read too.
const EVERYBODY: i32 = 0o664;

/// The process's setting, as [`parse`] gives it.
static SHARED: AtomicI32 = AtomicI32::new(UMASK);

/// git's reading of `core.sharedRepository` (`git_config_perm`): `value` is `None` for a
/// key without `=`. A positive result is added to the umask's mode (`group`, `everybody`), a
/// negative one replaces it (`0640` → `-0o640`). `None` for a value git refuses (not a
/// boolean, or a mode that does not give the owner read and write).
pub fn parse(value: Option<&str>) -> Option<i32> {
    let Some(value) = value else { return Some(GROUP) };
    match value {
        "umask" => return Some(UMASK),
        "group" => return Some(GROUP),
        "all" | "world" | "everybody" => return Some(EVERYBODY),
        _ => {}
    }
    let digits = value.trim_start();
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    let Ok(mode) = i32::from_str_radix(digits, 8) else {
        return match value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Some(GROUP),
            "false" | "no" | "off" | "" => Some(UMASK),
            _ => None,
        };
    };
    match mode {
        0 => Some(UMASK),
        1 => Some(GROUP),
        2 => Some(EVERYBODY),
        mode if mode & 0o600 != 0o600 => None,
        mode => Some(-(mode & 0o666)),
    }
}

/// Remember the repository's setting for this process ([`parse`]'s value).
pub fn set(shared: i32) {
    SHARED.store(shared, Ordering::Relaxed);
}

/// The mode git gives a file of `mode` (`calc_shared_perm`).
fn calc(mode: u32, shared: i32) -> u32 {
    let mut tweak = shared.unsigned_abs();
    if mode & 0o200 == 0 {
        tweak &= !0o222;
    }
    if mode & 0o100 != 0 {
        tweak |= (tweak & 0o444) >> 2;
    }
    if shared < 0 {
        (mode & !0o777) | tweak
    } else {
        mode | tweak
    }
}

/// The mode git's `adjust_shared_perm` gives `mode` (folders also get `x` where `r` is, and
/// the set-group-id bit when the group gets anything).
pub fn adjusted(mode: u32, is_dir: bool, shared: i32) -> u32 {
    let mut new = calc(mode & 0o7777, shared);
    if is_dir {
        new |= (new & 0o444) >> 2;
        if new & 0o060 != 0 {
            new |= 0o2000;
        }
    }
    new
}

/// `adjust_shared_perm` on `path` (a file or a folder; a symlink is left alone): nothing
/// unless the repository is shared. Best effort, as the modes only widen who may share it.
pub fn adjust(path: &Path) {
    let shared = SHARED.load(Ordering::Relaxed);
    if shared == UMASK {
        return;
    }
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = meta.permissions().mode() & 0o7777;
    let new = adjusted(mode, meta.is_dir(), shared);
    if new != mode {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(new));
    }
}

/// The folders from `path` up that do not exist yet (deepest first): the ones a
/// `create_dir_all` of `path` makes, which git adjusts as it makes them.
pub fn missing_folders(path: &Path) -> Vec<std::path::PathBuf> {
    path.ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_err())
        .map(Path::to_path_buf)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_git_reads_them() {
        assert_eq!(parse(None), Some(GROUP));
        assert_eq!(parse(Some("group")), Some(GROUP));
        assert_eq!(parse(Some("true")), Some(GROUP));
        assert_eq!(parse(Some("1")), Some(GROUP));
        assert_eq!(parse(Some("everybody")), Some(EVERYBODY));
        assert_eq!(parse(Some("2")), Some(EVERYBODY));
        assert_eq!(parse(Some("umask")), Some(UMASK));
        assert_eq!(parse(Some("false")), Some(UMASK));
        assert_eq!(parse(Some("0640")), Some(-0o640));
        assert_eq!(parse(Some("0777")), Some(-0o666));
        assert_eq!(parse(Some("0400")), None, "the owner must read and write");
        assert_eq!(parse(Some("Group")), None, "git's names are lower case");
    }

    #[test]
    fn modes_are_gits() {
        // Under umask 022: a file 0644, a folder 0755.
        assert_eq!(adjusted(0o644, false, GROUP), 0o664);
        assert_eq!(adjusted(0o755, true, GROUP), 0o2775);
        assert_eq!(adjusted(0o644, false, -0o640), 0o640);
        assert_eq!(adjusted(0o755, true, -0o640), 0o2750);
        assert_eq!(adjusted(0o755, true, -0o600), 0o700);
        // Under umask 077.
        assert_eq!(adjusted(0o600, false, EVERYBODY), 0o664);
        assert_eq!(adjusted(0o700, true, EVERYBODY), 0o2775);
        assert_eq!(adjusted(0o755, false, GROUP), 0o775, "x follows r for executables");
    }
}
