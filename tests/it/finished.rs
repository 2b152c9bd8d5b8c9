//! Finished work leaves by itself (SPEC §7): a session whose branch is integrated into its
//! base — merged, squash-merged, rebase-merged, cherry-picked — is removed by a plain
//! apply; one with work that is in no base is retained (worktree gone, branch kept).

use crate::common::TestEnv;

/// Sessions `keep` and `done` applied; `done` has two commits of work.
fn with_work() -> (TestEnv, std::path::PathBuf) {
    let env = TestEnv::new();
    env.manifest("[sessions.keep]\n[sessions.done]\n");
    env.apply();
    let wt = env.path("sessions/shell-instance-done");
    env.commit_file(&wt, "feature.txt", "one\n", "feature one");
    env.commit_file(&wt, "other.txt", "two\n", "feature two");
    (env, wt)
}

/// Drop `done` from the manifest; a plain apply must delete its worktree and branch.
fn removed_without_force(env: &TestEnv, how: &str) {
    env.manifest("[sessions.keep]\n");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{how}: {out}\n{err}");
    assert!(!env.path("sessions/shell-instance-done").exists(), "{how}: {out}");
    assert!(!env.branches().contains(&"session/done".to_owned()), "{how}: {out}");
    assert!(
        err.contains("Apply complete: 0 created, 0 updated, 1 removed, 0 retained, 0 blocked"),
        "{how}: {err}"
    );
    env.fsck();
}

#[test]
fn a_squash_merged_session_is_removed() {
    let (env, _) = with_work();
    env.git(&["merge", "--squash", "-q", "session/done"]);
    env.git(&["commit", "-q", "-m", "squash of done"]);
    env.manifest("[sessions.keep]\n");
    let (_, out, _) = env.run(&["plan"]);
    assert!(out.contains("delete branch (same tree as its base)"), "{out}");
    removed_without_force(&env, "squash");
}

#[test]
fn a_squash_merged_session_is_removed_after_main_changed_the_same_files() {
    let (env, _) = with_work();
    env.git(&["merge", "--squash", "-q", "session/done"]);
    env.git(&["commit", "-q", "-m", "squash of done"]);
    env.write("feature.txt", "one, then edited on main\n");
    env.commit("edit on main");
    removed_without_force(&env, "squash, then edited");
}

#[test]
fn a_rebase_merged_session_is_removed() {
    let (env, _) = with_work();
    // main moves on, then the session's commits are replayed on top (a rebase merge).
    env.write("main.txt", "main\n");
    env.commit("main moves");
    let picks = env.git(&["rev-list", "--reverse", "main..session/done"]);
    for pick in picks.lines() {
        env.git(&["cherry-pick", pick]);
    }
    removed_without_force(&env, "rebase");
}

#[test]
fn a_merge_committed_session_is_removed() {
    let (env, _) = with_work();
    env.write("main.txt", "main\n");
    env.commit("main moves");
    env.git(&["merge", "-q", "--no-ff", "-m", "merge done", "session/done"]);
    removed_without_force(&env, "merge commit");
}

#[test]
fn a_cherry_picked_session_with_main_touching_the_same_file_is_removed() {
    let (env, _) = with_work();
    env.write("feature.txt", "main's own line\n");
    env.commit("main writes feature.txt first");
    // The session's commits, picked one by one after main changed one of their files:
    // the first pick conflicts and is resolved to the session's content.
    let picks = env.git(&["rev-list", "--reverse", "main..session/done"]);
    for pick in picks.lines() {
        let _ = env.git_output(&env.repo, &["cherry-pick", pick]);
        env.write("feature.txt", "one\n");
        env.git(&["add", "-A"]);
        let _ = env.git_output(&env.repo, &["-c", "core.editor=true", "cherry-pick", "--continue"]);
    }
    removed_without_force(&env, "cherry-picks");
}

#[test]
fn a_squash_that_later_got_more_commits_is_retained_not_removed() {
    let (env, wt) = with_work();
    env.git(&["merge", "--squash", "-q", "session/done"]);
    env.git(&["commit", "-q", "-m", "squash of done"]);
    env.commit_file(&wt, "late.txt", "after the squash\n", "more work");
    let tip = env.git(&["rev-parse", "session/done"]);
    env.manifest("[sessions.keep]\n");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("keep branch (not integrated)"), "{out}");
    assert!(err.contains("1 retained"), "{err}");
    assert!(!wt.exists(), "the clean worktree goes");
    assert_eq!(env.git(&["rev-parse", "session/done"]), tip, "the branch stays");
    // Listed until integrated: merging the rest lets the next apply delete it.
    let (_, out, _) = env.run(&["plan", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["changes"][0]["action"], "retained", "{out}");
    assert_eq!(json["summary"]["retained"], 1);
    env.git(&["merge", "-q", "--no-ff", "-m", "the rest", "session/done"]);
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!env.branches().contains(&"session/done".to_owned()), "{out}");
    env.fsck();
}
