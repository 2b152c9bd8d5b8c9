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

/// Why git would refuse a name for a branch (`git check-ref-format --branch`), in the
/// words the manifest's findings and the command line's errors show after "because".
#[derive(Debug, thiserror::Error)]
pub enum BranchProblem {
    #[error("it is {bytes} bytes long; flowloom accepts at most {MAX_BRANCH_BYTES}")]
    TooLong { bytes: usize },
    #[error("a part of it is longer than {MAX_NAME_BYTES} bytes, the longest file name git can store it in")]
    PartTooLong,
    #[error("it starts with `-`")]
    LeadingDash,
    #[error("it starts with `/`")]
    LeadingSlash,
    /// `HEAD` or `@`.
    #[error("`{name}` is reserved")]
    Reserved { name: &'static str },
    #[error("it contains {byte:?}")]
    InvalidByte { byte: gix::bstr::BString },
    #[error("it contains `//`")]
    RepeatedSlash,
    #[error("it contains `..`")]
    RepeatedDot,
    #[error("a part of it ends with `.lock`")]
    LockFileSuffix,
    #[error("it contains `@{{`")]
    ReflogPortion,
    #[error("it contains `*`")]
    Asterisk,
    #[error("a part of it starts with `.`")]
    StartsWithDot,
    #[error("it ends with `.`")]
    EndsWithDot,
    #[error("it ends with `/`")]
    EndsWithSlash,
    #[error("it is empty")]
    Empty,
    /// A rule of gix's this list does not name yet.
    #[error(transparent)]
    Other(gix::validate::reference::name::Error),
}

/// git's rules for `refs/heads/<name>` (`git check-ref-format --branch`): why `name` breaks
/// them, if it does.
pub fn branch_name_problem(name: &str) -> Option<BranchProblem> {
    use gix::validate::reference::name::Error as E;
    if name.len() > MAX_BRANCH_BYTES {
        return Some(BranchProblem::TooLong { bytes: name.len() });
    }
    if name.split('/').any(|part| part.len() > MAX_NAME_BYTES) {
        return Some(BranchProblem::PartTooLong);
    }
    // gix checks the ref; these are the extra rules git applies to branch names.
    if name.starts_with('-') {
        return Some(BranchProblem::LeadingDash);
    }
    if name.starts_with('/') {
        return Some(BranchProblem::LeadingSlash);
    }
    match name {
        "HEAD" => return Some(BranchProblem::Reserved { name: "HEAD" }),
        "@" => return Some(BranchProblem::Reserved { name: "@" }),
        _ => {}
    }
    let full = branch_ref(name);
    let error = gix::validate::reference::branch_name(full.as_bytes().into()).err()?;
    Some(match error {
        E::InvalidByte { byte } => BranchProblem::InvalidByte { byte },
        E::RepeatedSlash => BranchProblem::RepeatedSlash,
        E::RepeatedDot => BranchProblem::RepeatedDot,
        E::LockFileSuffix => BranchProblem::LockFileSuffix,
        E::ReflogPortion => BranchProblem::ReflogPortion,
        E::Asterisk => BranchProblem::Asterisk,
        E::StartsWithDot => BranchProblem::StartsWithDot,
        E::EndsWithDot => BranchProblem::EndsWithDot,
        E::EndsWithSlash => BranchProblem::EndsWithSlash,
        E::Empty => BranchProblem::Empty,
        other => BranchProblem::Other(other),
    })
}

/// [`branch_name_problem`] in words, for the callers that only show it (the manifest's
/// findings, `flowloom new`): decide on the typed reason, never on these words.
pub fn branch_problem(name: &str) -> Option<String> {
    branch_name_problem(name).map(|problem| problem.to_string())
}

#[cfg(test)]
mod tests {
    use super::{BranchProblem, branch_name_problem, branch_problem, commit_spec};

    #[test]
    fn branch_problems_are_typed_reasons() {
        let problem = |name: &str| branch_name_problem(name);
        assert!(problem("feat/x").is_none());
        assert!(matches!(problem("-x"), Some(BranchProblem::LeadingDash)));
        assert!(matches!(problem("/x"), Some(BranchProblem::LeadingSlash)));
        assert!(matches!(
            problem("HEAD"),
            Some(BranchProblem::Reserved { name: "HEAD" })
        ));
        assert!(matches!(problem("@"), Some(BranchProblem::Reserved { name: "@" })));
        assert!(matches!(problem("a..b"), Some(BranchProblem::RepeatedDot)));
        assert!(matches!(problem("a//b"), Some(BranchProblem::RepeatedSlash)));
        assert!(matches!(problem("a.lock"), Some(BranchProblem::LockFileSuffix)));
        assert!(matches!(problem("a@{b"), Some(BranchProblem::ReflogPortion)));
        assert!(matches!(problem("a*"), Some(BranchProblem::Asterisk)));
        assert!(matches!(problem("a/.b"), Some(BranchProblem::StartsWithDot)));
        assert!(matches!(problem("a."), Some(BranchProblem::EndsWithDot)));
        assert!(matches!(problem("a/"), Some(BranchProblem::EndsWithSlash)));
        assert!(matches!(problem("a b"), Some(BranchProblem::InvalidByte { .. })));
        assert!(matches!(
            problem(&"a".repeat(1025)),
            Some(BranchProblem::TooLong { bytes: 1025 })
        ));
        assert!(matches!(problem(&"a".repeat(256)), Some(BranchProblem::PartTooLong)));
    }

    #[test]
    fn branch_problems_read_as_before() {
        assert_eq!(
            branch_problem(&"a".repeat(1025)).as_deref(),
            Some("it is 1025 bytes long; flowloom accepts at most 1024")
        );
        assert_eq!(branch_problem("HEAD").as_deref(), Some("`HEAD` is reserved"));
        assert_eq!(branch_problem("a@{b").as_deref(), Some("it contains `@{`"));
        assert_eq!(branch_problem("a b").as_deref(), Some("it contains \" \""));
    }

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
