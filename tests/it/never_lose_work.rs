//! Never lose work, as amended (SPEC §11.4 on §7): integration compares file modes, a
//! repository nested anywhere in a session blocks its removal until its commits are pushed,
//! a removal whose deletion started is finished and never undone (kills, undeletable files,
//! read-only folders, for root and for an ordinary user), and archive refs never clash.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{GONE, TestEnv, hermetic, orphan, run};

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `chmod -R a-w`, folders after their contents.
fn read_only_tree(path: &Path) {
    for entry in std::fs::read_dir(path).expect("read dir").flatten() {
        let kind = entry.file_type().expect("type");
        if kind.is_dir() {
            read_only_tree(&entry.path());
        } else if kind.is_file() {
            set_mode(&entry.path(), 0o444);
        }
    }
    set_mode(path, 0o555);
}

fn trash(env: &TestEnv) -> PathBuf {
    env.path("sessions/.flowloom-trash")
}

/// Hide `folder/` in every worktree (as a tool's cache or clone would be ignored).
fn ignore(env: &TestEnv, folder: &str) {
    let exclude = env.repo.join(".git/info/exclude");
    let mut text = std::fs::read_to_string(&exclude).unwrap_or_default();
    text.push_str(&format!("\n{folder}/\n"));
    std::fs::write(&exclude, text).expect("exclude");
}

// ---- integration with file modes ----

/// SPEC §11.4: a commit that only changes a mode is not integrated until the base has that
/// mode: the branch is retained (never deleted with its commit), then goes once the base
/// holds the same mode.
#[test]
fn a_commit_that_only_changes_a_mode_is_not_integrated_until_the_base_has_it() {
    type Edit = fn(&Path);
    let cases: [(&str, &str, Edit); 3] = [
        ("chmod +x", "README.md", |f| set_mode(f, 0o755)),
        ("a symlink made a file of the same bytes", "link", |f| {
            std::fs::remove_file(f).expect("rm");
            std::fs::write(f, "README.md").expect("write");
        }),
        ("chmod -x", "bin/run.sh", |f| set_mode(f, 0o644)),
    ];
    for (what, file, edit) in cases {
        let env = orphan();
        let wt = env.path(GONE);
        edit(&wt.join(file));
        env.git_in(&wt, &["add", file]);
        env.git_in(&wt, &["commit", "-q", "-m", what]);
        let tip = env.git(&["rev-parse", "session/gone"]);
        let (code, out, err) = env.run(&["apply", "--yes"]);
        assert_eq!(code, 0, "{what}:\n{out}\n{err}");
        assert!(
            env.branches().contains(&"session/gone".to_owned()),
            "{what}: a change of mode alone was taken as integrated and its branch deleted:\n{out}"
        );
        assert_eq!(env.git(&["rev-parse", "session/gone"]), tip, "{what}");
        assert!(
            !env.path(GONE).exists(),
            "{what}: the clean worktree goes, the branch stays"
        );
        let (_, plan, _) = env.run(&["plan"]);
        assert!(plan.contains("retained"), "{what}:\n{plan}");
        // The base gets the same mode in a commit of its own (as a squash merge would).
        edit(&env.repo.join(file));
        env.git(&["add", file]);
        env.git(&["commit", "-q", "-m", what]);
        let (code, out, err) = env.run(&["apply", "--yes"]);
        assert_eq!(code, 0, "{what}:\n{out}\n{err}");
        assert!(
            !env.branches().contains(&"session/gone".to_owned()),
            "{what}: integrated once the base has the mode:\n{out}"
        );
        env.fsck();
    }
}

