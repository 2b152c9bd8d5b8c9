//! SPEC §11.2, first use: `run ID CMD` without `--`, hints for a mistaken flag and for the
//! command names of other tools, no library's raw error text, `init`'s root beside the
//! repository.

use crate::common::TestEnv;

#[test]
fn run_takes_the_command_without_double_dash() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    let (code, out, err) = env.run(&["run", "a", "ls", "-a"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l == "README.md"), "{out}");
    let (code, out, _) = env.run(&["run", "a", "--", "sh", "-c", "echo -- $0", "x"]);
    assert_eq!(code, 0);
    assert_eq!(out, "-- x\n");
    let (code, _, err) = env.run(&["run", "--bogus", "a", "ls"]);
    assert_eq!(code, 1);
    assert!(err.contains("flowloom run ID -- CMD"), "{err}");
}

#[test]
fn familiar_command_names_get_a_hint() {
    let env = TestEnv::new();
    for (name, hint) in [
        ("switch", "flowloom cd ID"),
        ("create", "flowloom new ID"),
        ("remove", "flowloom rm ID"),
    ] {
        let (code, _, err) = env.run(&[name, "x"]);
        assert_eq!(code, 1);
        assert!(err.contains(hint), "{name}: {err}");
    }
}

#[test]
fn no_raw_library_text_outside_a_repository() {
    let env = TestEnv::empty();
    std::fs::create_dir_all(&env.repo).expect("dir");
    let (code, _, err) = env.run(&["status"]);
    assert_eq!(code, 1);
    assert!(err.contains("is not inside a git repository"), "{err}");
    assert!(!err.contains("NotFound"), "{err}");
}

#[test]
fn init_puts_the_root_beside_the_repository() {
    let env = TestEnv::new();
    let (code, _, err) = env.run(&["init"]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    assert!(text.contains("root       = \"../{repo}.sessions\""), "{text}");
    let (code, out, err) = env.run(&["new", "first"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().ends_with("repo.sessions/shell-instance-first"), "{out}");
    assert_eq!(env.git(&["status", "--porcelain"]), "?? flowloom.toml\n");
}
