//! Work lost or left behind, as an outside tester would try it next (SPEC §7, §11.4): a
//! nested repository whose commits are all pushed but whose work tree is not, a tree deeper
//! than `PATH_MAX`, the comments that begin the manifest, a read-only manifest.

use std::path::Path;

use crate::common::{GONE, TestEnv, orphan};

/// Hide `ignored/` in every worktree (a tool's clone or cache).
fn ignore(env: &TestEnv) {
    let exclude = env.repo.join(".git/info/exclude");
    let mut text = std::fs::read_to_string(&exclude).unwrap_or_default();
    text.push_str("\nignored/\n");
    std::fs::write(&exclude, text).expect("exclude");
}

/// A repository at `dir` with one commit, pushed whole to a bare remote of its own.
fn pushed_repo(env: &TestEnv, dir: &Path, name: &str) {
    crate::never_lose_work::nested_repo(env, dir);
    crate::never_lose_work::push(env, dir, name);
}

/// SPEC §11.4: pushed commits do not vouch for a nested repository's work tree. A changed,
/// staged or untracked file in it (in an ignored folder, where nothing else would see it),
/// files staged in a repository with no commit yet, a linked worktree of a repository
/// elsewhere, a `.git` symlink: each blocks the removal, `--force` too, until committed
/// and pushed.
#[test]
fn a_pushed_nested_repository_with_uncommitted_files_blocks_even_forced() {
    type Make = fn(&TestEnv, &Path);
    let cases: [(&str, &str, Make); 6] = [
        ("a changed file", "ignored/t", |env, wt| {
            pushed_repo(env, &wt.join("ignored/t"), "t");
            std::fs::write(wt.join("ignored/t/tool.txt"), "edited\n").expect("write");
        }),
        ("an untracked file", "ignored/t", |env, wt| {
            pushed_repo(env, &wt.join("ignored/t"), "t");
            std::fs::write(wt.join("ignored/t/notes.txt"), "mine\n").expect("write");
        }),
        ("a mode change", "ignored/t", |env, wt| {
            pushed_repo(env, &wt.join("ignored/t"), "t");
            crate::common::set_executable(&wt.join("ignored/t/tool.txt"));
        }),
        ("staged, no commit yet", "ignored/t", |env, wt| {
            let dir = wt.join("ignored/t");
            std::fs::create_dir_all(&dir).expect("mkdir");
            env.git_in(&dir, &["init", "-q"]);
            std::fs::write(dir.join("draft.txt"), "draft\n").expect("write");
            env.git_in(&dir, &["add", "draft.txt"]);
        }),
        (
            "a linked worktree of a repository elsewhere",
            "ignored/lwt",
            |env, wt| {
                let other = env.tmp.path().join("other");
                pushed_repo(env, &other, "other");
                std::fs::create_dir_all(wt.join("ignored")).expect("mkdir");
                let lwt = wt.join("ignored/lwt");
                env.git_in(&other, &["worktree", "add", "-q", "--detach", &lwt.to_string_lossy()]);
                std::fs::write(lwt.join("tool.txt"), "edited\n").expect("write");
            },
        ),
        ("a .git symlink", "ignored/sl", |env, wt| {
            let repo = env.tmp.path().join("gd");
            pushed_repo(env, &repo, "gd");
            let dir = wt.join("ignored/sl");
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::os::unix::fs::symlink(repo.join(".git"), dir.join(".git")).expect("symlink");
            std::fs::write(dir.join("tool.txt"), "edited\n").expect("write");
        }),
    ];
    for (what, rel, make) in cases {
        let env = orphan();
        ignore(&env);
        let wt = env.path(GONE);
        make(&env, &wt);
        for args in [&["apply", "--yes"][..], &["apply", "--yes", "--force"]] {
            let (code, out, _) = env.run(args);
            assert_eq!(code, 1, "{what} {args:?}: {out}");
            assert!(
                out.contains(&format!("repository of its own ({rel}) with 1 uncommitted file")),
                "{what}: {out}"
            );
            assert!(wt.join(rel).exists(), "{what} {args:?}: deleted");
        }
    }
    // Clean again, it goes like any pushed repository in an ignored folder.
    let env = orphan();
    ignore(&env);
    let wt = env.path(GONE);
    pushed_repo(&env, &wt.join("ignored/t"), "t");
    std::fs::write(wt.join("ignored/t/tool.txt"), "edited\n").expect("write");
    assert_eq!(env.run(&["apply", "--yes"]).0, 1);
    std::fs::write(wt.join("ignored/t/tool.txt"), "tool\n").expect("write");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!wt.exists());
}

