//! The session environment (SPEC §10): copied ignored files, ports, `env`, and `setup`
//! gated by trust. Git is the oracle for what the copies leave behind.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::{TestEnv, run};

fn metadata(worktree: &Path, id: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(worktree.join(format!("sessions/{id}/metadata.json"))).expect("metadata");
    serde_json::from_str(&text).expect("json")
}

fn registry(env: &TestEnv) -> serde_json::Value {
    match std::fs::read_to_string(env.home().join(".local/state/flowloom/ports.json")) {
        Ok(text) => serde_json::from_str(&text).expect("json"),
        Err(_) => serde_json::json!({ "ports": {} }),
    }
}

#[test]
fn ignored_files_arrive_and_tracked_files_are_never_overwritten() {
    let env = TestEnv::new();
    env.write(".gitignore", ".env\nnode_modules/\n*.log\nDEVELOP.md\nlocal/\n");
    env.commit("ignore");
    env.git(&["checkout", "-q", "develop"]);
    env.git(&["merge", "-q", "main"]);
    env.git(&["checkout", "-q", "main"]);
    env.write(".env", "SECRET=1\n");
    env.write("node_modules/pkg/index.js", "module.exports = 1;\n");
    env.write("node_modules/pkg/deep/a/b.js", "b\n");
    std::os::unix::fs::symlink("index.js", env.path("node_modules/pkg/main.js")).expect("symlink");
    // A symlink out of the repository is copied as a symlink, never followed.
    std::os::unix::fs::symlink(env.home(), env.path("node_modules/home")).expect("symlink");
    // A FIFO is skipped, not read (reading it would hang).
    let fifo = env.path("node_modules/pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    // Ignored here, tracked on `develop`: the checkout's file wins.
    env.write("DEVELOP.md", "main's ignored copy\n");
    env.write("x.log", "not named\n");
    // `.worktreeinclude` names more, in gitignore syntax; only ignored files qualify.
    env.write("local/settings.json", "{}\n");
    env.write(".worktreeinclude", "local/\nREADME.md\n");
    env.manifest(
        "[defaults]\ncopy = [\".env\", \"node_modules/\", \"DEVELOP.md\"]\n\
         [sessions.a]\n[sessions.d]\nbase = \"develop\"\n",
    );
    let (code, out, err) = env.run(&["plan"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("copies: .env, DEVELOP.md, local/, node_modules/"), "{out}");
    // A saved plan shows the same, from the file alone.
    let (code, _, _) = env.run(&["plan", "--out", "saved.json"]);
    assert_eq!(code, 0);
    let (code, shown, _) = env.run(&["show", "saved.json"]);
    assert_eq!(code, 0);
    assert!(
        shown.contains("copies: .env, DEVELOP.md, local/, node_modules/"),
        "{shown}"
    );
    std::fs::remove_file(env.path("saved.json")).expect("rm");
    env.apply();
    let a = env.path("sessions/shell-instance-a");
    let d = env.path("sessions/shell-instance-d");
    assert_eq!(std::fs::read_to_string(a.join(".env")).expect(".env"), "SECRET=1\n");
    assert_eq!(
        std::fs::read_to_string(a.join("node_modules/pkg/deep/a/b.js")).expect("b"),
        "b\n"
    );
    assert_eq!(
        std::fs::read_link(a.join("node_modules/pkg/main.js")).expect("link"),
        Path::new("index.js")
    );
    assert_eq!(
        std::fs::read_link(a.join("node_modules/home")).expect("link"),
        env.home()
    );
    assert!(a.join("node_modules/pipe").symlink_metadata().is_err(), "FIFO skipped");
    assert!(a.join("local/settings.json").is_file());
    assert!(!a.join("x.log").exists(), "only what is named is copied");
    assert_eq!(
        std::fs::read_to_string(d.join("DEVELOP.md")).expect("tracked"),
        "develop\n",
        "a tracked file is never overwritten"
    );
    // README.md is tracked in the main worktree: `.worktreeinclude` cannot name it. The
    // checkout's own is there, untouched.
    assert_eq!(std::fs::read_to_string(a.join("README.md")).expect("readme"), "hello\n");
    // Git sees clean sessions: every copied entry is ignored there too.
    for wt in [&a, &d] {
        assert_eq!(env.git_in(wt, &["status", "--porcelain"]), "", "{}", wt.display());
    }
    env.fsck();
    // A second apply copies nothing again and changes nothing.
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn ports_are_distinct_free_kept_in_metadata_and_released_on_removal() {
    let env = TestEnv::new();
    env.manifest("[defaults]\nports = [\"web\", \"api-v2\"]\n[sessions.a]\n[sessions.b]\n");
    env.apply();
    let mut all = BTreeSet::new();
    for id in ["a", "b"] {
        let meta = metadata(&env.path(&format!("sessions/shell-instance-{id}")), id);
        let ports = meta["ports"].as_object().expect("ports in metadata");
        assert_eq!(ports.len(), 2, "{meta}");
        for port in ports.values() {
            let port = u16::try_from(port.as_u64().expect("number")).expect("port");
            assert!(all.insert(port), "port {port} given twice");
            assert!(
                std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
                "{port} free to bind"
            );
        }
    }
    assert_eq!(registry(&env)["ports"].as_object().expect("registry").len(), 4);
    // status shows them; run sets them.
    let (code, out, _) = env.run(&["status", "--json"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
    let a = doc["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["session"] == "a")
        .expect("a")
        .clone();
    assert_eq!(a["ports"].as_object().expect("ports").len(), 2, "{a}");
    let (code, out, _) = env.run(&[
        "run",
        "a",
        "--",
        "sh",
        "-c",
        "echo $FLOWLOOM_PORT_WEB $FLOWLOOM_PORT_API_V2",
    ]);
    assert_eq!(code, 0);
    let meta = metadata(&env.path("sessions/shell-instance-a"), "a");
    assert_eq!(out, format!("{} {}\n", meta["ports"]["web"], meta["ports"]["api-v2"]));
    // Removing `a` gives its ports back, and only its.
    env.manifest("[defaults]\nports = [\"web\", \"api-v2\"]\n[sessions.b]\n");
    env.apply();
    let left = registry(&env);
    let holders: BTreeSet<&str> = left["ports"]
        .as_object()
        .expect("registry")
        .values()
        .map(|h| h["session"].as_str().expect("session"))
        .collect();
    assert_eq!(holders, BTreeSet::from(["b"]));
}

#[test]
fn a_port_in_use_is_never_handed_out() {
    let env = TestEnv::new();
    // Hold every port but a handful of the range: what is left must be what is given.
    // (Cheaper: fill the registry by hand with every port but two, and bind one of them.)
    let free: Vec<u16> = (20000..=29999)
        .filter(|p| std::net::TcpListener::bind(("0.0.0.0", *p)).is_ok())
        .take(2)
        .collect();
    let listener = std::net::TcpListener::bind(("0.0.0.0", free[0])).expect("bind");
    let mut ports = serde_json::Map::new();
    for p in 20000..=29999u16 {
        if p != free[0] && p != free[1] {
            ports.insert(
                p.to_string(),
                // Another repository's: no repository holds more than 1,000 (SPEC §11.3).
                serde_json::json!({ "repository": env.home(), "session": "other", "name": "x" }),
            );
        }
    }
    let state = env.home().join(".local/state/flowloom");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(
        state.join("ports.json"),
        serde_json::json!({ "ports": ports }).to_string(),
    )
    .expect("registry");
    env.manifest("[defaults]\nports = [\"web\"]\n[sessions.a]\n");
    env.apply();
    let meta = metadata(&env.path("sessions/shell-instance-a"), "a");
    assert_eq!(
        meta["ports"]["web"],
        serde_json::json!(free[1]),
        "the bound port was skipped"
    );
    // With no port left, the session is not made half-way silently: an error says so.
    env.manifest("[defaults]\nports = [\"web\"]\n[sessions.a]\n[sessions.b]\n");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("no free port left"), "{err}");
    assert!(
        !env.path("sessions/shell-instance-b").exists(),
        "nothing of it was made"
    );
    drop(listener);
}

#[test]
fn run_sees_flowloom_variables_and_env() {
    let env = TestEnv::new();
    env.manifest(
        "[defaults]\nports = [\"web\"]\nenv = { URL = \"http://localhost:{port.web}/{id}\", LIT = \"{{x}}\" }\n\
         [sessions.a]\nenv = { WHERE = \"{worktree}@{branch}\" }\n",
    );
    env.apply();
    // The manifest's env is committed code: not applied (nothing runs) until trusted.
    let marker = env.tmp.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let (code, _, err) = env.run(&["run", "a", "--", "sh", "-c", &touch]);
    assert_eq!(code, 1);
    assert!(err.contains("environment is not trusted"), "{err}");
    assert!(!marker.exists());
    let (code, _, _) = env.run(&["trust"]);
    assert_eq!(code, 0);
    let wt = env.path("sessions/shell-instance-a").canonicalize().expect("canonical");
    let port = metadata(&wt, "a")["ports"]["web"].clone();
    let (code, out, err) = env.run(&[
        "run",
        "a",
        "--",
        "sh",
        "-c",
        "echo $FLOWLOOM_SESSION $FLOWLOOM_BRANCH $FLOWLOOM_WORKTREE $FLOWLOOM_PORT_WEB; echo $URL; echo $LIT; echo $WHERE",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!(
            "a session/a {w} {port}\nhttp://localhost:{port}/a\n{{x}}\n{w}@session/a\n",
            w = wt.display()
        )
    );
}

#[test]
fn setup_runs_only_once_trusted_and_a_changed_list_is_refused_again() {
    let env = TestEnv::new();
    let marker = env.tmp.path().join("ran");
    let setup = format!(
        "[defaults]\nsetup = [\"echo $FLOWLOOM_SESSION >> {m}\", \"test -f README.md\"]\n",
        m = marker.display()
    );
    env.manifest(&format!("{setup}[sessions.a]\n[sessions.plain]\nsetup = []\n"));
    // Untrusted: `a` is blocked with the commands shown, nothing runs; the rest goes ahead.
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("not trusted on this machine"), "{out}");
    assert!(out.contains("echo $FLOWLOOM_SESSION"), "{out}");
    assert!(!marker.exists(), "an untrusted setup ran");
    assert!(!env.path("sessions/shell-instance-a").exists());
    assert!(env.path("sessions/shell-instance-plain").is_dir());
    let (_, json, _) = env.run(&["plan", "--json"]);
    assert!(json.contains("\"setup_not_trusted\""), "{json}");
    // Trusted: it runs, once, in the new session.
    let (code, out, err) = env.run(&["trust"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("echo $FLOWLOOM_SESSION"),
        "trust shows what it trusts: {out}"
    );
    env.apply();
    assert_eq!(std::fs::read_to_string(&marker).expect("ran"), "a\n");
    // Changed: refused again, for the new session; the made one is left alone.
    env.manifest(&format!(
        "[defaults]\nsetup = [\"echo changed >> {m}\"]\n[sessions.a]\n[sessions.b]\n[sessions.plain]\nsetup = []\n",
        m = marker.display()
    ));
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("echo changed"), "{out}");
    assert_eq!(std::fs::read_to_string(&marker).expect("ran"), "a\n");
    assert!(!env.path("sessions/shell-instance-b").exists());
    // The trust is this machine's: another HOME trusts nothing.
    let file = env.home().join(".config/flowloom/trusted.json");
    let trusted = std::fs::read_to_string(&file).expect("trust file");
    assert!(trusted.contains("sha256:"), "{trusted}");
    // A trust file others may write is not believed.
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o666)).expect("chmod");
    let (code, _, err) = env.run(&["plan"]);
    assert_eq!(code, 1);
    assert!(err.contains("writable by others"), "{err}");
}

#[test]
fn a_failing_setup_leaves_the_session_made_and_only_what_failed_runs_again() {
    let env = TestEnv::new();
    let marker = env.tmp.path().join("ran");
    env.manifest(&format!(
        "[defaults]\nsetup = [\"echo once >> {m}\", \"exit 3\", \"echo never >> {m}\"]\n[sessions.a]\n",
        m = marker.display()
    ));
    let (code, _, _) = env.run(&["trust"]);
    assert_eq!(code, 0);
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("setup command `exit 3` failed"), "{err}");
    assert!(env.path("sessions/shell-instance-a").is_dir());
    assert_eq!(std::fs::read_to_string(&marker).expect("ran"), "once\n");
    assert_eq!(env.worktrees().len(), 1);
    // SPEC §11.3: the next apply runs the setup that did not succeed (it fails again here),
    // never the command that did.
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("setup command `exit 3` failed"), "{err}");
    assert_eq!(std::fs::read_to_string(&marker).expect("ran"), "once\n");
}

#[test]
fn environment_keys_are_checked_with_spans() {
    let env = TestEnv::new();
    env.manifest(
        "[defaults]\nports = [\"web\", \"WEB\", \"9x\"]\nenv = { FLOWLOOM_X = \"1\", A = \"{port.api}\", B = \"{nope}\" }\n\
         copy = [\"../outside\", 3]\nsetup = [\"\"]\n[sessions.a]\n",
    );
    let (code, _, err) = env.run(&["validate"]);
    assert_eq!(code, 1);
    for needle in [
        "port `WEB` is listed twice",
        "invalid port name \"9x\"",
        "`FLOWLOOM_X` is set by flowloom",
        "`env` names the port `api`, which session `a` does not have",
        "unknown placeholder `{nope}`",
        "invalid `copy` entry \"../outside\"",
        "`copy` holds strings only",
        "invalid `setup` command",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

#[test]
fn the_schema_is_json_and_names_every_key() {
    let env = TestEnv::empty();
    let (code, out, _) = run(env.flowloom_in(env.tmp.path()).arg("schema"));
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    for key in ["copy", "setup", "ports", "env", "root", "base"] {
        assert!(
            schema["$defs"]["DefaultsDoc"]["properties"].get(key).is_some(),
            "{key} missing"
        );
    }
    assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    // The copy the project carries (for editors, referenced from its own manifest) is current.
    let carried = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/flowloom.schema.json"))
        .expect("docs/flowloom.schema.json");
    assert_eq!(carried, out, "run `flowloom schema > docs/flowloom.schema.json`");
}

#[test]
fn ports_named_after_a_session_was_made_are_added_to_it() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    env.manifest("[defaults]\nports = [\"web\"]\n[sessions.a]\n");
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("allocate port web"), "{out}");
    env.apply();
    let meta = metadata(&env.path("sessions/shell-instance-a"), "a");
    let port = meta["ports"]["web"].as_u64().expect("port added");
    assert_eq!(meta["managedBy"], "flowloom", "the rest of the file is kept");
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
    // The metadata file deleted by hand: written again, with the same port.
    std::fs::remove_file(env.path("sessions/shell-instance-a/sessions/a/metadata.json")).expect("rm");
    env.apply();
    let meta = metadata(&env.path("sessions/shell-instance-a"), "a");
    assert_eq!(meta["ports"]["web"].as_u64(), Some(port));
}

/// `flowloom apply` on a terminal (a pseudo-terminal made by `script`), answering `answers`.
pub(crate) fn apply_on_a_terminal(env: &TestEnv, answers: &'static str) -> (i32, String) {
    use std::io::Write;
    let binary = assert_cmd::cargo::cargo_bin("flowloom");
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &format!("{} apply", binary.display()), "/dev/null"])
        .current_dir(&env.repo)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.home())
        .env("SHELL", "/bin/sh")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", env.home().join(".gitconfig"))
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("script");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        for line in answers.lines() {
            std::thread::sleep(std::time::Duration::from_millis(700));
            let _ = writeln!(stdin, "{line}");
        }
        // Keep the terminal open until flowloom is done with it.
        std::thread::sleep(std::time::Duration::from_secs(3));
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_terminal_prompt_shows_the_commands_and_trust_is_asked_for_each_list() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        // Skipped: no `script` to make a terminal with.
        return;
    }
    let env = TestEnv::new();
    let marker = env.tmp.path().join("ran");
    env.manifest(&format!(
        "[defaults]\nsetup = [\"echo prompt-ran >> {}\"]\n[sessions.a]\n",
        marker.display()
    ));
    // No: nothing runs, the session is blocked, nothing is trusted.
    let (_, out) = apply_on_a_terminal(&env, "n\nn\n");
    assert!(out.contains("echo prompt-ran"), "the prompt shows the commands: {out}");
    assert!(
        out.contains("Trust these setup commands on this machine? [y/N]"),
        "{out}"
    );
    assert!(!marker.exists());
    assert!(!env.home().join(".config/flowloom/trusted.json").exists());
    // Yes, then yes to the plan: it runs, and is trusted from then on.
    let (code, out) = apply_on_a_terminal(&env, "y\ny\n");
    assert_eq!(code, 0, "{out}");
    assert_eq!(std::fs::read_to_string(&marker).expect("ran"), "prompt-ran\n");
    assert!(env.home().join(".config/flowloom/trusted.json").exists());
}

