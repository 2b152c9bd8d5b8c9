//! SPEC §11.2: `flowloom new` on a terminal shows untrusted setup commands and asks. Driven
//! through a real pseudo-terminal (util-linux `script`, where installed): `y` trusts and
//! runs the setup, `n` runs nothing and says how to trust it later, Ctrl-C at the prompt
//! makes no worktree and no branch.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{TestEnv, hermetic};

fn script_installed() -> bool {
    Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `flowloom new ID` on a terminal; once the `[y/N]` prompt shows, `answer` is typed.
/// Returns the exit code and everything the terminal showed.
fn new_on_a_terminal(env: &TestEnv, id: &str, answer: &[u8]) -> (i32, String) {
    let bin = assert_cmd::cargo::cargo_bin("flowloom");
    let mut cmd = Command::new("script");
    hermetic(&mut cmd, &env.home());
    let mut child = cmd
        .current_dir(&env.repo)
        .args(["-qec", &format!("{} new {id}", bin.display()), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script");
    let shown = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let shown = Arc::clone(&shown);
        let mut out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        })
    };
    let start = Instant::now();
    while !String::from_utf8_lossy(&shown.lock().expect("lock")).contains("[y/N]") {
        assert!(start.elapsed() < Duration::from_secs(60), "no prompt");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(answer).expect("type");
    stdin.flush().expect("flush");
    let status = child.wait().expect("wait");
    drop(stdin);
    let _ = reader.join();
    let text = String::from_utf8_lossy(&shown.lock().expect("lock")).into_owned();
    (status.code().unwrap_or(-1), text)
}

fn with_setup(env: &TestEnv) {
    env.manifest("[defaults]\nsetup = [\"touch setup-ran\"]\n");
}

#[test]
fn yes_at_the_prompt_trusts_and_runs_the_setup() {
    if !script_installed() {
        return;
    }
    let env = TestEnv::new();
    with_setup(&env);
    let (code, shown) = new_on_a_terminal(&env, "x", b"y\n");
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("$ touch setup-ran"), "the command is shown: {shown}");
    let session = env.repo.join("sessions/shell-instance-x");
    assert!(session.join("setup-ran").is_file(), "{shown}");
    assert_eq!(env.worktrees().len(), 1);
    env.fsck();
}

#[test]
fn no_at_the_prompt_runs_nothing_and_says_how_to_trust_later() {
    if !script_installed() {
        return;
    }
    let env = TestEnv::new();
    with_setup(&env);
    let (_, shown) = new_on_a_terminal(&env, "x", b"n\n");
    let session = env.repo.join("sessions/shell-instance-x");
    assert!(!session.join("setup-ran").exists(), "{shown}");
    assert!(shown.contains("flowloom trust"), "{shown}");
    env.fsck();
}

#[test]
fn ctrl_c_at_the_prompt_makes_no_worktree_and_no_branch() {
    if !script_installed() {
        return;
    }
    let env = TestEnv::new();
    with_setup(&env);
    let branches = env.branches();
    let (code, shown) = new_on_a_terminal(&env, "x", b"\x03");
    assert_eq!(code, 130, "{shown}");
    assert!(env.worktrees().is_empty(), "{shown}");
    assert_eq!(env.branches(), branches);
    assert!(!Path::new(&env.repo.join("sessions/shell-instance-x")).exists());
    // The lock was released: the next command does not wait for it.
    let (code, _, err) = env.run(&["plan"]);
    assert!(code == 0 || code == 2, "{err}");
    assert!(!err.contains("lock"), "{err}");
    env.fsck();
}