/// Make `depth` nested folders `d` below `top` (each from its parent's descriptor: the whole
/// path is longer than `PATH_MAX`) and a file at the bottom.
fn deep_tree(top: &Path, depth: usize) {
    use rustix::fs::{Mode, OFlags};
    std::fs::create_dir_all(top).expect("mkdir");
    let flags = OFlags::RDONLY | OFlags::DIRECTORY;
    let mut dir = rustix::fs::open(top, flags, Mode::empty()).expect("open");
    for _ in 0..depth {
        rustix::fs::mkdirat(&dir, "d", Mode::from_raw_mode(0o755)).expect("mkdir");
        let next = rustix::fs::openat(&dir, "d", flags, Mode::empty()).expect("open");
        dir = next;
    }
    let file =
        rustix::fs::openat(&dir, "f", OFlags::WRONLY | OFlags::CREATE, Mode::from_raw_mode(0o644)).expect("create");
    rustix::io::write(&file, b"bottom\n").expect("write");
}

/// A tree deeper than `PATH_MAX` in an ignored folder (a runaway build, a recursive
/// symlink copied as folders): the check before the deletion reads it whole, as the plan
/// did, so one apply removes it and the next plan has nothing to do.
#[test]
fn a_tree_deeper_than_path_max_is_removed_and_plan_converges() {
    let env = orphan();
    ignore(&env);
    deep_tree(&env.path(&format!("{GONE}/ignored")), 2500);
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!env.path(GONE).exists());
    let (code, out, _) = env.run(&["plan"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("No changes"), "{out}");
    assert!(!env.path("sessions/.flowloom-trash").exists());
    env.fsck();
}

