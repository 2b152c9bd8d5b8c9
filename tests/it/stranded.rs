//! Sessions found where git says they are (SPEC §3, §7, §11.3): the ownership record is
//! what flowloom owns. `rm` and `merge` right after a `git worktree move` remove the
//! worktree where it now is, with every check of §7 there, or are blocked; an owned
//! session left outside a changed `root` and no longer declared is an orphan and removed
//! where it lies; worktrees flowloom does not own outside the root stay untouched. Git is
//! the oracle: `git worktree list --porcelain` and `git branch`.

use std::path::{Path, PathBuf};

use crate::common::TestEnv;

fn session(env: &TestEnv, id: &str) -> PathBuf {
    env.path(&format!("sessions/shell-instance-{id}"))
}

fn listed(env: &TestEnv) -> String {
    env.git(&["worktree", "list", "--porcelain"])
}

fn lists(env: &TestEnv, dir: &Path) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    listed(env).contains(&format!("worktree {}\n", dir.display()))
}

fn has_branch(env: &TestEnv, branch: &str) -> bool {
    env.git(&["branch", "--list", branch]).contains(branch)
}

fn converged(env: &TestEnv) {
    let (code, out, err) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}{err}");
}

fn git_move(env: &TestEnv, from: &Path, to: &Path) {
    env.git(&[
        "worktree",
        "move",
        from.to_str().expect("utf8"),
        to.to_str().expect("utf8"),
    ]);
}

/// Two sessions made; the one to remove moved by hand to `to`.
fn moved(env: &TestEnv, to: &Path) {
    env.manifest("[sessions.a]\n[sessions.keep]\n");
    env.apply();
    git_move(env, &session(env, "a"), to);
    assert!(lists(env, to));
}

#[test]
fn rm_after_git_worktree_move_removes_the_moved_worktree_and_its_branch() {
    for inside in [true, false] {
        let env = TestEnv::new();
        let to = if inside {
            env.path("sessions/moved-by-hand")
        } else {
            env.tmp.path().join("elsewhere")
        };
        moved(&env, &to);
        let (code, out, err) = env.run(&["rm", "--yes", "a"]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("moved-by-hand") || out.contains("elsewhere"),
            "names where it is: {out}"
        );
        assert!(!to.exists(), "{out}{err}");
        assert!(!lists(&env, &to), "{}", listed(&env));
        assert_eq!(
            listed(&env).matches("worktree ").count(),
            2,
            "main and keep: {}",
            listed(&env)
        );
        assert!(!has_branch(&env, "session/a"));
        assert!(has_branch(&env, "session/keep"));
        let manifest = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
        assert!(!manifest.contains("[sessions.a]"), "{manifest}");
        converged(&env);
        env.fsck();
    }
}

#[test]
fn rm_after_git_worktree_move_is_blocked_by_work_there_and_changes_nothing() {
    let env = TestEnv::new();
    let to = env.tmp.path().join("elsewhere");
    moved(&env, &to);
    std::fs::write(to.join("notes.txt"), "work\n").expect("write");
    let before = (listed(&env), env.branches());
    let (code, out, err) = env.run(&["rm", "--yes", "a"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("notes.txt"), "names the file where it is: {err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!((listed(&env), env.branches()), before);
    assert_eq!(std::fs::read_to_string(to.join("notes.txt")).expect("kept"), "work\n");
    let manifest = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    assert!(manifest.contains("[sessions.a]"), "{manifest}");
    // Forced, its work is archived and the moved worktree goes.
    let (code, out, err) = env.run(&["rm", "--yes", "--force", "a"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!to.exists());
    assert!(!has_branch(&env, "session/a"));
    let archived = env.git(&["for-each-ref", "--format=%(refname)", "refs/flowloom/archive/"]);
    assert!(archived.contains("session/a"), "{archived}");
    converged(&env);
    env.fsck();
}

#[test]
fn merge_after_git_worktree_move_lands_and_removes_the_moved_worktree() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    env.commit_file(&session(&env, "a"), "feature.txt", "feature\n", "feature");
    let to = env.tmp.path().join("elsewhere");
    git_move(&env, &session(&env, "a"), &to);
    let (code, out, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!to.exists(), "{out}{err}");
    assert_eq!(listed(&env).matches("worktree ").count(), 1, "{}", listed(&env));
    assert!(!has_branch(&env, "session/a"));
    assert_eq!(
        std::fs::read_to_string(env.path("feature.txt")).expect("landed"),
        "feature\n"
    );
    converged(&env);
    env.fsck();
}

/// A changed `root` and a session dropped in the same edit: the kept one moves to the new
/// root, the dropped one (an orphan now outside the root) is removed where it lies, with
/// every check; a worktree made by hand outside the root stays.
#[test]
fn an_orphan_left_outside_a_changed_root_is_removed_where_it_lies() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n[sessions.b]\n[sessions.dirty]\n");
    env.apply();
    let by_hand = env.tmp.path().join("by-hand");
    env.git(&["worktree", "add", "-q", "-b", "hand", by_hand.to_str().expect("utf8")]);
    std::fs::write(session(&env, "dirty").join("notes.txt"), "work\n").expect("write");
    env.manifest("[defaults]\nroot = \"../{repo}.sessions\"\n[sessions.a]\n");
    let (code, out, err) = env.run(&["plan"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("- b") && out.contains("sessions/shell-instance-b"),
        "{out}"
    );
    assert!(out.contains("! dirty"), "{out}");
    assert!(!out.contains("by-hand"), "{out}");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "the dirty one is blocked: {out}{err}");
    let new_a = env.tmp.path().join("repo.sessions/shell-instance-a");
    assert!(lists(&env, &new_a), "{}", listed(&env));
    assert!(!session(&env, "b").exists());
    assert!(!lists(&env, &session(&env, "b")));
    assert!(!has_branch(&env, "session/b"));
    assert!(lists(&env, &session(&env, "dirty")), "blocked, kept");
    assert!(has_branch(&env, "session/dirty"));
    assert!(
        lists(&env, &by_hand) && has_branch(&env, "hand"),
        "not flowloom's: untouched"
    );
    std::fs::remove_file(session(&env, "dirty").join("notes.txt")).expect("rm");
    env.apply();
    assert!(!lists(&env, &session(&env, "dirty")));
    assert!(!has_branch(&env, "session/dirty"));
    assert!(lists(&env, &by_hand));
    converged(&env);
    let main = env.git(&["status", "--porcelain"]);
    assert!(!main.contains("sessions/"), "{main}");
    env.fsck();
}
