//! Escapes and wrong targets, the variations (SPEC §8, §11.4): every variable that names
//! the caller's place is dropped for what runs in a session (`GIT_CONFIG`, a `pre-receive`
//! hook's quarantine) and by the shell function once it moves the shell; a session's folder
//! that is there but is not a worktree of this repository (another repository's worktree
//! or clone, a copy of another session, a plain folder) is refused by every command that
//! would run or point into it; invisible characters never reach the terminal raw.

use std::path::Path;

use crate::common::{TestEnv, hermetic, run};

/// A second repository beside the test's, with one commit.
fn other_repository(env: &TestEnv) -> std::path::PathBuf {
    let other = env.tmp.path().join("other");
    env.git_in(env.tmp.path(), &["init", "-q", "-b", "main", "other"]);
    std::fs::write(other.join("OTHER.md"), "other\n").expect("write");
    env.git_in(&other, &["add", "-A"]);
    env.git_in(&other, &["commit", "-q", "-m", "other"]);
    other
}

#[test]
fn git_config_and_a_quarantine_of_the_caller_never_reach_a_session() {
    let env = TestEnv::new();
    let other = other_repository(&env);
    let other_config = std::fs::read(other.join(".git/config")).expect("config");
    // The hook writes down what it was given.
    let hook = env.path(".git/hooks/post-checkout");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho \"${GIT_CONFIG-unset} ${GIT_QUARANTINE_PATH-unset}\" > hook-saw.txt\n",
    )
    .expect("hook");
    crate::common::set_executable(&hook);
    env.manifest("[sessions.a]\n");
    let callers = |cmd: &mut std::process::Command| {
        cmd.env("GIT_CONFIG", other.join(".git/config"))
            .env("GIT_QUARANTINE_PATH", other.join(".git/objects/incoming-x"));
    };
    let mut apply = env.flowloom();
    apply.args(["apply", "--yes"]);
    callers(&mut apply);
    let (code, out, err) = run(&mut apply);
    assert_eq!(code, 0, "{out}\n{err}");
    let wt = env.path("sessions/shell-instance-a");
    assert_eq!(
        std::fs::read_to_string(wt.join("hook-saw.txt")).expect("hook ran"),
        "unset unset\n"
    );
    std::fs::remove_file(wt.join("hook-saw.txt")).expect("rm");

    // An agent's `git config` and commit through `run`: both on the session.
    let script =
        "git config agent.was here && echo work > agent.txt && git add agent.txt && git commit -q -m agent-work";
    let mut agent = env.flowloom();
    agent.args(["run", "a", "--", "sh", "-c", script]);
    callers(&mut agent);
    let (code, out, err) = run(&mut agent);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(env.git(&["log", "-1", "--format=%s", "session/a"]).trim(), "agent-work");
    assert_eq!(env.git(&["config", "agent.was"]).trim(), "here");
    assert_eq!(
        std::fs::read(other.join(".git/config")).expect("config"),
        other_config,
        "`git config` in the session wrote the caller's GIT_CONFIG"
    );
    env.fsck();
}

/// A diagnostic's words on one line, without the frame miette wraps them in.
fn flat(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ")
}

/// `path`, `run`, `setup` and `merge` of session `a` refuse its folder (`why` in the
/// error): nothing printed, nothing run, nothing landed on `main`.
fn refused_as_foreign(env: &TestEnv, folder: &Path, why: &str) {
    let run = |args: &[&str]| {
        let (code, out, err) = env.run(args);
        (code, out, flat(&err))
    };
    let marker = folder.join("pwned");
    let main_before = env.git(&["rev-parse", "main"]);
    let (code, out, err) = run(&["path", "a"]);
    assert_eq!((code, out.as_str()), (1, ""), "path printed {out}\n{err}");
    assert!(err.contains(why), "path: {err}");
    let touch = format!("touch {}", marker.display());
    let (code, out, err) = run(&["run", "a", "--", "sh", "-c", &touch]);
    assert_eq!(code, 1, "run: {out}\n{err}");
    assert!(err.contains(why), "run: {err}");
    assert!(
        !marker.exists(),
        "run ran in a folder that is not this repository's session"
    );
    let (code, out, err) = run(&["setup", "a"]);
    assert_eq!(code, 1, "setup: {out}\n{err}");
    assert!(err.contains(why), "setup: {err}");
    assert!(
        !marker.exists(),
        "setup ran in a folder that is not this repository's session"
    );
    let (code, out, err) = run(&["merge", "--yes", "a"]);
    assert_eq!(code, 1, "merge: {out}\n{err}");
    assert!(err.contains(why), "merge: {err}");
    assert_eq!(env.git(&["rev-parse", "main"]), main_before, "merge landed");
}

