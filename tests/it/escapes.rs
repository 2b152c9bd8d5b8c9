//! Escapes and wrong targets (SPEC §8, §10, §11.3, §11.4): git inside a session works on the
//! session whatever the caller's `GIT_DIR`; every command that uses a session's path checks
//! the root as `plan` does; a committed `root` stays beside the repository; manifest text
//! reaches the terminal escaped; ports are all-or-nothing and bounded; copies keep holes.


use crate::common::TestEnv;

/// The caller's git variables, all pointing at the main repository (as in a hook or an
/// editor started by git).
fn callers_git(env: &TestEnv, cmd: &mut std::process::Command) {
    let git_dir = env.path(".git");
    cmd.env("GIT_DIR", &git_dir)
        .env("GIT_WORK_TREE", &env.repo)
        .env("GIT_INDEX_FILE", git_dir.join("index"))
        .env("GIT_COMMON_DIR", &git_dir)
        .env("GIT_OBJECT_DIRECTORY", git_dir.join("objects"))
        .env("GIT_PREFIX", "src/");
}

#[test]
fn git_in_run_setup_and_hooks_works_on_the_session_not_the_callers_repository() {
    let env = TestEnv::new();
    // The post-checkout hook and the setup command each write down where git sees them.
    let hook = env.path(".git/hooks/post-checkout");
    std::fs::write(
        &hook,
        "#!/bin/sh\ngit rev-parse --absolute-git-dir --show-toplevel > hook-saw.txt\n",
    )
    .expect("hook");
    crate::common::set_executable(&hook);
    env.manifest(
        "[defaults]\nsetup = [\"git rev-parse --absolute-git-dir --show-toplevel > setup-saw.txt\"]\n[sessions.a]\n",
    );
    let (code, _, err) = env.run(&["trust"]);
    assert_eq!(code, 0, "{err}");
    let main_before = env.git(&["rev-parse", "HEAD"]);
    let index_before = std::fs::read(env.path(".git/index")).expect("index");

    let mut apply = env.flowloom();
    apply.args(["apply", "--yes"]);
    callers_git(&env, &mut apply);
    let (code, out, err) = crate::common::run(&mut apply);
    assert_eq!(code, 0, "{out}\n{err}");
    let wt = env.path("sessions/shell-instance-a");
    let real_wt = wt.canonicalize().expect("canonical");
    let registration = env.path(".git/worktrees/shell-instance-a").canonicalize().expect("reg");
    let expected = format!("{}\n{}\n", registration.display(), real_wt.display());
    for file in ["hook-saw.txt", "setup-saw.txt"] {
        assert_eq!(std::fs::read_to_string(wt.join(file)).expect(file), expected, "{file}");
        std::fs::remove_file(wt.join(file)).expect("rm");
    }

    // An agent's commit through `flowloom run` lands on the session's branch.
    let mut run = env.flowloom();
    run.args([
        "run",
        "a",
        "--",
        "sh",
        "-c",
        "echo work > agent.txt && git add agent.txt && git commit -q -m agent-work",
    ]);
    callers_git(&env, &mut run);
    let (code, out, err) = crate::common::run(&mut run);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(env.git(&["log", "-1", "--format=%s", "session/a"]).trim(), "agent-work");
    assert_eq!(env.git(&["rev-parse", "HEAD"]), main_before, "main moved");
    assert_eq!(env.git(&["log", "-1", "--format=%s", "main"]).trim(), "tools");
    assert_eq!(std::fs::read(env.path(".git/index")).expect("index"), index_before);
    assert!(!env.git(&["ls-files"]).contains("agent.txt"));
    assert_eq!(env.git_in(&wt, &["status", "--porcelain"]), "");
    env.fsck();
}
