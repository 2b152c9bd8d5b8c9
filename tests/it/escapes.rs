//! Escapes and wrong targets (SPEC §8, §10, §11.3, §11.4): git inside a session works on the
//! session whatever the caller's `GIT_DIR`; every command that uses a session's path checks
//! the root as `plan` does; a committed `root` stays beside the repository; manifest text
//! reaches the terminal escaped; ports are all-or-nothing and bounded; copies keep holes.

use crate::common::TestEnv;

/// The caller's git variables, all pointing at the main repository (as in a hook or an
/// editor started by git).
fn callers_git(env: &TestEnv, cmd: &mut std::process::Command) {
    let git_dir = env.path(".git");
    cmd.env("GIT_DIR", &git_dir)
        .env("GIT_WORK_TREE", &env.repo)
        .env("GIT_INDEX_FILE", git_dir.join("index"))
        .env("GIT_COMMON_DIR", &git_dir)
        .env("GIT_OBJECT_DIRECTORY", git_dir.join("objects"))
        .env("GIT_PREFIX", "src/")
        .env("GIT_CEILING_DIRECTORIES", env.tmp.path())
        .env("GIT_NO_REPLACE_OBJECTS", "1");
}

#[test]
fn git_in_run_setup_and_hooks_works_on_the_session_not_the_callers_repository() {
    let env = TestEnv::new();
    // The post-checkout hook and the setup command each write down where git sees them.
    let hook = env.path(".git/hooks/post-checkout");
    std::fs::write(
        &hook,
        "#!/bin/sh\ngit rev-parse --absolute-git-dir --show-toplevel > hook-saw.txt\n",
    )
    .expect("hook");
    crate::common::set_executable(&hook);
    env.manifest(
        "[defaults]\nsetup = [\"git rev-parse --absolute-git-dir --show-toplevel > setup-saw.txt\"]\n[sessions.a]\n",
    );
    let (code, _, err) = env.run(&["trust"]);
    assert_eq!(code, 0, "{err}");
    let main_before = env.git(&["rev-parse", "HEAD"]);
    let index_before = std::fs::read(env.path(".git/index")).expect("index");

    let mut apply = env.flowloom();
    apply.args(["apply", "--yes"]);
    callers_git(&env, &mut apply);
    let (code, out, err) = crate::common::run(&mut apply);
    assert_eq!(code, 0, "{out}\n{err}");
    let wt = env.path("sessions/shell-instance-a");
    let real_wt = wt.canonicalize().expect("canonical");
    let registration = env.path(".git/worktrees/shell-instance-a").canonicalize().expect("reg");
    let expected = format!("{}\n{}\n", registration.display(), real_wt.display());
    for file in ["hook-saw.txt", "setup-saw.txt"] {
        assert_eq!(std::fs::read_to_string(wt.join(file)).expect(file), expected, "{file}");
        std::fs::remove_file(wt.join(file)).expect("rm");
    }

    // An agent's commit through `flowloom run` lands on the session's branch, and its push
    // to a local remote lands on that remote's branch, not in the caller's namespace.
    let remote = env.tmp.path().join("remote.git");
    env.git(&["init", "-q", "--bare", &remote.to_string_lossy()]);
    let script = format!(
        "echo work > agent.txt && git add agent.txt && git commit -q -m agent-work && git push -q {} HEAD:refs/heads/agent",
        remote.display()
    );
    let mut run = env.flowloom();
    run.args(["run", "a", "--", "sh", "-c", &script]);
    callers_git(&env, &mut run);
    // A namespace hides the caller's refs from flowloom as from git: only for the command.
    run.env("GIT_NAMESPACE", "caller");
    let (code, out, err) = crate::common::run(&mut run);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(env.git(&["log", "-1", "--format=%s", "session/a"]).trim(), "agent-work");
    let pushed = env.git_in(&remote, &["for-each-ref", "--format=%(refname)"]);
    assert_eq!(
        pushed.trim(),
        "refs/heads/agent",
        "the push went to the caller's namespace"
    );
    assert_eq!(env.git(&["rev-parse", "HEAD"]), main_before, "main moved");
    assert_eq!(env.git(&["log", "-1", "--format=%s", "main"]).trim(), "tools");
    assert_eq!(std::fs::read(env.path(".git/index")).expect("index"), index_before);
    assert!(!env.git(&["ls-files"]).contains("agent.txt"));
    assert_eq!(env.git_in(&wt, &["status", "--porcelain"]), "");
    env.fsck();
}

