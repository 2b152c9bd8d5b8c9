//! Never lose work (SPEC §7, §8): every blocked reason and its `--force` outcome, the apply
//! lock, and a kill at every step of apply.

use crate::common::{GONE, TWO, TestEnv, orphan, run};

fn blocked_then_forced(env: &TestEnv, reason: &str) -> String {
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(reason), "expected `{reason}` in:\n{out}");
    assert!(env.path(GONE).exists(), "a blocked removal removed the worktree");
    assert!(env.branches().contains(&"session/gone".to_owned()));
    let (code, out, err) = env.run(&["apply", "--yes", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!env.path(GONE).exists());
    assert!(!env.branches().contains(&"session/gone".to_owned()));
    assert_eq!(
        env.worktrees(),
        vec![("sessions/shell-instance-keep".into(), "session/keep".into())]
    );
    env.fsck();
    out
}

#[test]
fn modified_file_blocks_and_force_lists_it() {
    let env = orphan();
    env.write(&format!("{GONE}/README.md"), "edited\n");
    let out = blocked_then_forced(&env, "worktree has 1 modified file");
    assert!(out.contains("deletes: README.md"), "{out}");
}

#[test]
fn staged_file_blocks() {
    let env = orphan();
    env.write(&format!("{GONE}/staged.txt"), "x\n");
    env.git_in(&env.path(GONE), &["add", "staged.txt"]);
    blocked_then_forced(&env, "worktree has 1 staged file");
}

#[test]
fn deleted_file_blocks() {
    let env = orphan();
    std::fs::remove_file(env.path(&format!("{GONE}/README.md"))).expect("rm");
    blocked_then_forced(&env, "worktree has 1 deleted file");
}

#[test]
fn untracked_file_blocks_but_ignored_does_not() {
    let env = orphan();
    env.write(&format!("{GONE}/notes.txt"), "x\n");
    blocked_then_forced(&env, "worktree has 1 untracked file");

    let env = orphan();
    env.write(&format!("{GONE}/.git-ignored-by-exclude"), "");
    std::fs::remove_file(env.path(&format!("{GONE}/.git-ignored-by-exclude"))).expect("rm");
    env.write(".gitignore", "*.log\n");
    env.commit("ignore logs");
    // An ignored file in the orphan (its branch has no .gitignore, so use info/exclude).
    let exclude = env.repo.join(".git/info/exclude");
    let mut text = std::fs::read_to_string(&exclude).expect("exclude");
    text.push_str("*.log\n");
    std::fs::write(&exclude, text).expect("exclude");
    env.write(&format!("{GONE}/build.log"), "x\n");
    env.apply();
    assert!(!env.path(GONE).exists());
}

#[test]
fn artifacts_block() {
    let env = orphan();
    env.write(&format!("{GONE}/sessions/gone/artifacts/report.md"), "results\n");
    let out = blocked_then_forced(&env, "sessions/gone/ holds 1 file (artifacts)");
    assert!(out.contains("deletes: sessions/gone/artifacts/report.md"), "{out}");
}

#[test]
fn unmerged_commits_keep_the_branch_and_force_archives_them() {
    let env = orphan();
    let wt = env.path(GONE);
    env.commit_file(&wt, "work.txt", "precious\n", "precious work");
    let tip = env.git(&["rev-parse", "session/gone"]);
    // A plain apply removes the clean worktree and keeps the unmerged branch (retained).
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("keep branch (not integrated)"), "{out}");
    assert!(!wt.exists());
    assert_eq!(env.git(&["rev-parse", "session/gone"]), tip);
    // --force archives the commit, then deletes the branch.
    let (code, out, err) = env.run(&["apply", "--yes", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("refs/flowloom/archive/1/session/gone"), "{out}");
    assert!(!env.branches().contains(&"session/gone".to_owned()));
    // The archive keeps the commit through gc, and git can restore the branch from it.
    env.git(&["gc", "--prune=now", "--quiet"]);
    assert_eq!(env.git(&["rev-parse", "refs/flowloom/archive/1/session/gone"]), tip);
    env.git(&["branch", "restored", "refs/flowloom/archive/1/session/gone"]);
    assert_eq!(env.git(&["show", "restored:work.txt"]), "precious\n");
    env.fsck();
}