#[test]
fn a_session_folder_that_is_not_a_worktree_of_this_repository_is_refused() {
    const NOT_OURS: &str = "is not a worktree of this repository";
    let env = TestEnv::new();
    let other = other_repository(&env);
    env.manifest("[defaults]\nsetup = [\"touch pwned\"]\n[sessions.a]\n[sessions.b]\n");
    let (code, _, err) = env.run(&["trust"]);
    assert_eq!(code, 0, "{err}");
    env.apply();
    let folder = env.path("sessions/shell-instance-a");
    let session_b = env.path("sessions/shell-instance-b");
    std::fs::remove_file(folder.join("pwned")).expect("setup ran");
    std::fs::remove_file(session_b.join("pwned")).expect("setup ran");
    // Work on `a` that a merge would land.
    env.commit_file(&folder, "a.txt", "a\n", "a work");
    env.commit_file(&session_b, "b.txt", "b\n", "b work");
    let detach = |env: &TestEnv| {
        // Unregister `a` (its branch stays), so that its folder can be replaced.
        env.git(&["worktree", "remove", "--force", &folder.to_string_lossy()]);
    };
    detach(&env);

    // Another repository's linked worktree where `a` belongs: git there works on `other`.
    env.git_in(
        &other,
        &["worktree", "add", "-q", "-b", "stolen", &folder.to_string_lossy()],
    );
    refused_as_foreign(&env, &folder, NOT_OURS);
    assert_eq!(
        env.git_in(&other, &["log", "-1", "--format=%s", "stolen"]).trim(),
        "other"
    );
    env.git_in(&other, &["worktree", "remove", "--force", &folder.to_string_lossy()]);

    // A clone of its own.
    env.git_in(
        env.tmp.path(),
        &["clone", "-q", &other.to_string_lossy(), &folder.to_string_lossy()],
    );
    refused_as_foreign(&env, &folder, NOT_OURS);
    std::fs::remove_dir_all(&folder).expect("rm");

    // A copy of session `b`'s folder: its `.git` names `b`'s registration, whose branch
    // and index git would then use.
    let copied = std::process::Command::new("cp")
        .args(["-a", &session_b.to_string_lossy(), &folder.to_string_lossy()])
        .status()
        .expect("cp");
    assert!(copied.success());
    refused_as_foreign(&env, &folder, NOT_OURS);
    assert_eq!(env.git(&["log", "-1", "--format=%s", "session/b"]).trim(), "b work");
    std::fs::remove_dir_all(&folder).expect("rm");

    // A plain folder.
    std::fs::create_dir_all(&folder).expect("mkdir");
    refused_as_foreign(&env, &folder, NOT_OURS);
    std::fs::remove_dir_all(&folder).expect("rm");

    // Its own worktree again: every command works.
    env.apply();
    let (code, out, err) = env.run(&["path", "a"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(Path::new(out.trim()), folder.canonicalize().expect("canonical"));
    let (code, _, err) = env.run(&["run", "a", "--", "true"]);
    assert_eq!(code, 0, "{err}");
    env.fsck();
}

/// The shell function in `program`, with the caller's git variables naming the main
/// repository exported: after `flowloom cd a` (and `flowloom new b`) git works on the
/// session it is in; the user's own settings stay.
fn shell_leaves_the_callers_place(program: &str) {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    let bin = assert_cmd::cargo::cargo_bin("flowloom");
    let bin_dir = bin.parent().expect("bin dir").display().to_string();
    let git_dir = env.path(".git");
    let (init, export) = if program == "fish" {
        ("flowloom shell-init fish | source".to_owned(), "set -gx")
    } else {
        (format!("eval \"$(flowloom shell-init {program})\""), "export")
    };
    // The caller's place, exported again before each move.
    let place = format!(
        "{export} GIT_DIR={}\n{export} GIT_WORK_TREE={}\n",
        git_dir.display(),
        env.repo.display()
    )
    .replace("GIT_DIR=", if program == "fish" { "GIT_DIR " } else { "GIT_DIR=" })
    .replace(
        "GIT_WORK_TREE=",
        if program == "fish" {
            "GIT_WORK_TREE "
        } else {
            "GIT_WORK_TREE="
        },
    );
    let script = format!(
        "{init}\n{place}flowloom cd a; or exit 10\n\
         git rev-parse --abbrev-ref HEAD\n\
         echo \"ceiling=$GIT_CEILING_DIRECTORIES\"\n\
         cd {repo}\n{place}flowloom new b > /dev/null; or exit 11\n\
         git rev-parse --abbrev-ref HEAD\n",
        repo = env.repo.display()
    );
    let script = if program == "fish" {
        script
    } else {
        script.replace("; or exit", " || exit")
    };
    let mut cmd = std::process::Command::new(program);
    hermetic(&mut cmd, &env.home());
    cmd.current_dir(&env.repo)
        .env(
            "PATH",
            format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default()),
        )
        .env("GIT_INDEX_FILE", git_dir.join("index"))
        .env("GIT_CEILING_DIRECTORIES", env.tmp.path().join("nowhere"))
        .args(["-c", &script]);
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{program}: {out}\n{err}");
    let ceiling = format!("ceiling={}", env.tmp.path().join("nowhere").display());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["session/a", ceiling.as_str(), "session/b"],
        "{program}: git after the move worked on the caller's repository\n{err}"
    );
}