/// `run`, `path` and `status` refuse a session reached through a symlink: nothing runs,
/// no path is printed.
fn refused_everywhere(env: &TestEnv, marker: &std::path::Path, why: &str) {
    let touch = format!("touch {}", marker.display());
    let (code, out, err) = env.run(&["run", "a", "--", "sh", "-c", &touch]);
    assert_eq!(code, 1, "run: {out}\n{err}");
    assert!(err.contains(why), "run: {err}");
    assert!(!marker.exists(), "run ran outside the repository");
    let (code, out, err) = env.run(&["path", "a"]);
    assert_eq!(code, 1, "path: {out}\n{err}");
    assert_eq!(out, "", "path printed a path");
    assert!(err.contains(why), "path: {err}");
}

#[test]
fn run_and_path_check_the_root_and_the_session_folder_as_plan_does() {
    // A committed `sessions` symlink, pointing out of the repository at a folder that
    // looks like a session.
    let env = TestEnv::new();
    let elsewhere = env.tmp.path().join("elsewhere");
    std::fs::create_dir_all(elsewhere.join("shell-instance-a")).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, env.path("sessions")).expect("symlink");
    env.manifest("[sessions.a]\n");
    env.commit("sessions link");
    let marker = elsewhere.join("shell-instance-a/pwned");
    refused_everywhere(&env, &marker, "is a symlink");
    let (code, _, err) = env.run(&["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is a symlink"), "status: {err}");

    // A real root, swapped for a symlink after the session was made.
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    let moved = env.tmp.path().join("moved");
    std::fs::rename(env.path("sessions"), &moved).expect("mv");
    std::os::unix::fs::symlink(&moved, env.path("sessions")).expect("symlink");
    let marker = moved.join("shell-instance-a/pwned");
    refused_everywhere(&env, &marker, "is a symlink");
    let (code, _, err) = env.run(&["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is a symlink"), "status: {err}");

    // The session's folder itself replaced by a symlink (the root is sound).
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    let moved = env.tmp.path().join("moved-a");
    std::fs::rename(env.path("sessions/shell-instance-a"), &moved).expect("mv");
    std::os::unix::fs::symlink(&moved, env.path("sessions/shell-instance-a")).expect("symlink");
    refused_everywhere(&env, &moved.join("pwned"), "session folder");
    // A file in its place is no session either.
    std::fs::remove_file(env.path("sessions/shell-instance-a")).expect("rm");
    std::fs::write(env.path("sessions/shell-instance-a"), "").expect("file");
    refused_everywhere(&env, &moved.join("pwned"), "not a folder");
}

#[test]
fn copies_keep_holes_and_bytes() {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let env = TestEnv::new();
    env.write(".gitignore", "*.bin\n");
    env.commit("ignore");
    // 1 GiB with a few bytes of data, and 8 MiB with three data extents.
    const GIB: u64 = 1 << 30;
    let big = std::fs::File::create(env.path("big.bin")).expect("big");
    big.set_len(GIB).expect("len");
    let marks = [(0, &b"head"[..]), (GIB / 2 + 12345, b"middle"), (GIB - 4, b"tail")];
    for (at, bytes) in marks {
        big.write_all_at(bytes, at).expect("write");
    }
    drop(big);
    let small = std::fs::File::create(env.path("small.bin")).expect("small");
    small.set_len(8 << 20).expect("len");
    for (i, at) in [0u64, 3 << 20, (7 << 20) + 100].into_iter().enumerate() {
        small.write_all_at(&vec![b'a' + i as u8; 70_000], at).expect("write");
    }
    drop(small);
    let source = std::fs::metadata(env.path("big.bin")).expect("meta");
    if source.blocks() * 512 > GIB / 2 {
        // Skipped: this filesystem keeps no holes to begin with.
        return;
    }
    env.manifest("[defaults]\ncopy = [\"big.bin\", \"small.bin\"]\n[sessions.a]\n");
    env.apply();
    let wt = env.path("sessions/shell-instance-a");
    let copy = std::fs::metadata(wt.join("big.bin")).expect("copy");
    assert_eq!(copy.len(), GIB);
    assert!(
        copy.blocks() <= source.blocks() + 1024,
        "the copy takes {} blocks, the source {}",
        copy.blocks(),
        source.blocks()
    );
    let copied = std::fs::File::open(wt.join("big.bin")).expect("open");
    for (at, bytes) in marks {
        let mut read = vec![0; bytes.len() + 8];
        let from = at.saturating_sub(4).min(GIB - read.len() as u64);
        copied.read_exact_at(&mut read, from).expect("read");
        let mut expected = vec![0; read.len()];
        let original = std::fs::File::open(env.path("big.bin")).expect("open");
        original.read_exact_at(&mut expected, from).expect("read");
        assert_eq!(read, expected, "bytes around {at}");
    }
    assert_eq!(
        std::fs::read(wt.join("small.bin")).expect("small copy"),
        std::fs::read(env.path("small.bin")).expect("small")
    );
    let small = std::fs::metadata(wt.join("small.bin")).expect("meta");
    assert!(small.blocks() * 512 < 4 << 20, "{} blocks", small.blocks());
}

