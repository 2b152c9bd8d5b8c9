//! SPEC §5: the session worktrees and session folders never show up as untracked files, and
//! nothing else is hidden. flowloom keeps one block of `info/exclude` (between its begin
//! and end comments) listing exactly the paths it makes: each session's worktree folder
//! when the root lies inside the main worktree, each session's `sessions/<id>/` folder,
//! and the root's trash folder. The rest of the file is never touched.

use std::path::{Path, PathBuf};

use crate::error::RepoError;
use crate::fsutil::ReadError;

const BEGIN: &str = "# flowloom: begin (paths flowloom makes; this block is rewritten by flowloom apply)";
const END: &str = "# flowloom: end";
/// The comment of the first version, which listed whole folders (`/sessions/`).
const LEGACY: &str = "# flowloom: session worktrees and session folders";

/// Where the file lies, below the git common dir.
const REL: &str = "info/exclude";

/// The largest `info/exclude` flowloom reads (and so rewrites): its block for tens of
/// thousands of sessions fits many times over.
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;

fn file(common_dir: &Path) -> PathBuf {
    common_dir.join(REL)
}

/// flowloom's lines as found in `info/exclude`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    /// The lines of flowloom's block, in order.
    pub lines: Vec<String>,
    /// Whether the first version's block (whole folders) is still there.
    pub legacy: bool,
    /// The folder lines right after the first version's comment (it wrote at most two):
    /// what that block may hide.
    pub legacy_lines: Vec<String>,
    /// Why the file was not read (a symlink, a special file, too large, not UTF-8): an
    /// error of the plan, which would have to rewrite it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<Unreadable>,
}

/// An `info/exclude` flowloom refuses to read, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unreadable {
    pub message: String,
    pub help: String,
}

/// The file's text; `""` when there is none. Only a regular file of at most [`MAX_BYTES`]
/// is read, and no symlink is followed (neither `info` nor `exclude`): flowloom rewrites
/// this file, and never writes through a symlink (SPEC §8).
fn read_text(common_dir: &Path) -> Result<String, Unreadable> {
    let path = file(common_dir);
    let refused = |why: String, help: &str| Unreadable {
        message: format!("refusing to read {}: {why}", path.display()),
        help: help.to_owned(),
    };
    let bytes = match crate::fsutil::read_regular_beneath(common_dir, Path::new(REL), MAX_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(String::new()),
        Err(e @ (ReadError::Symlink | ReadError::Parent { .. })) => {
            return Err(refused(
                e.to_string(),
                "flowloom keeps a block of this file up to date and never writes through a symlink: replace \
                 the symlink with a regular file holding the same lines, then run flowloom again",
            ));
        }
        Err(e @ ReadError::NotRegular { .. }) => {
            return Err(refused(
                e.to_string(),
                "git reads ignore patterns from it, and flowloom keeps a block of it: make it a regular file \
                 (or remove it), then run flowloom again",
            ));
        }
        Err(e @ ReadError::TooLarge { .. }) => {
            return Err(refused(
                e.to_string(),
                "an exclude file is a short list of patterns; check what wrote so much into it",
            ));
        }
        Err(ReadError::Io(e)) => {
            return Err(Unreadable {
                message: format!("cannot read {}: {e}", path.display()),
                help: "check the permissions of the git directory".to_owned(),
            });
        }
    };
    String::from_utf8(bytes).map_err(|e| {
        refused(
            format!(
                "it is not valid UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
            "flowloom rewrites this file and keeps every other line of it as it is, which it can only do for \
             UTF-8 text: save it as UTF-8",
        )
    })
}

pub fn read(common_dir: &Path) -> Found {
    match read_text(common_dir) {
        Ok(text) => {
            let (_, ours, legacy) = split(&text, &[]);
            let legacy_lines = text
                .lines()
                .skip_while(|l| *l != LEGACY)
                .skip(1)
                .take(2)
                .take_while(|l| l.starts_with('/') && l.ends_with('/'))
                .map(str::to_owned)
                .collect();
            Found {
                lines: ours,
                legacy,
                legacy_lines,
                unreadable: None,
            }
        }
        Err(why) => Found {
            unreadable: Some(why),
            ..Found::default()
        },
    }
}

/// The file's lines that are not flowloom's, flowloom's block, and whether a legacy block
/// was there. `legacy_lines`: the lines the first version wrote below its comment, dropped
/// with it; any other line is someone's and stays.
fn split<'t>(text: &'t str, legacy_lines: &[String]) -> (Vec<&'t str>, Vec<String>, bool) {
    let mut others = Vec::new();
    let mut ours = Vec::new();
    let mut legacy = false;
    let mut in_block = false;
    let mut in_legacy = false;
    for line in text.lines() {
        if in_block {
            if line == END {
                in_block = false;
            } else {
                ours.push(line.to_owned());
            }
            continue;
        }
        if in_legacy {
            if legacy_lines.iter().any(|l| l == line) {
                continue;
            }
            in_legacy = false;
        }
        if line == BEGIN {
            in_block = true;
        } else if line == LEGACY {
            legacy = true;
            in_legacy = true;
        } else {
            others.push(line);
        }
    }
    (others, ours, legacy)
}

