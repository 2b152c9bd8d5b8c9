//! SPEC §11.2: `flowloom new` on a terminal shows untrusted setup commands and asks. Driven
//! through a real pseudo-terminal (util-linux `script`, where installed): `y` trusts and
//! runs the setup; `n`, end of input or Ctrl-C at the prompt leave nothing behind (all or
//! nothing, as `rm`): no declaration in either layer, no worktree, no branch, no port, the
//! lock free, and say how to trust it and run `new` again. Without a terminal the same.

use std::io::{Read, Write};
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

/// `flowloom new ARGS` on a terminal; once the `[y/N]` prompt shows, `meanwhile` runs and
/// `answer` is typed. Returns the exit code and everything the terminal showed.
fn new_on_a_terminal(env: &TestEnv, args: &str, answer: &[u8]) -> (i32, String) {
    new_on_a_terminal_with(env, args, &mut || {}, answer)
}

fn new_on_a_terminal_with(env: &TestEnv, args: &str, meanwhile: &mut dyn FnMut(), answer: &[u8]) -> (i32, String) {
    let bin = assert_cmd::cargo::cargo_bin("flowloom");
    let mut cmd = Command::new("script");
    hermetic(&mut cmd, &env.home());
    let mut child = cmd
        .current_dir(&env.repo)
        .args(["-qec", &format!("{} new {args}", bin.display()), "/dev/null"])
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
    meanwhile();
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
    env.manifest("[defaults]\nsetup = [\"touch setup-ran\"]\nports = [\"web\"]\n");
}

/// Nothing of session `id` is left: not declared in either layer (the committed manifest
/// as it was), no worktree or branch as git lists them, no port, the lock free.
fn nothing_left(env: &TestEnv, id: &str, manifest_before: &str, branches_before: &[String]) {
    assert_eq!(
        std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest"),
        manifest_before
    );
    let local = std::fs::read_to_string(env.path("flowloom.local.toml")).unwrap_or_default();
    assert!(!local.contains(&format!("[sessions.{id}]")), "{local}");
    let listed = env.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(
        listed.matches("worktree ").count(),
        1,
        "only the main worktree: {listed}"
    );
    assert_eq!(env.branches(), branches_before);
    assert!(!env.path(&format!("sessions/shell-instance-{id}")).exists());
    let ports = std::fs::read_to_string(env.home().join(".local/state/flowloom/ports.json")).unwrap_or_default();
    assert!(!ports.contains(id), "{ports}");
    let lock = env.path(".git/flowloom.lock");
    assert_eq!(
        std::fs::read(&lock).unwrap_or_default(),
        b"",
        "the lock holder is cleared"
    );
    // The lock is free: a command that takes it does not wait.
    let (code, out, err) = env.run(&["--lock-timeout", "0s", "apply", "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    env.fsck();
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
fn no_at_the_prompt_leaves_nothing_and_says_how_to_trust() {
    if !script_installed() {
        return;
    }
    let env = TestEnv::new();
    with_setup(&env);
    let manifest = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    let branches = env.branches();
    let (code, shown) = new_on_a_terminal(&env, "x", b"n\n");
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("flowloom trust"), "{shown}");
    assert!(shown.contains("flowloom new x"), "{shown}");
    assert!(shown.contains("nothing was"), "{shown}");
    nothing_left(&env, "x", &manifest, &branches);
}

#[test]
fn end_of_input_at_the_prompt_leaves_nothing() {
    if !script_installed() {
        return;
    }
    let env = TestEnv::new();
    with_setup(&env);
    let manifest = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    let branches = env.branches();
    // Ctrl-D on an empty line: the terminal's end of input.
    let (code, shown) = new_on_a_terminal(&env, "x", b"\x04");
    assert_eq!(code, 1, "{shown}");
    nothing_left(&env, "x", &manifest, &branches);
}

#[test]
fn ctrl_c_at_the_prompt_leaves_nothing() {
    if !script_installed() {
        return;
    }
    let env = TestEnv::new();
    with_setup(&env);
    let manifest = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    let branches = env.branches();
    let (code, shown) = new_on_a_terminal(&env, "x", b"\x03");
    assert_eq!(code, 130, "{shown}");
    // It landed at the prompt: the commands and the question were shown, nothing after.
    let asked = shown.rfind("[y/N]").expect("asked");
    assert!(shown[..asked].contains("$ touch setup-ran"), "{shown}");
    assert!(!shown.contains("created"), "{shown}");
    nothing_left(&env, "x", &manifest, &branches);
}

#[test]
fn new_shared_is_all_or_nothing_too() {
    if !script_installed() {
        return;
    }
    let env = TestEnv::new();
    with_setup(&env);
    let manifest = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    let branches = env.branches();
    let (code, shown) = new_on_a_terminal(&env, "--shared x", b"n\n");
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("flowloom new --shared x"), "{shown}");
    nothing_left(&env, "x", &manifest, &branches);
    let (code, shown) = new_on_a_terminal(&env, "--shared x", b"\x03");
    assert_eq!(code, 130, "{shown}");
    nothing_left(&env, "x", &manifest, &branches);
    let (code, shown) = new_on_a_terminal(&env, "--shared x", b"y\n");
    assert_eq!(code, 0, "{shown}");
    let text = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    assert!(text.starts_with(&manifest) && text.contains("[sessions.x]"), "{text}");
    assert!(env.repo.join("sessions/shell-instance-x/setup-ran").is_file());
}

/// The question is asked without the lock: another command runs meanwhile, and an edit of
/// the local layer saved while the prompt waits is kept when `y` declares the session.
#[test]
fn the_prompt_holds_no_lock_and_an_edit_meanwhile_is_kept() {
    if !script_installed() {
        return;
    }
    let env = TestEnv::new();
    with_setup(&env);
    env.write("flowloom.local.toml", "# mine\n");
    let mut meanwhile = || {
        let (code, out, err) = env.run(&["--lock-timeout", "0s", "apply", "--yes"]);
        assert_eq!(code, 0, "the lock is free while the prompt waits: {out}{err}");
        let text = std::fs::read_to_string(env.path("flowloom.local.toml")).expect("local");
        env.write(
            "flowloom.local.toml",
            &format!("{text}[sessions.other]\npurpose = \"saved meanwhile\"\nsetup = []\n"),
        );
    };
    let (code, shown) = new_on_a_terminal_with(&env, "x", &mut meanwhile, b"y\n");
    assert_eq!(code, 0, "{shown}");
    let local = std::fs::read_to_string(env.path("flowloom.local.toml")).expect("local");
    assert!(local.starts_with("# mine\n"), "{local}");
    assert!(
        local.contains("[sessions.other]") && local.contains("[sessions.x]"),
        "{local}"
    );
    assert!(env.repo.join("sessions/shell-instance-x/setup-ran").is_file());
    env.fsck();
}

/// Without a terminal nothing can be asked: refused the same way, nothing written.
#[test]
fn without_a_terminal_an_untrusted_setup_leaves_nothing() {
    let env = TestEnv::new();
    with_setup(&env);
    let manifest = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    let branches = env.branches();
    let (code, out, err) = env.run(&["new", "x"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("not trusted") && err.contains("flowloom trust"), "{err}");
    assert!(out.is_empty(), "{out}");
    nothing_left(&env, "x", &manifest, &branches);
    let (code, _, err) = env.run(&["trust"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = env.run(&["new", "x"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(env.repo.join("sessions/shell-instance-x/setup-ran").is_file());
}