/// The port registry under `state` (an isolated `XDG_STATE_HOME`).
fn registry_ports(state: &std::path::Path) -> serde_json::Map<String, serde_json::Value> {
    match std::fs::read_to_string(state.join("flowloom/ports.json")) {
        Ok(text) => {
            let value: serde_json::Value = serde_json::from_str(&text).expect("json");
            value["ports"].as_object().cloned().unwrap_or_default()
        }
        Err(_) => serde_json::Map::new(),
    }
}

fn apply_with_state(env: &TestEnv, state: &std::path::Path) -> (i32, String, String) {
    crate::common::run(env.flowloom().args(["apply", "--yes"]).env("XDG_STATE_HOME", state))
}

#[test]
fn a_failed_port_allocation_keeps_nothing_and_a_repository_holds_1000_at_most() {
    let env = TestEnv::new();
    let state = env.tmp.path().join("state");
    // Every port of the range but one is held by another repository.
    let other = env.tmp.path().join("other.git");
    std::fs::create_dir_all(&other).expect("mkdir");
    let mut ports = serde_json::Map::new();
    for port in 20001..=29999u16 {
        ports.insert(
            port.to_string(),
            serde_json::json!({"repository": other, "session": "s", "name": format!("p{port}")}),
        );
    }
    std::fs::create_dir_all(state.join("flowloom")).expect("mkdir");
    let before = serde_json::to_string_pretty(&serde_json::json!({ "ports": ports })).expect("json");
    std::fs::write(state.join("flowloom/ports.json"), &before).expect("registry");
    env.manifest("[sessions.a]\nports = [\"web\", \"api\", \"db\"]\n");
    let (code, out, err) = apply_with_state(&env, &state);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("no free port left"), "{err}");
    assert_eq!(registry_ports(&state).len(), 9999, "the failed allocation kept ports");
    assert!(!env.path("sessions/shell-instance-a").exists());

    // A list no repository may hold is refused in the manifest, at the list.
    std::fs::remove_dir_all(&state).expect("rm");
    let names: Vec<String> = (0..1001).map(|i| format!("\"p{i}\"")).collect();
    env.manifest(&format!("[sessions.a]\nports = [{}]\n", names.join(", ")));
    let (code, _, err) = crate::common::run(env.flowloom().args(["plan"]).env("XDG_STATE_HOME", &state));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("1001 ports for one session"), "{err}");

    // Sessions that together ask for more than 1,000: those that fit are made, the next is
    // refused with nothing kept, and the repository holds 1,000 at most.
    let list = |from: usize| {
        (from..from + 400)
            .map(|i| format!("\"p{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    env.manifest(&format!(
        "[sessions.a]\nports = [{}]\n[sessions.b]\nports = [{}]\n[sessions.c]\nports = [{}]\n",
        list(0),
        list(400),
        list(800)
    ));
    let (code, out, err) = apply_with_state(&env, &state);
    assert_eq!(code, 1, "{out}\n{err}");
    let one_line = err
        .split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ");
    assert!(one_line.contains("no repository holds more than 1000"), "{err}");
    assert_eq!(registry_ports(&state).len(), 800);
    assert!(env.path("sessions/shell-instance-a").exists() && env.path("sessions/shell-instance-b").exists());
    assert!(!env.path("sessions/shell-instance-c").exists());
}

