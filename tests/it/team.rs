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
    flowloom::usage

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
    flowloom::usage

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
