//! One command per agent (SPEC §4, §10): `new` declares and makes a session, `run` works
//! in it with the session's environment, `rm` removes it with every check, `shell-init`
//! makes `flowloom cd` work; many agents at once all succeed.

use crate::common::{TestEnv, run};

#[test]
fn an_agent_workflow_new_run_rm() {
    let env = TestEnv::new();
    env.manifest("# our sessions\n[sessions.keep] # kept\n");
    // new: declared (comments kept), made, and its path printed alone on stdout.
    let (code, out, err) = env.run(&["new", "fix-login", "--purpose", "Fix the login bug", "--shared"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let path = std::path::PathBuf::from(out.trim());
    assert!(path.ends_with("sessions/shell-instance-fix-login"), "{out}");
    assert!(path.is_dir());
    let manifest = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    assert!(
        manifest.starts_with("# our sessions\n[sessions.keep] # kept\n"),
        "{manifest}"
    );
    assert!(
        manifest.contains("[sessions.fix-login]\npurpose = \"Fix the login bug\""),
        "{manifest}"
    );
    assert_eq!(
        env.git_in(&path, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "session/fix-login\n"
    );
    // Only that session was applied: `keep` is still to be made.
    assert!(!env.path("sessions/shell-instance-keep").exists());
    // run: in the worktree, with the session's environment, its exit code passed on.
    let (code, out, _) = env.run(&[
        "run",
        "fix-login",
        "--",
        "sh",
        "-c",
        "echo $FLOWLOOM_SESSION $FLOWLOOM_BRANCH; pwd; echo work > agent.txt; exit 7",
    ]);
    assert_eq!(code, 7);
    assert_eq!(
        out,
        format!("fix-login session/fix-login\n{}\n", path.display()),
        "the command ran in the worktree"
    );
    // rm: the work blocks it...
    let (code, out, err) = env.run(&["rm", "fix-login", "--yes"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("untracked file") && err.contains("agent.txt"), "{err}");
    assert!(path.join("agent.txt").exists());
    // ... until it is committed and merged, then it goes.
    env.git_in(&path, &["add", "agent.txt"]);
    env.git_in(&path, &["commit", "-q", "-m", "agent work"]);
    env.git(&["merge", "-q", "session/fix-login"]);
    let (code, out, err) = env.run(&["rm", "fix-login", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!path.exists());
    assert!(!env.branches().contains(&"session/fix-login".to_owned()));
    let manifest = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    assert!(!manifest.contains("fix-login"), "{manifest}");
    assert!(manifest.contains("# our sessions"), "{manifest}");
    env.fsck();
}

#[test]
fn eight_agents_running_new_at_once_all_succeed_with_distinct_ports() {
    let env = TestEnv::new();
    env.manifest("[defaults]\nports = [\"web\"]\n");
    let children: Vec<_> = (0..8)
        .map(|i| {
            env.flowloom()
                .args(["new", &format!("agent-{i}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let manifest = std::fs::read_to_string(env.path("flowloom.local.toml")).expect("manifest");
    for i in 0..8 {
        assert!(manifest.contains(&format!("[sessions.agent-{i}]")), "{manifest}");
    }
    assert_eq!(env.worktrees().len(), 8);
    // SPEC §10: eight ports, all different, each free to bind, all in the registry.
    let mut ports = std::collections::BTreeSet::new();
    for i in 0..8 {
        let id = format!("agent-{i}");
        let file = env.path(&format!("sessions/shell-instance-{id}/sessions/{id}/metadata.json"));
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).expect("metadata")).expect("json");
        let port = u16::try_from(meta["ports"]["web"].as_u64().expect("port")).expect("u16");
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "{port} is free"
        );
        ports.insert(port);
    }
    assert_eq!(ports.len(), 8, "{ports:?}");
    let registry = std::fs::read_to_string(env.home().join(".local/state/flowloom/ports.json")).expect("registry");
    let registry: serde_json::Value = serde_json::from_str(&registry).expect("json");
    assert_eq!(registry["ports"].as_object().expect("ports").len(), 8);
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
    env.fsck();
}

#[test]
fn shell_init_makes_flowloom_cd_change_directory_in_bash() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    let (_, script, _) = env.run(&["shell-init", "bash"]);
    let bin = assert_cmd::cargo::cargo_bin("flowloom");
    let dir = bin.parent().expect("bin dir").display().to_string();
    let (code, out, err) = run(std::process::Command::new("bash")
        .current_dir(&env.repo)
        .env("PATH", format!("{dir}:{}", std::env::var("PATH").unwrap_or_default()))
        .env("HOME", env.home())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["-c", &format!("{script}\nflowloom cd a && pwd")]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        out.trim(),
        env.path("sessions/shell-instance-a")
            .canonicalize()
            .expect("path")
            .display()
            .to_string()
    );
    for shell in ["zsh", "fish"] {
        let (code, out, _) = env.run(&["shell-init", shell]);
        assert_eq!(code, 0);
        assert!(out.contains("flowloom path"), "{out}");
    }
}

/// `program ARGS...` started in `dir` with flowloom on its PATH, HOME the test's.
fn in_shell(env: &TestEnv, dir: &std::path::Path, program: &str, args: &[&str]) -> (i32, String, String) {
    let bin = assert_cmd::cargo::cargo_bin("flowloom");
    let bin_dir = bin.parent().expect("bin dir").display().to_string();
    run(std::process::Command::new(program)
        .current_dir(dir)
        .env(
            "PATH",
            format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default()),
        )
        .env("HOME", env.home())
        .env("XDG_CONFIG_HOME", env.home())
        .env("XDG_DATA_HOME", env.home())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", env.home().join(".gitconfig"))
        .args(args))
}

#[allow(clippy::print_stderr)]
fn installed(program: &str) -> bool {
    let found = std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: {program} is not installed");
    }
    found
}

#[test]
fn completions_offer_the_manifests_session_ids() {
    let env = TestEnv::new();
    env.manifest("[sessions.alpha]\n[sessions.alps]\n[sessions.beta]\n");
    env.apply();
    let beta = env.path("sessions/shell-instance-beta").canonicalize().expect("beta");
    let (_, bash_init, _) = env.run(&["shell-init", "bash"]);
    let (_, bash_completions, _) = env.run(&["completions", "bash"]);
    // bash: the completion function, called as bash calls it, fills COMPREPLY.
    let complete = |script: &str, dir: &std::path::Path, words: &str| {
        let cword = words.split(' ').count() - 1;
        let line = format!(
            "{script}\nCOMP_WORDS=({words}); COMP_CWORD={cword}\n\
             _flowloom flowloom \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let (code, out, err) = in_shell(&env, dir, "bash", &["-c", &line]);
        assert_eq!(code, 0, "{words}: {err}");
        out.lines().map(str::to_owned).collect::<Vec<_>>()
    };
    for script in [&bash_init, &bash_completions] {
        assert_eq!(complete(script, &env.repo, "flowloom cd al"), ["alpha", "alps"]);
        assert_eq!(
            complete(script, &env.repo, "flowloom rm --yes ''"),
            ["alpha", "alps", "beta"]
        );
        assert_eq!(complete(script, &env.repo, "flowloom plan --target b"), ["beta"]);
        assert_eq!(complete(script, &env.repo, "flowloom run a"), ["alpha", "alps"]);
        // Where no id goes, clap's completions answer.
        assert!(complete(script, &env.repo, "flowloom pa").contains(&"path".to_owned()));
        assert!(!complete(script, &env.repo, "flowloom run alpha -- ").contains(&"alpha".to_owned()));
    }
    // From a session (the main worktree's manifest), with -C, with --manifest.
    assert_eq!(complete(&bash_init, &beta, "flowloom path b"), ["beta"]);
    assert_eq!(
        complete(&bash_init, env.tmp.path(), "flowloom -C repo path b"),
        ["beta"]
    );
    std::fs::write(env.path("other.toml"), "[sessions.other]\n").expect("write");
    assert_eq!(
        complete(&bash_init, &env.repo, "flowloom --manifest other.toml path ''"),
        ["other"]
    );
    // Outside any repository or manifest: nothing, silently.
    assert_eq!(complete(&bash_init, env.tmp.path(), "flowloom path ''"), [""]);
    // And `flowloom cd` changes directory.
    let (code, out, err) = in_shell(
        &env,
        &env.repo,
        "bash",
        &["-c", &format!("{bash_init}\nflowloom cd beta && pwd")],
    );
    assert_eq!((code, out.trim()), (0, beta.display().to_string().as_str()), "{err}");

    if installed("zsh") {
        zsh_completes(&env, &beta);
    }
    if installed("fish") {
        fish_completes(&env, &beta);
    }
}

/// zsh: the completion function offers the ids, and `flowloom cd` changes directory.
fn zsh_completes(env: &TestEnv, beta: &std::path::Path) {
    let (_, zsh_init, _) = env.run(&["shell-init", "zsh"]);
    // compadd works inside a completion widget only: a stand-in prints what it is given.
    let line = format!(
        "{zsh_init}\ncompadd() {{ [[ $1 == -a ]] && print -l -- \"${{(@P)2}}\" }}\n\
         words=(flowloom cd al); CURRENT=3; _flowloom\n\
         words=(flowloom plan --target ''); CURRENT=4; _flowloom\n\
         flowloom cd beta && pwd"
    );
    let (code, out, err) = in_shell(env, &env.repo, "zsh", &["-f", "-c", &line]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["alpha", "alps", "alpha", "alps", "beta", &beta.display().to_string()],
        "{err}"
    );
    // With compsys loaded, the function is registered for flowloom, without a word.
    let line = format!("autoload -U compinit; compinit -u -D\n{zsh_init}\nprint -r -- $_comps[flowloom]");
    let (code, out, err) = in_shell(env, &env.repo, "zsh", &["-f", "-c", &line]);
    assert_eq!((code, out.trim(), err.as_str()), (0, "_flowloom", ""));
}

/// fish: the completions offer the ids, and `flowloom cd` changes directory.
fn fish_completes(env: &TestEnv, beta: &std::path::Path) {
    let (_, fish_init, _) = env.run(&["shell-init", "fish"]);
    let script = env.tmp.path().join("init.fish");
    std::fs::write(&script, &fish_init).expect("write");
    let line = format!(
        "source {}; complete -C 'flowloom cd al'; complete -C 'flowloom apply --target '; flowloom cd beta; and pwd",
        script.display()
    );
    let (code, out, err) = in_shell(env, &env.repo, "fish", &["-N", "-c", &line]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["alpha", "alps", "alpha", "alps", "beta", &beta.display().to_string()],
        "{err}"
    );
}

#[test]
fn target_plans_and_applies_only_the_named_sessions() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n[sessions.b]\n");
    let (code, out, _) = env.run(&["plan", "--target", "a"]);
    assert_eq!(code, 0);
    assert!(out.contains("+ a") && !out.contains("+ b"), "{out}");
    let (code, out, err) = env.run(&["apply", "--yes", "--target", "b"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(env.path("sessions/shell-instance-b").exists());
    assert!(!env.path("sessions/shell-instance-a").exists());
}

#[test]
fn run_becomes_the_command_new_checks_its_input_and_target_names_a_session() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    // The command's own status, also when a signal ends it (flowloom became the command).
    let status = env
        .flowloom()
        .args(["run", "a", "--", "sh", "-c", "kill -TERM $$"])
        .status()
        .expect("run");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(15), "{status:?}");
    // new: a manifest named with --manifest that is not there, or a base that does not
    // resolve: refused, nothing written.
    std::fs::remove_file(env.path("flowloom.toml")).expect("rm");
    let (code, _, err) = env.run(&["--manifest", "flowloom.toml", "new", "b"]);
    assert_eq!(code, 1);
    assert!(err.contains("flowloom init"), "{err}");
    assert!(!env.path("flowloom.toml").exists());
    env.manifest("[sessions.a]\n");
    let (code, _, err) = env.run(&["new", "b", "--base", "no-such-rev"]);
    assert_eq!(code, 1);
    assert!(err.contains("does not resolve"), "{err}");
    assert_eq!(
        std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest"),
        "[sessions.a]\n"
    );
    // --target naming no session is an error, not "No changes".
    let (code, _, err) = env.run(&["apply", "--yes", "--target", "nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("no such session"), "{err}");
}

#[test]
fn new_and_rm_keep_crlf_and_a_byte_order_mark() {
    let env = TestEnv::new();
    env.write("flowloom.toml", "\u{feff}# team\r\n[sessions.a]\r\npurpose = \"A\"\r\n");
    let (code, _, err) = env.run(&["new", "b", "--shared"]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    assert!(
        text.starts_with("\u{feff}# team\r\n[sessions.a]\r\npurpose = \"A\"\r\n"),
        "{text:?}"
    );
    assert!(text.contains("[sessions.b]\r\n"), "{text:?}");
    assert!(!text.replace("\r\n", "").contains('\n'), "only CRLF: {text:?}");
    let (code, _, err) = env.run(&["rm", "b", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    assert!(text.starts_with("\u{feff}# team\r\n[sessions.a]\r\n"), "{text:?}");
    assert!(!text.contains("sessions.b"), "{text:?}");
}

#[test]
fn rm_of_a_session_never_made_drops_its_declaration() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n[sessions.later]\n");
    let (code, out, err) = env.run(&["rm", "later", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest"),
        "[sessions.a]\n"
    );
    let (code, _, err) = env.run(&["rm", "later", "--yes"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no session `later`"), "{err}");
}

/// The README's agent workflow with its manifest: a root beside the checkout, copies, a
/// port, setup, env; trust, new, run, rm, and the port given back.
#[test]
fn the_readme_agent_workflow_with_its_environment() {
    let env = TestEnv::new();
    env.write(".gitignore", ".env\nnode_modules/\n");
    env.commit("ignore");
    env.write(".env", "TOKEN=x\n");
    env.write("node_modules/dep/index.js", "1\n");
    env.manifest(
        "[defaults]\nroot = \"../{repo}.sessions\"\ncopy = [\".env\", \"node_modules/\"]\nports = [\"web\"]\n\
         setup = [\"echo migrated > migrated.txt\"]\nenv = { APP_URL = \"http://localhost:{port.web}\" }\n",
    );
    let (code, _, err) = env.run(&["trust"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = env.run(&["new", "fix-login", "--purpose", "Fix the login redirect"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let path = std::path::PathBuf::from(out.trim());
    assert_eq!(path, env.tmp.path().join("repo.sessions/shell-instance-fix-login"));
    assert_eq!(std::fs::read_to_string(path.join(".env")).expect(".env"), "TOKEN=x\n");
    assert!(path.join("node_modules/dep/index.js").is_file());
    assert_eq!(
        std::fs::read_to_string(path.join("migrated.txt")).expect("setup ran"),
        "migrated\n"
    );
    let (code, out, _) = env.run(&["run", "fix-login", "--", "sh", "-c", "echo $APP_URL $FLOWLOOM_PORT_WEB"]);
    assert_eq!(code, 0);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words.len(), 2, "{out}");
    assert_eq!(words[0], format!("http://localhost:{}", words[1]));
    // The agent's work lands (committed, merged), and rm takes the session away.
    std::fs::remove_file(path.join("migrated.txt")).expect("rm");
    env.commit_file(&path, "fix.txt", "fixed\n", "fix the login redirect");
    env.git(&["merge", "-q", "session/fix-login"]);
    let (code, out, err) = env.run(&["rm", "fix-login", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!path.exists());
    let registry = std::fs::read_to_string(env.home().join(".local/state/flowloom/ports.json")).expect("registry");
    assert!(!registry.contains("fix-login"), "{registry}");
    // Nothing of the sessions shows in the main worktree (the manifest is the user's).
    assert_eq!(env.git(&["status", "--porcelain"]), "?? flowloom.toml\n");
    env.fsck();
}