/// SPEC §11.4, every test of integration compares modes: a commit that changes a file's
/// text and mode, beside a base that has the same text change without the mode (same
/// patch text but for the mode; a tree that differs by the mode alone; a merge that would
/// still add the mode), is not integrated; once the base has the mode too, among other
/// changes, merging adds nothing and the branch goes. In the top folder and deeper down.
#[test]
fn a_mode_change_beside_a_text_change_the_base_has_is_not_integrated() {
    for file in ["README.md", "src/lib.rs"] {
        let env = orphan();
        let wt = env.path(GONE);
        std::fs::write(wt.join(file), "changed\n").expect("write");
        set_mode(&wt.join(file), 0o755);
        env.git_in(&wt, &["add", file]);
        env.git_in(&wt, &["commit", "-q", "-m", "change and chmod +x"]);
        let tip = env.git(&["rev-parse", "session/gone"]);
        std::fs::write(env.repo.join(file), "changed\n").expect("write");
        env.git(&["add", file]);
        env.git(&["commit", "-q", "-m", "the same change, without the mode"]);
        let (code, out, err) = env.run(&["apply", "--yes"]);
        assert_eq!(code, 0, "{file}:\n{out}\n{err}");
        assert_eq!(
            env.git(&["rev-parse", "session/gone"]),
            tip,
            "{file}: the mode was taken as integrated:\n{out}"
        );
        // The base gets the mode, with another change: merging the branch adds nothing.
        set_mode(&env.repo.join(file), 0o755);
        env.write("OTHER.md", "other\n");
        env.commit("the mode, and more");
        let (code, out, err) = env.run(&["apply", "--yes"]);
        assert_eq!(code, 0, "{file}:\n{out}\n{err}");
        assert!(
            !env.branches().contains(&"session/gone".to_owned()),
            "{file}: integrated once the base has the mode:\n{out}"
        );
        env.fsck();
    }
}

// ---- nested repositories ----

/// A repository at `dir` (made with its parents) with one commit of its own.
pub(crate) fn nested_repo(env: &TestEnv, dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    env.git_in(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("tool.txt"), "tool\n").expect("write");
    env.git_in(dir, &["add", "tool.txt"]);
    env.git_in(dir, &["commit", "-q", "-m", "tool"]);
}

/// Push the repository at `dir` to a new bare remote, so that its remote-tracking ref
/// reaches every commit.
pub(crate) fn push(env: &TestEnv, dir: &Path, name: &str) {
    let remote = env.tmp.path().join(format!("{name}.git"));
    env.git_in(env.tmp.path(), &["init", "-q", "--bare", &remote.to_string_lossy()]);
    env.git_in(dir, &["remote", "add", "origin", &remote.to_string_lossy()]);
    env.git_in(dir, &["push", "-q", "origin", "main"]);
    env.git_in(dir, &["fetch", "-q", "origin"]);
}

