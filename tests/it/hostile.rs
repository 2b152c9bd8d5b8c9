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
        "root folding back with `..`",
        b"[defaults]\nroot = \"a/../../elsewhere\"\n",
        "`..` after a folder name",
    ),
    (
        "root four folders up",
        b"[defaults]\nroot = \"../../../../etc/x\"\n",
        "at most 1 allowed",
    ),
    (
        "root up twice behind backslashes",
        b"[defaults]\nroot = \"..\\\\..\\\\x\"\n",
        "contains `\\`",
    ),
    (
        "root with the session id",
        b"[defaults]\nroot = \"../{id}\"\n",
        "unknown placeholder `{id}`",
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

     × unknown key `purpse` in [sessions.a]
      ╭─[flowloom.toml:2:1]
    1 │ [sessions.a]
    2 │ purpse = "x"
      · ───┬──
      ·    ╰── unknown key
    3 │ [sessions."b/c"]
      ╰────
     help: did you mean `purpose`?

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

     × invalid `root` "/abs"
      ╭─[flowloom.toml:5:8]
    4 │ [defaults]
    5 │ root = "/abs"
      ·        ───┬──
      ·           ╰── an absolute path
      ╰────
     help: the manifest is shared, and an absolute folder exists on one machine only: write it
           relative to the manifest's folder, e.g. `../{repo}.sessions` beside the repository
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
    // Found by the usual search: first use, on `flowloom init`'s defaults, said so.
    let (code, _, err) = env.run(&["plan"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("flowloom init"), "{err}");
    // Named: an error that says how to make one.
    let (code, _, err) = env.run(&["--manifest", "flowloom.toml", "plan"]);
    assert_eq!(code, 1);
    assert!(err.contains("flowloom init"), "{err}");
}

// ---- Special files, symlinks and sizes (SPEC §8) ----

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

/// No raw control character, bidi override or escape sequence in `text`.
fn assert_clean(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| {
            (c.is_control() && *c != '\n' && *c != '\t')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(bad.is_empty(), "{what} holds raw {bad:?}:\n{text}");
}

#[test]
fn a_manifest_that_is_not_a_regular_file_is_refused_at_once() {
    let env = TestEnv::new();
    let manifest = env.repo.join("flowloom.toml");
    // (A symlinked manifest is refused as a symlink, whatever it points to: /dev/zero is
    // never opened.)
    let cases: [(&str, &dyn Fn()); 3] = [
        ("FIFO", &|| mkfifo(&manifest)),
        ("symlink to /dev/zero", &|| {
            std::os::unix::fs::symlink("/dev/zero", &manifest).expect("symlink")
        }),
        ("directory", &|| std::fs::create_dir(&manifest).expect("mkdir")),
    ];
    for (name, make) in cases {
        let _ = std::fs::remove_file(&manifest);
        let _ = std::fs::remove_dir(&manifest);
        make();
        for args in [&["validate"][..], &["plan"][..], &["apply", "--yes"][..]] {
            let (code, out, err) = crate::common::run_timeout(env.flowloom().args(args), 20);
            assert_eq!(code, 1, "{name}: {args:?}\n{out}\n{err}");
            assert!(
                err.contains("flowloom.toml") || err.contains("/dev/zero"),
                "{name}: {err}"
            );
            assert!(
                err.contains("not a regular") || err.contains("symlink"),
                "{name}: {err}"
            );
        }
    }
    // With --manifest, a device is refused the same way.
    let (code, _, err) = crate::common::run_timeout(env.flowloom().args(["--manifest", "/dev/zero", "validate"]), 20);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("character device"), "{err}");
}

#[test]
fn special_files_in_the_repository_are_refused_not_read() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n[sessions.b]\n");
    env.apply();
    // A FIFO as a session's metadata blocks that session; nothing hangs.
    let metadata = env.path("sessions/shell-instance-a/sessions/a/metadata.json");
    std::fs::remove_file(&metadata).expect("rm");
    mkfifo(&metadata);
    // A symlinked session folder too: the file behind it is never read nor written.
    let folder = env.path("sessions/shell-instance-b/sessions/b");
    std::fs::rename(&folder, env.tmp.path().join("elsewhere")).expect("mv");
    std::os::unix::fs::symlink(env.tmp.path().join("elsewhere"), &folder).expect("symlink");
    let before = std::fs::read(env.tmp.path().join("elsewhere/metadata.json")).expect("read");
    let (code, out, err) = crate::common::run_timeout(env.flowloom().args(["plan"]), 20);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("! a") && out.contains("FIFO"), "{out}");
    assert!(out.contains("! b") && out.contains("symlink"), "{out}");
    let (code, out, err) = crate::common::run_timeout(env.flowloom().args(["apply", "--yes"]), 20);
    assert_eq!(code, 1, "blocked sessions make apply exit 1\n{out}\n{err}");
    assert!(env.path("sessions/shell-instance-a/sessions/a/metadata.json").exists());
    assert_eq!(
        std::fs::read(env.tmp.path().join("elsewhere/metadata.json")).expect("read"),
        before
    );

    // The ownership record as a FIFO, then as a symlink: an error naming it.
    let record = env.path(".git/flowloom/owned.json");
    std::fs::remove_file(&record).expect("rm");
    mkfifo(&record);
    let (code, _, err) = crate::common::run_timeout(env.flowloom().args(["plan"]), 20);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("owned.json") && err.contains("FIFO"), "{err}");
    std::fs::remove_file(&record).expect("rm");
    std::os::unix::fs::symlink("/dev/zero", &record).expect("symlink");
    let (code, _, err) = crate::common::run_timeout(env.flowloom().args(["plan"]), 20);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("owned.json") && err.contains("symlink"), "{err}");
}

