//! SPEC §10 `copy`: which ignored entries of the main worktree a new session gets, named by
//! the manifest's `copy` patterns and by `.worktreeinclude`. The reader lists the ignored
//! entries; [`select`] picks those the patterns name when planning, so the plan shows them
//! (apply's `copy` copies them).

use gix::bstr::BStr;
use serde::Serialize;

/// The file at the main worktree's root that lists more entries to copy.
pub const INCLUDE_FILE: &str = ".worktreeinclude";

/// An ignored entry of the main worktree, as the reader found it. Ignored folders are
/// reported whole (as `git status --ignored` shows them), not file by file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct Ignored {
    /// Relative to the main worktree, `/`-separated.
    pub path: String,
    pub dir: bool,
}

/// The ignored entries that `patterns` (the manifest's `copy`) or `include` (the text of
/// `.worktreeinclude`) name. An entry is named when it or a folder above it matches, the
/// last matching pattern deciding (`!` excludes again), as in gitignore files.
pub fn select(patterns: &[String], include: Option<&[u8]>, ignored: &[Ignored]) -> Vec<Ignored> {
    if patterns.is_empty() && include.is_none_or(|t| t.trim_ascii().is_empty()) {
        return Vec::new();
    }
    let mut search = gix::ignore::Search::from_overrides(patterns.iter().map(String::as_str), Default::default());
    if let Some(text) = include {
        // Cannot fail: the bytes are in memory.
        let _ = search.add_patterns_buffer(text, INCLUDE_FILE, None, Default::default());
    }
    // `from_overrides` and the buffer are separate lists, each matched on its own: the
    // buffer's (added last) wins where both match, as a later line would.
    let matches = |path: &str, is_dir: bool| -> Option<bool> {
        let mut decision = None;
        let mut at = 0;
        // Folders above the entry first, then the entry: a folder's match covers its files.
        loop {
            let end = path.get(at..).and_then(|rest| rest.find('/')).map(|i| at + i);
            let (prefix, dir) = match end {
                Some(end) => (path.get(..end).unwrap_or(path), true),
                None => (path, is_dir),
            };
            if let Some(m) = search.pattern_matching_relative_path(
                BStr::new(prefix.as_bytes()),
                Some(dir),
                gix::glob::pattern::Case::Sensitive,
            ) {
                decision = Some(!m.pattern.is_negative());
            }
            match end {
                Some(end) => at = end + 1,
                None => return decision,
            }
        }
    };
    let chosen: Vec<Ignored> = ignored
        .iter()
        .filter(|e| matches(&e.path, e.dir) == Some(true))
        .cloned()
        .collect();
    // What a chosen folder holds is copied with it, not again on its own.
    let folders: std::collections::BTreeSet<&str> = chosen.iter().filter(|c| c.dir).map(|c| c.path.as_str()).collect();
    let inside_a_folder = |path: &str| {
        path.match_indices('/')
            .any(|(at, _)| path.get(..at).is_some_and(|above| folders.contains(above)))
    };
    chosen.iter().filter(|c| !inside_a_folder(&c.path)).cloned().collect()
}

/// Whether `pattern` could name something inside the ignored folder `dir`, which git lists
/// as one entry. Patterns with a slash (anchored to the main worktree's root) look inside
/// along their fixed start (`config/local.yml` inside `config/`), and `**/…` anywhere; a
/// pattern without a slash (`.env`, `*.yml`) matches what git lists, as `git status
/// --ignored` lists it, and does not make flowloom walk every ignored folder (`target/`,
/// `node_modules/`) looking for it.
pub fn could_match_inside(pattern: &str, dir: &str) -> bool {
    let p = pattern.trim();
    if p.is_empty() || p.starts_with('#') || p.starts_with('!') {
        return false;
    }
    let p = p.trim_end_matches('/');
    if p.starts_with("**/") {
        return true;
    }
    let anchored = p.trim_start_matches('/');
    if !anchored.contains('/') {
        return false;
    }
    let fixed = anchored
        .find(['*', '?', '[', '\\'])
        .map_or(anchored, |at| anchored.get(..at).unwrap_or(anchored));
    let inside = format!("{dir}/");
    fixed.starts_with(&inside) || inside.starts_with(fixed)
}

/// The patterns of `copy` lists and of `.worktreeinclude`, one per line.
pub fn pattern_lines<'a>(patterns: &'a [String], include: Option<&'a [u8]>) -> Vec<&'a str> {
    let mut lines: Vec<&str> = patterns.iter().map(String::as_str).collect();
    if let Some(text) = include.and_then(|t| std::str::from_utf8(t).ok()) {
        lines.extend(text.lines());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignored(entries: &[(&str, bool)]) -> Vec<Ignored> {
        entries
            .iter()
            .map(|(p, d)| Ignored {
                path: (*p).to_owned(),
                dir: *d,
            })
            .collect()
    }

    fn paths(items: &[Ignored]) -> Vec<&str> {
        items.iter().map(|i| i.path.as_str()).collect()
    }

    #[test]
    fn only_patterns_with_a_slash_look_inside_ignored_folders() {
        assert!(could_match_inside("config/local.yml", "config"));
        assert!(could_match_inside("/config/*.yml", "config"));
        assert!(could_match_inside("con*/x", "config"));
        assert!(could_match_inside("a/b/c", "a/b"));
        assert!(could_match_inside("**/*.yml", "node_modules"));
        assert!(!could_match_inside(".env", "node_modules"));
        assert!(!could_match_inside("*.yml", "config"));
        assert!(!could_match_inside("other/x", "config"));
        assert!(!could_match_inside("!config/x", "config"));
        assert!(!could_match_inside("# config/x", "config"));
    }

    #[test]
    fn patterns_name_entries_and_the_folders_above_them() {
        let found = ignored(&[
            (".env", false),
            ("node_modules", true),
            ("config/local.yml", false),
            ("target", true),
            ("logs/a.log", false),
        ]);
        let copy = vec![".env".to_owned(), "node_modules/".to_owned(), "config/".to_owned()];
        assert_eq!(
            paths(&select(&copy, None, &found)),
            [".env", "node_modules", "config/local.yml"]
        );
        assert_eq!(paths(&select(&[], Some(b"*.log\n"), &found)), ["logs/a.log"]);
        assert_eq!(
            paths(&select(&["*".to_owned()], Some(b"!target\n"), &found)),
            [".env", "node_modules", "config/local.yml", "logs/a.log"]
        );
        assert!(select(&[], Some(b"# only a comment\n"), &found).is_empty());
        // A folder and a file inside it both named: the folder, once.
        let nested = ignored(&[("config", true), ("config/local.yml", false)]);
        assert_eq!(
            paths(&select(
                &["config/".to_owned(), "config/local.yml".to_owned()],
                None,
                &nested
            )),
            ["config"]
        );
        assert_eq!(
            paths(&select(&["config/local.yml".to_owned()], None, &nested)),
            ["config/local.yml"]
        );
        assert!(select(&[], None, &found).is_empty());
    }
}