/// Nothing from the manifest or the repository reaches `text` raw: no ESC, CR, bidi
/// override, and no line of its own for what a value hid behind newlines.
fn nothing_raw(what: &str, text: &str) {
    for bad in ['\u{1b}', '\r', '\u{202e}', '\u{7}'] {
        assert!(!text.contains(bad), "{what}: {bad:?} reached the terminal:\n{text}");
    }
    for line in text.lines() {
        let line = line.trim();
        assert!(
            !line.starts_with("touch pwned") && !line.starts_with("echo harmless") && !line.starts_with("fake"),
            "{what}: a manifest value made a line of its own: {line:?}\n{text}"
        );
    }
}

#[test]
fn manifest_and_repository_text_is_shown_escaped_everywhere() {
    let env = TestEnv::new();
    // A branch in scope with odd bytes (a right-to-left override), made by hand.
    env.git(&["branch", "session/ev\u{202e}li", "main"]);
    let manifest = "[defaults]\n\
         setup = [\"\\n\\n\\n\\ntouch pwned\\n\\n\\n\\necho harmless\"]\n\
         env = { NOTE = \"x\\nfake line\\r\\u001b[2K\" }\n\
         [sessions.a]\n\
         purpose = \"\\u001b[2J\\u001b[31mred\\rfake purpose\\nfake line\"\n\
         [sessions.b]\n\
         base = \"nope\\nfake base\\u001b[1A\"\n";
    env.manifest(manifest);
    let both = |(code, out, err): (i32, String, String)| (code, format!("{out}{err}"));
    let (_, text) = both(env.run(&["plan"]));
    nothing_raw("plan", &text);
    assert!(text.contains("touch pwned"), "the plan shows the whole command: {text}");
    let (code, text) = both(env.run(&["apply", "--yes"]));
    assert_eq!(code, 1, "{text}");
    nothing_raw("apply", &text);
    assert!(!env.path("sessions/shell-instance-a/pwned").exists());
    if std::process::Command::new("script").arg("--version").output().is_ok() {
        // The prompt shows the command whole, on one line; no runs nothing.
        let (_, text) = crate::environment::apply_on_a_terminal(&env, "n\nn\n");
        // The terminal ends each line with CR LF.
        let text = text.replace("\r\n", "\n");
        nothing_raw("the trust prompt", &text);
        assert!(
            text.lines()
                .any(|l| l.contains("$ \\u000a\\u000a\\u000a\\u000atouch pwned") && l.contains("echo harmless")),
            "{text}"
        );
    }
    let (code, text) = both(env.run(&["trust"]));
    assert_eq!(code, 0, "{text}");
    nothing_raw("trust", &text);
    assert!(text.contains("echo harmless") && text.contains("touch pwned"), "{text}");
    let (_, text) = both(env.run(&["apply", "--yes"]));
    nothing_raw("apply, trusted", &text);
    let (_, text) = both(env.run(&["status"]));
    nothing_raw("status", &text);
    let (_, text) = both(env.run(&["run", "b", "--", "true"]));
    nothing_raw("run", &text);
    // A diagnostic quoting such a value.
    env.manifest("[defaults]\nroot = \"../../\\nfake root\\u001b[31m\"\n[sessions.a]\n");
    let (code, text) = both(env.run(&["plan"]));
    assert_eq!(code, 1, "{text}");
    nothing_raw("a diagnostic", &text);
}

/// Every file below `dir` (symlinks not followed), with its bytes: what a command may not
/// have changed.
fn listing(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            out.push((path.display().to_string(), std::fs::read(&path).unwrap_or_default()));
        }
    }
    out.sort();
    out
}

