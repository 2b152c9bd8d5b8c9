//! A worktrees root beside the repository (`root = "../{repo}.sessions"`, issue 12): tools
//! that walk the main checkout never meet nested copies, everything works as with a root
//! inside it, and a root that would land in git's files, in the main worktree or above it,
//! or in another repository or worktree is refused on its real path, with nothing written.

use std::path::{Path, PathBuf};

use crate::common::TestEnv;

const BESIDE: &str = "[defaults]\nroot = \"../{repo}.sessions\"\n";

/// The sibling root of `env`: `<tmp>/repo.sessions`, canonical.
fn sibling(env: &TestEnv) -> PathBuf {
    env.tmp.path().canonicalize().expect("tmp").join("repo.sessions")
}

/// `git status --porcelain --untracked-files=all` of a worktree.
fn porcelain(env: &TestEnv, dir: &Path) -> String {
    env.git_in(dir, &["status", "--porcelain", "--untracked-files=all"])
}

#[test]
fn a_root_beside_the_repository_works_end_to_end() {
    let env = TestEnv::new();
    env.manifest(&format!("{BESIDE}[sessions.a]\n[sessions.b]\n"));
    env.commit("manifest");
    let (code, out, err) = env.run(&["plan"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("../repo.sessions/shell-instance-a"), "{out}");
    env.apply();
    let root = sibling(&env);
    let a = root.join("shell-instance-a");
    let b = root.join("shell-instance-b");
    // git agrees: registered worktrees on their branches, beside the repository.
    assert_eq!(
        env.worktrees(),
        [
            (a.display().to_string(), "session/a".to_owned()),
            (b.display().to_string(), "session/b".to_owned()),
        ]
    );
    for wt in [&a, &b] {
        assert!(wt.join(".git").is_file());
        assert!(wt.join("sessions").is_dir(), "the session folder is in the worktree");
        assert_eq!(porcelain(&env, wt), "", "{}", wt.display());
    }
    // Nothing of the sessions is in the main worktree, untracked or hidden.
    assert_eq!(porcelain(&env, &env.repo), "");
    assert!(!env.path("sessions").exists());
    let ignored = env.git(&["status", "--porcelain", "--ignored"]);
    assert_eq!(ignored, "", "{ignored}");
    let exclude = std::fs::read_to_string(env.path(".git/info/exclude")).expect("exclude");
    assert!(!exclude.contains("shell-instance"), "no worktree lines: {exclude}");
    assert!(exclude.contains("/sessions/a/"), "{exclude}");
    env.fsck();
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");

    // status, path, run, and the same from inside a session (`{repo}` stays the main
    // worktree's name, not the session folder's).
    let (code, out, err) = env.run(&["status", "--wide"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("../repo.sessions/shell-instance-b"), "{out}");
    let (code, out, _) = env.run(&["path", "a"]);
    assert_eq!((code, out.trim()), (0, a.display().to_string().as_str()));
    let (code, out, _) = crate::common::run(env.flowloom_in(&b).args(["path", "a"]));
    assert_eq!((code, out.trim()), (0, a.display().to_string().as_str()));
    let (code, out, _) = crate::common::run(env.flowloom_in(&b).args(["plan", "--detailed-exitcode"]));
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = env.run(&["run", "b", "--", "pwd"]);
    assert_eq!((code, out.trim()), (0, b.display().to_string().as_str()));

    // new: declared and made beside the repository, its path printed.
    let (code, out, err) = env.run(&["new", "c"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out.trim(), root.join("shell-instance-c").display().to_string());

    // rm: removed through the trash in the sibling root, which is left empty.
    let (code, out, err) = env.run(&["rm", "b", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!b.exists());
    assert!(!env.branches().contains(&"session/b".to_owned()));
    let trash = root.join(".flowloom-trash");
    assert!(!trash.exists() || std::fs::read_dir(&trash).expect("trash").count() == 0);
    assert!(!env.worktrees().iter().any(|(_, br)| br == "session/b"));

    // git removes a session beside the repository as any worktree; the next apply makes it
    // again from its branch.
    env.git(&["worktree", "remove", &a.display().to_string()]);
    assert!(!a.exists());
    let (code, out, _) = env.run(&["plan"]);
    assert_eq!(code, 0);
    assert!(out.contains("+ a") && out.contains("existing branch"), "{out}");
    env.apply();
    assert!(a.join(".git").is_file());

    // import: a session made by hand in the sibling root is adopted.
    env.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "session/h",
        &root.join("shell-instance-h").display().to_string(),
    ]);
    let (code, out, err) = env.run(&["import", "--yes", "--shared"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let manifest = std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest");
    assert!(manifest.contains("[sessions.h]"), "{manifest}");
    // (It has no metadata file yet: the next apply writes it.)
    env.apply();
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(porcelain(&env, &env.repo), " M flowloom.toml\n");
    env.fsck();
}

/// Everything flowloom could have written, to compare before and after a refusal.
fn written(env: &TestEnv, extra: &Path) -> (String, Vec<String>, bool, String, bool) {
    (
        env.git(&["worktree", "list", "--porcelain"]),
        env.branches(),
        env.path(".git/flowloom/owned.json").exists(),
        std::fs::read_to_string(env.path(".git/info/exclude")).unwrap_or_default(),
        extra.exists(),
    )
}

/// Each of `plan`, `apply` and `new` exits 1 saying `why`, and nothing is written: no
/// worktree, branch, record or exclude line, not `probe`, and the manifest as it was.
fn refused(env: &TestEnv, root: &str, why: &str, probe: &Path) {
    let manifest = format!("[defaults]\nroot = \"{root}\"\n[sessions.a]\n");
    env.manifest(&manifest);
    let before = written(env, probe);
    for args in [&["plan"][..], &["apply", "--yes"][..], &["new", "x"][..]] {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 1, "{root}: {args:?}: {out}\n{err}");
        // As one line: the report wraps long messages.
        let err = err
            .split_whitespace()
            .filter(|w| *w != "│")
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            err.contains("cannot be used") && err.contains(why),
            "{root}: {args:?}: {err}"
        );
        assert!(err.contains("help:"), "{err}");
        assert_eq!(written(env, probe), before, "{root}: {args:?} wrote something");
        assert_eq!(
            std::fs::read_to_string(env.path("flowloom.toml")).expect("manifest"),
            manifest
        );
    }
}

#[test]
fn a_root_beside_the_repository_is_checked_on_its_real_path() {
    let env = TestEnv::new();
    let tmp = env.tmp.path().canonicalize().expect("tmp");
    let elsewhere = tmp.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");

    // The root, or a folder on the way to it, is a symlink.
    std::os::unix::fs::symlink(&elsewhere, tmp.join("repo.sessions")).expect("symlink");
    refused(
        &env,
        "../{repo}.sessions",
        "is a symlink",
        &elsewhere.join("shell-instance-a"),
    );
    std::fs::remove_file(tmp.join("repo.sessions")).expect("rm");
    std::os::unix::fs::symlink(&elsewhere, tmp.join("links")).expect("symlink");
    refused(&env, "../links/s", "is a symlink", &elsewhere.join("s"));
    assert_eq!(std::fs::read_dir(&elsewhere).expect("dir").count(), 0);

    // The main worktree itself, or a folder above it.
    refused(&env, "../{repo}", "is the main worktree", &env.path("shell-instance-a"));
    // Two folders up is refused before the path is looked at (SPEC §11.4).
    let parent = tmp.file_name().expect("name").to_string_lossy().into_owned();
    env.manifest(&format!("[defaults]\nroot = \"../../{parent}\"\n[sessions.a]\n"));
    let (code, _, err) = env.run(&["plan"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("at most 1 allowed"), "{err}");

    // Another repository's work tree, a bare repository, another worktree of this one.
    env.git_in(&tmp, &["init", "-q", "other"]);
    refused(&env, "../other/s", "another git repository", &tmp.join("other/s"));
    refused(
        &env,
        "../other",
        "another git repository",
        &tmp.join("other/shell-instance-a"),
    );
    env.git_in(&tmp, &["init", "-q", "--bare", "bare.git"]);
    refused(&env, "../bare.git/s", "a git directory", &tmp.join("bare.git/s"));
    env.git(&["worktree", "add", "-q", "../feature", "develop"]);
    refused(
        &env,
        "../feature/s",
        "a worktree of this repository",
        &tmp.join("feature/s"),
    );
    assert_eq!(env.git_in(&tmp.join("feature"), &["status", "--porcelain"]), "");
}

#[test]
fn a_root_resolving_into_a_separate_git_directory_is_refused() {
    let env = TestEnv::empty();
    let tmp = env.tmp.path().canonicalize().expect("tmp");
    env.git_in(
        &tmp,
        &["init", "-q", "-b", "main", "--separate-git-dir", "store", "repo"],
    );
    env.write("README.md", "hi\n");
    env.commit("initial");
    refused(&env, "../store/s", "inside the git directory", &tmp.join("store/s"));
    // Declared correctly, the same repository works beside itself.
    env.manifest(&format!("{BESIDE}[sessions.a]\n"));
    env.apply();
    assert!(tmp.join("repo.sessions/shell-instance-a/.git").is_file());
    env.fsck();
}

#[test]
fn root_placeholders_other_than_repo_are_refused_with_a_span() {
    let env = TestEnv::new();
    env.manifest("[defaults]\nroot = \"../{id}.sessions\"\n[sessions.a]\n");
    let (code, _, err) = env.run(&["validate"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown placeholder `{id}`"), "{err}");
    assert!(err.contains("belongs in the `worktree` template"), "{err}");
    env.manifest("[defaults]\nroot = \"/srv/sessions\"\n[sessions.a]\n");
    let (code, _, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("an absolute path") && err.contains("../{repo}.sessions"),
        "{err}"
    );
    assert!(env.worktrees().is_empty());
    env.manifest(&format!("{BESIDE}[sessions.a]\n"));
    let (code, out, err) = env.run(&["validate"]);
    assert_eq!(code, 0, "{out}\n{err}");
}
