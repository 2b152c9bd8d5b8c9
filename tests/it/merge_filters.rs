//! SPEC §11.2: `flowloom merge` writes the base's worktree through the same filters as
//! `git merge`: a clean/smudge driver, an LFS-like pointer filter that is `required`,
//! `eol=crlf`, `text=auto` and `ident`, on files the session changes, adds and deletes.
//! The files, the index and the commit's tree end as git leaves them in a copy of the same
//! repository; a filter that is missing or fails is refused before anything is written.

use std::path::{Path, PathBuf};

use crate::common::TestEnv;

/// The quoting driver: `> ` before every line in the worktree, none in the repository.
const QUOTE: &str = "case $1 in\n  clean) sed 's/^> //' ;;\n  smudge) sed 's/^/> /' ;;\nesac\n";

/// An LFS-like pointer filter: the repository holds a pointer (the content's sha256 and
/// size), the content lives in a store beside it; a smudge of a pointer whose object is
/// not in the store fails.
fn lfs_script(store: &Path) -> String {
    format!(
        "store='{}'\n\
         t=$(mktemp)\n\
         cat >\"$t\"\n\
         case $1 in\n\
         clean)\n\
           oid=$(sha256sum <\"$t\" | cut -d' ' -f1)\n\
           size=$(($(wc -c <\"$t\")))\n\
           mkdir -p \"$store\" && cp \"$t\" \"$store/$oid\"\n\
           printf 'version https://git-lfs.github.com/spec/v1\\noid sha256:%s\\nsize %s\\n' \"$oid\" \"$size\" ;;\n\
         smudge)\n\
           oid=$(sed -n 's/^oid sha256://p' \"$t\")\n\
           if [ -z \"$oid\" ]; then cat \"$t\"; elif [ -f \"$store/$oid\" ]; then cat \"$store/$oid\"; else rm -f \"$t\"; exit 1; fi ;;\n\
         esac\n\
         rm -f \"$t\"\n",
        store.display()
    )
}

const ATTRIBUTES: &str = "* text=auto\n\
                          *.q filter=quote\n\
                          *.bin filter=lfs diff=lfs merge=lfs -text\n\
                          *.crlf text eol=crlf\n\
                          *.id ident\n";

/// Register the filters in the repository at `dir` (the scripts live in the temp folder).
fn configure(env: &TestEnv, dir: &Path) {
    let quote = env.tmp.path().join("quote.sh");
    let lfs = env.tmp.path().join("lfs.sh");
    std::fs::write(&quote, QUOTE).expect("quote");
    std::fs::write(&lfs, lfs_script(&env.tmp.path().join("lfs-store"))).expect("lfs");
    for (key, value) in [
        ("filter.quote.clean", format!("sh '{}' clean", quote.display())),
        ("filter.quote.smudge", format!("sh '{}' smudge", quote.display())),
        ("filter.lfs.clean", format!("sh '{}' clean", lfs.display())),
        ("filter.lfs.smudge", format!("sh '{}' smudge", lfs.display())),
        ("filter.lfs.required", "true".to_owned()),
    ] {
        env.git_in(dir, &["config", key, &value]);
    }
}

/// Session `a` of a repository whose files go through every kind of filter; in the
/// session, one file of each kind changed, one added and one deleted, over two commits;
/// then `main` moves on (so that neither mode is a fast-forward).
fn filtered_session() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    configure(&env, &env.repo);
    env.write(".gitattributes", ATTRIBUTES);
    for kind in ["q", "bin", "crlf", "id", "txt"] {
        for name in ["keep", "change", "delete"] {
            env.write(&format!("{name}.{kind}"), &content(name, kind, "main"));
        }
    }
    env.manifest("[defaults]\nbase = \"main\"\n\n[sessions.a]\npurpose = \"Filtered work\"\n");
    env.commit("filtered files");
    // Checked out again, as a clone would have them: through the filters.
    for kind in ["q", "bin", "crlf", "id", "txt"] {
        for name in ["keep", "change", "delete"] {
            std::fs::remove_file(env.path(&format!("{name}.{kind}"))).expect("rm");
        }
    }
    env.git(&["checkout", "--", "."]);
    env.apply();
    let wt = env.path("sessions/shell-instance-a");
    for kind in ["q", "bin", "crlf", "id", "txt"] {
        std::fs::write(wt.join(format!("change.{kind}")), content("change", kind, "session")).expect("change");
        std::fs::write(wt.join(format!("new.{kind}")), content("new", kind, "session")).expect("new");
    }
    env.git_in(&wt, &["add", "-A"]);
    env.git_in(&wt, &["commit", "-qm", "change and add"]);
    for kind in ["q", "bin", "crlf", "id", "txt"] {
        std::fs::remove_file(wt.join(format!("delete.{kind}"))).expect("delete");
    }
    env.git_in(&wt, &["commit", "-qam", "delete"]);
    env.commit_file(&env.repo, "other.txt", "main moves on\n", "main moves");
    (env, wt)
}

/// A file's text as a person writes it (LF line ends; `$Id$` for `ident`).
fn content(name: &str, kind: &str, side: &str) -> String {
    let id = if kind == "id" { "$Id$\n" } else { "" };
    format!("{id}{name} on {side}\nsecond line\n")
}

/// The same repository, cloned before the merge, with the same filters.
fn copy_of(env: &TestEnv) -> PathBuf {
    let copy = env.tmp.path().join("copy");
    let repo = env.repo.to_str().expect("utf8");
    env.git_in(env.tmp.path(), &["clone", "-q", "-n", "--no-local", repo, "copy"]);
    configure(env, &copy);
    env.git_in(&copy, &["checkout", "-q", "main"]);
    env.git_in(&copy, &["fetch", "-q", "origin", "session/a:session/a"]);
    copy
}

