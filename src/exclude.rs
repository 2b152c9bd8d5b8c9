//! SPEC §5: the session worktrees and session folders never show up as untracked files, and
//! nothing else is hidden. flowloom keeps one block of `info/exclude` (between its begin
//! and end comments) listing exactly the paths it makes: each session's worktree folder
//! when the root lies inside the main worktree, each session's `sessions/<id>/` folder,
//! and the root's trash folder. The rest of the file is never touched.

use std::path::{Path, PathBuf};

use crate::error::RepoError;

const BEGIN: &str = "# flowloom: begin (paths flowloom makes; this block is rewritten by flowloom apply)";
const END: &str = "# flowloom: end";
/// The comment of the first version, which listed whole folders (`/sessions/`).
const LEGACY: &str = "# flowloom: session worktrees and session folders";

fn file(common_dir: &Path) -> PathBuf {
    common_dir.join("info").join("exclude")
}

/// flowloom's lines as found in `info/exclude`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    /// The lines of flowloom's block, in order.
    pub lines: Vec<String>,
    /// Whether the first version's block (whole folders) is still there.
    pub legacy: bool,
}

pub fn read(common_dir: &Path) -> Found {
    let text = std::fs::read_to_string(file(common_dir)).unwrap_or_default();
    let (_, ours, legacy) = split(&text);
    Found { lines: ours, legacy }
}

/// The file's lines that are not flowloom's, flowloom's block, and whether a legacy block
/// was there.
fn split(text: &str) -> (Vec<&str>, Vec<String>, bool) {
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
            if line.starts_with('/') {
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
        lines.push(format!("/sessions/{}/", escape(id)));
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

/// Replace flowloom's block with `lines` (dropping the first version's block), keeping
/// everything else in the file as it is.
pub fn write(common_dir: &Path, lines: &[String]) -> Result<(), RepoError> {
    let path = file(common_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(RepoError::io("read", &path, e)),
    };
    let (others, _, _) = split(&text);
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
    crate::fsutil::write_atomic(&path, out.as_bytes())
}

/// Drop `lines` from flowloom's block (the lines of a session that is gone), keeping the
/// rest of the block and of the file.
pub fn drop_lines(common_dir: &Path, lines: &[String]) -> Result<(), RepoError> {
    let found = read(common_dir);
    let kept: Vec<String> = found.lines.into_iter().filter(|l| !lines.contains(l)).collect();
    write(common_dir, &kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_is_replaced_and_the_rest_kept() {
        let text = format!("# mine\n*.log\n{LEGACY}\n/sessions/\n/x/\n{BEGIN}\n/sessions/a/\n{END}\nafter\n");
        let (others, ours, legacy) = split(&text);
        assert_eq!(others, ["# mine", "*.log", "after"]);
        assert_eq!(ours, ["/sessions/a/"]);
        assert!(legacy);
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
