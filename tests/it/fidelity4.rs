//! More rows against `git worktree add` (issue 17, "Git fidelity"), run by the harness of
//! [`crate::differential`]: what a new branch's upstream is made of (`@{u}`, `@{-1}`, `@`,
//! fetch refspecs of every shape, `branch.autoSetupRebase`, `inherit` of several `merge`
//! values), which ref a name starts from, and the index extensions git adds for
//! `index.threads` and friends. Each row is one repository nobody here shaped for flowloom.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::common::TestEnv;
use crate::differential::{Case, ROW, cloned, config, plain, run_table, write_bytes};

const ON_ORIGIN_MAIN: &str = "[sessions.x]\nbase = \"origin/main\"\n";

const CASES: &[Case] = &[
    Case {
        name: "base @{u} (HEAD's upstream): tracks it, as git resolves the mark",
        setup: cloned,
        manifest: "[sessions.x]\nbase = \"@{u}\"\n",
        base: "@{u}",
        ..ROW
    },
    Case {
        name: "base main@{upstream}: tracks origin/main",
        setup: cloned,
        manifest: "[sessions.x]\nbase = \"main@{upstream}\"\n",
        base: "main@{upstream}",
        ..ROW
    },
    Case {
        name: "base @{-1} with branch.autoSetupMerge=always: tracks the branch checked out before",
        setup: previous_branch_always,
        manifest: "[sessions.x]\nbase = \"@{-1}\"\n",
        base: "@{-1}",
        ..ROW
    },
    Case {
        name: "base @ with branch.autoSetupMerge=always: tracks HEAD's branch",
        setup: cloned_always,
        manifest: "[sessions.x]\nbase = \"@\"\n",
        base: "@",
        ..ROW
    },
    Case {
        name: "a fetch refspec into refs/remotes/up/* for remote origin: base up/main tracks origin's main",
        setup: refspec_elsewhere,
        manifest: "[sessions.x]\nbase = \"up/main\"\n",
        base: "up/main",
        ..ROW
    },
    Case {
        name: "a fetch refspec outside refs/remotes (refs/mirror/*): base refs/mirror/main tracks origin's main",
        setup: refspec_outside_remotes,
        manifest: "[sessions.x]\nbase = \"refs/mirror/main\"\n",
        base: "refs/mirror/main",
        ..ROW
    },
    Case {
        name: "a remote-tracking-looking ref no remote fetches (refs/remotes/stray/main): no upstream",
        setup: stray_remote_ref,
        manifest: "[sessions.x]\nbase = \"stray/main\"\n",
        base: "stray/main",
        ..ROW
    },
    Case {
        name: "branch.autoSetupRebase=always, base origin/main: rebase = true",
        setup: rebase_always,
        manifest: ON_ORIGIN_MAIN,
        base: "origin/main",
        ..ROW
    },
    Case {
        name: "branch.autoSetupRebase=remote, base origin/main: rebase = true",
        setup: rebase_remote,
        manifest: ON_ORIGIN_MAIN,
        base: "origin/main",
        ..ROW
    },
    Case {
        name: "branch.autoSetupRebase=local, autoSetupMerge=always, base main: rebase = true",
        setup: rebase_local_always,
        ..ROW
    },
    Case {
        name: "branch.autoSetupRebase=remote, autoSetupMerge=always, base main (local): no rebase",
        setup: rebase_remote_always,
        ..ROW
    },
    Case {
        name: "branch.autoSetupMerge=inherit from a branch with two merge values: both copied",
        setup: inherit_two_merges,
        ..ROW
    },
    Case {
        name: "branch.autoSetupMerge=inherit from a branch tracking a local one, autoSetupRebase=remote: rebase (git counts `.` as a remote)",
        setup: inherit_local_upstream,
        manifest: "[sessions.x]\nbase = \"local2\"\n",
        base: "local2",
        ..ROW
    },
    Case {
        name: "a branch named as a whole commit id: git branch starts from the branch",
        setup: branch_named_like_an_id,
        manifest: "[sessions.x]\nbase = \"768807744b50017b205f3cd54c928381244fd850\"\n",
        base: "768807744b50017b205f3cd54c928381244fd850",
        ..ROW
    },
];