#[test]
fn a_lock_file_that_is_a_symlink_is_refused() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    let target = env.tmp.path().join("target");
    std::fs::write(&target, "keep\n").expect("write");
    std::os::unix::fs::symlink(&target, env.path(".git/flowloom.lock")).expect("symlink");
    let (code, _, err) = crate::common::run_timeout(env.flowloom().args(["apply", "--yes"]), 20);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("flowloom.lock") && err.contains("symlink"), "{err}");
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep\n");
    assert!(env.worktrees().is_empty());
    std::fs::remove_file(env.path(".git/flowloom.lock")).expect("rm");
    mkfifo(&env.path(".git/flowloom.lock"));
    let (code, _, err) = crate::common::run_timeout(env.flowloom().args(["apply", "--yes"]), 20);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("FIFO"), "{err}");
}

#[test]
fn ctrl_c_while_holding_the_lock_releases_it() {
    use std::io::BufRead;
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    // Debug builds wait here, holding the lock, as apply does at its prompt.
    let mut child = env
        .flowloom()
        .args(["apply", "--yes"])
        .env("FLOWLOOM_TEST_PAUSE", "lock")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains("paused") {
        line.clear();
        assert!(stderr.read_line(&mut line).expect("read") > 0, "ended before pausing");
    }
    let lock = env.path(".git/flowloom.lock");
    assert!(std::fs::read_to_string(&lock).expect("read").contains("pid"));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert_eq!(
        std::fs::read_to_string(&lock).expect("read"),
        "",
        "holder text left behind"
    );
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!err.contains("took over"), "{err}");
}

