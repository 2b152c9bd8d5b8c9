//! SPEC §11.1: a manifest file that cannot be parsed (a merge conflict, say) in either
//! layer: `path`, `run`, `cd` and `status` answer from the ownership record with a warning
//! naming the broken file; `plan`, `apply`, `new` and `rm` refuse and change nothing.

use crate::common::TestEnv;

const CONFLICT: &str = "<<<<<<< HEAD\n[sessions.a]\n=======\n[sessions.b]\n>>>>>>> theirs\n";

fn check_fallback(env: &TestEnv, broken: &str, worktree: &str) {
    let (code, out, err) = env.run(&["path", "mine"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out.trim(), worktree);
    assert!(err.contains(broken), "the warning names {broken}: {err}");
    let (code, out, err) = env.run(&["run", "mine", "--", "sh", "-c", "pwd; echo $FLOWLOOM_SESSION"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{worktree}\nmine\n"));
    let (code, out, err) = env.run(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"session\": \"mine\""), "{out}");
    assert!(err.contains(broken), "{err}");
    let before = env.worktrees();
    for command in [
        &["plan"][..],
        &["apply", "--yes"],
        &["new", "other"],
        &["rm", "mine", "--yes"],
    ] {
        let (code, _, err) = env.run(command);
        assert_eq!(code, 1, "{command:?} refuses: {err}");
    }
    assert_eq!(env.worktrees(), before, "nothing changed");
}

#[test]
fn a_conflicted_committed_manifest_leaves_sessions_usable() {
    let env = TestEnv::new();
    env.manifest("");
    let (code, out, err) = env.run(&["new", "mine"]);
    assert_eq!(code, 0, "{err}");
    let worktree = out.trim().to_owned();
    env.manifest(CONFLICT);
    check_fallback(&env, "flowloom.toml", &worktree);
}

#[test]
fn a_conflicted_local_layer_leaves_sessions_usable() {
    let env = TestEnv::new();
    env.manifest("[defaults]\nroot = \"../{repo}.sessions\"\n");
    let (code, out, err) = env.run(&["new", "mine"]);
    assert_eq!(code, 0, "{err}");
    let worktree = out.trim().to_owned();
    env.write("flowloom.local.toml", CONFLICT);
    check_fallback(&env, "flowloom.local.toml", &worktree);
}