#[test]
fn a_second_archive_of_the_same_branch_name_does_not_overwrite_the_first() {
    let env = orphan();
    let commit_in = |env: &TestEnv, text: &str| {
        let wt = env.path(GONE);
        env.commit_file(&wt, "work.txt", text, text);
        env.git(&["rev-parse", "session/gone"])
    };
    let first = commit_in(&env, "first\n");
    let (code, _, err) = env.run(&["apply", "--yes", "--force"]);
    assert_eq!(code, 0, "{err}");
    env.manifest(TWO);
    env.apply();
    env.manifest("[sessions.keep]\n");
    let second = commit_in(&env, "second\n");
    let (code, _, err) = env.run(&["apply", "--yes", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.git(&["rev-parse", "refs/flowloom/archive/1/session/gone"]), first);
    assert_eq!(env.git(&["rev-parse", "refs/flowloom/archive/2/session/gone"]), second);
}

#[test]
fn a_locked_worktree_is_never_removed_even_with_force() {
    let env = orphan();
    env.git(&["worktree", "lock", "--reason", "on a usb disk", GONE]);
    for args in [&["apply", "--yes"][..], &["apply", "--yes", "--force"][..]] {
        let (code, out, _) = env.run(args);
        assert_eq!(code, 1);
        assert!(out.contains("worktree is locked (reason: on a usb disk)"), "{out}");
        assert!(env.path(GONE).exists());
    }
}

#[test]
fn the_worktree_flowloom_runs_in_is_never_removed() {
    let env = orphan();
    for args in [&["apply", "--yes"][..], &["apply", "--yes", "--force"][..]] {
        let (code, out, _) = run(env.flowloom_in(&env.path(GONE)).args(args));
        assert_eq!(code, 1);
        assert!(out.contains("flowloom was started inside this worktree"), "{out}");
        assert!(env.path(GONE).exists());
    }
}

#[test]
fn a_worktree_folder_deleted_by_hand_is_pruned() {
    let env = orphan();
    std::fs::remove_dir_all(env.path(GONE)).expect("rm");
    let (_, out, _) = env.run(&["plan"]);
    assert!(
        out.contains("prune worktree (folder already gone), delete branch"),
        "{out}"
    );
    env.apply();
    assert_eq!(env.worktrees().len(), 1);
    assert!(!env.branches().contains(&"session/gone".to_owned()));
    env.fsck();
}

#[test]
fn unmanaged_and_out_of_scope_state_is_never_touched() {
    let env = TestEnv::new();
    // Made by hand inside the root, a worktree outside the root, an out-of-scope branch.
    env.git(&["worktree", "add", "-q", "-b", "session/by-hand", "sessions/by-hand"]);
    let outside = env.tmp.path().join("outside");
    env.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "session/outside",
        outside.to_str().expect("utf8"),
    ]);
    env.git(&["branch", "feature/x"]);
    env.manifest("[sessions.a]\n");
    env.apply();
    env.manifest("");
    let (code, out, err) = env.run(&["apply", "--yes", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let wts = env.worktrees();
    assert!(wts.iter().any(|(p, _)| p == "sessions/by-hand"), "{wts:?}");
    assert!(wts.iter().any(|(_, b)| b == "session/outside"), "{wts:?}");
    assert!(env.branches().contains(&"feature/x".to_owned()));
    assert!(!env.branches().contains(&"session/a".to_owned()));
}

#[test]
fn a_hand_edited_record_cannot_point_outside_the_root() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    let record = env.repo.join(".git/flowloom/owned.json");
    let main = env.repo.canonicalize().expect("canonical");
    let text = std::fs::read_to_string(&record).expect("record");
    let edited = text.replacen(
        "\"sessions\": [",
        &format!(
            "\"sessions\": [{{\"id\": \"evil\", \"branch\": \"develop\", \"path\": \"{}\", \"base\": \"main\", \"state\": \"created\"}},",
            main.display()
        ),
        1,
    );
    std::fs::write(&record, edited).expect("write");
    env.manifest("");
    let (code, out, err) = env.run(&["apply", "--yes", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(env.branches().contains(&"develop".to_owned()));
    assert!(env.repo.join("README.md").exists());
}

#[test]
fn a_corrupt_record_is_an_error_not_a_reason_to_delete() {
    let env = orphan();
    std::fs::write(env.repo.join(".git/flowloom/owned.json"), "{ not json").expect("write");
    let (code, _, err) = env.run(&["apply", "--yes", "--force"]);
    assert_eq!(code, 1);
    assert!(err.contains("ownership record"), "{err}");
    assert!(env.path(GONE).exists());
}

#[test]
fn corrupt_metadata_blocks_its_session() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    let meta = env.path("sessions/shell-instance-a/sessions/a/metadata.json");
    std::fs::write(&meta, "{ broken").expect("write");
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1);
    assert!(out.contains("metadata.json is not valid"), "{out}");
    assert_eq!(std::fs::read_to_string(&meta).expect("read"), "{ broken");
}