#[test]
fn trust_covers_the_variables_setup_runs_with() {
    let env = TestEnv::new();
    let marker = env.tmp.path().join("ran");
    env.write("bin/npm", &format!("#!/bin/sh\necho planted >> {}\n", marker.display()));
    crate::common::set_executable(&env.path("bin/npm"));
    env.commit("a committed npm");
    env.manifest("[defaults]\nsetup = [\"npm --version || true\"]\n[sessions.a]\n");
    let (code, _, _) = env.run(&["trust"]);
    assert_eq!(code, 0);
    // The same command, now with a PATH that finds a committed `npm`: not the trusted
    // script, so nothing runs until it is trusted again, and the plan says with what.
    env.manifest(
        "[defaults]\nsetup = [\"npm --version || true\"]\nenv = { PATH = \"{worktree}/bin:/usr/bin:/bin\" }\n[sessions.a]\n",
    );
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("with PATH={worktree}/bin:/usr/bin:/bin"), "{out}");
    assert!(!marker.exists(), "a changed env ran trusted commands");
    let (code, out, _) = env.run(&["trust"]);
    assert_eq!(code, 0);
    assert!(out.contains("with PATH="), "trust shows the variables too: {out}");
    env.apply();
    assert_eq!(std::fs::read_to_string(&marker).expect("ran"), "planted\n");
}

