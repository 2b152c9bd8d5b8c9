//! The reconciler core (issue: plan → apply through gix), checked with git as the oracle.

use crate::common::TestEnv;

const THREE: &str = r#"
[sessions.auth-refactor]
purpose = "Refactor the auth middleware"
base = "develop"

[sessions.docs-sweep]

[sessions.perf]
purpose = "Speed"
"#;

fn three() -> TestEnv {
    let env = TestEnv::new();
    env.manifest(THREE);
    env
}

#[test]
fn plan_changes_nothing_on_disk() {
    let env = three();
    let refs_before = env.git(&["for-each-ref"]);
    let (code, out, err) = env.run(&["plan"]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(out, @"
    Housekeeping:
      ~ info/exclude: flowloom's block lists exactly the session paths (7 added, 0 removed)

      + auth-refactor  session/auth-refactor  sessions/shell-instance-auth-refactor  new branch from develop 2ddd9f3
      + docs-sweep     session/docs-sweep     sessions/shell-instance-docs-sweep     new branch from main a84cda5
      + perf           session/perf           sessions/shell-instance-perf           new branch from main a84cda5

    Plan: 3 to create, 0 to update, 0 to remove, 0 blocked, 1 housekeeping.
    ");
    assert_eq!(env.git(&["for-each-ref"]), refs_before);
    assert!(!env.path("sessions").exists());
    assert!(!env.repo.join(".git/flowloom").exists());
    assert!(env.worktrees().is_empty());
}

#[test]
fn apply_creates_sessions_git_reads_back() {
    let env = three();
    env.apply();
    assert_eq!(
        env.worktrees(),
        vec![
            (
                "sessions/shell-instance-auth-refactor".into(),
                "session/auth-refactor".into()
            ),
            ("sessions/shell-instance-docs-sweep".into(), "session/docs-sweep".into()),
            ("sessions/shell-instance-perf".into(), "session/perf".into()),
        ]
    );
    // Branches start where SPEC §6 says: the base of each session.
    let develop = env.git(&["rev-parse", "develop"]);
    let main = env.git(&["rev-parse", "main"]);
    assert_eq!(env.git(&["rev-parse", "session/auth-refactor"]), develop);
    assert_eq!(env.git(&["rev-parse", "session/docs-sweep"]), main);
    // Nothing shows as untracked, neither in the main worktree nor in any session.
    assert_eq!(env.git(&["status", "--porcelain"]), "?? flowloom.toml\n");
    for (path, _) in env.worktrees() {
        let dir = env.path(&path);
        assert_eq!(env.git_in(&dir, &["status", "--porcelain"]), "", "{path} is not clean");
        // Executable bits and symlinks as git checks them out.
        let meta = std::fs::symlink_metadata(dir.join("link")).expect("link");
        assert!(meta.file_type().is_symlink());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("bin/run.sh"))
            .expect("run.sh")
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
    }
    env.fsck();
}

#[test]
fn metadata_has_the_fields_of_the_manual_process() {
    let env = three();
    env.apply();
    let wt = env
        .path("sessions/shell-instance-auth-refactor")
        .canonicalize()
        .expect("wt");
    let text = std::fs::read_to_string(wt.join("sessions/auth-refactor/metadata.json")).expect("metadata");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(json["sessionId"], "auth-refactor");
    assert_eq!(json["purpose"], "Refactor the auth middleware");
    assert_eq!(json["gitBranch"], "session/auth-refactor");
    assert_eq!(json["worktreeName"], "shell-instance-auth-refactor");
    assert_eq!(json["workingDirectory"], wt.to_str().expect("utf8"));
    assert_eq!(json["createdManually"], false);
    assert_eq!(json["status"], "active");
    assert_eq!(json["managedBy"], "flowloom");
    assert!(json["shellPid"].as_u64().is_some_and(|p| p > 0));
    let start = json["startTime"].as_str().expect("startTime");
    assert!(start.len() == 20 && start.ends_with('Z'), "{start}");
    assert!(wt.join("sessions/auth-refactor/artifacts").is_dir());
}

#[test]
fn apply_is_idempotent() {
    let env = three();
    env.apply();
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!(out, @"No changes. The sessions match flowloom.toml.");
    let refs = env.git(&["for-each-ref"]);
    let out = env.apply();
    assert!(out.contains("No changes"), "{out}");
    assert_eq!(env.git(&["for-each-ref"]), refs);
}

#[test]
fn detailed_exitcode_says_changes_are_pending() {
    let env = three();
    let (code, _, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2);
}

#[test]
fn work_committed_in_a_session_survives_gc() {
    let env = three();
    env.apply();
    let wt = env.path("sessions/shell-instance-perf");
    env.commit_file(&wt, "perf.txt", "fast\n", "perf work");
    let tip = env.git(&["rev-parse", "session/perf"]);
    env.git(&["gc", "--prune=now", "--quiet"]);
    env.fsck();
    assert_eq!(env.git(&["rev-parse", "session/perf"]), tip);
    assert_eq!(env.git_in(&wt, &["status", "--porcelain"]), "");
}

#[test]
fn git_can_move_and_remove_flowloom_worktrees() {
    let env = three();
    env.apply();
    let moved = env.tmp.path().join("moved");
    env.git(&[
        "worktree",
        "move",
        "sessions/shell-instance-perf",
        moved.to_str().expect("utf8"),
    ]);
    env.git(&["worktree", "remove", moved.to_str().expect("utf8")]);
    env.git(&["worktree", "remove", "sessions/shell-instance-docs-sweep"]);
    env.fsck();
}

#[test]
fn plan_from_inside_a_session_and_with_dash_c() {
    let env = three();
    env.apply();
    let deep = env.path("sessions/shell-instance-docs-sweep/src");
    let (code, out, err) = crate::common::run(env.flowloom_in(&deep).args(["plan"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("No changes."), "{out}");
    let (code, out, err) = crate::common::run(env.flowloom_in(env.tmp.path()).args(["-C", "repo/src", "plan"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("No changes."), "{out}");
}

#[test]
fn dropping_a_clean_session_removes_worktree_then_branch() {
    let env = three();
    env.apply();
    env.manifest(
        r#"
[sessions.auth-refactor]
purpose = "Refactor the auth middleware"
base = "develop"
[sessions.perf]
purpose = "Speed"
"#,
    );
    let (code, out, _) = env.run(&["plan"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!(out, @r"
      - docs-sweep  session/docs-sweep  sessions/shell-instance-docs-sweep  remove worktree, delete branch

    Plan: 0 to create, 0 to update, 1 to remove, 0 blocked.
    ");
    env.apply();
    assert_eq!(env.worktrees().len(), 2);
    assert!(!env.branches().contains(&"session/docs-sweep".to_owned()));
    assert!(!env.path("sessions/shell-instance-docs-sweep").exists());
    env.fsck();
}

#[test]
fn dirty_orphans_are_blocked_and_unmerged_ones_keep_their_branch() {
    let env = three();
    env.apply();
    env.write("sessions/shell-instance-docs-sweep/README.md", "changed\n");
    env.write("sessions/shell-instance-docs-sweep/new.txt", "new\n");
    let perf = env.path("sessions/shell-instance-perf");
    env.commit_file(&perf, "x", "x", "x");
    env.manifest("[sessions.auth-refactor]\nbase = \"develop\"\npurpose = \"Refactor the auth middleware\"\n");
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "blocked removals make apply exit 1");
    insta::assert_snapshot!(out, @r"
          ! docs-sweep  session/docs-sweep  sessions/shell-instance-docs-sweep  blocked
              worktree has 1 modified file
              worktree has 1 untracked file
          - perf        session/perf        sessions/shell-instance-perf        remove worktree, keep branch (not integrated)
              branch `session/perf` has 1 commit not reachable from base `main`

        Plan: 0 to create, 0 to update, 0 to remove, 1 blocked, 1 retained.
    ");
    // The dirty worktree stays; the clean one goes, its unmerged branch stays (retained).
    assert_eq!(env.worktrees().len(), 2);
    assert!(!perf.exists());
    assert_eq!(env.git(&["log", "-1", "--format=%s", "session/perf"]), "x\n");
    let (_, out, _) = env.run(&["plan"]);
    assert!(
        out.contains("= perf") && out.contains("retained"),
        "listed until integrated:\n{out}"
    );
}

#[test]
fn hand_made_sessions_are_unmanaged_and_left_alone() {
    let env = three();
    env.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "session/4242-spike",
        "sessions/shell-instance-4242",
    ]);
    env.manifest("[sessions.perf]\n");
    let (code, out, _) = env.run(&["plan", "--json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["unmanaged"][0]["branch"], "session/4242-spike");
    assert_eq!(json["unmanaged"][0]["path"], "sessions/shell-instance-4242");
    env.apply();
    assert!(
        env.worktrees()
            .contains(&("sessions/shell-instance-4242".into(), "session/4242-spike".into()))
    );
}

#[test]
fn json_plan_matches_the_spec() {
    let env = three();
    let (code, out, _) = env.run(&["plan", "--json"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!(out, @r#"
    {
      "format_version": 1,
      "changes": [
        {
          "action": "create",
          "session": "auth-refactor",
          "branch": "session/auth-refactor",
          "path": "sessions/shell-instance-auth-refactor",
          "start": {
            "from": "base",
            "ref": "develop",
            "commit": "2ddd9f3d31d95a4dc2392996bc00c84ce1de1c70"
          }
        },
        {
          "action": "create",
          "session": "docs-sweep",
          "branch": "session/docs-sweep",
          "path": "sessions/shell-instance-docs-sweep",
          "start": {
            "from": "base",
            "ref": "main",
            "commit": "a84cda599ccfaf2e3327b9633ba0a0610a9eebcd"
          }
        },
        {
          "action": "create",
          "session": "perf",
          "branch": "session/perf",
          "path": "sessions/shell-instance-perf",
          "start": {
            "from": "base",
            "ref": "main",
            "commit": "a84cda599ccfaf2e3327b9633ba0a0610a9eebcd"
          }
        }
      ],
      "unmanaged": [],
      "housekeeping": [
        {
          "action": "excludes",
          "path": "info/exclude",
          "description": "info/exclude: flowloom's block lists exactly the session paths (7 added, 0 removed)"
        }
      ],
      "summary": {
        "create": 3,
        "update": 0,
        "remove": 0,
        "blocked": 0,
        "retained": 0
      }
    }
"#);
}

#[test]
fn everything_works_without_git_on_path() {
    let env = three();
    let empty = env.tmp.path().join("empty-bin");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let (code, _, err) = crate::common::run(env.flowloom().env("PATH", &empty).args(["apply", "--yes"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.worktrees().len(), 3);
    env.manifest("[sessions.perf]\npurpose = \"Speed\"\n");
    let (code, _, err) = crate::common::run(env.flowloom().env("PATH", &empty).args(["apply", "--yes"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        env.worktrees(),
        vec![("sessions/shell-instance-perf".into(), "session/perf".into())]
    );
    env.fsck();
}

#[test]
fn apply_refuses_without_yes_on_a_pipe() {
    let env = three();
    let (code, _, err) = env.run(&["apply"]);
    assert_eq!(code, 1);
    // What, why, and how to go on.
    let err = err.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        err.contains("refusing to apply without confirmation: standard input is not a terminal"),
        "{err}"
    );
    assert!(
        err.contains("review `flowloom plan`, then run `flowloom apply --yes`"),
        "{err}"
    );
    assert!(env.worktrees().is_empty());
}

#[test]
fn a_folder_in_the_way_blocks_creation_and_an_empty_one_does_not() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n[sessions.b]\n");
    env.write("sessions/shell-instance-a/mine.txt", "not flowloom's\n");
    std::fs::create_dir_all(env.path("sessions/shell-instance-b")).expect("mkdir");
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("sessions/shell-instance-a exists and is not a registered worktree"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("sessions/shell-instance-a/mine.txt")).expect("kept"),
        "not flowloom's\n"
    );
    assert_eq!(
        env.worktrees(),
        vec![("sessions/shell-instance-b".into(), "session/b".into())]
    );
}

#[test]
fn apply_works_without_a_git_identity() {
    let env = three();
    let mut cmd = env.flowloom();
    for var in [
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
    ] {
        cmd.env_remove(var);
    }
    let (code, out, err) = crate::common::run(cmd.args(["apply", "--yes"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(env.worktrees().len(), 3);
    let reflog = env.git(&["reflog", "show", "--format=%gn <%ge> %gs", "session/perf"]);
    assert_eq!(reflog, "flowloom <flowloom@localhost> branch: Created from main\n");
    env.fsck();
}

#[test]
fn custom_templates_and_root_are_honoured_and_hidden_from_git_status() {
    let env = TestEnv::new();
    env.manifest(
        r#"
[defaults]
root     = ".agents"
branch   = "agent/{id}"
worktree = "{id}"

[sessions.fix-flaky]
[sessions.docs]
branch = "docs/sweep"
"#,
    );
    env.apply();
    assert_eq!(
        env.worktrees(),
        vec![
            (".agents/docs".into(), "docs/sweep".into()),
            (".agents/fix-flaky".into(), "agent/fix-flaky".into())
        ]
    );
    assert_eq!(env.git(&["status", "--porcelain"]), "?? flowloom.toml\n");
    assert_eq!(env.git_in(&env.path(".agents/docs"), &["status", "--porcelain"]), "");
    assert!(env.path(".agents/docs/sessions/docs/metadata.json").is_file());
}

#[test]
fn a_manifest_in_a_subfolder_roots_sessions_there() {
    let env = TestEnv::new();
    env.write("config/flowloom.toml", "[sessions.a]\n");
    let (code, out, err) = env.run(&["--manifest", "config/flowloom.toml", "apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("sessions/shell-instance-a"),
        "paths are relative to the manifest's folder:\n{out}"
    );
    assert_eq!(
        env.worktrees(),
        vec![("config/sessions/shell-instance-a".into(), "session/a".into())]
    );
    assert_eq!(env.git(&["status", "--porcelain"]), "?? config/\n");
    let exclude = std::fs::read_to_string(env.repo.join(".git/info/exclude")).expect("exclude");
    // Exactly the paths flowloom made: never a whole folder the project may track.
    assert!(
        exclude.contains("/config/sessions/shell-instance-a/\n") && exclude.contains("/sessions/a/\n"),
        "{exclude}"
    );
    assert!(!exclude.contains("/sessions/\n"), "{exclude}");
}

#[test]
fn color_only_when_asked_or_on_a_terminal_and_never_in_json() {
    let env = three();
    let (_, out, _) = env.run(&["plan"]);
    assert!(!out.contains('\x1b'), "a pipe gets no color:\n{out}");
    let (_, out, _) = env.run(&["--color", "always", "plan"]);
    assert!(out.contains("\x1b[32m+\x1b[0m"), "{out:?}");
    let (_, out, _) = env.run(&["--color", "always", "plan", "--json"]);
    assert!(!out.contains('\x1b'));
    let (_, out, err) = env.run(&["-q", "apply", "--yes"]);
    assert!(out.contains("+ perf"), "the plan is what was asked for: {out}");
    assert!(err.is_empty(), "-q keeps progress and summaries quiet: {err}");
}

#[test]
fn a_failing_post_checkout_hook_leaves_the_session_made_and_says_so() {
    let env = TestEnv::new();
    let hook = env.repo.join(".git/hooks/post-checkout");
    std::fs::create_dir_all(hook.parent().expect("hooks")).expect("mkdir");
    std::fs::write(&hook, "#!/bin/sh\necho \"hook: $1 $3\"; exit 3\n").expect("hook");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    env.manifest("[sessions.a]\n");
    let (_, out, _) = env.run(&["plan"]);
    assert!(out.contains("runs hook:") && out.contains("post-checkout"), "{out}");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("hook: 0000000000000000000000000000000000000000 1"),
        "{err}"
    );
    assert!(err.contains("post-checkout hook") && err.contains("failed"), "{err}");
    assert_eq!(env.worktrees().len(), 1, "the session was made");
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "nothing left to do: {out}");
}

#[test]
fn a_partial_clone_missing_the_bases_files_is_refused_before_anything_is_written() {
    let origin = TestEnv::new();
    origin.git(&["config", "uploadpack.allowFilter", "true"]);
    let env = TestEnv::empty();
    let url = format!("file://{}", origin.repo.display());
    env.git_in(
        env.tmp.path(),
        &["clone", "-q", "--filter=blob:none", "--no-checkout", &url, "repo"],
    );
    env.write("flowloom.toml", "[sessions.a]\n");
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not fetched yet in this partial clone"), "{out}");
    assert!(env.worktrees().is_empty());
    assert!(!env.branches().contains(&"session/a".to_owned()));
}

#[test]
fn a_failing_checkout_filter_is_named_and_leaves_nothing_behind() {
    let env = TestEnv::new();
    env.write(".gitattributes", "*.bin filter=lfs -text\n");
    env.write("a.bin", "version https://git-lfs.github.com/spec/v1\nsize 5\n");
    env.commit("lfs pointer");
    env.git(&["config", "filter.lfs.process", "sh -c 'exit 1'"]);
    env.git(&["config", "filter.lfs.required", "true"]);
    env.manifest("[sessions.a]\n");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let flat = err.replace('│', "").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("checkout filter `lfs` failed on a.bin") && flat.contains("filter.lfs.process"),
        "{err}"
    );
    assert!(env.worktrees().is_empty(), "the failed checkout was rolled back");
    assert!(
        !env.branches().contains(&"session/a".to_owned()),
        "the branch it made went too"
    );
    let (code, out, _) = env.run(&["plan"]);
    assert_eq!(code, 0);
    assert!(out.contains("+ a"), "{out}");
    env.fsck();
}