/// The lines flowloom wants: for each session (`id`, worktree folder name), its worktree
/// folder (when `root` lies inside the main worktree `top`) and its session folder; and
/// the trash folder of the root. Sorted, without repeats.
pub fn wanted<'a>(
    top: Option<&Path>,
    root: &Path,
    sessions: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<String> {
    let root_rel: Option<String> = top
        .and_then(|top| root.strip_prefix(top).ok())
        .filter(|rel| !rel.as_os_str().is_empty())
        .map(|rel| {
            rel.components()
                .map(|c| escape(&c.as_os_str().to_string_lossy()))
                .collect::<Vec<_>>()
                .join("/")
        });
    let mut lines = Vec::new();
    if let Some(r) = &root_rel {
        lines.push(format!("/{r}/{}/", crate::names::TRASH_DIR));
    }
    for (id, worktree) in sessions {
        if let Some(r) = &root_rel {
            lines.push(format!("/{r}/{}/", escape(worktree)));
        }
        lines.push(format!("/{}/{}/", crate::names::SESSIONS, escape(id)));
    }
    lines.sort();
    lines.dedup();
    lines
}

/// A path component as a gitignore pattern that matches only itself.
fn escape(component: &str) -> String {
    let mut out = String::with_capacity(component.len());
    for c in component.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '!' | '#') {
            out.push('\\');
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.pop();
        out.push_str("\\ ");
    }
    out
}

/// The lines the first version wrote (`/<root>/`, `/sessions/`), as it wrote them.
pub fn legacy_lines(top: Option<&Path>, root: &Path) -> Vec<String> {
    let mut lines = vec![format!("/{}/", crate::names::SESSIONS)];
    if let Some(rel) = top.and_then(|top| root.strip_prefix(top).ok()) {
        let rel: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        lines.push(format!("/{}/", rel.join("/")));
    }
    lines.dedup();
    lines
}

/// Replace flowloom's block with `lines`, and drop the first version's comment with the
/// `legacy` lines below it, keeping everything else in the file as it is.
pub fn write(common_dir: &Path, lines: &[String], legacy: &[String]) -> Result<(), RepoError> {
    let text = read_text(common_dir).map_err(|why| RepoError::message(format!("{}; {}", why.message, why.help)))?;
    let (others, _, _) = split(&text, legacy);
    let mut out = String::new();
    for line in others {
        out.push_str(line);
        out.push('\n');
    }
    if !lines.is_empty() {
        out.push_str(BEGIN);
        out.push('\n');
        for line in lines {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(END);
        out.push('\n');
    }
    // Atomic, and refused when `exclude` or `info` is a symlink or a special file.
    write_file(common_dir, out.as_bytes())
}

/// The file written (atomically, refused through a symlink). It is git's file (`git init`
/// makes it): one that was there keeps its mode, as git never rewrites it; one made here
/// (and `info/`) gets the umask's mode, with git's under `core.sharedRepository`.
fn write_file(common_dir: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    use std::os::unix::fs::PermissionsExt;
    let file = common_dir.join(REL);
    let made = file
        .parent()
        .map(crate::fsutil::shared::missing_folders)
        .unwrap_or_default();
    let mode = std::fs::symlink_metadata(&file)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.permissions().mode() & 0o7777);
    crate::fsutil::write_beneath(common_dir, Path::new(REL), bytes)?;
    made.iter().for_each(|folder| crate::fsutil::shared::adjust(folder));
    match mode {
        Some(mode) => std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
            .map_err(|e| RepoError::io("keep the mode of", &file, e))?,
        None => crate::fsutil::shared::adjust(&file),
    }
    Ok(())
}