const INDEX_CASES: &[Case] = &[
    Case {
        name: "index.threads=4 (offset table of 4 blocks, end-of-entries extension)",
        setup: threads_4,
        ..ROW
    },
    Case {
        name: "index.threads=3 with index.version=4 (each block's path compression starts afresh)",
        setup: threads_3_v4,
        ..ROW
    },
    Case {
        name: "index.recordEndOfIndexEntries=true alone (no table)",
        setup: end_of_entries_only,
        ..ROW
    },
    Case {
        name: "index.threads=true (one per core: no table below 10,000 entries a thread; the end extension)",
        setup: threads_true,
        ..ROW
    },
    Case {
        name: "index.recordOffsetTable=true without index.threads (one thread: nothing)",
        setup: offset_table_alone,
        ..ROW
    },
    Case {
        name: "feature.manyFiles with index.threads=2 (format 4, untracked cache, table, end, null trailer)",
        setup: many_files_threads,
        ..ROW
    },
    Case {
        name: "core.splitIndex=true",
        setup: split_index,
        known: Some(
            "flowloom writes the whole index where git writes a split one (`link` and a sharedindex file); \
             git reads the whole one and splits it at its next write",
        ),
        ..ROW
    },
];

const ENCODING_CASES: &[Case] = &[Case {
    name: "working-tree-encoding utf16le-bom (git's own name) with eol=crlf in a subfolder, UTF-16LE/BE/UTF-16 of a text that starts with U+FEFF, UTF-32 with eol=crlf, a blob that does not decode",
    setup: wide_variants,
    ..ROW
}];

#[test]
fn working_tree_encodings_as_git_writes_them() {
    run_table(ENCODING_CASES);
}

#[test]
fn upstreams_and_start_points_as_git_makes_them() {
    run_table(CASES);
}

#[test]
fn index_extensions_as_git_writes_them() {
    run_table(INDEX_CASES);
}

/// Two remotes whose fetch refspecs both write `refs/remotes/origin/*`: `git worktree add -b`
/// fails (`fatal: not tracking: ambiguous information for ref`), leaving its branch behind;
/// flowloom refuses that session before it makes anything, and says why.
#[test]
fn a_ref_two_remotes_fetch_into_is_refused_as_git_refuses_it() {
    let mut env = TestEnv::empty();
    env.repo = env.tmp.path().join("side").join("repo");
    std::fs::create_dir_all(env.repo.parent().expect("side")).expect("side");
    cloned(&env);
    env.git(&["remote", "add", "two", "../origin"]);
    env.git(&["config", "remote.two.fetch", "+refs/heads/*:refs/remotes/origin/*"]);
    let git = env.git_output(
        &env.repo,
        &["worktree", "add", "-q", "-b", "probe", "../probe", "origin/main"],
    );
    assert!(!git.status.success(), "git took it: the set-up is wrong");

    env.manifest(ON_ORIGIN_MAIN);
    let out = env
        .flowloom_in(&env.repo)
        .args(["apply", "--yes"])
        .output()
        .expect("run");
    let said = String::from_utf8_lossy(&out.stderr)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" │", "");
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("ambiguous information") && said.contains("origin and two"),
        "{said}"
    );
    let branch = env.git_output(&env.repo, &["rev-parse", "--verify", "-q", "refs/heads/session/x"]);
    assert!(!branch.status.success(), "the branch was made");
    assert!(
        !env.repo.join("sessions/shell-instance-x").exists(),
        "the worktree was made"
    );
}

fn cloned_always(env: &TestEnv) {
    cloned(env);
    config(env, "branch.autoSetupMerge", "always");
}

/// `other` checked out, then `main` again: `@{-1}` is `other`.
fn previous_branch_always(env: &TestEnv) {
    cloned_always(env);
    env.git(&["checkout", "-q", "-b", "other"]);
    env.git(&["checkout", "-q", "main"]);
}

fn refspec_elsewhere(env: &TestEnv) {
    cloned(env);
    config(env, "remote.origin.fetch", "+refs/heads/*:refs/remotes/up/*");
    env.git(&["fetch", "-q", "origin"]);
}

fn refspec_outside_remotes(env: &TestEnv) {
    cloned(env);
    config(env, "remote.origin.fetch", "+refs/heads/*:refs/mirror/*");
    env.git(&["fetch", "-q", "origin"]);
}

fn stray_remote_ref(env: &TestEnv) {
    cloned(env);
    env.git(&["update-ref", "refs/remotes/stray/main", "HEAD"]);
}

fn rebase_always(env: &TestEnv) {
    cloned(env);
    config(env, "branch.autoSetupRebase", "always");
}

