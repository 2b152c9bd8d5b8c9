//! SPEC §5: the worktrees root and the session folders never show up as untracked files.
//! flowloom keeps `/<root>/` and `/sessions/` in the repository's `info/exclude`.

use std::path::{Path, PathBuf};

use crate::error::RepoError;
use crate::manifest::Manifest;

fn file(common_dir: &Path) -> PathBuf {
    common_dir.join("info").join("exclude")
}

/// The patterns flowloom needs, rooted at the repository's top level.
pub fn wanted(manifest: &Manifest, repo_top: Option<&Path>) -> Vec<String> {
    let root = match repo_top.and_then(|top| manifest.root_dir().strip_prefix(top).ok().map(Path::to_owned)) {
        Some(rel) => rel,
        None => manifest.defaults.root.clone(),
    };
    let root = root
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    let mut lines = vec![format!("/{root}/")];
    if root != "sessions" {
        lines.push("/sessions/".to_owned());
    }
    lines
}

/// Which of the wanted lines `info/exclude` lacks.
pub fn missing(common_dir: &Path, manifest: &Manifest, repo_top: Option<&Path>) -> Vec<String> {
    let text = std::fs::read_to_string(file(common_dir)).unwrap_or_default();
    wanted(manifest, repo_top)
        .into_iter()
        .filter(|w| !text.lines().any(|l| l.trim() == w))
        .collect()
}

/// Append the missing lines, keeping everything that is there.
pub fn ensure(common_dir: &Path, lines: &[String]) -> Result<(), RepoError> {
    if lines.is_empty() {
        return Ok(());
    }
    let path = file(common_dir);
    let mut text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(RepoError::io("read", &path, e)),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# flowloom: session worktrees and session folders\n");
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    crate::fsutil::write_atomic(&path, text.as_bytes())
}
