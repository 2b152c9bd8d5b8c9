//! Tried as an attacker would (SPEC §7, §8): work appearing while apply runs, a removal
//! refused and retried, detached commits, git running beside apply, a killed removal, a
//! live git command's lock. git is the oracle: refs, objects, `fsck --strict`.

use crate::common::{GONE, TWO, TestEnv, orphan, run};

#[test]
fn a_file_saved_into_the_session_folder_while_apply_runs_blocks_the_removal() {
    let env = orphan();
    let late = env.path(&format!("{GONE}/sessions/gone/late-notes.md"));
    // Written after the plan was made, right before apply would delete the worktree: the
    // session folder is hidden from git status by flowloom's own excludes.
    let (code, out, err) = run(env
        .flowloom()
        .env(
            "FLOWLOOM_TEST_BEFORE_RECHECK",
            format!("gone:echo mine > '{}'", late.display()),
        )
        .args(["apply", "--yes"]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("the plan did not show") && err.contains("late-notes.md"),
        "{out}\n{err}"
    );
    assert_eq!(std::fs::read_to_string(&late).expect("the file is kept"), "mine\n");
    assert!(env.branches().contains(&"session/gone".to_owned()));
    // The next plan sees it, and blocks the removal for that reason.
    let (code, out, _) = env.run(&["plan"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("! gone") && out.contains("sessions/gone/ holds 1 file"),
        "{out}"
    );
    env.fsck();
}

#[test]
fn a_forced_saved_plan_deletes_nothing_it_did_not_list() {
    let env = orphan();
    env.write(&format!("{GONE}/README.md"), "edited\n");
    let (code, out, _) = env.run(&["plan", "--force", "--out", "plan.json"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("deletes: README.md"), "{out}");
    // A new file after the plan was saved: the plan is stale.
    env.write(&format!("{GONE}/new.txt"), "new\n");
    let (code, _, err) = env.run(&["apply", "plan.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("stale"), "{err}");
    assert!(env.path(&format!("{GONE}/new.txt")).exists());
    // And if it appears after the plan under the lock, the just-in-time check blocks it.
    std::fs::remove_file(env.path(&format!("{GONE}/new.txt"))).expect("rm");
    let (code, out, err) = run(env
        .flowloom()
        .env(
            "FLOWLOOM_TEST_BEFORE_RECHECK",
            format!("gone:echo late > '{}'", env.path(&format!("{GONE}/late.txt")).display()),
        )
        .args(["apply", "--yes", "--force"]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(env.path(&format!("{GONE}/late.txt")).exists());
    assert_eq!(
        std::fs::read_to_string(env.path(&format!("{GONE}/README.md"))).expect("kept"),
        "edited\n"
    );
    env.fsck();
}

#[test]
fn force_commits_uncommitted_work_into_the_archive_before_deleting() {
    let env = orphan();
    env.write(&format!("{GONE}/README.md"), "edited\n");
    env.write(&format!("{GONE}/untracked.txt"), "new\n");
    env.write(&format!("{GONE}/sessions/gone/artifacts/result.txt"), "result\n");
    let (code, out, err) = env.run(&["apply", "--yes", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!env.path(GONE).exists());
    let archive = "refs/flowloom/archive/1/session/gone";
    assert_eq!(env.git(&["show", &format!("{archive}:README.md")]), "edited\n");
    assert_eq!(env.git(&["show", &format!("{archive}:untracked.txt")]), "new\n");
    assert_eq!(
        env.git(&["show", &format!("{archive}:sessions/gone/artifacts/result.txt")]),
        "result\n"
    );
    // On top of the session's branch tip, so its commits are kept too.
    let parent = env.git(&["rev-parse", &format!("{archive}^")]);
    let main = env.git(&["rev-parse", "main"]);
    assert_eq!(parent, main);
    env.fsck();
}

#[test]
fn commits_on_a_detached_head_block_and_force_archives_them() {
    let env = orphan();
    let wt = env.path(GONE);
    env.git_in(&wt, &["checkout", "-q", "--detach"]);
    env.commit_file(&wt, "detached.txt", "only here\n", "detached work");
    let lost = env.git_in(&wt, &["rev-parse", "HEAD"]);
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("detached on 1 commit that no branch or tag reaches"),
        "{out}"
    );
    assert!(wt.exists());
    let (code, out, err) = env.run(&["apply", "--yes", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!wt.exists());
    let kept = env.git(&["rev-parse", "refs/flowloom/archive/1/session/gone"]);
    assert_eq!(
        env.git(&["merge-base", "--is-ancestor", lost.trim(), kept.trim()]),
        "",
        "the detached commit is reachable from the archive"
    );
    env.fsck();
}

#[test]
fn a_removal_refused_for_a_submodule_stays_refused_and_keeps_everything() {
    let env = orphan();
    // A second repository to use as the submodule.
    let sub = env.tmp.path().join("sub");
    env.git_in(env.tmp.path(), &["init", "-q", "-b", "main", "sub"]);
    env.commit_file(&sub, "s.txt", "sub\n", "sub");
    let wt = env.path(GONE);
    env.git_in(
        &wt,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            &sub.display().to_string(),
            "sub",
        ],
    );
    env.git_in(&wt, &["commit", "-q", "-m", "add submodule"]);
    for _ in 0..3 {
        let (code, out, _) = env.run(&["apply", "--yes", "--force"]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("initialized submodule"), "{out}");
        assert!(wt.join("sub/s.txt").exists());
    }
    let modules = env.repo.join(".git/worktrees/shell-instance-gone/modules");
    assert!(modules.exists(), "the submodule's repository is kept");
    assert_eq!(env.git_in(&wt, &["status", "--porcelain"]), "");
    env.fsck();
}

#[test]
fn a_kill_after_the_worktree_went_to_the_trash_converges() {
    for step in [
        "remove:marked",
        "remove:trashed",
        "remove:unregistered",
        "remove:worktree",
    ] {
        let env = orphan();
        let (code, _, _) = run(env.flowloom().env("FLOWLOOM_FAILPOINT", step).args(["apply", "--yes"]));
        assert_ne!(code, 0, "{step}: the failpoint aborts");
        let (code, out, err) = env.run(&["apply", "--yes"]);
        assert_eq!(code, 0, "{step}: {out}\n{err}");
        assert!(!env.path(GONE).exists(), "{step}");
        assert!(!env.path("sessions/.flowloom-trash").exists(), "{step}: {out}");
        assert!(!env.branches().contains(&"session/gone".to_owned()), "{step}");
        assert_eq!(
            env.worktrees(),
            vec![("sessions/shell-instance-keep".into(), "session/keep".into())],
            "{step}"
        );
        let (_, out, _) = env.run(&["plan"]);
        assert!(out.contains("No changes"), "{step}: {out}");
        env.fsck();
    }
}

#[test]
fn a_declared_session_whose_removal_was_interrupted_is_never_wiped() {
    // Killed right after the removal was recorded, or once the checked worktree was in the
    // trash: declared again, the session gets its own folder back, ignored files and all.
    for step in ["remove:marked", "remove:trashed"] {
        let env = orphan();
        env.write(".gitignore", ".env\n");
        env.write(&format!("{GONE}/.env"), "SECRET=1\n");
        let (code, _, _) = run(env.flowloom().env("FLOWLOOM_FAILPOINT", step).args(["apply", "--yes"]));
        assert_ne!(code, 0);
        env.manifest(TWO);
        let (code, out, err) = env.run(&["apply", "--yes"]);
        assert_eq!(code, 0, "{step}: {out}\n{err}");
        assert_eq!(
            std::fs::read_to_string(env.path(&format!("{GONE}/.env"))).expect("kept"),
            "SECRET=1\n",
            "{step}: {out}"
        );
        // (.env is not ignored on that branch: only flowloom's lines hide anything.)
        assert_eq!(
            env.git_in(&env.path(GONE), &["status", "--porcelain"]),
            "?? .env\n",
            "{step}"
        );
        let (_, out, _) = env.run(&["plan"]);
        assert!(out.contains("No changes"), "{step}: {out}");
        env.fsck();
    }
}

#[test]
fn a_file_saved_between_the_check_and_the_move_sends_the_worktree_back() {
    let env = orphan();
    let late = env.path(&format!("{GONE}/late.txt"));
    let (code, out, err) = run(env
        .flowloom()
        .env(
            "FLOWLOOM_TEST_BEFORE_TRASH",
            format!("gone:echo late > '{}'", late.display()),
        )
        .args(["apply", "--yes"]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("late.txt"), "{err}");
    assert_eq!(std::fs::read_to_string(&late).expect("kept"), "late\n");
    assert_eq!(env.git_in(&env.path(GONE), &["status", "--porcelain"]), "?? late.txt\n");
    assert!(env.branches().contains(&"session/gone".to_owned()));
    env.fsck();
}

#[test]
fn a_symlinked_trash_folder_is_never_followed() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    // A committed `sessions/.flowloom-trash` symlink to a folder outside the repository.
    let victim = env.tmp.path().join("victim");
    std::fs::create_dir_all(victim.join("precious")).expect("mkdir");
    std::fs::write(victim.join("precious/data"), "keep\n").expect("write");
    std::os::unix::fs::symlink(&victim, env.path("sessions/.flowloom-trash")).expect("symlink");
    env.manifest("");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains(".flowloom-trash"), "{err}");
    assert_eq!(
        std::fs::read_to_string(victim.join("precious/data")).expect("kept"),
        "keep\n"
    );
    assert!(
        env.path("sessions/shell-instance-a").exists(),
        "nothing was moved through the link"
    );
    // A record naming a trash folder cannot point anywhere else either.
    let (_, out, _) = env.run(&["plan"]);
    assert!(!out.contains("victim"), "{out}");
}

#[test]
fn git_pack_refs_beside_apply_never_loses_a_ref() {
    let env = TestEnv::new();
    let n = 40;
    let mut manifest = String::from("[sessions.keep]\n");
    for i in 0..n {
        manifest.push_str(&format!("[sessions.s{i}]\n"));
    }
    env.manifest(&manifest);
    env.apply();
    env.git(&["pack-refs", "--all"]);
    env.manifest("[sessions.keep]\n");
    let mut apply = env.flowloom();
    apply.args(["apply", "--yes"]);
    let mut child = apply
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut made = Vec::new();
    let mut i = 0;
    while child.try_wait().expect("wait").is_none() && i < 400 {
        let name = format!("other-{i}");
        env.git(&["branch", &name, "main"]);
        made.push(name);
        let _ = env.git_output(&env.repo, &["pack-refs", "--all"]);
        i += 1;
    }
    let _ = child.wait();
    assert!(
        made.len() > 2,
        "git ran beside apply: {} branches made while it ran",
        made.len()
    );
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let branches = env.branches();
    for name in &made {
        assert!(branches.contains(name), "git's branch {name} was lost");
    }
    assert!(!branches.iter().any(|b| b.starts_with("session/s")), "{branches:?}");
    env.fsck();
}

#[test]
fn a_live_git_commands_lock_is_never_taken_for_a_dead_applys() {
    let env = orphan();
    env.write(&format!("{GONE}/README.md"), "edited\n");
    // A git command in the orphan holds its index lock; an apply died holding the apply
    // lock (its holder text is still in the file).
    let index_lock = env.repo.join(".git/worktrees/shell-instance-gone/index.lock");
    std::fs::write(&index_lock, "").expect("lock");
    let started = env.git(&["log", "-1", "--format=%cI"]);
    std::fs::write(
        env.repo.join(".git/flowloom.lock"),
        format!("pid 999999\nhost test\nstarted {}\n", started.trim()),
    )
    .expect("holder");
    let (_, out, err) = env.run(&["apply", "--yes"]);
    assert!(index_lock.exists(), "{out}\n{err}");
}

#[test]
fn ctrl_c_while_apply_removes_stops_between_steps_and_releases_the_lock() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n[sessions.b]\n[sessions.keep]\n");
    env.apply();
    env.manifest("[sessions.keep]\n");
    // Ctrl-C lands while `a` is being removed: `a` is finished, `b` not started.
    let (code, out, err) = run(env
        .flowloom()
        .env("FLOWLOOM_TEST_BEFORE_RECHECK", "a:kill -INT $PPID; sleep 0.3")
        .args(["apply", "--yes"]));
    assert_eq!(code, 130, "{out}\n{err}");
    assert!(
        err.contains("Apply interrupted: 0 created, 0 updated, 1 removed"),
        "{err}"
    );
    assert!(!env.path("sessions/shell-instance-a").exists());
    assert!(env.path("sessions/shell-instance-b").exists());
    // Released cleanly: the next apply takes no dead apply's lock over.
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!err.contains("took over"), "{err}");
    assert!(!env.path("sessions/shell-instance-b").exists());
    env.fsck();
}

#[test]
fn a_worktree_whose_git_file_became_a_repository_is_never_removed() {
    let env = orphan();
    let wt = env.path(GONE);
    std::fs::remove_file(wt.join(".git")).expect("rm .git");
    env.git_in(&wt, &["init", "-q", "-b", "own"]);
    env.commit_file(&wt, "own.txt", "own history\n", "own");
    for args in [&["apply", "--yes"][..], &["apply", "--yes", "--force"][..]] {
        let (code, out, _) = env.run(args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(out.contains("repository of its own"), "{args:?}: {out}");
    }
    assert_eq!(env.git_in(&wt, &["log", "--format=%s"]), "own\n");
}

#[test]
fn force_never_deletes_an_untracked_nested_repository() {
    let env = orphan();
    let tool = env.path(&format!("{GONE}/tool"));
    std::fs::create_dir_all(&tool).expect("mkdir");
    env.git_in(&tool, &["init", "-q", "-b", "main"]);
    env.commit_file(&tool, "t.txt", "tool\n", "tool history");
    let (code, out, _) = env.run(&["apply", "--yes", "--force"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("repository of its own (tool"), "{out}");
    assert_eq!(env.git_in(&tool, &["log", "--format=%s"]), "tool history\n");
}

#[test]
fn a_branch_merged_only_through_an_upstream_that_vanished_is_kept() {
    // A clone whose session branch exists on the remote: merged through its upstream.
    let env = TestEnv::new();
    env.manifest("[sessions.keep]\n[sessions.gone]\n");
    env.apply();
    let wt = env.path(GONE);
    env.commit_file(&wt, "feature.txt", "feature\n", "feature");
    let tip = env.git(&["rev-parse", "session/gone"]);
    // The upstream holds the commit (as after a push), then the plan is made...
    env.git(&["remote", "add", "origin", &env.repo.display().to_string()]);
    env.git(&["update-ref", "refs/remotes/origin/session/gone", tip.trim()]);
    env.git(&["config", "branch.session/gone.remote", "origin"]);
    env.git(&["config", "branch.session/gone.merge", "refs/heads/session/gone"]);
    env.manifest("[sessions.keep]\n");
    // ... and the remote branch is pruned before apply deletes the branch.
    let (code, out, err) = run(env
        .flowloom()
        .env(
            "FLOWLOOM_TEST_BEFORE_RECHECK",
            format!(
                "gone:git -C '{}' update-ref -d refs/remotes/origin/session/gone",
                env.repo.display()
            ),
        )
        .args(["apply", "--yes"]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("not reachable from base"), "{err}");
    assert_eq!(
        env.git(&["rev-parse", "session/gone"]),
        tip,
        "the branch and its commit are kept"
    );
    env.fsck();
}

#[test]
fn files_hidden_by_flowlooms_own_excludes_in_another_root_are_never_lost() {
    let env = TestEnv::new();
    env.manifest("[defaults]\nroot = \"wt\"\n[sessions.a]\n[sessions.b]\n");
    env.apply();
    // In session b, paths that flowloom's exclude lines (for the root `wt`) hide.
    env.write("wt/shell-instance-b/wt/shell-instance-a/todo.md", "mine\n");
    let b = env.path("wt/shell-instance-b");
    assert_eq!(
        env.git_in(&b, &["status", "--porcelain"]),
        "",
        "git status does not show it"
    );
    env.manifest("[defaults]\nroot = \"wt\"\n[sessions.a]\n");
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("! b"), "{out}");
    assert!(env.path("wt/shell-instance-b/wt/shell-instance-a/todo.md").exists());
}

#[test]
fn a_symlinked_root_is_refused_before_anything_is_written() {
    let env = TestEnv::new();
    let elsewhere = env.tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, env.path("sessions")).expect("symlink");
    env.manifest("[sessions.a]\n");
    for args in [&["plan"][..], &["apply", "--yes"][..]] {
        let (code, _, err) = env.run(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("is a symlink"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_dir(&elsewhere).expect("dir").count(), 0);
    assert!(env.worktrees().is_empty());
    // A root that resolves into the git directory, likewise.
    std::fs::remove_file(env.path("sessions")).expect("rm");
    std::os::unix::fs::symlink(env.repo.join(".git"), env.path("sessions")).expect("symlink");
    let (code, _, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{err}");
    assert!(env.worktrees().is_empty());
}

#[test]
fn the_force_snapshot_never_reads_through_a_symlinked_folder() {
    let env = orphan();
    let outside = env.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(outside.join("lib.rs"), "SECRET\n").expect("write");
    let src = env.path(&format!("{GONE}/src"));
    std::fs::remove_dir_all(&src).expect("rm");
    std::os::unix::fs::symlink(&outside, &src).expect("symlink");
    let (code, out, err) = env.run(&["apply", "--yes", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let archive = "refs/flowloom/archive/1/session/gone";
    let tree = env.git(&["ls-tree", "-r", archive]);
    assert!(!tree.contains("src/lib.rs"), "{tree}");
    assert!(tree.contains("120000"), "the symlink itself is kept: {tree}");
    assert_eq!(
        std::fs::read_to_string(outside.join("lib.rs")).expect("kept"),
        "SECRET\n"
    );
    env.fsck();
}

#[test]
fn a_fifo_where_git_keeps_a_worktrees_head_never_hangs_plan() {
    let env = orphan();
    let head = env.repo.join(".git/worktrees/shell-instance-gone/HEAD");
    std::fs::remove_file(&head).expect("rm");
    let status = std::process::Command::new("mkfifo")
        .arg(&head)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let (code, out, err) = crate::common::run_timeout(env.flowloom().args(["plan"]), 20);
    assert!(code == 0 || code == 1, "{out}\n{err}");
    let marker = env.repo.join(".git/worktrees/shell-instance-keep/flowloom-switch");
    let status = std::process::Command::new("mkfifo")
        .arg(&marker)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let (code, out, err) = crate::common::run_timeout(env.flowloom().args(["plan"]), 20);
    assert!(code == 0 || code == 1, "{out}\n{err}");
}

#[test]
fn a_file_saved_right_before_a_kill_after_the_move_is_never_deleted_from_the_trash() {
    let env = orphan();
    let notes = env.path(&format!("{GONE}/sessions/gone/artifacts/notes.md"));
    let (code, _, _) = run(env
        .flowloom()
        .env(
            "FLOWLOOM_TEST_BEFORE_TRASH",
            format!("gone:echo notes > '{}'", notes.display()),
        )
        .env("FLOWLOOM_FAILPOINT", "remove:trashed")
        .args(["apply", "--yes"]));
    assert_ne!(code, 0);
    // The folder in the trash no longer matches what was checked: it goes back.
    let (_, out, _) = env.run(&["plan"]);
    assert!(out.contains("move its worktree back from the trash"), "{out}");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(std::fs::read_to_string(&notes).expect("kept"), "notes\n");
    // And then it is judged afresh: blocked by the file.
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("sessions/gone/ holds 1 file"), "{out}");
    assert_eq!(std::fs::read_to_string(&notes).expect("kept"), "notes\n");
    env.fsck();
}

#[test]
fn a_process_or_a_lock_arriving_between_the_check_and_the_move_sends_the_worktree_back() {
    let env = orphan();
    let readme = env.path(&format!("{GONE}/README.md"));
    // A process opens a file of the worktree for writing after the check.
    let (code, out, err) = run(env
        .flowloom()
        .env(
            "FLOWLOOM_TEST_BEFORE_TRASH",
            format!(
                "gone:(exec 3>>'{}'; sleep 1) >/dev/null 2>&1 & sleep 0.3",
                readme.display()
            ),
        )
        .args(["apply", "--yes"]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("is using it"), "{err}");
    assert!(readme.exists(), "moved back");
    // The process is gone.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // A lock taken after the check.
    let (code, out, err) = run(env
        .flowloom()
        .env(
            "FLOWLOOM_TEST_BEFORE_TRASH",
            format!(
                "gone:git -C '{}' worktree lock --reason usb '{}'",
                env.repo.display(),
                env.path(GONE).display()
            ),
        )
        .args(["apply", "--yes"]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("locked"), "{out}\n{err}");
    assert!(readme.exists(), "moved back");
    let (code, out, _) = env.run(&["apply", "--yes", "--force"]);
    assert_eq!(code, 1, "a locked worktree is never removed: {out}");
    assert!(readme.exists());
    env.fsck();
}

#[test]
fn a_record_naming_a_trash_folder_elsewhere_deletes_nothing() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n[sessions.b]\n");
    env.apply();
    let elsewhere = env.tmp.path().join("elsewhere/.flowloom-trash/precious");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let mine = env.path("sessions/shell-instance-b/.flowloom-trash/shell-instance-a");
    std::fs::create_dir_all(&mine).expect("mkdir");
    let record_path = env.repo.join(".git/flowloom/owned.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).expect("record")).expect("json");
    record["sessions"][0]["trash"] = serde_json::Value::String(elsewhere.display().to_string());
    record["sessions"][1]["trash"] = serde_json::Value::String(mine.display().to_string());
    std::fs::write(&record_path, record.to_string()).expect("write record");
    env.manifest("");
    let _ = env.run(&["apply", "--yes"]);
    assert!(elsewhere.exists(), "outside the root");
    assert!(!env.path("sessions/shell-instance-a").exists() || mine.exists());
}

/// Between the plan and a creation (the prompt, a long apply), git may check the session's
/// branch out elsewhere, register a worktree at its path, or a symlink may replace its
/// root: apply checks again right before the checkout, as `git worktree add` does, and makes
/// nothing. Git is the oracle: no branch is checked out twice, no path registered twice.
#[test]
fn what_git_did_since_the_plan_stops_a_creation() {
    let env = TestEnv::new();
    env.manifest("[sessions.s1]\n[sessions.s2]\n[sessions.s3]\n");
    let hand = env.tmp.path().join("hand");
    // Before the second creation of the apply (the first has read every worktree): the
    // check then looks at the main worktree and at registrations made since.
    let race = format!("s2:git worktree add -q -b session/s2 {} main", hand.display());
    let (code, out, err) = run(env
        .flowloom()
        .env("FLOWLOOM_TEST_BEFORE_CREATE", &race)
        .args(["apply", "--yes"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!("is checked out in {}", hand.display())),
        "{out}{err}"
    );
    let list = env.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(list.matches("branch refs/heads/session/s2\n").count(), 1, "{list}");
    assert!(!env.path("sessions/shell-instance-s2").exists());
    // The others were made.
    assert!(env.path("sessions/shell-instance-s1").is_dir());
    assert!(env.path("sessions/shell-instance-s3").is_dir());
    env.git(&["worktree", "remove", hand.to_str().expect("utf8")]);
    env.git(&["branch", "-D", "session/s2"]);
    // The first creation of an apply: the branch checked out in the main worktree.
    env.manifest("[sessions.s1]\n[sessions.s2]\n[sessions.s3]\n[sessions.s4]\n");
    let (code, out, err) = run(env
        .flowloom()
        .env("FLOWLOOM_TEST_BEFORE_CREATE", "s2:git switch -q -c session/s2")
        .args(["apply", "--yes"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("is checked out in the main worktree") || err.contains("is checked out in"),
        "{err}"
    );
    assert!(!env.path("sessions/shell-instance-s2").exists());
    env.git(&["switch", "-q", "main"]);
    env.git(&["branch", "-D", "session/s2"]);
    env.manifest("[sessions.s1]\n[sessions.s2]\n[sessions.s3]\n");

    // A registration at the path, made and its folder deleted (a locked worktree).
    let race =
        "s2:git worktree add -q --lock -b other sessions/shell-instance-s2 main && rm -rf sessions/shell-instance-s2";
    let (code, out, err) = run(env
        .flowloom()
        .env("FLOWLOOM_TEST_BEFORE_CREATE", race)
        .args(["apply", "--yes"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("git registered a worktree at"), "{err}");
    let list = env.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(list.matches("/sessions/shell-instance-s2\n").count(), 1, "{list}");
    env.git(&["worktree", "unlock", "sessions/shell-instance-s2"]);
    env.git(&["worktree", "prune"]);
    env.git(&["branch", "-D", "other"]);
    env.fsck();
}

#[test]
fn a_root_that_becomes_a_symlink_after_the_plan_is_refused() {
    let env = TestEnv::new();
    env.manifest("[sessions.s1]\n");
    let race = "s1:ln -s \"$PWD/.git/refs\" sessions";
    let (code, out, err) = run(env
        .flowloom()
        .env("FLOWLOOM_TEST_BEFORE_CREATE", race)
        .args(["apply", "--yes"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("a symlink appeared since the plan"), "{err}");
    assert!(!env.path(".git/refs/shell-instance-s1").exists());
    env.fsck();
}

#[test]
fn a_branch_being_rebased_counts_as_checked_out() {
    let env = TestEnv::new();
    env.git(&["checkout", "-q", "-b", "session/s1"]);
    env.write("README.md", "mine\n");
    env.commit("mine");
    env.git(&["checkout", "-q", "main"]);
    env.write("README.md", "theirs\n");
    env.commit("theirs");
    env.git(&["checkout", "-q", "session/s1"]);
    // Stops on the conflict: HEAD is detached, the branch is being rebased.
    let out = env.git_output(&env.repo, &["rebase", "main"]);
    assert!(!out.status.success());
    env.manifest("[sessions.s1]\n");
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("branch `session/s1` is checked out in"), "{out}");
    assert!(!env.path("sessions/shell-instance-s1").exists());
    env.git(&["rebase", "--abort"]);
}
