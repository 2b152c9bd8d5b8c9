//! SPEC §11.2: `flowloom new` as `git worktree add` would: a branch name as the id,
//! `--branch`, existing local and remote branches checked out (and never deleted by
//! flowloom), `--base` resolved as git resolves it.

use std::path::{Path, PathBuf};

use crate::common::TestEnv;

fn new(env: &TestEnv, args: &[&str]) -> PathBuf {
    let mut all = vec!["new"];
    all.extend_from_slice(args);
    let (code, out, err) = env.run(&all);
    assert_eq!(code, 0, "{all:?}: {out}\n{err}");
    PathBuf::from(out.trim())
}

fn head(env: &TestEnv, dir: &Path) -> String {
    env.git_in(dir, &["rev-parse", "--abbrev-ref", "HEAD"])
        .trim()
        .to_owned()
}

fn local(env: &TestEnv) -> String {
    std::fs::read_to_string(env.path("flowloom.local.toml")).unwrap_or_default()
}

/// A clone of `env`'s repository, with `origin` pointing at it.
fn clone(env: &TestEnv) -> TestEnv {
    let other = TestEnv::empty();
    env.git_in(
        other.tmp.path(),
        &["clone", "-q", &env.repo.display().to_string(), "repo"],
    );
    other
}

#[test]
fn a_branch_name_is_an_id_and_a_branch() {
    let env = TestEnv::new();
    env.manifest("");
    let path = new(&env, &["feature/login"]);
    assert!(path.ends_with("shell-instance-feature-login"), "{}", path.display());
    assert_eq!(head(&env, &path), "feature/login");
    assert!(
        local(&env).contains("[sessions.feature-login]\nbranch = \"feature/login\""),
        "{}",
        local(&env)
    );
    // The same branch again is the same session; another branch onto that id is refused.
    new(&env, &["feature/login"]);
    let before = local(&env);
    let (code, _, err) = env.run(&["new", "feature-login", "--branch", "other"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already declared"), "{err}");
    assert_eq!(local(&env), before, "nothing written");
    let (code, _, err) = env.run(&["new", "a b"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("neither a session id nor a branch name"), "{err}");
}

#[test]
fn an_existing_branch_is_checked_out_and_never_deleted() {
    let env = TestEnv::new();
    env.manifest("");
    env.git(&["branch", "mine", "develop"]);
    let tip = env.git(&["rev-parse", "mine"]);
    let path = new(&env, &["work", "--branch", "mine"]);
    assert_eq!(head(&env, &path), "mine");
    assert_eq!(env.git_in(&path, &["rev-parse", "HEAD"]), tip);
    // Removed, even forced: the worktree goes, the branch flowloom did not create stays.
    let (code, out, err) = env.run(&["rm", "work", "--yes", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!path.exists());
    assert!(env.branches().contains(&"mine".to_owned()));
    assert_eq!(env.git(&["rev-parse", "mine"]), tip);
    // Not as an orphan either.
    let path = new(&env, &["work2", "--branch", "mine"]);
    std::fs::write(env.path("flowloom.local.toml"), "").expect("write");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!path.exists());
    assert!(env.branches().contains(&"mine".to_owned()));
    env.fsck();
}

#[test]
fn a_remote_branch_is_tracked_and_a_remote_base_found() {
    let env = TestEnv::new();
    env.git(&["branch", "team/feature", "develop"]);
    let other = clone(&env);
    other.manifest("");
    // Only origin/team/feature exists in the clone.
    let path = new(&other, &["team/feature"]);
    assert_eq!(head(&other, &path), "team/feature");
    assert_eq!(
        other
            .git_in(&path, &["rev-parse", "--abbrev-ref", "@{upstream}"])
            .trim(),
        "origin/team/feature"
    );
    let (code, _, err) = other.run(&["rm", "team-feature", "--yes", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(other.branches().contains(&"team/feature".to_owned()), "never deleted");
    // --base develop: only origin/develop exists in the clone.
    let path = new(&other, &["from-develop", "--base", "develop"]);
    assert_eq!(
        other.git_in(&path, &["rev-parse", "HEAD"]),
        other.git(&["rev-parse", "origin/develop"])
    );
    assert!(local(&other).contains("base = \"origin/develop\""), "{}", local(&other));
    let (code, _, err) = other.run(&["new", "x", "--base", "nowhere"]);
    assert_eq!(code, 1);
    assert!(err.contains("there is no `origin/"), "{err}");
}

#[test]
fn base_head_is_resolved_now() {
    let env = TestEnv::new();
    env.manifest("");
    env.git(&["checkout", "-q", "develop"]);
    let path = new(&env, &["on-head", "--base", "HEAD"]);
    assert!(local(&env).contains("base = \"develop\""), "{}", local(&env));
    assert_eq!(
        env.git_in(&path, &["rev-parse", "HEAD"]),
        env.git(&["rev-parse", "develop"])
    );
    let commit = env.git(&["rev-parse", "main"]);
    env.git(&["checkout", "-q", "--detach", "main"]);
    new(&env, &["detached", "--base", "@"]);
    assert!(
        local(&env).contains(&format!("base = \"{}\"", commit.trim())),
        "{}",
        local(&env)
    );
    assert!(!local(&env).contains("HEAD"));
}

/// `origin/X` names the remote-tracking branch: as `git worktree add --track -b X PATH
/// origin/X`, the session works on local `X` tracking it (never on a local branch called
/// `origin/X`), or on local `X` as it is when that exists; the id is `X`'s.
#[test]
fn a_remote_tracking_name_checks_out_its_local_branch() {
    let env = TestEnv::new();
    for b in ["feat", "feat2", "feat3"] {
        env.git(&["branch", b, "develop"]);
    }
    let other = clone(&env);
    other.manifest("");
    let upstream = |path: &Path| {
        other
            .git_in(path, &["rev-parse", "--abbrev-ref", "@{upstream}"])
            .trim()
            .to_owned()
    };
    let (code, out, err) = other.run(&["new", "work", "--branch", "origin/feat"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("`origin/feat` is a remote-tracking branch"), "{err}");
    let path = PathBuf::from(out.trim());
    assert_eq!(head(&other, &path), "feat");
    assert_eq!(upstream(&path), "origin/feat");
    assert!(
        local(&other).contains("[sessions.work]\nbranch = \"feat\""),
        "{}",
        local(&other)
    );
    // As the id: the session is `feat2`, on local `feat2`.
    let path = new(&other, &["origin/feat2"]);
    assert!(path.ends_with("shell-instance-feat2"), "{}", path.display());
    assert_eq!(head(&other, &path), "feat2");
    assert_eq!(upstream(&path), "origin/feat2");
    assert!(
        local(&other).contains("[sessions.feat2]\nbranch = \"feat2\""),
        "{}",
        local(&other)
    );
    // A local branch of that name exists: it is used as it is.
    other.git(&["branch", "feat3", "main"]);
    let (code, out, err) = other.run(&["new", "origin/feat3"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("the existing local branch `feat3`"), "{err}");
    let path = PathBuf::from(out.trim());
    assert_eq!(head(&other, &path), "feat3");
    assert_eq!(
        other.git_in(&path, &["rev-parse", "HEAD"]),
        other.git(&["rev-parse", "main"])
    );
    assert!(
        !other.branches().iter().any(|b| b.starts_with("origin/")),
        "{:?}",
        other.branches()
    );
    // None of them is flowloom's to delete.
    for id in ["work", "feat2", "feat3"] {
        let (code, _, err) = other.run(&["rm", id, "--yes", "--force"]);
        assert_eq!(code, 0, "{id}: {err}");
    }
    let branches = other.branches();
    for b in ["feat", "feat2", "feat3"] {
        assert!(branches.contains(&b.to_owned()), "{b}: {branches:?}");
    }
    other.fsck();
}
