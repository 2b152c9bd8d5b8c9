//! SPEC §11.2 through the shell function of `shell-init`, in real bash, zsh and fish (where
//! installed): `flowloom new` leaves the shell in the new session; `flowloom rm` run from
//! inside that session is not blocked by the shell and leaves it in the main worktree;
//! `flowloom cd` without the function says how to get it.

use std::path::Path;

use crate::common::{TestEnv, hermetic, run};

fn shell(env: &TestEnv, program: &str, script: &str) -> (i32, String, String) {
    let bin = assert_cmd::cargo::cargo_bin("flowloom");
    let bin_dir = bin.parent().expect("bin dir").display().to_string();
    let mut cmd = std::process::Command::new(program);
    hermetic(&mut cmd, &env.home());
    run(cmd
        .current_dir(&env.repo)
        .env(
            "PATH",
            format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default()),
        )
        .args(["-c", script]))
}

fn installed(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn in_and_out(program: &str, init: &str) {
    let status = if program == "fish" { "$status" } else { "$?" };
    let env = TestEnv::new();
    env.manifest("");
    let main = env.repo.canonicalize().expect("repo");
    let script = format!(
        "{init}\nflowloom new agent-1 > /dev/null || exit 10\npwd\necho work > wip.txt\n\
         flowloom rm --yes agent-1 > /dev/null 2> /dev/null\necho \"blocked {status}\"\npwd\nrm wip.txt\n\
         flowloom rm --yes agent-1 > /dev/null || exit 12\npwd\n"
    );
    let (code, out, err) = shell(&env, program, &script);
    assert_eq!(code, 0, "{program}: {out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    let session = main
        .parent()
        .expect("parent")
        .join("repo/sessions/shell-instance-agent-1");
    let session = session.display().to_string();
    assert_eq!(
        lines.first().copied(),
        Some(session.as_str()),
        "{program}: new lands in it: {out}"
    );
    assert_eq!(lines.get(1).copied(), Some("blocked 1"), "{program}: {out}\n{err}");
    assert_eq!(
        lines.get(2).copied(),
        Some(session.as_str()),
        "{program}: a blocked rm stays: {out}"
    );
    assert_eq!(
        lines.get(3).map(Path::new),
        Some(main.as_path()),
        "{program}: rm from inside lands in the main worktree: {out}\n{err}"
    );
    assert!(!Path::new(&session).exists(), "{program}");
    assert!(env.worktrees().is_empty(), "{program}");
    env.fsck();
}

#[test]
fn bash_moves_into_a_new_session_and_out_of_a_removed_one() {
    in_and_out("bash", "eval \"$(flowloom shell-init bash)\"");
}

#[test]
fn zsh_moves_into_a_new_session_and_out_of_a_removed_one() {
    if installed("zsh") {
        in_and_out("zsh", "eval \"$(flowloom shell-init zsh)\"");
    }
}

#[test]
fn fish_moves_into_a_new_session_and_out_of_a_removed_one() {
    if installed("fish") {
        in_and_out("fish", "flowloom shell-init fish | source");
    }
}

#[test]
fn without_the_function_the_shell_pid_counts_for_nothing() {
    let env = TestEnv::new();
    env.manifest("");
    let (code, out, err) = env.run(&["new", "x"]);
    assert_eq!(code, 0, "{err}");
    let session = out.trim().to_owned();
    // A pid that is not flowloom's parent is not waved through: a process in the session
    // still blocks the removal.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .current_dir(&session)
        .spawn()
        .expect("sleep");
    let (code, _, err) = run(env
        .flowloom()
        .env("FLOWLOOM_SHELL_PID", sleeper.id().to_string())
        .args(["rm", "--yes", "x"]));
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(code, 1, "{err}");
    assert!(Path::new(&session).is_dir());
    let (code, _, err) = env.run(&["cd", "x"]);
    assert_eq!(code, 1);
    assert!(err.contains("shell-init"), "{err}");
}

/// `flowloom -C DIR new …` from outside the repository lands in the new session too, and
/// `flowloom -C DIR cd ID` goes there: the function finds the command after global options.
fn from_elsewhere(program: &str, init: &str) {
    let env = TestEnv::new();
    env.manifest("");
    let main = env.repo.canonicalize().expect("repo");
    let outside = env.tmp.path().canonicalize().expect("tmp");
    let script = format!(
        "{init}\ncd {out} || exit 9\nflowloom -C {repo} --color never new agent-2 > /dev/null || exit 10\npwd\n\
         cd {out} || exit 9\nflowloom -q -C {repo} cd agent-2 || exit 11\npwd\n",
        out = outside.display(),
        repo = main.display(),
    );
    let (code, out, err) = shell(&env, program, &script);
    assert_eq!(code, 0, "{program}: {out}\n{err}");
    let session = main.join("sessions/shell-instance-agent-2").display().to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [session.as_str(), session.as_str()], "{program}: {out}\n{err}");
}

#[test]
fn bash_new_with_a_directory_option_lands_in_the_session() {
    from_elsewhere("bash", "eval \"$(flowloom shell-init bash)\"");
}

#[test]
fn zsh_new_with_a_directory_option_lands_in_the_session() {
    if installed("zsh") {
        from_elsewhere("zsh", "eval \"$(flowloom shell-init zsh)\"");
    }
}

#[test]
fn fish_new_with_a_directory_option_lands_in_the_session() {
    if installed("fish") {
        from_elsewhere("fish", "flowloom shell-init fish | source");
    }
}