#[test]
fn the_shell_function_drops_the_callers_git_place_when_it_moves() {
    shell_leaves_the_callers_place("bash");
    for program in ["zsh", "fish"] {
        if std::process::Command::new(program)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            shell_leaves_the_callers_place(program);
        }
    }
}

#[test]
fn invisible_and_direction_marks_are_shown_escaped_and_json_keeps_them() {
    let env = TestEnv::new();
    // A zero-width space, a right-to-left mark, a word joiner, an Arabic letter mark and a
    // byte order mark: `a<ZWSP>` shows as `a`. The joiner in the emoji is kept.
    let purpose = "ad\u{200b}min \u{200f}x\u{2060}y\u{61c}z\u{feff}w \u{1f468}\u{200d}\u{1f4bb}";
    env.manifest(&format!(
        "[sessions.a]\npurpose = \"{purpose}\"\n[sessions.b]\nbase = \"ma\u{200b}in\"\n"
    ));
    env.git(&["branch", "session/zw\u{200b}"]);
    let mut shown = String::new();
    for args in [
        &["status", "--wide"][..],
        &["plan"],
        &["apply", "--yes"],
        &["status", "--wide"],
    ] {
        let (_, out, err) = env.run(args);
        shown.push_str(&out);
        shown.push_str(&err);
    }
    for bad in ['\u{200b}', '\u{200f}', '\u{2060}', '\u{61c}', '\u{feff}'] {
        assert!(!shown.contains(bad), "{bad:?} reached the terminal:\n{shown}");
    }
    assert!(shown.contains("ad\\u200bmin"), "{shown}");
    assert!(
        shown.contains("\u{1f468}\u{200d}\u{1f4bb}"),
        "the emoji was broken up: {shown}"
    );
    let (code, out, err) = env.run(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let sessions = json["sessions"].as_array().expect("sessions");
    assert!(
        sessions.iter().any(|s| s["purpose"] == purpose),
        "JSON means what the manifest says: {out}"
    );
}

#[test]
fn a_command_run_from_inside_another_session_gets_only_its_own_sessions_variables() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\nports = [\"web\", \"db\"]\n[sessions.b]\nports = [\"web\"]\n");
    env.apply();
    let bin = assert_cmd::cargo::cargo_bin("flowloom");
    // An agent in `a` runs a command in `b` (and, through a shell function's variables,
    // asks to move a shell).
    let inner = format!("{} run b -- env", bin.display());
    let mut outer = env.flowloom();
    outer
        .args(["run", "a", "--", "sh", "-c", &inner])
        .env("FLOWLOOM_CD_FILE", env.tmp.path().join("cd-file"))
        .env("FLOWLOOM_SHELL_PID", "1");
    let (code, out, err) = run(&mut outer);
    assert_eq!(code, 0, "{out}\n{err}");
    let mut seen: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("FLOWLOOM_"))
        .map(|l| l.split('=').next().unwrap_or(l))
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        [
            "FLOWLOOM_BRANCH",
            "FLOWLOOM_PORT_WEB",
            "FLOWLOOM_SESSION",
            "FLOWLOOM_WORKTREE"
        ],
        "`b`'s command saw another session's variables: {out}"
    );
    assert!(out.contains("FLOWLOOM_SESSION=b\n"), "{out}");
}

