//! SPEC §11.2, first use: `run ID CMD` without `--`, hints for a mistaken flag and for the
//! command names of other tools, no library's raw error text, `init`'s root beside the
//! repository.

use crate::common::TestEnv;

#[test]
fn run_takes_the_command_without_double_dash() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    let (code, out, err) = env.run(&["run", "a", "ls", "-a"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l == "README.md"), "{out}");
    let (code, out, _) = env.run(&["run", "a", "--", "sh", "-c", "echo -- $0", "x"]);
    assert_eq!(code, 0);
    assert_eq!(out, "-- x\n");
    let (code, _, err) = env.run(&["run", "--bogus", "a", "ls"]);
    assert_eq!(code, 1);
    assert!(err.contains("flowloom run ID -- CMD"), "{err}");
}

#[test]
fn familiar_command_names_get_a_hint() {
    let env = TestEnv::new();
    for (name, hint) in [
        ("switch", "flowloom cd ID"),
        ("create", "flowloom new ID"),
        ("remove", "flowloom rm ID"),
    ] {
        let (code, _, err) = env.run(&[name, "x"]);
        assert_eq!(code, 1);
        assert!(err.contains(hint), "{name}: {err}");
    }
}

#[test]
fn no_raw_library_text_outside_a_repository() {
    let env = TestEnv::empty();
    std::fs::create_dir_all(&env.repo).expect("dir");
    let (code, _, err) = env.run(&["status"]);
    assert_eq!(code, 1);
    assert!(err.contains("is not inside a git repository"), "{err}");
    assert!(!err.contains("NotFound"), "{err}");
}