/// Make sure `line` is in the file, outside flowloom's block, which apply rewrites: the
/// local layer (`/flowloom.local.toml`, SPEC §11.1) is a file of the user's, kept out of
/// commits whether or not any session exists.
pub fn ensure_line(common_dir: &Path, line: &str) -> Result<(), RepoError> {
    let mut text = read_text(common_dir).map_err(|why| RepoError::message(format!("{}; {}", why.message, why.help)))?;
    if text.lines().any(|l| l == line) {
        return Ok(());
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    write_file(common_dir, text.as_bytes())
}

/// The folders (relative to a worktree) that flowloom's `lines` hide.
pub fn line_paths(lines: &[String]) -> Vec<PathBuf> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix('/')?.strip_suffix('/'))
        .map(|l| {
            let mut out = String::with_capacity(l.len());
            let mut chars = l.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    c => out.push(c),
                }
            }
            PathBuf::from(out)
        })
        .collect()
}

/// Drop `lines` from flowloom's block (the lines of a session that is gone), keeping the
/// rest of the block and of the file.
pub fn drop_lines(common_dir: &Path, lines: &[String]) -> Result<(), RepoError> {
    let found = read(common_dir);
    let drop: std::collections::HashSet<&String> = lines.iter().collect();
    let kept: Vec<String> = found.lines.into_iter().filter(|l| !drop.contains(l)).collect();
    write(common_dir, &kept, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_is_replaced_and_the_rest_kept() {
        let text = format!("# mine\n*.log\n{LEGACY}\n/sessions/\n/x/\n{BEGIN}\n/sessions/a/\n{END}\nafter\n");
        let (others, ours, legacy) = split(&text, &["/sessions/".to_owned(), "/x/".to_owned()]);
        assert_eq!(others, ["# mine", "*.log", "after"]);
        // A line of someone's right after the first version's block stays.
        let text = format!("{LEGACY}\n/sessions/\n/build/\n/.env.local\n");
        let (others, _, _) = split(&text, &["/sessions/".to_owned()]);
        assert_eq!(others, ["/build/", "/.env.local"]);
        assert_eq!(ours, ["/sessions/a/"]);
        assert!(legacy);
    }

    #[test]
    fn line_paths_undo_the_escaping() {
        let lines = wanted(Some(Path::new("/r")), Path::new("/r/wt"), [("b", "odd*[name] ")]);
        assert_eq!(
            line_paths(&lines),
            [
                PathBuf::from("sessions/b"),
                PathBuf::from("wt/.flowloom-trash"),
                PathBuf::from("wt/odd*[name] "),
            ]
        );
    }

    #[test]
    fn wanted_lists_exactly_the_session_paths_escaped() {
        let lines = wanted(
            Some(Path::new("/r")),
            Path::new("/r/sessions"),
            [("a", "shell-instance-a"), ("b", "odd*[name] ")],
        );
        assert_eq!(
            lines,
            [
                "/sessions/.flowloom-trash/",
                "/sessions/a/",
                "/sessions/b/",
                "/sessions/odd\\*\\[name\\]\\ /",
                "/sessions/shell-instance-a/",
            ]
        );
        // A root outside the main worktree hides only the session folders.
        assert_eq!(
            wanted(Some(Path::new("/r")), Path::new("/elsewhere"), [("a", "w")]),
            ["/sessions/a/"]
        );
    }
}