// ---- the apply lock ----

#[test]
fn a_held_lock_makes_a_second_apply_wait_naming_the_holder_then_give_up() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    let path = env.repo.join(".git/flowloom.lock");
    let mut file = std::fs::File::create(&path).expect("lock file");
    use std::io::Write;
    file.write_all(b"pid 4242\nhost build-box\nstarted 2026-01-01T00:00:00Z\n")
        .expect("write");
    file.try_lock().expect("lock");
    let started = std::time::Instant::now();
    let (code, _, err) = env.run(&["apply", "--yes", "--lock-timeout", "1s"]);
    assert_eq!(code, 1);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "it waited");
    assert!(
        err.contains("waiting up to 1s for the lock another flowloom holds (pid 4242"),
        "{err}"
    );
    let flat = err.replace('│', "").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("another flowloom apply holds"), "{err}");
    assert!(flat.contains("pid 4242, host build-box"), "{err}");
    assert!(env.worktrees().is_empty());
    // Released while the second one waits: it goes ahead.
    let holder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        drop(file);
    });
    let (code, out, err) = env.run(&["apply", "--yes"]);
    holder.join().expect("holder");
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(env.worktrees().len(), 1);
}

#[test]
fn a_stale_lock_is_taken_over_with_a_warning() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    std::fs::write(env.repo.join(".git/flowloom.lock"), "pid 999999\nhost gone-box\n").expect("write");
    let (code, _, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("took over the lock") && err.contains("pid 999999"),
        "{err}"
    );
    assert_eq!(env.worktrees().len(), 1);
}