#[test]
fn init_puts_the_root_beside_the_repository() {
    let env = TestEnv::new();
    let (code, _, err) = env.run(&["init"]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    assert!(text.contains("root       = \"../{repo}.sessions\""), "{text}");
    let (code, out, err) = env.run(&["new", "first"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().ends_with("repo.sessions/shell-instance-first"), "{out}");
    assert_eq!(env.git(&["status", "--porcelain"]), "?? flowloom.toml\n");
}

/// `git worktree list --porcelain` as it is: the oracle of "nothing changed".
fn worktree_list(env: &TestEnv) -> String {
    env.git(&["worktree", "list", "--porcelain"])
}

#[test]
fn every_command_works_without_a_manifest() {
    let env = TestEnv::new();
    let (code, out, err) = env.run(&["new", "first", "--purpose", "try it"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let path = std::path::PathBuf::from(out.trim());
    assert!(path.ends_with("repo.sessions/shell-instance-first"), "{out}");
    assert!(!env.path("flowloom.toml").exists(), "the committed file is not made");
    let local = std::fs::read_to_string(env.path("flowloom.local.toml")).expect("local layer");
    assert!(
        local.contains("[defaults]\nroot = \"../{repo}.sessions\"\n"),
        "the root is recorded: {local}"
    );
    assert!(local.contains("[sessions.first]\npurpose = \"try it\""), "{local}");
    // As git sees it: a worktree on a new branch from the detected base, nothing to commit.
    assert!(
        worktree_list(&env).contains("branch refs/heads/session/first"),
        "{}",
        worktree_list(&env)
    );
    assert_eq!(
        env.git_in(&path, &["rev-parse", "HEAD"]),
        env.git(&["rev-parse", "main"])
    );
    assert_eq!(env.git(&["status", "--porcelain", "--untracked-files=all"]), "");
    // The daily commands answer from the local layer.
    for args in [
        &["status"][..],
        &["list"],
        &["path", "first"],
        &["run", "first", "--", "pwd"],
        &["validate"],
    ] {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 0, "{args:?}: {out}\n{err}");
        assert!(
            out.contains("first") || err.contains("flowloom.local.toml"),
            "{args:?}: {out}\n{err}"
        );
    }
    let (code, out, err) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "no changes: {out}\n{err}");
    assert!(err.contains("no flowloom.toml: using the defaults"), "{err}");
    // Sharing needs the committed file: refused, nothing written.
    for args in [&["share", "first"][..], &["new", "--shared", "team"]] {
        let (code, _, err) = env.run(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("run `flowloom init` first"), "{args:?}: {err}");
        assert!(!env.path("flowloom.toml").exists());
        assert_eq!(
            std::fs::read_to_string(env.path("flowloom.local.toml")).expect("local"),
            local
        );
    }
    // A second session, merged; the first removed.
    let (code, out, err) = env.run(&["new", "second"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let second = std::path::PathBuf::from(out.trim());
    env.commit_file(&second, "NEW.md", "new\n", "second's work");
    let (code, out, err) = env.run(&["merge", "second", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(env.git(&["show", "main:NEW.md"]), "new\n");
    let (code, out, err) = env.run(&["rm", "first", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!path.exists() && !second.exists());
    assert!(
        !env.branches().iter().any(|b| b.starts_with("session/")),
        "{:?}",
        env.branches()
    );
    env.fsck();
}

#[test]
fn a_manifest_added_later_moves_no_session() {
    let env = TestEnv::new();
    let (code, out, err) = env.run(&["new", "first"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let first = out.trim().to_owned();
    // A teammate's manifest with another root: the recorded one stays this clone's.
    env.manifest("[defaults]\nroot = \"sessions\"\n[sessions.team]\n");
    let (code, out, err) = env.run(&["plan", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
    let changes = doc["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "only the team's session is made: {out}");
    assert_eq!(changes[0]["session"], "team");
    assert!(
        changes[0]["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("../repo.sessions/")),
        "{out}"
    );
    env.apply();
    assert!(
        worktree_list(&env).contains(&format!("worktree {first}\n")),
        "{}",
        worktree_list(&env)
    );
    // `flowloom init` on top of it: nothing to do either.
    std::fs::remove_file(env.path("flowloom.toml")).expect("rm");
    let (code, _, err) = env.run(&["init"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = env.run(&["plan", "--detailed-exitcode", "--target", "first"]);
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn a_named_missing_manifest_is_still_an_error() {
    let env = TestEnv::new();
    for args in [
        &["--manifest", "other.toml", "plan"][..],
        &["--manifest", "other.toml", "new", "x"],
    ] {
        let (code, _, err) = env.run(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("no manifest at"), "{args:?}: {err}");
    }
    assert!(!env.path("flowloom.local.toml").exists());
    assert_eq!(env.worktrees(), Vec::new());
}

/// SPEC §11.1: a flowloom.toml that is gone (an older commit checked out, a stash) removes
/// nothing it declared: the plan keeps those sessions and says why; apply, even forced,
/// leaves them as they are.
#[test]
fn sessions_of_a_missing_manifest_are_retained() {
    let env = TestEnv::new();
    env.manifest("[sessions.team]\n");
    env.commit("sessions");
    env.apply();
    let (code, out, err) = env.run(&["new", "mine"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let mine = std::path::PathBuf::from(out.trim());
    let branches = env.branches();
    // The commit before flowloom.toml, as `git checkout` of an old commit leaves it.
    env.git(&["checkout", "-q", "--detach", "HEAD~1"]);
    assert!(!env.path("flowloom.toml").exists());
    let before = worktree_list(&env);
    assert_eq!(env.worktrees().len(), 2, "{before}");
    let (code, out, err) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "nothing to change: {out}\n{err}");
    assert!(out.contains("team"), "{out}");
    assert!(out.contains("kept while flowloom.toml is missing"), "{out}");
    let (code, out, _) = env.run(&["plan", "--json"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
    let team = &doc["changes"][0];
    assert_eq!(
        (team["session"].as_str(), team["action"].as_str()),
        (Some("team"), Some("blocked")),
        "{out}"
    );
    assert_eq!(
        doc["changes"].as_array().map(Vec::len),
        Some(1),
        "mine stays where it is: {out}"
    );
    for args in [&["apply", "--yes"][..], &["apply", "--yes", "--force"]] {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 1, "{args:?}: kept sessions count as blocked: {out}\n{err}");
        assert_eq!(worktree_list(&env), before, "{args:?}");
        assert_eq!(env.branches(), branches, "{args:?}");
    }
    assert_eq!(env.git(&["for-each-ref", "refs/flowloom/"]), "", "nothing archived");
    let (code, out, err) = env.run(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
    let team = doc["sessions"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["session"] == "team"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(team["state"], "retained", "{out}");
    // The local session works as before; a new one goes where the others are.
    let (code, out, err) = env.run(&["path", "mine"]);
    assert_eq!((code, out.trim()), (0, mine.to_str().unwrap_or_default()), "{err}");
    // Back on the branch, the manifest declares it again: no change.
    env.git(&["checkout", "-q", "main"]);
    let (code, out, err) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // Stashed (uncommitted) the same: kept.
    env.git(&["rm", "-q", "--cached", "flowloom.toml"]);
    env.git(&["commit", "-q", "-m", "untrack"]);
    let before = worktree_list(&env);
    env.git(&["stash", "push", "-q", "-u"]);
    assert!(!env.path("flowloom.toml").exists());
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(worktree_list(&env), before);
    env.git(&["stash", "pop", "-q"]);
    // Named, a session of the missing file is removed as any other.
    std::fs::rename(env.path("flowloom.toml"), env.path("flowloom.toml.away")).expect("rename");
    let (code, out, err) = env.run(&["rm", "team", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!env.branches().contains(&"session/team".to_owned()));
    env.fsck();
}