fn rebase_remote(env: &TestEnv) {
    cloned(env);
    config(env, "branch.autoSetupRebase", "remote");
}

fn rebase_local_always(env: &TestEnv) {
    cloned_always(env);
    config(env, "branch.autoSetupRebase", "local");
}

fn rebase_remote_always(env: &TestEnv) {
    cloned_always(env);
    config(env, "branch.autoSetupRebase", "remote");
}

fn inherit_two_merges(env: &TestEnv) {
    cloned(env);
    config(env, "branch.autoSetupMerge", "inherit");
    env.git(&["config", "--add", "branch.main.merge", "refs/heads/other"]);
}

fn inherit_local_upstream(env: &TestEnv) {
    cloned(env);
    config(env, "branch.autoSetupMerge", "inherit");
    config(env, "branch.autoSetupRebase", "remote");
    env.git(&["branch", "-q", "--track", "local2", "main"]);
}

/// A branch named as the first commit's id (fixed: the set-up is hermetic), at the second
/// commit; `main` back at the first: git takes the branch, a revision parser the commit.
fn branch_named_like_an_id(env: &TestEnv) {
    plain(env);
    env.write("second.txt", "2\n");
    env.commit("second");
    env.git(&["branch", "768807744b50017b205f3cd54c928381244fd850", "HEAD"]);
    env.git(&["reset", "-q", "--hard", "HEAD~1"]);
}

/// Eight files in eight folders, for tables of several blocks.
fn eight_files(env: &TestEnv) {
    plain(env);
    for name in ["a", "b", "c", "d", "e", "f"] {
        env.write(&format!("dir-{name}/file.txt"), name);
    }
    env.commit("more files");
}

/// The texts are committed before their attributes: git's `add` refuses a mark in a
/// `UTF-16LE` text, and checks out whatever the blob holds.
fn wide_variants(env: &TestEnv) {
    plain(env);
    env.write("deep/er/a.w16", "one\ntwo \u{e9}\n");
    env.write("b.le16", "\u{feff}starts with a mark\n");
    env.write("c.be16", "\u{feff}starts with a mark\n");
    env.write("d.u16", "\u{feff}starts with a mark\n");
    env.write("deep/e.u32", "one\ntwo \u{1F600}\n");
    write_bytes(env, b"f.w16", b"caf\xe9\n");
    env.write("empty.w16", "");
    env.commit("texts");
    env.write(
        ".gitattributes",
        "*.w16 text eol=crlf working-tree-encoding=utf16le-bom\n*.le16 text working-tree-encoding=UTF-16LE\n\
         *.be16 text working-tree-encoding=UTF16BE\n*.u16 text working-tree-encoding=UTF-16\n\
         *.u32 text eol=crlf working-tree-encoding=UTF-32\n",
    );
    // The attributes alone: `add -A` would read the racily clean texts again.
    env.git(&["add", ".gitattributes"]);
    env.git(&["commit", "-q", "-m", "encodings"]);
}

fn threads_4(env: &TestEnv) {
    eight_files(env);
    config(env, "index.threads", "4");
}

fn threads_3_v4(env: &TestEnv) {
    eight_files(env);
    config(env, "index.threads", "3");
    config(env, "index.version", "4");
}

fn end_of_entries_only(env: &TestEnv) {
    eight_files(env);
    config(env, "index.recordEndOfIndexEntries", "true");
}

fn threads_true(env: &TestEnv) {
    eight_files(env);
    config(env, "index.threads", "true");
}

fn offset_table_alone(env: &TestEnv) {
    eight_files(env);
    config(env, "index.recordOffsetTable", "true");
}

fn many_files_threads(env: &TestEnv) {
    eight_files(env);
    config(env, "feature.manyFiles", "true");
    config(env, "index.threads", "2");
}

fn split_index(env: &TestEnv) {
    eight_files(env);
    config(env, "core.splitIndex", "true");
}