#[test]
fn a_repository_in_an_ignored_folder_blocks_even_a_forced_removal_until_pushed() {
    let env = orphan();
    ignore(&env, "ignored");
    let tool = env.path(&format!("{GONE}/ignored/tool"));
    nested_repo(&env, &tool);
    for args in [&["apply", "--yes"][..], &["apply", "--yes", "--force"]] {
        let (code, out, _) = env.run(args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(out.contains("repository of its own (ignored/tool)"), "{args:?}: {out}");
        assert!(
            tool.join(".git").is_dir(),
            "{args:?}: the nested repository was deleted"
        );
    }
    push(&env, &tool, "tool");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(
        code, 0,
        "pushed, it is in an ignored folder like any other:\n{out}\n{err}"
    );
    assert!(!env.path(GONE).exists());
    env.fsck();
}

#[test]
fn a_pushed_untracked_repository_does_not_stop_a_forced_removal() {
    let env = orphan();
    let tool = env.path(&format!("{GONE}/tool"));
    nested_repo(&env, &tool);
    push(&env, &tool, "tool");
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "untracked, it is dirt without --force: {out}");
    let (code, out, err) = env.run(&["apply", "--yes", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!env.path(GONE).exists());
    env.fsck();
}

/// Every shape of repository with commits of its own blocks, with `--force` too: inside a
/// pushed one, behind a gitlink `.git` file, bare, in the session folder, a stash only. A
/// symlink to a repository is never followed.
#[test]
fn every_kind_of_nested_repository_with_unpushed_commits_blocks() {
    type Make = fn(&TestEnv, &Path);
    let cases: [(&str, &str, Make); 5] = [
        ("inside a pushed one", "ignored/outer/inner", |env, wt| {
            let outer = wt.join("ignored/outer");
            nested_repo(env, &outer);
            push(env, &outer, "outer");
            nested_repo(env, &outer.join("inner"));
        }),
        ("a gitlink to elsewhere", "ignored/linked", |env, wt| {
            let dir = wt.join("ignored/linked");
            std::fs::create_dir_all(wt.join("ignored")).expect("mkdir");
            let sep = env.tmp.path().join("separate.git");
            env.git_in(
                &wt.join("ignored"),
                &[
                    "init",
                    "-q",
                    "-b",
                    "main",
                    "--separate-git-dir",
                    &sep.to_string_lossy(),
                    "linked",
                ],
            );
            std::fs::write(dir.join("f"), "f\n").expect("write");
            env.git_in(&dir, &["add", "f"]);
            env.git_in(&dir, &["commit", "-q", "-m", "f"]);
        }),
        ("bare", "ignored/store.git", |env, wt| {
            let bare = wt.join("ignored/store.git");
            std::fs::create_dir_all(&bare).expect("mkdir");
            env.git_in(&bare, &["init", "-q", "--bare"]);
            let src = env.tmp.path().join("src");
            nested_repo(env, &src);
            env.git_in(&src, &["push", "-q", &bare.to_string_lossy(), "main"]);
        }),
        ("in the session folder", "sessions/gone/artifacts/tool", |env, wt| {
            nested_repo(env, &wt.join("sessions/gone/artifacts/tool"));
        }),
        ("a stash only", "ignored/stashed", |env, wt| {
            let dir = wt.join("ignored/stashed");
            nested_repo(env, &dir);
            push(env, &dir, "stashed");
            std::fs::write(dir.join("tool.txt"), "edited\n").expect("write");
            env.git_in(&dir, &["stash", "-q"]);
        }),
    ];
    for (what, rel, make) in cases {
        let env = orphan();
        ignore(&env, "ignored");
        let wt = env.path(GONE);
        make(&env, &wt);
        let (code, out, _) = env.run(&["apply", "--yes", "--force"]);
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains(&format!("repository of its own ({rel})")), "{what}: {out}");
        assert!(wt.exists(), "{what}");
    }
    // A symlink to a repository: deleting it deletes no repository.
    let env = orphan();
    ignore(&env, "ignored");
    let outside = env.tmp.path().join("outside");
    nested_repo(&env, &outside);
    std::fs::create_dir_all(env.path(&format!("{GONE}/ignored"))).expect("mkdir");
    std::os::unix::fs::symlink(&outside, env.path(&format!("{GONE}/ignored/link"))).expect("symlink");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!env.path(GONE).exists());
    assert!(outside.join(".git").is_dir());
    env.git_in(&outside, &["fsck", "--strict", "--no-progress"]);
}

// ---- a removal whose deletion started is finished, never undone ----

/// A kill part-way through the deletion (the failpoint deletes one file, then aborts, and
/// the test sees both): the rest is a step `plan` shows, never a folder moved back.
#[test]
fn a_kill_part_way_through_a_deletion_is_finished_never_moved_back() {
    let env = orphan();
    let (code, _, err) = run(env
        .flowloom()
        .env("FLOWLOOM_FAILPOINT", "remove:deleting")
        .args(["apply", "--yes"]));
    assert_eq!(code, -1, "the failpoint did not fire: {err}");
    let left: Vec<PathBuf> = std::fs::read_dir(trash(&env))
        .expect("the folder is in the trash")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].join("src/lib.rs").exists(), "part of it is left");
    assert!(
        ["README.md", ".git", "DEVELOP.md", "link", "flowloom.toml"]
            .iter()
            .any(|f| left[0].join(f).symlink_metadata().is_err()),
        "part of it is deleted"
    );
    assert!(!env.path(GONE).exists());
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "a half-deleted folder is never `no changes`:\n{out}");
    assert!(out.contains(".flowloom-trash"), "{out}");
    assert!(!out.contains("back"), "{out}");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!env.path(GONE).exists(), "never moved back into the root");
    assert!(!trash(&env).exists());
    assert!(!env.branches().contains(&"session/gone".to_owned()));
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
    env.fsck();
}

/// A kill after the deletion is done and recorded but before the empty trash folder goes
/// (the window a kill -9 at random once hit): the folder is a step `plan` shows, and goes.
#[test]
fn a_kill_after_the_deletion_leaves_an_empty_trash_that_the_next_apply_removes() {
    let env = orphan();
    let (code, _, err) = run(env
        .flowloom()
        .env("FLOWLOOM_FAILPOINT", "remove:deleted")
        .args(["apply", "--yes"]));
    assert_eq!(code, -1, "the failpoint did not fire: {err}");
    assert!(!env.path(GONE).exists());
    let left = std::fs::read_dir(trash(&env))
        .expect("the trash folder is left")
        .count();
    assert_eq!(left, 0, "the deletion itself was done");
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "a leftover trash folder is never `no changes`:\n{out}");
    assert!(out.contains(".flowloom-trash"), "{out}");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!trash(&env).exists());
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
    env.fsck();
}