/// SPEC §11.4: every command that reaches a session's folder (or writes anything for a
/// session) goes through the one root check: a committed `sessions` symlink, a symlinked
/// folder on the way to the root, refuse alike for `run`, `path`, `cd`, `setup`, `merge`,
/// `status`, `plan`, `apply`, `new`, `rm`, `share` and `unshare`; nothing is written out there, and `merge`
/// lands nothing on the base before it finds out.
#[test]
fn every_command_that_uses_a_sessions_path_checks_the_root() {
    for (what, root, link) in [
        ("a committed `sessions` symlink", "sessions", "sessions"),
        ("a symlinked folder on the way", "nest/sessions", "nest"),
    ] {
        let env = TestEnv::new();
        let elsewhere = env.tmp.path().join("elsewhere");
        let fake = if link == "sessions" {
            elsewhere.clone()
        } else {
            elsewhere.join("sessions")
        };
        std::fs::create_dir_all(fake.join("shell-instance-a")).expect("mkdir");
        std::fs::write(fake.join("shell-instance-a/keep.txt"), "keep\n").expect("write");
        std::os::unix::fs::symlink(&elsewhere, env.path(link)).expect("symlink");
        env.manifest(&format!(
            "[defaults]\nroot = \"{root}\"\nsetup = [\"touch setup-ran\"]\n[sessions.a]\n[sessions.b]\n"
        ));
        env.commit("sessions link");
        // The session's branch exists with work to land (made with git alone).
        env.git(&["branch", "session/a"]);
        let scratch = env.tmp.path().join("scratch");
        env.git(&["worktree", "add", "-q", &scratch.to_string_lossy(), "session/a"]);
        env.commit_file(&scratch, "landed.txt", "x\n", "work");
        env.git(&["worktree", "remove", &scratch.to_string_lossy()]);
        let _ = env.run(&["trust"]);
        let before = listing(&elsewhere);
        let main = env.git(&["rev-parse", "main"]);
        let commands: [&[&str]; 13] = [
            &["run", "a", "--", "touch", "pwned"],
            &["path", "a"],
            &["cd", "a"],
            &["setup", "a"],
            &["merge", "--yes", "a"],
            &["status"],
            &["plan"],
            &["apply", "--yes"],
            &["new", "c"],
            &["rm", "--yes", "a"],
            &["rm", "--yes", "--force", "b"],
            &["unshare", "a"],
            &["share", "a"],
        ];
        for args in commands {
            let (code, out, err) = env.run(args);
            assert_ne!(code, 0, "{what}: {args:?} went ahead\n{out}\n{err}");
            assert!(
                !out.contains(&elsewhere.display().to_string()),
                "{what}: {args:?} printed the path out there: {out}"
            );
            assert_eq!(listing(&elsewhere), before, "{what}: {args:?} wrote out there");
            assert_eq!(env.git(&["rev-parse", "main"]), main, "{what}: {args:?} moved main");
        }
    }
}