/// `GIT_ALTERNATE_OBJECT_DIRECTORIES` gives each value its own `objects-<key>` folder in
/// `.git/flowloom/`: a run removes the others that no running flowloom holds and nobody used
/// for a day, never one another run holds, never what their symlinks point to.
#[test]
fn object_folders_of_other_values_are_pruned_when_nobody_uses_them() {
    let env = TestEnv::new();
    env.manifest("[sessions.x]\n");
    let other = env.tmp.path().join("other.git");
    env.git_in(env.tmp.path(), &["init", "-q", "--bare", "other.git"]);
    let state = env.path(".git/flowloom");
    let pack = env.path(".git/objects/pack");
    let old = SystemTime::now() - Duration::from_secs(2 * 24 * 60 * 60);
    let folder = |name: &str, used: SystemTime| -> std::fs::File {
        let dir = state.join(name);
        std::fs::create_dir_all(dir.join("info")).expect("folder");
        std::fs::write(dir.join("info/alternates"), "/nowhere\n").expect("alternates");
        std::os::unix::fs::symlink(&pack, dir.join("pack")).expect("symlink");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("in-use"))
            .expect("in-use");
        file.set_modified(used).expect("stamp");
        file
    };
    folder("objects-00000000000000aa", old);
    folder("objects-00000000000000bb", SystemTime::now());
    let held = folder("objects-00000000000000cc", old);
    held.lock_shared().expect("hold it as a running flowloom would");

    let plan = |env: &TestEnv| {
        let out = env
            .flowloom_in(&env.repo)
            .env("GIT_ALTERNATE_OBJECT_DIRECTORIES", other.join("objects"))
            .arg("plan")
            .output()
            .expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    plan(&env);
    let names = |state: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(state)
            .expect("state")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("objects-"))
            .collect();
        names.sort();
        names
    };
    let after = names(&state);
    assert!(
        !after.contains(&"objects-00000000000000aa".to_owned()),
        "unused for two days: {after:?}"
    );
    assert!(
        after.contains(&"objects-00000000000000bb".to_owned()),
        "used today: {after:?}"
    );
    assert!(
        after.contains(&"objects-00000000000000cc".to_owned()),
        "held by a run: {after:?}"
    );
    assert_eq!(after.len(), 3, "this run's own folder too: {after:?}");
    assert!(
        pack.is_dir(),
        "the repository's pack folder, a symlink's target, is kept"
    );

    drop(held);
    plan(&env);
    let after = names(&state);
    assert!(
        !after.contains(&"objects-00000000000000cc".to_owned()),
        "released, unused: {after:?}"
    );
    assert_eq!(after.len(), 2, "{after:?}");
}