#[test]
fn copy_finds_named_files_inside_ignored_folders_and_never_a_git_link() {
    let env = TestEnv::new();
    env.write(".gitignore", "*.yml\n.claude/\nro/\n");
    env.commit("ignore");
    // `config/` holds only ignored files: git lists it as one folder.
    env.write("config/local.yml", "local\n");
    env.write("config/other.yml", "other\n");
    // `mixed/` is untracked with an ignored file inside.
    env.write("mixed/x.yml", "x\n");
    env.write("mixed/y.txt", "y\n");
    env.write("deep/a/b/c.yml", "c\n");
    // Another worktree of this repository inside an ignored folder: its `.git` file must not
    // be copied, or the copy would act on that worktree's branch.
    env.git(&["worktree", "add", "-q", "-b", "other", ".claude/worktrees/other"]);
    env.write(".claude/settings.json", "{}\n");
    // A read-only folder is filled before it is made read-only.
    env.write("ro/file.txt", "ro\n");
    std::fs::set_permissions(env.path("ro"), std::os::unix::fs::PermissionsExt::from_mode(0o555)).expect("chmod");
    env.manifest(
        "[defaults]\ncopy = [\"config/local.yml\", \"mixed/*.yml\", \"/deep/**/*.yml\", \".claude/\", \"ro/\"]\n[sessions.a]\n",
    );
    env.apply();
    let a = env.path("sessions/shell-instance-a");
    assert_eq!(
        std::fs::read_to_string(a.join("config/local.yml")).expect("local"),
        "local\n"
    );
    assert!(!a.join("config/other.yml").exists(), "only what is named");
    assert_eq!(std::fs::read_to_string(a.join("mixed/x.yml")).expect("x"), "x\n");
    assert!(!a.join("mixed/y.txt").exists(), "untracked, not ignored: never copied");
    assert_eq!(std::fs::read_to_string(a.join("deep/a/b/c.yml")).expect("c"), "c\n");
    assert!(a.join(".claude/settings.json").is_file());
    assert!(a.join(".claude/worktrees/other").is_dir());
    assert!(
        !a.join(".claude/worktrees/other/.git").exists(),
        "a .git is never copied"
    );
    assert_eq!(std::fs::read_to_string(a.join("ro/file.txt")).expect("ro"), "ro\n");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(a.join("ro")).expect("ro").permissions());
    assert_eq!(mode & 0o777, 0o555);
    assert_eq!(env.git_in(&a, &["status", "--porcelain"]), "");
    // `other`'s registration still points at its own folder.
    let list = env.git(&["worktree", "list", "--porcelain"]);
    assert!(list.contains(".claude/worktrees/other\n"), "{list}");
    env.fsck();
    std::fs::set_permissions(a.join("ro"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(env.path("ro"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
}

#[test]
fn a_worktree_made_again_gets_its_copies_and_setup() {
    let env = TestEnv::new();
    let marker = env.tmp.path().join("ran");
    env.write(".gitignore", ".env\n");
    env.commit("ignore");
    env.write(".env", "SECRET=1\n");
    env.manifest(&format!(
        "[defaults]\ncopy = [\".env\"]\nsetup = [\"echo $FLOWLOOM_SESSION >> {}\"]\n[sessions.a]\n",
        marker.display()
    ));
    let (code, _, _) = env.run(&["trust"]);
    assert_eq!(code, 0);
    env.apply();
    let a = env.path("sessions/shell-instance-a");
    std::fs::remove_dir_all(&a).expect("deleted by hand");
    let (code, out, _) = env.run(&["plan"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("recreate worktree") && out.contains("copies: .env"),
        "{out}"
    );
    env.apply();
    assert_eq!(std::fs::read_to_string(a.join(".env")).expect(".env"), "SECRET=1\n");
    assert_eq!(std::fs::read_to_string(&marker).expect("ran"), "a\na\n");
    // With the list changed and not trusted, the worktree is not made again.
    std::fs::remove_dir_all(&a).expect("deleted by hand");
    env.manifest("[defaults]\ncopy = [\".env\"]\nsetup = [\"echo other\"]\n[sessions.a]\n");
    let (code, out, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not trusted"), "{out}");
    assert!(!a.exists());
}