/// A kill after the registration was dropped (the folder waits in the trash, checked), then
/// a second kill part-way through the deletion that finishes it: the deletion, once
/// started, is recorded as such, so the half-deleted folder is finished by the next apply,
/// never blocked as "changed in the trash" nor moved back.
#[test]
fn a_kill_part_way_through_finishing_a_trashed_folder_is_finished_too() {
    let env = orphan();
    let (code, _, err) = run(env
        .flowloom()
        .env("FLOWLOOM_FAILPOINT", "remove:unregistered")
        .args(["apply", "--yes"]));
    assert_eq!(code, -1, "the failpoint did not fire: {err}");
    let (code, _, err) = run(env
        .flowloom()
        .env("FLOWLOOM_FAILPOINT", "remove:deleting")
        .args(["apply", "--yes"]));
    assert_eq!(code, -1, "the kill did not land inside the finishing deletion: {err}");
    assert!(trash(&env).exists(), "part of it is left");
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("0 blocked") && !out.contains(" back"), "{out}");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!env.path(GONE).exists(), "never moved back into the root");
    assert!(!trash(&env).exists());
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
    env.fsck();
}

#[test]
fn a_read_only_folder_never_stops_a_removal_of_root() {
    let env = orphan();
    ignore(&env, "gocache");
    let cache = env.path(&format!("{GONE}/gocache"));
    env.write(&format!("{GONE}/gocache/mod/pkg@v1.0.0/a.go"), "package a\n");
    read_only_tree(&cache);
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!env.path(GONE).exists());
    assert!(!trash(&env).exists());
}

/// An environment handed to the unprivileged user `nobody` (where the tests run as root
/// and `setpriv` exists): every file of it is theirs, and git run as root accepts that.
fn as_nobody() -> Option<TestEnv> {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let setpriv = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !root || !setpriv {
        return None;
    }
    let env = orphan();
    let config = env.home().join(".gitconfig");
    std::fs::write(&config, "[safe]\n\tdirectory = *\n").expect("config");
    set_mode(env.tmp.path(), 0o755);
    let bin = env.tmp.path().join("flowloom-bin");
    std::fs::copy(assert_cmd::cargo::cargo_bin("flowloom"), &bin).expect("copy the binary");
    set_mode(&bin, 0o755);
    Some(env)
}

fn chown(path: &Path, owner: &str) {
    let out = Command::new("chown")
        .args(["-R", owner])
        .arg(path)
        .output()
        .expect("chown");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn run_as_nobody(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new("setpriv");
    hermetic(&mut cmd, &env.home());
    cmd.current_dir(&env.repo)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env.tmp.path().join("flowloom-bin"))
        .args(args);
    run(&mut cmd)
}

