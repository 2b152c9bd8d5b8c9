//! SPEC §11.2: `rm` is all or nothing. Blocked, it changes nothing (the manifest
//! included), exits 1 and names the blocking files (at most 20, then a count) with the
//! command that would force it. Through the shell function, the shell that runs it from
//! inside the session does not block it, and lands in the main worktree. `path` exits 1
//! for a declared session without a worktree (SPEC §4).

use std::path::Path;

use crate::common::TestEnv;

#[test]
fn a_blocked_rm_changes_nothing_and_names_the_files() {
    let env = TestEnv::new();
    env.manifest("");
    let (code, out, err) = env.run(&["new", "wip"]);
    assert_eq!(code, 0, "{err}");
    let path = std::path::PathBuf::from(out.trim());
    for i in 0..25 {
        std::fs::write(path.join(format!("note-{i:02}.txt")), "work").expect("write");
    }
    let local = std::fs::read_to_string(env.path("flowloom.local.toml")).expect("local");
    let record = std::fs::read(env.path(".git/flowloom/owned.json")).unwrap_or_default();
    let (code, out, err) = env.run(&["rm", "wip", "--yes"]);
    assert_eq!(code, 1, "{out}\n{err}");
    // As one line, without the report's wrapping.
    let err = err.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(err.contains("session `wip` cannot be removed"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(err.contains("note-00.txt") && err.contains("note-19.txt"), "{err}");
    assert!(!err.contains("note-20.txt"), "at most 20 named: {err}");
    assert!(err.contains("and 5 more"), "{err}");
    assert!(err.contains("flowloom rm --yes --force wip"), "{err}");
    assert_eq!(
        std::fs::read_to_string(env.path("flowloom.local.toml")).expect("local"),
        local
    );
    assert_eq!(
        std::fs::read(env.path(".git/flowloom/owned.json")).unwrap_or_default(),
        record
    );
    assert!(path.join("note-24.txt").exists());
    assert_eq!(env.worktrees().len(), 1, "{:?}", env.worktrees());
    // A plan shows nothing to do: the session is still declared.
    let (code, _, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0);
    // Forced, it goes, and only then is the declaration dropped.
    let (code, _, err) = env.run(&["rm", "wip", "--yes", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(!path.exists());
    assert!(
        !std::fs::read_to_string(env.path("flowloom.local.toml"))
            .expect("local")
            .contains("wip")
    );
    env.fsck();
}

#[test]
fn rm_without_yes_on_a_pipe_refuses_and_changes_nothing() {
    let env = TestEnv::new();
    env.manifest("");
    let (code, _, err) = env.run(&["new", "wip"]);
    assert_eq!(code, 0, "{err}");
    let local = std::fs::read_to_string(env.path("flowloom.local.toml")).expect("local");
    let (code, _, err) = env.run(&["rm", "wip"]);
    assert_eq!(code, 1, "{err}");
    let err = err.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        err.contains("refusing to remove a session without confirmation: standard input is not a terminal"),
        "{err}"
    );
    assert!(
        err.contains("review `flowloom plan`, then run `flowloom rm --yes ID`"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("flowloom.local.toml")).expect("local"),
        local
    );
    assert_eq!(env.worktrees().len(), 1, "{:?}", env.worktrees());
}

#[test]
fn path_exits_1_for_a_session_without_a_worktree() {
    let env = TestEnv::new();
    env.manifest("[sessions.later]\n");
    let (code, out, err) = env.run(&["path", "later"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("flowloom apply"), "{err}");
    env.apply();
    let (code, out, _) = env.run(&["path", "later"]);
    assert_eq!(code, 0);
    assert!(Path::new(out.trim()).is_dir());
}
