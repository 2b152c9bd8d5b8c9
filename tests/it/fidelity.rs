//! Git fidelity beyond the checkout (the differential rows compare the results): what the
//! plan says about it.

use crate::common::TestEnv;

/// `branch.autoSetupMerge=always` tracks a local base; the plan says so before apply.
#[test]
fn plan_shows_the_upstream_branch_auto_setup_merge_gives() {
    let env = TestEnv::new();
    env.git(&["config", "branch.autoSetupMerge", "always"]);
    env.manifest("[sessions.x]\nbase = \"develop\"\n");
    let (code, out, err) = env.run(&["plan"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("new branch from develop") && out.contains("tracking develop"),
        "{out}"
    );
    let (code, _, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.git(&["config", "branch.session/x.remote"]).trim(), ".");
    assert_eq!(
        env.git(&["config", "branch.session/x.merge"]).trim(),
        "refs/heads/develop"
    );
}

/// A value git refuses blocks the creation with the reason, as `git branch` fails.
#[test]
fn invalid_branch_auto_setup_merge_blocks_with_the_reason() {
    let env = TestEnv::new();
    env.git(&["config", "branch.autoSetupMerge", "sometimes"]);
    env.manifest("[sessions.x]\n");
    let (code, out, err) = env.run(&["plan"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        format!("{out}{err}").contains("branch.autoSetupMerge is `sometimes`"),
        "{out}{err}"
    );
    assert!(!env.path("sessions").exists());
}

/// `v1` is a tag and a branch: `git worktree add -b` refuses it ("ambiguous object name"),
/// and so does flowloom, before anything is made, naming both refs.
#[test]
fn a_base_naming_a_tag_and_a_branch_is_refused_as_git_refuses_it() {
    let env = TestEnv::new();
    env.git(&["tag", "v1", "develop"]);
    env.git(&["branch", "v1", "main"]);
    let git = env.git_output(&env.repo, &["worktree", "add", "-q", "-b", "probe", "../probe", "v1"]);
    assert!(!git.status.success(), "git took the ambiguous base");
    env.manifest("[sessions.x]\nbase = \"v1\"\n");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_ne!(code, 0, "{out}");
    let said = format!("{out}{err}");
    assert!(
        said.contains("ambiguous") && said.contains("refs/tags/v1") && said.contains("refs/heads/v1"),
        "{said}"
    );
    assert!(!env.path("sessions/shell-instance-x").exists(), "{said}");
    // Named in full, it is one ref again.
    env.manifest("[sessions.x]\nbase = \"refs/tags/v1\"\n");
    let (code, _, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{err}");
}

/// A stand-in for `git lfs filter-process` whose objects are missing: it answers every
/// smudge with `status=error` (`FAKE_LFS=error`, as git-lfs does) or dies mid-request
/// (`FAKE_LFS=die`, which leaves the reader "failed to fill whole buffer").
const FAKE_LFS: &str = include_str!("fake-lfs.pl");

fn lfs_repo(mode: &str) -> TestEnv {
    let env = TestEnv::new();
    env.write(".gitattributes", "*.bin filter=lfs diff=lfs merge=lfs -text\n");
    env.write(
        "assets/big.bin",
        "version https://git-lfs.github.com/spec/v1\n\
         oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n",
    );
    env.commit("lfs pointer");
    let script = env.tmp.path().join("fake-lfs.pl");
    std::fs::write(&script, FAKE_LFS).expect("script");
    env.git(&[
        "config",
        "filter.lfs.process",
        &format!("env FAKE_LFS={mode} perl '{}'", script.display()),
    ]);
    env.git(&["config", "filter.lfs.required", "true"]);
    env
}

/// A missing LFS object fails the creation naming the file and `git lfs fetch` (git fails
/// too: "smudge filter lfs failed"), and nothing of the session is left: no worktree, no
/// registration, no branch, no folder.
#[test]
fn a_missing_lfs_object_is_named_and_leaves_nothing() {
    for mode in ["error", "die"] {
        let env = lfs_repo(mode);
        let git = env.git_output(&env.repo, &["worktree", "add", "-q", "-b", "probe", "../probe", "main"]);
        assert!(!git.status.success(), "git checked out a missing LFS object");
        env.manifest("[sessions.x]\n");
        let (code, out, err) = env.run(&["apply", "--yes"]);
        assert_eq!(code, 1, "{mode}: {out}\n{err}");
        let flat = format!("{out}{err}")
            .replace('│', "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            flat.contains("assets/big.bin") && flat.contains("git lfs fetch"),
            "{mode}: {flat}"
        );
        assert!(!flat.contains("fill whole buffer"), "{mode}: {flat}");
        assert!(!env.path("sessions/shell-instance-x").exists(), "{mode}: folder left");
        assert!(
            !env.git(&["worktree", "list", "--porcelain"])
                .contains("shell-instance-x"),
            "{mode}: registration left"
        );
        assert!(!env.branches().contains(&"session/x".to_owned()), "{mode}: branch left");
        env.fsck();
    }
}

/// A base that commits `sessions/<id>/metadata.json`: git checks that file out, and
/// flowloom never overwrites it, so the plan blocks that session with the reason (typed:
/// `session_folder_tracked`); other sessions are made.
#[test]
fn a_base_tracking_the_session_metadata_blocks_that_session() {
    let env = TestEnv::new();
    env.write("sessions/x/metadata.json", "{\"committed\": true}\n");
    env.commit("a committed session file");
    env.manifest("[sessions.x]\n[sessions.y]\n");
    let (code, out, err) = env.run(&["plan", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("session_folder_tracked"), "{out}");
    let (_, out, err) = env.run(&["apply", "--yes"]);
    let flat = format!("{out}{err}").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("its base tracks sessions/x/metadata.json"), "{flat}");
    assert!(!env.path("sessions/shell-instance-x").exists(), "{flat}");
    assert!(
        env.path("sessions/shell-instance-y/sessions/y/metadata.json").is_file(),
        "{flat}"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("sessions/shell-instance-y/sessions/x/metadata.json")).expect("checked out"),
        "{\"committed\": true}\n",
        "the committed file is what git checks out"
    );
}

/// Every file below the temp folder (repository, sessions, home), for "nothing written".
fn snapshot(env: &TestEnv) -> std::collections::BTreeMap<String, String> {
    let mut files = std::collections::BTreeMap::new();
    crate::differential::walk(env.tmp.path(), std::path::Path::new(""), &mut files);
    files
}

/// An unknown extension in a version 1 repository: git refuses every command there ("unknown
/// repository extension found"), and so does every flowloom command that opens the
/// repository, naming the extension, exit 1, with nothing written (the differential rows
/// compare `apply` with `git worktree add`).
#[test]
fn an_unknown_repository_extension_is_refused_by_every_command() {
    let env = TestEnv::new();
    env.manifest("[sessions.x]\n[sessions.y]\n");
    env.apply();
    env.git(&["config", "core.repositoryFormatVersion", "1"]);
    let config = env.path(".git/config");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("[extensions]\n\tsomethingNew = true\n");
    std::fs::write(&config, text).expect("config");
    assert!(!env.git_output(&env.repo, &["status"]).status.success(), "git took it");
    let before = snapshot(&env);
    let commands: &[&[&str]] = &[
        &["plan"],
        &["apply", "--yes"],
        &["status"],
        &["status", "--json"],
        &["validate"],
        &["new", "z"],
        &["rm", "--yes", "x"],
        &["merge", "--yes", "x"],
        &["path", "x"],
        &["run", "x", "--", "true"],
        &["setup", "x"],
        &["trust"],
        &["import", "--yes"],
        &["share", "y"],
        &["unshare", "y"],
        &["init"],
    ];
    for args in commands {
        let (code, out, err) = env.run(args);
        let said = format!("{out}{err}").split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(code, 1, "{args:?}: {said}");
        assert!(
            said.contains("extension") && said.contains("somethingnew"),
            "{args:?}: {said}"
        );
        // From inside a session too.
        let (code, _, err) = crate::common::run(env.flowloom_in(&env.path("sessions/shell-instance-x")).args(*args));
        assert_eq!(code, 1, "{args:?} in a session: {err}");
        assert_eq!(snapshot(&env), before, "{args:?} wrote something");
    }
}

/// `:/text` bases resolve as `git rev-parse` resolves them (the youngest commit reachable
/// from any ref whose message matches; `:/!-text` for the youngest that does not), on the
/// command line and in the manifest; one that matches nothing is refused, naming it, with
/// nothing made.
#[test]
fn message_search_bases_resolve_as_git_resolves_them() {
    let env = TestEnv::new();
    let git_says = |spec: &str| env.git(&["rev-parse", spec]).trim().to_owned();
    let tip = |branch: &str| env.git(&["rev-parse", branch]).trim().to_owned();
    env.manifest("");
    let (code, _, err) = env.run(&["new", "a", "--base", ":/develop work"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(tip("session/a"), git_says(":/develop work"));
    env.manifest("[sessions.b]\nbase = \":/!-develop\"\n[sessions.c]\nbase = \":/tool\"\n");
    env.apply();
    assert_eq!(tip("session/b"), git_says(":/!-develop"));
    assert_eq!(tip("session/c"), git_says(":/tool"));
    let (code, out, err) = env.run(&["new", "d", "--base", ":/no such message"]);
    let said = format!("{out}{err}");
    assert_eq!(code, 1, "{said}");
    assert!(said.contains(":/no such message"), "{said}");
    assert!(!env.branches().contains(&"session/d".to_owned()), "{said}");
    assert!(!env.path("sessions/shell-instance-d").exists(), "{said}");
}

/// A repository folder moved after its sessions were made, and what `git worktree repair`
/// (plus `git worktree move`, where flowloom moves a worktree left outside the new root)
/// writes in a copy of it moved alike: flowloom writes the same links, says so in its plan
/// (`repair_links`), moves the ownership record's paths along, and ends with nothing to do.
struct Moved {
    /// The manifest (sessions `x` and `y`).
    manifest: &'static str,
    /// Where the worktrees are, relative to the repository's folder.
    sessions: &'static str,
    /// Whether the sessions' folder moves with the repository (when it is beside it).
    sessions_move: bool,
}

const MOVES: &[Moved] = &[
    Moved {
        manifest: "[sessions.x]\n[sessions.y]\n",
        sessions: "sessions",
        sessions_move: true,
    },
    Moved {
        manifest: "[defaults]\nroot = \"../{repo}.sessions\"\n[sessions.x]\n[sessions.y]\n",
        sessions: "../repo.sessions",
        sessions_move: true,
    },
    Moved {
        manifest: "[defaults]\nroot = \"../{repo}.sessions\"\n[sessions.x]\n[sessions.y]\n",
        sessions: "../repo.sessions",
        sessions_move: false,
    },
];

/// Moves `<tmp>/a/repo` (with `repo.sessions` beside it when `sessions_move`) to `<tmp>/b/`.
fn move_repository(env: &TestEnv, sessions_move: bool) {
    let (a, b) = (env.tmp.path().join("a"), env.tmp.path().join("b"));
    std::fs::create_dir_all(&b).expect("mkdir");
    std::fs::rename(a.join("repo"), b.join("repo")).expect("move the repository");
    if sessions_move && a.join("repo.sessions").exists() {
        std::fs::rename(a.join("repo.sessions"), b.join("repo.sessions")).expect("move the sessions");
    }
}

/// The links of every session worktree of the repository at `repo`, and git's list.
fn links(env: &TestEnv, repo: &std::path::Path) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    for id in ["shell-instance-x", "shell-instance-y"] {
        let gitdir = std::fs::read_to_string(repo.join(".git/worktrees").join(id).join("gitdir")).expect("gitdir");
        let worktree = std::path::Path::new(gitdir.trim())
            .parent()
            .expect("worktree")
            .to_owned();
        let dot_git = std::fs::read_to_string(worktree.join(".git")).unwrap_or_else(|e| format!("({e})"));
        seen.push((format!("{id}/gitdir"), gitdir));
        seen.push((format!("{id}: .git"), dot_git));
    }
    let list = env.git_in(repo, &["worktree", "list", "--porcelain"]);
    seen.push(("git worktree list".into(), list));
    seen
}

#[test]
fn a_moved_repository_is_repaired_as_git_worktree_repair_repairs_it() {
    for case in MOVES {
        let mut env = TestEnv::new();
        let a = env.tmp.path().join("a");
        std::fs::create_dir(&a).expect("mkdir");
        std::fs::rename(&env.repo, a.join("repo")).expect("move");
        env.repo = a.join("repo");
        env.manifest(case.manifest);
        env.apply();
        let copy = env.tmp.path().join("copy");
        let out = std::process::Command::new("cp")
            .arg("-a")
            .arg(&a)
            .arg(&copy)
            .output()
            .expect("cp");
        assert!(out.status.success());
        move_repository(&env, case.sessions_move);
        env.repo = env.tmp.path().join("b/repo");
        let sessions = env.repo.join(case.sessions);

        // flowloom: the plan says it, apply does it, and the next plan has nothing to do.
        let (code, out, err) = env.run(&["plan", "--json"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("\"repair_links\""), "{}: {out}", case.sessions);
        assert!(!out.contains("\"action\": \"blocked\""), "{}: {out}", case.sessions);
        env.apply();
        let (code, out, err) = env.run(&["plan", "--detailed-exitcode"]);
        assert_eq!(code, 0, "{}: {out}{err}", case.sessions);
        let by_flowloom = links(&env, &env.repo);
        let record = std::fs::read_to_string(env.path(".git/flowloom/owned.json")).expect("record");
        assert!(
            !record.contains("/a/"),
            "the record still names the old place: {record}"
        );
        env.git_in(&sessions.join("shell-instance-x"), &["status", "--short"]);
        env.fsck();

        // git, in the copy moved alike to the same place.
        let done = env.tmp.path().join("done-by-flowloom");
        std::fs::rename(env.tmp.path().join("b"), &done).expect("aside");
        let _ = std::fs::rename(&a, env.tmp.path().join("left-by-flowloom"));
        std::fs::rename(&copy, &a).expect("the copy in");
        move_repository(&env, case.sessions_move);
        let (left, moved) = (a.join("repo.sessions"), sessions.clone());
        if case.sessions_move {
            let x = moved.join("shell-instance-x").display().to_string();
            let y = moved.join("shell-instance-y").display().to_string();
            env.git(&["worktree", "repair", &x, &y]);
        } else {
            env.git(&["worktree", "repair"]);
            for id in ["shell-instance-x", "shell-instance-y"] {
                let (from, to) = (left.join(id), moved.join(id));
                std::fs::create_dir_all(&moved).expect("mkdir");
                env.git(&[
                    "worktree",
                    "move",
                    &from.display().to_string(),
                    &to.display().to_string(),
                ]);
            }
        }
        assert_eq!(by_flowloom, links(&env, &env.repo), "{}", case.sessions);
    }
}

/// A kill after the ownership record moved but before the links did: the next apply
/// repairs them and converges.
#[test]
fn a_link_repair_killed_halfway_converges() {
    let mut env = TestEnv::new();
    let a = env.tmp.path().join("a");
    std::fs::create_dir(&a).expect("mkdir");
    std::fs::rename(&env.repo, a.join("repo")).expect("move");
    env.repo = a.join("repo");
    env.manifest("[sessions.x]\n[sessions.y]\n");
    env.apply();
    move_repository(&env, true);
    env.repo = env.tmp.path().join("b/repo");
    let (code, _, _) = crate::common::run(
        env.flowloom()
            .env("FLOWLOOM_FAILPOINT", "repair:recorded")
            .args(["apply", "--yes"]),
    );
    assert_ne!(code, 0, "the failpoint did not fire");
    let (code, out, err) = env.run(&["plan"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("repair links"), "{out}");
    env.apply();
    let (code, out, err) = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(env.worktrees().len(), 2);
    env.fsck();
}

/// The post-checkout hook gets the environment `git worktree add` gives it, started in a
/// subfolder under the caller's `GIT_DIR`, `GIT_WORK_TREE`, `GIT_INDEX_FILE` and
/// `GIT_OBJECT_DIRECTORY`: `GIT_PREFIX` is the subfolder, `GIT_DIR`/`GIT_WORK_TREE` are
/// gone, it runs in the new worktree with `<null> <new HEAD> 1`. git lets the caller's
/// index and object folder through (its hook's `git` then works on the caller's index);
/// flowloom clears them too, and a hook that runs `git status` sees the new worktree.
#[test]
fn the_post_checkout_hook_gets_gits_environment_and_no_caller_location() {
    let env = TestEnv::new();
    let hook = format!(
        "{}git status --porcelain > hook-status\n",
        crate::differential::ENV_HOOK
    );
    env.write(".git/hooks/post-checkout", &hook);
    crate::common::set_executable(&env.path(".git/hooks/post-checkout"));
    let repo = env.repo.display().to_string();
    let caller = [
        ("GIT_DIR", format!("{repo}/.git")),
        ("GIT_WORK_TREE", repo.clone()),
        ("GIT_INDEX_FILE", format!("{repo}/.git/index")),
        ("GIT_OBJECT_DIRECTORY", format!("{repo}/.git/objects")),
    ];
    let mut git = std::process::Command::new("git");
    crate::common::hermetic(&mut git, &env.home());
    let out = git
        .current_dir(env.path("src"))
        .envs(caller.iter().map(|(k, v)| (k, v)))
        .args(["worktree", "add", "-q", "-b", "probe", "../../probe", "main"])
        .output()
        .expect("git worktree add");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let probe = env.tmp.path().join("probe");
    let by_git = std::fs::read_to_string(probe.join("hook-env")).expect("git ran the hook");
    assert!(by_git.contains("GIT_PREFIX=src/\n"), "{by_git}");
    env.manifest("[sessions.x]\n");
    let (code, out, err) = crate::common::run(
        env.flowloom_in(&env.path("src"))
            .envs(caller.iter().map(|(k, v)| (k, v)))
            .args(["apply", "--yes"]),
    );
    assert_eq!(code, 0, "{out}{err}");
    let worktree = env.path("sessions/shell-instance-x");
    let by_flowloom = std::fs::read_to_string(worktree.join("hook-env")).expect("flowloom ran the hook");
    let expected: String = by_git
        .lines()
        .filter(|l| !l.starts_with("GIT_INDEX_FILE=") && !l.starts_with("GIT_OBJECT_DIRECTORY="))
        .map(|l| {
            format!(
                "{}\n",
                l.replace(&probe.display().to_string(), &worktree.display().to_string())
            )
        })
        .collect();
    assert_eq!(by_flowloom, expected);
    let status = std::fs::read_to_string(worktree.join("hook-status")).expect("git status in the hook");
    assert_eq!(
        status, "?? hook-env\n?? hook-status\n",
        "the hook's git works on the new worktree"
    );
}

/// `stat %a` of `path`.
fn mode(path: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path).expect("stat");
    format!("{:o}", meta.permissions().mode() & 0o7777)
}

/// With `core.sharedRepository=group` under umask 077, what flowloom makes in the git dir
/// for itself (its lock, its record and the folder of it) gets the modes git gives what it
/// makes there (`adjust_shared_perm`): files 660, folders 2770; the session's ref and
/// reflog too (the differential rows compare those with git's).
#[test]
fn flowloom_files_in_a_shared_repository_get_gits_modes() {
    let env = TestEnv::new();
    env.git(&["config", "core.sharedRepository", "group"]);
    env.manifest("[sessions.x]\n");
    let mut cmd = std::process::Command::new("sh");
    crate::common::hermetic(&mut cmd, &env.home());
    let flowloom = assert_cmd::cargo::cargo_bin("flowloom");
    let (code, out, err) = crate::common::run(
        cmd.current_dir(&env.repo)
            .args(["-c", "umask 077 && exec \"$0\" apply --yes"])
            .arg(&flowloom),
    );
    assert_eq!(code, 0, "{out}{err}");
    let git_dir = env.path(".git");
    assert_eq!(mode(&git_dir.join("flowloom.lock")), "660");
    assert_eq!(mode(&git_dir.join("flowloom")), "2770");
    assert_eq!(mode(&git_dir.join("flowloom/owned.json")), "660");
    assert_eq!(mode(&git_dir.join("refs/heads/session/x")), "660");
    assert_eq!(mode(&git_dir.join("logs/refs/heads/session/x")), "660");
    assert_eq!(mode(&env.path("sessions/shell-instance-x")), "2770");
}

/// A `core.sharedRepository` git refuses (the owner could not write) is refused before
/// anything is made, as `git worktree add` dies on it.
#[test]
fn a_shared_repository_mode_git_refuses_is_refused() {
    let env = TestEnv::new();
    env.git(&["config", "core.sharedRepository", "0440"]);
    let git = env.git_output(&env.repo, &["worktree", "add", "-q", "-b", "probe", "../probe", "main"]);
    assert!(!git.status.success(), "git took core.sharedRepository=0440");
    env.manifest("[sessions.x]\n");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("core.sharedRepository is `0440`"),
        "{out}{err}"
    );
    assert!(!env.path("sessions").exists());
}

/// `merge` updating the base's worktree writes a UTF-16 file (and a UTF-32 one) as `git
/// merge` does: in its encoding, with git's byte order mark; `git status` sees no change.
/// An `index.skipHash` index keeps git's null trailer.
#[test]
fn merge_writes_wide_encodings_and_the_index_as_git_does() {
    let env = TestEnv::new();
    env.git(&["config", "index.skipHash", "true"]);
    env.write(
        ".gitattributes",
        "*.u16 text working-tree-encoding=UTF-16\n*.u32 text working-tree-encoding=UTF-32BE\n",
    );
    env.manifest("[sessions.a]\npurpose = \"wide\"\n");
    env.commit("attributes");
    env.apply();
    let wt = env.path("sessions/shell-instance-a");
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain("h\u{e9}\n".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let utf32: Vec<u8> = "h\u{e9}\n".chars().flat_map(|c| u32::from(c).to_be_bytes()).collect();
    std::fs::write(wt.join("a.u16"), &utf16).expect("write");
    std::fs::write(wt.join("b.u32"), &utf32).expect("write");
    env.git_in(&wt, &["add", "a.u16", "b.u32"]);
    env.git_in(&wt, &["commit", "-qm", "wide files"]);
    let (code, out, err) = env.run(&["merge", "--yes", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(std::fs::read(env.path("a.u16")).expect("merged"), utf16);
    assert_eq!(std::fs::read(env.path("b.u32")).expect("merged"), utf32);
    let status = env.git(&["status", "--porcelain"]);
    assert!(!status.contains(".u16") && !status.contains(".u32"), "{status}");
    let index = std::fs::read(env.path(".git/index")).expect("index");
    assert_eq!(&index[index.len() - 20..], &[0u8; 20][..], "git's null trailer");
    env.fsck();
}

/// `GIT_ALTERNATE_OBJECT_DIRECTORIES`: a `clone --shared` whose `objects/info/alternates`
/// is gone, so that its objects are found only in the folder the variable names. With the
/// variable set, everything works as it does for git: `apply` and `new` check sessions out,
/// `plan` converges, `status` reads them, a commit made in one merges (its objects written
/// into the repository's own folder), and `run` hands the variable on so that `git` in
/// another session reads its commits.
#[test]
fn objects_found_only_through_git_alternate_object_directories_are_read() {
    let env = TestEnv::new();
    let clone = env.tmp.path().join("clone");
    env.git_in(env.tmp.path(), &["clone", "-q", "--shared", "repo", "clone"]);
    std::fs::remove_file(clone.join(".git/objects/info/alternates")).expect("alternates");
    let objects = env.repo.join(".git/objects");
    let with_var = |mut cmd: std::process::Command| {
        cmd.env("GIT_ALTERNATE_OBJECT_DIRECTORIES", &objects);
        crate::common::run(&mut cmd)
    };
    let git = |args: &[&str]| {
        let mut cmd = std::process::Command::new("git");
        crate::common::hermetic(&mut cmd, &env.home());
        cmd.current_dir(&clone).args(args);
        with_var(cmd)
    };
    let flowloom = |args: &[&str]| {
        let mut cmd = env.flowloom_in(&clone);
        cmd.args(args);
        with_var(cmd)
    };
    assert!(
        !env.git_output(&clone, &["log", "-1"]).status.success(),
        "objects still found"
    );
    std::fs::write(clone.join("flowloom.toml"), "[sessions.x]\n").expect("manifest");

    let (code, out, err) = flowloom(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let wt = clone.join("sessions/shell-instance-x");
    assert_eq!(
        std::fs::read_to_string(wt.join("README.md")).expect("checked out"),
        "hello\n"
    );
    let (code, out, err) = flowloom(&["new", "y"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = flowloom(&["plan"]);
    assert_eq!(code, 0, "plan does not converge:\n{out}{err}");
    let (code, out, err) = flowloom(&["status"]);
    assert_eq!(code, 0, "{out}{err}");

    std::fs::write(wt.join("NEW.md"), "new\n").expect("write");
    let (code, _, err) = git(&["-C", "sessions/shell-instance-x", "add", "NEW.md"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = git(&["-C", "sessions/shell-instance-x", "commit", "-qm", "add NEW.md"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = flowloom(&["merge", "--yes", "x"]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, landed, _) = git(&["show", "main:NEW.md"]);
    assert_eq!(landed, "new\n");
    // The commit merge wrote is in the repository's own folder.
    let main = git(&["rev-parse", "main"]).1;
    assert!(
        env.git_output(&clone, &["cat-file", "-e", main.trim()])
            .status
            .success()
    );

    // `y`'s commits are found only through the variable, which `run` hands on.
    let (code, out, err) = flowloom(&["run", "y", "--", "git", "log", "-1", "--format=%s"]);
    assert_eq!((code, out.trim()), (0, "tools"), "{err}");
    let (code, _, err) = git(&["fsck", "--strict", "--no-progress"]);
    assert_eq!(code, 0, "{err}");
}

/// Runs `program args` in `dir` under umask 077, hermetic.
fn under_umask_077(
    env: &TestEnv,
    dir: &std::path::Path,
    program: &std::ffi::OsStr,
    args: &[&str],
) -> (i32, String, String) {
    let mut cmd = std::process::Command::new("sh");
    crate::common::hermetic(&mut cmd, &env.home());
    cmd.current_dir(dir)
        .args(["-c", "umask 077 && exec \"$@\"", "sh"])
        .arg(program)
        .args(args);
    crate::common::run(&mut cmd)
}

/// With `core.sharedRepository=group`, a session switched back to its branch under umask
/// 077 gets for its `HEAD`, index and HEAD's reflog the modes `git switch` gives them under
/// the same umask (the lock file's 600, widened to the group).
#[test]
fn a_branch_switch_in_a_shared_repository_gives_gits_modes() {
    let env = TestEnv::new();
    env.git(&["config", "core.sharedRepository", "group"]);
    env.manifest("[sessions.x]\n");
    env.apply();
    let x = env.path("sessions/shell-instance-x");
    env.git_in(&x, &["switch", "-q", "-c", "experiment"]);
    // The oracle: git switching another worktree back to its branch under the same umask.
    env.git(&["worktree", "add", "-q", "-b", "oracle", "../oracle", "main"]);
    let oracle = env.tmp.path().join("oracle");
    env.git_in(&oracle, &["switch", "-q", "-c", "oracle-experiment"]);
    let (code, _, err) = under_umask_077(&env, &oracle, "git".as_ref(), &["switch", "-q", "oracle"]);
    assert_eq!(code, 0, "{err}");
    let flowloom = assert_cmd::cargo::cargo_bin("flowloom");
    let (code, out, err) = under_umask_077(&env, &env.repo, flowloom.as_os_str(), &["apply", "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(env.git_in(&x, &["branch", "--show-current"]), "session/x\n");
    let admin = |name: &str, rel: &str| mode(&env.path(".git/worktrees").join(name).join(rel));
    for rel in ["HEAD", "index", "logs/HEAD"] {
        assert_eq!(admin("shell-instance-x", rel), admin("oracle", rel), "mode of {rel}");
    }
    assert_eq!(admin("shell-instance-x", "HEAD"), "660");
}
