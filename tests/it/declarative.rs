//! Declarative all the way (SPEC §11.3): an interrupted copy or a setup that did not succeed
//! is finished by the next apply (commands that succeeded are not run again), `copy`
//! entries added later reach existing sessions, `flowloom setup ID` runs setup on demand,
//! and a changed `root` moves existing sessions. Git is the oracle throughout.

use std::path::{Path, PathBuf};

use crate::common::{TestEnv, run};

fn metadata(worktree: &Path, id: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(worktree.join(format!("sessions/{id}/metadata.json"))).expect("metadata");
    serde_json::from_str(&text).expect("json")
}

fn session(env: &TestEnv, id: &str) -> PathBuf {
    env.path(&format!("sessions/shell-instance-{id}"))
}

fn plan(env: &TestEnv) -> String {
    let (code, out, err) = env.run(&["plan"]);
    assert_eq!(code, 0, "{out}{err}");
    out
}

/// The setup log (outside the repository): one line per command run.
fn log(env: &TestEnv) -> Vec<String> {
    std::fs::read_to_string(env.tmp.path().join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn trust(env: &TestEnv) {
    let (code, out, err) = env.run(&["trust"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// `git status --porcelain` in the session shows nothing but what the test made there.
fn clean(env: &TestEnv, dir: &Path) {
    let status = env.git_in(dir, &["status", "--porcelain"]);
    assert!(status.lines().all(|l| l.ends_with(" GO")), "{status}");
}

#[test]
fn a_failed_setup_is_finished_by_the_next_apply_and_what_succeeded_never_runs_again() {
    let env = TestEnv::new();
    let file = env.tmp.path().join("log");
    env.manifest(&format!(
        "[defaults]\nsetup = [\"echo one >> {0}\", \"test -f GO\", \"echo three >> {0}\"]\n[sessions.a]\n",
        file.display()
    ));
    trust(&env);
    let (_, out, err) = env.run(&["apply", "--yes"]);
    assert!(err.contains("test -f GO"), "{out}{err}");
    let a = session(&env, "a");
    assert_eq!(metadata(&a, "a")["setup"], "failed");
    assert_eq!(metadata(&a, "a")["setupDone"].as_array().map(Vec::len), Some(1));
    let shown = plan(&env);
    assert!(shown.contains("~ a") && shown.contains("run setup"), "{shown}");
    assert!(shown.contains("already succeeded, not run again"), "{shown}");
    std::fs::write(a.join("GO"), "").expect("write");
    env.apply();
    assert_eq!(log(&env), ["one", "three"]);
    assert_eq!(metadata(&a, "a")["setup"], "ok");
    assert!(plan(&env).contains("No changes"), "{}", plan(&env));
    // On demand, everything runs again.
    let (code, out, err) = env.run(&["setup", "a"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(log(&env), ["one", "three", "one", "three"]);
    clean(&env, &a);
    env.fsck();
}

#[test]
fn setup_on_demand_is_refused_untrusted_and_checks_the_root() {
    let env = TestEnv::new();
    let file = env.tmp.path().join("log");
    env.manifest(&format!(
        "[defaults]\nsetup = [\"echo one >> {}\"]\n[sessions.a]\n",
        file.display()
    ));
    trust(&env);
    env.apply();
    env.manifest(&format!(
        "[defaults]\nsetup = [\"echo two >> {}\"]\n[sessions.a]\n",
        file.display()
    ));
    let (code, _, err) = env.run(&["setup", "a"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not trusted"), "{err}");
    assert_eq!(log(&env), ["one"]);
    let (code, _, err) = env.run(&["setup", "nope"]);
    assert_eq!(code, 1, "{err}");
    env.manifest("root = \"../../elsewhere\"\n[sessions.a]\n");
    let (code, _, err) = env.run(&["setup", "a"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn a_kill_during_setup_runs_only_the_commands_that_had_not_succeeded() {
    let env = TestEnv::new();
    let file = env.tmp.path().join("log");
    env.manifest(&format!(
        "[defaults]\nsetup = [\"echo one >> {0}\", \"echo two >> {0}\"]\n[sessions.a]\n",
        file.display()
    ));
    trust(&env);
    let (code, _, _) = run(env
        .flowloom()
        .env("FLOWLOOM_FAILPOINT", "setup:recorded")
        .args(["apply", "--yes"]));
    assert_ne!(code, 0, "the failpoint did not fire");
    let a = session(&env, "a");
    // The kill landed after the first command was recorded, before the second ran.
    assert_eq!(log(&env), ["one"]);
    assert_eq!(metadata(&a, "a")["setup"], "incomplete");
    let shown = plan(&env);
    assert!(shown.contains("run setup"), "{shown}");
    env.apply();
    assert_eq!(log(&env), ["one", "two"]);
    assert_eq!(metadata(&a, "a")["setup"], "ok");
    assert!(plan(&env).contains("No changes"));
    env.fsck();
}

fn with_ignored_files(env: &TestEnv) {
    env.write(".gitignore", ".env\nnode_modules/\n.tool/\n");
    env.commit("ignore");
    env.write(".env", "SECRET=1\n");
    env.write("node_modules/pkg/index.js", "module.exports = 1;\n");
    env.write("node_modules/pkg/more.js", "2\n");
}

#[test]
fn a_kill_during_the_copy_is_finished_by_the_next_apply() {
    let env = TestEnv::new();
    with_ignored_files(&env);
    env.manifest("[defaults]\ncopy = [\".env\", \"node_modules/\"]\n[sessions.a]\n");
    let (code, _, _) = run(env
        .flowloom()
        .env("FLOWLOOM_FAILPOINT", "copy:part-way")
        .args(["apply", "--yes"]));
    assert_ne!(code, 0, "the failpoint did not fire");
    let a = session(&env, "a");
    // The kill landed in the middle of the copy: the first entry is there, the second not.
    assert!(a.join(".env").exists());
    assert!(!a.join("node_modules").exists());
    assert_eq!(metadata(&a, "a")["setup"], "incomplete");
    let shown = plan(&env);
    assert!(shown.contains("finish copy"), "{shown}");
    env.apply();
    assert_eq!(
        std::fs::read_to_string(a.join("node_modules/pkg/more.js")).expect("copied"),
        "2\n"
    );
    assert_eq!(metadata(&a, "a")["setup"], "ok");
    assert!(plan(&env).contains("No changes"), "{}", plan(&env));
    clean(&env, &a);
    let listed = env.git(&["worktree", "list", "--porcelain"]);
    assert!(listed.contains("shell-instance-a"), "{listed}");
    env.fsck();
}

#[test]
fn copy_entries_added_later_reach_existing_sessions_and_overwrite_nothing() {
    let env = TestEnv::new();
    with_ignored_files(&env);
    env.manifest("[sessions.a]\n");
    env.apply();
    let a = session(&env, "a");
    std::fs::write(a.join(".env"), "MINE=1\n").expect("write");
    env.write(".tool/bin/tool", "tool\n");
    env.manifest("[defaults]\ncopy = [\".env\", \".tool/\"]\n[sessions.a]\n");
    let shown = plan(&env);
    assert!(shown.contains("copies: .tool/"), "{shown}");
    assert!(shown.contains("never overwritten): .env"), "{shown}");
    env.apply();
    assert_eq!(
        std::fs::read_to_string(a.join(".tool/bin/tool")).expect("copied"),
        "tool\n"
    );
    assert_eq!(std::fs::read_to_string(a.join(".env")).expect("kept"), "MINE=1\n");
    assert!(plan(&env).contains("No changes"), "{}", plan(&env));
    clean(&env, &a);
    env.fsck();
}

/// Two sessions with work in them: `a` has a modified tracked file, an untracked file, an
/// ignored file and a commit of its own.
fn sessions_with_work(env: &TestEnv) {
    env.write(".gitignore", "*.log\n");
    env.commit("ignore logs");
    env.manifest("[sessions.a]\n[sessions.b]\n");
    env.apply();
    let a = session(env, "a");
    env.commit_file(&a, "feature.txt", "feature\n", "feature");
    std::fs::write(a.join("README.md"), "changed\n").expect("write");
    std::fs::write(a.join("notes.txt"), "untracked\n").expect("write");
    std::fs::write(a.join("debug.log"), "ignored\n").expect("write");
}

/// `git status --porcelain` of the main checkout, but for the (untracked) manifest.
fn main_status(env: &TestEnv) -> String {
    env.git(&["status", "--porcelain"])
        .lines()
        .filter(|l| *l != "?? flowloom.toml")
        .map(|l| format!("{l}\n"))
        .collect()
}

fn moved_root(env: &TestEnv) -> PathBuf {
    env.tmp.path().canonicalize().expect("canonical").join("moved")
}

/// The session's worktree is at `dir` as git sees it: listed there, its status as before
/// the move, nothing wrong with the repository, the main checkout clean.
fn moved_as_git_sees_it(env: &TestEnv, dir: &Path, status_before: &str) {
    let listed = env.git(&["worktree", "list", "--porcelain"]);
    assert!(listed.contains(&format!("worktree {}\n", dir.display())), "{listed}");
    assert!(!listed.contains("prunable"), "{listed}");
    assert_eq!(env.git_in(dir, &["status", "--porcelain"]), status_before);
    assert_eq!(main_status(env), "", "the main checkout lists the sessions");
    env.fsck();
}

#[test]
fn a_changed_root_moves_every_session_with_all_its_files() {
    let env = TestEnv::new();
    sessions_with_work(&env);
    let a = session(&env, "a");
    let status_a = env.git_in(&a, &["status", "--porcelain"]);
    env.manifest("[defaults]\nroot = \"../moved\"\n[sessions.a]\n[sessions.b]\n");
    let shown = plan(&env);
    assert!(shown.contains("move worktree from"), "{shown}");
    assert!(!shown.contains("another file system"), "{shown}");
    assert!(shown.contains("0 to create, 2 to update"), "{shown}");
    env.apply();
    let new_a = moved_root(&env).join("shell-instance-a");
    assert!(!a.exists());
    moved_as_git_sees_it(&env, &new_a, &status_a);
    assert_eq!(
        std::fs::read_to_string(new_a.join("debug.log")).expect("ignored file"),
        "ignored\n"
    );
    assert_eq!(env.git_in(&new_a, &["log", "-1", "--format=%s"]).trim(), "feature");
    assert_eq!(
        metadata(&new_a, "a")["workingDirectory"],
        new_a.to_string_lossy().as_ref()
    );
    let record = std::fs::read_to_string(env.path(".git/flowloom/owned.json")).expect("record");
    assert!(
        record.contains(&*new_a.to_string_lossy()) && !record.contains("moving"),
        "{record}"
    );
    assert!(plan(&env).contains("No changes"), "{}", plan(&env));
    // The record follows the move: removing the session removes the moved worktree.
    env.manifest("[defaults]\nroot = \"../moved\"\n[sessions.a]\n");
    env.apply();
    assert!(!moved_root(&env).join("shell-instance-b").exists());
}

#[test]
fn a_changed_worktree_template_moves_sessions_within_the_root() {
    let env = TestEnv::new();
    sessions_with_work(&env);
    let a = session(&env, "a");
    let status_a = env.git_in(&a, &["status", "--porcelain"]);
    env.manifest("[defaults]\nworktree = \"wt-{id}\"\n[sessions.a]\n[sessions.b]\n");
    assert!(plan(&env).contains("move worktree from"), "{}", plan(&env));
    env.apply();
    moved_as_git_sees_it(
        &env,
        &env.path("sessions/wt-a").canonicalize().expect("moved"),
        &status_a,
    );
    assert!(plan(&env).contains("No changes"), "{}", plan(&env));
}

#[test]
fn a_locked_worktree_or_a_taken_path_blocks_its_move() {
    let env = TestEnv::new();
    sessions_with_work(&env);
    let a = session(&env, "a");
    env.git(&[
        "worktree",
        "lock",
        "--reason",
        "on a usb disk",
        a.to_str().expect("utf8"),
    ]);
    let taken = moved_root(&env).join("shell-instance-b");
    std::fs::create_dir_all(&taken).expect("mkdir");
    std::fs::write(taken.join("mine.txt"), "someone's\n").expect("write");
    env.manifest("[defaults]\nroot = \"../moved\"\n[sessions.a]\n[sessions.b]\n");
    let shown = plan(&env);
    assert!(shown.contains("on a usb disk"), "{shown}");
    assert!(shown.contains("2 blocked"), "{shown}");
    let (_, _, _) = env.run(&["apply", "--yes"]);
    assert!(a.is_dir() && session(&env, "b").is_dir());
    assert_eq!(
        std::fs::read_to_string(taken.join("mine.txt")).expect("kept"),
        "someone's\n"
    );
    env.fsck();
}

#[test]
fn a_kill_anywhere_in_a_move_converges_on_the_next_apply() {
    for step in ["move:recorded", "move:renamed", "move:registered"] {
        let env = TestEnv::new();
        sessions_with_work(&env);
        let a = session(&env, "a");
        let status_a = env.git_in(&a, &["status", "--porcelain"]);
        env.manifest("[defaults]\nroot = \"../moved\"\n[sessions.a]\n");
        let (code, _, _) = run(env.flowloom().env("FLOWLOOM_FAILPOINT", step).args(["apply", "--yes"]));
        assert_ne!(code, 0, "{step}: the failpoint did not fire");
        let new_a = moved_root(&env).join("shell-instance-a");
        // Where the kill landed.
        let record = std::fs::read_to_string(env.path(".git/flowloom/owned.json")).expect("record");
        assert!(record.contains("\"moving\""), "{step}: {record}");
        assert_eq!(a.exists(), step == "move:recorded", "{step}");
        assert_eq!(new_a.exists(), step != "move:recorded", "{step}");
        let listed = env.git(&["worktree", "list", "--porcelain"]);
        assert_eq!(
            listed.contains(&format!("worktree {}\n", new_a.display())),
            step == "move:registered",
            "{step}: {listed}"
        );
        let shown = plan(&env);
        assert!(shown.contains("finish the move"), "{step}: {shown}");
        env.apply();
        moved_as_git_sees_it(&env, &new_a, &status_a);
        assert!(plan(&env).contains("No changes"), "{step}: {}", plan(&env));
    }
}

#[test]
fn across_file_systems_a_move_copies_verifies_then_deletes() {
    let env = TestEnv::new();
    sessions_with_work(&env);
    let a = session(&env, "a");
    let status_a = env.git_in(&a, &["status", "--porcelain"]);
    env.manifest("[defaults]\nroot = \"../moved\"\n[sessions.a]\n[sessions.b]\n");
    let (code, shown, err) = run(env.flowloom().env("FLOWLOOM_TEST_OTHER_DEVICE", "1").arg("plan"));
    assert_eq!(code, 0, "{err}");
    assert!(shown.contains("another file system: copied, verified"), "{shown}");
    let (code, out, err) = run(env
        .flowloom()
        .env("FLOWLOOM_TEST_OTHER_DEVICE", "1")
        .args(["apply", "--yes"]));
    assert_eq!(code, 0, "{out}{err}");
    let new_a = moved_root(&env).join("shell-instance-a");
    assert!(!a.exists());
    moved_as_git_sees_it(&env, &new_a, &status_a);
    assert_eq!(
        std::fs::read_to_string(new_a.join("debug.log")).expect("ignored file"),
        "ignored\n"
    );
    assert!(plan(&env).contains("No changes"), "{}", plan(&env));
}

#[test]
fn a_blocked_move_keeps_its_worktree_hidden_from_the_main_checkout() {
    let env = TestEnv::new();
    sessions_with_work(&env);
    let a = session(&env, "a");
    env.git(&["worktree", "lock", a.to_str().expect("utf8")]);
    env.manifest("[defaults]\nroot = \"../moved\"\n[sessions.a]\n[sessions.b]\n");
    let _ = env.run(&["apply", "--yes"]);
    assert!(a.is_dir());
    assert_eq!(main_status(&env), "", "the main checkout lists the session");
}

#[test]
fn a_worktree_a_process_works_in_is_not_moved() {
    let env = TestEnv::new();
    sessions_with_work(&env);
    let a = session(&env, "a");
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .current_dir(&a)
        .spawn()
        .expect("sleep");
    env.manifest("[defaults]\nroot = \"../moved\"\n[sessions.a]\n");
    let shown = plan(&env);
    let _ = env.run(&["apply", "--yes"]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(shown.contains(&format!("process {}", sleeper.id())), "{shown}");
    assert!(a.is_dir(), "moved from under a process");
    assert_eq!(main_status(&env), "");
}

#[test]
fn a_move_resumed_after_a_kill_is_blocked_by_a_process_working_in_it() {
    let env = TestEnv::new();
    sessions_with_work(&env);
    let a = session(&env, "a");
    env.manifest("[defaults]\nroot = \"../moved\"\n[sessions.a]\n");
    let (code, _, _) = run(env
        .flowloom()
        .env("FLOWLOOM_FAILPOINT", "move:recorded")
        .args(["apply", "--yes"]));
    assert_ne!(code, 0, "the failpoint did not fire");
    assert!(a.is_dir(), "killed before the rename");
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .current_dir(&a)
        .spawn()
        .expect("sleep");
    let shown = plan(&env);
    let _ = env.run(&["apply", "--yes"]);
    let still = a.is_dir();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(shown.contains(&format!("process {}", sleeper.id())), "{shown}");
    assert!(shown.contains("1 blocked"), "{shown}");
    assert!(still, "moved from under a process");
    assert_eq!(main_status(&env), "");
    // Once the process is gone, the move goes through.
    env.apply();
    let new_a = moved_root(&env).join("shell-instance-a");
    assert!(new_a.is_dir() && !a.exists());
    assert!(plan(&env).contains("No changes"), "{}", plan(&env));
    env.fsck();
}

/// SPEC §11.3: a session moved by hand with `git worktree move` is still flowloom's: the
/// plan moves it back to its declared path (never lists it as unmanaged, never blocks on
/// its branch), keeping every file, and the plan converges.
#[test]
fn a_session_moved_by_git_worktree_move_is_moved_back() {
    let env = TestEnv::new();
    sessions_with_work(&env);
    let a = session(&env, "a");
    let status_before = env.git_in(&a, &["status", "--porcelain"]);
    let elsewhere = env.path("sessions/moved-by-hand");
    env.git(&[
        "worktree",
        "move",
        a.to_str().expect("utf8"),
        elsewhere.to_str().expect("utf8"),
    ]);
    let shown = plan(&env);
    assert!(shown.contains("move worktree from"), "{shown}");
    assert!(!shown.contains("Unmanaged"), "{shown}");
    assert!(shown.contains("0 blocked"), "{shown}");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!elsewhere.exists());
    moved_as_git_sees_it(&env, &a, &status_before);
    assert!(plan(&env).contains("No changes"), "{}", plan(&env));
}

/// A copy that finds many entries already there (one being finished after a kill, its
/// first folder copied whole) names the first few and counts the rest: one line per
/// reason, not one per file.
#[test]
fn entries_left_alone_are_counted_not_listed_one_by_one() {
    let env = TestEnv::new();
    env.write(".gitignore", ".cache/\ntoken.txt\n");
    env.commit("ignore the cache");
    for i in 0..20 {
        env.write(&format!(".cache/file{i:02}.txt"), "main\n");
    }
    env.write("token.txt", "SECRET=1\n");
    env.manifest("[defaults]\ncopy = [\".cache/\", \"token.txt\"]\n[sessions.a]\n");
    let (code, _, _) = run(env
        .flowloom()
        .env("FLOWLOOM_FAILPOINT", "copy:part-way")
        .args(["apply", "--yes"]));
    assert_ne!(code, 0, "the failpoint did not fire");
    let a = session(&env, "a");
    assert!(a.join(".cache/file19.txt").exists() && !a.join("token.txt").exists());
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("left ")).collect();
    assert_eq!(lines.len(), 3, "{out}\n{err}");
    assert!(lines[0].contains(".cache/file00.txt"), "{err}");
    assert!(lines[2].contains("and 17 more alone"), "{err}");
    assert!(a.join("token.txt").exists(), "finished");
}
