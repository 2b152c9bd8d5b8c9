//! The team workflow: a shared remote, a fresh clone bootstrapping its sessions, drift repair.

use crate::common::{TestEnv, run};

const MANIFEST: &str = "[sessions.api]\npurpose = \"API work\"\n\n[sessions.ui]\n";

/// A team repository pushed to a bare remote, sessions applied, work committed in `api` and
/// pushed; returns the env and the path of a fresh clone.
fn team() -> (TestEnv, std::path::PathBuf) {
    let env = TestEnv::new();
    env.manifest(MANIFEST);
    env.commit("declare sessions");
    let remote = env.tmp.path().join("remote.git");
    env.git_in(env.tmp.path(), &["init", "-q", "--bare", "-b", "main", "remote.git"]);
    env.git(&["remote", "add", "origin", remote.to_str().expect("utf8")]);
    env.git(&["push", "-q", "origin", "main", "develop"]);
    env.apply();
    let api = env.path("sessions/shell-instance-api");
    env.commit_file(&api, "api.rs", "fn api() {}\n", "api work");
    env.git_in(&api, &["push", "-q", "origin", "session/api"]);
    let clone = env.tmp.path().join("clone");
    env.git_in(
        env.tmp.path(),
        &["clone", "-q", remote.to_str().expect("utf8"), "clone"],
    );
    (env, clone)
}

#[test]
fn a_fresh_clone_gets_its_sessions_back_on_the_remote_commits() {
    let (env, clone) = team();
    let pushed = env.git(&["rev-parse", "session/api"]);
    let (code, out, err) = run(env.flowloom_in(&clone).args(["plan"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("from remote origin/session/api {}", &pushed[..7])),
        "{out}"
    );
    assert!(out.contains("+ ui"), "{out}");
    let (code, out, err) = run(env.flowloom_in(&clone).args(["apply", "--yes"]));
    assert_eq!(code, 0, "{out}\n{err}");

    let api = clone.join("sessions/shell-instance-api");
    assert_eq!(env.git_in(&clone, &["rev-parse", "session/api"]), pushed);
    assert_eq!(env.git_in(&api, &["show", "HEAD:api.rs"]), "fn api() {}\n");
    // The local branch tracks the remote one, as git itself reads it.
    assert_eq!(env.git_in(&clone, &["config", "branch.session/api.remote"]), "origin\n");
    assert_eq!(
        env.git_in(&clone, &["config", "branch.session/api.merge"]),
        "refs/heads/session/api\n"
    );
    let status = env.git_in(&api, &["status"]);
    assert!(
        status.contains("Your branch is up to date with 'origin/session/api'"),
        "{status}"
    );
    // `ui` was never pushed: it starts at the base.
    assert_eq!(
        env.git_in(&clone, &["rev-parse", "session/ui"]),
        env.git_in(&clone, &["rev-parse", "main"])
    );
    env.git_in(&clone, &["fsck", "--strict", "--no-progress"]);
    let (code, out, _) = run(env.flowloom_in(&clone).args(["plan", "--detailed-exitcode"]));
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_purpose_edit_is_a_metadata_diff_that_keeps_start_time() {
    let env = TestEnv::new();
    env.manifest(MANIFEST);
    env.apply();
    let meta = env.path("sessions/shell-instance-api/sessions/api/metadata.json");
    let before: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta).expect("read")).expect("json");
    // A field some other tool added is kept too.
    let mut edited = before.clone();
    edited["reviewer"] = "someone".into();
    std::fs::write(&meta, serde_json::to_string_pretty(&edited).expect("json")).expect("write");

    env.manifest("[sessions.api]\npurpose = \"API v2\"\n\n[sessions.ui]\n");
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2);
    assert!(out.contains("~ api"), "{out}");
    assert!(out.contains("-  \"purpose\": \"API work\","), "{out}");
    assert!(out.contains("+  \"purpose\": \"API v2\","), "{out}");
    env.apply();
    let after: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta).expect("read")).expect("json");
    assert_eq!(after["purpose"], "API v2");
    for kept in ["startTime", "shellPid", "createdManually", "reviewer", "status"] {
        assert_eq!(after[kept], edited[kept], "{kept}");
    }
    let (code, _, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0);
}