#[test]
fn path_never_prints_a_hand_made_worktree_path_it_cannot_print_as_it_is() {
    let env = TestEnv::new();
    env.manifest("");
    std::fs::create_dir_all(env.path("sessions")).expect("mkdir");
    // Worktrees made by hand in the root, their names holding a newline and an escape.
    for (name, branch) in [("v\nFAKE LINE", "session/vv"), ("w\u{1b}[2J", "session/ww")] {
        env.git(&["worktree", "add", "-q", "-b", branch, &format!("sessions/{name}")]);
    }
    for id in ["vv", "ww"] {
        let (code, out, err) = env.run(&["path", id]);
        assert_eq!((code, out.as_str()), (1, ""), "{id}: {out}\n{err}");
        assert!(err.contains("control character"), "{id}: {err}");
        assert!(!err.contains('\u{1b}') && !err.contains("\nFAKE"), "{id}: {err}");
    }
}

/// As `git -C DIR`: a relative `GIT_DIR` (and `GIT_WORK_TREE`) is read from DIR, not from
/// where flowloom was started, which may be another repository.
#[test]
fn minus_c_reads_a_relative_git_dir_from_its_folder_as_git_does() {
    let env = TestEnv::new();
    env.manifest("[sessions.mine]\n");
    env.apply();
    let other = other_repository(&env);
    std::fs::write(other.join("flowloom.toml"), "[sessions.theirs]\n").expect("manifest");
    let git_sees = env.git_output(
        &env.repo,
        &["-C", &other.to_string_lossy(), "rev-parse", "--absolute-git-dir"],
    );
    assert!(
        String::from_utf8_lossy(&git_sees.stdout).contains("other"),
        "the oracle"
    );
    let mut cmd = env.flowloom();
    cmd.args(["-C", &other.to_string_lossy(), "new", "x"])
        .env("GIT_DIR", ".git")
        .env("GIT_WORK_TREE", ".");
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        env.git_in(&other, &["branch", "--list", "session/x"])
            .contains("session/x"),
        "`new` made nothing in the repository -C named"
    );
    assert!(
        env.git(&["branch", "--list", "session/x"]).is_empty(),
        "`new` made its branch in the caller's repository"
    );
    let mut cmd = env.flowloom();
    cmd.args(["-C", &other.to_string_lossy(), "path", "theirs"])
        .env("GIT_DIR", ".git");
    let (code, _, err) = run(&mut cmd);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("has no worktree"), "path read another repository: {err}");
}

/// A program that reads `PWD` (as many build tools and scripts do, rather than asking the
/// system) works in the session, not where flowloom was started.
#[test]
fn run_and_setup_set_pwd_to_the_session() {
    let env = TestEnv::new();
    env.manifest("[defaults]\nsetup = [\"printenv PWD > setup-pwd.txt\"]\n[sessions.a]\n");
    let (code, _, err) = env.run(&["trust"]);
    assert_eq!(code, 0, "{err}");
    let mut apply = env.flowloom();
    apply.args(["apply", "--yes"]).env("PWD", &env.repo);
    let (code, out, err) = run(&mut apply);
    assert_eq!(code, 0, "{out}\n{err}");
    let wt = env.path("sessions/shell-instance-a").canonicalize().expect("session");
    assert_eq!(
        std::fs::read_to_string(wt.join("setup-pwd.txt")).expect("setup ran"),
        format!("{}\n", wt.display())
    );
    let mut cmd = env.flowloom();
    cmd.args(["run", "a", "--", "printenv", "PWD"]).env("PWD", &env.repo);
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("{}\n", wt.display()),
        "run's command was told it is in the caller's folder"
    );
}