/// Text from the repository and the machine in a refusal (a lock reason, a process's name,
/// both with a newline and escapes) stays on its line, in `rm`'s error as in `plan`.
#[test]
fn a_lock_reason_or_a_process_name_never_makes_a_line_of_its_own() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n[sessions.b]\n");
    env.apply();
    env.git(&[
        "worktree",
        "lock",
        "--reason",
        "x\nfake line\u{1b}[2K",
        "sessions/shell-instance-a",
    ]);
    let program = env.tmp.path().join("z\nfake proc");
    std::fs::copy("/bin/sleep", &program).expect("copy sleep");
    let mut sleeper = std::process::Command::new(&program)
        .arg("30")
        .current_dir(env.path("sessions/shell-instance-b"))
        .spawn()
        .expect("spawn");
    let both = |(_, out, err): (i32, String, String)| format!("{out}{err}");
    for args in [
        &["rm", "--yes", "a"][..],
        &["rm", "--yes", "b"],
        &["plan"],
        &["apply", "--yes"],
    ] {
        if args[0] == "plan" {
            env.manifest("");
        }
        let text = both(env.run(args));
        nothing_raw(&format!("{args:?}"), &text);
        assert!(text.contains("fake"), "{args:?}: the reason is shown: {text}");
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

/// Newlines and escapes in every other manifest string (copy patterns, port names, the
/// remote, templates, the branch) and in command-line ids reach no terminal raw, in any
/// command that shows them or quotes them in an error.
#[test]
fn every_other_string_is_shown_escaped_too() {
    let env = TestEnv::new();
    let values = [
        "[defaults]\ncopy = [\"\\nfake copy\\u001b[2J\"]\n[sessions.a]\n",
        "[defaults]\nports = [\"web\\nfake port\\u001b[2J\"]\n[sessions.a]\n",
        "[defaults]\nremote = \"origin\\nfake remote\\u001b[2J\"\n[sessions.a]\n",
        "[defaults]\nworktree = \"w-{id}\\nfake worktree\\u001b[2J\"\n[sessions.a]\n",
        "[sessions.a]\nbranch = \"b\\nfake branch\\u001b[2J\"\n",
        "[sessions.a]\nenv = { \"K\\nfake key\" = \"v\" }\n",
        "[sessions.a]\ncopy = [\"x\"]\nsetup = [\"true\"]\nenv = { K = \"\\u001b]0;title\\u0007\\nfake env\" }\n",
        "[sessions.\"a\\nfake id\"]\n",
        "[defaults]\nroot = \"s\\nfake root\"\n[sessions.a]\n",
    ];
    for manifest in values {
        env.manifest(manifest);
        let exclude_before = std::fs::read_to_string(env.path(".git/info/exclude")).unwrap_or_default();
        for args in [
            &["validate"][..],
            &["plan"],
            &["status"],
            &["apply", "--yes"],
            &["trust"],
            &["run", "a", "--", "true"],
        ] {
            let (_, out, err) = env.run(args);
            nothing_raw(&format!("{manifest:?} {args:?}"), &format!("{out}{err}"));
        }
        // A folder name never splits a line of `info/exclude` into a pattern of its own.
        let exclude = std::fs::read_to_string(env.path(".git/info/exclude")).unwrap_or_default();
        assert!(
            exclude == exclude_before || !exclude.lines().any(|l| l.starts_with("fake")),
            "{manifest:?}: {exclude}"
        );
    }
    env.manifest("[sessions.a]\n");
    for args in [
        &["path", "x\nfake line\u{1b}[2J"][..],
        &["run", "x\nfake line\u{1b}[2J", "--", "true"],
        &["new", "x\nfake line\u{1b}[2J"],
        &["new", "ok", "--branch", "b\nfake line\u{1b}[2J"],
        &["new", "ok2", "--base", "m\nfake line\u{1b}[2J"],
        &["rm", "--yes", "x\nfake line\u{1b}[2J"],
        &["merge", "--yes", "x\nfake line\u{1b}[2J"],
        &["setup", "x\nfake line\u{1b}[2J"],
        &["share", "x\nfake line\u{1b}[2J"],
        &["plan", "--target", "x\nfake line\u{1b}[2J"],
    ] {
        let (_, out, err) = env.run(args);
        nothing_raw(&format!("{args:?}"), &format!("{out}{err}"));
    }
}

/// A `flowloom.local.toml` that is a symlink (pointing out of the repository, say) is never
/// read nor written through: every command refuses it, naming it, nothing is made, and the
/// file it points to stays as it was.
#[test]
fn a_symlinked_local_manifest_is_neither_read_nor_written_through() {
    let env = TestEnv::new();
    env.manifest("[sessions.keep]\n");
    let outside = env.tmp.path().join("outside.txt");
    std::fs::write(&outside, "precious\n").expect("write");
    std::os::unix::fs::symlink(&outside, env.path("flowloom.local.toml")).expect("symlink");
    for args in [&["plan"][..], &["new", "x"], &["apply", "--yes"], &["status"]] {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 1, "{args:?}:\n{out}{err}");
        assert!(
            err.contains("flowloom.local.toml") && err.contains("symlink"),
            "{args:?}:\n{err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&outside).expect("read"), "precious\n");
    assert!(!env.path("sessions").exists());
}

/// A remote branch whose name holds a right-to-left override and a C1 control (CSI), both
/// of which git accepts in a ref name, picked by `new` (by its name, and with `--branch`):
/// what `new`, `plan`, `apply` and `status` print never holds either raw.
#[test]
fn escape_characters_in_a_remote_branch_picked_by_new_never_reach_the_terminal() {
    let env = TestEnv::new();
    let branch = "feat/\u{202e}evil\u{9b}31mred";
    let other = "feat2/\u{202e}evil\u{9b}31mred";
    env.git(&["branch", branch]);
    env.git(&["branch", other]);
    env.git_in(env.tmp.path(), &["clone", "-q", "repo", "clone"]);
    let clone = env.tmp.path().join("clone");
    std::fs::write(clone.join("flowloom.toml"), "[sessions.keep]\n").expect("manifest");
    // A remote-tracking name: the session works on local `feat2/…`, and says so.
    let remote = format!("origin/{other}");
    for args in [
        &["new", branch][..],
        &["new", "y", "--branch", remote.as_str()],
        &["plan"],
        &["apply", "--yes"],
        &["status"],
        &["status", "--json"],
    ] {
        let (code, out, err) = crate::common::run(env.flowloom_in(&clone).args(args));
        assert!(code == 0 || code == 2, "{args:?}:\n{out}{err}");
        for raw in ['\u{202e}', '\u{9b}'] {
            assert!(
                !out.contains(raw) && !err.contains(raw),
                "{args:?} printed {raw:?} raw:\n{out}{err}"
            );
        }
    }
}