#[test]
fn concurrent_applies_end_with_exactly_the_declared_sessions() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n[sessions.b]\n[sessions.c]\n[sessions.d]\n");
    let children: Vec<_> = (0..2)
        .map(|_| {
            env.flowloom()
                .args(["apply", "--yes"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    for out in &outputs {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || err.contains("another flowloom apply holds"),
            "{err}"
        );
    }
    assert!(outputs.iter().any(|o| o.status.success()));
    assert_eq!(env.worktrees().len(), 4);
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
    env.fsck();
}

// ---- a kill at every step ----

#[test]
fn a_kill_at_any_step_of_apply_converges() {
    for step in flowloom::apply::FAILPOINTS {
        let env = TestEnv::new();
        let removing = step.starts_with("remove:");
        if removing {
            env.manifest(TWO);
            env.apply();
            // Unmerged work, so that the forced removal archives it first.
            let wt = env.path(GONE);
            env.commit_file(&wt, "work.txt", "w\n", "work");
            env.manifest("[sessions.keep]\n");
        } else {
            env.manifest(TWO);
        }
        let (code, _, err) = run(env
            .flowloom()
            .env("FLOWLOOM_FAILPOINT", step)
            .args(["apply", "--yes", "--force"]));
        assert_ne!(code, 0, "{step}: the failpoint did not fire\n{err}");

        // The next plan is valid, the next apply converges, nothing half-made is left.
        let (code, out, err) = env.run(&["plan"]);
        assert_eq!(code, 0, "{step}: plan after the kill failed\n{out}\n{err}");
        let (code, out, err) = env.run(&["apply", "--yes", "--force"]);
        assert_eq!(code, 0, "{step}: apply after the kill failed\n{out}\n{err}");
        let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
        assert_eq!(code, 0, "{step}: not converged:\n{out}");
        let expected: Vec<(String, String)> = if removing {
            vec![("sessions/shell-instance-keep".into(), "session/keep".into())]
        } else {
            vec![
                ("sessions/shell-instance-gone".into(), "session/gone".into()),
                ("sessions/shell-instance-keep".into(), "session/keep".into()),
            ]
        };
        assert_eq!(env.worktrees(), expected, "{step}");
        let porcelain = env.git(&["worktree", "list", "--porcelain"]);
        assert!(
            !porcelain.contains("locked"),
            "{step}: a worktree stayed locked\n{porcelain}"
        );
        for (path, _) in &expected {
            assert_eq!(
                env.git_in(&env.path(path), &["status", "--porcelain"]),
                "",
                "{step}: {path}"
            );
        }
        if removing {
            assert_eq!(
                env.git(&["show", "refs/flowloom/archive/1/session/gone:work.txt"]),
                "w\n",
                "{step}"
            );
            assert!(!env.branches().contains(&"session/gone".to_owned()), "{step}");
            assert!(
                !env.path(GONE).exists(),
                "{step}: a folder was left at the session's path"
            );
        }
        assert!(
            !env.path("sessions/.flowloom-trash").exists(),
            "{step}: the trash is emptied"
        );
        env.fsck();
    }
}

/// A real `kill -9`, sent the moment apply is seen mid-step (mid-checkout, mid-removal),
/// and proven to have landed there: after the kill, the ownership record still says the
/// session was being created or removed. The next apply converges and git finds nothing
/// half-made.
#[test]
fn a_real_kill_anywhere_converges() {
    let env = TestEnv::new();
    for i in 0..1000 {
        env.write(&format!("bulk/d{}/f{i}.txt", i % 30), &format!("{i}\n").repeat(20));
    }
    env.commit("bulk");
    let three = "[sessions.a]\n[sessions.b]\n[sessions.c]\n";
    let record = env.repo.join(".git/flowloom/owned.json");
    let admin = env.repo.join(".git/worktrees");
    let trash = env.path("sessions/.flowloom-trash");
    let record_says =
        |state: &str| std::fs::read_to_string(&record).is_ok_and(|t| t.contains(&format!("\"state\": \"{state}\"")));
    let checking_out = || {
        std::fs::read_dir(&admin)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| std::fs::read_to_string(e.path().join("locked")).is_ok_and(|r| r.trim() == "initializing"))
    };
    let kill_when = |seen: &dyn Fn() -> bool| kill_apply_when(&env, seen);
    let converges = |what: &str, expected: usize| converges_after_kill(&env, &trash, what, expected);
    type Probe<'a> = (&'a str, &'a dyn Fn() -> bool, &'a str);
    let creating: [Probe; 2] = [
        (
            "recorded, nothing made yet",
            &|| record_says("creating") && !checking_out(),
            "creating",
        ),
        ("mid-checkout", &checking_out, "creating"),
    ];
    let removing: [Probe; 2] = [
        ("recorded as removing", &|| record_says("removing"), "removing"),
        (
            "worktree in the trash",
            &|| std::fs::read_dir(&trash).is_ok_and(|mut d| d.next().is_some()),
            "removing",
        ),
    ];
    for round in 0..2 {
        for ((c_what, c_seen, c_state), (r_what, r_seen, r_state)) in creating.iter().zip(&removing) {
            env.manifest(three);
            let landed = kill_when(*c_seen);
            assert!(landed, "round {round}: apply finished before it was seen {c_what}");
            assert!(record_says(c_state), "round {round}: the kill landed {c_what}");
            converges(&format!("creating, killed {c_what}"), 3);
            // Packed, their deletion takes packed-refs.lock, which every git command shares.
            env.git(&["pack-refs", "--all"]);
            env.manifest("");
            let landed = kill_when(*r_seen);
            assert!(landed, "round {round}: apply finished before it was seen {r_what}");
            assert!(record_says(r_state), "round {round}: the kill landed {r_what}");
            converges(&format!("removing, killed {r_what}"), 0);
            assert!(
                env.branches().iter().all(|b| !b.starts_with("session/")),
                "{:?}",
                env.branches()
            );
        }
    }
}

