//! SPEC §11.2 `flowloom merge` attacked: what lies in the base's worktree (hard links,
//! symlinks, submodules, another process's index lock), a merge that lands nothing new,
//! and a kill at each step of the write, which the next `merge` must finish.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::common::{TestEnv, run};

/// A repository with session `a` (base `main`) made.
fn with_session() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    env.manifest("[defaults]\nbase = \"main\"\n\n[sessions.a]\npurpose = \"Add the feature\"\n");
    env.commit("manifest");
    env.apply();
    let wt = env.path("sessions/shell-instance-a");
    (env, wt)
}

fn rev(env: &TestEnv, spec: &str) -> String {
    env.git(&["rev-parse", spec]).trim().to_owned()
}

/// `git status --porcelain` of the main worktree, leaving out the manifest (`rm` drops the
/// session from it).
fn status(env: &TestEnv) -> String {
    env.git(&["status", "--porcelain", "--untracked-files=all"])
        .lines()
        .filter(|l| !l.ends_with("flowloom.toml"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// What git says of the base's worktree once a merge is done: its index is the tree of
/// `main` (but the manifest), and nothing is changed.
fn assert_as_git_leaves_it(env: &TestEnv) {
    let index: Vec<String> = env
        .git(&["ls-files", "--stage"])
        .lines()
        .filter(|l| !l.ends_with("flowloom.toml"))
        .map(str::to_owned)
        .collect();
    let tree: Vec<String> = env
        .git(&[
            "ls-tree",
            "-r",
            "--format=%(objectmode) %(objectname) 0\t%(path)",
            "main",
        ])
        .lines()
        .filter(|l| !l.ends_with("flowloom.toml"))
        .map(str::to_owned)
        .collect();
    assert_eq!(index, tree, "the index is main's tree");
    assert_eq!(status(env), "", "git status is clean");
    env.fsck();
}

/// git replaces a file it checks out (unlink, then create): a file of the base's worktree
/// that is a hard link of a file elsewhere gets a new inode, and the other name keeps its
/// bytes. Writing into the file in place would change a file outside the repository.
#[test]
fn a_hard_linked_file_is_replaced_never_written_through() {
    let (env, wt) = with_session();
    let outside = env.tmp.path().join("outside.md");
    std::fs::hard_link(env.path("README.md"), &outside).expect("hard link");
    env.commit_file(&wt, "README.md", "from the session\n", "edit the readme");
    let (code, out, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        std::fs::read_to_string(env.path("README.md")).expect("readme"),
        "from the session\n"
    );
    assert_eq!(
        std::fs::read_to_string(&outside).expect("outside"),
        "hello\n",
        "the other name of the file is untouched"
    );
    assert_ne!(
        std::fs::metadata(&outside).expect("meta").ino(),
        std::fs::metadata(env.path("README.md")).expect("meta").ino()
    );
    assert_as_git_leaves_it(&env);
}

/// A tracked symlink that the merge turns into a file (or a folder) is replaced; whatever
/// it points at, inside or outside the repository, keeps its bytes.
#[test]
fn a_symlink_that_becomes_a_file_is_replaced_never_written_through() {
    let (env, wt) = with_session();
    let outside = env.tmp.path().join("outside.txt");
    std::fs::write(&outside, "outside\n").expect("write");
    std::os::unix::fs::symlink(&outside, env.path("away")).expect("symlink");
    env.commit("a link that points away");
    env.git_in(&wt, &["merge", "-q", "main"]);
    for (link, text) in [("away", "a file now\n"), ("link", "not a link any more\n")] {
        std::fs::remove_file(wt.join(link)).expect("rm");
        std::fs::write(wt.join(link), text).expect("write");
    }
    env.git_in(&wt, &["commit", "-qam", "links become files"]);
    let (code, out, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(std::fs::read_to_string(&outside).expect("outside"), "outside\n");
    assert_eq!(
        std::fs::read_to_string(env.path("README.md")).expect("readme"),
        "hello\n"
    );
    assert_eq!(std::fs::read_to_string(env.path("away")).expect("away"), "a file now\n");
    assert!(!std::fs::symlink_metadata(env.path("link")).expect("meta").is_symlink());
    assert_as_git_leaves_it(&env);
}

/// Modes: a file that loses its executable bit loses it on disk too (an existing file
/// keeps its mode when written in place), one that gains it gains it.
#[test]
fn an_executable_bit_that_changes_changes_on_disk() {
    use std::os::unix::fs::PermissionsExt;
    let (env, wt) = with_session();
    env.git_in(&wt, &["update-index", "--chmod=-x", "bin/run.sh"]);
    env.git_in(&wt, &["update-index", "--chmod=+x", "README.md"]);
    env.git_in(&wt, &["commit", "-qm", "modes only"]);
    env.git_in(&wt, &["checkout", "-q", "--", "."]);
    let (code, out, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let mode = |rel: &str| std::fs::metadata(env.path(rel)).expect("meta").permissions().mode() & 0o111;
    assert_eq!(mode("bin/run.sh"), 0);
    assert_ne!(mode("README.md"), 0);
    assert_as_git_leaves_it(&env);
}

/// A file that becomes a folder and a folder that becomes a file, and a name that changes
/// only its case: the worktree ends as git's.
#[test]
fn files_become_folders_and_back_and_names_change_case() {
    let (env, wt) = with_session();
    env.git_in(&wt, &["rm", "-q", "README.md", "bin/run.sh"]);
    std::fs::create_dir_all(wt.join("README.md")).expect("dir");
    std::fs::write(wt.join("README.md/inside"), "inside\n").expect("write");
    std::fs::write(wt.join("bin"), "a file now\n").expect("write");
    env.git_in(&wt, &["mv", "src/lib.rs", "src/LIB.rs"]);
    env.git_in(&wt, &["add", "-A"]);
    env.git_in(&wt, &["commit", "-qm", "reshape"]);
    let (code, out, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        std::fs::read_to_string(env.path("README.md/inside")).expect("inside"),
        "inside\n"
    );
    assert_eq!(std::fs::read_to_string(env.path("bin")).expect("bin"), "a file now\n");
    assert!(env.path("src/LIB.rs").is_file() && !env.path("src/lib.rs").exists());
    assert_as_git_leaves_it(&env);
}

/// Submodules (gitlink entries) as `git merge` takes them: one that goes leaves its empty
/// folder gone, one that comes gets its empty folder; a populated one is left in place.
#[test]
fn gitlinks_that_come_and_go_end_as_git_leaves_them() {
    let (env, wt) = with_session();
    let commit = rev(&env, "HEAD");
    let gitlink = format!("160000,{commit},dep");
    env.git(&["update-index", "--add", "--cacheinfo", &gitlink]);
    env.git(&["commit", "-qm", "a submodule"]);
    std::fs::create_dir_all(env.path("dep")).expect("as git checks it out");
    env.git_in(&wt, &["merge", "-q", "main"]);
    env.git_in(&wt, &["rm", "-q", "--cached", "dep"]);
    let other = format!("160000,{commit},dep2");
    env.git_in(&wt, &["update-index", "--add", "--cacheinfo", &other]);
    std::fs::remove_dir(wt.join("dep")).expect("as git leaves it");
    std::fs::create_dir(wt.join("dep2")).expect("as git checks it out");
    env.git_in(&wt, &["commit", "-qm", "swap the submodule"]);
    let (code, out, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!env.path("dep").exists(), "its empty folder goes");
    assert!(env.path("dep2").is_dir(), "its empty folder comes");
    assert_as_git_leaves_it(&env);
}

/// Another git command holds the base worktree's index (`index.lock`): the merge is
/// refused before any file is written, as `git merge` refuses.
#[test]
fn a_held_index_lock_refuses_before_any_file_is_written() {
    let (env, wt) = with_session();
    env.commit_file(&wt, "README.md", "from the session\n", "edit");
    let lock = env.path(".git/index.lock");
    std::fs::write(&lock, "").expect("lock");
    let before = rev(&env, "main");
    let (code, _, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("index.lock"), "{err}");
    assert_eq!(rev(&env, "main"), before);
    assert_eq!(
        std::fs::read_to_string(env.path("README.md")).expect("readme"),
        "hello\n"
    );
    std::fs::remove_file(&lock).expect("unlock");
    assert_eq!(status(&env), "");
    let (code, out, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_as_git_leaves_it(&env);
}

/// A session whose changes are in the base already (squash-merged by hand, say, or by a
/// merge that a kill stopped before the removal) lands nothing: no empty commit.
#[test]
fn a_session_already_landed_adds_no_empty_commit() {
    for mode in ["--squash", "--rebase"] {
        let (env, wt) = with_session();
        env.commit_file(&wt, "feature.txt", "done\n", "the feature");
        env.git(&["merge", "-q", "--squash", "session/a"]);
        env.git(&["commit", "-qm", "squashed by hand"]);
        let before = rev(&env, "main");
        let (code, out, err) = env.run(&["merge", "--yes", mode, "a"]);
        assert_eq!(code, 0, "{mode}: {out}\n{err}");
        assert_eq!(rev(&env, "main"), before, "{mode}: no commit added");
        assert!(!wt.exists(), "{mode}: the session is removed");
        assert_as_git_leaves_it(&env);
    }
}

/// A merge killed while it writes (after the objects, part-way through the base's
/// worktree, after its index, after the base moved) is finished by the next `merge`: the
/// base gets the session's changes once, its worktree ends as git leaves it.
#[test]
fn a_merge_killed_at_any_step_is_finished_by_the_next() {
    for step in ["merge:objects", "merge:worktree-part", "merge:index", "merge:base"] {
        let (env, wt) = with_session();
        env.commit_file(&wt, "feature.txt", "one\n", "add a file");
        env.commit_file(&wt, "README.md", "changed\n", "change a file");
        env.git_in(&wt, &["rm", "-q", "bin/run.sh"]);
        env.git_in(&wt, &["commit", "-qm", "delete a file"]);
        env.write("elsewhere.txt", "a local change elsewhere\n");
        let before = rev(&env, "main");
        let (code, _, _) = run(env
            .flowloom()
            .env("FLOWLOOM_FAILPOINT", step)
            .args(["merge", "--yes", "a"]));
        assert_ne!(code, 0, "{step}: the failpoint aborts");
        let (code, out, err) = env.run(&["merge", "--yes", "a"]);
        assert_eq!(code, 0, "{step}: {out}\n{err}");
        assert_eq!(rev(&env, "main^"), before, "{step}: one commit on main");
        assert!(!wt.exists(), "{step}: the session is removed");
        assert_eq!(
            std::fs::read_to_string(env.path("README.md")).expect("readme"),
            "changed\n"
        );
        assert!(!env.path("bin").exists(), "{step}");
        assert_eq!(
            std::fs::read_to_string(env.path("elsewhere.txt")).expect("kept"),
            "a local change elsewhere\n"
        );
        std::fs::remove_file(env.path("elsewhere.txt")).expect("rm");
        assert_as_git_leaves_it(&env);
    }
}

/// The base moved by another command while the merge writes the base's worktree: the
/// base's ref is locked before the worktree is written, so that command fails (as against
/// a `git merge` holding it) and the merge ends whole — never a worktree written for a
/// base that went elsewhere.
#[test]
fn the_base_cannot_move_while_its_worktree_is_written() {
    let (env, wt) = with_session();
    env.commit_file(&wt, "README.md", "from the session\n", "edit");
    let before = rev(&env, "main");
    let (code, out, err) = run(env.flowloom().args(["merge", "--yes", "a"]).env(
        "FLOWLOOM_TEST_BASE_LOCKED",
        "main:git update-ref refs/heads/main main~1",
    ));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(rev(&env, "main^"), before);
    assert_eq!(
        std::fs::read_to_string(env.path("README.md")).expect("readme"),
        "from the session\n"
    );
    assert_as_git_leaves_it(&env);
}

/// A git operation left in progress refuses the merge, writing nothing: where the base is
/// checked out, a merge or cherry-pick not concluded and unmerged entries (a `stash pop`
/// that conflicted), as `git merge` refuses them; anywhere, a rebase or a bisect of the base
/// (HEAD is detached then, yet git counts the branch as checked out there), since the
/// rebase, once finished or aborted, would set the base back over the landed commit.
#[test]
fn a_git_operation_in_progress_on_the_base_refuses_the_merge() {
    for op in ["merge", "cherry-pick", "stash-pop", "rebase", "bisect"] {
        let (env, wt) = with_session();
        env.commit_file(&wt, "feature.txt", "feature\n", "add the feature");
        env.git(&["checkout", "-q", "-b", "side"]);
        env.commit_file(&env.repo, "README.md", "side\n", "side readme");
        env.git(&["checkout", "-q", "main"]);
        env.commit_file(&env.repo, "README.md", "main\n", "main readme");
        let stopped = |args: &[&str]| {
            let out = env.git_output(&env.repo, args);
            assert!(!out.status.success(), "{op}: git {args:?} stops on its conflict");
        };
        match op {
            "merge" => stopped(&["merge", "-q", "side"]),
            "cherry-pick" => stopped(&["cherry-pick", "side"]),
            "stash-pop" => {
                std::fs::write(env.path("README.md"), "stashed\n").expect("write");
                env.git(&["stash", "-q"]);
                env.commit_file(&env.repo, "README.md", "main again\n", "main again");
                stopped(&["stash", "pop", "-q"]);
            }
            "rebase" => stopped(&["rebase", "-q", "side"]),
            _ => {
                env.git(&["bisect", "start", "main", "main~2"]);
            }
        }
        let main = rev(&env, "refs/heads/main");
        let index = env.git(&["ls-files", "--stage"]);
        let (code, out, err) = env.run(&["merge", "--yes", "a"]);
        assert_eq!(code, 1, "{op}: refused\n{out}\n{err}");
        assert!(
            err.contains("in progress") || err.contains("unmerged"),
            "{op}: says why\n{err}"
        );
        assert_eq!(rev(&env, "refs/heads/main"), main, "{op}: the base did not move");
        assert_eq!(env.git(&["ls-files", "--stage"]), index, "{op}: the index is as it was");
        assert!(wt.join("feature.txt").exists(), "{op}: the session is kept");
        env.git(&["rev-parse", "--verify", "-q", "refs/heads/session/a"]); // the branch is kept
        env.fsck();
    }
}
