//! Every name flowloom gives to something on disk or in the ref namespace, in one place.

use std::path::{Path, PathBuf};

/// Where local branches live.
pub const HEADS: &str = "refs/heads/";

/// `refs/flowloom/archive/`: where a forced removal keeps what it would lose, one archive
/// per numbered folder ([`archive_ref`]); the first version named them
/// `refs/flowloom/archive/<branch>` (read alike).
pub const ARCHIVE_PREFIX: &str = "refs/flowloom/archive/";

/// `refs/flowloom/archive/<n>/<branch>`: the `n`th archive, in a folder of its own, so that
/// archiving `feat` beside `feat/x` never meets git's file/folder clash of ref names.
pub fn archive_ref(n: u64, branch: &str) -> String {
    format!("{ARCHIVE_PREFIX}{n}/{branch}")
}

/// The revspec that names the commit `spec` names (`<spec>^{commit}`), for `rev_parse`. A
/// `:/text` spec (the youngest commit reachable from any ref whose message matches) takes
/// the rest of the spec as its text, so nothing is appended: it names a commit already.
pub fn commit_spec(spec: &str) -> String {
    let spec = dot_matches_newline(spec);
    if spec.starts_with(":/") {
        spec
    } else {
        format!("{spec}^{{commit}}")
    }
}

/// git searches messages (`:/text`, `<rev>^{/text}`) with a POSIX extended regular
/// expression compiled without `REG_NEWLINE`, so `.` matches a newline too; gix compiles
/// Rust's syntax, where `.` stops at one unless the pattern starts with `(?s)`. The flag goes
/// after git's `!-` (negated) or `!!` (a literal `!`) prefix.
fn dot_matches_newline(spec: &str) -> String {
    fn flagged(text: &str) -> String {
        let prefix = if text.starts_with("!-") || text.starts_with("!!") {
            2
        } else {
            0
        };
        if text.len() == prefix || (text.starts_with('!') && prefix == 0) {
            return text.to_owned(); // refused by git and gix alike
        }
        format!("{}(?s){}", &text[..prefix], &text[prefix..])
    }
    if let Some(text) = spec.strip_prefix(":/") {
        return format!(":/{}", flagged(text));
    }
    let mut parts = spec.split("^{/");
    let mut out = parts.next().unwrap_or_default().to_owned();
    for part in parts {
        out.push_str("^{/");
        out.push_str(&flagged(part));
    }
    out
}

/// The lock reason `git worktree add` (and gix) leave while a checkout is under way.
pub const INITIALIZING: &str = "initializing";

/// In a worktree's administration folder: a branch switch to the branch named inside is
/// under way.
pub const SWITCH_MARKER: &str = "flowloom-switch";

/// Inside the worktrees root: where a removal moves a worktree folder (one atomic rename)
/// once it has checked that nothing in it would be lost, before deleting it.
pub const TRASH_DIR: &str = ".flowloom-trash";

/// flowloom's folder in the git common dir (ownership record, intents).
pub const STATE_DIR: &str = "flowloom";

/// SPEC §11.3: the most TCP ports the sessions of one repository may hold on this machine
/// (the range has 10,000; one repository must not take them from every other).
pub const MAX_PORTS_PER_REPOSITORY: usize = 1000;

/// The folder, inside each worktree, that holds the session folders.
pub const SESSIONS: &str = "sessions";

/// The session folder inside a worktree: `sessions/<id>`.
pub fn session_dir(id: &str) -> PathBuf {
    Path::new(SESSIONS).join(id)
}

/// `sessions/<id>/artifacts`, relative to the worktree.
pub fn artifacts_dir(id: &str) -> PathBuf {
    session_dir(id).join("artifacts")
}

/// `sessions/<id>/metadata.json`, relative to the worktree.
pub fn metadata_file(id: &str) -> PathBuf {
    session_dir(id).join("metadata.json")
}

/// The full name of a local branch.
pub fn branch_ref(short: &str) -> String {
    format!("{HEADS}{short}")
}

/// Set by the shell function of `shell-init` to its shell's pid: that shell moves out of a
/// session `merge` removes, so it does not count as a process using it.
pub const SHELL_PID_VAR: &str = "FLOWLOOM_SHELL_PID";

/// Set by the shell function of `shell-init`: a file where `merge` writes the folder the
/// shell should change to once the session it ran in is gone.
pub const CD_FILE_VAR: &str = "FLOWLOOM_CD_FILE";

/// SPEC §2: `[A-Za-z0-9][A-Za-z0-9._-]*`, at most 64 characters, not ending in `.lock`.
pub fn is_valid_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    id.len() <= 64
        && first.is_ascii_alphanumeric()
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !id.ends_with(".lock")
}

/// The longest branch name flowloom accepts, in bytes: git stores a branch as a file under
/// `refs/heads/`, each part of the name a file name, and the whole a path.
pub const MAX_BRANCH_BYTES: usize = 1024;
/// The longest file name most filesystems allow (`NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;

/// git's rules for `refs/heads/<name>` (`git check-ref-format --branch`).
pub fn branch_problem(name: &str) -> Option<String> {
    use gix::validate::reference::name::Error as E;
    if name.len() > MAX_BRANCH_BYTES {
        return Some(format!(
            "it is {} bytes long; flowloom accepts at most {MAX_BRANCH_BYTES}",
            name.len()
        ));
    }
    if name.split('/').any(|part| part.len() > MAX_NAME_BYTES) {
        return Some(format!(
            "a part of it is longer than {MAX_NAME_BYTES} bytes, the longest file name git can store it in"
        ));
    }
    // gix checks the ref; these are the extra rules git applies to branch names.
    if name.starts_with('-') {
        return Some("it starts with `-`".into());
    }
    if name.starts_with('/') {
        return Some("it starts with `/`".into());
    }
    if name == "HEAD" || name == "@" {
        return Some(format!("`{name}` is reserved"));
    }
    let full = branch_ref(name);
    let error = gix::validate::reference::branch_name(full.as_bytes().into()).err()?;
    Some(match error {
        E::InvalidByte { byte } => format!("it contains {byte:?}"),
        E::RepeatedSlash => "it contains `//`".into(),
        E::RepeatedDot => "it contains `..`".into(),
        E::LockFileSuffix => "a part of it ends with `.lock`".into(),
        E::ReflogPortion => "it contains `@{`".into(),
        E::Asterisk => "it contains `*`".into(),
        E::StartsWithDot => "a part of it starts with `.`".into(),
        E::EndsWithDot => "it ends with `.`".into(),
        E::EndsWithSlash => "it ends with `/`".into(),
        E::Empty => "it is empty".into(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::commit_spec;

    #[test]
    fn message_searches_let_dot_match_a_newline_as_git_does() {
        assert_eq!(commit_spec(":/fix.*parser"), ":/(?s)fix.*parser");
        assert_eq!(commit_spec(":/!-un.elated"), ":/!-(?s)un.elated");
        assert_eq!(commit_spec(":/!!bang"), ":/!!(?s)bang");
        assert_eq!(commit_spec(":/!x"), ":/!x");
        assert_eq!(commit_spec(":/"), ":/");
        assert_eq!(commit_spec("main^{/fix.}"), "main^{/(?s)fix.}^{commit}");
        assert_eq!(commit_spec("main~2"), "main~2^{commit}");
    }
}
