//! SPEC §11.2 `flowloom merge`: a session lands on its base branch (squash, rebase,
//! fast-forward), the base's worktree ends as `git merge` leaves it, a conflict or a local
//! change in the way writes nothing, then the session is removed with every check.

use std::path::{Path, PathBuf};

use crate::common::{TestEnv, run, set_executable};

/// A repository with session `a` (base `main`) made.
fn with_session(extra: &str) -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    env.manifest(&format!(
        "[defaults]\nbase = \"main\"\n{extra}\n[sessions.a]\npurpose = \"Add the feature\"\n"
    ));
    env.commit("manifest");
    env.apply();
    let wt = env.path("sessions/shell-instance-a");
    (env, wt)
}

fn rev(env: &TestEnv, spec: &str) -> String {
    env.git(&["rev-parse", spec]).trim().to_owned()
}

fn object_count(env: &TestEnv) -> String {
    let out = env.git(&["count-objects", "-v"]);
    out.lines()
        .filter(|l| l.starts_with("count:") || l.starts_with("in-pack:"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `git status --porcelain`, leaving out the manifest (`rm` drops the session from it).
fn status(env: &TestEnv, dir: &Path) -> String {
    env.git_in(dir, &["status", "--porcelain", "--untracked-files=all"])
        .lines()
        .filter(|l| !l.ends_with("flowloom.toml"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn squash_lands_one_commit_and_removes_the_session() {
    let (env, wt) = with_session("");
    env.commit_file(&wt, "feature.txt", "one\n", "first step");
    env.commit_file(&wt, "feature.txt", "two\n", "second step");
    std::fs::remove_file(wt.join("README.md")).expect("rm");
    env.git_in(&wt, &["commit", "-qam", "drop the readme"]);
    let before = rev(&env, "main");
    let (code, out, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(rev(&env, "main^"), before, "one commit on main");
    let message = env.git(&["log", "-1", "--format=%B", "main"]);
    assert!(message.starts_with("Add the feature\n"), "{message}");
    assert!(
        message.contains("* first step") && message.contains("* drop the readme"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(env.path("feature.txt")).expect("file"), "two\n");
    assert!(!env.path("README.md").exists());
    assert_eq!(status(&env, &env.repo), "", "the main worktree is clean");
    assert!(env.worktrees().is_empty(), "{:?}", env.worktrees());
    assert!(!env.branches().contains(&"session/a".to_owned()));
    assert!(!wt.exists());
    let reflog = env.git(&["reflog", "-1", "--format=%gs", "refs/heads/main"]);
    assert_eq!(reflog.trim(), "commit: Add the feature");
    env.fsck();
}

#[test]
fn squash_merges_when_the_base_moved_on() {
    let (env, wt) = with_session("");
    env.commit_file(&wt, "feature.txt", "feature\n", "feature");
    env.commit_file(&env.repo, "other.txt", "other\n", "main moves");
    let (code, out, err) = env.run(&["merge", "--yes", "-m", "Land it", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(env.git(&["log", "-1", "--format=%s", "main"]).trim(), "Land it");
    assert!(env.path("feature.txt").exists() && env.path("other.txt").exists());
    assert_eq!(status(&env, &env.repo), "");
    env.fsck();
}

#[test]
fn rebase_replays_each_commit_linearly() {
    let (env, wt) = with_session("merge = \"rebase\"\n");
    env.commit_file(&wt, "a.txt", "a\n", "add a");
    env.commit_file(&wt, "b.txt", "b\n", "add b");
    env.commit_file(&env.repo, "other.txt", "other\n", "main moves");
    let (code, out, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let log = env.git(&["log", "--format=%s", "-3", "main"]);
    assert_eq!(log, "add b\nadd a\nmain moves\n");
    let parents = env.git(&["rev-list", "--min-parents=2", "main"]);
    assert_eq!(parents, "", "linear");
    assert_eq!(
        env.git(&["log", "-1", "--format=%an", "main"]).trim(),
        "flowloom test suite"
    );
    assert_eq!(status(&env, &env.repo), "");
    env.fsck();
}

#[test]
fn ff_only_moves_the_base_or_refuses() {
    let (env, wt) = with_session("");
    env.commit_file(&wt, "a.txt", "a\n", "add a");
    let tip = rev(&env, "session/a");
    let (code, out, err) = env.run(&["merge", "--yes", "--ff-only", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(rev(&env, "main"), tip);
    assert_eq!(
        env.git(&["reflog", "-1", "--format=%gs", "refs/heads/main"]).trim(),
        "merge session/a: Fast-forward"
    );
    assert_eq!(status(&env, &env.repo), "");

    let (env, wt) = with_session("");
    env.commit_file(&wt, "a.txt", "a\n", "add a");
    env.commit_file(&env.repo, "other.txt", "other\n", "main moves");
    let before = rev(&env, "main");
    let (code, _, err) = env.run(&["merge", "--yes", "--ff-only", "a"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot fast-forward"), "{err}");
    assert_eq!(rev(&env, "main"), before);
    assert!(wt.exists());
}

#[test]
fn a_conflict_writes_nothing_and_names_the_paths() {
    let (env, wt) = with_session("");
    env.commit_file(&wt, "README.md", "session\n", "session edit");
    env.commit_file(&env.repo, "README.md", "main\n", "main edit");
    let before = rev(&env, "main");
    let objects = object_count(&env);
    let refs = env.git(&["for-each-ref"]);
    for args in [&["merge", "--yes", "a"][..], &["merge", "--yes", "--rebase", "a"][..]] {
        let (code, _, err) = env.run(args);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("README.md") && err.contains("rebase"), "{err}");
        assert_eq!(rev(&env, "main"), before);
        assert_eq!(object_count(&env), objects, "no object written");
        assert_eq!(env.git(&["for-each-ref"]), refs);
        assert_eq!(status(&env, &env.repo), "");
        assert_eq!(
            std::fs::read_to_string(env.path("README.md")).expect("readme"),
            "main\n"
        );
        assert!(wt.exists());
    }
    env.fsck();
}

#[test]
fn local_changes_in_the_way_refuse_and_others_are_kept() {
    let (env, wt) = with_session("");
    env.commit_file(&wt, "README.md", "session\n", "session edit");
    env.write("README.md", "local edit\n");
    let before = rev(&env, "main");
    let (code, _, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("README.md"), "{err}");
    assert_eq!(rev(&env, "main"), before);
    assert_eq!(
        std::fs::read_to_string(env.path("README.md")).expect("readme"),
        "local edit\n"
    );
    // An untracked file where the merge writes one refuses too.
    env.git(&["checkout", "--", "README.md"]);
    env.commit_file(&wt, "new.txt", "session\n", "new file");
    env.write("new.txt", "mine\n");
    let (code, _, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("new.txt"), "{err}");
    assert_eq!(std::fs::read_to_string(env.path("new.txt")).expect("file"), "mine\n");
    std::fs::remove_file(env.path("new.txt")).expect("rm");
    // A local change elsewhere (the manifest, say) is kept as it is.
    let manifest = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    env.write("src/lib.rs", "pub fn g() {}\n");
    env.git(&["add", "src/lib.rs"]);
    let (code, out, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        std::fs::read_to_string(env.path("src/lib.rs")).expect("lib"),
        "pub fn g() {}\n"
    );
    let st = status(&env, &env.repo);
    assert!(st.contains("M  src/lib.rs"), "{st}");
    assert_ne!(
        std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest"),
        manifest
    );
    env.fsck();
}

/// Only the paths the merge changes are looked at in the base's worktree, yet everything
/// in their way is found: an untracked file below a folder that becomes a file, a file
/// where a folder comes, a name with glob characters, from a subfolder of the base's
/// worktree (paths count from its top, never from where flowloom runs).
#[test]
fn what_is_in_the_way_of_a_changed_path_is_found_from_anywhere() {
    let (env, wt) = with_session("");
    // `src` (a folder on main) becomes a file; `notes` (nothing on main) a folder.
    env.git_in(&wt, &["rm", "-rq", "src"]);
    std::fs::write(wt.join("src"), "now a file\n").expect("write");
    std::fs::create_dir_all(wt.join("notes")).expect("dir");
    std::fs::write(wt.join("notes/a.txt"), "a\n").expect("write");
    std::fs::write(wt.join("we*rd[1].txt"), "session\n").expect("write");
    env.git_in(&wt, &["add", "-A"]);
    env.git_in(&wt, &["commit", "-qm", "reshape"]);
    let before = rev(&env, "main");
    let refused = |expect: &str, from: &Path| {
        let (code, _, err) = crate::common::run(env.flowloom_in(from).args(["merge", "--yes", "a"]));
        assert_eq!(code, 1, "{expect}: {err}");
        assert!(err.contains(expect), "{expect}: {err}");
        assert_eq!(rev(&env, "main"), before, "{expect}");
    };
    env.write("src/mine.txt", "untracked below a folder that becomes a file\n");
    refused("src/mine.txt", &env.path("bin"));
    std::fs::remove_file(env.path("src/mine.txt")).expect("rm");
    env.write("notes", "a file where a folder comes\n");
    refused("notes", &env.path("src"));
    std::fs::remove_file(env.path("notes")).expect("rm");
    env.write("we*rd[1].txt", "mine\n");
    refused("we*rd[1].txt", &env.path("bin"));
    std::fs::remove_file(env.path("we*rd[1].txt")).expect("rm");
    // A look-alike that the glob would match is not in the way.
    env.write("weird1.txt", "kept\n");
    let (code, out, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(std::fs::read_to_string(env.path("src")).expect("src"), "now a file\n");
    assert_eq!(std::fs::read_to_string(env.path("weird1.txt")).expect("kept"), "kept\n");
    assert_eq!(status(&env, &env.repo), "?? weird1.txt\n");
    env.fsck();
}

/// A file saved where the merge writes one after the plan was made (while it waited on
/// the question) is found right before anything is written: nothing is.
#[test]
fn a_local_change_made_after_the_plan_refuses_before_writing() {
    let (env, wt) = with_session("");
    env.commit_file(&wt, "new.txt", "session\n", "new file");
    let before = rev(&env, "main");
    let objects = object_count(&env);
    let target = env.path("new.txt");
    let (code, _, err) = crate::common::run(env.flowloom().args(["merge", "--yes", "a"]).env(
        "FLOWLOOM_TEST_BEFORE_LANDING",
        format!("a:echo mine > '{}'", target.display()),
    ));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("new.txt"), "{err}");
    assert_eq!(rev(&env, "main"), before);
    assert_eq!(object_count(&env), objects);
    assert_eq!(std::fs::read_to_string(&target).expect("file"), "mine\n");
    assert!(wt.exists());
}

#[test]
fn a_base_checked_out_nowhere_only_moves_the_ref() {
    let (env, wt) = with_session("");
    env.commit_file(&wt, "a.txt", "a\n", "add a");
    env.git(&["checkout", "-q", "--detach", "main"]);
    let (code, out, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(env.git(&["show", "main:a.txt"]), "a\n");
    assert!(!env.path("a.txt").exists(), "the detached worktree is untouched");
    assert_eq!(status(&env, &env.repo), "");
    env.fsck();
}

#[test]
fn a_base_that_is_not_a_local_branch_is_refused() {
    let env = TestEnv::new();
    let main = rev(&env, "main");
    env.manifest(&format!("[sessions.a]\nbase = \"{main}\"\n"));
    env.commit("manifest");
    env.apply();
    let (code, _, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a local branch"), "{err}");
}

/// The same session merged by flowloom and, in a copy of the repository, by
/// `git merge --squash` + `git commit`: the same files, modes, index and status.
#[test]
fn the_worktree_ends_as_git_merge_leaves_it() {
    let (env, wt) = with_session("");
    std::fs::write(
        env.path(".gitattributes"),
        "*.txt text eol=crlf\n*.bin filter=lfs diff=lfs merge=lfs -text\n",
    )
    .expect("attrs");
    env.commit("attributes");
    env.git_in(&wt, &["merge", "-q", "main"]);
    std::fs::write(wt.join("crlf.txt"), "a\nb\n").expect("write");
    std::fs::write(
        wt.join("big.bin"),
        "version https://git-lfs.github.com/spec/v1\noid sha256:0000000000000000000000000000000000000000000000000000000000000000\nsize 3\n",
    )
    .expect("write");
    std::fs::remove_file(wt.join("link")).expect("rm link");
    std::os::unix::fs::symlink("src/lib.rs", wt.join("link")).expect("symlink");
    std::os::unix::fs::symlink("README.md", wt.join("link2")).expect("symlink");
    set_executable(&wt.join("src/lib.rs"));
    std::fs::remove_file(wt.join("bin/run.sh")).expect("rm");
    std::fs::create_dir_all(wt.join("deep/er")).expect("dir");
    std::fs::write(wt.join("deep/er/file"), "x\n").expect("write");
    env.git_in(&wt, &["add", "-A"]);
    env.git_in(&wt, &["commit", "-qm", "many kinds of change"]);
    env.commit_file(&env.repo, "other.txt", "other\n", "main moves");
    let copy = env.tmp.path().join("copy");
    env.git_in(
        env.tmp.path(),
        &["clone", "-q", "--no-local", env.repo.to_str().expect("utf8"), "copy"],
    );
    env.git_in(&copy, &["fetch", "-q", "origin", "session/a:session/a"]);
    env.git_in(&copy, &["merge", "-q", "--squash", "session/a"]);
    env.git_in(&copy, &["commit", "-qm", "squash"]);
    let (code, out, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        rev(&env, "main^{tree}"),
        env.git_in(&copy, &["rev-parse", "HEAD^{tree}"]).trim()
    );
    assert_eq!(
        env.git(&["ls-files", "--stage"]),
        env.git_in(&copy, &["ls-files", "--stage"])
    );
    assert_eq!(status(&env, &env.repo), status(&env, &copy));
    for file in ["crlf.txt", "big.bin", "deep/er/file"] {
        assert_eq!(
            std::fs::read(env.path(file)).expect("ours"),
            std::fs::read(copy.join(file)).expect("git's"),
            "{file}"
        );
    }
    assert_eq!(std::fs::read(env.path("crlf.txt")).expect("crlf"), b"a\r\nb\r\n");
    for link in ["link", "link2"] {
        assert_eq!(
            std::fs::read_link(env.path(link)).expect("ours"),
            std::fs::read_link(copy.join(link)).expect("git's")
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: PathBuf| std::fs::metadata(p).expect("meta").permissions().mode() & 0o111;
    assert_eq!(mode(env.path("src/lib.rs")), mode(copy.join("src/lib.rs")));
    assert_ne!(mode(env.path("src/lib.rs")), 0);
    assert!(!env.path("bin/run.sh").exists() && !env.path("bin").exists());
    env.fsck();
}

/// From inside the session, through the shell function of `program` (`init` loads it),
/// `flowloom merge` lands the shell in the base's worktree; a merge whose removal is
/// blocked (a file left in the session) leaves the shell where it was.
fn from_inside_through(program: &str, init: &str) {
    let (env, wt) = with_session("");
    env.commit_file(&wt, "a.txt", "a\n", "add a");
    let bin = assert_cmd::cargo::cargo_bin("flowloom");
    let dir = bin.parent().expect("bin dir").display().to_string();
    let status = if program == "fish" { "$status" } else { "$?" };
    let script = format!(
        "{init}\necho wip > wip.txt\nflowloom merge --yes a >&2 2>/dev/null\necho \"blocked {status}\"\npwd\n\
         rm wip.txt\nflowloom rm --yes a >&2\npwd\n"
    );
    let wt_text = wt.canonicalize().expect("wt").display().to_string();
    let main = env.repo.canonicalize().expect("repo").display().to_string();
    let mut cmd = std::process::Command::new(program);
    crate::common::hermetic(&mut cmd, &env.home());
    let (code, out, err) = run(cmd
        .current_dir(&wt)
        .env("PATH", format!("{dir}:{}", std::env::var("PATH").unwrap_or_default()))
        .args(["-c", &script]));
    assert_eq!(code, 0, "{program}: {out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first().copied(), Some("blocked 1"), "{program}: {out}\n{err}");
    assert_eq!(lines.get(1).copied(), Some(wt_text.as_str()), "{program}: stays: {out}");
    assert_eq!(lines.get(2).copied(), Some(main.as_str()), "{program}: {out}\n{err}");
    assert_eq!(env.git(&["show", "main:a.txt"]), "a\n");
    assert!(!wt.exists(), "{program}: {err}");

    // A clean session: one merge lands it and moves the shell.
    let then = if program == "fish" {
        "; and pwd; or exit 3"
    } else {
        " && pwd || exit 3"
    };
    let (env, wt) = with_session("");
    env.commit_file(&wt, "b.txt", "b\n", "add b");
    let mut cmd = std::process::Command::new(program);
    crate::common::hermetic(&mut cmd, &env.home());
    let (code, out, err) = run(cmd
        .current_dir(&wt)
        .env("PATH", format!("{dir}:{}", std::env::var("PATH").unwrap_or_default()))
        .args(["-c", &format!("{init}\nflowloom merge --yes a >&2{then}")]));
    assert_eq!(code, 0, "{program}: {out}\n{err}");
    assert_eq!(out.trim(), env.repo.canonicalize().expect("repo").display().to_string());
    assert!(!wt.exists(), "{program}: {err}");
    assert!(env.path("b.txt").exists());
    env.fsck();
}

fn installed(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn from_inside_through_the_bash_function_the_shell_lands_in_the_base() {
    from_inside_through("bash", "eval \"$(flowloom shell-init bash)\"");
}

#[test]
fn from_inside_through_the_zsh_function_the_shell_lands_in_the_base() {
    if installed("zsh") {
        from_inside_through("zsh", "eval \"$(flowloom shell-init zsh)\"");
    }
}

#[test]
fn from_inside_through_the_fish_function_the_shell_lands_in_the_base() {
    if installed("fish") {
        from_inside_through("fish", "flowloom shell-init fish | source");
    }
}

#[test]
fn run_from_inside_without_the_function_the_removal_is_blocked_and_the_merge_stays() {
    let (env, wt) = with_session("");
    env.commit_file(&wt, "a.txt", "a\n", "add a");
    let (code, out, err) = run(env.flowloom_in(&wt).args(["merge", "--yes", "a"]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("Merged `session/a` into `main`"), "{err}");
    assert!(err.contains("cannot be removed"), "{err}");
    // The message is true: the merge landed (named with its commit), the removal did not.
    let short = &rev(&env, "main")[..7];
    assert!(
        err.contains(&format!("`session/a` is merged into `main` (now {short})")),
        "{err}"
    );
    assert!(!err.contains("nothing was changed"), "{err}");
    assert!(err.contains("flowloom rm --yes a"), "{err}");
    assert!(env.path("a.txt").exists());
    assert!(wt.exists());
}

#[test]
fn a_blocked_removal_after_a_merge_says_the_merge_landed_and_how_to_force() {
    let (env, wt) = with_session("");
    env.commit_file(&wt, "a.txt", "a\n", "add a");
    std::fs::write(wt.join("notes.txt"), "mine\n").expect("write");
    let (code, out, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let short = &rev(&env, "main")[..7];
    assert!(
        err.contains(&format!("`session/a` is merged into `main` (now {short})")),
        "{err}"
    );
    assert!(err.contains("untracked") && err.contains("notes.txt"), "{err}");
    assert!(!err.contains("nothing was changed"), "{err}");
    assert!(err.contains("flowloom rm --yes --force a"), "{err}");
    assert_eq!(env.git(&["show", "main:a.txt"]), "a\n");
    assert!(wt.join("notes.txt").exists(), "the session is left as it was");
    let manifest = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    assert!(manifest.contains("[sessions.a]"), "still declared: {manifest}");
    let (code, out, err) = env.run(&["rm", "--yes", "--force", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!wt.exists());
    env.fsck();
}

#[test]
fn json_says_what_was_done() {
    let (env, wt) = with_session("");
    env.commit_file(&wt, "a.txt", "a\n", "add a");
    let (code, out, err) = env.run(&["merge", "--yes", "--json", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(json["mode"], "squash");
    assert_eq!(json["new"], rev(&env, "main"));
    assert_eq!(json["removed"], true);
}

#[test]
fn an_invalid_merge_mode_is_a_manifest_error() {
    let env = TestEnv::new();
    env.manifest("[defaults]\nmerge = \"octopus\"\n[sessions.a]\n");
    let (code, _, err) = env.run(&["validate"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("invalid `merge` mode"), "{err}");
}

/// `-m ""` (or only whitespace): refused as `git commit -m ""` refuses an empty message,
/// before anything lands; the session and its branch stay.
#[test]
fn an_empty_message_is_refused_before_anything_lands() {
    let (env, wt) = with_session("");
    env.commit_file(&wt, "feature.txt", "one\n", "first step");
    let before = rev(&env, "main");
    for message in ["", "  \n\t\n"] {
        let (code, out, err) = env.run(&["merge", "--yes", "-m", message, "a"]);
        assert_eq!(code, 1, "{out}\n{err}");
        assert!(err.contains("empty"), "{err}");
        assert_eq!(rev(&env, "main"), before, "nothing landed");
        assert!(wt.is_dir(), "the session stays");
    }
}