#[test]
fn deleted_metadata_and_artifacts_are_written_again() {
    let env = TestEnv::new();
    env.manifest(MANIFEST);
    env.apply();
    std::fs::remove_dir_all(env.path("sessions/shell-instance-ui/sessions/ui")).expect("rm");
    let (_, out, _) = env.run(&["plan"]);
    assert!(
        out.contains("~ ui") && out.contains("write metadata, create artifacts folder"),
        "{out}"
    );
    env.apply();
    assert!(
        env.path("sessions/shell-instance-ui/sessions/ui/metadata.json")
            .is_file()
    );
    assert!(env.path("sessions/shell-instance-ui/sessions/ui/artifacts").is_dir());
}

#[test]
fn a_worktree_folder_deleted_by_hand_is_recreated_on_its_branch() {
    let env = TestEnv::new();
    env.manifest(MANIFEST);
    env.apply();
    let api = env.path("sessions/shell-instance-api");
    env.commit_file(&api, "kept.txt", "kept\n", "kept");
    std::fs::remove_dir_all(&api).expect("rm");
    let (_, out, _) = env.run(&["plan"]);
    assert!(
        out.contains("~ api") && out.contains("recreate worktree (existing branch"),
        "{out}"
    );
    env.apply();
    assert_eq!(std::fs::read_to_string(api.join("kept.txt")).expect("read"), "kept\n");
    assert_eq!(env.git_in(&api, &["status", "--porcelain"]), "");
    assert!(
        env.worktrees()
            .contains(&("sessions/shell-instance-api".into(), "session/api".into()))
    );
    env.fsck();
}