#[test]
fn control_characters_from_the_manifest_never_reach_the_terminal() {
    let env = TestEnv::new();
    // TOML escapes put raw ESC, CR and DEL into values; bidi overrides are allowed as they are.
    let purpose = "x\u{1b}[2K\u{1b}[1A\r\u{7f}\u{202e}evil\u{2066}";
    env.manifest(
        "# bidi in a comment: \u{202e}\u{2067}\n\
         [sessions.a]\n\
         purpose = \"x\\u001b[2K\\u001b[1A\\r\\u007f\u{202e}evil\u{2066}\"\n",
    );
    for args in [&["plan"][..], &["validate"][..], &["status"][..]] {
        let (code, out, err) = env.run(args);
        assert!(code == 0 || code == 1, "{args:?}: {code}\n{err}");
        assert_clean(&format!("{args:?} stdout"), &out);
        assert_clean(&format!("{args:?} stderr"), &err);
    }
    let (code, out, err) = env.run(&["plan", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_clean("plan --json", &out);
    let _: serde_json::Value = serde_json::from_str(&out).expect("still valid JSON");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_clean("apply stdout", &out);
    assert_clean("apply stderr", &err);
    let metadata =
        std::fs::read_to_string(env.path("sessions/shell-instance-a/sessions/a/metadata.json")).expect("metadata");
    let metadata: serde_json::Value = serde_json::from_str(&metadata).expect("json");
    assert_eq!(metadata["purpose"], purpose, "the value itself is kept as written");

    // In diagnostics: a raw escape in a comment (invalid TOML) and in a branch template.
    env.manifest("# \u{1b}[2K\r comment\n[sessions.a]\n");
    let (code, _, err) = env.run(&["validate"]);
    assert_eq!(code, 1);
    assert_clean("validate of raw controls", &err);
    env.manifest("[defaults]\nbranch = \"s/{id}\\u001b[1A\u{202e}\"\n[sessions.a]\n");
    let (code, _, err) = env.run(&["validate"]);
    assert_eq!(code, 1, "{err}");
    assert_clean("validate of an escaped branch", &err);
    assert!(err.contains("\\u001b"), "shown escaped: {err}");
}

#[test]
fn huge_names_and_lines_never_panic() {
    let env = TestEnv::new();
    let long = "x".repeat(100_000);
    let cases = [
        // (manifest, expected exit of validate)
        (format!("[sessions.a]\npurpose = \"{long}\"\n"), 0),
        (format!("[sessions.a]\nbranch = \"{long}\"\n"), 1),
        (format!("[sessions.a]\nworktree = \"{long}\"\n"), 1),
        (format!("[defaults]\nbranch = \"s/{{id}}/{long}\"\n[sessions.a]\n"), 1),
        (format!("[sessions.{long}]\n"), 1),
        // A problem at column 100,000 and past it.
        (format!("[sessions.a]\npurpose = \"{long}\" ; purpse = 1\n"), 1),
        (
            format!("sessions = {{ a = {{ purpose = \"{long}\", purpse = 1 }} }}\n"),
            1,
        ),
        (
            format!("sessions = {{ a = {{ purpose = \"{long}\", base = \"nope\" }} }}\n"),
            0,
        ),
    ];
    for (i, (manifest, validate_code)) in cases.iter().enumerate() {
        env.manifest(manifest);
        for args in [&["validate"][..], &["plan"][..], &["status"][..]] {
            let started = std::time::Instant::now();
            let (code, out, err) = crate::common::run_timeout(env.flowloom().args(args), 30);
            assert!(
                !err.contains("panicked"),
                "case {i} {args:?}: {}",
                &err[..err.len().min(2000)]
            );
            assert!(code == 0 || code == 1, "case {i} {args:?}: exit {code}");
            if args == ["validate"] {
                assert_eq!(code, *validate_code, "case {i}: {}", &err[..err.len().min(2000)]);
            }
            assert!(out.len() + err.len() < 1_000_000, "case {i}: a megabyte of output");
            assert!(started.elapsed().as_secs() < 20, "case {i} {args:?} too slow");
        }
    }
}

#[test]
fn thousands_of_problems_are_reported_in_linear_time() {
    let env = TestEnv::new();
    let mut manifest = String::new();
    for i in 0..20_000 {
        manifest.push_str(&format!("[sessions.s{i}]\npurpse = \"x\"\n"));
    }
    env.manifest(&manifest);
    let started = std::time::Instant::now();
    let (code, _, err) = crate::common::run_timeout(env.flowloom().args(["validate"]), 60);
    assert_eq!(code, 1);
    assert!(err.contains("20000 problems"), "{}", &err[..200]);
    // Quadratic, this took half a minute; linear, about a second in a debug build.
    assert!(started.elapsed().as_secs() < 15, "{:?}", started.elapsed());
}

#[test]
fn a_record_entry_with_dot_dot_is_not_inside_the_root() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    // A branch out of scope, and a hand-edited entry that claims it from "inside" the root.
    env.git(&["branch", "keep-me"]);
    let record_path = env.path(".git/flowloom/owned.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).expect("read")).expect("json");
    let root = env.repo.canonicalize().expect("canonical").join("sessions");
    record["sessions"]
        .as_array_mut()
        .expect("array")
        .push(serde_json::json!({
            "id": "x",
            "branch": "keep-me",
            "path": format!("{}/../outside", root.display()),
            "base": "main",
            "state": "created",
        }));
    std::fs::write(&record_path, record.to_string()).expect("write");
    let (code, out, err) = env.run(&["plan"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        !out.contains("- x"),
        "an entry outside the root is never an orphan:\n{out}"
    );
    env.apply();
    assert!(env.branches().contains(&"keep-me".to_owned()));
}

// ---- Symlinks, special files and sizes beyond the manifest's contents ----

/// Runs every command that reads the manifest; each must refuse it, naming `name`.
fn assert_manifest_refused(env: &TestEnv, extra: &[&str], name: &str, what: &str) {
    let before = snapshot(env);
    for args in [
        &["validate"][..],
        &["plan"][..],
        &["plan", "--json"][..],
        &["status"][..],
        &["apply", "--yes"][..],
        &["import", "--yes"][..],
    ] {
        let args: Vec<&str> = extra.iter().chain(args).copied().collect();
        let (code, out, err) = crate::common::run_timeout(env.flowloom().args(&args), 20);
        assert_eq!(code, 1, "{what}: {args:?}\n{out}\n{err}");
        assert!(out.is_empty(), "{what}: {args:?} printed\n{out}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        // What, where, and how to fix it.
        assert!(
            err.contains(name) && err.contains("is a symlink"),
            "{what}: {args:?}\n{err}"
        );
        assert!(err.contains("replace the symlink"), "{what}: {args:?}\n{err}");
    }
    assert!(snapshot(env) == before, "{what}: something was written");
}

#[test]
fn a_symlinked_manifest_is_refused_not_followed() {
    let env = TestEnv::new();
    // A valid manifest behind the link: following it would plan (and make) a session.
    env.write("real.toml", "[sessions.a]\n");
    std::os::unix::fs::symlink("real.toml", env.path("flowloom.toml")).expect("symlink");
    assert_manifest_refused(&env, &[], "flowloom.toml", "relative symlink");
    // To an absolute path outside the repository, too.
    let outside = env.tmp.path().join("outside.toml");
    std::fs::write(&outside, "[sessions.a]\n").expect("write");
    std::fs::remove_file(env.path("flowloom.toml")).expect("rm");
    std::os::unix::fs::symlink(&outside, env.path("flowloom.toml")).expect("symlink");
    assert_manifest_refused(&env, &[], "flowloom.toml", "absolute symlink");
    // Passed with --manifest, relative or absolute.
    std::os::unix::fs::symlink("real.toml", env.path("link.toml")).expect("symlink");
    assert_manifest_refused(&env, &["--manifest", "link.toml"], "link.toml", "--manifest");
    let absolute = env.path("link.toml").display().to_string();
    assert_manifest_refused(&env, &["--manifest", &absolute], "link.toml", "--manifest absolute");
    // A symlinked folder on the way is fine (the path is resolved up to the file).
    std::os::unix::fs::symlink(&env.repo, env.tmp.path().join("repo-link")).expect("symlink");
    let via_link = env.tmp.path().join("repo-link/real.toml").display().to_string();
    let (code, _, err) = env.run(&["--manifest", &via_link, "validate"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = env.run(&["--manifest", "real.toml", "validate"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_cell_past_65535_characters_never_panics() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    // A worktree made by hand in the root, whose HEAD names a 70,000-character branch: the
    // branch column of `plan` (unmanaged) and `status` is that wide.
    env.git(&["worktree", "add", "-q", "sessions/hand", "-b", "hand"]);
    let head = env.path(".git/worktrees/hand/HEAD");
    std::fs::write(&head, format!("ref: refs/heads/{}\n", "x".repeat(70_000))).expect("write");
    for args in [
        &["plan"][..],
        &["plan", "--json"][..],
        &["status"][..],
        &["status", "--json"][..],
    ] {
        let (code, out, err) = crate::common::run_timeout(env.flowloom().args(args), 30);
        assert!(
            code == 0 || code == 1,
            "{args:?}: exit {code}\n{}",
            &err[..err.len().min(2000)]
        );
        assert!(!err.contains("panicked"), "{args:?}: {}", &err[..err.len().min(2000)]);
        assert!(out.contains("hand"), "{args:?}: the row is shown");
        // A long cell sticks out; it does not widen every other row.
        if !args.contains(&"--json") {
            let short = out.lines().filter(|l| l.len() < 1000).count();
            assert!(short >= 2, "{args:?}: other rows stay narrow");
        }
    }
}

#[test]
fn a_base_diagnostic_is_windowed_and_linear() {
    let env = TestEnv::new();
    // A 100,000-byte base on a long line: the label is windowed, the message shortened.
    let long = "n".repeat(100_000);
    env.manifest(&format!("[sessions.a]\nbase = \"{long}\" # after\n"));
    let (code, out, err) = crate::common::run_timeout(env.flowloom().args(["plan"]), 30);
    assert_eq!(code, 1, "{}", &err[..err.len().min(2000)]);
    assert!(!err.contains("panicked"));
    assert!(
        err.contains("flowloom.toml") && err.contains("not found in the repository"),
        "{err}"
    );
    assert!(err.len() < 5_000, "the error repeats the value: {} bytes", err.len());
    assert!(out.contains("! a"), "{}", &out[..out.len().min(2000)]);

    // Thousands of sessions with a base that does not resolve: one line index for all.
    let mut manifest = String::new();
    for i in 0..3_000 {
        manifest.push_str(&format!("[sessions.s{i}]\nbase = \"nope-{i}\"\n"));
    }
    env.manifest(&manifest);
    let started = std::time::Instant::now();
    let (code, _, err) = crate::common::run_timeout(env.flowloom().args(["plan"]), 120);
    assert_eq!(code, 1);
    assert_eq!(err.matches("does not resolve to a commit").count(), 3_000);
    assert!(err.contains("nope-2999"), "{}", &err[err.len().saturating_sub(2000)..]);
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
}

#[test]
fn a_symlinked_or_special_info_exclude_is_an_error_of_the_plan() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    let exclude = env.path(".git/info/exclude");
    let target = env.tmp.path().join("exclude-target");
    std::fs::write(&target, "# mine\n").expect("write");
    let _ = std::fs::remove_file(&exclude);
    std::os::unix::fs::symlink(&target, &exclude).expect("symlink");
    let before = snapshot(&env);
    for args in [&["plan"][..], &["plan", "--json"][..], &["apply", "--yes"][..]] {
        let (code, out, err) = crate::common::run_timeout(env.flowloom().args(args), 20);
        assert_eq!(code, 1, "{args:?}\n{out}\n{err}");
        assert!(
            err.contains("info/exclude") && err.contains("symlink"),
            "{args:?}: {err}"
        );
        assert!(err.contains("help:"), "{args:?}: says how to fix it\n{err}");
    }
    // Nothing but the apply lock, which apply takes before it reads.
    let mut after = snapshot(&env);
    after.2.remove("repo/.git/flowloom.lock");
    assert!(after == before, "something was written");
    assert!(env.worktrees().is_empty());
    // `import` rewrites the file too: refused, the link's target untouched.
    let (code, _, err) = crate::common::run_timeout(env.flowloom().args(["import", "--yes"]), 20);
    assert!(code == 0 || code == 1, "{err}");
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "# mine\n");

    // A FIFO: refused at once, never opened.
    std::fs::remove_file(&exclude).expect("rm");
    mkfifo(&exclude);
    let (code, _, err) = crate::common::run_timeout(env.flowloom().args(["plan"]), 20);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("info/exclude") && err.contains("FIFO"), "{err}");

    // A symlinked `info` folder: nothing written through it either.
    std::fs::remove_file(&exclude).expect("rm");
    let info = env.path(".git/info");
    let elsewhere = env.tmp.path().join("info-elsewhere");
    std::fs::rename(&info, &elsewhere).expect("mv");
    std::os::unix::fs::symlink(&elsewhere, &info).expect("symlink");
    std::fs::write(elsewhere.join("exclude"), "# mine\n").expect("write");
    let (code, _, err) = crate::common::run_timeout(env.flowloom().args(["apply", "--yes"]), 20);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("info") && err.contains("symlink"), "{err}");
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("exclude")).expect("read"),
        "# mine\n"
    );

    // Back to a regular file: planned and applied as usual.
    std::fs::remove_file(&info).expect("rm");
    std::fs::rename(&elsewhere, &info).expect("mv");
    env.apply();
    let text = std::fs::read_to_string(&exclude).expect("read");
    assert!(text.starts_with("# mine\n") && text.contains("/sessions/a/"), "{text}");
}

#[test]
fn a_saved_plan_is_read_only_from_a_regular_file() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    let (code, _, err) = env.run(&["plan", "--out", "plan.json"]);
    assert_eq!(code, 0, "{err}");
    std::os::unix::fs::symlink("plan.json", env.path("link.json")).expect("symlink");
    let (code, _, err) = crate::common::run_timeout(env.flowloom().args(["apply", "link.json"]), 20);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("link.json") && err.contains("symlink"), "{err}");
    mkfifo(&env.path("fifo.json"));
    let (code, _, err) = crate::common::run_timeout(env.flowloom().args(["apply", "fifo.json"]), 20);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("fifo.json") && err.contains("FIFO"), "{err}");
    let (code, _, err) = crate::common::run_timeout(env.flowloom().args(["apply", "/dev/zero"]), 20);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("character device"), "{err}");
    assert!(env.worktrees().is_empty());
    let (code, out, err) = env.run(&["apply", "plan.json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(env.worktrees().len(), 1);
}

#[test]
fn control_characters_from_the_repository_never_reach_the_terminal() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    // A worktree made by hand, in a folder whose name holds ESC, CR and a bidi override.
    let evil = "evil\u{1b}[2K\r\u{202e}x";
    env.git(&["worktree", "add", "-q", &format!("sessions/{evil}"), "-b", "evil"]);
    for args in [
        &["plan"][..],
        &["status"][..],
        &["plan", "--json"][..],
        &["status", "--json"][..],
    ] {
        let (code, out, err) = env.run(args);
        assert!(code == 0 || code == 1, "{args:?}: {code}\n{err}");
        assert_clean(&format!("{args:?} stdout"), &out);
        assert_clean(&format!("{args:?} stderr"), &err);
        if !args.contains(&"--json") {
            assert!(
                out.contains("evil\\u001b[2K\\u000d\\u202ex"),
                "{args:?}: shown escaped\n{out}"
            );
        }
        if args.contains(&"--json") {
            let _: serde_json::Value = serde_json::from_str(&out).expect("still valid JSON");
        }
    }
}
