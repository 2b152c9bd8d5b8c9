//! SPEC §11.3 `teardown`: the trusted commands run in a session, with its environment,
//! right before its worktree is removed — by `rm`, by `merge` and by `apply` removing an
//! orphan. A failing one blocks the removal (the session stays as it was); `--force` runs
//! it and goes on; an untrusted one never runs and blocks; the plan shows what will run.

use std::path::PathBuf;

use crate::common::{TestEnv, run};

/// A repository whose manifest is `text` (committed), trusted, applied; and a folder
/// outside it where teardown commands write what they see.
fn with_manifest(text: &str) -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    let out = env.tmp.path().join("out");
    std::fs::create_dir_all(&out).expect("out");
    env.manifest(&text.replace("OUT", &out.display().to_string()));
    env.commit("manifest");
    let (code, _, err) = env.run(&["trust"]);
    assert_eq!(code, 0, "{err}");
    env.apply();
    (env, out)
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What a session's teardown records: the worktree's files (so it ran while they were
/// there), the environment, the repository git finds from there.
const RECORD: &str = "ls -A > OUT/$FLOWLOOM_SESSION.ls; env > OUT/$FLOWLOOM_SESSION.env; \
                      git rev-parse --show-toplevel > OUT/$FLOWLOOM_SESSION.top";

fn recording(extra: &str) -> String {
    format!(
        "[defaults]\nbase = \"main\"\nports = [\"web\"]\nenv = {{ DB = \"db_{{id}}_{{port.web}}\" }}\n\
         teardown = [\"{RECORD}\"]\n{extra}\n[sessions.a]\n[sessions.b]\n"
    )
}

fn port_of(env: &TestEnv, id: &str) -> String {
    let meta = read(env.path(&format!("sessions/shell-instance-{id}/sessions/{id}/metadata.json")));
    let json: serde_json::Value = serde_json::from_str(&meta).expect("metadata");
    json["ports"]["web"].to_string()
}

/// The teardown saw the worktree whole, ran in it with the session's variables, and no
/// caller's `GIT_DIR` reached it.
fn assert_recorded(env: &TestEnv, out: &std::path::Path, id: &str, port: &str) {
    let wt = env.path(&format!("sessions/shell-instance-{id}"));
    let listing = read(out.join(format!("{id}.ls")));
    for name in ["README.md", "src", "bin", "sessions", ".git"] {
        assert!(listing.lines().any(|l| l == name), "{name} in {listing}");
    }
    let vars = read(out.join(format!("{id}.env")));
    let has = |line: String| assert!(vars.lines().any(|l| l == line), "{line} in:\n{vars}");
    has(format!("FLOWLOOM_SESSION={id}"));
    has(format!("FLOWLOOM_BRANCH=session/{id}"));
    has(format!("FLOWLOOM_WORKTREE={}", wt.display()));
    has(format!("FLOWLOOM_PORT_WEB={port}"));
    has(format!("DB=db_{id}_{port}"));
    assert!(!vars.lines().any(|l| l.starts_with("GIT_DIR=")), "{vars}");
    assert!(!vars.lines().any(|l| l.starts_with("GIT_WORK_TREE=")), "{vars}");
    assert_eq!(read(out.join(format!("{id}.top"))).trim(), wt.display().to_string());
}

#[test]
fn rm_runs_the_teardown_in_the_worktree_before_it_goes_with_the_session_environment() {
    let (env, out) = with_manifest(&recording(""));
    let port = port_of(&env, "a");
    let wt = env.path("sessions/shell-instance-a");
    // A caller's GIT_DIR (a git alias, a hook) is honoured by flowloom, never passed on.
    let (code, o, err) = run(env
        .flowloom()
        .env("GIT_DIR", env.path(".git"))
        .env("GIT_WORK_TREE", &env.repo)
        .args(["rm", "--yes", "a"]));
    assert_eq!(code, 0, "{o}\n{err}");
    assert!(err.contains("teardown of `a`: $ ls -A"), "{err}");
    assert_recorded(&env, &out, "a", &port);
    assert!(!wt.exists());
    assert!(!env.branches().contains(&"session/a".to_owned()));
    assert!(!out.join("b.ls").exists(), "only the removed session's teardown ran");
    env.fsck();
}

#[test]
fn merge_runs_the_teardown_before_the_removal_it_ends_with() {
    let (env, out) = with_manifest(&recording(""));
    let port = port_of(&env, "a");
    let wt = env.path("sessions/shell-instance-a");
    env.commit_file(&wt, "a.txt", "a\n", "add a");
    let (code, o, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 0, "{o}\n{err}");
    assert!(o.contains("runs teardown: ls -A"), "the merge's plan shows it: {o}");
    assert_recorded(&env, &out, "a", &port);
    assert!(read(out.join("a.ls")).lines().any(|l| l == "a.txt"));
    assert!(!wt.exists());
    assert_eq!(env.git(&["show", "main:a.txt"]), "a\n");
    env.fsck();
}

#[test]
fn apply_runs_the_defaults_teardown_of_an_orphan_and_the_plan_shows_it() {
    let (env, out) = with_manifest(&recording(""));
    let port = port_of(&env, "b");
    let manifest = read(env.path("flowloom.toml")).replace("[sessions.b]\n", "");
    env.manifest(&manifest);
    let (code, text, err) = env.run(&["plan"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("runs teardown: ls -A"), "{text}");
    let (code, json, err) = env.run(&["plan", "--json"]);
    assert_eq!(code, 0, "{err}");
    let plan: serde_json::Value = serde_json::from_str(&json).expect("json");
    let change = &plan["changes"][0];
    assert_eq!(change["action"], "remove");
    assert_eq!(change["session"], "b");
    assert_eq!(
        change["teardown"][0].as_str().expect("teardown"),
        RECORD.replace("OUT", &out.display().to_string())
    );
    assert!(!out.join("b.ls").exists(), "planning runs nothing");
    // Its output goes to standard error: standard output stays one JSON document.
    let (code, json, err) = env.run(&["apply", "--yes", "--json"]);
    assert_eq!(code, 0, "{json}\n{err}");
    let done: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(done["applied"], true);
    assert_recorded(&env, &out, "b", &port);
    assert!(!env.path("sessions/shell-instance-b").exists());
    assert!(!out.join("a.ls").exists());
    env.fsck();
}

#[test]
fn a_failing_teardown_blocks_the_removal_with_its_output_and_leaves_everything() {
    let (env, out) = with_manifest(
        "[defaults]\nbase = \"main\"\n[sessions.a]\nteardown = [\"echo boom-output; exit 3\", \"touch OUT/second\"]\n",
    );
    let wt = env.path("sessions/shell-instance-a");
    let manifest = read(env.path("flowloom.toml"));
    let record = read(env.path(".git/flowloom/owned.json"));
    let (code, o, err) = env.run(&["rm", "--yes", "a"]);
    assert_eq!(code, 1, "{o}\n{err}");
    assert!(err.contains("boom-output"), "its output is shown: {err}");
    assert!(
        err.contains("teardown command `echo boom-output; exit 3` failed"),
        "{err}"
    );
    assert!(err.contains("exit status: 3"), "{err}");
    assert!(!out.join("second").exists(), "the rest did not run");
    assert!(wt.join("README.md").exists());
    assert!(env.branches().contains(&"session/a".to_owned()));
    assert_eq!(env.worktrees().len(), 1);
    assert_eq!(read(env.path("flowloom.toml")), manifest, "still declared");
    assert_eq!(read(env.path(".git/flowloom/owned.json")), record, "still recorded");
    let (code, o, err) = env.run(&["plan"]);
    assert_eq!(code, 0, "{err}");
    assert!(o.contains("No changes"), "{o}");
    // --force runs it (every command) and goes on.
    let (code, o, err) = env.run(&["rm", "--yes", "--force", "a"]);
    assert_eq!(code, 0, "{o}\n{err}");
    assert!(
        err.contains("boom-output") && err.contains("the removal goes on"),
        "{err}"
    );
    assert!(out.join("second").exists());
    assert!(!wt.exists());
    env.fsck();
}

#[test]
fn a_failing_teardown_of_an_orphan_blocks_apply_and_stays_planned() {
    let (env, _out) = with_manifest("[defaults]\nbase = \"main\"\nteardown = [\"kill -TERM $$\"]\n[sessions.a]\n");
    env.manifest("[defaults]\nbase = \"main\"\nteardown = [\"kill -TERM $$\"]\n");
    let (code, o, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{o}\n{err}");
    assert!(err.contains("signal: 15"), "a signal is a failure too: {err}");
    assert!(env.path("sessions/shell-instance-a/README.md").exists());
    let (_, o, _) = env.run(&["plan"]);
    assert!(o.contains("runs teardown: kill -TERM $$"), "{o}");
}

#[test]
fn a_kill_during_teardown_converges() {
    let (env, out) = with_manifest(
        "[defaults]\nbase = \"main\"\n\
         teardown = [\"if [ ! -e OUT/killed ]; then touch OUT/killed; kill -9 $PPID; exit 1; fi; echo ran >> OUT/ran\"]\n\
         [sessions.a]\n",
    );
    env.manifest(&read(env.path("flowloom.toml")).replace("[sessions.a]\n", ""));
    let (code, _, _) = env.run(&["apply", "--yes"]);
    assert_ne!(code, 0, "killed");
    assert!(out.join("killed").exists());
    assert!(env.path("sessions/shell-instance-a/README.md").exists());
    let (code, o, err) = env.run(&["plan"]);
    assert_eq!(code, 0, "{err}");
    assert!(o.contains("remove worktree") && o.contains("runs teardown:"), "{o}");
    let (code, o, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{o}\n{err}");
    assert_eq!(read(out.join("ran")), "ran\n");
    assert!(!env.path("sessions/shell-instance-a").exists());
    assert!(env.worktrees().is_empty());
    let (_, o, _) = env.run(&["plan"]);
    assert!(o.contains("No changes"), "{o}");
    env.fsck();
}

#[test]
fn an_untrusted_teardown_never_runs_and_blocks_the_removal_even_forced() {
    let (env, out) = with_manifest("[defaults]\nbase = \"main\"\n[sessions.a]\nteardown = [\"touch OUT/one\"]\n");
    // Changed since it was trusted: a different script.
    let changed = read(env.path("flowloom.toml")).replace("/one", "/two");
    env.manifest(&changed);
    let manifest = read(env.path("flowloom.toml"));
    for args in [&["rm", "--yes", "a"][..], &["rm", "--yes", "--force", "a"][..]] {
        let (code, o, err) = env.run(args);
        assert_eq!(code, 1, "{o}\n{err}");
        assert!(err.contains("teardown command is not trusted"), "{err}");
        assert!(err.contains("flowloom trust"), "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
        assert!(!out.join("two").exists());
        assert!(env.path("sessions/shell-instance-a").exists());
        assert_eq!(read(env.path("flowloom.toml")), manifest);
    }
    let (code, _, err) = env.run(&["trust"]);
    assert_eq!(code, 0, "{err}");
    let (code, o, err) = env.run(&["rm", "--yes", "a"]);
    assert_eq!(code, 0, "{o}\n{err}");
    assert!(out.join("two").exists());
    assert!(!env.path("sessions/shell-instance-a").exists());
}

#[test]
fn a_session_without_teardown_is_removed_as_before() {
    let (env, out) =
        with_manifest("[defaults]\nbase = \"main\"\n[sessions.a]\nteardown = [\"touch OUT/a\"]\n[sessions.b]\n");
    let (code, json, err) = env.run(&["plan", "--json", "--target", "b"]);
    assert_eq!(code, 0, "{err}");
    assert!(!json.contains("teardown"), "{json}");
    let (code, o, err) = env.run(&["rm", "--yes", "b"]);
    assert_eq!(code, 0, "{o}\n{err}");
    assert!(!err.contains("teardown"), "{err}");
    assert!(!out.join("a").exists());
    assert!(!env.path("sessions/shell-instance-b").exists());
    assert!(env.path("sessions/shell-instance-a").exists());
}