#[test]
fn a_saved_plan_is_applied_exactly_and_a_stale_one_refused() {
    let env = TestEnv::new();
    env.manifest(MANIFEST);
    let plan_file = env.tmp.path().join("plan.json");
    let plan_arg = plan_file.to_str().expect("utf8");
    let (code, _, err) = env.run(&["plan", "--out", plan_arg]);
    assert_eq!(code, 0, "{err}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).expect("read")).expect("json");
    assert_eq!(saved["summary"]["create"], 2);
    assert_eq!(saved["saved"]["fingerprint"].as_str().map(str::len), Some(40));
    // Applied without asking, even on a pipe: it was reviewed when it was made.
    let (code, out, err) = env.run(&["apply", plan_arg]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(env.worktrees().len(), 2);

    // Stale: the repository changed (a session's branch moved) after the plan was made.
    env.manifest("[sessions.api]\npurpose = \"API work\"\n");
    let (code, _, err) = env.run(&["plan", "--out", plan_arg]);
    assert_eq!(code, 0, "{err}");
    let ui = env.path("sessions/shell-instance-ui");
    env.commit_file(&ui, "late.txt", "late\n", "late work");
    let refs = env.git(&["for-each-ref"]);
    let (code, _, err) = env.run(&["apply", plan_arg]);
    assert_eq!(code, 1);
    let flat = err.replace('│', "").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("the saved plan is stale: the plan for ui is not the same now"),
        "{err}"
    );
    assert_eq!(env.git(&["for-each-ref"]), refs);
    assert_eq!(env.worktrees().len(), 2);

    // Stale: the manifest changed.
    let (code, _, _) = env.run(&["plan", "--out", plan_arg]);
    assert_eq!(code, 0);
    env.manifest("[sessions.api]\npurpose = \"API v3\"\n");
    let (code, _, err) = env.run(&["apply", plan_arg]);
    assert_eq!(code, 1, "{err}");
    let flat = err.replace('│', "").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("the saved plan is stale: the manifest changed"), "{err}");

    let (code, _, err) = env.run(&["apply", "/no/such/plan.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn a_worktree_on_another_branch_is_switched_back_only_when_clean() {
    let env = TestEnv::new();
    env.manifest(MANIFEST);
    env.apply();
    let ui = env.path("sessions/shell-instance-ui");
    env.git_in(&ui, &["switch", "-q", "-c", "experiment"]);
    env.commit_file(&ui, "only-on-experiment.txt", "x\n", "experiment");

    // With uncommitted changes: blocked, nothing touched.
    env.write("sessions/shell-instance-ui/README.md", "edited\n");
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("checked out on `experiment` instead of `session/ui`, with uncommitted changes"),
        "{out}"
    );
    assert_eq!(env.git_in(&ui, &["branch", "--show-current"]), "experiment\n");

    // Clean: switched back as git would, the other branch and the session folder kept.
    env.git_in(&ui, &["checkout", "-q", "README.md"]);
    let (_, out, _) = env.run(&["plan"]);
    assert!(out.contains("switch back from experiment"), "{out}");
    env.apply();
    assert_eq!(env.git_in(&ui, &["branch", "--show-current"]), "session/ui\n");
    assert_eq!(env.git_in(&ui, &["status", "--porcelain"]), "");
    assert!(!ui.join("only-on-experiment.txt").exists());
    assert!(ui.join("sessions/ui/metadata.json").is_file());
    assert!(env.branches().contains(&"experiment".to_owned()));
    let reflog = env.git_in(&ui, &["reflog", "-1", "--format=%gs", "HEAD"]);
    assert_eq!(reflog, "checkout: moving from experiment to session/ui\n");
    env.fsck();
    let (code, _, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0);
}

#[test]
fn a_kill_between_a_remote_branch_and_its_upstream_is_finished_by_the_next_apply() {
    let (env, clone) = team();
    let (code, _, _) = run(env
        .flowloom_in(&clone)
        .env("FLOWLOOM_FAILPOINT", "create:branch-ref")
        .args(["apply", "--yes"]));
    assert_ne!(code, 0, "the failpoint did not fire");
    assert!(
        env.git_output(&clone, &["config", "branch.session/api.merge"])
            .stdout
            .is_empty()
    );
    let (code, out, err) = run(env.flowloom_in(&clone).args(["apply", "--yes"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("from remote origin/session/api"), "{out}");
    assert_eq!(
        env.git_in(&clone, &["config", "branch.session/api.merge"]),
        "refs/heads/session/api\n"
    );
    let status = env.git_in(&clone.join("sessions/shell-instance-api"), &["status"]);
    assert!(status.contains("up to date with 'origin/session/api'"), "{status}");
    let (code, _, _) = run(env.flowloom_in(&clone).args(["plan", "--detailed-exitcode"]));
    assert_eq!(code, 0);
}

/// A clean worktree on `experiment`, which deletes and adds files relative to `session/ui`.
fn on_experiment() -> (TestEnv, std::path::PathBuf) {
    let env = TestEnv::new();
    env.manifest(MANIFEST);
    env.apply();
    let ui = env.path("sessions/shell-instance-ui");
    env.git_in(&ui, &["switch", "-q", "-c", "experiment"]);
    env.git_in(&ui, &["rm", "-q", "-r", "src"]);
    std::fs::write(ui.join("only-on-experiment.txt"), "x\n").expect("write");
    std::fs::write(ui.join("README.md"), "experiment readme\n").expect("write");
    env.git_in(&ui, &["add", "-A"]);
    env.git_in(&ui, &["commit", "-q", "-m", "experiment"]);
    (env, ui)
}

#[test]
fn a_switch_back_killed_half_way_is_finished_by_the_next_apply() {
    for step in ["switch:deleted", "switch:checked-out"] {
        let (env, ui) = on_experiment();
        let (code, _, _) = run(env.flowloom().env("FLOWLOOM_FAILPOINT", step).args(["apply", "--yes"]));
        assert_ne!(code, 0, "{step}: the failpoint did not fire");
        let (code, out, err) = env.run(&["apply", "--yes"]);
        assert_eq!(code, 0, "{step}:\n{out}\n{err}");
        assert_eq!(env.git_in(&ui, &["branch", "--show-current"]), "session/ui\n", "{step}");
        assert_eq!(env.git_in(&ui, &["status", "--porcelain"]), "", "{step}");
        assert!(!ui.join("only-on-experiment.txt").exists(), "{step}");
        assert_eq!(
            std::fs::read_to_string(ui.join("README.md")).expect("read"),
            "hello\n",
            "{step}"
        );
        env.fsck();
    }
}

#[test]
fn work_done_after_a_killed_switch_blocks_finishing_it() {
    let (env, ui) = on_experiment();
    let (code, _, _) = run(env
        .flowloom()
        .env("FLOWLOOM_FAILPOINT", "switch:checked-out")
        .args(["apply", "--yes"]));
    assert_ne!(code, 0);
    std::fs::write(ui.join("README.md"), "someone's edit after the crash\n").expect("write");
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("with uncommitted changes"), "{out}");
    assert_eq!(
        std::fs::read_to_string(ui.join("README.md")).expect("read"),
        "someone's edit after the crash\n"
    );
}