/// Everything git reads about the base's worktree after the merge is the same in both.
fn same_as_git(env: &TestEnv, copy: &Path, what: &str) {
    let git = |dir: &Path, args: &[&str]| env.git_in(dir, args);
    assert_eq!(
        git(&env.repo, &["rev-parse", "main^{tree}"]),
        git(copy, &["rev-parse", "main^{tree}"]),
        "{what}: tree"
    );
    assert_eq!(
        git(&env.repo, &["ls-files", "--stage"]),
        git(copy, &["ls-files", "--stage"]),
        "{what}: index"
    );
    let no_manifest = |text: String| -> String {
        text.lines()
            .filter(|l| !l.contains("flowloom.toml") && !l.contains("files changed") && !l.contains("file changed"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    for args in [
        &["status", "--porcelain", "--untracked-files=all"][..],
        &["diff", "--stat"][..],
        &["diff", "--cached", "--stat"][..],
    ] {
        assert_eq!(
            no_manifest(git(&env.repo, args)),
            no_manifest(git(copy, args)),
            "{what}: git {args:?}"
        );
    }
    for kind in ["q", "bin", "crlf", "id", "txt"] {
        for name in ["keep", "change", "new", "other", "delete"] {
            let file = format!("{name}.{kind}");
            let ours = std::fs::read(env.path(&file)).ok();
            let theirs = std::fs::read(copy.join(&file)).ok();
            assert_eq!(
                ours.as_deref().map(String::from_utf8_lossy),
                theirs.as_deref().map(String::from_utf8_lossy),
                "{what}: {file}"
            );
        }
    }
    // The filters really ran: a quoted line, a file from the store, CRLF, an expanded id.
    let read = |f: &str| std::fs::read_to_string(env.path(f)).expect(f);
    assert!(read("new.q").starts_with("> new on session"), "{what}");
    assert_eq!(read("new.bin"), content("new", "bin", "session"), "{what}");
    assert!(read("new.crlf").contains("\r\n"), "{what}");
    assert!(read("new.id").starts_with("$Id: "), "{what}");
    assert!(
        !env.path("delete.q").exists() && !env.path("delete.bin").exists(),
        "{what}"
    );
}

#[test]
fn a_squash_through_filters_ends_as_git_merge_squash_leaves_it() {
    let (env, _) = filtered_session();
    let copy = copy_of(&env);
    env.git_in(&copy, &["merge", "-q", "--squash", "session/a"]);
    env.git_in(&copy, &["commit", "-qm", "squash"]);
    let (code, out, err) = env.run(&["merge", "--yes", "--squash", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    same_as_git(&env, &copy, "squash");
    env.fsck();
}

#[test]
fn a_rebase_through_filters_ends_as_git_rebase_and_fast_forward_leave_it() {
    let (env, _) = filtered_session();
    let copy = copy_of(&env);
    env.git_in(&copy, &["checkout", "-q", "-b", "replayed", "session/a"]);
    env.git_in(&copy, &["rebase", "-q", "main"]);
    env.git_in(&copy, &["checkout", "-q", "main"]);
    env.git_in(&copy, &["merge", "-q", "--ff-only", "replayed"]);
    let (code, out, err) = env.run(&["merge", "--yes", "--rebase", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    same_as_git(&env, &copy, "rebase");
    assert_eq!(
        env.git(&["rev-list", "--count", "main"]),
        env.git_in(&copy, &["rev-list", "--count", "main"])
    );
    env.fsck();
}

/// A required filter that cannot run (its program is missing) or that fails (an LFS
/// object not in the store) refuses the merge before anything is written: no object, no
/// ref, no file; the message names the filter and the files.
#[test]
fn a_missing_or_failing_required_filter_refuses_before_writing() {
    for (case, key, value) in [
        (
            "missing program",
            "filter.quote.smudge",
            "/nonexistent/quote-smudge".to_owned(),
        ),
        (
            "failing filter",
            "filter.lfs.smudge",
            "sh -c 'cat >/dev/null; exit 3'".to_owned(),
        ),
    ] {
        let (env, _) = filtered_session();
        env.git(&["config", key, &value]);
        env.git(&["config", "filter.quote.required", "true"]);
        let main = env.git(&["rev-parse", "main"]);
        let objects = env.git(&["count-objects", "-v"]);
        let files: Vec<(String, Option<Vec<u8>>)> = ["change.q", "change.bin", "delete.q", "delete.bin", "new.q"]
            .iter()
            .map(|f| (f.to_string(), std::fs::read(env.path(f)).ok()))
            .collect();
        let index = std::fs::read(env.path(".git/index")).expect("index");
        let (code, out, err) = env.run(&["merge", "--yes", "a"]);
        assert_eq!(code, 1, "{case}: {out}\n{err}");
        let flat = err.replace('│', "").split_whitespace().collect::<Vec<_>>().join(" ");
        let driver = if key.contains("quote") { "quote" } else { "lfs" };
        assert!(
            flat.contains(&format!("`{driver}`"))
                && flat.contains(&format!("change.{}", if driver == "quote" { "q" } else { "bin" })),
            "{case}: {flat}"
        );
        assert_eq!(env.git(&["rev-parse", "main"]), main, "{case}: the base moved");
        assert_eq!(env.git(&["count-objects", "-v"]), objects, "{case}: objects written");
        for (file, before) in &files {
            assert_eq!(&std::fs::read(env.path(file)).ok(), before, "{case}: {file}");
        }
        assert_eq!(
            std::fs::read(env.path(".git/index")).expect("index"),
            index,
            "{case}: index"
        );
        assert!(
            env.path("sessions/shell-instance-a").exists(),
            "{case}: the session stays"
        );
    }
}
