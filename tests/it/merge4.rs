//! SPEC §11.2 `flowloom merge` against git, as an outsider attacks it: each case is run twice
//! on twin repositories (same dates, so the same commits), once landed by flowloom and once by
//! git (`git merge --squash` + `git commit`, or `git merge --ff-only`, where the base is
//! checked out), and what git reads afterwards is compared: reflogs, index entries and flags,
//! the index format, files on disk.

use std::path::{Path, PathBuf};

use crate::common::TestEnv;

const MESSAGE: &str = "land the session";

/// A repository with session `a` on `base` (made), then `prepare` run on it.
fn with_session(base: &str, prepare: &dyn Fn(&TestEnv)) -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    env.manifest(&format!(
        "[defaults]\nbase = \"{base}\"\n\n[sessions.a]\npurpose = \"Add the feature\"\n"
    ));
    env.commit("manifest");
    env.apply();
    prepare(&env);
    let wt = env.path("sessions/shell-instance-a");
    (env, wt)
}

/// The same case twice: `session` commits in the session (given the env and its worktree),
/// `base_dir` says where the base is checked out (`None`: nowhere); one twin lands with
/// `flowloom merge --yes <args> a`, the other with git in the base's worktree (or
/// `git update-ref` where it is checked out nowhere). Both returned: (flowloom's, git's).
fn twins(
    base: &str,
    prepare: &dyn Fn(&TestEnv),
    session: &dyn Fn(&TestEnv, &Path),
    args: &[&str],
) -> (TestEnv, TestEnv) {
    let (ours, wt) = with_session(base, prepare);
    session(&ours, &wt);
    let mut full = vec!["merge", "--yes"];
    full.extend_from_slice(args);
    full.push("a");
    let (code, out, err) = ours.run(&full);
    assert_eq!(code, 0, "flowloom merge: {out}\n{err}");
    let (theirs, wt) = with_session(base, prepare);
    session(&theirs, &wt);
    let dir = base_dir(&theirs, base);
    if args.contains(&"--ff-only") {
        theirs.git_in(&dir, &["merge", "-q", "--ff-only", "session/a"]);
    } else {
        theirs.git_in(&dir, &["merge", "-q", "--squash", "session/a"]);
        theirs.git_in(&dir, &["commit", "-q", "-m", MESSAGE]);
    }
    (ours, theirs)
}