/// Removing the file's first session keeps the comments that begin the file, with no
/// blank line between them and the table too (the file's header, `#:schema` or not).
#[test]
fn rm_of_the_first_session_keeps_the_comments_that_begin_the_file() {
    for (before, after) in [
        (
            "#:schema ./s.json\n# Team sessions\n[sessions.a]\n[sessions.b]\n",
            "#:schema ./s.json\n# Team sessions\n[sessions.b]\n",
        ),
        (
            "# Team sessions\n[sessions.a]\n\n[sessions.b]\n",
            "# Team sessions\n\n[sessions.b]\n",
        ),
        (
            "# Team sessions\r\n[sessions.a]\r\n[sessions.b]\r\n",
            "# Team sessions\r\n[sessions.b]\r\n",
        ),
        // With a blank line, the comment below it is the table's own and goes with it.
        (
            "# Team sessions\n\n# about a\n[sessions.a]\n[sessions.b]\n",
            "# Team sessions\n\n[sessions.b]\n",
        ),
    ] {
        let env = TestEnv::new();
        env.manifest(before);
        env.apply();
        let (code, out, err) = env.run(&["rm", "--yes", "a"]);
        assert_eq!(code, 0, "{before:?}: {out}\n{err}");
        let text = std::fs::read_to_string(env.path("flowloom.toml")).expect("read");
        assert_eq!(text, after, "{before:?}");
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A read-only manifest file is never replaced behind its mode: every command that would
/// edit it refuses with the file's name before it removes, lands or writes anything.
#[test]
fn a_read_only_manifest_is_refused_before_anything_happens() {
    let env = TestEnv::new();
    env.manifest("# team\n[sessions.a]\n[sessions.b]\n");
    env.commit("manifest");
    env.apply();
    env.commit_file(&env.path("sessions/shell-instance-b"), "w.txt", "w\n", "work");
    set_mode(&env.path("flowloom.toml"), 0o444);
    let main_before = env.git(&["rev-parse", "main"]);
    for args in [
        &["rm", "--yes", "a"][..],
        &["merge", "--yes", "b"],
        &["new", "--shared", "c"],
        &["unshare", "a"],
    ] {
        let (code, _, err) = env.run(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("flowloom.toml is read-only"), "{args:?}: {err}");
    }
    assert_eq!(
        std::fs::read_to_string(env.path("flowloom.toml")).expect("read"),
        "# team\n[sessions.a]\n[sessions.b]\n"
    );
    assert_eq!(mode(&env.path("flowloom.toml")), 0o444);
    assert!(env.path("sessions/shell-instance-a").is_dir(), "rm removed the session");
    assert!(!env.path("sessions/shell-instance-c").exists());
    assert_eq!(env.git(&["rev-parse", "main"]), main_before, "merge landed");
    // The local layer alike.
    set_mode(&env.path("flowloom.toml"), 0o644);
    let (code, _, err) = env.run(&["new", "mine"]);
    assert_eq!(code, 0, "{err}");
    set_mode(&env.path("flowloom.local.toml"), 0o400);
    let (code, _, err) = env.run(&["rm", "--yes", "mine"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("flowloom.local.toml is read-only"), "{err}");
    assert!(env.path("sessions/shell-instance-mine").is_dir());
    assert_eq!(mode(&env.path("flowloom.local.toml")), 0o400);
}

/// A creation killed between its registration (locked `initializing`, flowloom's own lock)
/// and its folder: the folder is not there. Declared, the next apply makes it again;
/// dropped from the manifest, it prunes the registration. Never blocked for good by its
/// own lock (a lock a person set on a registered folder that is gone still blocks).
#[test]
fn a_creation_killed_before_its_folder_converges() {
    for keep_declared in [true, false] {
        let env = TestEnv::new();
        env.manifest("[sessions.a]\n");
        let (code, _, err) = crate::common::run(
            env.flowloom()
                .env("FLOWLOOM_FAILPOINT", "create:registered")
                .args(["apply", "--yes"]),
        );
        assert_eq!(code, -1, "the failpoint did not fire: {err}");
        let wt = env.path("sessions/shell-instance-a");
        if wt.exists() {
            std::fs::remove_dir_all(&wt).expect("rm");
        }
        if !keep_declared {
            env.manifest("");
        }
        let (code, out, err) = env.run(&["apply", "--yes"]);
        assert_eq!(code, 0, "declared: {keep_declared}: {out}\n{err}");
        let (_, out, _) = env.run(&["plan"]);
        assert!(out.starts_with("No changes"), "declared: {keep_declared}: {out}");
        assert_eq!(wt.is_dir(), keep_declared);
        let list = env.git(&["worktree", "list", "--porcelain"]);
        assert_eq!(list.contains("shell-instance-a"), keep_declared, "{list}");
        assert!(!list.contains("locked"), "{list}");
        env.fsck();
    }
}

/// SPEC §10, §11: a late copy (a `copy` entry added after the session was made) never
/// writes what git tracks in the session: a tracked file the agent deleted (from the work
/// tree, with `git rm`, or in a commit of its branch) stays deleted, and a tracked file
/// there stays as the agent left it. The plan says so; git's status of the session does
/// not change. An untracked file of a copied folder still arrives.
#[test]
fn a_late_copy_never_brings_back_a_tracked_file_the_agent_deleted() {
    let env = TestEnv::new();
    env.write(".gitignore", ".env\nconf/\n");
    env.commit("ignore");
    env.write(".env", "MAIN=1\n");
    env.write("conf/app.toml", "main\n");
    env.write("conf/other.toml", "other\n");
    env.manifest("[sessions.a]\n[sessions.b]\n[sessions.c]\n[sessions.d]\n");
    env.apply();
    let deletions: [(&str, &[&[&str]]); 4] = [
        ("a", &[]),
        ("b", &[&["rm", "-q", "--cached", ".env", "conf/app.toml"]]),
        (
            "c",
            &[&["rm", "-q", ".env", "conf/app.toml"], &["commit", "-q", "-m", "gone"]],
        ),
        ("d", &[]),
    ];
    let mut before = Vec::new();
    for (id, commands) in deletions {
        let wt = env.path(&format!("sessions/shell-instance-{id}"));
        std::fs::create_dir_all(wt.join("conf")).expect("mkdir");
        std::fs::write(wt.join(".env"), "BRANCH=1\n").expect("write");
        std::fs::write(wt.join("conf/app.toml"), "branch\n").expect("write");
        env.git_in(&wt, &["add", "-f", ".env", "conf/app.toml"]);
        env.git_in(&wt, &["commit", "-q", "-m", "tracked"]);
        for args in commands {
            env.git_in(&wt, args);
        }
        if id == "d" {
            std::fs::write(wt.join(".env"), "EDITED=1\n").expect("write");
        } else {
            for rel in [".env", "conf/app.toml"] {
                let _ = std::fs::remove_file(wt.join(rel));
            }
            // The folder goes too, so `conf/` is copied (merged file by file).
            let _ = std::fs::remove_dir(wt.join("conf"));
        }
        before.push((id, wt.clone(), env.git_in(&wt, &["status", "--porcelain"])));
    }
    env.manifest("[defaults]\ncopy = [\".env\", \"conf/\"]\n[sessions.a]\n[sessions.b]\n[sessions.c]\n[sessions.d]\n");
    let (code, shown, err) = env.run(&["plan"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        shown.contains("git tracks them there, never overwritten): .env"),
        "{shown}"
    );
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    for (id, wt, status) in before {
        assert_eq!(env.git_in(&wt, &["status", "--porcelain"]), status, "{id}");
        if id == "d" {
            assert_eq!(std::fs::read_to_string(wt.join(".env")).expect("kept"), "EDITED=1\n");
        } else {
            assert!(!wt.join(".env").exists(), "{id}: .env came back");
            assert!(!wt.join("conf/app.toml").exists(), "{id}: conf/app.toml came back");
            assert_eq!(
                std::fs::read_to_string(wt.join("conf/other.toml")).expect("copied"),
                "other\n"
            );
        }
    }
    env.fsck();
}

/// SPEC §11.4: a ref named as a folder of the archive refs (`refs/flowloom/archive`, or
/// `refs/flowloom` itself) leaves no room for an archive. A forced removal, which archives
/// first, is blocked in the plan with the ref named, and nothing is done (never a ref
/// store's error half-way); once that ref is gone, it archives and removes.
#[test]
fn a_ref_in_the_way_of_the_archives_blocks_a_forced_removal_before_anything() {
    for in_the_way in ["refs/flowloom/archive", "refs/flowloom"] {
        let env = TestEnv::new();
        env.manifest("[sessions.s]\n");
        env.apply();
        let wt = env.path("sessions/shell-instance-s");
        env.commit_file(&wt, "work.txt", "work\n", "work");
        let tip = env.git(&["rev-parse", "session/s"]);
        env.git(&["update-ref", in_the_way, "HEAD"]);
        env.manifest("");
        let (_, shown, _) = env.run(&["plan", "--force"]);
        assert!(
            shown.contains(&format!("`{in_the_way}` is in the way")),
            "{in_the_way}: {shown}"
        );
        let (code, out, err) = env.run(&["apply", "--yes", "--force"]);
        assert_ne!(code, 0, "{in_the_way}: {out}{err}");
        assert!(
            !format!("{out}{err}").contains("Not a directory"),
            "{in_the_way}: {out}{err}"
        );
        assert!(wt.join("work.txt").is_file(), "{in_the_way}: the worktree went");
        assert_eq!(env.git(&["rev-parse", "session/s"]), tip);
        env.git(&["update-ref", "-d", in_the_way]);
        let (code, out, err) = env.run(&["apply", "--yes", "--force"]);
        assert_eq!(code, 0, "{in_the_way}: {out}{err}");
        assert_eq!(env.git(&["rev-parse", "refs/flowloom/archive/1/session/s"]), tip);
        assert!(!wt.exists());
    }
}
