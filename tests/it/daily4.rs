//! Issue 17, attacked from outside on the agent's day of SPEC §11: moves, late copies,
//! teardown and `new --branch`. Each test failed before its fix.

use std::path::{Path, PathBuf};

use crate::common::{TestEnv, run};

fn plan(env: &TestEnv) -> String {
    let (code, out, err) = env.run(&["plan"]);
    assert!(code == 0 || code == 1, "plan failed: {err}");
    out
}

fn session(env: &TestEnv, id: &str) -> PathBuf {
    env.path(&format!("sessions/shell-instance-{id}"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn record(env: &TestEnv) -> String {
    read(&env.path(".git/flowloom/owned.json"))
}

/// SPEC §8: flowloom never writes through a symlink. A symlink to an empty folder at a
/// session's path is a folder in the way (not "an empty folder" to move or check out
/// into), for a move (a changed root) as for a creation: the plan says so, nothing is
/// recorded or written, the folder it points to stays empty.
#[test]
fn a_symlink_to_an_empty_folder_at_a_sessions_path_is_in_the_way() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    let a = session(&env, "a");
    let moved = env.tmp.path().join("moved");
    let empty = env.tmp.path().join("empty");
    let outside = env.tmp.path().join("outside");
    for dir in [&moved, &empty, &outside] {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::os::unix::fs::symlink(&empty, moved.join("shell-instance-a")).expect("symlink");
    std::os::unix::fs::symlink(&outside, env.path("sessions/shell-instance-d")).expect("symlink");
    env.manifest("[defaults]\nroot = \"../moved\"\n[sessions.a]\n");
    let shown = plan(&env);
    assert!(shown.contains("exists and is not a registered worktree"), "{shown}");
    assert!(shown.contains("1 blocked"), "{shown}");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(a.join("README.md").is_file(), "the worktree left its place");
    assert!(!record(&env).contains("moving"), "{}", record(&env));
    assert!(plan(&env).contains("1 blocked"), "{}", plan(&env));
    // A new session whose path is a symlink to an empty folder elsewhere.
    env.manifest("[sessions.a]\n[sessions.d]\n");
    let shown = plan(&env);
    assert!(
        shown.contains("sessions/shell-instance-d exists and is not a registered worktree"),
        "{shown}"
    );
    let _ = env.run(&["apply", "--yes"]);
    for dir in [&empty, &outside] {
        assert_eq!(std::fs::read_dir(dir).expect("read").count(), 0, "{}", dir.display());
    }
    assert_eq!(env.worktrees().len(), 1);
    env.fsck();
}

fn ignored_data(env: &TestEnv) -> Vec<u8> {
    env.write(".gitignore", "data/\n");
    env.commit("ignore data");
    let bytes: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    std::fs::create_dir_all(env.path("data/deep")).expect("mkdir");
    std::fs::write(env.path("data/big.bin"), &bytes).expect("write");
    std::fs::write(env.path("data/deep/small.txt"), "small\n").expect("write");
    bytes
}

/// SPEC §11.3: a `copy` entry added after the session exists, killed in the middle of a
/// file: no half file is left for the next apply to take for a copy (it never overwrites),
/// and the copy is recorded unfinished, so that the next plan finishes it (a folder that
/// exists is not taken for a copied one) and then converges.
#[test]
fn a_late_copy_killed_in_the_middle_of_a_file_is_finished_whole() {
    let env = TestEnv::new();
    let bytes = ignored_data(&env);
    env.manifest("[sessions.a]\n");
    env.apply();
    let a = session(&env, "a");
    env.manifest("[defaults]\ncopy = [\"data/\"]\n[sessions.a]\n");
    assert!(plan(&env).contains("copies: data/"), "{}", plan(&env));
    let (code, _, _) = run(env
        .flowloom()
        .env("FLOWLOOM_FAILPOINT", "copy:half-file")
        .args(["apply", "--yes"]));
    assert_ne!(code, 0, "the failpoint did not fire");
    let big = a.join("data/big.bin");
    if big.exists() {
        assert_eq!(
            std::fs::read(&big).expect("read").len(),
            bytes.len(),
            "a half file is left"
        );
    }
    let shown = plan(&env);
    assert!(
        shown.contains("finish copy"),
        "the half copy is taken for done:\n{shown}"
    );
    env.apply();
    assert_eq!(std::fs::read(&big).expect("copied"), bytes);
    assert_eq!(read(&a.join("data/deep/small.txt")), "small\n");
    assert!(plan(&env).contains("No changes"), "{}", plan(&env));
    assert_eq!(env.git_in(&a, &["status", "--porcelain"]), "");
    env.fsck();
}

/// The same kill while a new session's copy runs: the file is whole or absent.
#[test]
fn a_copy_killed_in_the_middle_of_a_file_leaves_no_half_file() {
    let env = TestEnv::new();
    let bytes = ignored_data(&env);
    env.manifest("[defaults]\ncopy = [\"data/\"]\n[sessions.a]\n");
    let (code, _, _) = run(env
        .flowloom()
        .env("FLOWLOOM_FAILPOINT", "copy:half-file")
        .args(["apply", "--yes"]));
    assert_ne!(code, 0, "the failpoint did not fire");
    let big = session(&env, "a").join("data/big.bin");
    if big.exists() {
        assert_eq!(
            std::fs::read(&big).expect("read").len(),
            bytes.len(),
            "a half file is left"
        );
    }
    env.apply();
    assert_eq!(std::fs::read(&big).expect("copied"), bytes);
    assert!(plan(&env).contains("No changes"), "{}", plan(&env));
}

/// A repository whose committed manifest has `teardown`, trusted and applied.
fn with_teardown(text: &str) -> TestEnv {
    let env = TestEnv::new();
    let dir = env.tmp.path().display().to_string();
    env.manifest(&text.replace("TMP", &dir));
    env.commit("manifest");
    let (code, _, err) = env.run(&["trust"]);
    assert_eq!(code, 0, "{err}");
    env.apply();
    env
}

/// SPEC §11.3: a Ctrl-C while the teardown runs stops the removal before anything of it is
/// done — with `--force` too, and even when the command ignored it and succeeded. The
/// next apply runs the teardown again and removes the session.
#[test]
fn a_ctrl_c_during_teardown_stops_the_removal() {
    // The teardown interrupts flowloom (its parent) while `TMP/stop` exists.
    let teardown = "if [ -e TMP/stop ]; then rm TMP/stop; kill -INT $PPID; sleep 1; fi; echo ran >> TMP/log";
    for force in [false, true] {
        let env = with_teardown(&format!(
            "[defaults]\nteardown = [\"{teardown}\"]\n[sessions.a]\n[sessions.b]\n"
        ));
        let log = env.tmp.path().join("log");
        std::fs::write(env.tmp.path().join("stop"), "").expect("stop");
        let b = session(&env, "b");
        let args: &[&str] = if force {
            &["rm", "--yes", "--force", "b"]
        } else {
            env.manifest(&read(&env.path("flowloom.toml")).replace("[sessions.b]\n", ""));
            &["apply", "--yes"]
        };
        let (code, out, err) = env.run(args);
        assert_ne!(code, 0, "force {force}: {out}{err}");
        assert_eq!(read(&log), "ran\n", "force {force}");
        assert!(
            b.join("README.md").is_file(),
            "force {force}: removed after a Ctrl-C:\n{out}{err}"
        );
        assert!(env.branches().contains(&"session/b".to_owned()), "force {force}");
        let (code, out, err) = env.run(args);
        assert_eq!(code, 0, "force {force}: {out}{err}");
        assert!(!b.exists(), "force {force}");
        assert_eq!(read(&log), "ran\nran\n", "force {force}");
        env.fsck();
    }
}

/// SPEC §11.3 and §11.4: one trust covers setup and teardown, so a session whose only
/// commands are a teardown is not created untrusted — and the plan shows that teardown
/// whole (not an empty list of setup commands).
#[test]
fn an_untrusted_teardown_alone_is_shown_where_creation_is_blocked() {
    let env = TestEnv::new();
    env.manifest("[defaults]\nteardown = [\"docker compose down -v\"]\n[sessions.a]\n");
    let shown = plan(&env);
    assert!(shown.contains("1 blocked"), "{shown}");
    assert!(
        shown.contains("`docker compose down -v`"),
        "the teardown is not shown:\n{shown}"
    );
}

/// SPEC §11.3: a session whose folder was deleted by hand has nothing to run its teardown
/// in; the plan says that it does not run (the database it would drop is not forgotten
/// silently), needs no trust for it, and the registration is pruned.
#[test]
fn a_teardown_that_cannot_run_because_the_folder_is_gone_is_named() {
    let env = with_teardown("[defaults]\nteardown = [\"echo ran >> TMP/log\"]\n[sessions.a]\n[sessions.b]\n");
    std::fs::remove_dir_all(session(&env, "b")).expect("rm");
    env.manifest("[defaults]\nteardown = [\"echo ran >> TMP/log\"]\n[sessions.a]\n");
    let shown = plan(&env);
    assert!(shown.contains("prune worktree"), "{shown}");
    assert!(shown.contains("teardown not run (the folder is gone"), "{shown}");
    let (code, out, _) = env.run(&["plan", "--json"]);
    assert_eq!(code, 0);
    assert!(!out.contains("echo ran"), "JSON says the teardown runs:\n{out}");
    env.apply();
    assert!(!env.tmp.path().join("log").exists());
    assert_eq!(env.worktrees().len(), 1);
    assert!(plan(&env).contains("No changes"), "{}", plan(&env));
}

/// SPEC §11.2 all or nothing, as `git worktree add` refuses before writing anything: a
/// `new` whose creation is blocked (its branch checked out in another worktree or in the
/// main one, its path taken) exits 1 naming why, and declares nothing.
#[test]
fn new_on_a_branch_checked_out_elsewhere_writes_nothing() {
    let env = TestEnv::new();
    env.manifest("[defaults]\n");
    env.commit("manifest");
    env.git(&["branch", "feat"]);
    let elsewhere = env.tmp.path().join("elsewhere");
    env.git(&["worktree", "add", "-q", elsewhere.to_str().expect("utf8"), "feat"]);
    std::fs::create_dir_all(session(&env, "taken")).expect("mkdir");
    std::fs::write(session(&env, "taken").join("mine.txt"), "mine\n").expect("write");
    let cases: [(&[&str], &str); 3] = [
        (&["new", "x", "--branch", "feat"], "elsewhere"),
        (&["new", "y", "--branch", "main"], "main worktree"),
        (&["new", "taken"], "shell-instance-taken"),
    ];
    for (args, named) in cases {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(
            err.contains("was not created") && err.contains(named),
            "{args:?}: {err}"
        );
        assert!(err.contains("nothing was written"), "{args:?}: {err}");
        assert!(
            !env.path("flowloom.local.toml").exists(),
            "{args:?}: declared all the same"
        );
    }
    assert_eq!(read(&session(&env, "taken").join("mine.txt")), "mine\n");
    assert_eq!(env.worktrees().len(), 1);
    let shown = plan(&env);
    assert!(
        shown.contains("0 to create, 0 to update, 0 to remove, 0 blocked"),
        "{shown}"
    );
    // Once free, the same `new` goes through.
    env.git(&["worktree", "remove", elsewhere.to_str().expect("utf8")]);
    let (code, out, err) = env.run(&["new", "x", "--branch", "feat"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(read(&env.path("flowloom.local.toml")).contains("[sessions.x]"));
    env.fsck();
}

/// SPEC §11.3: a move to another file system copies, verifies, then deletes. A session
/// holding what cannot be copied (a FIFO, a running server's socket) is not moved: the
/// error names it, the partial copy on the other file system is deleted at once, and no
/// "interrupted move" is left for the next apply to "finish" over and over.
#[test]
fn a_move_across_file_systems_that_cannot_copy_everything_leaves_nothing_half_made() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    let a = session(&env, "a");
    std::fs::write(a.join("notes.txt"), "work\n").expect("write");
    let status = std::process::Command::new("mkfifo")
        .arg(a.join("server.pipe"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    env.manifest("[defaults]\nroot = \"../moved\"\n[sessions.a]\n");
    let other = |args: &[&str]| run(env.flowloom().env("FLOWLOOM_TEST_OTHER_DEVICE", "1").args(args));
    let (code, out, err) = other(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("server.pipe cannot be copied"), "{err}");
    let moved = env.tmp.path().join("moved");
    let left: Vec<_> = std::fs::read_dir(&moved)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left on the other file system: {left:?}");
    assert!(!record(&env).contains("moving"), "{}", record(&env));
    let (_, shown, _) = other(&["plan"]);
    assert!(!shown.contains("interrupted"), "{shown}");
    assert!(shown.contains("move worktree from"), "{shown}");
    assert_eq!(read(&a.join("notes.txt")), "work\n");
    assert_eq!(env.git_in(&a, &["status", "--porcelain"]), "?? notes.txt\n");
    env.fsck();
}

/// SPEC §11.3: a process working in a session blocks its move, also when it started after
/// the plan was made (while the prompt waited): checked again right before the move.
#[test]
fn a_process_that_starts_in_a_session_after_the_plan_blocks_its_move() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    let a = session(&env, "a");
    env.manifest("[defaults]\nroot = \"../moved\"\n[sessions.a]\n");
    let pid_file = env.tmp.path().join("pid");
    let start = format!(
        "a:cd {} && {{ sleep 30 >/dev/null 2>&1 </dev/null & echo $! > {}; }}",
        a.display(),
        pid_file.display()
    );
    let (code, out, err) = run(env
        .flowloom()
        .env("FLOWLOOM_TEST_BEFORE_RECHECK", &start)
        .args(["apply", "--yes"]));
    let pid = read(&pid_file).trim().to_owned();
    let still = a.join("README.md").is_file();
    let _ = std::process::Command::new("kill").arg(&pid).status();
    assert_eq!(code, 1, "{out}{err}");
    assert!(still, "moved from under a process started since the plan:\n{out}{err}");
    assert!(err.contains(&format!("process {pid}")), "{err}");
    assert!(!record(&env).contains("moving"), "{}", record(&env));
    // Once it is gone, the move goes through.
    std::thread::sleep(std::time::Duration::from_millis(200));
    env.apply();
    assert!(env.tmp.path().join("moved/shell-instance-a/README.md").is_file());
    env.fsck();
}