/// Where `base` is checked out: the main worktree, or the linked worktree `dev` beside it.
fn base_dir(env: &TestEnv, base: &str) -> PathBuf {
    if base == "main" {
        env.repo.clone()
    } else {
        env.tmp.path().join("dev")
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A reflog case: the base, what makes it checked out, `merge`'s arguments, `HEAD`'s reflog.
type Case<'a> = (&'a str, &'a dyn Fn(&TestEnv), &'a [&'a str], &'a str);

fn last_line(text: &str) -> String {
    text.lines().last().unwrap_or_default().to_owned()
}

/// When merge moves a base that is checked out, git writes the entry to the branch's reflog
/// and to the reflog of that worktree's `HEAD` (the main worktree's `logs/HEAD`, or
/// `worktrees/<id>/logs/HEAD` of a linked one), same message, identity and date; with
/// `core.logAllRefUpdates=false` too, where both reflogs exist.
#[test]
fn the_reflog_of_head_gets_the_entry_git_writes() {
    let add_dev = |env: &TestEnv| {
        let dev = env.tmp.path().join("dev");
        env.git(&["worktree", "add", "-q", dev.to_str().expect("utf8"), "develop"]);
    };
    let none = |_: &TestEnv| {};
    // git still appends to the reflogs that exist; it only makes no new ones.
    let no_new_logs = |env: &TestEnv| {
        env.git(&["config", "core.logAllRefUpdates", "false"]);
    };
    let cases: [Case<'_>; 4] = [
        ("main", &none, &["-m", MESSAGE], ".git/logs/HEAD"),
        ("main", &no_new_logs, &["-m", MESSAGE], ".git/logs/HEAD"),
        ("main", &none, &["--ff-only"], ".git/logs/HEAD"),
        ("develop", &add_dev, &["-m", MESSAGE], ".git/worktrees/dev/logs/HEAD"),
    ];
    for (base, prepare, args, head_log) in cases {
        let session = |env: &TestEnv, wt: &Path| {
            env.commit_file(wt, "feature.txt", "feature\n", "add the feature");
        };
        let (ours, theirs) = twins(base, prepare, &session, args);
        let branch_log = format!(".git/logs/refs/heads/{base}");
        assert_eq!(
            last_line(&read(&ours.path(&branch_log))),
            last_line(&read(&theirs.path(&branch_log))),
            "{base} {args:?}: the branch's reflog"
        );
        assert_eq!(
            read(&ours.path(head_log)),
            read(&theirs.path(head_log)),
            "{base} {args:?}: the reflog of HEAD where {base} is checked out"
        );
        ours.fsck();
    }
}

/// What git reads of the base worktree's index, entry by entry (flags and stat data; times,
/// device and inode reduced to whether they are set), without the manifest (which `rm`
/// edits), and the files on disk but the git dir and the sessions.
fn index_and_files(env: &TestEnv) -> (String, Vec<String>) {
    let debug = env.git(&["ls-files", "--debug", "-t"]);
    let mut index = String::new();
    let mut skip = false;
    for line in debug.lines() {
        if !line.starts_with(' ') {
            skip = line.ends_with("flowloom.toml");
        }
        if skip {
            continue;
        }
        let trimmed = line.trim_start();
        let zero = trimmed.ends_with(" 0:0") || trimmed.starts_with("dev: 0\t");
        if (trimmed.starts_with("ctime") || trimmed.starts_with("mtime") || trimmed.starts_with("dev")) && !zero {
            index.push_str("  (set)\n");
        } else {
            index.push_str(line);
            index.push('\n');
        }
    }
    let mut files = Vec::new();
    let mut stack = vec![env.repo.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(&env.repo).expect("below").display().to_string();
            if rel == ".git" || rel == "sessions" || rel == "flowloom.toml" {
                continue;
            }
            if entry.file_type().expect("type").is_dir() {
                stack.push(path);
            } else {
                files.push(rel);
            }
        }
    }
    files.sort();
    (index, files)
}

/// A sparse checkout of the base's worktree, cone and non-cone: the changed paths outside
/// the sparse set stay skip-worktree, with no stat data, and are not written, as git leaves
/// them; those inside are written.
#[test]
fn a_sparse_checkout_keeps_what_it_leaves_out() {
    for patterns in [&["set", "src"][..], &["set", "--no-cone", "/*", "!/bin/", "!/docs/"]] {
        let prepare = |env: &TestEnv| {
            let mut args = vec!["sparse-checkout"];
            args.extend_from_slice(patterns);
            env.git(&args);
        };
        let session = |env: &TestEnv, wt: &Path| {
            std::fs::create_dir_all(wt.join("docs")).expect("mkdir");
            std::fs::write(wt.join("docs/new.md"), "new\n").expect("write");
            std::fs::write(wt.join("bin/run.sh"), "#!/bin/sh\necho changed\n").expect("write");
            std::fs::write(wt.join("src/lib.rs"), "pub fn g() {}\n").expect("write");
            env.git_in(wt, &["add", "-A"]);
            env.git_in(wt, &["commit", "-q", "-m", "inside and outside the sparse set"]);
        };
        let (ours, theirs) = twins("main", &prepare, &session, &["-m", MESSAGE]);
        let (our_index, our_files) = index_and_files(&ours);
        let (their_index, their_files) = index_and_files(&theirs);
        assert_eq!(our_index, their_index, "{patterns:?}: the index, entry by entry");
        assert_eq!(our_files, their_files, "{patterns:?}: the files on disk");
        assert!(!ours.path("docs").exists(), "{patterns:?}");
        ours.fsck();
    }
}

/// A file whose entry is marked skip-worktree or assume-unchanged holds local changes git
/// never shows (a config file kept with local settings): `git merge` reads it anyway and
/// refuses to overwrite it; so does flowloom, writing nothing.
#[test]
fn local_changes_under_skip_worktree_or_assume_unchanged_refuse_the_merge() {
    for flag in ["--skip-worktree", "--assume-unchanged"] {
        let (env, wt) = with_session("main", &|_| {});
        env.commit_file(&wt, "README.md", "from the session\n", "edit the readme");
        std::fs::write(env.path("README.md"), "my local settings\n").expect("write");
        env.git(&["update-index", flag, "README.md"]);
        let main = env.git(&["rev-parse", "main"]);
        let out = env.git_output(&env.repo, &["merge", "--squash", "session/a"]);
        assert!(!out.status.success(), "{flag}: git refuses too");
        let (code, out, err) = env.run(&["merge", "--yes", "a"]);
        assert_eq!(code, 1, "{flag}: refused\n{out}\n{err}");
        assert!(err.contains("README.md"), "{flag}: names the file\n{err}");
        assert_eq!(read(&env.path("README.md")), "my local settings\n", "{flag}");
        assert_eq!(env.git(&["rev-parse", "main"]), main, "{flag}: the base did not move");
        assert!(wt.exists(), "{flag}: the session is kept");
    }
}

/// Without a sparse checkout, an entry marked skip-worktree by hand whose file is gone keeps
/// its mark when the merge changes it, and its file is written, as git's merge does.
#[test]
fn a_skip_worktree_mark_without_sparse_checkout_stays_as_git_keeps_it() {
    let prepare = |env: &TestEnv| {
        env.git(&["update-index", "--skip-worktree", "README.md"]);
        std::fs::remove_file(env.path("README.md")).expect("rm");
    };
    let session = |env: &TestEnv, wt: &Path| {
        env.commit_file(wt, "README.md", "from the session\n", "edit the readme");
    };
    let (ours, theirs) = twins("main", &prepare, &session, &["-m", MESSAGE]);
    assert_eq!(index_and_files(&ours), index_and_files(&theirs));
    assert_eq!(read(&ours.path("README.md")), "from the session\n");
}

/// The index format as git rewrites an index it read: `index.version` (and
/// `feature.manyFiles`) set after the index was made do not change it (they choose the format
/// of a new index), and an index made format 4 by hand stays format 4.
#[test]
fn the_index_keeps_its_format_as_git_keeps_it() {
    let version = |env: &TestEnv| {
        let bytes = std::fs::read(env.path(".git/index")).expect("index");
        u32::from_be_bytes(bytes[4..8].try_into().expect("header"))
    };
    let configs: [&[&str]; 3] = [
        &["config", "index.version", "4"],
        &["config", "feature.manyFiles", "true"],
        &["update-index", "--index-version", "4"],
    ];
    for config in configs {
        let prepare = |env: &TestEnv| {
            env.git(config);
        };
        let session = |env: &TestEnv, wt: &Path| {
            env.commit_file(wt, "README.md", "from the session\n", "edit the readme");
        };
        let (ours, theirs) = twins("main", &prepare, &session, &["-m", MESSAGE]);
        assert_eq!(version(&ours), version(&theirs), "{config:?}");
        let (our_index, _) = index_and_files(&ours);
        let (their_index, _) = index_and_files(&theirs);
        assert_eq!(our_index, their_index, "{config:?}");
    }
}