/// Kills an apply the moment `seen()` holds; whether it was seen while apply still ran.
fn kill_apply_when(env: &TestEnv, seen: &dyn Fn() -> bool) -> bool {
    let mut child = env
        .flowloom()
        .args(["apply", "--yes"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let landed = loop {
        if seen() {
            let _ = child.kill();
            break true;
        }
        if child.try_wait().expect("wait").is_some() {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    };
    let _ = child.wait();
    landed
}

/// After a kill, plan and apply succeed and leave `expected` clean, unlocked worktrees, an
/// empty trash and nothing more to do, with a repository git finds sound.
fn converges_after_kill(env: &TestEnv, trash: &std::path::Path, what: &str, expected: usize) {
    let (code, out, err) = env.run(&["plan"]);
    assert_eq!(code, 0, "{what}: plan failed:\n{out}\n{err}");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{what}: apply failed:\n{out}\n{err}");
    assert_eq!(env.worktrees().len(), expected, "{what}");
    let porcelain = env.git(&["worktree", "list", "--porcelain"]);
    assert!(!porcelain.contains("locked"), "{what}: {porcelain}");
    for (path, _) in env.worktrees() {
        assert_eq!(
            env.git_in(&env.path(&path), &["status", "--porcelain"]),
            "",
            "{what}: {path}"
        );
    }
    assert!(!trash.exists(), "{what}: the trash is emptied");
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{what}: not converged\n{out}");
    env.fsck();
}

#[test]
fn a_forced_plan_in_json_names_the_archive_and_the_files() {
    let env = orphan();
    let wt = env.path(GONE);
    env.commit_file(&wt, "work.txt", "w\n", "work");
    env.write(&format!("{GONE}/scratch.txt"), "s\n");
    let tip = env.git(&["rev-parse", "session/gone"]);
    let (code, out, _) = env.run(&["plan", "--force", "--json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    let change = &json["changes"][0];
    assert_eq!(change["action"], "remove");
    assert_eq!(change["delete_branch"], true);
    assert_eq!(change["archive"]["ref"], "refs/flowloom/archive/1/session/gone");
    assert_eq!(change["archive"]["commit"], tip.trim());
    assert_eq!(change["archive"]["commits"], 1);
    assert_eq!(change["discard"], serde_json::json!(["scratch.txt"]));
    // Planning changed nothing.
    assert!(
        env.git_output(
            &env.repo,
            &["rev-parse", "--verify", "-q", "refs/flowloom/archive/1/session/gone"]
        )
        .stdout
        .is_empty()
    );
}

#[test]
fn a_file_added_to_a_half_made_checkout_is_never_deleted() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    let (code, _, _) = run(env
        .flowloom()
        .env("FLOWLOOM_FAILPOINT", "create:registered")
        .args(["apply", "--yes"]));
    assert_ne!(code, 0);
    let wt = "sessions/shell-instance-a";
    env.write(&format!("{wt}/my-notes.txt"), "written after the crash\n");
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("holds 1 file its checkout did not write (my-notes.txt)"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(env.path(&format!("{wt}/my-notes.txt"))).expect("kept"),
        "written after the crash\n"
    );
    std::fs::rename(
        env.path(&format!("{wt}/my-notes.txt")),
        env.tmp.path().join("my-notes.txt"),
    )
    .expect("move");
    env.apply();
    assert_eq!(env.worktrees(), vec![(wt.into(), "session/a".into())]);
    assert_eq!(env.git_in(&env.path(wt), &["status", "--porcelain"]), "");
}

#[test]
fn a_kill_while_a_deleted_worktree_is_checked_out_again_converges() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    std::fs::remove_dir_all(env.path("sessions/shell-instance-a")).expect("rm");
    // Killed right after the worktree is registered again, locked `initializing`.
    let (code, _, _) = run(env
        .flowloom()
        .env("FLOWLOOM_FAILPOINT", "create:registered")
        .args(["apply", "--yes"]));
    assert_ne!(code, 0, "the failpoint did not fire");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let porcelain = env.git(&["worktree", "list", "--porcelain"]);
    assert!(!porcelain.contains("locked"), "{porcelain}");
    assert_eq!(
        env.git_in(&env.path("sessions/shell-instance-a"), &["status", "--porcelain"]),
        ""
    );
    let (code, _, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0);
    env.fsck();
}

#[test]
fn an_edit_in_a_half_made_checkout_is_never_overwritten_but_a_cut_short_file_is_redone() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    let (code, _, _) = run(env
        .flowloom()
        .env("FLOWLOOM_FAILPOINT", "create:registered")
        .args(["apply", "--yes"]));
    assert_ne!(code, 0);
    let wt = "sessions/shell-instance-a";
    // What a kill mid-write leaves: the start of a file of the branch. Not work.
    env.write(&format!("{wt}/README.md"), "hel");
    // Someone's edit of another file of the branch after the crash: work.
    env.write(&format!("{wt}/src/lib.rs"), "pub fn mine() {}\n");
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("holds 1 file its checkout did not write (src/lib.rs)"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(env.path(&format!("{wt}/src/lib.rs"))).expect("kept"),
        "pub fn mine() {}\n"
    );
    std::fs::remove_file(env.path(&format!("{wt}/src/lib.rs"))).expect("rm");
    env.apply();
    assert_eq!(env.git_in(&env.path(wt), &["status", "--porcelain"]), "");
    assert_eq!(
        std::fs::read_to_string(env.path(&format!("{wt}/README.md"))).expect("read"),
        "hello\n"
    );
}
