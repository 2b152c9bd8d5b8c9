//! Hostile input (SPEC §8): every malformed manifest gives exit 1, a diagnostic that points
//! into the file, no panic, and not one byte written anywhere.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::TestEnv;

/// (name, manifest bytes, a phrase the diagnostic must contain)
const CASES: &[(&str, &[u8], &str)] = &[
    ("broken toml", b"[sessions.a\n", "flowloom.toml"),
    ("wrong type", b"[sessions.a]\npurpose = 3\n", "purpose"),
    ("unknown key", b"[sessions.a]\npurpse = \"x\"\n", "purpose"),
    ("unknown top-level key", b"sesions = 1\n", "sesions"),
    ("unsupported version", b"version = 2\n", "version"),
    ("id with a slash", b"[sessions.\"a/b\"]\n", "a/b"),
    ("id with dot-dot", b"[sessions.\"..\"]\n", ".."),
    ("id ending in .lock", b"[sessions.\"x.lock\"]\n", "x.lock"),
    (
        "worktree escaping the root",
        b"[sessions.a]\nworktree = \"../../etc\"\n",
        "worktree",
    ),
    (
        "absolute worktree",
        b"[sessions.a]\nworktree = \"/tmp/x\"\n",
        "worktree",
    ),
    ("root is .git", b"[defaults]\nroot = \".git\"\n", "root"),
    ("root inside .git", b"[defaults]\nroot = \".git/x\"\n", "root"),
    (
        "root outside the manifest folder",
        b"[defaults]\nroot = \"../elsewhere\"\n",
        "root",
    ),
    ("absolute root", b"[defaults]\nroot = \"/tmp\"\n", "root"),
    (
        "branch git rejects",
        b"[sessions.a]\nbranch = \"bad..name\"\n",
        "branch",
    ),
    ("branch with a space", b"[sessions.a]\nbranch = \"a b\"\n", "branch"),
    (
        "two sessions on one branch",
        b"[sessions.a]\nbranch = \"x\"\n[sessions.b]\nbranch = \"x\"\n",
        "x",
    ),
    (
        "two sessions in one folder",
        b"[sessions.a]\nworktree = \"w\"\n[sessions.b]\nworktree = \"w\"\n",
        "w",
    ),
    (
        "unknown placeholder",
        b"[defaults]\nbranch = \"s/{name}\"\n[sessions.a]\n",
        "{name}",
    ),
    ("not utf-8", b"[sessions.a]\npurpose = \"\xff\xfe\"\n", "UTF-8"),
    ("empty base", b"[sessions.a]\nbase = \"\"\n", "base"),
];

/// Everything a write could touch: refs, worktrees, every file under the temp folder.
fn snapshot(env: &TestEnv) -> (String, String, BTreeMap<String, Vec<u8>>) {
    let mut files = BTreeMap::new();
    walk(env.tmp.path(), env.tmp.path(), &mut files);
    (
        env.git(&["for-each-ref"]),
        env.git(&["worktree", "list", "--porcelain"]),
        files,
    )
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        let rel = path.strip_prefix(base).expect("inside").display().to_string();
        // git's own housekeeping of the oracle's reads (index stat refresh) is not ours.
        if rel.ends_with(".git/index") {
            continue;
        }
        if entry.file_type().expect("type").is_dir() {
            out.insert(rel + "/", Vec::new());
            walk(base, &path, out);
        } else {
            out.insert(rel, std::fs::read(&path).unwrap_or_default());
        }
    }
}