/// `status` writes back the stats it re-checked, as `git status` does, and keeps the index's
/// format as git keeps it: `index.version=4` set after a session's index was made chooses the
/// format of a new index only. Git is the oracle: the same touch and `git status` in a twin
/// session leave its index as flowloom leaves this one.
#[test]
fn status_keeps_the_format_of_an_index_it_refreshes() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n[sessions.b]\n");
    env.commit("two sessions");
    env.apply();
    config(&env, "index.version", "4");
    let version = |wt: &Path| {
        let index = wt.join(env.git_in(wt, &["rev-parse", "--git-path", "index"]).trim());
        let bytes = std::fs::read(index).expect("index");
        u32::from_be_bytes(bytes[4..8].try_into().expect("header"))
    };
    let sessions: Vec<std::path::PathBuf> = ["a", "b"]
        .iter()
        .map(|id| {
            let out = env.flowloom().args(["path", id]).output().expect("path");
            std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        })
        .collect();
    let later = SystemTime::now() + Duration::from_secs(120);
    let touch = |wt: &Path| {
        assert_eq!(version(wt), 2, "made as git makes it");
        let file = std::fs::File::options()
            .write(true)
            .open(wt.join("README.md"))
            .expect("readme");
        file.set_modified(later).expect("touch");
    };
    // git first, in its twin, then flowloom in this one.
    touch(&sessions[1]);
    env.git_in(&sessions[1], &["status", "--porcelain"]);
    touch(&sessions[0]);
    let (code, out, err) = env.run(&["status"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(version(&sessions[0]), version(&sessions[1]), "as git keeps it");
    assert_eq!(version(&sessions[0]), 2);
}

/// Each file of the original's session worktrees and links, to see the copy left them alone.
fn original_links(env: &TestEnv, sessions: &Path) -> Vec<String> {
    let mut seen = vec![
        std::fs::read_to_string(env.path(".git/worktrees/shell-instance-x/gitdir")).expect("gitdir"),
        std::fs::read_to_string(sessions.join("shell-instance-x/.git")).expect(".git"),
        env.git(&["worktree", "list", "--porcelain"]),
    ];
    seen.extend(std::fs::read_to_string(env.path(".git/flowloom/owned.json")));
    seen
}

/// A copy of the repository (`cp -a repo repo2`) holds registrations naming the original's
/// session worktrees, whose `.git` names the original's registrations. `git worktree
/// repair` run in the copy would take them over (it rewrites their `.git` files); flowloom
/// leaves them to the original: it neither moves them into the copy's root, nor repairs
/// nor removes them, and the original's next plan has nothing to do.
#[test]
fn a_copy_of_the_repository_does_not_take_the_originals_sessions() {
    const BESIDE: &str = "[defaults]\nroot = \"../{repo}.sessions\"\n[sessions.x]\n";
    // (the manifest, the copy's manifest, where the sessions are)
    for (manifest, in_copy, sessions) in [
        ("[sessions.x]\n", "[sessions.x]\n", "sessions"),
        (BESIDE, BESIDE, "../repo.sessions"),
        (
            BESIDE,
            "[defaults]\nroot = \"../{repo}.sessions\"\n",
            "../repo.sessions",
        ),
        ("[sessions.x]\n", "", "sessions"),
    ] {
        let env = TestEnv::new();
        env.manifest(manifest);
        env.apply();
        let sessions = env.repo.join(sessions);
        let before = original_links(&env, &sessions);
        let copy = env.tmp.path().join("repo2");
        let out = std::process::Command::new("cp")
            .arg("-a")
            .arg(&env.repo)
            .arg(&copy)
            .output()
            .expect("cp");
        assert!(out.status.success());
        std::fs::write(copy.join("flowloom.toml"), in_copy).expect("the copy's manifest");
        let (code, out, err) = crate::common::run(env.flowloom_in(&copy).args(["plan"]));
        assert!(code == 0 || code == 1, "{out}{err}");
        assert!(
            !out.contains("move worktree") && !out.contains("repair links"),
            "{manifest}: {out}"
        );
        let (_, out, err) = crate::common::run(env.flowloom_in(&copy).args(["apply", "--yes"]));
        assert_eq!(before, original_links(&env, &sessions), "{manifest}: {out}{err}");
        assert!(
            sessions.join("shell-instance-x/README.md").is_file(),
            "{manifest}: {out}{err}"
        );
        env.git_in(&sessions.join("shell-instance-x"), &["status", "--short"]);
        let (code, out, err) = env.run(&["plan", "--detailed-exitcode"]);
        assert_eq!(code, 0, "{manifest}: the original has work again: {out}{err}");
    }
}

/// Several Git LFS pointers whose objects are missing, in subfolders (one name with a
/// space): `new` fails as `apply` does, naming each file and `git lfs fetch`, and leaves
/// nothing of the session (folder, registration, branch).
#[test]
fn missing_lfs_objects_in_subfolders_fail_new_as_apply_leaving_nothing() {
    let env = TestEnv::new();
    env.write(".gitattributes", "*.bin filter=lfs diff=lfs merge=lfs -text\n");
    let pointer = |n: u32| {
        format!(
            "version https://git-lfs.github.com/spec/v1\noid sha256:{:064x}\nsize {n}\n",
            u128::from(n) * 7919
        )
    };
    env.write("assets/deep/one.bin", &pointer(11));
    env.write("assets/two words.bin", &pointer(12));
    env.write("top.bin", &pointer(13));
    env.commit("lfs pointers");
    let script = env.tmp.path().join("fake-lfs.pl");
    std::fs::write(&script, include_str!("fake-lfs.pl")).expect("script");
    env.git(&[
        "config",
        "filter.lfs.process",
        &format!("env FAKE_LFS=error perl '{}'", script.display()),
    ]);
    env.git(&["config", "filter.lfs.required", "true"]);
    env.manifest("[sessions.keep]\n");
    // `new` declares it (in the local layer) once the plan may go ahead; the failed checkout
    // leaves that declaration for the `apply` the message asks for, which fails alike.
    for args in [&["new", "x"][..], &["apply", "--yes"][..]] {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 1, "{args:?}: {out}\n{err}");
        let flat = format!("{out}{err}")
            .replace('│', "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for file in ["assets/deep/one.bin", "two words.bin", "top.bin", "git lfs fetch"] {
            assert!(flat.contains(file), "{args:?}: {file} not named: {flat}");
        }
        assert!(!env.path("sessions/shell-instance-x").exists(), "{args:?}: folder left");
        assert!(
            !env.git(&["worktree", "list", "--porcelain"])
                .contains("shell-instance-x"),
            "{args:?}: registration left"
        );
        assert!(
            !env.branches().contains(&"session/x".to_owned()),
            "{args:?}: branch left"
        );
        env.fsck();
    }
}
