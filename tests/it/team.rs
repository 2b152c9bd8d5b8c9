//! Issue 5: `status`, `path`, `init`, `completions` and `import`, with git as the oracle.

use crate::common::{TestEnv, run};

/// Replace the temp folder (canonical or not) so snapshots do not depend on it.
fn mask(env: &TestEnv, text: &str) -> String {
    let canonical = env.tmp.path().canonicalize().expect("canonical tmp");
    text.replace(&canonical.display().to_string(), "[TMP]")
        .replace(&env.tmp.path().display().to_string(), "[TMP]")
}

#[test]
fn init_writes_a_manifest_that_validates_and_refuses_to_overwrite() {
    let env = TestEnv::new();
    let (code, _, err) = env.run(&["init"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(mask(&env, &err), "wrote [TMP]/repo/flowloom.toml\n");
    let written = std::fs::read_to_string(env.path("flowloom.toml")).expect("written");
    assert!(written.starts_with("# flowloom.toml"), "{written}");
    let (code, _, err) = env.run(&["validate"]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(err, @"flowloom.toml is valid: 0 sessions declared.");
    // From a subfolder it still writes at the root of the main worktree; and never twice.
    std::fs::write(env.path("flowloom.toml"), "# mine\n").expect("write");
    let (code, _, err) = run(env.flowloom_in(&env.path("src")).arg("init"));
    assert_eq!(code, 1);
    insta::assert_snapshot!(mask(&env, &err), @"
    × [TMP]/repo/flowloom.toml already exists; flowloom init never overwrites a
    │ manifest
    help: edit it and check it with `flowloom validate`, or move it away and run `flowloom init`
          again
    ");
    assert_eq!(
        std::fs::read_to_string(env.path("flowloom.toml")).expect("kept"),
        "# mine\n"
    );
    // Nothing but the manifest was written.
    assert_eq!(env.git(&["status", "--porcelain"]), "?? flowloom.toml\n");
}

#[test]
fn init_with_manifest_writes_there_and_warns_when_main_is_missing() {
    let env = TestEnv::new();
    env.git(&["branch", "-m", "main", "trunk"]);
    let (code, _, err) = env.run(&["--manifest", "conf/flowloom.toml", "init"]);
    assert_eq!(code, 1, "the folder does not exist: {err}");
    std::fs::create_dir_all(env.path("conf")).expect("mkdir");
    let (code, _, err) = env.run(&["--manifest", "conf/flowloom.toml", "init"]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(mask(&env, &err), @"
    wrote [TMP]/repo/conf/flowloom.toml
    warning: `main` does not name a commit here: set `base` under [defaults] in [TMP]/repo/conf/flowloom.toml before declaring sessions
    ");
    let (code, _, err) = env.run(&["--manifest", "conf/flowloom.toml", "validate"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn path_prints_the_absolute_worktree_of_a_session() {
    let env = TestEnv::new();
    env.manifest("[sessions.perf]\n[sessions.docs]\nworktree = \"docs\"\n");
    env.apply();
    let (code, out, err) = env.run(&["path", "docs"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "");
    let expected = env.path("sessions/docs").canonicalize().expect("canonical");
    assert_eq!(out, format!("{}\n", expected.display()));
    // git agrees that this is the worktree of the session's branch.
    assert_eq!(
        env.git_in(&expected, &["rev-parse", "--show-toplevel", "--abbrev-ref", "HEAD"]),
        format!("{}\nsession/docs\n", expected.display())
    );
    // The same from inside another session.
    let (code, out2, _) = run(env
        .flowloom_in(&env.path("sessions/shell-instance-perf"))
        .args(["path", "docs"]));
    assert_eq!((code, out2), (0, out));
}

#[test]
fn path_of_an_unknown_session_lists_the_known_ones() {
    let env = TestEnv::new();
    env.manifest("[sessions.perf]\n[sessions.docs]\n");
    env.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "session/4242-spike",
        "sessions/shell-instance-4242",
    ]);
    let (code, out, err) = env.run(&["path", "nope"]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    insta::assert_snapshot!(err, @"
    × no session `nope` in flowloom.toml or the repository
    help: known sessions: 4242-spike, docs, perf
    ");
    // An unmanaged session is in scope: its path is known too.
    let (code, out, _) = env.run(&["path", "4242-spike"]);
    assert_eq!(code, 0);
    let wt = env
        .path("sessions/shell-instance-4242")
        .canonicalize()
        .expect("canonical");
    assert_eq!(out, format!("{}\n", wt.display()));
}

#[test]
fn completions_are_generated_for_every_shell() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, out, err) = env.run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains("flowloom"), "{shell}");
        assert!(out.contains("validate"), "{shell}: subcommands are completed");
    }
    let (code, _, _) = env.run(&["completions", "tcsh"]);
    assert_eq!(code, 1);
}

/// A session made with the exact steps of `seed/manual-session-creation.md`, run from the
/// main worktree with `SHELL_PID` and `PURPOSE` given; returns the worktree path as `pwd`
/// would print it there.
fn manual_session(env: &TestEnv, shell_pid: u32, purpose: &str) -> std::path::PathBuf {
    let session_id = format!("{shell_pid}-{purpose}");
    let worktree_name = format!("shell-instance-{shell_pid}");
    // 2. git worktree add -b "session/${SESSION_ID}" "sessions/${WORKTREE_NAME}"
    env.git(&[
        "worktree",
        "add",
        "-b",
        &format!("session/{session_id}"),
        &format!("sessions/{worktree_name}"),
    ]);
    // 3. mkdir -p "sessions/${WORKTREE_NAME}/sessions/${SESSION_ID}/artifacts"
    let wt = env.repo.join("sessions").join(&worktree_name);
    std::fs::create_dir_all(wt.join("sessions").join(&session_id).join("artifacts")).expect("mkdir");
    // 4.-5. cd "sessions/${WORKTREE_NAME}" and the python snippet: json.dump(metadata, f,
    // indent=2) writes these lines, in this order, with no final newline.
    let s = |v: &str| serde_json::to_string(v).expect("json string");
    let text = format!(
        "{{\n  \"sessionId\": {},\n  \"shellPid\": {shell_pid},\n  \"purpose\": {},\n  \"createdManually\": true,\n  \"startTime\": \"2026-01-01T09:30:00.123456\",\n  \"workingDirectory\": {},\n  \"gitBranch\": {},\n  \"worktreeName\": {},\n  \"status\": \"active\"\n}}",
        s(&session_id),
        s(purpose),
        s(&wt.display().to_string()),
        s(&format!("session/{session_id}")),
        s(&worktree_name),
    );
    std::fs::write(wt.join("sessions").join(&session_id).join("metadata.json"), text).expect("metadata");
    wt
}

/// The commits the tests make are dated 2026-01-01T00:00:00Z (GIT_COMMITTER_DATE); "now"
/// three hours later keeps every age in a snapshot the same from run to run.
const NOW: &str = "2026-01-01T03:00:00Z";

/// Run flowloom with "now" fixed at [`NOW`].
fn status(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    run(env.flowloom().env("FLOWLOOM_NOW", NOW).args(args))
}

#[test]
fn status_shows_every_state_and_counts_like_git() {
    let env = TestEnv::new();
    env.manifest(
        "[sessions.auth]\nbase = \"develop\"\n[sessions.docs]\n[sessions.gone]\n[sessions.meta]\n[sessions.perf]\n",
    );
    env.apply();
    every_state(&env);
    env.manifest(
        "[sessions.auth]\nbase = \"develop\"\n[sessions.docs]\n[sessions.later]\n[sessions.meta]\n[sessions.perf]\n",
    );

    let before = env.git(&["for-each-ref"]);
    let (code, out, err) = status(&env, &["status", "--wide"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "");
    insta::assert_snapshot!(out, @"
      SESSION     PURPOSE  BRANCH              STATE      DIRT  BASE   AGE  LAST COMMIT   PATH
    @ (main)               main                dirty      ?2            3h  main moves    .
      4242-spike  spike    session/4242-spike  unmanaged  ?1    +0 -1   3h  tools         sessions/shell-instance-4242
      auth                 session/auth        locked           +0 -0   3h  develop work  sessions/shell-instance-auth
      docs                 session/docs        ok               +1 -1   3h  docs work     sessions/shell-instance-docs
      gone                 session/gone        orphan           +0 -1   3h  tools         sessions/shell-instance-gone
      later                session/later       missing          -        -                sessions/shell-instance-later
      meta                 session/meta        drifted          +0 -1   3h  tools         sessions/shell-instance-meta
      perf                 session/perf        dirty      !1    +0 -1   3h  tools         sessions/shell-instance-perf
    ");
    assert_eq!(env.git(&["for-each-ref"]), before, "status changes nothing");

    // --json: the same rows, and the counts are git's.
    let (code, out, err) = status(&env, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["format_version"], 1);
    let sessions = json["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 7);
    for s in sessions {
        let (branch, base) = (s["branch"].as_str().expect("branch"), s["base"].as_str().expect("base"));
        if env
            .git_output(&env.repo, &["rev-parse", "--verify", "-q", branch])
            .status
            .success()
        {
            let count = |range: String| {
                env.git(&["rev-list", "--count", &range])
                    .trim()
                    .parse::<u64>()
                    .expect("n")
            };
            assert_eq!(s["ahead"].as_u64(), Some(count(format!("{base}..{branch}"))), "{s}");
            assert_eq!(s["behind"].as_u64(), Some(count(format!("{branch}..{base}"))), "{s}");
            let last = &s["last_commit"];
            assert_eq!(
                last["subject"].as_str(),
                Some(env.git(&["log", "-1", "--format=%s", branch]).trim_end()),
                "{s}"
            );
            assert_eq!(
                last["id"].as_str(),
                Some(env.git(&["rev-parse", branch]).trim_end()),
                "{s}"
            );
            assert_eq!(last["time"], "2026-01-01T00:00:00Z", "{s}");
            assert_eq!(s["age_seconds"], 3 * 3600, "{s}");
            assert!(s["upstream"].is_null(), "no remote: {s}");
        } else {
            assert!(s["ahead"].is_null() && s["behind"].is_null(), "{s}");
        }
        let dirty = match s["path"].as_str() {
            Some(p) if env.path(p).exists() => Some(!env.git_in(&env.path(p), &["status", "--porcelain"]).is_empty()),
            _ => None,
        };
        assert_eq!(s["dirty"].as_bool(), dirty, "{s}");
    }
    insta::assert_snapshot!(serde_json::to_string(&sessions[2]).expect("row"), @r#"{"session":"docs","layer":"shared","purpose":"docs","branch":"session/docs","path":"sessions/shell-instance-docs","state":"ok","current":false,"base":"main","ahead":1,"behind":1,"upstream":null,"last_commit":{"id":"933618efbdcf8a6c20fa41de51c245d302486d81","subject":"docs work","time":"2026-01-01T00:00:00Z"},"age_seconds":10800,"dirty":false,"dirt":{"staged":0,"modified":0,"untracked":0},"locked":false,"setup":"ok","in_use":[]}"#);
}

/// After an apply of auth, docs, gone, meta and perf: a session made by hand, main one
/// commit ahead, docs with a commit of its own, perf changed, auth locked, meta without
/// its metadata.
fn every_state(env: &TestEnv) {
    manual_session(env, 4242, "spike");
    // main moves on: every session based on it is one behind.
    env.write("MAIN.md", "main\n");
    env.git(&["add", "MAIN.md"]);
    env.git(&["commit", "-q", "-m", "main moves"]);
    let docs = env.path("sessions/shell-instance-docs");
    std::fs::write(docs.join("docs.md"), "docs\n").expect("write");
    env.git_in(&docs, &["add", "docs.md"]);
    env.git_in(&docs, &["commit", "-q", "-m", "docs work"]);
    env.write("sessions/shell-instance-perf/README.md", "changed\n");
    env.git(&[
        "worktree",
        "lock",
        "--reason",
        "on a USB disk",
        "sessions/shell-instance-auth",
    ]);
    std::fs::remove_file(env.path("sessions/shell-instance-meta/sessions/meta/metadata.json")).expect("rm");
}

#[test]
fn status_without_sessions_says_so() {
    let env = TestEnv::new();
    env.manifest("# nothing yet\n");
    let (code, out, _) = env.run(&["status"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!(out, @"
      SESSION  BRANCH  STATE  DIRT   AGE  LAST COMMIT  PATH
    @ (main)   main    dirty  ?1    11mo  tools        .
    No sessions: make one with `flowloom new ID`, or declare some in flowloom.toml.
    ");
    let (_, out, _) = env.run(&["status", "--json"]);
    insta::assert_snapshot!(out, @r#"
    {
      "format_version": 1,
      "main": {
        "branch": "main",
        "path": ".",
        "state": "dirty",
        "current": true,
        "dirt": {
          "staged": 0,
          "modified": 0,
          "untracked": 1
        },
        "upstream": null,
        "last_commit": {
          "id": "a84cda599ccfaf2e3327b9633ba0a0610a9eebcd",
          "subject": "tools",
          "time": "2026-01-01T00:00:00Z"
        }
      },
      "sessions": [],
      "overlaps": []
    }
    "#);
}

const COMMENTED: &str = r#"# Our team's sessions. Keep this file tidy!
version = 1

[defaults]
base = "main"   # where new sessions start

# Performance work, owned by the platform team.
[sessions.perf]
purpose = "Speed"  # keep it short
# (more sessions below)
"#;

#[test]
fn a_manual_session_is_unmanaged_survives_apply_and_is_imported() {
    let env = TestEnv::new();
    env.manifest(COMMENTED);
    let wt = manual_session(&env, 4242, "spike");
    let metadata_path = wt.join("sessions/4242-spike/metadata.json");
    let metadata = std::fs::read(&metadata_path).expect("metadata");

    let (code, out, _) = env.run(&["plan", "--json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    insta::assert_snapshot!(json["unmanaged"].to_string(), @r#"[{"session":"4242-spike","branch":"session/4242-spike","path":"sessions/shell-instance-4242"}]"#);

    env.apply();
    assert!(
        env.worktrees()
            .contains(&("sessions/shell-instance-4242".into(), "session/4242-spike".into()))
    );
    assert_eq!(
        std::fs::read(&metadata_path).expect("metadata"),
        metadata,
        "apply leaves it alone"
    );

    // Without --yes on a pipe: shows the diff, refuses, writes nothing.
    let (code, _, err) = env.run(&["import", "--shared"]);
    assert_eq!(code, 1);
    assert!(err.contains("standard input is not a terminal"), "{err}");
    assert_eq!(
        std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest"),
        COMMENTED
    );

    let (code, out, err) = env.run(&["import", "--yes", "--shared"]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(out, @r#"
    --- a/flowloom.toml
    +++ b/flowloom.toml
    @@ -9,2 +9,6 @@
     purpose = "Speed"  # keep it short
     # (more sessions below)
    +
    +[sessions.4242-spike]
    +purpose = "spike"
    +worktree = "shell-instance-4242"
    "#);
    insta::assert_snapshot!(err, @"imported 1 session: 4242-spike");
    let manifest = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    assert!(
        manifest.starts_with(COMMENTED),
        "every comment and line kept:\n{manifest}"
    );
    insta::assert_snapshot!(manifest, @r#"
    # Our team's sessions. Keep this file tidy!
    version = 1

    [defaults]
    base = "main"   # where new sessions start

    # Performance work, owned by the platform team.
    [sessions.perf]
    purpose = "Speed"  # keep it short
    # (more sessions below)

    [sessions.4242-spike]
    purpose = "spike"
    worktree = "shell-instance-4242"
    "#);

    settled_after_import(&env, &wt, &metadata_path, &metadata);

    // It is flowloom's own now: undeclared, it is an orphan (removed only when nothing is lost).
    env.manifest(COMMENTED);
    let (_, out, _) = env.run(&["plan", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["changes"][0]["session"], "4242-spike");
    assert_eq!(json["changes"][0]["action"], "remove");
    env.fsck();
}

/// After an import: the next plan shows no change, nothing touched the session, status shows
/// it ok, and a second import finds nothing.
fn settled_after_import(env: &TestEnv, wt: &std::path::Path, metadata_path: &std::path::Path, metadata: &[u8]) {
    // The next plan shows no change, and nothing touched the session.
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
    insta::assert_snapshot!(out, @"No changes. The sessions match flowloom.toml.");
    assert_eq!(
        std::fs::read(metadata_path).expect("metadata"),
        metadata,
        "byte-identical"
    );
    assert_eq!(
        env.git_in(wt, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "session/4242-spike\n"
    );
    let (_, out, _) = env.run(&["status"]);
    assert!(
        out.lines().any(|l| l.starts_with("  4242-spike") && l.contains(" ok ")),
        "{out}"
    );
    let (code, _, err) = env.run(&["import", "--yes", "--shared"]);
    assert_eq!(code, 0);
    assert_eq!(
        err,
        "Nothing to import: no unmanaged session with a worktree can be adopted.\n"
    );
}

#[test]
fn import_writes_only_the_keys_the_templates_do_not_give() {
    let env = TestEnv::new();
    env.manifest("[defaults]\nbranch = \"work/{id}\"\n");
    hand_made_worktrees(&env);
    let (code, out, err) = env.run(&["import", "--yes", "--shared"]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(out, @r#"
    --- a/flowloom.toml
    +++ b/flowloom.toml
    @@ -1,2 +1,9 @@
     [defaults]
     branch = "work/{id}"
    +
    +[sessions.bare]
    +branch = "feature/x"
    +
    +[sessions.moved]
    +
    +[sessions.plain]
    "#);
    insta::assert_snapshot!(err, @"
    warning: skipped sessions/shell-instance-detached: its HEAD is detached; switch it to a branch first
    note: `bare`: it has no sessions/bare/metadata.json: the next apply writes one
    note: `bare`: the next apply creates sessions/bare/artifacts/
    note: `moved`: its metadata differs in workingDirectory: the next apply rewrites it
    note: `moved`: the next apply creates sessions/moved/artifacts/
    imported 3 sessions: bare, moved, plain
    ");
    let (code, out, _) = env.run(&["plan"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!(mask(&env, &out), @r#"
      ~ bare   feature/x   sessions/shell-instance-bare   write metadata, create artifacts folder
      ~ moved  work/moved  sessions/shell-instance-moved  update metadata, create artifacts folder
          --- a/sessions/moved/metadata.json
          +++ b/sessions/moved/metadata.json
          @@ -5,3 +5,3 @@
             "createdManually": true,
          -  "workingDirectory": "/old/place",
          +  "workingDirectory": "[TMP]/repo/sessions/shell-instance-moved",
             "gitBranch": "work/moved",

    Unmanaged sessions (in scope, neither declared nor created by flowloom; left alone, adopt with `flowloom import`):
      ? detached  (detached)  sessions/shell-instance-detached

    Plan: 0 to create, 2 to update, 0 to remove, 0 blocked.
    "#);
}

/// Four worktrees made by hand under `[defaults] branch = "work/{id}"`: one with default
/// names and its metadata, one on another branch without metadata, one moved since its
/// metadata was written, one detached.
fn hand_made_worktrees(env: &TestEnv) {
    // Default names throughout, metadata purpose equal to the id: an empty table.
    env.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "work/plain",
        "sessions/shell-instance-plain",
    ]);
    let plain = env
        .path("sessions/shell-instance-plain")
        .canonicalize()
        .expect("canonical");
    let fields = |id: &str, dir: &std::path::Path, branch: &str| {
        let json = serde_json::json!({
            "sessionId": id, "shellPid": 1, "purpose": id, "createdManually": true,
            "workingDirectory": dir, "gitBranch": branch, "worktreeName": format!("shell-instance-{id}"),
        });
        serde_json::to_string_pretty(&json).expect("json")
    };
    env.write(
        "sessions/shell-instance-plain/sessions/plain/metadata.json",
        &fields("plain", &plain, "work/plain"),
    );
    std::fs::create_dir_all(plain.join("sessions/plain/artifacts")).expect("mkdir");
    // Made by hand without metadata: its id comes from the folder name, and apply will
    // write the metadata and artifacts folder it lacks.
    env.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "feature/x",
        "sessions/shell-instance-bare",
    ]);
    // Moved after it was made: its metadata names the old folder.
    env.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "work/moved",
        "sessions/shell-instance-moved",
    ]);
    env.write(
        "sessions/shell-instance-moved/sessions/moved/metadata.json",
        &fields("moved", std::path::Path::new("/old/place"), "work/moved"),
    );
    // Detached: cannot be declared.
    env.git(&["worktree", "add", "-q", "--detach", "sessions/shell-instance-detached"]);
}

#[test]
fn the_default_base_is_the_remotes_default_branch_and_init_writes_it() {
    // A clone of a repository whose default branch is `trunk`.
    let origin = TestEnv::new();
    origin.git(&["branch", "-m", "main", "trunk"]);
    let env = TestEnv::empty();
    env.git_in(
        env.tmp.path(),
        &["clone", "-q", &origin.repo.display().to_string(), "clone"],
    );
    let clone = env.tmp.path().join("clone");
    let (code, _, err) = run(env.flowloom_in(&clone).args(["init"]));
    assert_eq!(code, 0, "{err}");
    let manifest = std::fs::read_to_string(clone.join("flowloom.toml")).expect("manifest");
    assert!(manifest.contains("\nbase       = \"trunk\""), "{manifest}");
    // Without `base` in the file, sessions start at the remote's default branch too.
    std::fs::write(clone.join("flowloom.toml"), "[sessions.a]\n").expect("write");
    let (code, out, err) = run(env.flowloom_in(&clone).args(["plan"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("new branch from trunk"), "{out}");
}