#[test]
fn a_read_only_folder_never_stops_a_removal_of_an_ordinary_user() {
    let Some(env) = as_nobody() else { return };
    ignore(&env, "gocache");
    env.write(&format!("{GONE}/gocache/mod/pkg@v1.0.0/a.go"), "package a\n");
    env.write(&format!("{GONE}/gocache/mod/pkg@v1.0.0/sub/b.go"), "package b\n");
    chown(env.tmp.path(), "65534:65534");
    read_only_tree(&env.path(&format!("{GONE}/gocache")));
    let (code, out, err) = run_as_nobody(&env, &["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!env.path(GONE).exists());
    assert!(!trash(&env).exists());
    let (code, out, _) = run_as_nobody(&env, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
}

/// An ignored folder the user cannot read (mode 000) hides what is in it from every check:
/// a repository of its own in there blocks the removal as one that could not be read,
/// never deleted unseen; once readable, the usual rule decides.
#[test]
fn an_unreadable_folder_may_hide_a_repository_so_it_blocks() {
    let Some(env) = as_nobody() else { return };
    ignore(&env, "sealed");
    let tool = env.path(&format!("{GONE}/sealed/tool"));
    nested_repo(&env, &tool);
    chown(env.tmp.path(), "65534:65534");
    let sealed = env.path(&format!("{GONE}/sealed"));
    set_mode(&sealed, 0o000);
    let (code, out, err) = run_as_nobody(&env, &["apply", "--yes", "--force"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("sealed"), "says where: {out}");
    set_mode(&sealed, 0o755);
    assert!(tool.join(".git").is_dir(), "the hidden repository was deleted");
    let (code, out, _) = run_as_nobody(&env, &["apply", "--yes", "--force"]);
    assert_eq!(code, 1, "readable, its unpushed commit blocks: {out}");
    assert!(out.contains("repository of its own (sealed/tool)"), "{out}");
}

/// A file the user cannot delete (in a folder someone else owns): the removal fails after
/// its deletion started; what is left stays in the trash, as a step every plan shows and
/// every apply tries again, and is never moved back. Once it can be deleted, it is.
#[test]
fn an_undeletable_file_leaves_a_step_to_finish_never_a_folder_moved_back() {
    let Some(env) = as_nobody() else { return };
    ignore(&env, "owned");
    env.write(&format!("{GONE}/owned/by-root/file"), "x\n");
    chown(env.tmp.path(), "65534:65534");
    let by_root = env.path(&format!("{GONE}/owned/by-root"));
    chown(&by_root, "0:0");
    for attempt in 0..2 {
        let (code, out, err) = run_as_nobody(&env, &["apply", "--yes"]);
        // The first fails in the removal itself; the next one's try is a housekeeping
        // step, which warns.
        assert!(attempt > 0 || code == 1, "attempt {attempt}: {out}\n{err}");
        assert!(
            err.contains("by-root") || out.contains("by-root"),
            "says where: {out}\n{err}"
        );
        assert!(!env.path(GONE).exists(), "attempt {attempt}: moved back into the root");
        let (code, out, _) = run_as_nobody(&env, &["plan", "--detailed-exitcode"]);
        assert_eq!(code, 2, "attempt {attempt}: nothing to do while it is there?\n{out}");
        assert!(out.contains(".flowloom-trash"), "{out}");
    }
    let left = std::fs::read_dir(trash(&env))
        .expect("trash")
        .flatten()
        .next()
        .expect("left");
    chown(&left.path(), "65534:65534");
    let (code, out, err) = run_as_nobody(&env, &["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!trash(&env).exists());
    let (code, out, _) = run_as_nobody(&env, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        env.worktrees(),
        vec![("sessions/shell-instance-keep".into(), "session/keep".into())]
    );
}

/// Everything agrees after a converging apply: git's worktrees, the ownership record, the
/// folders in the root (no trash, no leftover tree), `git fsck`, an empty plan.
fn agrees(env: &TestEnv, ids: &[&str], what: &str) {
    let expected: Vec<(String, String)> = ids
        .iter()
        .map(|id| (format!("sessions/shell-instance-{id}"), format!("session/{id}")))
        .collect();
    assert_eq!(env.worktrees(), expected, "{what}");
    let porcelain = env.git(&["worktree", "list", "--porcelain"]);
    assert!(!porcelain.contains("locked"), "{what}: {porcelain}");
    for (path, _) in &expected {
        assert_eq!(
            env.git_in(&env.path(path), &["status", "--porcelain"]),
            "",
            "{what}: {path}"
        );
    }
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.repo.join(".git/flowloom/owned.json")).expect("record"))
            .expect("json");
    let mut recorded: Vec<(String, String)> = record["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| {
            assert_eq!(s["state"], "created", "{what}: {s}");
            assert!(s.get("trash").is_none(), "{what}: {s}");
            let path = s["path"].as_str().expect("path");
            let rel = Path::new(path)
                .strip_prefix(env.repo.canonicalize().expect("canonical"))
                .expect("in the repo");
            (
                rel.display().to_string(),
                s["branch"].as_str().expect("branch").to_owned(),
            )
        })
        .collect();
    recorded.sort();
    assert_eq!(recorded, expected, "{what}: the record");
    assert!(record.get("deleting").is_none(), "{what}: {record}");
    let mut folders: Vec<String> = std::fs::read_dir(env.path("sessions"))
        .expect("root")
        .flatten()
        .map(|e| format!("sessions/{}", e.file_name().to_string_lossy()))
        .collect();
    folders.sort();
    let wanted: Vec<String> = expected.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(folders, wanted, "{what}: a folder left in the root");
    env.fsck();
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{what}: not converged\n{out}");
}

/// Applies that remove one session (forced: with unmerged work to archive) and create
/// another, killed at each failpoint (proven to have fired) and then at spread-out moments
/// with a real `kill -9`: the next apply converges every time.
#[test]
fn repeated_kills_while_applies_remove_and_create_converge() {
    let env = TestEnv::new();
    for i in 0..300 {
        env.write(&format!("bulk/d{}/f{i}.txt", i % 20), &format!("{i}\n").repeat(20));
    }
    env.commit("bulk");
    let sets: [(&str, [&str; 2]); 2] = [
        ("[sessions.a]\n[sessions.b]\n", ["a", "b"]),
        ("[sessions.b]\n[sessions.c]\n", ["b", "c"]),
    ];
    env.manifest(sets[0].0);
    env.apply();
    let failpoints = flowloom::apply::FAILPOINTS;
    for round in 0..failpoints.len() + 8 {
        let (manifest, ids) = sets[(round + 1) % 2];
        let leaving = sets[round % 2].1.iter().find(|id| !ids.contains(id)).expect("one goes");
        let wt = env.path(&format!("sessions/shell-instance-{leaving}"));
        env.commit_file(&wt, "work.txt", &format!("round {round}\n"), "work");
        env.manifest(manifest);
        let what = match failpoints.get(round) {
            Some(step) => {
                let (code, _, err) = run(env
                    .flowloom()
                    .env("FLOWLOOM_FAILPOINT", step)
                    .args(["apply", "--yes", "--force"]));
                assert_eq!(code, -1, "{step}: the failpoint did not fire\n{err}");
                format!("killed at {step}")
            }
            None => {
                let mut child = env
                    .flowloom()
                    .args(["apply", "--yes", "--force"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("spawn");
                let wait = std::time::Duration::from_millis(((round * 53) % 300) as u64);
                std::thread::sleep(wait);
                let _ = child.kill();
                let _ = child.wait();
                format!("killed after {wait:?}")
            }
        };
        let (code, out, err) = env.run(&["apply", "--yes", "--force"]);
        assert_eq!(code, 0, "{what}: apply after the kill failed\n{out}\n{err}");
        agrees(&env, &ids, &what);
    }
}

// ---- archive refs ----

/// SPEC §11.4: archiving `feat` and later `feat/x` (git cannot hold `…/feat` beside
/// `…/feat/x`), and `feat` a second time: every archive is kept, none overwritten, each
/// printed with how to restore it.
#[test]
fn archives_of_feat_and_feat_x_never_clash() {
    let env = TestEnv::new();
    let archive_of = |branch: &str, text: &str| {
        env.manifest(&format!("[sessions.s]\nbranch = \"{branch}\"\n"));
        env.apply();
        let wt = env.path("sessions/shell-instance-s");
        env.commit_file(&wt, "work.txt", text, branch);
        let tip = env.git(&["rev-parse", branch]);
        env.manifest("");
        let (code, out, err) = env.run(&["apply", "--yes", "--force"]);
        assert_eq!(code, 0, "{branch}:\n{out}\n{err}");
        assert!(out.contains("git branch"), "how to restore it: {out}");
        (tip, out)
    };
    let (feat, out) = archive_of("feat", "first\n");
    assert!(out.contains("refs/flowloom/archive/1/feat"), "{out}");
    let (feat_x, out) = archive_of("feat/x", "x\n");
    assert!(out.contains("refs/flowloom/archive/2/feat/x"), "{out}");
    let (feat_again, _) = archive_of("feat", "second\n");
    assert_eq!(env.git(&["rev-parse", "refs/flowloom/archive/1/feat"]), feat);
    assert_eq!(env.git(&["rev-parse", "refs/flowloom/archive/2/feat/x"]), feat_x);
    assert_eq!(env.git(&["rev-parse", "refs/flowloom/archive/3/feat"]), feat_again);
    env.git(&["branch", "restored", "refs/flowloom/archive/2/feat/x"]);
    assert_eq!(env.git(&["rev-parse", "restored"]), feat_x);
    env.fsck();
}