#[test]
fn malformed_manifests_are_refused_without_writing_anything() {
    for (name, bytes, phrase) in CASES {
        let env = TestEnv::new();
        std::fs::write(env.repo.join("flowloom.toml"), bytes).expect("write");
        let before = snapshot(&env);
        for args in [
            &["validate"][..],
            &["plan"][..],
            &["plan", "--json"][..],
            &["apply", "--yes"][..],
        ] {
            let (code, out, err) = env.run(args);
            assert_eq!(code, 1, "{name}: {args:?} exited {code}\n{out}\n{err}");
            assert!(!err.contains("panicked"), "{name}: {err}");
            assert!(
                err.contains("flowloom.toml"),
                "{name}: the diagnostic does not name the file\n{err}"
            );
            assert!(
                err.contains(phrase),
                "{name}: the diagnostic does not mention `{phrase}`\n{err}"
            );
            assert!(
                out.is_empty(),
                "{name}: {args:?} printed a plan for a bad manifest\n{out}"
            );
        }
        assert!(snapshot(&env) == before, "{name}: something was written");
    }
}

#[test]
fn a_base_that_does_not_resolve_points_at_the_value() {
    let env = TestEnv::new();
    env.manifest("[sessions.ok]\n\n[sessions.bad]\nbase = \"no-such-branch\"\n");
    let (code, out, err) = env.run(&["plan"]);
    assert_eq!(code, 1);
    assert!(out.contains("+ ok"), "{out}");
    assert!(out.contains("! bad"), "{out}");
    insta::assert_snapshot!(err, @r#"
    flowloom::base

      × session `bad`: base `no-such-branch` does not resolve to a commit
       ╭─[flowloom.toml:4:8]
     3 │ [sessions.bad]
     4 │ base = "no-such-branch"
       ·        ────────┬───────
       ·                ╰── not found in the repository
       ╰────
      help: name a branch, tag or commit that exists in this repository, or fetch it first
    "#);
    // apply carries out the rest and exits 1.
    let (code, _, _) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 1);
    assert_eq!(
        env.worktrees(),
        vec![("sessions/shell-instance-ok".into(), "session/ok".into())]
    );
}

#[test]
fn several_problems_are_reported_together() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\npurpse = \"x\"\n[sessions.\"b/c\"]\n[defaults]\nroot = \"/abs\"\n");
    let (code, _, err) = env.run(&["validate"]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(err, @r#"
      × flowloom.toml has 3 problems

    Error: 
      × unknown key `purpse` in [sessions.a]
       ╭─[flowloom.toml:2:1]
     1 │ [sessions.a]
     2 │ purpse = "x"
       · ───┬──
       ·    ╰── unknown key
     3 │ [sessions."b/c"]
       ╰────
      help: did you mean `purpose`?

    Error: 
      × invalid session id `b/c`
       ╭─[flowloom.toml:3:11]
     2 │ purpse = "x"
     3 │ [sessions."b/c"]
       ·           ──┬──
       ·             ╰── contains '/'
     4 │ [defaults]
       ╰────
      help: an id starts with a letter or digit, continues with letters, digits, `.`, `_` or `-`, has
            at most 64 characters and does not end in `.lock`

    Error: 
      × invalid `root` "/abs"
       ╭─[flowloom.toml:5:8]
     4 │ [defaults]
     5 │ root = "/abs"
       ·        ───┬──
       ·           ╰── an absolute path
       ╰────
      help: write a folder relative to the manifest's folder, e.g. `sessions`
    "#);
}

#[test]
fn bad_arguments_exit_1_not_2() {
    let env = TestEnv::new();
    let (code, _, err) = env.run(&["plan", "--no-such-flag"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, _) = env.run(&["--help"]);
    assert_eq!(code, 0);
    let (code, _, err) = env.run(&["-C", "/no/such/dir", "plan"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn outside_a_repository_is_a_clear_error() {
    let env = TestEnv::empty();
    std::fs::create_dir_all(&env.repo).expect("mkdir");
    let (code, _, err) = crate::common::run(env.flowloom_in(&env.repo).args(["plan"]));
    assert_eq!(code, 1);
    assert!(err.contains("not inside a git repository"), "{err}");
}

#[test]
fn a_missing_manifest_says_how_to_make_one() {
    let env = TestEnv::new();
    let (code, _, err) = env.run(&["plan"]);
    assert_eq!(code, 1);
    assert!(err.contains("flowloom init"), "{err}");
}
